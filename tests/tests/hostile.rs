//! Hostile clients against the real binary (issue 15, point 7): uploads
//! made to exhaust the server, and bodies no honest client sends.

use osteo_tests::dicom::{DeflateBomb, Radiograph};
use osteo_tests::process::{rss_mib, RssWatch, ServerProcess};
use osteo_tests::workflow::{enrol, upload};
use osteo_trial::store::Db;

/// Four deflated-DICOM bombs (two of 2 MB inflating to 2 GB, two of 4 MB
/// inflating to 4 GB) sent at once
/// are each refused with the reason, nothing is stored, and the server's
/// own resident memory stays under 300 MiB throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_deflate_bombs_at_once_are_refused_and_the_server_stays_small() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(dir.path(), &[]).await;
    let db = Db::connect(&server.url).await.expect("the database");
    let api = server.api(&db, "coordinator").await;
    let case = enrol(&api).await;
    let (two, four) = (
        DeflateBomb::new(2_000_000_000),
        DeflateBomb::new(4_000_000_000),
    );
    let files: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let bomb = if i % 2 == 0 { &two } else { &four };
            bomb.file(&Radiograph::cr("Bomb", "AP", 900 + i))
        })
        .collect();
    for f in &files {
        assert!(f.len() < 5_000_000, "a small file: {} bytes", f.len());
    }
    let before = rss_mib(server.pid());
    let watch = RssWatch::start(server.pid());
    let api = std::sync::Arc::new(api);
    let mut sent = tokio::task::JoinSet::new();
    for f in files {
        let api = api.clone();
        sent.spawn(async move { upload(&api, case, &[f], Some("frontal")).await });
    }
    let answers = sent.join_all().await;
    let peak = watch.peak_mib();
    for (status, body) in &answers {
        assert_eq!(*status, 400, "{body}");
        let error = body["files"][0]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("inflates to more than"),
            "the reason is given: {body}"
        );
    }
    assert!(
        peak < 300.0,
        "the server's resident memory peaked at {peak:.0} MiB (before: {before:.0} MiB)"
    );
    let stored: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM case_images")
        .fetch_one(db.pool())
        .await
        .expect("a count");
    assert_eq!(stored.0, 0, "nothing is stored");
    let (code, says) = server.audit_verify();
    assert_eq!(code, Some(0), "{says}");
    eprintln!("four deflate bombs: resident memory {before:.0} MiB before, peak {peak:.0} MiB");
}

/// The audit trail's length and the case's CRF versions: what a refused
/// request must leave as it was.
async fn footprint(db: &Db) -> (i64, i64) {
    let audit: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
        .fetch_one(db.pool())
        .await
        .expect("a count");
    let crf: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM crf_versions")
        .fetch_one(db.pool())
        .await
        .expect("a count");
    (audit.0, crf.0)
}

/// Bodies no honest client sends — JSON nested 100,000 deep, 64 MiB of
/// JSON, bytes that are not UTF-8, to the API and to the forms — each get a
/// 4xx, the server answers on, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_huge_and_non_utf8_bodies_get_a_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(dir.path(), &[]).await;
    let db = Db::connect(&server.url).await.expect("the database");
    let api = server.api(&db, "coordinator").await;
    let case = enrol(&api).await;
    let before = footprint(&db).await;
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_crf = format!(
        r#"{{"data": {{"age_years": {}}}, "complete": false}}"#,
        "[".repeat(50_000)
    );
    let huge = format!(r#"{{"data": {{"notes": "{}"}}}}"#, "x".repeat(64 << 20));
    let mut not_utf8 = br#"{"data": {"age_years": 40, "sex": ""#.to_vec();
    not_utf8.extend_from_slice(&[0xFF, 0xFE, 0xC3]);
    not_utf8.extend_from_slice(br#""}, "complete": false}"#);
    let crf = format!("/cases/{case}/crf");
    let queries = format!("/cases/{case}/queries");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("nested 100,000 deep", nested.into_bytes()),
        ("nested inside the CRF", deep_crf.into_bytes()),
        ("64 MiB", huge.into_bytes()),
        ("not UTF-8", not_utf8.clone()),
    ];
    for (what, body) in &bodies {
        for path in [crf.as_str(), "/screenings", queries.as_str()] {
            let method = if path == crf {
                reqwest::Method::PUT
            } else {
                reqwest::Method::POST
            };
            let sent = api
                .request(method, path)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            // The server answers 413 as soon as a body passes its limit and
            // stops reading: a client still writing the rest of 64 MiB may
            // see the connection close before it reads that answer.
            let r = match sent {
                Err(e) if body.len() > 32 << 20 && e.is_request() => continue,
                sent => sent.expect("the server answers"),
            };
            let status = r.status().as_u16();
            if body.len() > 32 << 20 {
                assert_eq!(status, 413, "{what} to {path}");
            }
            assert!(
                (400..500).contains(&status),
                "{what} to {path}: {status} {}",
                r.text().await.unwrap_or_default()
            );
        }
    }
    // The same to a form, signed in through the page.
    let page = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let mut form = b"username=coordinator&password=".to_vec();
    form.extend_from_slice(&[0xFF, 0xFE]);
    let r = page
        .post(format!("{}/auth/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("the server answers");
    assert!(
        r.status().is_client_error() || r.status().is_redirection(),
        "a form that is not UTF-8: {}",
        r.status()
    );
    let (status, _) = api.get_json(&format!("/cases/{case}")).await;
    assert_eq!(status, 200, "the server answers on");
    let last: (String, String) =
        sqlx::query_as("SELECT action, entity FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(db.pool())
            .await
            .expect("the last audit row");
    assert_eq!(
        footprint(&db).await,
        before,
        "nothing changed; last audited: {last:?}"
    );
}
