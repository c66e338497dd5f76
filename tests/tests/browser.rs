//! Journeys in a real browser (headless Chromium through chromedriver):
//! wrong password, lockout, forced password change, language switch and
//! sign-out — once with JavaScript, proving the page hydrated, and once
//! without, proving the pages work by server rendering and plain form posts.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use fantoccini::{Client, ClientBuilder, Locator};
use osteo_tests::{spawn_app, TestApp};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test never closes its browser: end every Chromium process
        // that uses this test's profile, so none outlives the test.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self._profile.path().as_os_str())
            .status();
    }
}

fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {path} ({e}): install Debian's chromium-driver (make test does)")
        });
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver, javascript: bool) -> Client {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut prefs = json!({"intl.accept_languages": "en-US,en"});
    if !javascript {
        prefs["profile.managed_default_content_settings.javascript"] = json!(2);
    }
    let options = json!({
        "binary": binary,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--lang=en-US", format!("--user-data-dir={}", driver._profile.path().display()),
        ],
        "prefs": prefs,
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} not found: {e}"))
        .text()
        .await
        .unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let el = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks something that loads a new page, and waits until it has.
async fn submit(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    click(c, css).await;
    let started = Instant::now();
    // The old document's root goes stale once the next page replaced it.
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no new page after clicking {css}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("body"))
        .await
        .expect("the new page");
}

async fn path(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

async fn sign_in(c: &Client, app: &TestApp, username: &str, password: &str) {
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(c, "#username", username).await;
    fill(c, "#password", password).await;
    submit(c, "#login-submit").await;
}

/// Keeps a picture of the page under target/screenshots for a person to look at.
async fn save_screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    if std::fs::create_dir_all(&dir).is_ok() {
        if let Ok(png) = c.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
}

async fn journey(javascript: bool) {
    let app = spawn_app().await;
    let driver = chromedriver();
    let c = browser(&driver, javascript).await;

    c.goto(&format!("{}/", app.base)).await.unwrap();
    assert_eq!(path(&c).await, "/login", "pages need a sign-in");
    if javascript {
        // The Effect that sets this runs only in a hydrated page.
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("body[data-hydrated='true']"))
            .await
            .expect("the page hydrated (is the wasm bundle built and loadable?)");
    }

    // Wrong password.
    sign_in(&c, &app, "admin", "not the password").await;
    assert_eq!(
        text(&c, "#login-error").await,
        "Wrong username or password."
    );

    // Five failures lock the account.
    for _ in 0..5 {
        sign_in(&c, &app, "radiologist", "still not it").await;
    }
    let locked = text(&c, "#login-error").await;
    assert!(
        locked.contains("locked after five failed sign-ins"),
        "{locked}"
    );
    sign_in(
        &c,
        &app,
        "radiologist",
        &app.one_time_password("radiologist"),
    )
    .await;
    assert!(
        text(&c, "#login-error").await.contains("locked"),
        "even the right password waits"
    );

    // A one-time password forces a change.
    sign_in(&c, &app, "admin", &app.one_time_password("admin")).await;
    assert_eq!(path(&c).await, "/account/password");
    if javascript {
        // Each page load hydrates anew; type once this one has.
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("body[data-hydrated='true']"))
            .await
            .expect("the password page hydrated");
    }
    fill(&c, "#new-password", "abc").await;
    let counter = text(&c, "#pw-length").await;
    if javascript {
        assert_eq!(
            counter, "3 of at least 12 characters",
            "the hydrated page counts as the user types"
        );
    } else {
        assert_eq!(
            counter, "0 of at least 12 characters",
            "without JavaScript the server's text stays"
        );
        let hydrated = c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .attr("data-hydrated")
            .await
            .unwrap();
        assert_eq!(hydrated, None, "nothing ran in the browser");
    }
    fill(&c, "#current-password", &app.one_time_password("admin")).await;
    fill(&c, "#new-password", "short").await;
    fill(&c, "#confirm-password", "short").await;
    submit(&c, "#password-submit").await;
    assert!(text(&c, "#password-error")
        .await
        .contains("at least 12 characters"));
    fill(&c, "#current-password", &app.one_time_password("admin")).await;
    fill(&c, "#new-password", osteo_tests::PASSWORD).await;
    fill(&c, "#confirm-password", osteo_tests::PASSWORD).await;
    submit(&c, "#password-submit").await;
    assert_eq!(path(&c).await, "/");
    assert!(text(&c, "#welcome").await.contains("Study Administrator"));
    assert!(text(&c, "#flash")
        .await
        .contains("Your password has been changed"));

    // The users page shows the lock to the administrator.
    c.goto(&format!("{}/admin/users", app.base)).await.unwrap();
    assert!(text(&c, "#user-radiologist .status")
        .await
        .contains("locked until"));
    save_screenshot(&c, if javascript { "users-js" } else { "users-nojs" }).await;

    // Switch the language.
    c.find(Locator::Css("#lang-select"))
        .await
        .unwrap()
        .select_by_value("zh-CN")
        .await
        .unwrap();
    submit(&c, "#lang-submit").await;
    assert_eq!(path(&c).await, "/admin/users", "back on the same page");
    assert_eq!(text(&c, "h1").await, "用户管理");
    c.goto(&format!("{}/", app.base)).await.unwrap();
    assert!(text(&c, "#welcome").await.starts_with("欢迎"));

    // Sign out.
    submit(&c, "#logout").await;
    assert_eq!(path(&c).await, "/login?info=signed_out");
    assert_eq!(text(&c, "#login-info").await, "您已退出登录。");
    c.goto(&format!("{}/admin/users", app.base)).await.unwrap();
    assert!(
        path(&c).await.starts_with("/login"),
        "signed out means signed out"
    );

    c.close().await.unwrap();
}

#[tokio::test]
async fn journey_with_javascript_hydrates() {
    journey(true).await;
}

#[tokio::test]
async fn journey_without_javascript_works_by_forms() {
    journey(false).await;
}

async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

async fn exists(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

/// Screens one patient through the screening page's form.
async fn screen(c: &Client, outcome: &str, exclusion: Option<&str>) {
    select(c, "#screening-form select[name=outcome]", outcome).await;
    if let Some(code) = exclusion {
        click(c, &format!("#screening-form input[name={code}]")).await;
    }
    submit(c, "#screening-submit").await;
    assert!(text(c, "#flash").await.contains('#'), "the entry was saved");
}

/// The workflow in the browser, role by role (issue: trial workflow, item 11).
#[tokio::test]
async fn the_workflow_in_the_browser_coordinator_radiologist_statistician() {
    let app = spawn_app().await;
    // Replace the one-time passwords first (that journey is tested above).
    for who in ["coordinator", "radiologist", "statistician"] {
        app.signed_in(who).await;
    }
    let pi = app.api_client("investigator").await;
    let (status, _) = pi
        .send_json(
            reqwest::Method::PATCH,
            "/study/settings",
            &json!({"rule_version": "acr-2023-stm4"}),
        )
        .await;
    assert_eq!(status, 200);
    let driver = chromedriver();
    let c = browser(&driver, true).await;

    // The coordinator screens three patients: one excluded (E3), two enrolled.
    sign_in(&c, &app, "coordinator", osteo_tests::PASSWORD).await;
    c.goto(&format!("{}/screening", app.base)).await.unwrap();
    screen(&c, "excluded", Some("e3")).await;
    screen(&c, "enrolled", None).await;
    screen(&c, "enrolled", None).await;
    c.goto(&format!("{}/cases", app.base)).await.unwrap();
    assert_eq!(
        c.find_all(Locator::Css("#all-cases tbody tr"))
            .await
            .unwrap()
            .len(),
        2,
        "two enrolled patients, two cases"
    );
    let id: i64 = osteo_trial::case::find_case(&app.db, "P-0001")
        .await
        .unwrap()
        .unwrap();
    // Two radiographs (files this test writes), uploaded through the page.
    c.goto(&format!("{}/cases/{id}", app.base)).await.unwrap();
    let files: Vec<String> = [("AP", 1), ("LL", 2)]
        .into_iter()
        .map(|(view, seed)| {
            let path = app.dir.path().join(format!("{view}.dcm"));
            std::fs::write(
                &path,
                osteo_tests::dicom::Radiograph::cr("Wang", view, seed).bytes(),
            )
            .unwrap();
            path.display().to_string()
        })
        .collect();
    c.find(Locator::Css("#f-files"))
        .await
        .unwrap()
        .send_keys(&files.join("\n"))
        .await
        .unwrap();
    submit(&c, "#upload").await;
    let flash = text(&c, "#flash").await;
    assert!(
        flash.contains("✓ AP.dcm (frontal)") && flash.contains("✓ LL.dcm (lateral)"),
        "{flash}"
    );
    assert_eq!(
        c.find_all(Locator::Css("#image-list li"))
            .await
            .unwrap()
            .len(),
        2
    );
    submit(&c, "#images-complete").await;
    assert_eq!(text(&c, "#case-state").await, "Images complete");

    // The CRF: a mistake comes back beside its field with nothing lost.
    fill(&c, "#f-age_years", "150").await;
    select(&c, "#f-sex", "female").await;
    select(&c, "#f-bone", "femur").await;
    submit(&c, "#crf-draft").await;
    assert!(text(&c, "#crf-error").await.contains("not saved"));
    assert_eq!(
        text(&c, "label.invalid .field-error").await,
        "Out of range."
    );
    let kept = c
        .find(Locator::Css("#f-bone"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("femur"), "what was typed is kept");
    fill(&c, "#f-age_years", "34").await;
    for (field, value) in [
        ("sex", "female"),
        ("pathological_fracture", "false"),
        ("known_primary_malignancy", "false"),
        ("lesion_count", "solitary"),
        ("physis", "closed"),
        ("bone", "femur"),
        ("side", "left"),
        ("longitudinal", "metaphysis"),
        ("transverse", "eccentric"),
        ("density", "lytic"),
        ("expansion", "true"),
        ("matrix", "none"),
        ("cortex", "thinned"),
        ("soft_tissue_mass", "false"),
    ] {
        select(&c, &format!("#f-{field}"), value).await;
    }
    c.execute(
        "document.getElementById('f-radiograph_date').value = '2025-10-02';",
        vec![],
    )
    .await
    .unwrap();
    fill(&c, "#f-size_mm", "48").await;
    submit(&c, "#crf-complete").await;
    assert_eq!(text(&c, "#case-state").await, "CRF complete");
    select(&c, "#f-reader", "radiologist").await;
    submit(&c, "#assign-reader").await;
    assert!(text(&c, "#readers").await.contains("radiologist"));
    save_screenshot(&c, "case-coordinator").await;
    submit(&c, "#logout").await;

    // The radiologist reads blinded and signs.
    sign_in(&c, &app, "radiologist", osteo_tests::PASSWORD).await;
    c.goto(&format!("{}/cases", app.base)).await.unwrap();
    assert!(text(&c, "#worklist").await.contains("P-0001"));
    c.goto(&format!("{}/cases/{id}", app.base)).await.unwrap();
    assert!(
        !exists(&c, "#pathology").await,
        "no pathology section for a reader"
    );
    assert!(
        !exists(&c, "#prediction").await,
        "no AI section for a reader"
    );
    let thumbs = c.find_all(Locator::Css("img.thumb")).await.unwrap().len();
    assert_eq!(thumbs, 2, "the reader sees both views");
    let fetched = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('img.thumb').src).then(r => done(r.status + ' ' + r.headers.get('content-type')));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fetched,
        json!("200 image/png"),
        "the rendered radiograph loads for the assigned reader"
    );
    select(&c, "#f-margin", "II").await;
    select(&c, "#f-periosteal", "aggressive").await;
    fill(&c, "#f-likelihood", "80").await;
    select(&c, "#f-call", "malignant").await;
    submit(&c, "#read-save").await;
    assert_eq!(text(&c, "#bone-rads-radiologist").await, "Bone-RADS 4");
    fill(&c, "#read-sign input[name=password]", osteo_tests::PASSWORD).await;
    submit(&c, "#read-sign button").await;
    assert_eq!(text(&c, "#flash").await, "Signed.");
    assert!(!exists(&c, "#read-form").await, "a signed read is locked");
    save_screenshot(&c, "case-radiologist").await;
    submit(&c, "#logout").await;

    // The coordinator cannot enter pathology before the AI lock.
    sign_in(&c, &app, "coordinator", osteo_tests::PASSWORD).await;
    c.goto(&format!("{}/cases/{id}", app.base)).await.unwrap();
    assert_eq!(text(&c, "#case-state").await, "Reads locked");
    assert!(text(&c, "#awaiting-ai").await.contains("Awaiting AI"));
    assert!(text(&c, "#pathology-gate")
        .await
        .contains("once the AI prediction"));
    assert!(
        !exists(&c, "#pathology-form").await,
        "no pathology form before the AI lock"
    );
    submit(&c, "#logout").await;

    // The statistician sees operational figures, never accuracy.
    sign_in(&c, &app, "statistician", osteo_tests::PASSWORD).await;
    c.goto(&format!("{}/dashboard", app.base)).await.unwrap();
    assert_eq!(text(&c, "#enrolled-prospective").await, "2");
    assert_eq!(text(&c, "#flow-e3").await, "1");
    let page = text(&c, "main").await.to_lowercase();
    for leak in ["auc", "sensitivity", "specificity", "malignant"] {
        assert!(!page.contains(leak), "the dashboard shows no {leak}");
    }
    save_screenshot(&c, "dashboard-statistician").await;
    c.goto(&format!("{}/cases/{id}", app.base)).await.unwrap();
    assert!(
        text(&c, "#case-refused").await.len() > 3,
        "a case is blinded for the statistician"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn after_the_lock_the_statistician_reads_the_analysis_and_downloads_the_report() {
    let app = spawn_app().await;
    let (_team, stats, _lock) = osteo_tests::workflow::locked_study(&app).await;
    let (_, analysis) = stats.get_json("/analysis").await;
    // Replace the statistician's one-time password, then use Chromium.
    let page = app.signed_in("statistician").await;
    let driver = chromedriver();
    let c = browser(&driver, true).await;
    sign_in(&c, &app, "statistician", osteo_tests::PASSWORD).await;
    c.goto(&format!("{}/analysis", app.base)).await.unwrap();
    let auc = format!(
        "{:.3}",
        analysis["analysis"]["ai_auc"]["auc"].as_f64().unwrap()
    );
    assert!(
        text(&c, "#ai-auc").await.starts_with(&auc),
        "the locked AUC is shown"
    );
    assert!(
        text(&c, "#subgroups").await.contains("Female"),
        "with the subgroups"
    );
    assert!(exists(&c, "#mrmc").await);
    for name in ["report-en.pdf", "report-zh-CN.pdf", "odm.xml", "crf.csv"] {
        assert!(
            exists(&c, &format!("#exports a[href='/exports/{name}']")).await,
            "a link to {name}"
        );
    }
    save_screenshot(&c, "analysis-locked").await;
    c.close().await.unwrap();
    // The page's link, with the signed-in session: the same report as the API's.
    let r = page.get("/exports/report-en.pdf").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let from_page = r.bytes().await.unwrap().to_vec();
    let (_, _, from_api) = stats.get_file("/exports/report-en.pdf").await;
    assert_eq!(from_page, from_api, "one locked report, byte for byte");
}
