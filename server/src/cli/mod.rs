//! The command line: `osteo-edc serve | migrate | user … | audit …`.
//! Exit codes: 0 success, 1 failure (including a broken audit chain),
//! 2 bad input.

pub mod backup;
pub mod bench;
pub mod dataset;
pub mod demo;
pub mod images;
pub mod model;
pub mod stats;

use crate::config::{default_database_url, Settings};
use crate::startup::{open_database, Application};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use osteo_trial::accounts::{self, AccountError, AccountUpdate, NewUser};
use osteo_trial::audit::anchor::{Anchor, PublicKey};
use osteo_trial::audit::{self, AuditFilter, Change, Principal, VerifyError};
use osteo_trial::domain::{DisplayName, Reason, Role, SiteCode, StudyKind, UserId, Username};
use osteo_trial::store::Db;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "osteo-edc",
    version,
    about = "Electronic data capture and evaluation for the prospective bone-tumour AI trial ChiCTR2500102778",
    long_about = "Osteo EDC: consecutive screening, case report forms, radiographs, blinded reads, locked AI \
                  predictions and the locked accuracy analysis of trial ChiCTR2500102778.\n\n\
                  Without --database-url the embedded SQLite database in the data directory is used."
)]
struct Cli {
    #[command(flatten)]
    db: DbArgs,
    /// The log's format on standard error: text for people, json (one object a line, with each request's id) for a log collector.
    #[arg(long, env = "OSTEO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct DbArgs {
    /// Data directory; the embedded SQLite database lives here.
    #[arg(long, env = "OSTEO_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [default: SQLite in the data directory].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// The file holding the key that signs the audit chain's head [default: audit-signing.key in the data directory; the server creates it]. OSTEO_AUDIT_KEY (the 32-byte seed as 64 hex digits) takes its place when set.
    #[arg(long, env = "OSTEO_AUDIT_KEY_FILE", global = true)]
    audit_key: Option<PathBuf>,
}

impl DbArgs {
    /// Opens the database when awaited (for the commands that open it only
    /// once their options are checked), with the data directory.
    fn open_with_data_dir(
        &self,
    ) -> impl std::future::Future<Output = anyhow::Result<(Db, PathBuf)>> + use<> {
        let settings = self.settings();
        async move {
            let db = open_database(&settings).await?;
            Ok((db, settings.data_dir.clone()))
        }
    }

    fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| default_database_url(&self.data_dir))
    }
    fn settings(&self) -> Settings {
        let mut s = Settings::local(self.data_dir.clone());
        s.database_url = self.url();
        if let Some(path) = &self.audit_key {
            s.audit_key = crate::config::AuditKeySource::File(path.clone());
        }
        if let Ok(seed) = std::env::var("OSTEO_AUDIT_KEY") {
            s.audit_key = crate::config::AuditKeySource::Seed(seed);
        }
        s
    }
}

#[derive(Subcommand)]
enum Command {
    /// Start the web server (applies pending migrations first). A new database holds the demonstration study (demo accounts, phantom cases, the demo model) unless --no-demo makes it the trial.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit (on PostgreSQL, as the owner role; --grant-to gives the server's role its rights). A new database holds the trial.
    Migrate {
        /// PostgreSQL: the role the server connects as, which owns no table; gets SELECT, INSERT and UPDATE on the trial's tables and DELETE on the sessions only.
        #[arg(long)]
        grant_to: Option<String>,
    },
    /// Manage accounts (acts with administrator authority, audited as cli:<your login>).
    #[command(subcommand)]
    User(UserCommand),
    /// Read, verify and benchmark the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The analysis engine on a CSV file: ROC/AUC, AUC comparison, proportions, McNemar (JSON on stdout).
    #[command(subcommand)]
    Stats(crate::cli::stats::StatsCommand),
    /// The AI model: synthetic phantoms, training, evaluation, the model card, the demo model and a speed benchmark.
    #[command(subcommand)]
    Model(crate::cli::model::ModelCommand),
    /// The demonstration study without a browser: `demo retrospective` makes a hospital's new demonstration database of complete retrospective phantom cases (the federated-learning demo's sites).
    #[command(subcommand)]
    Demo(crate::cli::demo::DemoCommand),
    /// Radiographs: check files before a study, render, de-identify, bulk import into cases, and the rendering benchmark.
    #[command(subcommand)]
    Images(crate::cli::images::ImagesCommand),
    /// Back up the database, every stored radiograph, the audit key and the models into a new folder while the server runs (`backup --out DIR`); `backup verify DIR` re-checks a backup.
    Backup(crate::cli::backup::BackupArgs),
    /// Benchmarks of the whole server: `bench load` measures concurrent users on a generated study of 2,200 cases.
    #[command(subcommand)]
    Bench(crate::cli::bench::BenchCommand),
    /// Restore a backup into an empty data directory (or an empty PostgreSQL database) and object store, verifying it before and after.
    Restore(crate::cli::backup::RestoreArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "OSTEO_BIND", default_value = "127.0.0.1:3000")]
    bind: SocketAddr,
    /// The built site (pkg/osteo-edc.js, .wasm, .css).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    site_root: PathBuf,
    /// A new database holds the trial (ChiCTR2500102778) rather than the demonstration study: no demo accounts, cases or model (production).
    #[arg(long, env = "OSTEO_NO_DEMO")]
    no_demo: bool,
    /// Minutes without a request after which a session ends.
    #[arg(long, env = "OSTEO_IDLE_TIMEOUT_MINUTES", default_value_t = 30)]
    idle_timeout_minutes: u64,
    /// Minutes after sign-in after which a session ends however active.
    #[arg(long, env = "OSTEO_ABSOLUTE_TIMEOUT_MINUTES", default_value_t = 720)]
    absolute_timeout_minutes: u64,
    /// Mark cookies Secure (when served over HTTPS; always so when --public-origin is https).
    #[arg(long, env = "OSTEO_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Sign-in attempts allowed per minute from one client address; more get 429 with Retry-After.
    #[arg(long, env = "OSTEO_LOGIN_PER_ADDRESS", default_value_t = crate::throttle::LoginLimits::default().per_address)]
    login_per_address: std::num::NonZeroU32,
    /// Sign-in attempts allowed per minute for one username, from anywhere; more get 429 with Retry-After.
    #[arg(long, env = "OSTEO_LOGIN_PER_USERNAME", default_value_t = crate::throttle::LoginLimits::default().per_username)]
    login_per_username: std::num::NonZeroU32,
    /// Take the client's address from the last X-Forwarded-For entry (only behind a reverse proxy that appends it).
    #[arg(long, env = "OSTEO_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// The origin browsers use, e.g. https://edc.example.org (default: the request's Host).
    #[arg(long, env = "OSTEO_PUBLIC_ORIGIN")]
    public_origin: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "OSTEO_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    body_limit_bytes: usize,
    /// Largest radiograph upload (one request, all its files) in MiB.
    #[arg(long, env = "OSTEO_IMAGE_LIMIT_MIB", default_value_t = 256)]
    image_limit_mib: usize,
    /// Largest radiograph file in MiB.
    #[arg(long, env = "OSTEO_FILE_LIMIT_MIB", default_value_t = 200)]
    file_limit_mib: usize,
    /// Longest reading of one radiograph, in seconds.
    #[arg(long, env = "OSTEO_PARSE_TIMEOUT_SECONDS", default_value_t = 20)]
    parse_timeout_seconds: u64,
    /// Memory bound, in MiB, of the child process each upload is read in before the server reads it (0: no child process; the server reads it under the time limit only).
    #[arg(long, env = "OSTEO_PARSE_MEMORY_MIB", default_value_t = crate::imaging::parse_bound::DEFAULT_MEMORY_MIB)]
    parse_memory_mib: u64,
    /// A bearer token that lets a scraper off this machine read /metrics (Prometheus text); without it only loopback clients may.
    #[arg(long, env = "OSTEO_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Where radiographs and heat maps are stored, as an object-store URL: file:///absolute/path, or s3://bucket/prefix in a build with the `s3` feature (credentials from the AWS_* variables). Default: the objects folder of the data directory.
    #[arg(long, env = "OSTEO_OBJECT_STORE")]
    object_store: Option<String>,
    /// The model run on cases whose reads are locked (only once the PI has pinned it): a model directory, `demo` (the embedded demo model; demonstration study only), `none`, or `default` (the demo model in the demonstration study, none in the trial: its cases wait at "awaiting AI").
    #[arg(long, env = "OSTEO_MODEL", default_value = "default")]
    model: crate::ai::ModelChoice,
    /// Model runs at a time (each on a blocking thread).
    #[arg(long, env = "OSTEO_AI_WORKERS", default_value_t = 1)]
    ai_workers: usize,
    /// Seconds a server's lease on a case holds: with several servers on one database, a case whose server stopped in the middle of a model run is taken over by another after this long.
    #[arg(long, env = "OSTEO_AI_LEASE_SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    ai_lease_seconds: u64,
    /// The burn backend the model runs on: flex (CPU, always built), or wgpu, cuda, tch, ndarray in a build with the matching feature (gpu-wgpu, gpu-cuda, cpu-tch, cpu-ndarray).
    #[arg(long, env = "OSTEO_AI_BACKEND", default_value = "flex")]
    ai_backend: String,
    /// Demo cases enrolled at the first start of a new database in demo mode: consecutive patients drawn by the phantom generator, CRF complete and radiographs stored, waiting for the blinded read (0: none).
    #[arg(long, env = "OSTEO_DEMO_CASES", default_value_t = 6)]
    demo_cases: usize,
    /// Listen for DICOM C-ECHO and C-STORE on this port (the PACS link; 0: a free port, logged). Images go to the case whose registered accession number or patient ID they carry, or to the quarantine page; only the study's allowed peers may call. Without it, images arrive by upload only.
    #[arg(long, env = "OSTEO_DICOM_PORT")]
    dicom_port: Option<u16>,
    /// The address the DICOM listener binds (default: the host of --bind).
    #[arg(long, env = "OSTEO_DICOM_HOST")]
    dicom_host: Option<std::net::IpAddr>,
    /// This server's DICOM AE title, which senders must call.
    #[arg(long, env = "OSTEO_DICOM_AE", default_value = "OSTEO")]
    dicom_ae: String,
    /// DICOM over TLS: this server's certificate chain (PEM). With --dicom-tls-key, the DICOM port speaks TLS only (TLS 1.2 or 1.3, PS3.15's BCP 195 profile).
    #[arg(long, env = "OSTEO_DICOM_TLS_CERT", requires = "dicom_tls_key")]
    dicom_tls_cert: Option<std::path::PathBuf>,
    /// DICOM over TLS: the private key of --dicom-tls-cert (PEM).
    #[arg(long, env = "OSTEO_DICOM_TLS_KEY", requires = "dicom_tls_cert")]
    dicom_tls_key: Option<std::path::PathBuf>,
    /// DICOM over TLS: callers must also present a certificate signed by one of these authorities (PEM), besides being an allowed peer.
    #[arg(long, env = "OSTEO_DICOM_TLS_CLIENT_CA", requires = "dicom_tls_cert")]
    dicom_tls_client_ca: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; prints its one-time password once.
    Create {
        #[arg(long)]
        username: String,
        /// The person's name as shown in the interface.
        #[arg(long)]
        name: String,
        /// admin, principal_investigator, coordinator, radiologist, statistician or monitor.
        #[arg(long)]
        role: String,
        /// Site code.
        #[arg(long, default_value = "QDUAH")]
        site: String,
    },
    /// List accounts (with lock state).
    List,
    /// Issue a new one-time password; the user's sessions end.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
    },
    /// End a lost second factor (TOTP): its secret and unused recovery
    /// codes are void, its sessions end, and it enrols again at its next
    /// sign-in.
    ResetSecondFactor {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
    },
    /// Deactivate an account (accounts are never deleted).
    Deactivate {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
    },
    /// Reactivate a deactivated account.
    Reactivate {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
    },
    /// Change an account's role.
    SetRole {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a lockout after failed sign-ins.
    Unlock {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and check the signed anchors against the audit key; exits 1 naming the first broken row.
    Verify {
        /// The audit key's public half (64 hex digits), to verify without the secret key [default: from the key file or OSTEO_AUDIT_KEY].
        #[arg(long)]
        public_key: Option<String>,
        /// An anchor filed outside the system (the JSON `audit anchor` printed): checked against the chain too.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Sign the chain's head now and print the signed anchor as JSON, to file outside the system (a trial master file, an e-mail to the sponsor).
    Anchor,
    /// Print audit rows as JSON lines, newest first.
    List {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        entity: Option<String>,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Fill a scratch SQLite database with N audit rows and time the audit page's queries and a full verify (JSON on stdout).
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Folder for the scratch database [default: a new temporary folder, removed afterwards].
        #[arg(long)]
        scratch_dir: Option<PathBuf>,
    },
}

/// Bad input from the operator: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The parse bound's child: no runtime, no threads, no log.
    if let Command::Images(crate::cli::images::ImagesCommand::Guard) = &cli.command {
        return crate::imaging::parse_bound::child_main();
    }
    // The load benchmark's server would log each of its requests.
    let quiet = matches!(cli.command, Command::Bench(_));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        if quiet {
            "warn".into()
        } else {
            // The JPEG 2000 decoder logs every header it reads at info.
            "info,sqlx=warn,tower_http=info,jpeg2k=warn".into()
        }
    });
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => log.init(),
        LogFormat::Json => log.json().with_current_span(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&cli.db, args).await,
        Command::Backup(args) => crate::cli::backup::backup_cmd(&cli.db, args).await,
        Command::Bench(command) => crate::cli::bench::run(command).await,
        Command::Restore(args) => crate::cli::backup::restore_cmd(&cli.db, args).await,
        Command::Migrate { grant_to } => {
            let db = open_database(&cli.db.settings()).await?;
            let new = accounts::ensure_study(&db, StudyKind::Trial).await?;
            if let Some(role) = grant_to {
                db.grant_to(&role).await.map_err(|e| match e {
                    osteo_trial::store::StoreError::Role(_) => usage(e),
                    e => anyhow::Error::new(e),
                })?;
                println!("granted the server's rights to {role}");
            }
            println!(
                "database is up to date{}",
                if new {
                    " (new: study ChiCTR2500102778 and site QDUAH created)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => user(&cli.db, cmd).await,
        Command::Audit(cmd) => audit_cmd(&cli.db, cmd).await,
        Command::Model(mut cmd) => {
            let open = cli.db.open_with_data_dir();
            if let Some(out) = crate::cli::model::export_from_study(&mut cmd, open).await? {
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            let in_use = std::env::var("OSTEO_MODEL")
                .ok()
                .map(|m| m.parse::<crate::ai::ModelChoice>())
                .transpose()?
                .unwrap_or(crate::ai::ModelChoice::Demo);
            let data_dir = cli.db.data_dir.clone();
            let out = tokio::task::spawn_blocking(move || {
                // The model commands work on model files, not on a study.
                crate::cli::model::run(cmd, || {
                    crate::ai::model_dir(&in_use, StudyKind::Demo, &data_dir)
                })
            })
            .await??;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(cmd) => {
            let open = cli.db.open_with_data_dir();
            let out = crate::cli::demo::run(cmd, open).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Images(cmd) => {
            let open = cli.db.open_with_data_dir();
            crate::cli::images::run(cmd, open).await
        }
        Command::Stats(cmd) => {
            let out = crate::cli::stats::run(cmd).map_err(usage)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(db: &DbArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut settings = db.settings();
    settings.bind = args.bind;
    settings.site_root = args.site_root;
    settings.demo = !args.no_demo;
    settings.accounts_per_role = settings.demo;
    settings.idle_timeout = Duration::from_secs(args.idle_timeout_minutes * 60);
    settings.absolute_timeout = Duration::from_secs(args.absolute_timeout_minutes * 60);
    settings.secure_cookies = args.secure_cookies;
    settings.login_limits = crate::throttle::LoginLimits {
        per_address: args.login_per_address,
        per_username: args.login_per_username,
        trust_forwarded_for: args.trust_forwarded_for,
    };
    settings.public_origin = args.public_origin;
    settings.body_limit = args.body_limit_bytes;
    settings.image_limit = args.image_limit_mib * 1024 * 1024;
    settings.file_limit = args.file_limit_mib * 1024 * 1024;
    settings.object_store = args.object_store;
    settings.metrics_token = args.metrics_token.filter(|t| !t.is_empty());
    settings.parse_timeout = Duration::from_secs(args.parse_timeout_seconds.max(1));
    settings.parse_bound = if args.parse_memory_mib == 0 {
        None
    } else {
        crate::imaging::parse_bound::ParseBound::this_binary(args.parse_memory_mib)
    };
    settings.model = args.model;
    settings.ai_workers = args.ai_workers;
    settings.ai_lease = std::time::Duration::from_secs(args.ai_lease_seconds);
    settings.ai_backend = args.ai_backend;
    settings.demo_cases = args.demo_cases;
    if args.dicom_port.is_none() && args.dicom_tls_cert.is_some() {
        return Err(usage_error(
            "--dicom-tls-cert and --dicom-tls-key secure the DICOM port: give --dicom-port too"
                .into(),
        ));
    }
    settings.dicom = args.dicom_port.map(|port| crate::pacs::DicomSettings {
        bind: std::net::SocketAddr::new(args.dicom_host.unwrap_or(settings.bind.ip()), port),
        ae_title: args.dicom_ae.clone(),
        tls: match (&args.dicom_tls_cert, &args.dicom_tls_key) {
            (Some(cert), Some(key)) => Some(crate::pacs::scp::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.dicom_tls_client_ca.clone(),
            }),
            _ => None,
        },
    });
    settings.validate().map_err(|e| Usage(e.to_string()))?;
    if !settings
        .site_root
        .join("pkg")
        .join(format!("{}_bg.wasm", osteo_app::OUTPUT_NAME))
        .exists()
    {
        tracing::warn!(
            site_root = %settings.site_root.display(),
            "the browser bundle is missing: pages render but will not hydrate; build it with `make site`"
        );
    }
    let app = Application::build(settings).await?;
    if !app.demo_accounts.is_empty() {
        // Printed once, to the console only (never logged): the one-time
        // passwords of the demonstration accounts.
        if app.study_kind == StudyKind::Demo {
            println!("New database: the demonstration study (synthetic cases and the demo model; not the trial ChiCTR2500102778), site QDUAH and one account per role.");
        } else {
            println!("New database: study ChiCTR2500102778, site QDUAH and one account per role.");
        }
        println!("One-time passwords (each must be changed at first sign-in):");
        for (user, password) in &app.demo_accounts {
            println!(
                "  {:<14} {:<24} {}",
                user.username,
                user.role.to_string(),
                password.expose()
            );
        }
    }
    println!("Osteo EDC listening on http://127.0.0.1:{}", app.port());
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

fn operator() -> Principal {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Principal::cli(&name)
}

/// A usage error (exit code 2) for the other command modules.
pub(crate) fn usage_error(msg: String) -> anyhow::Error {
    Usage(msg).into()
}

fn usage<E: std::fmt::Display>(e: E) -> anyhow::Error {
    Usage(e.to_string()).into()
}

/// Maps a service error: the operator's mistakes are usage errors.
fn account_error(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Store(_) | AccountError::Password(_) => anyhow::Error::new(e),
        e => usage(e),
    }
}

/// The principal of a named, active account acting from the command line
/// (audited as that account, source `cli`); refused with `refusal` when its
/// role lacks `permission`.
pub(crate) async fn acting_as(
    db: &Db,
    username: &str,
    permission: osteo_trial::domain::Permission,
    refusal: &str,
) -> anyhow::Result<Principal> {
    let user = accounts::find_by_username(db, username)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| usage_error(format!("{username} is not an active account")))?;
    if !user.role.can(permission) {
        return Err(usage_error(format!(
            "{} ({}) {refusal}",
            user.username, user.role
        )));
    }
    Ok(Principal {
        user_id: Some(user.id),
        name: user.username,
        role: user.role,
        source: osteo_trial::domain::AuditSource::Cli,
    })
}

async fn find(db: &Db, username: &str) -> anyhow::Result<osteo_trial::accounts::User> {
    accounts::find_by_username(db, username)
        .await?
        .ok_or_else(|| {
            usage(format!(
                "there is no account `{username}` (see `osteo-edc user list`)"
            ))
        })
}

async fn user(args: &DbArgs, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let db = open_database(&args.settings()).await?;
    accounts::ensure_study(&db, StudyKind::Trial).await?;
    let by = operator();
    match cmd {
        UserCommand::Create {
            username,
            name,
            role,
            site,
        } => {
            let new = NewUser {
                username: Username::parse(&username).map_err(usage)?,
                display_name: DisplayName::parse(&name).map_err(usage)?,
                role: role.parse::<Role>().map_err(usage)?,
                site: SiteCode::parse(&site).map_err(usage)?,
            };
            let (user, password) = accounts::create_user(&db, &by, new)
                .await
                .map_err(account_error)?;
            println!(
                "created {} ({}, site {})",
                user.username, user.role, user.site_code
            );
            println!("one-time password: {}", password.expose());
        }
        UserCommand::List => {
            for u in accounts::list_users(&db, &by)
                .await
                .map_err(account_error)?
            {
                let state = if !u.active {
                    "deactivated".to_owned()
                } else if u.is_locked() {
                    format!("locked until {}", u.locked_until.unwrap_or_default())
                } else if u.must_change_password {
                    "must change password".to_owned()
                } else {
                    "active".to_owned()
                };
                println!(
                    "{:<20} {:<24} {:<8} {}",
                    u.username,
                    u.role.to_string(),
                    u.site_code,
                    state
                );
            }
        }
        UserCommand::ResetPassword { username, reason } => {
            let user = find(&db, &username).await?;
            let reason = Reason::parse(&reason).map_err(usage)?;
            let password = accounts::reset_password(&db, &by, UserId::new(user.id), &reason)
                .await
                .map_err(account_error)?;
            println!(
                "one-time password for {}: {}",
                user.username,
                password.expose()
            );
        }
        UserCommand::ResetSecondFactor { username, reason } => {
            let user = find(&db, &username).await?;
            let reason = Reason::parse(&reason).map_err(usage)?;
            accounts::second_factor::reset(&db, &by, UserId::new(user.id), &reason)
                .await
                .map_err(account_error)?;
            println!(
                "second factor of {} reset: it enrols again at its next sign-in",
                user.username
            );
        }
        UserCommand::Deactivate { username, reason }
        | UserCommand::Reactivate { username, reason } => {
            let active = accounts::find_by_username(&db, &username)
                .await?
                .is_some_and(|u| !u.active);
            let user = find(&db, &username).await?;
            let reason = Reason::parse(&reason).map_err(usage)?;
            let update = AccountUpdate {
                active: Some(active),
                ..AccountUpdate::default()
            };
            let user = accounts::update_account(&db, &by, UserId::new(user.id), update, &reason)
                .await
                .map_err(account_error)?;
            println!(
                "{} is now {}",
                user.username,
                if user.active { "active" } else { "deactivated" }
            );
        }
        UserCommand::SetRole {
            username,
            role,
            reason,
        } => {
            let user = find(&db, &username).await?;
            let update = AccountUpdate {
                role: Some(role.parse().map_err(usage)?),
                ..AccountUpdate::default()
            };
            let reason = Reason::parse(&reason).map_err(usage)?;
            let user = accounts::update_account(&db, &by, UserId::new(user.id), update, &reason)
                .await
                .map_err(account_error)?;
            println!("{} is now {}", user.username, user.role);
        }
        UserCommand::Unlock { username, reason } => {
            let user = find(&db, &username).await?;
            let reason = Reason::parse(&reason).map_err(usage)?;
            accounts::unlock(&db, &by, UserId::new(user.id), &reason)
                .await
                .map_err(account_error)?;
            println!("{} is unlocked", user.username);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit_cmd(args: &DbArgs, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { public_key, anchor } => {
            let db = open_database(&args.settings()).await?;
            let key = match public_key {
                Some(hex) => Some(PublicKey::from_hex(&hex).map_err(usage)?),
                None => db.anchor_key().map(|k| k.public()),
            };
            let filed = anchor
                .map(|path| -> anyhow::Result<Anchor> {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
                    serde_json::from_str(&text).map_err(|e| {
                        usage(format!(
                            "{} is not an anchor `audit anchor` printed: {e}",
                            path.display()
                        ))
                    })
                })
                .transpose()?;
            match audit::verify(&db, key.as_ref()).await {
                Ok(summary) => {
                    if let Some(a) = &filed {
                        let good = key.as_ref().is_some_and(|k| a.signed_by(k));
                        let here = audit::row_hash(&db, a.seq).await?;
                        if !good || here.as_deref() != Some(a.head_hash.as_str()) {
                            println!(
                                "AUDIT TRAIL BROKEN at row {}: it does not match the anchor filed at {} ({})",
                                a.seq,
                                a.signed_at,
                                if good { "the chain was rewritten" } else { "the anchor is not signed by the audit key" }
                            );
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                    println!(
                        "audit trail intact: {} rows, head {}",
                        summary.rows, summary.head_hash
                    );
                    match key {
                        Some(k) => println!(
                            "signed anchors: {} checked with key {}{}",
                            summary.anchors_checked,
                            k.to_hex(),
                            summary
                                .last_anchored_seq
                                .map(|s| format!(", the last covers row {s}"))
                                .unwrap_or_default()
                        ),
                        None => println!(
                            "signed anchors: NOT checked (no audit key: give --public-key, --audit-key or OSTEO_AUDIT_KEY)"
                        ),
                    }
                    if filed.is_some() {
                        println!("the filed anchor matches the chain");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(VerifyError::Broken(b)) => {
                    println!("AUDIT TRAIL BROKEN at row {}: {b}", b.first_bad_row());
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        AuditCommand::Anchor => {
            let db = open_database(&args.settings()).await?;
            let anchor = audit::anchor::anchor(&db, "on request").await?.ok_or_else(|| {
                usage("no audit key: the server creates it in the data directory at its first start (or give --audit-key or OSTEO_AUDIT_KEY)")
            })?;
            println!("{}", serde_json::to_string_pretty(&anchor)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List {
            actor,
            entity,
            from,
            to,
            limit,
        } => {
            let db = open_database(&args.settings()).await?;
            let filter = AuditFilter {
                actor,
                entity,
                from,
                to,
                ..AuditFilter::default()
            };
            let page = audit::query(&db, &filter, limit)
                .await
                .map_err(|e| match e {
                    audit::QueryError::Filter(f) => usage(f),
                    e => anyhow::Error::new(e),
                })?;
            for row in page.rows {
                println!("{}", serde_json::to_string(&row)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Bench { rows, scratch_dir } => bench(rows, scratch_dir).await,
    }
}

/// Measures the audit page's queries over a trail of `rows` rows.
async fn bench(rows: u64, scratch_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (dir, remove) = match scratch_dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("osteo-audit-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut settings = Settings::local(dir.clone());
    settings.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let db = open_database(&settings).await?;
    let by_users: Vec<Principal> = (0..50)
        .map(|i| Principal {
            user_id: Some(i),
            name: format!("user{i:02}"),
            role: Role::Coordinator,
            source: osteo_trial::domain::AuditSource::Ui,
        })
        .collect();
    let entities = ["case", "crf", "read", "image", "user"];
    let started = Instant::now();
    let mut written = 0_u64;
    while written < rows {
        let mut tx = db.begin_write().await?;
        for _ in 0..5_000.min(rows - written) {
            let i = written as usize;
            audit::append(
                &mut tx,
                &by_users[i % by_users.len()],
                Change::new("crf.update", entities[i % entities.len()], i / 7).field(
                    "age",
                    Some((i % 90).to_string()),
                    Some((i % 91).to_string()),
                ),
            )
            .await?;
            written += 1;
        }
        tx.commit().await?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let cases: Vec<(&str, AuditFilter)> = vec![
        ("newest_page", AuditFilter::default()),
        (
            "deep_page",
            AuditFilter {
                before_seq: Some((rows / 2) as i64),
                ..AuditFilter::default()
            },
        ),
        (
            "by_user",
            AuditFilter {
                actor: Some("user07".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "by_entity_deep",
            AuditFilter {
                entity: Some("image".into()),
                before_seq: Some((rows / 3) as i64),
                ..AuditFilter::default()
            },
        ),
        (
            "by_date",
            AuditFilter {
                from: Some(today.clone()),
                to: Some(today),
                ..AuditFilter::default()
            },
        ),
        (
            "by_user_no_match",
            AuditFilter {
                actor: Some("nobody".into()),
                ..AuditFilter::default()
            },
        ),
    ];
    let mut timings = serde_json::Map::new();
    for (name, filter) in cases {
        // Best of 5: the page query as the audit page runs it (50 rows).
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let page = audit::query(&db, &filter, 50).await?;
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(page);
        }
        timings.insert(
            format!("{name}_ms"),
            serde_json::json!((best * 1000.0).round() / 1000.0),
        );
    }
    let t = Instant::now();
    let summary = audit::verify(&db, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verify_s = t.elapsed().as_secs_f64();
    db.close().await;
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = serde_json::json!({
        "rows": summary.rows,
        "fill_seconds": (fill_s * 100.0).round() / 100.0,
        "page_query_best_of_5": timings,
        "verify_seconds": (verify_s * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
