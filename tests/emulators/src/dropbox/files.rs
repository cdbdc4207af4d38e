//! The Dropbox API v2 file routes (reference §7.2–§7.5), on the same server as the Dropbox
//! identity provider, plus a second loopback server that plays `content.dropboxapi.com`.
//!
//! RPC routes (`POST /2/{route}`, JSON body, `Authorization: Bearer` from this emulator's token
//! endpoint):
//!
//! | route | what it does |
//! |---|---|
//! | `files/list_folder` | `path` (`""` root, `/…`, `id:…`), `recursive`, `include_deleted`, `limit` (1–2000): `{"entries","cursor","has_more"}`; 409 `path/not_found`, `path/not_folder` |
//! | `files/list_folder/continue` | the next page, then changes since the listing (new, changed, `deleted` entries); an invalidated cursor is 409 `reset` |
//! | `files/list_folder/get_latest_cursor` | a cursor that starts from now |
//! | `files/get_metadata` | one entry; the root is a 400, a missing path 409 `path/not_found` |
//! | `file_properties/templates/add_for_user`, `get_for_user`, `list_for_user` | property templates (≤ 32 fields, names ≤ 256 bytes) |
//! | `file_properties/properties/overwrite`, `add`, `update`, `remove` | property groups per file (values ≤ 1024 bytes); 409 per path (`path/not_found`, `template_not_found`, `does_not_fit_template`, `property_field_too_large`, `property_group_already_exists`, `property_group_lookup`) |
//!
//! The content host serves `files/download` (POST, or GET with `?arg=`): the argument in the
//! `Dropbox-API-Arg` header must be JSON in printable ASCII (non-ASCII escaped as `\uXXXX`), a
//! JSON `Content-Type` is refused with Dropbox's 400 text, `Range` is honoured (206,
//! `Content-Range`, 416), and the metadata comes back in `Dropbox-API-Result`.
//!
//! Errors follow reference §7.5: 400 plain text for bad input, 401
//! `expired_access_token`/`invalid_access_token`, 409 route errors with `error_summary`, 429
//! `too_many_requests` with `Retry-After` (and `retry_after` in the body), 5xx. Faults per route
//! class, seeded chaos and a clock that jumps after a number of requests live in
//! [`DbxFault`]/[`Chaos`]; every exchange is recorded with its real arrival time, for
//! Retry-After checks.
//!
//! Unverified behaviours are configurable ([`FilesConfig`]): whether a property write lists the
//! file again in `list_folder/continue` (default yes, the harder case for a client). A deleted
//! folder is reported as one `deleted` entry for the folder, not one per child \[mem\].
//!
//! Test tooling only: tokens, properties and file bytes are held in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::common::faults::{self, mix, recorded};
use crate::common::harness::MAX_BODY_BYTES;
use crate::common::server::RunningServer;
use crate::common::{AccessProblem, Emulator, ErrorReply, Harness, Tokens};

use super::seed;

/// Most entries a `list_folder` page may ask for.
pub const MAX_LIMIT: u64 = 2000;
/// The namespace id of a user (not team) account's root, which is its home.
pub const USER_NAMESPACE_ID: &str = "3235641";
/// Most fields in a property template.
pub const MAX_TEMPLATE_FIELDS: usize = 32;
/// Longest property field name, bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 256;
/// Longest property value, bytes.
pub const MAX_FIELD_VALUE_BYTES: usize = 1024;
/// Block size of Dropbox's content hash.
const HASH_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// What the seeded files are expected to reveal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// GPS position.
    pub gps: bool,
    /// A person's name.
    pub person: bool,
    /// A device serial number.
    pub serial: bool,
}

/// A file to seed.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// Display path (`/Photos/a.jpg`).
    pub path: String,
    /// Bytes.
    pub content: Vec<u8>,
    /// What analysis should find.
    pub expect: Expected,
}

impl FileSpec {
    /// A file at `path`.
    pub fn new(path: &str, content: Vec<u8>, expect: Expected) -> Self {
        FileSpec {
            path: path.to_owned(),
            content,
            expect,
        }
    }
}

/// How the emulated account behaves.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// Files at start (folders are made for their parents).
    pub population: Vec<FileSpec>,
    /// Seed of the id generator.
    pub seed: u64,
    /// A property write lists the file again in `list_folder/continue`. Default true
    /// (unverified; the harder case for a client).
    pub property_writes_in_listing: bool,
    /// The content host honours `Range`. Default true; false answers 200 with everything.
    pub honour_range: bool,
    /// A team account (Dropbox's Namespace and Team Files guides): `population` paths are from
    /// the team space's root, and the member's home folder is one folder in it. `None`: a user
    /// account, whose root is its home.
    pub team: Option<TeamSpace>,
}

/// A member of a team with a team space.
///
/// `users/get_current_account` answers `root_info` `{".tag": "team", "root_namespace_id",
/// "home_namespace_id", "home_path"}`. Calls without a `Dropbox-API-Path-Root` header (or with
/// `{".tag": "home"}`) see the home folder as the root, so `list_folder("")` lists only it;
/// `{".tag": "root", "root": "<root_namespace_id>"}` makes paths relative to the team space's
/// root, where the home folder is `home_path`. Any other namespace is 422 `invalid_root`
/// (which carries the account's `root_info`, as Dropbox's does).
#[derive(Clone, Debug)]
pub struct TeamSpace {
    /// The member's home folder from the team root (`/Alice Smith`).
    pub home_path: String,
    /// The team space's namespace id.
    pub root_namespace_id: String,
    /// The member's home namespace id.
    pub home_namespace_id: String,
}

impl TeamSpace {
    /// `root_info` as `users/get_current_account` returns it.
    pub fn root_info(&self) -> Value {
        json!({".tag": "team", "root_namespace_id": self.root_namespace_id,
            "home_namespace_id": self.home_namespace_id, "home_path": self.home_path})
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            population: seed::default_account(),
            seed: 0xD80B,
            property_writes_in_listing: true,
            honour_range: true,
            team: None,
        }
    }
}

/// The route class a request hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /oauth2/token` and `GET /oauth2/authorize`.
    Token,
    /// `POST /2/users/get_current_account`.
    Account,
    /// `files/list_folder`.
    ListFolder,
    /// `files/list_folder/continue`.
    ListContinue,
    /// `files/list_folder/get_latest_cursor`.
    LatestCursor,
    /// `files/get_metadata`.
    Metadata,
    /// `file_properties/templates/*`.
    Templates,
    /// `file_properties/properties/*`.
    Properties,
    /// `files/download` on the content host.
    Download,
    /// Anything else.
    Other,
}

/// Which server an exchange reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `api.dropboxapi.com` (and the identity provider).
    Api,
    /// `content.dropboxapi.com`.
    Content,
}

/// A fault to inject.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DbxFault {
    /// 429 `too_many_requests` with `Retry-After` (seconds), as reference §7.5 shows it.
    Throttle {
        /// `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// 401 `expired_access_token`.
    ExpiredToken,
    /// A 5xx with an empty body.
    ServerError(u16),
    /// Waits this long (real time), then answers normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with the real body cut in half.
    Truncated,
    /// `list_folder/continue` only: 409 `reset`.
    Reset,
    /// Any reply.
    Reply(ErrorReply),
}

impl DbxFault {
    /// A short label for the traffic record.
    pub fn label(&self) -> String {
        match self {
            DbxFault::Throttle { retry_after_secs } => {
                format!("throttle 429 retry-after {retry_after_secs}")
            }
            DbxFault::ExpiredToken => "expired token".into(),
            DbxFault::ServerError(s) => format!("server error {s}"),
            DbxFault::Slow(d) => format!("slow {} ms", d.as_millis()),
            DbxFault::Malformed => "malformed json".into(),
            DbxFault::Truncated => "truncated json".into(),
            DbxFault::Reset => "409 reset".into(),
            DbxFault::Reply(r) => format!("reply {}", r.status),
        }
    }
}

/// Random faults on a share of requests.
pub type Chaos = faults::Chaos<Route, DbxFault>;

impl faults::Chaos<Route, DbxFault> {
    /// `percent`% of every file route and the content host (not the token endpoint), answered
    /// 429 with `Retry-After: retry_after_secs`, or 500, 502 or 503, each request key at most
    /// once.
    pub fn throttling_and_errors(percent: u8, retry_after_secs: u64, seed: u64) -> Self {
        Chaos {
            percent,
            seed,
            routes: vec![
                Route::Account,
                Route::ListFolder,
                Route::ListContinue,
                Route::Metadata,
                Route::Templates,
                Route::Properties,
                Route::Download,
            ],
            faults: vec![
                DbxFault::Throttle { retry_after_secs },
                DbxFault::Throttle { retry_after_secs },
                DbxFault::ServerError(500),
                DbxFault::ServerError(502),
                DbxFault::ServerError(503),
            ],
            once_per_key: true,
        }
    }
}

/// One request as the emulator received and answered it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Arrival number.
    pub n: u64,
    /// Real arrival time.
    pub at: Instant,
    /// Emulated arrival time.
    pub emulated: OffsetDateTime,
    /// Which server.
    pub server: Server,
    /// Route class.
    pub route: Route,
    /// `POST`, `GET`.
    pub method: String,
    /// Path.
    pub path: String,
    /// What identifies "the same request" for retries: method, path and a digest of the body,
    /// plus the `Dropbox-API-Arg` and `Range` for downloads.
    pub key: String,
    /// Status answered.
    pub status: u16,
    /// `Retry-After` answered, seconds.
    pub retry_after_secs: Option<u64>,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// The `Authorization` header received.
    pub authorization: Option<String>,
    /// The `Range` header received.
    pub range: Option<String>,
    /// The `Dropbox-API-Arg` header received, as sent.
    pub api_arg: Option<String>,
    /// The `Dropbox-API-Path-Root` header received, as sent.
    pub path_root: Option<String>,
    /// The `Content-Type` header received.
    pub content_type: Option<String>,
    /// The request body (RPC arguments).
    pub body: Vec<u8>,
}

recorded!(Exchange);

/// A `Retry-After` the emulator sent, and when the same request came back.
pub type RetryFollowUp = faults::RetryFollowUp<Exchange>;

/// A property write the emulator applied.
#[derive(Clone, Debug)]
pub struct PropertyWrite {
    /// Real time.
    pub at: Instant,
    /// `overwrite`, `add`, `update` or `remove`.
    pub route: String,
    /// The file's id.
    pub file_id: String,
    /// The file's display path.
    pub path: String,
    /// Template.
    pub template_id: String,
    /// The fields set (for `remove`, empty).
    pub fields: BTreeMap<String, String>,
}

/// A file of the account, for assertions.
#[derive(Clone, Debug)]
pub struct DbxFile {
    /// `id:…`.
    pub id: String,
    /// Display path.
    pub path: String,
    /// Lower-cased path.
    pub path_lower: String,
    /// Size in bytes.
    pub size: u64,
    /// `content_hash`.
    pub content_hash: String,
    /// Whether the name has an image extension.
    pub is_image: bool,
    /// What analysis should find.
    pub expect: Expected,
}

/// A property template.
#[derive(Clone, Debug)]
pub struct Template {
    /// `ptid:…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// (name, description) of each field; all strings.
    pub fields: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct Entry {
    id: String,
    path_display: String,
    folder: bool,
    deleted: bool,
    content: Arc<Vec<u8>>,
    rev: String,
    content_hash: String,
    client_modified: OffsetDateTime,
    server_modified: OffsetDateTime,
    seq: u64,
    properties: BTreeMap<String, BTreeMap<String, String>>,
    expect: Expected,
}

#[derive(Clone, Debug)]
struct CursorState {
    /// Lower-cased root path, `""` for the whole account.
    root: String,
    recursive: bool,
    include_deleted: bool,
    limit: usize,
    /// Changes with a higher sequence number come after `pending`.
    high: u64,
    /// Paths of this listing still to be sent.
    pending: Vec<String>,
    epoch: u64,
    /// The path root's folder (lower case, `""` for the account's root) the listing was made
    /// under: stripped from the paths it returns.
    view: String,
}

#[derive(Debug, Default)]
struct Account {
    entries: BTreeMap<String, Entry>,
    seq: u64,
    ids: u64,
    templates: BTreeMap<String, Template>,
    cursors: HashMap<String, CursorState>,
}

/// Rules, chaos state, the clock plan and the request counter.
type FaultBook = faults::FaultBook<Route, DbxFault>;

#[derive(Debug)]
pub(crate) struct Shared {
    config: FilesConfig,
    harness: Harness,
    tokens: Tokens,
    account: Mutex<Account>,
    faults: Mutex<FaultBook>,
    traffic: Mutex<Vec<Exchange>>,
    writes: Mutex<Vec<PropertyWrite>>,
    epoch: AtomicU64,
}

/// The control and inspection handle of an emulated Dropbox account. Clones share state.
#[derive(Clone, Debug)]
pub struct Dropbox(Arc<Shared>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Dropbox's content hash: SHA-256 over the SHA-256 of each 4 MiB block, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut outer = Sha256::new();
    for block in bytes.chunks(HASH_BLOCK_BYTES) {
        outer.update(Sha256::digest(block));
    }
    hex::encode(outer.finalize())
}

/// Dropbox's timestamp form, `2026-01-02T03:04:05Z`.
fn timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// JSON with every character outside printable ASCII escaped as `\uXXXX`, as Dropbox writes
/// `Dropbox-API-Result`.
fn ascii_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

fn parent_of(path_lower: &str) -> Option<&str> {
    path_lower.rfind('/').map(|i| &path_lower[..i])
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_image_name(name: &str) -> bool {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        ext.as_str(),
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "tif" | "tiff" | "heic" | "heif" | "avif"
    )
}

impl Account {
    fn next_id(&mut self, seed: u64) -> String {
        self.ids += 1;
        let mut z = mix(seed ^ self.ids);
        let mut id = String::from("id:");
        for i in 0..22 {
            if i == 11 {
                z = mix(z);
            }
            id.push(ID_ALPHABET[(z % 64) as usize] as char);
            z /= 64;
        }
        id
    }

    fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn rev(seq: u64) -> String {
        format!("{:015x}", 0x5ee0_0000_0000_u64 + seq)
    }

    /// Makes the folders above `path_display`.
    fn ensure_parents(&mut self, path_display: &str, seed: u64, now: OffsetDateTime) {
        let mut prefix = String::new();
        let segments: Vec<&str> = path_display.split('/').filter(|s| !s.is_empty()).collect();
        for seg in segments.iter().take(segments.len().saturating_sub(1)) {
            prefix.push('/');
            prefix.push_str(seg);
            let lower = prefix.to_lowercase();
            if self.entries.get(&lower).is_some_and(|e| !e.deleted) {
                continue;
            }
            let id = self.next_id(seed);
            let seq = self.bump();
            self.entries.insert(
                lower,
                Entry {
                    id,
                    path_display: prefix.clone(),
                    folder: true,
                    deleted: false,
                    content: Arc::new(Vec::new()),
                    rev: String::new(),
                    content_hash: String::new(),
                    client_modified: now,
                    server_modified: now,
                    seq,
                    properties: BTreeMap::new(),
                    expect: Expected::default(),
                },
            );
        }
    }

    fn add_file(&mut self, spec: &FileSpec, seed: u64, now: OffsetDateTime) -> String {
        self.ensure_parents(&spec.path, seed, now);
        let lower = spec.path.to_lowercase();
        let id = self.next_id(seed);
        let seq = self.bump();
        self.entries.insert(
            lower,
            Entry {
                id: id.clone(),
                path_display: spec.path.clone(),
                folder: false,
                deleted: false,
                content_hash: content_hash(&spec.content),
                content: Arc::new(spec.content.clone()),
                rev: Self::rev(seq),
                client_modified: now,
                server_modified: now,
                seq,
                properties: BTreeMap::new(),
                expect: spec.expect.clone(),
            },
        );
        id
    }

    /// Resolves `""`, `/path` or `id:…` to a live entry's key.
    fn resolve(&self, path: &str) -> Option<String> {
        if path.starts_with("id:") {
            return self
                .entries
                .iter()
                .find(|(_, e)| e.id == path && !e.deleted)
                .map(|(k, _)| k.clone());
        }
        let lower = path.to_lowercase();
        self.entries
            .get(&lower)
            .filter(|e| !e.deleted)
            .map(|_| lower)
    }

    fn metadata(&self, key: &str) -> Value {
        let Some(e) = self.entries.get(key) else {
            return Value::Null;
        };
        let name = name_of(&e.path_display);
        if e.deleted {
            return json!({".tag": "deleted", "name": name, "path_lower": key, "path_display": e.path_display});
        }
        if e.folder {
            return json!({".tag": "folder", "name": name, "path_lower": key, "path_display": e.path_display, "id": e.id});
        }
        let mut m = json!({
            ".tag": "file", "name": name, "path_lower": key, "path_display": e.path_display,
            "id": e.id, "client_modified": timestamp(e.client_modified),
            "server_modified": timestamp(e.server_modified), "rev": e.rev,
            "size": e.content.len(), "is_downloadable": true, "content_hash": e.content_hash,
        });
        if !e.properties.is_empty() {
            m["has_explicit_shared_members"] = json!(false);
        }
        m
    }

    /// [`Account::metadata`] with paths relative to the path root folder `view`.
    fn metadata_in(&self, key: &str, view: &str) -> Value {
        let mut m = self.metadata(key);
        if !view.is_empty() {
            for field in ["path_lower", "path_display"] {
                if let Some(p) = m[field].as_str() {
                    let rest = p.get(view.len()..).unwrap_or_default().to_owned();
                    m[field] = json!(rest);
                }
            }
        }
        m
    }

    fn under(root: &str, recursive: bool, key: &str) -> bool {
        if root.is_empty() {
            return recursive || parent_of(key) == Some("");
        }
        if key == root {
            return recursive;
        }
        match key.strip_prefix(root) {
            Some(rest) if rest.starts_with('/') => recursive || parent_of(key) == Some(root),
            _ => false,
        }
    }
}

impl Dropbox {
    pub(crate) fn new(config: FilesConfig, harness: Harness, tokens: Tokens) -> Self {
        let now = harness.clock.now();
        let mut account = Account::default();
        if let Some(team) = &config.team {
            // The home folder exists even when nothing is in it.
            account.ensure_parents(&format!("{}/x", team.home_path), config.seed, now);
        }
        for spec in &config.population {
            account.add_file(spec, config.seed, now);
        }
        Dropbox(Arc::new(Shared {
            config,
            harness,
            tokens,
            account: Mutex::new(account),
            faults: Mutex::default(),
            traffic: Mutex::default(),
            writes: Mutex::default(),
            epoch: AtomicU64::new(1),
        }))
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        lock(&self.0.account)
    }

    /// The folder a request's `Dropbox-API-Path-Root` makes its root (see [`TeamSpace`]).
    fn view(&self, headers: &HeaderMap) -> Result<String, Box<Response>> {
        let header = headers
            .get("dropbox-api-path-root")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        path_root_view(self.0.config.team.as_ref(), header.as_deref())
    }

    /// `root_info` of `users/get_current_account`.
    pub fn root_info(&self) -> Value {
        match &self.0.config.team {
            Some(t) => t.root_info(),
            None => json!({".tag": "user", "root_namespace_id": USER_NAMESPACE_ID,
                "home_namespace_id": USER_NAMESPACE_ID}),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.0.harness.clock.now()
    }

    // ----- inspection -------------------------------------------------------------------------

    /// Every live file, in path order.
    pub fn files(&self) -> Vec<DbxFile> {
        self.account()
            .entries
            .iter()
            .filter(|(_, e)| !e.folder && !e.deleted)
            .map(|(k, e)| DbxFile {
                id: e.id.clone(),
                path: e.path_display.clone(),
                path_lower: k.clone(),
                size: e.content.len() as u64,
                content_hash: e.content_hash.clone(),
                is_image: is_image_name(&e.path_display),
                expect: e.expect.clone(),
            })
            .collect()
    }

    /// The live file at `path` (any case) or with id `id:…`.
    pub fn file(&self, path: &str) -> Option<DbxFile> {
        let key = self.account().resolve(path)?;
        self.files().into_iter().find(|f| f.path_lower == key)
    }

    /// Image files below `folder` (`""` for all).
    pub fn images_under(&self, folder: &str) -> Vec<DbxFile> {
        let root = folder.to_lowercase();
        self.files()
            .into_iter()
            .filter(|f| f.is_image && Account::under(&root, true, &f.path_lower))
            .collect()
    }

    /// A file's property groups: template id → field → value.
    pub fn properties(&self, path: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let a = self.account();
        a.resolve(path)
            .and_then(|k| a.entries.get(&k))
            .map(|e| e.properties.clone())
            .unwrap_or_default()
    }

    /// Every property template.
    pub fn templates(&self) -> Vec<Template> {
        self.account().templates.values().cloned().collect()
    }

    /// Every property write applied, oldest first.
    pub fn property_writes(&self) -> Vec<PropertyWrite> {
        lock(&self.0.writes).clone()
    }

    /// Property writes per file id.
    pub fn writes_per_file(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for w in self.property_writes() {
            *m.entry(w.file_id).or_default() += 1;
        }
        m
    }

    /// Every exchange, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.0.traffic).clone()
    }

    /// Every `Retry-After` sent (on 429 and 503), each with the next exchange of the same key.
    pub fn retry_follow_ups(&self) -> Vec<RetryFollowUp> {
        faults::follow_ups(&self.exchanges(), &[429, 503])
    }

    /// Forgets recorded exchanges and property writes.
    pub fn clear_traffic(&self) {
        lock(&self.0.traffic).clear();
        lock(&self.0.writes).clear();
    }

    // ----- changes ----------------------------------------------------------------------------

    /// Adds a file (and its folders); returns its id.
    pub fn add_file(&self, spec: FileSpec) -> String {
        let now = self.now();
        self.account().add_file(&spec, self.0.config.seed, now)
    }

    /// Replaces a file's bytes: a new rev and content hash, listed as changed.
    pub fn replace_content(&self, path: &str, content: Vec<u8>) -> bool {
        let now = self.now();
        let mut a = self.account();
        let Some(key) = a.resolve(path) else {
            return false;
        };
        let seq = a.bump();
        let Some(e) = a.entries.get_mut(&key) else {
            return false;
        };
        e.content_hash = content_hash(&content);
        e.content = Arc::new(content);
        e.rev = Account::rev(seq);
        e.server_modified = now;
        e.seq = seq;
        true
    }

    /// Deletes a file or a folder (with everything below it); listed as one `deleted` entry.
    pub fn delete(&self, path: &str) -> bool {
        let mut a = self.account();
        let Some(key) = a.resolve(path) else {
            return false;
        };
        let seq = a.bump();
        let below = format!("{key}/");
        a.entries.retain(|k, _| !k.starts_with(&below));
        if let Some(e) = a.entries.get_mut(&key) {
            e.deleted = true;
            e.seq = seq;
            e.properties.clear();
        }
        true
    }

    /// Creates a property template as this app; returns its id.
    pub fn add_template(&self, name: &str, fields: &[&str]) -> String {
        let mut a = self.account();
        let id = format!("ptid:{}", &a.next_id(self.0.config.seed ^ 0x7E)[3..]);
        a.templates.insert(
            id.clone(),
            Template {
                id: id.clone(),
                name: name.to_owned(),
                description: String::new(),
                fields: fields
                    .iter()
                    .map(|f| ((*f).to_owned(), String::new()))
                    .collect(),
            },
        );
        id
    }

    /// Removes a property template and every property group of it.
    pub fn remove_template(&self, id: &str) -> bool {
        let mut a = self.account();
        for e in a.entries.values_mut() {
            e.properties.remove(id);
        }
        a.templates.remove(id).is_some()
    }

    /// Makes every cursor issued so far answer 409 `reset`, as after a long pause.
    pub fn expire_cursors(&self) {
        self.0.epoch.fetch_add(1, Ordering::SeqCst);
    }

    // ----- faults -----------------------------------------------------------------------------

    /// Applies `fault` to the next `times` requests of route class `route`.
    pub fn inject(&self, route: Route, fault: DbxFault, times: u32) {
        self.inject_after(route, 0, fault, times);
    }

    /// Lets `skip` requests of `route` through, then applies `fault` to the next `times`.
    pub fn inject_after(&self, route: Route, skip: u32, fault: DbxFault, times: u32) {
        lock(&self.0.faults).add_after(route, fault, Some(times), false, skip);
    }

    /// Applies `fault` to every request of `route` until [`Dropbox::clear_faults`].
    pub fn inject_always(&self, route: Route, fault: DbxFault) {
        lock(&self.0.faults).add(route, fault, None, false);
    }

    /// Answers the next `list_folder/continue` with 409 `reset`: the mid-pagination cursor
    /// invalidation of reference §0.3.
    pub fn reset_next_continue(&self) {
        self.inject(Route::ListContinue, DbxFault::Reset, 1);
    }

    /// Faults a random share of requests; `None` stops.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        lock(&self.0.faults).set_chaos(chaos);
    }

    /// When exchange number `after` arrives (counting from the start), moves the emulated clock
    /// forward by `by`, e.g. past every token's expiry mid-run.
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

    fn next_number(&self) -> u64 {
        let (n, due) = lock(&self.0.faults).next_number();
        for by in due {
            self.0.harness.clock.advance(by);
        }
        n
    }

    fn record(&self, exchange: Exchange) {
        faults::record(&mut lock(&self.0.traffic), exchange);
    }
}

/// A running Dropbox emulator: the identity provider and the API on one server, the content
/// host on another. Dereferences to the [`Emulator`] (clock, shared log, token book).
#[derive(Debug)]
pub struct DropboxEmulator {
    emulator: Emulator,
    content: RunningServer,
    dropbox: Dropbox,
}

impl std::ops::Deref for DropboxEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl DropboxEmulator {
    pub(crate) fn new(emulator: Emulator, content: RunningServer, dropbox: Dropbox) -> Self {
        DropboxEmulator {
            emulator,
            content,
            dropbox,
        }
    }

    /// The account's control and inspection handle.
    pub fn dropbox(&self) -> &Dropbox {
        &self.dropbox
    }

    /// What to configure as the API base URL (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn api_url(&self) -> String {
        self.base_url().as_str().trim_end_matches('/').to_owned()
    }

    /// What to configure as the website (authorize) base URL: the same server.
    pub fn www_url(&self) -> String {
        self.api_url()
    }

    /// The content host (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn content_url(&self) -> String {
        self.content
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }
}

// ----- replies --------------------------------------------------------------------------------

fn route_error(status: u16, summary: &str, error: Value) -> Response {
    ErrorReply::json(
        status,
        json!({"error_summary": format!("{summary}/.."), "error": error}),
    )
    .into_response()
}

fn path_error(inner: &str) -> Response {
    route_error(
        409,
        &format!("path/{inner}"),
        json!({".tag": "path", "path": {".tag": inner}}),
    )
}

fn simple_error(tag: &str) -> Response {
    route_error(409, tag, json!({".tag": tag}))
}

fn bad_input_reply(route: &str, what: &str) -> ErrorReply {
    ErrorReply::text(
        400,
        format!("Error in call to API function \"{route}\": {what}"),
    )
}

fn bad_input(route: &str, what: &str) -> Response {
    bad_input_reply(route, what).into_response()
}

fn throttle_reply(retry_after_secs: u64) -> ErrorReply {
    ErrorReply::json(
        429,
        json!({"error_summary": "too_many_requests/..",
               "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after_secs}}),
    )
    .with_header("retry-after", &retry_after_secs.to_string())
}

fn expired_reply() -> ErrorReply {
    ErrorReply::json(
        401,
        json!({"error_summary": "expired_access_token/..", "error": {".tag": "expired_access_token"}}),
    )
}

fn fault_reply(fault: &DbxFault, route: Route) -> Option<Response> {
    Some(match fault {
        DbxFault::Throttle { retry_after_secs } => {
            throttle_reply(*retry_after_secs).into_response()
        }
        DbxFault::ExpiredToken => expired_reply().into_response(),
        DbxFault::ServerError(s) => ErrorReply::empty(*s).into_response(),
        DbxFault::Malformed => (
            axum::http::StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            "{\"entries\": [ {\".tag\": \"file\", \"name\": ",
        )
            .into_response(),
        DbxFault::Reset if route == Route::ListContinue => simple_error("reset"),
        DbxFault::Reply(r) => r.clone().into_response(),
        DbxFault::Reset | DbxFault::Slow(_) | DbxFault::Truncated => return None,
    })
}

// ----- routing --------------------------------------------------------------------------------

fn classify(server: Server, path: &str) -> Route {
    if server == Server::Content {
        return Route::Download;
    }
    match path {
        "/oauth2/token" | "/oauth2/authorize" => Route::Token,
        "/2/users/get_current_account" => Route::Account,
        "/2/files/list_folder" => Route::ListFolder,
        "/2/files/list_folder/continue" => Route::ListContinue,
        "/2/files/list_folder/get_latest_cursor" => Route::LatestCursor,
        "/2/files/get_metadata" => Route::Metadata,
        p if p.starts_with("/2/file_properties/templates/") => Route::Templates,
        p if p.starts_with("/2/file_properties/properties/") => Route::Properties,
        _ => Route::Other,
    }
}

/// The API routes (mounted next to the identity provider's).
pub(crate) fn api_routes(dropbox: Dropbox) -> Router {
    Router::new()
        .route("/2/files/{*route}", axum::routing::any(rpc))
        .route("/2/file_properties/{*route}", axum::routing::any(rpc))
        .with_state(dropbox)
}

/// The content host's routes.
pub(crate) fn content_routes(dropbox: Dropbox) -> Router {
    Router::new()
        .route("/2/files/download", axum::routing::any(download))
        .with_state(dropbox)
}

/// Middleware on both servers: numbers the request, runs the clock plan, injects route-class
/// faults, and records the exchange with what was answered.
pub(crate) async fn observe(
    State((dropbox, server)): State<(Dropbox, Server)>,
    request: Request,
    next: Next,
) -> Response {
    let at = Instant::now();
    let emulated = dropbox.now();
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let n = dropbox.next_number();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let authorization = header("authorization");
    let range = header("range");
    let api_arg = header("dropbox-api-arg");
    let path_root = header("dropbox-api-path-root");
    let content_type = header("content-type");
    let route = classify(server, &path);
    let key = format!(
        "{method} {path} {} {} {}",
        hex::encode(Sha256::digest(&bytes)),
        api_arg.as_deref().unwrap_or_default(),
        range.as_deref().unwrap_or_default()
    );
    let fault = lock(&dropbox.0.faults).take(n, route, &key, false);
    let label = fault.as_ref().map(DbxFault::label);
    let mut truncate = false;
    let response = match &fault {
        Some(DbxFault::Slow(d)) => {
            tokio::time::sleep(*d).await;
            None
        }
        Some(DbxFault::Truncated) => {
            truncate = true;
            None
        }
        Some(f) => fault_reply(f, route),
        None => None,
    };
    let response = match response {
        Some(r) => r,
        None => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes.clone())))
                .await;
            if truncate {
                let (mut p, b) = resp.into_parts();
                let full = axum::body::to_bytes(b, usize::MAX)
                    .await
                    .unwrap_or_default();
                let half = full.slice(..full.len() / 2);
                p.headers.remove(axum::http::header::CONTENT_LENGTH);
                Response::from_parts(p, Body::from(half))
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
    dropbox.record(Exchange {
        n,
        at,
        emulated,
        server,
        route,
        method,
        path,
        key,
        status: response.status().as_u16(),
        retry_after_secs,
        fault: label,
        authorization,
        range,
        api_arg,
        path_root,
        content_type,
        body: bytes.to_vec(),
    });
    response
}

/// Checks the bearer token; the 401 body Dropbox sends when it is not good.
fn authorize(dropbox: &Dropbox, headers: &HeaderMap) -> Result<(), ErrorReply> {
    let token = crate::common::bearer(headers, false).unwrap_or_default();
    match dropbox.0.tokens.check_access(&token, dropbox.now()) {
        Ok(_) => Ok(()),
        Err(AccessProblem::Expired) => Err(expired_reply()),
        Err(_) => Err(ErrorReply::json(
            401,
            json!({"error_summary": "invalid_access_token/..", "error": {".tag": "invalid_access_token"}}),
        )),
    }
}

async fn rpc(
    State(dropbox): State<Dropbox>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = uri.path().trim_start_matches("/2/").to_owned();
    if method != Method::POST {
        return bad_input(&route, "Only POST is supported for RPC routes");
    }
    if let Err(r) = authorize(&dropbox, &headers) {
        return r.into_response();
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !body.is_empty()
        && !matches!(
            content_type.as_str(),
            "application/json"
                | "application/json; charset=utf-8"
                | "text/plain; charset=dropbox-cors-hack"
        )
    {
        return bad_input(
            &route,
            &format!(
                "Bad HTTP \"Content-Type\" header: \"{content_type}\".  Expecting one of \"application/json\", \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\"."
            ),
        );
    }
    let args: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return bad_input(&route, "request body: could not decode input as JSON"),
        }
    };
    let view = match dropbox.view(&headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let args = in_view(args, &view);
    match route.as_str() {
        "files/list_folder" | "files/list_folder/get_latest_cursor" if !view.is_empty() => {
            list_folder_in(&dropbox, &route, &args, route.ends_with("cursor"), &view)
        }
        "files/get_metadata" if !view.is_empty() => get_metadata_in(&dropbox, &route, &args, &view),
        "files/list_folder" => list_folder(&dropbox, &route, &args, false),
        "files/list_folder/get_latest_cursor" => list_folder(&dropbox, &route, &args, true),
        "files/list_folder/continue" => list_continue(&dropbox, &route, &args),
        "files/get_metadata" => get_metadata(&dropbox, &route, &args),
        "file_properties/templates/add_for_user" => add_template(&dropbox, &route, &args),
        "file_properties/templates/get_for_user" => get_template(&dropbox, &route, &args),
        "file_properties/templates/list_for_user" => {
            let ids: Vec<String> = dropbox.account().templates.keys().cloned().collect();
            axum::Json(json!({"template_ids": ids})).into_response()
        }
        "file_properties/properties/overwrite"
        | "file_properties/properties/add"
        | "file_properties/properties/update"
        | "file_properties/properties/remove" => properties(&dropbox, &route, &args),
        _ => ErrorReply::text(404, format!("Unknown API function: \"{route}\"")).into_response(),
    }
}

/// Checks a `path` argument's form; `Err` is the 400 Dropbox sends.
fn path_arg(route: &str, args: &Value) -> Result<String, ErrorReply> {
    let Some(path) = args.get("path").and_then(Value::as_str) else {
        return Err(bad_input_reply(
            route,
            "request body: missing required field 'path'",
        ));
    };
    if path == "/" {
        return Err(bad_input_reply(
            route,
            "request body: path: Specify the root folder as an empty string rather than as \"/\".",
        ));
    }
    if !(path.is_empty() || path.starts_with('/') || path.starts_with("id:")) {
        return Err(bad_input_reply(
            route,
            &format!(
                "request body: path: '{path}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'"
            ),
        ));
    }
    Ok(path.to_owned())
}

fn list_folder(dropbox: &Dropbox, route: &str, args: &Value, latest: bool) -> Response {
    list_folder_in(dropbox, route, args, latest, "")
}

/// The folder of a path root (lower case, `""` for the account's root), or the 422 Dropbox
/// sends for a root the account may not use.
fn path_root_view(team: Option<&TeamSpace>, header: Option<&str>) -> Result<String, Box<Response>> {
    let home = |t: &TeamSpace| t.home_path.to_lowercase();
    let Some(raw) = header else {
        return Ok(team.map(home).unwrap_or_default());
    };
    let invalid = |info: Value| {
        route_error(
            422,
            "invalid_root/..",
            json!({".tag": "invalid_root", "invalid_root": info}),
        )
    };
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Err(Box::new(bad_input(
            "path_root",
            "HTTP header \"Dropbox-API-Path-Root\": could not decode input as JSON",
        )));
    };
    match (v[".tag"].as_str(), team) {
        (Some("home"), t) => Ok(t.map(home).unwrap_or_default()),
        (Some("root" | "namespace_id"), Some(t)) => {
            let id = v["root"]
                .as_str()
                .or(v["namespace_id"].as_str())
                .unwrap_or("");
            if id == t.root_namespace_id {
                Ok(String::new())
            } else if id == t.home_namespace_id {
                Ok(home(t))
            } else {
                Err(Box::new(invalid(t.root_info())))
            }
        }
        (Some("root" | "namespace_id"), None) => {
            let id = v["root"]
                .as_str()
                .or(v["namespace_id"].as_str())
                .unwrap_or("");
            if id == USER_NAMESPACE_ID {
                Ok(String::new())
            } else {
                Err(Box::new(invalid(
                    json!({".tag": "user", "root_namespace_id": USER_NAMESPACE_ID,
                    "home_namespace_id": USER_NAMESPACE_ID}),
                )))
            }
        }
        _ => Err(Box::new(bad_input(
            "path_root",
            "HTTP header \"Dropbox-API-Path-Root\": unknown tag",
        ))),
    }
}

/// `args` with a `/…` or `""` `path` made absolute from the account's root under `view`.
fn in_view(mut args: Value, view: &str) -> Value {
    if view.is_empty() {
        return args;
    }
    if let Some(p) = args.get("path").and_then(Value::as_str)
        && (p.is_empty() || p.starts_with('/'))
    {
        let full = format!("{view}{p}");
        args["path"] = json!(full);
    }
    args
}

fn get_metadata_in(dropbox: &Dropbox, route: &str, args: &Value, view: &str) -> Response {
    let path = match path_arg(route, args) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let a = dropbox.account();
    match a.resolve(&path) {
        Some(k) if k.as_str() != view => axum::Json(a.metadata_in(&k, view)).into_response(),
        _ => path_error("not_found"),
    }
}

fn list_folder_in(
    dropbox: &Dropbox,
    route: &str,
    args: &Value,
    latest: bool,
    view: &str,
) -> Response {
    let path = match path_arg(route, args) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let limit = match args.get("limit") {
        None | Some(Value::Null) => MAX_LIMIT,
        Some(v) => match v.as_u64() {
            Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
            _ => {
                return bad_input(
                    route,
                    &format!("request body: limit: {v} is not within the range [1, {MAX_LIMIT}]"),
                );
            }
        },
    };
    let flag = |name: &str| args.get(name).and_then(Value::as_bool).unwrap_or(false);
    let mut a = dropbox.account();
    let root = if path.is_empty() {
        String::new()
    } else {
        match a.resolve(&path) {
            None => return path_error("not_found"),
            Some(k) if !a.entries.get(&k).is_some_and(|e| e.folder) => {
                return path_error("not_folder");
            }
            Some(k) => k,
        }
    };
    let recursive = flag("recursive");
    let include_deleted = flag("include_deleted");
    let pending: Vec<String> = if latest {
        Vec::new()
    } else {
        a.entries
            .iter()
            .filter(|(k, e)| {
                k.as_str() != view
                    && Account::under(&root, recursive, k)
                    && (include_deleted || !e.deleted)
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    let state = CursorState {
        root,
        recursive,
        include_deleted,
        limit: limit as usize,
        high: a.seq,
        pending,
        epoch: dropbox.0.epoch.load(Ordering::SeqCst),
        view: view.to_owned(),
    };
    if latest {
        let cursor = mint_cursor(&mut a, state);
        return axum::Json(json!({"cursor": cursor})).into_response();
    }
    page(&mut a, state)
}

fn mint_cursor(a: &mut Account, state: CursorState) -> String {
    let token = crate::common::tokens::random_token("AAE", 90);
    a.cursors.insert(token.clone(), state);
    token
}

/// Sends the next `limit` pending entries; with none pending, first gathers the changes.
fn page(a: &mut Account, mut state: CursorState) -> Response {
    if state.pending.is_empty() {
        let high = state.high;
        let mut changed: Vec<(u64, String)> = a
            .entries
            .iter()
            .filter(|(k, e)| {
                e.seq > high
                    && k.as_str() != state.view
                    && Account::under(&state.root, state.recursive, k)
            })
            .map(|(k, e)| (e.seq, k.clone()))
            .collect();
        changed.sort();
        state.pending = changed.into_iter().map(|(_, k)| k).collect();
        state.high = a.seq;
    }
    let take = state.limit.min(state.pending.len());
    let now: Vec<String> = state.pending.drain(..take).collect();
    let entries: Vec<Value> = now
        .iter()
        .map(|k| a.metadata_in(k, &state.view))
        .filter(|m| !m.is_null())
        .collect();
    let has_more = !state.pending.is_empty();
    let cursor = mint_cursor(a, state);
    axum::Json(json!({"entries": entries, "cursor": cursor, "has_more": has_more})).into_response()
}

fn list_continue(dropbox: &Dropbox, route: &str, args: &Value) -> Response {
    let Some(cursor) = args.get("cursor").and_then(Value::as_str) else {
        return bad_input(route, "request body: missing required field 'cursor'");
    };
    let mut a = dropbox.account();
    let Some(state) = a.cursors.get(cursor).cloned() else {
        return bad_input(route, "request body: cursor: invalid cursor");
    };
    if state.epoch != dropbox.0.epoch.load(Ordering::SeqCst) {
        return simple_error("reset");
    }
    if !state.root.is_empty() && a.entries.get(&state.root).is_none_or(|e| e.deleted) {
        return path_error("not_found");
    }
    let _ = state.include_deleted;
    page(&mut a, state)
}

fn get_metadata(dropbox: &Dropbox, route: &str, args: &Value) -> Response {
    let path = match path_arg(route, args) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    if path.is_empty() {
        return bad_input(route, "request body: path: The root folder is unsupported.");
    }
    let a = dropbox.account();
    match a.resolve(&path) {
        Some(k) => axum::Json(a.metadata(&k)).into_response(),
        None => path_error("not_found"),
    }
}

fn add_template(dropbox: &Dropbox, route: &str, args: &Value) -> Response {
    let Some(name) = args.get("name").and_then(Value::as_str) else {
        return bad_input(route, "request body: missing required field 'name'");
    };
    let description = args
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(fields) = args.get("fields").and_then(Value::as_array) else {
        return bad_input(route, "request body: missing required field 'fields'");
    };
    if fields.len() > MAX_TEMPLATE_FIELDS {
        return simple_error("too_many_properties");
    }
    let mut parsed: Vec<(String, String)> = Vec::new();
    for f in fields {
        let Some(fname) = f.get("name").and_then(Value::as_str) else {
            return bad_input(route, "request body: fields: missing required field 'name'");
        };
        let ty = f
            .get("type")
            .and_then(|t| t.as_str().or_else(|| t.get(".tag").and_then(Value::as_str)));
        if ty != Some("string") {
            return bad_input(route, "request body: fields: type: unknown tag");
        }
        if fname.len() > MAX_FIELD_NAME_BYTES || name.len() > MAX_FIELD_NAME_BYTES {
            return simple_error("template_attribute_too_large");
        }
        if parsed.iter().any(|(n, _)| n == fname) {
            return simple_error("conflicting_property_names");
        }
        let d = f
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        parsed.push((fname.to_owned(), d.to_owned()));
    }
    let mut a = dropbox.account();
    let id = format!("ptid:{}", &a.next_id(dropbox.0.config.seed ^ 0x7E)[3..]);
    a.templates.insert(
        id.clone(),
        Template {
            id: id.clone(),
            name: name.to_owned(),
            description: description.to_owned(),
            fields: parsed,
        },
    );
    axum::Json(json!({"template_id": id})).into_response()
}

fn template_not_found(id: &str) -> Response {
    route_error(
        409,
        "template_not_found",
        json!({".tag": "template_not_found", "template_not_found": id}),
    )
}

fn get_template(dropbox: &Dropbox, route: &str, args: &Value) -> Response {
    let Some(id) = args.get("template_id").and_then(Value::as_str) else {
        return bad_input(route, "request body: missing required field 'template_id'");
    };
    let a = dropbox.account();
    match a.templates.get(id) {
        Some(t) => axum::Json(json!({
            "name": t.name, "description": t.description,
            "fields": t.fields.iter().map(|(n, d)| json!({"name": n, "description": d, "type": {".tag": "string"}})).collect::<Vec<_>>(),
        }))
        .into_response(),
        None => template_not_found(id),
    }
}

/// Parses `[{"name","value"}]`.
fn field_list(v: Option<&Value>) -> Option<Vec<(String, String)>> {
    let list = v?.as_array()?;
    list.iter()
        .map(|f| {
            Some((
                f.get("name")?.as_str()?.to_owned(),
                f.get("value")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// (template id, fields to set, fields to remove) of one property group.
type GroupChange = (String, Vec<(String, String)>, Vec<String>);

fn properties(dropbox: &Dropbox, route: &str, args: &Value) -> Response {
    let path = match path_arg(route, args) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let op = route.rsplit('/').next().unwrap_or_default().to_owned();
    let mut a = dropbox.account();
    let Some(key) = a.resolve(&path).filter(|_| !path.is_empty()) else {
        return path_error("not_found");
    };
    let mut groups: Vec<GroupChange> = Vec::new();
    match op.as_str() {
        "overwrite" | "add" => {
            let Some(list) = args.get("property_groups").and_then(Value::as_array) else {
                return bad_input(
                    route,
                    "request body: missing required field 'property_groups'",
                );
            };
            for g in list {
                let (Some(t), Some(fields)) = (
                    g.get("template_id").and_then(Value::as_str),
                    field_list(g.get("fields")),
                ) else {
                    return bad_input(route, "request body: property_groups: bad group");
                };
                groups.push((t.to_owned(), fields, Vec::new()));
            }
        }
        "update" => {
            let Some(list) = args.get("update_property_groups").and_then(Value::as_array) else {
                return bad_input(
                    route,
                    "request body: missing required field 'update_property_groups'",
                );
            };
            for g in list {
                let Some(t) = g.get("template_id").and_then(Value::as_str) else {
                    return bad_input(route, "request body: update_property_groups: bad group");
                };
                let set = field_list(g.get("add_or_update_fields")).unwrap_or_default();
                let remove: Vec<String> = g
                    .get("remove_fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                groups.push((t.to_owned(), set, remove));
            }
        }
        _ => {
            let Some(list) = args.get("property_template_ids").and_then(Value::as_array) else {
                return bad_input(
                    route,
                    "request body: missing required field 'property_template_ids'",
                );
            };
            for t in list.iter().filter_map(Value::as_str) {
                groups.push((t.to_owned(), Vec::new(), Vec::new()));
            }
        }
    }
    let mut seen = HashSet::new();
    for (t, fields, _) in &groups {
        if !seen.insert(t.clone()) {
            return simple_error("duplicate_property_groups");
        }
        let Some(template) = a.templates.get(t) else {
            return template_not_found(t);
        };
        for (name, value) in fields {
            if !template.fields.iter().any(|(n, _)| n == name) {
                return simple_error("does_not_fit_template");
            }
            if value.len() > MAX_FIELD_VALUE_BYTES || name.len() > MAX_FIELD_NAME_BYTES {
                return simple_error("property_field_too_large");
            }
        }
        let exists = a
            .entries
            .get(&key)
            .is_some_and(|e| e.properties.contains_key(t));
        match op.as_str() {
            "add" if exists => return simple_error("property_group_already_exists"),
            "update" | "remove" if !exists => {
                return route_error(
                    409,
                    "property_group_lookup/property_group_not_found",
                    json!({".tag": "property_group_lookup", "property_group_lookup": {".tag": "property_group_not_found"}}),
                );
            }
            _ => {}
        }
    }
    let seq = if dropbox.0.config.property_writes_in_listing {
        Some(a.bump())
    } else {
        None
    };
    let Some(e) = a.entries.get_mut(&key) else {
        return path_error("not_found");
    };
    let mut writes = Vec::new();
    for (t, fields, remove) in groups {
        match op.as_str() {
            "overwrite" | "add" => {
                e.properties
                    .insert(t.clone(), fields.iter().cloned().collect());
            }
            "update" => {
                let g = e.properties.entry(t.clone()).or_default();
                for r in &remove {
                    g.remove(r);
                }
                for (n, v) in &fields {
                    g.insert(n.clone(), v.clone());
                }
            }
            _ => {
                e.properties.remove(&t);
            }
        }
        writes.push(PropertyWrite {
            at: Instant::now(),
            route: op.clone(),
            file_id: e.id.clone(),
            path: e.path_display.clone(),
            template_id: t,
            fields: fields.into_iter().collect(),
        });
    }
    if let Some(seq) = seq {
        e.seq = seq;
    }
    drop(a);
    lock(&dropbox.0.writes).extend(writes);
    axum::Json(Value::Null).into_response()
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a length: `Some(Ok((start, end)))` inclusive,
/// `Some(Err(()))` unsatisfiable, `None` no usable range (serve everything).
fn parse_range(header: Option<&str>, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || len == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len - 1)
        }
        (s, "") => (s.parse().ok()?, len.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            if e < s {
                return None;
            }
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

async fn download(
    State(dropbox): State<Dropbox>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    const ROUTE: &str = "files/download";
    if method != Method::POST && method != Method::GET {
        return bad_input(ROUTE, "Only POST and GET are supported");
    }
    if let Err(r) = authorize(&dropbox, &headers) {
        return r.into_response();
    }
    if let Some(ct) = headers.get("content-type") {
        let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
        if !ct.is_empty()
            && ct != "application/octet-stream"
            && ct != "text/plain; charset=dropbox-cors-hack"
        {
            return bad_input(
                ROUTE,
                &format!(
                    "Bad HTTP \"Content-Type\" header: \"{ct}\".  Expecting one of \"application/octet-stream\", \"text/plain; charset=dropbox-cors-hack\"."
                ),
            );
        }
    }
    let arg = match headers.get("dropbox-api-arg") {
        Some(v) => {
            // Header values carry no UTF-8: Dropbox wants non-ASCII written as \uXXXX.
            if !v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)) {
                return bad_input(
                    ROUTE,
                    "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON",
                );
            }
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
        None => {
            match uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "arg")
                    .map(|(_, v)| v.into_owned())
            }) {
                Some(a) => a,
                None => {
                    return bad_input(
                        ROUTE,
                        "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".",
                    );
                }
            }
        }
    };
    let Ok(args) = serde_json::from_str::<Value>(&arg) else {
        return bad_input(
            ROUTE,
            "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON",
        );
    };
    let view = match dropbox.view(&headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let args = in_view(args, &view);
    let path = match path_arg(ROUTE, &args) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (content, meta) = {
        let a = dropbox.account();
        let Some(key) = a.resolve(&path).filter(|_| !path.is_empty()) else {
            return path_error("not_found");
        };
        let Some(e) = a.entries.get(&key) else {
            return path_error("not_found");
        };
        if e.folder {
            return path_error("not_file");
        }
        (e.content.clone(), a.metadata_in(&key, &view))
    };
    let len = content.len() as u64;
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .filter(|_| dropbox.0.config.honour_range);
    let mut builder = Response::builder()
        .header("content-type", "application/octet-stream")
        .header("dropbox-api-result", ascii_json(&meta))
        .header("accept-ranges", "bytes");
    let (status, body) = match parse_range(range, len) {
        Some(Err(())) => {
            return Response::builder()
                .status(416)
                .header("content-range", format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
        Some(Ok((start, end))) => {
            builder = builder.header("content-range", format!("bytes {start}-{end}/{len}"));
            let slice = content
                .get(start as usize..=end as usize)
                .unwrap_or_default()
                .to_vec();
            (206, slice)
        }
        None => (200, content.to_vec()),
    };
    builder
        .status(status)
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_is_over_4_mib_blocks() {
        // Dropbox's published example hash of an empty file is the SHA-256 of nothing hashed
        // again (no blocks): sha256("").
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let one_block = content_hash(b"abc");
        assert_eq!(
            one_block,
            hex::encode(Sha256::digest(Sha256::digest(b"abc")))
        );
    }

    #[test]
    fn ranges_parse_like_http_says() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Some(Ok((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=0-500"), 100), Some(Ok((0, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Some(Err(())));
        assert_eq!(parse_range(Some("items=0-1"), 100), None);
        assert_eq!(parse_range(None, 100), None);
    }

    #[test]
    fn listings_cover_a_folder_or_its_children() {
        assert!(Account::under("", true, "/a/b.jpg"));
        assert!(!Account::under("", false, "/a/b.jpg"));
        assert!(Account::under("", false, "/a"));
        assert!(Account::under("/a", true, "/a/b/c.jpg"));
        assert!(!Account::under("/a", true, "/ab/c.jpg"));
        assert!(Account::under("/a", false, "/a/b"));
        assert!(!Account::under("/a", false, "/a/b/c"));
    }

    #[test]
    fn results_escape_non_ascii_like_dropbox() {
        assert_eq!(
            ascii_json(&json!({"name": "Å😀"})),
            r#"{"name":"\u00c5\ud83d\ude00"}"#
        );
    }
}
