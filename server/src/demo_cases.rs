//! The demo study's cases, drawn by the phantom generator.
//!
//! On a brand-new database in demo mode (`serve` without `--no-demo`) the
//! server enrols a few consecutive prospective patients drawn by
//! [`osteo_model::phantom`] — the generator the demo model was trained on,
//! with another seed — so that the study has something to show at once.
//! Each is screened and enrolled by the demo coordinator, gets a complete
//! clinical CRF that follows the drawn case (age, sex, bone, symptoms and a
//! lesion description consistent with its radiographs), and its frontal and
//! lateral radiographs are stored through the same ingest as an upload
//! (checked, de-identified, audited), the set marked complete and the demo
//! radiologist assigned. The cases then wait for the blinded read, which is
//! the demo radiologist's to record and sign; after it the model runs as on
//! any case. Everything is audited with the system as its
//! source, on behalf of the demo coordinator.

use anyhow::Context;
use osteo_model::phantom::{self, PhantomCase, PhantomConfig};
use osteo_trial::audit::Principal;
use osteo_trial::case::crf::ClinicalCrf;
use osteo_trial::domain::AuditSource;
use osteo_trial::screening::{self, Arm, Outcome, ScreeningInput};
use osteo_trial::store::Db;

use crate::imaging::storage::ObjectStore;
use crate::imaging::{self, Limits};

/// The phantom generator's seed for the demo study (the demo model was
/// trained on seed 20261127).
pub const SEED: u64 = 20_261_128;

/// How the demo cases' radiographs are drawn: the demo model's size.
fn config() -> PhantomConfig {
    PhantomConfig {
        width: osteo_model::demo::PHANTOM_WIDTH,
        height: osteo_model::demo::PHANTOM_HEIGHT,
        seed: SEED,
        realistic: true,
        ..PhantomConfig::default()
    }
}

/// The pixel spacing the phantoms' files declare, in millimetres.
const PIXEL_MM: f64 = 0.2;

/// Enrols `n` demo cases (see the module's documentation) as the demo
/// coordinator; returns their study numbers.
pub async fn seed(
    db: &Db,
    store: &dyn ObjectStore,
    limits: &Limits,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let coordinator = osteo_trial::accounts::find_by_username(db, "coordinator")
        .await?
        .context("the demo cases need the demo coordinator's account")?;
    let by = Principal {
        user_id: Some(coordinator.id),
        name: coordinator.username.clone(),
        role: coordinator.role,
        source: AuditSource::System,
    };
    let today = chrono::NaiveDate::parse_from_str(&screening::latest_screening_date(), "%Y-%m-%d")
        .context("today's date")?
        - chrono::Duration::days(1);
    let mut numbers = Vec::with_capacity(n);
    for (i, case) in phantom::generate(n, &config()).iter().enumerate() {
        // Consecutive patients, a few days apart, the last one yesterday.
        let screened = today - chrono::Duration::days(3 * (n - 1 - i) as i64);
        let entry = screening::screen(
            db,
            &by,
            ScreeningInput {
                arm: Arm::Prospective,
                screening_date: screened.format("%Y-%m-%d").to_string(),
                inclusion_met: true,
                exclusions: Vec::new(),
                outcome: Outcome::Enrolled,
                not_enrolled_reason: None,
                comment: Some(format!(
                    "demo case: synthetic radiograph phantom {} (seed {SEED})",
                    case.case_id
                )),
            },
        )
        .await
        .with_context(|| format!("screening demo case {}", case.case_id))?;
        let number = entry
            .study_number
            .context("an enrolled screening has a study number")?;
        let case_id = osteo_trial::case::find_case(db, &number)
            .await?
            .map(osteo_trial::domain::CaseId::new)
            .with_context(|| format!("the case of {number}"))?;
        for v in 0..case.views.len() {
            let bytes = case.dicom(v).map_err(anyhow::Error::msg)?;
            imaging::ingest(db, store, &by, case_id, bytes, None, limits.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("the radiographs of demo case {number}"))?;
        }
        osteo_trial::case::complete_images(db, &by, case_id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("the radiographs of demo case {number}"))?;
        osteo_trial::case::save_crf(db, &by, case_id, crf(case, screened)?, true, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("the CRF of demo case {number}"))?;
        osteo_trial::case::assign_reader(db, &by, case_id, "radiologist")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("assigning the demo radiologist to {number}"))?;
        numbers.push(number);
    }
    Ok(numbers)
}

/// The clinical CRF of a phantom case, as a coordinator would fill it from
/// the referral and the radiographs taken on `date`.
fn crf(case: &PhantomCase, date: chrono::NaiveDate) -> anyhow::Result<ClinicalCrf> {
    let c = &case.clinical;
    let f = &case.features;
    let age = c
        .age_years
        .map_or(40, |a| a.round().clamp(1.0, 100.0) as u16);
    // The lesion's extent along the bone, from its mask on the frontal view.
    let rows = case.views.first().map_or(0, |v| {
        v.mask
            .chunks(case.width)
            .filter(|row| row.iter().any(|&m| m))
            .count()
    });
    let size_mm = ((rows as f64 * PIXEL_MM).round() as u16).max(1);
    let value = serde_json::json!({
        "age_years": age,
        "sex": c.sex,
        "symptoms": c.symptoms,
        "symptom_onset_date": (date - chrono::Duration::days(30 + i64::from(age % 60)))
            .format("%Y-%m-%d").to_string(),
        "pathological_fracture": c.pathological_fracture.unwrap_or(false),
        "known_primary_malignancy": c.known_primary_malignancy.unwrap_or(false),
        "lesion_count": "solitary",
        "physis": if age < 18 { "open" } else { "closed" },
        "bone": c.bone.map_or("femur", |b| b.as_str()),
        // The phantoms' files give Image Laterality L.
        "side": "left",
        "longitudinal": c.longitudinal.map_or("metaphysis", |l| l.as_str()),
        "transverse": if f.cortical_breach { "eccentric" } else { "central" },
        "radiograph_date": date.format("%Y-%m-%d").to_string(),
        "density": "lytic",
        "size_mm": size_mm,
        "expansion": f.margin == 0,
        "matrix": "none",
        "cortex": if f.cortical_breach { "destroyed" } else if f.margin == 0 { "intact" } else { "thinned" },
        "soft_tissue_mass": f.soft_tissue_mass,
    });
    serde_json::from_value(value).with_context(|| format!("the CRF of phantom {}", case.case_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every drawn case gives a CRF that passes the edit checks.
    #[test]
    fn the_phantoms_give_complete_valid_crfs() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        for case in phantom::generate(40, &config()) {
            let crf = crf(&case, date).expect("a CRF").normalised();
            assert_eq!(crf.issues("2026-06-02"), Vec::new(), "{}", case.case_id);
            assert!(crf.bone.is_some() && crf.size_mm.is_some_and(|s| s >= 1));
        }
    }
}
