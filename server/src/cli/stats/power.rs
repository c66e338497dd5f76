//! `stats power`: sample size and power of the primary endpoint.

use super::input::{bad, complete, read, Complete, Data, InputError, NaPolicy, PowerArgs};
use serde_json::{json, Map, Value};

/// What a power command solves for.
pub(super) enum Solve {
    SampleSize { power: f64, alpha: f64 },
    Power { n_pos: f64, alpha: f64 },
    Alpha { n_pos: f64, power: f64 },
}

pub(super) fn power_json(a: PowerArgs) -> Result<Value, InputError> {
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
                let c = super::accuracy::compare_two(&scores, &truth, 0.95)?;
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
