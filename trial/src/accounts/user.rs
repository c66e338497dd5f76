//! An account as the services return it, and the one-time password a new
//! or reset account gets.

use crate::audit::Principal;
use crate::domain::{AuditSource, Locale, Role};
use crate::store::parse_utc;
use rand::Rng;
use serde::{Deserialize, Serialize};

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
    /// Whether the account signs in with a second factor
    /// ([`super::second_factor`]).
    #[serde(default)]
    pub second_factor: bool,
    /// Whether the account must enrol a second factor before it does
    /// anything else: an administrator or PI of the trial without one (in
    /// the demonstration study a second factor is optional, so that a demo
    /// needs no phone).
    #[serde(default)]
    pub second_factor_due: bool,
}

impl User {
    /// Whether the account is locked at this moment.
    pub fn is_locked(&self) -> bool {
        self.locked_until
            .as_deref()
            .and_then(parse_utc)
            .is_some_and(|t| t > chrono::Utc::now())
    }

    /// Whether the account must enrol a second factor before it does
    /// anything else ([`User::second_factor_due`]).
    pub fn must_enrol_second_factor(&self) -> bool {
        self.second_factor_due
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
pub struct OneTimePassword(pub(super) String);

impl OneTimePassword {
    /// 16 characters from an alphabet without look-alikes (no 0/O, 1/l/I):
    /// about 90 bits.
    pub(super) fn generate() -> OneTimePassword {
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
