//! Form posts of the case pages, and the rendered radiographs they show. A
//! refused CRF, read or pathology comes back with what was typed (kept in the
//! session for the next page); other refusals redirect with an `?error=` code.

use super::{back, flash, internal, FormBody, Halt, Id, Member, Reply};
use crate::errors::html_error;
use crate::startup::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use osteo_app::auth;
use osteo_app::i18n::request_locale;
use osteo_trial::case::bonerads::Features;
use osteo_trial::case::crf::{ClinicalCrf, FieldIssue};
use osteo_trial::case::pathology::PathologyInput;
use osteo_trial::case::{self, CaseError, FormEcho, ReadInput, SignatureMeaning};
use osteo_trial::domain::{AuditSource, Reason};
use serde::Deserialize;
use tower_sessions::Session;

type Pairs = Vec<(String, String)>;

fn case_path(id: i64) -> String {
    format!("/cases/{id}")
}

/// Maps a refused case step to its page (the one mapping, by kind).
pub(super) fn case_error<E: osteo_trial::error::ServiceError>(
    headers: &HeaderMap,
    page: &str,
    e: E,
) -> Halt {
    super::refused(headers, page, e)
}

async fn saved(session: &Session, id: i64, message: &str, anchor: &str) -> Reply {
    flash(session, message, None, None).await;
    Ok(Redirect::to(&format!("/cases/{id}#{anchor}")).into_response())
}

fn get<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Goes back to the form with its values and problems.
async fn echo(
    session: &Session,
    id: i64,
    form: &str,
    values: Pairs,
    issues: Vec<FieldIssue>,
    message: String,
) -> Reply {
    let echo = FormEcho {
        form: format!("{form}:{id}"),
        values: values
            .into_iter()
            .filter(|(k, _)| k != "password")
            .collect(),
        issues,
        message,
    };
    if let Err(e) = auth::set_echo(session, echo).await {
        tracing::warn!(error = %e, "could not keep the form for the next page");
    }
    Err(Redirect::to(&format!("/cases/{id}?error={form}#{form}"))
        .into_response()
        .into())
}

/// Radiographs uploaded from the case page; the outcome of each file goes
/// back to the page.
#[tracing::instrument(skip_all)]
pub async fn case_images(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    let page = case_path(id);
    let by = me.principal(AuditSource::Ui);
    if !by.role.can(osteo_trial::domain::Permission::EnterCaseData) {
        return Err(case_error(&headers, &page, CaseError::Forbidden));
    }
    // The page's drag-and-drop uploader sends one file per request and asks
    // for the outcome as JSON (the API's shape), to show it beside the file's
    // progress bar; the plain form gets it as a message on the case page.
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let received = match form {
        Ok(form) => crate::imaging::upload::receive(&state, &by, id, form).await,
        Err(e) => Err(format!("send multipart/form-data: {}", e.body_text())),
    };
    if wants_json {
        return Ok(match received {
            Ok(files) => (
                crate::imaging::upload::batch_status(&files),
                axum::Json(serde_json::json!({ "files": files })),
            )
                .into_response(),
            Err(message) => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "error": "bad_request", "message": message })),
            )
                .into_response(),
        });
    }
    let files = received.map_err(|_| back(&page, "upload"))?;
    let detail = files
        .iter()
        .map(|f| match (&f.error, &f.view) {
            (Some(e), _) => format!("✗ {}: {e}", f.name),
            (None, view) => {
                let warn = if f.warnings.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", f.warnings.join("; "))
                };
                format!(
                    "✓ {} ({}){warn}",
                    f.name,
                    view.as_deref().unwrap_or_default()
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    flash(&session, "flash.images_uploaded", Some(detail), None).await;
    Ok(Redirect::to(&format!("/cases/{id}#images")).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn case_images_complete(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
) -> Reply {
    case::complete_images(&state.db, &me.principal(AuditSource::Ui), id)
        .await
        .map_err(|e| case_error(&headers, &case_path(id), e))?;
    saved(&session, id, "flash.case_saved", "crf").await
}

#[tracing::instrument(skip_all)]
pub async fn case_crf(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(pairs): FormBody<Pairs>,
) -> Reply {
    let complete = get(&pairs, "action") == Some("complete");
    let reason = match get(&pairs, "reason").map(Reason::parse).transpose() {
        Ok(r) => r,
        Err(e) => {
            let issue = FieldIssue {
                field: "reason".into(),
                code: "invalid".into(),
                message: e.to_string(),
            };
            return echo(&session, id, "crf", pairs, vec![issue], e.to_string()).await;
        }
    };
    let crf = match ClinicalCrf::from_pairs(&pairs) {
        Ok(c) => c,
        Err(issues) => {
            return echo(
                &session,
                id,
                "crf",
                pairs,
                issues,
                CaseError::Crf(vec![]).to_string(),
            )
            .await
        }
    };
    match case::save_crf(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        crf,
        complete,
        reason.as_ref(),
    )
    .await
    {
        Ok(_) => saved(&session, id, "flash.crf_saved", "crf").await,
        Err(CaseError::Crf(issues)) => {
            echo(
                &session,
                id,
                "crf",
                pairs,
                issues,
                CaseError::Crf(vec![]).to_string(),
            )
            .await
        }
        Err(
            e @ (CaseError::ReasonRequired
            | CaseError::Transition(_)
            | CaseError::DatabaseLocked
            | CaseError::FrozenInput(_)),
        ) => {
            let issues = if matches!(e, CaseError::ReasonRequired) {
                vec![FieldIssue {
                    field: "reason".into(),
                    code: "required".into(),
                    message: e.to_string(),
                }]
            } else {
                vec![]
            };
            echo(&session, id, "crf", pairs, issues, e.to_string()).await
        }
        Err(e) => Err(case_error(&headers, &case_path(id), e)),
    }
}

#[derive(Deserialize)]
pub struct SignForm {
    meaning: Option<String>,
    pub(super) password: String,
}

impl SignForm {
    fn meaning(&self) -> Result<SignatureMeaning, CaseError> {
        Ok(self
            .meaning
            .as_deref()
            .map(str::parse)
            .transpose()?
            .unwrap_or(SignatureMeaning::Author))
    }
}

#[tracing::instrument(skip_all)]
pub async fn case_crf_sign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    let err = |e| case_error(&headers, &case_path(id), e);
    let meaning = f.meaning().map_err(err)?;
    case::sign_crf(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        meaning,
        &f.password,
    )
    .await
    .map_err(err)?;
    saved(&session, id, "flash.signed", "crf").await
}

#[derive(Deserialize)]
pub struct ReaderForm {
    username: String,
}

#[tracing::instrument(skip_all)]
pub async fn case_assign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<ReaderForm>,
) -> Reply {
    case::assign_reader(&state.db, &me.principal(AuditSource::Ui), id, &f.username)
        .await
        .map_err(|e| case_error(&headers, &case_path(id), e))?;
    saved(&session, id, "flash.case_saved", "readers").await
}

fn read_input(pairs: &Pairs) -> Result<ReadInput, CaseError> {
    let req = |name: &str| {
        get(pairs, name).ok_or_else(|| CaseError::UnknownField(format!("{name} is required")))
    };
    let margin = match req("margin")? {
        "none" => None,
        m => Some(m.parse()?),
    };
    let flag = |name: &str| get(pairs, name) == Some("true");
    Ok(ReadInput {
        features: Features {
            margin,
            periosteal: req("periosteal")?.parse()?,
            endosteal_erosion: req("endosteal_erosion")?.parse()?,
            pathological_fracture: flag("pathological_fracture"),
            soft_tissue_mass: flag("soft_tissue_mass"),
            known_primary_malignancy: flag("known_primary_malignancy"),
        },
        likelihood: req("likelihood")?
            .parse()
            .map_err(|_| CaseError::Likelihood)?,
        call: req("call")?.parse()?,
        comment: get(pairs, "comment").map(str::to_owned),
    })
}

#[tracing::instrument(skip_all)]
pub async fn case_read(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(pairs): FormBody<Pairs>,
) -> Reply {
    let result = match read_input(&pairs) {
        Ok(input) => case::save_read(&state.db, &me.principal(AuditSource::Ui), id, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => saved(&session, id, "flash.read_saved", "read").await,
        Err(e @ (CaseError::Forbidden | CaseError::NotAssigned | CaseError::Store(_))) => {
            Err(case_error(&headers, &case_path(id), e))
        }
        Err(e) => echo(&session, id, "read", pairs, vec![], e.to_string()).await,
    }
}

#[tracing::instrument(skip_all)]
pub async fn case_read_sign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    case::sign_read(&state.db, &me.principal(AuditSource::Ui), id, &f.password)
        .await
        .map_err(|e| case_error(&headers, &case_path(id), e))?;
    state.wake_ai();
    saved(&session, id, "flash.signed", "read").await
}

/// The pathology form, as submitted.
fn pathology_input(pairs: &Pairs) -> Result<(PathologyInput, Option<Reason>), CaseError> {
    let field = |name: &str| get(pairs, name).unwrap_or_default().to_owned();
    let reason = get(pairs, "reason").map(Reason::parse).transpose()?;
    Ok((
        PathologyInput {
            entity: field("entity"),
            behaviour: None,
            procedure: field("procedure").parse()?,
            specimen_date: field("specimen_date"),
            pathologist: field("pathologist"),
            comment: get(pairs, "comment").map(str::to_owned),
        },
        reason,
    ))
}

#[tracing::instrument(skip_all)]
pub async fn case_pathology(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(pairs): FormBody<Pairs>,
) -> Reply {
    let result = match pathology_input(&pairs) {
        Ok((input, reason)) => {
            case::enter_pathology(
                &state.db,
                &me.principal(AuditSource::Ui),
                id,
                input,
                reason.as_ref(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => saved(&session, id, "flash.pathology_saved", "pathology").await,
        Err(
            e @ (CaseError::Forbidden
            | CaseError::Store(_)
            | CaseError::PathologyGate
            | CaseError::DatabaseLocked),
        ) => Err(case_error(&headers, &case_path(id), e)),
        Err(e) => echo(&session, id, "pathology", pairs, vec![], e.to_string()).await,
    }
}

#[tracing::instrument(skip_all)]
pub async fn case_pathology_sign(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    let err = |e| case_error(&headers, &case_path(id), e);
    let meaning = f.meaning().map_err(err)?;
    case::sign_pathology(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        meaning,
        &f.password,
    )
    .await
    .map_err(err)?;
    saved(&session, id, "flash.signed", "pathology").await
}

#[derive(Deserialize)]
pub struct EndForm {
    /// `withdrawn:<reason>` or `excluded:<E1|E2|E3>`.
    code: String,
    reason: String,
    /// A withdrawal: the principal investigator's password (the signature).
    password: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn case_end(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<EndForm>,
) -> Reply {
    let page = case_path(id);
    let (kind, code) = f.code.split_once(':').unwrap_or(("", ""));
    let end = crate::api::cases::parse_end(kind, code).map_err(|_| back(&page, "invalid"))?;
    let reason = Reason::parse(&f.reason).map_err(|_| back(&page, "reason_required"))?;
    case::end_case(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        end,
        &reason,
        f.password.as_deref(),
    )
    .await
    .map_err(|e| case_error(&headers, &page, e))?;
    saved(&session, id, "flash.case_saved", "end-case").await
}

/// The principal investigator changes model inputs frozen at the AI lock
/// (a signed protocol deviation). Refusals come back to the form with what
/// was typed.
#[tracing::instrument(skip_all)]
pub async fn case_crf_amend(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(pairs): FormBody<Pairs>,
) -> Reply {
    let reason = match get(&pairs, "reason").map(Reason::parse) {
        Some(Ok(r)) => r,
        Some(Err(_)) | None => {
            let e = CaseError::ReasonRequired;
            let issue = FieldIssue {
                field: "reason".into(),
                code: "required".into(),
                message: e.to_string(),
            };
            return echo(&session, id, "crf", pairs, vec![issue], e.to_string()).await;
        }
    };
    let password = get(&pairs, "password").unwrap_or_default().to_owned();
    let crf = match ClinicalCrf::from_pairs(&pairs) {
        Ok(c) => c,
        Err(issues) => {
            let message = CaseError::Crf(vec![]).to_string();
            return echo(&session, id, "crf", pairs, issues, message).await;
        }
    };
    match case::amend_frozen_crf(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        crf,
        &reason,
        &password,
    )
    .await
    {
        Ok(_) => saved(&session, id, "flash.crf_saved", "crf").await,
        Err(CaseError::Crf(issues)) => {
            let message = CaseError::Crf(vec![]).to_string();
            echo(&session, id, "crf", pairs, issues, message).await
        }
        Err(
            e @ (CaseError::NothingChanged
            | CaseError::BadPassword
            | CaseError::Transition(_)
            | CaseError::DatabaseLocked),
        ) => echo(&session, id, "crf", pairs, vec![], e.to_string()).await,
        Err(e) => Err(case_error(&headers, &case_path(id), e)),
    }
}

#[derive(Deserialize)]
pub struct QualityForm {
    reason: String,
}

/// Marks the case's radiographs as poor quality, which proposes exclusion E1.
#[tracing::instrument(skip_all)]
pub async fn case_poor_quality(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<QualityForm>,
) -> Reply {
    let page = case_path(id);
    let reason = Reason::parse(&f.reason).map_err(|_| back(&page, "reason_required"))?;
    case::mark_poor_quality(&state.db, &me.principal(AuditSource::Ui), id, &reason)
        .await
        .map_err(|e| case_error(&headers, &page, e))?;
    saved(&session, id, "flash.quality_marked", "end-case").await
}

#[derive(Deserialize)]
pub struct QueryForm {
    field: String,
    text: String,
}

#[tracing::instrument(skip_all)]
pub async fn case_raise_query(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(id): Id,
    FormBody(f): FormBody<QueryForm>,
) -> Reply {
    case::raise_query(
        &state.db,
        &me.principal(AuditSource::Ui),
        id,
        &f.field,
        &f.text,
    )
    .await
    .map_err(|e| case_error(&headers, &case_path(id), e))?;
    saved(&session, id, "flash.query_saved", "queries").await
}

#[derive(Deserialize)]
pub struct QueryActionForm {
    action: String,
    text: String,
}

#[derive(Deserialize)]
pub struct BackToCase {
    case: Option<i64>,
}

#[tracing::instrument(skip_all)]
pub async fn query_action(
    State(state): State<AppState>,
    Member(me, session): Member,
    headers: HeaderMap,
    Id(qid): Id,
    Query(to): Query<BackToCase>,
    FormBody(f): FormBody<QueryActionForm>,
) -> Reply {
    let page = to.case.map_or_else(|| "/cases".to_owned(), case_path);
    let action = f.action.parse().map_err(|_| back(&page, "invalid"))?;
    let q = case::act_on_query(
        &state.db,
        &me.principal(AuditSource::Ui),
        qid,
        action,
        &f.text,
    )
    .await
    .map_err(|e| case_error(&headers, &page, e))?;
    saved(&session, q.case_id, "flash.query_saved", "queries").await
}

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
        return Err(super::not_found(headers));
    }
    match case::image_for_viewer(&state.db, &by, sha).await {
        Ok(_) => Ok(()),
        Err(CaseError::UnknownCase(_)) => Err(super::not_found(headers)),
        Err(e) => Err(case_error(headers, "/cases", e)),
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
    .ok_or_else(|| super::not_found(&headers))?;
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
    .ok_or_else(|| super::not_found(&headers))?;
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
    axum::extract::Path((id, n)): axum::extract::Path<(i64, usize)>,
) -> Reply {
    let by = me.principal(AuditSource::Ui);
    let png = crate::ai::heatmap_png(&state, &by, id, n)
        .await
        .map_err(|e| case_error(&headers, &case_path(id), e))?
        .ok_or_else(|| super::not_found(&headers))?;
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
    axum::extract::Path(id): axum::extract::Path<i64>,
    Query(q): Query<LangQuery>,
) -> Reply {
    let locale = q
        .lang
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| request_locale(&headers));
    let pdf = crate::case_report::pdf(&state, &me.principal(AuditSource::Ui), id, locale)
        .await
        .map_err(|e| case_error(&headers, &case_path(id), e))?
        .ok_or_else(|| super::not_found(&headers))?;
    Ok(crate::exports::attachment(
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
