//! The one error policy of the trial's services, written once here.
//!
//! Every service error says what kind of refusal it is, so that each entry
//! point — the REST API, the form posts, the pages' server functions — maps
//! kinds to responses in one place rather than matching every variant:
//!
//! | kind | REST | form post | server function |
//! |---|---|---|---|
//! | [`ErrorKind::Forbidden`] | 403 | the 403 page | `Forbidden` |
//! | [`ErrorKind::NotFound`] | 404 | back with the error code | `Invalid` |
//! | [`ErrorKind::Conflict`] | 409 | back with the error code | `Invalid` |
//! | [`ErrorKind::Invalid`] | 400 | back with the error code | `Invalid` |
//! | [`ErrorKind::Busy`] | 503 with `Retry-After` | the 503 page | `Invalid` |
//! | [`ErrorKind::Internal`] | 500, nothing said | the 500 page | `Internal` |
//!
//! The user's mistakes and the trial's rules are told in words that say what
//! to do; a fault of ours is logged with its cause chain and never shown.

/// What kind of refusal an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The role does not allow it (or the data is blinded for it).
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The request is well formed but the trial's rules or the record's
    /// state refuse it now.
    Conflict,
    /// The input is malformed or incomplete.
    Invalid,
    /// The server is at its bound for this work (password checks): nothing
    /// was done; the same request may succeed a few seconds later.
    Busy,
    /// A fault of the system (the database, a stored file).
    Internal,
}

/// An error of a trial service.
pub trait ServiceError: std::error::Error {
    fn kind(&self) -> ErrorKind;
    /// A stable code for the interface's translations and the API's `code`.
    fn code(&self) -> &'static str;
}
