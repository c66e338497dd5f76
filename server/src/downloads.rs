//! Files the pages download: rendered radiographs and their window, a
//! locked prediction's heat-map overlays, a case's diagnostic report (PDF),
//! and the locked data's export files. Each answers only the roles the
//! trial services allow, and the services audit what must be.

use crate::errors::html_error;
use crate::forms::{internal, not_found, refused, Halt, Member, Reply};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use osteo_app::i18n::request_locale;
use osteo_trial::case::{self, CaseError};
use osteo_trial::domain::AuditSource;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SizeQuery {
    size: Option<u32>,
    /// Window centre and width in modality units (both or neither).
    wc: Option<f64>,
    ww: Option<f64>,
}

/// Whether the signed-in user may see the stored object `sha`: the roles
/// that see its case and the radiologists assigned to it.
async fn may_view_image(
    state: &AppState,
    me: &osteo_trial::accounts::User,
    headers: &HeaderMap,
    sha: &str,
) -> Result<(), Halt> {
    let by = me.principal(AuditSource::Ui);
    if !osteo_trial::codes::is_sha256(sha) {
        return Err(not_found(headers));
    }
    match case::image_for_viewer(&state.db, &by, sha).await {
        Ok(_) => Ok(()),
        Err(CaseError::UnknownCase(_)) => Err(not_found(headers)),
        Err(e) => Err(refused(headers, page::CASES, e)),
    }
}

/// A rendered radiograph for the case page and the viewer (PNG, cached):
/// fitted into `size` pixels (default 512), through the window `wc`/`ww`
/// or the image's default window.
#[tracing::instrument(skip_all)]
pub async fn image_preview(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path(sha): axum::extract::Path<String>,
    Query(q): Query<SizeQuery>,
) -> Reply {
    may_view_image(&state, &me, &headers, &sha).await?;
    let window = match (q.wc, q.ww) {
        (None, None) => None,
        (Some(centre), Some(width)) if centre.is_finite() && width.is_finite() && width >= 1.0 => {
            Some(osteo_model::pixels::Window { centre, width })
        }
        _ => {
            // wc and ww go together: finite numbers, ww at least 1.
            return Err(html_error(
                StatusCode::BAD_REQUEST,
                request_locale(&headers),
                "error.invalid",
            )
            .into());
        }
    };
    let size = q.size.unwrap_or(512).clamp(64, 4096);
    let png = crate::imaging::preview(
        state.images.as_ref(),
        &state.settings.data_dir.join("cache"),
        &sha,
        size,
        window,
    )
    .await
    .map_err(|e| internal(&headers, e))?
    .ok_or_else(|| not_found(&headers))?;
    Ok(private_png(png))
}

/// The default window, value range and photometric interpretation of a
/// stored radiograph (JSON), for the viewer's window/level.
#[tracing::instrument(skip_all)]
pub async fn image_window(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path(sha): axum::extract::Path<String>,
) -> Reply {
    may_view_image(&state, &me, &headers, &sha).await?;
    let json = crate::imaging::window_info(
        state.images.as_ref(),
        &state.settings.data_dir.join("cache"),
        &sha,
    )
    .await
    .map_err(|e| internal(&headers, e))?
    .ok_or_else(|| not_found(&headers))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        json,
    )
        .into_response())
}

/// A view's heat-map overlay of the case's locked prediction (PNG), for the
/// roles allowed to see AI output.
#[tracing::instrument(skip_all)]
pub async fn heatmap(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path((id, n)): axum::extract::Path<(osteo_trial::domain::CaseId, usize)>,
) -> Reply {
    let by = me.principal(AuditSource::Ui);
    let png = crate::ai::heatmap_png(&state.db, state.images.as_ref(), &by, id, n)
        .await
        .map_err(|e| refused(&headers, &page::case(id), e))?
        .ok_or_else(|| not_found(&headers))?;
    Ok(private_png(png))
}

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// The case's diagnostic report as PDF (`?lang=en|zh-CN`, else the page's
/// language), for the roles allowed to see its AI output.
pub async fn case_report(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<osteo_trial::domain::CaseId>,
    Query(q): Query<LangQuery>,
) -> Reply {
    let locale = q
        .lang
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| request_locale(&headers));
    let pdf = crate::case_report::pdf(&state, &me.principal(AuditSource::Ui), id, locale)
        .await
        .map_err(|e| refused(&headers, &page::case(id), e))?
        .ok_or_else(|| not_found(&headers))?;
    Ok(attachment(
        &format!("diagnostic-report-{id}-{}.pdf", locale.tag()),
        pdf,
    ))
}

/// A PNG only the signed-in user's browser may keep (for an hour).
fn private_png(png: Vec<u8>) -> axum::response::Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/png"),
            (axum::http::header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response()
}

/// One CSV file of the locked data, for the analysis page (audited).
#[tracing::instrument(skip_all)]
pub async fn export(
    State(state): State<AppState>,
    Member(me, _session): Member,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Reply {
    let bytes = crate::exports::download(&state.db, &me.principal(AuditSource::Ui), &name)
        .await
        .map_err(|e| refused(&headers, page::ANALYSIS, e))?
        .ok_or_else(|| not_found(&headers))?;
    Ok(attachment(&name, bytes))
}

/// The HTTP response for an export file (CSV or PDF, by its name), as an
/// attachment named `name`.
pub(crate) fn attachment(name: &str, bytes: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let kind = if name.ends_with(".pdf") {
        "application/pdf"
    } else if name.ends_with(".xml") {
        "application/xml"
    } else {
        "text/csv; charset=utf-8"
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, kind.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
