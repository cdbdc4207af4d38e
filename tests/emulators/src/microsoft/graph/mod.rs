//! Microsoft Graph for SharePoint Online and OneDrive (reference §2.2–§2.5), on the same server as
//! the Microsoft identity platform, plus a second loopback server that plays the
//! pre-authenticated download host Graph redirects file downloads to.
//!
//! Routes (all under `/v1.0`, all needing a Graph token from this emulator's token endpoint):
//!
//! | route | what it does |
//! |---|---|
//! | `GET /sites/{hostname}:/sites/{path}[:/...]`, `/sites/{site-id}`, `/sites/{hostname}` | sites by path, id, or the root site |
//! | `GET /sites/{id}/drives`, `/drives/{id}`, `/drives/{id}/list` | document libraries and their lists |
//! | `GET /sites/{id}/lists/{id}/columns` | list columns (built-in and ProofPix's) |
//! | `GET /drives/{id}/root/children`, `/drives/{id}/items/{id}/children` | children, paged with `@odata.nextLink` (`$top`, `$skiptoken`) |
//! | `GET /drives/{id}/root/delta` | full enumeration then changes: `@odata.nextLink` pages, a final `@odata.deltaLink`; `?token=latest`, `?token={timestamp}`; 410 `resyncRequired` with a `Location` that restarts |
//! | `GET /drives/{id}/items/{id}` | an item, with `@microsoft.graph.downloadUrl` |
//! | `GET /drives/{id}/items/{id}/content` | 302 to the download host (304 on a matching `If-None-Match`) |
//! | `PUT /drives/{id}/items/{id}/content` | simple upload: replaces the bytes, new hash, eTag and cTag, shows up in delta, answers the driveItem; `If-Match` mismatch 412; recorded ([`Graph::uploads`]). From Graph's `driveitem-put-content` docs (the reference does not cover uploads); large bodies get 413 (axum's default 2 MB body limit and the harness's 4 MiB cap), Graph's 250 MB limit is not modelled |
//! | `GET\|PATCH /sites/{id}/lists/{id}/items/{id}/fields`, `/drives/{id}/items/{id}/listItem/fields` | list-item columns; unknown or read-only column 400, `If-Match` mismatch 412 |
//! | `POST /$batch` | up to 20 sub-requests, answered in any order, each throttled on its own |
//!
//! The download host serves `/_layouts/15/download.aspx?UniqueId=…&tempauth=…` without any
//! `Authorization`, honours `Range` (206, `Content-Range`, 416), and refuses a URL past its TTL on
//! the emulated clock, so clients learn to ask `/content` again rather than cache the URL.
//!
//! What is configurable because the reference marks it unverified or drive-type dependent
//! ([`GraphConfig`]): whether delta items carry `cTag` (ODfB leaves it out), whether `sharepointIds`
//! can be selected in delta, whether column updates show up in delta, the `photo`/`location`
//! facets (personal drives only), the response order of `$batch`, and every error text through the
//! situation keys in [`errors`].
//!
//! Faults per route class, random chaos and a clock that jumps after a number of requests live in
//! [`faults`]; every exchange is recorded with its real arrival time for Retry-After checks.
//!
//! Test tooling only: tokens, column values and file bytes are held in memory.

mod api;
mod download;
pub mod faults;
pub mod model;
mod quickxor;
pub mod seed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

pub use faults::{Chaos, Exchange, GraphFault, RetryFollowUp, Route, Server};
pub use model::{
    AppPermission, ColumnKind, ColumnSpec, Expected, FileSpec, LibrarySpec, Population, SiteSpec,
};

use faults::FaultBook;
use model::Tenant;

/// Situation keys of Graph error replies (see [`ErrorCatalog`](crate::ErrorCatalog)). The codes
/// follow reference §2.5; the exact messages are \[mem\] unless noted.
pub mod errors {
    /// Site path or id unknown. Default: 404 `itemNotFound` "Requested site could not be found".
    pub const SITE_NOT_FOUND: &str = "microsoft.graph.site_not_found";
    /// Drive, item or list item unknown. Default: 404 `itemNotFound` "The resource could not be found.".
    pub const ITEM_NOT_FOUND: &str = "microsoft.graph.item_not_found";
    /// The app lacks the permission (no `Sites.*` role, or `Sites.Selected` without a grant on
    /// the site, or a write with read-only access). Default: 403 `accessDenied` "Access denied".
    pub const ACCESS_DENIED: &str = "microsoft.graph.access_denied";
    /// A column update names an unknown column. Default: 400 `invalidRequest`
    /// "Field 'X' is not recognized".
    pub const UNKNOWN_FIELD: &str = "microsoft.graph.unknown_field";
    /// A column update writes a read-only column or a value of the wrong type. Default: 400
    /// `invalidRequest`.
    pub const INVALID_FIELD_VALUE: &str = "microsoft.graph.invalid_field_value";
    /// `If-Match` does not match. Default: 412 `resourceModified` / `entityTagDoesNotMatch`.
    pub const ETAG_MISMATCH: &str = "microsoft.graph.etag_mismatch";
    /// The delta token expired or is unknown. Default: 410 `resyncRequired` /
    /// `resyncChangesApplyDifferences`, with `Location` (reference §2.2 lists the codes; which
    /// is outer and which inner is unverified).
    pub const RESYNC_REQUIRED: &str = "microsoft.graph.resync_required";
    /// More than 20 sub-requests. Default: 400 `BadRequest`.
    pub const BATCH_TOO_LARGE: &str = "microsoft.graph.batch_too_large";
    /// The pre-authenticated download URL expired. Default: 401 with SharePoint's JSON.
    pub const DOWNLOAD_EXPIRED: &str = "microsoft.download_expired";
}

/// In which order `$batch` answers (the docs say "any order").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOrder {
    /// As sent.
    AsSent,
    /// Reversed, so a client that pairs by position instead of `id` fails visibly.
    Reversed,
}

/// How the emulated Graph tenant behaves.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// Sites, libraries and files at start.
    pub population: Population,
    /// Seed of the id generator.
    pub seed: u64,
    /// What the app registration may do.
    pub permission: AppPermission,
    /// Page size when the client sends no `$top`.
    pub page_size: usize,
    /// Largest `$top` honoured.
    pub max_page_size: usize,
    /// Drives behave as OneDrive personal (full `photo` facet and `location`); business drives
    /// (default) show only `photo.takenDateTime`.
    pub personal: bool,
    /// Delta items come without `cTag`, as on OneDrive for Business. Default true.
    pub omit_ctag_in_delta: bool,
    /// Files come without `file.hashes`: Graph documents that `quickXorHash` "might not be
    /// available in all cases" (driveItem `hashes` resource: the hashes "may not be available
    /// for all items"). Combined with [`GraphConfig::omit_ctag_in_delta`], delta then leaves a
    /// client only the eTag, which a column update changes. Default false.
    pub omit_content_hashes: bool,
    /// `$select=sharepointIds` works in delta. Default true (unverified).
    pub sharepoint_ids_in_delta: bool,
    /// A column update makes the item show up in delta (its eTag changes). Default true.
    pub field_updates_in_delta: bool,
    /// Lifetime of a pre-authenticated download URL on the emulated clock. Default 1 hour
    /// (the docs say "a few minutes" in one place and one hour in another).
    pub download_url_ttl: time::Duration,
    /// The download host honours `Range`. Default true; false answers 200 with everything.
    pub honour_range: bool,
    /// Order of `$batch` responses. Default reversed.
    pub batch_order: BatchOrder,
    /// Most sub-requests in one `$batch`. Default 20.
    pub max_batch: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            population: seed::fieldwork(),
            seed: 0x5EED,
            permission: AppPermission::ReadWriteAll,
            page_size: 200,
            max_page_size: 999,
            personal: false,
            omit_ctag_in_delta: true,
            omit_content_hashes: false,
            sharepoint_ids_in_delta: true,
            field_updates_in_delta: true,
            download_url_ttl: time::Duration::hours(1),
            honour_range: true,
            batch_order: BatchOrder::Reversed,
            max_batch: 20,
        }
    }
}

/// A column update the emulator applied.
#[derive(Clone, Debug)]
pub struct ColumnWrite {
    /// Real time.
    pub at: Instant,
    /// Emulated time.
    pub emulated: OffsetDateTime,
    /// Drive.
    pub drive_id: String,
    /// Drive item.
    pub item_id: String,
    /// List item id.
    pub list_item_id: String,
    /// File name.
    pub name: String,
    /// The fields written.
    pub fields: Map<String, Value>,
    /// Whether it came inside a `$batch`.
    pub via_batch: bool,
}

/// A content replacement (`PUT .../content`) the emulator applied.
#[derive(Clone, Debug)]
pub struct ContentUpload {
    /// Real time.
    pub at: Instant,
    /// Emulated time.
    pub emulated: OffsetDateTime,
    /// Drive.
    pub drive_id: String,
    /// Drive item.
    pub item_id: String,
    /// File name.
    pub name: String,
    /// The `Content-Type` sent.
    pub content_type: Option<String>,
    /// Body length.
    pub bytes: u64,
    /// The item's eTag before.
    pub etag_before: String,
    /// The item's eTag after.
    pub etag_after: String,
    /// The item's cTag after.
    pub ctag_after: String,
}

/// A file in the tenant, as a test sees it.
#[derive(Clone, Debug)]
pub struct TenantFile {
    /// Site, as `hostname/path`.
    pub site: String,
    /// Library (drive) name.
    pub library: String,
    /// Drive id.
    pub drive_id: String,
    /// Item id.
    pub item_id: String,
    /// Path inside the library.
    pub path: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it has the `image` facet or an `image/*` type.
    pub is_image: bool,
    /// Metadata the seeded bytes carry.
    pub expect: Expected,
}

/// A pre-authenticated download URL's secret part.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub drive_id: String,
    pub item_id: String,
    pub content: Arc<Vec<u8>>,
    pub mime: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub api_base: Url,
    pub download_base: Url,
    pub harness: Harness,
    pub tokens: Tokens,
    pub config: GraphConfig,
    pub tenant: Mutex<Tenant>,
    pub permission: Mutex<AppPermission>,
    pub faults: Mutex<FaultBook>,
    pub traffic: Mutex<Vec<Exchange>>,
    pub writes: Mutex<Vec<ColumnWrite>>,
    pub uploads: Mutex<Vec<ContentUpload>>,
    pub tickets: Mutex<HashMap<String, Ticket>>,
    pub delta_generation: AtomicU64,
}

/// The control and inspection handle of an emulated Graph tenant. Clones share state.
#[derive(Clone, Debug)]
pub struct Graph(pub(crate) Arc<Shared>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Graph {
    pub(crate) fn new(
        config: GraphConfig,
        api_base: Url,
        download_base: Url,
        harness: Harness,
        tokens: Tokens,
    ) -> Self {
        let tenant = Tenant::build(&config.population, config.seed, harness.clock.now());
        Graph(Arc::new(Shared {
            api_base,
            download_base,
            permission: Mutex::new(config.permission.clone()),
            harness,
            tokens,
            config,
            tenant: Mutex::new(tenant),
            faults: Mutex::default(),
            traffic: Mutex::default(),
            writes: Mutex::default(),
            uploads: Mutex::default(),
            tickets: Mutex::default(),
            delta_generation: AtomicU64::new(1),
        }))
    }

    pub(crate) fn tenant(&self) -> MutexGuard<'_, Tenant> {
        lock(&self.0.tenant)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.0.harness.clock.now()
    }

    /// The next exchange number; runs the clock plan.
    pub(crate) fn next_number(&self) -> u64 {
        let (n, due) = lock(&self.0.faults).next_number();
        for by in due {
            self.0.harness.clock.advance(by);
        }
        n
    }

    pub(crate) fn take_fault(
        &self,
        n: u64,
        route: Route,
        key: &str,
        continuation: bool,
    ) -> Option<GraphFault> {
        lock(&self.0.faults).take(n, route, key, continuation)
    }

    pub(crate) fn record(&self, exchange: Exchange) {
        crate::common::faults::record(&mut lock(&self.0.traffic), exchange);
    }

    // ----- inspection -------------------------------------------------------------------------

    /// The id of site `key` (`hostname/path`, or `hostname` for the root site).
    pub fn site_id(&self, key: &str) -> Option<String> {
        let t = self.tenant();
        t.sites
            .iter()
            .find(|s| s.key().eq_ignore_ascii_case(key.trim_end_matches('/')))
            .map(|s| s.id.clone())
    }

    /// The drive id of library `library` (by name) on site `site` (`hostname/path`).
    pub fn drive_id(&self, site: &str, library: &str) -> Option<String> {
        let site_id = self.site_id(site)?;
        let t = self.tenant();
        t.drives
            .values()
            .find(|d| d.site_id == site_id && d.name.eq_ignore_ascii_case(library))
            .map(|d| d.id.clone())
    }

    /// The list id of a drive.
    pub fn list_id(&self, drive_id: &str) -> Option<String> {
        self.tenant()
            .drives
            .get(drive_id)
            .map(|d| d.list_id.clone())
    }

    /// Every file (not folders, not deleted), in site, library and path order.
    pub fn files(&self) -> Vec<TenantFile> {
        let t = self.tenant();
        let mut out = Vec::new();
        for site in &t.sites {
            for drive_id in &site.drive_ids {
                let Some(drive) = t.drives.get(drive_id) else {
                    continue;
                };
                for item in drive.items.values().filter(|i| !i.folder && !i.deleted) {
                    let mime = item.mime.clone().unwrap_or_default();
                    out.push(TenantFile {
                        site: site.key(),
                        library: drive.name.clone(),
                        drive_id: drive.id.clone(),
                        item_id: item.id.clone(),
                        path: drive.item_path(item),
                        is_image: item.image.is_some() || mime.starts_with("image/"),
                        mime,
                        size: item.content.len() as u64,
                        expect: item.expect.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.site, &a.library, &a.path).cmp(&(&b.site, &b.library, &b.path)));
        out
    }

    /// The file at `path` in library `library` of site `site`.
    pub fn file(&self, site: &str, library: &str, path: &str) -> Option<TenantFile> {
        self.files().into_iter().find(|f| {
            f.site.eq_ignore_ascii_case(site)
                && f.library.eq_ignore_ascii_case(library)
                && f.path == path
        })
    }

    /// A file's bytes.
    pub fn content(&self, drive_id: &str, item_id: &str) -> Option<Arc<Vec<u8>>> {
        self.tenant()
            .drives
            .get(drive_id)
            .and_then(|d| d.items.get(item_id))
            .map(|i| i.content.clone())
    }

    /// A file's list-item column values (only those written since seeding).
    pub fn fields(&self, drive_id: &str, item_id: &str) -> Option<Map<String, Value>> {
        self.tenant()
            .drives
            .get(drive_id)
            .and_then(|d| d.items.get(item_id))
            .map(|i| i.fields.clone())
    }

    /// Every column update applied, oldest first.
    pub fn column_writes(&self) -> Vec<ColumnWrite> {
        lock(&self.0.writes).clone()
    }

    /// Every content replacement applied, oldest first.
    pub fn uploads(&self) -> Vec<ContentUpload> {
        lock(&self.0.uploads).clone()
    }

    /// Every exchange, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.0.traffic).clone()
    }

    /// Every `Retry-After` sent (on 429 and 503), each with the next exchange of the same key.
    pub fn retry_follow_ups(&self) -> Vec<RetryFollowUp> {
        faults::follow_ups(&self.exchanges())
    }

    /// Forgets recorded exchanges, column writes and uploads.
    pub fn clear_traffic(&self) {
        lock(&self.0.traffic).clear();
        lock(&self.0.writes).clear();
        lock(&self.0.uploads).clear();
    }

    // ----- changes ----------------------------------------------------------------------------

    /// Replaces a file's content: a new hash, eTag and cTag, and it shows up in delta.
    pub fn replace_content(&self, drive_id: &str, item_id: &str, content: Vec<u8>) -> bool {
        let now = self.now();
        self.tenant()
            .replace_content(drive_id, item_id, content, now)
    }

    /// Adds a file to a library; returns its item id.
    pub fn add_file(&self, drive_id: &str, file: FileSpec) -> Option<String> {
        let now = self.now();
        let mut t = self.tenant();
        let mut drive = t.drives.remove(drive_id)?;
        let id = t.add_file(&mut drive, &file, now, true);
        t.drives.insert(drive_id.to_owned(), drive);
        Some(id)
    }

    /// Deletes an item; delta reports it with the `deleted` facet.
    pub fn delete(&self, drive_id: &str, item_id: &str) -> bool {
        let now = self.now();
        self.tenant().delete(drive_id, item_id, now)
    }

    /// Removes a column from a library's list.
    pub fn remove_column(&self, drive_id: &str, name: &str) {
        if let Some(d) = self.tenant().drives.get_mut(drive_id) {
            d.columns.retain(|c| c.name != name);
        }
    }

    /// Changes what the app may do.
    pub fn set_permission(&self, permission: AppPermission) {
        *lock(&self.0.permission) = permission;
    }

    pub(crate) fn permission(&self) -> AppPermission {
        lock(&self.0.permission).clone()
    }

    // ----- faults -----------------------------------------------------------------------------

    /// Applies `fault` to the next `times` requests of route class `route`.
    pub fn inject(&self, route: Route, fault: GraphFault, times: u32) {
        lock(&self.0.faults).add(route, fault, Some(times), false);
    }

    /// Applies `fault` to every request of `route` until [`Graph::clear_faults`].
    pub fn inject_always(&self, route: Route, fault: GraphFault) {
        lock(&self.0.faults).add(route, fault, None, false);
    }

    /// Answers the next delta *continuation* page (a nextLink, not a first page or deltaLink)
    /// with 410 `resyncRequired` and a `Location` that restarts enumeration: the mid-pagination
    /// cursor invalidation of reference §0.3.
    pub fn invalidate_next_delta_page(&self) {
        lock(&self.0.faults).add(Route::Delta, GraphFault::ResyncRequired, Some(1), true);
    }

    /// Makes every delta token issued so far unknown (410 on use), as after a long pause.
    pub fn expire_delta_tokens(&self) {
        self.0.delta_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Faults a random share of requests; `None` stops.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        lock(&self.0.faults).set_chaos(chaos);
    }

    /// When exchange number `after` arrives (counting from the start, sub-requests included),
    /// moves the emulated clock forward by `by`, e.g. past every token's expiry mid-run.
    pub fn advance_clock_at(&self, after: u64, by: time::Duration) {
        lock(&self.0.faults).clock_plan.push((after, by));
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

/// A running Graph emulator: the Microsoft identity platform and Graph on one server, the download
/// host on another. Dereferences to the [`Emulator`] (clock, shared log, token book).
#[derive(Debug)]
pub struct GraphEmulator {
    emulator: Emulator,
    download: RunningServer,
    graph: Graph,
}

impl std::ops::Deref for GraphEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl GraphEmulator {
    pub(crate) fn new(emulator: Emulator, download: RunningServer, graph: Graph) -> Self {
        GraphEmulator {
            emulator,
            download,
            graph,
        }
    }

    /// The tenant's control and inspection handle.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What to configure as the Graph base URL (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn graph_url(&self) -> String {
        self.base_url().as_str().trim_end_matches('/').to_owned()
    }

    /// What to configure as the login base URL (the same server).
    pub fn login_url(&self) -> String {
        self.graph_url()
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

/// Request number an exchange got in [`observe`], for handlers that record sub-exchanges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExchangeNumber(pub u64);

/// The Graph routes (mounted next to the identity provider's).
pub(crate) fn api_routes(graph: Graph) -> Router {
    Router::new()
        .route("/v1.0/{*rest}", axum::routing::any(api::entry))
        .with_state(graph)
}

/// The download host's routes.
pub(crate) fn download_routes(graph: Graph) -> Router {
    download::routes(graph)
}

/// Middleware on both servers: numbers the request, runs the clock plan, injects route-class
/// faults, and records the exchange with what was answered.
pub(crate) async fn observe(
    State((graph, server)): State<(Graph, Server)>,
    request: Request,
    next: Next,
) -> Response {
    let at = Instant::now();
    let emulated = graph.now();
    let (mut parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let n = graph.next_number();
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
        _ => api::classify(&method, &path),
    };
    let key = api::retry_key(&graph, route, &method, &path, &query, &bytes);
    let continuation = route == Route::Delta && api::is_continuation(&path, &query);
    let fault = graph.take_fault(n, route, &key, continuation);
    let mut label = fault.as_ref().map(GraphFault::label);
    let mut truncate = false;
    let response = match fault {
        Some(GraphFault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(GraphFault::Truncated) => {
            truncate = true;
            None
        }
        Some(f) => api::fault_reply(&graph, &f, route, &path, &query).map(|r| r.into_response()),
        None => None,
    };
    let response = match response {
        Some(r) => r,
        None => {
            parts.extensions.insert(ExchangeNumber(n));
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            if truncate {
                let (p, b) = resp.into_parts();
                let full = axum::body::to_bytes(b, usize::MAX)
                    .await
                    .unwrap_or_default();
                let half = full.slice(..full.len() / 2);
                let mut p = p;
                p.headers.remove(axum::http::header::CONTENT_LENGTH);
                Response::from_parts(p, Body::from(half))
            } else {
                resp
            }
        }
    };
    if response.status().as_u16() == 410 && label.is_none() {
        label = Some("410 resync (token)".into());
    }
    let retry_after_secs = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let bytes_out = response
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    graph.record(Exchange {
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
        bytes: bytes_out,
        batch: None,
    });
    response
}
