//! `osteo-edc stats …`: the analysis engine from the command line, for
//! statisticians reproducing a figure from an export and for checking the
//! engine against other software. JSON on stdout; undefined values are
//! `null`; bad input is a clear message and exit code 2.

mod accuracy;
mod bench;
mod input;
mod power;
mod readers;

use input::{bad, complete, put_interval, read, Complete};
pub use input::{InputError, StatsCommand};
use osteo_trial::analysis::mcnemar::mcnemar;
use osteo_trial::analysis::proportion::proportion;
use serde_json::{json, Map, Value};

/// Runs a stats command and returns its JSON.
pub fn run(cmd: StatsCommand) -> Result<Value, InputError> {
    match cmd {
        StatsCommand::Roc(a) => accuracy::roc_json(a),
        StatsCommand::Compare(a) => accuracy::compare_json(a),
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
        StatsCommand::Mrmc(a) => readers::mrmc_json(a),
        StatsCommand::Power(a) => power::power_json(a),
        StatsCommand::Bench(a) => bench::bench_json(a),
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
