//! CDISC's own schema as the judge of our ODM files: `xmllint` (Debian's
//! `libxml2-utils`, which `.ci/run` installs) validates a file against
//! `ODM1-3-2.xsd`, copied with its licence into `tests/data/odm-1.3.2/`.
//! Every import of the schema is local, and `--nonet` keeps it so.

use std::path::PathBuf;
use std::process::Command;

/// The ODM 1.3.2 schema in the repository.
pub fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/odm-1.3.2/ODM1-3-2.xsd")
}

/// Validates `xml` against the ODM 1.3.2 schema; the validator's complaints
/// when it does not validate.
pub fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("odm.xml");
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema())
        .arg(&file)
        .output()
        .map_err(|e| format!("xmllint (Debian's libxml2-utils) must be installed: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
