//! DICOMweb (PS3.18) under `/dicomweb`, for an archive, a viewer or an
//! analysis script: one base URL, a personal API token (`Authorization:
//! Bearer osteo_…`), the roles of the pages.
//!
//! - **STOW-RS** `POST /dicomweb/studies` ([`stow`]): a `multipart/related;
//!   type="application/dicom"` body of Part 10 files, each through the same
//!   path as an image sent over DICOM networking ([`crate::pacs::Receiver`]):
//!   the upload's checks, routing to its case or the quarantine,
//!   de-identification, storage and audit. For the roles that enter case
//!   data.
//! - **QIDO-RS** (search) and **WADO-RS** (retrieve) ([`read`]), read-only:
//!   the de-identified objects of the cases the caller may see, under the
//!   viewer's rule (`osteo_trial::case::images_for_viewer`): every case for
//!   the roles that see every case, the assigned cases for a radiologist,
//!   nothing for a statistician. What the caller may not see answers 404,
//!   as if it were not there. UIDs are the de-identified ones; nothing of
//!   the original identifiers is ever returned.

mod read;
mod stow;

use crate::api::ApiUser;
use crate::errors::ApiError;
use crate::imaging::InstanceRecord;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap};
use axum::routing::get;
use axum::Router;
use osteo_trial::case::{self, CaseError, ViewerImage};
use serde_json::{json, Value};

/// The routes under [`crate::urls::DICOMWEB`]; a STOW-RS body may be up to
/// `image_limit` bytes.
pub fn router(image_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/studies",
            get(read::search_studies)
                .post(stow::store)
                .layer(DefaultBodyLimit::max(image_limit)),
        )
        .route("/series", get(read::search_series))
        .route("/instances", get(read::search_instances))
        .route("/studies/{study}", get(read::retrieve))
        .route("/studies/{study}/metadata", get(read::metadata))
        .route("/studies/{study}/series", get(read::search_series))
        .route("/studies/{study}/instances", get(read::search_instances))
        .route("/studies/{study}/series/{series}", get(read::retrieve))
        .route(
            "/studies/{study}/series/{series}/metadata",
            get(read::metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances",
            get(read::search_instances),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}",
            get(read::retrieve),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(read::metadata),
        )
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such DICOMweb resource: STOW-RS is POST /dicomweb/studies; QIDO-RS and WADO-RS are under /dicomweb/studies",
    )
}

/// A stored object the caller may see, with its record.
#[derive(Debug, Clone)]
struct Held {
    image: ViewerImage,
    record: InstanceRecord,
}

/// Every stored object `user` may see, in the order they were stored.
async fn visible(state: &AppState, user: &ApiUser) -> Result<Vec<Held>, ApiError> {
    let images = case::images_for_viewer(&state.db, &user.principal())
        .await
        .map_err(|e| match e {
            CaseError::Forbidden => ApiError::forbidden(),
            e => ApiError::internal(e),
        })?;
    let cache = state.settings.data_dir.join("cache");
    let mut held = Vec::with_capacity(images.len());
    for image in images {
        let record = crate::imaging::instance_record(state.images.as_ref(), &cache, &image.sha256)
            .await
            .map_err(ApiError::internal)?;
        match record {
            Some(record) => held.push(Held { image, record }),
            None => {
                tracing::error!(sha256 = %image.sha256, "a recorded image is missing from the object store");
            }
        }
    }
    Ok(held)
}

/// The DICOMweb base URL clients see: the public origin when set, else the
/// request's host.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let origin = match &state.settings.public_origin {
        Some(o) => o.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{origin}{}", crate::urls::DICOMWEB)
}

/// One attribute in DICOM JSON (PS3.18 F.2.2).
fn attribute(vr: &str, values: Vec<Value>) -> Value {
    if values.is_empty() {
        json!({ "vr": vr })
    } else {
        json!({ "vr": vr, "Value": values })
    }
}

/// The URL of a study, a series or an instance.
fn retrieve_url(base: &str, study: &str, series: Option<&str>, instance: Option<&str>) -> Value {
    let mut url = format!("{base}/studies/{study}");
    if let Some(s) = series {
        url.push_str(&format!("/series/{s}"));
    }
    if let Some(i) = instance {
        url.push_str(&format!("/instances/{i}"));
    }
    attribute("UR", vec![Value::String(url)])
}

/// Adds each text as a `Warning: 299` header (RFC 7234, as PS3.18 uses
/// it), kept to printable ASCII: a character a header cannot carry becomes
/// `?`, a quote an apostrophe.
fn add_warnings(response: &mut axum::response::Response, warnings: &[String]) {
    for w in warnings {
        let text: String = w
            .chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '?',
            })
            .collect();
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("299 osteo-edc \"{text}\"")) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
}
