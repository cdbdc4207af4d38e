//! Why a plugin call failed, in a form the host acts on.

use serde::{Deserialize, Serialize};

/// A plugin's own answer that its call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginError {
    /// The platform rejected the credentials the host injected (the host refreshes them and
    /// retries once).
    Unauthorized(String),
    /// The platform asked the caller to slow down.
    RateLimited(RateLimit),
    /// The object the call referred to does not exist (any more).
    NotFound(String),
    /// The integration's configuration cannot work.
    InvalidConfig(ConfigProblem),
    /// A failure that may go away by itself (retried with back-off).
    Transient(String),
    /// A failure that will not go away by retrying.
    Fatal(String),
    /// The host's egress policy refused a request the plugin made (never retried).
    EgressRefused(EgressRefusal),
}

/// A refused request, as the host's egress policy said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRefusal {
    /// The refused URL without its query.
    pub url: String,
    /// The host's reason.
    pub reason: String,
}

/// A platform's request to slow down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// How long to wait, when the platform said.
    pub retry_after_ms: Option<u64>,
    /// The platform's message.
    pub message: String,
}

/// A configuration that cannot work, and the field to fix when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    /// The config field to fix, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}
