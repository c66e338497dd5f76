//! The browser's form posts (they work with and without JavaScript): each
//! calls a `trial` service and redirects back (post/redirect/get), with a
//! one-off message in the session or an `?error=` code the page translates.

use crate::errors::html_error;
use crate::state::AppState;
use crate::urls::{page, BackTo};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use osteo_app::auth;
use osteo_app::flash::Flash;
use osteo_app::i18n::request_locale;
use osteo_trial::accounts::User;
use osteo_trial::domain::Locale;
use serde::Deserialize;
use tower_sessions::Session;

/// A form post that cannot go on: the response that says why. Boxed, as
/// responses are large and this travels through `?`.
pub struct Halt(Box<Response>);

impl IntoResponse for Halt {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Halt {
    fn from(r: Response) -> Self {
        Halt(Box::new(r))
    }
}

pub(crate) type Reply = std::result::Result<Response, Halt>;

fn back(path: &str, code: &str) -> Halt {
    Redirect::to(&format!("{path}?error={code}"))
        .into_response()
        .into()
}

/// The one mapping of a trial service's refusal to a form post's answer, by
/// the kind the error declares (`osteo_trial::error`): the 403 page, the 500
/// page (the cause chain logged), or back to `page` with the error's code,
/// which the page translates.
pub(crate) fn refused<E: osteo_trial::error::ServiceError>(
    headers: &HeaderMap,
    page: &str,
    e: E,
) -> Halt {
    use osteo_trial::error::ErrorKind;
    match e.kind() {
        ErrorKind::Forbidden => html_error(
            StatusCode::FORBIDDEN,
            request_locale(headers),
            "error.forbidden",
        )
        .into(),
        ErrorKind::Internal => internal(headers, crate::errors::error_chain(&e)),
        ErrorKind::Busy => busy(headers),
        ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Invalid => back(page, e.code()),
    }
}

/// The server is at its bound for password work: the 503 page, with
/// `Retry-After`.
pub(crate) fn busy(headers: &HeaderMap) -> Halt {
    crate::errors::html_retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        request_locale(headers),
        "error.busy",
        crate::errors::BUSY_RETRY_SECONDS,
    )
    .into()
}

pub(crate) fn internal(headers: &HeaderMap, e: impl std::fmt::Display) -> Halt {
    tracing::error!(error = %e, "form post failed");
    html_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        request_locale(headers),
        "error.internal",
    )
    .into()
}

pub mod account;
pub mod analysis;
pub mod cases;
pub mod pacs;
pub mod screening;
pub mod study;
pub mod users;

/// A form body; a body that is too large gets 413, a malformed or
/// incomplete one — and one whose fields, once percent-decoded, are not
/// UTF-8 — goes back to its page with `bad_request`. (A lenient decoder
/// would read such bytes as U+FFFD: a password of replacement characters
/// would then be tried, counted and audited.)
pub struct FormBody<T>(T);

/// The body as `application/x-www-form-urlencoded` with every name and
/// value valid UTF-8 once decoded.
fn strict_form<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Option<T> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return None;
    }
    let utf8 = body
        .split(|b| *b == b'&')
        .flat_map(|pair| pair.splitn(2, |b| *b == b'='))
        .all(|part| {
            let spaced: Vec<u8> = part
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_encoding::percent_decode(&spaced)
                .decode_utf8()
                .is_ok()
        });
    if !utf8 {
        return None;
    }
    serde_urlencoded::from_bytes(body).ok()
}

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = Halt;

    async fn from_request(req: Request, state: &S) -> std::result::Result<Self, Self::Rejection> {
        // The page this post goes back to, declared with its route.
        let back_to = req
            .extensions()
            .get::<BackTo>()
            .copied()
            .unwrap_or(BackTo::Page(page::HOME));
        let page = back_to.page(req.uri().path());
        let headers = req.headers().clone();
        match axum::body::Bytes::from_request(req, state).await {
            Ok(body) => strict_form(&headers, &body)
                .map(FormBody)
                .ok_or_else(|| back(&page, "bad_request")),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(html_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                request_locale(&headers),
                "error.too_large",
            )
            .into()),
            Err(_) => Err(back(&page, "bad_request")),
        }
    }
}

/// The numeric id in the path; anything else is a page that does not exist.
/// Case routes take it as a [`CaseId`](osteo_trial::domain::CaseId).
pub struct Id<T = i64>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Id<T> {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(_) => Err(not_found(&parts.headers)),
        }
    }
}

/// The signed-in user (even one who must still replace a one-time password).
pub struct SignedIn(pub(crate) User, pub(crate) Session);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, msg)| Halt::from((status, msg).into_response()))?;
        // `middleware::resolve_user` has resolved the user for this request already.
        let user = match parts.extensions.get::<auth::RequestAuth>() {
            Some(resolved) => resolved.user.clone(),
            None => auth::current_user(&state.db, &session, state.policy()).await,
        };
        match user {
            Ok(user) => Ok(SignedIn(user, session)),
            Err(_) => Err(Redirect::to("/login?error=expired").into_response().into()),
        }
    }
}

/// The signed-in user who has set their own password.
pub struct Member(pub(crate) User, pub(crate) Session);

impl FromRequestParts<AppState> for Member {
    type Rejection = Halt;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let SignedIn(user, session) = SignedIn::from_request_parts(parts, state).await?;
        if user.must_change_password {
            return Err(Redirect::to(page::PASSWORD).into_response().into());
        }
        if user.must_enrol_second_factor() {
            return Err(Redirect::to(page::SECOND_FACTOR).into_response().into());
        }
        Ok(Member(user, session))
    }
}

async fn flash(session: &Session, message: &str, detail: Option<String>, secret: Option<String>) {
    let flash = Flash {
        message: message.to_owned(),
        detail,
        secret,
    };
    if let Err(e) = auth::set_flash(session, flash).await {
        tracing::warn!(error = %e, "could not store the message for the next page");
    }
}

fn lang_cookie(locale: Locale) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            locale.tag()
        ),
    )
}

/// A signature: the password again, and what the signature means
/// (author unless given).
#[derive(Deserialize)]
pub struct SignForm {
    meaning: Option<String>,
    pub(crate) password: String,
    /// The second factor's code, when the account has one.
    second_factor: Option<String>,
}

signing_bodies!(SignForm);

impl SignForm {
    pub(crate) fn meaning(
        &self,
    ) -> Result<osteo_trial::case::SignatureMeaning, osteo_trial::case::CaseError> {
        Ok(self
            .meaning
            .as_deref()
            .map(str::parse)
            .transpose()?
            .unwrap_or(osteo_trial::case::SignatureMeaning::Author))
    }
}

/// The "not found" page, in the request's language.
pub(crate) fn not_found(headers: &HeaderMap) -> Halt {
    html_error(
        StatusCode::NOT_FOUND,
        request_locale(headers),
        "notfound.body",
    )
    .into()
}
