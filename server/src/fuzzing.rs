//! What the fuzz targets run (`fuzz/`, `cargo fuzz run TARGET -s none`),
//! and the test that replays their corpora and every crash found
//! (`tests/tests/fuzz_corpora.rs`): the same code, so that a crash found by
//! the fuzzer is a regression test the day it is added to the corpus.
//!
//! Each entry point takes arbitrary bytes and returns `Err` with a
//! description where the server would have failed; a panic is a failure
//! too (libFuzzer catches it, and so does the replay test).
//! - [`dicom_header`]: the walk over a Part 10 file's headers that runs
//!   before any parse ([`crate::imaging::scan::check_lengths`]);
//! - [`dicom_ingest`]: what the bounded child process does with an upload
//!   (parse, checks, decode), then de-identification, encoding and the
//!   preview, as the server does with a file the child accepted;
//! - [`Api::request`]: one request to the real router, in process, on a
//!   trial database of its own: a JSON body to any operation of the OpenAPI
//!   document that takes one, or a multipart upload, with the token of any
//!   role. Any 5xx answer is a failure.

use crate::imaging::{self, scan};
use crate::Settings;
use axum::body::Body;
use axum::http::{header, Method, Request};
use osteo_trial::accounts;
use osteo_trial::domain::{AuditSource, Role};
use std::collections::HashMap;
use tower::ServiceExt;

/// The walk over a file's headers: any answer is fine, a panic is not.
pub fn dicom_header(data: &[u8]) -> Result<(), String> {
    let _ = scan::check_lengths(data);
    Ok(())
}

/// Parse, check, decode, de-identify, encode and render one file, as an
/// upload is treated: a refusal is fine, a panic is not, and a file that is
/// accepted must encode and give a preview.
pub fn dicom_ingest(data: &[u8]) -> Result<(), String> {
    let Ok((mut obj, _)) = imaging::inspect(data) else {
        return Ok(());
    };
    let map: HashMap<String, String> = imaging::uids(&obj)
        .into_iter()
        .enumerate()
        .map(|(i, uid)| (uid, format!("2.25.{}", i + 1)))
        .collect();
    imaging::deidentify(&mut obj, "P-001", &map, Some(-30));
    let encoded =
        imaging::encode(&obj).map_err(|e| format!("an accepted file does not encode: {e}"))?;
    if let Err(e) = imaging::inspect(&encoded) {
        // The de-identified file is what is stored and served: it must read.
        return Err(format!(
            "the de-identified file of an accepted upload is refused: {e}"
        ));
    }
    imaging::render::png(&obj, 128, None)
        .map(|_| ())
        .map_err(|e| format!("an accepted file gives no preview: {e}"))
}

/// The multipart boundary of the upload requests (the fuzzer writes the
/// rest of the body).
pub const BOUNDARY: &str = "osteo-fuzz-boundary";

/// The roles whose tokens the requests carry, chosen by the input's second
/// byte.
const ROLES: [&str; 6] = [
    "coordinator",
    "radiologist",
    "investigator",
    "statistician",
    "monitor",
    "admin",
];

/// A server's router on a trial database of its own, with a token per role
/// and one enrolled case, to send requests to without a socket.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// Operations that take a body: method, path (ids filled in), and
    /// whether it is the upload (multipart) rather than JSON.
    operations: Vec<(Method, String, bool)>,
    tokens: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Api {
    /// Starts the server's router on a new SQLite database in a temporary
    /// directory (no model; uploads parsed in process).
    pub fn new() -> anyhow::Result<Api> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let dir = tempfile::tempdir()?;
        let mut settings = Settings::local(dir.path().to_path_buf());
        settings.demo = false;
        settings.accounts_per_role = true;
        settings.bind = "127.0.0.1:0".parse()?;
        settings.model = crate::ai::ModelChoice::Off;
        let app = runtime.block_on(crate::Application::build(settings))?;
        let db = app.db().clone();
        let router = app.router();
        let tokens = runtime.block_on(async {
            let mut tokens = Vec::new();
            for username in ROLES {
                tokens.push(token(&db, username).await?);
            }
            anyhow::Ok(tokens)
        })?;
        let operations = operations();
        let api = Api {
            runtime,
            router,
            operations,
            tokens,
            _dir: dir,
        };
        // One case, enrolled by the coordinator, for the case operations.
        let body = serde_json::json!({"arm": "prospective", "screening_date": "2025-06-02",
            "inclusion_met": true, "exclusions": [], "outcome": "enrolled"});
        let status = api
            .send(
                Method::POST,
                "/api/v1/screenings",
                0,
                body.to_string().into_bytes(),
                false,
            )
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(status == 201, "enrolling the case answered {status}");
        Ok(api)
    }

    /// One request chosen by `data`: its first byte picks the operation,
    /// its second the role, the rest is the body. The answer's status
    /// (0 for an input too short to be a request).
    pub fn request(&self, data: &[u8]) -> Result<u16, String> {
        let [op, role, body @ ..] = data else {
            return Ok(0);
        };
        let (method, path, multipart) = &self.operations[usize::from(*op) % self.operations.len()];
        let role = usize::from(*role) % self.tokens.len();
        self.send(method.clone(), path, role, body.to_vec(), *multipart)
    }

    /// The operations, as `method path` lines, in the order the first byte
    /// of an input picks them (for writing a corpus).
    pub fn operations(&self) -> Vec<String> {
        self.operations
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        role: usize,
        body: Vec<u8>,
        multipart: bool,
    ) -> Result<u16, String> {
        let kind = if multipart {
            format!("multipart/form-data; boundary={BOUNDARY}")
        } else {
            "application/json".to_owned()
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.tokens[role]),
            )
            .header(header::CONTENT_TYPE, kind)
            .body(Body::from(body))
            .map_err(|e| e.to_string())?;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
        let router = self.router.clone();
        let status = self
            .runtime
            .block_on(async move { router.oneshot(request).await })
            .map_err(|e| e.to_string())?
            .status();
        if status.is_server_error() {
            return Err(format!("{method} {path} as {}: {status}", ROLES[role]));
        }
        Ok(status.as_u16())
    }
}

/// A new API token of `username`, whose one-time password is replaced
/// first (and, for the trial's administrator and PI, a second factor
/// enrolled), as its owner would.
async fn token(db: &osteo_trial::store::Db, username: &str) -> anyhow::Result<String> {
    let user = accounts::find_by_username(db, username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account {username}"))?;
    let by = osteo_trial::audit::Principal::cli("fuzzing");
    let reason = osteo_trial::domain::Reason::parse("fuzzing set-up")?;
    let once =
        accounts::reset_password(db, &by, osteo_trial::domain::UserId::new(user.id), &reason)
            .await?;
    let principal = user.principal(AuditSource::Ui);
    let password = "fuzzing password of a test server";
    let user = accounts::change_password(db, &principal, once.expose(), password).await?;
    if user.second_factor_due && matches!(user.role, Role::Admin | Role::PrincipalInvestigator) {
        let enrolment = accounts::second_factor::start_enrolment(db, &principal).await?;
        let code = accounts::second_factor::current_code(&enrolment.secret, username)?;
        accounts::second_factor::confirm_enrolment(db, &principal, &code).await?;
    }
    let (_, secret) =
        accounts::create_token(db, &user.principal(AuditSource::Api), "fuzzing").await?;
    Ok(secret.expose().to_owned())
}

/// Every operation of the OpenAPI document that takes a body, with its ids
/// set to 1 (the enrolled case, the first account).
fn operations() -> Vec<(Method, String, bool)> {
    use utoipa::OpenApi;
    let doc = crate::api::ApiDoc::openapi();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let full = path.replace("{id}", "1");
        for (method, op) in [
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
        ] {
            let Some(op) = op else { continue };
            let Some(body) = &op.request_body else {
                continue;
            };
            let multipart = body.content.keys().any(|k| k.starts_with("multipart/"));
            out.push((method, full.clone(), multipart));
        }
    }
    out.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    // The corpus picks operations by index: operations added after it was
    // written go at the end, in the order of `ADDED_LATER`, so that every
    // input keeps the operation it was found with.
    let later = |path: &str| ADDED_LATER.iter().position(|p| *p == path);
    out.sort_by_key(|(_, path, _)| later(path).map_or(0, |i| i + 1));
    out
}

/// Operations with a body added to the API after the corpus was written,
/// in the order they were added.
const ADDED_LATER: [&str; 4] = [
    "/api/v1/cases/1/dicom-routes",
    "/api/v1/dicom/peers",
    "/api/v1/dicom/quarantine/1/assign",
    "/api/v1/dicom/quarantine/1/discard",
];
