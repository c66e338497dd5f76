//! Administration: accounts and the audit trail.

use super::error_text;
use crate::api::{list_users, read_audit, SiteView, UserView};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use osteo_trial::audit::AuditFilter;
use osteo_trial::domain::Role;

fn role_options(selected: Option<Role>) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected={Some(r) == selected}>{t(&format!("role.{}", r.as_str()))}</option> })
        .collect_view()
}

fn site_options(sites: &[SiteView], selected: Option<&str>) -> impl IntoView {
    sites
        .iter()
        .map(|s| {
            let sel = Some(s.code.as_str()) == selected;
            view! { <option value=s.code.clone() selected=sel>{s.code.clone()} " — " {s.name.clone()}</option> }
        })
        .collect_view()
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_users());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("users.title")}</h1>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="users-error" role="alert">{error_text("users.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(view_data) => {
                            let sites = view_data.sites.clone();
                            view! {
                                <details class="card" open=view_data.users.len() < 2>
                                    <summary>{t("users.create")}</summary>
                                    <form method="post" action="/admin/users" class="grid" id="create-user-form">
                                        <label>{t("users.username")}<input name="username" id="new-username" maxlength="64" required/></label>
                                        <label>{t("users.display_name")}<input name="display_name" id="new-display-name" maxlength="128" required/></label>
                                        <label>{t("users.role")}<select name="role" id="new-role">{role_options(None)}</select></label>
                                        <label>{t("users.site")}<select name="site" id="new-site">{site_options(&sites, None)}</select></label>
                                        <button type="submit" id="create-user">{t("users.create")}</button>
                                    </form>
                                </details>
                                <table id="users">
                                    <thead><tr>
                                        <th>{t("users.username")}</th><th>{t("users.display_name")}</th><th>{t("users.role")}</th>
                                        <th>{t("users.site")}</th><th>{t("users.status")}</th><th>{t("users.actions")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {view_data.users.into_iter().map(|u| view! { <UserRow user=u sites=sites.clone()/> }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn UserRow(user: UserView, sites: Vec<SiteView>) -> impl IntoView {
    let base = format!("/admin/users/{}", user.id);
    let status = if !user.active {
        t("users.deactivated")
    } else if let Some(until) = &user.locked_until {
        format!("{} {}", t("users.locked_until"), until)
    } else if user.must_change_password {
        t("users.must_change")
    } else {
        t("users.active")
    };
    let row_id = format!("user-{}", user.username);
    let locked = user.locked_until.is_some();
    view! {
        <tr id=row_id class:inactive=!user.active class:locked=locked>
            <td>{user.username.clone()}</td>
            <td>{user.display_name.clone()}</td>
            <td>{t(&format!("role.{}", user.role.as_str()))}</td>
            <td>{user.site_code.clone()}</td>
            <td class="status">{status}{(user.failed_logins > 0).then(|| format!(" ({} {})", user.failed_logins, t("users.failed")))}</td>
            <td>
                <details>
                    <summary>{t("users.edit")}</summary>
                    <form method="post" action=base.clone() class="grid">
                        <label>{t("users.role")}<select name="role">{role_options(Some(user.role))}</select></label>
                        <label>{t("users.site")}<select name="site">{site_options(&sites, Some(&user.site_code))}</select></label>
                        <label>{t("users.display_name")}<input name="display_name" value=user.display_name.clone() maxlength="128" required/></label>
                        <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                        <button type="submit">{t("users.save")}</button>
                    </form>
                    <form method="post" action=format!("{base}/reset") class="grid">
                        <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                        <button type="submit">{t("users.reset_password")}</button>
                    </form>
                    {locked.then(|| view! {
                        <form method="post" action=format!("{base}/unlock") class="grid">
                            <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                            <button type="submit">{t("users.unlock")}</button>
                        </form>
                    })}
                    {user.second_factor.then(|| view! {
                        <form method="post" action=format!("{base}/reset-second-factor") class="grid">
                            <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                            <button type="submit">{t("users.reset_second_factor")}</button>
                        </form>
                    })}
                    <form method="post" action=format!("{base}/active") class="grid">
                        <input type="hidden" name="active" value=if user.active { "false" } else { "true" }/>
                        <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                        <button type="submit" class=if user.active { "danger" } else { "" }>
                            {if user.active { t("users.deactivate") } else { t("users.reactivate") }}
                        </button>
                    </form>
                </details>
            </td>
        </tr>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        AuditFilter {
            actor: q.get("actor"),
            entity: q.get("entity"),
            entity_id: q.get("entity_id"),
            from: q.get("from"),
            to: q.get("to"),
            before_seq: q.get("before").and_then(|b| b.parse().ok()),
        }
    };
    let page = Resource::new(filter, read_audit);
    view! {
        <section>
            <h1>{t("audit.title")}</h1>
            <form method="get" action="/admin/audit" class="row" id="audit-filter">
                <label>{t("audit.actor")}<input name="actor" value=move || filter().actor.unwrap_or_default()/></label>
                <label>{t("audit.entity")}<input name="entity" value=move || filter().entity.unwrap_or_default()/></label>
                <label>{t("audit.entity_id")}<input name="entity_id" value=move || filter().entity_id.unwrap_or_default()/></label>
                <label>{t("audit.from")}<input type="date" name="from" value=move || filter().from.unwrap_or_default()/></label>
                <label>{t("audit.to")}<input type="date" name="to" value=move || filter().to.unwrap_or_default()/></label>
                <button type="submit">{t("audit.apply")}</button>
            </form>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match page.await {
                        Err(e) => view! { <p class="error" role="alert">{t(e.message_key())} " " {match e { crate::api::AppError::Invalid(m) => m, _ => String::new() }}</p> }.into_any(),
                        Ok(p) => {
                            let next = p.next_before_seq.map(|seq| {
                                let f = filter();
                                let params = [
                                    ("actor", f.actor), ("entity", f.entity), ("entity_id", f.entity_id),
                                    ("from", f.from), ("to", f.to), ("before", Some(seq.to_string())),
                                ];
                                let qs: Vec<String> = params
                                    .into_iter()
                                    .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(&v))))
                                    .collect();
                                format!("/admin/audit?{}", qs.join("&"))
                            });
                            view! {
                                <table id="audit" class="dense">
                                    <thead><tr>
                                        <th>"#"</th><th>{t("audit.at")}</th><th>{t("audit.actor")}</th><th>{t("audit.source")}</th>
                                        <th>{t("audit.action")}</th><th>{t("audit.entity")}</th><th>{t("audit.field")}</th>
                                        <th>{t("audit.old")}</th><th>{t("audit.new")}</th><th>{t("audit.reason")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {p.rows.into_iter().map(|r| view! {
                                            <tr>
                                                <td>{r.seq}</td><td>{r.at}</td><td>{r.actor}</td><td>{r.source}</td>
                                                <td>{r.action}</td>
                                                <td>{r.entity} {r.entity_id.map(|i| format!(" {i}"))}</td>
                                                <td>{r.field}</td><td>{r.old_value}</td><td>{r.new_value}</td><td>{r.reason}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                {next.map(|href| view! { <a href=href id="audit-older" class="button">{t("audit.older")}</a> })}
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
