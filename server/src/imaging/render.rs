//! Rendering a stored radiograph for the screen by the same pipeline the
//! model's input takes (`osteo_model::pixels`, PS3.4 Annex N, grayscale):
//! modality LUT (rescale slope and intercept), the file's window (the 0.5th
//! to 99.5th percentile range when it has none), MONOCHROME1 inverted so
//! that bone is always bright, to 8 bits; scaled to fit the requested size
//! and encoded as PNG. Decoding is done by dicom-pixeldata (uncompressed,
//! deflated, RLE, JPEG baseline/extended/lossless, JPEG 2000).

use dicom_object::DefaultDicomObject;
use osteo_model::pixels::{Modality, PixelError, Window};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Pixels(#[from] PixelError),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

/// What the viewer needs to window an image itself: the default window
/// (the file's, or the percentile fallback) and the value range, in
/// modality units, and whether the image is MONOCHROME1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowInfo {
    pub centre: f64,
    pub width: f64,
    /// Whether the window is the file's own (else the percentile fallback).
    pub from_file: bool,
    pub min: f64,
    pub max: f64,
    pub monochrome1: bool,
    pub rows: usize,
    pub columns: usize,
}

/// The first frame's [`WindowInfo`].
pub fn window_info(obj: &DefaultDicomObject) -> Result<WindowInfo, RenderError> {
    let m = Modality::from_dicom(obj)?;
    let w = m.default_window();
    let (min, max) = m.range();
    Ok(WindowInfo {
        centre: w.centre,
        width: w.width,
        from_file: m.file_window.is_some(),
        min,
        max,
        monochrome1: m.monochrome1,
        rows: m.height,
        columns: m.width,
    })
}

/// The first frame as an 8-bit grayscale image, through `window` (modality
/// units) or the default window.
pub fn to_image(
    obj: &DefaultDicomObject,
    window: Option<Window>,
) -> Result<image::DynamicImage, RenderError> {
    Ok(image::DynamicImage::ImageLuma8(
        Modality::from_dicom(obj)?.to_grey(window).to_luma8(),
    ))
}

/// A PNG of the image fitted into `max_side` × `max_side` pixels (never
/// enlarged), through `window` or the default window.
pub fn png(
    obj: &DefaultDicomObject,
    max_side: u32,
    window: Option<Window>,
) -> Result<Vec<u8>, RenderError> {
    let img = to_image(obj, window)?;
    let img = if img.width().max(img.height()) > max_side {
        img.resize(max_side, max_side, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}
