//! The Salesforce REST API of the emulated org (reference §1.2–§1.5, §11): versions, SOQL query
//! with `nextRecordsUrl` pages, blob downloads, describe, sObject Collections create and limits.
//!
//! What a connector must get right, and what this emulator therefore enforces:
//! - every `/services/data/vXX.X/...` call needs a live session: an expired or revoked token gets
//!   401 with the JSON **array** body `INVALID_SESSION_ID` and `WWW-Authenticate: Token`;
//! - errors are arrays of `{"message","errorCode"}`; per-record errors of a collection use
//!   `statusCode` instead;
//! - the daily allowance is counted per call (`Sforce-Limit-Info: api-usage=N/MAX` on every
//!   response) and, once spent, every call gets **403** `REQUEST_LIMIT_EXCEEDED`, never 429;
//! - `nextRecordsUrl` is a relative path; pages are at most the configured page size and never
//!   more than `Sforce-Query-Options: batchSize` (clamped to 200–2000); locators expire when idle
//!   (`INVALID_QUERY_LOCATOR`);
//! - ContentDocumentLink queries without a filter on `ContentDocumentId` or `LinkedEntityId` are
//!   refused (the implementation restriction), unless the user has *Query All Files*;
//! - a collection takes at most 200 records; with `allOrNone:false` each record succeeds or fails
//!   on its own, with results in request order.
//!
//! Unverified facts are configuration ([`ApiConfig`]): whether blob downloads honour `Range`
//! (the reference does not say; default: they do not), the locator idle time, and the error text
//! for an oversized collection (situation key [`super::errors::COLLECTION_TOO_LARGE`]).
//!
//! Faults ([`SfFaults`]) apply per route kind ([`Route`]) so that a rule covers every locator page
//! and every blob, and a [`Chaos`] plan fails every n-th API request in rotation. Every API
//! exchange is recorded with its real (monotonic) arrival time and any `Retry-After` sent, so a
//! test can prove a client waited at least that long before repeating the request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use time::OffsetDateTime;
use url::Url;

use super::org::{CustomObjectDef, Org, Permissions, Seed};
use super::soql::{self, Condition, Tables as _};
use crate::common::{self, AccessProblem, ErrorReply, Harness, Tokens};

/// How the emulated org's REST API behaves.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// API versions the org offers (`/services/data/`), oldest first.
    pub versions: Vec<String>,
    /// Most records per query page (Salesforce: up to 2,000; smaller pages are allowed, "not
    /// guaranteed"). Tests set it low to get several pages.
    pub page_size: usize,
    /// How long an idle query locator lives (unverified; default 15 min of emulated time).
    pub locator_idle: time::Duration,
    /// Daily API request allowance.
    pub daily_api_max: u64,
    /// Whether blob downloads honour `Range` (unverified; default false: whole bodies).
    pub honour_range: bool,
    /// The population.
    pub seed: Seed,
    /// The result object; `None` = it does not exist in the org.
    pub result_object: Option<CustomObjectDef>,
    /// What the integration user may see.
    pub permissions: Permissions,
    /// Largest sObject Collections request (200).
    pub max_collection_records: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            versions: ["58.0", "59.0", "60.0", "61.0", "62.0"]
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            page_size: 2000,
            locator_idle: time::Duration::minutes(15),
            daily_api_max: 15_000,
            honour_range: false,
            seed: Seed::default(),
            result_object: Some(CustomObjectDef::proofpix_analysis()),
            permissions: Permissions::default(),
            max_collection_records: 200,
        }
    }
}

/// Which kind of API call a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Every `/services/data/...` call.
    Any,
    /// `GET /services/data/` (versions).
    Versions,
    /// The first page of a query (`/query?q=`).
    Query,
    /// A `nextRecordsUrl` page (`/query/{locator}`).
    QueryMore,
    /// `VersionData` and `Body` downloads.
    Blob,
    /// `/sobjects/{T}/describe`.
    Describe,
    /// `/composite/sobjects`.
    Collections,
    /// `/limits`.
    Limits,
}

impl Route {
    fn of(path: &str) -> Route {
        let rest = path
            .trim_start_matches("/services/data")
            .trim_start_matches('/');
        let mut parts = rest.split('/').skip(1);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (None | Some(""), ..) => Route::Versions,
            (Some("query" | "queryAll"), None, ..) => Route::Query,
            (Some("query" | "queryAll"), Some(_), ..) => Route::QueryMore,
            (Some("sobjects"), Some(_), Some("describe"), None) => Route::Describe,
            (Some("sobjects"), Some(_), Some(_), Some(_)) => Route::Blob,
            (Some("composite"), Some("sobjects"), ..) => Route::Collections,
            (Some("limits"), ..) => Route::Limits,
            _ => Route::Any,
        }
    }

    fn covers(self, other: Route) -> bool {
        self == Route::Any || self == other
    }
}

/// A Salesforce-shaped failure.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SfFault {
    /// 401 `INVALID_SESSION_ID` (the session expired server-side).
    ExpiredSession,
    /// 403 `REQUEST_LIMIT_EXCEEDED`, `TotalRequests Limit exceeded.`
    LimitExceeded,
    /// 403 `REQUEST_LIMIT_EXCEEDED`, `ConcurrentPerOrgLongTxn Limit exceeded.`
    ConcurrentLimit,
    /// Any status with an `UNKNOWN_EXCEPTION` array body and an optional `Retry-After` (seconds).
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Waits (real time) before answering normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// The real answer, cut in half.
    TruncatedJson,
    /// 400 `INVALID_QUERY_LOCATOR`.
    InvalidLocator,
}

#[derive(Debug)]
struct FaultRule {
    route: Route,
    fault: SfFault,
    remaining: Option<u32>,
}

/// Fault rules by route kind; the first matching rule with uses left applies.
#[derive(Clone, Debug, Default)]
pub struct SfFaults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl SfFaults {
    /// Applies `fault` to the next call of `route`.
    pub fn once(&self, route: Route, fault: SfFault) {
        self.times(route, 1, fault);
    }

    /// Applies `fault` to the next `n` calls of `route`.
    pub fn times(&self, route: Route, n: u32, fault: SfFault) {
        self.push(route, fault, Some(n));
    }

    /// Applies `fault` to every call of `route` until [`SfFaults::clear`].
    pub fn always(&self, route: Route, fault: SfFault) {
        self.push(route, fault, None);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, route: Route, fault: SfFault, remaining: Option<u32>) {
        self.lock().push(FaultRule {
            route,
            fault,
            remaining,
        });
    }

    fn take(&self, route: Route) -> Option<SfFault> {
        let mut rules = self.lock();
        let rule = rules
            .iter_mut()
            .find(|r| r.route.covers(route) && r.remaining != Some(0))?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }
}

/// Fails every `every`-th API call on `routes`, with `faults` in rotation.
#[derive(Clone, Debug)]
pub struct Chaos {
    /// Period: 4 = a quarter of the calls.
    pub every: u64,
    /// Route kinds counted (`Route::Any` for all).
    pub routes: Vec<Route>,
    /// Faults used in turn.
    pub faults: Vec<SfFault>,
}

/// One API exchange as the emulator saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Real arrival time (monotonic), for timing assertions.
    pub at: Instant,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// `Range` header, if any.
    pub range: Option<String>,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// Status answered.
    pub status: u16,
    /// `Retry-After` answered, in seconds.
    pub retry_after: Option<u64>,
    /// Bytes of the response body.
    pub response_bytes: u64,
    /// Whether an injected fault produced this answer.
    pub injected: bool,
}

impl Exchange {
    /// Method, path, query, range and body: what identifies a repeat of the same request.
    pub fn key(&self) -> (String, String, String, Option<String>, String) {
        (
            self.method.clone(),
            self.path.clone(),
            self.query.clone(),
            self.range.clone(),
            self.body_sha256.clone(),
        )
    }
}

struct Locator {
    rows: Arc<Vec<Value>>,
    page: usize,
    last_used: OffsetDateTime,
}

#[derive(Default)]
struct Shared {
    usage: AtomicU64,
    max: AtomicU64,
    faults: SfFaults,
    chaos: Mutex<Option<(Chaos, u64, usize)>>,
    exchanges: Mutex<Vec<Exchange>>,
    locators: Mutex<HashMap<String, Locator>>,
    locator_seq: AtomicU64,
    requests: AtomicU64,
    clock_jump: Mutex<Option<(u64, time::Duration)>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The test's handle on the emulated org's API: its data, faults and exchange log.
#[derive(Clone, Debug)]
pub struct Api {
    org: Org,
    shared: Arc<Shared>,
}

impl Api {
    /// The org's data.
    pub fn org(&self) -> &Org {
        &self.org
    }

    /// Fault rules by route kind.
    pub fn faults(&self) -> &SfFaults {
        &self.shared.faults
    }

    /// Starts (or, with `None`, stops) failing every n-th call.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        *lock(&self.shared.chaos) = chaos.map(|c| (c, 0, 0));
    }

    /// After `requests` more API calls, moves the emulated clock by `by` (e.g. past the session
    /// lifetime, so every token expires mid-run).
    pub fn advance_clock_after(&self, requests: u64, by: time::Duration) {
        let at = self.shared.requests.load(Ordering::SeqCst) + requests;
        *lock(&self.shared.clock_jump) = Some((at, by));
    }

    /// Every API exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.exchanges).clone()
    }

    /// Forgets the exchange log.
    pub fn clear_exchanges(&self) {
        lock(&self.shared.exchanges).clear();
    }

    /// API calls counted against the daily allowance so far.
    pub fn api_usage(&self) -> u64 {
        self.shared.usage.load(Ordering::SeqCst)
    }

    /// Leaves `remaining` calls of the daily allowance.
    pub fn set_api_remaining(&self, remaining: u64) {
        let used = self.shared.usage.load(Ordering::SeqCst);
        self.shared.max.store(used + remaining, Ordering::SeqCst);
    }

    /// Makes every open query locator invalid (as if they had expired).
    pub fn invalidate_locators(&self) {
        lock(&self.shared.locators).clear();
    }
}

#[derive(Clone)]
pub(crate) struct ApiState {
    harness: Harness,
    tokens: Tokens,
    org: Org,
    config: Arc<ApiConfig>,
    shared: Arc<Shared>,
}

/// Builds the API routes and the test handle.
pub(crate) fn routes(
    base: &Url,
    harness: Harness,
    tokens: Tokens,
    config: ApiConfig,
) -> (Router, Api) {
    let _ = base;
    let org = Org::new(
        harness.clock.clone(),
        &config.seed,
        config.result_object.clone(),
        config.permissions,
    );
    let shared = Arc::new(Shared::default());
    shared.max.store(config.daily_api_max, Ordering::SeqCst);
    let state = ApiState {
        harness: harness.clone(),
        tokens,
        org: org.clone(),
        config: Arc::new(config),
        shared: shared.clone(),
    };
    let router = Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{version}/limits", get(limits))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/queryAll", get(query))
        .route("/services/data/{version}/query/{locator}", get(query_more))
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}/{field}",
            get(blob),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            axum::routing::post(collections),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    (router, Api { org, shared })
}

/// `[{"message","errorCode"}]` (reference §1.5).
fn sf_error(status: u16, code: &str, message: &str) -> Response {
    ErrorReply::json(status, json!([{"message": message, "errorCode": code}])).into_response()
}

fn expired_session() -> Response {
    ErrorReply::json(
        401,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
    )
    .with_header("www-authenticate", "Token")
    .into_response()
}

fn limit_exceeded(what: &str) -> Response {
    sf_error(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        &format!("{what} Limit exceeded."),
    )
}

impl ApiState {
    /// Version, session and allowance checks every versioned call starts with.
    fn begin(&self, version: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let known = version
            .strip_prefix('v')
            .is_some_and(|v| self.config.versions.iter().any(|k| k == v));
        if !known {
            return Err(Box::new(sf_error(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            )));
        }
        let token = common::bearer(headers, true).unwrap_or_default();
        match self.tokens.check_access(&token, self.harness.clock.now()) {
            Ok(_) => {}
            Err(AccessProblem::Unknown | AccessProblem::Expired | AccessProblem::Revoked) => {
                return Err(Box::new(expired_session()));
            }
        }
        let used = self.shared.usage.fetch_add(1, Ordering::SeqCst) + 1;
        if used > self.shared.max.load(Ordering::SeqCst) {
            return Err(Box::new(limit_exceeded("TotalRequests")));
        }
        Ok(())
    }
}

/// Records each exchange, applies faults, adds `Sforce-Limit-Info`.
async fn observe(State(s): State<ApiState>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, common::harness::MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let route = Route::of(&path);
    let n = s.shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut jump = lock(&s.shared.clock_jump);
        if let Some((when, by)) = *jump
            && n > when
        {
            s.harness.clock.advance(by);
            *jump = None;
        }
    }
    let fault = s.shared.faults.take(route).or_else(|| {
        let mut chaos = lock(&s.shared.chaos);
        let (plan, count, turn) = chaos.as_mut()?;
        if !plan.routes.iter().any(|r| r.covers(route)) || plan.faults.is_empty() {
            return None;
        }
        *count += 1;
        if *count % plan.every.max(1) != 0 {
            return None;
        }
        let f = plan.faults.get(*turn % plan.faults.len()).cloned();
        *turn += 1;
        f
    });
    let record = Exchange {
        at,
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        range: parts
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        status: 0,
        retry_after: None,
        response_bytes: 0,
        injected: fault.is_some(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let mut response = match fault {
        Some(SfFault::ExpiredSession) => expired_session(),
        Some(SfFault::LimitExceeded) => limit_exceeded("TotalRequests"),
        Some(SfFault::ConcurrentLimit) => limit_exceeded("ConcurrentPerOrgLongTxn"),
        Some(SfFault::InvalidLocator) => {
            sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        }
        Some(SfFault::Status {
            status,
            retry_after,
        }) => {
            let mut reply = ErrorReply::json(
                status,
                json!([{"message": "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)", "errorCode": "UNKNOWN_EXCEPTION"}]),
            );
            if let Some(secs) = retry_after {
                reply = reply.with_header("retry-after", &secs.to_string());
            }
            reply.into_response()
        }
        Some(SfFault::MalformedJson) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            "<html><body>Service temporarily unavailable</body></html>",
        )
            .into_response(),
        Some(SfFault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(SfFault::TruncatedJson) => {
            let full = next.run(request).await;
            let (mut parts, body) = full.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        None => next.run(request).await,
    };
    if path.starts_with("/services/data/v")
        && let Ok(v) = HeaderValue::from_str(&format!(
            "api-usage={}/{}",
            s.shared.usage.load(Ordering::SeqCst),
            s.shared.max.load(Ordering::SeqCst)
        ))
    {
        response.headers_mut().insert("sforce-limit-info", v);
    }
    let mut record = record;
    record.status = response.status().as_u16();
    record.retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    record.response_bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut log = lock(&s.shared.exchanges);
    if log.len() >= common::harness::MAX_RECORDED_REQUESTS {
        log.remove(0);
    }
    log.push(record);
    drop(log);
    response
}

/// `GET /services/data/`: the versions list (no session needed, not counted).
async fn versions(State(s): State<ApiState>) -> Response {
    let list: Vec<Value> = s
        .config
        .versions
        .iter()
        .map(|v| json!({"label": format!("API {v}"), "url": format!("/services/data/v{v}"), "version": v}))
        .collect();
    axum::Json(list).into_response()
}

async fn limits(
    State(s): State<ApiState>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let max = s.shared.max.load(Ordering::SeqCst);
    let used = s.shared.usage.load(Ordering::SeqCst);
    axum::Json(json!({"DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)}}))
        .into_response()
}

/// Whether an ANDed top level filters ContentDocumentLink by document or entity id.
fn cdl_filtered(c: &Condition) -> bool {
    let id_field = |f: &str| {
        f.eq_ignore_ascii_case("ContentDocumentId") || f.eq_ignore_ascii_case("LinkedEntityId")
    };
    match c {
        Condition::And(l, r) => cdl_filtered(l) || cdl_filtered(r),
        Condition::Compare(f, soql::Op::Eq, _) => id_field(f),
        Condition::In(f, false, _) | Condition::InQuery(f, false, _) => id_field(f),
        _ => false,
    }
}

async fn query(
    State(s): State<ApiState>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return sf_error(400, "MALFORMED_QUERY", "A query string has to be specified");
    };
    let parsed = match soql::parse(q) {
        Ok(p) => p,
        Err(e) => return sf_error(400, e.code, &e.message),
    };
    let data = s.org.lock();
    if parsed.object.eq_ignore_ascii_case("ContentDocumentLink")
        && data.schema("ContentDocumentLink").is_ok()
        && !data.permissions.query_all_files
        && !parsed.condition.as_ref().is_some_and(cdl_filtered)
    {
        return sf_error(
            400,
            "MALFORMED_QUERY",
            "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN operator.",
        );
    }
    let (object, rows) = match soql::execute(&parsed, &*data) {
        Ok(r) => r,
        Err(e) => return sf_error(400, e.code, &e.message),
    };
    drop(data);
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let mut out = Map::new();
            out.insert(
                "attributes".into(),
                json!({"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")}),
            );
            out.append(&mut r);
            Value::Object(out)
        })
        .collect();
    let requested = headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(2000, |n| n.clamp(200, 2000));
    let page = requested.min(s.config.page_size).max(1);
    page_of(&s, &version, None, Arc::new(rows), page, 0)
}

/// One page of a query's rows. A query with more rows than a page gets a locator, kept (and
/// reused for every page of the query) until it has been idle for the configured time, so a
/// client may fetch the same `nextRecordsUrl` again after a failure.
fn page_of(
    s: &ApiState,
    version: &str,
    locator: Option<String>,
    rows: Arc<Vec<Value>>,
    page: usize,
    offset: usize,
) -> Response {
    let total = rows.len();
    let end = (offset + page).min(total);
    let records: Vec<Value> = rows.get(offset..end).unwrap_or_default().to_vec();
    let mut body = json!({"totalSize": total, "done": end >= total, "records": records});
    if end < total {
        let id = locator.unwrap_or_else(|| {
            format!(
                "01gx{:011}AAA",
                s.shared.locator_seq.fetch_add(1, Ordering::SeqCst) + 1
            )
        });
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{id}-{end}"));
        lock(&s.shared.locators).insert(
            id,
            Locator {
                rows,
                page,
                last_used: s.harness.clock.now(),
            },
        );
    }
    axum::Json(body).into_response()
}

async fn query_more(
    State(s): State<ApiState>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let invalid = || sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    let Some((id, offset)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let now = s.harness.clock.now();
    let found = {
        let mut locators = lock(&s.shared.locators);
        let idle = locators
            .get(id)
            .is_some_and(|l| now - l.last_used > s.config.locator_idle);
        if idle {
            locators.remove(id);
        }
        locators
            .get(id)
            .filter(|l| offset <= l.rows.len())
            .map(|l| (l.rows.clone(), l.page))
    };
    let Some((rows, page)) = found else {
        return invalid();
    };
    page_of(&s, &version, Some(id.to_owned()), rows, page, offset)
}

async fn describe(
    State(s): State<ApiState>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let data = s.org.lock();
    let Some(def) = data
        .result_object
        .as_ref()
        .filter(|o| o.name.eq_ignore_ascii_case(&object))
    else {
        // Standard objects the connector reads describe as queryable, not as write targets.
        return match data.schema(&object) {
            Ok((name, fields)) => axum::Json(json!({
                "name": name, "label": name, "custom": false, "createable": false, "queryable": true,
                "fields": fields.iter().map(|(f, _)| json!({"name": f, "createable": false})).collect::<Vec<_>>(),
            }))
            .into_response(),
            Err(_) => sf_error(404, "NOT_FOUND", "The requested resource does not exist"),
        };
    };
    let mut fields = vec![
        json!({"name": "Id", "type": "id", "createable": false, "nillable": false}),
        json!({"name": "Name", "type": "string", "length": 80, "createable": !def.name_auto_number,
               "nillable": false, "autoNumber": def.name_auto_number, "defaultedOnCreate": def.name_auto_number}),
        json!({"name": "CreatedDate", "type": "datetime", "createable": false, "nillable": false}),
    ];
    for f in &def.fields {
        fields.push(json!({
            "name": f.name, "type": f.kind, "length": f.length.unwrap_or(0), "createable": f.createable,
            "nillable": !f.required, "custom": true,
            "picklistValues": f.picklist.iter().map(|v| json!({"value": v, "active": true})).collect::<Vec<_>>(),
            "restrictedPicklist": !f.picklist.is_empty(),
        }));
    }
    axum::Json(json!({
        "name": def.name, "label": def.label, "custom": true, "createable": def.createable,
        "queryable": true, "fields": fields,
    }))
    .into_response()
}

async fn blob(
    State(s): State<ApiState>,
    Path((version, object, id, field)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let permissions = s.org.lock().permissions;
    let found = match (object.as_str(), field.as_str()) {
        ("ContentVersion", "VersionData") if permissions.files => {
            s.org.version_data(&id).map(|(b, m)| (b, m.to_owned()))
        }
        ("Attachment", "Body") if permissions.attachments => s.org.attachment_body(&id),
        _ => None,
    };
    let Some((bytes, mime)) = found else {
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist");
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let total = bytes.len() as u64;
    if s.config.honour_range
        && let Some((start, end)) = range
    {
        if start >= total {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{total}"))],
            )
                .into_response();
        }
        let end = end.unwrap_or(total - 1).min(total - 1);
        let slice = bytes
            .get(start as usize..=end as usize)
            .unwrap_or_default()
            .to_vec();
        return (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, mime),
                (
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{end}/{total}"),
                ),
            ],
            slice,
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, mime)], bytes.as_ref().clone()).into_response()
}

/// `bytes=a-b` or `bytes=a-`.
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() {
        None
    } else {
        Some(b.trim().parse().ok()?)
    };
    Some((start, end))
}

/// A record accepted for creation: (unused, object, fields).
type Accepted = (String, String, Map<String, Value>);
/// A per-record error: (statusCode, message, fields).
type Refusal = (String, String, Vec<String>);

/// Per-record validation of a create against the result object's metadata.
fn validate_record(def: &CustomObjectDef, fields: &Map<String, Value>) -> Result<(), Refusal> {
    for (name, value) in fields {
        let known = name == "Name" && !def.name_auto_number;
        let field = def
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name));
        if !known && field.is_none_or(|f| !f.createable) {
            return Err((
                "INVALID_FIELD".into(),
                format!("No such column '{name}' on sobject of type {}", def.name),
                vec![name.clone()],
            ));
        }
        if let Some(f) = field {
            if let (Some(max), Some(text)) =
                (f.length.filter(|_| f.kind != "picklist"), value.as_str())
                && text.chars().count() > max as usize
            {
                return Err((
                    "STRING_TOO_LONG".into(),
                    format!(
                        "{}: data value too large: {}... (max length={max})",
                        f.name,
                        text.chars().take(20).collect::<String>()
                    ),
                    vec![f.name.clone()],
                ));
            }
            if !f.picklist.is_empty()
                && !value
                    .as_str()
                    .is_some_and(|v| f.picklist.iter().any(|p| p == v))
            {
                return Err((
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".into(),
                    format!(
                        "{}: bad value for restricted picklist field: {}",
                        f.name,
                        value.as_str().unwrap_or("null")
                    ),
                    vec![f.name.clone()],
                ));
            }
        }
    }
    let mut missing: Vec<String> = def
        .fields
        .iter()
        .filter(|f| f.required && fields.get(&f.name).is_none_or(Value::is_null))
        .map(|f| f.name.clone())
        .collect();
    if !def.name_auto_number && fields.get("Name").is_none_or(Value::is_null) {
        missing.insert(0, "Name".into());
    }
    if !missing.is_empty() {
        return Err((
            "REQUIRED_FIELD_MISSING".into(),
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ));
    }
    Ok(())
}

async fn collections(
    State(s): State<ApiState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s.begin(&version, &headers) {
        return *r;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return sf_error(
            400,
            "JSON_PARSER_ERROR",
            "Unexpected character: was expecting a JSON value",
        );
    };
    let all_or_none = request["allOrNone"].as_bool().unwrap_or(false);
    let Some(records) = request["records"].as_array() else {
        return sf_error(400, "INVALID_FIELD", "records is required");
    };
    if records.len() > s.config.max_collection_records {
        return common::reply(
            &s.harness,
            Some(super::errors::COLLECTION_TOO_LARGE),
            ErrorReply::json(
                400,
                json!([{"message": format!("Maximum number of records is {}", s.config.max_collection_records), "errorCode": "EXCEEDED_ID_LIMIT"}]),
            ),
        );
    }
    let now = s.harness.clock.now();
    let mut data = s.org.lock();
    let def = data.result_object.clone();
    let mut outcomes: Vec<Result<Accepted, Refusal>> = Vec::new();
    for record in records {
        let object = record["attributes"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut fields = record.as_object().cloned().unwrap_or_default();
        fields.remove("attributes");
        let outcome = match def
            .as_ref()
            .filter(|d| d.name.eq_ignore_ascii_case(&object))
        {
            None => Err((
                "INVALID_TYPE".into(),
                format!("sObject type '{object}' is not supported."),
                vec![],
            )),
            Some(d) if !d.createable => Err((
                "INSUFFICIENT_ACCESS_OR_READONLY".into(),
                format!("insufficient access rights on object {}", d.name),
                vec![],
            )),
            Some(d) => validate_record(d, &fields)
                .and_then(|()| {
                    for (rule, counts) in data.failures.iter_mut() {
                        let value = fields
                            .get(&rule.field)
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if rule.values.iter().any(|v| v == value) {
                            let n = counts.entry(value.to_owned()).or_default();
                            if rule.times.is_none_or(|t| *n < t) {
                                *n += 1;
                                return Err((
                                    rule.status_code.clone(),
                                    rule.message.clone(),
                                    vec![rule.field.clone()],
                                ));
                            }
                        }
                    }
                    Ok(())
                })
                .map(|()| (String::new(), d.name.clone(), fields)),
        };
        outcomes.push(outcome);
    }
    let any_failed = outcomes.iter().any(Result::is_err);
    let mut results = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Ok((_, object, fields)) if !(all_or_none && any_failed) => {
                let id = s.org.record_id_locked(&mut data);
                data.created.push(super::org::CreatedRecord {
                    id: id.clone(),
                    object,
                    fields,
                    at: now,
                });
                results.push(json!({"id": id, "success": true, "errors": []}));
            }
            Ok(_) => results.push(json!({"success": false, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }]})),
            Err((code, message, fields)) => results.push(json!({"success": false, "errors": [{
                "statusCode": code, "message": message, "fields": fields,
            }]})),
        }
    }
    axum::Json(Value::Array(results)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_shape() {
        assert_eq!(Route::of("/services/data/"), Route::Versions);
        assert_eq!(Route::of("/services/data/v60.0/query"), Route::Query);
        assert_eq!(
            Route::of("/services/data/v60.0/query/01gx-200"),
            Route::QueryMore
        );
        assert_eq!(
            Route::of("/services/data/v60.0/sobjects/ContentVersion/068x/VersionData"),
            Route::Blob
        );
        assert_eq!(
            Route::of("/services/data/v60.0/sobjects/X__c/describe"),
            Route::Describe
        );
        assert_eq!(
            Route::of("/services/data/v60.0/composite/sobjects"),
            Route::Collections
        );
        assert_eq!(Route::of("/services/data/v60.0/limits"), Route::Limits);
    }

    #[test]
    fn ranges_parse_open_and_closed() {
        assert_eq!(parse_range("bytes=0-99"), Some((0, Some(99))));
        assert_eq!(parse_range("bytes=100-"), Some((100, None)));
        assert_eq!(parse_range("items=1-2"), None);
    }
}
