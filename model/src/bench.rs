//! Speed of the network on a device, and parity between two devices: what
//! `osteo-edc model bench` and the GPU check (`examples/gpu_check.rs`) run.

use crate::error::ModelError;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::clinical::FEATURES;
use crate::host;
use crate::net::{Net, NetConfig};

/// Milliseconds over the timed runs.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Timing {
    fn of(mut ms: Vec<f64>) -> Timing {
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1);
        Timing {
            mean: ms.iter().sum::<f64>() / n as f64,
            median: ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN),
            min: ms.first().copied().unwrap_or(f64::NAN),
            max: ms.last().copied().unwrap_or(f64::NAN),
            runs: ms.len(),
        }
    }
}

/// A deterministic input batch: `b` cases of `v` views.
pub struct Input {
    pub images: Tensor<4>,
    pub positions: Tensor<3>,
    pub mask: Tensor<2>,
    pub clinical: Tensor<2>,
}

pub fn input(config: &NetConfig, b: usize, v: usize, device: &Device) -> Input {
    let s = config.image_size;
    let m = config.map_size();
    let images: Vec<f32> = (0..b * v * s * s)
        .map(|i| (i % 977) as f32 / 977.0 * 2.0)
        .collect();
    let clinical: Vec<f32> = (0..b * FEATURES).map(|i| (i % 3) as f32 / 2.0).collect();
    Input {
        images: Tensor::from_data(TensorData::new(images, [b * v, 1, s, s]), device),
        positions: Tensor::ones([b * v, 1, m * m], device),
        mask: Tensor::ones([b, v], device),
        clinical: Tensor::from_data(TensorData::new(clinical, [b, FEATURES]), device),
    }
}

/// Inference time of one case (batch 1) with `views` views, after one
/// warm-up run; the result is read back each time, so the clock includes
/// the device's work.
pub fn inference(
    net: &Net,
    config: &NetConfig,
    views: usize,
    runs: usize,
    device: &Device,
) -> Result<Timing, ModelError> {
    let mut ms = Vec::with_capacity(runs);
    for i in 0..=runs {
        let x = input(config, 1, views, device);
        let t = Instant::now();
        let y = net
            .forward(x.images, x.positions, x.mask, x.clinical)
            .logits
            .into_data();
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        y.try_to_vec::<f32>().map_err(ModelError::backend)?;
        if i > 0 {
            ms.push(elapsed);
        }
    }
    Ok(Timing::of(ms))
}

/// Inference time of one case (batch 1) with `views` views *and* their
/// heat maps (one backward pass through the encoder; what the server runs
/// for every case), after one warm-up run.
pub fn inference_with_heatmaps(
    config: &NetConfig,
    views: usize,
    runs: usize,
    device: &Device,
) -> Result<Timing, ModelError> {
    let ad = device.clone().autodiff();
    let frozen = config.init(&ad)?.freeze();
    let size = config.image_size;
    let grey = crate::pixels::Grey {
        width: size,
        height: size,
        values: (0..size * size).map(|i| (i % 977) as f32 / 977.0).collect(),
    };
    let sample =
        crate::data::Sample::from_views(&vec![grey; views], &crate::Clinical::default(), size);
    let mut ms = Vec::with_capacity(runs);
    for i in 0..=runs {
        let t = Instant::now();
        let explained = crate::infer::guided_maps(&frozen, config, &sample, &ad)?;
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        if explained.maps.len() != views {
            return Err(ModelError::Output("a heat map is missing".into()));
        }
        if i > 0 {
            ms.push(elapsed);
        }
    }
    Ok(Timing::of(ms))
}

/// Time of one training step (forward, loss, backward, AdamW) on a batch of
/// `cases` cases of `views` views, after one warm-up step.
pub fn training_step(
    config: &NetConfig,
    cases: usize,
    views: usize,
    steps: usize,
    device: &Device,
) -> Result<Timing, ModelError> {
    let ad = device.clone().autodiff();
    let mut net = config.init(&ad)?;
    let mut optim = AdamWConfig::new().init();
    let labels: Vec<f32> = (0..cases).map(|j| (j % 2) as f32).collect();
    let mut ms = Vec::with_capacity(steps);
    for i in 0..=steps {
        let x = input(config, cases, views, &ad);
        let y = Tensor::<1>::from_data(TensorData::new(labels.clone(), [cases]), &ad);
        let t = Instant::now();
        let z = net
            .forward(x.images, x.positions, x.mask, x.clinical)
            .logits;
        let loss = (log_sigmoid(z.clone()) * y.clone() + log_sigmoid(z.neg()) * (y.neg() + 1.0))
            .neg()
            .mean();
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        device.sync().map_err(ModelError::backend)?;
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        if !value.is_finite() {
            return Err(ModelError::Output("the training loss is not finite".into()));
        }
        if i > 0 {
            ms.push(elapsed);
        }
    }
    Ok(Timing::of(ms))
}

/// The largest absolute difference between the logits of the same weights
/// on two devices, over `cases` deterministic cases.
pub fn parity(
    net_a: &Net,
    dev_a: &Device,
    net_b: &Net,
    dev_b: &Device,
    config: &NetConfig,
    cases: usize,
) -> Result<f64, ModelError> {
    let run = |net: &Net, dev: &Device| -> Result<Vec<f32>, ModelError> {
        let x = input(config, cases, 2, dev);
        host(
            net.forward(x.images, x.positions, x.mask, x.clinical)
                .logits,
        )
    };
    let (a, b) = (run(net_a, dev_a)?, run(net_b, dev_b)?);
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max))
}

/// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The network of `config` with fresh weights, in inference mode.
pub fn fresh(config: &NetConfig, device: &Device) -> Result<Net, ModelError> {
    Ok(config.init(device)?.valid())
}
