//! The REST API against its own OpenAPI document, checked by schemathesis
//! (a property-based API tester no one here wrote; pinned in
//! `scripts/ensure-tools.sh`, found through `OSTEO_SCHEMATHESIS`), with a
//! token of each role on a fresh server: no 5xx, no status code, content
//! type, header or body that the document does not describe, and no
//! request that violates the document accepted.
//!
//! Not checked here: that every schema-valid request is accepted. Bodies
//! that fit the schema but break a protocol rule (a screening date before
//! the trial opened, a sign-off without the password, a lock with cases
//! open) are refused with the documented 400 or 409; the rules live in the
//! domain, not in the schema.
//!
//! `DELETE /api/v1/tokens/{id}` is left out: the tester would revoke the
//! token it runs with. The token tests in `api.rs` cover it.

use osteo_tests::process::ServerProcess;
use osteo_trial::store::Db;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_document_says_for_every_role() {
    let Some(tester) = std::env::var_os("OSTEO_SCHEMATHESIS") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this test: OSTEO_SCHEMATHESIS must name schemathesis (scripts/test.sh sets it)"
        );
        eprintln!("schemathesis not given (OSTEO_SCHEMATHESIS): skipped outside CI");
        return;
    };
    let mut failed = Vec::new();
    for role in [
        "coordinator",
        "radiologist",
        "statistician",
        "investigator",
        "monitor",
        "admin",
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let server = ServerProcess::fresh(dir.path(), &[]).await;
        let db = Db::connect(&server.url).await.expect("the database");
        let api = server.api(&db, role).await;
        let tester = tester.clone();
        let (base, token) = (server.base.clone(), api.token.clone());
        let workdir = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            // Its cache goes into the temporary directory, not the repository.
            std::process::Command::new(tester)
                .current_dir(&workdir)
                .args(["run", &format!("{base}/api/v1/openapi.json")])
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .args(["--checks", CHECKS])
                .args(["--max-examples", "20", "--seed", "20261204", "--no-color"])
                .args(["--exclude-path", "/api/v1/tokens/{id}"])
                .output()
                .expect("schemathesis runs")
        })
        .await
        .expect("the run ends");
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("generated") || l.contains('❌'))
            .collect();
        eprintln!("{role}: {}", summary.join(" | "));
        if !out.status.success() {
            failed.push(format!("{role}:\n{said}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
