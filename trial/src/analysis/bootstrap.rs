//! Stratified bootstrap confidence interval of the AUC: positives and
//! negatives are resampled separately, so every replicate keeps the study's
//! class sizes (as pROC's default `stratified = TRUE`). The percentile
//! interval uses R's default quantile (type 7).
//!
//! Reproducibility: the generator is ChaCha8 from `rand_chacha`, whose output
//! for a seed is fixed by its specification (not by a crate version), and the
//! index draw is the multiply-shift of Lemire (2019), so a seed gives the same
//! interval on every machine and every build.

use super::roc::{auc, Direction, Sample};
use super::StatsError;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    pub estimate: f64,
    pub replicates: usize,
    pub seed: u64,
    pub lower: f64,
    pub upper: f64,
    /// The bootstrap standard error (SD of the replicates).
    pub se: f64,
}

/// An index in `0..n` from 64 random bits (bias below 2⁻⁵⁰ for the sample
/// sizes of this trial).
fn index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// R's type-7 quantile of sorted data.
pub fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Percentile interval of the AUC over `replicates` stratified resamples.
pub fn auc_ci(
    sample: &Sample,
    replicates: usize,
    seed: u64,
    level: f64,
) -> Result<BootstrapCi, StatsError> {
    super::z_two_sided(level)?;
    if replicates < 2 {
        return Err(StatsError::EmptySample);
    }
    let estimate = auc(sample, level)?.auc;
    let (pos, neg) = sample.classes();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut aucs = Vec::with_capacity(replicates);
    let mut scores = Vec::with_capacity(pos.len() + neg.len());
    let mut truth = Vec::with_capacity(pos.len() + neg.len());
    for _ in 0..replicates {
        scores.clear();
        truth.clear();
        for _ in 0..pos.len() {
            scores.push(pos[index(&mut rng, pos.len())]);
            truth.push(true);
        }
        for _ in 0..neg.len() {
            scores.push(neg[index(&mut rng, neg.len())]);
            truth.push(false);
        }
        // The classes are already oriented (higher = positive).
        let replicate = Sample::new(&scores, &truth, Direction::HigherIsPositive)?;
        aucs.push(super::roc::auc_value(&replicate));
    }
    aucs.sort_by(f64::total_cmp);
    let mean = aucs.iter().sum::<f64>() / replicates as f64;
    let se =
        (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (replicates - 1) as f64).sqrt();
    Ok(BootstrapCi {
        estimate,
        replicates,
        seed,
        lower: quantile_type7(&aucs, (1.0 - level) / 2.0),
        upper: quantile_type7(&aucs, 1.0 - (1.0 - level) / 2.0),
        se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::roc::auc as auc_of;

    fn asah_s100b() -> Sample {
        let text = include_str!("../../tests/data/asah.csv");
        let (mut s, mut t) = (Vec::new(), Vec::new());
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            t.push(f[2] == "Poor");
            s.push(f[7].parse().unwrap());
        }
        Sample::new(&s, &t, Direction::HigherIsPositive).unwrap()
    }

    #[test]
    fn a_seed_gives_the_same_interval_and_another_seed_a_different_one() {
        let s = asah_s100b();
        let a = auc_ci(&s, 500, 42, 0.95).unwrap();
        let b = auc_ci(&s, 500, 42, 0.95).unwrap();
        let c = auc_ci(&s, 500, 43, 0.95).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.lower, c.lower);
    }

    /// The bootstrap and DeLong agree on aSAH (pROC's documentation shows a
    /// bootstrap CI of about 0.63–0.83 for s100b, DeLong 0.6301–0.8326).
    #[test]
    fn agrees_with_delong_on_asah() {
        let s = asah_s100b();
        let boot = auc_ci(&s, 2000, 2024, 0.95).unwrap();
        let delong = auc_of(&s, 0.95).unwrap();
        let ci = delong.ci_delong.unwrap();
        assert!((boot.lower - ci.0).abs() < 0.02, "{boot:?}");
        assert!((boot.upper - ci.1).abs() < 0.02, "{boot:?}");
        assert!((boot.se - delong.se_delong.unwrap()).abs() < 0.01);
        assert!(boot.lower < boot.estimate && boot.estimate < boot.upper);
    }

    #[test]
    fn type7_quantiles_match_r() {
        // quantile(c(1, 2, 3, 4, 10), c(0.025, 0.5, 0.975)) in R: 1.1, 3, 9.4
        let d = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((quantile_type7(&d, 0.025) - 1.1).abs() < 1e-12);
        assert_eq!(quantile_type7(&d, 0.5), 3.0);
        assert!((quantile_type7(&d, 0.975) - 9.4).abs() < 1e-12);
    }
}
