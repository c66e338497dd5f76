//! The audit trail over REST (administrators, principal investigators, monitors).

use super::ApiUser;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use osteo_trial::audit::{self, AuditFilter, QueryError, VerifyError};
use osteo_trial::domain::Permission;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Username (or `system`, `cli:NAME`, `anonymous`).
    actor: Option<String>,
    /// `user`, `api_token`, `session`, `study`, `site`, …
    entity: Option<String>,
    entity_id: Option<String>,
    /// First day, YYYY-MM-DD (UTC).
    #[param(format = Date)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC).
    #[param(format = Date)]
    to: Option<String>,
    /// Rows older than this sequence number (the `next_before_seq` of the previous page).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditRowOut {
    seq: i64,
    at: String,
    actor_id: Option<i64>,
    actor: String,
    source: String,
    action: String,
    entity: String,
    entity_id: Option<String>,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    reason: Option<String>,
    prev_hash: String,
    hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPageOut {
    rows: Vec<AuditRowOut>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next_before_seq: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyOut {
    rows: i64,
    head_hash: String,
    /// Signed anchors checked against the server's audit key.
    anchors_checked: i64,
}

fn require_audit(user: &ApiUser) -> Result<(), ApiError> {
    if user.0.role.can(Permission::ViewAudit) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// A page of the audit trail, newest first.
#[utoipa::path(get, path = urls::AUDIT, context_path = urls::API, params(AuditQuery),
    responses((status = 200, body = AuditPageOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPageOut>, ApiError> {
    require_audit(&user)?;
    let Query(q) = query?;
    if q.limit.is_some_and(|l| !(1..=500).contains(&l)) {
        return Err(ApiError::bad_request("limit is a page size from 1 to 500"));
    }
    for (name, day) in [("from", &q.from), ("to", &q.to)] {
        if let Some(day) = day {
            if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
                return Err(ApiError::bad_request(format!(
                    "{name} is a day, YYYY-MM-DD, not `{day}`"
                )));
            }
        }
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::bad_request("before is a sequence number from 1"));
    }
    let filter = AuditFilter {
        actor: q.actor,
        entity: q.entity,
        entity_id: q.entity_id,
        from: q.from,
        to: q.to,
        before_seq: q.before,
    };
    let page = audit::query(&state.db, &filter, q.limit.unwrap_or(100))
        .await
        .map_err(|e| match e {
            QueryError::Filter(f) => ApiError::bad_request(f.to_string()),
            e => ApiError::internal(e),
        })?;
    Ok(Json(AuditPageOut {
        next_before_seq: page.next_before_seq,
        rows: page
            .rows
            .into_iter()
            .map(|r| AuditRowOut {
                seq: r.seq,
                at: r.at,
                actor_id: r.actor_id,
                actor: r.actor,
                source: r.source,
                action: r.action,
                entity: r.entity,
                entity_id: r.entity_id,
                field: r.field,
                old_value: r.old_value,
                new_value: r.new_value,
                reason: r.reason,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect(),
    }))
}

/// Walks the hash chain; 409 names the first broken row.
#[utoipa::path(get, path = urls::AUDIT_VERIFY, context_path = urls::API,
    responses((status = 200, body = VerifyOut), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<VerifyOut>, ApiError> {
    require_audit(&user)?;
    let key = state.db.anchor_key().map(|k| k.public());
    match audit::verify(&state.db, key.as_ref()).await {
        Ok(s) => Ok(Json(VerifyOut {
            rows: s.rows,
            head_hash: s.head_hash,
            anchors_checked: s.anchors_checked,
        })),
        Err(VerifyError::Broken(b)) => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "audit_chain_broken",
            format!("row {}: {b}", b.first_bad_row()),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}
