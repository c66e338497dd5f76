//! Middleware that guards every request before a handler runs:
//! - [`same_origin`]: state-changing browser requests must come from this
//!   site (cross-site request forgery defence, on top of `SameSite=Strict`);
//! - [`pages`]: the pages need a signed-in user, one who has replaced their
//!   one-time password, with a role that may see the page.

use crate::errors::html_error;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use osteo_app::auth::{current_user, take_flash, NoUser, RequestAuth};
use osteo_app::i18n::request_locale;
use osteo_trial::domain::Permission;
use tower_sessions::Session;

/// The policy of an HTML response that is not a page of the app (an error
/// page): no script at all, the style sheet from this site.
const STATIC_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response: the pages' Content-Security-Policy
/// is set by the app with its nonce (`osteo_app::page_policy`); any other
/// HTML answer gets [`STATIC_POLICY`]. Behind https (the cookies are
/// `Secure`), `Strict-Transport-Security` tells browsers never to use plain
/// http for this site for a year.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(STATIC_POLICY),
        );
    }
    if state.settings.cookies_secure() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "osteo_session";

fn has_cookie(req: &Request, name: &str) -> bool {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|kv| kv.trim().starts_with(&format!("{name}=")))
}

/// Refuses a state-changing request that carries the session cookie unless
/// its `Origin` (or, failing that, `Referer`) is this site. Requests
/// authenticated by an API token carry no cookie and are not at risk.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || !has_cookie(&req, SESSION_COOKIE) {
        return next.run(req).await;
    }
    let expected = match &state.settings.public_origin {
        Some(o) => o.clone(),
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let scheme = if state.settings.cookies_secure() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}")
        }
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|h| h.to_str().ok());
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|h| h.to_str().ok());
    let same = match (origin, referer) {
        (Some(o), _) => o == expected,
        (None, Some(r)) => r == expected || r.starts_with(&format!("{expected}/")),
        (None, None) => false,
    };
    if same {
        next.run(req).await
    } else {
        tracing::warn!(?origin, ?referer, %expected, path = %req.uri().path(), "cross-site request refused");
        html_error(
            StatusCode::FORBIDDEN,
            request_locale(req.headers()),
            "error.cross_site",
        )
    }
}

/// Resolves the signed-in user once per request (not for static files or
/// the token-authenticated API) and leaves it in the request's extensions
/// for the page guard, the pages and the server functions.
pub async fn resolve_user(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let skip = path.starts_with("/pkg/")
        || path.starts_with("/api/")
        || path.starts_with("/dicomweb/")
        || path == "/healthz"
        || path == "/readyz";
    if !skip {
        let user = current_user(&state.db, &session, state.policy()).await;
        req.extensions_mut().insert(RequestAuth {
            user,
            flash: None,
            echo: None,
        });
    }
    next.run(req).await
}

/// Pages under `/`, `/account/…`, `/admin/…` and `/screening` need a
/// signed-in user, one who has replaced a one-time password, with a role
/// that may see the page. A page that renders gets its one-off message.
pub async fn pages(session: Session, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let protected = path == "/"
        || path.starts_with("/account/")
        || path.starts_with("/admin/")
        || path.starts_with("/screening")
        || path.starts_with("/cases")
        || path.starts_with("/dashboard")
        || path.starts_with("/study")
        || path.starts_with("/analysis");
    if req.method() != Method::GET || !(protected || path == "/login") {
        return next.run(req).await;
    }
    let user = match req.extensions().get::<RequestAuth>() {
        Some(auth) => auth.user.clone(),
        None => Err(NoUser::Anonymous),
    };
    if path == "/login" {
        return match user {
            Ok(_) => Redirect::to("/").into_response(),
            Err(_) => next.run(req).await,
        };
    }
    match user {
        Err(NoUser::Anonymous) if !has_cookie(&req, SESSION_COOKIE) => {
            Redirect::to("/login").into_response()
        }
        // A session cookie without a live session: it timed out or was ended.
        Err(_) => Redirect::to("/login?error=expired").into_response(),
        Ok(user) if user.must_change_password && path != "/account/password" => {
            Redirect::to("/account/password").into_response()
        }
        // Administrators and PIs enrol a second factor before anything else.
        Ok(user)
            if user.must_enrol_second_factor()
                && !user.must_change_password
                && path != crate::urls::page::SECOND_FACTOR =>
        {
            Redirect::to(crate::urls::page::SECOND_FACTOR).into_response()
        }
        Ok(user) => {
            let needs = if path.starts_with("/admin/users") {
                Some(Permission::ManageUsers)
            } else if path.starts_with("/admin/audit") {
                Some(Permission::ViewAudit)
            } else if path.starts_with("/screening") {
                Some(Permission::ViewScreening)
            } else if path.starts_with("/dashboard") || path.starts_with("/analysis") {
                Some(Permission::ViewDashboard)
            } else if path.starts_with("/study") {
                Some(Permission::ManageStudy)
            } else {
                None
            };
            if needs.is_some_and(|p| !user.role.can(p)) {
                return html_error(
                    StatusCode::FORBIDDEN,
                    request_locale(req.headers()),
                    "error.forbidden",
                );
            }
            let flash = take_flash(&session).await;
            let echo = osteo_app::auth::take_echo(&session).await;
            req.extensions_mut().insert(RequestAuth {
                user: Ok(user),
                flash,
                echo,
            });
            next.run(req).await
        }
    }
}

/// Caching of the browser bundle: a file under `/pkg/` named by its content
/// hash (`osteo-edc.<16 hex digits>…`, written by the site build) never
/// changes, so browsers keep it for a year without asking; any other file
/// there is checked again on each use.
pub async fn asset_cache(req: Request, next: Next) -> Response {
    let hashed = req.uri().path().strip_prefix("/pkg/").map(|name| {
        name.strip_prefix(osteo_app::OUTPUT_NAME)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| {
                rest.len() > 16 && rest.bytes().take(16).all(|b| b.is_ascii_hexdigit())
            })
    });
    let mut response = next.run(req).await;
    if let Some(hashed) = hashed {
        if response.status().is_success() {
            let value = if hashed {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static(value),
            );
        }
    }
    response
}
