//! Confidence intervals for a single proportion x/n.
//!
//! Newcombe RG. Two-sided confidence intervals for the single proportion:
//! comparison of seven methods. Stat Med 1998;17:857–872 (methods 1, 3, 4, 5).

use super::{z_two_sided, StatsError};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// x/n with the four intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProportionCi {
    pub proportion: f64,
    pub wilson: Interval,
    pub wilson_cc: Interval,
    pub clopper_pearson: Interval,
    pub wald: Interval,
}

fn check(x: u64, n: u64, level: f64) -> Result<f64, StatsError> {
    if n == 0 {
        return Err(StatsError::EmptySample);
    }
    if x > n {
        return Err(StatsError::CountAboveTotal { x, n });
    }
    z_two_sided(level)
}

/// Wilson score interval (Newcombe method 3):
/// `(2np + z² ± z √(z² + 4np(1−p))) / (2(n + z²))`.
pub fn wilson(x: u64, n: u64, level: f64) -> Result<Interval, StatsError> {
    let z = check(x, n, level)?;
    let (nf, p) = (n as f64, x as f64 / n as f64);
    let z2 = z * z;
    let centre = 2.0 * nf * p + z2;
    let half = z * (z2 + 4.0 * nf * p * (1.0 - p)).sqrt();
    let denom = 2.0 * (nf + z2);
    Ok(Interval {
        lower: ((centre - half) / denom).max(0.0),
        upper: ((centre + half) / denom).min(1.0),
    })
}

/// Wilson score interval with continuity correction (Newcombe method 4):
/// `L = (2np + z² − 1 − z √(z² − 2 − 1/n + 4p(n(1−p) + 1))) / (2(n + z²))`,
/// `U = (2np + z² + 1 + z √(z² + 2 − 1/n + 4p(n(1−p) − 1))) / (2(n + z²))`;
/// `L = 0` when p = 0 and `U = 1` when p = 1.
pub fn wilson_cc(x: u64, n: u64, level: f64) -> Result<Interval, StatsError> {
    let z = check(x, n, level)?;
    let (nf, p) = (n as f64, x as f64 / n as f64);
    let z2 = z * z;
    let denom = 2.0 * (nf + z2);
    let lower = if x == 0 {
        0.0
    } else {
        (2.0 * nf * p + z2
            - 1.0
            - z * (z2 - 2.0 - 1.0 / nf + 4.0 * p * (nf * (1.0 - p) + 1.0)).sqrt())
            / denom
    };
    let upper = if x == n {
        1.0
    } else {
        (2.0 * nf * p
            + z2
            + 1.0
            + z * (z2 + 2.0 - 1.0 / nf + 4.0 * p * (nf * (1.0 - p) - 1.0)).sqrt())
            / denom
    };
    Ok(Interval {
        lower: lower.max(0.0),
        upper: upper.min(1.0),
    })
}

/// Clopper–Pearson "exact" interval (Newcombe method 5), from beta quantiles:
/// `L = B(α/2; x, n − x + 1)`, `U = B(1 − α/2; x + 1, n − x)`.
pub fn clopper_pearson(x: u64, n: u64, level: f64) -> Result<Interval, StatsError> {
    check(x, n, level)?;
    let alpha = 1.0 - level;
    let quantile = |p: f64, a: f64, b: f64| -> f64 {
        Beta::new(a, b)
            .map(|d| d.inverse_cdf(p))
            .unwrap_or(f64::NAN)
    };
    let (xf, nf) = (x as f64, n as f64);
    let lower = if x == 0 {
        0.0
    } else {
        quantile(alpha / 2.0, xf, nf - xf + 1.0)
    };
    let upper = if x == n {
        1.0
    } else {
        quantile(1.0 - alpha / 2.0, xf + 1.0, nf - xf)
    };
    Ok(Interval { lower, upper })
}

/// The simple asymptotic (Wald) interval `p ± z √(p(1−p)/n)` (Newcombe
/// method 1), truncated to [0, 1]. Shown for comparison only: it is known to
/// cover badly for small n or extreme p.
pub fn wald(x: u64, n: u64, level: f64) -> Result<Interval, StatsError> {
    let z = check(x, n, level)?;
    let p = x as f64 / n as f64;
    let half = z * (p * (1.0 - p) / n as f64).sqrt();
    Ok(Interval {
        lower: (p - half).max(0.0),
        upper: (p + half).min(1.0),
    })
}

/// All four intervals for x/n.
pub fn proportion(x: u64, n: u64, level: f64) -> Result<ProportionCi, StatsError> {
    check(x, n, level)?;
    Ok(ProportionCi {
        proportion: x as f64 / n as f64,
        wilson: wilson(x, n, level)?,
        wilson_cc: wilson_cc(x, n, level)?,
        clopper_pearson: clopper_pearson(x, n, level)?,
        wald: wald(x, n, level)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::round_to;

    fn r4(i: Interval) -> (f64, f64) {
        (round_to(i.lower, 4), round_to(i.upper, 4))
    }

    /// Newcombe (1998), Table II: the published 95% limits, to 4 decimals.
    #[test]
    fn agrees_with_newcombe_1998_table_ii() {
        // (x, n, Wald, Wilson, Wilson with continuity correction, Clopper–Pearson)
        let cases = [
            (
                81,
                263,
                (0.2522, 0.3638),
                (0.2553, 0.3662),
                (0.2535, 0.3682),
                (0.2527, 0.3676),
            ),
            (
                15,
                148,
                (0.0527, 0.1500),
                (0.0624, 0.1605),
                (0.0598, 0.1644),
                (0.0578, 0.1617),
            ),
            (
                0,
                20,
                (0.0, 0.0),
                (0.0, 0.1611),
                (0.0, 0.2005),
                (0.0, 0.1684),
            ),
            (
                1,
                29,
                (0.0, 0.1009),
                (0.0061, 0.1718),
                (0.0018, 0.1963),
                (0.0009, 0.1776),
            ),
        ];
        for (x, n, wald_ci, wilson_ci, cc_ci, cp_ci) in cases {
            let ci = proportion(x, n, 0.95).unwrap();
            assert_eq!(r4(ci.wald), wald_ci, "Wald {x}/{n}");
            assert_eq!(r4(ci.wilson), wilson_ci, "Wilson {x}/{n}");
            assert_eq!(r4(ci.wilson_cc), cc_ci, "Wilson cc {x}/{n}");
            assert_eq!(r4(ci.clopper_pearson), cp_ci, "Clopper-Pearson {x}/{n}");
        }
    }

    #[test]
    fn degenerate_input_is_an_error() {
        assert_eq!(
            proportion(3, 2, 0.95),
            Err(StatsError::CountAboveTotal { x: 3, n: 2 })
        );
        assert_eq!(proportion(0, 0, 0.95), Err(StatsError::EmptySample));
        assert_eq!(proportion(1, 2, 1.0), Err(StatsError::ConfidenceLevel(1.0)));
        assert_eq!(proportion(1, 2, 0.0), Err(StatsError::ConfidenceLevel(0.0)));
        assert!(proportion(1, 2, f64::NAN).is_err());
    }

    #[test]
    fn all_or_nothing_reaches_the_bounds() {
        let all = proportion(20, 20, 0.95).unwrap();
        assert_eq!(all.clopper_pearson.upper, 1.0);
        assert_eq!(all.wilson_cc.upper, 1.0);
        assert_eq!(
            round_to(all.clopper_pearson.lower, 4),
            round_to(1.0 - 0.1684, 4)
        );
    }
}
