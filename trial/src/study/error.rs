//! Why a study-wide operation was refused: settings, the model pin, the
//! analysis plan, the database lock and the locked analysis. Each error
//! declares its [`ErrorKind`] (the policy in [`crate::error`]).

use crate::codes::UnknownCode;
use crate::error::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("your role does not allow this")]
    Forbidden,
    #[error("this is blinded for your role")]
    Blinded,
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
    #[error("there is nothing to sign yet")]
    NothingToSign,
    #[error("unknown Bone-RADS rule table `{0}`")]
    UnknownRuleTable(String),
    #[error(
        "the Bone-RADS rule table and the reading settings are fixed once the first read is saved"
    )]
    RuleTableInUse,
    #[error("how radiograph dates are de-identified is fixed once the first radiograph is stored")]
    DatesInUse,
    #[error("{0}")]
    InvalidSetting(String),
    #[error("the database cannot be locked yet: {}", .0.join("; "))]
    LockBlocked(Vec<String>),
    #[error("the database is not locked: the analysis runs only on the locked database")]
    NotLocked,
    #[error("a final lock needs the enrolment target ({target} prospective patients; {enrolled} enrolled) or a reason for stopping early")]
    TargetNotMet { target: i64, enrolled: i64 },
    #[error("the database is locked for good (final lock): it is never unlocked")]
    FinalLock,
    #[error("{0} has already signed this unlock")]
    AlreadySigned(String),
    #[error("the SAP is signed by the statistician and the PI and can no longer change")]
    SapLocked,
    #[error("no statistical analysis plan is signed by both the statistician and the PI")]
    NoSap,
    #[error(transparent)]
    Sap(#[from] super::sap::SapError),
    #[error("the analysis cannot be computed: {0}")]
    Analysis(String),
    #[error("the locked dataset does not match the SHA-256 recorded at lock: the snapshot was changed after the lock, and nothing is computed from it")]
    SnapshotTampered,
    #[error("the trial's model is pinned before the first prediction and never changes after it")]
    ModelPinFixed,
    #[error("the demonstration model never runs in the trial")]
    DemoModelInTrial,
    #[error("a model to pin has an id of 1 to 200 characters and a weights SHA-256 of 64 lowercase hex digits")]
    BadModel,
    #[error(transparent)]
    Code(#[from] UnknownCode),
    #[error(transparent)]
    Screening(#[from] crate::screening::ScreeningError),
    /// The database refused the change or failed, or a stored record did
    /// not parse: below the service's own rules.
    #[error(transparent)]
    Failed(#[from] crate::write::StoreFailure),
}

crate::write::write_path_errors!(StudyError);

impl ServiceError for StudyError {
    fn kind(&self) -> ErrorKind {
        use StudyError as E;
        match self {
            E::Screening(e) => e.kind(),
            E::Forbidden | E::Blinded => ErrorKind::Forbidden,
            E::SecondFactorNotEnrolled => ErrorKind::Forbidden,
            E::BadPassword
            | E::SecondFactorNeeded
            | E::UnknownRuleTable(_)
            | E::InvalidSetting(_)
            | E::Sap(_)
            | E::Code(_)
            | E::BadModel => ErrorKind::Invalid,
            E::Failed(f) => f.kind(),
            E::DatabaseLocked
            | E::NothingToSign
            | E::RuleTableInUse
            | E::DatesInUse
            | E::LockBlocked(_)
            | E::NotLocked
            | E::TargetNotMet { .. }
            | E::FinalLock
            | E::AlreadySigned(_)
            | E::SapLocked
            | E::NoSap
            | E::Analysis(_)
            | E::SnapshotTampered
            | E::ModelPinFixed
            | E::DemoModelInTrial => ErrorKind::Conflict,
        }
    }

    /// A stable code for the interface's translations (`case.error.<code>`).
    fn code(&self) -> &'static str {
        use StudyError as E;
        match self {
            E::Forbidden => "forbidden",
            E::Blinded => "blinded",
            E::BadPassword => "bad_password",
            E::SecondFactorNeeded => "second_factor_needed",
            E::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            E::DatabaseLocked => "database_locked",
            E::NothingToSign => "nothing_to_sign",
            E::UnknownRuleTable(_) => "unknown_rule_table",
            E::RuleTableInUse => "rule_table_in_use",
            E::DatesInUse => "dates_in_use",
            E::InvalidSetting(_) => "invalid_setting",
            E::LockBlocked(_) => "lock_blocked",
            E::NotLocked => "not_locked",
            E::TargetNotMet { .. } => "target_not_met",
            E::FinalLock => "final_lock",
            E::AlreadySigned(_) => "already_signed",
            E::SapLocked => "sap_locked",
            E::NoSap => "no_sap",
            E::Sap(_) => "sap",
            E::Analysis(_) => "analysis",
            E::SnapshotTampered => "snapshot_tampered",
            E::ModelPinFixed => "model_pin_fixed",
            E::DemoModelInTrial => "demo_model_in_trial",
            E::BadModel => "prediction",
            E::Code(_) => "invalid",
            E::Screening(e) => e.code(),
            E::Failed(f) => f.code(),
        }
    }
}

impl StudyError {
    /// The stable code (see [`ServiceError::code`]).
    pub fn code(&self) -> &'static str {
        ServiceError::code(self)
    }

    /// The kind (see [`ServiceError::kind`]).
    pub fn kind(&self) -> ErrorKind {
        ServiceError::kind(self)
    }
}
