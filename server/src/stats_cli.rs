//! `osteo-edc stats …`: the analysis engine from the command line, for
//! statisticians reproducing a figure from an export and for checking the
//! engine against other software. JSON on stdout; undefined values are
//! `null`; bad input is a clear message and exit code 2.

use clap::{Args, Subcommand, ValueEnum};
use osteo_trial::analysis::mcnemar::mcnemar;
use osteo_trial::analysis::proportion::{proportion, Interval};
use osteo_trial::analysis::roc::{self, Direction, Sample};
use osteo_trial::analysis::threshold::{at_threshold, Rate};
use osteo_trial::analysis::StatsError;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum StatsCommand {
    /// ROC analysis of one score: AUC with DeLong variance, Wald and logit CIs, Hanley–McNeil SE, Youden's threshold; with --threshold the 2×2 table and sensitivity, specificity, PPV, NPV, accuracy with Wilson and Clopper–Pearson CIs.
    Roc(RocArgs),
    /// DeLong comparison of two AUCs: paired (same cases, with covariance) or --unpaired.
    Compare(CompareArgs),
    /// A proportion x/n with Wilson, Wilson continuity-corrected, Clopper–Pearson and Wald CIs.
    Proportion(ProportionArgs),
    /// McNemar's test for paired proportions: chi-square, continuity-corrected, exact and mid-p.
    Mcnemar(McNemarArgs),
    /// Calibration of predicted probabilities: Brier score, calibration slope and intercept.
    Calibration(CalibrationArgs),
    /// Multi-reader multi-case comparison of modalities (Obuchowski–Rockette, Hillis ddf, random readers and cases). Long format: one row per reader, modality and case.
    Mrmc(MrmcArgs),
    /// Sample size, power or significance level (Obuchowski's formulas, as pROC's power.roc.test): for one AUC against 0.5 (--auc), or for two paired AUCs from pilot data (--csv … --score A --score B, DeLong variances). Leave out the one to solve for: --n-pos (sample size), --power, or --alpha (needs --n-pos and --power).
    Power(PowerArgs),
    /// Times the engine on generated data: DeLong AUC with CI, the whole locked analysis (AI, two readers, paired DeLong, McNemar, MRMC, subgroups, sensitivity analyses, 2,000 bootstrap replicates) and the locked PDF report in English and Chinese. JSON with the median and fastest times in milliseconds.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct BenchArgs {
    /// Cases (the trial has 2,200: 2,000 retrospective and 200 prospective).
    #[arg(long, default_value_t = 2200)]
    cases: usize,
    /// Timed runs of the DeLong AUC (the analysis runs a fifth as often, at least 3 times).
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Args)]
pub struct PowerArgs {
    /// Expected AUC of the test (one-AUC design, against H0: AUC = 0.5).
    #[arg(long)]
    auc: Option<f64>,
    /// Pilot data for two paired AUCs (CSV with a header row).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Pilot data: the truth column.
    #[arg(long)]
    truth: Option<String>,
    /// Pilot data: the truth value of a positive case.
    #[arg(long)]
    positive: Option<String>,
    /// Pilot data: the two score columns, --score A --score B (the difference is A − B).
    #[arg(long)]
    score: Vec<String>,
    /// Positive cases (leave out to solve for the sample size).
    #[arg(long)]
    n_pos: Option<f64>,
    /// Negative cases (default: κ × n_pos).
    #[arg(long)]
    n_neg: Option<f64>,
    /// Negatives per positive, for the sample size (pilot data: taken from the data).
    #[arg(long)]
    kappa: Option<f64>,
    /// Power, 1 − β (leave out to solve for it).
    #[arg(long)]
    power: Option<f64>,
    /// Significance level (default 0.05; leave out with --n-pos and --power given to solve for it).
    #[arg(long)]
    alpha: Option<f64>,
    /// One-sided test (default: two-sided).
    #[arg(long)]
    one_sided: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CovarianceArg {
    /// Case jackknife (as OR-DBM MRMC and RJafroc).
    Jackknife,
    /// DeLong's structural components.
    Delong,
}

#[derive(Args)]
pub struct MrmcArgs {
    /// CSV file with a header row, one row per reader × modality × case.
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    reader: String,
    #[arg(long)]
    modality: String,
    #[arg(long)]
    case: String,
    /// Column holding the reference standard.
    #[arg(long)]
    truth: String,
    /// The truth value that marks a positive case.
    #[arg(long, default_value = "1")]
    positive: String,
    /// Column holding the rating (higher = more likely positive).
    #[arg(long)]
    score: String,
    #[arg(long, value_enum, default_value = "jackknife")]
    covariance: CovarianceArg,
    #[arg(long, default_value_t = 0.95)]
    conf_level: f64,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum NaPolicy {
    /// Leave out rows with a missing truth or score (reported as n_dropped).
    Drop,
    /// Refuse the input when a value is missing.
    Error,
}

#[derive(Args)]
pub struct Data {
    /// CSV file with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Column holding the reference standard.
    #[arg(long)]
    truth: String,
    /// The value of the truth column that marks a positive case; the column must hold exactly two values.
    #[arg(long)]
    positive: String,
    /// Keep only rows where COL equals VALUE (repeat to combine with AND).
    #[arg(long = "where", value_name = "COL=VALUE")]
    filters: Vec<String>,
    /// What to do with missing values (empty cells, NA).
    #[arg(long, value_enum, default_value = "error")]
    na: NaPolicy,
    /// Confidence level of every interval, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.95)]
    conf_level: f64,
}

#[derive(Args)]
pub struct RocArgs {
    #[command(flatten)]
    data: Data,
    /// Column holding the score.
    #[arg(long)]
    score: String,
    /// Lower scores mean positive (a case is positive when score ≤ threshold).
    #[arg(long)]
    lower_is_positive: bool,
    /// Also tabulate at this threshold (positive when score ≥ T, or ≤ T with --lower-is-positive).
    #[arg(long)]
    threshold: Option<f64>,
    /// Also give a stratified bootstrap percentile CI of the AUC with this many replicates.
    #[arg(long)]
    bootstrap: Option<usize>,
    /// Seed of the bootstrap (the same seed gives the same interval everywhere).
    #[arg(long, default_value_t = 20250520)]
    seed: u64,
}

#[derive(Args)]
pub struct CalibrationArgs {
    #[command(flatten)]
    data: Data,
    /// Column holding the predicted probability of the positive class, strictly between 0 and 1.
    #[arg(long)]
    probability: String,
}

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    data: Data,
    /// The two score columns: --score A --score B (the difference is A − B).
    #[arg(long, num_args = 1, required = true)]
    score: Vec<String>,
    /// Treat the two scores as independent samples (no covariance).
    #[arg(long)]
    unpaired: bool,
}

#[derive(Args)]
pub struct ProportionArgs {
    #[arg(long)]
    x: u64,
    #[arg(long)]
    n: u64,
    #[arg(long, default_value_t = 0.95)]
    conf_level: f64,
}

#[derive(Args)]
pub struct McNemarArgs {
    /// The 2×2 table in row order: N11,N12,N21,N22 (N12 and N21 are the discordant pairs).
    #[arg(long, value_name = "N11,N12,N21,N22")]
    table: String,
}

/// Bad input, said in words.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Stats(#[from] StatsError),
}

fn bad(msg: impl Into<String>) -> InputError {
    InputError::Message(msg.into())
}

/// Runs a stats command and returns its JSON.
pub fn run(cmd: StatsCommand) -> Result<Value, InputError> {
    match cmd {
        StatsCommand::Roc(a) => roc_json(a),
        StatsCommand::Compare(a) => compare_json(a),
        StatsCommand::Proportion(a) => {
            let p = proportion(a.x, a.n, a.conf_level)?;
            let mut out = Map::new();
            out.insert("x".into(), json!(a.x));
            out.insert("n".into(), json!(a.n));
            out.insert("conf_level".into(), json!(a.conf_level));
            out.insert("proportion".into(), json!(p.proportion));
            put_interval(&mut out, "ci_wilson", Some(p.wilson));
            put_interval(&mut out, "ci_wilson_cc", Some(p.wilson_cc));
            put_interval(&mut out, "ci_clopper_pearson", Some(p.clopper_pearson));
            put_interval(&mut out, "ci_wald", Some(p.wald));
            Ok(Value::Object(out))
        }
        StatsCommand::Mrmc(a) => mrmc_json(a),
        StatsCommand::Power(a) => power_json(a),
        StatsCommand::Bench(a) => bench_json(a),
        StatsCommand::Calibration(a) => {
            let names = vec![a.probability.clone()];
            let table = read(&a.data, &names)?;
            let Complete {
                truth,
                scores: probs,
                dropped,
            } = complete(&table, &[0], a.data.na, &names)?;
            let c = osteo_trial::analysis::calibration::calibration(&probs[0], &truth)
                .map_err(|e| bad(e.to_string()))?;
            Ok(json!({
                "n": c.n,
                "n_dropped": dropped,
                "brier": c.brier,
                "calibration_slope": c.slope,
                "calibration_intercept": c.intercept,
            }))
        }
        StatsCommand::Mcnemar(a) => {
            let cells: Vec<u64> = a
                .table
                .split(',')
                .map(|c| c.trim().parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    bad("--table takes four non-negative whole numbers: N11,N12,N21,N22")
                })?;
            let [n11, n12, n21, n22] = cells[..] else {
                return Err(bad(format!(
                    "--table takes four counts, got {}",
                    cells.len()
                )));
            };
            let t = mcnemar(n11, n12, n21, n22);
            Ok(json!({
                "b": t.b, "c": t.c,
                "chi2": t.chi2, "p_chi2": t.p_chi2,
                "chi2_cc": t.chi2_cc, "p_chi2_cc": t.p_chi2_cc,
                "p_exact": t.p_exact, "p_midp": t.p_midp,
            }))
        }
    }
}

fn put_interval(out: &mut Map<String, Value>, key: &str, i: Option<Interval>) {
    out.insert(format!("{key}_lower"), json!(i.map(|i| i.lower)));
    out.insert(format!("{key}_upper"), json!(i.map(|i| i.upper)));
}

fn put_rate(out: &mut Map<String, Value>, key: &str, r: &Rate) {
    out.insert(key.into(), json!(r.value));
    put_interval(out, &format!("{key}_ci_wilson"), r.wilson);
    put_interval(out, &format!("{key}_ci_clopper_pearson"), r.clopper_pearson);
}

/// The columns of interest of a CSV, after the filters.
struct Table {
    truth: Vec<bool>,
    scores: Vec<Vec<Option<f64>>>,
    missing_truth: Vec<bool>,
}

fn is_missing(s: &str) -> bool {
    matches!(s.trim(), "" | "NA" | "na" | "N/A" | "NaN")
}

fn read(data: &Data, score_cols: &[String]) -> Result<Table, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&data.csv)
        .map_err(|e| bad(format!("cannot read {}: {e}", data.csv.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| {
            bad(format!(
                "cannot read the header row of {}: {e}",
                data.csv.display()
            ))
        })?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "no column `{name}` in {} (columns: {})",
                data.csv.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let truth_col = col(&data.truth)?;
    let score_idx: Vec<usize> = score_cols
        .iter()
        .map(|c| col(c))
        .collect::<Result<_, _>>()?;
    let mut filters = Vec::new();
    for f in &data.filters {
        let (c, v) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("--where takes COL=VALUE, got `{f}`")))?;
        filters.push((col(c.trim())?, v.trim().to_owned()));
    }
    let mut raw_truth = Vec::new();
    let mut scores = vec![Vec::new(); score_cols.len()];
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| bad(format!("{} line {line}: {e}", data.csv.display())))?;
        if filters
            .iter()
            .any(|(c, v)| record.get(*c) != Some(v.as_str()))
        {
            continue;
        }
        raw_truth.push(record.get(truth_col).unwrap_or("").to_owned());
        for (k, &c) in score_idx.iter().enumerate() {
            let cell = record.get(c).unwrap_or("");
            let value = if is_missing(cell) {
                None
            } else {
                Some(cell.parse::<f64>().map_err(|_| {
                    bad(format!(
                        "line {line}: `{}` holds `{cell}`, which is not a number",
                        score_cols[k]
                    ))
                })?)
            };
            if let Some(v) = value.filter(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "line {line}: `{}` holds {v}, which is not a finite number",
                    score_cols[k]
                )));
            }
            scores[k].push(value);
        }
    }
    let values: BTreeSet<&str> = raw_truth
        .iter()
        .map(String::as_str)
        .filter(|v| !is_missing(v))
        .collect();
    // One value only: a set of one class (all positive, or all negative),
    // which still has its sensitivity or specificity. With two values the
    // positive one must be among them (else it is a typo).
    if values.len() > 1 && !values.contains(data.positive.as_str()) {
        return Err(bad(format!(
            "the positive value `{}` does not occur in column `{}` (values: {})",
            data.positive,
            data.truth,
            values.iter().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    if values.is_empty() || values.len() > 2 {
        return Err(StatsError::LabelValues(values.len()).into());
    }
    Ok(Table {
        missing_truth: raw_truth.iter().map(|v| is_missing(v)).collect(),
        truth: raw_truth.iter().map(|v| *v == data.positive).collect(),
        scores,
    })
}

/// The rows with a truth and every score asked for.
struct Complete {
    truth: Vec<bool>,
    scores: Vec<Vec<f64>>,
    dropped: usize,
}

/// The complete rows of the given score columns, or an error under `--na error`.
fn complete(
    table: &Table,
    cols: &[usize],
    na: NaPolicy,
    names: &[String],
) -> Result<Complete, InputError> {
    let mut truth = Vec::new();
    let mut scores = vec![Vec::new(); cols.len()];
    let mut dropped = 0;
    for row in 0..table.truth.len() {
        let missing_score = cols.iter().position(|&c| table.scores[c][row].is_none());
        if table.missing_truth[row] || missing_score.is_some() {
            if let NaPolicy::Error = na {
                let what = match missing_score {
                    Some(k) if !table.missing_truth[row] => format!("`{}`", names[k]),
                    _ => "the truth".to_owned(),
                };
                return Err(bad(format!(
                    "data row {} has no value for {what}; use --na drop to leave such rows out",
                    row + 1
                )));
            }
            dropped += 1;
            continue;
        }
        truth.push(table.truth[row]);
        for (k, &c) in cols.iter().enumerate() {
            scores[k].push(table.scores[c][row].unwrap_or(f64::NAN));
        }
    }
    Ok(Complete {
        truth,
        scores,
        dropped,
    })
}

fn roc_json(a: RocArgs) -> Result<Value, InputError> {
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

fn compare_json(a: CompareArgs) -> Result<Value, InputError> {
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
        let c = roc::compare_paired(
            &scores[0],
            &scores[1],
            &truth,
            Direction::HigherIsPositive,
            Direction::HigherIsPositive,
            level,
        )?;
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

fn mrmc_json(a: MrmcArgs) -> Result<Value, InputError> {
    use osteo_trial::analysis::mrmc::{obuchowski_rockette, CovarianceMethod, Ratings};
    use std::collections::BTreeMap;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&a.csv)
        .map_err(|e| bad(format!("cannot read {}: {e}", a.csv.display())))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("no column `{name}` in {}", a.csv.display())))
    };
    let (rc, mc, cc, tc, sc) = (
        col(&a.reader)?,
        col(&a.modality)?,
        col(&a.case)?,
        col(&a.truth)?,
        col(&a.score)?,
    );
    // (modality, reader, case) -> score; case -> truth
    let mut cells: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut truth: BTreeMap<String, bool> = BTreeMap::new();
    let mut truth_values = BTreeSet::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let get = |c: usize| record.get(c).unwrap_or("").to_owned();
        let score: f64 = get(sc)
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                bad(format!(
                    "line {line}: the score `{}` is not a finite number",
                    get(sc)
                ))
            })?;
        let t = get(tc);
        truth_values.insert(t.clone());
        let positive = t == a.positive;
        if truth
            .insert(get(cc), positive)
            .is_some_and(|old| old != positive)
        {
            return Err(bad(format!(
                "line {line}: case `{}` has two different truths",
                get(cc)
            )));
        }
        if cells.insert((get(mc), get(rc), get(cc)), score).is_some() {
            return Err(bad(format!(
                "line {line}: a second rating for the same reader, modality and case"
            )));
        }
    }
    if truth_values.len() != 2 || !truth_values.contains(&a.positive) {
        return Err(bad(format!(
            "the truth column must hold exactly two values, one of them `{}` (found: {})",
            a.positive,
            truth_values.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let modalities: BTreeSet<&String> = cells.keys().map(|k| &k.0).collect();
    let readers: BTreeSet<&String> = cells.keys().map(|k| &k.1).collect();
    let cases: Vec<&String> = truth.keys().collect();
    let mut scores = Vec::new();
    for m in &modalities {
        let mut per_reader = Vec::new();
        for r in &readers {
            let mut row = Vec::new();
            for c in &cases {
                let key = ((*m).clone(), (*r).clone(), (*c).clone());
                row.push(*cells.get(&key).ok_or_else(|| {
                    bad(format!("reader `{r}` has no rating of case `{c}` in modality `{m}`: every reader must rate every case"))
                })?);
            }
            per_reader.push(row);
        }
        scores.push(per_reader);
    }
    let ratings = Ratings {
        scores,
        truth: cases.iter().map(|c| truth[*c]).collect(),
    };
    let method = match a.covariance {
        CovarianceArg::Jackknife => CovarianceMethod::Jackknife,
        CovarianceArg::Delong => CovarianceMethod::DeLong,
    };
    let r = obuchowski_rockette(&ratings, method, a.conf_level).map_err(|e| bad(e.to_string()))?;
    let names: Vec<&String> = modalities.into_iter().collect();
    let reader_names: Vec<&String> = readers.into_iter().collect();
    Ok(json!({
        "method": "obuchowski_rockette",
        "covariance": match method { CovarianceMethod::Jackknife => "jackknife", CovarianceMethod::DeLong => "delong" },
        "conf_level": a.conf_level,
        "n_pos": r.n_pos,
        "n_neg": r.n_neg,
        "modalities": names,
        "readers": reader_names,
        "reader_auc": r.auc,
        "modality_auc": r.modality_auc,
        "var": r.var, "cov1": r.cov1, "cov2": r.cov2, "cov3": r.cov3,
        "ms_t": r.ms_t, "ms_tr": r.ms_tr,
        "f": r.f, "ndf": r.ndf, "ddf_hillis": r.ddf, "p_value": r.p_value,
        "auc_diff": r.diff,
        "auc_diff_ci_lower": r.diff_ci.map(|c| c.0),
        "auc_diff_ci_upper": r.diff_ci.map(|c| c.1),
    }))
}

/// What a power command solves for.
enum Solve {
    SampleSize { power: f64, alpha: f64 },
    Power { n_pos: f64, alpha: f64 },
    Alpha { n_pos: f64, power: f64 },
}

fn power_json(a: PowerArgs) -> Result<Value, InputError> {
    use osteo_trial::analysis::power::{self as pw, PairedPilot, Sided};
    let sided = if a.one_sided { Sided::One } else { Sided::Two };
    let solve = match (a.n_pos, a.power, a.alpha) {
        (None, Some(power), alpha) => Solve::SampleSize {
            power,
            alpha: alpha.unwrap_or(0.05),
        },
        (Some(n_pos), None, alpha) => Solve::Power {
            n_pos,
            alpha: alpha.unwrap_or(0.05),
        },
        (Some(n_pos), Some(power), None) => Solve::Alpha { n_pos, power },
        (None, None, _) => {
            return Err(bad(
                "give --power to solve for the sample size, or --n-pos to solve for the power",
            ))
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(bad(
                "leave out one of --n-pos, --power and --alpha: the one to solve for",
            ))
        }
    };
    let mut out = Map::new();
    out.insert(
        "sided".into(),
        json!(if a.one_sided { "one" } else { "two" }),
    );
    let (n_pos, n_neg, power, alpha) =
        match (a.auc, &a.csv) {
            (Some(auc), None) => {
                out.insert("design".into(), json!("one_auc"));
                out.insert("auc".into(), json!(auc));
                let kappa = a.kappa.unwrap_or(1.0);
                match solve {
                    Solve::SampleSize { power, alpha } => {
                        let n = pw::one_auc_n_pos(auc, kappa, alpha, power, sided)?;
                        (n, n * kappa, power, alpha)
                    }
                    Solve::Power { n_pos, alpha } => {
                        let n_neg = a.n_neg.unwrap_or(n_pos * kappa);
                        (
                            n_pos,
                            n_neg,
                            pw::one_auc_power(auc, n_pos, n_neg, alpha, sided)?,
                            alpha,
                        )
                    }
                    Solve::Alpha { n_pos, power } => {
                        let n_neg = a.n_neg.unwrap_or(n_pos * kappa);
                        (
                            n_pos,
                            n_neg,
                            power,
                            pw::one_auc_alpha(auc, n_pos, n_neg, power, sided)?,
                        )
                    }
                }
            }
            (None, Some(csv)) => {
                let [s1, s2] = &a.score[..] else {
                    return Err(bad("pilot data needs exactly two --score columns"));
                };
                let data = Data {
                    csv: csv.clone(),
                    truth: a
                        .truth
                        .clone()
                        .ok_or_else(|| bad("pilot data needs --truth"))?,
                    positive: a
                        .positive
                        .clone()
                        .ok_or_else(|| bad("pilot data needs --positive"))?,
                    filters: Vec::new(),
                    na: NaPolicy::Error,
                    conf_level: 0.95,
                };
                let names = vec![s1.clone(), s2.clone()];
                let table = read(&data, &names)?;
                let Complete { truth, scores, .. } = complete(&table, &[0, 1], data.na, &names)?;
                let c = roc::compare_paired(
                    &scores[0],
                    &scores[1],
                    &truth,
                    Direction::HigherIsPositive,
                    Direction::HigherIsPositive,
                    0.95,
                )?;
                let pilot_pos = truth.iter().filter(|t| **t).count() as f64;
                let kappa = a
                    .kappa
                    .unwrap_or((truth.len() as f64 - pilot_pos) / pilot_pos);
                let (Some(var1), Some(var2), Some(cov)) = (c.var1, c.var2, c.cov) else {
                    return Err(osteo_trial::analysis::StatsError::PilotTooSmall.into());
                };
                let pilot = PairedPilot {
                    delta: c.diff,
                    var1,
                    var2,
                    cov,
                    n_pos: pilot_pos,
                };
                out.insert("design".into(), json!("paired_aucs"));
                out.insert("auc1".into(), json!(c.auc1));
                out.insert("auc2".into(), json!(c.auc2));
                out.insert("delta".into(), json!(c.diff));
                match solve {
                    Solve::SampleSize { power, alpha } => {
                        let n = pw::paired_n_pos(&pilot, alpha, power, sided)?;
                        (n, n * kappa, power, alpha)
                    }
                    Solve::Power { n_pos, alpha } => (
                        n_pos,
                        a.n_neg.unwrap_or(n_pos * kappa),
                        pw::paired_power(&pilot, n_pos, alpha, sided)?,
                        alpha,
                    ),
                    Solve::Alpha { n_pos, power } => (
                        n_pos,
                        a.n_neg.unwrap_or(n_pos * kappa),
                        power,
                        pw::paired_alpha(&pilot, n_pos, power, sided)?,
                    ),
                }
            }
            _ => return Err(bad(
                "give either --auc (one AUC) or --csv with two --score columns (two paired AUCs)",
            )),
        };
    out.insert("n_pos".into(), json!(n_pos));
    out.insert("n_neg".into(), json!(n_neg));
    out.insert("n_pos_rounded_up".into(), json!(n_pos.ceil()));
    out.insert("n_neg_rounded_up".into(), json!(n_neg.ceil()));
    out.insert("power".into(), json!(power));
    out.insert("alpha".into(), json!(alpha));
    Ok(Value::Object(out))
}

/// Median and fastest of timed runs, in milliseconds.
fn timed(
    runs: usize,
    mut f: impl FnMut() -> Result<(), InputError>,
) -> Result<(f64, f64), InputError> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = std::time::Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[0]))
}

fn bench_json(a: BenchArgs) -> Result<Value, InputError> {
    use osteo_trial::study::analysis::{analyse, Analysed, AnalysedCase};
    use osteo_trial::study::sap::{IntermediateMapping, ReaderAggregation, Sap};
    use rand::{Rng, SeedableRng};
    if a.cases < 10 {
        return Err(bad("--cases must be at least 10"));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    // A standard normal draw (Box–Muller).
    let mut normal = move || {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        (
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos(),
            u2,
        )
    };
    let cases: Vec<AnalysedCase> = (0..a.cases)
        .map(|i| {
            let (z, u) = normal();
            let tier = if u < 0.4 {
                "malignant"
            } else if u < 0.5 {
                "intermediate"
            } else {
                "benign"
            };
            let shift = if tier == "malignant" { 1.6 } else { 0.0 };
            let p = 1.0 / (1.0 + (-(z + shift - 0.8)).exp());
            let reads = (0..2)
                .map(|r| {
                    let (e, _) = normal();
                    let l = (50.0 + 20.0 * (e + shift - 0.8)).clamp(0.0, 100.0).round();
                    (r as i64 + 1, (l, (l / 25.0).floor().min(4.0), l >= 50.0))
                })
                .collect();
            AnalysedCase {
                case_id: i as i64 + 1,
                tier: tier.to_owned(),
                probability: p,
                reads,
                sex: Some(if i % 2 == 0 { "female" } else { "male" }.to_owned()),
                age_years: Some((i % 80) as u16 + 5),
                bone: Some(["femur", "tibia", "humerus", "radius"][i % 4].to_owned()),
            }
        })
        .collect();
    let n_cases = cases.len();
    let data = Analysed {
        cases,
        screening: osteo_trial::screening::FlowCounts {
            screened: n_cases as i64,
            enrolled_prospective: n_cases as i64,
            ..Default::default()
        },
        ended_early: 0,
        no_index_test: 0,
        ended: Vec::new(),
        deviations: Vec::new(),
        model: None,
    };
    let cases = &data.cases;
    let truth: Vec<bool> = cases
        .iter()
        .filter(|c| c.tier != "intermediate")
        .map(|c| c.tier == "malignant")
        .collect();
    let scores: Vec<f64> = cases
        .iter()
        .filter(|c| c.tier != "intermediate")
        .map(|c| c.probability)
        .collect();
    let sample = Sample::new(&scores, &truth, Direction::HigherIsPositive)?;
    let (delong_median, delong_min) = timed(a.runs, || {
        roc::auc(&sample, 0.95)?;
        Ok(())
    })?;
    let sap = Sap {
        threshold: 0.5,
        intermediate: IntermediateMapping::Excluded,
        readers: ReaderAggregation::EachReader,
        conf_level: 0.95,
    };
    let mut analysis = None;
    let (analysis_median, analysis_min) = timed((a.runs / 5).max(3), || {
        analysis = Some(analyse(&data, &sap)?);
        Ok(())
    })?;
    let analysis = analysis.ok_or_else(|| bad("no analysis ran"))?;
    let auc = analysis.ai_auc.auc;
    let locked = osteo_trial::study::LockedAnalysis {
        study_kind: osteo_trial::domain::StudyKind::Trial,
        locked_at: "2026-06-30T12:00:00.000000Z".to_owned(),
        lock_kind: "final".to_owned(),
        early_stop_reason: None,
        dataset_sha256: osteo_trial::store::sha256_hex(b"benchmark"),
        sap_version: 1,
        analysis,
        data_access: Vec::new(),
        audit_head: None,
    };
    let mut pdf_bytes = 0;
    let (pdf_median, pdf_min) = timed((a.runs / 5).max(3), || {
        for locale in osteo_trial::domain::Locale::ALL {
            pdf_bytes = crate::report::render(&locked, locale)
                .map_err(|e| bad(e.to_string()))?
                .len();
        }
        Ok(())
    })?;
    Ok(json!({
        "cases": a.cases,
        "analysed": scores.len(),
        "auc": auc,
        "bootstrap_replicates": osteo_trial::study::report::BOOTSTRAP_REPLICATES,
        "delong_auc_ci_ms_median": delong_median,
        "delong_auc_ci_ms_fastest": delong_min,
        "full_analysis_ms_median": analysis_median,
        "full_analysis_ms_fastest": analysis_min,
        "pdf_report_both_languages_ms_median": pdf_median,
        "pdf_report_both_languages_ms_fastest": pdf_min,
        "pdf_report_bytes": pdf_bytes,
        "runs": a.runs,
    }))
}
