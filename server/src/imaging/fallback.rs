//! Decoding the compressed transfer syntaxes dicom-rs cannot, with DCMTK
//! (Debian's `dcmtk`, already what the tests read stored files back with):
//! `dcmdjpeg` for JPEG — notably 12-bit JPEG Extended (Process 2 & 4),
//! common for CR, which dicom-rs's JPEG decoder does not support — and
//! `dcmdjpls` for JPEG-LS lossless and near-lossless.
//!
//! Only when dicom-rs fails: the file goes through the tool in a child
//! process with a time limit (killed when it runs over, so a hostile file
//! cannot stall the server), comes back uncompressed (explicit VR little
//! endian), and is then checked, de-identified and stored like any other.
//! The SHA-256 of the file as uploaded is kept for provenance, as always.
//! Without the tool installed the file is refused with its transfer syntax
//! named and the package to install.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Transfer syntaxes with a fallback, and the DCMTK tool that decodes them.
pub const TOOLS: &[(&str, &str, &str)] = &[
    (
        "1.2.840.10008.1.2.4.50",
        "JPEG Baseline (Process 1)",
        "dcmdjpeg",
    ),
    (
        "1.2.840.10008.1.2.4.51",
        "JPEG Extended (Process 2 & 4)",
        "dcmdjpeg",
    ),
    (
        "1.2.840.10008.1.2.4.57",
        "JPEG Lossless (Process 14)",
        "dcmdjpeg",
    ),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless (Process 14, SV1)",
        "dcmdjpeg",
    ),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", "dcmdjpls"),
    (
        "1.2.840.10008.1.2.4.81",
        "JPEG-LS Near-Lossless",
        "dcmdjpls",
    ),
];

/// The longest a fallback decoder may run on one file.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// The tool and the syntax's name for a transfer syntax UID.
pub fn tool_for(ts: &str) -> Option<(&'static str, &'static str)> {
    TOOLS
        .iter()
        .find(|(uid, _, _)| *uid == ts)
        .map(|(_, name, tool)| (*name, *tool))
}

/// Runs `tool in.dcm out.dcm` on the file and returns the output file.
pub fn decompress(bytes: &[u8], tool: &str, limit: Duration) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, bytes).map_err(|e| e.to_string())?;
    run(tool, &input, &output, limit)?;
    std::fs::read(&output).map_err(|e| format!("{tool} wrote nothing: {e}"))
}

fn run(tool: &str, input: &Path, output: &Path, limit: Duration) -> Result<(), String> {
    // Messages go to a file, never a pipe that could fill and block the tool.
    let messages = output.with_extension("log");
    let log = std::fs::File::create(&messages).map_err(|e| e.to_string())?;
    let mut child = Command::new(tool)
        .arg(input)
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| {
            format!("{tool} is not available ({e}); install Debian's dcmtk to accept this transfer syntax")
        })?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let err = std::fs::read_to_string(&messages).unwrap_or_default();
                let first = err
                    .lines()
                    .find(|l| l.starts_with("E:"))
                    .unwrap_or(err.trim());
                return Err(format!(
                    "{tool} failed ({status}): {}",
                    first.chars().take(300).collect::<String>()
                ));
            }
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{tool} took longer than {} s and was stopped",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
