//! The REST API, the audit trail and the error policy, through the real router.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{audit_rows, spawn_app, spawn_app_with};
use osteo_trial::audit;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_and_readiness_answer_without_a_sign_in() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let r = c.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/tokens",
        "/api/v1/me",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn api_tokens_act_with_their_owners_role_and_can_be_revoked() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = c
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth("osteo_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let api = app.api_client("investigator").await;
    let (status, me) = api.get_json("/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "investigator");
    assert_eq!(me["role"], "principal_investigator");

    // Tokens are stored hashed.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|(h,)| h.len() == 64 && !h.contains(&api.token)));

    let (status, created) = api
        .send_json(Method::POST, "/tokens", &json!({"name": "analysis script"}))
        .await;
    assert_eq!(status, 201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("osteo_"));
    let (_, list) = api.get_json("/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&secret),
        "listing never shows a secret"
    );

    let r = api
        .request(
            Method::DELETE,
            &format!("/tokens/{}", created["token"]["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked token no longer works");
    let rows = audit::query(
        &app.db,
        &audit::AuditFilter {
            entity: Some("api_token".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap()
    .rows;
    let actions: Vec<_> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.source.as_str()))
        .collect();
    assert!(actions.contains(&("api_token.revoke", "api")));
    assert!(actions.contains(&("api_token.create", "api")));
}

#[tokio::test]
async fn accounts_are_managed_over_the_api_with_reasons() {
    let app = spawn_app().await;
    let api = app.api_client("admin").await;
    let (status, created) = api
        .send_json(Method::POST, "/users", &json!({"username": "zhang.min", "display_name": "张敏", "role": "coordinator", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["must_change_password"], true);
    assert_eq!(created["one_time_password"].as_str().unwrap().len(), 16);
    let id = created["user"]["id"].as_i64().unwrap();

    let (status, body) = api
        .send_json(
            Method::PATCH,
            &format!("/users/{id}"),
            &json!({"role": "monitor"}),
        )
        .await;
    assert_eq!(status, 400, "a reason is required: {body}");
    let (status, body) = api
        .send_json(
            Method::PATCH,
            &format!("/users/{id}"),
            &json!({"role": "monitor", "reason": "moved to monitoring"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "monitor");
    let (status, body) = api
        .send_json(
            Method::POST,
            &format!("/users/{id}/reset-password"),
            &json!({"reason": "lost"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["one_time_password"].as_str().unwrap().len(), 16);
    let (status, body) = api.get_json("/users/999999").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = api.get_json("/users/abc").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = spawn_app_with(|s| s.body_limit = 4096).await;
    let api = app.api_client("admin").await;
    let before = audit_rows(&app.db).await;

    let r = api
        .request(Method::POST, "/users")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let r = api
        .request(Method::POST, "/users")
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let (status, body) = api
        .send_json(Method::POST, "/users", &json!({"username": "x"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .send_json(Method::POST, "/users", &json!({"username": "ok.name", "display_name": "A", "role": "admin", "site": "QDUAH", "extra": 1}))
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    let (status, body) = api
        .send_json(Method::POST, "/users", &json!({"username": "a".repeat(65), "display_name": "A", "role": "admin", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3 to 64"));
    let (status, _) = api
        .send_json(Method::POST, "/users", &json!({"username": "ok.name", "display_name": "x".repeat(129), "role": "admin", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 400);
    let (status, body) = api
        .send_json(Method::POST, "/users", &json!({"username": "ok.name", "display_name": "x".repeat(5000), "role": "admin", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");

    let (status, body) = api.get_json("/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = api.get_json("/audit?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("YYYY-MM-DD"));
    let (status, _) = api.get_json("/audit?bogus=1").await;
    assert_eq!(status, 400);

    let page = reqwest::get(format!("{}/no-such-page", app.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Page not found"));

    // A browser form that is too large.
    let admin = app.signed_in("admin").await;
    let at = audit_rows(&app.db).await;
    let big = "x".repeat(10_000);
    let r = admin
        .post_form(
            "/admin/users",
            &[
                ("username", big.as_str()),
                ("display_name", "A"),
                ("role", "admin"),
                ("site", "QDUAH"),
            ],
        )
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(audit_rows(&app.db).await, at);

    let created: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = 'ok.name'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(created.0, 0);
    assert!(at > before, "only the sign-in of the admin was written");
}

#[tokio::test]
async fn every_change_is_audited_with_who_what_when_and_the_chain_verifies() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let r = admin
        .post_form(
            "/admin/users",
            &[
                ("username", "wang.fang"),
                ("display_name", "王芳"),
                ("role", "coordinator"),
                ("site", "QDUAH"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let rows = audit::query(&app.db, &audit::AuditFilter::default(), 500)
        .await
        .unwrap()
        .rows;
    let create = rows
        .iter()
        .find(|r| r.action == "user.create" && r.actor == "admin")
        .expect("the creation is audited");
    assert_eq!(create.source, "ui");
    assert!(create.new_value.as_deref().unwrap().contains("wang.fang"));
    assert!(
        create.at.ends_with('Z') && create.at.len() == 27,
        "UTC time: {}",
        create.at
    );
    assert!(rows
        .iter()
        .any(|r| r.action == "login" && r.actor == "admin"));
    assert!(rows
        .iter()
        .any(|r| r.action == "password.change" && r.actor == "admin"));
    assert!(rows
        .iter()
        .any(|r| r.action == "study.create" && r.source == "system"));
    // No password, one-time or not, is ever in the trail.
    for (_, _, p) in &app.demo {
        assert!(!rows.iter().any(|r| format!("{r:?}").contains(p.as_str())));
    }
    assert!(!rows
        .iter()
        .any(|r| format!("{r:?}").contains(osteo_tests::PASSWORD)));

    let summary = audit::verify(&app.db, app.audit_key().as_ref())
        .await
        .unwrap();
    assert_eq!(summary.rows, audit_rows(&app.db).await);

    let api = app.api_client("monitor").await;
    let (status, body) = api.get_json("/audit/verify").await;
    assert_eq!(status, 200, "{body}");
    let (status, page) = api.get_json("/audit?actor=admin&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["rows"].as_array().unwrap().len(), 2);
    let next = page["next_before_seq"].as_i64().expect("more pages");
    let (_, older) = api
        .get_json(&format!("/audit?actor=admin&limit=2&before={next}"))
        .await;
    assert!(older["rows"][0]["seq"].as_i64().unwrap() < next);
}

#[tokio::test]
async fn the_database_itself_refuses_to_change_or_delete_audit_rows() {
    let app = spawn_app().await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone else' WHERE seq = 1")
        .execute(app.db.pool())
        .await;
    let err = update.expect_err("UPDATE is refused");
    assert!(err.to_string().contains("append-only"), "{err}");
    // On PostgreSQL the server's role may not even delete (no DELETE grant);
    // the table's owner meets the trigger.
    for url in [&app.database_url, &app.owner_url] {
        let db = osteo_trial::store::Db::connect(url).await.unwrap();
        let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 1")
            .execute(db.pool())
            .await;
        let e = delete.expect_err("DELETE is refused").to_string();
        assert!(
            e.contains("append-only") || e.contains("permission denied"),
            "{e}"
        );
        db.close().await;
    }
    audit::verify(&app.db, app.audit_key().as_ref())
        .await
        .expect("still intact");
}

#[tokio::test]
async fn concurrent_changes_keep_one_unbroken_chain() {
    let app = spawn_app().await;
    let api = app.api_client("admin").await;
    let api = std::sync::Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.send_json(
                Method::POST,
                "/users",
                &json!({"username": format!("user{i:02}"), "display_name": format!("User {i}"), "role": "coordinator", "site": "QDUAH"}),
            )
            .await
            .0
        }));
    }
    for i in 0..8 {
        let browser = app.browser();
        tasks.push(tokio::spawn(async move {
            browser
                .login("radiologist", &format!("wrong password {i}"))
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 201 || status == 303, "{status}");
    }
    let summary = audit::verify(&app.db, app.audit_key().as_ref())
        .await
        .unwrap();
    assert_eq!(summary.rows, audit_rows(&app.db).await);
    let locked: (Option<String>,) =
        sqlx::query_as("SELECT locked_until FROM users WHERE username = 'radiologist'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(
        locked.0.is_some(),
        "eight failures in parallel still lock the account"
    );
}

#[tokio::test]
async fn the_audit_page_filters_and_pages() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let (status, page) = admin.get_text("/admin/audit?actor=admin").await;
    assert_eq!(status, 200);
    assert!(page.contains("password.change"));
    assert!(
        !page.contains("study.create"),
        "filtered to the admin's rows"
    );
    let (status, page) = admin.get_text("/admin/audit?from=2026-99-01").await;
    assert_eq!(status, 200);
    assert!(page.contains("YYYY-MM-DD"), "a bad date is explained");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, page) = admin
        .get_text(&format!(
            "/admin/audit?from={today}&to={today}&entity=study"
        ))
        .await;
    assert!(page.contains("study.create"));
}

#[tokio::test]
async fn the_browser_bundle_is_served_compressed() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let wasm = format!("{}/pkg/osteo-edc_bg.wasm", app.base);
    let plain = c.get(&wasm).send().await.unwrap();
    assert_eq!(plain.status(), 200, "is the site built (make site)?");
    let plain_len = plain.bytes().await.unwrap().len();
    let gz = c
        .get(&wasm)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz_len = gz.bytes().await.unwrap().len();
    assert!(gz_len * 2 < plain_len, "{gz_len} compressed vs {plain_len}");
}

/// The pages load the bundle by its content hash, and those files may be
/// kept for a year; a file by its plain name is checked again each time.
#[tokio::test]
async fn the_pages_load_the_bundle_by_its_content_hash_cached_for_a_year() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let hash = std::fs::read_to_string(osteo_tests::site_root().join("pkg/hash.txt"))
        .expect("the site build names the bundle's hash (make site)");
    let hash = hash.trim();
    let page = c
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for file in [
        format!("osteo-edc.{hash}.js"),
        format!("osteo-edc.{hash}_bg.wasm"),
        format!("osteo-edc.{hash}.css"),
    ] {
        assert!(
            page.contains(&format!("/pkg/{file}")),
            "the page loads {file}"
        );
        let r = c
            .get(format!("{}/pkg/{file}", app.base))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{file}"
        );
        assert_eq!(r.headers()["content-encoding"], "gzip", "{file}");
    }
    assert!(
        !page.contains("/pkg/osteo-edc.css"),
        "no unhashed name in the page"
    );
    let r = c
        .get(format!("{}/pkg/osteo-edc.css", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    // A hashed name that does not exist is a plain 404, never cached.
    let r = c
        .get(format!("{}/pkg/osteo-edc.0123456789abcdef.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .headers()
        .get("cache-control")
        .is_none_or(|v| v != "public, max-age=31536000, immutable"));
}
