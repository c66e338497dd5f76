//! The diagnostic report of one case as a PDF, in English or Chinese: what
//! the case page's report shows, to print or file — each view beside its
//! heat-map overlay, the primary reader's Bone-RADS features, points,
//! category and the matching management suggestion, the AI probability and
//! call at the threshold with the note on calibration, and the model (id,
//! training data, validation AUC). Only for the roles that may see the
//! case's AI output, once its prediction is locked; every download is
//! audited.

use crate::pdf::{PdfError, Writer};
use crate::state::AppState;
use osteo_app::i18n::tl;
use osteo_trial::audit::{self, Change, Principal};
use osteo_trial::case::{self, CaseError};
use osteo_trial::domain::Locale;

/// What the report shows, gathered before rendering.
struct Content {
    study_number: String,
    prediction: case::Prediction,
    read: Option<case::Read>,
    /// Per view: its name, the radiograph and the overlay, as RGB.
    views: Vec<(
        Option<String>,
        Option<image::RgbImage>,
        Option<image::RgbImage>,
    )>,
    model: Option<osteo_model::card::ModelCard>,
    /// The study's registration (the trial's, or `DEMO`).
    registration: &'static str,
}

fn rgb(png: Option<Vec<u8>>) -> Option<image::RgbImage> {
    image::load_from_memory(&png?).ok().map(|i| i.to_rgb8())
}

/// The report of `case_id`, or `None` while the case has no locked
/// prediction; refused (as the case's AI output is) to roles that may not
/// see it.
pub async fn pdf(
    state: &AppState,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    locale: Locale,
) -> Result<Option<Vec<u8>>, CaseError> {
    let Some(prediction) = case::prediction(&state.db, by, case_id).await? else {
        return Ok(None);
    };
    let detail = case::case_detail(&state.db, by, case_id).await?;
    let mut views = Vec::new();
    for (n, heatmap) in prediction.input.heatmaps.iter().enumerate() {
        let image_sha = prediction.input.image_sha256.get(n);
        let view = image_sha
            .and_then(|s| detail.images.iter().find(|i| s == &i.sha256))
            .map(|i| i.view.as_str().to_owned());
        let plain = match image_sha {
            Some(sha) => crate::imaging::preview(
                state.images.as_ref(),
                &state.settings.data_dir.join("cache"),
                sha.as_str(),
                480,
                None,
            )
            .await
            .ok()
            .flatten(),
            None => None,
        };
        let overlay = state.images.get(heatmap.as_str()).await.ok().flatten();
        views.push((view, rgb(plain), rgb(overlay)));
    }
    // The primary reader is the first reader assigned.
    let primary = detail.readers.first();
    let content = Content {
        study_number: detail.summary.study_number.clone(),
        registration: state.study_kind.registration(),
        read: detail
            .reads
            .iter()
            .find(|r| r.is_locked() && Some(&r.reader) == primary)
            .or_else(|| detail.reads.iter().find(|r| r.is_locked()))
            .cloned(),
        model: state
            .ai
            .as_ref()
            .map(|ai| ai.card().clone())
            .filter(|c| c.model_id == prediction.input.model_id),
        prediction,
        views,
    };
    let bytes = tokio::task::spawn_blocking(move || render(&content, locale))
        .await
        .map_err(|e| CaseError::Rendering(format!("the report could not be made: {e}")))?
        .map_err(|e| CaseError::Rendering(e.to_string()))?;
    audit::record(
        &state.db,
        by,
        Change::new("report.download", "case", case_id).field(
            "file",
            None,
            Some(format!(
                "diagnostic report ({}) sha256={}",
                locale.tag(),
                osteo_trial::store::sha256_hex(&bytes)
            )),
        ),
    )
    .await?;
    Ok(Some(bytes))
}

fn render(c: &Content, locale: Locale) -> Result<Vec<u8>, PdfError> {
    let t = |k: &str| tl(locale, k);
    let opt = |code: &str| t(&format!("opt.{code}"));
    let p = &c.prediction;
    let mut w = Writer::new();
    w.title(&format!("{} · {}", t("report.title"), c.study_number));
    if c.model.as_ref().is_some_and(|m| m.demo) {
        w.paragraph(&t("report.demo_warning"), crate::pdf::BODY);
    }

    // The AI.
    w.heading(&t("report.ai"));
    w.key_values(&[
        (
            t("report.probability"),
            format!("{:.1}%", p.input.probability.get() * 100.0),
        ),
        (
            t("report.call"),
            format!(
                "{} ({} {:.1}%)",
                opt(p.call.as_str()),
                t("ai.threshold"),
                p.input.threshold.get() * 100.0
            ),
        ),
        (t("report.model"), p.input.model_id.clone()),
        (
            t("report.model_card"),
            c.model.as_ref().map_or("—".to_owned(), |m| {
                format!(
                    "{} · {} {:.3}",
                    m.training_data,
                    t("ai.card"),
                    m.validation_auc
                )
            }),
        ),
        (t("report.locked_at"), p.created_at.clone()),
        (
            t("report.domain"),
            match &p.input.domain {
                None => t("report.domain_unknown"),
                Some(d) if d.outside => t("ai.out_of_domain"),
                Some(_) => t("report.domain_inside"),
            },
        ),
    ]);
    if let Some(d) = p.input.domain.as_ref().filter(|d| d.outside) {
        w.paragraph(&t("ai.out_of_domain_note"), crate::pdf::BODY);
        for reason in &d.reasons {
            w.paragraph(&format!("• {reason}"), crate::pdf::SMALL);
        }
    }
    w.paragraph(&t("report.calibration"), crate::pdf::SMALL);

    // The radiologist.
    w.heading(&t("report.bonerads"));
    match c
        .read
        .as_ref()
        .and_then(|r| r.input.clone().zip(r.score).map(|(i, s)| (r, i, s)))
    {
        None => w.paragraph("—", crate::pdf::BODY),
        Some((r, input, score)) => {
            let f = input.features;
            let yes_no = |b: bool| opt(if b { "true" } else { "false" });
            w.key_values(&[
                (t("read.reader"), r.reader_name.clone()),
                (
                    t("field.margin"),
                    f.margin
                        .map_or_else(|| t("read.not_assessable"), |m| m.as_str().to_owned()),
                ),
                (t("field.periosteal"), opt(f.periosteal.as_str())),
                (t("field.erosion_depth"), opt(f.endosteal_erosion.as_str())),
                (
                    t("field.pathological_fracture"),
                    yes_no(f.pathological_fracture),
                ),
                (t("field.soft_tissue_mass"), yes_no(f.soft_tissue_mass)),
                (
                    t("field.known_primary_malignancy"),
                    yes_no(f.known_primary_malignancy),
                ),
                (
                    t("read.points"),
                    score.points.map_or("—".to_owned(), |p| p.to_string()),
                ),
                (t("read.category"), format!("Bone-RADS {}", score.category)),
            ]);
            w.paragraph(
                &format!(
                    "{}: {}",
                    t("report.management"),
                    t(&format!("report.management.{}", score.category))
                ),
                crate::pdf::BODY,
            );
        }
    }

    // The views, each beside its heat map.
    let width = 210.0;
    let heights: Vec<f32> = c
        .views
        .iter()
        .map(|(_, plain, overlay)| {
            [plain, overlay]
                .iter()
                .filter_map(|i| i.as_ref())
                .map(|i| width * i.height() as f32 / i.width().max(1) as f32)
                .fold(0.0, f32::max)
        })
        .collect();
    // The heading stays with the first view.
    w.need(heights.first().copied().unwrap_or(0.0) + 80.0);
    w.heading(&t("report.views"));
    w.paragraph(&t("report.views_note"), crate::pdf::SMALL);
    for ((view, plain, overlay), height) in c.views.iter().zip(heights) {
        w.need(height + 24.0);
        w.y -= 12.0;
        let label = view.as_deref().map_or("—".to_owned(), opt);
        w.text(crate::pdf::LEFT, w.y, crate::pdf::BODY, &label);
        let top = w.y - 6.0;
        if let Some(img) = plain {
            w.picture(crate::pdf::LEFT, top, width, img);
        }
        if let Some(img) = overlay {
            w.picture(crate::pdf::LEFT + width + 20.0, top, width, img);
        }
        w.y = top - height - 6.0;
    }
    let study_number = c.study_number.clone();
    let page = t("pdf.page");
    w.finish(
        &format!("{} {}", t("report.title"), c.study_number),
        &p.created_at,
        |n, of| format!("{} · {study_number} · {page} {n}/{of}", c.registration),
    )
}
