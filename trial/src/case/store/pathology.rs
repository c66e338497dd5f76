//! The reference standard: entered only after the locks, signed, and
//! corrected as a new version with a reason.

use super::cases::*;
use super::signatures::{reauthenticate, signatures, void_signatures};
use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::pathology::{Pathology, PathologyInput};
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Reason};
use crate::screening::latest_screening_date;
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::Row;

pub(super) async fn latest_pathology(
    tx: &mut Tx,
    case_id: i64,
) -> Result<Option<PathologyRecord>, CaseError> {
    let row = sqlx::query(
        "SELECT v.*, u.username FROM pathology_versions v JOIN users u ON u.id = v.created_by \
         WHERE v.case_id = $1 ORDER BY v.version DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let version: i64 = r.try_get("version")?;
    let entity: String = r.try_get("entity")?;
    Ok(Some(PathologyRecord {
        version,
        pathology: Pathology {
            entity_name: crate::case::pathology::entity(&entity)
                .map(|e| e.name.to_owned())
                .unwrap_or_default(),
            entity,
            morphology: r.try_get("morphology")?,
            behaviour: r.try_get::<String, _>("behaviour")?.parse()?,
            tier: r.try_get::<String, _>("tier")?.parse()?,
            procedure: r.try_get::<String, _>("procedure")?.parse()?,
            specimen_date: r.try_get("specimen_date")?,
            pathologist: r.try_get("pathologist")?,
            comment: r.try_get("comment")?,
        },
        saved_at: r.try_get("created_at")?,
        saved_by: r.try_get("username")?,
        reason_for_change: r.try_get("reason_for_change")?,
        signatures: signatures(&mut **tx, "pathology", case_id, Some(version)).await?,
    }))
}

/// Enters the reference standard — only once the AI prediction and every
/// read of the case are locked — or corrects it: a new version with a
/// reason, which voids the signature on the old one.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn enter_pathology(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    input: PathologyInput,
    reason: Option<&Reason>,
) -> Result<PathologyRecord, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::EnterCaseData)?;
    let p = input.check(&latest_screening_date())?;
    let mut tx = begin(db, by, "pathology.enter", "case", case_id).await?;
    let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
    let state = summary.state;
    let old = latest_pathology(&mut tx, case_id).await?;
    let event = match (&old, state) {
        // Prospective: only once the prediction is locked; retrospective:
        // once the clinical CRF is complete (its pathology is already known).
        (None, s) if s.takes_pathology(summary.arm) => CaseEvent::PathologyEntered,
        (None, s) if !s.is_final() => {
            drop(tx);
            return Err(refuse(
                db,
                by,
                "pathology.refused",
                case_id,
                CaseError::PathologyGate,
            )
            .await);
        }
        (Some(_), CaseState::PathologyEntered | CaseState::Complete) => {
            if reason.is_none() {
                return Err(CaseError::ReasonRequired);
            }
            CaseEvent::PathologyCorrected
        }
        (_, s) => {
            return Err(IllegalTransition {
                from: s,
                event: CaseEvent::PathologyEntered,
                hint: format!("the case is {s}; it waits for: {}", s.waits_for()),
            }
            .into())
        }
    };
    let version = old.as_ref().map_or(1, |o| o.version + 1);
    let reason = reason.map(Reason::as_str);
    sqlx::query(
        "INSERT INTO pathology_versions (case_id, version, entity, morphology, behaviour, tier, procedure, specimen_date, \
         pathologist, comment, reason_for_change, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(case_id)
    .bind(version)
    .bind(&p.entity)
    .bind(&p.morphology)
    .bind(p.behaviour.as_str())
    .bind(p.tier.as_str())
    .bind(p.procedure.as_str())
    .bind(&p.specimen_date)
    .bind(&p.pathologist)
    .bind(&p.comment)
    .bind(reason)
    .bind(now_utc())
    .bind(user_id(by)?)
    .execute(&mut *tx)
    .await?;
    let describe = |p: &Pathology| {
        format!(
            "{} /{} {} {} {} {}",
            p.entity, p.behaviour, p.tier, p.procedure, p.specimen_date, p.pathologist
        )
    };
    audit::append(
        &mut tx,
        by,
        Change::new("pathology.enter", "case", case_id)
            .field(
                "pathology",
                old.as_ref().map(|o| describe(&o.pathology)),
                Some(describe(&p)),
            )
            .reason(reason),
    )
    .await?;
    if old.as_ref().is_some_and(|o| !o.signatures.is_empty()) {
        void_signatures(
            &mut tx,
            by,
            "pathology",
            case_id,
            reason.unwrap_or("corrected"),
        )
        .await?;
    }
    if state != CaseState::PathologyEntered || event != CaseEvent::PathologyCorrected {
        advance(&mut tx, by, case_id, event, reason).await?;
    }
    let record = latest_pathology(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}

/// Signs the current pathology; the first signature completes the case.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn sign_pathology(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    meaning: SignatureMeaning,
    secret: &crate::accounts::SigningSecret,
) -> Result<PathologyRecord, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::SignPathology)?;
    let name = reauthenticate(db, by, secret).await?;
    let mut tx = begin(db, by, "pathology.sign", "case", case_id).await?;
    let record = latest_pathology(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    crate::write::sign(
        &mut tx,
        by,
        &name,
        "pathology",
        case_id,
        record.version,
        meaning,
    )
    .await?;
    if state_of(&mut tx, case_id).await? == CaseState::PathologyEntered {
        advance(&mut tx, by, case_id, CaseEvent::PathologySigned, None).await?;
    }
    let record = latest_pathology(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}
