//! The browser's form posts (they work with and without JavaScript): each
//! calls a `trial` service and redirects back (post/redirect/get), with a
//! one-off message in the session or an `?error=` code the page translates.

use crate::errors::html_error;
use crate::startup::AppState;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use osteo_app::api::Flash;
use osteo_app::auth;
use osteo_app::i18n::request_locale;
use osteo_trial::accounts::{self, AccountError, AccountUpdate, LoginError, NewUser, User};
use osteo_trial::domain::{
    AuditSource, DisplayName, DomainError, Locale, Reason, Role, SiteCode, Username,
};
use osteo_trial::screening::{self, ExclusionCode, ScreeningEntry, ScreeningError, ScreeningInput};
use serde::Deserialize;
use tower_sessions::Session;

/// A form post that cannot go on: the response that says why. Boxed, as
/// responses are large and this travels through `?`.
pub struct Halt(Box<Response>);

impl IntoResponse for Halt {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Halt {
    fn from(r: Response) -> Self {
        Halt(Box::new(r))
    }
}

type Reply = std::result::Result<Response, Halt>;

fn back(path: &str, code: &str) -> Halt {
    Redirect::to(&format!("{path}?error={code}"))
        .into_response()
        .into()
}

/// The one mapping of a trial service's refusal to a form post's answer, by
/// the kind the error declares (`osteo_trial::error`): the 403 page, the 500
/// page (the cause chain logged), or back to `page` with the error's code,
/// which the page translates.
fn refused<E: osteo_trial::error::ServiceError>(headers: &HeaderMap, page: &str, e: E) -> Halt {
    use osteo_trial::error::ErrorKind;
    match e.kind() {
        ErrorKind::Forbidden => html_error(
            StatusCode::FORBIDDEN,
            request_locale(headers),
            "error.forbidden",
        )
        .into(),
        ErrorKind::Internal => internal(headers, crate::errors::error_chain(&e)),
        ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Invalid => back(page, e.code()),
    }
}

fn internal(headers: &HeaderMap, e: impl std::fmt::Display) -> Halt {
    tracing::error!(error = %e, "form post failed");
    html_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        request_locale(headers),
        "error.internal",
    )
    .into()
}

mod cases;
mod study;
pub use cases::*;
pub use study::*;

/// The page a form posted to `path` lives on (where errors are shown).
fn page_of(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/cases/") {
        let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return format!("/cases/{id}");
    }
    if path.starts_with("/queries") {
        return "/cases".to_owned();
    }
    if path.starts_with("/study") {
        return "/study".to_owned();
    }
    if path.starts_with("/sap") {
        return "/analysis".to_owned();
    }
    page_of_static(path).to_owned()
}

fn page_of_static(path: &str) -> &'static str {
    if path.starts_with("/admin/users") {
        USERS
    } else if path.starts_with("/account/tokens") {
        TOKENS
    } else if path.starts_with("/auth/password") {
        PASSWORD
    } else if path.starts_with(SCREENING) {
        SCREENING
    } else if path.starts_with("/auth/login") {
        "/login"
    } else {
        "/"
    }
}

/// A form body; a body that is too large gets 413, a malformed or
/// incomplete one goes back to its page with `bad_request`.
pub struct FormBody<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = Halt;

    async fn from_request(req: Request, state: &S) -> std::result::Result<Self, Self::Rejection> {
        let page = page_of(req.uri().path());
        let headers = req.headers().clone();
        match Form::<T>::from_request(req, state).await {
            Ok(Form(f)) => Ok(FormBody(f)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(html_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                request_locale(&headers),
                "error.too_large",
            )
            .into()),
            Err(_) => Err(back(&page, "bad_request")),
        }
    }
}

/// The numeric id in the path; anything else is a page that does not exist.
pub struct Id(i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        match Path::<i64>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(_) => Err(not_found(&parts.headers)),
        }
    }
}

/// The signed-in user (even one who must still replace a one-time password).
pub struct SignedIn(User, Session);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, msg)| Halt::from((status, msg).into_response()))?;
        // `guard::resolve_user` has resolved the user for this request already.
        let user = match parts.extensions.get::<auth::RequestAuth>() {
            Some(resolved) => resolved.user.clone(),
            None => auth::current_user(&state.db, &session, state.policy()).await,
        };
        match user {
            Ok(user) => Ok(SignedIn(user, session)),
            Err(_) => Err(Redirect::to("/login?error=expired").into_response().into()),
        }
    }
}

/// The signed-in user who has set their own password.
pub struct Member(User, Session);

impl FromRequestParts<AppState> for Member {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let SignedIn(user, session) = SignedIn::from_request_parts(parts, state).await?;
        if user.must_change_password {
            return Err(Redirect::to(PASSWORD).into_response().into());
        }
        Ok(Member(user, session))
    }
}

async fn flash(session: &Session, message: &str, detail: Option<String>, secret: Option<String>) {
    let flash = Flash {
        message: message.to_owned(),
        detail,
        secret,
    };
    if let Err(e) = auth::set_flash(session, flash).await {
        tracing::warn!(error = %e, "could not store the message for the next page");
    }
}

fn lang_cookie(locale: Locale) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            locale.tag()
        ),
    )
}

const USERS: &str = "/admin/users";
const TOKENS: &str = "/account/tokens";
const PASSWORD: &str = "/account/password";

// ------------------------------------------------------------------ sign-in

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    FormBody(f): FormBody<LoginForm>,
) -> Reply {
    if f.username.trim().is_empty() || f.password.is_empty() || f.password.len() > 1024 {
        return Err(back("/login", "bad_request"));
    }
    match accounts::login(&state.db, &f.username, &f.password, AuditSource::Ui).await {
        Ok(user) => {
            auth::begin(&session, &user)
                .await
                .map_err(|e| internal(&headers, e))?;
            let to = if user.must_change_password {
                PASSWORD
            } else {
                "/"
            };
            Ok(match user.locale {
                Some(l) => (AppendHeaders([lang_cookie(l)]), Redirect::to(to)).into_response(),
                None => Redirect::to(to).into_response(),
            })
        }
        Err(LoginError::Invalid) => Err(back("/login", "invalid")),
        Err(LoginError::Deactivated) => Err(back("/login", "deactivated")),
        Err(LoginError::Locked { until }) => {
            // "2026-11-26T10:15:00.123456Z" -> "2026-11-26 10:15:00"
            let until: String = until
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', "%20");
            Ok(Redirect::to(&format!("/login?error=locked&until={until}")).into_response())
        }
        Err(e) => Err(internal(&headers, e)),
    }
}

#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, session: Session, headers: HeaderMap) -> Reply {
    if let Ok(user) = auth::current_user(&state.db, &session, state.policy()).await {
        accounts::record_logout(&state.db, &user.principal(AuditSource::Ui))
            .await
            .map_err(|e| internal(&headers, e))?;
    }
    auth::end(&session)
        .await
        .map_err(|e| internal(&headers, e))?;
    Ok(Redirect::to("/login?info=signed_out").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AppState>,
    SignedIn(me, session): SignedIn,
    headers: HeaderMap,
    FormBody(f): FormBody<PasswordForm>,
) -> Reply {
    if f.new_password != f.confirm_password {
        return Err(back(PASSWORD, "mismatch"));
    }
    let principal = me.principal(AuditSource::Ui);
    match accounts::change_password(&state.db, &principal, &f.current_password, &f.new_password)
        .await
    {
        Ok(user) => {
            auth::refresh(&session, &user)
                .await
                .map_err(|e| internal(&headers, e))?;
            flash(&session, "flash.password_changed", None, None).await;
            Ok(Redirect::to("/").into_response())
        }
        Err(e) => Err(refused(&headers, PASSWORD, e)),
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    lang: String,
}

/// Switches the interface language: a cookie for this browser, and the
/// user's saved choice when signed in. Returns to the page it came from.
#[tracing::instrument(skip_all)]
pub async fn set_language(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    FormBody(f): FormBody<LanguageForm>,
) -> Reply {
    let locale = f
        .lang
        .parse::<Locale>()
        .map_err(|_| back("/", "bad_request"))?;
    if let Ok(user) = auth::current_user(&state.db, &session, state.policy()).await {
        accounts::set_locale(&state.db, &user.principal(AuditSource::Ui), locale)
            .await
            .map_err(|e| internal(&headers, e))?;
    }
    // Back to the page the form was on; only a local path, never another site.
    let to = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned());
    Ok((AppendHeaders([lang_cookie(locale)]), Redirect::to(&to)).into_response())
}

// ---------------------------------------------------------------- API tokens

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
}

#[tracing::instrument(skip_all)]
pub async fn create_token(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<TokenForm>,
) -> Reply {
    match accounts::create_token(&state.db, &me.principal(AuditSource::Ui), &f.name).await {
        Ok((token, secret)) => {
            flash(
                &session,
                "flash.token_created",
                Some(token.name),
                Some(secret.expose().to_owned()),
            )
            .await;
            Ok(Redirect::to(TOKENS).into_response())
        }
        Err(e) => Err(refused(&headers, TOKENS, e)),
    }
}

#[tracing::instrument(skip_all)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
) -> Reply {
    match accounts::revoke_token(&state.db, &me.principal(AuditSource::Ui), id).await {
        Ok(()) => {
            flash(&session, "flash.token_revoked", None, None).await;
            Ok(Redirect::to(TOKENS).into_response())
        }
        Err(e) => Err(refused(&headers, TOKENS, e)),
    }
}

// ------------------------------------------------------------ administration

/// Maps a service error on the users page to its response.
fn users_error(headers: &HeaderMap, e: AccountError) -> Halt {
    refused(headers, USERS, e)
}

/// Flashes `message` about the account and returns to the users page.
async fn done(
    session: &Session,
    message: &str,
    username: Option<String>,
    secret: Option<String>,
) -> Reply {
    flash(session, message, username, secret).await;
    Ok(Redirect::to(USERS).into_response())
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    username: String,
    display_name: String,
    role: String,
    site: String,
}

#[tracing::instrument(skip_all)]
pub async fn create_user(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<CreateUserForm>,
) -> Reply {
    let parsed = (|| -> std::result::Result<NewUser, DomainError> {
        Ok(NewUser {
            username: Username::parse(&f.username)?,
            display_name: DisplayName::parse(&f.display_name)?,
            role: f.role.parse::<Role>()?,
            site: SiteCode::parse(&f.site)?,
        })
    })();
    let new = parsed.map_err(|e| users_error(&headers, e.into()))?;
    let (user, password) = accounts::create_user(&state.db, &me.principal(AuditSource::Ui), new)
        .await
        .map_err(|e| users_error(&headers, e))?;
    done(
        &session,
        "flash.user_created",
        Some(user.username),
        Some(password.expose().to_owned()),
    )
    .await
}

#[derive(Deserialize)]
pub struct UpdateUserForm {
    role: String,
    site: String,
    display_name: String,
    reason: String,
}

#[tracing::instrument(skip_all)]
pub async fn update_user(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<UpdateUserForm>,
) -> Reply {
    let parsed = (|| -> std::result::Result<(AccountUpdate, Reason), DomainError> {
        Ok((
            AccountUpdate {
                role: Some(f.role.parse()?),
                site: Some(SiteCode::parse(&f.site)?),
                display_name: Some(DisplayName::parse(&f.display_name)?),
                active: None,
            },
            Reason::parse(&f.reason)?,
        ))
    })();
    let (update, reason) = parsed.map_err(|e| users_error(&headers, e.into()))?;
    apply_update(&state, &me, &session, &headers, id, update, &reason).await
}

/// Applies an account update and returns to the users page with a message.
async fn apply_update(
    state: &AppState,
    me: &User,
    session: &Session,
    headers: &HeaderMap,
    id: i64,
    update: AccountUpdate,
    reason: &Reason,
) -> Reply {
    let principal = me.principal(AuditSource::Ui);
    let user = accounts::update_account(&state.db, &principal, id, update, reason)
        .await
        .map_err(|e| users_error(headers, e))?;
    done(session, "flash.user_updated", Some(user.username), None).await
}

#[derive(Deserialize)]
pub struct ReasonForm {
    reason: String,
}

#[derive(Deserialize)]
pub struct ActiveForm {
    active: bool,
    reason: String,
}

#[tracing::instrument(skip_all)]
pub async fn set_active(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ActiveForm>,
) -> Reply {
    let reason = Reason::parse(&f.reason).map_err(|e| users_error(&headers, e.into()))?;
    let update = AccountUpdate {
        active: Some(f.active),
        ..AccountUpdate::default()
    };
    apply_update(&state, &me, &session, &headers, id, update, &reason).await
}

#[tracing::instrument(skip_all)]
pub async fn reset_password(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ReasonForm>,
) -> Reply {
    let reason = Reason::parse(&f.reason).map_err(|e| users_error(&headers, e.into()))?;
    let password = accounts::reset_password(&state.db, &me.principal(AuditSource::Ui), id, &reason)
        .await
        .map_err(|e| users_error(&headers, e))?;
    let username = accounts::get_user(&state.db, id)
        .await
        .ok()
        .flatten()
        .map(|u| u.username);
    done(
        &session,
        "flash.password_reset",
        username,
        Some(password.expose().to_owned()),
    )
    .await
}

#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ReasonForm>,
) -> Reply {
    let reason = Reason::parse(&f.reason).map_err(|e| users_error(&headers, e.into()))?;
    let user = accounts::unlock(&state.db, &me.principal(AuditSource::Ui), id, &reason)
        .await
        .map_err(|e| users_error(&headers, e))?;
    done(&session, "flash.user_unlocked", Some(user.username), None).await
}

// ---------------------------------------------------------------- screening

const SCREENING: &str = "/screening";

/// The screening form. Checkboxes are present only when ticked.
#[derive(Deserialize)]
pub struct ScreeningForm {
    arm: String,
    screening_date: String,
    inclusion_met: Option<String>,
    e1: Option<String>,
    e2: Option<String>,
    e3: Option<String>,
    outcome: String,
    not_enrolled_reason: Option<String>,
    comment: Option<String>,
    reason: Option<String>,
}

impl ScreeningForm {
    fn input(&self) -> Result<ScreeningInput, ScreeningError> {
        let exclusions = [
            (&self.e1, ExclusionCode::E1),
            (&self.e2, ExclusionCode::E2),
            (&self.e3, ExclusionCode::E3),
        ]
        .into_iter()
        .filter(|(ticked, _)| ticked.is_some())
        .map(|(_, code)| code)
        .collect();
        Ok(ScreeningInput {
            arm: self.arm.parse()?,
            screening_date: self.screening_date.clone(),
            inclusion_met: self.inclusion_met.is_some(),
            exclusions,
            outcome: self.outcome.parse()?,
            not_enrolled_reason: self
                .not_enrolled_reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(str::parse)
                .transpose()?,
            comment: self.comment.clone(),
        })
    }
}

/// Maps a refused screening entry to the form's error code.
fn screening_error(headers: &HeaderMap, e: ScreeningError) -> Halt {
    refused(headers, SCREENING, e)
}

fn screened_label(e: &ScreeningEntry) -> String {
    match &e.study_number {
        Some(study) => format!("{} #{} → {study}", e.site_code, e.screening_no),
        None => format!("{} #{}", e.site_code, e.screening_no),
    }
}

#[tracing::instrument(skip_all)]
pub async fn screen(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<ScreeningForm>,
) -> Reply {
    let input = f.input().map_err(|e| screening_error(&headers, e))?;
    let entry = screening::screen(&state.db, &me.principal(AuditSource::Ui), input)
        .await
        .map_err(|e| screening_error(&headers, e))?;
    flash(
        &session,
        "flash.screened",
        Some(screened_label(&entry)),
        None,
    )
    .await;
    Ok(Redirect::to(SCREENING).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn correct_screening(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ScreeningForm>,
) -> Reply {
    let reason = Reason::parse(f.reason.as_deref().unwrap_or_default())
        .map_err(|e| screening_error(&headers, e.into()))?;
    let input = f.input().map_err(|e| screening_error(&headers, e))?;
    let entry = screening::correct(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        input,
        &reason,
    )
    .await
    .map_err(|e| screening_error(&headers, e))?;
    flash(
        &session,
        "flash.screening_corrected",
        Some(screened_label(&entry)),
        None,
    )
    .await;
    Ok(Redirect::to(SCREENING).into_response())
}

/// The "not found" page, in the request's language.
pub(crate) fn not_found(headers: &HeaderMap) -> Halt {
    html_error(
        StatusCode::NOT_FOUND,
        request_locale(headers),
        "notfound.body",
    )
    .into()
}
