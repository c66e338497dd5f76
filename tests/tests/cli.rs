//! The real `osteo-edc` binary: help texts, account commands, and
//! `audit verify` catching a database edited behind the application's back.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{binary, engine, fresh_database_url};
use osteo_trial::store::{Db, Engine};
use std::process::Output;

struct Cli {
    url: String,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database_url(dir.path()).await;
        Cli { url, _dir: dir }
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
    ] {
        assert!(text.contains(flag), "serve --help mentions {flag}");
    }
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
        &cli.url,
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
    tamper(&cli.url, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 2"), "{}", stdout(&out));
}

#[tokio::test]
async fn audit_verify_notices_rows_removed_from_the_end() {
    let cli = trail_with_four_rows().await;
    tamper(&cli.url, &["DELETE FROM audit_log WHERE seq = 4"]).await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 4"), "{}", stdout(&out));
}

#[tokio::test]
async fn audit_verify_notices_a_row_inserted_out_of_order() {
    let cli = trail_with_four_rows().await;
    // Move row 4 to 6 and forge a row 5 between: both the gap and the links break.
    tamper(&cli.url, &["UPDATE audit_log SET seq = 6 WHERE seq = 4"]).await;
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BROKEN at row 4"), "{}", stdout(&out));
}
