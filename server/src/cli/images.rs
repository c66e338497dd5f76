//! `osteo-edc images …`: radiographs from the command line — checking files
//! before a study, rendering and de-identifying one, bulk loading (the
//! retrospective arm has 2,000 cases) through the same validation,
//! de-identification and audit as the browser upload, and the rendering
//! benchmark.
//!
//! `check` prints one JSON object per file (JSON Lines) and exits 1 when any
//! file would be refused; the other commands print one JSON object.

use crate::imaging::{self, deid, number, render, storage::FileStore, text, IngestError, Limits};
use clap::{Args, Subcommand};
use dicom_core::Tag;
use dicom_object::OpenFileOptions;
use osteo_trial::case::View;
use osteo_trial::store::Db;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImagesCommand {
    /// Checks DICOM files as the upload would, without storing anything: one JSON object per file (modality, photometric interpretation, transfer syntax, rows, columns, bits stored, view, laterality, body part, whether the pixels decode, warnings with their E1/E3 hints, identifying attributes present, and the reason it would be refused). Exit code 1 when any file would be refused.
    Check {
        /// DICOM files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Writes the rendering the viewer shows (modality LUT, the file's window or the 0.5–99.5th percentile range, MONOCHROME1 inverted) as PNG.
    Render {
        file: PathBuf,
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
        /// Fit into N × N pixels (never enlarged).
        #[arg(long, default_value_t = 2048)]
        size: u32,
        /// Window centre and width in modality units (both or neither; default: the file's window).
        #[arg(long, requires = "ww", allow_hyphen_values = true)]
        wc: Option<f64>,
        #[arg(long, requires = "wc")]
        ww: Option<f64>,
    },
    /// De-identifies one file as the upload does (DICOM PS3.15 Annex E basic profile with the study's options) and writes it; UIDs get new `2.25.` values for this run only (the server keeps its mapping in the database).
    Deidentify {
        file: PathBuf,
        /// The de-identified DICOM file to write.
        #[arg(long)]
        out: PathBuf,
        /// What replaces the patient's name and ID.
        #[arg(long, default_value = "DEIDENTIFIED")]
        study_number: String,
        /// Move every date back by this many days (Modified Dates Option); default: keep dates.
        #[arg(long, allow_hyphen_values = true)]
        shift_days: Option<i64>,
    },
    /// Loads radiographs into cases through the upload's validation, de-identification, storage and audit, acting as a named coordinator (or principal investigator) account. Either --case with files, or --manifest. Prints each file's outcome; exit code 1 when any was refused.
    Import(ImportArgs),
    /// The upload guard's child process (internal): reads one file from standard input under the limits the server set.
    #[command(hide = true)]
    Guard,
    /// Times decoding, windowing and downscaling a generated 2,500 × 3,000, 16-bit radiograph to a 1,024-pixel preview: uncompressed, and JPEG 2000 when --j2k names a file or GDCM's gdcmconv is installed to make one. JSON with median and fastest milliseconds.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The study number of the case (with FILE…).
    #[arg(long = "case", requires = "files", conflicts_with = "manifest")]
    study_number: Option<String>,
    /// DICOM files for --case.
    files: Vec<PathBuf>,
    /// A CSV with a header row and the columns study_number, file and, optionally, view (frontal, lateral, oblique; empty: from the file). Relative paths are read from the manifest's folder.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The view, when the files do not carry View Position (with --case).
    #[arg(long)]
    view: Option<String>,
    /// The account whose authority the import uses (a coordinator or the principal investigator); audited as this account from the command line.
    #[arg(long = "as")]
    username: String,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Timed runs of each pipeline.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// A JPEG 2000 DICOM file to time instead of making one with gdcmconv.
    #[arg(long)]
    j2k: Option<PathBuf>,
    /// Also write the radiographs timed into this folder (bench-uncompressed.dcm, bench-j2k.dcm).
    #[arg(long)]
    keep: Option<PathBuf>,
}

const BITS_STORED: Tag = Tag(0x0028, 0x0101);

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| crate::cli::usage_error(format!("{}: {e}", path.display())))
}

/// What `images check` says of one file.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub file: String,
    /// Whether the upload would store it.
    pub accepted: bool,
    pub modality: Option<String>,
    pub photometric_interpretation: Option<String>,
    pub transfer_syntax: Option<String>,
    pub rows: Option<u16>,
    pub columns: Option<u16>,
    pub bits_stored: Option<u16>,
    pub view: Option<String>,
    pub laterality: Option<String>,
    pub body_part: Option<String>,
    pub decodes: bool,
    pub warnings: Vec<String>,
    /// Exclusion codes the warnings point to (E1 poor quality, E3 not a limb bone).
    pub hints: Vec<String>,
    /// Identifying attributes of the de-identification profile present in the file.
    pub identifying: Vec<String>,
    pub refused: Option<String>,
}

/// Checks one file's bytes.
pub fn check(name: &str, bytes: &[u8]) -> CheckReport {
    // A damaged length is refused before the parser could reserve it.
    let parsed = imaging::scan::check_lengths(bytes).ok().and_then(|()| {
        OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(bytes))
            .ok()
    });
    let mut report = CheckReport {
        file: name.to_owned(),
        accepted: false,
        modality: None,
        photometric_interpretation: None,
        transfer_syntax: None,
        rows: None,
        columns: None,
        bits_stored: None,
        view: None,
        laterality: None,
        body_part: None,
        decodes: false,
        warnings: Vec::new(),
        hints: Vec::new(),
        identifying: Vec::new(),
        refused: None,
    };
    if let Some(obj) = &parsed {
        report.modality = text(obj, Tag(0x0008, 0x0060));
        report.photometric_interpretation = text(obj, Tag(0x0028, 0x0004));
        report.transfer_syntax = Some(
            obj.meta()
                .transfer_syntax()
                .trim_end_matches('\0')
                .to_owned(),
        );
        report.rows = number(obj, Tag(0x0028, 0x0010));
        report.columns = number(obj, Tag(0x0028, 0x0011));
        report.bits_stored = number(obj, BITS_STORED);
        report.view = text(obj, Tag(0x0018, 0x5101))
            .and_then(|p| imaging::view_of(&p))
            .map(|v| v.to_string());
        report.laterality = text(obj, Tag(0x0020, 0x0062));
        report.body_part = text(obj, Tag(0x0018, 0x0015));
        report.identifying = deid::PROFILE
            .iter()
            .filter(|(tag, _, _)| obj.element_opt(*tag).ok().flatten().is_some())
            .map(|(_, name, _)| (*name).to_owned())
            .collect();
    }
    match imaging::inspect(bytes) {
        Ok((_, inspected)) => {
            report.accepted = true;
            report.decodes = true;
            report.view = inspected.view.map(|v| v.to_string());
            report.warnings = inspected.warnings;
        }
        Err(e) => {
            report.refused = Some(e.to_string());
            // Refused for another reason (a CT, say): whether its pixels decode.
            report.decodes = parsed
                .as_ref()
                .is_some_and(|obj| imaging::decode_or_decompress(bytes, obj).is_ok());
        }
    }
    for w in &report.warnings {
        let hint = if w.contains("E3") {
            "E3"
        } else if w.contains("small image") {
            "E1"
        } else {
            continue;
        };
        if !report.hints.iter().any(|h| h == hint) {
            report.hints.push(hint.to_owned());
        }
    }
    report
}

pub async fn run(
    cmd: ImagesCommand,
    open_db: impl std::future::Future<Output = anyhow::Result<(Db, PathBuf)>>,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cmd {
        ImagesCommand::Check { files } => {
            let mut all = true;
            for f in files {
                let report = match std::fs::read(&f) {
                    Ok(bytes) => check(&f.display().to_string(), &bytes),
                    Err(e) => {
                        let mut r = check(&f.display().to_string(), &[]);
                        r.refused = Some(format!("cannot read the file: {e}"));
                        r
                    }
                };
                all &= report.accepted;
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        ImagesCommand::Render {
            file,
            out,
            size,
            wc,
            ww,
        } => {
            let window = match (wc, ww) {
                (Some(centre), Some(width)) if centre.is_finite() && width >= 1.0 => {
                    Some(osteo_model::pixels::Window { centre, width })
                }
                (None, None) => None,
                _ => {
                    return Err(crate::cli::usage_error(
                        "--wc and --ww go together: finite numbers, --ww at least 1".into(),
                    ))
                }
            };
            let bytes = read(&file)?;
            let obj = OpenFileOptions::new()
                .from_reader(std::io::Cursor::new(bytes))
                .map_err(|e| IngestError::NotDicom(e.to_string()))?;
            let png = render::png(&obj, size.clamp(16, 16384), window)?;
            std::fs::write(&out, &png)?;
            let img = image::load_from_memory(&png)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "out": out.display().to_string(),
                    "width": img.width(),
                    "height": img.height(),
                    "window": render::window_info(&obj)?,
                }))?
            );
            Ok(ExitCode::SUCCESS)
        }
        ImagesCommand::Deidentify {
            file,
            out,
            study_number,
            shift_days,
        } => {
            if let Some(d) = shift_days {
                if !(-3650..=-1).contains(&d) {
                    return Err(crate::cli::usage_error(
                        "--shift-days moves dates back: -3650 to -1".into(),
                    ));
                }
            }
            let bytes = read(&file)?;
            let original = imaging::sha256_hex(&bytes);
            let (mut obj, _) = imaging::inspect(&bytes)?;
            let present: Vec<&str> = deid::PROFILE
                .iter()
                .filter(|(tag, _, _)| obj.element_opt(*tag).ok().flatten().is_some())
                .map(|(_, name, _)| *name)
                .collect();
            let map: HashMap<String, String> = imaging::uids(&obj)
                .into_iter()
                .map(|u| (u, osteo_trial::case::new_uid()))
                .collect();
            imaging::deidentify(&mut obj, &study_number, &map, shift_days);
            let encoded = imaging::encode(&obj)?;
            std::fs::write(&out, &encoded)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "out": out.display().to_string(),
                    "original_sha256": original,
                    "sha256": imaging::sha256_hex(&encoded),
                    "identifying_attributes_handled": present,
                    "uids_replaced": map.len(),
                    "dates": if shift_days.is_some() { "shifted" } else { "kept" },
                }))?
            );
            Ok(ExitCode::SUCCESS)
        }
        ImagesCommand::Import(args) => import(args, open_db).await,
        ImagesCommand::Guard => Ok(crate::imaging::parse_bound::child_main()),
        ImagesCommand::Bench(args) => {
            let out = tokio::task::spawn_blocking(move || bench(args)).await??;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One row of an import: case, file, view.
struct Row {
    study_number: String,
    file: PathBuf,
    view: Option<View>,
}

fn parse_view(v: &str) -> anyhow::Result<Option<View>> {
    match v.trim() {
        "" | "auto" => Ok(None),
        other => Ok(Some(other.parse().map_err(
            |e: osteo_trial::codes::UnknownCode| crate::cli::usage_error(e.to_string()),
        )?)),
    }
}

fn manifest_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| crate::cli::usage_error(format!("{}: {e}", path.display())))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(case_col), Some(file_col)) = (col("study_number"), col("file")) else {
        return Err(crate::cli::usage_error(format!(
            "{}: the manifest needs the columns study_number and file (and optionally view)",
            path.display()
        )));
    };
    let view_col = col("view");
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record?;
        let line = n + 2;
        let field = |i: usize| record.get(i).unwrap_or_default().trim().to_owned();
        let file = PathBuf::from(field(file_col));
        if field(case_col).is_empty() || file.as_os_str().is_empty() {
            return Err(crate::cli::usage_error(format!(
                "{}:{line}: study_number and file may not be empty",
                path.display()
            )));
        }
        rows.push(Row {
            study_number: field(case_col),
            file: if file.is_absolute() {
                file
            } else {
                base.join(file)
            },
            view: view_col
                .map(|i| parse_view(&field(i)))
                .transpose()
                .map_err(|e| crate::cli::usage_error(format!("{}:{line}: {e}", path.display())))?
                .flatten(),
        });
    }
    Ok(rows)
}

async fn import(
    args: ImportArgs,
    open_db: impl std::future::Future<Output = anyhow::Result<(Db, PathBuf)>>,
) -> anyhow::Result<std::process::ExitCode> {
    let rows = match (&args.study_number, &args.manifest) {
        (Some(case), None) => {
            let view = args.view.as_deref().map(parse_view).transpose()?.flatten();
            args.files
                .iter()
                .map(|f| Row {
                    study_number: case.clone(),
                    file: f.clone(),
                    view,
                })
                .collect()
        }
        (None, Some(manifest)) => manifest_rows(manifest)?,
        _ => {
            return Err(crate::cli::usage_error(
                "give --case STUDY_NUMBER with files, or --manifest CSV".into(),
            ))
        }
    };
    let (db, data_dir) = open_db.await?;
    let by = crate::cli::acting_as(
        &db,
        &args.username,
        osteo_trial::domain::Permission::EnterCaseData,
        "may not enter case data; name a coordinator or the principal investigator",
    )
    .await?;
    let store = FileStore::new(data_dir.join("objects"));
    let limits = Limits::command_line();
    let mut cases: HashMap<String, Option<osteo_trial::domain::CaseId>> = HashMap::new();
    let (mut stored, mut refused) = (0, 0);
    for row in rows {
        let case_id = match cases.get(&row.study_number) {
            Some(id) => *id,
            None => {
                let id = osteo_trial::case::find_case(&db, &row.study_number)
                    .await?
                    .map(osteo_trial::domain::CaseId::new);
                cases.insert(row.study_number.clone(), id);
                id
            }
        };
        let outcome = match (case_id, std::fs::read(&row.file)) {
            (None, _) => Err(format!("no case {}", row.study_number)),
            (_, Err(e)) => Err(format!("cannot read the file: {e}")),
            (Some(id), Ok(bytes)) => {
                let size = bytes.len();
                let original = imaging::sha256_hex(&bytes);
                match imaging::ingest(&db, &store, &by, id, bytes, row.view, limits.clone()).await {
                    Ok(s) => Ok((s.image.sha256, s.image.view.to_string(), s.warnings)),
                    Err(e) => {
                        imaging::upload::audit_refusal(
                            &db,
                            &by,
                            id,
                            &row.file.display().to_string(),
                            size,
                            &original,
                            &e,
                        )
                        .await;
                        Err(e.to_string())
                    }
                }
            }
        };
        let line: Value = match outcome {
            Ok((sha, view, warnings)) => {
                stored += 1;
                json!({"case": row.study_number, "file": row.file.display().to_string(), "stored": true,
                       "sha256": sha, "view": view, "warnings": warnings})
            }
            Err(reason) => {
                refused += 1;
                json!({"case": row.study_number, "file": row.file.display().to_string(), "stored": false,
                       "error": reason})
            }
        };
        println!("{}", serde_json::to_string(&line)?);
    }
    eprintln!("{stored} stored, {refused} refused");
    Ok(if refused == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// The synthetic radiograph the benchmark decodes: 2,500 columns × 3,000
/// rows, 16 bits allocated, 12 stored, MONOCHROME2, a smooth limb-like
/// pattern with noise (so compression has real work to do).
pub fn bench_radiograph() -> Vec<u8> {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    let (cols, rows) = (2500u32, 3000u32);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut pixels = Vec::with_capacity((cols * rows) as usize);
    for y in 0..rows {
        for x in 0..cols {
            // xorshift noise, a bone-like band and soft tissue.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let dx = (f64::from(x) - 1250.0).abs();
            let tissue = if dx < 900.0 { 1200.0 } else { 200.0 };
            let bone = if dx < 260.0 {
                1800.0 * (1.0 - dx / 260.0).sqrt()
            } else {
                0.0
            };
            let shade = 300.0 * (f64::from(y) / f64::from(rows));
            let noise = (state % 64) as f64;
            pixels.push((tissue + bone + shade + noise).min(4095.0) as u16);
        }
    }
    let mut obj = InMemDicomObject::new_empty();
    let put = |obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, v));
    };
    let sop = "1.2.826.0.1.3680043.2.1125.9.1";
    put(
        &mut obj,
        Tag(0x0008, 0x0016),
        VR::UI,
        PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.1"),
    );
    put(
        &mut obj,
        Tag(0x0008, 0x0018),
        VR::UI,
        PrimitiveValue::from(sop),
    );
    put(
        &mut obj,
        Tag(0x0008, 0x0060),
        VR::CS,
        PrimitiveValue::from("CR"),
    );
    put(
        &mut obj,
        Tag(0x0018, 0x5101),
        VR::CS,
        PrimitiveValue::from("AP"),
    );
    put(
        &mut obj,
        Tag(0x0020, 0x000D),
        VR::UI,
        PrimitiveValue::from("1.2.826.0.1.3680043.2.1125.9.2"),
    );
    put(
        &mut obj,
        Tag(0x0020, 0x000E),
        VR::UI,
        PrimitiveValue::from("1.2.826.0.1.3680043.2.1125.9.3"),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0002),
        VR::US,
        PrimitiveValue::from(1u16),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0004),
        VR::CS,
        PrimitiveValue::from("MONOCHROME2"),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0010),
        VR::US,
        PrimitiveValue::from(rows as u16),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0011),
        VR::US,
        PrimitiveValue::from(cols as u16),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0100),
        VR::US,
        PrimitiveValue::from(16u16),
    );
    put(&mut obj, BITS_STORED, VR::US, PrimitiveValue::from(12u16));
    put(
        &mut obj,
        Tag(0x0028, 0x0102),
        VR::US,
        PrimitiveValue::from(11u16),
    );
    put(
        &mut obj,
        Tag(0x0028, 0x0103),
        VR::US,
        PrimitiveValue::from(0u16),
    );
    put(
        &mut obj,
        Tag(0x7FE0, 0x0010),
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    );
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1")
                .media_storage_sop_instance_uid(sop),
        )
        .expect("a complete file meta group");
    let mut out = Vec::new();
    file.write_all(&mut out).expect("writes to memory");
    out
}

/// Decode, window and downscale to a 1,024-pixel preview PNG, as the
/// viewer's first request does.
fn preview_once(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let obj = OpenFileOptions::new().from_reader(std::io::Cursor::new(bytes))?;
    Ok(render::png(&obj, 1024, None)?)
}

fn time_runs(bytes: &[u8], runs: usize) -> anyhow::Result<Value> {
    preview_once(bytes)?; // warm-up
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = std::time::Instant::now();
        std::hint::black_box(preview_once(bytes)?);
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(json!({
        "bytes": bytes.len(),
        "median_ms": (ms[ms.len() / 2] * 10.0).round() / 10.0,
        "fastest_ms": (ms[0] * 10.0).round() / 10.0,
        "runs": ms.len(),
    }))
}

fn bench(args: BenchArgs) -> anyhow::Result<Value> {
    let plain = bench_radiograph();
    let uncompressed = time_runs(&plain, args.runs)?;
    let (j2k, source) = match &args.j2k {
        Some(path) => (Some(std::fs::read(path)?), path.display().to_string()),
        None => match to_j2k(&plain) {
            Ok(bytes) => (Some(bytes), "gdcmconv --j2k (lossless)".to_owned()),
            Err(e) => (None, e),
        },
    };
    if let Some(dir) = &args.keep {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("bench-uncompressed.dcm"), &plain)?;
        if let Some(bytes) = &j2k {
            std::fs::write(dir.join("bench-j2k.dcm"), bytes)?;
        }
    }
    let jpeg2000 = match j2k {
        Some(bytes) => {
            let mut v = time_runs(&bytes, args.runs)?;
            v["made_by"] = json!(source);
            v
        }
        None => json!({ "skipped": source }),
    };
    Ok(json!({
        "image": "2500 × 3000, 16 bits allocated, 12 stored, MONOCHROME2",
        "pipeline": "parse, decode, modality LUT, percentile window, downscale to 1024 px, PNG",
        "uncompressed": uncompressed,
        "jpeg2000": jpeg2000,
    }))
}

/// The radiograph in JPEG 2000 (lossless), made by GDCM's `gdcmconv`
/// (Debian's libgdcm-tools), an encoder independent of the decoder timed.
pub fn to_j2k(plain: &[u8]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&input, plain).map_err(|e| e.to_string())?;
    let status = std::process::Command::new("gdcmconv")
        .arg("--j2k")
        .arg(&input)
        .arg(&output)
        .status()
        .map_err(|e| format!("gdcmconv is not available ({e}): install Debian's libgdcm-tools, or pass --j2k FILE"))?;
    if !status.success() {
        return Err(format!("gdcmconv --j2k failed ({status})"));
    }
    std::fs::read(&output).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_radiograph_is_what_it_says() {
        let bytes = bench_radiograph();
        let (_, inspected) = imaging::inspect(&bytes).expect("a valid radiograph");
        assert_eq!((inspected.columns, inspected.rows), (2500, 3000));
        let png = preview_once(&bytes).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (853, 1024));
    }
}
