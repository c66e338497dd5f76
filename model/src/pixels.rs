//! From a DICOM radiograph to the network's input, one code path for
//! training and inference.
//!
//! The grayscale pipeline of DICOM PS3.4 Annex N / PS3.3 C.11:
//! 1. **modality LUT**: `value = stored × RescaleSlope + RescaleIntercept`
//!    (identity when the file has no rescale);
//! 2. **VOI**: the file's first window (centre `c`, width `w`) through the
//!    linear function of PS3.3 C.11.2.1.2.1 — `0` below
//!    `c − 0.5 − (w − 1)/2`, `1` above `c − 0.5 + (w − 1)/2`, otherwise
//!    `((x − (c − 0.5)) / (w − 1)) + 0.5` — or, when the file has none, the
//!    0.5th–99.5th percentile range of the image as the window (robust to a
//!    few saturated pixels, unlike min–max);
//! 3. **MONOCHROME1** (low values bright) inverted, so bone is bright for
//!    every input;
//! 4. aspect-preserving bilinear resize to fit a `size × size` square, centred
//!    and padded with 0 (black, like collimated film);
//! 5. intensity scaling to `[0, 2]`: `x / 0.5`, black staying 0 — the
//!    value the convolutions pad with, so the square's border, the
//!    letterbox and air all look alike and the network learns no edge that
//!    is not in the image (batch normalisation centres the features).
//!
//! Steps 1–3 give a [`Grey`] image with display intensities in `[0, 1]`;
//! [`Grey::fit_square`] and [`normalise`] do 4 and 5.

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};

/// Why a radiograph cannot be turned into pixels.
#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("the pixel data cannot be decoded (transfer syntax {ts}): {reason}")]
    Decode { ts: String, reason: String },
    #[error("the image is not grayscale (photometric interpretation {0})")]
    NotGrayscale(String),
    #[error("the image is empty")]
    Empty,
    #[error("the pixel data holds {found} values where the declared size needs {expected}")]
    Short { expected: usize, found: usize },
}

/// The pixel spacing a file declares, in millimetres: Pixel Spacing
/// (0028,0030), else Imager Pixel Spacing (0018,1164), the larger of its
/// row and column values; `None` when neither holds a positive number.
pub fn pixel_spacing_mm(obj: &DefaultDicomObject) -> Option<f64> {
    use dicom_core::Tag;
    [Tag(0x0028, 0x0030), Tag(0x0018, 0x1164)]
        .into_iter()
        .find_map(|tag| {
            let values = obj.element_opt(tag).ok()??.to_multi_float64().ok()?;
            let mm = values.into_iter().fold(f64::NAN, f64::max);
            (mm.is_finite() && mm > 0.0).then_some(mm)
        })
}

/// A grayscale image with display intensities in `[0, 1]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

/// A window (VOI) in modality units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub centre: f64,
    pub width: f64,
}

/// Step 1: the modality LUT (rescale).
pub fn modality_lut(stored: f64, slope: f64, intercept: f64) -> f64 {
    stored * slope + intercept
}

/// Step 2: the linear VOI function of PS3.3 C.11.2.1.2.1, to `[0, 1]`.
/// A width below 1 is treated as 1, as the standard requires `w ≥ 1`.
pub fn window_linear(x: f64, window: Window) -> f64 {
    let c = window.centre;
    let w = window.width.max(1.0);
    if w <= 1.0 {
        return if x <= c - 0.5 { 0.0 } else { 1.0 };
    }
    let low = c - 0.5 - (w - 1.0) / 2.0;
    let high = c - 0.5 + (w - 1.0) / 2.0;
    if x <= low {
        0.0
    } else if x > high {
        1.0
    } else {
        ((x - (c - 0.5)) / (w - 1.0)) + 0.5
    }
}

/// The fallback window: the 0.5th to 99.5th percentile of the values
/// (nearest rank), as centre and width.
pub fn percentile_window(values: &[f64]) -> Window {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Window {
            centre: 0.5,
            width: 1.0,
        };
    }
    // Two selections (linear time) instead of a sort: the nearest ranks.
    let last = finite.len() - 1;
    let rank = |p: f64| ((p * last as f64).round() as usize).min(last);
    let (low_at, high_at) = (rank(0.005), rank(0.995));
    let (_, low, above) = finite.select_nth_unstable_by(low_at, f64::total_cmp);
    let low = *low;
    let high = if high_at > low_at {
        *above
            .select_nth_unstable_by(high_at - low_at - 1, f64::total_cmp)
            .1
    } else {
        low
    };
    window_spanning(low, high)
}

/// The window whose linear function maps `low` to 0 and `high` to 1: it
/// maps [c − 0.5 − (w−1)/2, c − 0.5 + (w−1)/2] to [0, 1].
fn window_spanning(low: f64, high: f64) -> Window {
    let width = (high - low + 1.0).max(1.0);
    Window {
        centre: low + 0.5 + (width - 1.0) / 2.0,
        width,
    }
}

/// The nearest-rank 0.5th and 99.5th percentiles of integer values, by
/// counting (linear time, no copy); `None` for an empty slice or a range
/// too wide to count.
fn integer_percentiles(values: &[i32]) -> Option<(i32, i32)> {
    let (min, max) = values
        .iter()
        .fold((i32::MAX, i32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = usize::try_from(i64::from(max) - i64::from(min) + 1).ok()?;
    if values.is_empty() || span > 1 << 22 {
        return None;
    }
    let mut counts = vec![0u32; span];
    for &v in values {
        counts[(v - min) as usize] += 1;
    }
    let last = values.len() - 1;
    let rank = |p: f64| ((p * last as f64).round() as usize).min(last);
    let at = |r: usize| {
        let mut seen = 0usize;
        for (i, &c) in counts.iter().enumerate() {
            seen += c as usize;
            if seen > r {
                return min + i as i32;
            }
        }
        max
    };
    Some((at(rank(0.005)), at(rank(0.995))))
}

impl Grey {
    /// Steps 1–3 over stored pixel values.
    pub fn from_stored(
        width: usize,
        height: usize,
        stored: &[f64],
        rescale: (f64, f64),
        window: Option<Window>,
        monochrome1: bool,
    ) -> Result<Grey, PixelError> {
        Ok(
            Modality::from_stored(width, height, stored, rescale, window, monochrome1)?
                .to_grey(None),
        )
    }

    /// Steps 1–3 for the first frame of a DICOM object.
    pub fn from_dicom(obj: &DefaultDicomObject) -> Result<Grey, PixelError> {
        Ok(Modality::from_dicom(obj)?.to_grey(None))
    }

    /// The value at `(x, y)` by bilinear interpolation, clamped at the edges.
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |x: usize, y: usize| self.values[y * self.width + x];
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// Step 4: resized (aspect kept, bilinear, pixel centres aligned) to fit
    /// `size × size`, centred, the rest 0. Also returns where the image lies
    /// in the square, to map heat maps back.
    pub fn fit_square(&self, size: usize) -> (Grey, Placement) {
        let scale = size as f32 / self.width.max(self.height) as f32;
        let w = ((self.width as f32 * scale).round() as usize).clamp(1, size);
        let h = ((self.height as f32 * scale).round() as usize).clamp(1, size);
        let (left, top) = ((size - w) / 2, (size - h) / 2);
        let mut values = vec![0.0; size * size];
        let sx = self.width as f32 / w as f32;
        let sy = self.height as f32 / h as f32;
        for y in 0..h {
            let src_y = (y as f32 + 0.5) * sy - 0.5;
            for x in 0..w {
                let src_x = (x as f32 + 0.5) * sx - 0.5;
                values[(top + y) * size + left + x] = self.sample(src_x, src_y);
            }
        }
        (
            Grey {
                width: size,
                height: size,
                values,
            },
            Placement {
                left,
                top,
                width: w,
                height: h,
            },
        )
    }

    /// An 8-bit grayscale image of this one.
    pub fn to_luma8(&self) -> image::GrayImage {
        image::GrayImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let v = self.values[y as usize * self.width + x as usize];
            image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
        })
    }
}

/// Where a resized image lies inside the padded square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
}

/// Step 5: display intensities in `[0, 1]` to `[0, 2]` (black stays 0).
pub fn normalise(values: &[f32]) -> Vec<f32> {
    values.iter().map(|v| v / 0.5).collect()
}

/// An image after step 1 (modality units), with what steps 2 and 3 need:
/// the file's own window and whether it is MONOCHROME1. The viewer renders
/// from here with a window of the reader's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Modality {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f64>,
    /// The file's first window, if it has one.
    pub file_window: Option<Window>,
    pub monochrome1: bool,
}

/// The first frame's stored values (no modality LUT) and what steps 1–3
/// need from the file.
struct Frame<T> {
    width: usize,
    height: usize,
    /// Exactly `width × height` values.
    values: Vec<T>,
    /// Slope and intercept (identity when absent).
    rescale: (f64, f64),
    window: Option<Window>,
    monochrome1: bool,
}

impl<T> Frame<T>
where
    T: num_traits::NumCast + Send + Sync + Copy + 'static,
{
    fn decode(obj: &DefaultDicomObject) -> Result<Frame<T>, PixelError> {
        let ts = obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned();
        let fail = |e: &dyn std::fmt::Display| PixelError::Decode {
            ts: ts.clone(),
            reason: e.to_string(),
        };
        let decoded = obj.decode_pixel_data().map_err(|e| fail(&e))?;
        let monochrome1 = match decoded.photometric_interpretation().as_str() {
            "MONOCHROME1" => true,
            "MONOCHROME2" => false,
            other => return Err(PixelError::NotGrayscale(other.to_owned())),
        };
        let mut values: Vec<T> = decoded
            .to_vec_frame_with_options(
                0,
                &ConvertOptions::new().with_modality_lut(ModalityLutOption::None),
            )
            .map_err(|e| fail(&e))?;
        let (width, height) = (decoded.columns() as usize, decoded.rows() as usize);
        check_size(width, height, values.len())?;
        values.truncate(width * height);
        let rescale = decoded
            .rescale()
            .ok()
            .and_then(|r| r.first().map(|r| (r.slope, r.intercept)))
            .unwrap_or((1.0, 0.0));
        let window = decoded.window().ok().flatten().and_then(|w| {
            w.first().map(|w| Window {
                centre: w.center,
                width: w.width,
            })
        });
        Ok(Frame {
            width,
            height,
            values,
            rescale,
            window,
            monochrome1,
        })
    }
}

/// A `width × height` image needs that many values (`found` may be more).
fn check_size(width: usize, height: usize, found: usize) -> Result<(), PixelError> {
    if width == 0 || height == 0 {
        return Err(PixelError::Empty);
    }
    if found < width * height {
        return Err(PixelError::Short {
            expected: width * height,
            found,
        });
    }
    Ok(())
}

impl Modality {
    /// Step 1 over stored pixel values.
    pub fn from_stored(
        width: usize,
        height: usize,
        stored: &[f64],
        rescale: (f64, f64),
        file_window: Option<Window>,
        monochrome1: bool,
    ) -> Result<Modality, PixelError> {
        check_size(width, height, stored.len())?;
        let values = stored[..width * height]
            .iter()
            .map(|&s| modality_lut(s, rescale.0, rescale.1))
            .collect();
        Ok(Modality {
            width,
            height,
            values,
            file_window,
            monochrome1,
        })
    }

    /// The image averaged over `factor` × `factor` blocks (the last row and
    /// column of blocks may be smaller): a quick, alias-free reduction
    /// before windowing a preview much smaller than the image.
    pub fn downscaled(&self, factor: usize) -> Modality {
        let f = factor.max(1);
        if f == 1 {
            return self.clone();
        }
        let (w, h) = (self.width.div_ceil(f), self.height.div_ceil(f));
        let mut sums = vec![0.0f64; w * h];
        let mut counts = vec![0u32; w * h];
        for y in 0..self.height {
            let row = &self.values[y * self.width..(y + 1) * self.width];
            let out = (y / f) * w;
            for (x, v) in row.iter().enumerate() {
                sums[out + x / f] += v;
                counts[out + x / f] += 1;
            }
        }
        Modality {
            width: w,
            height: h,
            values: sums
                .iter()
                .zip(&counts)
                .map(|(s, &n)| s / f64::from(n.max(1)))
                .collect(),
            file_window: self.file_window,
            monochrome1: self.monochrome1,
        }
    }

    /// Step 1 for the first frame of a DICOM object.
    pub fn from_dicom(obj: &DefaultDicomObject) -> Result<Modality, PixelError> {
        let frame = Frame::<f64>::decode(obj)?;
        let (slope, intercept) = frame.rescale;
        let mut values = frame.values;
        // Step 1 in place: the frame is large.
        if frame.rescale != (1.0, 0.0) {
            for v in &mut values {
                *v = modality_lut(*v, slope, intercept);
            }
        }
        Ok(Modality {
            width: frame.width,
            height: frame.height,
            values,
            file_window: frame.window,
            monochrome1: frame.monochrome1,
        })
    }

    /// A preview `factor` times smaller than the first frame (see
    /// [`Modality::downscaled`]) and the full image's default window, made
    /// without the full image in 64-bit values: the stored integers are
    /// counted for the percentiles and averaged per block, and the modality
    /// LUT (linear) applied to the averages. The same result as
    /// `from_dicom(obj)?.downscaled(factor)` with `default_window()` of the
    /// full image, at a fraction of the memory traffic.
    pub fn preview_from_dicom(
        obj: &DefaultDicomObject,
        factor: usize,
    ) -> Result<(Modality, Window), PixelError> {
        let frame = Frame::<i32>::decode(obj)?;
        let (width, height, monochrome1) = (frame.width, frame.height, frame.monochrome1);
        let (slope, intercept) = frame.rescale;
        let file_window = frame.window;
        let stored = &frame.values[..];
        let lut = |v: f64| modality_lut(v, slope, intercept);
        let default = match file_window {
            Some(w) => w,
            None => match integer_percentiles(stored) {
                // A linear LUT keeps the order (a negative slope reverses it).
                Some((low, high)) => {
                    let (a, b) = (lut(f64::from(low)), lut(f64::from(high)));
                    window_spanning(a.min(b), a.max(b))
                }
                None => percentile_window(
                    &stored
                        .iter()
                        .map(|&v| lut(f64::from(v)))
                        .collect::<Vec<_>>(),
                ),
            },
        };
        let f = factor.max(1);
        let (w, h) = (width.div_ceil(f), height.div_ceil(f));
        let mut sums = vec![0i64; w * h];
        let mut counts = vec![0u32; w * h];
        for y in 0..height {
            let row = &stored[y * width..(y + 1) * width];
            let out = (y / f) * w;
            for (x, &v) in row.iter().enumerate() {
                sums[out + x / f] += i64::from(v);
                counts[out + x / f] += 1;
            }
        }
        let values = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &n)| lut(s as f64 / f64::from(n.max(1))))
            .collect();
        Ok((
            Modality {
                width: w,
                height: h,
                values,
                file_window,
                monochrome1,
            },
            default,
        ))
    }

    /// The window step 2 uses when none is asked for: the file's, or the
    /// 0.5th–99.5th percentile range.
    pub fn default_window(&self) -> Window {
        self.file_window
            .unwrap_or_else(|| percentile_window(&self.values))
    }

    /// The smallest and largest value (modality units).
    pub fn range(&self) -> (f64, f64) {
        self.values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// Steps 2 and 3 with `window`, or the default window.
    pub fn to_grey(&self, window: Option<Window>) -> Grey {
        let window = window.unwrap_or_else(|| self.default_window());
        let values = self
            .values
            .iter()
            .map(|&x| {
                let v = window_linear(x, window) as f32;
                if self.monochrome1 {
                    1.0 - v
                } else {
                    v
                }
            })
            .collect();
        Grey {
            width: self.width,
            height: self.height,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_the_standard_formula() {
        // c = 2048, w = 4096: low edge 2048 − 0.5 − 2047.5 = 0, high 4095.
        let w = Window {
            centre: 2048.0,
            width: 4096.0,
        };
        assert_eq!(window_linear(0.0, w), 0.0);
        assert_eq!(window_linear(4096.0, w), 1.0);
        // x = 1024: (1024 − 2047.5)/4095 + 0.5 = 0.250061...
        assert!((window_linear(1024.0, w) - 0.250_061_050_061).abs() < 1e-9);
        // A width below 1 is a step at c − 0.5.
        let step = Window {
            centre: 10.0,
            width: 0.0,
        };
        assert_eq!(window_linear(9.5, step), 0.0);
        assert_eq!(window_linear(9.6, step), 1.0);
    }

    #[test]
    fn rescale_window_and_inversion_by_hand() {
        // stored 0, 100, 200, 300 with slope 2, intercept −100 → −100, 100, 300, 500;
        // window c = 200.5, w = 401 → low 0, high 400.
        let stored = [0.0, 100.0, 200.0, 300.0];
        let win = Some(Window {
            centre: 200.5,
            width: 401.0,
        });
        let g = Grey::from_stored(2, 2, &stored, (2.0, -100.0), win, false).expect("pixels");
        assert_eq!(g.values, vec![0.0, 0.25, 0.75, 1.0]);
        let g1 = Grey::from_stored(2, 2, &stored, (2.0, -100.0), win, true).expect("pixels");
        assert_eq!(g1.values, vec![1.0, 0.75, 0.25, 0.0]);
    }

    #[test]
    fn percentile_window_spans_the_values() {
        let values: Vec<f64> = (0..=1000).map(f64::from).collect();
        let w = percentile_window(&values);
        // ranks 5 and 995 → low 5, high 995.
        assert!((window_linear(5.0, w) - 0.0).abs() < 1e-9);
        assert!((window_linear(995.0, w) - 1.0).abs() < 1e-9);
        assert!((window_linear(500.0, w) - 0.5).abs() < 1e-3);
    }

    #[test]
    fn counted_percentiles_are_the_sorted_ones() {
        let values: Vec<i32> = (0..=1000).rev().map(|v| v * 3 - 7).collect();
        let (low, high) = integer_percentiles(&values).expect("countable");
        let as_f64: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        let w = percentile_window(&as_f64);
        assert_eq!(window_spanning(f64::from(low), f64::from(high)), w);
        assert_eq!(
            integer_percentiles(&[i32::MIN, i32::MAX]),
            None,
            "too wide to count"
        );
    }

    #[test]
    fn downscaling_averages_blocks() {
        let m = Modality::from_stored(
            3,
            2,
            &[1.0, 3.0, 10.0, 5.0, 7.0, 20.0],
            (1.0, 0.0),
            None,
            false,
        )
        .expect("pixels");
        let d = m.downscaled(2);
        assert_eq!((d.width, d.height), (2, 1));
        assert_eq!(
            d.values,
            vec![4.0, 15.0],
            "a 2 × 2 block and the 1 × 2 rest"
        );
        assert_eq!(m.downscaled(1), m);
    }

    #[test]
    fn fit_square_keeps_aspect_and_pads() {
        // A 4 × 2 image of constant 1 into 8 × 8: 8 × 4 placed at rows 2..6.
        let g = Grey {
            width: 4,
            height: 2,
            values: vec![1.0; 8],
        };
        let (sq, p) = g.fit_square(8);
        assert_eq!(
            p,
            Placement {
                left: 0,
                top: 2,
                width: 8,
                height: 4
            }
        );
        for y in 0..8 {
            for x in 0..8 {
                let expect = if (2..6).contains(&y) { 1.0 } else { 0.0 };
                assert_eq!(sq.values[y * 8 + x], expect, "at {x},{y}");
            }
        }
        // Bilinear: a 2 × 1 ramp 0, 1 resized to 4 × 2 samples at −0.25, 0.25, 0.75, 1.25.
        let ramp = Grey {
            width: 2,
            height: 1,
            values: vec![0.0, 1.0],
        };
        let (sq, _) = ramp.fit_square(4);
        assert_eq!(&sq.values[4..8], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(normalise(&[0.0, 0.5, 1.0]), vec![0.0, 1.0, 2.0]);
    }
}
