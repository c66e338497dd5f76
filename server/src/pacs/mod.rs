//! The PACS link: how images arrive without anyone touching a browser.
//!
//! Two doors, one path behind them:
//! - [`scp`]: a DICOM C-STORE SCP inside the server (`serve --dicom-port
//!   11112 --dicom-ae OSTEO`), written on dicom-ul's asynchronous upper
//!   layer, for allowed peers (AE title and address) of the study;
//! - `crate::dicomweb`: STOW-RS (`POST /dicomweb/studies`) with a personal
//!   API token.
//!
//! Behind both, a received object goes through [`Receiver::receive`]:
//! - **The same path as an upload.** The upload's checks (the bounded
//!   child-process read, the radiograph checks), de-identification,
//!   content-addressed storage and the audit trail.
//! - **Where it goes.** The case whose route (registered by the coordinator:
//!   accession number or patient ID) matches the file. An image that
//!   matches no route, or whose case no longer takes images, waits in the
//!   quarantine folder for a coordinator; nothing is guessed and nothing
//!   lost.
//! - **What the sender hears.** Success once the object is stored on its
//!   case or kept in quarantine (a repeat of a stored object is a success
//!   too, as archives answer); a file the checks refuse is a failure, with
//!   the reason; each door says it in its own protocol.

pub mod scp;

pub use scp::{DicomSettings, Scp};

use crate::imaging::{self, IngestError, Limits};
use dicom_core::Tag;
use osteo_trial::audit::{self, Change, Principal};
use osteo_trial::domain::{AuditSource, CaseId, Role};
use osteo_trial::pacs::{self, NewQuarantined, RouteKind};
use osteo_trial::store::Db;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The status codes of a storage answer, the same in DIMSE and in a STOW-RS
/// response's Failure Reason (PS3.7 Annex C, PS3.4 B.2.3, PS3.18 10.5.3).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    pub const PROCESSING_FAILURE: u16 = 0x0110;
}

/// The failure status of a file the checks refused.
pub fn failure_status(e: &IngestError) -> u16 {
    match e {
        IngestError::TooLarge { .. } | IngestError::Bounds(_) | IngestError::Timeout(_) => {
            status::OUT_OF_RESOURCES
        }
        IngestError::Storage(_) | IngestError::Case(_) | IngestError::Study(_) => {
            status::PROCESSING_FAILURE
        }
        _ => status::CANNOT_UNDERSTAND,
    }
}

/// Who sent a received object, as the quarantine and the audit trail name
/// it: a DICOM peer's AE title, or `STOW-RS` with the token's owner.
#[derive(Debug, Clone)]
pub struct Sender {
    pub name: String,
    pub address: IpAddr,
    /// The tag in which this sender puts the study number, as its peer
    /// entry says: consulted for images no route matches.
    pub study_number_tag: Option<Tag>,
}

/// What became of a received object.
#[derive(Debug)]
pub enum Received {
    /// Stored on its case, de-identified.
    Stored {
        case_id: CaseId,
        uids: imaging::InstanceUids,
    },
    /// A repeat of an object already stored.
    AlreadyHeld,
    /// Kept in quarantine for a coordinator (the entry's id).
    Quarantined(i64),
    /// Refused by the checks (audited as `dicom.image.refused`).
    Refused(IngestError),
    /// Not kept, through no fault of the file (logged).
    Failed(&'static str),
}

impl Received {
    /// Whether the object is kept (on a case, already, or in quarantine).
    pub fn kept(&self) -> bool {
        matches!(
            self,
            Received::Stored { .. } | Received::AlreadyHeld | Received::Quarantined(_)
        )
    }
}

/// A received object's fate, with the SOP class and instance UIDs it was
/// sent with (empty when the file could not be read).
#[derive(Debug)]
pub struct Reception {
    pub sop_class: String,
    pub sop_instance: String,
    pub outcome: Received,
}

/// What storing a received object needs: shared by both doors.
#[derive(Clone)]
pub struct Receiver {
    pub db: Db,
    pub images: Arc<dyn imaging::storage::ObjectStore>,
    pub limits: Limits,
    /// The quarantine folder: unmatched originals by SHA-256, until resolved.
    pub quarantine: QuarantineFolder,
}

impl Receiver {
    /// Stores one received file on its case, or in quarantine.
    pub async fn receive(&self, file: Vec<u8>, by: &Principal, from: &Sender) -> Reception {
        let size = file.len();
        let original = imaging::sha256_hex(&file);
        let mut checked = match imaging::check(file, &self.limits).await {
            Ok(c) => c,
            Err(e) => {
                self.audit_refusal(by, from, size, &original, &e).await;
                return Reception {
                    sop_class: String::new(),
                    sop_instance: String::new(),
                    outcome: Received::Refused(e),
                };
            }
        };
        let text = |g, e| imaging::text(&checked.obj, Tag(g, e)).unwrap_or_default();
        let (sop_class, sop_instance) = (text(0x0008, 0x0016), text(0x0008, 0x0018));
        let reception = |outcome| Reception {
            sop_class: sop_class.clone(),
            sop_instance: sop_instance.clone(),
            outcome,
        };
        let identifiers = [
            (
                RouteKind::AccessionNumber,
                imaging::text(&checked.obj, Tag(0x0008, 0x0050)),
            ),
            (
                RouteKind::PatientId,
                imaging::text(&checked.obj, Tag(0x0010, 0x0020)),
            ),
        ];
        let routed = match self.route(&checked.obj, &identifiers, from).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = ?e, "routing a received image failed");
                return reception(Received::Failed("internal error"));
            }
        };
        // Kept for the quarantine; storing on a case needs only the parsed object.
        let file = std::mem::take(&mut checked.bytes);
        let why = match routed {
            Err(why) => why,
            Ok(case_id) => {
                match imaging::store_checked(
                    &self.db,
                    self.images.as_ref(),
                    by,
                    case_id,
                    checked,
                    None,
                )
                .await
                {
                    Ok(stored) => {
                        tracing::info!(case_id = %case_id, sha256 = %stored.image.sha256, "a received image was stored");
                        return reception(Received::Stored {
                            case_id,
                            uids: stored.uids,
                        });
                    }
                    Err(IngestError::Duplicate) => return reception(Received::AlreadyHeld),
                    // The file is fine, its case does not take it now: keep it.
                    Err(
                        e @ (IngestError::Case(_)
                        | IngestError::Study(_)
                        | IngestError::ViewUnknown(_)),
                    ) => {
                        format!("its route's case did not take it: {e}")
                    }
                    Err(e) => {
                        self.audit_refusal(by, from, size, &original, &e).await;
                        return reception(Received::Refused(e));
                    }
                }
            }
        };
        match self.keep(by, from, &file, &original, why).await {
            Ok(id) => reception(Received::Quarantined(id)),
            Err(e) => {
                tracing::error!(error = %e, "quarantining a received image failed");
                reception(Received::Failed("it could not be kept"))
            }
        }
    }

    /// The case an image goes to, or why none: its worklist route (by
    /// accession number or patient ID), else the study number in its
    /// sender's configured tag. When both name a case they must agree:
    /// nothing is guessed.
    async fn route(
        &self,
        obj: &dicom_object::DefaultDicomObject,
        identifiers: &[(RouteKind, Option<String>)],
        from: &Sender,
    ) -> anyhow::Result<Result<CaseId, String>> {
        let routed = pacs::route_of(&self.db, identifiers).await?;
        let Some(tag) = from.study_number_tag else {
            return Ok(routed
                .ok_or_else(|| "no route matches its accession number or patient ID".to_owned()));
        };
        let named = imaging::text(obj, tag);
        let tagged = match &named {
            None => None,
            Some(number) => osteo_trial::case::find_case(&self.db, number)
                .await?
                .map(CaseId::new),
        };
        let at = format!("({:04X},{:04X})", tag.0, tag.1);
        Ok(match (routed, tagged) {
            (Some(r), Some(t)) if r != t => Err(format!(
                "its route and the study number in {at} name different cases"
            )),
            (Some(case), _) | (None, Some(case)) => Ok(case),
            (None, None) => Err(match named {
                None => format!("no route matches it and {at}, where its sender puts the study number, is empty"),
                Some(n) => format!(
                    "no route matches it and {at} holds `{}`, which is no case's study number",
                    n.chars().take(32).collect::<String>()
                ),
            }),
        })
    }

    /// Keeps an unrouted image in quarantine: the file, then its record.
    async fn keep(
        &self,
        by: &Principal,
        from: &Sender,
        file: &[u8],
        sha256: &str,
        reason: String,
    ) -> anyhow::Result<i64> {
        self.quarantine.put(sha256, file).await?;
        let id = pacs::quarantine(
            &self.db,
            by,
            NewQuarantined {
                calling_ae: from.name.clone(),
                peer_address: from.address.to_string(),
                original_sha256: sha256.to_owned(),
                size_bytes: i64::try_from(file.len()).unwrap_or(i64::MAX),
                reason,
            },
        )
        .await?;
        tracing::info!(quarantine_id = id, "a received image waits in quarantine");
        Ok(id)
    }

    async fn audit_refusal(
        &self,
        by: &Principal,
        from: &Sender,
        size: usize,
        sha256: &str,
        e: &IngestError,
    ) {
        let change = Change::new("dicom.image.refused", "dicom_peer", &from.name).field(
            "file",
            None,
            Some(format!(
                "from {} ({size} bytes, sha256 {sha256}): {e}",
                from.address
            )),
        );
        if let Err(e) = audit::record(&self.db, by, change).await {
            tracing::error!(error = %e, "the refusal could not be audited");
        }
    }
}

/// Originals waiting for a coordinator, named by their SHA-256. They still
/// carry the patient's identifiers (the coordinator needs them to find the
/// case), so they live apart from the de-identified store, readable by the
/// server's user only, and are removed when resolved.
#[derive(Debug, Clone)]
pub struct QuarantineFolder(pub PathBuf);

impl QuarantineFolder {
    fn path(&self, sha256: &str) -> PathBuf {
        self.0.join(format!("{sha256}.dcm"))
    }

    /// Keeps `bytes` under their hash (written whole, then renamed).
    pub async fn put(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.0).await?;
        let tmp = self.0.join(format!(".{sha256}.{}.tmp", std::process::id()));
        {
            use tokio::io::AsyncWriteExt;
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(&tmp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
        }
        tokio::fs::rename(&tmp, &path).await
    }

    pub async fn get(&self, sha256: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !osteo_trial::codes::is_sha256(sha256) {
            return Ok(None);
        }
        match tokio::fs::read(self.path(sha256)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn remove(&self, sha256: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(sha256)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The principal a sending AE acts as: the system, in the coordinator's
/// role (it may attach images and nothing else a coordinator may not),
/// audited as `dicom:<AE title>`.
pub fn principal(calling_ae: &str) -> Principal {
    Principal {
        user_id: None,
        name: format!("dicom:{}", calling_ae.trim()),
        role: Role::Coordinator,
        source: AuditSource::System,
    }
}

/// Why a quarantined image could not be assigned to a case.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error(transparent)]
    Pacs(#[from] pacs::PacsError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("the quarantined file is missing from the quarantine folder")]
    Missing,
    #[error("the quarantine folder could not be read: {0}")]
    Folder(#[from] std::io::Error),
}

/// Where a quarantined image goes: its case, and its view when the file
/// does not say.
#[derive(Debug, Clone, Copy)]
pub struct Assignment {
    pub case_id: osteo_trial::domain::CaseId,
    pub view: Option<osteo_trial::case::View>,
}

impl osteo_trial::error::ServiceError for AssignError {
    fn kind(&self) -> osteo_trial::error::ErrorKind {
        use osteo_trial::error::ErrorKind;
        match self {
            AssignError::Pacs(e) => e.kind(),
            AssignError::Ingest(IngestError::Case(e)) => e.kind(),
            AssignError::Ingest(IngestError::Study(e)) => e.kind(),
            AssignError::Ingest(IngestError::Storage(_))
            | AssignError::Missing
            | AssignError::Folder(_) => ErrorKind::Internal,
            AssignError::Ingest(_) => ErrorKind::Invalid,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AssignError::Pacs(e) => e.code(),
            AssignError::Ingest(IngestError::Case(e)) => e.code(),
            AssignError::Ingest(IngestError::Study(e)) => e.code(),
            AssignError::Ingest(_) => "image",
            AssignError::Missing | AssignError::Folder(_) => "internal",
        }
    }
}

/// A coordinator's assignment of a quarantined image to a case: the file
/// goes through the upload's path to the case, the entry is resolved, and
/// the original (with its identifiers) leaves the quarantine folder.
/// Repeating an assignment that stored the image but did not finish
/// resolves it.
pub async fn assign(
    db: &Db,
    images: &dyn imaging::storage::ObjectStore,
    limits: &Limits,
    folder: &QuarantineFolder,
    by: &Principal,
    id: i64,
    to: Assignment,
) -> Result<(), AssignError> {
    let Assignment { case_id, view } = to;
    let entry = pacs::quarantined_one(db, by, id).await?;
    if entry.outcome.is_some() {
        return Err(pacs::PacsError::NotQuarantined.into());
    }
    let bytes = folder
        .get(&entry.original_sha256)
        .await?
        .ok_or(AssignError::Missing)?;
    let checked = imaging::check(bytes, limits).await?;
    match imaging::store_checked(db, images, by, case_id, checked, view).await {
        Ok(_) => {}
        Err(IngestError::Duplicate) => {
            let on = osteo_trial::case::image_by_original(db, &entry.original_sha256)
                .await
                .map_err(IngestError::Case)?;
            if on != Some(case_id.get()) {
                return Err(IngestError::Duplicate.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    pacs::resolve(db, by, id, pacs::Resolution::Assigned(case_id)).await?;
    folder.remove(&entry.original_sha256).await?;
    Ok(())
}

/// A coordinator's discarding of a quarantined image, with the reason: the
/// entry stays (resolved), the file is removed.
pub async fn discard(
    db: &Db,
    folder: &QuarantineFolder,
    by: &Principal,
    id: i64,
    reason: &str,
) -> Result<(), AssignError> {
    let entry = pacs::quarantined_one(db, by, id).await?;
    pacs::resolve(db, by, id, pacs::Resolution::Discarded(reason.to_owned())).await?;
    folder.remove(&entry.original_sha256).await?;
    Ok(())
}

/// What a quarantined file says of itself, for the coordinator who matches
/// it to a case (read from the file; never stored in the database).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Found {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub accession_number: Option<String>,
    pub study_date: Option<String>,
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub view_position: Option<String>,
}

/// Reads what a quarantined file says (its header only).
pub async fn found(
    folder: &QuarantineFolder,
    sha256: &str,
) -> Result<Option<Found>, std::io::Error> {
    let Some(bytes) = folder.get(sha256).await? else {
        return Ok(None);
    };
    let read = tokio::task::spawn_blocking(move || {
        dicom_object::OpenFileOptions::new()
            .read_until(Tag(0x7FE0, 0x0010))
            .from_reader(std::io::Cursor::new(bytes))
            .ok()
            .map(|obj| {
                let t = |g, e| imaging::text(&obj, Tag(g, e));
                Found {
                    patient_name: t(0x0010, 0x0010),
                    patient_id: t(0x0010, 0x0020),
                    accession_number: t(0x0008, 0x0050),
                    study_date: t(0x0008, 0x0020),
                    modality: t(0x0008, 0x0060),
                    body_part: t(0x0018, 0x0015),
                    view_position: t(0x0018, 0x5101),
                }
            })
    })
    .await
    .map_err(std::io::Error::other)?;
    Ok(read)
}

/// What a quarantined file says, as label keys (`pacs.found.*`) and values
/// for its page; empty when the file cannot be read.
pub async fn found_pairs(folder: &QuarantineFolder, sha256: &str) -> Vec<(String, String)> {
    let Ok(Some(f)) = found(folder, sha256).await else {
        return Vec::new();
    };
    [
        ("patient_name", f.patient_name),
        ("patient_id", f.patient_id),
        ("accession_number", f.accession_number),
        ("study_date", f.study_date),
        ("modality", f.modality),
        ("body_part", f.body_part),
        ("view_position", f.view_position),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
    .collect()
}
