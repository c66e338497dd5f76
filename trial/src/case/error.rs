//! Why a case operation was refused. The messages tell the user what to do;
//! each error declares its [`ErrorKind`] (the policy in [`crate::error`]).

use super::crf::FieldIssue;
use super::pathology::PathologyError;
use super::{CaseEvent, CaseState, IllegalTransition, PredictionError, QueryAction, QueryStatus};
use crate::codes::UnknownCode;
use crate::domain::DomainError;
use crate::error::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("your role does not allow this")]
    Forbidden,
    #[error("the case is {0}: nothing more is recorded on it")]
    CaseClosed(String),
    #[error("this is blinded for your role")]
    Blinded,
    #[error("there is no case {0}")]
    UnknownCase(i64),
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    #[error("the CRF does not pass its edit checks")]
    Crf(Vec<FieldIssue>),
    #[error("a completed CRF is changed only with a reason for change")]
    ReasonRequired,
    #[error("there is nothing complete to sign yet")]
    NothingToSign,
    #[error("images are complete with at least one frontal and one lateral view (have: {0})")]
    ViewsMissing(String),
    #[error("the study has not confirmed a Bone-RADS rule table; the principal investigator confirms one before the first read")]
    NoRuleTable,
    #[error("{0} is not a radiologist with an active account")]
    NotARadiologist(String),
    #[error("{0} is already assigned to this case")]
    AlreadyAssigned(String),
    #[error("you are not assigned to read this case")]
    NotAssigned,
    #[error("the read is signed and locked; it cannot change")]
    ReadLocked,
    #[error("save the read before signing it")]
    NoReadToSign,
    #[error("a likelihood is 0 to 100")]
    Likelihood,
    #[error("readers are assigned until the reads are locked")]
    AssignmentClosed,
    #[error("pathology can be entered only after the AI prediction and every blinded read of the case are locked")]
    PathologyGate,
    #[error(transparent)]
    Pathology(#[from] PathologyError),
    #[error("this radiograph is already stored")]
    DuplicateImage,
    #[error("the prediction of this case is already locked; it never changes")]
    PredictionExists,
    #[error(transparent)]
    Prediction(#[from] PredictionError),
    #[error("no model is pinned for the trial: the principal investigator pins one before the first prediction")]
    NoPinnedModel,
    #[error("model {0} is not the model pinned for the trial; its prediction is not recorded")]
    NotPinnedModel(String),
    #[error("these fields fed the AI model or define a subgroup and are frozen since the AI lock: {}; a change needs a reason and the principal investigator's signature, and is recorded as a protocol deviation", .0.join(", "))]
    FrozenInput(Vec<String>),
    #[error("nothing to amend: the amendment changes no frozen field (the coordinator corrects the other fields)")]
    NothingChanged,
    #[error("a withdrawal needs the principal investigator's signature")]
    WithdrawalNeedsPi,
    #[error(
        "the password or the second factor's code is not correct; the signature was not applied"
    )]
    BadPassword,
    #[error("this account signs with a second factor: give the code from the authenticator app (or a recovery code) with the password; the signature was not applied")]
    SecondFactorNeeded,
    #[error("administrators and principal investigators enrol a second factor before they sign: open the account's second-factor page; the signature was not applied")]
    SecondFactorNotEnrolled,
    #[error(
        "the database is locked: no change is accepted until the principal investigator unlocks it"
    )]
    DatabaseLocked,
    #[error("the query is {from} and cannot take `{action}`")]
    QueryTransition {
        from: QueryStatus,
        action: QueryAction,
    },
    #[error("there is no query {0}")]
    UnknownQuery(i64),
    #[error("query text is 1 to 2000 characters")]
    QueryText,
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error(transparent)]
    Code(#[from] UnknownCode),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database refused the change or failed, or a stored record did
    /// not parse: below the service's own rules.
    #[error(transparent)]
    Failed(#[from] crate::write::StoreFailure),
    /// A report or picture could not be made from the record.
    #[error("{0}")]
    Rendering(String),
}

crate::write::write_path_errors!(CaseError);

impl ServiceError for CaseError {
    fn kind(&self) -> ErrorKind {
        use CaseError as E;
        match self {
            E::Forbidden | E::Blinded | E::NotAssigned | E::WithdrawalNeedsPi => {
                ErrorKind::Forbidden
            }
            E::UnknownCase(_) | E::UnknownQuery(_) => ErrorKind::NotFound,
            E::Crf(_)
            | E::ReasonRequired
            | E::Likelihood
            | E::NotARadiologist(_)
            | E::Pathology(_)
            | E::Prediction(_)
            | E::QueryText
            | E::UnknownField(_)
            | E::Code(_)
            | E::Domain(_)
            | E::BadPassword
            | E::SecondFactorNeeded => ErrorKind::Invalid,
            E::SecondFactorNotEnrolled => ErrorKind::Forbidden,
            E::Failed(f) => f.kind(),
            E::Rendering(_) => ErrorKind::Internal,
            E::CaseClosed(_)
            | E::Transition(_)
            | E::NothingToSign
            | E::ViewsMissing(_)
            | E::NoRuleTable
            | E::AlreadyAssigned(_)
            | E::ReadLocked
            | E::NoReadToSign
            | E::AssignmentClosed
            | E::PathologyGate
            | E::PredictionExists
            | E::DuplicateImage
            | E::NoPinnedModel
            | E::NotPinnedModel(_)
            | E::FrozenInput(_)
            | E::NothingChanged
            | E::DatabaseLocked
            | E::QueryTransition { .. } => ErrorKind::Conflict,
        }
    }

    /// A stable code for the interface's translations (`case.error.<code>`).
    fn code(&self) -> &'static str {
        use CaseError as E;
        match self {
            E::Forbidden => "forbidden",
            E::CaseClosed(_) => "case_closed",
            E::Blinded => "blinded",
            E::UnknownCase(_) => "unknown_case",
            E::Transition(t)
                if t.event == CaseEvent::Excluded
                    && matches!(t.from, CaseState::ReadsLocked | CaseState::AiLocked) =>
            {
                "exclusion_after_reads"
            }
            E::Transition(t)
                if matches!(t.event, CaseEvent::Excluded | CaseEvent::Withdrawn)
                    && matches!(t.from, CaseState::PathologyEntered | CaseState::Complete) =>
            {
                "end_after_reference"
            }
            E::Transition(_) => "transition",
            E::Crf(_) => "crf",
            E::ReasonRequired => "reason_required",
            E::NothingToSign => "nothing_to_sign",
            E::ViewsMissing(_) => "views_missing",
            E::NoRuleTable => "no_rule_table",
            E::NotARadiologist(_) => "not_a_radiologist",
            E::AlreadyAssigned(_) => "already_assigned",
            E::NotAssigned => "not_assigned",
            E::ReadLocked => "read_locked",
            E::NoReadToSign => "no_read_to_sign",
            E::Likelihood => "likelihood",
            E::AssignmentClosed => "assignment_closed",
            E::PathologyGate => "pathology_gate",
            E::Pathology(_) => "pathology",
            E::PredictionExists => "prediction_exists",
            E::DuplicateImage => "duplicate_image",
            E::Prediction(_) => "prediction",
            E::NoPinnedModel => "no_pinned_model",
            E::NotPinnedModel(_) => "not_pinned_model",
            E::FrozenInput(_) => "frozen_input",
            E::NothingChanged => "nothing_changed",
            E::WithdrawalNeedsPi => "withdrawal_needs_pi",
            E::BadPassword => "bad_password",
            E::SecondFactorNeeded => "second_factor_needed",
            E::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            E::DatabaseLocked => "database_locked",
            E::QueryTransition { .. } => "query_transition",
            E::UnknownQuery(_) => "unknown_query",
            E::QueryText => "query_text",
            E::UnknownField(_) => "unknown_field",
            E::Code(_) | E::Domain(_) => "invalid",
            E::Failed(f) => f.code(),
            E::Rendering(_) => "internal",
        }
    }
}

impl CaseError {
    /// The stable code (see [`ServiceError::code`]).
    pub fn code(&self) -> &'static str {
        ServiceError::code(self)
    }

    /// The kind (see [`ServiceError::kind`]).
    pub fn kind(&self) -> ErrorKind {
        ServiceError::kind(self)
    }
}
