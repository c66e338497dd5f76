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

use osteo_app::i18n::tl;
use osteo_trial::analysis::proportion::Interval;
use osteo_trial::analysis::roc::AucEstimate;
use osteo_trial::analysis::threshold::Rate;
use osteo_trial::domain::Locale;
use osteo_trial::study::report::{
    ByReference, LockedAnalysis, BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED,
};
use printpdf::{
    Color, FontId, Line, LineDashPattern, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument,
    PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, RawImage, RawImageData, RawImageFormat,
    Rect, Rgb, TextItem, XObject, XObjectId, XObjectTransform,
};
use std::sync::OnceLock;

/// The font the report is set in (OFL 1.1, see `fonts/OFL.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../fonts/NotoSansSC-Report.otf");

fn font() -> &'static ParsedFont {
    static FONT: OnceLock<ParsedFont> = OnceLock::new();
    FONT.get_or_init(|| {
        ParsedFont::from_bytes(FONT_BYTES, 0, &mut Vec::new())
            .expect("the report font shipped with the program parses")
    })
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the PDF writer reported: {0}")]
    Pdf(String),
}

// A4 in points, and the text block.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
pub(crate) const LEFT: f32 = 56.0;
pub(crate) const RIGHT: f32 = PAGE_W - 56.0;
const TOP: f32 = PAGE_H - 56.0;
const BOTTOM: f32 = 64.0;
pub(crate) const BODY: f32 = 9.5;
pub(crate) const SMALL: f32 = 8.0;

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb::new(r, g, b, None))
}

fn pt(x: f32, y: f32) -> LinePoint {
    LinePoint {
        p: Point { x: Pt(x), y: Pt(y) },
        bezier: false,
    }
}

/// Pages being written top to bottom (A4), set in the report font; shared
/// by the locked analysis report and the per-case diagnostic report.
pub(crate) struct Writer {
    font: FontId,
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    /// Pictures placed so far, named `Im1`, `Im2`, …
    images: Vec<(XObjectId, RawImage)>,
    /// The baseline of the next line, in points from the bottom.
    pub(crate) y: f32,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer {
            font: FontId("F1".to_owned()),
            pages: Vec::new(),
            ops: Vec::new(),
            images: Vec::new(),
            y: TOP,
        }
    }

    /// Places an RGB picture with its top-left corner at `(x, top)`,
    /// `width` points wide (the height follows the aspect ratio); returns
    /// its height.
    pub(crate) fn picture(&mut self, x: f32, top: f32, width: f32, img: &image::RgbImage) -> f32 {
        let (w, h) = img.dimensions();
        let scale = width / w.max(1) as f32;
        let height = h as f32 * scale;
        let id = XObjectId(format!("Im{}", self.images.len() + 1));
        self.images.push((
            id.clone(),
            RawImage {
                pixels: RawImageData::U8(img.as_raw().clone()),
                width: w as usize,
                height: h as usize,
                data_format: RawImageFormat::RGB8,
                tag: Vec::new(),
            },
        ));
        self.ops.push(Op::UseXobject {
            id,
            transform: XObjectTransform {
                translate_x: Some(Pt(x)),
                translate_y: Some(Pt(top - height)),
                scale_x: Some(scale),
                scale_y: Some(scale),
                dpi: Some(72.0),
                ..Default::default()
            },
        });
        height
    }

    /// Ends the document: a footer on every page (`footer(page, pages)`),
    /// the font cut down to the characters used, `date` (RFC 3339) as its
    /// dates, and an identifier derived from the content.
    pub(crate) fn finish(
        mut self,
        title: &str,
        date: &str,
        footer: impl Fn(usize, usize) -> String,
    ) -> Result<Vec<u8>, ReportError> {
        if !self.ops.is_empty() {
            self.page_break();
        }
        let n = self.pages.len();
        let pages: Vec<PdfPage> = std::mem::take(&mut self.pages)
            .into_iter()
            .enumerate()
            .map(|(i, ops)| {
                self.ops = ops;
                self.text_centred(PAGE_W / 2.0, 36.0, 7.0, &footer(i + 1, n));
                PdfPage::new(Mm(210.0), Mm(297.0), std::mem::take(&mut self.ops))
            })
            .collect();
        let used: std::collections::BTreeSet<char> = pages
            .iter()
            .flat_map(|p| &p.ops)
            .filter_map(|op| match op {
                Op::ShowText { items } => Some(items),
                _ => None,
            })
            .flatten()
            .filter_map(|item| match item {
                TextItem::Text(s) => Some(s.chars()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut doc = PdfDocument::new(title);
        doc.resources
            .fonts
            .map
            .insert(self.font, printpdf::font::PdfFont::new(subset_font(&used)?));
        for (id, img) in self.images {
            doc.resources.xobjects.map.insert(id, XObject::Image(img));
        }
        let date = pdf_date(date);
        doc.metadata.info.creation_date = date;
        doc.metadata.info.modification_date = date;
        doc.metadata.info.metadata_date = date;
        doc.metadata.info.creator = format!("Osteo EDC {}", env!("CARGO_PKG_VERSION"));
        doc.metadata.info.producer = "printpdf".to_owned();
        doc.with_pages(pages);
        let mut warnings = Vec::new();
        let bytes = doc.save(
            &PdfSaveOptions {
                optimize: true,
                subset_fonts: true,
                secure: true,
                image_optimization: None,
            },
            &mut warnings,
        );
        if bytes.is_empty() {
            return Err(ReportError::Pdf(format!("{warnings:?}")));
        }
        Ok(fixed_document_id(bytes))
    }

    /// The advance width of `s` at `size` points.
    fn width(&self, s: &str, size: f32) -> f32 {
        let f = font();
        let units: u32 = s
            .chars()
            .map(|c| {
                f.lookup_glyph_index(c as u32)
                    .and_then(|g| f.glyph_widths.get(&g).copied())
                    .unwrap_or(f.units_per_em / 2) as u32
            })
            .sum();
        units as f32 * size / f32::from(f.units_per_em)
    }

    pub(crate) fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::External(self.font.clone()),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::ShowText {
                items: vec![TextItem::Text(s.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    fn text_right(&mut self, right: f32, y: f32, size: f32, s: &str) {
        let w = self.width(s, size);
        self.text(right - w, y, size, s);
    }

    fn text_centred(&mut self, centre: f32, y: f32, size: f32, s: &str) {
        let w = self.width(s, size);
        self.text(centre - w / 2.0, y, size, s);
    }

    fn stroke(&mut self, points: &[(f32, f32)], width: f32, colour: Color, dash: &[f32]) {
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor { col: colour },
            Op::SetOutlineThickness { pt: Pt(width) },
            Op::SetLineDashPattern {
                dash: LineDashPattern::new(0.0, dash),
            },
            Op::DrawLine {
                line: Line {
                    points: points.iter().map(|(x, y)| pt(*x, *y)).collect(),
                    is_closed: false,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor {
                col: rgb(0.2, 0.2, 0.2),
            },
            Op::SetOutlineThickness { pt: Pt(0.7) },
            Op::DrawRectangle {
                rectangle: Rect {
                    x: Pt(x),
                    y: Pt(y),
                    width: Pt(w),
                    height: Pt(h),
                    mode: Some(PaintMode::Stroke),
                    winding_order: None,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    /// An arrow from `(x, y1)` down to `(x, y2)`, or across.
    fn arrow(&mut self, from: (f32, f32), to: (f32, f32)) {
        let grey = rgb(0.2, 0.2, 0.2);
        self.stroke(&[from, to], 0.7, grey.clone(), &[]);
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-3);
        let (ux, uy) = (dx / len, dy / len);
        let (bx, by) = (to.0 - 5.0 * ux, to.1 - 5.0 * uy);
        self.stroke(
            &[
                (bx - 2.5 * uy, by + 2.5 * ux),
                to,
                (bx + 2.5 * uy, by - 2.5 * ux),
            ],
            0.7,
            grey,
            &[],
        );
    }

    fn page_break(&mut self) {
        self.pages.push(std::mem::take(&mut self.ops));
        self.y = TOP;
    }

    /// Starts a new page unless `height` points fit below the cursor.
    pub(crate) fn need(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.page_break();
        }
    }

    /// Splits `s` into lines no wider than `max` (at spaces, or between
    /// Chinese characters).
    fn wrap(&self, s: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut word = String::new();
        let flush_word = |line: &mut String, word: &mut String, lines: &mut Vec<String>| {
            let candidate = format!("{line}{word}");
            if !line.is_empty() && self.width(candidate.trim_end(), size) > max {
                lines.push(line.trim_end().to_owned());
                *line = word.trim_start().to_owned();
            } else {
                *line = candidate;
            }
            word.clear();
        };
        for c in s.chars() {
            word.push(c);
            if c == ' ' || c as u32 >= 0x2E80 {
                flush_word(&mut line, &mut word, &mut lines);
            }
        }
        flush_word(&mut line, &mut word, &mut lines);
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_owned());
        }
        // A word wider than the line (a hash) is broken between characters.
        let mut out = Vec::new();
        for l in lines {
            let mut part = String::new();
            for c in l.chars() {
                part.push(c);
                if self.width(&part, size) > max && part.chars().count() > 1 {
                    part.pop();
                    out.push(std::mem::take(&mut part));
                    part.push(c);
                }
            }
            out.push(part);
        }
        out
    }

    pub(crate) fn paragraph(&mut self, s: &str, size: f32) {
        for l in self.wrap(s, size, RIGHT - LEFT) {
            self.need(size * 1.45);
            self.y -= size * 1.45;
            self.text(LEFT, self.y, size, &l);
        }
        self.y -= size * 0.5;
    }

    /// The document's title, wrapped, at the top of the page.
    pub(crate) fn title(&mut self, s: &str) {
        for l in self.wrap(s, 14.0, RIGHT - LEFT) {
            self.y -= 19.0;
            self.text(LEFT, self.y, 14.0, &l);
        }
        self.y -= 6.0;
    }

    pub(crate) fn heading(&mut self, s: &str) {
        self.need(60.0);
        self.y -= 22.0;
        self.text(LEFT, self.y, 12.5, s);
        self.y -= 6.0;
    }

    /// A table: the first column left-aligned, the others right-aligned in
    /// columns of the given widths; a rule under the header.
    fn table(&mut self, widths: &[f32], header: &[String], rows: &[Vec<String>]) {
        let size = SMALL;
        let lh = size * 1.6;
        self.need(lh * 2.5);
        let draw = |w: &mut Writer, cells: &[String]| {
            w.need(lh);
            w.y -= lh;
            let mut x = LEFT;
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    w.text(x, w.y, size, cell);
                } else {
                    w.text_right(x + width, w.y, size, cell);
                }
                x += width;
            }
        };
        draw(self, header);
        let total: f32 = widths.iter().sum();
        let y = self.y - size * 0.5;
        self.stroke(
            &[(LEFT, y), (LEFT + total, y)],
            0.5,
            rgb(0.3, 0.3, 0.3),
            &[],
        );
        for r in rows {
            draw(self, r);
        }
        self.y -= size;
    }

    pub(crate) fn key_values(&mut self, rows: &[(String, String)]) {
        let label_w = rows
            .iter()
            .map(|(k, _)| self.width(k, BODY))
            .fold(0.0, f32::max)
            + 12.0;
        for (k, v) in rows {
            let lines = self.wrap(v, BODY, RIGHT - LEFT - label_w);
            for (i, l) in lines.iter().enumerate() {
                self.need(BODY * 1.5);
                self.y -= BODY * 1.5;
                if i == 0 {
                    self.text(LEFT, self.y, BODY, k);
                }
                self.text(LEFT + label_w, self.y, BODY, l);
            }
        }
        self.y -= BODY * 0.5;
    }
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}

fn interval(ci: (f64, f64)) -> String {
    format!("{}–{}", f3(ci.0), f3(ci.1))
}

fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "<0.0001".to_owned(),
        Some(p) => format!("{p:.4}"),
        None => "—".to_owned(),
    }
}

fn auc_with_ci(a: &AucEstimate) -> String {
    match a.ci_delong {
        Some(ci) => format!("{} ({})", f3(a.auc), interval(ci)),
        None => format!("{} (—)", f3(a.auc)),
    }
}

fn rate_cells(r: &Rate) -> [String; 3] {
    let ci = |i: Option<Interval>| i.map_or("—".to_owned(), |i| interval((i.lower, i.upper)));
    [
        r.value
            .map_or("—".to_owned(), |v| format!("{} ({}/{})", f3(v), r.x, r.n)),
        ci(r.wilson),
        ci(r.clopper_pearson),
    ]
}

/// A series or reader name from the analysis (`reader 2 Bone-RADS`), in the
/// report's language.
fn label(locale: Locale, name: &str) -> String {
    if name == "AI" {
        return tl(locale, "pdf.ai");
    }
    name.replace("mean of readers", &tl(locale, "pdf.mean_of_readers"))
        .replace("reader", &tl(locale, "pdf.reader"))
        .replace("likelihood", &tl(locale, "pdf.likelihood"))
}

/// The report of a locked analysis in `locale`, as PDF bytes.
pub fn render(locked: &LockedAnalysis, locale: Locale) -> Result<Vec<u8>, ReportError> {
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
    for d in &a.deviations {
        w.paragraph(
            &[
                format!(
                    "{} — {}: {} → {}",
                    d.study_number,
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

/// The report font cut down to the characters the document uses (the whole
/// font is 2.9 MB; printpdf embeds the font it is given as it is).
fn subset_font(used: &std::collections::BTreeSet<char>) -> Result<ParsedFont, ReportError> {
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::subset::{subset, CmapTarget, SubsetProfile};
    let f = font();
    // Glyph 0 (.notdef) first, then the used glyphs in order, once each.
    let mut glyphs: Vec<u16> = used
        .iter()
        .filter_map(|c| f.lookup_glyph_index(*c as u32))
        .filter(|g| *g != 0)
        .collect();
    glyphs.sort_unstable();
    glyphs.dedup();
    glyphs.insert(0, 0);
    let fail = |e: String| ReportError::Pdf(format!("subsetting the report font: {e}"));
    let data = ReadScope::new(FONT_BYTES)
        .read::<FontData<'_>>()
        .map_err(|e| fail(e.to_string()))?;
    let provider = data.table_provider(0).map_err(|e| fail(e.to_string()))?;
    let bytes = subset(&provider, &glyphs, &SubsetProfile::Pdf, CmapTarget::Unicode)
        .map_err(|e| fail(e.to_string()))?;
    ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
        .ok_or_else(|| fail("the subset does not parse".to_owned()))
}

/// An RFC 3339 time as the PDF's dates (the epoch if it cannot be read).
fn pdf_date(at: &str) -> printpdf::date::OffsetDateTime {
    let seconds = chrono::DateTime::parse_from_rfc3339(at)
        .map(|d| d.timestamp())
        .unwrap_or(0);
    printpdf::date::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or_else(|_| printpdf::date::OffsetDateTime::from_unix_timestamp(0).expect("epoch"))
}

/// printpdf writes a fresh random `/ID` into the trailer of every document;
/// the report's identifier is instead the SHA-256 of the document written
/// with that identifier blanked, so the same content gives the same bytes.
/// The replacement keeps the length, so the cross-reference offsets hold.
fn fixed_document_id(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(trailer) = find_last(&bytes, b"trailer") else {
        return bytes;
    };
    let Some(id_at) = find_last(&bytes[trailer..], b"/ID").map(|i| i + trailer) else {
        return bytes;
    };
    // The two literal strings after /ID: (…)(…).
    let mut spans = Vec::new();
    let mut i = id_at;
    while spans.len() < 2 && i < bytes.len() {
        if bytes[i] == b'(' {
            let start = i + 1;
            let Some(len) = bytes[start..].iter().position(|b| *b == b')') else {
                return bytes;
            };
            spans.push((start, start + len));
            i = start + len;
        }
        i += 1;
    }
    for &(s, e) in &spans {
        bytes[s..e].fill(b'0');
    }
    let digest = osteo_trial::store::sha256_hex(&bytes);
    for &(s, e) in &spans {
        for (b, d) in bytes[s..e].iter_mut().zip(digest.bytes().cycle()) {
            *b = d;
        }
    }
    bytes
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The STARD 2015 flow diagram: screened → enrolled → reference standard →
/// the AI's call → the reference standard's result, with the patients who
/// left the flow at each step beside it.
fn flow_diagram(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
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
fn roc_figure(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
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

fn readers_section(w: &mut Writer, locked: &LockedAnalysis, locale: Locale) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_id_is_derived_from_the_content() {
        let doc =
            b"%PDF-1.3\nstuff\ntrailer\n<</Root 1 0 R/ID[(ABCDEFGH)(IJKLMNOP)]>>\n%%EOF".to_vec();
        let other =
            b"%PDF-1.3\nstuff\ntrailer\n<</Root 1 0 R/ID[(QRSTUVWX)(YZABCDEF)]>>\n%%EOF".to_vec();
        let a = fixed_document_id(doc.clone());
        assert_eq!(a.len(), doc.len(), "the length is kept");
        assert_eq!(
            a,
            fixed_document_id(other),
            "random identifiers give the same bytes"
        );
        let changed = fixed_document_id(
            b"%PDF-1.3\nSTUFF\ntrailer\n<</Root 1 0 R/ID[(ABCDEFGH)(IJKLMNOP)]>>\n%%EOF".to_vec(),
        );
        assert_ne!(a, changed, "other content, another identifier");
    }

    #[test]
    fn long_text_wraps_within_the_width() {
        let w = Writer::new();
        let s = "通过临床适用的深度学习算法对多视角X线图像进行骨肿瘤风险的前瞻性评估 and some English words that go on";
        let lines = w.wrap(s, 12.0, 200.0);
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| w.width(l, 12.0) <= 200.0 + 1e-3));
        assert_eq!(lines.concat().replace(' ', ""), s.replace(' ', ""));
        let hash = "f4ac0553cc969a0622bd745918a74b9cd6499e64907535967b6d51a1ed76212f";
        let lines = w.wrap(hash, 9.5, 150.0);
        assert!(lines.len() > 1, "a long word is broken");
        assert!(lines.iter().all(|l| w.width(l, 9.5) <= 150.0 + 1e-3));
        assert_eq!(lines.concat(), hash);
    }

    /// Thirty cases, two readers who read every case.
    fn two_reader_analysis() -> LockedAnalysis {
        use osteo_trial::study::analysis::{analyse, Analysed, AnalysedCase};
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
