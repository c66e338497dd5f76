//! dicom3tools' `dciodvfy` (Debian's `dicom3tools`, which `.ci/run`
//! installs) as the judge of the DICOM objects the system writes: it checks
//! a file against the IOD its SOP Class names (every module, each
//! attribute's type, value representation, length and multiplicity) and
//! says `Error - …` for each breach.

use std::process::Command;

/// What `dciodvfy` said of a file.
#[derive(Debug)]
pub struct Verdict {
    /// Its `Error` lines.
    pub errors: Vec<String>,
    /// Its `Warning` lines (advice, not a breach of the standard).
    pub warnings: Vec<String>,
}

/// Runs `dciodvfy` on the Part 10 file `bytes`.
pub fn verify(bytes: &[u8]) -> Verdict {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("object.dcm");
    std::fs::write(&file, bytes).expect("the file is written");
    let out = Command::new("dciodvfy")
        .arg(&file)
        .output()
        .expect("dciodvfy: install Debian's dicom3tools (.ci/run does)");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let lines = |kind: &str| {
        said.lines()
            .filter(|l| l.starts_with(kind))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut errors = lines("Error");
    if !out.status.success() && errors.is_empty() {
        errors.push(format!("dciodvfy ended with {}: {said}", out.status));
    }
    Verdict {
        errors,
        warnings: lines("Warning"),
    }
}

/// Fails with every error `dciodvfy` found in `bytes`, naming `what`.
pub fn assert_valid(bytes: &[u8], what: &str) {
    let verdict = verify(bytes);
    assert!(
        verdict.errors.is_empty(),
        "dciodvfy finds errors in {what}:\n{}",
        verdict.errors.join("\n")
    );
}
