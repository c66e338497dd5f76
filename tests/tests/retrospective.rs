//! The retrospective arm: its own workflow (pathology known, reads optional,
//! never an AI lock), held by the code and by the database, and its complete
//! cases exported as the model's training set through the real binary.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::workflow::{self, enrol_in, predict, Team};
use osteo_tests::{spawn_app, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;
use std::process::Output;

async fn state(app: &TestApp, id: i64) -> String {
    osteo_tests::case_state(&app.db, id).await
}

async fn refused(app: &TestApp, sql: &str) -> String {
    osteo_tests::sql_refusal(&app.db, sql).await
}

/// The moves a query's `from_state, to_state` rows list, sorted.
async fn moves(app: &TestApp, sql: &str) -> Vec<(String, String)> {
    let mut moves: Vec<(String, String)> = sqlx::query(sql)
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("from_state"), r.get("to_state")))
        .collect();
    moves.sort();
    moves
}

async fn to_crf_complete(team: &Team, id: i64) {
    workflow::to_crf_complete(&team.coordinator, id).await;
}

async fn enter_pathology(team: &Team, id: i64, entity: &str) -> (u16, Value) {
    workflow::enter_pathology(&team.coordinator, id, entity).await
}

async fn sign_pathology(app: &TestApp, team: &Team, id: i64) {
    workflow::sign_pathology(app, &team.coordinator, id).await;
}

#[tokio::test]
async fn a_retrospective_case_takes_its_known_pathology_without_reads_and_never_an_ai_prediction() {
    let app = spawn_app().await;
    let team = Team::new(&app).await;

    // Without reads: pathology straight after the clinical CRF.
    let id = enrol_in(&team.coordinator, "retrospective").await;
    workflow::attach_views(&app, id).await;
    to_crf_complete(&team, id).await;
    let (_, detail) = team.coordinator.get_json(&format!("/cases/{id}")).await;
    assert_eq!(detail["summary"]["arm"], "retrospective", "{detail}");
    assert!(
        detail["summary"]["waits_for"]
            .as_str()
            .unwrap()
            .contains("reads are optional"),
        "{detail}"
    );
    // The model is never run on it: the code refuses, and so does the database.
    let e = predict(&app, id, 0.7).await.unwrap_err();
    assert!(
        e.to_string().contains("never run on a retrospective case"),
        "{e}"
    );
    let queue = osteo_trial::case::awaiting_ai(&app.db, &osteo_trial::audit::Principal::system())
        .await
        .unwrap();
    assert!(!queue.contains(&id));
    let (status, v) = enter_pathology(&team, id, "osteosarcoma").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(state(&app, id).await, "pathology_entered");
    sign_pathology(&app, &team, id).await;
    assert_eq!(state(&app, id).await, "complete");

    // With a reader assigned, pathology waits for the signed read, and the
    // case then goes from reads_locked to pathology, never to the model.
    let read = enrol_in(&team.coordinator, "retrospective").await;
    workflow::attach_views(&app, read).await;
    to_crf_complete(&team, read).await;
    let (status, v) = team
        .coordinator
        .send_json(
            Method::POST,
            &format!("/cases/{read}/readers"),
            &json!({"username": "radiologist"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let before = refused(
        &app,
        &format!(
            "INSERT INTO pathology_versions (case_id, version, entity, morphology, behaviour, tier, procedure, specimen_date, \
             pathologist, created_at, created_by) VALUES ({read}, 1, 'osteosarcoma', '9180/3', '3', 'malignant', 'biopsy', \
             '2025-10-20', 'Dr Wang', 'now', 1)"
        ),
    )
    .await;
    assert!(
        before.contains("every read assigned to it is signed"),
        "{before}"
    );
    team.save_read(read).await;
    team.sign_read(&app, read).await;
    assert_eq!(state(&app, read).await, "reads_locked");
    let queue = osteo_trial::case::awaiting_ai(&app.db, &osteo_trial::audit::Principal::system())
        .await
        .unwrap();
    assert!(
        !queue.contains(&read),
        "a retrospective case never waits for the model"
    );
    // Someone with SQL access cannot move it to the AI lock or give it a prediction.
    let e = refused(
        &app,
        &format!("UPDATE cases SET state = 'ai_locked' WHERE id = {read}"),
    )
    .await;
    assert!(e.contains("illegal case transition"), "{e}");
    let e = refused(
        &app,
        &format!(
            "INSERT INTO predictions (case_id, probability, threshold, call, model_id, weights_sha256, image_sha256, heatmaps, \
             bone_rads_source, record_sha256, created_at) VALUES ({read}, 0.4, 0.5, 'benign', '{}', '{}', '[]', '[]', \
             'primary_reader', '{}', 'now')",
            workflow::TEST_MODEL_ID,
            workflow::test_model_weights(),
            "f".repeat(64)
        ),
    )
    .await;
    assert!(e.contains("only for prospective cases"), "{e}");
    let (status, v) = enter_pathology(&team, read, "osteochondroma").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(state(&app, read).await, "pathology_entered");

    // A prospective case still waits for the AI lock.
    let prospective = team.case_awaiting_ai(&app).await;
    let (status, v) = enter_pathology(&team, prospective, "osteosarcoma").await;
    assert_ne!(status, 201, "{v}");
    assert!(v.to_string().contains("AI prediction"), "{v}");
}

/// The database's per-arm transition table and `CaseState::apply_in` are the
/// same set of moves, arm by arm.
#[tokio::test]
async fn the_databases_transitions_per_arm_are_the_state_machines() {
    use osteo_trial::case::{CaseEvent, CaseState};
    use osteo_trial::screening::Arm;
    let app = spawn_app().await;
    for arm in Arm::ALL {
        let table = moves(
            &app,
            &format!(
                "SELECT from_state, to_state FROM case_arm_transitions WHERE arm = '{}'",
                arm.as_str()
            ),
        )
        .await;
        let mut code: Vec<(String, String)> = Vec::new();
        for from in CaseState::ALL {
            for event in CaseEvent::ALL {
                if let Ok(to) = from.apply_in(arm, *event) {
                    if to != *from {
                        code.push((from.to_string(), to.to_string()));
                    }
                }
            }
        }
        code.sort();
        code.dedup();
        assert_eq!(table, code, "{arm:?}");
        assert!(
            arm == Arm::Prospective || !code.iter().any(|(_, to)| to == "ai_locked"),
            "no retrospective case reaches the AI lock"
        );
    }
    // The first table (before the arms had their own paths) keeps the
    // prospective moves, and neither table takes a new one.
    let first = moves(&app, "SELECT from_state, to_state FROM case_transitions").await;
    let prospective = moves(
        &app,
        "SELECT from_state, to_state FROM case_arm_transitions WHERE arm = 'prospective'",
    )
    .await;
    assert_eq!(first, prospective);
    for sql in [
        "INSERT INTO case_arm_transitions (arm, from_state, to_state) VALUES ('retrospective', 'reads_locked', 'ai_locked')",
        "INSERT INTO case_transitions (from_state, to_state) VALUES ('complete', 'excluded')",
    ] {
        let e = refused(&app, sql).await;
        assert!(e.contains("fixed"), "{e}");
    }
}

fn run(app: &TestApp, args: &[&str]) -> Output {
    osteo_tests::run_cli(app, args)
}

/// `model dataset export --out OUT --as USER --intermediate MAPPING`.
fn export_args<'a>(out: &'a std::path::Path, user: &'a str, mapping: &'a str) -> [&'a str; 9] {
    let out = out.to_str().unwrap();
    [
        "model",
        "dataset",
        "export",
        "--out",
        out,
        "--as",
        user,
        "--intermediate",
        mapping,
    ]
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Phantom radiographs, loaded with `images import --manifest` into
/// retrospective cases whose pathology follows the phantoms' labels, come
/// back out as the training set, and a model trained `--from-study`
/// records it on its card.
#[tokio::test]
async fn the_retrospective_arm_is_exported_and_trained_on_with_its_hash_and_study_numbers_on_the_card(
) {
    let app = spawn_app().await;
    let team = Team::new(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let phantoms = dir.path().join("phantoms");
    let out = run(
        &app,
        &[
            "model",
            "phantoms",
            "--n",
            "8",
            "--seed",
            "5",
            "--width",
            "64",
            "--height",
            "80",
            "--label-noise",
            "0",
            "--out",
            phantoms.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rows = osteo_model::manifest::read(&phantoms.join("manifest.csv")).unwrap();

    // Enrol one retrospective case per phantom, then load its views as a
    // hospital would: through the import's validation and de-identification.
    let mut numbers = Vec::new();
    let mut import = String::from("study_number,file,view\n");
    for row in &rows {
        let id = enrol_in(&team.coordinator, "retrospective").await;
        let (_, detail) = team.coordinator.get_json(&format!("/cases/{id}")).await;
        let number = detail["summary"]["study_number"]
            .as_str()
            .unwrap()
            .to_owned();
        import.push_str(&format!(
            "{number},{},frontal\n{number},{},lateral\n",
            row.frontal.as_deref().unwrap(),
            row.lateral.as_deref().unwrap()
        ));
        numbers.push((id, number, row.label.is_malignant()));
    }
    let import_csv = phantoms.join("import.csv");
    std::fs::write(&import_csv, import).unwrap();
    let out = run(
        &app,
        &[
            "images",
            "import",
            "--manifest",
            import_csv.to_str().unwrap(),
            "--as",
            "coordinator",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Six complete cases (one intermediate), one without signed pathology,
    // one still at its CRF: only the complete ones are taken.
    for (i, (id, _, malignant)) in numbers.iter().enumerate() {
        to_crf_complete(&team, *id).await;
        if i >= 7 {
            continue;
        }
        let entity = match (i, malignant) {
            (0, _) => "giant_cell_tumour",
            (_, true) => "osteosarcoma",
            (_, false) => "osteochondroma",
        };
        let (status, v) = enter_pathology(&team, *id, entity).await;
        assert_eq!(status, 201, "{v}");
        if i < 6 {
            sign_pathology(&app, &team, *id).await;
        }
    }
    let complete: Vec<&(i64, String, bool)> = numbers.iter().take(6).collect();

    // Only an account that may see pathology reads the arm.
    let export = dir.path().join("export");
    let export_as = |user: &str, mapping: &str| run(&app, &export_args(&export, user, mapping));
    let refused = export_as("statistician", "as_malignant");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("may not see pathology"),
        "{}",
        text(&refused)
    );
    assert!(!export.exists(), "nothing written");

    let out = export_as("coordinator", "excluded");
    assert!(out.status.success(), "{}", text(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record: Value =
        serde_json::from_slice(&std::fs::read(export.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(printed["record"], record);
    let expected: Vec<&str> = complete.iter().skip(1).map(|c| c.1.as_str()).collect();
    assert_eq!(record["case_ids"], json!(expected), "{record}");
    assert_eq!(record["intermediate"], "excluded");
    assert_eq!(record["intermediate_excluded"], 1);
    let malignant = complete.iter().skip(1).filter(|c| c.2).count();
    assert_eq!(record["malignant"], malignant);
    assert_eq!(record["benign"], 5 - malignant);
    // The manifest carries the CRF fields and the labels; the views are the
    // stored, de-identified objects; the hash is recomputed from the folder.
    let manifest = export.join("manifest.csv");
    let exported = osteo_model::manifest::read(&manifest).unwrap();
    assert_eq!(exported.len(), 5);
    for (row, case) in exported.iter().zip(complete.iter().skip(1)) {
        assert_eq!(row.case_id, case.1);
        assert_eq!(row.patient_id, case.1, "each patient is one case");
        assert_eq!(row.label.is_malignant(), case.2);
        assert_eq!(row.clinical.age_years, Some(34.0));
        assert!(row.clinical.bone.is_some());
        let obj =
            dicom_object::open_file(export.join("images").join(row.frontal.as_deref().unwrap()))
                .unwrap();
        let patient = obj
            .element(dicom_core::Tag(0x0010, 0x0020))
            .unwrap()
            .to_str()
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(
            patient, case.1,
            "the stored view names the study number, not the patient"
        );
    }
    assert_eq!(
        record["sha256"],
        osteo_model::dataset::training_set_sha256(&exported, &manifest, &export.join("images"))
            .unwrap()
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'training_set.read' AND actor = 'coordinator' AND source = 'cli'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // An export never overwrites a folder.
    let again = export_as("coordinator", "excluded");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // Training from the study, intermediate as malignant: all six cases.
    let model = dir.path().join("model");
    let dataset = dir.path().join("dataset");
    let out = run(
        &app,
        &[
            "model",
            "train",
            "--from-study",
            "--dataset",
            dataset.to_str().unwrap(),
            "--as",
            "investigator",
            "--intermediate",
            "as_malignant",
            "--out",
            model.to_str().unwrap(),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--channels",
            "4,8",
            "--validation-share",
            "0.34",
            "--seed",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&app, &["model", "card", "--model", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let card: Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = &card["card"]["training_set"];
    let all: Vec<&str> = complete.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(set["case_ids"], json!(all), "{card}");
    assert_eq!(set["intermediate"], "as_malignant");
    assert_eq!(
        set["malignant"],
        malignant + 1,
        "the intermediate case as malignant"
    );
    let rows = osteo_model::manifest::read(&dataset.join("manifest.csv")).unwrap();
    assert_eq!(
        set["sha256"],
        osteo_model::dataset::training_set_sha256(
            &rows,
            &dataset.join("manifest.csv"),
            &dataset.join("images")
        )
        .unwrap()
    );
    assert_eq!(
        card["card"]["n_train"].as_u64().unwrap() + card["card"]["n_validation"].as_u64().unwrap(),
        6
    );
}

/// `osteo-edc` on its own data directory, on SQLite whatever the app's
/// database is (the command makes a new one).
fn run_in(data_dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(osteo_tests::binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("OSTEO_AUDIT_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// `demo retrospective` makes a hospital's EDC without a browser (the
/// federated-learning demo's sites): a new demonstration database whose
/// retrospective arm holds complete phantom cases, each read and signed,
/// its pathology entered and signed, all audited as the demo accounts from
/// the command line, and exported as the same cases the generator drew. It
/// is refused, changing nothing, on bad options and on a database that
/// already holds a study.
#[tokio::test]
async fn demo_retrospective_fills_a_new_sites_edc_with_complete_cases_and_refuses_an_existing_study(
) {
    let app = spawn_app().await;
    let cases_in = |db: &osteo_trial::store::Db| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cases")
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };
    let before = cases_in(&app.db).await;
    const DRAW: [&str; 12] = [
        "--width",
        "64",
        "--height",
        "80",
        "--seed",
        "9",
        "--label-noise",
        "0",
        "--malignant-share",
        "0.5",
        "--contrast",
        "0.8",
    ];
    fn with<'a>(first: &[&'a str]) -> Vec<&'a str> {
        first.iter().copied().chain(DRAW).collect()
    }
    let refused = run(&app, &with(&["demo", "retrospective", "--n", "3"]));
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("already holds a study"),
        "{}",
        text(&refused)
    );
    assert_eq!(cases_in(&app.db).await, before, "nothing enrolled");

    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    for bad in [
        with(&["demo", "retrospective", "--n", "0"]),
        with(&["demo", "retrospective", "--n", "3", "--site-noise", "2"]),
        with(&["demo", "retrospective", "--n", "3", "--spectrum", "-1.5"]),
    ] {
        let out = run_in(&site, &bad);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(!site.exists(), "a refused command makes no database");
    }

    let out = run_in(&site, &with(&["demo", "retrospective", "--n", "6"]));
    assert!(out.status.success(), "{}", text(&out));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["complete_cases"], 6, "{made}");
    assert_eq!(made["study_numbers"][0], "DR-0001");
    assert!(made["one_time_passwords"]["coordinator"].is_string());

    let url = osteo_server::config::default_database_url(&site);
    let db = osteo_trial::store::Db::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query("SELECT state, arm FROM cases")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("state"), r.get("arm")))
        .collect();
    assert_eq!(rows, vec![("complete".into(), "retrospective".into()); 6]);
    for (entity, signer) in [("read", "radiologist"), ("pathology", "coordinator")] {
        let signed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signatures s JOIN users u ON u.id = s.user_id \
             WHERE s.entity = $1 AND u.username = $2 AND s.voided_at IS NULL",
        )
        .bind(entity)
        .bind(signer)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(signed, 6, "{entity} signed by {signer}");
        let reauthenticated: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'signature.reauthenticated' \
             AND actor = $1 AND source = 'cli'",
        )
        .bind(signer)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(
            reauthenticated, 6,
            "each signature checked {signer}'s password"
        );
    }
    let predictions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM predictions")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        predictions, 0,
        "the model never runs on a retrospective case"
    );
    let verified = run_in(&site, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));

    // The exported training set is the generator's draw: labels, CRF
    // fields and the read's Bone-RADS as a phantom folder has them.
    let phantoms = dir.path().join("phantoms");
    let out = run_in(
        &site,
        &with(&[
            "model",
            "phantoms",
            "--n",
            "6",
            "--out",
            phantoms.to_str().unwrap(),
        ]),
    );
    assert!(out.status.success(), "{}", text(&out));
    let export = dir.path().join("export");
    let out = run_in(&site, &export_args(&export, "coordinator", "excluded"));
    assert!(out.status.success(), "{}", text(&out));
    let drawn = osteo_model::manifest::read(&phantoms.join("manifest.csv")).unwrap();
    let exported = osteo_model::manifest::read(&export.join("manifest.csv")).unwrap();
    assert_eq!(exported.len(), 6);
    for (e, d) in exported.iter().zip(&drawn) {
        assert_eq!(
            (e.label, &e.clinical),
            (d.label, &d.clinical),
            "{}",
            d.case_id
        );
    }

    // A second run on the same database is refused and enrols nothing.
    let again = run_in(&site, &with(&["demo", "retrospective", "--n", "2"]));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert_eq!(cases_in(&db).await, 6);
}
