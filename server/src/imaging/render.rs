//! Rendering a stored radiograph for the screen, by the standard pipeline
//! (PS3.4 Annex N, grayscale): modality LUT (rescale slope and intercept),
//! then the file's VOI LUT or window centre/width (min–max when it has
//! none), MONOCHROME1 inverted so that bone is always bright, to 8 bits;
//! scaled to fit the requested size and encoded as PNG. Decoding is done by
//! dicom-pixeldata (uncompressed, deflated, RLE, JPEG baseline/extended/
//! lossless, JPEG 2000).

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{ConvertOptions, PixelDecoder};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the pixel data cannot be decoded (transfer syntax {ts}): {reason}")]
    Decode { ts: String, reason: String },
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

/// The first frame as an 8-bit grayscale image.
pub fn to_image(obj: &DefaultDicomObject) -> Result<image::DynamicImage, RenderError> {
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let fail = |e: &dyn std::fmt::Display| RenderError::Decode {
        ts: ts.clone(),
        reason: e.to_string(),
    };
    let decoded = obj.decode_pixel_data().map_err(|e| fail(&e))?;
    decoded
        .to_dynamic_image_with_options(0, &ConvertOptions::new().force_8bit())
        .map_err(|e| fail(&e))
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
