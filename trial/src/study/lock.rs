//! The database lock: its status, the canonical export hashed and kept at
//! each lock, interim and final locks, and the unlock that needs both the
//! PI's and the monitor's signatures.

use super::access::{final_lock_exists, record_access, record_access_at};
use super::dashboard::blockers;
use super::settings::*;
use super::StudyError;
use crate::audit::{self, Change, Principal};
use crate::case::SignatureMeaning;
use crate::domain::{Permission, Reason};
use crate::store::{now_utc, Db};
use crate::write::{begin, is_locked, require, Tx};
use sqlx::Row;

/// The lock, its history, and what stands in its way.
#[tracing::instrument(skip_all)]
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
    ("predictions", "SELECT case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, bone_rads_source, record_sha256, created_at, out_of_domain FROM predictions ORDER BY case_id"),
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
pub async fn lock_database(
    db: &Db,
    by: &Principal,
    secret: &crate::accounts::SigningSecret,
    kind: LockKind,
    early_stop_reason: Option<&Reason>,
) -> Result<LockStatus, StudyError> {
    require(by, Permission::LockDatabase)?;
    let name = crate::accounts::reauthenticate(db, by, secret)
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

/// Signs the unlock of an interim lock, as the PI or the monitor, with a
/// reason: the database unlocks when both have signed. A final lock is
/// never undone.
#[tracing::instrument(skip_all)]
pub async fn unlock_database(
    db: &Db,
    by: &Principal,
    secret: &crate::accounts::SigningSecret,
    reason: &Reason,
) -> Result<LockStatus, StudyError> {
    require(by, Permission::SignUnlock)?;
    let role = by.role.as_str();
    let name = crate::accounts::reauthenticate(db, by, secret)
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
    let what = format!("{name} ({}) approval of the unlock as {role}", by.name);
    crate::write::audit_signature(
        &mut tx,
        by,
        "unlock",
        lock_event,
        what,
        Some(reason.as_str()),
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
