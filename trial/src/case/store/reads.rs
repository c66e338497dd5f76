//! Blinded reads: assignment (numbered: the first is the primary reader),
//! drafts scored by the study's rule table, signing, and the reads' lock.

use super::cases::*;
use super::signatures::{reauthenticate, signatures};
use crate::accounts;
use crate::audit::{self, Change, Principal};
use crate::case::bonerads::RuleTable;
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::CaseId;
use crate::domain::{Permission, Role};
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

pub(super) async fn readers_per_case(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT readers_per_case FROM study_settings WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get("readers_per_case")
}

/// Assigns a radiologist to read a case.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn assign_reader(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    username: &str,
) -> Result<Vec<String>, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::AssignReaders)?;
    let reader = accounts::find_by_username(db, username)
        .await?
        .filter(|u| u.active && u.role == Role::Radiologist)
        .ok_or_else(|| CaseError::NotARadiologist(username.to_owned()))?;
    let mut tx = begin(db, by, "read.assign", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if state.is_final() || state.reached(CaseState::ReadsLocked) {
        return Err(CaseError::AssignmentClosed);
    }
    let exists =
        sqlx::query("SELECT 1 FROM read_assignments WHERE case_id = $1 AND reader_id = $2")
            .bind(case_id)
            .bind(reader.id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_some() {
        return Err(CaseError::AlreadyAssigned(reader.username));
    }
    // Numbered in the order made: the first reader assigned is the primary reader.
    let ordinal: i64 =
        sqlx::query("SELECT COUNT(*) + 1 AS n FROM read_assignments WHERE case_id = $1")
            .bind(case_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
    sqlx::query("INSERT INTO read_assignments (case_id, reader_id, assigned_at, assigned_by, ordinal) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(reader.id)
        .bind(now_utc())
        .bind(user_id(by)?)
        .bind(ordinal)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("read.assign", "case", case_id).field(
            "reader",
            None,
            Some(reader.username.clone()),
        ),
    )
    .await?;
    touch(&mut tx, case_id).await?;
    let readers = assigned(&mut tx, case_id).await?;
    tx.commit().await?;
    Ok(readers.into_iter().map(|(_, name)| name).collect())
}

pub(super) async fn assigned(tx: &mut Tx, case_id: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, u.username FROM read_assignments a JOIN users u ON u.id = a.reader_id \
         WHERE a.case_id = $1 ORDER BY COALESCE(a.ordinal, 0), a.assigned_at, u.username",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("username")?)))
        .collect()
}

pub(super) const READ_SQL: &str = "SELECT r.id, r.case_id, r.reader_id, u.username, u.display_name, r.data, r.points, r.category, \
     r.rule_version, r.signed_at, r.updated_at FROM reads r JOIN users u ON u.id = r.reader_id";

pub(super) async fn read_from_row(tx: &mut Tx, r: &AnyRow) -> Result<Read, CaseError> {
    let id: i64 = r.try_get("id")?;
    let signed: Option<String> = r.try_get("signed_at")?;
    let signature = if signed.is_some() {
        signatures(&mut **tx, "read", id, None)
            .await?
            .into_iter()
            .next()
    } else {
        None
    };
    let points: Option<i64> = r.try_get("points")?;
    let category: i64 = r.try_get("category")?;
    Ok(Read {
        id,
        case_id: r.try_get("case_id")?,
        reader: r.try_get("username")?,
        reader_name: r.try_get("display_name")?,
        input: Some(serde_json::from_str(&r.try_get::<String, _>("data")?)?),
        score: Some(crate::case::bonerads::Score {
            points: points.and_then(|p| u8::try_from(p).ok()),
            category: u8::try_from(category).unwrap_or(0),
        }),
        rule_version: r.try_get("rule_version")?,
        signature,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(super) async fn reads_of(
    tx: &mut Tx,
    case_id: i64,
    reader: Option<i64>,
) -> Result<Vec<Read>, CaseError> {
    let rows = sqlx::query(&format!(
        "{READ_SQL} WHERE r.case_id = $1 AND ($2 IS NULL OR r.reader_id = $2) ORDER BY r.id"
    ))
    .bind(case_id)
    .bind(reader)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(read_from_row(tx, r).await?);
    }
    Ok(out)
}

/// The confirmed rule table and its version.
pub(super) async fn rule_table(tx: &mut Tx) -> Result<(String, RuleTable), CaseError> {
    let row = sqlx::query(
        "SELECT s.rule_version, r.rules FROM study_settings s JOIN bone_rads_rules r ON r.version = s.rule_version WHERE s.id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(CaseError::NoRuleTable)?;
    Ok((
        row.try_get("rule_version")?,
        serde_json::from_str(&row.try_get::<String, _>("rules")?)?,
    ))
}

/// Saves the radiologist's own read (a draft until signed), scored with the
/// study's rule table.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn save_read(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    input: ReadInput,
) -> Result<Read, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::ReadCases)?;
    let me = user_id(by)?;
    if input.likelihood > 100 {
        return Err(CaseError::Likelihood);
    }
    let input = ReadInput {
        comment: input
            .comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        ..input
    };
    let mut tx = begin(db, by, "read.save", "case", case_id).await?;
    if !assigned(&mut tx, case_id)
        .await?
        .iter()
        .any(|(id, _)| *id == me)
    {
        return Err(CaseError::NotAssigned);
    }
    let state = state_of(&mut tx, case_id).await?;
    if state != CaseState::CrfComplete {
        return Err(IllegalTransition {
            from: state,
            event: CaseEvent::ReadsLocked,
            hint: if state.reached(CaseState::ReadsLocked) {
                "the reads of this case are locked".into()
            } else {
                format!("a read starts once the images and the clinical CRF are complete; it waits for: {}", state.waits_for())
            },
        }
        .into());
    }
    let (version, table) = rule_table(&mut tx).await?;
    let score = table.score(&input.features);
    let existing = reads_of(&mut tx, case_id, Some(me))
        .await?
        .into_iter()
        .next();
    if existing.as_ref().is_some_and(Read::is_locked) {
        return Err(CaseError::ReadLocked);
    }
    let now = now_utc();
    let data = serde_json::to_string(&input)?;
    let points = score.points.map(i64::from);
    let category = i64::from(score.category);
    // A new read, or the reader's own unsigned read replaced: the same
    // values, keyed by the case or by the read.
    let (sql, key) = match &existing {
        None => (
            "INSERT INTO reads (case_id, reader_id, data, points, category, rule_version, likelihood, call, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            case_id,
        ),
        Some(r) => (
            "UPDATE reads SET data = $3, points = $4, category = $5, rule_version = $6, likelihood = $7, call = $8, \
             updated_at = $9 WHERE id = $1 AND reader_id = $2",
            r.id,
        ),
    };
    sqlx::query(sql)
        .bind(key)
        .bind(me)
        .bind(&data)
        .bind(points)
        .bind(category)
        .bind(&version)
        .bind(i64::from(input.likelihood))
        .bind(input.call.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    let old = existing
        .as_ref()
        .and_then(|r| r.input.as_ref())
        .map(serde_json::to_string)
        .transpose()?;
    audit::append(
        &mut tx,
        by,
        Change::new("read.save", "case", case_id).field(
            "read",
            old,
            Some(format!(
                "{data} points={points:?} category={category} rules={version}"
            )),
        ),
    )
    .await?;
    let read = own_read(&mut tx, case_id, me).await?;
    tx.commit().await?;
    Ok(read)
}

/// The asking radiologist's own read of the case.
async fn own_read(tx: &mut Tx, case_id: i64, me: i64) -> Result<Read, CaseError> {
    reads_of(tx, case_id, Some(me))
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::NoReadToSign)
}

/// Signs the radiologist's own read, which locks it. When every assigned
/// read is signed (and the study's number of readers is reached) the case
/// moves to `reads_locked` and waits for the AI.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn sign_read(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    secret: &crate::accounts::SigningSecret,
) -> Result<Read, CaseError> {
    let case_id = case_id.get();
    require(by, Permission::ReadCases)?;
    let me = user_id(by)?;
    let name = reauthenticate(db, by, secret).await?;
    let mut tx = begin(db, by, "read.sign", "case", case_id).await?;
    let read = own_read(&mut tx, case_id, me).await?;
    if read.is_locked() {
        return Err(CaseError::ReadLocked);
    }
    let sig = crate::write::sign(
        &mut tx,
        by,
        &name,
        "read",
        read.id,
        1,
        SignatureMeaning::Author,
    )
    .await?;
    sqlx::query("UPDATE reads SET signed_at = $1, signature_id = $2 WHERE id = $3")
        .bind(now_utc())
        .bind(sig)
        .bind(read.id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("read.lock", "case", case_id).field("read", None, Some(read.id.to_string())),
    )
    .await?;
    let locked = maybe_lock_reads(&mut tx, by, case_id).await?;
    let read = own_read(&mut tx, case_id, me).await?;
    tx.commit().await?;
    if locked {
        db.events()
            .announce(crate::events::Event::ReadsLocked { case_id });
    }
    Ok(read)
}

/// Moves the case to `reads_locked` once enough readers are assigned and
/// every one of them has signed; says whether it moved.
pub(super) async fn maybe_lock_reads(
    tx: &mut Tx,
    by: &Principal,
    case_id: i64,
) -> Result<bool, CaseError> {
    let needed = readers_per_case(tx).await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS assigned, \
         (SELECT COUNT(*) FROM reads r WHERE r.case_id = $1 AND r.signed_at IS NOT NULL) AS signed \
         FROM read_assignments a WHERE a.case_id = $1",
    )
    .bind(case_id)
    .fetch_one(&mut **tx)
    .await?;
    let assigned: i64 = row.try_get("assigned")?;
    let signed: i64 = row.try_get("signed")?;
    if assigned >= needed
        && signed == assigned
        && state_of(tx, case_id).await? == CaseState::CrfComplete
    {
        advance(tx, by, case_id, CaseEvent::ReadsLocked, None).await?;
        return Ok(true);
    }
    Ok(false)
}
