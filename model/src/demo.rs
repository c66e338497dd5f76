//! The embedded demo model: trained deterministically on synthetic phantoms
//! by [`build`] (`osteo-edc model demo --out model/demo`), committed under
//! `model/demo/` (about 1 MB) and compiled into the binary, so the first
//! start of the server has a working model without any download. Every
//! output of it is labelled [`crate::DEMO_LABEL`].

use crate::error::ModelError;
use std::path::{Path, PathBuf};

use crate::card::{self, ModelCard, ModelDir};
use crate::net::NetConfig;
use crate::phantom::{self, PhantomConfig};
use crate::train::{self, Event, TrainConfig, TrainingSet};

/// Phantoms the demo model is trained on, and their seed.
pub const PHANTOMS: usize = 320;
pub const SEED: u64 = 20_261_127;
/// The demonstration views' size: a 205 × 256 mm detector at 0.2 mm.
pub const PHANTOM_WIDTH: usize = 1024;
pub const PHANTOM_HEIGHT: usize = 1280;

/// The committed files, compiled in.
pub const FILES: &[(&str, &[u8])] = &[
    (card::WEIGHTS, include_bytes!("../demo/model.bpk")),
    (card::CONFIG, include_bytes!("../demo/config.json")),
    (card::TRAINING, include_bytes!("../demo/training.json")),
    (card::METRICS, include_bytes!("../demo/metrics.json")),
    (card::CARD, include_bytes!("../demo/card.json")),
    (card::CARD_MD, include_bytes!("../demo/MODEL_CARD.md")),
];

/// The demo network: smaller than the default (128² views), so that it
/// trains in minutes on a laptop CPU.
pub fn net() -> NetConfig {
    NetConfig::new()
        .with_image_size(128)
        .with_channels(vec![12, 24, 48])
        .with_attention_hidden(16)
        .with_clinical_hidden(16)
        .with_fusion_hidden(32)
}

pub fn training() -> TrainConfig {
    TrainConfig::new()
        .with_epochs(24)
        .with_batch_size(16)
        .with_patience(8)
        .with_warmup_epochs(10)
        .with_seed(SEED)
}

/// Writes the embedded demo model into `models/<model id>/` (once) and
/// returns that directory, checked against its card.
pub fn install(models: &Path) -> Result<PathBuf, ModelError> {
    let card_json = FILES
        .iter()
        .find(|(n, _)| *n == card::CARD)
        .map(|(_, b)| *b)
        .ok_or_else(|| ModelError::Card("the demo model has no card".into()))?;
    let card: ModelCard = serde_json::from_slice(card_json)
        .map_err(|e| ModelError::Card(format!("demo card: {e}")))?;
    let dir = models.join(&card.model_id);
    if !dir.join(card::CARD).exists() {
        let tmp = models.join(format!(".{}.{}.tmp", card.model_id, std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| ModelError::file(&tmp, e))?;
        for (name, bytes) in FILES {
            std::fs::write(tmp.join(name), bytes)
                .map_err(|e| ModelError::file(&tmp.join(name), e))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| ModelError::file(&dir, e))?;
    }
    ModelDir::open(&dir)?;
    Ok(dir)
}

/// Rebuilds the demo model into `out`: generates the phantoms under
/// `out/phantoms` (removed afterwards), trains, writes the model directory.
pub fn build(out: &Path, progress: &mut dyn FnMut(Event)) -> Result<ModelCard, ModelError> {
    let images = out.join("phantoms");
    let cfg = PhantomConfig {
        width: PHANTOM_WIDTH,
        height: PHANTOM_HEIGHT,
        label_noise: 0.03,
        seed: SEED,
        lesion: true,
        realistic: true,
        shift: Default::default(),
    };
    phantom::write_set(PHANTOMS, &cfg, &images)?;
    let manifest = images.join("manifest.csv");
    let rows = crate::manifest::read(&manifest)?;
    let net = net();
    let samples = crate::data::load(&rows, &images, net.image_size)?;
    let set = TrainingSet {
        samples: &samples,
        manifest_sha256: card::file_sha256(&manifest)?,
        description: format!(
            "{PHANTOMS} synthetic radiograph phantoms (osteo-edc model phantoms --n {PHANTOMS} --seed {SEED} --width {PHANTOM_WIDTH} --height {PHANTOM_HEIGHT} --realistic)"
        ),
        demo: true,
        record: None,
    };
    let card = train::train(&set, &net, &training(), out, false, progress)?;
    let _ = std::fs::remove_dir_all(&images);
    let _ = std::fs::remove_dir_all(out.join("checkpoint"));
    Ok(card)
}
