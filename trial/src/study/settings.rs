//! The study-wide records every page shows: the settings fixed before the
//! first read, the operational dashboard (no accuracy before lock), the
//! lock status and the pinned model.

use crate::case::{BoneRadsSource, CaseState};
use crate::codes::code_enum;
use crate::domain::StudyKind;
use crate::screening::FlowCounts;
use serde::{Deserialize, Serialize};

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
    /// Which Bone-RADS score the model takes when two read.
    pub bone_rads_source: BoneRadsSource,
    /// How dates in stored radiographs are de-identified: `keep` or `shift`
    /// ([`DICOM_DATES`]).
    pub dicom_dates: String,
    /// The trial, or the demonstration study.
    pub kind: StudyKind,
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
    /// Prospective enrolment over time, per site: the screening dates of
    /// the enrolled patients, in date order.
    pub enrolment: Vec<SiteEnrolment>,
    /// Prospective cases whose reference standard (pathology) is recorded:
    /// a count only, never the result.
    pub reference_standard: i64,
    /// Queries not yet closed (open or answered), by age.
    pub query_ageing: QueryAgeing,
    /// Each radiologist's reads: assigned, signed, and how long signing took.
    pub readers: Vec<ReaderLoad>,
}

/// One site's prospective enrolments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteEnrolment {
    pub site: String,
    /// `YYYY-MM-DD` of each enrolled patient's screening, ascending.
    pub dates: Vec<String>,
}

/// Unclosed queries by the days since they were raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAgeing {
    pub days_0_7: i64,
    pub days_8_14: i64,
    pub days_15_30: i64,
    pub over_30: i64,
}

impl QueryAgeing {
    /// The bucket counts with their translation keys, youngest first.
    pub fn buckets(&self) -> [(&'static str, i64); 4] {
        [
            ("dashboard.age_0_7", self.days_0_7),
            ("dashboard.age_8_14", self.days_8_14),
            ("dashboard.age_15_30", self.days_15_30),
            ("dashboard.age_over_30", self.over_30),
        ]
    }

    /// Counts a query raised `days` whole days ago.
    pub fn add(&mut self, days: i64) {
        match days {
            ..=7 => self.days_0_7 += 1,
            8..=14 => self.days_8_14 += 1,
            15..=30 => self.days_15_30 += 1,
            _ => self.over_30 += 1,
        }
    }
}

/// One radiologist's throughput and turnaround.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderLoad {
    pub reader: String,
    /// Cases assigned to the reader.
    pub assigned: i64,
    /// Reads signed.
    pub signed: i64,
    /// Reads signed in the last seven days.
    pub signed_last_7_days: i64,
    /// Median minutes from assignment to signature, over the signed reads.
    pub median_turnaround_minutes: Option<i64>,
}

/// The database lock and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    pub locked: bool,
    /// The kind of the lock in force (when locked).
    pub kind: Option<LockKind>,
    pub changed_at: Option<String>,
    /// SHA-256 of the canonical export of the locked data.
    pub export_sha256: Option<String>,
    pub events: Vec<LockEvent>,
    /// Why the database cannot be locked now (empty when it can).
    pub blockers: Vec<String>,
    /// The signatures given so far to undo the lock in force (an unlock
    /// needs the PI's and the monitor's).
    pub unlock_signatures: Vec<UnlockSignature>,
    /// Prospective patients enrolled, against [`PROSPECTIVE_TARGET`]: a
    /// final lock before the target needs a reason for stopping early.
    pub enrolled_prospective: i64,
}

code_enum! {
    /// An interim look, which the PI and the monitor can undo together, or
    /// the final lock, which is never undone.
    pub enum LockKind: "lock kind" { Interim = "interim", Final = "final" }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEvent {
    pub action: String,
    /// `interim` or `final` for a lock.
    pub kind: Option<LockKind>,
    pub at: String,
    pub by: String,
    pub printed_name: String,
    pub reason: Option<String>,
    /// A final lock before the enrolment target: why the study stopped early.
    pub early_stop_reason: Option<String>,
    pub export_sha256: Option<String>,
}

/// A signature towards undoing a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockSignature {
    /// `principal_investigator` or `monitor`.
    pub role: String,
    pub printed_name: String,
    pub reason: String,
    pub signed_at: String,
}

/// The model pinned for the study: the only one whose predictions are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPin {
    pub model_id: String,
    pub weights_sha256: String,
    /// SHA-256 of the model card as pinned (its JSON text).
    pub card_sha256: String,
    /// The model card as JSON.
    pub card: String,
    pub pinned_at: String,
    /// The PI's printed name; `None` for the demo model the demonstration
    /// study pins itself.
    pub signed_by: Option<String>,
}

/// One look at the data before the final lock: a lock, an unlock, an
/// analysis view or an export download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataAccess {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub detail: String,
}
