//! Fuzz target: `osteo_server::fuzzing::dicom_header` (docs/fuzzing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = osteo_server::fuzzing::dicom_header(data) {
        panic!("{e}");
    }
});
