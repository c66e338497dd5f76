//! The screening log's form posts: a screening entry and its correction.

use super::{flash, refused, FormBody, Halt, Id, Member, Reply};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use osteo_trial::domain::{AuditSource, Reason};
use osteo_trial::screening::{self, ExclusionCode, ScreeningEntry, ScreeningError, ScreeningInput};
use serde::Deserialize;

// ---------------------------------------------------------------- screening

/// The screening form. Checkboxes are present only when ticked.
#[derive(Deserialize)]
pub struct ScreeningForm {
    arm: String,
    screening_date: String,
    inclusion_met: Option<String>,
    e1: Option<String>,
    e2: Option<String>,
    e3: Option<String>,
    outcome: String,
    not_enrolled_reason: Option<String>,
    comment: Option<String>,
    reason: Option<String>,
}

impl ScreeningForm {
    fn input(&self) -> Result<ScreeningInput, ScreeningError> {
        let exclusions = [
            (&self.e1, ExclusionCode::E1),
            (&self.e2, ExclusionCode::E2),
            (&self.e3, ExclusionCode::E3),
        ]
        .into_iter()
        .filter(|(ticked, _)| ticked.is_some())
        .map(|(_, code)| code)
        .collect();
        Ok(ScreeningInput {
            arm: self.arm.parse()?,
            screening_date: self.screening_date.clone(),
            inclusion_met: self.inclusion_met.is_some(),
            exclusions,
            outcome: self.outcome.parse()?,
            not_enrolled_reason: self
                .not_enrolled_reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(str::parse)
                .transpose()?,
            comment: self.comment.clone(),
        })
    }
}

/// Maps a refused screening entry to the form's error code.
fn screening_error(headers: &HeaderMap, e: ScreeningError) -> Halt {
    refused(headers, page::SCREENING, e)
}

fn screened_label(e: &ScreeningEntry) -> String {
    match &e.study_number {
        Some(study) => format!("{} #{} → {study}", e.site_code, e.screening_no),
        None => format!("{} #{}", e.site_code, e.screening_no),
    }
}

#[tracing::instrument(skip_all)]
pub async fn screen(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    FormBody(f): FormBody<ScreeningForm>,
) -> Reply {
    let input = f.input().map_err(|e| screening_error(&headers, e))?;
    let entry = screening::screen(&state.db, &me.principal(AuditSource::Ui), input)
        .await
        .map_err(|e| screening_error(&headers, e))?;
    flash(
        &session,
        "flash.screened",
        Some(screened_label(&entry)),
        None,
    )
    .await;
    Ok(Redirect::to(page::SCREENING).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn correct_screening(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ScreeningForm>,
) -> Reply {
    let reason = Reason::parse(f.reason.as_deref().unwrap_or_default())
        .map_err(|e| screening_error(&headers, e.into()))?;
    let input = f.input().map_err(|e| screening_error(&headers, e))?;
    let entry = screening::correct(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        input,
        &reason,
    )
    .await
    .map_err(|e| screening_error(&headers, e))?;
    flash(
        &session,
        "flash.screening_corrected",
        Some(screened_label(&entry)),
        None,
    )
    .await;
    Ok(Redirect::to(page::SCREENING).into_response())
}
