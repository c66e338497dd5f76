//! The screening log (PROTOCOL.md, "Eligibility" and workflow step 1): every
//! consecutively screened patient gets the next screening number of their
//! site, the eligibility checklist, and an outcome — enrolled with the next
//! study number of their arm, excluded with coded reasons (E1, E2, E3), or
//! not enrolled for another coded reason. Entries are never deleted; a
//! correction is a new version with a reason.

#[cfg(feature = "ssr")]
mod store;
#[cfg(feature = "ssr")]
pub use store::*;

pub mod entry;
pub use entry::*;
