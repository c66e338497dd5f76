//! The figures of the locked analysis (computed in [`super::accuracy`], on
//! the server; the types are shared with the browser).

use super::sap::{IntermediateMapping, Sap};
use crate::analysis::bootstrap::BootstrapCi;
use crate::analysis::mcnemar::McNemar;
use crate::analysis::mrmc::MrmcResult;
use crate::analysis::roc::{AucComparison, AucEstimate};
use crate::analysis::threshold::{AtThreshold, Rate};
use crate::screening::FlowCounts;
use serde::{Deserialize, Serialize};

/// A reader against the AI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderResult {
    /// `reader 1`, `reader 2`, … (by account, in order), or `mean of readers`.
    pub reader: String,
    pub n: usize,
    pub auc_likelihood: AucEstimate,
    pub auc_bone_rads: Option<AucEstimate>,
    /// The reader's benign/malignant call as the test.
    pub call: AtThreshold,
    /// AI minus the reader's likelihood, on the cases both scored.
    pub ai_vs_reader: AucComparison,
    /// The AI call at the SAP threshold against the reader's call, on the
    /// cases both called: b = AI right and reader wrong, c = the reverse.
    pub mcnemar: McNemar,
}

/// The figures of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub sap: Sap,
    pub primary_endpoint: String,
    /// Complete prospective cases in the snapshot.
    pub n_complete: usize,
    /// Left out by the intermediate mapping.
    pub n_excluded_intermediate: usize,
    pub n_malignant: usize,
    pub n_benign: usize,
    pub ai_auc: AucEstimate,
    /// Stratified percentile bootstrap CI of the AI AUC
    /// ([`BOOTSTRAP_REPLICATES`] replicates, seed [`BOOTSTRAP_SEED`]).
    pub ai_auc_bootstrap: BootstrapCi,
    pub ai_at_threshold: AtThreshold,
    pub readers: Vec<ReaderResult>,
    /// The primary AUC under the other intermediate mappings (`None` where
    /// a class is empty).
    pub sensitivity: Vec<(IntermediateMapping, Option<AucEstimate>)>,
    /// The counts of the STARD 2015 flow diagram.
    pub flow: StardFlow,
    /// The empirical ROC curves: the AI, then each reader's likelihood and
    /// Bone-RADS category.
    pub roc: Vec<RocSeries>,
    /// The AI by sex, age band and bone (the CRF's values).
    pub subgroups: Vec<Subgroup>,
    /// Obuchowski–Rockette (DeLong covariance, Hillis degrees of freedom):
    /// the AI (the same score for every reader) against the readers'
    /// likelihoods, when two or more readers read every analysed case.
    pub mrmc: Option<MrmcResult>,
    /// Every exclusion and withdrawal after enrolment, with the state the
    /// case was in when it happened (STARD 2015 item 20).
    pub ended: Vec<EndedCase>,
    /// The protocol deviations: model inputs changed after the AI lock.
    pub deviations: Vec<DeviationRow>,
    /// The model pinned for the study, whose predictions these are.
    pub model: Option<PinnedModel>,
}

/// A case that left the study after enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedCase {
    pub study_number: String,
    /// `prospective` or `retrospective`.
    pub arm: String,
    /// `withdrawn` or `excluded`.
    pub kind: String,
    /// E1–E3, or the withdrawal reason's code.
    pub code: String,
    /// The state the case was in when it ended (`None`: not recorded, for a
    /// case ended before the state was kept).
    pub from_state: Option<String>,
    pub reason: String,
    pub at: Option<String>,
    /// The principal investigator's printed name on a withdrawal.
    pub signed_by: Option<String>,
}

/// A protocol deviation: a frozen model input changed after the AI lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviationRow {
    pub study_number: String,
    #[serde(flatten)]
    pub change: crate::case::record::InputChange,
}

/// The model pinned for the study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedModel {
    pub model_id: String,
    pub weights_sha256: String,
    pub card_sha256: String,
    pub pinned_at: String,
    /// The PI's printed name (`None`: pinned by the demonstration study itself).
    pub signed_by: Option<String>,
}

/// The STARD 2015 flow of the prospective arm: the screening log (latest
/// version of each entry), then the enrolled cases to the reference
/// standard, split by the AI's call at the SAP threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StardFlow {
    /// The prospective screening log's counts.
    pub screening: FlowCounts,
    /// Enrolled cases ended before the reference standard (withdrawn, or
    /// excluded after enrolment).
    pub ended_early: usize,
    /// Of those, excluded after enrolment, by exclusion code.
    pub excluded_after_enrolment: Vec<(String, usize)>,
    /// Of those, withdrawn — "enrolled, no reference standard" — by reason.
    pub withdrawn: Vec<(String, usize)>,
    /// Complete cases (pathology signed) without a locked prediction.
    pub no_index_test: usize,
    /// Complete cases with the AI positive (at or above the threshold).
    pub ai_positive: ByReference,
    pub ai_negative: ByReference,
}

/// Cases by the reference standard's tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByReference {
    pub malignant: usize,
    pub benign: usize,
    pub intermediate: usize,
}

/// One empirical ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocSeries {
    /// `AI`, `reader 1 likelihood`, `reader 1 Bone-RADS`, …
    pub name: String,
    pub auc: f64,
    /// `(1 − specificity, sensitivity)` from (0, 0) to (1, 1).
    pub points: Vec<(f64, f64)>,
}

/// The AI in one subgroup of the analysed cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subgroup {
    /// `sex`, `age_band`, `bone` or `model_domain`.
    pub variable: String,
    /// The CRF code (`female`, `femur`, …), the band (`0-17`, `18-39`,
    /// `40-59`, `60+`) or `missing`.
    pub level: String,
    pub n_malignant: usize,
    pub n_benign: usize,
    /// `None` where a class is empty.
    pub auc: Option<AucEstimate>,
    /// At the SAP threshold.
    pub sensitivity: Rate,
    pub specificity: Rate,
}

/// The age bands of the subgroup analysis (years, inclusive): childhood and
/// adolescence, when most primary bone sarcomas occur; young adults; middle
/// age; and the age of metastases and myeloma.
pub const AGE_BANDS: [(u16, u16, &str); 4] = [
    (0, 17, "0-17"),
    (18, 39, "18-39"),
    (40, 59, "40-59"),
    (60, u16::MAX, "60+"),
];

/// The CSV tables of the locked-data export, the data dictionary first.
pub const CSV_TABLES: [&str; 7] = [
    "dictionary",
    "screening",
    "cases",
    "crf",
    "reads",
    "predictions",
    "pathology",
];

/// The downloads of the locked data, by file name: the report in each
/// language, the CDISC ODM file, then the CSV tables (the one list the
/// analysis page and the server's export both use).
pub fn export_files() -> Vec<String> {
    crate::domain::Locale::ALL
        .iter()
        .map(|l| format!("report-{}.pdf", l.tag()))
        .chain(std::iter::once("odm.xml".to_owned()))
        .chain(CSV_TABLES.iter().map(|t| format!("{t}.csv")))
        .collect()
}

/// Replicates of the bootstrap interval of the primary AUC.
pub const BOOTSTRAP_REPLICATES: usize = 2000;
/// Its seed (the registration date), so that every rerun gives the same interval.
pub const BOOTSTRAP_SEED: u64 = 20250520;

/// The analysis with what identifies the data and plan it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedAnalysis {
    /// The trial, or the demonstration study (whose report says so).
    #[serde(default)]
    pub study_kind: crate::domain::StudyKind,
    pub locked_at: String,
    /// `interim` or `final`.
    pub lock_kind: String,
    /// A final lock before the enrolment target: the signed reason for stopping early.
    #[serde(default)]
    pub early_stop_reason: Option<String>,
    pub dataset_sha256: String,
    pub sap_version: i64,
    pub analysis: Analysis,
    /// Every lock, unlock, analysis view and export download up to this
    /// lock (the looks at the data before the final analysis).
    pub data_access: Vec<super::DataAccess>,
    /// The audit chain's head signed at this lock: sequence number, hash and
    /// the public key it was signed with.
    pub audit_head: Option<AuditHead>,
}

/// The head of the audit chain as signed at a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
    pub public_key: String,
}
