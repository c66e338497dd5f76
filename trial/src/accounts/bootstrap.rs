//! A brand-new database: the study record, its first site and, for the
//! demonstration study, one account per role.

use super::admin::{create_user, NewUser};
use super::error::AccountError;
use super::user::{OneTimePassword, User};
use crate::audit::{self, Change, Principal};
use crate::domain::{DisplayName, Role, SiteCode, Username};
use crate::store::{now_utc, Db};
use sqlx::Row;

/// Creates the study record and its first site on a brand-new database.
/// Returns whether the database was new.
#[tracing::instrument(skip_all)]
pub async fn ensure_study(db: &Db, kind: crate::domain::StudyKind) -> Result<bool, sqlx::Error> {
    let mut tx = crate::write::transaction(db).await?;
    let exists = sqlx::query("SELECT id FROM study WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    let now = now_utc();
    let (title_en, title_zh) = kind.titles();
    sqlx::query("INSERT INTO study (id, registration, title_en, title_zh, created_at, kind) VALUES (1, $1, $2, $3, $4, $5)")
        .bind(kind.registration())
        .bind(title_en)
        .bind(title_zh)
        .bind(&now)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await?;
    let site: i64 =
        sqlx::query("INSERT INTO sites (code, name, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind("QDUAH")
            .bind("The Affiliated Hospital of Qingdao University")
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
    let system = Principal::system();
    audit::append(
        &mut tx,
        &system,
        Change::new("study.create", "study", 1).field(
            "registration",
            None,
            Some(format!("{} ({} study)", kind.registration(), kind.as_str())),
        ),
    )
    .await?;
    audit::append(
        &mut tx,
        &system,
        Change::new("site.create", "site", site).field("code", None, Some("QDUAH".into())),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One demonstration account per role, each with a one-time password.
#[tracing::instrument(skip_all)]
pub async fn create_demo_accounts(db: &Db) -> Result<Vec<(User, OneTimePassword)>, AccountError> {
    let site = SiteCode::parse("QDUAH")?;
    let mut created = Vec::new();
    for (username, name, role) in [
        ("admin", "Study Administrator", Role::Admin),
        (
            "investigator",
            "Principal Investigator",
            Role::PrincipalInvestigator,
        ),
        ("coordinator", "Study Coordinator", Role::Coordinator),
        ("radiologist", "Reading Radiologist", Role::Radiologist),
        ("statistician", "Trial Statistician", Role::Statistician),
        ("monitor", "Clinical Monitor", Role::Monitor),
    ] {
        created.push(
            create_user(
                db,
                &Principal::system(),
                NewUser {
                    username: Username::parse(username)?,
                    display_name: DisplayName::parse(name)?,
                    role,
                    site: site.clone(),
                },
            )
            .await?,
        );
    }
    Ok(created)
}
