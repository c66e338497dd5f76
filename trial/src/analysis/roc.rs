//! ROC analysis of one or two scores against a binary truth.
//!
//! - AUC as the Mann–Whitney statistic: the probability that a positive case
//!   scores above a negative one, ties counting one half.
//! - DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or
//!   more correlated receiver operating characteristic curves: a
//!   nonparametric approach. Biometrics 1988;44:837–845 — the variance and
//!   covariance of AUCs, computed by the O(n log n) algorithm of
//!   Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the
//!   areas under correlated receiver operating characteristic curves.
//!   IEEE Signal Process Lett 2014;21:1389–1393 (midranks instead of the
//!   quadratic placement sums).
//! - Hanley JA, McNeil BJ. The meaning and use of the area under a receiver
//!   operating characteristic (ROC) curve. Radiology 1982;143:29–36 — the
//!   standard error from the AUC and the class sizes alone.
//! - The logit-transformed interval: `logit(AUC) ± z·SE/(AUC(1−AUC))`, back
//!   transformed (Pepe MS, The Statistical Evaluation of Medical Tests, 2003,
//!   §5.2.4), which stays inside (0, 1).

use super::{standard_normal, z_two_sided, StatsError};
use serde::{Deserialize, Serialize};
use statrs::distribution::ContinuousCDF;
use std::cmp::Ordering;

/// Which end of the score means "positive". Never guessed from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Direction {
    /// A case is called positive when its score is at or above the threshold.
    #[default]
    HigherIsPositive,
    /// A case is called positive when its score is at or below the threshold.
    LowerIsPositive,
}

/// Scores split by the truth, oriented so that higher means positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    positives: Vec<f64>,
    negatives: Vec<f64>,
    direction: Direction,
}

impl Sample {
    /// Checks and splits `scores` by `truth` (`true` = positive).
    pub fn new(scores: &[f64], truth: &[bool], direction: Direction) -> Result<Sample, StatsError> {
        if scores.len() != truth.len() {
            return Err(StatsError::LengthMismatch {
                scores: scores.len(),
                labels: truth.len(),
            });
        }
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(StatsError::NotFinite { index, value });
        }
        let sign = match direction {
            Direction::HigherIsPositive => 1.0,
            Direction::LowerIsPositive => -1.0,
        };
        let mut positives = Vec::new();
        let mut negatives = Vec::new();
        for (&s, &t) in scores.iter().zip(truth) {
            if t {
                positives.push(sign * s);
            } else {
                negatives.push(sign * s);
            }
        }
        if positives.is_empty() {
            return Err(StatsError::NoPositives);
        }
        if negatives.is_empty() {
            return Err(StatsError::NoNegatives);
        }
        Ok(Sample {
            positives,
            negatives,
            direction,
        })
    }

    /// The oriented scores of the positives and the negatives.
    pub fn classes(&self) -> (&[f64], &[f64]) {
        (&self.positives, &self.negatives)
    }

    pub fn n_pos(&self) -> usize {
        self.positives.len()
    }

    pub fn n_neg(&self) -> usize {
        self.negatives.len()
    }

    /// The structural components of Sun & Xu: `v10[i]` is the share of
    /// negatives that positive `i` outscores (ties ½), `v01[j]` the share of
    /// positives that outscore negative `j`.
    pub fn components(&self) -> (Vec<f64>, Vec<f64>) {
        let (m, n) = (self.positives.len(), self.negatives.len());
        let combined: Vec<f64> = self
            .positives
            .iter()
            .chain(&self.negatives)
            .copied()
            .collect();
        let tz = midranks(&combined);
        let tx = midranks(&self.positives);
        let ty = midranks(&self.negatives);
        let v10 = (0..m).map(|i| (tz[i] - tx[i]) / n as f64).collect();
        let v01 = (0..n)
            .map(|j| 1.0 - (tz[m + j] - ty[j]) / m as f64)
            .collect();
        (v10, v01)
    }
}

/// The AUC alone (the Mann–Whitney statistic from midranks of the pooled
/// scores), without the variance: for resampling loops.
pub fn auc_value(sample: &Sample) -> f64 {
    let (pos, neg) = sample.classes();
    let mut pooled = Vec::with_capacity(pos.len() + neg.len());
    pooled.extend_from_slice(pos);
    pooled.extend_from_slice(neg);
    let ranks = midranks(&pooled);
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let rank_sum: f64 = ranks[..pos.len()].iter().sum();
    (rank_sum - m * (m + 1.0) / 2.0) / (m * n)
}

/// Midranks (1-based, ties get the mean of their ranks) in O(n log n).
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].partial_cmp(&values[b]).unwrap_or(Ordering::Equal));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share the mean rank (i + 1 + j + 1) / 2.
        let rank = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample covariance with the n − 1 denominator (0 when n = 1).
pub(crate) fn covariance(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 {
        return 0.0;
    }
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (a.len() - 1) as f64
}

/// The AUC of one score with its DeLong variance and intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucEstimate {
    pub n_pos: usize,
    pub n_neg: usize,
    pub auc: f64,
    /// The Mann–Whitney U of the positives (AUC × n_pos × n_neg).
    pub mann_whitney_u: f64,
    /// `None` with a single case in a class: DeLong's variance needs the
    /// spread of each class's placement values, which one case does not
    /// have (pROC returns NA there too).
    pub var_delong: Option<f64>,
    pub se_delong: Option<f64>,
    /// Wald interval on the AUC scale, clipped to [0, 1].
    pub ci_delong: Option<(f64, f64)>,
    /// Logit-transformed interval; `None` when the AUC is 0 or 1, or its
    /// standard error is 0 or undefined (the logit is then undefined).
    pub ci_logit: Option<(f64, f64)>,
    pub se_hanley_mcneil: f64,
}

/// DeLong's variance of an AUC from its structural components, or `None`
/// with a single case in a class.
fn delong_variance(v10: &[f64], v01: &[f64]) -> Option<f64> {
    (v10.len() >= 2 && v01.len() >= 2)
        .then(|| covariance(v10, v10) / v10.len() as f64 + covariance(v01, v01) / v01.len() as f64)
}

/// AUC, DeLong variance, Wald and logit intervals, Hanley–McNeil SE.
pub fn auc(sample: &Sample, level: f64) -> Result<AucEstimate, StatsError> {
    let z = z_two_sided(level)?;
    let (m, n) = (sample.n_pos() as f64, sample.n_neg() as f64);
    let (v10, v01) = sample.components();
    let a = mean(&v10);
    let var = delong_variance(&v10, &v01);
    let se = var.map(f64::sqrt);
    let ci_delong = se.map(|se| ((a - z * se).max(0.0), (a + z * se).min(1.0)));
    let ci_logit = match se {
        Some(se) if a > 0.0 && a < 1.0 && se > 0.0 => {
            let logit = (a / (1.0 - a)).ln();
            let half = z * se / (a * (1.0 - a));
            let inv = |x: f64| 1.0 / (1.0 + (-x).exp());
            Some((inv(logit - half), inv(logit + half)))
        }
        _ => None,
    };
    // Hanley & McNeil (1982), equation 2.
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let se_hm = ((a * (1.0 - a) + (m - 1.0) * (q1 - a * a) + (n - 1.0) * (q2 - a * a)) / (m * n))
        .max(0.0)
        .sqrt();
    Ok(AucEstimate {
        n_pos: sample.n_pos(),
        n_neg: sample.n_neg(),
        auc: a,
        mann_whitney_u: a * m * n,
        var_delong: var,
        se_delong: se,
        ci_delong,
        ci_logit,
        se_hanley_mcneil: se_hm,
    })
}

/// One point of the empirical ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// The threshold on the original score scale.
    pub threshold: f64,
    pub sensitivity: f64,
    pub specificity: f64,
}

/// The empirical ROC curve: one point per distinct score, from the strictest
/// threshold to the most lenient, plus the all-negative start (threshold +∞,
/// or −∞ for lower-is-positive).
pub fn curve(sample: &Sample) -> Vec<RocPoint> {
    let mut thresholds: Vec<f64> = sample
        .positives
        .iter()
        .chain(&sample.negatives)
        .copied()
        .collect();
    thresholds.sort_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
    thresholds.dedup();
    let mut pos = sample.positives.clone();
    let mut neg = sample.negatives.clone();
    pos.sort_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
    neg.sort_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let sign = match sample.direction {
        Direction::HigherIsPositive => 1.0,
        Direction::LowerIsPositive => -1.0,
    };
    let mut points = vec![RocPoint {
        threshold: sign * f64::INFINITY,
        sensitivity: 0.0,
        specificity: 1.0,
    }];
    let (mut tp, mut fp) = (0_usize, 0_usize);
    for t in thresholds {
        while tp < pos.len() && pos[tp] >= t {
            tp += 1;
        }
        while fp < neg.len() && neg[fp] >= t {
            fp += 1;
        }
        points.push(RocPoint {
            threshold: sign * t,
            sensitivity: tp as f64 / m,
            specificity: 1.0 - fp as f64 / n,
        });
    }
    points
}

/// The threshold that maximises Youden's J = sensitivity + specificity − 1,
/// among the observed scores (the first, i.e. strictest, on ties): a case is
/// positive at or beyond it.
pub fn youden(sample: &Sample) -> RocPoint {
    let points = curve(sample);
    let mut best = points[0];
    for p in points.into_iter().skip(1) {
        if p.sensitivity + p.specificity > best.sensitivity + best.specificity {
            best = p;
        }
    }
    best
}

/// The same best cut-off as pROC's `coords(roc, "best")` reports it: the
/// midpoint between the observed score at which the best point is reached
/// and the next observed score on the negative side (pROC's thresholds lie
/// between adjacent observed scores). `None` when the best point calls every
/// case positive or every case negative (pROC's −Inf / +Inf).
pub fn youden_midpoint(sample: &Sample) -> Option<f64> {
    let best = youden(sample);
    let sign = match sample.direction {
        Direction::HigherIsPositive => 1.0,
        Direction::LowerIsPositive => -1.0,
    };
    let cut = sign * best.threshold;
    if !cut.is_finite() {
        return None;
    }
    // The next distinct oriented score below the cut-off.
    let below = sample
        .positives
        .iter()
        .chain(&sample.negatives)
        .copied()
        .filter(|s| *s < cut)
        .fold(f64::NEG_INFINITY, f64::max);
    below.is_finite().then(|| sign * (cut + below) / 2.0)
}

/// Two AUCs compared by DeLong's test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucComparison {
    pub auc1: f64,
    pub auc2: f64,
    pub diff: f64,
    pub var1: Option<f64>,
    pub var2: Option<f64>,
    /// 0 for unpaired samples.
    pub cov: Option<f64>,
    pub var_diff: Option<f64>,
    pub se_diff: Option<f64>,
    /// `None` when a variance is 0 (the correlation is undefined).
    pub corr: Option<f64>,
    /// 0 when the two curves are identical (no difference and no variance
    /// of the difference: pROC's `roc.test` reports Z = 0, p = 1); `None`
    /// when the variance is undefined, or 0 under a non-zero difference.
    pub z: Option<f64>,
    pub p_two_sided: Option<f64>,
    /// H1: AUC1 > AUC2.
    pub p_greater: Option<f64>,
    /// H1: AUC1 < AUC2.
    pub p_less: Option<f64>,
    pub diff_ci: Option<(f64, f64)>,
}

fn compare_from(
    auc1: f64,
    auc2: f64,
    var1: Option<f64>,
    var2: Option<f64>,
    cov: Option<f64>,
    level: f64,
) -> Result<AucComparison, StatsError> {
    let zq = z_two_sided(level)?;
    let diff = auc1 - auc2;
    let var_diff = match (var1, var2, cov) {
        (Some(a), Some(b), Some(c)) => Some((a + b - 2.0 * c).max(0.0)),
        _ => None,
    };
    let se = var_diff.map(f64::sqrt);
    let phi = standard_normal();
    let z = match se {
        Some(se) if se > 0.0 => Some(diff / se),
        // Identical curves: nothing differs and nothing varies.
        Some(_) if diff == 0.0 => Some(0.0),
        _ => None,
    };
    Ok(AucComparison {
        auc1,
        auc2,
        diff,
        var1,
        var2,
        cov,
        var_diff,
        se_diff: se,
        corr: match (var1, var2, cov) {
            (Some(a), Some(b), Some(c)) if a > 0.0 && b > 0.0 => Some(c / (a * b).sqrt()),
            _ => None,
        },
        z,
        p_two_sided: z.map(|z| 2.0 * (1.0 - phi.cdf(z.abs()))),
        p_greater: z.map(|z| 1.0 - phi.cdf(z)),
        p_less: z.map(|z| phi.cdf(z)),
        diff_ci: se.map(|se| (diff - zq * se, diff + zq * se)),
    })
}

/// Paired comparison: two scores on the same cases (DeLong 1988, with the
/// covariance of the two AUCs).
pub fn compare_paired(
    scores1: &[f64],
    scores2: &[f64],
    truth: &[bool],
    direction1: Direction,
    direction2: Direction,
    level: f64,
) -> Result<AucComparison, StatsError> {
    if scores1.len() != scores2.len() {
        return Err(StatsError::NotPaired);
    }
    let s1 = Sample::new(scores1, truth, direction1)?;
    let s2 = Sample::new(scores2, truth, direction2)?;
    let (m, n) = (s1.n_pos() as f64, s1.n_neg() as f64);
    let (v10a, v01a) = s1.components();
    let (v10b, v01b) = s2.components();
    let var1 = delong_variance(&v10a, &v01a);
    let var2 = delong_variance(&v10b, &v01b);
    let cov = var1
        .is_some()
        .then(|| covariance(&v10a, &v10b) / m + covariance(&v01a, &v01b) / n);
    compare_from(mean(&v10a), mean(&v10b), var1, var2, cov, level)
}

/// Unpaired comparison: two independent samples (covariance 0).
pub fn compare_unpaired(s1: &Sample, s2: &Sample, level: f64) -> Result<AucComparison, StatsError> {
    let a = auc(s1, level)?;
    let b = auc(s2, level)?;
    compare_from(a.auc, b.auc, a.var_delong, b.var_delong, Some(0.0), level)
}

/// The quadratic DeLong computation, straight from the 1988 paper; kept for
/// the tests that check the fast algorithm against it.
#[cfg(test)]
fn delong_quadratic(sample: &Sample) -> (f64, f64) {
    let psi = |x: f64, y: f64| {
        if x > y {
            1.0
        } else if x == y {
            0.5
        } else {
            0.0
        }
    };
    let (m, n) = (sample.n_pos() as f64, sample.n_neg() as f64);
    let v10: Vec<f64> = sample
        .positives
        .iter()
        .map(|&x| sample.negatives.iter().map(|&y| psi(x, y)).sum::<f64>() / n)
        .collect();
    let v01: Vec<f64> = sample
        .negatives
        .iter()
        .map(|&y| sample.positives.iter().map(|&x| psi(x, y)).sum::<f64>() / m)
        .collect();
    (
        mean(&v10),
        covariance(&v10, &v10) / m + covariance(&v01, &v01) / n,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::round_to;

    #[test]
    fn the_auc_alone_equals_the_auc_with_its_variance() {
        let d = asah();
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        for col in [1, 2, 3] {
            let scores: Vec<f64> = d.iter().map(|r| [r.1, r.2, r.3][col - 1]).collect();
            let s = Sample::new(&scores, &truth, Direction::HigherIsPositive).unwrap();
            assert!((auc_value(&s) - auc(&s, 0.95).unwrap().auc).abs() < 1e-12);
        }
    }

    pub(crate) fn asah() -> Vec<(bool, f64, f64, f64)> {
        // outcome = Poor, wfns, s100b, ndka from the pROC data set aSAH.
        let text = include_str!("../../tests/data/asah.csv");
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[2] == "Poor",
                    f[6].parse().unwrap(),
                    f[7].parse().unwrap(),
                    f[8].parse().unwrap(),
                )
            })
            .collect()
    }

    /// pROC (Robin et al., BMC Bioinformatics 2011;12:77), documentation of
    /// `roc`, `ci.auc` and `roc.test` on aSAH: AUC(s100b) = 0.7314 with
    /// DeLong 95% CI 0.6301–0.8326; AUC(wfns) = 0.8237; AUC(ndka) = 0.612;
    /// roc.test(wfns, s100b): Z = 2.209, p = 0.02718.
    #[test]
    fn agrees_with_proc_on_asah() {
        let d = asah();
        assert_eq!(d.len(), 113);
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        let wfns: Vec<f64> = d.iter().map(|r| r.1).collect();
        let s100b: Vec<f64> = d.iter().map(|r| r.2).collect();
        let ndka: Vec<f64> = d.iter().map(|r| r.3).collect();
        let s = auc(
            &Sample::new(&s100b, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!((s.n_pos, s.n_neg), (41, 72));
        assert_eq!(round_to(s.auc, 4), 0.7314);
        let ci = s.ci_delong.unwrap();
        assert_eq!((round_to(ci.0, 4), round_to(ci.1, 4)), (0.6301, 0.8326));
        let w = auc(
            &Sample::new(&wfns, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!(round_to(w.auc, 4), 0.8237);
        let n = auc(
            &Sample::new(&ndka, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!(round_to(n.auc, 3), 0.612);
        let c = compare_paired(
            &wfns,
            &s100b,
            &truth,
            Direction::HigherIsPositive,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!(round_to(c.z.unwrap(), 3), 2.209);
        assert_eq!(round_to(c.p_two_sided.unwrap(), 5), 0.02718);
        assert_eq!(round_to(c.auc1, 7), 0.8236789);
        assert_eq!(round_to(c.auc2, 7), 0.7313686);
    }

    #[test]
    fn the_fast_algorithm_equals_the_quadratic_one_with_ties() {
        let d = asah();
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        for col in [1, 2, 3] {
            let scores: Vec<f64> = d.iter().map(|r| [r.1, r.2, r.3][col - 1]).collect();
            let s = Sample::new(&scores, &truth, Direction::HigherIsPositive).unwrap();
            let fast = auc(&s, 0.95).unwrap();
            let (a, v) = delong_quadratic(&s);
            assert!((fast.auc - a).abs() < 1e-12);
            let var = fast.var_delong.unwrap();
            assert!((var - v).abs() < 1e-12, "{var} vs {v}");
        }
    }

    /// Hanley & McNeil (1982), Tables 1 and 2: 109 CT images rated 1–5 by a
    /// radiologist; 58 normal, 51 abnormal; AUC 0.893, SE 0.032.
    #[test]
    fn agrees_with_hanley_and_mcneil_1982() {
        let counts_normal = [33, 6, 6, 11, 2];
        let counts_abnormal = [3, 2, 2, 11, 33];
        let mut scores = Vec::new();
        let mut truth = Vec::new();
        for (rating, (&normal, &abnormal)) in counts_normal.iter().zip(&counts_abnormal).enumerate()
        {
            scores.extend(std::iter::repeat_n(rating as f64 + 1.0, normal + abnormal));
            truth.extend(std::iter::repeat_n(false, normal));
            truth.extend(std::iter::repeat_n(true, abnormal));
        }
        let a = auc(
            &Sample::new(&scores, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!((a.n_pos, a.n_neg), (51, 58));
        assert_eq!(round_to(a.auc, 3), 0.893);
        assert_eq!(round_to(a.se_hanley_mcneil, 3), 0.032);
    }

    #[test]
    fn lower_is_positive_mirrors_the_scores_and_never_flips_silently() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let truth = [false, false, true, true];
        let up = auc(
            &Sample::new(&scores, &truth, Direction::HigherIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        let down = auc(
            &Sample::new(&scores, &truth, Direction::LowerIsPositive).unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!(up.auc, 0.75);
        assert_eq!(down.auc, 0.25, "an AUC below 0.5 is reported as it is");
        let y = youden(&Sample::new(&scores, &truth, Direction::LowerIsPositive).unwrap());
        assert!(y.threshold <= 0.4);
    }

    #[test]
    fn perfect_separation_has_no_logit_interval() {
        let s = Sample::new(
            &[1.0, 2.0, 3.0, 4.0],
            &[false, false, true, true],
            Direction::HigherIsPositive,
        )
        .unwrap();
        let a = auc(&s, 0.95).unwrap();
        assert_eq!(a.auc, 1.0);
        assert_eq!(a.ci_logit, None);
        assert_eq!(a.ci_delong.map(|c| c.1), Some(1.0));
        let y = youden(&s);
        assert_eq!((y.threshold, y.sensitivity, y.specificity), (3.0, 1.0, 1.0));
    }

    /// pROC's test suite: `roc.test(r.wfns, r.wfns)` gives Z = 0, p = 1.
    #[test]
    fn identical_curves_give_z_zero_and_p_one_as_proc_does() {
        let d = asah();
        let truth: Vec<bool> = d.iter().map(|r| r.0).collect();
        let wfns: Vec<f64> = d.iter().map(|r| r.1).collect();
        let c = compare_paired(
            &wfns,
            &wfns,
            &truth,
            Direction::HigherIsPositive,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!((c.diff, c.se_diff), (0.0, Some(0.0)));
        assert_eq!(c.z, Some(0.0));
        assert_eq!(c.p_two_sided, Some(1.0));
    }

    /// pROC returns NA for DeLong's variance with a single case in a class.
    #[test]
    fn a_single_case_in_a_class_has_no_delong_variance() {
        let s = Sample::new(
            &[0.1, 0.4, 0.35, 0.8],
            &[false, false, false, true],
            Direction::HigherIsPositive,
        )
        .unwrap();
        let a = auc(&s, 0.95).unwrap();
        assert_eq!(a.auc, 1.0);
        assert_eq!((a.var_delong, a.se_delong, a.ci_delong), (None, None, None));
        assert_eq!(a.ci_logit, None);
        let c = compare_paired(
            &[0.1, 0.4, 0.35, 0.8],
            &[0.2, 0.1, 0.3, 0.9],
            &[false, false, false, true],
            Direction::HigherIsPositive,
            Direction::HigherIsPositive,
            0.95,
        )
        .unwrap();
        assert_eq!(
            (c.var1, c.z, c.p_two_sided, c.diff_ci),
            (None, None, None, None)
        );
    }

    /// pROC's `coords(roc, "best")` threshold lies midway between adjacent
    /// observed scores; the engine's cut-off is the observed score itself.
    #[test]
    fn the_youden_midpoint_lies_between_adjacent_scores() {
        let s = Sample::new(
            &[1.0, 2.0, 3.0, 4.0],
            &[false, false, true, true],
            Direction::HigherIsPositive,
        )
        .unwrap();
        assert_eq!(youden(&s).threshold, 3.0);
        assert_eq!(youden_midpoint(&s), Some(2.5));
        let down = Sample::new(
            &[1.0, 2.0, 3.0, 4.0],
            &[true, true, false, false],
            Direction::LowerIsPositive,
        )
        .unwrap();
        assert_eq!(youden(&down).threshold, 2.0);
        assert_eq!(youden_midpoint(&down), Some(2.5));
        // No cut-off beats calling every case negative: no finite midpoint (pROC: Inf).
        let all = Sample::new(&[1.0, 1.0], &[true, false], Direction::HigherIsPositive).unwrap();
        assert_eq!(youden_midpoint(&all), None);
    }

    #[test]
    fn degenerate_input_is_an_error() {
        use StatsError::*;
        assert_eq!(
            Sample::new(&[1.0], &[true, false], Direction::HigherIsPositive),
            Err(LengthMismatch {
                scores: 1,
                labels: 2
            })
        );
        assert_eq!(
            Sample::new(&[1.0, 2.0], &[true, true], Direction::HigherIsPositive),
            Err(NoNegatives)
        );
        assert_eq!(
            Sample::new(&[1.0, 2.0], &[false, false], Direction::HigherIsPositive),
            Err(NoPositives)
        );
        assert!(matches!(
            Sample::new(
                &[1.0, f64::NAN],
                &[true, false],
                Direction::HigherIsPositive
            ),
            Err(NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            Sample::new(
                &[f64::INFINITY, 1.0],
                &[true, false],
                Direction::HigherIsPositive
            ),
            Err(NotFinite { index: 0, .. })
        ));
        let s = Sample::new(&[1.0, 2.0], &[false, true], Direction::HigherIsPositive).unwrap();
        assert_eq!(auc(&s, 1.5), Err(ConfidenceLevel(1.5)));
    }

    #[test]
    fn the_curve_runs_from_all_negative_to_all_positive() {
        let s = Sample::new(
            &[0.2, 0.6, 0.6, 0.9],
            &[false, true, false, true],
            Direction::HigherIsPositive,
        )
        .unwrap();
        let c = curve(&s);
        assert_eq!(
            c.first().map(|p| (p.sensitivity, p.specificity)),
            Some((0.0, 1.0))
        );
        assert_eq!(
            c.last().map(|p| (p.sensitivity, p.specificity)),
            Some((1.0, 0.0))
        );
        assert_eq!(c.len(), 4, "one point per distinct score plus the start");
    }
}
