//! The locked analysis: computed from the snapshot of the trial data taken
//! at database lock (the canonical export, whose SHA-256 the lock recorded),
//! never from the live tables, with the settings of the signed SAP.
//!
//! Analysed: prospective cases that are complete (pathology signed). The
//! truth is the pathology tier, mapped to benign/malignant by the SAP
//! (intermediate as benign, as malignant, or excluded); the index test is
//! the AI probability; the comparators are each reader's malignancy
//! likelihood and Bone-RADS category.

pub use super::figures::{
    Analysis, ByReference, DeviationRow, EndedCase, PinnedModel, ReaderResult, RocSeries,
    StardFlow, Subgroup, AGE_BANDS,
};
use super::sap::{IntermediateMapping, ReaderAggregation, Sap};
use crate::analysis::mcnemar::mcnemar;
use crate::analysis::mrmc::{obuchowski_rockette, CovarianceMethod, Ratings};
use crate::analysis::roc::{auc, compare_paired, curve, Direction, Sample};
use crate::analysis::threshold::{at_threshold, Rate};
use crate::analysis::StatsError;
use crate::case::crf::ClinicalCrf;
use crate::case::record::InputChange;
use crate::screening::{FlowCounts, ScreeningEntry, ScreeningInput, ScreeningLog};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One analysed case, from the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysedCase {
    pub case_id: i64,
    /// `benign`, `intermediate` or `malignant`.
    pub tier: String,
    pub probability: f64,
    /// reader id → (likelihood 0–100, Bone-RADS category, malignant call).
    pub reads: BTreeMap<i64, (f64, f64, bool)>,
    /// From the latest CRF: sex and bone codes, age in years.
    pub sex: Option<String>,
    pub age_years: Option<u16>,
    pub bone: Option<String>,
    /// The prediction's out-of-domain flag; `None` where it was not judged.
    pub outside_domain: Option<bool>,
}

/// What the analysis reads from a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysed {
    /// The complete prospective cases.
    pub cases: Vec<AnalysedCase>,
    /// The prospective screening log's counts (latest version of each entry).
    pub screening: FlowCounts,
    /// Prospective cases ended before the reference standard.
    pub ended_early: usize,
    /// Complete prospective cases without a prediction (or pathology) in the
    /// snapshot: not analysable, reported in the flow diagram.
    pub no_index_test: usize,
    /// Every case ended after enrolment (both arms), in study-number order.
    pub ended: Vec<EndedCase>,
    /// Every protocol deviation, in the order recorded.
    pub deviations: Vec<DeviationRow>,
    /// The pinned model (the latest pin).
    pub model: Option<PinnedModel>,
}

/// The printed study numbers of the snapshot's cases, by case id.
fn study_numbers(snapshot: &Value) -> BTreeMap<i64, String> {
    let kind = rows(snapshot, "study")
        .next()
        .and_then(|s| s["kind"].as_str())
        .and_then(|k| k.parse().ok())
        .unwrap_or_default();
    rows(snapshot, "cases")
        .filter_map(|c| {
            let arm: crate::screening::Arm = code(&c["arm"])?;
            Some((int(c, "id")?, arm.label(kind, int(c, "study_no")?)))
        })
        .collect()
}

/// The cases ended after enrolment, with the state each was in.
fn ended(snapshot: &Value, numbers: &BTreeMap<i64, String>) -> Vec<EndedCase> {
    let ends: BTreeMap<i64, &Value> = rows(snapshot, "case_ends")
        .filter_map(|e| Some((int(e, "case_id")?, e)))
        .collect();
    let text = |v: &Value, k: &str| v[k].as_str().map(str::to_owned);
    let mut out: Vec<EndedCase> = rows(snapshot, "cases")
        .filter(|c| c["state"] == "withdrawn" || c["state"] == "excluded")
        .filter_map(|c| {
            let id = int(c, "id")?;
            let e = ends.get(&id);
            Some(EndedCase {
                study_number: numbers.get(&id)?.clone(),
                arm: text(c, "arm")?,
                kind: text(c, "state")?,
                code: e
                    .and_then(|e| text(e, "code"))
                    .or_else(|| text(c, "end_reason"))
                    .unwrap_or_default(),
                from_state: e.and_then(|e| text(e, "from_state")),
                reason: e.and_then(|e| text(e, "reason")).unwrap_or_default(),
                at: e.and_then(|e| text(e, "at")),
                signed_by: e.and_then(|e| text(e, "printed_name")),
            })
        })
        .collect();
    out.sort_by(|a, b| a.study_number.cmp(&b.study_number));
    out
}

/// The protocol deviations of the snapshot.
fn deviations(snapshot: &Value, numbers: &BTreeMap<i64, String>) -> Vec<DeviationRow> {
    let text = |v: &Value, k: &str| v[k].as_str().map(str::to_owned);
    rows(snapshot, "deviations")
        .filter_map(|d| {
            Some(DeviationRow {
                study_number: numbers.get(&int(d, "case_id")?)?.clone(),
                change: InputChange {
                    field: text(d, "field")?,
                    old_value: text(d, "old_value"),
                    new_value: text(d, "new_value"),
                    reason: text(d, "reason").unwrap_or_default(),
                    at: text(d, "at").unwrap_or_default(),
                    signed_by: text(d, "printed_name").unwrap_or_default(),
                },
            })
        })
        .collect()
}

/// The model pinned at lock (the latest pin of the snapshot).
fn pinned_model(snapshot: &Value) -> Option<PinnedModel> {
    let p = rows(snapshot, "model_pins").last()?;
    let text = |k: &str| p[k].as_str().map(str::to_owned);
    Some(PinnedModel {
        model_id: text("model_id")?,
        weights_sha256: text("weights_sha256")?,
        card_sha256: text("card_sha256")?,
        pinned_at: text("pinned_at").unwrap_or_default(),
        signed_by: text("printed_name"),
    })
}

/// The signed analysis plan the snapshot holds (the newest version signed by
/// both the statistician and the PI), if it holds one.
pub fn snapshot_sap(snapshot: &Value) -> Option<(i64, Sap)> {
    let v = rows(snapshot, "sap_versions").last()?;
    Some((
        int(v, "version")?,
        serde_json::from_str(v["settings"].as_str()?).ok()?,
    ))
}

/// The rows of one table of a snapshot (the canonical export).
pub fn rows<'a>(snapshot: &'a Value, table: &str) -> impl Iterator<Item = &'a Value> {
    snapshot[table].as_array().into_iter().flatten()
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v[k].as_i64()
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v[k].as_f64()
        .or_else(|| v[k].as_str().and_then(|s| s.parse().ok()))
}

/// The latest version of each key of a versioned table of a snapshot.
pub fn latest<'a>(snapshot: &'a Value, table: &str, key: &str) -> BTreeMap<i64, &'a Value> {
    let mut out: BTreeMap<i64, &Value> = BTreeMap::new();
    for r in rows(snapshot, table) {
        if let (Some(k), Some(v)) = (int(r, key), int(r, "version")) {
            if out
                .get(&k)
                .is_none_or(|old| int(old, "version").unwrap_or(0) <= v)
            {
                out.insert(k, r);
            }
        }
    }
    out
}

/// A code column (`prospective`, `enrolled`, …) as its enum.
fn code<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// The prospective screening log of a snapshot, counted as the screening
/// page counts it.
fn screening_flow(snapshot: &Value) -> FlowCounts {
    let versions = latest(snapshot, "screening_versions", "screening_id");
    let mut entries: Vec<ScreeningEntry> = rows(snapshot, "screenings")
        .filter(|s| s["arm"] == "prospective")
        .filter_map(|s| {
            let id = int(s, "id")?;
            let v = versions.get(&id)?;
            let recorded = ScreeningInput {
                arm: code(&s["arm"])?,
                screening_date: v["screening_date"].as_str().unwrap_or_default().to_owned(),
                inclusion_met: v["inclusion_met"].as_i64() == Some(1),
                exclusions: v["exclusions"]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|c| c.trim().parse().ok())
                    .collect(),
                outcome: code(&v["outcome"])?,
                not_enrolled_reason: code(&v["not_enrolled_reason"]),
                comment: None,
            };
            Some(ScreeningEntry {
                id,
                site_code: int(s, "site_id").unwrap_or_default().to_string(),
                screening_no: int(s, "screening_no").unwrap_or_default(),
                study_no: int(s, "study_no"),
                study_number: None,
                version: int(v, "version").unwrap_or_default(),
                recorded,
                created_at: String::new(),
                updated_at: String::new(),
            })
        })
        .collect();
    entries.sort_by(|a, b| {
        (a.site_code.as_str(), a.screening_no).cmp(&(b.site_code.as_str(), b.screening_no))
    });
    ScreeningLog::from_entries(entries).flow
}

/// What the analysis needs from a snapshot: the complete prospective cases
/// with their latest pathology and CRF, the prediction and the signed
/// reads, and the counts of the flow diagram.
pub fn from_snapshot(snapshot: &Value) -> Analysed {
    let prospective: Vec<&Value> = rows(snapshot, "cases")
        .filter(|c| c["arm"] == "prospective")
        .collect();
    let ended_early = prospective
        .iter()
        .filter(|c| c["state"] == "withdrawn" || c["state"] == "excluded")
        .count();
    let complete: Vec<i64> = prospective
        .iter()
        .filter(|c| c["state"] == "complete")
        .filter_map(|c| int(c, "id"))
        .collect();
    let crf: BTreeMap<i64, ClinicalCrf> = latest(snapshot, "crf_versions", "case_id")
        .into_iter()
        .filter_map(|(case, v)| Some((case, serde_json::from_str(v["data"].as_str()?).ok()?)))
        .collect();
    let mut tier: BTreeMap<i64, (i64, String)> = BTreeMap::new();
    for p in rows(snapshot, "pathology_versions") {
        if let (Some(case), Some(version), Some(t)) =
            (int(p, "case_id"), int(p, "version"), p["tier"].as_str())
        {
            let e = tier.entry(case).or_insert((version, t.to_owned()));
            if version >= e.0 {
                *e = (version, t.to_owned());
            }
        }
    }
    let probability: BTreeMap<i64, f64> = rows(snapshot, "predictions")
        .filter_map(|p| Some((int(p, "case_id")?, num(p, "probability")?)))
        .collect();
    let outside: BTreeMap<i64, bool> = rows(snapshot, "predictions")
        .filter_map(|p| Some((int(p, "case_id")?, int(p, "out_of_domain")? == 1)))
        .collect();
    let mut reads: BTreeMap<i64, BTreeMap<i64, (f64, f64, bool)>> = BTreeMap::new();
    for r in rows(snapshot, "reads").filter(|r| !r["signed_at"].is_null()) {
        if let (Some(case), Some(reader), Some(l), Some(cat)) = (
            int(r, "case_id"),
            int(r, "reader_id"),
            num(r, "likelihood"),
            num(r, "category"),
        ) {
            reads
                .entry(case)
                .or_default()
                .insert(reader, (l, cat, r["call"] == "malignant"));
        }
    }
    let numbers = study_numbers(snapshot);
    let n_complete = complete.len();
    let cases: Vec<AnalysedCase> = complete
        .into_iter()
        .filter_map(|id| {
            let form = crf.get(&id);
            Some(AnalysedCase {
                case_id: id,
                tier: tier.get(&id)?.1.clone(),
                probability: *probability.get(&id)?,
                reads: reads.remove(&id).unwrap_or_default(),
                sex: form.and_then(|f| f.sex).map(|s| s.as_str().to_owned()),
                age_years: form.and_then(|f| f.age_years),
                bone: form.and_then(|f| f.bone).map(|b| b.as_str().to_owned()),
                outside_domain: outside.get(&id).copied(),
            })
        })
        .collect();
    Analysed {
        no_index_test: n_complete - cases.len(),
        screening: screening_flow(snapshot),
        ended_early,
        cases,
        ended: ended(snapshot, &numbers),
        deviations: deviations(snapshot, &numbers),
        model: pinned_model(snapshot),
    }
}

/// The binary truth under a mapping; `None` for a case left out.
fn truth(tier: &str, mapping: IntermediateMapping) -> Option<bool> {
    match (tier, mapping) {
        ("malignant", _) => Some(true),
        ("benign", _) => Some(false),
        ("intermediate", IntermediateMapping::AsMalignant) => Some(true),
        ("intermediate", IntermediateMapping::AsBenign) => Some(false),
        _ => None,
    }
}

fn labelled(cases: &[AnalysedCase], mapping: IntermediateMapping) -> Vec<(&AnalysedCase, bool)> {
    cases
        .iter()
        .filter_map(|c| Some((c, truth(&c.tier, mapping)?)))
        .collect()
}

/// The empirical ROC curve as `(1 − specificity, sensitivity)` points.
fn roc_series(name: String, sample: &Sample) -> RocSeries {
    RocSeries {
        name,
        auc: crate::analysis::roc::auc_value(sample),
        points: curve(sample)
            .iter()
            .map(|p| (1.0 - p.specificity, p.sensitivity))
            .collect(),
    }
}

fn age_band(age: u16) -> &'static str {
    AGE_BANDS
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&age))
        .map_or("missing", |b| b.2)
}

/// The AI by sex, age band, bone and the model's training domain (`inside`,
/// `outside`; `missing` where the model's card recorded no domain), levels
/// in a fixed order (the CRF's codes, then `missing`), each level with at
/// least one case.
fn subgroups(
    used: &[(&AnalysedCase, bool)],
    threshold: f64,
    level: f64,
) -> Result<Vec<Subgroup>, StatsError> {
    type Key = fn(&AnalysedCase) -> String;
    let variables: [(&str, Key, Vec<String>); 4] = [
        (
            "sex",
            |c| c.sex.clone().unwrap_or_else(|| "missing".into()),
            crate::case::crf::Sex::ALL
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        ),
        (
            "age_band",
            |c| c.age_years.map_or("missing", age_band).to_owned(),
            AGE_BANDS.iter().map(|b| b.2.to_owned()).collect(),
        ),
        (
            "bone",
            |c| c.bone.clone().unwrap_or_else(|| "missing".into()),
            crate::case::crf::Bone::ALL
                .iter()
                .map(|b| b.as_str().to_owned())
                .collect(),
        ),
        (
            "model_domain",
            |c| {
                match c.outside_domain {
                    Some(true) => "outside",
                    Some(false) => "inside",
                    None => "missing",
                }
                .to_owned()
            },
            vec!["inside".to_owned(), "outside".to_owned()],
        ),
    ];
    let mut out = Vec::new();
    for (variable, key, mut levels) in variables {
        levels.push("missing".to_owned());
        for lv in levels {
            let group: Vec<&(&AnalysedCase, bool)> =
                used.iter().filter(|(c, _)| key(c) == lv).collect();
            if group.is_empty() {
                continue;
            }
            let p: Vec<f64> = group.iter().map(|(c, _)| c.probability).collect();
            let t: Vec<bool> = group.iter().map(|(_, t)| *t).collect();
            let count = |truth: bool, called: bool| {
                p.iter()
                    .zip(&t)
                    .filter(|(p, t)| **t == truth && (**p >= threshold) == called)
                    .count() as u64
            };
            let (tp, fn_, tn, fp) = (
                count(true, true),
                count(true, false),
                count(false, false),
                count(false, true),
            );
            out.push(Subgroup {
                variable: variable.to_owned(),
                level: lv,
                n_malignant: (tp + fn_) as usize,
                n_benign: (tn + fp) as usize,
                auc: Sample::new(&p, &t, Direction::HigherIsPositive)
                    .ok()
                    .map(|s| auc(&s, level))
                    .transpose()?,
                sensitivity: Rate::new(tp, tp + fn_, level)?,
                specificity: Rate::new(tn, tn + fp, level)?,
            });
        }
    }
    Ok(out)
}

/// The flow from the complete cases on: the AI's call against the tier.
fn stard_flow(data: &Analysed, threshold: f64) -> StardFlow {
    // Prospective ends by code (the flow diagram is the prospective arm's).
    let by_code = |kind: &str| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in data
            .ended
            .iter()
            .filter(|e| e.kind == kind && e.arm == "prospective")
        {
            *counts.entry(e.code.clone()).or_default() += 1;
        }
        counts.into_iter().collect::<Vec<_>>()
    };
    let mut flow = StardFlow {
        screening: data.screening.clone(),
        ended_early: data.ended_early,
        excluded_after_enrolment: by_code("excluded"),
        withdrawn: by_code("withdrawn"),
        no_index_test: data.no_index_test,
        ..StardFlow::default()
    };
    for c in &data.cases {
        let arm = if c.probability >= threshold {
            &mut flow.ai_positive
        } else {
            &mut flow.ai_negative
        };
        match c.tier.as_str() {
            "malignant" => arm.malignant += 1,
            "benign" => arm.benign += 1,
            _ => arm.intermediate += 1,
        }
    }
    flow
}

/// Obuchowski–Rockette of the AI against the readers, when at least two
/// readers read every analysed case; `None` otherwise (or when the F test is
/// undefined, e.g. identical reader AUCs).
fn ai_vs_readers_mrmc(
    used: &[(&AnalysedCase, bool)],
    readers: &[i64],
    level: f64,
) -> Option<crate::analysis::mrmc::MrmcResult> {
    if readers.len() < 2
        || used
            .iter()
            .any(|(c, _)| readers.iter().any(|r| !c.reads.contains_key(r)))
    {
        return None;
    }
    let ai: Vec<f64> = used.iter().map(|(c, _)| c.probability).collect();
    let ratings = Ratings {
        scores: vec![
            readers.iter().map(|_| ai.clone()).collect(),
            readers
                .iter()
                .map(|r| used.iter().map(|(c, _)| c.reads[r].0).collect())
                .collect(),
        ],
        truth: used.iter().map(|(_, t)| *t).collect(),
    };
    obuchowski_rockette(&ratings, CovarianceMethod::DeLong, level).ok()
}

/// Computes the report's figures.
pub fn analyse(data: &Analysed, sap: &Sap) -> Result<Analysis, StatsError> {
    let cases = &data.cases;
    let level = sap.conf_level;
    let used = labelled(cases, sap.intermediate);
    let truth_v: Vec<bool> = used.iter().map(|(_, t)| *t).collect();
    let prob: Vec<f64> = used.iter().map(|(c, _)| c.probability).collect();
    let ai_sample = Sample::new(&prob, &truth_v, Direction::HigherIsPositive)?;
    let ai_auc = auc(&ai_sample, level)?;
    let ai_auc_bootstrap = crate::analysis::bootstrap::auc_ci(
        &ai_sample,
        super::figures::BOOTSTRAP_REPLICATES,
        super::figures::BOOTSTRAP_SEED,
        level,
    )?;
    let ai_at_threshold = at_threshold(
        &prob,
        &truth_v,
        sap.threshold,
        Direction::HigherIsPositive,
        level,
    )?;

    // The comparators: each reader, or the mean likelihood of a case's readers.
    let mut readers_ids: Vec<i64> = used
        .iter()
        .flat_map(|(c, _)| c.reads.keys().copied())
        .collect();
    readers_ids.sort_unstable();
    readers_ids.dedup();
    type Scored = (String, Vec<(f64, f64, bool, f64, bool)>);
    let series: Vec<Scored> = match sap.readers {
        ReaderAggregation::EachReader => readers_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let rows = used
                    .iter()
                    .filter_map(|(c, t)| {
                        c.reads
                            .get(id)
                            .map(|(l, cat, call)| (*l, *cat, *call, c.probability, *t))
                    })
                    .collect();
                (format!("reader {}", i + 1), rows)
            })
            .collect(),
        ReaderAggregation::MeanLikelihood => {
            let rows = used
                .iter()
                .filter(|(c, _)| !c.reads.is_empty())
                .map(|(c, t)| {
                    let k = c.reads.len() as f64;
                    let l = c.reads.values().map(|r| r.0).sum::<f64>() / k;
                    let cat = c.reads.values().map(|r| r.1).sum::<f64>() / k;
                    let call = c.reads.values().filter(|r| r.2).count() * 2 > c.reads.len();
                    (l, cat, call, c.probability, *t)
                })
                .collect();
            vec![("mean of readers".to_owned(), rows)]
        }
    };
    let mut readers = Vec::new();
    let mut roc = vec![roc_series("AI".to_owned(), &ai_sample)];
    for (name, rows) in series {
        let t: Vec<bool> = rows.iter().map(|r| r.4).collect();
        let l: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let cat: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let calls: Vec<f64> = rows.iter().map(|r| if r.2 { 1.0 } else { 0.0 }).collect();
        let p: Vec<f64> = rows.iter().map(|r| r.3).collect();
        let Ok(s) = Sample::new(&l, &t, Direction::HigherIsPositive) else {
            continue;
        };
        roc.push(roc_series(format!("{name} likelihood"), &s));
        if let Ok(b) = Sample::new(&cat, &t, Direction::HigherIsPositive) {
            roc.push(roc_series(format!("{name} Bone-RADS"), &b));
        }
        // AI right / reader right, for McNemar.
        let (mut n11, mut n12, mut n21, mut n22) = (0, 0, 0, 0);
        for r in &rows {
            let ai_right = (r.3 >= sap.threshold) == r.4;
            let reader_right = r.2 == r.4;
            match (ai_right, reader_right) {
                (true, true) => n11 += 1,
                (true, false) => n12 += 1,
                (false, true) => n21 += 1,
                (false, false) => n22 += 1,
            }
        }
        readers.push(ReaderResult {
            reader: name,
            n: rows.len(),
            auc_likelihood: auc(&s, level)?,
            auc_bone_rads: Sample::new(&cat, &t, Direction::HigherIsPositive)
                .ok()
                .and_then(|s| auc(&s, level).ok()),
            call: at_threshold(&calls, &t, 0.5, Direction::HigherIsPositive, level)?,
            ai_vs_reader: compare_paired(
                &p,
                &l,
                &t,
                Direction::HigherIsPositive,
                Direction::HigherIsPositive,
                level,
            )?,
            mcnemar: mcnemar(n11, n12, n21, n22),
        });
    }
    let sensitivity = IntermediateMapping::ALL
        .iter()
        .filter(|m| **m != sap.intermediate)
        .map(|m| {
            let used = labelled(cases, *m);
            let t: Vec<bool> = used.iter().map(|(_, t)| *t).collect();
            let p: Vec<f64> = used.iter().map(|(c, _)| c.probability).collect();
            let est = Sample::new(&p, &t, Direction::HigherIsPositive)
                .ok()
                .and_then(|s| auc(&s, level).ok());
            (*m, est)
        })
        .collect();
    Ok(Analysis {
        sap: sap.clone(),
        primary_endpoint: super::sap::PRIMARY_ENDPOINT.to_owned(),
        n_complete: cases.len(),
        n_excluded_intermediate: cases.len() - used.len(),
        n_malignant: truth_v.iter().filter(|t| **t).count(),
        n_benign: truth_v.iter().filter(|t| !**t).count(),
        ai_auc,
        ai_auc_bootstrap,
        ai_at_threshold,
        readers,
        sensitivity,
        flow: stard_flow(data, sap.threshold),
        roc,
        subgroups: subgroups(&used, sap.threshold, level)?,
        mrmc: ai_vs_readers_mrmc(&used, &readers_ids, level),
        ended: data.ended.clone(),
        deviations: data.deviations.clone(),
        model: data.model.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot() -> Value {
        // Six complete prospective cases, one withdrawn, one retrospective.
        let cases: Vec<Value> = (1..=8)
            .map(|i| {
                json!({"id": i, "arm": if i == 8 { "retrospective" } else { "prospective" },
                       "state": if i == 7 { "withdrawn" } else { "complete" }})
            })
            .collect();
        let tiers = [
            "malignant",
            "malignant",
            "benign",
            "benign",
            "intermediate",
            "benign",
            "malignant",
            "malignant",
        ];
        let probs = [0.9, 0.6, 0.3, 0.7, 0.55, 0.1, 0.99, 0.99];
        let mut pathology: Vec<Value> = (1..=8)
            .map(|i| json!({"case_id": i, "version": 1, "tier": tiers[i as usize - 1]}))
            .collect();
        // A correction: case 4 was first entered as malignant.
        pathology.push(json!({"case_id": 4, "version": 0, "tier": "malignant"}));
        let predictions: Vec<Value> = (1..=8)
            // Case 3's views were outside the model's training domain;
            // case 6's model recorded no domain (not judged).
            .map(|i| {
                let domain = match i {
                    3 => json!(1),
                    6 => Value::Null,
                    _ => json!(0),
                };
                json!({"case_id": i, "probability": probs[i as usize - 1], "out_of_domain": domain})
            })
            .collect();
        let reads: Vec<Value> = (1..=6)
            .map(|i| {
                let malignant = i <= 2 || i == 4;
                json!({"case_id": i, "reader_id": 3, "likelihood": if malignant { 70 } else { 20 }, "category": if malignant { 4 } else { 2 },
                       "call": if malignant { "malignant" } else { "benign" }, "signed_at": "2025-10-01T00:00:00.000000Z"})
            })
            .collect();
        json!({"cases": cases, "pathology_versions": pathology, "predictions": predictions, "reads": reads})
    }

    fn sap(intermediate: IntermediateMapping) -> Sap {
        Sap {
            threshold: 0.5,
            intermediate,
            readers: ReaderAggregation::EachReader,
            conf_level: 0.95,
        }
    }

    #[test]
    fn only_complete_prospective_cases_with_their_latest_pathology_are_analysed() {
        let data = from_snapshot(&snapshot());
        assert_eq!(
            data.cases.iter().map(|c| c.case_id).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(
            data.cases[3].tier, "benign",
            "the latest version of the pathology counts"
        );
    }

    #[test]
    fn the_figures_follow_the_sap_mapping_and_agree_with_the_engine() {
        let cases = from_snapshot(&snapshot());
        let a = analyse(&cases, &sap(IntermediateMapping::Excluded)).unwrap();
        assert_eq!(
            (
                a.n_complete,
                a.n_excluded_intermediate,
                a.n_malignant,
                a.n_benign
            ),
            (6, 1, 2, 3)
        );
        // Malignant 0.9, 0.6; benign 0.3, 0.7, 0.1: 5 of 6 pairs ordered.
        assert!((a.ai_auc.auc - 5.0 / 6.0).abs() < 1e-12);
        let t = a.ai_at_threshold.table;
        assert_eq!((t.tp, t.fp, t.fn_, t.tn), (2, 1, 0, 2));
        assert_eq!(a.readers.len(), 1);
        let r = &a.readers[0];
        // The reader: likelihood 70 for cases 1, 2, 4 and 20 for 3, 6.
        assert!((r.auc_likelihood.auc - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            (r.mcnemar.b, r.mcnemar.c),
            (0, 0),
            "AI and reader are right and wrong on the same cases"
        );
        let as_malignant = a
            .sensitivity
            .iter()
            .find(|(m, _)| *m == IntermediateMapping::AsMalignant)
            .unwrap();
        // Adding the intermediate case (0.55) as malignant: pairs 3 × 3 = 9, ordered 7.
        assert!((as_malignant.1.as_ref().unwrap().auc - 7.0 / 9.0).abs() < 1e-12);
        let b = analyse(&cases, &sap(IntermediateMapping::AsBenign)).unwrap();
        assert_eq!((b.n_malignant, b.n_benign), (2, 4));
    }

    #[test]
    fn flow_subgroups_roc_and_mrmc_come_from_the_snapshot() {
        let mut snap = snapshot();
        // The prospective log: 1–6 and 7 enrolled, 8 excluded E1+E3, 9 declined;
        // one retrospective entry, which the prospective flow leaves out.
        let outcome = |i: i64| match i {
            8 => ("excluded", "E1,E3", None),
            9 => ("not_enrolled", "", Some("declined")),
            _ => ("enrolled", "", None),
        };
        let screenings: Vec<Value> = (1..=10)
            .map(|i| {
                json!({"id": i, "site_id": 1, "screening_no": if i == 10 { 1 } else { i },
                            "arm": if i == 10 { "retrospective" } else { "prospective" }})
            })
            .collect();
        let versions: Vec<Value> = (1..=10)
            .map(|i| {
                let (o, e, r) = outcome(i);
                json!({"screening_id": i, "version": 1, "screening_date": "2025-07-01",
                       "inclusion_met": 1, "exclusions": e, "outcome": o, "not_enrolled_reason": r})
            })
            .collect();
        snap["screenings"] = json!(screenings);
        snap["screening_versions"] = json!(versions);
        // Sex and age from the CRF: cases 1–3 female aged 12, 4–6 male aged 65.
        snap["crf_versions"] = json!((1..=6)
            .map(|i| {
                let form = if i <= 3 {
                    json!({"sex": "female", "age_years": 12, "bone": "femur"})
                } else {
                    json!({"sex": "male", "age_years": 65, "bone": "femur"})
                };
                json!({"case_id": i, "version": 1, "data": form.to_string()})
            })
            .collect::<Vec<_>>());
        // A second reader on every case.
        let mut reads = snap["reads"].as_array().unwrap().clone();
        for (i, l) in (1..=6).zip([60, 40, 30, 80, 50, 10]) {
            reads.push(
                json!({"case_id": i, "reader_id": 5, "likelihood": l, "category": 3,
                              "call": if l >= 50 { "malignant" } else { "benign" },
                              "signed_at": "2025-10-01T00:00:00.000000Z"}),
            );
        }
        snap["reads"] = json!(reads);

        let data = from_snapshot(&snap);
        assert_eq!((data.ended_early, data.no_index_test), (1, 0));
        let a = analyse(&data, &sap(IntermediateMapping::Excluded)).unwrap();
        let f = &a.flow;
        assert_eq!(
            (
                f.screening.screened,
                f.screening.enrolled_prospective,
                f.screening.excluded
            ),
            (9, 7, 1)
        );
        assert_eq!(
            (
                f.screening.excluded_e1,
                f.screening.excluded_e3,
                f.screening.declined
            ),
            (1, 1, 1)
        );
        // Threshold 0.5: positive 1 (0.9, M), 2 (0.6, M), 4 (0.7, B), 5 (0.55, I).
        assert_eq!(
            f.ai_positive,
            ByReference {
                malignant: 2,
                benign: 1,
                intermediate: 1
            }
        );
        assert_eq!(
            f.ai_negative,
            ByReference {
                malignant: 0,
                benign: 2,
                intermediate: 0
            }
        );
        // Sex: female = cases 1, 2 (M), 3 (B); male = 4, 6 (B) and 5 left out.
        let female = a
            .subgroups
            .iter()
            .find(|g| g.variable == "sex" && g.level == "female")
            .unwrap();
        assert_eq!((female.n_malignant, female.n_benign), (2, 1));
        assert_eq!(female.auc.as_ref().unwrap().auc, 1.0);
        let male = a
            .subgroups
            .iter()
            .find(|g| g.variable == "sex" && g.level == "male")
            .unwrap();
        assert_eq!(
            (male.n_malignant, male.n_benign, male.auc.is_none()),
            (0, 2, true)
        );
        assert_eq!((male.specificity.x, male.specificity.n), (1, 2));
        let bands: Vec<&str> = a
            .subgroups
            .iter()
            .filter(|g| g.variable == "age_band")
            .map(|g| g.level.as_str())
            .collect();
        assert_eq!(bands, ["0-17", "60+"]);
        // The model's training domain: inside 1, 2 (M) and 4 (B); outside 3
        // (B); not judged 6 (B).
        let domain: Vec<(&str, usize, usize)> = a
            .subgroups
            .iter()
            .filter(|g| g.variable == "model_domain")
            .map(|g| (g.level.as_str(), g.n_malignant, g.n_benign))
            .collect();
        assert_eq!(
            domain,
            [("inside", 2, 1), ("outside", 0, 1), ("missing", 0, 1)]
        );
        // ROC: the AI and, for each reader, likelihood and Bone-RADS
        // (reader 2's category is constant: a single diagonal step).
        let names: Vec<&str> = a.roc.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AI",
                "reader 1 likelihood",
                "reader 1 Bone-RADS",
                "reader 2 likelihood",
                "reader 2 Bone-RADS"
            ]
        );
        assert_eq!(a.roc[0].points.first(), Some(&(0.0, 0.0)));
        assert_eq!(a.roc[0].points.last(), Some(&(1.0, 1.0)));
        assert!((a.roc[0].auc - a.ai_auc.auc).abs() < 1e-15);
        // MRMC: two readers read every analysed case.
        let m = a
            .mrmc
            .as_ref()
            .expect("two complete readers give an MRMC analysis");
        assert_eq!((m.modalities, m.readers), (2, 2));
        assert!((m.modality_auc[0] - a.ai_auc.auc).abs() < 1e-12);
        let mean_reader = (a.readers[0].auc_likelihood.auc + a.readers[1].auc_likelihood.auc) / 2.0;
        assert!((m.modality_auc[1] - mean_reader).abs() < 1e-12);
    }
}
