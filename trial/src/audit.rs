//! The audit trail (21 CFR Part 11 §11.10(e)): one append-only table, written
//! in the same transaction as the change it records, hash-chained so that any
//! edit, deletion or out-of-order insertion is found by [`verify`].
//!
//! Chain rule: row *n* stores `prev_hash` = the `hash` of row *n − 1* (64 zeros
//! for row 1) and `hash` = SHA-256 over the canonical JSON array
//! `[seq, at, actor_id, actor, source, action, entity, entity_id, field,
//! old_value, new_value, reason, prev_hash]`. The single-row `audit_head`
//! table holds the last `seq` and `hash`; every append locks and advances it,
//! which serialises appends on PostgreSQL (row lock) as on SQLite (one writer),
//! and lets `verify` notice rows removed from the end.
//!
//! The database refuses UPDATE and DELETE on `audit_log` through triggers;
//! the chain catches whoever removes the triggers first.

#[cfg(feature = "ssr")]
pub mod anchor;
#[cfg(feature = "ssr")]
mod chain;
#[cfg(feature = "ssr")]
pub mod key;
#[cfg(feature = "ssr")]
pub use chain::*;

pub mod record;
pub use record::*;
