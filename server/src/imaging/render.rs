//! Rendering a stored radiograph for the screen by the same pipeline the
//! model's input takes (`osteo_model::pixels`, PS3.4 Annex N, grayscale):
//! modality LUT (rescale slope and intercept), the file's window (the 0.5th
//! to 99.5th percentile range when it has none), MONOCHROME1 inverted so
//! that bone is always bright, to 8 bits; scaled to fit the requested size
//! and encoded as PNG. Decoding is done by dicom-pixeldata (uncompressed,
//! deflated, RLE, JPEG baseline/extended/lossless, JPEG 2000).

use dicom_core::Tag;
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
///
/// A preview much smaller than the image is reduced before windowing: the
/// modality values are averaged over k × k blocks (k = the whole number of
/// times the image's long side holds `max_side`) after the default window
/// is taken from the full image, and a JPEG 2000 image is decoded at the
/// matching lower resolution level to begin with (its own wavelet
/// low-pass, so most of the decoding is never done). Then the exact
/// window, 8 bits, and a final area-averaging resize.
pub fn png(
    obj: &DefaultDicomObject,
    max_side: u32,
    window: Option<Window>,
) -> Result<Vec<u8>, RenderError> {
    let long = super::number(obj, Tag(0x0028, 0x0010))
        .unwrap_or(0)
        .max(super::number(obj, Tag(0x0028, 0x0011)).unwrap_or(0));
    let factor = (u32::from(long) / max_side.max(1)) as usize;
    let (reduced, default) = match jpeg2000_reduced(obj, factor) {
        Some(m) => {
            let default = m.default_window();
            (m, default)
        }
        None if factor >= 2 => Modality::preview_from_dicom(obj, factor)?,
        None => {
            let full = Modality::from_dicom(obj)?;
            let default = full.default_window();
            (full, default)
        }
    };
    let img = image::DynamicImage::ImageLuma8(
        reduced.to_grey(Some(window.unwrap_or(default))).to_luma8(),
    );
    let img = if img.width().max(img.height()) > max_side {
        // Less than halving is left: area averaging is enough, and quick.
        img.thumbnail(max_side, max_side)
    } else {
        img
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

const JPEG_2000: [&str; 2] = ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"];

/// A single-frame grayscale JPEG 2000 image decoded at the resolution level
/// `factor` allows (each level halves the sides), in modality units; `None`
/// for anything else, or when the codestream will not decode that way (the
/// caller then decodes it whole).
fn jpeg2000_reduced(obj: &DefaultDicomObject, factor: usize) -> Option<Modality> {
    let reduce = factor.checked_ilog2()?;
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
    if reduce == 0 || !JPEG_2000.contains(&ts) {
        return None;
    }
    let frames = super::text(obj, Tag(0x0028, 0x0008))
        .and_then(|f| f.parse::<u32>().ok())
        .unwrap_or(1);
    if frames != 1 || super::number(obj, Tag(0x0028, 0x0002)).unwrap_or(1) != 1 {
        return None;
    }
    let monochrome1 = match super::text(obj, Tag(0x0028, 0x0004))?.as_str() {
        "MONOCHROME1" => true,
        "MONOCHROME2" => false,
        _ => return None,
    };
    let fragments = obj.element(Tag(0x7FE0, 0x0010)).ok()?.value().fragments()?;
    let codestream = fragments.concat();
    let image =
        jpeg2k::Image::from_bytes_with(&codestream, jpeg2k::DecodeParameters::new().reduce(reduce))
            .ok()?;
    let component = image.components().first()?;
    let (width, height) = (component.width() as usize, component.height() as usize);
    let stored: Vec<f64> = component.data().iter().map(|&v| f64::from(v)).collect();
    let first = |tag: Tag| {
        super::text(obj, tag).and_then(|v| {
            v.split('\\')
                .next()
                .and_then(|x| x.trim().parse::<f64>().ok())
        })
    };
    let rescale = (
        first(Tag(0x0028, 0x1053)).unwrap_or(1.0),
        first(Tag(0x0028, 0x1052)).unwrap_or(0.0),
    );
    let window = first(Tag(0x0028, 0x1050))
        .zip(first(Tag(0x0028, 0x1051)))
        .map(|(centre, width)| Window { centre, width });
    Modality::from_stored(width, height, &stored, rescale, window, monochrome1).ok()
}
