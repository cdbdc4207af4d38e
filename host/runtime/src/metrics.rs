//! Process-wide counters the daemon exports as metrics.

use std::sync::atomic::AtomicU64;

/// Requests refused by the egress policy.
pub static EGRESS_DENIALS: AtomicU64 = AtomicU64::new(0);
/// Calls that trapped, timed out or hit a limit.
pub static PLUGIN_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Plugin calls made.
pub static PLUGIN_CALLS: AtomicU64 = AtomicU64::new(0);
/// Highest linear-memory total any instance reached, in bytes.
pub static MEMORY_HIGH_WATER: AtomicU64 = AtomicU64::new(0);
