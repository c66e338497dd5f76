//! The operational dashboard: enrolment, cases by state, open queries and what blocks the lock — no accuracy before lock.

use super::settings::*;
use super::StudyError;
use crate::audit::Principal;
use crate::case::CaseState;
use crate::domain::Permission;
use crate::screening;
use crate::store::Db;
use crate::write::{is_locked, require};
use sqlx::Row;

/// Operational figures only: no accuracy, no pathology, no AI output.
#[tracing::instrument(skip_all)]
pub async fn dashboard(db: &Db, by: &Principal) -> Result<Dashboard, StudyError> {
    require(by, Permission::ViewDashboard)?;
    let log = screening::log(db, by).await?;
    let counts = sqlx::query("SELECT state, COUNT(*) AS n FROM cases GROUP BY state")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("state")?.parse::<CaseState>()?,
                r.try_get::<i64, _>("n")?,
            ))
        })
        .collect::<Result<Vec<_>, StudyError>>()?;
    let cases_by_state: Vec<(CaseState, i64)> = CaseState::ALL
        .iter()
        .map(|s| {
            (
                *s,
                counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
            )
        })
        .collect();
    let crf_complete: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases c WHERE EXISTS (SELECT 1 FROM crf_versions v WHERE v.case_id = c.id AND v.complete = 1)",
    )
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    let q = |status: &'static str| async move {
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status = $1")
            .bind(status)
            .fetch_one(db.pool())
            .await?
            .try_get::<i64, _>("n")
    };
    Ok(Dashboard {
        prospective_target: PROSPECTIVE_TARGET,
        enrolled_prospective: log.flow.enrolled_prospective,
        enrolled_retrospective: log.flow.enrolled_retrospective,
        flow: log.flow,
        cases_total: cases_by_state.iter().map(|(_, n)| n).sum(),
        cases_by_state,
        crf_complete,
        open_queries: q("open").await?,
        answered_queries: q("answered").await?,
        locked: is_locked(db.pool()).await?,
    })
}

/// Why the database cannot be locked now.
pub(super) async fn blockers(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, StudyError> {
    let mut out = Vec::new();
    let open: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status IN ('open', 'answered')")
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    if open > 0 {
        out.push(format!(
            "{open} queries are open or answered but not closed"
        ));
    }
    let unfinished: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases WHERE state NOT IN ('complete', 'withdrawn', 'excluded')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if unfinished > 0 {
        out.push(format!(
            "{unfinished} enrolled cases are neither complete nor withdrawn or excluded"
        ));
    }
    let sap: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM sap_signatures s WHERE s.role = 'statistician' \
         AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = s.version AND p.role = 'principal_investigator')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if sap == 0 {
        out.push(
            "the statistical analysis plan is not yet signed by the statistician and the PI".into(),
        );
    }
    Ok(out)
}
