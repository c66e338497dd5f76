//! The dashboard's charts, drawn on the server as SVG with plotters: the
//! page shows them without JavaScript, and the same markup hydrates. Text
//! is set by the browser (`sans-serif`), so Chinese labels need no font on
//! the server. Each chart comes with its numbers as a table on the page.
//!
//! Only operational figures are drawn: nothing here knows a result.

use crate::i18n::tl;
use osteo_trial::domain::Locale;
use osteo_trial::study::{Dashboard, SiteEnrolment};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use crate::api::cases::DashboardCharts;

/// The colours of the series: Okabe and Ito's palette, told apart with
/// colour blindness; the overall line is black.
const SERIES: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(120, 120, 120),
];
const BAR: RGBColor = RGBColor(0, 114, 178);
const GRID: RGBColor = RGBColor(225, 225, 225);
const INK: RGBColor = RGBColor(40, 40, 40);
const FONT: &str = "sans-serif";

/// Draws every chart of `d` with labels in `locale`.
pub fn dashboard_charts(d: &Dashboard, locale: Locale) -> DashboardCharts {
    let t = |k: &str| tl(locale, k);
    let flow = &d.flow;
    let funnel = [
        (t("screening.flow.screened"), flow.screened),
        (format!("{} E1", t("dashboard.excluded")), flow.excluded_e1),
        (format!("{} E2", t("dashboard.excluded")), flow.excluded_e2),
        (format!("{} E3", t("dashboard.excluded")), flow.excluded_e3),
        (
            t("screening.flow.enrolled_prospective"),
            d.enrolled_prospective,
        ),
        (t("dashboard.reference_standard"), d.reference_standard),
    ];
    let states: Vec<(String, i64)> = d
        .cases_by_state
        .iter()
        .map(|(s, n)| (t(&format!("state.{}", s.as_str())), *n))
        .collect();
    let ageing: Vec<(String, i64)> = d
        .query_ageing
        .buckets()
        .iter()
        .map(|(k, n)| (t(k), *n))
        .collect();
    let readers: Vec<(String, i64)> = d
        .readers
        .iter()
        .map(|r| (r.reader.clone(), r.signed))
        .collect();
    DashboardCharts {
        enrolment: enrolment(&d.enrolment, d.prospective_target, locale),
        funnel: bars(
            &t("dashboard.chart.funnel"),
            &funnel,
            &t("dashboard.patients"),
        ),
        states: bars(&t("dashboard.chart.states"), &states, &t("dashboard.cases")),
        query_ageing: bars(
            &t("dashboard.chart.query_ageing"),
            &ageing,
            &t("dashboard.queries"),
        ),
        readers: bars(
            &t("dashboard.chart.readers"),
            &readers,
            &t("dashboard.reads_signed"),
        ),
    }
}

/// Days from `from` to a `YYYY-MM-DD` date (None when it does not parse).
fn day(from: chrono::NaiveDate, date: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(|d| (d - from).num_days())
}

/// The cumulative count after each enrolment day: `(day, enrolled so far)`,
/// starting at zero on day 0.
pub fn cumulative(from: chrono::NaiveDate, dates: &[String]) -> Vec<(i64, i64)> {
    let mut days: Vec<i64> = dates.iter().filter_map(|d| day(from, d)).collect();
    days.sort_unstable();
    let mut out = vec![(0, 0)];
    for (i, d) in days.iter().enumerate() {
        match out.last_mut() {
            Some(last) if last.0 == *d => last.1 = i as i64 + 1,
            _ => out.push((*d, i as i64 + 1)),
        }
    }
    out
}

/// Cumulative prospective enrolment over time, per site and overall,
/// against the target.
fn enrolment(sites: &[SiteEnrolment], target: i64, locale: Locale) -> String {
    let t = |k: &str| tl(locale, k);
    let all: Vec<String> = sites.iter().flat_map(|s| s.dates.iter().cloned()).collect();
    let first = all
        .iter()
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .min()
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let overall = cumulative(first, &all);
    let today = (chrono::Utc::now().date_naive() - first).num_days();
    let last_day = overall.last().map_or(0, |p| p.0).max(today).max(7);
    let top = target.max(overall.last().map_or(0, |p| p.1)) + target / 10;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 340)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    t("dashboard.chart.enrolment"),
                    (FONT, 22).into_font().color(&INK),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(0..last_day, 0..top)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID)
                .label_style((FONT, 17).into_font().color(&INK))
                .axis_desc_style((FONT, 17).into_font().color(&INK))
                .x_labels(6)
                .x_label_formatter(&|d| {
                    (first + chrono::Duration::days(*d))
                        .format("%Y-%m-%d")
                        .to_string()
                })
                .y_desc(t("dashboard.patients"))
                .draw()?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0, target), (last_day, target)],
                    6,
                    4,
                    ShapeStyle::from(&RGBColor(200, 0, 0)).stroke_width(2),
                ))?
                .label(format!("{} ({target})", t("dashboard.target")))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], RGBColor(200, 0, 0).stroke_width(2))
                });
            for (i, site) in sites.iter().enumerate() {
                let colour = SERIES[i % SERIES.len()];
                chart
                    .draw_series(LineSeries::new(
                        step(&cumulative(first, &site.dates)),
                        colour.stroke_width(2),
                    ))?
                    .label(format!("{} ({})", site.site, site.dates.len()))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
            }
            chart
                .draw_series(LineSeries::new(step(&overall), BLACK.stroke_width(3)))?
                .label(format!("{} ({})", t("dashboard.all_sites"), all.len()))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(3)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FONT, 17).into_font().color(&INK))
                .background_style(WHITE.mix(0.9))
                .border_style(GRID)
                .draw()?;
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            tracing::warn!(error = %e, "could not draw the enrolment chart");
        }
    }
    accessible(svg, &t("dashboard.chart.enrolment"))
}

/// A cumulative count as a staircase: it holds until the next enrolment.
fn step(points: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push((p.0, points[i - 1].1));
        }
        out.push(*p);
    }
    out
}

/// A horizontal bar chart of labelled counts, each bar with its number.
fn bars(title: &str, rows: &[(String, i64)], unit: &str) -> String {
    let n = rows.len().max(1);
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let height = 100 + 30 * n as u32;
    // Wide (CJK) characters take about twice the width of Latin ones.
    let width = |s: &str| -> u32 { s.chars().map(|c| if c > '\u{2e7f}' { 15 } else { 8 }).sum() };
    let longest = rows.iter().map(|r| width(&r.0)).max().unwrap_or(32);
    let label_width = (longest + 16).clamp(60, 280);
    // The first row at the top.
    let at = |i: usize| (n - 1 - i) as i32;
    let labels: Vec<String> = rows.iter().rev().map(|r| r.0.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, height)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 20).into_font().color(&INK))
                .margin(10)
                .x_label_area_size(44)
                .y_label_area_size(label_width)
                .build_cartesian_2d(0..(max + max / 6 + 1), (0..n as i32).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID)
                .label_style((FONT, 17).into_font().color(&INK))
                .axis_desc_style((FONT, 17).into_font().color(&INK))
                .x_labels(6)
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => {
                        labels.get(*i as usize).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .x_desc(unit)
                .draw()?;
            chart.draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
                let mut bar = Rectangle::new(
                    [
                        (0, SegmentValue::Exact(at(i))),
                        (*v, SegmentValue::Exact(at(i) + 1)),
                    ],
                    BAR.filled(),
                );
                bar.set_margin(5, 5, 0, 0);
                bar
            }))?;
            chart.draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
                Text::new(
                    format!(" {v}"),
                    (*v, SegmentValue::CenterOf(at(i))),
                    (FONT, 17)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))?;
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            tracing::warn!(error = %e, "could not draw a chart");
        }
    }
    accessible(svg, title)
}

/// Makes the SVG scale with its box and names it for screen readers.
fn accessible(svg: String, title: &str) -> String {
    let name: String = title
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{name}\" class=\"chart\" "),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cumulative_count_rises_by_one_per_enrolment_and_merges_same_days() {
        let from = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let dates: Vec<String> = [
            "2026-01-03",
            "2026-01-01",
            "2026-01-03",
            "2026-01-10",
            "bad",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(cumulative(from, &dates), vec![(0, 1), (2, 3), (9, 4)]);
        assert_eq!(
            step(&[(0, 0), (2, 1), (5, 3)]),
            vec![(0, 0), (2, 0), (2, 1), (5, 1), (5, 3)]
        );
    }

    #[test]
    fn a_bar_chart_names_itself_and_shows_every_count() {
        let svg = bars(
            "Queries <by> age",
            &[("0–7".into(), 4), ("8–14".into(), 0), ("> 30".into(), 12)],
            "queries",
        );
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"Queries &lt;by&gt; age\""),
            "{svg}"
        );
        for text in [" 4", " 0", " 12", "0–7", "&gt; 30"] {
            assert!(
                svg.contains(&format!("\n{text}\n</text>")),
                "{text} missing from {svg}"
            );
        }
    }
}
