//! How the trial's services write, in one place.
//!
//! A write is one transaction that holds the database's single write lock
//! ([`Db::begin_write`]: `BEGIN IMMEDIATE` on SQLite, a row lock on the audit
//! chain's head on PostgreSQL), so every read-modify-write sees the latest
//! committed state, and the change and its audit rows commit together.
//! Clinical writes begin with [`begin`], which refuses — and audits the
//! refusal — while the database is locked; account changes, which go on
//! while the data are locked, begin with [`transaction`]. Who may write is
//! [`require`]d before anything is read.

use crate::audit::{self, Change, Principal};
use crate::domain::Permission;
use crate::store::{now_utc, Db};
use sqlx::Row;
use sqlx::{Any, Transaction};

/// A write transaction.
pub type Tx = Transaction<'static, Any>;

/// Why a write could not begin.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "the database is locked: no change is accepted until the principal investigator unlocks it"
    )]
    Locked,
    #[error("database error")]
    Store(#[from] sqlx::Error),
}

/// What failed below a service's own rules, shared by the case and study
/// errors (`write_path_errors!` converts into it). Only [`Refused`] is the
/// caller's concern (a conflict); the rest are internal faults.
///
/// [`Refused`]: StoreFailure::Refused
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    /// The database refused the statement by one of its rules (a trigger):
    /// the services check first, so this is a race or a path they missed.
    #[error("the database refused the change: {0}")]
    Refused(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored record could not be read")]
    StoredJson(#[source] serde_json::Error),
    /// A password could not be checked: the server is busy, or the
    /// hashing failed.
    #[error(transparent)]
    Password(#[from] crate::accounts::PasswordError),
}

impl StoreFailure {
    /// The database's refusal or failure, told apart by [`is_rule_refusal`].
    pub fn from_database(e: sqlx::Error) -> Self {
        if is_rule_refusal(&e) {
            if let sqlx::Error::Database(d) = &e {
                return StoreFailure::Refused(d.message().to_owned());
            }
        }
        StoreFailure::Database(e)
    }

    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            StoreFailure::Refused(_) => crate::error::ErrorKind::Conflict,
            StoreFailure::Password(crate::accounts::PasswordError::Busy) => {
                crate::error::ErrorKind::Busy
            }
            _ => crate::error::ErrorKind::Internal,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            StoreFailure::Refused(_) => "refused",
            StoreFailure::Password(crate::accounts::PasswordError::Busy) => "busy",
            _ => "internal",
        }
    }
}

/// The role of the one acting does not allow the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("your role does not allow this")]
pub struct Forbidden;

/// The permission check every service makes first.
pub fn require(by: &Principal, permission: Permission) -> Result<(), Forbidden> {
    if by.role.can(permission) {
        Ok(())
    } else {
        Err(Forbidden)
    }
}

/// The account of the one acting (the system and the command line have none).
pub fn actor_id(by: &Principal) -> Result<i64, Forbidden> {
    by.user_id.ok_or(Forbidden)
}

/// Whether the database is locked.
pub async fn is_locked<'e, E>(executor: E) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query("SELECT locked FROM study_lock WHERE id = 1")
        .fetch_one(executor)
        .await?;
    let locked: i64 = sqlx::Row::try_get(&row, "locked")?;
    Ok(locked == 1)
}

/// Begins a clinical write for `action` on `entity` `id`. While the
/// database is locked the attempt is audited (`write.refused_locked`) and
/// refused.
pub async fn begin(
    db: &Db,
    by: &Principal,
    action: &'static str,
    entity: &'static str,
    id: i64,
) -> Result<Tx, WriteError> {
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
        return Err(WriteError::Locked);
    }
    Ok(tx)
}

/// Begins a write that the database lock does not stop (accounts, sign-ins,
/// the audit trail's own anchors).
pub async fn transaction(db: &Db) -> Result<Tx, sqlx::Error> {
    db.begin_write().await
}

/// Audits a refused attempt in a transaction of its own (the attempt's own
/// transaction was dropped with nothing written).
pub async fn audit_refusal(
    db: &Db,
    by: &Principal,
    action: &'static str,
    entity: &'static str,
    id: i64,
    why: String,
) {
    let logged = audit::record(
        db,
        by,
        Change::new(action, entity, id).field("refused", None, Some(why)),
    )
    .await;
    if let Err(e) = logged {
        tracing::error!(error = %e, "could not audit a refusal");
    }
}

/// Whether an error is the database refusing a statement by one of its
/// rules — a trigger (SQLite's `RAISE`, extended code 1811
/// SQLITE_CONSTRAINT_TRIGGER; PostgreSQL's SQLSTATE 23001
/// restrict_violation) — told apart by code, never by message text.
pub fn is_rule_refusal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("1811" | "23001")),
        _ => false,
    }
}

/// Inserts a row (`insert` ends with `RETURNING id`) and appends to the
/// audit trail the `change` made from its id, in the same transaction:
/// the row and its record commit together or not at all. Returns the id.
pub async fn insert_audited<'q>(
    tx: &mut Tx,
    by: &Principal,
    insert: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    change: impl FnOnce(i64) -> Change,
) -> Result<i64, sqlx::Error> {
    let id: i64 = insert.fetch_one(&mut **tx).await?.try_get("id")?;
    audit::append(tx, by, change(id)).await?;
    Ok(id)
}

/// Applies an electronic signature (21 CFR 11.50: printed name, time,
/// meaning) to `entity` `id` version `version`.
pub async fn sign(
    tx: &mut Tx,
    by: &Principal,
    printed_name: &str,
    entity: &'static str,
    id: i64,
    version: i64,
    meaning: crate::case::SignatureMeaning,
) -> Result<i64, sqlx::Error> {
    // The system and the command line have no account: the column's NOT
    // NULL refuses them (a signature is a person's).
    let sig: i64 = sqlx::query(
        "INSERT INTO signatures (entity, entity_id, entity_version, meaning, user_id, printed_name, signed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(entity)
    .bind(id)
    .bind(version)
    .bind(meaning.as_str())
    .bind(by.user_id)
    .bind(printed_name)
    .bind(now_utc())
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    let what = format!("{printed_name} ({}) {meaning} v{version}", by.name);
    audit_signature(tx, by, entity, id, what, None).await?;
    Ok(sig)
}

/// The audit row of an electronic signature (`signature.apply`), written in
/// the signature's transaction: every kind of signature — on a case's
/// record, the analysis plan, an unlock — is audited the same way.
pub(crate) async fn audit_signature(
    tx: &mut Tx,
    by: &Principal,
    entity: &'static str,
    id: i64,
    what: String,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    audit::append(
        tx,
        by,
        Change::new("signature.apply", entity, id)
            .field("signature", None, Some(what))
            .reason(reason),
    )
    .await
    .map(drop)
}

/// The conversions a service error of the write path shares, for an error
/// type with the variants `Failed(StoreFailure)`, `DatabaseLocked`,
/// `Forbidden` and `BadPassword`: a rule the database refused (told by its
/// code, see [`is_rule_refusal`]) keeps the database's message; the
/// database lock, a missing permission and a failed re-authentication map
/// to their variants.
macro_rules! write_path_errors {
    ($error:ident) => {
        impl From<sqlx::Error> for $error {
            fn from(e: sqlx::Error) -> Self {
                $crate::write::StoreFailure::from_database(e).into()
            }
        }

        impl From<serde_json::Error> for $error {
            fn from(e: serde_json::Error) -> Self {
                $crate::write::StoreFailure::StoredJson(e).into()
            }
        }

        impl From<$crate::write::WriteError> for $error {
            fn from(e: $crate::write::WriteError) -> Self {
                match e {
                    $crate::write::WriteError::Locked => $error::DatabaseLocked,
                    $crate::write::WriteError::Store(e) => e.into(),
                }
            }
        }

        impl From<$crate::write::Forbidden> for $error {
            fn from(_: $crate::write::Forbidden) -> Self {
                $error::Forbidden
            }
        }

        impl From<$crate::accounts::LoginError> for $error {
            fn from(e: $crate::accounts::LoginError) -> Self {
                use $crate::accounts::LoginError as L;
                match e {
                    L::Store(s) => $crate::write::StoreFailure::Database(s).into(),
                    L::Password(e) => $crate::write::StoreFailure::Password(e).into(),
                    L::Invalid | L::Locked { .. } | L::Deactivated => $error::BadPassword,
                    L::SecondFactorNeeded => $error::SecondFactorNeeded,
                    L::SecondFactorNotEnrolled => $error::SecondFactorNotEnrolled,
                }
            }
        }
    };
}
pub(crate) use write_path_errors;
