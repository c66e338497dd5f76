//! The locked analysis: computed from the snapshot of the trial data taken
//! at database lock (the canonical export, whose SHA-256 the lock recorded),
//! never from the live tables, with the settings of the signed SAP.
//!
//! Analysed: prospective cases that are complete (pathology signed). The
//! truth is the pathology tier, mapped to benign/malignant by the SAP
//! (intermediate as benign, as malignant, or excluded); the index test is
//! the AI probability; the comparators are each reader's malignancy
//! likelihood and Bone-RADS category.

pub use super::report::{Analysis, ReaderResult};
use super::sap::{IntermediateMapping, ReaderAggregation, Sap};
use crate::analysis::mcnemar::mcnemar;
use crate::analysis::roc::{auc, compare_paired, Direction, Sample};
use crate::analysis::threshold::at_threshold;
use crate::analysis::StatsError;
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
}

fn rows<'a>(snapshot: &'a Value, table: &str) -> impl Iterator<Item = &'a Value> {
    snapshot[table].as_array().into_iter().flatten()
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v[k].as_i64()
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v[k].as_f64()
        .or_else(|| v[k].as_str().and_then(|s| s.parse().ok()))
}

/// The complete prospective cases of a snapshot, with their latest
/// pathology, the prediction and the signed reads.
pub fn cases_from_snapshot(snapshot: &Value) -> Vec<AnalysedCase> {
    let complete: Vec<i64> = rows(snapshot, "cases")
        .filter(|c| c["arm"] == "prospective" && c["state"] == "complete")
        .filter_map(|c| int(c, "id"))
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
    complete
        .into_iter()
        .filter_map(|id| {
            Some(AnalysedCase {
                case_id: id,
                tier: tier.get(&id)?.1.clone(),
                probability: *probability.get(&id)?,
                reads: reads.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
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

/// Computes the report's figures.
pub fn analyse(cases: &[AnalysedCase], sap: &Sap) -> Result<Analysis, StatsError> {
    let level = sap.conf_level;
    let used = labelled(cases, sap.intermediate);
    let truth_v: Vec<bool> = used.iter().map(|(_, t)| *t).collect();
    let prob: Vec<f64> = used.iter().map(|(c, _)| c.probability).collect();
    let ai_sample = Sample::new(&prob, &truth_v, Direction::HigherIsPositive)?;
    let ai_auc = auc(&ai_sample, level)?;
    let ai_auc_bootstrap = crate::analysis::bootstrap::auc_ci(
        &ai_sample,
        super::report::BOOTSTRAP_REPLICATES,
        super::report::BOOTSTRAP_SEED,
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
    for (name, rows) in series {
        let t: Vec<bool> = rows.iter().map(|r| r.4).collect();
        let l: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let cat: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let calls: Vec<f64> = rows.iter().map(|r| if r.2 { 1.0 } else { 0.0 }).collect();
        let p: Vec<f64> = rows.iter().map(|r| r.3).collect();
        let Ok(s) = Sample::new(&l, &t, Direction::HigherIsPositive) else {
            continue;
        };
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
            .map(|i| json!({"case_id": i, "probability": probs[i as usize - 1]}))
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
        let cases = cases_from_snapshot(&snapshot());
        assert_eq!(
            cases.iter().map(|c| c.case_id).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(
            cases[3].tier, "benign",
            "the latest version of the pathology counts"
        );
    }

    #[test]
    fn the_figures_follow_the_sap_mapping_and_agree_with_the_engine() {
        let cases = cases_from_snapshot(&snapshot());
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
}
