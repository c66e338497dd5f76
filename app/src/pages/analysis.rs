//! The analysis page: the statistical analysis plan (drafted, then signed by
//! the statistician and the PI), and after database lock the figures of the
//! locked analysis. Before lock it shows why there are none.

use super::error_text;
use crate::api::cases::analysis_view;
use crate::i18n::t;
use crate::pages::SigningSecret;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use osteo_trial::analysis::roc::AucEstimate;
use osteo_trial::analysis::threshold::Rate;
use osteo_trial::study::sap::{IntermediateMapping, ReaderAggregation};

fn auc_text(a: &AucEstimate) -> String {
    match a.ci_delong {
        Some((lo, hi)) => format!("{:.3} ({lo:.3}–{hi:.3})", a.auc),
        None => format!("{:.3} (—)", a.auc),
    }
}

fn rate_text(r: &Rate) -> String {
    match (r.value, r.wilson) {
        (Some(v), Some(w)) => format!("{:.3} ({:.3}–{:.3}) {}/{}", v, w.lower, w.upper, r.x, r.n),
        _ => format!("— {}/{}", r.x, r.n),
    }
}

#[component]
pub fn AnalysisPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| analysis_view());
    let query = use_query_map();
    view! {
        <section>
            <h1>{t("analysis.title")}</h1>
            {move || query.read().get("error").map(|code| view! {
                <p class="error" id="analysis-error" role="alert">{error_text("case.error", &code)}</p>
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error">{t(e.message_key())}</p> }.into_any(),
                        Ok(d) => view! {
                            <div class="card" id="sap">
                                <h2>{t("analysis.sap")}</h2>
                                <p class="muted">{osteo_trial::study::sap::PRIMARY_ENDPOINT}</p>
                                <table class="dense">
                                    <thead><tr><th>"v"</th><th>{t("analysis.threshold")}</th><th>{t("analysis.intermediate")}</th>
                                        <th>{t("analysis.readers")}</th><th>{t("analysis.conf_level")}</th><th>{t("analysis.signatures")}</th></tr></thead>
                                    <tbody>{d.saps.iter().map(|v| view! {
                                        <tr>
                                            <td>{v.version}</td><td>{v.sap.threshold}</td>
                                            <td>{t(&format!("analysis.map.{}", v.sap.intermediate.as_str()))}</td>
                                            <td>{t(&format!("analysis.agg.{}", v.sap.readers.as_str()))}</td>
                                            <td>{v.sap.conf_level}</td>
                                            <td>{v.signatures.iter().map(|s| format!("✔ {} ({})", s.1, t(&format!("role.{}", s.0)))).collect::<Vec<_>>().join(", ")}
                                                {v.locked.then(|| view! { " · " <strong>{t("analysis.fixed")}</strong> })}</td>
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table>
                                {d.can_draft.then(|| view! {
                                    <form method="post" action="/sap" class="grid" id="sap-form">
                                        <label>{t("analysis.threshold")}<input type="number" name="threshold" step="0.001" min="0.001" max="0.999" required/></label>
                                        <label>{t("analysis.intermediate")}
                                            <select name="intermediate">{IntermediateMapping::ALL.iter().map(|m| view! {
                                                <option value=m.as_str()>{t(&format!("analysis.map.{}", m.as_str()))}</option>
                                            }).collect_view()}</select>
                                        </label>
                                        <label>{t("analysis.readers")}
                                            <select name="readers">{ReaderAggregation::ALL.iter().map(|m| view! {
                                                <option value=m.as_str()>{t(&format!("analysis.agg.{}", m.as_str()))}</option>
                                            }).collect_view()}</select>
                                        </label>
                                        <label>{t("analysis.conf_level")}<input type="number" name="conf_level" step="0.01" value="0.95" min="0.51" max="0.99" required/></label>
                                        <button type="submit">{t("analysis.draft")}</button>
                                    </form>
                                    {(!d.saps.is_empty()).then(|| view! {
                                        <form method="post" action="/sap/sign" class="grid sign" id="sap-sign">
                                            <SigningSecret/>
                                            <button type="submit">{t("analysis.sign")}</button>
                                            <small class="muted">{t("sign.statement")}</small>
                                        </form>
                                    })}
                                })}
                            </div>
                            {match (d.analysis.clone(), d.withheld.clone()) {
                                (Some(a), _) => {
                                    let an = a.analysis.clone();
                                    view! {
                                        <div class="card" id="figures">
                                            <h2>{t("analysis.figures")}</h2>
                                            <p class="muted">{t("analysis.locked_at")} " " {a.locked_at.clone()} " · SAP v" {a.sap_version}
                                                " · SHA-256 " <code>{a.dataset_sha256.clone()}</code></p>
                                            <p>{t("analysis.cases")} ": " {an.n_malignant} " " {t("opt.malignant")} ", " {an.n_benign} " " {t("opt.benign")}
                                                " (" {an.n_excluded_intermediate} " " {t("analysis.left_out")} ")"</p>
                                            <table class="dense">
                                                <tr><td>"AUC (DeLong)"</td><td id="ai-auc">{auc_text(&an.ai_auc)}</td></tr>
                                                <tr><td>{t("analysis.sensitivity")}</td><td>{rate_text(&an.ai_at_threshold.sensitivity)}</td></tr>
                                                <tr><td>{t("analysis.specificity")}</td><td>{rate_text(&an.ai_at_threshold.specificity)}</td></tr>
                                                <tr><td>{t("analysis.accuracy")}</td><td>{rate_text(&an.ai_at_threshold.accuracy)}</td></tr>
                                                <tr><td>"PPV"</td><td>{rate_text(&an.ai_at_threshold.ppv)}</td></tr>
                                                <tr><td>"NPV"</td><td>{rate_text(&an.ai_at_threshold.npv)}</td></tr>
                                            </table>
                                            <h3>{t("analysis.readers")}</h3>
                                            <table class="dense">
                                                <thead><tr><th></th><th>"AUC"</th><th>"Bone-RADS AUC"</th><th>{t("analysis.sensitivity")}</th>
                                                    <th>{t("analysis.specificity")}</th><th>"AI − reader (p)"</th><th>"McNemar p"</th></tr></thead>
                                                <tbody>{an.readers.iter().map(|r| view! {
                                                    <tr><td>{r.reader.clone()} " (n=" {r.n} ")"</td><td>{auc_text(&r.auc_likelihood)}</td>
                                                        <td>{r.auc_bone_rads.as_ref().map(auc_text)}</td>
                                                        <td>{rate_text(&r.call.sensitivity)}</td><td>{rate_text(&r.call.specificity)}</td>
                                                        <td>{format!("{:+.3}", r.ai_vs_reader.diff)} {r.ai_vs_reader.p_two_sided.map(|p| format!(" ({p:.4})"))}</td>
                                                        <td>{r.mcnemar.p_exact.map(|p| format!("{p:.4}"))}</td></tr>
                                                }).collect_view()}</tbody>
                                            </table>
                                            <p id="mrmc">{t("analysis.mrmc")} ": " {match an.mrmc.as_ref() {
                                                Some(m) => format!("AI {:.3}, readers {:.3}; F = {:.3}, ddf = {:.2}, p = {:.4}",
                                                    m.modality_auc[0], m.modality_auc[1], m.f, m.ddf, m.p_value),
                                                None => t("pdf.mrmc_none"),
                                            }}</p>
                                            <h3>{t("analysis.subgroups")}</h3>
                                            <table class="dense" id="subgroups">
                                                <thead><tr><th></th><th>{t("opt.malignant")} " / " {t("opt.benign")}</th><th>"AUC"</th>
                                                    <th>{t("analysis.sensitivity")}</th><th>{t("analysis.specificity")}</th></tr></thead>
                                                <tbody>{an.subgroups.iter().map(|g| {
                                                    let level = match (g.variable.as_str(), g.level.as_str()) {
                                                        (_, "missing") => t("pdf.missing"),
                                                        ("age_band", band) => band.to_owned(),
                                                        (_, code) => t(&format!("opt.{code}")),
                                                    };
                                                    view! {
                                                        <tr><td>{t(&format!("pdf.var.{}", g.variable))} " — " {level}</td>
                                                            <td>{g.n_malignant} " / " {g.n_benign}</td>
                                                            <td>{g.auc.as_ref().map(auc_text).unwrap_or_else(|| "—".into())}</td>
                                                            <td>{rate_text(&g.sensitivity)}</td><td>{rate_text(&g.specificity)}</td></tr>
                                                    }
                                                }).collect_view()}</tbody>
                                            </table>
                                            <h3>{t("analysis.exports")}</h3>
                                            <ul id="exports">{d.exports.iter().map(|f| view! {
                                                <li><a href=format!("/exports/{f}") download>{f.clone()}</a></li>
                                            }).collect_view()}</ul>
                                            <h3>{t("analysis.sensitivity_analyses")}</h3>
                                            <ul>{an.sensitivity.iter().map(|(m, e)| view! {
                                                <li>{t(&format!("analysis.map.{}", m.as_str()))} ": " {e.as_ref().map(auc_text).unwrap_or_else(|| "—".into())}</li>
                                            }).collect_view()}</ul>
                                        </div>
                                    }.into_any()
                                }
                                (None, code) => view! {
                                    <p class="muted card" id="analysis-withheld">{error_text("case.error", &code.unwrap_or_default())}</p>
                                }.into_any(),
                            }}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
