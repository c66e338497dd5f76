//! QIDO-RS (search, PS3.18 10.6) and WADO-RS (retrieve, PS3.18 10.4) over
//! the objects the caller may see ([`super::visible`]).
//!
//! - **Search** at the study, series and instance levels, with matching on
//!   any attribute the results carry or the objects hold (a keyword or a
//!   tag): a list of UIDs for UI, a range `from-to` for dates and times, `*`
//!   and `?` wildcards otherwise (case-insensitive for person names).
//!   `includefield` adds attributes; `limit` and `offset` page. Fuzzy
//!   matching is not offered: a request for it is answered without it and
//!   says so in a `Warning` header, as PS3.18 asks.
//! - **Retrieve** studies, series and instances as `multipart/related;
//!   type="application/dicom"`, in the transfer syntax asked for:
//!   `transfer-syntax=*` gives the stored one; none named gives Explicit VR
//!   Little Endian, the default of PS3.18 (the pixel data is decoded when it
//!   is stored compressed). Any other media type answers 406.
//! - **Metadata** as DICOM JSON, without bulk data (the pixel data is in the
//!   object).

use super::{add_warnings, attribute, base_url, retrieve_url, visible, Held};
use crate::api::ApiUser;
use crate::errors::ApiError;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Explicit VR Little Endian: what WADO-RS returns when no transfer syntax
/// is named (PS3.18 8.7.3.5.2).
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// The attributes each level's results carry (DICOM JSON keys).
const STUDY: [&str; 12] = [
    "00080005", // Specific Character Set
    "00080020", // Study Date
    "00080030", // Study Time
    "00080050", // Accession Number
    "00080090", // Referring Physician's Name
    "00081030", // Study Description
    "00100010", // Patient's Name
    "00100020", // Patient ID
    "00100030", // Patient's Birth Date
    "00100040", // Patient's Sex
    "0020000D", // Study Instance UID
    "00200010", // Study ID
];
const SERIES: [&str; 8] = [
    "00080021", // Series Date
    "00080060", // Modality
    "0008103E", // Series Description
    "00180015", // Body Part Examined
    "0020000D", // Study Instance UID
    "0020000E", // Series Instance UID
    "00200011", // Series Number
    "00200060", // Laterality
];
const INSTANCE: [&str; 10] = [
    "00080016", // SOP Class UID
    "00080018", // SOP Instance UID
    "00185101", // View Position
    "0020000D", // Study Instance UID
    "0020000E", // Series Instance UID
    "00200013", // Instance Number
    "00280008", // Number of Frames
    "00280010", // Rows
    "00280011", // Columns
    "00280100", // Bits Allocated
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Study,
    Series,
    Instance,
}

/// A search's parameters.
#[derive(Debug, Default)]
struct Search {
    /// Attribute (DICOM JSON key) and the value it must match.
    filters: Vec<(String, String)>,
    include: Vec<String>,
    limit: Option<usize>,
    offset: usize,
    warnings: Vec<String>,
}

/// An attribute named by keyword (`PatientID`) or tag (`00100020`) as the
/// DICOM JSON key.
fn key_of(name: &str) -> Option<String> {
    crate::imaging::tag_named(name).map(crate::imaging::tag_key)
}

fn parse_search(raw: Option<&str>) -> Result<Search, ApiError> {
    let mut search = Search::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let number = || {
            v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("{k} must be a whole number, not {v:?}"))
            })
        };
        match k.as_ref() {
            "limit" => search.limit = Some(number()?),
            "offset" => search.offset = number()?,
            "fuzzymatching" => {
                if v != "false" {
                    search
                        .warnings
                        .push("fuzzymatching is not supported; matching is exact".into());
                }
            }
            "includefield" => {
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if name == "all" {
                        search
                            .warnings
                            .push("includefield=all is not supported; name the attributes".into());
                        continue;
                    }
                    let key = key_of(name).ok_or_else(|| {
                        ApiError::bad_request(format!("includefield: no such attribute {name:?}"))
                    })?;
                    search.include.push(key);
                }
            }
            name => {
                let key = key_of(name).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "no such attribute or parameter {name:?}: match on a DICOM keyword or tag"
                    ))
                })?;
                search.filters.push((key, v.into_owned()));
            }
        }
    }
    Ok(search)
}

/// The values of a DICOM JSON attribute as text (a person name by its
/// alphabetic form).
fn texts(attr: &Value) -> Vec<String> {
    attr.get("Value")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Object(o) => o
                        .get("Alphabetic")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `*` any run of characters, `?` any one.
fn wildcard(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| wildcard(rest, &text[i..])),
        Some((p, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| (*p == '?' || p == t) && wildcard(rest, tail)),
    }
}

/// Whether an attribute matches a query value (PS3.4 C.2.2.2).
fn matches(attr: Option<&Value>, query: &str) -> bool {
    if query.is_empty() || query == "*" {
        return true;
    }
    let Some(attr) = attr else {
        return false;
    };
    let vr = attr.get("vr").and_then(Value::as_str).unwrap_or_default();
    let values = texts(attr);
    match vr {
        "UI" => {
            let wanted: Vec<&str> = query.split([',', '\\']).map(str::trim).collect();
            values.iter().any(|v| wanted.contains(&v.as_str()))
        }
        "DA" | "TM" | "DT" if query.contains('-') => {
            let (from, to) = query.split_once('-').unwrap_or((query, query));
            values.iter().any(|v| {
                (from.is_empty() || v.as_str() >= from) && (to.is_empty() || v.as_str() <= to)
            })
        }
        _ => {
            let fold = |s: &str| -> Vec<char> {
                if vr == "PN" {
                    s.to_lowercase().chars().collect()
                } else {
                    s.chars().collect()
                }
            };
            let pattern = fold(query);
            values.iter().any(|v| wildcard(&pattern, &fold(v)))
        }
    }
}

/// Whose UIDs name a result at `level`.
fn group_key(held: &Held, level: Level) -> (String, String, String) {
    let u = &held.record.uids;
    match level {
        Level::Study => (u.study.clone(), String::new(), String::new()),
        Level::Series => (u.study.clone(), u.series.clone(), String::new()),
        Level::Instance => (u.study.clone(), u.series.clone(), u.instance.clone()),
    }
}

/// The objects grouped into results at `level`, in the order first stored.
fn groups(held: &[Held], level: Level) -> Vec<Vec<&Held>> {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut by: std::collections::HashMap<(String, String, String), Vec<&Held>> =
        std::collections::HashMap::new();
    for h in held {
        let key = group_key(h, level);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(h);
    }
    order.into_iter().filter_map(|k| by.remove(&k)).collect()
}

fn pick(from: &Value, keys: &[&str], into: &mut Map<String, Value>) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            into.insert((*k).to_owned(), v.clone());
        }
    }
}

/// One search result: the level's attributes of its first object, the
/// counts, and its Retrieve URL.
fn result(group: &[&Held], level: Level, base: &str, include: &[String]) -> Map<String, Value> {
    let first = &group[0].record;
    let meta = &first.metadata;
    let u = &first.uids;
    let mut out = Map::new();
    let distinct = |f: fn(&Held) -> String| {
        let mut seen: Vec<String> = group.iter().map(|h| f(h)).collect();
        seen.sort();
        seen.dedup();
        seen
    };
    match level {
        Level::Study => {
            pick(meta, &STUDY, &mut out);
            let modalities = distinct(|h| {
                h.record
                    .metadata
                    .get("00080060")
                    .map(texts)
                    .and_then(|t| t.into_iter().next())
                    .unwrap_or_default()
            });
            out.insert(
                "00080061".into(),
                attribute(
                    "CS",
                    modalities
                        .into_iter()
                        .filter(|m| !m.is_empty())
                        .map(Value::String)
                        .collect(),
                ),
            );
            let series = distinct(|h| h.record.uids.series.clone()).len();
            out.insert("00201206".into(), attribute("IS", vec![json!(series)]));
            out.insert("00201208".into(), attribute("IS", vec![json!(group.len())]));
            out.insert("00081190".into(), retrieve_url(base, &u.study, None, None));
        }
        Level::Series => {
            pick(meta, &SERIES, &mut out);
            out.insert("00201209".into(), attribute("IS", vec![json!(group.len())]));
            out.insert(
                "00081190".into(),
                retrieve_url(base, &u.study, Some(&u.series), None),
            );
        }
        Level::Instance => {
            pick(meta, &INSTANCE, &mut out);
            out.insert(
                "00081190".into(),
                retrieve_url(base, &u.study, Some(&u.series), Some(&u.instance)),
            );
        }
    }
    let include: Vec<&str> = include.iter().map(String::as_str).collect();
    pick(meta, &include, &mut out);
    out
}

/// A search at `level` among the objects `scope` keeps.
async fn search(
    state: &AppState,
    user: &ApiUser,
    headers: &HeaderMap,
    raw: Option<String>,
    level: Level,
    scope: impl Fn(&Held) -> bool,
) -> Result<Response, ApiError> {
    let search = parse_search(raw.as_deref())?;
    let held: Vec<Held> = visible(state, user)
        .await?
        .into_iter()
        .filter(|h| scope(h))
        .collect();
    let base = base_url(state, headers);
    let found: Vec<Value> = groups(&held, level)
        .into_iter()
        .map(|g| (result(&g, level, &base, &search.include), g))
        .filter(|(out, g)| {
            search.filters.iter().all(|(key, query)| {
                let attr = out.get(key).or_else(|| g[0].record.metadata.get(key));
                matches(attr, query)
            })
        })
        .map(|(out, _)| Value::Object(out))
        .skip(search.offset)
        .take(search.limit.unwrap_or(usize::MAX))
        .collect();
    let mut response = (
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Array(found).to_string(),
    )
        .into_response();
    add_warnings(&mut response, &search.warnings);
    Ok(response)
}

/// Where a request points: the study, series and instance its path names
/// (each absent when the path does not name it).
pub struct Scope {
    study: Option<String>,
    series: Option<String>,
    instance: Option<String>,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut named =
            match Path::<HashMap<String, String>>::from_request_parts(parts, state).await {
                Ok(Path(named)) => named,
                Err(PathRejection::MissingPathParams(_)) => HashMap::new(),
                Err(e) => return Err(ApiError::bad_request(e.body_text())),
            };
        Ok(Scope {
            study: named.remove("study"),
            series: named.remove("series"),
            instance: named.remove("instance"),
        })
    }
}

impl Scope {
    fn holds(&self, h: &Held) -> bool {
        let u = &h.record.uids;
        self.study.as_ref().is_none_or(|s| *s == u.study)
            && self.series.as_ref().is_none_or(|s| *s == u.series)
            && self.instance.as_ref().is_none_or(|i| *i == u.instance)
    }
}

/// `GET /dicomweb/studies`
pub async fn search_studies(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    search(&state, &user, &headers, raw, Level::Study, |_| true).await
}

/// `GET /dicomweb/series`, `GET /dicomweb/studies/{study}/series`
pub async fn search_series(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    search(&state, &user, &headers, raw, Level::Series, |h| {
        scope.holds(h)
    })
    .await
}

/// `GET /dicomweb/instances`, `GET /dicomweb/studies/{study}/instances`,
/// `GET /dicomweb/studies/{study}/series/{series}/instances`
pub async fn search_instances(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    search(&state, &user, &headers, raw, Level::Instance, |h| {
        scope.holds(h)
    })
    .await
}

/// The objects a retrieval names, or 404 when the caller sees none.
async fn targeted(state: &AppState, user: &ApiUser, target: &Scope) -> Result<Vec<Held>, ApiError> {
    let held: Vec<Held> = visible(state, user)
        .await?
        .into_iter()
        .filter(|h| target.holds(h))
        .collect();
    if held.is_empty() {
        return Err(ApiError::not_found("no such study, series or instance"));
    }
    Ok(held)
}

/// The transfer syntax a retrieval asks for: `None` for the stored one.
fn wanted_syntax(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if accept.is_empty() {
        return Ok(Some(EXPLICIT_LE.into()));
    }
    for range in &accept {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or_default().to_ascii_lowercase();
        let mut kind = None;
        let mut syntax = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "type" => kind = Some(v.to_ascii_lowercase()),
                    "transfer-syntax" => syntax = Some(v),
                    _ => {}
                }
            }
        }
        let dicom = match media.as_str() {
            "*/*" | "multipart/*" => true,
            "multipart/related" => kind.as_deref().is_none_or(|k| k == "application/dicom"),
            _ => false,
        };
        if dicom {
            return Ok(match syntax.as_deref() {
                Some("*") => None,
                Some(ts) => Some(ts.to_owned()),
                None => Some(EXPLICIT_LE.into()),
            });
        }
    }
    Err(not_acceptable(
        "objects are served as multipart/related; type=\"application/dicom\" (transfer-syntax=* for the stored one)",
    ))
}

fn not_acceptable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
}

/// The objects as `multipart/related; type="application/dicom"`:
/// `GET /dicomweb/studies/{study}[/series/{series}[/instances/{instance}]]`.
pub async fn retrieve(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    target: Scope,
) -> Result<Response, ApiError> {
    let wanted = wanted_syntax(&headers)?;
    let held = targeted(&state, &user, &target).await?;
    let boundary = format!("osteo-{:032x}", rand::random::<u128>());
    let mut body = Vec::new();
    for h in held {
        let stored = h.record.transfer_syntax.as_str();
        let ts = wanted.as_deref().unwrap_or(stored);
        let bytes = crate::imaging::stored_in(state.images.as_ref(), &h.image.sha256, stored, ts)
            .await
            .map_err(|e| match e {
                crate::imaging::IngestError::NotDicom(why) => not_acceptable(format!(
                    "{why}; ask for transfer-syntax=* to get the stored transfer syntax ({stored})"
                )),
                e => ApiError::internal(e),
            })?
            .ok_or_else(|| {
                ApiError::internal("a recorded image is missing from the object store")
            })?;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={ts}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// The objects' metadata as a DICOM JSON array: `GET
/// /dicomweb/studies/{study}[/series/{series}[/instances/{instance}]]/metadata`.
pub async fn metadata(
    State(state): State<AppState>,
    user: ApiUser,
    target: Scope,
) -> Result<Response, ApiError> {
    let held = targeted(&state, &user, &target).await?;
    let all: Vec<Value> = held.into_iter().map(|h| h.record.metadata).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/dicom+json"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        Value::Array(all).to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn matching_follows_the_value_representation() {
        let uid = json!({"vr": "UI", "Value": ["1.2.3"]});
        assert!(matches(Some(&uid), "9.9,1.2.3"));
        assert!(!matches(Some(&uid), "1.2.*"));
        let date = json!({"vr": "DA", "Value": ["20260105"]});
        assert!(matches(Some(&date), "20260101-20260131"));
        assert!(matches(Some(&date), "-20260105"));
        assert!(!matches(Some(&date), "20260106-"));
        let name = json!({"vr": "PN", "Value": [{"Alphabetic": "P-0007"}]});
        assert!(matches(Some(&name), "p-00*"));
        let id = json!({"vr": "LO", "Value": ["P-0007"]});
        assert!(matches(Some(&id), "P-000?"));
        assert!(!matches(Some(&id), "p-0007"));
        assert!(!matches(None, "P-0007"));
        assert!(matches(None, "*"));
    }

    #[test]
    fn a_search_names_attributes_by_keyword_or_tag() {
        let s = parse_search(Some("PatientID=P-0001&00080060=CR&includefield=StudyDescription,00280010&limit=5&offset=1&fuzzymatching=true")).unwrap();
        assert_eq!(
            s.filters,
            vec![
                ("00100020".to_owned(), "P-0001".to_owned()),
                ("00080060".to_owned(), "CR".to_owned())
            ]
        );
        assert_eq!(s.include, vec!["00081030", "00280010"]);
        assert_eq!((s.limit, s.offset, s.warnings.len()), (Some(5), 1, 1));
        assert!(parse_search(Some("NotAnAttribute=1")).is_err());
        assert!(parse_search(Some("limit=many")).is_err());
    }

    #[test]
    fn retrieval_defaults_to_explicit_little_endian() {
        let mut h = HeaderMap::new();
        assert_eq!(wanted_syntax(&h).unwrap().as_deref(), Some(EXPLICIT_LE));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            ),
        );
        assert_eq!(wanted_syntax(&h).unwrap(), None);
        h.insert(header::ACCEPT, HeaderValue::from_static("image/jpeg"));
        assert!(wanted_syntax(&h).is_err());
    }
}
