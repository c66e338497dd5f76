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
