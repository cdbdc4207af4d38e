//! Remediation: replacing an image with its sanitised copy (contract 0.2 `remediation.upload`).
//!
//! Graph replaces a file's content with a simple upload, `PUT /drives/{drive-id}/items/{item-id}/content`
//! with the bytes as the body; it answers with the driveItem, which carries a new eTag and cTag
//! (and a new `quickXorHash`, so the next delta lists the item as a new version, analysed again).
//! The plugin only says where: the host strips the file, sends this request on the `graph`
//! endpoint with the bearer token, and the bytes never pass through the plugin. Needs write
//! access, as the result columns do (Sites.Selected with write on the site, or
//! Sites.ReadWrite.All / Files.ReadWrite.All).
//!
//! Only the version that was analysed is replaced: before answering, the plugin reads the item
//! (`GET /drives/{d}/items/{i}`) and refuses when its content hash is no longer the analysed
//! version (someone saved a new one; the next sync analyses it), and the upload carries
//! `If-Match` with the item's cTag, so an edit that lands between that read and the upload gets
//! Graph's 412 instead of being overwritten. The cTag, not the eTag: the eTag also changes when
//! the result columns are written, which happens before remediation in the same sync.
//!
//! Graph's simple upload takes files up to 250 MB; a larger copy is refused with a fatal error
//! naming the limit. Upload sessions (`createUploadSession`, chunked uploads for larger files)
//! are not supported: the contract's upload is one request.

use proofpix_sdk::http::{Request, WitRequest, percent_encode};
use proofpix_sdk::prelude::*;

use crate::discover::{ids_of, version_of};
use crate::graph;
use crate::settings::Settings;

/// Largest file Graph's simple upload accepts: 250 MB (taken as 250 MiB, the larger reading;
/// Graph answers an error itself if it counts in decimal megabytes).
pub const SIMPLE_UPLOAD_MAX_BYTES: u64 = 250 * 1024 * 1024;

/// Content type sent when the host knows none.
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// Where the host uploads the sanitised copy of `file`: Graph's simple upload of its drive item.
///
/// # Errors
/// `fatal` for a copy over [`SIMPLE_UPLOAD_MAX_BYTES`] or a file without drive and item ids;
/// configuration errors as [`Settings::load`].
pub fn upload(file: &RemoteFile, size: u64, content_type: &str) -> Result<WitRequest, PluginError> {
    if size > SIMPLE_UPLOAD_MAX_BYTES {
        return Err(PluginError::fatal(format!(
            "the sanitised copy of {} has {size} bytes, over the 250 MB limit of Graph's simple upload ({SIMPLE_UPLOAD_MAX_BYTES} bytes); upload sessions for larger files are not supported, so the file is left as it is",
            file.name
        )));
    }
    let settings = Settings::load()?;
    let (drive, item) = ids_of(file).ok_or_else(|| {
        PluginError::fatal(format!(
            "file {} has no drive and item id; run a full listing",
            file.id
        ))
    })?;
    let item_url = format!(
        "{}/v1.0/drives/{}/items/{}",
        settings.graph,
        segment(&drive),
        segment(&item)
    );
    let current = graph::get_json(
        &format!("{item_url}?$select=id,name,eTag,cTag,file"),
        &format!("reading {} before replacing it", file.name),
    )?;
    let tag = unchanged_tag(file, &current)?;
    let content_type = match content_type.trim() {
        "" => FALLBACK_CONTENT_TYPE,
        t => t,
    };
    Ok(Request::put(&format!("{item_url}/content"))
        .header("content-type", content_type)
        .header("if-match", &tag)
        .into_wit())
}

/// The tag to send as `If-Match` (cTag, else eTag) when `current` (the item as Graph has it now)
/// is still the version of `file` that was analysed.
///
/// # Errors
/// `fatal` when the content changed since, or Graph sent neither tag.
fn unchanged_tag(file: &RemoteFile, current: &serde_json::Value) -> Result<String, PluginError> {
    let now = version_of(current).unwrap_or_default();
    if now != file.version {
        return Err(PluginError::fatal(format!(
            "{} changed since it was analysed (version {} then, {} now); it is left as it is, and the next sync analyses the new version",
            file.name,
            file.version,
            if now.is_empty() { "unknown" } else { &now }
        )));
    }
    ["cTag", "eTag"]
        .iter()
        .find_map(|k| current[*k].as_str().filter(|t| !t.is_empty()))
        .map(String::from)
        .ok_or_else(|| {
            PluginError::fatal(format!(
                "Graph sent no eTag or cTag for {}, so it cannot be replaced without risking a concurrent edit; it is left as it is",
                file.name
            ))
        })
}

/// An id as one path segment: nothing Graph sends can add a segment or a query, and the `!` of
/// drive ids (`b!…`) stays as Graph writes it.
fn segment(id: &str) -> String {
    percent_encode(id).replace("%21", "!")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> RemoteFile {
        RemoteFile {
            id: "b!d/01ITEM".into(),
            name: "IMG_1.jpg".into(),
            mime_type: Some("image/jpeg".into()),
            size: Some(10),
            modified: None,
            version: "h".into(),
            container: None,
            web_url: None,
            path: None,
            properties: vec![],
        }
    }

    #[test]
    fn a_copy_over_the_simple_upload_limit_is_refused_naming_the_limit() {
        let err = upload(&file(), SIMPLE_UPLOAD_MAX_BYTES + 1, "image/jpeg").unwrap_err();
        assert!(matches!(err, PluginError::Fatal(_)), "{err:?}");
        let msg = err.message().to_string();
        assert!(
            msg.contains("250 MB") && msg.contains("upload sessions") && msg.contains("IMG_1.jpg"),
            "{msg}"
        );
    }

    #[test]
    fn only_the_analysed_version_is_replaced_and_the_ctag_guards_the_upload() {
        let mut f = file();
        f.version = "qx:AAA=".into();
        let same = serde_json::json!({"eTag": "\"{G},7\"", "cTag": "\"c:{G},3\"",
            "file": {"hashes": {"quickXorHash": "AAA="}}});
        assert_eq!(unchanged_tag(&f, &same).unwrap(), "\"c:{G},3\"");
        let no_ctag = serde_json::json!({"eTag": "\"{G},7\"",
            "file": {"hashes": {"quickXorHash": "AAA="}}});
        assert_eq!(unchanged_tag(&f, &no_ctag).unwrap(), "\"{G},7\"");
        let edited = serde_json::json!({"eTag": "\"{G},8\"", "cTag": "\"c:{G},4\"",
            "file": {"hashes": {"quickXorHash": "BBB="}}});
        let err = unchanged_tag(&f, &edited).unwrap_err();
        assert!(matches!(err, PluginError::Fatal(_)), "{err:?}");
        let msg = err.message().to_string();
        assert!(
            msg.contains("changed since it was analysed") && msg.contains("qx:BBB="),
            "{msg}"
        );
        let untagged = serde_json::json!({"file": {"hashes": {"quickXorHash": "AAA="}}});
        assert!(unchanged_tag(&f, &untagged).is_err());
    }

    #[test]
    fn ids_stay_one_path_segment_each() {
        assert_eq!(segment("b!AbC-_x"), "b!AbC-_x");
        assert_eq!(segment("01A/../x?y"), "01A%2F..%2Fx%3Fy");
    }
}
