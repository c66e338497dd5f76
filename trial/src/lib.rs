//! The trial's rules and records.
//!
//! - [`domain`]: types shared with the browser (roles, usernames, languages…);
//!   each can only hold a valid value.
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`analysis`]: the diagnostic-accuracy statistics (pure functions).
//! - [`screening`]: the consecutive screening log and enrolment.
//! - behind the `ssr` feature: [`store`] (the database), [`accounts`]
//!   (accounts, sign-in, lockout, API tokens).
//!
//! `trial` never depends on the model crate: an AI result is data by the time
//! it arrives here.

pub mod analysis;
pub mod audit;
pub mod domain;
pub mod screening;

#[cfg(feature = "ssr")]
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod store;
