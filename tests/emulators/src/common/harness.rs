//! What every emulator shares: the clock, a log of received requests, fault injection per route
//! and overridable error replies.
//!
//! The log exists so tests can assert what a client *sent* (for instance that a client secret went
//! to the token endpoint and nowhere else), not only what it got back. Faults let a test make any
//! route slow, failing or redirecting for a number of calls without touching the handlers
//! (reference §0.3). The [`ErrorCatalog`] lets a test replace any error reply whose exact text the
//! reference marks as unverified, instead of the emulator guessing silently (reference §10).
//!
//! Everything here is test tooling: the log keeps request bodies, secrets included, in memory. It
//! holds at most [`MAX_RECORDED_REQUESTS`] entries and each body at most [`MAX_BODY_BYTES`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use time::OffsetDateTime;

use super::clock::Clock;

/// Largest request body an emulator accepts (and records).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How many requests the log keeps; older ones are dropped first.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;

/// One request as the emulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, empty when there is none.
    pub query: String,
    /// Header names (lowercase) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
    /// Emulated time of arrival.
    pub at: OffsetDateTime,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as `application/x-www-form-urlencoded` (first value wins).
    pub fn form(&self) -> BTreeMap<String, String> {
        first_values(url::form_urlencoded::parse(&self.body))
    }

    /// The query string parsed (first value wins).
    pub fn query_params(&self) -> BTreeMap<String, String> {
        first_values(url::form_urlencoded::parse(self.query.as_bytes()))
    }

    /// User and password of an `Authorization: Basic` header, decoded.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        decode_basic(self.header("authorization")?)
    }

    /// Whether `needle` appears anywhere in the request: path, query, headers or body, raw or
    /// URL-decoded, or inside a decoded Basic credential.
    pub fn mentions(&self, needle: &str) -> bool {
        if needle.is_empty() {
            return false;
        }
        let raw_body = String::from_utf8_lossy(&self.body);
        let decoded = |s: &str| -> String {
            url::form_urlencoded::parse(s.as_bytes())
                .map(|(k, v)| format!("{k}={v}&"))
                .collect()
        };
        self.path.contains(needle)
            || self.query.contains(needle)
            || decoded(&self.query).contains(needle)
            || raw_body.contains(needle)
            || decoded(&raw_body).contains(needle)
            || self.headers.iter().any(|(_, v)| v.contains(needle))
            || self
                .basic_auth()
                .is_some_and(|(u, p)| u.contains(needle) || p.contains(needle))
    }
}

fn first_values<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// Decodes `Basic base64(user:password)`. RFC 6749 §2.3.1 has clients form-encode both parts
/// before base64, so they are form-decoded too (a no-op for plain values).
pub(crate) fn decode_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    let unform = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unform(user), unform(password)))
}

/// Every request an emulator received, oldest first.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RequestLog {
    fn push(&self, request: RecordedRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_RECORDED_REQUESTS {
            entries.remove(0);
        }
        entries.push(request);
    }

    /// All recorded requests.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Recorded requests to exactly `path`.
    pub fn to_path(&self, path: &str) -> Vec<RecordedRequest> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.to_path(path).len()
    }

    /// Recorded requests that mention `needle` anywhere (see [`RecordedRequest::mentions`]).
    pub fn mentioning(&self, needle: &str) -> Vec<RecordedRequest> {
        self.all()
            .into_iter()
            .filter(|r| r.mentions(needle))
            .collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// What an injected fault does to a request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this reply instead of running the route.
    Respond(ErrorReply),
    /// Wait this long (real time: it exercises client timeouts) before running the route.
    Delay(Duration),
    /// Answer with a redirect (`status` 301/302/303/307/308) to `location`.
    Redirect {
        /// Redirect status.
        status: u16,
        /// Absolute target URL.
        location: String,
    },
}

impl Fault {
    /// A reply with `status` and an empty body (e.g. a bare 503).
    pub fn status(status: u16) -> Self {
        Fault::Respond(ErrorReply::empty(status))
    }
}

#[derive(Debug)]
struct FaultRule {
    path: String,
    fault: Fault,
    /// `None` = every matching request.
    remaining: Option<u32>,
}

/// Faults injected per route. A rule matches on the exact path (`*` matches every path); the
/// first matching rule with uses left applies.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl Faults {
    /// Applies `fault` to the next request to `path`.
    pub fn once(&self, path: &str, fault: Fault) {
        self.times(path, 1, fault);
    }

    /// Applies `fault` to the next `n` requests to `path`.
    pub fn times(&self, path: &str, n: u32, fault: Fault) {
        self.add(path, fault, Some(n));
    }

    /// Applies `fault` to every request to `path` until [`Faults::clear`].
    pub fn always(&self, path: &str, fault: Fault) {
        self.add(path, fault, None);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn add(&self, path: &str, fault: Fault, remaining: Option<u32>) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(FaultRule {
                path: path.to_owned(),
                fault,
                remaining,
            });
    }

    fn take(&self, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let index = rules
            .iter()
            .position(|r| (r.path == path || r.path == "*") && r.remaining != Some(0))?;
        let rule = rules.get_mut(index)?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }
}

/// Body of an [`ErrorReply`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ReplyBody {
    /// No body at all.
    Empty,
    /// `application/json`.
    Json(serde_json::Value),
    /// `text/plain; charset=utf-8`.
    Text(String),
}

/// A complete HTTP reply an emulator sends for an error situation.
#[derive(Clone, Debug)]
pub struct ErrorReply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: ReplyBody,
}

impl ErrorReply {
    /// A JSON reply.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        ErrorReply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> Self {
        ErrorReply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        ErrorReply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Text(body.into()),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            ReplyBody::Empty => status.into_response(),
            ReplyBody::Json(value) => (status, axum::Json(value)).into_response(),
            ReplyBody::Text(text) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                text,
            )
                .into_response(),
        };
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// Error replies a test has overridden, by situation key. Each vendor module documents its keys
/// (for example `salesforce::errors::REFRESH_INVALID`) and which default texts are unverified.
#[derive(Clone, Debug, Default)]
pub struct ErrorCatalog {
    overrides: Arc<Mutex<BTreeMap<String, ErrorReply>>>,
}

impl ErrorCatalog {
    /// Replaces the reply for `situation`.
    pub fn set(&self, situation: &str, reply: ErrorReply) {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(situation.to_owned(), reply);
    }

    /// The reply for `situation`: the override if a test set one, else `default`.
    pub fn reply(&self, situation: &str, default: ErrorReply) -> ErrorReply {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(situation)
            .cloned()
            .unwrap_or(default)
    }
}

/// The shared facilities of one emulated service. Cheap to clone; clones share state, so one
/// harness can also serve several emulators that must agree on time.
#[derive(Clone, Debug, Default)]
pub struct Harness {
    /// Emulated time.
    pub clock: Clock,
    /// Requests received.
    pub log: RequestLog,
    /// Injected faults.
    pub faults: Faults,
    /// Error-reply overrides.
    pub errors: ErrorCatalog,
    pub(crate) minted: Minted,
}

impl Harness {
    /// A harness around an existing clock (so several emulators share one "now").
    pub fn with_clock(clock: Clock) -> Self {
        Harness {
            clock,
            ..Harness::default()
        }
    }

    /// Every secret value the emulators on this harness minted so far (access and refresh tokens,
    /// authorization codes), for tests that check none of them leaked into logs.
    pub fn minted_secrets(&self) -> Vec<String> {
        self.minted
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Record of minted secrets.
#[derive(Clone, Debug, Default)]
pub(crate) struct Minted(Arc<Mutex<Vec<String>>>);

impl Minted {
    pub(crate) fn note(&self, value: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value.to_owned());
    }
}

/// Middleware: records the request, then applies the first matching fault, if any.
pub(crate) async fn record_and_inject(
    State(harness): State<Harness>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let path = parts.uri.path().to_owned();
    harness.log.push(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: bytes.to_vec(),
        at: harness.clock.now(),
    });
    match harness.faults.take(&path) {
        Some(Fault::Respond(reply)) => return reply.into_response(),
        Some(Fault::Redirect { status, location }) => {
            return ErrorReply::empty(status)
                .with_header("location", &location)
                .into_response();
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_with_a_count_applies_that_many_times_then_stops() {
        let faults = Faults::default();
        faults.times("/token", 2, Fault::status(503));
        assert!(faults.take("/other").is_none());
        assert!(faults.take("/token").is_some());
        assert!(faults.take("/token").is_some());
        assert!(faults.take("/token").is_none());
    }

    #[test]
    fn basic_credentials_are_form_decoded_as_rfc_6749_asks() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20id:s%2Bcret")
        );
        assert_eq!(
            decode_basic(&header),
            Some(("my id".into(), "s+cret".into()))
        );
    }

    #[test]
    fn mentions_finds_a_value_in_a_form_encoded_body() {
        let request = RecordedRequest {
            method: "POST".into(),
            path: "/token".into(),
            query: String::new(),
            headers: vec![],
            body: b"password=a%2Bb%21".to_vec(),
            at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(request.mentions("a+b!"));
        assert!(!request.mentions("zzz"));
    }
}
