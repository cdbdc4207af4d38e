//! Process-wide counters the daemon exports as metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Requests refused by the egress policy.
pub static EGRESS_DENIALS: AtomicU64 = AtomicU64::new(0);
/// Calls that trapped, timed out or hit a limit.
pub static PLUGIN_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Plugin calls made.
pub static PLUGIN_CALLS: AtomicU64 = AtomicU64::new(0);
/// Highest linear-memory total any instance reached, in bytes.
pub static MEMORY_HIGH_WATER: AtomicU64 = AtomicU64::new(0);

/// Upper bounds (seconds) of the call-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];
static LATENCY: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];
static LATENCY_NANOS: AtomicU64 = AtomicU64::new(0);

/// Records one call's duration.
pub(crate) fn record_call(d: Duration) {
    let secs = d.as_secs_f64();
    if let Some(i) = LATENCY_BUCKETS.iter().position(|le| secs <= *le)
        && let Some(b) = LATENCY.get(i)
    {
        b.fetch_add(1, Ordering::Relaxed);
    }
    LATENCY_NANOS.fetch_add(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// A copy of the counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed in the runtime.
    pub failures: u64,
    /// Memory high-water, bytes.
    pub memory_high_water: u64,
    /// Egress denials.
    pub egress_denials: u64,
    /// Calls per latency bucket (not cumulative): (upper bound in seconds, count).
    pub call_latency: Vec<(f64, u64)>,
    /// Total call time, seconds.
    pub call_seconds_sum: f64,
}

/// Reads the counters.
pub fn snapshot() -> Snapshot {
    Snapshot {
        calls: PLUGIN_CALLS.load(Ordering::Relaxed),
        failures: PLUGIN_FAILURES.load(Ordering::Relaxed),
        memory_high_water: MEMORY_HIGH_WATER.load(Ordering::Relaxed),
        egress_denials: EGRESS_DENIALS.load(Ordering::Relaxed),
        call_latency: LATENCY_BUCKETS
            .iter()
            .zip(LATENCY.iter())
            .map(|(le, n)| (*le, n.load(Ordering::Relaxed)))
            .collect(),
        call_seconds_sum: LATENCY_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
    }
}
