//! The locked analysis report as a PDF (printpdf): the header that
//! identifies the data and plan (registration, SAP version and settings,
//! database-lock time, dataset SHA-256), the STARD 2015 flow diagram, the
//! primary endpoint, the 2×2 table and the rates with their intervals, the
//! ROC curves, the AI against the radiologists (paired DeLong, McNemar,
//! multi-reader multi-case), the subgroups and the sensitivity analyses —
//! in English or Chinese.
//!
//! The report is a pure function of the locked analysis: the text is set in
//! a font shipped with the program (`fonts/NotoSansSC-Report.otf`, a subset
//! of Noto Sans CJK SC; the document embeds the subset of it that it uses),
//! every resource name is fixed, the creation date is the lock time and the
//! document identifier is derived from the content, so the same locked data
//! gives the same bytes on every machine.

mod figures;
mod format;

use crate::pdf::{PdfError, Writer, BODY, LEFT, SMALL};
use figures::{flow_diagram, readers_section, roc_figure};
use format::{auc_with_ci, f3, interval, rate_cells};
use osteo_app::i18n::tl;
use osteo_trial::domain::Locale;
use osteo_trial::study::figures::{LockedAnalysis, BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED};

/// The report of a locked analysis in `locale`, as PDF bytes.
pub fn render(locked: &LockedAnalysis, locale: Locale) -> Result<Vec<u8>, PdfError> {
    let t = |k: &str| tl(locale, k);
    let a = &locked.analysis;
    let mut w = Writer::new();

    // Title and what the figures rest on.
    let (title_en, title_zh) = locked.study_kind.titles();
    let registration = locked.study_kind.registration();
    let title = match locale {
        Locale::ZhCn => title_zh,
        Locale::En => title_en,
    };
    w.title(title);
    w.y -= 14.0;
    w.text(LEFT, w.y, 12.0, &t("pdf.subtitle"));
    w.y -= 10.0;
    let sap = &a.sap;
    w.key_values(&[
        (t("pdf.registration"), registration.to_owned()),
        (t("pdf.sap"), locked.sap_version.to_string()),
        (t("pdf.locked_at"), locked.locked_at.clone()),
        (
            t("pdf.lock_kind"),
            t(&format!("lock.kind.{}", locked.lock_kind)),
        ),
        (
            t("pdf.model"),
            a.model.as_ref().map_or(t("pdf.none"), |m| {
                format!(
                    "{} ({})",
                    m.model_id,
                    m.signed_by.clone().unwrap_or_else(|| t("pin.by_demo"))
                )
            }),
        ),
        (t("pdf.primary_endpoint"), t("pdf.primary_endpoint_text")),
        (t("pdf.threshold"), sap.threshold.to_string()),
        (
            t("pdf.intermediate"),
            t(&format!("analysis.map.{}", sap.intermediate.as_str())),
        ),
        (
            t("pdf.readers"),
            t(&format!("analysis.agg.{}", sap.readers.as_str())),
        ),
        (t("pdf.conf_level"), sap.conf_level.to_string()),
        (
            t("pdf.planned_size"),
            osteo_trial::study::PROSPECTIVE_TARGET.to_string(),
        ),
        (
            t("pdf.software"),
            format!("Osteo EDC {}", env!("CARGO_PKG_VERSION")),
        ),
    ]);
    // The hashes on lines of their own, where they can be copied whole.
    w.paragraph(
        &format!("{}: {}", t("pdf.dataset"), locked.dataset_sha256),
        BODY,
    );
    if let Some(m) = &a.model {
        w.paragraph(
            &format!("{}: {}", t("pdf.model_weights"), m.weights_sha256),
            SMALL,
        );
    }
    match &locked.audit_head {
        Some(h) => {
            w.paragraph(
                &format!("{} {}: {}", t("pdf.audit_head"), h.seq, h.hash),
                SMALL,
            );
            w.paragraph(&format!("{}: {}", t("pdf.audit_key"), h.public_key), SMALL);
        }
        None => w.paragraph(
            &format!("{}: {}", t("pdf.audit_head"), t("pdf.none")),
            SMALL,
        ),
    }
    if let Some(reason) = &locked.early_stop_reason {
        w.paragraph(&format!("{}: {reason}", t("lock.early_stop")), BODY);
    }
    w.paragraph(&t("pdf.reproducible"), SMALL);
    // The order of the tests and who saw what (STARD 2015 item 13a): what
    // the system enforces on every entry point and in the database.
    w.paragraph(&t("pdf.blinding"), SMALL);

    flow_diagram(&mut w, locked, locale);

    // Primary endpoint.
    w.heading(&t("pdf.s_primary"));
    w.paragraph(
        &format!(
            "{}: {} — {} {}, {} {}, {} {}",
            t("pdf.analysed"),
            a.n_malignant + a.n_benign,
            a.n_malignant,
            t("pdf.malignant"),
            a.n_benign,
            t("pdf.benign"),
            a.n_excluded_intermediate,
            t("pdf.intermediate_left_out"),
        ),
        BODY,
    );
    let level = format!("{}%", sap.conf_level * 100.0);
    w.key_values(&[
        (
            format!("{} {level}", t("pdf.auc_delong")),
            auc_with_ci(&a.ai_auc),
        ),
        (
            format!("{} {level}", t("pdf.auc_logit")),
            a.ai_auc.ci_logit.map_or("—".to_owned(), |ci| {
                format!("{} ({})", f3(a.ai_auc.auc), interval(ci))
            }),
        ),
        (
            format!("{} {level}", t("pdf.auc_bootstrap")),
            format!(
                "{} ({}; {BOOTSTRAP_REPLICATES} {} {BOOTSTRAP_SEED})",
                f3(a.ai_auc.auc),
                interval((a.ai_auc_bootstrap.lower, a.ai_auc_bootstrap.upper)),
                t("pdf.replicates"),
            ),
        ),
    ]);

    // At the threshold.
    w.heading(&t("pdf.s_threshold"));
    let tab = &a.ai_at_threshold.table;
    w.table(
        &[150.0, 90.0, 90.0, 90.0],
        &[
            format!("{} \\ {}", t("pdf.ai_call"), t("pdf.reference")),
            t("pdf.malignant"),
            t("pdf.benign"),
            t("pdf.total"),
        ],
        &[
            vec![
                t("pdf.flow.ai_positive"),
                tab.tp.to_string(),
                tab.fp.to_string(),
                (tab.tp + tab.fp).to_string(),
            ],
            vec![
                t("pdf.flow.ai_negative"),
                tab.fn_.to_string(),
                tab.tn.to_string(),
                (tab.fn_ + tab.tn).to_string(),
            ],
            vec![
                t("pdf.total"),
                (tab.tp + tab.fn_).to_string(),
                (tab.fp + tab.tn).to_string(),
                (tab.tp + tab.fp + tab.fn_ + tab.tn).to_string(),
            ],
        ],
    );
    let at = &a.ai_at_threshold;
    let rates = [
        ("pdf.sensitivity", &at.sensitivity),
        ("pdf.specificity", &at.specificity),
        ("pdf.accuracy", &at.accuracy),
        ("pdf.ppv", &at.ppv),
        ("pdf.npv", &at.npv),
    ];
    w.table(
        &[130.0, 110.0, 120.0, 120.0],
        &[
            t("pdf.measure"),
            t("pdf.estimate"),
            format!("{} {level}", t("pdf.wilson")),
            format!("{} {level}", t("pdf.clopper_pearson")),
        ],
        &rates
            .iter()
            .map(|(k, r)| {
                let [v, wi, cp] = rate_cells(r);
                vec![t(k), v, wi, cp]
            })
            .collect::<Vec<_>>(),
    );

    roc_figure(&mut w, locked, locale);
    readers_section(&mut w, locked, locale);

    // Subgroups.
    w.heading(&t("pdf.s_subgroups"));
    let rows: Vec<Vec<String>> = a
        .subgroups
        .iter()
        .map(|g| {
            let level_name = match (g.variable.as_str(), g.level.as_str()) {
                (_, "missing") => t("pdf.missing"),
                ("age_band", band) => band.to_owned(),
                (_, code) => t(&format!("opt.{code}")),
            };
            vec![
                format!("{} — {level_name}", t(&format!("pdf.var.{}", g.variable))),
                format!("{} / {}", g.n_malignant, g.n_benign),
                g.auc.as_ref().map_or(t("pdf.undefined"), auc_with_ci),
                rate_cells(&g.sensitivity)[0].clone(),
                rate_cells(&g.specificity)[0].clone(),
            ]
        })
        .collect();
    w.table(
        &[150.0, 60.0, 110.0, 80.0, 80.0],
        &[
            t("pdf.level"),
            format!("{} / {}", t("pdf.malignant"), t("pdf.benign")),
            "AUC".to_owned(),
            t("pdf.sensitivity"),
            t("pdf.specificity"),
        ],
        &rows,
    );

    // Sensitivity analyses.
    w.heading(&t("pdf.s_sensitivity"));
    let mut rows = vec![vec![
        format!(
            "{} ({})",
            t(&format!("analysis.map.{}", sap.intermediate.as_str())),
            t("pdf.primary_mapping")
        ),
        auc_with_ci(&a.ai_auc),
    ]];
    rows.extend(a.sensitivity.iter().map(|(m, e)| {
        vec![
            t(&format!("analysis.map.{}", m.as_str())),
            e.as_ref().map_or(t("pdf.undefined"), auc_with_ci),
        ]
    }));
    w.table(
        &[200.0, 140.0],
        &[t("pdf.mapping"), "AUC".to_owned()],
        &rows,
    );
    integrity_sections(&mut w, locked, locale);
    let footer_hash = locked.dataset_sha256[..locked.dataset_sha256.len().min(16)].to_owned();
    w.finish(
        &format!("{registration} — {}", t("pdf.subtitle")),
        &locked.locked_at,
        |page, pages| {
            format!(
                "{registration} · {footer_hash} · {} {page}/{pages}",
                t("pdf.page")
            )
        },
    )
}

/// What a reviewer checks the figures against: every case that left the
/// study after enrolment with the state it was in then, every protocol
/// deviation, and every look at the data before this lock. One wrapped
/// entry per line: the texts are free (reasons), so they do not fit columns.
fn integrity_sections(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
    let t = |k: &str| tl(locale, k);
    let a = &locked.analysis;
    let day = |at: &str| at.get(..16).unwrap_or(at).replace('T', " ");
    let signed = |name: &str| format!("{} {name}", t("end.signed_by"));
    w.heading(&t("pdf.s_ended"));
    if a.ended.is_empty() {
        w.paragraph(&t("pdf.none"), BODY);
    }
    for e in &a.ended {
        let code = if e.kind == "excluded" {
            e.code.clone()
        } else {
            t(&format!("opt.{}", e.code))
        };
        let state = e
            .from_state
            .as_deref()
            .map_or(t("pdf.not_recorded"), |s| t(&format!("state.{s}")));
        let mut parts = vec![
            format!(
                "{} — {} — {code}",
                e.study_number,
                t(&format!("end.{}", e.kind))
            ),
            format!("{}: {state}", t("pdf.col.state_then")),
        ];
        parts.extend(e.at.as_deref().map(day));
        parts.push(e.reason.clone());
        parts.extend(e.signed_by.as_deref().map(signed));
        w.paragraph(&parts.join(" · "), SMALL);
    }
    w.heading(&t("pdf.s_deviations"));
    if a.deviations.is_empty() {
        w.paragraph(&t("pdf.none"), BODY);
    }
    for row in &a.deviations {
        let d = &row.change;
        w.paragraph(
            &[
                format!(
                    "{} — {}: {} → {}",
                    row.study_number,
                    t(&format!("field.{}", d.field)),
                    d.old_value.clone().unwrap_or_default(),
                    d.new_value.clone().unwrap_or_default()
                ),
                day(&d.at),
                d.reason.clone(),
                signed(&d.signed_by),
            ]
            .join(" · "),
            SMALL,
        );
    }
    w.heading(&t("pdf.s_access"));
    w.paragraph(&t("pdf.access_note"), SMALL);
    for d in &locked.data_access {
        w.paragraph(
            &[
                day(&d.at),
                format!("{} ({})", d.actor, t(&format!("role.{}", d.role))),
                t(&format!("pdf.access.{}", d.action)),
                d.detail.clone(),
            ]
            .join(" · "),
            SMALL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thirty cases, two readers who read every case.
    fn two_reader_analysis() -> LockedAnalysis {
        use osteo_trial::study::accuracy::{analyse, Analysed, AnalysedCase};
        use osteo_trial::study::sap::{IntermediateMapping, ReaderAggregation, Sap};
        let cases = (0..30)
            .map(|i| {
                let malignant = i % 3 == 0;
                let noise = ((i * 37) % 11) as f64 / 11.0;
                let base = if malignant { 0.55 } else { 0.2 };
                AnalysedCase {
                    case_id: i,
                    tier: if malignant { "malignant" } else { "benign" }.to_owned(),
                    probability: base + 0.4 * noise,
                    reads: [
                        (7, (base * 100.0 + 30.0 * noise).round(), 2.0, noise > 0.5),
                        (
                            9,
                            (base * 100.0 + 45.0 * (1.0 - noise)).round(),
                            3.0,
                            malignant,
                        ),
                    ]
                    .into_iter()
                    .map(|(r, l, c, call)| (r, (l, c, call)))
                    .collect(),
                    sex: Some(if i % 2 == 0 { "female" } else { "male" }.to_owned()),
                    age_years: Some((i * 3) as u16),
                    bone: Some("tibia".to_owned()),
                    outside_domain: Some(i % 10 == 0),
                }
            })
            .collect();
        let data = Analysed {
            cases,
            screening: Default::default(),
            ended_early: 0,
            no_index_test: 0,
            ended: Vec::new(),
            deviations: Vec::new(),
            model: None,
        };
        let sap = Sap {
            threshold: 0.5,
            intermediate: IntermediateMapping::Excluded,
            readers: ReaderAggregation::EachReader,
            conf_level: 0.95,
        };
        LockedAnalysis {
            study_kind: osteo_trial::domain::StudyKind::Trial,
            locked_at: "2026-06-30T12:00:00.000000Z".to_owned(),
            lock_kind: "final".to_owned(),
            early_stop_reason: None,
            dataset_sha256: "ab".repeat(32),
            sap_version: 2,
            analysis: analyse(&data, &sap).unwrap(),
            data_access: Vec::new(),
            audit_head: None,
        }
    }

    fn pdf_text(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.pdf");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-layout", "-enc", "UTF-8"])
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext (Debian's poppler-utils) reads the report");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_mrmc_result_and_every_reader_are_in_the_report_in_both_languages() {
        let locked = two_reader_analysis();
        let m = locked.analysis.mrmc.clone().expect("two complete readers");
        let en = render(&locked, Locale::En).unwrap();
        assert_eq!(
            en,
            render(&locked, Locale::En).unwrap(),
            "the same bytes again"
        );
        let text = pdf_text(&en);
        for expected in [
            format!("F = {:.3}", m.f),
            format!(
                "AI AUC {:.3}, mean reader AUC {:.3}",
                m.modality_auc[0], m.modality_auc[1]
            ),
            format!(
                "reader 2 likelihood (AUC {:.3})",
                locked.analysis.readers[1].auc_likelihood.auc
            ),
            "reader 2 Bone-RADS".to_owned(),
            "Age (years) — 60+".to_owned(),
            "Bone — Tibia".to_owned(),
        ] {
            assert!(text.contains(&expected), "no `{expected}` in:\n{text}");
        }
        let zh = pdf_text(&render(&locked, Locale::ZhCn).unwrap());
        for expected in [
            "多阅片者多病例分析",
            "阅片者 2 恶性可能性",
            "胫骨",
            &format!("F = {:.3}", m.f),
        ] {
            assert!(zh.contains(expected), "no `{expected}` in:\n{zh}");
        }
    }
}
