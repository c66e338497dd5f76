//! Study-wide records: the settings fixed before the first read, the
//! operational dashboard (no accuracy before lock), the statistical analysis
//! plan, the database lock, and the locked analysis computed from the
//! snapshot taken at lock.

use crate::case::CaseState;
use crate::screening::FlowCounts;
use serde::{Deserialize, Serialize};

pub mod report;
pub mod sap;

pub use report::LockedAnalysis;

#[cfg(feature = "ssr")]
pub mod analysis;
#[cfg(feature = "ssr")]
mod locked;
#[cfg(feature = "ssr")]
mod store;
#[cfg(feature = "ssr")]
pub use locked::*;
#[cfg(feature = "ssr")]
pub use store::*;

/// The prospective arm's target (PROTOCOL.md: 200 consecutive patients).
pub const PROSPECTIVE_TARGET: i64 = 200;

/// Settings the study fixes before the first read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudySettings {
    /// The confirmed Bone-RADS rule table; `None` until confirmed.
    pub rule_version: Option<String>,
    /// Every version on file.
    pub rule_versions: Vec<String>,
    /// How many radiologists read each case (1 to 3).
    pub readers_per_case: i64,
    /// Which Bone-RADS score the model takes when two read: `primary_reader` or `consensus`.
    pub bone_rads_source: String,
    /// How dates in stored radiographs are de-identified: `keep` or `shift`
    /// ([`DICOM_DATES`]).
    pub dicom_dates: String,
}

/// The study's choices for dates in stored radiographs (DICOM PS3.15
/// Annex E): `keep` — Retain Longitudinal Temporal Information with Full
/// Dates Option (the radiograph date is a CRF field anyway); `shift` — with
/// Modified Dates Option: every date of a case moved back by the same
/// random number of days (1 to 365, drawn when its first radiograph is
/// stored), so intervals within the case survive. Fixed once the first
/// radiograph is stored.
pub const DICOM_DATES: [&str; 2] = ["keep", "shift"];

/// Operational figures: what a statistician sees before database lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub prospective_target: i64,
    pub enrolled_prospective: i64,
    pub enrolled_retrospective: i64,
    /// Screening flow by exclusion reason (STARD).
    pub flow: FlowCounts,
    /// Cases by state, every state listed.
    pub cases_by_state: Vec<(CaseState, i64)>,
    /// Cases whose clinical CRF is complete, of the enrolled ones.
    pub crf_complete: i64,
    pub cases_total: i64,
    pub open_queries: i64,
    pub answered_queries: i64,
    pub locked: bool,
}

/// The database lock and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    pub locked: bool,
    pub changed_at: Option<String>,
    /// SHA-256 of the canonical export of the locked data.
    pub export_sha256: Option<String>,
    pub events: Vec<LockEvent>,
    /// Why the database cannot be locked now (empty when it can).
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEvent {
    pub action: String,
    pub at: String,
    pub by: String,
    pub printed_name: String,
    pub reason: Option<String>,
    pub export_sha256: Option<String>,
}
