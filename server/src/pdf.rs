//! The PDF plumbing both reports share (printpdf): A4 pages written top
//! to bottom in the report font (a subset of Noto Sans CJK SC shipped with
//! the program, embedded cut down to the characters a document uses),
//! headings, wrapped paragraphs, tables, pictures and lines; and the fixed
//! document identifier and dates that make the same content give the same
//! bytes on every machine.

use printpdf::{
    Color, FontId, Line, LineDashPattern, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument,
    PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, RawImage, RawImageData, RawImageFormat,
    Rect, Rgb, TextItem, XObject, XObjectId, XObjectTransform,
};
use std::sync::OnceLock;

/// The font the report is set in (OFL 1.1, see `fonts/OFL.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../fonts/NotoSansSC-Report.otf");

pub(crate) fn font() -> &'static ParsedFont {
    static FONT: OnceLock<ParsedFont> = OnceLock::new();
    FONT.get_or_init(|| {
        ParsedFont::from_bytes(FONT_BYTES, 0, &mut Vec::new())
            .expect("the report font shipped with the program parses")
    })
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF writer reported: {0}")]
    Pdf(String),
}

// A4 in points, and the text block.
pub(crate) const PAGE_W: f32 = 595.28;
pub(crate) const PAGE_H: f32 = 841.89;
pub(crate) const LEFT: f32 = 56.0;
pub(crate) const RIGHT: f32 = PAGE_W - 56.0;
pub(crate) const TOP: f32 = PAGE_H - 56.0;
pub(crate) const BOTTOM: f32 = 64.0;
pub(crate) const BODY: f32 = 9.5;
pub(crate) const SMALL: f32 = 8.0;

pub(crate) fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb::new(r, g, b, None))
}

pub(crate) fn pt(x: f32, y: f32) -> LinePoint {
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
    ) -> Result<Vec<u8>, PdfError> {
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
            return Err(PdfError::Pdf(format!("{warnings:?}")));
        }
        Ok(fixed_document_id(bytes))
    }

    /// The advance width of `s` at `size` points.
    pub(crate) fn width(&self, s: &str, size: f32) -> f32 {
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

    pub(crate) fn text_right(&mut self, right: f32, y: f32, size: f32, s: &str) {
        let w = self.width(s, size);
        self.text(right - w, y, size, s);
    }

    pub(crate) fn text_centred(&mut self, centre: f32, y: f32, size: f32, s: &str) {
        let w = self.width(s, size);
        self.text(centre - w / 2.0, y, size, s);
    }

    pub(crate) fn stroke(
        &mut self,
        points: &[(f32, f32)],
        width: f32,
        colour: Color,
        dash: &[f32],
    ) {
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

    pub(crate) fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
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
    pub(crate) fn arrow(&mut self, from: (f32, f32), to: (f32, f32)) {
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

    pub(crate) fn page_break(&mut self) {
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
    pub(crate) fn wrap(&self, s: &str, size: f32, max: f32) -> Vec<String> {
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
    pub(crate) fn table(&mut self, widths: &[f32], header: &[String], rows: &[Vec<String>]) {
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

/// The report font cut down to the characters the document uses (the whole
/// font is 2.9 MB; printpdf embeds the font it is given as it is).
pub(crate) fn subset_font(used: &std::collections::BTreeSet<char>) -> Result<ParsedFont, PdfError> {
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
    let fail = |e: String| PdfError::Pdf(format!("subsetting the report font: {e}"));
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
pub(crate) fn pdf_date(at: &str) -> printpdf::date::OffsetDateTime {
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
pub(crate) fn fixed_document_id(mut bytes: Vec<u8>) -> Vec<u8> {
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

pub(crate) fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
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
}
