//! The administrator's changes to accounts: creating, resetting,
//! unlocking, updating (role, site, name, active), and the user's own
//! language.

use super::directory::{fetch_user, require, set_lockout, site_id};
use super::error::AccountError;
use super::password::hash_password;
use super::password::{store_password, OneTime};
use super::tokens::revoke_all_tokens;
use super::user::{OneTimePassword, User};
use crate::audit::{self, Change, Principal};
use crate::domain::UserId;
use crate::domain::{DisplayName, Locale, Permission, Reason, Role, SiteCode, Username};
use crate::store::{is_unique_violation, now_utc, Db};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What an administrator fills in to create an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUser {
    pub username: Username,
    pub display_name: DisplayName,
    pub role: Role,
    pub site: SiteCode,
}

/// Creates an account with a one-time password that must be changed at the
/// first sign-in.
#[tracing::instrument(skip_all)]
pub async fn create_user(
    db: &Db,
    by: &Principal,
    new: NewUser,
) -> Result<(User, OneTimePassword), AccountError> {
    require(by, Permission::ManageUsers)?;
    let password = OneTimePassword::generate();
    let hash = hash_password(password.0.clone()).await?;
    let mut tx = crate::write::transaction(db).await?;
    let site_id = site_id(&mut *tx, &new.site).await?;
    // Looked up first (inside the write lock): on SQLite a colliding insert
    // meets the trigger that refuses INSERT OR REPLACE before the unique index.
    let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1")
        .bind(new.username.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if taken {
        return Err(AccountError::UsernameTaken(
            new.username.as_str().to_owned(),
        ));
    }
    let now = now_utc();
    let inserted = sqlx::query(
        "INSERT INTO users (username, display_name, role, site_id, password_hash, must_change_password, \
         active, failed_logins, session_epoch, created_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, 1, 1, 0, 0, $6, $6) RETURNING id",
    )
    .bind(new.username.as_str())
    .bind(new.display_name.as_str())
    .bind(new.role.as_str())
    .bind(site_id)
    .bind(&hash)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await;
    let id: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if is_unique_violation(&e) => {
            return Err(AccountError::UsernameTaken(
                new.username.as_str().to_owned(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit::append(
        &mut tx,
        by,
        Change::new("user.create", "user", id).field(
            "account",
            None,
            Some(format!(
                "username={} name={} role={} site={}",
                new.username,
                new.display_name.as_str(),
                new.role,
                new.site.as_str()
            )),
        ),
    )
    .await?;
    Ok((commit_user(tx, id).await?, password))
}

/// An administrator resets a password: a new one-time password, the user's
/// sessions end, any lock is lifted.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn reset_password(
    db: &Db,
    by: &Principal,
    user_id: UserId,
    reason: &Reason,
) -> Result<OneTimePassword, AccountError> {
    require(by, Permission::ManageUsers)?;
    let password = OneTimePassword::generate();
    let hash = hash_password(password.0.clone()).await?;
    let (mut tx, user) = account_to_change(db, user_id).await?;
    let user_id = user_id.get();
    if !user.active {
        return Err(AccountError::Deactivated);
    }
    store_password(&mut tx, user_id, &hash, OneTime::Yes).await?;
    // Whoever knew the old password may hold the account's tokens: they
    // end with it.
    let revoked = revoke_all_tokens(&mut tx, user_id).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("password.reset", "user", user_id)
            .field(
                "password",
                Some("***".into()),
                Some("one-time password issued".into()),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    if revoked > 0 {
        let change = Change::new("api_token.revoke_all", "user", user_id)
            .field(
                "api_tokens",
                Some(format!("{revoked} active")),
                Some("revoked".into()),
            )
            .reason(Some("password reset"));
        audit::append(&mut tx, by, change).await?;
    }
    tx.commit().await?;
    Ok(password)
}

/// Lifts a lockout before it expires.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn unlock(
    db: &Db,
    by: &Principal,
    user_id: UserId,
    reason: &Reason,
) -> Result<User, AccountError> {
    require(by, Permission::ManageUsers)?;
    let (mut tx, user) = account_to_change(db, user_id).await?;
    let user_id = user_id.get();
    set_lockout(&mut tx, user_id, 0, None).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("account.unlock", "user", user_id)
            .field("locked_until", user.locked_until, None)
            .reason(Some(reason.as_str())),
    )
    .await?;
    commit_user(tx, user_id).await
}

/// Writes one column of an account and the audit row that records it.
/// `column` is one of this module's constants, never user input.
pub(super) async fn set_column<T>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    by: &Principal,
    user_id: i64,
    column: &'static str,
    value: T,
    change: Change,
) -> Result<(), sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
{
    sqlx::query(&format!("UPDATE users SET {column} = $1 WHERE id = $2"))
        .bind(value)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    audit::append(tx, by, change).await?;
    Ok(())
}

/// What an administrator may change on an account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountUpdate {
    pub role: Option<Role>,
    pub site: Option<SiteCode>,
    pub display_name: Option<DisplayName>,
    /// `Some(false)` deactivates; `Some(true)` reactivates.
    pub active: Option<bool>,
}

/// Changes role, site, name or active state, each field audited with old and
/// new value and the reason. Ending a user's authority also ends their sessions.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn update_account(
    db: &Db,
    by: &Principal,
    user_id: UserId,
    update: AccountUpdate,
    reason: &Reason,
) -> Result<User, AccountError> {
    require(by, Permission::ManageUsers)?;
    if by.user_id == Some(user_id.get())
        && (update.active == Some(false) || update.role.is_some_and(|r| r != Role::Admin))
    {
        return Err(AccountError::SelfLockout);
    }
    let (mut tx, user) = account_to_change(db, user_id).await?;
    let user_id = user_id.get();
    let why = Some(reason.as_str());
    // The audited change of one field of the account, old value to new.
    let changed = |action, field, old: String, new: String| {
        Change::new(action, "user", user_id)
            .field(field, Some(old), Some(new))
            .reason(why)
    };
    let mut end_sessions = false;
    if let Some(role) = update.role.filter(|r| *r != user.role) {
        // Roles never cross the blind (DESIGN.md invariant 12): no path,
        // direct or through another role, turns a reader into someone who
        // sees the outcome, or someone who saw it into a reader.
        let refused = if role == Role::Radiologist {
            Some(AccountError::NeverAReader)
        } else if user.role == Role::Radiologist
            && sqlx::query("SELECT 1 FROM read_assignments WHERE reader_id = $1 LIMIT 1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
        {
            Some(AccountError::ReaderStaysBlind)
        } else {
            None
        };
        if let Some(e) = refused {
            drop(tx);
            audit::record(
                db,
                by,
                Change::new("user.role_refused", "user", user_id)
                    .field(
                        "role",
                        Some(user.role.to_string()),
                        Some(format!("{role} (refused: {e})")),
                    )
                    .reason(why),
            )
            .await?;
            return Err(e);
        }
        let change = changed("user.role", "role", user.role.to_string(), role.to_string());
        set_column(
            &mut tx,
            by,
            user_id,
            "role",
            role.as_str().to_owned(),
            change,
        )
        .await?;
        end_sessions = true;
    }
    if let Some(site) = update.site.filter(|s| s.as_str() != user.site_code) {
        let new_site = site_id(&mut *tx, &site).await?;
        let change = changed(
            "user.site",
            "site",
            user.site_code.clone(),
            site.as_str().to_owned(),
        );
        set_column(&mut tx, by, user_id, "site_id", new_site, change).await?;
    }
    if let Some(name) = update
        .display_name
        .filter(|n| n.as_str() != user.display_name)
    {
        let change = changed(
            "user.display_name",
            "display_name",
            user.display_name.clone(),
            name.as_str().to_owned(),
        );
        set_column(
            &mut tx,
            by,
            user_id,
            "display_name",
            name.as_str().to_owned(),
            change,
        )
        .await?;
    }
    if let Some(active) = update.active.filter(|a| *a != user.active) {
        if !active {
            // A deactivated account's tokens stop working with it.
            revoke_all_tokens(&mut tx, user_id).await?;
        }
        let action = if active {
            "user.reactivate"
        } else {
            "user.deactivate"
        };
        let change = changed(
            action,
            "active",
            user.active.to_string(),
            active.to_string(),
        );
        set_column(&mut tx, by, user_id, "active", i64::from(active), change).await?;
        end_sessions = true;
    }
    if end_sessions {
        sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    commit_user(tx, user_id).await
}

/// A user's choice of interface language.
#[tracing::instrument(skip_all)]
pub async fn set_locale(db: &Db, by: &Principal, locale: Locale) -> Result<(), AccountError> {
    let id = by.user_id.ok_or(AccountError::Forbidden)?;
    let mut tx = crate::write::transaction(db).await?;
    let user = existing_user(&mut tx, id).await?;
    if user.locale == Some(locale) {
        return Ok(());
    }
    sqlx::query("UPDATE users SET locale = $1 WHERE id = $2")
        .bind(locale.tag())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("user.locale", "user", id).field(
            "locale",
            user.locale.map(|l| l.tag().to_owned()),
            Some(locale.tag().to_owned()),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The account an administrator changes, read in the write transaction
/// the change goes into.
async fn account_to_change(
    db: &Db,
    user_id: UserId,
) -> Result<(crate::write::Tx, User), AccountError> {
    let mut tx = crate::write::transaction(db).await?;
    let user = existing_user(&mut tx, user_id.get()).await?;
    Ok((tx, user))
}

/// The account `user_id` as the transaction sees it; it must exist.
async fn existing_user(tx: &mut crate::write::Tx, user_id: i64) -> Result<User, AccountError> {
    fetch_user(&mut **tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))
}

/// Commits the change to account `user_id` and returns the account as the
/// change left it.
async fn commit_user(mut tx: crate::write::Tx, user_id: i64) -> Result<User, AccountError> {
    let user = existing_user(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(user)
}
