//! Operations (issue 15, point 8): `/metrics` in Prometheus's format, and
//! JSON logs in which each request's lines carry its id.

use osteo_tests::process::ServerProcess;
use osteo_tests::workflow::enrol;
use osteo_trial::store::Db;

/// One sample's value in Prometheus text: the line starting with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_are_closed_to_strangers() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(
        dir.path(),
        &["--metrics-token", "scrape-secret", "--trust-forwarded-for"],
    )
    .await;
    let db = Db::connect(&server.url).await.expect("the database");
    let api = server.api(&db, "coordinator").await;
    let case = enrol(&api).await;
    for _ in 0..3 {
        let (status, _) = api.get_json(&format!("/cases/{case}")).await;
        assert_eq!(status, 200);
    }
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    // Loopback: allowed.
    let r = client.get(&url).send().await.expect("an answer");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.expect("text");
    let shown = sample(
        &text,
        r#"osteo_http_requests_total{method="GET",route="/api/v1/cases/{id}",status="200"}"#,
    );
    assert_eq!(shown, Some(3.0), "{text}");
    assert!(
        sample(
            &text,
            r#"osteo_http_request_duration_seconds_count{method="GET",route="/api/v1/cases/{id}"}"#
        ) == Some(3.0),
        "{text}"
    );
    let audit_rows: (i64,) = sqlx::query_as("SELECT MAX(seq) FROM audit_log")
        .fetch_one(db.pool())
        .await
        .expect("a count");
    assert_eq!(
        sample(&text, "osteo_audit_rows "),
        Some(audit_rows.0 as f64),
        "{text}"
    );
    assert_eq!(sample(&text, "osteo_ai_queue_cases "), Some(0.0), "{text}");
    assert!(sample(&text, "osteo_db_pool_connections ").is_some_and(|n| n >= 1.0));
    assert!(
        !text.contains(&format!("/cases/{case}\"")),
        "no case number in a label"
    );
    // From elsewhere (behind the trusted proxy): only with the token.
    let stranger = client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("an answer");
    assert_eq!(stranger.status(), 404);
    let wrong = client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth("guess")
        .send()
        .await
        .expect("an answer");
    assert_eq!(wrong.status(), 404);
    let scraper = client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("an answer");
    assert_eq!(scraper.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_each_request_id() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = osteo_tests::fresh_database_url(dir.path()).await;
    let server = ServerProcess::start_logging(
        &url,
        dir.path(),
        &["--log-format", "json"],
        "info,sqlx=warn",
    )
    .await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("an answer");
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // The proxy's id is kept.
    let r = client
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "from-the-proxy-42")
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.headers()["x-request-id"], "from-the-proxy-42");
    let mut found = Vec::new();
    for _ in 0..50 {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| {
                [id.as_str(), "from-the-proxy-42"]
                    .contains(&l["span"]["request_id"].as_str().unwrap_or_default())
            })
            .collect();
        if found.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        found.len() >= 2,
        "a JSON line per request with its id: {found:?}"
    );
    for line in &found {
        assert_eq!(line["span"]["path"], "/healthz", "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
}
