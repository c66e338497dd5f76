//! Reading an upload of one or many DICOM files (multipart) into per-file
//! outcomes: every file is stored or refused with its reason, never silently.

use super::storage::ObjectStore;
use super::{ingest, IngestError, Limits};
use axum::extract::Multipart;
use osteo_trial::audit::{self, Change, Principal};
use osteo_trial::case::View;
use osteo_trial::error::ErrorKind;
use osteo_trial::store::Db;
use serde::Serialize;

/// One file's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileOutcome {
    pub name: String,
    pub stored: bool,
    /// SHA-256 of the stored, de-identified object.
    pub sha256: Option<String>,
    pub view: Option<String>,
    pub warnings: Vec<String>,
    /// Why the file was refused.
    pub error: Option<String>,
}

/// The HTTP status of a batch: 200 when at least one file was stored, 400
/// when none was (the body lists every file either way).
pub fn batch_status(files: &[FileOutcome]) -> axum::http::StatusCode {
    if files.iter().any(|f| f.stored) {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    }
}

/// Reads the form's `view` (optional, before the files: `auto`, `frontal`,
/// `lateral`, `oblique`) and every `file` part, ingesting each in turn.
pub async fn receive(
    db: &Db,
    images: &dyn ObjectStore,
    limits: &Limits,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    mut form: Multipart,
) -> Result<Vec<FileOutcome>, String> {
    let mut view: Option<View> = None;
    let mut out = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("the upload could not be read: {}", e.body_text())),
        };
        match field.name().unwrap_or_default() {
            "view" => {
                let v = field.text().await.map_err(|e| e.body_text())?;
                view = match v.trim() {
                    "" | "auto" => None,
                    other => Some(
                        other
                            .parse()
                            .map_err(|e: osteo_trial::codes::UnknownCode| e.to_string())?,
                    ),
                };
            }
            "file" | "files" => {
                let name = field
                    .file_name()
                    .unwrap_or("unnamed")
                    .chars()
                    .take(200)
                    .collect::<String>();
                let bytes = match field.bytes().await {
                    Ok(b) => b.to_vec(),
                    Err(e) => {
                        return Err(format!(
                            "{name}: the upload could not be read: {}",
                            e.body_text()
                        ))
                    }
                };
                let original_sha256 = super::sha256_hex(&bytes);
                let size = bytes.len();
                let outcome =
                    match ingest(db, images, by, case_id, bytes, view, limits.clone()).await {
                        Ok(s) => FileOutcome {
                            name,
                            stored: true,
                            sha256: Some(s.image.sha256.clone()),
                            view: Some(s.image.view.to_string()),
                            warnings: s.warnings,
                            error: None,
                        },
                        // A refusal of the case itself (its state, the role) ends
                        // the batch; a fault is this file's outcome.
                        Err(IngestError::Case(e)) if e.kind() != ErrorKind::Internal => {
                            return Err(e.to_string());
                        }
                        Err(e) => {
                            if let IngestError::Storage(_)
                            | IngestError::Case(_)
                            | IngestError::Study(_) = e
                            {
                                tracing::error!(error = %e, "storing an image failed");
                            }
                            audit_refusal(db, by, case_id, &name, size, &original_sha256, &e).await;
                            FileOutcome {
                                name,
                                stored: false,
                                sha256: None,
                                view: None,
                                warnings: vec![],
                                error: Some(e.to_string()),
                            }
                        }
                    };
                out.push(outcome);
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("no file was sent: add one or more DICOM files in the field `file`".into());
    }
    Ok(out)
}

/// Every refusal is in the audit trail: what was sent (name, size, hash of
/// the bytes) and why it was refused. A failure to audit is logged; the file
/// stays refused either way.
pub async fn audit_refusal(
    db: &osteo_trial::store::Db,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    name: &str,
    size: usize,
    original_sha256: &str,
    reason: &IngestError,
) {
    let change = Change::new("image.refused", "case", case_id).field(
        "file",
        None,
        Some(format!(
            "{name} ({size} bytes, sha256 {original_sha256}): {reason}"
        )),
    );
    if let Err(e) = audit::record(db, by, change).await {
        tracing::error!(error = %e, "the refusal could not be audited");
    }
}
