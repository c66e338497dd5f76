//! The `stats` commands' arguments, and the CSV they read: the reference
//! column, the score columns, the filters and what is done with missing
//! values.

use clap::{Args, Subcommand, ValueEnum};
use osteo_trial::analysis::proportion::Interval;
use osteo_trial::analysis::threshold::Rate;
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
    pub(super) cases: usize,
    /// Timed runs of the DeLong AUC (the analysis runs a fifth as often, at least 3 times).
    #[arg(long, default_value_t = 50)]
    pub(super) runs: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 7)]
    pub(super) seed: u64,
}

#[derive(Args)]
pub struct PowerArgs {
    /// Expected AUC of the test (one-AUC design, against H0: AUC = 0.5).
    #[arg(long)]
    pub(super) auc: Option<f64>,
    /// Pilot data for two paired AUCs (CSV with a header row).
    #[arg(long)]
    pub(super) csv: Option<PathBuf>,
    /// Pilot data: the truth column.
    #[arg(long)]
    pub(super) truth: Option<String>,
    /// Pilot data: the truth value of a positive case.
    #[arg(long)]
    pub(super) positive: Option<String>,
    /// Pilot data: the two score columns, --score A --score B (the difference is A − B).
    #[arg(long)]
    pub(super) score: Vec<String>,
    /// Positive cases (leave out to solve for the sample size).
    #[arg(long)]
    pub(super) n_pos: Option<f64>,
    /// Negative cases (default: κ × n_pos).
    #[arg(long)]
    pub(super) n_neg: Option<f64>,
    /// Negatives per positive, for the sample size (pilot data: taken from the data).
    #[arg(long)]
    pub(super) kappa: Option<f64>,
    /// Power, 1 − β (leave out to solve for it).
    #[arg(long)]
    pub(super) power: Option<f64>,
    /// Significance level (default 0.05; leave out with --n-pos and --power given to solve for it).
    #[arg(long)]
    pub(super) alpha: Option<f64>,
    /// One-sided test (default: two-sided).
    #[arg(long)]
    pub(super) one_sided: bool,
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
    pub(super) csv: PathBuf,
    #[arg(long)]
    pub(super) reader: String,
    #[arg(long)]
    pub(super) modality: String,
    #[arg(long)]
    pub(super) case: String,
    /// Column holding the reference standard.
    #[arg(long)]
    pub(super) truth: String,
    /// The truth value that marks a positive case.
    #[arg(long, default_value = "1")]
    pub(super) positive: String,
    /// Column holding the rating (higher = more likely positive).
    #[arg(long)]
    pub(super) score: String,
    #[arg(long, value_enum, default_value = "jackknife")]
    pub(super) covariance: CovarianceArg,
    #[arg(long, default_value_t = 0.95)]
    pub(super) conf_level: f64,
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
    pub(super) csv: PathBuf,
    /// Column holding the reference standard.
    #[arg(long)]
    pub(super) truth: String,
    /// The value of the truth column that marks a positive case; the column must hold exactly two values.
    #[arg(long)]
    pub(super) positive: String,
    /// Keep only rows where COL equals VALUE (repeat to combine with AND).
    #[arg(long = "where", value_name = "COL=VALUE")]
    pub(super) filters: Vec<String>,
    /// What to do with missing values (empty cells, NA).
    #[arg(long, value_enum, default_value = "error")]
    pub(super) na: NaPolicy,
    /// Confidence level of every interval, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.95)]
    pub(super) conf_level: f64,
}

#[derive(Args)]
pub struct RocArgs {
    #[command(flatten)]
    pub(super) data: Data,
    /// Column holding the score.
    #[arg(long)]
    pub(super) score: String,
    /// Lower scores mean positive (a case is positive when score ≤ threshold).
    #[arg(long)]
    pub(super) lower_is_positive: bool,
    /// Also tabulate at this threshold (positive when score ≥ T, or ≤ T with --lower-is-positive).
    #[arg(long)]
    pub(super) threshold: Option<f64>,
    /// Also give a stratified bootstrap percentile CI of the AUC with this many replicates.
    #[arg(long)]
    pub(super) bootstrap: Option<usize>,
    /// Seed of the bootstrap (the same seed gives the same interval everywhere).
    #[arg(long, default_value_t = 20250520)]
    pub(super) seed: u64,
}

#[derive(Args)]
pub struct CalibrationArgs {
    #[command(flatten)]
    pub(super) data: Data,
    /// Column holding the predicted probability of the positive class, strictly between 0 and 1.
    #[arg(long)]
    pub(super) probability: String,
}

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub(super) data: Data,
    /// The two score columns: --score A --score B (the difference is A − B).
    #[arg(long, num_args = 1, required = true)]
    pub(super) score: Vec<String>,
    /// Treat the two scores as independent samples (no covariance).
    #[arg(long)]
    pub(super) unpaired: bool,
}

#[derive(Args)]
pub struct ProportionArgs {
    #[arg(long)]
    pub(super) x: u64,
    #[arg(long)]
    pub(super) n: u64,
    #[arg(long, default_value_t = 0.95)]
    pub(super) conf_level: f64,
}

#[derive(Args)]
pub struct McNemarArgs {
    /// The 2×2 table in row order: N11,N12,N21,N22 (N12 and N21 are the discordant pairs).
    #[arg(long, value_name = "N11,N12,N21,N22")]
    pub(super) table: String,
}

/// Bad input, said in words.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Stats(#[from] StatsError),
}

pub(super) fn bad(msg: impl Into<String>) -> InputError {
    InputError::Message(msg.into())
}

pub(super) fn put_interval(out: &mut Map<String, Value>, key: &str, i: Option<Interval>) {
    out.insert(format!("{key}_lower"), json!(i.map(|i| i.lower)));
    out.insert(format!("{key}_upper"), json!(i.map(|i| i.upper)));
}

pub(super) fn put_rate(out: &mut Map<String, Value>, key: &str, r: &Rate) {
    out.insert(key.into(), json!(r.value));
    put_interval(out, &format!("{key}_ci_wilson"), r.wilson);
    put_interval(out, &format!("{key}_ci_clopper_pearson"), r.clopper_pearson);
}

/// The columns of interest of a CSV, after the filters.
pub(super) struct Table {
    pub(super) truth: Vec<bool>,
    pub(super) scores: Vec<Vec<Option<f64>>>,
    pub(super) missing_truth: Vec<bool>,
}

pub(super) fn is_missing(s: &str) -> bool {
    matches!(s.trim(), "" | "NA" | "na" | "N/A" | "NaN")
}

pub(super) fn read(data: &Data, score_cols: &[String]) -> Result<Table, InputError> {
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
pub(super) struct Complete {
    pub(super) truth: Vec<bool>,
    pub(super) scores: Vec<Vec<f64>>,
    pub(super) dropped: usize,
}

/// The complete rows of the given score columns, or an error under `--na error`.
pub(super) fn complete(
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
