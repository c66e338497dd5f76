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
//!
//! [`seed_retrospective`] does the same for the retrospective arm, to the
//! end (read and pathology signed): `osteo-edc demo retrospective` fills a
//! new hospital's EDC with it for the federated-learning demo.

use anyhow::Context;
use osteo_model::phantom::{self, PhantomCase, PhantomConfig};
use osteo_trial::accounts::SigningSecret;
use osteo_trial::audit::Principal;
use osteo_trial::case::bonerads::{Features, Margin, Periosteal};
use osteo_trial::case::crf::{ClinicalCrf, ErosionDepth};
use osteo_trial::case::pathology::{Behaviour, Entity, PathologyInput, Procedure, WHO_2020};
use osteo_trial::case::{self, Call, CaseError, ReadInput, SignatureMeaning};
use osteo_trial::domain::{AuditSource, CaseId};
use osteo_trial::screening::{self, Arm, ScreeningInput};
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

/// The Bone-RADS rule table the phantoms are scored with.
const RULE_TABLE: &str = "acr-2023-stm4";

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
    let by = demo_account(db, "coordinator", AuditSource::System).await?;
    let mut numbers = Vec::with_capacity(n);
    let cases = phantom::generate(n, &config());
    for (case, screened) in cases.iter().zip(consecutive_days(n)?) {
        let (number, case_id) = enrol(
            db,
            store,
            limits,
            &by,
            case,
            Arm::Prospective,
            screened,
            &format!("seed {SEED}"),
        )
        .await?;
        osteo_trial::case::assign_reader(db, &by, case_id, "radiologist")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("assigning the demo radiologist to {number}"))?;
        numbers.push(number);
    }
    Ok(numbers)
}

/// The signing passwords of the demo coordinator and the demo radiologist
/// (their one-time passwords, known only to the command that just created
/// the accounts).
pub struct Signers<'a> {
    pub coordinator: &'a str,
    pub radiologist: &'a str,
}

/// Enrols `cases` (drawn with `drawn`, a description kept in each
/// screening's comment) as **complete retrospective** cases of the
/// demonstration study: a hospital's back catalogue, as
/// `osteo-edc demo retrospective` makes it for the federated-learning demo.
///
/// Each case takes the retrospective arm's own path, through the same
/// service functions as the pages: screened and enrolled by the demo
/// coordinator, its frontal and lateral views stored through the upload's
/// ingest, its clinical CRF completed; then the demo radiologist's read,
/// the one [`read`] gives, saved and signed; then the pathology the
/// phantom's label stands for ([`pathology`]) entered and signed by the
/// coordinator. Every signature checks the account's password, as a
/// signature on a page does. No model is ever run on these cases (the
/// retrospective arm has no AI lock). Returns the study numbers.
pub async fn seed_retrospective(
    db: &Db,
    store: &dyn ObjectStore,
    limits: &Limits,
    cases: &[PhantomCase],
    drawn: &str,
    signers: &Signers<'_>,
) -> anyhow::Result<Vec<String>> {
    let coordinator = demo_account(db, "coordinator", AuditSource::Cli).await?;
    let radiologist = demo_account(db, "radiologist", AuditSource::Cli).await?;
    // The phantoms' scores follow ACR 2023 with a soft-tissue mass at 4
    // points: the demo investigator confirms that table before the first read.
    if osteo_trial::study::settings(db)
        .await?
        .rule_version
        .is_none()
    {
        let investigator = demo_account(db, "investigator", AuditSource::Cli).await?;
        osteo_trial::study::confirm_rule_table(db, &investigator, RULE_TABLE)
            .await
            .map_err(|e| anyhow::anyhow!("confirming the Bone-RADS rule table: {e}"))?;
    }
    let coordinator_secret = SigningSecret::new(signers.coordinator, None);
    let radiologist_secret = SigningSecret::new(signers.radiologist, None);
    let mut numbers = Vec::with_capacity(cases.len());
    for (i, (case, screened)) in cases.iter().zip(consecutive_days(cases.len())?).enumerate() {
        let (number, case_id) = enrol(
            db,
            store,
            limits,
            &coordinator,
            case,
            Arm::Retrospective,
            screened,
            drawn,
        )
        .await?;
        let step = |what: &'static str| {
            let number = number.clone();
            move |e: CaseError| anyhow::anyhow!("{number}: {what}: {e}")
        };
        case::assign_reader(db, &coordinator, case_id, "radiologist")
            .await
            .map_err(step("assigning the demo radiologist"))?;
        case::save_read(db, &radiologist, case_id, read(case)?)
            .await
            .map_err(step("the read"))?;
        case::sign_read(db, &radiologist, case_id, &radiologist_secret)
            .await
            .map_err(step("signing the read"))?;
        case::enter_pathology(
            db,
            &coordinator,
            case_id,
            pathology(case, i, screened),
            None,
        )
        .await
        .map_err(step("the pathology"))?;
        case::sign_pathology(
            db,
            &coordinator,
            case_id,
            SignatureMeaning::Author,
            &coordinator_secret,
        )
        .await
        .map_err(step("signing the pathology"))?;
        numbers.push(number);
    }
    Ok(numbers)
}

/// A demo account acting from `source`.
async fn demo_account(db: &Db, username: &str, source: AuditSource) -> anyhow::Result<Principal> {
    let user = osteo_trial::accounts::find_by_username(db, username)
        .await?
        .with_context(|| format!("the demo cases need the demo account `{username}`"))?;
    Ok(user.principal(source))
}

/// `n` consecutive screening days, the last yesterday: three days apart,
/// or closer when that would start before the study period (several
/// patients a day for thousands of cases).
fn consecutive_days(n: usize) -> anyhow::Result<impl Iterator<Item = chrono::NaiveDate>> {
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").context("a date");
    let yesterday = day(&screening::latest_screening_date())? - chrono::Duration::days(1);
    let span = (yesterday - day(screening::STUDY_START)?).num_days().max(0);
    let n64 = i64::try_from(n.max(1)).context("the number of cases")?;
    // Patients per day and days between them, the first on or after the start.
    let per_day = (n64 + span).div_euclid(span + 1).max(1);
    let step = (span / n64.div_euclid(per_day).max(1)).clamp(0, 3);
    Ok((0..n64).map(move |i| {
        let back = (n64 - 1 - i).div_euclid(per_day) * step;
        yesterday - chrono::Duration::days(back)
    }))
}

/// Screens and enrols one phantom case in `arm` on `screened`, stores its
/// views through the upload's ingest, marks them complete and completes its
/// clinical CRF; returns its study number and id.
#[allow(clippy::too_many_arguments)]
async fn enrol(
    db: &Db,
    store: &dyn ObjectStore,
    limits: &Limits,
    by: &Principal,
    case: &PhantomCase,
    arm: Arm,
    screened: chrono::NaiveDate,
    drawn: &str,
) -> anyhow::Result<(String, CaseId)> {
    let entry = screening::screen(
        db,
        by,
        ScreeningInput::enrolled(
            arm,
            screened.format("%Y-%m-%d").to_string(),
            Some(format!(
                "demo case: synthetic radiograph phantom {} ({drawn})",
                case.case_id
            )),
        ),
    )
    .await
    .with_context(|| format!("screening demo case {}", case.case_id))?;
    let number = entry
        .study_number
        .context("an enrolled screening has a study number")?;
    let case_id = case::find_case(db, &number)
        .await?
        .map(CaseId::new)
        .with_context(|| format!("the case of {number}"))?;
    for v in 0..case.views.len() {
        let bytes = case.dicom(v).map_err(anyhow::Error::msg)?;
        imaging::ingest(db, store, by, case_id, bytes, None, limits.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("the radiographs of demo case {number}"))?;
    }
    case::complete_images(db, by, case_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("the radiographs of demo case {number}"))?;
    case::save_crf(db, by, case_id, crf(case, screened)?, true, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("the CRF of demo case {number}"))?;
    Ok((number, case_id))
}

/// The read of a phantom case: the features its Bone-RADS score was drawn
/// from (the generator's reader grades the margin one step off a fifth of
/// the time; that grade is recovered from the score), so that the study's
/// ACR 2023 table gives the phantom's own points and category. The call
/// and the likelihood follow the category.
fn read(case: &PhantomCase) -> anyhow::Result<ReadInput> {
    let c = &case.clinical;
    let f = &case.features;
    let fracture = c.pathological_fracture.unwrap_or(false);
    let primary = c.known_primary_malignancy.unwrap_or(false);
    let others = 4 * u8::from(f.periosteal_aggressive)
        + 2 * u8::from(f.cortical_breach)
        + 2 * u8::from(fracture)
        + 4 * u8::from(f.soft_tissue_mass)
        + 2 * u8::from(primary);
    let points = c
        .bone_rads_points
        .with_context(|| format!("phantom {} has no Bone-RADS score", case.case_id))?
        as u8;
    let margin = match points.checked_sub(others) {
        Some(1) => Margin::IA,
        Some(3) => Margin::IB,
        Some(5) => Margin::II,
        Some(7) => Margin::IIIA,
        _ => anyhow::bail!(
            "phantom {}: Bone-RADS {points} points is not a margin grade plus its features",
            case.case_id
        ),
    };
    let category = c.bone_rads_category.unwrap_or(1);
    Ok(ReadInput {
        features: Features {
            margin: Some(margin),
            periosteal: if f.periosteal_aggressive {
                Periosteal::Aggressive
            } else {
                Periosteal::None
            },
            endosteal_erosion: if f.cortical_breach {
                ErosionDepth::OverTwoThirds
            } else {
                ErosionDepth::UnderOneThird
            },
            pathological_fracture: fracture,
            soft_tissue_mass: f.soft_tissue_mass,
            known_primary_malignancy: primary,
        },
        likelihood: [5, 5, 20, 60, 90][usize::from(category.min(4))],
        call: if category >= 3 {
            Call::Malignant
        } else {
            Call::Benign
        },
        comment: None,
    })
}

/// The pathology a phantom's recorded label stands for: a benign or a
/// malignant WHO 2020 entity (never an intermediate one, never an "other"
/// entry), taken in turn by the case's place `i`, from a biopsy a week
/// before the case was screened.
fn pathology(case: &PhantomCase, i: usize, screened: chrono::NaiveDate) -> PathologyInput {
    let behaviour = if case.label.is_malignant() {
        Behaviour::Malignant3
    } else {
        Behaviour::Benign0
    };
    let entities: Vec<&Entity> = WHO_2020
        .iter()
        .filter(|e| e.behaviour == behaviour && !e.code.starts_with("other_"))
        .collect();
    PathologyInput {
        entity: entities[i % entities.len()].code.to_owned(),
        behaviour: Some(behaviour),
        procedure: Procedure::Biopsy,
        specimen_date: (screened - chrono::Duration::days(7))
            .format("%Y-%m-%d")
            .to_string(),
        pathologist: "Demo Pathologist".to_owned(),
        comment: Some(format!("synthetic phantom {}", case.case_id)),
    }
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

    /// Screening days run up to yesterday in order and never start before
    /// the study period, however many cases there are.
    #[test]
    fn consecutive_days_fit_the_study_period() {
        let start = chrono::NaiveDate::parse_from_str(screening::STUDY_START, "%Y-%m-%d")
            .expect("the start");
        for n in [1, 6, 160, 2_000, 20_000] {
            let days: Vec<_> = consecutive_days(n).expect("days").collect();
            assert_eq!(days.len(), n);
            assert!(days.windows(2).all(|w| w[0] <= w[1]), "{n}: in order");
            assert!(days[0] >= start, "{n}: {} is before the study", days[0]);
            assert_eq!(
                days[n - 1].format("%Y-%m-%d").to_string(),
                (chrono::NaiveDate::parse_from_str(
                    &screening::latest_screening_date(),
                    "%Y-%m-%d"
                )
                .expect("today")
                    - chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string()
            );
        }
        let six: Vec<_> = consecutive_days(6).expect("days").collect();
        assert_eq!(
            (six[1] - six[0]).num_days(),
            3,
            "a few cases, three days apart"
        );
    }

    /// The read of a drawn case scores, with the study's ACR 2023 table,
    /// the points and category the generator gave it, so that the exported
    /// training set carries the same Bone-RADS as a phantom folder; and its
    /// pathology passes the checks and stands for its label.
    #[test]
    fn a_phantoms_read_and_pathology_are_its_own() {
        let table = osteo_trial::case::bonerads::RuleTable::defaults()
            .into_iter()
            .find(|(v, _)| *v == RULE_TABLE)
            .expect("the table")
            .1;
        let screened = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        // Small views: the read and the pathology follow the drawn
        // features and label, not the pixels.
        let small = PhantomConfig {
            width: 48,
            height: 64,
            seed: 7,
            ..PhantomConfig::default()
        };
        let cases = phantom::generate(200, &small);
        let mut entities = std::collections::BTreeSet::new();
        for (i, case) in cases.iter().enumerate() {
            let read = read(case).expect("a read");
            let score = table.score(&read.features);
            assert_eq!(
                score.points.map(f32::from),
                case.clinical.bone_rads_points,
                "{}",
                case.case_id
            );
            assert_eq!(Some(score.category), case.clinical.bone_rads_category);
            let p = pathology(case, i, screened)
                .check("2026-06-02")
                .expect("valid pathology");
            assert_eq!(
                p.tier == osteo_trial::case::pathology::Tier::Malignant,
                case.label.is_malignant()
            );
            entities.insert(p.entity);
        }
        assert!(entities.len() > 4, "the entities vary: {entities:?}");
    }
}
