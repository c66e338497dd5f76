//! The consecutive screening log through the REST API, on SQLite and
//! PostgreSQL: numbering, edit checks, corrections, concurrency, the report.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{audit_rows, spawn_app};
use reqwest::Method;
use serde_json::{json, Value};

fn entry(outcome: &str) -> Value {
    json!({
        "arm": "prospective",
        "screening_date": "2025-06-02",
        "inclusion_met": true,
        "exclusions": [],
        "outcome": outcome,
    })
}

#[tokio::test]
async fn screened_patients_get_consecutive_numbers_and_enrolled_ones_study_numbers() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let mut excluded = entry("excluded");
    excluded["exclusions"] = json!(["E3", "E1"]);
    let mut declined = entry("not_enrolled");
    declined["not_enrolled_reason"] = json!("declined");
    let mut retro = entry("enrolled");
    retro["arm"] = json!("retrospective");
    let expected = [
        (entry("enrolled"), 1, Some("P-0001")),
        (excluded, 2, None),
        (declined, 3, None),
        (entry("enrolled"), 4, Some("P-0002")),
        (retro, 5, Some("R-0001")),
    ];
    for (body, no, study) in expected {
        let (status, e) = api.send_json(Method::POST, "/screenings", &body).await;
        assert_eq!(status, 201, "{e}");
        assert_eq!(e["screening_no"], no);
        assert_eq!(e["site_code"], "QDUAH");
        assert_eq!(e["study_number"].as_str(), study);
    }
    let (status, log) = api.get_json("/screenings").await;
    assert_eq!(status, 200);
    assert_eq!(log["entries"].as_array().unwrap().len(), 5);
    assert_eq!(log["entries"][1]["exclusions"], json!(["E1", "E3"]));
    assert_eq!(log["gaps"], json!([]));
    assert_eq!(log["out_of_order"], json!([]));
    let flow = &log["flow"];
    assert_eq!(
        (
            flow["screened"].as_i64(),
            flow["enrolled_prospective"].as_i64()
        ),
        (Some(5), Some(2))
    );
    assert_eq!(
        (
            flow["excluded_e1"].as_i64(),
            flow["excluded_e3"].as_i64(),
            flow["declined"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
}

#[tokio::test]
async fn the_edit_checks_refuse_bad_entries_and_change_nothing() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let before = audit_rows(&app.db).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let cases = [
        (json!({"screening_date": tomorrow}), "future"),
        (json!({"screening_date": "2023-01-01"}), "before the study"),
        (json!({"screening_date": "02/06/2025"}), "YYYY-MM-DD"),
        (json!({"exclusions": ["E2"]}), "cannot be enrolled"),
        (json!({"exclusions": ["E4"]}), "unknown exclusion"),
        (json!({"outcome": "excluded"}), "at least one code"),
        (json!({"outcome": "not_enrolled"}), "needs a reason"),
        (json!({"inclusion_met": false}), "inclusion"),
        (json!({"arm": "both"}), "unknown arm"),
        (json!({"comment": "x".repeat(1001)}), "1000"),
    ];
    for (change, needle) in cases {
        let mut body = entry("enrolled");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = api.send_json(Method::POST, "/screenings", &body).await;
        assert_eq!(status, 400, "{body} -> {err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg} should mention {needle}");
    }
    let (status, _) = api
        .send_json(Method::POST, "/screenings", &json!({"arm": "prospective"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(audit_rows(&app.db).await, before, "nothing was written");
    let (_, log) = api.get_json("/screenings").await;
    assert_eq!(log["entries"], json!([]));
    // The next valid entry still gets number 1: refused input used no number.
    let (_, e) = api
        .send_json(Method::POST, "/screenings", &entry("enrolled"))
        .await;
    assert_eq!(e["screening_no"], 1);
}

#[tokio::test]
async fn coordinators_enrolling_at_the_same_moment_get_distinct_consecutive_numbers() {
    let app = spawn_app().await;
    let api = std::sync::Arc::new(app.api_client("coordinator").await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                api.send_json(Method::POST, "/screenings", &entry("enrolled"))
                    .await
            })
        })
        .collect();
    let mut screening = Vec::new();
    let mut study = Vec::new();
    for t in tasks {
        let (status, e) = t.await.unwrap();
        assert_eq!(status, 201, "{e}");
        screening.push(e["screening_no"].as_i64().unwrap());
        study.push(e["study_no"].as_i64().unwrap());
    }
    screening.sort();
    study.sort();
    assert_eq!(screening, (1..=20).collect::<Vec<_>>());
    assert_eq!(study, (1..=20).collect::<Vec<_>>());
    let (_, log) = api.get_json("/screenings").await;
    assert_eq!(log["gaps"], json!([]));
    osteo_trial::audit::verify(&app.db, app.audit_key().as_ref())
        .await
        .unwrap();
}

#[tokio::test]
async fn corrections_are_new_versions_with_a_reason_and_enrolment_is_final() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let (_, e) = api
        .send_json(Method::POST, "/screenings", &entry("enrolled"))
        .await;
    let id = e["id"].as_i64().unwrap();

    let mut fix = entry("enrolled");
    fix["screening_date"] = json!("2025-06-01");
    let (status, err) = api
        .send_json(Method::POST, &format!("/screenings/{id}/corrections"), &fix)
        .await;
    assert_eq!(status, 400, "a reason is required: {err}");
    fix["reason"] = json!("date typed wrongly");
    let (status, fixed) = api
        .send_json(Method::POST, &format!("/screenings/{id}/corrections"), &fix)
        .await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["version"], 2);
    assert_eq!(fixed["screening_date"], "2025-06-01");
    assert_eq!(fixed["study_number"], "P-0001", "the study number stays");
    let (_, versions) = api.get_json(&format!("/screenings/{id}/versions")).await;
    assert_eq!(versions[1]["reason_for_change"], "date typed wrongly");
    let rows = osteo_trial::audit::query(
        &app.db,
        &osteo_trial::audit::AuditFilter {
            entity: Some("screening".into()),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap()
    .rows;
    let c = rows
        .iter()
        .find(|r| r.action == "screening.correct")
        .unwrap();
    assert_eq!(
        (
            c.field.as_deref(),
            c.old_value.as_deref(),
            c.new_value.as_deref(),
            c.reason.as_deref()
        ),
        (
            Some("screening_date"),
            Some("2025-06-02"),
            Some("2025-06-01"),
            Some("date typed wrongly")
        )
    );

    let mut undo = entry("not_enrolled");
    undo["not_enrolled_reason"] = json!("declined");
    undo["reason"] = json!("changed mind");
    let (status, _) = api
        .send_json(
            Method::POST,
            &format!("/screenings/{id}/corrections"),
            &undo,
        )
        .await;
    assert_eq!(status, 409, "an enrolment is not undone by a correction");

    // A patient recorded as missed by mistake is enrolled by a correction.
    let mut missed = entry("not_enrolled");
    missed["not_enrolled_reason"] = json!("missed");
    let (_, m) = api.send_json(Method::POST, "/screenings", &missed).await;
    let mut enrol = entry("enrolled");
    enrol["reason"] = json!("was enrolled on paper");
    let (status, m) = api
        .send_json(
            Method::POST,
            &format!("/screenings/{}/corrections", m["id"]),
            &enrol,
        )
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["study_number"], "P-0002");
}

#[tokio::test]
async fn who_may_read_and_write_the_log() {
    let app = spawn_app().await;
    for (user, read, write) in [
        ("coordinator", 200, 201),
        ("statistician", 200, 403),
        ("monitor", 200, 403),
        ("investigator", 200, 403),
        ("admin", 200, 403),
        ("radiologist", 403, 403),
    ] {
        let api = app.api_client(user).await;
        assert_eq!(api.get_json("/screenings").await.0, read, "{user} reads");
        assert_eq!(
            api.send_json(Method::POST, "/screenings", &entry("enrolled"))
                .await
                .0,
            write,
            "{user} writes"
        );
    }
}

#[tokio::test]
async fn the_log_cannot_be_deleted_and_gaps_are_reported() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let (_, e) = api
        .send_json(Method::POST, "/screenings", &entry("enrolled"))
        .await;
    let id = e["id"].as_i64().unwrap();
    assert!(sqlx::query("DELETE FROM screenings WHERE id = $1")
        .bind(id)
        .execute(app.db.pool())
        .await
        .is_err());
    assert!(
        sqlx::query("UPDATE screening_versions SET outcome = 'excluded'")
            .execute(app.db.pool())
            .await
            .is_err()
    );
    assert!(
        sqlx::query("UPDATE screenings SET study_no = 99 WHERE id = $1")
            .bind(id)
            .execute(app.db.pool())
            .await
            .is_err()
    );

    // An entry imported out of sequence (number 4, dated earlier) shows in the report.
    let (site, user): (i64, i64) =
        sqlx::query_as("SELECT site_id, id FROM users WHERE username = 'coordinator'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let new_id: (i64,) = sqlx::query_as(
        "INSERT INTO screenings (site_id, screening_no, arm, created_at, created_by) VALUES ($1, 4, 'prospective', '2025-06-01T00:00:00.000000Z', $2) RETURNING id",
    )
    .bind(site)
    .bind(user)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO screening_versions (screening_id, version, screening_date, inclusion_met, exclusions, outcome, not_enrolled_reason, created_at, created_by) \
         VALUES ($1, 1, '2025-05-30', 1, '', 'not_enrolled', 'missed', '2025-06-01T00:00:00.000000Z', $2)",
    )
    .bind(new_id.0)
    .bind(user)
    .execute(app.db.pool())
    .await
    .unwrap();
    let (_, log) = api.get_json("/screenings").await;
    assert_eq!(log["gaps"], json!([["QDUAH", 2], ["QDUAH", 3]]));
    assert_eq!(log["out_of_order"], json!([["QDUAH", 4]]));
}

#[tokio::test]
async fn the_screening_page_works_by_plain_form_posts() {
    let app = spawn_app().await;
    let b = app.signed_in("coordinator").await;
    let (status, page) = b.get_text("/screening").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"screening-form\""));
    let form = |outcome: &'static str| {
        vec![
            ("arm", "prospective"),
            ("screening_date", "2025-06-03"),
            ("inclusion_met", "true"),
            ("outcome", outcome),
            ("not_enrolled_reason", ""),
            ("comment", ""),
        ]
    };
    let r = b.post_form("/screening", &form("enrolled")).await;
    assert_eq!(osteo_tests::location(&r), "/screening");
    let (_, page) = b.get_text("/screening").await;
    assert!(
        page.contains("Screened patient logged:") && page.contains("P-0001"),
        "the flash names the study number"
    );

    let mut excluded = form("excluded");
    excluded.push(("e1", "true"));
    excluded.push(("e3", "true"));
    let r = b.post_form("/screening", &excluded).await;
    assert_eq!(osteo_tests::location(&r), "/screening");
    let r = b.post_form("/screening", &form("excluded")).await;
    assert_eq!(
        osteo_tests::location(&r),
        "/screening?error=excluded_without_code"
    );
    let (_, page) = b.get_text("/screening?error=excluded_without_code").await;
    assert!(page.contains("An exclusion needs at least one criterion"));
    let (_, page) = b.get_text("/screening").await;
    assert!(page.contains("excluded (E1, E3)"));
    assert!(page.contains("No gaps, dates in order."));

    // A correction through the page needs a reason.
    let id: (i64,) = sqlx::query_as("SELECT id FROM screenings WHERE screening_no = 2")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let mut fix = excluded.clone();
    fix.push(("reason", ""));
    let r = b
        .post_form(&format!("/screening/{}/correct", id.0), &fix)
        .await;
    assert_eq!(osteo_tests::location(&r), "/screening?error=missing_reason");
    fix.pop();
    fix.push(("reason", "E1 was wrong"));
    fix.retain(|(k, _)| *k != "e1");
    let r = b
        .post_form(&format!("/screening/{}/correct", id.0), &fix)
        .await;
    assert_eq!(osteo_tests::location(&r), "/screening");
    let (_, page) = b.get_text("/screening").await;
    assert!(page.contains("excluded (E3)"));

    let radiologist = app.signed_in("radiologist").await;
    assert_eq!(radiologist.get("/screening").await.status(), 403);
    let statistician = app.signed_in("statistician").await;
    let (status, page) = statistician.get_text("/screening").await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("id=\"screening-form\""),
        "read-only for statisticians"
    );
    let r = statistician
        .post_form("/screening", &form("enrolled"))
        .await;
    assert_eq!(r.status(), 403);
}
