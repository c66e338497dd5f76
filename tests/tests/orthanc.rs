//! Orthanc (Debian's `orthanc` with its DICOMweb plug-in,
//! `orthanc-dicomweb`) as the hospital's archive: it holds a study and
//! pushes it to the server, once over DICOM networking (C-STORE) and once
//! over DICOMweb (STOW-RS with an API token), and each image lands on its
//! case. Orthanc is a peer no one here wrote, as a PACS would be.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::dicom::Radiograph;
use osteo_tests::pacs::{add_route, spawn_app_with_dicom, views_of};
use osteo_tests::workflow::enrol;
use osteo_tests::TestApp;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const OUR_AE: &str = "OSTEO";
const ORTHANC_AE: &str = "ORTHANC";
/// Where Debian's packages put Orthanc and its DICOMweb plug-in.
const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// A running Orthanc, stopped when dropped.
struct Orthanc {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Orthanc with the server as its DICOM modality `osteo` and its
/// DICOMweb server `osteo` (with `token`); `None` outside CI when Orthanc
/// is not installed.
async fn orthanc(app: &TestApp, token: &str) -> Option<Orthanc> {
    if !std::path::Path::new(ORTHANC).exists() || !std::path::Path::new(PLUGIN).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this test: install Debian's orthanc and orthanc-dicomweb (.ci/run does)"
        );
        eprintln!("Orthanc or its DICOMweb plug-in is not installed: skipped outside CI");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let config = json!({
        "Name": "hospital-archive",
        "StorageDirectory": dir.path().join("storage"),
        "IndexDirectory": dir.path().join("index"),
        "HttpPort": http,
        "DicomPort": free_port(),
        "DicomAet": ORTHANC_AE,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "Plugins": [PLUGIN],
        "DicomModalities": {
            "osteo": [OUR_AE, "127.0.0.1", app.dicom_port.unwrap()]
        },
        "DicomWeb": {
            "Enable": true,
            "Root": "/dicom-web/",
            "Servers": {
                "osteo": {
                    "Url": format!("{}/dicomweb/", app.base),
                    "HttpHeaders": {"Authorization": format!("Bearer {token}")}
                }
            }
        }
    });
    let path = dir.path().join("orthanc.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
    let child = Command::new(ORTHANC)
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("Orthanc starts");
    let orthanc = Orthanc {
        child,
        url: format!("http://127.0.0.1:{http}"),
        _dir: dir,
    };
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{}/system", orthanc.url)).await {
            if r.status().is_success() {
                return Some(orthanc);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(orthanc._dir.path().join("orthanc.log")).unwrap_or_default();
    panic!("Orthanc did not start: {log}");
}

impl Orthanc {
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .body(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let log = std::fs::read_to_string(self._dir.path().join("orthanc.log")).unwrap_or_default();
        assert!(
            status.is_success(),
            "Orthanc {path}: {status} {text}\n{log}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_pushes_studies_over_c_store_and_stow_rs_and_they_land_on_their_cases() {
    let app = spawn_app_with_dicom(OUR_AE, ORTHANC_AE, None).await;
    let coordinator = app.api_client("coordinator").await;
    let Some(orthanc) = orthanc(&app, &coordinator.token).await else {
        return;
    };
    let over_dimse = enrol(&coordinator).await;
    let over_web = enrol(&coordinator).await;
    add_route(&coordinator, over_dimse, "patient_id", "MRN-Chen").await;
    add_route(&coordinator, over_web, "patient_id", "MRN-Liu").await;

    // The archive receives the studies, as from its modalities.
    let mut held = Vec::new();
    for (who, view, seed) in [("Chen", "AP", 51u16), ("Chen", "LL", 52), ("Liu", "AP", 53)] {
        let mut image = Radiograph::cr(who, view, seed);
        image.study_uid = format!("1.2.826.0.1.3680043.2.1125.9.{}", who.len());
        let answer = orthanc.post("/instances", image.bytes()).await;
        held.push(answer["ID"].as_str().unwrap().to_owned());
    }

    // C-STORE, Orthanc as the SCU.
    orthanc
        .post("/modalities/osteo/store", json!(held[..2]).to_string())
        .await;
    assert_eq!(
        views_of(&coordinator, over_dimse).await,
        ["frontal", "lateral"]
    );

    // STOW-RS, Orthanc's DICOMweb plug-in as the client, with the token.
    orthanc
        .post(
            "/dicom-web/servers/osteo/stow",
            json!({"Resources": [held[2]]}).to_string(),
        )
        .await;
    assert_eq!(views_of(&coordinator, over_web).await, ["frontal"]);

    // Orthanc's own DICOMweb client finds the study in ours (QIDO-RS).
    let found = orthanc
        .post(
            "/dicom-web/servers/osteo/get",
            json!({"Uri": "/studies", "Arguments": {"PatientID": "P-*"}}).to_string(),
        )
        .await;
    let patients: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["00100020"]["Value"][0].as_str())
        .collect();
    assert_eq!(patients.len(), 2, "{found}");
    assert!(patients.iter().all(|p| p.starts_with("P-")), "{found}");
    let senders: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT actor FROM audit_log WHERE action = 'image.attach' ORDER BY actor",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(senders, ["coordinator", "dicom:ORTHANC"]);
}
