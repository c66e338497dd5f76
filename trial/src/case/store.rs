//! Cases in the database. Every write begins with [`begin`], which takes the
//! one write lock and refuses (and audits the refusal) while the database is
//! locked; the change and its audit rows commit together.

use super::bonerads::RuleTable;
use super::crf::ClinicalCrf;
use super::pathology::{Pathology, PathologyInput};
use super::*;
use crate::accounts::{self, LoginError};
use crate::audit::{self, Change, Principal};
use crate::domain::{AuditSource, Permission, Reason, Role};
use crate::screening::{latest_screening_date, study_kind, study_kind_of, Arm};
use crate::store::{now_utc, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

pub(crate) type Tx = Transaction<'static, Any>;

const LOCKED_MESSAGE: &str = "the database is locked: no change";

impl From<sqlx::Error> for CaseError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            let m = d.message();
            if m.contains(LOCKED_MESSAGE) {
                return CaseError::DatabaseLocked;
            }
            if m.contains("pathology can be entered only") {
                return CaseError::PathologyGate;
            }
        }
        CaseError::Store(e.to_string())
    }
}

impl From<LoginError> for CaseError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Store(s) => CaseError::Store(s.to_string()),
            LoginError::Hash(s) => CaseError::Store(s),
            _ => CaseError::BadPassword,
        }
    }
}

impl From<serde_json::Error> for CaseError {
    fn from(e: serde_json::Error) -> Self {
        CaseError::Store(format!("stored JSON: {e}"))
    }
}

pub(crate) fn require(by: &Principal, p: Permission) -> Result<(), CaseError> {
    if by.role.can(p) {
        Ok(())
    } else {
        Err(CaseError::Forbidden)
    }
}

fn user_id(by: &Principal) -> Result<i64, CaseError> {
    by.user_id.ok_or(CaseError::Forbidden)
}

/// Whether the database is locked.
pub async fn is_locked<'e, E>(executor: E) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let locked: i64 = sqlx::query("SELECT locked FROM study_lock WHERE id = 1")
        .fetch_one(executor)
        .await?
        .try_get("locked")?;
    Ok(locked == 1)
}

/// Begins a write for `action` on `entity` `id`. While the database is
/// locked the attempt is audited and refused.
pub(crate) async fn begin(
    db: &Db,
    by: &Principal,
    action: &'static str,
    entity: &'static str,
    id: i64,
) -> Result<Tx, CaseError> {
    let mut tx = db.begin_write().await?;
    if is_locked(&mut *tx).await? {
        audit::append(
            &mut tx,
            by,
            Change::new("write.refused_locked", entity, id).field(
                "action",
                None,
                Some(action.to_owned()),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(CaseError::DatabaseLocked);
    }
    Ok(tx)
}

/// Audits a refused attempt in its own transaction and returns the error.
async fn refuse(
    db: &Db,
    by: &Principal,
    action: &'static str,
    case_id: i64,
    error: CaseError,
) -> CaseError {
    let note = error.to_string();
    let logged = audit::record(
        db,
        by,
        Change::new(action, "case", case_id).field("refused", None, Some(note)),
    )
    .await;
    if let Err(e) = logged {
        tracing::error!(error = %e, "could not audit a refusal");
    }
    error
}

// ------------------------------------------------------------------ cases

const SUMMARY_SQL: &str = "SELECT c.id, c.arm, c.study_no, si.code AS site_code, c.state, c.end_reason, c.updated_at, \
     (SELECT kind FROM study WHERE id = 1) AS study_kind, \
     (SELECT COUNT(*) FROM queries q WHERE q.case_id = c.id AND q.status IN ('open', 'answered')) AS open_queries \
     FROM cases c JOIN sites si ON si.id = c.site_id";

/// The arm of a row with an `arm` column.
fn arm_of(r: &AnyRow) -> Result<Arm, CaseError> {
    r.try_get::<String, _>("arm")?
        .parse()
        .map_err(|e: crate::screening::ScreeningError| CaseError::Store(e.to_string()))
}

fn summary_from_row(r: &AnyRow) -> Result<(CaseSummary, Option<String>), CaseError> {
    let arm = arm_of(r)?;
    let state: CaseState = r.try_get::<String, _>("state")?.parse()?;
    Ok((
        CaseSummary {
            id: r.try_get("id")?,
            study_number: arm.label(study_kind_of(r), r.try_get("study_no")?),
            site_code: r.try_get("site_code")?,
            state,
            waits_for: state.waits_for().to_owned(),
            open_queries: r.try_get("open_queries")?,
            updated_at: r.try_get("updated_at")?,
        },
        r.try_get("end_reason")?,
    ))
}

async fn fetch_summary<'e, E>(
    executor: E,
    id: i64,
) -> Result<(CaseSummary, Option<String>), CaseError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query(&format!("{SUMMARY_SQL} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .ok_or(CaseError::UnknownCase(id))?;
    summary_from_row(&row)
}

/// Opens the case for a patient just enrolled (called inside the
/// enrolment's transaction).
pub(crate) async fn create_case(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    screening_id: i64,
    arm: Arm,
    study_no: i64,
) -> Result<i64, sqlx::Error> {
    let now = now_utc();
    let id: i64 = sqlx::query(
        "INSERT INTO cases (screening_id, site_id, arm, study_no, state, created_at, updated_at) \
         SELECT id, site_id, arm, $2, 'enrolled', $3, $3 FROM screenings WHERE id = $1 RETURNING id",
    )
    .bind(screening_id)
    .bind(study_no)
    .bind(&now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    let kind = study_kind(&mut **tx).await?;
    audit::append(
        tx,
        by,
        Change::new("case.create", "case", id).field(
            "state",
            None,
            Some(format!(
                "{} {}",
                arm.label(kind, study_no),
                CaseState::Enrolled
            )),
        ),
    )
    .await?;
    Ok(id)
}

/// Moves a case by `event`, or says why it cannot move.
async fn advance(
    tx: &mut Tx,
    by: &Principal,
    case_id: i64,
    event: CaseEvent,
    reason: Option<&str>,
) -> Result<CaseState, CaseError> {
    let (summary, _) = fetch_summary(&mut **tx, case_id).await?;
    let next = summary.state.apply(event)?;
    sqlx::query("UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(next.as_str())
        .bind(now_utc())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    audit::append(
        tx,
        by,
        Change::new("case.state", "case", case_id)
            .field(
                "state",
                Some(summary.state.to_string()),
                Some(next.to_string()),
            )
            .reason(reason),
    )
    .await?;
    Ok(next)
}

/// The state of a case.
async fn state_of(tx: &mut Tx, case_id: i64) -> Result<CaseState, CaseError> {
    Ok(fetch_summary(&mut **tx, case_id).await?.0.state)
}

async fn touch(tx: &mut Tx, case_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(now_utc())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// ----------------------------------------------------------------- images

/// Records a stored radiograph of a case. The image ingest calls this once
/// the file is validated, de-identified and stored under `image.sha256`.
pub async fn attach_image(
    db: &Db,
    by: &Principal,
    case_id: i64,
    image: NewImage,
) -> Result<CaseImage, CaseError> {
    require(by, Permission::EnterCaseData)?;
    if !crate::codes::is_sha256(&image.sha256) || !crate::codes::is_sha256(&image.original_sha256) {
        return Err(CaseError::Prediction(PredictionError::Hash));
    }
    let mut tx = begin(db, by, "image.attach", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if state != CaseState::Enrolled {
        return Err(IllegalTransition {
            from: state,
            event: CaseEvent::ImagesCompleted,
            hint: "images are added while the case is enrolled and its images are not yet complete"
                .into(),
        }
        .into());
    }
    let id: i64 = sqlx::query(
        "INSERT INTO case_images (case_id, view, sha256, added_at, added_by, original_sha256, modality, transfer_syntax, \
         rows_px, columns_px, photometric, body_part, laterality, warnings) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(case_id)
    .bind(image.view.as_str())
    .bind(&image.sha256)
    .bind(now_utc())
    .bind(by.user_id)
    .bind(&image.original_sha256)
    .bind(&image.modality)
    .bind(&image.transfer_syntax)
    .bind(image.rows)
    .bind(image.columns)
    .bind(&image.photometric)
    .bind(&image.body_part)
    .bind(&image.laterality)
    .bind(serde_json::to_string(&image.warnings)?)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    audit::append(
        &mut tx,
        by,
        Change::new("image.attach", "case", case_id).field(
            "image",
            None,
            Some(format!(
                "{} {} {} {}x{} stored={} original={}",
                image.view,
                image.modality,
                image.transfer_syntax,
                image.columns,
                image.rows,
                image.sha256,
                image.original_sha256
            )),
        ),
    )
    .await?;
    touch(&mut tx, case_id).await?;
    let stored = images(&mut tx, case_id)
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or(CaseError::UnknownCase(case_id))?;
    tx.commit().await?;
    Ok(stored)
}

/// The study number of a case (`P-0007`): what replaces the patient's
/// identifiers in its de-identified images.
pub async fn study_number(db: &Db, case_id: i64) -> Result<String, CaseError> {
    Ok(fetch_summary(db.pool(), case_id).await?.0.study_number)
}

/// The case a stored image belongs to, if `by` may see that case's images:
/// the roles that see every case, and the radiologists assigned to it.
/// A statistician never needs the images, and gets `Forbidden`.
pub async fn image_for_viewer(db: &Db, by: &Principal, sha256: &str) -> Result<i64, CaseError> {
    let case_id: i64 = sqlx::query("SELECT case_id FROM case_images WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CaseError::UnknownCase(0))?
        .try_get("case_id")?;
    if by.role.can(Permission::ViewCases) {
        return Ok(case_id);
    }
    if by.role.can(Permission::ReadCases) {
        let assigned =
            sqlx::query("SELECT 1 FROM read_assignments WHERE case_id = $1 AND reader_id = $2")
                .bind(case_id)
                .bind(by.user_id.unwrap_or(-1))
                .fetch_optional(db.pool())
                .await?;
        if assigned.is_some() {
            return Ok(case_id);
        }
        return Err(CaseError::NotAssigned);
    }
    Err(CaseError::Forbidden)
}

/// The case already holding an image uploaded with this original hash.
pub async fn image_by_original(db: &Db, original_sha256: &str) -> Result<Option<i64>, CaseError> {
    Ok(
        sqlx::query("SELECT case_id FROM case_images WHERE original_sha256 = $1")
            .bind(original_sha256)
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.try_get("case_id"))
            .transpose()?,
    )
}

/// The replacement of each original UID, made on first sight and kept, so a
/// study's images keep referring to each other after de-identification.
/// A new UID under the UUID-derived root 2.25 (PS3.5 B.2): 128 random bits.
pub fn new_uid() -> String {
    format!("2.25.{}", u128::from_be_bytes(rand::random::<[u8; 16]>()))
}

/// New UIDs are under the UUID-derived root 2.25 (PS3.5 B.2).
pub async fn map_uids(
    db: &Db,
    by: &Principal,
    originals: &[String],
) -> Result<std::collections::HashMap<String, String>, CaseError> {
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "image.uids", "case", 0).await?;
    let mut out = std::collections::HashMap::new();
    for original in originals {
        let existing: Option<String> =
            sqlx::query("SELECT replacement FROM uid_map WHERE original = $1")
                .bind(original)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("replacement"))
                .transpose()?;
        let replacement = match existing {
            Some(r) => r,
            None => {
                let r = new_uid();
                sqlx::query(
                    "INSERT INTO uid_map (original, replacement, created_at) VALUES ($1, $2, $3)",
                )
                .bind(original)
                .bind(&r)
                .bind(now_utc())
                .execute(&mut *tx)
                .await?;
                r
            }
        };
        out.insert(original.clone(), replacement);
    }
    tx.commit().await?;
    Ok(out)
}

async fn images(tx: &mut Tx, case_id: i64) -> Result<Vec<CaseImage>, CaseError> {
    let rows = sqlx::query(
        "SELECT id, view, sha256, added_at, modality, rows_px, columns_px, body_part, laterality, warnings \
         FROM case_images WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let warnings: Option<String> = r.try_get("warnings")?;
            Ok(CaseImage {
                id: r.try_get("id")?,
                view: r.try_get::<String, _>("view")?.parse()?,
                sha256: r.try_get("sha256")?,
                added_at: r.try_get("added_at")?,
                modality: r.try_get("modality")?,
                rows: r.try_get("rows_px")?,
                columns: r.try_get("columns_px")?,
                body_part: r.try_get("body_part")?,
                laterality: r.try_get("laterality")?,
                warnings: warnings
                    .map(|w| serde_json::from_str(&w))
                    .transpose()?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The coordinator confirms the radiographs are complete: at least one
/// frontal and one lateral view.
pub async fn complete_images(
    db: &Db,
    by: &Principal,
    case_id: i64,
) -> Result<CaseState, CaseError> {
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "images.complete", "case", case_id).await?;
    let imgs = images(&mut tx, case_id).await?;
    let has = |v: View| imgs.iter().any(|i| i.view == v);
    if !(has(View::Frontal) && has(View::Lateral)) {
        let have = imgs
            .iter()
            .map(|i| i.view.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CaseError::ViewsMissing(if have.is_empty() {
            "none".into()
        } else {
            have
        }));
    }
    let next = advance(&mut tx, by, case_id, CaseEvent::ImagesCompleted, None).await?;
    tx.commit().await?;
    Ok(next)
}

// -------------------------------------------------------------- signatures

/// Re-authenticates `by` (21 CFR 11.200) and returns the printed name.
/// Done before the write lock is taken: the password check is slow.
async fn reauthenticate(db: &Db, by: &Principal, password: &str) -> Result<String, CaseError> {
    Ok(accounts::reauthenticate(db, by, password)
        .await?
        .display_name)
}

/// Applies a signature to `entity` `id` version `version`.
pub(crate) async fn insert_signature(
    tx: &mut Tx,
    by: &Principal,
    printed_name: &str,
    entity: &'static str,
    id: i64,
    version: i64,
    meaning: SignatureMeaning,
) -> Result<i64, CaseError> {
    let sig: i64 = sqlx::query(
        "INSERT INTO signatures (entity, entity_id, entity_version, meaning, user_id, printed_name, signed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(entity)
    .bind(id)
    .bind(version)
    .bind(meaning.as_str())
    .bind(user_id(by)?)
    .bind(printed_name)
    .bind(now_utc())
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    audit::append(
        tx,
        by,
        Change::new("signature.apply", entity, id).field(
            "signature",
            None,
            Some(format!("{printed_name} ({}) {meaning} v{version}", by.name)),
        ),
    )
    .await?;
    Ok(sig)
}

/// Voids every signature in force on `entity` `id` (an edit of signed data).
async fn void_signatures(
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
async fn signatures<'e, E>(
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

fn signature_from_row(r: &AnyRow) -> Result<Signature, CaseError> {
    Ok(Signature {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        printed_name: r.try_get("printed_name")?,
        meaning: r.try_get::<String, _>("meaning")?.parse()?,
        signed_at: r.try_get("signed_at")?,
        voided_at: r.try_get("voided_at")?,
    })
}

// -------------------------------------------------------------------- CRF

async fn latest_crf(tx: &mut Tx, case_id: i64) -> Result<Option<CrfRecord>, CaseError> {
    let row = sqlx::query(
        "SELECT v.version, v.data, v.complete, v.created_at, u.username, v.reason_for_change \
         FROM crf_versions v JOIN users u ON u.id = v.created_by WHERE v.case_id = $1 \
         ORDER BY v.version DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
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
        signatures: signatures(&mut **tx, "crf", case_id, Some(version)).await?,
    }))
}

/// Saves the clinical CRF: a draft, or marked complete. A form once complete
/// stays complete, and every later change needs a reason, is audited field by
/// field and voids the signatures on the form.
pub async fn save_crf(
    db: &Db,
    by: &Principal,
    case_id: i64,
    crf: ClinicalCrf,
    mark_complete: bool,
    reason: Option<&Reason>,
) -> Result<CrfRecord, CaseError> {
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
    write_crf_version(&mut tx, by, case_id, old.as_ref(), &crf, complete, reason).await?;
    if complete && !was_complete {
        advance(&mut tx, by, case_id, CaseEvent::CrfCompleted, None).await?;
    }
    touch(&mut tx, case_id).await?;
    let record = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}

/// Writes the next version of the CRF, audits each changed field with the
/// reason, and voids the signatures on the form it replaces.
async fn write_crf_version(
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
    for (i, (field, new)) in crf.field_values().into_iter().enumerate() {
        let previous = before.as_ref().map(|b| b[i].1.clone());
        if previous.as_deref().unwrap_or("") != new {
            audit::append(
                tx,
                by,
                Change::new("crf.save", "case", case_id)
                    .field(field, previous, Some(new))
                    .reason(reason),
            )
            .await?;
        }
    }
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
pub async fn amend_frozen_crf(
    db: &Db,
    by: &Principal,
    case_id: i64,
    crf: ClinicalCrf,
    reason: &Reason,
    password: &str,
) -> Result<CrfRecord, CaseError> {
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
    let name = reauthenticate(db, by, password).await?;
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
    touch(&mut tx, case_id).await?;
    let record = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}

async fn deviations_of(tx: &mut Tx, case_id: Option<i64>) -> Result<Vec<Deviation>, CaseError> {
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
                field: r.try_get("field")?,
                old_value: r.try_get("old_value")?,
                new_value: r.try_get("new_value")?,
                reason: r.try_get("reason")?,
                at: r.try_get("at")?,
                signed_by: r.try_get("printed_name")?,
            })
        })
        .collect()
}

/// Signs the current, complete CRF.
pub async fn sign_crf(
    db: &Db,
    by: &Principal,
    case_id: i64,
    meaning: SignatureMeaning,
    password: &str,
) -> Result<CrfRecord, CaseError> {
    require(by, Permission::SignCrf)?;
    let name = reauthenticate(db, by, password).await?;
    let mut tx = begin(db, by, "crf.sign", "case", case_id).await?;
    let crf = latest_crf(&mut tx, case_id)
        .await?
        .filter(|c| c.complete)
        .ok_or(CaseError::NothingToSign)?;
    insert_signature(&mut tx, by, &name, "crf", case_id, crf.version, meaning).await?;
    let record = latest_crf(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    tx.commit().await?;
    Ok(record)
}

// ------------------------------------------------------------------ reads

async fn readers_per_case(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT readers_per_case FROM study_settings WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get("readers_per_case")
}

/// Assigns a radiologist to read a case.
pub async fn assign_reader(
    db: &Db,
    by: &Principal,
    case_id: i64,
    username: &str,
) -> Result<Vec<String>, CaseError> {
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

async fn assigned(tx: &mut Tx, case_id: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
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

const READ_SQL: &str = "SELECT r.id, r.case_id, r.reader_id, u.username, u.display_name, r.data, r.points, r.category, \
     r.rule_version, r.signed_at, r.updated_at FROM reads r JOIN users u ON u.id = r.reader_id";

async fn read_from_row(tx: &mut Tx, r: &AnyRow) -> Result<Read, CaseError> {
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
        score: Some(bonerads::Score {
            points: points.and_then(|p| u8::try_from(p).ok()),
            category: u8::try_from(category).unwrap_or(0),
        }),
        rule_version: r.try_get("rule_version")?,
        signature,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn reads_of(tx: &mut Tx, case_id: i64, reader: Option<i64>) -> Result<Vec<Read>, CaseError> {
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
async fn rule_table(tx: &mut Tx) -> Result<(String, RuleTable), CaseError> {
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
pub async fn save_read(
    db: &Db,
    by: &Principal,
    case_id: i64,
    input: ReadInput,
) -> Result<Read, CaseError> {
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
    match &existing {
        None => {
            sqlx::query(
                "INSERT INTO reads (case_id, reader_id, data, points, category, rule_version, likelihood, call, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(case_id)
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
        }
        Some(r) => {
            sqlx::query(
                "UPDATE reads SET data = $1, points = $2, category = $3, rule_version = $4, likelihood = $5, call = $6, \
                 updated_at = $7 WHERE id = $8",
            )
            .bind(&data)
            .bind(points)
            .bind(category)
            .bind(&version)
            .bind(i64::from(input.likelihood))
            .bind(input.call.as_str())
            .bind(&now)
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        }
    }
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
    let read = reads_of(&mut tx, case_id, Some(me))
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::NoReadToSign)?;
    tx.commit().await?;
    Ok(read)
}

/// Signs the radiologist's own read, which locks it. When every assigned
/// read is signed (and the study's number of readers is reached) the case
/// moves to `reads_locked` and waits for the AI.
pub async fn sign_read(
    db: &Db,
    by: &Principal,
    case_id: i64,
    password: &str,
) -> Result<Read, CaseError> {
    require(by, Permission::ReadCases)?;
    let me = user_id(by)?;
    let name = reauthenticate(db, by, password).await?;
    let mut tx = begin(db, by, "read.sign", "case", case_id).await?;
    let read = reads_of(&mut tx, case_id, Some(me))
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::NoReadToSign)?;
    if read.is_locked() {
        return Err(CaseError::ReadLocked);
    }
    let sig = insert_signature(
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
    maybe_lock_reads(&mut tx, by, case_id).await?;
    let read = reads_of(&mut tx, case_id, Some(me))
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::NoReadToSign)?;
    tx.commit().await?;
    Ok(read)
}

/// Moves the case to `reads_locked` once enough readers are assigned and
/// every one of them has signed.
async fn maybe_lock_reads(tx: &mut Tx, by: &Principal, case_id: i64) -> Result<(), CaseError> {
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
    }
    Ok(())
}

// ------------------------------------------------------------- prediction

/// Records the model's prediction for a case: written once, by the system
/// only, after every read is locked; it never changes afterwards.
pub async fn record_prediction(
    db: &Db,
    by: &Principal,
    case_id: i64,
    input: PredictionInput,
) -> Result<Prediction, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let call = input.check()?;
    let mut tx = begin(db, by, "prediction.record", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    if fetch_prediction(&mut tx, case_id).await?.is_some() {
        return Err(CaseError::PredictionExists);
    }
    state.apply(CaseEvent::PredictionLocked)?;
    // One model, pinned by the PI before the first prediction (invariant 10).
    let pin = crate::study::pinned_model_in(&mut tx)
        .await?
        .ok_or(CaseError::NoPinnedModel)?;
    if pin.weights_sha256 != input.weights_sha256 || pin.model_id != input.model_id {
        drop(tx);
        let refused = CaseError::NotPinnedModel(input.model_id.clone());
        return Err(refuse(db, by, "prediction.refused", case_id, refused).await);
    }
    let created_at = now_utc();
    let canonical = serde_json::json!({
        "case_id": case_id,
        "probability": input.probability,
        "threshold": input.threshold,
        "call": call.as_str(),
        "model_id": input.model_id,
        "weights_sha256": input.weights_sha256,
        "image_sha256": input.image_sha256,
        "heatmaps": input.heatmaps,
        "bone_rads_source": input.bone_rads_source.as_str(),
        "created_at": created_at,
    });
    let record_sha256 = crate::store::sha256_hex(&serde_json::to_vec(&canonical)?);
    sqlx::query(
        "INSERT INTO predictions (case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, \
         bone_rads_source, record_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(case_id)
    .bind(input.probability)
    .bind(input.threshold)
    .bind(call.as_str())
    .bind(&input.model_id)
    .bind(&input.weights_sha256)
    .bind(serde_json::to_string(&input.image_sha256)?)
    .bind(serde_json::to_string(&input.heatmaps)?)
    .bind(input.bone_rads_source.as_str())
    .bind(&record_sha256)
    .bind(&created_at)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("prediction.lock", "case", case_id).field(
            "prediction",
            None,
            Some(canonical.to_string()),
        ),
    )
    .await?;
    advance(&mut tx, by, case_id, CaseEvent::PredictionLocked, None).await?;
    let p = fetch_prediction(&mut tx, case_id)
        .await?
        .ok_or(CaseError::UnknownCase(case_id))?;
    tx.commit().await?;
    Ok(p)
}

/// The cases whose reads are locked and that have no prediction yet, oldest
/// first: the model's queue (system principal only).
pub async fn awaiting_ai(db: &Db, by: &Principal) -> Result<Vec<i64>, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let rows = sqlx::query(
        "SELECT c.id FROM cases c WHERE c.state = 'reads_locked' \
         AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = c.id) ORDER BY c.updated_at, c.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(CaseError::from))
        .collect()
}

/// What the model takes for one case (system principal only); refused
/// unless the case is at `reads_locked` with a complete CRF.
pub async fn ai_input(db: &Db, by: &Principal, case_id: i64) -> Result<AiInput, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let mut tx = db.pool().begin().await?;
    let state = state_of(&mut tx, case_id).await?;
    state.apply(CaseEvent::PredictionLocked)?;
    let images = images(&mut tx, case_id).await?;
    let crf = latest_crf(&mut tx, case_id)
        .await?
        .filter(|c| c.complete)
        .ok_or(CaseError::UnknownCase(case_id))?
        .data;
    // The study's setting decides which score the model takes; the primary
    // reader is the first reader assigned (not the first read saved).
    let source: BoneRadsSource =
        sqlx::query("SELECT bone_rads_source FROM study_settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<String, _>("bone_rads_source")?
            .parse()?;
    let readers = assigned(&mut tx, case_id).await?;
    let reads = reads_of(&mut tx, case_id, None).await?;
    let signed: Vec<&Read> = readers
        .iter()
        .filter_map(|(_, name)| reads.iter().find(|r| &r.reader == name && r.is_locked()))
        .collect();
    let bone_rads = match source {
        BoneRadsSource::PrimaryReader => {
            let primary = signed.first().ok_or(CaseError::UnknownCase(case_id))?;
            primary.score
        }
        BoneRadsSource::Consensus => {
            let (_, table) = rule_table(&mut tx).await?;
            let points: Vec<u8> = signed
                .iter()
                .filter_map(|r| r.score.and_then(|s| s.points))
                .collect();
            consensus_score(&points, &table)
        }
    };
    let failures = ai_failures(&mut tx, case_id).await?.len() as i64;
    tx.commit().await?;
    Ok(AiInput {
        case_id,
        images,
        crf,
        bone_rads,
        bone_rads_source: source,
        failures,
    })
}

/// Records a failed model run on a case (system principal only), audited.
pub async fn record_ai_failure(
    db: &Db,
    by: &Principal,
    case_id: i64,
    model_id: &str,
    error: &str,
) -> Result<AiFailure, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let mut tx = begin(db, by, "prediction.failure", "case", case_id).await?;
    let attempt = ai_failures(&mut tx, case_id).await?.len() as i64 + 1;
    let at = now_utc();
    let error: String = error.chars().take(2000).collect();
    sqlx::query("INSERT INTO ai_failures (case_id, attempt, model_id, error, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(attempt)
        .bind(model_id)
        .bind(&error)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("prediction.failed", "case", case_id)
            .field("attempt", None, Some(attempt.to_string()))
            .field("error", None, Some(error.clone())),
    )
    .await?;
    tx.commit().await?;
    Ok(AiFailure {
        attempt,
        model_id: model_id.to_owned(),
        error,
        at,
    })
}

async fn ai_failures(tx: &mut Tx, case_id: i64) -> Result<Vec<AiFailure>, CaseError> {
    let rows = sqlx::query(
        "SELECT attempt, model_id, error, at FROM ai_failures WHERE case_id = $1 ORDER BY attempt",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AiFailure {
                attempt: r.try_get("attempt")?,
                model_id: r.try_get("model_id")?,
                error: r.try_get("error")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

async fn fetch_prediction(tx: &mut Tx, case_id: i64) -> Result<Option<Prediction>, CaseError> {
    let Some(r) = sqlx::query("SELECT * FROM predictions WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Prediction {
        case_id,
        input: PredictionInput {
            probability: r.try_get("probability")?,
            threshold: r.try_get("threshold")?,
            model_id: r.try_get("model_id")?,
            weights_sha256: r.try_get("weights_sha256")?,
            image_sha256: serde_json::from_str(&r.try_get::<String, _>("image_sha256")?)?,
            heatmaps: serde_json::from_str(&r.try_get::<String, _>("heatmaps")?)?,
            bone_rads_source: r.try_get::<String, _>("bone_rads_source")?.parse()?,
        },
        call: r.try_get::<String, _>("call")?.parse()?,
        created_at: r.try_get("created_at")?,
        record_sha256: r.try_get("record_sha256")?,
    }))
}

// -------------------------------------------------------------- pathology

async fn latest_pathology(tx: &mut Tx, case_id: i64) -> Result<Option<PathologyRecord>, CaseError> {
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
            entity_name: pathology::entity(&entity)
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
pub async fn enter_pathology(
    db: &Db,
    by: &Principal,
    case_id: i64,
    input: PathologyInput,
    reason: Option<&Reason>,
) -> Result<PathologyRecord, CaseError> {
    require(by, Permission::EnterCaseData)?;
    let p = input.check(&latest_screening_date())?;
    let mut tx = begin(db, by, "pathology.enter", "case", case_id).await?;
    let state = state_of(&mut tx, case_id).await?;
    let old = latest_pathology(&mut tx, case_id).await?;
    let event = match (&old, state) {
        (None, CaseState::AiLocked) => CaseEvent::PathologyEntered,
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
pub async fn sign_pathology(
    db: &Db,
    by: &Principal,
    case_id: i64,
    meaning: SignatureMeaning,
    password: &str,
) -> Result<PathologyRecord, CaseError> {
    require(by, Permission::SignCrf)?;
    let name = reauthenticate(db, by, password).await?;
    let mut tx = begin(db, by, "pathology.sign", "case", case_id).await?;
    let record = latest_pathology(&mut tx, case_id)
        .await?
        .ok_or(CaseError::NothingToSign)?;
    insert_signature(
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

// ------------------------------------------------------ withdraw, exclude

/// Ends a case, with a coded reason and the state it was in recorded:
/// an eligibility exclusion (E1–E3) is the coordinator's, until the reads
/// lock; a withdrawal (consent withdrawn, lost to follow-up, pathology not
/// obtained) carries the principal investigator's signature (password) and
/// is possible until pathology is entered. Once pathology is known the case
/// stays in the analysis. A refusal is audited.
pub async fn end_case(
    db: &Db,
    by: &Principal,
    case_id: i64,
    end: CaseEnd,
    reason: &Reason,
    password: Option<&str>,
) -> Result<CaseState, CaseError> {
    let printed_name = match end {
        CaseEnd::Excluded(_) => {
            require(by, Permission::EnterCaseData)?;
            None
        }
        CaseEnd::Withdrawn(_) => {
            if !by.role.can(Permission::WithdrawCases) {
                return Err(CaseError::WithdrawalNeedsPi);
            }
            let password = password.ok_or(CaseError::BadPassword)?;
            Some(reauthenticate(db, by, password).await?)
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

async fn case_end_of(tx: &mut Tx, case_id: i64) -> Result<Option<CaseEndRecord>, CaseError> {
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
                .map_err(|e: crate::screening::ScreeningError| CaseError::Store(e.to_string()))?,
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

// ----------------------------------------------------------- image quality

/// Marks the case's radiographs as poor quality (a coordinator, with a
/// reason): the case then proposes exclusion E1, which the coordinator
/// confirms by ending the case. Refused once the case has ended.
pub async fn mark_poor_quality(
    db: &Db,
    by: &Principal,
    case_id: i64,
    reason: &Reason,
) -> Result<(), CaseError> {
    require(by, Permission::EnterCaseData)?;
    let mut tx = begin(db, by, "images.poor_quality", "case", case_id).await?;
    let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
    if summary.state.is_final() {
        return Err(CaseError::CaseClosed(summary.state.to_string()));
    }
    let user = by.user_id.ok_or(CaseError::Forbidden)?;
    sqlx::query(
        "INSERT INTO quality_marks (case_id, reason, marked_at, marked_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(case_id)
    .bind(reason.as_str())
    .bind(now_utc())
    .bind(user)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        by,
        Change::new("images.poor_quality", "case", case_id)
            .field(
                "image_quality",
                None,
                Some("poor: exclusion E1 proposed".to_owned()),
            )
            .reason(Some(reason.as_str())),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn quality_marks(tx: &mut Tx, case_id: i64) -> Result<Vec<QualityMark>, CaseError> {
    let rows = sqlx::query(
        "SELECT q.reason, q.marked_at, u.display_name FROM quality_marks q JOIN users u ON u.id = q.marked_by \
         WHERE q.case_id = $1 ORDER BY q.id",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QualityMark {
                reason: r.try_get("reason")?,
                marked_at: r.try_get("marked_at")?,
                marked_by: r.try_get("display_name")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ views

/// Whether `by` sees unblinded data now: the unblinded roles always, a
/// statistician after database lock, a radiologist never.
async fn unblinded(db: &Db, by: &Principal) -> Result<bool, CaseError> {
    Ok(by.role.can(Permission::ViewUnblinded)
        || (by.role == Role::Statistician && is_locked(db.pool()).await?))
}

/// The whole case as `by` may see it.
pub async fn case_detail(db: &Db, by: &Principal, case_id: i64) -> Result<CaseDetail, CaseError> {
    let all = unblinded(db, by).await?;
    let reader = by.role.can(Permission::ReadCases);
    if !all && !reader {
        return Err(if by.role == Role::Statistician {
            CaseError::Blinded
        } else {
            CaseError::Forbidden
        });
    }
    let mut tx = db.pool().begin().await?;
    let (summary, end_reason) = fetch_summary(&mut *tx, case_id).await?;
    let readers = assigned(&mut tx, case_id).await?;
    let me = by.user_id.unwrap_or(-1);
    if !all && !readers.iter().any(|(id, _)| *id == me) {
        return Err(CaseError::NotAssigned);
    }
    let images = images(&mut tx, case_id).await?;
    let crf = latest_crf(&mut tx, case_id).await?;
    let detail = if all {
        CaseDetail {
            summary,
            end_reason,
            images,
            crf,
            readers: readers.into_iter().map(|(_, n)| n).collect(),
            reads: reads_of(&mut tx, case_id, None).await?,
            prediction: fetch_prediction(&mut tx, case_id).await?,
            pathology: latest_pathology(&mut tx, case_id).await?,
            withheld: vec![],
            ai_failures: ai_failures(&mut tx, case_id).await?,
            quality_marks: quality_marks(&mut tx, case_id).await?,
            end: case_end_of(&mut tx, case_id).await?,
            deviations: deviations_of(&mut tx, Some(case_id)).await?,
        }
    } else {
        CaseDetail {
            summary,
            end_reason,
            images,
            crf,
            readers: readers
                .into_iter()
                .filter(|(id, _)| *id == me)
                .map(|(_, n)| n)
                .collect(),
            reads: reads_of(&mut tx, case_id, Some(me)).await?,
            prediction: None,
            pathology: None,
            withheld: vec!["reads".into(), "prediction".into(), "pathology".into()],
            ai_failures: Vec::new(),
            quality_marks: quality_marks(&mut tx, case_id).await?,
            end: case_end_of(&mut tx, case_id).await?,
            deviations: Vec::new(),
        }
    };
    tx.commit().await?;
    Ok(detail)
}

/// The prediction alone (403 for blinded users).
pub async fn prediction(
    db: &Db,
    by: &Principal,
    case_id: i64,
) -> Result<Option<Prediction>, CaseError> {
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let p = fetch_prediction(&mut tx, case_id).await?;
    tx.commit().await?;
    Ok(p)
}

/// The pathology alone (403 for blinded users).
pub async fn pathology_of(
    db: &Db,
    by: &Principal,
    case_id: i64,
) -> Result<Option<PathologyRecord>, CaseError> {
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let p = latest_pathology(&mut tx, case_id).await?;
    tx.commit().await?;
    Ok(p)
}

/// Every read of a case (403 for blinded users; a radiologist sees their own
/// read on the case page).
pub async fn reads(db: &Db, by: &Principal, case_id: i64) -> Result<Vec<Read>, CaseError> {
    if !unblinded(db, by).await? {
        return Err(CaseError::Blinded);
    }
    let mut tx = db.pool().begin().await?;
    fetch_summary(&mut *tx, case_id).await?;
    let r = reads_of(&mut tx, case_id, None).await?;
    tx.commit().await?;
    Ok(r)
}

/// Every case (roles that see cases), newest activity first within state order.
pub async fn list_cases(db: &Db, by: &Principal) -> Result<Vec<CaseSummary>, CaseError> {
    require(by, Permission::ViewCases)?;
    let rows = sqlx::query(&format!("{SUMMARY_SQL} ORDER BY c.arm, c.study_no"))
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| summary_from_row(r).map(|(s, _)| s))
        .collect()
}

/// What is due for `by`: a coordinator's open steps, a radiologist's reads,
/// a monitor's cases with open queries, everything open for the PI.
pub async fn worklist(db: &Db, by: &Principal) -> Result<Vec<CaseSummary>, CaseError> {
    let me = by.user_id.unwrap_or(-1);
    let sql = match by.role {
        Role::Coordinator => format!(
            "{SUMMARY_SQL} WHERE c.state IN ('enrolled', 'images_complete', 'crf_complete', 'ai_locked', 'pathology_entered') \
             ORDER BY c.updated_at"
        ),
        Role::Radiologist => format!(
            "{SUMMARY_SQL} WHERE c.state = 'crf_complete' AND EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = c.id \
             AND a.reader_id = $1) AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.case_id = c.id AND r.reader_id = $1 \
             AND r.signed_at IS NOT NULL) ORDER BY c.updated_at"
        ),
        Role::Monitor => format!(
            "{SUMMARY_SQL} WHERE EXISTS (SELECT 1 FROM queries q WHERE q.case_id = c.id AND q.status IN ('open', 'answered')) \
             ORDER BY c.updated_at"
        ),
        Role::PrincipalInvestigator => format!(
            "{SUMMARY_SQL} WHERE c.state NOT IN ('complete', 'withdrawn', 'excluded') ORDER BY c.updated_at"
        ),
        Role::Admin | Role::Statistician => return Ok(Vec::new()),
    };
    let rows = sqlx::query(&sql).bind(me).fetch_all(db.pool()).await?;
    let mut out = rows
        .iter()
        .map(|r| summary_from_row(r).map(|(s, _)| s))
        .collect::<Result<Vec<_>, _>>()?;
    if by.role == Role::Radiologist {
        for s in &mut out {
            s.waits_for = "your blinded read".into();
        }
    }
    Ok(out)
}

/// The case id of a study number such as `P-0007` (`D-0007` in the
/// demonstration study).
pub async fn find_case(db: &Db, study_number: &str) -> Result<Option<i64>, CaseError> {
    let kind = study_kind(db.pool()).await?;
    let Some((arm, no)) = Arm::parse_label(kind, study_number) else {
        return Ok(None);
    };
    Ok(
        sqlx::query("SELECT id FROM cases WHERE arm = $1 AND study_no = $2")
            .bind(arm.as_str())
            .bind(no)
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?,
    )
}

// ---------------------------------------------------------------- queries

const QUERY_FIELDS_EXTRA: [&str; 4] = ["case", "images", "read", "pathology"];

async fn fetch_queries(
    db: &Db,
    case_id: Option<i64>,
    query_id: Option<i64>,
    open_only: bool,
) -> Result<Vec<DataQuery>, CaseError> {
    let rows = sqlx::query(&format!(
        "SELECT q.id, q.case_id, q.field, q.status, q.raised_at, u.username, c.arm, c.study_no, si.code AS site_code, \
         (SELECT kind FROM study WHERE id = 1) AS study_kind \
         FROM queries q JOIN users u ON u.id = q.raised_by JOIN cases c ON c.id = q.case_id JOIN sites si ON si.id = c.site_id \
         WHERE ($1 IS NULL OR q.case_id = $1) AND ($2 IS NULL OR q.id = $2) {} ORDER BY si.code, q.id",
        if open_only { "AND q.status IN ('open', 'answered')" } else { "" }
    ))
    .bind(case_id)
    .bind(query_id)
    .fetch_all(db.pool())
    .await?;
    // Every message of the selected queries in one read, grouped by query.
    let mut messages: std::collections::HashMap<i64, Vec<QueryMessage>> =
        std::collections::HashMap::new();
    let message_rows = sqlx::query(&format!(
        "SELECT m.query_id, m.action, m.text, u.username, m.created_at FROM query_messages m \
         JOIN users u ON u.id = m.created_by JOIN queries q ON q.id = m.query_id \
         WHERE ($1 IS NULL OR q.case_id = $1) AND ($2 IS NULL OR q.id = $2) {} ORDER BY m.query_id, m.seq",
        if open_only { "AND q.status IN ('open', 'answered')" } else { "" }
    ))
    .bind(case_id)
    .bind(query_id)
    .fetch_all(db.pool())
    .await?;
    for m in &message_rows {
        messages
            .entry(m.try_get("query_id")?)
            .or_default()
            .push(QueryMessage {
                action: m.try_get("action")?,
                text: m.try_get("text")?,
                by: m.try_get("username")?,
                at: m.try_get("created_at")?,
            });
    }
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            Ok(DataQuery {
                id,
                case_id: r.try_get("case_id")?,
                study_number: arm_of(r)?.label(study_kind_of(r), r.try_get("study_no")?),
                site_code: r.try_get("site_code")?,
                field: r.try_get("field")?,
                status: r.try_get::<String, _>("status")?.parse()?,
                raised_by: r.try_get("username")?,
                raised_at: r.try_get("raised_at")?,
                messages: messages.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

fn check_text(text: &str) -> Result<String, CaseError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 2000 {
        return Err(CaseError::QueryText);
    }
    Ok(t.to_owned())
}

async fn add_message(
    tx: &mut Tx,
    by: &Principal,
    query_id: i64,
    action: &str,
    text: &str,
) -> Result<(), CaseError> {
    let seq: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM query_messages WHERE query_id = $1",
    )
    .bind(query_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("next")?;
    sqlx::query("INSERT INTO query_messages (query_id, seq, action, text, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(query_id)
        .bind(seq)
        .bind(action)
        .bind(text)
        .bind(user_id(by)?)
        .bind(now_utc())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Raises a data query on one field of a case.
pub async fn raise_query(
    db: &Db,
    by: &Principal,
    case_id: i64,
    field: &str,
    text: &str,
) -> Result<DataQuery, CaseError> {
    require(by, Permission::RaiseQuery)?;
    let field = field.trim();
    if !ClinicalCrf::FIELDS.contains(&field) && !QUERY_FIELDS_EXTRA.contains(&field) {
        return Err(CaseError::UnknownField(field.to_owned()));
    }
    let text = check_text(text)?;
    let mut tx = begin(db, by, "query.raise", "case", case_id).await?;
    fetch_summary(&mut *tx, case_id).await?;
    let now = now_utc();
    let id: i64 = sqlx::query(
        "INSERT INTO queries (case_id, field, status, raised_by, raised_at, updated_at) VALUES ($1, $2, 'open', $3, $4, $4) RETURNING id",
    )
    .bind(case_id)
    .bind(field)
    .bind(user_id(by)?)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    add_message(&mut tx, by, id, "raise", &text).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("query.raise", "query", id).field(
            "status",
            None,
            Some(format!("open case={case_id} field={field}: {text}")),
        ),
    )
    .await?;
    tx.commit().await?;
    fetch_queries(db, None, Some(id), false)
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::UnknownQuery(id))
}

/// Answers, closes, reopens or cancels a query.
pub async fn act_on_query(
    db: &Db,
    by: &Principal,
    query_id: i64,
    action: QueryAction,
    text: &str,
) -> Result<DataQuery, CaseError> {
    match action {
        QueryAction::Answer => require(by, Permission::AnswerQuery)?,
        QueryAction::Close | QueryAction::Reopen | QueryAction::Cancel => {
            require(by, Permission::RaiseQuery)?
        }
    }
    let text = check_text(text)?;
    let mut tx = begin(db, by, "query.act", "query", query_id).await?;
    let row = sqlx::query("SELECT status, raised_by FROM queries WHERE id = $1")
        .bind(query_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CaseError::UnknownQuery(query_id))?;
    let status: QueryStatus = row.try_get::<String, _>("status")?.parse()?;
    let raised_by: i64 = row.try_get("raised_by")?;
    if action == QueryAction::Cancel && by.user_id != Some(raised_by) {
        return Err(CaseError::Forbidden);
    }
    let next = status.apply(action).ok_or(CaseError::QueryTransition {
        from: status,
        action,
    })?;
    sqlx::query("UPDATE queries SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(next.as_str())
        .bind(now_utc())
        .bind(query_id)
        .execute(&mut *tx)
        .await?;
    add_message(&mut tx, by, query_id, action.as_str(), &text).await?;
    audit::append(
        &mut tx,
        by,
        Change::new("query.act", "query", query_id)
            .field("status", Some(status.to_string()), Some(next.to_string()))
            .reason(Some(&text)),
    )
    .await?;
    tx.commit().await?;
    fetch_queries(db, None, Some(query_id), false)
        .await?
        .into_iter()
        .next()
        .ok_or(CaseError::UnknownQuery(query_id))
}

/// Queries, of one case or of every case; only open and answered ones when `open_only`.
pub async fn list_queries(
    db: &Db,
    by: &Principal,
    case_id: Option<i64>,
    open_only: bool,
) -> Result<Vec<DataQuery>, CaseError> {
    require(by, Permission::ViewCases)?;
    fetch_queries(db, case_id, None, open_only).await
}
