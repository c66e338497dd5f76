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
//! Deflated data sets are not walked (their lengths live in the compressed
//! stream).

use dicom_core::header::{HasLength, Header};
use dicom_core::{Tag, VR};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_parser::stateful::decode::{DynStatefulDecoder, StatefulDecode};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::io::Cursor;

const PREAMBLE: usize = 128;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// An element that declares more bytes than the file has left.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("element {tag} at byte {at} declares {declared} bytes where {left} remain")]
pub struct Oversized {
    pub tag: Tag,
    pub at: u64,
    pub declared: u32,
    pub left: u64,
}

/// Walks the headers of a Part 10 file (preamble, `DICM`, meta group, data
/// set). `Ok` also when the walk stops at something else it cannot read:
/// the parser reports that.
pub fn check_lengths(bytes: &[u8]) -> Result<(), Oversized> {
    if bytes.len() < PREAMBLE + 4 || &bytes[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return Ok(());
    }
    let start = (PREAMBLE + 4) as u64;
    let Some(explicit) = TransferSyntaxRegistry.get(EXPLICIT_VR_LE) else {
        return Ok(());
    };
    // The meta group is explicit VR little endian; the data set starts at
    // the first header of another group.
    let (dataset_at, ts_uid) = match walk(bytes, start, explicit, true)? {
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
    let Some(ts) = TransferSyntaxRegistry.get(&ts_uid) else {
        return Ok(());
    };
    if matches!(ts.codec(), Codec::Dataset(_)) {
        return Ok(());
    }
    walk(bytes, dataset_at, ts, false).map(|_| ())
}

/// Walks headers from `from`. With `meta_only`, stops at the first header
/// outside group 0002 and returns where it starts.
fn walk(
    bytes: &[u8],
    from: u64,
    ts: &dicom_encoding::TransferSyntax,
    meta_only: bool,
) -> Result<Option<u64>, Oversized> {
    let total = bytes.len() as u64;
    let mut cursor = Cursor::new(bytes);
    cursor.set_position(from);
    let Ok(mut decoder) = DynStatefulDecoder::new_with_ts(cursor, ts, from) else {
        return Ok(None);
    };
    // Inside encapsulated pixel data, items are fragments: skipped, not entered.
    let mut in_fragments = false;
    loop {
        let at = decoder.position();
        if at >= total {
            return Ok(None);
        }
        let Ok(header) = decoder.decode_header() else {
            return Ok(None);
        };
        let tag = header.tag();
        if meta_only && tag.group() != 0x0002 {
            return Ok(Some(at));
        }
        let left = total.saturating_sub(decoder.position());
        let length = header.length().get();
        if let Some(declared) = length {
            if u64::from(declared) > left {
                return Err(Oversized {
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
        match (header.vr(), length) {
            // Sequences (and undefined-length values, which hold items) are entered.
            (VR::SQ, _) | (_, None) => continue,
            (_, Some(declared)) => {
                if decoder.skip_bytes(declared).is_err() {
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Part 10 file with one OB element of 16 bytes whose length field
    /// then says `declared`.
    fn file(declared: u32) -> Vec<u8> {
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
                    .transfer_syntax(EXPLICIT_VR_LE)
                    .media_storage_sop_class_uid("1.2.3")
                    .media_storage_sop_instance_uid("1.2.3.4"),
            )
            .unwrap();
        let mut out = Vec::new();
        file.write_all(&mut out).unwrap();
        let header = [0x42, 0x00, 0x11, 0x00, b'O', b'B', 0, 0];
        let at = out.windows(8).position(|w| w == header).unwrap() + 8;
        out[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        out
    }

    #[test]
    fn a_length_beyond_the_end_of_the_file_is_found() {
        assert_eq!(check_lengths(&file(16)), Ok(()));
        let err = check_lengths(&file(0xFFFF_FFF0)).unwrap_err();
        assert_eq!(
            (err.tag, err.declared, err.left),
            (Tag(0x0042, 0x0011), 0xFFFF_FFF0, 16)
        );
        // Not Part 10: left to the parser.
        assert_eq!(check_lengths(b"not a DICOM file"), Ok(()));
    }
}
