//! The operational dashboard: enrolment, cases by state, open queries and what blocks the lock — no accuracy before lock.

use super::settings::*;
use super::StudyError;
use crate::audit::Principal;
use crate::case::CaseState;
use crate::domain::Permission;
use crate::screening;
use crate::store::Db;
use crate::write::{is_locked, require};
use sqlx::Row;

/// Operational figures only: no accuracy, no pathology, no AI output.
#[tracing::instrument(skip_all)]
pub async fn dashboard(db: &Db, by: &Principal) -> Result<Dashboard, StudyError> {
    require(by, Permission::ViewDashboard)?;
    let log = screening::log(db, by).await?;
    let counts = sqlx::query("SELECT state, COUNT(*) AS n FROM cases GROUP BY state")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("state")?.parse::<CaseState>()?,
                r.try_get::<i64, _>("n")?,
            ))
        })
        .collect::<Result<Vec<_>, StudyError>>()?;
    let cases_by_state: Vec<(CaseState, i64)> = CaseState::ALL
        .iter()
        .map(|s| {
            (
                *s,
                counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
            )
        })
        .collect();
    let crf_complete: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases c WHERE EXISTS (SELECT 1 FROM crf_versions v WHERE v.case_id = c.id AND v.complete = 1)",
    )
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    let q = |status: &'static str| async move {
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status = $1")
            .bind(status)
            .fetch_one(db.pool())
            .await?
            .try_get::<i64, _>("n")
    };
    Ok(Dashboard {
        prospective_target: PROSPECTIVE_TARGET,
        enrolled_prospective: log.flow.enrolled_prospective,
        enrolled_retrospective: log.flow.enrolled_retrospective,
        flow: log.flow,
        cases_total: cases_by_state.iter().map(|(_, n)| n).sum(),
        cases_by_state,
        crf_complete,
        open_queries: q("open").await?,
        answered_queries: q("answered").await?,
        locked: is_locked(db.pool()).await?,
        enrolment: enrolment_by_site(&log.entries),
        reference_standard: sqlx::query(
            "SELECT COUNT(DISTINCT p.case_id) AS n FROM pathology_versions p \
             JOIN cases c ON c.id = p.case_id WHERE c.arm = 'prospective'",
        )
        .fetch_one(db.pool())
        .await?
        .try_get("n")?,
        query_ageing: query_ageing(db, chrono::Utc::now()).await?,
        readers: readers(db, chrono::Utc::now()).await?,
    })
}

/// The prospective enrolments of the screening log, per site, by
/// screening date.
fn enrolment_by_site(entries: &[screening::ScreeningEntry]) -> Vec<SiteEnrolment> {
    let mut sites: Vec<SiteEnrolment> = Vec::new();
    for e in entries {
        let r = &e.recorded;
        if r.outcome != screening::Outcome::Enrolled || r.arm != screening::Arm::Prospective {
            continue;
        }
        match sites.iter_mut().find(|s| s.site == e.site_code) {
            Some(s) => s.dates.push(r.screening_date.clone()),
            None => sites.push(SiteEnrolment {
                site: e.site_code.clone(),
                dates: vec![r.screening_date.clone()],
            }),
        }
    }
    for s in &mut sites {
        s.dates.sort();
    }
    sites.sort_by(|a, b| a.site.cmp(&b.site));
    sites
}

/// Unclosed queries by age at `now`.
async fn query_ageing(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<QueryAgeing, StudyError> {
    let mut ageing = QueryAgeing::default();
    for row in sqlx::query("SELECT raised_at FROM queries WHERE status IN ('open', 'answered')")
        .fetch_all(db.pool())
        .await?
    {
        let raised: String = row.try_get("raised_at")?;
        if let Some(at) = crate::store::parse_utc(&raised) {
            ageing.add((now - at).num_days());
        }
    }
    Ok(ageing)
}

/// Each radiologist's assignments and signed reads, by display name.
async fn readers(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ReaderLoad>, StudyError> {
    let rows = sqlx::query(
        "SELECT u.display_name AS reader, a.assigned_at AS assigned_at, r.signed_at AS signed_at \
         FROM read_assignments a JOIN users u ON u.id = a.reader_id \
         LEFT JOIN reads r ON r.case_id = a.case_id AND r.reader_id = a.reader_id \
         ORDER BY u.display_name, a.assigned_at",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<(ReaderLoad, Vec<i64>)> = Vec::new();
    for row in rows {
        let reader: String = row.try_get("reader")?;
        let assigned_at: String = row.try_get("assigned_at")?;
        let signed_at: Option<String> = row.try_get("signed_at")?;
        let i = match out.iter().position(|(r, _)| r.reader == reader) {
            Some(i) => i,
            None => {
                out.push((
                    ReaderLoad {
                        reader,
                        assigned: 0,
                        signed: 0,
                        signed_last_7_days: 0,
                        median_turnaround_minutes: None,
                    },
                    Vec::new(),
                ));
                out.len() - 1
            }
        };
        let (load, minutes) = &mut out[i];
        load.assigned += 1;
        let Some(signed) = signed_at.as_deref().and_then(crate::store::parse_utc) else {
            continue;
        };
        load.signed += 1;
        if now - signed <= chrono::Duration::days(7) {
            load.signed_last_7_days += 1;
        }
        if let Some(assigned) = crate::store::parse_utc(&assigned_at) {
            minutes.push((signed - assigned).num_minutes().max(0));
        }
    }
    Ok(out
        .into_iter()
        .map(|(mut load, mut minutes)| {
            minutes.sort_unstable();
            load.median_turnaround_minutes = match minutes.len() {
                0 => None,
                n if n % 2 == 1 => Some(minutes[n / 2]),
                n => Some((minutes[n / 2 - 1] + minutes[n / 2]) / 2),
            };
            load
        })
        .collect())
}

/// Why the database cannot be locked now.
pub(super) async fn blockers(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, StudyError> {
    let mut out = Vec::new();
    let open: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM queries WHERE status IN ('open', 'answered')")
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    if open > 0 {
        out.push(format!(
            "{open} queries are open or answered but not closed"
        ));
    }
    let unfinished: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM cases WHERE state NOT IN ('complete', 'withdrawn', 'excluded')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if unfinished > 0 {
        out.push(format!(
            "{unfinished} enrolled cases are neither complete nor withdrawn or excluded"
        ));
    }
    let sap: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM sap_signatures s WHERE s.role = 'statistician' \
         AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = s.version AND p.role = 'principal_investigator')",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if sap == 0 {
        out.push(
            "the statistical analysis plan is not yet signed by the statistician and the PI".into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::{Arm, Outcome, ScreeningEntry, ScreeningInput};

    fn entry(site: &str, arm: Arm, date: &str, outcome: Outcome) -> ScreeningEntry {
        ScreeningEntry {
            id: 0,
            site_code: site.into(),
            screening_no: 1,
            study_no: None,
            study_number: None,
            version: 1,
            recorded: ScreeningInput {
                arm,
                screening_date: date.into(),
                inclusion_met: true,
                exclusions: Vec::new(),
                outcome,
                not_enrolled_reason: None,
                comment: None,
            },
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn enrolment_is_counted_per_site_for_the_prospective_arm_only() {
        let entries = [
            entry("ZSITE", Arm::Prospective, "2025-03-04", Outcome::Enrolled),
            entry("ASITE", Arm::Prospective, "2025-03-09", Outcome::Enrolled),
            entry("ASITE", Arm::Prospective, "2025-03-01", Outcome::Enrolled),
            entry("ASITE", Arm::Retrospective, "2025-03-02", Outcome::Enrolled),
            entry("ASITE", Arm::Prospective, "2025-03-03", Outcome::Excluded),
        ];
        let sites = enrolment_by_site(&entries);
        assert_eq!(
            sites,
            vec![
                SiteEnrolment {
                    site: "ASITE".into(),
                    dates: vec!["2025-03-01".into(), "2025-03-09".into()],
                },
                SiteEnrolment {
                    site: "ZSITE".into(),
                    dates: vec!["2025-03-04".into()],
                },
            ]
        );
    }

    #[test]
    fn queries_fall_into_their_age_bucket() {
        let mut a = QueryAgeing::default();
        for days in [0, 7, 8, 14, 15, 30, 31, 400] {
            a.add(days);
        }
        assert_eq!(
            a,
            QueryAgeing {
                days_0_7: 2,
                days_8_14: 2,
                days_15_30: 2,
                over_30: 2
            }
        );
    }
}
