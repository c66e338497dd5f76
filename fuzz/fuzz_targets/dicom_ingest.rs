//! Fuzz target: `osteo_server::fuzzing::dicom_ingest` (docs/fuzzing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = osteo_server::fuzzing::dicom_ingest(data) {
        panic!("{e}");
    }
});
