//! The real `osteo-edc` binary: help texts, account commands, and
//! `audit verify` catching a database edited behind the application's back.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{binary, engine, fresh_database};
use osteo_trial::store::{Db, Engine};
use std::process::Output;

struct Cli {
    url: String,
    /// The database as its owner sees it (who can disable a trigger).
    owner_url: String,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let fresh = fresh_database(dir.path()).await;
        Cli {
            url: fresh.url,
            owner_url: fresh.owner_url,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(binary())
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("USER", "tester")
            .env("RUST_LOG", "warn")
            .output()
            .expect("the binary runs")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "reset-password", "--help"],
        vec!["user", "deactivate", "--help"],
        vec!["user", "unlock", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["audit", "list", "--help"],
        vec!["audit", "bench", "--help"],
        vec!["stats", "--help"],
        vec!["stats", "roc", "--help"],
        vec!["stats", "compare", "--help"],
        vec!["stats", "proportion", "--help"],
        vec!["stats", "mcnemar", "--help"],
        vec!["stats", "calibration", "--help"],
        vec!["stats", "mrmc", "--help"],
        vec!["stats", "power", "--help"],
        vec!["stats", "bench", "--help"],
        vec!["model", "--help"],
        vec!["model", "phantoms", "--help"],
        vec!["model", "train", "--help"],
        vec!["model", "evaluate", "--help"],
        vec!["model", "card", "--help"],
        vec!["model", "demo", "--help"],
        vec!["model", "bench", "--help"],
        vec!["model", "dataset", "--help"],
        vec!["model", "dataset", "export", "--help"],
        vec!["model", "fl-init", "--help"],
        vec!["model", "fl-train", "--help"],
        vec!["model", "fl-evaluate", "--help"],
        vec!["model", "fl-finish", "--help"],
        vec!["model", "fl-plot", "--help"],
        vec!["images", "--help"],
        vec!["images", "check", "--help"],
        vec!["images", "render", "--help"],
        vec!["images", "deidentify", "--help"],
        vec!["images", "import", "--help"],
        vec!["images", "bench", "--help"],
    ] {
        let out = std::process::Command::new(binary())
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = stdout(&out);
        assert!(text.contains("Usage: osteo-edc"), "{args:?}: {text}");
    }
    let out = std::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = stdout(&out);
    for flag in [
        "--no-demo",
        "--bind",
        "--database-url",
        "--idle-timeout-minutes",
        "--secure-cookies",
        "--ai-backend",
    ] {
        assert!(text.contains(flag), "serve --help mentions {flag}");
    }
}

/// DICOM over TLS without a DICOM port, or with a certificate that is not
/// there, stops the server before it starts, saying which.
#[test]
fn serve_refuses_dicom_tls_it_cannot_set_up() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("missing.pem");
    let run = |args: &[&str]| {
        std::process::Command::new(binary())
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap()
    };
    let path = missing.display().to_string();
    let out = run(&["--dicom-tls-cert", &path, "--dicom-tls-key", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give --dicom-port"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--dicom-tls-cert", &path]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--dicom-tls-cert needs --dicom-tls-key"
    );
    let out = run(&[
        "--dicom-port",
        "0",
        "--dicom-tls-cert",
        &path,
        "--dicom-tls-key",
        &path,
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("missing.pem"),
        "the error names the file: {}",
        stderr(&out)
    );
}

/// A backend this build does not have stops the server before it starts,
/// naming the backend and the features that bring the others.
#[test]
fn serve_refuses_a_backend_that_is_not_built_in() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary())
        .args(["serve", "--ai-backend", "quantum", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--ai-backend: backend quantum is not built in") && err.contains("cpu-tch"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(data.path()).unwrap().next().is_none(),
        "nothing was created"
    );
}

#[tokio::test]
async fn accounts_are_managed_from_the_command_line_and_audited_as_cli() {
    let cli = Cli::new().await;
    let out = cli.run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli.run(&[
        "user",
        "create",
        "--username",
        "li.na",
        "--name",
        "Li Na",
        "--role",
        "coordinator",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("one-time password: "));

    let out = cli.run(&[
        "user",
        "create",
        "--username",
        "wu.lei",
        "--name",
        "Wu Lei",
        "--role",
        "wizard",
    ]);
    assert_eq!(out.status.code(), Some(2), "bad input exits 2");
    assert!(
        stderr(&out).contains("unknown role `wizard`"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&[
        "user",
        "create",
        "--username",
        "li.na",
        "--name",
        "Again",
        "--role",
        "monitor",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("taken"));
    let out = cli.run(&[
        "user",
        "deactivate",
        "--username",
        "nobody",
        "--reason",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let out = cli.run(&[
        "user",
        "deactivate",
        "--username",
        "li.na",
        "--reason",
        "moved to another hospital",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli.run(&["user", "list"]);
    assert!(stdout(&out).contains("li.na") && stdout(&out).contains("deactivated"));

    let out = cli.run(&["audit", "list", "--actor", "cli:tester"]);
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["source"] == "cli"));
    assert_eq!(rows[0]["action"], "user.deactivate");
    assert_eq!(rows[0]["reason"], "moved to another hospital");
    let out = cli.run(&["audit", "list", "--from", "not-a-date"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Opens the database behind the application's back and switches off the
/// triggers that guard the audit trail, as someone with file access could.
async fn tamper(url: &str, statements: &[&str]) {
    let db = Db::connect(url).await.unwrap();
    let disable = match db.engine() {
        Engine::Sqlite => vec![
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Engine::Postgres => vec!["ALTER TABLE audit_log DISABLE TRIGGER USER"],
    };
    for s in disable.iter().chain(statements) {
        sqlx::query(s).execute(db.pool()).await.unwrap();
    }
    db.close().await;
}

async fn trail_with_four_rows() -> Cli {
    let cli = Cli::new().await;
    for name in ["a.one", "b.two"] {
        let out = cli.run(&[
            "user",
            "create",
            "--username",
            name,
            "--name",
            name,
            "--role",
            "monitor",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = cli.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("intact: 4 rows"), "{}", stdout(&out));
    cli
}

#[tokio::test]
async fn audit_verify_names_a_changed_row() {
    let cli = trail_with_four_rows().await;
    tamper(
        &cli.owner_url,
        &["UPDATE audit_log SET new_value = 'username=mallory' WHERE seq = 3"],
    )
    .await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("BROKEN at row 3") && text.contains("changed"),
        "{text} ({})",
        engine()
    );
}

#[tokio::test]
async fn audit_verify_names_a_deleted_row() {
    let cli = trail_with_four_rows().await;
    tamper(&cli.owner_url, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 2"), "{}", stdout(&out));
}

#[tokio::test]
async fn audit_verify_notices_rows_removed_from_the_end() {
    let cli = trail_with_four_rows().await;
    tamper(&cli.owner_url, &["DELETE FROM audit_log WHERE seq = 4"]).await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 4"), "{}", stdout(&out));
}

#[tokio::test]
async fn audit_verify_notices_a_row_inserted_out_of_order() {
    let cli = trail_with_four_rows().await;
    // Move row 4 to 6 and forge a row 5 between: both the gap and the links break.
    tamper(
        &cli.owner_url,
        &["UPDATE audit_log SET seq = 6 WHERE seq = 4"],
    )
    .await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 4"), "{}", stdout(&out));
}

/// `osteo-edc images …` (issue: radiographs, point 10): check files before
/// a study, render and de-identify one, and bulk-load through the upload's
/// validation, de-identification and audit.
#[tokio::test]
async fn the_images_commands_check_render_deidentify_and_import() {
    use osteo_tests::dicom::Radiograph;
    let app = osteo_tests::spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let good = write("AP.dcm", Radiograph::cr("Song", "AP", 70).bytes());
    let mut ct = Radiograph::cr("Song", "AP", 71);
    ct.modality = "CT";
    let ct = write("CT.dcm", ct.bytes());
    let mut pelvis = Radiograph::cr("Song", "AP", 72);
    pelvis.body_part = "PELVIS";
    let pelvis = write("PELVIS.dcm", pelvis.bytes());
    let run = |args: &[&str]| osteo_tests::run_cli(&app, args);

    let out = run(&["images", "check", &good, &ct, &pelvis]);
    assert_eq!(out.status.code(), Some(1), "a file would be refused");
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one JSON object per file");
    let g = &lines[0];
    assert_eq!(
        (g["accepted"].as_bool(), g["decodes"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (
            g["modality"].as_str(),
            g["view"].as_str(),
            g["laterality"].as_str()
        ),
        (Some("CR"), Some("frontal"), Some("L"))
    );
    assert_eq!(
        (
            g["rows"].as_u64(),
            g["columns"].as_u64(),
            g["bits_stored"].as_u64()
        ),
        (Some(64), Some(64), Some(12))
    );
    assert_eq!(g["transfer_syntax"], "1.2.840.10008.1.2.1");
    assert_eq!(g["photometric_interpretation"], "MONOCHROME2");
    let identifying = g["identifying"].to_string();
    assert!(
        identifying.contains("PatientName") && identifying.contains("PatientBirthDate"),
        "{identifying}"
    );
    assert!(
        lines[1]["refused"]
            .as_str()
            .unwrap()
            .contains("modality `CT`"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2]["hints"],
        serde_json::json!(["E3", "E1"]),
        "{}",
        lines[2]
    );
    assert_eq!(run(&["images", "check", &good]).status.code(), Some(0));

    let png = dir.path().join("AP.png");
    let out = run(&[
        "images",
        "render",
        &good,
        "--out",
        png.to_str().unwrap(),
        "--size",
        "32",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));
    let out = run(&[
        "images",
        "render",
        &good,
        "--out",
        png.to_str().unwrap(),
        "--wc",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(2), "--wc needs --ww");

    let deid = dir.path().join("deid.dcm");
    let out = run(&[
        "images",
        "deidentify",
        &good,
        "--out",
        deid.to_str().unwrap(),
        "--study-number",
        "P-0042",
        "--shift-days",
        "-10",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let obj = dicom_object::open_file(&deid).unwrap();
    let text = |g: u16, e: u16| {
        obj.element_opt(dicom_core::Tag(g, e))
            .unwrap()
            .map(|e| e.to_str().unwrap().trim_end_matches(['\0', ' ']).to_owned())
    };
    assert_eq!(text(0x0010, 0x0010).as_deref(), Some("P-0042"));
    assert_eq!(
        text(0x0010, 0x0030).as_deref(),
        Some(""),
        "the birth date kept, empty (PS3.15 action Z)"
    );
    assert_eq!(
        text(0x0008, 0x0020).as_deref(),
        Some("20250922"),
        "moved back ten days"
    );
    assert!(text(0x0008, 0x0018).unwrap().starts_with("2.25."));

    // Import: into an enrolled case, as the coordinator, audited as such.
    let coordinator = app.api_client("coordinator").await;
    let id = osteo_tests::workflow::enrol(&coordinator).await;
    let lateral = write("LL.dcm", Radiograph::cr("Song", "LL", 73).bytes());
    let out = run(&[
        "images",
        "import",
        "--case",
        "P-0001",
        "--as",
        "coordinator",
        &good,
        &lateral,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains("\"stored\":true"))
            .count(),
        2,
        "{}",
        stdout(&out)
    );
    let (_, detail) = coordinator.get_json(&format!("/cases/{id}")).await;
    assert_eq!(detail["images"].as_array().unwrap().len(), 2);
    let by_cli: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'image.attach' AND actor = 'coordinator' AND source = 'cli'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(by_cli, 2);
    // A manifest for many cases: each row's outcome; an unknown case and a
    // duplicate refused (exit code 1), nothing else changed.
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(
        &manifest,
        "study_number,file,view\nP-0001,AP.dcm,\nP-9999,LL.dcm,lateral\n",
    )
    .unwrap();
    let out = run(&[
        "images",
        "import",
        "--manifest",
        manifest.to_str().unwrap(),
        "--as",
        "coordinator",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("already stored") && text.contains("no case P-9999"),
        "{text}"
    );
    // Only roles that enter case data may import.
    let out = run(&[
        "images",
        "import",
        "--case",
        "P-0001",
        "--as",
        "statistician",
        &good,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("may not enter case data"));
}
