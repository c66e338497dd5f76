//! Sample size and power of ROC studies by Obuchowski's formulas, as R's
//! pROC `power.roc.test` implements them (Robin et al. 2011).
//!
//! **One AUC** against H0: AUC = 0.5 (Obuchowski 1998, Stat Methods Med Res
//! 7:371; variance function of Obuchowski 2004, Radiology 233:1123,
//! formula 3, binormal with equal variances):
//!
//! `V(θ) = 0.0099 · e^(−A²/2) · ((5A² + 8) + (A² + 8)/κ)`, `A = 1.414 · Φ⁻¹(θ)`,
//! `V(0.5) = 0.0792 · (1 + 1/κ)`, κ = negatives / positives, and
//! `n_pos = (z_α √V(0.5) + z_β √V(θ))² / (θ − 0.5)²`.
//!
//! **Two paired AUCs** (the same cases read by both tests; Obuchowski &
//! McClish 1997, Stat Med 16:1529): with V_A = var₁ + var₂ − 2 cov and
//! V_0 = 2 var₁ − 2 cov (each scaled by n_pos; the first test is the
//! reference under H0), `n_pos = (z_α √V_0 + z_β √V_A)² / Δ²`. The
//! variances and covariance come from pilot data by DeLong's method.
//!
//! Power and significance level are the roots of the same equations in z_β
//! and z_α. Two-sided tests use α/2, as pROC does.

use super::{standard_normal, StatsError};
use statrs::distribution::ContinuousCDF;

/// Which alternative the test has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Sided {
    #[default]
    Two,
    One,
}

fn one_sided_alpha(alpha: f64, sided: Sided) -> f64 {
    match sided {
        Sided::Two => alpha / 2.0,
        Sided::One => alpha,
    }
}

fn check_probability(p: f64) -> Result<(), StatsError> {
    if p.is_finite() && p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(StatsError::ConfidenceLevel(p))
    }
}

fn check_auc(auc: f64) -> Result<(), StatsError> {
    if auc.is_finite() && auc > 0.5 && auc < 1.0 {
        Ok(())
    } else {
        Err(StatsError::PowerAuc(auc))
    }
}

fn check_n(n: f64) -> Result<(), StatsError> {
    if n.is_finite() && n > 0.0 {
        Ok(())
    } else {
        Err(StatsError::EmptySample)
    }
}

/// Obuchowski's variance function of one AUC (per positive case).
pub fn var_theta(auc: f64, kappa: f64) -> f64 {
    let a = standard_normal().inverse_cdf(auc) * 1.414;
    0.0099 * (-a * a / 2.0).exp() * ((5.0 * a * a + 8.0) + (a * a + 8.0) / kappa)
}

fn var_null(kappa: f64) -> f64 {
    0.0792 * (1.0 + 1.0 / kappa)
}

/// The smaller root of a z² + b z + c = 0.
fn root(a: f64, b: f64, c: f64) -> f64 {
    (-b - (b * b - 4.0 * a * c).sqrt()) / (2.0 * a)
}

/// Positive cases needed to show `auc` > 0.5 (negatives: κ times as many).
pub fn one_auc_n_pos(
    auc: f64,
    kappa: f64,
    alpha: f64,
    power: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_auc(auc)?;
    check_probability(alpha)?;
    check_probability(power)?;
    check_n(kappa)?;
    let n = standard_normal();
    let z_a = n.inverse_cdf(one_sided_alpha(alpha, sided));
    let z_b = n.inverse_cdf(1.0 - power);
    Ok(
        (z_a * var_null(kappa).sqrt() + z_b * var_theta(auc, kappa).sqrt()).powi(2)
            / (auc - 0.5).powi(2),
    )
}

/// Power to show `auc` > 0.5 with these numbers of cases.
pub fn one_auc_power(
    auc: f64,
    n_pos: f64,
    n_neg: f64,
    alpha: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_auc(auc)?;
    check_probability(alpha)?;
    check_n(n_pos)?;
    check_n(n_neg)?;
    let n = standard_normal();
    let kappa = n_neg / n_pos;
    let z_a = n.inverse_cdf(one_sided_alpha(alpha, sided));
    let v = var_theta(auc, kappa);
    let zar = z_a * var_null(kappa).sqrt();
    let z_b = root(
        v,
        2.0 * zar * v.sqrt(),
        zar * zar - n_pos * (auc * auc - auc + 0.25),
    );
    Ok(1.0 - n.cdf(z_b))
}

/// The significance level at which these numbers of cases give `power`.
pub fn one_auc_alpha(
    auc: f64,
    n_pos: f64,
    n_neg: f64,
    power: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_auc(auc)?;
    check_probability(power)?;
    check_n(n_pos)?;
    check_n(n_neg)?;
    let n = standard_normal();
    let kappa = n_neg / n_pos;
    let zbr = n.inverse_cdf(1.0 - power) * var_theta(auc, kappa).sqrt();
    let v0 = var_null(kappa);
    let z_a = root(
        v0,
        2.0 * zbr * v0.sqrt(),
        zbr * zbr - n_pos * (auc * auc - auc + 0.25),
    );
    let p = n.cdf(z_a);
    Ok(match sided {
        Sided::Two => 2.0 * p,
        Sided::One => p,
    })
}

/// Pilot estimates for two paired AUCs: the difference and the DeLong
/// variances and covariance (of the AUCs, not scaled), with the pilot's
/// number of positives.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairedPilot {
    pub delta: f64,
    pub var1: f64,
    pub var2: f64,
    pub cov: f64,
    pub n_pos: f64,
}

impl PairedPilot {
    fn scaled(&self) -> Result<(f64, f64), StatsError> {
        check_n(self.n_pos)?;
        if !(self.delta.is_finite() && self.delta != 0.0) {
            return Err(StatsError::PowerAuc(self.delta));
        }
        let (v1, v2, c) = (
            self.var1 * self.n_pos,
            self.var2 * self.n_pos,
            self.cov * self.n_pos,
        );
        Ok((2.0 * v1 - 2.0 * c, v1 + v2 - 2.0 * c))
    }
}

/// Positive cases needed to detect the pilot's difference between two paired AUCs.
pub fn paired_n_pos(
    pilot: &PairedPilot,
    alpha: f64,
    power: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_probability(alpha)?;
    check_probability(power)?;
    let (v0, va) = pilot.scaled()?;
    let n = standard_normal();
    let z_a = n.inverse_cdf(one_sided_alpha(alpha, sided));
    let z_b = n.inverse_cdf(1.0 - power);
    Ok((z_a * v0.sqrt() + z_b * va.sqrt()).powi(2) / pilot.delta.powi(2))
}

/// Power of the paired comparison with `n_pos` positives.
pub fn paired_power(
    pilot: &PairedPilot,
    n_pos: f64,
    alpha: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_probability(alpha)?;
    check_n(n_pos)?;
    let (v0, va) = pilot.scaled()?;
    let n = standard_normal();
    let z_a = n.inverse_cdf(one_sided_alpha(alpha, sided));
    let z_b = root(
        va,
        2.0 * z_a * va.sqrt() * v0.sqrt(),
        z_a * z_a * v0 - n_pos * pilot.delta.powi(2),
    );
    Ok(1.0 - n.cdf(z_b))
}

/// The significance level at which `n_pos` positives give `power`.
pub fn paired_alpha(
    pilot: &PairedPilot,
    n_pos: f64,
    power: f64,
    sided: Sided,
) -> Result<f64, StatsError> {
    check_probability(power)?;
    check_n(n_pos)?;
    let (v0, va) = pilot.scaled()?;
    let n = standard_normal();
    let z_b = n.inverse_cdf(1.0 - power);
    let z_a = root(
        v0,
        2.0 * z_b * v0.sqrt() * va.sqrt(),
        z_b * z_b * va - n_pos * pilot.delta.powi(2),
    );
    let p = n.cdf(z_a);
    Ok(match sided {
        Sided::Two => 2.0 * p,
        Sided::One => p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::roc::tests::asah;
    use crate::analysis::roc::{auc, compare_paired, Direction, Sample};

    // Reference values: pROC 1.18, tests/testthat/test-power.roc.test.R
    // (power.roc.test on numbers and on the aSAH data), tolerance 1e-6 there.

    #[test]
    fn one_auc_matches_proc() {
        // power.roc.test(ncases = 41, ncontrols = 72, auc = 0.73) → power 0.9897453
        let p = one_auc_power(0.73, 41.0, 72.0, 0.05, Sided::Two).unwrap();
        assert!((p - 0.9897453).abs() < 1e-6, "{p}");
        // ... power = 0.95, sig.level = NULL → sig.level 0.009238584
        let a = one_auc_alpha(0.73, 41.0, 72.0, 0.95, Sided::Two).unwrap();
        assert!((a - 0.009238584).abs() < 1e-6, "{a}");
    }

    #[test]
    fn sample_size_from_the_asah_s100b_auc_matches_proc() {
        let d = asah();
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        let s100b: Vec<f64> = d.iter().map(|r| r.2).collect();
        let a = auc(
            &Sample::new(&s100b, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap()
        .auc;
        // power.roc.test(auc = r.s100b$auc, power = 0.95, kappa = 1.7) → ncases 29.29764, ncontrols 49.806
        let n = one_auc_n_pos(a, 1.7, 0.05, 0.95, Sided::Two).unwrap();
        assert!((n - 29.29764).abs() < 1e-5, "{n}");
        assert!((n * 1.7 - 49.806).abs() < 1e-3, "{}", n * 1.7);
    }

    #[test]
    fn two_paired_aucs_with_delong_pilot_match_proc() {
        let d = asah();
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        let ndka: Vec<f64> = d.iter().map(|r| r.3).collect();
        let wfns: Vec<f64> = d.iter().map(|r| r.1).collect();
        let c = compare_paired(
            &ndka,
            &wfns,
            &truth,
            Direction::HigherIsPositive,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        let pilot = PairedPilot {
            delta: c.diff,
            var1: c.var1.unwrap(),
            var2: c.var2.unwrap(),
            cov: c.cov.unwrap(),
            n_pos: 41.0,
        };
        // power.roc.test(r.ndka, r.wfns) → power 0.7131594
        let p = paired_power(&pilot, 41.0, 0.05, Sided::Two).unwrap();
        assert!((p - 0.7131594).abs() < 1e-6, "{p}");
        // ... power = 0.9 → ncases 64.77777, ncontrols 113.7561
        let n = paired_n_pos(&pilot, 0.05, 0.9, Sided::Two).unwrap();
        assert!((n - 64.77777).abs() < 1e-5, "{n}");
        assert!((n * 72.0 / 41.0 - 113.7561).abs() < 1e-4);
        // ... power = 0.9, sig.level = NULL → 0.1836639
        let a = paired_alpha(&pilot, 41.0, 0.9, Sided::Two).unwrap();
        assert!((a - 0.1836639).abs() < 1e-6, "{a}");
    }

    #[test]
    fn impossible_inputs_are_errors() {
        assert!(one_auc_n_pos(0.5, 1.0, 0.05, 0.8, Sided::Two).is_err());
        assert!(one_auc_power(0.8, 0.0, 10.0, 0.05, Sided::Two).is_err());
        assert!(one_auc_n_pos(0.8, 1.0, 1.5, 0.8, Sided::Two).is_err());
        // More cases give more power; a one-sided test needs fewer.
        let small = one_auc_power(0.7, 20.0, 20.0, 0.05, Sided::Two).unwrap();
        let large = one_auc_power(0.7, 80.0, 80.0, 0.05, Sided::Two).unwrap();
        assert!(small < large);
        assert!(
            one_auc_n_pos(0.7, 1.0, 0.05, 0.8, Sided::One).unwrap()
                < one_auc_n_pos(0.7, 1.0, 0.05, 0.8, Sided::Two).unwrap()
        );
    }
}
