//! The operational dashboard and the study page: settings, the database
//! lock and the pinned model.

use crate::api::cases::{dashboard_view, study_view};
use crate::i18n::t;
use crate::pages::SigningSecret;
use crate::pages::{error_text, opt, state_label};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use osteo_trial::case::BoneRadsSource;
use osteo_trial::study::LockKind;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard_view());
    view! {
        <section>
            <h1>{t("dashboard.title")}</h1>
            <p class="muted">{t("dashboard.blinded")}</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => {
                            let d = v.data;
                            let pct = if d.prospective_target > 0 { d.enrolled_prospective * 100 / d.prospective_target } else { 0 };
                            view! {
                                <div class="cards">
                                    <div class="card" id="enrolment">
                                        <h2>{t("dashboard.enrolment")}</h2>
                                        <p><strong id="enrolled-prospective">{d.enrolled_prospective}</strong> " / " {d.prospective_target} " (" {pct} "%)"</p>
                                        <progress max=d.prospective_target value=d.enrolled_prospective></progress>
                                        <p class="muted">{t("screening.flow.enrolled_retrospective")} ": " {d.enrolled_retrospective}</p>
                                    </div>
                                    <div class="card" id="flow">
                                        <h2>{t("screening.flow")}</h2>
                                        <table class="dense">
                                            <tr><td>{t("screening.flow.screened")}</td><td id="flow-screened">{d.flow.screened}</td></tr>
                                            <tr><td>"E1"</td><td>{d.flow.excluded_e1}</td></tr>
                                            <tr><td>"E2"</td><td>{d.flow.excluded_e2}</td></tr>
                                            <tr><td>"E3"</td><td id="flow-e3">{d.flow.excluded_e3}</td></tr>
                                            <tr><td>{t("screening.reason.declined")}</td><td>{d.flow.declined}</td></tr>
                                            <tr><td>{t("screening.reason.missed")}</td><td>{d.flow.missed}</td></tr>
                                            <tr><td>{t("dashboard.reference_standard")}</td><td id="flow-reference">{d.reference_standard}</td></tr>
                                        </table>
                                    </div>
                                    <div class="card" id="completeness">
                                        <h2>{t("dashboard.completeness")}</h2>
                                        <table class="dense">
                                            {d.cases_by_state.iter().map(|(s, n)| view! { <tr><td>{state_label(*s)}</td><td>{*n}</td></tr> }).collect_view()}
                                            <tr><td>{t("dashboard.crf_complete")}</td><td>{d.crf_complete} " / " {d.cases_total}</td></tr>
                                        </table>
                                    </div>
                                    <div class="card" id="open-queries">
                                        <h2>{t("queries.title")}</h2>
                                        <p>{t("query.open")} ": " <span id="queries-open">{d.open_queries}</span> " · " {t("query.answered")} ": " {d.answered_queries}</p>
                                        <p>{if d.locked { t("study.locked") } else { t("study.unlocked") }}</p>
                                    </div>
                                </div>
                                <Overview d=d.clone() charts=v.charts/>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The study at a glance: enrolment over time against the target, the
/// screening funnel, cases by state, query ageing and the readers'
/// throughput, as charts drawn on the server with their numbers beside.
#[component]
fn Overview(
    d: osteo_trial::study::Dashboard,
    charts: crate::api::cases::DashboardCharts,
) -> impl IntoView {
    let figure = |id: &'static str, svg: String, class: &'static str| {
        view! {
            <figure id=id class=class><div class="chart-box" inner_html=svg></div></figure>
        }
    };
    let turnaround = |minutes: Option<i64>| match minutes {
        None => "—".to_owned(),
        Some(m) if m < 48 * 60 => format!("{:.1} {}", m as f64 / 60.0, t("dashboard.hours")),
        Some(m) => format!("{:.1} {}", m as f64 / (24.0 * 60.0), t("dashboard.days")),
    };
    view! {
        <h2 id="overview-title">{t("dashboard.overview")}</h2>
        <div class="charts" id="overview">
            {figure("chart-enrolment", charts.enrolment, "chart wide")}
            {figure("chart-funnel", charts.funnel, "chart")}
            {figure("chart-states", charts.states, "chart")}
            {figure("chart-query-ageing", charts.query_ageing, "chart")}
            {figure("chart-readers", charts.readers, "chart")}
        </div>
        <details class="card" id="overview-figures">
            <summary>{t("dashboard.figures")}</summary>
            <table class="dense" id="enrolment-by-site">
                <caption>{t("dashboard.chart.enrolment")}</caption>
                <thead><tr>
                    <th scope="col">{t("dashboard.site")}</th>
                    <th scope="col">{t("dashboard.enrolled")}</th>
                    <th scope="col">{t("dashboard.first")}</th>
                    <th scope="col">{t("dashboard.last")}</th>
                </tr></thead>
                <tbody>{d.enrolment.iter().map(|s| view! {
                    <tr><td>{s.site.clone()}</td><td>{s.dates.len()}</td>
                        <td>{s.dates.first().cloned().unwrap_or_default()}</td>
                        <td>{s.dates.last().cloned().unwrap_or_default()}</td></tr>
                }).collect_view()}</tbody>
            </table>
            <table class="dense" id="query-ageing">
                <caption>{t("dashboard.chart.query_ageing")}</caption>
                <tbody>{d.query_ageing.buckets().iter().map(|(k, n)| view! {
                    <tr><th scope="row">{t(k)}</th><td>{*n}</td></tr>
                }).collect_view()}</tbody>
            </table>
            {if d.readers.is_empty() {
                view! { <p class="muted" id="readers-none">{t("dashboard.no_readers")}</p> }.into_any()
            } else {
                view! {
                    <table class="dense" id="reader-throughput">
                        <caption>{t("dashboard.chart.readers")}</caption>
                        <thead><tr>
                            <th scope="col">{t("dashboard.reader")}</th>
                            <th scope="col">{t("dashboard.assigned")}</th>
                            <th scope="col">{t("dashboard.signed")}</th>
                            <th scope="col">{t("dashboard.last_7_days")}</th>
                            <th scope="col">{t("dashboard.turnaround")}</th>
                        </tr></thead>
                        <tbody>{d.readers.iter().map(|r| view! {
                            <tr><td>{r.reader.clone()}</td><td>{r.assigned}</td><td>{r.signed}</td>
                                <td>{r.signed_last_7_days}</td><td>{turnaround(r.median_turnaround_minutes)}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </details>
    }
}

#[component]
pub fn StudyPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| study_view());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("study.title")}</h1>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="study-error" role="alert">{error_text("case.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => {
                            let s = v.settings.clone();
                            let lock = v.lock.clone();
                            view! {
                                <div class="card" id="settings">
                                    <h2>{t("study.settings")}</h2>
                                    <form method="post" action="/study/settings" class="grid" id="settings-form">
                                        <label>{t("study.rule_version")}
                                            <select name="rule_version" id="f-rule-version" disabled=!v.can_manage>
                                                <option value="" selected=s.rule_version.is_none()>"—"</option>
                                                {s.rule_versions.iter().map(|r| view! { <option value=r.clone() selected={Some(r) == s.rule_version.as_ref()}>{r.clone()}</option> }).collect_view()}
                                            </select>
                                        </label>
                                        <label>{t("study.readers_per_case")}<input type="number" name="readers_per_case" min="1" max="3" value=s.readers_per_case disabled=!v.can_manage/></label>
                                        <label>{t("study.bone_rads_source")}
                                            <select name="bone_rads_source" id="f-bone-rads-source" disabled=!v.can_manage>
                                                {BoneRadsSource::ALL.iter().map(|o| view! { <option value=o.as_str() selected={*o == s.bone_rads_source}>{opt(o.as_str())}</option> }).collect_view()}
                                            </select>
                                        </label>
                                        <label>{t("study.dicom_dates")}
                                            <select name="dicom_dates" id="f-dicom-dates" disabled=!v.can_manage>
                                                {osteo_trial::study::DICOM_DATES.into_iter().map(|o| view! { <option value=o selected={o == s.dicom_dates}>{t(&format!("study.dicom_dates_{o}"))}</option> }).collect_view()}
                                            </select>
                                        </label>
                                        {v.can_manage.then(|| view! { <button type="submit" id="settings-save">{t("study.save")}</button> })}
                                    </form>
                                </div>
                                <ModelPinCard v=v.clone()/>
                                {v.can_manage.then(|| view! { <DicomPeersCard peers=v.dicom_peers.clone()/> })}
                                <div class="card" id="lock">
                                    <h2>{t("study.lock")}</h2>
                                    <p id="lock-state"><strong>{if lock.locked { t("study.locked") } else { t("study.unlocked") }}</strong>
                                        {lock.kind.map(|k| view! { " · " <span id="lock-kind">{t(&format!("lock.kind.{}", k.as_str()))}</span> })}
                                        {lock.export_sha256.clone().map(|h| view! { " · SHA-256 " <code id="lock-sha">{h}</code> })}</p>
                                    <p class="muted" id="lock-target">{t("lock.enrolled")} " " {lock.enrolled_prospective} " / " {osteo_trial::study::PROSPECTIVE_TARGET}</p>
                                    {(!lock.blockers.is_empty()).then(|| view! {
                                        <ul class="error" id="lock-blockers">{lock.blockers.iter().map(|b| view! { <li>{b.clone()}</li> }).collect_view()}</ul>
                                    })}
                                    {(lock.locked && lock.kind == Some(LockKind::Final)).then(|| view! {
                                        <p class="warning" id="lock-final">{t("lock.final_never_undone")}</p>
                                    })}
                                    {(lock.locked && !lock.unlock_signatures.is_empty()).then(|| view! {
                                        <ul id="unlock-signatures">{lock.unlock_signatures.iter().map(|u| view! {
                                            <li>{t("lock.unlock_signed")} " " {t(&format!("role.{}", u.role))} " · " {u.printed_name.clone()} " · " {u.reason.clone()}</li>
                                        }).collect_view()}</ul>
                                    })}
                                    {(lock.locked && lock.kind != Some(LockKind::Final) && v.can_unlock
                                        && !lock.unlock_signatures.iter().any(|u| u.role == v.role.as_str())).then(|| view! {
                                        <form method="post" action="/study/unlock" class="grid sign" id="unlock-form">
                                            <p class="muted">{t("lock.unlock_needs_two")}</p>
                                            <label>{t("crf.reason")}<input name="reason" maxlength="500" required/></label>
                                            <SigningSecret/>
                                            <button type="submit" class="danger" id="unlock-submit">{t("study.unlock")}</button>
                                        </form>
                                    })}
                                    {(v.can_lock && !lock.locked && !lock.events.iter().any(|e| e.kind == Some(LockKind::Final))).then(|| view! {
                                        <form method="post" action="/study/lock" class="grid sign" id="lock-form">
                                            <label>{t("lock.kind")}
                                                <select name="kind" id="f-lock-kind">
                                                    {LockKind::ALL.iter().map(|k| view! { <option value=k.as_str()>{t(&format!("lock.kind.{}", k.as_str()))}</option> }).collect_view()}
                                                </select>
                                            </label>
                                            <label>{t("lock.early_stop")}<input name="early_stop_reason" maxlength="500" id="f-early-stop"/></label>
                                            <SigningSecret/>
                                            <button type="submit" disabled=!lock.blockers.is_empty() id="lock-submit">{t("study.lock_now")}</button>
                                            <small class="muted">{t("lock.final_statement")} " " {t("sign.statement")}</small>
                                        </form>
                                    })}
                                    <ul id="lock-events">{lock.events.iter().map(|e| view! {
                                        <li>{t(&format!("study.event.{}", e.action))}
                                            {e.kind.map(|k| format!(" ({})", t(&format!("lock.kind.{}", k.as_str()))))}
                                            " · " {e.printed_name.clone()} " · " {e.at.get(..19).unwrap_or_default().replace('T', " ")} " UTC"
                                            {e.reason.clone().map(|r| format!(" · {r}"))}
                                            {e.early_stop_reason.clone().map(|r| format!(" · {} {r}", t("lock.early_stop")))}</li>
                                    }).collect_view()}</ul>
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The model pinned for the study and the model this server runs; the PI
/// pins the running model with a signature before the first prediction.
#[component]
pub(crate) fn ModelPinCard(v: crate::api::cases::StudyData) -> impl IntoView {
    let running_is_pinned = match (&v.pin, &v.model) {
        (Some(p), Some(m)) => p.model_id == m.model_id && p.weights_sha256 == m.weights_sha256,
        _ => false,
    };
    view! {
        <div class="card" id="model-pin">
            <h2>{t("pin.title")}</h2>
            {match v.pin.clone() {
                None => view! { <p class="warning" id="pin-none">{t("pin.none")}</p> }.into_any(),
                Some(p) => view! {
                    <p id="pin-current">{t("pin.pinned")} " " <code>{p.model_id.clone()}</code> " · " {t("pin.weights")} " "
                        <code>{p.weights_sha256.clone()}</code> " · "
                        {p.signed_by.clone().unwrap_or_else(|| t("pin.by_demo"))} " · " {p.pinned_at.get(..16).unwrap_or_default().replace('T', " ")}</p>
                }.into_any(),
            }}
            {match v.model.clone() {
                None => view! { <p class="muted" id="pin-running">{t("pin.no_model")}</p> }.into_any(),
                Some(m) => view! {
                    <p class="muted" id="pin-running">{t("pin.running")} " " <code>{m.model_id.clone()}</code>
                        {m.label.clone().map(|l| format!(" — {l}"))}
                        {if running_is_pinned { format!(" · {}", t("pin.is_pinned")) } else { String::new() }}</p>
                }.into_any(),
            }}
            {(v.can_pin && v.model.is_some() && !running_is_pinned && !v.lock.locked).then(|| view! {
                <form method="post" action="/study/model/pin" class="grid sign" id="pin-form">
                    <SigningSecret/>
                    <button type="submit" id="pin-submit">{t("pin.submit")}</button>
                    <small class="muted">{t("pin.statement")}</small>
                </form>
            })}
        </div>
    }
}

/// The DICOM peers allowed to send images (the PACS link): the
/// administrator or the PI allows one by AE title (and address), or
/// retires it.
#[component]
fn DicomPeersCard(peers: Vec<crate::api::cases::DicomPeerRow>) -> impl IntoView {
    view! {
        <div class="card" id="dicom-peers">
            <h2>{t("peers.title")}</h2>
            <p class="muted">{t("peers.intro")}</p>
            {if peers.is_empty() {
                view! { <p id="peers-none">{t("peers.none")}</p> }.into_any()
            } else {
                view! {
                    <table class="dense" id="peers">
                        <caption>{t("peers.title")}</caption>
                        <thead><tr>
                            <th scope="col">{t("peers.ae_title")}</th>
                            <th scope="col">{t("peers.address")}</th>
                            <th scope="col">{t("peers.tag")}</th>
                            <th scope="col">{t("peers.added")}</th>
                            <th scope="col">{t("peers.action")}</th>
                        </tr></thead>
                        <tbody>
                            {peers.into_iter().map(|p| view! {
                                <tr id=format!("peer-{}", p.id)>
                                    <td><code>{p.ae_title.clone()}</code></td>
                                    <td>{p.address.clone().unwrap_or_else(|| t("peers.any_address"))}</td>
                                    <td>{p.study_number_tag.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td class="muted">{p.added_at.get(..16).unwrap_or_default().replace('T', " ")}</td>
                                    <td>
                                        <form method="post" action=format!("/dicom/peers/{}/retire", p.id)>
                                            <button type="submit" class="danger" aria-label=format!("{} {}", t("peers.retire"), p.ae_title)>{t("peers.retire")}</button>
                                        </form>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <form method="post" action="/dicom/peers" class="grid" id="peer-form">
                <label>{t("peers.ae_title")}<input name="ae_title" id="f-peer-ae" maxlength="16" required/></label>
                <label>{t("peers.address")}<input name="address" id="f-peer-address" maxlength="45" placeholder="10.0.0.5"/></label>
                <label>{t("peers.tag")}<input name="study_number_tag" id="f-peer-tag" maxlength="64" placeholder="StudyID"/></label>
                <button type="submit" id="peer-add">{t("peers.add")}</button>
            </form>
        </div>
    }
}
