//! The AI index test of the trial: DICOM pixels to tensors, the multi-view,
//! multimodal network (burn), training on the retrospective arm, locked
//! server-side inference and Grad-CAM heat maps.
//!
//! This crate holds no web, database or command-line code, and `trial` never
//! depends on it: by the time a prediction reaches `trial` it is data
//! (probability, model id, weight and image hashes).

pub mod clinical;
pub mod manifest;
pub mod net;
pub mod phantom;
pub mod pixels;

pub use clinical::Clinical;
pub use manifest::{Label, ManifestRow};
pub use net::{Net, NetConfig};

pub mod bench;
pub mod card;
pub mod data;
pub mod demo;
pub mod infer;
pub mod train;

pub use burn;

/// A tensor's values copied to the host (waits for the device).
pub(crate) fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}
pub use card::{ModelCard, ModelDir, DEMO_LABEL};
