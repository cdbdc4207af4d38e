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
//! Graph's simple upload takes files up to 250 MB; a larger copy is refused with a fatal error
//! naming the limit. Upload sessions (`createUploadSession`, chunked uploads for larger files)
//! are not supported: the contract's upload is one request.

use proofpix_sdk::http::{Request, WitRequest, percent_encode};
use proofpix_sdk::prelude::*;

use crate::discover::ids_of;
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
    let url = format!(
        "{}/v1.0/drives/{}/items/{}/content",
        settings.graph,
        segment(&drive),
        segment(&item)
    );
    let content_type = match content_type.trim() {
        "" => FALLBACK_CONTENT_TYPE,
        t => t,
    };
    Ok(Request::put(&url)
        .header("content-type", content_type)
        .into_wit())
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
    fn ids_stay_one_path_segment_each() {
        assert_eq!(segment("b!AbC-_x"), "b!AbC-_x");
        assert_eq!(segment("01A/../x?y"), "01A%2F..%2Fx%3Fy");
    }
}
