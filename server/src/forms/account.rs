//! Signing in and out, the user's own password, language and API tokens.

use super::{
    back, busy, flash, internal, lang_cookie, refused, FormBody, Id, Member, Reply, SignedIn,
};
use crate::state::AppState;
use crate::throttle::ClientAddress;
use crate::urls::page;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{AppendHeaders, IntoResponse, Redirect};
use osteo_app::auth;
use osteo_trial::accounts::{self, LoginError, PasswordError};
use osteo_trial::domain::{AuditSource, Locale};
use serde::Deserialize;
use tower_sessions::Session;

// ------------------------------------------------------------------ sign-in

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    session: Session,
    headers: HeaderMap,
    FormBody(f): FormBody<LoginForm>,
) -> Reply {
    if f.username.trim().is_empty() || f.password.is_empty() || f.password.len() > 1024 {
        return Err(back(page::LOGIN, "bad_request"));
    }
    // Counted before any password work: an attempt over the limit costs
    // no Argon2 and no audit row.
    if let Err(too_many) = state.login_throttle.check(address, &f.username) {
        tracing::warn!(address = ?address, "sign-in attempts over the limit");
        return Err(too_many_attempts(&headers, too_many.retry_after));
    }
    match accounts::login(&state.db, &f.username, &f.password, AuditSource::Ui).await {
        Ok(user) if user.second_factor => {
            // The password was right; the code from the app comes next.
            auth::begin_second_factor(&session, &user)
                .await
                .map_err(|e| internal(&headers, e))?;
            Ok(Redirect::to(page::LOGIN_CODE).into_response())
        }
        Ok(user) => signed_in(&session, &headers, &user).await,
        Err(LoginError::Invalid) => {
            tracing::info!(address = ?address, "sign-in refused: wrong username or password");
            Err(back(page::LOGIN, "invalid"))
        }
        Err(LoginError::Deactivated) => Err(back(page::LOGIN, "deactivated")),
        Err(LoginError::Password(PasswordError::Busy)) => Err(busy(&headers)),
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

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// The second step of signing in: the code from the authenticator app (or
/// a recovery code) for the account whose password this session gave.
#[tracing::instrument(skip_all)]
pub async fn second_factor(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    session: Session,
    headers: HeaderMap,
    FormBody(f): FormBody<CodeForm>,
) -> Reply {
    let Some(user) = auth::pending_second_factor(&state.db, &session).await else {
        return Ok(Redirect::to("/login?error=expired").into_response());
    };
    if f.code.trim().is_empty() || f.code.len() > 64 {
        return Err(back(page::LOGIN_CODE, "bad_request"));
    }
    if let Err(too_many) = state.login_throttle.check(address, &user.username) {
        return Err(too_many_attempts(&headers, too_many.retry_after));
    }
    match accounts::second_factor::check(
        &state.db,
        &user,
        Some(&f.code),
        AuditSource::Ui,
        accounts::second_factor::CodeUse::SignIn,
    )
    .await
    {
        Ok(()) => signed_in(&session, &headers, &user).await,
        Err(LoginError::Locked { .. }) => {
            auth::end(&session)
                .await
                .map_err(|e| internal(&headers, e))?;
            Ok(Redirect::to("/login?error=locked").into_response())
        }
        Err(LoginError::Invalid | LoginError::SecondFactorNeeded) => {
            Err(back(page::LOGIN_CODE, "invalid"))
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
        return Err(back(page::PASSWORD, "mismatch"));
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
        Err(e) => Err(refused(&headers, page::PASSWORD, e)),
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
            Ok(Redirect::to(page::TOKENS).into_response())
        }
        Err(e) => Err(refused(&headers, page::TOKENS, e)),
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
            Ok(Redirect::to(page::TOKENS).into_response())
        }
        Err(e) => Err(refused(&headers, page::TOKENS, e)),
    }
}

// ------------------------------------------------------------ second factor

/// Starts enrolling a second factor (a new secret; the page shows it).
#[tracing::instrument(skip_all)]
pub async fn start_second_factor(
    State(state): State<AppState>,
    SignedIn(me, _session): SignedIn,
    headers: HeaderMap,
) -> Reply {
    match accounts::second_factor::start_enrolment(&state.db, &me.principal(AuditSource::Ui)).await
    {
        Ok(_) => Ok(Redirect::to(page::SECOND_FACTOR).into_response()),
        Err(e) => Err(refused(&headers, page::SECOND_FACTOR, e)),
    }
}

/// Confirms the enrolment with a code from the app; the recovery codes are
/// shown once, on the next page.
#[tracing::instrument(skip_all)]
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    SignedIn(me, session): SignedIn,
    headers: HeaderMap,
    FormBody(f): FormBody<CodeForm>,
) -> Reply {
    if f.code.trim().is_empty() || f.code.len() > 64 {
        return Err(back(page::SECOND_FACTOR, "bad_request"));
    }
    match accounts::second_factor::confirm_enrolment(
        &state.db,
        &me.principal(AuditSource::Ui),
        &f.code,
    )
    .await
    {
        Ok(codes) => {
            flash(
                &session,
                "second_factor.recovery_codes",
                None,
                Some(codes.join("  ")),
            )
            .await;
            Ok(Redirect::to(page::SECOND_FACTOR).into_response())
        }
        Err(e) => Err(refused(&headers, page::SECOND_FACTOR, e)),
    }
}

/// The session begins (after the password, and the code when the account
/// has a second factor): to the password change when one is due, else home,
/// in the account's language.
async fn signed_in(session: &Session, headers: &HeaderMap, user: &accounts::User) -> Reply {
    auth::begin(session, user)
        .await
        .map_err(|e| internal(headers, e))?;
    let to = if user.must_change_password {
        page::PASSWORD
    } else {
        "/"
    };
    Ok(match user.locale {
        Some(l) => (AppendHeaders([lang_cookie(l)]), Redirect::to(to)).into_response(),
        None => Redirect::to(to).into_response(),
    })
}

/// 429 with `Retry-After`: sign-in attempts over the limit.
fn too_many_attempts(headers: &HeaderMap, retry_after: std::time::Duration) -> crate::forms::Halt {
    crate::errors::html_retry_later(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        osteo_app::i18n::request_locale(headers),
        "login.error.too_many",
        retry_after.as_secs_f64().ceil() as u64,
    )
    .into()
}
