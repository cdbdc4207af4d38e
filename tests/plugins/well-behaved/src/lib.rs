//! A small, well-behaved plugin the runtime tests and benchmarks drive.
//!
//! `discover` fetches `{config.base_url}/files` (when configured) and maps a
//! JSON array of `{id, name, etag}` to files; without a base URL it returns
//! two fixed files. It counts its calls in plugin state and logs one line per
//! call, so tests can observe state and logs crossing the boundary.

/// The version this build reports.
const VERSION: &str = "1.0.0";

include!("plugin.rs");
