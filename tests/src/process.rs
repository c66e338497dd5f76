//! The real binary as a server process: started on a free loopback port
//! with its own data directory and database, watched for its resident
//! memory, killed when dropped. Used where a test or a benchmark measures
//! the process itself (memory, crashes, more than one server).

use crate::{binary, choose_password, fresh_database, Api};
use osteo_trial::store::Db;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An `osteo-edc serve` process; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub url: String,
    /// The database's owner (PostgreSQL; on SQLite the same as `url`).
    pub owner_url: String,
    pub data_dir: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ServerProcess {
    /// Starts `serve` on database `url` with data directory `data_dir` and
    /// the `extra` arguments, and waits until it is ready (two minutes at
    /// most).
    pub async fn start(url: &str, data_dir: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_logging(url, data_dir, extra, "warn").await
    }

    /// [`ServerProcess::start`] with the log filter `log` (`RUST_LOG`); the
    /// log goes to `server.log` in the data directory.
    pub async fn start_logging(
        url: &str,
        data_dir: &Path,
        extra: &[&str],
        log: &str,
    ) -> ServerProcess {
        let port = free_port();
        std::fs::create_dir_all(data_dir).expect("the data directory");
        let log_file = std::fs::File::create(data_dir.join("server.log")).expect("a log file");
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(binary())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--demo-cases", "0"])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the binary starts");
        let mut server = ServerProcess {
            child,
            base,
            url: url.to_owned(),
            owner_url: url.to_owned(),
            data_dir: data_dir.to_path_buf(),
        };
        server.wait_ready().await;
        server
    }

    /// A server on a new database in `dir`.
    pub async fn fresh(dir: &Path, extra: &[&str]) -> ServerProcess {
        let fresh = fresh_database(dir).await;
        let mut server = ServerProcess::start(&fresh.url, dir, extra).await;
        server.owner_url = fresh.owner_url;
        server
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while !reqwest::get(format!("{}/readyz", self.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited while starting: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An API client with a new token of `username` (its password replaced
    /// first, as a one-time password cannot hold a token).
    pub async fn api(&self, db: &Db, username: &str) -> Api {
        let user = choose_password(db, username).await;
        Api::with_new_token(db, &user, &self.base).await
    }

    /// `osteo-edc audit verify` on this server's database: its exit code
    /// and what it printed.
    pub fn audit_verify(&self) -> (Option<i32>, String) {
        let out = Command::new(binary())
            .args(["audit", "verify"])
            .env("DATABASE_URL", &self.url)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .expect("audit verify runs");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_owned(),
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The resident memory of process `pid`, in MiB (0 when it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a process's resident memory every 50 ms and keeps the peak
/// until told to stop.
pub struct RssWatch {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, done) = (peak_kib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max((rss_mib(pid) * 1024.0) as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssWatch { peak_kib, stop }
    }

    /// The peak so far, in MiB; the watch stops.
    pub fn peak_mib(self) -> f64 {
        self.stop.store(true, Ordering::SeqCst);
        self.peak_kib.load(Ordering::SeqCst) as f64 / 1024.0
    }
}
