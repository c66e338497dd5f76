//! Online backups that restore (`osteo-edc backup`, `backup verify`,
//! `restore`).
//!
//! A backup is a folder:
//! - `database.sqlite` — SQLite's `VACUUM INTO`, a consistent copy taken
//!   while the server writes (a read transaction under WAL); or
//!   `database.pgdump` — `pg_dump --format=custom` of PostgreSQL, run on a
//!   snapshot exported from the transaction that also listed the objects;
//! - `objects/ab/<sha256>.dcm` — every stored radiograph the copy refers
//!   to, read from the object store and checked against its name. Objects
//!   are written before the rows that name them, so every object the copy
//!   names exists;
//! - `audit-signing.key` — the audit chain's signing key when it is a file
//!   (a secret: keep backups where the database itself may be kept);
//! - `models/…` — the installed models (weights and cards);
//! - `quarantine/<sha256>.dcm` — received DICOM images that matched no
//!   case, waiting for a coordinator (they still carry the patient's
//!   identifiers: one more reason to keep backups where the data may be);
//! - `manifest.json` — the SHA-256 and size of every file, the counts of
//!   screenings, cases, images and audit rows, and the audit chain's head.
//!
//! `backup verify` re-hashes every file, refuses files the manifest does not
//! name, checks that every image the database names is present, and walks
//! the audit chain of (a copy of) the database with its signed anchors.
//! `restore` verifies first, then fills an empty data directory or an
//! empty PostgreSQL database and object store, and verifies the result.

use crate::config::{AuditKeySource, Settings};
use crate::imaging::storage::ObjectStore;
use anyhow::{bail, Context};
use osteo_trial::audit::anchor::PublicKey;
use osteo_trial::store::Db;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "osteo-edc backup 1";
pub const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "database.sqlite";
const POSTGRES_FILE: &str = "database.pgdump";
const OBJECTS: &str = "objects";
const MODELS: &str = "models";
/// Received DICOM images waiting for a coordinator (`crate::pacs`): the
/// originals, with their identifiers, so a backup holds them too.
const QUARANTINE: &str = "quarantine";

/// What a backup holds, written last: a folder without it is not a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub software: String,
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
    pub database: FileEntry,
    pub counts: Counts,
    /// The audit chain's last row in the copy.
    pub audit_head: Option<Head>,
    /// Objects, the key file and the models, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub screenings: i64,
    pub cases: i64,
    pub case_images: i64,
    pub audit_rows: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// What a database copy holds, read in one snapshot.
struct Contents {
    counts: Counts,
    head: Option<Head>,
    images: Vec<String>,
}

async fn contents(conn: &mut sqlx::AnyConnection) -> Result<Contents, sqlx::Error> {
    let mut counted = [0_i64; 4];
    for (n, table) in ["screenings", "cases", "case_images", "audit_log"]
        .iter()
        .enumerate()
    {
        counted[n] = sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
    }
    let [screenings, cases, case_images, audit_rows] = counted;
    let counts = Counts {
        screenings,
        cases,
        case_images,
        audit_rows,
    };
    let head = sqlx::query_as::<_, (i64, String)>(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(|(seq, hash)| Head { seq, hash });
    let images =
        sqlx::query_scalar::<_, String>("SELECT DISTINCT sha256 FROM case_images ORDER BY sha256")
            .fetch_all(&mut *conn)
            .await?;
    Ok(Contents {
        counts,
        head,
        images,
    })
}

/// The SHA-256 and size of a file, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

fn entry(root: &Path, relative: &str) -> anyhow::Result<FileEntry> {
    let (sha256, bytes) =
        hash_file(&root.join(relative)).with_context(|| format!("reading {relative}"))?;
    Ok(FileEntry {
        path: relative.to_owned(),
        sha256,
        bytes,
    })
}

fn object_path(sha256: &str) -> String {
    format!("{OBJECTS}/{}/{sha256}.dcm", &sha256[..2])
}

/// Every file under `dir`, relative to `root`, `/`-separated, sorted.
fn files_under(root: &Path, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let path = e.path();
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for rel in files_under(from, from)? {
        let target = to.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&rel), &target)
            .with_context(|| format!("copying {}", from.join(&rel).display()))?;
    }
    Ok(())
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// The file of a `sqlite://PATH[?…]` URL.
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// Runs an external tool (`pg_dump`, `pg_restore`), its failure with what it said.
async fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("{program} did not start (install PostgreSQL's client tools)"))?;
    if !out.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The object store the settings name.
pub fn object_store(settings: &Settings) -> anyhow::Result<Box<dyn ObjectStore>> {
    Ok(match &settings.object_store {
        None => Box::new(crate::imaging::storage::FileStore::new(
            settings.data_dir.join(OBJECTS),
        )),
        Some(url) => Box::new(crate::imaging::storage::BucketStore::from_url(url)?),
    })
}

/// Takes a backup into `out` (new or empty) while the server may run.
pub async fn backup(settings: &Settings, out: &Path) -> anyhow::Result<Manifest> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} is not empty: a backup goes into a new folder",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let db = Db::connect(&settings.database_url)
        .await
        .context("connecting to the database")?;
    let (engine, database, found) = if is_postgres(&settings.database_url) {
        // One snapshot for the object list and the dump.
        let mut tx = db.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *tx)
            .await?;
        let found = contents(&mut tx).await?;
        let file = out.join(POSTGRES_FILE);
        run_tool(
            "pg_dump",
            &[
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                &format!("--snapshot={snapshot}"),
                &format!("--file={}", file.display()),
                &format!("--dbname={}", settings.database_url),
            ],
        )
        .await?;
        tx.rollback().await?;
        ("postgres", POSTGRES_FILE, found)
    } else {
        let file = out.join(SQLITE_FILE);
        let path = file.to_string_lossy().replace('\'', "''");
        sqlx::query(&format!("VACUUM INTO '{path}'"))
            .execute(db.pool())
            .await
            .context("copying the SQLite database (VACUUM INTO)")?;
        let found = read_sqlite_copy(&file).await?;
        ("sqlite", SQLITE_FILE, found)
    };
    db.close().await;
    let store = object_store(settings)?;
    let mut files = Vec::new();
    for sha in &found.images {
        let bytes = store
            .get(sha)
            .await
            .map_err(|e| anyhow::anyhow!("reading object {sha}: {e}"))?
            .with_context(|| format!("object {sha} is named by the database but not stored"))?;
        let rel = object_path(sha);
        let target = out.join(&rel);
        std::fs::create_dir_all(target.parent().expect("a folder"))?;
        std::fs::write(&target, &bytes)?;
        files.push(FileEntry {
            path: rel,
            sha256: sha.clone(),
            bytes: bytes.len() as u64,
        });
    }
    if let AuditKeySource::File(key) = &settings.audit_key {
        if key.exists() {
            std::fs::copy(key, out.join(crate::config::AUDIT_KEY_FILE))?;
            files.push(entry(out, crate::config::AUDIT_KEY_FILE)?);
        }
    }
    for folder in [MODELS, QUARANTINE] {
        copy_tree(&settings.data_dir.join(folder), &out.join(folder))?;
        for rel in files_under(out, &out.join(folder))? {
            files.push(entry(out, &rel)?);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: FORMAT.into(),
        software: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().to_rfc3339(),
        engine: engine.into(),
        database: entry(out, database)?,
        counts: found.counts,
        audit_head: found.head,
        files,
    };
    let mut text = serde_json::to_vec_pretty(&manifest)?;
    text.push(b'\n');
    std::fs::write(out.join(MANIFEST), text)?;
    Ok(manifest)
}

/// Opens a copy of a SQLite backup file (opening the file itself would
/// change it: the connection switches it to WAL), reads what it holds,
/// and hands back the open copy with its folder.
async fn open_sqlite_copy(file: &Path) -> anyhow::Result<(Db, tempfile::TempDir)> {
    let scratch = tempfile::tempdir()?;
    let copy = scratch.path().join("copy.sqlite");
    std::fs::copy(file, &copy).with_context(|| format!("copying {}", file.display()))?;
    let db = Db::connect(&format!("sqlite://{}", copy.display())).await?;
    Ok((db, scratch))
}

async fn read_sqlite_copy(file: &Path) -> anyhow::Result<Contents> {
    let (db, _scratch) = open_sqlite_copy(file).await?;
    let found = contents(&mut *db.pool().acquire().await?).await?;
    db.close().await;
    Ok(found)
}

/// What `backup verify` found.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub files_checked: usize,
    /// `None` when the chain was not walked (a PostgreSQL dump without a
    /// scratch database).
    pub audit: Option<osteo_trial::audit::ChainSummary>,
    pub key_checked: Option<String>,
}

/// Re-checks a backup: every hash and size, no file beyond the manifest,
/// every image the database names present, and the audit chain with its
/// signed anchors (against `public_key`, else the key in the backup). A
/// PostgreSQL dump's chain is walked after restoring it into `scratch`
/// (an empty database), when given.
pub async fn verify(
    dir: &Path,
    public_key: Option<PublicKey>,
    scratch: Option<&str>,
) -> anyhow::Result<Verified> {
    let text = std::fs::read(dir.join(MANIFEST))
        .with_context(|| format!("{} has no {MANIFEST}: not a backup", dir.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{MANIFEST} cannot be read"))?;
    if manifest.format != FORMAT {
        bail!(
            "{MANIFEST} is of format `{}`, not `{FORMAT}`",
            manifest.format
        );
    }
    let mut listed: Vec<&FileEntry> = manifest.files.iter().collect();
    listed.push(&manifest.database);
    for f in &listed {
        let path = dir.join(&f.path);
        let (sha256, bytes) =
            hash_file(&path).with_context(|| format!("{} is missing or unreadable", f.path))?;
        if sha256 != f.sha256 || bytes != f.bytes {
            bail!(
                "{} has changed: SHA-256 {sha256} ({bytes} bytes) where the manifest says {} ({} bytes)",
                f.path,
                f.sha256,
                f.bytes
            );
        }
        if let Some(name) = f.path.strip_prefix(&format!("{OBJECTS}/")) {
            if !name.ends_with(&format!("{sha256}.dcm")) {
                bail!("{} does not hold the object its name says", f.path);
            }
        }
    }
    for rel in files_under(dir, dir)? {
        if rel != MANIFEST && !listed.iter().any(|f| f.path == rel) {
            bail!("{rel} is not in the manifest");
        }
    }
    let key = match public_key {
        Some(k) => Some(k),
        None => {
            let file = dir.join(crate::config::AUDIT_KEY_FILE);
            if file.exists() {
                Some(
                    osteo_trial::audit::anchor::AnchorKey::load_or_create(&file)
                        .context("the backup's audit key")?
                        .public(),
                )
            } else {
                None
            }
        }
    };
    let opened = match (manifest.engine.as_str(), scratch) {
        ("sqlite", _) => Some(open_sqlite_copy(&dir.join(SQLITE_FILE)).await?),
        ("postgres", Some(url)) => {
            restore_postgres(&dir.join(POSTGRES_FILE), url).await?;
            let db = Db::connect(url).await?;
            Some((db, tempfile::tempdir()?))
        }
        ("postgres", None) => {
            let file = dir.join(POSTGRES_FILE);
            run_tool("pg_restore", &["--list", &file.to_string_lossy()]).await?;
            None
        }
        (other, _) => bail!("{MANIFEST} names engine `{other}`"),
    };
    let mut audit = None;
    if let Some((db, _scratch)) = opened {
        let found = contents(&mut *db.pool().acquire().await?).await?;
        if found.counts != manifest.counts || found.head != manifest.audit_head {
            bail!(
                "the database holds {:?} (head {:?}) where the manifest says {:?} (head {:?})",
                found.counts,
                found.head,
                manifest.counts,
                manifest.audit_head
            );
        }
        for sha in &found.images {
            let rel = object_path(sha);
            if !manifest.files.iter().any(|f| f.path == rel) {
                bail!("image {sha} is named by the database but not in the backup");
            }
        }
        audit = Some(
            osteo_trial::audit::verify(&db, key.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("the audit trail does not verify: {e}"))?,
        );
        db.close().await;
    }
    Ok(Verified {
        files_checked: listed.len(),
        manifest,
        audit,
        key_checked: key.map(|k| k.to_hex()),
    })
}

/// Where a file of the backup (the key file, a model's file) goes in the
/// data directory; `None` for the key file when the key comes from
/// `OSTEO_AUDIT_KEY`.
fn restored_path(settings: &Settings, rel: &str) -> Option<PathBuf> {
    if rel != crate::config::AUDIT_KEY_FILE {
        return Some(settings.data_dir.join(rel));
    }
    match &settings.audit_key {
        AuditKeySource::File(path) => Some(path.clone()),
        AuditKeySource::Seed(_) => None,
    }
}

/// Copies `from` to `target`, unless the same file (by `sha256`) is there;
/// a different one there is an error.
fn restore_file(from: &Path, target: &Path, sha256: &str) -> anyhow::Result<()> {
    if target.exists() {
        if hash_file(target)?.0 != sha256 {
            bail!("{} exists and differs from the backup's", target.display());
        }
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, target)?;
    Ok(())
}

/// The tables of the PostgreSQL database at `url` (in its current schema):
/// 0 for an empty database.
pub(crate) async fn postgres_tables(url: &str) -> anyhow::Result<i64> {
    let db = Db::connect(url)
        .await
        .with_context(|| format!("connecting to {}", osteo_trial::store::redact_url(url)))?;
    let tables = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(db.pool())
    .await?;
    db.close().await;
    Ok(tables)
}

async fn restore_postgres(file: &Path, url: &str) -> anyhow::Result<()> {
    let tables = postgres_tables(url).await?;
    if tables > 0 {
        bail!("the database to restore into is not empty ({tables} tables): restore into a new database");
    }
    run_tool(
        "pg_restore",
        &[
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            &format!("--dbname={url}"),
            &file.to_string_lossy(),
        ],
    )
    .await
}

/// Restores the backup in `dir` into the settings' database (a new SQLite
/// file, or an empty PostgreSQL database), object store, data directory
/// (key file, models): after verifying it, and verifying the result.
pub async fn restore(settings: &Settings, dir: &Path) -> anyhow::Result<Verified> {
    let checked = verify(dir, None, None).await?;
    let manifest = &checked.manifest;
    match (
        manifest.engine.as_str(),
        is_postgres(&settings.database_url),
    ) {
        ("sqlite", false) => {
            let target = sqlite_path(&settings.database_url);
            if target.exists() {
                bail!(
                    "{} exists: restore into an empty data directory",
                    target.display()
                );
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(dir.join(SQLITE_FILE), &target)?;
        }
        ("postgres", true) => {
            restore_postgres(&dir.join(POSTGRES_FILE), &settings.database_url).await?;
        }
        (engine, _) => bail!(
            "this is a {engine} backup; restore it into a {engine} database (give --database-url)"
        ),
    }
    let store = object_store(settings)?;
    for f in &manifest.files {
        if f.path.starts_with(&format!("{OBJECTS}/")) {
            let bytes = std::fs::read(dir.join(&f.path))?;
            store
                .put(&f.sha256, &bytes)
                .await
                .map_err(|e| anyhow::anyhow!("storing object {}: {e}", f.sha256))?;
        } else if let Some(target) = restored_path(settings, &f.path) {
            restore_file(&dir.join(&f.path), &target, &f.sha256)?;
        }
    }
    let db = crate::startup::open_database(settings).await?;
    let found = contents(&mut *db.pool().acquire().await?).await?;
    if found.counts != manifest.counts {
        bail!(
            "the restored database holds {:?} where the backup has {:?}",
            found.counts,
            manifest.counts
        );
    }
    let key = db.anchor_key().map(|k| k.public());
    let audit = osteo_trial::audit::verify(&db, key.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("the restored audit trail does not verify: {e}"))?;
    db.close().await;
    Ok(Verified {
        audit: Some(audit),
        key_checked: key.map(|k| k.to_hex()),
        ..checked
    })
}
