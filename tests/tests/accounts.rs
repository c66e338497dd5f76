//! Accounts, sign-in, sessions, roles and the protections around them,
//! through the real router on a fresh database (SQLite or PostgreSQL, see
//! the harness).

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::{audit_rows, location, spawn_app, spawn_app_with, PASSWORD};
use osteo_trial::audit;
use std::time::Duration;

#[tokio::test]
async fn a_new_database_has_the_study_and_one_account_per_role() {
    let app = spawn_app().await;
    let mut roles: Vec<_> = app.demo.iter().map(|(_, r, _)| r.as_str()).collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            "admin",
            "coordinator",
            "monitor",
            "principal_investigator",
            "radiologist",
            "statistician"
        ]
    );
    let passwords: std::collections::HashSet<_> =
        app.demo.iter().map(|(_, _, p)| p.clone()).collect();
    assert_eq!(passwords.len(), 6, "every one-time password is different");
    assert!(passwords.iter().all(|p| p.chars().count() >= 12));
    // The database knows none of them in clear.
    let hashes: Vec<(String,)> = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    for (h,) in hashes {
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!passwords.iter().any(|p| h.contains(p.as_str())));
    }
}

#[tokio::test]
async fn a_restart_on_the_same_database_creates_nothing_new() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let again = spawn_app_with(|s| s.database_url = url).await;
    assert!(
        again.demo.is_empty(),
        "demo accounts are created only on a brand-new database"
    );
}

#[tokio::test]
async fn no_demo_creates_the_study_but_no_accounts() {
    let app = spawn_app_with(|s| {
        s.demo = false;
        s.accounts_per_role = false;
    })
    .await;
    assert!(app.demo.is_empty());
    let users: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(users.0, 0);
    let study: (String,) = sqlx::query_as("SELECT registration FROM study")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(study.0, "ChiCTR2500102778");
}

#[tokio::test]
async fn a_one_time_password_must_be_replaced_before_anything_else() {
    let app = spawn_app().await;
    let b = app.browser();
    assert_eq!(
        location(&b.get("/").await),
        "/login",
        "pages need a sign-in"
    );

    let r = b
        .login("coordinator", &app.one_time_password("coordinator"))
        .await;
    assert_eq!(location(&r), "/account/password");
    assert_eq!(
        location(&b.get("/").await),
        "/account/password",
        "nothing else until the change"
    );
    assert_eq!(
        location(&b.get("/account/tokens").await),
        "/account/password"
    );

    let otp = app.one_time_password("coordinator");
    let change = |new: &'static str, confirm: &'static str, current: String| {
        let b = &b;
        async move {
            let r = b
                .post_form(
                    "/auth/password",
                    &[
                        ("current_password", &current),
                        ("new_password", new),
                        ("confirm_password", confirm),
                    ],
                )
                .await;
            location(&r)
        }
    };
    assert_eq!(
        change("short", "short", otp.clone()).await,
        "/account/password?error=too_short"
    );
    assert_eq!(
        change("long enough password", "long enough passwort", otp.clone()).await,
        "/account/password?error=mismatch"
    );
    assert_eq!(
        change(
            "long enough password",
            "long enough password",
            "wrong current pw".into()
        )
        .await,
        "/account/password?error=wrong_password"
    );
    let (status, page) = b.get_text("/account/password?error=too_short").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("at least 12 characters"),
        "the error is explained"
    );

    assert_eq!(
        change("long enough password", "long enough password", otp.clone()).await,
        "/"
    );
    let (status, home) = b.get_text("/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("Study Coordinator"),
        "the home page greets the user"
    );
    assert!(
        home.contains("Your password has been changed"),
        "a one-off message confirms it"
    );
    let (_, again) = b.get_text("/").await;
    assert!(
        !again.contains("Your password has been changed"),
        "the message shows once"
    );

    // The one-time password no longer works.
    let other = app.browser();
    assert_eq!(
        location(&other.login("coordinator", &otp).await),
        "/login?error=invalid"
    );
    assert_eq!(
        location(&other.login("coordinator", "long enough password").await),
        "/"
    );
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_after_five_tries_and_admins_see_it() {
    let app = spawn_app().await;
    let admin_api = app.api_client("admin").await;
    let b = app.browser();
    for attempt in 1..=4 {
        let r = b.login("radiologist", "not the password").await;
        assert_eq!(location(&r), "/login?error=invalid", "attempt {attempt}");
    }
    let (_, users) = admin_api.get_json("/users").await;
    let rad = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "radiologist")
        .unwrap()
        .clone();
    assert_eq!(rad["failed_logins"], 4);
    assert!(rad["locked_until"].is_null());

    let r = b.login("radiologist", "not the password").await;
    assert!(
        location(&r).starts_with("/login?error=locked&until="),
        "{}",
        location(&r)
    );
    // Even the right password is refused while locked.
    let r = b
        .login("radiologist", &app.one_time_password("radiologist"))
        .await;
    assert!(location(&r).starts_with("/login?error=locked"));
    let (status, page) = b.get_text(&location(&r)).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("locked after five failed sign-ins"),
        "the lock is explained"
    );

    let (_, users) = admin_api.get_json("/users").await;
    let rad = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "radiologist")
        .unwrap()
        .clone();
    let until = rad["locked_until"]
        .as_str()
        .expect("the lock is visible to admins");
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let minutes =
        (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() as f64 / 60.0;
    assert!(
        (14.0..=15.01).contains(&minutes),
        "locked for 15 minutes, got {minutes}"
    );

    let admin = app.signed_in("admin").await;
    let (_, users_page) = admin.get_text("/admin/users").await;
    assert!(
        users_page.contains("locked until"),
        "the users page shows the lock"
    );

    let page = audit::query(
        &app.db,
        &audit::AuditFilter {
            entity: Some("user".into()),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    let actions: Vec<_> = page.rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "login.failed").count(), 5);
    assert!(actions.contains(&"account.locked"));
    assert!(actions.contains(&"login.refused_locked"));

    // An administrator may lift the lock, with a reason.
    let (status, _) = admin_api
        .send_json(
            reqwest::Method::POST,
            &format!("/users/{}/unlock", rad["id"]),
            &serde_json::json!({"reason": "called the user"}),
        )
        .await;
    assert_eq!(status, 200);
    let r = b
        .login("radiologist", &app.one_time_password("radiologist"))
        .await;
    assert_eq!(location(&r), "/account/password");
}

#[tokio::test]
async fn unknown_users_and_deactivated_accounts_cannot_sign_in() {
    let app = spawn_app().await;
    let b = app.browser();
    assert_eq!(
        location(&b.login("nobody", "whatever password").await),
        "/login?error=invalid"
    );
    assert_eq!(location(&b.login("", "").await), "/login?error=bad_request");

    let admin = app.api_client("admin").await;
    let (_, users) = admin.get_json("/users").await;
    let monitor = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "monitor")
        .unwrap()["id"]
        .clone();
    let (status, body) = admin
        .send_json(
            reqwest::Method::PATCH,
            &format!("/users/{monitor}"),
            &serde_json::json!({"active": false, "reason": "left the study"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let r = b.login("monitor", &app.one_time_password("monitor")).await;
    assert_eq!(location(&r), "/login?error=deactivated");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    let b = app.signed_in("investigator").await;
    assert_eq!(b.get("/").await.status(), 200);
    let r = b.post_form("/auth/logout", &[]).await;
    assert_eq!(location(&r), "/login?info=signed_out");
    assert!(location(&b.get("/").await).starts_with("/login"));
    let sessions: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sessions.0, 0, "the server-side session is gone");
    let page = audit::query(
        &app.db,
        &audit::AuditFilter {
            actor: Some("investigator".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(page.rows[0].action, "logout");
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site_strict() {
    let app = spawn_app().await;
    let b = app.browser();
    let r = b.login("admin", &app.one_time_password("admin")).await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("osteo_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "not Secure over plain HTTP: {cookie}"
    );

    let secure = spawn_app_with(|s| s.secure_cookies = true).await;
    assert_secure_session_cookie(&secure).await;
}

/// Signs the administrator in on `app`; its session cookie must be `Secure`.
async fn assert_secure_session_cookie(app: &osteo_tests::TestApp) {
    let r = app
        .browser()
        .login("admin", &app.one_time_password("admin"))
        .await;
    let cookie: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookie
            .iter()
            .any(|c| c.starts_with("osteo_session=") && c.contains("Secure")),
        "{cookie:?}"
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let idle = spawn_app_with(|s| s.idle_timeout = Duration::from_secs(2)).await;
    let b = idle.signed_in("coordinator").await;
    assert_eq!(b.get("/").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        b.get("/").await.status(),
        200,
        "activity renews the idle timer"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        b.get("/").await.status(),
        200,
        "activity renews the idle timer"
    );
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        location(&b.get("/").await).starts_with("/login"),
        "idle too long"
    );

    let absolute = spawn_app_with(|s| {
        s.absolute_timeout = Duration::from_secs(2);
        s.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let b = absolute.signed_in("coordinator").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(b.get("/").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        location(&b.get("/").await),
        "/login?error=expired",
        "however active, the session ends"
    );
}

#[tokio::test]
async fn admins_create_accounts_and_deactivate_them_but_never_delete() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let r = admin
        .post_form(
            "/admin/users",
            &[
                ("username", "li.wei"),
                ("display_name", "李伟"),
                ("role", "radiologist"),
                ("site", "QDUAH"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    let (_, page) = admin.get_text("/admin/users").await;
    assert!(page.contains("li.wei") && page.contains("李伟"));
    let otp = page
        .split("id=\"flash-secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the one-time password is shown once")
        .to_owned();
    assert_eq!(otp.len(), 16);
    let (_, again) = admin.get_text("/admin/users").await;
    assert!(!again.contains(&otp), "shown only once");

    let newcomer = app.browser();
    assert_eq!(
        location(&newcomer.login("li.wei", &otp).await),
        "/account/password"
    );

    // Bad input is refused with a reason and changes nothing.
    let before = audit_rows(&app.db).await;
    for (form, code) in [
        (
            vec![
                ("username", "li.wei"),
                ("display_name", "X"),
                ("role", "monitor"),
                ("site", "QDUAH"),
            ],
            "username_taken",
        ),
        (
            vec![
                ("username", "Bad Name"),
                ("display_name", "X"),
                ("role", "monitor"),
                ("site", "QDUAH"),
            ],
            "invalid_username",
        ),
        (
            vec![
                ("username", "okname"),
                ("display_name", "X"),
                ("role", "superuser"),
                ("site", "QDUAH"),
            ],
            "unknown_role",
        ),
        (
            vec![
                ("username", "okname"),
                ("display_name", "X"),
                ("role", "monitor"),
                ("site", "NOWHERE"),
            ],
            "unknown_site",
        ),
        (vec![("username", "okname")], "bad_request"),
    ] {
        let r = admin.post_form("/admin/users", &form).await;
        assert_eq!(location(&r), format!("/admin/users?error={code}"));
    }
    assert_eq!(
        audit_rows(&app.db).await,
        before,
        "refused input writes nothing"
    );

    // Role change and deactivation need a reason, and are audited with it.
    let id: (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = 'li.wei'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let r = admin
        .post_form(
            &format!("/admin/users/{}", id.0),
            &[
                ("role", "monitor"),
                ("site", "QDUAH"),
                ("display_name", "李伟"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users?error=missing_reason");
    let r = admin
        .post_form(
            &format!("/admin/users/{}", id.0),
            &[
                ("role", "monitor"),
                ("site", "QDUAH"),
                ("display_name", "李伟"),
                ("reason", "now monitors site data"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    let r = admin
        .post_form(
            &format!("/admin/users/{}/active", id.0),
            &[("active", "false"), ("reason", "left the hospital")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    let rows = audit::query(
        &app.db,
        &audit::AuditFilter {
            entity_id: Some(id.0.to_string()),
            entity: Some("user".into()),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap()
    .rows;
    let role = rows
        .iter()
        .find(|r| r.action == "user.role")
        .expect("the role change is audited");
    assert_eq!(
        (role.old_value.as_deref(), role.new_value.as_deref()),
        (Some("radiologist"), Some("monitor"))
    );
    assert_eq!(role.reason.as_deref(), Some("now monitors site data"));
    assert_eq!(role.actor, "admin");
    assert_eq!(role.source, "ui");
    assert!(
        rows.iter()
            .any(|r| r.action == "user.deactivate"
                && r.reason.as_deref() == Some("left the hospital"))
    );

    // The deactivated user's session ended; the name is never reused.
    assert!(location(&newcomer.get("/account/password").await).starts_with("/login"));
    let r = admin
        .post_form(
            "/admin/users",
            &[
                ("username", "li.wei"),
                ("display_name", "Another Li"),
                ("role", "coordinator"),
                ("site", "QDUAH"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users?error=username_taken");
    let deleted = sqlx::query("DELETE FROM users WHERE username = 'li.wei'")
        .execute(app.db.pool())
        .await;
    assert!(
        deleted.is_err(),
        "the database refuses to delete an account"
    );

    // An administrator cannot lock themselves out.
    let me: (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let r = admin
        .post_form(
            &format!("/admin/users/{}/active", me.0),
            &[("active", "false"), ("reason", "oops")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users?error=self_lockout");
}

#[tokio::test]
async fn password_resets_issue_a_new_one_time_password_and_end_sessions() {
    let app = spawn_app().await;
    let user = app.signed_in("statistician").await;
    let admin = app.signed_in("admin").await;
    let id: (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = 'statistician'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let r = admin
        .post_form(
            &format!("/admin/users/{}/reset", id.0),
            &[("reason", "forgot password")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    let (_, page) = admin.get_text("/admin/users").await;
    let otp = page
        .split("id=\"flash-secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(
        location(&user.get("/").await).starts_with("/login"),
        "the user's session ended"
    );
    let fresh = app.browser();
    assert_eq!(
        location(&fresh.login("statistician", PASSWORD).await),
        "/login?error=invalid"
    );
    assert_eq!(
        location(&fresh.login("statistician", &otp).await),
        "/account/password"
    );
}

#[tokio::test]
async fn other_roles_cannot_manage_accounts_anywhere() {
    let app = spawn_app().await;
    let coordinator = app.signed_in("coordinator").await;
    let before = audit_rows(&app.db).await;
    assert_eq!(coordinator.get("/admin/users").await.status(), 403);
    assert_eq!(coordinator.get("/admin/audit").await.status(), 403);
    let r = coordinator
        .post_form(
            "/admin/users",
            &[
                ("username", "sneaky"),
                ("display_name", "S"),
                ("role", "admin"),
                ("site", "QDUAH"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let api = app.api_client("coordinator").await;
    let (status, body) = api
        .send_json(reqwest::Method::POST, "/users", &serde_json::json!({"username": "sneaky", "display_name": "S", "role": "admin", "site": "QDUAH"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(api.get_json("/users").await.0, 403);
    assert_eq!(api.get_json("/audit").await.0, 403);
    // Only the coordinator's own token creation above was written.
    assert_eq!(audit_rows(&app.db).await, before + 1);
    let sneaky: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = 'sneaky'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sneaky.0, 0);
    // The monitor reads the audit trail but changes no account.
    let monitor = app.signed_in("monitor").await;
    assert_eq!(monitor.get("/admin/audit").await.status(), 200);
    assert_eq!(monitor.get("/admin/users").await.status(), 403);
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let before = audit_rows(&app.db).await;
    let r = admin
        .client
        .post(format!("{}/admin/users", app.base))
        .header("Origin", "http://evil.example")
        .form(&[
            ("username", "evil"),
            ("display_name", "E"),
            ("role", "admin"),
            ("site", "QDUAH"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("another site"));
    let r = admin
        .client
        .post(format!("{}/admin/users", app.base))
        .form(&[
            ("username", "evil"),
            ("display_name", "E"),
            ("role", "admin"),
            ("site", "QDUAH"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no Origin and no Referer: refused");
    assert_eq!(audit_rows(&app.db).await, before);
}

#[tokio::test]
async fn the_language_follows_the_browser_and_can_be_switched() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let zh = client
        .get(format!("{}/login", app.base))
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        zh.contains("<html lang=\"zh-CN\""),
        "{}",
        &zh[..200.min(zh.len())]
    );
    assert!(zh.contains("用户名") && zh.contains("登录"));
    let en = client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("Username") && en.contains("<html lang=\"en\""));

    // The switch sets a cookie and returns to the page; a signed-in user's choice is saved.
    let b = app.signed_in("investigator").await;
    let r = b.switch_language("zh-CN", "/account/tokens").await;
    assert_eq!(location(&r), "/account/tokens");
    let (_, page) = b.get_text("/account/tokens").await;
    assert!(page.contains("API 令牌") && page.contains("退出登录"));
    let saved: (Option<String>,) =
        sqlx::query_as("SELECT locale FROM users WHERE username = 'investigator'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(saved.0.as_deref(), Some("zh-CN"));
    // A new browser gets the saved language at sign-in.
    let other = app.browser();
    let r = other.login("investigator", PASSWORD).await;
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("lang=zh-CN")));
    assert!(other.get_text("/").await.1.contains("欢迎"));
    // Nonsense is refused.
    assert_eq!(
        location(&b.post_form("/ui/lang", &[("lang", "klingon")]).await),
        "/?error=bad_request"
    );
}

/// A sign-in post that the throttle refuses: 429, a `Retry-After` of whole
/// seconds, the page in the request's language.
fn assert_throttled(r: &reqwest::Response) -> u64 {
    assert_eq!(r.status(), 429, "throttled");
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    retry
}

#[tokio::test]
async fn sign_in_attempts_are_throttled_per_username_and_per_address_before_any_password_work() {
    let limits = |s: &mut osteo_server::config::Settings| {
        s.login_limits.per_username = std::num::NonZeroU32::new(3).unwrap();
        s.login_limits.per_address = std::num::NonZeroU32::new(5).unwrap();
    };
    let app = spawn_app_with(limits).await;
    let b = app.browser();
    for _ in 0..3 {
        let r = b.login("coordinator", "not the password").await;
        assert_eq!(location(&r), "/login?error=invalid");
    }
    let before = audit_rows(&app.db).await;
    // The fourth for the same username: refused before the password is
    // checked, so not counted as a failed sign-in, not audited.
    let r = b.login("coordinator", "not the password").await;
    assert_throttled(&r);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many sign-in attempts"));
    assert_eq!(
        audit_rows(&app.db).await,
        before,
        "a throttled attempt writes nothing"
    );
    let failed: (i64,) =
        sqlx::query_as("SELECT failed_logins FROM users WHERE username = 'coordinator'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(
        failed.0, 3,
        "only the checked attempts count towards the lockout"
    );
    // The address has used 4 of its 5: one more username, then it waits too.
    let r = b.login("monitor", "not the password").await;
    assert_eq!(location(&r), "/login?error=invalid");
    assert_throttled(&b.login("admin", &app.one_time_password("admin")).await);

    // Behind a reverse proxy, each client's address is the last entry of
    // X-Forwarded-For (the one the proxy appended).
    let proxied = spawn_app_with(|s| {
        limits(s);
        s.login_limits.per_address = std::num::NonZeroU32::new(1).unwrap();
        s.login_limits.trust_forwarded_for = true;
    })
    .await;
    let post = |forwarded: &'static str, username: &'static str| {
        proxied
            .browser()
            .client
            .post(format!("{}/auth/login", proxied.base))
            .header("Origin", &proxied.base)
            .header("X-Forwarded-For", forwarded)
            .form(&[("username", username), ("password", "not the password")])
            .send()
    };
    let r = post("198.51.100.7, 10.0.0.1", "monitor").await.unwrap();
    assert_eq!(location(&r), "/login?error=invalid");
    assert_throttled(
        &post("198.51.100.8, 10.0.0.1", "statistician")
            .await
            .unwrap(),
    );
    let r = post("10.0.0.2", "statistician").await.unwrap();
    assert_eq!(location(&r), "/login?error=invalid", "another client");
}

#[tokio::test]
async fn an_unknown_username_is_never_written_into_the_audit_trail() {
    let app = spawn_app().await;
    let b = app.browser();
    // People type their password into the username field by mistake.
    let typed = "Tr0ub4dor&3-typed-as-username";
    assert_eq!(
        location(&b.login(typed, "whatever password").await),
        "/login?error=invalid"
    );
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, new_value FROM audit_log WHERE action = 'login.failed' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(
            "login.failed".to_owned(),
            Some("unknown username".to_owned())
        )]
    );
    let anywhere: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE actor LIKE $1 OR entity_id LIKE $1 OR field LIKE $1 \
         OR old_value LIKE $1 OR new_value LIKE $1 OR reason LIKE $1",
    )
    .bind("%Tr0ub4dor%")
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        anywhere.0, 0,
        "the text typed is nowhere in the audit trail"
    );
}

#[tokio::test]
async fn a_password_reset_revokes_the_accounts_api_tokens() {
    let app = spawn_app().await;
    let api = app.api_client("statistician").await;
    let (status, _) = api.get_json("/me").await;
    assert_eq!(status, 200, "the token works");
    let admin = app.api_client("admin").await;
    let id: (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = 'statistician'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let (status, body) = admin
        .send_json(
            reqwest::Method::POST,
            &format!("/users/{}/reset-password", id.0),
            &serde_json::json!({"reason": "lost laptop"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = api.get_json("/me").await;
    assert_eq!(status, 401, "the token ended with the old password");
    let active: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(id.0)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(active.0, 0);
    let revoked: (String, Option<String>) = sqlx::query_as(
        "SELECT action, old_value FROM audit_log WHERE action = 'api_token.revoke_all' AND entity_id = $1",
    )
    .bind(id.0.to_string())
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(revoked.1.as_deref(), Some("1 active"));
}

#[tokio::test]
async fn tokens_are_refused_while_the_account_must_change_its_password() {
    let app = spawn_app().await;
    let monitor = osteo_trial::accounts::find_by_username(&app.db, "monitor")
        .await
        .unwrap()
        .unwrap();
    assert!(monitor.must_change_password);
    let principal = monitor.principal(osteo_trial::domain::AuditSource::Ui);
    let (_, secret) = osteo_trial::accounts::create_token(&app.db, &principal, "early")
        .await
        .unwrap();
    let get = || {
        reqwest::Client::new()
            .get(format!("{}/api/v1/me", app.base))
            .bearer_auth(secret.expose())
            .send()
    };
    assert_eq!(
        get().await.unwrap().status(),
        401,
        "one-time password still set"
    );
    osteo_trial::accounts::change_password(
        &app.db,
        &principal,
        &app.one_time_password("monitor"),
        osteo_tests::PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(
        get().await.unwrap().status(),
        200,
        "its own password chosen"
    );
}

#[tokio::test]
async fn a_wrong_current_password_at_password_change_counts_towards_the_lockout() {
    let app = spawn_app().await;
    let b = app.signed_in("coordinator").await;
    let change = |current: &'static str| {
        let b = &b;
        async move {
            let form = [
                ("current_password", current),
                ("new_password", "a brand new password"),
                ("confirm_password", "a brand new password"),
            ];
            b.post_form("/auth/password", &form).await
        }
    };
    for _ in 0..4 {
        assert_eq!(
            location(&change("a wrong guess").await),
            "/account/password?error=wrong_password"
        );
    }
    assert_eq!(
        location(&change("a wrong guess").await),
        "/account/password?error=locked",
        "the fifth wrong password locks the account, as at sign-in"
    );
    let refused: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'password.change_refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refused.0, 5);
    let r = app
        .browser()
        .login("coordinator", osteo_tests::PASSWORD)
        .await;
    assert!(
        location(&r).starts_with("/login?error=locked"),
        "even the right password waits: {}",
        location(&r)
    );
    // Locked, the right current password cannot change it either.
    assert_eq!(
        location(&change(osteo_tests::PASSWORD).await),
        "/account/password?error=locked"
    );
}

#[tokio::test]
async fn cookies_are_secure_whenever_the_public_origin_is_https() {
    let app = spawn_app_with(|s| {
        s.secure_cookies = false;
        s.public_origin = Some("https://edc.example.org".into());
    })
    .await;
    assert_secure_session_cookie(&app).await;
}

#[tokio::test]
async fn a_request_in_flight_at_sign_out_does_not_bring_the_session_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    osteo_tests::choose_password(&app.db, "monitor").await;
    let b = app.browser();
    let r = b.login("monitor", osteo_tests::PASSWORD).await;
    assert_eq!(location(&r), "/");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("osteo_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    // A request of the session starts: its head arrives (the server loads
    // the session), its body is still on the way.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let body = "lang=en";
    let head = format!(
        "POST /ui/lang HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {base}\r\n\
         Cookie: osteo_session={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n",
        port = app.port,
        base = app.base,
        len = body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the user signs out.
    let r = b.post_form("/auth/logout", &[]).await;
    assert_eq!(location(&r), "/login?info=signed_out");
    // The request ends, after the sign-out.
    slow.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let sessions: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        sessions.0, 0,
        "the request in flight did not write the session back"
    );
    let again = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.base))
        .header("Cookie", format!("osteo_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(
        location(&again).starts_with("/login"),
        "the old cookie no longer signs in: {}",
        location(&again)
    );
}
