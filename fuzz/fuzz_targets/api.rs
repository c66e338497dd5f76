//! Fuzz target: one request to the server's router, in process
//! (`osteo_server::fuzzing::Api`): a JSON body to any operation of the
//! OpenAPI document that takes one, or a multipart upload, with any role's
//! token. A 5xx answer or a panic is a crash (docs/fuzzing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use osteo_server::fuzzing::Api;
use std::sync::LazyLock;

static API: LazyLock<Api> = LazyLock::new(|| Api::new().expect("the server starts"));

fuzz_target!(init: {
    // The server starts before the first input (migrations, accounts,
    // tokens), outside any input's time limit.
    LazyLock::force(&API);
}, |data: &[u8]| {
    if let Err(e) = API.request(data) {
        panic!("{e}");
    }
});
