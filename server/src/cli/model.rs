//! `osteo-edc model …`: phantoms, training, evaluation, the model card and
//! the model's speed benchmark.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use osteo_model::burn::tensor::Device;
use osteo_model::card::{self, ModelDir};
use osteo_model::data;
use osteo_model::dataset::TrainingSetRecord;
use osteo_model::federated;
use osteo_model::infer::{self, Predictor};
use osteo_model::net::NetConfig;
use osteo_model::phantom::{self, PhantomConfig};
use osteo_model::train::{self, TrainConfig, TrainingSet};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Write N synthetic radiograph phantoms (CR DICOM, frontal + lateral, 12-bit, MONOCHROME1/2) and their manifest.csv.
    Phantoms(PhantomArgs),
    /// Train on a manifest of the retrospective arm; writes weights, config.json, metrics.json and the model card.
    Train(TrainArgs),
    /// Evaluate a model on a manifest at its card's threshold (JSON: n, auc, sensitivity, specificity, threshold; with lesion masks in the manifest, the share of malignant views whose heat-map peak lies in the lesion).
    Evaluate(EvaluateArgs),
    /// Check a model directory against its card and print the card (JSON).
    Card {
        /// The model directory [default: the model in use: --model, else the embedded demo model].
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Rebuild the embedded demo model: phantoms, then training, deterministically (seeded).
    Demo {
        /// Where to write the model directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time inference (one case, batch 1, single process) and training throughput; JSON on stdout.
    Bench(BenchArgs),
    /// The training set from the study's own retrospective arm.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Federated learning: write the first global weights (safetensors, with the network's configuration in the file's metadata) for the federation's coordinator.
    FlInit(FlInitArgs),
    /// Federated learning, one hospital's round: load the global weights, train them on this site's cases for --epochs (adding FedProx's proximal term when --proximal-mu > 0), write the local weights, and print the metric record (cases trained on, local loss, local and global validation AUC) that is all the site sends back with them.
    FlTrain(FlTrainArgs),
    /// Federated learning: judge weights (safetensors) on this site's held-out patients, the same ones fl-train holds out with the same --validation-share and --seed (1: all cases); prints the number of cases, the loss and the AUC.
    FlEvaluate(FlEvaluateArgs),
    /// Federated learning, the last step: make a model directory of the federation's global weights (weights, config, card), calibrated on this site's held-out patients, so that it is checked with `model card`, served with `serve --model DIR` and pinned like any trained model.
    FlFinish(FlFinishArgs),
    /// Federated learning: draw the pooled test AUC of each round's global model (the rounds.tsv of scripts/fl-demo.sh: a round column, then one column per strategy) as an SVG chart.
    FlPlot {
        /// The table: tab-separated, a header row, the round first.
        #[arg(long)]
        rounds: PathBuf,
        /// The SVG to write.
        #[arg(long)]
        out: PathBuf,
        /// Horizontal reference lines: NAME=AUC (e.g. centralised=0.95), repeatable.
        #[arg(long = "reference")]
        references: Vec<String>,
    },
}

#[derive(Args)]
pub struct FlFinishArgs {
    /// The federation's global weights (safetensors).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// The coordinator's metrics.json (strategy, rounds, cases trained), for the card.
    #[arg(long)]
    pub federation_metrics: PathBuf,
    /// This site's manifest: its held-out patients calibrate the threshold.
    #[arg(long)]
    pub manifest: PathBuf,
    /// The folder the manifest's image paths are relative to.
    #[arg(long)]
    pub images: PathBuf,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of this site's patients held out for calibration (as fl-train's); 1 calibrates on every case.
    #[arg(long, default_value_t = 0.2)]
    pub validation_share: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Sensitivity the operating threshold is chosen for.
    #[arg(long, default_value_t = 0.95)]
    pub target_sensitivity: f64,
    /// Mark the model as a demo (trained on synthetic images).
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args)]
pub struct FlEvaluateArgs {
    /// The weights to judge (safetensors).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// This site's manifest.
    #[arg(long)]
    pub manifest: PathBuf,
    /// The folder the manifest's image paths are relative to.
    #[arg(long)]
    pub images: PathBuf,
    /// Share of the site's patients held out (as fl-train's); 1 judges every case.
    #[arg(long, default_value_t = 0.2)]
    pub validation_share: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Also write each judged case's score to this CSV (case_id, label: 1
    /// malignant, score: the logit), for comparing models on the same
    /// patients with `stats compare`.
    #[arg(long)]
    pub scores: Option<PathBuf>,
}

/// The network's shape, for training and for the first federated weights.
#[derive(Args)]
pub struct NetArgs {
    /// Side of the square each view is resized and padded to.
    #[arg(long, default_value_t = 384)]
    pub image_size: usize,
    /// Channels of the stem and each residual stage, comma-separated.
    #[arg(long, default_value = "16,32,64,128", value_delimiter = ',')]
    pub channels: Vec<usize>,
    /// Leave the clinical and Bone-RADS inputs out (an image-only model).
    #[arg(long)]
    pub image_only: bool,
}

impl NetArgs {
    pub fn config(&self) -> NetConfig {
        NetConfig::new()
            .with_image_size(self.image_size)
            .with_channels(self.channels.clone())
            .with_clinical_hidden(if self.image_only { 0 } else { 32 })
    }
}

#[derive(Args)]
pub struct FlInitArgs {
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Args)]
pub struct FlTrainArgs {
    /// The global weights of this round (safetensors from fl-init or the coordinator's aggregate).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// The local weights to write (safetensors, same layout).
    #[arg(long)]
    pub out: PathBuf,
    /// This site's training manifest (e.g. the manifest.csv of `model dataset export`).
    #[arg(long)]
    pub manifest: PathBuf,
    /// The folder the manifest's image paths are relative to.
    #[arg(long)]
    pub images: PathBuf,
    /// Local epochs in this round.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// AdamW's learning rate (constant within the round).
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// FedProx's μ: the loss gains (μ/2)·‖w − w_global‖²; 0 is FedAvg's plain local training.
    #[arg(long, default_value_t = 0.0)]
    pub proximal_mu: f64,
    /// Share of this site's patients held out for the local validation AUC (the same patients every round).
    #[arg(long, default_value_t = 0.2)]
    pub validation_share: f64,
    /// Seeds the local split, order and augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The federated round (mixed into the order and augmentation seed).
    #[arg(long, default_value_t = 0)]
    pub round: u64,
    /// No augmentation.
    #[arg(long)]
    pub no_augment: bool,
}

#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Write the complete retrospective cases (pathology signed) as a training folder: manifest.csv, the stored de-identified views under images/, and dataset.json with the training set's SHA-256, its cases per class and the study numbers. The read is audited as the named account.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The folder to write (new, or empty).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub study: StudySource,
}

/// Who reads the retrospective arm, and how its intermediate tumours are labelled.
#[derive(Args, Clone)]
pub struct StudySource {
    /// The account whose authority reads the training set: one that may see pathology (coordinator, principal investigator, monitor, administrator); audited as this account from the command line.
    #[arg(long = "as", value_name = "USERNAME")]
    pub username: Option<String>,
    /// How intermediate tumours (ICD-O /1) are labelled: as_benign, as_malignant or excluded [default: as the study's analysis plan says].
    #[arg(long, value_parser = parse_mapping)]
    pub intermediate: Option<osteo_trial::study::sap::IntermediateMapping>,
}

fn parse_mapping(s: &str) -> Result<osteo_trial::study::sap::IntermediateMapping, String> {
    s.parse()
        .map_err(|e: osteo_trial::codes::UnknownCode| e.to_string())
}

#[derive(Args)]
pub struct PhantomArgs {
    /// How many cases.
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (cases as <case>/frontal.dcm, lateral.dcm, masks as PNG, and manifest.csv).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub draw: DrawArgs,
}

/// How phantoms are drawn: their size and a site's shift (shared by
/// `model phantoms` and `demo retrospective`).
#[derive(Args)]
pub struct DrawArgs {
    /// Image width in pixels.
    #[arg(long, default_value_t = 192)]
    pub width: usize,
    /// Image height in pixels.
    #[arg(long, default_value_t = 256)]
    pub height: usize,
    /// Share of labels flipped (label noise).
    #[arg(long, default_value_t = 0.03)]
    pub label_noise: f64,
    /// Draw radiograph-like views (trabecular texture, muscle and fat, a
    /// collimation edge, a lead side marker), as the demonstration study's
    /// are; best at 1024 × 1280 or more.
    #[arg(long)]
    pub realistic: bool,
    /// A site's detector contrast: brightness differences scaled around mid-grey (1: as drawn).
    #[arg(long, default_value_t = 1.0)]
    pub contrast: f32,
    /// A site's extra detector noise: amplitude of uniform noise added per pixel (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub site_noise: f32,
    /// A site's case mix: share of cases drawn malignant (before label noise).
    #[arg(long, default_value_t = 0.4)]
    pub malignant_share: f64,
    /// A site's spectrum of lesions, from -1 (a general hospital: subtler
    /// malignant lesions, mostly metastases and myeloma of older patients,
    /// and less settled benign ones) to 1 (a sarcoma referral centre: overt
    /// lesions of both classes, the malignant ones mostly primary sarcomas
    /// of the young); 0: as drawn.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub spectrum: f64,
}

impl DrawArgs {
    /// The generator's configuration for `n` cases from `seed`; a usage
    /// error names the option out of range.
    pub fn config(&self, n: usize, seed: u64) -> anyhow::Result<PhantomConfig> {
        if n == 0 || self.width < 32 || self.height < 32 || self.width > 4096 || self.height > 4096
        {
            return Err(usage(
                "--n must be at least 1 and the size between 32 and 4096 pixels",
            ));
        }
        if !(0.0..=0.5).contains(&self.label_noise) {
            return Err(usage("--label-noise must be between 0 and 0.5"));
        }
        if !(0.2..=3.0).contains(&self.contrast)
            || !(0.0..=0.3).contains(&self.site_noise)
            || !(0.05..=0.95).contains(&self.malignant_share)
            || !(-1.0..=1.0).contains(&self.spectrum)
        {
            return Err(usage(
                "--contrast must be between 0.2 and 3, --site-noise between 0 and 0.3, --malignant-share between 0.05 and 0.95 and --spectrum between -1 and 1",
            ));
        }
        Ok(PhantomConfig {
            width: self.width,
            height: self.height,
            label_noise: self.label_noise,
            seed,
            lesion: true,
            realistic: self.realistic,
            shift: phantom::SiteShift {
                contrast: self.contrast,
                noise: self.site_noise,
                malignant_share: self.malignant_share,
                spectrum: self.spectrum,
            },
        })
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// The manifest CSV (columns in the model crate's manifest documentation).
    #[arg(
        long,
        required_unless_present = "from_study",
        conflicts_with = "from_study",
        requires = "images"
    )]
    pub manifest: Option<PathBuf>,
    /// The folder the manifest's image paths are relative to.
    #[arg(long, requires = "manifest")]
    pub images: Option<PathBuf>,
    /// Train on the study's complete retrospective cases instead of a manifest: they are exported first into --dataset (as `model dataset export` does), and the card records the training set's SHA-256, its cases per class and the study numbers.
    #[arg(long, requires_all = ["dataset", "username"])]
    pub from_study: bool,
    /// With --from-study: the folder the training set is exported to (new, or empty); it stays, so the training set's SHA-256 can be checked.
    #[arg(long, requires = "from_study")]
    pub dataset: Option<PathBuf>,
    #[command(flatten)]
    pub study: StudySource,
    /// The exported training set (set by the command for --from-study).
    #[arg(skip)]
    pub exported: Option<Box<crate::cli::dataset::Exported>>,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW, cosine schedule).
    #[arg(long, default_value_t = 2e-3)]
    pub learning_rate: f64,
    /// Epochs without a better validation AUC before stopping.
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
    /// Share of patients held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub validation_share: f64,
    /// Sensitivity the operating threshold is chosen for on validation.
    #[arg(long, default_value_t = 0.95)]
    pub target_sensitivity: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Continue from the checkpoint in OUT/checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Mark the model as a demo (trained on synthetic images).
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// The model directory [default: the model in use].
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub manifest: PathBuf,
    #[arg(long)]
    pub images: PathBuf,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Side of each view.
    #[arg(long, default_value_t = 384)]
    pub image_size: usize,
    /// Views per case.
    #[arg(long, default_value_t = 2)]
    pub views: usize,
    /// Timed inference runs (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Cases per training step.
    #[arg(long, default_value_t = 8)]
    pub train_batch: usize,
    /// Timed training steps (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub train_steps: usize,
    /// Channels of the network, comma-separated.
    #[arg(long, default_value = "16,32,64,128", value_delimiter = ',')]
    pub channels: Vec<usize>,
    /// Backend: flex (CPU, default), wgpu or cuda (with the server's GPU features), ndarray (with its cpu-ndarray or cpu-openblas feature), tch (with its cpu-tch feature).
    #[arg(long, default_value = "flex")]
    pub backend: String,
}

fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    crate::cli::usage_error(msg.to_string())
}

/// Runs a model command; `model_in_use` gives the configured model directory
/// (installing the embedded demo model when that is the one configured).
pub fn run(
    cmd: ModelCommand,
    model_in_use: impl FnOnce() -> anyhow::Result<Option<PathBuf>>,
) -> anyhow::Result<Value> {
    match cmd {
        ModelCommand::Phantoms(a) => {
            let cfg = a.draw.config(a.n, a.seed)?;
            let cases = phantom::write_set(a.n, &cfg, &a.out).map_err(anyhow::Error::msg)?;
            let malignant = cases.iter().filter(|c| c.label.is_malignant()).count();
            Ok(json!({
                "cases": cases.len(),
                "malignant": malignant,
                "benign": cases.len() - malignant,
                "manifest": a.out.join("manifest.csv"),
            }))
        }
        ModelCommand::Train(a) => {
            let card = train_cmd(&a)?;
            Ok(serde_json::to_value(card)?)
        }
        ModelCommand::Evaluate(a) => {
            let dir = match a.model {
                Some(m) => Some(m),
                None => model_in_use()?,
            }
            .ok_or_else(|| usage("no model: give --model DIR"))?;
            let predictor = Predictor::open(&dir, &Device::flex()).map_err(usage)?;
            let rows = osteo_model::manifest::read(&a.manifest).map_err(usage)?;
            let eval = infer::evaluate(&predictor, &rows, &a.images).map_err(usage)?;
            let mut out = serde_json::to_value(eval)?;
            if let Some(label) = predictor.dir.label() {
                out["label"] = json!(label);
            }
            Ok(out)
        }
        ModelCommand::Card { model } => {
            let dir = match model {
                Some(m) => Some(m),
                None => model_in_use()?,
            }
            .ok_or_else(|| usage("no model: give --model DIR"))?;
            let dir = ModelDir::open(&dir).map_err(usage)?;
            Ok(
                json!({ "path": dir.path, "card": dir.card, "config": serde_json::to_value(&dir.config)? , "label": dir.label() }),
            )
        }
        ModelCommand::Demo { out } => {
            let card = build_demo(&out)?;
            Ok(serde_json::to_value(card)?)
        }
        ModelCommand::Bench(a) => bench(&a),
        ModelCommand::FlInit(a) => {
            let net = a.net.config();
            federated::init(&net, a.seed, &a.out).map_err(usage)?;
            Ok(json!({
                "out": a.out,
                "sha256": card::file_sha256(&a.out).map_err(usage)?,
                "config": serde_json::to_value(&net)?,
            }))
        }
        ModelCommand::FlTrain(a) => fl_train(&a),
        ModelCommand::FlPlot {
            rounds,
            out,
            references,
        } => {
            let text = std::fs::read_to_string(&rounds)
                .with_context(|| format!("reading {}", rounds.display()))?;
            let references = references
                .iter()
                .map(|r| {
                    let (name, value) = r
                        .split_once('=')
                        .ok_or_else(|| usage(format!("--reference {r}: give NAME=AUC")))?;
                    let value: f64 = value
                        .parse()
                        .map_err(|_| usage(format!("--reference {r}: the AUC is not a number")))?;
                    Ok((name.to_owned(), value))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let svg = rounds_chart(&text, &references).map_err(usage)?;
            std::fs::write(&out, svg).with_context(|| format!("writing {}", out.display()))?;
            Ok(json!({ "out": out }))
        }
        ModelCommand::FlFinish(a) => {
            let settings_ok = a.validation_share > 0.0
                && a.validation_share <= 1.0
                && (0.5..1.0).contains(&a.target_sensitivity);
            if !settings_ok {
                return Err(usage(
                    "--validation-share must be in (0, 1] and --target-sensitivity in [0.5, 1)",
                ));
            }
            let federation =
                federated::FederationSummary::read(&a.federation_metrics).map_err(usage)?;
            let config = federated::config_of(&a.input).map_err(usage)?;
            let rows = osteo_model::manifest::read(&a.manifest).map_err(usage)?;
            let samples = data::load(&rows, &a.images, config.image_size).map_err(usage)?;
            let set = TrainingSet {
                samples: &samples,
                manifest_sha256: card::file_sha256(&a.manifest).map_err(usage)?,
                description: format!(
                    "federated training ({}, {} rounds, {} sites, {} cases in the last round); calibrated on this site's held-out patients from {}",
                    federation.strategy,
                    federation.rounds,
                    federation.sites,
                    federation.cases_trained,
                    a.manifest.display()
                ),
                demo: a.demo,
                record: None,
            };
            let card = federated::finish(
                &a.input,
                &samples,
                a.validation_share,
                a.seed,
                a.target_sensitivity,
                &federation,
                &set,
                &a.out,
            )
            .map_err(usage)?;
            Ok(serde_json::to_value(card)?)
        }
        ModelCommand::FlEvaluate(a) => {
            if !(a.validation_share > 0.0 && a.validation_share <= 1.0) {
                return Err(usage("--validation-share must be in (0, 1]"));
            }
            let config = federated::config_of(&a.input).map_err(usage)?;
            let rows = osteo_model::manifest::read(&a.manifest).map_err(usage)?;
            let samples = data::load(&rows, &a.images, config.image_size).map_err(usage)?;
            let eval =
                federated::evaluate(&a.input, &samples, a.validation_share, a.seed, a.batch_size)
                    .map_err(usage)?;
            if let Some(path) = &a.scores {
                write_scores(path, &eval.scores)?;
            }
            Ok(serde_json::to_value(eval)?)
        }
        // Answered by `export_from_study`, which reads the study first and
        // never passes this command on.
        ModelCommand::Dataset(DatasetCommand::Export(_)) => Err(anyhow::anyhow!(
            "internal: `model dataset export` reads the study and is run by export_from_study"
        )),
    }
}

/// Exports the retrospective arm for `dataset export` and `train
/// --from-study` (the part of the model commands that reads the study);
/// other commands pass through.
pub async fn export_from_study(
    cmd: &mut ModelCommand,
    db_args: impl std::future::Future<Output = anyhow::Result<(osteo_trial::store::Db, PathBuf)>>,
) -> anyhow::Result<Option<Value>> {
    let (out, study) = match cmd {
        ModelCommand::Dataset(DatasetCommand::Export(a)) => (a.out.clone(), a.study.clone()),
        ModelCommand::Train(a) if a.from_study => match &a.dataset {
            Some(d) => (d.clone(), a.study.clone()),
            None => return Err(usage("--from-study needs --dataset DIR")),
        },
        _ => return Ok(None),
    };
    let username = study
        .username
        .ok_or_else(|| usage("name the account that reads the training set with --as USERNAME"))?;
    let (db, data_dir) = db_args.await?;
    let by = crate::cli::acting_as(
        &db,
        &username,
        osteo_trial::domain::Permission::ViewUnblinded,
        "may not see pathology; name a coordinator, the principal investigator, a monitor or an administrator",
    )
    .await?;
    let objects = crate::imaging::storage::FileStore::new(data_dir.join("objects"));
    let exported =
        crate::cli::dataset::export(&db, &objects, &by, &out, study.intermediate).await?;
    match cmd {
        ModelCommand::Train(a) => {
            eprintln!(
                "exported {} retrospective cases into {}",
                exported.record.case_ids.len(),
                out.display()
            );
            a.exported = Some(Box::new(exported));
            Ok(None)
        }
        _ => Ok(Some(serde_json::to_value(&exported)?)),
    }
}

fn train_cmd(a: &TrainArgs) -> anyhow::Result<osteo_model::ModelCard> {
    let net = a.net.config();
    let cfg = TrainConfig::new()
        .with_epochs(a.epochs)
        .with_batch_size(a.batch_size)
        .with_learning_rate(a.learning_rate)
        .with_patience(a.patience)
        .with_validation_share(a.validation_share)
        .with_target_sensitivity(a.target_sensitivity)
        .with_seed(a.seed)
        .with_augment(!a.no_augment);
    if a.epochs == 0
        || a.batch_size == 0
        || !(0.0..1.0).contains(&a.validation_share)
        || a.validation_share == 0.0
    {
        return Err(usage(
            "--epochs and --batch-size must be at least 1 and --validation-share in (0, 1)",
        ));
    }
    if !(0.5..1.0).contains(&a.target_sensitivity) {
        return Err(usage("--target-sensitivity must be in [0.5, 1)"));
    }
    let (manifest, images) = match (&a.exported, &a.manifest, &a.images) {
        (Some(e), _, _) => (e.manifest.clone(), e.images.clone()),
        (None, Some(m), Some(i)) => (m.clone(), i.clone()),
        _ => return Err(usage("give --manifest with --images, or --from-study")),
    };
    let rows = osteo_model::manifest::read(&manifest).map_err(usage)?;
    let record = match &a.exported {
        Some(e) => e.record.clone(),
        None => TrainingSetRecord::of(
            &rows,
            &manifest,
            &images,
            format!("the manifest {}", manifest.display()),
        )
        .map_err(usage)?,
    };
    eprintln!(
        "loading {} cases at {}×{} …",
        rows.len(),
        net.image_size,
        net.image_size
    );
    let samples = data::load(&rows, &images, net.image_size).map_err(usage)?;
    let set = TrainingSet {
        samples: &samples,
        manifest_sha256: card::file_sha256(&manifest).map_err(usage)?,
        description: format!(
            "{} cases ({} benign, {} malignant) from {}",
            rows.len(),
            record.benign,
            record.malignant,
            record.source
        ),
        demo: a.demo,
        record: Some(record),
    };
    train_with_progress(&set, &net, &cfg, &a.out, a.resume)
}

fn fl_train(a: &FlTrainArgs) -> anyhow::Result<Value> {
    let cfg = federated::LocalConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        weight_decay: a.weight_decay,
        proximal_mu: a.proximal_mu,
        validation_share: a.validation_share,
        seed: a.seed,
        round: a.round,
        augment: !a.no_augment,
    };
    // Checked before the images are read; the library's words, the flags'
    // names.
    cfg.check().map_err(|_| {
        usage(
            "--epochs and --batch-size at least 1, --validation-share in [0, 1), --proximal-mu ≥ 0 and --learning-rate > 0",
        )
    })?;
    let config = federated::config_of(&a.input).map_err(usage)?;
    let rows = osteo_model::manifest::read(&a.manifest).map_err(usage)?;
    let samples = data::load(&rows, &a.images, config.image_size).map_err(usage)?;
    let metrics = federated::local_train(&a.input, &samples, &cfg, &a.out).map_err(usage)?;
    let mut out = serde_json::to_value(&metrics)?;
    out["out_sha256"] = json!(card::file_sha256(&a.out).map_err(usage)?);
    Ok(out)
}

fn train_with_progress(
    set: &TrainingSet<'_>,
    net: &NetConfig,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
) -> anyhow::Result<osteo_model::ModelCard> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut report = progress_reporter();
    train::train(set, net, cfg, out, resume, &mut report).map_err(anyhow::Error::msg)
}

/// A progress bar on stderr: steps of the epoch with the loss, and one line
/// per epoch with the validation AUC.
fn progress_reporter() -> impl FnMut(train::Event) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix:>3} [{bar:30}] {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut last_auc = String::from("val AUC –");
    // Lines stay in the log when stderr is not a terminal (the bar is then hidden).
    let say = |bar: &indicatif::ProgressBar, line: String| {
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    move |event| match event {
        train::Event::Started {
            n_train,
            n_validation,
            steps_per_epoch,
            resumed_at,
        } => {
            bar.set_length(steps_per_epoch as u64);
            say(&bar, format!(
                "training on {n_train} cases, validating on {n_validation} (grouped by patient){}",
                if resumed_at > 0 { format!(", resuming after epoch {resumed_at}") } else { String::new() }
            ));
        }
        train::Event::Step { epoch, step, loss } => {
            bar.set_prefix((epoch + 1).to_string());
            bar.set_position(step as u64 + 1);
            bar.set_message(format!("loss {loss:.4}  {last_auc}"));
        }
        train::Event::Epoch(m) => {
            last_auc = format!("val AUC {:.4}", m.validation_auc);
            say(
                &bar,
                format!(
                    "epoch {:>3}  lr {:.2e}  loss {:.4}  val AUC {:.4}{}",
                    m.epoch,
                    m.learning_rate,
                    m.train_loss,
                    m.validation_auc,
                    if m.best { "  (best)" } else { "" }
                ),
            );
            bar.reset();
        }
    }
}

/// Rebuilds the demo model into `out`.
fn build_demo(out: &Path) -> anyhow::Result<osteo_model::ModelCard> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut report = progress_reporter();
    osteo_model::demo::build(out, &mut report).map_err(anyhow::Error::msg)
}

fn bench(a: &BenchArgs) -> anyhow::Result<Value> {
    use osteo_model::bench;
    if a.image_size < 16 || a.views == 0 || a.views > 3 || a.iterations == 0 || a.train_batch == 0 {
        return Err(usage(
            "--image-size ≥ 16, --views 1–3, --iterations and --train-batch ≥ 1",
        ));
    }
    let device = osteo_model::device(&a.backend).map_err(usage)?;
    let config = NetConfig::new()
        .with_image_size(a.image_size)
        .with_channels(a.channels.clone());
    let rss_start = bench::peak_rss_mib();
    let net = bench::fresh(&config, &device).map_err(usage)?;
    let inference = bench::inference(&net, &config, a.views, a.iterations, &device)
        .map_err(anyhow::Error::msg)?;
    let rss_inference = bench::peak_rss_mib();
    let with_heatmaps =
        bench::inference_with_heatmaps(&config, a.views, a.iterations.div_ceil(2), &device)
            .map_err(anyhow::Error::msg)?;
    let rss_heatmaps = bench::peak_rss_mib();
    let training = bench::training_step(&config, a.train_batch, a.views, a.train_steps, &device)
        .map_err(anyhow::Error::msg)?;
    Ok(json!({
        "backend": a.backend,
        "image_size": a.image_size,
        "views": a.views,
        "channels": a.channels,
        "parameters": osteo_model::burn::module::Module::num_params(&net),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "inference_ms_per_case": inference,
        "inference_with_heatmaps_ms_per_case": with_heatmaps,
        "train_batch_cases": a.train_batch,
        "train_step_ms": training,
        "train_images_per_second": (a.train_batch * a.views) as f64 / (training.mean / 1e3),
        "peak_rss_mib_at_start": rss_start,
        "peak_rss_mib_after_inference": rss_inference,
        "peak_rss_mib_after_heatmaps": rss_heatmaps,
        "peak_rss_mib_after_training": bench::peak_rss_mib(),
    }))
}

/// The AUC-per-round chart of a federation (SVG): one line per column of
/// `table` after the round, and dashed reference lines.
fn rounds_chart(table: &str, references: &[(String, f64)]) -> Result<String, String> {
    use plotters::prelude::*;
    let mut lines = table.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("the table is empty")?
        .split('\t')
        .collect();
    if header.len() < 2 {
        return Err("the table needs a round column and at least one AUC column".into());
    }
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); header.len() - 1];
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        let round: f64 = cells[0]
            .trim()
            .parse()
            .map_err(|_| format!("line {}: the round is not a number", n + 2))?;
        for (i, s) in series.iter_mut().enumerate() {
            let v: f64 = cells
                .get(i + 1)
                .and_then(|c| c.trim().parse().ok())
                .ok_or_else(|| format!("line {}: column {} is not a number", n + 2, i + 2))?;
            s.push((round, v));
        }
    }
    let last = series.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max);
    let colours = [
        RGBColor(31, 97, 141),
        RGBColor(196, 78, 28),
        RGBColor(60, 130, 60),
    ];
    let ink = RGBColor(40, 40, 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    "Pooled test AUC of the global model per round",
                    ("sans-serif", 22).into_font().color(&ink),
                )
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..last, 0.4..1.0)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .x_labels(last as usize + 1)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .x_desc("round")
                .y_desc("AUC")
                .label_style(("sans-serif", 16).into_font().color(&ink))
                .axis_desc_style(("sans-serif", 16).into_font().color(&ink))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let colour = colours[i % colours.len()];
                chart
                    .draw_series(LineSeries::new(s.iter().copied(), colour.stroke_width(3)))?
                    .label(header[i + 1])
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                    });
                chart.draw_series(s.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
            }
            for (name, value) in references {
                let grey = RGBColor(110, 110, 110);
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(0.0, *value), (last, *value)],
                        6,
                        4,
                        grey.stroke_width(2),
                    ))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 16).into_font().color(&ink))
                .draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// `fl-evaluate --scores`: one row per judged case.
fn write_scores(path: &Path, scores: &[(String, f32, f32)]) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)
        .with_context(|| format!("cannot write the scores to {}", path.display()))?;
    out.write_record(["case_id", "label", "score"])?;
    for (case, label, score) in scores {
        out.write_record([case.as_str(), &format!("{label}"), &format!("{score}")])?;
    }
    out.flush()?;
    Ok(())
}
