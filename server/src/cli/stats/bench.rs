//! `stats bench`: timings of the analysis engine and the locked report on
//! generated data.

use super::input::{bad, BenchArgs, InputError};
use osteo_trial::analysis::roc::{self, Direction, Sample};
use serde_json::{json, Value};

/// Median and fastest of timed runs, in milliseconds.
pub(super) fn timed(
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

pub(super) fn bench_json(a: BenchArgs) -> Result<Value, InputError> {
    use osteo_trial::study::accuracy::{analyse, Analysed, AnalysedCase};
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
                outside_domain: Some(i % 20 == 0),
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
            pdf_bytes = crate::locked_report::render(&locked, locale)
                .map_err(|e| bad(e.to_string()))?
                .len();
        }
        Ok(())
    })?;
    Ok(json!({
        "cases": a.cases,
        "analysed": scores.len(),
        "auc": auc,
        "bootstrap_replicates": osteo_trial::study::figures::BOOTSTRAP_REPLICATES,
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
