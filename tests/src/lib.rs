//! The end-to-end test harness: starts the real server on a free port with
//! a fresh database, and drives it like a browser (cookies, form posts, the
//! `Origin` header) or like an API client.
//!
//! The database engine comes from `OSTEO_TEST_DATABASE` (`sqlite`, the
//! default, or `postgres`, which needs `OSTEO_TEST_POSTGRES_URL` pointing at
//! a server where the user may create databases and roles). Every test gets
//! a database of its own. On PostgreSQL the tests run as production does
//! (docs/decisions.md, "Two database roles"): the migrations are applied by
//! the owner, and the server — and every direct SQL statement of a test —
//! connects as `osteo_app`, a role that owns no table and so cannot disable
//! or drop a trigger. A test that plays someone with the owner's rights uses
//! `owner_url`.

/// The role the server connects as in the PostgreSQL tests.
pub const APP_ROLE: &str = "osteo_app";

pub mod dciodvfy;
pub mod dicom;
pub mod odm;
pub mod pacs;
pub mod process;
pub mod totp;
pub mod workflow;

use osteo_server::{Application, Settings};
use osteo_trial::audit::Principal;
use osteo_trial::domain::Role;
use osteo_trial::store::Db;
use reqwest::redirect::Policy;
use std::path::PathBuf;
use std::time::Duration;

/// The password tests give accounts after the forced change.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server with its own database.
pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub db: Db,
    pub database_url: String,
    /// The database as its owner sees it (on SQLite the same file).
    pub owner_url: String,
    /// username, role, one-time password of the demonstration accounts.
    pub demo: Vec<(String, Role, String)>,
    pub dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
    /// The accounts whose one-time password the harness has replaced by
    /// [`PASSWORD`] (see [`TestApp::password`]).
    chosen: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The authenticator apps of the accounts the harness enrolled in a
    /// second factor (the trial's administrator and PI must have one).
    pub apps: totp::Authenticators,
    /// The DICOM listener's port, when the settings asked for one.
    pub dicom_port: Option<u16>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Where the built site lives (`make site`).
pub fn site_root() -> PathBuf {
    std::env::var_os("OSTEO_SITE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/site"))
}

/// Which engine this run tests.
pub fn engine() -> &'static str {
    match std::env::var("OSTEO_TEST_DATABASE").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("OSTEO_TEST_DATABASE must be sqlite or postgres, not {other}"),
    }
}

/// A fresh database for one test: the URL the server connects with, and
/// the owner's.
pub struct FreshDatabase {
    pub url: String,
    pub owner_url: String,
}

/// A fresh, empty database URL for one test (the server's role on PostgreSQL).
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    fresh_database(dir).await.url
}

/// A new, empty PostgreSQL database on the test server (no tables): its
/// owner's URL.
pub async fn empty_postgres_database() -> String {
    let admin = std::env::var("OSTEO_TEST_POSTGRES_URL").expect(
        "OSTEO_TEST_POSTGRES_URL must name a PostgreSQL server for OSTEO_TEST_DATABASE=postgres",
    );
    let name = format!("osteo_test_{:016x}", rand::random::<u64>());
    let admin_db = Db::connect(&admin)
        .await
        .expect("connecting to the test PostgreSQL server");
    // Once per server; tests racing to create it see one of two errors.
    sqlx::query(&format!(
        "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .execute(admin_db.pool())
    .await
    .expect("creating the server's role");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin_db.pool())
        .await
        .expect("creating a test database");
    admin_db.close().await;
    let (base, _) = admin
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// A fresh database: on PostgreSQL created and migrated by the owner, with
/// the server's rights granted to [`APP_ROLE`].
pub async fn fresh_database(dir: &std::path::Path) -> FreshDatabase {
    if engine() == "postgres" {
        let owner_url = empty_postgres_database().await;
        let owner = Db::connect(&owner_url)
            .await
            .expect("connecting as the owner");
        owner
            .migrate()
            .await
            .expect("the owner applies the migrations");
        owner
            .grant_to(APP_ROLE)
            .await
            .expect("granting the server's rights");
        owner.close().await;
        // The test server trusts local connections: the role needs no password.
        let (scheme, rest) = owner_url.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        FreshDatabase {
            url: format!("{scheme}://{APP_ROLE}@{host}"),
            owner_url,
        }
    } else {
        let url = format!("sqlite://{}", dir.join("test.db").display());
        FreshDatabase {
            owner_url: url.clone(),
            url,
        }
    }
}

/// The runtime every test server runs on: one multi-threaded runtime for the
/// whole test process, as in production, that outlives every test. (Each
/// `#[tokio::test]` has a runtime of its own, which ends with the test; a
/// server's background work — sessions saved after a response, connections
/// returned to the pool, the UI's spawned tasks — must not depend on it.)
fn server_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the test servers")
    })
}

/// Starts a server with demonstration accounts; `configure` may change the settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    // OSTEO_TEST_LOG=debug (any filter) shows the server's log in failing tests.
    if let Ok(filter) = std::env::var("OSTEO_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = Settings::local(dir.path().to_path_buf());
    let fresh = fresh_database(dir.path()).await;
    settings.database_url = fresh.url;
    // The trial, with one account per role (a test of the demonstration
    // study sets `demo`).
    settings.demo = false;
    settings.accounts_per_role = true;
    settings.bind = "127.0.0.1:0".parse().expect("an address");
    settings.site_root = site_root();
    // The tests drive predictions through a test double; the ones about the
    // model itself switch the embedded demo model back on.
    settings.model = osteo_server::ai::ModelChoice::Off;
    // Every upload goes through the guard process, as in production.
    settings.parse_bound = Some(osteo_server::imaging::parse_bound::ParseBound {
        program: binary(),
        memory_mib: osteo_server::imaging::parse_bound::DEFAULT_MEMORY_MIB,
    });
    // Tests sign in many times a minute from one address; the tests of
    // sign-in throttling set their own limits.
    settings.login_limits.per_address = std::num::NonZeroU32::new(100_000).expect("non-zero");
    settings.login_limits.per_username = std::num::NonZeroU32::new(100_000).expect("non-zero");
    configure(&mut settings);
    let database_url = settings.database_url.clone();
    let app = server_runtime()
        .spawn(Application::build(settings))
        .await
        .expect("the start-up task finishes")
        .expect("the server starts");
    let port = app.port();
    let dicom_port = app.dicom_port();
    let db = app.db().clone();
    let demo = app
        .demo_accounts
        .iter()
        .map(|(u, p)| (u.username.clone(), u.role, p.expose().to_owned()))
        .collect();
    let server = server_runtime().spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        port,
        db,
        database_url,
        owner_url: fresh.owner_url,
        demo,
        dir,
        server,
        chosen: Default::default(),
        apps: Default::default(),
        dicom_port,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    /// The public half of the server's audit key, for `audit::verify`.
    pub fn audit_key(&self) -> Option<osteo_trial::audit::anchor::PublicKey> {
        self.db.anchor_key().map(|k| k.public())
    }

    /// The one-time password of a demonstration account.
    pub fn one_time_password(&self, username: &str) -> String {
        self.demo
            .iter()
            .find(|(u, _, _)| u == username)
            .map(|(_, _, p)| p.clone())
            .unwrap_or_else(|| panic!("no demonstration account {username}"))
    }

    /// The password an account of the harness has now: [`PASSWORD`] once
    /// [`TestApp::signed_in`] or [`TestApp::api_client`] has replaced its
    /// one-time password, the one-time password before that.
    pub fn password(&self, username: &str) -> String {
        let chosen = self.chosen.lock().map(|c| c.contains(username));
        if chosen.unwrap_or(false) {
            PASSWORD.to_owned()
        } else {
            self.one_time_password(username)
        }
    }

    fn chose_password(&self, username: &str) {
        if let Ok(mut chosen) = self.chosen.lock() {
            chosen.insert(username.to_owned());
        }
    }

    /// Enrols `username` in a second factor through the services, as its
    /// owner would on the enrolment page, keeping the key in
    /// [`TestApp::apps`]; returns the recovery codes.
    pub async fn enrol_second_factor(&self, username: &str) -> Vec<String> {
        use osteo_trial::accounts::{self, second_factor};
        let user = accounts::find_by_username(&self.db, username)
            .await
            .expect("the database answers")
            .expect("the account exists");
        let principal = user.principal(osteo_trial::domain::AuditSource::Ui);
        let enrolment = second_factor::start_enrolment(&self.db, &principal)
            .await
            .expect("an enrolment starts");
        let key = totp::base32(&enrolment.secret);
        let step = totp::now() / 30;
        let codes =
            second_factor::confirm_enrolment(&self.db, &principal, &totp::totp(&key, step * 30, 6))
                .await
                .expect("the app's code confirms the enrolment");
        self.apps.enrolled(username, key, step);
        codes
    }

    /// Enrols `username` if the trial requires it a second factor and it
    /// has none yet (an administrator or PI).
    async fn enrol_if_due(&self, username: &str) {
        let user = osteo_trial::accounts::find_by_username(&self.db, username)
            .await
            .expect("the database answers")
            .expect("the account exists");
        if user.second_factor_due {
            self.enrol_second_factor(username).await;
        }
    }

    /// What `username` types to sign electronically: the password it has
    /// now and, with a second factor, the code its app shows.
    pub async fn signing(&self, username: &str) -> osteo_trial::accounts::SigningSecret {
        self.enrol_if_due(username).await;
        let code = self.apps.code(username, totp::Use::Signature).await;
        osteo_trial::accounts::SigningSecret::new(&self.password(username), code.as_deref())
    }

    /// A browser-like client: keeps cookies, does not follow redirects, and
    /// sends this site's `Origin` on posts.
    pub fn browser(&self) -> Browser {
        Browser {
            apps: self.apps.clone(),
            user: Default::default(),
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// A browser signed in as a demonstration account that has replaced its
    /// one-time password with [`PASSWORD`].
    pub async fn signed_in(&self, username: &str) -> Browser {
        let b = self.browser();
        if !self.must_change_password(username).await {
            // Its password was changed already (an API client of it was made).
            self.enrol_if_due(username).await;
            let r = b.login(username, PASSWORD).await;
            assert_eq!(location(&r), "/", "signed in with the changed password");
            return b;
        }
        let r = b.login(username, &self.one_time_password(username)).await;
        assert_eq!(
            location(&r),
            "/account/password",
            "a one-time password leads to the change form"
        );
        let r = b
            .post_form(
                "/auth/password",
                &[
                    (
                        "current_password",
                        self.one_time_password(username).as_str(),
                    ),
                    ("new_password", PASSWORD),
                    ("confirm_password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(location(&r), "/", "the password change succeeds");
        self.chose_password(username);
        self.enrol_if_due(username).await;
        b
    }

    /// Whether `username` still has its one-time password.
    pub async fn must_change_password(&self, username: &str) -> bool {
        osteo_trial::accounts::find_by_username(&self.db, username)
            .await
            .expect("the database answers")
            .expect("the account exists")
            .must_change_password
    }

    /// An API client authenticated with a new token of `username`. Tokens
    /// work only once the account has chosen its own password, so a
    /// one-time password is first replaced by [`PASSWORD`], as its owner
    /// would.
    pub async fn api_client(&self, username: &str) -> Api {
        let user = osteo_trial::accounts::find_by_username(&self.db, username)
            .await
            .expect("the database answers")
            .expect("the account exists");
        let demo = self.demo.iter().any(|(u, _, _)| u == username);
        if user.must_change_password && demo {
            osteo_trial::accounts::change_password(
                &self.db,
                &user.principal(osteo_trial::domain::AuditSource::Ui),
                &self.one_time_password(username),
                PASSWORD,
            )
            .await
            .expect("the one-time password is replaced");
            self.chose_password(username);
        } else if user.must_change_password {
            // An account the test made, whose one-time password it let go.
            choose_password(&self.db, username).await;
            self.chose_password(username);
        }
        self.enrol_if_due(username).await;
        let mut api = Api::with_new_token(&self.db, &user, &self.base).await;
        api.authenticator = Some((self.apps.clone(), username.to_owned()));
        api
    }
}

/// Gives `username` the password [`PASSWORD`] of its own choosing, as its
/// owner would after an operator's reset on the command line: API tokens
/// work only for an account that has replaced its one-time password.
pub async fn choose_password(db: &Db, username: &str) -> osteo_trial::accounts::User {
    use osteo_trial::accounts;
    let user = accounts::find_by_username(db, username)
        .await
        .expect("the database answers")
        .expect("the account exists");
    let reason = osteo_trial::domain::Reason::parse("test set-up").expect("a reason");
    let id = osteo_trial::domain::UserId::new(user.id);
    let once = accounts::reset_password(db, &Principal::cli("test"), id, &reason)
        .await
        .expect("a one-time password");
    let principal = user.principal(osteo_trial::domain::AuditSource::Ui);
    accounts::change_password(db, &principal, once.expose(), PASSWORD)
        .await
        .expect("the password is chosen")
}

/// The `Location` of a redirect ("" when there is none).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    /// The apps of enrolled accounts: a form with a password (a signature)
    /// gets the code of the signed-in account's app, as its owner would
    /// type it, unless the form gives `second_factor` itself.
    apps: totp::Authenticators,
    user: std::sync::Mutex<Option<String>>,
}

impl Browser {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("a body"))
    }

    /// The language switch of a page at `from`, as the page's form posts it.
    pub async fn switch_language(&self, lang: &str, from: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/ui/lang", self.base))
            .header("Origin", &self.base)
            .header("Referer", format!("{}{from}", self.base))
            .form(&[("lang", lang)])
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let signs = path != "/auth/login"
            && form.iter().any(|(k, _)| *k == "password")
            && !form.iter().any(|(k, _)| *k == "second_factor");
        let user = self.user.lock().ok().and_then(|u| u.clone());
        if let (true, Some(user)) = (signs, user) {
            if let Some(code) = self.apps.code(&user, totp::Use::Signature).await {
                form.push(("second_factor", code));
            }
        }
        self.client
            .post(format!("{}{path}", self.base))
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await
            .expect("the server answers")
    }

    /// Signs in as a person would: the password and, for an account the
    /// harness enrolled (`TestApp::apps`), the code its app shows on the
    /// `/login/code` page that follows. The answer of the last step.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        if let Ok(mut user) = self.user.lock() {
            *user = Some(username.to_owned());
        }
        let r = self
            .post_form(
                "/auth/login",
                &[("username", username), ("password", password)],
            )
            .await;
        if location(&r) != "/login/code" {
            return r;
        }
        match self.apps.code(username, totp::Use::SignIn).await {
            Some(code) => self.post_form("/auth/code", &[("code", &code)]).await,
            None => r,
        }
    }
}

pub struct Api {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
    /// The token owner's authenticator app, when it has a second factor: a
    /// body with a `password` (a signature) gets its code, as its owner
    /// would type it, unless the body gives `second_factor` itself.
    pub authenticator: Option<(totp::Authenticators, String)>,
}

impl Api {
    /// A client of the server at `base` with a new API token of `user`.
    pub async fn with_new_token(db: &Db, user: &osteo_trial::accounts::User, base: &str) -> Api {
        let (_, secret) = osteo_trial::accounts::create_token(
            db,
            &user.principal(osteo_trial::domain::AuditSource::Api),
            "test token",
        )
        .await
        .expect("a token");
        Api {
            base: base.to_owned(),
            token: secret.expose().to_owned(),
            client: reqwest::Client::new(),
            authenticator: None,
        }
    }

    /// A client of the server at `base` with the API token `token`, whose
    /// requests give up after `timeout` (a killed server never answers).
    pub fn with_token(base: &str, token: &str, timeout: Duration) -> Api {
        Api {
            base: base.to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client"),
            authenticator: None,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The status, content type and body of a GET (a file download).
    pub async fn get_file(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = r.bytes().await.expect("the body arrives").to_vec();
        (status, kind, body)
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut body = body.clone();
        if let (Some(fields), Some((apps, user))) = (body.as_object_mut(), &self.authenticator) {
            if fields.contains_key("password") && !fields.contains_key("second_factor") {
                if let Some(code) = apps.code(user, totp::Use::Signature).await {
                    fields.insert("second_factor".into(), code.into());
                }
            }
        }
        let r = self
            .request(method, path)
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// The number of audit rows.
pub async fn audit_rows(db: &Db) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
        .fetch_one(db.pool())
        .await
        .expect("counting audit rows")
        .try_get("n")
        .expect("a count")
}

/// Runs the real binary against a running test app's database and data
/// directory (what an operator on the server does).
pub fn run_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(app.dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// A case's state, read from the database.
pub async fn case_state(db: &Db, id: i64) -> String {
    use sqlx::Row;
    sqlx::query("SELECT state FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .expect("the case")
        .get("state")
}

/// The error a statement gets from the database ("" when it went through):
/// what someone with SQL access meets.
pub async fn sql_refusal(db: &Db, sql: &str) -> String {
    match sqlx::query(sql).execute(db.pool()).await {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// The `osteo-edc` binary built beside the tests (`cargo build -p osteo-server`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OSTEO_EDC_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test> -> target/debug/osteo-edc
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("osteo-edc"))
        .expect("a target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p osteo-server` before these tests (make test does)",
        bin.display()
    );
    bin
}

/// The text of a PDF, by Debian's `pdftotext` (poppler-utils).
pub fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, bytes).expect("the PDF is written");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian's poppler-utils) reads the report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pdftotext writes UTF-8")
}

/// A Python interpreter with pydicom (Debian's `python3-pydicom`; `.ci/run`
/// installs it), as the independent reader some tests check files with.
pub fn pydicom_python() -> String {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(python)
            .args(["-c", "import pydicom"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python.to_owned();
        }
    }
    panic!("no Python with pydicom: install Debian's python3-pydicom (.ci/run does)");
}

/// The folder of test files that pydicom ships: real-world files from many
/// vendors and tools, some deliberately malformed.
pub fn pydicom_test_files() -> PathBuf {
    let out = std::process::Command::new(pydicom_python())
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .expect("python runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
