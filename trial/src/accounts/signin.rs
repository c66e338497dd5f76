//! Signing in, re-entering the password to sign, signing out, and changing
//! one's own password: the lockout after five failures in a row.

use super::directory::{fetch_user, find_by_username, get_user, set_lockout};
use super::error::{AccountError, LoginError};
use super::password::{dummy_verify, hash_password, verify_password};
use super::password::{store_password, OneTime};
use super::user::{User, LOCKOUT_MINUTES, MAX_FAILED_LOGINS};
use crate::audit::{self, Change, Principal};
use crate::domain::{AuditSource, NewPassword, Role};
use crate::store::{format_utc, Db};
use sqlx::Row;

/// Why a password is checked: to sign in, to apply an electronic
/// signature (21 CFR 11.200(a)(1): each signing re-enters the password), or
/// to change one's own password. Failures count towards the same lockout
/// whatever the purpose, so that no form guesses passwords unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPurpose {
    Login,
    Signature,
    PasswordChange,
}

impl AuthPurpose {
    /// The audit action of a right password (none for a password change:
    /// the change itself is recorded).
    fn ok_action(self) -> Option<&'static str> {
        match self {
            AuthPurpose::Login => Some("login"),
            AuthPurpose::Signature => Some("signature.reauthenticated"),
            AuthPurpose::PasswordChange => None,
        }
    }
    fn failed_action(self) -> &'static str {
        match self {
            AuthPurpose::Login => "login.failed",
            AuthPurpose::Signature => "signature.password_failed",
            AuthPurpose::PasswordChange => "password.change_refused",
        }
    }
}

/// Signs a user in, counting failures and locking after [`MAX_FAILED_LOGINS`].
#[tracing::instrument(skip_all)]
pub async fn login(
    db: &Db,
    username: &str,
    password: &str,
    source: AuditSource,
) -> Result<User, LoginError> {
    authenticate(db, username, password, source, AuthPurpose::Login).await
}

/// What a person enters to sign electronically (21 CFR 11.200(a)): the
/// password, and the code of the second factor when the account has one.
#[derive(Clone, Default)]
pub struct SigningSecret {
    pub password: String,
    pub code: Option<String>,
}

impl SigningSecret {
    pub fn new(password: &str, code: Option<&str>) -> SigningSecret {
        SigningSecret {
            password: password.to_owned(),
            code: code.map(str::to_owned),
        }
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// Checks the signed-in user's password again before a signature, and the
/// second factor's code when the account has one. An administrator or
/// principal investigator of the trial who has not enrolled a second factor
/// does not sign (the pages and the API send them to enrol first; this
/// holds for every other way in).
#[tracing::instrument(skip_all)]
pub async fn reauthenticate(
    db: &Db,
    by: &Principal,
    secret: &SigningSecret,
) -> Result<User, LoginError> {
    let user = check_own_password(db, by, &secret.password, AuthPurpose::Signature).await?;
    if user.second_factor_due {
        return Err(LoginError::SecondFactorNotEnrolled);
    }
    super::second_factor::check(
        db,
        &user,
        secret.code.as_deref(),
        by.source,
        super::second_factor::CodeUse::Signature,
    )
    .await?;
    Ok(user)
}

/// Checks the signed-in user's own password, counting a failure.
async fn check_own_password(
    db: &Db,
    by: &Principal,
    password: &str,
    purpose: AuthPurpose,
) -> Result<User, LoginError> {
    let user_id = by.user_id.ok_or(LoginError::Invalid)?;
    let user = get_user(db, user_id).await?.ok_or(LoginError::Invalid)?;
    authenticate(db, &user.username, password, by.source, purpose).await
}

pub(super) async fn authenticate(
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
        dummy_verify(password.to_owned()).await?;
        audit::record(
            db,
            &anonymous,
            Change {
                action: "login.failed",
                entity: "session",
                // Never the text typed: it may be a password.
                new_value: Some("unknown username".into()),
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
    let ok = verify_password(password.to_owned(), hash).await?;

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
        // With a second factor the count of failures starts again only once
        // the code is right too (`second_factor::check`): a right password
        // alone must not let the code be guessed without end.
        if !current.second_factor || purpose == AuthPurpose::PasswordChange {
            set_lockout(&mut tx, user.id, 0, None).await?;
        }
        if let Some(action) = purpose.ok_action() {
            audit::append(&mut tx, &principal, Change::new(action, "user", user.id)).await?;
        }
        let user = fetch_user(&mut *tx, user.id)
            .await?
            .ok_or(LoginError::Invalid)?;
        tx.commit().await?;
        return Ok(user);
    }
    let lock = count_failure(&mut tx, &principal, &current, purpose.failed_action()).await?;
    tx.commit().await?;
    Err(match lock {
        Some(until) => LoginError::Locked { until },
        None => LoginError::Invalid,
    })
}

/// Counts a failed check of `current`'s password or second factor, audited
/// as `action`; the fifth in a row locks the account (its end returned)
/// and starts a new count.
pub(super) async fn count_failure(
    tx: &mut crate::write::Tx,
    principal: &Principal,
    current: &User,
    action: &'static str,
) -> Result<Option<String>, sqlx::Error> {
    let failures = current.failed_logins + 1;
    let lock = (failures >= MAX_FAILED_LOGINS)
        .then(|| format_utc(chrono::Utc::now() + chrono::Duration::minutes(LOCKOUT_MINUTES)));
    let count = if lock.is_some() { 0 } else { failures };
    set_lockout(tx, current.id, count, lock.as_deref()).await?;
    audit::append(
        tx,
        principal,
        Change::new(action, "user", current.id).field(
            "failed_logins",
            Some(current.failed_logins.to_string()),
            Some(failures.to_string()),
        ),
    )
    .await?;
    if let Some(until) = &lock {
        audit::append(
            tx,
            principal,
            Change::new("account.locked", "user", current.id).field(
                "locked_until",
                current.locked_until.clone(),
                Some(until.clone()),
            ),
        )
        .await?;
    }
    Ok(lock)
}

/// Records a sign-out.
#[tracing::instrument(skip_all)]
pub async fn record_logout(db: &Db, by: &Principal) -> Result<(), sqlx::Error> {
    let id = by.user_id.unwrap_or_default();
    audit::record(db, by, Change::new("logout", "user", id))
        .await
        .map(|_| ())
}

/// A user changes their own password (also the forced change after a
/// one-time password). Other sessions of the user end.
#[tracing::instrument(skip_all)]
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
    // A wrong current password counts towards the lockout, as at sign-in.
    check_own_password(db, by, current, AuthPurpose::PasswordChange)
        .await
        .map_err(|e| match e {
            LoginError::Invalid
            | LoginError::SecondFactorNeeded
            | LoginError::SecondFactorNotEnrolled => AccountError::WrongPassword,
            LoginError::Locked { until } => AccountError::Locked(until),
            LoginError::Deactivated => AccountError::Deactivated,
            LoginError::Store(e) => AccountError::Store(e),
            LoginError::Password(e) => AccountError::Password(e),
        })?;
    let new_hash = hash_password(new.expose().to_owned()).await?;
    let mut tx = crate::write::transaction(db).await?;
    store_password(&mut tx, id, &new_hash, OneTime::No).await?;
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
