//! The administrator's accounts page: creating, changing, resetting,
//! unlocking and (de)activating accounts.

use super::{flash, refused, FormBody, Halt, Id, Member, Reply};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use osteo_trial::accounts::{self, AccountError, AccountUpdate, NewUser};
use osteo_trial::domain::UserId;
use osteo_trial::domain::{
    AuditSource, DisplayName, DomainError, Reason, Role, SiteCode, Username,
};
use serde::Deserialize;
use tower_sessions::Session;

// ------------------------------------------------------------ administration

/// Maps a service error on the users page to its response.
fn users_error(headers: &HeaderMap, e: AccountError) -> Halt {
    refused(headers, page::USERS, e)
}

/// Flashes `message` about the account and returns to the users page.
async fn done(
    session: &Session,
    message: &str,
    username: Option<String>,
    secret: Option<String>,
) -> Reply {
    flash(session, message, username, secret).await;
    Ok(Redirect::to(page::USERS).into_response())
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
    Id(id): Id<UserId>,
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
    me: &osteo_trial::accounts::User,
    session: &Session,
    headers: &HeaderMap,
    id: UserId,
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
    Id(id): Id<UserId>,
    FormBody(f): FormBody<ActiveForm>,
) -> Reply {
    let reason = Reason::parse(&f.reason).map_err(|e| users_error(&headers, e.into()))?;
    let update = AccountUpdate {
        active: Some(f.active),
        ..AccountUpdate::default()
    };
    apply_update(&state, &me, &session, &headers, id, update, &reason).await
}

/// What an administrator does to an account with a reason alone; each
/// route names its action (`routes`).
#[derive(Debug, Clone, Copy)]
pub enum AccountAction {
    /// A new one-time password, shown once.
    ResetPassword,
    /// Lifts a lockout before it expires.
    Unlock,
    /// Ends a lost second factor; the account enrols again.
    ResetSecondFactor,
}

#[tracing::instrument(skip_all)]
pub async fn account_action(
    State(state): State<AppState>,
    Extension(action): Extension<AccountAction>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id<UserId>,
    FormBody(f): FormBody<ReasonForm>,
) -> Reply {
    let reason = Reason::parse(&f.reason).map_err(|e| users_error(&headers, e.into()))?;
    let by = me.principal(AuditSource::Ui);
    match action {
        AccountAction::ResetPassword => {
            let password = accounts::reset_password(&state.db, &by, id, &reason)
                .await
                .map_err(|e| users_error(&headers, e))?;
            let username = accounts::get_user(&state.db, id.get())
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
        AccountAction::Unlock => {
            let user = accounts::unlock(&state.db, &by, id, &reason)
                .await
                .map_err(|e| users_error(&headers, e))?;
            done(&session, "flash.user_unlocked", Some(user.username), None).await
        }
        AccountAction::ResetSecondFactor => {
            let user = accounts::second_factor::reset(&state.db, &by, id, &reason)
                .await
                .map_err(|e| users_error(&headers, e))?;
            done(
                &session,
                "flash.second_factor_reset",
                Some(user.username),
                None,
            )
            .await
        }
    }
}
