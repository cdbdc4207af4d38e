//! The integration's non-secret configuration and authentication context.
//!
//! Secret fields (declared with `secret: true`) always read as `None`: the
//! host keeps them in its vault and uses them on the plugin's behalf.

use crate::PluginError;
use crate::bindings::proofpix::plugin::config as host;

/// A non-secret config value, `None` when unset or secret.
pub fn get(name: &str) -> Option<String> {
    host::get(name).filter(|v| !v.is_empty())
}

/// A config value that must be set; the error names the field.
pub fn require(name: &str) -> Result<String, PluginError> {
    get(name)
        .ok_or_else(|| PluginError::invalid_config(Some(name), format!("`{name}` is required")))
}

/// A comma- or newline-separated list value, trimmed, without empty items.
pub fn list(name: &str) -> Vec<String> {
    get(name)
        .map(|v| {
            v.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A boolean value (`true`, `yes`, `1`, `on`), else `default`.
pub fn flag(name: &str, default: bool) -> bool {
    match get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("true" | "yes" | "1" | "on") => true,
        Some("false" | "no" | "0" | "off") => false,
        _ => default,
    }
}

/// An integer value; an unparsable one is a config error naming the field.
pub fn integer(name: &str, default: i64) -> Result<i64, PluginError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            PluginError::invalid_config(
                Some(name),
                format!("`{name}` must be a whole number, got {v:?}"),
            )
        }),
    }
}

/// A non-secret value from the authentication the host performed, such as
/// Salesforce's `instance_url`.
pub fn auth_context(name: &str) -> Option<String> {
    host::auth_context(name)
}

/// The integration's id as the operator named it.
pub fn integration_id() -> String {
    host::integration_id()
}
