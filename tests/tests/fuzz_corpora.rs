//! The fuzz targets' corpora (`fuzz/corpus/TARGET`) and every crash the
//! fuzzer found (`fuzz/regressions/TARGET`, minimised), replayed through
//! the same entry points as the targets (`osteo_server::fuzzing`), so that
//! each stays handled without `cargo fuzz` (docs/fuzzing.md).
//!
//! `cargo test -p osteo-tests --test fuzz_corpora -- --ignored` writes the
//! seed inputs of the corpora (files the tests' own DICOM writer makes, and
//! requests of the kind the API's clients send).

// The one `unsafe` of the tests: an allocator that counts and hands every
// request to the system's, which a global allocator must be written as.
#![allow(unsafe_code)]

use osteo_server::fuzzing::{self, Api, BOUNDARY};
use osteo_tests::dicom::{DeflateBomb, Radiograph};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The allocator, counting the largest single request: a small file must
/// not make the server reserve memory out of proportion to it (the first
/// crash the fuzzer found took a damaged header for a 1.4 GB length).
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The most one DICOM input of the corpora (each under 64 KiB) may
/// reserve at once.
const MAX_RESERVED: usize = 64 << 20;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The inputs of `target`: its corpus and its regressions, by name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let name = format!("{kind}/{target}/{}", entry.file_name().to_string_lossy());
                out.push((name, std::fs::read(&path).expect("a corpus file reads")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_input_and_every_crash_found_is_handled() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (target, run) in [
        (
            "dicom_header",
            fuzzing::dicom_header as fn(&[u8]) -> Result<(), String>,
        ),
        ("dicom_ingest", fuzzing::dicom_ingest),
    ] {
        let inputs = inputs(target);
        assert!(!inputs.is_empty(), "the corpus of {target} is in the repo");
        for (name, bytes) in inputs {
            count += 1;
            LARGEST.store(0, Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            let reserved = LARGEST.load(Ordering::Relaxed);
            if reserved > MAX_RESERVED {
                failures.push(format!("{name}: reserved {} MiB at once", reserved >> 20));
            }
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: panicked")),
            }
        }
    }
    let api = Api::new().expect("the server's router starts");
    let inputs = inputs("api");
    assert!(
        !inputs.is_empty(),
        "the corpus of the API target is in the repo"
    );
    let mut statuses = std::collections::BTreeMap::new();
    for (name, bytes) in inputs {
        count += 1;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api.request(&bytes))) {
            Ok(Ok(status)) => {
                statuses.insert(name, status);
            }
            Ok(Err(e)) => failures.push(format!("{name}: {e}")),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The seeds reach the handlers, not only the extractors' refusals.
    assert_eq!(
        statuses.get("corpus/api/screening"),
        Some(&201),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get("corpus/api/not-utf8"),
        Some(&400),
        "{statuses:?}"
    );
    assert!(count > 20, "{count} inputs");
}

/// Writes the seed inputs (run with `--ignored`; the files go to
/// `fuzz/corpus`).
#[test]
#[ignore]
fn write_the_seed_corpora() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("the corpus directory");
        std::fs::write(dir.join(name), bytes).expect("a seed is written");
    };
    let small = |seed: u16| Radiograph {
        size: 16,
        ..Radiograph::cr("Fuzz", "AP", seed)
    };
    let mut files = vec![
        ("cr-16bit.dcm", small(1).bytes()),
        (
            "cr-8bit.dcm",
            Radiograph {
                bits: 8,
                ..small(2)
            }
            .bytes(),
        ),
        (
            "declared-larger.dcm",
            Radiograph {
                declared: Some(64),
                ..small(3)
            }
            .bytes(),
        ),
        (
            "lateral-no-view.dcm",
            Radiograph {
                view_position: None,
                ..small(4)
            }
            .bytes(),
        ),
        ("deflated.dcm", DeflateBomb::new(512).file(&small(5))),
    ];
    files.push(("not-dicom.bin", b"not a DICOM file".to_vec()));
    for (name, bytes) in &files {
        write("dicom_header", name, bytes);
        write("dicom_ingest", name, bytes);
    }

    // The API target: [operation, role, body...].
    let api = Api::new().expect("the server's router starts");
    let operations = api.operations();
    let index = |op: &str| {
        operations
            .iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("{op} in {operations:?}")) as u8
    };
    let json = |op: &str, role: u8, body: serde_json::Value| {
        let mut bytes = vec![index(op), role];
        bytes.extend(body.to_string().into_bytes());
        bytes
    };
    let seeds = [
        (
            "screening",
            json(
                "POST /api/v1/screenings",
                0,
                serde_json::json!({"arm": "prospective", "screening_date": "2025-06-02",
                    "inclusion_met": true, "exclusions": [], "outcome": "enrolled"}),
            ),
        ),
        (
            "crf",
            json(
                "PUT /api/v1/cases/1/crf",
                0,
                serde_json::json!({"data": osteo_tests::workflow::crf(), "complete": false}),
            ),
        ),
        (
            "crf-sign",
            json(
                "POST /api/v1/cases/1/crf/sign",
                2,
                serde_json::json!({"meaning": "review", "password": "wrong", "second_factor": "000000"}),
            ),
        ),
        (
            "read",
            json("PUT /api/v1/cases/1/read", 1, osteo_tests::workflow::read()),
        ),
        (
            "pathology",
            json(
                "POST /api/v1/cases/1/pathology",
                0,
                osteo_tests::workflow::pathology(),
            ),
        ),
        (
            "sap",
            json(
                "POST /api/v1/sap",
                3,
                serde_json::json!({"threshold": 0.5, "intermediate": "excluded",
                    "readers": "each_reader", "conf_level": 0.95}),
            ),
        ),
        (
            "lock",
            json(
                "POST /api/v1/study/lock",
                2,
                serde_json::json!({"password": "wrong", "kind": "interim"}),
            ),
        ),
        (
            "user",
            json(
                "POST /api/v1/users",
                5,
                serde_json::json!({"username": "new.reader", "display_name": "New Reader",
                    "role": "radiologist", "site": "QDUAH"}),
            ),
        ),
        ("nested", {
            let mut b = vec![index("PUT /api/v1/cases/1/crf"), 0];
            b.extend("[".repeat(5000).into_bytes());
            b
        }),
        ("not-utf8", {
            let mut b = vec![index("POST /api/v1/screenings"), 0];
            b.extend([0xff, 0xfe, b'{', 0x80]);
            b
        }),
    ];
    for (name, bytes) in seeds {
        write("api", name, &bytes);
    }
    let upload = index("POST /api/v1/cases/1/images");
    for (name, file) in files.iter().take(2) {
        let mut body = vec![upload, 0];
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"view\"\r\n\r\nfrontal\r\n\
                 --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/dicom\r\n\r\n"
            )
            .into_bytes(),
        );
        body.extend(file);
        body.extend(format!("\r\n--{BOUNDARY}--\r\n").into_bytes());
        write("api", &format!("upload-{name}"), &body);
    }
}
