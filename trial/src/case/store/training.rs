//! The retrospective arm as the model's training set: every complete
//! retrospective case with its stored (de-identified) views, its clinical
//! CRF, the Bone-RADS score the study's setting names (reads are optional
//! in this arm) and its signed pathology. Reading it is audited.

use super::cases::*;
use super::crf::latest_crf;
use super::images::images;
use super::pathology::latest_pathology;
use super::prediction::{model_score, ModelScore};
use crate::audit::{self, Change, Principal};
use crate::case::bonerads::Score;
use crate::case::crf::ClinicalCrf;
use crate::case::error::CaseError;
use crate::case::pathology::Tier;
use crate::case::record::*;
use crate::domain::Permission;
use crate::store::Db;
use sqlx::Row;

/// One complete retrospective case, as training takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingCase {
    pub case_id: i64,
    /// `R-0001` (`DR-0001` in the demonstration study).
    pub study_number: String,
    /// The stored views, in upload order (their SHA-256 names the object).
    pub images: Vec<CaseImage>,
    pub crf: ClinicalCrf,
    /// The score the study's setting names; `None` when the case has no
    /// signed read that could be scored (reads are optional here).
    pub bone_rads: Option<Score>,
    pub bone_rads_source: BoneRadsSource,
    /// The three-tier label of the newest signed pathology version.
    pub tier: Tier,
    /// The WHO 2020 entity code.
    pub entity: String,
}

/// Every complete retrospective case, by study number. Needs the right to
/// see pathology (`view_unblinded`); the read is audited
/// (`training_set.read`, with the number of cases).
#[tracing::instrument(skip_all)]
pub async fn retrospective_training_set(
    db: &Db,
    by: &Principal,
) -> Result<Vec<TrainingCase>, CaseError> {
    require(by, Permission::ViewUnblinded)?;
    let mut tx = crate::write::transaction(db).await?;
    let ids: Vec<i64> = sqlx::query(
        "SELECT id FROM cases WHERE arm = 'retrospective' AND state = 'complete' ORDER BY study_no",
    )
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for case_id in ids {
        let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
        let crf = latest_crf(&mut tx, case_id)
            .await?
            .filter(|c| c.complete)
            .ok_or(CaseError::UnknownCase(case_id))?
            .data;
        let pathology = latest_pathology(&mut tx, case_id)
            .await?
            .ok_or(CaseError::NothingToSign)?;
        let (bone_rads_source, bone_rads) = match model_score(&mut tx, case_id).await? {
            ModelScore::PrimaryUnsigned => (BoneRadsSource::PrimaryReader, None),
            ModelScore::Score(source, score) => (source, score),
        };
        out.push(TrainingCase {
            case_id,
            study_number: summary.study_number,
            images: images(&mut tx, case_id).await?,
            crf,
            bone_rads,
            bone_rads_source,
            tier: pathology.pathology.tier,
            entity: pathology.pathology.entity,
        });
    }
    audit::append(
        &mut tx,
        by,
        Change::new("training_set.read", "study", 1).field(
            "cases",
            None,
            Some(out.len().to_string()),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}
