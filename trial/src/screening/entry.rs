//! The screening log's records: the arms, the exclusion codes, a screening
//! entry and its outcome, and the STARD flow counts made from them.

use crate::domain::{DomainError, StudyKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The two arms of the trial; study numbers run separately in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Prospective,
    Retrospective,
}

impl Arm {
    pub const ALL: [Arm; 2] = [Arm::Prospective, Arm::Retrospective];
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Prospective => "prospective",
            Arm::Retrospective => "retrospective",
        }
    }
    /// The study number as printed: `P-0007`, `R-0123` in the trial; in the
    /// demonstration study `D-0007`, `DR-0123`, so that a demo number can
    /// never be taken for one of the trial's arms.
    pub fn label(self, kind: StudyKind, study_no: i64) -> String {
        format!("{}-{study_no:04}", self.prefix(kind))
    }

    /// The prefix of this arm's study numbers.
    pub fn prefix(self, kind: StudyKind) -> &'static str {
        match (kind, self) {
            (StudyKind::Trial, Arm::Prospective) => "P",
            (StudyKind::Trial, Arm::Retrospective) => "R",
            (StudyKind::Demo, Arm::Prospective) => "D",
            (StudyKind::Demo, Arm::Retrospective) => "DR",
        }
    }

    /// The arm and number of a printed study number of a study of `kind`.
    pub fn parse_label(kind: StudyKind, label: &str) -> Option<(Arm, i64)> {
        let (prefix, no) = label.trim().split_once('-')?;
        let arm = Arm::ALL.into_iter().find(|a| a.prefix(kind) == prefix)?;
        let no = no.parse::<i64>().ok().filter(|n| *n > 0)?;
        Some((arm, no))
    }
}

/// The protocol's exclusion criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExclusionCode {
    /// Radiographs of poor quality that prevent analysis.
    E1,
    /// Radiographs without the matching clinical and pathology data.
    E2,
    /// Lesion outside the limb bones, or not osteolytic.
    E3,
}

impl ExclusionCode {
    pub const ALL: [ExclusionCode; 3] = [ExclusionCode::E1, ExclusionCode::E2, ExclusionCode::E3];
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionCode::E1 => "E1",
            ExclusionCode::E2 => "E2",
            ExclusionCode::E3 => "E3",
        }
    }
}

/// Why a screened, non-excluded patient was not enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotEnrolledReason {
    Declined,
    Missed,
    InclusionNotMet,
}

impl NotEnrolledReason {
    pub const ALL: [NotEnrolledReason; 3] = [
        NotEnrolledReason::Declined,
        NotEnrolledReason::Missed,
        NotEnrolledReason::InclusionNotMet,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NotEnrolledReason::Declined => "declined",
            NotEnrolledReason::Missed => "missed",
            NotEnrolledReason::InclusionNotMet => "inclusion_not_met",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Enrolled,
    Excluded,
    NotEnrolled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Enrolled => "enrolled",
            Outcome::Excluded => "excluded",
            Outcome::NotEnrolled => "not_enrolled",
        }
    }
}

macro_rules! from_str_via_all {
    ($t:ty, $err:expr) => {
        impl FromStr for $t {
            type Err = ScreeningError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s.trim())
                    .ok_or_else(|| $err(s.to_owned()))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Enrolled, Outcome::Excluded, Outcome::NotEnrolled];
}

from_str_via_all!(Arm, ScreeningError::UnknownArm);
from_str_via_all!(ExclusionCode, ScreeningError::UnknownExclusion);
from_str_via_all!(NotEnrolledReason, ScreeningError::UnknownReason);
from_str_via_all!(Outcome, ScreeningError::UnknownOutcome);

/// What the coordinator records for one screened patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningInput {
    pub arm: Arm,
    /// `YYYY-MM-DD`.
    pub screening_date: String,
    pub inclusion_met: bool,
    pub exclusions: Vec<ExclusionCode>,
    pub outcome: Outcome,
    pub not_enrolled_reason: Option<NotEnrolledReason>,
    pub comment: Option<String>,
}

/// The first day of the study period (PROTOCOL.md): no screening is earlier.
pub const STUDY_START: &str = "2024-04-01";

impl ScreeningInput {
    /// An eligible patient (inclusion met, no exclusion) enrolled in `arm`
    /// on `screening_date` (`YYYY-MM-DD`).
    pub fn enrolled(arm: Arm, screening_date: String, comment: Option<String>) -> ScreeningInput {
        ScreeningInput {
            arm,
            screening_date,
            inclusion_met: true,
            exclusions: Vec::new(),
            outcome: Outcome::Enrolled,
            not_enrolled_reason: None,
            comment,
        }
    }

    /// The edit checks. `latest_allowed` is the last acceptable screening
    /// date (`YYYY-MM-DD`), today where the site is.
    pub fn check(mut self, latest_allowed: &str) -> Result<ScreeningInput, ScreeningError> {
        let date = self.screening_date.trim().to_owned();
        let valid = date.len() == 10
            && date.as_bytes()[4] == b'-'
            && date.as_bytes()[7] == b'-'
            && date[..4].parse::<u32>().is_ok()
            && date[5..7]
                .parse::<u32>()
                .is_ok_and(|m| (1..=12).contains(&m))
            && date[8..]
                .parse::<u32>()
                .is_ok_and(|d| (1..=31).contains(&d));
        if !valid {
            return Err(ScreeningError::BadDate(self.screening_date));
        }
        if date.as_str() > latest_allowed {
            return Err(ScreeningError::FutureDate(date));
        }
        if date.as_str() < STUDY_START {
            return Err(ScreeningError::BeforeStudy(date));
        }
        self.screening_date = date;
        self.exclusions.sort();
        self.exclusions.dedup();
        self.comment = self
            .comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if self
            .comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > 1000)
        {
            return Err(ScreeningError::CommentTooLong);
        }
        match self.outcome {
            Outcome::Enrolled => {
                if !self.inclusion_met {
                    return Err(ScreeningError::EnrolledWithoutInclusion);
                }
                if !self.exclusions.is_empty() {
                    return Err(ScreeningError::EnrolledWithExclusion);
                }
                if self.not_enrolled_reason.is_some() {
                    return Err(ScreeningError::ReasonWithoutNotEnrolled);
                }
            }
            Outcome::Excluded => {
                if self.exclusions.is_empty() {
                    return Err(ScreeningError::ExcludedWithoutCode);
                }
                if self.not_enrolled_reason.is_some() {
                    return Err(ScreeningError::ReasonWithoutNotEnrolled);
                }
            }
            Outcome::NotEnrolled => {
                let reason = self
                    .not_enrolled_reason
                    .ok_or(ScreeningError::NotEnrolledWithoutReason)?;
                if !self.exclusions.is_empty() {
                    return Err(ScreeningError::NotEnrolledWithExclusion);
                }
                if (reason == NotEnrolledReason::InclusionNotMet) == self.inclusion_met {
                    return Err(ScreeningError::InclusionMismatch);
                }
            }
        }
        Ok(self)
    }
}

/// One entry of the log, in its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningEntry {
    pub id: i64,
    pub site_code: String,
    pub screening_no: i64,
    pub study_no: Option<i64>,
    /// `P-0007` once enrolled.
    pub study_number: Option<String>,
    pub version: i64,
    /// What the current version records (its fields appear at the top level
    /// of the JSON).
    #[serde(flatten)]
    pub recorded: ScreeningInput,
    pub created_at: String,
    pub updated_at: String,
}

/// Counts for the STARD flow diagram, computed from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCounts {
    pub screened: i64,
    pub enrolled_prospective: i64,
    pub enrolled_retrospective: i64,
    pub excluded: i64,
    /// Patients excluded for each code (a patient may carry several).
    pub excluded_e1: i64,
    pub excluded_e2: i64,
    pub excluded_e3: i64,
    pub declined: i64,
    pub missed: i64,
    pub inclusion_not_met: i64,
}

/// The log with its consistency report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningLog {
    pub entries: Vec<ScreeningEntry>,
    /// `(site, screening number)` missing from a site's sequence.
    pub gaps: Vec<(String, i64)>,
    /// Entries dated before an entry with a lower number at the same site.
    pub out_of_order: Vec<(String, i64)>,
    pub flow: FlowCounts,
}

impl ScreeningLog {
    /// Builds the report from entries sorted by site and number.
    pub fn from_entries(entries: Vec<ScreeningEntry>) -> ScreeningLog {
        let mut gaps = Vec::new();
        let mut out_of_order = Vec::new();
        let mut flow = FlowCounts::default();
        let mut previous: Option<(&str, i64, &str)> = None;
        for e in &entries {
            let r = &e.recorded;
            let expected = match previous {
                Some((site, no, _)) if site == e.site_code => no + 1,
                _ => 1,
            };
            for missing in expected..e.screening_no {
                gaps.push((e.site_code.clone(), missing));
            }
            if let Some((site, _, latest)) = previous {
                if site == e.site_code && r.screening_date.as_str() < latest {
                    out_of_order.push((e.site_code.clone(), e.screening_no));
                }
            }
            let latest = match previous {
                Some((site, _, latest))
                    if site == e.site_code && latest > r.screening_date.as_str() =>
                {
                    latest
                }
                _ => r.screening_date.as_str(),
            };
            previous = Some((e.site_code.as_str(), e.screening_no, latest));
            flow.screened += 1;
            match r.outcome {
                Outcome::Enrolled => match r.arm {
                    Arm::Prospective => flow.enrolled_prospective += 1,
                    Arm::Retrospective => flow.enrolled_retrospective += 1,
                },
                Outcome::Excluded => {
                    flow.excluded += 1;
                    for code in &r.exclusions {
                        match code {
                            ExclusionCode::E1 => flow.excluded_e1 += 1,
                            ExclusionCode::E2 => flow.excluded_e2 += 1,
                            ExclusionCode::E3 => flow.excluded_e3 += 1,
                        }
                    }
                }
                Outcome::NotEnrolled => match r.not_enrolled_reason {
                    Some(NotEnrolledReason::Declined) => flow.declined += 1,
                    Some(NotEnrolledReason::Missed) => flow.missed += 1,
                    Some(NotEnrolledReason::InclusionNotMet) | None => flow.inclusion_not_met += 1,
                },
            }
        }
        ScreeningLog {
            entries,
            gaps,
            out_of_order,
            flow,
        }
    }
}

/// Why a screening entry was refused: the checklist's rules (also checked
/// in the browser) and, on the server, the lock, the role and the database.
#[derive(Debug, thiserror::Error)]
pub enum ScreeningError {
    #[error("unknown arm `{0}`; use prospective or retrospective")]
    UnknownArm(String),
    #[error("unknown exclusion code `{0}`; use E1, E2 or E3")]
    UnknownExclusion(String),
    #[error("unknown reason `{0}`; use declined, missed or inclusion_not_met")]
    UnknownReason(String),
    #[error("unknown outcome `{0}`; use enrolled, excluded or not_enrolled")]
    UnknownOutcome(String),
    #[error("the screening date `{0}` is not a date written YYYY-MM-DD")]
    BadDate(String),
    #[error("the screening date {0} is in the future")]
    FutureDate(String),
    #[error("the screening date {0} is before the study began (2024-04-01)")]
    BeforeStudy(String),
    #[error("a comment has at most 1000 characters")]
    CommentTooLong,
    #[error("only a patient who meets the inclusion criterion can be enrolled")]
    EnrolledWithoutInclusion,
    #[error("a patient with an exclusion code cannot be enrolled; record the outcome as excluded")]
    EnrolledWithExclusion,
    #[error("an exclusion needs at least one code (E1, E2, E3)")]
    ExcludedWithoutCode,
    #[error("a reason for not enrolling goes only with the outcome not_enrolled")]
    ReasonWithoutNotEnrolled,
    #[error("not enrolled needs a reason: declined, missed or inclusion_not_met")]
    NotEnrolledWithoutReason,
    #[error("a patient with an exclusion code is recorded as excluded, not as not enrolled")]
    NotEnrolledWithExclusion,
    #[error("inclusion_not_met is the reason exactly when the inclusion criterion is not met")]
    InclusionMismatch,
    #[error("an enrolled patient keeps the outcome enrolled; a later exclusion or withdrawal is recorded on the case")]
    EnrolmentIsFinal,
    #[error(
        "the database is locked: no change is accepted until the principal investigator unlocks it"
    )]
    DatabaseLocked,
    #[error("there is no screening entry {0}")]
    UnknownEntry(i64),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("your role does not allow this")]
    Forbidden,
    #[cfg(feature = "ssr")]
    #[error("database error")]
    Store(#[source] sqlx::Error),
}

/// Two refusals are equal when they are the same refusal of the same
/// values; a database error equals nothing (it carries no comparable value).
impl PartialEq for ScreeningError {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(feature = "ssr")]
        if matches!(self, ScreeningError::Store(_)) || matches!(other, ScreeningError::Store(_)) {
            return false;
        }
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl crate::error::ServiceError for ScreeningError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ScreeningError::Forbidden => ErrorKind::Forbidden,
            ScreeningError::UnknownEntry(_) => ErrorKind::NotFound,
            ScreeningError::EnrolmentIsFinal | ScreeningError::DatabaseLocked => {
                ErrorKind::Conflict
            }
            #[cfg(feature = "ssr")]
            ScreeningError::Store(_) => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        }
    }

    /// The screening page's error codes (`screening.error.<code>`).
    fn code(&self) -> &'static str {
        use ScreeningError as E;
        match self {
            E::Forbidden => "forbidden",
            #[cfg(feature = "ssr")]
            E::Store(_) => "internal",
            E::BadDate(_) => "bad_date",
            E::FutureDate(_) => "future_date",
            E::BeforeStudy(_) => "before_study",
            E::CommentTooLong => "comment_too_long",
            E::EnrolledWithoutInclusion => "enrolled_without_inclusion",
            E::EnrolledWithExclusion => "enrolled_with_exclusion",
            E::ExcludedWithoutCode => "excluded_without_code",
            E::ReasonWithoutNotEnrolled => "reason_without_not_enrolled",
            E::NotEnrolledWithoutReason => "not_enrolled_without_reason",
            E::NotEnrolledWithExclusion => "not_enrolled_with_exclusion",
            E::InclusionMismatch => "inclusion_mismatch",
            E::EnrolmentIsFinal => "enrolment_final",
            E::DatabaseLocked => "database_locked",
            E::UnknownEntry(_) => "unknown",
            E::Domain(_) => "missing_reason",
            E::UnknownArm(_)
            | E::UnknownExclusion(_)
            | E::UnknownReason(_)
            | E::UnknownOutcome(_) => "bad_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(outcome: Outcome) -> ScreeningInput {
        ScreeningInput {
            arm: Arm::Prospective,
            screening_date: "2025-06-02".into(),
            inclusion_met: true,
            exclusions: vec![],
            outcome,
            not_enrolled_reason: None,
            comment: None,
        }
    }

    #[test]
    fn the_outcome_must_fit_the_checklist() {
        let today = "2026-11-26";
        assert!(input(Outcome::Enrolled).check(today).is_ok());
        let mut i = input(Outcome::Enrolled);
        i.exclusions = vec![ExclusionCode::E3];
        assert_eq!(i.check(today), Err(ScreeningError::EnrolledWithExclusion));
        let mut i = input(Outcome::Enrolled);
        i.inclusion_met = false;
        assert_eq!(
            i.check(today),
            Err(ScreeningError::EnrolledWithoutInclusion)
        );
        assert_eq!(
            input(Outcome::Excluded).check(today),
            Err(ScreeningError::ExcludedWithoutCode)
        );
        let mut i = input(Outcome::Excluded);
        i.exclusions = vec![ExclusionCode::E2, ExclusionCode::E1, ExclusionCode::E2];
        assert_eq!(
            i.check(today).map(|i| i.exclusions),
            Ok(vec![ExclusionCode::E1, ExclusionCode::E2])
        );
        assert_eq!(
            input(Outcome::NotEnrolled).check(today),
            Err(ScreeningError::NotEnrolledWithoutReason)
        );
        let mut i = input(Outcome::NotEnrolled);
        i.not_enrolled_reason = Some(NotEnrolledReason::InclusionNotMet);
        assert_eq!(
            i.clone().check(today),
            Err(ScreeningError::InclusionMismatch)
        );
        i.inclusion_met = false;
        assert!(i.check(today).is_ok());
    }

    #[test]
    fn dates_are_checked() {
        let mut i = input(Outcome::Enrolled);
        i.screening_date = "2026-11-27".into();
        assert_eq!(
            i.clone().check("2026-11-26"),
            Err(ScreeningError::FutureDate("2026-11-27".into()))
        );
        i.screening_date = "2024-03-31".into();
        assert!(matches!(
            i.clone().check("2026-11-26"),
            Err(ScreeningError::BeforeStudy(_))
        ));
        i.screening_date = "2025-13-01".into();
        assert!(matches!(
            i.clone().check("2026-11-26"),
            Err(ScreeningError::BadDate(_))
        ));
        i.screening_date = "yesterday".into();
        assert!(matches!(
            i.check("2026-11-26"),
            Err(ScreeningError::BadDate(_))
        ));
    }

    fn entry(site: &str, no: i64, date: &str, outcome: Outcome) -> ScreeningEntry {
        let mut recorded = input(outcome);
        recorded.screening_date = date.into();
        if outcome == Outcome::Excluded {
            recorded.exclusions = vec![ExclusionCode::E1, ExclusionCode::E3];
        }
        if outcome == Outcome::NotEnrolled {
            recorded.not_enrolled_reason = Some(NotEnrolledReason::Declined);
        }
        ScreeningEntry {
            id: no,
            site_code: site.into(),
            screening_no: no,
            study_no: None,
            study_number: None,
            version: 1,
            recorded,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_report_finds_gaps_and_dates_out_of_order_and_counts_the_flow() {
        let log = ScreeningLog::from_entries(vec![
            entry("A", 1, "2025-06-02", Outcome::Enrolled),
            entry("A", 2, "2025-06-05", Outcome::Excluded),
            entry("A", 4, "2025-06-03", Outcome::NotEnrolled),
            entry("A", 5, "2025-06-06", Outcome::Enrolled),
            entry("B", 2, "2025-06-01", Outcome::Enrolled),
        ]);
        assert_eq!(log.gaps, vec![("A".into(), 3), ("B".into(), 1)]);
        assert_eq!(log.out_of_order, vec![("A".into(), 4)]);
        assert_eq!(log.flow.screened, 5);
        assert_eq!(log.flow.enrolled_prospective, 3);
        assert_eq!(
            (
                log.flow.excluded,
                log.flow.excluded_e1,
                log.flow.excluded_e2,
                log.flow.excluded_e3
            ),
            (1, 1, 0, 1)
        );
        assert_eq!(log.flow.declined, 1);
    }

    #[test]
    fn study_numbers_are_labelled_by_arm() {
        assert_eq!(Arm::Prospective.label(StudyKind::Trial, 7), "P-0007");
        assert_eq!(Arm::Retrospective.label(StudyKind::Trial, 1234), "R-1234");
        assert_eq!(Arm::Prospective.label(StudyKind::Demo, 7), "D-0007");
        assert_eq!(Arm::Retrospective.label(StudyKind::Demo, 12), "DR-0012");
        assert_eq!(
            Arm::parse_label(StudyKind::Trial, "P-0007"),
            Some((Arm::Prospective, 7))
        );
        assert_eq!(
            Arm::parse_label(StudyKind::Demo, "DR-0012"),
            Some((Arm::Retrospective, 12))
        );
        // A demo number never names a trial case, nor the reverse.
        assert_eq!(Arm::parse_label(StudyKind::Trial, "D-0007"), None);
        assert_eq!(Arm::parse_label(StudyKind::Demo, "P-0007"), None);
        assert_eq!("E2".parse::<ExclusionCode>(), Ok(ExclusionCode::E2));
        assert!("E4".parse::<ExclusionCode>().is_err());
    }
}
