//! Personal API tokens: created with a secret shown once, stored as a
//! hash, revoked, and authenticated.

use super::directory::{fetch_user, require};
use super::error::AccountError;
use super::user::User;
use crate::audit::{self, Change, Principal};
pub use crate::domain::ApiToken;
use crate::domain::{DisplayName, Permission};
use crate::store::{now_utc, Db};
use crate::write::insert_audited;
use rand::Rng;
use sqlx::Row;

/// The secret of a new token, shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

pub(super) fn token_hash(secret: &str) -> String {
    // The secret has 160 random bits, so a fast hash suffices (unlike passwords).
    crate::store::sha256_hex(secret.as_bytes())
}

/// Creates a personal API token; it acts with its owner's role.
#[tracing::instrument(skip_all)]
pub async fn create_token(
    db: &Db,
    by: &Principal,
    name: &str,
) -> Result<(ApiToken, TokenSecret), AccountError> {
    require(by, Permission::UseApiTokens)?;
    let owner = by.user_id.ok_or(AccountError::Forbidden)?;
    let name = DisplayName::parse(name)?;
    let mut bytes = [0_u8; 20];
    rand::thread_rng().fill(&mut bytes);
    let secret = format!("osteo_{}", hex::encode(bytes));
    let prefix: String = secret.chars().take(12).collect();
    let now = now_utc();
    let mut tx = crate::write::transaction(db).await?;
    let insert = sqlx::query(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(owner)
    .bind(name.as_str())
    .bind(&prefix)
    .bind(token_hash(&secret))
    .bind(&now);
    let id = insert_audited(&mut tx, by, insert, |id| {
        Change::new("api_token.create", "api_token", id).field(
            "token",
            None,
            Some(format!("{} ({prefix}…)", name.as_str())),
        )
    })
    .await?;
    tx.commit().await?;
    Ok((
        ApiToken {
            id,
            name: name.as_str().to_owned(),
            prefix,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
        TokenSecret(secret),
    ))
}

/// Revokes every active API token of account `user_id`, in the caller's
/// transaction (a reset password, a deactivated account); says how many.
pub(super) async fn revoke_all_tokens(
    tx: &mut crate::write::Tx,
    user_id: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_utc())
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[tracing::instrument(skip_all)]
pub async fn list_tokens(db: &Db, by: &Principal) -> Result<Vec<ApiToken>, AccountError> {
    let owner = by.user_id.ok_or(AccountError::Forbidden)?;
    let rows = sqlx::query(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id DESC",
    )
    .bind(owner)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiToken {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                prefix: r.try_get("prefix")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Revokes one of the caller's own tokens (administrators may revoke any).
#[tracing::instrument(skip_all)]
pub async fn revoke_token(db: &Db, by: &Principal, token_id: i64) -> Result<(), AccountError> {
    let caller = by.user_id.ok_or(AccountError::Forbidden)?;
    let mut tx = crate::write::transaction(db).await?;
    let row = sqlx::query("SELECT user_id, revoked_at FROM api_tokens WHERE id = $1")
        .bind(token_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AccountError::UnknownToken)?;
    let owner: i64 = row.try_get("user_id")?;
    let revoked: Option<String> = row.try_get("revoked_at")?;
    if owner != caller && !by.role.can(Permission::ManageUsers) {
        return Err(AccountError::UnknownToken);
    }
    if revoked.is_some() {
        return Ok(());
    }
    let now = now_utc();
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(&now)
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("api_token.revoke", "api_token", token_id).field("revoked_at", None, Some(now)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Finds the active owner of a token secret. Unknown, revoked or deactivated
/// all answer `None`: the caller says only "invalid token".
#[tracing::instrument(skip_all)]
pub async fn authenticate_token(db: &Db, secret: &str) -> Result<Option<User>, sqlx::Error> {
    if !secret.starts_with("osteo_") || secret.len() > 100 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash(secret))
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let token_id: i64 = row.try_get("id")?;
    let user_id: i64 = row.try_get("user_id")?;
    // A deactivated account's tokens stop working with it; so do the tokens
    // of an account that must change its password (a one-time password was
    // issued: whoever held the account before may hold its tokens).
    let user = fetch_user(db.pool(), user_id)
        .await?
        .filter(|u| u.active && !u.must_change_password && !u.must_enrol_second_factor());
    // Last use is operational data, not a change to trial records: not
    // audited, and recorded to the minute, so that a script's every read
    // does not become a write.
    let last_used: Option<String> = row.try_get("last_used_at")?;
    let now = now_utc();
    let minute = |t: &str| t.get(..16).map(str::to_owned);
    if user.is_some() && last_used.as_deref().and_then(minute) != minute(&now) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
            .execute(db.writer())
            .await?;
    }
    Ok(user)
}
