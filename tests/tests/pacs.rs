//! The PACS link (issue: a PACS link, point 1): the server's C-STORE SCP
//! with DCMTK as the peer — `echoscu`, `storescu -xv` sending a two-view
//! JPEG 2000 study, `storescu +sd` sending a folder of mixed transfer
//! syntaxes, an association from an unknown AE refused — and the routes
//! and the quarantine that decide where a received image goes.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::dicom::{convert, Radiograph, DX_FOR_PROCESSING};
use osteo_tests::pacs::{add_route, spawn_app_with_dicom};
use osteo_tests::workflow::enrol;
use osteo_tests::TestApp;
use reqwest::Method;
use serde_json::json;
use std::process::{Command, Output};

const OUR_AE: &str = "OSTEO";
const SENDER: &str = "MODALITY1";

async fn app_with_dicom() -> TestApp {
    app_with_dicom_over(None).await
}

/// A server whose DICOM port speaks TLS when `tls` is given, with
/// [`SENDER`] at 127.0.0.1 as its allowed peer.
async fn app_with_dicom_over(tls: Option<osteo_server::pacs::scp::TlsFiles>) -> TestApp {
    spawn_app_with_dicom(OUR_AE, SENDER, tls).await
}

/// Runs a DCMTK network tool against the server as `calling` AE, off the
/// test's thread (the database connections this test opened run on it).
async fn dcmtk(
    app: &TestApp,
    program: &str,
    calling: &str,
    args: &[&str],
    files: &[&std::path::Path],
) -> Output {
    let mut command = Command::new(program);
    command
        .args(["-aet", calling, "-aec", OUR_AE])
        .args(args)
        .arg("127.0.0.1")
        .arg(app.dicom_port.unwrap().to_string())
        .args(files);
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        command
            .output()
            .unwrap_or_else(|e| panic!("{program} ({e}): install Debian's dcmtk (.ci/run does)"))
    })
    .await
    .unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn route(app: &TestApp, case_id: i64, kind: &str, identifier: &str) {
    add_route(
        &app.api_client("coordinator").await,
        case_id,
        kind,
        identifier,
    )
    .await;
}

async fn images_of(app: &TestApp, case_id: i64) -> Vec<serde_json::Value> {
    osteo_tests::pacs::images_of(&app.api_client("coordinator").await, case_id).await
}

/// Done means: a `storescu` sends a real-looking CR study (two views, JPEG
/// 2000) to a running server, and it appears on the right case,
/// de-identified, without anyone touching a browser.
#[tokio::test]
async fn a_two_view_jpeg_2000_study_sent_by_storescu_lands_on_its_case_de_identified() {
    let app = app_with_dicom().await;
    let echo = dcmtk(&app, "echoscu", SENDER, &[], &[]).await;
    assert!(echo.status.success(), "C-ECHO: {}", said(&echo));

    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    let other = enrol(&coordinator).await;
    route(&app, id, "accession_number", "ACC123456").await;
    // The route's identifier is not kept, nor anything of it.
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hmac FROM dicom_routes")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains("ACC") && stored[0].len() == 64);

    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = [("AP", 11u16), ("LL", 12)]
        .into_iter()
        .map(|(view, seed)| {
            let j2k = convert(
                dir.path(),
                &Radiograph::cr("Wang", view, seed).bytes(),
                "gdcmconv",
                &["--j2k"],
            );
            write(dir.path(), &format!("{view}.dcm"), &j2k)
        })
        .collect();
    let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let store = dcmtk(&app, "storescu", SENDER, &["-xv", "-v"], &paths).await;
    let log = said(&store);
    assert!(store.status.success(), "{log}");
    assert!(log.contains("JPEG 2000"), "JPEG 2000 was negotiated: {log}");
    assert!(!log.contains("Error"), "{log}");

    let images = images_of(&app, id).await;
    let views: Vec<&str> = images.iter().filter_map(|i| i["view"].as_str()).collect();
    assert_eq!(views, ["frontal", "lateral"], "{images:?}");
    assert!(
        images_of(&app, other).await.is_empty(),
        "nothing guessed onto another case"
    );
    for image in &images {
        let sha = image["sha256"].as_str().unwrap();
        let path = app
            .dir
            .path()
            .join("objects")
            .join(&sha[..2])
            .join(format!("{sha}.dcm"));
        let bytes = std::fs::read(&path).unwrap();
        for secret in ["Wang", "MRN-Wang", "ACC123456", "Affiliated Hospital"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "`{secret}` is not in the stored copy"
            );
        }
        osteo_tests::dciodvfy::assert_valid(&bytes, "a received, de-identified CR");
    }
    // Who sent it is on the record.
    let senders: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'image.attach'")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert_eq!(
        senders,
        [format!("dicom:{SENDER}"), format!("dicom:{SENDER}")]
    );

    // The same study sent again is acknowledged and stored once.
    let again = dcmtk(&app, "storescu", SENDER, &["-xv"], &paths).await;
    assert!(again.status.success(), "{}", said(&again));
    assert_eq!(images_of(&app, id).await.len(), 2);
}

/// An association from an AE that is not an allowed peer, or that calls
/// another AE title, is rejected at negotiation and audited; nothing it
/// sends is kept.
#[tokio::test]
async fn unknown_callers_are_refused_at_association_and_audited() {
    let app = app_with_dicom().await;
    let stranger = dcmtk(&app, "echoscu", "STRANGER", &[], &[]).await;
    assert!(!stranger.status.success(), "{}", said(&stranger));
    assert!(
        said(&stranger).to_lowercase().contains("reject"),
        "{}",
        said(&stranger)
    );
    let mut wrong_called = Command::new("echoscu");
    wrong_called
        .args(["-aet", SENDER, "-aec", "SOMEONE"])
        .arg("127.0.0.1")
        .arg(app.dicom_port.unwrap().to_string());
    let wrong_called = tokio::task::spawn_blocking(move || wrong_called.output().unwrap())
        .await
        .unwrap();
    assert!(!wrong_called.status.success());
    // The refusal is audited as the connection closes: wait for it.
    let mut refused: Vec<String> = Vec::new();
    for _ in 0..100 {
        refused = sqlx::query_scalar(
            "SELECT new_value FROM audit_log WHERE action = 'dicom.association.refused' ORDER BY seq",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        if refused.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].starts_with("STRANGER at 127.0.0.1"),
        "{refused:?}"
    );
    assert!(refused[1].contains("called AE title"), "{refused:?}");

    // A retired peer is refused too.
    let admin = app.api_client("admin").await;
    let (_, peers) = admin.get_json("/dicom/peers").await;
    let peer = peers[0]["id"].as_i64().unwrap();
    let (status, _) = admin
        .send_json(
            Method::POST,
            &format!("/dicom/peers/{peer}/retire"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let after = dcmtk(&app, "echoscu", SENDER, &[], &[]).await;
    assert!(!after.status.success(), "{}", said(&after));
}

/// An image that matches no route waits in quarantine; the coordinator sees
/// what the file says, assigns it to its case (through the upload's path)
/// or discards it with a reason; the original leaves the quarantine folder
/// either way. A file the checks refuse is answered with a failure status.
#[tokio::test]
async fn unmatched_images_wait_in_quarantine_until_a_coordinator_resolves_them() {
    let app = app_with_dicom().await;
    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    let dir = tempfile::tempdir().unwrap();
    let lost = write(
        dir.path(),
        "lost.dcm",
        &Radiograph::cr("Li", "AP", 21).bytes(),
    );
    let stray = write(
        dir.path(),
        "stray.dcm",
        &Radiograph::cr("Zhou", "AP", 22).bytes(),
    );
    let sent = dcmtk(
        &app,
        "storescu",
        SENDER,
        &[],
        &[lost.as_path(), stray.as_path()],
    )
    .await;
    assert!(sent.status.success(), "{}", said(&sent));

    let (status, waiting) = coordinator.get_json("/dicom/quarantine").await;
    assert_eq!(status, 200, "{waiting}");
    let waiting = waiting.as_array().unwrap().clone();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting.iter().all(|q| q["outcome"].is_null()));
    assert!(
        app.dir
            .path()
            .join("quarantine")
            .read_dir()
            .unwrap()
            .count()
            == 2
    );
    // A radiologist and a statistician do not see the quarantine.
    for role in ["radiologist", "statistician"] {
        let (status, _) = app
            .api_client(role)
            .await
            .get_json("/dicom/quarantine")
            .await;
        assert_eq!(status, 403, "{role}");
    }
    let first = waiting[0]["id"].as_i64().unwrap();
    let second = waiting[1]["id"].as_i64().unwrap();
    let (_, detail) = coordinator
        .get_json(&format!("/dicom/quarantine/{first}"))
        .await;
    assert_eq!(detail["found"]["patient_id"], "MRN-Li", "{detail}");
    assert_eq!(detail["found"]["accession_number"], "ACC123456", "{detail}");

    let (status, body) = coordinator
        .send_json(
            Method::POST,
            &format!("/dicom/quarantine/{first}/assign"),
            &json!({"case_id": id}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(images_of(&app, id).await.len(), 1);
    let (status, body) = coordinator
        .send_json(
            Method::POST,
            &format!("/dicom/quarantine/{second}/discard"),
            &json!({"reason": ""}),
        )
        .await;
    assert_eq!(status, 400, "a discard needs a reason: {body}");
    // The page: the waiting image with what its file says, and its forms;
    // the coordinator discards it there (a plain form post).
    let page = app.signed_in("coordinator").await;
    let (status, html) = page.get_text("/dicom/quarantine").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("quarantined-{second}")), "{html}");
    assert!(
        html.contains("MRN-Zhou") && html.contains("Zhou^Test"),
        "{html}"
    );
    assert!(html.contains(&format!("action=\"/dicom/quarantine/{second}/discard\"")));
    let answer = page
        .post_form(
            &format!("/dicom/quarantine/{second}/assign"),
            &[("study_number", "P-9999"), ("view", "auto")],
        )
        .await;
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(location(&answer), "/dicom/quarantine?error=no_case");
    let answer = page
        .post_form(
            &format!("/dicom/quarantine/{second}/discard"),
            &[("reason", "not a trial patient: sent to the wrong AE")],
        )
        .await;
    assert_eq!(location(&answer), "/dicom/quarantine");
    let (_, html) = page.get_text("/dicom/quarantine").await;
    assert!(
        !html.contains("MRN-Zhou"),
        "resolved: what the file said is gone"
    );
    let (status, html) = app
        .signed_in("radiologist")
        .await
        .get_text("/dicom/quarantine")
        .await;
    assert_eq!(status, 200, "the page answers, without the list");
    assert!(!html.contains("id=\"quarantine\""));
    let (status, _) = coordinator
        .send_json(
            Method::POST,
            &format!("/dicom/quarantine/{second}/assign"),
            &json!({"case_id": id}),
        )
        .await;
    assert_eq!(status, 404, "resolved once");
    let (_, all) = coordinator.get_json("/dicom/quarantine").await;
    let outcomes: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["assigned", "discarded"]);
    assert_eq!(
        app.dir
            .path()
            .join("quarantine")
            .read_dir()
            .unwrap()
            .count(),
        0,
        "the originals, with their identifiers, are gone"
    );
    // The database refuses a second resolution and a deletion.
    for sql in [
        "UPDATE dicom_quarantine SET outcome = 'discarded' WHERE outcome = 'assigned'",
        "DELETE FROM dicom_quarantine",
    ] {
        assert!(
            sqlx::query(sql).execute(app.db.pool()).await.is_err(),
            "{sql}"
        );
    }

    // A DX "for processing" image is refused by the checks: a failure
    // status, an audit record, nothing kept.
    let mut raw = Radiograph::cr("Sun", "AP", 23);
    raw.sop_class = DX_FOR_PROCESSING;
    raw.modality = "DX";
    let raw = write(dir.path(), "raw.dcm", &raw.bytes());
    let refused = dcmtk(&app, "storescu", SENDER, &["-v"], &[raw.as_path()]).await;
    let log = said(&refused);
    assert!(
        log.contains("0xc000") || log.contains("Cannot understand") || log.contains("Error"),
        "{log}"
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'dicom.image.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(audited, 1);
    let (_, all) = coordinator.get_json("/dicom/quarantine").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "not quarantined");
}

/// `storescu +sd` sends a folder of radiographs in the transfer syntaxes
/// hospitals use; each is negotiated as it is and stored decoded.
#[tokio::test]
async fn a_folder_of_mixed_transfer_syntaxes_is_received_whole() {
    let app = app_with_dicom().await;
    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    route(&app, id, "patient_id", "MRN-Gao").await;
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let folder = dir.path().join("study");
    std::fs::create_dir(&folder).unwrap();
    let made: [(&str, &[&str]); 7] = [
        ("gdcmconv", &["--raw"]),  // explicit VR little endian
        ("dcmconv", &["+tb"]),     // explicit VR big endian
        ("gdcmconv", &["--rle"]),  // RLE lossless
        ("gdcmconv", &["--jpeg"]), // JPEG lossless
        ("gdcmconv", &["--j2k"]),  // JPEG 2000 lossless
        ("dcmconv", &["+td"]),     // deflated explicit VR little endian
        ("dcmcjpls", &[]),         // JPEG-LS lossless (decoded by DCMTK)
    ];
    for (n, (program, args)) in made.iter().enumerate() {
        let original = Radiograph::cr("Gao", "AP", 30 + n as u16).bytes();
        write(
            &folder,
            &format!("{n}.dcm"),
            &convert(work.path(), &original, program, args),
        );
    }
    // storescu proposes uncompressed syntaxes unless told otherwise; this
    // profile (DCMTK's association configuration file) proposes one
    // context per syntax of the folder, so that each file goes as it is.
    let syntaxes = [
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.4.80",
    ];
    let mut config = String::from("[[TransferSyntaxes]]\n");
    for (n, ts) in syntaxes.iter().enumerate() {
        config += &format!("[TS{n}]\nTransferSyntax1 = {ts}\n");
    }
    config += "[[PresentationContexts]]\n[Mixed]\n";
    for n in 0..syntaxes.len() {
        config += &format!(
            "PresentationContext{} = 1.2.840.10008.5.1.4.1.1.1\\TS{n}\n",
            n + 1
        );
    }
    config += "[[Profiles]]\n[Mixed]\nPresentationContexts = Mixed\n";
    let config = write(dir.path(), "mixed.cfg", config.as_bytes());
    let config = config.to_str().unwrap();
    let sent = dcmtk(
        &app,
        "storescu",
        SENDER,
        &["+sd", "-xf", config, "Mixed", "-v"],
        &[folder.as_path()],
    )
    .await;
    let log = said(&sent);
    assert!(sent.status.success(), "{log}");
    let mut got: Vec<String> = sqlx::query_scalar(
        "SELECT transfer_syntax FROM case_images WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    got.sort();
    // JPEG-LS is decoded by DCMTK on the way in and recorded as the
    // uncompressed file it became (as an upload is).
    let mut sent: Vec<&str> = syntaxes
        .iter()
        .map(|ts| match *ts {
            "1.2.840.10008.1.2.4.80" => "1.2.840.10008.1.2.1",
            ts => ts,
        })
        .collect();
    sent.sort();
    assert_eq!(got, sent, "each file was stored: {log}");
    // storescu says "Converting transfer syntax: A -> A" even when it
    // does not: each file went in its own syntax.
    for line in log.lines() {
        if let Some(change) = line.split("Converting transfer syntax: ").nth(1) {
            let (from, to) = change.split_once(" -> ").unwrap();
            assert_eq!(from.trim(), to.trim(), "{log}");
        }
    }
}

/// Makes, with Debian's `openssl`, an authority and the certificates it
/// signs for the server and a sending modality: `(dir, files)`.
fn certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", said(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=Hospital test CA",
        "-days",
        "2",
    ]);
    for (who, usage) in [("server", "serverAuth"), ("modality", "clientAuth")] {
        std::fs::write(
            dir.join(format!("{who}.ext")),
            format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{who}.key"),
            "-out",
            &format!("{who}.csr"),
            "-subj",
            &format!("/CN={who}"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{who}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{who}.ext"),
        ]);
    }
}

/// DICOM over TLS with mutual authentication: a modality holding a
/// certificate of the hospital's authority, and allowed as a peer, echoes
/// and stores; a plain connection, a TLS caller without a certificate and
/// an unknown AE with a good certificate are all refused.
#[tokio::test]
async fn dicom_over_tls_takes_allowed_peers_with_certificates_only() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let app = app_with_dicom_over(Some(osteo_server::pacs::scp::TlsFiles {
        cert: certs.path().join("server.pem"),
        key: certs.path().join("server.key"),
        client_ca: Some(certs.path().join("ca.pem")),
    }))
    .await;
    let (key, cert, ca) = (file("modality.key"), file("modality.pem"), file("ca.pem"));
    let tls = ["+tls", key.as_str(), cert.as_str(), "+cf", ca.as_str()];

    let echo = dcmtk(&app, "echoscu", SENDER, &tls, &[]).await;
    assert!(echo.status.success(), "C-ECHO over TLS: {}", said(&echo));

    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    route(&app, id, "patient_id", "MRN-Gao").await;
    let dir = tempfile::tempdir().unwrap();
    let image = write(
        dir.path(),
        "ap.dcm",
        &Radiograph::cr("Gao", "AP", 61).bytes(),
    );
    let store = dcmtk(&app, "storescu", SENDER, &tls, &[image.as_path()]).await;
    assert!(store.status.success(), "C-STORE over TLS: {}", said(&store));
    assert_eq!(images_of(&app, id).await.len(), 1);

    let plain = dcmtk(&app, "echoscu", SENDER, &[], &[]).await;
    assert!(!plain.status.success(), "plain DICOM: {}", said(&plain));
    let anonymous = dcmtk(&app, "echoscu", SENDER, &["+tla", "+cf", ca.as_str()], &[]).await;
    assert!(
        !anonymous.status.success(),
        "TLS without a certificate: {}",
        said(&anonymous)
    );
    let stranger = dcmtk(&app, "echoscu", "STRANGER", &tls, &[]).await;
    assert!(!stranger.status.success(), "{}", said(&stranger));
    assert!(
        said(&stranger).to_lowercase().contains("reject"),
        "{}",
        said(&stranger)
    );
}

/// A peer that sends the study number in a tag of its own (here Study ID,
/// set by the modality's operator) has its images routed by it when no
/// worklist route matches; a number that names no case, or that disagrees
/// with a route, leaves the image in quarantine.
#[tokio::test]
async fn a_peer_that_carries_the_study_number_in_a_configured_tag_is_routed_by_it() {
    const TAGGED: &str = "MODALITY2";
    let app = app_with_dicom().await;
    let admin = app.api_client("admin").await;
    let (status, refused) = admin
        .send_json(
            Method::POST,
            "/dicom/peers",
            &json!({"ae_title": TAGGED, "study_number_tag": "NoSuchKeyword"}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "bad_tag", "{refused}");
    let (status, peer) = admin
        .send_json(
            Method::POST,
            "/dicom/peers",
            &json!({"ae_title": TAGGED, "address": "127.0.0.1", "study_number_tag": "StudyID"}),
        )
        .await;
    assert_eq!(status, 201, "{peer}");
    assert_eq!(peer["study_number_tag"], "00200010", "{peer}");

    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    let other = enrol(&coordinator).await;
    let (_, case) = coordinator.get_json(&format!("/cases/{id}")).await;
    let number = case["summary"]["study_number"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let tagged = |name: &str, seed: u16, study_id: &str| {
        let path = write(
            dir.path(),
            name,
            &Radiograph::cr("Qian", "AP", seed).bytes(),
        );
        let out = Command::new("dcmodify")
            .args(["-nb", "-i", &format!("(0020,0010)={study_id}")])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", said(&out));
        path
    };
    let right = tagged("right.dcm", 71, &number);
    let unknown = tagged("unknown.dcm", 72, "P-9999");
    let sent = dcmtk(
        &app,
        "storescu",
        TAGGED,
        &[],
        &[right.as_path(), unknown.as_path()],
    )
    .await;
    assert!(sent.status.success(), "{}", said(&sent));
    assert_eq!(images_of(&app, id).await.len(), 1);

    // A route and the tag that disagree: nothing is guessed.
    route(&app, other, "patient_id", "MRN-Qian").await;
    let disagreeing = tagged("disagreeing.dcm", 73, &number);
    let sent = dcmtk(&app, "storescu", TAGGED, &[], &[disagreeing.as_path()]).await;
    assert!(sent.status.success(), "{}", said(&sent));
    assert_eq!(images_of(&app, id).await.len(), 1);
    assert!(images_of(&app, other).await.is_empty());
    // The same tag from a peer not configured with it is not read.
    let untagged = tagged("untagged.dcm", 74, &number);
    let sent = dcmtk(&app, "storescu", SENDER, &[], &[untagged.as_path()]).await;
    assert!(sent.status.success(), "{}", said(&sent));
    assert_eq!(
        images_of(&app, other).await.len(),
        1,
        "routed by patient ID"
    );
    assert_eq!(images_of(&app, id).await.len(), 1);

    let (_, waiting) = coordinator.get_json("/dicom/quarantine").await;
    let reasons: Vec<&str> = waiting
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{waiting}");
    assert!(reasons[0].contains("`P-9999`"), "{reasons:?}");
    assert!(reasons[1].contains("different cases"), "{reasons:?}");
}

/// The pages, without JavaScript: the administrator allows and retires a
/// sender on the study page; a coordinator registers a case's route on the
/// case page; bad values come back with their error and change nothing.
#[tokio::test]
async fn senders_and_routes_are_managed_on_the_pages() {
    let app = app_with_dicom().await;
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let admin = app.signed_in("admin").await;
    let (status, html) = admin.get_text("/study").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"dicom-peers\"") && html.contains(SENDER),
        "{html}"
    );
    let answer = admin
        .post_form(
            "/dicom/peers",
            &[
                ("ae_title", "CT7"),
                ("address", "not an address"),
                ("study_number_tag", ""),
            ],
        )
        .await;
    assert_eq!(location(&answer), "/study?error=bad_address");
    let answer = admin
        .post_form(
            "/dicom/peers",
            &[
                ("ae_title", "CT7"),
                ("address", "10.0.0.7"),
                ("study_number_tag", "StudyID"),
            ],
        )
        .await;
    assert_eq!(location(&answer), "/study#dicom-peers");
    let (_, html) = admin.get_text("/study").await;
    assert!(
        html.contains("CT7") && html.contains("(0020,0010)"),
        "{html}"
    );
    let api = app.api_client("admin").await;
    let (_, peers) = api.get_json("/dicom/peers").await;
    let ct7 = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ae_title"] == "CT7")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let answer = admin
        .post_form(&format!("/dicom/peers/{ct7}/retire"), &[])
        .await;
    assert_eq!(location(&answer), "/study#dicom-peers");
    let (_, peers) = api.get_json("/dicom/peers").await;
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    // A coordinator does not manage senders: the 403 page, nothing added.
    let coordinator_page = app.signed_in("coordinator").await;
    let answer = coordinator_page
        .post_form("/dicom/peers", &[("ae_title", "CT8")])
        .await;
    assert_eq!(answer.status(), 403);
    let (_, peers) = api.get_json("/dicom/peers").await;
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");

    let coordinator = app.api_client("coordinator").await;
    let id = enrol(&coordinator).await;
    let (_, html) = coordinator_page.get_text(&format!("/cases/{id}")).await;
    assert!(html.contains("id=\"route-form\"") && html.contains("id=\"routes-none\""));
    let answer = coordinator_page
        .post_form(
            &format!("/cases/{id}/dicom-routes"),
            &[("kind", "accession_number"), ("identifier", "ACC-777")],
        )
        .await;
    assert!(
        location(&answer).starts_with(&format!("/cases/{id}")),
        "{}",
        location(&answer)
    );
    assert!(
        !location(&answer).contains("error"),
        "{}",
        location(&answer)
    );
    let other = enrol(&coordinator).await;
    let answer = coordinator_page
        .post_form(
            &format!("/cases/{other}/dicom-routes"),
            &[("kind", "accession_number"), ("identifier", "ACC-777")],
        )
        .await;
    assert!(
        location(&answer).contains("error=route_taken"),
        "{}",
        location(&answer)
    );
    let (_, html) = coordinator_page.get_text(&format!("/cases/{id}")).await;
    assert!(html.contains("id=\"routes\""), "{html}");
    assert!(
        !html.contains("ACC-777"),
        "the identifier is not kept, nor shown"
    );
    let (_, routes) = coordinator
        .get_json(&format!("/cases/{id}/dicom-routes"))
        .await;
    assert_eq!(routes.as_array().unwrap().len(), 1, "{routes}");
}
