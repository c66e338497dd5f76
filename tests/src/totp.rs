//! The tests' own RFC 6238 (HMAC-SHA1, 30-second steps), written here and
//! checked against the RFC's test vectors, independent of the server's
//! `totp-rs`: the codes a person's authenticator app would show.
//!
//! [`Authenticators`] holds the keys of the accounts the harness enrolled
//! and the last step each has used, and hands out codes as a person would
//! type them: for a sign-in always a step not used before (waiting for the
//! next one if need be, as the server refuses a code twice at sign-in), for
//! a signature the code the app shows now.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Seconds in one step.
const STEP: u64 = 30;

/// RFC 4648 base32 (no padding), as authenticator apps read the key.
pub fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0_u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("a base32 character") as u32;
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// The `digits`-digit TOTP of `key` at Unix time `t`.
pub fn totp(key: &[u8], t: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
    mac.update(&(t / STEP).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let value = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10_u32.pow(digits),
        width = digits as usize
    )
}

/// Unix time now, in seconds.
pub fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// What a code is for (the server's rules differ, see the module's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    SignIn,
    Signature,
}

/// One account's app: its key and the last step it gave a code for.
type App = (Vec<u8>, u64);

/// The authenticator apps of the harness's accounts, by username. Shared
/// by a test's app, browsers and API clients.
#[derive(Clone, Default)]
pub struct Authenticators(Arc<Mutex<HashMap<String, App>>>);

impl Authenticators {
    /// Records `username`'s key, enrolled with the code of `step`.
    pub fn enrolled(&self, username: &str, key: Vec<u8>, step: u64) {
        if let Ok(mut apps) = self.0.lock() {
            apps.insert(username.to_owned(), (key, step));
        }
    }

    /// Forgets `username`'s key (its second factor was reset).
    pub fn forget(&self, username: &str) {
        if let Ok(mut apps) = self.0.lock() {
            apps.remove(username);
        }
    }

    pub fn has(&self, username: &str) -> bool {
        self.0.lock().is_ok_and(|apps| apps.contains_key(username))
    }

    /// A code of `username`'s app for `used_for`, or `None` when the
    /// account has no second factor here. For a sign-in it may wait up to
    /// one step for a code not used before.
    pub async fn code(&self, username: &str, used_for: Use) -> Option<String> {
        loop {
            let wait = {
                let mut apps = self.0.lock().ok()?;
                let (key, last) = apps.get_mut(username)?;
                let t = now();
                let now = t / STEP;
                let step = match used_for {
                    Use::SignIn => now.max(*last + 1),
                    Use::Signature => now.max(*last),
                };
                // The server takes one step of drift either way.
                if step <= now + 1 {
                    *last = step;
                    return Some(totp(key, step * STEP, 6));
                }
                ((step - 1) * STEP).saturating_sub(t)
            };
            tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_own_totp_gives_rfc_6238s_test_vectors() {
        let key = b"12345678901234567890";
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp(key, t, 8), code, "T = {t}");
        }
        assert_eq!(base32("GEZDGNBVGY3TQOJQ"), b"1234567890");
    }
}
