//! The locked data as CDISC ODM 1.3.2 XML (`odm.xml`), for archiving and
//! for exchange with other clinical data systems.
//!
//! A `Snapshot` file of the data at database lock: the study metadata (one
//! study event; the forms Clinical CRF, Blinded read — repeated per reader —,
//! AI prediction and Pathology, with their items), the users and the sites
//! (`AdminData`), and one `SubjectData` per enrolled case keyed by its study
//! number, with the values from the snapshot the lock hashed (the latest
//! version of each form). Audit information:
//! - each `SubjectData` carries the `AuditRecord` of the enrolment, and each
//!   `ItemData` the `AuditRecord` of the last audited change of its value
//!   (for the CRF, the change of that field; for a read, the prediction and
//!   the pathology, the last save of the form);
//! - `ClinicalData/AuditRecords` holds every audit-trail entry about the
//!   cases up to the lock, in order (`ID="AR.<sequence number>"`), with the
//!   action, field and new value in `SourceID`.
//!
//! Screening entries of patients never enrolled are not subjects; they are
//! in `screening.csv`. The mapping of original to replaced DICOM UIDs is
//! never exported.

use super::tables::text;
use osteo_trial::case::crf::ClinicalCrf;
use osteo_trial::store::Db;
use osteo_trial::study::accuracy::{latest, rows};
use osteo_trial::study::StudyError;
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use xml::writer::{EmitterConfig, EventWriter, XmlEvent};

const NS: &str = "http://www.cdisc.org/ns/odm/v1.3";
const MDV: &str = "MDV.1";
const EVENT: &str = "SE.STUDY";

/// One entry of the audit trail about a case.
struct AuditEntry {
    seq: i64,
    at: String,
    actor_id: Option<i64>,
    action: String,
    case_id: i64,
    field: Option<String>,
    new_value: Option<String>,
    reason: Option<String>,
}

/// An item of a form: its name, ODM data type and value.
type Items = Vec<(String, &'static str, String)>;

/// A form of a case: its OID, repeat key, items and the audit entry of its
/// items' last change (per item name, or for the whole form under "").
struct Form<'a> {
    oid: &'static str,
    repeat: Option<String>,
    items: Items,
    audit: BTreeMap<String, &'a AuditEntry>,
}

/// The forms and their item groups, with what they contain.
const FORMS: [(&str, &str, &str, &str); 4] = [
    ("F.CRF", "IG.CRF", "Clinical CRF", "No"),
    ("F.READ", "IG.READ", "Blinded read (Bone-RADS)", "Yes"),
    ("F.AI", "IG.AI", "AI prediction", "No"),
    ("F.PATH", "IG.PATH", "Pathology (reference standard)", "No"),
];

fn group_of(form: &str) -> &'static str {
    FORMS.iter().find(|f| f.0 == form).map_or("IG", |f| f.1)
}

fn item_oid(form: &str, name: &str) -> String {
    format!(
        "I.{}.{}",
        form.trim_start_matches("F."),
        name.to_ascii_uppercase()
    )
}

/// The non-empty columns of a snapshot row as items of the given types.
fn columns(row: &Value, spec: &[(&str, &'static str)]) -> Items {
    spec.iter()
        .map(|(k, ty)| ((*k).to_owned(), *ty, text(&row[*k])))
        .filter(|(_, _, v)| !v.is_empty())
        .collect()
}

fn crf_type(field: &str) -> &'static str {
    match field {
        "age_years" | "size_mm" => "integer",
        "symptom_onset_date" | "radiograph_date" => "date",
        _ => "text",
    }
}

/// The forms of one case from the snapshot.
fn forms<'a>(
    data: &Value,
    case: i64,
    crf: Option<&Value>,
    pathology: Option<&Value>,
    readers: &BTreeMap<i64, usize>,
    trail: &[&'a AuditEntry],
) -> Vec<Form<'a>> {
    let last = |pred: &dyn Fn(&AuditEntry) -> bool| trail.iter().rev().find(|e| pred(e)).copied();
    let mut out = Vec::new();
    if let Some(form) = crf
        .and_then(|v| v["data"].as_str())
        .and_then(|d| serde_json::from_str::<ClinicalCrf>(d).ok())
    {
        let items: Items = form
            .field_values()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), crf_type(k), v))
            .collect();
        let audit = items
            .iter()
            .filter_map(|(k, _, _)| {
                last(&|e| e.action == "crf.save" && e.field.as_deref() == Some(k.as_str()))
                    .map(|e| (k.clone(), e))
            })
            .collect();
        out.push(Form {
            oid: "F.CRF",
            repeat: None,
            items,
            audit,
        });
    }
    for r in rows(data, "reads").filter(|r| r["case_id"].as_i64() == Some(case)) {
        let reader = r["reader_id"].as_i64().unwrap_or_default();
        let mut items: Items = vec![
            (
                "reader".into(),
                "integer",
                readers
                    .get(&reader)
                    .map_or(String::new(), |n| n.to_string()),
            ),
            ("points".into(), "integer", text(&r["points"])),
            ("category".into(), "integer", text(&r["category"])),
            ("rule_version".into(), "text", text(&r["rule_version"])),
            ("likelihood".into(), "integer", text(&r["likelihood"])),
            ("call".into(), "text", text(&r["call"])),
            ("signed_at".into(), "datetime", text(&r["signed_at"])),
        ];
        if let Some(Value::Object(fields)) = r["data"]
            .as_str()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        {
            items.extend(
                fields
                    .iter()
                    .map(|(k, v)| (format!("form_{k}"), "text", text(v))),
            );
        }
        items.retain(|(_, _, v)| !v.is_empty());
        let audit = last(&|e| {
            e.actor_id == Some(reader) && (e.action == "read.save" || e.action == "read.lock")
        })
        .map(|e| (String::new(), e))
        .into_iter()
        .collect();
        out.push(Form {
            oid: "F.READ",
            repeat: Some(
                readers
                    .get(&reader)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
            ),
            items,
            audit,
        });
    }
    if let Some(p) = rows(data, "predictions").find(|p| p["case_id"].as_i64() == Some(case)) {
        let items = columns(
            p,
            &[
                ("probability", "float"),
                ("threshold", "float"),
                ("call", "text"),
                ("model_id", "text"),
                ("weights_sha256", "text"),
                ("record_sha256", "text"),
                ("created_at", "datetime"),
                ("out_of_domain", "integer"),
            ],
        );
        let audit = last(&|e| e.action == "prediction.lock")
            .map(|e| (String::new(), e))
            .into_iter()
            .collect();
        out.push(Form {
            oid: "F.AI",
            repeat: None,
            items,
            audit,
        });
    }
    if let Some(p) = pathology {
        let items = columns(
            p,
            &[
                ("version", "integer"),
                ("entity", "text"),
                ("morphology", "text"),
                ("behaviour", "integer"),
                ("tier", "text"),
                ("procedure", "text"),
                ("specimen_date", "date"),
            ],
        );
        let audit = last(&|e| e.action == "pathology.enter")
            .map(|e| (String::new(), e))
            .into_iter()
            .collect();
        out.push(Form {
            oid: "F.PATH",
            repeat: None,
            items,
            audit,
        });
    }
    out
}

/// Writes XML events; the first error is kept and returned at the end.
struct Xml {
    w: EventWriter<Vec<u8>>,
    error: Option<xml::writer::Error>,
}

impl Xml {
    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let mut e = XmlEvent::start_element(name);
        for (k, v) in attrs {
            e = e.attr(*k, v);
        }
        self.emit(e);
    }

    fn close(&mut self) {
        self.emit(XmlEvent::end_element());
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], body: Option<&str>) {
        self.open(name, attrs);
        if let Some(b) = body {
            self.emit(XmlEvent::characters(b));
        }
        self.close();
    }

    fn emit<'a>(&mut self, e: impl Into<XmlEvent<'a>>) {
        if self.error.is_none() {
            if let Err(err) = self.w.write(e) {
                self.error = Some(err);
            }
        }
    }

    fn audit_record(&mut self, e: &AuditEntry, sites: &BTreeMap<i64, i64>, id: Option<&str>) {
        let mut attrs = vec![
            ("EditPoint", "DataManagement"),
            ("UsedImputationMethod", "No"),
        ];
        if let Some(id) = id {
            attrs.push(("ID", id));
        }
        self.open("AuditRecord", &attrs);
        let user = e
            .actor_id
            .map_or("U.SYSTEM".to_owned(), |u| format!("U.{u}"));
        self.leaf("UserRef", &[("UserOID", &user)], None);
        let site = e.actor_id.and_then(|u| sites.get(&u)).copied().unwrap_or(1);
        self.leaf(
            "LocationRef",
            &[("LocationOID", &format!("LOC.{site}"))],
            None,
        );
        self.leaf("DateTimeStamp", &[], Some(&e.at));
        if let Some(r) = e.reason.as_deref().filter(|r| !r.is_empty()) {
            self.leaf("ReasonForChange", &[], Some(r));
        }
        let source = format!(
            "audit_log {}: {}{}{}",
            e.seq,
            e.action,
            e.field
                .as_deref()
                .map(|f| format!(" {f}"))
                .unwrap_or_default(),
            e.new_value
                .as_deref()
                .map(|v| format!(" = {v}"))
                .unwrap_or_default()
        );
        self.leaf("SourceID", &[], Some(&source));
        self.close();
    }
}

/// The ODM file of a locked snapshot.
pub async fn odm(
    db: &Db,
    snapshot: &osteo_trial::study::LockedSnapshot,
) -> Result<Vec<u8>, StudyError> {
    let pool = db.pool();
    // The trail up to the lock that took the snapshot.
    let lock_seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM audit_log WHERE action = 'database.lock'",
    )
    .fetch_one(pool)
    .await?;
    let trail: Vec<AuditEntry> = sqlx::query(
        "SELECT seq, at, actor_id, action, entity_id, field, new_value, reason FROM audit_log \
         WHERE entity = 'case' AND seq <= $1 ORDER BY seq",
    )
    .bind(lock_seq)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(AuditEntry {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            actor_id: r.try_get("actor_id")?,
            action: r.try_get("action")?,
            case_id: r
                .try_get::<Option<String>, _>("entity_id")?
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
            field: r.try_get("field")?,
            new_value: r.try_get("new_value")?,
            reason: r.try_get("reason")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    // The users and sites as they were at lock, from the snapshot (a
    // snapshot taken before they were part of it falls back to the tables).
    let data = &snapshot.data;
    let study_kind: osteo_trial::domain::StudyKind = rows(data, "study")
        .next()
        .and_then(|s| s["kind"].as_str())
        .and_then(|k| k.parse().ok())
        .unwrap_or_default();
    let mut users: Vec<(i64, String, String, i64)> = rows(data, "users")
        .filter_map(|u| {
            Some((
                u["id"].as_i64()?,
                u["username"].as_str()?.to_owned(),
                u["display_name"].as_str()?.to_owned(),
                u["site_id"].as_i64()?,
            ))
        })
        .collect();
    if data.get("users").is_none() {
        users = sqlx::query("SELECT id, username, display_name, site_id FROM users ORDER BY id")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("username")?,
                    r.try_get("display_name")?,
                    r.try_get("site_id")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
    }
    let mut site_rows: Vec<(i64, String, String)> = rows(data, "sites")
        .filter_map(|s| {
            Some((
                s["id"].as_i64()?,
                s["code"].as_str()?.to_owned(),
                s["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    if data.get("sites").is_none() {
        site_rows = sqlx::query("SELECT id, code, name FROM sites ORDER BY id")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("code")?, r.try_get("name")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    }
    let user_site: BTreeMap<i64, i64> = users.iter().map(|u| (u.0, u.3)).collect();

    let crf = latest(data, "crf_versions", "case_id");
    let pathology = latest(data, "pathology_versions", "case_id");
    // Readers numbered 1, 2, … in account order, as in the analysis.
    let mut reader_ids: Vec<i64> = rows(data, "reads")
        .filter_map(|r| r["reader_id"].as_i64())
        .collect();
    reader_ids.sort_unstable();
    reader_ids.dedup();
    let readers: BTreeMap<i64, usize> = reader_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i + 1))
        .collect();
    let kind = study_kind;
    let cases: Vec<(i64, String, &Value)> = rows(data, "cases")
        .filter_map(|c| {
            let id = c["id"].as_i64()?;
            let arm: osteo_trial::screening::Arm = serde_json::from_value(c["arm"].clone()).ok()?;
            Some((id, arm.label(kind, c["study_no"].as_i64()?), c))
        })
        .collect();
    let case_forms: Vec<Vec<Form>> = cases
        .iter()
        .map(|(id, _, _)| {
            let case_trail: Vec<&AuditEntry> = trail.iter().filter(|e| e.case_id == *id).collect();
            forms(
                data,
                *id,
                crf.get(id).copied(),
                pathology.get(id).copied(),
                &readers,
                &case_trail,
            )
        })
        .collect();

    let mut x = Xml {
        w: EventWriter::new_with_config(Vec::new(), EmitterConfig::new().perform_indent(true)),
        error: None,
    };
    let study = study_kind.registration();
    let version = format!("Osteo EDC {}", env!("CARGO_PKG_VERSION"));
    let file_oid = format!("{study}.LOCK.{}", snapshot.dataset_sha256);
    x.emit(XmlEvent::StartDocument {
        version: xml::common::XmlVersion::Version10,
        encoding: Some("UTF-8"),
        standalone: None,
    });
    x.emit(
        XmlEvent::start_element("ODM")
            .default_ns(NS)
            .attr("ODMVersion", "1.3.2")
            .attr("FileType", "Snapshot")
            .attr("Granularity", "All")
            .attr("FileOID", &file_oid)
            .attr("CreationDateTime", &snapshot.locked_at)
            .attr("AsOfDateTime", &snapshot.locked_at)
            .attr("Originator", &version)
            .attr("SourceSystem", "Osteo EDC")
            .attr("SourceSystemVersion", env!("CARGO_PKG_VERSION"))
            .attr(
                "Description",
                &format!(
                    "Locked data of {study}, dataset SHA-256 {}",
                    snapshot.dataset_sha256
                ),
            ),
    );

    // Metadata.
    x.open("Study", &[("OID", study)]);
    x.open("GlobalVariables", &[]);
    x.leaf("StudyName", &[], Some(study));
    x.leaf("StudyDescription", &[], Some(study_kind.titles().0));
    x.leaf("ProtocolName", &[], Some(study));
    x.close();
    x.open(
        "MetaDataVersion",
        &[("OID", MDV), ("Name", "Osteo EDC forms")],
    );
    x.open("Protocol", &[]);
    x.leaf(
        "StudyEventRef",
        &[
            ("StudyEventOID", EVENT),
            ("OrderNumber", "1"),
            ("Mandatory", "Yes"),
        ],
        None,
    );
    x.close();
    x.open(
        "StudyEventDef",
        &[
            ("OID", EVENT),
            ("Name", "Study"),
            ("Repeating", "No"),
            ("Type", "Common"),
        ],
    );
    for (i, (form, _, _, _)) in FORMS.iter().enumerate() {
        x.leaf(
            "FormRef",
            &[
                ("FormOID", form),
                ("OrderNumber", &(i + 1).to_string()),
                ("Mandatory", "No"),
            ],
            None,
        );
    }
    x.close();
    for (form, group, name, repeating) in FORMS {
        x.open(
            "FormDef",
            &[("OID", form), ("Name", name), ("Repeating", repeating)],
        );
        x.leaf(
            "ItemGroupRef",
            &[("ItemGroupOID", group), ("Mandatory", "Yes")],
            None,
        );
        x.close();
    }
    // Every item that occurs, per form, with its type.
    let mut defs: BTreeMap<&str, BTreeMap<String, &str>> = BTreeMap::new();
    for f in case_forms.iter().flatten() {
        let entry = defs.entry(f.oid).or_default();
        for (name, ty, _) in &f.items {
            entry.insert(name.clone(), ty);
        }
    }
    for (form, group, name, _) in FORMS {
        x.open(
            "ItemGroupDef",
            &[("OID", group), ("Name", name), ("Repeating", "No")],
        );
        for item in defs.get(form).into_iter().flat_map(|d| d.keys()) {
            x.leaf(
                "ItemRef",
                &[("ItemOID", &item_oid(form, item)), ("Mandatory", "No")],
                None,
            );
        }
        x.close();
    }
    for (form, items) in &defs {
        for (item, ty) in items {
            x.leaf(
                "ItemDef",
                &[
                    ("OID", &item_oid(form, item)),
                    ("Name", item),
                    ("DataType", ty),
                ],
                None,
            );
        }
    }
    x.close(); // MetaDataVersion
    x.close(); // Study

    // Users and sites.
    x.open("AdminData", &[("StudyOID", study)]);
    for (id, login, name, site) in &users {
        x.open("User", &[("OID", &format!("U.{id}"))]);
        x.leaf("LoginName", &[], Some(login));
        x.leaf("DisplayName", &[], Some(name));
        x.leaf(
            "LocationRef",
            &[("LocationOID", &format!("LOC.{site}"))],
            None,
        );
        x.close();
    }
    x.open("User", &[("OID", "U.SYSTEM")]);
    x.leaf("LoginName", &[], Some("system"));
    x.leaf(
        "DisplayName",
        &[],
        Some("Osteo EDC (the AI worker and other automatic steps)"),
    );
    x.close();
    for (id, code, name) in &site_rows {
        x.open(
            "Location",
            &[
                ("OID", &format!("LOC.{id}")),
                ("Name", &format!("{code} {name}")),
                ("LocationType", "Site"),
            ],
        );
        let effective = snapshot.locked_at.get(..10).unwrap_or("2025-06-01");
        x.leaf(
            "MetaDataVersionRef",
            &[
                ("StudyOID", study),
                ("MetaDataVersionOID", MDV),
                ("EffectiveDate", effective),
            ],
            None,
        );
        x.close();
    }
    x.close();

    // The data.
    x.open(
        "ClinicalData",
        &[("StudyOID", study), ("MetaDataVersionOID", MDV)],
    );
    for ((id, key, _), forms) in cases.iter().zip(&case_forms) {
        x.open("SubjectData", &[("SubjectKey", key)]);
        if let Some(e) = trail
            .iter()
            .find(|e| e.case_id == *id && e.action == "case.create")
        {
            x.audit_record(e, &user_site, None);
        }
        x.open("StudyEventData", &[("StudyEventOID", EVENT)]);
        for f in forms {
            let mut attrs = vec![("FormOID", f.oid)];
            if let Some(r) = f.repeat.as_deref() {
                attrs.push(("FormRepeatKey", r));
            }
            x.open("FormData", &attrs);
            x.open("ItemGroupData", &[("ItemGroupOID", group_of(f.oid))]);
            for (name, _, value) in &f.items {
                x.open(
                    "ItemData",
                    &[("ItemOID", &item_oid(f.oid, name)), ("Value", value)],
                );
                if let Some(e) = f.audit.get(name).or_else(|| f.audit.get("")) {
                    x.audit_record(e, &user_site, None);
                }
                x.close();
            }
            x.close();
            x.close();
        }
        x.close();
        x.close();
    }
    x.open("AuditRecords", &[]);
    for e in &trail {
        x.audit_record(e, &user_site, Some(&format!("AR.{}", e.seq)));
    }
    x.close();
    x.close(); // ClinicalData
    x.close(); // ODM
    if let Some(e) = x.error {
        return Err(StudyError::Analysis(format!(
            "the ODM file could not be written: {e}"
        )));
    }
    let mut bytes = x.w.into_inner();
    bytes.push(b'\n');
    Ok(bytes)
}
