//! Why an account service refused, and why a sign-in failed.

use crate::domain::DomainError;

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
    #[error("the account is locked after too many wrong passwords; try again after {0}")]
    Locked(String),
    #[error("there is no such API token")]
    UnknownToken,
    #[error("{0}")]
    SecondFactor(String),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] super::password::PasswordError),
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
            | E::Locked(_)
            | E::PasswordUnchanged
            | E::NeverAReader
            | E::ReaderStaysBlind => K::Conflict,
            E::SecondFactor(_) => K::Invalid,
            E::Password(super::password::PasswordError::Busy) => K::Busy,
            E::Store(_) | E::Password(_) => K::Internal,
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
            E::Locked(_) => "locked",
            E::UnknownToken => "unknown",
            E::SecondFactor(_) => "second_factor",
            E::Password(super::password::PasswordError::Busy) => "busy",
            E::Store(_) | E::Password(_) => "internal",
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
    #[error("this account signs in with a second factor: give the code from the authenticator app, or a recovery code")]
    SecondFactorNeeded,
    #[error("administrators and principal investigators enrol a second factor before they sign: open the account's second-factor page")]
    SecondFactorNotEnrolled,
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] super::password::PasswordError),
}
