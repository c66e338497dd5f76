//! The clinical CRF: drafts, the complete form, changes with a reason, and
//! the PI's signed amendments of the inputs frozen at the AI lock.

use super::cases::*;
use super::signatures::{reauthenticate, signatures, void_signatures};
use crate::audit::{self, Change, Principal};
use crate::case::crf::ClinicalCrf;
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Reason};
use crate::screening::latest_screening_date;
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::Row;

pub(super) async fn latest_crf(tx: &mut Tx, case_id: i64) -> Result<Option<CrfRecord>, CaseError> {
    crf_version(tx, case_id, None).await
}

/// Version `version` of a case's CRF (the latest when `None`), with its
/// signatures.
async fn crf_version(
    conn: &mut sqlx::AnyConnection,
    case_id: i64,
    version: Option<i64>,
) -> Result<Option<CrfRecord>, CaseError> {
    let row = sqlx::query(
        "SELECT v.version, v.data, v.complete, v.created_at, u.username, v.reason_for_change \
         FROM crf_versions v JOIN users u ON u.id = v.created_by WHERE v.case_id = $1 \
         AND ($2 IS NULL OR v.version = $2) ORDER BY v.version DESC LIMIT 1",
    )
    .bind(case_id)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let version: i64 = r.try_get("version")?;
    Ok(Some(CrfRecord {
        version,
        data: serde_json::from_str(&r.try_get::<String, _>("data")?)?,
        complete: r.try_get::<i64, _>("complete")? == 1,
        saved_at: r.try_get("created_at")?,
        saved_by: r.try_get("username")?,
        reason_for_change: r.try_get("reason_for_change")?,
        signatures: signatures(&mut *conn, "crf", case_id, Some(version)).await?,
    }))
}

/// Saves the clinical CRF: a draft, or marked complete. A form once complete
/// stays complete, and every later change needs a reason, is audited field by
/// field and voids the signatures on the form.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn save_crf(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    crf: ClinicalCrf,
    mark_complete: bool,
    reason: Option<&Reason>,
) -> Result<CrfRecord, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::EnterCaseData)?;
    let crf = crf.normalised();
    let issues = crf.issues(&latest_screening_date());
    if !issues.is_empty() {
        return Err(CaseError::Crf(issues));
    }
    let mut tx = begin(db, by, "crf.save", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if state.is_final() && state != CaseState::Complete {
        return Err(IllegalTransition {
            from: state,
            event: CaseEvent::CrfCompleted,
            hint: format!("the case is {state}; its CRF no longer changes"),
        }
        .into());
    }
    let old = latest_crf(&mut tx, case_id).await?;
    let was_complete = old.as_ref().is_some_and(|o| o.complete);
    let complete = mark_complete || was_complete;
    if complete {
        let missing = crf.missing();
        if !missing.is_empty() {
            return Err(CaseError::Crf(missing));
        }
    }
    if was_complete && reason.is_none() {
        return Err(CaseError::ReasonRequired);
    }
    if let Some(o) = &old {
        if o.data == crf && o.complete == complete {
            tx.commit().await?;
            return Ok(o.clone());
        }
    }
    if complete && !was_complete && state != CaseState::ImagesComplete {
        // The only way to complete the form is the state machine's step.
        state.apply(CaseEvent::CrfCompleted)?;
    }
    if state.reached(CaseState::AiLocked) {
        let frozen: Vec<String> = old
            .as_ref()
            .map(|o| o.data.frozen_changes(&crf))
            .unwrap_or_default()
            .into_iter()
            .map(|(f, _, _)| f.to_owned())
            .collect();
        if !frozen.is_empty() {
            drop(tx);
            return Err(refuse(
                db,
                by,
                "crf.refused",
                case_id,
                CaseError::FrozenInput(frozen),
            )
            .await);
        }
    }
    let reason = reason.map(Reason::as_str);
    let version =
        write_crf_version(&mut tx, by, case_id, old.as_ref(), &crf, complete, reason).await?;
    if complete && !was_complete {
        advance(&mut tx, by, case_id, CaseEvent::CrfCompleted, None).await?;
    }
    touch(&mut tx, case_id).await?;
    tx.commit().await?;
    // The version just written, read after the write lock is released:
    // saves are what many clients do at once (docs/build.md, "Load").
    crf_version(&mut *db.pool().acquire().await?, case_id, Some(version))
        .await?
        .ok_or(CaseError::NothingToSign)
}

/// Writes the next version of the CRF, audits each changed field with the
/// reason, and voids the signatures on the form it replaces.
pub(super) async fn write_crf_version(
    tx: &mut Tx,
    by: &Principal,
    case_id: i64,
    old: Option<&CrfRecord>,
    crf: &ClinicalCrf,
    complete: bool,
    reason: Option<&str>,
) -> Result<i64, CaseError> {
    let version = old.map_or(1, |o| o.version + 1);
    sqlx::query(
        "INSERT INTO crf_versions (case_id, version, data, complete, reason_for_change, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(case_id)
    .bind(version)
    .bind(serde_json::to_string(crf)?)
    .bind(i64::from(complete))
    .bind(reason)
    .bind(now_utc())
    .bind(user_id(by)?)
    .execute(&mut **tx)
    .await?;
    let before = old.map(|o| o.data.field_values());
    let mut changes = Vec::new();
    for (i, (field, new)) in crf.field_values().into_iter().enumerate() {
        let previous = before.as_ref().map(|b| b[i].1.clone());
        if previous.as_deref().unwrap_or("") != new {
            changes.push(
                Change::new("crf.save", "case", case_id)
                    .field(field, previous, Some(new))
                    .reason(reason),
            );
        }
    }
    audit::append_all(tx, by, changes).await?;
    if old.is_some_and(|o| !o.signatures.is_empty()) {
        void_signatures(
            tx,
            by,
            "crf",
            case_id,
            reason.unwrap_or("the form was edited"),
        )
        .await?;
    }
    Ok(version)
}

/// Changes model inputs frozen at the AI lock ([`crf::FROZEN_AT_AI_LOCK`]):
/// the principal investigator, with a reason and their signature (password).
/// Each changed frozen field is recorded as a protocol deviation, which the
/// locked report lists; the prediction itself never changes.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn amend_frozen_crf(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    crf: ClinicalCrf,
    reason: &Reason,
    secret: &crate::accounts::SigningSecret,
) -> Result<CrfRecord, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::AmendFrozenInputs)?;
    let crf = crf.normalised();
    let issues = crf.issues(&latest_screening_date());
    if !issues.is_empty() {
        return Err(CaseError::Crf(issues));
    }
    let missing = crf.missing();
    if !missing.is_empty() {
        return Err(CaseError::Crf(missing));
    }
    let name = reauthenticate(db, by, secret).await?;
    let mut tx = begin(db, by, "crf.amend", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if !state.reached(CaseState::AiLocked) {
        return Err(IllegalTransition {
            from: state,
            event: CaseEvent::CrfCompleted,
            hint: "the model inputs are frozen only once the prediction is locked; until then the coordinator edits the CRF".into(),
        }
        .into());
    }
    let old = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    let changes = old.data.frozen_changes(&crf);
    if changes.is_empty() {
        return Err(CaseError::NothingChanged);
    }
    let version = old.version + 1;
    let now = now_utc();
    for (field, from, to) in &changes {
        sqlx::query(
            "INSERT INTO deviations (case_id, crf_version, field, old_value, new_value, reason, at, by_user, printed_name, meaning) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'approval')",
        )
        .bind(case_id)
        .bind(version)
        .bind(*field)
        .bind(from)
        .bind(to)
        .bind(reason.as_str())
        .bind(&now)
        .bind(user_id(by)?)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            by,
            Change::new("deviation.record", "case", case_id)
                .field(field, Some(from.clone()), Some(to.clone()))
                .reason(Some(reason.as_str())),
        )
        .await?;
    }
    audit::append(
        &mut tx,
        by,
        Change::new("signature.apply", "deviation", case_id).field(
            "signature",
            None,
            Some(format!("{name} ({}) approval, CRF v{version}", by.name)),
        ),
    )
    .await?;
    write_crf_version(
        &mut tx,
        by,
        case_id,
        Some(&old),
        &crf,
        old.complete,
        Some(reason.as_str()),
    )
    .await?;
    commit_crf(tx, case_id).await
}

pub(super) async fn deviations_of(
    tx: &mut Tx,
    case_id: Option<i64>,
) -> Result<Vec<Deviation>, CaseError> {
    let rows = sqlx::query(
        "SELECT case_id, crf_version, field, old_value, new_value, reason, at, printed_name FROM deviations \
         WHERE ($1 IS NULL OR case_id = $1) ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Deviation {
                case_id: r.try_get("case_id")?,
                crf_version: r.try_get("crf_version")?,
                change: InputChange {
                    field: r.try_get("field")?,
                    old_value: r.try_get("old_value")?,
                    new_value: r.try_get("new_value")?,
                    reason: r.try_get("reason")?,
                    at: r.try_get("at")?,
                    signed_by: r.try_get("printed_name")?,
                },
            })
        })
        .collect()
}

/// Signs the current, complete CRF.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn sign_crf(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    meaning: SignatureMeaning,
    secret: &crate::accounts::SigningSecret,
) -> Result<CrfRecord, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::SignCrf)?;
    let name = reauthenticate(db, by, secret).await?;
    let mut tx = begin(db, by, "crf.sign", "case", case_id).await?;
    let crf = latest_crf(&mut tx, case_id)
        .await?
        .filter(|c| c.complete)
        .ok_or(CaseError::NothingToSign)?;
    crate::write::sign(&mut tx, by, &name, "crf", case_id, crf.version, meaning).await?;
    let record = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}

/// Marks the case changed, commits the CRF's new version and returns it.
async fn commit_crf(mut tx: Tx, case_id: i64) -> Result<CrfRecord, CaseError> {
    touch(&mut tx, case_id).await?;
    let record = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}
