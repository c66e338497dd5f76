//! `osteo-edc backup`, `backup verify` and `restore` ([`crate::backup`]).

use super::{usage, DbArgs};
use crate::backup::{self, Verified};
use clap::{Args, Subcommand};
use osteo_trial::audit::anchor::PublicKey;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// The new (or empty) folder the backup goes into.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// The object store the radiographs are read from (as `serve --object-store`) [default: the objects folder of the data directory].
    #[arg(long, env = "OSTEO_OBJECT_STORE")]
    object_store: Option<String>,
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Re-check a backup: every file's SHA-256 and size against the manifest, no file beyond it, every image the database names present, the counts, and the audit chain with its signed anchors. Exits 1 naming the first fault.
    Verify {
        /// The backup folder.
        dir: PathBuf,
        /// The audit key's public half (64 hex digits, from `audit verify` or a filed anchor) [default: the key file in the backup].
        #[arg(long)]
        public_key: Option<String>,
        /// PostgreSQL backups: an empty database to restore the dump into so that the audit chain can be walked [default: only the dump's table of contents is read].
        #[arg(long)]
        scratch_database: Option<String>,
    },
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup folder (made by `osteo-edc backup`).
    dir: PathBuf,
    /// The object store the radiographs are written to (as `serve --object-store`) [default: the objects folder of the data directory].
    #[arg(long, env = "OSTEO_OBJECT_STORE")]
    object_store: Option<String>,
}

fn report(v: &Verified) {
    let c = v.manifest.counts;
    println!(
        "backup intact: {} files checked; {} screenings, {} cases, {} images, {} audit rows (taken {})",
        v.files_checked, c.screenings, c.cases, c.case_images, c.audit_rows, v.manifest.created_at
    );
    match &v.audit {
        Some(a) => println!("audit trail intact: {} rows, head {}", a.rows, a.head_hash),
        None => println!(
            "audit trail NOT walked: give --scratch-database (an empty PostgreSQL database) to restore the dump and walk it"
        ),
    }
    match (&v.key_checked, &v.audit) {
        (Some(k), Some(a)) => {
            println!("signed anchors: {} checked with key {k}", a.anchors_checked)
        }
        _ => println!("signed anchors: NOT checked"),
    }
}

pub(super) async fn backup_cmd(db: &DbArgs, args: BackupArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(BackupCommand::Verify {
            dir,
            public_key,
            scratch_database,
        }) => {
            let key = public_key
                .map(|k| PublicKey::from_hex(&k).map_err(usage))
                .transpose()?;
            match backup::verify(&dir, key, scratch_database.as_deref()).await {
                Ok(v) => {
                    report(&v);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("BACKUP NOT INTACT: {e:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        None => {
            let out = args.out.ok_or_else(|| usage("give --out DIR"))?;
            let mut settings = db.settings();
            settings.object_store = args.object_store;
            let m = backup::backup(&settings, &out).await?;
            let bytes: u64 = m.files.iter().map(|f| f.bytes).sum::<u64>() + m.database.bytes;
            println!(
                "backup in {}: {} screenings, {} cases, {} images, {} audit rows{}; {} files, {:.1} MiB; check it with `osteo-edc backup verify {}`",
                out.display(),
                m.counts.screenings,
                m.counts.cases,
                m.counts.case_images,
                m.counts.audit_rows,
                m.audit_head
                    .as_ref()
                    .map(|h| format!(" (head {} at row {})", h.hash, h.seq))
                    .unwrap_or_default(),
                m.files.len() + 1,
                bytes as f64 / (1024.0 * 1024.0),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(super) async fn restore_cmd(db: &DbArgs, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let mut settings = db.settings();
    settings.object_store = args.object_store;
    let v = backup::restore(&settings, &args.dir).await?;
    println!("restored from {}", args.dir.display());
    report(&v);
    Ok(ExitCode::SUCCESS)
}
