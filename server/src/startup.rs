//! Building and running the server (the shape tests use too: build on port 0
//! with a fresh database, read the port, run until stopped).

use crate::config::Settings;
use crate::routes;
use crate::session_store::DbSessionStore;
use crate::state::AppState;
use anyhow::Context;
use osteo_trial::accounts::{self, OneTimePassword, User};
use osteo_trial::domain::StudyKind;
use osteo_trial::store::{redact_url, Db};
use std::sync::Arc;
use tokio::net::TcpListener;

/// A server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: Db,
    port: u16,
    /// The accounts created at this start, one per role, with their one-time
    /// passwords (empty unless the database was new and holds the
    /// demonstration study, or the settings asked for them).
    pub demo_accounts: Vec<(User, OneTimePassword)>,
    /// The study the database holds.
    pub study_kind: StudyKind,
    login_throttle: Arc<crate::throttle::LoginThrottle>,
    /// The PACS link's DICOM listener and its receiver, when configured.
    dicom: Option<(TcpListener, Arc<crate::pacs::Scp>)>,
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
    // The command line signs with the key when it has one; only the server
    // creates it.
    Ok(match settings.audit_key.load(false)? {
        Some(key) => db.with_anchor_key(key),
        None => db,
    })
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate()?;
        let db = open_database(&settings).await?;
        let key = settings
            .audit_key
            .load(true)?
            .context("the audit signing key")?;
        tracing::info!(public_key = %key.public_hex(), "audit chain heads are signed with this key");
        let db = db.with_anchor_key(key);
        // A chain that has never been signed (a database from before the
        // anchors, or one whose key was just set up) is signed once at start,
        // so that its history is covered from here on.
        if osteo_trial::audit::anchor::anchors(&db).await?.is_empty() {
            osteo_trial::audit::anchor::anchor(&db, "first start with the audit key").await?;
        }
        if let Ok(owned) = db.owned_tables().await {
            if !owned.is_empty() {
                tracing::warn!(
                    tables = owned.len(),
                    "the server's database role owns the tables, so it could disable their triggers: \
                     connect as a role that owns none (docs/decisions.md, \"Two database roles\")"
                );
            }
        }
        let requested = if settings.demo {
            StudyKind::Demo
        } else {
            StudyKind::Trial
        };
        let new_database = accounts::ensure_study(&db, requested)
            .await
            .context("creating the study record")?;
        // An existing database keeps the study it was made with.
        let study_kind = osteo_trial::screening::study_kind(db.pool()).await?;
        if study_kind != requested && !new_database {
            tracing::info!(
                study = study_kind.as_str(),
                "the database holds this study; it is served as such"
            );
        }
        let demo = study_kind == StudyKind::Demo;
        let demo_accounts = if new_database && (demo || settings.accounts_per_role) {
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
            .output_name(osteo_app::asset_name(&settings.site_root))
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
        if new_database && demo && settings.demo_cases > 0 {
            let limits = settings.image_limits();
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
        let ai = match crate::ai::model_dir(&settings.model, study_kind, &settings.data_dir)? {
            Some(dir) => {
                let ai = Arc::new(
                    crate::ai::Ai::load(&dir, settings.ai_workers, &settings.ai_backend)
                        .map(|ai| ai.with_lease(settings.ai_lease))?,
                );
                tracing::info!(model_id = %ai.card().model_id, dir = %dir.display(), demo = ai.card().demo, "model loaded");
                // The demonstration study pins its demo model itself; the
                // trial's model is pinned by the PI with a signature.
                if demo && ai.card().demo && osteo_trial::study::pinned_model(&db).await?.is_none()
                {
                    if let Some(request) = crate::ai::pin_request(Some(&ai)) {
                        osteo_trial::study::pin_demo_model(&db, &request)
                            .await
                            .context("pinning the demo model in the demonstration study")?;
                    }
                }
                tokio::spawn(ai.clone().run(db.clone(), images.clone()));
                Some(ai)
            }
            None => {
                tracing::warn!("no model configured: cases wait at \"awaiting AI\"");
                None
            }
        };
        let dicom = match &settings.dicom {
            None => None,
            Some(d) => {
                let tls = d.tls.as_ref().map(|t| t.server_config()).transpose()?;
                let listener = TcpListener::bind(d.bind)
                    .await
                    .with_context(|| format!("binding the DICOM port {}", d.bind))?;
                tracing::info!(address = %listener.local_addr()?, ae_title = %d.ae_title, tls = tls.is_some(), "DICOM C-STORE SCP listening");
                let scp = crate::pacs::Scp {
                    receiver: crate::pacs::Receiver {
                        db: db.clone(),
                        images: images.clone(),
                        limits: settings.image_limits(),
                        quarantine: crate::pacs::QuarantineFolder(
                            settings.data_dir.join("quarantine"),
                        ),
                    },
                    ae_title: d.ae_title.trim().to_owned(),
                    tls,
                };
                Some((listener, Arc::new(scp)))
            }
        };
        let quarantine = crate::pacs::QuarantineFolder(settings.data_dir.join("quarantine"));
        let login_throttle = Arc::new(crate::throttle::LoginThrottle::new(settings.login_limits));
        let state = AppState {
            db: db.clone(),
            settings: Arc::new(settings),
            leptos_options,
            images,
            ai,
            study_kind,
            login_throttle: login_throttle.clone(),
            metrics: Arc::default(),
            quarantine,
        };
        let router = routes::router(state, DbSessionStore::new(db.clone()));
        Ok(Application {
            listener,
            router,
            db,
            port: addr.port(),
            demo_accounts,
            study_kind,
            login_throttle,
            dicom,
        })
    }

    /// The port the DICOM listener is bound to, when there is one.
    pub fn dicom_port(&self) -> Option<u16> {
        self.dicom
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
            .map(|a| a.port())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The router, for requests sent without a socket (the fuzz targets).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Serves until Ctrl-C / SIGTERM (or the future is dropped).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = DbSessionStore::new(self.db.clone());
        let db = self.db.clone();
        let throttle = self.login_throttle.clone();
        let forget = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                throttle.forget_expired();
            }
        });
        let cleanup = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "removing expired sessions failed");
                }
                // At least hourly while writes happen, the chain's head is signed.
                if let Err(e) =
                    osteo_trial::audit::anchor::anchor_if_due(&db, chrono::Duration::hours(1)).await
                {
                    tracing::warn!(error = %e, "signing the audit chain's head failed");
                }
            }
        });
        let dicom = self
            .dicom
            .map(|(listener, scp)| tokio::spawn(scp.serve(listener)));
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        cleanup.abort();
        forget.abort();
        if let Some(d) = dicom {
            d.abort();
        }
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
