//! Cases in the database, one file per record kind. Every write begins with
//! [`crate::write::begin`], which takes the one write lock and refuses (and
//! audits the refusal) while the database is locked; the change and its
//! audit rows commit together.

mod crf;
mod detail;
mod end;
mod images;
mod pathology;
mod prediction;
mod quality;
mod queries;
mod reads;
mod signatures;
mod training;
pub use crf::*;
pub use detail::*;
pub use end::*;
pub use images::*;
pub use pathology::*;
pub use prediction::*;
pub use quality::*;
pub use queries::*;
pub use reads::*;
pub use training::*;

mod cases;
pub(crate) use cases::create_case;
