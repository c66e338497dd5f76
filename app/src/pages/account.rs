//! Sign-in, password change and personal API tokens.

use super::error_text;
use crate::api::list_tokens;
use crate::i18n::{t, t_with};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use osteo_trial::domain::NewPassword;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let message = move || {
        let q = query.read();
        q.get("error").map(|code| {
            let mut text = error_text("login.error", &code);
            if let Some(until) = q.get("until") {
                text = text.replace("%{until}", &until);
            }
            view! { <p class="error" id="login-error" role="alert">{text}</p> }
        })
    };
    let info = move || {
        (query.read().get("info").as_deref() == Some("signed_out"))
            .then(|| view! { <p class="flash ok" id="login-info" role="status">{t("login.info.signed_out")}</p> })
    };
    view! {
        <section class="card narrow">
            <h1>{t("login.title")}</h1>
            {info}
            {message}
            <form method="post" action="/auth/login" id="login-form">
                <label>
                    {t("login.username")}
                    <input name="username" id="username" autocomplete="username" maxlength="64" required/>
                </label>
                <label>
                    {t("login.password")}
                    <input type="password" name="password" id="password" autocomplete="current-password" maxlength="256" required/>
                </label>
                <button type="submit" id="login-submit">{t("login.submit")}</button>
            </form>
        </section>
    }
}

/// The second step of signing in: the code from the authenticator app, or
/// one of the recovery codes.
#[component]
pub fn LoginCodePage() -> impl IntoView {
    let query = use_query_map();
    view! {
        <section class="card narrow">
            <h1>{t("login_code.title")}</h1>
            <p class="muted">{t("login_code.intro")}</p>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="login-code-error" role="alert">{error_text("login_code.error", &code)}</p>
            })}
            <form method="post" action="/auth/code" id="login-code-form">
                <label>
                    {t("login_code.code")}
                    <input name="code" id="code" autocomplete="one-time-code" inputmode="numeric" maxlength="64" required autofocus/>
                </label>
                <button type="submit" id="login-code-submit">{t("login_code.submit")}</button>
            </form>
        </section>
    }
}

#[component]
pub fn PasswordPage() -> impl IntoView {
    let query = use_query_map();
    // Counts as the user types (in the browser only): shows the page hydrated.
    let (length, set_length) = signal(0_usize);
    let min = NewPassword::MIN_CHARS.to_string();
    let counter = move || {
        let n = length.get();
        let text = t_with("password.length", &[("n", &n.to_string()), ("min", &min)]);
        let class = if n >= NewPassword::MIN_CHARS {
            "hint ok"
        } else {
            "hint"
        };
        view! { <p id="pw-length" class=class>{text}</p> }
    };
    view! {
        <section class="card narrow">
            <h1>{t("password.title")}</h1>
            <p class="muted">{t("password.intro")}</p>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="password-error" role="alert">{error_text("password.error", &code)}</p>
            })}
            <form method="post" action="/auth/password" id="password-form">
                <label>
                    {t("password.current")}
                    <input type="password" name="current_password" id="current-password" autocomplete="current-password" maxlength="256" required/>
                </label>
                <label>
                    {t("password.new")}
                    <input
                        type="password"
                        name="new_password"
                        id="new-password"
                        autocomplete="new-password"
                        maxlength="256"
                        required
                        on:input=move |ev| set_length.set(event_target_value(&ev).chars().count())
                    />
                </label>
                {counter}
                <label>
                    {t("password.confirm")}
                    <input type="password" name="confirm_password" id="confirm-password" autocomplete="new-password" maxlength="256" required/>
                </label>
                <button type="submit" id="password-submit">{t("password.submit")}</button>
            </form>
        </section>
    }
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let tokens = Resource::new(|| (), |_| list_tokens());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("tokens.title")}</h1>
            <p class="muted">{t("tokens.intro")}</p>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" role="alert">{error_text("tokens.error", &code)}</p>
            })}
            <form method="post" action="/account/tokens" class="row" id="token-form">
                <label>
                    {t("tokens.name")}
                    <input name="name" id="token-name" maxlength="128" required/>
                </label>
                <button type="submit" id="token-create">{t("tokens.create")}</button>
            </form>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">{t("tokens.none")}</p> }.into_any(),
                        Ok(list) => view! {
                            <table id="tokens">
                                <thead><tr>
                                    <th>{t("tokens.name")}</th><th>{t("tokens.prefix")}</th><th>{t("tokens.created")}</th>
                                    <th>{t("tokens.last_used")}</th><th>{t("tokens.status")}</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|tok| {
                                        let action = format!("/account/tokens/{}/revoke", tok.id);
                                        let revoked = tok.revoked_at.is_some();
                                        view! {
                                            <tr>
                                                <td>{tok.name}</td>
                                                <td><code>{tok.prefix} "…"</code></td>
                                                <td>{tok.created_at}</td>
                                                <td>{tok.last_used_at.unwrap_or_default()}</td>
                                                <td>{if revoked { t("tokens.revoked") } else { t("tokens.active") }}</td>
                                                <td>{(!revoked).then(|| view! {
                                                    <form method="post" action=action class="inline">
                                                        <button type="submit" class="danger">{t("tokens.revoke")}</button>
                                                    </form>
                                                })}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Enrolling a second factor: start (a new secret), scan the QR code or
/// type the secret into an authenticator app, confirm with its code; the
/// recovery codes are then shown once.
#[component]
pub fn SecondFactorPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| crate::api::second_factor_view());
    let query = use_query_map();
    view! {
        <section class="card narrow">
            <h1>{t("second_factor.title")}</h1>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="second-factor-error" role="alert">{error_text("second_factor.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => view! {
                            <p id="second-factor-state">{if v.enrolled {
                                t("second_factor.enrolled")
                            } else if v.required {
                                t("second_factor.required")
                            } else {
                                t("second_factor.optional")
                            }}</p>
                            {match v.pending {
                                Some(p) => view! {
                                    <p>{t("second_factor.scan")}</p>
                                    <div class="qr" id="second-factor-qr" inner_html=p.qr_svg></div>
                                    <p>{t("second_factor.or_type")} " " <code id="second-factor-secret">{p.secret}</code></p>
                                    <form method="post" action="/account/second-factor/confirm" id="second-factor-confirm">
                                        <label>
                                            {t("login_code.code")}
                                            <input name="code" id="second-factor-code" autocomplete="one-time-code" inputmode="numeric" maxlength="16" required/>
                                        </label>
                                        <button type="submit">{t("second_factor.confirm")}</button>
                                    </form>
                                }.into_any(),
                                None => view! {
                                    <form method="post" action="/account/second-factor/start" id="second-factor-start">
                                        <button type="submit">{if v.enrolled { t("second_factor.replace") } else { t("second_factor.start") }}</button>
                                    </form>
                                }.into_any(),
                            }}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
