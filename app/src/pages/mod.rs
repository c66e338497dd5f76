//! The pages. Each reads through server functions and changes things through
//! plain form posts, so it works with and without JavaScript.

mod account;
mod admin;
mod analysis;
mod cases;
mod pacs;
mod screening;
mod study;
mod upload;
mod viewer;

pub use account::{LoginCodePage, LoginPage, PasswordPage, SecondFactorPage, TokensPage};
pub use admin::{AuditPage, UsersPage};
pub use analysis::AnalysisPage;
pub use cases::{CasePage, CasesPage};
pub use pacs::QuarantinePage;
pub use screening::ScreeningPage;
pub use study::{DashboardPage, StudyPage};

use crate::i18n::t;
use crate::MeResource;
use leptos::prelude::*;
use osteo_trial::domain::{Permission, StudyKind};

/// A message read from the `?error=` code a form post redirected with.
/// Only known codes are shown; anything else reads as a generic error.
pub(crate) fn error_text(prefix: &str, code: &str) -> String {
    let known = code.len() <= 40 && code.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    let key = format!("{prefix}.{code}");
    let text = if known { t(&key) } else { key.clone() };
    if text == key {
        t("error.invalid")
    } else {
        text
    }
}

/// What a signature form asks besides its own fields: the password again
/// and, for an account with a second factor, the authenticator app's code
/// (21 CFR 11.200(a): every component at each signing).
#[component]
pub(crate) fn SigningSecret() -> impl IntoView {
    let me = expect_context::<MeResource>();
    view! {
        <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await.ok().flatten().filter(|m| m.second_factor).map(|_| view! {
                    <label>{t("sign.second_factor")}
                        <input type="text" name="second_factor" autocomplete="one-time-code" inputmode="numeric" required/>
                    </label>
                })
            })}
        </Suspense>
    }
}

#[component]
pub fn HomePage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let study = Resource::new(|| (), |_| crate::api::study_kind());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let kind = study.await.unwrap_or(StudyKind::Trial);
                me.await.ok().flatten().map(|m| {
                    let admin = m.role.can(Permission::ManageUsers);
                    let audit = m.role.can(Permission::ViewAudit);
                    let screening = m.role.can(Permission::ViewScreening);
                    let cases = m.role.can(Permission::ViewCases) || m.role.can(Permission::ReadCases);
                    let dashboard = m.role.can(Permission::ViewDashboard);
                    let study = m.role.can(Permission::ManageStudy);
                    view! {
                        <section>
                            <h1 id="welcome">{t("home.welcome")} ", " {m.display_name.clone()}</h1>
                            <p class="muted">
                                {t("home.study")} " " <strong>{kind.registration()}</strong>
                                " · " {t("home.site")} " " <strong>{m.site_code.clone()}</strong>
                                " · " {t("home.role")} " " <strong id="my-role">{t(&format!("role.{}", m.role.as_str()))}</strong>
                            </p>
                            <div class="cards">
                                {admin.then(|| view! {
                                    <a class="card" href="/admin/users"><h2>{t("nav.users")}</h2><p>{t("home.users_hint")}</p></a>
                                })}
                                {screening.then(|| view! {
                                    <a class="card" href="/screening"><h2>{t("nav.screening")}</h2><p>{t("home.screening_hint")}</p></a>
                                })}
                                {cases.then(|| view! {
                                    <a class="card" href="/cases"><h2>{t("nav.cases")}</h2><p>{t("home.cases_hint")}</p></a>
                                })}
                                {dashboard.then(|| view! {
                                    <a class="card" href="/dashboard"><h2>{t("nav.dashboard")}</h2><p>{t("home.dashboard_hint")}</p></a>
                                })}
                                {dashboard.then(|| view! {
                                    <a class="card" href="/analysis"><h2>{t("nav.analysis")}</h2><p>{t("home.analysis_hint")}</p></a>
                                })}
                                {study.then(|| view! {
                                    <a class="card" href="/study"><h2>{t("nav.study")}</h2><p>{t("home.study_hint")}</p></a>
                                })}
                                {audit.then(|| view! {
                                    <a class="card" href="/admin/audit"><h2>{t("nav.audit")}</h2><p>{t("home.audit_hint")}</p></a>
                                })}
                                <a class="card" href="/account/tokens"><h2>{t("nav.tokens")}</h2><p>{t("home.tokens_hint")}</p></a>
                            </div>
                        </section>
                    }
                })
            })}
        </Suspense>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card narrow">
            <h1>{t("notfound.title")}</h1>
            <p>{t("notfound.body")}</p>
            <a href="/">{t("nav.home")}</a>
        </section>
    }
}

/// The label of a code (`opt.<code>`), or the code itself.
pub(crate) fn opt(code: &str) -> String {
    let key = format!("opt.{code}");
    let s = t(&key);
    if s == key {
        code.to_owned()
    } else {
        s
    }
}

pub(crate) fn state_label(s: osteo_trial::case::CaseState) -> String {
    t(&format!("state.{}", s.as_str()))
}
