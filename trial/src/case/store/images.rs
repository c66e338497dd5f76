//! The radiographs of a case: recorded once the ingest has checked,
//! de-identified and stored them; the views are complete with a frontal and a
//! lateral view.

use super::cases::*;
use crate::audit::{Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::Permission;
use crate::store::{now_utc, Db};
use crate::write::{begin, insert_audited, Tx};
use sqlx::Row;

/// Records a stored radiograph of a case. The image ingest calls this once
/// the file is validated, de-identified and stored under `image.sha256`.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn attach_image(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    image: NewImage,
) -> Result<CaseImage, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::EnterCaseData)?;
    if !crate::codes::is_sha256(&image.sha256) || !crate::codes::is_sha256(&image.original_sha256) {
        return Err(CaseError::Prediction(PredictionError::Hash));
    }
    let mut tx = begin(db, by, "image.attach", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if state != CaseState::Enrolled {
        return Err(IllegalTransition {
            from: state,
            event: CaseEvent::ImagesCompleted,
            hint: "images are added while the case is enrolled and its images are not yet complete"
                .into(),
        }
        .into());
    }
    // Inside the write lock: the same upload, or the same stored object on
    // this case, is refused here before the database's own rules would.
    let duplicate = sqlx::query(
        "SELECT 1 FROM case_images WHERE original_sha256 = $1 OR (case_id = $2 AND sha256 = $3)",
    )
    .bind(&image.original_sha256)
    .bind(case_id)
    .bind(&image.sha256)
    .fetch_optional(&mut *tx)
    .await?;
    if duplicate.is_some() {
        return Err(CaseError::DuplicateImage);
    }
    let insert = sqlx::query(
        "INSERT INTO case_images (case_id, view, sha256, added_at, added_by, original_sha256, modality, transfer_syntax, \
         rows_px, columns_px, photometric, body_part, laterality, warnings) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(case_id)
    .bind(image.view.as_str())
    .bind(&image.sha256)
    .bind(now_utc())
    .bind(by.user_id)
    .bind(&image.original_sha256)
    .bind(&image.modality)
    .bind(&image.transfer_syntax)
    .bind(image.rows)
    .bind(image.columns)
    .bind(&image.photometric)
    .bind(&image.body_part)
    .bind(&image.laterality)
    .bind(serde_json::to_string(&image.warnings)?);
    let id = insert_audited(&mut tx, by, insert, |_| {
        Change::new("image.attach", "case", case_id).field(
            "image",
            None,
            Some(format!(
                "{} {} {} {}x{} stored={} original={}",
                image.view,
                image.modality,
                image.transfer_syntax,
                image.columns,
                image.rows,
                image.sha256,
                image.original_sha256
            )),
        )
    })
    .await?;
    touch(&mut tx, case_id).await?;
    let stored = images(&mut tx, case_id)
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or(CaseError::UnknownCase(case_id))?;
    tx.commit().await?;
    Ok(stored)
}

/// The study number of a case (`P-0007`): what replaces the patient's
/// identifiers in its de-identified images.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn study_number(db: &Db, case_id: CaseId) -> Result<String, CaseError> {
    let case_id = case_id.get();
    Ok(fetch_summary(db.pool(), case_id).await?.0.study_number)
}

/// The case a stored image belongs to, if `by` may see that case's images:
/// the roles that see every case, and the radiologists assigned to it.
/// A statistician never needs the images, and gets `Forbidden`.
#[tracing::instrument(skip_all)]
pub async fn image_for_viewer(db: &Db, by: &Principal, sha256: &str) -> Result<i64, CaseError> {
    let case_id: i64 = sqlx::query("SELECT case_id FROM case_images WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CaseError::UnknownCase(0))?
        .try_get("case_id")?;
    if by.role.can(Permission::ViewCases) {
        return Ok(case_id);
    }
    if by.role.can(Permission::ReadCases) {
        let assigned =
            sqlx::query("SELECT 1 FROM read_assignments WHERE case_id = $1 AND reader_id = $2")
                .bind(case_id)
                .bind(by.user_id.unwrap_or(-1))
                .fetch_optional(db.pool())
                .await?;
        if assigned.is_some() {
            return Ok(case_id);
        }
        return Err(CaseError::NotAssigned);
    }
    Err(CaseError::Forbidden)
}

/// A stored image and its case, as [`images_for_viewer`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerImage {
    pub case_id: i64,
    pub view: View,
    /// SHA-256 of the stored (de-identified) object.
    pub sha256: String,
}

/// Every stored image `by` may see, in the order they were stored, under
/// the rule of [`image_for_viewer`]: all of them for the roles that see
/// every case, the assigned cases' for a radiologist, and `Forbidden` for
/// the others.
#[tracing::instrument(skip_all)]
pub async fn images_for_viewer(db: &Db, by: &Principal) -> Result<Vec<ViewerImage>, CaseError> {
    let rows = if by.role.can(Permission::ViewCases) {
        sqlx::query("SELECT case_id, view, sha256 FROM case_images ORDER BY id")
            .fetch_all(db.pool())
            .await?
    } else if by.role.can(Permission::ReadCases) {
        sqlx::query(
            "SELECT i.case_id, i.view, i.sha256 FROM case_images i \
             JOIN read_assignments a ON a.case_id = i.case_id AND a.reader_id = $1 ORDER BY i.id",
        )
        .bind(by.user_id.unwrap_or(-1))
        .fetch_all(db.pool())
        .await?
    } else {
        return Err(CaseError::Forbidden);
    };
    rows.iter()
        .map(|r| {
            Ok(ViewerImage {
                case_id: r.try_get("case_id")?,
                view: r.try_get::<String, _>("view")?.parse()?,
                sha256: r.try_get("sha256")?,
            })
        })
        .collect()
}

/// The case already holding an image uploaded with this original hash.
#[tracing::instrument(skip_all)]
pub async fn image_by_original(db: &Db, original_sha256: &str) -> Result<Option<i64>, CaseError> {
    Ok(
        sqlx::query("SELECT case_id FROM case_images WHERE original_sha256 = $1")
            .bind(original_sha256)
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.try_get("case_id"))
            .transpose()?,
    )
}

/// The replacement of each original UID, made on first sight and kept, so a
/// study's images keep referring to each other after de-identification.
/// A new UID under the UUID-derived root 2.25 (PS3.5 B.2): 128 random bits.
pub fn new_uid() -> String {
    format!("2.25.{}", u128::from_be_bytes(rand::random::<[u8; 16]>()))
}

/// New UIDs are under the UUID-derived root 2.25 (PS3.5 B.2).
#[tracing::instrument(skip_all)]
pub async fn map_uids(
    db: &Db,
    by: &Principal,
    originals: &[String],
) -> Result<std::collections::HashMap<String, String>, CaseError> {
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "image.uids", "case", 0).await?;
    let mut out = std::collections::HashMap::new();
    for original in originals {
        let existing: Option<String> =
            sqlx::query("SELECT replacement FROM uid_map WHERE original = $1")
                .bind(original)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("replacement"))
                .transpose()?;
        let replacement = match existing {
            Some(r) => r,
            None => {
                let r = new_uid();
                sqlx::query(
                    "INSERT INTO uid_map (original, replacement, created_at) VALUES ($1, $2, $3)",
                )
                .bind(original)
                .bind(&r)
                .bind(now_utc())
                .execute(&mut *tx)
                .await?;
                r
            }
        };
        out.insert(original.clone(), replacement);
    }
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn images(tx: &mut Tx, case_id: i64) -> Result<Vec<CaseImage>, CaseError> {
    let rows = sqlx::query(
        "SELECT id, view, sha256, added_at, modality, rows_px, columns_px, body_part, laterality, warnings \
         FROM case_images WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let warnings: Option<String> = r.try_get("warnings")?;
            Ok(CaseImage {
                id: r.try_get("id")?,
                view: r.try_get::<String, _>("view")?.parse()?,
                sha256: r.try_get("sha256")?,
                added_at: r.try_get("added_at")?,
                modality: r.try_get("modality")?,
                rows: r.try_get("rows_px")?,
                columns: r.try_get("columns_px")?,
                body_part: r.try_get("body_part")?,
                laterality: r.try_get("laterality")?,
                warnings: warnings
                    .map(|w| serde_json::from_str(&w))
                    .transpose()?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The coordinator confirms the radiographs are complete: at least one
/// frontal and one lateral view.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn complete_images(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
) -> Result<CaseState, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "images.complete", "case", case_id).await?;
    let imgs = images(&mut tx, case_id).await?;
    let has = |v: View| imgs.iter().any(|i| i.view == v);
    if !(has(View::Frontal) && has(View::Lateral)) {
        let have = imgs
            .iter()
            .map(|i| i.view.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CaseError::ViewsMissing(if have.is_empty() {
            "none".into()
        } else {
            have
        }));
    }
    let next = advance(&mut tx, by, case_id, CaseEvent::ImagesCompleted, None).await?;
    tx.commit().await?;
    Ok(next)
}
