//! STOW-RS: `POST /dicomweb/studies` (PS3.18 10.5).
//!
//! The body is read whole (it is bounded by the upload limit) and its
//! multipart structure checked before anything is stored, so a malformed
//! request changes nothing. Then each part goes through
//! [`crate::pacs::Receiver::receive`], as an image sent over DICOM
//! networking does. The answer is the Store Instances Response Module in
//! DICOM JSON: the instances kept (with the Retrieve URL of the de-identified
//! copy once it is on a case), and the ones that failed with their Failure
//! Reason. Each failure's reason in words is also in a `Warning` header.
//! 200: all kept; 202: some failed; 409: none kept.

use super::{add_warnings, attribute, base_url, retrieve_url};
use crate::api::ApiUser;
use crate::errors::ApiError;
use crate::pacs::{failure_status, status, Received, Sender};
use crate::state::AppState;
use crate::throttle::ClientAddress;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use osteo_trial::domain::Permission;
use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr};

/// The one part media type stored.
const DICOM: &str = "application/dicom";

/// One part of the request: its media type (when it names one) and bytes.
struct Part {
    media_type: Option<String>,
    bytes: Vec<u8>,
}

/// Stores the instances of a `multipart/related; type="application/dicom"`
/// body.
#[tracing::instrument(skip_all)]
pub async fn store(
    State(state): State<AppState>,
    user: ApiUser,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    // `Bytes`, not a stream: the route's body limit applies.
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if !user.0.role.can(Permission::EnterCaseData) {
        return Err(ApiError::forbidden());
    }
    let boundary = boundary_of(&headers)?;
    let parts = read_parts(Body::from(body), boundary).await?;
    if parts.is_empty() {
        return Err(ApiError::bad_request(
            "the request holds no part: send one application/dicom part per instance",
        ));
    }
    let by = user.principal();
    let from = Sender {
        name: format!("STOW-RS {}", user.0.username),
        address: address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        study_number_tag: None,
    };
    let base = base_url(&state, &headers);
    let receiver = state.receiver();
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    for (n, part) in parts.into_iter().enumerate() {
        if let Some(other) = part.media_type.filter(|m| m != DICOM) {
            failed.push(item("", "", Some(status::CANNOT_UNDERSTAND), None));
            warnings.push(format!(
                "part {}: {other} is not stored; send application/dicom",
                n + 1
            ));
            continue;
        }
        let got = receiver.receive(part.bytes, &by, &from).await;
        let (class, instance) = (got.sop_class.as_str(), got.sop_instance.as_str());
        match got.outcome {
            Received::Stored { uids, .. } => referenced.push(item(
                class,
                instance,
                None,
                Some(retrieve_url(
                    &base,
                    &uids.study,
                    Some(&uids.series),
                    Some(&uids.instance),
                )),
            )),
            Received::AlreadyHeld | Received::Quarantined(_) => {
                referenced.push(item(class, instance, None, None))
            }
            Received::Refused(e) => {
                failed.push(item(class, instance, Some(failure_status(&e)), None));
                warnings.push(format!("part {}: {e}", n + 1));
            }
            Received::Failed(why) => {
                failed.push(item(
                    class,
                    instance,
                    Some(status::PROCESSING_FAILURE),
                    None,
                ));
                warnings.push(format!("part {}: {why}", n + 1));
            }
        }
    }
    let code = match (referenced.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CONFLICT,
    };
    let mut answer = Map::new();
    if !failed.is_empty() {
        answer.insert("00081198".into(), attribute("SQ", failed));
    }
    if !referenced.is_empty() {
        answer.insert("00081199".into(), attribute("SQ", referenced));
    }
    let mut response = (
        code,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Object(answer).to_string(),
    )
        .into_response();
    add_warnings(&mut response, &warnings);
    Ok(response)
}

/// A Referenced SOP Sequence or Failed SOP Sequence item.
fn item(class: &str, instance: &str, failure: Option<u16>, url: Option<Value>) -> Value {
    let uid = |v: &str| {
        if v.is_empty() {
            vec![]
        } else {
            vec![Value::String(v.to_owned())]
        }
    };
    let mut it = Map::new();
    it.insert("00081150".into(), attribute("UI", uid(class)));
    it.insert("00081155".into(), attribute("UI", uid(instance)));
    if let Some(f) = failure {
        it.insert("00081197".into(), attribute("US", vec![json!(f)]));
    }
    if let Some(u) = url {
        it.insert("00081190".into(), u);
    }
    Value::Object(it)
}

/// The boundary of a `multipart/related` body whose root type is
/// `application/dicom` (the type parameter may be left out).
fn boundary_of(headers: &HeaderMap) -> Result<String, ApiError> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send multipart/related; type=\"application/dicom\"; boundary=…",
        )
    };
    let mime: mime::Mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(unsupported)?;
    if mime.type_() != mime::MULTIPART || mime.subtype().as_str() != "related" {
        return Err(unsupported());
    }
    if mime
        .get_param("type")
        .is_some_and(|t| !t.as_str().eq_ignore_ascii_case(DICOM))
    {
        return Err(unsupported());
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
        .ok_or_else(|| ApiError::bad_request("the multipart body names no boundary"))
}

/// Reads every part before anything is stored.
async fn read_parts(body: Body, boundary: String) -> Result<Vec<Part>, ApiError> {
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut parts = Vec::new();
    let unreadable =
        |e: multer::Error| ApiError::bad_request(format!("the multipart body cannot be read: {e}"));
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let media_type = field
            .content_type()
            .map(|m| m.essence_str().to_ascii_lowercase());
        let bytes = field.bytes().await.map_err(unreadable)?;
        parts.push(Part {
            media_type,
            bytes: bytes.to_vec(),
        });
    }
    Ok(parts)
}
