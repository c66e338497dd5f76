//! The AI index test of the trial: DICOM pixels to tensors, the multi-view,
//! multimodal network (burn), training on the retrospective arm, locked
//! server-side inference and Grad-CAM heat maps.
//!
//! This crate holds no web, database or command-line code, and `trial` never
//! depends on it: by the time a prediction reaches `trial` it is data
//! (probability, model id, weight and image hashes). The network itself
//! arrives with the model issue; until then the server has no model and
//! cases wait for one — the product never invents a prediction.
