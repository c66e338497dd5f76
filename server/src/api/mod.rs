//! The REST API, `/api/v1`, described by the OpenAPI document at
//! `/api/v1/openapi.json`. Every request carries a personal API token
//! (`Authorization: Bearer osteo_…`) and acts with its owner's role. Handlers
//! are thin: they parse, call the same `trial` services as the pages, and
//! shape the answer.

mod analysis;
mod audit;
pub mod cases;
mod exports;
mod pacs;
mod screening;
mod study;
mod users;

use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::urls;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::Router;
use osteo_trial::accounts::{self, User};
use osteo_trial::domain::AuditSource;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The routes of `/api/v1`; radiograph uploads may be up to `image_limit` bytes.
pub fn router(image_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route(urls::ME, get(users::me))
        .route(urls::SITES, get(users::sites))
        .route(urls::USERS, get(users::list).post(users::create))
        .route(urls::USER, get(users::show).patch(users::update))
        .route(urls::USER_RESET_PASSWORD, post(users::reset_password))
        .route(urls::USER_UNLOCK, post(users::unlock))
        .route(
            urls::USER_RESET_SECOND_FACTOR,
            post(users::reset_second_factor),
        )
        .route(urls::TOKENS, get(users::tokens).post(users::create_token))
        .route(urls::TOKEN, delete(users::revoke_token))
        .route(urls::AUDIT, get(audit::list))
        .route(urls::AUDIT_VERIFY, get(audit::verify))
        .route(
            urls::SCREENINGS,
            get(screening::list).post(screening::create),
        )
        .route(urls::SCREENING_CORRECTIONS, post(screening::correct))
        .route(urls::SCREENING_VERSIONS, get(screening::versions))
        .route(urls::CASES, get(cases::list))
        .route(urls::WORKLIST, get(cases::worklist))
        .route(urls::CASE, get(cases::show))
        .route(urls::CASE_IMAGES_COMPLETE, post(cases::images_complete))
        .route(
            urls::CASE_IMAGES,
            post(cases::upload_images).layer(DefaultBodyLimit::max(image_limit)),
        )
        .route(urls::CASE_CRF, put(cases::save_crf))
        .route(urls::CASE_CRF_SIGN, post(cases::sign_crf))
        .route(urls::CASE_CRF_AMENDMENTS, post(cases::amend_crf))
        .route(urls::CASE_READERS, post(cases::assign_reader))
        .route(urls::CASE_READ, put(cases::save_read))
        .route(urls::CASE_READ_SIGN, post(cases::sign_read))
        .route(urls::CASE_READS, get(cases::reads))
        .route(urls::CASE_PREDICTION, get(cases::prediction))
        .route(urls::CASE_HEATMAP, get(cases::heatmap))
        .route(urls::CASE_REPORT, get(cases::case_report))
        .route(
            urls::CASE_PATHOLOGY,
            get(cases::pathology).post(cases::enter_pathology),
        )
        .route(urls::CASE_PATHOLOGY_SIGN, post(cases::sign_pathology))
        .route(urls::CASE_END, post(cases::end))
        .route(urls::CASE_POOR_QUALITY, post(cases::poor_quality))
        .route(urls::CASE_QUERIES, post(cases::raise_query))
        .route(
            urls::CASE_DICOM_ROUTES,
            get(pacs::routes).post(pacs::add_route),
        )
        .route(urls::DICOM_PEERS, get(pacs::peers).post(pacs::add_peer))
        .route(urls::DICOM_PEER_RETIRE, post(pacs::retire_peer))
        .route(urls::DICOM_QUARANTINE, get(pacs::quarantine))
        .route(urls::DICOM_QUARANTINED, get(pacs::quarantined))
        .route(urls::DICOM_QUARANTINE_ASSIGN, post(pacs::assign))
        .route(urls::DICOM_QUARANTINE_DISCARD, post(pacs::discard))
        .route(urls::QUERIES, get(cases::queries))
        .route(urls::QUERY, post(cases::act_on_query))
        .route(
            urls::STUDY_SETTINGS,
            get(study::settings).patch(study::update_settings),
        )
        .route(urls::STUDY_LOCK, get(study::lock_status).post(study::lock))
        .route(urls::STUDY_UNLOCK, post(study::unlock))
        .route(urls::STUDY_MODEL, get(study::model))
        .route(urls::STUDY_MODEL_PIN, post(study::pin_model))
        .route(urls::DASHBOARD, get(study::dashboard))
        .route(urls::SAP, get(analysis::sap_list).post(analysis::sap_draft))
        .route(urls::SAP_SIGN, post(analysis::sap_sign))
        .route(urls::ANALYSIS, get(analysis::analysis))
        .route(urls::EXPORTS, get(exports::list))
        .route(urls::EXPORT, get(exports::file))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found(format!("no such API route; see {}/openapi.json", urls::API))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Osteo EDC API",
        description = "Electronic data capture of the prospective bone-tumour diagnostic-accuracy trial ChiCTR2500102778. \
                       Authenticate with a personal API token: `Authorization: Bearer osteo_…`.",
    ),
    paths(
        users::me, users::sites, users::list, users::create, users::show, users::update,
        users::reset_password, users::unlock, users::reset_second_factor, users::tokens, users::create_token, users::revoke_token,
        audit::list, audit::verify,
        screening::list, screening::create, screening::correct, screening::versions,
        cases::list, cases::worklist, cases::show, cases::upload_images, cases::images_complete, cases::save_crf, cases::sign_crf,
        cases::amend_crf, cases::assign_reader, cases::save_read, cases::sign_read, cases::reads, cases::prediction, cases::heatmap,
        cases::case_report, cases::poor_quality, cases::pathology, cases::enter_pathology, cases::sign_pathology, cases::end,
        cases::queries, cases::raise_query, cases::act_on_query,
        pacs::routes, pacs::add_route, pacs::peers, pacs::add_peer, pacs::retire_peer,
        pacs::quarantine, pacs::quarantined, pacs::assign, pacs::discard,
        study::settings, study::update_settings, study::dashboard, study::lock_status, study::lock, study::unlock,
        study::model, study::pin_model,
        analysis::sap_list, analysis::sap_draft, analysis::sap_sign, analysis::analysis,
        exports::list, exports::file,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &CommonAnswers),
    security(("token" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers the API's extractors and checks give on every operation,
/// documented once here rather than on each handler: 401 without a valid
/// token; 403 where a role may not act; 400 and 404 for a path whose id is
/// malformed or unknown; 400 for bad query parameters; 400, 413 and 415 for
/// a body that is not JSON of the expected fields, too large, or of another
/// type; 503 (busy, with `Retry-After`) where a password is checked. Each
/// is an [`ErrorBody`].
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let answer = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let own = path.ends_with(urls::ME) || path.ends_with(urls::TOKENS);
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                // Record ids are whole numbers from 1: so the document says.
                for p in op.parameters.iter_mut().flatten() {
                    if matches!(p.parameter_in, ParameterIn::Path) && p.name == "id" {
                        if let Some(utoipa::openapi::RefOr::T(
                            utoipa::openapi::schema::Schema::Object(o),
                        )) = p.schema.as_mut()
                        {
                            o.minimum = Some(utoipa::Number::Int(1));
                        }
                    }
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let body = op.request_body.is_some();
                let password = body
                    && ["sign", "pin", "lock", "amendments", "reset-password"]
                        .iter()
                        .any(|w| path.contains(w));
                let mut add = |code: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| answer(description).into());
                };
                add(
                    "401",
                    "no valid API token (`Authorization: Bearer osteo_…`)",
                );
                if !own {
                    add("403", "the token's role may not do this");
                }
                if in_path {
                    add("400", "a malformed path (an id that is not a number)");
                    add("404", "no such record");
                }
                if in_query {
                    add("400", "bad query parameters");
                }
                if body {
                    add(
                        "400",
                        "the body is not JSON of the expected fields, or a rule refuses it",
                    );
                    add("413", "the body is too large");
                    add("415", "the body is not `application/json`");
                }
                if password {
                    add(
                        "503",
                        "the password checks are busy: retry after `Retry-After` seconds",
                    );
                }
            }
        }
    }
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// An optional reason for a change, checked.
fn reason(r: Option<&str>) -> Result<Option<osteo_trial::domain::Reason>, ApiError> {
    r.map(osteo_trial::domain::Reason::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The owner of the request's API token.
pub struct ApiUser(pub User);

impl ApiUser {
    pub fn principal(&self) -> osteo_trial::audit::Principal {
        self.0.principal(AuditSource::Api)
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let user = accounts::authenticate_token(&state.db, token)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(ApiUser(user))
    }
}

/// A JSON body whose rejections speak the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(ApiError::from)
    }
}
