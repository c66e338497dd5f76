//! Study settings, the dashboard and the database lock in the database.

use super::*;
use crate::audit::{self, Change, Principal};
use crate::case::bonerads::RuleTable;
use crate::case::store::{begin, insert_signature, is_locked, require, Tx};
use crate::case::{CaseError, SignatureMeaning};
use crate::domain::{Permission, Reason};
use crate::screening;
use crate::store::{now_utc, Db};
use sqlx::Row;

/// The current settings.
pub async fn settings(db: &Db) -> Result<StudySettings, CaseError> {
    let row = sqlx::query(
        "SELECT rule_version, readers_per_case, bone_rads_source, dicom_dates FROM study_settings WHERE id = 1",
    )
    .fetch_one(db.pool())
    .await?;
    let versions = sqlx::query("SELECT version FROM bone_rads_rules ORDER BY version")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| r.try_get("version"))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(StudySettings {
        rule_version: row.try_get("rule_version")?,
        rule_versions: versions,
        readers_per_case: row.try_get("readers_per_case")?,
        bone_rads_source: row.try_get("bone_rads_source")?,
        dicom_dates: row.try_get("dicom_dates")?,
    })
}

/// The rule table of a version.
pub async fn rule_table(db: &Db, version: &str) -> Result<RuleTable, CaseError> {
    let row = sqlx::query("SELECT rules FROM bone_rads_rules WHERE version = $1")
        .bind(version)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| CaseError::UnknownRuleTable(version.to_owned()))?;
    Ok(serde_json::from_str(&row.try_get::<String, _>("rules")?)?)
}

async fn reads_exist(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM reads LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// Sets one column of the study settings and audits the change.
async fn set_column(
    tx: &mut Tx,
    by: &Principal,
    column: &'static str,
    old: Option<String>,
    new: &str,
) -> Result<(), CaseError> {
    sqlx::query(&format!(
        "UPDATE study_settings SET {column} = $1, updated_at = $2, updated_by = $3 WHERE id = 1"
    ))
    .bind(new)
    .bind(now_utc())
    .bind(by.user_id)
    .execute(&mut **tx)
    .await?;
    audit::append(
        tx,
        by,
        Change::new("settings.change", "study", 1).field(column, old, Some(new.to_owned())),
    )
    .await?;
    Ok(())
}

/// Confirms the Bone-RADS rule table every read will be scored with; fixed
/// once the first read is saved.
pub async fn confirm_rule_table(
    db: &Db,
    by: &Principal,
    version: &str,
) -> Result<StudySettings, CaseError> {
    require(by, Permission::ManageStudy)?;
    rule_table(db, version).await?;
    let mut tx = begin(db, by, "settings.rule_table", "study", 1).await?;
    if reads_exist(&mut tx).await? {
        return Err(CaseError::RuleTableInUse);
    }
    let old: Option<String> = sqlx::query("SELECT rule_version FROM study_settings WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?
        .try_get("rule_version")?;
    set_column(&mut tx, by, "rule_version", old, version).await?;
    tx.commit().await?;
    settings(db).await
}

/// Sets how many radiologists read each case (1 to 3) and which score the
/// model takes; fixed once the first read is saved.
pub async fn set_reading(
    db: &Db,
    by: &Principal,
    readers_per_case: i64,
    source: &str,
) -> Result<StudySettings, CaseError> {
    require(by, Permission::ManageStudy)?;
    if !(1..=3).contains(&readers_per_case) {
        return Err(CaseError::UnknownField(format!(
            "readers_per_case = {readers_per_case} (use 1 to 3)"
        )));
    }
    if !["primary_reader", "consensus"].contains(&source) {
        return Err(CaseError::UnknownField(format!(
            "bone_rads_source = {source} (use primary_reader or consensus)"
        )));
    }
    let current = settings(db).await?;
    let mut tx = begin(db, by, "settings.reading", "study", 1).await?;
    if reads_exist(&mut tx).await? {
        return Err(CaseError::RuleTableInUse);
    }
    sqlx::query("UPDATE study_settings SET readers_per_case = $1, bone_rads_source = $2, updated_at = $3, updated_by = $4 WHERE id = 1")
        .bind(readers_per_case)
        .bind(source)
        .bind(now_utc())
        .bind(by.user_id)
        .execute(&mut *tx)
        .await?;
    for (field, old, new) in [
        (
            "readers_per_case",
            current.readers_per_case.to_string(),
            readers_per_case.to_string(),
        ),
        (
            "bone_rads_source",
            current.bone_rads_source.clone(),
            source.to_owned(),
        ),
    ] {
        if old != new {
            audit::append(
                &mut tx,
                by,
                Change::new("settings.change", "study", 1).field(field, Some(old), Some(new)),
            )
            .await?;
        }
    }
    tx.commit().await?;
    settings(db).await
}

/// Sets how dates in stored radiographs are de-identified ([`DICOM_DATES`]);
/// fixed once the first radiograph is stored.
pub async fn set_dicom_dates(
    db: &Db,
    by: &Principal,
    mode: &str,
) -> Result<StudySettings, CaseError> {
    require(by, Permission::ManageStudy)?;
    if !DICOM_DATES.contains(&mode) {
        return Err(CaseError::UnknownField(format!(
            "dicom_dates = {mode} (use keep or shift)"
        )));
    }
    let current = settings(db).await?;
    let mut tx = begin(db, by, "settings.dicom_dates", "study", 1).await?;
    if sqlx::query("SELECT 1 FROM case_images LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(CaseError::DatesInUse);
    }
    set_column(&mut tx, by, "dicom_dates", Some(current.dicom_dates), mode).await?;
    tx.commit().await?;
    settings(db).await
}

/// The number of days the dates of a case's radiographs move by, under the
/// study's `shift` setting (`None` under `keep`): drawn at random (−365 to
/// −1) the first time, the same for every later radiograph of the case.
pub async fn date_shift(db: &Db, case_id: i64) -> Result<Option<i64>, CaseError> {
    if settings(db).await?.dicom_dates != "shift" {
        return Ok(None);
    }
    let drawn: i64 = -rand::Rng::gen_range(&mut rand::thread_rng(), 1..=365);
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO case_date_shifts (case_id, days, created_at) VALUES ($1, $2, $3) ON CONFLICT (case_id) DO NOTHING",
    )
    .bind(case_id)
    .bind(drawn)
    .bind(now_utc())
    .execute(&mut *tx)
    .await?;
    let days: i64 = sqlx::query("SELECT days FROM case_date_shifts WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("days")?;
    tx.commit().await?;
    Ok(Some(days))
}

/// Applies the settings that differ from the current ones (a value equal to
/// the current one is no change, so re-sending a form is harmless).
pub async fn update_settings(
    db: &Db,
    by: &Principal,
    rule_version: Option<&str>,
    readers_per_case: Option<i64>,
    bone_rads_source: Option<&str>,
    dicom_dates: Option<&str>,
) -> Result<StudySettings, CaseError> {
    let mut current = settings(db).await?;
    if let Some(mode) = dicom_dates.filter(|m| *m != current.dicom_dates) {
        current = set_dicom_dates(db, by, mode).await?;
    }
    if let Some(v) = rule_version.filter(|v| current.rule_version.as_deref() != Some(*v)) {
        current = confirm_rule_table(db, by, v).await?;
    }
    let n = readers_per_case.unwrap_or(current.readers_per_case);
    let source = bone_rads_source
        .unwrap_or(&current.bone_rads_source)
        .to_owned();
    if n != current.readers_per_case || source != current.bone_rads_source {
        current = set_reading(db, by, n, &source).await?;
    }
    Ok(current)
}

/// Operational figures only: no accuracy, no pathology, no AI output.
pub async fn dashboard(db: &Db, by: &Principal) -> Result<Dashboard, CaseError> {
    require(by, Permission::ViewDashboard)?;
    let log = screening::log(db, by)
        .await
        .map_err(|e| CaseError::Store(e.to_string()))?;
    let counts = sqlx::query("SELECT state, COUNT(*) AS n FROM cases GROUP BY state")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("state")?.parse::<CaseState>()?,
                r.try_get::<i64, _>("n")?,
            ))
        })
        .collect::<Result<Vec<_>, CaseError>>()?;
    let cases_by_state: Vec<(CaseState, i64)> = CaseState::ALL
        .iter()
        .map(|s| {
            (
                *s,
                counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
            )
        })
        .collect();
    let crf_complete: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases c WHERE EXISTS (SELECT 1 FROM crf_versions v WHERE v.case_id = c.id AND v.complete = 1)",
    )
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    let q = |status: &'static str| async move {
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status = $1")
            .bind(status)
            .fetch_one(db.pool())
            .await?
            .try_get::<i64, _>("n")
    };
    Ok(Dashboard {
        prospective_target: PROSPECTIVE_TARGET,
        enrolled_prospective: log.flow.enrolled_prospective,
        enrolled_retrospective: log.flow.enrolled_retrospective,
        flow: log.flow,
        cases_total: cases_by_state.iter().map(|(_, n)| n).sum(),
        cases_by_state,
        crf_complete,
        open_queries: q("open").await?,
        answered_queries: q("answered").await?,
        locked: is_locked(db.pool()).await?,
    })
}

/// Why the database cannot be locked now.
async fn blockers(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, CaseError> {
    let mut out = Vec::new();
    let open: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status IN ('open', 'answered')")
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    if open > 0 {
        out.push(format!(
            "{open} queries are open or answered but not closed"
        ));
    }
    let unfinished: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases WHERE state NOT IN ('complete', 'withdrawn', 'excluded')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if unfinished > 0 {
        out.push(format!(
            "{unfinished} enrolled cases are neither complete nor withdrawn or excluded"
        ));
    }
    let sap: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM sap_signatures s WHERE s.role = 'statistician' \
         AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = s.version AND p.role = 'principal_investigator')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if sap == 0 {
        out.push(
            "the statistical analysis plan is not yet signed by the statistician and the PI".into(),
        );
    }
    Ok(out)
}

/// The lock, its history, and what stands in its way.
pub async fn lock_status(db: &Db) -> Result<LockStatus, CaseError> {
    let row = sqlx::query("SELECT locked, changed_at, export_sha256 FROM study_lock WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    let events = sqlx::query(
        "SELECT e.action, e.at, u.username, s.printed_name, e.reason, e.export_sha256 FROM lock_events e \
         JOIN users u ON u.id = e.by_user JOIN signatures s ON s.id = e.signature_id ORDER BY e.id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(LockEvent {
            action: r.try_get("action")?,
            at: r.try_get("at")?,
            by: r.try_get("username")?,
            printed_name: r.try_get("printed_name")?,
            reason: r.try_get("reason")?,
            export_sha256: r.try_get("export_sha256")?,
        })
    })
    .collect::<Result<Vec<_>, CaseError>>()?;
    let locked = row.try_get::<i64, _>("locked")? == 1;
    Ok(LockStatus {
        locked,
        changed_at: row.try_get("changed_at")?,
        export_sha256: row.try_get("export_sha256")?,
        events,
        blockers: if locked {
            Vec::new()
        } else {
            blockers(&mut *db.pool().acquire().await?).await?
        },
    })
}

/// The canonical export of the trial data as JSON: every table of the
/// trial in a fixed order, keys sorted. Its SHA-256 identifies the locked
/// dataset; the same data always gives the same bytes.
pub async fn canonical_export(tx: &mut Tx) -> Result<Vec<u8>, CaseError> {
    const TABLES: [(&str, &str); 10] = [
        ("screenings", "SELECT id, site_id, screening_no, arm, study_no FROM screenings ORDER BY id"),
        ("screening_versions", "SELECT screening_id, version, screening_date, inclusion_met, exclusions, outcome, not_enrolled_reason, comment, reason_for_change FROM screening_versions ORDER BY screening_id, version"),
        ("cases", "SELECT id, screening_id, site_id, arm, study_no, state, end_reason FROM cases ORDER BY id"),
        ("case_images", "SELECT case_id, view, sha256 FROM case_images ORDER BY id"),
        ("crf_versions", "SELECT case_id, version, data, complete, reason_for_change FROM crf_versions ORDER BY case_id, version"),
        ("reads", "SELECT case_id, reader_id, data, points, category, rule_version, likelihood, call, signed_at FROM reads ORDER BY case_id, reader_id"),
        ("predictions", "SELECT case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, bone_rads_source, record_sha256, created_at FROM predictions ORDER BY case_id"),
        ("pathology_versions", "SELECT case_id, version, entity, morphology, behaviour, tier, procedure, specimen_date, pathologist, comment, reason_for_change FROM pathology_versions ORDER BY case_id, version"),
        ("signatures", "SELECT entity, entity_id, entity_version, meaning, user_id, printed_name, signed_at, voided_at FROM signatures WHERE entity <> 'database' ORDER BY id"),
        ("study_settings", "SELECT rule_version, readers_per_case, bone_rads_source, dicom_dates FROM study_settings"),
    ];
    let mut out = serde_json::Map::new();
    for (name, sql) in TABLES {
        let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
        let mut list = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut obj = serde_json::Map::new();
            for (i, col) in sqlx::Row::columns(r).iter().enumerate() {
                let name = sqlx::Column::name(col).to_owned();
                let v = if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                    v.map(serde_json::Value::from)
                } else if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
                    v.map(serde_json::Value::from)
                } else {
                    r.try_get::<Option<String>, _>(i)?
                        .map(serde_json::Value::from)
                };
                obj.insert(name, v.unwrap_or(serde_json::Value::Null));
            }
            list.push(serde_json::Value::Object(obj));
        }
        out.insert(name.to_owned(), serde_json::Value::Array(list));
    }
    Ok(serde_json::to_vec(&serde_json::Value::Object(out))?)
}

/// Locks the database with the PI's signature: only when no query is open
/// and every case is complete, withdrawn or excluded. Records the time and
/// the SHA-256 of the canonical export.
pub async fn lock_database(
    db: &Db,
    by: &Principal,
    password: &str,
) -> Result<LockStatus, CaseError> {
    require(by, Permission::LockDatabase)?;
    let name = crate::accounts::reauthenticate(db, by, password)
        .await?
        .display_name;
    let mut tx = begin(db, by, "database.lock", "study", 1).await?;
    let blocking = blockers(&mut tx).await?;
    if !blocking.is_empty() {
        return Err(CaseError::LockBlocked(blocking));
    }
    let export = canonical_export(&mut tx).await?;
    let sha = crate::store::sha256_hex(&export);
    let event = change_lock(&mut tx, by, &name, true, None, Some(&sha)).await?;
    super::locked::keep_snapshot(&mut tx, event, &export).await?;
    tx.commit().await?;
    lock_status(db).await
}

/// Unlocks the database with the PI's signature and a reason.
pub async fn unlock_database(
    db: &Db,
    by: &Principal,
    password: &str,
    reason: &Reason,
) -> Result<LockStatus, CaseError> {
    require(by, Permission::LockDatabase)?;
    let name = crate::accounts::reauthenticate(db, by, password)
        .await?
        .display_name;
    let mut tx = db.begin_write().await?;
    if !is_locked(&mut *tx).await? {
        return Err(CaseError::NotLocked);
    }
    change_lock(&mut tx, by, &name, false, Some(reason.as_str()), None).await?;
    tx.commit().await?;
    lock_status(db).await
}

async fn change_lock(
    tx: &mut Tx,
    by: &Principal,
    printed_name: &str,
    lock: bool,
    reason: Option<&str>,
    sha: Option<&str>,
) -> Result<i64, CaseError> {
    let now = now_utc();
    let event_no: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM lock_events")
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    let meaning = SignatureMeaning::Approval;
    let sig = insert_signature(
        tx,
        by,
        printed_name,
        "database",
        event_no,
        event_no,
        meaning,
    )
    .await?;
    sqlx::query(
        "INSERT INTO lock_events (id, action, at, by_user, signature_id, reason, export_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event_no)
    .bind(if lock { "lock" } else { "unlock" })
    .bind(&now)
    .bind(by.user_id)
    .bind(sig)
    .bind(reason)
    .bind(sha)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE study_lock SET locked = $1, changed_at = $2, export_sha256 = $3 WHERE id = 1",
    )
    .bind(i64::from(lock))
    .bind(&now)
    .bind(sha)
    .execute(&mut **tx)
    .await?;
    audit::append(
        tx,
        by,
        Change::new(
            if lock {
                "database.lock"
            } else {
                "database.unlock"
            },
            "study",
            1,
        )
        .field("locked", Some((!lock).to_string()), Some(lock.to_string()))
        .reason(reason),
    )
    .await?;
    if let Some(sha) = sha {
        audit::append(
            tx,
            by,
            Change::new("database.lock", "study", 1).field(
                "export_sha256",
                None,
                Some(sha.to_owned()),
            ),
        )
        .await?;
    }
    Ok(event_no)
}
