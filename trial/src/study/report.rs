//! The figures of the locked analysis (computed in `analysis`, on the
//! server; the types are shared with the browser).

use super::sap::{IntermediateMapping, Sap};
use crate::analysis::bootstrap::BootstrapCi;
use crate::analysis::mcnemar::McNemar;
use crate::analysis::roc::{AucComparison, AucEstimate};
use crate::analysis::threshold::AtThreshold;
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
}

/// Replicates of the bootstrap interval of the primary AUC.
pub const BOOTSTRAP_REPLICATES: usize = 2000;
/// Its seed (the registration date), so that every rerun gives the same interval.
pub const BOOTSTRAP_SEED: u64 = 20250520;

/// The analysis with what identifies the data and plan it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedAnalysis {
    pub locked_at: String,
    pub dataset_sha256: String,
    pub sap_version: i64,
    pub analysis: Analysis,
}
