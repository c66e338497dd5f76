//! The CSV tables of the export, one per table of the snapshot, and the
//! data dictionary that describes their columns.

use osteo_trial::case::crf::ClinicalCrf;
use osteo_trial::study::accuracy::{latest, rows};
use serde_json::Value;
use std::collections::BTreeMap;

/// A table of the export: its columns with their meaning.
struct Spec {
    name: &'static str,
    about: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const SPECS: &[Spec] = &[
    Spec {
        name: "screening",
        about: "every screened patient, latest version of the entry",
        columns: &[
            ("screening_id", "internal id of the entry"),
            ("site_id", "site (internal id)"),
            ("screening_no", "consecutive screening number within the site"),
            ("arm", "prospective | retrospective"),
            ("study_no", "study number within the arm when enrolled (P-/R- prefix by arm)"),
            ("screening_date", "YYYY-MM-DD"),
            ("inclusion_met", "1 = bone tumour to be confirmed by biopsy or surgery"),
            ("exclusions", "exclusion codes, comma-separated: E1 poor radiographs, E2 no matching clinical/pathology data, E3 not a limb bone or not osteolytic"),
            ("outcome", "enrolled | excluded | not_enrolled"),
            ("not_enrolled_reason", "declined | missed | inclusion_not_met"),
            ("version", "version of the entry (corrections add versions)"),
        ],
    },
    Spec {
        name: "cases",
        about: "one row per enrolled patient",
        columns: &[
            ("id", "case id (joins the other tables as case_id)"),
            ("screening_id", "the screening entry"),
            ("arm", "prospective | retrospective"),
            ("study_no", "study number within the arm"),
            ("state", "enrolled … complete | withdrawn | excluded"),
            ("end_reason", "withdrawal reason or exclusion code when ended early"),
        ],
    },
    Spec {
        name: "crf",
        about: "clinical CRF, latest version per case; units in the column names",
        columns: &[],
    },
    Spec {
        name: "reads",
        about: "blinded radiologist reads (signed ones are locked)",
        columns: &[
            ("case_id", "case"),
            ("reader_id", "radiologist (internal id)"),
            ("points", "Bone-RADS points (empty = cannot be assessed)"),
            ("category", "Bone-RADS category 0–4"),
            ("rule_version", "Bone-RADS rule table the read was scored with"),
            ("likelihood", "reader's malignancy likelihood 0–100"),
            ("call", "benign | malignant"),
            ("signed_at", "signature time (UTC); empty = unsigned draft"),
        ],
    },
    Spec {
        name: "predictions",
        about: "locked AI predictions",
        columns: &[
            ("case_id", "case"),
            ("probability", "malignancy probability 0–1"),
            ("threshold", "operating threshold; call is malignant at or above"),
            ("call", "benign | malignant"),
            ("model_id", "model version"),
            ("weights_sha256", "SHA-256 of the model weights"),
            ("record_sha256", "SHA-256 of the locked prediction record"),
            ("created_at", "time the prediction was locked (UTC)"),
            ("out_of_domain", "1 = the views were outside the model's training domain, 0 = inside, empty = not judged"),
        ],
    },
    Spec {
        name: "pathology",
        about: "reference standard, latest version per case",
        columns: &[
            ("case_id", "case"),
            ("version", "version (corrections add versions)"),
            ("entity", "WHO 2020 entity code"),
            ("morphology", "ICD-O-3 morphology"),
            ("behaviour", "ICD-O behaviour 0 | 1 | 3"),
            ("tier", "benign | intermediate | malignant"),
            ("procedure", "biopsy | resection"),
            ("specimen_date", "YYYY-MM-DD"),
        ],
    },
];

/// A snapshot value as the text of a CSV cell or an XML attribute (null: empty).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn crf_columns() -> Vec<String> {
    ["case_id", "version", "complete"]
        .into_iter()
        .map(str::to_owned)
        .chain(ClinicalCrf::FIELDS.iter().map(|f| (*f).to_owned()))
        .collect()
}

/// One file of the export as CSV bytes, or `None` for an unknown name.
pub fn file(data: &Value, name: &str) -> Option<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let table = name.strip_suffix(".csv")?;
    if table == "dictionary" {
        w.write_record(["table", "column", "meaning"]).ok()?;
        for s in SPECS {
            w.write_record([s.name, "", s.about]).ok()?;
            if s.name == "crf" {
                for c in crf_columns() {
                    w.write_record([
                        "crf",
                        c.as_str(),
                        "see the CRF (PROTOCOL.md); codes as in the interface",
                    ])
                    .ok()?;
                }
            }
            for (c, m) in s.columns {
                w.write_record([s.name, c, m]).ok()?;
            }
        }
        return w.into_inner().ok();
    }
    let spec = SPECS.iter().find(|s| s.name == table)?;
    let records: Vec<Vec<String>> = match table {
        "screening" => {
            let versions = latest(data, "screening_versions", "screening_id");
            rows(data, "screenings")
                .map(|s| {
                    let v = s["id"]
                        .as_i64()
                        .and_then(|id| versions.get(&id))
                        .copied()
                        .unwrap_or(&Value::Null);
                    spec.columns
                        .iter()
                        .map(|(c, _)| match *c {
                            "screening_id" => text(&s["id"]),
                            "site_id" | "screening_no" | "arm" | "study_no" => text(&s[*c]),
                            other => text(&v[other]),
                        })
                        .collect()
                })
                .collect()
        }
        "crf" => {
            let cols = crf_columns();
            w.write_record(&cols).ok()?;
            for (case, v) in latest(data, "crf_versions", "case_id") {
                let form: Option<ClinicalCrf> = v["data"]
                    .as_str()
                    .and_then(|d| serde_json::from_str(d).ok());
                let values: BTreeMap<&str, String> = form
                    .map(|f| {
                        let symptoms = f
                            .symptoms
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(";");
                        f.field_values()
                            .into_iter()
                            .map(|(k, val)| {
                                (
                                    k,
                                    if k == "symptoms" {
                                        symptoms.clone()
                                    } else {
                                        val
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut record = vec![case.to_string(), text(&v["version"]), text(&v["complete"])];
                record.extend(
                    ClinicalCrf::FIELDS
                        .iter()
                        .map(|f| values.get(f).cloned().unwrap_or_default()),
                );
                w.write_record(&record).ok()?;
            }
            return w.into_inner().ok();
        }
        "pathology" => latest(data, "pathology_versions", "case_id")
            .values()
            .map(|r| spec.columns.iter().map(|(c, _)| text(&r[*c])).collect())
            .collect(),
        other => rows(data, other)
            .map(|r| spec.columns.iter().map(|(c, _)| text(&r[*c])).collect())
            .collect(),
    };
    w.write_record(spec.columns.iter().map(|(c, _)| *c)).ok()?;
    for r in records {
        w.write_record(&r).ok()?;
    }
    w.into_inner().ok()
}
