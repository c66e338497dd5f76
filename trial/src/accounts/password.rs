//! Argon2id hashing and checking of passwords (OWASP minimum parameters),
//! off the async runtime, with a dummy check that keeps the timing of an
//! unknown username the same as a wrong password.
//!
//! Password work is bounded, because anyone who can reach the sign-in page
//! can ask for it: at most [`workers`] computations run at once, each on a
//! worker thread with a memory area of its own, allocated once and reused
//! (19 MiB each), so a flood of sign-ins neither piles 19 MiB allocations
//! onto the blocking pool nor leaves them in the allocator's arenas. The
//! workers run at the lowest priority of ordinary threads, so that the
//! trial's own requests come first when the processors are busy. Excess
//! requests wait briefly in a bounded queue ([`MAX_WAITING`], [`MAX_WAIT`])
//! and are then refused as [`PasswordError::Busy`].

use super::user::OneTimePassword;
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// A job for a password worker: it runs in the worker's memory area.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A bound on password work: the permits, the queue, and the worker
/// threads, each with its memory area.
pub(super) struct Gate {
    permits: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Memory areas the workers have allocated (one each at most); the
    /// tests read it.
    #[cfg_attr(not(test), allow(dead_code))]
    areas: Arc<AtomicUsize>,
}

impl Gate {
    /// `workers` threads at the lowest scheduling priority of ordinary
    /// threads (nice 19 on Linux): when the trial's own work wants the
    /// processors, it gets them, and password checks wait; on an idle
    /// server they run at full speed.
    pub(super) fn new(workers: usize) -> Gate {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let areas = Arc::new(AtomicUsize::new(0));
        for i in 0..workers {
            let (queue, areas) = (queue.clone(), areas.clone());
            let started = std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || worker(&queue, &areas));
            if let Err(e) = started {
                tracing::error!(error = %e, "a password worker could not start");
            }
        }
        Gate {
            permits: tokio::sync::Semaphore::new(workers),
            waiting: AtomicUsize::new(0),
            jobs: Mutex::new(jobs),
            areas,
        }
    }

    /// Memory areas the workers hold (never more than there are workers).
    #[cfg(test)]
    pub(super) fn areas_held(&self) -> usize {
        self.areas.load(Ordering::SeqCst)
    }
}

/// A password worker: takes jobs until the gate is gone, each in the one
/// memory area it keeps.
fn worker(queue: &Mutex<std::sync::mpsc::Receiver<Job>>, areas: &AtomicUsize) {
    use thread_priority::{set_current_thread_priority, ThreadPriority};
    if let Err(e) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?e, "password work runs at normal priority");
    }
    let mut area = Vec::new();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let had_area = !area.is_empty();
        // A job that panics loses its answer (the caller is told), not the worker.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut area)));
        if !had_area && !area.is_empty() {
            areas.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The server's one bound on password work, of [`workers`] workers.
fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate::new(workers()))
}

/// Runs `work` on a password worker, in its memory area grown to at least
/// `blocks` Argon2 blocks, once a worker is free.
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
    // As many permits as workers: a job with a permit finds a worker free.
    let _permit = match permit {
        Ok(Ok(p)) => p,
        _ => return Err(PasswordError::Busy),
    };
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |area: &mut Vec<Block>| {
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        let result = work(&mut area[..blocks]);
        // What the computation left behind is derived from a password.
        area.fill(Block::default());
        let _ = done.send(result);
    });
    let sent = gate.jobs.lock().map(|jobs| jobs.send(job).is_ok());
    if !sent.unwrap_or(false) {
        return Err(PasswordError::Failed(
            "no password worker is running".into(),
        ));
    }
    answer
        .await
        .map_err(|_| PasswordError::Failed("the password worker failed".into()))
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
