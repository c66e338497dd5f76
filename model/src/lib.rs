//! The AI index test of the trial: DICOM pixels to tensors, the multi-view,
//! multimodal network (burn), training on the retrospective arm, locked
//! server-side inference and Guided Grad-CAM heat maps.
//!
//! This crate holds no web, database or command-line code, and `trial` never
//! depends on it: by the time a prediction reaches `trial` it is data
//! (probability, model id, weight and image hashes).

pub mod clinical;
pub mod error;
pub mod manifest;
pub mod net;
pub mod phantom;
pub mod pixels;

pub use clinical::Clinical;
pub use error::ModelError;
pub use manifest::{Label, ManifestRow};
pub use net::{Net, NetConfig};

pub mod bench;
pub mod card;
pub mod data;
pub mod dataset;
pub mod demo;
pub mod domain;
pub mod federated;
pub mod infer;
pub mod train;

pub use burn;

/// A tensor's values copied to the host (waits for the device).
pub(crate) fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(ModelError::backend)
}
pub use card::{ModelCard, ModelDir, DEMO_LABEL};

/// The device of a backend by name: `flex` (always built), `wgpu`, `cuda`,
/// `ndarray` and `tch` (with the crate's `gpu-wgpu` / `gpu-cuda` /
/// `cpu-ndarray` / `cpu-tch` features).
pub fn device(name: &str) -> Result<burn::tensor::Device, ModelError> {
    use burn::tensor::Device;
    match name {
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "gpu-wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "gpu-cuda")]
        "cuda" => Ok(Device::cuda(0)),
        // ndarray and tch are deprecated in burn 0.22: options, measured
        // against flex in docs/build.md.
        #[cfg(feature = "cpu-ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "cpu-tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch()),
        other => Err(ModelError::Backend(format!(
            "backend {other} is not built in (flex always is; wgpu, cuda, ndarray and tch need the gpu-wgpu / gpu-cuda / cpu-ndarray / cpu-tch features)"
        ))),
    }
}
