//! The PACS link: a DICOM C-STORE SCP inside the server (`serve
//! --dicom-port 11112 --dicom-ae OSTEO`), written on dicom-ul's
//! asynchronous upper layer.
//!
//! - **Who may call.** The calling AE title, and the IP address where one is
//!   set, must be an allowed peer of the study (`osteo_trial::pacs`, set by
//!   the administrator or the principal investigator); the called AE title
//!   must be ours. Anything else is rejected at association and audited.
//! - **What is negotiated.** Verification (C-ECHO), and C-STORE of CR, DX
//!   (for presentation and for processing) and Secondary Capture, in the
//!   transfer syntaxes the upload decodes ([`TRANSFER_SYNTAXES`]). Every
//!   other abstract or transfer syntax is refused at negotiation.
//! - **The same path as an upload.** A received object becomes the Part 10
//!   file it was (file meta from the negotiated transfer syntax, the data
//!   set as sent, never re-encoded) and goes through the upload's checks:
//!   the bounded child-process read, the radiograph checks,
//!   de-identification, content-addressed storage and the audit trail.
//! - **Where it goes.** The case whose route (registered by the coordinator:
//!   accession number or patient ID) matches the file. An image that
//!   matches no route, or whose case no longer takes images, waits in the
//!   quarantine folder for a coordinator; nothing is guessed and nothing
//!   lost.
//! - **What the sender hears.** Success once the object is stored on its
//!   case or kept in quarantine (a repeat of a stored object is a success
//!   too, as archives answer); a file the checks refuse gets a failure
//!   status with the reason in Error Comment; an object over the size limit
//!   gets "out of resources".

use crate::imaging::{self, IngestError, Limits};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::pdu::{AssociationRJServiceUserReason, PDataValue, PDataValueType, UserIdentity};
use dicom_ul::Pdu;
use osteo_trial::audit::{self, Change, Principal};
use osteo_trial::domain::{AuditSource, Role};
use osteo_trial::pacs::{self, NewQuarantined, RouteKind};
use osteo_trial::store::Db;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// The storage SOP classes accepted: radiographs, and Secondary Capture
/// (a scanned film or a converted picture; the checks then decide).
pub const STORAGE_CLASSES: [(&str, &str); 4] = [
    (
        "1.2.840.10008.5.1.4.1.1.1",
        "Computed Radiography Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.1.1",
        "Digital X-Ray Image Storage - For Presentation",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.1.1.1",
        "Digital X-Ray Image Storage - For Processing",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.7",
        "Secondary Capture Image Storage",
    ),
];

/// The transfer syntaxes the upload decodes, in our order of preference:
/// uncompressed first (no decoding cost), then the compressed ones. JPEG-LS
/// and 12-bit JPEG Extended are decoded through the DCMTK fallback
/// (`imaging::fallback`).
pub const TRANSFER_SYNTAXES: [&str; 13] = [
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian
    "1.2.840.10008.1.2.1.99", // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51", // JPEG Extended (Process 2 & 4), 12-bit
    "1.2.840.10008.1.2.4.57", // JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70", // JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91", // JPEG 2000
];

/// How many associations are served at once; more wait for a slot.
const ASSOCIATIONS: usize = 8;
/// How long an association may stay silent.
const IDLE: Duration = Duration::from_secs(60);
/// The largest PDU we accept.
const MAX_PDU: u32 = 64 * 1024;

/// DIMSE status codes (PS3.7 Annex C, PS3.4 B.2.3).
mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    pub const PROCESSING_FAILURE: u16 = 0x0110;
}

/// Where the DICOM listener runs (from `serve --dicom-port/--dicom-ae`).
#[derive(Debug, Clone)]
pub struct DicomSettings {
    pub bind: SocketAddr,
    /// Our AE title: callers must call it.
    pub ae_title: String,
}

/// The receiver: what an association needs to store what it receives.
pub struct Scp {
    pub db: Db,
    pub images: Arc<dyn imaging::storage::ObjectStore>,
    pub limits: Limits,
    /// The quarantine folder: unmatched originals by SHA-256, until resolved.
    pub quarantine: QuarantineFolder,
    pub ae_title: String,
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

/// The access check of one incoming association: our AE title called,
/// from an allowed peer at its address. Remembers what it saw, for the
/// audit record of a refusal.
struct PeerCheck {
    peers: Vec<pacs::Peer>,
    address: IpAddr,
    seen: Mutex<Option<(String, &'static str)>>,
}

/// The check as dicom-ul holds it, shared with the association's task.
struct SharedCheck(Arc<PeerCheck>);

impl AccessControl for SharedCheck {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let verdict = if called_ae_title.trim() != this_ae_title.trim() {
            Err((
                "the called AE title is not this server's",
                AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            ))
        } else if !pacs::allowed(&self.0.peers, calling_ae_title, self.0.address) {
            Err((
                "the calling AE title is not an allowed peer at this address",
                AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            ))
        } else {
            Ok(())
        };
        let said = match &verdict {
            Ok(()) => "accepted",
            Err((why, _)) => why,
        };
        if let Ok(mut seen) = self.0.seen.lock() {
            *seen = Some((calling_ae_title.trim().to_owned(), said));
        }
        verdict.map_err(|(_, reason)| reason)
    }
}

impl Scp {
    /// Serves associations on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let slots = Arc::new(tokio::sync::Semaphore::new(ASSOCIATIONS));
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a DICOM connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let scp = self.clone();
            tokio::spawn(async move {
                scp.association(socket, peer).await;
                drop(slot);
            });
        }
    }

    /// One association, from negotiation to release.
    async fn association(&self, socket: tokio::net::TcpStream, peer: SocketAddr) {
        let peers = match pacs::peers(&self.db).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = ?e, "reading the allowed DICOM peers failed");
                return;
            }
        };
        let check = Arc::new(PeerCheck {
            peers,
            address: peer.ip(),
            seen: Mutex::new(None),
        });
        let mut options = ServerAssociationOptions::new()
            .ae_title(self.ae_title.as_str())
            .max_pdu_length(MAX_PDU)
            .read_timeout(IDLE)
            .write_timeout(IDLE)
            .with_abstract_syntax(VERIFICATION);
        for (uid, _) in STORAGE_CLASSES {
            options = options.with_abstract_syntax(uid);
        }
        for ts in TRANSFER_SYNTAXES {
            options = options.with_transfer_syntax(ts);
        }
        let options = options.ae_access_control(SharedCheck(check.clone()));
        let established = options.establish_async(socket).await;
        let mut association = match established {
            Ok(a) => a,
            Err(e) => {
                let seen = check.seen.lock().ok().and_then(|s| s.clone());
                self.refused(peer, seen, &e.to_string()).await;
                return;
            }
        };
        let calling = dicom_ul::association::Association::peer_ae_title(&association)
            .trim()
            .to_owned();
        tracing::info!(calling_ae = %calling, address = %peer.ip(), "DICOM association accepted");
        let by = principal(&calling);
        let mut message = Message::default();
        loop {
            let pdu = match association.receive().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::info!(calling_ae = %calling, error = %e, "DICOM association ended");
                    return;
                }
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        let Some(done) = message.take(value, self.limits.max_bytes) else {
                            continue;
                        };
                        let reply = self.answer(&association, done, &by, peer).await;
                        if let Some(reply) = reply {
                            if let Err(e) = association.send(&reply).await {
                                tracing::warn!(error = %e, "sending a DICOM response failed");
                                return;
                            }
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    let _ = association.send(&Pdu::ReleaseRP).await;
                    tracing::info!(calling_ae = %calling, "DICOM association released");
                    return;
                }
                Pdu::AbortRQ { .. } => {
                    tracing::info!(calling_ae = %calling, "DICOM association aborted by the peer");
                    return;
                }
                other => {
                    tracing::warn!(pdu = %other.short_description(), "unexpected PDU; aborting the association");
                    let _ = association.abort().await;
                    return;
                }
            }
        }
    }

    /// Audits an association that was refused (or broke off before it was
    /// established).
    async fn refused(&self, peer: SocketAddr, seen: Option<(String, &'static str)>, error: &str) {
        let (calling, why) = seen.unwrap_or_else(|| ("(unknown)".to_owned(), "negotiation failed"));
        tracing::warn!(calling_ae = %calling, address = %peer.ip(), why, error, "DICOM association refused");
        let change = Change::new("dicom.association.refused", "dicom_peer", &calling).field(
            "association",
            None,
            Some(format!("{calling} at {}: {why} ({error})", peer.ip())),
        );
        if let Err(e) = audit::record(&self.db, &principal(&calling), change).await {
            tracing::error!(error = %e, "the refused association could not be audited");
        }
    }

    /// The response to a complete message, if it needs one.
    async fn answer<S>(
        &self,
        association: &dicom_ul::association::server::AsyncServerAssociation<S>,
        done: Done,
        by: &Principal,
        peer: SocketAddr,
    ) -> Option<Pdu> {
        let command = match read_command(&done.command) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable DIMSE command");
                return None;
            }
        };
        let (field, status, comment) = match command.field {
            0x0030 => (0x8030, status::SUCCESS, None),
            0x0001 => {
                let Some(ts) = association
                    .presentation_contexts()
                    .iter()
                    .find(|pc| pc.id == done.context)
                    .map(|pc| pc.transfer_syntax.clone())
                else {
                    return Some(response(
                        done.context,
                        &command,
                        0x8001,
                        status::CANNOT_UNDERSTAND,
                        Some("no such presentation context"),
                    ));
                };
                let (status, comment) = if done.overflow {
                    (
                        status::OUT_OF_RESOURCES,
                        Some(format!(
                            "larger than the limit of {}",
                            imaging::Size(self.limits.max_bytes)
                        )),
                    )
                } else {
                    match part10(&command, &ts, &done.data) {
                        Err(e) => (status::CANNOT_UNDERSTAND, Some(e)),
                        Ok(file) => self.store(file, by, peer).await,
                    }
                };
                (0x8001, status, comment)
            }
            other => {
                tracing::warn!(command = other, "an unsupported DIMSE command");
                (
                    other | 0x8000,
                    0x0211, // unrecognised operation
                    Some("only C-ECHO and C-STORE are served".to_owned()),
                )
            }
        };
        Some(response(
            done.context,
            &command,
            field,
            status,
            comment.as_deref(),
        ))
    }

    /// Stores one received file on its case, or in quarantine: the status
    /// and error comment for the sender.
    async fn store(
        &self,
        file: Vec<u8>,
        by: &Principal,
        peer: SocketAddr,
    ) -> (u16, Option<String>) {
        let size = file.len();
        let original = imaging::sha256_hex(&file);
        let checked = match imaging::check(file.clone(), &self.limits).await {
            Ok(c) => c,
            Err(e) => {
                self.audit_refusal(by, peer, size, &original, &e).await;
                return refusal_status(&e);
            }
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
        let routed = match pacs::route_of(&self.db, &identifiers).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = ?e, "routing a received image failed");
                return (status::PROCESSING_FAILURE, Some("internal error".into()));
            }
        };
        let why = match routed {
            None => "no route matches its accession number or patient ID".to_owned(),
            Some(case_id) => {
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
                        return (status::SUCCESS, None);
                    }
                    Err(IngestError::Duplicate) => return (status::SUCCESS, None),
                    // The file is fine, its case does not take it now: keep it.
                    Err(
                        e @ (IngestError::Case(_)
                        | IngestError::Study(_)
                        | IngestError::ViewUnknown(_)),
                    ) => {
                        format!("its route's case did not take it: {e}")
                    }
                    Err(e) => {
                        self.audit_refusal(by, peer, size, &original, &e).await;
                        return refusal_status(&e);
                    }
                }
            }
        };
        match self.keep(by, peer, &file, &original, why).await {
            Ok(()) => (status::SUCCESS, None),
            Err(e) => {
                tracing::error!(error = %e, "quarantining a received image failed");
                (
                    status::OUT_OF_RESOURCES,
                    Some("it could not be kept".into()),
                )
            }
        }
    }

    /// Keeps an unrouted image in quarantine: the file, then its record.
    async fn keep(
        &self,
        by: &Principal,
        peer: SocketAddr,
        file: &[u8],
        sha256: &str,
        reason: String,
    ) -> anyhow::Result<()> {
        self.quarantine.put(sha256, file).await?;
        let id = pacs::quarantine(
            &self.db,
            by,
            NewQuarantined {
                calling_ae: by.name.trim_start_matches("dicom:").to_owned(),
                peer_address: peer.ip().to_string(),
                original_sha256: sha256.to_owned(),
                size_bytes: i64::try_from(file.len()).unwrap_or(i64::MAX),
                reason,
            },
        )
        .await?;
        tracing::info!(quarantine_id = id, "a received image waits in quarantine");
        Ok(())
    }

    async fn audit_refusal(
        &self,
        by: &Principal,
        peer: SocketAddr,
        size: usize,
        sha256: &str,
        e: &IngestError,
    ) {
        let change = Change::new("dicom.image.refused", "dicom_peer", &by.name).field(
            "file",
            None,
            Some(format!(
                "from {} ({size} bytes, sha256 {sha256}): {e}",
                peer.ip()
            )),
        );
        if let Err(e) = audit::record(&self.db, by, change).await {
            tracing::error!(error = %e, "the refusal could not be audited");
        }
    }
}

/// The status for a file the checks refused, with the reason cut to an
/// Error Comment (LO, 64 characters).
fn refusal_status(e: &IngestError) -> (u16, Option<String>) {
    let status = match e {
        IngestError::TooLarge { .. } | IngestError::Bounds(_) | IngestError::Timeout(_) => {
            status::OUT_OF_RESOURCES
        }
        IngestError::Storage(_) | IngestError::Case(_) | IngestError::Study(_) => {
            status::PROCESSING_FAILURE
        }
        _ => status::CANNOT_UNDERSTAND,
    };
    (status, Some(e.to_string()))
}

/// A DIMSE command's fields this SCP uses.
#[derive(Debug)]
struct Command {
    field: u16,
    message_id: u16,
    sop_class: String,
    sop_instance: String,
}

fn implicit_le() -> &'static dicom_encoding::TransferSyntax {
    TransferSyntaxRegistry
        .get("1.2.840.10008.1.2")
        .expect("implicit VR little endian is always registered")
}

fn read_command(bytes: &[u8]) -> Result<Command, String> {
    let obj =
        InMemDicomObject::read_dataset_with_ts(bytes, implicit_le()).map_err(|e| e.to_string())?;
    let int = |tag: Tag| -> Result<u16, String> {
        obj.element(tag)
            .map_err(|e| e.to_string())?
            .to_int::<u16>()
            .map_err(|e| e.to_string())
    };
    let text = |tag: Tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    Ok(Command {
        field: int(Tag(0x0000, 0x0100))?,
        message_id: int(Tag(0x0000, 0x0110))?,
        sop_class: text(Tag(0x0000, 0x0002)),
        sop_instance: text(Tag(0x0000, 0x1000)),
    })
}

/// A response command (implicit VR little endian, with its group length).
fn response(context: u8, to: &Command, field: u16, status: u16, comment: Option<&str>) -> Pdu {
    let mut obj = InMemDicomObject::new_empty();
    let put = |obj: &mut InMemDicomObject, e: u16, vr: VR, v: PrimitiveValue| {
        obj.put(DataElement::new(Tag(0x0000, e), vr, v));
    };
    if !to.sop_class.is_empty() {
        put(
            &mut obj,
            0x0002,
            VR::UI,
            PrimitiveValue::from(to.sop_class.as_str()),
        );
    }
    put(&mut obj, 0x0100, VR::US, PrimitiveValue::from(field));
    put(
        &mut obj,
        0x0120,
        VR::US,
        PrimitiveValue::from(to.message_id),
    );
    put(&mut obj, 0x0800, VR::US, PrimitiveValue::from(0x0101u16));
    put(&mut obj, 0x0900, VR::US, PrimitiveValue::from(status));
    if let Some(c) = comment {
        let c: String = c.chars().filter(|c| *c != '\\').take(64).collect();
        put(&mut obj, 0x0902, VR::LO, PrimitiveValue::from(c));
    }
    if !to.sop_instance.is_empty() {
        put(
            &mut obj,
            0x1000,
            VR::UI,
            PrimitiveValue::from(to.sop_instance.as_str()),
        );
    }
    let mut body = Vec::new();
    obj.write_dataset_with_ts(&mut body, implicit_le())
        .expect("a command set encodes");
    // Command Group Length (0000,0000) UL, implicit VR: tag, length 4, value.
    let mut data = Vec::with_capacity(body.len() + 12);
    data.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    data.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    data.extend_from_slice(&body);
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context,
            value_type: PDataValueType::Command,
            is_last: true,
            data,
        }],
    }
}

/// The Part 10 file of a received data set: preamble, `DICM`, a file meta
/// group naming the SOP class and instance of the command and the
/// negotiated transfer syntax, then the data set's bytes exactly as sent.
fn part10(command: &Command, ts: &str, dataset: &[u8]) -> Result<Vec<u8>, String> {
    let meta = dicom_object::meta::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(command.sop_class.as_str())
        .media_storage_sop_instance_uid(command.sop_instance.as_str())
        .transfer_syntax(ts.trim_end_matches('\0'))
        .build()
        .map_err(|e| format!("no file meta group can be made: {e}"))?;
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    meta.write(&mut file)
        .map_err(|e| format!("no file meta group can be made: {e}"))?;
    file.extend_from_slice(dataset);
    Ok(file)
}

/// A DIMSE message being received: its command set, then its data set,
/// each in fragments.
#[derive(Default)]
struct Message {
    command: Vec<u8>,
    command_done: bool,
    data: Vec<u8>,
    overflow: bool,
}

/// A message whose last fragment arrived.
struct Done {
    context: u8,
    command: Vec<u8>,
    data: Vec<u8>,
    overflow: bool,
}

impl Message {
    /// Takes one fragment; a whole message when this completes it. A data
    /// set beyond `limit` bytes is counted, not kept.
    fn take(&mut self, value: PDataValue, limit: usize) -> Option<Done> {
        match value.value_type {
            PDataValueType::Command => {
                if self.command_done {
                    // A new message while the last one had no data set.
                    *self = Message::default();
                }
                self.command.extend_from_slice(&value.data);
                if !value.is_last {
                    return None;
                }
                self.command_done = true;
                let has_data = read_data_set_type(&self.command).is_some_and(|t| t != 0x0101);
                if has_data {
                    return None;
                }
            }
            PDataValueType::Data => {
                if self.data.len() + value.data.len() > limit {
                    self.overflow = true;
                    self.data = Vec::new();
                }
                if !self.overflow {
                    self.data.extend_from_slice(&value.data);
                }
                if !value.is_last {
                    return None;
                }
            }
        }
        let done = std::mem::take(self);
        Some(Done {
            context: value.presentation_context_id,
            command: done.command,
            data: done.data,
            overflow: done.overflow,
        })
    }
}

/// Command Data Set Type (0000,0800): 0x0101 when no data set follows.
fn read_data_set_type(command: &[u8]) -> Option<u16> {
    let obj = InMemDicomObject::read_dataset_with_ts(command, implicit_le()).ok()?;
    obj.element(Tag(0x0000, 0x0800)).ok()?.to_int::<u16>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_carries_its_group_length_and_reads_back() {
        let to = Command {
            field: 0x0001,
            message_id: 7,
            sop_class: "1.2.840.10008.5.1.4.1.1.1".into(),
            sop_instance: "1.2.3.4".into(),
        };
        let Pdu::PData { data } = response(1, &to, 0x8001, status::CANNOT_UNDERSTAND, Some("a\\b"))
        else {
            panic!("a P-DATA PDU");
        };
        let bytes = &data[0].data;
        let declared = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(declared, bytes.len() - 12);
        let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], implicit_le()).unwrap();
        let int = |e| {
            obj.element(Tag(0x0000, e))
                .unwrap()
                .to_int::<u16>()
                .unwrap()
        };
        assert_eq!((int(0x0100), int(0x0120), int(0x0900)), (0x8001, 7, 0xC000));
        assert_eq!(
            obj.element(Tag(0x0000, 0x0902))
                .unwrap()
                .to_str()
                .unwrap()
                .trim(),
            "ab"
        );
    }

    #[test]
    fn a_data_set_over_the_limit_is_counted_not_kept() {
        let mut m = Message::default();
        let command = {
            let mut obj = InMemDicomObject::new_empty();
            obj.put(DataElement::new(
                Tag(0x0000, 0x0100),
                VR::US,
                PrimitiveValue::from(1u16),
            ));
            obj.put(DataElement::new(
                Tag(0x0000, 0x0800),
                VR::US,
                PrimitiveValue::from(0u16),
            ));
            let mut b = Vec::new();
            obj.write_dataset_with_ts(&mut b, implicit_le()).unwrap();
            b
        };
        let frag = |t, last, data| PDataValue {
            presentation_context_id: 3,
            value_type: t,
            is_last: last,
            data,
        };
        assert!(m
            .take(frag(PDataValueType::Command, true, command), 10)
            .is_none());
        assert!(m
            .take(frag(PDataValueType::Data, false, vec![0; 8]), 10)
            .is_none());
        let done = m
            .take(frag(PDataValueType::Data, true, vec![0; 8]), 10)
            .expect("the message is whole");
        assert!(done.overflow && done.data.is_empty() && done.context == 3);
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
