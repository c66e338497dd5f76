//! The REST API, `/api/v1`, described by the OpenAPI document at
//! `/api/v1/openapi.json`. Every request carries a personal API token
//! (`Authorization: Bearer osteo_…`) and acts with its owner's role. Handlers
//! are thin: they parse, call the same `trial` services as the pages, and
//! shape the answer.

mod audit;
pub mod cases;
mod screening;
mod users;

use crate::errors::{ApiError, ErrorBody};
use crate::startup::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
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
        .route("/me", get(users::me))
        .route("/sites", get(users::sites))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show).patch(users::update))
        .route("/users/{id}/reset-password", post(users::reset_password))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/tokens", get(users::tokens).post(users::create_token))
        .route("/tokens/{id}", axum::routing::delete(users::revoke_token))
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify))
        .route("/screenings", get(screening::list).post(screening::create))
        .route("/screenings/{id}/corrections", post(screening::correct))
        .route("/screenings/{id}/versions", get(screening::versions))
        .route("/cases", get(cases::list))
        .route("/worklist", get(cases::worklist))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/images/complete", post(cases::images_complete))
        .route(
            "/cases/{id}/images",
            post(cases::upload_images).layer(axum::extract::DefaultBodyLimit::max(image_limit)),
        )
        .route("/cases/{id}/crf", axum::routing::put(cases::save_crf))
        .route("/cases/{id}/crf/sign", post(cases::sign_crf))
        .route("/cases/{id}/readers", post(cases::assign_reader))
        .route("/cases/{id}/read", axum::routing::put(cases::save_read))
        .route("/cases/{id}/read/sign", post(cases::sign_read))
        .route("/cases/{id}/reads", get(cases::reads))
        .route("/cases/{id}/prediction", get(cases::prediction))
        .route("/cases/{id}/heatmaps/{n}", get(cases::heatmap))
        .route("/cases/{id}/report.pdf", get(cases::case_report))
        .route(
            "/cases/{id}/pathology",
            get(cases::pathology).post(cases::enter_pathology),
        )
        .route("/cases/{id}/pathology/sign", post(cases::sign_pathology))
        .route("/cases/{id}/end", post(cases::end))
        .route("/cases/{id}/poor-quality", post(cases::poor_quality))
        .route("/cases/{id}/queries", post(cases::raise_query))
        .route("/queries", get(cases::queries))
        .route("/queries/{id}", post(cases::act_on_query))
        .route(
            "/study/settings",
            get(cases::settings).patch(cases::update_settings),
        )
        .route("/study/lock", get(cases::lock_status).post(cases::lock))
        .route("/study/unlock", post(cases::unlock))
        .route("/study/model", get(cases::model))
        .route("/study/model/pin", post(cases::pin_model))
        .route("/cases/{id}/crf/amendments", post(cases::amend_crf))
        .route("/dashboard", get(cases::dashboard))
        .route("/sap", get(cases::sap_list).post(cases::sap_draft))
        .route("/sap/sign", post(cases::sap_sign))
        .route("/analysis", get(cases::analysis))
        .route("/exports", get(cases::exports))
        .route("/exports/{name}", get(cases::export_file))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route; see /api/v1/openapi.json")
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
        users::reset_password, users::unlock, users::tokens, users::create_token, users::revoke_token,
        audit::list, audit::verify,
        screening::list, screening::create, screening::correct, screening::versions,
        cases::list, cases::worklist, cases::show, cases::upload_images, cases::images_complete, cases::save_crf, cases::sign_crf,
        cases::assign_reader, cases::save_read, cases::sign_read, cases::reads, cases::prediction, cases::heatmap, cases::case_report, cases::poor_quality,
        cases::pathology, cases::enter_pathology, cases::sign_pathology, cases::end, cases::queries,
        cases::raise_query, cases::act_on_query, cases::settings, cases::update_settings, cases::dashboard,
        cases::lock_status, cases::lock, cases::unlock, cases::model, cases::pin_model, cases::amend_crf, cases::sap_list, cases::sap_draft, cases::sap_sign,
        cases::analysis, cases::exports, cases::export_file,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
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

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
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
