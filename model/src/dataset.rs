//! What a training set is, for the model card: one SHA-256 over the
//! manifest and every radiograph it names, the cases per class and the case
//! identifiers (the study numbers, for a set exported from the EDC).
//!
//! The training set's SHA-256 is taken over the manifest's bytes, then, for
//! each row in order and each of its views (frontal, lateral, oblique),
//! the line `<path>\t<SHA-256 of the file>\n`. Anyone holding the exported
//! folder recomputes it with [`training_set_sha256`]; a changed label, CRF
//! field or pixel gives another hash.

use crate::error::ModelError;
use crate::manifest::ManifestRow;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The training set of a model, as its card records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSetRecord {
    /// [`training_set_sha256`] of the manifest and its radiographs.
    pub sha256: String,
    /// Where the cases came from (e.g. "study ChiCTR2500102778, retrospective arm").
    pub source: String,
    pub benign: usize,
    pub malignant: usize,
    /// The cases, by identifier (study numbers for a set from the EDC), in
    /// manifest order.
    pub case_ids: Vec<String>,
    /// How intermediate tumours (ICD-O /1) were labelled: `as_benign`,
    /// `as_malignant`, or `excluded` (then not in the set); `None` when the
    /// manifest came with binary labels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<String>,
    /// Intermediate cases left out under `excluded`.
    #[serde(default)]
    pub intermediate_excluded: usize,
}

impl TrainingSetRecord {
    /// The record of `rows` (read from `manifest`, views under `images`).
    pub fn of(
        rows: &[ManifestRow],
        manifest: &Path,
        images: &Path,
        source: String,
    ) -> Result<TrainingSetRecord, ModelError> {
        let malignant = rows.iter().filter(|r| r.label.is_malignant()).count();
        Ok(TrainingSetRecord {
            sha256: training_set_sha256(rows, manifest, images)?,
            source,
            benign: rows.len() - malignant,
            malignant,
            case_ids: rows.iter().map(|r| r.case_id.clone()).collect(),
            intermediate: None,
            intermediate_excluded: 0,
        })
    }
}

/// The SHA-256 of a manifest and the radiographs of its rows (above).
pub fn training_set_sha256(
    rows: &[ManifestRow],
    manifest: &Path,
    images: &Path,
) -> Result<String, ModelError> {
    let mut hash = Sha256::new();
    hash.update(std::fs::read(manifest).map_err(|e| ModelError::file(manifest, e))?);
    for row in rows {
        for view in row.views() {
            let path = images.join(view);
            let bytes = std::fs::read(&path).map_err(|e| ModelError::file(&path, e))?;
            hash.update(format!("{view}\t{}\n", hex::encode(Sha256::digest(&bytes))).as_bytes());
        }
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{self, PhantomConfig};

    #[test]
    fn the_hash_covers_the_manifest_and_every_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PhantomConfig {
            width: 48,
            height: 64,
            ..PhantomConfig::default()
        };
        phantom::write_set(4, &cfg, dir.path()).unwrap();
        let manifest = dir.path().join("manifest.csv");
        let rows = crate::manifest::read(&manifest).unwrap();
        let record = TrainingSetRecord::of(&rows, &manifest, dir.path(), "test".into()).unwrap();
        assert_eq!(record.benign + record.malignant, 4);
        assert_eq!(record.case_ids.len(), 4);
        let again = training_set_sha256(&rows, &manifest, dir.path()).unwrap();
        assert_eq!(record.sha256, again, "the same folder gives the same hash");
        // One byte of one radiograph changed: another hash.
        let view = dir.path().join(rows[0].views()[0]);
        let mut bytes = std::fs::read(&view).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&view, bytes).unwrap();
        assert_ne!(
            training_set_sha256(&rows, &manifest, dir.path()).unwrap(),
            record.sha256
        );
    }
}
