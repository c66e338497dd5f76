//! The PACS link over REST: the DICOM peers allowed to send (a study
//! setting), the routes of a case (which accession number or patient ID
//! sends images to it), and the quarantine of received images that matched
//! no case, which a coordinator assigns or discards.

use super::{ApiJson, ApiUser};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use osteo_trial::domain::CaseId;
use osteo_trial::pacs::{self, Peer, Quarantined, Route};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An allowed DICOM peer.
#[derive(Serialize, ToSchema)]
pub struct PeerOut {
    id: i64,
    ae_title: String,
    /// The IP address it must call from; absent: any address.
    address: Option<String>,
    /// The tag (eight hexadecimal digits) in which this peer sends the
    /// study number, for images no route matches; absent: routes only.
    study_number_tag: Option<String>,
    added_at: String,
}

impl From<Peer> for PeerOut {
    fn from(p: Peer) -> Self {
        PeerOut {
            id: p.id,
            ae_title: p.ae_title,
            address: p.address,
            study_number_tag: p.study_number_tag,
            added_at: p.added_at,
        }
    }
}

/// The DICOM peers allowed to send images (administrators and the PI).
#[utoipa::path(get, path = urls::DICOM_PEERS, context_path = urls::API, responses((status = 200, body = [PeerOut]), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn peers(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<PeerOut>>, ApiError> {
    if !user
        .principal()
        .role
        .can(osteo_trial::domain::Permission::ManageStudy)
    {
        return Err(ApiError::forbidden());
    }
    Ok(Json(
        pacs::peers(&state.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerIn {
    /// The calling AE title (1 to 16 characters).
    ae_title: String,
    /// The IP address it must call from; empty or absent: any address.
    address: Option<String>,
    /// The tag in which this peer sends the study number (P-0007), by
    /// keyword (`StudyID`) or as eight hexadecimal digits (`00200010`):
    /// its images that match no route go to the case it names. Empty or
    /// absent: routes only.
    study_number_tag: Option<String>,
}

/// Allows a DICOM peer to send images (administrators and the PI).
#[utoipa::path(post, path = urls::DICOM_PEERS, context_path = urls::API, request_body = PeerIn,
    responses((status = 201, body = PeerOut), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn add_peer(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<PeerIn>,
) -> Result<(StatusCode, Json<PeerOut>), ApiError> {
    let tag = body
        .study_number_tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            crate::imaging::tag_named(t)
                .map(crate::imaging::tag_key)
                .ok_or_else(|| pacs::PacsError::BadTag(t.chars().take(32).collect()))
        })
        .transpose()?;
    let peer = pacs::add_peer(
        &state.db,
        &user.principal(),
        pacs::NewPeer {
            ae_title: &body.ae_title,
            address: body.address.as_deref(),
            study_number_tag: tag.as_deref(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(peer.into())))
}

/// Retires a DICOM peer: it may no longer send.
#[utoipa::path(post, path = urls::DICOM_PEER_RETIRE, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn retire_peer(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    pacs::retire_peer(&state.db, &user.principal(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A route of a case: images whose identifier of this kind matches go to
/// it (the identifier itself is not kept).
#[derive(Serialize, ToSchema)]
pub struct RouteOut {
    id: i64,
    case_id: i64,
    /// accession_number or patient_id.
    kind: String,
    added_at: String,
}

impl From<Route> for RouteOut {
    fn from(r: Route) -> Self {
        RouteOut {
            id: r.id,
            case_id: r.case_id,
            kind: r.kind.to_string(),
            added_at: r.added_at,
        }
    }
}

/// The routes of a case.
#[utoipa::path(get, path = urls::CASE_DICOM_ROUTES, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, body = [RouteOut]), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn routes(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
) -> Result<Json<Vec<RouteOut>>, ApiError> {
    let Path(id) = id?;
    Ok(Json(
        pacs::routes(&state.db, &user.principal(), id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteIn {
    /// accession_number or patient_id.
    kind: String,
    /// The value as the hospital's system writes it (1 to 64 characters).
    identifier: String,
}

/// Registers a route (coordinators): images a PACS sends with this accession number or patient ID go to this enrolled case. Only a keyed hash of the identifier is stored.
#[utoipa::path(post, path = urls::CASE_DICOM_ROUTES, context_path = urls::API, params(("id" = i64, Path)), request_body = RouteIn,
    responses((status = 201, body = RouteOut), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn add_route(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<CaseId>, PathRejection>,
    ApiJson(body): ApiJson<RouteIn>,
) -> Result<(StatusCode, Json<RouteOut>), ApiError> {
    let Path(id) = id?;
    let kind = body
        .kind
        .parse()
        .map_err(|e: osteo_trial::codes::UnknownCode| ApiError::bad_request(e.to_string()))?;
    let route = pacs::add_route(&state.db, &user.principal(), id, kind, &body.identifier).await?;
    Ok((StatusCode::CREATED, Json(route.into())))
}

/// A received image in quarantine.
#[derive(Serialize, ToSchema)]
pub struct QuarantinedOut {
    id: i64,
    received_at: String,
    calling_ae: String,
    peer_address: String,
    /// SHA-256 of the file as received.
    original_sha256: String,
    size_bytes: i64,
    /// Why it matched no case.
    reason: String,
    /// assigned or discarded once resolved.
    outcome: Option<String>,
    case_id: Option<i64>,
    resolved_at: Option<String>,
    resolution: Option<String>,
    /// What the file says of itself (waiting images only, in the one-image answer).
    found: Option<crate::pacs::Found>,
}

impl From<Quarantined> for QuarantinedOut {
    fn from(q: Quarantined) -> Self {
        QuarantinedOut {
            id: q.id,
            received_at: q.received_at,
            calling_ae: q.calling_ae,
            peer_address: q.peer_address,
            original_sha256: q.original_sha256,
            size_bytes: q.size_bytes,
            reason: q.reason,
            outcome: q.outcome,
            case_id: q.case_id,
            resolved_at: q.resolved_at,
            resolution: q.resolution,
            found: None,
        }
    }
}

/// Received images that matched no case: waiting first, then resolved (coordinators).
#[utoipa::path(get, path = urls::DICOM_QUARANTINE, context_path = urls::API,
    responses((status = 200, body = [QuarantinedOut]), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn quarantine(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<QuarantinedOut>>, ApiError> {
    Ok(Json(
        pacs::quarantined(&state.db, &user.principal())
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// One quarantined image, with what its file says (patient name and ID, accession number, study date) while it waits (coordinators).
#[utoipa::path(get, path = urls::DICOM_QUARANTINED, context_path = urls::API, params(("id" = i64, Path)),
    responses((status = 200, body = QuarantinedOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn quarantined(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<QuarantinedOut>, ApiError> {
    let Path(id) = id?;
    let q = pacs::quarantined_one(&state.db, &user.principal(), id).await?;
    let waiting = q.outcome.is_none();
    let sha = q.original_sha256.clone();
    let mut out = QuarantinedOut::from(q);
    if waiting {
        out.found = crate::pacs::found(&state.quarantine, &sha)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(Json(out))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    /// The case the image belongs to (enrolled, images not yet complete).
    case_id: i64,
    /// frontal, lateral or oblique, when the file does not say.
    view: Option<String>,
}

/// Stores a quarantined image on a case, through the upload's checks and de-identification (coordinators).
#[utoipa::path(post, path = urls::DICOM_QUARANTINE_ASSIGN, context_path = urls::API, params(("id" = i64, Path)), request_body = AssignIn,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn assign(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<AssignIn>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let case_id = CaseId::try_from(body.case_id)
        .map_err(|e| ApiError::bad_request(format!("case_id: {e}")))?;
    let view = body
        .view
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: osteo_trial::codes::UnknownCode| ApiError::bad_request(e.to_string()))?;
    crate::pacs::assign(
        &state.db,
        state.images.as_ref(),
        &state.settings.image_limits(),
        &state.quarantine,
        &user.principal(),
        id,
        crate::pacs::Assignment { case_id, view },
    )
    .await
    .map_err(assign_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscardIn {
    /// Why the image is not trial data (1 to 500 characters).
    reason: String,
}

/// Discards a quarantined image with a reason: the record stays, the file is removed (coordinators).
#[utoipa::path(post, path = urls::DICOM_QUARANTINE_DISCARD, context_path = urls::API, params(("id" = i64, Path)), request_body = DiscardIn,
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn discard(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<DiscardIn>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    crate::pacs::discard(
        &state.db,
        &state.quarantine,
        &user.principal(),
        id,
        &body.reason,
    )
    .await
    .map_err(assign_error)?;
    Ok(StatusCode::NO_CONTENT)
}

fn assign_error(e: crate::pacs::AssignError) -> ApiError {
    ApiError::refused(e)
}
