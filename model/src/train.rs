//! Training on the retrospective arm.
//!
//! Patient-grouped train/validation split; augmentation of the training
//! views; class-weighted binary cross-entropy; AdamW with a cosine learning
//! rate, `lr(e) = min + ½(max − min)(1 + cos(π e / E))` per epoch `e` of `E`;
//! early stopping on the validation AUC (`patience` epochs without
//! improvement); a fixed seed for the split, the initial weights, the
//! shuffling and the augmentation. After each epoch a checkpoint (weights,
//! optimiser state, progress) is written, and `resume` continues from it.
//!
//! Then, on the validation cases with the best weights: temperature scaling
//! (calibration), and the operating threshold — the highest calibrated
//! probability at which the validation sensitivity is still at least the
//! target (0.95 by default), which makes specificity as high as that allows.

use crate::error::ModelError;
use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::card::{self, ModelCard};
use crate::data::{self, Sample};
use crate::host;
use crate::net::{Net, NetConfig};

/// How to train. Saved as `training.json` beside the weights.
#[derive(Config, Debug)]
pub struct TrainConfig {
    #[config(default = 30)]
    pub epochs: usize,
    #[config(default = 16)]
    pub batch_size: usize,
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    #[config(default = 2e-5)]
    pub min_learning_rate: f64,
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// Epochs without a better validation AUC before stopping.
    #[config(default = 8)]
    pub patience: usize,
    /// Epochs before any can be the best: the validation AUC of a barely
    /// trained network is mostly noise (on a small validation set an early
    /// lucky epoch would otherwise be kept).
    #[config(default = 5)]
    pub warmup_epochs: usize,
    #[config(default = 0.2)]
    pub validation_share: f64,
    #[config(default = 0.95)]
    pub target_sensitivity: f64,
    #[config(default = 42)]
    pub seed: u64,
    #[config(default = true)]
    pub augment: bool,
}

/// What the training loop reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        n_train: usize,
        n_validation: usize,
        steps_per_epoch: usize,
        resumed_at: usize,
    },
    Step {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    Epoch(EpochMetrics),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub validation_auc: f64,
    pub best: bool,
}

/// The checkpoint's progress record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    best_auc: f64,
    best_epoch: usize,
    since_best: usize,
    history: Vec<EpochMetrics>,
}

/// The data one training run uses.
pub struct TrainingSet<'a> {
    pub samples: &'a [Sample],
    /// SHA-256 of the manifest file (for the card).
    pub manifest_sha256: String,
    /// One line for the card: what the data are.
    pub description: String,
    /// Trained on phantoms: label every output as a demo.
    pub demo: bool,
    /// What the card records of the set (`None` for the demo model).
    pub record: Option<crate::dataset::TrainingSetRecord>,
}

fn lr_at(cfg: &TrainConfig, epoch: usize) -> f64 {
    let t = epoch as f64 / cfg.epochs.max(1) as f64;
    cfg.min_learning_rate
        + 0.5
            * (cfg.learning_rate - cfg.min_learning_rate)
            * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Class-weighted binary cross-entropy on logits: each class weighs half.
pub(crate) fn weighted_bce(logits: Tensor<1>, labels: Tensor<1>, weights: Tensor<1>) -> Tensor<1> {
    let pos = log_sigmoid(logits.clone()) * labels.clone();
    let neg = log_sigmoid(logits.neg()) * (labels.neg() + 1.0);
    ((pos + neg).neg() * weights).mean()
}

/// The class weights of the cross-entropy, from the training cases' labels:
/// `n / (2 n_class)`, so that benign and malignant each carry half the loss
/// however unbalanced the set. Central training and a federated site's
/// local round weigh alike.
pub(crate) struct ClassWeights {
    n: f32,
    pub(crate) n_pos: usize,
    pub(crate) n_neg: usize,
}

impl ClassWeights {
    /// Counts the classes of `samples[i]` for every `i` in `idx`.
    pub(crate) fn count(samples: &[Sample], idx: &[usize]) -> Self {
        let n_pos = idx.iter().filter(|&&i| samples[i].label > 0.5).count();
        ClassWeights {
            n: idx.len() as f32,
            n_pos,
            n_neg: idx.len() - n_pos,
        }
    }

    /// The weight of one case (a class absent from the set counts as one
    /// case, so the weight stays finite).
    pub(crate) fn of(&self, label: f32) -> f32 {
        let class = if label > 0.5 { self.n_pos } else { self.n_neg };
        self.n / (2.0 * class.max(1) as f32)
    }

    /// The weights of a batch, as the loss takes them.
    pub(crate) fn tensor(&self, batch: &[&Sample], device: &Device) -> Tensor<1> {
        let weights: Vec<f32> = batch.iter().map(|s| self.of(s.label)).collect();
        Tensor::<1>::from_data(TensorData::new(weights, [batch.len()]), device)
    }
}

/// Logits of `samples` with `net` (in validation mode), in batches.
pub fn logits(
    net: &Net,
    config: &NetConfig,
    samples: &[&Sample],
    device: &Device,
    batch_size: usize,
) -> Result<Vec<f32>, ModelError> {
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch_size.max(1)) {
        let b = data::batch(chunk, config, device, None);
        out.extend(host(
            net.forward(b.images, b.positions, b.mask, b.clinical)
                .logits,
        )?);
    }
    Ok(out)
}

/// The calibration temperature: minimises the mean log-loss of
/// σ(logit / T) by golden-section search over log T in [−4, 4].
pub fn fit_temperature(logits: &[f32], labels: &[f32]) -> f64 {
    let nll = |log_t: f64| {
        let t = log_t.exp();
        logits
            .iter()
            .zip(labels)
            .map(|(&z, &y)| {
                let z = f64::from(z) / t;
                // log(1 + e^z) − y z, stably.
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - f64::from(y) * z
            })
            .sum::<f64>()
    };
    let (mut a, mut b) = (-4.0f64, 4.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let c = b - g * (b - a);
        let d = a + g * (b - a);
        if nll(c) < nll(d) {
            b = d;
        } else {
            a = c;
        }
    }
    ((a + b) / 2.0).exp()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The highest threshold with sensitivity ≥ `target` among `probabilities`
/// (positive when ≥ threshold), and the sensitivity and specificity there.
pub fn threshold_for_sensitivity(
    probabilities: &[f64],
    labels: &[f32],
    target: f64,
) -> Option<(f64, f64, f64)> {
    let mut pos: Vec<f64> = probabilities
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l > 0.5)
        .map(|(&p, _)| p)
        .collect();
    if pos.is_empty() || pos.len() == probabilities.len() {
        return None;
    }
    pos.sort_by(f64::total_cmp);
    // At most ⌊(1 − target)·n⌋ positives may fall below the threshold.
    let allowed_misses = ((1.0 - target) * pos.len() as f64 + 1e-9).floor() as usize;
    let threshold = pos[allowed_misses.min(pos.len() - 1)];
    let (mut tp, mut tn, mut n_neg) = (0usize, 0usize, 0usize);
    for (&p, &l) in probabilities.iter().zip(labels) {
        if l > 0.5 {
            tp += usize::from(p >= threshold);
        } else {
            n_neg += 1;
            tn += usize::from(p < threshold);
        }
    }
    Some((
        threshold,
        tp as f64 / pos.len() as f64,
        tn as f64 / n_neg as f64,
    ))
}

/// Trains, writes the model directory `out` (see [`crate::card`]) and
/// returns its card.
pub fn train(
    set: &TrainingSet<'_>,
    net_config: &NetConfig,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    progress: &mut dyn FnMut(Event),
) -> Result<ModelCard, ModelError> {
    let samples = set.samples;
    let size = net_config.image_size;
    if samples
        .iter()
        .any(|s| s.views.iter().any(|v| v.len() != size * size))
    {
        return Err(ModelError::Training(format!(
            "every view must be preprocessed at the network's size {size}"
        )));
    }
    let (train_idx, val_idx) = data::grouped_split(samples, cfg.validation_share, cfg.seed);
    let class_weights = ClassWeights::count(samples, &train_idx);
    let val_labels: Vec<f32> = val_idx.iter().map(|&i| samples[i].label).collect();
    if class_weights.n_pos == 0
        || class_weights.n_neg == 0
        || !val_labels.iter().any(|&l| l > 0.5)
        || !val_labels.iter().any(|&l| l < 0.5)
    {
        return Err(ModelError::Training(
            "training and validation both need benign and malignant cases".into(),
        ));
    }
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let checkpoint = out.join("checkpoint");
    std::fs::create_dir_all(&checkpoint).map_err(|e| ModelError::file(&checkpoint, e))?;
    let mut net = net_config.init(&ad)?;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let mut state = Progress::default();
    let state_file = checkpoint.join("progress.json");
    if resume && state_file.exists() {
        state = serde_json::from_str(
            &std::fs::read_to_string(&state_file)
                .map_err(|e| ModelError::Training(e.to_string()))?,
        )
        .map_err(|e| ModelError::file(&state_file, e))?;
        net = net
            .try_load_file(checkpoint.join("last.bpk"))
            .map_err(|e| ModelError::Training(format!("checkpoint weights: {e:?}")))?;
        optim = optim
            .load(checkpoint.join("optimizer.bpk"))
            .map_err(|e| ModelError::Training(format!("checkpoint optimiser: {e:?}")))?;
    }
    let steps = train_idx.len().div_ceil(cfg.batch_size.max(1));
    progress(Event::Started {
        n_train: train_idx.len(),
        n_validation: val_idx.len(),
        steps_per_epoch: steps,
        resumed_at: state.epochs_done,
    });
    let val_samples: Vec<&Sample> = val_idx.iter().map(|&i| &samples[i]).collect();
    let best_file = checkpoint.join("best.bpk");
    for epoch in state.epochs_done..cfg.epochs {
        if state.since_best >= cfg.patience && state.best_epoch > 0 {
            break;
        }
        let lr = lr_at(cfg, epoch);
        let mut rng =
            ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for (step, chunk) in order.chunks(cfg.batch_size.max(1)).enumerate() {
            let batch_samples: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
            let b = data::batch(
                &batch_samples,
                net_config,
                &ad,
                cfg.augment.then_some(&mut rng),
            );
            let w = class_weights.tensor(&batch_samples, &ad);
            let out = net.forward(b.images, b.positions, b.mask, b.clinical);
            let loss = weighted_bce(out.logits, b.labels, w);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            loss_sum += value;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
            progress(Event::Step {
                epoch,
                step,
                loss: value,
            });
        }
        let valid = net.valid();
        let val_logits = logits(&valid, net_config, &val_samples, &device, cfg.batch_size)?;
        let auc = data::auc(&val_logits, &val_labels).unwrap_or(0.5);
        let best = epoch + 1 >= cfg.warmup_epochs.min(cfg.epochs)
            && (state.best_epoch == 0 || auc > state.best_auc);
        if best {
            state.best_auc = auc;
            state.best_epoch = epoch + 1;
            state.since_best = 0;
            valid
                .clone()
                .save_file(&best_file)
                .map_err(|e| ModelError::Training(format!("saving the best weights: {e:?}")))?;
        } else if state.best_epoch > 0 {
            state.since_best += 1;
        }
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            learning_rate: lr,
            train_loss: loss_sum / steps as f64,
            validation_auc: auc,
            best,
        };
        state.history.push(metrics.clone());
        state.epochs_done = epoch + 1;
        net.clone()
            .save_file(checkpoint.join("last.bpk"))
            .map_err(|e| ModelError::Training(format!("checkpoint: {e:?}")))?;
        optim
            .save(checkpoint.join("optimizer.bpk"))
            .map_err(|e| ModelError::Training(format!("checkpoint: {e:?}")))?;
        std::fs::write(
            &state_file,
            serde_json::to_vec_pretty(&state).map_err(|e| ModelError::Training(e.to_string()))?,
        )
        .map_err(|e| ModelError::file(&state_file, e))?;
        progress(Event::Epoch(metrics));
    }

    // The best weights, calibrated and given a threshold on validation.
    let best = net_config
        .init(&device)?
        .try_load_file(&best_file)
        .map_err(|e| ModelError::Training(format!("best weights: {e:?}")))?
        .valid();
    let train_samples: Vec<&Sample> = train_idx.iter().map(|&i| &samples[i]).collect();
    cfg.save(out.join(card::TRAINING))
        .map_err(|e| ModelError::Training(format!("training.json: {e}")))?;
    let metrics = out.join(card::METRICS);
    std::fs::write(
        &metrics,
        serde_json::to_vec_pretty(&state.history)
            .map_err(|e| ModelError::Training(e.to_string()))?,
    )
    .map_err(|e| ModelError::file(&metrics, e))?;
    write_model_dir(
        &best,
        net_config,
        &Calibration {
            validation: &val_samples,
            domain: &train_samples,
            target_sensitivity: cfg.target_sensitivity,
            batch_size: cfg.batch_size,
        },
        set,
        &RunSummary {
            n_train: train_idx.len(),
            epochs_run: state.epochs_done,
            best_epoch: state.best_epoch,
        },
        out,
    )
}

/// The cases a model directory's card is made from.
pub struct Calibration<'a> {
    /// Held-out cases: the temperature, the threshold and the validation
    /// figures on the card.
    pub validation: &'a [&'a Sample],
    /// Cases like the training set's: the training domain for the
    /// out-of-domain flag.
    pub domain: &'a [&'a Sample],
    /// The sensitivity the threshold is chosen for.
    pub target_sensitivity: f64,
    pub batch_size: usize,
}

/// How the weights were trained, for the card.
pub struct RunSummary {
    pub n_train: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
}

/// Calibrates `best` (validation mode) on held-out cases, measures its
/// training domain, and writes the weights, `config.json`, `card.json` and
/// `MODEL_CARD.md` into `out`. Training and the federation's last step
/// (`model fl-finish`) both end here, so every model directory is checked
/// and pinned the same way.
pub fn write_model_dir(
    best: &Net,
    net_config: &NetConfig,
    calibration: &Calibration<'_>,
    set: &TrainingSet<'_>,
    run: &RunSummary,
    out: &Path,
) -> Result<ModelCard, ModelError> {
    let device = Device::flex();
    let val_samples = calibration.validation;
    let val_labels: Vec<f32> = val_samples.iter().map(|s| s.label).collect();
    let val_logits = logits(
        best,
        net_config,
        val_samples,
        &device,
        calibration.batch_size,
    )?;
    let temperature = fit_temperature(&val_logits, &val_labels);
    let probabilities: Vec<f64> = val_logits
        .iter()
        .map(|&z| sigmoid(f64::from(z) / temperature))
        .collect();
    let (threshold, sensitivity, specificity) =
        threshold_for_sensitivity(&probabilities, &val_labels, calibration.target_sensitivity)
            .ok_or_else(|| ModelError::Training("validation needs both classes".into()))?;
    let brier = probabilities
        .iter()
        .zip(&val_labels)
        .map(|(p, &y)| (p - f64::from(y)).powi(2))
        .sum::<f64>()
        / probabilities.len() as f64;

    let domain = crate::domain::measure(best, net_config, calibration.domain, &device)?;

    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| ModelError::file(&path, e))
    };
    best.clone()
        .save_file(out.join(card::WEIGHTS))
        .map_err(|e| ModelError::Training(format!("saving weights: {e:?}")))?;
    net_config
        .save(out.join(card::CONFIG))
        .map_err(|e| ModelError::Training(format!("config.json: {e}")))?;
    let weights_sha256 = card::file_sha256(&out.join(card::WEIGHTS))?;
    let model_card = ModelCard {
        model_id: format!("osteo-{}", &weights_sha256[..12]),
        intended_use: if set.demo {
            "Demonstration of the trial's workflow. Trained on synthetic radiograph phantoms generated by this software; it has never seen a patient's radiograph.".into()
        } else {
            "Index test of the prospective diagnostic-accuracy trial: probability that a bone tumour on multi-view radiographs is malignant, for research use under the trial's protocol.".into()
        },
        demo: set.demo,
        weights_sha256,
        config_sha256: card::file_sha256(&out.join(card::CONFIG))?,
        training_manifest_sha256: set.manifest_sha256.clone(),
        training_data: set.description.clone(),
        n_train: run.n_train,
        n_validation: val_samples.len(),
        epochs_run: run.epochs_run,
        best_epoch: run.best_epoch,
        validation_auc: data::auc(&val_logits, &val_labels).unwrap_or(0.5),
        temperature,
        threshold,
        threshold_rule: format!(
            "highest threshold with validation sensitivity ≥ {}",
            calibration.target_sensitivity
        ),
        validation_sensitivity: sensitivity,
        validation_specificity: specificity,
        validation_brier: brier,
        burn_version: "0.22.1".into(),
        training_domain: Some(domain),
        training_set: set.record.clone(),
    };
    write(
        card::CARD,
        &serde_json::to_vec_pretty(&model_card).map_err(|e| ModelError::Training(e.to_string()))?,
    )?;
    write(card::CARD_MD, model_card.markdown().as_bytes())?;
    Ok(model_card)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_keeps_the_target_sensitivity() {
        // 20 positives at 0.05 … 1.0; 95% allows one miss → threshold 0.10.
        let mut p: Vec<f64> = (1..=20).map(|i| f64::from(i) / 20.0).collect();
        let mut y = vec![1.0f32; 20];
        p.extend([0.02, 0.07, 0.2, 0.5]);
        y.extend([0.0f32; 4]);
        let (t, se, sp) = threshold_for_sensitivity(&p, &y, 0.95).expect("both classes");
        assert!((t - 0.10).abs() < 1e-12);
        assert!((se - 0.95).abs() < 1e-12);
        assert!((sp - 0.5).abs() < 1e-12);
    }

    #[test]
    fn temperature_recovers_a_known_scale() {
        // Labels drawn from σ(z / 2): the fitted temperature is near 2.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20000 {
            let logit: f32 = rand::Rng::gen_range(&mut rng, -6.0..6.0);
            let p = sigmoid(f64::from(logit) / 2.0);
            z.push(logit);
            y.push(if rand::Rng::gen_bool(&mut rng, p) {
                1.0
            } else {
                0.0
            });
        }
        let t = fit_temperature(&z, &y);
        assert!((t - 2.0).abs() < 0.1, "{t}");
    }

    /// Tiny phantoms as samples, without files.
    fn samples(n: usize, size: usize) -> Vec<Sample> {
        let cfg = crate::phantom::PhantomConfig {
            width: 32,
            height: 40,
            seed: 3,
            ..Default::default()
        };
        crate::phantom::generate(n, &cfg)
            .iter()
            .map(|c| {
                let greys = c.greys();
                Sample {
                    case_id: c.case_id.clone(),
                    patient_id: c.patient_id.clone(),
                    label: f32::from(u8::from(c.label.is_malignant())),
                    ..Sample::from_views(&greys, &c.clinical, size)
                }
            })
            .collect()
    }

    #[test]
    fn training_resumes_from_its_checkpoint() {
        let dir = tempfile::tempdir().expect("tmp");
        let net = NetConfig::new()
            .with_image_size(32)
            .with_channels(vec![4, 8])
            .with_fusion_hidden(8);
        let data = samples(40, 32);
        let set = TrainingSet {
            samples: &data,
            manifest_sha256: "0".repeat(64),
            description: "t".into(),
            demo: true,
            record: None,
        };
        let two = TrainConfig::new()
            .with_epochs(2)
            .with_batch_size(8)
            .with_warmup_epochs(1);
        train(&set, &net, &two, dir.path(), false, &mut |_| {}).expect("two epochs");
        let mut started_at = None;
        let three = TrainConfig::new()
            .with_epochs(3)
            .with_batch_size(8)
            .with_warmup_epochs(1);
        let card = train(&set, &net, &three, dir.path(), true, &mut |e| {
            if let Event::Started { resumed_at, .. } = e {
                started_at = Some(resumed_at);
            }
        })
        .expect("resumed");
        assert_eq!(started_at, Some(2), "the second run starts after epoch 2");
        assert_eq!(card.epochs_run, 3);
        let metrics: Vec<EpochMetrics> = serde_json::from_slice(
            &std::fs::read(dir.path().join(card::METRICS)).expect("metrics"),
        )
        .expect("json");
        assert_eq!(
            metrics.iter().map(|m| m.epoch).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // The directory matches its card.
        crate::card::ModelDir::open(dir.path()).expect("a checked model directory");
    }

    #[test]
    fn cosine_schedule_runs_from_max_to_min() {
        let cfg = TrainConfig::new().with_epochs(10);
        assert!((lr_at(&cfg, 0) - cfg.learning_rate).abs() < 1e-12);
        assert!((lr_at(&cfg, 10) - cfg.min_learning_rate).abs() < 1e-12);
        assert!(lr_at(&cfg, 5) < lr_at(&cfg, 4));
    }
}
