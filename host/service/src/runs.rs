//! Who runs a sync, and when: the run manager and the scheduler.
//!
//! The run manager enforces one run per integration at a time (a scheduled
//! tick, a webhook and a "sync now" for the same integration coalesce: the
//! second asks for a follow-up run instead of starting a parallel one), caps
//! runs across integrations, and tracks in-flight runs so a shutdown can
//! drain them within a deadline. The daemon and the CLI's demo drive it; they
//! hear about runs through the [`RunEvent`] callback and never run a sync or
//! touch the store themselves.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofpix_pipeline::SyncMode;
use proofpix_runtime::contract::Capability;
use proofpix_store::{Stage, StoreError, stage_queue};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::Host;
use crate::schedule::{Schedule, Scheduler};

/// What happened to a run, for live views and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// A run started.
    Started {
        /// Integration.
        integration: String,
        /// Why (`schedule`, `manual`, `webhook`, `resume`, `follow-up`...).
        reason: String,
    },
    /// A run finished: its batch id, or why it failed.
    Finished {
        /// Integration.
        integration: String,
        /// The batch recorded, or the error.
        outcome: Result<u64, String>,
    },
}

/// Why a run could not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// Started.
    Started,
    /// A run is in progress; a follow-up run will process what is new.
    FollowUp,
    /// The manager is shutting down.
    ShuttingDown,
}

/// How the run manager is set up.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Runs at once across integrations (at least one).
    pub max_parallel_runs: usize,
    /// The cap on each integration's fixed schedule jitter.
    pub max_jitter: Duration,
}

type Listener = Arc<dyn Fn(RunEvent) + Send + Sync>;

struct Inner {
    host: Arc<Host>,
    listener: Listener,
    running: Mutex<HashSet<String>>,
    rerun: Mutex<HashSet<String>>,
    run_slots: Semaphore,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    scheduler: Scheduler,
    stopping: AtomicBool,
}

/// Owns every sync run of a host. Cheap to clone.
#[derive(Clone)]
pub struct RunManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RunManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunManager")
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl RunManager {
    /// A run manager over `host`; `listener` hears every [`RunEvent`].
    pub fn new(
        host: Arc<Host>,
        options: &RunOptions,
        listener: impl Fn(RunEvent) + Send + Sync + 'static,
    ) -> Self {
        RunManager {
            inner: Arc::new(Inner {
                host,
                listener: Arc::new(listener),
                running: Mutex::default(),
                rerun: Mutex::default(),
                run_slots: Semaphore::new(options.max_parallel_runs.max(1)),
                tasks: Mutex::new(tokio::task::JoinSet::new()),
                scheduler: Scheduler::new(options.max_jitter),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// The host the runs go through.
    pub fn host(&self) -> &Arc<Host> {
        &self.inner.host
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
        Scheduler::next_run(self.inner.host.store().as_ref(), id)
    }

    /// Forgets when `id` runs next (its schedule changed); the next tick plans it again.
    pub fn reschedule(&self, id: &str) {
        self.inner
            .scheduler
            .reset(self.inner.host.store().as_ref(), id);
    }

    /// Whether the manager has stopped accepting runs.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// Starts a run of `id` unless one is in progress (then a follow-up is
    /// requested) or the manager is shutting down.
    pub fn trigger(&self, id: &str, mode: SyncMode, reason: &str) -> TriggerOutcome {
        if self.is_stopping() {
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
        let manager = self.clone();
        let id = id.to_string();
        let reason = reason.to_string();
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.spawn(async move { manager.run_loop(id, mode, reason).await });
        }
        TriggerOutcome::Started
    }

    async fn run_loop(self, id: String, mut mode: SyncMode, mut reason: String) {
        loop {
            let Ok(_permit) = self.inner.run_slots.acquire().await else {
                break;
            };
            (self.inner.listener)(RunEvent::Started {
                integration: id.clone(),
                reason: reason.clone(),
            });
            let outcome = match self.inner.host.sync(&id, mode).await {
                Ok(report) => Ok(report.batch.id),
                Err(e @ crate::ServiceError::SyncElsewhere(_)) => {
                    // Not a failure: the node holding the lease processes the queues,
                    // including what this trigger was about.
                    tracing::info!(integration = %id, "{e}");
                    Err(e.to_string())
                }
                Err(e) => {
                    tracing::warn!(integration = %id, "sync failed: {e}");
                    Err(e.to_string())
                }
            };
            (self.inner.listener)(RunEvent::Finished {
                integration: id.clone(),
                outcome,
            });
            // Whether a trigger came meanwhile, and if not, the end of this run loop, under the
            // `running` lock that `trigger` takes first: a trigger between the two would
            // otherwise flag a follow-up that no loop runs, and its webhook's file would wait
            // for the next trigger.
            {
                let Ok(mut running) = self.inner.running.lock() else {
                    break;
                };
                let again = self
                    .inner
                    .rerun
                    .lock()
                    .map(|mut r| r.remove(&id))
                    .unwrap_or(false);
                if !again || self.is_stopping() {
                    running.remove(&id);
                    return;
                }
            }
            // Follow-ups process what arrived meanwhile (webhook files).
            mode = SyncMode::QueueOnly;
            reason = "follow-up".into();
        }
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(&id);
        }
    }

    /// Runs the scheduler once at `now`: triggers every enabled source integration that is
    /// due, by its own schedule or else `default_schedule`. Returns the integrations
    /// triggered. The daemon calls this every second; tests call it with a controllable
    /// clock.
    pub fn tick(&self, now: OffsetDateTime, default_schedule: Option<&str>) -> Vec<String> {
        let host = &self.inner.host;
        let Ok(records) = host.store().integrations() else {
            return Vec::new();
        };
        let mut schedules = Vec::new();
        for r in records.into_iter().filter(|r| r.enabled) {
            let Some(plugin) = host.plugin(&r.plugin_id) else {
                continue;
            };
            if !plugin.info().capabilities.contains(&Capability::Source) {
                continue;
            }
            let Some(text) = r.schedule.as_deref().or(default_schedule) else {
                continue;
            };
            match Schedule::parse(text) {
                Ok(s) => schedules.push((r.id, s)),
                Err(e) => tracing::warn!(integration = %r.id, "schedule ignored: {e}"),
            }
        }
        // Claimed in the store: on a shared one, each due time fires on one node only.
        let due = self
            .inner
            .scheduler
            .due(now, &schedules, host.store().as_ref());
        for id in &due {
            self.trigger(id, SyncMode::Incremental, "schedule");
        }
        due
    }

    /// Work to do at start: reclaim the leases of a process that died, and resume every
    /// integration with queued work (files to fetch, or results an interrupted run recorded
    /// but did not write back).
    ///
    /// # Errors
    /// Store failures.
    pub fn resume(&self) -> Result<Vec<String>, StoreError> {
        let store = self.inner.host.store();
        let expired = store.expire_leases()?;
        if expired > 0 {
            tracing::info!(expired, "reclaimed the leases of an interrupted run");
        }
        let mut resumed = Vec::new();
        for r in store.integrations()? {
            let writeback = stage_queue(&r.id, Stage::WriteBack);
            if store.depth(&r.id)?.pending > 0 || store.depth(&writeback)?.pending > 0 {
                self.trigger(&r.id, SyncMode::QueueOnly, "resume");
                resumed.push(r.id);
            }
        }
        Ok(resumed)
    }

    /// Joins the work on backlogs other nodes of a cluster are draining, when this node has no
    /// run of its own: for every integration with queued work due now (files to fetch, results
    /// to write back), starts a queue-only run, which claims items beside the other nodes' runs (claims
    /// are exclusive per item, write-backs guarded by the idempotency log). Listing stays one
    /// run per integration across the cluster (the sync lease). Returns the integrations
    /// joined. The daemon calls this every few seconds when its store is shared.
    ///
    /// # Errors
    /// Store failures.
    pub fn join_backlogs(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        // Only a node with no run of its own joins: measured on 2 nodes and 3 integrations,
        // busy nodes joining each other's backlogs halved the throughput (361 against 675
        // files/s), while idle nodes joining one large backlog scaled it (257, 430, 630 files/s
        // on 1, 2, 3 nodes, BENCHMARKS.md "Cluster mode").
        if !self.running().is_empty() {
            return Ok(Vec::new());
        }
        let store = self.inner.host.store();
        let mut joined = Vec::new();
        for r in store.integrations()? {
            if !r.enabled || self.is_running(&r.id) {
                continue;
            }
            let writeback = stage_queue(&r.id, Stage::WriteBack);
            // Due items only: a queue whose items are all leased by other nodes' runs has
            // nothing to take (and an empty run would only add an empty batch).
            let due = |q: &str| -> Result<bool, StoreError> {
                Ok(store.earliest_due(q)?.is_some_and(|at| at <= now))
            };
            if due(&r.id)? || due(&writeback)? {
                self.trigger(&r.id, SyncMode::QueueOnly, "backlog");
                joined.push(r.id);
            }
        }
        Ok(joined)
    }

    /// Stops accepting runs (a trigger answers [`TriggerOutcome::ShuttingDown`]).
    pub fn stop_accepting(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Stops accepting runs and waits up to `deadline` for in-flight ones.
    /// Returns whether everything finished in time.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.stop_accepting();
        let mut tasks = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return false,
        };
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(deadline, all).await.is_ok()
    }
}
