//! One hospital's part of a federated round: the global weights in, local
//! training on the hospital's own retrospective arm, the local weights out.
//! Flower's Python ClientApp calls this through `osteo-edc model fl-train`
//! (docs/federated.md); only the weights file and the metric record this
//! module returns ever leave the hospital.
//!
//! **Weights travel as safetensors** (burn-store's safetensors support):
//! one tensor per parameter and batch-norm running statistic, named by its
//! path in the network (`stem.conv.weight`, …), float32, with the network's
//! configuration as JSON under the metadata key [`NET_CONFIG_KEY`]. A file
//! whose configuration, tensor names or shapes do not match the network is
//! refused with the tensors that differ ([`load`]).
//!
//! **FedProx.** With `proximal_mu` μ > 0 the local loss is the class-weighted
//! cross-entropy plus (μ/2)·‖w − w_global‖² over every trainable parameter
//! ([`proximal_term`]), which keeps a hospital's update near the global model
//! when the sites' data differ (Li et al., MLSys 2020). μ = 0 is FedAvg's
//! plain local training. Flower's strategy only sends μ.

use crate::data::{self, Sample};
use crate::error::ModelError;
use crate::net::{Net, NetConfig};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The safetensors metadata key holding the network's configuration (JSON).
pub const NET_CONFIG_KEY: &str = "osteo.net_config";

/// Writes `net` (of shape `config`) as safetensors at `path`.
pub fn save(net: &Net, config: &NetConfig, path: &Path) -> Result<(), ModelError> {
    let json = serde_json::to_string(config).map_err(|e| ModelError::Training(e.to_string()))?;
    let mut store = SafetensorsStore::from_file(path)
        .metadata(NET_CONFIG_KEY, json)
        .overwrite(true);
    net.save_into(&mut store)
        .map_err(|e| ModelError::Training(format!("{}: {e}", path.display())))
}

/// The network configuration a safetensors file carries.
pub fn config_of(path: &Path) -> Result<NetConfig, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::file(path, e))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        ModelError::Training(format!("{}: not a safetensors file: {e}", path.display()))
    })?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(NET_CONFIG_KEY))
        .ok_or_else(|| {
            ModelError::Training(format!(
                "{}: no network configuration under the metadata key {NET_CONFIG_KEY}; \
                 make the first global model with `osteo-edc model fl-init`",
                path.display()
            ))
        })?;
    serde_json::from_str(json).map_err(|e| {
        ModelError::Training(format!(
            "{}: the network configuration does not parse: {e}",
            path.display()
        ))
    })
}

/// Loads a safetensors file into a network of the configuration it carries
/// (checked against `expected` when given). Every tensor of the network must
/// be in the file with its shape, and the file may hold no other.
pub fn load(
    path: &Path,
    expected: Option<&NetConfig>,
    device: &Device,
) -> Result<(Net, NetConfig), ModelError> {
    let config = config_of(path)?;
    if let Some(e) = expected {
        if *e != config {
            return Err(ModelError::Training(format!(
                "{}: the weights are of another network (this site expects {}, the file holds {})",
                path.display(),
                serde_json::to_string(e).unwrap_or_default(),
                serde_json::to_string(&config).unwrap_or_default()
            )));
        }
    }
    let mut net = config.init(device)?;
    let mut store = SafetensorsStore::from_file(path)
        .validate(true)
        .allow_partial(false);
    let result = net.load_from(&mut store).map_err(|e| {
        ModelError::Training(format!(
            "{}: the tensors do not match the network: {e}",
            path.display()
        ))
    })?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        return Err(ModelError::Training(format!(
            "{}: the tensors do not match the network: missing {:?}, unexpected {:?}, refused {:?}",
            path.display(),
            result.missing.iter().map(|m| &m.0).collect::<Vec<_>>(),
            result.unused,
            result
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        )));
    }
    Ok((net, config))
}

/// The first global model: a network of shape `config`, initialised from
/// `seed`, written to `path`.
pub fn init(config: &NetConfig, seed: u64, path: &Path) -> Result<(), ModelError> {
    let device = Device::flex();
    device.seed(seed);
    let net = config.init(&device)?;
    save(&net, config, path)
}

/// The values of every trainable parameter of an autodiff network, by id,
/// off the autodiff graph (plain tensors): each use makes a fresh constant
/// of them, so no step's tape holds them.
struct Snapshot(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Snapshot {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .insert(param.id, param.val().inner().flatten::<1>(0, D - 1));
    }
}

/// Σ‖w − w_global‖² over the parameters that have a global value.
struct SquaredDistance<'a> {
    global: &'a HashMap<ParamId, Tensor<1>>,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredDistance<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.global.get(&param.id) {
            let d = param.val().flatten::<1>(0, D - 1) - Tensor::from_inner(g.clone());
            let s = (d.clone() * d).sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// The global model's parameters, held fixed for the proximal term (taken
/// from a network on the autodiff device).
pub struct GlobalWeights(HashMap<ParamId, Tensor<1>>);

impl GlobalWeights {
    /// The parameters of `net` as they are now.
    pub fn of(net: &Net) -> GlobalWeights {
        let mut s = Snapshot(HashMap::new());
        net.visit(&mut s);
        GlobalWeights(s.0)
    }
}

/// FedProx's proximal term (μ/2)·‖w − w_global‖² of `net` (on the autodiff
/// device, so that its gradient μ·(w − w_global) reaches every parameter).
pub fn proximal_term(net: &Net, global: &GlobalWeights, mu: f64, device: &Device) -> Tensor<1> {
    let mut v = SquaredDistance {
        global: &global.0,
        sum: None,
    };
    net.visit(&mut v);
    v.sum
        .map(|s| s * (mu / 2.0))
        .unwrap_or_else(|| Tensor::<1>::zeros([1], device))
}

/// One round of local training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// AdamW's learning rate (constant within the round; a fresh optimiser
    /// each round, as the global model changes between rounds).
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// FedProx's μ; 0 for FedAvg.
    pub proximal_mu: f64,
    /// Share of the site's patients held out for the local validation AUC.
    pub validation_share: f64,
    /// Seeds the split, the order and the augmentation; the split stays the
    /// same in every round (it depends on the seed and the cases only).
    pub seed: u64,
    /// The round (mixed into the order and augmentation seed).
    pub round: u64,
    pub augment: bool,
}

impl LocalConfig {
    /// Refuses a round that cannot run: no epoch, an empty batch, a
    /// validation share outside [0, 1), a negative or non-finite μ, or a
    /// learning rate that is not positive.
    pub fn check(&self) -> Result<(), ModelError> {
        let ok = self.epochs > 0
            && self.batch_size > 0
            && (0.0..1.0).contains(&self.validation_share)
            && self.proximal_mu.is_finite()
            && self.proximal_mu >= 0.0
            && self.learning_rate.is_finite()
            && self.learning_rate > 0.0;
        if ok {
            Ok(())
        } else {
            Err(ModelError::Training(
                "epochs and batch size must be at least 1, the validation share in [0, 1), \
                 μ at least 0 and the learning rate above 0"
                    .into(),
            ))
        }
    }
}

/// What a hospital sends back with its weights: nothing else leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalMetrics {
    /// Cases trained on (the weight of this site in FedAvg's mean).
    pub num_examples: usize,
    /// Mean loss over the round's last epoch (cross-entropy plus the
    /// proximal term).
    pub local_loss: f64,
    /// AUC of the locally trained weights on the site's held-out patients.
    pub local_validation_auc: f64,
    /// AUC of the global weights received, on the same patients.
    pub global_validation_auc: f64,
    pub num_validation: usize,
}

/// Trains the global weights at `global` on `samples` and writes the local
/// weights to `out`.
pub fn local_train(
    global: &Path,
    samples: &[Sample],
    cfg: &LocalConfig,
    out: &Path,
) -> Result<LocalMetrics, ModelError> {
    cfg.check()?;
    let device = Device::flex();
    device.seed(cfg.seed.wrapping_add(cfg.round));
    let ad = device.clone().autodiff();
    // Loaded on the plain device, then given autodiff: tensors loaded on
    // the autodiff device would share one tape across the round's steps.
    let (net, config) = load(global, None, &device)?;
    let mut net = net.train();
    let size = config.image_size;
    if samples
        .iter()
        .any(|s| s.views.iter().any(|v| v.len() != size * size))
    {
        return Err(ModelError::Training(format!(
            "every view must be preprocessed at the global network's size {size}"
        )));
    }
    let (train_idx, val_idx) = data::grouped_split(samples, cfg.validation_share, cfg.seed);
    if train_idx.is_empty() {
        return Err(ModelError::Training("no case to train on".into()));
    }
    let val: Vec<&Sample> = val_idx.iter().map(|&i| &samples[i]).collect();
    let val_labels: Vec<f32> = val.iter().map(|s| s.label).collect();
    let auc_of = |net: &Net| -> Result<f64, ModelError> {
        if val.is_empty() {
            return Ok(f64::NAN);
        }
        let logits = crate::train::logits(&net.valid(), &config, &val, &device, cfg.batch_size)?;
        Ok(data::auc(&logits, &val_labels).unwrap_or(f64::NAN))
    };
    let global_auc = auc_of(&net)?;
    let fixed = GlobalWeights::of(&net);
    let class_weights = crate::train::ClassWeights::count(samples, &train_idx);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let mut last_loss = 0.0;
    for epoch in 0..cfg.epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(cfg.round.wrapping_mul(1000))
                .wrapping_add(epoch as u64),
        );
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        let (mut sum, mut steps) = (0.0, 0);
        for chunk in order.chunks(cfg.batch_size) {
            let batch: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
            let b = data::batch(&batch, &config, &ad, cfg.augment.then_some(&mut rng));
            let w = class_weights.tensor(&batch, &ad);
            let logits = net
                .forward(b.images, b.positions, b.mask, b.clinical)
                .logits;
            let mut loss = crate::train::weighted_bce(logits, b.labels, w);
            if cfg.proximal_mu > 0.0 {
                loss = loss + proximal_term(&net, &fixed, cfg.proximal_mu, &ad);
            }
            sum += f64::from(loss.clone().into_scalar::<f32>());
            steps += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(cfg.learning_rate, net, grads);
        }
        last_loss = sum / steps.max(1) as f64;
    }
    let local_auc = auc_of(&net)?;
    save(&net.valid(), &config, out)?;
    Ok(LocalMetrics {
        num_examples: train_idx.len(),
        local_loss: last_loss,
        local_validation_auc: local_auc,
        global_validation_auc: global_auc,
        num_validation: val_idx.len(),
    })
}

/// The global model judged on a site's held-out patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Held-out cases judged (the weight of this site in the mean AUC).
    pub num_examples: usize,
    /// Class-weighted cross-entropy of the weights on those cases.
    pub loss: f64,
    /// AUC on those cases (`NaN` when they hold one class only).
    pub auc: f64,
    /// Each judged case's id, label (1 malignant) and logit, in the order
    /// judged: for comparing models on the same patients (DeLong, `stats
    /// compare`). Kept on the machine that judged them: never serialised,
    /// so never part of a site's metric record.
    #[serde(skip)]
    pub scores: Vec<(String, f32, f32)>,
}

/// Judges the weights at `weights` on the site's validation patients (the
/// split [`local_train`] holds out with the same share and seed), or on all
/// its cases with `validation_share` 1.
pub fn evaluate(
    weights: &Path,
    samples: &[Sample],
    validation_share: f64,
    seed: u64,
    batch_size: usize,
) -> Result<Evaluation, ModelError> {
    let device = Device::flex();
    let (net, config) = load(weights, None, &device)?;
    let idx: Vec<usize> = if validation_share >= 1.0 {
        (0..samples.len()).collect()
    } else {
        data::grouped_split(samples, validation_share, seed).1
    };
    if idx.is_empty() {
        return Err(ModelError::Training("no case to evaluate on".into()));
    }
    let cases: Vec<&Sample> = idx.iter().map(|&i| &samples[i]).collect();
    let labels: Vec<f32> = cases.iter().map(|s| s.label).collect();
    let logits = crate::train::logits(&net, &config, &cases, &device, batch_size.max(1))?;
    let n_pos = labels.iter().filter(|&&l| l > 0.5).count().max(1) as f64;
    let n_neg = labels.iter().filter(|&&l| l <= 0.5).count().max(1) as f64;
    let n = labels.len() as f64;
    let loss = logits
        .iter()
        .zip(&labels)
        .map(|(&z, &y)| {
            let z = f64::from(z);
            // log σ(z) = −softplus(−z), log σ(−z) = −softplus(z).
            let ls_pos = -softplus(-z);
            let ls_neg = -softplus(z);
            if y > 0.5 {
                -ls_pos * n / (2.0 * n_pos)
            } else {
                -ls_neg * n / (2.0 * n_neg)
            }
        })
        .sum::<f64>()
        / n;
    Ok(Evaluation {
        num_examples: cases.len(),
        loss,
        auc: data::auc(&logits, &labels).unwrap_or(f64::NAN),
        scores: cases
            .iter()
            .zip(&logits)
            .map(|(s, &z)| (s.case_id.clone(), s.label, z))
            .collect(),
    })
}

/// How a federation ran, for the card of its global model (from the
/// coordinator's `metrics.json`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FederationSummary {
    /// `fedavg` or `fedprox`.
    pub strategy: String,
    pub rounds: usize,
    /// Cases the sites trained on in the last round, all sites together.
    pub cases_trained: usize,
    pub sites: usize,
}

impl FederationSummary {
    /// Reads the coordinator's `metrics.json`.
    pub fn read(path: &Path) -> Result<FederationSummary, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::file(path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::file(path, e))?;
        let rounds = v["rounds"].as_u64().unwrap_or(0) as usize;
        let last = &v["history"][rounds.to_string()]["train"];
        Ok(FederationSummary {
            strategy: v["strategy"].as_str().unwrap_or("unknown").to_owned(),
            rounds,
            cases_trained: last["cases"].as_f64().unwrap_or(0.0) as usize,
            sites: last["sites"].as_f64().unwrap_or(0.0) as usize,
        })
    }
}

/// Makes a model directory of a federation's global weights, like any
/// trained model's (weights, config, card): calibrated (temperature and
/// threshold) on the held-out patients of this site's cases — the split
/// [`local_train`] holds out with the same share and seed, or every case with
/// share 1 — and with its training domain measured on the rest.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    weights: &Path,
    samples: &[Sample],
    validation_share: f64,
    seed: u64,
    target_sensitivity: f64,
    federation: &FederationSummary,
    set: &crate::train::TrainingSet<'_>,
    out: &Path,
) -> Result<crate::ModelCard, ModelError> {
    let device = Device::flex();
    let (net, config) = load(weights, None, &device)?;
    let (train_idx, val_idx) = if validation_share >= 1.0 {
        ((0..samples.len()).collect(), (0..samples.len()).collect())
    } else {
        data::grouped_split(samples, validation_share, seed)
    };
    let validation: Vec<&Sample> = val_idx.iter().map(|&i| &samples[i]).collect();
    let domain: Vec<&Sample> = train_idx.iter().map(|&i| &samples[i]).collect();
    std::fs::create_dir_all(out).map_err(|e| ModelError::file(out, e))?;
    crate::train::write_model_dir(
        &net.valid(),
        &config,
        &crate::train::Calibration {
            validation: &validation,
            domain: &domain,
            target_sensitivity,
            batch_size: 16,
        },
        set,
        &crate::train::RunSummary {
            n_train: federation.cases_trained,
            epochs_run: federation.rounds,
            best_epoch: federation.rounds,
        },
        out,
    )
}

/// log(1 + eˣ), without overflow.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tiny() -> NetConfig {
        NetConfig::new()
            .with_image_size(32)
            .with_channels(vec![4, 8])
            .with_fusion_hidden(8)
    }

    /// The gradient of (μ/2)·‖w − w_global‖² is μ·(w − w_global), for
    /// every parameter: checked element by element on a moved network.
    #[test]
    fn the_proximal_terms_gradient_pulls_each_weight_back_to_the_global_one() {
        let device = Device::flex();
        device.seed(1);
        let ad = device.clone().autodiff();
        let global_net = tiny().init(&ad).unwrap();
        let global = GlobalWeights::of(&global_net);
        let mu = 0.3;
        // No distance, no term.
        let zero = proximal_term(&global_net, &global, mu, &ad);
        assert_eq!(zero.into_scalar::<f32>(), 0.0);
        // A local network: the same parameters (same ids), each moved.
        let moved = global_net.clone().map(&mut Shift);
        let term = proximal_term(&moved, &global, mu, &ad);
        let grads = GradientsParams::from_grads(term.backward(), &moved);
        let mut checked = 0;
        let mut check = CheckGrad {
            grads: &grads,
            global: &global.0,
            mu,
            checked: &mut checked,
        };
        moved.visit(&mut check);
        assert!(checked > 10, "every parameter was checked ({checked})");
    }

    /// Moves every parameter by a different amount per element.
    struct Shift;

    impl burn::module::ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| {
                let shape = t.shape();
                let n: usize = shape.num_elements();
                let ramp: Vec<f32> = (0..n).map(|i| 0.01 * ((i % 7) as f32 - 3.0)).collect();
                let device = t.device();
                let r = Tensor::<1>::from_data(TensorData::new(ramp, [n]), &device).reshape(shape);
                // A leaf of its own, as a parameter the optimiser moved.
                (t + r).detach().require_grad()
            })
        }
    }

    struct CheckGrad<'a> {
        grads: &'a GradientsParams,
        global: &'a HashMap<ParamId, Tensor<1>>,
        mu: f64,
        checked: &'a mut usize,
    }

    impl ModuleVisitor for CheckGrad<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(grad) = self.grads.get::<D>(param.id) else {
                return;
            };
            let w: Vec<f32> = crate::host(param.val().inner().flatten::<1>(0, D - 1)).unwrap();
            let g: Vec<f32> = crate::host(self.global[&param.id].clone()).unwrap();
            let got: Vec<f32> = crate::host(grad.flatten::<1>(0, D - 1)).unwrap();
            for ((w, g), got) in w.iter().zip(&g).zip(&got) {
                let want = self.mu as f32 * (w - g);
                assert!(
                    (got - want).abs() <= 1e-6 + 1e-4 * want.abs(),
                    "gradient {got} against μ(w − w_global) = {want}"
                );
            }
            *self.checked += 1;
        }
    }

    #[test]
    fn weights_go_out_and_come_back_and_another_network_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("global.safetensors");
        init(&tiny(), 7, &path).unwrap();
        let device = Device::flex();
        let (net, config) = load(&path, Some(&tiny()), &device).unwrap();
        assert_eq!(config, tiny());
        // The same tensors after a round trip.
        let again = dir.path().join("again.safetensors");
        save(&net, &config, &again).unwrap();
        let (a, b) = (
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap(),
        );
        let (a, b) = (
            safetensors::SafeTensors::deserialize(&a).unwrap(),
            safetensors::SafeTensors::deserialize(&b).unwrap(),
        );
        let mut names = a.names();
        names.sort();
        let mut other = b.names();
        other.sort();
        assert_eq!(names, other);
        assert!(names.len() > 10, "{names:?}");
        for name in names {
            let (x, y) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
            assert_eq!(x.shape(), y.shape(), "{name}");
            assert!(x.data() == y.data(), "{name} changed on the way");
        }
        // Another shape: refused, with what differs.
        let other = tiny().with_channels(vec![4, 16]);
        let e = load(&path, Some(&other), &device).unwrap_err().to_string();
        assert!(e.contains("another network"), "{e}");
        // A file whose tensors do not match its configuration.
        let wrong = dir.path().join("wrong.safetensors");
        let net = other.init(&device).unwrap();
        save(&net, &tiny(), &wrong).unwrap();
        let e = load(&wrong, None, &device).unwrap_err().to_string();
        assert!(e.contains("do not match") || e.contains("shape"), "{e}");
        // Not safetensors at all.
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not weights").unwrap();
        let e = load(&junk, None, &device).unwrap_err().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }
}
