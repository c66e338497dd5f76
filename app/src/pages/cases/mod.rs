//! The case pages: the worklist and case list, one case with each step's
//! form for the roles that take it, the operational dashboard, and the study
//! page (settings, database lock). Every form is a plain post; a failed one
//! comes back with what was typed and the problems beside the fields.

mod form;
mod sections;

use form::CrfForm;
use sections::{
    DiagnosticReport, EndSection, PathologySection, QueriesSection, ReadSection, Workstation,
};

use crate::api::cases::{case_view, cases_view, CaseData, CASES_PER_PAGE};
use crate::i18n::t;
use crate::pages::upload::Uploader;
use crate::pages::viewer::{Viewer, ViewerImage};
use crate::pages::{error_text, opt, state_label};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use osteo_trial::case::{CaseList, CaseState, CaseSummary};

/// The case's views for the viewer, each with its heat map when the
/// prediction is locked and the role may see it (heat map n belongs to the
/// n-th view the model read).
pub(crate) fn viewer_images(v: &CaseData) -> Vec<ViewerImage> {
    let read: &[osteo_trial::domain::Sha256] = v.detail.prediction.as_ref().map_or(&[], |p| {
        &p.input.image_sha256[..p.input.heatmaps.len().min(p.input.image_sha256.len())]
    });
    let id = v.detail.summary.id;
    let mut images: Vec<&osteo_trial::case::CaseImage> = v.detail.images.iter().collect();
    // The hanging order: frontal left, lateral right, any other after them.
    images.sort_by_key(|i| match i.view.as_str() {
        "frontal" => 0,
        "lateral" => 1,
        _ => 2,
    });
    images
        .into_iter()
        .map(|i| ViewerImage {
            sha256: i.sha256.clone(),
            caption: [
                Some(opt(i.view.as_str())),
                i.modality.clone(),
                i.columns.zip(i.rows).map(|(c, r)| format!("{c} × {r}")),
                i.laterality.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · "),
            heatmap: read
                .iter()
                .position(|s| s == &i.sha256)
                .map(|n| format!("/cases/{id}/heatmaps/{n}")),
        })
        .collect()
}

#[component]
pub(crate) fn CaseTable(cases: Vec<CaseSummary>, id: &'static str) -> impl IntoView {
    view! {
        <table id=id class="dense">
            <thead><tr>
                <th>{t("cases.study_number")}</th><th>{t("cases.site")}</th><th>{t("cases.state")}</th>
                <th>{t("cases.waits_for")}</th><th>{t("cases.queries")}</th><th>{t("cases.updated")}</th>
            </tr></thead>
            <tbody>
                {cases.into_iter().map(|c| view! {
                    <tr>
                        <td><a href=format!("/cases/{}", c.id)>{c.study_number.clone()}</a></td>
                        <td>{c.site_code.clone()}</td>
                        <td><span class=format!("badge state-{}", c.state.as_str())>{state_label(c.state)}</span></td>
                        <td>{t(&format!("waits.{}", c.state.as_str()))}</td>
                        <td>{(c.open_queries > 0).then_some(c.open_queries)}</td>
                        <td class="muted">{c.updated_at.get(..16).unwrap_or_default().replace('T', " ")}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Where a list of cases stands: "51–100 of 2200", and links to the
/// previous and next pages (the query parameter `param`; the other list's
/// page, `keep`, stays as it is).
#[component]
fn Pager(
    list: CaseList,
    param: &'static str,
    keep: (&'static str, i64),
    id: &'static str,
) -> impl IntoView {
    let per = CASES_PER_PAGE;
    let page = list.offset / per + 1;
    let last = ((list.total + per - 1) / per).max(1);
    let href = move |p: i64| format!("/cases?{param}={p}&{}={}", keep.0, keep.1);
    let shown = list.cases.len() as i64;
    (list.total > per || page > 1).then(|| {
        view! {
            <nav class="pager muted" id=id aria-label=t("cases.pages")>
                {if shown > 0 {
                    format!("{}–{} ", list.offset + 1, list.offset + shown)
                } else {
                    String::new()
                }}
                {t("cases.of")} {format!(" {}", list.total)}
                {(page > 1).then(|| view! {
                    " · " <a href=href(page.min(last + 1) - 1) rel="prev">{t("cases.previous")}</a>
                })}
                {(page < last).then(|| view! {
                    " · " <a href=href(page + 1) rel="next">{t("cases.next")}</a>
                })}
            </nav>
        }
    })
}

#[component]
pub fn CasesPage() -> impl IntoView {
    let query = use_query_map();
    // The worklist's page (`due`) and the case list's (`page`), from 1.
    let pages = move || {
        let q = query.read();
        let n = |k: &str| {
            q.get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|&p| p >= 1)
                .unwrap_or(1)
        };
        (n("due"), n("page"))
    };
    let data = Resource::new(pages, |(due, page)| cases_view(due, page));
    view! {
        <section>
            <h1>{t("cases.title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let (due, page) = pages();
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => view! {
                            <h2>{t("cases.worklist")}</h2>
                            {if v.worklist.total == 0 {
                                view! { <p class="muted" id="worklist-empty">{t("cases.nothing_due")}</p> }.into_any()
                            } else {
                                let list = v.worklist.clone();
                                view! {
                                    <CaseTable cases=list.cases.clone() id="worklist"/>
                                    <Pager list=list param="due" keep=("page", page) id="worklist-pages"/>
                                }.into_any()
                            }}
                            {v.all.clone().map(|all| view! {
                                <h2>{t("cases.all")}</h2>
                                <CaseTable cases=all.cases.clone() id="all-cases"/>
                                <Pager list=all param="page" keep=("due", due) id="all-cases-pages"/>
                            })}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn CasePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(-1)
    };
    let data = Resource::new(id, case_view);
    view! {
        <section>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="case-error" role="alert">{error_text("case.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" id="case-refused">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => {
                            let s = v.detail.summary.clone();
                            let id = s.id;
                            let unblinded = v.detail.withheld.is_empty();
                            // A radiologist's page is the reading workstation.
                            let reader = v.can_read;
                            view! {
                                <h1>{t("case.title")} " " <span id="study-number">{s.study_number.clone()}</span></h1>
                                <p>
                                    <span class=format!("badge state-{}", s.state.as_str()) id="case-state">{state_label(s.state)}</span>
                                    " " <span class="muted" id="waits-for">{t("cases.waits_for")} ": " {t(&format!("waits.{}", s.state.as_str()))}</span>
                                    {v.detail.end_reason.clone().map(|r| view! { " · " <strong>{opt(&r)}</strong> })}
                                    {v.locked.then(|| view! { " · " <strong class="error">{t("study.locked")}</strong> })}
                                </p>
                                {(!reader).then(|| view! {
                                <details class="card" id="images" open=true>
                                    <summary>{t("images.title")} " (" {v.detail.images.len()} ")"</summary>
                                    {(!v.detail.images.is_empty()).then(|| view! { <Viewer images=viewer_images(&v)/> })}
                                    // Images complete needs a frontal and a lateral view: say which are here.
                                    <p id="views-present">{t("images.views_present")} ": "
                                        {["frontal", "lateral"].into_iter().map(|view| {
                                            let here = v.detail.images.iter().any(|i| i.view.as_str() == view);
                                            view! { <span class=if here { "view-here" } else { "view-missing" }>{opt(view)} {if here { " ✓" } else { " ✗" }}</span> " " }
                                        }).collect_view()}
                                    </p>
                                    <ul id="image-list">{v.detail.images.iter().map(|i| view! {
                                        <li class="image">
                                            <a href=format!("/images/{}/preview.png?size=2048", i.sha256) target="_blank">
                                                <img class="thumb" src=format!("/images/{}/preview.png?size=320", i.sha256)
                                                    alt=format!("{} {}", opt(i.view.as_str()), s.study_number) loading="lazy"/>
                                            </a>
                                            <br/>
                                            <strong>{opt(i.view.as_str())}</strong>
                                            " · " {i.modality.clone().unwrap_or_default()}
                                            {i.columns.zip(i.rows).map(|(c, r)| format!(" · {c} × {r}"))}
                                            {i.body_part.clone().map(|b| format!(" · {b}"))}
                                            {i.laterality.clone().map(|l| format!(" · {l}"))}
                                            " · " <code>{i.sha256.get(..16).unwrap_or_default().to_owned()} "…"</code>
                                            {i.warnings.iter().map(|w| view! { <br/><small class="field-error">"⚠ " {w.clone()}</small> }).collect_view()}
                                        </li>
                                    }).collect_view()}</ul>
                                    {(v.detail.images.is_empty()).then(|| view! { <p class="muted">{t("images.none")}</p> })}
                                    {(v.can_enter && s.state == CaseState::Enrolled && !v.locked).then(|| view! {
                                        <div id="dicom-routes">
                                            <h3>{t("routes.title")}</h3>
                                            <p class="muted">{t("routes.intro")}</p>
                                            {if v.dicom_routes.is_empty() {
                                                view! { <p id="routes-none">{t("routes.none")}</p> }.into_any()
                                            } else {
                                                view! { <ul id="routes">{v.dicom_routes.iter().map(|(kind, at)| view! {
                                                    <li>{t(&format!("routes.kind.{kind}"))} " · " <span class="muted">{at.get(..16).unwrap_or_default().replace('T', " ")}</span></li>
                                                }).collect_view()}</ul> }.into_any()
                                            }}
                                            <form method="post" action=format!("/cases/{id}/dicom-routes") class="grid" id="route-form">
                                                <label>{t("routes.kind")}
                                                    <select name="kind" id="f-route-kind">
                                                        <option value="accession_number">{t("routes.kind.accession_number")}</option>
                                                        <option value="patient_id">{t("routes.kind.patient_id")}</option>
                                                    </select>
                                                </label>
                                                <label>{t("routes.identifier")}<input name="identifier" id="f-route-identifier" maxlength="64" required autocomplete="off"/></label>
                                                <button type="submit" id="route-add">{t("routes.add")}</button>
                                            </form>
                                        </div>
                                        <Uploader case_id=id/>
                                        <form method="post" action=format!("/cases/{id}/images/complete")>
                                            <button type="submit" id="images-complete">{t("images.complete")}</button>
                                        </form>
                                    })}
                                    {v.detail.quality_marks.iter().map(|q| view! {
                                        <p class="warning quality-mark">{t("quality.marked")} " — " {q.marked_by.clone()} ", " {q.marked_at.clone()}
                                            ": " {q.reason.clone()} <br/>{t("quality.proposal")}</p>
                                    }).collect_view()}
                                    {(v.can_enter && !v.detail.images.is_empty() && !s.state.is_final() && !v.locked).then(|| view! {
                                        <form method="post" action=format!("/cases/{id}/poor-quality") class="grid" id="quality-form">
                                            <label>{t("quality.reason")}<input name="reason" maxlength="500" required/></label>
                                            <button type="submit" id="mark-poor-quality">{t("quality.mark")}</button>
                                        </form>
                                    })}
                                </details>
                                {view! { <CrfForm v=v.clone()/> }.into_any()}
                                <details class="card" id="readers" open=true>
                                    <summary>{t("readers.title")}</summary>
                                    <p>{if v.detail.readers.is_empty() { t("readers.none") } else { v.detail.readers.join(", ") }}</p>
                                    {(v.can_assign && !s.state.reached(CaseState::ReadsLocked) && !s.state.is_final() && !v.locked).then(|| view! {
                                        <form method="post" action=format!("/cases/{id}/readers") class="grid" id="assign-form">
                                            <label>{t("readers.assign")}
                                                <select name="username" id="f-reader">
                                                    {v.radiologists.iter().map(|(u, n)| view! { <option value=u.clone()>{n.clone()} " (" {u.clone()} ")"</option> }).collect_view()}
                                                </select>
                                            </label>
                                            <button type="submit" id="assign-reader">{t("readers.assign")}</button>
                                        </form>
                                    })}
                                </details>
                                }.into_any())}
                                {if reader {
                                    view! { <Workstation v=v.clone()/> }.into_any()
                                } else {
                                    view! { <ReadSection v=v.clone()/> }.into_any()
                                }}
                                {unblinded.then(|| view! {
                                    <details class="card" id="prediction" open=true>
                                        <summary>{t("ai.title")}</summary>
                                        {v.model.as_ref().and_then(|m| m.label.clone()).map(|label| view! {
                                            <p class="warning" id="demo-model">{t("ai.demo")} " — " {label}</p>
                                        })}
                                        {match v.detail.prediction.clone() {
                                            None => view! {
                                                <p class="muted" id="awaiting-ai">{t("ai.awaiting")}</p>
                                                {v.ai_waiting.clone().filter(|_| s.state == CaseState::ReadsLocked).map(|why| view! {
                                                    <p class="warning" id="ai-waiting">{t(&format!("ai.waiting.{why}"))}</p>
                                                })}
                                                {(!v.detail.ai_failures.is_empty()).then(|| view! {
                                                    <ul id="ai-failures" class="errors">
                                                        {v.detail.ai_failures.iter().map(|f| view! {
                                                            <li>{t("ai.failed")} " " {f.attempt} " · " {f.at.get(..19).unwrap_or_default().replace('T', " ")} " · " {f.error.clone()}</li>
                                                        }).collect_view()}
                                                    </ul>
                                                })}
                                            }.into_any(),
                                            Some(p) => view! {
                                                <p id="ai-result"><strong>{format!("{:.3}", p.input.probability)}</strong> " → " {opt(p.call.as_str())}
                                                    " (" {t("ai.threshold")} " " {format!("{:.3}", p.input.threshold)} ") · " {p.input.model_id.clone()}</p>
                                                {p.input.domain.clone().filter(|d| d.outside).map(|d| view! {
                                                    <div class="warning" id="ai-out-of-domain" role="alert">
                                                        <p><strong>{t("ai.out_of_domain")}</strong> " " {t("ai.out_of_domain_note")}</p>
                                                        <ul>{d.reasons.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                                                    </div>
                                                })}
                                                {v.model.as_ref().filter(|m| m.model_id == p.input.model_id).map(|m| view! {
                                                    <p class="muted" id="model-card">{t("ai.card")} " " {format!("{:.3}", m.validation_auc)}
                                                        " · " {t("ai.calibration")} " T = " {format!("{:.2}", m.temperature)} " · " {m.training_data.clone()}</p>
                                                })}
                                                <p class="muted">{t("ai.locked")} " " {p.created_at.get(..19).unwrap_or_default().replace('T', " ")}
                                                    " · SHA-256 " <code>{p.record_sha256.as_str().get(..16).unwrap_or_default().to_owned()} "…"</code></p>
                                                <div class="views" id="heatmaps">
                                                    {(0..p.input.heatmaps.len()).map(|n| view! {
                                                        <figure>
                                                            <a href=format!("/cases/{id}/heatmaps/{n}") target="_blank">
                                                                <img src=format!("/cases/{id}/heatmaps/{n}") alt=t("ai.heatmap") loading="lazy" width="320"/>
                                                            </a>
                                                            <figcaption>{t("ai.heatmap")} " " {n + 1}</figcaption>
                                                        </figure>
                                                    }).collect_view()}
                                                </div>
                                            }.into_any(),
                                        }}
                                    </details>
                                    {v.detail.prediction.is_some().then(|| view! { <DiagnosticReport v=v.clone()/> })}
                                    <PathologySection v=v.clone()/>
                                })}
                                {view! { <QueriesSection v=v.clone()/> }.into_any()}
                                {view! { <EndSection v=v.clone()/> }.into_any()}
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}
