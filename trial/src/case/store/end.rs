//! How a case leaves the study: an eligibility exclusion until the reads
//! lock, a PI-signed withdrawal until pathology is entered.

use super::cases::*;
use super::signatures::reauthenticate;
use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Reason};
use crate::store::{now_utc, Db};
use crate::write::StoreFailure;
use crate::write::{begin, Tx};
use sqlx::Row;

/// Ends a case, with a coded reason and the state it was in recorded:
/// an eligibility exclusion (E1–E3) is the coordinator's, until the reads
/// lock; a withdrawal (consent withdrawn, lost to follow-up, pathology not
/// obtained) carries the principal investigator's signature (password) and
/// is possible until pathology is entered. Once pathology is known the case
/// stays in the analysis. A refusal is audited.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn end_case(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    end: CaseEnd,
    reason: &Reason,
    secret: Option<&crate::accounts::SigningSecret>,
) -> Result<CaseState, CaseError> {
    let case_id = case_id.get();
    let printed_name = match end {
        CaseEnd::Excluded(_) => {
            require(by, Permission::EnterCaseData)?;
            None
        }
        CaseEnd::Withdrawn(_) => {
            if !by.role.can(Permission::WithdrawCases) {
                return Err(CaseError::WithdrawalNeedsPi);
            }
            let secret = secret.ok_or(CaseError::BadPassword)?;
            Some(reauthenticate(db, by, secret).await?)
        }
    };
    let mut tx = begin(db, by, "case.end", "case", case_id).await?;
    let from = state_of(&mut tx, case_id).await?;
    if let Err(e) = from.apply(end.event()) {
        drop(tx);
        return Err(refuse(db, by, "case.end_refused", case_id, e.into()).await);
    }
    let kind = match end {
        CaseEnd::Withdrawn(_) => "withdrawn",
        CaseEnd::Excluded(_) => "excluded",
    };
    sqlx::query(
        "INSERT INTO case_ends (case_id, kind, code, from_state, reason, at, by_user, printed_name, meaning) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(case_id)
    .bind(kind)
    .bind(end.code())
    .bind(from.as_str())
    .bind(reason.as_str())
    .bind(now_utc())
    .bind(user_id(by)?)
    .bind(printed_name.as_deref())
    .bind(printed_name.as_ref().map(|_| "approval"))
    .execute(&mut *tx)
    .await?;
    let next = advance(&mut tx, by, case_id, end.event(), Some(reason.as_str())).await?;
    sqlx::query("UPDATE cases SET end_reason = $1 WHERE id = $2")
        .bind(end.code())
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("case.end", "case", case_id)
            .field(
                "end_reason",
                None,
                Some(format!("{} (the case was {from})", end.code())),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    if let Some(name) = &printed_name {
        audit::append(
            &mut tx,
            by,
            Change::new("signature.apply", "case_end", case_id).field(
                "signature",
                None,
                Some(format!("{name} ({}) approval of the withdrawal", by.name)),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(next)
}

pub(super) async fn case_end_of(
    tx: &mut Tx,
    case_id: i64,
) -> Result<Option<CaseEndRecord>, CaseError> {
    let Some(r) = sqlx::query(
        "SELECT e.kind, e.code, e.from_state, e.reason, e.at, u.display_name, e.printed_name \
         FROM case_ends e JOIN users u ON u.id = e.by_user WHERE e.case_id = $1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let code: String = r.try_get("code")?;
    let end = match r.try_get::<String, _>("kind")?.as_str() {
        "withdrawn" => CaseEnd::Withdrawn(code.parse()?),
        _ => CaseEnd::Excluded(
            code.parse()
                .map_err(|e: crate::screening::ScreeningError| {
                    CaseError::Failed(StoreFailure::Refused(e.to_string()))
                })?,
        ),
    };
    Ok(Some(CaseEndRecord {
        end,
        from_state: r.try_get::<String, _>("from_state")?.parse()?,
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
        by: r.try_get("display_name")?,
        signed_by: r.try_get("printed_name")?,
    }))
}
