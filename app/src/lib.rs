//! The Osteo EDC user interface (Leptos): rendered on the server, hydrated in
//! the browser. Pages work without JavaScript too: every change is a plain
//! form post to the server, which redirects back (post/redirect/get).
//!
//! Features: `ssr` for the server build, `hydrate` for the browser build —
//! never both.

#![recursion_limit = "256"]

rust_i18n::i18n!("locales", fallback = "en");

pub mod api;
#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod charts;
pub mod flash;
pub mod i18n;
mod pages;

use crate::api::{get_me, study_kind, take_flash, Me};
use crate::flash::Flash;
use crate::i18n::{t, Lang};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};
use osteo_trial::domain::{Locale, Permission, StudyKind};

/// The name under which the browser bundle and the style sheet are served:
/// `/pkg/osteo-edc.js`, `/pkg/osteo-edc_bg.wasm`, `/pkg/osteo-edc.css`; the
/// site build also writes them under their content hash,
/// `osteo-edc.<hash>.js` and so on, and names the hash in `pkg/hash.txt`
/// ([`asset_name`]).
pub const OUTPUT_NAME: &str = "osteo-edc";

/// The name the pages load the bundle by: `osteo-edc.<hash>` when the site
/// build wrote `pkg/hash.txt` (16 hex digits of the SHA-256 of the script,
/// the WebAssembly and the stylesheet), else `osteo-edc`.
#[cfg(feature = "ssr")]
pub fn asset_name(site_root: &std::path::Path) -> String {
    std::fs::read_to_string(site_root.join("pkg").join("hash.txt"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(|| OUTPUT_NAME.to_owned(), |h| format!("{OUTPUT_NAME}.{h}"))
}

/// The signed-in user, loaded once per page and shared by the header and pages.
pub type MeResource = Resource<Result<Option<Me>, api::AppError>>;

/// The HTML document around the app (server only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let locale = initial_locale();
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang=locale.tag()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // The stylesheet carries the bundle's content hash, like the
                // scripts (`output_name`), so browsers may keep it for a year.
                <link rel="stylesheet" id="leptos" href=format!("/pkg/{}.css", options.output_name)/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The Content-Security-Policy of a page. Scripts run only from this site
/// and inline only with this response's nonce (leptos puts it on the
/// hydration script and on the scripts that stream resources), plus the
/// WebAssembly of the app; nothing may frame the page, forms post only
/// here. Styles allow inline `style` attributes: the radiograph viewer sets
/// its zoom, pan and window through them.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Sends [`page_policy`] with this response's nonce (server only).
#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&page_policy(&nonce)) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The language of this page: on the server from the request, in the browser
/// from the `<html lang>` the server rendered (so hydration matches).
pub fn initial_locale() -> Locale {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .map(|parts| i18n::request_locale(&parts.headers))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        #[cfg(feature = "hydrate")]
        {
            web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.document_element())
                .and_then(|e| e.get_attribute("lang"))
                .and_then(|l| l.parse().ok())
                .unwrap_or_default()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Locale::default()
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(Lang(initial_locale()));
    let me: MeResource = Resource::new(|| (), |_| get_me());
    provide_context(me);
    let flash = Resource::new(|| (), |_| take_flash());

    // Runs only in the browser, once the page has hydrated: the marker lets
    // the browser tests tell a live page from a dead one.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title text=t("app.title")/>
        <Router>
            <Header/>
            <DemoBanner/>
            <main class="container">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        flash.await.ok().flatten().map(|f| view! { <FlashBox flash=f/> })
                    })}
                </Suspense>
                <Routes fallback=|| view! { <pages::NotFound/> }>
                    <Route path=path!("/") view=pages::HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=pages::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/login/code") view=pages::LoginCodePage ssr=SsrMode::Async/>
                    <Route path=path!("/account/password") view=pages::PasswordPage ssr=SsrMode::Async/>
                    <Route path=path!("/account/tokens") view=pages::TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/account/second-factor") view=pages::SecondFactorPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view=pages::UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view=pages::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/screening") view=pages::ScreeningPage ssr=SsrMode::Async/>
                    <Route path=path!("/cases") view=pages::CasesPage ssr=SsrMode::Async/>
                    <Route path=path!("/cases/:id") view=pages::CasePage ssr=SsrMode::Async/>
                    <Route path=path!("/dicom/quarantine") view=pages::QuarantinePage ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard") view=pages::DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/study") view=pages::StudyPage ssr=SsrMode::Async/>
                    <Route path=path!("/analysis") view=pages::AnalysisPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// On every page of the demonstration study: this is not the trial.
#[component]
fn DemoBanner() -> impl IntoView {
    let kind = Resource::new(|| (), |_| study_kind());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                (kind.await.ok() == Some(StudyKind::Demo)).then(|| view! {
                    <div class="demo-banner" id="demo-banner" role="note">{t("demo.banner")}</div>
                })
            })}
        </Suspense>
    }
}

/// A one-off message (with a secret shown once, if any).
#[component]
fn FlashBox(flash: Flash) -> impl IntoView {
    let kind = if flash.message.starts_with("error.") {
        "flash error"
    } else {
        "flash ok"
    };
    view! {
        <div class=kind id="flash" role="status">
            <p>{t(&flash.message)} {flash.detail.map(|d| view! { " " <strong>{d}</strong> })}</p>
            {flash.secret.map(|s| view! {
                <p class="secret">
                    <code id="flash-secret">{s}</code>
                    <br/>
                    <small>{t("flash.secret_once")}</small>
                </p>
            })}
        </div>
    }
}

#[component]
fn Header() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let locale = i18n::lang();
    view! {
        <header class="topbar">
            <a class="brand" href="/">{t("app.name")}</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    me.await.ok().flatten().filter(|m| !m.must_change_password).map(|m| {
                        let admin = m.role.can(Permission::ManageUsers);
                        let audit = m.role.can(Permission::ViewAudit);
                        let screening = m.role.can(Permission::ViewScreening);
                        let cases = m.role.can(Permission::ViewCases) || m.role.can(Permission::ReadCases);
                        let dashboard = m.role.can(Permission::ViewDashboard);
                        let quarantine = m.role.can(Permission::EnterCaseData);
                        let study = m.role.can(Permission::ManageStudy) || m.role.can(Permission::SignUnlock);
                        view! {
                            <nav>
                                <A href="/">{t("nav.home")}</A>
                                {screening.then(|| view! { <A href="/screening">{t("nav.screening")}</A> })}
                                {cases.then(|| view! { <A href="/cases">{t("nav.cases")}</A> })}
                                {quarantine.then(|| view! { <A href="/dicom/quarantine">{t("nav.quarantine")}</A> })}
                                {dashboard.then(|| view! { <A href="/dashboard">{t("nav.dashboard")}</A> })}
                                {dashboard.then(|| view! { <A href="/analysis">{t("nav.analysis")}</A> })}
                                {study.then(|| view! { <A href="/study">{t("nav.study")}</A> })}
                                {admin.then(|| view! { <A href="/admin/users">{t("nav.users")}</A> })}
                                {audit.then(|| view! { <A href="/admin/audit">{t("nav.audit")}</A> })}
                                <A href="/account/tokens">{t("nav.tokens")}</A>
                                <A href="/account/password">{t("nav.password")}</A>
                            </nav>
                        }
                    })
                })}
            </Suspense>
            <div class="tools">
                <form method="post" action="/ui/lang" class="inline" id="lang-form">
                    <label class="sr-only" for="lang-select">{t("nav.language")}</label>
                    <select name="lang" id="lang-select">
                        {Locale::ALL
                            .into_iter()
                            .map(|l| view! { <option value=l.tag() selected={l == locale}>{l.native_name()}</option> })
                            .collect_view()}
                    </select>
                    <button type="submit" id="lang-submit">{t("nav.switch_language")}</button>
                </form>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        me.await.ok().flatten().map(|m| view! {
                            <span class="who" id="whoami">{m.display_name} " (" {t(&format!("role.{}", m.role.as_str()))} ")"</span>
                            <form method="post" action="/auth/logout" class="inline">
                                <button type="submit" id="logout">{t("nav.logout")}</button>
                            </form>
                        })
                    })}
                </Suspense>
            </div>
        </header>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
