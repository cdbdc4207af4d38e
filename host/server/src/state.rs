//! Shared daemon state and the run manager.
//!
//! The run manager enforces one run per integration at a time (a scheduled
//! tick, a webhook and a "sync now" for the same integration coalesce: the
//! second asks for a follow-up run instead of starting a parallel one), caps
//! runs across integrations, and tracks in-flight runs so a shutdown can
//! drain them within a deadline.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_pipeline::{Progress, SyncMode};
use proofpix_service::Host;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast};
use utoipa::ToSchema;

use crate::config::DaemonConfig;
use crate::schedule::Scheduler;

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

pub(crate) struct Inner {
    pub(crate) host: Arc<Host>,
    pub(crate) config: DaemonConfig,
    pub(crate) events: broadcast::Sender<LiveEvent>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) running: Mutex<HashSet<String>>,
    pub(crate) rerun: Mutex<HashSet<String>>,
    pub(crate) run_slots: Semaphore,
    pub(crate) tasks: Mutex<tokio::task::JoinSet<()>>,
    pub(crate) scheduler: Mutex<Scheduler>,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) ready: AtomicBool,
    pub(crate) started: Instant,
    pub(crate) last_runs: Mutex<BTreeMap<String, OffsetDateTime>>,
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

/// Why a run could not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// Started.
    Started,
    /// A run is in progress; a follow-up run will process what is new.
    FollowUp,
    /// The daemon is shutting down.
    ShuttingDown,
}

impl AppState {
    /// State over a host, with the progress feed wired to counters and live
    /// events.
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
        let max_runs = config.pipeline.max_parallel_runs.max(1);
        let jitter = Duration::from_secs(config.scheduler.max_jitter_secs);
        AppState {
            inner: Arc::new(Inner {
                host: Arc::new(host),
                config,
                events,
                counters,
                running: Mutex::default(),
                rerun: Mutex::default(),
                run_slots: Semaphore::new(max_runs),
                tasks: Mutex::new(tokio::task::JoinSet::new()),
                scheduler: Mutex::new(Scheduler::new(jitter)),
                shutting_down: AtomicBool::new(false),
                ready: AtomicBool::new(false),
                started: Instant::now(),
                last_runs: Mutex::default(),
            }),
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.inner.host
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
        self.inner.running.lock().is_ok_and(|r| r.contains(id))
    }

    /// Integrations with a run in progress.
    pub fn running(&self) -> Vec<String> {
        self.inner
            .running
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// When the scheduler runs `id` next.
    pub fn next_run(&self, id: &str) -> Option<OffsetDateTime> {
        self.inner
            .scheduler
            .lock()
            .ok()
            .and_then(|s| s.next_run(id))
    }

    /// Starts a run of `id` unless one is in progress (then a follow-up is
    /// requested) or the daemon is shutting down.
    pub fn trigger(&self, id: &str, mode: SyncMode, reason: &str) -> TriggerOutcome {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return TriggerOutcome::ShuttingDown;
        }
        {
            let Ok(mut running) = self.inner.running.lock() else {
                return TriggerOutcome::ShuttingDown;
            };
            if running.contains(id) {
                if let Ok(mut r) = self.inner.rerun.lock() {
                    r.insert(id.to_string());
                }
                return TriggerOutcome::FollowUp;
            }
            running.insert(id.to_string());
        }
        let state = self.clone();
        let id = id.to_string();
        let reason = reason.to_string();
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.spawn(async move { state.run_loop(id, mode, reason).await });
        }
        TriggerOutcome::Started
    }

    async fn run_loop(self, id: String, mut mode: SyncMode, mut reason: String) {
        loop {
            let Ok(_permit) = self.inner.run_slots.acquire().await else {
                break;
            };
            self.publish(LiveEvent::SyncStarted {
                integration: id.clone(),
                reason: reason.clone(),
            });
            let result = self.inner.host.sync(&id, mode).await;
            if let Ok(mut l) = self.inner.last_runs.lock() {
                l.insert(id.clone(), OffsetDateTime::now_utc());
            }
            match &result {
                Ok(report) => {
                    self.inner.counters.runs_ok.fetch_add(1, Ordering::Relaxed);
                    self.publish(LiveEvent::SyncFinished {
                        integration: id.clone(),
                        batch: Some(report.batch.id),
                        outcome: "ok".into(),
                        error: None,
                    });
                }
                Err(e) => {
                    self.inner
                        .counters
                        .runs_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(integration = %id, "sync failed: {e}");
                    self.publish(LiveEvent::SyncFinished {
                        integration: id.clone(),
                        batch: None,
                        outcome: "failed".into(),
                        error: Some(e.to_string()),
                    });
                }
            }
            let again = self
                .inner
                .rerun
                .lock()
                .map(|mut r| r.remove(&id))
                .unwrap_or(false);
            if !again || self.inner.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            // Follow-ups process what arrived meanwhile (webhook files).
            mode = SyncMode::QueueOnly;
            reason = "follow-up".into();
        }
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(&id);
        }
    }

    /// Stops accepting runs and waits up to `deadline` for in-flight ones.
    /// Returns whether everything finished in time.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.ready.store(false, Ordering::SeqCst);
        let mut tasks = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return false,
        };
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(deadline, all).await.is_ok()
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
