//! The statistician's downloads after database lock, all made from the
//! snapshot taken at the lock (the data whose SHA-256 the lock recorded):
//! CSV exports, one file per table and a data dictionary, and the locked
//! analysis report as PDF in English and Chinese (`report-en.pdf`,
//! `report-zh-CN.pdf`), and the data with its audit records as CDISC ODM
//! 1.3.2 XML (`odm.xml`). Every download is audited with the SHA-256 of the
//! file.

use osteo_trial::audit::Principal;
mod odm;
mod tables;

use osteo_trial::store::Db;
use osteo_trial::study::StudyError;
use tables::file;

/// The files of the export.
pub fn names() -> Vec<String> {
    osteo_trial::study::figures::export_files()
}

/// The language of a report file name (`report-zh-CN.pdf`).
fn report_locale(name: &str) -> Option<osteo_trial::domain::Locale> {
    let tag = name.strip_prefix("report-")?.strip_suffix(".pdf")?;
    osteo_trial::domain::Locale::ALL
        .into_iter()
        .find(|l| l.tag() == tag)
}

/// One export file of the locked data, audited with its SHA-256.
pub async fn download(db: &Db, by: &Principal, name: &str) -> Result<Option<Vec<u8>>, StudyError> {
    let snapshot = osteo_trial::study::locked_snapshot(db, by).await?;
    let bytes = if let Some(locale) = report_locale(name) {
        let locked = osteo_trial::study::analysis_of(db, &snapshot).await?;
        tokio::task::spawn_blocking(move || crate::locked_report::render(&locked, locale))
            .await
            .map_err(|e| StudyError::Analysis(format!("the report could not be made: {e}")))?
            .map_err(|e| StudyError::Analysis(e.to_string()))?
    } else if name == "odm.xml" {
        odm::odm(db, &snapshot).await?
    } else {
        let Some(bytes) = file(&snapshot.data, name) else {
            return Ok(None);
        };
        bytes
    };
    let sha = crate::imaging::sha256_hex(&bytes);
    osteo_trial::study::record_download(db, by, &snapshot, name, &sha).await?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_file_is_made() {
        let empty = serde_json::json!({});
        for name in names() {
            let made = report_locale(&name).is_some()
                || name == "odm.xml"
                || file(&empty, &name).is_some();
            assert!(made, "{name} is listed but nothing makes it");
        }
        assert!(file(&empty, "secrets.csv").is_none());
    }
}
