//! The clinical and Bone-RADS inputs of the network, and their encoding as a
//! fixed-length vector.
//!
//! The model's vocabulary is its own closed sets (this crate does not depend
//! on `trial`); the server maps each code of the clinical CRF onto them
//! explicitly, and a test there fails when a CRF code has no deliberate
//! mapping. A CRF value the model has no category for (the CRF's
//! `other_limb`) is passed as missing, which the encoding marks: every group
//! has an explicit "missing" indicator so the network can tell "no" from
//! "not recorded".

use crate::error::ModelError;
use serde::{Deserialize, Serialize};

/// A closed set of codes, written as the CRF writes them.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($var:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $code)] $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $code),+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s.trim()).ok_or_else(|| {
                    ModelError::Vocabulary(format!(
                        "`{}` is not a {} code of the model (use one of {})",
                        s.trim(),
                        stringify!($name).to_lowercase(),
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }
    };
}

vocabulary!(Sex { Female = "female", Male = "male" });
vocabulary!(
    /// The limb bones the model has a category for.
    Bone {
        Femur = "femur", Tibia = "tibia", Fibula = "fibula", Patella = "patella",
        Humerus = "humerus", Radius = "radius", Ulna = "ulna", Hand = "hand", Foot = "foot",
    }
);
vocabulary!(Longitudinal {
    Epiphysis = "epiphysis", Metaphysis = "metaphysis",
    Metadiaphysis = "metadiaphysis", Diaphysis = "diaphysis",
});
vocabulary!(Symptom {
    Pain = "pain", NightPain = "night_pain", PalpableMass = "palpable_mass",
    Swelling = "swelling", LimitedMotion = "limited_motion",
});

/// What the network knows about the patient besides the radiographs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clinical {
    pub age_years: Option<f32>,
    pub sex: Option<Sex>,
    pub bone: Option<Bone>,
    pub longitudinal: Option<Longitudinal>,
    pub symptoms: Vec<Symptom>,
    pub pathological_fracture: Option<bool>,
    pub known_primary_malignancy: Option<bool>,
    /// The reader's Bone-RADS points (0 or more) and category (1–4).
    pub bone_rads_points: Option<f32>,
    pub bone_rads_category: Option<u8>,
}

/// The length of [`Clinical::encode`]'s vector.
pub const FEATURES: usize = 2 // age, age missing
    + Sex::ALL.len() + 1
    + Bone::ALL.len() + 1
    + Longitudinal::ALL.len() + 1
    + Symptom::ALL.len()
    + 2 * 2 // fracture, primary (value + missing)
    + 2 // points, missing
    + 4 + 1; // category one-hot, missing

fn one_hot<T: PartialEq>(out: &mut Vec<f32>, vocabulary: &[T], value: Option<T>) {
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
        one_hot(&mut out, Sex::ALL, self.sex);
        one_hot(&mut out, Bone::ALL, self.bone);
        one_hot(&mut out, Longitudinal::ALL, self.longitudinal);
        out.extend(
            Symptom::ALL
                .iter()
                .map(|s| f32::from(u8::from(self.symptoms.contains(s)))),
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
            sex: Some(Sex::Male),
            bone: Some(Bone::Tibia),
            longitudinal: Some(Longitudinal::Diaphysis),
            symptoms: vec![Symptom::Pain],
            pathological_fracture: Some(false),
            known_primary_malignancy: Some(true),
            bone_rads_points: Some(7.0),
            bone_rads_category: Some(4),
        }
        .encode();
        assert_eq!(full.len(), FEATURES);
        assert_eq!(&full[..5], &[0.5, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(&full[FEATURES - 7..], &[0.7, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        // A code outside the vocabulary is refused when read, not guessed.
        assert!("other".parse::<Sex>().is_err());
        assert_eq!("night_pain".parse::<Symptom>(), Ok(Symptom::NightPain));
    }
}
