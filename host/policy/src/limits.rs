//! Resource limits for plugin calls, and the environment variables that tune
//! them.
//!
//! The adversary is a plugin that loops, allocates, floods or stalls. Each
//! limit below bounds one of those, and the runtime enforces all of them on
//! every call: a plugin that hits one gets a clear error naming the limit,
//! its instance is discarded, and the host goes on serving other plugins.
//!
//! Every tunable is declared once, in [`TUNABLES`], with its environment
//! variable, default and reason. Values are read once at start; a value that
//! does not parse stops start-up with a message naming the variable (a typo
//! in a limit must not silently fall back to a default).

use std::time::Duration;

/// Limits applied to one plugin call (or one integration, for state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// All linear memories of an instance together, in bytes.
    pub memory_bytes: u64,
    /// Guest CPU time per call (time spent waiting on host calls excluded).
    pub cpu_time: Duration,
    /// Wall-clock time per call, host calls included.
    pub call_timeout: Duration,
    /// One HTTP request made for a plugin, from connect to last body byte.
    pub http_timeout: Duration,
    /// Body size of a response handed to a plugin.
    pub max_response_bytes: u64,
    /// Body size of a request a plugin sends.
    pub max_request_bytes: u64,
    /// Redirect hops the host follows for one request.
    pub max_redirects: u32,
    /// Log bytes a plugin may write per call; the rest is dropped with a note.
    pub max_log_bytes_per_call: usize,
    /// Bytes a plugin may write to stdout and stderr per call.
    pub max_stdio_bytes_per_call: usize,
    /// Plugin state per integration, keys and values together.
    pub max_state_bytes: u64,
    /// Length of one state key.
    pub max_state_key_bytes: usize,
    /// Files in one discovery page.
    pub max_page_files: usize,
    /// Size of any one string a plugin returns (ids, names, cursors, bodies).
    pub max_string_bytes: usize,
}

/// One environment tunable: variable, default, unit and why.
#[derive(Debug, Clone, Copy)]
pub struct Tunable {
    /// Environment variable.
    pub var: &'static str,
    /// Default value, in `unit`.
    pub default: u64,
    /// Unit of the value.
    pub unit: &'static str,
    /// Why this default.
    pub why: &'static str,
}

/// Every tunable limit, in the order of [`Limits`]' fields.
pub const TUNABLES: &[Tunable] = &[
    Tunable {
        var: "PROOFPIX_PLUGIN_MEMORY_MIB",
        default: 128,
        unit: "MiB",
        why: "connectors parse JSON pages, not images; 128 MiB holds a 10,000-file page several times over",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_CPU_SECS",
        default: 10,
        unit: "s",
        why: "guest work between host calls is small; a loop this long is a bug or an attack",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_CALL_TIMEOUT_SECS",
        default: 300,
        unit: "s",
        why: "a call may make several slow SaaS requests (Salesforce queries can take a minute)",
    },
    Tunable {
        var: "PROOFPIX_HTTP_TIMEOUT_SECS",
        default: 60,
        unit: "s",
        why: "one SaaS request; longer than any documented API timeout",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_MAX_RESPONSE_MIB",
        default: 32,
        unit: "MiB",
        why: "API pages are kilobytes to a few MiB; file bytes never go to plugins",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_MAX_REQUEST_MIB",
        default: 8,
        unit: "MiB",
        why: "write-back batches of 200 records are well under 1 MiB",
    },
    Tunable {
        var: "PROOFPIX_HTTP_MAX_REDIRECTS",
        default: 5,
        unit: "hops",
        why: "download links redirect once or twice; loops end here",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_LOG_KIB",
        default: 64,
        unit: "KiB",
        why: "enough for per-page diagnostics; a flood must not fill the operator's disk",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_STDIO_KIB",
        default: 64,
        unit: "KiB",
        why: "stdout/stderr are for panics and debugging only",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_STATE_KIB",
        default: 1024,
        unit: "KiB",
        why: "cursors and small maps; bulk data belongs to the host's file records",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_STATE_KEY_BYTES",
        default: 256,
        unit: "bytes",
        why: "keys are names, not data",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_MAX_PAGE_FILES",
        default: 10_000,
        unit: "files",
        why: "Graph and Salesforce pages are at most a few thousand records",
    },
    Tunable {
        var: "PROOFPIX_PLUGIN_MAX_STRING_KIB",
        default: 256,
        unit: "KiB",
        why: "no id, name, cursor or event body needs more",
    },
];

/// An environment value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{var}={value:?} is not a whole number of {unit}; unset it to use the default ({default} {unit})"
)]
pub struct LimitsError {
    /// Variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// Unit expected.
    pub unit: &'static str,
    /// Default.
    pub default: u64,
}

const MIB: u64 = 1024 * 1024;
const KIB: u64 = 1024;

impl Default for Limits {
    fn default() -> Self {
        Self::from_values(|t| t.default)
    }
}

impl Limits {
    /// Limits from the environment, defaults where unset.
    ///
    /// # Errors
    /// The first variable that is set but not a whole number.
    pub fn from_env() -> Result<Self, LimitsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Limits from any lookup (tests pass a map).
    ///
    /// # Errors
    /// The first value that is not a whole number.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LimitsError> {
        let mut values = Vec::with_capacity(TUNABLES.len());
        for t in TUNABLES {
            let v = match lookup(t.var) {
                None => t.default,
                Some(raw) => raw.trim().parse::<u64>().map_err(|_| LimitsError {
                    var: t.var,
                    value: raw.clone(),
                    unit: t.unit,
                    default: t.default,
                })?,
            };
            values.push(v);
        }
        let mut it = values.into_iter();
        Ok(Self::from_values(|t| {
            // `values` has one entry per tunable, in order.
            it.next().unwrap_or(t.default)
        }))
    }

    fn from_values(mut v: impl FnMut(&Tunable) -> u64) -> Self {
        let mut next = TUNABLES.iter();
        let mut take = || next.next().map_or(0, &mut v);
        Limits {
            memory_bytes: take().saturating_mul(MIB),
            cpu_time: Duration::from_secs(take()),
            call_timeout: Duration::from_secs(take()),
            http_timeout: Duration::from_secs(take()),
            max_response_bytes: take().saturating_mul(MIB),
            max_request_bytes: take().saturating_mul(MIB),
            max_redirects: u32::try_from(take()).unwrap_or(u32::MAX),
            max_log_bytes_per_call: usize::try_from(take().saturating_mul(KIB))
                .unwrap_or(usize::MAX),
            max_stdio_bytes_per_call: usize::try_from(take().saturating_mul(KIB))
                .unwrap_or(usize::MAX),
            max_state_bytes: take().saturating_mul(KIB),
            max_state_key_bytes: usize::try_from(take()).unwrap_or(usize::MAX),
            max_page_files: usize::try_from(take()).unwrap_or(usize::MAX),
            max_string_bytes: usize::try_from(take().saturating_mul(KIB)).unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_tunables_table() {
        let l = Limits::default();
        assert_eq!(l.memory_bytes, 128 * MIB);
        assert_eq!(l.cpu_time, Duration::from_secs(10));
        assert_eq!(l.max_redirects, 5);
        assert_eq!(l.max_page_files, 10_000);
        assert_eq!(l.max_string_bytes, 256 * 1024);
    }

    #[test]
    fn an_environment_override_applies_to_its_field_only() {
        let l =
            Limits::from_lookup(|v| (v == "PROOFPIX_PLUGIN_MEMORY_MIB").then(|| "16".to_string()))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.memory_bytes, 16 * MIB);
        assert_eq!(l.cpu_time, Limits::default().cpu_time);
    }

    #[test]
    fn a_typo_in_a_limit_stops_startup_with_the_variable_named() {
        let err =
            Limits::from_lookup(|v| (v == "PROOFPIX_PLUGIN_CPU_SECS").then(|| "10s".to_string()))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PROOFPIX_PLUGIN_CPU_SECS=\"10s\" is not a whole number of s; unset it to use the default (10 s)"
        );
    }
}
