//! Constructors for the contract's error variant.

use crate::{ConfigProblem, EgressRefusal, PluginError, RateLimit};

impl PluginError {
    /// A failure that retrying will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        PluginError::Fatal(message.into())
    }

    /// A failure that may go away by itself; the host retries with back-off.
    pub fn transient(message: impl Into<String>) -> Self {
        PluginError::Transient(message.into())
    }

    /// The platform rejected the injected credentials; the host refreshes
    /// them and retries once.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        PluginError::Unauthorized(message.into())
    }

    /// The referenced object does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        PluginError::NotFound(message.into())
    }

    /// The platform asked to slow down.
    pub fn rate_limited(retry_after_ms: Option<u64>, message: impl Into<String>) -> Self {
        PluginError::RateLimited(RateLimit {
            retry_after_ms,
            message: message.into(),
        })
    }

    /// The configuration cannot work; `field` names the field to fix.
    pub fn invalid_config(field: Option<&str>, message: impl Into<String>) -> Self {
        PluginError::InvalidConfig(ConfigProblem {
            field: field.map(String::from),
            message: message.into(),
        })
    }

    /// The host's egress policy refused a request to `url` (its query is
    /// dropped): the operator must grant the host, or the configuration
    /// points somewhere it should not. Never retried.
    pub fn egress_refused(url: &str, reason: impl Into<String>) -> Self {
        let url = url.split(['?', '#']).next().unwrap_or_default().to_owned();
        PluginError::EgressRefused(EgressRefusal {
            url,
            reason: reason.into(),
        })
    }

    /// The default answer of a [`crate::Connector`] method the plugin does
    /// not implement.
    pub fn not_supported(operation: &str) -> Self {
        PluginError::Fatal(format!("{operation} is not supported by this plugin"))
    }

    /// The human-readable message inside any case.
    pub fn message(&self) -> &str {
        match self {
            PluginError::Unauthorized(m)
            | PluginError::NotFound(m)
            | PluginError::Transient(m)
            | PluginError::Fatal(m) => m,
            PluginError::RateLimited(r) => &r.message,
            PluginError::InvalidConfig(c) => &c.message,
            PluginError::EgressRefused(e) => &e.reason,
        }
    }
}
