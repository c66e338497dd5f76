//! The browser's form posts (they work with and without JavaScript): each
//! calls a `trial` service and redirects back (post/redirect/get), with a
//! one-off message in the session or an `?error=` code the page translates.

use crate::errors::html_error;
use crate::startup::AppState;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use osteo_app::api::Flash;
use osteo_app::auth;
use osteo_app::i18n::request_locale;
use osteo_trial::accounts::{self, AccountError, AccountUpdate, LoginError, NewUser, User};
use osteo_trial::domain::{AuditSource, DisplayName, DomainError, Locale, Reason, Role, SiteCode, Username};
use serde::Deserialize;
use tower_sessions::Session;

type Result<T> = std::result::Result<T, Response>;

fn back(path: &str, code: &str) -> Response {
    Redirect::to(&format!("{path}?error={code}")).into_response()
}

fn internal(headers: &HeaderMap, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "form post failed");
    html_error(StatusCode::INTERNAL_SERVER_ERROR, request_locale(headers), "error.internal")
}

/// A rejected form body: too large gets 413, anything else goes back to the
/// form with `bad_request`.
fn rejected(headers: &HeaderMap, path: &str, r: FormRejection) -> Response {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        html_error(StatusCode::PAYLOAD_TOO_LARGE, request_locale(headers), "error.too_large")
    } else {
        back(path, "bad_request")
    }
}

fn parse_form<T>(headers: &HeaderMap, path: &str, form: std::result::Result<Form<T>, FormRejection>) -> Result<T> {
    form.map(|Form(f)| f).map_err(|r| rejected(headers, path, r))
}

fn parse_id(headers: &HeaderMap, id: std::result::Result<Path<i64>, PathRejection>) -> Result<i64> {
    id.map(|Path(id)| id)
        .map_err(|_| html_error(StatusCode::NOT_FOUND, request_locale(headers), "notfound.body"))
}

/// The signed-in user who has set their own password, or the way to sign in.
async fn user(state: &AppState, session: &Session) -> Result<User> {
    match auth::current_user(&state.db, session, state.policy()).await {
        Ok(u) if u.must_change_password => Err(Redirect::to("/account/password").into_response()),
        Ok(u) => Ok(u),
        Err(_) => Err(Redirect::to("/login?error=expired").into_response()),
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
        format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", locale.tag()),
    )
}

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
    form: std::result::Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let f = match parse_form(&headers, "/login", form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if f.username.trim().is_empty() || f.password.is_empty() || f.password.len() > 1024 {
        return back("/login", "bad_request");
    }
    match accounts::login(&state.db, &f.username, &f.password, AuditSource::Ui).await {
        Ok(user) => {
            if let Err(e) = auth::begin(&session, &user).await {
                return internal(&headers, e);
            }
            let to = if user.must_change_password { "/account/password" } else { "/" };
            match user.locale {
                Some(l) => (AppendHeaders([lang_cookie(l)]), Redirect::to(to)).into_response(),
                None => Redirect::to(to).into_response(),
            }
        }
        Err(LoginError::Invalid) => back("/login", "invalid"),
        Err(LoginError::Deactivated) => back("/login", "deactivated"),
        Err(LoginError::Locked { until }) => {
            let until: String = until.chars().take(19).collect::<String>().replace('T', " ");
            Redirect::to(&format!("/login?error=locked&until={}", until.replace(' ', "%20"))).into_response()
        }
        Err(e) => internal(&headers, e),
    }
}

#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, session: Session, headers: HeaderMap) -> Response {
    if let Ok(user) = auth::current_user(&state.db, &session, state.policy()).await {
        if let Err(e) = accounts::record_logout(&state.db, &user.principal(AuditSource::Ui)).await {
            return internal(&headers, e);
        }
    }
    if let Err(e) = auth::end(&session).await {
        return internal(&headers, e);
    }
    Redirect::to("/login?info=signed_out").into_response()
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
    session: Session,
    headers: HeaderMap,
    form: std::result::Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    const PAGE: &str = "/account/password";
    let me = match auth::current_user(&state.db, &session, state.policy()).await {
        Ok(u) => u,
        Err(_) => return Redirect::to("/login?error=expired").into_response(),
    };
    let f = match parse_form(&headers, PAGE, form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if f.new_password != f.confirm_password {
        return back(PAGE, "mismatch");
    }
    match accounts::change_password(&state.db, &me.principal(AuditSource::Ui), &f.current_password, &f.new_password).await {
        Ok(user) => {
            if let Err(e) = auth::refresh(&session, &user).await {
                return internal(&headers, e);
            }
            flash(&session, "flash.password_changed", None, None).await;
            Redirect::to("/").into_response()
        }
        Err(AccountError::Invalid(DomainError::PasswordTooShort)) => back(PAGE, "too_short"),
        Err(AccountError::Invalid(DomainError::PasswordTooLong)) => back(PAGE, "too_long"),
        Err(AccountError::WrongPassword) => back(PAGE, "wrong_password"),
        Err(AccountError::PasswordUnchanged) => back(PAGE, "unchanged"),
        Err(e) => internal(&headers, e),
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
    form: std::result::Result<Form<LanguageForm>, FormRejection>,
) -> Response {
    let f = match parse_form(&headers, "/", form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(locale) = f.lang.parse::<Locale>() else {
        return back("/", "bad_request");
    };
    if let Ok(user) = auth::current_user(&state.db, &session, state.policy()).await {
        if let Err(e) = accounts::set_locale(&state.db, &user.principal(AuditSource::Ui), locale).await {
            return internal(&headers, e);
        }
    }
    // Back to the page the form was on; only a local path, never another site.
    let to = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned());
    (AppendHeaders([lang_cookie(locale)]), Redirect::to(&to)).into_response()
}

// ---------------------------------------------------------------- API tokens

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
}

#[tracing::instrument(skip_all)]
pub async fn create_token(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: std::result::Result<Form<TokenForm>, FormRejection>,
) -> Response {
    const PAGE: &str = "/account/tokens";
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let f = match parse_form(&headers, PAGE, form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match accounts::create_token(&state.db, &me.principal(AuditSource::Ui), &f.name).await {
        Ok((token, secret)) => {
            flash(&session, "flash.token_created", Some(token.name), Some(secret.expose().to_owned())).await;
            Redirect::to(PAGE).into_response()
        }
        Err(AccountError::Invalid(_)) => back(PAGE, "invalid_name"),
        Err(e) => internal(&headers, e),
    }
}

#[tracing::instrument(skip_all)]
pub async fn revoke_token(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    id: std::result::Result<Path<i64>, PathRejection>,
) -> Response {
    const PAGE: &str = "/account/tokens";
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = match parse_id(&headers, id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match accounts::revoke_token(&state.db, &me.principal(AuditSource::Ui), id).await {
        Ok(()) => {
            flash(&session, "flash.token_revoked", None, None).await;
            Redirect::to(PAGE).into_response()
        }
        Err(AccountError::UnknownToken) => back(PAGE, "unknown"),
        Err(e) => internal(&headers, e),
    }
}

// ------------------------------------------------------------ administration

const USERS: &str = "/admin/users";

/// Maps a service error on the users page to its response.
fn users_error(headers: &HeaderMap, e: AccountError) -> Response {
    match e {
        AccountError::Forbidden => html_error(StatusCode::FORBIDDEN, request_locale(headers), "error.forbidden"),
        AccountError::UsernameTaken(_) => back(USERS, "username_taken"),
        AccountError::UnknownSite(_) | AccountError::Invalid(DomainError::SiteCode) => back(USERS, "unknown_site"),
        AccountError::Invalid(DomainError::UsernameCharacters | DomainError::UsernameLength) => {
            back(USERS, "invalid_username")
        }
        AccountError::Invalid(DomainError::DisplayName) => back(USERS, "invalid_display_name"),
        AccountError::Invalid(DomainError::Reason) => back(USERS, "missing_reason"),
        AccountError::Invalid(DomainError::UnknownRole(_)) => back(USERS, "unknown_role"),
        AccountError::UnknownUser(_) => back(USERS, "unknown_user"),
        AccountError::SelfLockout => back(USERS, "self_lockout"),
        AccountError::Deactivated => back(USERS, "deactivated"),
        e => internal(headers, e),
    }
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    username: String,
    display_name: String,
    role: String,
    site: String,
}

fn parse_new_user(f: CreateUserForm) -> std::result::Result<NewUser, DomainError> {
    Ok(NewUser {
        username: Username::parse(&f.username)?,
        display_name: DisplayName::parse(&f.display_name)?,
        role: f.role.parse::<Role>()?,
        site: SiteCode::parse(&f.site)?,
    })
}

#[tracing::instrument(skip_all)]
pub async fn create_user(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: std::result::Result<Form<CreateUserForm>, FormRejection>,
) -> Response {
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let f = match parse_form(&headers, USERS, form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let new = match parse_new_user(f) {
        Ok(n) => n,
        Err(e) => return users_error(&headers, e.into()),
    };
    match accounts::create_user(&state.db, &me.principal(AuditSource::Ui), new).await {
        Ok((user, password)) => {
            flash(&session, "flash.user_created", Some(user.username), Some(password.expose().to_owned())).await;
            Redirect::to(USERS).into_response()
        }
        Err(e) => users_error(&headers, e),
    }
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
    session: Session,
    headers: HeaderMap,
    id: std::result::Result<Path<i64>, PathRejection>,
    form: std::result::Result<Form<UpdateUserForm>, FormRejection>,
) -> Response {
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (id, f) = match (parse_id(&headers, id), parse_form(&headers, USERS, form)) {
        (Ok(id), Ok(f)) => (id, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
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
    let (update, reason) = match parsed {
        Ok(p) => p,
        Err(e) => return users_error(&headers, e.into()),
    };
    match accounts::update_account(&state.db, &me.principal(AuditSource::Ui), id, update, &reason).await {
        Ok(user) => {
            flash(&session, "flash.user_updated", Some(user.username), None).await;
            Redirect::to(USERS).into_response()
        }
        Err(e) => users_error(&headers, e),
    }
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
    session: Session,
    headers: HeaderMap,
    id: std::result::Result<Path<i64>, PathRejection>,
    form: std::result::Result<Form<ActiveForm>, FormRejection>,
) -> Response {
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (id, f) = match (parse_id(&headers, id), parse_form(&headers, USERS, form)) {
        (Ok(id), Ok(f)) => (id, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let reason = match Reason::parse(&f.reason) {
        Ok(r) => r,
        Err(e) => return users_error(&headers, e.into()),
    };
    let update = AccountUpdate {
        active: Some(f.active),
        ..AccountUpdate::default()
    };
    match accounts::update_account(&state.db, &me.principal(AuditSource::Ui), id, update, &reason).await {
        Ok(user) => {
            flash(&session, "flash.user_updated", Some(user.username), None).await;
            Redirect::to(USERS).into_response()
        }
        Err(e) => users_error(&headers, e),
    }
}

#[tracing::instrument(skip_all)]
pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    id: std::result::Result<Path<i64>, PathRejection>,
    form: std::result::Result<Form<ReasonForm>, FormRejection>,
) -> Response {
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (id, f) = match (parse_id(&headers, id), parse_form(&headers, USERS, form)) {
        (Ok(id), Ok(f)) => (id, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let reason = match Reason::parse(&f.reason) {
        Ok(r) => r,
        Err(e) => return users_error(&headers, e.into()),
    };
    let principal = me.principal(AuditSource::Ui);
    match accounts::reset_password(&state.db, &principal, id, &reason).await {
        Ok(password) => {
            let username = accounts::get_user(&state.db, id).await.ok().flatten().map(|u| u.username);
            flash(&session, "flash.password_reset", username, Some(password.expose().to_owned())).await;
            Redirect::to(USERS).into_response()
        }
        Err(e) => users_error(&headers, e),
    }
}

#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    id: std::result::Result<Path<i64>, PathRejection>,
    form: std::result::Result<Form<ReasonForm>, FormRejection>,
) -> Response {
    let me = match user(&state, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (id, f) = match (parse_id(&headers, id), parse_form(&headers, USERS, form)) {
        (Ok(id), Ok(f)) => (id, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let reason = match Reason::parse(&f.reason) {
        Ok(r) => r,
        Err(e) => return users_error(&headers, e.into()),
    };
    match accounts::unlock(&state.db, &me.principal(AuditSource::Ui), id, &reason).await {
        Ok(user) => {
            flash(&session, "flash.user_unlocked", Some(user.username), None).await;
            Redirect::to(USERS).into_response()
        }
        Err(e) => users_error(&headers, e),
    }
}
