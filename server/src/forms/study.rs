//! Form posts of the study page (settings, database lock) and the analysis
//! page (the analysis plan, downloads of the locked data).

use super::cases::{case_error, SignForm};
use super::{back, flash, FormBody, Member, Reply};
use crate::startup::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use osteo_trial::domain::{AuditSource, Reason};
use osteo_trial::study;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Deserialize)]
pub struct SettingsForm {
    rule_version: Option<String>,
    readers_per_case: i64,
    bone_rads_source: String,
    /// Absent from an older form: no change.
    dicom_dates: Option<String>,
}

const STUDY: &str = "/study";

async fn study_done(session: &Session, message: &str) -> Reply {
    flash(session, message, None, None).await;
    Ok(Redirect::to(STUDY).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn study_settings(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SettingsForm>,
) -> Reply {
    study::update_settings(
        &state.db,
        &me.principal(AuditSource::Ui),
        f.rule_version.as_deref().filter(|v| !v.is_empty()),
        Some(f.readers_per_case),
        Some(
            f.bone_rads_source
                .parse()
                .map_err(|e: osteo_trial::codes::UnknownCode| {
                    case_error(&headers, STUDY, osteo_trial::study::StudyError::from(e))
                })?,
        ),
        f.dicom_dates.as_deref(),
    )
    .await
    .map_err(|e| case_error(&headers, STUDY, e))?;
    study_done(&session, "flash.settings_saved").await
}

#[derive(Deserialize)]
pub struct LockForm {
    password: String,
    /// `interim` (the default) or `final`.
    kind: Option<String>,
    /// A final lock before the enrolment target: why the study stops early.
    early_stop_reason: Option<String>,
}

#[derive(Deserialize)]
pub struct UnlockForm {
    password: String,
    reason: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn study_lock(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<LockForm>,
) -> Reply {
    let kind = f.kind.as_deref().unwrap_or("interim").parse().map_err(
        |e: osteo_trial::codes::UnknownCode| {
            case_error(&headers, STUDY, osteo_trial::study::StudyError::from(e))
        },
    )?;
    let early = match f.early_stop_reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(Reason::parse(r).map_err(|_| back(STUDY, "reason_required"))?),
    };
    study::lock_database(
        &state.db,
        &me.principal(AuditSource::Ui),
        &f.password,
        kind,
        early.as_ref(),
    )
    .await
    .map_err(|e| case_error(&headers, STUDY, e))?;
    study_done(&session, "flash.locked").await
}

/// Signs the unlock of an interim lock (the PI or the monitor); the
/// database unlocks once both have signed.
#[tracing::instrument(skip_all)]
pub async fn study_unlock(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<UnlockForm>,
) -> Reply {
    let reason = Reason::parse(f.reason.as_deref().unwrap_or_default())
        .map_err(|_| back(STUDY, "reason_required"))?;
    let status = study::unlock_database(
        &state.db,
        &me.principal(AuditSource::Ui),
        &f.password,
        &reason,
    )
    .await
    .map_err(|e| case_error(&headers, STUDY, e))?;
    let message = if status.locked {
        "flash.unlock_signed"
    } else {
        "flash.unlocked"
    };
    study_done(&session, message).await
}

/// The principal investigator pins the model this server runs.
#[tracing::instrument(skip_all)]
pub async fn model_pin(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    let request =
        crate::ai::pin_request(state.ai.as_deref()).ok_or_else(|| back(STUDY, "no_model"))?;
    study::pin_model(
        &state.db,
        &me.principal(AuditSource::Ui),
        &request,
        &f.password,
    )
    .await
    .map_err(|e| case_error(&headers, STUDY, e))?;
    state.wake_ai();
    study_done(&session, "flash.model_pinned").await
}

#[derive(Deserialize)]
pub struct SapForm {
    threshold: f64,
    intermediate: String,
    readers: String,
    conf_level: f64,
}

const ANALYSIS: &str = "/analysis";

/// Saves a new version of the analysis plan.
#[tracing::instrument(skip_all)]
pub async fn sap_draft(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SapForm>,
) -> Reply {
    let err = |e| case_error(&headers, ANALYSIS, e);
    let sap = osteo_trial::study::sap::Sap {
        threshold: f.threshold,
        intermediate: f
            .intermediate
            .parse()
            .map_err(|e: osteo_trial::codes::UnknownCode| err(e.into()))?,
        readers: f
            .readers
            .parse()
            .map_err(|e: osteo_trial::codes::UnknownCode| err(e.into()))?,
        conf_level: f.conf_level,
    };
    study::draft_sap(&state.db, &me.principal(AuditSource::Ui), sap)
        .await
        .map_err(err)?;
    flash(&session, "flash.sap_saved", None, None).await;
    Ok(Redirect::to(ANALYSIS).into_response())
}

/// Signs the newest version of the analysis plan.
#[tracing::instrument(skip_all)]
pub async fn sap_sign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    study::sign_sap(&state.db, &me.principal(AuditSource::Ui), &f.password)
        .await
        .map_err(|e| case_error(&headers, ANALYSIS, e))?;
    flash(&session, "flash.sap_signed", None, None).await;
    Ok(Redirect::to(ANALYSIS).into_response())
}

/// One CSV file of the locked data, for the analysis page (audited).
#[tracing::instrument(skip_all)]
pub async fn export_download(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Reply {
    let bytes = crate::exports::download(&state.db, &me.principal(AuditSource::Ui), &name)
        .await
        .map_err(|e| case_error(&headers, ANALYSIS, e))?
        .ok_or_else(|| super::not_found(&headers))?;
    Ok(crate::exports::attachment(&name, bytes))
}
