//! Argon2id hashing and checking of passwords (OWASP minimum parameters),
//! off the async runtime, with a dummy check that keeps the timing of an
//! unknown username the same as a wrong password.

use super::user::OneTimePassword;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

pub(super) fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet, Argon2id minimum: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password off the async threads.
pub(super) async fn hash_password(password: String) -> Result<String, String> {
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
pub(super) async fn verify_password(password: String, hash: String) -> Result<bool, String> {
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
pub(super) async fn dummy_verify(password: String) {
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

/// Whether a stored password is a one-time password, which must be replaced
/// at the next sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OneTime {
    Yes,
    No,
}

/// Stores a new password hash for the account and ends its sessions (the
/// session epoch moves on); a reset also lifts any lockout.
pub(super) async fn store_password(
    tx: &mut crate::write::Tx,
    user_id: i64,
    hash: &str,
    one_time: OneTime,
) -> Result<(), sqlx::Error> {
    let sql = match one_time {
        OneTime::Yes => {
            "UPDATE users SET password_hash = $1, must_change_password = 1, failed_logins = 0, \
             locked_until = NULL, password_changed_at = $2, session_epoch = session_epoch + 1 WHERE id = $3"
        }
        OneTime::No => {
            "UPDATE users SET password_hash = $1, must_change_password = 0, password_changed_at = $2, \
             session_epoch = session_epoch + 1 WHERE id = $3"
        }
    };
    sqlx::query(sql)
        .bind(hash)
        .bind(crate::store::now_utc())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
