//! The records of the PACS link (the server's DICOM C-STORE SCP,
//! `osteo_server::pacs`): which DICOM peers may send, the routes from an
//! image's accession number or patient ID to its case, and the quarantine
//! of images that matched no route, until a coordinator resolves them.
//!
//! No patient identifier enters the database. A route holds the
//! HMAC-SHA256 of the identifier (the server computes it under a key kept
//! outside the database), so the trial's tables still hold no one's
//! accession number or hospital ID; a quarantined image's identifiers stay
//! in its file until it is resolved. Nothing here is deleted: peers and
//! routes are retired, quarantined images resolved once, each audited with
//! who and when (the database's triggers hold it too).

use crate::audit::{Change, Principal};
use crate::codes::{code_enum, is_sha256, UnknownCode};
use crate::domain::{CaseId, Permission};
use crate::error::{ErrorKind, ServiceError};
use crate::store::{now_utc, Db};
use crate::write::{begin, insert_audited, require, transaction};
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum PacsError {
    #[error("your role does not allow this")]
    Forbidden,
    #[error(
        "the database is locked: no change is accepted until the principal investigator unlocks it"
    )]
    DatabaseLocked,
    #[error("an AE title has 1 to 16 characters, letters, digits, spaces and _-. (no backslash), and is not only spaces")]
    BadAeTitle,
    #[error("`{0}` is not an IP address (write it as 10.0.0.5 or fe80::1, or leave it empty for any address)")]
    BadAddress(String),
    #[error("`{0}` is not a DICOM tag: write it as eight hexadecimal digits, group then element (00200010)")]
    BadTag(String),
    #[error("this AE title and address are already allowed")]
    PeerExists,
    #[error("no such DICOM peer (or it is already retired)")]
    NoPeer,
    #[error("an accession number or patient ID has 1 to 64 characters")]
    BadIdentifier,
    #[error("this identifier already routes images to case {0}: retire that route first")]
    RouteTaken(String),
    #[error("no such case")]
    NoCase,
    #[error(
        "routes are keyed with the server's audit signing key, which this process does not hold"
    )]
    NoKey,
    #[error("the password or the second factor's code is not correct")]
    BadPassword,
    #[error("this account signs with a second factor: give the code with the password")]
    SecondFactorNeeded,
    #[error("enrol a second factor first")]
    SecondFactorNotEnrolled,
    #[error("images go to a case while it is enrolled and its images are not yet complete")]
    CaseNotOpen,
    #[error("no such quarantined image (or it is already resolved)")]
    NotQuarantined,
    #[error("a reason of 1 to 500 characters is needed")]
    NoReason,
    #[error(transparent)]
    Code(#[from] UnknownCode),
    #[error(transparent)]
    Failed(#[from] crate::write::StoreFailure),
}

crate::write::write_path_errors!(PacsError);

impl ServiceError for PacsError {
    fn kind(&self) -> ErrorKind {
        use PacsError as E;
        match self {
            E::Forbidden => ErrorKind::Forbidden,
            E::BadAeTitle
            | E::BadAddress(_)
            | E::BadTag(_)
            | E::BadIdentifier
            | E::NoReason
            | E::Code(_)
            | E::BadPassword => ErrorKind::Invalid,
            E::NoPeer | E::NoCase | E::NotQuarantined => ErrorKind::NotFound,
            E::DatabaseLocked | E::PeerExists | E::RouteTaken(_) | E::CaseNotOpen => {
                ErrorKind::Conflict
            }
            E::SecondFactorNeeded | E::SecondFactorNotEnrolled => ErrorKind::Invalid,
            E::NoKey => ErrorKind::Internal,
            E::Failed(f) => f.kind(),
        }
    }

    fn code(&self) -> &'static str {
        use PacsError as E;
        match self {
            E::Forbidden => "forbidden",
            E::DatabaseLocked => "database_locked",
            E::BadAeTitle => "bad_ae_title",
            E::BadAddress(_) => "bad_address",
            E::BadTag(_) => "bad_tag",
            E::PeerExists => "peer_exists",
            E::NoPeer => "no_peer",
            E::BadIdentifier => "bad_identifier",
            E::RouteTaken(_) => "route_taken",
            E::NoCase => "not_found",
            E::NoKey => "internal",
            E::CaseNotOpen => "case_not_open",
            E::NotQuarantined => "not_quarantined",
            E::NoReason => "reason_required",
            E::Code(_) => "invalid",
            E::BadPassword => "bad_password",
            E::SecondFactorNeeded => "second_factor_needed",
            E::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            E::Failed(f) => f.code(),
        }
    }
}

/// A DICOM application entity allowed to send images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub id: i64,
    pub ae_title: String,
    /// The IP address it must call from; `None`: any address.
    pub address: Option<String>,
    /// The tag (eight hexadecimal digits) in which this peer sends the
    /// study number, for images no route matches; `None`: routes only.
    pub study_number_tag: Option<String>,
    pub added_at: String,
}

/// A peer to allow.
#[derive(Debug, Clone, Default)]
pub struct NewPeer<'a> {
    pub ae_title: &'a str,
    /// The IP address it must call from; `None` or empty: any address.
    pub address: Option<&'a str>,
    /// The tag carrying the study number (eight hexadecimal digits).
    pub study_number_tag: Option<&'a str>,
}

/// Whether `ae` is a valid AE title (PS3.5 AE: at most 16 characters of the
/// default repertoire, no backslash, not all spaces). Compared trimmed.
pub fn is_ae_title(ae: &str) -> bool {
    let t = ae.trim();
    !t.is_empty()
        && t.len() <= 16
        && t.chars()
            .all(|c| c.is_ascii_graphic() && c != '\\' || c == ' ')
}

/// The peers allowed now.
pub async fn peers(db: &Db) -> Result<Vec<Peer>, PacsError> {
    let rows = sqlx::query(
        "SELECT id, ae_title, address, study_number_tag, added_at FROM dicom_peers WHERE retired_at IS NULL ORDER BY ae_title, id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Peer {
                id: r.try_get("id")?,
                ae_title: r.try_get("ae_title")?,
                address: r.try_get("address")?,
                study_number_tag: r.try_get("study_number_tag")?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Whether a calling AE at `address` may send: an allowed peer with that
/// title, at that address or at any.
pub fn allowed(peers: &[Peer], calling_ae: &str, address: std::net::IpAddr) -> bool {
    peer_of(peers, calling_ae, address).is_some()
}

/// The allowed peer a calling AE at `address` is: the entry for that very
/// address first, then one for any address.
pub fn peer_of<'p>(
    peers: &'p [Peer],
    calling_ae: &str,
    address: std::net::IpAddr,
) -> Option<&'p Peer> {
    let titled = || peers.iter().filter(|p| p.ae_title == calling_ae.trim());
    titled()
        .find(|p| {
            p.address
                .as_deref()
                .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok_and(|a| a == address))
        })
        .or_else(|| titled().find(|p| p.address.is_none()))
}

/// Allows a peer (a study setting: the administrator or the principal
/// investigator).
pub async fn add_peer(db: &Db, by: &Principal, new: NewPeer<'_>) -> Result<Peer, PacsError> {
    let NewPeer {
        ae_title,
        address,
        study_number_tag,
    } = new;
    require(by, Permission::ManageStudy)?;
    let study_number_tag = match study_number_tag.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) if t.len() == 8 && t.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(t.to_ascii_uppercase())
        }
        Some(t) => return Err(PacsError::BadTag(t.chars().take(32).collect())),
    };
    if !is_ae_title(ae_title) {
        return Err(PacsError::BadAeTitle);
    }
    let ae_title = ae_title.trim().to_owned();
    let address = match address.map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            a.parse::<std::net::IpAddr>()
                .map_err(|_| PacsError::BadAddress(a.chars().take(64).collect()))?
                .to_string(),
        ),
    };
    let mut tx = transaction(db).await?;
    let same = sqlx::query(
        "SELECT 1 FROM dicom_peers WHERE retired_at IS NULL AND ae_title = $1 AND address IS NOT DISTINCT FROM $2",
    )
    .bind(&ae_title)
    .bind(&address)
    .fetch_optional(&mut *tx)
    .await?;
    if same.is_some() {
        return Err(PacsError::PeerExists);
    }
    let at = now_utc();
    let insert = sqlx::query(
        "INSERT INTO dicom_peers (ae_title, address, study_number_tag, added_at, added_by) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&ae_title)
    .bind(&address)
    .bind(&study_number_tag)
    .bind(&at)
    .bind(by.user_id);
    let said = format!(
        "{ae_title} at {}{}",
        address.as_deref().unwrap_or("any address"),
        study_number_tag
            .as_deref()
            .map(|t| format!(", study number in ({},{})", &t[..4], &t[4..]))
            .unwrap_or_default()
    );
    let id = insert_audited(&mut tx, by, insert, |id| {
        Change::new("dicom.peer.add", "dicom_peer", id).field("peer", None, Some(said))
    })
    .await?;
    tx.commit().await?;
    Ok(Peer {
        id,
        ae_title,
        address,
        study_number_tag,
        added_at: at,
    })
}

/// Retires a peer: it may no longer send.
pub async fn retire_peer(db: &Db, by: &Principal, id: i64) -> Result<(), PacsError> {
    require(by, Permission::ManageStudy)?;
    let mut tx = transaction(db).await?;
    let done = sqlx::query(
        "UPDATE dicom_peers SET retired_at = $1, retired_by = $2 WHERE id = $3 AND retired_at IS NULL RETURNING ae_title",
    )
    .bind(now_utc())
    .bind(by.user_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(PacsError::NoPeer)?;
    let ae: String = done.try_get("ae_title")?;
    crate::audit::append(
        &mut tx,
        by,
        Change::new("dicom.peer.retire", "dicom_peer", id).field("peer", Some(ae), None),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

code_enum! {
    /// What a route matches in a received image: its Accession Number
    /// (0008,0050) or its Patient ID (0010,0020).
    pub enum RouteKind: "route kind" { AccessionNumber = "accession_number", PatientId = "patient_id" }
}

/// A case's route, as the coordinator sees it: which kind, since when (the
/// identifier itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: i64,
    pub case_id: i64,
    pub kind: RouteKind,
    pub added_at: String,
}

/// The text a route's HMAC is computed over: the kind and the identifier
/// trimmed of DICOM padding, so that `ACC1 ` in a file matches `ACC1` typed.
pub fn route_message(kind: RouteKind, identifier: &str) -> Option<String> {
    let id = identifier.trim_matches(|c: char| c == ' ' || c == '\0');
    (!id.is_empty() && id.chars().count() <= 64).then(|| format!("{}:{id}", kind.as_str()))
}

/// The purpose the audit key derives the route key for.
const ROUTE_KEY_PURPOSE: &str = "osteo-edc dicom route v1";

/// The keyed hash a route of `kind` to `identifier` is stored and found
/// under: HMAC-SHA256 under a key derived from the audit signing key, so
/// that the database alone does not give the identifier back (and a
/// dictionary of hospital numbers does not either). `None` for an empty or
/// over-long identifier, or when this process holds no audit key.
pub fn route_key(db: &Db, kind: RouteKind, identifier: &str) -> Option<String> {
    let message = route_message(kind, identifier)?;
    Some(db.anchor_key()?.keyed_hash(ROUTE_KEY_PURPOSE, &message))
}

/// Registers a route to an enrolled case (the coordinator): images whose
/// accession number or patient ID is `identifier` go to this case. Only
/// the keyed hash of the identifier is stored ([`route_key`]).
pub async fn add_route(
    db: &Db,
    by: &Principal,
    case_id: CaseId,
    kind: RouteKind,
    identifier: &str,
) -> Result<Route, PacsError> {
    require(by, Permission::EnterCaseData)?;
    if route_message(kind, identifier).is_none() {
        return Err(PacsError::BadIdentifier);
    }
    let key_hmac = route_key(db, kind, identifier).ok_or(PacsError::NoKey)?;
    let key_hmac = key_hmac.as_str();
    let case_id = case_id.get();
    let mut tx = begin(db, by, "dicom.route.add", "case", case_id).await?;
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?;
    match state.as_deref() {
        None => return Err(PacsError::NoCase),
        Some("enrolled") => {}
        Some(_) => return Err(PacsError::CaseNotOpen),
    }
    let taken = sqlx::query(
        "SELECT c.arm, c.study_no FROM dicom_routes r JOIN cases c ON c.id = r.case_id \
         WHERE r.kind = $1 AND r.key_hmac = $2 AND r.retired_at IS NULL",
    )
    .bind(kind.as_str())
    .bind(key_hmac)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(t) = taken {
        let arm: String = t.try_get("arm")?;
        let no: i64 = t.try_get("study_no")?;
        return Err(PacsError::RouteTaken(format!(
            "{}-{no:04}",
            if arm == "prospective" { "P" } else { "R" }
        )));
    }
    let at = now_utc();
    let insert = sqlx::query(
        "INSERT INTO dicom_routes (case_id, kind, key_hmac, added_at, added_by) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(case_id)
    .bind(kind.as_str())
    .bind(key_hmac)
    .bind(&at)
    .bind(by.user_id);
    let id = insert_audited(&mut tx, by, insert, |id| {
        Change::new("dicom.route.add", "case", case_id).field(
            "route",
            None,
            Some(format!("{} route {id}", kind.as_str())),
        )
    })
    .await?;
    tx.commit().await?;
    Ok(Route {
        id,
        case_id,
        kind,
        added_at: at,
    })
}

/// The live routes of a case.
pub async fn routes(db: &Db, by: &Principal, case_id: CaseId) -> Result<Vec<Route>, PacsError> {
    require(by, Permission::ViewCases)?;
    let rows = sqlx::query(
        "SELECT id, case_id, kind, added_at FROM dicom_routes WHERE case_id = $1 AND retired_at IS NULL ORDER BY id",
    )
    .bind(case_id.get())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Route {
                id: r.try_get("id")?,
                case_id: r.try_get("case_id")?,
                kind: r.try_get::<String, _>("kind")?.parse()?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect()
}

/// The case a received image goes to, by its identifiers as found in the
/// file (accession number first): `None` when no live route matches.
pub async fn route_of(
    db: &Db,
    identifiers: &[(RouteKind, Option<String>)],
) -> Result<Option<CaseId>, PacsError> {
    for (kind, identifier) in identifiers {
        let Some(key) = identifier.as_deref().and_then(|i| route_key(db, *kind, i)) else {
            continue;
        };
        let case: Option<i64> = sqlx::query_scalar(
            "SELECT case_id FROM dicom_routes WHERE kind = $1 AND key_hmac = $2 AND retired_at IS NULL",
        )
        .bind(kind.as_str())
        .bind(&key)
        .fetch_optional(db.pool())
        .await?;
        if let Some(c) = case {
            return Ok(Some(CaseId::new(c)));
        }
    }
    Ok(None)
}

/// An image waiting in quarantine, or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub id: i64,
    pub received_at: String,
    pub calling_ae: String,
    pub peer_address: String,
    /// SHA-256 of the file as received: its name in the quarantine folder.
    pub original_sha256: String,
    pub size_bytes: i64,
    /// Why it was not routed.
    pub reason: String,
    /// `assigned` or `discarded` once resolved.
    pub outcome: Option<String>,
    pub case_id: Option<i64>,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
}

/// What the SCP records when an image matches no route.
#[derive(Debug, Clone)]
pub struct NewQuarantined {
    pub calling_ae: String,
    pub peer_address: String,
    pub original_sha256: String,
    pub size_bytes: i64,
    pub reason: String,
}

/// Records a quarantined image (the server's receiver, as the system). The
/// same file sent again is the same entry: its id is returned.
pub async fn quarantine(db: &Db, by: &Principal, entry: NewQuarantined) -> Result<i64, PacsError> {
    if !is_sha256(&entry.original_sha256) {
        return Err(PacsError::NotQuarantined);
    }
    let mut tx = transaction(db).await?;
    let known: Option<i64> =
        sqlx::query_scalar("SELECT id FROM dicom_quarantine WHERE original_sha256 = $1")
            .bind(&entry.original_sha256)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(id) = known {
        return Ok(id);
    }
    let insert = sqlx::query(
        "INSERT INTO dicom_quarantine (received_at, calling_ae, peer_address, original_sha256, size_bytes, reason) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(now_utc())
    .bind(&entry.calling_ae)
    .bind(&entry.peer_address)
    .bind(&entry.original_sha256)
    .bind(entry.size_bytes)
    .bind(&entry.reason);
    let said = format!(
        "from {} at {} ({} bytes, sha256 {}): {}",
        entry.calling_ae, entry.peer_address, entry.size_bytes, entry.original_sha256, entry.reason
    );
    let id = insert_audited(&mut tx, by, insert, |id| {
        Change::new("dicom.quarantine", "dicom_quarantine", id).field("image", None, Some(said))
    })
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn quarantined_row(r: &sqlx::any::AnyRow) -> Result<Quarantined, sqlx::Error> {
    Ok(Quarantined {
        id: r.try_get("id")?,
        received_at: r.try_get("received_at")?,
        calling_ae: r.try_get("calling_ae")?,
        peer_address: r.try_get("peer_address")?,
        original_sha256: r.try_get("original_sha256")?,
        size_bytes: r.try_get("size_bytes")?,
        reason: r.try_get("reason")?,
        outcome: r.try_get("outcome")?,
        case_id: r.try_get("case_id")?,
        resolved_at: r.try_get("resolved_at")?,
        resolution: r.try_get("resolution")?,
    })
}

const QUARANTINE_COLUMNS: &str =
    "id, received_at, calling_ae, peer_address, original_sha256, size_bytes, reason, \
     outcome, case_id, resolved_at, resolution";

/// The quarantine, waiting images first (the coordinators).
pub async fn quarantined(db: &Db, by: &Principal) -> Result<Vec<Quarantined>, PacsError> {
    require(by, Permission::EnterCaseData)?;
    let rows = sqlx::query(&format!(
        "SELECT {QUARANTINE_COLUMNS} FROM dicom_quarantine ORDER BY outcome IS NOT NULL, id"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(quarantined_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// One quarantined image, waiting or not.
pub async fn quarantined_one(db: &Db, by: &Principal, id: i64) -> Result<Quarantined, PacsError> {
    require(by, Permission::EnterCaseData)?;
    let row = sqlx::query(&format!(
        "SELECT {QUARANTINE_COLUMNS} FROM dicom_quarantine WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(PacsError::NotQuarantined)?;
    Ok(quarantined_row(&row)?)
}

/// How a coordinator resolves a quarantined image.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Stored on this case (the server ingests it first, then records this).
    Assigned(CaseId),
    /// Not trial data: the reason is kept, the file removed.
    Discarded(String),
}

/// Records the resolution of a waiting image (once).
pub async fn resolve(
    db: &Db,
    by: &Principal,
    id: i64,
    resolution: Resolution,
) -> Result<(), PacsError> {
    require(by, Permission::EnterCaseData)?;
    let (outcome, case_id, text) = match &resolution {
        Resolution::Assigned(c) => ("assigned", Some(c.get()), None),
        Resolution::Discarded(reason) => {
            let r = reason.trim();
            if r.is_empty() || r.chars().count() > 500 {
                return Err(PacsError::NoReason);
            }
            ("discarded", None, Some(r.to_owned()))
        }
    };
    let mut tx = begin(db, by, "dicom.quarantine.resolve", "dicom_quarantine", id).await?;
    let done = sqlx::query(
        "UPDATE dicom_quarantine SET outcome = $1, case_id = $2, resolution = $3, resolved_at = $4, resolved_by = $5 \
         WHERE id = $6 AND outcome IS NULL RETURNING id",
    )
    .bind(outcome)
    .bind(case_id)
    .bind(&text)
    .bind(now_utc())
    .bind(by.user_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if done.is_none() {
        return Err(PacsError::NotQuarantined);
    }
    crate::audit::append(
        &mut tx,
        by,
        Change::new("dicom.quarantine.resolve", "dicom_quarantine", id)
            .field(
                "outcome",
                None,
                Some(match case_id {
                    Some(c) => format!("assigned to case {c}"),
                    None => "discarded".to_owned(),
                }),
            )
            .reason(text.as_deref()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
