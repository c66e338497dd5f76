//! The load benchmark (issue 15, point 1), in its short form: `osteo-edc
//! bench load` on a small generated study, through the binary, on the
//! engine of this run. The full figures (2,200 cases, 1, 8 and 32 clients,
//! release build) are docs/performance.md's.

use osteo_tests::{binary, empty_postgres_database, engine};
use std::process::Command;

fn bench(extra: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args([
            "bench",
            "load",
            "--cases",
            "60",
            "--clients",
            "1,4",
            "--seconds",
            "0.4",
        ])
        .args(extra)
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_load_measures_every_operation_and_the_trail_verifies() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scratch = dir.path().join("scratch");
    let scratch = scratch.to_str().expect("a UTF-8 path");
    let postgres = if engine() == "postgres" {
        Some(empty_postgres_database().await)
    } else {
        None
    };
    let mut args = vec!["--scratch-dir", scratch];
    if let Some(url) = &postgres {
        args.extend(["--postgres", url.as_str()]);
    }
    let out = bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["engine"], engine());
    assert_eq!(report["cases"], 60);
    let rounds = report["rounds"].as_array().expect("rounds");
    let mut seen = Vec::new();
    for r in rounds {
        let requests = r["requests"].as_u64().expect("requests");
        let (p50, p99, max) = (
            r["p50_ms"].as_f64().expect("p50"),
            r["p99_ms"].as_f64().expect("p99"),
            r["max_ms"].as_f64().expect("max"),
        );
        assert!(requests > 0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
        assert!(r["per_second"].as_f64().expect("rate") > 0.0, "{r}");
        seen.push((
            r["op"].as_str().expect("op").to_owned(),
            r["clients"].as_u64().expect("clients"),
        ));
    }
    for op in ["crf_save", "case_read", "worklist_page", "case_page"] {
        for clients in [1, 4] {
            assert!(
                seen.contains(&(op.to_owned(), clients)),
                "{op} at {clients}: {seen:?}"
            );
        }
    }
    // Every acknowledged save is one new CRF version, audited, and the
    // chain verifies with the server's key.
    let audit = &report["audit"];
    assert_eq!(audit["verified"], true, "{audit}");
    let saves = audit["crf_saves_acknowledged"].as_i64().expect("saves");
    assert!(saves > 0);
    assert_eq!(
        audit["crf_versions_written"].as_i64(),
        Some(saves),
        "{audit}"
    );
    assert!(audit["crf_save_audit_rows"].as_i64().expect("rows") >= saves);

    // A second run on the same database is refused: the benchmark writes
    // only into a database of its own.
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs a new folder") || stderr.contains("only on an empty database"),
        "{stderr}"
    );
}
