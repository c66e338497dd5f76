//! Server-side inference: when a case's reads are locked, the model runs on
//! the case's stored views, its clinical CRF and the Bone-RADS score the
//! study's setting names (the first assigned reader's, or the readers'
//! consensus), and the prediction is written and locked through
//! `trial::case::record_prediction` (the system principal; written once,
//! never updated). Only the model the principal investigator pinned runs:
//! while another model (or none) is pinned, cases wait at "awaiting AI".
//!
//! One worker task takes cases from the queue (`awaiting_ai`: reads locked,
//! no prediction) when woken after a read is signed and every few seconds;
//! each run goes to a blocking thread, at most `ai_workers` at a time, so
//! the async threads never compute. A failed run is recorded on the case
//! (`ai_failures`, audited) and retried after a back-off, at most
//! [`MAX_ATTEMPTS`] times; a prediction is never invented.
//!
//! Several servers may share one database (docs/operations.md, "More than
//! one server"): before a run the worker takes the case's lease
//! (`case::claim_for_ai`, one statement on either engine), so one server
//! runs the model on a case at a time, and gives it back after. A server
//! that stops in the middle of a run leaves its lease to run out
//! (`--ai-lease-seconds`, 120 by default), after which another server takes
//! the case over. Should a run ever outlast its lease and a second server
//! compute the same case, the prediction is still recorded once: the
//! database takes one prediction per case.
//!
//! The model in use is chosen by configuration (`--model DIR`). The
//! demonstration study installs and pins the embedded demo model by
//! default; the trial never runs it (without `--model DIR` its cases wait for
//! a model). A model directory whose files do not match its card's hashes
//! stops the server from starting.

use osteo_trial::domain::{Probability, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use osteo_model::clinical as vocabulary;
use osteo_model::infer::{self, Predictor};
use osteo_model::pixels::Grey;
use osteo_model::{Clinical, ModelCard};
use osteo_trial::audit::Principal;
use osteo_trial::case::crf;
use osteo_trial::case::{self, AiInput, CaseError, DomainFlag, PredictionInput, View};
use osteo_trial::store::Db;
use osteo_trial::study::{self, PinRequest};
use tokio::sync::Semaphore;

use crate::imaging::storage::ObjectStore;

/// Runs per case before the case is left for an operator to look at.
pub const MAX_ATTEMPTS: i64 = 5;

/// Which model the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// The demo model in the demonstration study, none in the trial.
    Default,
    /// The demo model embedded in the binary, installed under the data
    /// directory (demonstration study only).
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
            "default" => ModelChoice::Default,
            "demo" => ModelChoice::Demo,
            "none" | "off" => ModelChoice::Off,
            dir => ModelChoice::Dir(PathBuf::from(dir)),
        })
    }
}

/// The model directory a choice names in a study of `kind` (installing the
/// demo when needed). The demo model never runs in the trial: asked for
/// explicitly it stops the start; by default the trial runs no model.
pub fn model_dir(
    choice: &ModelChoice,
    kind: osteo_trial::domain::StudyKind,
    data_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    use osteo_trial::domain::StudyKind;
    Ok(match (choice, kind) {
        (ModelChoice::Off, _) | (ModelChoice::Default, StudyKind::Trial) => None,
        (ModelChoice::Dir(d), _) => Some(d.clone()),
        (ModelChoice::Demo, StudyKind::Trial) => anyhow::bail!(
            "--model demo: the demonstration model never runs in the trial; \
             give the trained model's directory (--model DIR)"
        ),
        (ModelChoice::Demo | ModelChoice::Default, StudyKind::Demo) => Some(
            osteo_model::demo::install(&data_dir.join("models"))
                .map_err(anyhow::Error::msg)
                .context("installing the embedded demo model")?,
        ),
    })
}

/// The loaded model and its queue.
/// How long a lease on a case holds by default: far longer than a run.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

pub struct Ai {
    predictor: Arc<Predictor>,
    workers: Arc<Semaphore>,
    /// This process's name on the leases it takes.
    holder: String,
    /// How long a lease holds a case.
    lease: Duration,
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
            workers: Arc::new(Semaphore::new(workers.max(1))),
            holder: format!("pid{}-{:016x}", std::process::id(), rand::random::<u64>()),
            lease: DEFAULT_LEASE,
            not_before: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// How long this server's lease on a case holds (see the module's text).
    pub fn with_lease(mut self, lease: Duration) -> Ai {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    pub fn card(&self) -> &ModelCard {
        &self.predictor.dir.card
    }

    /// What the pages and the API show of the model this server runs.
    pub fn running(&self) -> RunningModel {
        let card = self.card();
        RunningModel {
            model_id: card.model_id.clone(),
            weights_sha256: card.weights_sha256.clone(),
            demo: card.demo,
            label: self.predictor.dir.label().map(str::to_owned),
        }
    }

    /// Whether this model is the one pinned for the study.
    pub fn is_pinned(&self, pin: Option<&study::ModelPin>) -> bool {
        let card = self.card();
        pin.is_some_and(|p| p.model_id == card.model_id && p.weights_sha256 == card.weights_sha256)
    }

    /// The worker: runs until the task is dropped. It looks at the queue
    /// when the trial announces locked reads or a pinned model
    /// (`osteo_trial::events`), and every few seconds in any case (cases
    /// that a failure put back, work another server's services announced).
    pub async fn run(self: Arc<Self>, db: Db, images: Arc<dyn ObjectStore>) {
        let system = Principal::system();
        let mut events = db.events().subscribe();
        let in_flight = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let mut warned = false;
        loop {
            // Only the pinned model runs: another one's prediction would be
            // refused, so its cases are left waiting (the pages say why).
            let pinned = match study::pinned_model(&db).await {
                Ok(p) => self.is_pinned(p.as_ref()),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the pinned model failed");
                    false
                }
            };
            if !pinned && !warned {
                tracing::warn!(
                    model_id = %self.card().model_id,
                    "this model is not the one pinned for the study: cases wait at \"awaiting AI\" until the principal investigator pins it"
                );
            }
            warned = !pinned;
            let queue = if pinned {
                case::awaiting_ai(&db, &system).await
            } else {
                Ok(Vec::new())
            };
            match queue {
                Ok(ids) => {
                    for id in ids {
                        if self.backing_off(id) {
                            continue;
                        }
                        if !in_flight.lock().map(|mut s| s.insert(id)).unwrap_or(false) {
                            continue;
                        }
                        let case = osteo_trial::domain::CaseId::new(id);
                        match case::claim_for_ai(&db, &system, case, &self.holder, self.lease).await
                        {
                            Ok(true) => {}
                            Ok(false) => {
                                // Another server runs it, or ran it and its
                                // lease has not run out yet.
                                if let Ok(mut s) = in_flight.lock() {
                                    s.remove(&id);
                                }
                                continue;
                            }
                            Err(e) => {
                                tracing::warn!(case_id = id, error = %e, "taking the case's lease failed");
                                if let Ok(mut s) = in_flight.lock() {
                                    s.remove(&id);
                                }
                                continue;
                            }
                        }
                        let Ok(permit) = self.workers.clone().acquire_owned().await else {
                            return;
                        };
                        let (this, db, images, in_flight) =
                            (self.clone(), db.clone(), images.clone(), in_flight.clone());
                        tokio::spawn(async move {
                            this.attempt(&db, &images, id).await;
                            if let Err(e) = case::release_ai_claim(
                                &db,
                                &Principal::system(),
                                case,
                                &this.holder,
                            )
                            .await
                            {
                                tracing::warn!(case_id = id, error = %e, "giving the lease back failed");
                            }
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
                _ = events.recv() => {},
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
        let case = osteo_trial::domain::CaseId::new(case_id);
        let system = Principal::system();
        let input = match case::ai_input(db, &system, case).await {
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
            Ok(prediction) => case::record_prediction(db, &system, case, prediction)
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
            if let Err(e) = case::record_ai_failure(db, &system, case, &model_id, &error).await {
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
        // Frontal first, then lateral, then oblique; in upload order within a view.
        chosen.sort_by_key(|i| {
            (
                match i.view {
                    View::Frontal => 0,
                    View::Lateral => 1,
                    View::Oblique => 2,
                },
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
        let (prediction, overlays, domain) = tokio::task::spawn_blocking(move || {
            let (views, spacing): (Vec<Grey>, Vec<Option<f64>>) = files
                .iter()
                .map(|bytes| {
                    let obj = dicom_object::OpenFileOptions::new()
                        .from_reader(std::io::Cursor::new(bytes))
                        .map_err(|e| e.to_string())?;
                    let grey = Grey::from_dicom(&obj).map_err(|e| e.to_string())?;
                    Ok((grey, osteo_model::pixels::pixel_spacing_mm(&obj)))
                })
                .collect::<Result<Vec<_>, String>>()?
                .into_iter()
                .unzip();
            let (prediction, domain) = predictor
                .predict_judged(&views, &spacing, &clinical, true)
                .map_err(|e| e.to_string())?;
            let overlays = views
                .iter()
                .zip(&prediction.heatmaps)
                .map(|(v, h)| infer::overlay_png(v, h, 1024))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((prediction, overlays, domain))
        })
        .await
        .map_err(|e| format!("the model run stopped: {e}"))??;
        let mut heatmaps = Vec::new();
        for png in overlays {
            let sha = Sha256::of(&png);
            images
                .put(sha.as_str(), &png)
                .await
                .map_err(|e| e.to_string())?;
            heatmaps.push(sha);
        }
        // The model's numbers and the stored hashes are parsed here, where
        // they enter the trial's record.
        let card = self.card();
        let text = |e: osteo_trial::domain::IdError| e.to_string();
        Ok(PredictionInput {
            probability: Probability::try_from(prediction.probability).map_err(text)?,
            threshold: Probability::try_from(card.threshold).map_err(text)?,
            model_id: card.model_id.clone(),
            weights_sha256: card.weights_sha256.parse().map_err(text)?,
            image_sha256: chosen
                .iter()
                .map(|i| i.sha256.parse())
                .collect::<Result<_, _>>()
                .map_err(text)?,
            heatmaps,
            bone_rads_source: input.bone_rads_source,
            domain: domain.map(|d| DomainFlag {
                outside: d.outside,
                reasons: d.reasons,
            }),
        })
    }
}

/// What the pages and the API show of the model a server runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunningModel {
    pub model_id: String,
    pub weights_sha256: String,
    pub demo: bool,
    /// "demo model, trained on synthetic images, not for clinical use" for a demo model.
    pub label: Option<String>,
}

/// What pinning the model a server runs records: its id, weights SHA-256
/// and card (`None` when the server runs no model).
pub fn pin_request(ai: Option<&Ai>) -> Option<PinRequest> {
    let card = ai?.card();
    Some(PinRequest {
        model_id: card.model_id.clone(),
        weights_sha256: card.weights_sha256.clone(),
        card_json: serde_json::to_string(card).ok()?,
        demo: card.demo,
    })
}

/// The model's clinical input from the CRF and the study's Bone-RADS score.
fn clinical_of(input: &AiInput) -> Clinical {
    clinical(&input.crf, input.bone_rads)
}

/// The model's clinical input from a clinical CRF and a Bone-RADS score (the
/// prediction's input, and a training case's).
pub fn clinical(
    crf: &crf::ClinicalCrf,
    bone_rads: Option<osteo_trial::case::bonerads::Score>,
) -> Clinical {
    Clinical {
        age_years: crf.age_years.map(f32::from),
        sex: crf.sex.map(model_sex),
        bone: crf.bone.and_then(model_bone),
        longitudinal: crf.longitudinal.map(model_longitudinal),
        symptoms: crf.symptoms.iter().copied().map(model_symptom).collect(),
        pathological_fracture: crf.pathological_fracture,
        known_primary_malignancy: crf.known_primary_malignancy,
        bone_rads_points: bone_rads.and_then(|s| s.points).map(f32::from),
        bone_rads_category: bone_rads.map(|s| s.category),
    }
}

// The CRF's codes in the model's vocabulary: every CRF code is mapped here
// on purpose (a new one does not compile until it is), and a test checks
// each mapping against the model's own codes.

fn model_sex(s: crf::Sex) -> vocabulary::Sex {
    match s {
        crf::Sex::Female => vocabulary::Sex::Female,
        crf::Sex::Male => vocabulary::Sex::Male,
    }
}

/// `None`: the model has no category for the bone; it sees "missing".
fn model_bone(b: crf::Bone) -> Option<vocabulary::Bone> {
    use vocabulary::Bone as M;
    Some(match b {
        crf::Bone::Femur => M::Femur,
        crf::Bone::Tibia => M::Tibia,
        crf::Bone::Fibula => M::Fibula,
        crf::Bone::Patella => M::Patella,
        crf::Bone::Humerus => M::Humerus,
        crf::Bone::Radius => M::Radius,
        crf::Bone::Ulna => M::Ulna,
        crf::Bone::Hand => M::Hand,
        crf::Bone::Foot => M::Foot,
        // A limb bone outside the list the model was trained on: passed as
        // missing rather than forced into a category it never saw.
        crf::Bone::OtherLimb => return None,
    })
}

fn model_longitudinal(l: crf::Longitudinal) -> vocabulary::Longitudinal {
    use vocabulary::Longitudinal as M;
    match l {
        crf::Longitudinal::Epiphysis => M::Epiphysis,
        crf::Longitudinal::Metaphysis => M::Metaphysis,
        crf::Longitudinal::Metadiaphysis => M::Metadiaphysis,
        crf::Longitudinal::Diaphysis => M::Diaphysis,
    }
}

fn model_symptom(s: crf::Symptom) -> vocabulary::Symptom {
    use vocabulary::Symptom as M;
    match s {
        crf::Symptom::Pain => M::Pain,
        crf::Symptom::NightPain => M::NightPain,
        crf::Symptom::PalpableMass => M::PalpableMass,
        crf::Symptom::Swelling => M::Swelling,
        crf::Symptom::LimitedMotion => M::LimitedMotion,
    }
}

/// The PNG of view `n`'s heat-map overlay of a case's locked prediction, for
/// the roles allowed to see AI output (`case::prediction` refuses the
/// blinded ones); `None` while awaiting AI or past the last view.
pub async fn heatmap_png(
    db: &Db,
    images: &dyn ObjectStore,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    n: usize,
) -> Result<Option<Vec<u8>>, CaseError> {
    let Some(prediction) = case::prediction(db, by, case_id).await? else {
        return Ok(None);
    };
    let Some(sha) = prediction.input.heatmaps.get(n) else {
        return Ok(None);
    };
    Ok(images.get(sha.as_str()).await.ok().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRF codes the model deliberately sees as missing.
    const NOT_IN_THE_MODEL: [&str; 1] = ["other_limb"];

    /// Every CRF code reaches the model as the same code, or is on the list
    /// of codes deliberately passed as missing; and every code of the
    /// model's vocabulary is reachable from the CRF.
    #[test]
    fn every_crf_code_has_a_deliberate_place_in_the_models_vocabulary() {
        for b in crf::Bone::ALL {
            match model_bone(*b) {
                Some(m) => assert_eq!(m.as_str(), b.as_str()),
                None => assert!(
                    NOT_IN_THE_MODEL.contains(&b.as_str()),
                    "CRF bone `{b}` has no mapping in the model's vocabulary"
                ),
            }
        }
        for s in crf::Sex::ALL {
            assert_eq!(model_sex(*s).as_str(), s.as_str());
        }
        for l in crf::Longitudinal::ALL {
            assert_eq!(model_longitudinal(*l).as_str(), l.as_str());
        }
        for s in crf::Symptom::ALL {
            assert_eq!(model_symptom(*s).as_str(), s.as_str());
        }
        for m in vocabulary::Bone::ALL {
            assert!(crf::Bone::ALL.iter().any(|b| model_bone(*b) == Some(*m)));
        }
        assert_eq!(vocabulary::Sex::ALL.len(), crf::Sex::ALL.len());
        assert_eq!(vocabulary::Symptom::ALL.len(), crf::Symptom::ALL.len());
        assert_eq!(
            vocabulary::Longitudinal::ALL.len(),
            crf::Longitudinal::ALL.len()
        );
    }
}
