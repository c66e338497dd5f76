//! The PACS link's test set-up: a server with its DICOM port, an allowed
//! peer, a case's route, and what landed on a case.

use crate::{spawn_app_with, Api, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// A server whose DICOM port answers to `our_ae` (over TLS when `tls` is
/// given), with `peer_ae` at 127.0.0.1 allowed to send.
pub async fn spawn_app_with_dicom(
    our_ae: &str,
    peer_ae: &str,
    tls: Option<osteo_server::pacs::scp::TlsFiles>,
) -> TestApp {
    let ae_title = our_ae.to_owned();
    let app = spawn_app_with(move |s| {
        s.dicom = Some(osteo_server::pacs::DicomSettings {
            bind: "127.0.0.1:0".parse().expect("an address"),
            ae_title,
            tls,
        });
    })
    .await;
    let admin = app.api_client("admin").await;
    let (status, peer) = admin
        .send_json(
            Method::POST,
            "/dicom/peers",
            &json!({"ae_title": peer_ae, "address": "127.0.0.1"}),
        )
        .await;
    assert_eq!(status, 201, "{peer}");
    app
}

/// Registers a case's route: `kind` is `accession_number` or `patient_id`.
pub async fn add_route(coordinator: &Api, case_id: i64, kind: &str, identifier: &str) {
    let (status, r) = coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{case_id}/dicom-routes"),
            &json!({"kind": kind, "identifier": identifier}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
}

/// The images stored on a case, as the API lists them.
pub async fn images_of(coordinator: &Api, case_id: i64) -> Vec<Value> {
    let (status, case) = coordinator.get_json(&format!("/cases/{case_id}")).await;
    assert_eq!(status, 200, "{case}");
    case["images"].as_array().cloned().unwrap_or_default()
}

/// The views of the images stored on a case, in the order stored.
pub async fn views_of(coordinator: &Api, case_id: i64) -> Vec<String> {
    images_of(coordinator, case_id)
        .await
        .iter()
        .filter_map(|i| i["view"].as_str().map(str::to_owned))
        .collect()
}
