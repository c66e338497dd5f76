//! A model directory and its card.
//!
//! ```text
//! model.bpk      the weights (burnpack)
//! config.json    the architecture (NetConfig)
//! training.json  the training settings (TrainConfig)
//! metrics.json   loss and validation AUC per epoch
//! card.json      the model card (below); MODEL_CARD.md is the same for people
//! ```
//! The card holds the SHA-256 of the weights and of the config; a directory
//! whose files do not match its card is refused ([`ModelDir::open`]), so the
//! model that made a prediction is exactly the one its id names.

use crate::error::ModelError;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::TrainingDomain;
use crate::net::NetConfig;

pub const WEIGHTS: &str = "model.bpk";
pub const CONFIG: &str = "config.json";
pub const CARD: &str = "card.json";
pub const CARD_MD: &str = "MODEL_CARD.md";
pub const METRICS: &str = "metrics.json";
pub const TRAINING: &str = "training.json";

/// The words every screen and report shows beside a demo model's output.
pub const DEMO_LABEL: &str = "demo model, trained on synthetic images, not for clinical use";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// `osteo-<first 12 hex of the weights' SHA-256>`.
    pub model_id: String,
    /// Free text: what the model is for and what it is not for.
    pub intended_use: String,
    /// Shown with every prediction of a model trained on phantoms.
    pub demo: bool,
    pub weights_sha256: String,
    pub config_sha256: String,
    pub training_manifest_sha256: String,
    /// What the training data were (e.g. "240 synthetic phantoms, seed 7").
    pub training_data: String,
    pub n_train: usize,
    pub n_validation: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub validation_auc: f64,
    /// Temperature `T` of the calibration: probability = σ(logit / T),
    /// fitted on validation by minimising the log-loss.
    pub temperature: f64,
    /// Test positive when the calibrated probability is ≥ this.
    pub threshold: f64,
    /// The sensitivity the threshold was chosen for, on validation.
    pub threshold_rule: String,
    pub validation_sensitivity: f64,
    pub validation_specificity: f64,
    pub validation_brier: f64,
    pub burn_version: String,
    /// What the training views were like, for the out-of-domain flag
    /// ([`crate::domain`]); `None` on a card written before it existed,
    /// whose predictions are not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_domain: Option<TrainingDomain>,
    /// The training set: its SHA-256 over the manifest and every
    /// radiograph, the cases per class and the case identifiers (the study
    /// numbers of a set from the EDC). `None` on the demo model's card and
    /// on cards written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_set: Option<crate::dataset::TrainingSetRecord>,
}

/// The SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::file(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A checked model directory.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub config: NetConfig,
    pub card: ModelCard,
}

impl ModelDir {
    /// Opens `path`, refusing it when a file is missing or the weights or
    /// config do not match the card's hashes.
    pub fn open(path: &Path) -> Result<ModelDir, ModelError> {
        let read = |name: &str| {
            std::fs::read_to_string(path.join(name))
                .map_err(|e| ModelError::file(&path.join(name), e))
        };
        let card: ModelCard = serde_json::from_str(&read(CARD)?)
            .map_err(|e| ModelError::file(&path.join(CARD), e))?;
        let weights = file_sha256(&path.join(WEIGHTS))?;
        if weights != card.weights_sha256 {
            return Err(ModelError::Card(format!(
                "{}: the weights' SHA-256 is {weights}, the card says {}; refusing a model that is not the one its card describes",
                path.display(),
                card.weights_sha256
            )));
        }
        let config_path = path.join(CONFIG);
        let config_bytes =
            std::fs::read(&config_path).map_err(|e| ModelError::file(&config_path, e))?;
        let config_sha = hex::encode(Sha256::digest(&config_bytes));
        if config_sha != card.config_sha256 {
            return Err(ModelError::Card(format!(
                "{}: config.json's SHA-256 is {config_sha}, the card says {}",
                path.display(),
                card.config_sha256
            )));
        }
        let config: NetConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| ModelError::file(&config_path, e))?;
        Ok(ModelDir {
            path: path.to_owned(),
            config,
            card,
        })
    }

    /// The label to print beside the model's output, if any.
    pub fn label(&self) -> Option<&'static str> {
        self.card.demo.then_some(DEMO_LABEL)
    }
}

impl ModelCard {
    /// The card as Markdown, for people.
    pub fn markdown(&self) -> String {
        let demo = if self.demo {
            format!(
                "\n**{}.**\n",
                DEMO_LABEL[..1].to_uppercase() + &DEMO_LABEL[1..]
            )
        } else {
            String::new()
        };
        format!(
            "# Model card: {id}\n{demo}\n\
             {use_}\n\n\
             | | |\n|---|---|\n\
             | weights SHA-256 | `{w}` |\n| config SHA-256 | `{c}` |\n| training manifest SHA-256 | `{m}` |\n\
             | training data | {data} |\n| cases (train / validation, grouped by patient) | {nt} / {nv} |\n\
             | epochs run (best) | {e} ({be}) |\n| validation AUC | {auc:.4} |\n\
             | calibration | temperature scaling, T = {t:.4} |\n\
             | operating threshold | {th:.4} ({rule}) |\n\
             | validation sensitivity / specificity at the threshold | {se:.4} / {sp:.4} |\n\
             | validation Brier score | {brier:.4} |\n| burn | {burn} |\n{domain}",
            id = self.model_id,
            use_ = self.intended_use,
            w = self.weights_sha256,
            c = self.config_sha256,
            m = self.training_manifest_sha256,
            data = self.training_data,
            nt = self.n_train,
            nv = self.n_validation,
            e = self.epochs_run,
            be = self.best_epoch,
            auc = self.validation_auc,
            t = self.temperature,
            th = self.threshold,
            rule = self.threshold_rule,
            se = self.validation_sensitivity,
            sp = self.validation_specificity,
            brier = self.validation_brier,
            burn = self.burn_version,
            domain = self.training_domain.as_ref().map_or(String::new(), |d| {
                let spacing = d.spacing_mm.map_or("not declared".into(), |[lo, hi]| {
                    format!("{lo:.3}–{hi:.3} mm")
                });
                format!(
                    "\n## Training domain\n\n\
                     Predictions on views outside it are flagged \"outside the model's training domain\".\n\n\
                     | | |\n|---|---|\n\
                     | training views | {} |\n| width × height (pixels) | {}–{} × {}–{} |\n\
                     | pixel spacing | {spacing} |\n\
                     | intensity histogram ({} bins), distance limit | {:.3} |\n\
                     | embedding ({} channels), distance limit | {:.3} |\n",
                    d.views,
                    d.width[0],
                    d.width[1],
                    d.height[0],
                    d.height[1],
                    d.histogram.len(),
                    d.histogram_limit,
                    d.embedding_mean.len(),
                    d.embedding_limit,
                )
            }),
        )
    }
}
