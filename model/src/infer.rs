//! Inference for one case, with a Grad-CAM heat map per view, and the
//! evaluation of a model on a manifest.
//!
//! Grad-CAM (Selvaraju et al., ICCV 2017) on the last convolutional block:
//! with feature maps `A_k` of a view and the case's logit `y`, the weights
//! are `α_k = mean_ij ∂y/∂A_k(i, j)` and the map is `ReLU(Σ_k α_k A_k)`,
//! upsampled (bilinear) back onto the original image and scaled to `[0, 1]`.
//! The gradient is taken by burn's autodiff with the network frozen
//! (batch-norm statistics and dropout in inference mode), so the heat map
//! explains exactly the forward pass that gave the probability.

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::Device;
use serde::Serialize;

use crate::card::{self, ModelDir};
use crate::clinical::Clinical;
use crate::data::{self, Sample};
use crate::host;
use crate::manifest::ManifestRow;
use crate::net::Net;
use crate::pixels::{Grey, Placement};
use crate::train::{self, sigmoid};

/// A loaded, checked model ready to predict.
pub struct Predictor {
    pub dir: ModelDir,
    device: Device,
    /// The network on the autodiff device, frozen (for Grad-CAM).
    frozen: Net,
    /// The network in validation mode on the plain device.
    plain: Net,
}

/// A heat map over one view, in that view's own pixel grid.
#[derive(Debug, Clone)]
pub struct HeatMap {
    pub width: usize,
    pub height: usize,
    /// Row-major, `[0, 1]`.
    pub values: Vec<f32>,
    /// The pixel of the highest value.
    pub peak: (usize, usize),
}

/// What the model says about one case.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub logit: f64,
    /// Calibrated: σ(logit / T).
    pub probability: f64,
    pub threshold: f64,
    /// Probability ≥ threshold.
    pub malignant: bool,
    /// Attention weight of each view.
    pub attention: Vec<f32>,
    /// One per view, when asked for.
    pub heatmaps: Vec<HeatMap>,
}

impl Predictor {
    /// Opens and checks the model directory (see [`ModelDir::open`]) and
    /// loads its weights on `device`.
    pub fn open(path: &Path, device: &Device) -> Result<Predictor, String> {
        let dir = ModelDir::open(path)?;
        let ad = device.clone().autodiff();
        let load = |on: &Device| {
            dir.config.init(on).and_then(|n| {
                n.try_load_file(path.join(card::WEIGHTS))
                    .map_err(|e| format!("{}: {e:?}", path.display()))
            })
        };
        let frozen = load(&ad)?.freeze();
        let plain = load(device)?.valid();
        Ok(Predictor {
            dir,
            device: device.clone(),
            frozen,
            plain,
        })
    }

    pub fn image_size(&self) -> usize {
        self.dir.config.image_size
    }

    /// Predicts one case from its views (display intensities, as
    /// [`Grey::from_dicom`] gives them) and clinical data.
    pub fn predict(
        &self,
        views: &[Grey],
        clinical: &Clinical,
        heatmaps: bool,
    ) -> Result<Prediction, String> {
        let max = self.dir.config.max_views;
        if views.is_empty() || views.len() > max {
            return Err(format!(
                "a case needs 1 to {max} views, not {}",
                views.len()
            ));
        }
        let size = self.image_size();
        let map = self.dir.config.map_size();
        let sample = Sample::from_views(views, clinical, size);
        let (logit, attention, heatmaps) = if heatmaps {
            let ad = self.device.clone().autodiff();
            let b = data::batch(&[&sample], size, map, &ad, None);
            let maps = self.frozen.encode(b.images).detach();
            let leaf = maps.clone().require_grad();
            let out = self
                .frozen
                .head(leaf.clone(), b.positions, b.mask, b.clinical);
            let logit = host(out.logits.clone())?[0];
            let grads = out.logits.sum().backward();
            let g = leaf
                .grad(&grads)
                .ok_or("no gradient reached the feature maps")?;
            let [_, _, h, w] = g.dims();
            // Element-wise weighting (HiResCAM): each position's activations
            // by their own gradient, summed over channels.
            let cam = host(relu((maps.inner() * g.inner()).sum_dim(1)))?;
            let heatmaps = views
                .iter()
                .zip(&sample.placements)
                .zip(cam.chunks(h * w))
                .map(|((view, placement), cam)| {
                    upsample(cam, w, h, size, *placement, view.width, view.height)
                })
                .collect();
            (logit, host(out.attention)?, heatmaps)
        } else {
            let b = data::batch(&[&sample], size, map, &self.device, None);
            let out = self
                .plain
                .forward(b.images, b.positions, b.mask, b.clinical);
            (host(out.logits)?[0], host(out.attention)?, Vec::new())
        };
        let card = &self.dir.card;
        let logit = f64::from(logit);
        let probability = sigmoid(logit / card.temperature);
        Ok(Prediction {
            logit,
            probability,
            threshold: card.threshold,
            malignant: probability >= card.threshold,
            attention,
            heatmaps,
        })
    }
}

/// The map `(mw × mh, over the size × size square)` resampled onto the
/// original `width × height` image, scaled to `[0, 1]`.
fn upsample(
    map: &[f32],
    mw: usize,
    mh: usize,
    size: usize,
    p: Placement,
    width: usize,
    height: usize,
) -> HeatMap {
    let grid = Grey {
        width: mw,
        height: mh,
        values: map.to_vec(),
    };
    let mut values = Vec::with_capacity(width * height);
    for y in 0..height {
        let sy = p.top as f32 + (y as f32 + 0.5) * p.height as f32 / height as f32;
        let my = sy * mh as f32 / size as f32 - 0.5;
        for x in 0..width {
            let sx = p.left as f32 + (x as f32 + 0.5) * p.width as f32 / width as f32;
            let mx = sx * mw as f32 / size as f32 - 0.5;
            values.push(grid.sample(mx, my).max(0.0));
        }
    }
    let (mut peak, mut top) = (0usize, f32::MIN);
    for (i, &v) in values.iter().enumerate() {
        if v > top {
            top = v;
            peak = i;
        }
    }
    if top > 0.0 {
        for v in &mut values {
            *v /= top;
        }
    }
    HeatMap {
        width,
        height,
        values,
        peak: (peak % width, peak / width),
    }
}

/// The "jet" colour of `t` in `[0, 1]` (blue → cyan → yellow → red).
fn jet(t: f32) -> [f32; 3] {
    let c = |x: f32| x.clamp(0.0, 1.0);
    [
        c(1.5 - (4.0 * t - 3.0).abs()),
        c(1.5 - (4.0 * t - 2.0).abs()),
        c(1.5 - (4.0 * t - 1.0).abs()),
    ]
}

/// The view with its heat map as a colour overlay, PNG, fitted into
/// `max_side` (never enlarged). Low values (< 0.2) stay uncoloured.
pub fn overlay_png(view: &Grey, heat: &HeatMap, max_side: u32) -> Result<Vec<u8>, String> {
    if (view.width, view.height) != (heat.width, heat.height) {
        return Err("the heat map does not match the view".into());
    }
    let img = image::RgbImage::from_fn(view.width as u32, view.height as u32, |x, y| {
        let i = y as usize * view.width + x as usize;
        let g = view.values[i].clamp(0.0, 1.0);
        let h = heat.values[i];
        let a = if h < 0.2 { 0.0 } else { 0.25 + 0.3 * h };
        let col = jet(h);
        image::Rgb(std::array::from_fn(|k| {
            (((1.0 - a) * g + a * col[k]) * 255.0).round() as u8
        }))
    });
    let mut img = image::DynamicImage::ImageRgb8(img);
    if img.width().max(img.height()) > max_side {
        img = img.resize(max_side, max_side, image::imageops::FilterType::Triangle);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// What `model evaluate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub n: usize,
    pub n_malignant: usize,
    pub auc: Option<f64>,
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub model_id: String,
}

/// Evaluates `predictor` on the cases of a manifest at the card's threshold.
pub fn evaluate(
    predictor: &Predictor,
    rows: &[ManifestRow],
    images: &Path,
) -> Result<Evaluation, String> {
    let samples = data::load(rows, images, predictor.image_size())?;
    let refs: Vec<&Sample> = samples.iter().collect();
    let logits = train::logits(
        &predictor.plain,
        &predictor.dir.config,
        &refs,
        &predictor.device,
        16,
    )?;
    let labels: Vec<f32> = samples.iter().map(|s| s.label).collect();
    let card = &predictor.dir.card;
    let probs: Vec<f64> = logits
        .iter()
        .map(|&z| sigmoid(f64::from(z) / card.temperature))
        .collect();
    let (mut tp, mut tn, mut pos, mut neg) = (0, 0, 0, 0);
    for (&p, &l) in probs.iter().zip(&labels) {
        if l > 0.5 {
            pos += 1;
            tp += usize::from(p >= card.threshold);
        } else {
            neg += 1;
            tn += usize::from(p < card.threshold);
        }
    }
    let rate = |a: usize, n: usize| (n > 0).then(|| a as f64 / n as f64);
    Ok(Evaluation {
        n: samples.len(),
        n_malignant: pos,
        auc: data::auc(&logits, &labels),
        threshold: card.threshold,
        sensitivity: rate(tp, pos),
        specificity: rate(tn, neg),
        model_id: card.model_id.clone(),
    })
}
