//! The study settings in the database: the Bone-RADS rule table, the
//! number of readers and the Bone-RADS source, the DICOM date shift —
//! fixed before the first read.

use super::settings::*;
use crate::audit::{self, Change, Principal};
use crate::case::bonerads::RuleTable;
use crate::domain::CaseId;

use super::StudyError;
use crate::case::BoneRadsSource;
use crate::domain::Permission;
use crate::store::{now_utc, Db};
use crate::write::{begin, require, Tx};
use sqlx::Row;

/// The current settings.
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn date_shift(db: &Db, case_id: CaseId) -> Result<Option<i64>, StudyError> {
    let case_id = case_id.get();
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
#[tracing::instrument(skip_all)]
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
