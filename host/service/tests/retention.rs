//! What a sync keeps in memory: every outcome for one-shot runs, only what the host acts on
//! afterwards for the daemon, so that a backlog's size never becomes the daemon's memory. The
//! batch counts every file either way.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proofpix_analysis::RiskLevel;
use proofpix_pipeline::SyncMode;
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, OutcomeRetention, Subscriptions};
use proofpix_store::Store;
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

async fn env(retention: OutcomeRetention) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    write_photos(&photos);
    let store = Arc::new(Store::open(&tmp.path().join("data"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        retention,
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

/// A Teams notifier subscribed to the photos' alerts from `min_risk` up. Nothing is listening
/// at its webhook: delivery fails and is logged, which does not matter here.
async fn subscribe(host: &Host, min_risk: &str) {
    let spec = IntegrationSpec {
        id: "alerts".into(),
        plugin: "teams".into(),
        secrets: BTreeMap::from([(
            "webhook_url".to_string(),
            Secret::new("https://alerts.invalid/workflows/1"),
        )]),
        subscriptions: Some(Subscriptions {
            min_risk: min_risk.into(),
            events: vec!["high-risk".into()],
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

#[tokio::test]
async fn a_one_shot_run_keeps_every_outcome() {
    let e = env(OutcomeRetention::All).await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(report.files.len() as u32, RISKY + CLEAN);
    assert_eq!(report.outcomes_dropped, 0);
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
}

#[tokio::test]
async fn with_nothing_to_act_on_the_daemon_keeps_no_outcome_but_counts_every_file() {
    let e = env(OutcomeRetention::Actionable { max: 100 }).await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert!(
        report.files.is_empty(),
        "no notifier, no remediation: nothing kept"
    );
    assert_eq!(report.outcomes_dropped, u64::from(RISKY + CLEAN));
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
    assert_eq!(report.batch.ok, u64::from(RISKY + CLEAN));
    assert_eq!(risky_in_batch(&report), u64::from(RISKY));
    // Every result is in the store, kept or not.
    assert_eq!(report.batch.result_ids.len() as u32, RISKY + CLEAN);
}

#[tokio::test]
async fn the_daemon_keeps_the_files_a_subscribed_notifier_is_alerted_about() {
    let e = env(OutcomeRetention::Actionable { max: 100 }).await;
    subscribe(&e.host, "high").await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(report.files.len() as u32, RISKY);
    assert!(
        report
            .files
            .iter()
            .all(|f| f.report.as_ref().is_some_and(|r| r.risk >= RiskLevel::High)),
        "only files at or above the subscription's floor are kept"
    );
    assert_eq!(report.outcomes_dropped, u64::from(CLEAN));
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
}

#[tokio::test]
async fn past_the_cap_outcomes_are_counted_not_kept() {
    let e = env(OutcomeRetention::Actionable { max: 2 }).await;
    subscribe(&e.host, "medium").await;
    let report = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(report.files.len(), 2);
    assert_eq!(report.outcomes_dropped, u64::from(RISKY + CLEAN) - 2);
    assert_eq!(report.batch.total, u64::from(RISKY + CLEAN));
    assert_eq!(risky_in_batch(&report), u64::from(RISKY));
}
