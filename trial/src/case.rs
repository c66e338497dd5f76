//! One enrolled patient's way through the trial (PROTOCOL.md, "The prospective
//! workflow"): the state machine, the records each step writes, electronic
//! signatures and data queries.
//!
//! ```text
//! enrolled → images_complete → crf_complete → reads_locked → ai_locked
//!          → pathology_entered → complete
//! enrolled, images_complete, crf_complete → excluded (E1, E2, E3)
//! enrolled … ai_locked → withdrawn (coded reason, the PI's signature)
//! ```
//!
//! The retrospective arm is the model's training set and has its own path
//! ([`CaseState::apply_in`], docs/retrospective-arm.md): its pathology is
//! already known and its reads are optional, and the model never runs on it.
//!
//! ```text
//! enrolled → images_complete → crf_complete [→ reads_locked] → pathology_entered → complete
//! ```
//!
//! Decisions that remove a case from the analysis are taken blind to the
//! outcome (DESIGN.md invariant 9; ICH E9 §5.2 on blinded exclusions, STARD
//! 2015 item 20): eligibility exclusions only until the reads lock, after
//! that only a coded withdrawal signed by the principal investigator, and
//! none once pathology is known — the case then stays in the analysis.
//!
//! A case moves only through [`CaseState::apply_in`]; every other move is an
//! [`IllegalTransition`] that says where the case is and what it waits for.
//! The database enforces the invariants that matter most on its own as well
//! (pathology only after the locks, predictions and signed reads immutable,
//! nothing written after database lock), so no entry point can go around them.

pub mod bonerads;
pub mod crf;
#[cfg(feature = "ssr")]
pub mod error;
pub mod pathology;
#[cfg(feature = "ssr")]
pub use error::CaseError;
#[cfg(feature = "ssr")]
pub(crate) mod store;
/// Opens the case of a patient just enrolled (the screening log's enrolment).
#[cfg(feature = "ssr")]
pub(crate) use store::create_case;
#[cfg(feature = "ssr")]
pub use store::{
    act_on_query, ai_input, ai_queue_length, amend_frozen_crf, assign_reader, attach_image,
    awaiting_ai, case_detail, claim_for_ai, complete_images, end_case, enter_pathology, find_case,
    image_by_original, image_for_viewer, images_for_viewer, list_cases, list_cases_page,
    list_queries, map_uids, mark_poor_quality, new_uid, pathology_of, prediction, raise_query,
    reads, record_ai_failure, record_prediction, release_ai_claim, retrospective_training_set,
    save_crf, save_read, sign_crf, sign_pathology, sign_read, study_number, worklist,
    worklist_page, TrainingCase, ViewerImage,
};

pub mod record;
pub use record::*;
