//! Who is signed in: the server-side session and the rules that end it.
//! Used by the page guard in the server crate and by every server function,
//! so that one rule decides in one place.

use crate::flash::Flash;
use osteo_trial::accounts::{self, User};
use osteo_trial::store::{format_utc, parse_utc, Db};
use tower_sessions::Session;

const KEY_USER: &str = "uid";
const KEY_EPOCH: &str = "epoch";
const KEY_AUTH_AT: &str = "auth_at";
const KEY_FLASH: &str = "flash";
const KEY_ECHO: &str = "echo";
const KEY_PENDING: &str = "pending_uid";
const KEY_PENDING_EPOCH: &str = "pending_epoch";
const KEY_PENDING_AT: &str = "pending_at";

/// How long the second factor may take after the password.
pub const SECOND_FACTOR_WINDOW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// How long a session may live however active it is (the idle timeout is
/// the session layer's expiry).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub absolute: std::time::Duration,
}

/// Who is signed in, resolved once per request by the server's middleware
/// and handed to the pages and server functions in the request's
/// extensions: rendering a page then reads it without touching the session
/// (whose record several server functions would otherwise lock at once).
#[derive(Debug, Clone)]
pub struct RequestAuth {
    pub user: Result<User, NoUser>,
    /// The one-off message of a page being rendered, taken from the session.
    pub flash: Option<Flash>,
    /// A failed form's values and problems, for the page to show again.
    pub echo: Option<osteo_trial::case::FormEcho>,
}

/// Why there is no signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUser {
    /// No sign-in in this session.
    Anonymous,
    /// There was one, and it ended (timeout, password reset, deactivation).
    Ended,
}

/// Starts an authenticated session for `user` (a new session id, against
/// session fixation).
pub async fn begin(session: &Session, user: &User) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    let _ = session.remove::<i64>(KEY_PENDING).await?;
    session.insert(KEY_USER, user.id).await?;
    session.insert(KEY_EPOCH, user.session_epoch).await?;
    session
        .insert(KEY_AUTH_AT, format_utc(chrono::Utc::now()))
        .await?;
    Ok(())
}

/// Remembers, after a right password, whose second factor this session
/// waits for (a new session id; nobody is signed in until the code).
pub async fn begin_second_factor(
    session: &Session,
    user: &User,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(KEY_PENDING, user.id).await?;
    session
        .insert(KEY_PENDING_EPOCH, user.session_epoch)
        .await?;
    session
        .insert(KEY_PENDING_AT, format_utc(chrono::Utc::now()))
        .await?;
    Ok(())
}

/// The account whose second factor this session waits for, while the
/// window lasts and the account is as it was at the password.
pub async fn pending_second_factor(db: &Db, session: &Session) -> Option<User> {
    let uid: i64 = session.get(KEY_PENDING).await.ok().flatten()?;
    let epoch: Option<i64> = session.get(KEY_PENDING_EPOCH).await.ok().flatten();
    let at: Option<String> = session.get(KEY_PENDING_AT).await.ok().flatten();
    let fresh = at.as_deref().and_then(parse_utc).is_some_and(|t| {
        chrono::Utc::now()
            .signed_duration_since(t)
            .to_std()
            .unwrap_or_default()
            < SECOND_FACTOR_WINDOW
    });
    let user = accounts::get_user(db, uid).await.ok().flatten()?;
    (fresh && user.active && Some(user.session_epoch) == epoch).then_some(user)
}

/// Follows a password change in this session (the change ends the others).
pub async fn refresh(session: &Session, user: &User) -> Result<(), tower_sessions::session::Error> {
    session.insert(KEY_EPOCH, user.session_epoch).await?;
    Ok(())
}

/// Ends the session and removes it from the store.
pub async fn end(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.flush().await
}

/// The signed-in, active user of this session, or why there is none.
pub async fn current_user(
    db: &Db,
    session: &Session,
    policy: SessionPolicy,
) -> Result<User, NoUser> {
    let uid: Option<i64> = session.get(KEY_USER).await.ok().flatten();
    let Some(uid) = uid else {
        return Err(NoUser::Anonymous);
    };
    let epoch: Option<i64> = session.get(KEY_EPOCH).await.ok().flatten();
    let auth_at: Option<String> = session.get(KEY_AUTH_AT).await.ok().flatten();
    let fresh = auth_at.as_deref().and_then(parse_utc).is_some_and(|t| {
        chrono::Utc::now()
            .signed_duration_since(t)
            .to_std()
            .unwrap_or_default()
            < policy.absolute
    });
    let user = accounts::get_user(db, uid).await.ok().flatten();
    match user {
        Some(user) if fresh && user.active && Some(user.session_epoch) == epoch => Ok(user),
        _ => {
            let _ = session.flush().await;
            Err(NoUser::Ended)
        }
    }
}

pub async fn set_flash(
    session: &Session,
    flash: Flash,
) -> Result<(), tower_sessions::session::Error> {
    session.insert(KEY_FLASH, flash).await
}

pub async fn take_flash(session: &Session) -> Option<Flash> {
    session.remove::<Flash>(KEY_FLASH).await.ok().flatten()
}

/// Keeps a failed form's values and problems for the page it returns to.
pub async fn set_echo(
    session: &Session,
    echo: osteo_trial::case::FormEcho,
) -> Result<(), tower_sessions::session::Error> {
    session.insert(KEY_ECHO, echo).await
}

pub async fn take_echo(session: &Session) -> Option<osteo_trial::case::FormEcho> {
    session
        .remove::<osteo_trial::case::FormEcho>(KEY_ECHO)
        .await
        .ok()
        .flatten()
}
