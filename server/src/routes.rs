//! The page router: probes, form posts (each with the page a refusal goes
//! back to), downloads, the pages, and the REST API nested under
//! [`urls::API`]; every path from [`crate::urls`]. And the layers every
//! request passes.

use crate::forms::cases::Signed;
use crate::forms::users::AccountAction;
use crate::middleware::{self, SESSION_COOKIE};
use crate::session_store::DbSessionStore;
use crate::state::AppState;
use crate::urls::{self, page, BackTo};
use crate::{api, downloads, forms};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};
use axum::Extension;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use osteo_app::api::ssr::UiContext;
use osteo_app::{shell, App};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub fn router(state: AppState, store: DbSessionStore) -> Router {
    let ui = UiContext {
        db: state.db.clone(),
        policy: state.policy(),
        study_kind: state.study_kind,
        quarantine: Some({
            let folder = state.quarantine.clone();
            osteo_app::api::ssr::QuarantineReader(std::sync::Arc::new(move |sha: String| {
                let folder = folder.clone();
                Box::pin(async move { crate::pacs::found_pairs(&folder, &sha).await })
            }))
        }),
        model: state.ai.as_ref().map(|ai| {
            let card = ai.card();
            osteo_app::api::cases::ModelInfo {
                model_id: card.model_id.clone(),
                weights_sha256: card.weights_sha256.clone(),
                label: card.demo.then(|| osteo_model::DEMO_LABEL.to_owned()),
                training_data: card.training_data.clone(),
                validation_auc: card.validation_auc,
                threshold: card.threshold,
                temperature: card.temperature,
            }
        }),
    };
    let ui_for_errors = ui.clone();
    let options = state.leptos_options.clone();
    let idle = time::Duration::try_from(state.settings.idle_timeout)
        .unwrap_or(time::Duration::minutes(30));
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.settings.cookies_secure())
        .with_expiry(Expiry::OnInactivity(idle))
        // Every request of a signed-in user renews the idle timer.
        .with_always_save(true);

    Router::new()
        .route(urls::HEALTHZ, get(healthz))
        .route(urls::READYZ, get(readyz))
        .route(urls::METRICS, get(crate::metrics::metrics))
        .form(
            urls::LOGIN,
            BackTo::Page(page::LOGIN),
            post(forms::account::login),
        )
        .form(
            urls::LOGIN_CODE,
            BackTo::Page(page::LOGIN_CODE),
            post(forms::account::second_factor),
        )
        .form(
            urls::DICOM_QUARANTINE_ASSIGN,
            BackTo::Page(forms::pacs::PAGE),
            post(forms::pacs::quarantine_assign),
        )
        .form(
            urls::DICOM_QUARANTINE_DISCARD,
            BackTo::Page(forms::pacs::PAGE),
            post(forms::pacs::quarantine_discard),
        )
        .form(
            urls::DICOM_PEERS,
            BackTo::Page(page::STUDY),
            post(forms::pacs::peer_add),
        )
        .form(
            urls::DICOM_PEER_RETIRE,
            BackTo::Page(page::STUDY),
            post(forms::pacs::peer_retire),
        )
        .form(
            urls::CASE_DICOM_ROUTES,
            BackTo::Case,
            post(forms::cases::case_dicom_route),
        )
        .form(
            urls::LOGOUT,
            BackTo::Page(page::HOME),
            post(forms::account::logout),
        )
        .form(
            urls::PASSWORD,
            BackTo::Page(page::PASSWORD),
            post(forms::account::change_password),
        )
        .form(
            urls::LANGUAGE,
            BackTo::Page(page::HOME),
            post(forms::account::set_language),
        )
        .form(
            urls::SECOND_FACTOR_START,
            BackTo::Page(page::SECOND_FACTOR),
            post(forms::account::start_second_factor),
        )
        .form(
            urls::SECOND_FACTOR_CONFIRM,
            BackTo::Page(page::SECOND_FACTOR),
            post(forms::account::confirm_second_factor),
        )
        .form(
            urls::ACCOUNT_TOKENS,
            BackTo::Page(page::TOKENS),
            post(forms::account::create_token),
        )
        .form(
            urls::ACCOUNT_TOKEN_REVOKE,
            BackTo::Page(page::TOKENS),
            post(forms::account::revoke_token),
        )
        .form(
            urls::ADMIN_USERS,
            BackTo::Page(page::USERS),
            post(forms::users::create_user),
        )
        .form(
            urls::ADMIN_USER,
            BackTo::Page(page::USERS),
            post(forms::users::update_user),
        )
        .form(
            urls::ADMIN_USER_RESET,
            BackTo::Page(page::USERS),
            post(forms::users::account_action).layer(Extension(AccountAction::ResetPassword)),
        )
        .form(
            urls::ADMIN_USER_UNLOCK,
            BackTo::Page(page::USERS),
            post(forms::users::account_action).layer(Extension(AccountAction::Unlock)),
        )
        .form(
            urls::ADMIN_USER_RESET_SECOND_FACTOR,
            BackTo::Page(page::USERS),
            post(forms::users::account_action).layer(Extension(AccountAction::ResetSecondFactor)),
        )
        .form(
            urls::ADMIN_USER_ACTIVE,
            BackTo::Page(page::USERS),
            post(forms::users::set_active),
        )
        .form(
            urls::SCREENING,
            BackTo::Page(page::SCREENING),
            post(forms::screening::screen),
        )
        .form(
            urls::SCREENING_CORRECT,
            BackTo::Page(page::SCREENING),
            post(forms::screening::correct_screening),
        )
        .form(
            urls::CASE_IMAGES_COMPLETE,
            BackTo::Case,
            post(forms::cases::case_images_complete),
        )
        .form(
            urls::CASE_IMAGES,
            BackTo::Case,
            post(forms::cases::case_images)
                .layer(DefaultBodyLimit::max(state.settings.image_limit)),
        )
        .form(urls::CASE_CRF, BackTo::Case, post(forms::cases::case_crf))
        .form(
            urls::CASE_CRF_SIGN,
            BackTo::Case,
            post(forms::cases::case_sign).layer(Extension(Signed::Crf)),
        )
        .form(
            urls::CASE_CRF_AMEND,
            BackTo::Case,
            post(forms::cases::case_crf_amend),
        )
        .form(
            urls::CASE_READERS,
            BackTo::Case,
            post(forms::cases::case_assign),
        )
        .form(urls::CASE_READ, BackTo::Case, post(forms::cases::case_read))
        .form(
            urls::CASE_READ_SIGN,
            BackTo::Case,
            post(forms::cases::case_sign).layer(Extension(Signed::Read)),
        )
        .form(
            urls::CASE_READ_SIGN_NEXT,
            BackTo::Case,
            post(forms::cases::case_read_sign_next),
        )
        .form(
            urls::CASE_READ_DRAFT,
            BackTo::Case,
            post(forms::cases::case_read_draft),
        )
        .form(
            urls::CASE_PATHOLOGY,
            BackTo::Case,
            post(forms::cases::case_pathology),
        )
        .form(
            urls::CASE_PATHOLOGY_SIGN,
            BackTo::Case,
            post(forms::cases::case_sign).layer(Extension(Signed::Pathology)),
        )
        .form(urls::CASE_END, BackTo::Case, post(forms::cases::case_end))
        .form(
            urls::CASE_POOR_QUALITY,
            BackTo::Case,
            post(forms::cases::case_poor_quality),
        )
        .form(
            urls::CASE_QUERIES,
            BackTo::Case,
            post(forms::cases::case_raise_query),
        )
        .form(
            urls::QUERY,
            BackTo::Page(page::CASES),
            post(forms::cases::query_action),
        )
        .form(
            urls::STUDY_SETTINGS,
            BackTo::Page(page::STUDY),
            post(forms::study::study_settings),
        )
        .form(
            urls::STUDY_LOCK,
            BackTo::Page(page::STUDY),
            post(forms::study::study_lock),
        )
        .form(
            urls::STUDY_UNLOCK,
            BackTo::Page(page::STUDY),
            post(forms::study::study_unlock),
        )
        .form(
            urls::STUDY_MODEL_PIN,
            BackTo::Page(page::STUDY),
            post(forms::study::model_pin),
        )
        .form(
            urls::SAP,
            BackTo::Page(page::ANALYSIS),
            post(forms::analysis::sap_draft),
        )
        .form(
            urls::SAP_SIGN,
            BackTo::Page(page::ANALYSIS),
            post(forms::analysis::sap_sign),
        )
        .route(urls::IMAGE_PREVIEW, get(downloads::image_preview))
        .route(urls::IMAGE_WINDOW, get(downloads::image_window))
        .route(urls::CASE_HEATMAP, get(downloads::heatmap))
        .route(urls::CASE_REPORT, get(downloads::case_report))
        .route(urls::EXPORT, get(downloads::export))
        .nest(urls::API, api::router(state.settings.image_limit))
        .nest(
            urls::DICOMWEB,
            crate::dicomweb::router(state.settings.image_limit),
        )
        .leptos_routes_with_context(
            &state,
            route_list(),
            move || provide_context(ui.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            move || provide_context(ui_for_errors.clone()), shell
        ))
        .layer(axum::middleware::from_fn(middleware::pages))
        .layer(axum::middleware::from_fn(middleware::asset_cache))
        .layer(from_fn_with_state(state.clone(), middleware::resolve_user))
        .layer(from_fn_with_state(state.clone(), middleware::same_origin))
        .layer(sessions)
        .layer(DefaultBodyLimit::max(state.settings.body_limit))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        // The wasm bundle shrinks about four times with gzip.
        .layer(CompressionLayer::new().gzip(true))
        .layer(from_fn_with_state(state.clone(), crate::metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Each request's span: its method, path and request id (`x-request-id`,
/// made here unless the proxy in front sent one), so that every log line of
/// a request, in text or JSON, can be found by the id the response carries.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// The app's page routes, generated once per process.
///
/// Generating them renders the app with a process-wide "do not load
/// resources" switch on (leptos_server's `SuppressResourceLoad`); a page
/// that another server in the same process renders at that moment never
/// finishes (leptos issue 4773). One server per process never meets this,
/// but the test suite runs many at once, so the list is made once and every
/// router waits for it before it serves.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the database answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Form posts declare, with their route, the page a refusal goes back to
/// (`forms::FormBody` reads it from the request).
trait FormRoutes {
    fn form(self, path: &'static str, back: BackTo, handler: MethodRouter<AppState>) -> Self;
}

impl FormRoutes for Router<AppState> {
    fn form(self, path: &'static str, back: BackTo, handler: MethodRouter<AppState>) -> Self {
        self.route(path, handler.layer(Extension(back)))
    }
}
