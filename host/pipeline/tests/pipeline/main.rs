//! The pipeline's stages, tested on their own: a connector written in Rust
//! ([`fake::FakeConnector`]) behind the pipeline's `Connector` trait, a real redb store in
//! memory behind `StageStore`, the real analysis core and the host's real content fetcher.
//! No wasm build, no plugin, no daemon; each test says what the platform did and asserts
//! what the store and the platform hold afterwards.

mod fake;

use std::sync::Arc;
use std::time::Duration;

use fake::{FakeConnector, Fault, rate_limited};
use proofpix_analysis::{Analyzer, Options, Policy, RiskLevel};
use proofpix_model::PluginError;
use proofpix_pipeline::{FileRoute, Pipeline, PipelineOptions, Routes, StageItem, SyncMode};
use proofpix_runtime::IntegrationContext;
use proofpix_store::{FileStatus, Stage, Store, StoreOptions, WorkQueue, stage_queue};
use proofpix_vault::MasterKey;

const ID: &str = "photos";

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    pipeline: Pipeline,
    connector: FakeConnector,
    ctx: IntegrationContext,
}

/// `n` generated phone photos (GPS, owner, serial) in a folder the fake lists in pages of
/// 50, a store in memory, and a pipeline with small groups so a run spans several.
fn env(n: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    for (name, bytes) in proofpix_fixtures::photo_set(n) {
        let path = photos.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let store = Arc::new(
        Store::open_backend(
            redb::backends::InMemoryBackend::new(),
            &MasterKey::generate(),
            StoreOptions::default(),
        )
        .unwrap(),
    );
    let options = PipelineOptions {
        collect_outcomes: true,
        group_size: 32,
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        wait_for_retries: Some(Duration::from_secs(20)),
        ..PipelineOptions::default()
    };
    let analyzer = Arc::new(Analyzer::new(Policy::default(), Options::default()));
    let pipeline = Pipeline::new(store.clone(), analyzer, options);
    Env {
        connector: FakeConnector::over(&photos),
        _dir: dir,
        store,
        pipeline,
        ctx: IntegrationContext::new(ID),
    }
}

impl Env {
    async fn sync(&self, mode: SyncMode) -> proofpix_pipeline::SyncReport {
        self.pipeline
            .sync(&self.connector, &self.ctx, mode)
            .await
            .expect("the run completes")
    }

    fn status_of(&self, remote_id: &str) -> (FileStatus, Option<String>) {
        let f = self
            .store
            .file(ID, remote_id)
            .unwrap()
            .expect("a file record");
        (f.status, f.last_error)
    }

    fn ids(&self) -> Vec<String> {
        self.connector
            .platform
            .lock()
            .unwrap()
            .files
            .keys()
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn every_file_is_analysed_recorded_and_written_back_once_across_pages_and_groups() {
    let e = env(120);
    let report = e.sync(SyncMode::Incremental).await;

    assert_eq!(report.pages, 3, "120 files in pages of 50");
    assert_eq!(report.discovered, 120);
    assert_eq!(
        (report.batch.total, report.batch.ok, report.batch.errors),
        (120, 120, 0)
    );
    assert_eq!(report.files.len(), 120);
    for f in &report.files {
        let r = f.report.as_ref().expect("analysed");
        // Every generated photo carries a precise GPS position.
        assert!(r.risk >= RiskLevel::High, "{}: {:?}", f.file.id, r.risk);
        assert!(f.result_id.is_some());
    }
    let counts = e.connector.write_counts();
    assert_eq!(counts.len(), 120, "every file written back");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let p = e.connector.platform.lock().unwrap();
    assert!(
        p.write_calls.iter().all(|c| !c.is_empty() && c.len() <= 25),
        "write-back calls respect the declared batch size: {:?}",
        p.write_calls.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // The result written back is the analysis of that file.
    let written = p
        .written
        .iter()
        .find(|r| r.file.id == "id-d00/photo-00000.jpg")
        .unwrap();
    assert!(written.summary.contains("gps"), "{}", written.summary);
    drop(p);
    for id in e.ids() {
        assert_eq!(e.status_of(&id).0, FileStatus::Written, "{id}");
    }
    assert_eq!(e.store.cursor(ID).unwrap().as_deref(), Some("end"));
    assert_eq!(e.store.depth(ID).unwrap().pending, 0);
    assert_eq!(
        e.store
            .depth(&stage_queue(ID, Stage::WriteBack))
            .unwrap()
            .pending,
        0
    );
}

#[tokio::test]
async fn a_second_run_neither_analyses_nor_writes_back_again() {
    let e = env(60);
    e.sync(SyncMode::Incremental).await;
    let calls = e.connector.platform.lock().unwrap().write_calls.len();

    let incremental = e.sync(SyncMode::Incremental).await;
    assert_eq!((incremental.discovered, incremental.batch.total), (0, 0));

    let full = e.sync(SyncMode::FullListing).await;
    assert_eq!(full.discovered, 60);
    assert_eq!(full.unchanged, 60);
    assert_eq!(full.batch.total, 0);
    assert_eq!(
        e.connector.platform.lock().unwrap().write_calls.len(),
        calls
    );
    assert!(e.connector.write_counts().values().all(|&n| n == 1));
}

#[tokio::test]
async fn reanalysis_analyses_every_file_again_but_writes_back_at_most_once_per_key() {
    let e = env(40);
    e.sync(SyncMode::Incremental).await;
    let report = e.sync(SyncMode::Reanalyse).await;
    assert_eq!(report.batch.total, 40, "every file analysed again");
    assert!(
        e.connector.write_counts().values().all(|&n| n == 1),
        "same file version, plugin version and policy: not written twice"
    );
}

#[tokio::test]
async fn a_new_version_of_one_file_is_analysed_and_written_back_again() {
    let e = env(30);
    e.sync(SyncMode::Incremental).await;
    let changed = "id-d03/photo-00003.jpg";
    e.connector
        .platform
        .lock()
        .unwrap()
        .files
        .get_mut(changed)
        .unwrap()
        .1 = "2".into();

    let report = e.sync(SyncMode::FullListing).await;
    assert_eq!((report.batch.total, report.unchanged), (1, 29));
    let counts = e.connector.write_counts();
    assert_eq!(counts[changed], 2);
    assert_eq!(counts.values().filter(|&&n| n == 1).count(), 29);
}

#[tokio::test]
async fn a_trap_costs_the_calls_it_crashed_and_a_fresh_session_does_the_rest() {
    let e = env(40);
    let crashed = "id-d05/photo-00005.jpg";
    e.connector
        .fail_next(&format!("download:{crashed}"), Fault::Trap);
    e.connector.fail_next("write", Fault::Trap);
    let report = e.sync(SyncMode::Incremental).await;

    assert!(
        e.connector.platform.lock().unwrap().sessions >= 3,
        "a fresh session after each trap"
    );
    // A trap is not retried in the run: the file whose download crashed and the files of
    // the write-back call that crashed are reported with the crash; nothing else is lost.
    let failures = &report.batch.failures;
    assert!(
        failures
            .iter()
            .any(|f| f.remote_id == crashed && f.error.contains("crashed")),
        "{failures:?}"
    );
    let failed_writes: Vec<_> = failures
        .iter()
        .filter(|f| f.error.starts_with("write-back failed") && f.error.contains("crashed"))
        .collect();
    assert_eq!(
        failed_writes.len(),
        25,
        "one write-back call of 25: {failures:?}"
    );
    assert_eq!(report.batch.ok + report.batch.errors, 40);
    let counts = e.connector.write_counts();
    assert_eq!(counts.len(), 40 - 1 - 25);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    // The crashed call may have written part of its batch, and this connector's write-back
    // is not idempotent: its items are parked with the crash for an operator, never
    // repeated on their own, and the file whose download crashed is parked too.
    let parked = e
        .store
        .parked(&stage_queue(ID, Stage::WriteBack), 100)
        .unwrap();
    assert_eq!(parked.len(), 25);
    assert!(
        parked
            .iter()
            .all(|p| p.last_error.as_deref().unwrap_or("").contains("crashed"))
    );
    assert_eq!(e.status_of(crashed).0, FileStatus::Parked);
    let parked_ids: Vec<String> = parked
        .iter()
        .map(|p| {
            serde_json::from_slice::<StageItem>(&p.payload)
                .map(|i| match i {
                    StageItem::File { result, .. } => result.file.id,
                    other => panic!("not a file item: {other:?}"),
                })
                .unwrap()
        })
        .collect();
    let again = e.sync(SyncMode::FullListing).await;
    assert_eq!(
        e.connector.write_counts().len(),
        14,
        "nothing written twice or on its own"
    );
    assert!(e.connector.write_counts().values().all(|&n| n == 1));
    // A listing leaves parked files to the operator: not analysed again, and each still
    // shows why it stopped (before, a re-analysis recorded them as fine).
    assert!(again.files.is_empty(), "{:?}", again.files.len());
    assert_eq!(again.unchanged, 40);
    for id in &parked_ids {
        let (status, error) = e.status_of(id);
        assert_eq!(status, FileStatus::Parked, "{id}");
        let error = error.unwrap_or_default();
        assert!(
            error.starts_with("write-back failed") && error.contains("crashed"),
            "{id}: {error}"
        );
    }
    // The operator requeues one: the next run writes it back, once.
    let item = parked[0].item;
    assert!(
        e.store
            .requeue(&stage_queue(ID, Stage::WriteBack), item)
            .unwrap()
    );
    e.sync(SyncMode::Incremental).await;
    assert_eq!(e.status_of(&parked_ids[0]).0, FileStatus::Written);
    assert_eq!(e.connector.write_counts().get(&parked_ids[0]), Some(&1));
}

#[tokio::test]
async fn a_file_that_cannot_be_fetched_is_parked_with_its_reason_and_costs_no_other_file() {
    let e = env(30);
    let bad = "id-d07/photo-00007.jpg";
    e.connector.fail_next(
        &format!("download:{bad}"),
        Fault::Plugin(PluginError::Fatal("the platform lost this file".into())),
    );
    let report = e.sync(SyncMode::Incremental).await;

    assert_eq!(report.parked, 1);
    let (status, error) = e.status_of(bad);
    assert_eq!(status, FileStatus::Parked);
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .contains("the platform lost this file"),
        "{error:?}"
    );
    let counts = e.connector.write_counts();
    assert_eq!(counts.len(), 29);
    assert!(!counts.contains_key(bad));
}

#[tokio::test]
async fn a_download_pointing_outside_the_mount_is_refused_by_the_host() {
    let e = env(5);
    {
        let mut p = e.connector.platform.lock().unwrap();
        p.files
            .insert("id-escape".into(), ("../../etc/passwd".into(), "1".into()));
    }
    let report = e.sync(SyncMode::Incremental).await;

    let (status, error) = e.status_of("id-escape");
    assert_eq!(status, FileStatus::Parked, "{error:?}");
    let error = error.unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    assert_eq!(report.batch.ok, 5);
    assert!(!e.connector.write_counts().contains_key("id-escape"));
}

#[tokio::test]
async fn a_rate_limited_discovery_and_write_back_are_retried_after_retry_after() {
    let e = env(30);
    e.connector.fail_next("discover", rate_limited(30));
    e.connector.fail_next("write", rate_limited(30));
    let report = e.sync(SyncMode::Incremental).await;

    assert!(report.retries >= 2, "retries: {}", report.retries);
    assert_eq!(report.batch.ok, 30);
    let counts = e.connector.write_counts();
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
async fn a_skipped_write_back_is_recorded_with_its_reason_and_not_counted_as_written() {
    let e = env(10);
    let skipped = "id-d02/photo-00002.jpg";
    e.connector.platform.lock().unwrap().skip.insert(
        skipped.into(),
        "write-back is turned off for this folder".into(),
    );
    let report = e.sync(SyncMode::Incremental).await;

    assert_eq!(report.write_backs_skipped, 1);
    assert!(!e.connector.write_counts().contains_key(skipped));
    let (status, reason) = e.status_of(skipped);
    assert_ne!(status, FileStatus::Written);
    assert!(
        reason.as_deref().unwrap_or("").contains("turned off"),
        "{status:?} {reason:?}"
    );
}

#[tokio::test]
async fn files_the_platform_removed_are_marked_removed() {
    let e = env(10);
    e.sync(SyncMode::Incremental).await;
    let gone = "id-d04/photo-00004.jpg";
    {
        let mut p = e.connector.platform.lock().unwrap();
        p.files.remove(gone);
        p.removed.push(gone.into());
        p.removed.push("id-never-seen".into());
    }
    let report = e.sync(SyncMode::FullListing).await;
    assert_eq!(report.removed, 1, "only the known file changes");
    assert_eq!(e.status_of(gone).0, FileStatus::Removed);
}

#[tokio::test]
async fn risky_files_reach_the_downstream_queues_in_the_same_commit_as_their_results() {
    let e = env(20);
    let queue = stage_queue("notifier", Stage::Notify);
    let routes = Routes {
        files: vec![FileRoute {
            queue: queue.clone(),
            min_risk: RiskLevel::High,
        }],
        ..Routes::default()
    };
    e.pipeline
        .sync_routed(&e.connector, &e.ctx, SyncMode::Incremental, &routes)
        .await
        .unwrap();

    assert_eq!(e.store.depth(&queue).unwrap().pending, 20);
    let leases = e
        .store
        .claim(&queue, "test", 100, Duration::from_secs(60))
        .unwrap();
    assert_eq!(leases.len(), 20);
    for lease in leases {
        match serde_json::from_slice::<StageItem>(&lease.payload).unwrap() {
            StageItem::File { source, result } => {
                assert_eq!(source, ID);
                assert!(result.summary.contains("gps"), "{}", result.summary);
            }
            other => panic!("a file item, not {other:?}"),
        }
    }
}
