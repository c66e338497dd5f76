//! Radiograph ingest: each uploaded file is parsed (off the async threads,
//! with a size and time bound), checked (a CR or DX "for presentation"
//! radiograph, 8–16-bit MONOCHROME1/2 with pixel data), de-identified
//! ([`deid`]), stored by the SHA-256 of the stored object ([`storage`]), and
//! recorded on its case with the SHA-256 of the original file for provenance.
//!
//! A file whose pixels cannot be decoded is refused with its transfer syntax
//! named ([`render`]), so nothing unreadable is ever stored.

pub mod deid;
pub mod fallback;
pub mod parse_bound;
pub mod render;
pub mod scan;
pub mod storage;
pub mod upload;

use deid::{Action, IDENTITY_REMOVED, METHOD, METHOD_BY, METHOD_CODES, PROFILE};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use osteo_trial::audit::Principal;
use osteo_trial::case::{self, CaseError, CaseImage, NewImage, View};
use osteo_trial::store::Db;

use std::collections::HashMap;
use std::time::Duration;

/// Why a file was refused. Each message says what to send instead.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is empty")]
    Empty,
    #[error("the file ({size}) is larger than the limit of {limit}")]
    TooLarge { size: Size, limit: Size },
    #[error("not a DICOM file (Part 10, with the DICM prefix): {0}")]
    NotDicom(String),
    #[error("reading the file took longer than {0} s; it was refused")]
    Timeout(u64),
    #[error(
        "reading the file needed more than {0} MiB of memory or stopped the reader; it was refused"
    )]
    Bounds(u64),
    #[error("modality `{0}` is not a radiograph; upload CR or DX images")]
    Modality(String),
    #[error("this DX image is \"for processing\" (raw detector data); send the \"for presentation\" image")]
    ForProcessing,
    #[error("photometric interpretation `{0}` is not supported; radiographs are MONOCHROME1 or MONOCHROME2")]
    Photometric(String),
    #[error("{0} bits allocated are not supported; radiographs have 8 or 16")]
    Bits(u16),
    #[error("the file has no pixel data")]
    NoPixels,
    #[error(transparent)]
    Unsafe(#[from] scan::Unsafe),
    #[error("the declared size does not fit the image: {0}")]
    Sizes(String),
    #[error("the view cannot be told from the file (View Position `{0}`); choose frontal, lateral or oblique in the upload form")]
    ViewUnknown(String),
    #[error(transparent)]
    Undecodable(#[from] render::RenderError),
    #[error("the pixel data cannot be decoded (transfer syntax {ts}, {name}): {reason}")]
    NotDecoded {
        ts: String,
        name: &'static str,
        reason: String,
    },
    #[error("this radiograph is already stored")]
    Duplicate,
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Study(#[from] osteo_trial::study::StudyError),
    #[error("the image could not be stored: {0}")]
    Storage(String),
}

/// A number of bytes as people read it: `200 MiB`, `1.5 MiB`, `40000 bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: usize = 1024 * 1024;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= MIB => write!(f, "{:.1} MiB", n as f64 / MIB as f64),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Limits on one file.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_bytes: usize,
    pub parse_timeout: Duration,
    /// Reads the file in a bounded child process first ([`parse_bound`]).
    pub parse_bound: Option<parse_bound::ParseBound>,
}

impl Limits {
    /// The limits of the command line's imports: the defaults, each file
    /// read in a child process of this binary under the default memory
    /// bound, as the server does.
    pub fn command_line() -> Limits {
        Limits {
            parse_bound: parse_bound::ParseBound::this_binary(parse_bound::DEFAULT_MEMORY_MIB),
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 200 * 1024 * 1024,
            parse_timeout: Duration::from_secs(20),
            parse_bound: None,
        }
    }
}

/// What the checks found in a file.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub modality: String,
    pub view: Option<View>,
    pub view_position: String,
    pub laterality: Option<String>,
    pub body_part: Option<String>,
    pub rows: u16,
    pub columns: u16,
    pub photometric: String,
    pub bits_allocated: u16,
    pub transfer_syntax: String,
    pub warnings: Vec<String>,
}

/// The tag an attribute is named by: a keyword of the standard dictionary
/// (`PatientID`), or eight hexadecimal digits (`00100020`).
pub fn tag_named(name: &str) -> Option<Tag> {
    use dicom_core::dictionary::DataDictionary;
    let name = name.trim();
    if name.len() == 8 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        let g = u16::from_str_radix(&name[..4], 16).ok()?;
        let e = u16::from_str_radix(&name[4..], 16).ok()?;
        return Some(Tag(g, e));
    }
    dicom_dictionary_std::StandardDataDictionary.parse_tag(name)
}

/// A tag as eight upper-case hexadecimal digits, group then element: a key
/// of DICOM JSON.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.0, tag.1)
}

/// An attribute's text, trimmed; `None` when absent or empty.
pub(crate) fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                .to_owned()
        })
        .filter(|s| !s.is_empty())
}

/// An attribute's value as a number, when it is one.
pub(crate) fn number(obj: &DefaultDicomObject, tag: Tag) -> Option<u16> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u16>().ok())
}

const MODALITY: Tag = Tag(0x0008, 0x0060);
const SOP_CLASS: Tag = Tag(0x0008, 0x0016);
const PRESENTATION_INTENT: Tag = Tag(0x0008, 0x0068);
const VIEW_POSITION: Tag = Tag(0x0018, 0x5101);
const LATERALITY: Tag = Tag(0x0020, 0x0062);
const BODY_PART: Tag = Tag(0x0018, 0x0015);
const ROWS: Tag = Tag(0x0028, 0x0010);
const COLUMNS: Tag = Tag(0x0028, 0x0011);
const PHOTOMETRIC: Tag = Tag(0x0028, 0x0004);
const BITS_ALLOCATED: Tag = Tag(0x0028, 0x0100);
const BURNED_IN: Tag = Tag(0x0028, 0x0301);
const SAMPLES_PER_PIXEL: Tag = Tag(0x0028, 0x0002);
const NUMBER_OF_FRAMES: Tag = Tag(0x0028, 0x0008);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const DX_FOR_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.1.1.1";

/// The view a View Position names (PS3.3 C.8.11.5: AP, PA, LL, RL, …).
pub fn view_of(position: &str) -> Option<View> {
    match position.trim().to_ascii_uppercase().as_str() {
        "AP" | "PA" | "FRONTAL" => Some(View::Frontal),
        "LL" | "RL" | "LAT" | "LATERAL" | "ML" | "LM" | "LATERAL_MEDIAL" | "MEDIAL_LATERAL" => {
            Some(View::Lateral)
        }
        "OBL" | "LO" | "RO" | "OBLIQUE" | "LAO" | "RAO" | "LPO" | "RPO" => Some(View::Oblique),
        _ => None,
    }
}

/// Body parts that are not limb bones: a hint toward exclusion E3.
const NOT_LIMB: &[&str] = &[
    "SPINE", "CSPINE", "TSPINE", "LSPINE", "SSPINE", "PELVIS", "CHEST", "SKULL", "HEAD", "ABDOMEN",
    "SACRUM", "COCCYX", "HIP",
];

/// How a file's pixels decode.
pub enum Decoded {
    /// By dicom-rs, as the file is.
    InPlace,
    /// By DCMTK ([`fallback`]): the uncompressed file, and a warning saying so.
    Decompressed { raw: Vec<u8>, note: String },
}

/// Decodes the first frame of `obj` (parsed from `bytes`) with dicom-rs, or
/// — for the transfer syntaxes it cannot decode — decompresses the file
/// with DCMTK and decodes that. An error names the transfer syntax.
pub fn decode_or_decompress(
    bytes: &[u8],
    obj: &DefaultDicomObject,
) -> Result<Decoded, IngestError> {
    let Err(e) = render::to_image(obj, None) else {
        return Ok(Decoded::InPlace);
    };
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let Some((name, tool)) = fallback::tool_for(&ts) else {
        return Err(e.into());
    };
    let not_decoded = |reason: String| IngestError::NotDecoded {
        ts: ts.clone(),
        name,
        reason,
    };
    // The uncompressed file DCMTK wrote is checked from the start by the
    // caller ([`inspect`] decodes it like any other).
    let raw = fallback::decompress(bytes, tool, fallback::TIME_LIMIT).map_err(not_decoded)?;
    Ok(Decoded::Decompressed {
        note: format!("{name} ({ts}) decoded by DCMTK's {tool}; stored uncompressed"),
        raw,
    })
}

/// Whether `uid` is a UID (PS3.5 9.1): digits and dots, 1 to 64 of them.
fn is_uid(uid: &str) -> bool {
    (1..=64).contains(&uid.len()) && uid.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Parses and checks one file (blocking: run it off the async threads).
pub fn inspect(bytes: &[u8]) -> Result<(DefaultDicomObject, Inspected), IngestError> {
    inspect_with(bytes, true)
}

/// [`inspect`] of a fallback decoder's output: no second fallback.
fn inspect_native(bytes: &[u8]) -> Result<(DefaultDicomObject, Inspected), IngestError> {
    inspect_with(bytes, false)
}

fn inspect_with(
    bytes: &[u8],
    fallback_allowed: bool,
) -> Result<(DefaultDicomObject, Inspected), IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty);
    }
    scan::check_lengths(bytes)?;
    let obj = OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| IngestError::NotDicom(e.to_string()))?;
    let sop = obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_owned();
    // The SOP Class UIDs (meta group and data set) are what the stored
    // copy's meta group is written from: a value that is not a UID (bytes
    // outside digits and dots) would be written longer than its group
    // length says, and the stored file would not read back (the fuzzer
    // found one, `fuzz/regressions/dicom_ingest`).
    let sop_dataset = text(&obj, SOP_CLASS).unwrap_or_default();
    for uid in [&sop, &sop_dataset] {
        if !is_uid(uid) {
            return Err(IngestError::NotDicom(format!(
                "the SOP Class UID {:?} is not a UID (digits and dots, at most 64)",
                uid.chars().take(64).collect::<String>()
            )));
        }
    }
    let modality = text(&obj, MODALITY).unwrap_or_default();
    if !matches!(modality.as_str(), "CR" | "DX") {
        return Err(IngestError::Modality(if modality.is_empty() {
            "none".into()
        } else {
            modality
        }));
    }
    let intent = text(&obj, PRESENTATION_INTENT).unwrap_or_default();
    if sop == DX_FOR_PROCESSING || sop_dataset == DX_FOR_PROCESSING || intent == "FOR PROCESSING" {
        return Err(IngestError::ForProcessing);
    }
    let photometric = text(&obj, PHOTOMETRIC).unwrap_or_default();
    if !matches!(photometric.as_str(), "MONOCHROME1" | "MONOCHROME2") {
        return Err(IngestError::Photometric(photometric));
    }
    let bits_allocated = number(&obj, BITS_ALLOCATED).unwrap_or(0);
    if !matches!(bits_allocated, 8 | 16) {
        return Err(IngestError::Bits(bits_allocated));
    }
    if obj.element_opt(PIXEL_DATA).ok().flatten().is_none() {
        return Err(IngestError::NoPixels);
    }
    let rows = number(&obj, ROWS).unwrap_or(0);
    let columns = number(&obj, COLUMNS).unwrap_or(0);
    check_sizes(&obj, rows, columns, bits_allocated)?;
    let view_position = text(&obj, VIEW_POSITION).unwrap_or_default();
    let body_part = text(&obj, BODY_PART);
    let mut warnings = Vec::new();
    if let Some(part) = &body_part {
        if NOT_LIMB.contains(&part.to_ascii_uppercase().as_str()) {
            warnings.push(format!(
                "body part {part} is not a limb bone: consider exclusion E3"
            ));
        }
    }
    if rows.min(columns) < 512 {
        warnings.push(format!(
            "a small image ({columns} × {rows} pixels): check it can be read"
        ));
    }
    if text(&obj, BURNED_IN).as_deref() == Some("YES") {
        warnings.push("burned-in annotation: the pixels may show identifying text".into());
    }
    let transfer_syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    // Nothing unreadable is stored: the pixels must decode (this also
    // refuses declared sizes that the pixel data does not fill) — by
    // dicom-rs, or for what it cannot decode by DCMTK, whose uncompressed
    // output is then checked from the start.
    let decoded = if fallback_allowed {
        decode_or_decompress(bytes, &obj)?
    } else {
        render::to_image(&obj, None)?;
        Decoded::InPlace
    };
    if let Decoded::Decompressed { raw, note } = decoded {
        let (obj, mut inspected) = inspect_native(&raw)?;
        inspected.warnings.push(note);
        return Ok((obj, inspected));
    }
    let inspected = Inspected {
        modality,
        view: view_of(&view_position),
        view_position,
        laterality: text(&obj, LATERALITY),
        body_part,
        rows,
        columns,
        photometric,
        bits_allocated,
        transfer_syntax,
        warnings,
    };
    Ok((obj, inspected))
}

/// The most pixels one radiograph may have (a 43 × 43 cm detector at
/// 0.1 mm is 4,300 × 4,300 = 18.5 million): larger declarations are refused
/// before anything is decoded, so a corrupt header cannot make the decoder
/// reserve gigabytes.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Checks the declared rows, columns, samples and frames against each other
/// and, for uncompressed pixel data, against the bytes present.
fn check_sizes(
    obj: &DefaultDicomObject,
    rows: u16,
    columns: u16,
    bits_allocated: u16,
) -> Result<(), IngestError> {
    if rows == 0 || columns == 0 {
        return Err(IngestError::Sizes(format!(
            "{columns} columns × {rows} rows"
        )));
    }
    let samples = u64::from(number(obj, SAMPLES_PER_PIXEL).unwrap_or(1).max(1));
    let frames = text(obj, NUMBER_OF_FRAMES)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let pixels = u64::from(rows) * u64::from(columns) * samples * frames;
    if pixels > MAX_PIXELS {
        return Err(IngestError::Sizes(format!(
            "{columns} × {rows} pixels × {samples} samples × {frames} frames is more than {MAX_PIXELS} values"
        )));
    }
    let element = obj.element(PIXEL_DATA).map_err(|_| IngestError::NoPixels)?;
    if let dicom_core::DicomValue::Primitive(value) = element.value() {
        let needed = pixels * u64::from(bits_allocated) / 8;
        let present = value.calculate_byte_len() as u64;
        if present < needed {
            return Err(IngestError::Sizes(format!(
                "the pixel data holds {present} bytes where {columns} × {rows} pixels at {bits_allocated} bits need {needed}"
            )));
        }
    }
    Ok(())
}

/// The instance UIDs of the object that de-identification replaces.
pub fn uids(obj: &DefaultDicomObject) -> Vec<String> {
    PROFILE
        .iter()
        .filter(|(_, _, a)| *a == Action::NewUid)
        .filter_map(|(tag, _, _)| text(obj, *tag))
        .collect()
}

/// Applies the profile: identifiers removed, patient name and ID replaced
/// by the study number, UIDs replaced through `map`, private attributes
/// removed, and the de-identification recorded in the object.
///
/// With `shift_days` (the study's `shift` setting for dates) every date is
/// moved by that many days ([`shift_dates`], PS3.15 Modified Dates Option);
/// without, dates are kept (Full Dates Option). Longitudinal Temporal
/// Information Modified (0028,0303) says which.
pub fn deidentify(
    obj: &mut DefaultDicomObject,
    study_number: &str,
    map: &HashMap<String, String>,
    shift_days: Option<i64>,
) {
    for (tag, _, action) in PROFILE {
        match action {
            Action::Remove => {
                obj.remove_element(*tag);
            }
            Action::Empty(vr) => {
                obj.put(DataElement::new(*tag, *vr, PrimitiveValue::Empty));
            }
            Action::StudyNumber => {
                let vr = if tag.element() == 0x0010 {
                    VR::PN
                } else {
                    VR::LO
                };
                obj.put(DataElement::new(
                    *tag,
                    vr,
                    PrimitiveValue::from(study_number),
                ));
            }
            Action::NewUid => {
                if let Some(old) = text(obj, *tag) {
                    if let Some(new) = map.get(&old) {
                        obj.put(DataElement::new(
                            *tag,
                            VR::UI,
                            PrimitiveValue::from(new.as_str()),
                        ));
                    }
                }
            }
        }
    }
    let private: Vec<Tag> = obj
        .iter()
        .map(|e| e.header().tag)
        .filter(|t| t.group() % 2 == 1)
        .collect();
    for t in private {
        obj.remove_element(t);
    }
    obj.put(DataElement::new(
        IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    if let Some(days) = shift_days {
        shift_dates(obj, days);
    }
    let methods = deid::methods(shift_days.is_some());
    let said: dicom_core::value::C<String> = methods
        .iter()
        .map(|(_, meaning)| (*meaning).to_owned())
        .chain([METHOD_BY.to_owned()])
        .collect();
    obj.put(DataElement::new(METHOD, VR::LO, PrimitiveValue::Strs(said)));
    let items: Vec<dicom_object::InMemDicomObject> = methods
        .iter()
        .map(|(value, meaning)| {
            dicom_object::InMemDicomObject::from_element_iter([
                DataElement::new(Tag(0x0008, 0x0100), VR::SH, PrimitiveValue::from(*value)),
                DataElement::new(Tag(0x0008, 0x0102), VR::SH, PrimitiveValue::from("DCM")),
                DataElement::new(Tag(0x0008, 0x0104), VR::LO, PrimitiveValue::from(*meaning)),
            ])
        })
        .collect();
    obj.put(DataElement::new(
        METHOD_CODES,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(items),
    ));
    obj.put(DataElement::new(
        TEMPORAL_MODIFIED,
        VR::CS,
        PrimitiveValue::from(if shift_days.is_some() {
            "MODIFIED"
        } else {
            "UNMODIFIED"
        }),
    ));
    // The stored copy's meta group is this software's: the writer's
    // implementation, no sender's application titles or private data (they
    // name the sending site), and a group length computed again. An
    // upload's own free-text meta values may hold bytes that dicom-rs
    // writes longer than it counts, and the stored file would not read
    // back (the fuzzer found two, `fuzz/regressions/dicom_ingest`).
    let sop = text(obj, Tag(0x0008, 0x0018));
    obj.update_meta(|m| {
        if let Some(sop) = sop {
            m.media_storage_sop_instance_uid = sop;
        }
        m.implementation_class_uid = dicom_object::IMPLEMENTATION_CLASS_UID.to_owned();
        m.implementation_version_name = Some(dicom_object::IMPLEMENTATION_VERSION_NAME.to_owned());
        m.source_application_entity_title = None;
        m.sending_application_entity_title = None;
        m.receiving_application_entity_title = None;
        m.private_information_creator_uid = None;
        m.private_information = None;
    });
}

/// Longitudinal Temporal Information Modified (PS3.3 C.12.1).
pub const TEMPORAL_MODIFIED: Tag = Tag(0x0028, 0x0303);

/// Moves every date — each DA value, and the date part of each DT value —
/// by `days`, in the dataset and in every sequence item. A value that is
/// not a full date (a DT of only a year, or a malformed one) is emptied
/// rather than left unshifted.
pub fn shift_dates(obj: &mut dicom_object::InMemDicomObject, days: i64) {
    let tags: Vec<(Tag, VR)> = obj
        .iter()
        .map(|e| (e.header().tag, e.header().vr))
        .collect();
    for (tag, vr) in tags {
        match vr {
            VR::DA | VR::DT => {
                let Some(old) = obj
                    .element(tag)
                    .ok()
                    .and_then(|e| e.to_multi_str().ok())
                    .map(|v| v.to_vec())
                else {
                    continue;
                };
                let new: dicom_core::value::C<String> = old
                    .iter()
                    .map(|v| shift_date(v.trim_matches(|c: char| c == '\0' || c == ' '), days))
                    .collect();
                obj.put(DataElement::new(tag, vr, PrimitiveValue::Strs(new)));
            }
            VR::SQ => {
                obj.update_value(tag, |v| {
                    if let Some(items) = v.items_mut() {
                        for item in items.iter_mut() {
                            shift_dates(item, days);
                        }
                    }
                });
            }
            _ => {}
        }
    }
}

/// One DA (`YYYYMMDD`) or DT (`YYYYMMDD…`) value moved by `days`.
pub fn shift_date(value: &str, days: i64) -> String {
    if value.is_empty() {
        return String::new();
    }
    let Some(date) = value
        .get(..8)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
    else {
        return String::new();
    };
    match date.checked_add_signed(chrono::Duration::days(days)) {
        Some(moved) => format!("{}{}", moved.format("%Y%m%d"), &value[8..]),
        None => String::new(),
    }
}

/// Encodes the object as a Part 10 file.
pub fn encode(obj: &DefaultDicomObject) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    obj.write_all(&mut out)
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    Ok(out)
}

pub use osteo_trial::store::sha256_hex;

/// One file's outcome.
#[derive(Debug)]
pub struct Stored {
    pub image: CaseImage,
    pub warnings: Vec<String>,
    /// The stored object's UIDs, as de-identification made them.
    pub uids: InstanceUids,
}

/// The UIDs a stored (de-identified) object goes by, as DICOMweb names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceUids {
    pub study: String,
    pub series: String,
    pub instance: String,
    pub sop_class: String,
}

impl InstanceUids {
    pub fn of(obj: &DefaultDicomObject) -> InstanceUids {
        let t = |g, e| text(obj, Tag(g, e)).unwrap_or_default();
        InstanceUids {
            study: t(0x0020, 0x000D),
            series: t(0x0020, 0x000E),
            instance: t(0x0008, 0x0018),
            sop_class: t(0x0008, 0x0016),
        }
    }
}

/// A file that passed the checks and is not stored yet: the parsed object
/// (its identifiers still in it) and what the checks found.
pub struct Checked {
    pub obj: DefaultDicomObject,
    pub inspected: Inspected,
    /// SHA-256 of the file as received.
    pub original_sha256: String,
    /// The file as received.
    pub bytes: Vec<u8>,
}

/// Checks one file as every entry point does — its size, the bounded
/// child-process read, the parse under a time limit, the radiograph checks
/// — without storing anything.
pub async fn check(bytes: Vec<u8>, limits: &Limits) -> Result<Checked, IngestError> {
    if bytes.len() > limits.max_bytes {
        return Err(IngestError::TooLarge {
            size: Size(bytes.len()),
            limit: Size(limits.max_bytes),
        });
    }
    let original_sha256 = sha256_hex(&bytes);
    if let Some(bound) = &limits.parse_bound {
        bound.check(&bytes, limits.parse_timeout).await?;
    }
    let parse = tokio::task::spawn_blocking(move || inspect(&bytes).map(|read| (read, bytes)));
    let ((obj, inspected), bytes) = tokio::time::timeout(limits.parse_timeout, parse)
        .await
        .map_err(|_| IngestError::Timeout(limits.parse_timeout.as_secs().max(1)))?
        .map_err(|e| IngestError::Storage(e.to_string()))??;
    Ok(Checked {
        obj,
        inspected,
        original_sha256,
        bytes,
    })
}

/// Ingests one file for a case: check, de-identify, store, record.
#[tracing::instrument(skip_all, fields(case_id, bytes = bytes.len()))]
pub async fn ingest(
    db: &Db,
    store: &dyn storage::ObjectStore,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    bytes: Vec<u8>,
    view_override: Option<View>,
    limits: Limits,
) -> Result<Stored, IngestError> {
    if bytes.len() > limits.max_bytes {
        return Err(IngestError::TooLarge {
            size: Size(bytes.len()),
            limit: Size(limits.max_bytes),
        });
    }
    // The case and a repeated upload are refused before the file is read.
    case::study_number(db, case_id).await?;
    if case::image_by_original(db, &sha256_hex(&bytes))
        .await?
        .is_some()
    {
        return Err(IngestError::Duplicate);
    }
    let checked = check(bytes, &limits).await?;
    store_checked(db, store, by, case_id, checked, view_override).await
}

/// Stores a checked file on a case: de-identified with the case's study
/// number and date shift, stored by its hash, recorded on the case.
pub async fn store_checked(
    db: &Db,
    store: &dyn storage::ObjectStore,
    by: &Principal,
    case_id: osteo_trial::domain::CaseId,
    checked: Checked,
    view_override: Option<View>,
) -> Result<Stored, IngestError> {
    let Checked {
        mut obj,
        inspected,
        original_sha256,
        bytes: _,
    } = checked;
    let study_number = case::study_number(db, case_id).await?;
    if case::image_by_original(db, &original_sha256)
        .await?
        .is_some()
    {
        return Err(IngestError::Duplicate);
    }
    let view = match (view_override, inspected.view) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => return Err(IngestError::ViewUnknown(inspected.view_position.clone())),
    };
    let map = case::map_uids(db, by, &uids(&obj)).await?;
    let shift_days = osteo_trial::study::date_shift(db, case_id).await?;
    let (encoded, uids) = tokio::task::spawn_blocking(move || {
        deidentify(&mut obj, &study_number, &map, shift_days);
        Ok::<_, IngestError>((encode(&obj)?, InstanceUids::of(&obj)))
    })
    .await
    .map_err(|e| IngestError::Storage(e.to_string()))??;
    let sha256 = sha256_hex(&encoded);
    store
        .put(&sha256, &encoded)
        .await
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    let image = case::attach_image(
        db,
        by,
        case_id,
        NewImage {
            view,
            sha256,
            original_sha256,
            modality: inspected.modality.clone(),
            transfer_syntax: inspected.transfer_syntax.clone(),
            rows: i64::from(inspected.rows),
            columns: i64::from(inspected.columns),
            photometric: inspected.photometric.clone(),
            body_part: inspected.body_part.clone(),
            laterality: inspected.laterality.clone(),
            warnings: inspected.warnings.clone(),
        },
    )
    .await
    .map_err(|e| match e {
        CaseError::DuplicateImage => IngestError::Duplicate,
        e => IngestError::Case(e),
    })?;
    Ok(Stored {
        image,
        warnings: inspected.warnings,
        uids,
    })
}

/// Makes something from a stored object off the async threads; `None`
/// when no such object is stored.
async fn from_stored(
    store: &dyn storage::ObjectStore,
    sha256: &str,
    make: impl FnOnce(&dicom_object::DefaultDicomObject) -> Result<Vec<u8>, IngestError>
        + Send
        + 'static,
) -> Result<Option<Vec<u8>>, IngestError> {
    let Some(bytes) = store
        .get(sha256)
        .await
        .map_err(|e| IngestError::Storage(e.to_string()))?
    else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || {
        let obj = OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(bytes))
            .map_err(|e| IngestError::NotDicom(e.to_string()))?;
        make(&obj).map(Some)
    })
    .await
    .map_err(|e| IngestError::Storage(e.to_string()))?
}

/// Reads a cached rendering, or makes it ([`from_stored`]) and caches it.
/// The cache is an optimisation: failing to write it is not an error.
async fn cached(
    store: &dyn storage::ObjectStore,
    cache_dir: &std::path::Path,
    sha256: &str,
    name: &str,
    make: impl FnOnce(&dicom_object::DefaultDicomObject) -> Result<Vec<u8>, IngestError>
        + Send
        + 'static,
) -> Result<Option<Vec<u8>>, IngestError> {
    let cached = cache_dir.join(&sha256[..2]).join(name);
    if let Ok(bytes) = tokio::fs::read(&cached).await {
        return Ok(Some(bytes));
    }
    let Some(out) = from_stored(store, sha256, make).await? else {
        return Ok(None);
    };
    if let Some(dir) = cached.parent() {
        if tokio::fs::create_dir_all(dir).await.is_ok() {
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            if tokio::fs::write(&tmp, &out).await.is_ok() {
                let _ = tokio::fs::rename(&tmp, &cached).await;
            }
        }
    }
    Ok(Some(out))
}

/// A rendered PNG of a stored object fitted into `size` pixels, through
/// `window` (modality units) or the default window; the default rendering
/// is cached by hash and size, a reader's windows are not (each drag would
/// leave a file).
pub async fn preview(
    store: &dyn storage::ObjectStore,
    cache_dir: &std::path::Path,
    sha256: &str,
    size: u32,
    window: Option<osteo_model::pixels::Window>,
) -> Result<Option<Vec<u8>>, IngestError> {
    let make = move |obj: &DefaultDicomObject| Ok(render::png(obj, size, window)?);
    match window {
        Some(_) => from_stored(store, sha256, make).await,
        None => {
            cached(
                store,
                cache_dir,
                sha256,
                &format!("{sha256}-{size}.png"),
                make,
            )
            .await
        }
    }
}

/// The default window and value range of a stored object (JSON), cached.
pub async fn window_info(
    store: &dyn storage::ObjectStore,
    cache_dir: &std::path::Path,
    sha256: &str,
) -> Result<Option<Vec<u8>>, IngestError> {
    cached(
        store,
        cache_dir,
        sha256,
        &format!("{sha256}-window.json"),
        |obj| {
            let info = render::window_info(obj)?;
            serde_json::to_vec(&info).map_err(|e| IngestError::Storage(e.to_string()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::shift_date;

    #[test]
    fn dates_move_by_whole_days_and_keep_their_time() {
        assert_eq!(shift_date("20250301", -1), "20250228");
        assert_eq!(shift_date("20240301", -1), "20240229", "a leap year");
        assert_eq!(shift_date("20250102", -365), "20240103");
        assert_eq!(
            shift_date("20251002101500.25+0800", -10),
            "20250922101500.25+0800"
        );
        // Not a full date: emptied, never left as it was.
        assert_eq!(shift_date("2025", -1), "");
        assert_eq!(shift_date("2025-10-02", -1), "");
        assert_eq!(shift_date("", -1), "");
    }
}

/// What DICOMweb needs of a stored object: its UIDs, its transfer syntax
/// and its data set as DICOM JSON (PS3.18 F.2). Read from the object once
/// and cached by its hash, which never goes stale: the object behind a hash
/// never changes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InstanceRecord {
    pub uids: InstanceUids,
    pub transfer_syntax: String,
    /// The data set without bulk data: the pixel data, and any other binary
    /// value over [`INLINE_LIMIT`] bytes, are left out (their bytes are in
    /// the object WADO-RS returns).
    pub metadata: serde_json::Value,
}

/// The largest binary value a metadata record carries inline.
pub const INLINE_LIMIT: u32 = 1024;

/// The [`InstanceRecord`] of a stored object; `None` when no such object is
/// stored.
pub async fn instance_record(
    store: &dyn storage::ObjectStore,
    cache_dir: &std::path::Path,
    sha256: &str,
) -> Result<Option<InstanceRecord>, IngestError> {
    let json = cached(
        store,
        cache_dir,
        sha256,
        &format!("{sha256}-instance-v1.json"),
        |obj| {
            serde_json::to_vec(&InstanceRecord::of(obj)?)
                .map_err(|e| IngestError::Storage(e.to_string()))
        },
    )
    .await?;
    json.map(|j| serde_json::from_slice(&j).map_err(|e| IngestError::Storage(e.to_string())))
        .transpose()
}

impl InstanceRecord {
    pub fn of(obj: &DefaultDicomObject) -> Result<InstanceRecord, IngestError> {
        use dicom_core::header::{HasLength, Header};
        let bulk = |e: &dicom_object::mem::InMemElement| {
            e.tag() == Tag(0x7FE0, 0x0010)
                || (matches!(
                    e.vr(),
                    VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
                ) && e.length().get().is_none_or(|l| l > INLINE_LIMIT))
        };
        let data_set = dicom_object::InMemDicomObject::from_element_iter(
            obj.iter().filter(|e| !bulk(e)).cloned(),
        );
        Ok(InstanceRecord {
            uids: InstanceUids::of(obj),
            transfer_syntax: obj
                .meta()
                .transfer_syntax()
                .trim_end_matches(['\0', ' '])
                .to_owned(),
            metadata: dicom_json::to_value(&data_set)
                .map_err(|e| IngestError::Storage(format!("DICOM JSON: {e}")))?,
        })
    }
}

/// A stored object as a Part 10 file in the transfer syntax `ts`: the
/// stored bytes when it is already in it, otherwise transcoded (the pixel
/// data decoded, then encoded in `ts`); `None` when no such object is
/// stored. A transfer syntax that cannot be reached is an error.
pub async fn stored_in(
    store: &dyn storage::ObjectStore,
    sha256: &str,
    stored_ts: &str,
    ts: &str,
) -> Result<Option<Vec<u8>>, IngestError> {
    if ts == stored_ts {
        return store
            .get(sha256)
            .await
            .map_err(|e| IngestError::Storage(e.to_string()));
    }
    let target = ts.to_owned();
    from_stored(store, sha256, move |obj| {
        use dicom_encoding::TransferSyntaxIndex;
        use dicom_pixeldata::Transcode;
        let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
            .get(&target)
            .ok_or_else(|| IngestError::NotDicom(format!("unknown transfer syntax {target}")))?;
        let mut obj = obj.clone();
        obj.transcode(syntax)
            .map_err(|e| IngestError::NotDicom(format!("cannot be transcoded to {target}: {e}")))?;
        encode(&obj)
    })
    .await
}
