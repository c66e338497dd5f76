//! Sign-in throttling: anyone who can reach the sign-in page can ask the
//! server to check a password, so attempts are counted per client address
//! and per username (governor's keyed GCRA limiters) before any password
//! work starts. An attempt over either limit is answered 429 with
//! `Retry-After`, costs no Argon2 and writes no audit row; the lockout after
//! five wrong passwords in a row (`osteo_trial::accounts`) still applies
//! underneath.
//!
//! The bound on password work itself (how many Argon2 computations run at
//! once, and how long excess ones wait) is in `osteo_trial::accounts`: it
//! also covers the many addresses that a per-address limit cannot.

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

/// Sign-in attempts allowed per minute, in a burst or spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// From one client address (a hospital behind one NAT address shares it).
    pub per_address: NonZeroU32,
    /// For one username, from anywhere.
    pub per_username: NonZeroU32,
    /// Take the client's address from the last `X-Forwarded-For` entry (the
    /// one the reverse proxy in front of the server appended), not from the
    /// connection. Only behind a proxy that sets it: otherwise a client
    /// chooses its own address.
    pub trust_forwarded_for: bool,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_address: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
            per_username: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            trust_forwarded_for: false,
        }
    }
}

/// The sign-in limiters of a running server.
pub struct LoginThrottle {
    limits: LoginLimits,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_username: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

/// A sign-in attempt over a limit: how long to wait before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    pub retry_after: Duration,
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> LoginThrottle {
        LoginThrottle {
            limits,
            by_address: RateLimiter::keyed(Quota::per_minute(limits.per_address)),
            by_username: RateLimiter::keyed(Quota::per_minute(limits.per_username)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a sign-in attempt from `address` for `username`; refuses it
    /// when either is over its limit. An attempt refused by address does
    /// not count against the username, so that one noisy address cannot
    /// lock others out of an account.
    pub fn check(&self, address: Option<IpAddr>, username: &str) -> Result<(), TooMany> {
        if let Some(address) = address {
            self.by_address
                .check_key(&address)
                .map_err(|n| self.too_many(&n))?;
        }
        self.by_username
            .check_key(&username_key(username))
            .map_err(|n| self.too_many(&n))
    }

    /// The refusal of a limiter: how long until its next slot.
    fn too_many(&self, refused: &NotUntil<<DefaultClock as Clock>::Instant>) -> TooMany {
        TooMany {
            retry_after: refused.wait_time_from(self.clock.now()),
        }
    }

    /// Forgets the counts that have run out, so that a flood of made-up
    /// usernames does not grow the tables without end. Called every minute.
    pub fn forget_expired(&self) {
        self.by_address.retain_recent();
        self.by_username.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_username.shrink_to_fit();
    }

    /// Counts held (addresses, usernames).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (self.by_address.len(), self.by_username.len())
    }

    /// The client's address: the connection's, or behind a trusted proxy
    /// the last `X-Forwarded-For` entry. `None` where neither is known (a
    /// request handed to the router without a connection).
    pub fn client_address(&self, parts: &Parts) -> Option<IpAddr> {
        if self.limits.trust_forwarded_for {
            // The last entry is the one the proxy appended; earlier ones
            // are whatever the client sent.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|a| a.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())
    }
}

/// The client address of a request, as the sign-in limiter sees it.
pub struct ClientAddress(pub Option<IpAddr>);

impl axum::extract::FromRequestParts<crate::state::AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(state.login_throttle.client_address(parts)))
    }
}

/// The username as the limiter counts it: trimmed, case folded, at most 64
/// characters (as the sign-in looks it up), so that variants of one name
/// share one count and a long made-up name costs no more memory.
fn username_key(username: &str) -> String {
    username
        .trim()
        .chars()
        .take(64)
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_username: u32) -> LoginLimits {
        LoginLimits {
            per_address: NonZeroU32::new(per_address).unwrap_or(NonZeroU32::MIN),
            per_username: NonZeroU32::new(per_username).unwrap_or(NonZeroU32::MIN),
            trust_forwarded_for: false,
        }
    }

    #[test]
    fn an_address_over_its_limit_waits_and_others_do_not() {
        let t = LoginThrottle::new(limits(3, 100));
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        for i in 0..3 {
            assert!(t.check(a, &format!("user{i}")).is_ok());
        }
        let refused = t.check(a, "user9").map(drop).unwrap_err();
        // 3 a minute: the next slot is up to 20 s away.
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(20));
        assert!(t.check(b, "user9").is_ok());
    }

    #[test]
    fn a_username_over_its_limit_waits_whatever_the_address_and_case() {
        let t = LoginThrottle::new(limits(100, 2));
        assert!(t
            .check(Some(IpAddr::from([10, 0, 0, 1])), "coordinator")
            .is_ok());
        assert!(t
            .check(Some(IpAddr::from([10, 0, 0, 2])), " Coordinator")
            .is_ok());
        assert!(t
            .check(Some(IpAddr::from([10, 0, 0, 3])), "COORDINATOR")
            .is_err());
        assert!(t
            .check(Some(IpAddr::from([10, 0, 0, 3])), "monitor")
            .is_ok());
        assert_eq!(t.tracked(), (3, 2));
    }

    #[test]
    fn an_attempt_refused_by_address_does_not_count_for_the_username() {
        let t = LoginThrottle::new(limits(1, 2));
        let noisy = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(t.check(noisy, "pi").is_ok());
        for _ in 0..5 {
            assert!(t.check(noisy, "pi").is_err());
        }
        assert!(t.check(Some(IpAddr::from([10, 0, 0, 2])), "pi").is_ok());
    }
}
