//! Cursor helpers.
//!
//! A cursor is an opaque string the host stores between calls and runs. Most
//! connectors keep a small JSON document in it (a next-page link, a delta
//! token, a high-water mark); these helpers encode and decode one.

use serde::{Serialize, de::DeserializeOwned};

use crate::PluginError;

/// Encodes a cursor value.
pub fn encode<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string(value)
        .map_err(|e| PluginError::fatal(format!("cannot encode cursor: {e}")))
}

/// Decodes a cursor; `None` stays `None`.
///
/// # Errors
/// A cursor this plugin version cannot read is `fatal` with a message that
/// says a full resync is needed.
pub fn decode<T: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<T>, PluginError> {
    match cursor {
        None | Some("") => Ok(None),
        Some(c) => serde_json::from_str(c).map(Some).map_err(|e| {
            PluginError::fatal(format!(
                "unreadable sync cursor ({e}); reset the integration's cursor to resync"
            ))
        }),
    }
}
