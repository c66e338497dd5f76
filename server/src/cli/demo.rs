//! `osteo-edc demo retrospective`: a hospital's demonstration EDC, filled
//! without a browser, for the federated-learning demo (`scripts/fl-demo.sh`
//! gives each SuperNode one).
//!
//! The command makes a **new** database holding the demonstration study
//! (never the trial, and never on a database that already holds a study),
//! creates the demonstration accounts and enrols N phantom cases drawn with
//! a site's shift as complete retrospective cases, through the service
//! functions the pages use ([`crate::demo_cases::seed_retrospective`]). The
//! coordinator's and the radiologist's signatures check their one-time
//! passwords, which only this command knows; they are printed once, as
//! `serve` prints them on a new database, so that the site's EDC can then
//! be served and signed into. The cases' training set then comes out of the
//! database as any study's does: `model dataset export`.

use super::model::DrawArgs;
use super::usage_error;
use crate::imaging::{storage::FileStore, Limits};
use clap::{Args, Subcommand};
use osteo_trial::accounts;
use osteo_trial::domain::StudyKind;
use osteo_trial::store::Db;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DemoCommand {
    /// Make a new demonstration database (refused on one that holds a study) with N complete retrospective phantom cases: screened and enrolled by the demo coordinator, views stored through the upload's ingest, CRF complete, the demo radiologist's read signed, pathology entered and signed. Prints the accounts' one-time passwords once, and the study numbers (JSON).
    Retrospective(RetrospectiveArgs),
}

#[derive(Args)]
pub struct RetrospectiveArgs {
    /// How many cases (1 to 2,000).
    #[arg(long)]
    pub n: usize,
    /// The phantom generator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub draw: DrawArgs,
}

/// Most cases one run draws (they are held in memory while enrolled).
const MAX_CASES: usize = 2_000;

pub async fn run(
    cmd: DemoCommand,
    open_db: impl std::future::Future<Output = anyhow::Result<(Db, PathBuf)>>,
) -> anyhow::Result<Value> {
    let DemoCommand::Retrospective(args) = cmd;
    // Bad options are refused before the database is touched.
    if args.n > MAX_CASES {
        return Err(usage_error(format!("--n is at most {MAX_CASES}")));
    }
    let cfg = args.draw.config(args.n, args.seed)?;
    let (db, data_dir) = open_db.await?;
    if !accounts::ensure_study(&db, StudyKind::Demo).await? {
        return Err(usage_error(
            "the database already holds a study; `demo retrospective` makes a new demonstration database: give a new --data-dir (or an empty --database-url)".into(),
        ));
    }
    let created = accounts::create_demo_accounts(&db).await?;
    let password = |username: &str| {
        created
            .iter()
            .find(|(u, _)| u.username == username)
            .map(|(_, p)| p.expose())
            .ok_or_else(|| anyhow::anyhow!("the demo account `{username}` was not created"))
    };
    let signers = crate::demo_cases::Signers {
        coordinator: password("coordinator")?,
        radiologist: password("radiologist")?,
    };
    let store = FileStore::new(data_dir.join("objects"));
    let limits = Limits::command_line();
    let cases = osteo_model::phantom::generate(args.n, &cfg);
    let drawn = format!(
        "seed {}, contrast {}, site noise {}, malignant share {}, spectrum {}",
        args.seed,
        args.draw.contrast,
        args.draw.site_noise,
        args.draw.malignant_share,
        args.draw.spectrum
    );
    let numbers =
        crate::demo_cases::seed_retrospective(&db, &store, &limits, &cases, &drawn, &signers)
            .await?;
    let malignant = cases.iter().filter(|c| c.label.is_malignant()).count();
    let passwords: serde_json::Map<String, Value> = created
        .iter()
        .map(|(u, p)| (u.username.clone(), json!(p.expose())))
        .collect();
    Ok(json!({
        "study": "demonstration",
        "arm": "retrospective",
        "complete_cases": numbers.len(),
        "malignant": malignant,
        "benign": numbers.len() - malignant,
        "study_numbers": numbers,
        "one_time_passwords": passwords,
    }))
}
