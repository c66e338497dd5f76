//! Domain types shared by the server and the browser (wasm-safe: no I/O here).
//!
//! Every type in this module can only hold a valid value: it is built through
//! `parse` / `TryFrom`, which returns a typed error that says how to fix the input.

pub mod ids;

pub use ids::{CaseId, IdError, Probability, Sha256, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The trial this installation serves (PROTOCOL.md).
pub const STUDY_REGISTRATION: &str = "ChiCTR2500102778";
/// Its registered titles.
pub const STUDY_TITLE_EN: &str = "Prospective Assessment of Bone Tumor Risk from Multimodal Multiview Radiography Images via Clinically Applicable Deep Learning";
pub const STUDY_TITLE_ZH: &str =
    "通过临床适用的深度学习算法对多视角X线图像进行骨肿瘤风险的前瞻性评估";

/// A user's role. Authorisation is decided by [`Permission`] over this enum,
/// never by comparing role names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    PrincipalInvestigator,
    Coordinator,
    Radiologist,
    Statistician,
    Monitor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::PrincipalInvestigator,
        Role::Coordinator,
        Role::Radiologist,
        Role::Statistician,
        Role::Monitor,
    ];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::PrincipalInvestigator => "principal_investigator",
            Role::Coordinator => "coordinator",
            Role::Radiologist => "radiologist",
            Role::Statistician => "statistician",
            Role::Monitor => "monitor",
        }
    }

    /// Whether a user of this role holds `permission`. The one place where
    /// roles are mapped to what they may do.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            ManageUsers => matches!(self, Admin),
            ViewUsers => matches!(self, Admin | PrincipalInvestigator | Monitor),
            ViewAudit => matches!(self, Admin | Monitor | PrincipalInvestigator),
            UseApiTokens => true,
            EnterScreening => matches!(self, Coordinator),
            ViewScreening | ViewDashboard => matches!(
                self,
                Admin | PrincipalInvestigator | Coordinator | Monitor | Statistician
            ),
            EnterCaseData => matches!(self, Coordinator),
            AssignReaders => matches!(self, Coordinator | PrincipalInvestigator),
            ReadCases => matches!(self, Radiologist),
            ViewCases | ViewUnblinded => {
                matches!(self, Admin | PrincipalInvestigator | Coordinator | Monitor)
            }
            SignCrf | SignPathology => matches!(self, Coordinator | PrincipalInvestigator),
            RaiseQuery => matches!(self, Monitor | Coordinator | PrincipalInvestigator),
            AnswerQuery => matches!(self, Coordinator),
            ManageStudy => matches!(self, Admin | PrincipalInvestigator),
            LockDatabase | WithdrawCases | AmendFrozenInputs | PinModel => {
                matches!(self, PrincipalInvestigator)
            }
            SignUnlock => matches!(self, PrincipalInvestigator | Monitor),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DomainError::UnknownRole(s.to_owned()))
    }
}

/// What a user may do. Checked on the server for every entry point
/// (pages, server functions, REST, command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// Create users, change roles and sites, deactivate, reset passwords.
    ManageUsers,
    /// See the list of accounts (including locked ones).
    ViewUsers,
    /// Read the audit trail.
    ViewAudit,
    /// Create and revoke one's own API tokens.
    UseApiTokens,
    /// Log screened patients, enrol them, correct the log.
    EnterScreening,
    /// Read the screening log and its flow counts (operational figures,
    /// no accuracy).
    ViewScreening,
    /// The operational dashboard: enrolment, flow, completeness, queries.
    ViewDashboard,
    /// Mark images complete, fill the clinical CRF, enter pathology,
    /// withdraw or exclude a case.
    EnterCaseData,
    /// Assign radiologists to read a case.
    AssignReaders,
    /// Record and sign one's own blinded reads.
    ReadCases,
    /// See every case (radiologists see the cases they read).
    ViewCases,
    /// See pathology, AI output and every reader's result before database
    /// lock. Radiologists and statisticians are blinded.
    ViewUnblinded,
    /// Sign the clinical CRF.
    SignCrf,
    /// Sign the pathology result (the reference standard).
    SignPathology,
    /// Raise a data query and close or reopen it.
    RaiseQuery,
    /// Answer a data query.
    AnswerQuery,
    /// Study settings: the Bone-RADS rule table, readers per case.
    ManageStudy,
    /// Lock the database (interim or final) and sign an unlock.
    LockDatabase,
    /// Withdraw a case (a coded reason, signed).
    WithdrawCases,
    /// Change a model input frozen at the AI lock (a signed protocol deviation).
    AmendFrozenInputs,
    /// Pin the trial's model before the first prediction.
    PinModel,
    /// Sign an unlock of the database (it needs the PI's and the monitor's signatures).
    SignUnlock,
}

/// Which study a database holds, fixed when the database is created: the
/// trial itself, or the demonstration study (its own accounts, phantom cases
/// and demo model, study numbers `D-`/`DR-`, labelled on every page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyKind {
    #[default]
    Trial,
    Demo,
}

impl StudyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StudyKind::Trial => "trial",
            StudyKind::Demo => "demo",
        }
    }

    /// The registration number the study is recorded under.
    pub fn registration(self) -> &'static str {
        match self {
            StudyKind::Trial => STUDY_REGISTRATION,
            StudyKind::Demo => DEMO_REGISTRATION,
        }
    }

    /// The study's titles (English, Chinese).
    pub fn titles(self) -> (&'static str, &'static str) {
        match self {
            StudyKind::Trial => (STUDY_TITLE_EN, STUDY_TITLE_ZH),
            StudyKind::Demo => (DEMO_TITLE_EN, DEMO_TITLE_ZH),
        }
    }
}

impl FromStr for StudyKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trial" => Ok(StudyKind::Trial),
            "demo" => Ok(StudyKind::Demo),
            other => Err(DomainError::UnknownStudyKind(other.to_owned())),
        }
    }
}

/// The demonstration study's registration: never the trial's.
pub const DEMO_REGISTRATION: &str = "DEMO";
pub const DEMO_TITLE_EN: &str =
    "Demonstration study (synthetic cases; not ChiCTR2500102778, not for clinical use)";
pub const DEMO_TITLE_ZH: &str = "演示研究（合成病例；非 ChiCTR2500102778，不可用于临床）";

/// Where a change came from; recorded with every audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSource {
    Ui,
    Api,
    Cli,
    System,
}

impl AuditSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditSource::Ui => "ui",
            AuditSource::Api => "api",
            AuditSource::Cli => "cli",
            AuditSource::System => "system",
        }
    }
}

impl FromStr for AuditSource {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            AuditSource::Ui,
            AuditSource::Api,
            AuditSource::Cli,
            AuditSource::System,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| DomainError::UnknownSource(s.to_owned()))
    }
}

/// The languages of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Locale {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    /// The BCP 47 tag, as used in `<html lang>` and the translation files.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, shown in the language switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::ZhCn => "简体中文",
        }
    }

    /// Picks the best supported language from an `Accept-Language` header
    /// (RFC 9110 §12.5.4), honouring quality values; English when nothing matches.
    pub fn negotiate(accept_language: &str) -> Locale {
        let mut best: Option<(f32, Locale)> = None;
        for part in accept_language.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let locale = if tag.starts_with("zh") {
                Some(Locale::ZhCn)
            } else if tag.starts_with("en") {
                Some(Locale::En)
            } else {
                None
            };
            if let Some(locale) = locale {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, locale));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }
}

impl FromStr for Locale {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(s))
            .ok_or_else(|| DomainError::UnknownLocale(s.to_owned()))
    }
}

/// A login name: 3–64 characters of lower-case ASCII letters, digits, `.`, `_`
/// and `-`, starting with a letter. Unique for ever (accounts are never deleted,
/// so a name is never reused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let len = s.chars().count();
        if !(3..=64).contains(&len) {
            return Err(DomainError::UsernameLength);
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok {
            return Err(DomainError::UsernameCharacters);
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Username::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the policy: at least 12 and at most 256
/// characters (NIST SP 800-63B §3.1.1.2: length over composition rules).
/// Deliberately neither `Debug`-printable nor serialisable, so it cannot leak
/// into a log or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let n = s.chars().count();
        if n < Self::MIN_CHARS {
            return Err(DomainError::PasswordTooShort);
        }
        if n > Self::MAX_CHARS {
            return Err(DomainError::PasswordTooLong);
        }
        Ok(NewPassword(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A person's display name: 1–128 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > 128 || s.chars().any(char::is_control) {
            return Err(DomainError::DisplayName);
        }
        Ok(DisplayName(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DisplayName::parse(&s)
    }
}

impl From<DisplayName> for String {
    fn from(u: DisplayName) -> String {
        u.0
    }
}

/// A site code such as `QDUAH`: 2–16 upper-case letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteCode(String);

impl SiteCode {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if !(2..=16).contains(&s.len())
            || !s
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(DomainError::SiteCode);
        }
        Ok(SiteCode(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SiteCode::parse(&s)
    }
}

impl From<SiteCode> for String {
    fn from(u: SiteCode) -> String {
        u.0
    }
}

/// A reason for a change (21 CFR Part 11 asks why, not only what):
/// 1–500 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > 500 {
            return Err(DomainError::Reason);
        }
        Ok(Reason(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Reason::parse(&s)
    }
}

impl From<Reason> for String {
    fn from(u: Reason) -> String {
        u.0
    }
}

/// Why a value could not be accepted. The messages say how to fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DomainError {
    #[error("unknown role `{0}`; use one of admin, principal_investigator, coordinator, radiologist, statistician, monitor")]
    UnknownRole(String),
    #[error("unknown audit source `{0}`; use ui, api, cli or system")]
    UnknownSource(String),
    #[error("unknown study kind `{0}`; use trial or demo")]
    UnknownStudyKind(String),
    #[error("unknown language `{0}`; use en or zh-CN")]
    UnknownLocale(String),
    #[error("a username has 3 to 64 characters")]
    UsernameLength,
    #[error(
        "a username starts with a lower-case letter and holds only a-z, 0-9, '.', '_' and '-'"
    )]
    UsernameCharacters,
    #[error("a password has at least 12 characters")]
    PasswordTooShort,
    #[error("a password has at most 256 characters")]
    PasswordTooLong,
    #[error("a display name has 1 to 128 characters and no control characters")]
    DisplayName,
    #[error("a site code has 2 to 16 upper-case letters or digits")]
    SiteCode,
    #[error("a reason has 1 to 500 characters")]
    Reason,
}

/// An API token as listed (never the secret): what the token pages and
/// the REST API show of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_codes() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn only_admins_manage_users() {
        for role in Role::ALL {
            assert_eq!(role.can(Permission::ManageUsers), role == Role::Admin);
        }
        assert!(Role::Monitor.can(Permission::ViewAudit));
        assert!(!Role::Coordinator.can(Permission::ViewAudit));
        assert!(!Role::Radiologist.can(Permission::ViewAudit));
        assert!(!Role::Statistician.can(Permission::ViewAudit));
    }

    #[test]
    fn usernames_are_checked() {
        assert!(Username::parse("coordinator1").is_ok());
        assert_eq!(
            Username::parse(" li.wei ").map(|u| u.0),
            Ok("li.wei".into())
        );
        assert_eq!(Username::parse("ab"), Err(DomainError::UsernameLength));
        assert_eq!(
            Username::parse("Admin"),
            Err(DomainError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse("1abc"),
            Err(DomainError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse("a b c"),
            Err(DomainError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(DomainError::UsernameLength)
        );
    }

    #[test]
    fn passwords_need_twelve_characters_counted_as_characters_not_bytes() {
        assert_eq!(
            NewPassword::parse("elevenchars"),
            Err(DomainError::PasswordTooShort)
        );
        assert!(NewPassword::parse("twelve chars").is_ok());
        // Six Chinese characters are 18 bytes but only 6 characters.
        assert_eq!(
            NewPassword::parse("骨肿瘤研究组"),
            Err(DomainError::PasswordTooShort)
        );
        assert_eq!(
            NewPassword::parse(&"x".repeat(257)),
            Err(DomainError::PasswordTooLong)
        );
        assert_eq!(
            format!("{:?}", NewPassword::parse("secret secret").ok()),
            "Some(NewPassword(***))"
        );
    }

    #[test]
    fn language_negotiation_honours_quality_values() {
        assert_eq!(Locale::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Locale::ZhCn);
        assert_eq!(Locale::negotiate("en-US,en;q=0.9,zh-CN;q=0.8"), Locale::En);
        assert_eq!(Locale::negotiate("fr-FR, zh;q=0.5"), Locale::ZhCn);
        assert_eq!(Locale::negotiate("fr-FR"), Locale::En);
        assert_eq!(Locale::negotiate("zh;q=0, en;q=0.1"), Locale::En);
        assert_eq!(Locale::negotiate(""), Locale::En);
    }

    #[test]
    fn site_codes_and_reasons() {
        assert!(SiteCode::parse("QDUAH").is_ok());
        assert!(SiteCode::parse("qduah").is_err());
        assert!(Reason::parse("  ").is_err());
        assert!(Reason::parse("typo in age").is_ok());
    }
}
