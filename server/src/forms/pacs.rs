//! Form posts of the PACS link's quarantine page: a coordinator assigns a
//! received image to its case (by study number) or discards it.

use super::{back, flash, refused, FormBody, Id, Member, Reply};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use osteo_trial::domain::{AuditSource, CaseId};
use serde::Deserialize;

/// The quarantine page.
pub const PAGE: &str = "/dicom/quarantine";

#[derive(Deserialize)]
pub struct AssignForm {
    study_number: String,
    /// auto, frontal, lateral or oblique.
    view: Option<String>,
}

#[derive(Deserialize)]
pub struct DiscardForm {
    reason: String,
}

fn answer(headers: &HeaderMap, e: crate::pacs::AssignError) -> super::Halt {
    refused(headers, PAGE, e)
}

#[tracing::instrument(skip_all)]
pub async fn quarantine_assign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id<i64>,
    FormBody(f): FormBody<AssignForm>,
) -> Reply {
    let by = me.principal(AuditSource::Ui);
    let case = osteo_trial::case::find_case(&state.db, f.study_number.trim())
        .await
        .map_err(|e| refused(&headers, PAGE, e))?
        .ok_or_else(|| back(PAGE, "no_case"))?;
    let view = match f.view.as_deref().map(str::trim) {
        None | Some("" | "auto") => None,
        Some(v) => Some(v.parse().map_err(|_| back(PAGE, "image"))?),
    };
    crate::pacs::assign(
        &state.db,
        state.images.as_ref(),
        &state.settings.image_limits(),
        &state.quarantine,
        &by,
        id,
        crate::pacs::Assignment {
            case_id: CaseId::new(case),
            view,
        },
    )
    .await
    .map_err(|e| answer(&headers, e))?;
    flash(&session, "flash.case_saved", None, None).await;
    Ok(Redirect::to(PAGE).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn quarantine_discard(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id<i64>,
    FormBody(f): FormBody<DiscardForm>,
) -> Reply {
    crate::pacs::discard(
        &state.db,
        &state.quarantine,
        &me.principal(AuditSource::Ui),
        id,
        &f.reason,
    )
    .await
    .map_err(|e| answer(&headers, e))?;
    flash(&session, "flash.case_saved", None, None).await;
    Ok(Redirect::to(PAGE).into_response())
}
