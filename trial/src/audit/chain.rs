//! The server side of the audit trail: append, verify, query.

use super::record::*;
use crate::store::{now_utc, Db};
use sqlx::{Any, Row, Transaction};

impl AuditRow {
    /// The hash this row must carry, computed from its content.
    pub fn expected_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.seq,
            self.at,
            self.actor_id,
            self.actor,
            self.source,
            self.action,
            self.entity,
            self.entity_id,
            self.field,
            self.old_value,
            self.new_value,
            self.reason,
            self.prev_hash,
        ]);
        crate::store::sha256_hex(canonical.to_string().as_bytes())
    }
}

/// Appends one row in the caller's transaction and returns its sequence number.
#[tracing::instrument(skip_all)]
pub async fn append(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    change: Change,
) -> Result<i64, sqlx::Error> {
    append_all(tx, by, vec![change]).await
}

/// Rows in one `INSERT` of [`append_all`] (14 values each: under SQLite's
/// oldest limit of 999 bound values).
const ROWS_PER_INSERT: usize = 64;

/// Appends rows, in order, in the caller's transaction and returns the
/// sequence number of the last (the head's, when `changes` is empty).
/// The chain is the same as from one [`append`] after another; the
/// statements are three however many rows there are (a CRF save that
/// changes five fields writes five rows), which is what keeps the one
/// writer quick under load (docs/build.md, "Load").
#[tracing::instrument(skip_all)]
pub async fn append_all(
    tx: &mut Transaction<'_, Any>,
    by: &Principal,
    changes: Vec<Change>,
) -> Result<i64, sqlx::Error> {
    let n = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    // Locks the head row until commit: appends queue here.
    let head =
        sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash, at")
            .bind(n)
            .fetch_one(&mut **tx)
            .await?;
    let last: i64 = head.try_get("seq")?;
    let mut prev_hash: String = head.try_get("hash")?;
    let mut prev_at: String = head.try_get("at")?;
    if changes.is_empty() {
        return Ok(last);
    }
    // Time never runs backwards along the chain, even if the clock is set
    // back: the row then carries the previous row's time (fixed-width text,
    // so text order is time order).
    let now = now_utc();
    let mut rows = Vec::with_capacity(changes.len());
    for (i, change) in changes.into_iter().enumerate() {
        let at = if now < prev_at {
            prev_at.clone()
        } else {
            now.clone()
        };
        let mut row = AuditRow {
            seq: last - n + 1 + i as i64,
            at,
            actor_id: by.user_id,
            actor: by.name.clone(),
            source: by.source.as_str().to_owned(),
            action: change.action.to_owned(),
            entity: change.entity.to_owned(),
            entity_id: change.entity_id,
            field: change.field.map(str::to_owned),
            old_value: change.old_value,
            new_value: change.new_value,
            reason: change.reason,
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.expected_hash();
        prev_hash = row.hash.clone();
        prev_at = row.at.clone();
        rows.push(row);
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|r| {
                let p = (1..=14)
                    .map(|c| format!("${}", r * 14 + c))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({p})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor_id, actor, source, action, entity, entity_id, field, \
             old_value, new_value, reason, prev_hash, hash) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = q
                .bind(row.seq)
                .bind(&row.at)
                .bind(row.actor_id)
                .bind(&row.actor)
                .bind(&row.source)
                .bind(&row.action)
                .bind(&row.entity)
                .bind(&row.entity_id)
                .bind(&row.field)
                .bind(&row.old_value)
                .bind(&row.new_value)
                .bind(&row.reason)
                .bind(&row.prev_hash)
                .bind(&row.hash);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1, at = $2 WHERE id = 1")
        .bind(&prev_hash)
        .bind(&prev_at)
        .execute(&mut **tx)
        .await?;
    Ok(last)
}

/// Appends one row in a transaction of its own (for events that change
/// nothing else, such as a logout).
#[tracing::instrument(skip_all)]
pub async fn record(db: &Db, by: &Principal, change: Change) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let seq = append(&mut tx, by, change).await?;
    tx.commit().await?;
    Ok(seq)
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the audit trail is broken: {0}")]
    Broken(ChainBreak),
    #[error("reading the audit trail failed: {0}")]
    Store(#[from] sqlx::Error),
}

/// The hash of row `seq` (`GENESIS_HASH` for 0), if the chain has it.
#[tracing::instrument(skip_all)]
pub async fn row_hash(db: &Db, seq: i64) -> Result<Option<String>, sqlx::Error> {
    if seq == 0 {
        return Ok(Some(GENESIS_HASH.to_owned()));
    }
    sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get("hash"))
        .transpose()
}

/// The actions the server signs an anchor with, in the same transaction:
/// each must be covered by a later anchor.
pub const ANCHORED_ACTIONS: [&str; 3] = ["database.lock", "database.unlock", "export.download"];

/// Walks the whole chain in sequence order, in pages, and checks every link;
/// then, with the audit key's public half, every signed anchor: its
/// signature, and that the chain still has the anchored hash at the
/// anchored row. Without a key the anchors' hashes are still compared, but
/// an anchor proves nothing (anyone could have written it).
#[tracing::instrument(skip_all)]
pub async fn verify(
    db: &Db,
    key: Option<&super::anchor::PublicKey>,
) -> Result<ChainSummary, VerifyError> {
    const PAGE: i64 = 5_000;
    let anchors = super::anchor::anchors(db).await?;
    if let Some(key) = key {
        if let Some(a) = anchors.iter().find(|a| !a.signed_by(key)) {
            return Err(VerifyError::Broken(ChainBreak::AnchorForged {
                seq: a.seq,
                signed_at: a.signed_at.clone(),
            }));
        }
    }
    let mut by_seq: std::collections::BTreeMap<i64, Vec<&super::anchor::Anchor>> =
        std::collections::BTreeMap::new();
    for a in &anchors {
        by_seq.entry(a.seq).or_default().push(a);
    }
    let check_anchors = |seq: i64, hash: &str| -> Result<(), VerifyError> {
        match by_seq
            .get(&seq)
            .and_then(|list| list.iter().find(|a| a.head_hash != hash))
        {
            Some(a) => Err(VerifyError::Broken(ChainBreak::AnchorMismatch {
                seq,
                signed_at: a.signed_at.clone(),
            })),
            None => Ok(()),
        }
    };
    check_anchors(0, GENESIS_HASH)?;
    let mut last_anchored_action: Option<(i64, String)> = None;
    let mut first_at: Option<String> = None;
    let mut previous_seq = 0_i64;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let mut previous_at = String::new();
    loop {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, at, actor_id, actor, source, action, entity, entity_id, field, old_value, \
             new_value, reason, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(previous_seq)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.seq != previous_seq + 1 {
                return Err(VerifyError::Broken(ChainBreak::Gap {
                    previous: previous_seq,
                    expected: previous_seq + 1,
                    found: row.seq,
                }));
            }
            if row.prev_hash != previous_hash {
                return Err(VerifyError::Broken(ChainBreak::BrokenLink { seq: row.seq }));
            }
            if row.expected_hash() != row.hash {
                return Err(VerifyError::Broken(ChainBreak::Tampered { seq: row.seq }));
            }
            if row.at < previous_at {
                return Err(VerifyError::Broken(ChainBreak::TimeOrder { seq: row.seq }));
            }
            check_anchors(row.seq, &row.hash)?;
            if ANCHORED_ACTIONS.contains(&row.action.as_str()) {
                last_anchored_action = Some((row.seq, row.action.clone()));
            }
            if first_at.is_none() {
                first_at = Some(row.at.clone());
            }
            previous_seq = row.seq;
            previous_hash = row.hash;
            previous_at = row.at;
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    if head_seq != previous_seq {
        return Err(VerifyError::Broken(ChainBreak::Truncated {
            last_row: previous_seq,
            head_seq,
        }));
    }
    if head_hash != previous_hash {
        return Err(VerifyError::Broken(ChainBreak::HeadMismatch {
            seq: previous_seq,
        }));
    }
    let last_anchored_seq = anchors.iter().map(|a| a.seq).max();
    if let Some(a) = anchors.iter().find(|a| a.seq > previous_seq) {
        // An anchor beyond the end: rows were cut from the chain.
        return Err(VerifyError::Broken(ChainBreak::AnchorMismatch {
            seq: a.seq,
            signed_at: a.signed_at.clone(),
        }));
    }
    if key.is_some() {
        if let Some((seq, action)) = last_anchored_action {
            if last_anchored_seq.is_none_or(|a| a < seq) {
                return Err(VerifyError::Broken(ChainBreak::Unanchored { seq, action }));
            }
        }
        let stale = first_at
            .as_deref()
            .and_then(crate::store::parse_utc)
            .is_some_and(|t| chrono::Utc::now() - t > chrono::Duration::hours(2));
        if anchors.is_empty() && stale {
            return Err(VerifyError::Broken(ChainBreak::NoAnchor { seq: 1 }));
        }
    }
    Ok(ChainSummary {
        rows: previous_seq,
        head_hash,
        anchors_checked: if key.is_some() {
            anchors.len() as i64
        } else {
            0
        },
        last_anchored_seq,
    })
}

fn parse_day(s: &str) -> Result<chrono::NaiveDate, FilterError> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| FilterError::BadDate(s.to_owned()))
}

impl AuditFilter {
    /// Drops empty strings (as sent by a blank form field) and checks dates.
    pub fn normalised(mut self) -> Result<AuditFilter, FilterError> {
        for f in [
            &mut self.actor,
            &mut self.entity,
            &mut self.entity_id,
            &mut self.from,
            &mut self.to,
        ] {
            if f.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *f = None;
            }
            if let Some(s) = f.as_mut() {
                *s = s.trim().to_owned();
            }
        }
        let from = self.from.as_deref().map(parse_day).transpose()?;
        let to = self.to.as_deref().map(parse_day).transpose()?;
        if let (Some(a), Some(b)) = (from, to) {
            if a > b {
                return Err(FilterError::EmptyRange);
            }
        }
        Ok(self)
    }
}

/// Reads a page of the audit trail, newest first. Keyset paging on `seq` and
/// the indexes on (actor, seq), (entity, seq) and (at, seq) keep every page
/// fast however long the trail grows (`osteo-edc audit bench` measures it).
#[tracing::instrument(skip_all)]
pub async fn query(db: &Db, filter: &AuditFilter, limit: i64) -> Result<AuditPage, QueryError> {
    let filter = filter.clone().normalised()?;
    let limit = limit.clamp(1, 500);
    let mut sql = String::from(
        "SELECT seq, at, actor_id, actor, source, action, entity, entity_id, field, old_value, \
         new_value, reason, prev_hash, hash FROM audit_log WHERE 1 = 1",
    );
    let mut binds: Vec<BindValue> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, value: BindValue| {
        binds.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(a) = &filter.actor {
        push(&mut sql, " AND actor = ?", BindValue::Text(a.clone()));
    }
    if let Some(e) = &filter.entity {
        push(&mut sql, " AND entity = ?", BindValue::Text(e.clone()));
    }
    if let Some(e) = &filter.entity_id {
        push(&mut sql, " AND entity_id = ?", BindValue::Text(e.clone()));
    }
    // `at` never decreases along the chain (see `append`), so a range of days
    // is exactly a range of sequence numbers, found through the index on
    // `at`; the page then reads by primary key however many rows match.
    if let Some(from) = &filter.from {
        let first =
            sqlx::query("SELECT seq FROM audit_log WHERE at >= $1 ORDER BY at, seq LIMIT 1")
                .bind(format!("{from}T00:00:00"))
                .fetch_optional(db.pool())
                .await?;
        let first: i64 = match first {
            Some(r) => r.try_get("seq")?,
            None => i64::MAX,
        };
        push(&mut sql, " AND seq >= ?", BindValue::Int(first));
    }
    if let Some(to) = &filter.to {
        let next = parse_day(to)?
            .succ_opt()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "9999-12-31".into());
        let last = sqlx::query(
            "SELECT seq FROM audit_log WHERE at < $1 ORDER BY at DESC, seq DESC LIMIT 1",
        )
        .bind(format!("{next}T00:00:00"))
        .fetch_optional(db.pool())
        .await?;
        let last: i64 = match last {
            Some(r) => r.try_get("seq")?,
            None => 0,
        };
        push(&mut sql, " AND seq <= ?", BindValue::Int(last));
    }
    if let Some(before) = filter.before_seq {
        push(&mut sql, " AND seq < ?", BindValue::Int(before));
    }
    push(
        &mut sql,
        " ORDER BY seq DESC LIMIT ?",
        BindValue::Int(limit + 1),
    );
    let mut q = sqlx::query_as::<_, AuditRow>(&sql);
    for b in binds {
        q = match b {
            BindValue::Text(s) => q.bind(s),
            BindValue::Int(i) => q.bind(i),
        };
    }
    let mut rows = q.fetch_all(db.pool()).await?;
    let next_before_seq = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(AuditPage {
        rows,
        next_before_seq,
    })
}

enum BindValue {
    Text(String),
    Int(i64),
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("reading the audit trail failed: {0}")]
    Store(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AuditRow {
        AuditRow {
            seq: 1,
            at: "2026-11-26T10:00:00.000000Z".into(),
            actor_id: Some(1),
            actor: "admin".into(),
            source: "ui".into(),
            action: "user.create".into(),
            entity: "user".into(),
            entity_id: Some("2".into()),
            field: None,
            old_value: None,
            new_value: Some("coordinator".into()),
            reason: None,
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_hash_covers_every_field() {
        let base = row().expected_hash();
        assert_eq!(base.len(), 64);
        let mut changed = row();
        changed.new_value = Some("admin".into());
        assert_ne!(changed.expected_hash(), base);
        let mut changed = row();
        changed.prev_hash = "1".repeat(64);
        assert_ne!(changed.expected_hash(), base);
        let mut changed = row();
        changed.field = Some(String::new());
        assert_ne!(changed.expected_hash(), base, "None and empty must differ");
        assert_eq!(row().expected_hash(), base, "the hash is deterministic");
    }

    #[test]
    fn filters_check_dates() {
        let f = AuditFilter {
            from: Some("2026-13-01".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            f.normalised(),
            Err(FilterError::BadDate("2026-13-01".into()))
        );
        let f = AuditFilter {
            from: Some("2026-11-02".into()),
            to: Some("2026-11-01".into()),
            ..AuditFilter::default()
        };
        assert_eq!(f.normalised(), Err(FilterError::EmptyRange));
        let f = AuditFilter {
            actor: Some("  ".into()),
            ..AuditFilter::default()
        };
        assert_eq!(f.normalised().map(|f| f.actor), Ok(None));
    }
}
