//! The case record: its states and the moves between them, and the parts
//! the services return (summaries, the detail page's record, reads, the
//! locked prediction, signatures, queries).

use super::bonerads::{self, Features, Score};
use super::crf::{ClinicalCrf, FieldIssue};
use super::pathology::Pathology;
use crate::codes::code_enum;
use crate::domain::{CaseId, Probability, Sha256};
use crate::screening::{Arm, ExclusionCode};
use serde::{Deserialize, Serialize};

code_enum! {
    /// Where a case stands.
    pub enum CaseState: "case state" {
        Enrolled = "enrolled",
        ImagesComplete = "images_complete",
        CrfComplete = "crf_complete",
        ReadsLocked = "reads_locked",
        AiLocked = "ai_locked",
        PathologyEntered = "pathology_entered",
        Complete = "complete",
        Withdrawn = "withdrawn",
        Excluded = "excluded",
    }
}

code_enum! {
    /// What moves a case.
    pub enum CaseEvent: "case event" {
        ImagesCompleted = "images_completed",
        CrfCompleted = "crf_completed",
        ReadsLocked = "reads_locked",
        PredictionLocked = "prediction_locked",
        PathologyEntered = "pathology_entered",
        PathologySigned = "pathology_signed",
        /// A correction of signed pathology voids its signature.
        PathologyCorrected = "pathology_corrected",
        Withdrawn = "withdrawn",
        Excluded = "excluded",
    }
}

code_enum! {
    /// Why an enrolled patient leaves the study: the only reasons a case
    /// leaves once it has been read (each stays in the STARD flow diagram as
    /// "enrolled, no reference standard").
    pub enum WithdrawalReason: "withdrawal reason" {
        ConsentWithdrawn = "consent_withdrawn",
        LostToFollowUp = "lost_to_follow_up",
        PathologyNotObtained = "pathology_not_obtained",
    }
}

code_enum! {
    /// Which Bone-RADS score the model takes when a case has more than one
    /// read (a study setting, recorded with every prediction).
    pub enum BoneRadsSource: "Bone-RADS source" {
        /// The read of the first reader assigned to the case.
        PrimaryReader = "primary_reader",
        /// The readers' consensus: the median of their points (the upper
        /// median for an even number of reads), categorised by the study's
        /// rule table.
        Consensus = "consensus",
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("a case at `{from}` cannot take `{event}`: {hint}")]
pub struct IllegalTransition {
    pub from: CaseState,
    pub event: CaseEvent,
    pub hint: String,
}

impl CaseState {
    /// The state after `event`, or why the event is refused.
    pub fn apply(self, event: CaseEvent) -> Result<CaseState, IllegalTransition> {
        use CaseEvent as E;
        use CaseState as S;
        let next = match (self, event) {
            (S::Enrolled, E::ImagesCompleted) => S::ImagesComplete,
            (S::ImagesComplete, E::CrfCompleted) => S::CrfComplete,
            (S::CrfComplete, E::ReadsLocked) => S::ReadsLocked,
            (S::ReadsLocked, E::PredictionLocked) => S::AiLocked,
            (S::AiLocked, E::PathologyEntered) => S::PathologyEntered,
            (S::PathologyEntered, E::PathologySigned) => S::Complete,
            (S::Complete, E::PathologyCorrected) => S::PathologyEntered,
            (S::PathologyEntered, E::PathologyCorrected) => S::PathologyEntered,
            (S::Enrolled | S::ImagesComplete | S::CrfComplete, E::Excluded) => S::Excluded,
            (
                S::Enrolled | S::ImagesComplete | S::CrfComplete | S::ReadsLocked | S::AiLocked,
                E::Withdrawn,
            ) => S::Withdrawn,
            (from @ (S::ReadsLocked | S::AiLocked), event @ E::Excluded) => {
                return Err(IllegalTransition {
                    from,
                    event,
                    hint: "eligibility exclusions (E1–E3) are decided before the reads lock; \
                           now only a coded withdrawal signed by the principal investigator is possible"
                        .into(),
                });
            }
            (from @ (S::PathologyEntered | S::Complete), event @ (E::Excluded | E::Withdrawn)) => {
                return Err(IllegalTransition {
                    from,
                    event,
                    hint: "the reference standard is known: the case stays in the analysis \
                           and can be neither excluded nor withdrawn"
                        .into(),
                });
            }
            (from, event) => {
                let hint = if from.is_final() {
                    format!("the case is {from}; nothing more happens to it")
                } else {
                    format!("it waits for: {}", from.waits_for())
                };
                return Err(IllegalTransition { from, event, hint });
            }
        };
        Ok(next)
    }

    /// The state after `event` for a case of `arm`. The prospective arm
    /// follows [`CaseState::apply`]. The retrospective arm is the training
    /// set: its pathology is already known when the case is entered, its
    /// reads are optional and the model never runs on it. So pathology is
    /// entered straight after the clinical CRF (or after reads, when some
    /// were assigned and signed), and a prediction is refused at every
    /// state. The database's `case_arm_transitions` table holds the same
    /// moves.
    pub fn apply_in(self, arm: Arm, event: CaseEvent) -> Result<CaseState, IllegalTransition> {
        use CaseEvent as E;
        use CaseState as S;
        match (arm, self, event) {
            (Arm::Prospective, _, _) => self.apply(event),
            (Arm::Retrospective, S::CrfComplete | S::ReadsLocked, E::PathologyEntered) => {
                Ok(S::PathologyEntered)
            }
            (Arm::Retrospective, from, event @ E::PredictionLocked) => Err(IllegalTransition {
                from,
                event,
                hint: "the model is never run on a retrospective case: the retrospective arm \
                       trains the model, and only prospective cases are predicted"
                    .into(),
            }),
            (Arm::Retrospective, from @ S::AiLocked, event) => Err(IllegalTransition {
                from,
                event,
                hint: "a retrospective case never reaches the AI lock".into(),
            }),
            (Arm::Retrospective, _, _) => self.apply(event),
        }
    }

    /// Whether pathology may be entered now (the first version) in `arm`.
    pub fn takes_pathology(self, arm: Arm) -> bool {
        self.apply_in(arm, CaseEvent::PathologyEntered).is_ok()
    }

    /// What a case of `arm` waits for, in words.
    pub fn waits_for_in(self, arm: Arm) -> &'static str {
        match (arm, self) {
            (Arm::Retrospective, CaseState::CrfComplete) => {
                "pathology (reads are optional in the retrospective arm)"
            }
            (Arm::Retrospective, CaseState::ReadsLocked) => "pathology",
            _ => self.waits_for(),
        }
    }

    /// Complete, withdrawn and excluded cases take no more steps.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CaseState::Complete | CaseState::Withdrawn | CaseState::Excluded
        )
    }

    /// What the case waits for, in words (English; the interface translates
    /// by state code).
    pub fn waits_for(self) -> &'static str {
        match self {
            CaseState::Enrolled => {
                "the radiographs (a frontal and a lateral view), then `images complete`"
            }
            CaseState::ImagesComplete => "the clinical CRF marked complete",
            CaseState::CrfComplete => "every assigned radiologist's signed blinded read",
            CaseState::ReadsLocked => "the AI prediction (awaiting AI)",
            CaseState::AiLocked => "pathology",
            CaseState::PathologyEntered => "the signature on the pathology",
            CaseState::Complete | CaseState::Withdrawn | CaseState::Excluded => "nothing",
        }
    }

    /// Whether the case has reached `other` on the main path.
    pub fn reached(self, other: CaseState) -> bool {
        let rank = |s: CaseState| match s {
            CaseState::Enrolled => 0,
            CaseState::ImagesComplete => 1,
            CaseState::CrfComplete => 2,
            CaseState::ReadsLocked => 3,
            CaseState::AiLocked => 4,
            CaseState::PathologyEntered => 5,
            CaseState::Complete => 6,
            CaseState::Withdrawn | CaseState::Excluded => -1,
        };
        rank(self) >= rank(other) && rank(other) >= 0 && rank(self) >= 0
    }
}

code_enum! {
    /// The meaning of an electronic signature (21 CFR 11.50(a)(3)).
    pub enum SignatureMeaning: "signature meaning" {
        Author = "author", Review = "review", Approval = "approval",
    }
}

/// A signature as shown with the signed record (21 CFR 11.50: printed name,
/// date and time, meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub id: i64,
    pub printed_name: String,
    pub username: String,
    pub meaning: SignatureMeaning,
    pub signed_at: String,
    /// Set when an edit of the signed data voided the signature.
    pub voided_at: Option<String>,
}

code_enum! {
    pub enum Call: "benign/malignant call" { Benign = "benign", Malignant = "malignant" }
}

/// A blinded read as the radiologist enters it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    pub features: Features,
    /// The reader's malignancy likelihood, 0–100.
    pub likelihood: u8,
    pub call: Call,
    pub comment: Option<String>,
}

/// A read as stored, with its score and the rule table it was scored with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub id: i64,
    pub case_id: i64,
    pub reader: String,
    pub reader_name: String,
    pub input: Option<ReadInput>,
    pub score: Option<Score>,
    pub rule_version: Option<String>,
    pub signature: Option<Signature>,
    pub updated_at: Option<String>,
}

impl Read {
    pub fn is_locked(&self) -> bool {
        self.signature.is_some()
    }
}

/// The model's output for a case, written once by the system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionInput {
    /// Malignancy probability.
    pub probability: Probability,
    /// The study's operating threshold; the call is malignant at or above it.
    pub threshold: Probability,
    pub model_id: String,
    /// SHA-256 of the weights.
    pub weights_sha256: Sha256,
    /// SHA-256 of each input image.
    pub image_sha256: Vec<Sha256>,
    /// Where each view's heat map is stored (its SHA-256 in the object store).
    pub heatmaps: Vec<Sha256>,
    /// Which Bone-RADS score the model took.
    pub bone_rads_source: BoneRadsSource,
    /// Whether the case's views fell outside the model's training domain;
    /// `None` when the model's card records no domain (never judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainFlag>,
}

/// The out-of-domain flag of a prediction: stored with it, locked with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainFlag {
    /// `true`: "outside the model's training domain".
    pub outside: bool,
    /// Why, one line per finding; empty inside.
    pub reasons: Vec<String>,
}

/// A locked prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub input: PredictionInput,
    pub call: Call,
    pub created_at: String,
    /// SHA-256 over the canonical record: what "locked" is checked against.
    pub record_sha256: Sha256,
}

/// Why a prediction record is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PredictionError {
    #[error("a SHA-256 is 64 lowercase hex digits")]
    Hash,
    #[error("a prediction needs at least one input image")]
    NoImages,
    #[error("a model id is 1 to 200 characters")]
    ModelId,
    #[error("an out-of-domain flag gives 1 to 20 reasons of at most 500 characters, and a case inside the domain none")]
    Domain,
}

impl PredictionInput {
    /// The call at the threshold, once the parts the types cannot promise
    /// are checked (the probability, the threshold and the digests are
    /// valid by construction).
    pub fn check(&self) -> Result<Call, PredictionError> {
        if self.image_sha256.is_empty() {
            return Err(PredictionError::NoImages);
        }
        if self.model_id.trim().is_empty() || self.model_id.len() > 200 {
            return Err(PredictionError::ModelId);
        }
        if let Some(d) = &self.domain {
            let reasons_ok = if d.outside {
                (1..=20).contains(&d.reasons.len())
                    && d.reasons
                        .iter()
                        .all(|r| !r.trim().is_empty() && r.len() <= 500)
            } else {
                d.reasons.is_empty()
            };
            if !reasons_ok {
                return Err(PredictionError::Domain);
            }
        }
        Ok(if self.probability.get() >= self.threshold.get() {
            Call::Malignant
        } else {
            Call::Benign
        })
    }
}

code_enum! {
    /// The radiograph views (PROTOCOL.md: frontal AP/PA, lateral, sometimes oblique).
    pub enum View: "view" { Frontal = "frontal", Lateral = "lateral", Oblique = "oblique" }
}

/// A stored radiograph of a case (written by the image ingest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseImage {
    pub id: i64,
    pub view: View,
    /// SHA-256 of the stored (de-identified) object.
    pub sha256: String,
    pub added_at: String,
    pub modality: Option<String>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub body_part: Option<String>,
    pub laterality: Option<String>,
    /// Quality warnings found on ingest.
    pub warnings: Vec<String>,
}

/// What the image ingest records of a stored radiograph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewImage {
    pub view: View,
    /// SHA-256 of the stored, de-identified object.
    pub sha256: String,
    /// SHA-256 of the file as uploaded (provenance; never stored itself).
    pub original_sha256: String,
    pub modality: String,
    pub transfer_syntax: String,
    pub rows: i64,
    pub columns: i64,
    pub photometric: String,
    pub body_part: Option<String>,
    pub laterality: Option<String>,
    pub warnings: Vec<String>,
}

/// One version of the clinical CRF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrfRecord {
    pub version: i64,
    pub data: ClinicalCrf,
    pub complete: bool,
    pub saved_at: String,
    pub saved_by: String,
    pub reason_for_change: Option<String>,
    /// The signatures in force (voided ones are in the audit trail).
    pub signatures: Vec<Signature>,
}

/// One version of the pathology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathologyRecord {
    pub version: i64,
    pub pathology: Pathology,
    pub saved_at: String,
    pub saved_by: String,
    pub reason_for_change: Option<String>,
    /// The signatures in force (voided ones are in the audit trail).
    pub signatures: Vec<Signature>,
}

/// One page of a worklist or of the case list: the cases from `offset`
/// (counting from 0), and how many there are in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseList {
    pub cases: Vec<CaseSummary>,
    pub total: i64,
    pub offset: i64,
}

/// A line of a worklist or the case list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub id: i64,
    pub study_number: String,
    /// Prospective (the trial's accuracy cohort) or retrospective (the
    /// training set: pathology known, no AI lock).
    pub arm: Arm,
    pub site_code: String,
    pub state: CaseState,
    pub waits_for: String,
    pub open_queries: i64,
    pub updated_at: String,
}

/// The whole case, as far as the asking user may see it. Blinded parts are
/// `None` and listed in `withheld`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDetail {
    pub summary: CaseSummary,
    pub end_reason: Option<String>,
    pub images: Vec<CaseImage>,
    pub crf: Option<CrfRecord>,
    /// The readers assigned, by username.
    pub readers: Vec<String>,
    /// All reads (unblinded roles), or the asking radiologist's own.
    pub reads: Vec<Read>,
    pub prediction: Option<Prediction>,
    pub pathology: Option<PathologyRecord>,
    /// What this user may not see here: `reads`, `prediction`, `pathology`.
    pub withheld: Vec<String>,
    /// Failed attempts of the server's model run (retried); no AI output in them.
    pub ai_failures: Vec<AiFailure>,
    /// The coordinator's marks that the radiographs are of poor quality,
    /// oldest first: each proposes exclusion E1.
    pub quality_marks: Vec<QualityMark>,
    /// How the case left the study, if it has.
    pub end: Option<CaseEndRecord>,
    /// Changes of frozen model inputs after the AI lock (protocol deviations).
    pub deviations: Vec<Deviation>,
}

/// How and when a case left the study, with the state it was in then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEndRecord {
    pub end: CaseEnd,
    pub from_state: CaseState,
    pub reason: String,
    pub at: String,
    /// Who recorded it (display name).
    pub by: String,
    /// The principal investigator's signature on a withdrawal (printed name).
    pub signed_by: Option<String>,
}

/// A change of a frozen model input after the AI lock: signed by the PI with
/// a reason, reported as a protocol deviation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    pub case_id: i64,
    pub crf_version: i64,
    #[serde(flatten)]
    pub change: InputChange,
}

/// What a protocol deviation changed, why, when and under whose signature:
/// shown on the case page and listed in the locked analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputChange {
    /// The CRF field (its name in the CRF's vocabulary).
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: String,
    pub at: String,
    /// The PI's printed name (the signature).
    pub signed_by: String,
}

/// A mark that a case's radiographs are of poor quality (proposes E1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityMark {
    pub reason: String,
    pub marked_at: String,
    /// The coordinator's display name.
    pub marked_by: String,
}

/// A failed attempt of the server's model run on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiFailure {
    pub attempt: i64,
    pub model_id: String,
    pub error: String,
    pub at: String,
}

/// What the model takes for a case whose reads are locked: the stored
/// views, the clinical CRF and the Bone-RADS score the study's setting
/// names (the primary reader's, or the readers' consensus).
#[derive(Debug, Clone, PartialEq)]
pub struct AiInput {
    pub case_id: i64,
    pub images: Vec<CaseImage>,
    pub crf: ClinicalCrf,
    /// The score the model takes (`None`: no read could be scored).
    pub bone_rads: Option<bonerads::Score>,
    /// Where that score came from (recorded with the prediction).
    pub bone_rads_source: BoneRadsSource,
    /// Failed attempts so far.
    pub failures: i64,
}

/// The consensus Bone-RADS score of several signed reads: the median of
/// their points (the upper median for an even number: Bone-RADS is a safety
/// net against missed malignancy, so a tie goes to the higher risk),
/// categorised by the rule table they were scored with. Reads without points
/// (category 0, "cannot be assessed") do not vote; `None` when none can.
pub fn consensus_score(points: &[u8], table: &bonerads::RuleTable) -> Option<bonerads::Score> {
    let mut p = points.to_vec();
    if p.is_empty() {
        return None;
    }
    p.sort_unstable();
    let median = p[p.len() / 2];
    Some(bonerads::Score {
        points: Some(median),
        category: table.category(median),
    })
}

code_enum! {
    pub enum QueryStatus: "query status" {
        Open = "open", Answered = "answered", Closed = "closed", Cancelled = "cancelled",
    }
}

code_enum! {
    /// A step on a query.
    pub enum QueryAction: "query action" {
        Answer = "answer", Close = "close", Reopen = "reopen", Cancel = "cancel",
    }
}

impl QueryStatus {
    /// open → answered → closed, answered → open (reopened), open → cancelled.
    pub fn apply(self, action: QueryAction) -> Option<QueryStatus> {
        use QueryAction as A;
        use QueryStatus as S;
        match (self, action) {
            (S::Open, A::Answer) => Some(S::Answered),
            (S::Answered, A::Close) => Some(S::Closed),
            (S::Answered, A::Reopen) => Some(S::Open),
            (S::Open, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }
}

/// A data query on one field of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQuery {
    pub id: i64,
    pub case_id: i64,
    pub study_number: String,
    pub site_code: String,
    /// The CRF field, or `case` for the case as a whole.
    pub field: String,
    pub status: QueryStatus,
    pub raised_by: String,
    pub raised_at: String,
    pub messages: Vec<QueryMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMessage {
    /// `raise` or a [`QueryAction`] code.
    pub action: String,
    pub text: String,
    pub by: String,
    pub at: String,
}

/// What a failed form post leaves for its page: the values as submitted
/// (so nothing typed is lost) and the problems by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormEcho {
    /// Which form: `crf:<case id>`, `read:<case id>`, `pathology:<case id>`.
    pub form: String,
    pub values: Vec<(String, String)>,
    pub issues: Vec<FieldIssue>,
    /// The whole error in English, for what is not about one field.
    pub message: String,
}

impl FormEcho {
    /// The value submitted for `name` ("" when the field was not sent).
    pub fn value(&self, name: &str) -> String {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// How a case leaves the study early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "code")]
pub enum CaseEnd {
    Withdrawn(WithdrawalReason),
    Excluded(ExclusionCode),
}

impl CaseEnd {
    pub fn event(self) -> CaseEvent {
        match self {
            CaseEnd::Withdrawn(_) => CaseEvent::Withdrawn,
            CaseEnd::Excluded(_) => CaseEvent::Excluded,
        }
    }
    pub fn code(self) -> String {
        match self {
            CaseEnd::Withdrawn(r) => r.as_str().to_owned(),
            CaseEnd::Excluded(c) => c.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_path_runs_in_order() {
        let path = [
            CaseEvent::ImagesCompleted,
            CaseEvent::CrfCompleted,
            CaseEvent::ReadsLocked,
            CaseEvent::PredictionLocked,
            CaseEvent::PathologyEntered,
            CaseEvent::PathologySigned,
        ];
        let mut s = CaseState::Enrolled;
        for e in path {
            s = s.apply(e).unwrap();
        }
        assert_eq!(s, CaseState::Complete);
        assert_eq!(
            s.apply(CaseEvent::PathologyCorrected),
            Ok(CaseState::PathologyEntered)
        );
    }

    #[test]
    fn every_move_off_the_table_is_refused_with_what_the_case_waits_for() {
        let mut allowed = 0;
        for from in CaseState::ALL {
            for event in CaseEvent::ALL {
                match from.apply(*event) {
                    Ok(_) => allowed += 1,
                    Err(e) => {
                        assert_eq!((e.from, e.event), (*from, *event));
                        assert!(!e.hint.is_empty());
                    }
                }
            }
        }
        // 8 steps of the main path (with two corrections), exclusion from the
        // 3 states before the reads lock, withdrawal from the 5 before
        // pathology.
        assert_eq!(allowed, 8 + 3 + 5);
        let e = CaseState::ImagesComplete
            .apply(CaseEvent::PredictionLocked)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a case at `images_complete` cannot take `prediction_locked`: it waits for: the clinical CRF marked complete"
        );
        assert!(CaseState::Withdrawn.apply(CaseEvent::Excluded).is_err());
        assert!(CaseState::Complete.apply(CaseEvent::Withdrawn).is_err());
    }

    /// Regression: a case could be excluded after its AI result (and, through
    /// a pathology correction, after its pathology) was known — the classic
    /// way to improve an AUC.
    #[test]
    fn no_exclusion_after_the_reads_lock_and_nothing_once_pathology_is_known() {
        use CaseEvent as E;
        use CaseState as S;
        for s in [S::Enrolled, S::ImagesComplete, S::CrfComplete] {
            assert_eq!(s.apply(E::Excluded), Ok(S::Excluded));
        }
        for s in [S::ReadsLocked, S::AiLocked] {
            let e = s.apply(E::Excluded).unwrap_err();
            assert!(e.hint.contains("before the reads lock"), "{e}");
            assert_eq!(s.apply(E::Withdrawn), Ok(S::Withdrawn));
        }
        for s in [S::PathologyEntered, S::Complete] {
            for event in [E::Excluded, E::Withdrawn] {
                let e = s.apply(event).unwrap_err();
                assert!(e.hint.contains("reference standard is known"), "{e}");
            }
        }
    }

    #[test]
    fn reached_follows_the_main_path() {
        assert!(CaseState::AiLocked.reached(CaseState::ReadsLocked));
        assert!(!CaseState::ReadsLocked.reached(CaseState::AiLocked));
        assert!(!CaseState::Withdrawn.reached(CaseState::Enrolled));
    }

    #[test]
    fn queries_follow_their_states() {
        use QueryAction as A;
        use QueryStatus as S;
        assert_eq!(S::Open.apply(A::Answer), Some(S::Answered));
        assert_eq!(S::Answered.apply(A::Close), Some(S::Closed));
        assert_eq!(S::Answered.apply(A::Reopen), Some(S::Open));
        assert_eq!(S::Open.apply(A::Cancel), Some(S::Cancelled));
        assert_eq!(S::Open.apply(A::Close), None);
        assert_eq!(S::Closed.apply(A::Reopen), None);
    }

    #[test]
    fn a_prediction_is_checked_and_its_call_follows_the_threshold() {
        let probability = |p: f64| Probability::try_from(p);
        let mut p = PredictionInput {
            probability: probability(0.5).unwrap(),
            threshold: probability(0.5).unwrap(),
            model_id: "test".into(),
            weights_sha256: "a".repeat(64).parse().unwrap(),
            image_sha256: vec!["b".repeat(64).parse().unwrap()],
            heatmaps: vec![],
            bone_rads_source: BoneRadsSource::PrimaryReader,
            domain: None,
        };
        assert_eq!(p.check(), Ok(Call::Malignant));
        p.domain = Some(DomainFlag {
            outside: true,
            reasons: vec![],
        });
        assert_eq!(p.check(), Err(PredictionError::Domain));
        p.domain = Some(DomainFlag {
            outside: false,
            reasons: vec!["view 1: odd".into()],
        });
        assert_eq!(p.check(), Err(PredictionError::Domain));
        p.domain = Some(DomainFlag {
            outside: true,
            reasons: vec!["view 1: odd".into()],
        });
        assert_eq!(p.check(), Ok(Call::Malignant));
        p.probability = probability(0.49).unwrap();
        assert_eq!(p.check(), Ok(Call::Benign));
        // A probability outside [0, 1] and a malformed digest cannot be
        // made: they are refused where they are parsed.
        assert!(probability(f64::NAN).is_err());
        assert!("A".repeat(64).parse::<Sha256>().is_err());
        p.image_sha256.clear();
        assert_eq!(p.check(), Err(PredictionError::NoImages));
    }
}
