//! The reference standard (PROTOCOL.md, "Reference standard coding"): a WHO
//! 2020 (5th edition) bone-tumour entity from a pick list, its ICD-O
//! behaviour code, and the three-tier label that follows from the behaviour.

use crate::codes::{code_enum, is_date};
use serde::{Deserialize, Serialize};

code_enum! {
    /// ICD-O behaviour: /0 benign, /1 intermediate (locally aggressive or
    /// rarely metastasising), /3 malignant.
    pub enum Behaviour: "behaviour code" { Benign0 = "0", Intermediate1 = "1", Malignant3 = "3" }
}
code_enum! {
    pub enum Tier: "pathology tier" { Benign = "benign", Intermediate = "intermediate", Malignant = "malignant" }
}
code_enum! { pub enum Procedure: "procedure" { Biopsy = "biopsy", Resection = "resection" } }

impl Behaviour {
    pub fn tier(self) -> Tier {
        match self {
            Behaviour::Benign0 => Tier::Benign,
            Behaviour::Intermediate1 => Tier::Intermediate,
            Behaviour::Malignant3 => Tier::Malignant,
        }
    }
}

/// One entry of the pick list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entity {
    /// Stable code stored with the record.
    pub code: &'static str,
    pub name: &'static str,
    /// ICD-O-3 morphology, where the classification gives one.
    pub morphology: Option<&'static str>,
    pub behaviour: Behaviour,
}

const fn e(
    code: &'static str,
    name: &'static str,
    morphology: Option<&'static str>,
    behaviour: Behaviour,
) -> Entity {
    Entity {
        code,
        name,
        morphology,
        behaviour,
    }
}

use Behaviour::{Benign0 as B, Intermediate1 as I, Malignant3 as M};

/// WHO Classification of Tumours, Soft Tissue and Bone, 5th ed. (2020): the
/// bone entities seen in limb bones, plus one "other" entry per behaviour for
/// rarities (the entity is then named in the comment). Metastases are
/// recorded as malignant (/3) for the binary endpoint.
pub const WHO_2020: &[Entity] = &[
    // Chondrogenic
    e("osteochondroma", "Osteochondroma", Some("9210"), B),
    e("enchondroma", "Enchondroma", Some("9220"), B),
    e(
        "periosteal_chondroma",
        "Periosteal chondroma",
        Some("9221"),
        B,
    ),
    e(
        "chondromyxoid_fibroma",
        "Chondromyxoid fibroma",
        Some("9241"),
        B,
    ),
    e("chondroblastoma", "Chondroblastoma", Some("9230"), I),
    e(
        "atypical_cartilaginous_tumour",
        "Atypical cartilaginous tumour",
        Some("9222"),
        I,
    ),
    e(
        "chondrosarcoma_grade_1",
        "Chondrosarcoma, grade 1",
        Some("9222"),
        M,
    ),
    e(
        "chondrosarcoma_grade_2_3",
        "Chondrosarcoma, grade 2 and 3",
        Some("9220"),
        M,
    ),
    e(
        "dedifferentiated_chondrosarcoma",
        "Dedifferentiated chondrosarcoma",
        Some("9243"),
        M,
    ),
    e(
        "clear_cell_chondrosarcoma",
        "Clear cell chondrosarcoma",
        Some("9242"),
        M,
    ),
    e(
        "mesenchymal_chondrosarcoma",
        "Mesenchymal chondrosarcoma",
        Some("9240"),
        M,
    ),
    // Osteogenic
    e("osteoma", "Osteoma", Some("9180"), B),
    e("osteoid_osteoma", "Osteoid osteoma", Some("9191"), B),
    e("osteoblastoma", "Osteoblastoma", Some("9200"), I),
    e(
        "osteosarcoma",
        "Osteosarcoma, conventional",
        Some("9180"),
        M,
    ),
    e(
        "telangiectatic_osteosarcoma",
        "Telangiectatic osteosarcoma",
        Some("9183"),
        M,
    ),
    e(
        "parosteal_osteosarcoma",
        "Parosteal osteosarcoma",
        Some("9192"),
        M,
    ),
    e(
        "periosteal_osteosarcoma",
        "Periosteal osteosarcoma",
        Some("9193"),
        M,
    ),
    // Fibrogenic
    e(
        "desmoplastic_fibroma",
        "Desmoplastic fibroma",
        Some("8823"),
        I,
    ),
    e("fibrosarcoma", "Fibrosarcoma of bone", Some("8810"), M),
    // Vascular
    e("haemangioma", "Haemangioma of bone", Some("9120"), B),
    e(
        "epithelioid_haemangioendothelioma",
        "Epithelioid haemangioendothelioma",
        Some("9133"),
        M,
    ),
    e("angiosarcoma", "Angiosarcoma of bone", Some("9120"), M),
    // Osteoclastic giant cell-rich
    e(
        "aneurysmal_bone_cyst",
        "Aneurysmal bone cyst",
        Some("9260"),
        B,
    ),
    e(
        "non_ossifying_fibroma",
        "Non-ossifying fibroma",
        Some("8830"),
        B,
    ),
    e(
        "giant_cell_tumour",
        "Giant cell tumour of bone",
        Some("9250"),
        I,
    ),
    e(
        "giant_cell_tumour_malignant",
        "Giant cell tumour of bone, malignant",
        Some("9250"),
        M,
    ),
    // Other mesenchymal
    e("simple_bone_cyst", "Simple bone cyst", None, B),
    e("fibrous_dysplasia", "Fibrous dysplasia", Some("8818"), B),
    e(
        "osteofibrous_dysplasia",
        "Osteofibrous dysplasia",
        Some("9262"),
        B,
    ),
    e("lipoma", "Lipoma of bone", Some("8850"), B),
    e(
        "adamantinoma",
        "Adamantinoma of long bones",
        Some("9261"),
        M,
    ),
    e(
        "undifferentiated_pleomorphic_sarcoma",
        "Undifferentiated pleomorphic sarcoma",
        Some("8802"),
        M,
    ),
    // Haematopoietic and small round cell
    e(
        "langerhans_cell_histiocytosis",
        "Langerhans cell histiocytosis",
        Some("9751"),
        I,
    ),
    e("plasmacytoma", "Plasmacytoma of bone", Some("9731"), M),
    e(
        "lymphoma",
        "Primary non-Hodgkin lymphoma of bone",
        Some("9591"),
        M,
    ),
    e("ewing_sarcoma", "Ewing sarcoma", Some("9364"), M),
    e("metastasis", "Metastasis to bone", None, M),
    // Rarities, named in the comment
    e("other_benign", "Other benign tumour", None, B),
    e("other_intermediate", "Other intermediate tumour", None, I),
    e("other_malignant", "Other malignant tumour", None, M),
];

/// The pick-list entry with this code.
pub fn entity(code: &str) -> Option<&'static Entity> {
    WHO_2020.iter().find(|e| e.code == code.trim())
}

/// Pathology as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathologyInput {
    /// A code of [`WHO_2020`].
    pub entity: String,
    /// Must match the entity's behaviour when given.
    pub behaviour: Option<Behaviour>,
    pub procedure: Procedure,
    /// `YYYY-MM-DD`.
    pub specimen_date: String,
    /// The reporting pathologist's name.
    pub pathologist: String,
    pub comment: Option<String>,
}

/// Pathology after the checks: the behaviour and tier follow from the entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pathology {
    pub entity: String,
    pub entity_name: String,
    pub morphology: Option<String>,
    pub behaviour: Behaviour,
    pub tier: Tier,
    pub procedure: Procedure,
    pub specimen_date: String,
    pub pathologist: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PathologyError {
    #[error("unknown WHO 2020 entity `{0}`; pick one from the list")]
    UnknownEntity(String),
    #[error("{entity} has ICD-O behaviour /{expected}, not /{given}")]
    BehaviourMismatch {
        entity: String,
        expected: String,
        given: String,
    },
    #[error("the specimen date `{0}` is not a date written YYYY-MM-DD")]
    BadDate(String),
    #[error("the specimen date {0} is in the future")]
    FutureDate(String),
    #[error("the pathologist's name is required (at most 200 characters)")]
    Pathologist,
    #[error("an entity from the \"other\" entries needs the diagnosis named in the comment")]
    OtherNeedsComment,
    #[error("a comment has at most 1000 characters")]
    CommentTooLong,
}

impl PathologyInput {
    /// The edit checks; `today` is the last date accepted.
    pub fn check(self, today: &str) -> Result<Pathology, PathologyError> {
        let entity = entity(&self.entity)
            .ok_or_else(|| PathologyError::UnknownEntity(self.entity.clone()))?;
        if let Some(given) = self.behaviour {
            if given != entity.behaviour {
                return Err(PathologyError::BehaviourMismatch {
                    entity: entity.name.to_owned(),
                    expected: entity.behaviour.as_str().to_owned(),
                    given: given.as_str().to_owned(),
                });
            }
        }
        let date = self.specimen_date.trim().to_owned();
        if !is_date(&date) {
            return Err(PathologyError::BadDate(date));
        }
        if date.as_str() > today {
            return Err(PathologyError::FutureDate(date));
        }
        let pathologist = self.pathologist.trim().to_owned();
        if pathologist.is_empty() || pathologist.chars().count() > 200 {
            return Err(PathologyError::Pathologist);
        }
        let comment = self
            .comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.chars().count() > 1000) {
            return Err(PathologyError::CommentTooLong);
        }
        if entity.code.starts_with("other_") && comment.is_none() {
            return Err(PathologyError::OtherNeedsComment);
        }
        Ok(Pathology {
            entity: entity.code.to_owned(),
            entity_name: entity.name.to_owned(),
            morphology: entity.morphology.map(str::to_owned),
            behaviour: entity.behaviour,
            tier: entity.behaviour.tier(),
            procedure: self.procedure,
            specimen_date: date,
            pathologist,
            comment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(entity: &str) -> PathologyInput {
        PathologyInput {
            entity: entity.into(),
            behaviour: None,
            procedure: Procedure::Biopsy,
            specimen_date: "2025-10-20".into(),
            pathologist: "Dr Wang".into(),
            comment: None,
        }
    }

    #[test]
    fn codes_are_unique_and_the_tier_follows_the_behaviour() {
        let mut codes: Vec<_> = WHO_2020.iter().map(|e| e.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), WHO_2020.len());
        let p = input("giant_cell_tumour").check("2025-11-01").unwrap();
        assert_eq!(
            (p.behaviour, p.tier),
            (Behaviour::Intermediate1, Tier::Intermediate)
        );
        assert_eq!(p.morphology.as_deref(), Some("9250"));
        let p = input("osteosarcoma").check("2025-11-01").unwrap();
        assert_eq!(p.tier, Tier::Malignant);
    }

    #[test]
    fn inconsistent_or_incomplete_pathology_is_refused() {
        let mut p = input("osteosarcoma");
        p.behaviour = Some(Behaviour::Benign0);
        assert!(matches!(
            p.check("2025-11-01"),
            Err(PathologyError::BehaviourMismatch { .. })
        ));
        assert_eq!(
            input("osteosarcomaa").check("2025-11-01"),
            Err(PathologyError::UnknownEntity("osteosarcomaa".into()))
        );
        assert_eq!(
            input("osteosarcoma").check("2025-10-19"),
            Err(PathologyError::FutureDate("2025-10-20".into()))
        );
        let mut p = input("osteosarcoma");
        p.pathologist = "  ".into();
        assert_eq!(p.check("2025-11-01"), Err(PathologyError::Pathologist));
        assert_eq!(
            input("other_malignant").check("2025-11-01"),
            Err(PathologyError::OtherNeedsComment)
        );
    }
}
