//! The diagnostic-accuracy engine: pure functions over slices, typed errors,
//! each formula documented with its source.
//!
//! - [`roc`]: ROC curve, AUC (Mann–Whitney), DeLong variance by the fast
//!   algorithm of Sun & Xu (2014), Wald and logit confidence intervals,
//!   Hanley–McNeil standard error, Youden's threshold, and the paired and
//!   unpaired DeLong comparison of two AUCs.
//! - [`proportion`]: Wilson, Wilson with continuity correction, Clopper–Pearson
//!   and Wald intervals (Newcombe 1998).
//! - [`threshold`]: the 2×2 table at a threshold and sensitivity, specificity,
//!   PPV, NPV and accuracy with their intervals.
//! - [`mrmc`]: multi-reader multi-case comparison (Obuchowski–Rockette with
//!   Hillis's degrees of freedom, jackknife or DeLong covariances).
//! - [`bootstrap`]: seeded, stratified bootstrap CI of the AUC.
//! - [`calibration`]: Brier score, calibration slope and intercept.
//! - [`power`]: sample size and power for one AUC and for two paired AUCs
//!   (Obuchowski's formulas, as pROC's `power.roc.test`).
//! - [`mcnemar`]: McNemar's test — chi-square, with continuity correction,
//!   exact conditional and mid-p (Fagerland, Lydersen & Laake 2013).
//!
//! Degenerate input is an error ([`StatsError`]) or an explicit `None`,
//! never a silent number, and a direction is never flipped silently.

pub mod bootstrap;
pub mod calibration;
pub mod mcnemar;
pub mod mrmc;
pub mod power;
pub mod proportion;
pub mod roc;
pub mod threshold;

use statrs::distribution::{ContinuousCDF, Normal};

/// Why a figure cannot be computed from the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StatsError {
    #[error("the scores and the labels differ in length ({scores} scores, {labels} labels)")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("score {index} is not a finite number ({value})")]
    NotFinite { index: usize, value: f64 },
    #[error("there are no positive cases: an AUC needs both classes")]
    NoPositives,
    #[error("there are no negative cases: an AUC needs both classes")]
    NoNegatives,
    #[error("the confidence level must lie strictly between 0 and 1 (got {0})")]
    ConfidenceLevel(f64),
    #[error("x = {x} is larger than n = {n}")]
    CountAboveTotal { x: u64, n: u64 },
    #[error("n must be at least 1")]
    EmptySample,
    #[error("the truth has {0} distinct values; exactly two are needed (positive and negative)")]
    LabelValues(usize),
    #[error("the two score columns must score the same cases")]
    NotPaired,
    #[error("the AUC (or difference) to power a study for must lie in (0.5, 1) (or be non-zero); got {0}")]
    PowerAuc(f64),
    #[error("the pilot data need at least two cases of each class for DeLong's variances")]
    PilotTooSmall,
}

/// The standard normal quantile `z` with `P(|Z| ≤ z) = level`.
pub fn z_two_sided(level: f64) -> Result<f64, StatsError> {
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::ConfidenceLevel(level));
    }
    Ok(standard_normal().inverse_cdf(0.5 + level / 2.0))
}

/// Φ, the standard normal distribution.
pub(crate) fn standard_normal() -> Normal {
    Normal::standard()
}

/// Rounds for display in tests and reports: `digits` after the point.
pub fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10_f64.powi(digits);
    (x * f).round() / f
}
