//! The model on the server: when a case's reads are locked the embedded demo
//! model runs on its stored views, CRF and Bone-RADS, and the prediction is
//! written and locked with the model's hashes and heat maps; a failed run is
//! recorded on the case and no prediction is invented; a model whose files
//! do not match its card stops the server; the `model` commands of the real
//! binary.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use osteo_model::phantom::{self, PhantomConfig};
use osteo_server::ai::ModelChoice;
use osteo_tests::workflow::Team;
use osteo_tests::{binary, pdf_text, spawn_app_with, TestApp};
use serde_json::Value;

/// Takes a case to the radiologist's saved (unsigned) read with the two
/// views of phantom `seed`, and returns its id.
async fn case_with_phantom_views(team: &Team, seed: u64) -> i64 {
    let case = &phantom::generate(
        1,
        &PhantomConfig {
            seed,
            ..PhantomConfig::default()
        },
    )[0];
    let id = team
        .case_ready_to_read_with(&[case.dicom(0).unwrap(), case.dicom(1).unwrap()])
        .await;
    team.save_read(id).await;
    id
}

/// The status and body of a GET.
async fn fetch(api: &osteo_tests::Api, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = api.get_file(path).await;
    (status, body)
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// A demo-mode server running the embedded demo model.
async fn spawn_demo_model_app() -> TestApp {
    spawn_app_with(|s| {
        s.demo = true;
        s.model = ModelChoice::Demo;
    })
    .await
}

/// Polls the case until `done` holds (the model runs in the background).
async fn wait_for(team: &Team, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let (_, v) = team.pi.get_json(&format!("/cases/{id}")).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("case {id} did not get there");
}

#[tokio::test]
async fn the_server_runs_the_model_when_the_reads_lock_and_locks_the_prediction() {
    let app = spawn_demo_model_app().await;
    let team = Team::new(&app).await;
    let card: Value = serde_json::from_slice(
        osteo_model::demo::FILES
            .iter()
            .find(|(n, _)| *n == "card.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let id = case_with_phantom_views(&team, 7).await;

    // Before the read is signed the model does not run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, p) = team.pi.get_json(&format!("/cases/{id}/prediction")).await;
    assert_eq!(p, Value::Null);

    team.sign_read(&app, id).await;
    let detail = wait_for(&team, id, |v| v["summary"]["state"] == "ai_locked").await;
    let p = &detail["prediction"];
    let probability = p["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&probability), "{p}");
    assert_eq!(p["model_id"], card["model_id"]);
    assert_eq!(p["weights_sha256"], card["weights_sha256"]);
    assert_eq!(p["threshold"], card["threshold"]);
    assert_eq!(
        p["call"],
        if probability >= card["threshold"].as_f64().unwrap() {
            "malignant"
        } else {
            "benign"
        }
    );
    // The inputs are the case's stored (de-identified) views.
    let stored: Vec<&Value> = detail["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["sha256"])
        .collect();
    let used: Vec<&Value> = p["image_sha256"].as_array().unwrap().iter().collect();
    assert_eq!(used.len(), 2);
    assert!(
        used.iter().all(|u| stored.contains(u)),
        "{used:?} vs {stored:?}"
    );
    assert_eq!(p["bone_rads_source"], "primary_reader");

    // One heat-map overlay per view, a PNG of the view's size, for the PI;
    // the radiologist (blinded) is refused.
    assert_eq!(p["heatmaps"].as_array().unwrap().len(), 2);
    for n in 0..2 {
        let (status, png) = fetch(&team.pi, &format!("/cases/{id}/heatmaps/{n}")).await;
        assert_eq!(status, 200);
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (192, 256));
    }
    let (status, _) = fetch(&team.pi, &format!("/cases/{id}/heatmaps/2")).await;
    assert_eq!(status, 404);
    let (status, _) = fetch(&team.radiologist, &format!("/cases/{id}/heatmaps/0")).await;
    assert_eq!(status, 403);

    // The diagnostic report on the case page, for the PI: the reader's
    // Bone-RADS with its management suggestion, the AI output with the demo
    // label, the views with their heat maps.
    let pi_page = app.signed_in("investigator").await;
    let (status, page) = pi_page.get_text(&format!("/cases/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"diagnostic-report\""),
        "the PI sees the report"
    );
    assert!(
        page.contains("id=\"report-management\""),
        "with the management suggestion"
    );
    assert!(
        page.contains(osteo_model::DEMO_LABEL),
        "labelled as a demo model"
    );
    assert!(
        page.contains(&format!("/cases/{id}/heatmaps/1")),
        "with the heat maps"
    );

    assert!(
        page.contains(&format!("/cases/{id}/report.pdf")),
        "with its PDF"
    );

    // The report as PDF, in both languages, for the PI; refused to the
    // blinded radiologist; every download audited.
    let (status, pdf) = fetch(&team.pi, &format!("/cases/{id}/report.pdf")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    let probability = format!("{:.1}%", p["probability"].as_f64().unwrap() * 100.0);
    for expected in [
        "Diagnostic report · D-0001",
        "Demo model, trained on synthetic images",
        probability.as_str(),
        p["model_id"].as_str().unwrap(),
        "Bone-RADS",
        "Suggested management",
        "heat map (Guided Grad-CAM) over it",
        "Frontal",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the report:\n{text}"
        );
    }
    assert!(
        pdf.windows(b"/Subtype /Image".len())
            .filter(|w| *w == b"/Subtype /Image")
            .count()
            + pdf
                .windows(b"/Subtype/Image".len())
                .filter(|w| *w == b"/Subtype/Image")
                .count()
            >= 4,
        "each view and its heat map are pictures in the PDF"
    );
    let (status, pdf) = fetch(&team.pi, &format!("/cases/{id}/report.pdf?lang=zh-CN")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    assert!(
        text.contains("诊断报告") && text.contains(&probability),
        "{text}"
    );
    let (status, _) = fetch(&team.radiologist, &format!("/cases/{id}/report.pdf")).await;
    assert_eq!(status, 403);
    let (status, _) = fetch(&team.pi, &format!("/cases/{id}/report.pdf?lang=fr")).await;
    assert_eq!(status, 400);
    assert_eq!(audited(&app, "report.download").await, 2);
    // The case page's link, with the PI's session.
    let r = pi_page.get(&format!("/cases/{id}/report.pdf")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(pdf_text(&r.bytes().await.unwrap()).contains("Diagnostic report · D-0001"));

    // Locked: the prediction is written once; the same record stays.
    let (_, again) = team.pi.get_json(&format!("/cases/{id}/prediction")).await;
    assert_eq!(again["record_sha256"], p["record_sha256"]);
    assert_eq!(audited(&app, "prediction.lock").await, 1);
}

/// The out-of-domain flag, through the server: the demo model judges each
/// case against the training domain its card records. A phantom like the
/// demonstration study's is inside; a chest radiograph of the same size and
/// the tests' small phantoms (192 × 256, a sixth of the demo views' width)
/// are outside. The flag is locked with the prediction (the database refuses
/// to change it), shown on the case page and in the per-case report.
#[tokio::test]
async fn a_case_unlike_the_training_images_is_flagged_with_its_locked_prediction() {
    let app = spawn_demo_model_app().await;
    let team = Team::new(&app).await;
    let demo_like = PhantomConfig {
        width: osteo_model::demo::PHANTOM_WIDTH,
        height: osteo_model::demo::PHANTOM_HEIGHT,
        seed: 41,
        realistic: true,
        ..PhantomConfig::default()
    };
    let phantom = phantom::generate(1, &demo_like).remove(0);
    let chest = phantom::chest_radiograph(&demo_like);
    let small = phantom::generate(
        1,
        &PhantomConfig {
            seed: 42,
            ..PhantomConfig::default()
        },
    )
    .remove(0);
    let mut predictions = Vec::new();
    for case in [&phantom, &chest, &small] {
        let id = team
            .case_ready_to_read_with(&[case.dicom(0).unwrap(), case.dicom(1).unwrap()])
            .await;
        team.save_read(id).await;
        team.sign_read(&app, id).await;
        let detail = wait_for(&team, id, |v| v["summary"]["state"] == "ai_locked").await;
        predictions.push((id, detail["prediction"].clone()));
    }
    let reasons = |p: &Value| -> Vec<String> {
        p["domain"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    let (inside_id, inside) = &predictions[0];
    assert_eq!(inside["domain"]["outside"], false, "{inside}");
    assert!(reasons(inside).is_empty());
    let (chest_id, chest_p) = &predictions[1];
    assert_eq!(chest_p["domain"]["outside"], true, "{chest_p}");
    assert!(
        reasons(chest_p)
            .iter()
            .all(|r| r.contains("intensities") || r.contains("features")),
        "judged by its content alone: {chest_p}"
    );
    let (_, small_p) = &predictions[2];
    assert_eq!(small_p["domain"]["outside"], true, "{small_p}");
    assert!(
        reasons(small_p)
            .iter()
            .any(|r| r.contains("192 × 256 pixels")),
        "{small_p}"
    );

    // Stored with the locked prediction, which the database never changes.
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT out_of_domain FROM predictions WHERE case_id = $1")
            .bind(chest_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(stored, Some(1));
    let e = sqlx::query("UPDATE predictions SET out_of_domain = 0 WHERE case_id = $1")
        .bind(chest_id)
        .execute(app.db.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("never changes"), "{e}");

    // On the case page and in the per-case report.
    let pi_page = app.signed_in("investigator").await;
    let (_, page) = pi_page.get_text(&format!("/cases/{chest_id}")).await;
    assert!(page.contains("id=\"ai-out-of-domain\""), "flag on the page");
    assert!(
        page.contains("Outside the model&#x27;s training domain.")
            || page.contains("Outside the model's training domain.")
    );
    let (_, page) = pi_page.get_text(&format!("/cases/{inside_id}")).await;
    assert!(!page.contains("id=\"ai-out-of-domain\""));
    let (status, pdf) = fetch(&team.pi, &format!("/cases/{chest_id}/report.pdf")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    assert!(
        text.contains("Outside the model's training domain")
            || text.contains("Outside the model’s training domain"),
        "{text}"
    );
    let (_, pdf) = fetch(&team.pi, &format!("/cases/{inside_id}/report.pdf")).await;
    assert!(!pdf_text(&pdf).contains("Outside the model"));
}

#[tokio::test]
async fn a_failed_run_is_recorded_on_the_case_and_nothing_is_invented() {
    let app = spawn_demo_model_app().await;
    let team = Team::new(&app).await;
    let id = case_with_phantom_views(&team, 8).await;
    // The stored views disappear (a broken disk): the model cannot run.
    let (_, detail) = team.pi.get_json(&format!("/cases/{id}")).await;
    for image in detail["images"].as_array().unwrap() {
        let sha = image["sha256"].as_str().unwrap();
        std::fs::remove_file(
            app.dir
                .path()
                .join("objects")
                .join(&sha[..2])
                .join(format!("{sha}.dcm")),
        )
        .unwrap();
    }
    team.sign_read(&app, id).await;
    let detail = wait_for(&team, id, |v| {
        !v["ai_failures"].as_array().unwrap().is_empty()
    })
    .await;
    let failure = &detail["ai_failures"][0];
    assert_eq!(failure["attempt"], 1);
    assert!(
        failure["error"].as_str().unwrap().contains("missing"),
        "{failure}"
    );
    assert_eq!(detail["summary"]["state"], "reads_locked");
    assert_eq!(detail["prediction"], Value::Null);
    assert!(audited(&app, "prediction.failed").await >= 1);
    // Retried after a back-off: a second attempt is recorded.
    let detail = wait_for(&team, id, |v| {
        v["ai_failures"].as_array().unwrap().len() >= 2
    })
    .await;
    assert_eq!(detail["ai_failures"][1]["attempt"], 2);
    assert_eq!(detail["prediction"], Value::Null);
    // The case page shows the failure to the coordinator.
    let (status, page) = app
        .signed_in("coordinator")
        .await
        .get_text(&format!("/cases/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"ai-failures\""),
        "the case page lists the failed run"
    );
}

#[tokio::test]
async fn the_server_refuses_a_model_that_does_not_match_its_card() {
    let dir = tempfile::tempdir().unwrap();
    let model = osteo_model::demo::install(dir.path()).unwrap();
    // Change one byte of the weights.
    let weights = model.join("model.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let mut settings = osteo_server::config::Settings::local(dir.path().join("data"));
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.model = ModelChoice::Dir(model.clone());
    let err = osteo_server::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("SHA-256") && text.contains("refusing"),
        "{text}"
    );

    // The real binary exits non-zero with the same reason.
    let out = std::process::Command::new(binary())
        .args(["--data-dir"])
        .arg(dir.path().join("data2"))
        .args(["serve", "--bind", "127.0.0.1:0", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn model_commands_make_phantoms_evaluate_and_show_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(binary())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    };
    let phantoms = dir.path().join("phantoms");
    let out = run(&[
        "model",
        "phantoms",
        "--n",
        "24",
        "--seed",
        "5",
        "--out",
        phantoms.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cases"], 24);
    // Real DICOM: DCMTK reads it when installed.
    let file = phantoms.join("PH-00001").join("frontal.dcm");
    if let Ok(d) = std::process::Command::new("dcmdump").arg(&file).output() {
        let text = String::from_utf8_lossy(&d.stdout);
        assert!(
            text.contains("(0008,0060) CS [CR]") && text.contains("(0028,0101) US 12"),
            "{text}"
        );
    }

    // Evaluate with the model in use (the embedded demo model by default).
    let manifest = phantoms.join("manifest.csv");
    let out = run(&[
        "model",
        "evaluate",
        "--manifest",
        manifest.to_str().unwrap(),
        "--images",
        phantoms.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["n", "auc", "sensitivity", "specificity", "threshold"] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(v["n"], 24);
    assert_eq!(v["label"], osteo_model::DEMO_LABEL);

    let out = run(&["model", "card"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["card"]["demo"], true);
    assert_eq!(v["label"], osteo_model::DEMO_LABEL);

    // Bad input: exit code 2 and a message naming the problem.
    let out = run(&[
        "model",
        "evaluate",
        "--manifest",
        "/nonexistent.csv",
        "--images",
        ".",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent.csv"));
    let out = run(&[
        "model",
        "phantoms",
        "--n",
        "0",
        "--out",
        phantoms.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// A new database in demo mode gets its demo cases from the phantom
/// generator: enrolled, CRF complete, frontal and lateral radiographs stored
/// through the ingest, the radiologist assigned — waiting for the read, which
/// then runs through to the model's locked prediction like any case.
#[tokio::test]
async fn a_new_demo_database_gets_phantom_cases_waiting_for_the_read() {
    let app = spawn_app_with(|s| {
        s.demo = true;
        s.demo_cases = 3;
        s.model = osteo_server::ai::ModelChoice::Default;
    })
    .await;
    let team = Team::new(&app).await;
    let (status, cases) = team.coordinator.get_json("/cases").await;
    assert_eq!(status, 200, "{cases}");
    let cases = cases.as_array().unwrap().clone();
    assert_eq!(cases.len(), 3, "{cases:?}");
    // The demonstration study: its own numbers, never the trial's arms;
    // its demo model pinned by the study itself; said on every page.
    let numbers: Vec<&str> = cases
        .iter()
        .map(|c| c["study_number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["D-0001", "D-0002", "D-0003"]);
    let (_, settings) = team.pi.get_json("/study/settings").await;
    assert_eq!(settings["kind"], "demo");
    let (_, model) = team.pi.get_json("/study/model").await;
    assert_eq!(
        model["pinned"]["model_id"], model["running"]["model_id"],
        "{model}"
    );
    assert_eq!(
        model["pinned"]["signed_by"],
        Value::Null,
        "pinned by the study, not a person"
    );
    let (_, html) = app.browser().get_text("/login").await;
    assert!(
        html.contains("id=\"demo-banner\""),
        "the login page says it is the demonstration study"
    );
    let monitor = app.signed_in("monitor").await;
    for path in ["/", "/cases", "/dashboard"] {
        let (status, html) = monitor.get_text(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains("id=\"demo-banner\""),
            "{path} says it is the demonstration study"
        );
        assert!(
            !html.contains("ChiCTR2500102778</strong>"),
            "{path} does not claim to be the trial"
        );
    }
    // The model takes the study's Bone-RADS source, and records it.
    let (status, v) = team
        .pi
        .send_json(
            reqwest::Method::PATCH,
            "/study/settings",
            &serde_json::json!({"bone_rads_source": "consensus"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, log) = team.coordinator.get_json("/screenings").await;
    assert!(
        log.to_string().contains("synthetic radiograph phantom"),
        "{log}"
    );
    for c in &cases {
        let id = c["id"].as_i64().unwrap();
        let (_, detail) = team.coordinator.get_json(&format!("/cases/{id}")).await;
        assert_eq!(detail["summary"]["state"], "crf_complete", "{detail}");
        assert_eq!(
            detail["readers"],
            serde_json::json!(["radiologist"]),
            "{detail}"
        );
        let images = detail["images"].as_array().unwrap();
        let views: Vec<&str> = images.iter().map(|i| i["view"].as_str().unwrap()).collect();
        assert_eq!(views.len(), 2, "{detail}");
        assert!(
            views.contains(&"frontal") && views.contains(&"lateral"),
            "{views:?}"
        );
        assert_eq!(detail["crf"]["complete"], true, "{detail}");
    }
    // The radiologist reads the first one; the model then predicts on it.
    let id = cases[0]["id"].as_i64().unwrap();
    team.save_read(id).await;
    team.sign_read(&app, id).await;
    let detail = wait_for(&team, id, |v| v["summary"]["state"] == "ai_locked").await;
    let p = detail["prediction"]["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{detail}");
    assert_eq!(detail["prediction"]["bone_rads_source"], "consensus");
    // The enrolment, CRF and radiographs are audited on the demo
    // coordinator's behalf, with the system as the source.
    use sqlx::Row;
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_log WHERE actor = 'coordinator' AND source = 'system'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap()
    .get("n");
    assert!(n >= 3 * 4, "{n} audit rows");
}
