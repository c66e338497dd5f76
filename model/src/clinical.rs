//! The clinical and Bone-RADS inputs of the network, and their encoding as a
//! fixed-length vector.
//!
//! The codes are those of the clinical CRF (`trial::case::crf`) and of the
//! reader's Bone-RADS assessment, as plain strings: this crate does not
//! depend on `trial`. A value outside a vocabulary encodes as "unknown", like
//! a missing one; every group has an explicit "missing" indicator so the
//! network can tell "no" from "not recorded".

use serde::{Deserialize, Serialize};

/// What the network knows about the patient besides the radiographs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clinical {
    pub age_years: Option<f32>,
    /// `female` / `male`.
    pub sex: Option<String>,
    /// CRF bone code: `femur`, `tibia`, `humerus`, …
    pub bone: Option<String>,
    /// `epiphysis`, `metaphysis`, `metadiaphysis`, `diaphysis`.
    pub longitudinal: Option<String>,
    /// CRF symptom codes: `pain`, `night_pain`, `palpable_mass`, `swelling`, `limited_motion`.
    pub symptoms: Vec<String>,
    pub pathological_fracture: Option<bool>,
    pub known_primary_malignancy: Option<bool>,
    /// The reader's Bone-RADS points (0 or more) and category (1–4).
    pub bone_rads_points: Option<f32>,
    pub bone_rads_category: Option<u8>,
}

const SEX: &[&str] = &["female", "male"];
const BONE: &[&str] = &[
    "femur", "tibia", "fibula", "patella", "humerus", "radius", "ulna", "hand", "foot",
];
const LONGITUDINAL: &[&str] = &["epiphysis", "metaphysis", "metadiaphysis", "diaphysis"];
const SYMPTOMS: &[&str] = &[
    "pain",
    "night_pain",
    "palpable_mass",
    "swelling",
    "limited_motion",
];

/// The length of [`Clinical::encode`]'s vector.
pub const FEATURES: usize = 2 // age, age missing
    + SEX.len() + 1
    + BONE.len() + 1
    + LONGITUDINAL.len() + 1
    + SYMPTOMS.len()
    + 2 * 2 // fracture, primary (value + missing)
    + 2 // points, missing
    + 4 + 1; // category one-hot, missing

fn one_hot(out: &mut Vec<f32>, vocabulary: &[&str], value: Option<&str>) {
    let hit = value.and_then(|v| vocabulary.iter().position(|c| *c == v));
    out.extend(
        vocabulary
            .iter()
            .enumerate()
            .map(|(i, _)| f32::from(u8::from(hit == Some(i)))),
    );
    out.push(f32::from(u8::from(hit.is_none())));
}

fn flag(out: &mut Vec<f32>, value: Option<bool>) {
    out.push(f32::from(u8::from(value == Some(true))));
    out.push(f32::from(u8::from(value.is_none())));
}

impl Clinical {
    /// The fixed-length vector the network takes (see [`FEATURES`]): age / 100,
    /// one-hot groups with a missing indicator, symptom flags, points / 10.
    pub fn encode(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(FEATURES);
        match self.age_years {
            Some(a) if a.is_finite() => out.extend([a.clamp(0.0, 120.0) / 100.0, 0.0]),
            _ => out.extend([0.0, 1.0]),
        }
        one_hot(&mut out, SEX, self.sex.as_deref());
        one_hot(&mut out, BONE, self.bone.as_deref());
        one_hot(&mut out, LONGITUDINAL, self.longitudinal.as_deref());
        out.extend(
            SYMPTOMS
                .iter()
                .map(|s| f32::from(u8::from(self.symptoms.iter().any(|x| x == s)))),
        );
        flag(&mut out, self.pathological_fracture);
        flag(&mut out, self.known_primary_malignancy);
        match self.bone_rads_points {
            Some(p) if p.is_finite() => out.extend([p.clamp(0.0, 20.0) / 10.0, 0.0]),
            _ => out.extend([0.0, 1.0]),
        }
        let cat = self.bone_rads_category.filter(|c| (1..=4).contains(c));
        out.extend((1..=4u8).map(|c| f32::from(u8::from(cat == Some(c)))));
        out.push(f32::from(u8::from(cat.is_none())));
        debug_assert_eq!(out.len(), FEATURES);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_has_a_fixed_length_and_marks_missing_values() {
        let empty = Clinical::default().encode();
        assert_eq!(empty.len(), FEATURES);
        assert_eq!(&empty[..2], &[0.0, 1.0]);
        let full = Clinical {
            age_years: Some(50.0),
            sex: Some("male".into()),
            bone: Some("tibia".into()),
            longitudinal: Some("diaphysis".into()),
            symptoms: vec!["pain".into()],
            pathological_fracture: Some(false),
            known_primary_malignancy: Some(true),
            bone_rads_points: Some(7.0),
            bone_rads_category: Some(4),
        }
        .encode();
        assert_eq!(full.len(), FEATURES);
        assert_eq!(&full[..5], &[0.5, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(&full[FEATURES - 7..], &[0.7, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        // An unknown code is "missing", not an error.
        let odd = Clinical {
            sex: Some("other".into()),
            ..Clinical::default()
        }
        .encode();
        assert_eq!(&odd[2..5], &[0.0, 0.0, 1.0]);
    }
}
