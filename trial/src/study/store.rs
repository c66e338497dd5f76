//! Study settings, the dashboard and the database lock in the database.

use super::*;
use crate::audit::{self, Change, Principal};
use crate::case::bonerads::RuleTable;

use super::StudyError;
use crate::case::{BoneRadsSource, SignatureMeaning};
use crate::domain::{Permission, Reason};
use crate::screening;
use crate::store::{now_utc, Db};
use crate::write::{begin, is_locked, require, Tx};
use sqlx::Row;

/// The current settings.
pub async fn settings(db: &Db) -> Result<StudySettings, StudyError> {
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
        bone_rads_source: row.try_get::<String, _>("bone_rads_source")?.parse()?,
        dicom_dates: row.try_get("dicom_dates")?,
        kind: crate::screening::study_kind(db.pool()).await?,
    })
}

/// The rule table of a version.
pub async fn rule_table(db: &Db, version: &str) -> Result<RuleTable, StudyError> {
    let row = sqlx::query("SELECT rules FROM bone_rads_rules WHERE version = $1")
        .bind(version)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| StudyError::UnknownRuleTable(version.to_owned()))?;
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
) -> Result<(), StudyError> {
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
) -> Result<StudySettings, StudyError> {
    require(by, Permission::ManageStudy)?;
    rule_table(db, version).await?;
    let mut tx = begin(db, by, "settings.rule_table", "study", 1).await?;
    if reads_exist(&mut tx).await? {
        return Err(StudyError::RuleTableInUse);
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
    source: BoneRadsSource,
) -> Result<StudySettings, StudyError> {
    require(by, Permission::ManageStudy)?;
    if !(1..=3).contains(&readers_per_case) {
        return Err(StudyError::InvalidSetting(format!(
            "readers_per_case = {readers_per_case} (use 1 to 3)"
        )));
    }
    let current = settings(db).await?;
    let mut tx = begin(db, by, "settings.reading", "study", 1).await?;
    if reads_exist(&mut tx).await? {
        return Err(StudyError::RuleTableInUse);
    }
    sqlx::query("UPDATE study_settings SET readers_per_case = $1, bone_rads_source = $2, updated_at = $3, updated_by = $4 WHERE id = 1")
        .bind(readers_per_case)
        .bind(source.as_str())
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
            current.bone_rads_source.to_string(),
            source.to_string(),
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
) -> Result<StudySettings, StudyError> {
    require(by, Permission::ManageStudy)?;
    if !DICOM_DATES.contains(&mode) {
        return Err(StudyError::InvalidSetting(format!(
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
        return Err(StudyError::DatesInUse);
    }
    set_column(&mut tx, by, "dicom_dates", Some(current.dicom_dates), mode).await?;
    tx.commit().await?;
    settings(db).await
}

/// The number of days the dates of a case's radiographs move by, under the
/// study's `shift` setting (`None` under `keep`): drawn at random (−365 to
/// −1) the first time, the same for every later radiograph of the case.
pub async fn date_shift(db: &Db, case_id: i64) -> Result<Option<i64>, StudyError> {
    if settings(db).await?.dicom_dates != "shift" {
        return Ok(None);
    }
    let drawn: i64 = -rand::Rng::gen_range(&mut rand::thread_rng(), 1..=365);
    let mut tx = db.begin_write().await?;
    // Inside the write lock, so no other writer draws between the two.
    let exists = sqlx::query("SELECT 1 FROM case_date_shifts WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        sqlx::query("INSERT INTO case_date_shifts (case_id, days, created_at) VALUES ($1, $2, $3)")
            .bind(case_id)
            .bind(drawn)
            .bind(now_utc())
            .execute(&mut *tx)
            .await?;
    }
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
    bone_rads_source: Option<BoneRadsSource>,
    dicom_dates: Option<&str>,
) -> Result<StudySettings, StudyError> {
    let mut current = settings(db).await?;
    if let Some(mode) = dicom_dates.filter(|m| *m != current.dicom_dates) {
        current = set_dicom_dates(db, by, mode).await?;
    }
    if let Some(v) = rule_version.filter(|v| current.rule_version.as_deref() != Some(*v)) {
        current = confirm_rule_table(db, by, v).await?;
    }
    let n = readers_per_case.unwrap_or(current.readers_per_case);
    let source = bone_rads_source.unwrap_or(current.bone_rads_source);
    if n != current.readers_per_case || source != current.bone_rads_source {
        current = set_reading(db, by, n, source).await?;
    }
    Ok(current)
}

/// Operational figures only: no accuracy, no pathology, no AI output.
pub async fn dashboard(db: &Db, by: &Principal) -> Result<Dashboard, StudyError> {
    require(by, Permission::ViewDashboard)?;
    let log = screening::log(db, by).await?;
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
        .collect::<Result<Vec<_>, StudyError>>()?;
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
async fn blockers(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, StudyError> {
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
pub async fn lock_status(db: &Db) -> Result<LockStatus, StudyError> {
    let row = sqlx::query("SELECT locked, changed_at, export_sha256 FROM study_lock WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    let events = sqlx::query(
        "SELECT e.action, e.kind, e.at, u.username, s.printed_name, e.reason, e.early_stop_reason, e.export_sha256 \
         FROM lock_events e JOIN users u ON u.id = e.by_user JOIN signatures s ON s.id = e.signature_id ORDER BY e.id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(LockEvent {
            action: r.try_get("action")?,
            kind: r
                .try_get::<Option<String>, _>("kind")?
                .map(|k| k.parse())
                .transpose()?,
            at: r.try_get("at")?,
            by: r.try_get("username")?,
            printed_name: r.try_get("printed_name")?,
            reason: r.try_get("reason")?,
            early_stop_reason: r.try_get("early_stop_reason")?,
            export_sha256: r.try_get("export_sha256")?,
        })
    })
    .collect::<Result<Vec<_>, StudyError>>()?;
    let locked = row.try_get::<i64, _>("locked")? == 1;
    let kind = if locked {
        events
            .iter()
            .rev()
            .find(|e| e.action == "lock")
            .and_then(|e| e.kind)
    } else {
        None
    };
    let unlock_signatures = if locked {
        sqlx::query(
            "SELECT role, printed_name, reason, signed_at FROM unlock_signatures \
             WHERE lock_event_id = (SELECT MAX(id) FROM lock_events WHERE action = 'lock') ORDER BY signed_at",
        )
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(UnlockSignature {
                role: r.try_get("role")?,
                printed_name: r.try_get("printed_name")?,
                reason: r.try_get("reason")?,
                signed_at: r.try_get("signed_at")?,
            })
        })
        .collect::<Result<Vec<_>, StudyError>>()?
    } else {
        Vec::new()
    };
    Ok(LockStatus {
        locked,
        kind,
        changed_at: row.try_get("changed_at")?,
        export_sha256: row.try_get("export_sha256")?,
        events,
        blockers: if locked {
            Vec::new()
        } else {
            blockers(&mut *db.pool().acquire().await?).await?
        },
        unlock_signatures,
        enrolled_prospective: enrolled_prospective(db.pool()).await?,
    })
}

/// Prospective patients enrolled (every case of the arm, whatever became of it).
async fn enrolled_prospective<'e, E>(executor: E) -> Result<i64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("SELECT COUNT(*) AS n FROM cases WHERE arm = 'prospective'")
        .fetch_one(executor)
        .await?
        .try_get("n")
}

/// The tables of the canonical export, in order, with the columns that make
/// up the locked dataset. Besides the clinical records it holds what the
/// analysis rests on and a reviewer re-checks: read assignments, queries,
/// quality marks, failed model runs, case ends, protocol deviations, the
/// pinned model, the signed analysis plan, each stored radiograph's
/// SHA-256 and de-identification record, and the users and sites as they
/// were at lock (the ODM file takes its users from here).
const CANONICAL_TABLES: [(&str, &str); 23] = [
    ("study", "SELECT registration, kind, title_en, title_zh FROM study"),
    ("sites", "SELECT id, code, name FROM sites ORDER BY id"),
    ("users", "SELECT id, username, display_name, role, site_id, active FROM users ORDER BY id"),
    ("screenings", "SELECT id, site_id, screening_no, arm, study_no FROM screenings ORDER BY id"),
    ("screening_versions", "SELECT screening_id, version, screening_date, inclusion_met, exclusions, outcome, not_enrolled_reason, comment, reason_for_change FROM screening_versions ORDER BY screening_id, version"),
    ("cases", "SELECT id, screening_id, site_id, arm, study_no, state, end_reason FROM cases ORDER BY id"),
    ("case_ends", "SELECT case_id, kind, code, from_state, reason, at, by_user, printed_name, meaning FROM case_ends ORDER BY case_id"),
    ("case_images", "SELECT case_id, view, sha256, original_sha256, modality, transfer_syntax, rows_px, columns_px, photometric, body_part, laterality, warnings, added_at FROM case_images ORDER BY id"),
    ("quality_marks", "SELECT case_id, reason, marked_at, marked_by FROM quality_marks ORDER BY id"),
    ("crf_versions", "SELECT case_id, version, data, complete, reason_for_change FROM crf_versions ORDER BY case_id, version"),
    ("deviations", "SELECT case_id, crf_version, field, old_value, new_value, reason, at, by_user, printed_name FROM deviations ORDER BY id"),
    ("read_assignments", "SELECT case_id, reader_id, ordinal, assigned_at, assigned_by FROM read_assignments ORDER BY case_id, COALESCE(ordinal, 0), reader_id"),
    ("reads", "SELECT case_id, reader_id, data, points, category, rule_version, likelihood, call, signed_at FROM reads ORDER BY case_id, reader_id"),
    ("model_pins", "SELECT model_id, weights_sha256, card_sha256, card, pinned_at, by_user, printed_name FROM model_pins ORDER BY id"),
    ("predictions", "SELECT case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, bone_rads_source, record_sha256, created_at FROM predictions ORDER BY case_id"),
    ("ai_failures", "SELECT case_id, attempt, model_id, error, at FROM ai_failures ORDER BY case_id, attempt"),
    ("pathology_versions", "SELECT case_id, version, entity, morphology, behaviour, tier, procedure, specimen_date, pathologist, comment, reason_for_change FROM pathology_versions ORDER BY case_id, version"),
    ("signatures", "SELECT entity, entity_id, entity_version, meaning, user_id, printed_name, signed_at, voided_at FROM signatures WHERE entity <> 'database' ORDER BY id"),
    ("queries", "SELECT id, case_id, field, status, raised_by, raised_at FROM queries ORDER BY id"),
    ("query_messages", "SELECT query_id, seq, action, text, created_by, created_at FROM query_messages ORDER BY query_id, seq"),
    ("sap_versions", "SELECT v.version, v.settings, v.created_by, v.created_at FROM sap_versions v WHERE EXISTS (SELECT 1 FROM sap_signatures s WHERE s.version = v.version AND s.role = 'statistician') AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = v.version AND p.role = 'principal_investigator') ORDER BY v.version"),
    ("sap_signatures", "SELECT version, role, user_id, printed_name, signed_at FROM sap_signatures ORDER BY version, role"),
    ("study_settings", "SELECT rule_version, readers_per_case, bone_rads_source, dicom_dates FROM study_settings"),
];

/// The canonical export of the trial data as JSON: every table of
/// [`CANONICAL_TABLES`] in a fixed order, keys sorted. Its SHA-256
/// identifies the locked dataset; the same data always gives the same bytes.
pub async fn canonical_export(tx: &mut Tx) -> Result<Vec<u8>, StudyError> {
    let mut out = serde_json::Map::new();
    for (name, sql) in CANONICAL_TABLES {
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
/// and every case is complete, withdrawn or excluded. An interim lock is a
/// look the PI and the monitor can undo together; the final lock is never
/// undone and needs the enrolment target, or a reason for stopping early
/// (which the PI's signature covers). Records the time and the SHA-256 of
/// the canonical export, keeps the export as the lock's snapshot, writes the
/// look into the data access history and signs the audit chain's head.
pub async fn lock_database(
    db: &Db,
    by: &Principal,
    password: &str,
    kind: LockKind,
    early_stop_reason: Option<&Reason>,
) -> Result<LockStatus, StudyError> {
    require(by, Permission::LockDatabase)?;
    let name = crate::accounts::reauthenticate(db, by, password)
        .await?
        .display_name;
    let mut tx = begin(db, by, "database.lock", "study", 1).await?;
    if final_lock_exists(&mut tx).await? {
        return Err(StudyError::FinalLock);
    }
    let blocking = blockers(&mut tx).await?;
    if !blocking.is_empty() {
        return Err(StudyError::LockBlocked(blocking));
    }
    let enrolled = enrolled_prospective(&mut *tx).await?;
    if kind == LockKind::Final && enrolled < PROSPECTIVE_TARGET && early_stop_reason.is_none() {
        return Err(StudyError::TargetNotMet {
            target: PROSPECTIVE_TARGET,
            enrolled,
        });
    }
    let early = early_stop_reason
        .filter(|_| kind == LockKind::Final)
        .map(Reason::as_str);
    let export = canonical_export(&mut tx).await?;
    let sha = crate::store::sha256_hex(&export);
    let event = change_lock(
        &mut tx,
        by,
        &name,
        LockChange::Lock { kind, early },
        Some(&sha),
    )
    .await?;
    super::locked::keep_snapshot(&mut tx, event, &export).await?;
    let locked_at: String = sqlx::query("SELECT at FROM lock_events WHERE id = $1")
        .bind(event)
        .fetch_one(&mut *tx)
        .await?
        .try_get("at")?;
    record_access_at(
        &mut tx,
        by,
        "database.lock",
        &format!("{kind} lock, dataset SHA-256 {sha}"),
        &locked_at,
    )
    .await?;
    if let Some(key) = db.anchor_key() {
        audit::anchor::anchor_in(&mut tx, key, "lock", Some(event)).await?;
    }
    tx.commit().await?;
    lock_status(db).await
}

async fn final_lock_exists(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM lock_events WHERE action = 'lock' AND kind = 'final'")
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Signs the unlock of an interim lock, as the PI or the monitor, with a
/// reason: the database unlocks when both have signed. A final lock is
/// never undone.
pub async fn unlock_database(
    db: &Db,
    by: &Principal,
    password: &str,
    reason: &Reason,
) -> Result<LockStatus, StudyError> {
    require(by, Permission::SignUnlock)?;
    let role = by.role.as_str();
    let name = crate::accounts::reauthenticate(db, by, password)
        .await?
        .display_name;
    let mut tx = db.begin_write().await?;
    if !is_locked(&mut *tx).await? {
        return Err(StudyError::NotLocked);
    }
    if final_lock_exists(&mut tx).await? {
        drop(tx);
        audit::record(
            db,
            by,
            Change::new("database.unlock_refused", "study", 1)
                .field("refused", None, Some(StudyError::FinalLock.to_string()))
                .reason(Some(reason.as_str())),
        )
        .await?;
        return Err(StudyError::FinalLock);
    }
    let lock_event: i64 =
        sqlx::query("SELECT MAX(id) AS id FROM lock_events WHERE action = 'lock'")
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
    let signed: Vec<String> =
        sqlx::query("SELECT role FROM unlock_signatures WHERE lock_event_id = $1")
            .bind(lock_event)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("role"))
            .collect::<Result<_, _>>()?;
    if signed.iter().any(|r| r == role) {
        return Err(StudyError::AlreadySigned(role.replace('_', " ")));
    }
    sqlx::query(
        "INSERT INTO unlock_signatures (lock_event_id, role, user_id, printed_name, reason, signed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(lock_event)
    .bind(role)
    .bind(by.user_id)
    .bind(&name)
    .bind(reason.as_str())
    .bind(now_utc())
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("signature.apply", "unlock", lock_event)
            .field(
                "signature",
                None,
                Some(format!(
                    "{name} ({}) approval of the unlock as {role}",
                    by.name
                )),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    if signed.len() + 1 >= 2 {
        change_lock(
            &mut tx,
            by,
            &name,
            LockChange::Unlock(reason.as_str()),
            None,
        )
        .await?;
        record_access(&mut tx, by, "database.unlock", reason.as_str()).await?;
        if let Some(key) = db.anchor_key() {
            audit::anchor::anchor_in(&mut tx, key, "unlock", None).await?;
        }
    }
    tx.commit().await?;
    lock_status(db).await
}

/// What a lock event does.
enum LockChange<'a> {
    Lock {
        kind: LockKind,
        early: Option<&'a str>,
    },
    Unlock(&'a str),
}

async fn change_lock(
    tx: &mut Tx,
    by: &Principal,
    printed_name: &str,
    change: LockChange<'_>,
    sha: Option<&str>,
) -> Result<i64, StudyError> {
    let now = now_utc();
    let (lock, kind, early, reason) = match change {
        LockChange::Lock { kind, early } => (true, Some(kind), early, None),
        LockChange::Unlock(reason) => (false, None, None, Some(reason)),
    };
    let event_no: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM lock_events")
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    let meaning = SignatureMeaning::Approval;
    let sig = crate::write::sign(
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
        "INSERT INTO lock_events (id, action, at, by_user, signature_id, reason, export_sha256, kind, early_stop_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event_no)
    .bind(if lock { "lock" } else { "unlock" })
    .bind(&now)
    .bind(by.user_id)
    .bind(sig)
    .bind(reason)
    .bind(sha)
    .bind(kind.map(LockKind::as_str))
    .bind(early)
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
        .reason(reason.or(early)),
    )
    .await?;
    if let Some(kind) = kind {
        audit::append(
            tx,
            by,
            Change::new("database.lock", "study", 1).field("kind", None, Some(kind.to_string())),
        )
        .await?;
    }
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

/// Writes a look at the data into the data access history, while the
/// database has no final lock (after it, downloads are audited only: the
/// history lists the looks that came before the final analysis).
pub(crate) async fn record_access(
    tx: &mut Tx,
    by: &Principal,
    action: &str,
    detail: &str,
) -> Result<(), StudyError> {
    record_access_at(tx, by, action, detail, &now_utc()).await
}

/// [`record_access`] at a given time (a lock's own time, so that the report
/// of a lock lists the lock itself).
async fn record_access_at(
    tx: &mut Tx,
    by: &Principal,
    action: &str,
    detail: &str,
    at: &str,
) -> Result<(), StudyError> {
    // The final lock itself is the last look the history lists.
    if action != "database.lock" && final_lock_exists(tx).await? {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO data_access (at, user_id, actor, role, action, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(by.user_id)
    .bind(&by.name)
    .bind(by.role.as_str())
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The data access history up to and including `until` (RFC 3339 UTC).
pub async fn data_access(db: &Db, until: Option<&str>) -> Result<Vec<DataAccess>, StudyError> {
    sqlx::query(
        "SELECT at, actor, role, action, detail FROM data_access WHERE ($1 IS NULL OR at <= $1) ORDER BY id",
    )
    .bind(until)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(DataAccess {
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            detail: r.try_get("detail")?,
        })
    })
    .collect()
}

// ------------------------------------------------------------ the model pin

/// The model pinned for the study, if any (the latest pin).
pub async fn pinned_model(db: &Db) -> Result<Option<ModelPin>, StudyError> {
    let mut conn = db.pool().acquire().await?;
    Ok(pinned(&mut conn).await?)
}

/// The same, inside a transaction.
pub(crate) async fn pinned_model_in(tx: &mut Tx) -> Result<Option<ModelPin>, sqlx::Error> {
    pinned(tx).await
}

async fn pinned(conn: &mut sqlx::AnyConnection) -> Result<Option<ModelPin>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT model_id, weights_sha256, card_sha256, card, pinned_at, printed_name FROM model_pins \
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ModelPin {
        model_id: r.try_get("model_id")?,
        weights_sha256: r.try_get("weights_sha256")?,
        card_sha256: r.try_get("card_sha256")?,
        card: r.try_get("card")?,
        pinned_at: r.try_get("pinned_at")?,
        signed_by: r.try_get("printed_name")?,
    }))
}

/// What is pinned: the model's id, the SHA-256 of its weights and its card
/// as JSON (the card's SHA-256 is taken over that text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRequest {
    pub model_id: String,
    pub weights_sha256: String,
    pub card_json: String,
    /// A demonstration model (never pinned in the trial).
    pub demo: bool,
}

/// Pins the trial's model: the principal investigator, with a signature,
/// before the first prediction. After the first prediction the pin never
/// changes (the service refuses, and the database too).
pub async fn pin_model(
    db: &Db,
    by: &Principal,
    request: &PinRequest,
    password: &str,
) -> Result<ModelPin, StudyError> {
    require(by, Permission::PinModel)?;
    let name = crate::accounts::reauthenticate(db, by, password)
        .await?
        .display_name;
    insert_pin(db, by, request, Some(&name)).await
}

/// The demonstration study pins its demo model itself (system principal);
/// refused in the trial.
pub async fn pin_demo_model(db: &Db, request: &PinRequest) -> Result<ModelPin, StudyError> {
    if crate::screening::study_kind(db.pool()).await? != crate::domain::StudyKind::Demo {
        return Err(StudyError::DemoModelInTrial);
    }
    insert_pin(db, &Principal::system(), request, None).await
}

async fn insert_pin(
    db: &Db,
    by: &Principal,
    request: &PinRequest,
    printed_name: Option<&str>,
) -> Result<ModelPin, StudyError> {
    if !crate::codes::is_sha256(&request.weights_sha256) {
        return Err(StudyError::BadModel);
    }
    if request.model_id.trim().is_empty() || request.model_id.len() > 200 {
        return Err(StudyError::BadModel);
    }
    let mut tx = begin(db, by, "model.pin", "study", 1).await?;
    if request.demo
        && crate::screening::study_kind(&mut *tx).await? != crate::domain::StudyKind::Demo
    {
        return Err(StudyError::DemoModelInTrial);
    }
    if sqlx::query("SELECT 1 FROM predictions LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        drop(tx);
        audit::record(
            db,
            by,
            Change::new("model.pin_refused", "study", 1).field(
                "model",
                None,
                Some(format!("{} {}", request.model_id, request.weights_sha256)),
            ),
        )
        .await?;
        return Err(StudyError::ModelPinFixed);
    }
    let old = pinned_model_in(&mut tx).await?;
    let card_sha256 = crate::store::sha256_hex(request.card_json.as_bytes());
    sqlx::query(
        "INSERT INTO model_pins (model_id, weights_sha256, card_sha256, card, pinned_at, by_user, printed_name, meaning) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&request.model_id)
    .bind(&request.weights_sha256)
    .bind(&card_sha256)
    .bind(&request.card_json)
    .bind(now_utc())
    .bind(by.user_id)
    .bind(printed_name)
    .bind(printed_name.map(|_| "approval"))
    .execute(&mut *tx)
    .await?;
    let describe = |model: &str, weights: &str| format!("{model} weights {weights}");
    audit::append(
        &mut tx,
        by,
        Change::new("model.pin", "study", 1).field(
            "model",
            old.map(|o| describe(&o.model_id, &o.weights_sha256)),
            Some(format!(
                "{}; card {card_sha256}{}",
                describe(&request.model_id, &request.weights_sha256),
                printed_name
                    .map(|n| format!("; signed by {n} ({}), approval", by.name))
                    .unwrap_or_default()
            )),
        ),
    )
    .await?;
    tx.commit().await?;
    db.events().announce(crate::events::Event::ModelPinned);
    pinned_model(db)
        .await?
        .ok_or_else(|| StudyError::Refused("the pin was not recorded".into()))
}
