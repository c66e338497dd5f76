//! The error policy of the HTTP boundary, in one place:
//! - the user's mistake gets a 4xx with a message that says what to fix, and
//!   nothing is changed;
//! - a fault of ours gets a 500 that says nothing was changed; the cause chain
//!   goes to the log, never to the response;
//! - REST answers are JSON `{"error": {"code", "message"}}`; browser form posts
//!   redirect back with an `?error=` code the page translates.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use osteo_trial::error::{ErrorKind, ServiceError};
use serde::Serialize;

/// An error of the REST API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Field-by-field problems of a form (the CRF's edit checks).
    pub fields: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`invalid_input`, `not_found`, …).
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
    /// For a form: one entry per failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldProblem>>)]
    pub fields: Option<serde_json::Value>,
}

/// One failed check of a form's field (the document's shape of the
/// entries of [`ErrorDetail::fields`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field's name in the body (`age_years`, `size_mm`, …).
    pub field: String,
    /// The check that failed: `required`, `range`, `date`, `future`,
    /// `order`, `not_applicable`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API token as `Authorization: Bearer TOKEN` (create one under API tokens)",
        )
    }
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// A fault of ours: logged with its cause, answered without it.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; nothing was changed",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                retry_after(BUSY_RETRY_SECONDS),
            );
        }
        response
    }
}

/// When a client told the server is busy (503) should try again, in seconds.
pub const BUSY_RETRY_SECONDS: u64 = 2;

/// A `Retry-After` value of `seconds`.
pub fn retry_after(seconds: u64) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from(seconds.max(1))
}

/// An HTML error page for a refusal the client may retry later: 429 (too
/// many requests from it) or 503 (the server at its bound), with
/// `Retry-After`.
pub fn html_retry_later(
    status: StatusCode,
    locale: osteo_trial::domain::Locale,
    key: &str,
    seconds: u64,
) -> Response {
    let mut response = html_error(status, locale, key);
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, retry_after(seconds));
    response
}

impl ApiError {
    /// The one mapping of a trial service's refusal to a REST answer, by the
    /// kind the error declares (`osteo_trial::error`): 403, 404, 409, 400, or
    /// a 500 that logs the cause chain and says nothing of it. The code is the
    /// error's own stable code.
    pub fn refused<E: ServiceError>(e: E) -> ApiError {
        let status = match e.kind() {
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => return ApiError::internal(error_chain(&e)),
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// An error with its causes, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    osteo_app::api::ssr::error_chain(e)
}

impl From<osteo_trial::accounts::AccountError> for ApiError {
    fn from(e: osteo_trial::accounts::AccountError) -> Self {
        ApiError::refused(e)
    }
}

impl From<osteo_trial::screening::ScreeningError> for ApiError {
    fn from(e: osteo_trial::screening::ScreeningError) -> Self {
        ApiError::refused(e)
    }
}

impl From<osteo_trial::pacs::PacsError> for ApiError {
    fn from(e: osteo_trial::pacs::PacsError) -> Self {
        ApiError::refused(e)
    }
}

impl From<osteo_trial::study::StudyError> for ApiError {
    fn from(e: osteo_trial::study::StudyError) -> Self {
        ApiError::refused(e)
    }
}

impl From<osteo_trial::case::CaseError> for ApiError {
    fn from(e: osteo_trial::case::CaseError) -> Self {
        // The CRF's edit checks travel field by field.
        let fields = match &e {
            osteo_trial::case::CaseError::Crf(issues) => serde_json::to_value(issues).ok(),
            _ => None,
        };
        let mut err = match &e {
            osteo_trial::case::CaseError::Crf(issues) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!(
                    "{e}: {}",
                    issues
                        .iter()
                        .map(|i| format!("{}: {}", i.field, i.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            _ => ApiError::refused(e),
        };
        err.fields = fields;
        err
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let status = r.status();
        let message = match &r {
            J::MissingJsonContentType(_) => {
                "send the body as JSON with `Content-Type: application/json`".to_owned()
            }
            J::JsonSyntaxError(_) => format!("the body is not valid JSON: {}", r.body_text()),
            J::JsonDataError(_) => format!(
                "the JSON does not have the expected fields: {}",
                r.body_text()
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "the request body is too large".to_owned()
            }
            _ => r.body_text(),
        };
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "invalid_input"
        };
        // Always 400/413/415, never a 422 with a Rust type name in it.
        let status = match status {
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, code, message)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(format!("bad query parameters: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(format!("bad path: {}", r.body_text()))
    }
}

/// A small stand-alone HTML page for errors outside the app's pages
/// (a refused cross-site post, an over-large form), in the user's language.
pub fn html_error(status: StatusCode, locale: osteo_trial::domain::Locale, key: &str) -> Response {
    let title = osteo_app::i18n::tl(locale, "app.name");
    let message = osteo_app::i18n::tl(locale, key);
    let home = osteo_app::i18n::tl(locale, "nav.home");
    let body = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/pkg/{css}.css\"></head><body><main class=\"container\">\
         <section class=\"card narrow\"><h1>{code}</h1><p id=\"error-message\">{message}</p><a href=\"/\">{home}</a></section>\
         </main></body></html>",
        lang = locale.tag(),
        css = osteo_app::OUTPUT_NAME,
        code = status.as_u16(),
    );
    (status, axum::response::Html(body)).into_response()
}
