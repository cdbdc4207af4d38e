//! The Graph API itself: one dispatcher that both the HTTP entry point and `$batch` sub-requests
//! go through, so a sub-request behaves exactly like the same request sent alone (auth,
//! permissions, validation, side effects).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::faults::{Exchange, GraphFault, Route, Server};
use super::model::{ColumnKind, Drive, Item, Render, Site, encode_path, rfc3339};
use super::{BatchOrder, ColumnWrite, ContentUpload, ExchangeNumber, Graph, Ticket, errors};
use crate::common::{AccessProblem, ErrorReply, ReplyBody};
use crate::microsoft::fixtures::GRAPH_DEFAULT_SCOPE;

/// A Graph reply before it becomes HTTP (or a `$batch` sub-response).
#[derive(Debug)]
pub(crate) struct ApiReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl ApiReply {
    fn ok(body: Value) -> Self {
        ApiReply {
            status: 200,
            headers: vec![],
            body: Some(body),
        }
    }

    fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn from_error_reply(r: ErrorReply) -> Self {
        let body = match r.body {
            ReplyBody::Empty => None,
            ReplyBody::Json(v) => Some(v),
            ReplyBody::Text(t) => Some(Value::String(t)),
        };
        ApiReply {
            status: r.status,
            headers: r.headers,
            body,
        }
    }

    fn into_error_reply(self) -> ErrorReply {
        ErrorReply {
            status: self.status,
            headers: self.headers,
            body: match self.body {
                None => ReplyBody::Empty,
                Some(Value::String(s)) => ReplyBody::Text(s),
                Some(v) => ReplyBody::Json(v),
            },
        }
    }
}

impl IntoResponse for ApiReply {
    fn into_response(self) -> Response {
        self.into_error_reply().into_response()
    }
}

/// A Graph request, from HTTP or from a `$batch`.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a str,
    /// Path after `/v1.0`, percent-decoded.
    pub path: &'a str,
    pub query: BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub authorization: Option<&'a str>,
    pub number: u64,
    pub via_batch: bool,
}

impl ApiRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The HTTP entry point for `/v1.0/{*rest}`.
pub(crate) async fn entry(
    State(g): State<Graph>,
    number: Option<Extension<ExchangeNumber>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = percent_decode(uri.path().strip_prefix("/v1.0").unwrap_or(uri.path()));
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let authorization = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    let req = ApiRequest {
        method: method.as_str(),
        path: &path,
        query: parse_query(uri.query().unwrap_or_default()),
        headers: headers.clone(),
        body: &body,
        authorization: authorization.as_deref(),
        number: number.map_or(0, |n| n.0.0),
        via_batch: false,
    };
    dispatch(&g, &req).into_response()
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ----- errors -------------------------------------------------------------------------------

/// Graph's error body `{"error":{"code","message","innerError":{...}}}` (reference §2.5).
pub(crate) fn graph_error(
    g: &Graph,
    status: u16,
    code: &str,
    message: &str,
    inner: Option<&str>,
    situation: Option<&str>,
) -> ApiReply {
    let now = g.now();
    let mut inner_error = json!({
        "date": rfc3339(now),
        "request-id": request_id(g),
        "client-request-id": request_id(g),
    });
    if let (Some(code), Some(o)) = (inner, inner_error.as_object_mut()) {
        o.insert("code".into(), json!(code));
    }
    let default = ErrorReply::json(
        status,
        json!({"error": {"code": code, "message": message, "innerError": inner_error}}),
    );
    let reply = match situation {
        Some(key) => g.0.harness.errors.reply(key, default),
        None => default,
    };
    ApiReply::from_error_reply(reply)
}

/// A request id in GUID shape. A counter, not the tenant's id generator, so that error replies
/// never need the tenant lock (handlers may hold it).
fn request_id(_g: &Graph) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n as u32,
        (n >> 32) as u16,
        n % 0xfff,
        (n >> 12) % 0xfff,
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xffff_ffff_ffff
    )
}

fn not_found(g: &Graph) -> ApiReply {
    graph_error(
        g,
        404,
        "itemNotFound",
        "The resource could not be found.",
        None,
        Some(errors::ITEM_NOT_FOUND),
    )
}

fn access_denied(g: &Graph) -> ApiReply {
    graph_error(
        g,
        403,
        "accessDenied",
        "Access denied",
        None,
        Some(errors::ACCESS_DENIED),
    )
}

fn bad_request(g: &Graph, message: &str) -> ApiReply {
    graph_error(g, 400, "invalidRequest", message, None, None)
}

fn method_not_allowed(g: &Graph) -> ApiReply {
    graph_error(
        g,
        405,
        "BadRequest",
        "The HTTP method is not supported for this resource.",
        None,
        None,
    )
}

pub(crate) fn expired_token(g: &Graph, message: &str) -> ApiReply {
    graph_error(g, 401, "InvalidAuthenticationToken", message, None, None).with_header(
        "www-authenticate",
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
    )
}

/// The reply for an injected fault; `None` for faults that change a real reply instead.
pub(crate) fn fault_reply(
    g: &Graph,
    fault: &GraphFault,
    route: Route,
    path: &str,
    query: &str,
) -> Option<ApiReply> {
    Some(match fault {
        GraphFault::Throttle {
            status,
            retry_after_secs,
        } => {
            let ra = retry_after_secs.to_string();
            let mut r = if *status == 429 {
                let mut r = graph_error(
                    g,
                    429,
                    "activityLimitReached",
                    "The request has been throttled",
                    Some("throttledRequest"),
                    None,
                );
                if let Some(inner) = r
                    .body
                    .as_mut()
                    .and_then(|b| b.pointer_mut("/error/innerError"))
                    .and_then(Value::as_object_mut)
                {
                    inner.insert("innerError".into(), json!({"code": "quota"}));
                }
                r
            } else {
                graph_error(
                    g,
                    *status,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please retry after the time given in Retry-After.",
                    None,
                    None,
                )
            };
            r.headers.push(("retry-after".into(), ra));
            r.headers.push(("ratelimit-limit".into(), "1200".into()));
            r.headers.push(("ratelimit-remaining".into(), "0".into()));
            r.headers
                .push(("ratelimit-reset".into(), retry_after_secs.to_string()));
            r
        }
        GraphFault::ExpiredToken => {
            expired_token(g, "Access token has expired or is not yet valid.")
        }
        GraphFault::ServerError(status) => {
            let (code, message) = match status {
                503 => (
                    "serviceNotAvailable",
                    "The service is temporarily unavailable.",
                ),
                504 => ("gatewayTimeout", "The gateway timed out."),
                _ => ("generalException", "An unspecified error has occurred."),
            };
            graph_error(g, *status, code, message, None, None)
        }
        GraphFault::Malformed => ApiReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(Value::String(
                "{\"value\":[{\"id\":\"01BROKEN\",\"name\":".into(),
            )),
        },
        GraphFault::ResyncRequired if route == Route::Delta => {
            let drive = path
                .strip_prefix("/v1.0/drives/")
                .and_then(|r| r.split('/').next())
                .unwrap_or_default();
            let previous = delta_token_of(path, query);
            resync(g, drive, previous.as_ref())
        }
        GraphFault::ResyncRequired => {
            graph_error(g, 410, "resyncRequired", "Resync required.", None, None)
        }
        GraphFault::Reply(r) => ApiReply::from_error_reply(r.clone()),
        GraphFault::Slow(_) | GraphFault::Truncated => return None,
    })
}

// ----- classification ---------------------------------------------------------------------

/// The route class of a path on the Graph server.
pub(crate) fn classify(method: &str, path: &str) -> Route {
    if path.ends_with("/oauth2/v2.0/token") {
        return Route::Token;
    }
    let Some(rest) = path.strip_prefix("/v1.0/") else {
        return Route::Other;
    };
    let rest = percent_decode(rest);
    if rest == "$batch" {
        return Route::Batch;
    }
    if rest.ends_with("/fields") {
        return Route::Fields;
    }
    if rest.ends_with("/columns") {
        return Route::Columns;
    }
    if rest.ends_with("/children") {
        return Route::Children;
    }
    if rest.ends_with("/content") {
        return if method.eq_ignore_ascii_case("PUT") {
            Route::Upload
        } else {
            Route::Content
        };
    }
    if rest.starts_with("drives/") && rest.contains("/root/delta") {
        return Route::Delta;
    }
    if rest.starts_with("drives/") && rest.contains("/items/") {
        return Route::Item;
    }
    if rest.starts_with("drives/")
        || rest.ends_with("/drives")
        || rest.ends_with("/drive")
        || rest.ends_with("/list")
    {
        return Route::Drives;
    }
    if rest.starts_with("sites") {
        return Route::Sites;
    }
    Route::Other
}

/// What makes two requests "the same" for retries (see [`Exchange::key`]).
pub(crate) fn retry_key(
    g: &Graph,
    route: Route,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> String {
    match route {
        Route::Content | Route::Upload => {
            let parts: Vec<&str> = path.split('/').collect();
            // /v1.0/drives/{d}/items/{i}/content
            let kind = if route == Route::Upload {
                "upload"
            } else {
                "item"
            };
            match (parts.get(3), parts.get(5)) {
                (Some(d), Some(i)) => format!("{kind}:{d}/{i}"),
                _ => format!("{method} {path}"),
            }
        }
        Route::Download => {
            let q = parse_query(query);
            let ticket = q
                .get("tempauth")
                .and_then(|t| g.0.tickets.lock().ok().and_then(|m| m.get(t).cloned()));
            match ticket {
                Some(t) => format!("item:{}/{}", t.drive_id, t.item_id),
                None => format!(
                    "download:{}",
                    q.get("UniqueId").cloned().unwrap_or_default()
                ),
            }
        }
        Route::Batch => format!("batch:{}", hex::encode(&Sha256::digest(body)[..8])),
        _ => format!("{method} {path}?{query}"),
    }
}

/// Whether a delta request continues a pagination (a nextLink), as opposed to a first page or
/// a deltaLink.
pub(crate) fn is_continuation(path: &str, query: &str) -> bool {
    delta_token_of(path, query).is_some_and(|t| t.after > t.from)
}

// ----- delta tokens -----------------------------------------------------------------------

/// What a delta token stands for. Opaque to clients (base64url JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeltaToken {
    #[serde(rename = "d")]
    pub drive: String,
    /// Changes after this sequence number (0 = enumerate everything).
    #[serde(rename = "f")]
    pub from: u64,
    /// Snapshot this round reads up to; fixed at the round's first page.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<u64>,
    /// Last sequence number returned in this round.
    #[serde(rename = "a", default)]
    pub after: u64,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub top: Option<usize>,
    #[serde(rename = "sel", default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// Generation; [`super::Graph::expire_delta_tokens`] makes older ones unknown.
    #[serde(rename = "g")]
    pub generation: u64,
}

impl DeltaToken {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Option<Self> {
        let s = s.trim_matches('\'');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The token of a delta URL: `delta(token='x')`, `delta(token=x)` or `delta?token=x`.
pub(crate) fn delta_token_of(path: &str, query: &str) -> Option<DeltaToken> {
    let path = percent_decode(path);
    if let Some(start) = path.find("delta(token=") {
        let inner = path.get(start + "delta(token=".len()..)?;
        let inner = inner.strip_suffix(')').unwrap_or(inner);
        return DeltaToken::decode(inner);
    }
    parse_query(query)
        .get("token")
        .and_then(|t| DeltaToken::decode(t))
}

fn delta_link(g: &Graph, token: &DeltaToken) -> String {
    format!(
        "{}v1.0/drives/{}/root/delta(token='{}')",
        g.0.api_base,
        token.drive,
        token.encode()
    )
}

/// 410 with a `Location` that restarts enumeration of `drive`.
fn resync(g: &Graph, drive: &str, previous: Option<&DeltaToken>) -> ApiReply {
    let fresh = DeltaToken {
        drive: drive.to_owned(),
        from: 0,
        snapshot: None,
        after: 0,
        top: previous.and_then(|p| p.top),
        select: previous.and_then(|p| p.select.clone()),
        generation: g.0.delta_generation.load(Ordering::SeqCst),
    };
    let location = delta_link(g, &fresh);
    graph_error(
        g,
        410,
        "resyncRequired",
        "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd. Upload any local changes that the server doesn't know about.",
        Some("resyncChangesApplyDifferences"),
        Some(errors::RESYNC_REQUIRED),
    )
    .with_header("location", &location)
}

// ----- dispatch ---------------------------------------------------------------------------

fn authorize(g: &Graph, authorization: Option<&str>) -> Result<(), ApiReply> {
    let token = authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    if token.is_empty() {
        return Err(expired_token(g, "Access token is empty."));
    }
    match g.0.tokens.check_access(token, g.now()) {
        Ok(grant) if grant.scope == GRAPH_DEFAULT_SCOPE => Ok(()),
        Ok(_) => Err(expired_token(g, "Invalid audience.")),
        Err(AccessProblem::Expired) => Err(expired_token(
            g,
            "Access token has expired or is not yet valid.",
        )),
        Err(_) => Err(expired_token(g, "Access token validation failure.")),
    }
}

pub(crate) fn dispatch(g: &Graph, req: &ApiRequest<'_>) -> ApiReply {
    if let Err(reply) = authorize(g, req.authorization) {
        return reply;
    }
    let path = req.path.trim_start_matches('/');
    if path == "$batch" {
        if req.via_batch {
            return bad_request(g, "A batch request cannot contain another batch.");
        }
        return if req.method == "POST" {
            batch(g, req)
        } else {
            method_not_allowed(g)
        };
    }
    if let Some(rest) = path.strip_prefix("sites/") {
        return sites(g, req, rest);
    }
    if let Some(rest) = path.strip_prefix("drives/") {
        return drives(g, req, rest);
    }
    let segment = path.split('/').next().unwrap_or_default();
    graph_error(
        g,
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
        None,
        None,
    )
}

fn reading(req: &ApiRequest<'_>) -> bool {
    req.method == "GET"
}

/// Checks the app's permission on a site.
fn permitted(g: &Graph, site: &Site, write: bool) -> Result<(), ApiReply> {
    if g.permission().allows(&site.key(), write) {
        Ok(())
    } else {
        Err(access_denied(g))
    }
}

fn sites(g: &Graph, req: &ApiRequest<'_>, rest: &str) -> ApiReply {
    let t = g.tenant();
    // Path addressing: {hostname}:/sites/{path}[:/tail]
    let (site, tail): (Option<&Site>, String) =
        if let Some((host, after)) = rest.split_once(':').filter(|(h, _)| !h.contains('/')) {
            let (path, tail) = match after.split_once(":/") {
                Some((p, tail)) => (p, tail.to_owned()),
                None => (after.trim_end_matches(':'), String::new()),
            };
            (t.site_by_path(host, path), tail)
        } else {
            let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let site = if first == "root" {
                t.sites.iter().find(|s| s.path.is_empty())
            } else if first.contains(',') {
                t.site(first)
            } else {
                t.site_by_path(first, "")
            };
            (site, tail.to_owned())
        };
    let Some(site) = site.cloned() else {
        drop(t);
        return graph_error(
            g,
            404,
            "itemNotFound",
            "Requested site could not be found",
            None,
            Some(errors::SITE_NOT_FOUND),
        );
    };
    drop(t);
    let write = !reading(req);
    if let Err(r) = permitted(g, &site, write) {
        return r;
    }
    let segs: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let t = g.tenant();
    let drives_of = |t: &super::model::Tenant| -> Vec<Drive> {
        site.drive_ids
            .iter()
            .filter_map(|d| t.drives.get(d).cloned())
            .collect()
    };
    match segs.as_slice() {
        [] if reading(req) => ApiReply::ok(site.json()),
        ["drives"] if reading(req) => {
            let value: Vec<Value> = drives_of(&t)
                .iter()
                .map(|d| d.json(&site, g.0.config.personal))
                .collect();
            ApiReply::ok(json!({ "value": value }))
        }
        ["drive"] if reading(req) => match drives_of(&t).first() {
            Some(d) => ApiReply::ok(d.json(&site, g.0.config.personal)),
            None => {
                drop(t);
                not_found(g)
            }
        },
        ["lists"] if reading(req) => {
            let value: Vec<Value> = drives_of(&t).iter().map(|d| d.list_json(&site)).collect();
            ApiReply::ok(json!({ "value": value }))
        }
        ["lists", list, more @ ..] => {
            let Some(drive) = t.drive_by_list(&site.id, list).cloned() else {
                drop(t);
                return not_found(g);
            };
            drop(t);
            match more {
                [] if reading(req) => ApiReply::ok(drive.list_json(&site)),
                ["columns"] if reading(req) => ApiReply::ok(drive.columns_json()),
                ["items", li] if reading(req) => match drive.item_by_list_item(li) {
                    Some(item) => {
                        ApiReply::ok(json!({"id": li, "fields": drive.fields_json(item)}))
                    }
                    None => not_found(g),
                },
                ["items", li, "fields"] => match drive.item_by_list_item(li) {
                    Some(item) => fields(g, req, &drive, &item.id.clone()),
                    None => not_found(g),
                },
                _ => method_not_allowed(g),
            }
        }
        _ => {
            drop(t);
            graph_error(
                g,
                400,
                "BadRequest",
                "Resource not found for the segment.",
                None,
                None,
            )
        }
    }
}

fn drives(g: &Graph, req: &ApiRequest<'_>, rest: &str) -> ApiReply {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some((drive_id, tail)) = segs.split_first() else {
        return not_found(g);
    };
    let t = g.tenant();
    let Some(drive) = t.drives.get(*drive_id).cloned() else {
        drop(t);
        return graph_error(
            g,
            404,
            "itemNotFound",
            "The provided drive id appears to be malformed, or does not represent a valid drive.",
            None,
            Some(errors::ITEM_NOT_FOUND),
        );
    };
    let Some(site) = t.site(&drive.site_id).cloned() else {
        drop(t);
        return not_found(g);
    };
    drop(t);
    if let Err(r) = permitted(g, &site, !reading(req)) {
        return r;
    }
    let render = |select, in_delta| render_for(g, select, in_delta);
    let select: Option<Vec<String>> = req
        .query
        .get("$select")
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    match tail {
        [] if reading(req) => ApiReply::ok(drive.json(&site, g.0.config.personal)),
        ["list"] if reading(req) => ApiReply::ok(drive.list_json(&site)),
        ["root"] if reading(req) => match drive.items.get(&drive.root_id) {
            Some(root) => {
                ApiReply::ok(drive.item_json(&site, root, render(select.as_deref(), false)))
            }
            None => not_found(g),
        },
        ["root", "children"] if reading(req) => {
            children(g, req, &drive, &site, &drive.root_id.clone())
        }
        ["root", d] if reading(req) && (*d == "delta" || d.starts_with("delta(")) => {
            delta(g, req, &drive, &site)
        }
        ["items", id, more @ ..] => {
            let Some(item) = drive.items.get(*id).filter(|i| !i.deleted).cloned() else {
                return not_found(g);
            };
            match more {
                [] if reading(req) => {
                    let mut v = drive.item_json(&site, &item, render(select.as_deref(), false));
                    let wants_url = select
                        .as_ref()
                        .is_none_or(|s| s.iter().any(|k| k == "@microsoft.graph.downloadUrl"));
                    if !item.folder
                        && wants_url
                        && let Some(o) = v.as_object_mut()
                    {
                        o.insert(
                            "@microsoft.graph.downloadUrl".into(),
                            json!(mint_download_url(g, &drive, &item)),
                        );
                    }
                    ApiReply::ok(v)
                }
                ["children"] if reading(req) => children(g, req, &drive, &site, &item.id),
                ["content"] if reading(req) => content(g, req, &drive, &item),
                ["content"] if req.method == "PUT" => upload(g, req, &drive, &site, &item),
                ["listItem"] if reading(req) => ApiReply::ok(json!({
                    "id": item.list_item_id.to_string(),
                    "fields": drive.fields_json(&item),
                    "sharepointIds": {"listId": drive.list_id.to_ascii_lowercase(), "listItemId": item.list_item_id.to_string()},
                })),
                ["listItem", "fields"] => fields(g, req, &drive, &item.id),
                _ => method_not_allowed(g),
            }
        }
        _ => method_not_allowed(g),
    }
}

fn render_for<'a>(g: &Graph, select: Option<&'a [String]>, in_delta: bool) -> Render<'a> {
    Render {
        personal: g.0.config.personal,
        in_delta,
        omit_ctag_in_delta: g.0.config.omit_ctag_in_delta,
        omit_hashes: g.0.config.omit_content_hashes,
        select,
        sharepoint_ids: !in_delta || g.0.config.sharepoint_ids_in_delta,
    }
}

fn top_of(g: &Graph, query: &BTreeMap<String, String>) -> usize {
    query
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(g.0.config.page_size)
        .clamp(1, g.0.config.max_page_size.max(1))
}

fn children(g: &Graph, req: &ApiRequest<'_>, drive: &Drive, site: &Site, parent: &str) -> ApiReply {
    if !drive
        .items
        .get(parent)
        .is_some_and(|p| p.folder && !p.deleted)
    {
        return not_found(g);
    }
    let top = top_of(g, &req.query);
    let skip: usize = req
        .query
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut kids: Vec<&Item> = drive
        .items
        .values()
        .filter(|i| i.parent.as_deref() == Some(parent) && !i.deleted)
        .collect();
    kids.sort_by(|a, b| a.name.cmp(&b.name));
    let select: Option<Vec<String>> = req
        .query
        .get("$select")
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let render = Render {
        personal: g.0.config.personal,
        in_delta: false,
        omit_ctag_in_delta: false,
        omit_hashes: g.0.config.omit_content_hashes,
        select: select.as_deref(),
        sharepoint_ids: true,
    };
    let page: Vec<Value> = kids
        .iter()
        .skip(skip)
        .take(top)
        .map(|i| drive.item_json(site, i, render))
        .collect();
    let mut body = json!({ "value": page });
    if skip + top < kids.len()
        && let Some(o) = body.as_object_mut()
    {
        let mut next = format!(
            "{}v1.0/drives/{}/items/{}/children?$top={top}&$skiptoken={}",
            g.0.api_base,
            drive.id,
            parent,
            skip + top
        );
        if let Some(sel) = req.query.get("$select") {
            next.push_str("&$select=");
            next.push_str(&encode_path(sel));
        }
        o.insert("@odata.nextLink".into(), json!(next));
    }
    ApiReply::ok(body)
}

fn delta(g: &Graph, req: &ApiRequest<'_>, drive: &Drive, site: &Site) -> ApiReply {
    let generation = g.0.delta_generation.load(Ordering::SeqCst);
    let raw_token = delta_token_of(req.path, "").map(Ok).or_else(|| {
        req.query.get("token").map(|t| match DeltaToken::decode(t) {
            Some(tok) => Ok(tok),
            None => Err(t.clone()),
        })
    });
    let mut token = match raw_token {
        None => DeltaToken {
            drive: drive.id.clone(),
            from: 0,
            snapshot: None,
            after: 0,
            top: req.query.get("$top").and_then(|t| t.parse().ok()),
            select: req.query.get("$select").cloned(),
            generation,
        },
        Some(Ok(tok)) => tok,
        Some(Err(literal)) if literal == "latest" => {
            let seq = g.tenant().seq;
            let tok = DeltaToken {
                drive: drive.id.clone(),
                from: seq,
                snapshot: None,
                after: 0,
                top: req.query.get("$top").and_then(|t| t.parse().ok()),
                select: req.query.get("$select").cloned(),
                generation,
            };
            return ApiReply::ok(json!({"value": [], "@odata.deltaLink": delta_link(g, &tok)}));
        }
        Some(Err(literal)) => match time::OffsetDateTime::parse(
            &literal,
            &time::format_description::well_known::Rfc3339,
        ) {
            // A timestamp token (ODfB/SharePoint only): changes after that time. Sequence
            // numbers grow with the emulated clock, so "after time T" is "after the last change
            // stamped at or before T".
            Ok(at) => DeltaToken {
                drive: drive.id.clone(),
                from: drive
                    .items
                    .values()
                    .filter(|i| i.modified <= at)
                    .map(|i| i.seq)
                    .max()
                    .unwrap_or(0),
                snapshot: None,
                after: 0,
                top: req.query.get("$top").and_then(|t| t.parse().ok()),
                select: req.query.get("$select").cloned(),
                generation,
            },
            Err(_) => return resync(g, &drive.id, None),
        },
    };
    if token.drive != drive.id || token.generation < generation {
        return resync(g, &drive.id, Some(&token));
    }
    let snapshot = token.snapshot.unwrap_or_else(|| g.tenant().seq);
    let top = token
        .top
        .unwrap_or(g.0.config.page_size)
        .clamp(1, g.0.config.max_page_size.max(1));
    let select: Option<Vec<String>> = token
        .select
        .as_ref()
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let render = Render {
        personal: g.0.config.personal,
        in_delta: true,
        omit_ctag_in_delta: g.0.config.omit_ctag_in_delta,
        omit_hashes: g.0.config.omit_content_hashes,
        select: select.as_deref(),
        sharepoint_ids: g.0.config.sharepoint_ids_in_delta,
    };
    let changes = drive.changes(token.from, token.after, snapshot);
    let page: Vec<&Item> = changes.iter().take(top).copied().collect();
    let value: Vec<Value> = page
        .iter()
        .map(|i| drive.item_json(site, i, render))
        .collect();
    let mut body = json!({ "value": value });
    let link = if changes.len() > top {
        token.snapshot = Some(snapshot);
        token.after = page.last().map_or(token.after, |i| i.seq);
        ("@odata.nextLink", delta_link(g, &token))
    } else {
        token.from = snapshot;
        token.after = 0;
        token.snapshot = None;
        ("@odata.deltaLink", delta_link(g, &token))
    };
    if let Some(o) = body.as_object_mut() {
        o.insert(link.0.into(), json!(link.1));
    }
    ApiReply::ok(body)
}

fn mint_download_url(g: &Graph, drive: &Drive, item: &Item) -> String {
    let tempauth = g.tenant().ids.token(120);
    let ticket = Ticket {
        drive_id: drive.id.clone(),
        item_id: item.id.clone(),
        content: item.content.clone(),
        mime: item
            .mime
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        expires_at: g.now() + g.0.config.download_url_ttl,
    };
    if let Ok(mut tickets) = g.0.tickets.lock() {
        let now = g.now();
        if tickets.len() > 10_000 {
            tickets.retain(|_, t| t.expires_at > now);
        }
        tickets.insert(tempauth.clone(), ticket);
    }
    format!(
        "{}_layouts/15/download.aspx?UniqueId={}&Translate=false&tempauth={tempauth}&ApiVersion=2.0",
        g.0.download_base,
        item.guid.to_ascii_lowercase()
    )
}

fn content(g: &Graph, req: &ApiRequest<'_>, drive: &Drive, item: &Item) -> ApiReply {
    if item.folder {
        return not_found(g);
    }
    if let Some(tag) = req.header("if-none-match")
        && (tag == item.etag() || tag == item.ctag())
    {
        return ApiReply {
            status: 304,
            headers: vec![],
            body: None,
        };
    }
    let location = mint_download_url(g, drive, item);
    ApiReply {
        status: 302,
        headers: vec![("location".into(), location)],
        body: None,
    }
}

/// `PUT /drives/{id}/items/{id}/content`: a simple upload that replaces the file's bytes. The
/// item gets a new hash, eTag and cTag and shows up in delta; the reply is the driveItem with
/// them. `If-Match` (eTag or cTag) guards against replacing a newer version (412). Not inside a
/// `$batch`: the emulator takes uploads only as requests of their own.
fn upload(g: &Graph, req: &ApiRequest<'_>, drive: &Drive, site: &Site, item: &Item) -> ApiReply {
    if req.via_batch {
        return bad_request(g, "Uploading content is not supported in a batch request.");
    }
    if item.folder {
        return bad_request(g, "Cannot upload content to a folder.");
    }
    if let Some(expected) = req.header("if-match")
        && expected != "*"
        && expected != item.etag()
        && expected != item.ctag()
    {
        return graph_error(
            g,
            412,
            "resourceModified",
            "The resource has changed since the caller last read it; usually an eTag mismatch",
            Some("entityTagDoesNotMatch"),
            Some(errors::ETAG_MISMATCH),
        );
    }
    let now = g.now();
    let render = render_for(g, None, false);
    let updated = {
        let mut t = g.tenant();
        if t.replace_content(&drive.id, &item.id, req.body.to_vec(), now) {
            t.drives.get(&drive.id).and_then(|d| {
                d.items
                    .get(&item.id)
                    .map(|i| (d.item_json(site, i, render), i.etag(), i.ctag()))
            })
        } else {
            None
        }
    };
    let Some((body, etag_after, ctag_after)) = updated else {
        return not_found(g);
    };
    if let Ok(mut u) = g.0.uploads.lock() {
        u.push(ContentUpload {
            at: std::time::Instant::now(),
            emulated: now,
            drive_id: drive.id.clone(),
            item_id: item.id.clone(),
            name: item.name.clone(),
            content_type: req.header("content-type").map(str::to_owned),
            bytes: req.body.len() as u64,
            etag_before: item.etag(),
            etag_after,
            ctag_after,
        });
    }
    ApiReply::ok(body)
}

fn fields(g: &Graph, req: &ApiRequest<'_>, drive: &Drive, item_id: &str) -> ApiReply {
    let Some(item) = drive.items.get(item_id).filter(|i| !i.deleted) else {
        return not_found(g);
    };
    match req.method {
        "GET" => ApiReply::ok(drive.fields_json(item)),
        "PATCH" => {
            if let Some(expected) = req.header("if-match") {
                let current = format!("\"{},{}\"", item.guid.to_ascii_lowercase(), item.etag_v);
                if expected != "*" && expected != current && expected != item.etag() {
                    return graph_error(
                        g,
                        412,
                        "resourceModified",
                        "The resource has changed since the caller last read it; usually an eTag mismatch",
                        Some("entityTagDoesNotMatch"),
                        Some(errors::ETAG_MISMATCH),
                    );
                }
            }
            let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(req.body) else {
                return bad_request(
                    g,
                    "Invalid request body: a JSON object of column values is expected.",
                );
            };
            for (name, value) in &update {
                let Some(column) = drive.column(name) else {
                    return graph_error(
                        g,
                        400,
                        "invalidRequest",
                        &format!("Field '{name}' is not recognized"),
                        None,
                        Some(errors::UNKNOWN_FIELD),
                    );
                };
                let problem = if column.read_only {
                    Some(format!("Field '{name}' is read-only"))
                } else {
                    match (column.kind, value) {
                        (_, Value::Null) => None,
                        (ColumnKind::Number, Value::Number(_)) => None,
                        (ColumnKind::Number, Value::String(s)) if s.parse::<f64>().is_ok() => None,
                        (ColumnKind::Text, Value::String(s)) if s.chars().count() <= 255 => None,
                        (ColumnKind::Text, Value::String(_)) => Some(format!(
                            "The value of field '{name}' exceeds the maximum length of 255 characters"
                        )),
                        (ColumnKind::Note, Value::String(s)) if s.chars().count() <= 63_999 => None,
                        (ColumnKind::DateTime, Value::String(s))
                            if time::OffsetDateTime::parse(
                                s,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .is_ok() =>
                        {
                            None
                        }
                        _ => Some(format!("Invalid value for field '{name}'")),
                    }
                };
                if let Some(message) = problem {
                    return graph_error(
                        g,
                        400,
                        "invalidRequest",
                        &message,
                        None,
                        Some(errors::INVALID_FIELD_VALUE),
                    );
                }
            }
            let now = g.now();
            let name = item.name.clone();
            let list_item_id = item.list_item_id.to_string();
            let (fields_after, in_delta) = {
                let mut t = g.tenant();
                t.set_fields(
                    &drive.id,
                    item_id,
                    &update,
                    g.0.config.field_updates_in_delta,
                    now,
                );
                let after = t
                    .drives
                    .get(&drive.id)
                    .and_then(|d| d.items.get(item_id).map(|i| d.fields_json(i)))
                    .unwrap_or(Value::Null);
                (after, g.0.config.field_updates_in_delta)
            };
            let _ = in_delta;
            if let Ok(mut w) = g.0.writes.lock() {
                w.push(ColumnWrite {
                    at: std::time::Instant::now(),
                    emulated: now,
                    drive_id: drive.id.clone(),
                    item_id: item_id.to_owned(),
                    list_item_id,
                    name,
                    fields: update,
                    via_batch: req.via_batch,
                });
            }
            ApiReply::ok(fields_after)
        }
        _ => method_not_allowed(g),
    }
}

// ----- $batch -------------------------------------------------------------------------------

fn batch(g: &Graph, req: &ApiRequest<'_>) -> ApiReply {
    let Ok(body) = serde_json::from_slice::<Value>(req.body) else {
        return graph_error(
            g,
            400,
            "BadRequest",
            "Invalid batch payload format.",
            None,
            None,
        );
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return graph_error(
            g,
            400,
            "BadRequest",
            "Invalid batch payload format.",
            None,
            None,
        );
    };
    if requests.len() > g.0.config.max_batch {
        return graph_error(
            g,
            400,
            "BadRequest",
            &format!(
                "Number of batch request steps exceeds the maximum value of {}.",
                g.0.config.max_batch
            ),
            None,
            Some(errors::BATCH_TOO_LARGE),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || !seen.insert(id.to_owned()) {
            return graph_error(
                g,
                400,
                "BadRequest",
                "Batch request ids must be present and unique.",
                None,
                None,
            );
        }
    }
    let mut statuses: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let at = std::time::Instant::now();
        let n = g.next_number();
        let (path_part, query_part) = url.split_once('?').unwrap_or((&url, ""));
        let rel = path_part.strip_prefix("/v1.0").unwrap_or(path_part);
        let key = format!("item-write:{method} {rel}");
        let depends: Vec<String> = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut fault_label = None;
        let reply =
            if url.starts_with("http://") || url.starts_with("https://") || !url.starts_with('/') {
                bad_request(g, "The batch request URL must be relative, e.g. /me.")
            } else if depends
                .iter()
                .any(|d| statuses.get(d).is_none_or(|s| *s >= 400))
            {
                graph_error(
                    g,
                    424,
                    "failedDependency",
                    "A dependency of this request failed.",
                    None,
                    None,
                )
            } else if let Some(reply) =
                g.take_fault(n, Route::BatchItem, &key, false)
                    .and_then(|f| {
                        fault_label = Some(f.label());
                        fault_reply(g, &f, Route::BatchItem, rel, query_part)
                    })
            {
                reply
            } else {
                fault_label = None;
                let sub_body = r
                    .get("body")
                    .map(|b| serde_json::to_vec(b).unwrap_or_default())
                    .unwrap_or_default();
                let headers: Vec<(String, String)> = r
                    .get("headers")
                    .and_then(Value::as_object)
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| {
                                (
                                    k.to_ascii_lowercase(),
                                    v.as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let decoded = percent_decode(rel);
                let sub = ApiRequest {
                    method: &method,
                    path: &decoded,
                    query: parse_query(query_part),
                    headers,
                    body: &sub_body,
                    authorization: req.authorization,
                    number: n,
                    via_batch: true,
                };
                dispatch(g, &sub)
            };
        statuses.insert(id.clone(), reply.status);
        let retry_after = reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| v.parse().ok());
        g.record(Exchange {
            n,
            at,
            emulated: g.now(),
            server: Server::BatchItem,
            route: classify(&method, &format!("/v1.0{rel}")),
            method: method.clone(),
            path: rel.to_owned(),
            query: query_part.to_owned(),
            key,
            status: reply.status,
            retry_after_secs: retry_after,
            fault: fault_label,
            authorization: req.authorization.map(str::to_owned),
            range: None,
            bytes: 0,
            batch: Some(req.number),
        });
        let mut headers = Map::new();
        headers.insert("Content-Type".into(), json!("application/json"));
        for (k, v) in &reply.headers {
            let name = if k.eq_ignore_ascii_case("retry-after") {
                "Retry-After".to_owned()
            } else {
                k.clone()
            };
            headers.insert(name, json!(v));
        }
        let mut resp = json!({"id": id, "status": reply.status, "headers": headers});
        if let (Some(body), Some(o)) = (reply.body, resp.as_object_mut()) {
            o.insert("body".into(), body);
        }
        responses.push(resp);
    }
    if g.0.config.batch_order == BatchOrder::Reversed {
        responses.reverse();
    }
    ApiReply::ok(json!({ "responses": responses }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_tokens_read_from_every_url_form() {
        let tok = DeltaToken {
            drive: "b!x".into(),
            from: 3,
            snapshot: Some(9),
            after: 5,
            top: Some(2),
            select: None,
            generation: 1,
        };
        let enc = tok.encode();
        for (path, query) in [
            (
                format!("/v1.0/drives/b!x/root/delta(token='{enc}')"),
                String::new(),
            ),
            (
                format!("/v1.0/drives/b!x/root/delta(token={enc})"),
                String::new(),
            ),
            (
                "/v1.0/drives/b!x/root/delta".to_owned(),
                format!("token={enc}"),
            ),
        ] {
            let got = delta_token_of(&path, &query).unwrap_or_else(|| panic!("{path}?{query}"));
            assert_eq!((got.from, got.after, got.snapshot), (3, 5, Some(9)));
        }
        assert!(is_continuation(
            &format!("/v1.0/drives/b!x/root/delta(token='{enc}')"),
            ""
        ));
    }

    #[test]
    fn routes_are_classified_by_their_last_segment() {
        for (path, route) in [
            ("/v1.0/$batch", Route::Batch),
            ("/v1.0/sites/a.sharepoint.com:/sites/x", Route::Sites),
            ("/v1.0/sites/a,b,c/drives", Route::Drives),
            ("/v1.0/sites/a,b,c/lists/l/columns", Route::Columns),
            ("/v1.0/sites/a,b,c/lists/l/items/3/fields", Route::Fields),
            ("/v1.0/drives/b!x/root/delta", Route::Delta),
            ("/v1.0/drives/b!x/root/delta(token='abc')", Route::Delta),
            ("/v1.0/drives/b!x/items/01A/content", Route::Content),
            ("/v1.0/drives/b!x/items/01A/children", Route::Children),
            ("/v1.0/drives/b!x/items/01A", Route::Item),
            ("/v1.0/drives/b!x/list", Route::Drives),
            ("/t/oauth2/v2.0/token", Route::Token),
        ] {
            assert_eq!(classify("GET", path), route, "{path}");
        }
        assert_eq!(
            classify("PUT", "/v1.0/drives/b!x/items/01A/content"),
            Route::Upload
        );
    }

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("a%20b%2Fc%zz"), "a b/c%zz");
    }
}
