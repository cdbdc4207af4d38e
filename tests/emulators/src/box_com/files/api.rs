//! The Box content API handlers: folders and their items, files, content redirects, the event
//! stream, metadata instances and templates, and the download host.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::faults::{BoxFault, Route};
use super::model::{Fields, Instance, rfc3339};
use super::{BoxFiles, MetadataWrite, Ticket, errors, lock};
use crate::box_com::errors::API_UNAUTHORIZED;
use crate::common::tokens::random_token;
use crate::common::{ErrorReply, reply};

const HELP_URL: &str = "http://developers.box.com/docs/#errors";

/// Box's error object (reference §6.5).
pub(crate) fn box_error(status: u16, code: &str, message: &str) -> ErrorReply {
    ErrorReply::json(
        status,
        json!({
            "type": "error",
            "status": status,
            "code": code,
            "help_url": HELP_URL,
            "message": message,
            "request_id": random_token("", 14).to_ascii_lowercase(),
        }),
    )
}

fn not_found(name: &str, value: &str) -> ErrorReply {
    let mut r = box_error(404, "not_found", "Not Found");
    if let crate::common::ReplyBody::Json(body) = &mut r.body {
        body["context_info"] = json!({"errors": [{
            "reason": "invalid_parameter",
            "name": name,
            "message": format!("Invalid value '{value}'. '{name}' with value '{value}' not found"),
        }]});
    }
    r
}

pub(crate) fn fault_reply(fault: &BoxFault) -> ErrorReply {
    match fault {
        BoxFault::Throttle { retry_after_secs } => box_error(
            429,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
        )
        .with_header("retry-after", &retry_after_secs.to_string()),
        BoxFault::Unavailable { retry_after_secs } => box_error(503, "unavailable", "Unavailable")
            .with_header("retry-after", &retry_after_secs.to_string()),
        BoxFault::ExpiredToken => unauthorized_reply(),
        BoxFault::ServerError(s) => box_error(*s, "internal_server_error", "Internal Server Error"),
        BoxFault::NotReady { retry_after_secs } => {
            ErrorReply::empty(202).with_header("retry-after", &retry_after_secs.to_string())
        }
        BoxFault::Reply(r) => r.clone(),
        BoxFault::Slow(_) | BoxFault::Malformed | BoxFault::Truncated => {
            box_error(500, "internal_server_error", "Internal Server Error")
        }
    }
}

fn unauthorized_reply() -> ErrorReply {
    ErrorReply::empty(401).with_header(
        "www-authenticate",
        "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\"",
    )
}

pub(crate) fn classify(method: &str, path: &str) -> Route {
    if path == crate::box_com::TOKEN_PATH {
        return Route::Token;
    }
    let Some(rest) = path.strip_prefix("/2.0/") else {
        return Route::Other;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["users", "me"] => Route::Me,
        ["folders", _] => Route::Folder,
        ["folders", _, "items"] => Route::Items,
        ["files", _] => Route::File,
        ["files", _, "content"] if method.eq_ignore_ascii_case("GET") => Route::Content,
        ["files", _, "metadata", ..] => Route::Metadata,
        ["events"] => Route::Events,
        ["metadata_templates", ..] => Route::Templates,
        _ => Route::Other,
    }
}

pub(crate) fn retry_key(
    files: &BoxFiles,
    route: Route,
    method: &str,
    path: &str,
    query: &str,
) -> String {
    match route {
        Route::Content => {
            let id = path.split('/').nth(3).unwrap_or_default();
            format!("file:{id}")
        }
        Route::Download => {
            let ticket = path.split('/').nth(3).unwrap_or_default();
            match lock(&files.0.tickets).get(ticket) {
                Some(t) => format!("file:{}", t.file_id),
                None => format!("download:{ticket}"),
            }
        }
        _ => format!("{method} {path}?{query}"),
    }
}

fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn json_reply(status: u16, body: Value) -> Response {
    ErrorReply::json(status, body).into_response()
}

/// Every `/2.0/...` request.
pub(crate) async fn entry(
    State(files): State<BoxFiles>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = crate::common::bearer(&headers, false).unwrap_or_default();
    if files.0.tokens.check_access(&token, files.now()).is_err() {
        return reply(
            &files.0.harness,
            Some(API_UNAUTHORIZED),
            unauthorized_reply(),
        );
    }
    let q = query_map(&uri);
    let rest = uri.path().trim_start_matches("/2.0/").to_owned();
    let parts: Vec<&str> = rest.split('/').collect();
    let h = &files.0.harness;
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["folders", id]) => folder(&files, id, &q),
        ("GET", ["folders", id, "items"]) => items(&files, id, &q),
        ("GET", ["files", id]) => {
            let e = files.enterprise();
            match e.files.get(*id).filter(|f| !f.trashed) {
                Some(_) => json_reply(200, e.file_json(id, &Fields::parse(q.get("fields")))),
                None => not_found("item", id).into_response(),
            }
        }
        ("GET", ["files", id, "content"]) => content(&files, id),
        ("GET", ["events"]) => events(&files, &q),
        ("OPTIONS", ["events"]) => json_reply(
            200,
            json!({"chunk_size": 1, "entries": [{
                "type": "realtime_server",
                "url": format!("{}2.0/events/poll?channel=cc807c9c4869ffb1c81a&stream_type=all", files.0.download_base),
                "ttl": "10", "max_retries": "10", "retry_timeout": 610
            }]}),
        ),
        ("GET", ["metadata_templates", scope, key, "schema"]) => {
            let e = files.enterprise();
            match (scope_ok(scope), e.template(key)) {
                (Some(s), Some(t)) => json_reply(200, t.render(&s)),
                _ => reply(
                    h,
                    Some(errors::TEMPLATE_NOT_FOUND),
                    box_error(404, "not_found", "Specified Metadata Template not found"),
                ),
            }
        }
        (m, ["files", id, "metadata", scope, key]) => {
            metadata(&files, m, id, scope, key, &headers, &body)
        }
        _ => box_error(404, "not_found", "Not Found").into_response(),
    }
}

/// `enterprise` or `enterprise_{id}` → the canonical `enterprise_{id}`.
fn scope_ok(scope: &str) -> Option<String> {
    let id = crate::box_com::fixtures::ENTERPRISE_ID;
    let canonical = format!("enterprise_{id}");
    (scope == "enterprise" || scope == canonical).then_some(canonical)
}

fn visible_folder(files: &BoxFiles, id: &str) -> bool {
    files
        .enterprise()
        .folders
        .get(id)
        .is_some_and(|f| !f.hidden && !f.trashed)
}

fn folder(files: &BoxFiles, id: &str, q: &BTreeMap<String, String>) -> Response {
    if !visible_folder(files, id) {
        return not_found("folder", &format!("d_{id}")).into_response();
    }
    let e = files.enterprise();
    let mut v = e.folder_json(id, true);
    if let Fields::Only(list) = Fields::parse(q.get("fields"))
        && let Some(obj) = v.as_object_mut()
    {
        obj.retain(|k, _| k == "type" || k == "id" || k == "etag" || list.iter().any(|f| f == k));
    }
    json_reply(200, v)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    f: String,
    i: usize,
    g: u64,
}

fn bad_limit(value: &str) -> Response {
    box_error(
        400,
        "bad_request",
        &format!("Invalid value '{value}' for query parameter 'limit'"),
    )
    .into_response()
}

fn items(files: &BoxFiles, id: &str, q: &BTreeMap<String, String>) -> Response {
    if !visible_folder(files, id) {
        return not_found("folder", &format!("d_{id}")).into_response();
    }
    let cfg = &files.0.config;
    let limit = match q.get("limit") {
        None => cfg.default_limit,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(cfg.max_limit),
            _ => return bad_limit(l),
        },
    };
    let fields = Fields::parse(q.get("fields"));
    let h = &files.0.harness;
    let marker_mode = q.get("usemarker").is_some_and(|v| v == "true");
    let start = if marker_mode {
        match q.get("marker").filter(|m| !m.is_empty()) {
            None => 0,
            Some(m) => {
                if std::mem::take(&mut *lock(&files.0.invalidate_next_marker)) {
                    *lock(&files.0.marker_generation) += 1;
                }
                let generation = *lock(&files.0.marker_generation);
                let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(m)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
                    .filter(|mk| mk.f == id && mk.g == generation);
                match decoded {
                    Some(mk) => mk.i,
                    None => {
                        return reply(
                            h,
                            Some(errors::MARKER_EXPIRED),
                            box_error(400, "invalid_parameter", "Invalid value for 'marker'"),
                        );
                    }
                }
            }
        }
    } else {
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        if offset > 9_999 {
            return reply(
                h,
                Some(errors::OFFSET_TOO_LARGE),
                box_error(
                    400,
                    "bad_request",
                    "offset must be less than 10000; use marker-based paging",
                ),
            );
        }
        offset
    };
    let e = files.enterprise();
    let children = e.children(id);
    let entries: Vec<Value> = children
        .iter()
        .skip(start)
        .take(limit)
        .map(|(is_dir, cid)| {
            if *is_dir {
                e.folder_entry(cid, &fields)
            } else {
                e.file_json(cid, &fields)
            }
        })
        .collect();
    let end = start + entries.len();
    if marker_mode {
        let next = if end < children.len() {
            let mk = Marker {
                f: id.to_owned(),
                i: end,
                g: *lock(&files.0.marker_generation),
            };
            json!(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&mk).unwrap_or_default())
            )
        } else {
            // Box sends an empty marker (or null) on the last page.
            json!("")
        };
        json_reply(
            200,
            json!({"entries": entries, "limit": limit, "next_marker": next, "prev_marker": null}),
        )
    } else {
        json_reply(
            200,
            json!({
                "total_count": children.len(),
                "entries": entries,
                "offset": start,
                "limit": limit,
                "order": [{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}],
            }),
        )
    }
}

fn content(files: &BoxFiles, id: &str) -> Response {
    let e = files.enterprise();
    let Some(f) = e.files.get(id).filter(|f| !f.trashed) else {
        return not_found("item", id).into_response();
    };
    if let Some(secs) = lock(&files.0.content_pending).get(&f.id).copied() {
        return ErrorReply::empty(202)
            .with_header("retry-after", &secs.to_string())
            .into_response();
    }
    let ticket = random_token("", 40);
    lock(&files.0.tickets).insert(
        ticket.clone(),
        Ticket {
            file_id: f.id.clone(),
            content: f.content.clone(),
            expires_at: files.now() + files.0.config.download_url_ttl,
        },
    );
    let location = format!(
        "{}/d/1/{ticket}/download",
        files.0.download_base.as_str().trim_end_matches('/')
    );
    ErrorReply::empty(302)
        .with_header("location", &location)
        .into_response()
}

fn events(files: &BoxFiles, q: &BTreeMap<String, String>) -> Response {
    let h = &files.0.harness;
    let e = files.enterprise();
    let oldest = *lock(&files.0.oldest_position);
    // After `expire_stream_positions`, the head moves past every position issued before.
    let top = e.head().max(oldest);
    let position = q.get("stream_position").map(String::as_str).unwrap_or("0");
    if position == "now" {
        return json_reply(
            200,
            json!({"chunk_size": 0, "next_stream_position": top, "entries": []}),
        );
    }
    let Ok(position) = position.parse::<u64>() else {
        return box_error(
            400,
            "invalid_parameter",
            "Invalid value for 'stream_position'",
        )
        .into_response();
    };
    let cfg = &files.0.config;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(cfg.max_events_limit),
            _ => return bad_limit(l),
        },
    };
    if position != 0 && (position < oldest || position > top) {
        return reply(
            h,
            Some(errors::STREAM_POSITION_EXPIRED),
            box_error(
                400,
                "invalid_parameter",
                "Invalid value for 'stream_position'",
            ),
        );
    }
    let first_read = lock(&files.0.positions_read).insert(position);
    let mut picked: Vec<&super::model::Event> = Vec::new();
    if cfg.redeliver_events && first_read {
        picked.extend(e.events.iter().filter(|ev| ev.position == position));
    }
    picked.extend(
        e.events
            .iter()
            .filter(|ev| ev.position > position)
            .take(limit.saturating_sub(picked.len()).max(1)),
    );
    let next = picked
        .last()
        .map_or(position.max(oldest), |ev| ev.position.max(position));
    let entries: Vec<Value> = picked
        .iter()
        .map(|ev| {
            json!({
                "type": "event",
                "event_id": ev.event_id,
                "event_type": ev.event_type,
                "created_at": rfc3339(ev.created_at),
                "recorded_at": rfc3339(ev.created_at),
                "session_id": null,
                "created_by": {"type": "user", "id": crate::box_com::fixtures::USER_ID, "name": "Field Inspector", "login": "inspector@proofpix.example"},
                "source": ev.source,
            })
        })
        .collect();
    json_reply(
        200,
        json!({"chunk_size": entries.len(), "next_stream_position": next, "entries": entries}),
    )
}

fn metadata(
    files: &BoxFiles,
    method: &str,
    id: &str,
    scope: &str,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let h = &files.0.harness;
    let Some(scope) = scope_ok(scope) else {
        return reply(
            h,
            Some(errors::TEMPLATE_NOT_FOUND),
            box_error(404, "not_found", "Specified Metadata Template not found"),
        );
    };
    let now = files.now();
    let metadata_events = files.0.config.metadata_events;
    let read_only = *lock(&files.0.read_only);
    let mut e = files.enterprise();
    let Some(template) = e.template(key).cloned() else {
        return reply(
            h,
            Some(errors::TEMPLATE_NOT_FOUND),
            box_error(404, "not_found", "Specified Metadata Template not found"),
        );
    };
    if e.files.get(id).is_none_or(|f| f.trashed) {
        return not_found("item", id).into_response();
    }
    let denied = || {
        reply(
            h,
            Some(errors::ACCESS_DENIED),
            box_error(
                403,
                "access_denied_insufficient_permissions",
                "Access denied - insufficient permission",
            ),
        )
    };
    let invalid = |what: String| {
        reply(
            h,
            Some(errors::SCHEMA_VALIDATION_FAILED),
            box_error(400, "schema_validation_failed", &what),
        )
    };
    let check = |fields: &Map<String, Value>| -> Result<(), String> {
        for (k, v) in fields {
            match template.fields.iter().find(|f| &f.key == k) {
                None => {
                    return Err(format!(
                        "Unknown field '{k}' for template '{}'",
                        template.key
                    ));
                }
                Some(f) if !f.kind.accepts(v) => {
                    return Err(format!("Invalid value for field '{k}': {v}"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    };
    let render = |file_id: &str, inst: &Instance| -> Value {
        let mut v = json!({
            "$id": inst.id,
            "$type": format!("{}-{:04x}", key, super::model::fnv(key) & 0xffff),
            "$parent": format!("file_{file_id}"),
            "$scope": scope,
            "$template": key,
            "$version": inst.version,
            "$typeVersion": 2,
            "$canEdit": true,
        });
        for (k, val) in &inst.fields {
            v[k] = val.clone();
        }
        v
    };
    let event_source = |e: &super::model::Enterprise| e.file_json(id, &Fields::All);
    match method {
        "GET" => match e.files.get(id).and_then(|f| f.metadata.get(key)) {
            Some(inst) => json_reply(200, render(id, inst)),
            None => reply(
                h,
                Some(errors::INSTANCE_NOT_FOUND),
                box_error(404, "instance_not_found", "Instance not found"),
            ),
        },
        "DELETE" => {
            if read_only {
                return denied();
            }
            match e.files.get_mut(id).and_then(|f| f.metadata.remove(key)) {
                Some(_) => ErrorReply::empty(204).into_response(),
                None => reply(
                    h,
                    Some(errors::INSTANCE_NOT_FOUND),
                    box_error(404, "instance_not_found", "Instance not found"),
                ),
            }
        }
        "POST" => {
            if read_only {
                return denied();
            }
            let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
                return box_error(400, "bad_request", "Could not parse JSON body").into_response();
            };
            if let Err(m) = check(&fields) {
                return invalid(m);
            }
            let Some(file) = e.files.get_mut(id) else {
                return not_found("item", id).into_response();
            };
            if file.metadata.contains_key(key) {
                return box_error(
                    409,
                    "tuple_already_exists",
                    "A resource with this value already exists",
                )
                .into_response();
            }
            let inst = Instance {
                id: format!(
                    "{:08x}-1b2c-4d3e-8f40-{:012x}",
                    super::model::fnv(id) as u32,
                    super::model::fnv(key) & 0xffff_ffff_ffff
                ),
                version: 0,
                fields: fields.clone(),
            };
            let out = render(id, &inst);
            let name = file.name.clone();
            file.metadata.insert(key.to_owned(), inst);
            if metadata_events {
                let src = event_source(&e);
                e.push_event("METADATA_INSTANCE_CREATE", src, now);
            }
            lock(&files.0.writes).push(MetadataWrite {
                at: std::time::Instant::now(),
                file_id: id.to_owned(),
                name,
                template: key.to_owned(),
                method: "POST".into(),
                fields,
            });
            json_reply(201, out)
        }
        "PUT" => {
            if read_only {
                return denied();
            }
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !ct.starts_with("application/json-patch+json") {
                return box_error(
                    400,
                    "bad_request",
                    "Content-Type must be application/json-patch+json",
                )
                .into_response();
            }
            let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) else {
                return box_error(400, "bad_request", "Could not parse JSON body").into_response();
            };
            let Some(file) = e.files.get_mut(id) else {
                return not_found("item", id).into_response();
            };
            let Some(inst) = file.metadata.get(key).cloned() else {
                return reply(
                    h,
                    Some(errors::INSTANCE_NOT_FOUND),
                    box_error(404, "instance_not_found", "Instance not found"),
                );
            };
            let mut fields = inst.fields.clone();
            for op in &ops {
                let path = op["path"].as_str().unwrap_or_default();
                let Some(field) = path
                    .strip_prefix('/')
                    .filter(|f| !f.is_empty() && !f.contains('/'))
                else {
                    return invalid(format!("Invalid path '{path}'"));
                };
                match op["op"].as_str() {
                    Some("add") => {
                        fields.insert(field.to_owned(), op["value"].clone());
                    }
                    Some("replace") => {
                        if !fields.contains_key(field) {
                            return invalid(format!("Cannot replace missing field '{field}'"));
                        }
                        fields.insert(field.to_owned(), op["value"].clone());
                    }
                    Some("remove") => {
                        fields.remove(field);
                    }
                    Some("test") => {
                        if fields.get(field) != Some(&op["value"]) {
                            return box_error(409, "conflict", "Test operation failed")
                                .into_response();
                        }
                    }
                    other => {
                        return invalid(format!("Unsupported operation {other:?}"));
                    }
                }
            }
            if let Err(m) = check(&fields) {
                return invalid(m);
            }
            let updated = Instance {
                id: inst.id.clone(),
                version: inst.version + 1,
                fields: fields.clone(),
            };
            let out = render(id, &updated);
            let name = file.name.clone();
            file.metadata.insert(key.to_owned(), updated);
            if metadata_events {
                let src = event_source(&e);
                e.push_event("METADATA_INSTANCE_UPDATE", src, now);
            }
            lock(&files.0.writes).push(MetadataWrite {
                at: std::time::Instant::now(),
                file_id: id.to_owned(),
                name,
                template: key.to_owned(),
                method: "PUT".into(),
                fields,
            });
            json_reply(200, out)
        }
        _ => box_error(405, "method_not_allowed", "Method Not Allowed").into_response(),
    }
}

/// The download host: `/d/1/{ticket}/download`, no `Authorization` needed, `Range` honoured.
pub(crate) async fn download(
    State(files): State<BoxFiles>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = lock(&files.0.tickets).get(&ticket).cloned();
    let denied = || {
        files
            .0
            .harness
            .errors
            .reply(
                errors::DOWNLOAD_EXPIRED,
                ErrorReply::text(403, "This download link has expired or is invalid"),
            )
            .into_response()
    };
    let Some(t) = found else {
        return denied();
    };
    if files.now() >= t.expires_at {
        return denied();
    }
    let total = t.content.len() as u64;
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .filter(|_| files.0.config.honour_range)
        .and_then(|r| parse_range(r, total));
    let base = |status: u16| {
        ErrorReply::empty(status)
            .with_header("accept-ranges", "bytes")
            .with_header("content-type", "application/octet-stream")
    };
    match range {
        None => {
            let mut r = base(200).into_response();
            *r.body_mut() = axum::body::Body::from(t.content.to_vec());
            r
        }
        Some(Err(())) => base(416)
            .with_header("content-range", &format!("bytes */{total}"))
            .into_response(),
        Some(Ok((start, end))) => {
            let slice = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .and_then(|(s, e)| t.content.get(s..=e))
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mut r = base(206)
                .with_header("content-range", &format!("bytes {start}-{end}/{total}"))
                .into_response();
            *r.body_mut() = axum::body::Body::from(slice);
            r
        }
    }
}

/// One byte range against `total` bytes: `Ok((first, last))` inclusive, `Err(())` when
/// unsatisfiable, `None` when not a single byte range (the whole body is sent).
pub(crate) fn parse_range(header: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || total == 0 {
            return Some(Err(()));
        }
        return Some(Ok((total.saturating_sub(n), total - 1)));
    }
    let start: u64 = a.parse().ok()?;
    if start >= total {
        return Some(Err(()));
    }
    let end = if b.is_empty() {
        total - 1
    } else {
        b.parse::<u64>().ok()?.min(total - 1)
    };
    (end >= start).then_some(Ok((start, end)))
}
