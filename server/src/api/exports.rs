//! The files of the locked data: the list and one audited download.

use super::ApiUser;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

/// The downloads of the locked data (after database lock): the report PDFs, the ODM file and the CSV tables.
#[utoipa::path(get, path = urls::EXPORTS, context_path = urls::API, responses((status = 200, body = [String])))]
#[tracing::instrument(skip_all)]
pub async fn list(_user: ApiUser) -> Json<Vec<String>> {
    Json(crate::exports::names())
}

/// One download of the locked data, audited with its SHA-256: the locked report (`report-en.pdf`, `report-zh-CN.pdf`), CDISC ODM 1.3.2 with audit records (`odm.xml`) or a CSV table (`dictionary.csv`, `cases.csv`, `crf.csv`, …). 403 for the statistician and 409 for others before lock.
#[utoipa::path(get, path = urls::EXPORT, context_path = urls::API, params(("name" = String, Path)),
    responses((status = 200, description = "application/pdf, application/xml or text/csv"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn file(
    State(state): State<AppState>,
    user: ApiUser,
    name: Result<Path<String>, PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path(name) = name?;
    let bytes = crate::exports::download(&state.db, &user.principal(), &name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no export file {name}; see /api/v1/exports"))
        })?;
    Ok(crate::downloads::attachment(&name, bytes))
}
