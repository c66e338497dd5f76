//! Form posts of the PACS link: on the quarantine page a coordinator
//! assigns a received image to its case (by study number) or discards it;
//! on the study page the administrator or the PI allows and retires the
//! DICOM peers.

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

#[derive(Deserialize)]
pub struct PeerForm {
    ae_title: String,
    address: Option<String>,
    study_number_tag: Option<String>,
}

/// Allows a DICOM peer (the study page).
#[tracing::instrument(skip_all)]
pub async fn peer_add(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<PeerForm>,
) -> Reply {
    let page = crate::urls::page::STUDY;
    let tag = match f.study_number_tag.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(
            crate::imaging::tag_named(t)
                .map(crate::imaging::tag_key)
                .ok_or_else(|| {
                    refused(
                        &headers,
                        page,
                        osteo_trial::pacs::PacsError::BadTag(t.chars().take(32).collect()),
                    )
                })?,
        ),
    };
    osteo_trial::pacs::add_peer(
        &state.db,
        &me.principal(AuditSource::Ui),
        osteo_trial::pacs::NewPeer {
            ae_title: &f.ae_title,
            address: f.address.as_deref(),
            study_number_tag: tag.as_deref(),
        },
    )
    .await
    .map_err(|e| refused(&headers, page, e))?;
    flash(&session, "flash.settings_saved", None, None).await;
    Ok(Redirect::to(&format!("{page}#dicom-peers")).into_response())
}

/// Retires a DICOM peer (the study page).
#[tracing::instrument(skip_all)]
pub async fn peer_retire(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id<i64>,
) -> Reply {
    let page = crate::urls::page::STUDY;
    osteo_trial::pacs::retire_peer(&state.db, &me.principal(AuditSource::Ui), id)
        .await
        .map_err(|e| refused(&headers, page, e))?;
    flash(&session, "flash.settings_saved", None, None).await;
    Ok(Redirect::to(&format!("{page}#dicom-peers")).into_response())
}
