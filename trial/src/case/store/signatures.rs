//! Electronic signatures (21 CFR 11.50, 11.200): applied after
//! re-authentication, voided once by an edit of the signed data.

use crate::accounts;
use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::store::{now_utc, Db};
use crate::write::Tx;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

/// Re-authenticates `by` (21 CFR 11.200) and returns the printed name.
/// Done before the write lock is taken: the password check is slow.
pub(super) async fn reauthenticate(
    db: &Db,
    by: &Principal,
    secret: &accounts::SigningSecret,
) -> Result<String, CaseError> {
    Ok(accounts::reauthenticate(db, by, secret).await?.display_name)
}

/// Voids every signature in force on `entity` `id` (an edit of signed data).
pub(super) async fn void_signatures(
    tx: &mut Tx,
    by: &Principal,
    entity: &'static str,
    id: i64,
    reason: &str,
) -> Result<(), CaseError> {
    let sigs = signatures(&mut **tx, entity, id, None).await?;
    for s in sigs {
        sqlx::query("UPDATE signatures SET voided_at = $1, void_reason = $2 WHERE id = $3")
            .bind(now_utc())
            .bind(reason)
            .bind(s.id)
            .execute(&mut **tx)
            .await?;
        audit::append(
            tx,
            by,
            Change::new("signature.void", entity, id)
                .field(
                    "signature",
                    Some(format!("{} ({}) {}", s.printed_name, s.username, s.meaning)),
                    None,
                )
                .reason(Some(reason)),
        )
        .await?;
    }
    Ok(())
}

/// The signatures in force on `entity` `id` (of `version` when given).
pub(super) async fn signatures<'e, E>(
    executor: E,
    entity: &str,
    id: i64,
    version: Option<i64>,
) -> Result<Vec<Signature>, CaseError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT s.id, u.username, s.printed_name, s.meaning, s.signed_at, s.voided_at FROM signatures s \
         JOIN users u ON u.id = s.user_id WHERE s.entity = $1 AND s.entity_id = $2 \
         AND ($3 IS NULL OR s.entity_version = $3) AND s.voided_at IS NULL ORDER BY s.id",
    )
    .bind(entity)
    .bind(id)
    .bind(version)
    .fetch_all(executor)
    .await?;
    rows.iter().map(signature_from_row).collect()
}

pub(super) fn signature_from_row(r: &AnyRow) -> Result<Signature, CaseError> {
    Ok(Signature {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        printed_name: r.try_get("printed_name")?,
        meaning: r.try_get::<String, _>("meaning")?.parse()?,
        signed_at: r.try_get("signed_at")?,
        voided_at: r.try_get("voided_at")?,
    })
}
