//! Settings of a running server, from command-line flags and environment
//! variables (each flag names its variable in `osteo-edc serve --help`),
//! validated at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite://…` (default: `osteo-edc.db` in the data directory) or `postgres://…`.
    pub database_url: String,
    /// Where the embedded database and (later) stored images live.
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// The built site: `pkg/osteo-edc.{js,wasm,css}`.
    pub site_root: PathBuf,
    /// A brand-new database holds the demonstration study (its own
    /// accounts, phantom cases and demo model, numbers `D-`), not the trial.
    /// An existing database keeps the study it was made with.
    pub demo: bool,
    /// On a brand-new database, create one account per role with one-time
    /// passwords printed once (always in the demonstration study; in the
    /// trial only when asked, e.g. by the tests).
    pub accounts_per_role: bool,
    /// The key that signs the audit chain's head, kept outside the database.
    pub audit_key: AuditKeySource,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub absolute_timeout: Duration,
    /// Mark cookies `Secure` (serve behind TLS); also whenever the public
    /// origin is https (see [`Settings::cookies_secure`]).
    pub secure_cookies: bool,
    /// Sign-in attempts allowed per minute per client address and per
    /// username, and where the client's address comes from.
    pub login_limits: crate::throttle::LoginLimits,
    /// A bearer token that lets a scraper off the loopback interface read
    /// `/metrics` ([`crate::metrics`]).
    pub metrics_token: Option<String>,
    /// The origin browsers see (`https://edc.example.org`); when unset, the
    /// request's own `Host` is trusted. State-changing browser requests must
    /// come from it.
    pub public_origin: Option<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The largest radiograph upload accepted (one request, all its files), in bytes.
    pub image_limit: usize,
    /// The largest radiograph file accepted, in bytes.
    pub file_limit: usize,
    /// The longest reading one radiograph may take.
    pub parse_timeout: Duration,
    /// The child process each upload is read in first (time and memory
    /// bound; `None`: read in the server only, under `parse_timeout`).
    pub parse_bound: Option<crate::imaging::parse_bound::ParseBound>,
    /// Where stored radiographs and heat maps live: `None` for the
    /// `objects` folder of the data directory, or an object-store URL
    /// (`file:///…`, `memory:///`, `s3://…` with the `s3` feature).
    pub object_store: Option<String>,
    /// The model the server runs on cases whose reads are locked.
    pub model: crate::ai::ModelChoice,
    /// Model runs at a time (each on its own blocking thread).
    pub ai_workers: usize,
    /// How long one server's lease on a case holds before another server
    /// may take the case over (several servers on one database).
    pub ai_lease: std::time::Duration,
    /// The burn backend the model runs on: `flex` (CPU, always built), or
    /// `wgpu`, `cuda`, `tch`, `ndarray` in a build with that feature.
    pub ai_backend: String,
    /// Demo cases (phantoms, see [`crate::demo_cases`]) enrolled at the
    /// first start of a new database in demo mode. `serve` enrols 6 unless
    /// told otherwise; 0 here, so that tests and embedders start empty.
    pub demo_cases: usize,
    /// The DICOM listener of the PACS link (`serve --dicom-port`); `None`:
    /// images arrive only by upload.
    pub dicom: Option<crate::pacs::DicomSettings>,
}

impl Settings {
    /// The limits on one uploaded file these settings give.
    pub fn image_limits(&self) -> crate::imaging::Limits {
        crate::imaging::Limits {
            max_bytes: self.file_limit,
            parse_timeout: self.parse_timeout,
            parse_bound: self.parse_bound.clone(),
        }
    }

    /// Whether cookies carry `Secure`: when asked, and always when the
    /// public origin browsers use is https.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies
            || self
                .public_origin
                .as_deref()
                .is_some_and(|o| o.starts_with("https://"))
    }

    /// Defaults for a local start in `data_dir`.
    pub fn local(data_dir: PathBuf) -> Settings {
        let key = data_dir.join(AUDIT_KEY_FILE);
        Settings {
            database_url: default_database_url(&data_dir),
            data_dir,
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            site_root: PathBuf::from("target/site"),
            audit_key: AuditKeySource::File(key),
            demo: true,
            accounts_per_role: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
            login_limits: crate::throttle::LoginLimits::default(),
            metrics_token: None,
            public_origin: None,
            body_limit: 1024 * 1024,
            image_limit: 256 * 1024 * 1024,
            file_limit: crate::imaging::Limits::default().max_bytes,
            parse_timeout: crate::imaging::Limits::default().parse_timeout,
            parse_bound: None,
            object_store: None,
            model: crate::ai::ModelChoice::Default,
            ai_workers: 1,
            ai_lease: crate::ai::DEFAULT_LEASE,
            ai_backend: "flex".into(),
            demo_cases: 0,
            dicom: None,
        }
    }

    /// Checks what cannot be checked by the flag parser.
    pub fn validate(&self) -> anyhow::Result<()> {
        osteo_model::device(&self.ai_backend).map_err(|e| anyhow::anyhow!("--ai-backend: {e}"))?;
        if self.idle_timeout.is_zero() || self.absolute_timeout.is_zero() {
            anyhow::bail!("session timeouts must be at least one second");
        }
        if self.idle_timeout > self.absolute_timeout {
            anyhow::bail!("the idle timeout cannot be longer than the absolute timeout");
        }
        if let Some(d) = &self.dicom {
            if !osteo_trial::pacs::is_ae_title(&d.ae_title) {
                anyhow::bail!(
                    "--dicom-ae: an AE title has 1 to 16 characters, letters, digits and _-. (no backslash)"
                );
            }
        }
        if self.body_limit < 1024 {
            anyhow::bail!("the body limit must be at least 1024 bytes");
        }
        if let Some(origin) = &self.public_origin {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                anyhow::bail!("the public origin looks like https://edc.example.org (scheme and host, no path)");
            }
        }
        Ok(())
    }
}

/// The audit key file's name in the data directory.
pub const AUDIT_KEY_FILE: &str = "audit-signing.key";

/// Where the audit chain's signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditKeySource {
    /// A key file, created (readable by its owner only) at the server's first start.
    File(PathBuf),
    /// The 32-byte Ed25519 seed as 64 hex digits (`OSTEO_AUDIT_KEY`), from a
    /// secret store.
    Seed(String),
}

impl AuditKeySource {
    /// The key; `create` makes the file when it is missing (the server),
    /// otherwise a missing file is `None` (the command line).
    pub fn load(
        &self,
        create: bool,
    ) -> Result<
        Option<osteo_trial::audit::anchor::AnchorKey>,
        osteo_trial::audit::anchor::AnchorKeyError,
    > {
        use osteo_trial::audit::anchor::AnchorKey;
        match self {
            AuditKeySource::Seed(seed) => AnchorKey::from_seed_hex(seed).map(Some),
            AuditKeySource::File(path) if create => AnchorKey::load_or_create(path).map(Some),
            AuditKeySource::File(path) if path.exists() => {
                AnchorKey::load_or_create(path).map(Some)
            }
            AuditKeySource::File(_) => Ok(None),
        }
    }
}

/// The embedded SQLite database's file name in the data directory.
pub const DATABASE_FILE: &str = "osteo-edc.db";

pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join(DATABASE_FILE).display())
}
