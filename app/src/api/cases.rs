//! Server functions of the case pages, the dashboard and the study page.
//! Blinding is the `trial` services' job: these pass the signed-in user on
//! and shape what comes back.

use super::AppError;
use leptos::prelude::*;
use osteo_trial::case::{CaseDetail, CaseList, DataQuery, FormEcho};
use osteo_trial::domain::Role;
use osteo_trial::study::{Dashboard, LockStatus, StudySettings};
use serde::{Deserialize, Serialize};

/// The cases page: what is due for this user, and every case for the roles
/// that see them, each a page of [`CASES_PER_PAGE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasesData {
    pub role: Role,
    pub worklist: CaseList,
    pub all: Option<CaseList>,
}

/// Rows in one page of the worklist or of the case list: a study of 2,200
/// cases would otherwise send every one of them, twice, with every view of
/// the page (docs/build.md, "Load").
pub const CASES_PER_PAGE: i64 = 50;

/// The cases page, with the worklist's page `due` and the case list's page
/// `page` (both counting from 1).
#[server(prefix = "/sfn", endpoint = "cases")]
pub async fn cases_view(due: i64, page: i64) -> Result<CasesData, AppError> {
    use osteo_trial::case;
    use osteo_trial::domain::{AuditSource, Permission};
    let (ctx, me) = super::ssr::user().await?;
    let by = me.principal(AuditSource::Ui);
    let from = |page: i64| (page.max(1) - 1).saturating_mul(CASES_PER_PAGE);
    let worklist = case::worklist_page(&ctx.db, &by, from(due), CASES_PER_PAGE)
        .await
        .map_err(super::ssr::refused)?;
    let all = if me.role.can(Permission::ViewCases) {
        Some(
            case::list_cases_page(&ctx.db, &by, from(page), CASES_PER_PAGE)
                .await
                .map_err(super::ssr::refused)?,
        )
    } else {
        None
    };
    Ok(CasesData {
        role: me.role,
        worklist,
        all,
    })
}

/// The model the server runs, as its card describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub model_id: String,
    pub weights_sha256: String,
    /// "demo model, trained on synthetic images, not for clinical use" for a demo model.
    pub label: Option<String>,
    pub training_data: String,
    pub validation_auc: f64,
    pub threshold: f64,
    /// Temperature of the calibration (probability = σ(logit / T)).
    pub temperature: f64,
}

/// Everything the case page shows and offers to this user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseData {
    pub detail: CaseDetail,
    pub username: String,
    pub can_enter: bool,
    pub can_assign: bool,
    pub can_read: bool,
    /// May sign the clinical CRF.
    pub can_sign: bool,
    /// May sign the pathology result.
    pub can_sign_pathology: bool,
    pub can_query: bool,
    pub can_answer: bool,
    /// Active radiologists, `(username, display name)`, for assignment.
    pub radiologists: Vec<(String, String)>,
    pub rule_version: Option<String>,
    /// The last date the forms accept.
    pub latest: String,
    pub queries: Vec<DataQuery>,
    /// A failed form post's values and problems.
    pub echo: Option<FormEcho>,
    pub locked: bool,
    /// The model in use, if the server runs one.
    pub model: Option<ModelInfo>,
    /// May withdraw the case (the PI, with a signature).
    pub can_withdraw: bool,
    /// May change model inputs frozen at the AI lock (the PI, a signed deviation).
    pub can_amend: bool,
    /// Why a case at "awaiting AI" waits: `no_model` (this server runs none)
    /// or `not_pinned` (the model it runs is not the pinned one); `None`
    /// when the pinned model runs here.
    pub ai_waiting: Option<String>,
    /// The case's PACS routes, `(kind, added at)`, for those who enter case
    /// data (the identifiers themselves are not kept).
    pub dicom_routes: Vec<(String, String)>,
    /// The study's confirmed Bone-RADS rule table, for a radiologist's page:
    /// the browser scores the read as it is filled, from the same table the
    /// server scores it with again on saving.
    pub rule_table: Option<osteo_trial::case::bonerads::RuleTable>,
    /// How many cases the radiologist's worklist holds (this one included
    /// while its read is unsigned).
    pub worklist_left: Option<i64>,
}

#[server(prefix = "/sfn", endpoint = "case")]
pub async fn case_view(id: i64) -> Result<CaseData, AppError> {
    use osteo_trial::accounts;
    use osteo_trial::case;
    use osteo_trial::domain::{AuditSource, Permission};
    use osteo_trial::study;
    let (ctx, me) = super::ssr::user().await?;
    let by = me.principal(AuditSource::Ui);
    let id =
        osteo_trial::domain::CaseId::try_from(id).map_err(|e| AppError::Invalid(e.to_string()))?;
    let detail = case::case_detail(&ctx.db, &by, id)
        .await
        .map_err(super::ssr::refused)?;
    let radiologists = if me.role.can(Permission::AssignReaders) {
        accounts::radiologists(&ctx.db, &by)
            .await
            .map_err(super::ssr::internal)?
    } else {
        Vec::new()
    };
    let queries = if me.role.can(Permission::ViewCases) {
        case::list_queries(&ctx.db, &by, Some(id), false)
            .await
            .map_err(super::ssr::refused)?
    } else {
        Vec::new()
    };
    let settings = study::settings(&ctx.db)
        .await
        .map_err(super::ssr::refused)?;
    let pin = study::pinned_model(&ctx.db)
        .await
        .map_err(super::ssr::refused)?;
    let ai_waiting = match (&ctx.model, &pin) {
        (None, _) => Some("no_model"),
        (Some(m), Some(p)) if p.model_id == m.model_id && p.weights_sha256 == m.weights_sha256 => {
            None
        }
        (Some(_), _) => Some("not_pinned"),
    };
    let echo = super::ssr::request_auth()
        .and_then(|a| a.echo)
        .filter(|e| e.form.ends_with(&format!(":{id}")));
    Ok(CaseData {
        detail,
        username: me.username.clone(),
        can_enter: me.role.can(Permission::EnterCaseData),
        can_assign: me.role.can(Permission::AssignReaders),
        can_read: me.role.can(Permission::ReadCases),
        can_sign: me.role.can(Permission::SignCrf),
        can_sign_pathology: me.role.can(Permission::SignPathology),
        can_query: me.role.can(Permission::RaiseQuery),
        can_answer: me.role.can(Permission::AnswerQuery),
        radiologists,
        rule_version: settings.rule_version.clone(),
        latest: osteo_trial::screening::latest_screening_date(),
        queries,
        echo,
        locked: study::is_locked(ctx.db.pool())
            .await
            .map_err(super::ssr::internal)?,
        model: ctx.model.clone(),
        can_withdraw: me.role.can(Permission::WithdrawCases),
        can_amend: me.role.can(Permission::AmendFrozenInputs),
        ai_waiting: ai_waiting.map(str::to_owned),
        rule_table: match (&settings.rule_version, me.role.can(Permission::ReadCases)) {
            (Some(version), true) => Some(
                study::rule_table(&ctx.db, version)
                    .await
                    .map_err(super::ssr::refused)?,
            ),
            _ => None,
        },
        worklist_left: if me.role.can(Permission::ReadCases) {
            Some(
                case::worklist_page(&ctx.db, &by, 0, 1)
                    .await
                    .map_err(super::ssr::refused)?
                    .total,
            )
        } else {
            None
        },
        dicom_routes: if me.role.can(Permission::EnterCaseData) {
            osteo_trial::pacs::routes(&ctx.db, &by, id)
                .await
                .map_err(super::ssr::refused)?
                .into_iter()
                .map(|r| (r.kind.as_str().to_owned(), r.added_at))
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// Operational figures only.
#[server(prefix = "/sfn", endpoint = "dashboard")]
pub async fn dashboard_view() -> Result<DashboardData, AppError> {
    use osteo_trial::domain::AuditSource;
    let (ctx, me) = super::ssr::user().await?;
    let data = osteo_trial::study::dashboard(&ctx.db, &me.principal(AuditSource::Ui))
        .await
        .map_err(super::ssr::refused)?;
    let charts = crate::charts::dashboard_charts(&data, crate::initial_locale());
    Ok(DashboardData { data, charts })
}

/// The dashboard's figures and their charts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardData {
    pub data: Dashboard,
    pub charts: DashboardCharts,
}

/// The charts of the study overview, as SVG markup drawn on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardCharts {
    pub enrolment: String,
    pub funnel: String,
    pub states: String,
    pub query_ageing: String,
    pub readers: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyData {
    pub settings: StudySettings,
    pub lock: LockStatus,
    pub can_lock: bool,
    /// May change the settings (administrators and the PI).
    pub can_manage: bool,
    /// May sign an unlock (the PI and the monitor).
    pub can_unlock: bool,
    /// The role of the signed-in user (an unlock is signed once per role).
    pub role: Role,
    /// The model pinned for the study.
    pub pin: Option<osteo_trial::study::ModelPin>,
    /// The model this server runs.
    pub model: Option<ModelInfo>,
    /// May pin the model (the PI).
    pub can_pin: bool,
    /// The DICOM peers allowed to send (for those who manage the study).
    pub dicom_peers: Vec<DicomPeerRow>,
}

/// An allowed DICOM peer, as the study page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomPeerRow {
    pub id: i64,
    pub ae_title: String,
    pub address: Option<String>,
    /// The tag carrying the study number, `(gggg,eeee)`.
    pub study_number_tag: Option<String>,
    pub added_at: String,
}

/// Study settings, the pinned model and the database lock (administrators,
/// the PI, and the monitor, who co-signs an unlock).
#[server(prefix = "/sfn", endpoint = "study")]
pub async fn study_view() -> Result<StudyData, AppError> {
    use osteo_trial::domain::Permission;
    use osteo_trial::study;
    let (ctx, me) = super::ssr::user().await?;
    if !me.role.can(Permission::ManageStudy) && !me.role.can(Permission::SignUnlock) {
        return Err(AppError::Forbidden);
    }
    Ok(StudyData {
        settings: study::settings(&ctx.db)
            .await
            .map_err(super::ssr::refused)?,
        lock: study::lock_status(&ctx.db)
            .await
            .map_err(super::ssr::refused)?,
        can_lock: me.role.can(Permission::LockDatabase),
        can_manage: me.role.can(Permission::ManageStudy),
        can_unlock: me.role.can(Permission::SignUnlock),
        role: me.role,
        pin: study::pinned_model(&ctx.db)
            .await
            .map_err(super::ssr::refused)?,
        model: ctx.model.clone(),
        can_pin: me.role.can(Permission::PinModel),
        dicom_peers: if me.role.can(Permission::ManageStudy) {
            osteo_trial::pacs::peers(&ctx.db)
                .await
                .map_err(super::ssr::refused)?
                .into_iter()
                .map(|p| DicomPeerRow {
                    id: p.id,
                    ae_title: p.ae_title,
                    address: p.address,
                    study_number_tag: p
                        .study_number_tag
                        .filter(|t| t.len() == 8)
                        .map(|t| format!("({},{})", &t[..4], &t[4..])),
                    added_at: p.added_at,
                })
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// The analysis page: the plan, and the locked figures once there are some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisData {
    pub saps: Vec<osteo_trial::study::sap::SapVersion>,
    pub can_draft: bool,
    pub locked: bool,
    /// The figures, after database lock, for the roles that see them.
    pub analysis: Option<osteo_trial::study::LockedAnalysis>,
    /// Why there are no figures (a `case.error.*` code).
    pub withheld: Option<String>,
    /// The CSV files of the locked data.
    pub exports: Vec<String>,
}

#[server(prefix = "/sfn", endpoint = "analysis")]
pub async fn analysis_view() -> Result<AnalysisData, AppError> {
    use osteo_trial::domain::{AuditSource, Permission};
    use osteo_trial::study;
    let (ctx, me) = super::ssr::user().await?;
    if !me.role.can(Permission::ViewDashboard) {
        return Err(AppError::Forbidden);
    }
    let saps = study::sap_versions(&ctx.db)
        .await
        .map_err(super::ssr::refused)?;
    let locked = osteo_trial::study::is_locked(ctx.db.pool())
        .await
        .map_err(super::ssr::internal)?;
    let (analysis, withheld) =
        match study::locked_analysis(&ctx.db, &me.principal(AuditSource::Ui)).await {
            Ok(a) => (Some(a), None),
            Err(e) if e.kind() == osteo_trial::error::ErrorKind::Internal => {
                return Err(super::ssr::internal(e))
            }
            Err(e) => (None, Some(e.code().to_owned())),
        };
    Ok(AnalysisData {
        can_draft: matches!(me.role, Role::Statistician | Role::PrincipalInvestigator)
            && !saps.iter().any(|s| s.locked)
            && !locked,
        saps,
        locked,
        exports: if analysis.is_some() {
            osteo_trial::study::figures::export_files()
        } else {
            Vec::new()
        },
        analysis,
        withheld,
    })
}
