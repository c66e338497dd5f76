//! Server functions: what the pages read. Each one checks on the server who
//! is asking and what their role allows, then calls the `trial` services — the
//! same services the REST API calls. Changes are made by plain form posts to
//! the server (they work without JavaScript); these functions only read.

pub mod cases;

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use osteo_trial::audit::{AuditFilter, AuditPage};
use osteo_trial::domain::Role;
use serde::{Deserialize, Serialize};

/// The error every server function returns: what the page can say to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("not allowed")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("internal error")]
    Internal,
    #[error("request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// The translation key of the message shown for this error.
    pub fn message_key(&self) -> &'static str {
        match self {
            AppError::NotSignedIn => "error.not_signed_in",
            AppError::Forbidden => "error.forbidden",
            AppError::Invalid(_) => "error.invalid",
            AppError::Internal | AppError::Transport(_) => "error.internal",
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

/// The signed-in user, as the pages need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub site_code: String,
    pub must_change_password: bool,
    /// Whether the account has a second factor: its signature forms ask
    /// for the code.
    pub second_factor: bool,
}

/// An account row of the administration page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub site_code: String,
    pub active: bool,
    pub locked_until: Option<String>,
    pub failed_logins: i64,
    pub must_change_password: bool,
    pub second_factor: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersView {
    pub users: Vec<UserView>,
    pub sites: Vec<SiteView>,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What the server provides to the pages and server functions.
    use super::AppError;
    use crate::auth::{current_user, SessionPolicy};
    use leptos::prelude::*;
    use osteo_trial::accounts::User;
    use osteo_trial::store::Db;
    use tower_sessions::Session;

    /// Provided by the server as context for every page and server function.
    #[derive(Debug, Clone)]
    pub struct UiContext {
        pub db: Db,
        pub policy: SessionPolicy,
        /// The model the server runs, if any.
        pub model: Option<super::cases::ModelInfo>,
        /// The trial, or the demonstration study (fixed when the database was made).
        pub study_kind: osteo_trial::domain::StudyKind,
        /// Reads what a quarantined DICOM file says of itself (the server's
        /// PACS link provides it).
        pub quarantine: Option<QuarantineReader>,
    }

    /// What a quarantined file says: label and value pairs, read from the
    /// file by its SHA-256 (the identifiers never enter the database).
    #[derive(Clone)]
    pub struct QuarantineReader(
        #[allow(clippy::type_complexity)]
        pub  std::sync::Arc<
            dyn Fn(
                    String,
                ) -> std::pin::Pin<
                    Box<dyn std::future::Future<Output = Vec<(String, String)>> + Send>,
                > + Send
                + Sync,
        >,
    );

    impl std::fmt::Debug for QuarantineReader {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("QuarantineReader")
        }
    }

    pub fn context() -> Result<UiContext, AppError> {
        use_context::<UiContext>().ok_or(AppError::Internal)
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| AppError::Internal)
    }

    /// The signed-in user, even one who must still change a one-time password.
    pub async fn signed_in() -> Result<(UiContext, User), AppError> {
        let ctx = context()?;
        let user = match request_auth() {
            Some(auth) => auth.user,
            None => current_user(&ctx.db, &session().await?, ctx.policy).await,
        };
        Ok((ctx, user.map_err(|_| AppError::NotSignedIn)?))
    }

    /// What the server's middleware resolved for this request, if it ran.
    pub fn request_auth() -> Option<crate::auth::RequestAuth> {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<crate::auth::RequestAuth>().cloned())
    }

    /// The signed-in user who has set their own password (and enrolled a
    /// second factor where the role requires one).
    pub async fn user() -> Result<(UiContext, User), AppError> {
        let (ctx, user) = signed_in().await?;
        if user.must_change_password || user.must_enrol_second_factor() {
            return Err(AppError::Forbidden);
        }
        Ok((ctx, user))
    }

    pub fn internal(e: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %e, "server function failed");
        AppError::Internal
    }

    /// The one mapping of a service's refusal to what a page can say (the
    /// policy in `osteo_trial::error`): by kind, never by variant.
    pub fn refused<E: osteo_trial::error::ServiceError>(e: E) -> AppError {
        use osteo_trial::error::ErrorKind;
        match e.kind() {
            ErrorKind::Forbidden => AppError::Forbidden,
            ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Invalid | ErrorKind::Busy => {
                AppError::Invalid(e.to_string())
            }
            ErrorKind::Internal => {
                let chain = error_chain(&e);
                tracing::error!(error = %chain, "server function failed");
                AppError::Internal
            }
        }
    }

    /// An error with its causes, for the log.
    pub fn error_chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// The signed-in user, or `None`.
#[server(prefix = "/sfn", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    match ssr::signed_in().await {
        Ok((_, u)) => Ok(Some(Me {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            site_code: u.site_code,
            must_change_password: u.must_change_password,
            second_factor: u.second_factor,
        })),
        Err(AppError::NotSignedIn) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Which study this installation holds: every page of the demonstration
/// study says so (no sign-in needed: the login page says it too).
#[server(prefix = "/sfn", endpoint = "study_kind")]
pub async fn study_kind() -> Result<osteo_trial::domain::StudyKind, AppError> {
    Ok(ssr::context()?.study_kind)
}

/// The message left for this page by the last form post, if any (read once).
#[server(prefix = "/sfn", endpoint = "flash")]
pub async fn take_flash() -> Result<Option<crate::flash::Flash>, AppError> {
    match ssr::request_auth() {
        Some(auth) => Ok(auth.flash),
        None => Ok(crate::auth::take_flash(&ssr::session().await?).await),
    }
}

/// A received DICOM image in the PACS link's quarantine, as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineView {
    pub id: i64,
    pub received_at: String,
    pub calling_ae: String,
    pub peer_address: String,
    pub size_bytes: i64,
    pub reason: String,
    pub outcome: Option<String>,
    pub case_id: Option<i64>,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
    /// What the file says of itself (while it waits).
    pub found: Vec<(String, String)>,
}

/// The quarantine, waiting images first (coordinators).
#[server(prefix = "/sfn", endpoint = "quarantine")]
pub async fn list_quarantine() -> Result<Vec<QuarantineView>, AppError> {
    use osteo_trial::domain::AuditSource;
    let (ctx, me) = ssr::user().await?;
    let entries = osteo_trial::pacs::quarantined(&ctx.db, &me.principal(AuditSource::Ui))
        .await
        .map_err(ssr::refused)?;
    let mut out = Vec::with_capacity(entries.len());
    for q in entries {
        let found = match (&ctx.quarantine, q.outcome.is_none()) {
            (Some(reader), true) => (reader.0)(q.original_sha256.clone()).await,
            _ => Vec::new(),
        };
        out.push(QuarantineView {
            id: q.id,
            received_at: q.received_at,
            calling_ae: q.calling_ae,
            peer_address: q.peer_address,
            size_bytes: q.size_bytes,
            reason: q.reason,
            outcome: q.outcome,
            case_id: q.case_id,
            resolved_at: q.resolved_at,
            resolution: q.resolution,
            found,
        });
    }
    Ok(out)
}

/// Accounts and sites, for those allowed to see them.
#[server(prefix = "/sfn", endpoint = "users")]
pub async fn list_users() -> Result<UsersView, AppError> {
    use osteo_trial::accounts;
    use osteo_trial::domain::AuditSource;
    let (ctx, me) = ssr::user().await?;
    let users = accounts::list_users(&ctx.db, &me.principal(AuditSource::Ui))
        .await
        .map_err(ssr::refused)?;
    let sites = accounts::list_sites(&ctx.db).await.map_err(ssr::internal)?;
    Ok(UsersView {
        users: users
            .into_iter()
            .map(|u| UserView {
                locked_until: u.is_locked().then(|| u.locked_until.clone()).flatten(),
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                role: u.role,
                site_code: u.site_code,
                active: u.active,
                failed_logins: u.failed_logins,
                must_change_password: u.must_change_password,
                second_factor: u.second_factor,
            })
            .collect(),
        sites: sites
            .into_iter()
            .map(|s| SiteView {
                code: s.code,
                name: s.name,
            })
            .collect(),
    })
}

/// One page of the audit trail.
#[server(prefix = "/sfn", endpoint = "audit")]
pub async fn read_audit(filter: AuditFilter) -> Result<AuditPage, AppError> {
    use osteo_trial::audit::{self, QueryError};
    use osteo_trial::domain::Permission;
    let (ctx, me) = ssr::user().await?;
    if !me.role.can(Permission::ViewAudit) {
        return Err(AppError::Forbidden);
    }
    audit::query(&ctx.db, &filter, 50)
        .await
        .map_err(|e| match e {
            QueryError::Filter(f) => AppError::Invalid(f.to_string()),
            e => ssr::internal(e),
        })
}

/// The screening log as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningView {
    pub log: osteo_trial::screening::ScreeningLog,
    /// Whether this user may log and correct entries.
    pub can_enter: bool,
    /// Today (UTC), the form's default date.
    pub today: String,
    /// The latest date the form accepts (today in the easternmost time zone).
    pub latest: String,
}

/// The screening log, its report and flow counts.
#[server(prefix = "/sfn", endpoint = "screening")]
pub async fn screening_log() -> Result<ScreeningView, AppError> {
    use osteo_trial::domain::{AuditSource, Permission};
    use osteo_trial::screening;
    let (ctx, me) = ssr::user().await?;
    let log = screening::log(&ctx.db, &me.principal(AuditSource::Ui))
        .await
        .map_err(ssr::refused)?;
    Ok(ScreeningView {
        log,
        can_enter: me.role.can(Permission::EnterScreening),
        today: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        latest: screening::latest_screening_date(),
    })
}

/// The caller's API tokens.
/// The second-factor page: whether the account has one, whether its role
/// requires one, and the enrolment under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorState {
    pub enrolled: bool,
    pub required: bool,
    pub pending: Option<PendingEnrolment>,
}

/// A started enrolment: the secret as text and its `otpauth://` address as
/// a QR code (SVG), for the authenticator app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEnrolment {
    pub secret: String,
    pub qr_svg: String,
}

#[server(prefix = "/sfn", endpoint = "second_factor")]
pub async fn second_factor_view() -> Result<SecondFactorState, AppError> {
    use osteo_trial::accounts::second_factor;
    // Signed in, but perhaps still to enrol: this page is where one does.
    let (ctx, me) = ssr::signed_in().await?;
    let pending = second_factor::pending_enrolment(&ctx.db, &me)
        .await
        .map_err(ssr::refused)?
        .map(|e| -> Result<PendingEnrolment, AppError> {
            let qr = qrcode::QrCode::new(e.otpauth_url.as_bytes()).map_err(ssr::internal)?;
            Ok(PendingEnrolment {
                secret: e.secret,
                qr_svg: qr
                    .render::<qrcode::render::svg::Color>()
                    .min_dimensions(200, 200)
                    .build(),
            })
        })
        .transpose()?;
    Ok(SecondFactorState {
        enrolled: me.second_factor,
        required: second_factor::required(me.role),
        pending,
    })
}

#[server(prefix = "/sfn", endpoint = "tokens")]
pub async fn list_tokens() -> Result<Vec<osteo_trial::domain::ApiToken>, AppError> {
    use osteo_trial::accounts;
    use osteo_trial::domain::AuditSource;
    let (ctx, me) = ssr::user().await?;
    accounts::list_tokens(&ctx.db, &me.principal(AuditSource::Ui))
        .await
        .map_err(ssr::refused)
}
