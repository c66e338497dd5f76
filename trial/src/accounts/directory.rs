//! Reading accounts and sites.

use super::error::AccountError;
use super::user::User;
use crate::audit::Principal;
use crate::domain::{DomainError, Permission, SiteCode};
use crate::store::Db;
use serde::{Deserialize, Serialize};
use sqlx::Row;

pub(super) const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.role, u.site_id, s.code AS site_code, \
     u.must_change_password, u.active, u.failed_logins, u.locked_until, u.locale, u.session_epoch, u.created_at, \
     CASE WHEN u.totp_secret IS NULL THEN 0 ELSE 1 END AS second_factor, \
     CASE WHEN u.totp_secret IS NULL AND u.role IN ('admin', 'principal_investigator') \
     AND (SELECT kind FROM study WHERE id = 1) = 'trial' THEN 1 ELSE 0 END AS second_factor_due";

pub(super) fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    let locale: Option<String> = row.try_get("locale")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: role
            .parse()
            .map_err(|e: DomainError| sqlx::Error::Decode(Box::new(e)))?,
        site_id: row.try_get("site_id")?,
        site_code: row.try_get("site_code")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        active: row.try_get::<i64, _>("active")? != 0,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        locale: locale.and_then(|l| l.parse().ok()),
        session_epoch: row.try_get("session_epoch")?,
        created_at: row.try_get("created_at")?,
        second_factor: row.try_get::<i64, _>("second_factor")? != 0,
        second_factor_due: row.try_get::<i64, _>("second_factor_due")? != 0,
    })
}

pub(super) async fn fetch_user<'e, E>(executor: E, id: i64) -> Result<Option<User>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN sites s ON s.id = u.site_id WHERE u.id = $1"
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .map(|r| user_from_row(&r))
        .transpose()
}

#[tracing::instrument(skip_all)]
/// Sets the account's run of failed sign-ins and its lockout (none: not
/// locked).
pub(super) async fn set_lockout(
    tx: &mut crate::write::Tx,
    user_id: i64,
    failed_logins: i64,
    locked_until: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET failed_logins = $1, locked_until = $2 WHERE id = $3")
        .bind(failed_logins)
        .bind(locked_until)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map(drop)
}

pub async fn get_user(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    fetch_user(db.pool(), id).await
}

#[tracing::instrument(skip_all)]
pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN sites s ON s.id = u.site_id WHERE u.username = $1"
    );
    sqlx::query(&sql)
        .bind(username)
        .fetch_optional(db.pool())
        .await?
        .map(|r| user_from_row(&r))
        .transpose()
}

/// All accounts, for those allowed to see them.
#[tracing::instrument(skip_all)]
pub async fn list_users(db: &Db, by: &Principal) -> Result<Vec<User>, AccountError> {
    require(by, Permission::ViewUsers)?;
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN sites s ON s.id = u.site_id ORDER BY u.username"
    );
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

/// The active radiologists, `(username, display name)`: whom a case can be
/// assigned to read.
#[tracing::instrument(skip_all)]
pub async fn radiologists(db: &Db, by: &Principal) -> Result<Vec<(String, String)>, AccountError> {
    require(by, Permission::AssignReaders)?;
    let rows = sqlx::query(
        "SELECT username, display_name FROM users WHERE role = 'radiologist' AND active = 1 ORDER BY username",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("username")?, r.try_get("display_name")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

pub(super) fn require(by: &Principal, permission: Permission) -> Result<(), AccountError> {
    crate::write::require(by, permission).map_err(|_| AccountError::Forbidden)
}

/// A site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: i64,
    pub code: String,
    pub name: String,
}

#[tracing::instrument(skip_all)]
pub async fn list_sites(db: &Db) -> Result<Vec<Site>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, code, name FROM sites ORDER BY code")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Site {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}

pub(super) async fn site_id<'e, E>(executor: E, code: &SiteCode) -> Result<i64, AccountError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("SELECT id FROM sites WHERE code = $1")
        .bind(code.as_str())
        .fetch_optional(executor)
        .await?
        .map(|r| r.try_get::<i64, _>("id"))
        .transpose()?
        .ok_or_else(|| AccountError::UnknownSite(code.as_str().to_owned()))
}
