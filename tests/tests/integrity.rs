//! Evidence integrity (DESIGN.md invariants 9–13): each way a trial's result
//! could be bent is tried here, as a hostile insider would, and must fail —
//! through the REST API, the form posts and, where the database can refuse
//! on its own, by SQL. Every test runs on SQLite and on PostgreSQL (where the
//! SQL comes from the server's role, which owns no table).

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::workflow::{self, locked_study, predict, Team};
use osteo_tests::{engine, location, pdf_text, spawn_app, spawn_app_with, TestApp};
use osteo_trial::store::Db;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

async fn state(app: &TestApp, id: i64) -> String {
    osteo_tests::case_state(&app.db, id).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

use osteo_tests::sql_refusal as refused;

/// The PI withdraws a case (with the one-time password, their signature).
async fn withdraw(app: &TestApp, team: &Team, id: i64, code: &str) -> (u16, Value) {
    team.pi
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "withdrawn", "code": code, "reason": "as the protocol allows",
                    "password": app.password("investigator")}),
        )
        .await
}

async fn exclude(team: &Team, id: i64, code: &str) -> (u16, Value) {
    team.coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "excluded", "code": code, "reason": "found ineligible"}),
        )
        .await
}

// ------------------------------------------- 1. no exclusion after unblinding

#[tokio::test]
async fn no_case_is_excluded_once_its_reads_are_locked_and_none_leaves_once_pathology_is_known() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;

    // Before the reads lock an eligibility exclusion is the coordinator's.
    let early = team.case_ready_to_read(&app).await;
    let (status, v) = exclude(&team, early, "E3").await;
    assert_eq!((status, v), (200, json!("excluded")));

    // After the reads lock: refused through the API, with the rule.
    let read = team.case_awaiting_ai(&app).await;
    let (status, v) = exclude(&team, read, "E1").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "exclusion_after_reads");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decided before the reads lock"),
        "{v}"
    );
    assert_eq!(state(&app, read).await, "reads_locked");

    // After the AI result: still no exclusion; a withdrawal is the PI's, signed.
    predict(&app, read, 0.2).await.unwrap();
    let (status, v) = exclude(&team, read, "E2").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("exclusion_after_reads"))
    );
    let (status, v) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{read}/end"),
            &json!({"kind": "withdrawn", "code": "lost_to_follow_up", "reason": "moved away",
                    "password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 403, "only the PI withdraws: {v}");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{read}/end"),
            &json!({"kind": "withdrawn", "code": "lost_to_follow_up", "reason": "moved away",
                    "password": "not the password"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_password"))
    );
    let (status, v) = withdraw(&app, &team, read, "pathology_not_obtained").await;
    assert_eq!((status, v), (200, json!("withdrawn")));
    let (_, detail) = team.pi.get_json(&format!("/cases/{read}")).await;
    assert_eq!(detail["end"]["from_state"], "ai_locked", "{detail}");
    assert_eq!(detail["end"]["signed_by"], "Principal Investigator");

    // Once pathology is known nothing removes the case, even after a
    // correction reopens it.
    let done = team.complete_case_with(&app, 0.2, "osteosarcoma").await;
    let mut correction = workflow::pathology();
    correction["entity"] = json!("enchondroma");
    correction["reason"] = json!("review of the slides");
    let (status, v) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{done}/pathology"),
            &correction,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(state(&app, done).await, "pathology_entered");
    let (status, v) = exclude(&team, done, "E1").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("end_after_reference"))
    );
    let (status, v) = withdraw(&app, &team, done, "consent_withdrawn").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("end_after_reference")),
        "{v}"
    );
    assert_eq!(state(&app, done).await, "pathology_entered");
    let refusals = count(
        &app,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'case.end_refused'",
    )
    .await;
    assert_eq!(refusals, 4, "every refusal of a move is audited");

    // The database refuses the same moves on its own.
    let db = &app.db;
    let ai_locked = team.case_awaiting_ai(&app).await;
    predict(&app, ai_locked, 0.7).await.unwrap();
    let e = refused(
        db,
        &format!("UPDATE cases SET state = 'excluded' WHERE id = {ai_locked}"),
    )
    .await;
    assert!(e.contains("illegal case transition"), "{e}");
    let e = refused(
        db,
        &format!(
            "INSERT INTO case_ends (case_id, kind, code, from_state, reason, at, by_user) \
             SELECT {ai_locked}, 'excluded', 'E1', 'ai_locked', 'x', 'now', id FROM users WHERE username = 'coordinator'"
        ),
    )
    .await;
    assert!(e.contains("decided before the reads lock"), "{e}");
    let e = refused(
        db,
        &format!(
            "INSERT INTO case_ends (case_id, kind, code, from_state, reason, at, by_user) \
             SELECT {ai_locked}, 'withdrawn', 'lost_to_follow_up', 'ai_locked', 'x', 'now', id FROM users WHERE username = 'coordinator'"
        ),
    )
    .await;
    assert!(e.contains("principal investigator's signature"), "{e}");
    let e = refused(
        db,
        &format!("UPDATE cases SET state = 'withdrawn' WHERE id = {ai_locked}"),
    )
    .await;
    assert!(!e.is_empty(), "no end without its record");
    let e = refused(
        db,
        &format!("UPDATE cases SET state = 'enrolled' WHERE id = {done}"),
    )
    .await;
    assert!(e.contains("illegal case transition"), "{e}");
    assert_eq!(state(&app, ai_locked).await, "ai_locked");

    // The form post is refused the same way, and the page says why. (Signing
    // in replaces the one-time password, so this comes last.)
    let page = app.signed_in("coordinator").await;
    let r = page
        .post_form(
            &format!("/cases/{ai_locked}/end"),
            &[("code", "excluded:E1"), ("reason", "found ineligible")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("error=exclusion_after_reads"), "{to}");
    let (_, html) = page.get_text(&to).await;
    assert!(
        html.contains("eligibility exclusions are no longer possible"),
        "the page says why"
    );
    assert!(
        !html.contains("id=\"exclude-form\"") && html.contains("id=\"end-after-reads\""),
        "and offers the coordinator no exclusion any more"
    );
    assert_eq!(state(&app, ai_locked).await, "ai_locked");
}

// The database's transition tables and the state machine in the code are
// the same set of moves, arm by arm: tests/tests/retrospective.rs.

// ---------------------------------------------- 2. inputs frozen at the AI lock

#[tokio::test]
async fn the_models_inputs_are_frozen_at_the_ai_lock_and_a_change_is_a_signed_deviation() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let id = team.case_awaiting_ai(&app).await;
    predict(&app, id, 0.8).await.unwrap();
    let crf = |age: u16, size: u16| {
        let mut c = workflow::crf();
        c["age_years"] = json!(age);
        c["size_mm"] = json!(size);
        c
    };

    // The coordinator may still correct a field the model did not take ...
    let (status, v) = team
        .coordinator
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": crf(34, 52), "reason": "re-measured"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // ... but not one it took: refused, nothing saved.
    let (status, v) = team
        .coordinator
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": crf(61, 52), "reason": "typo"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("frozen_input")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("age_years"),
        "{v}"
    );
    // Nor through the form.
    let page = app.signed_in("coordinator").await;
    let mut form: Vec<(String, String)> = vec![
        ("action".into(), "complete".into()),
        ("reason".into(), "typo".into()),
    ];
    for (k, v) in workflow::crf().as_object().unwrap() {
        match v {
            Value::Array(a) => form.extend(
                a.iter()
                    .map(|x| (k.clone(), x.as_str().unwrap().to_owned())),
            ),
            Value::String(s) => form.push((k.clone(), s.clone())),
            other => form.push((k.clone(), other.to_string())),
        }
    }
    for pair in &mut form {
        if pair.0 == "sex" {
            pair.1 = "male".into();
        }
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = page.post_form(&format!("/cases/{id}/crf"), &pairs).await;
    assert!(location(&r).contains("error=crf"), "{}", location(&r));
    let (_, crf_now) = team.coordinator.get_json(&format!("/cases/{id}")).await;
    assert_eq!(crf_now["crf"]["data"]["age_years"], 34);
    assert_eq!(crf_now["crf"]["data"]["sex"], "female");

    // The PI changes it with a reason and a signature: a protocol deviation.
    let amend = |password: &str| json!({"data": crf(61, 52), "reason": "age from the ID card", "password": password});
    let (status, v) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/crf/amendments"),
            &amend("x"),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{id}/crf/amendments"),
            &amend("wrong password"),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{id}/crf/amendments"),
            &amend(&app.password("investigator")),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["data"]["age_years"], 61);
    let (_, detail) = team.pi.get_json(&format!("/cases/{id}")).await;
    let deviations = detail["deviations"].as_array().unwrap();
    assert_eq!(deviations.len(), 1, "{detail}");
    assert_eq!(deviations[0]["field"], "age_years");
    assert_eq!(
        (
            deviations[0]["old_value"].as_str(),
            deviations[0]["new_value"].as_str()
        ),
        (Some("34"), Some("61"))
    );
    assert_eq!(deviations[0]["signed_by"], "Principal Investigator");
    assert_eq!(
        detail["prediction"]["probability"], 0.8,
        "the prediction never changes"
    );

    // The database refuses a silent change of a frozen field, and new views.
    let e = refused(
        &app.db,
        &format!(
            "INSERT INTO crf_versions (case_id, version, data, complete, created_at, created_by) \
             SELECT {id}, 99, REPLACE(data, '\"sex\":\"female\"', '\"sex\":\"male\"'), 1, 'now', created_by \
             FROM crf_versions WHERE case_id = {id} AND version = (SELECT MAX(version) FROM crf_versions WHERE case_id = {id})"
        ),
    )
    .await;
    assert!(e.contains("frozen since the AI lock"), "{e}");
    let e = refused(
        &app.db,
        &format!(
            "INSERT INTO case_images (case_id, view, sha256, added_at) VALUES ({id}, 'oblique', '{}', 'now')",
            "e".repeat(64)
        ),
    )
    .await;
    assert!(e.contains("while the case is enrolled"), "{e}");
}

// --------------------------------------------- 3. the demo never touches the trial

#[tokio::test]
async fn a_trial_database_never_gets_the_demo_and_records_only_the_pinned_models_predictions() {
    // Asked for the demo model, the trial refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = osteo_server::config::Settings::local(dir.path().to_path_buf());
    settings.database_url = osteo_tests::fresh_database_url(dir.path()).await;
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.demo = false;
    settings.model = osteo_server::ai::ModelChoice::Demo;
    let err = osteo_server::startup::Application::build(settings)
        .await
        .err()
        .expect("the trial does not start with the demo model");
    assert!(
        format!("{err:#}").contains("never runs in the trial"),
        "{err:#}"
    );

    // By default the trial runs no model, gets no demo cases, and says so.
    let app = spawn_app_with(|s| {
        s.demo_cases = 3;
        s.model = osteo_server::ai::ModelChoice::Default;
    })
    .await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM cases").await,
        0,
        "no demo cases"
    );
    let team = Team::new(&app).await;
    let (_, settings) = team.pi.get_json("/study/settings").await;
    assert_eq!(settings["kind"], "trial");
    let (_, model) = team.pi.get_json("/study/model").await;
    assert_eq!(model["running"], Value::Null);
    let (_, html) = app.browser().get_text("/login").await;
    assert!(!html.contains("id=\"demo-banner\""));
    let id = team.case_awaiting_ai(&app).await;
    let (_, number) = team.pi.get_json(&format!("/cases/{id}")).await;
    assert!(number["summary"]["study_number"]
        .as_str()
        .unwrap()
        .starts_with("P-"));
    let (_, html) = app
        .signed_in("investigator")
        .await
        .get_text(&format!("/cases/{id}"))
        .await;
    assert!(
        html.contains("id=\"ai-waiting\""),
        "the page says the case waits for a model"
    );
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/model/pin",
            &json!({"password": osteo_tests::PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("no_model")),
        "{v}"
    );

    // Team::new pinned the test double: another model's prediction is refused
    // by the service (audited) and by the database.
    let mut other = osteo_trial::case::PredictionInput {
        probability: 0.4.try_into().unwrap(),
        threshold: 0.5.try_into().unwrap(),
        model_id: "another-model".into(),
        weights_sha256: "d".repeat(64).parse().unwrap(),
        image_sha256: vec!["a".repeat(64).parse().unwrap()],
        heatmaps: vec![],
        bone_rads_source: osteo_trial::case::BoneRadsSource::PrimaryReader,
        domain: None,
    };
    let e = osteo_trial::case::record_prediction(
        &app.db,
        &osteo_trial::audit::Principal::system(),
        id.try_into().unwrap(),
        other.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, osteo_trial::case::CaseError::NotPinnedModel(_)),
        "{e}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'prediction.refused'"
        )
        .await,
        1
    );
    let e = refused(
        &app.db,
        &format!(
            "INSERT INTO predictions (case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, \
             bone_rads_source, record_sha256, created_at) VALUES ({id}, 0.4, 0.5, 'benign', 'another-model', '{}', '[]', '[]', \
             'primary_reader', '{}', 'now')",
            "d".repeat(64),
            "f".repeat(64)
        ),
    )
    .await;
    assert!(
        e.contains("only from the model the principal investigator pinned"),
        "{e}"
    );
    // The pinned one goes through; after it, the pin never changes.
    predict(&app, id, 0.3).await.unwrap();
    other.model_id = "test-double".into();
    let pi = osteo_trial::accounts::find_by_username(&app.db, "investigator")
        .await
        .unwrap()
        .unwrap();
    let e = osteo_trial::study::pin_model(
        &app.db,
        &pi.principal(osteo_trial::domain::AuditSource::Api),
        &osteo_trial::study::PinRequest {
            model_id: "another-model".into(),
            weights_sha256: "d".repeat(64),
            card_json: "{}".into(),
            demo: false,
        },
        &app.signing("investigator").await,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, osteo_trial::study::StudyError::ModelPinFixed),
        "{e}"
    );
    let e = refused(
        &app.db,
        &format!(
            "INSERT INTO model_pins (model_id, weights_sha256, card_sha256, card, pinned_at, by_user, printed_name, meaning) \
             SELECT 'x', '{0}', '{0}', '{{}}', 'now', id, display_name, 'approval' FROM users WHERE username = 'investigator'",
            "d".repeat(64)
        ),
    )
    .await;
    assert!(e.contains("never changes after it"), "{e}");
    // Without a PI's signature no pin is taken, before any prediction either.
    let fresh = spawn_app().await;
    let e = refused(
        &fresh.db,
        &format!(
            "INSERT INTO model_pins (model_id, weights_sha256, card_sha256, card, pinned_at) VALUES ('x', '{0}', '{0}', '{{}}', 'now')",
            "d".repeat(64)
        ),
    )
    .await;
    assert!(e.contains("principal investigator's signature"), "{e}");
}

/// The model a trial server runs predicts only once the PI has pinned it.
#[tokio::test]
async fn the_pi_pins_the_model_the_server_runs_and_only_then_it_predicts() {
    // A trained model directory (the demo model's files, carded as a trained
    // model: the trial refuses a demo card).
    let dir = tempfile::tempdir().unwrap();
    let model = osteo_model::demo::install(dir.path()).unwrap();
    let card_path = model.join("card.json");
    let mut card: Value = serde_json::from_slice(&std::fs::read(&card_path).unwrap()).unwrap();
    card["demo"] = json!(false);
    std::fs::write(&card_path, serde_json::to_vec_pretty(&card).unwrap()).unwrap();
    let app = spawn_app_with(|s| s.model = osteo_server::ai::ModelChoice::Dir(model.clone())).await;
    let coordinator = app.api_client("coordinator").await;
    let pi = app.api_client("investigator").await;
    let (status, _) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"rule_version": "acr-2023-stm4"}),
        )
        .await;
    assert_eq!(status, 200);
    let case =
        &osteo_model::phantom::generate(1, &osteo_model::phantom::PhantomConfig::default())[0];
    let id = workflow::enrol(&coordinator).await;
    let (status, v) = workflow::upload(
        &coordinator,
        id,
        &[case.dicom(0).unwrap(), case.dicom(1).unwrap()],
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    workflow::complete_and_assign(&coordinator, id).await;
    let radiologist = app.api_client("radiologist").await;
    radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    let (status, _) = radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    assert_eq!(status, 200);
    // Not pinned: the case waits, and the page says why.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(state(&app, id).await, "reads_locked");
    let (_, html) = app
        .signed_in("investigator")
        .await
        .get_text(&format!("/cases/{id}"))
        .await;
    assert!(html.contains("id=\"ai-waiting\""));
    // The PI pins the running model with a signature; then it runs.
    let (status, v) = pi
        .send_json(
            Method::POST,
            "/study/model/pin",
            &json!({"password": "wrong password!"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = pi
        .send_json(
            Method::POST,
            "/study/model/pin",
            &json!({"password": osteo_tests::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model_id"], card["model_id"]);
    assert_eq!(v["signed_by"], "Principal Investigator");
    for _ in 0..300 {
        if state(&app, id).await == "ai_locked" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, p) = pi.get_json(&format!("/cases/{id}/prediction")).await;
    assert_eq!(p["weights_sha256"], card["weights_sha256"], "{p}");
}

// ------------------------------------------------- 4. interim and final locks

#[tokio::test]
async fn a_final_lock_is_never_undone_and_every_look_before_it_is_in_the_report() {
    let app = spawn_app().await;
    let (team, stats, lock) = locked_study(&app).await;
    assert_eq!(lock["kind"], "interim");
    // An interim look: the statistician sees the analysis and downloads a file.
    let (status, _) = stats.get_json("/analysis").await;
    assert_eq!(status, 200);
    let (status, _, _) = stats.get_file("/exports/crf.csv").await;
    assert_eq!(status, 200);
    // Unlocking takes the PI and the monitor; the database refuses otherwise.
    let e = refused(&app.db, "UPDATE study_lock SET locked = 0 WHERE id = 1").await;
    assert!(e.contains("the monitor's signatures"), "{e}");
    let monitor = app.api_client("monitor").await;
    for (api, who) in [(&team.pi, "investigator"), (&monitor, "monitor")] {
        let (status, v) = api
            .send_json(
                Method::POST,
                "/study/unlock",
                &json!({"password": app.password(who), "reason": "a late query"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    // A final lock before the target needs a reason for stopping early.
    let pi_password = app.password("investigator");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password, "kind": "final"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("target_not_met")),
        "{v}"
    );
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password, "kind": "final", "early_stop_reason": "the DSMB stopped the study for futility"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["kind"], "final");
    // Never undone: not by the PI and the monitor, not by SQL.
    for (api, who) in [(&team.pi, "investigator"), (&monitor, "monitor")] {
        let (status, v) = api
            .send_json(
                Method::POST,
                "/study/unlock",
                &json!({"password": app.password(who), "reason": "try"}),
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("final_lock")),
            "{v}"
        );
    }
    let e = refused(&app.db, "UPDATE study_lock SET locked = 0 WHERE id = 1").await;
    assert!(e.contains("final lock is never undone"), "{e}");
    let e = refused(
        &app.db,
        "INSERT INTO lock_events (id, action, at, by_user, signature_id) SELECT 99, 'unlock', 'now', user_id, id FROM signatures LIMIT 1",
    )
    .await;
    assert!(e.contains("locked for good"), "{e}");
    // The report prints the kind, the access history and the signed head.
    let (status, _, pdf) = stats.get_file("/exports/report-en.pdf").await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    for expected in [
        "Final lock",
        "Data access history",
        "Analysis viewed",
        "crf.csv",
        "Unlock",
        "Audit chain head signed at lock",
        "the DSMB stopped the study for futility",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the report:\n{text}"
        );
    }
    // After the final lock a download is audited, not a look before it.
    let before = count(&app, "SELECT COUNT(*) FROM data_access").await;
    stats.get_file("/exports/cases.csv").await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM data_access").await,
        before
    );
}

#[tokio::test]
async fn the_report_lists_every_exclusion_withdrawal_and_deviation_with_the_state_then() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let excluded = team.case_ready_to_read(&app).await;
    exclude(&team, excluded, "E3").await;
    let withdrawn = team.case_awaiting_ai(&app).await;
    predict(&app, withdrawn, 0.5).await.unwrap();
    let (status, _) = withdraw(&app, &team, withdrawn, "pathology_not_obtained").await;
    assert_eq!(status, 200);
    let amended = team.complete_case_with(&app, 0.9, "osteosarcoma").await;
    let mut data = workflow::crf();
    data["bone"] = json!("tibia");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{amended}/crf/amendments"),
            &json!({"data": data, "reason": "bone misread at entry", "password": app.password("investigator")}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    team.complete_case_with(&app, 0.1, "enchondroma").await;
    workflow::signed_sap(&app).await;
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": app.password("investigator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let stats = app.api_client("statistician").await;
    let (_, analysis) = stats.get_json("/analysis").await;
    let ended = analysis["analysis"]["ended"].as_array().unwrap();
    assert_eq!(ended.len(), 2, "{analysis}");
    assert_eq!(
        (ended[0]["kind"].as_str(), ended[0]["from_state"].as_str()),
        (Some("excluded"), Some("crf_complete"))
    );
    assert_eq!(
        (ended[1]["kind"].as_str(), ended[1]["from_state"].as_str()),
        (Some("withdrawn"), Some("ai_locked"))
    );
    assert_eq!(
        analysis["analysis"]["flow"]["withdrawn"],
        json!([["pathology_not_obtained", 1]])
    );
    assert_eq!(analysis["analysis"]["deviations"][0]["field"], "bone");
    let (_, _, pdf) = stats.get_file("/exports/report-en.pdf").await;
    let text = pdf_text(&pdf);
    for expected in [
        "Exclusions and withdrawals after enrolment",
        "Enrolled, no reference standard",
        "Pathology not obtained",
        "Protocol deviations",
        "bone misread at entry",
        "femur → tibia",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the report:\n{text}"
        );
    }
}

// ------------------------------- 5. the database refuses what the service refuses

#[tokio::test]
async fn the_database_refuses_every_statement_that_would_replace_or_remove_protected_rows() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let id = team.complete_case(&app).await;
    let db = &app.db;
    let sqlite = engine() == "sqlite";
    // Each protected table, with a statement that would put a row in place of one there.
    let rows: Vec<(&str, String)> = vec![
        ("predictions", format!(
            "(case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, bone_rads_source, record_sha256, created_at) \
             VALUES ({id}, 0.01, 0.5, 'benign', 'test-double', '{}', '[]', '[]', 'primary_reader', 'x', 'now')", "c".repeat(64))),
        ("reads", format!(
            "(id, case_id, reader_id, data, points, category, rule_version, likelihood, call, updated_at) \
             SELECT id, case_id, reader_id, data, 1, 1, rule_version, 1, 'benign', 'now' FROM reads WHERE case_id = {id}")),
        ("pathology_versions", format!(
            "(case_id, version, entity, behaviour, tier, procedure, specimen_date, pathologist, created_at, created_by) \
             SELECT case_id, version, 'enchondroma', '0', 'benign', procedure, specimen_date, pathologist, created_at, created_by \
             FROM pathology_versions WHERE case_id = {id}")),
        ("crf_versions", format!(
            "(case_id, version, data, complete, created_at, created_by) \
             SELECT case_id, version, data, 0, created_at, created_by FROM crf_versions WHERE case_id = {id}")),
        ("audit_log", "(seq, at, actor, source, action, entity, prev_hash, hash) VALUES (1, 'now', 'mallory', 'cli', 'forged', 'study', 'x', 'y')".to_owned()),
    ];
    let key = |t: &str| match t {
        "predictions" => "(case_id)",
        "reads" => "(id)",
        "pathology_versions" | "crf_versions" => "(case_id, version)",
        _ => "(seq)",
    };
    for (table, values) in &rows {
        let set = if *table == "audit_log" {
            "actor = excluded.actor"
        } else {
            "created_at = excluded.created_at"
        };
        let set = if *table == "reads" {
            "likelihood = excluded.likelihood"
        } else {
            set
        };
        let mut statements = vec![format!(
            "INSERT INTO {table} {values} ON CONFLICT {} DO UPDATE SET {set}",
            key(table)
        )];
        if sqlite {
            statements.push(format!("INSERT OR REPLACE INTO {table} {values}"));
            statements.push(format!("REPLACE INTO {table} {values}"));
        }
        for sql in statements {
            let e = refused(db, &sql).await;
            assert!(!e.is_empty(), "the database took: {sql}");
        }
    }
    let signed: String = sqlx::query("SELECT data FROM reads WHERE case_id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("data");
    assert!(
        signed.contains("permeative"),
        "the signed read is as signed"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE actor = 'mallory'"
        )
        .await,
        0
    );
    let p: f64 = sqlx::query("SELECT probability FROM predictions WHERE case_id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("probability");
    assert_eq!(p, 0.9);
    // The lock's snapshot too.
    workflow::signed_sap(&app).await;
    team.pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": app.password("investigator")}),
        )
        .await;
    let mut statements = vec!["INSERT INTO lock_snapshots (lock_event_id, export) VALUES (1, '{}') ON CONFLICT (lock_event_id) DO UPDATE SET export = excluded.export".to_owned()];
    if sqlite {
        statements.push(
            "INSERT OR REPLACE INTO lock_snapshots (lock_event_id, export) VALUES (1, '{}')".into(),
        );
        statements
            .push("REPLACE INTO lock_snapshots (lock_event_id, export) VALUES (1, '{}')".into());
    }
    for sql in statements {
        let e = refused(db, &sql).await;
        assert!(!e.is_empty(), "the database took: {sql}");
    }
    // The state machine holds for any writer.
    let e = refused(
        db,
        &format!("UPDATE cases SET state = 'crf_complete' WHERE id = {id}"),
    )
    .await;
    assert!(!e.is_empty());

    if !sqlite {
        // PostgreSQL: the server's role owns no table, so it can neither
        // disable a trigger nor truncate; the owner meets the triggers.
        assert_eq!(db.owned_tables().await.unwrap(), Vec::<String>::new());
        let e = refused(db, "ALTER TABLE predictions DISABLE TRIGGER USER").await;
        assert!(e.contains("owner") || e.contains("must be"), "{e}");
        let owner = Db::connect(&app.owner_url).await.unwrap();
        for table in [
            "predictions",
            "reads",
            "pathology_versions",
            "crf_versions",
            "audit_log",
            "lock_snapshots",
            "cases",
            "screenings",
            "screening_versions",
            "signatures",
            "lock_events",
            "case_ends",
            "deviations",
            "model_pins",
            "audit_anchors",
            "data_access",
            "users",
            "study_lock",
        ] {
            let e = refused(db, &format!("TRUNCATE {table} CASCADE")).await;
            assert!(!e.is_empty(), "the server's role truncated {table}");
            let e = refused(&owner, &format!("TRUNCATE {table} CASCADE")).await;
            assert!(e.contains("truncated"), "{table}: {e}");
        }
        owner.close().await;
    }
}

// ------------------------------------- 6. a trail that cannot be rewritten wholesale

#[tokio::test]
async fn rewriting_the_whole_audit_chain_is_caught_by_the_signed_anchors() {
    let app = spawn_app().await;
    let (_team, stats, _lock) = locked_study(&app).await;
    stats.get_file("/exports/cases.csv").await;
    let key = app.audit_key().unwrap();
    let summary = osteo_trial::audit::verify(&app.db, Some(&key))
        .await
        .unwrap();
    assert!(
        summary.anchors_checked >= 2,
        "signed at the lock and the export: {summary:?}"
    );
    // The periodic anchor signs only when rows were written since the last one.
    use osteo_trial::audit::anchor::anchor_if_due;
    let due = chrono::Duration::zero();
    assert!(
        anchor_if_due(&app.db, due).await.unwrap().is_none(),
        "nothing new since the export"
    );
    stats.get_json("/analysis").await;
    let hourly = anchor_if_due(&app.db, due)
        .await
        .unwrap()
        .expect("new rows are signed");
    assert_eq!(hourly.reason, "hourly");
    assert!(anchor_if_due(&app.db, chrono::Duration::hours(1))
        .await
        .unwrap()
        .is_none());

    // `audit anchor` prints a signed head to file outside the system.
    let cli = |args: &[&str]| {
        std::process::Command::new(osteo_tests::binary())
            .arg("--data-dir")
            .arg(app.dir.path())
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("USER", "tester")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = cli(&["audit", "anchor"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let filed = app.dir.path().join("filed-anchor.json");
    std::fs::write(&filed, &out.stdout).unwrap();
    let out = cli(&["audit", "verify", "--anchor", filed.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("the filed anchor matches"),
        "{text}"
    );

    // Someone with the owner's rights rewrites every row and recomputes every hash.
    let owner = Db::connect(&app.owner_url).await.unwrap();
    let disable: &[&str] = if engine() == "sqlite" {
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ]
    } else {
        &["ALTER TABLE audit_log DISABLE TRIGGER USER"]
    };
    for s in disable {
        sqlx::query(s).execute(owner.pool()).await.unwrap();
    }
    let rows: Vec<osteo_trial::audit::AuditRow> = sqlx::query_as(
        "SELECT seq, at, actor_id, actor, source, action, entity, entity_id, field, old_value, new_value, reason, prev_hash, hash \
         FROM audit_log ORDER BY seq",
    )
    .fetch_all(owner.pool())
    .await
    .unwrap();
    let mut prev = osteo_trial::audit::GENESIS_HASH.to_owned();
    for mut row in rows {
        if row.action == "prediction.lock" {
            row.new_value = Some("forged".into());
        }
        row.prev_hash = prev.clone();
        row.hash = row.expected_hash();
        sqlx::query(
            "UPDATE audit_log SET new_value = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
        )
        .bind(&row.new_value)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .bind(row.seq)
        .execute(owner.pool())
        .await
        .unwrap();
        prev = row.hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(owner.pool())
        .await
        .unwrap();
    // The chain alone is consistent again — that is the attack …
    assert!(
        osteo_trial::audit::verify(&app.db, None).await.is_err(),
        "anchors still disagree without the key"
    );
    // … and the signed anchors catch it.
    let e = osteo_trial::audit::verify(&app.db, Some(&key))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rewritten"), "{e}");
    let out = cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BROKEN"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Removing the anchors as well does not help: the lock and the export
    // are then covered by no signed anchor.
    let drop_anchors: &[&str] = if engine() == "sqlite" {
        &[
            "DROP TRIGGER audit_anchors_never_deleted",
            "DELETE FROM audit_anchors",
        ]
    } else {
        &[
            "ALTER TABLE audit_anchors DISABLE TRIGGER USER",
            "DELETE FROM audit_anchors",
        ]
    };
    for s in drop_anchors {
        sqlx::query(s).execute(owner.pool()).await.unwrap();
    }
    owner.close().await;
    let e = osteo_trial::audit::verify(&app.db, Some(&key))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no signed anchor"), "{e}");
    // The anchor filed outside the system still tells.
    let out = cli(&["audit", "verify", "--anchor", filed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

// ------------------------------------------------ 7. no unblinding by role change

#[tokio::test]
async fn a_reader_never_gets_a_role_that_sees_the_outcome_and_the_reverse() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    team.case_ready_to_read(&app).await; // the radiologist is assigned
    let admin = app.api_client("admin").await;
    let id_of = |name: &'static str| {
        let db = app.db.clone();
        async move {
            osteo_trial::accounts::find_by_username(&db, name)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let radiologist = id_of("radiologist").await;
    let (status, v) = admin
        .send_json(
            Method::PATCH,
            &format!("/users/{radiologist}"),
            &json!({"role": "monitor", "reason": "needs more rights"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("reader_stays_blind")),
        "{v}"
    );
    let monitor = id_of("monitor").await;
    let (status, v) = admin
        .send_json(
            Method::PATCH,
            &format!("/users/{monitor}"),
            &json!({"role": "radiologist", "reason": "short of readers"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("never_a_reader")),
        "{v}"
    );
    // The path through another role: a radiologist never assigned may move
    // on, but never back.
    let (status, created) = admin
        .send_json(Method::POST, "/users", &json!({"username": "new.reader", "display_name": "New Reader", "role": "radiologist", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let new = created["user"]["id"].as_i64().unwrap();
    let (status, _) = admin
        .send_json(
            Method::PATCH,
            &format!("/users/{new}"),
            &json!({"role": "statistician", "reason": "changed post"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = admin
        .send_json(
            Method::PATCH,
            &format!("/users/{new}"),
            &json!({"role": "radiologist", "reason": "back again"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("never_a_reader")),
        "{v}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'user.role_refused'"
        )
        .await,
        3
    );
    // The users page says so.
    let page = app.signed_in("admin").await;
    let r = page
        .post_form(
            &format!("/admin/users/{monitor}"),
            &[
                ("role", "radiologist"),
                ("site", "QDUAH"),
                ("display_name", "Clinical Monitor"),
                ("reason", "short of readers"),
            ],
        )
        .await;
    assert!(location(&r).contains("never_a_reader"), "{}", location(&r));
    // And the database on its own, both ways.
    let e = refused(
        &app.db,
        &format!("UPDATE users SET role = 'monitor' WHERE id = {radiologist}"),
    )
    .await;
    assert!(e.contains("never holds a role"), "{e}");
    let e = refused(
        &app.db,
        &format!("UPDATE users SET role = 'radiologist' WHERE id = {monitor}"),
    )
    .await;
    assert!(e.contains("never becomes a reader"), "{e}");
    let e = refused(
        &app.db,
        &format!("INSERT INTO read_assignments (case_id, reader_id, assigned_at, assigned_by, ordinal) SELECT id, {monitor}, 'now', {monitor}, 2 FROM cases LIMIT 1"),
    )
    .await;
    assert!(e.contains("only a radiologist reads"), "{e}");
}

// ------------------------------------ 8. the locked dataset is complete and re-checked

#[tokio::test]
async fn the_locked_dataset_covers_what_the_analysis_rests_on_and_an_edited_snapshot_is_refused() {
    let app = spawn_app().await;
    let (_team, stats, lock) = locked_study(&app).await;
    let snapshot: String =
        sqlx::query("SELECT export FROM lock_snapshots ORDER BY lock_event_id DESC")
            .fetch_one(app.db.pool())
            .await
            .unwrap()
            .get("export");
    assert_eq!(
        osteo_trial::store::sha256_hex(snapshot.as_bytes()),
        lock["export_sha256"].as_str().unwrap()
    );
    let data: Value = serde_json::from_str(&snapshot).unwrap();
    for table in [
        "read_assignments",
        "queries",
        "query_messages",
        "quality_marks",
        "ai_failures",
        "sap_versions",
        "sap_signatures",
        "case_images",
        "users",
        "sites",
        "case_ends",
        "deviations",
        "model_pins",
    ] {
        assert!(data[table].is_array(), "the snapshot holds {table}");
    }
    assert_eq!(
        data["sap_versions"].as_array().unwrap().len(),
        1,
        "the signed plan"
    );
    let image = &data["case_images"][0];
    assert!(
        image["original_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        "{image}"
    );
    assert!(image["transfer_syntax"].is_string(), "{image}");
    // The ODM file names the users as they were at lock.
    let admin = app.api_client("admin").await;
    let coordinator = osteo_trial::accounts::find_by_username(&app.db, "coordinator")
        .await
        .unwrap()
        .unwrap();
    let (status, v) = admin
        .send_json(
            Method::PATCH,
            &format!("/users/{}", coordinator.id),
            &json!({"display_name": "Renamed After Lock", "reason": "marriage"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, _, odm) = stats.get_file("/exports/odm.xml").await;
    let odm = String::from_utf8(odm).unwrap();
    assert!(odm.contains("Study Coordinator") && !odm.contains("Renamed After Lock"));

    // Someone edits the snapshot behind the application's back.
    let owner = Db::connect(&app.owner_url).await.unwrap();
    let disable = if engine() == "sqlite" {
        "DROP TRIGGER lock_snapshots_never_changed"
    } else {
        "ALTER TABLE lock_snapshots DISABLE TRIGGER USER"
    };
    sqlx::query(disable).execute(owner.pool()).await.unwrap();
    sqlx::query("UPDATE lock_snapshots SET export = REPLACE(export, '\"probability\":0.3', '\"probability\":0.95')")
        .execute(owner.pool())
        .await
        .unwrap();
    owner.close().await;
    let (status, v) = stats.get_json("/analysis").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("snapshot_tampered")),
        "{v}"
    );
    for name in ["report-en.pdf", "odm.xml", "predictions.csv"] {
        let (status, _, _) = stats.get_file(&format!("/exports/{name}")).await;
        assert_eq!(status, 409, "{name} is refused");
    }
    assert!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'snapshot.mismatch'"
        )
        .await
            >= 4
    );
}

// ------------------------------------------------- 9. the model gets what the study says

#[tokio::test]
async fn the_model_takes_the_primary_readers_score_or_the_consensus_as_the_study_says() {
    use osteo_trial::case::{self, BoneRadsSource};
    let app = spawn_app().await;
    let pi = app.api_client("investigator").await;
    let (status, v) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"readers_per_case": 2, "bone_rads_source": "consensus"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let team = Team::new(&app).await;
    let admin = app.api_client("admin").await;
    let (status, created) = admin
        .send_json(Method::POST, "/users", &json!({"username": "second.reader", "display_name": "Second Reader", "role": "radiologist", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 201, "{created}");
    // Its API client replaces the one-time password (tokens need that).
    let second = app.api_client("second.reader").await;
    let second_password = app.password("second.reader");
    let id = team.case_ready_to_read(&app).await; // "radiologist" assigned first
    let (status, v) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "second.reader"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // The second reader reads and signs first: 1 + 0 + 0 = 1 point (IA, no periosteal reaction).
    let mut low = workflow::read();
    low["features"]["margin"] = json!("IA");
    low["features"]["periosteal"] = json!("none");
    second
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &low)
        .await;
    let (status, v) = second
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": second_password}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // The primary reader (first assigned) reads 9 points.
    team.save_read(id).await;
    team.sign_read(&app, id).await;
    let input = case::ai_input(
        &app.db,
        &osteo_trial::audit::Principal::system(),
        id.try_into().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(input.bone_rads_source, BoneRadsSource::Consensus);
    // Median of {1, 9} (the upper for two) = 9 → category 4.
    assert_eq!(
        input.bone_rads.map(|s| (s.points, s.category)),
        Some((Some(9), 4))
    );

    // Under the primary-reader setting the first assigned reader's score is
    // taken, though the other signed first.
    let app = spawn_app().await;
    let pi = app.api_client("investigator").await;
    pi.send_json(
        Method::PATCH,
        "/study/settings",
        &json!({"readers_per_case": 2}),
    )
    .await;
    let team = Team::new(&app).await;
    let admin = app.api_client("admin").await;
    let (status, created) = admin
        .send_json(Method::POST, "/users", &json!({"username": "second.reader", "display_name": "Second Reader", "role": "radiologist", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 201, "{created}");
    // Its API client replaces the one-time password (tokens need that).
    let second = app.api_client("second.reader").await;
    let second_password = app.password("second.reader");
    let id = team.case_ready_to_read(&app).await;
    team.coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "second.reader"}),
        )
        .await;
    second
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &low)
        .await;
    second
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": second_password}),
        )
        .await;
    team.save_read(id).await;
    team.sign_read(&app, id).await;
    let input = case::ai_input(
        &app.db,
        &osteo_trial::audit::Principal::system(),
        id.try_into().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(input.bone_rads_source, BoneRadsSource::PrimaryReader);
    assert_eq!(
        input.bone_rads.map(|s| (s.points, s.category)),
        Some((Some(9), 4))
    );
    // The order is the database's: assignments are numbered.
    let ordinals: Vec<i64> =
        sqlx::query("SELECT ordinal FROM read_assignments WHERE case_id = $1 ORDER BY ordinal")
            .bind(id)
            .fetch_all(app.db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("ordinal"))
            .collect();
    assert_eq!(ordinals, [1, 2]);
    // The prediction records its source.
    let p = predict(&app, id, 0.6).await.unwrap();
    assert_eq!(p.input.bone_rads_source, BoneRadsSource::PrimaryReader);
    let e = refused(
        &app.db,
        &format!("INSERT INTO read_assignments (case_id, reader_id, assigned_at, assigned_by, ordinal) SELECT {id}, id, 'now', id, 7 FROM users WHERE username = 'radiologist'"),
    )
    .await;
    assert!(!e.is_empty());
}

/// A refusal by one of the database's rules is recognised by its code
/// (SQLite's SQLITE_CONSTRAINT_TRIGGER, PostgreSQL's restrict_violation),
/// never by its message; a unique violation is not one.
#[tokio::test]
async fn a_rule_refusal_is_told_by_its_code() {
    let app = spawn_app().await;
    let e = sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 1")
        .execute(app.db.pool())
        .await
        .unwrap_err();
    assert!(osteo_trial::write::is_rule_refusal(&e), "{e}");
    let e =
        sqlx::query("INSERT INTO sites (code, name, created_at) VALUES ('QDUAH', 'again', 'now')")
            .execute(app.db.pool())
            .await
            .unwrap_err();
    // On SQLite the no-replace trigger answers first; on PostgreSQL the unique index.
    assert_eq!(
        osteo_trial::write::is_rule_refusal(&e),
        engine() == "sqlite",
        "{e}"
    );
}
