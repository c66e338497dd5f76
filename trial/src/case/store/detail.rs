//! What a user may see of cases: one case (blinded parts withheld), the
//! case list, worklists and the lookup by study number.

use super::cases::*;
use super::crf::{deviations_of, latest_crf};
use super::end::case_end_of;
use super::images::images;
use super::pathology::latest_pathology;
use super::prediction::{ai_failures, fetch_prediction};
use super::quality::quality_marks;
use super::reads::{assigned, reads_of};
use crate::audit::Principal;
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Role};
use crate::screening::{study_kind, Arm};
use crate::store::Db;
use crate::write::is_locked;
use sqlx::Row;

/// Whether `by` sees unblinded data now: the unblinded roles always, a
/// statistician after database lock, a radiologist never.
pub(super) async fn unblinded(db: &Db, by: &Principal) -> Result<bool, CaseError> {
    Ok(by.role.can(Permission::ViewUnblinded)
        || (by.role == Role::Statistician && is_locked(db.pool()).await?))
}

/// The whole case as `by` may see it.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn case_detail(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
) -> Result<CaseDetail, CaseError> {
    let case_id = case_id.get();
    let all = unblinded(db, by).await?;
    let reader = by.role.can(Permission::ReadCases);
    if !all && !reader {
        return Err(if by.role == Role::Statistician {
            CaseError::Blinded
        } else {
            CaseError::Forbidden
        });
    }
    let mut tx = db.pool().begin().await?;
    let (summary, end_reason) = fetch_summary(&mut *tx, case_id).await?;
    let readers = assigned(&mut tx, case_id).await?;
    let me = by.user_id.unwrap_or(-1);
    if !all && !readers.iter().any(|(id, _)| *id == me) {
        return Err(CaseError::NotAssigned);
    }
    let images = images(&mut tx, case_id).await?;
    let crf = latest_crf(&mut tx, case_id).await?;
    let detail = if all {
        CaseDetail {
            summary,
            end_reason,
            images,
            crf,
            readers: readers.into_iter().map(|(_, n)| n).collect(),
            reads: reads_of(&mut tx, case_id, None).await?,
            prediction: fetch_prediction(&mut tx, case_id).await?,
            pathology: latest_pathology(&mut tx, case_id).await?,
            withheld: vec![],
            ai_failures: ai_failures(&mut tx, case_id).await?,
            quality_marks: quality_marks(&mut tx, case_id).await?,
            end: case_end_of(&mut tx, case_id).await?,
            deviations: deviations_of(&mut tx, Some(case_id)).await?,
        }
    } else {
        CaseDetail {
            summary,
            end_reason,
            images,
            crf,
            readers: readers
                .into_iter()
                .filter(|(id, _)| *id == me)
                .map(|(_, n)| n)
                .collect(),
            reads: reads_of(&mut tx, case_id, Some(me)).await?,
            prediction: None,
            pathology: None,
            withheld: vec!["reads".into(), "prediction".into(), "pathology".into()],
            ai_failures: Vec::new(),
            quality_marks: quality_marks(&mut tx, case_id).await?,
            end: case_end_of(&mut tx, case_id).await?,
            deviations: Vec::new(),
        }
    };
    tx.commit().await?;
    Ok(detail)
}

/// The prediction alone (403 for blinded users).
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn prediction(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
) -> Result<Option<Prediction>, CaseError> {
    let case_id = case_id.get();
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let p = fetch_prediction(&mut tx, case_id).await?;
    tx.commit().await?;
    Ok(p)
}

/// The pathology alone (403 for blinded users).
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn pathology_of(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
) -> Result<Option<PathologyRecord>, CaseError> {
    let case_id = case_id.get();
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let p = latest_pathology(&mut tx, case_id).await?;
    tx.commit().await?;
    Ok(p)
}

/// Every read of a case (403 for blinded users; a radiologist sees their own
/// read on the case page).
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn reads(db: &Db, by: &Principal, case_id: CaseId) -> Result<Vec<Read>, CaseError> {
    let case_id = case_id.get();
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let r = reads_of(&mut tx, case_id, None).await?;
    tx.commit().await?;
    Ok(r)
}

/// Every case (roles that see cases), in study-number order within each arm.
#[tracing::instrument(skip_all)]
pub async fn list_cases(db: &Db, by: &Principal) -> Result<Vec<CaseSummary>, CaseError> {
    require(by, Permission::ViewCases)?;
    summaries(&mut *db.pool().acquire().await?, &all_cases_sql(), by, None).await
}

/// One page of [`list_cases`]: `limit` cases from `offset`, and how many
/// there are in all.
#[tracing::instrument(skip_all)]
pub async fn list_cases_page(
    db: &Db,
    by: &Principal,
    offset: i64,
    limit: i64,
) -> Result<CaseList, CaseError> {
    require(by, Permission::ViewCases)?;
    page_of(
        db,
        &all_cases_sql(),
        "SELECT COUNT(*) FROM cases c",
        by,
        offset,
        limit,
    )
    .await
}

fn all_cases_sql() -> String {
    format!("{SUMMARY_SQL} ORDER BY c.arm, c.study_no")
}

/// What is due for `by`: a coordinator's open steps, a radiologist's reads,
/// a monitor's cases with open queries, everything open for the PI; the
/// longest waiting first.
#[tracing::instrument(skip_all)]
pub async fn worklist(db: &Db, by: &Principal) -> Result<Vec<CaseSummary>, CaseError> {
    match worklist_sql(by.role) {
        Some(sql) => summaries(&mut *db.pool().acquire().await?, &sql, by, None).await,
        None => Ok(Vec::new()),
    }
}

/// One page of [`worklist`]: `limit` cases from `offset`, and how many are
/// due in all.
#[tracing::instrument(skip_all)]
pub async fn worklist_page(
    db: &Db,
    by: &Principal,
    offset: i64,
    limit: i64,
) -> Result<CaseList, CaseError> {
    match (worklist_sql(by.role), worklist_filter(by.role)) {
        (Some(sql), Some(filter)) => {
            let count = format!("SELECT COUNT(*) FROM cases c WHERE {filter}");
            page_of(db, &sql, &count, by, offset, limit).await
        }
        _ => Ok(CaseList::default()),
    }
}

/// Which cases are due for `role` (a condition on `cases c`; `$1` is the
/// user's id), or `None` for the roles without a worklist.
fn worklist_filter(role: Role) -> Option<&'static str> {
    Some(match role {
        Role::Coordinator => {
            "c.state IN ('enrolled', 'images_complete', 'crf_complete', 'ai_locked', 'pathology_entered')"
        }
        Role::Radiologist => {
            "c.state = 'crf_complete' AND EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = c.id \
             AND a.reader_id = $1) AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.case_id = c.id AND r.reader_id = $1 \
             AND r.signed_at IS NOT NULL)"
        }
        Role::Monitor => {
            "EXISTS (SELECT 1 FROM queries q WHERE q.case_id = c.id AND q.status IN ('open', 'answered'))"
        }
        Role::PrincipalInvestigator => "c.state NOT IN ('complete', 'withdrawn', 'excluded')",
        Role::Admin | Role::Statistician => return None,
    })
}

/// The worklist's query: the longest waiting first (the `cases_updated`
/// index gives that order without a sort).
fn worklist_sql(role: Role) -> Option<String> {
    worklist_filter(role)
        .map(|filter| format!("{SUMMARY_SQL} WHERE {filter} ORDER BY c.updated_at, c.id"))
}

/// The cases `sql` selects (`$1` is `by`'s user id), one page of them
/// (offset, limit) when `page` is given.
async fn summaries(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    by: &Principal,
    page: Option<(i64, i64)>,
) -> Result<Vec<CaseSummary>, CaseError> {
    let sql = match page {
        // Two integers of ours, not input.
        Some((offset, limit)) => format!("{sql} LIMIT {limit} OFFSET {offset}"),
        None => sql.to_owned(),
    };
    let rows = sqlx::query(&sql)
        .bind(by.user_id.unwrap_or(-1))
        .fetch_all(conn)
        .await?;
    let mut out = rows
        .iter()
        .map(|r| summary_from_row(r).map(|(s, _)| s))
        .collect::<Result<Vec<_>, _>>()?;
    if by.role == Role::Radiologist {
        for s in &mut out {
            s.waits_for = "your blinded read".into();
        }
    }
    Ok(out)
}

/// A page of the cases `sql` selects, with their count (`count`, the same
/// cases counted), read in one transaction so that the two agree. `limit`
/// is at most 500.
async fn page_of(
    db: &Db,
    sql: &str,
    count: &str,
    by: &Principal,
    offset: i64,
    limit: i64,
) -> Result<CaseList, CaseError> {
    let offset = offset.max(0);
    let limit = limit.clamp(1, 500);
    let mut tx = db.pool().begin().await?;
    let total: i64 = sqlx::query_scalar(count)
        .bind(by.user_id.unwrap_or(-1))
        .fetch_one(&mut *tx)
        .await?;
    let cases = summaries(&mut tx, sql, by, Some((offset, limit))).await?;
    tx.commit().await?;
    Ok(CaseList {
        cases,
        total,
        offset,
    })
}

/// The case id of a study number such as `P-0007` (`D-0007` in the
/// demonstration study).
#[tracing::instrument(skip_all)]
pub async fn find_case(db: &Db, study_number: &str) -> Result<Option<i64>, CaseError> {
    let kind = study_kind(db.pool()).await?;
    let Some((arm, no)) = Arm::parse_label(kind, study_number) else {
        return Ok(None);
    };
    Ok(
        sqlx::query("SELECT id FROM cases WHERE arm = $1 AND study_no = $2")
            .bind(arm.as_str())
            .bind(no)
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?,
    )
}
