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
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::config::DaemonConfig;

/// An event pushed to dashboards over server-sent events.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
}

pub(crate) struct Inner {
    pub(crate) runs: RunManager,
    /// Current risk per integration, recomputed when its newest batch changes (a run starts
    /// or ends): one pass over its files, not one per dashboard load.
    pub(crate) risk_cache: Mutex<BTreeMap<String, RiskSummary>>,
    pub(crate) config: DaemonConfig,
    pub(crate) events: broadcast::Sender<LiveEvent>,
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
        let (events, _) = broadcast::channel(1024);
        let counters = Arc::new(Counters::default());
        let sink_counters = counters.clone();
        let sink_events = events.clone();
        let host = host.with_progress(Arc::new(move |p: &Progress| {
            sink_counters.record(p);
            if let Progress::File {
                integration,
                risk,
                error,
                ..
            } = p
            {
                let _ = sink_events.send(LiveEvent::File {
                    integration: integration.clone(),
                    risk: risk.map(|r| r.as_str().to_string()),
                    failed: error.is_some(),
                });
            }
        }));
        let run_counters = counters.clone();
        let run_events = events.clone();
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
                let _ = run_events.send(live);
            },
        );
        AppState {
            inner: Arc::new(Inner {
                runs,
                risk_cache: Mutex::default(),
                config,
                events,
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
        let _ = self.inner.events.send(e);
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.inner.events.subscribe()
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
