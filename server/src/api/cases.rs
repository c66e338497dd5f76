//! Cases over REST: the case record as the caller may see it, each workflow
//! step, data queries, study settings, the dashboard and the database lock.
//! Blinded parts answer 403 to blinded roles (radiologists always,
//! statisticians until database lock).

use super::{reason, ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::case::crf::ClinicalCrf;
use osteo_trial::case::pathology::PathologyInput;
use osteo_trial::case::{
    self, CaseDetail, CaseEnd, CaseState, CaseSummary, CrfRecord, DataQuery, PathologyRecord,
    Prediction, QueryAction, Read, ReadInput, SignatureMeaning,
};
use osteo_trial::domain::CaseId;
use osteo_trial::domain::Reason;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

signing_bodies!(SignIn, AmendIn);

/// Every case (coordinators, PIs, monitors, administrators).
#[utoipa::path(get, path = urls::CASES, context_path = urls::API, responses((status = 200, description = "case summaries"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    Ok(Json(case::list_cases(&state.db, &user.principal()).await?))
}

/// What is due for the caller: steps for coordinators, reads for radiologists, queries for monitors.
#[utoipa::path(get, path = urls::WORKLIST, context_path = urls::API, responses((status = 200, description = "case summaries")))]
#[tracing::instrument(skip_all)]
pub async fn worklist(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    Ok(Json(case::worklist(&state.db, &user.principal()).await?))
}

/// One case as the caller may see it; blinded parts are withheld (listed in `withheld`).
#[utoipa::path(get, path = urls::CASE, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, description = "the case"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<CaseDetail>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::case_detail(&state.db, &user.principal(), id).await?,
    ))
}

/// A refused upload: every file refused (each with its reason), or a form
/// that could not be read at all.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // A document type: answers are an `UploadOut` or an `ErrorBody`.
pub enum UploadRefused {
    Files(UploadOut),
    Error(ErrorBody),
}

/// The outcome of each uploaded file.
#[derive(Serialize, ToSchema)]
pub struct UploadOut {
    files: Vec<crate::imaging::upload::FileOutcome>,
}

/// Uploads one or many DICOM radiographs (multipart: optional `view` = auto|frontal|lateral|oblique, then `file` parts). Each file is checked, de-identified and stored, or refused with its reason; 200 when at least one was stored, 400 when none was.
#[utoipa::path(post, path = urls::CASE_IMAGES, context_path = urls::API, params(("id" = i64, Path)), request_body(content_type = "multipart/form-data", description = "view (optional), file (one or more)"),
    responses((status = 200, body = UploadOut), (status = 400, description = "no file was stored (each file's reason), or the form could not be read", body = UploadRefused), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn upload_images(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<UploadOut>), ApiError> {
    let Path(id) = id?;
    let by = user.principal();
    if !by.role.can(osteo_trial::domain::Permission::EnterCaseData) {
        return Err(ApiError::forbidden());
    }
    let form = form.map_err(|e| {
        ApiError::bad_request(format!("send multipart/form-data: {}", e.body_text()))
    })?;
    let files = state
        .receive_upload(&by, id, form)
        .await
        .map_err(ApiError::bad_request)?;
    Ok((
        crate::imaging::upload::batch_status(&files),
        Json(UploadOut { files }),
    ))
}

/// Confirms the radiographs are complete (a frontal and a lateral view present).
#[utoipa::path(post, path = urls::CASE_IMAGES_COMPLETE, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, description = "the new state"), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn images_complete(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<CaseState>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::complete_images(&state.db, &user.principal(), id).await?,
    ))
}

/// The clinical CRF as saved: the form, whether to mark it complete, and the reason for change once it is complete.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrfIn {
    #[schema(value_type = Object)]
    data: ClinicalCrf,
    #[serde(default)]
    complete: bool,
    reason: Option<String>,
}

/// Saves the clinical CRF (draft or complete). Edit checks answer 400 with `fields`.
#[utoipa::path(put, path = urls::CASE_CRF, context_path = urls::API, params(("id" = i64, Path)), request_body = CrfIn,
    responses((status = 200, description = "the CRF version saved"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn save_crf(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<CrfIn>,
) -> Result<Json<CrfRecord>, ApiError> {
    let Path(id) = id?;
    let reason = reason(body.reason.as_deref())?;
    Ok(Json(
        case::save_crf(
            &state.db,
            &user.principal(),
            id,
            body.data,
            body.complete,
            reason.as_ref(),
        )
        .await?,
    ))
}

/// An electronic signature: the password again and the meaning.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// author, review or approval.
    meaning: Option<String>,
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
}

impl SignIn {
    fn meaning(&self, default: SignatureMeaning) -> Result<SignatureMeaning, ApiError> {
        self.meaning
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: osteo_trial::codes::UnknownCode| ApiError::bad_request(e.to_string()))
            .map(|m| m.unwrap_or(default))
    }
}

/// Signs the complete CRF (coordinator as author, PI as reviewer or approver).
#[utoipa::path(post, path = urls::CASE_CRF_SIGN, context_path = urls::API, params(("id" = i64, Path)), request_body = SignIn,
    responses((status = 200, description = "the signed CRF"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sign_crf(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<CrfRecord>, ApiError> {
    let Path(id) = id?;
    let meaning = body.meaning(SignatureMeaning::Author)?;
    Ok(Json(
        case::sign_crf(&state.db, &user.principal(), id, meaning, &body.secret()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReaderIn {
    /// The radiologist's username.
    username: String,
}

/// Assigns a radiologist to read the case; answers the readers assigned.
#[utoipa::path(post, path = urls::CASE_READERS, context_path = urls::API, params(("id" = i64, Path)), request_body = ReaderIn,
    responses((status = 200, body = [String]), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn assign_reader(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<ReaderIn>,
) -> Result<Json<Vec<String>>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::assign_reader(&state.db, &user.principal(), id, &body.username).await?,
    ))
}

/// Saves the caller's own blinded read (a draft until signed); the Bone-RADS score is computed by the study's rule table.
#[utoipa::path(put, path = urls::CASE_READ, context_path = urls::API, params(("id" = i64, Path)), request_body(content = Object, description = "features {margin, periosteal, endosteal_erosion, pathological_fracture, soft_tissue_mass, known_primary_malignancy}, likelihood 0-100, call benign|malignant, comment"),
    responses((status = 200, description = "the read with its score"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn save_read(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<ReadInput>,
) -> Result<Json<Read>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::save_read(&state.db, &user.principal(), id, body).await?,
    ))
}

/// Signs the caller's read, which locks it.
#[utoipa::path(post, path = urls::CASE_READ_SIGN, context_path = urls::API, params(("id" = i64, Path)), request_body = SignIn,
    responses((status = 200, description = "the locked read"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sign_read(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<Read>, ApiError> {
    let Path(id) = id?;
    body.meaning(SignatureMeaning::Author)?;
    let read = case::sign_read(&state.db, &user.principal(), id, &body.secret()).await?;
    Ok(Json(read))
}

/// Every read of the case (403 for blinded roles).
#[utoipa::path(get, path = urls::CASE_READS, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, description = "reads"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn reads(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<Vec<Read>>, ApiError> {
    let Path(id) = id?;
    Ok(Json(case::reads(&state.db, &user.principal(), id).await?))
}

/// The locked AI prediction (403 for blinded roles; `null` while awaiting AI).
#[utoipa::path(get, path = urls::CASE_PREDICTION, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, description = "prediction or null"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn prediction(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<Option<Prediction>>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::prediction(&state.db, &user.principal(), id).await?,
    ))
}

/// A view's heat-map overlay of the locked prediction (PNG; 403 for
/// blinded roles, 404 while awaiting AI or past the last view).
#[utoipa::path(get, path = urls::CASE_HEATMAP, context_path = urls::API, params(("id" = i64, Path), ("n" = usize, Path)),
    responses((status = 200, description = "PNG", content_type = "image/png"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn heatmap(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<(CaseId, usize)>, PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path((id, n)) = path?;
    match crate::ai::heatmap_png(&state.db, state.images.as_ref(), &user.principal(), id, n).await?
    {
        Some(png) => Ok(axum::response::IntoResponse::into_response((
            [(axum::http::header::CONTENT_TYPE, "image/png")],
            png,
        ))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such heat map",
        )),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `en` (default) or `zh-CN`.
    lang: Option<String>,
}

/// The case's diagnostic report as PDF: views and heat maps, the primary
/// reader's Bone-RADS, the AI probability and call, the model (403 for
/// blinded roles, 404 while awaiting AI); each download audited.
#[utoipa::path(get, path = urls::CASE_REPORT, context_path = urls::API, params(("id" = i64, Path), ReportQuery),
    responses((status = 200, description = "PDF", content_type = "application/pdf"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn case_report(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<CaseId>, PathRejection>,
    Query(q): Query<ReportQuery>,
) -> Result<axum::response::Response, ApiError> {
    let Path(id) = path?;
    let locale = match q.lang.as_deref() {
        None => osteo_trial::domain::Locale::En,
        Some(l) => l.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "lang is en or zh-CN",
            )
        })?,
    };
    match crate::case_report::pdf(&state, &user.principal(), id, locale).await? {
        Some(pdf) => Ok(crate::downloads::attachment(
            &format!("diagnostic-report-{id}-{}.pdf", locale.tag()),
            pdf,
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no locked prediction yet: the report follows the AI",
        )),
    }
}

/// The current pathology (403 for blinded roles).
#[utoipa::path(get, path = urls::CASE_PATHOLOGY, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, description = "pathology or null"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn pathology(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<Option<PathologyRecord>>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        case::pathology_of(&state.db, &user.principal(), id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathologyIn {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pathology: PathologyInput,
    /// Required for a correction.
    reason: Option<String>,
}

/// Enters pathology — refused (409 `pathology_gate`) until the AI prediction and every read are locked — or corrects it with a reason.
#[utoipa::path(post, path = urls::CASE_PATHOLOGY, context_path = urls::API, params(("id" = i64, Path)), request_body(content = Object, description = "entity (WHO 2020 code), behaviour, procedure biopsy|resection, specimen_date, pathologist, comment, reason"),
    responses((status = 201, description = "the pathology version"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn enter_pathology(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<PathologyIn>,
) -> Result<(StatusCode, Json<PathologyRecord>), ApiError> {
    let Path(id) = id?;
    let reason = reason(body.reason.as_deref())?;
    let record = case::enter_pathology(
        &state.db,
        &user.principal(),
        id,
        body.pathology,
        reason.as_ref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Signs the current pathology; the first signature completes the case.
#[utoipa::path(post, path = urls::CASE_PATHOLOGY_SIGN, context_path = urls::API, params(("id" = i64, Path)), request_body = SignIn,
    responses((status = 200, description = "the signed pathology"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sign_pathology(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<PathologyRecord>, ApiError> {
    let Path(id) = id?;
    let meaning = body.meaning(SignatureMeaning::Author)?;
    Ok(Json(
        case::sign_pathology(&state.db, &user.principal(), id, meaning, &body.secret()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndIn {
    /// withdrawn or excluded.
    kind: String,
    /// For withdrawn: consent_withdrawn, lost_to_follow_up, pathology_not_obtained; for excluded: E1, E2, E3.
    code: String,
    reason: String,
    /// A withdrawal: the principal investigator's password (the signature).
    password: Option<String>,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
}

/// Ends a case with a coded reason: an eligibility exclusion (E1–E3, the
/// coordinator) until the reads lock, or a withdrawal (the principal
/// investigator, signed with the password) until pathology is entered.
/// 409 with the rule when the case is past that point; 403 when a
/// withdrawal is not the PI's.
#[utoipa::path(post, path = urls::CASE_END, context_path = urls::API, params(("id" = i64, Path)), request_body = EndIn,
    responses((status = 200, description = "the new state"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn end(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<EndIn>,
) -> Result<Json<CaseState>, ApiError> {
    let Path(id) = id?;
    let end = parse_end(&body.kind, &body.code).map_err(ApiError::bad_request)?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(
        case::end_case(
            &state.db,
            &user.principal(),
            id,
            end,
            &reason,
            body.password
                .as_deref()
                .map(|p| {
                    osteo_trial::accounts::SigningSecret::new(p, body.second_factor.as_deref())
                })
                .as_ref(),
        )
        .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendIn {
    /// The whole form, with the frozen fields changed.
    #[schema(value_type = Object)]
    data: ClinicalCrf,
    /// Why the frozen inputs change (required).
    reason: String,
    /// The principal investigator's password: the signature on the deviation.
    password: String,
    /// The second factor's code (six digits from the authenticator app, or
    /// an unused recovery code): required when the account has a second
    /// factor, which administrators and principal investigators always have.
    second_factor: Option<String>,
}

/// Changes CRF fields frozen at the AI lock (those the model took, or that
/// define a subgroup): the principal investigator, with a reason and a
/// signature. Each changed field is recorded as a protocol deviation, listed
/// in the locked report; the prediction never changes.
#[utoipa::path(post, path = urls::CASE_CRF_AMENDMENTS, context_path = urls::API, params(("id" = i64, Path)), request_body = AmendIn,
    responses((status = 201, description = "the new CRF version"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn amend_crf(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<AmendIn>,
) -> Result<(StatusCode, Json<CrfRecord>), ApiError> {
    let Path(id) = id?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(
            case::amend_frozen_crf(
                &state.db,
                &user.principal(),
                id,
                body.data.clone(),
                &reason,
                &body.secret(),
            )
            .await?,
        ),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityIn {
    /// Why the radiographs are of poor quality (required).
    reason: String,
}

/// Marks the case's radiographs as poor quality (coordinator, with a reason):
/// the case then proposes exclusion E1, confirmed by ending the case with E1
/// (`POST /api/v1/cases/{id}/end`). 409 once the case has ended.
#[utoipa::path(post, path = urls::CASE_POOR_QUALITY, context_path = urls::API, params(("id" = i64, Path)), request_body = QualityIn,
    responses((status = 200, description = "the case with its quality marks"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn poor_quality(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<QualityIn>,
) -> Result<Json<CaseDetail>, ApiError> {
    let Path(id) = id?;
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let by = user.principal();
    case::mark_poor_quality(&state.db, &by, id, &reason).await?;
    Ok(Json(case::case_detail(&state.db, &by, id).await?))
}

/// Parses how a case ends: `withdrawn` with a withdrawal reason, or `excluded` with E1–E3.
pub fn parse_end(kind: &str, code: &str) -> Result<CaseEnd, String> {
    match kind.trim() {
        "withdrawn" => code
            .parse()
            .map(CaseEnd::Withdrawn)
            .map_err(|e: osteo_trial::codes::UnknownCode| e.to_string()),
        "excluded" => code
            .parse()
            .map(CaseEnd::Excluded)
            .map_err(|e: osteo_trial::screening::ScreeningError| e.to_string()),
        other => Err(format!("unknown kind `{other}`; use withdrawn or excluded")),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryFilter {
    /// Only open and answered queries.
    #[serde(default)]
    open: bool,
    /// One case only.
    #[param(value_type = Option<i64>, minimum = 1)]
    case: Option<CaseId>,
}

/// Data queries, per site and case.
#[utoipa::path(get, path = urls::QUERIES, context_path = urls::API, params(QueryFilter),
    responses((status = 200, description = "queries"), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn queries(
    State(state): State<AppState>,
    user: ApiUser,
    filter: Result<Query<QueryFilter>, QueryRejection>,
) -> Result<Json<Vec<DataQuery>>, ApiError> {
    let Query(f) = filter?;
    Ok(Json(
        case::list_queries(&state.db, &user.principal(), f.case, f.open).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryIn {
    /// A CRF field name, or case, images, read, pathology.
    field: String,
    text: String,
}

/// Raises a data query on a field of the case.
#[utoipa::path(post, path = urls::CASE_QUERIES, context_path = urls::API, params(("id" = i64, Path)), request_body = QueryIn,
    responses((status = 201, description = "the query"), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn raise_query(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<QueryIn>,
) -> Result<(StatusCode, Json<DataQuery>), ApiError> {
    let Path(id) = id?;
    let q = case::raise_query(&state.db, &user.principal(), id, &body.field, &body.text).await?;
    Ok((StatusCode::CREATED, Json(q)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryActionIn {
    /// answer, close, reopen or cancel.
    action: String,
    text: String,
}

/// Answers, closes, reopens or cancels a query.
#[utoipa::path(post, path = urls::QUERY, context_path = urls::API, params(("id" = i64, Path)), request_body = QueryActionIn,
    responses((status = 200, description = "the query"), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn act_on_query(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<QueryActionIn>,
) -> Result<Json<DataQuery>, ApiError> {
    let Path(id) = id?;
    let action: QueryAction = body
        .action
        .parse()
        .map_err(|e: osteo_trial::codes::UnknownCode| ApiError::bad_request(e.to_string()))?;
    Ok(Json(
        case::act_on_query(&state.db, &user.principal(), id, action, &body.text).await?,
    ))
}
