//! What the audit trail records: who did what to which record, when,
//! with which old and new value and why; and the filters to read it.

use crate::domain::{AuditSource, Role};
use serde::{Deserialize, Serialize};

/// The hash that precedes the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who is acting, with the authority they act under. Every service takes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The account, or `None` for the system itself and the command line.
    pub user_id: Option<i64>,
    /// The username, `system`, or `cli:<operating-system user>`.
    pub name: String,
    pub role: Role,
    pub source: AuditSource,
}

impl Principal {
    /// The server acting on its own (start-up, demo seeding).
    pub fn system() -> Principal {
        Principal {
            user_id: None,
            name: "system".into(),
            role: Role::Admin,
            source: AuditSource::System,
        }
    }

    /// An operator on the server's command line. Whoever can run the binary
    /// against the database already holds it, so the command line acts with
    /// administrator authority; it is audited under the operating-system user.
    pub fn cli(os_user: &str) -> Principal {
        Principal {
            user_id: None,
            name: format!("cli:{os_user}"),
            role: Role::Admin,
            source: AuditSource::Cli,
        }
    }
}

/// One change to record. Values are text; secrets are never passed here.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub action: &'static str,
    pub entity: &'static str,
    pub entity_id: Option<String>,
    pub field: Option<&'static str>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
}

impl Change {
    pub fn new(action: &'static str, entity: &'static str, entity_id: impl ToString) -> Change {
        Change {
            action,
            entity,
            entity_id: Some(entity_id.to_string()),
            ..Change::default()
        }
    }

    pub fn field(
        mut self,
        field: &'static str,
        old: Option<String>,
        new: Option<String>,
    ) -> Change {
        self.field = Some(field);
        self.old_value = old;
        self.new_value = new;
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Change {
        self.reason = reason.map(str::to_owned);
        self
    }
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// What `verify` found wrong, naming the first broken row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChainBreak {
    #[error("row {found} follows row {previous}: row {expected} is missing or rows were inserted out of order")]
    Gap {
        previous: i64,
        expected: i64,
        found: i64,
    },
    #[error("row {seq} does not link to the row before it (prev_hash differs): a row was removed, inserted or changed before it")]
    BrokenLink { seq: i64 },
    #[error("row {seq} was changed after it was written (its content no longer matches its hash)")]
    Tampered { seq: i64 },
    #[error("the chain ends at row {last_row} but its head says {head_seq}: rows were removed from the end")]
    Truncated { last_row: i64, head_seq: i64 },
    #[error(
        "the chain head's hash does not match row {seq}: the head or the last row was changed"
    )]
    HeadMismatch { seq: i64 },
    #[error(
        "row {seq} is dated before the row before it: rows were reordered or their times changed"
    )]
    TimeOrder { seq: i64 },
    #[error("the anchor signed at {signed_at} is not signed by the audit key: it was forged or the key was replaced")]
    AnchorForged { seq: i64, signed_at: String },
    #[error("row {seq} is not the row whose hash was signed at {signed_at}: the chain was rewritten up to it")]
    AnchorMismatch { seq: i64, signed_at: String },
    #[error("row {seq}, the {action} recorded there, is covered by no signed anchor: anchors were removed")]
    Unanchored { seq: i64, action: String },
    #[error("the chain holds rows but no signed anchor, and its first row is more than two hours old: anchors were removed")]
    NoAnchor { seq: i64 },
}

impl ChainBreak {
    /// The sequence number of the first row that is not as written.
    pub fn first_bad_row(&self) -> i64 {
        match *self {
            ChainBreak::Gap { expected, .. } => expected,
            ChainBreak::BrokenLink { seq }
            | ChainBreak::Tampered { seq }
            | ChainBreak::HeadMismatch { seq }
            | ChainBreak::TimeOrder { seq }
            | ChainBreak::AnchorForged { seq, .. }
            | ChainBreak::AnchorMismatch { seq, .. }
            | ChainBreak::Unanchored { seq, .. }
            | ChainBreak::NoAnchor { seq } => seq,
            ChainBreak::Truncated { last_row, .. } => last_row + 1,
        }
    }
}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    pub rows: i64,
    pub head_hash: String,
    /// Signed anchors checked against the audit key (0 when no key was given).
    pub anchors_checked: i64,
    /// The last row a signed anchor covers.
    pub last_anchored_seq: Option<i64>,
}

/// Filters of the audit page and API. Dates are UTC calendar days, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Keyset paging: only rows older than this sequence number.
    pub before_seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum FilterError {
    #[error("dates are written YYYY-MM-DD (got `{0}`)")]
    BadDate(String),
    #[error("the first day is after the last day")]
    EmptyRange,
}

/// One page of audit rows, newest first, and whether older rows remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub next_before_seq: Option<i64>,
}
