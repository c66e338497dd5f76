//! Rendering a stored radiograph for the screen by the same pipeline the
//! model's input takes (`osteo_model::pixels`, PS3.4 Annex N, grayscale):
//! modality LUT (rescale slope and intercept), the file's window (the 0.5th
//! to 99.5th percentile range when it has none), MONOCHROME1 inverted so
//! that bone is always bright, to 8 bits; scaled to fit the requested size
//! and encoded as PNG. Decoding is done by dicom-pixeldata (uncompressed,
//! deflated, RLE, JPEG baseline/extended/lossless, JPEG 2000).

use dicom_object::DefaultDicomObject;
use osteo_model::pixels::{Grey, PixelError};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Pixels(#[from] PixelError),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

/// The first frame as an 8-bit grayscale image.
pub fn to_image(obj: &DefaultDicomObject) -> Result<image::DynamicImage, RenderError> {
    Ok(image::DynamicImage::ImageLuma8(
        Grey::from_dicom(obj)?.to_luma8(),
    ))
}

/// A PNG of the image fitted into `max_side` × `max_side` pixels (never enlarged).
pub fn png(obj: &DefaultDicomObject, max_side: u32) -> Result<Vec<u8>, RenderError> {
    let img = to_image(obj)?;
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
