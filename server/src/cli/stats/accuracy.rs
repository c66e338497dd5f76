//! `stats roc` and `stats compare`: ROC curves with DeLong's and bootstrap
//! intervals, rates at a threshold, and paired comparisons of AUCs.

use super::input::{bad, complete, put_rate, read, CompareArgs, Complete, InputError, RocArgs};
use osteo_trial::analysis::roc::{self, Direction, Sample};
use osteo_trial::analysis::threshold::at_threshold;
use osteo_trial::analysis::StatsError;
use serde_json::{json, Map, Value};

pub(super) fn roc_json(a: RocArgs) -> Result<Value, InputError> {
    let names = vec![a.score.clone()];
    let table = read(&a.data, &names)?;
    let Complete {
        truth,
        scores,
        dropped,
    } = complete(&table, &[0], a.data.na, &names)?;
    let direction = if a.lower_is_positive {
        Direction::LowerIsPositive
    } else {
        Direction::HigherIsPositive
    };
    // A set of one class still has its sensitivity (or specificity) at a
    // threshold; what needs both classes is reported as null.
    let sample = match Sample::new(&scores[0], &truth, direction) {
        Ok(s) => Some(s),
        Err(StatsError::NoPositives | StatsError::NoNegatives) if !truth.is_empty() => None,
        Err(e) => return Err(e.into()),
    };
    let n_pos = truth.iter().filter(|t| **t).count();
    let mut out = Map::new();
    out.insert("n_pos".into(), json!(n_pos));
    out.insert("n_neg".into(), json!(truth.len() - n_pos));
    out.insert("n_dropped".into(), json!(dropped));
    out.insert("conf_level".into(), json!(a.data.conf_level));
    out.insert(
        "direction".into(),
        json!(if a.lower_is_positive {
            "lower_is_positive"
        } else {
            "higher_is_positive"
        }),
    );
    let est = sample
        .as_ref()
        .map(|s| roc::auc(s, a.data.conf_level))
        .transpose()?;
    let youden = sample.as_ref().map(roc::youden);
    out.insert("auc".into(), json!(est.as_ref().map(|e| e.auc)));
    out.insert(
        "auc_var_delong".into(),
        json!(est.as_ref().and_then(|e| e.var_delong)),
    );
    out.insert(
        "auc_se_delong".into(),
        json!(est.as_ref().and_then(|e| e.se_delong)),
    );
    let ci = est.as_ref().and_then(|e| e.ci_delong);
    out.insert("auc_ci_delong_lower".into(), json!(ci.map(|c| c.0)));
    out.insert("auc_ci_delong_upper".into(), json!(ci.map(|c| c.1)));
    let logit = est.as_ref().and_then(|e| e.ci_logit);
    out.insert("auc_ci_logit_lower".into(), json!(logit.map(|c| c.0)));
    out.insert("auc_ci_logit_upper".into(), json!(logit.map(|c| c.1)));
    out.insert(
        "auc_se_hanley_mcneil".into(),
        json!(est.as_ref().map(|e| e.se_hanley_mcneil)),
    );
    out.insert(
        "mann_whitney_u".into(),
        json!(est.as_ref().map(|e| e.mann_whitney_u)),
    );
    // The all-negative start of the curve has an infinite threshold: not a
    // cut-off to report. `youden_threshold` is the observed score at which
    // the best point is reached (positive at or beyond it);
    // `youden_threshold_midpoint` is pROC's `coords(…, "best")` threshold,
    // midway to the next observed score.
    out.insert(
        "youden_threshold".into(),
        json!(youden.map(|y| y.threshold).filter(|t| t.is_finite())),
    );
    out.insert(
        "youden_threshold_midpoint".into(),
        json!(sample.as_ref().and_then(roc::youden_midpoint)),
    );
    out.insert(
        "youden_sensitivity".into(),
        json!(youden.map(|y| y.sensitivity)),
    );
    out.insert(
        "youden_specificity".into(),
        json!(youden.map(|y| y.specificity)),
    );
    out.insert(
        "youden_index".into(),
        json!(youden.map(|y| y.sensitivity + y.specificity - 1.0)),
    );
    if let (Some(replicates), Some(sample)) = (a.bootstrap, &sample) {
        let b = osteo_trial::analysis::bootstrap::auc_ci(
            sample,
            replicates,
            a.seed,
            a.data.conf_level,
        )?;
        out.insert("bootstrap_replicates".into(), json!(b.replicates));
        out.insert("bootstrap_seed".into(), json!(b.seed));
        out.insert("auc_ci_bootstrap_lower".into(), json!(b.lower));
        out.insert("auc_ci_bootstrap_upper".into(), json!(b.upper));
        out.insert("auc_se_bootstrap".into(), json!(b.se));
    }
    if let Some(t) = a.threshold {
        let r = at_threshold(&scores[0], &truth, t, direction, a.data.conf_level)?;
        out.insert("threshold".into(), json!(t));
        out.insert("tp".into(), json!(r.table.tp));
        out.insert("fp".into(), json!(r.table.fp));
        out.insert("fn".into(), json!(r.table.fn_));
        out.insert("tn".into(), json!(r.table.tn));
        put_rate(&mut out, "sensitivity", &r.sensitivity);
        put_rate(&mut out, "specificity", &r.specificity);
        put_rate(&mut out, "ppv", &r.ppv);
        put_rate(&mut out, "npv", &r.npv);
        put_rate(&mut out, "accuracy", &r.accuracy);
    }
    Ok(Value::Object(out))
}

pub(super) fn compare_json(a: CompareArgs) -> Result<Value, InputError> {
    if a.score.len() != 2 {
        return Err(bad(format!(
            "compare takes exactly two --score columns, got {}",
            a.score.len()
        )));
    }
    let table = read(&a.data, &a.score)?;
    let level = a.data.conf_level;
    let (c, dropped) = if a.unpaired {
        let Complete {
            truth: t1,
            scores: s1,
            dropped: d1,
        } = complete(&table, &[0], a.data.na, &a.score[..1])?;
        let Complete {
            truth: t2,
            scores: s2,
            dropped: d2,
        } = complete(&table, &[1], a.data.na, &a.score[1..])?;
        let one = Sample::new(&s1[0], &t1, Direction::HigherIsPositive)?;
        let two = Sample::new(&s2[0], &t2, Direction::HigherIsPositive)?;
        (roc::compare_unpaired(&one, &two, level)?, d1.max(d2))
    } else {
        let Complete {
            truth,
            scores,
            dropped,
        } = complete(&table, &[0, 1], a.data.na, &a.score)?;
        let c = compare_two(&scores, &truth, level)?;
        (c, dropped)
    };
    Ok(json!({
        "paired": !a.unpaired,
        "n_dropped": dropped,
        "conf_level": level,
        "auc1": c.auc1,
        "auc2": c.auc2,
        "auc_diff": c.diff,
        "delong_var1": c.var1,
        "delong_var2": c.var2,
        "delong_cov": c.cov,
        "delong_var_diff": c.var_diff,
        "delong_se_diff": c.se_diff,
        "delong_corr": c.corr,
        "delong_z": c.z,
        "delong_p_two_sided": c.p_two_sided,
        "delong_p_greater": c.p_greater,
        "delong_p_less": c.p_less,
        "delong_diff_ci_lower": c.diff_ci.map(|c| c.0),
        "delong_diff_ci_upper": c.diff_ci.map(|c| c.1),
    }))
}

/// The paired comparison of the first two score columns, higher scores
/// positive (`stats compare`, and the pilot data of `stats power`).
pub(super) fn compare_two(
    scores: &[Vec<f64>],
    truth: &[bool],
    level: f64,
) -> Result<roc::AucComparison, StatsError> {
    roc::compare_paired(
        &scores[0],
        &scores[1],
        truth,
        Direction::HigherIsPositive,
        Direction::HigherIsPositive,
        level,
    )
}
