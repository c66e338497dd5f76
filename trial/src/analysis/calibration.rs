//! Calibration of predicted probabilities against outcomes.
//!
//! - Brier score: mean (p − y)² (Brier GW, Mon Weather Rev 1950;78:1–3).
//! - Calibration slope: β₁ of the logistic regression of y on logit(p);
//!   1 is ideal, below 1 means over-confident predictions.
//! - Calibration intercept ("calibration-in-the-large"): α of the logistic
//!   regression of y on the offset logit(p); 0 is ideal.
//!   (Van Calster B et al. Calibration: the Achilles heel of predictive
//!   analytics. BMC Med 2019;17:230; Steyerberg EW, Clinical Prediction
//!   Models, 2nd ed., 2019, ch. 15.)
//!
//! Both regressions are fitted by Newton–Raphson on the log-likelihood.

use super::StatsError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub n: usize,
    pub brier: f64,
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CalibrationError {
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error("probability {index} is {value}; probabilities must lie strictly between 0 and 1")]
    NotAProbability { index: usize, value: f64 },
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fits y ~ a + b·x (with `fit_slope`) or y ~ a + offset(x) by Newton–Raphson;
/// `None` when it does not converge (for example under complete separation).
fn logistic(x: &[f64], y: &[bool], fit_slope: bool) -> Option<(f64, f64)> {
    let (mut a, mut b) = (0.0_f64, 1.0_f64);
    for _ in 0..100 {
        // Gradient g and Hessian h of the log-likelihood.
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&xi, &yi) in x.iter().zip(y) {
            let p = sigmoid(a + b * xi);
            let r = f64::from(u8::from(yi)) - p;
            let w = p * (1.0 - p);
            ga += r;
            gb += r * xi;
            haa += w;
            hab += w * xi;
            hbb += w * xi * xi;
        }
        let (da, db) = if fit_slope {
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-300 {
                return None;
            }
            ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det)
        } else {
            if haa < 1e-300 {
                return None;
            }
            (ga / haa, 0.0)
        };
        a += da;
        b += db;
        if !(a.is_finite() && b.is_finite()) || a.abs() > 1e6 || b.abs() > 1e6 {
            return None;
        }
        if da.abs() < 1e-10 && db.abs() < 1e-10 {
            return Some((a, b));
        }
    }
    None
}

/// Brier score, calibration slope and intercept of `probabilities` against `truth`.
pub fn calibration(probabilities: &[f64], truth: &[bool]) -> Result<Calibration, CalibrationError> {
    if probabilities.len() != truth.len() {
        return Err(StatsError::LengthMismatch {
            scores: probabilities.len(),
            labels: truth.len(),
        }
        .into());
    }
    if let Some((index, &value)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(**p > 0.0 && **p < 1.0))
    {
        return Err(CalibrationError::NotAProbability { index, value });
    }
    if !truth.iter().any(|t| *t) {
        return Err(StatsError::NoPositives.into());
    }
    if truth.iter().all(|t| *t) {
        return Err(StatsError::NoNegatives.into());
    }
    let n = probabilities.len();
    let brier = probabilities
        .iter()
        .zip(truth)
        .map(|(p, &y)| (p - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / n as f64;
    let logits: Vec<f64> = probabilities.iter().map(|p| (p / (1.0 - p)).ln()).collect();
    // When a cut-off on the logit separates the classes (completely or with
    // ties at the border) the slope's maximum-likelihood estimate does not
    // exist: the likelihood keeps growing as the slope goes to infinity.
    let extreme = |class: bool| {
        let xs = logits
            .iter()
            .zip(truth)
            .filter(|(_, t)| **t == class)
            .map(|(x, _)| *x);
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        (lo, hi)
    };
    let ((pos_lo, pos_hi), (neg_lo, neg_hi)) = (extreme(true), extreme(false));
    let separated = pos_lo >= neg_hi || pos_hi <= neg_lo;
    Ok(Calibration {
        n,
        brier,
        slope: if separated {
            None
        } else {
            logistic(&logits, truth, true).map(|(_, b)| b)
        },
        intercept: logistic(&logits, truth, false).map(|(a, _)| a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    /// Outcomes drawn from the true probabilities sigmoid(x), x on a grid.
    fn simulate(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let xs: Vec<f64> = (0..n)
            .map(|i| -3.0 + 6.0 * i as f64 / (n - 1) as f64)
            .collect();
        let ys = xs
            .iter()
            .map(|&x| (rng.next_u64() as f64 / u64::MAX as f64) < sigmoid(x))
            .collect();
        (xs, ys)
    }

    #[test]
    fn the_brier_score_is_the_mean_squared_error() {
        let c = calibration(&[0.9, 0.2, 0.6, 0.4], &[true, false, false, true]).unwrap();
        assert!((c.brier - (0.01 + 0.04 + 0.36 + 0.36) / 4.0).abs() < 1e-15);
    }

    #[test]
    fn true_probabilities_are_well_calibrated() {
        let (xs, ys) = simulate(20_000, 7);
        let p: Vec<f64> = xs.iter().map(|&x| sigmoid(x)).collect();
        let c = calibration(&p, &ys).unwrap();
        assert!((c.slope.unwrap() - 1.0).abs() < 0.06, "{c:?}");
        assert!(c.intercept.unwrap().abs() < 0.05, "{c:?}");
    }

    #[test]
    fn over_confident_predictions_have_a_slope_below_one_and_shifted_ones_an_intercept() {
        let (xs, ys) = simulate(20_000, 11);
        let over: Vec<f64> = xs.iter().map(|&x| sigmoid(2.0 * x)).collect();
        let c = calibration(&over, &ys).unwrap();
        assert!((c.slope.unwrap() - 0.5).abs() < 0.04, "{c:?}");
        let high: Vec<f64> = xs.iter().map(|&x| sigmoid(x + 1.0)).collect();
        let c = calibration(&high, &ys).unwrap();
        assert!((c.intercept.unwrap() + 1.0).abs() < 0.06, "{c:?}");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            calibration(&[0.5, 1.0], &[true, false]),
            Err(CalibrationError::NotAProbability { index: 1, .. })
        ));
        assert!(matches!(
            calibration(&[0.5, f64::NAN], &[true, false]),
            Err(CalibrationError::NotAProbability { .. })
        ));
        assert!(calibration(&[0.5, 0.4], &[true, true]).is_err());
        assert!(calibration(&[0.5], &[true, false]).is_err());
        // Complete separation: the slope does not exist.
        let c = calibration(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]).unwrap();
        assert_eq!(c.slope, None);
    }
}
