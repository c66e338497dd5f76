//! Federated training through the real Flower processes: the SuperLink, two
//! SuperNodes and the ServerApp and ClientApp of `federated/`, calling the
//! real binary (`scripts/fl-demo.sh`, 2 sites, 2 rounds, small phantoms).
//! Needs Flower's virtual environment (`OSTEO_FLOWER_VENV`, made by
//! `scripts/ensure-tools.sh` from `federated/requirements.txt`); CI runs it.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::binary;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv() -> Option<PathBuf> {
    match std::env::var_os("OSTEO_FLOWER_VENV") {
        Some(v) => Some(PathBuf::from(v)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs this test: OSTEO_FLOWER_VENV must name Flower's virtual environment (scripts/test.sh sets it)"
            );
            eprintln!("Flower not given (OSTEO_FLOWER_VENV): skipped outside CI");
            None
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every tensor of a safetensors file, as f32 values by name.
fn tensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

fn num_examples(site: &Path, round: u32) -> f64 {
    let sent: serde_json::Value = serde_json::from_slice(
        &std::fs::read(site.join(format!("work/sent-round-{round}.json"))).unwrap(),
    )
    .unwrap();
    sent["num_examples"].as_f64().unwrap()
}

#[test]
fn what_leaves_a_site_is_only_its_weights_and_metric_record() {
    let Some(venv) = venv() else { return };
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(repo().join("federated"))
        .env("OSTEO_EDC_BIN", binary())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Ran 3 tests"), "{text}");
}

#[test]
fn two_hospitals_federate_through_flower_and_the_global_model_is_their_example_weighted_mean() {
    let Some(venv) = venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = Command::new("bash")
        .arg(repo().join("scripts/fl-demo.sh"))
        .args(["--sites", "2", "--rounds", "2", "--epochs", "1"])
        .args(["--cases", "24", "--test-cases", "12", "--size", "32"])
        .args(["--only", "fedavg"])
        .arg("--out")
        .arg(&out)
        .env("OSTEO_EDC_BIN", binary())
        .env("OSTEO_FLOWER_VENV", &venv)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    // A progress line per round.
    for round in ["round 1/2 aggregated", "round 2/2 aggregated"] {
        assert!(text.contains(round), "{round}: {text}");
    }
    let runs = out.join("runs/fedavg");
    let first = tensors(&runs.join("global-0.safetensors"));
    let after_one = tensors(&runs.join("global-1.safetensors"));
    let last = tensors(&runs.join("global-2.safetensors"));
    assert!(first.len() > 10);
    assert!(
        first.iter().any(|(name, v)| v != &last[name]),
        "the global weights changed"
    );
    // Both hospitals loaded the round's global weights: each wrote what it
    // received in round 2, and that is the coordinator's model after round 1.
    let sites = [out.join("site-A"), out.join("site-B")];
    // Each hospital trained on what its own EDC's retrospective arm exported.
    for site in &sites {
        let edc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(site.join("edc.json")).unwrap()).unwrap();
        assert_eq!(edc["complete_cases"], 24, "{edc}");
        let exported = osteo_model::manifest::read(&site.join("train/manifest.csv")).unwrap();
        let ids: Vec<&str> = exported.iter().map(|r| r.case_id.as_str()).collect();
        assert_eq!(
            ids,
            edc["study_numbers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>()
        );
        assert!(site.join("edc/osteo-edc.db").exists());
    }
    for site in &sites {
        assert_eq!(
            tensors(&site.join("work/global.safetensors")),
            after_one,
            "{} trained from the global model",
            site.display()
        );
    }
    // The aggregate is the mean of the hospitals' local weights, weighted by
    // the cases each trained on.
    let locals: Vec<_> = sites
        .iter()
        .map(|s| {
            (
                num_examples(s, 2),
                tensors(&s.join("work/local.safetensors")),
            )
        })
        .collect();
    let total: f64 = locals.iter().map(|(n, _)| n).sum();
    assert!(locals.iter().all(|(n, _)| *n > 0.0));
    for (name, values) in &last {
        for (i, got) in values.iter().enumerate() {
            let want: f64 = locals
                .iter()
                .map(|(n, t)| n / total * f64::from(t[name][i]))
                .sum();
            assert!(
                (f64::from(*got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{name}[{i}]: {got} against the weighted mean {want}"
            );
        }
    }
    // The weights of two different sites differ, so the check above could fail.
    assert_ne!(locals[0].1, locals[1].1);
    // The global model became a model directory whose card checks out.
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model-card.json")).unwrap()).unwrap();
    assert!(
        card["card"]["model_id"]
            .as_str()
            .unwrap()
            .starts_with("osteo-"),
        "{card}"
    );
    assert_eq!(card["card"]["epochs_run"], 2, "{card}");
    let described = card["card"]["training_data"].as_str().unwrap();
    assert!(
        described.contains("fedavg, 2 rounds, 2 sites"),
        "{described}"
    );
    // The figures.
    let auc = std::fs::read_to_string(out.join("auc.tsv")).unwrap();
    assert!(auc.starts_with("model\tsite A\tsite B\tpooled"), "{auc}");
    let rounds = std::fs::read_to_string(out.join("rounds.tsv")).unwrap();
    assert_eq!(rounds.lines().count(), 4, "{rounds}");
    // Each judged patient's score, for comparing models on the same
    // patients: the manifest's cases and labels, scores whose AUC is the
    // one reported.
    let test = out.join("site-B/test");
    let scores = dir.path().join("scores.csv");
    let judged = Command::new(binary())
        .args(["model", "fl-evaluate", "--validation-share", "1", "--in"])
        .arg(runs.join("global.safetensors"))
        .arg("--manifest")
        .arg(test.join("manifest.csv"))
        .arg("--images")
        .arg(&test)
        .arg("--scores")
        .arg(&scores)
        .output()
        .unwrap();
    assert!(
        judged.status.success(),
        "{}",
        String::from_utf8_lossy(&judged.stderr)
    );
    let reported: serde_json::Value = serde_json::from_slice(&judged.stdout).unwrap();
    let rows = osteo_model::manifest::read(&test.join("manifest.csv")).unwrap();
    let file = std::fs::read_to_string(&scores).unwrap();
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("case_id,label,score"));
    let written: Vec<(String, bool, f64)> = lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 3, "{line}");
            (
                cells[0].to_string(),
                cells[1] == "1",
                cells[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(written.len(), 12);
    for (row, (case, malignant, score)) in rows.iter().zip(&written) {
        assert_eq!(&row.case_id, case);
        assert_eq!(row.label.is_malignant(), *malignant, "{case}");
        assert!(score.is_finite());
    }
    let (pos, neg): (Vec<_>, Vec<_>) = written.iter().partition(|(_, m, _)| *m);
    let wins: f64 = pos
        .iter()
        .flat_map(|p| neg.iter().map(move |n| (p.2, n.2)))
        .map(|(p, n)| {
            if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    let auc = wins / (pos.len() * neg.len()) as f64;
    let want = reported["auc"].as_f64().unwrap();
    assert!(
        (auc - want).abs() < 1e-9,
        "{auc} from the scores, {want} reported"
    );
}
