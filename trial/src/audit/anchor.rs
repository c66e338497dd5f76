//! Signed anchors of the audit chain (DESIGN.md invariant 13; 21 CFR Part 11
//! §11.10(c) and (e)).
//!
//! A hash chain kept in the same database cannot stop someone with write
//! access who rewrites every row and recomputes every hash. An anchor is the
//! chain's head — sequence number and hash — signed with an Ed25519 key kept
//! outside the database (a key file in the data directory, or the
//! `OSTEO_AUDIT_KEY` environment variable). The server signs one at every
//! lock, every export download and at least hourly while writes happen, in
//! the same transaction as the rows it covers. `audit verify` checks each
//! anchor's signature against the configured public key and the chain's hash
//! at the anchored row: a rewritten chain no longer matches the heads signed
//! before, and without the key nobody can sign new ones. `audit anchor`
//! prints a signed head to be filed outside the system (the trial master
//! file, an e-mail to the sponsor); `audit verify --anchor FILE` checks one.

pub use super::key::{AnchorKey, AnchorKeyError, PublicKey};
use crate::store::{now_utc, Db};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

/// A signed head of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The last row the anchor covers.
    pub seq: i64,
    /// That row's hash.
    pub head_hash: String,
    pub signed_at: String,
    /// Why it was signed: `lock`, `export`, `hourly`, `on request`.
    pub reason: String,
    /// The lock event it was signed at, for a lock.
    pub lock_event_id: Option<i64>,
    /// Hex of the Ed25519 public key and of the signature over [`Anchor::message`].
    pub public_key: String,
    pub signature: String,
}

impl Anchor {
    /// The text that is signed.
    pub fn message(&self) -> String {
        format!(
            "osteo-edc audit anchor\nseq={}\nhead={}\nsigned_at={}\nreason={}\n",
            self.seq, self.head_hash, self.signed_at, self.reason
        )
    }

    /// Whether the signature is good and made by `key`.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let Ok(bytes) = hex::decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return false;
        };
        self.public_key == key.to_hex() && key.verifies(self.message().as_bytes(), &signature)
    }
}

/// Signs the chain's head as it stands in the caller's transaction (after
/// the rows it must cover) and records the anchor there.
#[tracing::instrument(skip_all)]
pub async fn anchor_in(
    tx: &mut Transaction<'_, Any>,
    key: &AnchorKey,
    reason: &str,
    lock_event_id: Option<i64>,
) -> Result<Anchor, sqlx::Error> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?;
    let mut anchor = Anchor {
        seq: head.try_get("seq")?,
        head_hash: head.try_get("hash")?,
        signed_at: now_utc(),
        reason: reason.to_owned(),
        lock_event_id,
        public_key: key.public_hex(),
        signature: String::new(),
    };
    anchor.signature = hex::encode(key.sign(anchor.message().as_bytes()).to_bytes());
    sqlx::query(
        "INSERT INTO audit_anchors (seq, head_hash, signed_at, reason, lock_event_id, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(anchor.seq)
    .bind(&anchor.head_hash)
    .bind(&anchor.signed_at)
    .bind(&anchor.reason)
    .bind(anchor.lock_event_id)
    .bind(&anchor.public_key)
    .bind(&anchor.signature)
    .execute(&mut **tx)
    .await?;
    Ok(anchor)
}

/// Signs the head in a transaction of its own with the database's key
/// (`None` when the database has none).
#[tracing::instrument(skip_all)]
pub async fn anchor(db: &Db, reason: &str) -> Result<Option<Anchor>, sqlx::Error> {
    let Some(key) = db.anchor_key() else {
        return Ok(None);
    };
    let mut tx = db.begin_write().await?;
    let anchor = anchor_in(&mut tx, key, reason, None).await?;
    tx.commit().await?;
    Ok(Some(anchor))
}

/// Signs the head if rows were appended since the last anchor and that
/// anchor is older than `max_age` (the hourly anchor).
#[tracing::instrument(skip_all)]
pub async fn anchor_if_due(
    db: &Db,
    max_age: chrono::Duration,
) -> Result<Option<Anchor>, sqlx::Error> {
    let last = anchors(db).await?.pop();
    let head: i64 = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await?
        .try_get("seq")?;
    let due = match &last {
        None => head > 0,
        Some(a) => {
            let old = crate::store::parse_utc(&a.signed_at)
                .is_none_or(|t| chrono::Utc::now() - t >= max_age);
            a.seq < head && old
        }
    };
    if due {
        anchor(db, "hourly").await
    } else {
        Ok(None)
    }
}

/// Every anchor, oldest first.
#[tracing::instrument(skip_all)]
pub async fn anchors(db: &Db) -> Result<Vec<Anchor>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, head_hash, signed_at, reason, lock_event_id, public_key, signature FROM audit_anchors ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Anchor {
                seq: r.try_get("seq")?,
                head_hash: r.try_get("head_hash")?,
                signed_at: r.try_get("signed_at")?,
                reason: r.try_get("reason")?,
                lock_event_id: r.try_get("lock_event_id")?,
                public_key: r.try_get("public_key")?,
                signature: r.try_get("signature")?,
            })
        })
        .collect()
}

/// The anchor signed at a lock event.
#[tracing::instrument(skip_all)]
pub async fn anchor_of_lock(db: &Db, lock_event_id: i64) -> Result<Option<Anchor>, sqlx::Error> {
    Ok(anchors(db)
        .await?
        .into_iter()
        .find(|a| a.lock_event_id == Some(lock_event_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_verifies_only_with_its_key_and_its_content() {
        let key = AnchorKey::generate();
        let mut a = Anchor {
            seq: 7,
            head_hash: "ab".repeat(32),
            signed_at: "2026-12-04T10:00:00.000000Z".into(),
            reason: "lock".into(),
            lock_event_id: Some(1),
            public_key: key.public_hex(),
            signature: String::new(),
        };
        a.signature = hex::encode(key.sign(a.message().as_bytes()).to_bytes());
        assert!(a.signed_by(&key.public()));
        let other = AnchorKey::generate();
        assert!(!a.signed_by(&other.public()), "another key");
        let mut forged = a.clone();
        forged.head_hash = "cd".repeat(32);
        assert!(!forged.signed_by(&key.public()), "another head");
        let again = AnchorKey::from_seed_hex(&key.seed_hex()).unwrap();
        assert_eq!(again.public_hex(), key.public_hex());
        assert!(AnchorKey::from_seed_hex("not hex").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("audit-signing.key");
        let first = AnchorKey::load_or_create(&path).unwrap();
        let second = AnchorKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_hex(), second.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
    }
}
