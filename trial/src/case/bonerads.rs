//! Bone-RADS on radiographs (ACR; Caracciolo et al., J Am Coll Radiol
//! 2023;20:1044–1058), scored from a **versioned rule table**.
//!
//! Published calculators disagree on some weights (an extra-osseous soft-tissue
//! mass scores 4 or 2), so the points are data, not code: a [`RuleTable`] is
//! stored in the database under a version, the study confirms one version
//! before the first read, and every read keeps the version it was scored with.

use super::crf::ErosionDepth;
use crate::codes::code_enum;
use serde::{Deserialize, Serialize};

code_enum! {
    /// Margin by the modified Lodwick–Madewell grade.
    pub enum Margin: "margin" {
        IA = "IA", IB = "IB", II = "II", IIIA = "IIIA", IIIB = "IIIB", IIIC = "IIIC",
    }
}
code_enum! {
    pub enum Periosteal: "periosteal reaction" {
        None = "none", NonAggressive = "non_aggressive", Aggressive = "aggressive",
    }
}

/// What the radiologist sees. `margin` is `None` when the lesion cannot be
/// assessed (Bone-RADS 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    pub margin: Option<Margin>,
    pub periosteal: Periosteal,
    pub endosteal_erosion: ErosionDepth,
    pub pathological_fracture: bool,
    pub soft_tissue_mass: bool,
    pub known_primary_malignancy: bool,
}

/// The points of each feature and the category cut-offs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    pub margin_ia: u8,
    pub margin_ib: u8,
    pub margin_ii: u8,
    pub margin_iii: u8,
    pub periosteal_none: u8,
    pub periosteal_non_aggressive: u8,
    pub periosteal_aggressive: u8,
    pub erosion_under_one_third: u8,
    pub erosion_one_to_two_thirds: u8,
    pub erosion_over_two_thirds: u8,
    pub pathological_fracture: u8,
    pub soft_tissue_mass: u8,
    pub known_primary_malignancy: u8,
    /// The lowest total of categories 1, 2, 3 and 4, increasing; a total
    /// below the first is category 1 too.
    pub category_min_points: [u8; 4],
}

/// A read's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// `None` for Bone-RADS 0 (cannot be assessed).
    pub points: Option<u8>,
    /// 0 (cannot be assessed) to 4 (high risk).
    pub category: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RuleTableError {
    #[error("category cut-offs must increase strictly (got {0:?})")]
    CutOffs([u8; 4]),
    #[error("a version is 1 to 40 letters, digits, dots, dashes or underscores")]
    Version,
}

impl RuleTable {
    /// The table of PROTOCOL.md with the soft-tissue-mass weight given
    /// (the two published values are 4 and 2).
    pub fn acr_2023(soft_tissue_mass: u8) -> RuleTable {
        RuleTable {
            margin_ia: 1,
            margin_ib: 3,
            margin_ii: 5,
            margin_iii: 7,
            periosteal_none: 0,
            periosteal_non_aggressive: 2,
            periosteal_aggressive: 4,
            erosion_under_one_third: 0,
            erosion_one_to_two_thirds: 1,
            erosion_over_two_thirds: 2,
            pathological_fracture: 2,
            soft_tissue_mass,
            known_primary_malignancy: 2,
            category_min_points: [1, 3, 5, 7],
        }
    }

    /// The tables every new database starts with, by version; the study
    /// confirms one before the first read.
    pub fn defaults() -> [(&'static str, RuleTable); 2] {
        [
            ("acr-2023-stm4", RuleTable::acr_2023(4)),
            ("acr-2023-stm2", RuleTable::acr_2023(2)),
        ]
    }

    pub fn check(&self) -> Result<(), RuleTableError> {
        let c = self.category_min_points;
        if c.windows(2).all(|w| w[0] < w[1]) {
            Ok(())
        } else {
            Err(RuleTableError::CutOffs(c))
        }
    }

    /// Sums the points and maps the total to a category.
    pub fn score(&self, f: &Features) -> Score {
        let Some(margin) = f.margin else {
            return Score {
                points: None,
                category: 0,
            };
        };
        let margin = match margin {
            Margin::IA => self.margin_ia,
            Margin::IB => self.margin_ib,
            Margin::II => self.margin_ii,
            Margin::IIIA | Margin::IIIB | Margin::IIIC => self.margin_iii,
        };
        let periosteal = match f.periosteal {
            Periosteal::None => self.periosteal_none,
            Periosteal::NonAggressive => self.periosteal_non_aggressive,
            Periosteal::Aggressive => self.periosteal_aggressive,
        };
        let erosion = match f.endosteal_erosion {
            ErosionDepth::UnderOneThird => self.erosion_under_one_third,
            ErosionDepth::OneToTwoThirds => self.erosion_one_to_two_thirds,
            ErosionDepth::OverTwoThirds => self.erosion_over_two_thirds,
        };
        let flag = |on: bool, w: u8| if on { w } else { 0 };
        let points = margin
            .saturating_add(periosteal)
            .saturating_add(erosion)
            .saturating_add(flag(f.pathological_fracture, self.pathological_fracture))
            .saturating_add(flag(f.soft_tissue_mass, self.soft_tissue_mass))
            .saturating_add(flag(
                f.known_primary_malignancy,
                self.known_primary_malignancy,
            ));
        Score {
            points: Some(points),
            category: self.category(points),
        }
    }

    /// The category (1–4) of a total of points.
    pub fn category(&self, points: u8) -> u8 {
        self.category_min_points
            .iter()
            .rposition(|&min| points >= min)
            .map_or(1, |i| i as u8 + 1)
    }
}

/// Checks a rule-table version name.
pub fn check_version(v: &str) -> Result<(), RuleTableError> {
    let ok = (1..=40).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RuleTableError::Version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(margin: Margin) -> Features {
        Features {
            margin: Some(margin),
            periosteal: Periosteal::None,
            endosteal_erosion: ErosionDepth::UnderOneThird,
            pathological_fracture: false,
            soft_tissue_mass: false,
            known_primary_malignancy: false,
        }
    }

    #[test]
    fn the_protocol_table_gives_the_protocol_categories() {
        let t = RuleTable::acr_2023(4);
        assert!(t.check().is_ok());
        // Totals 1–2 → 1, 3–4 → 2, 5–6 → 3, ≥ 7 → 4 (PROTOCOL.md).
        let cases = [
            (features(Margin::IA), 1, 1),
            (
                Features {
                    endosteal_erosion: ErosionDepth::OneToTwoThirds,
                    ..features(Margin::IA)
                },
                2,
                1,
            ),
            (features(Margin::IB), 3, 2),
            (
                Features {
                    endosteal_erosion: ErosionDepth::OneToTwoThirds,
                    ..features(Margin::IB)
                },
                4,
                2,
            ),
            (features(Margin::II), 5, 3),
            (
                Features {
                    endosteal_erosion: ErosionDepth::OneToTwoThirds,
                    ..features(Margin::II)
                },
                6,
                3,
            ),
            (features(Margin::IIIB), 7, 4),
            (
                Features {
                    periosteal: Periosteal::Aggressive,
                    endosteal_erosion: ErosionDepth::OverTwoThirds,
                    pathological_fracture: true,
                    soft_tissue_mass: true,
                    known_primary_malignancy: true,
                    ..features(Margin::IIIC)
                },
                7 + 4 + 2 + 2 + 4 + 2,
                4,
            ),
        ];
        for (f, points, category) in cases {
            assert_eq!(
                t.score(&f),
                Score {
                    points: Some(points),
                    category
                },
                "{f:?}"
            );
        }
    }

    #[test]
    fn the_soft_tissue_weight_is_data() {
        let f = Features {
            soft_tissue_mass: true,
            ..features(Margin::IA)
        };
        assert_eq!(RuleTable::acr_2023(4).score(&f).category, 3);
        assert_eq!(RuleTable::acr_2023(2).score(&f).category, 2);
    }

    #[test]
    fn an_unassessable_lesion_is_bone_rads_0() {
        let f = Features {
            margin: None,
            ..features(Margin::IA)
        };
        assert_eq!(
            RuleTable::acr_2023(4).score(&f),
            Score {
                points: None,
                category: 0
            }
        );
    }

    #[test]
    fn cut_offs_must_increase_and_versions_are_plain() {
        let mut t = RuleTable::acr_2023(4);
        t.category_min_points = [1, 3, 3, 7];
        assert!(t.check().is_err());
        assert!(check_version("acr-2023-stm4").is_ok());
        assert!(check_version("").is_err());
        assert!(check_version("a b").is_err());
    }
}
