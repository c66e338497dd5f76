//! The one-off message a form post leaves for the next page.

use serde::{Deserialize, Serialize};

/// A one-off message for the next page, with an optional secret (a one-time
/// password, an API token) shown once and then gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Translation key of the message.
    pub message: String,
    /// A value shown verbatim next to the message (a username, say).
    pub detail: Option<String>,
    pub secret: Option<String>,
}
