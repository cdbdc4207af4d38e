//! Box content APIs (reference §6.2–§6.5), on the same server as the Box identity provider,
//! plus a second loopback server that plays `dl.boxcloud.com`, the pre-authenticated host Box
//! redirects downloads to.
//!
//! Routes (all under `/2.0`, all needing a token from this emulator's `/oauth2/token`):
//!
//! | route | what it does |
//! |---|---|
//! | `GET /folders/{id}` | a folder (`fields=` honoured); 404 `not_found` for a folder the app cannot see |
//! | `GET /folders/{id}/items` | offset mode (`offset`+`limit`, `total_count`; offset past 9,999 is refused) and marker mode (`usemarker=true`, `next_marker`); `limit` ≤ 1000; `fields=` selects what each entry carries (`type`, `id`, `etag` always) |
//! | `GET /files/{id}` | a file |
//! | `GET /files/{id}/content` | 302 to the download host; `202 Accepted` + `retry-after` while the file's content is not ready ([`BoxFiles::set_content_pending`], or by fault) |
//! | `GET /events` | `stream_position=now` (empty `entries`, the head position); `stream_type=changes&stream_position=N&limit≤500` → `chunk_size`, `next_stream_position`, `entries`; delivery is at least once: the first read from a position repeats the event at that position |
//! | `OPTIONS /events` | the long-poll `realtime_server` entry |
//! | `GET\|POST\|PUT\|DELETE /files/{id}/metadata/{scope}/{template}` | instances: 201 on create, 409 `tuple_already_exists` when one exists, JSON-Patch `PUT` (`application/json-patch+json`; `add`, `replace`, `remove`, `test`), 400 `schema_validation_failed` on a key or value the template refuses |
//! | `GET /metadata_templates/{scope}/{template}/schema` | the template, 404 when it does not exist |
//!
//! Errors are Box's `{"type":"error","status","code","message","request_id",...}`; 429 is
//! `rate_limit_exceeded` with `retry-after` (§6.5); an API 401 has an empty body and
//! `WWW-Authenticate` (the identity provider's [`API_UNAUTHORIZED`](super::errors::API_UNAUTHORIZED)).
//! Texts the reference does not pin down have situation keys in [`errors`].
//!
//! The download host serves `/d/1/{ticket}/download` without any `Authorization`, honours
//! `Range` (206, `Content-Range`, 416) and refuses a ticket past its 15 minutes on the emulated
//! clock. A bearer token that arrives there anyway is recorded, so a test can prove the client
//! did not forward it.
//!
//! Test tooling only: tokens, metadata and file bytes are held in memory.

mod api;
pub mod faults;
pub mod model;
pub mod seed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::Url;

use crate::common::harness::MAX_BODY_BYTES;
use crate::common::server::RunningServer;
use crate::common::{Emulator, Harness, Tokens};

pub use faults::{BoxFault, Chaos, Exchange, RetryFollowUp, Route, Server};
pub use model::{Expected, FieldType, FileSpec, Population, Template, TemplateField};

use faults::FaultBook;
use model::Enterprise;

/// Situation keys of Box content-API error replies whose exact text the reference leaves open
/// (see [`ErrorCatalog`](crate::ErrorCatalog)).
pub mod errors {
    /// A `marker` Box no longer accepts (markers are not meant to be kept, §6.2). Default: 400
    /// `invalid_parameter` "Invalid value for 'marker'".
    pub const MARKER_EXPIRED: &str = "box.marker_expired";
    /// A `stream_position` older than Box keeps events for. Default: 400 `invalid_parameter`
    /// "Invalid value for 'stream_position'".
    pub const STREAM_POSITION_EXPIRED: &str = "box.stream_position_expired";
    /// `offset` past 9,999 (§6.2). Default: 400 `bad_request` "offset must be less than 10000;
    /// use marker-based paging".
    pub const OFFSET_TOO_LARGE: &str = "box.offset_too_large";
    /// A template that does not exist. Default: 404 `not_found` "Specified Metadata Template
    /// not found".
    pub const TEMPLATE_NOT_FOUND: &str = "box.template_not_found";
    /// A metadata instance that does not exist. Default: 404 `instance_not_found`.
    pub const INSTANCE_NOT_FOUND: &str = "box.instance_not_found";
    /// A key or value the template refuses. Default: 400 `schema_validation_failed`.
    pub const SCHEMA_VALIDATION_FAILED: &str = "box.schema_validation_failed";
    /// The app may read but not write metadata. Default: 403
    /// `access_denied_insufficient_permissions`.
    pub const ACCESS_DENIED: &str = "box.access_denied";
    /// An expired or unknown download ticket on the download host. Default: 403, text body.
    pub const DOWNLOAD_EXPIRED: &str = "box.download_expired";
}

/// How the emulated enterprise behaves.
#[derive(Clone, Debug)]
pub struct BoxFilesConfig {
    /// Folders and files at start.
    pub population: Population,
    /// Seed of the id generator.
    pub seed: u64,
    /// `limit` of a folder listing without one. Default 100.
    pub default_limit: usize,
    /// Largest `limit` of a folder listing. Default 1000.
    pub max_limit: usize,
    /// Largest `limit` of an events page. Default 500.
    pub max_events_limit: usize,
    /// The first read from a stream position repeats the event at that position (Box delivers
    /// at least once). Default true.
    pub redeliver_events: bool,
    /// Writing a metadata instance appends `METADATA_INSTANCE_CREATE` / `_UPDATE` to the
    /// `changes` stream. Default true (unverified; it makes a client's own write-back show up).
    pub metadata_events: bool,
    /// Lifetime of a download URL on the emulated clock. Default 15 minutes (§6.1).
    pub download_url_ttl: time::Duration,
    /// The download host honours `Range`. Default true.
    pub honour_range: bool,
    /// The app may read but not write metadata. Default false.
    pub read_only: bool,
}

impl Default for BoxFilesConfig {
    fn default() -> Self {
        BoxFilesConfig {
            population: seed::fieldwork(),
            seed: 0xB0C5,
            default_limit: 100,
            max_limit: 1000,
            max_events_limit: 500,
            redeliver_events: true,
            metadata_events: true,
            download_url_ttl: time::Duration::minutes(15),
            honour_range: true,
            read_only: false,
        }
    }
}

/// A metadata write the emulator applied.
#[derive(Clone, Debug)]
pub struct MetadataWrite {
    /// Real time.
    pub at: Instant,
    /// File id.
    pub file_id: String,
    /// File name.
    pub name: String,
    /// Template key.
    pub template: String,
    /// `POST` (create) or `PUT` (JSON-Patch update).
    pub method: String,
    /// The instance's fields after the write.
    pub fields: Map<String, Value>,
}

/// A file in the enterprise, as a test sees it.
#[derive(Clone, Debug)]
pub struct BoxFile {
    /// File id.
    pub id: String,
    /// Path below "All Files".
    pub path: String,
    /// Parent folder id.
    pub folder_id: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-1 of the bytes.
    pub sha1: String,
    /// Current `file_version.id`.
    pub version_id: String,
    /// In the trash.
    pub trashed: bool,
    /// Metadata the seeded bytes carry.
    pub expect: Expected,
}

impl BoxFile {
    /// Whether the name has an image extension.
    pub fn is_image(&self) -> bool {
        let ext = self
            .path
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        matches!(
            ext.as_str(),
            "jpg" | "jpeg" | "png" | "gif" | "webp" | "tif" | "tiff" | "heic" | "heif"
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub file_id: String,
    pub content: Arc<Vec<u8>>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub download_base: Url,
    pub harness: Harness,
    pub tokens: Tokens,
    pub config: BoxFilesConfig,
    pub enterprise: Mutex<Enterprise>,
    pub faults: Mutex<FaultBook>,
    pub traffic: Mutex<Vec<Exchange>>,
    pub writes: Mutex<Vec<MetadataWrite>>,
    pub tickets: Mutex<HashMap<String, Ticket>>,
    /// Marker generation: markers minted before the current one are refused.
    pub marker_generation: Mutex<u64>,
    /// Stream positions below this are refused.
    pub oldest_position: Mutex<u64>,
    /// Positions already read once (for at-least-once redelivery).
    pub positions_read: Mutex<std::collections::HashSet<u64>>,
    pub read_only: Mutex<bool>,
    /// The next listing request that carries a marker is refused as expired.
    pub invalidate_next_marker: Mutex<bool>,
    /// Files whose content is not ready yet, with the `retry-after` (seconds) to send.
    pub content_pending: Mutex<HashMap<String, u64>>,
}

/// The control and inspection handle of an emulated Box enterprise. Clones share state.
#[derive(Clone, Debug)]
pub struct BoxFiles(pub(crate) Arc<Shared>);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BoxFiles {
    pub(crate) fn new(
        config: BoxFilesConfig,
        download_base: Url,
        harness: Harness,
        tokens: Tokens,
    ) -> Self {
        let enterprise = Enterprise::build(&config.population, config.seed, harness.clock.now());
        BoxFiles(Arc::new(Shared {
            download_base,
            read_only: Mutex::new(config.read_only),
            harness,
            tokens,
            config,
            enterprise: Mutex::new(enterprise),
            faults: Mutex::default(),
            traffic: Mutex::default(),
            writes: Mutex::default(),
            tickets: Mutex::default(),
            marker_generation: Mutex::new(1),
            oldest_position: Mutex::new(0),
            positions_read: Mutex::default(),
            invalidate_next_marker: Mutex::new(false),
            content_pending: Mutex::default(),
        }))
    }

    pub(crate) fn enterprise(&self) -> MutexGuard<'_, Enterprise> {
        lock(&self.0.enterprise)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.0.harness.clock.now()
    }

    fn next_number(&self) -> u64 {
        let (n, due) = lock(&self.0.faults).next_number();
        for by in due {
            self.0.harness.clock.advance(by);
        }
        n
    }

    fn record(&self, exchange: Exchange) {
        crate::common::faults::record(&mut lock(&self.0.traffic), exchange);
    }

    // ----- inspection -------------------------------------------------------------------------

    /// The id of the folder at `path` below "All Files" (`""` is `0`).
    pub fn folder_id(&self, path: &str) -> Option<String> {
        let e = self.enterprise();
        let mut cur = "0".to_owned();
        for name in path.split('/').filter(|s| !s.is_empty()) {
            cur = e
                .folders
                .values()
                .find(|f| f.parent.as_deref() == Some(cur.as_str()) && f.name == name)?
                .id
                .clone();
        }
        Some(cur)
    }

    /// Every file (trashed ones included, marked), by path.
    pub fn files(&self) -> Vec<BoxFile> {
        let e = self.enterprise();
        let mut out: Vec<BoxFile> = e
            .files
            .values()
            .map(|f| {
                let mut names: Vec<String> = e
                    .ancestors(&f.parent)
                    .into_iter()
                    .filter(|a| a.id != "0")
                    .map(|a| a.name.clone())
                    .collect();
                if let Some(p) = e.folders.get(&f.parent).filter(|p| p.id != "0") {
                    names.push(p.name.clone());
                }
                names.push(f.name.clone());
                BoxFile {
                    id: f.id.clone(),
                    path: names.join("/"),
                    folder_id: f.parent.clone(),
                    size: f.content.len() as u64,
                    sha1: f.sha1.clone(),
                    version_id: f.version_id.clone(),
                    trashed: f.trashed,
                    expect: f.expect.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// The file at `path`.
    pub fn file(&self, path: &str) -> Option<BoxFile> {
        self.files().into_iter().find(|f| f.path == path)
    }

    /// The fields of a file's instance of `template`, if it has one.
    pub fn metadata(&self, file_id: &str, template: &str) -> Option<Map<String, Value>> {
        self.enterprise()
            .files
            .get(file_id)
            .and_then(|f| f.metadata.get(template))
            .map(|i| i.fields.clone())
    }

    /// Every metadata write applied, oldest first.
    pub fn metadata_writes(&self) -> Vec<MetadataWrite> {
        lock(&self.0.writes).clone()
    }

    /// Every exchange, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.0.traffic).clone()
    }

    /// Every `retry-after` sent (on 429 and 503), each with the next exchange of the same key.
    pub fn retry_follow_ups(&self) -> Vec<RetryFollowUp> {
        faults::follow_ups(&self.exchanges())
    }

    /// Forgets recorded exchanges and metadata writes.
    pub fn clear_traffic(&self) {
        lock(&self.0.traffic).clear();
        lock(&self.0.writes).clear();
    }

    /// The current head of the event stream.
    pub fn stream_head(&self) -> u64 {
        self.enterprise().head()
    }

    // ----- changes ----------------------------------------------------------------------------

    /// Uploads a new version of a file: new SHA-1 and `file_version`, an `ITEM_UPLOAD` event.
    pub fn replace_content(&self, file_id: &str, content: Vec<u8>) -> bool {
        let now = self.now();
        self.enterprise().replace_content(file_id, content, now)
    }

    /// Uploads a new file (folders created as needed, each with `ITEM_CREATE`); returns its id.
    pub fn add_file(&self, spec: FileSpec) -> String {
        let now = self.now();
        self.enterprise().add_file(&spec, now, true)
    }

    /// Marks a file's content as not ready yet, as for a fresh upload Box is still processing:
    /// until [`BoxFiles::set_content_ready`], `GET /files/{id}/content` answers `202 Accepted`
    /// with `retry-after: {retry_after_secs}` and no body ("If the file is not ready to be
    /// downloaded yet `Retry-After` header will be returned indicating the time in seconds
    /// after which the file will be available for the client to download. This response can
    /// occur when the file was uploaded immediately before the download request.", Box's
    /// Download file reference).
    pub fn set_content_pending(&self, file_id: &str, retry_after_secs: u64) {
        lock(&self.0.content_pending).insert(file_id.to_string(), retry_after_secs);
    }

    /// Ends [`BoxFiles::set_content_pending`]: the content downloads as usual.
    pub fn set_content_ready(&self, file_id: &str) {
        lock(&self.0.content_pending).remove(file_id);
    }

    /// Moves a file to the trash (`ITEM_TRASH`).
    pub fn trash(&self, file_id: &str) -> bool {
        let now = self.now();
        self.enterprise().trash(file_id, now)
    }

    /// Moves a file to another folder (`ITEM_MOVE`).
    pub fn move_file(&self, file_id: &str, folder_id: &str) -> bool {
        let now = self.now();
        self.enterprise().move_file(file_id, folder_id, now)
    }

    /// Appends an event for a file again, as Box's duplicate deliveries do.
    pub fn duplicate_last_event(&self) {
        let mut e = self.enterprise();
        if let Some(last) = e.events.last().cloned() {
            let now = self.now();
            e.push_event(&last.event_type, last.source, now);
            // Same event id: a true duplicate.
            if let Some(dup) = e.events.last_mut() {
                dup.event_id = last.event_id;
            }
        }
    }

    /// Hides a folder from the app, as when it is not shared with the service account.
    pub fn hide_folder(&self, folder_id: &str) {
        if let Some(f) = self.enterprise().folders.get_mut(folder_id) {
            f.hidden = true;
        }
    }

    /// Removes a metadata template.
    pub fn remove_template(&self, key: &str) {
        self.enterprise().templates.retain(|t| t.key != key);
    }

    /// Replaces or adds a metadata template.
    pub fn set_template(&self, template: Template) {
        let mut e = self.enterprise();
        e.templates.retain(|t| t.key != template.key);
        e.templates.push(template);
    }

    /// Whether metadata writes are refused with 403.
    pub fn set_read_only(&self, read_only: bool) {
        *lock(&self.0.read_only) = read_only;
    }

    /// Makes every marker issued so far invalid (400 on use).
    pub fn expire_markers(&self) {
        *lock(&self.0.marker_generation) += 1;
    }

    /// Refuses the next folder-items request that carries a marker (400, as for an expired
    /// marker) and every marker issued before it: the mid-walk invalidation of reference §0.3.
    pub fn invalidate_next_marker(&self) {
        *lock(&self.0.invalidate_next_marker) = true;
    }

    /// Makes every stream position issued so far too old (400 on use), as after a long pause.
    pub fn expire_stream_positions(&self) {
        let head = self.stream_head();
        *lock(&self.0.oldest_position) = head + 1;
    }

    // ----- faults -----------------------------------------------------------------------------

    /// Applies `fault` to the next `times` requests of route class `route`.
    pub fn inject(&self, route: Route, fault: BoxFault, times: u32) {
        lock(&self.0.faults).add(route, fault, Some(times), false);
    }

    /// Applies `fault` to `times` requests of route class `route`, after letting `skip` through.
    pub fn inject_after(&self, route: Route, skip: u32, fault: BoxFault, times: u32) {
        lock(&self.0.faults).add_after(route, fault, Some(times), false, skip);
    }

    /// Faults a random share of requests; `None` stops.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        lock(&self.0.faults).set_chaos(chaos);
    }

    /// When exchange number `at` arrives, moves the emulated clock forward by `by`.
    pub fn advance_clock_at(&self, at: u64, by: time::Duration) {
        lock(&self.0.faults).clock_plan.push((at, by));
    }

    /// How many exchanges were numbered so far.
    pub fn exchange_count(&self) -> u64 {
        lock(&self.0.faults).counter
    }

    /// Removes every rule, the chaos and the clock plan.
    pub fn clear_faults(&self) {
        lock(&self.0.faults).clear();
    }
}

/// A running Box emulator with content APIs: identity provider and API on one server, the
/// download host on another. Dereferences to the [`Emulator`] (clock, log, token book).
#[derive(Debug)]
pub struct BoxEmulator {
    emulator: Emulator,
    download: RunningServer,
    files: BoxFiles,
}

impl std::ops::Deref for BoxEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl BoxEmulator {
    pub(crate) fn new(emulator: Emulator, download: RunningServer, files: BoxFiles) -> Self {
        BoxEmulator {
            emulator,
            download,
            files,
        }
    }

    /// The enterprise's control and inspection handle.
    pub fn files(&self) -> &BoxFiles {
        &self.files
    }

    /// What to configure as the API base URL (`http://127.0.0.1:PORT`, no trailing slash); the
    /// token endpoint is on it too.
    pub fn api_url(&self) -> String {
        self.base_url().as_str().trim_end_matches('/').to_owned()
    }

    /// The download host (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn download_url(&self) -> String {
        self.download
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The content routes (mounted next to the identity provider's).
pub(crate) fn api_routes(files: BoxFiles) -> Router {
    Router::new()
        .route("/2.0/{*rest}", axum::routing::any(api::entry))
        .with_state(files)
}

/// The download host's routes.
pub(crate) fn download_routes(files: BoxFiles) -> Router {
    Router::new()
        .route("/d/1/{ticket}/download", axum::routing::get(api::download))
        .with_state(files)
}

/// Middleware on both servers: numbers the request, runs the clock plan, injects route-class
/// faults, and records the exchange with what was answered.
pub(crate) async fn observe(
    State((files, server)): State<(BoxFiles, Server)>,
    request: Request,
    next: Next,
) -> Response {
    let at = Instant::now();
    let emulated = files.now();
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let n = files.next_number();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let range = header("range");
    let route = match server {
        Server::Download => Route::Download,
        Server::Api => api::classify(&method, &path),
    };
    let key = api::retry_key(&files, route, &method, &path, &query);
    let fault = lock(&files.0.faults).take(n, route, &key, false);
    let label = fault.as_ref().map(BoxFault::label);
    let mut truncate = false;
    let mut malformed = false;
    let canned = match fault {
        Some(BoxFault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(BoxFault::Truncated) => {
            truncate = true;
            None
        }
        Some(BoxFault::Malformed) => {
            malformed = true;
            None
        }
        Some(f) => Some(api::fault_reply(&f).into_response()),
        None => None,
    };
    let response = match canned {
        Some(r) => r,
        None => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            if truncate || malformed {
                let (mut p, b) = resp.into_parts();
                let full = axum::body::to_bytes(b, usize::MAX)
                    .await
                    .unwrap_or_default();
                p.headers.remove(axum::http::header::CONTENT_LENGTH);
                let body = if malformed {
                    Body::from("<html><body>Bad gateway</body></html>")
                } else {
                    Body::from(full.slice(..full.len() / 2))
                };
                Response::from_parts(p, body)
            } else {
                resp
            }
        }
    };
    let retry_after_secs = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    files.record(Exchange {
        n,
        at,
        emulated,
        server,
        route,
        method,
        path,
        query,
        key,
        status: response.status().as_u16(),
        retry_after_secs,
        fault: label,
        authorization,
        range,
    });
    response
}
