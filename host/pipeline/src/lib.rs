//! The sync pipeline: one run of an integration, as durable stages.
//!
//! ```text
//! plugin.discover ──page──▶ fetch queue <id> (+cursor, one transaction)
//!        ▲                        │ claim a group (leases)
//!        │                        ▼
//!        └── next page   plugin.download ─▶ host fetch (file or HTTP ranges) ─▶ analysis core
//!                                                                                 │
//!                         record: the group's acks, file records, results and ◀───┘
//!                         outbox items in ONE transaction (group commit)
//!                                  │
//!          ┌───────────────────────┼──────────────────────────┐
//!          ▼                       ▼                          ▼
//!   <id>/writeback          <id>/remediate            <notifier>/notify
//!   drained here: intents   drained by the service    drained by the service
//!   for a group, plugin     (remediation policy)      (digests over the
//!   calls, completions                                subscription's window)
//! ```
//!
//! Failure model (what a crash, a hostile image or a flaky API costs):
//! - Discovery pages are enqueued together with the cursor that follows them,
//!   so after a crash nothing is skipped and the run resumes where it was.
//! - Queue items are leased; a crashed worker's lease expires and the item is
//!   delivered again. An item that keeps failing is parked with its last
//!   error after the store's attempt limit, and does not block the batch.
//! - A group of files is recorded in one transaction with the outbox items of
//!   every downstream stage, so a crash loses no result and no outbox item:
//!   either the group committed or its leases expire and it is done again.
//! - Write-back is at most once per (file version, plugin version, policy
//!   version): intents are recorded before the plugin call and completions
//!   after it ([`proofpix_store::IdempotencyLog`]), a group at a time.
//! - A file the analysis cannot read costs that file's result (its report
//!   carries the error); the run goes on.
//!
//! Nothing is kept in memory for after the run: the stages downstream of
//! `record` read their queues, so a run of a million files costs the memory of
//! one group. [`PipelineOptions::collect_outcomes`] keeps per-file outcomes in
//! the [`SyncReport`] for callers that print them (tests, small one-shot runs);
//! the daemon turns it off.
//!
//! Layering (checked by .ci/layers): floor 3, may use only the host crates below it (proofpix-analysis, proofpix-auth, proofpix-model, proofpix-pixels, proofpix-plugin-artifacts, proofpix-policy, proofpix-runtime, proofpix-signing, proofpix-store, proofpix-vault); never pulls in axum, even transitively.

#![deny(missing_docs)]

mod connector;
mod convert;
mod lane;
mod sparse;

pub use connector::{Connector, ConnectorInfo, ConnectorSession};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use proofpix_analysis::{Analyzer, FileSource, Report, RiskLevel};
use proofpix_model::{FileResult, Page, PluginError, RemoteFile, WriteOutcome, WriteResult};
use proofpix_runtime::{Body, CallError, Content, IntegrationContext, RemoteContent};
use proofpix_store::{
    AuditEvent, BatchRecord, Begin, ClaimRequest, Completion, FileRecord, FileStatus,
    IntegrationStatus, Lease, Nacked, NewItem, NewResult, Outbound, Record, Recorded, Resolution,
    Stage, StageStore, StoreError, WritebackDone, WritebackEnd, WritebackKey, stage_queue,
};
use time::OffsetDateTime;

pub use convert::{file_result, risk_from_pixels};
pub use lane::{current_lane, in_lane, run_in_lane};
pub use sparse::SparseSource;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Files fetched and analysed at once (default 16, whatever the number of cores).
    pub concurrency: usize,
    /// How long a claimed item stays leased before another worker may take it.
    pub lease: Duration,
    /// First retry delay; doubles per attempt, with jitter.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Attempts for a discovery page before the run fails.
    pub discover_attempts: u32,
    /// Bytes fetched from the start of a remote file in the first round.
    pub head_bytes: u64,
    /// Bytes fetched from the end of a remote file in the first round.
    pub tail_bytes: u64,
    /// Range rounds before falling back to a full download.
    pub range_rounds: u32,
    /// Largest file downloaded whole.
    pub max_file_bytes: u64,
    /// Most bytes of one whole-file download kept in memory; a larger body is
    /// spooled to an anonymous temporary file in [`PipelineOptions::spool_dir`],
    /// so memory stays bounded by `concurrency` times this, not by file sizes.
    pub memory_body_bytes: u64,
    /// Where large downloads are spooled (the data directory's `tmp`); the
    /// system's temporary directory when unset.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Wait for items whose retry is due within this run (a one-shot scan
    /// waits; a daemon leaves them to the next run).
    pub wait_for_retries: Option<Duration>,
    /// Whether write-backs left uncertain by a crashed run are retried for
    /// plugins whose write-back is idempotent.
    pub retry_uncertain_idempotent: bool,
    /// Keep every file's outcome in [`SyncReport::files`] (for callers that print
    /// them). Every file is counted in the batch and recorded in the store either
    /// way; the downstream stages never read these.
    pub collect_outcomes: bool,
    /// Most files recorded in one write transaction (one durability point); a
    /// group is also the unit claimed from the queue and written back together.
    pub group_size: usize,
    /// Write-back calls (each a plugin batch) in flight at once, each on its own
    /// plugin session.
    pub writeback_concurrency: usize,
}

/// Most failures listed in a batch record; `errors` counts them all.
pub const MAX_BATCH_FAILURES: usize = 1_000;

/// Most results listed in a batch record: the riskiest of the run, highest first; `ok`
/// counts them all. Bounds the record (and the run's memory) whatever the run's size: a
/// million-file run listed every id before, 8 MB held through the run and written at its close.
pub const MAX_BATCH_RESULTS: usize = 5_000;

/// Files per group commit by default: large enough that one fsync is shared by many
/// files, small enough that a group's memory (its fetched heads and reports) stays small.
pub const DEFAULT_GROUP_SIZE: usize = 128;

/// A downstream stage that receives a file's result when its risk is at least `min_risk`
/// (a notifier's alert queue, the remediation queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRoute {
    /// The stage queue ([`proofpix_store::stage_queue`]).
    pub queue: String,
    /// The lowest risk routed.
    pub min_risk: proofpix_analysis::RiskLevel,
}

/// A downstream stage that receives the run's batch when it ends (a notifier's summaries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRoute {
    /// The stage queue.
    pub queue: String,
    /// Route batches that processed no file too.
    pub include_empty: bool,
}

/// What a run does besides analysing metadata and writing back (which the pipeline routes
/// itself when the plugin writes back): where its outbox sends results and batches, and
/// whether it also looks at the pixels. Built once per sync by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Per-file routes.
    pub files: Vec<FileRoute>,
    /// Per-batch routes.
    pub batches: Vec<BatchRoute>,
    /// Run the pixel stage on every file (QR codes, personal data in OCR text): the whole
    /// file is fetched instead of the byte ranges the metadata needs.
    pub pixels: bool,
}

/// An outbox item: what a downstream stage receives. Serialised as JSON in the stage queue.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StageItem {
    /// A file's result.
    File {
        /// The source integration.
        source: String,
        /// The result as a plugin is given it (file, risk, findings, summary). Items queued by
        /// builds before the host had its own model spelled risk levels capitalised
        /// (`"High"`); they still read ([`proofpix_model::deserialize_stored`]).
        result: Box<FileResult>,
    },
    /// A finished batch (read back from the store by id).
    Batch {
        /// The source integration.
        source: String,
        /// The batch id.
        batch: u64,
    },
    /// A failed run or an unhealthy integration whose notification the notifier did not
    /// accept when it happened: kept for redelivery, never dropped.
    Problem {
        /// The source integration.
        source: String,
        /// The subscription event: `batch-failed` or `unhealthy`.
        event: String,
        /// What went wrong.
        message: String,
    },
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            // Fetches wait on the network far more than analysis uses a CPU (the analysis runs
            // on the blocking pool): enough in flight that a platform's latency is overlapped.
            concurrency: 16,
            lease: Duration::from_secs(300),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            discover_attempts: 5,
            head_bytes: 128 * 1024,
            tail_bytes: 64 * 1024,
            range_rounds: 4,
            max_file_bytes: 1 << 30,
            memory_body_bytes: proofpix_runtime::MEMORY_BODY_BYTES,
            spool_dir: None,
            wait_for_retries: None,
            retry_uncertain_idempotent: true,
            collect_outcomes: true,
            group_size: DEFAULT_GROUP_SIZE,
            writeback_concurrency: 8,
        }
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The plugin could not be started for this integration.
    #[error("{0}")]
    Load(#[from] proofpix_runtime::LoadError),
    /// A plugin call failed in a way that stops the run (discovery).
    #[error("{0}")]
    Call(#[from] CallError),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What happened to one file in a run.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The file as the plugin described it.
    pub file: RemoteFile,
    /// The analysis report, when analysis ran.
    pub report: Option<Report>,
    /// The stored result id.
    pub result_id: Option<u64>,
    /// Whether its result was written back in this run.
    pub written_back: bool,
    /// Why the plugin wrote nothing back for it in this run, when it said it skipped the
    /// result on purpose (contract 0.3); not counted as written.
    pub write_back_skipped: Option<String>,
    /// What failed, when something did.
    pub error: Option<String>,
    /// Bytes fetched from the platform or disk for this file.
    pub bytes_fetched: u64,
    /// Whether this file needed more than one attempt.
    pub retried: bool,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The batch record, as stored.
    pub batch: BatchRecord,
    /// Files the plugin listed.
    pub discovered: u64,
    /// Listed files already processed at the same version.
    pub unchanged: u64,
    /// Per-file outcomes of files processed in this run, when
    /// [`PipelineOptions::collect_outcomes`] is on (empty otherwise).
    pub files: Vec<FileOutcome>,
    /// Items parked (failed too often) in this run.
    pub parked: u64,
    /// Known files the plugin reported removed from the platform in this run.
    pub removed: u64,
    /// Write-backs left uncertain by an earlier crash and not retried.
    pub uncertain: u64,
    /// Discovery pages fetched.
    pub pages: u32,
    /// Retries of plugin calls (discovery, write-back) and of files.
    pub retries: u64,
    /// Wall-clock duration.
    pub duration: Duration,
    /// Items still queued (retry due later) when the run ended.
    pub still_queued: u64,
    /// Results the plugin deliberately did not write back in this run (contract 0.3's
    /// `write-result.skipped`), each with its reason on its file record.
    pub write_backs_skipped: u64,
}

/// What a run lists and what it analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// From the stored cursor; skip file versions already processed.
    Incremental,
    /// List everything from the start; still skip processed versions (a
    /// reconciliation after a lost or reset cursor).
    FullListing,
    /// List everything and analyse every file again (after a policy or
    /// analysis upgrade). Write-backs stay at most once per key.
    Reanalyse,
    /// No discovery: process what is queued (files a webhook reported, or
    /// work an interrupted run left).
    QueueOnly,
}

/// What a run reports as it goes, for live views and metrics.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A discovery page was listed.
    Page {
        /// Integration.
        integration: String,
        /// Files on the page.
        files: usize,
    },
    /// A file was analysed (or failed for good).
    File {
        /// Integration.
        integration: String,
        /// Remote id.
        remote_id: String,
        /// Risk, when analysed.
        risk: Option<proofpix_analysis::RiskLevel>,
        /// Error, when it failed.
        error: Option<String>,
    },
    /// A file will be retried later.
    Retry {
        /// Integration.
        integration: String,
    },
    /// A result was written back.
    WrittenBack {
        /// Integration.
        integration: String,
        /// Remote id.
        remote_id: String,
    },
    /// The plugin deliberately wrote nothing back for a result (contract 0.3's
    /// `write-result.skipped`): not a write.
    WriteBackSkipped {
        /// Integration.
        integration: String,
        /// Remote id.
        remote_id: String,
    },
}

/// A receiver of [`Progress`] events.
pub type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Runs syncs against one store with one analyzer.
#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn StageStore>,
    analyzer: Arc<Analyzer>,
    options: PipelineOptions,
    owner: String,
    progress: Option<ProgressSink>,
    /// Made on first use (it locates tesseract); shared by the runs of this pipeline.
    pixel_stage: Arc<std::sync::OnceLock<Arc<proofpix_pixels::PixelStage>>>,
    /// One pixel analysis per core at a time: each holds a whole file and its decoded image.
    pixel_permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("options", &self.options)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// One file being worked on.
struct Job {
    lease: Lease,
    file: RemoteFile,
    prior: Option<FileRecord>,
}

/// A job after analysis.
struct Analysed {
    job: Job,
    outcome: Result<(Report, u64), String>,
    retryable: bool,
    /// The platform's Retry-After, when it throttled the download.
    retry_after: Option<Duration>,
}

/// Why fetching or analysing one file failed.
struct FileFailure {
    message: String,
    retryable: bool,
    /// A Retry-After the platform sent; the retry waits at least this long.
    retry_after: Option<Duration>,
}

impl From<(String, bool)> for FileFailure {
    fn from((message, retryable): (String, bool)) -> Self {
        FileFailure {
            message,
            retryable,
            retry_after: None,
        }
    }
}

impl Pipeline {
    /// A pipeline over a store.
    pub fn new(
        store: Arc<dyn StageStore>,
        analyzer: Arc<Analyzer>,
        options: PipelineOptions,
    ) -> Self {
        let owner = format!(
            "proofpix-{}-{:x}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos() & 0xffff_ffff
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pipeline {
            store,
            analyzer,
            options,
            owner,
            progress: None,
            pixel_stage: Arc::new(std::sync::OnceLock::new()),
            pixel_permits: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// The pixel stage, made on first use with the default budget; values masked unless the
    /// analyzer shows them.
    fn pixel_stage(&self) -> Arc<proofpix_pixels::PixelStage> {
        self.pixel_stage
            .get_or_init(|| {
                Arc::new(
                    proofpix_pixels::PixelStage::new(proofpix_pixels::Budget::default())
                        .show_values(self.analyzer.options().show_values),
                )
            })
            .clone()
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    fn emit(&self, p: Progress) {
        if let Some(sink) = &self.progress {
            sink(&p);
        }
    }

    /// Queues files a webhook reported as changed (skipping versions already
    /// processed); process them with [`SyncMode::QueueOnly`]. Returns how
    /// many were queued.
    ///
    /// # Errors
    /// Store failures.
    pub async fn enqueue_changes(
        &self,
        integration: &str,
        files: Vec<RemoteFile>,
    ) -> Result<usize, PipelineError> {
        let id = integration.to_string();
        self.blocking(move |s| {
            let mut items = Vec::new();
            for f in files {
                if s.needs_processing(&id, &f.id, &f.version, true)? {
                    let payload = serde_json::to_vec(&f).unwrap_or_default();
                    items.push(NewItem {
                        dedup_key: format!("{}@{}", f.id, f.version),
                        payload,
                    });
                }
            }
            let n = items.len();
            s.enqueue(&id, &items)?;
            Ok(n)
        })
        .await
    }

    /// The name this pipeline's claims are held under (one per process).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The analyzer.
    pub fn analyzer(&self) -> &Arc<Analyzer> {
        &self.analyzer
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, PipelineError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn StageStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let lane = current_lane();
        tokio::task::spawn_blocking(move || run_in_lane(lane, || f(store.as_ref())))
            .await
            .map_err(|e| PipelineError::Internal(e.to_string()))?
            .map_err(PipelineError::from)
    }

    /// Runs one sync of an integration: discover (from the stored cursor
    /// unless `full`), analyse what changed, write results back.
    ///
    /// # Errors
    /// Store failures, a plugin that cannot start, and discovery that keeps
    /// failing. Per-file failures are reported in the result, not here.
    pub async fn sync<C: Connector>(
        &self,
        plugin: &C,
        ctx: &IntegrationContext,
        mode: SyncMode,
    ) -> Result<SyncReport, PipelineError> {
        self.sync_routed(plugin, ctx, mode, &Routes::default())
            .await
    }

    /// [`Pipeline::sync`], with the outbox routes of the downstream stages
    /// (notifiers, remediation) the caller built for this integration.
    ///
    /// # Errors
    /// As [`Pipeline::sync`].
    pub async fn sync_routed<C: Connector>(
        &self,
        plugin: &C,
        ctx: &IntegrationContext,
        mode: SyncMode,
        routes: &Routes,
    ) -> Result<SyncReport, PipelineError> {
        let started = Instant::now();
        let id = ctx.id.clone();
        // The batch and its audit entry in one commit; a run that only drains its queue (a
        // webhook's file) claims its first group in the same one.
        let (batch, claimed) = {
            let id = id.clone();
            let claim = (mode == SyncMode::QueueOnly).then(|| ClaimRequest {
                queue: id.clone(),
                owner: self.owner.clone(),
                max: self.options.group_size.max(1),
                lease: self.options.lease,
            });
            self.blocking(move |s| {
                let audit = |batch: &BatchRecord| {
                    AuditEvent::new("system", "sync.started", &batch.integration)
                        .outcome("ok")
                        .details(serde_json::json!({"batch": batch.id}))
                };
                match claim {
                    Some(claim) => s.start_batch_and_claim(&id, &audit, &claim),
                    None => Ok((s.start_batch_audited(&id, &audit)?, Vec::new())),
                }
            })
            .await?
        };
        tracing::info!(integration = %id, batch = batch.id, plugin = %plugin.label(), "sync started");

        let mut run = Run {
            report: empty_report(batch),
            writeback_needed: plugin.info().writes_back,
            routes: routes.clone(),
            collect: self.options.collect_outcomes,
            collected: HashMap::new(),
            riskiest: Riskiest::default(),
            claimed: Some(claimed).filter(|c| !c.is_empty()),
        };
        let result = self.run(plugin, ctx, mode, &mut run).await;
        if let Some(left) = run.claimed.take() {
            // The run failed before it reached its first group: the items go back to the
            // queue now rather than when their leases run out.
            let error = match &result {
                Err(e) => format!("the run ended before it reached this file: {e}"),
                Ok(()) => "the run ended before it reached this file".to_string(),
            };
            let now = self.store.now();
            let returned = self
                .blocking(move |s| {
                    for lease in &left {
                        s.nack(lease, now, &error)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = returned {
                tracing::warn!(integration = %id, "claimed files could not be returned to the queue; they come back when their leases run out: {e}");
            }
        }
        let mut report = run.report;
        report.batch.result_ids = run.riskiest.into_ids();
        report.duration = started.elapsed();
        let depth = {
            let id = id.clone();
            self.blocking(move |s| s.depth(&id)).await?
        };
        report.still_queued = depth.pending;

        // Finalise the batch whatever happened; a failed run is recorded too. Its
        // summaries go to the notifiers' queues in the same transaction.
        let now = self.store.now();
        let b = &mut report.batch;
        b.finished_at = Some(now);
        b.duration = Some(report.duration);
        let batch = report.batch.clone();
        let outbox: Vec<Outbound> = if result.is_ok() {
            routes
                .batches
                .iter()
                .filter(|r| r.include_empty || batch.total > 0)
                .map(|r| Outbound {
                    queue: r.queue.clone(),
                    item: NewItem {
                        dedup_key: format!("{id}#batch{}", batch.id),
                        payload: serde_json::to_vec(&StageItem::Batch {
                            source: id.clone(),
                            batch: batch.id,
                        })
                        .unwrap_or_default(),
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let (status, last_error, outcome) = match &result {
            Ok(()) => (IntegrationStatus::Healthy, None, "ok".to_string()),
            Err(PipelineError::Call(e))
                if matches!(e.plugin_error(), Some(PluginError::Unauthorized(_))) =>
            {
                (
                    IntegrationStatus::NeedsReauth,
                    Some(e.to_string()),
                    "failed".to_string(),
                )
            }
            Err(e) => (
                IntegrationStatus::Failing,
                Some(e.to_string()),
                "failed".to_string(),
            ),
        };
        let event = AuditEvent::new("system", "sync.completed", &id)
            .outcome(&outcome)
            .details(serde_json::json!({
                "batch": report.batch.id, "total": report.batch.total, "ok": report.batch.ok,
                "errors": report.batch.errors, "unchanged": report.unchanged,
                "removed": report.removed, "error": last_error,
            }));
        // The batch, its summaries for the notifiers' queues, the integration's health and the
        // audit entry: one commit.
        self.blocking(move |s| {
            s.close_batch(&batch, &outbox, status, last_error.as_deref(), &event)
        })
        .await?;
        tracing::info!(integration = %id, batch = report.batch.id, total = report.batch.total, errors = report.batch.errors, unchanged = report.unchanged, "sync finished");
        result.map(|()| report)
    }

    async fn run<C: Connector>(
        &self,
        plugin: &C,
        ctx: &IntegrationContext,
        mode: SyncMode,
        run: &mut Run,
    ) -> Result<(), PipelineError> {
        let id = ctx.id.clone();
        let mut session = plugin.session(ctx).await?;
        self.resolve_uncertain(plugin, &id, run).await?;

        // Work left by an interrupted run is processed first.
        self.drain(&mut session, plugin, ctx, run).await?;

        if mode == SyncMode::QueueOnly {
            return self.wait_for_retries(&mut session, plugin, ctx, run).await;
        }
        let mut cursor = if mode == SyncMode::Incremental {
            let id = id.clone();
            self.blocking(move |s| s.cursor(&id)).await?
        } else {
            None
        };
        let reanalyse = mode == SyncMode::Reanalyse;
        loop {
            let page = self
                .discover_with_retries(&mut session, plugin, ctx, cursor.as_deref(), run)
                .await?;
            run.report.pages += 1;
            self.emit(Progress::Page {
                integration: id.clone(),
                files: page.files.len(),
            });
            run.report.discovered += page.files.len() as u64;
            let files = page.files;
            let removed = page.removed;
            let next = page.cursor.clone();
            let more = page.more;
            let (needed, gone) = {
                let id = id.clone();
                let wb = run.writeback_needed;
                self.blocking(move |s| {
                    // Before the cursor moves past them: a crash in between repeats the page,
                    // and marking a file removed twice is harmless.
                    let gone = mark_removed(s, &id, &removed)?;
                    let mut items = Vec::new();
                    let mut unchanged = 0u64;
                    for f in files {
                        if reanalyse || s.needs_processing(&id, &f.id, &f.version, wb)? {
                            let payload = serde_json::to_vec(&f).unwrap_or_default();
                            items.push(NewItem {
                                dedup_key: format!("{}@{}", f.id, f.version),
                                payload,
                            });
                        } else {
                            unchanged += 1;
                        }
                    }
                    s.enqueue_page(&id, &items, next.as_deref())?;
                    Ok((unchanged, gone))
                })
                .await?
            };
            run.report.unchanged += needed;
            run.report.removed += gone;
            self.drain(&mut session, plugin, ctx, run).await?;
            if !more {
                break;
            }
            cursor = page.cursor;
        }

        self.wait_for_retries(&mut session, plugin, ctx, run).await
    }

    /// Items waiting for a retry: a one-shot run waits for them, bounded.
    async fn wait_for_retries<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        run: &mut Run,
    ) -> Result<(), PipelineError> {
        self.drain(session, plugin, ctx, run).await?;
        if let Some(max_wait) = self.options.wait_for_retries {
            let deadline = Instant::now() + max_wait;
            loop {
                let pending = {
                    let id = ctx.id.clone();
                    let wb = stage_queue(&id, Stage::WriteBack);
                    self.blocking(move |s| Ok(s.depth(&id)?.pending + s.depth(&wb)?.pending))
                        .await?
                };
                if pending == 0 || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                self.drain(session, plugin, ctx, run).await?;
            }
        }
        Ok(())
    }

    async fn discover_with_retries<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        cursor: Option<&str>,
        run: &mut Run,
    ) -> Result<Page, PipelineError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if session.is_poisoned() {
                *session = plugin.session(ctx).await?;
            }
            match session.discover(cursor).await {
                Ok(page) => return Ok(page),
                Err(e) if e.is_retryable() && attempt < self.options.discover_attempts => {
                    let wait = e.retry_after().unwrap_or_else(|| self.backoff(attempt));
                    tracing::warn!(integration = %ctx.id, attempt, wait_ms = wait.as_millis() as u64, "discovery failed, retrying: {e}");
                    run.report.retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Exponential back-off with ±25% jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .options
            .retry_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = base.min(self.options.retry_max);
        let jitter = (OffsetDateTime::now_utc().nanosecond() % 500) as f64 / 1000.0 - 0.25;
        capped.mul_f64(1.0 + jitter)
    }

    /// Processes every due item of the fetch queue, a group at a time. A recorded group is
    /// written back on a session of its own while the next group is claimed, fetched and
    /// analysed, so the platform's write-back calls and the analysis overlap instead of
    /// taking turns.
    async fn drain<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        run: &mut Run,
    ) -> Result<(), PipelineError> {
        let pixels = run.routes.pixels;
        // The write-back session, opened on first use so it can run beside the fetch one.
        let mut writer: Option<C::Session> = None;
        let claimed = run.claimed.take();
        let mut next = self
            .claim_and_analyse(session, plugin, ctx, pixels, claimed)
            .await?;
        loop {
            let Some(analysed) = next.take() else {
                if !run.writeback_needed {
                    return Ok(());
                }
                // Nothing left to fetch: what is still queued for write-back goes out now
                // (work an interrupted run left, or retries that came due).
                return self
                    .drain_writebacks(session, plugin, ctx, run, Vec::new())
                    .await;
            };
            let claimed = self.record(ctx, analysed, run).await?;
            if !run.writeback_needed {
                next = self
                    .claim_and_analyse(session, plugin, ctx, pixels, None)
                    .await?;
                continue;
            }
            if writer.is_none() {
                writer = Some(plugin.session(ctx).await?);
            }
            let Some(w) = writer.as_mut() else {
                unreachable!("the write-back session was opened above")
            };
            let (written, upcoming) = tokio::join!(
                self.drain_writebacks(w, plugin, ctx, run, claimed),
                self.claim_and_analyse(session, plugin, ctx, pixels, None),
            );
            written?;
            next = upcoming?;
            if next.is_none() {
                return Ok(());
            }
        }
    }

    /// Claims the next group of the fetch queue (unless `claimed` holds it already) and
    /// fetches and analyses it; `None` when nothing is due.
    async fn claim_and_analyse<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        run_pixels: bool,
        claimed: Option<Vec<Lease>>,
    ) -> Result<Option<Vec<Analysed>>, PipelineError> {
        let group = self.options.group_size.max(1);
        let jobs = {
            let (id, owner, lease) = (ctx.id.clone(), self.owner.clone(), self.options.lease);
            self.blocking(move |s| {
                let leases = match claimed {
                    Some(leases) => leases,
                    None => s.claim(&id, &owner, group, lease)?,
                };
                // Prior records are read in one read transaction per group.
                let mut jobs = Vec::with_capacity(leases.len());
                let mut unreadable = Vec::new();
                for lease in leases {
                    match serde_json::from_slice::<RemoteFile>(&lease.payload) {
                        Ok(file) => {
                            let prior = s.file(&id, &file.id)?;
                            jobs.push(Job { lease, file, prior });
                        }
                        Err(e) => unreadable.push((lease, e.to_string())),
                    }
                }
                for (lease, e) in unreadable {
                    s.park(&lease, &format!("unreadable queue item: {e}"))?;
                }
                Ok(jobs)
            })
            .await?
        };
        if jobs.is_empty() {
            return Ok(None);
        }

        // Download specs come from the plugin, one call each (cheap: no I/O).
        let mut specs = Vec::with_capacity(jobs.len());
        for job in jobs {
            if session.is_poisoned() {
                *session = plugin.session(ctx).await?;
            }
            let spec = session.download(&job.file).await;
            specs.push((job, spec));
        }
        let fetcher = session.fetcher().clone();

        // Fetch and analyse concurrently.
        let analysed: Vec<Analysed> = futures_util::stream::iter(specs)
            .map(|(job, spec)| {
                let fetcher = fetcher.clone();
                async move {
                    match spec {
                        Err(e) => Analysed {
                            retryable: e.is_retryable(),
                            retry_after: e.retry_after(),
                            outcome: Err(e.to_string()),
                            job,
                        },
                        Ok(answer) => match fetcher.open_answer(&answer).await {
                            Err(e) => Analysed {
                                retryable: e.is_retryable(),
                                retry_after: e.retry_after(),
                                outcome: Err(format!("download: {e}")),
                                job,
                            },
                            Ok(content) => {
                                match self.analyse(content, job.file.size, run_pixels).await {
                                    Ok(done) => Analysed {
                                        retryable: false,
                                        retry_after: None,
                                        outcome: Ok(done),
                                        job,
                                    },
                                    Err(f) => Analysed {
                                        retryable: f.retryable,
                                        retry_after: f.retry_after,
                                        outcome: Err(f.message),
                                        job,
                                    },
                                }
                            }
                        },
                    }
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        Ok(Some(analysed))
    }

    /// Records a group of analysed files in one transaction (group commit): results, file
    /// records, acks and the outbox items of the downstream stages.
    ///
    /// When the run writes back, the same transaction claims the write-back stage's next
    /// group (one durable commit, not two, on the embedded store); its leases are returned
    /// for [`Pipeline::drain_writebacks`] to start from.
    async fn record(
        &self,
        ctx: &IntegrationContext,
        analysed: Vec<Analysed>,
        run: &mut Run,
    ) -> Result<Vec<Lease>, PipelineError> {
        let now = self.store.now();
        let analysed_at = now_rfc3339();
        let writeback_queue = stage_queue(&ctx.id, Stage::WriteBack);
        let mut records = Vec::with_capacity(analysed.len());
        let mut pending = Vec::with_capacity(analysed.len());
        for a in analysed {
            let Analysed {
                job,
                outcome,
                retryable,
                retry_after,
            } = a;
            let base = FileRecord {
                integration: ctx.id.clone(),
                remote_id: job.file.id.clone(),
                version: job.file.version.clone(),
                name: job.file.name.clone(),
                content_hash: None,
                last_result: job.prior.as_ref().and_then(|p| p.last_result),
                status: FileStatus::Analysed,
                attempts: job.lease.attempt,
                last_error: None,
                updated_at: now,
                web_url: job.file.web_url.clone(),
            };
            let record = match &outcome {
                Ok((report, _)) => {
                    let new = NewResult {
                        integration: ctx.id.clone(),
                        remote_id: job.file.id.clone(),
                        file_version: job.file.version.clone(),
                        risk: report.risk,
                        score: u32::from(report.score),
                        report_json: report.to_json(&job.file.name).to_string(),
                    };
                    let result = file_result(&job.file, report, &analysed_at);
                    let dedup = format!(
                        "{}@{}#{}",
                        job.file.id, job.file.version, report.policy_version
                    );
                    let payload = serde_json::to_vec(&StageItem::File {
                        source: ctx.id.clone(),
                        result: Box::new(result),
                    })
                    .unwrap_or_default();
                    let mut outbox = Vec::new();
                    if run.writeback_needed {
                        outbox.push(Outbound {
                            queue: writeback_queue.clone(),
                            item: NewItem {
                                dedup_key: dedup.clone(),
                                payload: payload.clone(),
                            },
                        });
                    }
                    for route in &run.routes.files {
                        if report.risk >= route.min_risk {
                            outbox.push(Outbound {
                                queue: route.queue.clone(),
                                item: NewItem {
                                    dedup_key: format!("{}:{dedup}", ctx.id),
                                    payload: payload.clone(),
                                },
                            });
                        }
                    }
                    Record::Done {
                        lease: job.lease.clone(),
                        file: base,
                        result: Some(new),
                        outbox,
                    }
                }
                Err(error) if retryable => {
                    // Never sooner than the platform's Retry-After.
                    let wait = self
                        .backoff(job.lease.attempt)
                        .max(retry_after.unwrap_or_default());
                    Record::Retry {
                        lease: job.lease.clone(),
                        file: base,
                        retry_at: now + wait,
                        error: error.clone(),
                    }
                }
                Err(error) => Record::Park {
                    lease: job.lease.clone(),
                    file: base,
                    error: error.clone(),
                },
            };
            records.push(record);
            pending.push((job, outcome));
        }
        let (recorded, writebacks) = if run.writeback_needed {
            let claim = ClaimRequest {
                queue: writeback_queue,
                owner: self.owner.clone(),
                max: self.options.group_size.max(1),
                lease: self.options.lease,
            };
            self.blocking(move |s| s.record_group_and_claim(&records, &claim))
                .await?
        } else {
            let recorded = self.blocking(move |s| s.record_group(&records)).await?;
            (recorded, Vec::new())
        };
        for ((job, outcome), done) in pending.into_iter().zip(recorded) {
            let retried = job.lease.attempt > 1;
            match (done, outcome) {
                // Another worker took the item over after our lease expired: it records the
                // result; this copy is dropped.
                (Recorded::LeaseLost, _) => {}
                (Recorded::Done(result_id), Ok((report, fetched))) => {
                    self.emit(Progress::File {
                        integration: ctx.id.clone(),
                        remote_id: job.file.id.clone(),
                        risk: Some(report.risk),
                        error: None,
                    });
                    run.finish(FileOutcome {
                        file: job.file,
                        report: Some(report),
                        result_id,
                        written_back: false,
                        write_back_skipped: None,
                        error: None,
                        bytes_fetched: fetched,
                        retried,
                    });
                }
                (Recorded::Nacked(Nacked::RetryAt(_)), _) => {
                    run.report.retries += 1;
                    self.emit(Progress::Retry {
                        integration: ctx.id.clone(),
                    });
                }
                (_, outcome) => {
                    let error = match outcome {
                        Err(e) => e,
                        Ok(_) => "not recorded".to_string(),
                    };
                    run.report.parked += 1;
                    self.emit(Progress::File {
                        integration: ctx.id.clone(),
                        remote_id: job.file.id.clone(),
                        risk: None,
                        error: Some(error.clone()),
                    });
                    run.finish(FileOutcome {
                        file: job.file,
                        report: None,
                        result_id: None,
                        written_back: false,
                        write_back_skipped: None,
                        error: Some(error),
                        bytes_fetched: 0,
                        retried,
                    });
                }
            }
        }
        Ok(writebacks)
    }

    /// Fetches what the analysis needs and analyses it; with `pixels`, the whole file, and
    /// the pixel stage runs on it too.
    async fn analyse(
        &self,
        content: Content,
        size_hint: Option<u64>,
        pixels: bool,
    ) -> Result<(Report, u64), FileFailure> {
        if pixels {
            let size = match &content {
                Content::Local { len, .. } => Some(*len),
                Content::Remote(_) => size_hint,
            };
            let cap = self
                .options
                .max_file_bytes
                .min(proofpix_pixels::MAX_FILE_BYTES);
            if size.is_none_or(|n| n <= cap) {
                return self.analyse_with_pixels(content, cap).await;
            }
            let (mut report, fetched) = Box::pin(self.analyse(content, size_hint, false)).await?;
            report.add_pixel_findings(
                Vec::new(),
                proofpix_analysis::PixelRun::skipped(format!(
                    "the file is over the {} MiB the pixel stage reads",
                    cap >> 20
                )),
                self.analyzer.policy(),
            );
            return Ok((report, fetched));
        }
        match content {
            Content::Local { file, len, .. } => {
                let analyzer = self.analyzer.clone();
                tokio::task::spawn_blocking(move || {
                    let src = FileSource::new(file)
                        .map_err(|e| (format!("cannot read the file: {e}"), true))?;
                    let report = analyzer.analyze(&src);
                    let read = report.bytes_read;
                    let _ = len;
                    Ok::<_, (String, bool)>((report, read))
                })
                .await
                .map_err(|e| (format!("analysis task failed: {e}"), false))?
                .map_err(FileFailure::from)
            }
            Content::Remote(remote) => self.analyse_remote(remote, size_hint).await,
        }
    }

    async fn analyse_remote(
        &self,
        remote: RemoteContent,
        size_hint: Option<u64>,
    ) -> Result<(Report, u64), FileFailure> {
        let o = &self.options;
        let fetch_err = |e: proofpix_runtime::FetchError| FileFailure {
            retryable: e.is_retryable(),
            retry_after: e.retry_after(),
            message: format!("download: {e}"),
        };
        if !remote.supports_range {
            let body = self.download(&remote).await.map_err(fetch_err)?;
            let n = body.len();
            return Ok((self.analyse_body(body).await?, n));
        }
        let (head, total) = remote
            .read_range(0, o.head_bytes, o.max_file_bytes)
            .await
            .map_err(fetch_err)?;
        let mut fetched = head.len() as u64;
        let Some(total) = total.or(size_hint) else {
            // No size known: the head is all we can place; analyse it as the
            // whole file only if it is the whole file.
            let body = if (head.len() as u64) < o.head_bytes {
                Body::Memory(head)
            } else {
                self.download(&remote).await.map_err(fetch_err)?
            };
            let n = body.len();
            return Ok((self.analyse_body(body).await?, n));
        };
        let mut sparse = SparseSource::new(total);
        sparse.insert(0, head);
        if total > o.head_bytes {
            let start = total.saturating_sub(o.tail_bytes).max(o.head_bytes);
            let (tail, _) = remote
                .read_range(start, total - start, o.max_file_bytes)
                .await
                .map_err(fetch_err)?;
            fetched += tail.len() as u64;
            sparse.insert(start, tail);
        }
        for _ in 0..o.range_rounds {
            let (report, back) = self.analyse_sparse(sparse).await?;
            sparse = back;
            let missing = sparse.missing(&report.needs);
            if missing.is_empty() {
                return Ok((report, fetched));
            }
            for (offset, len) in missing {
                let (bytes, _) = remote
                    .read_range(offset, len, o.max_file_bytes)
                    .await
                    .map_err(fetch_err)?;
                fetched += bytes.len() as u64;
                sparse.insert(offset, bytes);
            }
        }
        // Still missing ranges after the rounds: fetch the whole file.
        let body = self.download(&remote).await.map_err(fetch_err)?;
        fetched += body.len();
        Ok((self.analyse_body(body).await?, fetched))
    }

    /// Reads the whole file and analyses its metadata and its pixels.
    async fn analyse_with_pixels(
        &self,
        content: Content,
        max: u64,
    ) -> Result<(Report, u64), FileFailure> {
        // The permit first: it bounds the whole files held in memory, not only the decodes.
        let _permit = self
            .pixel_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| FileFailure::from((format!("pixel stage closed: {e}"), false)))?;
        let bytes = match content {
            Content::Local { file, .. } => tokio::task::spawn_blocking(move || {
                use std::io::Read as _;
                let mut bytes = Vec::new();
                (&file).take(max).read_to_end(&mut bytes).map(|_| bytes)
            })
            .await
            .map_err(|e| FileFailure::from((format!("read task failed: {e}"), false)))?
            .map_err(|e| FileFailure::from((format!("cannot read the file: {e}"), true)))?,
            Content::Remote(remote) => match remote.read_all(max).await {
                Ok(bytes) => bytes,
                // Larger than it said (or than nothing said): the metadata still counts.
                Err(proofpix_runtime::FetchError::TooLarge(_)) => {
                    drop(_permit);
                    let (mut report, fetched) = self.analyse_remote(remote, None).await?;
                    report.add_pixel_findings(
                        Vec::new(),
                        proofpix_analysis::PixelRun::skipped(format!(
                            "the file is over the {} MiB the pixel stage reads",
                            max >> 20
                        )),
                        self.analyzer.policy(),
                    );
                    return Ok((report, fetched));
                }
                Err(e) => {
                    return Err(FileFailure {
                        retryable: e.is_retryable(),
                        retry_after: e.retry_after(),
                        message: format!("download: {e}"),
                    });
                }
            },
        };
        let analyzer = self.analyzer.clone();
        let stage = self.pixel_stage();
        tokio::task::spawn_blocking(move || {
            let mut report = analyzer.analyze(&bytes);
            stage.add_to_report(&bytes, &mut report, analyzer.policy());
            (report, bytes.len() as u64)
        })
        .await
        .map_err(|e| FileFailure::from((format!("analysis task failed: {e}"), false)))
    }

    /// Downloads a whole file, spooling it to disk past the memory limit.
    async fn download(&self, remote: &RemoteContent) -> Result<Body, proofpix_runtime::FetchError> {
        let o = &self.options;
        let dir = o.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
        remote
            .download(o.max_file_bytes, o.memory_body_bytes, &dir)
            .await
    }

    /// Analyses a whole downloaded body, from memory or from its spool file
    /// (read by the ranges the analysis asks for).
    async fn analyse_body(&self, body: Body) -> Result<Report, (String, bool)> {
        match body {
            Body::Memory(bytes) => self.analyse_bytes(bytes).await,
            Body::Spooled { file, .. } => {
                let analyzer = self.analyzer.clone();
                tokio::task::spawn_blocking(move || {
                    let src = FileSource::new(file)
                        .map_err(|e| (format!("cannot read the spooled download: {e}"), true))?;
                    Ok(analyzer.analyze(&src))
                })
                .await
                .map_err(|e| (format!("analysis task failed: {e}"), false))?
            }
        }
    }

    async fn analyse_sparse(
        &self,
        sparse: SparseSource,
    ) -> Result<(Report, SparseSource), (String, bool)> {
        let analyzer = self.analyzer.clone();
        tokio::task::spawn_blocking(move || {
            let report = analyzer.analyze(&sparse);
            (report, sparse)
        })
        .await
        .map_err(|e| (format!("analysis task failed: {e}"), false))
    }

    async fn analyse_bytes(&self, bytes: Vec<u8>) -> Result<Report, (String, bool)> {
        let analyzer = self.analyzer.clone();
        tokio::task::spawn_blocking(move || analyzer.analyze(&bytes))
            .await
            .map_err(|e| (format!("analysis task failed: {e}"), false))
    }

    /// One write-back call, retried in place on transient failures (up to the discovery
    /// attempts, honouring Retry-After). Returns the call's outcome and the retries it took.
    async fn write_chunk<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        results: &[FileResult],
    ) -> Result<(Result<Vec<WriteOutcome>, CallError>, u64), PipelineError> {
        let mut attempt = 0u32;
        let mut retries = 0u64;
        loop {
            attempt += 1;
            if session.is_poisoned() {
                *session = plugin.session(ctx).await?;
            }
            match session.write_back(results).await {
                Ok(o) => return Ok((Ok(o), retries)),
                Err(e) if e.is_retryable() && attempt < self.options.discover_attempts => {
                    retries += 1;
                    tokio::time::sleep(e.retry_after().unwrap_or_else(|| self.backoff(attempt)))
                        .await;
                }
                Err(e) => return Ok((Err(e), retries)),
            }
        }
    }

    /// The write-back stage: drains the integration's write-back queue a group at a time,
    /// at most once per key. The plugin's batches go out in waves of up to
    /// [`PipelineOptions::writeback_concurrency`] calls; a wave's intents are recorded in one
    /// transaction before its calls and its completions in one after them.
    async fn drain_writebacks<C: Connector>(
        &self,
        session: &mut C::Session,
        plugin: &C,
        ctx: &IntegrationContext,
        run: &mut Run,
        claimed: Vec<Lease>,
    ) -> Result<(), PipelineError> {
        if !run.writeback_needed {
            return Ok(());
        }
        let queue = stage_queue(&ctx.id, Stage::WriteBack);
        // The first group may have been claimed with the record that queued it.
        let mut claimed = Some(claimed).filter(|c| !c.is_empty());
        let group = self.options.group_size.max(1);
        let info = plugin.info();
        let batch_size = info.write_back_batch_size.max(1) as usize;
        let plugin_version = info.version;
        loop {
            let (items, keys) = {
                let (queue, owner, lease) = (queue.clone(), self.owner.clone(), self.options.lease);
                let (id, plugin_version) = (ctx.id.clone(), plugin_version.clone());
                let claimed = claimed.take();
                self.blocking(move |s| {
                    let leases = match claimed {
                        Some(leases) => leases,
                        None => s.claim(&queue, &owner, group, lease)?,
                    };
                    let mut items = Vec::with_capacity(leases.len());
                    for lease in leases {
                        match serde_json::from_slice::<StageItem>(&lease.payload) {
                            Ok(StageItem::File { result, .. }) => items.push((lease, *result)),
                            Ok(StageItem::Batch { .. } | StageItem::Problem { .. }) => {
                                s.park(&lease, "not a write-back item")?;
                            }
                            Err(e) => s.park(&lease, &format!("unreadable queue item: {e}"))?,
                        }
                    }
                    let keys: Vec<WritebackKey> = items
                        .iter()
                        .map(|(_, r)| WritebackKey {
                            integration: id.clone(),
                            remote_id: r.file.id.clone(),
                            file_version: r.file.version.clone(),
                            plugin_version: plugin_version.clone(),
                            policy_version: r.policy_version.clone(),
                        })
                        .collect();
                    Ok((items, keys))
                })
                .await?
            };
            if items.is_empty() {
                return Ok(());
            }
            // Waves of the calls that may be in flight together: the intents of a wave are
            // recorded in one transaction just before its calls and the completions in one
            // just after, so a crash leaves at most one wave's write-backs uncertain.
            let wave_size = batch_size * self.options.writeback_concurrency.max(1);
            let mut items = items.into_iter().zip(keys).peekable();
            while items.peek().is_some() {
                let wave: Vec<((Lease, FileResult), WritebackKey)> =
                    items.by_ref().take(wave_size).collect();
                let wave_keys: Vec<WritebackKey> = wave.iter().map(|(_, k)| k.clone()).collect();
                let begins = self
                    .blocking(move |s| s.begin_writebacks(&wave_keys))
                    .await?;
                let now = self.store.now();
                let mut ends: Vec<WritebackDone> = Vec::with_capacity(wave.len());
                let mut send = Vec::new();
                for (((lease, result), key), begin) in wave.into_iter().zip(begins) {
                    let end = match begin {
                        Begin::Proceed => {
                            send.push((lease, result, key));
                            continue;
                        }
                        Begin::AlreadyDone { .. } => WritebackEnd::AlreadyDone,
                        Begin::InFlight { .. } => WritebackEnd::Later {
                            at: now + self.options.retry_base,
                            reason: "another task of this run is writing it back".into(),
                        },
                        Begin::Uncertain { since } => {
                            run.report.uncertain += 1;
                            WritebackEnd::Parked {
                                reason: format!(
                                    "a write-back begun at {since} was interrupted by a crash and may or may not have landed; resolve it, then requeue"
                                ),
                            }
                        }
                    };
                    ends.push(WritebackDone { lease, key, end });
                }
                // The plugin's batches, several at once (each on its own session) when the
                // platform answers slowly: a write-back is a round trip per batch, and one at a time
                // would make the platform's latency the pipeline's speed.
                let chunks: Vec<&[(Lease, FileResult, WritebackKey)]> =
                    send.chunks(batch_size).collect();
                let parallel = self
                    .options
                    .writeback_concurrency
                    .clamp(1, chunks.len().max(1));
                let calls: Vec<(usize, Result<Vec<WriteOutcome>, CallError>, u64)> = if parallel
                    <= 1
                {
                    let mut out = Vec::with_capacity(chunks.len());
                    for (i, chunk) in chunks.iter().enumerate() {
                        let results: Vec<_> = chunk.iter().map(|(_, r, _)| r.clone()).collect();
                        let (r, retries) = self.write_chunk(session, plugin, ctx, &results).await?;
                        out.push((i, r, retries));
                    }
                    out
                } else {
                    // A plain loop over FuturesUnordered rather than a stream combinator with a
                    // closure: the closure's borrows would make the run's future not `Send`.
                    let mut idle: Vec<C::Session> = Vec::new();
                    let mut in_flight = futures_util::stream::FuturesUnordered::new();
                    let mut next = 0usize;
                    let mut out = Vec::with_capacity(chunks.len());
                    loop {
                        while in_flight.len() < parallel && next < chunks.len() {
                            let i = next;
                            next += 1;
                            let results: Vec<FileResult> =
                                chunks[i].iter().map(|(_, r, _)| r.clone()).collect();
                            let taken = idle.pop();
                            in_flight.push(async move {
                                let mut s = match taken {
                                    Some(s) => s,
                                    None => plugin.session(ctx).await?,
                                };
                                let (r, retries) =
                                    self.write_chunk(&mut s, plugin, ctx, &results).await?;
                                Ok::<_, PipelineError>((i, r, retries, s))
                            });
                        }
                        match in_flight.next().await {
                            Some(done) => {
                                let (i, r, retries, s) = done?;
                                idle.push(s);
                                out.push((i, r, retries));
                            }
                            None => break,
                        }
                    }
                    out.sort_by_key(|(i, _, _)| *i);
                    out
                };
                for (i, outcome, retries) in calls {
                    run.report.retries += retries;
                    let chunk = chunks[i];
                    let now = self.store.now();
                    match outcome {
                        Ok(outcomes) => {
                            let by_id: BTreeMap<&str, &Result<WriteResult, PluginError>> = outcomes
                                .iter()
                                .map(|o| (o.file_id.as_str(), &o.outcome))
                                .collect();
                            for (lease, _, key) in chunk {
                                let end = match by_id.get(key.remote_id.as_str()) {
                                    Some(Ok(WriteResult::Written)) => WritebackEnd::Written,
                                    Some(Ok(WriteResult::Skipped(reason))) => {
                                        WritebackEnd::Skipped {
                                            reason: proofpix_runtime::bounded_plugin_text(
                                                reason,
                                                MAX_SKIP_REASON_CHARS,
                                            ),
                                        }
                                    }
                                    Some(Err(e)) => {
                                        let error = proofpix_runtime::describe_plugin_error(e);
                                        match e {
                                            PluginError::Transient(_)
                                            | PluginError::RateLimited(_) => {
                                                let wait =
                                                    self.backoff(lease.attempt).max(match e {
                                                        PluginError::RateLimited(r) => r
                                                            .retry_after_ms
                                                            .map(Duration::from_millis)
                                                            .unwrap_or_default(),
                                                        _ => Duration::ZERO,
                                                    });
                                                WritebackEnd::Retry {
                                                    at: now + wait,
                                                    error,
                                                }
                                            }
                                            _ => WritebackEnd::Failed { error },
                                        }
                                    }
                                    None => WritebackEnd::Retry {
                                        at: now + self.backoff(lease.attempt),
                                        error: "the plugin reported no outcome for this file"
                                            .into(),
                                    },
                                };
                                ends.push(WritebackDone {
                                    lease: lease.clone(),
                                    key: key.clone(),
                                    end,
                                });
                            }
                        }
                        Err(e) => {
                            // The whole call failed: nothing was written (the plugin reports
                            // per-file outcomes when some succeed).
                            let error = e.to_string();
                            for (lease, _, key) in chunk {
                                let end = if e.is_retryable() {
                                    let wait = self
                                        .backoff(lease.attempt)
                                        .max(e.retry_after().unwrap_or_default());
                                    WritebackEnd::Retry {
                                        at: now + wait,
                                        error: error.clone(),
                                    }
                                } else {
                                    WritebackEnd::Failed {
                                        error: error.clone(),
                                    }
                                };
                                ends.push(WritebackDone {
                                    lease: lease.clone(),
                                    key: key.clone(),
                                    end,
                                });
                            }
                        }
                    }
                }
                let group: Vec<WritebackDone> = ends.clone();
                let held = self.blocking(move |s| s.finish_writebacks(&group)).await?;
                for (w, held) in ends.into_iter().zip(held) {
                    if held {
                        run.written(ctx, self, &w);
                    }
                }
            }
        }
    }

    /// Write-backs a crashed run left uncertain: retried for plugins whose
    /// write-back overwrites (idempotent), otherwise left for an operator.
    async fn resolve_uncertain<C: Connector>(
        &self,
        plugin: &C,
        id: &str,
        run: &mut Run,
    ) -> Result<(), PipelineError> {
        let pending = {
            let id = id.to_string();
            self.blocking(move |s| s.uncertain(&id)).await?
        };
        if pending.is_empty() {
            return Ok(());
        }
        let idempotent =
            self.options.retry_uncertain_idempotent && plugin.info().write_back_idempotent;
        for (key, since) in pending {
            if idempotent {
                // Retry: the file is re-analysed and written again; the write
                // overwrites what may have landed.
                let k = key.clone();
                self.blocking(move |s| s.resolve_uncertain(&k, Resolution::Retry))
                    .await?;
                let k = key.clone();
                self.blocking(move |s| {
                    s.complete_writeback(
                        &k,
                        &Completion::Failed {
                            error: "retried after an interrupted run".into(),
                        },
                    )
                })
                .await?;
            } else {
                tracing::warn!(integration = %id, since = %since, "a write-back was interrupted by a crash and is left for an operator to resolve");
                run.report.uncertain += 1;
            }
        }
        Ok(())
    }
}

struct Run {
    report: SyncReport,
    writeback_needed: bool,
    routes: Routes,
    /// Keep outcomes in `report.files`.
    collect: bool,
    /// Index in `report.files` by remote id, for marking write-backs.
    collected: HashMap<String, usize>,
    /// The results the batch record lists.
    riskiest: Riskiest,
    /// The fetch queue's first group, claimed with the batch's opening (a queue-only run),
    /// until the first drain takes it.
    claimed: Option<Vec<Lease>>,
}

/// The [`MAX_BATCH_RESULTS`] riskiest results of a run: a min-heap on (risk, score), so the
/// least risky listed result is the one a riskier newcomer replaces. Ties keep the earlier
/// result.
#[derive(Default)]
struct Riskiest {
    heap: BinaryHeap<Reverse<(RiskLevel, u8, Reverse<u64>)>>,
}

impl Riskiest {
    fn offer(&mut self, risk: RiskLevel, score: u8, result_id: u64) {
        let key = Reverse((risk, score, Reverse(result_id)));
        if self.heap.len() < MAX_BATCH_RESULTS {
            self.heap.push(key);
        } else if self.heap.peek().is_some_and(|least| key < *least) {
            // `key < least` in the reversed order: the newcomer ranks above the least.
            self.heap.pop();
            self.heap.push(key);
        }
    }

    /// The ids, riskiest first.
    fn into_ids(self) -> Vec<u64> {
        // Ascending in the reversed order is descending in risk.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, _, Reverse(id)))| id)
            .collect()
    }
}

impl Run {
    /// Counts a file's outcome into the batch (and keeps it when collecting).
    fn finish(&mut self, f: FileOutcome) {
        let b = &mut self.report.batch;
        b.total += 1;
        match (&f.error, &f.report) {
            (None, Some(r)) => {
                b.ok += 1;
                *b.by_risk.entry(r.risk.as_str().to_string()).or_default() += 1;
            }
            (Some(e), _) => {
                b.errors += 1;
                if b.failures.len() < MAX_BATCH_FAILURES {
                    b.failures.push(proofpix_store::BatchFailure {
                        remote_id: f.file.id.clone(),
                        error: e.clone(),
                    });
                }
            }
            (None, None) => {}
        }
        if f.retried {
            b.retried += 1;
        }
        if let Some(rid) = f.result_id {
            let (risk, score) = f
                .report
                .as_ref()
                .map_or((RiskLevel::None, 0), |r| (r.risk, r.score));
            self.riskiest.offer(risk, score, rid);
        }
        if self.collect {
            self.collected
                .insert(f.file.id.clone(), self.report.files.len());
            self.report.files.push(f);
        }
    }

    /// Counts a finished write-back: a written file is reported, a failed one counts as an
    /// error of the batch (its analysis is still counted in the risk figures).
    fn written(&mut self, ctx: &IntegrationContext, pipeline: &Pipeline, w: &WritebackDone) {
        let outcome = self
            .collected
            .get(&w.key.remote_id)
            .and_then(|i| self.report.files.get_mut(*i));
        match &w.end {
            WritebackEnd::Written | WritebackEnd::AlreadyDone => {
                if let Some(o) = outcome {
                    o.written_back = true;
                }
                if matches!(w.end, WritebackEnd::Written) {
                    pipeline.emit(Progress::WrittenBack {
                        integration: ctx.id.clone(),
                        remote_id: w.key.remote_id.clone(),
                    });
                }
            }
            WritebackEnd::Skipped { reason } => {
                if let Some(o) = outcome {
                    o.write_back_skipped = Some(reason.clone());
                }
                self.report.write_backs_skipped += 1;
                pipeline.emit(Progress::WriteBackSkipped {
                    integration: ctx.id.clone(),
                    remote_id: w.key.remote_id.clone(),
                });
            }
            WritebackEnd::Retry { error, .. }
            | WritebackEnd::Failed { error }
            | WritebackEnd::Parked { reason: error } => {
                let error = format!("write-back failed: {error}");
                if let Some(o) = outcome {
                    o.error = Some(error.clone());
                }
                let b = &mut self.report.batch;
                b.ok = b.ok.saturating_sub(1);
                b.errors += 1;
                if b.failures.len() < MAX_BATCH_FAILURES {
                    b.failures.push(proofpix_store::BatchFailure {
                        remote_id: w.key.remote_id.clone(),
                        error,
                    });
                }
            }
            WritebackEnd::Later { .. } => {}
        }
    }
}

fn empty_report(batch: BatchRecord) -> SyncReport {
    SyncReport {
        batch,
        discovered: 0,
        unchanged: 0,
        files: Vec::new(),
        parked: 0,
        removed: 0,
        uncertain: 0,
        pages: 0,
        retries: 0,
        duration: Duration::ZERO,
        still_queued: 0,
        write_backs_skipped: 0,
    }
}

/// Marks the known files among `removed` as [`FileStatus::Removed`]; returns how many changed.
fn mark_removed(
    s: &dyn StageStore,
    integration: &str,
    removed: &[String],
) -> Result<u64, StoreError> {
    let mut n = 0;
    for remote_id in removed {
        let Some(mut f) = s.file(integration, remote_id)? else {
            continue;
        };
        if f.status == FileStatus::Removed {
            continue;
        }
        f.status = FileStatus::Removed;
        f.updated_at = s.now();
        s.put_file(&f)?;
        n += 1;
    }
    Ok(n)
}

/// How much of a plugin's reason for skipping a write-back is kept.
const MAX_SKIP_REASON_CHARS: usize = 300;

/// Now as RFC 3339 UTC, second precision.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{MAX_BATCH_RESULTS, Riskiest};
    use proofpix_analysis::RiskLevel;

    #[test]
    fn a_batch_lists_its_riskiest_results_first_and_no_more_than_the_bound() {
        let mut r = Riskiest::default();
        let n = MAX_BATCH_RESULTS as u64 * 3;
        // Mostly clean files; every 1,000th is high (score rising with the id), and the very
        // last is critical: the newest results must still displace the least risky listed.
        for id in 0..n {
            let (risk, score) = match id {
                _ if id == n - 1 => (RiskLevel::Critical, 90),
                _ if id % 1_000 == 0 => (RiskLevel::High, u8::try_from(id / 1_000).unwrap()),
                _ => (RiskLevel::None, 0),
            };
            r.offer(risk, score, id);
        }
        let ids = r.into_ids();
        assert_eq!(ids.len(), MAX_BATCH_RESULTS);
        assert_eq!(ids[0], n - 1, "the critical file leads");
        let highs: Vec<u64> = (0..n).filter(|id| id % 1_000 == 0).rev().collect();
        assert_eq!(
            &ids[1..=highs.len()],
            highs.as_slice(),
            "then the high ones, highest score first"
        );
        // The clean files that fill the rest are the earliest ones (ties keep the earlier).
        let clean = &ids[1 + highs.len()..];
        let earliest: Vec<u64> = (0..n)
            .filter(|id| id % 1_000 != 0)
            .take(clean.len())
            .collect();
        assert_eq!(clean, earliest.as_slice());
    }

    #[test]
    fn a_small_batch_lists_every_result() {
        let mut r = Riskiest::default();
        for id in [7, 3, 9] {
            r.offer(RiskLevel::Low, 10, id);
        }
        r.offer(RiskLevel::Medium, 5, 1);
        assert_eq!(r.into_ids(), vec![1, 3, 7, 9]);
    }

    /// A file item queued by an older build (the contract's generated type, risk levels as
    /// Rust names) reads as the same result; what this build queues reads back unchanged; a
    /// word that names no level is still refused.
    #[test]
    fn a_file_item_queued_by_an_older_build_still_reads() {
        // What older builds queued: the contract's generated type, through its serde derive.
        use proofpix_runtime::bindings::latest::proofpix::plugin::types as wire;
        let queued = wire::FileResult {
            file: wire::RemoteFile {
                id: "F1".into(),
                name: "a.jpg".into(),
                mime_type: None,
                size: Some(9),
                modified: None,
                version: "v1".into(),
                container: None,
                web_url: None,
                path: None,
                properties: vec![("k".into(), "v".into())],
            },
            format: "jpeg".into(),
            risk: wire::RiskLevel::High,
            score: 70,
            findings: vec![wire::Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: wire::RiskLevel::Critical,
                source: "exif:GPS/0x0002".into(),
                value: "52,4".into(),
            }],
            summary: "GPS".into(),
            error: None,
            analysed_at: "2026-01-01T00:00:00Z".into(),
            policy_version: "p".into(),
        };
        let old = serde_json::to_vec(
            &serde_json::json!({"kind": "file", "source": "drive", "result": queued}),
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&old).contains(r#""risk":"High""#));
        let item: super::StageItem = serde_json::from_slice(&old).unwrap();
        let super::StageItem::File { source, result } = &item else {
            panic!("{item:?}");
        };
        assert_eq!(source, "drive");
        assert_eq!(result.risk, RiskLevel::High);
        assert_eq!(result.findings[0].severity, RiskLevel::Critical);
        assert_eq!(result.file.properties, vec![("k".into(), "v".into())]);

        let now = serde_json::to_vec(&item).unwrap();
        assert!(String::from_utf8_lossy(&now).contains(r#""risk":"high""#));
        let again: super::StageItem = serde_json::from_slice(&now).unwrap();
        let super::StageItem::File { result: back, .. } = again else {
            panic!("not a file item");
        };
        assert_eq!(back, *result);

        let wrong = String::from_utf8_lossy(&old).replace(r#""risk":"High""#, r#""risk":"Severe""#);
        assert!(serde_json::from_str::<super::StageItem>(&wrong).is_err());
    }
}
