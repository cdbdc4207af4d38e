//! Shared setup for the end-to-end tests in `tests/`: the host and store options they run with,
//! the operator grant that lets plugins reach loopback emulators, a capture of the host's logs (to
//! prove no secret reaches them), and a Teams notifier subscribed to a source's batches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use proofpix_emulators::Harness;
use proofpix_emulators::teams::{self, Teams};
use proofpix_pipeline::PipelineOptions;
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, Subscriptions};
use proofpix_store::{Store, StoreOptions};
use proofpix_vault::Secret;

/// Host options for tests: `concurrency` files at a time, back-off from 20 ms capped at 2 s,
/// and a run waits up to a minute for its retries.
pub fn host_options(concurrency: usize) -> HostOptions {
    HostOptions {
        pipeline: PipelineOptions {
            concurrency,
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_secs(2),
            wait_for_retries: Some(Duration::from_secs(60)),
            ..PipelineOptions::default()
        },
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    }
}

/// Store options for the connector tests: deliveries per queue item raised from 5 to 10.
///
/// The workflow-4 tests fail every Nth request of the emulator in turn (chaos). With several
/// files in flight, a retried download can by chance be the Nth request five times running and
/// be parked, which the product does on purpose after five transient failures, but which those
/// tests (every file processed exactly once) then report as a failure: CI saw it once in
/// Salesforce's. Ten deliveries make that chance negligible; no test here asserts parking
/// (`host/pipeline` tests it).
pub fn store_options() -> StoreOptions {
    StoreOptions {
        queue_max_attempts: 10,
        ..StoreOptions::default()
    }
}

/// A store in `dir/store` with [`store_options`] and a fresh master key.
///
/// # Panics
/// When the store cannot be created: the test cannot go on.
pub fn open_store(dir: &std::path::Path) -> Store {
    Store::open_with(
        &dir.join("store"),
        &proofpix_vault::MasterKey::generate(),
        store_options(),
    )
    .expect("store")
}

/// The operator's grant for an integration whose platform is an emulator on loopback.
pub fn loopback_grant() -> OperatorGrant {
    OperatorGrant {
        hosts: vec!["http://127.0.0.1:*".into()],
        allow_loopback: true,
        ..OperatorGrant::default()
    }
}

/// Everything the host, the runtime, the auth crate and plugins log, at trace level, from the
/// first call on (one global subscriber per test binary).
///
/// # Panics
/// Never: a poisoned buffer is still read.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,proofpix_runtime=trace,proofpix_service=trace,proofpix_pipeline=trace,proofpix_auth=trace,plugin=trace,reqwest=trace",
            ))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
    .clone()
}

/// Starts a Teams emulator and creates the integration `teams` (Workflows format) that
/// announces each completed batch of `source`, as `operator:alice` would in the seed's
/// workflow 2.
///
/// # Panics
/// When the emulator cannot start or the host refuses the integration: the test cannot go on.
pub async fn teams_notifier(host: &Host, source: &str) -> Teams {
    let teams = teams::start(Default::default(), Harness::default())
        .await
        .expect("teams emulator");
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "webhook_url".to_string(),
        Secret::new(teams.workflow_url().to_string()),
    );
    host.create_integration(
        IntegrationSpec {
            id: "teams".into(),
            plugin: "teams".into(),
            config: [
                ("format".to_string(), "workflows".to_string()),
                (
                    "webhook_host".to_string(),
                    teams.base_url().as_str().trim_end_matches('/').to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            secrets,
            grant: loopback_grant(),
            subscriptions: Some(Subscriptions {
                sources: vec![source.into()],
                events: vec!["batch-completed".into()],
                ..Subscriptions::default()
            }),
            schedule: None,
        },
        "operator:alice",
    )
    .await
    .expect("teams integration");
    teams
}

/// A digest of these alerts, as the notify stage builds one (contract 0.3); the window is
/// a fixed hour.
pub fn digest(alerts: Vec<proofpix_model::FileAlert>) -> proofpix_model::Digest {
    let mut by_risk: Vec<(proofpix_model::RiskLevel, u32)> = Vec::new();
    for a in &alerts {
        match by_risk.iter_mut().find(|(r, _)| *r == a.risk) {
            Some((_, n)) => *n += 1,
            None => by_risk.push((a.risk, 1)),
        }
    }
    proofpix_model::Digest {
        total: u32::try_from(alerts.len()).unwrap_or(u32::MAX),
        alerts,
        by_risk,
        window_start: "2026-01-01T00:00:00Z".into(),
        window_end: "2026-01-01T01:00:00Z".into(),
    }
}
