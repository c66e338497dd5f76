//! The trial's rules and records.
//!
//! - [`domain`]: types shared with the browser (roles, usernames, languages…);
//!   each can only hold a valid value.
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`analysis`]: the diagnostic-accuracy statistics (pure functions).
//! - [`screening`]: the consecutive screening log and enrolment.
//! - [`case`]: an enrolled patient's way through the trial — the state
//!   machine, clinical CRF, blinded reads scored by a versioned Bone-RADS
//!   table, the locked AI prediction, pathology behind its gate, signatures
//!   and data queries.
//! - [`study`]: study settings, the operational dashboard, the database lock.
//! - [`error`]: the kinds of refusal every service error declares.
//! - behind the `ssr` feature: [`store`] (the database), [`write`] (how
//!   every service writes: the transaction, the lock check, the permission
//!   check), [`accounts`] (accounts, sign-in, lockout, API tokens),
//!   [`events`] (what a committed change announces: reads locked, a model
//!   pinned).
//!
//! `trial` never depends on the model crate: an AI result is data by the time
//! it arrives here.

pub mod analysis;
pub mod audit;
pub mod case;
pub mod codes;
pub mod domain;
pub mod error;
pub mod screening;
pub mod study;

#[cfg(feature = "ssr")]
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod events;
#[cfg(feature = "ssr")]
pub mod pacs;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod write;
