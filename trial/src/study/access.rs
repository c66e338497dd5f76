//! The data access history: every look at the locked data (the analysis,
//! each export download), printed in the locked report.

use super::settings::*;
use super::StudyError;
use crate::audit::Principal;
use crate::store::{now_utc, Db};
use crate::write::Tx;
use sqlx::Row;

/// Writes a look at the data into the data access history, while the
/// database has no final lock (after it, downloads are audited only: the
/// history lists the looks that came before the final analysis).
#[tracing::instrument(skip_all)]
pub(crate) async fn record_access(
    tx: &mut Tx,
    by: &Principal,
    action: &str,
    detail: &str,
) -> Result<(), StudyError> {
    record_access_at(tx, by, action, detail, &now_utc()).await
}

/// [`record_access`] at a given time (a lock's own time, so that the report
/// of a lock lists the lock itself).
pub(super) async fn record_access_at(
    tx: &mut Tx,
    by: &Principal,
    action: &str,
    detail: &str,
    at: &str,
) -> Result<(), StudyError> {
    // The final lock itself is the last look the history lists.
    if action != "database.lock" && final_lock_exists(tx).await? {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO data_access (at, user_id, actor, role, action, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(by.user_id)
    .bind(&by.name)
    .bind(by.role.as_str())
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The data access history up to and including `until` (RFC 3339 UTC).
#[tracing::instrument(skip_all)]
pub async fn data_access(db: &Db, until: Option<&str>) -> Result<Vec<DataAccess>, StudyError> {
    sqlx::query(
        "SELECT at, actor, role, action, detail FROM data_access WHERE ($1 IS NULL OR at <= $1) ORDER BY id",
    )
    .bind(until)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(DataAccess {
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            detail: r.try_get("detail")?,
        })
    })
    .collect()
}

pub(super) async fn final_lock_exists(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM lock_events WHERE action = 'lock' AND kind = 'final'")
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}
