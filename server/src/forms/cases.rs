//! Form posts of the case pages, and the rendered radiographs they show. A
//! refused CRF, read or pathology comes back with what was typed (kept in the
//! session for the next page); other refusals redirect with an `?error=` code.

use super::{back, flash, refused, FormBody, Halt, Id, Member, Reply, SignForm};
use crate::state::AppState;
use crate::urls::page;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use osteo_app::auth;
use osteo_trial::accounts::SigningSecret;
use osteo_trial::audit::Principal;
use osteo_trial::case::bonerads::Features;
use osteo_trial::case::crf::{ClinicalCrf, FieldIssue};
use osteo_trial::case::pathology::PathologyInput;
use osteo_trial::case::{self, CaseError, FormEcho, ReadInput};
use osteo_trial::domain::CaseId;
use osteo_trial::domain::{AuditSource, Permission, Reason};
use osteo_trial::write::StoreFailure;
use serde::Deserialize;
use tower_sessions::Session;

type Pairs = Vec<(String, String)>;

/// A form post on one case's page: the server's state, who posts (as an
/// audit principal), their session, the request's headers and the case.
/// Every case form takes it, so that the way back — to the page's section
/// after a success, to the form with what was typed, or to the page with
/// the error's code — is written once.
pub struct CasePost {
    state: AppState,
    by: Principal,
    session: Session,
    headers: HeaderMap,
    id: CaseId,
}

impl FromRequestParts<AppState> for CasePost {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Member(me, session) = Member::from_request_parts(parts, state).await?;
        let Id(id) = Id::<CaseId>::from_request_parts(parts, state).await?;
        Ok(CasePost {
            state: state.clone(),
            by: me.principal(AuditSource::Ui),
            session,
            headers: parts.headers.clone(),
            id,
        })
    }
}

impl CasePost {
    /// A refusal of a trial service, answered by its kind (`refused`),
    /// back to this case's page.
    fn refused<E: osteo_trial::error::ServiceError>(&self, e: E) -> Halt {
        refused(&self.headers, &page::case(self.id), e)
    }

    /// Back to the page's section `anchor`, with `message` shown once.
    async fn saved(&self, message: &str, anchor: &str) -> Reply {
        saved(&self.session, self.id, message, anchor).await
    }

    /// Back to the form with its values and problems.
    async fn echo(
        &self,
        form: &str,
        values: Pairs,
        issues: Vec<FieldIssue>,
        message: String,
    ) -> Reply {
        let echo = FormEcho {
            form: format!("{form}:{}", self.id),
            values: values
                .into_iter()
                .filter(|(k, _)| k != "password" && k != "second_factor")
                .collect(),
            issues,
            message,
        };
        if let Err(e) = auth::set_echo(&self.session, echo).await {
            tracing::warn!(error = %e, "could not keep the form for the next page");
        }
        Err(
            Redirect::to(&format!("{}?error={form}#{form}", page::case(self.id)))
                .into_response()
                .into(),
        )
    }

    /// Back to the CRF form with the fields' problems.
    async fn echo_crf(&self, values: Pairs, issues: Vec<FieldIssue>) -> Reply {
        let message = CaseError::Crf(vec![]).to_string();
        self.echo("crf", values, issues, message).await
    }
}

/// Back to the section `anchor` of case `id`'s page, with `message` shown once.
async fn saved(session: &Session, id: CaseId, message: &str, anchor: &str) -> Reply {
    flash(session, message, None, None).await;
    Ok(Redirect::to(&format!("{}#{anchor}", page::case(id))).into_response())
}

fn get<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The problem with the form's reason for a change: `code` and the error's text.
fn reason_issue(code: &str, e: &impl std::fmt::Display) -> FieldIssue {
    FieldIssue {
        field: "reason".into(),
        code: code.into(),
        message: e.to_string(),
    }
}

/// Radiographs uploaded from the case page; the outcome of each file goes
/// back to the page.
#[tracing::instrument(skip_all)]
pub async fn case_images(
    post: CasePost,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    if !post.by.role.can(Permission::EnterCaseData) {
        return Err(post.refused(CaseError::Forbidden));
    }
    // The page's drag-and-drop uploader sends one file per request and asks
    // for the outcome as JSON (the API's shape), to show it beside the file's
    // progress bar; the plain form gets it as a message on the case page.
    let wants_json = post
        .headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let received = match form {
        Ok(form) => post.state.receive_upload(&post.by, post.id, form).await,
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
    let files = received.map_err(|_| back(&page::case(post.id), "upload"))?;
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
    flash(&post.session, "flash.images_uploaded", Some(detail), None).await;
    Ok(Redirect::to(&format!("{}#images", page::case(post.id))).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn case_images_complete(post: CasePost) -> Reply {
    case::complete_images(&post.state.db, &post.by, post.id)
        .await
        .map_err(|e| post.refused(e))?;
    post.saved("flash.case_saved", "crf").await
}

#[tracing::instrument(skip_all)]
pub async fn case_crf(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    let complete = get(&pairs, "action") == Some("complete");
    let reason = match get(&pairs, "reason").map(Reason::parse).transpose() {
        Ok(r) => r,
        Err(e) => {
            let issue = reason_issue("invalid", &e);
            return post.echo("crf", pairs, vec![issue], e.to_string()).await;
        }
    };
    let crf = match ClinicalCrf::from_pairs(&pairs) {
        Ok(c) => c,
        Err(issues) => return post.echo_crf(pairs, issues).await,
    };
    let (db, by, id) = (&post.state.db, &post.by, post.id);
    match case::save_crf(db, by, id, crf, complete, reason.as_ref()).await {
        Ok(_) => post.saved("flash.crf_saved", "crf").await,
        Err(CaseError::Crf(issues)) => post.echo_crf(pairs, issues).await,
        Err(
            e @ (CaseError::ReasonRequired
            | CaseError::Transition(_)
            | CaseError::DatabaseLocked
            | CaseError::FrozenInput(_)),
        ) => {
            let issues = if matches!(e, CaseError::ReasonRequired) {
                vec![reason_issue("required", &e)]
            } else {
                vec![]
            };
            post.echo("crf", pairs, issues, e.to_string()).await
        }
        Err(e) => Err(post.refused(e)),
    }
}

#[derive(Deserialize)]
pub struct ReaderForm {
    username: String,
}

#[derive(Deserialize)]
pub struct RouteForm {
    kind: String,
    identifier: String,
}

/// Registers the accession number or patient ID the PACS will send the
/// case's images with.
#[tracing::instrument(skip_all)]
pub async fn case_dicom_route(post: CasePost, FormBody(f): FormBody<RouteForm>) -> Reply {
    let kind = f
        .kind
        .parse::<osteo_trial::pacs::RouteKind>()
        .map_err(|_| post.refused(osteo_trial::pacs::PacsError::BadIdentifier))?;
    osteo_trial::pacs::add_route(&post.state.db, &post.by, post.id, kind, &f.identifier)
        .await
        .map_err(|e| post.refused(e))?;
    post.saved("flash.case_saved", "images").await
}

#[tracing::instrument(skip_all)]
pub async fn case_assign(post: CasePost, FormBody(f): FormBody<ReaderForm>) -> Reply {
    case::assign_reader(&post.state.db, &post.by, post.id, &f.username)
        .await
        .map_err(|e| post.refused(e))?;
    post.saved("flash.case_saved", "readers").await
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

/// Saves the read a form posted. A refusal answered by its kind (not a
/// reader, not assigned, the database) is the `Err`; a read the reader must
/// correct comes back as `Ok(Err(_))` for each form to answer its own way.
async fn save_posted_read(post: &CasePost, pairs: &Pairs) -> Result<Result<(), CaseError>, Halt> {
    let result = match read_input(pairs) {
        Ok(input) => case::save_read(&post.state.db, &post.by, post.id, input)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Err(
            e @ (CaseError::Forbidden
            | CaseError::NotAssigned
            | CaseError::Failed(StoreFailure::Database(_))),
        ) => Err(post.refused(e)),
        other => Ok(other),
    }
}

#[tracing::instrument(skip_all)]
pub async fn case_read(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    match save_posted_read(&post, &pairs).await? {
        Ok(()) => post.saved("flash.read_saved", "read").await,
        Err(e) => post.echo("read", pairs, vec![], e.to_string()).await,
    }
}

/// The workstation's draft, posted by the page's script as the reader
/// scores, so that a read in progress survives a reload: saves the read and
/// answers 204, or 422 with the reason when it is not yet a whole read. No
/// redirect and no message for the next page.
#[tracing::instrument(skip_all)]
pub async fn case_read_draft(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    match save_posted_read(&post, &pairs).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Ok((StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response()),
    }
}

/// The reading workstation's "sign and next": saves the read from the form,
/// signs it with the password of the same form, and opens the next case on
/// the radiologist's worklist (the worklist itself once it is empty). A
/// refused signature leaves the read saved as a draft and comes back to
/// it; a refused read comes back with what was typed. Nothing is lost.
#[tracing::instrument(skip_all)]
pub async fn case_read_sign_next(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    if let Err(e) = save_posted_read(&post, &pairs).await? {
        return post.echo("read", pairs, vec![], e.to_string()).await;
    }
    let (db, by, id) = (&post.state.db, &post.by, post.id);
    let secret = SigningSecret::new(
        get(&pairs, "password").unwrap_or_default(),
        get(&pairs, "second_factor"),
    );
    case::sign_read(db, by, id, &secret)
        .await
        .map_err(|e| post.refused(e))?;
    // The signed case has left the worklist: its first case is the next.
    let worklist = case::worklist_page(db, by, 0, 1)
        .await
        .map_err(|e| post.refused(e))?;
    match worklist.cases.first() {
        Some(next) => {
            let left = format!("{} ({})", next.study_number, worklist.total);
            flash(&post.session, "flash.read_signed_next", Some(left), None).await;
            Ok(Redirect::to(&format!("{}#workstation", page::case(next.id))).into_response())
        }
        None => {
            flash(&post.session, "flash.worklist_done", None, None).await;
            Ok(Redirect::to(page::CASES).into_response())
        }
    }
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
pub async fn case_pathology(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    let (db, by, id) = (&post.state.db, &post.by, post.id);
    let result = match pathology_input(&pairs) {
        Ok((input, reason)) => case::enter_pathology(db, by, id, input, reason.as_ref()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => post.saved("flash.pathology_saved", "pathology").await,
        Err(
            e @ (CaseError::Forbidden
            | CaseError::Failed(StoreFailure::Database(_))
            | CaseError::PathologyGate
            | CaseError::DatabaseLocked),
        ) => Err(post.refused(e)),
        Err(e) => post.echo("pathology", pairs, vec![], e.to_string()).await,
    }
}

/// A record of the case page that takes a signature; each signing route
/// names its record (`routes`).
#[derive(Debug, Clone, Copy)]
pub enum Signed {
    Crf,
    Read,
    Pathology,
}

/// Signs the case's CRF, the user's own read or the pathology with the
/// password (and, for the CRF and pathology, the meaning) of the form, and
/// goes back to that section of the case page.
#[tracing::instrument(skip_all)]
pub async fn case_sign(
    Extension(record): Extension<Signed>,
    post: CasePost,
    FormBody(f): FormBody<SignForm>,
) -> Reply {
    let (db, by, id) = (&post.state.db, &post.by, post.id);
    let section = match record {
        Signed::Crf => {
            let meaning = f.meaning().map_err(|e| post.refused(e))?;
            case::sign_crf(db, by, id, meaning, &f.secret())
                .await
                .map(|_| "crf")
        }
        Signed::Read => case::sign_read(db, by, id, &f.secret())
            .await
            .map(|_| "read"),
        Signed::Pathology => {
            let meaning = f.meaning().map_err(|e| post.refused(e))?;
            case::sign_pathology(db, by, id, meaning, &f.secret())
                .await
                .map(|_| "pathology")
        }
    }
    .map_err(|e| post.refused(e))?;
    post.saved("flash.signed", section).await
}

#[derive(Deserialize)]
pub struct EndForm {
    /// `withdrawn:<reason>` or `excluded:<E1|E2|E3>`.
    code: String,
    reason: String,
    /// A withdrawal: the principal investigator's password (the signature).
    password: Option<String>,
    /// The second factor's code, when the account has one.
    second_factor: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn case_end(post: CasePost, FormBody(f): FormBody<EndForm>) -> Reply {
    let page = page::case(post.id);
    let (kind, code) = f.code.split_once(':').unwrap_or(("", ""));
    let end = crate::api::cases::parse_end(kind, code).map_err(|_| back(&page, "invalid"))?;
    let reason = Reason::parse(&f.reason).map_err(|_| back(&page, "reason_required"))?;
    let secret = f
        .password
        .as_deref()
        .map(|p| SigningSecret::new(p, f.second_factor.as_deref()));
    case::end_case(
        &post.state.db,
        &post.by,
        post.id,
        end,
        &reason,
        secret.as_ref(),
    )
    .await
    .map_err(|e| post.refused(e))?;
    post.saved("flash.case_saved", "end-case").await
}

/// The principal investigator changes model inputs frozen at the AI lock
/// (a signed protocol deviation). Refusals come back to the form with what
/// was typed.
#[tracing::instrument(skip_all)]
pub async fn case_crf_amend(post: CasePost, FormBody(pairs): FormBody<Pairs>) -> Reply {
    let reason = match get(&pairs, "reason").map(Reason::parse) {
        Some(Ok(r)) => r,
        Some(Err(_)) | None => {
            let e = CaseError::ReasonRequired;
            let issue = reason_issue("required", &e);
            return post.echo("crf", pairs, vec![issue], e.to_string()).await;
        }
    };
    let secret = SigningSecret::new(
        get(&pairs, "password").unwrap_or_default(),
        get(&pairs, "second_factor"),
    );
    let crf = match ClinicalCrf::from_pairs(&pairs) {
        Ok(c) => c,
        Err(issues) => return post.echo_crf(pairs, issues).await,
    };
    let (db, by, id) = (&post.state.db, &post.by, post.id);
    match case::amend_frozen_crf(db, by, id, crf, &reason, &secret).await {
        Ok(_) => post.saved("flash.crf_saved", "crf").await,
        Err(CaseError::Crf(issues)) => post.echo_crf(pairs, issues).await,
        Err(
            e @ (CaseError::NothingChanged
            | CaseError::BadPassword
            | CaseError::Transition(_)
            | CaseError::DatabaseLocked),
        ) => post.echo("crf", pairs, vec![], e.to_string()).await,
        Err(e) => Err(post.refused(e)),
    }
}

#[derive(Deserialize)]
pub struct QualityForm {
    reason: String,
}

/// Marks the case's radiographs as poor quality, which proposes exclusion E1.
#[tracing::instrument(skip_all)]
pub async fn case_poor_quality(post: CasePost, FormBody(f): FormBody<QualityForm>) -> Reply {
    let reason =
        Reason::parse(&f.reason).map_err(|_| back(&page::case(post.id), "reason_required"))?;
    case::mark_poor_quality(&post.state.db, &post.by, post.id, &reason)
        .await
        .map_err(|e| post.refused(e))?;
    post.saved("flash.quality_marked", "end-case").await
}

#[derive(Deserialize)]
pub struct QueryForm {
    field: String,
    text: String,
}

#[tracing::instrument(skip_all)]
pub async fn case_raise_query(post: CasePost, FormBody(f): FormBody<QueryForm>) -> Reply {
    case::raise_query(&post.state.db, &post.by, post.id, &f.field, &f.text)
        .await
        .map_err(|e| post.refused(e))?;
    post.saved("flash.query_saved", "queries").await
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
    let page = to.case.map_or_else(|| page::CASES.to_owned(), page::case);
    let action = f.action.parse().map_err(|_| back(&page, "invalid"))?;
    let q = case::act_on_query(
        &state.db,
        &me.principal(AuditSource::Ui),
        qid,
        action,
        &f.text,
    )
    .await
    .map_err(|e| refused(&headers, &page, e))?;
    saved(
        &session,
        CaseId::new(q.case_id),
        "flash.query_saved",
        "queries",
    )
    .await
}
