//! The outbox: a sync keeps nothing in memory for after the run. Every file is counted in the
//! batch and recorded in the store, and what a downstream stage acts on (a notifier's alerts
//! and summaries) waits in that stage's queue, committed with the results, so a notifier that
//! is down loses nothing and a daemon's memory never grows with its backlog.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proofpix_analysis::RiskLevel;
use proofpix_pipeline::PipelineOptions;
use proofpix_pipeline::SyncMode;
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, Subscriptions};
use proofpix_store::{Stage, Store, stage_queue};
use proofpix_vault::{MasterKey, Secret};

const RISKY: u32 = 3;
const CLEAN: u32 = 4;

fn write_photos(dir: &Path) {
    for seed in 0..RISKY {
        let gps = proofpix_fixtures::Gps {
            lat: 52.37,
            lon: 4.9,
            alt: None,
        };
        let jpeg = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 16,
            height: 16,
            seed,
            exif: Some(proofpix_fixtures::phone_photo(seed, gps)),
            ..Default::default()
        });
        std::fs::write(dir.join(format!("risky-{seed}.jpg")), jpeg).unwrap();
    }
    for seed in 0..CLEAN {
        let jpeg = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 16,
            height: 16,
            seed: 100 + seed,
            ..Default::default()
        });
        std::fs::write(dir.join(format!("clean-{seed}.jpg")), jpeg).unwrap();
    }
}

struct Env {
    host: Host,
    _tmp: tempfile::TempDir,
}

/// Outcomes kept in the report or not; groups of two files, so a run commits several groups.
async fn env(collect_outcomes: bool) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    write_photos(&photos);
    let store = Arc::new(Store::open(&tmp.path().join("data"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        pipeline: PipelineOptions {
            collect_outcomes,
            group_size: 2,
            ..PipelineOptions::default()
        },
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    let spec = IntegrationSpec {
        id: "photos".into(),
        plugin: "local-folder".into(),
        config: BTreeMap::from([("folder".to_string(), photos.display().to_string())]),
        grant: OperatorGrant {
            mounts: vec!["/input".into()],
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
    Env { host, _tmp: tmp }
}

/// A Teams notifier subscribed to the photos' alerts from `min_risk` and their summaries.
/// Nothing is listening at its webhook: every delivery fails.
async fn subscribe(host: &Host, min_risk: &str) {
    let spec = IntegrationSpec {
        id: "alerts".into(),
        plugin: "teams".into(),
        secrets: BTreeMap::from([(
            "webhook_url".to_string(),
            Secret::new("https://alerts.invalid/workflows/1"),
        )]),
        subscriptions: Some(Subscriptions {
            min_risk: min_risk.parse().expect("a risk level"),
            events: vec!["high-risk".into(), "batch-completed".into()],
            ..Subscriptions::default()
        }),
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
}

fn risky_in_batch(report: &proofpix_pipeline::SyncReport) -> u64 {
    ["high", "critical"]
        .iter()
        .filter_map(|r| report.batch.by_risk.get(*r))
        .sum()
}

fn waiting(host: &Host, queue: &str) -> u64 {
    host.store().depth(queue).unwrap().pending
}

#[tokio::test]
async fn a_one_shot_run_reports_every_outcome() {
    let e = env(true).await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(report.files.len() as u32, RISKY + CLEAN);
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
}

#[tokio::test]
async fn the_daemon_keeps_no_outcome_but_counts_and_records_every_file() {
    let e = env(false).await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert!(report.files.is_empty(), "nothing kept in memory");
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
    assert_eq!(report.batch.ok, u64::from(RISKY + CLEAN));
    assert_eq!(risky_in_batch(&report), u64::from(RISKY));
    assert_eq!(report.batch.result_ids.len() as u32, RISKY + CLEAN);
    for id in &report.batch.result_ids {
        assert!(
            e.host.store().result(*id).unwrap().is_some(),
            "result {id} stored"
        );
    }
}

#[tokio::test]
async fn alerts_wait_in_the_notifiers_queue_while_it_is_down_and_nothing_is_lost() {
    let e = env(false).await;
    subscribe(&e.host, "high").await;
    let queue = stage_queue("alerts", Stage::Notify);
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
    // One alert per risky file (not the clean ones) and the batch summary: each delivery
    // failed, so each is back in the queue for a later try.
    assert_eq!(waiting(&e.host, &queue), u64::from(RISKY) + 1);
    let parked = e.host.store().parked(&queue, 10).unwrap();
    assert!(parked.is_empty(), "{parked:?}");

    // A run that finds nothing new adds no summary (the subscription does not ask for empty
    // ones) and no alert.
    let again = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(again.batch.total, 0);
    assert_eq!(waiting(&e.host, &queue), u64::from(RISKY) + 1);
}

/// In the daemon, runs leave delivery to the notify stage's own task and wake it: a run must
/// not wait on a notifier's queue, which other integrations' runs may keep filling (a webhook
/// run once waited out a whole backlog that way).
#[tokio::test]
async fn with_a_background_notify_stage_a_run_wakes_it_instead_of_delivering() {
    let e = env(false).await;
    subscribe(&e.host, "high").await;
    let woken = e.host.background_notify_stage();
    let queue = stage_queue("alerts", Stage::Notify);
    e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), woken.notified())
        .await
        .expect("the run woke the notify stage");
    // Nothing was tried: every alert and the summary are still due now (a failed delivery
    // would have put them back for later).
    assert_eq!(waiting(&e.host, &queue), u64::from(RISKY) + 1);
    let due = |host: &Host| host.store().earliest_due(&queue).unwrap().unwrap();
    assert!(due(&e.host) <= e.host.store().now());
    // The stage's own delivery tries them; the notifier being down, they wait for a later try.
    e.host.deliver_notifications(false).await;
    assert_eq!(waiting(&e.host, &queue), u64::from(RISKY) + 1);
    assert!(due(&e.host) > e.host.store().now());
}

#[tokio::test]
async fn the_alert_floor_is_the_subscriptions() {
    let e = env(false).await;
    subscribe(&e.host, "critical").await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    // Only the critical files are alerted on (and the summary queued).
    let critical = report.batch.by_risk.get("critical").copied().unwrap_or(0);
    assert_eq!(
        waiting(&e.host, &stage_queue("alerts", Stage::Notify)),
        critical + 1
    );
}

#[tokio::test]
async fn deleting_a_notifier_deletes_its_queue() {
    let e = env(false).await;
    subscribe(&e.host, "high").await;
    e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    let queue = stage_queue("alerts", Stage::Notify);
    assert!(waiting(&e.host, &queue) > 0);
    e.host.delete_integration("alerts", "test").await.unwrap();
    assert_eq!(waiting(&e.host, &queue), 0);
    let _ = RiskLevel::High;
}

/// `integration sync --rewrite`: after the platform lost what was written (here, the reports
/// were deleted), an ordinary sync writes nothing (each result was written once), and forgetting
/// the finished write-backs then analysing again writes every result once more.
#[tokio::test]
async fn forgotten_write_backs_are_written_again_once() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let reports = tmp.path().join("reports");
    std::fs::create_dir(&photos).unwrap();
    std::fs::create_dir(&reports).unwrap();
    write_photos(&photos);
    let store = Arc::new(Store::open(&tmp.path().join("data"), &MasterKey::generate()).unwrap());
    let host = Host::new(
        store,
        HostOptions {
            trust_development_build: true,
            ..HostOptions::default()
        },
    )
    .await
    .unwrap();
    let spec = IntegrationSpec {
        id: "photos".into(),
        plugin: "local-folder".into(),
        config: BTreeMap::from([
            ("folder".to_string(), photos.display().to_string()),
            ("output".to_string(), reports.display().to_string()),
        ]),
        grant: OperatorGrant {
            mounts: vec!["/input".into(), "/output".into()],
            write: vec!["/output".into()],
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
    let count = || std::fs::read_dir(&reports).unwrap().count() as u32;

    let first = host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert!(first.files.iter().all(|f| f.written_back), "{first:?}");
    assert_eq!(count(), RISKY + CLEAN);

    for entry in std::fs::read_dir(&reports).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let again = host.sync("photos", SyncMode::Reanalyse).await.unwrap();
    assert_eq!(again.files.len() as u32, RISKY + CLEAN);
    assert_eq!(count(), 0, "each result is written at most once");

    let forgotten = host.forget_writebacks("photos", "test").unwrap();
    assert_eq!(forgotten, u64::from(RISKY + CLEAN));
    let rewritten = host.sync("photos", SyncMode::Reanalyse).await.unwrap();
    assert!(
        rewritten.files.iter().all(|f| f.written_back),
        "{rewritten:?}"
    );
    assert_eq!(count(), RISKY + CLEAN);
    let audit = host.store().audit_latest(50).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "integration.rewrite" && e.target == "photos"),
        "audited"
    );
}
