//! Server-side sessions in the trial database (table `sessions`), so that
//! they survive a restart and are shared by every server of a PostgreSQL
//! installation. The browser holds only a random id.

use async_trait::async_trait;
use osteo_trial::store::Db;
use sqlx::Row;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        DbSessionStore { db }
    }

    /// Deletes expired sessions; run periodically.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let now = unix_millis(time::OffsetDateTime::now_utc());
        let done = sqlx::query("DELETE FROM sessions WHERE expiry_date < $1")
            .bind(now)
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Writes `record` with `sql` (its id, data and expiry as `$1`–`$3`);
    /// returns the rows written.
    async fn write(&self, record: &Record, sql: &str) -> session_store::Result<u64> {
        let data = serde_json::to_string(&record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let done = sqlx::query(sql)
            .bind(record.id.to_string())
            .bind(data)
            .bind(unix_millis(record.expiry_date))
            .execute(self.db.writer())
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

/// Expiry is stored in milliseconds since 1970: whole seconds would cut up
/// to a second off a short idle timeout.
fn unix_millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id until it does not collide (a 128-bit random id almost never does).
        loop {
            let inserted = self
                .write(
                    record,
                    "INSERT INTO sessions (id, data, expiry_date) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a session that exists; never creates one. A request that
    /// loaded the session before a sign-out (or an expiry) deleted it ends
    /// by saving it, because every request renews the idle timer: writing
    /// it back then would sign the user in again. New sessions come only
    /// from [`SessionStore::create`] (sign-in cycles the id).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let updated = self
            .write(
                record,
                "UPDATE sessions SET data = $2, expiry_date = $3 WHERE id = $1",
            )
            .await?;
        if updated == 0 {
            tracing::debug!("a session ended while a request of it was in flight; not saved");
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = unix_millis(time::OffsetDateTime::now_utc());
        let row = sqlx::query("SELECT data FROM sessions WHERE id = $1 AND expiry_date > $2")
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(self.db.pool())
            .await
            .map_err(backend)?;
        row.map(|r| {
            let data: String = r.try_get("data").map_err(backend)?;
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db.writer())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
