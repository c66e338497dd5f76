//! The trial's pinned model: the PI pins its weights and card with a
//! signature before the first prediction; the demonstration study pins its
//! demo model itself.

use super::settings::*;
use super::StudyError;
use crate::audit::{self, Change, Principal};
use crate::domain::Permission;
use crate::store::{now_utc, Db};
use crate::write::{begin, require, Tx};
use sqlx::Row;

// ------------------------------------------------------------ the model pin

/// The model pinned for the study, if any (the latest pin).
#[tracing::instrument(skip_all)]
pub async fn pinned_model(db: &Db) -> Result<Option<ModelPin>, StudyError> {
    let mut conn = db.pool().acquire().await?;
    Ok(pinned(&mut conn).await?)
}

/// The same, inside a transaction.
#[tracing::instrument(skip_all)]
pub(crate) async fn pinned_model_in(tx: &mut Tx) -> Result<Option<ModelPin>, sqlx::Error> {
    pinned(tx).await
}

async fn pinned(conn: &mut sqlx::AnyConnection) -> Result<Option<ModelPin>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT model_id, weights_sha256, card_sha256, card, pinned_at, printed_name FROM model_pins \
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ModelPin {
        model_id: r.try_get("model_id")?,
        weights_sha256: r.try_get("weights_sha256")?,
        card_sha256: r.try_get("card_sha256")?,
        card: r.try_get("card")?,
        pinned_at: r.try_get("pinned_at")?,
        signed_by: r.try_get("printed_name")?,
    }))
}

/// What is pinned: the model's id, the SHA-256 of its weights and its card
/// as JSON (the card's SHA-256 is taken over that text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRequest {
    pub model_id: String,
    pub weights_sha256: String,
    pub card_json: String,
    /// A demonstration model (never pinned in the trial).
    pub demo: bool,
}

/// Pins the trial's model: the principal investigator, with a signature,
/// before the first prediction. After the first prediction the pin never
/// changes (the service refuses, and the database too).
#[tracing::instrument(skip_all)]
pub async fn pin_model(
    db: &Db,
    by: &Principal,
    request: &PinRequest,
    secret: &crate::accounts::SigningSecret,
) -> Result<ModelPin, StudyError> {
    require(by, Permission::PinModel)?;
    let name = crate::accounts::reauthenticate(db, by, secret)
        .await?
        .display_name;
    insert_pin(db, by, request, Some(&name)).await
}

/// The demonstration study pins its demo model itself (system principal);
/// refused in the trial.
#[tracing::instrument(skip_all)]
pub async fn pin_demo_model(db: &Db, request: &PinRequest) -> Result<ModelPin, StudyError> {
    if crate::screening::study_kind(db.pool()).await? != crate::domain::StudyKind::Demo {
        return Err(StudyError::DemoModelInTrial);
    }
    insert_pin(db, &Principal::system(), request, None).await
}

async fn insert_pin(
    db: &Db,
    by: &Principal,
    request: &PinRequest,
    printed_name: Option<&str>,
) -> Result<ModelPin, StudyError> {
    if !crate::codes::is_sha256(&request.weights_sha256) {
        return Err(StudyError::BadModel);
    }
    if request.model_id.trim().is_empty() || request.model_id.len() > 200 {
        return Err(StudyError::BadModel);
    }
    let mut tx = begin(db, by, "model.pin", "study", 1).await?;
    if request.demo
        && crate::screening::study_kind(&mut *tx).await? != crate::domain::StudyKind::Demo
    {
        return Err(StudyError::DemoModelInTrial);
    }
    if sqlx::query("SELECT 1 FROM predictions LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        drop(tx);
        audit::record(
            db,
            by,
            Change::new("model.pin_refused", "study", 1).field(
                "model",
                None,
                Some(format!("{} {}", request.model_id, request.weights_sha256)),
            ),
        )
        .await?;
        return Err(StudyError::ModelPinFixed);
    }
    let old = pinned_model_in(&mut tx).await?;
    let card_sha256 = crate::store::sha256_hex(request.card_json.as_bytes());
    sqlx::query(
        "INSERT INTO model_pins (model_id, weights_sha256, card_sha256, card, pinned_at, by_user, printed_name, meaning) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&request.model_id)
    .bind(&request.weights_sha256)
    .bind(&card_sha256)
    .bind(&request.card_json)
    .bind(now_utc())
    .bind(by.user_id)
    .bind(printed_name)
    .bind(printed_name.map(|_| "approval"))
    .execute(&mut *tx)
    .await?;
    let describe = |model: &str, weights: &str| format!("{model} weights {weights}");
    audit::append(
        &mut tx,
        by,
        Change::new("model.pin", "study", 1).field(
            "model",
            old.map(|o| describe(&o.model_id, &o.weights_sha256)),
            Some(format!(
                "{}; card {card_sha256}{}",
                describe(&request.model_id, &request.weights_sha256),
                printed_name
                    .map(|n| format!("; signed by {n} ({}), approval", by.name))
                    .unwrap_or_default()
            )),
        ),
    )
    .await?;
    tx.commit().await?;
    db.events().announce(crate::events::Event::ModelPinned);
    pinned_model(db).await?.ok_or_else(|| {
        crate::write::StoreFailure::Refused("the pin was not recorded".into()).into()
    })
}
