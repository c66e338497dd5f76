//! The statistical analysis plan's form posts: a draft and the signature.

use super::{flash, refused, FormBody, Member, Reply, SignForm};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use osteo_trial::domain::AuditSource;
use osteo_trial::study;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SapForm {
    threshold: f64,
    intermediate: String,
    readers: String,
    conf_level: f64,
}

/// Saves a new version of the analysis plan.
#[tracing::instrument(skip_all)]
pub async fn sap_draft(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SapForm>,
) -> Reply {
    let err = |e| refused(&headers, page::ANALYSIS, e);
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
    Ok(Redirect::to(page::ANALYSIS).into_response())
}

/// Signs the newest version of the analysis plan.
#[tracing::instrument(skip_all)]
pub async fn sap_sign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    study::sign_sap(&state.db, &me.principal(AuditSource::Ui), &f.secret())
        .await
        .map_err(|e| refused(&headers, page::ANALYSIS, e))?;
    flash(&session, "flash.sap_signed", None, None).await;
    Ok(Redirect::to(page::ANALYSIS).into_response())
}
