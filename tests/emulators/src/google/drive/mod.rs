//! Google Drive v3 (reference §5.2–§5.5), on the same server as Google's OAuth 2.0 endpoints.
//!
//! Routes (all need a token from this emulator's `/token`; reads accept any Drive scope, writes
//! need `https://www.googleapis.com/auth/drive`):
//!
//! | route | what it does |
//! |---|---|
//! | `GET /drive/v3/files` | `files.list`: `q` (the subset in [`query`]), `pageSize` 1–1000 (default 100), `pageToken`/`nextPageToken`, `fields`, `corpora`, `driveId`, `includeItemsFromAllDrives`, `supportsAllDrives`; trashed files are listed unless `q` says `trashed = false` |
//! | `GET /drive/v3/files/{id}` | `files.get` metadata (`fields`); with `alt=media` the bytes, honouring `Range` (206, `Content-Range`, 416); Google-native files 403 `fileNotDownloadable` |
//! | `PATCH /drive/v3/files/{id}` | `files.update` of `appProperties`: merged, `null` deletes; key+value over 124 bytes UTF-8 or more than 30 properties per app is 400; a file the account may not edit is 403 `insufficientFilePermissions`; recorded ([`Drive::property_writes`]) and listed in the change feed |
//! | `GET /drive/v3/changes/startPageToken` | `{"kind":"drive#startPageToken","startPageToken":"…"}` |
//! | `GET /drive/v3/changes` | the change feed from a page token: `nextPageToken` while pages follow, `newStartPageToken` on the last; trashed files come as changes with `file.trashed`, deleted ones as `removed: true` |
//! | `GET /drive/v3/drives/{id}` | a shared drive, or 404 |
//! | `GET /drive/v3/drives` | `drives.list`: the shared drives the account is a member of, `pageSize` 1–100 (default 10), `pageToken`/`nextPageToken`, `fields` |
//! | `GET /docs/securesc/{ticket}/{id}` (content host) | with [`DriveConfig::media_redirect`]: the bytes `alt=media` redirected to, no `Authorization` needed, honouring `Range` |
//!
//! Fidelity points a client trips on, reproduced on purpose: `fields` selects the *top-level*
//! keys too, so a client that does not ask for `nextPageToken` never sees one; without `fields`
//! only `kind,id,name,mimeType` of each file come back; `size` is a string; files in shared
//! drives are 404 unless the request says `supportsAllDrives=true`; page tokens that
//! [`Drive::expire_page_tokens`] invalidated answer 400 `invalid` on `pageToken`.
//!
//! Two documented behaviours are modes, off by default:
//! - [`DriveConfig::media_redirect`]: `alt=media` answers `307 Temporary Redirect` to a content
//!   host (in production `*.googleusercontent.com`; here a second loopback server,
//!   [`DriveEmulator::content_url`]) whose URL carries its own short-lived credential, as the
//!   Drive download guide warns clients to expect ("follow the redirect"). A bearer token that
//!   arrives there anyway is recorded, so a test can prove it was not forwarded.
//! - [`DriveConfig::incomplete_all_drives`]: `files.list` with `corpora=allDrives` could not
//!   search every corpus: it says `incompleteSearch: true` and leaves out the files of every
//!   shared drive but the first. Google's `FileList.incompleteSearch` reference: "some search
//!   results might be missing ... This can occur when searching multiple drives with the
//!   'allDrives' corpora ... clients [should] narrow their query by choosing a different corpus
//!   such as 'user' or 'drive'", which (`corpora=user`, `corpora=drive&driveId=`) stay complete.
//!
//! Error bodies are `{"error":{"code","message","errors":[{"domain","reason","message"}],"status"}}`
//! (reference §5.5). Texts the reference does not quote are \[mem\] and have a situation key in
//! [`errors`]. Faults per route class, random chaos and a clock plan live in [`faults`]; every
//! exchange is recorded with its real arrival time so Retry-After can be checked.
//!
//! Test tooling only: tokens and file bytes are held in memory.

mod api;
pub mod faults;
mod md5;
pub mod query;
pub mod seed;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::common::harness::MAX_BODY_BYTES;
use crate::common::{Emulator, Harness, Tokens};

pub use faults::{Chaos, DriveFault, Exchange, RetryFollowUp, Route};

use faults::FaultBook;

/// MIME type of folders.
pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// The scope writes need.
pub const DRIVE_SCOPE: &str = "https://www.googleapis.com/auth/drive";
/// Path prefix of content-host downloads (`/docs/securesc/{ticket}/{file id}`).
pub const CONTENT_PATH: &str = "/docs/securesc/";
/// Longest key plus value of one property, bytes of UTF-8 (reference §5.4).
pub const MAX_PROPERTY_BYTES: usize = 124;
/// Most private (app) properties per file and app (reference §5.4).
pub const MAX_APP_PROPERTIES: usize = 30;

/// Situation keys of Drive error replies whose text the reference does not quote.
pub mod errors {
    /// A page token the emulator no longer knows. Default: 400 `invalid` "Invalid Value" at
    /// `pageToken`.
    pub const INVALID_PAGE_TOKEN: &str = "google.drive.invalid_page_token";
    /// A property whose key and value exceed 124 bytes. Default: 400 `badRequest` "The size of
    /// the property exceeds the maximum allowed size of 124 bytes.".
    pub const PROPERTY_TOO_LARGE: &str = "google.drive.property_too_large";
    /// More than 30 app properties. Default: 400 `badRequest` "The limit for the number of
    /// properties has been exceeded.".
    pub const TOO_MANY_PROPERTIES: &str = "google.drive.too_many_properties";
    /// Write on a file the account may only read. Default: 403 `insufficientFilePermissions`.
    pub const NOT_EDITABLE: &str = "google.drive.not_editable";
    /// Token without the scope the route needs. Default: 403 `insufficientPermissions`
    /// "Request had insufficient authentication scopes.".
    pub const INSUFFICIENT_SCOPE: &str = "google.drive.insufficient_scope";
    /// 403 `userRateLimitExceeded` (shape from the reference, message \[mem\]).
    pub const USER_RATE_LIMIT: &str = "google.drive.user_rate_limit";
}

/// What a test expects the analysis to find in a seeded file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// GPS position.
    pub gps: bool,
    /// Owner name.
    pub person: bool,
    /// Camera serial.
    pub serial: bool,
}

/// A file to seed or add.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// File name.
    pub name: String,
    /// Folder path inside its drive (`Site visits/2026`), empty for the root.
    pub folder: String,
    /// MIME type.
    pub mime: String,
    /// Bytes (empty for Google-native documents).
    pub content: Vec<u8>,
    /// In the trash.
    pub trashed: bool,
    /// `imageMediaMetadata` width and height.
    pub image: Option<(u32, u32)>,
    /// `imageMediaMetadata.location` (latitude, longitude, altitude).
    pub location: Option<(f64, f64, Option<f64>)>,
    /// The account may edit it (else a PATCH is 403).
    pub can_edit: bool,
    /// What its bytes carry.
    pub expect: Expected,
}

impl FileSpec {
    /// A JPEG image.
    pub fn jpeg(path: &str, content: Vec<u8>, size: (u32, u32), expect: Expected) -> Self {
        let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
        FileSpec {
            name: name.to_owned(),
            folder: folder.to_owned(),
            mime: "image/jpeg".into(),
            content,
            trashed: false,
            image: Some(size),
            location: None,
            can_edit: true,
            expect,
        }
    }

    /// A file that is not an image.
    pub fn document(path: &str, mime: &str, content: &[u8]) -> Self {
        let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
        FileSpec {
            name: name.to_owned(),
            folder: folder.to_owned(),
            mime: mime.to_owned(),
            content: content.to_vec(),
            trashed: false,
            image: None,
            location: None,
            can_edit: true,
            expect: Expected::default(),
        }
    }
}

/// A shared drive and its files.
#[derive(Clone, Debug)]
pub struct SharedDriveSpec {
    /// Name.
    pub name: String,
    /// Files.
    pub files: Vec<FileSpec>,
}

/// What the Drive holds at start.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// Files of the account's My Drive.
    pub my_drive: Vec<FileSpec>,
    /// Shared drives the account is a member of.
    pub shared_drives: Vec<SharedDriveSpec>,
}

/// How the emulated Drive behaves.
#[derive(Clone, Debug)]
pub struct DriveConfig {
    /// Files at start.
    pub corpus: Corpus,
    /// Seed of the id generator.
    pub seed: u64,
    /// Page size when the client sends none (Drive: 100).
    pub default_page_size: usize,
    /// Largest `pageSize` accepted (Drive: 1000).
    pub max_page_size: usize,
    /// `alt=media` answers `307` to the content host instead of sending the bytes.
    pub media_redirect: bool,
    /// `corpora=allDrives` listings are incomplete: `incompleteSearch: true`, and the files of
    /// every shared drive but the first are missing.
    pub incomplete_all_drives: bool,
}

impl Default for DriveConfig {
    fn default() -> Self {
        DriveConfig {
            corpus: seed::field_team(),
            seed: 0xD21E,
            default_page_size: 100,
            max_page_size: 1000,
            media_redirect: false,
            incomplete_all_drives: false,
        }
    }
}

/// An `appProperties` update the emulator applied.
#[derive(Clone, Debug)]
pub struct PropertyWrite {
    /// Real time.
    pub at: Instant,
    /// Emulated time.
    pub emulated: OffsetDateTime,
    /// File id.
    pub file_id: String,
    /// File name.
    pub name: String,
    /// The `appProperties` the request sent (`null` values as `None`).
    pub sent: BTreeMap<String, Option<String>>,
}

/// A file as a test sees it.
#[derive(Clone, Debug)]
pub struct DriveFile {
    /// File id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Folder path inside its drive.
    pub folder: String,
    /// MIME type.
    pub mime: String,
    /// Shared drive id, `None` for My Drive.
    pub drive_id: Option<String>,
    /// In the trash.
    pub trashed: bool,
    /// `image/*`.
    pub is_image: bool,
    /// Bytes.
    pub size: u64,
    /// `md5Checksum`.
    pub md5: String,
    /// What its bytes carry.
    pub expect: Expected,
}

#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub mime: String,
    pub parent: String,
    pub drive_id: Option<String>,
    pub trashed: bool,
    pub deleted: bool,
    pub content: Arc<Vec<u8>>,
    pub md5: String,
    pub sha256: String,
    pub version: u64,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    pub app_properties: BTreeMap<String, String>,
    pub image: Option<(u32, u32)>,
    pub location: Option<(f64, f64, Option<f64>)>,
    pub can_edit: bool,
    pub expect: Expected,
}

impl Stored {
    pub(crate) fn is_folder(&self) -> bool {
        self.mime == FOLDER_MIME
    }

    pub(crate) fn is_native(&self) -> bool {
        self.mime.starts_with("application/vnd.google-apps.")
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub seq: u64,
    pub file_id: String,
    pub time: OffsetDateTime,
}

/// Files, shared drives and the change log.
#[derive(Debug)]
pub(crate) struct Store {
    /// In creation order.
    pub files: Vec<Stored>,
    /// (id, name).
    pub drives: Vec<(String, String)>,
    pub root_id: String,
    pub changes: Vec<Change>,
    /// The next change number; the start page token is this number.
    pub next_seq: u64,
    /// Change tokens below this are invalid (after [`Drive::expire_page_tokens`]).
    pub min_seq: u64,
    /// Bumped by [`Drive::expire_page_tokens`]; list tokens carry it.
    pub generation: u64,
    id_counter: u64,
    id_seed: u64,
}

impl Store {
    fn new(seed: u64) -> Self {
        let mut s = Store {
            files: Vec::new(),
            drives: Vec::new(),
            root_id: String::new(),
            changes: Vec::new(),
            next_seq: 4107,
            min_seq: 0,
            generation: 1,
            id_counter: 0,
            id_seed: seed,
        };
        s.root_id = s.new_id("0A");
        s
    }

    /// A Drive-looking id: `1` and 32 more URL-safe characters for files, `0A…` for drives.
    fn new_id(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.id_counter += 1;
        let digest = Sha256::digest(format!("{}:{}", self.id_seed, self.id_counter).as_bytes());
        let body: String = digest
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let len = if prefix == "0A" { 17 } else { 32 };
        format!("{prefix}{}", &body[..len])
    }

    fn folder_id(&mut self, drive_id: Option<&str>, path: &str, now: OffsetDateTime) -> String {
        let mut parent = drive_id.map_or_else(|| self.root_id.clone(), str::to_owned);
        let mut so_far = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(segment);
            let existing = self.files.iter().find(|f| {
                f.is_folder()
                    && f.drive_id.as_deref() == drive_id
                    && f.parent == parent
                    && f.name == segment
            });
            parent = match existing {
                Some(f) => f.id.clone(),
                None => {
                    let spec = FileSpec {
                        name: segment.to_owned(),
                        folder: String::new(),
                        mime: FOLDER_MIME.into(),
                        content: Vec::new(),
                        trashed: false,
                        image: None,
                        location: None,
                        can_edit: true,
                        expect: Expected::default(),
                    };
                    self.insert(drive_id, &parent, &spec, now)
                }
            };
        }
        parent
    }

    fn insert(
        &mut self,
        drive_id: Option<&str>,
        parent: &str,
        spec: &FileSpec,
        now: OffsetDateTime,
    ) -> String {
        let id = self.new_id("1");
        let native = spec.mime.starts_with("application/vnd.google-apps.");
        self.files.push(Stored {
            id: id.clone(),
            name: spec.name.clone(),
            folder: spec.folder.clone(),
            mime: spec.mime.clone(),
            parent: parent.to_owned(),
            drive_id: drive_id.map(str::to_owned),
            trashed: spec.trashed,
            deleted: false,
            md5: if native {
                String::new()
            } else {
                md5::hex(&spec.content)
            },
            sha256: if native {
                String::new()
            } else {
                hex::encode(Sha256::digest(&spec.content))
            },
            content: Arc::new(spec.content.clone()),
            version: 1,
            created: now,
            modified: now,
            app_properties: BTreeMap::new(),
            image: spec.image,
            location: spec.location,
            can_edit: spec.can_edit,
            expect: spec.expect,
        });
        self.record_change(&id, now);
        id
    }

    pub(crate) fn add(
        &mut self,
        drive_id: Option<&str>,
        spec: &FileSpec,
        now: OffsetDateTime,
    ) -> String {
        let parent = self.folder_id(drive_id, &spec.folder, now);
        self.insert(drive_id, &parent, spec, now)
    }

    pub(crate) fn record_change(&mut self, file_id: &str, now: OffsetDateTime) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.changes.push(Change {
            seq,
            file_id: file_id.to_owned(),
            time: now,
        });
    }

    pub(crate) fn file(&self, id: &str) -> Option<&Stored> {
        self.files.iter().find(|f| f.id == id && !f.deleted)
    }

    pub(crate) fn file_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.files.iter_mut().find(|f| f.id == id && !f.deleted)
    }
}

/// A content-host download: file id, bytes, MIME type.
pub(crate) type Ticket = (String, Arc<Vec<u8>>, String);

#[derive(Debug)]
pub(crate) struct Shared {
    pub harness: Harness,
    pub tokens: Tokens,
    pub config: DriveConfig,
    pub store: Mutex<Store>,
    pub faults: Mutex<FaultBook>,
    pub traffic: Mutex<Vec<Exchange>>,
    pub writes: Mutex<Vec<PropertyWrite>>,
    /// Base URL of the content host `alt=media` redirects to.
    pub content_base: url::Url,
    /// Content-host tickets: ticket → (file id, bytes, MIME type).
    pub tickets: Mutex<BTreeMap<String, Ticket>>,
}

/// The control and inspection handle of an emulated Drive. Clones share state.
#[derive(Clone, Debug)]
pub struct Drive(pub(crate) Arc<Shared>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drive {
    pub(crate) fn new(
        config: DriveConfig,
        content_base: url::Url,
        harness: Harness,
        tokens: Tokens,
    ) -> Self {
        let now = harness.clock.now();
        let mut store = Store::new(config.seed);
        for shared in &config.corpus.shared_drives {
            let id = store.new_id("0A");
            store.drives.push((id, shared.name.clone()));
        }
        for spec in &config.corpus.my_drive {
            store.add(None, spec, now);
        }
        let drives = store.drives.clone();
        for (shared, (id, _)) in config.corpus.shared_drives.iter().zip(&drives) {
            for spec in &shared.files {
                store.add(Some(id), spec, now);
            }
        }
        Drive(Arc::new(Shared {
            harness,
            tokens,
            config,
            store: Mutex::new(store),
            faults: Mutex::default(),
            traffic: Mutex::default(),
            writes: Mutex::default(),
            content_base,
            tickets: Mutex::default(),
        }))
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.0.store)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.0.harness.clock.now()
    }

    /// A content-host URL for a file's bytes as they are now.
    pub(crate) fn content_location(&self, f: &Stored) -> String {
        let ticket = crate::common::tokens::random_token("", 32);
        lock(&self.0.tickets).insert(
            ticket.clone(),
            (f.id.clone(), f.content.clone(), f.mime.clone()),
        );
        format!(
            "{}{}{ticket}/{}?e=download",
            self.0.content_base.as_str().trim_end_matches('/'),
            CONTENT_PATH,
            f.id
        )
    }

    pub(crate) fn ticket(&self, ticket: &str) -> Option<Ticket> {
        lock(&self.0.tickets).get(ticket).cloned()
    }

    pub(crate) fn record_write(&self, write: PropertyWrite) {
        lock(&self.0.writes).push(write);
    }

    fn next_number(&self) -> u64 {
        let (n, due) = lock(&self.0.faults).next_number();
        for by in due {
            self.0.harness.clock.advance(by);
        }
        n
    }

    // ----- inspection -------------------------------------------------------------------------

    /// Every file (not folders, not deleted; trashed ones included), in creation order.
    pub fn files(&self) -> Vec<DriveFile> {
        self.store()
            .files
            .iter()
            .filter(|f| !f.deleted && !f.is_folder())
            .map(|f| DriveFile {
                id: f.id.clone(),
                name: f.name.clone(),
                folder: f.folder.clone(),
                mime: f.mime.clone(),
                drive_id: f.drive_id.clone(),
                trashed: f.trashed,
                is_image: f.mime.starts_with("image/"),
                size: f.content.len() as u64,
                md5: f.md5.clone(),
                expect: f.expect,
            })
            .collect()
    }

    /// The file named `name` (first match).
    pub fn file_named(&self, name: &str) -> Option<DriveFile> {
        self.files().into_iter().find(|f| f.name == name)
    }

    /// The id of the shared drive named `name`.
    pub fn shared_drive_id(&self, name: &str) -> Option<String> {
        self.store()
            .drives
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id.clone())
    }

    /// The id of My Drive's root folder.
    pub fn root_id(&self) -> String {
        self.store().root_id.clone()
    }

    /// A file's `appProperties`.
    pub fn app_properties(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.store().file(id).map(|f| f.app_properties.clone())
    }

    /// Every `appProperties` update applied, oldest first.
    pub fn property_writes(&self) -> Vec<PropertyWrite> {
        lock(&self.0.writes).clone()
    }

    /// Every exchange, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.0.traffic).clone()
    }

    /// Every `Retry-After` sent, each with the next exchange of the same key.
    pub fn retry_follow_ups(&self) -> Vec<RetryFollowUp> {
        faults::follow_ups(&self.exchanges())
    }

    /// Forgets recorded exchanges and property writes.
    pub fn clear_traffic(&self) {
        lock(&self.0.traffic).clear();
        lock(&self.0.writes).clear();
    }

    // ----- changes ----------------------------------------------------------------------------

    /// Replaces a file's bytes: new checksums and version, a change in the feed.
    pub fn replace_content(&self, id: &str, content: Vec<u8>) -> bool {
        let now = self.now();
        let mut store = self.store();
        let Some(f) = store.file_mut(id) else {
            return false;
        };
        f.md5 = md5::hex(&content);
        f.sha256 = hex::encode(Sha256::digest(&content));
        f.content = Arc::new(content);
        f.version += 1;
        f.modified = now;
        store.record_change(id, now);
        true
    }

    /// Adds a file to My Drive (`drive_id` `None`) or a shared drive; returns its id.
    pub fn add_file(&self, drive_id: Option<&str>, spec: FileSpec) -> String {
        let now = self.now();
        self.store().add(drive_id, &spec, now)
    }

    /// Moves a file to the trash (a change with `file.trashed`).
    pub fn trash(&self, id: &str) -> bool {
        let now = self.now();
        let mut store = self.store();
        let Some(f) = store.file_mut(id) else {
            return false;
        };
        f.trashed = true;
        f.version += 1;
        store.record_change(id, now);
        true
    }

    /// Deletes a file for good (a change with `removed: true`).
    pub fn delete(&self, id: &str) -> bool {
        let now = self.now();
        let mut store = self.store();
        let Some(f) = store.file_mut(id) else {
            return false;
        };
        f.deleted = true;
        store.record_change(id, now);
        true
    }

    /// Whether the account may edit a file.
    pub fn set_can_edit(&self, id: &str, can_edit: bool) {
        if let Some(f) = self.store().file_mut(id) {
            f.can_edit = can_edit;
        }
    }

    /// Makes every page token issued so far (list and change tokens) invalid: 400 on use.
    pub fn expire_page_tokens(&self) {
        let mut store = self.store();
        store.generation += 1;
        // Skip a number so that the last start token handed out is below the new minimum.
        store.next_seq += 1;
        store.min_seq = store.next_seq;
    }

    // ----- faults -----------------------------------------------------------------------------

    /// Applies `fault` to the next `times` requests of route class `route`.
    pub fn inject(&self, route: Route, fault: DriveFault, times: u32) {
        lock(&self.0.faults).add(route, fault, Some(times), false);
    }

    /// Lets `after` requests of route class `route` through, then applies `fault` to the next
    /// `times` (e.g. the fourth property update of a write-back).
    pub fn inject_after(&self, route: Route, after: u32, fault: DriveFault, times: u32) {
        lock(&self.0.faults).add_after(route, fault, Some(times), false, after);
    }

    /// Applies `fault` to the next `times` requests of `route` that carry a `pageToken` (a
    /// continuation, not a first page).
    pub fn inject_on_continuation(&self, route: Route, fault: DriveFault, times: u32) {
        lock(&self.0.faults).add(route, fault, Some(times), true);
    }

    /// Applies `fault` to every request of `route` until [`Drive::clear_faults`].
    pub fn inject_always(&self, route: Route, fault: DriveFault) {
        lock(&self.0.faults).add(route, fault, None, false);
    }

    /// Faults a random share of requests; `None` stops.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        lock(&self.0.faults).set_chaos(chaos);
    }

    /// When exchange number `after` arrives, moves the emulated clock forward by `by`.
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

/// A running Google emulator with Drive: OAuth 2.0 and the Drive API on one server.
/// Dereferences to the [`Emulator`] (clock, shared log, token book).
#[derive(Debug)]
pub struct DriveEmulator {
    emulator: Emulator,
    content: crate::common::server::RunningServer,
    drive: Drive,
}

impl std::ops::Deref for DriveEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl DriveEmulator {
    pub(crate) fn new(
        emulator: Emulator,
        content: crate::common::server::RunningServer,
        drive: Drive,
    ) -> Self {
        DriveEmulator {
            emulator,
            content,
            drive,
        }
    }

    /// The content host's base URL (`http://127.0.0.1:PORT`, another port than the API): what
    /// to configure as the download host. Production: `https://*.googleusercontent.com`.
    pub fn content_url(&self) -> String {
        self.content
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The Drive's control and inspection handle.
    pub fn drive(&self) -> &Drive {
        &self.drive
    }

    /// What to configure as the API base URL (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn api_url(&self) -> String {
        self.base_url().as_str().trim_end_matches('/').to_owned()
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        self.url(super::TOKEN_PATH).to_string()
    }
}

/// The Drive routes (mounted next to the identity provider's).
pub(crate) fn routes(drive: Drive) -> Router {
    api::routes(drive)
}

/// The content host's routes.
pub(crate) fn content_routes(drive: Drive) -> Router {
    api::content_routes(drive)
}

/// Middleware: numbers the request, runs the clock plan, injects route-class faults, and
/// records the exchange with what was answered.
pub(crate) async fn observe(State(drive): State<Drive>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let emulated = drive.now();
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let n = drive.next_number();
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
    let route = faults::classify(&method, &path, &query);
    let key = faults::retry_key(route, &method, &path, &query, &bytes);
    let continuation = query.split('&').any(|p| p.starts_with("pageToken="));
    let fault = lock(&drive.0.faults).take(n, route, &key, continuation);
    let mut label = fault.as_ref().map(DriveFault::label);
    let mut truncate = false;
    let response = match fault {
        Some(DriveFault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(DriveFault::Truncated) => {
            truncate = true;
            None
        }
        Some(f) => Some(faults::reply(&drive.0.harness, &f).into_response()),
        None => None,
    };
    let response = match response {
        Some(r) => r,
        None => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
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
    if label.is_none() && response.status().as_u16() == 400 && query.contains("pageToken=") {
        label = Some("400 invalid page token".into());
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
    let exchange = Exchange {
        n,
        at,
        emulated,
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
    };
    crate::common::faults::record(&mut lock(&drive.0.traffic), exchange);
    response
}
