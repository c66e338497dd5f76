//! The statistical analysis plan (drafts and the two signatures) and the
//! locked analysis.

use super::{ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::study::{self};
use serde::Deserialize;
use utoipa::ToSchema;

signing_bodies!(PasswordIn);

/// Every version of the statistical analysis plan with its signatures.
#[utoipa::path(get, path = urls::SAP, context_path = urls::API, responses((status = 200, description = "SAP versions, oldest first")))]
#[tracing::instrument(skip_all)]
pub async fn sap_list(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<Vec<osteo_trial::study::sap::SapVersion>>, ApiError> {
    Ok(Json(study::sap_versions(&state.db).await?))
}

/// Drafts a new SAP version (statistician or PI), until one is signed by both.
#[utoipa::path(post, path = urls::SAP, context_path = urls::API, request_body(content = Object, description = "threshold (0-1), intermediate as_benign|as_malignant|excluded, readers each_reader|mean_likelihood, conf_level"),
    responses((status = 201, description = "the new version"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sap_draft(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<osteo_trial::study::sap::Sap>,
) -> Result<(StatusCode, Json<osteo_trial::study::sap::SapVersion>), ApiError> {
    let v = study::draft_sap(&state.db, &user.principal(), body).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
}

/// Signs the newest SAP version as statistician or PI; signed by both, it is fixed.
#[utoipa::path(post, path = urls::SAP_SIGN, context_path = urls::API, request_body = PasswordIn,
    responses((status = 200, description = "the signed version"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sap_sign(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<PasswordIn>,
) -> Result<Json<osteo_trial::study::sap::SapVersion>, ApiError> {
    Ok(Json(
        study::sign_sap(&state.db, &user.principal(), &body.secret()).await?,
    ))
}

/// The locked analysis: computed from the snapshot taken at database lock with the signed SAP. 403 for the statistician and 409 for others before lock.
#[utoipa::path(get, path = urls::ANALYSIS, context_path = urls::API, responses((status = 200, description = "figures, lock time, dataset SHA-256, SAP version"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn analysis(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<study::LockedAnalysis>, ApiError> {
    Ok(Json(
        study::locked_analysis(&state.db, &user.principal()).await?,
    ))
}
