//! The case row itself — opening a case at enrolment, its summary, its
//! moves through the state machine — and what every store file shares:
//! the permission and actor checks and the audited refusal.

use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::Permission;
use crate::screening::{study_kind, study_kind_of, Arm};
use crate::store::{now_utc, Db};
use crate::write::Tx;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

pub(super) fn require(by: &Principal, p: Permission) -> Result<(), CaseError> {
    Ok(crate::write::require(by, p)?)
}

pub(super) fn user_id(by: &Principal) -> Result<i64, CaseError> {
    Ok(crate::write::actor_id(by)?)
}

/// Audits a refused attempt in its own transaction and returns the error.
pub(super) async fn refuse(
    db: &Db,
    by: &Principal,
    action: &'static str,
    case_id: i64,
    error: CaseError,
) -> CaseError {
    crate::write::audit_refusal(db, by, action, "case", case_id, error.to_string()).await;
    error
}

// ------------------------------------------------------------------ cases

pub(super) const SUMMARY_SQL: &str = "SELECT c.id, c.arm, c.study_no, si.code AS site_code, c.state, c.end_reason, c.updated_at, \
     (SELECT kind FROM study WHERE id = 1) AS study_kind, \
     (SELECT COUNT(*) FROM queries q WHERE q.case_id = c.id AND q.status IN ('open', 'answered')) AS open_queries \
     FROM cases c JOIN sites si ON si.id = c.site_id";

/// The arm of a row with an `arm` column.
pub(super) fn arm_of(r: &AnyRow) -> Result<Arm, CaseError> {
    r.try_get::<String, _>("arm")?
        .parse()
        .map_err(|e: crate::screening::ScreeningError| {
            crate::write::StoreFailure::Refused(e.to_string()).into()
        })
}

pub(super) fn summary_from_row(r: &AnyRow) -> Result<(CaseSummary, Option<String>), CaseError> {
    let arm = arm_of(r)?;
    let state: CaseState = r.try_get::<String, _>("state")?.parse()?;
    Ok((
        CaseSummary {
            id: r.try_get("id")?,
            study_number: arm.label(study_kind_of(r), r.try_get("study_no")?),
            arm,
            site_code: r.try_get("site_code")?,
            state,
            waits_for: state.waits_for_in(arm).to_owned(),
            open_queries: r.try_get("open_queries")?,
            updated_at: r.try_get("updated_at")?,
        },
        r.try_get("end_reason")?,
    ))
}

pub(super) async fn fetch_summary<'e, E>(
    executor: E,
    id: i64,
) -> Result<(CaseSummary, Option<String>), CaseError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query(&format!("{SUMMARY_SQL} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .ok_or(CaseError::UnknownCase(id))?;
    summary_from_row(&row)
}

/// Opens the case for a patient just enrolled (called inside the
/// enrolment's transaction).
#[tracing::instrument(skip_all)]
pub(crate) async fn create_case(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    screening_id: i64,
    arm: Arm,
    study_no: i64,
) -> Result<i64, sqlx::Error> {
    let now = now_utc();
    let id: i64 = sqlx::query(
        "INSERT INTO cases (screening_id, site_id, arm, study_no, state, created_at, updated_at) \
         SELECT id, site_id, arm, $2, 'enrolled', $3, $3 FROM screenings WHERE id = $1 RETURNING id",
    )
    .bind(screening_id)
    .bind(study_no)
    .bind(&now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    let kind = study_kind(&mut **tx).await?;
    audit::append(
        tx,
        by,
        Change::new("case.create", "case", id).field(
            "state",
            None,
            Some(format!(
                "{} {}",
                arm.label(kind, study_no),
                CaseState::Enrolled
            )),
        ),
    )
    .await?;
    Ok(id)
}

/// Moves a case by `event`, or says why it cannot move.
pub(super) async fn advance(
    tx: &mut Tx,
    by: &Principal,
    case_id: i64,
    event: CaseEvent,
    reason: Option<&str>,
) -> Result<CaseState, CaseError> {
    let (summary, _) = fetch_summary(&mut **tx, case_id).await?;
    let next = summary.state.apply_in(summary.arm, event)?;
    sqlx::query("UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(next.as_str())
        .bind(now_utc())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    audit::append(
        tx,
        by,
        Change::new("case.state", "case", case_id)
            .field(
                "state",
                Some(summary.state.to_string()),
                Some(next.to_string()),
            )
            .reason(reason),
    )
    .await?;
    Ok(next)
}

/// The state of a case.
pub(super) async fn state_of(tx: &mut Tx, case_id: i64) -> Result<CaseState, CaseError> {
    Ok(fetch_summary(&mut **tx, case_id).await?.0.state)
}

pub(super) async fn touch(tx: &mut Tx, case_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(now_utc())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
