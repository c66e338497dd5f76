//! Crashes lose nothing acknowledged (issue 15, point 4): the real binary
//! is killed (SIGKILL) at a random moment while four clients enrol
//! patients, save CRF drafts and upload radiographs, and started again on
//! the same database, round after round. After each restart:
//! - every acknowledged enrolment, CRF version and radiograph is there;
//! - screening and study numbers run without gap or duplicate, every
//!   enrolment has its case, CRF versions run 1, 2, … per case;
//! - no half-written record: every stored image's object exists and hashes
//!   to its name;
//! - the audit chain verifies, and the server takes new writes.
//!
//! `FAULT_ROUNDS` sets the number of kills (2 in `make test`);
//! `scripts/fault-rounds.sh N` runs N and prints how many were survived.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::dicom::Radiograph;
use osteo_tests::process::ServerProcess;
use osteo_tests::workflow::{crf, upload};
use osteo_tests::Api;
use osteo_trial::store::Db;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server acknowledged.
#[derive(Default, Clone)]
struct Acknowledged {
    study_numbers: BTreeSet<String>,
    crf_versions: BTreeSet<(i64, i64)>,
    images: BTreeSet<String>,
}

/// A request's status and JSON body; `None` when no answer came (the
/// server was killed: the outcome is unknown).
async fn call(request: reqwest::RequestBuilder) -> Option<(u16, serde_json::Value)> {
    let r = request.send().await.ok()?;
    let status = r.status().as_u16();
    let body = r.json().await.ok()?;
    Some((status, body))
}

/// The body of an answer with status `want`; `None` (and what came, on
/// standard error) otherwise.
fn expect(
    answer: Option<(u16, serde_json::Value)>,
    want: u16,
    what: &str,
) -> Option<serde_json::Value> {
    match answer {
        Some((status, body)) if status == want => Some(body),
        Some((status, body)) => {
            eprintln!("{what}: {status} {body}");
            None
        }
        None => None,
    }
}

/// Screens (and enrols) a patient; the study number, or `None` when no
/// answer came.
async fn screen(api: &Api, screening: &serde_json::Value) -> Option<String> {
    let post = api
        .request(reqwest::Method::POST, "/screenings")
        .json(screening);
    let e = expect(call(post).await, 201, "enrolment")?;
    Some(e["study_number"].as_str().unwrap().to_owned())
}

/// The case id of a study number, from the case list.
async fn case_of(api: &Api, study: &str) -> Option<i64> {
    let cases = expect(
        call(api.request(reqwest::Method::GET, "/cases")).await,
        200,
        "the case list",
    )?;
    Some(
        cases
            .as_array()
            .and_then(|a| a.iter().find(|c| c["study_number"] == study))
            .and_then(|c| c["id"].as_i64())
            .unwrap(),
    )
}

/// One client's writes until the server stops answering: enrol, save a CRF
/// draft, upload a radiograph, again and again.
async fn writer(
    api: Arc<Api>,
    ack: Arc<Mutex<Acknowledged>>,
    count: Arc<AtomicUsize>,
    seeds: Arc<AtomicU16>,
) {
    let screening = json!({"arm": "prospective", "screening_date": "2025-06-02", "inclusion_met": true,
                           "exclusions": [], "outcome": "enrolled"});
    loop {
        let Some(study) = screen(&api, &screening).await else {
            return;
        };
        ack.lock().unwrap().study_numbers.insert(study.clone());
        count.fetch_add(1, Ordering::SeqCst);
        let Some(case) = case_of(&api, &study).await else {
            return;
        };
        let put = api
            .request(reqwest::Method::PUT, &format!("/cases/{case}/crf"))
            .json(&json!({"data": crf(), "complete": false}));
        let Some((200, saved)) = call(put).await else {
            return;
        };
        ack.lock()
            .unwrap()
            .crf_versions
            .insert((case, saved["version"].as_i64().unwrap()));
        count.fetch_add(1, Ordering::SeqCst);
        let seed = seeds.fetch_add(1, Ordering::SeqCst);
        let image = Radiograph::cr("Fault", "AP", seed).bytes();
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(image).file_name("image.dcm"),
        );
        let post = api
            .request(reqwest::Method::POST, &format!("/cases/{case}/images"))
            .multipart(form);
        let Some((200, body)) = call(post).await else {
            return;
        };
        let sha = body["files"][0]["sha256"].as_str().unwrap().to_owned();
        ack.lock().unwrap().images.insert(sha);
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// Checks the database against what was acknowledged.
async fn check(db: &Db, dir: &std::path::Path, ack: &Acknowledged) {
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
        "study numbers without gap"
    );
    for label in &ack.study_numbers {
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
    let versions: Vec<(i64, i64)> =
        sqlx::query_as("SELECT case_id, version FROM crf_versions ORDER BY case_id, version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let mut per_case: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (case, version) in &versions {
        per_case.entry(*case).or_default().push(*version);
    }
    for (case, v) in &per_case {
        assert_eq!(
            v,
            &(1..=v.len() as i64).collect::<Vec<_>>(),
            "CRF versions of case {case}"
        );
    }
    for acked in &ack.crf_versions {
        assert!(
            versions.contains(acked),
            "acknowledged CRF version {acked:?} is there"
        );
    }
    let images: Vec<String> = sqlx::query_scalar("SELECT sha256 FROM case_images")
        .fetch_all(db.pool())
        .await
        .unwrap();
    for sha in &ack.images {
        assert!(images.contains(sha), "acknowledged image {sha} is there");
    }
    for sha in &images {
        let object = dir
            .join("objects")
            .join(&sha[..2])
            .join(format!("{sha}.dcm"));
        let bytes = std::fs::read(&object).unwrap_or_else(|e| panic!("image {sha}'s object: {e}"));
        assert_eq!(
            &osteo_trial::store::sha256_hex(&bytes),
            sha,
            "a whole object"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_killed_at_random_moments_lose_nothing_acknowledged() {
    let rounds: usize = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::fresh(dir.path(), &[]).await;
    let url = server.url.clone();
    let db = Db::connect(&url).await.unwrap();
    let token = server.api(&db, "coordinator").await.token;
    let timeout = Duration::from_secs(30);
    let mut api = Arc::new(Api::with_token(&server.base, &token, timeout));
    let ack = Arc::new(Mutex::new(Acknowledged::default()));
    let seeds = Arc::new(AtomicU16::new(20_000));
    let mut survived = 0;
    for round in 0..rounds {
        // Kill after a random number of acknowledged writes (5–40): in the
        // middle of an enrolment, a CRF save or an upload, whichever runs.
        let at = 5 + rand::random::<u64>() as usize % 36;
        let count = Arc::new(AtomicUsize::new(0));
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..4 {
            writers.spawn(writer(
                api.clone(),
                ack.clone(),
                count.clone(),
                seeds.clone(),
            ));
        }
        while count.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill();
        while writers.join_next().await.is_some() {}
        server = ServerProcess::start(&url, dir.path(), &[]).await;
        // The next writers, and the checks, talk to the new server.
        api = Arc::new(Api::with_token(&server.base, &token, timeout));
        let acknowledged = ack.lock().unwrap().clone();
        check(&db, dir.path(), &acknowledged).await;
        let (code, says) = server.audit_verify();
        assert_eq!(
            code,
            Some(0),
            "round {round}: the audit chain verifies: {says}"
        );
        // The restarted server takes new writes.
        let case = osteo_tests::workflow::enrol(&api).await;
        let (status, body) = upload(
            &api,
            case,
            &[Radiograph::cr("After", "AP", seeds.fetch_add(1, Ordering::SeqCst)).bytes()],
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ack.lock()
            .unwrap()
            .images
            .insert(body["files"][0]["sha256"].as_str().unwrap().to_owned());
        survived += 1;
    }
    let acknowledged = ack.lock().unwrap();
    eprintln!(
        "fault injection: {survived} of {rounds} kills survived; {} enrolments, {} CRF versions, {} radiographs acknowledged, all present",
        acknowledged.study_numbers.len(),
        acknowledged.crf_versions.len(),
        acknowledged.images.len()
    );
}

/// What the server acknowledged of a case's later steps.
#[derive(Default, Clone)]
struct Later {
    signed_reads: BTreeSet<i64>,
    pathology: BTreeSet<(i64, i64)>,
    signed_pathology: BTreeSet<i64>,
}

/// The clients of the later steps, for one server.
struct Team {
    coordinator: Arc<Api>,
    radiologist: Arc<Api>,
}

/// Brings new cases to the blinded read: enrol, a frontal and a lateral
/// view, images complete, the CRF complete, the radiologist assigned.
async fn preparer(api: Arc<Api>, seeds: Arc<AtomicU16>) {
    loop {
        let screening = json!({"arm": "prospective", "screening_date": "2025-06-02",
                               "inclusion_met": true, "exclusions": [], "outcome": "enrolled"});
        let Some(study) = screen(&api, &screening).await else {
            return;
        };
        let Some(case) = case_of(&api, &study).await else {
            return;
        };
        let mut form = reqwest::multipart::Form::new();
        for view in ["AP", "LL"] {
            let seed = seeds.fetch_add(1, Ordering::SeqCst);
            let bytes = Radiograph::cr(&format!("Later{case}"), view, seed).bytes();
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(format!("{view}.dcm")),
            );
        }
        let post = api
            .request(reqwest::Method::POST, &format!("/cases/{case}/images"))
            .multipart(form);
        let steps = [
            post,
            api.request(
                reqwest::Method::POST,
                &format!("/cases/{case}/images/complete"),
            )
            .json(&json!({})),
            api.request(reqwest::Method::PUT, &format!("/cases/{case}/crf"))
                .json(&json!({"data": crf(), "complete": true})),
            api.request(reqwest::Method::POST, &format!("/cases/{case}/readers"))
                .json(&json!({"username": "radiologist"})),
        ];
        for (i, step) in steps.into_iter().enumerate() {
            if expect(call(step).await, 200, &format!("case {case}, step {i}")).is_none() {
                return;
            }
        }
    }
}

/// The radiologist: reads and signs what the worklist holds.
async fn reader(api: Arc<Api>, ack: Arc<Mutex<Later>>, count: Arc<AtomicUsize>) {
    loop {
        let Some((200, work)) = call(api.request(reqwest::Method::GET, "/worklist")).await else {
            return;
        };
        let Some(case) = work.get(0).and_then(|c| c["id"].as_i64()) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let put = api
            .request(reqwest::Method::PUT, &format!("/cases/{case}/read"))
            .json(&osteo_tests::workflow::read());
        if expect(call(put).await, 200, "read").is_none() {
            return;
        }
        let sign = api
            .request(reqwest::Method::POST, &format!("/cases/{case}/read/sign"))
            .json(&json!({"password": osteo_tests::PASSWORD}));
        if expect(call(sign).await, 200, "read signature").is_none() {
            return;
        }
        ack.lock().unwrap().signed_reads.insert(case);
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// The coordinator after the AI lock: enters pathology and signs it.
async fn pathologist(api: Arc<Api>, ack: Arc<Mutex<Later>>, count: Arc<AtomicUsize>) {
    loop {
        let Some((200, cases)) = call(api.request(reqwest::Method::GET, "/cases")).await else {
            return;
        };
        let next = cases.as_array().and_then(|a| {
            a.iter()
                .find(|c| c["state"] == "ai_locked" || c["state"] == "pathology_entered")
                .map(|c| (c["id"].as_i64().unwrap(), c["state"] == "ai_locked"))
        });
        let Some((case, enter)) = next else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if enter {
            let post = api
                .request(reqwest::Method::POST, &format!("/cases/{case}/pathology"))
                .json(&osteo_tests::workflow::pathology());
            let Some(v) = expect(call(post).await, 201, "pathology") else {
                return;
            };
            let version = v["version"].as_i64().unwrap_or(1);
            ack.lock().unwrap().pathology.insert((case, version));
            count.fetch_add(1, Ordering::SeqCst);
        }
        let sign = api
            .request(
                reqwest::Method::POST,
                &format!("/cases/{case}/pathology/sign"),
            )
            .json(&json!({"password": osteo_tests::PASSWORD}));
        if expect(call(sign).await, 200, "pathology signature").is_none() {
            return;
        }
        ack.lock().unwrap().signed_pathology.insert(case);
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// The later steps against the database: what was acknowledged is there,
/// and every case's stage agrees with its records.
async fn check_later(db: &Db, ack: &Later) {
    for case in &ack.signed_reads {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reads WHERE case_id = $1 AND signed_at IS NOT NULL",
        )
        .bind(case)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(n, 1, "the acknowledged read signature of case {case}");
    }
    for (case, version) in &ack.pathology {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pathology_versions WHERE case_id = $1 AND version = $2",
        )
        .bind(case)
        .bind(version)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(n, 1, "acknowledged pathology {case} v{version}");
    }
    let states: Vec<(i64, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.state, \
         (SELECT COUNT(*) FROM reads r WHERE r.case_id = c.id AND r.signed_at IS NOT NULL), \
         (SELECT COUNT(*) FROM predictions p WHERE p.case_id = c.id), \
         (SELECT COUNT(*) FROM pathology_versions v WHERE v.case_id = c.id) \
         FROM cases c ORDER BY c.id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for (case, state, reads, predictions, pathology) in &states {
        let after_reads = ["reads_locked", "ai_locked", "pathology_entered", "complete"]
            .contains(&state.as_str());
        let after_ai = ["ai_locked", "pathology_entered", "complete"].contains(&state.as_str());
        let after_pathology = ["pathology_entered", "complete"].contains(&state.as_str());
        assert_eq!(
            *reads > 0,
            after_reads,
            "case {case} at {state}: signed reads {reads}"
        );
        assert_eq!(
            *predictions,
            i64::from(after_ai),
            "case {case} at {state}: predictions"
        );
        assert_eq!(
            *pathology > 0,
            after_pathology,
            "case {case} at {state}: pathology"
        );
        if ack.signed_pathology.contains(case) {
            assert_eq!(state, "complete", "case {case}'s signed pathology");
        }
    }
}

/// The PI confirms the protocol's rule table (reads wait for it).
async fn confirm_rule_table(pi: &Api) {
    let (status, s) = pi
        .send_json(
            reqwest::Method::PATCH,
            "/study/settings",
            &json!({"rule_version": "acr-2023-stm4"}),
        )
        .await;
    assert_eq!(status, 200, "the PI confirms the rule table: {s}");
}

/// Waits until the model has run on every case whose reads are locked
/// (a restarted server takes up what a killed one left).
async fn ai_catches_up(db: &Db) {
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE state = 'reads_locked'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        if waiting == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{waiting} cases still wait for the AI after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The database lock is whole or absent: the lock flag, the lock history
/// and the audit trail agree.
async fn check_lock(db: &Db, locked: bool) {
    let flag: i64 = sqlx::query_scalar("SELECT locked FROM study_lock WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(flag == 1, locked, "the lock flag");
    let last: Option<String> =
        sqlx::query_scalar("SELECT action FROM lock_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(db.pool())
            .await
            .unwrap();
    assert_eq!(
        last.as_deref() == Some("lock"),
        locked,
        "the lock history ends with {last:?}"
    );
    for (action, audited) in [("lock", "database.lock"), ("unlock", "database.unlock")] {
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lock_events WHERE action = $1")
            .bind(action)
            .fetch_one(db.pool())
            .await
            .unwrap();
        let rows: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND field = 'locked'",
        )
        .bind(audited)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(events, rows, "each {action} event has its audit row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_signatures_ai_locks_pathology_and_the_database_lock_survive_kills() {
    let rounds: usize = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().unwrap();
    // The demonstration study: its demo model is pinned and runs on every
    // case whose reads are locked.
    // A killed server's AI lease must run out before the restarted one
    // takes its case: short here, so that catching up fits the wait.
    let args = ["--ai-workers", "1", "--ai-lease-seconds", "10"];
    let mut server = ServerProcess::fresh(dir.path(), &args).await;
    let url = server.url.clone();
    let db = Db::connect(&url).await.unwrap();
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        for who in [
            "coordinator",
            "radiologist",
            "investigator",
            "statistician",
            "monitor",
        ] {
            t.push(server.api(&db, who).await.token);
        }
        t
    };
    let api = |base: &str, i: usize| Api::with_token(base, &tokens[i], Duration::from_secs(60));
    confirm_rule_table(&api(&server.base, 2)).await;
    let ack = Arc::new(Mutex::new(Later::default()));
    let seeds = Arc::new(AtomicU16::new(40_000));
    let mut survived = 0;
    for round in 0..rounds {
        let team = Team {
            coordinator: Arc::new(api(&server.base, 0)),
            radiologist: Arc::new(api(&server.base, 1)),
        };
        // Kill after a random number (2–9) of acknowledged read signatures
        // and pathology entries and signatures, while the model locks its
        // predictions in between.
        let at = 2 + rand::random::<u64>() as usize % 8;
        let count = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        workers.spawn(preparer(team.coordinator.clone(), seeds.clone()));
        workers.spawn(preparer(team.coordinator.clone(), seeds.clone()));
        workers.spawn(reader(team.radiologist.clone(), ack.clone(), count.clone()));
        workers.spawn(pathologist(
            team.coordinator.clone(),
            ack.clone(),
            count.clone(),
        ));
        let started = std::time::Instant::now();
        while count.load(Ordering::SeqCst) < at {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: the later steps made no progress"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill();
        while workers.join_next().await.is_some() {}
        server = ServerProcess::start(&url, dir.path(), &args).await;
        let acknowledged = ack.lock().unwrap().clone();
        check_later(&db, &acknowledged).await;
        ai_catches_up(&db).await;
        check_later(&db, &acknowledged).await;
        let (code, says) = server.audit_verify();
        assert_eq!(
            code,
            Some(0),
            "round {round}: the audit chain verifies: {says}"
        );
        survived += 1;
        eprintln!(
            "round {round}: killed after {at} acknowledged later steps; {} signed reads, {} pathology entries so far",
            acknowledged.signed_reads.len(),
            acknowledged.pathology.len()
        );
    }

    // The database lock: every case complete or withdrawn (by the PI, with
    // a signature), the plan signed, then the PI's lock with a kill at a
    // random moment after it is sent.
    let pi = api(&server.base, 2);
    let (status, cases) = pi.get_json("/cases").await;
    assert_eq!(status, 200);
    let coordinator = api(&server.base, 0);
    for c in cases.as_array().unwrap() {
        if c["state"] == "pathology_entered" {
            let (status, v) = coordinator
                .send_json(
                    reqwest::Method::POST,
                    &format!("/cases/{}/pathology/sign", c["id"]),
                    &json!({"password": osteo_tests::PASSWORD}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        } else if c["state"] != "complete" {
            let (status, v) = pi
                .send_json(
                    reqwest::Method::POST,
                    &format!("/cases/{}/end", c["id"]),
                    &json!({"kind": "withdrawn", "code": "consent_withdrawn",
                            "reason": "fault test: ended before the lock", "password": osteo_tests::PASSWORD}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }
    }
    let stats = api(&server.base, 3);
    let (status, v) = stats
        .send_json(
            reqwest::Method::POST,
            "/sap",
            &json!({"threshold": 0.5, "intermediate": "excluded", "readers": "each_reader", "conf_level": 0.95}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    for who in [&stats, &pi] {
        let (status, v) = who
            .send_json(
                reqwest::Method::POST,
                "/sap/sign",
                &json!({"password": osteo_tests::PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    // One lock and its undoing (the PI's and the monitor's signatures),
    // timed; then locks killed at a random moment within that time after
    // the request left, or half as long again (the PI's password check,
    // the lock's transaction, its export), each followed by a restart and
    // the checks, and by the undoing of an interim lock that was taken.
    let monitor_index = 4;
    let unlock = |base: String| async move {
        for who in [2, monitor_index] {
            let (status, v) = api(&base, who)
                .send_json(
                    reqwest::Method::POST,
                    "/study/unlock",
                    &json!({"password": osteo_tests::PASSWORD, "reason": "fault test: lock again"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }
    };
    let started = std::time::Instant::now();
    let (status, v) = pi
        .send_json(
            reqwest::Method::POST,
            "/study/lock",
            &json!({"password": osteo_tests::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let takes = started.elapsed();
    check_lock(&db, true).await;
    unlock(server.base.clone()).await;
    check_lock(&db, false).await;
    let (mut locked_kills, mut unlocked_kills) = (0, 0);
    for round in 0..rounds.clamp(2, 10) {
        let pi = api(&server.base, 2);
        let lock = pi
            .request(reqwest::Method::POST, "/study/lock")
            .json(&json!({"password": osteo_tests::PASSWORD}));
        // Up to half as long again: some kills land just after the commit.
        let delay =
            Duration::from_micros(rand::random::<u64>() % (takes.as_micros() as u64 * 3 / 2 + 1));
        let sent = tokio::spawn(call(lock));
        tokio::time::sleep(delay).await;
        server.kill();
        let answer = sent.await.unwrap();
        server = ServerProcess::start(&url, dir.path(), &[]).await;
        let pi = api(&server.base, 2);
        let (status, lock) = pi.get_json("/study/lock").await;
        assert_eq!(status, 200, "{lock}");
        let locked = lock["locked"] == true;
        if answer.is_some_and(|(s, _)| s == 200) {
            assert!(
                locked,
                "lock round {round}: an acknowledged lock is there: {lock}"
            );
        }
        check_lock(&db, locked).await;
        let (code, says) = server.audit_verify();
        assert_eq!(
            code,
            Some(0),
            "lock round {round}: the audit chain verifies: {says}"
        );
        if locked {
            locked_kills += 1;
            unlock(server.base.clone()).await;
            check_lock(&db, false).await;
        } else {
            unlocked_kills += 1;
        }
    }
    let pi = api(&server.base, 2);
    let (status, v) = pi
        .send_json(
            reqwest::Method::POST,
            "/study/lock",
            &json!({"password": osteo_tests::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "the lock is taken after the kills: {v}");
    check_lock(&db, true).await;
    // Locked data stays locked.
    let coordinator = api(&server.base, 0);
    let case = cases.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let (status, _) = coordinator
        .send_json(
            reqwest::Method::PUT,
            &format!("/cases/{case}/crf"),
            &json!({"data": crf(), "complete": true, "reason": "after the lock"}),
        )
        .await;
    assert!(
        status == 409 || status == 423,
        "a write after the lock: {status}"
    );
    let acknowledged = ack.lock().unwrap();
    eprintln!(
        "fault injection (later steps): {survived} of {rounds} kills survived; {} kills within 1.5 × the {} ms a database lock \
         takes ({locked_kills} found it locked, {unlocked_kills} not locked), each consistent; {} read signatures, \
         {} pathology entries, {} signatures acknowledged",
        locked_kills + unlocked_kills,
        takes.as_millis(),
        acknowledged.signed_reads.len(),
        acknowledged.pathology.len(),
        acknowledged.signed_pathology.len()
    );
}

/// Two servers on one database (issue 15, point 6), behind no balancer
/// but each taking half the clients: enrolments on both at once, reads and
/// pathology on one, the model running on both; then one is killed in the
/// middle. Afterwards numbering has no gap or duplicate, every acknowledged
/// step is there, every case whose reads are locked got exactly one
/// prediction (the survivor takes over the killed server's lease once it
/// runs out), the model ran once per case but for that one take-over, a
/// session opened on one server works on the other and ends on both, and
/// the audit chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_share_the_work_and_survive_one_being_killed() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let lease = ["--ai-workers", "1", "--ai-lease-seconds", "3"];
    let mut a = ServerProcess::fresh(dir_a.path(), &lease).await;
    let url = a.url.clone();
    // The second shares the first's object store and audit key, as servers
    // behind one balancer share a bucket and a key.
    let objects = format!("file://{}", dir_a.path().join("objects").display());
    let key = dir_a
        .path()
        .join(osteo_server::config::AUDIT_KEY_FILE)
        .display()
        .to_string();
    let mut b_args = lease.to_vec();
    b_args.extend(["--object-store", &objects, "--audit-key", &key]);
    let mut b = ServerProcess::start(&url, dir_b.path(), &b_args).await;
    b.owner_url = a.owner_url.clone();
    let db = Db::connect(&url).await.unwrap();
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        for who in ["coordinator", "radiologist", "investigator"] {
            t.push(a.api(&db, who).await.token);
        }
        t
    };
    let api =
        |base: &str, i: usize| Arc::new(Api::with_token(base, &tokens[i], Duration::from_secs(60)));
    confirm_rule_table(&api(&b.base, 2)).await;

    // A session opened on one server is one on the other, and a sign-out
    // on either ends it on both (cookies go by host, not port).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .post(format!("{}/auth/login", a.base))
        .header("Origin", &a.base)
        .form(&[
            ("username", "coordinator"),
            ("password", osteo_tests::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(osteo_tests::location(&r), "/", "signed in on the first");
    let r = browser
        .get(format!("{}/cases", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session holds on the second");

    let ack = Arc::new(Mutex::new(Later::default()));
    let seeds = Arc::new(AtomicU16::new(50_000));
    let count = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(preparer(api(&a.base, 0), seeds.clone()));
    workers.spawn(preparer(api(&b.base, 0), seeds.clone()));
    // The reads go to the first server, whose model is woken by each one.
    workers.spawn(reader(api(&a.base, 1), ack.clone(), count.clone()));
    workers.spawn(pathologist(api(&b.base, 0), ack.clone(), count.clone()));
    let wait_for = |n: usize| {
        let count = count.clone();
        async move {
            let started = std::time::Instant::now();
            while count.load(Ordering::SeqCst) < n {
                assert!(
                    started.elapsed() < Duration::from_secs(180),
                    "the later steps made no progress"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(3).await;
    // Killed while its model runs on a case, holding the case's lease.
    let holder = format!("pid{}-%", a.pid());
    let started = std::time::Instant::now();
    let taken_over: i64 = loop {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT case_id FROM ai_leases WHERE holder LIKE $1 AND expires_at > $2",
        )
        .bind(&holder)
        .bind(osteo_trial::store::now_utc())
        .fetch_optional(db.pool())
        .await
        .unwrap();
        if let Some(case) = held {
            a.kill();
            break case;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first server's model never took a case"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // The second goes on alone (the first's clients stop at its death).
    let at_kill = count.load(Ordering::SeqCst);
    workers.spawn(reader(api(&b.base, 1), ack.clone(), count.clone()));
    wait_for(at_kill + 4).await;
    workers.abort_all();
    while workers.join_next().await.is_some() {}

    ai_catches_up(&db).await;
    check(&db, dir_a.path(), &Acknowledged::default()).await;
    let acknowledged = ack.lock().unwrap().clone();
    check_later(&db, &acknowledged).await;
    let (predictions, claims): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM predictions), \
         (SELECT CAST(COALESCE(SUM(claims), 0) AS BIGINT) FROM ai_leases)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(predictions >= 2, "{predictions} predictions");
    let (claims_of_it, by): (i64, String) =
        sqlx::query_as("SELECT claims, holder FROM ai_leases WHERE case_id = $1")
            .bind(taken_over)
            .fetch_one(db.pool())
            .await
            .unwrap();
    if claims_of_it == 1 {
        // The first server finished that run in the moment before the kill.
        assert_eq!(claims, predictions, "the model ran once per case");
    } else {
        assert_eq!(claims_of_it, 2, "case {taken_over} was taken over once");
        assert!(
            !by.starts_with(&format!("pid{}-", a.pid())),
            "by the second server"
        );
        assert_eq!(
            claims,
            predictions + 1,
            "the model ran once per case, and twice on the case taken over"
        );
    }
    let per_server: Vec<String> = sqlx::query_scalar("SELECT DISTINCT holder FROM ai_leases")
        .fetch_all(db.pool())
        .await
        .unwrap();
    eprintln!(
        "{predictions} predictions, {claims} model runs, by {} servers (case {taken_over} taken over); {} signed reads, {} pathology entries",
        per_server.len(),
        acknowledged.signed_reads.len(),
        acknowledged.pathology.len()
    );

    let r = browser
        .post(format!("{}/auth/logout", b.base))
        .header("Origin", &b.base)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let restarted = ServerProcess::start(&url, dir_a.path(), &lease).await;
    let r = browser
        .get(format!("{}/cases", restarted.base))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200, "signed out on one is signed out on all");
    let (code, says) = restarted.audit_verify();
    assert_eq!(code, Some(0), "the audit chain verifies: {says}");
    drop(b);
}
