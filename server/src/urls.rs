//! The URL layout, declared once. The page router (`routes`), the REST
//! API's router (`api`, under [`API`]) and the form posts' error redirects
//! all take their paths from here, so a renamed path cannot leave a stale
//! copy behind.
//!
//! A path names a resource; the form posts and the API serve the same
//! resource at the same path (the API under its prefix), with the method
//! telling them apart where both write. Paths use axum's `{param}` syntax.

/// The REST API's prefix.
pub const API: &str = "/api/v1";
/// DICOMweb's base (STOW-RS, QIDO-RS, WADO-RS; `crate::dicomweb`).
pub const DICOMWEB: &str = "/dicomweb";

/// The pages (rendered by `osteo_app`) that form posts return to.
pub mod page {
    pub const HOME: &str = "/";
    pub const LOGIN: &str = "/login";
    /// The second step of signing in, for accounts with a second factor.
    pub const LOGIN_CODE: &str = "/login/code";
    /// Enrolling a second factor.
    pub const SECOND_FACTOR: &str = "/account/second-factor";
    pub const PASSWORD: &str = "/account/password";
    pub const TOKENS: &str = "/account/tokens";
    pub const USERS: &str = "/admin/users";
    pub const SCREENING: &str = "/screening";
    pub const CASES: &str = "/cases";
    pub const STUDY: &str = "/study";
    pub const ANALYSIS: &str = "/analysis";

    /// A case's page.
    pub fn case(id: impl std::fmt::Display) -> String {
        format!("{CASES}/{id}")
    }
}

/// Where a refused form post goes back to, declared with its route (see
/// `routes::form`): the page shows the error's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackTo {
    /// A fixed page.
    Page(&'static str),
    /// The page of the case in the path (`/cases/{id}/…`).
    Case,
}

impl BackTo {
    /// The page for a post to `path`.
    pub fn page(self, path: &str) -> String {
        match self {
            BackTo::Page(p) => p.to_owned(),
            BackTo::Case => {
                let id: String = path
                    .strip_prefix("/cases/")
                    .unwrap_or_default()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if id.is_empty() {
                    page::CASES.to_owned()
                } else {
                    format!("{}/{id}", page::CASES)
                }
            }
        }
    }
}

// Probes.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

// Sign-in, the user's own account, the interface language.
pub const LOGIN: &str = "/auth/login";
pub const LOGIN_CODE: &str = "/auth/code";
pub const SECOND_FACTOR_START: &str = "/account/second-factor/start";
pub const SECOND_FACTOR_CONFIRM: &str = "/account/second-factor/confirm";
pub const LOGOUT: &str = "/auth/logout";
pub const PASSWORD: &str = "/auth/password";
pub const LANGUAGE: &str = "/ui/lang";
pub const ME: &str = "/me";
pub const TOKENS: &str = "/tokens";
pub const TOKEN: &str = "/tokens/{id}";
pub const ACCOUNT_TOKENS: &str = "/account/tokens";
pub const ACCOUNT_TOKEN_REVOKE: &str = "/account/tokens/{id}/revoke";

// Accounts and sites (the administrator's).
pub const SITES: &str = "/sites";
pub const USERS: &str = "/users";
pub const USER: &str = "/users/{id}";
pub const USER_RESET_PASSWORD: &str = "/users/{id}/reset-password";
pub const USER_UNLOCK: &str = "/users/{id}/unlock";
pub const USER_RESET_SECOND_FACTOR: &str = "/users/{id}/reset-second-factor";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_USER: &str = "/admin/users/{id}";
pub const ADMIN_USER_RESET: &str = "/admin/users/{id}/reset";
pub const ADMIN_USER_UNLOCK: &str = "/admin/users/{id}/unlock";
pub const ADMIN_USER_RESET_SECOND_FACTOR: &str = "/admin/users/{id}/reset-second-factor";
pub const ADMIN_USER_ACTIVE: &str = "/admin/users/{id}/active";

// The audit trail.
pub const AUDIT: &str = "/audit";
pub const AUDIT_VERIFY: &str = "/audit/verify";

// Screening.
pub const SCREENING: &str = "/screening";
pub const SCREENING_CORRECT: &str = "/screening/{id}/correct";
pub const SCREENINGS: &str = "/screenings";
pub const SCREENING_CORRECTIONS: &str = "/screenings/{id}/corrections";
pub const SCREENING_VERSIONS: &str = "/screenings/{id}/versions";

// Cases.
pub const CASES: &str = "/cases";
pub const WORKLIST: &str = "/worklist";
pub const CASE: &str = "/cases/{id}";
pub const CASE_IMAGES: &str = "/cases/{id}/images";
pub const CASE_IMAGES_COMPLETE: &str = "/cases/{id}/images/complete";
pub const CASE_CRF: &str = "/cases/{id}/crf";
pub const CASE_CRF_SIGN: &str = "/cases/{id}/crf/sign";
/// A signed change of a CRF field frozen at the AI lock: the form and the API.
pub const CASE_CRF_AMEND: &str = "/cases/{id}/crf/amend";
pub const CASE_CRF_AMENDMENTS: &str = "/cases/{id}/crf/amendments";
pub const CASE_READERS: &str = "/cases/{id}/readers";
pub const CASE_READ: &str = "/cases/{id}/read";
pub const CASE_READ_SIGN: &str = "/cases/{id}/read/sign";
/// The reading workstation's "sign and next" (a page form only).
pub const CASE_READ_SIGN_NEXT: &str = "/cases/{id}/read/sign-next";
/// The workstation's draft, kept as the reader scores (the page's script).
pub const CASE_READ_DRAFT: &str = "/cases/{id}/read/draft";
pub const CASE_READS: &str = "/cases/{id}/reads";
pub const CASE_PREDICTION: &str = "/cases/{id}/prediction";
pub const CASE_HEATMAP: &str = "/cases/{id}/heatmaps/{n}";
pub const CASE_REPORT: &str = "/cases/{id}/report.pdf";
pub const CASE_PATHOLOGY: &str = "/cases/{id}/pathology";
pub const CASE_PATHOLOGY_SIGN: &str = "/cases/{id}/pathology/sign";
pub const CASE_END: &str = "/cases/{id}/end";
pub const CASE_POOR_QUALITY: &str = "/cases/{id}/poor-quality";
pub const CASE_QUERIES: &str = "/cases/{id}/queries";
pub const CASE_DICOM_ROUTES: &str = "/cases/{id}/dicom-routes";
pub const QUERIES: &str = "/queries";
pub const QUERY: &str = "/queries/{id}";

// Stored radiographs.
pub const IMAGE_PREVIEW: &str = "/images/{sha}/preview.png";
pub const IMAGE_WINDOW: &str = "/images/{sha}/window.json";

// The study: settings, the database lock, the pinned model, the dashboard.
pub const STUDY_SETTINGS: &str = "/study/settings";
pub const STUDY_LOCK: &str = "/study/lock";
pub const STUDY_UNLOCK: &str = "/study/unlock";
pub const STUDY_MODEL: &str = "/study/model";
pub const STUDY_MODEL_PIN: &str = "/study/model/pin";
pub const DASHBOARD: &str = "/dashboard";

// The PACS link: allowed DICOM peers, and the quarantine of received images.
pub const DICOM_PEERS: &str = "/dicom/peers";
pub const DICOM_PEER_RETIRE: &str = "/dicom/peers/{id}/retire";
pub const DICOM_QUARANTINE: &str = "/dicom/quarantine";
pub const DICOM_QUARANTINED: &str = "/dicom/quarantine/{id}";
pub const DICOM_QUARANTINE_ASSIGN: &str = "/dicom/quarantine/{id}/assign";
pub const DICOM_QUARANTINE_DISCARD: &str = "/dicom/quarantine/{id}/discard";

// The statistical analysis plan, the locked analysis and its files.
pub const SAP: &str = "/sap";
pub const SAP_SIGN: &str = "/sap/sign";
pub const ANALYSIS: &str = "/analysis";
pub const EXPORTS: &str = "/exports";
pub const EXPORT: &str = "/exports/{name}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_post_goes_back_to_its_case_page() {
        assert_eq!(BackTo::Case.page("/cases/12/crf/sign"), "/cases/12");
        assert_eq!(BackTo::Case.page("/cases/x/crf"), "/cases");
        assert_eq!(BackTo::Page(page::STUDY).page("/study/lock"), "/study");
        assert_eq!(page::case(7), "/cases/7");
    }
}
