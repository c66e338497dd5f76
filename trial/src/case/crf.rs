//! The clinical case report form (PROTOCOL.md, "Clinical CRF fields").
//!
//! Every field is optional while the form is a draft, so that nothing typed
//! is lost; [`ClinicalCrf::issues`] runs the edit checks on what is there
//! (ranges, formats, dates), and [`ClinicalCrf::missing`] lists the required
//! fields still empty. A form can be marked complete only with neither.

use crate::codes::{code_enum, is_date};
use serde::{Deserialize, Serialize};

code_enum! { pub enum Sex: "sex" { Female = "female", Male = "male" } }
code_enum! {
    pub enum Symptom: "symptom" {
        Pain = "pain", NightPain = "night_pain", PalpableMass = "palpable_mass",
        Swelling = "swelling", LimitedMotion = "limited_motion",
    }
}
code_enum! { pub enum LesionCount: "lesion count" { Solitary = "solitary", Multiple = "multiple" } }
code_enum! {
    /// Skeletal maturity: the growth plate of the affected bone.
    pub enum Physis: "physis" { Open = "open", Closed = "closed" }
}
code_enum! {
    /// The limb bones of the protocol (a lesion elsewhere is exclusion E3).
    pub enum Bone: "bone" {
        Femur = "femur", Tibia = "tibia", Fibula = "fibula", Patella = "patella",
        Humerus = "humerus", Radius = "radius", Ulna = "ulna",
        Hand = "hand", Foot = "foot", OtherLimb = "other_limb",
    }
}
code_enum! { pub enum Side: "side" { Left = "left", Right = "right" } }
code_enum! {
    pub enum Longitudinal: "longitudinal location" {
        Epiphysis = "epiphysis", Metaphysis = "metaphysis",
        Metadiaphysis = "metadiaphysis", Diaphysis = "diaphysis",
    }
}
code_enum! {
    pub enum Transverse: "transverse location" {
        Central = "central", Eccentric = "eccentric", Cortical = "cortical", Juxtacortical = "juxtacortical",
    }
}
code_enum! { pub enum Density: "density" { Lytic = "lytic", Sclerotic = "sclerotic", Mixed = "mixed" } }
code_enum! {
    pub enum Matrix: "matrix" { None = "none", Osteoid = "osteoid", Chondroid = "chondroid", GroundGlass = "ground_glass" }
}
code_enum! {
    pub enum Cortex: "cortex" {
        Intact = "intact", Thinned = "thinned", EndostealErosion = "endosteal_erosion", Destroyed = "destroyed",
    }
}
code_enum! {
    /// Depth of endosteal erosion as a fraction of the cortical thickness (Bone-RADS).
    pub enum ErosionDepth: "erosion depth" {
        UnderOneThird = "under_one_third", OneToTwoThirds = "one_to_two_thirds", OverTwoThirds = "over_two_thirds",
    }
}

/// The clinical CRF of one case. Units are in the field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClinicalCrf {
    // Patient
    /// Age at the radiograph, whole years (0–120).
    pub age_years: Option<u16>,
    pub sex: Option<Sex>,
    /// Symptoms present (empty: none).
    pub symptoms: Vec<Symptom>,
    /// First symptom, `YYYY-MM-DD`; the duration is counted from it to the radiograph.
    pub symptom_onset_date: Option<String>,
    pub pathological_fracture: Option<bool>,
    pub known_primary_malignancy: Option<bool>,
    pub lesion_count: Option<LesionCount>,
    pub physis: Option<Physis>,
    // Location
    pub bone: Option<Bone>,
    pub side: Option<Side>,
    pub longitudinal: Option<Longitudinal>,
    pub transverse: Option<Transverse>,
    // Lesion
    /// Date of the radiographs read for the study, `YYYY-MM-DD`.
    pub radiograph_date: Option<String>,
    pub density: Option<Density>,
    /// Largest diameter, millimetres (1–1000).
    pub size_mm: Option<u16>,
    pub expansion: Option<bool>,
    pub matrix: Option<Matrix>,
    pub cortex: Option<Cortex>,
    /// Required when the cortex shows endosteal erosion.
    pub erosion_depth: Option<ErosionDepth>,
    pub soft_tissue_mass: Option<bool>,
}

/// One failed edit check, named by field, with a stable code for the
/// interface's translations and a message in English for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldIssue {
    pub field: String,
    /// `required`, `range`, `date`, `future`, `order`, `not_applicable`.
    pub code: String,
    pub message: String,
}

impl FieldIssue {
    fn new(field: &str, code: &str, message: impl Into<String>) -> FieldIssue {
        FieldIssue {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The fields frozen at the AI lock: those the model takes (age, sex,
/// symptoms, pathological fracture, known primary malignancy, bone,
/// longitudinal location) and those that define a subgroup of the locked
/// analysis (sex, age band, bone). After the prediction is locked a change is
/// a protocol deviation, signed by the principal investigator with a reason.
/// The database's `crf_frozen_after_ai` trigger lists the same fields.
pub const FROZEN_AT_AI_LOCK: [&str; 7] = [
    "age_years",
    "sex",
    "symptoms",
    "pathological_fracture",
    "known_primary_malignancy",
    "bone",
    "longitudinal",
];

impl ClinicalCrf {
    /// The frozen fields ([`FROZEN_AT_AI_LOCK`]) whose values differ between
    /// `self` and `other`, with the old and new values as the audit trail writes them.
    pub fn frozen_changes(&self, other: &ClinicalCrf) -> Vec<(&'static str, String, String)> {
        let old = self.field_values();
        let new = other.field_values();
        old.into_iter()
            .zip(new)
            .filter(|((f, a), (_, b))| FROZEN_AT_AI_LOCK.contains(f) && a != b)
            .map(|((f, a), (_, b))| (f, a, b))
            .collect()
    }

    /// Every field name, in form order (the data dictionary's order too).
    pub const FIELDS: [&'static str; 20] = [
        "age_years",
        "sex",
        "symptoms",
        "symptom_onset_date",
        "pathological_fracture",
        "known_primary_malignancy",
        "lesion_count",
        "physis",
        "bone",
        "side",
        "longitudinal",
        "transverse",
        "radiograph_date",
        "density",
        "size_mm",
        "expansion",
        "matrix",
        "cortex",
        "erosion_depth",
        "soft_tissue_mass",
    ];

    /// Trims text, sorts and de-duplicates the symptoms.
    pub fn normalised(mut self) -> ClinicalCrf {
        self.symptoms.sort();
        self.symptoms.dedup();
        let trim = |d: Option<String>| d.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        self.symptom_onset_date = trim(self.symptom_onset_date);
        self.radiograph_date = trim(self.radiograph_date);
        self
    }

    /// The edit checks on the values present. `today` is the last date
    /// accepted (`YYYY-MM-DD`).
    pub fn issues(&self, today: &str) -> Vec<FieldIssue> {
        let mut out = Vec::new();
        if let Some(age) = self.age_years {
            if age > 120 {
                out.push(FieldIssue::new(
                    "age_years",
                    "range",
                    format!("age is 0 to 120 years (got {age})"),
                ));
            }
        }
        if let Some(size) = self.size_mm {
            if !(1..=1000).contains(&size) {
                out.push(FieldIssue::new(
                    "size_mm",
                    "range",
                    format!("size is 1 to 1000 mm (got {size})"),
                ));
            }
        }
        let mut dates_ok = true;
        for (field, value) in [
            ("symptom_onset_date", &self.symptom_onset_date),
            ("radiograph_date", &self.radiograph_date),
        ] {
            if let Some(d) = value {
                if !is_date(d) {
                    dates_ok = false;
                    out.push(FieldIssue::new(
                        field,
                        "date",
                        format!("`{d}` is not a date written YYYY-MM-DD"),
                    ));
                } else if d.as_str() > today {
                    dates_ok = false;
                    out.push(FieldIssue::new(
                        field,
                        "future",
                        format!("{d} is in the future"),
                    ));
                }
            }
        }
        if dates_ok {
            if let (Some(onset), Some(xray)) = (&self.symptom_onset_date, &self.radiograph_date) {
                if onset > xray {
                    out.push(FieldIssue::new(
                        "symptom_onset_date",
                        "order",
                        format!("symptom onset {onset} is after the radiograph date {xray}"),
                    ));
                }
            }
        }
        if self.erosion_depth.is_some() && self.cortex != Some(Cortex::EndostealErosion) {
            out.push(FieldIssue::new(
                "erosion_depth",
                "not_applicable",
                "an erosion depth goes only with cortex = endosteal_erosion",
            ));
        }
        out
    }

    /// Required fields that are still empty. Symptoms may be none, and the
    /// onset date is asked only when there are symptoms.
    pub fn missing(&self) -> Vec<FieldIssue> {
        let present = [
            ("age_years", self.age_years.is_some()),
            ("sex", self.sex.is_some()),
            (
                "symptom_onset_date",
                self.symptoms.is_empty() || self.symptom_onset_date.is_some(),
            ),
            (
                "pathological_fracture",
                self.pathological_fracture.is_some(),
            ),
            (
                "known_primary_malignancy",
                self.known_primary_malignancy.is_some(),
            ),
            ("lesion_count", self.lesion_count.is_some()),
            ("physis", self.physis.is_some()),
            ("bone", self.bone.is_some()),
            ("side", self.side.is_some()),
            ("longitudinal", self.longitudinal.is_some()),
            ("transverse", self.transverse.is_some()),
            ("radiograph_date", self.radiograph_date.is_some()),
            ("density", self.density.is_some()),
            ("size_mm", self.size_mm.is_some()),
            ("expansion", self.expansion.is_some()),
            ("matrix", self.matrix.is_some()),
            ("cortex", self.cortex.is_some()),
            (
                "erosion_depth",
                self.cortex != Some(Cortex::EndostealErosion) || self.erosion_depth.is_some(),
            ),
            ("soft_tissue_mass", self.soft_tissue_mass.is_some()),
        ];
        present
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(f, _)| FieldIssue::new(f, "required", format!("{f} is required")))
            .collect()
    }

    /// Each field as text, for the audit trail's old and new values.
    pub fn field_values(&self) -> Vec<(&'static str, String)> {
        fn o<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(ToString::to_string).unwrap_or_default()
        }
        let symptoms = self
            .symptoms
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let values = [
            o(&self.age_years),
            o(&self.sex),
            symptoms,
            o(&self.symptom_onset_date),
            o(&self.pathological_fracture),
            o(&self.known_primary_malignancy),
            o(&self.lesion_count),
            o(&self.physis),
            o(&self.bone),
            o(&self.side),
            o(&self.longitudinal),
            o(&self.transverse),
            o(&self.radiograph_date),
            o(&self.density),
            o(&self.size_mm),
            o(&self.expansion),
            o(&self.matrix),
            o(&self.cortex),
            o(&self.erosion_depth),
            o(&self.soft_tissue_mass),
        ];
        Self::FIELDS.into_iter().zip(values).collect()
    }
}

impl ClinicalCrf {
    /// Builds the form from submitted name/value pairs (an HTML form: empty
    /// means not filled; symptoms repeat; yes/no fields are `true`/`false`).
    /// Values that do not parse are reported per field; nothing is dropped
    /// silently.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ClinicalCrf, Vec<FieldIssue>> {
        fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        }
        let mut issues = Vec::new();
        macro_rules! parse {
            ($name:literal) => {
                match get(pairs, $name).map(str::parse) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        issues.push(FieldIssue::new($name, "invalid", format!("{e}")));
                        None
                    }
                }
            };
        }
        macro_rules! number {
            ($name:literal) => {
                match get(pairs, $name).map(str::parse::<u16>) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(_)) => {
                        issues.push(FieldIssue::new(
                            $name,
                            "number",
                            format!("{} is a whole number", $name),
                        ));
                        None
                    }
                }
            };
        }
        let mut symptoms = Vec::new();
        for (_, v) in pairs.iter().filter(|(k, _)| k == "symptoms") {
            match v.parse() {
                Ok(s) => symptoms.push(s),
                Err(e) => issues.push(FieldIssue::new("symptoms", "invalid", format!("{e}"))),
            }
        }
        let flag = |name: &str| -> Result<Option<bool>, FieldIssue> {
            match get(pairs, name) {
                None => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(other) => Err(FieldIssue::new(
                    name,
                    "invalid",
                    format!("`{other}` is not yes or no"),
                )),
            }
        };
        let mut flags = [None; 4];
        for (i, name) in [
            "pathological_fracture",
            "known_primary_malignancy",
            "expansion",
            "soft_tissue_mass",
        ]
        .into_iter()
        .enumerate()
        {
            match flag(name) {
                Ok(v) => flags[i] = v,
                Err(issue) => issues.push(issue),
            }
        }
        let crf = ClinicalCrf {
            age_years: number!("age_years"),
            sex: parse!("sex"),
            symptoms,
            symptom_onset_date: get(pairs, "symptom_onset_date").map(str::to_owned),
            pathological_fracture: flags[0],
            known_primary_malignancy: flags[1],
            lesion_count: parse!("lesion_count"),
            physis: parse!("physis"),
            bone: parse!("bone"),
            side: parse!("side"),
            longitudinal: parse!("longitudinal"),
            transverse: parse!("transverse"),
            radiograph_date: get(pairs, "radiograph_date").map(str::to_owned),
            density: parse!("density"),
            size_mm: number!("size_mm"),
            expansion: flags[2],
            matrix: parse!("matrix"),
            cortex: parse!("cortex"),
            erosion_depth: parse!("erosion_depth"),
            soft_tissue_mass: flags[3],
        };
        if issues.is_empty() {
            Ok(crf)
        } else {
            Err(issues)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submitted_form_parses_and_bad_values_are_reported_by_field() {
        let pairs: Vec<(String, String)> = [
            ("age_years", "34"),
            ("sex", "female"),
            ("symptoms", "pain"),
            ("symptoms", "swelling"),
            ("pathological_fracture", "false"),
            ("bone", ""),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let crf = ClinicalCrf::from_pairs(&pairs).unwrap();
        assert_eq!(crf.age_years, Some(34));
        assert_eq!(crf.symptoms, vec![Symptom::Pain, Symptom::Swelling]);
        assert_eq!(crf.pathological_fracture, Some(false));
        assert_eq!(crf.bone, None);
        let bad: Vec<(String, String)> = [
            ("age_years", "thirty"),
            ("bone", "skull"),
            ("expansion", "maybe"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let fields: Vec<String> = ClinicalCrf::from_pairs(&bad)
            .unwrap_err()
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(fields, vec!["expansion", "age_years", "bone"]);
    }

    pub(crate) fn complete() -> ClinicalCrf {
        ClinicalCrf {
            age_years: Some(34),
            sex: Some(Sex::Female),
            symptoms: vec![Symptom::Pain, Symptom::NightPain],
            symptom_onset_date: Some("2025-09-01".into()),
            pathological_fracture: Some(false),
            known_primary_malignancy: Some(false),
            lesion_count: Some(LesionCount::Solitary),
            physis: Some(Physis::Closed),
            bone: Some(Bone::Femur),
            side: Some(Side::Left),
            longitudinal: Some(Longitudinal::Metaphysis),
            transverse: Some(Transverse::Eccentric),
            radiograph_date: Some("2025-10-02".into()),
            density: Some(Density::Lytic),
            size_mm: Some(48),
            expansion: Some(true),
            matrix: Some(Matrix::None),
            cortex: Some(Cortex::Thinned),
            erosion_depth: None,
            soft_tissue_mass: Some(false),
        }
    }

    #[test]
    fn a_complete_form_passes_every_check() {
        let crf = complete();
        assert_eq!(crf.issues("2025-11-01"), vec![]);
        assert_eq!(crf.missing(), vec![]);
        assert_eq!(crf.field_values().len(), ClinicalCrf::FIELDS.len());
    }

    #[test]
    fn an_empty_draft_has_no_issue_but_lists_what_is_required() {
        let crf = ClinicalCrf::default();
        assert!(crf.issues("2025-11-01").is_empty());
        let missing: Vec<String> = crf.missing().into_iter().map(|i| i.field).collect();
        assert!(missing.contains(&"age_years".to_owned()));
        assert!(!missing.contains(&"symptom_onset_date".to_owned()));
        assert!(!missing.contains(&"erosion_depth".to_owned()));
    }

    #[test]
    fn ranges_dates_and_their_order_are_checked() {
        let mut crf = complete();
        crf.age_years = Some(121);
        crf.size_mm = Some(0);
        crf.radiograph_date = Some("2025-11-02".into());
        let codes: Vec<(String, String)> = crf
            .issues("2025-11-01")
            .into_iter()
            .map(|i| (i.field, i.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("age_years".into(), "range".into()),
                ("size_mm".into(), "range".into()),
                ("radiograph_date".into(), "future".into()),
            ]
        );
        let mut crf = complete();
        crf.symptom_onset_date = Some("2025-10-03".into());
        assert_eq!(crf.issues("2025-11-01")[0].code, "order");
        crf.symptom_onset_date = Some("2025-02-30".into());
        assert_eq!(crf.issues("2025-11-01")[0].code, "date");
    }

    #[test]
    fn erosion_depth_goes_with_endosteal_erosion_only() {
        let mut crf = complete();
        crf.cortex = Some(Cortex::EndostealErosion);
        assert_eq!(crf.missing()[0].field, "erosion_depth");
        crf.erosion_depth = Some(ErosionDepth::OverTwoThirds);
        assert!(crf.missing().is_empty());
        crf.cortex = Some(Cortex::Intact);
        assert_eq!(crf.issues("2025-11-01")[0].code, "not_applicable");
    }

    #[test]
    fn symptoms_without_an_onset_date_are_incomplete() {
        let mut crf = complete();
        crf.symptom_onset_date = None;
        assert_eq!(crf.missing()[0].field, "symptom_onset_date");
        crf.symptoms.clear();
        assert!(crf.missing().is_empty());
    }
}
