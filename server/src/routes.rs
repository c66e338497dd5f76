//! Every route of the server, in one place.

use crate::guard::{self, SESSION_COOKIE};
use crate::session_store::DbSessionStore;
use crate::startup::AppState;
use crate::{api, forms};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use osteo_app::api::ssr::UiContext;
use osteo_app::{shell, App};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub fn router(state: AppState, store: DbSessionStore) -> Router {
    let ui = UiContext {
        db: state.db.clone(),
        policy: state.policy(),
        study_kind: state.study_kind,
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
        .with_secure(state.settings.secure_cookies)
        .with_expiry(Expiry::OnInactivity(idle))
        // Every request of a signed-in user renews the idle timer.
        .with_always_save(true);

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/auth/login", post(forms::login))
        .route("/auth/logout", post(forms::logout))
        .route("/auth/password", post(forms::change_password))
        .route("/ui/lang", post(forms::set_language))
        .route("/account/tokens", post(forms::create_token))
        .route("/account/tokens/{id}/revoke", post(forms::revoke_token))
        .route("/admin/users", post(forms::create_user))
        .route("/admin/users/{id}", post(forms::update_user))
        .route("/admin/users/{id}/reset", post(forms::reset_password))
        .route("/admin/users/{id}/unlock", post(forms::unlock))
        .route("/admin/users/{id}/active", post(forms::set_active))
        .route("/screening", post(forms::screen))
        .route("/screening/{id}/correct", post(forms::correct_screening))
        .route(
            "/cases/{id}/images/complete",
            post(forms::case_images_complete),
        )
        .route(
            "/cases/{id}/images",
            post(forms::case_images).layer(DefaultBodyLimit::max(state.settings.image_limit)),
        )
        .route("/cases/{id}/crf", post(forms::case_crf))
        .route("/cases/{id}/crf/sign", post(forms::case_crf_sign))
        .route("/cases/{id}/readers", post(forms::case_assign))
        .route("/cases/{id}/read", post(forms::case_read))
        .route("/cases/{id}/read/sign", post(forms::case_read_sign))
        .route("/cases/{id}/pathology", post(forms::case_pathology))
        .route(
            "/cases/{id}/pathology/sign",
            post(forms::case_pathology_sign),
        )
        .route("/cases/{id}/end", post(forms::case_end))
        .route("/cases/{id}/poor-quality", post(forms::case_poor_quality))
        .route("/cases/{id}/queries", post(forms::case_raise_query))
        .route("/queries/{id}", post(forms::query_action))
        .route("/images/{sha}/preview.png", get(forms::image_preview))
        .route("/images/{sha}/window.json", get(forms::image_window))
        .route("/cases/{id}/heatmaps/{n}", get(forms::heatmap))
        .route("/cases/{id}/report.pdf", get(forms::case_report))
        .route("/sap", post(forms::sap_draft))
        .route("/exports/{name}", get(forms::export_download))
        .route("/sap/sign", post(forms::sap_sign))
        .route("/study/settings", post(forms::study_settings))
        .route("/study/lock", post(forms::study_lock))
        .route("/study/unlock", post(forms::study_unlock))
        .route("/study/model/pin", post(forms::model_pin))
        .route("/cases/{id}/crf/amend", post(forms::case_crf_amend))
        .nest("/api/v1", api::router(state.settings.image_limit))
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
        .layer(axum::middleware::from_fn(guard::pages))
        .layer(from_fn_with_state(state.clone(), guard::resolve_user))
        .layer(from_fn_with_state(state.clone(), guard::same_origin))
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
        // The wasm bundle shrinks about four times with gzip.
        .layer(CompressionLayer::new().gzip(true))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
