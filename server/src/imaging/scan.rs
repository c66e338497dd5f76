//! A walk over a file's element headers before it is parsed: no element may
//! declare more bytes than are left in the file.
//!
//! dicom-rs reserves an element's declared length before reading it, so a
//! damaged length (say 4 GiB in a 5 KB file, which the fuzz test in
//! `tests/tests/images.rs` made) had the parser fill gigabytes of zeros
//! for a minute before failing. This walk reads only headers — skipping
//! each value, descending into sequences and items, skipping the fragments
//! of encapsulated pixel data — so whatever the parser reserves afterwards
//! is bounded by the file's size, which the upload limit bounds. Errors
//! other than an oversized length are left to the parser to report.
//!
//! A deflated data set (Deflated Explicit VR Little Endian) is first
//! inflated into nothing, counting, and refused when it inflates to more
//! than [`MAX_INFLATED`]: a 2 MB file of compressed zeros inflates to 2 GB,
//! and the parser would hold all of it. Within the bound, the walk runs
//! over the inflated stream, against the inflated length. Nothing is
//! stored on the way, so refusing a bomb costs a few hundred milliseconds
//! of one thread and no memory.

use dicom_core::header::{HasLength, Header};
use dicom_core::{Tag, VR};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_parser::stateful::decode::{DynStatefulDecoder, StatefulDecode};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::io::{Cursor, Read};

const PREAMBLE: usize = 128;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";

/// The most bytes a deflated data set may inflate to: the largest image
/// accepted ([`super::MAX_PIXELS`] values of 16 bits) and 16 MiB for the
/// rest of the data set.
pub const MAX_INFLATED: u64 = super::MAX_PIXELS * 2 + 16 * 1024 * 1024;

/// Why the walk refused a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    /// An element that declares more bytes than the file has left.
    #[error("the file cannot be read safely (damaged, or a sequence this reader cannot follow): element {tag} at byte {at} declares {declared} bytes where {left} remain")]
    Oversized {
        tag: Tag,
        at: u64,
        declared: u32,
        left: u64,
    },
    /// A file meta group whose headers cannot be followed to the end its
    /// group length declares. dicom-rs reads the meta group with a reader
    /// of its own, which took such bytes for a length and reserved it:
    /// 1.4 GB for a 1.5 KB file the fuzzer wrote (`fuzz/regressions`).
    #[error("the file meta group cannot be read: the element header at byte {at} is damaged")]
    MetaUnreadable { at: u64 },
    /// A value of numbers whose length is not a whole number of them (an
    /// SL of 10 bytes). dicom-rs reads the whole numbers and leaves the rest,
    /// so its next header would start inside the value, where a 1.5 KB file
    /// the fuzzer wrote had it reserve 1.3 GB (`fuzz/regressions`).
    #[error("the file cannot be read safely: element {tag} at byte {at} ({vr}) declares {declared} bytes, not a whole number of its {size}-byte values")]
    Misaligned {
        tag: Tag,
        at: u64,
        vr: VR,
        declared: u32,
        size: u32,
    },
    /// A deflated data set that inflates beyond [`MAX_INFLATED`].
    #[error("the deflated data set inflates to more than {} MiB, more than any radiograph; it was refused", MAX_INFLATED / (1024 * 1024))]
    Inflates,
}

/// Walks the headers of a Part 10 file (preamble, `DICM`, meta group, data
/// set). `Ok` also when the walk stops at something else it cannot read:
/// the parser reports that.
pub fn check_lengths(bytes: &[u8]) -> Result<(), Unsafe> {
    if bytes.len() < PREAMBLE + 4 || &bytes[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return Ok(());
    }
    let start = (PREAMBLE + 4) as u64;
    let Some(explicit) = TransferSyntaxRegistry.get(EXPLICIT_VR_LE) else {
        return Ok(());
    };
    // The meta group is explicit VR little endian; the data set starts
    // where it ends.
    let (dataset_at, ts_uid) = match walk_meta(bytes, start, explicit)? {
        Some(at) => {
            let meta = match dicom_object::meta::FileMetaTable::from_reader(Cursor::new(
                &bytes[PREAMBLE..],
            )) {
                Ok(m) => m,
                Err(_) => return Ok(()),
            };
            (at, meta.transfer_syntax().to_owned())
        }
        None => return Ok(()),
    };
    if ts_uid.trim_end_matches('\0') == DEFLATED_EXPLICIT_VR_LE {
        let deflated = bytes.get(dataset_at as usize..).unwrap_or_default();
        let inflated = inflated_length(deflated)?;
        let inflate = flate2::read::DeflateDecoder::new(deflated);
        return walk(inflate, 0, inflated, explicit);
    }
    let Some(ts) = TransferSyntaxRegistry.get(&ts_uid) else {
        return Ok(());
    };
    if matches!(ts.codec(), Codec::Dataset(_)) {
        return Ok(());
    }
    walk(at(bytes, dataset_at), dataset_at, bytes.len() as u64, ts)
}

/// Follows the file meta group as dicom-rs's meta reader does: explicit VR
/// little endian headers from `start`, the group length (0002,0000) first,
/// then every element's value skipped whatever its tag or VR, as far as
/// the group length says. Where the data set starts; `None` when the file
/// has no group length (the meta reader refuses it).
///
/// The meta reader reserves each value's declared length before reading
/// it, so every header up to the group's end must be decodable and fit in
/// what is left of the group: a damaged one is refused here
/// ([`Unsafe::MetaUnreadable`], [`Unsafe::Oversized`]).
fn walk_meta(
    bytes: &[u8],
    start: u64,
    explicit: &dicom_encoding::TransferSyntax,
) -> Result<Option<u64>, Unsafe> {
    let Ok(mut decoder) = DynStatefulDecoder::new_with_ts(at(bytes, start), explicit, start) else {
        return Ok(None);
    };
    let Ok(first) = decoder.decode_header() else {
        return Err(Unsafe::MetaUnreadable { at: start });
    };
    if first.tag() != Tag(0x0002, 0x0000) || first.length().get() != Some(4) {
        return Ok(None);
    }
    let value_at = decoder.position() as usize;
    let Some(value) = bytes.get(value_at..value_at + 4) else {
        return Ok(None);
    };
    let group_length = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    let end = (value_at + 4) as u64 + u64::from(group_length);
    if decoder.skip_bytes(4).is_err() {
        return Ok(None);
    }
    loop {
        let at = decoder.position();
        if at >= end {
            return Ok(Some(at));
        }
        let Ok(header) = decoder.decode_header() else {
            return Err(Unsafe::MetaUnreadable { at });
        };
        let Some(declared) = header.length().get() else {
            return Err(Unsafe::MetaUnreadable { at });
        };
        let left = end
            .min(bytes.len() as u64)
            .saturating_sub(decoder.position());
        if u64::from(declared) > left {
            return Err(Unsafe::Oversized {
                tag: header.tag(),
                at,
                declared,
                left,
            });
        }
        if decoder.skip_bytes(declared).is_err() {
            return Ok(None);
        }
    }
}

/// The bytes from `from` on.
fn at(bytes: &[u8], from: u64) -> Cursor<&[u8]> {
    let mut cursor = Cursor::new(bytes);
    cursor.set_position(from);
    cursor
}

/// How many bytes `deflated` (a raw deflate stream) inflates to, counted
/// without keeping them; [`Unsafe::Inflates`] beyond [`MAX_INFLATED`]. A
/// damaged stream counts up to where it breaks: the parser reports it.
fn inflated_length(deflated: &[u8]) -> Result<u64, Unsafe> {
    let mut inflate = flate2::read::DeflateDecoder::new(deflated).take(MAX_INFLATED + 1);
    let mut counted = 0_u64;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match inflate.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => counted += n as u64,
        }
    }
    if counted > MAX_INFLATED {
        return Err(Unsafe::Inflates);
    }
    Ok(counted)
}

/// The size of one value of a VR of binary numbers (`None` for the others).
fn value_size(vr: VR) -> Option<u32> {
    match vr {
        VR::SS | VR::US | VR::OW => Some(2),
        VR::SL | VR::UL | VR::FL | VR::AT | VR::OL | VR::OF => Some(4),
        VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => Some(8),
        _ => None,
    }
}

/// Walks a data set's headers from `source`, which is at byte `from` of
/// `total`.
fn walk<R: Read>(
    source: R,
    from: u64,
    total: u64,
    ts: &dicom_encoding::TransferSyntax,
) -> Result<(), Unsafe> {
    let Ok(mut decoder) = DynStatefulDecoder::new_with_ts(source, ts, from) else {
        return Ok(());
    };
    // Inside encapsulated pixel data, items are fragments: skipped, not entered.
    let mut in_fragments = false;
    loop {
        let at = decoder.position();
        if at >= total {
            return Ok(());
        }
        let Ok(header) = decoder.decode_header() else {
            return Ok(());
        };
        let tag = header.tag();
        let left = total.saturating_sub(decoder.position());
        let length = header.length().get();
        if let Some(declared) = length {
            if u64::from(declared) > left {
                return Err(Unsafe::Oversized {
                    tag,
                    at,
                    declared,
                    left,
                });
            }
        }
        match tag {
            ITEM_END => continue,
            SEQUENCE_END => {
                in_fragments = false;
                continue;
            }
            ITEM if !in_fragments => continue, // enter the item
            PIXEL_DATA if length.is_none() => {
                in_fragments = true;
                continue;
            }
            _ => {}
        }
        if let (Some(size), Some(declared)) = (value_size(header.vr()), length) {
            if declared % size != 0 {
                return Err(Unsafe::Misaligned {
                    tag,
                    at,
                    vr: header.vr(),
                    declared,
                    size,
                });
            }
        }
        match (header.vr(), length) {
            // Sequences (and undefined-length values, which hold items) are entered.
            (VR::SQ, _) | (_, None) => continue,
            (_, Some(declared)) => {
                if decoder.skip_bytes(declared).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first crashes the fuzzer found (`fuzz/regressions`): damaged
    /// headers in the meta group, which dicom-rs's meta reader took for
    /// lengths of 1.4 GB and 775 MB and reserved.
    #[test]
    fn what_the_fuzzer_found_is_refused_before_dicom_rs_reserves_it() {
        for file in [
            &include_bytes!(
                "../../../fuzz/regressions/dicom_header/meta-header-damaged-1.4gb-reserve.dcm"
            )[..],
            &include_bytes!(
                "../../../fuzz/regressions/dicom_header/meta-group-length-not-ul-775mb-reserve.dcm"
            )[..],
            &include_bytes!(
                "../../../fuzz/regressions/dicom_ingest/dataset-ob-length-1.3gb-reserve.dcm"
            )[..],
        ] {
            let outcome = check_lengths(file);
            assert!(outcome.is_err(), "{outcome:?}");
        }
    }

    /// A Part 10 file with one OB element of 16 bytes whose length field
    /// then says `declared`.
    fn file(declared: u32) -> Vec<u8> {
        file_in(EXPLICIT_VR_LE, declared)
    }

    /// Where the data set of a Part 10 file starts: after the meta group,
    /// whose length (0002,0000) is the value at bytes 140–143.
    fn dataset_start(file: &[u8]) -> usize {
        let length: [u8; 4] = file[140..144].try_into().unwrap();
        144 + u32::from_le_bytes(length) as usize
    }

    /// A raw deflate stream of `bytes`.
    fn deflate(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        out.write_all(bytes).unwrap();
        out.finish().unwrap()
    }

    /// [`file`] in transfer syntax `ts` (explicit VR little endian, or
    /// deflated: the same data set, patched, then compressed).
    fn file_in(ts: &str, declared: u32) -> Vec<u8> {
        use dicom_core::value::PrimitiveValue;
        use dicom_core::DataElement;
        use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            Tag(0x0008, 0x0016),
            VR::UI,
            PrimitiveValue::from("1.2.3"),
        ));
        obj.put(DataElement::new(
            Tag(0x0008, 0x0018),
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.put(DataElement::new(
            Tag(0x0042, 0x0011),
            VR::OB,
            PrimitiveValue::U8(vec![7u8; 16].into()),
        ));
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(ts)
                    .media_storage_sop_class_uid("1.2.3")
                    .media_storage_sop_instance_uid("1.2.3.4"),
            )
            .unwrap();
        let mut out = Vec::new();
        file.write_all(&mut out).unwrap();
        let mut dataset = Vec::new();
        let explicit = TransferSyntaxRegistry.get(EXPLICIT_VR_LE).unwrap();
        file.write_dataset_with_ts(&mut dataset, explicit).unwrap();
        let header = [0x42, 0x00, 0x11, 0x00, b'O', b'B', 0, 0];
        let at = dataset.windows(8).position(|w| w == header).unwrap() + 8;
        dataset[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        out.truncate(dataset_start(&out));
        if ts == DEFLATED_EXPLICIT_VR_LE {
            out.extend_from_slice(&deflate(&dataset));
        } else {
            out.extend_from_slice(&dataset);
        }
        out
    }

    #[test]
    fn a_deflated_data_set_is_walked_inflated_and_a_bomb_is_refused_unkept() {
        let fine = file_in(DEFLATED_EXPLICIT_VR_LE, 16);
        assert_eq!(check_lengths(&fine), Ok(()));
        // The parser reads it as it is: the test file is a real one.
        dicom_object::OpenFileOptions::new()
            .from_reader(Cursor::new(&fine[..]))
            .unwrap();
        assert!(matches!(
            check_lengths(&file_in(DEFLATED_EXPLICIT_VR_LE, 0xFFFF_FFF0)),
            Err(Unsafe::Oversized {
                declared: 0xFFFF_FFF0,
                left: 16,
                ..
            })
        ));
        // Zeros beyond the bound after a valid header: refused.
        let mut bomb = fine[..dataset_start(&fine)].to_vec();
        let mut dataset = vec![0x42, 0x00, 0x11, 0x00, b'O', b'B', 0, 0];
        let zeros = MAX_INFLATED as u32 + 1;
        dataset.extend_from_slice(&zeros.to_le_bytes());
        dataset.resize(dataset.len() + zeros as usize, 0);
        bomb.extend_from_slice(&deflate(&dataset));
        assert!(bomb.len() < 2 * 1024 * 1024, "{} bytes", bomb.len());
        assert_eq!(check_lengths(&bomb), Err(Unsafe::Inflates));
    }

    #[test]
    fn a_length_beyond_the_end_of_the_file_is_found() {
        assert_eq!(check_lengths(&file(16)), Ok(()));
        assert_eq!(
            check_lengths(&file(0xFFFF_FFF0)),
            Err(Unsafe::Oversized {
                tag: Tag(0x0042, 0x0011),
                at: 322,
                declared: 0xFFFF_FFF0,
                left: 16
            })
        );
        // Not Part 10: left to the parser.
        assert_eq!(check_lengths(b"not a DICOM file"), Ok(()));
    }
}
