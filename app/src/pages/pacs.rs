//! The PACS link's quarantine: images a hospital's PACS sent that matched
//! no case. A coordinator sees what each file says of itself (patient,
//! accession number, date) and assigns it to its case — through the same
//! checks and de-identification as an upload — or discards it with a
//! reason. Plain form posts; works without JavaScript.

use super::error_text;
use crate::api::{list_quarantine, QuarantineView};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn QuarantinePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_quarantine());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("pacs.title")}</h1>
            <p>{t("pacs.intro")}</p>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="quarantine-error" role="alert">{error_text("pacs.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(entries) if entries.is_empty() => view! { <p id="quarantine-empty">{t("pacs.empty")}</p> }.into_any(),
                        Ok(entries) => view! {
                            <table id="quarantine">
                                <caption>{t("pacs.title")}</caption>
                                <thead><tr>
                                    <th scope="col">{t("pacs.received")}</th>
                                    <th scope="col">{t("pacs.from")}</th>
                                    <th scope="col">{t("pacs.found")}</th>
                                    <th scope="col">{t("pacs.reason")}</th>
                                    <th scope="col">{t("pacs.action")}</th>
                                </tr></thead>
                                <tbody>
                                    {entries.into_iter().map(|q| view! { <QuarantineRow q/> }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn QuarantineRow(q: QuarantineView) -> impl IntoView {
    let base = format!("/dicom/quarantine/{}", q.id);
    let row_id = format!("quarantined-{}", q.id);
    let study_id = format!("assign-study-{}", q.id);
    let view_id = format!("assign-view-{}", q.id);
    let reason_id = format!("discard-reason-{}", q.id);
    let waiting = q.outcome.is_none();
    let outcome = match (q.outcome.as_deref(), q.case_id) {
        (Some("assigned"), Some(c)) => format!("{} {c}", t("pacs.assigned")),
        (Some(_), _) => format!(
            "{}: {}",
            t("pacs.discarded"),
            q.resolution.clone().unwrap_or_default()
        ),
        (None, _) => String::new(),
    };
    view! {
        <tr id=row_id class:resolved=!waiting>
            <td>{q.received_at.clone()}</td>
            <td>{format!("{} ({})", q.calling_ae, q.peer_address)}</td>
            <td>
                <dl class="found">
                    {q.found.iter().map(|(k, v)| view! {
                        <dt>{t(&format!("pacs.found.{k}"))}</dt><dd>{v.clone()}</dd>
                    }).collect_view()}
                </dl>
            </td>
            <td>{q.reason.clone()}</td>
            <td>
                {if waiting {
                    view! {
                        <form method="post" action=format!("{base}/assign") class="grid">
                            <label for=study_id.clone()>{t("pacs.study_number")}</label>
                            <input id=study_id name="study_number" maxlength="20" required placeholder="P-0001"/>
                            <label for=view_id.clone()>{t("pacs.view")}</label>
                            <select id=view_id name="view">
                                <option value="auto">{t("pacs.view_auto")}</option>
                                <option value="frontal">{t("opt.frontal")}</option>
                                <option value="lateral">{t("opt.lateral")}</option>
                                <option value="oblique">{t("opt.oblique")}</option>
                            </select>
                            <button type="submit">{t("pacs.assign")}</button>
                        </form>
                        <form method="post" action=format!("{base}/discard") class="grid">
                            <label for=reason_id.clone()>{t("pacs.discard_reason")}</label>
                            <input id=reason_id name="reason" maxlength="500" required/>
                            <button type="submit" class="danger">{t("pacs.discard")}</button>
                        </form>
                    }.into_any()
                } else {
                    view! { <span class="status">{outcome}</span> }.into_any()
                }}
            </td>
        </tr>
    }
}
