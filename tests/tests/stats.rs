//! `osteo-edc stats …` through the real binary, checked against published
//! values (see the sources in `trial::analysis`), and its refusals.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::binary;
use serde_json::Value;

fn asah() -> String {
    format!(
        "{}/../trial/tests/data/asah.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn stats(args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(binary())
        .arg("stats")
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn r(v: &Value, digits: i32) -> f64 {
    let f = 10_f64.powi(digits);
    (v.as_f64().unwrap() * f).round() / f
}

/// pROC's documentation on aSAH: AUC(s100b) 0.7314, DeLong 95% CI 0.6301–0.8326.
#[test]
fn roc_on_asah_matches_proc() {
    let csv = asah();
    let (code, j, err) = stats(&[
        "roc",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "s100b",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (j["n_pos"].as_u64(), j["n_neg"].as_u64()),
        (Some(41), Some(72))
    );
    assert_eq!(r(&j["auc"], 4), 0.7314);
    assert_eq!(r(&j["auc_ci_delong_lower"], 4), 0.6301);
    assert_eq!(r(&j["auc_ci_delong_upper"], 4), 0.8326);
    let u = j["mann_whitney_u"].as_f64().unwrap();
    assert!(
        (u - j["auc"].as_f64().unwrap() * 41.0 * 72.0).abs() < 1e-6,
        "{u}"
    );
    assert!(j["auc_ci_logit_lower"].as_f64().unwrap() > 0.6);
    for key in [
        "auc_var_delong",
        "auc_se_delong",
        "auc_se_hanley_mcneil",
        "youden_threshold",
        "youden_sensitivity",
        "youden_specificity",
        "youden_index",
    ] {
        assert!(j[key].is_number(), "{key}");
    }
}

#[test]
fn roc_at_a_threshold_gives_the_table_and_rates() {
    let csv = asah();
    let (code, j, err) = stats(&[
        "roc",
        "--csv",
        &csv,
        "--truth",
        "poor",
        "--positive",
        "1",
        "--score",
        "wfns",
        "--threshold",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    let (tp, fp, fn_, tn) = (
        j["tp"].as_u64().unwrap(),
        j["fp"].as_u64().unwrap(),
        j["fn"].as_u64().unwrap(),
        j["tn"].as_u64().unwrap(),
    );
    assert_eq!(tp + fn_, 41);
    assert_eq!(fp + tn, 72);
    assert_eq!(j["sensitivity"].as_f64().unwrap(), tp as f64 / 41.0);
    for rate in ["sensitivity", "specificity", "ppv", "npv", "accuracy"] {
        for ci in [
            "_ci_wilson_lower",
            "_ci_wilson_upper",
            "_ci_clopper_pearson_lower",
            "_ci_clopper_pearson_upper",
        ] {
            assert!(j[format!("{rate}{ci}")].is_number(), "{rate}{ci}");
        }
        assert!(j[format!("{rate}_ci_wilson_lower")].as_f64() <= j[rate].as_f64());
    }
}

/// pROC's roc.test(wfns, s100b) on aSAH: Z = 2.209, p-value = 0.02718.
#[test]
fn paired_comparison_matches_proc() {
    let csv = asah();
    let (code, j, err) = stats(&[
        "compare",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "wfns",
        "--score",
        "s100b",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r(&j["auc1"], 7), 0.8236789);
    assert_eq!(r(&j["auc2"], 7), 0.7313686);
    assert_eq!(r(&j["delong_z"], 3), 2.209);
    assert_eq!(r(&j["delong_p_two_sided"], 5), 0.02718);
    assert!(j["delong_diff_ci_lower"].as_f64().unwrap() > 0.0);
    let (code, u, _) = stats(&[
        "compare",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "wfns",
        "--score",
        "s100b",
        "--unpaired",
    ]);
    assert_eq!(code, 0);
    assert_eq!(u["delong_cov"].as_f64(), Some(0.0));
    assert!(u["delong_p_two_sided"].as_f64().unwrap() > j["delong_p_two_sided"].as_f64().unwrap());
}

/// Newcombe (1998) Table II, 81/263.
#[test]
fn proportion_matches_newcombe() {
    let (code, j, err) = stats(&["proportion", "--x", "81", "--n", "263"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (r(&j["ci_wilson_lower"], 4), r(&j["ci_wilson_upper"], 4)),
        (0.2553, 0.3662)
    );
    assert_eq!(
        (
            r(&j["ci_wilson_cc_lower"], 4),
            r(&j["ci_wilson_cc_upper"], 4)
        ),
        (0.2535, 0.3682)
    );
    assert_eq!(
        (
            r(&j["ci_clopper_pearson_lower"], 4),
            r(&j["ci_clopper_pearson_upper"], 4)
        ),
        (0.2527, 0.3676)
    );
    assert_eq!(
        (r(&j["ci_wald_lower"], 4), r(&j["ci_wald_upper"], 4)),
        (0.2522, 0.3638)
    );
}

/// Fagerland et al. (2013): b = 1, c = 7.
#[test]
fn mcnemar_matches_fagerland() {
    let (code, j, err) = stats(&["mcnemar", "--table", "1,1,7,12"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r(&j["p_chi2"], 3), 0.034);
    assert_eq!(r(&j["p_exact"], 3), 0.070);
    assert_eq!(r(&j["p_midp"], 3), 0.039);
    // No discordant pairs: p = 1 for the exact, χ² and corrected tests, as
    // the R package contingencytables gives; the statistic itself (0/0) is null.
    let (code, j, _) = stats(&["mcnemar", "--table", "5,0,0,5"]);
    assert_eq!(code, 0);
    assert_eq!(
        (
            j["p_exact"].as_f64(),
            j["p_chi2"].as_f64(),
            j["p_chi2_cc"].as_f64()
        ),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert!(j["chi2"].is_null(), "undefined is null, not a number");
}

/// pROC's `roc.test` on two identical curves: Z = 0, p = 1.
#[test]
fn identical_curves_compare_with_z_zero_and_p_one() {
    let csv = asah();
    let (code, j, err) = stats(&[
        "compare",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "wfns",
        "--score",
        "wfns",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (j["delong_z"].as_f64(), j["delong_p_two_sided"].as_f64()),
        (Some(0.0), Some(1.0)),
        "{j}"
    );
}

/// A set of one class (a subgroup can be one): the sensitivity is reported,
/// what needs both classes is null; the whole computation is not refused.
#[test]
fn one_class_reports_its_own_rate_and_nulls_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("malignant.csv");
    std::fs::write(&path, "truth,score\n1,0.9\n1,0.2\n1,0.7\n").unwrap();
    let (code, j, err) = stats(&[
        "roc",
        "--csv",
        path.to_str().unwrap(),
        "--truth",
        "truth",
        "--positive",
        "1",
        "--score",
        "score",
        "--threshold",
        "0.5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (j["n_pos"].as_i64(), j["n_neg"].as_i64()),
        (Some(3), Some(0))
    );
    assert!(
        j["auc"].is_null() && j["auc_ci_delong_lower"].is_null(),
        "{j}"
    );
    assert_eq!(r(&j["sensitivity"], 4), 0.6667);
    assert!(j["specificity"].is_null(), "{j}");
}

/// With one case in a class DeLong's variance is undefined (pROC: NA).
#[test]
fn a_single_case_in_a_class_has_no_delong_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.csv");
    std::fs::write(&path, "truth,score\n1,0.9\n0,0.2\n0,0.7\n0,0.4\n").unwrap();
    let (code, j, err) = stats(&[
        "roc",
        "--csv",
        path.to_str().unwrap(),
        "--truth",
        "truth",
        "--positive",
        "1",
        "--score",
        "score",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["auc"].as_f64(), Some(1.0));
    assert!(
        j["auc_var_delong"].is_null() && j["auc_ci_delong_lower"].is_null(),
        "{j}"
    );
    // pROC's "best" threshold, midway between adjacent scores, beside the cut-off.
    assert_eq!(j["youden_threshold"].as_f64(), Some(0.9));
    assert_eq!(j["youden_threshold_midpoint"].as_f64(), Some(0.8));
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let csv = asah();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "outcome",
                "--positive",
                "Dead",
                "--score",
                "s100b",
            ],
            "does not occur",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "wfns",
                "--positive",
                "1",
                "--score",
                "s100b",
            ],
            "exactly two",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "outcome",
                "--positive",
                "Poor",
                "--score",
                "nothing",
            ],
            "no column",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "outcome",
                "--positive",
                "Poor",
                "--score",
                "gender",
            ],
            "not a number",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "outcome",
                "--positive",
                "Poor",
                "--score",
                "s100b",
                "--conf-level",
                "1.5",
            ],
            "between 0 and 1",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "wfns",
                "--positive",
                "5",
                "--score",
                "s100b",
            ],
            "exactly two",
        ),
        (
            vec![
                "roc",
                "--csv",
                &csv,
                "--truth",
                "outcome",
                "--positive",
                "Poor",
                "--score",
                "s100b",
                "--where",
                "gender",
            ],
            "COL=VALUE",
        ),
        (
            vec![
                "roc",
                "--csv",
                "/no/such/file.csv",
                "--truth",
                "outcome",
                "--positive",
                "Poor",
                "--score",
                "s100b",
            ],
            "cannot read",
        ),
        (vec!["proportion", "--x", "5", "--n", "3"], "larger than n"),
        (vec!["proportion", "--x", "0", "--n", "0"], "at least 1"),
        (vec!["mcnemar", "--table", "1,2,3"], "four counts"),
        (vec!["mcnemar", "--table", "1,2,x,4"], "whole numbers"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = stats(&args);
        assert_eq!(code, 2, "{args:?} -> {out} {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn missing_values_are_refused_or_dropped_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("na.csv");
    std::fs::write(
        &path,
        "truth,score\n1,0.9\n0,0.2\n1,NA\n0,0.4\n1,0.7\n,0.1\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let (code, _, err) = stats(&[
        "roc",
        "--csv",
        p,
        "--truth",
        "truth",
        "--positive",
        "1",
        "--score",
        "score",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--na drop"), "{err}");
    let (code, j, err) = stats(&[
        "roc",
        "--csv",
        p,
        "--truth",
        "truth",
        "--positive",
        "1",
        "--score",
        "score",
        "--na",
        "drop",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["n_dropped"].as_u64(), Some(2));
    assert_eq!(j["auc"].as_f64(), Some(1.0));
    assert!(
        j["auc_ci_logit_lower"].is_null(),
        "the logit CI of a perfect AUC is undefined"
    );
}

#[test]
fn filters_select_rows() {
    let csv = asah();
    let (code, all, _) = stats(&[
        "roc",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "s100b",
    ]);
    assert_eq!(code, 0);
    let (code, men, err) = stats(&[
        "roc",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "s100b",
        "--where",
        "gender=Male",
    ]);
    assert_eq!(code, 0, "{err}");
    let n = |j: &Value| j["n_pos"].as_u64().unwrap() + j["n_neg"].as_u64().unwrap();
    assert!(n(&men) < n(&all));
    assert_eq!(n(&men), 42, "aSAH has 42 men");
}

/// Van Dyke et al. (1993) with OR-DBM MRMC / RJafroc: F = 4.456, ddf = 15.26, p = 0.0517.
#[test]
fn mrmc_on_van_dyke_matches_the_published_analysis() {
    let csv = format!(
        "{}/../trial/tests/data/vandyke_mrmc.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, j, err) = stats(&[
        "mrmc",
        "--csv",
        &csv,
        "--reader",
        "reader",
        "--modality",
        "treatment",
        "--case",
        "case",
        "--truth",
        "truth",
        "--score",
        "rating",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r(&j["f"], 3), 4.456);
    assert_eq!(r(&j["ddf_hillis"], 2), 15.26);
    assert_eq!(r(&j["p_value"], 4), 0.0517);
    assert_eq!(r(&j["modality_auc"][0], 5), 0.89704);
    let (code, d, err) = stats(&[
        "mrmc",
        "--csv",
        &csv,
        "--reader",
        "reader",
        "--modality",
        "treatment",
        "--case",
        "case",
        "--truth",
        "truth",
        "--score",
        "rating",
        "--covariance",
        "delong",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d["covariance"], "delong");
    assert_eq!(d["modality_auc"], j["modality_auc"]);
    let (code, _, err) = stats(&[
        "mrmc",
        "--csv",
        &csv,
        "--reader",
        "reader",
        "--modality",
        "treatment",
        "--case",
        "case",
        "--truth",
        "rating",
        "--score",
        "rating",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("two different truths"), "{err}");
    let (code, _, err) = stats(&[
        "mrmc",
        "--csv",
        &csv,
        "--reader",
        "reader",
        "--modality",
        "treatment",
        "--case",
        "case",
        "--truth",
        "truth",
        "--positive",
        "2",
        "--score",
        "rating",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("exactly two values"), "{err}");
}

#[test]
fn the_bootstrap_is_reproducible_from_its_seed() {
    let csv = asah();
    let args = [
        "roc",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "s100b",
        "--bootstrap",
        "300",
        "--seed",
        "7",
    ];
    let (code, a, err) = stats(&args);
    assert_eq!(code, 0, "{err}");
    let (_, b, _) = stats(&args);
    assert_eq!(a["auc_ci_bootstrap_lower"], b["auc_ci_bootstrap_lower"]);
    assert_eq!(a["auc_ci_bootstrap_upper"], b["auc_ci_bootstrap_upper"]);
    assert!((a["auc_ci_bootstrap_lower"].as_f64().unwrap() - 0.63).abs() < 0.03);
}

#[test]
fn calibration_of_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, "y,p\n1,0.9\n0,0.2\n0,0.6\n1,0.4\n1,0.7\n0,0.3\n").unwrap();
    let p = path.to_str().unwrap();
    let (code, j, err) = stats(&[
        "calibration",
        "--csv",
        p,
        "--truth",
        "y",
        "--positive",
        "1",
        "--probability",
        "p",
    ]);
    assert_eq!(code, 0, "{err}");
    let brier = (0.01 + 0.04 + 0.36 + 0.36 + 0.09 + 0.09) / 6.0;
    assert!((j["brier"].as_f64().unwrap() - brier).abs() < 1e-12);
    assert!(j["calibration_slope"].is_number());
    std::fs::write(&path, "y,p\n1,1.0\n0,0.2\n").unwrap();
    let (code, _, err) = stats(&[
        "calibration",
        "--csv",
        p,
        "--truth",
        "y",
        "--positive",
        "1",
        "--probability",
        "p",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("strictly between 0 and 1"), "{err}");
}

/// pROC 1.18 tests (test-power.roc.test.R): power.roc.test(ncases = 41,
/// ncontrols = 72, auc = 0.73) → power 0.9897453; with power = 0.95 and
/// sig.level = NULL → 0.009238584; for ndka vs wfns on aSAH (DeLong) power
/// 0.7131594, and ncases 64.77777 / ncontrols 113.7561 for power 0.9.
#[test]
fn power_matches_proc_for_one_auc_and_two_paired_aucs() {
    let (code, j, err) = stats(&["power", "--auc", "0.73", "--n-pos", "41", "--n-neg", "72"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["design"], "one_auc");
    assert_eq!(r(&j["power"], 7), 0.9897453);
    let (code, j, err) = stats(&[
        "power", "--auc", "0.73", "--n-pos", "41", "--n-neg", "72", "--power", "0.95",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r(&j["alpha"], 9), 0.009238584);
    let (code, j, _) = stats(&["power", "--auc", "0.8", "--power", "0.9", "--kappa", "2"]);
    assert_eq!(code, 0);
    assert!(j["n_neg"].as_f64().unwrap() > j["n_pos"].as_f64().unwrap());
    assert_eq!(
        j["n_pos_rounded_up"].as_f64().unwrap(),
        j["n_pos"].as_f64().unwrap().ceil()
    );

    let csv = asah();
    let pilot = [
        "power",
        "--csv",
        &csv,
        "--truth",
        "outcome",
        "--positive",
        "Poor",
        "--score",
        "ndka",
        "--score",
        "wfns",
    ];
    let (code, j, err) = stats(&[&pilot[..], &["--n-pos", "41"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["design"], "paired_aucs");
    assert_eq!(r(&j["power"], 7), 0.7131594);
    let (code, j, err) = stats(&[&pilot[..], &["--power", "0.9"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(r(&j["n_pos"], 5), 64.77777);
    assert_eq!(r(&j["n_neg"], 4), 113.7561);

    // What cannot be solved is refused with exit code 2.
    let (code, _, err) = stats(&["power", "--auc", "0.5", "--power", "0.9"]);
    assert_eq!(code, 2, "AUC 0.5 cannot be powered against itself");
    assert!(err.contains("(0.5, 1)"), "{err}");
    let (code, _, err) = stats(&[
        "power", "--auc", "0.8", "--n-pos", "10", "--power", "0.9", "--alpha", "0.05",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("leave out one"), "{err}");
}

/// The benchmark runs and reports its timings (the targets are checked by
/// running it on a release build; see docs/build.md, not here).
#[test]
fn the_benchmark_reports_its_timings() {
    let (code, j, err) = stats(&["bench", "--cases", "200", "--runs", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["cases"], 200);
    assert_eq!(j["bootstrap_replicates"], 2000);
    for key in ["delong_auc_ci_ms_median", "full_analysis_ms_median"] {
        assert!(j[key].as_f64().is_some_and(|t| t > 0.0), "{key}: {j}");
    }
    assert!(
        j["auc"].as_f64().is_some_and(|a| a > 0.6),
        "the generated data separate the classes: {j}"
    );
    let (code, _, _) = stats(&["bench", "--cases", "3"]);
    assert_eq!(code, 2);
}
