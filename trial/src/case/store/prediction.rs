//! The AI prediction: the model's input as the study says, the locked
//! record from the pinned model only, and failed runs.

use super::cases::*;
use super::crf::latest_crf;
use super::images::images;
use super::reads::{assigned, reads_of, rule_table};
use crate::audit::{self, Change, Principal};
use crate::case::error::CaseError;
use crate::case::record::*;
use crate::domain::AuditSource;
use crate::domain::{CaseId, Probability, Sha256};
use crate::store::{now_utc, Db};
use crate::write::{begin, Tx};
use sqlx::Row;

/// Records the model's prediction for a case: written once, by the system
/// only, after every read is locked; it never changes afterwards.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn record_prediction(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    input: PredictionInput,
) -> Result<Prediction, CaseError> {
    let case_id = case_id.get();
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let call = input.check()?;
    let mut tx = begin(db, by, "prediction.record", "case", case_id).await?;
    let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
    if fetch_prediction(&mut tx, case_id).await?.is_some() {
        return Err(CaseError::PredictionExists);
    }
    summary
        .state
        .apply_in(summary.arm, CaseEvent::PredictionLocked)?;
    // One model, pinned by the PI before the first prediction (invariant 10).
    let pin = crate::study::pinned_model_in(&mut tx)
        .await?
        .ok_or(CaseError::NoPinnedModel)?;
    if input.weights_sha256 != pin.weights_sha256 || pin.model_id != input.model_id {
        drop(tx);
        let refused = CaseError::NotPinnedModel(input.model_id.clone());
        return Err(refuse(db, by, "prediction.refused", case_id, refused).await);
    }
    let created_at = now_utc();
    let mut canonical = serde_json::json!({
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
    // The flag joins the canonical record only where there is one, so that
    // the records written before it existed keep their digests.
    if let Some(d) = &input.domain {
        canonical["out_of_domain"] = serde_json::json!(d.outside);
        canonical["domain_reasons"] = serde_json::json!(d.reasons);
    }
    let record_sha256 = crate::store::sha256_hex(&serde_json::to_vec(&canonical)?);
    sqlx::query(
        "INSERT INTO predictions (case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, \
         bone_rads_source, record_sha256, created_at, out_of_domain, domain_reasons) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(case_id)
    .bind(input.probability.get())
    .bind(input.threshold.get())
    .bind(call.as_str())
    .bind(&input.model_id)
    .bind(input.weights_sha256.as_str())
    .bind(serde_json::to_string(&input.image_sha256)?)
    .bind(serde_json::to_string(&input.heatmaps)?)
    .bind(input.bone_rads_source.as_str())
    .bind(&record_sha256)
    .bind(&created_at)
    .bind(input.domain.as_ref().map(|d| i64::from(d.outside)))
    .bind(
        input
            .domain
            .as_ref()
            .map(|d| serde_json::to_string(&d.reasons))
            .transpose()?,
    )
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
#[tracing::instrument(skip_all)]
pub async fn awaiting_ai(db: &Db, by: &Principal) -> Result<Vec<i64>, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let rows = sqlx::query(
        "SELECT c.id FROM cases c WHERE c.state = 'reads_locked' AND c.arm = 'prospective' \
         AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = c.id) ORDER BY c.updated_at, c.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(CaseError::from))
        .collect()
}

/// Takes the model's lease on a case for `holder` (one server's worker)
/// for `lease`: `true` when this holder may run the model on it now. With
/// several servers on one database, only one holds a case at a time; a lease
/// that has run out (its server stopped in the middle of a run) is taken
/// over, and a case that has its prediction, or is no longer waiting for
/// one, is never taken. One statement, so two servers racing for a case
/// cannot both win, on either engine (the row's unique key decides).
pub async fn claim_for_ai(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    holder: &str,
    lease: std::time::Duration,
) -> Result<bool, CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let now = chrono::Utc::now();
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(2));
    let mut tx = crate::write::transaction(db).await?;
    let taken = sqlx::query(
        "INSERT INTO ai_leases (case_id, holder, expires_at, claims) \
         SELECT $1, $2, $3, 1 WHERE EXISTS (SELECT 1 FROM cases c WHERE c.id = $1 \
         AND c.state = 'reads_locked' AND c.arm = 'prospective' AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = c.id)) \
         ON CONFLICT (case_id) DO UPDATE SET holder = excluded.holder, \
         expires_at = excluded.expires_at, claims = ai_leases.claims + 1 \
         WHERE ai_leases.expires_at < $4 RETURNING case_id",
    )
    .bind(case_id.get())
    .bind(holder)
    .bind(crate::store::format_utc(until))
    .bind(crate::store::format_utc(now))
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    tx.commit().await?;
    Ok(taken)
}

/// Gives the lease back once the run is over (recorded or failed), so that
/// a retry need not wait for it to run out.
pub async fn release_ai_claim(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    holder: &str,
) -> Result<(), CaseError> {
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let mut tx = crate::write::transaction(db).await?;
    sqlx::query("UPDATE ai_leases SET expires_at = $1 WHERE case_id = $2 AND holder = $3")
        .bind(now_utc())
        .bind(case_id.get())
        .bind(holder)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// How many cases wait for the model (the queue's length, for monitoring:
/// a count, nothing about any case).
pub async fn ai_queue_length(db: &Db) -> Result<i64, CaseError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM cases c WHERE c.state = 'reads_locked' AND c.arm = 'prospective' \
         AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = c.id)",
    )
    .fetch_one(db.pool())
    .await?)
}

/// What the model takes for one case (system principal only); refused
/// unless the case is at `reads_locked` with a complete CRF.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn ai_input(db: &Db, by: &Principal, case_id: CaseId) -> Result<AiInput, CaseError> {
    let case_id = case_id.get();
    if by.source != AuditSource::System {
        return Err(CaseError::Forbidden);
    }
    let mut tx = db.pool().begin().await?;
    let (summary, _) = fetch_summary(&mut *tx, case_id).await?;
    summary
        .state
        .apply_in(summary.arm, CaseEvent::PredictionLocked)?;
    let images = images(&mut tx, case_id).await?;
    let crf = latest_crf(&mut tx, case_id)
        .await?
        .filter(|c| c.complete)
        .ok_or(CaseError::UnknownCase(case_id))?
        .data;
    let (source, bone_rads) = match model_score(&mut tx, case_id).await? {
        ModelScore::PrimaryUnsigned => return Err(CaseError::UnknownCase(case_id)),
        ModelScore::Score(source, score) => (source, score),
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

/// The Bone-RADS score the model takes for a case, as the study's setting
/// says.
pub(super) enum ModelScore {
    /// The setting names the primary reader, who has not signed a read.
    PrimaryUnsigned,
    /// The setting, and the score (`None`: no signed read could be scored).
    Score(BoneRadsSource, Option<crate::case::bonerads::Score>),
}

/// The study's setting decides which score the model takes; the primary
/// reader is the first reader assigned (not the first read saved).
pub(super) async fn model_score(tx: &mut Tx, case_id: i64) -> Result<ModelScore, CaseError> {
    let source: BoneRadsSource =
        sqlx::query("SELECT bone_rads_source FROM study_settings WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?
            .try_get::<String, _>("bone_rads_source")?
            .parse()?;
    let readers = assigned(tx, case_id).await?;
    let reads = reads_of(tx, case_id, None).await?;
    let signed: Vec<&Read> = readers
        .iter()
        .filter_map(|(_, name)| reads.iter().find(|r| &r.reader == name && r.is_locked()))
        .collect();
    let score = match source {
        BoneRadsSource::PrimaryReader => match signed.first() {
            Some(primary) => primary.score,
            None => return Ok(ModelScore::PrimaryUnsigned),
        },
        BoneRadsSource::Consensus => {
            let (_, table) = rule_table(tx).await?;
            let points: Vec<u8> = signed
                .iter()
                .filter_map(|r| r.score.and_then(|s| s.points))
                .collect();
            consensus_score(&points, &table)
        }
    };
    Ok(ModelScore::Score(source, score))
}

/// Records a failed model run on a case (system principal only), audited.
#[tracing::instrument(skip_all, fields(case_id = %case_id))]
pub async fn record_ai_failure(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    model_id: &str,
    error: &str,
) -> Result<AiFailure, CaseError> {
    let case_id = case_id.get();
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

pub(super) async fn ai_failures(tx: &mut Tx, case_id: i64) -> Result<Vec<AiFailure>, CaseError> {
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

pub(super) async fn fetch_prediction(
    tx: &mut Tx,
    case_id: i64,
) -> Result<Option<Prediction>, CaseError> {
    let Some(r) = sqlx::query("SELECT * FROM predictions WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    // What the database holds is parsed as any input is: a value the types
    // refuse is a decoding error, never a record that looks valid.
    let stored = |e: crate::domain::IdError| {
        crate::write::StoreFailure::Database(sqlx::Error::Decode(Box::new(e))).into()
    };
    let probability = |column: &str| -> Result<Probability, CaseError> {
        Probability::try_from(r.try_get::<f64, _>(column)?).map_err(stored)
    };
    let sha = |column: &str| -> Result<Sha256, CaseError> {
        r.try_get::<String, _>(column)?.parse().map_err(stored)
    };
    Ok(Some(Prediction {
        case_id: CaseId::new(case_id),
        input: PredictionInput {
            probability: probability("probability")?,
            threshold: probability("threshold")?,
            model_id: r.try_get("model_id")?,
            weights_sha256: sha("weights_sha256")?,
            image_sha256: serde_json::from_str(&r.try_get::<String, _>("image_sha256")?)?,
            heatmaps: serde_json::from_str(&r.try_get::<String, _>("heatmaps")?)?,
            bone_rads_source: r.try_get::<String, _>("bone_rads_source")?.parse()?,
            domain: match r.try_get::<Option<i64>, _>("out_of_domain")? {
                None => None,
                Some(outside) => Some(DomainFlag {
                    outside: outside == 1,
                    reasons: serde_json::from_str(
                        &r.try_get::<Option<String>, _>("domain_reasons")?
                            .unwrap_or_else(|| "[]".into()),
                    )?,
                }),
            },
        },
        call: r.try_get::<String, _>("call")?.parse()?,
        created_at: r.try_get("created_at")?,
        record_sha256: sha("record_sha256")?,
    }))
}
