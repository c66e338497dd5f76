//! Multi-reader multi-case comparison of modalities (AI against
//! radiologists, or reading with and without AI): the Obuchowski–Rockette
//! model with Hillis's degrees of freedom, random readers and random cases.
//!
//! - Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy
//!   for multiple readers and multiple tests: an ANOVA approach with
//!   dependent observations. Commun Stat Simul Comput 1995;24:285–308.
//! - Hillis SL. A comparison of denominator degrees of freedom methods for
//!   multiple observer ROC analysis. Stat Med 2007;26:596–619 (the F
//!   statistic and `ddf_H` used here).
//! - Hillis SL, Berbaum KS, Metz CE. Recent developments in the
//!   Dorfman–Berbaum–Metz procedure for multireader ROC study analysis.
//!   Acad Radiol 2008;15:647–661.
//!
//! The figure of merit is the empirical (Mann–Whitney) AUC. Its covariances
//! across reader–modality pairs come from the case jackknife (as in OR-DBM
//! MRMC and RJafroc) or from DeLong's structural components.

use super::roc::{Direction, Sample};
use super::StatsError;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

/// How the covariance of the AUCs is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CovarianceMethod {
    Jackknife,
    DeLong,
}

/// Ratings: `scores[modality][reader][case]`, every reader rating every case
/// in every modality; `truth[case]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratings {
    pub scores: Vec<Vec<Vec<f64>>>,
    pub truth: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MrmcResult {
    pub modalities: usize,
    pub readers: usize,
    pub n_pos: usize,
    pub n_neg: usize,
    /// `auc[modality][reader]`.
    pub auc: Vec<Vec<f64>>,
    /// The reader-averaged AUC of each modality.
    pub modality_auc: Vec<f64>,
    pub var: f64,
    pub cov1: f64,
    pub cov2: f64,
    pub cov3: f64,
    pub ms_t: f64,
    pub ms_tr: f64,
    pub f: f64,
    pub ndf: f64,
    pub ddf: f64,
    pub p_value: f64,
    /// For two modalities: the difference (first − second) with its CI.
    pub diff: Option<f64>,
    pub diff_ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum MrmcError {
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error("an MRMC analysis needs at least two modalities and two readers (got {modalities} and {readers})")]
    TooSmall { modalities: usize, readers: usize },
    #[error("every reader must rate every case in every modality")]
    Unbalanced,
    #[error("the reader–modality AUCs do not vary across readers; the F test is undefined")]
    NoVariation,
}

fn aucs_and_components(
    scores: &[f64],
    truth: &[bool],
) -> Result<(f64, Vec<f64>, Vec<f64>), StatsError> {
    let s = Sample::new(scores, truth, Direction::HigherIsPositive)?;
    let (v10, v01) = s.components();
    let auc = v10.iter().sum::<f64>() / v10.len() as f64;
    Ok((auc, v10, v01))
}

/// The Obuchowski–Rockette F test of equal modality AUCs.
pub fn obuchowski_rockette(
    r: &Ratings,
    method: CovarianceMethod,
    level: f64,
) -> Result<MrmcResult, MrmcError> {
    let t = r.scores.len();
    let readers = r.scores.first().map_or(0, Vec::len);
    if t < 2 || readers < 2 {
        return Err(MrmcError::TooSmall {
            modalities: t,
            readers,
        });
    }
    let c = r.truth.len();
    if r.scores
        .iter()
        .any(|m| m.len() != readers || m.iter().any(|s| s.len() != c))
    {
        return Err(MrmcError::Unbalanced);
    }
    super::z_two_sided(level)?;
    // Flatten (modality, reader) pairs.
    let pairs: Vec<(usize, usize)> = (0..t)
        .flat_map(|i| (0..readers).map(move |j| (i, j)))
        .collect();
    let mut auc = vec![vec![0.0; readers]; t];
    let k = pairs.len();
    let mut cov = vec![vec![0.0; k]; k];
    match method {
        CovarianceMethod::DeLong => {
            let mut comps = Vec::with_capacity(k);
            for &(i, j) in &pairs {
                let (a, v10, v01) = aucs_and_components(&r.scores[i][j], &r.truth)?;
                auc[i][j] = a;
                comps.push((v10, v01));
            }
            let (m, n) = (comps[0].0.len() as f64, comps[0].1.len() as f64);
            for a in 0..k {
                for b in 0..k {
                    cov[a][b] = super::roc::covariance(&comps[a].0, &comps[b].0) / m
                        + super::roc::covariance(&comps[a].1, &comps[b].1) / n;
                }
            }
        }
        CovarianceMethod::Jackknife => {
            // θ(−case) for every pair; covariance (c − 1)/c Σ (θ(k) − θ(·))(θ'(k) − θ'(·)).
            let mut jack = vec![vec![0.0; c]; k];
            for (p, &(i, j)) in pairs.iter().enumerate() {
                auc[i][j] = aucs_and_components(&r.scores[i][j], &r.truth)?.0;
                for (drop, slot) in jack[p].iter_mut().enumerate() {
                    let keep = |x: &usize| *x != drop;
                    let scores: Vec<f64> = r.scores[i][j]
                        .iter()
                        .enumerate()
                        .filter(|(x, _)| keep(x))
                        .map(|(_, s)| *s)
                        .collect();
                    let truth: Vec<bool> = r
                        .truth
                        .iter()
                        .enumerate()
                        .filter(|(x, _)| keep(x))
                        .map(|(_, s)| *s)
                        .collect();
                    *slot = aucs_and_components(&scores, &truth)?.0;
                }
            }
            let means: Vec<f64> = jack
                .iter()
                .map(|v| v.iter().sum::<f64>() / c as f64)
                .collect();
            let factor = (c as f64 - 1.0) / c as f64;
            for a in 0..k {
                for b in 0..k {
                    cov[a][b] = factor
                        * (0..c)
                            .map(|x| (jack[a][x] - means[a]) * (jack[b][x] - means[b]))
                            .sum::<f64>();
                }
            }
        }
    }
    // Average the covariance matrix by its structure.
    let (mut var, mut cov1, mut cov2, mut cov3) = (0.0, 0.0, 0.0, 0.0);
    let (mut nv, mut n1, mut n2, mut n3) = (0, 0, 0, 0);
    for (a, &(i, j)) in pairs.iter().enumerate() {
        for (b, &(i2, j2)) in pairs.iter().enumerate() {
            match (i == i2, j == j2) {
                (true, true) => {
                    var += cov[a][b];
                    nv += 1;
                }
                (false, true) => {
                    cov1 += cov[a][b];
                    n1 += 1;
                }
                (true, false) => {
                    cov2 += cov[a][b];
                    n2 += 1;
                }
                (false, false) => {
                    cov3 += cov[a][b];
                    n3 += 1;
                }
            }
        }
    }
    var /= nv as f64;
    cov1 /= n1 as f64;
    cov2 /= n2 as f64;
    cov3 /= n3 as f64;

    let (tf, rf) = (t as f64, readers as f64);
    let modality_auc: Vec<f64> = auc.iter().map(|m| m.iter().sum::<f64>() / rf).collect();
    let reader_auc: Vec<f64> = (0..readers)
        .map(|j| auc.iter().map(|m| m[j]).sum::<f64>() / tf)
        .collect();
    let grand = modality_auc.iter().sum::<f64>() / tf;
    let ms_t = rf
        * modality_auc
            .iter()
            .map(|a| (a - grand).powi(2))
            .sum::<f64>()
        / (tf - 1.0);
    let mut ss_tr = 0.0;
    for i in 0..t {
        for j in 0..readers {
            ss_tr += (auc[i][j] - modality_auc[i] - reader_auc[j] + grand).powi(2);
        }
    }
    let ms_tr = ss_tr / ((tf - 1.0) * (rf - 1.0));
    let denom = ms_tr + rf * (cov2 - cov3).max(0.0);
    if denom <= 0.0 {
        return Err(MrmcError::NoVariation);
    }
    let f = ms_t / denom;
    let ndf = tf - 1.0;
    let ddf = denom * denom / (ms_tr * ms_tr / ((tf - 1.0) * (rf - 1.0)));
    let p_value = FisherSnedecor::new(ndf, ddf)
        .map(|d| d.sf(f))
        .unwrap_or(f64::NAN);
    let (diff, diff_ci) = if t == 2 {
        let d = modality_auc[0] - modality_auc[1];
        let se = (2.0 / rf * denom).sqrt();
        let tq = StudentsT::new(0.0, 1.0, ddf)
            .map(|s| s.inverse_cdf(0.5 + level / 2.0))
            .unwrap_or(f64::NAN);
        (Some(d), Some((d - tq * se, d + tq * se)))
    } else {
        (None, None)
    };
    let n_pos = r.truth.iter().filter(|t| **t).count();
    Ok(MrmcResult {
        modalities: t,
        readers,
        n_pos,
        n_neg: c - n_pos,
        auc,
        modality_auc,
        var,
        cov1,
        cov2,
        cov3,
        ms_t,
        ms_tr,
        f,
        ndf,
        ddf,
        p_value,
        diff,
        diff_ci,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::round_to;
    use statrs::distribution::{ContinuousCDF, StudentsT};

    fn van_dyke() -> Ratings {
        let text = include_str!("../../tests/data/vandyke_mrmc.csv");
        let mut scores = vec![vec![vec![0.0; 114]; 5]; 2];
        let mut truth = vec![false; 114];
        for line in text.lines().skip(1) {
            let f: Vec<usize> = line.split(',').map(|x| x.trim().parse().unwrap()).collect();
            let (reader, modality, case, t, rating) = (f[0], f[1], f[2], f[3], f[4]);
            scores[modality - 1][reader - 1][case - 1] = rating as f64;
            truth[case - 1] = t == 1;
        }
        Ratings { scores, truth }
    }

    /// Van Dyke et al. (1993) as analysed by OR-DBM MRMC / RJafroc
    /// (`StSignificanceTesting(dataset02, FOM = "Wilcoxon", method = "OR")`):
    /// reader-averaged AUCs 0.89704 and 0.94084, F = 4.456, ddf = 15.26,
    /// p = 0.0517.
    #[test]
    fn agrees_with_the_published_van_dyke_analysis() {
        let r = obuchowski_rockette(&van_dyke(), CovarianceMethod::Jackknife, 0.95).unwrap();
        assert_eq!((r.n_pos, r.n_neg), (45, 69));
        assert_eq!(round_to(r.modality_auc[0], 5), 0.89704);
        assert_eq!(round_to(r.modality_auc[1], 5), 0.94084);
        assert_eq!(round_to(r.f, 3), 4.456);
        assert_eq!(round_to(r.ddf, 2), 15.26);
        assert_eq!(round_to(r.p_value, 4), 0.0517);
        // With p just above 0.05 the 95% interval of the difference just
        // covers 0, and (difference / SE)² is the F statistic.
        let (lo, hi) = r.diff_ci.unwrap();
        let d = r.diff.unwrap();
        assert!(lo < 0.0 && hi > 0.0 && hi < 0.001, "({lo}, {hi})");
        let t = StudentsT::new(0.0, 1.0, r.ddf).unwrap().inverse_cdf(0.975);
        let se = (hi - lo) / (2.0 * t);
        assert!(((d / se).powi(2) - r.f).abs() < 1e-9);
    }

    #[test]
    fn delong_covariances_give_the_same_aucs_and_a_close_test() {
        let j = obuchowski_rockette(&van_dyke(), CovarianceMethod::Jackknife, 0.95).unwrap();
        let d = obuchowski_rockette(&van_dyke(), CovarianceMethod::DeLong, 0.95).unwrap();
        assert_eq!(j.auc, d.auc);
        // The jackknife variance of a U-statistic is DeLong's inflated by
        // about c/(c − 1); the two must agree closely.
        assert!((j.var / d.var - 1.0).abs() < 0.05, "{} vs {}", j.var, d.var);
        assert!((j.f - d.f).abs() / j.f < 0.1);
    }

    #[test]
    fn refuses_what_it_cannot_analyse() {
        let mut r = van_dyke();
        r.scores.truncate(1);
        assert!(matches!(
            obuchowski_rockette(&r, CovarianceMethod::DeLong, 0.95),
            Err(MrmcError::TooSmall { .. })
        ));
        let mut r = van_dyke();
        r.scores[1][2].pop();
        assert_eq!(
            obuchowski_rockette(&r, CovarianceMethod::DeLong, 0.95),
            Err(MrmcError::Unbalanced)
        );
    }
}
