//! The DICOM C-STORE SCP (`serve --dicom-port 11112 --dicom-ae OSTEO`),
//! written on dicom-ul's asynchronous upper layer.
//!
//! - **Who may call.** The calling AE title, and the IP address where one is
//!   set, must be an allowed peer of the study (`osteo_trial::pacs`, set by
//!   the administrator or the principal investigator); the called AE title
//!   must be ours. Anything else is rejected at association and audited.
//! - **What is negotiated.** Verification (C-ECHO), and C-STORE of CR, DX
//!   (for presentation and for processing) and Secondary Capture, in the
//!   transfer syntaxes the upload decodes ([`TRANSFER_SYNTAXES`]). Every
//!   other abstract or transfer syntax is refused at negotiation.
//! - **What arrives.** A received object becomes the Part 10 file it was
//!   (file meta from the negotiated transfer syntax, the data set as sent,
//!   never re-encoded) and goes to [`Receiver::receive`], the path every
//!   door shares.
//! - **What the sender hears.** Success once the object is kept (on its
//!   case, already, or in quarantine); a file the checks refuse gets a
//!   failure status with the reason in Error Comment; an object over the
//!   size limit gets "out of resources".

use super::{failure_status, principal, status, Received, Receiver, Sender};
use crate::imaging;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::pdu::{AssociationRJServiceUserReason, PDataValue, PDataValueType, UserIdentity};
use dicom_ul::Pdu;
use osteo_trial::audit::{self, Change, Principal};
use osteo_trial::pacs;
use std::net::{IpAddr, SocketAddr};
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

/// Where the DICOM listener runs (from `serve --dicom-port/--dicom-ae`).
#[derive(Debug, Clone)]
pub struct DicomSettings {
    pub bind: SocketAddr,
    /// Our AE title: callers must call it.
    pub ae_title: String,
    /// DICOM over TLS, when set (`--dicom-tls-cert/--dicom-tls-key`).
    pub tls: Option<TlsFiles>,
}

/// The PEM files of DICOM over TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// This server's certificate chain.
    pub cert: std::path::PathBuf,
    /// Its private key.
    pub key: std::path::PathBuf,
    /// When set, callers must present a certificate signed by one of these
    /// authorities (mutual TLS), besides being an allowed peer.
    pub client_ca: Option<std::path::PathBuf>,
}

impl TlsFiles {
    /// The TLS configuration: TLS 1.2 and 1.3 with rustls's safe defaults
    /// (which meet the BCP 195 profile of PS3.15 B.9). Every fault names
    /// the file.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use anyhow::Context;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|c| c.collect::<Result<_, _>>())
            .with_context(|| format!("reading the certificates in {}", self.cert.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{} holds no certificate",
            self.cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading the private key in {}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("the TLS protocol versions")?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .with_context(|| format!("reading the authorities in {}", ca.display()))?
                {
                    roots
                        .add(c.with_context(|| format!("reading {}", ca.display()))?)
                        .with_context(|| format!("an authority in {}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .with_context(|| format!("the client authorities of {}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).with_context(|| {
            format!(
                "the key in {} does not go with the certificate in {}",
                self.key.display(),
                self.cert.display()
            )
        })?;
        Ok(Arc::new(config))
    }
}

/// The listener: our AE title, and the receiver behind it.
pub struct Scp {
    pub receiver: Receiver,
    pub ae_title: String,
    /// DICOM over TLS (PS3.15 B.9, the BCP 195 profile): the listener
    /// speaks TLS only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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
        let peers = match pacs::peers(&self.receiver.db).await {
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
        let refused = |e: dicom_ul::association::Error| {
            let seen = check.seen.lock().ok().and_then(|s| s.clone());
            (seen, e.to_string())
        };
        match &self.tls {
            None => match options.establish_async(socket).await {
                Ok(a) => self.exchange(a, peer, &check.peers).await,
                Err(e) => {
                    let (seen, e) = refused(e);
                    self.refused(peer, seen, &e).await;
                }
            },
            Some(tls) => match options
                .tls_config(tls.clone())
                .establish_tls_async(socket)
                .await
            {
                Ok(a) => self.exchange(a, peer, &check.peers).await,
                Err(e) => {
                    let (seen, e) = refused(e);
                    self.refused(peer, seen, &e).await;
                }
            },
        }
    }

    /// An established association's messages, until release.
    async fn exchange<S>(
        &self,
        mut association: dicom_ul::association::server::AsyncServerAssociation<S>,
        peer: SocketAddr,
        peers: &[pacs::Peer],
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        let calling = dicom_ul::association::Association::peer_ae_title(&association)
            .trim()
            .to_owned();
        tracing::info!(calling_ae = %calling, address = %peer.ip(), "DICOM association accepted");
        let by = principal(&calling);
        let from = Sender {
            name: calling.clone(),
            address: peer.ip(),
            study_number_tag: pacs::peer_of(peers, &calling, peer.ip())
                .and_then(|p| p.study_number_tag.as_deref())
                .and_then(imaging::tag_named),
        };
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
                        let Some(done) = message.take(value, self.receiver.limits.max_bytes) else {
                            continue;
                        };
                        let reply = self.answer(&association, done, &by, &from).await;
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
        if let Err(e) = audit::record(&self.receiver.db, &principal(&calling), change).await {
            tracing::error!(error = %e, "the refused association could not be audited");
        }
    }

    /// The response to a complete message, if it needs one.
    async fn answer<S>(
        &self,
        association: &dicom_ul::association::server::AsyncServerAssociation<S>,
        done: Done,
        by: &Principal,
        from: &Sender,
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
                            imaging::Size(self.receiver.limits.max_bytes)
                        )),
                    )
                } else {
                    match part10(&command, &ts, &done.data) {
                        Err(e) => (status::CANNOT_UNDERSTAND, Some(e)),
                        Ok(file) => self.store(file, by, from).await,
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

    /// Stores one received file through the shared receiver: the status
    /// and error comment for the sender.
    async fn store(&self, file: Vec<u8>, by: &Principal, from: &Sender) -> (u16, Option<String>) {
        match self.receiver.receive(file, by, from).await.outcome {
            Received::Stored { .. } | Received::AlreadyHeld | Received::Quarantined(_) => {
                (status::SUCCESS, None)
            }
            Received::Refused(e) => (failure_status(&e), Some(e.to_string())),
            Received::Failed(why) => (status::PROCESSING_FAILURE, Some(why.to_owned())),
        }
    }
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
