//! McNemar's test for paired proportions (say, AI against radiologist
//! calls on the same cases).
//!
//! Fagerland MW, Lydersen S, Laake P. The McNemar test for binary
//! matched-pairs data: mid-p and asymptotic are better than exact
//! conditional. BMC Med Res Methodol 2013;13:91.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, Discrete, DiscreteCDF};

/// The test on the discordant pairs `b` = n12 and `c` = n21. With no
/// discordant pairs the statistics (0/0) are `None` and the p-values follow
/// the R package contingencytables (Fagerland, Lydersen and Laake): 1 for
/// the asymptotic, continuity-corrected and exact tests, and the mid-p of
/// its tie rule, 1 − ½·P(X = b) = 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    pub b: u64,
    pub c: u64,
    /// (b − c)² / (b + c), one degree of freedom.
    pub chi2: Option<f64>,
    pub p_chi2: Option<f64>,
    /// Edwards' continuity correction, max(0, |b − c| − 1)² / (b + c).
    /// (R's `mcnemar.test` does not truncate at 0; we do, so that b = c gives
    /// χ² = 0 and p = 1.)
    pub chi2_cc: Option<f64>,
    pub p_chi2_cc: Option<f64>,
    /// Exact conditional: 2 · P(X ≤ min(b, c)), X ~ Bin(b + c, ½), at most 1.
    pub p_exact: Option<f64>,
    /// Mid-p: the exact p less P(X = b); for b = c, 1 − ½·P(X = b)
    /// (contingencytables' `McNemar_midP_test_paired_2x2`).
    pub p_midp: Option<f64>,
}

/// McNemar's test on the 2×2 table `[[n11, n12], [n21, n22]]`.
pub fn mcnemar(_n11: u64, n12: u64, n21: u64, _n22: u64) -> McNemar {
    let (b, c) = (n12, n21);
    let n = b + c;
    if n == 0 {
        return McNemar {
            b,
            c,
            chi2: None,
            p_chi2: Some(1.0),
            chi2_cc: None,
            p_chi2_cc: Some(1.0),
            p_exact: Some(1.0),
            p_midp: Some(0.5),
        };
    }
    let chi = ChiSquared::new(1.0).ok();
    let sf = |x: f64| chi.as_ref().map(|d| d.sf(x));
    let d = b.abs_diff(c) as f64;
    let chi2 = d * d / n as f64;
    let cc = (d - 1.0).max(0.0);
    let chi2_cc = cc * cc / n as f64;
    let k = b.min(c);
    let binom = Binomial::new(0.5, n).ok();
    let p_exact = binom.as_ref().map(|bi| (2.0 * bi.cdf(k)).min(1.0));
    let p_midp = binom.as_ref().map(|bi| {
        if b == c {
            1.0 - 0.5 * bi.pmf(b)
        } else {
            (2.0 * bi.cdf(k)).min(1.0) - bi.pmf(b)
        }
    });
    McNemar {
        b,
        c,
        chi2: Some(chi2),
        p_chi2: sf(chi2),
        chi2_cc: Some(chi2_cc),
        p_chi2_cc: sf(chi2_cc),
        p_exact,
        p_midp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::round_to;

    /// Fagerland et al. (2013), the airway hyper-responsiveness example
    /// (Bentur et al.): b = 1, c = 7; asymptotic p = 0.034, exact conditional
    /// p = 0.070, mid-p = 0.039 (their Table 2, three decimals).
    #[test]
    fn agrees_with_fagerland_2013() {
        let t = mcnemar(1, 1, 7, 12);
        assert_eq!(t.chi2, Some(4.5));
        assert_eq!(t.p_chi2.map(|p| round_to(p, 3)), Some(0.034));
        assert_eq!(t.p_exact.map(|p| round_to(p, 3)), Some(0.070));
        assert_eq!(t.p_midp.map(|p| round_to(p, 3)), Some(0.039));
        // Exactly 18/256 and 10/256.
        assert!((t.p_exact.unwrap() - 18.0 / 256.0).abs() < 1e-12);
        assert!((t.p_midp.unwrap() - 10.0 / 256.0).abs() < 1e-12);
        assert_eq!(t.chi2_cc.map(|x| round_to(x, 4)), Some(3.125));
    }

    /// contingencytables: "No discordant pairs … P = 1.0" for the
    /// asymptotic, continuity-corrected and exact conditional tests; its
    /// mid-p takes the tie rule 1 − ½·dbinom(0, 0, ½) = 0.5.
    #[test]
    fn no_discordant_pairs_give_p_one_as_contingencytables_does() {
        let t = mcnemar(10, 0, 0, 5);
        assert_eq!((t.chi2, t.chi2_cc), (None, None), "0/0 is no statistic");
        assert_eq!(
            (t.p_chi2, t.p_chi2_cc, t.p_exact),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        assert_eq!(t.p_midp, Some(0.5));
    }

    /// contingencytables' mid-p for b = c: 1 − ½·dbinom(4, 8, ½) = 221/256.
    #[test]
    fn equal_discordant_pairs_follow_contingencytables() {
        let t = mcnemar(0, 4, 4, 0);
        assert_eq!(t.chi2, Some(0.0));
        assert_eq!(t.p_chi2, Some(1.0));
        assert_eq!(t.p_exact, Some(1.0));
        assert!((t.p_midp.unwrap() - 221.0 / 256.0).abs() < 1e-12);
        assert_eq!(t.chi2_cc, Some(0.0));
    }
}
