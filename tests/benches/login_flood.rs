//! A sign-in flood against the real binary, and what it does to the trial's
//! own work and to the server's memory (issue 15, point 2).
//!
//! `cargo bench -p osteo-tests --bench login_flood` (after
//! `cargo build --release -p osteo-server`; `OSTEO_EDC_BIN` names another
//! binary) starts `osteo-edc serve` on loopback with a new SQLite database,
//! and then:
//! 1. **quiet**: for `SECONDS`, a coordinator saves a CRF draft, each a real
//!    change, one after another with a pause of `PAUSE_MS`; latency per save.
//! 2. **flood**: the same saves while `RATE` failed sign-ins a second (made-up
//!    usernames, each from one of 250 loopback addresses 127.0.0.2–251, so
//!    that per-address limits do not hide the password work) are sent for
//!    as long as the saves take.
//! 3. **burst**: `BURST` wrong sign-ins at `BURST_AT` at once (again made-up
//!    usernames from many addresses), as an attacker without an account
//!    would; then 30 s idle.
//!
//! The server's resident memory (VmRSS of its process) is sampled every
//! 100 ms. The result is one JSON object on standard output; `audit verify`
//! runs at the end. Settings: the environment variables `SECONDS` (20),
//! `PAUSE_MS` (5), `RATE` (200), `BURST` (300), `BURST_AT` (16),
//! `IDLE_SECONDS` (30).

// A benchmark that cannot go on should stop right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use osteo_tests::process::{rss_mib, RssWatch, ServerProcess};
use osteo_tests::workflow::{crf, enrol};
use osteo_tests::{binary, Api};
use osteo_trial::store::Db;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Percentile `p` (0–100) of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// CRF draft saves of case `id` for `seconds`, one after another with a
/// pause of `pause_ms` between them, each a real change (the age moves by
/// one); their latencies, sorted.
async fn saves(api: &Api, id: i64, seconds: u64, pause_ms: u64) -> Vec<Duration> {
    let mut took = Vec::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut i = 0_u64;
    while Instant::now() < until {
        i += 1;
        let mut data = crf();
        data["age_years"] = json!(10 + i % 80);
        let body = json!({"data": data, "complete": false});
        let t = Instant::now();
        let r = api
            .request(reqwest::Method::PUT, &format!("/cases/{id}/crf"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = r.status().as_u16();
        let _ = r.bytes().await;
        took.push(t.elapsed());
        assert_eq!(status, 200, "a CRF draft save");
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    took.sort();
    took
}

/// Clients, each from its own loopback address (127.0.0.2–251).
fn clients() -> Vec<reqwest::Client> {
    (2..252)
        .map(|last| {
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client")
        })
        .collect()
}

/// How sign-in attempts were answered, by status.
#[derive(Default)]
struct Answers(Mutex<std::collections::BTreeMap<String, u64>>);

impl Answers {
    fn count(&self, what: String) {
        *self.0.lock().unwrap().entry(what).or_default() += 1;
    }
    fn json(&self) -> serde_json::Value {
        json!(self.0.lock().unwrap().clone())
    }
}

/// One failed sign-in with made-up username number `n`.
async fn wrong_sign_in(client: &reqwest::Client, base: &str, n: u64, answers: &Answers) {
    let r = client
        .post(format!("{base}/auth/login"))
        .form(&[
            ("username", format!("nobody{n}")),
            ("password", "not the password".to_owned()),
        ])
        .send()
        .await;
    answers.count(match r {
        Ok(r) => r.status().as_u16().to_string(),
        Err(_) => "no answer".into(),
    });
}

#[tokio::main]
async fn main() {
    let seconds = setting("SECONDS", 20);
    let pause_ms = setting("PAUSE_MS", 5);
    let rate = setting("RATE", 200);
    let burst = setting("BURST", 300);
    let burst_at = setting("BURST_AT", 16) as usize;
    let idle = setting("IDLE_SECONDS", 30);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(dir.path(), &[]).await;
    let (pid, base) = (server.pid(), server.base.clone());
    let db = Db::connect(&server.url).await.expect("the database");
    let api = server.api(&db, "coordinator").await;
    let case = enrol(&api).await;
    // Warm up: the first saves fill the caches and the connection pool.
    saves(&api, case, 2, pause_ms).await;
    let rss_start = rss_mib(pid);

    // 1. Quiet.
    let quiet = saves(&api, case, seconds, pause_ms).await;

    // 2. The same saves under a flood of failed sign-ins.
    let clients = Arc::new(clients());
    let answers = Arc::new(Answers::default());
    let flooding = Arc::new(AtomicBool::new(true));
    let watch = RssWatch::start(pid);
    let flood = {
        let (clients, answers, flooding, base) = (
            clients.clone(),
            answers.clone(),
            flooding.clone(),
            base.clone(),
        );
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sent = 0_u64;
            let mut tasks = tokio::task::JoinSet::new();
            let t = Instant::now();
            while flooding.load(Ordering::SeqCst) {
                every.tick().await;
                let client = clients[(sent % clients.len() as u64) as usize].clone();
                let (answers, base) = (answers.clone(), base.clone());
                tasks.spawn(async move { wrong_sign_in(&client, &base, sent, &answers).await });
                sent += 1;
            }
            let sending = t.elapsed();
            while tasks.join_next().await.is_some() {}
            (sent, sending)
        })
    };
    let flooded = saves(&api, case, seconds, pause_ms).await;
    flooding.store(false, Ordering::SeqCst);
    let (sent, sending) = flood.await.expect("the flood ends");
    let rss_flood_peak = watch.peak_mib();
    let rss_after_flood = rss_mib(pid);

    // 3. A burst of wrong sign-ins, BURST_AT at once.
    let burst_answers = Arc::new(Answers::default());
    let watch = RssWatch::start(pid);
    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..burst_at {
        let (clients, answers, next, base) = (
            clients.clone(),
            burst_answers.clone(),
            next.clone(),
            base.clone(),
        );
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= burst {
                    break;
                }
                let client = &clients[(n % clients.len() as u64) as usize];
                wrong_sign_in(client, &base, 1_000_000 + n, &answers).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let burst_seconds = t.elapsed().as_secs_f64();
    let rss_burst_peak = watch.peak_mib();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let rss_idle = rss_mib(pid);

    let verify = server.audit_verify();
    drop(server);

    let summary = |l: &[Duration]| {
        json!({"p50_ms": percentile(l, 50.0), "p99_ms": percentile(l, 99.0),
               "max_ms": percentile(l, 100.0), "saves": l.len()})
    };
    let out = json!({
        "binary": binary().display().to_string(),
        "password_workers": osteo_trial::accounts::workers(),
        "crf_saves": {
            "quiet": summary(&quiet),
            "under_flood": summary(&flooded),
            "p99_ratio": percentile(&flooded, 99.0) / percentile(&quiet, 99.0),
        },
        "flood": {
            "target_per_second": rate,
            "sent": sent,
            "sent_per_second": sent as f64 / sending.as_secs_f64(),
            "answers": answers.json(),
        },
        "burst": {
            "sign_ins": burst, "at_once": burst_at, "seconds": burst_seconds,
            "answers": burst_answers.json(),
        },
        "rss_mib": {
            "before": rss_start,
            "flood_peak": rss_flood_peak,
            "after_flood": rss_after_flood,
            "burst_peak": rss_burst_peak,
            "after_idle": rss_idle,
            "idle_seconds": idle,
        },
        "audit_verify": {"exit": verify.0, "says": verify.1},
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
}
