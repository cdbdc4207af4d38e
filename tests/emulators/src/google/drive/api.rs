//! The Drive v3 handlers (reference §5.2–§5.5). See the module above for the route table.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::faults::{auth_error, google_error, invalid_page_token};
use super::query::{self, Selection};
use super::{
    DRIVE_SCOPE, Drive, MAX_APP_PROPERTIES, MAX_PROPERTY_BYTES, PropertyWrite, Store, Stored,
    errors,
};
use crate::common::{self, ErrorReply};

type Params = Query<BTreeMap<String, String>>;

const DEFAULT_LIST_FIELDS: &str =
    "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)";
const DEFAULT_CHANGE_FIELDS: &str = "kind,nextPageToken,newStartPageToken,changes(kind,changeType,time,removed,fileId,file(kind,id,name,mimeType))";
const DEFAULT_FILE_FIELDS: &str = "kind,id,name,mimeType";

pub(crate) fn routes(drive: Drive) -> Router {
    Router::new()
        .route("/drive/v3/files", get(list))
        .route("/drive/v3/files/{id}", get(get_file).patch(patch_file))
        .route("/drive/v3/changes", get(changes))
        .route("/drive/v3/changes/startPageToken", get(start_page_token))
        .route("/drive/v3/drives", get(list_drives))
        .route("/drive/v3/drives/{id}", get(get_drive))
        .with_state(drive)
}

/// The content host: what `alt=media` redirects to in [`DriveConfig::media_redirect`] mode.
///
/// [`DriveConfig::media_redirect`]: super::DriveConfig::media_redirect
pub(crate) fn content_routes(drive: Drive) -> Router {
    Router::new()
        .route("/docs/securesc/{ticket}/{id}", get(content))
        .with_state(drive)
}

/// Bytes on the content host: the ticket in the path is the credential; `Authorization` is
/// neither needed nor read (the traffic record keeps it, so a leak is visible).
async fn content(
    State(d): State<Drive>,
    Path((ticket, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match d.ticket(&ticket) {
        Some((file_id, bytes, mime)) if file_id == id => {
            let range = headers.get("range").and_then(|v| v.to_str().ok());
            media(&bytes, &mime, range)
        }
        _ => ErrorReply::json(
            403,
            json!({"error": {"code": 403, "message": "The download link is not valid.",
                "errors": [{"message": "The download link is not valid.", "domain": "global", "reason": "forbidden"}],
                "status": "PERMISSION_DENIED"}}),
        )
        .into_response(),
    }
}

/// A 4xx naming the parameter, as Google's `errors[].location` does.
fn param_error(code: u16, reason: &str, message: &str, location: &str) -> Response {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        _ => "FAILED_PRECONDITION",
    };
    ErrorReply::json(
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason,
                "location": location, "locationType": "parameter"}],
            "status": status}}),
    )
    .into_response()
}

/// [`param_error`], boxed for an early return.
fn early(code: u16, reason: &str, message: &str, location: &str) -> Early {
    Box::new(param_error(code, reason, message, location))
}

fn not_found(id: &str) -> Response {
    param_error(404, "notFound", &format!("File not found: {id}."), "fileId")
}

fn flag(q: &BTreeMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// RFC 3339 with milliseconds, as Drive writes times.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A reply that ends the handler early (boxed: a `Response` is large).
type Early = Box<Response>;

fn authorize(d: &Drive, headers: &HeaderMap, write: bool) -> Result<(), Early> {
    let token = common::bearer(headers, false).unwrap_or_default();
    let grant =
        d.0.tokens
            .check_access(&token, d.now())
            .map_err(|_| Box::new(auth_error().into_response()))?;
    let scopes: Vec<&str> = grant.scope.split(' ').collect();
    let ok = if write {
        scopes.contains(&DRIVE_SCOPE)
    } else {
        scopes.iter().any(|s| s.starts_with(DRIVE_SCOPE))
    };
    if ok {
        Ok(())
    } else {
        Err(Box::new(
            d.0.harness
                .errors
                .reply(
                    errors::INSUFFICIENT_SCOPE,
                    google_error(
                        403,
                        "insufficientPermissions",
                        "global",
                        "Request had insufficient authentication scopes.",
                        "PERMISSION_DENIED",
                    ),
                )
                .into_response(),
        ))
    }
}

fn fields(q: &BTreeMap<String, String>, default: &str) -> Result<Vec<Selection>, Early> {
    let raw = q.get("fields").map_or(default, String::as_str);
    query::parse_fields(raw).map_err(|e| {
        early(
            400,
            "invalidParameter",
            &format!("Invalid field selection {raw}: {e}"),
            "fields",
        )
    })
}

fn page_size(d: &Drive, q: &BTreeMap<String, String>) -> Result<usize, Early> {
    let max = d.0.config.max_page_size;
    match q.get("pageSize") {
        None => Ok(d.0.config.default_page_size),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(early(
                400,
                "invalid",
                &format!("Invalid value '{v}'. Values must be within the range: [1, {max}]"),
                "pageSize",
            )),
        },
    }
}

/// Which files a request may see.
enum Scope {
    /// One shared drive.
    SharedDrive(String),
    /// My Drive, and the shared drives too when `all_drives`.
    Corpus { all_drives: bool },
}

impl Scope {
    fn sees(&self, f: &Stored) -> bool {
        match self {
            Scope::SharedDrive(id) => f.drive_id.as_deref() == Some(id.as_str()),
            Scope::Corpus { all_drives } => f.drive_id.is_none() || *all_drives,
        }
    }
}

fn shared_drive_missing(id: &str) -> Response {
    param_error(
        404,
        "notFound",
        &format!("Shared drive not found: {id}"),
        "driveId",
    )
}

fn scope_of(store: &Store, q: &BTreeMap<String, String>, listing: bool) -> Result<Scope, Early> {
    let all = flag(q, "includeItemsFromAllDrives");
    let corpora = q.get("corpora").map(String::as_str);
    match q.get("driveId") {
        Some(id) => {
            if !all {
                return Err(early(
                    400,
                    "invalid",
                    "The includeItemsFromAllDrives parameter must be set to true when driveId is specified.",
                    "includeItemsFromAllDrives",
                ));
            }
            if listing && corpora != Some("drive") {
                return Err(early(
                    400,
                    "invalid",
                    "The corpora parameter must be set to 'drive' when driveId is specified.",
                    "corpora",
                ));
            }
            if !store.drives.iter().any(|(d, _)| d == id) {
                return Err(Box::new(shared_drive_missing(id)));
            }
            Ok(Scope::SharedDrive(id.clone()))
        }
        None => match corpora {
            Some("drive") => Err(early(
                400,
                "invalid",
                "The driveId parameter must be specified when corpora is 'drive'.",
                "driveId",
            )),
            Some("allDrives") if !all => Err(early(
                400,
                "invalid",
                "The includeItemsFromAllDrives parameter must be set to true when corpora is 'allDrives'.",
                "includeItemsFromAllDrives",
            )),
            _ => Ok(Scope::Corpus { all_drives: all }),
        },
    }
}

/// The whole `File` resource; `fields` picks from it.
fn file_json(f: &Stored) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("drive#file"));
    m.insert("id".into(), json!(f.id));
    m.insert("name".into(), json!(f.name));
    m.insert("mimeType".into(), json!(f.mime));
    m.insert("parents".into(), json!([f.parent]));
    m.insert("trashed".into(), json!(f.trashed));
    m.insert("version".into(), json!(f.version.to_string()));
    m.insert("createdTime".into(), json!(rfc3339(f.created)));
    m.insert("modifiedTime".into(), json!(rfc3339(f.modified)));
    m.insert(
        "webViewLink".into(),
        json!(format!(
            "https://drive.google.com/file/d/{}/view?usp=drivesdk",
            f.id
        )),
    );
    m.insert(
        "capabilities".into(),
        json!({"canEdit": f.can_edit, "canDownload": !f.is_native() && !f.is_folder()}),
    );
    if let Some(d) = &f.drive_id {
        m.insert("driveId".into(), json!(d));
    }
    if !f.is_native() && !f.is_folder() {
        // int64 values are strings in Google's JSON.
        m.insert("size".into(), json!(f.content.len().to_string()));
        m.insert("md5Checksum".into(), json!(f.md5));
        m.insert("sha256Checksum".into(), json!(f.sha256));
    }
    if let Some((w, h)) = f.image {
        let mut meta = json!({"width": w, "height": h});
        if let Some((lat, lon, alt)) = f.location {
            meta["location"] = json!({"latitude": lat, "longitude": lon, "altitude": alt});
        }
        m.insert("imageMediaMetadata".into(), meta);
    }
    if !f.app_properties.is_empty() {
        m.insert("appProperties".into(), json!(f.app_properties));
    }
    Value::Object(m)
}

fn list_fingerprint(q: &BTreeMap<String, String>) -> String {
    let key: Vec<String> = [
        "q",
        "corpora",
        "driveId",
        "includeItemsFromAllDrives",
        "orderBy",
    ]
    .iter()
    .map(|k| format!("{k}={}", q.get(*k).map_or("", String::as_str)))
    .collect();
    hex::encode(&Sha256::digest(key.join("&").as_bytes())[..6])
}

fn list_token(generation: u64, offset: usize, fp: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("~!!~{generation}:{offset}:{fp}"))
}

fn read_list_token(token: &str, generation: u64, fp: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.strip_prefix("~!!~")?.split(':');
    let (g, o, f) = (parts.next()?, parts.next()?, parts.next()?);
    (g.parse::<u64>().ok()? == generation && f == fp).then_some(())?;
    o.parse().ok()
}

/// `files.list`.
async fn list(State(d): State<Drive>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let clauses = match q.get("q").map(|s| query::parse_q(s)).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return param_error(400, "invalid", &format!("Invalid Value: {e}"), "q"),
    };
    let (size, sel) = match (page_size(&d, &q), fields(&q, DEFAULT_LIST_FIELDS)) {
        (Ok(s), Ok(f)) => (s, f),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let store = d.store();
    let scope = match scope_of(&store, &q, true) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let fp = list_fingerprint(&q);
    let offset = match q.get("pageToken") {
        None => 0,
        Some(t) => match read_list_token(t, store.generation, &fp) {
            Some(o) => o,
            None => return invalid_page_token(&d.0.harness).into_response(),
        },
    };
    // Incomplete mode: an allDrives search reaches My Drive and the first shared drive only.
    let incomplete = d.0.config.incomplete_all_drives
        && q.get("corpora").map(String::as_str) == Some("allDrives");
    let first_drive = store.drives.first().map(|(id, _)| id.clone());
    let reached = |f: &Stored| !incomplete || f.drive_id.is_none() || f.drive_id == first_drive;
    let matching: Vec<&Stored> = store
        .files
        .iter()
        .filter(|f| !f.deleted && scope.sees(f) && reached(f) && query::matches(&clauses, f))
        .collect();
    let files: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|f| file_json(f))
        .collect();
    let mut body =
        json!({"kind": "drive#fileList", "incompleteSearch": incomplete, "files": files});
    if offset + size < matching.len() {
        body["nextPageToken"] = json!(list_token(store.generation, offset + size, &fp));
    }
    axum::Json(query::select(&body, &sel)).into_response()
}

/// `files.get`, metadata or (`alt=media`) content.
async fn get_file(
    State(d): State<Drive>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let store = d.store();
    let Some(f) = store.file(&id) else {
        return not_found(&id);
    };
    if f.drive_id.is_some() && !flag(&q, "supportsAllDrives") {
        return not_found(&id);
    }
    if q.get("alt").map(String::as_str) == Some("media") {
        if f.is_native() || f.is_folder() {
            return param_error(
                403,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                "alt",
            );
        }
        if d.0.config.media_redirect {
            return ErrorReply::empty(307)
                .with_header("location", &d.content_location(f))
                .into_response();
        }
        let range = headers.get("range").and_then(|v| v.to_str().ok());
        return media(&f.content, &f.mime, range);
    }
    match fields(&q, DEFAULT_FILE_FIELDS) {
        Ok(sel) => axum::Json(query::select(&file_json(f), &sel)).into_response(),
        Err(r) => *r,
    }
}

/// The bytes, honouring a single `Range` (206, or 416 past the end).
fn media(content: &[u8], mime: &str, range: Option<&str>) -> Response {
    let len = content.len();
    let parsed = range
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .filter(|r| !r.contains(','))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| match (a.trim(), b.trim()) {
            ("", n) => n
                .parse::<usize>()
                .ok()
                .map(|n| (len.saturating_sub(n), len.saturating_sub(1))),
            (a, "") => a.parse::<usize>().ok().map(|a| (a, len.saturating_sub(1))),
            (a, b) => Some((
                a.parse().ok()?,
                b.parse::<usize>().ok()?.min(len.saturating_sub(1)),
            )),
        });
    match parsed {
        Some((start, _)) if start >= len => ErrorReply::empty(416)
            .with_header("content-range", &format!("bytes */{len}"))
            .into_response(),
        Some((start, end)) if start <= end => {
            let body = content.get(start..=end).unwrap_or_default().to_vec();
            (
                axum::http::StatusCode::PARTIAL_CONTENT,
                [
                    ("content-type", mime.to_owned()),
                    ("content-range", format!("bytes {start}-{end}/{len}")),
                    ("accept-ranges", "bytes".to_owned()),
                ],
                body,
            )
                .into_response()
        }
        _ => (
            [
                ("content-type", mime.to_owned()),
                ("accept-ranges", "bytes".to_owned()),
            ],
            content.to_vec(),
        )
            .into_response(),
    }
}

/// `files.update` of `appProperties`.
async fn patch_file(
    State(d): State<Drive>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Params,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&d, &headers, true) {
        return *r;
    }
    let sel = match fields(&q, DEFAULT_FILE_FIELDS) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(&body) else {
        return google_error(
            400,
            "parseError",
            "global",
            "Invalid JSON payload received.",
            "INVALID_ARGUMENT",
        )
        .into_response();
    };
    let mut sent: BTreeMap<String, Option<String>> = BTreeMap::new();
    match update.get("appProperties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(props)) => {
            for (k, v) in props {
                let v = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    _ => {
                        return google_error(
                            400,
                            "badRequest",
                            "global",
                            &format!("Invalid value for appProperties[{k}]: a string or null is expected."),
                            "INVALID_ARGUMENT",
                        )
                        .into_response();
                    }
                };
                if k.is_empty() {
                    return google_error(
                        400,
                        "badRequest",
                        "global",
                        "A property key must not be empty.",
                        "INVALID_ARGUMENT",
                    )
                    .into_response();
                }
                if k.len() + v.as_ref().map_or(0, String::len) > MAX_PROPERTY_BYTES {
                    return d
                        .0
                        .harness
                        .errors
                        .reply(
                            errors::PROPERTY_TOO_LARGE,
                            google_error(
                                400,
                                "badRequest",
                                "global",
                                "The size of the property exceeds the maximum allowed size of 124 bytes.",
                                "INVALID_ARGUMENT",
                            ),
                        )
                        .into_response();
                }
                sent.insert(k.clone(), v);
            }
        }
        Some(_) => {
            return google_error(
                400,
                "badRequest",
                "global",
                "Invalid value for appProperties.",
                "INVALID_ARGUMENT",
            )
            .into_response();
        }
    }
    let now = d.now();
    let mut store = d.store();
    let Some(f) = store.file_mut(&id) else {
        return not_found(&id);
    };
    if f.drive_id.is_some() && !flag(&q, "supportsAllDrives") {
        return not_found(&id);
    }
    if !f.can_edit {
        return d
            .0
            .harness
            .errors
            .reply(
                errors::NOT_EDITABLE,
                google_error(
                    403,
                    "insufficientFilePermissions",
                    "global",
                    "The user does not have sufficient permissions for this file.",
                    "PERMISSION_DENIED",
                ),
            )
            .into_response();
    }
    let mut merged = f.app_properties.clone();
    for (k, v) in &sent {
        match v {
            Some(v) => merged.insert(k.clone(), v.clone()),
            None => merged.remove(k),
        };
    }
    if merged.len() > MAX_APP_PROPERTIES {
        return d
            .0
            .harness
            .errors
            .reply(
                errors::TOO_MANY_PROPERTIES,
                google_error(
                    400,
                    "badRequest",
                    "global",
                    "The limit for the number of properties has been exceeded.",
                    "INVALID_ARGUMENT",
                ),
            )
            .into_response();
    }
    f.app_properties = merged;
    f.version += 1;
    let name = f.name.clone();
    let reply = query::select(&file_json(f), &sel);
    if !sent.is_empty() {
        store.record_change(&id, now);
    }
    drop(store);
    d.record_write(PropertyWrite {
        at: Instant::now(),
        emulated: now,
        file_id: id,
        name,
        sent,
    });
    axum::Json(reply).into_response()
}

/// `changes.getStartPageToken`.
async fn start_page_token(
    State(d): State<Drive>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let store = d.store();
    if let Some(id) = q.get("driveId")
        && !store.drives.iter().any(|(x, _)| x == id)
    {
        return shared_drive_missing(id);
    }
    axum::Json(
        json!({"kind": "drive#startPageToken", "startPageToken": store.next_seq.to_string()}),
    )
    .into_response()
}

/// `changes.list`.
async fn changes(State(d): State<Drive>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let Some(token) = q.get("pageToken") else {
        return param_error(
            400,
            "required",
            "Required parameter: pageToken",
            "pageToken",
        );
    };
    let (size, sel) = match (page_size(&d, &q), fields(&q, DEFAULT_CHANGE_FIELDS)) {
        (Ok(s), Ok(f)) => (s, f),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let store = d.store();
    let scope = match scope_of(&store, &q, false) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let include_removed = q.get("includeRemoved").is_none_or(|v| v == "true");
    let from = match token.parse::<u64>() {
        Ok(n) if n >= store.min_seq && n <= store.next_seq => n,
        _ => return invalid_page_token(&d.0.harness).into_response(),
    };
    // Drive keeps one entry per file: its latest change.
    let mut latest: HashMap<&str, (u64, OffsetDateTime)> = HashMap::new();
    for c in store.changes.iter().filter(|c| c.seq >= from) {
        latest.insert(c.file_id.as_str(), (c.seq, c.time));
    }
    let mut entries: Vec<(u64, OffsetDateTime, &Stored)> = latest
        .into_iter()
        .filter_map(|(id, (seq, time))| {
            let f = store.files.iter().find(|f| f.id == id)?;
            (scope.sees(f) && (include_removed || !f.deleted)).then_some((seq, time, f))
        })
        .collect();
    entries.sort_by_key(|(seq, _, _)| *seq);
    let page: Vec<Value> = entries
        .iter()
        .take(size)
        .map(|(_, time, f)| {
            let mut c = json!({"kind": "drive#change", "changeType": "file", "time": rfc3339(*time),
                "removed": f.deleted, "fileId": f.id});
            if !f.deleted {
                c["file"] = file_json(f);
            }
            c
        })
        .collect();
    let mut body = json!({"kind": "drive#changeList", "changes": page});
    match entries.get(size) {
        Some((seq, _, _)) => body["nextPageToken"] = json!(seq.to_string()),
        None => body["newStartPageToken"] = json!(store.next_seq.to_string()),
    }
    axum::Json(query::select(&body, &sel)).into_response()
}

/// `drives.list`: the shared drives the account is a member of.
async fn list_drives(State(d): State<Drive>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let size = match q.get("pageSize").map(|s| s.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return param_error(
                400,
                "invalid",
                "Invalid value for pageSize: must be between 1 and 100.",
                "pageSize",
            );
        }
    };
    let sel = match fields(&q, "kind,nextPageToken,drives(kind,id,name)") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let store = d.store();
    let offset = match q.get("pageToken") {
        None => 0,
        Some(t) => match read_list_token(t, store.generation, "drives") {
            Some(o) => o,
            None => return invalid_page_token(&d.0.harness).into_response(),
        },
    };
    let drives: Vec<Value> = store
        .drives
        .iter()
        .skip(offset)
        .take(size)
        .map(|(id, name)| json!({"kind": "drive#drive", "id": id, "name": name}))
        .collect();
    let mut body = json!({"kind": "drive#driveList", "drives": drives});
    if offset + size < store.drives.len() {
        body["nextPageToken"] = json!(list_token(store.generation, offset + size, "drives"));
    }
    axum::Json(query::select(&body, &sel)).into_response()
}

/// `drives.get`.
async fn get_drive(State(d): State<Drive>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&d, &headers, false) {
        return *r;
    }
    let store = d.store();
    match store.drives.iter().find(|(x, _)| *x == id) {
        Some((id, name)) => {
            axum::Json(json!({"kind": "drive#drive", "id": id, "name": name})).into_response()
        }
        None => shared_drive_missing(&id),
    }
}
