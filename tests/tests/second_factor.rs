//! The second factor (issue 15, point 3) through the server, with codes
//! the test computes itself: RFC 6238 over HMAC-SHA1, written here and
//! checked first against the RFC's own test vectors, independent of the
//! server's `totp-rs`.

use osteo_tests::totp::{base32, now, totp};
use osteo_tests::{location, spawn_app, PASSWORD};

/// The text of the element with `id`, from a page.
fn text_of(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} on {html}"));
    let from = start + html[start..].find('>').expect("the tag's end") + 1;
    let to = from + html[from..].find('<').expect("the text's end");
    html[from..to].trim().to_owned()
}

#[tokio::test]
async fn a_coordinator_enrols_a_second_factor_and_signs_in_with_it() {
    let app = spawn_app().await;
    let b = app.signed_in("coordinator").await;
    let r = b.post_form("/account/second-factor/start", &[]).await;
    assert_eq!(location(&r), "/account/second-factor");
    let (status, page) = b.get_text("/account/second-factor").await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg"), "a QR code: {page}");
    let key = base32(&text_of(&page, "second-factor-secret"));
    assert_eq!(key.len(), 20, "160 bits, as RFC 4226 recommends");

    let r = b
        .post_form("/account/second-factor/confirm", &[("code", "000000")])
        .await;
    assert!(location(&r).contains("error="), "a wrong code is refused");
    let code = totp(&key, now(), 6);
    let r = b
        .post_form("/account/second-factor/confirm", &[("code", &code)])
        .await;
    assert_eq!(location(&r), "/account/second-factor");
    let (_, page) = b.get_text("/account/second-factor").await;
    // (Once in the page and once in the data it hydrates from.)
    let mut recovery: Vec<String> = page
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.len() == 11 && w.as_bytes()[5] == b'-')
        .map(str::to_owned)
        .collect();
    recovery.sort();
    recovery.dedup();
    assert_eq!(recovery.len(), 10, "ten recovery codes, shown once: {page}");

    // Sign-in now asks for the code after the password.
    let other = app.browser();
    let r = other.login("coordinator", PASSWORD).await;
    assert_eq!(location(&r), "/login/code");
    let (status, _) = other.get_text("/cases").await;
    assert_ne!(status, 200, "nobody is signed in before the code");
    // The code that confirmed the enrolment is not taken again …
    let r = other.post_form("/auth/code", &[("code", &code)]).await;
    assert!(location(&r).contains("error=invalid"), "{}", location(&r));
    // … the next step's is (one step of drift is allowed).
    let next = totp(&key, now() + 30, 6);
    let r = other.post_form("/auth/code", &[("code", &next)]).await;
    assert_eq!(location(&r), "/");
    let (status, _) = other.get_text("/cases").await;
    assert_eq!(status, 200);

    // A recovery code works once.
    for (attempt, expected) in [(0, "/"), (1, "error=invalid")] {
        let c = app.browser();
        let r = c.login("coordinator", PASSWORD).await;
        assert_eq!(location(&r), "/login/code", "attempt {attempt}");
        let r = c.post_form("/auth/code", &[("code", &recovery[0])]).await;
        assert!(
            location(&r).contains(expected),
            "attempt {attempt}: {}",
            location(&r)
        );
    }
    // The right password does not start the count of failures again while
    // the code is wrong: wrong codes lock the account (five in a row, one
    // already counted above), each after the right password, and a locked
    // account is asked no code.
    let mut wrong = 0;
    loop {
        let user = osteo_trial::accounts::find_by_username(&app.db, "coordinator")
            .await
            .unwrap()
            .unwrap();
        if user.is_locked() {
            break;
        }
        assert!(wrong < 5, "five wrong codes lock the account");
        let c = app.browser();
        let r = c.login("coordinator", PASSWORD).await;
        assert_eq!(location(&r), "/login/code", "wrong code {wrong}");
        c.post_form("/auth/code", &[("code", "AAAAA-AAAAA")]).await;
        wrong += 1;
    }
    assert_eq!(wrong, 4, "the failed recovery code above counted as one");
    let r = app.browser().login("coordinator", PASSWORD).await;
    assert!(location(&r).contains("error=locked"), "{}", location(&r));
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'account.%' OR action LIKE 'login.second%' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .expect("the audit trail");
    for expected in [
        "account.second_factor_enrolment",
        "account.second_factor_enabled",
        "login.second_factor_failed",
        "account.recovery_code_used",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}

/// The trial's principal investigator must enrol; then every signature
/// asks for the code with the password (21 CFR 11.200(a)), through the API
/// and through the pages, and a lost phone is reset by an administrator.
#[tokio::test]
async fn signatures_ask_for_the_code_and_an_administrator_resets_a_lost_phone() {
    use reqwest::Method;
    use serde_json::json;
    let app = spawn_app().await;

    // Before enrolment, the PI's token is refused and no service signs.
    let pi_user = osteo_tests::choose_password(&app.db, "investigator").await;
    assert!(pi_user.second_factor_due, "the trial's PI must enrol");
    let raw = osteo_tests::Api::with_new_token(&app.db, &pi_user, &app.base).await;
    let (status, v) = raw.get_json("/me").await;
    assert_eq!(
        status, 401,
        "a PI's token works only once it has enrolled: {v}"
    );
    let e = osteo_trial::study::sign_sap(
        &app.db,
        &pi_user.principal(osteo_trial::domain::AuditSource::Api),
        &osteo_trial::accounts::SigningSecret::new(PASSWORD, None),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, osteo_trial::study::StudyError::SecondFactorNotEnrolled),
        "{e}"
    );

    // The statistician drafts and signs a SAP; the PI, enrolled, signs.
    let stats = app.api_client("statistician").await;
    osteo_tests::workflow::draft_sap(&stats).await;
    let pi = app.api_client("investigator").await;
    assert!(app.apps.has("investigator"), "the harness enrolled the PI");
    let (status, v) = pi.get_json("/me").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["second_factor"], true, "{v}");
    for (body, code, what) in [
        (
            json!({"password": PASSWORD, "second_factor": null}),
            "second_factor_needed",
            "no code",
        ),
        (
            json!({"password": PASSWORD, "second_factor": "000000"}),
            "bad_password",
            "a wrong code",
        ),
    ] {
        let (status, v) = pi.send_json(Method::POST, "/sap/sign", &body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{what}: {v}"
        );
    }
    let (status, v) = pi
        .send_json(Method::POST, "/sap/sign", &json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, 200, "the password and the app's code sign: {v}");
    let signed_by: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'signature.%' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .expect("the audit trail");
    assert!(
        signed_by
            .iter()
            .any(|a| a == "signature.second_factor_failed"),
        "the wrong code is in the audit trail: {signed_by:?}"
    );

    // In the pages: the PI signs in with the code, the signing forms ask
    // for it, and a form without it changes nothing.
    let b = app.signed_in("investigator").await;
    let (_, page) = b.get_text("/analysis").await;
    assert!(
        page.contains("name=\"second_factor\""),
        "the signature form asks for the code"
    );
    let r = b
        .post_form(
            "/study/lock",
            &[("password", PASSWORD), ("second_factor", "")],
        )
        .await;
    assert!(
        location(&r).contains("error=second_factor_needed"),
        "{}",
        location(&r)
    );
    let (_, status) = pi.get_json("/study/lock").await;
    assert_eq!(status["locked"], false, "nothing was locked: {status}");

    // A lost phone: the administrator (enrolled too) resets it, audited.
    let admin = app.api_client("admin").await;
    let (status, v) = admin
        .send_json(
            Method::POST,
            &format!("/users/{}/reset-second-factor", pi_user.id),
            &json!({"reason": "phone lost"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["second_factor"], false, "{v}");
    app.apps.forget("investigator");
    let (status, _) = pi.get_json("/me").await;
    assert_eq!(status, 401, "the PI enrols again before its tokens work");
    let r = app.browser().login("investigator", PASSWORD).await;
    assert_ne!(
        location(&r),
        "/login/code",
        "no code is asked of a reset account"
    );

    // And from the command line.
    let out = std::process::Command::new(osteo_tests::binary())
        .args([
            "user",
            "reset-second-factor",
            "--username",
            "admin",
            "--reason",
            "phone lost",
        ])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .env("OSTEO_DATA_DIR", app.dir.path())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_user = osteo_trial::accounts::find_by_username(&app.db, "admin")
        .await
        .unwrap()
        .unwrap();
    assert!(!admin_user.second_factor && admin_user.second_factor_due);
    let resets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'account.second_factor_reset'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(resets, 2, "both resets are audited");
}
