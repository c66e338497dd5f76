//! Consistency under faults: the real binary is killed (SIGKILL) in the
//! middle of a burst of concurrent enrolments and started again on the same
//! database. No acknowledged entry is lost, no number is duplicated or
//! skipped, every enrolment has its case, and the audit chain verifies.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{binary, choose_password, fresh_database_url};
use osteo_trial::store::Db;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed (SIGKILL) and reaped when dropped.
struct Server(Child);

impl Server {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `osteo-edc serve` and waits until it answers `/readyz`.
async fn serve(url: &str, dir: &std::path::Path, port: u16) -> Server {
    let server = Server(
        Command::new(binary())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enrols patients from `workers` concurrent clients until `stop` says so;
/// returns the study numbers the server acknowledged.
async fn burst(
    port: u16,
    token: &str,
    workers: usize,
    stop: Arc<AtomicUsize>,
    limit: usize,
) -> Vec<String> {
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (token, ack, stop) = (token.to_owned(), acknowledged.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
            while stop.load(Ordering::SeqCst) < limit {
                let r = client
                    .post(format!("http://127.0.0.1:{port}/api/v1/screenings"))
                    .bearer_auth(&token)
                    .json(&json!({"arm": "prospective", "screening_date": "2025-06-02", "inclusion_met": true,
                                  "exclusions": [], "outcome": "enrolled"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        ack.lock().unwrap().push(v["study_number"].as_str().unwrap().to_owned());
                        stop.fetch_add(1, Ordering::SeqCst);
                    }
                    // The server is gone: an answer never came, the outcome is unknown.
                    _ => break,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = acknowledged.lock().unwrap().clone();
    v
}

#[tokio::test]
async fn a_server_killed_mid_burst_loses_and_duplicates_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let port = free_port();
    let mut server = serve(&url, dir.path(), port).await;
    let db = Db::connect(&url).await.unwrap();
    let coordinator = choose_password(&db, "coordinator").await;
    let (_, token) = osteo_trial::accounts::create_token(
        &db,
        &coordinator.principal(osteo_trial::domain::AuditSource::Api),
        "fault test",
    )
    .await
    .unwrap();
    let token = token.expose().to_owned();

    // Kill the server while four clients are enrolling.
    let count = Arc::new(AtomicUsize::new(0));
    let killer = {
        let count = count.clone();
        tokio::spawn(async move {
            while count.load(Ordering::SeqCst) < 12 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            server.kill();
        })
    };
    let mut acknowledged = burst(port, &token, 4, count.clone(), usize::MAX).await;
    killer.await.unwrap();
    assert!(acknowledged.len() >= 12, "the burst ran before the kill");

    // Start again on the same database and enrol more.
    let mut server = serve(&url, dir.path(), port).await;
    acknowledged.extend(burst(port, &token, 4, Arc::new(AtomicUsize::new(0)), 12).await);
    server.kill();

    let numbers: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT screening_no, study_no FROM screenings ORDER BY screening_no")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let n = numbers.len() as i64;
    assert_eq!(
        numbers.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "screening numbers run without gap or duplicate"
    );
    let mut study: Vec<i64> = numbers.iter().filter_map(|(_, s)| *s).collect();
    study.sort_unstable();
    assert_eq!(
        study,
        (1..=n).collect::<Vec<_>>(),
        "every entry enrolled, study numbers without gap"
    );
    for label in &acknowledged {
        let no: i64 = label[2..].parse().unwrap();
        assert!(
            study.contains(&no),
            "acknowledged {label} is in the database"
        );
    }
    let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        cases, n,
        "every enrolment opened its case in the same transaction"
    );
    let verify = Command::new(binary())
        .args(["audit", "verify"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the audit chain verifies after the kill: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
