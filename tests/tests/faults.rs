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
        let post = api
            .request(reqwest::Method::POST, "/screenings")
            .json(&screening);
        let Some((201, e)) = call(post).await else {
            return;
        };
        let study = e["study_number"].as_str().unwrap().to_owned();
        ack.lock().unwrap().study_numbers.insert(study.clone());
        count.fetch_add(1, Ordering::SeqCst);
        let Some((200, cases)) = call(api.request(reqwest::Method::GET, "/cases")).await else {
            return;
        };
        let case = cases
            .as_array()
            .and_then(|a| a.iter().find(|c| c["study_number"] == study.as_str()))
            .and_then(|c| c["id"].as_i64())
            .unwrap();
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
    let client = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let mut api = Arc::new(Api {
        base: server.base.clone(),
        token: token.clone(),
        client: client(),
    });
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
        api = Arc::new(Api {
            base: server.base.clone(),
            token: token.clone(),
            client: client(),
        });
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
