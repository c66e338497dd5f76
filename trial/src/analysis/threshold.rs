//! Accuracy at a threshold: the 2×2 table and the five rates with Wilson
//! and Clopper–Pearson intervals.

use super::proportion::{clopper_pearson, wilson, Interval};
use super::roc::{Direction, Sample};
use super::StatsError;
use serde::{Deserialize, Serialize};

/// Counts of the 2×2 table of test call against truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoByTwo {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

/// A rate x/n with its intervals; all `None` when n = 0 (say, the PPV when
/// no case was called positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub x: u64,
    pub n: u64,
    pub value: Option<f64>,
    pub wilson: Option<Interval>,
    pub clopper_pearson: Option<Interval>,
}

impl Rate {
    pub fn new(x: u64, n: u64, level: f64) -> Result<Rate, StatsError> {
        super::z_two_sided(level)?;
        if n == 0 {
            return Ok(Rate {
                x,
                n,
                value: None,
                wilson: None,
                clopper_pearson: None,
            });
        }
        Ok(Rate {
            x,
            n,
            value: Some(x as f64 / n as f64),
            wilson: Some(wilson(x, n, level)?),
            clopper_pearson: Some(clopper_pearson(x, n, level)?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub table: TwoByTwo,
    pub sensitivity: Rate,
    pub specificity: Rate,
    pub ppv: Rate,
    pub npv: Rate,
    pub accuracy: Rate,
}

/// Calls a case positive when its score is ≥ `threshold`
/// ([`Direction::HigherIsPositive`]) or ≤ `threshold`
/// ([`Direction::LowerIsPositive`]), and tabulates against the truth.
pub fn at_threshold(
    scores: &[f64],
    truth: &[bool],
    threshold: f64,
    direction: Direction,
    level: f64,
) -> Result<AtThreshold, StatsError> {
    // The same checks as for the AUC, but one class is enough: a set of
    // positives only still has a sensitivity (the other figures are None).
    match Sample::new(scores, truth, direction) {
        Ok(_) | Err(StatsError::NoPositives | StatsError::NoNegatives) => {}
        Err(e) => return Err(e),
    }
    if scores.is_empty() {
        return Err(StatsError::EmptySample);
    }
    if !threshold.is_finite() {
        return Err(StatsError::NotFinite {
            index: usize::MAX,
            value: threshold,
        });
    }
    let mut t = TwoByTwo {
        tp: 0,
        fp: 0,
        fn_: 0,
        tn: 0,
    };
    for (&s, &positive) in scores.iter().zip(truth) {
        let called = match direction {
            Direction::HigherIsPositive => s >= threshold,
            Direction::LowerIsPositive => s <= threshold,
        };
        match (called, positive) {
            (true, true) => t.tp += 1,
            (true, false) => t.fp += 1,
            (false, true) => t.fn_ += 1,
            (false, false) => t.tn += 1,
        }
    }
    Ok(AtThreshold {
        threshold,
        table: t,
        sensitivity: Rate::new(t.tp, t.tp + t.fn_, level)?,
        specificity: Rate::new(t.tn, t.tn + t.fp, level)?,
        ppv: Rate::new(t.tp, t.tp + t.fp, level)?,
        npv: Rate::new(t.tn, t.tn + t.fn_, level)?,
        accuracy: Rate::new(t.tp + t.tn, t.tp + t.tn + t.fp + t.fn_, level)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabulates_at_the_threshold_inclusively() {
        let scores = [0.1, 0.5, 0.5, 0.9, 0.3, 0.7];
        let truth = [false, false, true, true, true, false];
        let r = at_threshold(&scores, &truth, 0.5, Direction::HigherIsPositive, 0.95).unwrap();
        assert_eq!(
            r.table,
            TwoByTwo {
                tp: 2,
                fp: 2,
                fn_: 1,
                tn: 1
            }
        );
        assert_eq!(r.sensitivity.value, Some(2.0 / 3.0));
        assert_eq!(r.specificity.value, Some(1.0 / 3.0));
        assert_eq!(r.accuracy.value, Some(0.5));
        let low = at_threshold(&scores, &truth, 0.3, Direction::LowerIsPositive, 0.95).unwrap();
        assert_eq!(
            low.table,
            TwoByTwo {
                tp: 1,
                fp: 1,
                fn_: 2,
                tn: 2
            }
        );
    }

    #[test]
    fn an_empty_denominator_is_undefined_not_zero() {
        let r = at_threshold(
            &[0.1, 0.2],
            &[false, true],
            0.9,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!(r.ppv.value, None);
        assert_eq!(r.ppv.wilson, None);
        assert_eq!(r.sensitivity.value, Some(0.0));
        assert!(at_threshold(
            &[0.1, 0.2],
            &[false, true],
            f64::NAN,
            Direction::HigherIsPositive,
            0.95
        )
        .is_err());
    }

    /// Regression: a set with one class only (a subgroup of the locked
    /// report can be one) was refused as a whole.
    #[test]
    fn one_class_still_has_its_own_rate() {
        let r = at_threshold(
            &[0.2, 0.7, 0.9],
            &[true, true, true],
            0.5,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!(r.sensitivity.value, Some(2.0 / 3.0));
        assert!(r.sensitivity.wilson.is_some());
        assert_eq!(r.specificity.value, None);
        assert_eq!(r.npv.value, Some(0.0));
        let r = at_threshold(
            &[0.2, 0.7],
            &[false, false],
            0.5,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!(r.specificity.value, Some(0.5));
        assert_eq!(r.sensitivity.value, None);
        assert!(at_threshold(&[], &[], 0.5, Direction::HigherIsPositive, 0.95).is_err());
    }
}
