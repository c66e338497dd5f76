//! `osteo-edc model dataset export` and `model train --from-study`: the
//! retrospective arm, read from the database and the object store, as a
//! training folder the model crate reads.
//!
//! ```text
//! DIR/manifest.csv                      one row per case (osteo_model::manifest)
//! DIR/images/<study number>/<view>.dcm  the stored, de-identified views
//! DIR/dataset.json                      the training-set record the card takes
//! ```
//! Only complete retrospective cases are taken (pathology entered and
//! signed); each is one patient (the screening log enrols a patient once),
//! so the study number is also the patient key the seeded split groups by.
//! The label is the pathology's tier, with intermediate tumours mapped as
//! the study's analysis plan says (the locked plan, else its newest draft),
//! or as `--intermediate` overrides. The views are those the model would
//! take for a prospective case: the first frontal, lateral and oblique
//! view stored, up to the model's three.

use crate::imaging::storage::{FileStore, ObjectStore};
use anyhow::Context;
use osteo_model::dataset::TrainingSetRecord;
use osteo_model::manifest::{self, Label, ManifestRow};
use osteo_trial::audit::Principal;
use osteo_trial::case::pathology::Tier;
use osteo_trial::case::View;
use osteo_trial::store::Db;
use osteo_trial::study::sap::IntermediateMapping;
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub manifest: PathBuf,
    pub images: PathBuf,
    pub record: TrainingSetRecord,
}

/// The study's mapping of intermediate tumours: the locked analysis plan's,
/// else its newest draft's; `None` without a plan.
pub async fn study_mapping(db: &Db) -> anyhow::Result<Option<IntermediateMapping>> {
    let versions = osteo_trial::study::sap_versions(db).await?;
    Ok(versions
        .iter()
        .rev()
        .find(|v| v.locked)
        .or(versions.last())
        .map(|v| v.sap.intermediate))
}

/// Exports the complete retrospective cases into `out` (created; refused
/// when it exists and is not empty, so nothing is overwritten).
pub async fn export(
    db: &Db,
    objects: &FileStore,
    by: &Principal,
    out: &Path,
    mapping: Option<IntermediateMapping>,
) -> anyhow::Result<Exported> {
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_some()
    {
        return Err(crate::cli::usage_error(format!(
            "{} exists and is not empty; give a new folder",
            out.display()
        )));
    }
    let mapping = match mapping {
        Some(m) => m,
        None => study_mapping(db).await?.ok_or_else(|| {
            crate::cli::usage_error(
                "the study has no analysis plan to say how intermediate tumours are labelled; give --intermediate as_benign, as_malignant or excluded".into(),
            )
        })?,
    };
    let cases = osteo_trial::case::retrospective_training_set(db, by)
        .await
        .map_err(|e| crate::cli::usage_error(e.to_string()))?;
    if cases.is_empty() {
        return Err(crate::cli::usage_error(
            "the study has no complete retrospective case (pathology entered and signed) to train on".into(),
        ));
    }
    let images = out.join("images");
    std::fs::create_dir_all(&images).with_context(|| format!("creating {}", images.display()))?;
    let mut rows = Vec::new();
    let mut excluded = 0;
    for case in &cases {
        let label = match (case.tier, mapping) {
            (Tier::Malignant, _) | (Tier::Intermediate, IntermediateMapping::AsMalignant) => {
                Label::Malignant
            }
            (Tier::Benign, _) | (Tier::Intermediate, IntermediateMapping::AsBenign) => {
                Label::Benign
            }
            (Tier::Intermediate, IntermediateMapping::Excluded) => {
                excluded += 1;
                continue;
            }
        };
        let folder = images.join(&case.study_number);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let mut paths: [Option<String>; 3] = [None, None, None];
        for (slot, view) in [View::Frontal, View::Lateral, View::Oblique]
            .into_iter()
            .enumerate()
        {
            let Some(image) = case.images.iter().find(|i| i.view == view) else {
                continue;
            };
            let bytes = objects
                .get(&image.sha256)
                .await
                .with_context(|| {
                    format!(
                        "{}: reading stored view {}",
                        case.study_number, image.sha256
                    )
                })?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: stored view {} is missing",
                        case.study_number,
                        image.sha256
                    )
                })?;
            let name = format!("{}/{}.dcm", case.study_number, view.as_str());
            std::fs::write(images.join(&name), bytes).with_context(|| format!("writing {name}"))?;
            paths[slot] = Some(name);
        }
        let [frontal, lateral, oblique] = paths;
        rows.push(ManifestRow {
            case_id: case.study_number.clone(),
            patient_id: case.study_number.clone(),
            label,
            frontal,
            lateral,
            oblique,
            mask_frontal: None,
            mask_lateral: None,
            clinical: crate::ai::clinical(&case.crf, case.bone_rads),
        });
    }
    if rows.is_empty() {
        return Err(crate::cli::usage_error(
            "every complete retrospective case is intermediate and the mapping excludes them: nothing to train on".into(),
        ));
    }
    let manifest_path = out.join("manifest.csv");
    manifest::write(&manifest_path, &rows)?;
    let kind = osteo_trial::screening::study_kind(db.pool()).await?;
    let mut record = TrainingSetRecord::of(
        &rows,
        &manifest_path,
        &images,
        format!(
            "the retrospective arm of the {} ({} complete cases)",
            match kind {
                osteo_trial::domain::StudyKind::Trial => "trial",
                osteo_trial::domain::StudyKind::Demo => "demonstration study",
            },
            cases.len()
        ),
    )?;
    record.intermediate = Some(mapping.as_str().to_owned());
    record.intermediate_excluded = excluded;
    std::fs::write(
        out.join("dataset.json"),
        serde_json::to_vec_pretty(&record)?,
    )?;
    Ok(Exported {
        manifest: manifest_path,
        images,
        record,
    })
}
