//! The screening log over REST: coordinators log and correct; administrators,
//! principal investigators, monitors and statisticians read.

use super::{ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::domain::Reason;
use osteo_trial::screening::{self, ScreeningEntry, ScreeningError, ScreeningInput, ScreeningLog};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a screening body: the fields of one entry (declared here once),
/// then the body's own. A correction lists them beside its reason rather
/// than flattening a `ScreeningIn`: a flattened entry made the document an
/// `allOf` of two closed objects, which no body can satisfy.
macro_rules! screening_body {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// prospective or retrospective.
            #[schema(pattern = "^(prospective|retrospective)$")]
            arm: String,
            /// YYYY-MM-DD; not in the future, not before 2024-04-01.
            #[schema(format = Date)]
            screening_date: String,
            /// The inclusion criterion (bone tumour to be confirmed by biopsy or surgery) is met.
            inclusion_met: bool,
            /// Exclusion codes: E1, E2, E3.
            #[serde(default)]
            #[schema(inline, value_type = Vec<String>, pattern = "^E[123]$")]
            exclusions: Vec<String>,
            /// enrolled, excluded or not_enrolled.
            #[schema(pattern = "^(enrolled|excluded|not_enrolled)$")]
            outcome: String,
            /// declined, missed or inclusion_not_met (with not_enrolled only).
            #[schema(pattern = "^(declined|missed|inclusion_not_met)$")]
            not_enrolled_reason: Option<String>,
            comment: Option<String>,
            $($(#[$field_meta])* $field: $ty,)*
        }
    };
}

screening_body!(
    /// One screened patient, as entered.
    ScreeningIn {}
);

screening_body!(
    /// A correction: the whole entry as it should read, and why.
    CorrectionIn {
        /// Why the entry is corrected (required).
        #[schema(min_length = 1, max_length = 500)]
        reason: String,
    }
);

impl CorrectionIn {
    fn split(self) -> (ScreeningIn, String) {
        (
            ScreeningIn {
                arm: self.arm,
                screening_date: self.screening_date,
                inclusion_met: self.inclusion_met,
                exclusions: self.exclusions,
                outcome: self.outcome,
                not_enrolled_reason: self.not_enrolled_reason,
                comment: self.comment,
            },
            self.reason,
        )
    }
}

#[derive(Serialize, ToSchema)]
pub struct VersionOut {
    version: i64,
    recorded_at: String,
    reason_for_change: Option<String>,
}

impl ScreeningIn {
    fn parse(self) -> Result<ScreeningInput, ApiError> {
        let bad = |e: ScreeningError| ApiError::bad_request(e.to_string());
        Ok(ScreeningInput {
            arm: self.arm.parse().map_err(bad)?,
            screening_date: self.screening_date,
            inclusion_met: self.inclusion_met,
            exclusions: self
                .exclusions
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            outcome: self.outcome.parse().map_err(bad)?,
            not_enrolled_reason: self
                .not_enrolled_reason
                .map(|r| r.parse())
                .transpose()
                .map_err(bad)?,
            comment: self.comment,
        })
    }
}

/// The log of every site with its gap and date-order report and the STARD flow counts.
#[utoipa::path(get, path = urls::SCREENINGS, context_path = urls::API, responses((status = 200, description = "entries, gaps, out_of_order, flow"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<ScreeningLog>, ApiError> {
    Ok(Json(screening::log(&state.db, &user.principal()).await?))
}

/// Logs a screened patient at the caller's site: the next screening number, and for an enrolment the next study number of the arm.
#[utoipa::path(post, path = urls::SCREENINGS, context_path = urls::API, request_body = ScreeningIn,
    responses((status = 201, description = "the new entry"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<ScreeningIn>,
) -> Result<(StatusCode, Json<ScreeningEntry>), ApiError> {
    let input = body.parse()?;
    let entry = screening::screen(&state.db, &user.principal(), input).await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Corrects an entry: a new version, audited with the reason; entries are never deleted.
#[utoipa::path(post, path = urls::SCREENING_CORRECTIONS, context_path = urls::API, params(("id" = i64, Path)), request_body = CorrectionIn,
    responses((status = 200, description = "the corrected entry"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn correct(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<CorrectionIn>,
) -> Result<Json<ScreeningEntry>, ApiError> {
    let Path(id) = id?;
    let (entry, reason) = body.split();
    let reason = Reason::parse(&reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let input = entry.parse()?;
    Ok(Json(
        screening::correct(&state.db, &user.principal(), id, input, &reason).await?,
    ))
}

/// The versions of one entry, oldest first.
#[utoipa::path(get, path = urls::SCREENING_VERSIONS, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, body = [VersionOut]), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn versions(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<Vec<VersionOut>>, ApiError> {
    let Path(id) = id?;
    let versions = screening::history(&state.db, &user.principal(), id).await?;
    Ok(Json(
        versions
            .into_iter()
            .map(|(version, recorded_at, reason_for_change)| VersionOut {
                version,
                recorded_at,
                reason_for_change,
            })
            .collect(),
    ))
}
