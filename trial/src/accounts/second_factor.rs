//! The second factor: a time-based one-time password (TOTP, RFC 6238 —
//! HMAC-SHA1, six digits, 30-second steps, one step of clock drift either
//! way) from an authenticator app, and ten single-use recovery codes.
//!
//! Rules:
//! - required for administrators and principal investigators, who manage
//!   accounts and sign the database lock; anyone may enrol;
//! - asked at sign-in after the password, and with the password at every
//!   electronic signature;
//! - at sign-in a code is accepted once: the step it belongs to is
//!   recorded, and a code of that step or an earlier one is refused (RFC
//!   6238 §5.2), so a code seen over a shoulder opens no second session;
//! - at a signature, inside a session that a password and a code opened,
//!   the code of the latest accepted step is accepted again (a principal
//!   investigator signing three things in a row does not wait 90 seconds),
//!   an earlier step's never;
//! - a wrong code counts towards the same lockout as a wrong password;
//! - enrolment shows the secret as a QR code and as text, and is confirmed
//!   with a code from the app; the ten recovery codes are shown once, and
//!   only their SHA-256 is kept (each has 50 random bits);
//! - an administrator can reset a lost second factor, with a reason,
//!   audited; the account then enrols again.
//!
//! The secret itself is kept in the database, as it must be to compute the
//! codes (RFC 6238 §5.1 asks that it be protected: the database's roles and
//! the backups' handling are that protection, as for the audit trail).

use super::directory::{fetch_user, set_lockout};
use super::error::{AccountError, LoginError};
use super::user::User;
use crate::audit::{self, Change, Principal};
use crate::domain::Role;
use crate::store::{now_utc, sha256_hex, Db};
use rand::RngCore;
use sqlx::Row;
use totp_rs::{Algorithm, Secret, TOTP};

/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "Osteo EDC";
/// Seconds in one step (RFC 6238's default).
const STEP: u64 = 30;
/// Recovery codes issued at each enrolment.
pub const RECOVERY_CODES: usize = 10;

/// Whether accounts of `role` must have a second factor.
pub fn required(role: Role) -> bool {
    matches!(role, Role::Admin | Role::PrincipalInvestigator)
}

/// What the enrolment page shows: the secret, for typing into an app, and
/// the `otpauth://` address its QR code holds.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_url: String,
}

fn totp(secret: &str, account: &str) -> Result<TOTP, AccountError> {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|_| AccountError::SecondFactor("the stored secret is not base32".into()))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        bytes,
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| AccountError::SecondFactor(e.to_string()))
}

fn now_step() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64 / STEP
}

/// What a code is given for: opening a session, or signing inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUse {
    SignIn,
    Signature,
}

impl CodeUse {
    /// Whether a code of `step` may be used when `last` was the latest
    /// accepted step.
    fn allows(self, step: u64, last: Option<i64>) -> bool {
        match (self, last) {
            (_, None) => true,
            (CodeUse::SignIn, Some(last)) => step as i64 > last,
            (CodeUse::Signature, Some(last)) => step as i64 >= last,
        }
    }

    fn failed_action(self) -> &'static str {
        match self {
            CodeUse::SignIn => "login.second_factor_failed",
            CodeUse::Signature => "signature.second_factor_failed",
        }
    }
}

/// The step, within one of now, whose code `code` is, if `allowed`.
fn matching_step(totp: &TOTP, code: &str, allowed: impl Fn(u64) -> bool) -> Option<u64> {
    let now = now_step();
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .filter(|&s| allowed(s))
        .find(|&s| constant_time_eq(totp.generate(s * STEP).as_bytes(), code.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A code as typed: spaces and dashes removed, letters upper-cased.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The code an authenticator app with `secret` shows now, for a set-up
/// that enrols an account by program (the fuzzing harness's server).
pub fn current_code(secret: &str, account: &str) -> Result<String, AccountError> {
    Ok(totp(secret, account)?.generate(now_step() * STEP))
}

/// Starts (or restarts) the signed-in user's enrolment: a new secret, kept
/// aside until a code from the app confirms it.
#[tracing::instrument(skip_all)]
pub async fn start_enrolment(db: &Db, by: &Principal) -> Result<Enrolment, AccountError> {
    let id = by.user_id.ok_or(AccountError::Forbidden)?;
    let mut bytes = [0_u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = Secret::Raw(bytes.to_vec()).to_encoded().to_string();
    let url = totp(&secret, &by.name)?.get_url();
    let mut tx = crate::write::transaction(db).await?;
    sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
        .bind(&secret)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("account.second_factor_enrolment", "user", id),
    )
    .await?;
    tx.commit().await?;
    Ok(Enrolment {
        secret,
        otpauth_url: url,
    })
}

/// The enrolment under way for `user`, if one was started and not yet
/// confirmed (for the enrolment page to show again).
#[tracing::instrument(skip_all)]
pub async fn pending_enrolment(db: &Db, user: &User) -> Result<Option<Enrolment>, AccountError> {
    let pending: Option<String> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(user.id)
            .fetch_one(db.pool())
            .await?;
    pending
        .map(|secret| {
            Ok(Enrolment {
                otpauth_url: totp(&secret, &user.username)?.get_url(),
                secret,
            })
        })
        .transpose()
}

/// Confirms the enrolment with a code from the app: the second factor is on
/// from now, the earlier recovery codes are void, and ten new ones are
/// returned, to be shown once.
#[tracing::instrument(skip_all)]
pub async fn confirm_enrolment(
    db: &Db,
    by: &Principal,
    code: &str,
) -> Result<Vec<String>, AccountError> {
    let id = by.user_id.ok_or(AccountError::Forbidden)?;
    let mut tx = crate::write::transaction(db).await?;
    let pending: Option<String> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    let pending = pending.ok_or(AccountError::SecondFactor(
        "no enrolment is under way: start again from the second-factor page".into(),
    ))?;
    let step = matching_step(&totp(&pending, &by.name)?, &normalise(code), |_| true).ok_or(
        AccountError::SecondFactor(
            "that code does not match: check the app's clock and type the code it shows now".into(),
        ),
    )?;
    let now = now_utc();
    sqlx::query(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1 WHERE id = $2",
    )
    .bind(step as i64)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = recovery_code();
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(sha256_hex(normalise(&code).as_bytes()))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        codes.push(code);
    }
    audit::append(
        &mut tx,
        by,
        Change::new("account.second_factor_enabled", "user", id).field(
            "recovery_codes",
            None,
            Some(RECOVERY_CODES.to_string()),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Ten characters of the base32 alphabet (50 random bits), shown as
/// `ABCDE-FGHIJ`.
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0_u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// Checks the second factor of `user` (nothing to check when the account
/// has none): a code from the app, once per step, or an unused recovery
/// code, used up. A wrong code counts towards the lockout like a wrong
/// password (`used_for` names the audit action and which steps are open).
#[tracing::instrument(skip_all)]
pub async fn check(
    db: &Db,
    user: &User,
    code: Option<&str>,
    source: crate::domain::AuditSource,
    used_for: CodeUse,
) -> Result<(), LoginError> {
    let principal = user.principal(source);
    let row = sqlx::query("SELECT totp_secret, totp_last_step FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(db.pool())
        .await?;
    let secret: Option<String> = row.try_get("totp_secret")?;
    let Some(secret) = secret else {
        return Ok(());
    };
    let Some(code) = code.map(normalise).filter(|c| !c.is_empty()) else {
        return Err(LoginError::SecondFactorNeeded);
    };
    let mut tx = crate::write::transaction(db).await?;
    // Re-read under the write lock: the same code may be racing in, and
    // failures may have locked the account meanwhile (a locked account
    // takes no code, not even the right one).
    let current = fetch_user(&mut *tx, user.id)
        .await?
        .ok_or(LoginError::Invalid)?;
    if current.is_locked() {
        return Err(LoginError::Locked {
            until: current.locked_until.unwrap_or_default(),
        });
    }
    let last: Option<i64> = sqlx::query_scalar("SELECT totp_last_step FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
    let totp = totp(&secret, &user.username).map_err(|_| LoginError::Invalid)?;
    if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        if let Some(step) = matching_step(&totp, &code, |s| used_for.allows(s, last)) {
            sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2")
                .bind(step as i64)
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            // Both factors were right: the count of failures starts again.
            set_lockout(&mut tx, user.id, 0, None).await?;
            tx.commit().await?;
            return Ok(());
        }
    } else {
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now_utc())
        .bind(user.id)
        .bind(sha256_hex(code.as_bytes()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used == 1 {
            audit::append(
                &mut tx,
                &principal,
                Change::new("account.recovery_code_used", "user", user.id),
            )
            .await?;
            set_lockout(&mut tx, user.id, 0, None).await?;
            tx.commit().await?;
            return Ok(());
        }
    }
    let locked =
        super::signin::count_failure(&mut tx, &principal, &current, used_for.failed_action())
            .await?;
    tx.commit().await?;
    Err(match locked {
        Some(until) => LoginError::Locked { until },
        None => LoginError::Invalid,
    })
}

/// Ends an account's second factor (a lost phone), as an administrator,
/// with a reason: its secret and unused recovery codes are void, and the
/// account enrols again at its next sign-in.
#[tracing::instrument(skip_all)]
pub async fn reset(
    db: &Db,
    by: &Principal,
    user_id: crate::domain::UserId,
    reason: &crate::domain::Reason,
) -> Result<User, AccountError> {
    let user_id = user_id.get();
    super::directory::require(by, crate::domain::Permission::ManageUsers)?;
    let mut tx = crate::write::transaction(db).await?;
    let had: Option<String> = sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, \
         session_epoch = session_epoch + 1 WHERE id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now_utc())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("account.second_factor_reset", "user", user_id)
            .field(
                "second_factor",
                Some(had.is_some().to_string()),
                Some("false".into()),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    let user = fetch_user(&mut *tx, user_id)
        .await?
        .ok_or(AccountError::UnknownUser(user_id))?;
    tx.commit().await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, Appendix B: the SHA-1 test vectors (eight digits there;
    /// the last six here, as the six-digit code is the same number modulo
    /// 10^6).
    #[test]
    fn codes_follow_the_rfc_6238_test_vectors() {
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        let totp = totp(&secret, "test").expect("a TOTP");
        for (time, eight) in [
            (59_u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn recovery_codes_are_base32_in_two_groups_and_normalise() {
        let code = recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(normalise(&code.to_lowercase()), code.replace('-', ""));
        assert_ne!(recovery_code(), recovery_code());
    }

    #[test]
    fn administrators_and_pis_need_a_second_factor() {
        assert!(required(Role::Admin) && required(Role::PrincipalInvestigator));
        assert!(!required(Role::Coordinator) && !required(Role::Radiologist));
    }
}
