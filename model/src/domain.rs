//! The model's training domain, and whether a case falls outside it.
//!
//! A network answers for any input, and with confidence: the demo model,
//! trained on phantoms, gave a real benign lesion on a 1,760² CR a
//! malignancy probability of 0.98. So the card records what the training
//! views were like ([`TrainingDomain`], measured by [`measure`] on the
//! training set once the best weights are chosen), and each prediction is
//! checked against it ([`TrainingDomain::check`]). A view is outside the
//! training domain when any of these holds:
//!
//! - **size**: its width or height is more than 1.5 times beyond the
//!   training views' range, or its shape (height / width) more than 0.15
//!   beyond theirs;
//! - **pixel spacing**: declared, and more than 1.25 times beyond the
//!   training views' range (a view without one is not judged on it);
//! - **intensities**: the histogram of its display intensities, in the
//!   network's input square, is further (earth mover's distance, in units
//!   of intensity) from the training views' mean histogram than
//!   [`LIMIT_FACTOR`] times the 99th percentile of the training views' own
//!   distances. Not the L1 distance between the bins: a radiograph's
//!   histogram has sharp peaks (air, soft tissue, the collimated band), and
//!   a slight change of exposure moves a peak into the next bin, which L1
//!   counts as a whole different image;
//! - **embedding**: the network's view embedding (the last convolutional
//!   block, averaged over the image) is further (root mean square of its
//!   channels' z-scores) from the training views' than [`LIMIT_FACTOR`]
//!   times the 99th percentile of the training views' own distances.
//!
//! A case is outside when one of its views is. The flag is a warning for
//! the people who read the result and a subgroup of the locked analysis;
//! it never changes or withholds the prediction (the protocol's index test
//! is the model's output on every enrolled case).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{self, Sample};
use crate::error::ModelError;
use crate::host;
use crate::net::{Net, NetConfig};

/// Bins of the intensity histogram over `[0, 1]`.
pub const HISTOGRAM_BINS: usize = 16;
/// How far beyond the training views' 99th percentile a distance may go.
pub const LIMIT_FACTOR: f64 = 1.5;
/// How far beyond the training range a size or spacing may go (a factor).
pub const SIZE_FACTOR: f64 = 1.5;
/// How far beyond the training range a pixel spacing may go (a factor):
/// detectors differ by less than sizes do (0.1 to 0.2 mm for CR and DR).
pub const SPACING_FACTOR: f64 = 1.25;
/// How far beyond the training range a view's shape may go.
pub const ASPECT_MARGIN: f64 = 0.15;

/// One view's size and declared pixel spacing, as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewSize {
    pub width: usize,
    pub height: usize,
    /// Pixel Spacing (or Imager Pixel Spacing) in millimetres, the larger
    /// of row and column; `None` when the file declares none.
    pub spacing_mm: Option<f64>,
}

/// What the training views were like (in the model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingDomain {
    /// Training views measured.
    pub views: usize,
    /// Smallest and largest width, height (pixels) and shape (height / width).
    pub width: [usize; 2],
    pub height: [usize; 2],
    pub aspect: [f64; 2],
    /// Smallest and largest declared pixel spacing (mm); `None` when no
    /// training view declared one.
    pub spacing_mm: Option<[f64; 2]>,
    /// The training views' mean intensity histogram ([`HISTOGRAM_BINS`]
    /// bins over `[0, 1]`, each view's summing to 1).
    pub histogram: Vec<f64>,
    /// The distance beyond which a view's histogram is outside.
    pub histogram_limit: f64,
    /// Mean and standard deviation of each embedding channel.
    pub embedding_mean: Vec<f64>,
    pub embedding_sd: Vec<f64>,
    /// The distance beyond which a view's embedding is outside.
    pub embedding_limit: f64,
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainCheck {
    /// `true` when some view is outside the training domain.
    pub outside: bool,
    /// Why, one line per finding (`view 1: intensities …`); empty inside.
    pub reasons: Vec<String>,
}

/// The intensity histogram of a view's image part in its network square
/// (`values` normalised by [`crate::pixels::normalise`]).
fn histogram(sample: &Sample, view: usize, size: usize) -> Vec<f64> {
    let p = sample.placements[view];
    let values = &sample.views[view];
    let mut bins = [0.0; HISTOGRAM_BINS];
    let mut n = 0.0;
    for y in p.top..p.top + p.height {
        for &v in &values[y * size + p.left..y * size + p.left + p.width] {
            // Back from the network's [0, 2] to display intensities.
            let i = ((v * 0.5).clamp(0.0, 1.0) * HISTOGRAM_BINS as f32) as usize;
            bins[i.min(HISTOGRAM_BINS - 1)] += 1.0;
            n += 1.0;
        }
    }
    bins.iter().map(|b| b / f64::max(n, 1.0)).collect()
}

/// The earth mover's (Wasserstein-1) distance between two histograms over
/// `[0, 1]`: the area between their cumulative distributions.
fn emd(a: &[f64], b: &[f64]) -> f64 {
    let (mut ca, mut cb, mut d) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ca += x;
        cb += y;
        d += (ca - cb).abs();
    }
    d / a.len().max(1) as f64
}

/// Each view's embedding: the last block's maps averaged over space, for
/// the views of `samples` in order.
fn embeddings(
    net: &Net,
    config: &NetConfig,
    samples: &[&Sample],
    device: &Device,
) -> Result<Vec<Vec<f64>>, ModelError> {
    let mut out = Vec::new();
    for chunk in samples.chunks(16) {
        let b = data::batch(chunk, config, device, None);
        let maps = net.encode(b.images);
        let [n, c, _, _] = maps.dims();
        let pooled = host(maps.mean_dim(3).mean_dim(2).reshape([n, c]))?;
        // The batch pads cases to the most views; keep the real ones.
        let v = n / chunk.len();
        for (i, s) in chunk.iter().enumerate() {
            for view in 0..s.views.len() {
                let row = &pooled[(i * v + view) * c..(i * v + view + 1) * c];
                out.push(row.iter().map(|&x| f64::from(x)).collect());
            }
        }
    }
    Ok(out)
}

/// The floor of a channel's standard deviation, so that a channel that
/// never varied in training (a dead unit) does not turn every small
/// difference into a huge z-score.
fn sd_floor(sd: &[f64]) -> f64 {
    0.05 * sd.iter().sum::<f64>() / sd.len().max(1) as f64 + 1e-6
}

fn z_distance(e: &[f64], mean: &[f64], sd: &[f64], floor: f64) -> f64 {
    let n = e.len().max(1) as f64;
    (e.iter()
        .zip(mean)
        .zip(sd)
        .map(|((x, m), s)| ((x - m) / s.max(floor)).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// The smallest and largest of `values` (`[MAX, MIN]` when there are none).
fn min_max(values: impl Iterator<Item = f64>) -> [f64; 2] {
    values.fold([f64::MAX, f64::MIN], |[lo, hi], x| [lo.min(x), hi.max(x)])
}

/// Whether `x` lies more than `factor` times beyond `[lo, hi]`.
fn beyond(x: f64, [lo, hi]: [f64; 2], factor: f64) -> bool {
    x < lo / factor || x > hi * factor
}

/// The 99th percentile (nearest rank).
fn p99(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Measures the training domain of `net` (in validation mode) on the
/// training samples, each with its views' sizes.
pub fn measure(
    net: &Net,
    config: &NetConfig,
    samples: &[&Sample],
    device: &Device,
) -> Result<TrainingDomain, ModelError> {
    let size = config.image_size;
    let sizes: Vec<ViewSize> = samples.iter().flat_map(|s| s.sizes.clone()).collect();
    if sizes.is_empty() {
        return Err(ModelError::Training("no training views to measure".into()));
    }
    let hists: Vec<Vec<f64>> = samples
        .iter()
        .flat_map(|s| (0..s.views.len()).map(|v| histogram(s, v, size)))
        .collect();
    let n = hists.len() as f64;
    let mean_hist: Vec<f64> = (0..HISTOGRAM_BINS)
        .map(|b| hists.iter().map(|h| h[b]).sum::<f64>() / n)
        .collect();
    let mut hist_d: Vec<f64> = hists.iter().map(|h| emd(h, &mean_hist)).collect();
    let embs = embeddings(net, config, samples, device)?;
    let channels = embs.first().map_or(0, Vec::len);
    let mean: Vec<f64> = (0..channels)
        .map(|c| embs.iter().map(|e| e[c]).sum::<f64>() / embs.len() as f64)
        .collect();
    let sd: Vec<f64> = (0..channels)
        .map(|c| {
            (embs.iter().map(|e| (e[c] - mean[c]).powi(2)).sum::<f64>() / embs.len() as f64).sqrt()
        })
        .collect();
    let floor = sd_floor(&sd);
    let mut emb_d: Vec<f64> = embs
        .iter()
        .map(|e| z_distance(e, &mean, &sd, floor))
        .collect();
    let [w_lo, w_hi] = min_max(sizes.iter().map(|s| s.width as f64));
    let [h_lo, h_hi] = min_max(sizes.iter().map(|s| s.height as f64));
    let declared = sizes.iter().any(|s| s.spacing_mm.is_some());
    Ok(TrainingDomain {
        views: sizes.len(),
        width: [w_lo as usize, w_hi as usize],
        height: [h_lo as usize, h_hi as usize],
        aspect: min_max(
            sizes
                .iter()
                .map(|s| s.height as f64 / s.width.max(1) as f64),
        ),
        spacing_mm: declared.then(|| min_max(sizes.iter().filter_map(|s| s.spacing_mm))),
        histogram: mean_hist,
        histogram_limit: LIMIT_FACTOR * p99(&mut hist_d),
        embedding_mean: mean,
        embedding_sd: sd,
        embedding_limit: LIMIT_FACTOR * p99(&mut emb_d),
    })
}

impl TrainingDomain {
    /// Checks one case (its sample, with its views' sizes) with `net` (in
    /// validation mode), the network this domain was measured with.
    pub fn check(
        &self,
        net: &Net,
        config: &NetConfig,
        sample: &Sample,
        device: &Device,
    ) -> Result<DomainCheck, ModelError> {
        let mut reasons = Vec::new();
        for (v, s) in sample.sizes.iter().enumerate() {
            let view = v + 1;
            let [w_lo, w_hi] = self.width;
            let [h_lo, h_hi] = self.height;
            if beyond(s.width as f64, [w_lo as f64, w_hi as f64], SIZE_FACTOR)
                || beyond(s.height as f64, [h_lo as f64, h_hi as f64], SIZE_FACTOR)
            {
                reasons.push(format!(
                    "view {view}: {} × {} pixels; the training views were {w_lo}–{w_hi} × {h_lo}–{h_hi}",
                    s.width, s.height
                ));
            } else {
                let aspect = s.height as f64 / s.width.max(1) as f64;
                let [a_lo, a_hi] = self.aspect;
                if aspect < a_lo - ASPECT_MARGIN || aspect > a_hi + ASPECT_MARGIN {
                    reasons.push(format!(
                        "view {view}: shape (height / width) {aspect:.2}; the training views' was {a_lo:.2}–{a_hi:.2}"
                    ));
                }
            }
            if let (Some(mm), Some(range)) = (s.spacing_mm, self.spacing_mm) {
                if beyond(mm, range, SPACING_FACTOR) {
                    reasons.push(format!(
                        "view {view}: pixel spacing {mm:.3} mm; the training views' was {:.3}–{:.3} mm",
                        range[0], range[1]
                    ));
                }
            }
            let d = emd(&histogram(sample, v, config.image_size), &self.histogram);
            if d > self.histogram_limit {
                reasons.push(format!(
                    "view {view}: intensities unlike the training views' (distance {d:.2}, limit {:.2})",
                    self.histogram_limit
                ));
            }
        }
        let floor = sd_floor(&self.embedding_sd);
        for (v, e) in embeddings(net, config, &[sample], device)?
            .iter()
            .enumerate()
        {
            let d = z_distance(e, &self.embedding_mean, &self.embedding_sd, floor);
            if d > self.embedding_limit {
                reasons.push(format!(
                    "view {}: the network's features unlike the training views' (distance {d:.2}, limit {:.2})",
                    v + 1,
                    self.embedding_limit
                ));
            }
        }
        Ok(DomainCheck {
            outside: !reasons.is_empty(),
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_99th_percentile_is_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(p99(&mut v), 198.0);
        assert_eq!(p99(&mut [3.0]), 3.0);
    }

    #[test]
    fn the_earth_movers_distance_is_how_far_intensity_moved() {
        let mut a = vec![0.0; HISTOGRAM_BINS];
        let mut b = vec![0.0; HISTOGRAM_BINS];
        a[2] = 1.0;
        b[3] = 1.0;
        // One bin over: a sixteenth of the intensity range, not "all different".
        assert!((emd(&a, &b) - 1.0 / 16.0).abs() < 1e-12);
        b[3] = 0.0;
        b[14] = 1.0;
        assert!((emd(&a, &b) - 12.0 / 16.0).abs() < 1e-12);
        assert_eq!(emd(&a, &a), 0.0);
    }

    #[test]
    fn a_dead_channel_does_not_explode_the_distance() {
        let sd = [1.0, 0.0, 1.0];
        let floor = sd_floor(&sd);
        let d = z_distance(&[0.0, 0.01, 0.0], &[0.0; 3], &sd, floor);
        assert!(d < 0.2, "{d}");
        assert!(z_distance(&[3.0, 0.0, 3.0], &[0.0; 3], &sd, floor) > 2.0);
    }
}
