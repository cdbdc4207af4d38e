//! Listing images: a recursive folder walk first, then Box's `changes` event stream from the
//! position taken before the walk started.
//!
//! **First run.** `GET /events?stream_position=now` gives the stream's head *before* anything is
//! listed, so a change made while the walk runs is seen by the next run rather than lost. Then
//! every configured folder is listed with `GET /folders/{id}/items` in marker mode
//! (`usemarker=true`, no 9,999 offset ceiling) and `fields=` asking only for what a file needs;
//! subfolders are queued (when `recursive`). The queue and the current folder's marker live in
//! the cursor, so a crash resumes on the right page. After the walk the events since its start
//! are read, and the run ends when the stream is drained, with the position as the cursor.
//!
//! **Later runs.** `GET /events?stream_type=changes&stream_position={pos}&limit=500` until a
//! page comes back empty, following `next_stream_position`. Box delivers events at least once,
//! so event ids already seen (the last [`MAX_SEEN_EVENTS`]) are skipped, and a file named twice
//! in a page is listed once. A file event counts when the file's `path_collection` or `parent`
//! is a configured folder (any ancestor, with `recursive`); `ITEM_TRASH` (whose path is the
//! Trash) and a move out of scope report the file removed. A folder moved or copied into scope
//! is queued and walked. Positions are kept as text: they exceed 2^53, and a float loses them.
//!
//! **Resets.** A marker Box no longer accepts (400) restarts that folder's listing; a stream
//! position Box no longer accepts (400) starts the whole walk again from a fresh `now`. The
//! host skips every (file, version) it already processed, so nothing is analysed or written
//! twice.
//!
//! **What counts as an image.** Box file objects have no MIME type: the extension decides
//! ([`IMAGE_EXTENSIONS`]), case-insensitively. **Version**: the content's SHA-1, else the
//! `file_version` id, else the etag. Not the etag first: writing our own metadata changes
//! nothing of the bytes, and the SHA-1 says "same bytes" exactly.
//!
//! Not handled: a trashed *folder* produces one event for the folder, not for its files, so its
//! images stay listed in ProofPix until a full resync.

use std::collections::VecDeque;

use proofpix_sdk::http::{Request, percent_encode};
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{self, BoxError};
use crate::settings::Settings;

/// Cursor format version.
const CURSOR_VERSION: u32 = 1;
/// Fields asked of every folder entry.
pub const ITEM_FIELDS: &str = "type,id,name,extension,size,sha1,file_version,etag,modified_at,parent,path_collection,item_status";
/// Events per page: Box's largest.
pub const EVENTS_LIMIT: u32 = 500;
/// Event ids remembered for de-duplication.
pub const MAX_SEEN_EVENTS: usize = 2000;
/// Deepest folder nesting walked; deeper folders are skipped with a warning.
pub const MAX_DEPTH: u32 = 64;
/// Most folders queued at once: a cursor must stay small (the host stores it).
pub const MAX_QUEUED_FOLDERS: usize = 20_000;
/// Longest stream position or marker accepted from Box.
const MAX_TOKEN_CHARS: usize = 4096;

/// Extensions that make a file an image.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "tif", "tiff", "heic", "heif", "avif",
    "bmp", "dng", "cr2", "cr3", "nef", "arw", "orf", "rw2", "raf", "pef", "srw", "psd",
];

/// Property keys stored with each file.
pub mod prop {
    pub const FOLDER: &str = "folder";
}

/// A folder still to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    /// Marker of the next page; `None` for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    pub depth: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    v: u32,
    /// [`Settings::fingerprint`] of the configuration the walk started under.
    fp: String,
    /// Where the event stream is read from once the queue is empty.
    stream: String,
    /// Folders still to list; the front one is being listed.
    queue: VecDeque<Pending>,
    /// Recently seen event ids, oldest first.
    #[serde(default)]
    seen: VecDeque<String>,
    /// `stream` was taken by this walk and not read yet: if Box refuses it, starting over again
    /// would loop.
    #[serde(default)]
    fresh: bool,
}

/// One page of discovery.
///
/// # Errors
/// Configuration problems, Box errors (throttling, 5xx and malformed pages are retryable).
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let settings = Settings::load()?;
    let previous: Option<Cursor> = match pagination::decode(cursor.as_deref()) {
        Ok(c) => c,
        Err(_) => {
            log::log(
                log::Level::Warn,
                "unreadable Box cursor; listing every configured folder again",
                &[],
            );
            None
        }
    };
    let mut cur = match previous {
        Some(c) if c.v == CURSOR_VERSION && c.fp == settings.fingerprint() => c,
        previous => {
            let mut fresh = start(&settings)?;
            // Keep the seen ids: the next events read may repeat ones already handled.
            if let Some(p) = previous {
                fresh.seen = p.seen;
            }
            fresh
        }
    };
    if cur.queue.is_empty() {
        events_page(&settings, &mut cur)
    } else {
        list_page(&settings, &mut cur)
    }
}

/// A new walk: the stream head first, then every configured folder queued.
fn start(settings: &Settings) -> Result<Cursor, PluginError> {
    let url = Request::get(&format!("{}/2.0/events", settings.api))
        .query("stream_position", "now")
        .url()
        .to_string();
    let v = api::get_json(&url, "reading the event stream's position")?;
    let stream = position_of(&v["next_stream_position"]).ok_or_else(|| {
        PluginError::transient("Box sent no usable next_stream_position for stream_position=now")
    })?;
    Ok(Cursor {
        v: CURSOR_VERSION,
        fp: settings.fingerprint(),
        stream,
        queue: settings
            .folders
            .iter()
            .map(|id| Pending {
                id: id.clone(),
                marker: None,
                depth: 0,
            })
            .collect(),
        seen: VecDeque::new(),
        fresh: true,
    })
}

/// A stream position or marker as text: digits for positions (numbers above 2^53 must not go
/// through a float).
pub fn position_of(v: &Value) -> Option<String> {
    let s = match v {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_digit())).then_some(s)
}

fn items_url(settings: &Settings, p: &Pending) -> String {
    let mut r = Request::get(&format!(
        "{}/2.0/folders/{}/items",
        settings.api,
        percent_encode(&p.id)
    ))
    .query("fields", ITEM_FIELDS)
    .query("limit", &settings.page_size.to_string())
    .query("usemarker", "true");
    if let Some(m) = &p.marker {
        r = r.query("marker", m);
    }
    r.url().to_string()
}

fn list_page(settings: &Settings, cur: &mut Cursor) -> Result<Page, PluginError> {
    let Some(front) = cur.queue.front().cloned() else {
        return events_page(settings, cur);
    };
    let what = format!("listing folder {}", front.id);
    let mut resp = api::get(&items_url(settings, &front))?;
    if resp.status == 400 && front.marker.is_some() {
        let e = BoxError::from_response(&resp);
        log::log(
            log::Level::Warn,
            "Box refused a listing marker; listing the folder again from its start (files already processed are skipped)",
            &[("folder", &front.id), ("code", &e.code)],
        );
        let restarted = Pending {
            marker: None,
            ..front.clone()
        };
        resp = api::get(&items_url(settings, &restarted))?;
        if let Some(f) = cur.queue.front_mut() {
            f.marker = None;
        }
    }
    if resp.status == 404 {
        let e = BoxError::from_response(&resp);
        if front.depth == 0 {
            return Err(PluginError::invalid_config(
                Some(crate::settings::field::FOLDERS),
                format!(
                    "Box has no folder {} that ProofPix's account can see ({}). Share the folder with that account (test the connection to see which it is) or fix the id",
                    front.id,
                    e.detail()
                ),
            ));
        }
        // A subfolder deleted or unshared since it was queued.
        log::log(
            log::Level::Info,
            "a subfolder disappeared while listing; skipping it",
            &[("folder", &front.id)],
        );
        cur.queue.pop_front();
        return Ok(Page {
            files: Vec::new(),
            removed: Vec::new(),
            more: true,
            cursor: Some(pagination::encode(cur)?),
        });
    }
    let body = api::json_of(resp, &what)?;
    let entries = body["entries"].as_array().ok_or_else(|| {
        PluginError::transient(format!("Box sent a page without entries while {what}"))
    })?;
    let mut files = Vec::new();
    let mut subfolders = Vec::new();
    for entry in entries {
        match entry["type"].as_str() {
            Some("file") => {
                if let Some(f) = remote_file(entry) {
                    files.push(f);
                }
            }
            Some("folder") if settings.recursive => {
                if let Some(id) = api::id_of(&entry["id"]) {
                    subfolders.push(id);
                }
            }
            _ => {}
        }
    }
    let next = match &body["next_marker"] {
        Value::String(m) if !m.is_empty() => {
            if m.len() > MAX_TOKEN_CHARS {
                return Err(PluginError::transient(format!(
                    "Box sent a marker of {} characters while {what}",
                    m.len()
                )));
            }
            Some(m.clone())
        }
        _ => None,
    };
    match next {
        Some(m) => {
            if let Some(f) = cur.queue.front_mut() {
                f.marker = Some(m);
            }
        }
        None => {
            cur.queue.pop_front();
        }
    }
    queue_folders(cur, subfolders, front.depth + 1);
    // After the walk's last page the events since its start are read, until a page comes back
    // empty: a run ends only with the stream drained.
    Ok(Page {
        files,
        removed: Vec::new(),
        more: true,
        cursor: Some(pagination::encode(cur)?),
    })
}

fn queue_folders(cur: &mut Cursor, ids: Vec<String>, depth: u32) {
    for id in ids {
        if depth > MAX_DEPTH || cur.queue.len() >= MAX_QUEUED_FOLDERS {
            log::log(
                log::Level::Warn,
                "folder nesting or count over the walk's limit; skipping a folder",
                &[("folder", &id)],
            );
            continue;
        }
        if !cur.queue.iter().any(|p| p.id == id) {
            cur.queue.push_back(Pending {
                id,
                marker: None,
                depth,
            });
        }
    }
}

fn events_page(settings: &Settings, cur: &mut Cursor) -> Result<Page, PluginError> {
    let url = Request::get(&format!("{}/2.0/events", settings.api))
        .query("stream_type", "changes")
        .query("stream_position", &cur.stream)
        .query("limit", &EVENTS_LIMIT.to_string())
        .url()
        .to_string();
    let resp = api::get(&url)?;
    if resp.status == 400 {
        let e = BoxError::from_response(&resp);
        if cur.fresh {
            return Err(PluginError::transient(format!(
                "Box refused the stream position it gave at the start of this listing ({}); retrying the same position, so the sync fails until Box accepts it",
                e.detail()
            )));
        }
        log::log(
            log::Level::Warn,
            "Box no longer accepts the saved stream position; listing every configured folder again (files already processed are skipped)",
            &[("code", &e.code)],
        );
        let seen = std::mem::take(&mut cur.seen);
        *cur = start(settings)?;
        cur.seen = seen;
        return list_page(settings, cur);
    }
    let body = api::json_of(resp, "reading the event stream")?;
    let entries = body["entries"]
        .as_array()
        .ok_or_else(|| PluginError::transient("Box sent an events page without entries"))?;
    let next = position_of(&body["next_stream_position"]).ok_or_else(|| {
        PluginError::transient("Box sent an events page without a usable next_stream_position")
    })?;
    let changes = apply_events(settings, entries, &mut cur.seen);
    queue_folders(cur, changes.folders, 1);
    cur.stream = next;
    cur.fresh = false;
    let more = !entries.is_empty() || !cur.queue.is_empty();
    Ok(Page {
        files: changes.files,
        removed: changes.removed,
        more,
        cursor: Some(pagination::encode(cur)?),
    })
}

/// What a page of events means for the configured folders.
#[derive(Debug, Default)]
pub struct Changes {
    pub files: Vec<RemoteFile>,
    pub removed: Vec<String>,
    /// Folders that came into scope and must be walked.
    pub folders: Vec<String>,
}

/// Whether an item (file or folder object) lies in a configured folder.
pub fn in_scope(settings: &Settings, item: &Value) -> bool {
    if settings.folders.iter().any(|f| f == "0") {
        return true;
    }
    let parent = api::id_of(&item["parent"]["id"]);
    if parent
        .as_ref()
        .is_some_and(|p| settings.folders.contains(p))
    {
        return true;
    }
    settings.recursive
        && item["path_collection"]["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| api::id_of(&e["id"]))
            .any(|id| settings.folders.contains(&id))
}

/// Applies a page of events in order; `seen` is updated.
pub fn apply_events(
    settings: &Settings,
    entries: &[Value],
    seen: &mut VecDeque<String>,
) -> Changes {
    let mut out = Changes::default();
    for event in entries {
        let Some(event_id) = event["event_id"].as_str() else {
            continue;
        };
        if seen.iter().any(|s| s == event_id) {
            continue;
        }
        seen.push_back(event_id.chars().take(128).collect());
        while seen.len() > MAX_SEEN_EVENTS {
            seen.pop_front();
        }
        let source = &event["source"];
        let kind = event["event_type"].as_str().unwrap_or_default();
        let Some(id) = api::id_of(&source["id"]) else {
            continue;
        };
        let trashed = kind == "ITEM_TRASH"
            || kind == "ITEM_DELETE"
            || source["item_status"]
                .as_str()
                .is_some_and(|s| s != "active");
        match source["type"].as_str() {
            Some("file") => {
                out.files.retain(|f| f.id != id);
                out.removed.retain(|r| *r != id);
                if trashed {
                    out.removed.push(id);
                } else if in_scope(settings, source) {
                    if let Some(f) = remote_file(source) {
                        out.files.push(f);
                    }
                } else if kind == "ITEM_MOVE" {
                    // Moved out of the configured folders.
                    out.removed.push(id);
                }
            }
            Some("folder")
                if settings.recursive
                    && !trashed
                    && matches!(
                        kind,
                        "ITEM_MOVE" | "ITEM_COPY" | "ITEM_UNDELETE_VIA_TRASH" | "ITEM_CREATE"
                    )
                    && in_scope(settings, source)
                    && !out.folders.contains(&id) =>
            {
                out.folders.push(id);
            }
            _ => {}
        }
    }
    out
}

/// The extension of a file, lower case: the `extension` field, else the name's.
fn extension_of(item: &Value) -> Option<String> {
    item["extension"]
        .as_str()
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .or_else(|| {
            item["name"]
                .as_str()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, e)| e.to_string())
        })
        .map(|e| e.to_ascii_lowercase())
}

/// Whether a file object is an image worth analysing.
pub fn is_image(item: &Value) -> bool {
    item["type"].as_str() == Some("file")
        && extension_of(item).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// What changes exactly when the bytes do.
pub fn version_of(item: &Value) -> Option<String> {
    let hex = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
    };
    if let Some(h) = hex(&item["sha1"]).or_else(|| hex(&item["file_version"]["sha1"])) {
        return Some(format!("sha1:{h}"));
    }
    if let Some(v) = api::id_of(&item["file_version"]["id"]) {
        return Some(format!("version:{v}"));
    }
    item["etag"]
        .as_str()
        .filter(|e| !e.is_empty() && e.len() <= 64)
        .map(|e| format!("etag:{e}"))
}

fn mime_of(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        _ => return None,
    })
}

/// A file object as a remote file, when it is an image.
pub fn remote_file(item: &Value) -> Option<RemoteFile> {
    if !is_image(item) {
        return None;
    }
    let id = api::id_of(&item["id"])?;
    let version = version_of(item)?;
    let parent = api::id_of(&item["parent"]["id"]);
    let path: Vec<&str> = item["path_collection"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| api::id_of(&e["id"]).as_deref() != Some("0"))
        .filter_map(|e| e["name"].as_str())
        .collect();
    let mut properties = Vec::new();
    if let Some(p) = &parent {
        properties.push((prop::FOLDER.to_string(), p.clone()));
    }
    let name: String = item["name"]
        .as_str()
        .unwrap_or(&id)
        .chars()
        .take(255)
        .collect();
    Some(RemoteFile {
        mime_type: extension_of(item)
            .as_deref()
            .and_then(mime_of)
            .map(String::from),
        size: item["size"].as_u64(),
        modified: item["modified_at"].as_str().map(String::from),
        version,
        container: parent,
        web_url: Some(format!("https://app.box.com/file/{id}")),
        path: (!path.is_empty()).then(|| path.join("/")),
        properties,
        name,
        id,
    })
}

/// Where the host reads a file: `/files/{id}/content`, which 302-redirects to a
/// pre-authenticated URL on `dl.boxcloud.com` (an endpoint without credentials, so the bearer
/// token stays on the API host); it honours Range, so the host reads only what it needs.
///
/// # Errors
/// A file id that is not a Box id (from a foreign cursor): `fatal`.
pub fn download(file: RemoteFile) -> Result<DownloadSpec, PluginError> {
    let settings = Settings::load()?;
    let id = api::id_of(&Value::String(file.id.clone())).ok_or_else(|| {
        PluginError::fatal(format!(
            "{} is not a Box file id; run a full listing",
            file.id
        ))
    })?;
    let url = format!("{}/2.0/files/{id}/content", settings.api);
    Ok(DownloadSpec {
        location: ContentLocation::Http(Request::get(&url).into_wit()),
        supports_range: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawConfig;
    use serde_json::json;

    fn settings(recursive: bool) -> Settings {
        RawConfig {
            subject_id: Some("1".into()),
            folders: vec!["100".into()],
            recursive,
            write_back: true,
            summary_max: 1000,
            page_size: 1000,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    fn file(id: &str, name: &str, path: &[&str]) -> Value {
        let entries: Vec<Value> = path
            .iter()
            .map(|p| json!({"type": "folder", "id": p, "name": format!("f{p}")}))
            .collect();
        json!({
            "type": "file", "id": id, "name": name, "sha1": "ABCDEF0123", "etag": "1",
            "file_version": {"type": "file_version", "id": "77"},
            "parent": {"type": "folder", "id": path.last().copied().unwrap_or("0")},
            "path_collection": {"total_count": entries.len(), "entries": entries},
            "item_status": "active",
        })
    }

    fn event(id: &str, kind: &str, source: Value) -> Value {
        json!({"type": "event", "event_id": id, "event_type": kind, "source": source})
    }

    #[test]
    fn images_are_told_by_extension_whatever_its_case() {
        assert!(is_image(&json!({"type": "file", "name": "SCAN.JPG"})));
        assert!(is_image(
            &json!({"type": "file", "name": "x", "extension": "heic"})
        ));
        assert!(!is_image(&json!({"type": "file", "name": "report.pdf"})));
        assert!(!is_image(&json!({"type": "folder", "name": "a.jpg"})));
    }

    #[test]
    fn the_sha1_wins_over_version_ids_and_etags() {
        let f = file("5", "a.jpg", &["0", "100"]);
        assert_eq!(version_of(&f).as_deref(), Some("sha1:abcdef0123"));
        let no_sha = json!({"file_version": {"id": "77"}, "etag": "3"});
        assert_eq!(version_of(&no_sha).as_deref(), Some("version:77"));
    }

    #[test]
    fn stream_positions_above_2_53_survive_exactly() {
        let v: Value = serde_json::from_str(r#"{"p": 12000000000000007}"#).unwrap();
        assert_eq!(position_of(&v["p"]).as_deref(), Some("12000000000000007"));
        assert_eq!(
            position_of(&json!("12000000000000007")).as_deref(),
            Some("12000000000000007")
        );
        assert_eq!(position_of(&json!(1.2e16)), None);
        assert_eq!(position_of(&json!("now")), None);
    }

    #[test]
    fn duplicate_events_are_applied_once_and_scope_follows_the_path() {
        let s = settings(true);
        let mut seen = VecDeque::new();
        let inside = file("5", "a.jpg", &["0", "100", "200"]);
        let outside = file("6", "b.jpg", &["0", "300"]);
        let page = vec![
            event("e1", "ITEM_UPLOAD", inside.clone()),
            event("e1", "ITEM_UPLOAD", inside.clone()),
            event("e2", "ITEM_UPLOAD", outside),
            event("e3", "METADATA_INSTANCE_CREATE", inside.clone()),
        ];
        let c = apply_events(&s, &page, &mut seen);
        assert_eq!(c.files.len(), 1, "{:?}", c.files);
        assert_eq!(c.files[0].id, "5");
        assert_eq!(c.files[0].path.as_deref(), Some("f100/f200"));
        // The same event id in the next page is skipped too.
        let again = apply_events(&s, &[event("e1", "ITEM_UPLOAD", inside)], &mut seen);
        assert!(again.files.is_empty());
        // Not recursive: only direct children of the folder count.
        let flat = apply_events(
            &settings(false),
            &[event(
                "e9",
                "ITEM_UPLOAD",
                file("5", "a.jpg", &["0", "100", "200"]),
            )],
            &mut VecDeque::new(),
        );
        assert!(flat.files.is_empty());
    }

    #[test]
    fn trash_and_moves_out_report_removals_and_the_last_event_wins() {
        let s = settings(true);
        let mut trashed = file("5", "a.jpg", &["1"]);
        trashed["item_status"] = json!("trashed");
        let moved_out = file("7", "c.jpg", &["0", "300"]);
        let c = apply_events(
            &s,
            &[
                event("a", "ITEM_UPLOAD", file("5", "a.jpg", &["0", "100"])),
                event("b", "ITEM_TRASH", trashed),
                event("c", "ITEM_MOVE", moved_out),
                event(
                    "d",
                    "ITEM_MOVE",
                    json!({"type": "folder", "id": "400", "parent": {"id": "100"}, "item_status": "active"}),
                ),
            ],
            &mut VecDeque::new(),
        );
        assert!(c.files.is_empty());
        assert_eq!(c.removed, ["5", "7"]);
        assert_eq!(c.folders, ["400"]);
    }

    #[test]
    fn a_listed_file_keeps_its_folder_and_a_mime_type_from_the_extension() {
        let f = remote_file(&file("5", "IMG_1.JPG", &["0", "100"])).unwrap();
        assert_eq!(f.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(f.property(prop::FOLDER), Some("100"));
        assert_eq!(f.container.as_deref(), Some("100"));
        assert!(
            remote_file(&json!({"type": "file", "id": "../x", "name": "a.jpg", "sha1": "ab"}))
                .is_none()
        );
    }
}
