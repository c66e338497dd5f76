//! Building and running the server (the shape tests use too: build on port 0
//! with a fresh database, read the port, run until stopped).

use crate::config::Settings;
use crate::routes;
use crate::session_store::DbSessionStore;
use anyhow::Context;
use osteo_app::auth::SessionPolicy;
use osteo_trial::accounts::{self, OneTimePassword, User};
use osteo_trial::store::{redact_url, Db};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub leptos_options: leptos::config::LeptosOptions,
    /// Stored radiographs (and heat-map overlays), by content hash.
    pub images: Arc<dyn crate::imaging::storage::ObjectStore>,
    /// The model, when one runs here.
    pub ai: Option<Arc<crate::ai::Ai>>,
}

impl AppState {
    /// Tells the model's worker that a case may be ready (a read was signed).
    pub fn wake_ai(&self) {
        if let Some(ai) = &self.ai {
            ai.wake();
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            absolute: self.settings.absolute_timeout,
        }
    }
}

impl axum::extract::FromRef<AppState> for leptos::config::LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// A server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: Db,
    port: u16,
    /// The demonstration accounts created at this start, with their one-time
    /// passwords (empty unless the database was new and demo mode is on).
    pub demo_accounts: Vec<(User, OneTimePassword)>,
}

/// Opens the database and applies pending migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let db = Db::connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&settings.database_url)))?;
    db.migrate().await.context("applying database migrations")?;
    Ok(db)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate()?;
        let db = open_database(&settings).await?;
        let new_database = accounts::ensure_study(&db)
            .await
            .context("creating the study record")?;
        let demo_accounts = if new_database && settings.demo {
            accounts::create_demo_accounts(&db)
                .await
                .context("creating the demonstration accounts")?
        } else {
            Vec::new()
        };
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let leptos_options = leptos::config::LeptosOptions::builder()
            .output_name(osteo_app::OUTPUT_NAME)
            .site_root(settings.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let images: Arc<dyn crate::imaging::storage::ObjectStore> = match &settings.object_store {
            None => Arc::new(crate::imaging::storage::FileStore::new(
                settings.data_dir.join("objects"),
            )),
            Some(url) => Arc::new(crate::imaging::storage::BucketStore::from_url(url)?),
        };
        // The demo cases are a convenience: a failure is logged, and the
        // server serves what was enrolled before it.
        if new_database && settings.demo && settings.demo_cases > 0 {
            let limits = crate::imaging::Limits::from_settings(&settings);
            match crate::demo_cases::seed(&db, images.as_ref(), &limits, settings.demo_cases).await
            {
                Ok(cases) => tracing::info!(
                    cases = %cases.join(", "),
                    "demo cases enrolled (synthetic radiograph phantoms)"
                ),
                Err(e) => tracing::error!(error = format!("{e:#}"), "enrolling the demo cases"),
            }
        }
        // The model is checked against its card before anything is served:
        // a model whose files do not match refuses the start.
        let ai = match crate::ai::model_dir(&settings.model, &settings.data_dir)? {
            Some(dir) => {
                let ai = Arc::new(crate::ai::Ai::load(
                    &dir,
                    settings.ai_workers,
                    &settings.ai_backend,
                )?);
                tracing::info!(model_id = %ai.card().model_id, dir = %dir.display(), demo = ai.card().demo, "model loaded");
                tokio::spawn(ai.clone().run(db.clone(), images.clone()));
                Some(ai)
            }
            None => {
                tracing::warn!("no model configured: cases wait at \"awaiting AI\"");
                None
            }
        };
        let state = AppState {
            db: db.clone(),
            settings: Arc::new(settings),
            leptos_options,
            images,
            ai,
        };
        let router = routes::router(state, DbSessionStore::new(db.clone()));
        Ok(Application {
            listener,
            router,
            db,
            port: addr.port(),
            demo_accounts,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until Ctrl-C / SIGTERM (or the future is dropped).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = DbSessionStore::new(self.db.clone());
        let cleanup = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "removing expired sessions failed");
                }
            }
        });
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        cleanup.abort();
        self.db.close().await;
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
