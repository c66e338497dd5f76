//! The case pages: the worklist and case list, one case with each step's
//! form for the roles that take it, the operational dashboard, and the study
//! page (settings, database lock). Every form is a plain post; a failed one
//! comes back with what was typed and the problems beside the fields.

use super::error_text;
use super::upload::Uploader;
use super::viewer::{Viewer, ViewerImage};
use crate::api::cases::{case_view, cases_view, dashboard_view, study_view, CaseData};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use osteo_trial::case::bonerads::{Margin, Periosteal};
use osteo_trial::case::crf::*;
use osteo_trial::case::pathology::{Procedure, WHO_2020};
use osteo_trial::case::BoneRadsSource;
use osteo_trial::case::{
    CaseEnd, CaseState, CaseSummary, FormEcho, QueryStatus, SignatureMeaning, WithdrawalReason,
};
use osteo_trial::screening::ExclusionCode;
use osteo_trial::study::LockKind;

/// The label of a code (`opt.<code>`), or the code itself.
fn opt(code: &str) -> String {
    let key = format!("opt.{code}");
    let s = t(&key);
    if s == key {
        code.to_owned()
    } else {
        s
    }
}

/// The case's views for the viewer, each with its heat map when the
/// prediction is locked and the role may see it (heat map n belongs to the
/// n-th view the model read).
fn viewer_images(v: &CaseData) -> Vec<ViewerImage> {
    let read: &[String] = v.detail.prediction.as_ref().map_or(&[], |p| {
        &p.input.image_sha256[..p.input.heatmaps.len().min(p.input.image_sha256.len())]
    });
    let id = v.detail.summary.id;
    v.detail
        .images
        .iter()
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

fn state_label(s: CaseState) -> String {
    t(&format!("state.{}", s.as_str()))
}

#[component]
fn CaseTable(cases: Vec<CaseSummary>, id: &'static str) -> impl IntoView {
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

#[component]
pub fn CasesPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| cases_view());
    view! {
        <section>
            <h1>{t("cases.title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => view! {
                            <h2>{t("cases.worklist")}</h2>
                            {if v.worklist.is_empty() {
                                view! { <p class="muted" id="worklist-empty">{t("cases.nothing_due")}</p> }.into_any()
                            } else {
                                view! { <CaseTable cases=v.worklist.clone() id="worklist"/> }.into_any()
                            }}
                            {v.all.clone().map(|all| view! {
                                <h2>{t("cases.all")}</h2>
                                <CaseTable cases=all id="all-cases"/>
                            })}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// A form field's value and problem, from a failed post or the record.
struct Values {
    values: Vec<(String, String)>,
    echo: Option<FormEcho>,
}

impl Values {
    fn get(&self, name: &str) -> String {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn issue(&self, name: &str) -> Option<String> {
        self.echo.as_ref().and_then(|e| {
            e.issues.iter().find(|i| i.field == name).map(|i| {
                let key = format!("crf.problem.{}", i.code);
                let text = t(&key);
                if text == key {
                    i.message.clone()
                } else {
                    text
                }
            })
        })
    }
}

fn select(
    v: &Values,
    name: &'static str,
    codes: Vec<&'static str>,
    disabled: bool,
) -> impl IntoView {
    let current = v.get(name);
    let issue = v.issue(name);
    let invalid = issue.is_some();
    view! {
        <label class:invalid=invalid>{t(&format!("field.{name}"))}
            <select name=name id=format!("f-{name}") disabled=disabled aria-invalid=invalid.then_some("true")>
                <option value="" selected=current.is_empty()>"—"</option>
                {codes.into_iter().map(|c| view! { <option value=c selected={c == current}>{opt(c)}</option> }).collect_view()}
            </select>
            {issue.map(|m| view! { <small class="field-error" role="alert">{m}</small> })}
        </label>
    }
}

fn yes_no(v: &Values, name: &'static str, disabled: bool) -> impl IntoView {
    select(v, name, vec!["true", "false"], disabled)
}

fn input(
    v: &Values,
    name: &'static str,
    kind: &'static str,
    extra_max: Option<String>,
    disabled: bool,
) -> impl IntoView {
    let issue = v.issue(name);
    let invalid = issue.is_some();
    view! {
        <label class:invalid=invalid>{t(&format!("field.{name}"))}
            <input type=kind name=name id=format!("f-{name}") value=v.get(name) max=extra_max disabled=disabled
                aria-invalid=invalid.then_some("true")/>
            {issue.map(|m| view! { <small class="field-error" role="alert">{m}</small> })}
        </label>
    }
}

fn codes<T: Copy + 'static>(all: &'static [T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|c| f(*c)).collect()
}

#[component]
fn CrfForm(v: CaseData) -> impl IntoView {
    let id = v.detail.summary.id;
    let crf = v.detail.crf.clone();
    let echo = v.echo.clone().filter(|e| e.form == format!("crf:{id}"));
    let values = match (&echo, &crf) {
        (Some(e), _) => e.values.clone(),
        (None, Some(c)) => {
            let mut pairs: Vec<(String, String)> = c
                .data
                .field_values()
                .into_iter()
                .filter(|(k, _)| *k != "symptoms")
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            pairs.extend(
                c.data
                    .symptoms
                    .iter()
                    .map(|s| ("symptoms".to_owned(), s.as_str().to_owned())),
            );
            pairs
        }
        (None, None) => Vec::new(),
    };
    let vals = Values {
        values,
        echo: echo.clone(),
    };
    let state = v.detail.summary.state;
    let frozen = state.reached(CaseState::AiLocked);
    // After the AI lock the PI amends the model inputs (a signed deviation);
    // the coordinator still corrects the other fields.
    let amend = v.can_amend && frozen && !v.locked;
    let editable = (v.can_enter || amend)
        && !v.locked
        && !matches!(state, CaseState::Withdrawn | CaseState::Excluded);
    let ro = !editable;
    let action = if amend {
        format!("/cases/{id}/crf/amend")
    } else {
        format!("/cases/{id}/crf")
    };
    let frozen_fields = FROZEN_AT_AI_LOCK
        .iter()
        .map(|f| t(&format!("field.{f}")))
        .collect::<Vec<_>>()
        .join(", ");
    let deviations = v.detail.deviations.clone();
    let complete = crf.as_ref().is_some_and(|c| c.complete);
    let symptoms = vals.all("symptoms");
    let signatures = crf
        .as_ref()
        .map(|c| c.signatures.clone())
        .unwrap_or_default();
    view! {
        <details class="card" id="crf" open=true>
            <summary>
                {t("crf.title")} " "
                {match &crf {
                    None => view! { <span class="badge">{t("crf.empty")}</span> }.into_any(),
                    Some(c) => view! {
                        <span class="badge" id="crf-status">{if c.complete { t("crf.complete") } else { t("crf.draft") }} " v" {c.version}</span>
                    }.into_any(),
                }}
            </summary>
            {echo.as_ref().map(|e| view! { <p class="error" role="alert" id="crf-error">{t("crf.not_saved")} " " {e.message.clone()}</p> })}
            {frozen.then(|| view! {
                <p class="warning" id="crf-frozen">"🔒 " {t("crf.frozen")} " " <strong>{frozen_fields.clone()}</strong></p>
            })}
            <form method="post" action=action class="grid" id="crf-form">
                <fieldset class="grid"><legend>{t("crf.patient")}</legend>
                    {input(&vals, "age_years", "number", None, ro)}
                    {select(&vals, "sex", codes(Sex::ALL, Sex::as_str), ro)}
                    <fieldset class="codes"><legend>{t("field.symptoms")}</legend>
                        {Symptom::ALL.iter().map(|s| view! {
                            <label class="check"><input type="checkbox" name="symptoms" value=s.as_str()
                                checked=symptoms.iter().any(|x| x == s.as_str()) disabled=ro/>{opt(s.as_str())}</label>
                        }).collect_view()}
                    </fieldset>
                    {input(&vals, "symptom_onset_date", "date", Some(v.latest.clone()), ro)}
                    {yes_no(&vals, "pathological_fracture", ro)}
                    {yes_no(&vals, "known_primary_malignancy", ro)}
                    {select(&vals, "lesion_count", codes(LesionCount::ALL, LesionCount::as_str), ro)}
                    {select(&vals, "physis", codes(Physis::ALL, Physis::as_str), ro)}
                </fieldset>
                <fieldset class="grid"><legend>{t("crf.location")}</legend>
                    {select(&vals, "bone", codes(Bone::ALL, Bone::as_str), ro)}
                    {select(&vals, "side", codes(Side::ALL, Side::as_str), ro)}
                    {select(&vals, "longitudinal", codes(Longitudinal::ALL, Longitudinal::as_str), ro)}
                    {select(&vals, "transverse", codes(Transverse::ALL, Transverse::as_str), ro)}
                </fieldset>
                <fieldset class="grid"><legend>{t("crf.lesion")}</legend>
                    {input(&vals, "radiograph_date", "date", Some(v.latest.clone()), ro)}
                    {select(&vals, "density", codes(Density::ALL, Density::as_str), ro)}
                    {input(&vals, "size_mm", "number", None, ro)}
                    {yes_no(&vals, "expansion", ro)}
                    {select(&vals, "matrix", codes(Matrix::ALL, Matrix::as_str), ro)}
                    {select(&vals, "cortex", codes(Cortex::ALL, Cortex::as_str), ro)}
                    {select(&vals, "erosion_depth", codes(ErosionDepth::ALL, ErosionDepth::as_str), ro)}
                    {yes_no(&vals, "soft_tissue_mass", ro)}
                </fieldset>
                {(editable && !amend).then(|| view! {
                    {complete.then(|| view! {
                        <label>{t("crf.reason")}<input name="reason" id="crf-reason" maxlength="500" value=vals.get("reason")/></label>
                    })}
                    <div class="actions">
                        {(!complete).then(|| view! { <button type="submit" name="action" value="draft" class="secondary" id="crf-draft">{t("crf.save_draft")}</button> })}
                        <button type="submit" name="action" value="complete" id="crf-complete">{if complete { t("crf.save_change") } else { t("crf.mark_complete") }}</button>
                    </div>
                })}
                {amend.then(|| view! {
                    <label>{t("crf.reason")}<input name="reason" id="crf-reason" maxlength="500" required value=vals.get("reason")/></label>
                    <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
                    <small class="muted">{t("crf.deviation_statement")}</small>
                    <div class="actions">
                        <button type="submit" id="crf-amend" class="danger">{t("crf.amend")}</button>
                    </div>
                })}
            </form>
            {(!deviations.is_empty()).then(|| view! {
                <h3>{t("deviation.title")}</h3>
                <table class="dense" id="deviations">
                    <thead><tr><th>{t("deviation.field")}</th><th>{t("deviation.old")}</th><th>{t("deviation.new")}</th>
                        <th>{t("crf.reason")}</th><th>{t("deviation.signed")}</th></tr></thead>
                    <tbody>{deviations.iter().map(|d| view! {
                        <tr><td>{t(&format!("field.{}", d.field))}</td><td>{d.old_value.clone()}</td><td>{d.new_value.clone()}</td>
                            <td>{d.reason.clone()}</td><td>{d.signed_by.clone()} " · " {d.at.get(..16).unwrap_or_default().replace('T', " ")}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            })}
            <Signatures list=signatures/>
            {(v.can_sign && complete && !v.locked).then(|| view! {
                <SignForm action=format!("/cases/{id}/crf/sign") id="crf-sign" meanings=true/>
            })}
        </details>
    }
    .into_any()
}

#[component]
fn Signatures(list: Vec<osteo_trial::case::Signature>) -> impl IntoView {
    (!list.is_empty()).then(|| view! {
        <ul class="signatures">
            {list.into_iter().map(|s| view! {
                <li class="signature">"✔ " <strong>{s.printed_name}</strong> " (" {s.username} ") · "
                    {t(&format!("meaning.{}", s.meaning.as_str()))} " · " {s.signed_at.get(..19).unwrap_or_default().replace('T', " ")} " UTC"</li>
            }).collect_view()}
        </ul>
    })
}

/// The signature form: the password again and, where it varies, the meaning.
#[component]
fn SignForm(action: String, id: &'static str, meanings: bool) -> impl IntoView {
    view! {
        <form method="post" action=action class="grid sign" id=id>
            {meanings.then(|| view! {
                <label>{t("sign.meaning")}
                    <select name="meaning">
                        {SignatureMeaning::ALL.iter().map(|m| view! { <option value=m.as_str()>{t(&format!("meaning.{}", m.as_str()))}</option> }).collect_view()}
                    </select>
                </label>
            })}
            <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
            <button type="submit">{t("sign.sign")}</button>
            <small class="muted">{t("sign.statement")}</small>
        </form>
    }
}

#[component]
fn ReadSection(v: CaseData) -> impl IntoView {
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
            {can_edit.then(|| view! {
                <form method="post" action=format!("/cases/{id}/read") class="grid" id="read-form">
                    <label>{t("field.margin")}
                        <select name="margin" id="f-margin">
                            <option value="none" selected={margin == "none"}>{t("read.not_assessable")}</option>
                            {Margin::ALL.iter().map(|m| view! { <option value=m.as_str() selected={m.as_str() == margin}>{m.as_str()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("field.periosteal")}
                        <select name="periosteal" id="f-periosteal">
                            {Periosteal::ALL.iter().map(|p| view! { <option value=p.as_str() selected={p.as_str() == periosteal}>{opt(p.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("field.endosteal_erosion")}
                        <select name="endosteal_erosion" id="f-endosteal">
                            {ErosionDepth::ALL.iter().map(|e| view! { <option value=e.as_str() selected={e.as_str() == erosion}>{opt(e.as_str())}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" name="pathological_fracture" value="true" checked=flags.0/>{t("field.pathological_fracture")}</label>
                    <label class="check"><input type="checkbox" name="soft_tissue_mass" value="true" checked=flags.1/>{t("field.soft_tissue_mass")}</label>
                    <label class="check"><input type="checkbox" name="known_primary_malignancy" value="true" checked=flags.2/>{t("field.known_primary_malignancy")}</label>
                    <label>{t("read.likelihood")}<input type="number" name="likelihood" id="f-likelihood" min="0" max="100" value=likelihood required/></label>
                    <label>{t("read.call")}
                        <select name="call" id="f-call">
                            <option value="benign" selected={call == "benign"}>{opt("benign")}</option>
                            <option value="malignant" selected={call == "malignant"}>{opt("malignant")}</option>
                        </select>
                    </label>
                    <label>{t("read.comment")}<input name="comment" maxlength="1000" value=comment/></label>
                    <button type="submit" id="read-save">{t("read.save")}</button>
                </form>
                {mine.is_some().then(|| view! { <SignForm action=format!("/cases/{id}/read/sign") id="read-sign" meanings=false/> })}
            })}
        </details>
    }
    .into_any()
}

#[component]
fn PathologySection(v: CaseData) -> impl IntoView {
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
                {(current.as_ref().is_some_and(|p| p.signatures.is_empty()) && v.can_sign).then(|| view! {
                    <SignForm action=format!("/cases/{id}/pathology/sign") id="pathology-sign" meanings=true/>
                })}
            })}
        </details>
    }
    .into_any()
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
                            view! {
                                <h1>{t("case.title")} " " <span id="study-number">{s.study_number.clone()}</span></h1>
                                <p>
                                    <span class=format!("badge state-{}", s.state.as_str()) id="case-state">{state_label(s.state)}</span>
                                    " " <span class="muted" id="waits-for">{t("cases.waits_for")} ": " {t(&format!("waits.{}", s.state.as_str()))}</span>
                                    {v.detail.end_reason.clone().map(|r| view! { " · " <strong>{opt(&r)}</strong> })}
                                    {v.locked.then(|| view! { " · " <strong class="error">{t("study.locked")}</strong> })}
                                </p>
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
                                {view! { <ReadSection v=v.clone()/> }.into_any()}
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
                                                {v.model.as_ref().filter(|m| m.model_id == p.input.model_id).map(|m| view! {
                                                    <p class="muted" id="model-card">{t("ai.card")} " " {format!("{:.3}", m.validation_auc)}
                                                        " · " {t("ai.calibration")} " T = " {format!("{:.2}", m.temperature)} " · " {m.training_data.clone()}</p>
                                                })}
                                                <p class="muted">{t("ai.locked")} " " {p.created_at.get(..19).unwrap_or_default().replace('T', " ")}
                                                    " · SHA-256 " <code>{p.record_sha256.get(..16).unwrap_or_default().to_owned()} "…"</code></p>
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

/// How a case leaves the study: an eligibility exclusion (the coordinator,
/// until the reads lock), a coded withdrawal (the PI with a signature, until
/// pathology is entered), and the record of an end once there is one.
#[component]
fn EndSection(v: CaseData) -> impl IntoView {
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
                    <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
                    <button type="submit" class="danger" id="withdraw-submit">{t("end.withdraw")}</button>
                    <small class="muted">{t("end.withdraw_statement")}</small>
                </form>
            })}
        </details>
    })
}

#[component]
fn QueriesSection(v: CaseData) -> impl IntoView {
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
                        Ok(d) => {
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
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
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
                                            <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
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
                                            <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
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
fn ModelPinCard(v: crate::api::cases::StudyData) -> impl IntoView {
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
                    <label>{t("sign.password")}<input type="password" name="password" autocomplete="current-password" required/></label>
                    <button type="submit" id="pin-submit">{t("pin.submit")}</button>
                    <small class="muted">{t("pin.statement")}</small>
                </form>
            })}
        </div>
    }
}

/// The per-case diagnostic report (once the prediction is locked, for the
/// roles that see AI output): the primary reader's Bone-RADS features,
/// points, category and management suggestion, the AI probability and call
/// with the model card, and the views with their heat maps.
#[component]
fn DiagnosticReport(v: CaseData) -> impl IntoView {
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
                <p id="report-ai"><strong>{format!("{:.1}%", p.input.probability * 100.0)}</strong> " · " {opt(p.call.as_str())}
                    " (" {t("ai.threshold")} " " {format!("{:.1}%", p.input.threshold * 100.0)} ")"</p>
                <p class="muted">{t("report.calibration")}</p>
                <p><a href=format!("/cases/{id}/report.pdf") id="report-pdf" download>{t("report.pdf")}</a></p>
                {v.model.as_ref().map(|m| view! {
                    <p class="muted">{t("report.model")} " " <code>{m.model_id.clone()}</code> " · " {m.training_data.clone()}
                        " · " {t("ai.card")} " " {format!("{:.3}", m.validation_auc)}</p>
                })}
                <div class="views">
                    // Heat map n belongs to the n-th view the model read.
                    {p.input.image_sha256.iter().take(p.input.heatmaps.len()).enumerate().map(|(n, sha)| {
                        let view = v.detail.images.iter().find(|i| &i.sha256 == sha).map(|i| opt(i.view.as_str()));
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
