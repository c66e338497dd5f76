//! DICOM files written by the tests themselves (no patient data ships): a
//! small radiograph with a full set of identifying attributes, so that
//! de-identification has something to remove.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

pub const CR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
pub const DX_FOR_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.1.1.1";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// What the generated file looks like.
#[derive(Debug, Clone)]
pub struct Radiograph {
    pub sop_class: &'static str,
    pub modality: &'static str,
    pub view_position: Option<&'static str>,
    pub body_part: &'static str,
    pub photometric: &'static str,
    pub patient_name: String,
    pub patient_id: String,
    pub study_uid: String,
    /// Makes each file distinct.
    pub seed: u16,
    pub size: u16,
    /// Rows and columns as declared, when they should disagree with the
    /// pixel data actually written (`size` × `size`).
    pub declared: Option<u16>,
    /// Bits allocated: 16 (12 stored) or 8 (8 stored).
    pub bits: u16,
}

impl Radiograph {
    /// A frontal CR of the femur of the patient `who`.
    pub fn cr(who: &str, view: &'static str, seed: u16) -> Radiograph {
        Radiograph {
            sop_class: CR_IMAGE_STORAGE,
            modality: "CR",
            view_position: Some(view),
            body_part: "FEMUR",
            photometric: "MONOCHROME2",
            patient_name: format!("{who}^Test"),
            patient_id: format!("MRN-{who}"),
            study_uid: format!("1.2.826.0.1.3680043.2.1125.1.{seed}"),
            seed,
            size: 64,
            declared: None,
            bits: 16,
        }
    }

    fn sop_uid(&self) -> String {
        format!("1.2.826.0.1.3680043.2.1125.3.{}", self.seed)
    }

    /// The data set, pixel data included.
    pub fn object(&self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        let sop_uid = self.sop_uid();
        let text = |obj: &mut InMemDicomObject, g: u16, e: u16, vr: VR, v: &str| {
            obj.put(DataElement::new(Tag(g, e), vr, PrimitiveValue::from(v)));
        };
        text(&mut obj, 0x0008, 0x0016, VR::UI, self.sop_class);
        text(&mut obj, 0x0008, 0x0018, VR::UI, &sop_uid);
        text(&mut obj, 0x0008, 0x0020, VR::DA, "20251002");
        text(&mut obj, 0x0008, 0x0023, VR::DA, "20251002");
        text(&mut obj, 0x0008, 0x0030, VR::TM, "101500");
        text(&mut obj, 0x0008, 0x0070, VR::LO, "Test Vendor");
        text(&mut obj, 0x0008, 0x002A, VR::DT, "20251002101500");
        text(&mut obj, 0x0008, 0x0050, VR::SH, "ACC123456");
        text(&mut obj, 0x0008, 0x0060, VR::CS, self.modality);
        text(&mut obj, 0x0008, 0x0080, VR::LO, "Affiliated Hospital");
        text(&mut obj, 0x0008, 0x0090, VR::PN, "Referring^Doctor");
        text(&mut obj, 0x0008, 0x1030, VR::LO, "Left femur pain");
        text(&mut obj, 0x0008, 0x1070, VR::PN, "Operator^Name");
        text(&mut obj, 0x0010, 0x0010, VR::PN, &self.patient_name);
        text(&mut obj, 0x0010, 0x0020, VR::LO, &self.patient_id);
        text(&mut obj, 0x0010, 0x0030, VR::DA, "19910304");
        text(&mut obj, 0x0010, 0x0040, VR::CS, "F");
        text(&mut obj, 0x0010, 0x1010, VR::AS, "034Y");
        text(&mut obj, 0x0010, 0x1040, VR::LO, "1 Hospital Road");
        text(&mut obj, 0x0018, 0x0015, VR::CS, self.body_part);
        text(&mut obj, 0x0018, 0x1000, VR::LO, "SN-99");
        if let Some(v) = self.view_position {
            text(&mut obj, 0x0018, 0x5101, VR::CS, v);
        }
        text(&mut obj, 0x0020, 0x000D, VR::UI, &self.study_uid);
        text(
            &mut obj,
            0x0020,
            0x000E,
            VR::UI,
            &format!("{}.2", self.study_uid),
        );
        text(&mut obj, 0x0020, 0x0010, VR::SH, "STUDY7");
        text(&mut obj, 0x0020, 0x0011, VR::IS, "1");
        text(&mut obj, 0x0020, 0x0013, VR::IS, &self.seed.to_string());
        text(&mut obj, 0x0020, 0x0020, VR::CS, "");
        text(&mut obj, 0x0020, 0x0062, VR::CS, "L");
        text(&mut obj, 0x0028, 0x0004, VR::CS, self.photometric);
        // A private attribute, as vendors write them.
        text(&mut obj, 0x0009, 0x0010, VR::LO, "VENDOR");
        text(&mut obj, 0x0009, 0x1001, VR::LO, "patient phone 555-0100");
        let n = self.size;
        let declared = self.declared.unwrap_or(n);
        for (e, v) in [
            (0x0002u16, 1u16),
            (0x0010, declared),
            (0x0011, declared),
            (0x0100, self.bits),
            (0x0101, if self.bits == 8 { 8 } else { 12 }),
            (0x0102, if self.bits == 8 { 7 } else { 11 }),
            (0x0103, 0),
        ] {
            obj.put(DataElement::new(
                Tag(0x0028, e),
                VR::US,
                PrimitiveValue::from(v),
            ));
        }
        let values =
            (0..u32::from(n) * u32::from(n)).map(|i| (i * 7 + u32::from(self.seed) * 13) % 4096);
        if self.bits == 8 {
            let pixels: dicom_core::value::C<u8> = values.map(|v| (v / 16) as u8).collect();
            obj.put(DataElement::new(
                Tag(0x7FE0, 0x0010),
                VR::OB,
                PrimitiveValue::U8(pixels),
            ));
        } else {
            let pixels: dicom_core::value::C<u16> = values.map(|v| v as u16).collect();
            obj.put(DataElement::new(
                Tag(0x7FE0, 0x0010),
                VR::OW,
                PrimitiveValue::U16(pixels),
            ));
        }
        obj
    }

    /// The Part 10 file (explicit VR little endian).
    pub fn bytes(&self) -> Vec<u8> {
        let file = self
            .object()
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(EXPLICIT_VR_LE)
                    .media_storage_sop_class_uid(self.sop_class)
                    .media_storage_sop_instance_uid(self.sop_uid()),
            )
            .expect("a file meta group");
        let mut out = Vec::new();
        file.write_all(&mut out).expect("the file encodes");
        out
    }
}

pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";

/// Deflated-DICOM bombs: Part 10 files in the Deflated Explicit VR Little
/// Endian transfer syntax whose pixel data element declares, and holds,
/// `inflated` bytes of zeros. A 2 MB file inflates to 2 GB.
///
/// The zeros are compressed once (a sync-flushed, byte-aligned run of
/// deflate blocks that refer only to themselves), and each bomb is its own
/// header's blocks, then those, then an empty final block: so many distinct
/// bombs cost one compression.
pub struct DeflateBomb {
    zeros: Vec<u8>,
    inflated: u32,
}

impl DeflateBomb {
    pub fn new(inflated: u32) -> DeflateBomb {
        use std::io::Write;
        let mut zeros = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        let mut left = inflated as usize;
        while left > 0 {
            let n = left.min(chunk.len());
            zeros.write_all(&chunk[..n]).expect("deflate");
            left -= n;
        }
        zeros.flush().expect("deflate");
        DeflateBomb {
            zeros: zeros.get_ref().clone(),
            inflated,
        }
    }

    /// The bomb made of radiograph `of` (its pixel data replaced).
    pub fn file(&self, of: &Radiograph) -> Vec<u8> {
        use dicom_encoding::TransferSyntaxIndex;
        use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        use std::io::Write;
        let mut obj = of.object();
        obj.remove_element(Tag(0x7FE0, 0x0010));
        let mut header = Vec::new();
        let explicit = TransferSyntaxRegistry
            .get(EXPLICIT_VR_LE)
            .expect("explicit VR little endian");
        obj.write_dataset_with_ts(&mut header, explicit)
            .expect("the data set encodes");
        // (7FE0,0010) OW, then a 32-bit length: explicit VR, little endian.
        header.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
        header.extend_from_slice(&self.inflated.to_le_bytes());
        let mut head = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        head.write_all(&header).expect("deflate");
        head.flush().expect("deflate");
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(DEFLATED_EXPLICIT_VR_LE)
            .media_storage_sop_class_uid(of.sop_class)
            .media_storage_sop_instance_uid(of.sop_uid())
            .build()
            .expect("a file meta group");
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        meta.write(&mut out).expect("the meta group encodes");
        out.extend_from_slice(head.get_ref());
        out.extend_from_slice(&self.zeros);
        // An empty final block (fixed Huffman, end of block).
        out.extend_from_slice(&[0x03, 0x00]);
        out
    }
}

/// Runs a converter (`program ARGS in.dcm out.dcm`: GDCM's `gdcmconv`,
/// DCMTK's `dcmconv`, `dcmcjpls`, …) in `dir` and returns its output.
pub fn convert(dir: &std::path::Path, input: &[u8], program: &str, args: &[&str]) -> Vec<u8> {
    let (from, to) = (dir.join("in.dcm"), dir.join("out.dcm"));
    std::fs::write(&from, input).expect("the input is written");
    let status = std::process::Command::new(program)
        .args(args)
        .arg(&from)
        .arg(&to)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("{program} ({e}): install Debian's libgdcm-tools and dcmtk (.ci/run does)")
        });
    assert!(status.success(), "{program} {args:?}");
    std::fs::read(&to).expect("the converter wrote its output")
}
