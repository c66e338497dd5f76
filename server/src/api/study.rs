//! The study: its settings, the operational dashboard, the database lock
//! (interim and final, with the two-signature unlock) and the pinned model.

use super::{reason, ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::study::{self, Dashboard, LockStatus, StudySettings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

signing_bodies!(LockIn, UnlockIn, PinIn);

/// The study settings.
#[utoipa::path(get, path = urls::STUDY_SETTINGS, context_path = urls::API, responses((status = 200, description = "settings")))]
#[tracing::instrument(skip_all)]
pub async fn settings(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<StudySettings>, ApiError> {
    Ok(Json(study::settings(&state.db).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsIn {
    /// The Bone-RADS rule-table version to confirm.
    rule_version: Option<String>,
    /// 1 to 3.
    readers_per_case: Option<i64>,
    /// primary_reader or consensus.
    bone_rads_source: Option<String>,
    /// keep or shift: how dates in stored radiographs are de-identified
    /// (fixed once the first radiograph is stored).
    dicom_dates: Option<String>,
}

/// Changes the study settings (administrators and the PI), before the first read only.
#[utoipa::path(patch, path = urls::STUDY_SETTINGS, context_path = urls::API, request_body = SettingsIn,
    responses((status = 200, description = "settings"), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn update_settings(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<SettingsIn>,
) -> Result<Json<StudySettings>, ApiError> {
    Ok(Json(
        study::update_settings(
            &state.db,
            &user.principal(),
            body.rule_version.as_deref(),
            body.readers_per_case,
            body.bone_rads_source
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: osteo_trial::codes::UnknownCode| {
                    ApiError::bad_request(e.to_string())
                })?,
            body.dicom_dates.as_deref(),
        )
        .await?,
    ))
}

/// Operational figures: enrolment against the target, screening flow, completeness, open queries. Never accuracy.
#[utoipa::path(get, path = urls::DASHBOARD, context_path = urls::API, responses((status = 200, description = "dashboard"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn dashboard(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Dashboard>, ApiError> {
    Ok(Json(study::dashboard(&state.db, &user.principal()).await?))
}

/// Whether the database is locked, the lock history and what blocks a lock.
#[utoipa::path(get, path = urls::STUDY_LOCK, context_path = urls::API, responses((status = 200, description = "lock status")))]
#[tracing::instrument(skip_all)]
pub async fn lock_status(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<LockStatus>, ApiError> {
    Ok(Json(study::lock_status(&state.db).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockIn {
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
    /// `interim` (the default: a look the PI and the monitor can undo
    /// together) or `final` (never undone).
    kind: Option<String>,
    /// A final lock before the enrolment target: why the study stops early.
    early_stop_reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockIn {
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
    /// Why the lock is undone (required).
    reason: Option<String>,
}

/// Locks the database with the PI's signature: an interim look, or the final lock.
#[utoipa::path(post, path = urls::STUDY_LOCK, context_path = urls::API, request_body = LockIn,
    responses((status = 200, description = "lock status"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn lock(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<LockIn>,
) -> Result<Json<LockStatus>, ApiError> {
    let kind = body
        .kind
        .as_deref()
        .unwrap_or("interim")
        .parse()
        .map_err(|e: osteo_trial::codes::UnknownCode| ApiError::bad_request(e.to_string()))?;
    let early = reason(body.early_stop_reason.as_deref())?;
    Ok(Json(
        study::lock_database(
            &state.db,
            &user.principal(),
            &body.secret(),
            kind,
            early.as_ref(),
        )
        .await?,
    ))
}

/// Signs the unlock of an interim lock, as the PI or the monitor, with a
/// reason; the database unlocks once both have signed. A final lock is
/// never undone (409).
#[utoipa::path(post, path = urls::STUDY_UNLOCK, context_path = urls::API, request_body = UnlockIn,
    responses((status = 200, description = "lock status"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<UnlockIn>,
) -> Result<Json<LockStatus>, ApiError> {
    let reason = reason(body.reason.as_deref())?
        .ok_or_else(|| ApiError::bad_request("an unlock needs a reason"))?;
    Ok(Json(
        study::unlock_database(&state.db, &user.principal(), &body.secret(), &reason).await?,
    ))
}

/// The model pinned for the study, and the one this server runs.
#[derive(Serialize, ToSchema)]
pub struct ModelOut {
    /// The pin in force: the only model whose predictions are recorded.
    #[schema(value_type = Option<Object>)]
    pinned: Option<study::ModelPin>,
    /// The model this server runs (`--model`), which the PI can pin.
    #[schema(value_type = Option<Object>)]
    running: Option<crate::ai::RunningModel>,
}

/// The pinned model and the model the server runs.
#[utoipa::path(get, path = urls::STUDY_MODEL, context_path = urls::API, responses((status = 200, description = "pinned and running model")))]
#[tracing::instrument(skip_all)]
pub async fn model(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<ModelOut>, ApiError> {
    Ok(Json(ModelOut {
        pinned: study::pinned_model(&state.db).await?,
        running: state.ai.as_ref().map(|ai| ai.running()),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinIn {
    /// The principal investigator's password (the signature).
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
}

/// Pins the model this server runs as the trial's model: the principal
/// investigator, with a signature, before the first prediction. 409 after
/// the first prediction, or when the server runs no model.
#[utoipa::path(post, path = urls::STUDY_MODEL_PIN, context_path = urls::API, request_body = PinIn,
    responses((status = 200, description = "the pin"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn pin_model(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<PinIn>,
) -> Result<Json<study::ModelPin>, ApiError> {
    let request = crate::ai::pin_request(state.ai.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_model",
            "this server runs no model: start it with --model DIR to pin that model",
        )
    })?;
    let pin = study::pin_model(&state.db, &user.principal(), &request, &body.secret()).await?;
    Ok(Json(pin))
}
