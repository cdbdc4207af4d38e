//! Listing images: a full `files.list` enumeration first, then Drive's change feed.
//!
//! **First sync** (reference §5.2). `changes.getStartPageToken` is read *before* listing, so
//! anything that changes while the listing pages go by is in the feed afterwards. Then
//! `files.list` with `q = mimeType contains 'image/' and trashed = false`, paged with
//! `nextPageToken`. The cursor holds the start token and the next page token, so a crash resumes
//! on the right page. On the last page the cursor becomes the start token.
//!
//! **Later syncs.** `changes.list` from the saved token, page by page while `nextPageToken`
//! comes, until the last page's `newStartPageToken`, which is the next run's cursor. A change
//! with `removed: true` (deleted, or access lost) or a file now in the trash is reported removed;
//! other image files are listed again and the host skips the versions it already processed.
//!
//! **Incomplete searches.** With `corpora=allDrives` (My Drive and every shared drive), Drive may
//! answer `incompleteSearch: true`: it could not search every corpus, so files are missing from
//! the listing, and nothing later would bring them back until they change. Google's advice for
//! that case (the `FileList.incompleteSearch` reference) is to "narrow the query by choosing a
//! different corpus such as 'user' or 'drive'". So the listing is not taken as complete: the
//! plugin logs a warning and lists each corpus on its own, `corpora=user` (My Drive and what is
//! shared with the account) then `corpora=drive&driveId=` for every shared drive `drives.list`
//! returns, and only then moves on to the change feed, from the start token read before the
//! first page. Files already listed come again; the host skips versions it has processed.
//!
//! **Invalid tokens.** Drive answers 400 `invalid` on `pageToken` for a token it no longer
//! accepts. The listing then starts over from a fresh start token; already-processed versions
//! are skipped by the host, so nothing is analysed or written twice.
//!
//! **`fields` is not optional.** Drive returns only `kind,id,name,mimeType` per file without it,
//! and it also filters the top level: a request that does not name `nextPageToken` never gets
//! one. Every request here names exactly what it reads.
//!
//! **Version.** `md5Checksum` (then `sha256Checksum`, `headRevisionId`, `modifiedTime`): the
//! content, not Drive's `version` counter, which our own `appProperties` writes move forward.

use proofpix_sdk::http::{Request, percent_encode};
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::google::{self, GoogleError};
use crate::settings::{Corpus, Settings};

/// Cursor format version.
const CURSOR_VERSION: u32 = 1;
/// The listing's filter: images not in the trash (reference §5.2).
pub const IMAGE_QUERY: &str = "mimeType contains 'image/' and trashed = false";
/// File fields read.
const FILE_FIELDS: &str = "id,name,mimeType,size,md5Checksum,sha256Checksum,headRevisionId,modifiedTime,driveId,trashed,webViewLink";
/// Longest file id accepted from Drive (ids are about 33 characters).
const MAX_ID_LEN: usize = 256;

/// Property keys stored with each file.
pub mod prop {
    /// The shared drive a file is in.
    pub const DRIVE: &str = "drive";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    /// The first enumeration: `start` is the change token read before it.
    Listing { start: String, next: Option<String> },
    /// The `allDrives` listing was incomplete: each corpus on its own. `drive` is the shared
    /// drive being listed (`None`: `corpora=user`), `next` its next page token; `queue` the
    /// shared drives still to list, `drives_next` the `drives.list` page after them and
    /// `drives_read` whether `drives.list` was read at all.
    PerCorpus {
        start: String,
        drive: Option<String>,
        next: Option<String>,
        queue: Vec<String>,
        drives_next: Option<String>,
        drives_read: bool,
    },
    /// The change feed from `token`.
    Changes { token: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    v: u32,
    /// [`Settings::fingerprint`] of the configuration the cursor was made under.
    fp: String,
    #[serde(flatten)]
    phase: Phase,
}

/// One page of discovery.
///
/// # Errors
/// Configuration problems and Drive errors (throttling, 5xx and malformed pages are retryable).
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let settings = Settings::load()?;
    let previous: Option<Cursor> = pagination::decode(cursor.as_deref())?;
    match previous {
        Some(c) if c.v == CURSOR_VERSION && c.fp == settings.fingerprint() => match c.phase {
            Phase::Listing { start, next } => list_page(&settings, start, next),
            phase @ Phase::PerCorpus { .. } => per_corpus_page(&settings, phase),
            Phase::Changes { token } => changes_page(&settings, &token),
        },
        // First run, or what is listed changed: enumerate from the start.
        _ => full_listing(&settings),
    }
}

fn cursor(settings: &Settings, phase: Phase) -> Result<String, PluginError> {
    pagination::encode(&Cursor {
        v: CURSOR_VERSION,
        fp: settings.fingerprint(),
        phase,
    })
}

fn what(settings: &Settings) -> String {
    format!("listing {}", settings.corpus.describe())
}

/// The `files.list` request for one page of the configured corpus.
pub fn list_url(settings: &Settings, page_token: Option<&str>) -> String {
    files_url(settings, &settings.corpus, page_token)
}

/// The `files.list` request for one page of one corpus after an incomplete `allDrives` search:
/// `corpora=user` (`drive` `None`) or `corpora=drive&driveId=`.
pub fn narrowed_list_url(
    settings: &Settings,
    drive: Option<&str>,
    page_token: Option<&str>,
) -> String {
    let corpus = match drive {
        Some(id) => Corpus::SharedDrive(id.to_string()),
        None => Corpus::MyDrive {
            shared_drives: false,
        },
    };
    files_url(settings, &corpus, page_token)
}

/// The `drives.list` request: the shared drives the account is a member of.
pub fn drives_url(settings: &Settings, page_token: Option<&str>) -> String {
    let mut r = Request::get(&settings.url("drives"))
        .query("pageSize", "100")
        .query("fields", "nextPageToken,drives(id)");
    if let Some(t) = page_token {
        r = r.query("pageToken", t);
    }
    r.url().to_string()
}

fn files_url(settings: &Settings, corpus: &Corpus, page_token: Option<&str>) -> String {
    let mut r = Request::get(&settings.url("files"))
        .query("q", IMAGE_QUERY)
        .query("pageSize", &settings.page_size.to_string())
        .query(
            "fields",
            &format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})"),
        )
        .query("supportsAllDrives", "true");
    r = match corpus {
        Corpus::SharedDrive(id) => r
            .query("corpora", "drive")
            .query("driveId", id)
            .query("includeItemsFromAllDrives", "true"),
        Corpus::MyDrive {
            shared_drives: true,
        } => r
            .query("corpora", "allDrives")
            .query("includeItemsFromAllDrives", "true"),
        Corpus::MyDrive {
            shared_drives: false,
        } => r.query("corpora", "user"),
    };
    if let Some(t) = page_token {
        r = r.query("pageToken", t);
    }
    r.url().to_string()
}

/// The `changes.list` request for one page.
pub fn changes_url(settings: &Settings, token: &str) -> String {
    let mut r = Request::get(&settings.url("changes"))
        .query("pageToken", token)
        .query("pageSize", &settings.page_size.to_string())
        .query(
            "fields",
            &format!(
                "nextPageToken,newStartPageToken,changes(fileId,removed,time,file({FILE_FIELDS}))"
            ),
        )
        .query("includeRemoved", "true")
        .query("supportsAllDrives", "true");
    r = match &settings.corpus {
        Corpus::SharedDrive(id) => r
            .query("driveId", id)
            .query("includeItemsFromAllDrives", "true"),
        Corpus::MyDrive { shared_drives } => r
            .query(
                "includeItemsFromAllDrives",
                if *shared_drives { "true" } else { "false" },
            )
            .query("spaces", "drive"),
    };
    r.url().to_string()
}

/// `changes.getStartPageToken` for the configured corpus.
///
/// # Errors
/// Drive errors; a reply without a token is `transient`.
pub fn start_page_token(settings: &Settings) -> Result<String, PluginError> {
    let mut r =
        Request::get(&settings.url("changes/startPageToken")).query("supportsAllDrives", "true");
    if let Corpus::SharedDrive(id) = &settings.corpus {
        r = r.query("driveId", id);
    }
    let body = google::get_json(r.url(), "reading the change feed's start token")?;
    body["startPageToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            PluginError::transient(
                "Google Drive sent no startPageToken; the next attempt asks again",
            )
        })
}

fn full_listing(settings: &Settings) -> Result<Page, PluginError> {
    let start = start_page_token(settings)?;
    list_page(settings, start, None)
}

fn restart(settings: &Settings, e: &GoogleError, during: &str) -> Result<Page, PluginError> {
    log::log(
        log::Level::Warn,
        "Google Drive refused the saved page token; listing everything again (files already processed are skipped)",
        &[("during", during), ("reason", e.reason())],
    );
    full_listing(settings)
}

fn list_page(
    settings: &Settings,
    start: String,
    next: Option<String>,
) -> Result<Page, PluginError> {
    let resp = google::get(&list_url(settings, next.as_deref()))?;
    if !resp.is_success() {
        let e = GoogleError::from_response(&resp);
        if next.is_some() && e.is_invalid_page_token() {
            return restart(settings, &e, "listing");
        }
        return Err(e.into_plugin_error(&what(settings)));
    }
    let body = google::parse_json(&resp, &what(settings))?;
    let files = page_files(&body);
    if incomplete(&body)
        && settings.corpus
            == (Corpus::MyDrive {
                shared_drives: true,
            })
    {
        log::log(
            log::Level::Warn,
            "Google Drive says the search over My Drive and all shared drives was incomplete (incompleteSearch); listing My Drive and each shared drive on its own before following the change feed",
            &[],
        );
        let phase = Phase::PerCorpus {
            start,
            drive: None,
            next: None,
            queue: Vec::new(),
            drives_next: None,
            drives_read: false,
        };
        return Ok(Page {
            files,
            removed: Vec::new(),
            cursor: Some(cursor(settings, phase)?),
            more: true,
        });
    }
    let (phase, more) = match body["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
        Some(t) => (
            Phase::Listing {
                start,
                next: Some(t.to_string()),
            },
            true,
        ),
        None => (Phase::Changes { token: start }, false),
    };
    Ok(Page {
        files,
        removed: Vec::new(),
        cursor: Some(cursor(settings, phase)?),
        more,
    })
}

/// Whether a `files.list` page says the search was incomplete.
pub fn incomplete(body: &Value) -> bool {
    body["incompleteSearch"].as_bool() == Some(true)
}

fn page_files(body: &Value) -> Vec<RemoteFile> {
    body["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(remote_file)
        .collect()
}

/// One page of the per-corpus listing that replaces an incomplete `allDrives` search.
fn per_corpus_page(settings: &Settings, phase: Phase) -> Result<Page, PluginError> {
    let Phase::PerCorpus {
        start,
        drive,
        next,
        mut queue,
        mut drives_next,
        mut drives_read,
    } = phase
    else {
        return full_listing(settings);
    };
    let what = match &drive {
        Some(id) => format!("listing shared drive {id}"),
        None => "listing My Drive".to_string(),
    };
    let resp = google::get(&narrowed_list_url(
        settings,
        drive.as_deref(),
        next.as_deref(),
    ))?;
    if !resp.is_success() {
        let e = GoogleError::from_response(&resp);
        if next.is_some() && e.is_invalid_page_token() {
            return restart(settings, &e, "listing");
        }
        return Err(e.into_plugin_error(&what));
    }
    let body = google::parse_json(&resp, &what)?;
    if incomplete(&body) {
        // Not expected for a single corpus; say so rather than pretend.
        log::log(
            log::Level::Warn,
            "Google Drive says even a single-corpus search was incomplete; some files may be missing until they change",
            &[("corpus", what.as_str())],
        );
    }
    let files = page_files(&body);
    let (phase, more) = if let Some(t) = body["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
        let phase = Phase::PerCorpus {
            start,
            drive,
            next: Some(t.to_string()),
            queue,
            drives_next,
            drives_read,
        };
        (phase, true)
    } else {
        // This corpus is done: the next shared drive, reading `drives.list` when the queue is out.
        if queue.is_empty() && (!drives_read || drives_next.is_some()) {
            let list = google::get_json(
                &drives_url(settings, drives_next.as_deref()),
                "listing the shared drives",
            )?;
            queue = list["drives"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["id"].as_str().filter(|id| valid_id(id)))
                .map(String::from)
                .collect();
            drives_next = list["nextPageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(String::from);
            drives_read = true;
        }
        if queue.is_empty() {
            (Phase::Changes { token: start }, false)
        } else {
            let drive = queue.remove(0);
            let phase = Phase::PerCorpus {
                start,
                drive: Some(drive),
                next: None,
                queue,
                drives_next,
                drives_read,
            };
            (phase, true)
        }
    };
    Ok(Page {
        files,
        removed: Vec::new(),
        cursor: Some(cursor(settings, phase)?),
        more,
    })
}

fn changes_page(settings: &Settings, token: &str) -> Result<Page, PluginError> {
    let resp = google::get(&changes_url(settings, token))?;
    if !resp.is_success() {
        let e = GoogleError::from_response(&resp);
        if e.is_invalid_page_token() {
            return restart(settings, &e, "changes");
        }
        return Err(e.into_plugin_error("reading the change feed"));
    }
    let body = google::parse_json(&resp, "reading the change feed")?;
    let mut files = Vec::new();
    let mut removed = Vec::new();
    for change in body["changes"].as_array().into_iter().flatten() {
        match classify_change(change) {
            ChangeKind::Removed(id) => removed.push(id),
            ChangeKind::File(f) => files.push(*f),
            ChangeKind::Ignored => {}
        }
    }
    let next = body["nextPageToken"].as_str().filter(|t| !t.is_empty());
    let new_start = body["newStartPageToken"].as_str().filter(|t| !t.is_empty());
    let (phase, more) = match (next, new_start) {
        (Some(t), _) => (Phase::Changes { token: t.into() }, true),
        (None, Some(t)) => (Phase::Changes { token: t.into() }, false),
        (None, None) => {
            return Err(PluginError::transient(
                "Google Drive sent a change page without nextPageToken or newStartPageToken",
            ));
        }
    };
    Ok(Page {
        files,
        removed,
        cursor: Some(cursor(settings, phase)?),
        more,
    })
}

/// What one change means for discovery.
#[derive(Debug)]
pub enum ChangeKind {
    /// Deleted, trashed, or no longer visible.
    Removed(String),
    /// An image to look at (the host skips versions it has).
    File(Box<RemoteFile>),
    /// Not an image, or not a file change.
    Ignored,
}

/// Reads one `drive#change`.
pub fn classify_change(change: &Value) -> ChangeKind {
    let Some(id) = change["fileId"].as_str().filter(|id| valid_id(id)) else {
        return ChangeKind::Ignored;
    };
    if change["removed"].as_bool() == Some(true)
        || change["file"]["trashed"].as_bool() == Some(true)
    {
        return ChangeKind::Removed(id.to_string());
    }
    match remote_file(&change["file"]) {
        Some(f) => ChangeKind::File(Box::new(f)),
        None => ChangeKind::Ignored,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What changes exactly when the bytes do.
pub fn version_of(item: &Value) -> Option<String> {
    for (key, prefix) in [
        ("md5Checksum", "md5"),
        ("sha256Checksum", "sha256"),
        ("headRevisionId", "rev"),
        ("modifiedTime", "modified"),
    ] {
        if let Some(v) = item[key].as_str().filter(|v| !v.is_empty()) {
            return Some(format!("{prefix}:{v}"));
        }
    }
    None
}

/// A Drive file as a remote file, when it is an image not in the trash.
pub fn remote_file(item: &Value) -> Option<RemoteFile> {
    let id = item["id"].as_str().filter(|id| valid_id(id))?;
    let mime = item["mimeType"].as_str()?;
    if !mime.to_ascii_lowercase().starts_with("image/") || item["trashed"].as_bool() == Some(true) {
        return None;
    }
    let version = version_of(item)?;
    // int64 values arrive as strings.
    let size = item["size"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .or_else(|| item["size"].as_u64());
    let drive = item["driveId"].as_str().filter(|d| valid_id(d));
    Some(RemoteFile {
        id: id.to_string(),
        name: item["name"].as_str().unwrap_or(id).to_string(),
        mime_type: Some(mime.to_string()),
        size,
        modified: item["modifiedTime"].as_str().map(String::from),
        version,
        container: Some(drive.unwrap_or("my-drive").to_string()),
        web_url: item["webViewLink"].as_str().map(String::from),
        path: None,
        properties: drive
            .map(|d| vec![(prop::DRIVE.to_string(), d.to_string())])
            .unwrap_or_default(),
    })
}

/// The file's URL on the API (`{api}/drive/v3/files/{id}`).
pub fn file_url(settings: &Settings, id: &str) -> String {
    settings.url(&format!("files/{}", percent_encode(id)))
}

/// Where the host reads a file: `alt=media` on the API host, which honours Range, so the host
/// reads only head and tail. Drive may answer `307` to a content host on
/// `*.googleusercontent.com`; the host follows it to the `downloads` endpoint, without the
/// bearer token (that endpoint takes no credentials), and the Range header goes along.
///
/// # Errors
/// Configuration problems.
pub fn download(file: RemoteFile) -> Result<DownloadSpec, PluginError> {
    let settings = Settings::load()?;
    let url = Request::get(&file_url(&settings, &file.id))
        .query("alt", "media")
        .query("supportsAllDrives", "true");
    Ok(DownloadSpec {
        location: ContentLocation::Http(url.into_wit()),
        supports_range: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawConfig;
    use serde_json::json;

    fn settings(shared: Option<&str>) -> Settings {
        RawConfig {
            api_url: Some("http://127.0.0.1:9".into()),
            shared_drive: shared.map(String::from),
            include_shared: true,
            write_back: true,
            page_size: 3,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    #[test]
    fn the_listing_asks_for_images_the_fields_it_reads_and_shared_drives() {
        let url = list_url(&settings(None), Some("tok"));
        for part in [
            "q=mimeType%20contains%20%27image%2F%27%20and%20trashed%20%3D%20false",
            "pageSize=3",
            "fields=nextPageToken%2CincompleteSearch%2Cfiles%28id%2Cname",
            "corpora=allDrives",
            "includeItemsFromAllDrives=true",
            "supportsAllDrives=true",
            "pageToken=tok",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        let one = list_url(&settings(Some("0AFieldTeamDriveUk9PVA")), None);
        assert!(
            one.contains("corpora=drive&driveId=0AFieldTeamDriveUk9PVA"),
            "{one}"
        );
        assert!(changes_url(&settings(None), "41").contains("pageToken=41&"));
    }

    #[test]
    fn the_version_is_the_content_checksum_not_drives_counter() {
        let item = json!({"md5Checksum": "abc", "version": "7", "modifiedTime": "t"});
        assert_eq!(version_of(&item).as_deref(), Some("md5:abc"));
        assert_eq!(
            version_of(&json!({"modifiedTime": "t"})).as_deref(),
            Some("modified:t")
        );
        assert_eq!(version_of(&json!({"version": "7"})), None);
    }

    #[test]
    fn only_images_outside_the_trash_with_sane_ids_are_files() {
        let ok = json!({"id": "1Abc_-x", "name": "a.jpg", "mimeType": "image/jpeg", "size": "1234",
            "md5Checksum": "m", "driveId": "0AD"});
        let f = remote_file(&ok).unwrap();
        assert_eq!(f.size, Some(1234));
        assert_eq!(f.property(prop::DRIVE), Some("0AD"));
        assert_eq!(f.container.as_deref(), Some("0AD"));
        for bad in [
            json!({"id": "1A", "mimeType": "application/pdf", "md5Checksum": "m"}),
            json!({"id": "1A", "mimeType": "image/png", "md5Checksum": "m", "trashed": true}),
            json!({"id": "../x", "mimeType": "image/png", "md5Checksum": "m"}),
            json!({"id": "1A", "mimeType": "image/png"}),
        ] {
            assert!(remote_file(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn removed_and_trashed_changes_are_removals() {
        assert!(matches!(
            classify_change(&json!({"fileId": "1A", "removed": true})),
            ChangeKind::Removed(id) if id == "1A"
        ));
        assert!(matches!(
            classify_change(&json!({"fileId": "1A", "removed": false,
                "file": {"id": "1A", "mimeType": "image/jpeg", "trashed": true, "md5Checksum": "m"}})),
            ChangeKind::Removed(_)
        ));
        assert!(matches!(
            classify_change(&json!({"fileId": "1A", "removed": false,
                "file": {"id": "1A", "mimeType": "image/jpeg", "md5Checksum": "m"}})),
            ChangeKind::File(_)
        ));
        assert!(matches!(
            classify_change(&json!({"fileId": "1A", "file": {"id": "1A", "mimeType": "text/csv"}})),
            ChangeKind::Ignored
        ));
    }

    #[test]
    fn an_incomplete_search_is_narrowed_to_user_then_each_shared_drive() {
        let s = settings(None);
        let user = narrowed_list_url(&s, None, None);
        assert!(user.contains("corpora=user"), "{user}");
        assert!(!user.contains("allDrives"), "{user}");
        let one = narrowed_list_url(&s, Some("0ADriveTwo"), Some("p2"));
        for part in [
            "corpora=drive",
            "driveId=0ADriveTwo",
            "includeItemsFromAllDrives=true",
            "pageToken=p2",
        ] {
            assert!(one.contains(part), "{part} in {one}");
        }
        assert!(drives_url(&s, Some("d2")).contains("pageToken=d2"));
        assert!(incomplete(&json!({"incompleteSearch": true, "files": []})));
        assert!(!incomplete(&json!({"incompleteSearch": false})));
        assert!(!incomplete(&json!({})));
    }

    #[test]
    fn cursors_round_trip_with_their_phase() {
        let c = Cursor {
            v: CURSOR_VERSION,
            fp: "f".into(),
            phase: Phase::Listing {
                start: "41".into(),
                next: Some("n".into()),
            },
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains(r#""phase":"listing""#), "{s}");
        let back: Cursor = serde_json::from_str(&s).unwrap();
        assert_eq!(back.phase, c.phase);
    }
}
