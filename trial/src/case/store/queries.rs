//! Data queries on a case and their messages.

use super::cases::*;
use crate::audit::{self, Change, Principal};
use crate::case::crf::ClinicalCrf;
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::Permission;
use crate::screening::study_kind_of;
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::Row;

pub(super) const QUERY_FIELDS_EXTRA: [&str; 4] = ["case", "images", "read", "pathology"];

pub(super) async fn fetch_queries(
    db: &Db,
    case_id: Option<i64>,
    query_id: Option<i64>,
    open_only: bool,
) -> Result<Vec<DataQuery>, CaseError> {
    let rows = sqlx::query(&format!(
        "SELECT q.id, q.case_id, q.field, q.status, q.raised_at, u.username, c.arm, c.study_no, si.code AS site_code, \
         (SELECT kind FROM study WHERE id = 1) AS study_kind \
         FROM queries q JOIN users u ON u.id = q.raised_by JOIN cases c ON c.id = q.case_id JOIN sites si ON si.id = c.site_id \
         WHERE ($1 IS NULL OR q.case_id = $1) AND ($2 IS NULL OR q.id = $2) {} ORDER BY si.code, q.id",
        if open_only { "AND q.status IN ('open', 'answered')" } else { "" }
    ))
    .bind(case_id)
    .bind(query_id)
    .fetch_all(db.pool())
    .await?;
    // Every message of the selected queries in one read, grouped by query.
    let mut messages: std::collections::HashMap<i64, Vec<QueryMessage>> =
        std::collections::HashMap::new();
    let message_rows = sqlx::query(&format!(
        "SELECT m.query_id, m.action, m.text, u.username, m.created_at FROM query_messages m \
         JOIN users u ON u.id = m.created_by JOIN queries q ON q.id = m.query_id \
         WHERE ($1 IS NULL OR q.case_id = $1) AND ($2 IS NULL OR q.id = $2) {} ORDER BY m.query_id, m.seq",
        if open_only { "AND q.status IN ('open', 'answered')" } else { "" }
    ))
    .bind(case_id)
    .bind(query_id)
    .fetch_all(db.pool())
    .await?;
    for m in &message_rows {
        messages
            .entry(m.try_get("query_id")?)
            .or_default()
            .push(QueryMessage {
                action: m.try_get("action")?,
                text: m.try_get("text")?,
                by: m.try_get("username")?,
                at: m.try_get("created_at")?,
            });
    }
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            Ok(DataQuery {
                id,
                case_id: r.try_get("case_id")?,
                study_number: arm_of(r)?.label(study_kind_of(r), r.try_get("study_no")?),
                site_code: r.try_get("site_code")?,
                field: r.try_get("field")?,
                status: r.try_get::<String, _>("status")?.parse()?,
                raised_by: r.try_get("username")?,
                raised_at: r.try_get("raised_at")?,
                messages: messages.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

pub(super) fn check_text(text: &str) -> Result<String, CaseError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 2000 {
        return Err(CaseError::QueryText);
    }
    Ok(t.to_owned())
}

pub(super) async fn add_message(
    tx: &mut Tx,
    by: &Principal,
    query_id: i64,
    action: &str,
    text: &str,
) -> Result<(), CaseError> {
    let seq: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM query_messages WHERE query_id = $1",
    )
    .bind(query_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("next")?;
    sqlx::query("INSERT INTO query_messages (query_id, seq, action, text, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(query_id)
        .bind(seq)
        .bind(action)
        .bind(text)
        .bind(user_id(by)?)
        .bind(now_utc())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Raises a data query on one field of a case.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn raise_query(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    field: &str,
    text: &str,
) -> Result<DataQuery, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::RaiseQuery)?;
    let field = field.trim();
    if !ClinicalCrf::FIELDS.contains(&field) && !QUERY_FIELDS_EXTRA.contains(&field) {
        return Err(CaseError::UnknownField(field.to_owned()));
    }
    let text = check_text(text)?;
    let mut tx = begin(db, by, "query.raise", "case", case_id).await?;
    fetch_summary(&mut *tx, case_id).await?;
    let now = now_utc();
    let id: i64 = sqlx::query(
        "INSERT INTO queries (case_id, field, status, raised_by, raised_at, updated_at) VALUES ($1, $2, 'open', $3, $4, $4) RETURNING id",
    )
    .bind(case_id)
    .bind(field)
    .bind(user_id(by)?)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    add_message(&mut tx, by, id, "raise", &text).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("query.raise", "query", id).field(
            "status",
            None,
            Some(format!("open case={case_id} field={field}: {text}")),
        ),
    )
    .await?;
    tx.commit().await?;
    fetch_queries(db, None, Some(id), false)
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::UnknownQuery(id))
}

/// Answers, closes, reopens or cancels a query.
#[tracing::instrument(skip_all)]
pub async fn act_on_query(
    db: &Db,
    by: &Principal,
    query_id: i64,
    action: QueryAction,
    text: &str,
) -> Result<DataQuery, CaseError> {
    match action {
        QueryAction::Answer => require(by, Permission::AnswerQuery)?,
        QueryAction::Close | QueryAction::Reopen | QueryAction::Cancel => {
            require(by, Permission::RaiseQuery)?
        }
    }
    let text = check_text(text)?;
    let mut tx = begin(db, by, "query.act", "query", query_id).await?;
    let row = sqlx::query("SELECT status, raised_by FROM queries WHERE id = $1")
        .bind(query_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CaseError::UnknownQuery(query_id))?;
    let status: QueryStatus = row.try_get::<String, _>("status")?.parse()?;
    let raised_by: i64 = row.try_get("raised_by")?;
    if action == QueryAction::Cancel && by.user_id != Some(raised_by) {
        return Err(CaseError::Forbidden);
    }
    let next = status.apply(action).ok_or(CaseError::QueryTransition {
        from: status,
        action,
    })?;
    sqlx::query("UPDATE queries SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(next.as_str())
        .bind(now_utc())
        .bind(query_id)
        .execute(&mut *tx)
        .await?;
    add_message(&mut tx, by, query_id, action.as_str(), &text).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("query.act", "query", query_id)
            .field("status", Some(status.to_string()), Some(next.to_string()))
            .reason(Some(&text)),
    )
    .await?;
    tx.commit().await?;
    fetch_queries(db, None, Some(query_id), false)
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::UnknownQuery(query_id))
}

/// Queries, of one case or of every case; only open and answered ones when `open_only`.
#[tracing::instrument(skip_all)]
pub async fn list_queries(
    db: &Db,
    by: &Principal,
    case_id: Option<CaseId>,
    open_only: bool,
) -> Result<Vec<DataQuery>, CaseError> {
    require(by, Permission::ViewCases)?;
    fetch_queries(db, case_id.map(CaseId::get), None, open_only).await
}
