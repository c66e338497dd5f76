//! The screening log: coordinators log each consecutive patient and correct
//! entries; everyone allowed sees the log, its consistency report and the
//! flow counts.

use super::error_text;
use crate::api::screening_log;
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use osteo_trial::screening::{Arm, ExclusionCode, NotEnrolledReason, Outcome, ScreeningInput};

/// The fields of the screening form, filled with what is `recorded`.
#[component]
fn ScreeningFields(recorded: ScreeningInput, latest: String) -> impl IntoView {
    let ScreeningInput {
        arm,
        screening_date: date,
        inclusion_met: inclusion,
        exclusions: codes,
        outcome,
        not_enrolled_reason: reason,
        comment,
    } = recorded;
    let comment = comment.unwrap_or_default();
    view! {
        <label>{t("screening.arm")}
            <select name="arm">
                {Arm::ALL.into_iter().map(|a| view! {
                    <option value=a.as_str() selected={a == arm}>{t(&format!("screening.arm.{}", a.as_str()))}</option>
                }).collect_view()}
            </select>
        </label>
        <label>{t("screening.date")}<input type="date" name="screening_date" value=date max=latest required/></label>
        <label class="check"><input type="checkbox" name="inclusion_met" value="true" checked=inclusion/>{t("screening.inclusion")}</label>
        <fieldset class="codes">
            <legend>{t("screening.exclusions")}</legend>
            {ExclusionCode::ALL.into_iter().map(|c| view! {
                <label class="check" title=t(&format!("screening.code.{}", c.as_str()))>
                    <input type="checkbox" name=c.as_str().to_lowercase() value="true" checked=codes.contains(&c)/>
                    {c.as_str()} " " <small>{t(&format!("screening.code.{}", c.as_str()))}</small>
                </label>
            }).collect_view()}
        </fieldset>
        <label>{t("screening.outcome")}
            <select name="outcome">
                {Outcome::ALL.into_iter().map(|o| view! {
                    <option value=o.as_str() selected={o == outcome}>{t(&format!("screening.outcome.{}", o.as_str()))}</option>
                }).collect_view()}
            </select>
        </label>
        <label>{t("screening.not_enrolled_reason")}
            <select name="not_enrolled_reason">
                <option value="" selected={reason.is_none()}>"—"</option>
                {NotEnrolledReason::ALL.into_iter().map(|r| view! {
                    <option value=r.as_str() selected={Some(r) == reason}>{t(&format!("screening.reason.{}", r.as_str()))}</option>
                }).collect_view()}
            </select>
        </label>
        <label>{t("screening.comment")}<input name="comment" value=comment maxlength="1000"/></label>
    }
}

#[component]
pub fn ScreeningPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| screening_log());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("screening.title")}</h1>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="screening-error" role="alert">{error_text("screening.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(v) => {
                            let today = v.today.clone();
                            let latest = v.latest.clone();
                            let can_enter = v.can_enter;
                            let flow = v.log.flow.clone();
                            let report_ok = v.log.gaps.is_empty() && v.log.out_of_order.is_empty();
                            view! {
                                {can_enter.then(|| view! {
                                    <details class="card" open>
                                        <summary>{t("screening.new")}</summary>
                                        <form method="post" action="/screening" class="grid" id="screening-form">
                                            <ScreeningFields recorded=ScreeningInput {
                                                arm: Arm::Prospective,
                                                screening_date: today.clone(),
                                                inclusion_met: true,
                                                exclusions: Vec::new(),
                                                outcome: Outcome::Enrolled,
                                                not_enrolled_reason: None,
                                                comment: None,
                                            } latest=latest.clone()/>
                                            <button type="submit" id="screening-submit">{t("screening.save")}</button>
                                        </form>
                                    </details>
                                })}
                                <div class="cards">
                                    <div class="card" id="screening-report">
                                        <h2>{t("screening.report")}</h2>
                                        {if report_ok {
                                            view! { <p class="ok">{t("screening.report_ok")}</p> }.into_any()
                                        } else {
                                            view! {
                                                <ul class="error">
                                                    {v.log.gaps.iter().map(|(site, no)| view! { <li>{t("screening.gap")} " " {site.clone()} " #" {*no}</li> }).collect_view()}
                                                    {v.log.out_of_order.iter().map(|(site, no)| view! { <li>{t("screening.out_of_order")} " " {site.clone()} " #" {*no}</li> }).collect_view()}
                                                </ul>
                                            }.into_any()
                                        }}
                                    </div>
                                    <div class="card" id="screening-flow">
                                        <h2>{t("screening.flow")}</h2>
                                        <table class="dense">
                                            <tr><td>{t("screening.flow.screened")}</td><td>{flow.screened}</td></tr>
                                            <tr><td>{t("screening.flow.enrolled_prospective")}</td><td>{flow.enrolled_prospective}</td></tr>
                                            <tr><td>{t("screening.flow.enrolled_retrospective")}</td><td>{flow.enrolled_retrospective}</td></tr>
                                            <tr><td>{t("screening.flow.excluded")}</td><td>{flow.excluded} " (E1 " {flow.excluded_e1} ", E2 " {flow.excluded_e2} ", E3 " {flow.excluded_e3} ")"</td></tr>
                                            <tr><td>{t("screening.reason.declined")}</td><td>{flow.declined}</td></tr>
                                            <tr><td>{t("screening.reason.missed")}</td><td>{flow.missed}</td></tr>
                                            <tr><td>{t("screening.reason.inclusion_not_met")}</td><td>{flow.inclusion_not_met}</td></tr>
                                        </table>
                                    </div>
                                </div>
                                <table id="screening-log">
                                    <thead><tr>
                                        <th>{t("screening.site")}</th><th>"#"</th><th>{t("screening.date")}</th><th>{t("screening.arm")}</th>
                                        <th>{t("screening.outcome")}</th><th>{t("screening.study_number")}</th><th>{t("screening.version")}</th>
                                        <th>{t("screening.comment")}</th><th></th>
                                    </tr></thead>
                                    <tbody>
                                        {v.log.entries.into_iter().map(|e| {
                                            let r = &e.recorded;
                                            let outcome = match r.outcome {
                                                Outcome::Excluded => format!(
                                                    "{} ({})",
                                                    t("screening.outcome.excluded"),
                                                    r.exclusions.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                                                ),
                                                Outcome::NotEnrolled => format!(
                                                    "{} ({})",
                                                    t("screening.outcome.not_enrolled"),
                                                    r.not_enrolled_reason.map(|n| t(&format!("screening.reason.{}", n.as_str()))).unwrap_or_default()
                                                ),
                                                Outcome::Enrolled => t("screening.outcome.enrolled"),
                                            };
                                            let action = format!("/screening/{}/correct", e.id);
                                            let row_id = format!("screening-{}", e.screening_no);
                                            let latest = latest.clone();
                                            view! {
                                                <tr id=row_id>
                                                    <td>{e.site_code.clone()}</td>
                                                    <td>{e.screening_no}</td>
                                                    <td>{r.screening_date.clone()}</td>
                                                    <td>{t(&format!("screening.arm.{}", r.arm.as_str()))}</td>
                                                    <td class="outcome">{outcome}</td>
                                                    <td class="study-number"><strong>{e.study_number.clone()}</strong></td>
                                                    <td>{e.version}</td>
                                                    <td>{r.comment.clone()}</td>
                                                    <td>{can_enter.then(|| view! {
                                                        <details>
                                                            <summary>{t("screening.correct")}</summary>
                                                            <form method="post" action=action class="grid">
                                                                <ScreeningFields recorded=e.recorded.clone() latest=latest/>
                                                                <label>{t("users.reason")}<input name="reason" maxlength="500" required/></label>
                                                                <button type="submit">{t("screening.save")}</button>
                                                            </form>
                                                        </details>
                                                    })}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
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
