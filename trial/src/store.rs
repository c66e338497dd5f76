//! The database: one connection pool over SQLite (the embedded default) or
//! PostgreSQL (multi-site production), chosen by the URL.
//!
//! Queries go through sqlx's `Any` driver with runtime-checked SQL written in
//! the dialect both engines share (`$1` placeholders, `RETURNING`, `TEXT`
//! timestamps in RFC 3339 UTC). What differs — column types, the triggers that
//! keep the audit trail append-only — lives in one migration folder per engine.
//! The whole test suite runs against both engines.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Which engine a URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("applying migrations failed: {0} (on PostgreSQL the owner role applies them: osteo-edc migrate --database-url OWNER_URL --grant-to SERVER_ROLE)")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("`{0}` cannot be granted the server's rights: a PostgreSQL role name of lower-case letters, digits and _ (PostgreSQL only)")]
    Role(String),
}

/// The pool and the engine behind it, and the key that signs the audit
/// chain's head (kept outside the database; see [`crate::audit::anchor`]).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// The pool writes go through: on SQLite one connection of its own, on
    /// PostgreSQL the pool itself ([`Db::writer`]).
    writer: AnyPool,
    engine: Engine,
    anchor_key: Option<std::sync::Arc<crate::audit::key::AnchorKey>>,
    events: crate::events::Events,
}

/// The pool's settings: `max` connections, each set up for `engine`.
fn pool_options(engine: Engine, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                let setup: &[&str] = match engine {
                    // No request waits for ever: a lock held too long is an
                    // error with the statement named in the log, not a hang.
                    Engine::Postgres => {
                        &["SET lock_timeout = '15s'", "SET statement_timeout = '60s'"]
                    }
                    // WAL lets readers run beside the one writer; foreign
                    // keys are off by default in SQLite; wait rather than
                    // fail when another writer (another process) holds the
                    // lock.
                    Engine::Sqlite => &[
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA synchronous = FULL",
                    ],
                };
                for sql in setup {
                    sqlx::query(sql).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite://…` creates the file when missing).
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match engine {
            Engine::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let max = match engine {
            Engine::Sqlite => 8,
            Engine::Postgres => 16,
        };
        let pool = pool_options(engine, max)
            .connect_with(options.clone())
            .await?;
        // SQLite: every write goes through one connection, so writers queue
        // in order in the pool (a fair queue) instead of meeting SQLite's
        // busy lock, whose handler sleeps and retries with growing pauses
        // (up to 100 ms a time): under 32 concurrent writers, that polling
        // put CRF saves' p99 at 270 ms and its worst at a second
        // (docs/build.md, "Load").
        let writer = match engine {
            Engine::Sqlite => pool_options(engine, 1).connect_with(options).await?,
            Engine::Postgres => pool.clone(),
        };
        Ok(Db {
            pool,
            writer,
            engine,
            anchor_key: None,
            events: crate::events::Events::default(),
        })
    }

    /// The same database, signing anchors of the audit chain with `key` at
    /// every lock, every export and on request.
    pub fn with_anchor_key(mut self, key: crate::audit::key::AnchorKey) -> Db {
        self.anchor_key = Some(std::sync::Arc::new(key));
        self
    }

    pub fn anchor_key(&self) -> Option<&crate::audit::key::AnchorKey> {
        self.anchor_key.as_deref()
    }

    /// What the services announce after a commit (see [`crate::events`]).
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// Applies the migrations of this engine that have not run yet.
    ///
    /// A database whose migrations have all run is left alone (nothing is
    /// written), so that the server can connect as a role that may not
    /// change the schema: on PostgreSQL the migrations are applied by the
    /// owner role (`osteo-edc migrate`), and the server's role owns no table
    /// and so cannot disable a trigger (docs/decisions.md, "Two database
    /// roles").
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        if self.pending_migrations().await? > 0 {
            migrator.run(&self.pool).await?;
        }
        Ok(())
    }

    /// How many of this engine's migrations have not run yet.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        // No table yet: nothing has run.
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| sqlx::Row::try_get(r, "version"))
                    .collect::<Result<_, _>>()?,
                Err(_) => Vec::new(),
            };
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .count())
    }

    /// PostgreSQL: lets `role` (the server's login, which owns no table) read
    /// and write the trial's tables — SELECT, INSERT and UPDATE everywhere,
    /// DELETE only on the sessions, nothing on the schema — so that the
    /// triggers, which only the owner can disable or drop, hold against it.
    pub async fn grant_to(&self, role: &str) -> Result<(), StoreError> {
        let valid = (1..=63).contains(&role.len())
            && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || self.engine != Engine::Postgres {
            return Err(StoreError::Role(role.to_owned()));
        }
        for sql in [
            format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
            format!("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO \"{role}\""),
            format!("REVOKE INSERT, UPDATE ON _sqlx_migrations FROM \"{role}\""),
            format!("GRANT DELETE ON sessions TO \"{role}\""),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
        ] {
            sqlx::query(&sql).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// PostgreSQL: the tables the connected role owns (it could disable their
    /// triggers). Empty for the server's role as it should be, and on SQLite.
    pub async fn owned_tables(&self) -> Result<Vec<String>, sqlx::Error> {
        if self.engine != Engine::Postgres {
            return Ok(Vec::new());
        }
        sqlx::query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user ORDER BY tablename",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| sqlx::Row::try_get(r, "tablename"))
        .collect()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool a statement that writes outside [`Db::begin_write`] runs on
    /// (a session's expiry, a token's last use). On SQLite this is the one
    /// writing connection, so that such a write waits its turn in line
    /// rather than in SQLite's busy handler; on PostgreSQL, the pool.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Begins a transaction that will write, holding the one write lock of
    /// the trial database until it ends: on SQLite `BEGIN IMMEDIATE` on the
    /// writing connection ([`Db::writer`]), on PostgreSQL a row lock on the
    /// audit chain's head. Write transactions
    /// therefore run one after another on both engines, so that every
    /// read-modify-write (a failed-login count, the next study number, an
    /// old value for the audit trail) sees the latest committed state.
    /// Reads never wait. An EDC writes a few rows a second at most; the
    /// simplicity is worth far more than parallel writes.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Removes a password from a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The current time in the one format every timestamp is stored in:
/// RFC 3339, UTC, microseconds, `Z` — fixed width, so text order is time order.
pub fn now_utc() -> String {
    format_utc(chrono::Utc::now())
}

pub fn format_utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn parse_utc(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits: how every hash of the
/// system (audit rows, tokens, images, predictions, locked data) is written.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.message().contains("UNIQUE constraint failed")
                || db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(
            redact_url("postgres://osteo:s3cret@db.example/osteo"),
            "postgres://osteo:***@db.example/osteo"
        );
        assert_eq!(
            redact_url("sqlite://data/osteo.db"),
            "sqlite://data/osteo.db"
        );
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a =
            format_utc(chrono::DateTime::from_timestamp(1_700_000_000, 5_000).unwrap_or_default());
        let b = format_utc(chrono::DateTime::from_timestamp(1_700_000_001, 0).unwrap_or_default());
        assert_eq!(a.len(), b.len());
        assert!(a < b);
        assert_eq!(parse_utc(&a).map(format_utc), Some(a));
    }
}
