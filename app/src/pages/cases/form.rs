//! The CRF form and the signature forms of the case page.

use crate::api::cases::CaseData;
use crate::i18n::t;
use crate::pages::opt;
use crate::pages::SigningSecret;
use leptos::prelude::*;
use osteo_trial::case::crf::*;
use osteo_trial::case::{CaseState, FormEcho, SignatureMeaning};

/// A form field's value and problem, from a failed post or the record.
pub(crate) struct Values {
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

pub(crate) fn select(
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

pub(crate) fn yes_no(v: &Values, name: &'static str, disabled: bool) -> impl IntoView {
    select(v, name, vec!["true", "false"], disabled)
}

pub(crate) fn input(
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

pub(crate) fn codes<T: Copy + 'static>(
    all: &'static [T],
    f: fn(T) -> &'static str,
) -> Vec<&'static str> {
    all.iter().map(|c| f(*c)).collect()
}

#[component]
pub(crate) fn CrfForm(v: CaseData) -> impl IntoView {
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
                    <SigningSecret/>
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
                    <tbody>{deviations.iter().map(|d| &d.change).map(|d| view! {
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
pub(crate) fn Signatures(list: Vec<osteo_trial::case::Signature>) -> impl IntoView {
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
pub(crate) fn SignForm(action: String, id: &'static str, meanings: bool) -> impl IntoView {
    view! {
        <form method="post" action=action class="grid sign" id=id>
            {meanings.then(|| view! {
                <label>{t("sign.meaning")}
                    <select name="meaning">
                        {SignatureMeaning::ALL.iter().map(|m| view! { <option value=m.as_str()>{t(&format!("meaning.{}", m.as_str()))}</option> }).collect_view()}
                    </select>
                </label>
            })}
            <SigningSecret/>
            <button type="submit">{t("sign.sign")}</button>
            <small class="muted">{t("sign.statement")}</small>
        </form>
    }
}
