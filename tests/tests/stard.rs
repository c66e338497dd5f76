//! STARD 2015 and STARD-AI traceability (issue: a PACS link, point 5):
//! `docs/stard.toml` says, item by item, where the locked report or an
//! export answers the checklist, or why the authors must. This test holds
//! the file to its word on a locked study: every phrase it quotes from the
//! report is in the report's text (`pdftotext`), every column it names is
//! in the export's header, and every item of the checklist is there.

// A test that cannot go on should stop right there.
#![allow(clippy::unwrap_used)]

use osteo_tests::workflow::locked_study;
use osteo_tests::{pdf_text, spawn_app};
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct Checklist {
    item: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    id: String,
    section: String,
    item: String,
    answer: String,
    #[serde(rename = "where")]
    place: Option<String>,
    #[serde(default)]
    evidence: Vec<String>,
    export: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
    why: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn checklist() -> Vec<Item> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/stard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str::<Checklist>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .item
}

/// The checklist is whole and each item says how it is answered.
#[test]
fn the_file_lists_every_stard_2015_item_and_how_it_is_answered() {
    let items = checklist();
    let ids: BTreeSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), items.len(), "each item once");
    // STARD 2015: 30 items, six of them in two parts.
    for n in 1..=30 {
        let parts: &[&str] = match n {
            10 | 12 | 13 | 21 => &["a", "b"],
            _ => &[""],
        };
        for p in parts {
            let id = format!("{n}{p}");
            assert!(ids.contains(id.as_str()), "STARD 2015 item {id} is listed");
        }
    }
    for i in &items {
        assert!(!i.section.is_empty() && !i.item.is_empty(), "{}", i.id);
        match i.answer.as_str() {
            "report" => assert!(
                i.place.is_some() && !i.evidence.is_empty(),
                "item {}: a report item says where and quotes the report",
                i.id
            ),
            "export" => assert!(
                i.export.is_some() && !i.columns.is_empty(),
                "item {}: an export item names the file and its columns",
                i.id
            ),
            "author" => assert!(
                i.why.as_deref().is_some_and(|w| !w.is_empty()),
                "item {}: an item left to the authors says why",
                i.id
            ),
            other => panic!(
                "item {}: answer `{other}` is report, export or author",
                i.id
            ),
        }
    }
}

/// What the file says the locked report and the exports supply, they do.
#[tokio::test]
async fn every_item_the_system_supplies_is_in_the_locked_report_or_an_export() {
    let items = checklist();
    let app = spawn_app().await;
    let (_team, stats, _lock) = locked_study(&app).await;
    let (status, _, pdf) = stats.get_file("/exports/report-en.pdf").await;
    assert_eq!(status, 200);
    // Lines wrap where the page ends them: compare with runs of white space
    // made one space.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = words(&pdf_text(&pdf));
    let mut missing = Vec::new();
    let mut checked = 0;
    for i in &items {
        match i.answer.as_str() {
            "report" => {
                for phrase in &i.evidence {
                    checked += 1;
                    if !text.contains(&words(phrase)) {
                        missing.push(format!("item {}: `{phrase}` is not in the report", i.id));
                    }
                }
            }
            "export" => {
                let name = i.export.as_deref().unwrap();
                let (status, _, body) = stats.get_file(&format!("/exports/{name}")).await;
                assert_eq!(status, 200, "{name}");
                let body = String::from_utf8(body).unwrap();
                let header: Vec<&str> = body
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|c| c.trim_matches('"'))
                    .collect();
                for c in &i.columns {
                    checked += 1;
                    if !header.contains(&c.as_str()) {
                        missing.push(format!("item {}: {name} has no column `{c}`", i.id));
                    }
                }
            }
            _ => {}
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(checked > 60, "{checked} phrases and columns checked");
}
