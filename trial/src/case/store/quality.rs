//! The coordinator's marks that a case's radiographs are of poor quality
//! (each proposes exclusion E1).

use super::cases::*;
use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Reason};
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::Row;

/// Marks the case's radiographs as poor quality (a coordinator, with a
/// reason): the case then proposes exclusion E1, which the coordinator
/// confirms by ending the case. Refused once the case has ended.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn mark_poor_quality(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    reason: &Reason,
) -> Result<(), CaseError> {
    let case_id = case_id.get();
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "images.poor_quality", "case", case_id).await?;
    let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
    if summary.state.is_final() {
        return Err(CaseError::CaseClosed(summary.state.to_string()));
    }
    let user = by.user_id.ok_or(CaseError::Forbidden)?;
    sqlx::query(
        "INSERT INTO quality_marks (case_id, reason, marked_at, marked_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(case_id)
    .bind(reason.as_str())
    .bind(now_utc())
    .bind(user)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("images.poor_quality", "case", case_id)
            .field(
                "image_quality",
                None,
                Some("poor: exclusion E1 proposed".to_owned()),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn quality_marks(
    tx: &mut Tx,
    case_id: i64,
) -> Result<Vec<QualityMark>, CaseError> {
    let rows = sqlx::query(
        "SELECT q.reason, q.marked_at, u.display_name FROM quality_marks q JOIN users u ON u.id = q.marked_by \
         WHERE q.case_id = $1 ORDER BY q.id",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QualityMark {
                reason: r.try_get("reason")?,
                marked_at: r.try_get("marked_at")?,
                marked_by: r.try_get("display_name")?,
            })
        })
        .collect()
}
