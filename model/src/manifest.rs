//! The training manifest: one CSV row per case of the retrospective arm.
//!
//! | column | content |
//! |---|---|
//! | `case_id`, `patient_id` | identifiers; the split groups by patient |
//! | `label` | `benign` or `malignant` (pathology) |
//! | `frontal`, `lateral`, `oblique` | DICOM paths relative to the images folder; empty when the view is missing (at least one is required) |
//! | `age_years`, `sex`, `bone`, `longitudinal` | CRF codes |
//! | `symptoms` | CRF symptom codes separated by `;` |
//! | `pathological_fracture`, `known_primary_malignancy` | `yes` / `no` / empty |
//! | `bone_rads_points`, `bone_rads_category` | the reader's score |
//! | `mask_frontal`, `mask_lateral` | optional lesion masks (PNG), used only to test heat maps |

use crate::error::ModelError;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clinical::Clinical;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Benign,
    Malignant,
}

impl Label {
    pub fn is_malignant(self) -> bool {
        self == Label::Malignant
    }
}

/// One case of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    pub case_id: String,
    pub patient_id: String,
    pub label: Label,
    pub frontal: Option<String>,
    pub lateral: Option<String>,
    pub oblique: Option<String>,
    pub mask_frontal: Option<String>,
    pub mask_lateral: Option<String>,
    pub clinical: Clinical,
}

impl ManifestRow {
    /// The views present, in the order frontal, lateral, oblique.
    pub fn views(&self) -> Vec<&str> {
        [&self.frontal, &self.lateral, &self.oblique]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect()
    }
}

/// The CSV form of a row.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    case_id: String,
    patient_id: String,
    label: String,
    frontal: String,
    lateral: String,
    oblique: String,
    age_years: String,
    sex: String,
    bone: String,
    longitudinal: String,
    symptoms: String,
    pathological_fracture: String,
    known_primary_malignancy: String,
    bone_rads_points: String,
    bone_rads_category: String,
    #[serde(default)]
    mask_frontal: String,
    #[serde(default)]
    mask_lateral: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// An optional column: empty is `None`; a value that does not parse is
/// refused with the message `bad` makes of it.
fn optional<T: std::str::FromStr>(
    s: &str,
    bad: impl FnOnce(&str, T::Err) -> String,
) -> Result<Option<T>, ModelError> {
    match s.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|e| ModelError::Manifest(bad(t, e))),
    }
}

/// A code of the model's vocabulary, or empty; anything else names its line.
fn code<T: std::str::FromStr<Err = ModelError>>(
    s: &str,
    column: &str,
    line: usize,
) -> Result<Option<T>, ModelError> {
    optional(s, |_, e| format!("line {line}, {column}: {e}"))
}

fn yes_no(s: &str, column: &str, line: usize) -> Result<Option<bool>, ModelError> {
    match s.trim() {
        "" => Ok(None),
        "yes" | "true" | "1" => Ok(Some(true)),
        "no" | "false" | "0" => Ok(Some(false)),
        other => Err(ModelError::Manifest(format!(
            "line {line}: {column} must be yes, no or empty, not {other:?}"
        ))),
    }
}

fn number<T: std::str::FromStr>(
    s: &str,
    column: &str,
    line: usize,
) -> Result<Option<T>, ModelError> {
    optional(s, |t, _| {
        format!("line {line}: {column} is not a number: {t:?}")
    })
}

fn yes_no_text(v: Option<bool>) -> String {
    match v {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => String::new(),
    }
}

/// Reads and checks a manifest; every problem names its line.
pub fn read(path: &Path) -> Result<Vec<ManifestRow>, ModelError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| ModelError::file(path, e))?;
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, record) in reader.deserialize::<Record>().enumerate() {
        let line = i + 2;
        let r = record
            .map_err(|e| ModelError::Manifest(format!("{}: line {line}: {e}", path.display())))?;
        let label = match r.label.trim() {
            "benign" | "0" => Label::Benign,
            "malignant" | "1" => Label::Malignant,
            other => {
                return Err(ModelError::Manifest(format!(
                    "line {line}: label must be benign or malignant, not {other:?}"
                )))
            }
        };
        if r.case_id.trim().is_empty() || r.patient_id.trim().is_empty() {
            return Err(ModelError::Manifest(format!(
                "line {line}: case_id and patient_id are required"
            )));
        }
        if !seen.insert(r.case_id.trim().to_owned()) {
            return Err(ModelError::Manifest(format!(
                "line {line}: case {} appears twice",
                r.case_id.trim()
            )));
        }
        let row = ManifestRow {
            case_id: r.case_id.trim().to_owned(),
            patient_id: r.patient_id.trim().to_owned(),
            label,
            frontal: opt(&r.frontal),
            lateral: opt(&r.lateral),
            oblique: opt(&r.oblique),
            mask_frontal: opt(&r.mask_frontal),
            mask_lateral: opt(&r.mask_lateral),
            clinical: Clinical {
                age_years: number(&r.age_years, "age_years", line)?,
                sex: code(&r.sex, "sex", line)?,
                bone: code(&r.bone, "bone", line)?,
                longitudinal: code(&r.longitudinal, "longitudinal", line)?,
                symptoms: r
                    .symptoms
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse().map_err(|e| {
                            ModelError::Manifest(format!("line {line}, symptoms: {e}"))
                        })
                    })
                    .collect::<Result<_, ModelError>>()?,
                pathological_fracture: yes_no(
                    &r.pathological_fracture,
                    "pathological_fracture",
                    line,
                )?,
                known_primary_malignancy: yes_no(
                    &r.known_primary_malignancy,
                    "known_primary_malignancy",
                    line,
                )?,
                bone_rads_points: number(&r.bone_rads_points, "bone_rads_points", line)?,
                bone_rads_category: number(&r.bone_rads_category, "bone_rads_category", line)?,
            },
        };
        if row.views().is_empty() {
            return Err(ModelError::Manifest(format!(
                "line {line}: case {} has no view",
                row.case_id
            )));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(ModelError::Manifest(format!(
            "{}: the manifest has no cases",
            path.display()
        )));
    }
    Ok(rows)
}

/// Writes a manifest.
pub fn write(path: &Path, rows: &[ManifestRow]) -> Result<(), ModelError> {
    let mut writer = csv::Writer::from_path(path).map_err(|e| ModelError::file(path, e))?;
    for r in rows {
        let c = &r.clinical;
        writer
            .serialize(Record {
                case_id: r.case_id.clone(),
                patient_id: r.patient_id.clone(),
                label: if r.label.is_malignant() {
                    "malignant"
                } else {
                    "benign"
                }
                .into(),
                frontal: r.frontal.clone().unwrap_or_default(),
                lateral: r.lateral.clone().unwrap_or_default(),
                oblique: r.oblique.clone().unwrap_or_default(),
                age_years: c.age_years.map(|a| a.to_string()).unwrap_or_default(),
                sex: c.sex.map(|v| v.as_str().to_owned()).unwrap_or_default(),
                bone: c.bone.map(|v| v.as_str().to_owned()).unwrap_or_default(),
                longitudinal: c
                    .longitudinal
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                symptoms: c
                    .symptoms
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                pathological_fracture: yes_no_text(c.pathological_fracture),
                known_primary_malignancy: yes_no_text(c.known_primary_malignancy),
                bone_rads_points: c
                    .bone_rads_points
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                bone_rads_category: c
                    .bone_rads_category
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                mask_frontal: r.mask_frontal.clone().unwrap_or_default(),
                mask_lateral: r.mask_lateral.clone().unwrap_or_default(),
            })
            .map_err(|e| ModelError::Manifest(e.to_string()))?;
    }
    writer
        .flush()
        .map_err(|e| ModelError::Manifest(e.to_string()))
}
