//! Backups that restore (issue 15, point 5), through the real binary: a
//! backup taken while the server writes, verified, restored into an empty
//! data directory (or database) and served again; and a damaged backup is
//! named.

use osteo_tests::dicom::Radiograph;
use osteo_tests::process::ServerProcess;
use osteo_tests::workflow::{crf, enrol, upload};
use osteo_tests::{binary, empty_postgres_database, engine};
use osteo_trial::store::Db;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// `osteo-edc ARGS` with `DATABASE_URL` set to `url` (or unset).
fn edc(url: Option<&str>, data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(binary());
    cmd.args(args).arg("--data-dir").arg(data_dir);
    cmd.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("the binary runs")
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_a_write_burst_verifies_restores_and_serves() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(dir.path(), &[]).await;
    let db = Db::connect(&server.url).await.expect("the database");
    let api = Arc::new(server.api(&db, "coordinator").await);
    let first = enrol(&api).await;
    let (status, body) = upload(
        &api,
        first,
        &[Radiograph::cr("Backup", "AP", 7001).bytes()],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The burst: enrolments, CRF saves and uploads, until told to stop.
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicU64::new(0));
    let mut burst = tokio::task::JoinSet::new();
    for worker in 0..3_u16 {
        let (api, writing, written) = (api.clone(), writing.clone(), written.clone());
        burst.spawn(async move {
            let mut n = 0_u16;
            while writing.load(Ordering::SeqCst) {
                n += 1;
                let case = enrol(&api).await;
                let r = api
                    .request(reqwest::Method::PUT, &format!("/cases/{case}/crf"))
                    .json(&json!({"data": crf(), "complete": false}))
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(r.status(), 200);
                let image = Radiograph::cr("Burst", "AP", 8000 + worker * 1000 + n).bytes();
                let (status, body) = upload(&api, case, &[image], None).await;
                assert_eq!(status, 200, "{body}");
                written.fetch_add(3, Ordering::SeqCst);
            }
        });
    }
    while written.load(Ordering::SeqCst) < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = dir.path().join("backup");
    let backup_url = server.owner_url.clone();
    let (data_dir, out_dir) = (dir.path().to_path_buf(), out.clone());
    let taken = tokio::task::spawn_blocking(move || {
        edc(
            Some(&backup_url),
            &data_dir,
            &["backup", "--out", &out_dir.to_string_lossy()],
        )
    })
    .await
    .expect("the backup ran");
    let during = written.load(Ordering::SeqCst);
    // Writes went on after the backup too.
    while written.load(Ordering::SeqCst) < during + 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    writing.store(false, Ordering::SeqCst);
    while let Some(r) = burst.join_next().await {
        r.expect("the burst's writes succeed");
    }
    assert!(taken.status.success(), "backup: {}", said(&taken));
    assert!(said(&taken).contains("backup in"), "{}", said(&taken));

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("a manifest"))
            .expect("JSON");
    let counts = &manifest["counts"];
    let live_cases: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases")
        .fetch_one(db.pool())
        .await
        .expect("a count");
    let backed_up = counts["cases"].as_i64().expect("a count");
    assert!(
        backed_up >= 3 && backed_up < live_cases.0,
        "a consistent copy from during the burst: {backed_up} of {} cases",
        live_cases.0
    );
    let images = counts["case_images"].as_i64().expect("a count");
    assert!(
        (1..=backed_up).contains(&images),
        "at most one image per case: {images} images of {backed_up} cases"
    );

    let verified = edc(
        None,
        dir.path(),
        &["backup", "verify", &out.to_string_lossy()],
    );
    assert!(verified.status.success(), "{}", said(&verified));
    if engine() == "postgres" {
        assert!(
            said(&verified).contains("audit trail NOT walked"),
            "{}",
            said(&verified)
        );
        // With a scratch database the dump is restored there and its chain walked.
        let scratch = empty_postgres_database().await;
        let walked = edc(
            None,
            dir.path(),
            &[
                "backup",
                "verify",
                &out.to_string_lossy(),
                "--scratch-database",
                &scratch,
            ],
        );
        assert!(walked.status.success(), "{}", said(&walked));
        assert!(
            said(&walked).contains("audit trail intact"),
            "{}",
            said(&walked)
        );
    } else {
        assert!(
            said(&verified).contains("audit trail intact"),
            "{}",
            said(&verified)
        );
    }

    // Restore into an empty place, and serve it.
    let target = tempfile::tempdir().expect("a temporary directory");
    let restore_url = match engine() {
        "postgres" => Some(empty_postgres_database().await),
        _ => None,
    };
    let restored = edc(
        restore_url.as_deref(),
        target.path(),
        &["restore", &out.to_string_lossy()],
    );
    assert!(restored.status.success(), "restore: {}", said(&restored));
    assert!(
        said(&restored).contains("audit trail intact"),
        "{}",
        said(&restored)
    );
    let url = restore_url
        .unwrap_or_else(|| format!("sqlite://{}", target.path().join("osteo-edc.db").display()));
    let again = edc(
        Some(&url),
        target.path(),
        &["restore", &out.to_string_lossy()],
    );
    assert!(
        !again.status.success(),
        "a second restore over the first is refused"
    );
    let copy = Db::connect(&url).await.expect("the restored database");
    let restored_cases: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases")
        .fetch_one(copy.pool())
        .await
        .expect("a count");
    assert_eq!(restored_cases.0, backed_up);
    // Every object is back under its hash.
    for f in manifest["files"].as_array().expect("files") {
        let path = f["path"].as_str().expect("a path");
        if let Some(rel) = path.strip_prefix("objects/") {
            let bytes = std::fs::read(target.path().join("objects").join(rel))
                .unwrap_or_else(|e| panic!("{path} restored: {e}"));
            assert_eq!(
                osteo_trial::store::sha256_hex(&bytes),
                f["sha256"].as_str().expect("a hash")
            );
        }
    }
    if engine() == "sqlite" {
        let served = ServerProcess::start(&url, target.path(), &[]).await;
        let api = served.api(&copy, "coordinator").await;
        let (status, case) = api.get_json(&format!("/cases/{first}")).await;
        assert_eq!(status, 200, "{case}");
        let (code, says) = served.audit_verify();
        assert_eq!(code, Some(0), "{says}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_verify_names_a_changed_object_an_extra_file_and_a_rewritten_trail() {
    if engine() == "postgres" {
        // The checks are the same; the rewritten trail is tried on the
        // SQLite copy, which the test can edit in place.
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = ServerProcess::fresh(dir.path(), &[]).await;
    let db = Db::connect(&server.url).await.expect("the database");
    let api = server.api(&db, "coordinator").await;
    let case = enrol(&api).await;
    let (status, body) = upload(
        &api,
        case,
        &[Radiograph::cr("Tamper", "AP", 7101).bytes()],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = dir.path().join("backup");
    let taken = edc(
        Some(&server.url),
        dir.path(),
        &["backup", "--out", &out.to_string_lossy()],
    );
    assert!(taken.status.success(), "{}", said(&taken));
    let verify = |dir: &Path| edc(None, dir, &["backup", "verify", &out.to_string_lossy()]);
    assert!(verify(dir.path()).status.success());

    // A changed object.
    let manifest_text = std::fs::read_to_string(out.join("manifest.json")).expect("a manifest");
    let mut manifest: Value = serde_json::from_str(&manifest_text).expect("JSON");
    let object = manifest["files"]
        .as_array()
        .and_then(|f| {
            f.iter().find(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("objects/"))
            })
        })
        .and_then(|f| f["path"].as_str())
        .expect("an object")
        .to_owned();
    let original = std::fs::read(out.join(&object)).expect("the object");
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(out.join(&object), &changed).expect("written");
    let v = verify(dir.path());
    assert_eq!(v.status.code(), Some(1));
    assert!(
        said(&v).contains(&format!("{object} has changed")),
        "{}",
        said(&v)
    );
    std::fs::write(out.join(&object), &original).expect("written");

    // A file the manifest does not name.
    std::fs::write(out.join("objects/extra.dcm"), b"slipped in").expect("written");
    let v = verify(dir.path());
    assert_eq!(v.status.code(), Some(1));
    assert!(
        said(&v).contains("objects/extra.dcm is not in the manifest"),
        "{}",
        said(&v)
    );
    std::fs::remove_file(out.join("objects/extra.dcm")).expect("removed");

    // A trail rewritten inside the copy, with the manifest's hash updated
    // to match: the chain itself says so.
    let copy = out.join("database.sqlite");
    // One connection, journal in the file itself: when it closes, the
    // file holds the edit and nothing writes to it afterwards.
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut edit = sqlx::AnyConnection::connect(&format!("sqlite://{}", copy.display()))
        .await
        .expect("the copy");
    for statement in [
        "PRAGMA journal_mode = DELETE",
        // The guard dropped, as someone with the file could.
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 2",
    ] {
        sqlx::query(statement)
            .execute(&mut edit)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    edit.close().await.expect("closed");
    let (sha, bytes) = {
        let data = std::fs::read(&copy).expect("the copy");
        (osteo_trial::store::sha256_hex(&data), data.len())
    };
    manifest["database"]["sha256"] = json!(sha);
    manifest["database"]["bytes"] = json!(bytes);
    std::fs::write(out.join("manifest.json"), manifest.to_string()).expect("written");
    let v = verify(dir.path());
    assert_eq!(v.status.code(), Some(1), "{}", said(&v));
    assert!(
        said(&v).contains("audit trail does not verify"),
        "{}",
        said(&v)
    );
}
