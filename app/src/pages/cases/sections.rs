//! The sections of the case page after the CRF: the blinded reads, pathology,
//! the end of a case (exclusion or withdrawal), data queries and the
//! diagnostic report.

use super::form::{SignForm, Signatures};
use crate::api::cases::CaseData;
use crate::i18n::{t, t_with};
use crate::pages::viewer::Viewer;
use crate::pages::SigningSecret;
use crate::pages::{opt, state_label};
use leptos::prelude::*;
use osteo_trial::case::bonerads::{Features, Margin, Periosteal, Score};
use osteo_trial::case::crf::*;
use osteo_trial::case::pathology::{Procedure, WHO_2020};
use osteo_trial::case::{CaseEnd, CaseState, QueryStatus, WithdrawalReason};
use osteo_trial::screening::ExclusionCode;

/// The radiologist's reading workstation: the views in their hanging order
/// beside the clinical summary and the read form (stacked on a narrow
/// screen). Everything is a plain form; with JavaScript the points and the
/// category follow the fields as they are scored.
#[component]
pub(crate) fn Workstation(v: CaseData) -> impl IntoView {
    let images = super::viewer_images(&v);
    view! {
        <div class="workstation" id="workstation">
            <section class="ws-views" id="images" aria-label=t("workstation.views")>
                {if images.is_empty() {
                    view! { <p class="muted">{t("images.none")}</p> }.into_any()
                } else {
                    view! { <Viewer images=images/> }.into_any()
                }}
            </section>
            <div class="ws-read">
                <ClinicalSummary v=v.clone()/>
                <ReadSection v=v/>
            </div>
        </div>
    }
}

/// The clinical fields the reader may see, folded into a compact list.
#[component]
fn ClinicalSummary(v: CaseData) -> impl IntoView {
    let fields: Vec<(String, String)> = v
        .detail
        .crf
        .as_ref()
        .map(|c| {
            c.data
                .field_values()
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(k, value)| {
                    let shown = value
                        .split(',')
                        .map(|part| opt(part.trim()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (t(&format!("field.{k}")), shown)
                })
                .collect()
        })
        .unwrap_or_default();
    view! {
        <details class="card clinical" id="clinical-summary" open=true>
            <summary>{t("read.clinical")}</summary>
            <dl class="summary-list">
                {fields.into_iter().map(|(k, value)| view! { <dt>{k}</dt><dd>{value}</dd> }).collect_view()}
            </dl>
        </details>
    }
}

#[component]
pub(crate) fn ReadSection(v: CaseData) -> impl IntoView {
    let id = v.detail.summary.id;
    let mine = v
        .detail
        .reads
        .iter()
        .find(|r| r.reader == v.username)
        .cloned();
    let can_edit = v.can_read
        && v.detail.summary.state == CaseState::CrfComplete
        && mine.as_ref().is_none_or(|r| !r.is_locked())
        && !v.locked;
    let input = mine.as_ref().and_then(|r| r.input.clone());
    let echo = v.echo.clone().filter(|e| e.form == format!("read:{id}"));
    // A failed post's values win over the stored draft.
    let echoed = |name: &str| echo.as_ref().map(|e| e.value(name));
    let get = |name: &str, f: &dyn Fn(&osteo_trial::case::ReadInput) -> String| {
        echoed(name).unwrap_or_else(|| input.as_ref().map(f).unwrap_or_default())
    };
    let margin = get("margin", &|i| {
        i.features
            .margin
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "none".into())
    });
    let periosteal = get("periosteal", &|i| i.features.periosteal.as_str().to_owned());
    let erosion = get("endosteal_erosion", &|i| {
        i.features.endosteal_erosion.as_str().to_owned()
    });
    let likelihood = get("likelihood", &|i| i.likelihood.to_string());
    let call = get("call", &|i| i.call.as_str().to_owned());
    let flag = |name: &str, f: &dyn Fn(&osteo_trial::case::ReadInput) -> bool| match echoed(name) {
        Some(v) => v == "true",
        None => input.as_ref().is_some_and(f),
    };
    let flags = (
        flag("pathological_fracture", &|i| {
            i.features.pathological_fracture
        }),
        flag("soft_tissue_mass", &|i| i.features.soft_tissue_mass),
        flag("known_primary_malignancy", &|i| {
            i.features.known_primary_malignancy
        }),
    );
    let comment = get("comment", &|i| i.comment.clone().unwrap_or_default());
    let read_error = echo.as_ref().map(|e| e.message.clone());
    view! {
        <details class="card" id="read" open=true>
            <summary>{t("read.title")} {v.rule_version.clone().map(|r| format!(" · {r}"))}</summary>
            {v.can_read.then(|| view! { <p class="muted">{t("read.blinded")}</p> })}
            <table class="dense" id="reads">
                <thead><tr><th>{t("read.reader")}</th><th>{t("read.points")}</th><th>{t("read.category")}</th>
                    <th>{t("read.likelihood")}</th><th>{t("read.call")}</th><th>{t("read.status")}</th></tr></thead>
                <tbody>
                    {v.detail.reads.iter().map(|r| view! {
                        <tr>
                            <td>{r.reader_name.clone()}</td>
                            <td>{r.score.and_then(|s| s.points)}</td>
                            <td id=format!("bone-rads-{}", r.reader)>{r.score.map(|s| format!("Bone-RADS {}", s.category))}</td>
                            <td>{r.input.as_ref().map(|i| i.likelihood)}</td>
                            <td>{r.input.as_ref().map(|i| opt(i.call.as_str()))}</td>
                            <td>{if r.is_locked() { t("read.signed") } else { t("read.draft") }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {read_error.map(|m| view! { <p class="error" role="alert" id="read-error">{t("read.not_saved")} " " {m}</p> })}
            {can_edit.then(|| {
                // The live score: the fields as signals, scored in the browser
                // with the study's rule table (the server scores again on saving).
                // A list with nothing chosen shows (and posts) its first option.
                let or_first = |v: &str, first: &str| if v.is_empty() { first.to_owned() } else { v.to_owned() };
                let margin_s = RwSignal::new(or_first(&margin, "none"));
                let periosteal_s = RwSignal::new(or_first(&periosteal, Periosteal::ALL[0].as_str()));
                let erosion_s = RwSignal::new(or_first(&erosion, ErosionDepth::ALL[0].as_str()));
                let (fracture_s, mass_s, primary_s) =
                    (RwSignal::new(flags.0), RwSignal::new(flags.1), RwSignal::new(flags.2));
                let table = v.rule_table.clone();
                let live = move || {
                    let table = table.as_ref()?;
                    let features = Features {
                        margin: margin_s.get().parse().ok(),
                        periosteal: periosteal_s.get().parse().ok()?,
                        endosteal_erosion: erosion_s.get().parse().ok()?,
                        pathological_fracture: fracture_s.get(),
                        soft_tissue_mass: mass_s.get(),
                        known_primary_malignancy: primary_s.get(),
                    };
                    Some(table.score(&features))
                };
                let score_text = move || match live() {
                    Some(Score { points: Some(p), category }) => format!("{} {p} · Bone-RADS {category}", t("read.points")),
                    Some(Score { points: None, .. }) => "Bone-RADS 0".to_owned(),
                    None => String::new(),
                };
                // With JavaScript, each change keeps the draft on the server.
                let draft = RwSignal::new(String::new());
                // The form has the focus when the page opens (`autofocus`
                // without the script; once hydrated, the script sets it).
                let first_field = NodeRef::<leptos::html::Select>::new();
                Effect::new(move |_| {
                    if let Some(el) = first_field.get() {
                        let _ = el.focus();
                    }
                });
                view! {
                <form method="post" action=format!("/cases/{id}/read") class="grid read-form" id="read-form"
                    on:change=move |_| keep_draft(id, draft)>
                    <label>{t("field.margin")}
                        <select name="margin" id="f-margin" autofocus=true node_ref=first_field on:change=move |ev| margin_s.set(event_target_value(&ev))>
                            <option value="none" selected={margin == "none"}>{t("read.not_assessable")}</option>
                            {Margin::ALL.iter().map(|m| view! { <option value=m.as_str() selected={m.as_str() == margin}>{m.as_str()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("field.periosteal")}
                        <select name="periosteal" id="f-periosteal" on:change=move |ev| periosteal_s.set(event_target_value(&ev))>
                            {Periosteal::ALL.iter().map(|p| view! { <option value=p.as_str() selected={p.as_str() == periosteal}>{opt(p.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("field.endosteal_erosion")}
                        <select name="endosteal_erosion" id="f-endosteal" on:change=move |ev| erosion_s.set(event_target_value(&ev))>
                            {ErosionDepth::ALL.iter().map(|e| view! { <option value=e.as_str() selected={e.as_str() == erosion}>{opt(e.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" name="pathological_fracture" id="f-fracture" value="true" checked=flags.0
                        on:change=move |ev| fracture_s.set(event_target_checked(&ev))/>{t("field.pathological_fracture")}</label>
                    <label class="check"><input type="checkbox" name="soft_tissue_mass" id="f-mass" value="true" checked=flags.1
                        on:change=move |ev| mass_s.set(event_target_checked(&ev))/>{t("field.soft_tissue_mass")}</label>
                    <label class="check"><input type="checkbox" name="known_primary_malignancy" id="f-primary" value="true" checked=flags.2
                        on:change=move |ev| primary_s.set(event_target_checked(&ev))/>{t("field.known_primary_malignancy")}</label>
                    <p class="live-score"><output id="live-score" for="f-margin f-periosteal f-endosteal f-fracture f-mass f-primary" aria-live="polite">{score_text}</output></p>
                    <label>{t("read.likelihood")}<input type="number" name="likelihood" id="f-likelihood" min="0" max="100" value=likelihood.clone() required/></label>
                    <label>{t("read.call")}
                        <select name="call" id="f-call">
                            <option value="benign" selected={call == "benign"}>{opt("benign")}</option>
                            <option value="malignant" selected={call == "malignant"}>{opt("malignant")}</option>
                        </select>
                    </label>
                    <label>{t("read.comment")}<input name="comment" id="f-read-comment" maxlength="1000" value=comment.clone()/></label>
                    <fieldset class="sign" id="read-sign">
                        <legend>{t("read.sign_next_legend")}</legend>
                        <SigningSecret/>
                        // The first button is the one Enter presses.
                        <button type="submit" id="read-sign-next" formaction=format!("/cases/{id}/read/sign-next")>{t("read.sign_next")}</button>
                        " "
                        <button type="submit" id="read-save" class="secondary" formnovalidate=true>{t("read.save_draft")}</button>
                        <small class="muted">{t("sign.statement")}</small>
                        <p class="muted" id="draft-status" aria-live="polite">{move || draft.get()}</p>
                    </fieldset>
                </form>
                }
            })}
            {v.worklist_left.map(|n| view! {
                <p class="muted" id="worklist-left">{t_with("read.left", &[("n", &n.to_string())])}</p>
            })}
        </details>
    }
    .into_any()
}

/// Where the workstation's draft saving stands (see [`keep_draft`]).
#[cfg(feature = "hydrate")]
#[derive(Clone, Copy, PartialEq)]
enum DraftSave {
    Idle,
    Sending,
    /// A save is in flight and the form changed since it was sent.
    SendingChanged,
}

#[cfg(feature = "hydrate")]
thread_local! {
    static DRAFT_SAVE: std::cell::Cell<DraftSave> = const { std::cell::Cell::new(DraftSave::Idle) };
}

/// Keeps the read in progress on the server as a draft (the workstation's
/// script, on each change), once it is a whole read: the likelihood given.
/// Says on the page whether it was kept.
///
/// One save is in flight at a time. A change made meanwhile is sent when
/// it ends, with the form's values as they are then: two saves never race,
/// so an older draft can never land after a newer one, and "kept" is only
/// said of the form's latest values. Only the read form of `case_id` is
/// sent: the page may have moved to another case while a save was in
/// flight.
#[cfg(feature = "hydrate")]
fn keep_draft(case_id: i64, status: RwSignal<String>) {
    use wasm_bindgen::JsCast;
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let this_case = format!("/cases/{case_id}/read");
    let form_action = doc
        .get_element_by_id("read-form")
        .and_then(|f| f.get_attribute("action"));
    if form_action.as_deref() != Some(this_case.as_str()) {
        return;
    }
    if DRAFT_SAVE.with(|d| d.get()) != DraftSave::Idle {
        DRAFT_SAVE.with(|d| d.set(DraftSave::SendingChanged));
        status.set(t("read.draft_saving"));
        return;
    }
    let value = |id: &str| -> Option<String> {
        let el = doc.get_element_by_id(id)?;
        if let Some(s) = el.dyn_ref::<web_sys::HtmlSelectElement>() {
            return Some(s.value());
        }
        el.dyn_ref::<web_sys::HtmlInputElement>().map(|i| {
            if i.type_() == "checkbox" {
                if i.checked() {
                    "true".into()
                } else {
                    String::new()
                }
            } else {
                i.value()
            }
        })
    };
    let whole = value("f-likelihood")
        .and_then(|l| l.parse::<u8>().ok())
        .is_some_and(|l| l <= 100);
    if !whole {
        // Not a whole read: nothing is kept of the form as it is now.
        status.set(String::new());
        return;
    }
    let body = [
        ("margin", "f-margin"),
        ("periosteal", "f-periosteal"),
        ("endosteal_erosion", "f-endosteal"),
        ("pathological_fracture", "f-fracture"),
        ("soft_tissue_mass", "f-mass"),
        ("known_primary_malignancy", "f-primary"),
        ("likelihood", "f-likelihood"),
        ("call", "f-call"),
        ("comment", "f-read-comment"),
    ]
    .iter()
    .filter_map(|(name, id)| {
        value(id)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{name}={}", String::from(js_sys::encode_uri_component(&v))))
    })
    .collect::<Vec<_>>()
    .join("&");
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return;
    };
    if xhr
        .open("POST", &format!("/cases/{case_id}/read/draft"))
        .is_err()
    {
        return;
    }
    let _ = xhr.set_request_header("Content-Type", "application/x-www-form-urlencoded");
    let answered = xhr.clone();
    let on_end = wasm_bindgen::closure::Closure::once_into_js(move || {
        if DRAFT_SAVE.with(|d| d.replace(DraftSave::Idle)) == DraftSave::SendingChanged {
            keep_draft(case_id, status);
            return;
        }
        let kept = answered.status().unwrap_or(0) == 204;
        status.set(t(if kept {
            "read.draft_kept"
        } else {
            "read.draft_not_kept"
        }));
    });
    xhr.set_onloadend(Some(on_end.unchecked_ref()));
    if xhr.send_with_opt_str(Some(&body)).is_ok() {
        DRAFT_SAVE.with(|d| d.set(DraftSave::Sending));
        status.set(t("read.draft_saving"));
    }
}

/// Without the script, "Save draft" keeps the draft.
#[cfg(not(feature = "hydrate"))]
fn keep_draft(_case_id: i64, _status: RwSignal<String>) {}

#[component]
pub(crate) fn PathologySection(v: CaseData) -> impl IntoView {
    let id = v.detail.summary.id;
    let state = v.detail.summary.state;
    let current = v.detail.pathology.clone();
    let open_form = v.can_enter
        && !v.locked
        && matches!(
            state,
            CaseState::AiLocked | CaseState::PathologyEntered | CaseState::Complete
        );
    let gate = v.can_enter && !state.reached(CaseState::AiLocked) && !state.is_final();
    let echo = v
        .echo
        .clone()
        .filter(|e| e.form == format!("pathology:{id}"));
    let value = |name: &str| echo.as_ref().map(|e| e.value(name)).unwrap_or_default();
    let (entity, procedure, date, pathologist, comment, reason) = (
        value("entity"),
        value("procedure"),
        value("specimen_date"),
        value("pathologist"),
        value("comment"),
        value("reason"),
    );
    let error = echo.as_ref().map(|e| e.message.clone());
    view! {
        <details class="card" id="pathology" open=true>
            <summary>{t("pathology.title")}</summary>
            {gate.then(|| view! { <p class="muted" id="pathology-gate">{t("pathology.gate")}</p> })}
            {error.map(|m| view! { <p class="error" role="alert" id="pathology-error">{t("pathology.not_saved")} " " {m}</p> })}
            {current.clone().map(|p| view! {
                <p id="pathology-current"><strong>{p.pathology.entity_name.clone()}</strong>
                    " · /" {p.pathology.behaviour.as_str()} " · " {opt(p.pathology.tier.as_str())} " · "
                    {opt(p.pathology.procedure.as_str())} " " {p.pathology.specimen_date.clone()} " · " {p.pathology.pathologist.clone()}
                    " · v" {p.version}</p>
                <Signatures list=p.signatures.clone()/>
            })}
            {open_form.then(|| view! {
                <form method="post" action=format!("/cases/{id}/pathology") class="grid" id="pathology-form">
                    <label>{t("pathology.entity")}
                        <select name="entity" id="f-entity" required>
                            {WHO_2020.iter().map(|e| view! {
                                <option value=e.code selected={e.code == entity}>{e.name} " /" {e.behaviour.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{t("pathology.procedure")}
                        <select name="procedure">
                            {Procedure::ALL.iter().map(|p| view! { <option value=p.as_str() selected={p.as_str() == procedure}>{opt(p.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("pathology.specimen_date")}<input type="date" name="specimen_date" id="f-specimen-date" max=v.latest.clone() value=date required/></label>
                    <label>{t("pathology.pathologist")}<input name="pathologist" id="f-pathologist" maxlength="200" value=pathologist required/></label>
                    <label>{t("pathology.comment")}<input name="comment" maxlength="1000" value=comment/></label>
                    {current.is_some().then(|| view! { <label>{t("crf.reason")}<input name="reason" maxlength="500" value=reason required/></label> })}
                    <button type="submit" id="pathology-save">{t("pathology.save")}</button>
                </form>
                {(current.as_ref().is_some_and(|p| p.signatures.is_empty()) && v.can_sign_pathology).then(|| view! {
                    <SignForm action=format!("/cases/{id}/pathology/sign") id="pathology-sign" meanings=true/>
                })}
            })}
        </details>
    }
    .into_any()
}

/// How a case leaves the study: an eligibility exclusion (the coordinator,
/// until the reads lock), a coded withdrawal (the PI with a signature, until
/// pathology is entered), and the record of an end once there is one.
#[component]
pub(crate) fn EndSection(v: CaseData) -> impl IntoView {
    let s = v.detail.summary.clone();
    let id = s.id;
    let open = !s.state.is_final() && !v.locked;
    let before_reads = !s.state.reached(CaseState::ReadsLocked) && open;
    let before_pathology = !s.state.reached(CaseState::PathologyEntered) && open;
    let exclude = v.can_enter && before_reads;
    let withdraw = v.can_withdraw && before_pathology;
    let note = v.can_enter && !before_reads && before_pathology;
    let record = v.detail.end.clone();
    let ended = record.is_some();
    (exclude || withdraw || note || ended).then(|| view! {
        <details class="card" id="end-case" open={!v.detail.quality_marks.is_empty() || ended}>
            <summary>{t("end.title")}</summary>
            {record.map(|e| {
                let (kind, code) = match e.end {
                    CaseEnd::Withdrawn(r) => (t("end.withdrawn"), opt(r.as_str())),
                    CaseEnd::Excluded(c) => (t("end.excluded"), c.as_str().to_owned()),
                };
                view! {
                    <p id="end-record"><strong>{kind} " — " {code}</strong> " · " {t("end.from_state")} " "
                        <span id="end-from">{state_label(e.from_state)}</span> " · " {e.by.clone()} " · "
                        {e.at.get(..16).unwrap_or_default().replace('T', " ")} " · " {e.reason.clone()}
                        {e.signed_by.map(|n| view! { " · " {t("end.signed_by")} " " {n} })}</p>
                }
            })}
            {exclude.then(|| view! {
                <form method="post" action=format!("/cases/{id}/end") class="grid" id="exclude-form">
                    <label>{t("end.how")}
                        <select name="code">
                            {ExclusionCode::ALL.iter().map(|c| view! { <option value=format!("excluded:{}", c.as_str())
                                selected={*c == ExclusionCode::E1 && !v.detail.quality_marks.is_empty()}>{t("end.excluded")} " — " {c.as_str()} " " {t(&format!("screening.code.{}", c.as_str()))}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("crf.reason")}<input name="reason" maxlength="500" required/></label>
                    <button type="submit" class="danger" id="exclude-submit">{t("end.exclude")}</button>
                </form>
            })}
            {note.then(|| view! { <p class="muted" id="end-after-reads">{t("end.after_reads")}</p> })}
            {withdraw.then(|| view! {
                <form method="post" action=format!("/cases/{id}/end") class="grid sign" id="withdraw-form">
                    <label>{t("end.how")}
                        <select name="code">
                            {WithdrawalReason::ALL.iter().map(|r| view! { <option value=format!("withdrawn:{}", r.as_str())>{t("end.withdrawn")} " — " {opt(r.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("crf.reason")}<input name="reason" maxlength="500" required/></label>
                    <SigningSecret/>
                    <button type="submit" class="danger" id="withdraw-submit">{t("end.withdraw")}</button>
                    <small class="muted">{t("end.withdraw_statement")}</small>
                </form>
            })}
        </details>
    })
}

#[component]
pub(crate) fn QueriesSection(v: CaseData) -> impl IntoView {
    let id = v.detail.summary.id;
    let show = v.can_query || v.can_answer || !v.queries.is_empty();
    show.then(|| view! {
        <details class="card" id="queries" open=!v.queries.is_empty()>
            <summary>{t("queries.title")} " (" {v.queries.iter().filter(|q| matches!(q.status, QueryStatus::Open | QueryStatus::Answered)).count()} ")"</summary>
            {v.queries.iter().map(|q| {
                let qid = q.id;
                let actions: Vec<&'static str> = match q.status {
                    QueryStatus::Open if v.can_answer => vec!["answer"],
                    QueryStatus::Open if v.can_query => vec!["cancel"],
                    QueryStatus::Answered if v.can_query => vec!["close", "reopen"],
                    _ => vec![],
                };
                view! {
                    <div class="query">
                        <p><strong>{t(&format!("field.{}", q.field))}</strong> " · " <span class="badge">{t(&format!("query.{}", q.status.as_str()))}</span></p>
                        <ul>{q.messages.iter().map(|m| view! { <li><em>{m.by.clone()}</em> " (" {t(&format!("query.{}", m.action))} "): " {m.text.clone()}</li> }).collect_view()}</ul>
                        {(!actions.is_empty() && !v.locked).then(|| view! {
                            <form method="post" action=format!("/queries/{qid}?case={id}") class="grid">
                                <input name="text" maxlength="2000" required placeholder=t("queries.text")/>
                                {actions.into_iter().map(|a| view! { <button type="submit" name="action" value=a>{t(&format!("query.{a}"))}</button> }).collect_view()}
                            </form>
                        })}
                    </div>
                }
            }).collect_view()}
            {(v.can_query && !v.locked).then(|| view! {
                <form method="post" action=format!("/cases/{id}/queries") class="grid" id="query-form">
                    <label>{t("queries.field")}
                        <select name="field">
                            {["case", "images", "read", "pathology"].into_iter().chain(ClinicalCrf::FIELDS).map(|f| view! { <option value=f>{t(&format!("field.{f}"))}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("queries.text")}<input name="text" maxlength="2000" required/></label>
                    <button type="submit">{t("queries.raise")}</button>
                </form>
            })}
        </details>
    }.into_any())
}

/// The per-case diagnostic report (once the prediction is locked, for the
/// roles that see AI output): the primary reader's Bone-RADS features,
/// points, category and management suggestion, the AI probability and call
/// with the model card, and the views with their heat maps.
#[component]
pub(crate) fn DiagnosticReport(v: CaseData) -> impl IntoView {
    let id = v.detail.summary.id;
    // The primary reader is the first reader assigned.
    let primary = v.detail.readers.first();
    let read = v
        .detail
        .reads
        .iter()
        .find(|r| r.is_locked() && Some(&r.reader) == primary)
        .or_else(|| v.detail.reads.iter().find(|r| r.is_locked()))
        .cloned();
    let prediction = v.detail.prediction.clone();
    let yes_no = |b: bool| opt(if b { "true" } else { "false" });
    view! {
        <details class="card" id="diagnostic-report" open=true>
            <summary>{t("report.title")}</summary>
            {v.model.as_ref().and_then(|m| m.label.clone()).map(|label| view! { <p class="warning">{label}</p> })}
            <h3>{t("report.bonerads")}</h3>
            {match read.as_ref().and_then(|r| r.input.clone().zip(r.score).map(|(i, s)| (r.reader_name.clone(), i, s))) {
                None => view! { <p class="muted">"—"</p> }.into_any(),
                Some((reader, input, score)) => {
                    let f = input.features;
                    view! {
                        <table id="report-features">
                            <tr><th>{t("read.reader")}</th><td>{reader}</td></tr>
                            <tr><th>{t("field.margin")}</th><td>{f.margin.map(|m| m.as_str().to_owned()).unwrap_or_else(|| t("read.not_assessable"))}</td></tr>
                            <tr><th>{t("field.periosteal")}</th><td>{opt(f.periosteal.as_str())}</td></tr>
                            <tr><th>{t("field.erosion_depth")}</th><td>{opt(f.endosteal_erosion.as_str())}</td></tr>
                            <tr><th>{t("field.pathological_fracture")}</th><td>{yes_no(f.pathological_fracture)}</td></tr>
                            <tr><th>{t("field.soft_tissue_mass")}</th><td>{yes_no(f.soft_tissue_mass)}</td></tr>
                            <tr><th>{t("field.known_primary_malignancy")}</th><td>{yes_no(f.known_primary_malignancy)}</td></tr>
                            <tr><th>{t("read.points")}</th><td>{score.points.map(|p| p.to_string()).unwrap_or_else(|| "—".into())}</td></tr>
                            <tr><th>{t("read.category")}</th><td id="report-category">{format!("Bone-RADS {}", score.category)}</td></tr>
                            <tr><th>{t("report.management")}</th><td id="report-management">{t(&format!("report.management.{}", score.category))}</td></tr>
                        </table>
                    }.into_any()
                }
            }}
            <h3>{t("report.ai")}</h3>
            {prediction.map(|p| view! {
                <p id="report-ai"><strong>{format!("{:.1}%", p.input.probability.get() * 100.0)}</strong> " · " {opt(p.call.as_str())}
                    " (" {t("ai.threshold")} " " {format!("{:.1}%", p.input.threshold.get() * 100.0)} ")"</p>
                <p class="muted">{t("report.calibration")}</p>
                <p><a href=format!("/cases/{id}/report.pdf") id="report-pdf" download>{t("report.pdf")}</a></p>
                {v.model.as_ref().map(|m| view! {
                    <p class="muted">{t("report.model")} " " <code>{m.model_id.clone()}</code> " · " {m.training_data.clone()}
                        " · " {t("ai.card")} " " {format!("{:.3}", m.validation_auc)}</p>
                })}
                <div class="views">
                    // Heat map n belongs to the n-th view the model read.
                    {p.input.image_sha256.iter().take(p.input.heatmaps.len()).enumerate().map(|(n, sha)| {
                        let view = v.detail.images.iter().find(|i| sha == &i.sha256).map(|i| opt(i.view.as_str()));
                        view! {
                            <figure>
                                <img src=format!("/images/{sha}/preview.png?size=320") alt=t("report.view") width="240" loading="lazy"/>
                                <img src=format!("/cases/{id}/heatmaps/{n}") alt=t("ai.heatmap") width="240" loading="lazy"/>
                                <figcaption>{view}</figcaption>
                            </figure>
                        }
                    }).collect_view()}
                </div>
            })}
        </details>
    }
}
