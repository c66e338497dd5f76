//! What is fixed before and taken at the database lock: the statistical
//! analysis plan (drafted, then signed by the statistician and the PI), the
//! snapshot of the data kept at each lock, and the locked analysis and
//! exports computed from it.

use super::accuracy::{analyse, from_snapshot};
use super::figures::LockedAnalysis;
use super::sap::{Sap, SapVersion, PRIMARY_ENDPOINT};
use super::StudyError;
use crate::audit::{self, Change, Principal};
use crate::domain::Role;
use crate::store::{now_utc, Db};
use crate::write::{begin, is_locked};
use sqlx::Row;

/// Every SAP version, newest last.
#[tracing::instrument(skip_all)]
pub async fn sap_versions(db: &Db) -> Result<Vec<SapVersion>, StudyError> {
    let rows = sqlx::query(
        "SELECT v.version, v.settings, v.created_at, u.username FROM sap_versions v JOIN users u ON u.id = v.created_by ORDER BY v.version",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let version: i64 = r.try_get("version")?;
        let signatures = sqlx::query(
            "SELECT role, printed_name, signed_at FROM sap_signatures WHERE version = $1 ORDER BY signed_at",
        )
        .bind(version)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|s| Ok((s.try_get("role")?, s.try_get("printed_name")?, s.try_get("signed_at")?)))
        .collect::<Result<Vec<(String, String, String)>, StudyError>>()?;
        let roles: Vec<&str> = signatures.iter().map(|s| s.0.as_str()).collect();
        out.push(SapVersion {
            version,
            sap: serde_json::from_str(&r.try_get::<String, _>("settings")?)?,
            primary_endpoint: PRIMARY_ENDPOINT.to_owned(),
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("username")?,
            locked: roles.contains(&"statistician") && roles.contains(&"principal_investigator"),
            signatures,
        });
    }
    Ok(out)
}

/// The plan in force: the newest version signed by both.
#[tracing::instrument(skip_all)]
pub async fn locked_sap(db: &Db) -> Result<Option<SapVersion>, StudyError> {
    Ok(sap_versions(db).await?.into_iter().rev().find(|v| v.locked))
}

/// Drafts a new SAP version (statistician or PI); refused once a version is
/// locked — a locked plan is never changed.
#[tracing::instrument(skip_all)]
pub async fn draft_sap(db: &Db, by: &Principal, sap: Sap) -> Result<SapVersion, StudyError> {
    if !matches!(by.role, Role::Statistician | Role::PrincipalInvestigator) {
        return Err(StudyError::Forbidden);
    }
    sap.check()?;
    if locked_sap(db).await?.is_some() {
        return Err(StudyError::SapLocked);
    }
    let mut tx = begin(db, by, "sap.draft", "sap", 0).await?;
    let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS n FROM sap_versions")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    let settings = serde_json::to_string(&sap)?;
    sqlx::query("INSERT INTO sap_versions (version, settings, created_at, created_by) VALUES ($1, $2, $3, $4)")
        .bind(version)
        .bind(&settings)
        .bind(now_utc())
        .bind(by.user_id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("sap.draft", "sap", version).field("settings", None, Some(settings)),
    )
    .await?;
    tx.commit().await?;
    sap_versions(db)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(StudyError::NothingToSign)
}

/// Signs the newest SAP version, with the password, as statistician or PI.
#[tracing::instrument(skip_all)]
pub async fn sign_sap(
    db: &Db,
    by: &Principal,
    secret: &crate::accounts::SigningSecret,
) -> Result<SapVersion, StudyError> {
    let role = match by.role {
        Role::Statistician => "statistician",
        Role::PrincipalInvestigator => "principal_investigator",
        _ => return Err(StudyError::Forbidden),
    };
    let name = crate::accounts::reauthenticate(db, by, secret)
        .await?
        .display_name;
    let latest = sap_versions(db)
        .await?
        .pop()
        .ok_or(StudyError::NothingToSign)?;
    if latest.signatures.iter().any(|s| s.0 == role) {
        return Err(StudyError::SapLocked);
    }
    let mut tx = begin(db, by, "sap.sign", "sap", latest.version).await?;
    sqlx::query("INSERT INTO sap_signatures (version, role, user_id, printed_name, signed_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(latest.version)
        .bind(role)
        .bind(by.user_id)
        .bind(&name)
        .bind(now_utc())
        .execute(&mut *tx)
        .await?;
    let what = format!("{name} ({}) approval as {role}", by.name);
    crate::write::audit_signature(&mut tx, by, "sap", latest.version, what, None).await?;
    tx.commit().await?;
    sap_versions(db)
        .await?
        .into_iter()
        .find(|v| v.version == latest.version)
        .ok_or(StudyError::NothingToSign)
}

/// The data as locked: the snapshot taken at the latest lock, with its time
/// and SHA-256. Refused before lock for everyone (blinded for the
/// statistician), and to roles that never see accuracy; what is done with it
/// is audited by the caller.
#[tracing::instrument(skip_all)]
pub async fn locked_snapshot(db: &Db, by: &Principal) -> Result<LockedSnapshot, StudyError> {
    let allowed = matches!(
        by.role,
        Role::Statistician | Role::PrincipalInvestigator | Role::Admin | Role::Monitor
    );
    if !allowed {
        return Err(StudyError::Forbidden);
    }
    if !is_locked(db.pool()).await? {
        return Err(if by.role == Role::Statistician {
            StudyError::Blinded
        } else {
            StudyError::NotLocked
        });
    }
    let row = sqlx::query(
        "SELECT e.id, e.at, e.kind, e.early_stop_reason, e.export_sha256, s.export FROM lock_events e \
         JOIN lock_snapshots s ON s.lock_event_id = e.id WHERE e.action = 'lock' ORDER BY e.id DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?
    .ok_or(StudyError::NotLocked)?;
    let export: String = row.try_get("export")?;
    let recorded: String = row.try_get("export_sha256")?;
    // Every view and download re-checks the data against the SHA-256 the
    // lock recorded: an edited snapshot is refused, and the refusal audited.
    let found = crate::store::sha256_hex(export.as_bytes());
    if found != recorded {
        audit::record(
            db,
            by,
            Change::new("snapshot.mismatch", "study", 1).field(
                "export_sha256",
                Some(recorded),
                Some(found),
            ),
        )
        .await?;
        return Err(StudyError::SnapshotTampered);
    }
    Ok(LockedSnapshot {
        lock_event_id: row.try_get("id")?,
        locked_at: row.try_get("at")?,
        kind: row
            .try_get::<Option<String>, _>("kind")?
            .map(|k| k.parse())
            .transpose()?
            .unwrap_or(super::LockKind::Interim),
        early_stop_reason: row.try_get("early_stop_reason")?,
        dataset_sha256: recorded,
        data: serde_json::from_str(&export)?,
    })
}

/// The snapshot taken at a lock.
#[derive(Debug, Clone)]
pub struct LockedSnapshot {
    pub lock_event_id: i64,
    pub locked_at: String,
    /// Interim or final.
    pub kind: super::LockKind,
    /// A final lock before the enrolment target: why the study stopped early.
    pub early_stop_reason: Option<String>,
    pub dataset_sha256: String,
    /// The canonical export: `{table: [{column: value}]}`.
    pub data: serde_json::Value,
}

/// The locked analysis, computed from the snapshot taken at the latest lock
/// with the locked SAP.
#[tracing::instrument(skip_all)]
pub async fn locked_analysis(db: &Db, by: &Principal) -> Result<LockedAnalysis, StudyError> {
    let snapshot = locked_snapshot(db, by).await?;
    let locked = analysis_of(db, &snapshot).await?;
    let mut tx = db.begin_write().await?;
    audit::append(&mut tx, by, Change::new("analysis.read", "study", 1)).await?;
    super::access::record_access(
        &mut tx,
        by,
        "analysis.read",
        &format!(
            "{} lock, dataset SHA-256 {}",
            snapshot.kind, snapshot.dataset_sha256
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(locked)
}

/// A download of the locked data (an export file or the report): audited
/// with the file's SHA-256, written into the data access history while no
/// final lock exists, and covered by a signed anchor of the audit chain.
#[tracing::instrument(skip_all)]
pub async fn record_download(
    db: &Db,
    by: &Principal,
    snapshot: &LockedSnapshot,
    name: &str,
    file_sha256: &str,
) -> Result<(), StudyError> {
    let what = format!(
        "{name} sha256={file_sha256} dataset={}",
        snapshot.dataset_sha256
    );
    let mut tx = db.begin_write().await?;
    audit::append(
        &mut tx,
        by,
        Change::new("export.download", "study", 1).field("file", None, Some(what.clone())),
    )
    .await?;
    super::access::record_access(&mut tx, by, "export.download", &what).await?;
    if let Some(key) = db.anchor_key() {
        audit::anchor::anchor_in(&mut tx, key, "export", None).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The analysis of a locked snapshot with the signed SAP it holds (the
/// caller got the snapshot through [`locked_snapshot`], which checks who may
/// see it and that it is the data the lock recorded).
#[tracing::instrument(skip_all)]
pub async fn analysis_of(db: &Db, snapshot: &LockedSnapshot) -> Result<LockedAnalysis, StudyError> {
    let (sap_version, sap) = match super::accuracy::snapshot_sap(&snapshot.data) {
        Some(found) => found,
        // A snapshot taken before the plan was part of it.
        None => {
            let v = locked_sap(db).await?.ok_or(StudyError::NoSap)?;
            (v.version, v.sap)
        }
    };
    let analysis = analyse(&from_snapshot(&snapshot.data), &sap)
        .map_err(|e| StudyError::Analysis(e.to_string()))?;
    let audit_head = audit::anchor::anchor_of_lock(db, snapshot.lock_event_id)
        .await?
        .map(|a| super::figures::AuditHead {
            seq: a.seq,
            hash: a.head_hash,
            public_key: a.public_key,
        });
    let study_kind = super::accuracy::rows(&snapshot.data, "study")
        .next()
        .and_then(|s| s["kind"].as_str())
        .and_then(|k| k.parse().ok())
        .unwrap_or_default();
    Ok(LockedAnalysis {
        study_kind,
        locked_at: snapshot.locked_at.clone(),
        lock_kind: snapshot.kind.to_string(),
        early_stop_reason: snapshot.early_stop_reason.clone(),
        dataset_sha256: snapshot.dataset_sha256.clone(),
        sap_version,
        analysis,
        data_access: super::access::data_access(db, Some(&snapshot.locked_at)).await?,
        audit_head,
    })
}

/// Keeps the canonical export taken at a lock (the data the analysis reads).
#[tracing::instrument(skip_all)]
pub(crate) async fn keep_snapshot(
    tx: &mut crate::write::Tx,
    lock_event: i64,
    export: &[u8],
) -> Result<(), StudyError> {
    sqlx::query("INSERT INTO lock_snapshots (lock_event_id, export) VALUES ($1, $2)")
        .bind(lock_event)
        .bind(String::from_utf8_lossy(export).into_owned())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
