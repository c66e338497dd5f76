//! Radiograph ingest through the REST API: each file checked, de-identified
//! (DICOM PS3.15 Annex E) and stored by content hash, or refused with its
//! reason; the stored object read back independently (dicom-rs, DCMTK's
//! `dcmdump` and pydicom); pydicom's own test files as a corpus of what
//! hospitals and tools write; every transfer syntax made by GDCM and DCMTK.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use dicom_core::Tag;
use osteo_tests::dicom::{convert, Radiograph, DX_FOR_PROCESSING};
use osteo_tests::workflow::{enrol, upload};
use osteo_tests::{audit_rows, spawn_app};
use reqwest::Method;
use serde_json::{json, Value};

fn stored_path(app: &osteo_tests::TestApp, sha: &str) -> std::path::PathBuf {
    app.dir
        .path()
        .join("objects")
        .join(&sha[..2])
        .join(format!("{sha}.dcm"))
}

fn text(obj: &dicom_object::DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.element_opt(tag)
        .unwrap()
        .map(|e| e.to_str().unwrap().trim_end_matches(['\0', ' ']).to_owned())
}

/// The De-identification Method Code Sequence: each item's code value
/// (its scheme checked to be DCM) and meaning.
fn methods(obj: &dicom_object::DefaultDicomObject) -> Vec<(String, String)> {
    let seq = obj
        .element(Tag(0x0012, 0x0064))
        .expect("a De-identification Method Code Sequence");
    seq.items()
        .expect("a sequence")
        .iter()
        .map(|item| {
            let get = |e: u16| {
                item.element(Tag(0x0008, e))
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_end()
                    .to_owned()
            };
            assert_eq!(get(0x0102), "DCM");
            (get(0x0100), get(0x0104))
        })
        .collect()
}

#[tokio::test]
async fn an_uploaded_radiograph_is_de_identified_before_it_is_stored() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let original = Radiograph::cr("Zhang", "AP", 1);
    let (status, v) = upload(&api, id, &[original.bytes()], None).await;
    assert_eq!(status, 200, "{v}");
    let file = &v["files"][0];
    assert_eq!(
        (file["stored"].as_bool(), file["view"].as_str()),
        (Some(true), Some("frontal")),
        "{v}"
    );
    let sha = file["sha256"].as_str().unwrap();
    let bytes = std::fs::read(stored_path(&app, sha)).unwrap();
    assert_eq!(
        osteo_server::imaging::sha256_hex(&bytes),
        sha,
        "stored under its own hash"
    );

    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(&bytes[..])
        .unwrap();
    // Every identifying attribute of the profile is gone or replaced.
    for (tag, name, action) in osteo_server::imaging::deid::PROFILE {
        let value = text(&obj, *tag);
        match action {
            osteo_server::imaging::deid::Action::Remove => {
                assert_eq!(value, None, "{name} is removed")
            }
            osteo_server::imaging::deid::Action::Empty(_) => {
                assert_eq!(value.as_deref(), Some(""), "{name} is kept, empty")
            }
            osteo_server::imaging::deid::Action::StudyNumber => {
                assert_eq!(
                    value.as_deref(),
                    Some("P-0001"),
                    "{name} is the study number"
                )
            }
            osteo_server::imaging::deid::Action::NewUid => {
                if let Some(uid) = value {
                    assert!(uid.starts_with("2.25."), "{name} is a new UID: {uid}");
                }
            }
        }
    }
    assert!(text(&obj, Tag(0x0020, 0x000D)).is_some_and(|u| u != original.study_uid));
    assert!(
        obj.iter().all(|e| e.header().tag.group() % 2 == 0),
        "no private attribute survives"
    );
    for secret in [
        "Zhang",
        "MRN-Zhang",
        "19910304",
        "ACC123456",
        "Affiliated Hospital",
        "555-0100",
        "Referring",
        "SN-99",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` appears nowhere in the stored file"
        );
    }
    // What the analysis needs is kept.
    assert_eq!(text(&obj, Tag(0x0018, 0x5101)).as_deref(), Some("AP"));
    assert_eq!(text(&obj, Tag(0x0018, 0x0015)).as_deref(), Some("FEMUR"));
    assert_eq!(text(&obj, Tag(0x0020, 0x0062)).as_deref(), Some("L"));
    assert_eq!(
        text(&obj, Tag(0x0028, 0x0004)).as_deref(),
        Some("MONOCHROME2")
    );
    assert_eq!(text(&obj, Tag(0x0012, 0x0062)).as_deref(), Some("YES"));
    let src = dicom_object::OpenFileOptions::new()
        .from_reader(&original.bytes()[..])
        .unwrap();
    assert_eq!(
        obj.element(Tag(0x7FE0, 0x0010))
            .unwrap()
            .to_bytes()
            .unwrap(),
        src.element(Tag(0x7FE0, 0x0010))
            .unwrap()
            .to_bytes()
            .unwrap(),
        "pixels unchanged"
    );
    // Independent readers: DCMTK's dcmdump and pydicom (.ci/run installs both).
    let out = std::process::Command::new("dcmdump")
        .arg(stored_path(&app, sha))
        .output()
        .expect("dcmdump: install Debian's dcmtk (.ci/run does)");
    assert!(out.status.success(), "dcmdump reads the stored file");
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("P-0001") && !dump.contains("Zhang") && !dump.contains("MRN-"),
        "{dump}"
    );
    let out = std::process::Command::new(osteo_tests::pydicom_python())
        .args([
            "-c",
            "import sys, pydicom\n\
             ds = pydicom.dcmread(sys.argv[1])\n\
             print(ds.PatientName, ds.PatientID, ds.PatientIdentityRemoved, ds.Rows, ds.Columns, len(ds.PixelData), repr(ds.PatientBirthDate), 'InstitutionName' in ds)",
        ])
        .arg(stored_path(&app, sha))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "P-0001 P-0001 YES 64 64 8192 '' False",
        "pydicom reads the stored file: the study number, an empty birth date, no institution, the pixels whole"
    );
    // The stored copy is a valid CR object (PS3.3 A.2) for dicom3tools'
    // dciodvfy, and says how it was de-identified: the coded methods of
    // PS3.16 CID 7050 (the basic profile, full dates by default).
    osteo_tests::dciodvfy::assert_valid(&bytes, "the de-identified copy of an upload");
    assert_eq!(
        methods(&obj),
        [
            ("113100", "Basic Application Confidentiality Profile"),
            (
                "113106",
                "Retain Longitudinal Temporal Information Full Dates Option"
            )
        ]
        .map(|(c, m)| (c.to_owned(), m.to_owned()))
    );

    // Same study, second view: the study keeps one consistent new UID.
    let (_, v2) = upload(&api, id, &[Radiograph::cr("Zhang", "LL", 2).bytes()], None).await;
    let sha2 = v2["files"][0]["sha256"].as_str().unwrap();
    let obj2 = dicom_object::OpenFileOptions::new()
        .from_reader(&std::fs::read(stored_path(&app, sha2)).unwrap()[..])
        .unwrap();
    let study_uid = |o: &dicom_object::DefaultDicomObject| text(o, Tag(0x0020, 0x000D));
    let mut other = Radiograph::cr("Zhang", "LL", 3);
    other.study_uid = original.study_uid.clone();
    let (_, v3) = upload(&api, id, &[other.bytes()], None).await;
    let obj3 = dicom_object::OpenFileOptions::new()
        .from_reader(
            &std::fs::read(stored_path(
                &app,
                v3["files"][0]["sha256"].as_str().unwrap(),
            ))
            .unwrap()[..],
        )
        .unwrap();
    assert_eq!(
        study_uid(&obj3),
        study_uid(&obj),
        "one original UID, one replacement"
    );
    assert_ne!(study_uid(&obj2), study_uid(&obj));
}

#[tokio::test]
async fn every_file_of_a_batch_is_stored_or_refused_with_its_reason() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let good = Radiograph::cr("Li", "PA", 10);
    let mut mr = Radiograph::cr("Li", "PA", 11);
    mr.modality = "MR";
    let mut raw = Radiograph::cr("Li", "PA", 12);
    raw.sop_class = DX_FOR_PROCESSING;
    raw.modality = "DX";
    let mut rgb = Radiograph::cr("Li", "PA", 13);
    rgb.photometric = "RGB";
    let mut no_view = Radiograph::cr("Li", "PA", 14);
    no_view.view_position = None;
    let mut pelvis = Radiograph::cr("Li", "AP", 15);
    pelvis.body_part = "PELVIS";
    let mut short = Radiograph::cr("Li", "AP", 17);
    short.declared = Some(128);
    let before = audit_rows(&app.db).await;
    let (status, v) = upload(
        &api,
        id,
        &[
            good.bytes(),
            b"this is not a DICOM file".to_vec(),
            mr.bytes(),
            raw.bytes(),
            rgb.bytes(),
            no_view.bytes(),
            good.bytes(),
            pelvis.bytes(),
            short.bytes(),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let outcome = |i: usize| -> (bool, String) {
        let f: &Value = &v["files"][i];
        (
            f["stored"].as_bool().unwrap(),
            f["error"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert!(outcome(0).0);
    assert!(outcome(1).1.contains("not a DICOM file"), "{v}");
    assert!(outcome(2).1.contains("modality `MR`"), "{v}");
    assert!(outcome(3).1.contains("for processing"), "{v}");
    assert!(outcome(4).1.contains("MONOCHROME1 or MONOCHROME2"), "{v}");
    assert!(
        outcome(5).1.contains("choose frontal, lateral or oblique"),
        "{v}"
    );
    assert!(outcome(6).1.contains("already stored"), "{v}");
    assert!(outcome(7).0);
    // Rows × columns larger than the pixel data: refused, nothing stored.
    assert!(
        outcome(8).1.contains("cannot be decoded") || outcome(8).1.contains("declared size"),
        "{v}"
    );
    let warnings = v["files"][7]["warnings"].to_string();
    assert!(
        warnings.contains("exclusion E3") && warnings.contains("small image"),
        "{warnings}"
    );
    let attached: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'image.attach'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(attached, 2, "only the stored files are recorded");
    // Each refused file has its audit entry: name, size, hash and reason.
    let refused: Vec<String> = sqlx::query_scalar(
        "SELECT new_value FROM audit_log WHERE action = 'image.refused' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(refused.len(), 7, "{refused:?}");
    assert!(
        refused[0].starts_with("image1.dcm (24 bytes, sha256 ")
            && refused[0].contains("not a DICOM file"),
        "{refused:?}"
    );
    assert!(
        refused[6].contains("declared size") || refused[6].contains("cannot be decoded"),
        "{refused:?}"
    );
    assert!(audit_rows(&app.db).await > before);

    // The coordinator names the view a file does not carry.
    let (status, v) = upload(&api, id, &[no_view.bytes()], Some("lateral")).await;
    assert_eq!(
        (status, v["files"][0]["view"].as_str()),
        (200, Some("lateral")),
        "{v}"
    );
    // A batch with nothing stored is a 400 that still lists every file.
    let (status, v) = upload(&api, id, &[mr.bytes()], None).await;
    assert_eq!(status, 400);
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    // Radiologists do not upload.
    let reader = app.api_client("radiologist").await;
    let (status, _) = upload(&reader, id, &[Radiograph::cr("Li", "AP", 16).bytes()], None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_stored_radiograph_renders_for_those_who_may_see_it() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let mut mono2 = Radiograph::cr("Chen", "AP", 20);
    mono2.size = 128;
    // The same pixels, declared MONOCHROME1.
    let mut mono1 = Radiograph::cr("Chen", "AP", 20);
    mono1.size = 128;
    mono1.photometric = "MONOCHROME1";
    let (_, v) = upload(&api, id, &[mono2.bytes(), mono1.bytes()], None).await;
    let sha = v["files"][0]["sha256"].as_str().unwrap().to_owned();
    let sha1 = v["files"][1]["sha256"].as_str().unwrap().to_owned();
    let page = app.signed_in("coordinator").await;
    let png_of = |bytes: &[u8]| image::load_from_memory(bytes).unwrap().to_luma8();
    let r = page
        .get(&format!("/images/{sha}/preview.png?size=64"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let img = png_of(&r.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (64, 64), "fitted into the size asked for");
    // The same pixels as MONOCHROME1 render inverted (bone stays bright).
    let a = png_of(
        &page
            .get(&format!("/images/{sha}/preview.png"))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    let b = png_of(
        &page
            .get(&format!("/images/{sha1}/preview.png"))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(a.dimensions(), (128, 128), "never enlarged");
    let pixels_a: Vec<u8> = a.pixels().map(|p| p.0[0]).collect();
    let pixels_b: Vec<u8> = b.pixels().map(|p| p.0[0]).collect();
    let inverted = pixels_a
        .iter()
        .zip(&pixels_b)
        .filter(|(x, y)| (i16::from(**x) + i16::from(**y) - 255).abs() <= 1)
        .count();
    assert!(
        pixels_a.iter().any(|p| *p != pixels_a[0]),
        "not a flat image"
    );
    assert_eq!(
        inverted,
        pixels_a.len(),
        "MONOCHROME1 is inverted, pixel for pixel"
    );
    // A radiologist not assigned to the case, and a statistician, may not see it.
    let reader = app.signed_in("radiologist").await;
    assert_eq!(
        reader
            .get(&format!("/images/{sha}/preview.png"))
            .await
            .status(),
        403
    );
    let stats = app.signed_in("statistician").await;
    assert_eq!(
        stats
            .get(&format!("/images/{sha}/preview.png"))
            .await
            .status(),
        403
    );
    assert_eq!(
        page.get(&format!("/images/{}/preview.png", "0".repeat(64)))
            .await
            .status(),
        404
    );
    let (status, _) = api
        .send_json(
            reqwest::Method::POST,
            &format!("/cases/{id}/readers"),
            &serde_json::json!({"username": "radiologist"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        reader
            .get(&format!("/images/{sha}/preview.png"))
            .await
            .status(),
        200,
        "an assigned reader sees it"
    );
}

/// Dates in stored radiographs follow the study's setting: under `shift`
/// every date of a case moves back by the case's own number of days (PS3.15
/// Modified Dates Option), the same for each of its radiographs; the
/// setting is fixed once a radiograph is stored (issue: radiographs, point 4).
#[tokio::test]
async fn under_the_shift_setting_each_case_has_its_dates_moved_by_its_own_days() {
    let app = spawn_app().await;
    let pi = app.api_client("investigator").await;
    let (status, s) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"dicom_dates": "sideways"}),
        )
        .await;
    assert_eq!(status, 400, "{s}");
    let (status, s) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"dicom_dates": "shift"}),
        )
        .await;
    assert_eq!(
        (status, s["dicom_dates"].as_str()),
        (200, Some("shift")),
        "{s}"
    );
    let api = app.api_client("coordinator").await;
    let mut shifts = Vec::new();
    for (n, who) in ["Guo", "Tang"].into_iter().enumerate() {
        let id = enrol(&api).await;
        let seed = 40 + 2 * n as u16;
        let files = [
            Radiograph::cr(who, "AP", seed).bytes(),
            Radiograph::cr(who, "LL", seed + 1).bytes(),
        ];
        let (status, v) = upload(&api, id, &files, None).await;
        assert_eq!(status, 200, "{v}");
        let days: i64 = sqlx::query_scalar("SELECT days FROM case_date_shifts WHERE case_id = $1")
            .bind(id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!((-365..=-1).contains(&days), "{days}");
        let expected = (chrono::NaiveDate::from_ymd_opt(2025, 10, 2).unwrap()
            + chrono::Duration::days(days))
        .format("%Y%m%d")
        .to_string();
        for f in v["files"].as_array().unwrap() {
            let sha = f["sha256"].as_str().unwrap();
            let obj = dicom_object::open_file(stored_path(&app, sha)).unwrap();
            assert_eq!(
                text(&obj, Tag(0x0008, 0x0020)).as_deref(),
                Some(expected.as_str())
            );
            assert_eq!(
                text(&obj, Tag(0x0008, 0x0023)).as_deref(),
                Some(expected.as_str())
            );
            assert_eq!(
                text(&obj, Tag(0x0008, 0x002A)),
                Some(format!("{expected}101500")),
                "a date-time keeps its time"
            );
            assert_eq!(text(&obj, Tag(0x0028, 0x0303)).as_deref(), Some("MODIFIED"));
            assert!(text(&obj, Tag(0x0012, 0x0063))
                .unwrap()
                .contains("Modified Dates Option"));
            assert_eq!(
                methods(&obj)[1].0,
                "113107",
                "the Modified Dates Option's code"
            );
            osteo_tests::dciodvfy::assert_valid(
                &std::fs::read(stored_path(&app, sha)).unwrap(),
                "a copy with its dates moved",
            );
        }
        shifts.push(days);
    }
    // The shift is kept, never changed.
    let changed = sqlx::query("UPDATE case_date_shifts SET days = -1")
        .execute(app.db.pool())
        .await;
    assert!(changed.is_err(), "a date shift never changes");
    // Once a radiograph is stored the setting is fixed.
    let (status, s) = pi
        .send_json(
            Method::PATCH,
            "/study/settings",
            &json!({"dicom_dates": "keep"}),
        )
        .await;
    assert_eq!(status, 409, "{s}");
    assert!(s["error"]["message"]
        .as_str()
        .unwrap()
        .contains("fixed once the first radiograph is stored"));
    let (_, s) = pi.get_json("/study/settings").await;
    assert_eq!(s["dicom_dates"], "shift");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'settings.change' AND field = 'dicom_dates'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1, "the change is in the audit trail ({shifts:?})");
}

/// The viewer's window/level is done on the server in modality units:
/// `window.json` gives the default window and the value range, and the
/// preview takes any window (issue: radiographs, point 7).
#[tokio::test]
async fn the_viewer_windows_a_stored_radiograph_in_modality_units() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let mut mono2 = Radiograph::cr("Zhou", "AP", 31);
    mono2.size = 96;
    let mut mono1 = Radiograph::cr("Zhou", "AP", 31);
    mono1.size = 96;
    mono1.photometric = "MONOCHROME1";
    let (_, v) = upload(&api, id, &[mono2.bytes(), mono1.bytes()], None).await;
    let sha = v["files"][0]["sha256"].as_str().unwrap().to_owned();
    let sha1 = v["files"][1]["sha256"].as_str().unwrap().to_owned();
    let page = app.signed_in("coordinator").await;

    let r = page.get(&format!("/images/{sha}/window.json")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let info: Value = r.json().await.unwrap();
    let (min, max) = (info["min"].as_f64().unwrap(), info["max"].as_f64().unwrap());
    assert!(min < max, "{info}");
    assert!(info["width"].as_f64().unwrap() >= 1.0, "{info}");
    assert_eq!(info["monochrome1"], false);
    assert_eq!(
        (info["rows"].as_u64(), info["columns"].as_u64()),
        (Some(96), Some(96))
    );
    let (_, info1) = page.get_text(&format!("/images/{sha1}/window.json")).await;
    assert!(info1.contains("\"monochrome1\":true"), "{info1}");

    let luma = |bytes: &[u8]| -> Vec<u8> {
        image::load_from_memory(bytes)
            .unwrap()
            .to_luma8()
            .pixels()
            .map(|p| p.0[0])
            .collect()
    };
    let get = |sha: String, query: String| {
        let page = &page;
        async move {
            let r = page
                .get(&format!("/images/{sha}/preview.png?size=96{query}"))
                .await;
            assert_eq!(r.status(), 200, "{query}");
            luma(&r.bytes().await.unwrap())
        }
    };
    // The full range: the smallest value black, the largest white.
    let full = format!("&wc={}&ww={}", (min + max) / 2.0 + 0.5, max - min + 1.0);
    let pixels = get(sha.clone(), full.clone()).await;
    assert_eq!(pixels.iter().min(), Some(&0));
    assert_eq!(pixels.iter().max(), Some(&255));
    let default = get(sha.clone(), String::new()).await;
    assert_ne!(pixels, default, "another window, another picture");
    // A window one unit wide at the middle: every pixel black or white,
    // split by the value (PS3.3 C.11.2.1.2.1).
    let middle = (min + max) / 2.0;
    let binary = get(sha.clone(), format!("&wc={middle}&ww=1")).await;
    assert!(binary.iter().all(|p| *p == 0 || *p == 255));
    assert!(binary.contains(&0) && binary.contains(&255));
    // MONOCHROME1 through the same window: inverted pixel for pixel.
    let inverted = get(sha1.clone(), full).await;
    assert!(pixels
        .iter()
        .zip(&inverted)
        .all(|(a, b)| (i16::from(*a) + i16::from(*b) - 255).abs() <= 1));

    for bad in [
        "&wc=10",
        "&ww=10",
        "&wc=10&ww=0",
        "&wc=NaN&ww=10",
        "&wc=x&ww=10",
    ] {
        let r = page
            .get(&format!("/images/{sha}/preview.png?size=96{bad}"))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    // The same rule as the pictures: a radiologist not assigned sees neither.
    let reader = app.signed_in("radiologist").await;
    assert_eq!(
        reader
            .get(&format!("/images/{sha}/window.json"))
            .await
            .status(),
        403
    );
    assert_eq!(
        page.get(&format!("/images/{}/window.json", "0".repeat(64)))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn poor_quality_radiographs_propose_exclusion_e1_which_the_coordinator_confirms() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let mut img = Radiograph::cr("Chen", "AP", 20);
    img.size = 64;
    let (status, v) = upload(&api, id, &[img.bytes()], None).await;
    assert_eq!(status, 200, "{v}");
    let path = format!("/cases/{id}/poor-quality");

    // Bad input and the wrong role change nothing.
    let (status, v) = api
        .send_json(Method::POST, &path, &json!({"reason": "  "}))
        .await;
    assert_eq!(status, 400, "a reason is required: {v}");
    let radiologist = app.api_client("radiologist").await;
    let (status, _) = radiologist
        .send_json(Method::POST, &path, &json!({"reason": "blurred"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .send_json(
            Method::POST,
            "/cases/9999/poor-quality",
            &json!({"reason": "blurred"}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, case) = api.get_json(&format!("/cases/{id}")).await;
    assert_eq!(case["quality_marks"], json!([]));

    // The coordinator marks them: recorded, audited, shown, E1 proposed.
    let (status, case) = api
        .send_json(
            Method::POST,
            &path,
            &json!({"reason": "motion blur on both views"}),
        )
        .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(
        case["quality_marks"][0]["reason"],
        "motion blur on both views"
    );
    assert_eq!(
        case["summary"]["state"], "enrolled",
        "a proposal, not an exclusion"
    );
    let audited: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT new_value, reason FROM audit_log WHERE action = 'images.poor_quality'",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        audited,
        [(
            Some("poor: exclusion E1 proposed".to_owned()),
            Some("motion blur on both views".to_owned())
        )]
    );
    let page = app.signed_in("coordinator").await;
    let (status, html) = page.get_text(&format!("/cases/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("motion blur on both views"),
        "the mark is on the case page"
    );
    let end = html
        .find(r#"id="end-case""#)
        .map(|i| &html[i.saturating_sub(40)..i + 40]);
    assert!(
        end.is_some_and(|e| e.contains("open")),
        "the end of the case is offered: {end:?}"
    );
    assert!(
        html.contains(r#"value="excluded:E1" selected"#),
        "with E1 chosen"
    );

    // Confirmed by ending the case with E1; then the case takes no more marks.
    let (status, v) = api
        .send_json(
            Method::POST,
            &format!("/cases/{id}/end"),
            &json!({"kind": "excluded", "code": "E1", "reason": "radiographs unreadable"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .send_json(Method::POST, &path, &json!({"reason": "again"}))
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("excluded"),
        "{v}"
    );
    // The marks are append-only in the database itself.
    let changed = sqlx::query("UPDATE quality_marks SET reason = 'fine'")
        .execute(app.db.pool())
        .await;
    assert!(changed.is_err(), "the database refuses to change a mark");
}

/// The parser entry point against random bytes and mutated real files
/// (issue: radiographs, point 8): every input gets an answer — accepted or
/// refused with a reason — without a panic, and quickly. Seeded, so a
/// failure names an input that can be replayed.
#[test]
fn the_parser_answers_random_and_mutated_files_without_panicking() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    let mut valid = Radiograph::cr("Fuzz", "AP", 9);
    valid.size = 48;
    let valid = valid.bytes();
    assert!(
        osteo_server::imaging::inspect(&valid).is_ok(),
        "the seed file is accepted"
    );
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for n in 0..150 {
        // Random bytes, half of them behind a valid preamble and prefix.
        let len = rng.gen_range(0..600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if n % 2 == 0 {
            let mut framed = vec![0u8; 128];
            framed.extend_from_slice(b"DICM");
            framed.append(&mut bytes);
            bytes = framed;
        }
        inputs.push((format!("random {n}"), bytes));
    }
    for n in 0..400 {
        let mut bytes = valid.clone();
        let what = match n % 5 {
            0 => {
                // Flip a few bytes anywhere.
                for _ in 0..rng.gen_range(1..8) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
                "flipped bytes"
            }
            1 => {
                bytes.truncate(rng.gen_range(0..valid.len()));
                "truncated"
            }
            2 => {
                // A huge or odd length written over a header's length field.
                let at = rng.gen_range(132..(valid.len() - 4).min(1200));
                let value: u32 =
                    [0xFFFF_FFFF, 0xFFFF_FFFE, 0x7FFF_FFFF, 1, 3, rng.gen()][rng.gen_range(0..6)];
                bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                "length overwritten"
            }
            3 => {
                let at = rng.gen_range(0..bytes.len());
                let junk: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
                bytes.splice(at..at, junk);
                "bytes inserted"
            }
            _ => {
                let from = rng.gen_range(0..bytes.len());
                let to = (from + rng.gen_range(1..256)).min(bytes.len());
                bytes.drain(from..to);
                "bytes removed"
            }
        };
        inputs.push((format!("mutation {n} ({what})"), bytes));
    }
    let mut accepted = 0;
    for (name, bytes) in &inputs {
        let started = std::time::Instant::now();
        let answer = std::panic::catch_unwind(|| osteo_server::imaging::inspect(bytes));
        let took = started.elapsed();
        let answer = answer.unwrap_or_else(|_| panic!("{name}: the parser panicked"));
        assert!(took < std::time::Duration::from_secs(5), "{name}: {took:?}");
        match answer {
            Ok((_, inspected)) => {
                accepted += 1;
                assert!(inspected.rows > 0 && inspected.columns > 0, "{name}");
            }
            Err(e) => assert!(!e.to_string().is_empty(), "{name}: a reason"),
        }
    }
    // Mutations that miss what matters (a pixel value, a text) still load:
    // the harness exercised both answers.
    assert!(
        accepted > 0 && accepted < inputs.len(),
        "{accepted} of {}",
        inputs.len()
    );
}

/// Runs GDCM's `gdcmconv` (Debian's libgdcm-tools), an encoder independent
/// of the decoders under test, and returns the converted file.
fn gdcmconv(dir: &std::path::Path, input: &[u8], args: &[&str]) -> Vec<u8> {
    convert(dir, input, "gdcmconv", args)
}

fn transfer_syntax(bytes: &[u8]) -> String {
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(bytes))
        .unwrap();
    obj.meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned()
}

fn rendered(bytes: &[u8]) -> Vec<u8> {
    let (obj, _) = osteo_server::imaging::inspect(bytes).unwrap_or_else(|e| panic!("{e}"));
    osteo_server::imaging::render::to_image(&obj, None)
        .unwrap()
        .to_luma8()
        .into_raw()
}

/// What hospitals send (issue: radiographs, points 2 and 9): our own CR
/// files — 16-bit MONOCHROME2 and MONOCHROME1, 8-bit — re-encoded by GDCM
/// in each transfer syntax, are decoded (by dicom-rs, or by DCMTK for
/// 12-bit JPEG Extended and JPEG-LS) to the same pixels as the original
/// for the lossless ones and to nearly the same for the lossy ones.
#[test]
fn every_transfer_syntax_hospitals_send_decodes_to_the_original_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let mut mono1 = Radiograph::cr("Ts", "AP", 51);
    mono1.photometric = "MONOCHROME1";
    let mut eight = Radiograph::cr("Ts", "AP", 52);
    eight.bits = 8;
    let sources = [
        ("16-bit MONOCHROME2", Radiograph::cr("Ts", "AP", 50)),
        ("16-bit MONOCHROME1", mono1),
        ("8-bit", eight),
    ];
    let lossless: &[(&[&str], &str)] = &[
        (&["--implicit"], "1.2.840.10008.1.2"),
        (&["--deflated"], "1.2.840.10008.1.2.1.99"),
        (&["--rle"], "1.2.840.10008.1.2.5"),
        (&["--jpeg"], "1.2.840.10008.1.2.4.70"),
        (&["--j2k"], "1.2.840.10008.1.2.4.90"),
        (&["--jpegls"], "1.2.840.10008.1.2.4.80"),
    ];
    for (what, source) in &sources {
        let original = source.bytes();
        let expected = rendered(&original);
        for (args, ts) in lossless {
            let converted = gdcmconv(dir.path(), &original, args);
            assert_eq!(&transfer_syntax(&converted), ts, "{what} {args:?}");
            assert_eq!(
                rendered(&converted),
                expected,
                "{what} {args:?}: the same pixels"
            );
        }
        // Lossy JPEG: 8-bit baseline by GDCM; 12-bit Extended (what CR
        // units send) by DCMTK's dcmcjpeg, as GDCM writes 16-bit precision.
        let jpeg_lossy: (&str, &[&str], &str) = if source.bits == 8 {
            (
                "gdcmconv",
                &["--jpeg", "--lossy", "-q", "95"],
                "1.2.840.10008.1.2.4.50",
            )
        } else {
            ("dcmcjpeg", &["+ee", "+q", "95"], "1.2.840.10008.1.2.4.51")
        };
        let lossy: &[(&str, &[&str], &str)] = &[
            jpeg_lossy,
            (
                "gdcmconv",
                &["--jpegls", "--lossy", "-e", "2"],
                "1.2.840.10008.1.2.4.81",
            ),
            (
                "gdcmconv",
                &["--j2k", "--lossy", "-q", "80"],
                "1.2.840.10008.1.2.4.91",
            ),
        ];
        for (program, args, ts) in lossy {
            let converted = convert(dir.path(), &original, program, args);
            assert_eq!(&transfer_syntax(&converted), ts, "{what} {args:?}");
            let got = rendered(&converted);
            let mean_error = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| f64::from((i16::from(*a) - i16::from(*b)).abs()))
                .sum::<f64>()
                / expected.len() as f64;
            assert!(mean_error < 8.0, "{what} {args:?}: mean error {mean_error}");
        }
    }
}

/// A JPEG-LS radiograph uploaded through the API: decoded by DCMTK, stored
/// uncompressed and de-identified, with a warning that says so.
#[tokio::test]
async fn a_jpeg_ls_upload_is_decoded_by_dcmtk_and_stored_uncompressed() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let dir = tempfile::tempdir().unwrap();
    let original = Radiograph::cr("Ls", "AP", 60).bytes();
    let jpeg_ls = gdcmconv(dir.path(), &original, &["--jpegls"]);
    let (status, v) = upload(&api, id, &[jpeg_ls], None).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["files"][0]["warnings"]
            .to_string()
            .contains("JPEG-LS Lossless (1.2.840.10008.1.2.4.80) decoded by DCMTK's dcmdjpls"),
        "{v}"
    );
    let stored =
        std::fs::read(stored_path(&app, v["files"][0]["sha256"].as_str().unwrap())).unwrap();
    assert_eq!(transfer_syntax(&stored), "1.2.840.10008.1.2.1");
    assert_eq!(rendered(&stored), rendered(&original), "the same pixels");
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(&stored))
        .unwrap();
    assert_eq!(
        text(&obj, Tag(0x0010, 0x0010)).as_deref(),
        Some("P-0001"),
        "de-identified"
    );
}

/// pydicom's test files — real-world and deliberately malformed files from
/// many vendors and tools — through the parser entry point: each gets an
/// answer quickly and without a panic, and the grayscale images among them
/// decode, whatever their transfer syntax (issue: radiographs, point 2).
#[test]
fn pydicom_test_files_each_get_a_quick_answer_and_the_grayscale_ones_decode() {
    let dir = osteo_tests::pydicom_test_files();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "{} files in {}",
        files.len(),
        dir.display()
    );
    let mut decoded = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let started = std::time::Instant::now();
        let report = std::panic::catch_unwind(|| osteo_server::cli::images::check(&name, &bytes))
            .unwrap_or_else(|_| panic!("{name}: panicked"));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "{name}: {took:?}");
        assert!(
            report.accepted || report.refused.is_some(),
            "{name}: an answer"
        );
        if report.decodes {
            decoded.push(name);
        }
    }
    // Grayscale images in every transfer syntax the corpus has: explicit and
    // implicit little endian, big endian, deflated, RLE, JPEG 2000 (lossless
    // and lossy), 12-bit JPEG Extended and JPEG-LS (through DCMTK).
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "JPEG2000.dcm",
        "JPGExtended.dcm",
        "JPEG-lossy.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ] {
        assert!(
            decoded.iter().any(|d| d == name),
            "{name} decodes; decoded: {decoded:?}"
        );
    }
}

/// One bad upload cannot stall the server (issue: radiographs, point 2):
/// each file is read first in a child process under a time and a memory
/// limit; a file that needs more is refused with the reason, nothing is
/// stored, the refusal is audited, and the server goes on serving.
#[tokio::test]
async fn a_file_that_needs_more_time_or_memory_than_allowed_is_refused() {
    use osteo_server::imaging::parse_bound::ParseBound;
    // A memory bound that the small test files fit in and a 2,500 × 3,000
    // radiograph (decoded to 64-bit values for windowing) does not.
    let app = osteo_tests::spawn_app_with(|s| {
        s.parse_bound = Some(ParseBound {
            program: osteo_tests::binary(),
            memory_mib: 160,
        })
    })
    .await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let big = osteo_server::cli::images::bench_radiograph();
    let small = Radiograph::cr("Bound", "AP", 80).bytes();
    let (status, v) = upload(&api, id, &[big, small], None).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("more than 160 MiB of memory"),
        "{v}"
    );
    assert_eq!(
        v["files"][1]["stored"], true,
        "the next file is read as usual"
    );
    let refused: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'image.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refused, 1);

    // A bound the reader cannot even start in: refused, with the bound named.
    let tiny = osteo_tests::spawn_app_with(|s| {
        s.parse_bound = Some(ParseBound {
            program: osteo_tests::binary(),
            memory_mib: 1,
        })
    })
    .await;
    let api = tiny.api_client("coordinator").await;
    let id = enrol(&api).await;
    let (status, v) = upload(&api, id, &[Radiograph::cr("Bound", "AP", 82).bytes()], None).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("more than 1 MiB of memory"),
        "{v}"
    );

    // A time bound no reading can meet: refused as taking too long.
    let slow =
        osteo_tests::spawn_app_with(|s| s.parse_timeout = std::time::Duration::from_millis(1))
            .await;
    let api = slow.api_client("coordinator").await;
    let id = enrol(&api).await;
    let (status, v) = upload(&api, id, &[Radiograph::cr("Bound", "AP", 81).bytes()], None).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("took longer than 1 s"),
        "{v}"
    );
    let (_, detail) = api.get_json(&format!("/cases/{id}")).await;
    assert_eq!(
        detail["images"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
    let (status, _) = api.get_json("/cases").await;
    assert_eq!(status, 200, "the server carries on");
}

/// The storage interface (issue: radiographs, point 5): with an object
/// store configured (here the `object_store` crate's memory store) uploads,
/// previews and the viewer work the same and nothing is written under the
/// data directory's objects folder.
#[tokio::test]
async fn radiographs_can_live_in_an_object_store() {
    let app = osteo_tests::spawn_app_with(|s| s.object_store = Some("memory:///".into())).await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let (status, v) = upload(&api, id, &[Radiograph::cr("Store", "AP", 90).bytes()], None).await;
    assert_eq!(status, 200, "{v}");
    let sha = v["files"][0]["sha256"].as_str().unwrap();
    assert!(!stored_path(&app, sha).exists(), "not on the local disk");
    let (status, v) = upload(&api, id, &[Radiograph::cr("Store", "AP", 90).bytes()], None).await;
    assert_eq!(status, 400, "a duplicate is still found: {v}");
    let page = app.signed_in("coordinator").await;
    for path in [
        format!("/images/{sha}/preview.png?size=64"),
        format!("/images/{sha}/window.json"),
    ] {
        assert_eq!(page.get(&path).await.status(), 200, "{path}");
    }
}

/// Bad input (issue: radiographs, point 8): an empty file, a truncated one,
/// one over the size limit, a CT image and one without pixel data — each
/// refused with its own reason, nothing stored, each refusal audited.
#[tokio::test]
async fn each_kind_of_bad_file_is_refused_with_its_own_reason_and_audited() {
    let app = osteo_tests::spawn_app_with(|s| s.file_limit = 20_000).await;
    let api = app.api_client("coordinator").await;
    let id = enrol(&api).await;
    let good = Radiograph::cr("Bad", "AP", 100).bytes();
    let truncated = good[..good.len() * 3 / 5].to_vec();
    let mut large = Radiograph::cr("Bad", "AP", 101);
    large.size = 128;
    let large = large.bytes();
    let large_size = large.len();
    let mut ct = Radiograph::cr("Bad", "AP", 102);
    ct.modality = "CT";
    let mut no_pixels = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(&good))
        .unwrap();
    no_pixels.remove_element(Tag(0x7FE0, 0x0010));
    let mut without = Vec::new();
    no_pixels.write_all(&mut without).unwrap();
    let (status, v) = upload(
        &api,
        id,
        &[Vec::new(), truncated, large, ct.bytes(), without],
        None,
    )
    .await;
    assert_eq!(status, 400, "nothing stored: {v}");
    let reasons: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "the file is empty");
    assert!(
        reasons[1].starts_with("the file cannot be read safely (damaged, or a sequence this reader cannot follow): element (7FE0,0010)"),
        "{}",
        reasons[1]
    );
    assert_eq!(
        reasons[2],
        format!("the file ({large_size} bytes) is larger than the limit of 20000 bytes")
    );
    assert_eq!(
        reasons[3],
        "modality `CT` is not a radiograph; upload CR or DX images"
    );
    assert_eq!(reasons[4], "the file has no pixel data");
    let refused: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'image.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refused, 5, "each refusal audited");
    let (_, detail) = api.get_json(&format!("/cases/{id}")).await;
    assert_eq!(detail["images"].as_array().unwrap().len(), 0);
}

/// Files made by DCMTK's `img2dcm` from ordinary pictures (issue:
/// radiographs, point 9): an 8-bit BMP (uncompressed) and a JPEG (kept as
/// JPEG baseline), declared CR, are accepted and render as the picture.
#[test]
fn img2dcm_files_are_read_as_the_pictures_they_were_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let picture =
        image::GrayImage::from_fn(96, 64, |x, y| image::Luma([((x * 2 + y) % 256) as u8]));
    for (format, name, input_format, ts) in [
        (
            image::ImageFormat::Bmp,
            "in.bmp",
            "BMP",
            "1.2.840.10008.1.2.1",
        ),
        (
            image::ImageFormat::Jpeg,
            "in.jpg",
            "JPEG",
            "1.2.840.10008.1.2.4.50",
        ),
    ] {
        let input = dir.path().join(name);
        let output = dir.path().join(format!("{name}.dcm"));
        image::DynamicImage::ImageLuma8(picture.clone())
            .save_with_format(&input, format)
            .unwrap();
        let status = std::process::Command::new("img2dcm")
            .args([
                "-i",
                input_format,
                "-k",
                "Modality=CR",
                "-k",
                "ViewPosition=AP",
                "-k",
                "PatientName=Img^Test",
            ])
            .arg(&input)
            .arg(&output)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("img2dcm: install Debian's dcmtk (.ci/run does)");
        assert!(status.success(), "img2dcm {input_format}");
        let bytes = std::fs::read(&output).unwrap();
        assert_eq!(transfer_syntax(&bytes), ts, "{input_format}");
        let (obj, inspected) = osteo_server::imaging::inspect(&bytes)
            .unwrap_or_else(|e| panic!("{input_format}: {e}"));
        assert_eq!((inspected.columns, inspected.rows), (96, 64));
        let values: Vec<f32> = osteo_model::pixels::Modality::from_dicom(&obj)
            .unwrap()
            .values
            .iter()
            .map(|v| *v as f32)
            .collect();
        let error = values
            .iter()
            .zip(picture.pixels())
            .map(|(v, p)| (v - f32::from(p.0[0])).abs())
            .sum::<f32>()
            / values.len() as f32;
        let limit = if input_format == "BMP" { 0.0 } else { 6.0 };
        assert!(error <= limit, "{input_format}: mean error {error}");
    }
}

/// A preview of a JPEG 2000 radiograph decoded at a lower resolution level
/// looks like the preview of the same pixels stored uncompressed (issue:
/// radiographs, points 6 and 11).
#[test]
fn a_reduced_resolution_jpeg_2000_preview_matches_the_uncompressed_one() {
    let dir = tempfile::tempdir().unwrap();
    // The benchmark's radiograph: 2,500 × 3,000, smooth anatomy and noise.
    let plain = osteo_server::cli::images::bench_radiograph();
    let j2k = gdcmconv(dir.path(), &plain, &["--j2k"]);
    let preview = |bytes: &[u8]| {
        let obj = dicom_object::OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(bytes))
            .unwrap();
        let png = osteo_server::imaging::render::png(&obj, 1024, None).unwrap();
        image::load_from_memory(&png).unwrap().to_luma8()
    };
    let (a, b) = (preview(&plain), preview(&j2k));
    assert_eq!(a.dimensions(), (853, 1024));
    assert_eq!(b.dimensions(), (853, 1024));
    let mean_error = a
        .pixels()
        .zip(b.pixels())
        .map(|(x, y)| f64::from((i16::from(x.0[0]) - i16::from(y.0[0])).abs()))
        .sum::<f64>()
        / f64::from(853 * 1024);
    assert!(mean_error < 2.0, "mean error {mean_error}");
}

/// The preview path's quick reduction gives what the full path gives:
/// the same block averages and the full image's default window.
#[test]
fn the_quick_preview_reduction_equals_the_full_one() {
    use osteo_model::pixels::Modality;
    for (photometric, size, factor) in [("MONOCHROME2", 200, 2), ("MONOCHROME1", 131, 3)] {
        let mut source = Radiograph::cr("Quick", "AP", 120);
        source.size = size;
        source.photometric = photometric;
        let obj = dicom_object::OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(source.bytes()))
            .unwrap();
        let full = Modality::from_dicom(&obj).unwrap();
        let (quick, window) = Modality::preview_from_dicom(&obj, factor).unwrap();
        assert_eq!(window, full.default_window(), "{photometric}");
        let slow = full.downscaled(factor);
        assert_eq!((quick.width, quick.height), (slow.width, slow.height));
        assert!(quick
            .values
            .iter()
            .zip(&slow.values)
            .all(|(a, b)| (a - b).abs() < 1e-9));
        assert_eq!(quick.monochrome1, photometric == "MONOCHROME1");
    }
}

/// Every DICOM object the system writes passes dicom3tools' `dciodvfy`
/// with no error and DCMTK's `dcmdump` reads it: the phantoms the demo
/// study and the model's tests are made of, and their de-identified copies
/// stored through the upload (issue: a PACS link, point 4). The heat maps
/// are PNG pictures, not DICOM objects.
#[tokio::test]
async fn the_phantoms_and_their_stored_copies_are_valid_dicom() {
    let app = spawn_app().await;
    let api = app.api_client("coordinator").await;
    let config = osteo_model::phantom::PhantomConfig {
        seed: 7,
        ..Default::default()
    };
    for case in osteo_model::phantom::generate(2, &config) {
        let files: Vec<Vec<u8>> = (0..case.views.len())
            .map(|v| case.dicom(v).unwrap())
            .collect();
        for (v, file) in files.iter().enumerate() {
            osteo_tests::dciodvfy::assert_valid(
                file,
                &format!("phantom {} view {v}", case.case_id),
            );
        }
        let id = enrol(&api).await;
        let (status, answer) = upload(&api, id, &files, None).await;
        assert_eq!(status, 200, "{answer}");
        for f in answer["files"].as_array().unwrap() {
            assert_eq!(f["stored"].as_bool(), Some(true), "{f}");
            let path = stored_path(&app, f["sha256"].as_str().unwrap());
            let stored = std::fs::read(&path).unwrap();
            osteo_tests::dciodvfy::assert_valid(&stored, "a phantom's stored copy");
            let obj = dicom_object::OpenFileOptions::new()
                .from_reader(&stored[..])
                .unwrap();
            assert_eq!(text(&obj, Tag(0x0012, 0x0062)).as_deref(), Some("YES"));
            assert_eq!(methods(&obj).len(), 2);
            let dump = std::process::Command::new("dcmdump")
                .arg(&path)
                .output()
                .expect("dcmdump: install Debian's dcmtk (.ci/run does)");
            assert!(dump.status.success(), "dcmdump reads {}", path.display());
        }
    }
}
