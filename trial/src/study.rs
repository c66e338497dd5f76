//! Study-wide records: the settings fixed before the first read, the
//! operational dashboard (no accuracy before lock), the statistical analysis
//! plan, the database lock, and the locked analysis computed from the
//! snapshot taken at lock.

/// The figures of the locked analysis (types shared with the browser).
pub mod figures;
pub mod sap;
pub use figures::LockedAnalysis;
pub mod settings;
pub use settings::*;
/// The locked accuracy analysis: the figures computed from the snapshot.
#[cfg(feature = "ssr")]
pub mod accuracy;
#[cfg(feature = "ssr")]
mod error;
#[cfg(feature = "ssr")]
pub use error::StudyError;
#[cfg(feature = "ssr")]
mod access;
#[cfg(feature = "ssr")]
mod dashboard;
#[cfg(feature = "ssr")]
mod lock;
#[cfg(feature = "ssr")]
mod locked;
#[cfg(feature = "ssr")]
mod model_pin;
#[cfg(feature = "ssr")]
mod setup;
/// Whether the database is locked.
#[cfg(feature = "ssr")]
pub use crate::write::is_locked;
#[cfg(feature = "ssr")]
pub use access::*;
#[cfg(feature = "ssr")]
pub use dashboard::*;
#[cfg(feature = "ssr")]
pub use lock::*;
#[cfg(feature = "ssr")]
pub use locked::*;
#[cfg(feature = "ssr")]
pub use model_pin::*;
#[cfg(feature = "ssr")]
pub use setup::*;
