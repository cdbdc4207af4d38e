//! Listing images: `list_folder` once, then `list_folder/continue` with the saved cursor
//! (reference §7.2).
//!
//! A first run calls `POST /2/files/list_folder` (recursive, `include_deleted: false`,
//! `limit` = the page size) and follows `list_folder/continue` while `has_more`; the last page's
//! cursor is kept and the next run continues from it, getting only what changed: new and changed
//! files, and `deleted` entries.
//!
//! **Team spaces.** On a team account whose root namespace is not the member's home namespace
//! (`root_info` of `users/get_current_account`), every call sends `Dropbox-API-Path-Root:
//! {".tag": "root", "root": "<root_namespace_id>"}` (Dropbox's Namespace and Team Files guides),
//! so paths are from the team space's root and `folder` empty means the whole team space, not
//! only the member's home folder. The root is read again at every full listing; a cursor made
//! under another root starts over.
//!
//! **Reset.** A cursor Dropbox no longer honours answers 409 `reset`. The listing then starts
//! over with `list_folder` in the same call; the host skips every (file, version) it already
//! processed, so nothing is analysed or written back twice. A second `reset` right after is
//! `transient`.
//!
//! **What counts as an image.** A downloadable file whose name ends in an image extension
//! (Dropbox lists no MIME types). Folders and everything else are skipped.
//!
//! **Ids and versions.** A file's id is Dropbox's `id:…`, which survives renames and moves; its
//! version is the `content_hash` (else the `rev`), which changes exactly when the bytes do, so
//! writing our own properties (which changes neither) does not list the file as new.
//!
//! **Deleted entries** carry only a path. To report which file went away, the plugin keeps a
//! bounded index of `path_lower` → id of the images it listed ([`PATH_INDEX_KEY`], at most
//! [`MAX_INDEX_BYTES`] of state); a deleted folder removes everything below it. Images beyond
//! the cap are still listed, but their deletion is not reported.

use std::collections::BTreeMap;

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, DbxError};
use crate::settings::{Settings, field};

/// Cursor format version.
const CURSOR_VERSION: u32 = 1;
/// Longest Dropbox cursor kept; real ones are a few hundred characters.
const MAX_CURSOR_CHARS: usize = 16 * 1024;
/// Longest id or path accepted from a listing entry.
const MAX_ID_CHARS: usize = 512;
const MAX_PATH_CHARS: usize = 4096;
/// State key of the `path_lower` → id index.
pub const PATH_INDEX_KEY: &str = "path-index";
/// Most bytes the index may take in the plugin's state (the host caps state at 1 MiB).
pub const MAX_INDEX_BYTES: usize = 512 * 1024;

/// Extensions that make a file an image.
const IMAGE_EXTENSIONS: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("jpe", "image/jpeg"),
    ("jfif", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("heic", "image/heic"),
    ("heif", "image/heif"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("dng", "image/x-adobe-dng"),
    ("cr2", ""),
    ("cr3", ""),
    ("nef", ""),
    ("arw", ""),
    ("orf", ""),
    ("rw2", ""),
    ("raf", ""),
    ("pef", ""),
    ("srw", ""),
    ("psd", "image/vnd.adobe.photoshop"),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    v: u32,
    /// [`Settings::fingerprint`] of the configuration the listing was made under.
    fp: String,
    /// Dropbox's cursor.
    dbx: String,
    /// The `Dropbox-API-Path-Root` the listing was made under (a cursor belongs to its root).
    #[serde(default)]
    root: Option<String>,
}

/// One page of discovery.
///
/// # Errors
/// Configuration problems (a folder that does not exist names `folder`), Dropbox errors
/// (throttling, 5xx and malformed pages are retryable), and a second `reset` in a row.
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let settings = Settings::load()?;
    let previous: Option<Cursor> = pagination::decode(cursor.as_deref())?;
    let body = match previous {
        Some(c)
            if c.v == CURSOR_VERSION
                && c.fp == settings.fingerprint()
                && c.root == api::path_root() =>
        {
            let resp = api::send(
                &settings,
                "files/list_folder/continue",
                &json!({"cursor": c.dbx}),
            )?;
            if resp.status == 409 && DbxError::from_response(&resp).tag() == "reset" {
                log::log(
                    log::Level::Warn,
                    "Dropbox reset the listing cursor; listing the folder again from the start (files already processed are skipped)",
                    &[],
                );
                start(&settings)?
            } else {
                folder_result(&settings, &resp)?
            }
        }
        _ => start(&settings)?,
    };
    page_of(&settings, &body)
}

/// The first `list_folder` request: a full listing, from the account's root. On a team space
/// that is the team space's root (`Dropbox-API-Path-Root`), which holds the team folders
/// besides the member's home folder; without the header `list_folder("")` would list only the
/// home folder.
fn start(settings: &Settings) -> Result<Value, PluginError> {
    let (root, _) = api::resolve_path_root(settings)?;
    if root.is_some() {
        log::log(
            log::Level::Info,
            "team space: listing from the team's root namespace",
            &[],
        );
    }
    let resp = api::send(
        settings,
        "files/list_folder",
        &json!({
            "path": settings.folder,
            "recursive": true,
            "include_deleted": false,
            "include_non_downloadable_files": false,
            "limit": settings.page_size,
        }),
    )?;
    if resp.status == 409 && DbxError::from_response(&resp).tag() == "reset" {
        return Err(PluginError::transient(
            "Dropbox reset a listing that had just started; the next attempt starts over",
        ));
    }
    folder_result(settings, &resp)
}

fn folder_result(
    settings: &Settings,
    resp: &proofpix_sdk::http::Response,
) -> Result<Value, PluginError> {
    let what = format!("listing {}", settings.folder_label());
    if resp.status == 409 {
        let e = DbxError::from_response(resp);
        if e.tag() == "path" {
            let why = match e.tags.get(1).map(String::as_str) {
                Some("not_found") => "does not exist",
                Some("not_folder") => "is a file, not a folder",
                _ => "cannot be listed",
            };
            return Err(PluginError::invalid_config(
                Some(field::FOLDER),
                format!(
                    "the folder {} {why} in this Dropbox ({}). Write its path from the root as the Dropbox website shows it after /home (an App-folder app sees its app folder as the root), or leave `folder` empty for everything",
                    settings.folder, e.summary
                ),
            ));
        }
        return Err(e.into_plugin_error(&what));
    }
    api::json_of(resp, &what)
}

/// Turns one `list_folder` result into a page, updating the path index.
fn page_of(settings: &Settings, body: &Value) -> Result<Page, PluginError> {
    let malformed = |what: &str| {
        PluginError::transient(format!(
            "Dropbox sent a list_folder page without {what} while listing {}",
            settings.folder_label()
        ))
    };
    let entries = body["entries"]
        .as_array()
        .ok_or_else(|| malformed("entries"))?;
    let next = body["cursor"]
        .as_str()
        .filter(|c| !c.is_empty() && c.len() <= MAX_CURSOR_CHARS)
        .ok_or_else(|| malformed("a usable cursor"))?;
    let more = body["has_more"]
        .as_bool()
        .ok_or_else(|| malformed("has_more"))?;

    let mut index = PathIndex::load();
    let mut files = Vec::new();
    let mut removed = Vec::new();
    for entry in entries {
        match entry[".tag"].as_str() {
            Some("file") => {
                if let Some(f) = remote_file(settings, entry) {
                    if let Some(path) = entry["path_lower"].as_str() {
                        index.insert(path, &f.id);
                    }
                    removed.retain(|r| r != &f.id);
                    files.push(f);
                }
            }
            Some("deleted") => {
                if let Some(path) = entry["path_lower"].as_str() {
                    for id in index.remove_under(path) {
                        if !files.iter().any(|f| f.id == id) && !removed.contains(&id) {
                            removed.push(id);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if index.full {
        log::warn(
            "the index of listed paths is full; deletions of images listed from now on are not reported",
        );
    }
    index.save()?;
    let cursor = Cursor {
        v: CURSOR_VERSION,
        fp: settings.fingerprint(),
        dbx: next.to_string(),
        root: api::path_root(),
    };
    Ok(Page {
        files,
        removed,
        cursor: Some(pagination::encode(&cursor)?),
        more,
    })
}

/// The MIME type of an image file name, `Some("")` for an image with no registered type, `None`
/// for anything that is not an image.
pub fn image_type(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    IMAGE_EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, mime)| *mime)
}

/// What changes exactly when the bytes do.
pub fn version_of(entry: &Value) -> Option<String> {
    let hash = entry["content_hash"].as_str().filter(|h| !h.is_empty());
    let rev = entry["rev"].as_str().filter(|r| !r.is_empty());
    match (hash, rev) {
        (Some(h), _) => Some(format!("ch:{h}")),
        (None, Some(r)) => Some(format!("rev:{r}")),
        _ => None,
    }
}

/// A `file` entry as a remote file, when it is a downloadable image.
pub fn remote_file(settings: &Settings, entry: &Value) -> Option<RemoteFile> {
    let name = entry["name"].as_str()?;
    let mime = image_type(name)?;
    if entry["is_downloadable"].as_bool() == Some(false) {
        return None;
    }
    let id = entry["id"]
        .as_str()
        .filter(|id| id.starts_with("id:") && id.len() <= MAX_ID_CHARS)?;
    let version = version_of(entry)?;
    let path = entry["path_display"]
        .as_str()
        .or_else(|| entry["path_lower"].as_str())
        .filter(|p| p.len() <= MAX_PATH_CHARS);
    Some(RemoteFile {
        id: id.to_string(),
        name: name.to_string(),
        mime_type: (!mime.is_empty()).then(|| mime.to_string()),
        size: entry["size"].as_u64(),
        modified: entry["server_modified"].as_str().map(String::from),
        version,
        container: Some(if settings.folder.is_empty() {
            "/".to_string()
        } else {
            settings.folder.clone()
        }),
        web_url: None,
        path: path.map(String::from),
        properties: Vec::new(),
    })
}

/// Where the host reads a file: `POST {content}/2/files/download` with the file's id in
/// `Dropbox-API-Arg`, no body and no `Content-Type` (Dropbox refuses a JSON one on content
/// routes). The content host is declared with credentials; Dropbox serves the bytes itself
/// (no redirect) and honours `Range`, so the host reads only head and tail.
///
/// # Errors
/// A file whose id is not a Dropbox id (from a foreign cursor): `fatal`.
pub fn download(file: RemoteFile) -> Result<DownloadSpec, PluginError> {
    let settings = Settings::load()?;
    if !file.id.starts_with("id:") {
        return Err(PluginError::fatal(format!(
            "file {} has no Dropbox id; reset the integration's cursor to list again",
            file.id
        )));
    }
    let url = format!("{}/2/files/download", settings.content);
    let mut request =
        Request::post(&url).header("dropbox-api-arg", &api::api_arg(&json!({"path": file.id})));
    if let Some(root) = api::path_root() {
        request = request.header("dropbox-api-path-root", &root);
    }
    Ok(DownloadSpec {
        location: ContentLocation::Http(request.into_wit()),
        supports_range: true,
    })
}

/// `path_lower` → id of the images listed, kept in the plugin's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PathIndex {
    paths: BTreeMap<String, String>,
    #[serde(skip)]
    bytes: usize,
    #[serde(skip)]
    changed: bool,
    /// An entry did not fit this call.
    #[serde(skip)]
    full: bool,
}

/// Bytes an entry takes in the stored JSON, roughly.
fn entry_bytes(path: &str, id: &str) -> usize {
    path.len() + id.len() + 8
}

impl PathIndex {
    fn load() -> Self {
        let mut index: PathIndex = state::get_json(PATH_INDEX_KEY).unwrap_or_default();
        index.bytes = index.paths.iter().map(|(p, i)| entry_bytes(p, i)).sum();
        index
    }

    fn save(&self) -> Result<(), PluginError> {
        if self.changed {
            state::set_json(PATH_INDEX_KEY, self)?;
        }
        Ok(())
    }

    /// Records that `path` holds `id`, dropping the id's previous path (a move).
    pub fn insert(&mut self, path: &str, id: &str) {
        if path.len() > MAX_PATH_CHARS {
            return;
        }
        if self.paths.get(path).is_some_and(|i| i == id) {
            return;
        }
        let stale: Vec<String> = self
            .paths
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            self.paths.remove(&p);
            self.bytes = self.bytes.saturating_sub(entry_bytes(&p, id));
        }
        if let Some(old) = self.paths.remove(path) {
            self.bytes = self.bytes.saturating_sub(entry_bytes(path, &old));
        }
        self.changed = true;
        if self.bytes + entry_bytes(path, id) > MAX_INDEX_BYTES {
            self.full = true;
            return;
        }
        self.bytes += entry_bytes(path, id);
        self.paths.insert(path.to_string(), id.to_string());
    }

    /// Forgets `path` and everything below it; returns their ids.
    pub fn remove_under(&mut self, path: &str) -> Vec<String> {
        let below = format!("{}/", path.trim_end_matches('/'));
        let gone: Vec<String> = self
            .paths
            .range(path.to_string()..)
            // Everything below `path` sorts after it, among names that merely start with it
            // (`/photos-old` sorts between `/photos` and `/photos/`).
            .take_while(|(p, _)| p.starts_with(path))
            .filter(|(p, _)| p.as_str() == path || p.starts_with(&below))
            .map(|(p, _)| p.clone())
            .collect();
        let mut ids = Vec::new();
        for p in gone {
            if let Some(id) = self.paths.remove(&p) {
                self.bytes = self.bytes.saturating_sub(entry_bytes(&p, &id));
                ids.push(id);
                self.changed = true;
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawConfig;

    fn settings() -> Settings {
        RawConfig {
            folder: Some("/Photos".into()),
            write_back: true,
            page_size: 100,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    fn file(name: &str) -> Value {
        json!({
            ".tag": "file", "name": name, "id": "id:a4ayc_80_OEAAAAAAAAAXw",
            "path_lower": format!("/photos/{}", name.to_lowercase()), "path_display": format!("/Photos/{name}"),
            "rev": "a1c10ce0dd78", "size": 7212, "server_modified": "2026-01-02T03:04:05Z",
            "content_hash": "e3b0c442", "is_downloadable": true
        })
    }

    #[test]
    fn images_are_told_by_extension() {
        for (name, want) in [
            ("a.jpg", Some("image/jpeg")),
            ("B.JPEG", Some("image/jpeg")),
            ("scan.heic", Some("image/heic")),
            ("raw.NEF", Some("")),
            ("report.pdf", None),
            ("noext", None),
            ("archive.jpg.zip", None),
        ] {
            assert_eq!(image_type(name), want, "{name}");
        }
    }

    #[test]
    fn a_file_entry_becomes_a_remote_file_keyed_by_its_dropbox_id() {
        let f = remote_file(&settings(), &file("Ångström.jpg")).unwrap();
        assert_eq!(f.id, "id:a4ayc_80_OEAAAAAAAAAXw");
        assert_eq!(f.version, "ch:e3b0c442");
        assert_eq!(f.name, "Ångström.jpg");
        assert_eq!(f.path.as_deref(), Some("/Photos/Ångström.jpg"));
        assert_eq!(f.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(f.size, Some(7212));
        assert_eq!(f.container.as_deref(), Some("/Photos"));
    }

    #[test]
    fn non_images_non_downloadable_files_and_bad_ids_are_skipped() {
        let s = settings();
        assert!(remote_file(&s, &file("notes.txt")).is_none());
        let mut cloud_doc = file("a.jpg");
        cloud_doc["is_downloadable"] = json!(false);
        assert!(remote_file(&s, &cloud_doc).is_none());
        let mut foreign = file("a.jpg");
        foreign["id"] = json!("../../etc");
        assert!(remote_file(&s, &foreign).is_none());
        let mut no_hash = file("a.jpg");
        no_hash["content_hash"] = Value::Null;
        assert_eq!(
            remote_file(&s, &no_hash).unwrap().version,
            "rev:a1c10ce0dd78"
        );
    }

    #[test]
    fn the_path_index_follows_moves_and_folder_deletions() {
        let mut index = PathIndex::default();
        index.insert("/photos/a.jpg", "id:A");
        index.insert("/photos/sub/b.jpg", "id:B");
        index.insert("/photos-old/c.jpg", "id:C");
        index.insert("/photos/moved.jpg", "id:A");
        assert_eq!(index.remove_under("/photos/a.jpg"), Vec::<String>::new());
        let mut gone = index.remove_under("/photos");
        gone.sort();
        assert_eq!(gone, ["id:A", "id:B"]);
        assert_eq!(index.remove_under("/photos-old/c.jpg"), ["id:C"]);
        assert_eq!(index.bytes, 0);
    }

    #[test]
    fn the_path_index_stops_growing_at_its_cap() {
        let mut index = PathIndex::default();
        let mut i = 0;
        while index.bytes + 100 < MAX_INDEX_BYTES {
            index.insert(&format!("/p/{i:040}.jpg"), &format!("id:{i:022}"));
            i += 1;
        }
        let before = index.paths.len();
        for j in 0..100 {
            index.insert(&format!("/q/{j:040}.jpg"), &format!("id:q{j:021}"));
        }
        assert!(index.bytes <= MAX_INDEX_BYTES);
        assert!(index.paths.len() <= before + 2);
        assert!(index.full);
    }
}
