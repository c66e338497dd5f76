//! Argon2id hashing and checking of passwords (OWASP minimum parameters),
//! off the async runtime, with a dummy check that keeps the timing of an
//! unknown username the same as a wrong password.
//!
//! Password work is bounded, because anyone who can reach the sign-in page
//! can ask for it: at most [`workers`] computations run at once, each in a
//! memory area of its own that is allocated once and reused (19 MiB each),
//! so a flood of sign-ins neither piles 19 MiB allocations onto the blocking
//! pool nor leaves them in the allocator's arenas. Excess requests wait
//! briefly in a bounded queue ([`MAX_WAITING`], [`MAX_WAIT`]) and are then
//! refused as [`PasswordError::Busy`].

use super::user::OneTimePassword;
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Requests that may wait for a password worker at once; more are refused
/// at once.
pub const MAX_WAITING: usize = 32;
/// How long a request waits for a password worker before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("too many passwords are being checked at the moment; try again in a few seconds")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub(super) fn params() -> Params {
    // OWASP Password Storage Cheat Sheet, Argon2id minimum: m=19 MiB, t=2, p=1.
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// The argon2 crate's own hasher with these parameters (the tests check
/// that the hashes made here are the ones it makes).
#[cfg(test)]
pub(super) fn argon2_crate_default() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// How many password computations run at once: half the processors (at
/// least one), so that a flood of sign-ins leaves the other half to the
/// trial's own work.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

/// A bound on password work: the permits, the queue and the memory areas.
pub(super) struct Gate {
    permits: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    areas: Mutex<Vec<Vec<Block>>>,
}

impl Gate {
    pub(super) fn new(workers: usize) -> Gate {
        Gate {
            permits: tokio::sync::Semaphore::new(workers),
            waiting: AtomicUsize::new(0),
            areas: Mutex::new(Vec::new()),
        }
    }

    /// Memory areas kept for reuse (never more than its workers).
    #[cfg(test)]
    pub(super) fn areas_held(&self) -> usize {
        self.areas.lock().map(|a| a.len()).unwrap_or_default()
    }
}

/// The server's one bound on password work, of [`workers`] workers.
fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate::new(workers()))
}

/// Runs `work` on the blocking pool in a reused memory area of at least
/// `blocks` Argon2 blocks, once a password worker is free.
async fn with_area<R: Send + 'static>(
    gate: &Gate,
    blocks: usize,
    work: impl FnOnce(&mut [Block]) -> R + Send + 'static,
) -> Result<R, PasswordError> {
    if gate.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(PasswordError::Busy);
    }
    let permit = tokio::time::timeout(MAX_WAIT, gate.permits.acquire()).await;
    gate.waiting.fetch_sub(1, Ordering::SeqCst);
    let _permit = match permit {
        Ok(Ok(p)) => p,
        _ => return Err(PasswordError::Busy),
    };
    // One area per permit at most: the pool never holds more than `workers()`.
    let area = gate.areas.lock().ok().and_then(|mut a| a.pop());
    let (result, area) = tokio::task::spawn_blocking(move || {
        let mut area = area.unwrap_or_default();
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        let result = work(&mut area[..blocks]);
        // What the computation left behind is derived from a password.
        area.fill(Block::default());
        (result, area)
    })
    .await
    .map_err(|e| PasswordError::Failed(e.to_string()))?;
    if let Ok(mut areas) = gate.areas.lock() {
        areas.push(area);
    }
    Ok(result)
}

/// Argon2 of `password` with `salt` into an output of `len` bytes.
fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &argon2::password_hash::Salt<'_>,
    len: usize,
    area: &mut [Block],
) -> Result<Output, PasswordError> {
    let failed = |e: &dyn std::fmt::Display| PasswordError::Failed(e.to_string());
    let mut salt_bytes = [0_u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *area)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| failed(&e))
}

/// Hashes a password (a PHC string) off the async threads.
pub(super) async fn hash_password(password: String) -> Result<String, PasswordError> {
    let params = params();
    with_area(gate(), params.block_count(), move |area| {
        let salt = SaltString::generate(&mut OsRng);
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = compute(&argon, password.as_bytes(), &salt.as_salt(), len, area)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|e| PasswordError::Failed(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    })
    .await?
}

/// Checks a password against a stored hash off the async threads; the
/// comparison takes the same time wherever the outputs differ.
pub(super) async fn verify_password(password: String, hash: String) -> Result<bool, PasswordError> {
    verify_password_in(gate(), password, hash).await
}

/// [`verify_password`] under the bound `gate`.
pub(super) async fn verify_password_in(
    gate: &Gate,
    password: String,
    hash: String,
) -> Result<bool, PasswordError> {
    let failed = |e: argon2::password_hash::Error| PasswordError::Failed(e.to_string());
    let blocks = {
        let parsed = PasswordHash::new(&hash).map_err(failed)?;
        Params::try_from(&parsed).map_err(failed)?.block_count()
    };
    with_area(gate, blocks, move |area| {
        let parsed = PasswordHash::new(&hash).map_err(failed)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(failed)?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| PasswordError::Failed(e.to_string()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(failed)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(PasswordError::Failed(
                "the stored hash has no salt or output".into(),
            ));
        };
        let argon = Argon2::new(algorithm, version, params);
        let output = compute(&argon, password.as_bytes(), &salt, expected.len(), area)?;
        // `Output`'s equality is constant-time.
        Ok(output == expected)
    })
    .await?
}

/// A hash of a random password, checked when the username is unknown so that
/// a wrong username takes as long as a wrong password.
pub(super) async fn dummy_verify(password: String) -> Result<(), PasswordError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h = hash_password(OneTimePassword::generate().0).await?;
            DUMMY.get_or_init(|| h).clone()
        }
    };
    verify_password(password, hash).await.map(drop)
}

/// Whether a stored password is a one-time password, which must be replaced
/// at the next sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OneTime {
    Yes,
    No,
}

/// Stores a new password hash for the account and ends its sessions (the
/// session epoch moves on); a reset also lifts any lockout.
pub(super) async fn store_password(
    tx: &mut crate::write::Tx,
    user_id: i64,
    hash: &str,
    one_time: OneTime,
) -> Result<(), sqlx::Error> {
    let sql = match one_time {
        OneTime::Yes => {
            "UPDATE users SET password_hash = $1, must_change_password = 1, failed_logins = 0, \
             locked_until = NULL, password_changed_at = $2, session_epoch = session_epoch + 1 WHERE id = $3"
        }
        OneTime::No => {
            "UPDATE users SET password_hash = $1, must_change_password = 0, password_changed_at = $2, \
             session_epoch = session_epoch + 1 WHERE id = $3"
        }
    };
    sqlx::query(sql)
        .bind(hash)
        .bind(crate::store::now_utc())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
