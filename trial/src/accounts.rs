//! Accounts, sign-in, lockout and API tokens.
//!
//! Rules (issue #2, NIST SP 800-63B, OWASP ASVS v4 §2):
//! - passwords are hashed with Argon2id, m = 19 MiB, t = 2, p = 1 (the OWASP
//!   minimum), never stored, logged or audited in clear;
//! - five failed sign-ins in a row lock the account for 15 minutes; the lock
//!   and its end are visible to administrators and audited;
//! - accounts are deactivated, never deleted (a database trigger refuses
//!   DELETE), so a username is never reused;
//! - a new or reset account gets a random one-time password and must choose
//!   its own at the next sign-in;
//! - every change writes its audit row in the same transaction.

use crate::audit::{self, Change, Principal};
use crate::domain::{
    AuditSource, DisplayName, DomainError, Locale, NewPassword, Permission, Reason, Role, SiteCode,
    Username,
};
use crate::store::{format_utc, is_unique_violation, now_utc, parse_utc, Db};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a lock lasts.
pub const LOCKOUT_MINUTES: i64 = 15;

/// An account as the rest of the system sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub site_id: i64,
    pub site_code: String,
    pub must_change_password: bool,
    pub active: bool,
    pub failed_logins: i64,
    /// RFC 3339 UTC; set while the account is locked.
    pub locked_until: Option<String>,
    pub locale: Option<Locale>,
    /// Bumped whenever existing sessions must end (password reset,
    /// deactivation, role change).
    pub session_epoch: i64,
    pub created_at: String,
}

impl User {
    /// Whether the account is locked at this moment.
    pub fn is_locked(&self) -> bool {
        self.locked_until
            .as_deref()
            .and_then(parse_utc)
            .is_some_and(|t| t > chrono::Utc::now())
    }

    /// The principal this user acts as through `source`.
    pub fn principal(&self, source: AuditSource) -> Principal {
        Principal {
            user_id: Some(self.id),
            name: self.username.clone(),
            role: self.role,
            source,
        }
    }
}

/// A one-time password, shown once to whoever created or reset the account.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimePassword(String);

impl OneTimePassword {
    /// 16 characters from an alphabet without look-alikes (no 0/O, 1/l/I):
    /// about 90 bits.
    fn generate() -> OneTimePassword {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::thread_rng();
        let s = (0..16)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        OneTimePassword(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimePassword(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("the username `{0}` is taken (usernames are never reused, even after deactivation)")]
    UsernameTaken(String),
    #[error("there is no account with id {0}")]
    UnknownUser(i64),
    #[error("there is no site with code `{0}`")]
    UnknownSite(String),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the new password must differ from the current one")]
    PasswordUnchanged,
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("an administrator cannot deactivate or demote their own account")]
    SelfLockout,
    #[error("a user who has held a role that sees pathology, AI output or other readers' reads never becomes a reader: create a new radiologist account")]
    NeverAReader,
    #[error("this radiologist has been assigned to read and never holds a role that sees pathology, AI output or other readers' reads: create a separate account for the new role")]
    ReaderStaysBlind,
    #[error("the account is deactivated")]
    Deactivated,
    #[error("there is no such API token")]
    UnknownToken,
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl crate::error::ServiceError for AccountError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        use AccountError as E;
        match self {
            E::Forbidden => K::Forbidden,
            E::UnknownUser(_) | E::UnknownToken => K::NotFound,
            E::Invalid(_) | E::UnknownSite(_) | E::WrongPassword => K::Invalid,
            E::UsernameTaken(_)
            | E::SelfLockout
            | E::Deactivated
            | E::PasswordUnchanged
            | E::NeverAReader
            | E::ReaderStaysBlind => K::Conflict,
            E::Store(_) | E::Hash(_) => K::Internal,
        }
    }

    fn code(&self) -> &'static str {
        use crate::domain::DomainError as D;
        use AccountError as E;
        match self {
            E::Invalid(D::PasswordTooShort) => "too_short",
            E::Invalid(D::PasswordTooLong) => "too_long",
            E::Invalid(D::UsernameCharacters | D::UsernameLength) => "invalid_username",
            E::Invalid(D::DisplayName) => "invalid_display_name",
            E::Invalid(D::Reason) => "missing_reason",
            E::Invalid(D::UnknownRole(_)) => "unknown_role",
            E::Invalid(D::SiteCode) => "unknown_site",
            E::Invalid(_) => "invalid",
            E::UsernameTaken(_) => "username_taken",
            E::UnknownUser(_) => "unknown_user",
            E::UnknownSite(_) => "unknown_site",
            E::WrongPassword => "wrong_password",
            E::PasswordUnchanged => "unchanged",
            E::Forbidden => "forbidden",
            E::SelfLockout => "self_lockout",
            E::NeverAReader => "never_a_reader",
            E::ReaderStaysBlind => "reader_stays_blind",
            E::Deactivated => "deactivated",
            E::UnknownToken => "unknown",
            E::Store(_) | E::Hash(_) => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Invalid,
    #[error("the account is locked after too many failed sign-ins; try again after {until}")]
    Locked { until: String },
    #[error("the account is deactivated; ask an administrator")]
    Deactivated,
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet, Argon2id minimum: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password off the async threads.
async fn hash_password(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Checks a password against a stored hash off the async threads.
async fn verify_password(password: String, hash: String) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A hash of a random password, checked when the username is unknown so that
/// a wrong username takes as long as a wrong password.
async fn dummy_verify(password: String) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h = hash_password(OneTimePassword::generate().0)
                .await
                .unwrap_or_default();
            DUMMY.get_or_init(|| h).clone()
        }
    };
    let _ = verify_password(password, hash).await;
}

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.role, u.site_id, s.code AS site_code, \
     u.must_change_password, u.active, u.failed_logins, u.locked_until, u.locale, u.session_epoch, u.created_at";

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
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
    })
}

async fn fetch_user<'e, E>(executor: E, id: i64) -> Result<Option<User>, sqlx::Error>
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

pub async fn get_user(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    fetch_user(db.pool(), id).await
}

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

fn require(by: &Principal, permission: Permission) -> Result<(), AccountError> {
    crate::write::require(by, permission).map_err(|_| AccountError::Forbidden)
}

/// A site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: i64,
    pub code: String,
    pub name: String,
}

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

async fn site_id<'e, E>(executor: E, code: &SiteCode) -> Result<i64, AccountError>
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
pub async fn create_user(
    db: &Db,
    by: &Principal,
    new: NewUser,
) -> Result<(User, OneTimePassword), AccountError> {
    require(by, Permission::ManageUsers)?;
    let password = OneTimePassword::generate();
    let hash = hash_password(password.0.clone())
        .await
        .map_err(AccountError::Hash)?;
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
    let user = fetch_user(&mut *tx, id)
        .await?
        .ok_or(AccountError::UnknownUser(id))?;
    tx.commit().await?;
    Ok((user, password))
}

/// Why a password is checked: to sign in, or to apply an electronic
/// signature (21 CFR 11.200(a)(1): each signing re-enters the password).
/// Failures count towards the same lockout either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPurpose {
    Login,
    Signature,
}

impl AuthPurpose {
    fn ok_action(self) -> &'static str {
        match self {
            AuthPurpose::Login => "login",
            AuthPurpose::Signature => "signature.reauthenticated",
        }
    }
    fn failed_action(self) -> &'static str {
        match self {
            AuthPurpose::Login => "login.failed",
            AuthPurpose::Signature => "signature.password_failed",
        }
    }
}

/// Signs a user in, counting failures and locking after [`MAX_FAILED_LOGINS`].
pub async fn login(
    db: &Db,
    username: &str,
    password: &str,
    source: AuditSource,
) -> Result<User, LoginError> {
    authenticate(db, username, password, source, AuthPurpose::Login).await
}

/// Checks the signed-in user's password again before a signature.
pub async fn reauthenticate(db: &Db, by: &Principal, password: &str) -> Result<User, LoginError> {
    let user_id = by.user_id.ok_or(LoginError::Invalid)?;
    let user = get_user(db, user_id).await?.ok_or(LoginError::Invalid)?;
    authenticate(
        db,
        &user.username,
        password,
        by.source,
        AuthPurpose::Signature,
    )
    .await
}

async fn authenticate(
    db: &Db,
    username: &str,
    password: &str,
    source: AuditSource,
    purpose: AuthPurpose,
) -> Result<User, LoginError> {
    let anonymous = Principal {
        user_id: None,
        name: "anonymous".into(),
        role: Role::Monitor,
        source,
    };
    let attempted: String = username.trim().chars().take(64).collect();
    let Some(user) = find_by_username(db, &attempted).await? else {
        dummy_verify(password.to_owned()).await;
        audit::record(
            db,
            &anonymous,
            Change {
                action: "login.failed",
                entity: "session",
                new_value: Some(format!("unknown username {attempted}")),
                ..Change::default()
            },
        )
        .await?;
        return Err(LoginError::Invalid);
    };
    let principal = user.principal(source);
    if !user.active {
        audit::record(
            db,
            &principal,
            Change::new("login.refused_deactivated", "user", user.id),
        )
        .await?;
        return Err(LoginError::Deactivated);
    }
    if user.is_locked() {
        audit::record(
            db,
            &principal,
            Change::new("login.refused_locked", "user", user.id),
        )
        .await?;
        return Err(LoginError::Locked {
            until: user.locked_until.unwrap_or_default(),
        });
    }
    let hash: String = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(db.pool())
        .await?
        .try_get("password_hash")?;
    let ok = verify_password(password.to_owned(), hash)
        .await
        .map_err(LoginError::Hash)?;

    let mut tx = crate::write::transaction(db).await?;
    // Re-read under the write lock: another sign-in may have counted, or
    // locked the account, while this password was being checked.
    let current = fetch_user(&mut *tx, user.id)
        .await?
        .ok_or(LoginError::Invalid)?;
    if !current.active {
        return Err(LoginError::Deactivated);
    }
    if current.is_locked() {
        audit::append(
            &mut tx,
            &principal,
            Change::new("login.refused_locked", "user", user.id),
        )
        .await?;
        tx.commit().await?;
        return Err(LoginError::Locked {
            until: current.locked_until.unwrap_or_default(),
        });
    }
    if ok {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            &principal,
            Change::new(purpose.ok_action(), "user", user.id),
        )
        .await?;
        let user = fetch_user(&mut *tx, user.id)
            .await?
            .ok_or(LoginError::Invalid)?;
        tx.commit().await?;
        return Ok(user);
    }
    let failures = current.failed_logins + 1;
    // The fifth failure in a row locks the account and starts a new count.
    let lock = (failures >= MAX_FAILED_LOGINS)
        .then(|| format_utc(chrono::Utc::now() + chrono::Duration::minutes(LOCKOUT_MINUTES)));
    sqlx::query("UPDATE users SET failed_logins = $1, locked_until = $2 WHERE id = $3")
        .bind(if lock.is_some() { 0 } else { failures })
        .bind(&lock)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &principal,
        Change::new(purpose.failed_action(), "user", user.id).field(
            "failed_logins",
            Some(current.failed_logins.to_string()),
            Some(failures.to_string()),
        ),
    )
    .await?;
    if let Some(until) = &lock {
        audit::append(
            &mut tx,
            &principal,
            Change::new("account.locked", "user", user.id).field(
                "locked_until",
                current.locked_until,
                Some(until.clone()),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Err(match lock {
        Some(until) => LoginError::Locked { until },
        None => LoginError::Invalid,
    })
}

/// Records a sign-out.
pub async fn record_logout(db: &Db, by: &Principal) -> Result<(), sqlx::Error> {
    let id = by.user_id.unwrap_or_default();
    audit::record(db, by, Change::new("logout", "user", id))
        .await
        .map(|_| ())
}

/// A user changes their own password (also the forced change after a
/// one-time password). Other sessions of the user end.
pub async fn change_password(
    db: &Db,
    by: &Principal,
    current: &str,
    new: &str,
) -> Result<User, AccountError> {
    let id = by.user_id.ok_or(AccountError::Forbidden)?;
    let new = NewPassword::parse(new)?;
    if new.expose() == current {
        return Err(AccountError::PasswordUnchanged);
    }
    let hash: String = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(AccountError::UnknownUser(id))?
        .try_get("password_hash")?;
    if !verify_password(current.to_owned(), hash)
        .await
        .map_err(AccountError::Hash)?
    {
        audit::record(db, by, Change::new("password.change_refused", "user", id)).await?;
        return Err(AccountError::WrongPassword);
    }
    let new_hash = hash_password(new.expose().to_owned())
        .await
        .map_err(AccountError::Hash)?;
    let mut tx = crate::write::transaction(db).await?;
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = 0, password_changed_at = $2, \
         session_epoch = session_epoch + 1 WHERE id = $3",
    )
    .bind(&new_hash)
    .bind(now_utc())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("password.change", "user", id).field(
            "password",
            Some("***".into()),
            Some("***".into()),
        ),
    )
    .await?;
    let user = fetch_user(&mut *tx, id)
        .await?
        .ok_or(AccountError::UnknownUser(id))?;
    tx.commit().await?;
    Ok(user)
}

/// An administrator resets a password: a new one-time password, the user's
/// sessions end, any lock is lifted.
pub async fn reset_password(
    db: &Db,
    by: &Principal,
    user_id: i64,
    reason: &Reason,
) -> Result<OneTimePassword, AccountError> {
    require(by, Permission::ManageUsers)?;
    let password = OneTimePassword::generate();
    let hash = hash_password(password.0.clone())
        .await
        .map_err(AccountError::Hash)?;
    let mut tx = crate::write::transaction(db).await?;
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    if !user.active {
        return Err(AccountError::Deactivated);
    }
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = 1, failed_logins = 0, locked_until = NULL, \
         password_changed_at = $2, session_epoch = session_epoch + 1 WHERE id = $3",
    )
    .bind(&hash)
    .bind(now_utc())
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
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
    tx.commit().await?;
    Ok(password)
}

/// Lifts a lockout before it expires.
pub async fn unlock(
    db: &Db,
    by: &Principal,
    user_id: i64,
    reason: &Reason,
) -> Result<User, AccountError> {
    require(by, Permission::ManageUsers)?;
    let mut tx = crate::write::transaction(db).await?;
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("account.unlock", "user", user_id)
            .field("locked_until", user.locked_until, None)
            .reason(Some(reason.as_str())),
    )
    .await?;
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    tx.commit().await?;
    Ok(user)
}

/// Writes one column of an account and the audit row that records it.
/// `column` is one of this module's constants, never user input.
async fn set_column<T>(
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
pub async fn update_account(
    db: &Db,
    by: &Principal,
    user_id: i64,
    update: AccountUpdate,
    reason: &Reason,
) -> Result<User, AccountError> {
    require(by, Permission::ManageUsers)?;
    if by.user_id == Some(user_id)
        && (update.active == Some(false) || update.role.is_some_and(|r| r != Role::Admin))
    {
        return Err(AccountError::SelfLockout);
    }
    let mut tx = crate::write::transaction(db).await?;
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    let why = Some(reason.as_str());
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
        let change = Change::new("user.role", "user", user_id)
            .field("role", Some(user.role.to_string()), Some(role.to_string()))
            .reason(why);
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
        let change = Change::new("user.site", "user", user_id)
            .field(
                "site",
                Some(user.site_code.clone()),
                Some(site.as_str().to_owned()),
            )
            .reason(why);
        set_column(&mut tx, by, user_id, "site_id", new_site, change).await?;
    }
    if let Some(name) = update
        .display_name
        .filter(|n| n.as_str() != user.display_name)
    {
        let change = Change::new("user.display_name", "user", user_id)
            .field(
                "display_name",
                Some(user.display_name.clone()),
                Some(name.as_str().to_owned()),
            )
            .reason(why);
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
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now_utc())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let action = if active {
            "user.reactivate"
        } else {
            "user.deactivate"
        };
        let change = Change::new(action, "user", user_id)
            .field(
                "active",
                Some(user.active.to_string()),
                Some(active.to_string()),
            )
            .reason(why);
        set_column(&mut tx, by, user_id, "active", i64::from(active), change).await?;
        end_sessions = true;
    }
    if end_sessions {
        sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    tx.commit().await?;
    Ok(user)
}

/// A user's choice of interface language.
pub async fn set_locale(db: &Db, by: &Principal, locale: Locale) -> Result<(), AccountError> {
    let id = by.user_id.ok_or(AccountError::Forbidden)?;
    let mut tx = crate::write::transaction(db).await?;
    let user = fetch_user(&mut *tx, id)
        .await?
        .ok_or(AccountError::UnknownUser(id))?;
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

// ---------------------------------------------------------------- API tokens

/// An API token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

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

fn token_hash(secret: &str) -> String {
    // The secret has 160 random bits, so a fast hash suffices (unlike passwords).
    crate::store::sha256_hex(secret.as_bytes())
}

/// Creates a personal API token; it acts with its owner's role.
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
    let id: i64 = sqlx::query(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(owner)
    .bind(name.as_str())
    .bind(&prefix)
    .bind(token_hash(&secret))
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    audit::append(
        &mut tx,
        by,
        Change::new("api_token.create", "api_token", id).field(
            "token",
            None,
            Some(format!("{} ({prefix}…)", name.as_str())),
        ),
    )
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
pub async fn authenticate_token(db: &Db, secret: &str) -> Result<Option<User>, sqlx::Error> {
    if !secret.starts_with("osteo_") || secret.len() > 100 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, user_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash(secret))
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let token_id: i64 = row.try_get("id")?;
    let user_id: i64 = row.try_get("user_id")?;
    let user = fetch_user(db.pool(), user_id).await?.filter(|u| u.active);
    if user.is_some() {
        // Last use is operational data, not a change to trial records: not audited.
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now_utc())
            .bind(token_id)
            .execute(db.pool())
            .await?;
    }
    Ok(user)
}

// ----------------------------------------------------------------- bootstrap

/// Creates the study record and its first site on a brand-new database.
/// Returns whether the database was new.
pub async fn ensure_study(db: &Db, kind: crate::domain::StudyKind) -> Result<bool, sqlx::Error> {
    let mut tx = crate::write::transaction(db).await?;
    let exists = sqlx::query("SELECT id FROM study WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    let now = now_utc();
    let (title_en, title_zh) = kind.titles();
    sqlx::query("INSERT INTO study (id, registration, title_en, title_zh, created_at, kind) VALUES (1, $1, $2, $3, $4, $5)")
        .bind(kind.registration())
        .bind(title_en)
        .bind(title_zh)
        .bind(&now)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await?;
    let site: i64 =
        sqlx::query("INSERT INTO sites (code, name, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind("QDUAH")
            .bind("The Affiliated Hospital of Qingdao University")
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
    let system = Principal::system();
    audit::append(
        &mut tx,
        &system,
        Change::new("study.create", "study", 1).field(
            "registration",
            None,
            Some(format!("{} ({} study)", kind.registration(), kind.as_str())),
        ),
    )
    .await?;
    audit::append(
        &mut tx,
        &system,
        Change::new("site.create", "site", site).field("code", None, Some("QDUAH".into())),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One demonstration account per role, each with a one-time password.
pub async fn create_demo_accounts(db: &Db) -> Result<Vec<(User, OneTimePassword)>, AccountError> {
    let site = SiteCode::parse("QDUAH")?;
    let mut created = Vec::new();
    for (username, name, role) in [
        ("admin", "Study Administrator", Role::Admin),
        (
            "investigator",
            "Principal Investigator",
            Role::PrincipalInvestigator,
        ),
        ("coordinator", "Study Coordinator", Role::Coordinator),
        ("radiologist", "Reading Radiologist", Role::Radiologist),
        ("statistician", "Trial Statistician", Role::Statistician),
        ("monitor", "Clinical Monitor", Role::Monitor),
    ] {
        created.push(
            create_user(
                db,
                &Principal::system(),
                NewUser {
                    username: Username::parse(username)?,
                    display_name: DisplayName::parse(name)?,
                    role,
                    site: site.clone(),
                },
            )
            .await?,
        );
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_passwords_meet_the_policy_and_differ() {
        let a = OneTimePassword::generate();
        let b = OneTimePassword::generate();
        assert!(NewPassword::parse(a.expose()).is_ok());
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "OneTimePassword(***)");
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_carry_owasp_parameters() {
        let hash = hash_password("correct horse battery".into())
            .await
            .unwrap_or_default();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            verify_password("correct horse battery".into(), hash.clone()).await,
            Ok(true)
        );
        assert_eq!(
            verify_password("correct horse batterY".into(), hash).await,
            Ok(false)
        );
    }
}
