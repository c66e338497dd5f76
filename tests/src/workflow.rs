//! Steps of the trial workflow for tests: each goes through the REST API
//! like a client would (radiographs are DICOM files the tests write), except
//! the model's prediction, which here comes from a test double with fixed
//! numbers, never available in the product: the PI pins it (as the trial's
//! model, with a signature) like any model before the first prediction.

use crate::{Api, TestApp};
use osteo_trial::audit::Principal;
use osteo_trial::case::{self, PredictionInput};
use reqwest::Method;
use serde_json::{json, Value};

/// A complete, valid clinical CRF.
pub fn crf() -> Value {
    json!({
        "age_years": 34, "sex": "female", "symptoms": ["pain", "night_pain"],
        "symptom_onset_date": "2025-09-01", "pathological_fracture": false,
        "known_primary_malignancy": false, "lesion_count": "solitary", "physis": "closed",
        "bone": "femur", "side": "left", "longitudinal": "metaphysis", "transverse": "eccentric",
        "radiograph_date": "2025-10-02", "density": "lytic", "size_mm": 48, "expansion": true,
        "matrix": "none", "cortex": "thinned", "soft_tissue_mass": false
    })
}

/// A read scoring 5 + 4 + 0 = 9 points (Bone-RADS 4) on the protocol table.
pub fn read() -> Value {
    json!({
        "features": {"margin": "II", "periosteal": "aggressive", "endosteal_erosion": "under_one_third",
                     "pathological_fracture": false, "soft_tissue_mass": false, "known_primary_malignancy": false},
        "likelihood": 80, "call": "malignant", "comment": "permeative"
    })
}

pub fn pathology() -> Value {
    json!({"entity": "osteosarcoma", "procedure": "biopsy", "specimen_date": "2025-10-20", "pathologist": "Dr Wang"})
}

/// Screens and enrols one patient; returns the case id.
pub async fn enrol(coordinator: &Api) -> i64 {
    enrol_in(coordinator, "prospective").await
}

/// Screens and enrols one patient in `arm` (prospective or retrospective).
pub async fn enrol_in(coordinator: &Api, arm: &str) -> i64 {
    let (status, e) = coordinator
        .send_json(
            Method::POST,
            "/screenings",
            &json!({"arm": arm, "screening_date": "2025-06-02", "inclusion_met": true,
                    "exclusions": [], "outcome": "enrolled"}),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let study = e["study_number"].as_str().unwrap_or_default().to_owned();
    let (_, cases) = coordinator.get_json("/cases").await;
    cases
        .as_array()
        .and_then(|a| a.iter().find(|c| c["study_number"] == study.as_str()))
        .and_then(|c| c["id"].as_i64())
        .unwrap_or_else(|| panic!("a case for {study}"))
}

/// Uploads a frontal and a lateral radiograph of the case's patient through
/// the REST API (files the test writes itself).
pub async fn attach_views(app: &TestApp, case_id: i64) {
    let api = app.api_client("coordinator").await;
    let who = format!("patient{case_id}");
    let files = [
        crate::dicom::Radiograph::cr(&who, "AP", (case_id * 2) as u16).bytes(),
        crate::dicom::Radiograph::cr(&who, "LL", (case_id * 2 + 1) as u16).bytes(),
    ];
    let (status, v) = upload(&api, case_id, &files, None).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["files"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["stored"] == true)),
        "{v}"
    );
}

/// Uploads DICOM files to a case (multipart), with an optional view.
pub async fn upload(
    api: &Api,
    case_id: i64,
    files: &[Vec<u8>],
    view: Option<&str>,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(v) = view {
        form = form.text("view", v.to_owned());
    }
    for (i, f) in files.iter().enumerate() {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(f.clone()).file_name(format!("image{i}.dcm")),
        );
    }
    let r = api
        .request(Method::POST, &format!("/cases/{case_id}/images"))
        .multipart(form)
        .send()
        .await
        .expect("the server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Stands in for the model: records a prediction for the case.
pub async fn predict(
    app: &TestApp,
    case_id: i64,
    probability: f64,
) -> Result<case::Prediction, case::CaseError> {
    predict_with_domain(app, case_id, probability, None).await
}

/// [`predict`], with the model's out-of-domain flag.
pub async fn predict_with_domain(
    app: &TestApp,
    case_id: i64,
    probability: f64,
    domain: Option<case::DomainFlag>,
) -> Result<case::Prediction, case::CaseError> {
    let sha = |s: String| s.parse().expect("a SHA-256");
    case::record_prediction(
        &app.db,
        &Principal::system(),
        osteo_trial::domain::CaseId::try_from(case_id).expect("a case id"),
        PredictionInput {
            probability: probability.try_into().expect("a probability"),
            threshold: 0.5.try_into().expect("a probability"),
            model_id: TEST_MODEL_ID.into(),
            weights_sha256: sha(test_model_weights()),
            image_sha256: vec![sha("a".repeat(64)), sha("b".repeat(64))],
            heatmaps: vec![],
            bone_rads_source: case::BoneRadsSource::PrimaryReader,
            domain,
        },
    )
    .await
}

/// The test double's identity: what [`predict`] records and [`pin_test_model`] pins.
pub const TEST_MODEL_ID: &str = "test-double";

/// The weights SHA-256 the test double claims.
pub fn test_model_weights() -> String {
    "c".repeat(64)
}

/// The PI pins the test double as the trial's model (with the signature
/// the one-time password gives), unless a model is pinned already.
pub async fn pin_test_model(app: &TestApp) {
    use osteo_trial::study;
    if study::pinned_model(&app.db)
        .await
        .expect("the database answers")
        .is_some()
    {
        return;
    }
    let pi = osteo_trial::accounts::find_by_username(&app.db, "investigator")
        .await
        .expect("the database answers")
        .expect("the PI's account");
    study::pin_model(
        &app.db,
        &pi.principal(osteo_trial::domain::AuditSource::Api),
        &study::PinRequest {
            model_id: TEST_MODEL_ID.into(),
            weights_sha256: test_model_weights(),
            card_json: r#"{"model_id":"test-double","note":"the tests' stand-in for the model"}"#
                .into(),
            demo: false,
        },
        &app.signing("investigator").await,
    )
    .await
    .unwrap_or_else(|e| panic!("pinning the test double: {e}"));
}

/// The clients of one workflow: the coordinator, the PI and one radiologist.
pub struct Team {
    pub coordinator: Api,
    pub pi: Api,
    pub radiologist: Api,
}

impl Team {
    /// Creates the clients and confirms the protocol's rule table.
    pub async fn new(app: &TestApp) -> Team {
        let team = Team {
            coordinator: app.api_client("coordinator").await,
            pi: app.api_client("investigator").await,
            radiologist: app.api_client("radiologist").await,
        };
        let (status, s) = team
            .pi
            .send_json(
                Method::PATCH,
                "/study/settings",
                &json!({"rule_version": "acr-2023-stm4"}),
            )
            .await;
        assert_eq!(status, 200, "{s}");
        pin_test_model(app).await;
        team
    }

    /// Enrols a patient and takes the case to `crf_complete` with the
    /// radiologist assigned.
    pub async fn case_ready_to_read(&self, app: &TestApp) -> i64 {
        let id = enrol(&self.coordinator).await;
        attach_views(app, id).await;
        self.complete_and_assign(id).await;
        id
    }

    /// The same with the given DICOM files as the case's views.
    pub async fn case_ready_to_read_with(&self, files: &[Vec<u8>]) -> i64 {
        let id = enrol(&self.coordinator).await;
        let (status, v) = upload(&self.coordinator, id, files, None).await;
        assert_eq!(status, 200, "{v}");
        self.complete_and_assign(id).await;
        id
    }

    /// Images complete, the CRF complete, the radiologist assigned.
    async fn complete_and_assign(&self, id: i64) {
        complete_and_assign(&self.coordinator, id).await;
    }

    /// ... and on to `reads_locked`.
    pub async fn case_awaiting_ai(&self, app: &TestApp) -> i64 {
        let id = self.case_ready_to_read(app).await;
        self.save_read(id).await;
        self.sign_read(app, id).await;
        id
    }

    /// The radiologist saves the standard read of the case (unsigned).
    pub async fn save_read(&self, id: i64) {
        let (status, v) = self
            .radiologist
            .send_json(Method::PUT, &format!("/cases/{id}/read"), &read())
            .await;
        assert_eq!(status, 200, "{v}");
    }

    /// The radiologist signs the read (which locks it).
    pub async fn sign_read(&self, app: &TestApp, id: i64) {
        let (status, v) = self
            .radiologist
            .send_json(
                Method::POST,
                &format!("/cases/{id}/read/sign"),
                &json!({"password": app.password("radiologist")}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }

    /// ... and to `complete` (an osteosarcoma the AI scored 0.9).
    pub async fn complete_case(&self, app: &TestApp) -> i64 {
        self.complete_case_with(app, 0.9, "osteosarcoma").await
    }

    /// ... and to `complete`, with the AI probability and the WHO entity given.
    pub async fn complete_case_with(&self, app: &TestApp, probability: f64, entity: &str) -> i64 {
        let id = self.case_awaiting_ai(app).await;
        predict(app, id, probability)
            .await
            .unwrap_or_else(|e| panic!("prediction: {e}"));
        let (status, v) = enter_pathology(&self.coordinator, id, entity).await;
        assert_eq!(status, 201, "{v}");
        sign_pathology(app, &self.coordinator, id).await;
        id
    }
}

/// The statistician drafts a SAP (threshold 0.5, intermediate reads
/// excluded, each reader, 95 %).
pub async fn draft_sap(stats: &Api) {
    let (status, v) = stats
        .send_json(
            Method::POST,
            "/sap",
            &json!({"threshold": 0.5, "intermediate": "excluded", "readers": "each_reader", "conf_level": 0.95}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
}

/// The statistician drafts a SAP and both the statistician and the PI sign it.
pub async fn signed_sap(app: &TestApp) {
    let stats = app.api_client("statistician").await;
    let pi = app.api_client("investigator").await;
    draft_sap(&stats).await;
    for (api, who) in [(&stats, "statistician"), (&pi, "investigator")] {
        let (status, v) = api
            .send_json(
                Method::POST,
                "/sap/sign",
                &json!({"password": app.password(who)}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
}

/// Six complete cases (three malignant, three benign), the signed SAP and
/// the database locked; before the lock, the statistician gets no report.
pub async fn locked_study(app: &TestApp) -> (Team, Api, Value) {
    let team = Team::new(app).await;
    let stats = app.api_client("statistician").await;
    let pi_password = app.password("investigator");
    for (p, entity) in [
        (0.92, "osteosarcoma"),
        (0.64, "ewing_sarcoma"),
        (0.55, "chondrosarcoma_grade_2_3"),
        (0.30, "enchondroma"),
        (0.71, "non_ossifying_fibroma"),
        (0.12, "enchondroma"),
    ] {
        team.complete_case_with(app, p, entity).await;
    }
    for name in ["report-en.pdf", "odm.xml"] {
        let (status, _) = stats.get_json(&format!("/exports/{name}")).await;
        assert_eq!(
            status, 403,
            "no {name} before lock: the statistician is blinded"
        );
    }
    signed_sap(app).await;
    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 200, "{lock}");
    (team, stats, lock)
}

/// Takes an enrolled case with its views to `crf_complete` with the
/// radiologist assigned: images complete, the CRF complete, the reader.
pub async fn complete_and_assign(coordinator: &Api, id: i64) {
    to_crf_complete(coordinator, id).await;
    let path = format!("/cases/{id}/readers");
    let (status, v) = coordinator
        .send_json(Method::POST, &path, &json!({"username": "radiologist"}))
        .await;
    assert_eq!(status, 200, "{path}: {v}");
}

/// Takes an enrolled case with its views to `crf_complete`: images
/// complete, the CRF complete (no reader assigned).
pub async fn to_crf_complete(coordinator: &Api, id: i64) {
    for (method, path, body) in [
        (
            Method::POST,
            format!("/cases/{id}/images/complete"),
            json!({}),
        ),
        (
            Method::PUT,
            format!("/cases/{id}/crf"),
            json!({"data": crf(), "complete": true}),
        ),
    ] {
        let (status, v) = coordinator.send_json(method, &path, &body).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
}

/// The coordinator enters the standard pathology with the given WHO entity.
pub async fn enter_pathology(coordinator: &Api, id: i64, entity: &str) -> (u16, Value) {
    let mut body = pathology();
    body["entity"] = json!(entity);
    coordinator
        .send_json(Method::POST, &format!("/cases/{id}/pathology"), &body)
        .await
}

/// The coordinator signs the case's pathology.
pub async fn sign_pathology(app: &TestApp, coordinator: &Api, id: i64) {
    let (status, v) = coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/pathology/sign"),
            &json!({"password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}
