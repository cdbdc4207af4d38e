//! Listing images: one `delta` feed per library, the deltaLink kept as the sync cursor.
//!
//! A first run calls `GET /drives/{id}/root/delta` without a token, which is Graph's full
//! enumeration, and follows `@odata.nextLink` page by page; the last page's `@odata.deltaLink`
//! is kept and the next run starts from it, getting only what changed (reference §2.2). Libraries
//! are listed one after the other; the cursor holds every library's link and which one is being
//! paged, so a crash resumes on the right page of the right library.
//!
//! **Resync.** A delta link Graph no longer knows answers 410 Gone (`resyncRequired`, or the
//! `resync*` inner codes), with a `Location` that restarts enumeration. The library is then
//! listed again from the start; the host skips every file version it already processed, so no
//! file is analysed or written back twice.
//!
//! **What counts as an image.** A file with the `image` facet or an `image/*` MIME type; a file
//! stored as `application/octet-stream` counts when its extension is an image format. Folders,
//! OneNote packages and everything else are skipped; delta has no server-side filter.
//!
//! **Version.** The content hash (`quickXorHash` on SharePoint), else `cTag`, else `eTag`. Not
//! the eTag first: writing our own columns changes the eTag and lists the item in delta again,
//! and SharePoint leaves `cTag` out of delta, so only the content hash says "same bytes". When
//! Graph sends neither hash nor cTag, the eTag our own write produced is remembered and read as
//! "unchanged" ([`crate::own_write`]).

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::{self, GraphError};
use crate::libraries::{self, Library};
use crate::own_write;
use crate::settings::Settings;

/// Cursor format version.
const CURSOR_VERSION: u32 = 1;

/// Properties asked of every delta item (Graph returns `sharepointIds` only when selected).
const SELECT: &str = "id,name,size,eTag,cTag,file,image,photo,folder,package,root,deleted,parentReference,lastModifiedDateTime,webUrl,sharepointIds";

/// Extensions that make an `application/octet-stream` file an image.
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "tif", "tiff", "heic", "heif", "avif",
    "bmp", "dng", "cr2", "cr3", "nef", "arw", "orf", "rw2", "raf", "pef", "srw", "psd",
];

/// Property keys stored with each file.
pub mod prop {
    pub const DRIVE: &str = "drive";
    pub const ITEM: &str = "item";
    pub const SITE: &str = "site";
    pub const LIST: &str = "list";
    pub const LIST_ITEM: &str = "list_item";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    v: u32,
    /// [`Settings::fingerprint`] of the configuration the libraries were resolved under.
    fp: String,
    libs: Vec<Library>,
    /// Index of the library being listed.
    at: usize,
}

/// One page of discovery.
///
/// # Errors
/// Configuration problems, Graph errors (throttling, 5xx and malformed pages are retryable),
/// and a second 410 right after a restart.
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let settings = Settings::load()?;
    let previous: Option<Cursor> = pagination::decode(cursor.as_deref())?;
    let mut cur = match previous {
        Some(c)
            if c.v == CURSOR_VERSION && c.fp == settings.fingerprint() && !c.libs.is_empty() =>
        {
            c
        }
        previous => {
            // First run, or the configured libraries changed: resolve them, keeping the link of
            // every library that is still configured.
            let mut libs = libraries::resolve(&settings)?;
            if let Some(p) = previous {
                for lib in &mut libs {
                    lib.link = p
                        .libs
                        .iter()
                        .find(|o| o.drive == lib.drive)
                        .and_then(|o| o.link.clone())
                        .filter(|l| graph::on_graph(l, &settings.graph));
                }
            }
            Cursor {
                v: CURSOR_VERSION,
                fp: settings.fingerprint(),
                libs,
                at: 0,
            }
        }
    };
    let at = cur.at.min(cur.libs.len().saturating_sub(1));
    let lib = cur
        .libs
        .get(at)
        .cloned()
        .ok_or_else(|| PluginError::fatal("the sync cursor lists no library; reset it"))?;
    let url = match &lib.link {
        Some(link) if graph::on_graph(link, &settings.graph) => link.clone(),
        _ => start_url(&settings, &lib),
    };
    let body = fetch_delta(&settings, &lib, &url)?;

    let mut files = Vec::new();
    let mut removed = Vec::new();
    for item in body["value"].as_array().into_iter().flatten() {
        let Some(id) = item["id"].as_str() else {
            continue;
        };
        if item.get("deleted").is_some() {
            let gone = file_id(&lib.drive, id);
            own_write::forget(&gone);
            removed.push(gone);
            continue;
        }
        if let Some(mut f) = remote_file(&lib, item) {
            f.version = own_write::version(&f.id, item["eTag"].as_str(), f.version);
            files.push(f);
        }
    }
    let next = body["@odata.nextLink"].as_str();
    let delta = body["@odata.deltaLink"].as_str();
    let more = match (next, delta) {
        (Some(next), _) => {
            check_link(next, &settings)?;
            set_link(&mut cur, at, next);
            true
        }
        (None, Some(delta)) => {
            check_link(delta, &settings)?;
            set_link(&mut cur, at, delta);
            if at + 1 < cur.libs.len() {
                cur.at = at + 1;
                true
            } else {
                cur.at = 0;
                false
            }
        }
        (None, None) => {
            return Err(PluginError::transient(format!(
                "Graph sent a delta page of {} without a nextLink or deltaLink",
                lib.label
            )));
        }
    };
    Ok(Page {
        files,
        removed,
        cursor: Some(pagination::encode(&cur)?),
        more,
    })
}

fn set_link(cur: &mut Cursor, at: usize, link: &str) {
    if let Some(l) = cur.libs.get_mut(at) {
        l.link = Some(link.to_string());
    }
}

fn check_link(link: &str, settings: &Settings) -> Result<(), PluginError> {
    if graph::on_graph(link, &settings.graph) {
        Ok(())
    } else {
        Err(PluginError::fatal(format!(
            "Graph returned a paging link outside {} ({}); check `graph_url`",
            settings.graph,
            proofpix_sdk::http::host_of(link)
        )))
    }
}

/// The first delta request of a library: a full enumeration.
fn start_url(settings: &Settings, lib: &Library) -> String {
    Request::get(&format!(
        "{}/v1.0/drives/{}/root/delta",
        settings.graph, lib.drive
    ))
    .query("$top", &settings.page_size.to_string())
    .query("$select", SELECT)
    .url()
    .to_string()
}

/// GETs one delta page; a 410 restarts the library's enumeration once.
fn fetch_delta(settings: &Settings, lib: &Library, url: &str) -> Result<Value, PluginError> {
    let what = format!("listing library {}", lib.label);
    let resp = graph::get(url)?;
    if resp.status != 410 {
        return graph::json_of(resp, &what);
    }
    let e = GraphError::from_response(&resp);
    let restart = resp
        .header("location")
        .filter(|l| graph::on_graph(l, &settings.graph))
        .map(String::from)
        .unwrap_or_else(|| start_url(settings, lib));
    log::log(
        log::Level::Warn,
        "Graph invalidated the delta link; listing the library again from the start (files already processed are skipped)",
        &[("library", &lib.drive), ("code", &e.codes.join("/"))],
    );
    let again = graph::get(&restart)?;
    if again.status == 410 {
        return Err(PluginError::transient(format!(
            "Graph asked to resync {} twice in a row; the next attempt starts over",
            lib.label
        )));
    }
    graph::json_of(again, &what)
}

/// `{drive}/{item}`: unique across libraries of one integration.
pub fn file_id(drive: &str, item: &str) -> String {
    format!("{drive}/{item}")
}

/// The drive and item ids of a file.
pub fn ids_of(file: &RemoteFile) -> Option<(String, String)> {
    match (file.property(prop::DRIVE), file.property(prop::ITEM)) {
        (Some(d), Some(i)) => Some((d.to_string(), i.to_string())),
        _ => file
            .id
            .split_once('/')
            .map(|(d, i)| (d.to_string(), i.to_string())),
    }
}

/// Whether a delta item is an image file worth analysing.
pub fn is_image(item: &Value) -> bool {
    let Some(file) = item.get("file") else {
        return false;
    };
    if item.get("deleted").is_some()
        || item.get("folder").is_some()
        || item.get("package").is_some()
    {
        return false;
    }
    let mime = file["mimeType"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if item.get("image").is_some() || mime.starts_with("image/") {
        return true;
    }
    let generic =
        mime.is_empty() || mime == "application/octet-stream" || mime == "binary/octet-stream";
    let ext = item["name"]
        .as_str()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    generic && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// What changes exactly when the bytes do.
pub fn version_of(item: &Value) -> Option<String> {
    let hashes = &item["file"]["hashes"];
    for (key, prefix) in [
        ("quickXorHash", "qx"),
        ("sha256Hash", "sha256"),
        ("sha1Hash", "sha1"),
    ] {
        if let Some(h) = hashes[key].as_str().filter(|h| !h.is_empty()) {
            return Some(format!("{prefix}:{h}"));
        }
    }
    for (key, prefix) in [("cTag", "ctag"), ("eTag", "etag")] {
        if let Some(t) = item[key].as_str().filter(|t| !t.is_empty()) {
            return Some(format!("{prefix}:{}", t.trim_matches('"')));
        }
    }
    None
}

/// A delta item as a remote file, when it is an image.
pub fn remote_file(lib: &Library, item: &Value) -> Option<RemoteFile> {
    if !is_image(item) {
        return None;
    }
    let id = item["id"].as_str()?;
    let version = version_of(item)?;
    let mut properties = vec![
        (prop::DRIVE.to_string(), lib.drive.clone()),
        (prop::ITEM.to_string(), id.to_string()),
        (prop::SITE.to_string(), lib.site.clone()),
        (prop::LIST.to_string(), lib.list.clone()),
    ];
    if let Some(li) = item["sharepointIds"]["listItemId"].as_str() {
        properties.push((prop::LIST_ITEM.to_string(), li.to_string()));
    }
    Some(RemoteFile {
        id: file_id(&lib.drive, id),
        name: item["name"].as_str().unwrap_or(id).to_string(),
        mime_type: item["file"]["mimeType"].as_str().map(String::from),
        size: item["size"].as_u64(),
        modified: item["lastModifiedDateTime"].as_str().map(String::from),
        version,
        container: Some(lib.drive.clone()),
        web_url: item["webUrl"].as_str().map(String::from),
        path: Some(lib.label.clone()),
        properties,
    })
}

/// Where the host reads a file: `/content`, which 302-redirects to a pre-authenticated URL on
/// the download host (an endpoint without credentials, so the bearer token stays on Graph).
///
/// # Errors
/// A file without drive and item ids (from a foreign cursor): `fatal`.
pub fn download(file: RemoteFile) -> Result<DownloadSpec, PluginError> {
    let settings = Settings::load()?;
    let (drive, item) = ids_of(&file).ok_or_else(|| {
        PluginError::fatal(format!(
            "file {} has no drive and item id; run a full listing",
            file.id
        ))
    })?;
    let url = format!(
        "{}/v1.0/drives/{drive}/items/{item}/content",
        settings.graph
    );
    Ok(DownloadSpec {
        location: ContentLocation::Http(Request::get(&url).into_wit()),
        supports_range: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lib() -> Library {
        Library {
            site: "h,s,w".into(),
            drive: "b!d".into(),
            list: "L".into(),
            label: "Site / Documents".into(),
            link: None,
        }
    }

    #[test]
    fn images_are_told_by_facet_mime_type_or_extension() {
        let cases = [
            (
                json!({"name": "a.jpg", "file": {"mimeType": "image/jpeg"}}),
                true,
            ),
            (
                json!({"name": "a.bin", "file": {"mimeType": "application/x"}, "image": {}}),
                true,
            ),
            (
                json!({"name": "scan.JPG", "file": {"mimeType": "application/octet-stream"}}),
                true,
            ),
            (
                json!({"name": "a.pdf", "file": {"mimeType": "application/pdf"}}),
                false,
            ),
            (
                json!({"name": "a.jpg", "file": {"mimeType": "application/pdf"}}),
                false,
            ),
            (json!({"name": "dir", "folder": {"childCount": 1}}), false),
            (
                json!({"name": "a.jpg", "file": {"mimeType": "image/jpeg"}, "deleted": {}}),
                false,
            ),
        ];
        for (item, want) in cases {
            assert_eq!(is_image(&item), want, "{item}");
        }
    }

    #[test]
    fn the_content_hash_wins_over_tags_that_change_on_column_updates() {
        let item = json!({"eTag": "\"{A},3\"", "cTag": "\"c:{A},2\"", "file": {"hashes": {"quickXorHash": "q=="}}});
        assert_eq!(version_of(&item).as_deref(), Some("qx:q=="));
        let no_hash = json!({"eTag": "\"{A},3\"", "file": {}});
        assert_eq!(version_of(&no_hash).as_deref(), Some("etag:{A},3"));
    }

    #[test]
    fn a_delta_item_keeps_what_write_back_needs() {
        let item = json!({
            "id": "01X", "name": "a.jpg", "size": 10, "file": {"mimeType": "image/jpeg", "hashes": {"quickXorHash": "h"}},
            "sharepointIds": {"listItemId": "7"}, "webUrl": "https://x/a.jpg"
        });
        let f = remote_file(&lib(), &item).unwrap();
        assert_eq!(f.id, "b!d/01X");
        assert_eq!(f.property(prop::LIST_ITEM), Some("7"));
        assert_eq!(f.property(prop::LIST), Some("L"));
        assert_eq!(ids_of(&f), Some(("b!d".into(), "01X".into())));
    }
}
