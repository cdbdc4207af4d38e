//! Telling our own column write apart from a real change when only the eTag is left.
//!
//! A file's version is its content hash (`quickXorHash`), else `cTag`, else `eTag` (see
//! [`crate::discover`]). Graph documents that `file.hashes` may be missing, and OneDrive for
//! Business leaves `cTag` out of delta, so some files have only the eTag. Writing our columns
//! changes that eTag (SharePoint makes a new item version on every list-item field update, and
//! moves `lastModifiedDateTime` with it, so size and modification time are no better), and the
//! item comes back in delta. Without more, the file would look new and be analysed and written
//! again on every sync.
//!
//! So after a write to such a file, the eTag the write produced is read back and remembered
//! with the version the result was for, in plugin state under [`key`]. When delta lists the
//! item with exactly that eTag, nothing but our write happened and the remembered version is
//! reported, which the host already processed. Any other eTag is a real change: the entry is
//! dropped and the new eTag is the version.
//!
//! Limits: an edit that lands between our download and the read-back is folded into "our
//! write" and not analysed until the file changes again. Entries take about 150 bytes of the
//! integration's plugin state each; when the state is full the file is simply analysed again
//! next time, as without this, and a warning says so.

use proofpix_sdk::http::{Request, percent_encode};
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::discover::ids_of;
use crate::graph;

/// Prefix of the versions this applies to (see `discover::version_of`).
pub const ETAG_VERSION: &str = "etag:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The eTag right after our write, quotes trimmed.
    after: String,
    /// The version the written result was for.
    version: String,
}

/// The state key of a file's entry.
pub fn key(file_id: &str) -> String {
    format!("own-etag:{file_id}")
}

/// The version to report for a file whose computed version is `computed` and whose current
/// eTag is `etag`: the remembered version when the eTag is the one our write produced.
pub fn version(file_id: &str, etag: Option<&str>, computed: String) -> String {
    if !computed.starts_with(ETAG_VERSION) {
        return computed;
    }
    let key = key(file_id);
    match state::get_json::<Entry>(&key) {
        Some(e) => match decide(&e, etag) {
            Some(v) => v,
            None => {
                state::delete(&key);
                computed
            }
        },
        None => computed,
    }
}

/// The remembered version when `etag` is the one our write left.
fn decide(e: &Entry, etag: Option<&str>) -> Option<String> {
    (etag.map(|t| t.trim_matches('"')) == Some(e.after.as_str())).then(|| e.version.clone())
}

/// Drops a removed file's entry.
pub fn forget(file_id: &str) {
    state::delete(&key(file_id));
}

/// After a successful column write on a file versioned by its eTag: reads the eTag the write
/// produced and remembers it. Failures only log: the file is then analysed again next time.
pub fn remember(graph_url: &str, file: &RemoteFile) {
    if !file.version.starts_with(ETAG_VERSION) {
        return;
    }
    let Some((drive, item)) = ids_of(file) else {
        return;
    };
    let url = format!(
        "{graph_url}/v1.0/drives/{}/items/{}",
        percent_encode(&drive),
        percent_encode(&item)
    );
    let read = graph::get_json(
        Request::get(&url).query("$select", "id,eTag").url(),
        "reading the eTag after a column update",
    );
    let after = match read {
        Ok(v) => v["eTag"].as_str().map(|t| t.trim_matches('"').to_string()),
        Err(e) => {
            log::log(
                log::Level::Warn,
                "could not read the eTag our column update produced; the file will be analysed again at the next sync",
                &[("file", file.id.as_str()), ("error", e.message())],
            );
            None
        }
    };
    let Some(after) = after.filter(|a| !a.is_empty()) else {
        return;
    };
    let entry = Entry {
        after,
        version: file.version.clone(),
    };
    if let Err(e) = state::set_json(&key(&file.id), &entry) {
        log::log(
            log::Level::Warn,
            "plugin state is full: this file will be analysed again at the next sync",
            &[("file", file.id.as_str()), ("error", e.message())],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_etag_our_write_left_keeps_the_old_version() {
        let e = Entry {
            after: "{A},4".into(),
            version: "etag:{A},3".into(),
        };
        assert_eq!(decide(&e, Some("\"{A},4\"")).as_deref(), Some("etag:{A},3"));
        assert_eq!(decide(&e, Some("{A},4")).as_deref(), Some("etag:{A},3"));
        assert_eq!(decide(&e, Some("\"{A},5\"")), None);
        assert_eq!(decide(&e, None), None);
    }

    #[test]
    fn keys_fit_the_hosts_key_limit() {
        let id = format!("b!{}/{}", "x".repeat(64), "0".repeat(34));
        assert!(key(&id).len() < 256);
    }
}
