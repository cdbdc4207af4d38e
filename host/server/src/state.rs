//! Shared daemon state: live events, counters and readiness. Runs are owned by
//! the service's run manager ([`proofpix_service::runs`]); the daemon only
//! triggers them and turns their events into live events and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_pipeline::{Progress, SyncMode};
use proofpix_service::Host;
pub use proofpix_service::runs::TriggerOutcome;
use proofpix_service::runs::{RunEvent, RunManager, RunOptions};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::config::DaemonConfig;

/// An event pushed to dashboards over server-sent events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LiveEvent {
    /// A run started.
    SyncStarted {
        /// Integration.
        integration: String,
        /// Why (`schedule`, `manual`, `webhook`, `resume`).
        reason: String,
    },
    /// A file finished.
    File {
        /// Integration.
        integration: String,
        /// Its risk, when analysed.
        risk: Option<String>,
        /// Whether it failed.
        failed: bool,
    },
    /// A run finished.
    SyncFinished {
        /// Integration.
        integration: String,
        /// Batch id, when one was recorded.
        batch: Option<u64>,
        /// `ok` or `failed`.
        outcome: String,
        /// Error, when failed.
        error: Option<String>,
    },
    /// Integrations changed (created, updated, deleted, enabled...).
    IntegrationsChanged,
}

/// Where live events go: this node's dashboards, and on a store several daemons share,
/// every other node's (batched into store signals, see [`Live::outbound_messages`]).
#[derive(Debug)]
pub(crate) struct Live {
    events: broadcast::Sender<LiveEvent>,
    /// This process, so that it ignores its own signals.
    node: String,
    /// Events of this node waiting to be signalled to the others (`None`: no others).
    outbound: Option<Mutex<Vec<LiveEvent>>>,
    /// Events not signalled because the outbound buffer was full.
    pub(crate) dropped: AtomicU64,
}

/// The start of a live-events signal: `live <node> <JSON array of LiveEvent>`.
const LIVE_SIGNAL: &str = "live ";
/// Outbound events kept at most between two flushes; more are dropped (and counted).
const MAX_OUTBOUND: usize = 10_000;
/// The longest run error relayed to other nodes' dashboards (bytes; the batch has it all).
const MAX_RELAYED_ERROR: usize = 1_000;

impl Live {
    fn new(shared: bool) -> Live {
        let (events, _) = broadcast::channel(1024);
        let mut id = [0u8; 8];
        let _ = getrandom::getrandom(&mut id);
        Live {
            events,
            node: hex::encode(id),
            outbound: shared.then(Mutex::default),
            dropped: AtomicU64::new(0),
        }
    }

    /// An event of this node: to its dashboards now, and to the other nodes' at the next
    /// flush.
    pub(crate) fn emit(&self, e: LiveEvent) {
        if let Some(outbound) = &self.outbound
            && let Ok(mut o) = outbound.lock()
        {
            if o.len() < MAX_OUTBOUND {
                o.push(e.clone());
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = self.events.send(e);
    }

    /// An event for this node's dashboards only (about this node's own view, such as its
    /// reconnection to the store).
    pub(crate) fn local(&self, e: LiveEvent) {
        let _ = self.events.send(e);
    }

    /// The signals that carry this node's events since the last call to the other nodes:
    /// as many events per message as fit in a signal.
    pub(crate) fn outbound_messages(&self) -> Vec<String> {
        let Some(outbound) = &self.outbound else {
            return Vec::new();
        };
        let events = match outbound.lock() {
            Ok(mut o) => std::mem::take(&mut *o),
            Err(_) => return Vec::new(),
        };
        let head = format!("{LIVE_SIGNAL}{} ", self.node);
        let mut messages = Vec::new();
        let mut batch: Vec<String> = Vec::new();
        let mut len = head.len() + 2;
        for mut e in events {
            // A run's error can be long (a plugin's message); other nodes get its start.
            if let LiveEvent::SyncFinished {
                error: Some(error), ..
            } = &mut e
                && error.len() > MAX_RELAYED_ERROR
            {
                let mut end = MAX_RELAYED_ERROR;
                while !error.is_char_boundary(end) {
                    end -= 1;
                }
                error.truncate(end);
                error.push('…');
            }
            let Ok(json) = serde_json::to_string(&e) else {
                continue;
            };
            if head.len() + 2 + json.len() > proofpix_store::MAX_SIGNAL_BYTES {
                // One event too large for a signal: not relayed.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if len + json.len() + 1 > proofpix_store::MAX_SIGNAL_BYTES {
                messages.push(format!("{head}[{}]", batch.join(",")));
                batch.clear();
                len = head.len() + 2;
            }
            len += json.len() + 1;
            batch.push(json);
        }
        if !batch.is_empty() {
            messages.push(format!("{head}[{}]", batch.join(",")));
        }
        messages
    }

    /// A signal from the store: another node's events go to this node's dashboards (never
    /// back out). Returns how many events it carried; anything else is ignored.
    pub(crate) fn receive(&self, message: &str) -> usize {
        let Some(rest) = message.strip_prefix(LIVE_SIGNAL) else {
            return 0;
        };
        let Some((node, json)) = rest.split_once(' ') else {
            return 0;
        };
        if node == self.node {
            return 0;
        }
        match serde_json::from_str::<Vec<LiveEvent>>(json) {
            Ok(events) => {
                let n = events.len();
                for e in events {
                    let _ = self.events.send(e);
                }
                n
            }
            Err(e) => {
                tracing::debug!("a live-events signal did not decode: {e}");
                0
            }
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Files analysed, by risk.
    pub files_by_risk: Mutex<BTreeMap<&'static str, u64>>,
    /// Files that failed for good.
    pub file_errors: AtomicU64,
    /// Retries scheduled.
    pub retries: AtomicU64,
    /// Results written back.
    pub written_back: AtomicU64,
    /// Results the plugin deliberately did not write back (contract 0.3's skipped).
    pub write_back_skipped: AtomicU64,
    /// Runs finished, ok.
    pub runs_ok: AtomicU64,
    /// Runs failed.
    pub runs_failed: AtomicU64,
    /// Webhooks accepted.
    pub webhooks: AtomicU64,
    /// Webhooks refused (verification failed).
    pub webhooks_refused: AtomicU64,
}

impl Counters {
    fn record(&self, p: &Progress) {
        match p {
            Progress::File { risk: Some(r), .. } => {
                if let Ok(mut m) = self.files_by_risk.lock() {
                    *m.entry(r.as_str()).or_default() += 1;
                }
            }
            Progress::File { risk: None, .. } => {
                self.file_errors.fetch_add(1, Ordering::Relaxed);
            }
            Progress::Retry { .. } => {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            Progress::WrittenBack { .. } => {
                self.written_back.fetch_add(1, Ordering::Relaxed);
            }
            Progress::WriteBackSkipped { .. } => {
                self.write_back_skipped.fetch_add(1, Ordering::Relaxed);
            }
            Progress::Page { .. } => {}
        }
    }
}

/// An integration's current risk, computed for the run it was last analysed by.
#[derive(Debug, Clone, Default)]
pub(crate) struct RiskSummary {
    /// The integration's newest batch (id, finished) when it was computed.
    pub(crate) as_of: (u64, bool),
    /// Files by the risk of their latest analysis.
    pub(crate) by_risk: BTreeMap<String, u64>,
    /// Files not analysed (yet, or never: failed, parked).
    pub(crate) not_analysed: u64,
    /// When it was computed: on a store other nodes share, their runs record results
    /// without changing this node's view of the newest batch, so a summary is trusted for
    /// [`SHARED_RISK_TTL`] only.
    pub(crate) computed: Option<Instant>,
}

/// How long a current-risk summary is trusted on a shared store (cluster mode).
pub(crate) const SHARED_RISK_TTL: Duration = Duration::from_secs(2);

pub(crate) struct Inner {
    pub(crate) runs: RunManager,
    /// Current risk per integration, recomputed when its newest batch changes (a run starts
    /// or ends): one pass over its files, not one per dashboard load.
    pub(crate) risk_cache: Mutex<BTreeMap<String, RiskSummary>>,
    pub(crate) config: DaemonConfig,
    pub(crate) live: Arc<Live>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ready: AtomicBool,
    pub(crate) started: Instant,
}

/// The daemon's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a host, with the progress feed wired to counters and live
    /// events, and the service's run manager owning the runs.
    pub fn new(host: Host, config: DaemonConfig) -> Self {
        // On a store other daemons share, this node's events reach their dashboards too.
        let live = Arc::new(Live::new(host.local_store().is_none()));
        let counters = Arc::new(Counters::default());
        let sink_counters = counters.clone();
        let sink_events = live.clone();
        let host = host.with_progress(Arc::new(move |p: &Progress| {
            sink_counters.record(p);
            if let Progress::File {
                integration,
                risk,
                error,
                ..
            } = p
            {
                sink_events.emit(LiveEvent::File {
                    integration: integration.clone(),
                    risk: risk.map(|r| r.as_str().to_string()),
                    failed: error.is_some(),
                });
            }
        }));
        let run_counters = counters.clone();
        let run_events = live.clone();
        let host = Arc::new(host);
        let run_host = host.clone();
        let runs = RunManager::new(
            host,
            &RunOptions {
                max_parallel_runs: config.pipeline.max_parallel_runs,
                max_jitter: Duration::from_secs(config.scheduler.max_jitter_secs),
            },
            move |e| {
                let live = match e {
                    RunEvent::Started {
                        integration,
                        reason,
                    } => LiveEvent::SyncStarted {
                        integration,
                        reason,
                    },
                    RunEvent::Finished {
                        integration,
                        outcome: Ok(batch),
                    } => {
                        run_counters.runs_ok.fetch_add(1, Ordering::Relaxed);
                        LiveEvent::SyncFinished {
                            integration,
                            batch: Some(batch),
                            outcome: "ok".into(),
                            error: None,
                        }
                    }
                    RunEvent::Finished {
                        integration,
                        outcome: Err(error),
                    } => {
                        run_counters.runs_failed.fetch_add(1, Ordering::Relaxed);
                        // The service recorded the failed run as a batch before this event
                        // (`Host::sync_and_remediate`), so a dashboard that reloads on it reads
                        // the failed batch.
                        let batch = run_host
                            .store()
                            .recent_batches(Some(&integration), 1)
                            .ok()
                            .and_then(|b| b.first().map(|b| b.id));
                        LiveEvent::SyncFinished {
                            integration,
                            batch,
                            outcome: "failed".into(),
                            error: Some(error),
                        }
                    }
                };
                run_events.emit(live);
            },
        );
        AppState {
            inner: Arc::new(Inner {
                runs,
                risk_cache: Mutex::default(),
                config,
                live,
                counters,
                ready: AtomicBool::new(false),
                started: Instant::now(),
            }),
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        self.inner.runs.host()
    }

    /// The run manager (the service's owner of every sync run).
    pub fn runs(&self) -> &RunManager {
        &self.inner.runs
    }

    /// The configuration.
    pub fn config(&self) -> &DaemonConfig {
        &self.inner.config
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Publishes a live event.
    pub fn publish(&self, e: LiveEvent) {
        self.inner.live.emit(e);
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.inner.live.events.subscribe()
    }

    /// Whether a run of `id` is in progress.
    pub fn is_running(&self, id: &str) -> bool {
        self.inner.runs.is_running(id)
    }

    /// Integrations with a run in progress.
    pub fn running(&self) -> Vec<String> {
        self.inner.runs.running()
    }

    /// When the scheduler runs `id` next.
    pub fn next_run(&self, id: &str) -> Option<OffsetDateTime> {
        self.inner.runs.next_run(id)
    }

    /// Starts a run of `id` through the run manager unless one is in progress (then a
    /// follow-up is requested) or the daemon is shutting down.
    pub fn trigger(&self, id: &str, mode: SyncMode, reason: &str) -> TriggerOutcome {
        self.inner.runs.trigger(id, mode, reason)
    }

    /// Stops accepting runs and waits up to `deadline` for in-flight ones.
    /// Returns whether everything finished in time.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.inner.ready.store(false, Ordering::SeqCst);
        self.inner.runs.drain(deadline).await
    }

    /// Whether the daemon is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.inner.runs.is_stopping()
    }

    /// Whether the daemon is ready for traffic.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Counts of files by risk so far.
    pub fn files_by_risk(&self) -> BTreeMap<&'static str, u64> {
        self.inner
            .counters
            .files_by_risk
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(i: usize) -> LiveEvent {
        LiveEvent::File {
            integration: format!("integration-{i}"),
            risk: Some("high".into()),
            failed: false,
        }
    }

    /// A node's events reach another node's subscribers in signals that each fit NOTIFY's
    /// limit, in order, none lost; a node ignores its own signals and anything that is not a
    /// live-events signal; an embedded store relays nothing.
    #[test]
    fn live_events_cross_nodes_in_signals_that_fit() {
        let (a, b) = (Live::new(true), Live::new(true));
        let mut heard = b.events.subscribe();
        let sent: Vec<LiveEvent> = (0..500).map(file).collect();
        for e in &sent {
            a.emit(e.clone());
        }
        let messages = a.outbound_messages();
        assert!(messages.len() > 1, "500 events take several signals");
        assert!(
            messages
                .iter()
                .all(|m| m.len() <= proofpix_store::MAX_SIGNAL_BYTES)
        );
        assert!(a.outbound_messages().is_empty(), "taken once");
        let mut received = 0;
        for m in &messages {
            assert_eq!(a.receive(m), 0, "a node's own signal is not replayed to it");
            received += b.receive(m);
        }
        assert_eq!(received, 500);
        let got: Vec<LiveEvent> = (0..500).map(|_| heard.try_recv().unwrap()).collect();
        assert_eq!(got, sent);
        for junk in [
            "work sf",
            "live",
            "live x",
            "live other-node [{\"type\":\"no-such\"}]",
            "live other-node <script>",
        ] {
            assert_eq!(b.receive(junk), 0, "{junk}");
        }
        assert!(heard.try_recv().is_err());
        let embedded = Live::new(false);
        embedded.emit(file(1));
        assert!(embedded.outbound_messages().is_empty());
    }

    /// A run's long error (a plugin's message, multi-byte text) is shortened for the other
    /// nodes, never split into a signal that does not decode; the event still goes.
    #[test]
    fn a_long_run_error_is_shortened_for_other_nodes() {
        let a = Live::new(true);
        a.emit(LiveEvent::SyncFinished {
            integration: "i".into(),
            batch: None,
            outcome: "failed".into(),
            error: Some("é".repeat(20_000)),
        });
        a.emit(file(1));
        let messages = a.outbound_messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(a.dropped.load(Ordering::Relaxed), 0);
        let b = Live::new(true);
        let mut heard = b.events.subscribe();
        assert_eq!(b.receive(&messages[0]), 2);
        match heard.try_recv().unwrap() {
            LiveEvent::SyncFinished {
                error: Some(error), ..
            } => assert!(error.len() <= MAX_RELAYED_ERROR + 3 && error.ends_with('…')),
            other => panic!("{other:?}"),
        }
    }

    /// A write-back the plugin skipped (contract 0.3) is counted apart, never as written.
    #[test]
    fn a_skipped_write_back_is_not_counted_as_written() {
        let c = Counters::default();
        c.record(&Progress::WrittenBack {
            integration: "i".into(),
            remote_id: "a".into(),
        });
        c.record(&Progress::WriteBackSkipped {
            integration: "i".into(),
            remote_id: "b".into(),
        });
        c.record(&Progress::WriteBackSkipped {
            integration: "i".into(),
            remote_id: "c".into(),
        });
        assert_eq!(c.written_back.load(Ordering::Relaxed), 1);
        assert_eq!(c.write_back_skipped.load(Ordering::Relaxed), 2);
    }
}
