//! Plugin-scoped key-value state kept by the host per integration.
//!
//! The host caps key length and the total size per integration; `set`
//! returns an error when a write would exceed them.

use serde::{Serialize, de::DeserializeOwned};

use crate::PluginError;
use crate::bindings::proofpix::plugin::state as host;

/// Raw bytes under `key`.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores raw bytes under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), PluginError> {
    host::set(key, value).map_err(PluginError::fatal)
}

/// Removes `key`.
pub fn delete(key: &str) {
    host::delete(key)
}

/// A JSON value under `key`; a value that no longer parses reads as `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Option<T> {
    get(key).and_then(|b| serde_json::from_slice(&b).ok())
}

/// Stores a JSON value under `key`.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PluginError::fatal(e.to_string()))?;
    set(key, &bytes)
}
