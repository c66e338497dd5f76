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

mod admin;
mod bootstrap;
mod directory;
mod error;
mod password;
pub mod second_factor;
mod signin;
mod tokens;
mod user;

pub use admin::*;
pub use bootstrap::*;
pub use directory::*;
pub use error::*;
pub use password::{workers, PasswordError, MAX_WAIT, MAX_WAITING};
pub use signin::*;
pub use tokens::*;
pub use user::*;

#[cfg(test)]
mod tests {
    use super::password::{hash_password, verify_password};
    use super::*;
    use crate::domain::NewPassword;

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

    /// More password checks at once than the bound takes: the excess is
    /// refused as busy (never an error of another kind), every check that
    /// runs gives the right answer, and no more memory areas are kept than
    /// there are workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_work_is_bounded_and_the_excess_refused_as_busy() {
        let hash = hash_password("correct horse battery".into())
            .await
            .unwrap_or_default();
        // A bound of its own, so that the other tests' checks run beside it.
        let gate = std::sync::Arc::new(super::password::Gate::new(1));
        let attempts = super::password::MAX_WAITING + 16;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..attempts {
            let (hash, gate) = (hash.clone(), gate.clone());
            let guess = if i % 2 == 0 {
                "correct horse battery"
            } else {
                "wrong horse battery"
            };
            tasks.spawn(async move {
                let result = super::password::verify_password_in(&gate, guess.into(), hash).await;
                (i, result)
            });
        }
        let (mut checked, mut busy) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            let (i, result) = done.unwrap_or((0, Err(PasswordError::Failed("join".into()))));
            match result {
                Ok(ok) => {
                    assert_eq!(ok, i % 2 == 0, "attempt {i}");
                    checked += 1;
                }
                Err(PasswordError::Busy) => busy += 1,
                Err(e) => panic!("attempt {i}: {e}"),
            }
        }
        assert!(checked >= 1, "some checks ran: {checked}");
        // One runs and MAX_WAITING wait; the rest are refused at once (and
        // a waiting one whose turn does not come within MAX_WAIT, too).
        let bound = 1 + super::password::MAX_WAITING;
        assert!(
            busy >= attempts - bound,
            "the excess over the queue was refused: {busy} of {attempts}"
        );
        assert!(gate.areas_held() <= 1, "one area per worker");
    }

    /// The hashes made here are standard PHC strings: the argon2 crate's own
    /// verifier accepts them, and hashes it made (stored before password
    /// work was bounded) still verify here.
    #[tokio::test]
    async fn hashes_stay_compatible_with_the_argon2_crates_own() {
        use argon2::password_hash::{
            rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
        };
        let ours = hash_password("correct horse battery".into())
            .await
            .unwrap_or_default();
        let parsed = PasswordHash::new(&ours).ok();
        let argon = super::password::argon2_crate_default();
        assert!(parsed.is_some_and(|p| argon.verify_password(b"correct horse battery", &p).is_ok()));
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon
            .hash_password(b"correct horse battery", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert_eq!(
            verify_password("correct horse battery".into(), theirs.clone()).await,
            Ok(true)
        );
        assert_eq!(
            verify_password("correct horse batterx".into(), theirs).await,
            Ok(false)
        );
    }
}
