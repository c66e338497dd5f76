//! A hard bound on reading one upload: before the server parses a file
//! itself, a child process (`osteo-edc images guard`, the same binary) reads
//! and decodes it under a time limit and an address-space limit. A file that
//! makes the parser or a decoder loop or reserve gigabytes kills only that
//! child — the upload is refused with the reason and the server carries on.
//! Once the child has read the file within the limits, the server's own
//! parse of the same bytes is known to finish.
//!
//! The child's verdict itself is not trusted or needed: it exits 0 after
//! reading the file whatever it found, and the server's checks then give
//! the exact, typed reason for a refusal.

use super::IngestError;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The child's default address-space limit, MiB (`serve --parse-memory-mib`).
pub const DEFAULT_MEMORY_MIB: u64 = 2048;

/// How the guard runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBound {
    /// The `osteo-edc` binary.
    pub program: PathBuf,
    /// The child's address-space limit, MiB.
    pub memory_mib: u64,
}

impl ParseBound {
    /// The running binary as the guard, with `memory_mib` of address space.
    pub fn this_binary(memory_mib: u64) -> Option<ParseBound> {
        std::env::current_exe().ok().map(|program| ParseBound {
            program,
            memory_mib,
        })
    }

    /// Reads `bytes` in a child process within `limit` and the memory bound.
    pub async fn check(&self, bytes: &[u8], limit: Duration) -> Result<(), IngestError> {
        // `ulimit -v` (kibibytes) through the shell: no unsafe code here.
        let script = format!(
            "ulimit -v {} && exec \"$0\" images guard",
            self.memory_mib * 1024
        );
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&self.program)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| IngestError::Storage(format!("the upload guard did not start: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let data = bytes.to_vec();
        let feed = async move {
            // A child that dies early closes its end: that is its answer.
            let _ = stdin.write_all(&data).await;
            drop(stdin);
        };
        let run = async {
            feed.await;
            child.wait().await
        };
        match tokio::time::timeout(limit, run).await {
            Err(_) => Err(IngestError::Timeout(limit.as_secs().max(1))),
            Ok(Err(e)) => Err(IngestError::Storage(format!(
                "the upload guard failed: {e}"
            ))),
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(_)) => Err(IngestError::Bounds(self.memory_mib)),
        }
    }
}

/// The child's side: reads a file from standard input and inspects it
/// (parse, checks, decode). Exits 0 once it has an answer; an answer that
/// takes too long or too much memory never comes.
pub fn child_main() -> std::process::ExitCode {
    use std::io::Read;
    let mut bytes = Vec::new();
    if std::io::stdin().read_to_end(&mut bytes).is_err() {
        return std::process::ExitCode::from(3);
    }
    let verdict = super::inspect(&bytes).map(|_| ());
    if verdict.is_err() {
        // A parser that meets a failed allocation may report a damaged
        // file: an answer given for want of memory is no answer. If a
        // buffer the size of the file cannot be had now, the file needs
        // more memory than the bound allows (exit non-zero: the bound's
        // refusal), whatever the parser said.
        let mut probe: Vec<u8> = Vec::new();
        if probe.try_reserve_exact(bytes.len().max(1 << 20)).is_err() {
            return std::process::ExitCode::from(4);
        }
    }
    println!(
        "{}",
        verdict.map_or_else(|e| e.to_string(), |()| "ok".into())
    );
    std::process::ExitCode::SUCCESS
}
