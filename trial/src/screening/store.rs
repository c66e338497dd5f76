//! The screening log in the database. Numbers come from counter rows updated
//! in the same transaction as the entry: concurrent coordinators queue on the
//! counter (a row lock on PostgreSQL, the write lock on SQLite), each gets the
//! next number, and a failed transaction gives its number back.

use super::entry::*;
use crate::audit::{self, Change, Principal};
use crate::domain::Permission;
use crate::domain::StudyKind;
use crate::store::{now_utc, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

impl From<sqlx::Error> for ScreeningError {
    fn from(e: sqlx::Error) -> Self {
        ScreeningError::Store(e)
    }
}

/// Begins a screening write; refused (and the refusal audited) while the
/// database is locked.
async fn begin(db: &Db, by: &Principal) -> Result<crate::write::Tx, ScreeningError> {
    crate::write::begin(db, by, "screening.write", "screening", 0)
        .await
        .map_err(|e| match e {
            crate::write::WriteError::Locked => ScreeningError::DatabaseLocked,
            crate::write::WriteError::Store(e) => ScreeningError::Store(e),
        })
}

fn require(by: &Principal, p: Permission) -> Result<(), ScreeningError> {
    crate::write::require(by, p).map_err(|_| ScreeningError::Forbidden)
}

/// The last screening date accepted now: today in the easternmost time zone
/// (UTC+14), so that no site is refused today's date.
pub fn latest_screening_date() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(14))
        .format("%Y-%m-%d")
        .to_string()
}

const ENTRY_SQL: &str = "SELECT s.id, si.code AS site_code, s.screening_no, s.arm, s.study_no, s.created_at, \
     (SELECT kind FROM study WHERE id = 1) AS study_kind, v.version, v.screening_date, v.inclusion_met, v.exclusions, v.outcome, v.not_enrolled_reason, v.comment, \
     v.created_at AS updated_at \
     FROM screenings s JOIN sites si ON si.id = s.site_id \
     JOIN screening_versions v ON v.screening_id = s.id \
     AND v.version = (SELECT MAX(version) FROM screening_versions WHERE screening_id = s.id)";

/// The study kind of a row that selects `(SELECT kind FROM study WHERE id =
/// 1) AS study_kind` (rows that print study numbers).
pub(crate) fn study_kind_of(r: &AnyRow) -> StudyKind {
    r.try_get::<Option<String>, _>("study_kind")
        .ok()
        .flatten()
        .and_then(|k| k.parse().ok())
        .unwrap_or_default()
}

/// The kind of study the database holds.
#[tracing::instrument(skip_all)]
pub async fn study_kind<'e, E>(executor: E) -> Result<StudyKind, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    Ok(sqlx::query("SELECT kind FROM study WHERE id = 1")
        .fetch_optional(executor)
        .await?
        .map(|r| r.try_get::<String, _>("kind"))
        .transpose()?
        .and_then(|k| k.parse().ok())
        .unwrap_or_default())
}

fn entry_from_row(r: &AnyRow) -> Result<ScreeningEntry, ScreeningError> {
    let arm: Arm = r.try_get::<String, _>("arm")?.parse()?;
    let study_no: Option<i64> = r.try_get("study_no")?;
    let exclusions: String = r.try_get("exclusions")?;
    let reason: Option<String> = r.try_get("not_enrolled_reason")?;
    Ok(ScreeningEntry {
        id: r.try_get("id")?,
        site_code: r.try_get("site_code")?,
        screening_no: r.try_get("screening_no")?,
        study_no,
        study_number: study_no.map(|n| arm.label(study_kind_of(r), n)),
        version: r.try_get("version")?,
        recorded: ScreeningInput {
            arm,
            screening_date: r.try_get("screening_date")?,
            inclusion_met: r.try_get::<i64, _>("inclusion_met")? != 0,
            exclusions: exclusions
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()?,
            outcome: r.try_get::<String, _>("outcome")?.parse()?,
            not_enrolled_reason: reason.map(|r| r.parse()).transpose()?,
            comment: r.try_get("comment")?,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn fetch_entry(
    tx: &mut Transaction<'_, Any>,
    id: i64,
) -> Result<ScreeningEntry, ScreeningError> {
    let row = sqlx::query(&format!("{ENTRY_SQL} WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ScreeningError::UnknownEntry(id))?;
    entry_from_row(&row)
}

fn codes(e: &[ExclusionCode]) -> String {
    e.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

async fn insert_version(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    id: i64,
    version: i64,
    input: &ScreeningInput,
    reason: Option<&str>,
) -> Result<(), ScreeningError> {
    sqlx::query(
        "INSERT INTO screening_versions (screening_id, version, screening_date, inclusion_met, exclusions, outcome, \
         not_enrolled_reason, comment, reason_for_change, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(version)
    .bind(&input.screening_date)
    .bind(i64::from(input.inclusion_met))
    .bind(codes(&input.exclusions))
    .bind(input.outcome.as_str())
    .bind(input.not_enrolled_reason.map(|r| r.as_str()))
    .bind(&input.comment)
    .bind(reason)
    .bind(now_utc())
    .bind(by.user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives an entry the next study number of its arm.
async fn enrol(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    id: i64,
    arm: Arm,
) -> Result<i64, ScreeningError> {
    let no: i64 = sqlx::query(
        "UPDATE study_number_counters SET last_no = last_no + 1 WHERE arm = $1 RETURNING last_no",
    )
    .bind(arm.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get("last_no")?;
    let kind = study_kind(&mut **tx).await?;
    sqlx::query("UPDATE screenings SET study_no = $1 WHERE id = $2")
        .bind(no)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    audit::append(
        tx,
        by,
        Change::new("screening.enrol", "screening", id).field(
            "study_no",
            None,
            Some(arm.label(kind, no)),
        ),
    )
    .await?;
    crate::case::create_case(tx, by, id, arm, no).await?;
    Ok(no)
}

/// Logs a screened patient at the user's site: the next screening number,
/// and for an enrolment the next study number of the arm.
#[tracing::instrument(skip_all)]
pub async fn screen(
    db: &Db,
    by: &Principal,
    input: ScreeningInput,
) -> Result<ScreeningEntry, ScreeningError> {
    require(by, Permission::EnterScreening)?;
    let user_id = by.user_id.ok_or(ScreeningError::Forbidden)?;
    let input = input.check(&latest_screening_date())?;
    let mut tx = begin(db, by).await?;
    let site_id: i64 = sqlx::query("SELECT site_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("site_id")?;
    sqlx::query("INSERT INTO screening_counters (site_id, last_no) VALUES ($1, 0) ON CONFLICT (site_id) DO NOTHING")
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
    let screening_no: i64 = sqlx::query(
        "UPDATE screening_counters SET last_no = last_no + 1 WHERE site_id = $1 RETURNING last_no",
    )
    .bind(site_id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("last_no")?;
    let now = now_utc();
    let id: i64 = sqlx::query(
        "INSERT INTO screenings (site_id, screening_no, arm, created_at, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(site_id)
    .bind(screening_no)
    .bind(input.arm.as_str())
    .bind(&now)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    insert_version(&mut tx, by, id, 1, &input, None).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("screening.create", "screening", id).field(
            "entry",
            None,
            Some(format!(
                "screening_no={screening_no} date={} arm={} inclusion={} exclusions={} outcome={}{}",
                input.screening_date,
                input.arm,
                input.inclusion_met,
                codes(&input.exclusions),
                input.outcome,
                input.not_enrolled_reason.map(|r| format!(" reason={r}")).unwrap_or_default()
            )),
        ),
    )
    .await?;
    if input.outcome == Outcome::Enrolled {
        enrol(&mut tx, by, id, input.arm).await?;
    }
    let entry = fetch_entry(&mut tx, id).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Records a correction: a new version, each changed field audited with the
/// reason. An enrolled patient stays enrolled; a patient first recorded as
/// not enrolled by mistake is enrolled now, with the next study number.
#[tracing::instrument(skip_all)]
pub async fn correct(
    db: &Db,
    by: &Principal,
    id: i64,
    input: ScreeningInput,
    reason: &crate::domain::Reason,
) -> Result<ScreeningEntry, ScreeningError> {
    require(by, Permission::EnterScreening)?;
    let input = input.check(&latest_screening_date())?;
    let mut tx = begin(db, by).await?;
    let entry = fetch_entry(&mut tx, id).await?;
    let old = &entry.recorded;
    if entry.study_no.is_some() && input.outcome != Outcome::Enrolled {
        return Err(ScreeningError::EnrolmentIsFinal);
    }
    if entry.study_no.is_some() && input.arm != old.arm {
        return Err(ScreeningError::EnrolmentIsFinal);
    }
    let changes: Vec<(&'static str, String, String)> = [
        ("arm", old.arm.to_string(), input.arm.to_string()),
        (
            "screening_date",
            old.screening_date.clone(),
            input.screening_date.clone(),
        ),
        (
            "inclusion_met",
            old.inclusion_met.to_string(),
            input.inclusion_met.to_string(),
        ),
        (
            "exclusions",
            codes(&old.exclusions),
            codes(&input.exclusions),
        ),
        (
            "outcome",
            old.outcome.to_string(),
            input.outcome.to_string(),
        ),
        (
            "not_enrolled_reason",
            old.not_enrolled_reason
                .map(|r| r.to_string())
                .unwrap_or_default(),
            input
                .not_enrolled_reason
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ),
        (
            "comment",
            old.comment.clone().unwrap_or_default(),
            input.comment.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .collect();
    if changes.is_empty() {
        return Ok(entry);
    }
    if input.arm != old.arm {
        sqlx::query("UPDATE screenings SET arm = $1 WHERE id = $2")
            .bind(input.arm.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    insert_version(
        &mut tx,
        by,
        id,
        entry.version + 1,
        &input,
        Some(reason.as_str()),
    )
    .await?;
    for (field, a, b) in changes {
        audit::append(
            &mut tx,
            by,
            Change::new("screening.correct", "screening", id)
                .field(field, Some(a), Some(b))
                .reason(Some(reason.as_str())),
        )
        .await?;
    }
    if input.outcome == Outcome::Enrolled && entry.study_no.is_none() {
        enrol(&mut tx, by, id, input.arm).await?;
    }
    let entry = fetch_entry(&mut tx, id).await?;
    tx.commit().await?;
    Ok(entry)
}

/// The log (all sites) with its gap and order report and the flow counts.
#[tracing::instrument(skip_all)]
pub async fn log(db: &Db, by: &Principal) -> Result<ScreeningLog, ScreeningError> {
    require(by, Permission::ViewScreening)?;
    let rows = sqlx::query(&format!("{ENTRY_SQL} ORDER BY si.code, s.screening_no"))
        .fetch_all(db.pool())
        .await?;
    let entries = rows
        .iter()
        .map(entry_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ScreeningLog::from_entries(entries))
}

/// Every version of one entry, oldest first.
#[tracing::instrument(skip_all)]
pub async fn history(
    db: &Db,
    by: &Principal,
    id: i64,
) -> Result<Vec<(i64, String, Option<String>)>, ScreeningError> {
    require(by, Permission::ViewScreening)?;
    let rows = sqlx::query(
        "SELECT version, created_at, reason_for_change FROM screening_versions WHERE screening_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    if rows.is_empty() {
        return Err(ScreeningError::UnknownEntry(id));
    }
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("version")?,
                r.try_get("created_at")?,
                r.try_get("reason_for_change")?,
            ))
        })
        .collect()
}
