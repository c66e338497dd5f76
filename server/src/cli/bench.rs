//! `osteo-edc bench load`: the server under concurrent users, measured.
//!
//! The benchmark builds a scratch study (a new SQLite database in a
//! temporary folder, or an empty PostgreSQL database given with
//! `--postgres`), fills it with generated cases — 2,000 retrospective and
//! 200 prospective by default, each screened, enrolled and given a draft
//! CRF through the trial's own services, audited like any other — and
//! starts the real server on a loopback port. Clients then work against it
//! over HTTP, as people and scripts do:
//!
//! - `crf_save`: an audited CRF draft save through the API
//!   (`PUT /api/v1/cases/{id}/crf`), each one a real change (a new size and
//!   age), so that each is a new CRF version and an audit row;
//! - `case_read`: `GET /api/v1/cases/{id}`;
//! - `worklist_page`: the cases page a coordinator works from (`/cases`,
//!   rendered on the server with the session's cookie);
//! - `case_page`: one case's page (`/cases/{id}`).
//!
//! Each operation runs alone for `--seconds` at each number of concurrent
//! clients in `--clients` (each client waits for its answer before the
//! next request: closed-loop load), and the benchmark reports throughput
//! and the p50, p99 and largest latency per operation. Every request must
//! succeed; a failed one is counted and makes the run fail. Afterwards the
//! audit chain is verified with the server's key, and the audit rows of CRF
//! saves are counted against the saves acknowledged.
//!
//! The result is JSON on standard output; a table goes to standard error as
//! the rounds finish. The figures of this machine are in docs/performance.md.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use osteo_trial::audit::Principal;
use osteo_trial::case::crf::ClinicalCrf;
use osteo_trial::domain::{AuditSource, CaseId};
use osteo_trial::screening::{self, Arm, ScreeningInput};
use osteo_trial::store::Db;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::startup::Application;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Start the server on loopback with a generated study and measure throughput and p50/p99 latency of CRF saves, case reads, the worklist page and the case page at 1, 8 and 32 concurrent clients (JSON on stdout; the audit chain is verified afterwards).
    Load(LoadArgs),
}

#[derive(Args)]
pub struct LoadArgs {
    /// Cases in the generated study: a tenth prospective (at most 200), the rest retrospective.
    #[arg(long, default_value_t = 2_200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    cases: u32,
    /// Concurrent clients of each round, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32", value_parser = clap::value_parser!(u32).range(1..=512))]
    clients: Vec<u32>,
    /// Seconds each operation runs at each number of clients.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Operations to run, comma-separated (crf_save, case_read, worklist_page, case_page) [default: all].
    #[arg(long, value_delimiter = ',')]
    ops: Vec<Op>,
    /// Run on this PostgreSQL database instead of a scratch SQLite database. It must be empty (no tables): the benchmark fills it with generated cases and leaves them there.
    #[arg(long, hide_env_values = true)]
    postgres: Option<String>,
    /// Folder for the scratch data directory (database, audit key) [default: a new temporary folder, removed afterwards].
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
}

/// One kind of request the clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
#[clap(rename_all = "snake_case")]
pub enum Op {
    CrfSave,
    CaseRead,
    WorklistPage,
    CasePage,
}

impl Op {
    const ALL: [Op; 4] = [Op::CrfSave, Op::CaseRead, Op::WorklistPage, Op::CasePage];

    fn name(self) -> &'static str {
        match self {
            Op::CrfSave => "crf_save",
            Op::CaseRead => "case_read",
            Op::WorklistPage => "worklist_page",
            Op::CasePage => "case_page",
        }
    }
}

/// The figures of one operation at one number of clients.
#[derive(Debug, Serialize)]
pub struct Round {
    pub op: Op,
    pub clients: u32,
    pub requests: usize,
    pub failed: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    cases: u32,
    seconds_per_round: f64,
    /// Seconds spent generating the study (screening, enrolment, draft CRFs).
    seed_seconds: f64,
    rounds: Vec<Round>,
    audit: AuditCheck,
}

#[derive(Debug, Serialize)]
struct AuditCheck {
    /// Rows in the audit chain after the run.
    rows: i64,
    /// Whether the chain and its signed anchors verified.
    verified: bool,
    crf_saves_acknowledged: u64,
    /// CRF versions written during the rounds: one per acknowledged save.
    crf_versions_written: i64,
    /// Audit rows of those saves: one per changed field.
    crf_save_audit_rows: i64,
}

const PASSWORD: &str = "bench-load-password-2200";

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Load(args) => load(args).await,
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if !(args.seconds > 0.0 && args.seconds <= 3_600.0) {
        return Err(super::usage(
            "--seconds must be more than 0 and at most 3600",
        ));
    }
    let ops = if args.ops.is_empty() {
        Op::ALL.to_vec()
    } else {
        args.ops.clone()
    };
    let (dir, remove) = match &args.scratch_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("osteo-bench-load-{}", std::process::id())),
            true,
        ),
    };
    let result = load_in(&args, &ops, &dir).await;
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let failed: usize = report.rounds.iter().map(|r| r.failed).sum();
    if failed > 0 || !report.audit.verified {
        eprintln!("error: {failed} requests failed or the audit chain did not verify");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn load_in(args: &LoadArgs, ops: &[Op], dir: &std::path::Path) -> anyhow::Result<Report> {
    let mut settings = Settings::local(dir.to_path_buf());
    if let Some(url) = &args.postgres {
        refuse_non_empty(url).await?;
        settings.database_url = url.clone();
    } else {
        if dir.join(crate::config::DATABASE_FILE).exists() {
            return Err(super::usage(format!(
                "{} already holds a database; bench load needs a new folder",
                dir.display()
            )));
        }
        settings.database_url = crate::config::default_database_url(dir);
    }
    settings.demo = false;
    settings.accounts_per_role = true;
    settings.bind = "127.0.0.1:0".parse()?;
    settings.model = crate::ai::ModelChoice::Off;
    // Every client signs in once from loopback.
    settings.login_limits.per_address = std::num::NonZeroU32::new(100_000).context("limit")?;
    settings.login_limits.per_username = std::num::NonZeroU32::new(100_000).context("limit")?;
    let app = Application::build(settings).await?;
    let db = app.db().clone();
    let engine = match db.engine() {
        osteo_trial::store::Engine::Sqlite => "sqlite",
        osteo_trial::store::Engine::Postgres => "postgres",
    };
    let (coordinator, one_time) = app
        .demo_accounts
        .iter()
        .find(|(u, _)| u.username == "coordinator")
        .map(|(u, p)| (u.clone(), p.expose().to_owned()))
        .context("the new database has a coordinator account")?;
    let by = coordinator.principal(AuditSource::System);
    osteo_trial::accounts::change_password(&db, &by, &one_time, PASSWORD).await?;
    eprintln!("bench load: generating {} cases on {engine}", args.cases);
    let started = Instant::now();
    let cases = seed(&db, &by, args.cases).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    eprintln!("bench load: {} cases in {seed_seconds:.1} s", cases.len());
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());

    let most = args.clients.iter().copied().max().unwrap_or(1) as usize;
    let mut clients = Vec::with_capacity(most);
    for i in 0..most {
        clients.push(Client::sign_in(&db, &coordinator, &base, i).await?);
    }
    let saves = Arc::new(AtomicU64::new(0));
    // One counter for the whole run, past the values the study was seeded
    // with: every save draws the next, so each is a different form.
    let changes = Arc::new(AtomicU64::new(u64::from(args.cases)));
    let before = crf_counts(&db).await?;
    let mut rounds = Vec::new();
    eprintln!(
        "{:<14} {:>7} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "operation", "clients", "requests", "failed", "per second", "p50 ms", "p99 ms", "max ms"
    );
    for &n in &args.clients {
        for &op in ops {
            let round = run_round(
                op,
                &clients[..n as usize],
                &cases,
                Duration::from_secs_f64(args.seconds),
                &saves,
                &changes,
            )
            .await;
            eprintln!(
                "{:<14} {:>7} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
                op.name(),
                round.clients,
                round.requests,
                round.failed,
                round.per_second,
                round.p50_ms,
                round.p99_ms,
                round.max_ms
            );
            rounds.push(round);
        }
    }
    server.abort();
    let after = crf_counts(&db).await?;
    let key = db.anchor_key().map(|k| k.public());
    let summary = osteo_trial::audit::verify(&db, key.as_ref()).await;
    let audit = AuditCheck {
        rows: summary.as_ref().map_or(0, |s| s.rows),
        verified: summary.is_ok(),
        crf_saves_acknowledged: saves.load(Ordering::Relaxed),
        crf_versions_written: after.0 - before.0,
        crf_save_audit_rows: after.1 - before.1,
    };
    if let Err(e) = &summary {
        eprintln!("bench load: the audit chain does not verify: {e}");
    }
    if audit.crf_saves_acknowledged as i64 != audit.crf_versions_written
        || audit.crf_save_audit_rows < audit.crf_versions_written
    {
        bail!(
            "{} CRF saves were acknowledged, {} versions written, {} audit rows",
            audit.crf_saves_acknowledged,
            audit.crf_versions_written,
            audit.crf_save_audit_rows
        );
    }
    db.close().await;
    Ok(Report {
        engine,
        cases: args.cases,
        seconds_per_round: args.seconds,
        seed_seconds,
        rounds,
        audit,
    })
}

/// Refuses a PostgreSQL database that holds any table of its own: the
/// benchmark never writes into a real trial.
async fn refuse_non_empty(url: &str) -> anyhow::Result<()> {
    let tables = crate::backup::postgres_tables(url).await?;
    if tables > 0 {
        return Err(super::usage(format!(
            "the database holds {tables} tables; bench load runs only on an empty database"
        )));
    }
    Ok(())
}

/// CRF versions and the audit rows of CRF saves.
async fn crf_counts(db: &Db) -> anyhow::Result<(i64, i64)> {
    let versions = sqlx::query_scalar("SELECT COUNT(*) FROM crf_versions")
        .fetch_one(db.pool())
        .await?;
    let audited = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'crf.save'")
        .fetch_one(db.pool())
        .await?;
    Ok((versions, audited))
}

/// Screens and enrols `n` consecutive patients (a tenth prospective, at
/// most 200, after the retrospective ones), each with a draft CRF.
async fn seed(db: &Db, by: &Principal, n: u32) -> anyhow::Result<Vec<CaseId>> {
    let prospective = (n / 10).min(200);
    let today = chrono::NaiveDate::parse_from_str(&screening::latest_screening_date(), "%Y-%m-%d")?
        - chrono::Duration::days(1);
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        // Four patients a day, the last yesterday.
        let date = today - chrono::Duration::days(i64::from((n - 1 - i) / 4));
        let arm = if i < n - prospective {
            Arm::Retrospective
        } else {
            Arm::Prospective
        };
        let entry = screening::screen(
            db,
            by,
            ScreeningInput::enrolled(arm, date.format("%Y-%m-%d").to_string(), None),
        )
        .await
        .with_context(|| format!("screening patient {i}"))?;
        let number = entry
            .study_number
            .context("an enrolled screening has a study number")?;
        let id = osteo_trial::case::find_case(db, &number)
            .await?
            .map(CaseId::new)
            .with_context(|| format!("the case of {number}"))?;
        let crf: ClinicalCrf = serde_json::from_value(crf(u64::from(i), date))?;
        osteo_trial::case::save_crf(db, by, id, crf, false, None)
            .await
            .map_err(|e| anyhow::anyhow!("the CRF of {number}: {e}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// A draft CRF whose size and age follow `n`: consecutive values of `n`
/// give different forms, so every save is a change.
fn crf(n: u64, date: chrono::NaiveDate) -> serde_json::Value {
    serde_json::json!({
        "age_years": 1 + (n / 300) % 99,
        "sex": if n.is_multiple_of(2) { "female" } else { "male" },
        "symptoms": ["pain"],
        "radiograph_date": date.format("%Y-%m-%d").to_string(),
        "bone": "femur",
        "side": "left",
        "longitudinal": "metaphysis",
        "density": "lytic",
        "size_mm": 1 + n % 300,
    })
}

/// One signed-in user agent: a session cookie for the pages and an API
/// token for the API, both the coordinator's.
#[derive(Clone)]
struct Client {
    /// With the session's cookie, for the pages.
    browser: reqwest::Client,
    /// Without cookies (a request carrying a session cookie is a browser's
    /// and must come from the site's origin), for the API.
    api: reqwest::Client,
    base: String,
    token: String,
    index: usize,
}

impl Client {
    async fn sign_in(
        db: &Db,
        user: &osteo_trial::accounts::User,
        base: &str,
        index: usize,
    ) -> anyhow::Result<Client> {
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
        };
        let browser = builder().cookie_store(true).build()?;
        let r = browser
            .post(format!("{base}/auth/login"))
            .header("Origin", base)
            .form(&[("username", user.username.as_str()), ("password", PASSWORD)])
            .send()
            .await?;
        let to = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default();
        if to != "/" {
            bail!("signing in client {index} led to {to:?} ({})", r.status());
        }
        let (_, secret) = osteo_trial::accounts::create_token(
            db,
            &user.principal(AuditSource::Api),
            &format!("bench load client {index}"),
        )
        .await?;
        Ok(Client {
            browser,
            api: builder().build()?,
            base: base.to_owned(),
            token: secret.expose().to_owned(),
            index,
        })
    }

    /// Sends one request of `op` on `case`; whether it succeeded.
    async fn send(&self, op: Op, case: CaseId, change: u64) -> bool {
        let id = case.get();
        let request = match op {
            Op::CrfSave => self
                .api
                .put(format!("{}/api/v1/cases/{id}/crf", self.base))
                .bearer_auth(&self.token)
                .json(&serde_json::json!({
                    "data": crf(change, chrono::Utc::now().date_naive()),
                    "complete": false,
                })),
            Op::CaseRead => self
                .api
                .get(format!("{}/api/v1/cases/{id}", self.base))
                .bearer_auth(&self.token),
            Op::WorklistPage => self.browser.get(format!("{}/cases", self.base)),
            Op::CasePage => self.browser.get(format!("{}/cases/{id}", self.base)),
        };
        match request.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(op = op.name(), case = id, %status, body = %body.chars().take(300).collect::<String>(), "request failed");
                false
            }
            Err(e) => {
                tracing::warn!(op = op.name(), case = id, error = %e, "request failed");
                false
            }
        }
    }
}

/// Runs `op` from every client in `clients` for `length`; each client
/// takes the cases of its own share in turn.
async fn run_round(
    op: Op,
    clients: &[Client],
    cases: &[CaseId],
    length: Duration,
    saves: &Arc<AtomicU64>,
    changes: &Arc<AtomicU64>,
) -> Round {
    let n = clients.len();
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::with_capacity(n);
    for client in clients {
        let client = client.clone();
        let mine: Vec<CaseId> = cases
            .iter()
            .copied()
            .skip(client.index)
            .step_by(n)
            .collect();
        let changes = changes.clone();
        let saves = saves.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0_usize;
            let mut next = 0_usize;
            while Instant::now() < deadline && !mine.is_empty() {
                let case = mine[next % mine.len()];
                next += 1;
                let t = Instant::now();
                let ok = client
                    .send(op, case, changes.fetch_add(1, Ordering::Relaxed))
                    .await;
                latencies.push(t.elapsed());
                if ok {
                    if op == Op::CrfSave {
                        saves.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            all.extend(l);
            failed += f;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    summarise(op, n as u32, &mut all, failed, elapsed)
}

/// Throughput and percentiles (nearest rank) of one round.
pub fn summarise(
    op: Op,
    clients: u32,
    latencies: &mut [Duration],
    failed: usize,
    elapsed_s: f64,
) -> Round {
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let rank = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
        ms(latencies[i])
    };
    Round {
        op,
        clients,
        requests: latencies.len(),
        failed,
        per_second: (latencies.len() - failed.min(latencies.len())) as f64 / elapsed_s,
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        max_ms: latencies.last().map_or(0.0, |&d| ms(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let r = summarise(Op::CaseRead, 4, &mut l, 0, 2.0);
        assert_eq!(r.requests, 100);
        assert!((r.p50_ms - 50.0).abs() < 1e-9);
        assert!((r.p99_ms - 99.0).abs() < 1e-9);
        assert!((r.max_ms - 100.0).abs() < 1e-9);
        assert!((r.per_second - 50.0).abs() < 1e-9);
        let r = summarise(Op::CaseRead, 1, &mut [], 0, 1.0);
        assert_eq!((r.requests, r.p99_ms), (0, 0.0));
    }

    #[test]
    fn consecutive_changes_give_different_forms() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).expect("date");
        for n in 0..5_000 {
            assert_ne!(crf(n, d), crf(n + 1, d));
            let form: ClinicalCrf = serde_json::from_value(crf(n, d)).expect("a valid draft");
            assert!(form.size_mm.is_some());
        }
    }
}
