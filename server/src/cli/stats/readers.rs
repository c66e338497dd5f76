//! `stats mrmc`: the multi-reader multi-case analysis (Obuchowski–Rockette).

use super::input::{bad, CovarianceArg, InputError, MrmcArgs};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) fn mrmc_json(a: MrmcArgs) -> Result<Value, InputError> {
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
