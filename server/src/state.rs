//! What every handler can reach: the database, the settings, the object
//! store and the model. Built once by [`crate::startup::Application::build`];
//! the handlers, the middleware and the routers take it from axum's state.

use crate::config::Settings;
use osteo_app::auth::SessionPolicy;
use osteo_trial::domain::StudyKind;
use osteo_trial::store::Db;
use std::sync::Arc;

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
    /// The trial, or the demonstration study (fixed when the database was made).
    pub study_kind: StudyKind,
    /// Sign-in attempts counted per client address and per username.
    pub login_throttle: Arc<crate::throttle::LoginThrottle>,
    /// Request counts and latencies, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Received DICOM images that matched no case, until resolved.
    pub quarantine: crate::pacs::QuarantineFolder,
}

impl AppState {
    /// Reads a multipart upload of radiographs into the case, file by file,
    /// under the settings' limits (`imaging::upload::receive`).
    pub async fn receive_upload(
        &self,
        by: &osteo_trial::audit::Principal,
        case_id: osteo_trial::domain::CaseId,
        form: axum::extract::Multipart,
    ) -> Result<Vec<crate::imaging::upload::FileOutcome>, String> {
        crate::imaging::upload::receive(
            &self.db,
            self.images.as_ref(),
            &self.settings.image_limits(),
            by,
            case_id,
            form,
        )
        .await
    }

    /// The receiver every DICOM door shares (`pacs::Receiver`).
    pub fn receiver(&self) -> crate::pacs::Receiver {
        crate::pacs::Receiver {
            db: self.db.clone(),
            images: self.images.clone(),
            limits: self.settings.image_limits(),
            quarantine: self.quarantine.clone(),
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
