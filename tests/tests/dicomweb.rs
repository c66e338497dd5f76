//! DICOMweb (issue: a PACS link, point 2), driven by a client no one here
//! wrote: Python's dicomweb-client (pinned in tests/dicomweb/requirements.txt,
//! installed by scripts/ensure-tools.sh, found through
//! `OSTEO_DICOMWEB_PYTHON`) stores a two-view study with STOW-RS, finds it
//! with QIDO-RS and fetches it with WADO-RS; the blinding of the pages
//! holds for each role; a bad request changes nothing.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::dicom::{convert, Radiograph};
use osteo_tests::pacs::{add_route, images_of, views_of};
use osteo_tests::workflow::{complete_and_assign, enrol};
use osteo_tests::{spawn_app, TestApp};
use serde_json::{json, Value};

/// The Python of the virtual environment holding dicomweb-client; `None`
/// outside CI when it is not given.
fn python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("OSTEO_DICOMWEB_PYTHON");
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this test: OSTEO_DICOMWEB_PYTHON must name the Python of dicomweb-client (scripts/test.sh sets it)"
        );
        eprintln!("dicomweb-client not given (OSTEO_DICOMWEB_PYTHON): skipped outside CI");
    }
    python
}

/// Runs tests/dicomweb/client.py with `token` and returns what it printed.
async fn client(python: &std::ffi::OsStr, app: &TestApp, token: &str, args: &[String]) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dicomweb/client.py");
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .arg(format!("{}/dicomweb", app.base))
        .arg(token)
        .args(args);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dicomweb-client: {said}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {said}"))
}

/// A raw STOW-RS request: `(status, body)`.
async fn stow(
    app: &TestApp,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let (status, _, body) = stow_with_warnings(app, token, content_type, body).await;
    (status, body)
}

/// A raw STOW-RS request: `(status, Warning headers, body)`.
async fn stow_with_warnings(
    app: &TestApp,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<String>, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/dicomweb/studies", app.base))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    (
        response.status().as_u16(),
        warnings,
        response.text().await.unwrap_or_default(),
    )
}

fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {kind}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn dicomweb_client_stores_a_study_finds_it_and_fetches_it_de_identified() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    let other = enrol(&coordinator).await;
    add_route(&coordinator, id, "patient_id", "MRN-Wang").await;

    // A two-view study: the frontal view uncompressed, the lateral in JPEG
    // 2000; and an image of a patient no route names.
    let dir = tempfile::tempdir().unwrap();
    let ap = Radiograph::cr("Wang", "AP", 31);
    let mut ll = Radiograph::cr("Wang", "LL", 32);
    ll.study_uid = ap.study_uid.clone();
    let lateral = convert(dir.path(), &ll.bytes(), "gdcmconv", &["--j2k"]);
    let files = [
        ("ap.dcm", ap.bytes()),
        ("ll.dcm", lateral),
        ("stray.dcm", Radiograph::cr("Zhou", "AP", 33).bytes()),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        paths.push(path.display().to_string());
    }
    let mut args = vec!["store".to_owned()];
    args.extend(paths.iter().cloned());
    let stored = client(&python, &app, &coordinator.token, &args).await;
    assert_eq!(stored["referenced"], stored["sent"], "{stored}");
    assert_eq!(stored["failed"], json!([]), "{stored}");
    let urls: Vec<&str> = stored["retrieve_urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        // dicomweb-client names the host without its port in `Host`, so
        // only the path is checked here.
        urls[..2]
            .iter()
            .all(|u| u.starts_with("http://127.0.0.1") && u.contains("/dicomweb/studies/2.25."))
            && urls[2].is_empty(),
        "a Retrieve URL for each stored on its case, none for the quarantined: {urls:?}"
    );
    assert_eq!(views_of(&coordinator, id).await, ["frontal", "lateral"]);
    assert!(
        images_of(&coordinator, other).await.is_empty(),
        "nothing guessed"
    );
    let (_, waiting) = coordinator.get_json("/dicom/quarantine").await;
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert!(waiting[0]["calling_ae"]
        .as_str()
        .unwrap()
        .starts_with("STOW-RS coordinator"));
    // The same study stored again is acknowledged and kept once.
    let again = client(&python, &app, &coordinator.token, &args).await;
    assert_eq!(again["failed"], json!([]), "{again}");
    assert_eq!(images_of(&coordinator, id).await.len(), 2);

    // Found and fetched by the study number, de-identified.
    let (_, case) = coordinator.get_json(&format!("/cases/{id}")).await;
    let number = case["summary"]["study_number"].as_str().unwrap().to_owned();
    let read = client(
        &python,
        &app,
        &coordinator.token,
        &["read".to_owned(), number.clone()],
    )
    .await;
    let studies = read["studies"].as_array().unwrap();
    assert_eq!(studies.len(), 1, "{read}");
    assert_eq!(studies[0]["patient_id"], number.as_str());
    assert_eq!(studies[0]["instances"], 2);
    assert_eq!(studies[0]["modalities"], json!(["CR"]));
    let instances = read["instances"].as_array().unwrap();
    let mut series: Vec<&str> = instances
        .iter()
        .filter_map(|i| i["series"].as_str())
        .collect();
    series.dedup();
    assert_eq!(read["series"], series.len(), "{read}");
    assert_eq!(instances.len(), 2, "{read}");
    let syntaxes: Vec<&str> = instances
        .iter()
        .filter_map(|i| i["transfer_syntax"].as_str())
        .collect();
    assert!(
        syntaxes.contains(&"1.2.840.10008.1.2.4.90"),
        "transfer-syntax=* gives the stored JPEG 2000: {syntaxes:?}"
    );
    for i in instances {
        assert_eq!(i["patient_id"], number.as_str(), "{i}");
        assert_eq!(i["identity_removed"], "YES", "{i}");
        assert!(!i["patient_name"].as_str().unwrap().contains("Wang"), "{i}");
        assert!(i["study"].as_str().unwrap().starts_with("2.25."), "{i}");
        assert_eq!(i["pixels"], 64 * 64, "{i}");
    }
    assert_eq!(read["explicit_le"], "1.2.840.10008.1.2.1");
    assert_eq!(read["explicit_le_pixels"], 64 * 64);
    let metadata = read["metadata"].as_array().unwrap();
    assert_eq!(metadata.len(), 2);
    assert!(metadata.iter().all(|m| m["has_pixels"] == false), "{read}");

    // The pages' blinding: a radiologist sees the study once assigned to
    // it, a statistician never; an unassigned reader gets nothing, and a
    // study they may not see is not there.
    let radiologist = app.api_client("radiologist").await;
    let none = client(
        &python,
        &app,
        &radiologist.token,
        &["read".to_owned(), number.clone()],
    )
    .await;
    assert_eq!(none["studies"], json!([]), "{none}");
    let study = studies[0]["uid"].as_str().unwrap();
    let hidden = reqwest::Client::new()
        .get(format!("{}/dicomweb/studies/{study}/metadata", app.base))
        .bearer_auth(&radiologist.token)
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);
    complete_and_assign(&coordinator, id).await;
    let seen = client(
        &python,
        &app,
        &radiologist.token,
        &["read".to_owned(), number.clone()],
    )
    .await;
    assert_eq!(seen["instances"].as_array().unwrap().len(), 2, "{seen}");
    let statistician = app.api_client("statistician").await;
    let refused = reqwest::Client::new()
        .get(format!("{}/dicomweb/studies", app.base))
        .bearer_auth(&statistician.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// STOW-RS refuses what it cannot take, with a clear answer, and keeps
/// nothing of it.
#[tokio::test]
async fn stow_rs_refuses_bad_requests_and_keeps_nothing() {
    let app = spawn_app().await;
    let coordinator = app.api_client("coordinator").await;
    let radiologist = app.api_client("radiologist").await;
    let good = Radiograph::cr("Sun", "AP", 41).bytes();
    let dicom = "multipart/related; type=\"application/dicom\"; boundary=b0";
    let body = multipart("b0", &[("application/dicom", &good)]);

    let (status, _) = stow(&app, None, dicom, body.clone()).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = stow(&app, Some(&radiologist.token), dicom, body.clone()).await;
    assert_eq!(status, 403, "a radiologist does not enter case data");
    let (status, said) = stow(
        &app,
        Some(&coordinator.token),
        "multipart/related; type=\"application/dicom+json\"; boundary=b0",
        body.clone(),
    )
    .await;
    assert_eq!(status, 415, "{said}");
    let (status, said) = stow(
        &app,
        Some(&coordinator.token),
        "application/dicom",
        good.clone(),
    )
    .await;
    assert_eq!(status, 415, "{said}");
    let (status, said) = stow(
        &app,
        Some(&coordinator.token),
        dicom,
        b"--b0\r\nContent-Type: application/dicom\r\n\r\nno end".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "a body cut short stores nothing: {said}");
    let (status, said) = stow(&app, Some(&coordinator.token), dicom, multipart("b0", &[])).await;
    assert_eq!(status, 400, "{said}");

    // Only bad parts: 409 with each one's failure reason.
    let not_dicom = b"this is not a DICOM file".to_vec();
    let (status, warnings, said) = stow_with_warnings(
        &app,
        Some(&coordinator.token),
        dicom,
        multipart(
            "b0",
            &[("application/dicom", &not_dicom), ("text/plain", b"hello")],
        ),
    )
    .await;
    assert_eq!(status, 409, "{said}");
    assert_eq!(warnings.len(), 2, "each failure says why: {warnings:?}");
    assert!(
        warnings[0].starts_with("299 osteo-edc \"part 1: ") && warnings[1].contains("text/plain"),
        "{warnings:?}"
    );
    let answer: Value = serde_json::from_str(&said).unwrap();
    let reasons: Vec<i64> = answer["00081198"]["Value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["00081197"]["Value"][0].as_i64().unwrap())
        .collect();
    assert_eq!(reasons, [0xC000, 0xC000], "{said}");
    assert!(answer.get("00081199").is_none(), "{said}");
    let (_, waiting) = coordinator.get_json("/dicom/quarantine").await;
    assert_eq!(waiting, json!([]), "nothing was kept");
    let refusals: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'dicom.image.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refusals, 1, "the file the checks refused is on the record");

    // A good part with a bad one: 202, the good one kept.
    let (status, said) = stow(
        &app,
        Some(&coordinator.token),
        dicom,
        multipart(
            "b0",
            &[
                ("application/dicom", &good),
                ("application/dicom", &not_dicom),
            ],
        ),
    )
    .await;
    assert_eq!(status, 202, "{said}");
    let answer: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(
        answer["00081199"]["Value"][0]["00081155"]["Value"][0], "1.2.826.0.1.3680043.2.1125.3.41",
        "{said}"
    );
    let (_, waiting) = coordinator.get_json("/dicom/quarantine").await;
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
}
