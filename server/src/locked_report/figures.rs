//! The locked report's figures: the STARD 2015 flow diagram, the ROC
//! curves, and the readers against the AI.

use super::format::{auc_with_ci, f3, interval, label, p_value, rate_cells};
use crate::pdf::{rgb, Writer, BODY, LEFT, RIGHT, SMALL};
use osteo_app::i18n::tl;
use osteo_trial::domain::Locale;
use osteo_trial::study::figures::{ByReference, LockedAnalysis};

/// The STARD 2015 flow diagram: screened → enrolled → reference standard →
/// the AI's call → the reference standard's result, with the patients who
/// left the flow at each step beside it.
pub(super) fn flow_diagram(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
    let t = |k: &str| tl(locale, k);
    let f = &locked.analysis.flow;
    let s = &f.screening;
    w.heading(&t("pdf.s_flow"));
    w.need(330.0);
    let main_x = LEFT + 10.0;
    let main_w = 200.0;
    let side_x = LEFT + 260.0;
    let side_w = RIGHT - side_x;
    let cx = main_x + main_w / 2.0;
    let line_h = SMALL * 1.45;
    let boxed = |w: &mut Writer, x: f32, top: f32, width: f32, lines: &[String]| -> f32 {
        let h = lines.len() as f32 * line_h + 8.0;
        w.rect(x, top - h, width, h);
        for (i, l) in lines.iter().enumerate() {
            w.text(
                x + 6.0,
                top - 4.0 - (i as f32 + 1.0) * line_h + 2.0,
                SMALL,
                l,
            );
        }
        top - h
    };
    let not_enrolled = s.excluded + s.declined + s.missed + s.inclusion_not_met;
    let mut top = w.y - 6.0;
    let b1 = boxed(
        w,
        main_x,
        top,
        main_w,
        &[format!("{} n = {}", t("pdf.flow.screened"), s.screened)],
    );
    let side_lines = vec![
        format!("{} n = {not_enrolled}", t("pdf.flow.not_enrolled")),
        format!("  {} n = {}", t("pdf.flow.excluded"), s.excluded),
        format!("    {} n = {}", t("pdf.flow.e1"), s.excluded_e1),
        format!("    {} n = {}", t("pdf.flow.e2"), s.excluded_e2),
        format!("    {} n = {}", t("pdf.flow.e3"), s.excluded_e3),
        format!("  {} n = {}", t("pdf.flow.declined"), s.declined),
        format!("  {} n = {}", t("pdf.flow.missed"), s.missed),
        format!(
            "  {} n = {}",
            t("pdf.flow.inclusion_not_met"),
            s.inclusion_not_met
        ),
    ];
    let side_top = b1 - 8.0;
    let side_bottom = boxed(w, side_x, side_top, side_w, &side_lines);
    let branch_y = (side_top + side_bottom) / 2.0;
    top = side_bottom - 14.0;
    w.stroke(&[(cx, b1), (cx, top)], 0.7, rgb(0.2, 0.2, 0.2), &[]);
    w.arrow((cx, branch_y), (side_x, branch_y));
    w.arrow((cx, top + 0.1), (cx, top));
    let b2 = boxed(
        w,
        main_x,
        top,
        main_w,
        &[format!(
            "{} n = {}",
            t("pdf.flow.enrolled"),
            s.enrolled_prospective
        )],
    );
    let side2_top = b2 - 8.0;
    let side2_bottom = boxed(
        w,
        side_x,
        side2_top,
        side_w,
        &std::iter::once(format!(
            "{} n = {}",
            t("pdf.flow.ended_early"),
            f.ended_early
        ))
        .chain(
            f.excluded_after_enrolment
                .iter()
                .map(|(code, n)| format!("  {} {code} n = {n}", t("end.excluded"))),
        )
        .chain(f.withdrawn.iter().map(|(code, n)| {
            format!(
                "  {} — {} n = {n}",
                t("pdf.flow.no_reference"),
                t(&format!("opt.{code}"))
            )
        }))
        .collect::<Vec<_>>(),
    );
    let branch2 = (side2_top + side2_bottom) / 2.0;
    top = side2_bottom - 14.0;
    w.stroke(&[(cx, b2), (cx, top)], 0.7, rgb(0.2, 0.2, 0.2), &[]);
    w.arrow((cx, branch2), (side_x, branch2));
    let complete = f.ai_positive.malignant
        + f.ai_positive.benign
        + f.ai_positive.intermediate
        + f.ai_negative.malignant
        + f.ai_negative.benign
        + f.ai_negative.intermediate
        + f.no_index_test;
    let b3 = boxed(
        w,
        main_x,
        top,
        main_w,
        &[format!("{} n = {complete}", t("pdf.flow.complete"))],
    );
    let side3_top = b3 - 8.0;
    let side3_bottom = boxed(
        w,
        side_x,
        side3_top,
        side_w,
        &[format!(
            "{} n = {}",
            t("pdf.flow.no_index"),
            f.no_index_test
        )],
    );
    let branch3 = (side3_top + side3_bottom) / 2.0;
    top = side3_bottom - 14.0;
    w.stroke(&[(cx, b3), (cx, branch3)], 0.7, rgb(0.2, 0.2, 0.2), &[]);
    w.arrow((cx, branch3), (side_x, branch3));
    // The split by the AI's call.
    let half = (RIGHT - LEFT - 20.0) / 2.0;
    let arms: [(&str, &ByReference, f32); 2] = [
        ("pdf.flow.ai_positive", &f.ai_positive, LEFT),
        ("pdf.flow.ai_negative", &f.ai_negative, LEFT + half + 20.0),
    ];
    w.stroke(
        &[(cx, branch3), (cx, top + 8.0)],
        0.7,
        rgb(0.2, 0.2, 0.2),
        &[],
    );
    let left_c = LEFT + half / 2.0;
    let right_c = LEFT + half + 20.0 + half / 2.0;
    w.stroke(
        &[(left_c, top + 8.0), (right_c, top + 8.0)],
        0.7,
        rgb(0.2, 0.2, 0.2),
        &[],
    );
    w.arrow((left_c, top + 8.0), (left_c, top));
    w.arrow((right_c, top + 8.0), (right_c, top));
    let mut bottom = top;
    for (key, r, x) in arms {
        let n = r.malignant + r.benign + r.intermediate;
        let lines = [
            format!("{} n = {n}", t(key)),
            format!(
                "  {}: {} n = {}",
                t("pdf.reference"),
                t("pdf.malignant"),
                r.malignant
            ),
            format!(
                "  {}: {} n = {}",
                t("pdf.reference"),
                t("pdf.benign"),
                r.benign
            ),
            format!(
                "  {}: {} n = {}",
                t("pdf.reference"),
                t("pdf.intermediate_tier"),
                r.intermediate
            ),
        ];
        bottom = boxed(w, x, top, half, &lines);
    }
    w.y = bottom - 4.0;
    w.paragraph(&t("pdf.flow.note"), SMALL);
}

/// The ROC curves: the AI solid and thick, each reader's likelihood solid,
/// their Bone-RADS dashed; the chance diagonal dotted.
pub(super) fn roc_figure(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
    let t = |k: &str| tl(locale, k);
    let series = &locked.analysis.roc;
    w.heading(&t("pdf.s_roc"));
    let size = 250.0;
    w.need(size + 50.0);
    let (x0, y0) = (LEFT + 40.0, w.y - size - 14.0);
    let grey = rgb(0.55, 0.55, 0.55);
    w.rect(x0, y0, size, size);
    w.stroke(
        &[(x0, y0), (x0 + size, y0 + size)],
        0.5,
        grey.clone(),
        &[1.0, 2.0],
    );
    for i in 0..=5 {
        let v = i as f32 / 5.0;
        let label = format!("{v:.1}");
        w.stroke(
            &[(x0 + v * size, y0), (x0 + v * size, y0 - 3.0)],
            0.5,
            grey.clone(),
            &[],
        );
        w.text_centred(x0 + v * size, y0 - 12.0, SMALL, &label);
        w.stroke(
            &[(x0, y0 + v * size), (x0 - 3.0, y0 + v * size)],
            0.5,
            grey.clone(),
            &[],
        );
        w.text_right(x0 - 5.0, y0 + v * size - 3.0, SMALL, &label);
    }
    w.text_centred(x0 + size / 2.0, y0 - 24.0, SMALL, &t("pdf.fpr"));
    w.text(x0 - 36.0, y0 + size + 6.0, SMALL, &t("pdf.tpr"));
    const COLOURS: [(f32, f32, f32); 6] = [
        (0.0, 0.0, 0.0),
        (0.0, 0.35, 0.75),
        (0.8, 0.3, 0.0),
        (0.0, 0.55, 0.3),
        (0.55, 0.0, 0.55),
        (0.6, 0.5, 0.0),
    ];
    let legend_x = x0 + size + 16.0;
    let mut legend_y = y0 + size - 6.0;
    // One colour per source (the AI, then each reader in order), so that a
    // reader's likelihood and Bone-RADS curves share it.
    let mut sources: Vec<&str> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let bone_rads = s.name.ends_with("Bone-RADS");
        let source = s
            .name
            .trim_end_matches(" Bone-RADS")
            .trim_end_matches(" likelihood");
        let colour = sources
            .iter()
            .position(|x| *x == source)
            .unwrap_or_else(|| {
                sources.push(source);
                sources.len() - 1
            });
        let (r, g, b) = COLOURS[colour % COLOURS.len()];
        let dash: &[f32] = if bone_rads { &[4.0, 2.0] } else { &[] };
        let width = if i == 0 { 1.6 } else { 0.9 };
        let points: Vec<(f32, f32)> = s
            .points
            .iter()
            .map(|(fpr, tpr)| (x0 + *fpr as f32 * size, y0 + *tpr as f32 * size))
            .collect();
        w.stroke(&points, width, rgb(r, g, b), dash);
        w.stroke(
            &[
                (legend_x, legend_y + 3.0),
                (legend_x + 18.0, legend_y + 3.0),
            ],
            width,
            rgb(r, g, b),
            dash,
        );
        w.text(
            legend_x + 22.0,
            legend_y,
            SMALL,
            &format!("{} (AUC {})", label(locale, &s.name), f3(s.auc)),
        );
        legend_y -= SMALL * 1.7;
    }
    w.y = y0 - 34.0;
}

pub(super) fn readers_section(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
    let t = |k: &str| tl(locale, k);
    let a = &locked.analysis;
    w.heading(&t("pdf.s_readers"));
    if a.readers.is_empty() {
        w.paragraph(&t("pdf.no_readers"), BODY);
    } else {
        let rows: Vec<Vec<String>> = a
            .readers
            .iter()
            .map(|r| {
                vec![
                    format!("{} (n = {})", label(locale, &r.reader), r.n),
                    auc_with_ci(&r.auc_likelihood),
                    r.auc_bone_rads.as_ref().map_or("—".to_owned(), auc_with_ci),
                    rate_cells(&r.call.sensitivity)[0].clone(),
                    rate_cells(&r.call.specificity)[0].clone(),
                ]
            })
            .collect();
        w.table(
            &[110.0, 105.0, 105.0, 82.0, 82.0],
            &[
                String::new(),
                t("pdf.reader_auc"),
                t("pdf.bone_rads_auc"),
                t("pdf.sensitivity"),
                t("pdf.specificity"),
            ],
            &rows,
        );
        let rows: Vec<Vec<String>> = a
            .readers
            .iter()
            .map(|r| {
                let c = &r.ai_vs_reader;
                vec![
                    label(locale, &r.reader),
                    format!(
                        "{:+.3} ({}; {})",
                        c.diff,
                        c.diff_ci.map_or("—".to_owned(), interval),
                        p_value(c.p_two_sided)
                    ),
                    format!(
                        "{} : {}; {}",
                        r.mcnemar.b,
                        r.mcnemar.c,
                        p_value(r.mcnemar.p_exact)
                    ),
                ]
            })
            .collect();
        w.table(
            &[110.0, 200.0, 174.0],
            &[String::new(), t("pdf.diff"), t("pdf.mcnemar")],
            &rows,
        );
        w.paragraph(&t("pdf.mcnemar_note"), SMALL);
    }
    w.paragraph(&t("pdf.mrmc"), BODY);
    match &a.mrmc {
        Some(m) => {
            let mut s = t("pdf.mrmc_text");
            let args = [
                ("ai", f3(m.modality_auc[0])),
                ("readers", f3(m.modality_auc[1])),
                (
                    "diff",
                    m.diff.map_or("—".to_owned(), |d| format!("{d:+.3}")),
                ),
                ("ci", m.diff_ci.map_or("—".to_owned(), interval)),
                ("f", format!("{:.3}", m.f)),
                ("ndf", format!("{:.0}", m.ndf)),
                ("ddf", format!("{:.2}", m.ddf)),
                ("p", p_value(Some(m.p_value))),
            ];
            for (k, v) in args {
                s = s.replace(&format!("%{{{k}}}"), &v);
            }
            w.paragraph(&s, BODY);
        }
        None => w.paragraph(&t("pdf.mrmc_none"), BODY),
    }
}
