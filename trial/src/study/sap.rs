//! The statistical analysis plan (SAP): the settings the locked analysis is
//! computed with, fixed before unblinding. A version is signed by the
//! statistician and by the principal investigator; once both have signed it
//! is locked and never changes, and the database cannot be locked without it.

use crate::codes::code_enum;
use serde::{Deserialize, Serialize};

code_enum! {
    /// How intermediate tumours (ICD-O /1) enter the binary endpoint
    /// (PROTOCOL.md); the other two mappings are reported as sensitivity analyses.
    pub enum IntermediateMapping: "intermediate mapping" {
        AsBenign = "as_benign", AsMalignant = "as_malignant", Excluded = "excluded",
    }
}

code_enum! {
    /// How the radiologists enter the comparison with the AI.
    pub enum ReaderAggregation: "reader aggregation" {
        /// Each reader separately (paired DeLong and McNemar per reader).
        EachReader = "each_reader",
        /// The mean malignancy likelihood of the readers of a case.
        MeanLikelihood = "mean_likelihood",
    }
}

/// The primary endpoint, as registered (fixed; stated in every report).
pub const PRIMARY_ENDPOINT: &str =
    "AUC of the AI malignancy probability against pathology (benign vs malignant), prospective arm";

/// The settings of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sap {
    /// The AI's operating threshold (from the model card): malignant at or above.
    pub threshold: f64,
    pub intermediate: IntermediateMapping,
    pub readers: ReaderAggregation,
    /// Confidence level of every interval, in (0, 1).
    pub conf_level: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SapError {
    #[error("the threshold is a probability strictly between 0 and 1")]
    Threshold,
    #[error("the confidence level lies strictly between 0.5 and 1 (0.95 is usual)")]
    ConfLevel,
}

impl Sap {
    pub fn check(&self) -> Result<(), SapError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(SapError::Threshold);
        }
        if !(self.conf_level.is_finite() && self.conf_level > 0.5 && self.conf_level < 1.0) {
            return Err(SapError::ConfLevel);
        }
        Ok(())
    }
}

/// A version of the plan with its signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SapVersion {
    pub version: i64,
    pub sap: Sap,
    pub primary_endpoint: String,
    pub created_at: String,
    pub created_by: String,
    /// `(role, printed name, signed at)` of the statistician and the PI.
    pub signatures: Vec<(String, String, String)>,
    /// Both have signed: the plan is fixed.
    pub locked: bool,
}
