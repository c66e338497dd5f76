//! The case workflow through the REST API, on SQLite and PostgreSQL: the
//! state machine, the CRF's edit checks, blinded reads and signatures, the
//! pathology gate (service, API and database), blinding, queries and the
//! database lock.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::workflow::{self, locked_study, predict, Team};
use osteo_tests::{audit_rows, pdf_text, spawn_app};
use reqwest::Method;
use serde_json::{json, Value};

async fn state(api: &osteo_tests::Api, id: i64) -> String {
    let (status, c) = api.get_json(&format!("/cases/{id}")).await;
    assert_eq!(status, 200, "{c}");
    c["summary"]["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_case_walks_from_enrolment_to_complete_and_every_step_is_audited() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let c = &team.coordinator;
    let id = workflow::enrol(c).await;
    assert_eq!(state(c, id).await, "enrolled");
    let (_, detail) = c.get_json(&format!("/cases/{id}")).await;
    assert!(detail["summary"]["waits_for"]
        .as_str()
        .unwrap()
        .contains("frontal and a lateral"));

    workflow::attach_views(&app, id).await;
    let (status, s) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/images/complete"),
            &json!({}),
        )
        .await;
    assert_eq!((status, s), (200, json!("images_complete")));

    let mut draft = workflow::crf();
    draft["sex"] = Value::Null;
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": draft}),
        )
        .await;
    assert_eq!(status, 200, "a draft saves with fields missing: {v}");
    assert_eq!(v["complete"], false);
    assert_eq!(state(c, id).await, "images_complete");
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": workflow::crf(), "complete": true}),
        )
        .await;
    assert_eq!((status, v["version"].as_i64()), (200, Some(2)), "{v}");
    assert_eq!(state(c, id).await, "crf_complete");

    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "radiologist"}),
        )
        .await;
    assert_eq!((status, v), (200, json!(["radiologist"])));
    let (_, work) = team.radiologist.get_json("/worklist").await;
    assert_eq!(
        work.as_array().unwrap().len(),
        1,
        "the read is on the radiologist's worklist"
    );

    let (status, r) = team
        .radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["score"], json!({"points": 9, "category": 4}));
    assert_eq!(r["rule_version"], "acr-2023-stm4");
    let (status, r) = team
        .radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["signature"]["meaning"], "author");
    assert_eq!(r["signature"]["printed_name"], "Reading Radiologist");
    assert_eq!(state(c, id).await, "reads_locked");
    let (_, detail) = c.get_json(&format!("/cases/{id}")).await;
    assert!(detail["summary"]["waits_for"]
        .as_str()
        .unwrap()
        .contains("awaiting AI"));
    let (_, work) = team.radiologist.get_json("/worklist").await;
    assert_eq!(work, json!([]), "a signed read leaves the worklist");

    let p = predict(&app, id, 0.9).await.unwrap();
    assert_eq!(p.call, osteo_trial::case::Call::Malignant);
    assert_eq!(p.record_sha256.len(), 64);
    assert_eq!(state(c, id).await, "ai_locked");

    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/pathology"),
            &workflow::pathology(),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["pathology"]["tier"].as_str(),
            v["pathology"]["behaviour"].as_str()
        ),
        (Some("malignant"), Some("3"))
    );
    assert_eq!(state(c, id).await, "pathology_entered");
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/pathology/sign"),
            &json!({"password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(state(c, id).await, "complete");

    // A correction of signed pathology: a new version with a reason, which
    // voids the signature and reopens the case until it is signed again.
    let mut fix = workflow::pathology();
    fix["entity"] = json!("telangiectatic_osteosarcoma");
    let (status, v) = c
        .send_json(Method::POST, &format!("/cases/{id}/pathology"), &fix)
        .await;
    assert_eq!(status, 400, "a correction needs a reason: {v}");
    fix["reason"] = json!("report amended by pathology");
    let (status, v) = c
        .send_json(Method::POST, &format!("/cases/{id}/pathology"), &fix)
        .await;
    assert_eq!(
        (status, v["version"].as_i64(), v["signatures"].clone()),
        (201, Some(2), json!([])),
        "{v}"
    );
    assert_eq!(state(c, id).await, "pathology_entered");

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    for expected in [
        "case.create",
        "image.attach",
        "case.state",
        "crf.save",
        "read.assign",
        "read.save",
        "signature.reauthenticated",
        "signature.apply",
        "read.lock",
        "prediction.lock",
        "pathology.enter",
        "signature.void",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} is audited"
        );
    }
    assert!(
        osteo_trial::audit::verify(&app.db, app.audit_key().as_ref())
            .await
            .is_ok(),
        "the chain verifies"
    );
}

#[tokio::test]
async fn illegal_steps_are_refused_with_what_the_case_waits_for() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let c = &team.coordinator;
    let id = workflow::enrol(c).await;

    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/images/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("have: none"),
        "{v}"
    );

    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": workflow::crf(), "complete": true}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        v["error"]["message"],
        "a case at `enrolled` cannot take `crf_completed`: it waits for: the radiographs (a frontal and a lateral view), then `images complete`"
    );
    let (status, _) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "radiologist"}),
        )
        .await;
    assert_eq!(status, 200, "readers may be assigned early");
    let (status, v) = team
        .radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    assert_eq!(status, 409, "no read before the images and CRF: {v}");
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "coordinator"}),
        )
        .await;
    assert_eq!(status, 400, "only radiologists read: {v}");
    assert!(
        predict(&app, id, 0.4).await.is_err(),
        "no prediction before the reads"
    );

    let ready = team.case_ready_to_read(&app).await;
    let (status, _) = team
        .radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{ready}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    assert_eq!(status, 409, "nothing to sign before a read is saved");
    let (status, _) = team
        .radiologist
        .send_json(
            Method::PUT,
            &format!("/cases/{ready}/read"),
            &workflow::read(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = team
        .radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{ready}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = team
        .radiologist
        .send_json(
            Method::PUT,
            &format!("/cases/{ready}/read"),
            &workflow::read(),
        )
        .await;
    assert_eq!(status, 409, "a signed read is locked: {v}");
    assert!(predict(&app, ready, 0.4).await.is_ok());
    assert!(
        matches!(
            predict(&app, ready, 0.6).await,
            Err(osteo_trial::case::CaseError::PredictionExists)
        ),
        "a prediction is written once"
    );

    // An exclusion with a coded reason ends the case; nothing moves it after.
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "excluded", "code": "E2", "reason": "pathology never obtained"}),
        )
        .await;
    assert_eq!((status, v), (200, json!("excluded")));
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "withdrawn", "code": "consent_withdrawn", "reason": "again",
                    "password": app.password("investigator")}),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "withdrawn", "code": "other", "reason": "free text is no code"}),
        )
        .await;
    assert_eq!(status, 400, "withdrawal reasons are coded: {v}");
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{ready}/end"),
            &json!({"kind": "withdrawn", "code": "E9", "reason": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn the_crf_checks_its_fields_and_edits_after_completion_need_a_reason_and_void_signatures() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let c = &team.coordinator;
    let id = workflow::enrol(c).await;
    workflow::attach_views(&app, id).await;
    c.send_json(
        Method::POST,
        &format!("/cases/{id}/images/complete"),
        &json!({}),
    )
    .await;
    let before = audit_rows(&app.db).await;

    let mut bad = workflow::crf();
    bad["age_years"] = json!(121);
    bad["radiograph_date"] = json!("2999-01-01");
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": bad}),
        )
        .await;
    assert_eq!(status, 400);
    let fields: Vec<(&str, &str)> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![("age_years", "range"), ("radiograph_date", "future")]
    );
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": {"sex": "female"}, "complete": true}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["fields"].as_array().unwrap().len() > 10,
        "every missing field is listed"
    );
    let (status, _) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": {"sex": "unknown"}}),
        )
        .await;
    assert_eq!(status, 400, "closed sets take their codes only");
    assert_eq!(
        audit_rows(&app.db).await,
        before,
        "refused forms change nothing"
    );

    let (status, _) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": workflow::crf(), "complete": true}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/crf/sign"),
            &json!({"meaning": "author", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_password"))
    );
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/crf/sign"),
            &json!({"meaning": "author", "password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["signatures"][0]["printed_name"], "Study Coordinator");
    assert_eq!(v["signatures"][0]["meaning"], "author");

    let mut edit = workflow::crf();
    edit["size_mm"] = json!(52);
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": edit}),
        )
        .await;
    assert_eq!(
        status, 400,
        "a completed form changes only with a reason: {v}"
    );
    let (status, v) = c
        .send_json(
            Method::PUT,
            &format!("/cases/{id}/crf"),
            &json!({"data": edit, "reason": "re-measured on PACS"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["complete"].as_bool(), v["signatures"].clone()),
        (Some(true), json!([])),
        "the edit voided the signature"
    );
    let row: (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT old_value, new_value, reason FROM audit_log WHERE action = 'crf.save' AND field = 'size_mm' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            Some("48".into()),
            Some("52".into()),
            Some("re-measured on PACS".into())
        )
    );
    let voided: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'signature.void'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(voided, 1);
}

#[tokio::test]
async fn pathology_waits_for_the_locks_in_the_service_the_api_and_the_database_for_every_role() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let admin = app.api_client("admin").await;
    let id = team.case_ready_to_read(&app).await;
    let path = format!("/cases/{id}/pathology");

    // Before the read is signed and before the AI: refused for everyone.
    let (status, v) = team
        .coordinator
        .send_json(Method::POST, &path, &workflow::pathology())
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("pathology_gate")),
        "{v}"
    );
    for (who, api) in [
        ("admin", &admin),
        ("investigator", &team.pi),
        ("radiologist", &team.radiologist),
    ] {
        let (status, _) = api
            .send_json(Method::POST, &path, &workflow::pathology())
            .await;
        assert_eq!(status, 403, "{who} may never enter pathology");
    }
    let refusals: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'pathology.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refusals, 1, "the refused attempt is audited");

    // Reads locked, AI not yet: still refused.
    team.radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    team.radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    let (status, _) = team
        .coordinator
        .send_json(Method::POST, &path, &workflow::pathology())
        .await;
    assert_eq!(status, 409);

    // The database refuses it too, whoever writes: a direct insert fails.
    let direct = sqlx::query(
        "INSERT INTO pathology_versions (case_id, version, entity, behaviour, tier, procedure, specimen_date, pathologist, created_at, created_by) \
         VALUES ($1, 1, 'osteosarcoma', '3', 'malignant', 'biopsy', '2025-10-20', 'x', '2025-10-21T00:00:00.000000Z', 1)",
    )
    .bind(id)
    .execute(app.db.pool())
    .await;
    let e = direct.unwrap_err().to_string();
    assert!(e.contains("pathology can be entered only after"), "{e}");

    predict(&app, id, 0.2).await.unwrap();
    let (status, v) = team
        .coordinator
        .send_json(Method::POST, &path, &workflow::pathology())
        .await;
    assert_eq!(status, 201, "after both locks: {v}");

    // Locked means immutable, in the database itself.
    for sql in [
        "UPDATE predictions SET probability = 0.99 WHERE case_id = $1",
        "DELETE FROM predictions WHERE case_id = $1",
        "UPDATE reads SET likelihood = 1 WHERE case_id = $1",
        "DELETE FROM reads WHERE case_id = $1",
        "UPDATE pathology_versions SET tier = 'benign' WHERE case_id = $1",
        "UPDATE crf_versions SET complete = 0 WHERE case_id = $1",
        "DELETE FROM cases WHERE id = $1",
    ] {
        let r = sqlx::query(sql).bind(id).execute(app.db.pool()).await;
        assert!(r.is_err(), "the database refuses: {sql}");
    }
    let r = sqlx::query("INSERT INTO read_assignments (case_id, reader_id, assigned_at, assigned_by) SELECT $1, id, 'x', id FROM users WHERE username = 'admin'")
        .bind(id)
        .execute(app.db.pool())
        .await;
    assert!(r.is_err(), "no reader joins after the AI ran");
}

#[tokio::test]
async fn blinded_roles_receive_no_pathology_ai_output_or_other_reads() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let admin = app.api_client("admin").await;
    let stats = app.api_client("statistician").await;
    // A second radiologist reads the same case.
    let (status, _) = admin
        .send_json(
            Method::POST,
            "/users",
            &json!({"username": "reader2", "display_name": "Second Reader", "role": "radiologist", "site": "QDUAH"}),
        )
        .await;
    assert_eq!(status, 201);
    let reader2 = app.api_client("reader2").await;
    let id = team.case_ready_to_read(&app).await;
    team.coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{id}/readers"),
            &json!({"username": "reader2"}),
        )
        .await;
    team.radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    team.radiologist
        .send_json(
            Method::POST,
            &format!("/cases/{id}/read/sign"),
            &json!({"password": app.password("radiologist")}),
        )
        .await;
    let mut other = workflow::read();
    other["call"] = json!("benign");
    let (status, _) = reader2
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &other)
        .await;
    assert_eq!(status, 200);

    // The second reader sees their own draft only, never the first reader's result.
    let (status, c) = reader2.get_json(&format!("/cases/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(c["reads"].as_array().unwrap().len(), 1);
    assert_eq!(c["reads"][0]["reader"], "reader2");
    assert_eq!(c["readers"], json!(["reader2"]));
    assert_eq!(c["prediction"], Value::Null);
    assert_eq!(c["pathology"], Value::Null);
    assert_eq!(c["withheld"], json!(["reads", "prediction", "pathology"]));
    assert!(
        !c.to_string().contains("\"malignant\""),
        "no trace of the other read: {c}"
    );

    let blinded = [
        format!("/cases/{id}/reads"),
        format!("/cases/{id}/prediction"),
        format!("/cases/{id}/pathology"),
        "/cases".to_owned(),
        "/audit".to_owned(),
        "/queries".to_owned(),
    ];
    for who in [&reader2, &team.radiologist] {
        for path in &blinded {
            let (status, _) = who.get_json(path).await;
            assert_eq!(status, 403, "a radiologist gets 403 on {path}");
        }
    }
    // The statistician: operational figures only until database lock.
    for path in blinded.iter().chain([format!("/cases/{id}")].iter()) {
        let (status, _) = stats.get_json(path).await;
        assert_eq!(status, 403, "a statistician gets 403 on {path} before lock");
    }
    let (status, d) = stats.get_json("/dashboard").await;
    assert_eq!(status, 200);
    assert_eq!(d["prospective_target"], 200);
    assert_eq!(d["enrolled_prospective"], 1);
    shows_no_result(&d);
    // The unblinded roles see everything.
    let (status, c) = team.coordinator.get_json(&format!("/cases/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(c["reads"].as_array().unwrap().len(), 2);
    assert_eq!(c["withheld"], json!([]));
    let (status, _) = team.pi.get_json(&format!("/cases/{id}/reads")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn queries_go_open_answered_closed_and_are_listed_per_case() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let monitor = app.api_client("monitor").await;
    let id = workflow::enrol(&team.coordinator).await;
    let (status, q) = monitor
        .send_json(
            Method::POST,
            &format!("/cases/{id}/queries"),
            &json!({"field": "age_years", "text": "Age does not match the source document."}),
        )
        .await;
    assert_eq!(status, 201, "{q}");
    assert_eq!(q["status"], "open");
    let qid = q["id"].as_i64().unwrap();
    let (status, _) = monitor
        .send_json(
            Method::POST,
            &format!("/cases/{id}/queries"),
            &json!({"field": "shoe_size", "text": "?"}),
        )
        .await;
    assert_eq!(status, 400, "queries are raised on known fields");
    let (status, v) = monitor
        .send_json(
            Method::POST,
            &format!("/queries/{qid}"),
            &json!({"action": "close", "text": "x"}),
        )
        .await;
    assert_eq!(
        status, 409,
        "an open query is answered before it closes: {v}"
    );
    let (status, _) = monitor
        .send_json(
            Method::POST,
            &format!("/queries/{qid}"),
            &json!({"action": "answer", "text": "x"}),
        )
        .await;
    assert_eq!(status, 403, "monitors do not answer");
    let (status, q) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/queries/{qid}"),
            &json!({"action": "answer", "text": "Corrected to 35."}),
        )
        .await;
    assert_eq!((status, q["status"].as_str()), (200, Some("answered")));
    let (_, open) = monitor
        .get_json(&format!("/queries?open=true&case={id}"))
        .await;
    assert_eq!(
        open.as_array().unwrap().len(),
        1,
        "answered is still open until closed"
    );
    let (_, work) = monitor.get_json("/worklist").await;
    assert_eq!(work[0]["open_queries"], 1);
    let (status, q) = monitor
        .send_json(
            Method::POST,
            &format!("/queries/{qid}"),
            &json!({"action": "close", "text": "Verified."}),
        )
        .await;
    assert_eq!((status, q["status"].as_str()), (200, Some("closed")));
    assert_eq!(q["messages"].as_array().unwrap().len(), 3);
    let (_, open) = monitor.get_json("/queries?open=true").await;
    assert_eq!(open, json!([]));
    let steps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE entity = 'query'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(steps, 3, "raise, answer and close are audited");
}

#[tokio::test]
async fn the_database_lock_needs_finished_cases_refuses_every_write_and_unlocks_with_a_reason() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let stats = app.api_client("statistician").await;
    let pi_password = app.password("investigator");
    let done = team.complete_case(&app).await;
    let open = workflow::enrol(&team.coordinator).await;
    workflow::signed_sap(&app).await;

    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 enrolled cases"),
        "{v}"
    );
    let (status, _) = team
        .coordinator
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 403, "only the PI locks");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{open}/end"),
            &json!({"kind": "withdrawn", "code": "consent_withdrawn", "reason": "patient request",
                    "password": pi_password}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": "not the password"}),
        )
        .await;
    assert_eq!(status, 400, "a lock is signed with the password: {v}");
    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 200, "{lock}");
    assert_eq!(lock["locked"], true);
    let sha = lock["export_sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert_eq!(lock["events"][0]["printed_name"], "Principal Investigator");

    // Every write is refused, and the refusal audited.
    let before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'write.refused_locked'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let attempts = [
        (
            Method::POST,
            "/screenings".to_owned(),
            json!({"arm": "prospective", "screening_date": "2025-06-02", "inclusion_met": true, "exclusions": [], "outcome": "enrolled"}),
        ),
        (
            Method::PUT,
            format!("/cases/{done}/crf"),
            json!({"data": workflow::crf(), "reason": "late fix"}),
        ),
        (
            Method::POST,
            format!("/cases/{done}/pathology"),
            json!({"entity": "osteoma", "procedure": "biopsy", "specimen_date": "2025-10-20", "pathologist": "x", "reason": "late"}),
        ),
        (
            Method::POST,
            format!("/cases/{done}/queries"),
            json!({"field": "case", "text": "late"}),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, v) = team.coordinator.send_json(method, &path, &body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("database_locked")),
            "{path}: {v}"
        );
    }
    let (status, _) = team
        .pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"readers_per_case": 2}),
        )
        .await;
    assert_eq!(status, 409);
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'write.refused_locked'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(after - before, 5, "each refused write is audited");
    let r = sqlx::query("UPDATE cases SET state = 'enrolled' WHERE id = $1")
        .bind(done)
        .execute(app.db.pool())
        .await;
    assert!(
        r.is_err(),
        "the database itself refuses writes while locked"
    );

    // After lock the statistician is unblinded.
    let (status, p) = stats.get_json(&format!("/cases/{done}/pathology")).await;
    assert_eq!(status, 200, "{p}");

    let (status, _) = team
        .pi
        .send_json(
            Method::POST,
            "/study/unlock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 400, "an unlock needs a reason");
    // An unlock needs the PI's and the monitor's signatures.
    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/unlock",
            &json!({"password": pi_password, "reason": "late query from monitor"}),
        )
        .await;
    assert_eq!(
        (status, lock["locked"].as_bool()),
        (200, Some(true)),
        "one signature does not unlock: {lock}"
    );
    assert_eq!(
        lock["unlock_signatures"][0]["role"],
        "principal_investigator"
    );
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/unlock",
            &json!({"password": pi_password, "reason": "again"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("already_signed")),
        "{v}"
    );
    let monitor = app.api_client("monitor").await;
    let (status, lock) = monitor
        .send_json(
            Method::POST,
            "/study/unlock",
            &json!({"password": app.password("monitor"), "reason": "agreed: late query"}),
        )
        .await;
    assert_eq!(
        (status, lock["locked"].as_bool()),
        (200, Some(false)),
        "{lock}"
    );
    let (status, _) = stats.get_json(&format!("/cases/{done}/pathology")).await;
    assert_eq!(status, 403, "blinded again while unlocked");
    // The same data locks to the same hash.
    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        lock["export_sha256"].as_str(),
        Some(sha.as_str()),
        "the canonical export is reproducible"
    );
    assert_eq!(lock["events"].as_array().unwrap().len(), 3);
    assert!(
        osteo_trial::audit::verify(&app.db, app.audit_key().as_ref())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_rule_table_is_confirmed_before_the_first_read_and_fixed_after() {
    let app = spawn_app().await;
    let pi = app.api_client("investigator").await;
    let (_, s) = pi.get_json("/study/settings").await;
    assert_eq!(s["rule_version"], Value::Null);
    assert_eq!(
        s["rule_versions"],
        json!(["acr-2023-stm2", "acr-2023-stm4"])
    );
    let (status, _) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"rule_version": "acr-1999"}),
        )
        .await;
    assert_eq!(status, 400);
    let team = Team::new(&app).await;
    let id = team.case_ready_to_read(&app).await;
    let (status, _) = team
        .radiologist
        .send_json(Method::PUT, &format!("/cases/{id}/read"), &workflow::read())
        .await;
    assert_eq!(status, 200);
    let (status, v) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"rule_version": "acr-2023-stm2"}),
        )
        .await;
    assert_eq!(status, 409, "fixed once a read exists: {v}");
    let stored: String =
        sqlx::query_scalar("SELECT rules FROM bone_rads_rules WHERE version = 'acr-2023-stm2'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let table: osteo_trial::case::bonerads::RuleTable = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        table,
        osteo_trial::case::bonerads::RuleTable::acr_2023(2),
        "the migration's table is the protocol's"
    );
}

#[tokio::test]
async fn a_refused_form_comes_back_with_what_was_typed() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let id = team.case_awaiting_ai(&app).await;
    predict(&app, id, 0.7).await.unwrap();
    let page = app.signed_in("coordinator").await;
    let r = page
        .post_form(
            &format!("/cases/{id}/pathology"),
            &[
                ("entity", "chondrosarcoma_grade_1"),
                ("procedure", "resection"),
                ("specimen_date", "2999-01-01"),
                ("pathologist", "Dr Typed Carefully"),
            ],
        )
        .await;
    assert_eq!(
        osteo_tests::location(&r),
        format!("/cases/{id}?error=pathology#pathology")
    );
    let (status, html) = page.get_text(&format!("/cases/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"pathology-error\""),
        "the problem is shown"
    );
    assert!(html.contains("in the future"), "and says what is wrong");
    assert!(
        html.contains("value=\"Dr Typed Carefully\""),
        "what was typed is kept"
    );
    assert!(
        html.contains("value=\"chondrosarcoma_grade_1\" selected"),
        "the choice is kept"
    );
    let (_, html) = page.get_text(&format!("/cases/{id}")).await;
    assert!(!html.contains("id=\"pathology-error\""), "shown once");
    let (_, p) = team
        .coordinator
        .get_json(&format!("/cases/{id}/pathology"))
        .await;
    assert_eq!(p, Value::Null, "nothing was saved");
}

#[tokio::test]
async fn the_analysis_is_blinded_until_lock_then_computed_from_the_locked_snapshot_with_the_signed_sap(
) {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let stats = app.api_client("statistician").await;
    let pi_password = app.password("investigator");
    // Four complete cases: two malignant, two benign (one the AI scores high).
    for (p, entity) in [
        (0.92, "osteosarcoma"),
        (0.64, "ewing_sarcoma"),
        (0.30, "enchondroma"),
        (0.71, "non_ossifying_fibroma"),
    ] {
        team.complete_case_with(&app, p, entity).await;
    }
    // Before lock: the statistician is blinded, everyone else is told the analysis waits for the lock.
    let (status, _) = stats.get_json("/analysis").await;
    assert_eq!(status, 403);
    let (status, v) = team.pi.get_json("/analysis").await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = team.radiologist.get_json("/analysis").await;
    assert_eq!(status, 403);
    let (status, _) = stats.get_json("/exports/crf.csv").await;
    assert_eq!(status, 403, "no export before lock");
    let monitor = app.signed_in("monitor").await;
    let (status, html) = monitor.get_text("/analysis").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"analysis-withheld\"") && !html.contains("id=\"ai-auc\""),
        "no figure before lock"
    );

    // The lock needs the signed SAP.
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("analysis plan"),
        "{v}"
    );
    let (status, v) = stats
        .send_json(Method::POST, "/sap", &json!({"threshold": 1.5, "intermediate": "excluded", "readers": "each_reader", "conf_level": 0.95}))
        .await;
    assert_eq!(status, 400, "{v}");
    workflow::signed_sap(&app).await;
    let (status, v) = stats
        .send_json(Method::POST, "/sap", &json!({"threshold": 0.4, "intermediate": "as_benign", "readers": "each_reader", "conf_level": 0.95}))
        .await;
    assert_eq!(status, 409, "a plan signed by both never changes: {v}");
    let (_, saps) = stats.get_json("/sap").await;
    assert_eq!(saps[0]["locked"], true);
    assert_eq!(saps[0]["signatures"].as_array().unwrap().len(), 2);

    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": pi_password}),
        )
        .await;
    assert_eq!(status, 200, "{lock}");
    let (status, a) = stats.get_json("/analysis").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        a["dataset_sha256"], lock["export_sha256"],
        "computed from the data the lock hashed"
    );
    assert_eq!(a["sap_version"], 1);
    let an = &a["analysis"];
    assert_eq!(
        (an["n_malignant"].as_i64(), an["n_benign"].as_i64()),
        (Some(2), Some(2))
    );
    // Malignant 0.92, 0.64; benign 0.30, 0.71: 3 of 4 pairs ordered.
    assert!(
        (an["ai_auc"]["auc"].as_f64().unwrap() - 0.75).abs() < 1e-12,
        "{an}"
    );
    let t = &an["ai_at_threshold"]["table"];
    assert_eq!(
        (
            t["tp"].as_i64(),
            t["fp"].as_i64(),
            t["fn_"].as_i64(),
            t["tn"].as_i64()
        ),
        (Some(2), Some(1), Some(0), Some(1))
    );
    let direct = osteo_trial::analysis::roc::auc(
        &osteo_trial::analysis::roc::Sample::new(
            &[0.92, 0.64, 0.30, 0.71],
            &[true, true, false, false],
            Default::default(),
        )
        .unwrap(),
        0.95,
    )
    .unwrap();
    assert_eq!(
        an["ai_auc"]["ci_delong"][0].as_f64().unwrap(),
        direct.ci_delong.unwrap().0,
        "the engine's numbers, to the last digit"
    );
    assert_eq!(
        an["readers"].as_array().unwrap().len(),
        1,
        "one reader read every case"
    );
    // A later edit cannot reach the locked numbers: the database refuses it.
    let reads: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'analysis.read'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(reads, 1, "reading the analysis is audited");
    // The locked data as CSV, each download audited with its hash.
    let (_, names) = stats.get_json("/exports").await;
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "dictionary.csv"),
        "{names}"
    );
    let csv_of = |name: &'static str| {
        let stats = &stats;
        async move {
            let (status, kind, body) = stats.get_file(&format!("/exports/{name}")).await;
            assert_eq!(
                (status, kind.as_str()),
                (200, "text/csv; charset=utf-8"),
                "{name}"
            );
            String::from_utf8(body).unwrap()
        }
    };
    let crf = csv_of("crf.csv").await;
    let mut lines = crf.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("case_id,version,complete,age_years,sex,symptoms"),
        "{header}"
    );
    assert_eq!(lines.count(), 4, "one row per case");
    assert!(
        crf.contains("pain;night_pain"),
        "symptoms are listed: {crf}"
    );
    let pathology = csv_of("pathology.csv").await;
    assert_eq!(
        pathology
            .lines()
            .filter(|l| l.contains(",malignant,"))
            .count(),
        2
    );
    assert!(csv_of("dictionary.csv").await.contains("crf,age_years"));
    let r = stats
        .request(Method::GET, "/exports/secrets.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let downloads: Vec<String> = sqlx::query_scalar(
        "SELECT new_value FROM audit_log WHERE action = 'export.download' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(downloads.len(), 3);
    assert!(downloads[0].starts_with("crf.csv sha256="), "{downloads:?}");
    // The page shows the same figures to the statistician.
    let page = app.signed_in("statistician").await;
    let (status, html) = page.get_text("/analysis").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"ai-auc\""), "{html}");
    assert!(
        html.contains(&format!("{:.3}", direct.auc)),
        "the AUC is on the page"
    );
    assert!(
        html.contains(lock["export_sha256"].as_str().unwrap()),
        "with the dataset hash"
    );
}

#[tokio::test]
async fn the_locked_report_is_a_reproducible_pdf_whose_numbers_are_the_engines() {
    let app = spawn_app().await;
    let (team, stats, lock) = locked_study(&app).await;
    let (_, a) = stats.get_json("/analysis").await;
    let an = &a["analysis"];

    let download = |name: &'static str| {
        let stats = &stats;
        async move {
            let (status, kind, body) = stats.get_file(&format!("/exports/{name}")).await;
            assert_eq!((status, kind.as_str()), (200, "application/pdf"), "{name}");
            body
        }
    };
    let en = download("report-en.pdf").await;
    assert!(en.starts_with(b"%PDF-"));
    assert_eq!(
        en,
        download("report-en.pdf").await,
        "the same locked data gives the same bytes"
    );
    let zh = download("report-zh-CN.pdf").await;
    assert_ne!(en, zh);

    // The numbers in the text are the engine's.
    let text = pdf_text(&en);
    let f3 = |v: &Value| format!("{:.3}", v.as_f64().unwrap());
    let auc = &an["ai_auc"];
    let expected = [
        "ChiCTR2500102778".to_owned(),
        lock["export_sha256"].as_str().unwrap().to_owned(),
        "Locked analysis report".to_owned(),
        "STARD 2015".to_owned(),
        format!(
            "{} ({}–{})",
            f3(&auc["auc"]),
            f3(&auc["ci_delong"][0]),
            f3(&auc["ci_delong"][1])
        ),
        format!(
            "{} ({}–{}",
            f3(&auc["auc"]),
            f3(&an["ai_auc_bootstrap"]["lower"]),
            f3(&an["ai_auc_bootstrap"]["upper"])
        ),
        format!(
            "{} ({}/{})",
            f3(&an["ai_at_threshold"]["sensitivity"]["value"]),
            an["ai_at_threshold"]["sensitivity"]["x"],
            an["ai_at_threshold"]["sensitivity"]["n"]
        ),
        format!(
            "{}–{}",
            f3(&an["ai_at_threshold"]["specificity"]["wilson"]["lower"]),
            f3(&an["ai_at_threshold"]["specificity"]["wilson"]["upper"])
        ),
        format!(
            "{}–{}",
            f3(&an["ai_at_threshold"]["accuracy"]["clopper_pearson"]["lower"]),
            f3(&an["ai_at_threshold"]["accuracy"]["clopper_pearson"]["upper"])
        ),
        format!(
            "Consecutive patients screened n = {}",
            an["flow"]["screening"]["screened"]
        ),
        format!("AI positive n = {}", {
            let f = &an["flow"]["ai_positive"];
            ["malignant", "benign", "intermediate"]
                .iter()
                .map(|k| f[k].as_i64().unwrap())
                .sum::<i64>()
        }),
        format!("AI (AUC {})", f3(&an["roc"][0]["auc"])),
        format!("reader 1 likelihood (AUC {})", f3(&an["roc"][1]["auc"])),
        "Sex — Female".to_owned(),
    ];
    for e in &expected {
        assert!(text.contains(e.as_str()), "the report lacks `{e}`:\n{text}");
    }
    let zh_text = pdf_text(&zh);
    for e in [
        "锁定分析报告",
        "通过临床适用的深度学习算法",
        "受试者流程",
        &expected[4],
    ] {
        assert!(
            zh_text.contains(e),
            "the Chinese report lacks `{e}`:\n{zh_text}"
        );
    }

    // Each download is audited with the SHA-256 of the bytes sent.
    let downloads: Vec<String> = sqlx::query_scalar(
        "SELECT new_value FROM audit_log WHERE action = 'export.download' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let sha = osteo_trial::store::sha256_hex(&en);
    assert_eq!(downloads.len(), 3);
    assert!(
        downloads[0].starts_with(&format!("report-en.pdf sha256={sha}")),
        "{downloads:?}"
    );
    // Other roles: the radiologist never sees accuracy.
    let (status, _) = team.radiologist.get_json("/exports/report-en.pdf").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_odm_export_holds_the_locked_data_and_every_audit_record_of_the_cases() {
    let app = spawn_app().await;
    let (_team, stats, lock) = locked_study(&app).await;
    let (status, kind, body) = stats.get_file("/exports/odm.xml").await;
    assert_eq!((status, kind.as_str()), (200, "application/xml"));
    let xml = String::from_utf8(body).unwrap();
    // Valid by CDISC's own schema.
    if let Err(complaints) = osteo_tests::odm::validate(&xml) {
        panic!("the ODM export does not validate against ODM1-3-2.xsd:\n{complaints}");
    }

    // Well-formed, in the ODM 1.3 namespace; count what it holds.
    let mut subjects = Vec::new();
    let mut items: Vec<(String, String)> = Vec::new();
    let mut records = 0;
    let mut collected = 0;
    let mut depth_in_collection = false;
    let mut root = None;
    for e in xml::reader::EventReader::from_str(&xml) {
        match e.expect("well-formed XML") {
            xml::reader::XmlEvent::StartElement {
                name, attributes, ..
            } => {
                let attr = |k: &str| {
                    attributes
                        .iter()
                        .find(|a| a.name.local_name == k)
                        .map(|a| a.value.clone())
                        .unwrap_or_default()
                };
                match name.local_name.as_str() {
                    "ODM" => {
                        root = Some((name.namespace.clone(), attr("ODMVersion"), attr("FileOID")))
                    }
                    "SubjectData" => subjects.push(attr("SubjectKey")),
                    "ItemData" => items.push((attr("ItemOID"), attr("Value"))),
                    "AuditRecords" => depth_in_collection = true,
                    "AuditRecord" if depth_in_collection => collected += 1,
                    "AuditRecord" => records += 1,
                    _ => {}
                }
            }
            xml::reader::XmlEvent::EndElement { name } if name.local_name == "AuditRecords" => {
                depth_in_collection = false
            }
            _ => {}
        }
    }
    let (ns, version, file_oid) = root.expect("an ODM root element");
    assert_eq!(ns.as_deref(), Some("http://www.cdisc.org/ns/odm/v1.3"));
    assert_eq!(version, "1.3.2");
    assert!(
        file_oid.ends_with(lock["export_sha256"].as_str().unwrap()),
        "{file_oid}"
    );
    assert_eq!(
        subjects,
        ["P-0001", "P-0002", "P-0003", "P-0004", "P-0005", "P-0006"]
    );
    let values = |oid: &str| -> Vec<&str> {
        items
            .iter()
            .filter(|(o, _)| o == oid)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("I.CRF.AGE_YEARS"), ["34"; 6]);
    assert_eq!(
        values("I.AI.PROBABILITY"),
        ["0.92", "0.64", "0.55", "0.3", "0.71", "0.12"]
    );
    assert_eq!(
        values("I.PATH.TIER"),
        [
            "malignant",
            "malignant",
            "malignant",
            "benign",
            "benign",
            "benign"
        ]
    );
    assert_eq!(values("I.READ.CALL").len(), 6, "one read per case");
    // Every audit entry about the cases up to the lock is in the file.
    let trail: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE entity = 'case' AND seq <= (SELECT MAX(seq) FROM audit_log WHERE action = 'database.lock')",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert!(trail > 30, "{trail}");
    assert_eq!(collected, trail);
    assert!(
        records >= items.len(),
        "every item and subject carries its audit record"
    );
    assert!(
        xml.contains("<SourceID>audit_log "),
        "the entries name their action and value"
    );
    // Audited with its hash, like every export.
    let sha = osteo_trial::store::sha256_hex(xml.as_bytes());
    let logged: Vec<String> =
        sqlx::query_scalar("SELECT new_value FROM audit_log WHERE action = 'export.download'")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert_eq!(logged.len(), 1);
    assert!(
        logged[0].starts_with(&format!("odm.xml sha256={sha}")),
        "{logged:?}"
    );
}

/// The ODM file of a study with the events that give it its harder parts —
/// a withdrawal, a corrected and re-signed pathology report, a query raised,
/// answered and closed, a screen failure — passes CDISC's schema.
#[tokio::test]
async fn the_odm_export_of_a_study_with_withdrawals_corrections_and_queries_validates() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let c = &team.coordinator;
    let monitor = app.api_client("monitor").await;
    let stats = app.api_client("statistician").await;
    let mut complete = Vec::new();
    for (p, entity) in [(0.81, "osteosarcoma"), (0.22, "enchondroma")] {
        complete.push(team.complete_case_with(&app, p, entity).await);
    }
    // A corrected pathology report, signed again.
    let id = complete[0];
    let mut fix = workflow::pathology();
    fix["entity"] = json!("telangiectatic_osteosarcoma");
    fix["reason"] = json!("report amended by pathology");
    let (status, v) = c
        .send_json(Method::POST, &format!("/cases/{id}/pathology"), &fix)
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = c
        .send_json(
            Method::POST,
            &format!("/cases/{id}/pathology/sign"),
            &json!({"password": app.password("coordinator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // A query raised, answered and closed.
    let id = complete[1];
    let (status, q) = monitor
        .send_json(
            Method::POST,
            &format!("/cases/{id}/queries"),
            &json!({"field": "age_years", "text": "Age does not match the source document."}),
        )
        .await;
    assert_eq!(status, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    for (api, action, text) in [
        (c, "answer", "Checked against the referral: 34 is right."),
        (&monitor, "close", "Verified."),
    ] {
        let (status, v) = api
            .send_json(
                Method::POST,
                &format!("/queries/{qid}"),
                &json!({"action": action, "text": text}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    // A withdrawal signed by the PI, and a screen failure.
    let withdrawn = team.case_ready_to_read(&app).await;
    let (status, v) = team
        .pi
        .send_json(
            Method::POST,
            &format!("/cases/{withdrawn}/end"),
            &json!({"kind": "withdrawn", "code": "consent_withdrawn", "reason": "the patient withdrew consent",
                    "password": app.password("investigator")}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = c
        .send_json(
            Method::POST,
            "/screenings",
            &json!({"arm": "prospective", "screening_date": "2025-06-03", "inclusion_met": true,
                    "exclusions": ["E1"], "outcome": "excluded"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    workflow::signed_sap(&app).await;
    let (status, lock) = team
        .pi
        .send_json(
            Method::POST,
            "/study/lock",
            &json!({"password": app.password("investigator")}),
        )
        .await;
    assert_eq!(status, 200, "{lock}");
    let (status, _, body) = stats.get_file("/exports/odm.xml").await;
    assert_eq!(status, 200);
    let xml = String::from_utf8(body).unwrap();
    if let Err(complaints) = osteo_tests::odm::validate(&xml) {
        panic!("the ODM export does not validate against ODM1-3-2.xsd:\n{complaints}");
    }
    for expected in [
        "telangiectatic_osteosarcoma",
        "report amended by pathology",
        "the patient withdrew consent",
    ] {
        assert!(xml.contains(expected), "the ODM file holds {expected:?}");
    }
    // The validator is a real one: the same file with a subject's key
    // removed is refused.
    let broken = xml.replacen("SubjectKey=", "SubjectLabel=", 1);
    let complaints = osteo_tests::odm::validate(&broken).expect_err("an invalid file is refused");
    assert!(complaints.contains("SubjectKey"), "{complaints}");
}

/// The cases page sends a page of 50 of each list, says where it stands
/// and links to the next and previous pages.
#[tokio::test]
async fn the_cases_page_lists_cases_a_page_at_a_time() {
    let app = spawn_app().await;
    let c = app.api_client("coordinator").await;
    for _ in 0..55 {
        workflow::enrol(&c).await;
    }
    let browser = app.signed_in("coordinator").await;
    let rows = |html: &str, table: &str| -> usize {
        let start = html.find(&format!("id=\"{table}\"")).expect("the table");
        let end = start + html[start..].find("</table>").expect("its end");
        html[start..end].matches("<tr>").count() - 1
    };
    let (status, first) = browser.get_text("/cases").await;
    assert_eq!(status, 200);
    assert_eq!(
        (rows(&first, "worklist"), rows(&first, "all-cases")),
        (50, 50)
    );
    assert!(first.contains("1–50 "), "{first}");
    assert!(first.contains(" 55"), "the total");
    assert!(
        first.contains("href=\"/cases?due=2&amp;page=1\""),
        "{first}"
    );
    assert!(
        first.contains("href=\"/cases?page=2&amp;due=1\""),
        "{first}"
    );
    let (_, second) = browser.get_text("/cases?page=2").await;
    assert_eq!(
        (rows(&second, "worklist"), rows(&second, "all-cases")),
        (50, 5)
    );
    assert!(second.contains("51–55 "), "{second}");
    assert!(
        second.contains("href=\"/cases?page=1&amp;due=1\""),
        "{second}"
    );
    assert!(second.contains("P-0055"), "the last case on the last page");
    // A page past the end says so and leads back.
    let (status, past) = browser.get_text("/cases?page=9&due=x").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&past, "all-cases"), 0);
    assert!(past.contains("href=\"/cases?page=2&amp;due=1\""), "{past}");
}

/// The study at a glance: enrolment over time against the target, the
/// screening funnel, query ageing and the readers' throughput, in the API
/// and as server-drawn charts on the dashboard page in both languages —
/// and still no result of any kind before lock.
#[tokio::test]
async fn the_dashboard_shows_the_study_at_a_glance_without_results() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let monitor = app.api_client("monitor").await;
    let stats = app.api_client("statistician").await;
    // Two more enrolments on later days, an E1 and an E3 exclusion.
    for (date, outcome, exclusions) in [
        ("2025-06-09", "enrolled", json!([])),
        ("2025-06-20", "enrolled", json!([])),
        ("2025-06-21", "excluded", json!(["E1"])),
        ("2025-06-22", "excluded", json!(["E3"])),
    ] {
        let (status, e) = team
            .coordinator
            .send_json(
                Method::POST,
                "/screenings",
                &json!({"arm": "prospective", "screening_date": date, "inclusion_met": true,
                        "exclusions": exclusions, "outcome": outcome}),
            )
            .await;
        assert_eq!(status, 201, "{e}");
    }
    // One case through to pathology (enrolled on 2025-06-02), another
    // assigned but not yet read, and a query on it.
    let done = team.complete_case(&app).await;
    let waiting = team.case_ready_to_read(&app).await;
    let (status, q) = monitor
        .send_json(
            Method::POST,
            &format!("/cases/{waiting}/queries"),
            &json!({"field": "age_years", "text": "Please check the age."}),
        )
        .await;
    assert_eq!(status, 201, "{q}");

    let (status, d) = stats.get_json("/dashboard").await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["enrolled_prospective"], 4);
    assert_eq!(
        d["enrolment"],
        json!([{"site": "QDUAH", "dates": ["2025-06-02", "2025-06-02", "2025-06-09", "2025-06-20"]}])
    );
    assert_eq!(d["flow"]["excluded_e1"], 1);
    assert_eq!(d["flow"]["excluded_e3"], 1);
    assert_eq!(d["reference_standard"], 1, "the case {done} has pathology");
    assert_eq!(
        d["query_ageing"],
        json!({"days_0_7": 1, "days_8_14": 0, "days_15_30": 0, "over_30": 0})
    );
    let readers = d["readers"].as_array().unwrap();
    assert_eq!(readers.len(), 1, "{d}");
    assert_eq!(readers[0]["assigned"], 2);
    assert_eq!(readers[0]["signed"], 1);
    assert_eq!(readers[0]["signed_last_7_days"], 1);
    assert!(readers[0]["median_turnaround_minutes"].as_i64().unwrap() >= 0);
    shows_no_result(&d);

    // The page draws the charts on the server: they are in the HTML.
    let b = app.signed_in("statistician").await;
    let (status, page) = b.get_text("/dashboard").await;
    assert_eq!(status, 200);
    for id in [
        "chart-enrolment",
        "chart-funnel",
        "chart-states",
        "chart-query-ageing",
        "chart-readers",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "the page has {id}");
    }
    assert!(
        page.contains("aria-label=\"Prospective enrolment over time\""),
        "{page}"
    );
    for text in [
        "all sites (4)",
        "target (200)",
        "QDUAH (4)",
        "reference standard recorded",
        "0–7 days",
    ] {
        assert!(page.contains(text), "the page shows {text}");
    }
    assert_eq!(page.matches("<svg role=\"img\"").count(), 5, "five charts");
    let lower = page.to_lowercase();
    for leak in ["auc", "sensitivity", "specificity", "malignant"] {
        assert!(!lower.contains(leak), "the dashboard page shows no {leak}");
    }
    // In Chinese, the charts' words are Chinese too.
    let r = b.switch_language("zh-CN", "/dashboard").await;
    assert_eq!(osteo_tests::location(&r), "/dashboard");
    let (_, zh) = b.get_text("/dashboard").await;
    for text in [
        "aria-label=\"前瞻性入组随时间变化\"",
        "全部中心 (4)",
        "目标 (200)",
        "筛选漏斗",
    ] {
        assert!(zh.contains(text), "the Chinese page shows {text}");
    }
}

/// The radiologist's case page is a reading workstation: the views in their
/// hanging order beside a compact clinical summary and the read form, the
/// score of the draft, a worklist counter, and "sign and next", which saves
/// and signs the read with the password of the same form and opens the next
/// case. A refused signature keeps the read as a draft.
#[tokio::test]
async fn the_reading_workstation_signs_and_opens_the_next_case() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    // The lateral view arrives first; the workstation hangs the frontal left.
    let lateral = osteo_tests::dicom::Radiograph::cr("patient-ws", "LL", 7).bytes();
    let frontal = osteo_tests::dicom::Radiograph::cr("patient-ws", "AP", 8).bytes();
    let first = team.case_ready_to_read_with(&[lateral, frontal]).await;
    let second = team.case_ready_to_read(&app).await;
    let b = app.signed_in("radiologist").await;
    let (status, page) = b.get_text(&format!("/cases/{first}")).await;
    assert_eq!(status, 200);
    for id in [
        "workstation",
        "clinical-summary",
        "read-form",
        "live-score",
        "read-sign-next",
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "the workstation has #{id}"
        );
    }
    assert!(
        !page.contains("id=\"crf\""),
        "the full CRF form gives way to the summary"
    );
    let at = |alt: &str| {
        page.find(&format!("alt=\"{alt}"))
            .unwrap_or_else(|| panic!("a {alt} view"))
    };
    assert!(at("Frontal") < at("Lateral"), "frontal left, lateral right");
    assert!(
        page.contains("this one included while unsigned: 2"),
        "two cases left"
    );

    fn read(password: Option<&str>) -> Vec<(&'static str, &str)> {
        let mut form = vec![
            ("margin", "II"),
            ("periosteal", "aggressive"),
            ("endosteal_erosion", "under_one_third"),
            ("likelihood", "80"),
            ("call", "malignant"),
        ];
        if let Some(p) = password {
            form.push(("password", p));
        }
        form
    }
    // A draft: the page shows its score (the browser keeps it live as the
    // reader scores; the server scores again).
    let r = b
        .post_form(&format!("/cases/{first}/read"), &read(None))
        .await;
    assert_eq!(osteo_tests::location(&r), format!("/cases/{first}#read"));
    let (_, page) = b.get_text(&format!("/cases/{first}")).await;
    assert!(
        page.contains("Points 9 · Bone-RADS 4"),
        "margin II 5 + aggressive 4"
    );
    // The page's script keeps the draft as the reader scores: 204 when
    // kept, 422 with the reason while it is not yet a whole read.
    let r = b
        .post_form(&format!("/cases/{first}/read/draft"), &read(None))
        .await;
    assert_eq!(r.status().as_u16(), 204);
    let mut partial = read(None);
    partial.retain(|(k, _)| *k != "likelihood");
    let r = b
        .post_form(&format!("/cases/{first}/read/draft"), &partial)
        .await;
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("likelihood is required"));
    let (_, c) = team.coordinator.get_json(&format!("/cases/{first}")).await;
    assert_eq!(
        c["reads"][0]["input"]["likelihood"], 80,
        "the whole draft stays: {c}"
    );
    // Nobody else keeps a draft of this reader's read.
    let coordinator = app.signed_in("coordinator").await;
    let r = coordinator
        .post_form(&format!("/cases/{first}/read/draft"), &read(None))
        .await;
    assert_ne!(r.status().as_u16(), 204);

    let signed = |case: i64| {
        let db = app.db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM reads WHERE case_id = $1 AND signed_at IS NOT NULL",
            )
            .bind(case)
            .fetch_one(db.pool())
            .await
            .unwrap();
            n
        }
    };
    // A wrong password: the read is saved, not signed, and the page says why.
    let mut wrong = read(Some("not the password"));
    wrong[3] = ("likelihood", "85");
    let r = b
        .post_form(&format!("/cases/{first}/read/sign-next"), &wrong)
        .await;
    assert!(osteo_tests::location(&r).starts_with(&format!("/cases/{first}?error=")));
    assert_eq!(signed(first).await, 0);
    let (_, c) = team.coordinator.get_json(&format!("/cases/{first}")).await;
    assert_eq!(
        c["reads"][0]["input"]["likelihood"], 85,
        "the draft kept: {c}"
    );
    // A read the server refuses is not signed either.
    let mut bad = read(Some(osteo_tests::PASSWORD));
    bad[3] = ("likelihood", "101");
    let r = b
        .post_form(&format!("/cases/{first}/read/sign-next"), &bad)
        .await;
    assert_eq!(
        osteo_tests::location(&r),
        format!("/cases/{first}?error=read#read")
    );
    assert_eq!(signed(first).await, 0);

    // Signed: the next case on the worklist opens, with one case left.
    let r = b
        .post_form(
            &format!("/cases/{first}/read/sign-next"),
            &read(Some(osteo_tests::PASSWORD)),
        )
        .await;
    assert_eq!(
        osteo_tests::location(&r),
        format!("/cases/{second}#workstation")
    );
    assert_eq!(signed(first).await, 1);
    let (_, page) = b.get_text(&format!("/cases/{second}")).await;
    assert!(page.contains("this one included while unsigned: 1"));
    // The last one: back to the worklist, now empty.
    let r = b
        .post_form(
            &format!("/cases/{second}/read/sign-next"),
            &read(Some(osteo_tests::PASSWORD)),
        )
        .await;
    assert_eq!(osteo_tests::location(&r), "/cases");
    assert_eq!(signed(second).await, 1);
    let (_, list) = b.get_text("/cases").await;
    assert!(list.contains("id=\"worklist-empty\""));
    assert!(list.contains("Your worklist is empty."));
}

/// The words of a result: none may appear in the dashboard before lock.
fn shows_no_result(dashboard: &Value) {
    let text = dashboard.to_string();
    for leak in [
        "auc",
        "sensitivity",
        "specificity",
        "malignant",
        "benign",
        "probability",
        "tier",
    ] {
        assert!(
            !text.contains(leak),
            "the dashboard shows no {leak}: {text}"
        );
    }
}
