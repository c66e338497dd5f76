//! Server-side inference: when a case's reads are locked, the model runs on
//! the case's stored views, its clinical CRF and the primary reader's
//! Bone-RADS score, and the prediction is written and locked through
//! `trial::case::record_prediction` (the system principal; written once,
//! never updated).
//!
//! One worker task takes cases from the queue (`awaiting_ai`: reads locked,
//! no prediction) when woken after a read is signed and every few seconds;
//! each run goes to a blocking thread, at most `ai_workers` at a time, so
//! the async threads never compute. A failed run is recorded on the case
//! (`ai_failures`, audited) and retried after a back-off, at most
//! [`MAX_ATTEMPTS`] times; a prediction is never invented.
//!
//! The model in use is chosen by configuration (`--model DIR`); by default
//! the embedded demo model is installed into the data directory at first
//! start. A model directory whose files do not match its card's hashes
//! stops the server from starting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use osteo_model::infer::{self, Predictor};
use osteo_model::pixels::Grey;
use osteo_model::{Clinical, ModelCard};
use osteo_trial::audit::Principal;
use osteo_trial::case::{self, AiInput, CaseError, PredictionInput};
use osteo_trial::store::Db;
use tokio::sync::{Notify, Semaphore};

use crate::imaging::storage::ObjectStore;

/// Runs per case before the case is left for an operator to look at.
pub const MAX_ATTEMPTS: i64 = 5;

/// Which model the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// The demo model embedded in the binary, installed under the data directory.
    Demo,
    /// A trained model directory (weights, config, card).
    Dir(PathBuf),
    /// No model: cases wait at "awaiting AI" (for a site where the model runs elsewhere, and for tests).
    Off,
}

impl std::str::FromStr for ModelChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "demo" => ModelChoice::Demo,
            "none" | "off" => ModelChoice::Off,
            dir => ModelChoice::Dir(PathBuf::from(dir)),
        })
    }
}

/// The model directory a choice names (installing the demo when needed).
pub fn model_dir(choice: &ModelChoice, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    Ok(match choice {
        ModelChoice::Off => None,
        ModelChoice::Dir(d) => Some(d.clone()),
        ModelChoice::Demo => Some(
            osteo_model::demo::install(&data_dir.join("models"))
                .map_err(anyhow::Error::msg)
                .context("installing the embedded demo model")?,
        ),
    })
}

/// The loaded model and its queue.
pub struct Ai {
    predictor: Arc<Predictor>,
    wake: Notify,
    workers: Arc<Semaphore>,
    /// Cases to leave alone until the given time (back-off after a failure).
    not_before: std::sync::Mutex<std::collections::HashMap<i64, Instant>>,
}

impl Ai {
    /// Opens and checks the model (refusing one whose files do not match its
    /// card) on the named burn backend (`flex` unless the build has others).
    pub fn load(dir: &Path, workers: usize, backend: &str) -> anyhow::Result<Ai> {
        let device = osteo_model::device(backend).map_err(anyhow::Error::msg)?;
        let predictor = Predictor::open(dir, &device)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("loading the model in {}", dir.display()))?;
        Ok(Ai {
            predictor: Arc::new(predictor),
            wake: Notify::new(),
            workers: Arc::new(Semaphore::new(workers.max(1))),
            not_before: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn card(&self) -> &ModelCard {
        &self.predictor.dir.card
    }

    /// Wakes the worker (after a read is signed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The worker: runs until the task is dropped.
    pub async fn run(self: Arc<Self>, db: Db, images: Arc<dyn ObjectStore>) {
        let system = Principal::system();
        let in_flight = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        loop {
            match case::awaiting_ai(&db, &system).await {
                Ok(ids) => {
                    for id in ids {
                        if self.backing_off(id) {
                            continue;
                        }
                        if !in_flight.lock().map(|mut s| s.insert(id)).unwrap_or(false) {
                            continue;
                        }
                        let Ok(permit) = self.workers.clone().acquire_owned().await else {
                            return;
                        };
                        let (this, db, images, in_flight) =
                            (self.clone(), db.clone(), images.clone(), in_flight.clone());
                        tokio::spawn(async move {
                            this.attempt(&db, &images, id).await;
                            if let Ok(mut s) = in_flight.lock() {
                                s.remove(&id);
                            }
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the model's queue failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {},
                () = tokio::time::sleep(Duration::from_secs(5)) => {},
            }
        }
    }

    fn backing_off(&self, case_id: i64) -> bool {
        let now = Instant::now();
        self.not_before
            .lock()
            .map(|m| m.get(&case_id).is_some_and(|t| *t > now))
            .unwrap_or(false)
    }

    fn back_off(&self, case_id: i64, wait: Duration) {
        if let Ok(mut m) = self.not_before.lock() {
            m.insert(case_id, Instant::now() + wait);
        }
    }

    async fn attempt(&self, db: &Db, images: &Arc<dyn ObjectStore>, case_id: i64) {
        let system = Principal::system();
        let input = match case::ai_input(db, &system, case_id).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(case_id, error = %e, "the case's model input cannot be read");
                return;
            }
        };
        if input.failures >= MAX_ATTEMPTS {
            // Given up: shown on the case; looked at again hourly.
            self.back_off(case_id, Duration::from_secs(3600));
            return;
        }
        let model_id = self.card().model_id.clone();
        let result = self.predict(images, &input).await;
        let outcome = match result {
            Ok(prediction) => case::record_prediction(db, &system, case_id, prediction)
                .await
                .map(|p| tracing::info!(case_id, model_id = %p.input.model_id, "prediction locked"))
                .map_err(|e| match e {
                    // Another worker got there first, or the case moved on: nothing to record.
                    CaseError::PredictionExists | CaseError::Transition(_) => None,
                    e => Some(e.to_string()),
                }),
            Err(e) => Err(Some(e)),
        };
        if let Err(Some(error)) = outcome {
            tracing::warn!(case_id, attempt = input.failures + 1, %error, "the model run failed");
            if let Err(e) = case::record_ai_failure(db, &system, case_id, &model_id, &error).await {
                tracing::warn!(case_id, error = %e, "recording the failed run failed");
            }
            // The next sweeps leave the case alone for 2, 4, 8, … seconds;
            // the worker slot is free for other cases meanwhile.
            self.back_off(
                case_id,
                Duration::from_secs(2u64 << input.failures.clamp(0, 6)),
            );
        }
    }

    /// Loads the views, runs the model off the async threads, stores the
    /// heat-map overlays, and gives the prediction record.
    async fn predict(
        &self,
        images: &Arc<dyn ObjectStore>,
        input: &AiInput,
    ) -> Result<PredictionInput, String> {
        let max = self.predictor.dir.config.max_views;
        let mut chosen: Vec<&case::CaseImage> = input.images.iter().collect();
        chosen.sort_by_key(|i| {
            (
                i.view.as_str() != "frontal",
                i.view.as_str() != "lateral",
                i.id,
            )
        });
        chosen.truncate(max);
        if chosen.is_empty() {
            return Err("the case has no stored view".into());
        }
        let mut files = Vec::new();
        for image in &chosen {
            let bytes = images
                .get(&image.sha256)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("stored view {} is missing", image.sha256))?;
            files.push(bytes);
        }
        let clinical = clinical_of(input);
        let predictor = self.predictor.clone();
        let (prediction, overlays) = tokio::task::spawn_blocking(move || {
            let views = files
                .iter()
                .map(|bytes| {
                    let obj = dicom_object::OpenFileOptions::new()
                        .from_reader(std::io::Cursor::new(bytes))
                        .map_err(|e| e.to_string())?;
                    Grey::from_dicom(&obj).map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, String>>()?;
            let prediction = predictor.predict(&views, &clinical, true)?;
            let overlays = views
                .iter()
                .zip(&prediction.heatmaps)
                .map(|(v, h)| infer::overlay_png(v, h, 1024))
                .collect::<Result<Vec<_>, String>>()?;
            Ok::<_, String>((prediction, overlays))
        })
        .await
        .map_err(|e| format!("the model run stopped: {e}"))??;
        let mut heatmaps = Vec::new();
        for png in overlays {
            let sha = crate::imaging::sha256_hex(&png);
            images.put(&sha, &png).await.map_err(|e| e.to_string())?;
            heatmaps.push(sha);
        }
        let card = self.card();
        Ok(PredictionInput {
            probability: prediction.probability,
            threshold: card.threshold,
            model_id: card.model_id.clone(),
            weights_sha256: card.weights_sha256.clone(),
            image_sha256: chosen.iter().map(|i| i.sha256.clone()).collect(),
            heatmaps,
            bone_rads_source: "primary_reader".into(),
        })
    }
}

/// The model's clinical input from the CRF and the primary read.
fn clinical_of(input: &AiInput) -> Clinical {
    let crf = &input.crf;
    let code = |c: Option<&str>| c.map(str::to_owned);
    Clinical {
        age_years: crf.age_years.map(f32::from),
        sex: code(crf.sex.map(|s| s.as_str())),
        bone: code(crf.bone.map(|b| b.as_str())),
        longitudinal: code(crf.longitudinal.map(|l| l.as_str())),
        symptoms: crf.symptoms.iter().map(|s| s.as_str().to_owned()).collect(),
        pathological_fracture: crf.pathological_fracture,
        known_primary_malignancy: crf.known_primary_malignancy,
        bone_rads_points: input
            .primary_read
            .score
            .as_ref()
            .and_then(|s| s.points)
            .map(f32::from),
        bone_rads_category: input.primary_read.score.as_ref().map(|s| s.category),
    }
}

/// The PNG of view `n`'s heat-map overlay of a case's locked prediction, for
/// the roles allowed to see AI output (`case::prediction` refuses the
/// blinded ones); `None` while awaiting AI or past the last view.
pub async fn heatmap_png(
    state: &crate::startup::AppState,
    by: &Principal,
    case_id: i64,
    n: usize,
) -> Result<Option<Vec<u8>>, CaseError> {
    let Some(prediction) = case::prediction(&state.db, by, case_id).await? else {
        return Ok(None);
    };
    let Some(sha) = prediction.input.heatmaps.get(n) else {
        return Ok(None);
    };
    Ok(state.images.get(sha).await.ok().flatten())
}
