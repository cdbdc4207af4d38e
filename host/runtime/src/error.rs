//! Errors of the runtime, one enum per boundary.
//!
//! Every message starts with the plugin it concerns (`plugin 'slack' 0.3.1:`)
//! when one is involved, says what was refused or failed, and where it helps,
//! what to do next.

use std::time::Duration;

use proofpix_model::PluginError;

/// Loading a plugin or preparing an instance failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a component wasmtime accepts.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// A component, but not a ProofPix connector.
    #[error("not a ProofPix connector: {0}")]
    NotAConnector(String),
    /// Built against a contract version this host does not serve.
    #[error(
        "built against contract {found}, which this host does not support (it supports {supported})"
    )]
    UnsupportedVersion {
        /// Version found.
        found: String,
        /// Versions supported.
        supported: String,
    },
    /// The component imports something the host does not provide.
    #[error("cannot be linked: {0}")]
    Link(String),
    /// `describe` failed or returned an unusable manifest.
    #[error("plugin {plugin}: invalid manifest: {reason}")]
    Manifest {
        /// Plugin label.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine could not be configured.
    #[error("the wasm engine could not start: {0}")]
    Engine(String),
    /// A grant or mount cannot be applied for this integration.
    #[error("plugin {plugin}: {reason}")]
    Grant {
        /// Plugin label.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// `describe` itself failed.
    #[error("{0}")]
    Call(#[from] CallError),
}

/// A plugin call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The plugin returned one of the contract's error cases.
    #[error("plugin {plugin}: {op} failed: {}", describe_plugin_error(error))]
    Plugin {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// The error it returned.
        error: PluginError,
    },
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access).
    #[error("plugin {plugin}: {op} crashed ({message}); the instance was discarded")]
    Trap {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Trap message.
        message: String,
    },
    /// The guest used more CPU time than allowed.
    #[error(
        "plugin {plugin}: {op} used more than {limit:?} of CPU time and was stopped; the instance was discarded"
    )]
    CpuLimit {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the limit.
    #[error(
        "plugin {plugin}: {op} tried to use {requested} bytes of memory, over its limit of {limit} bytes, and was stopped; the instance was discarded"
    )]
    MemoryLimit {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Total it asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// The call took longer than the wall-clock limit.
    #[error(
        "plugin {plugin}: {op} did not finish within {limit:?} and was stopped; the instance was discarded"
    )]
    Timeout {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The plugin returned more than the host accepts.
    #[error("plugin {plugin}: {op} returned {what}; refused")]
    OutputLimit {
        /// Plugin label.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// What was too large.
        what: String,
    },
    /// The instance failed earlier and cannot be used again.
    #[error("plugin {plugin}: this instance failed earlier and was discarded; start a new session")]
    Poisoned {
        /// Plugin label.
        plugin: String,
    },
}

impl CallError {
    /// The contract error the plugin returned, if that is what this is.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            CallError::Plugin { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The delay the platform asked for, when the plugin reported it
    /// rate-limited with one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self.plugin_error() {
            Some(PluginError::RateLimited(r)) => {
                r.retry_after_ms.map(std::time::Duration::from_millis)
            }
            _ => None,
        }
    }

    /// Whether retrying later may succeed (transient and rate-limited plugin
    /// errors, timeouts). Traps and limits are not retried blindly, and an
    /// egress refusal waits for the operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Plugin { error, .. } => matches!(
                error,
                PluginError::Transient(_) | PluginError::RateLimited(_)
            ),
            CallError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// One line for a contract error.
pub fn describe_plugin_error(e: &PluginError) -> String {
    match e {
        PluginError::Unauthorized(m) => format!("unauthorized: {m}"),
        PluginError::RateLimited(r) => match r.retry_after_ms {
            Some(ms) => format!("rate limited (retry after {ms} ms): {}", r.message),
            None => format!("rate limited: {}", r.message),
        },
        PluginError::NotFound(m) => format!("not found: {m}"),
        PluginError::InvalidConfig(c) => match &c.field {
            Some(f) => format!("invalid config field `{f}`: {}", c.message),
            None => format!("invalid config: {}", c.message),
        },
        PluginError::Transient(m) => format!("temporary failure: {m}"),
        PluginError::Fatal(m) => m.clone(),
        PluginError::EgressRefused(r) => format!(
            "egress refused: the host's egress policy refused a request to {} ({}); the operator must grant the host to this integration (`integration add` with `--grant-host URL`), or the configuration points where it should not; not retried",
            bounded_plugin_text(&r.url, MAX_REFUSED_URL_CHARS),
            bounded_plugin_text(&r.reason, MAX_REFUSAL_REASON_CHARS)
        ),
    }
}

/// How much of a refused URL an error shows.
const MAX_REFUSED_URL_CHARS: usize = 300;
/// How much of a refusal's reason an error shows.
const MAX_REFUSAL_REASON_CHARS: usize = 500;

/// Plugin text in a host message: control and bidirectional characters
/// escaped, cut to `max` characters (marked with `...`).
pub fn bounded_plugin_text(s: &str, max: usize) -> String {
    let escaped = crate::imports::escape_log_text(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(max).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpix_model::EgressRefusal;

    #[test]
    fn an_egress_refusal_names_the_url_is_escaped_bounded_and_not_retried() {
        let e = CallError::Plugin {
            plugin: "'x' 1.0.0".into(),
            op: "discover",
            error: PluginError::EgressRefused(EgressRefusal {
                url: "https://files.example.net/a\n\u{202e}b".into(),
                reason: format!("not granted\x1b[31m{}", "z".repeat(5000)),
            }),
        };
        let text = e.to_string();
        assert!(text.contains("https://files.example.net/a"), "{text}");
        assert!(text.contains("must grant the host"), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(text.len() < 1200, "{}", text.len());
        assert!(!e.is_retryable());
        assert_eq!(e.retry_after(), None);
    }
}
