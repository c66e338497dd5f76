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
mod signin;
mod tokens;
mod user;

pub use admin::*;
pub use bootstrap::*;
pub use directory::*;
pub use error::*;
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
}
