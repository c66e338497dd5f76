//! Accounts, sites and API tokens over REST.

use super::{ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::accounts::{self, AccountUpdate, NewUser, User};
use osteo_trial::domain::UserId;
use osteo_trial::domain::{DisplayName, Permission, Reason, Role, SiteCode, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account.
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    id: i64,
    username: String,
    display_name: String,
    /// admin, principal_investigator, coordinator, radiologist, statistician or monitor.
    role: String,
    site: String,
    active: bool,
    must_change_password: bool,
    /// Whether the account signs in and signs with a second factor (TOTP).
    second_factor: bool,
    failed_logins: i64,
    /// Set while the account is locked after failed sign-ins (RFC 3339, UTC).
    locked_until: Option<String>,
    created_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            locked_until: u.is_locked().then(|| u.locked_until.clone()).flatten(),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role.to_string(),
            site: u.site_code,
            active: u.active,
            must_change_password: u.must_change_password,
            second_factor: u.second_factor,
            failed_logins: u.failed_logins,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SiteOut {
    id: i64,
    code: String,
    name: String,
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    display_name: String,
    role: String,
    site: String,
}

/// A new account and its one-time password (shown only in this answer).
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    user: UserOut,
    one_time_password: String,
}

/// Changes to an account; each needs the reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    role: Option<String>,
    site: Option<String>,
    display_name: Option<String>,
    /// `false` deactivates (accounts are never deleted), `true` reactivates.
    active: Option<bool>,
    reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithReason {
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct OneTimePasswordOut {
    one_time_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    id: i64,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl From<accounts::ApiToken> for TokenOut {
    fn from(t: accounts::ApiToken) -> Self {
        TokenOut {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
}

/// A new token and its secret (shown only in this answer).
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    token: TokenOut,
    secret: String,
}

fn id_of<T>(id: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    id.map(|Path(i)| i).map_err(ApiError::from)
}

/// The token's owner.
#[utoipa::path(get, path = urls::ME, context_path = urls::API, responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn me(user: ApiUser) -> Json<UserOut> {
    Json(user.0.into())
}

/// The trial's sites.
#[utoipa::path(get, path = urls::SITES, context_path = urls::API, responses((status = 200, body = [SiteOut])))]
#[tracing::instrument(skip_all)]
pub async fn sites(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<Vec<SiteOut>>, ApiError> {
    let sites = accounts::list_sites(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        sites
            .into_iter()
            .map(|s| SiteOut {
                id: s.id,
                code: s.code,
                name: s.name,
            })
            .collect(),
    ))
}

/// All accounts, locked ones included (administrators, principal investigators, monitors).
#[utoipa::path(get, path = urls::USERS, context_path = urls::API, responses((status = 200, body = [UserOut]), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<UserOut>>, ApiError> {
    let users = accounts::list_users(&state.db, &user.principal()).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// One account.
#[utoipa::path(get, path = urls::USER, context_path = urls::API, params(("id" = i64, Path)), responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<UserOut>, ApiError> {
    let id = id_of(id)?;
    if !user.0.role.can(Permission::ViewUsers) && user.0.id != id {
        return Err(ApiError::forbidden());
    }
    let found = accounts::get_user(&state.db, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("there is no account with id {id}")))?;
    Ok(Json(found.into()))
}

/// Creates an account with a one-time password (administrators).
#[utoipa::path(post, path = urls::USERS, context_path = urls::API, request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    if !user.0.role.can(Permission::ManageUsers) {
        return Err(ApiError::forbidden());
    }
    let new = NewUser {
        username: Username::parse(&body.username)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        display_name: DisplayName::parse(&body.display_name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        role: body
            .role
            .parse::<Role>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        site: SiteCode::parse(&body.site).map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let (created, password) = accounts::create_user(&state.db, &user.principal(), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: created.into(),
            one_time_password: password.expose().to_owned(),
        }),
    ))
}

/// Changes role, site, name or active state (administrators); audited with the reason.
#[utoipa::path(patch, path = urls::USER, context_path = urls::API, params(("id" = i64, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<UserId>, PathRejection>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserOut>, ApiError> {
    let id = id_of(id)?;
    let bad = |e: osteo_trial::domain::DomainError| ApiError::bad_request(e.to_string());
    let update = AccountUpdate {
        role: body
            .role
            .as_deref()
            .map(str::parse::<Role>)
            .transpose()
            .map_err(bad)?,
        site: body
            .site
            .as_deref()
            .map(SiteCode::parse)
            .transpose()
            .map_err(bad)?,
        display_name: body
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(bad)?,
        active: body.active,
    };
    let reason = Reason::parse(&body.reason).map_err(bad)?;
    let updated =
        accounts::update_account(&state.db, &user.principal(), id, update, &reason).await?;
    Ok(Json(updated.into()))
}

/// Issues a new one-time password (administrators); the user's sessions end.
#[utoipa::path(post, path = urls::USER_RESET_PASSWORD, context_path = urls::API, params(("id" = i64, Path)), request_body = WithReason,
    responses((status = 200, body = OneTimePasswordOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<UserId>, PathRejection>,
    ApiJson(body): ApiJson<WithReason>,
) -> Result<Json<OneTimePasswordOut>, ApiError> {
    let id = id_of(id)?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let password = accounts::reset_password(&state.db, &user.principal(), id, &reason).await?;
    Ok(Json(OneTimePasswordOut {
        one_time_password: password.expose().to_owned(),
    }))
}

/// Ends an account's second factor (a lost phone; administrators): its
/// secret and unused recovery codes are void, its sessions end, and it
/// enrols again at its next sign-in.
#[utoipa::path(post, path = urls::USER_RESET_SECOND_FACTOR, context_path = urls::API, params(("id" = i64, Path)), request_body = WithReason,
    responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn reset_second_factor(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<UserId>, PathRejection>,
    ApiJson(body): ApiJson<WithReason>,
) -> Result<Json<UserOut>, ApiError> {
    let id = id_of(id)?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let reset = accounts::second_factor::reset(&state.db, &user.principal(), id, &reason).await?;
    Ok(Json(reset.into()))
}

/// Lifts a lockout before it ends (administrators).
#[utoipa::path(post, path = urls::USER_UNLOCK, context_path = urls::API, params(("id" = i64, Path)), request_body = WithReason,
    responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<UserId>, PathRejection>,
    ApiJson(body): ApiJson<WithReason>,
) -> Result<Json<UserOut>, ApiError> {
    let id = id_of(id)?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let unlocked = accounts::unlock(&state.db, &user.principal(), id, &reason).await?;
    Ok(Json(unlocked.into()))
}

/// The caller's API tokens.
#[utoipa::path(get, path = urls::TOKENS, context_path = urls::API, responses((status = 200, body = [TokenOut])))]
#[tracing::instrument(skip_all)]
pub async fn tokens(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    let list = accounts::list_tokens(&state.db, &user.principal()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Creates a token for the caller; the secret is in this answer only.
#[utoipa::path(post, path = urls::TOKENS, context_path = urls::API, request_body = CreateToken, responses((status = 201, body = CreatedToken)))]
#[tracing::instrument(skip_all)]
pub async fn create_token(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (token, secret) = accounts::create_token(&state.db, &user.principal(), &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revokes a token (one's own; administrators any).
#[utoipa::path(delete, path = urls::TOKEN, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn revoke_token(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = id_of(id)?;
    accounts::revoke_token(&state.db, &user.principal(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
