//! Form posts of the study page (settings, database lock) and the analysis
//! page (the analysis plan, downloads of the locked data).

use super::{back, flash, refused, FormBody, Member, Reply, SignForm};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use osteo_trial::domain::{AuditSource, Reason};
use osteo_trial::study;
use serde::Deserialize;
use tower_sessions::Session;

signing_bodies!(LockForm, UnlockForm);

#[derive(Deserialize)]
pub struct SettingsForm {
    rule_version: Option<String>,
    readers_per_case: i64,
    bone_rads_source: String,
    /// Absent from an older form: no change.
    dicom_dates: Option<String>,
}

async fn study_done(session: &Session, message: &str) -> Reply {
    flash(session, message, None, None).await;
    Ok(Redirect::to(page::STUDY).into_response())
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
                    refused(
                        &headers,
                        page::STUDY,
                        osteo_trial::study::StudyError::from(e),
                    )
                })?,
        ),
        f.dicom_dates.as_deref(),
    )
    .await
    .map_err(|e| refused(&headers, page::STUDY, e))?;
    study_done(&session, "flash.settings_saved").await
}

#[derive(Deserialize)]
pub struct LockForm {
    password: String,
    /// The second factor's code, when the account has one.
    second_factor: Option<String>,
    /// `interim` (the default) or `final`.
    kind: Option<String>,
    /// A final lock before the enrolment target: why the study stops early.
    early_stop_reason: Option<String>,
}

#[derive(Deserialize)]
pub struct UnlockForm {
    password: String,
    /// The second factor's code, when the account has one.
    second_factor: Option<String>,
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
            refused(
                &headers,
                page::STUDY,
                osteo_trial::study::StudyError::from(e),
            )
        },
    )?;
    let early = match f.early_stop_reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(Reason::parse(r).map_err(|_| back(page::STUDY, "reason_required"))?),
    };
    study::lock_database(
        &state.db,
        &me.principal(AuditSource::Ui),
        &f.secret(),
        kind,
        early.as_ref(),
    )
    .await
    .map_err(|e| refused(&headers, page::STUDY, e))?;
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
        .map_err(|_| back(page::STUDY, "reason_required"))?;
    let status = study::unlock_database(
        &state.db,
        &me.principal(AuditSource::Ui),
        &f.secret(),
        &reason,
    )
    .await
    .map_err(|e| refused(&headers, page::STUDY, e))?;
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
        crate::ai::pin_request(state.ai.as_deref()).ok_or_else(|| back(page::STUDY, "no_model"))?;
    study::pin_model(
        &state.db,
        &me.principal(AuditSource::Ui),
        &request,
        &f.secret(),
    )
    .await
    .map_err(|e| refused(&headers, page::STUDY, e))?;
    study_done(&session, "flash.model_pinned").await
}
