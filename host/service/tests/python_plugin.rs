//! The contract is language-neutral: a notifier written in Python
//! (`sdk/examples/python-webhook`), compiled with componentize-py against
//! `wit/since_v0.2.0`, installs and runs in the same sandbox as the Rust
//! plugins, signs its payloads through the host without seeing the key, and
//! reports receiver errors as errors the host can act on.
//!
//! componentize-py comes from PyPI: `./test` (the README's test command)
//! installs it into `target/tools/py` when it is missing. The test finds it as
//! `$PROOFPIX_COMPONENTIZE_PY`, then in `target/tools/py/bin`, then on
//! `PATH`, and fails (it does not skip) with the command that installs it.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proofpix_model::{
    BatchSummary, Digest, FileAlert, Finding, Notification, PluginError, RemoteFile, RiskLevel,
};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};
use serde_json::Value;

const SIGNING_KEY: &str = "whsec-python-test-7f3a";
const HOOK_PATH: &str = "/hooks/catch/123456/abcdef/";

fn build_python_plugin(out: &Path) -> Vec<u8> {
    support::build_python_example("python-webhook", out)
}

/// A digest of one alert (the Python plugin is built against 0.2: it gets the alerts).
fn digest(a: FileAlert) -> Digest {
    Digest {
        by_risk: vec![(a.risk, 1)],
        alerts: vec![a],
        total: 1,
        window_start: "2026-01-01T00:00:00Z".into(),
        window_end: "2026-01-01T00:00:00Z".into(),
    }
}

fn alert() -> FileAlert {
    FileAlert {
        integration: "sf-cases".into(),
        file: RemoteFile {
            id: "068000000000001".into(),
            name: "damage-photo.jpg".into(),
            mime_type: Some("image/jpeg".into()),
            size: Some(48_213),
            modified: None,
            version: "3".into(),
            container: Some("Case 00001042".into()),
            web_url: None,
            path: None,
            properties: vec![],
        },
        risk: RiskLevel::Critical,
        score: 94,
        summary: "GPS 52.37,4.89 (±10 m); serial SN-4000****".into(),
        findings: vec![Finding {
            category: "gps".into(),
            code: "gps.coordinates".into(),
            severity: RiskLevel::Critical,
            source: "exif:GPS/0x0002".into(),
            value: "52.37, 4.89".into(),
        }],
    }
}

async fn integration(host: &Host, id: &str, base: &str, path: &str, signed: bool) {
    let mut secrets = BTreeMap::from([("url".to_string(), Secret::new(format!("{base}{path}")))]);
    if signed {
        secrets.insert(
            "signing_secret".into(),
            Secret::new(SIGNING_KEY.to_string()),
        );
    }
    host.create_integration(
        IntegrationSpec {
            id: id.into(),
            plugin: "webhook-python".into(),
            config: BTreeMap::from([("endpoint".to_string(), base.to_string())]),
            secrets,
            grant: OperatorGrant {
                hosts: vec![base.to_string()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
}

async fn notify(host: &Host, id: &str, event: &Notification) -> Result<(), PluginError> {
    let (plugin, ctx) = host.context(id, true).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    session.notify(event).await.map_err(|e| {
        e.plugin_error()
            .cloned()
            .unwrap_or_else(|| PluginError::Fatal(e.to_string()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_webhook_notifier_runs_in_the_sandbox_and_signs_through_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = build_python_plugin(&tmp.path().join("webhook-python.wasm"));

    let store = Arc::new(Store::open(tmp.path(), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        first_party_plugins: false,
        data_dir: Some(tmp.path().to_path_buf()),
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    let report = host.install_plugin(&wasm, &dev, "test").await.unwrap();
    assert_eq!(report.plugin.contract_version(), "0.2.0");
    let info = report.plugin.info();
    assert_eq!(info.id, "webhook-python");
    assert!(info.config.iter().any(|f| f.name == "url" && f.secret));

    let (base, received) = support::receiver(&[HOOK_PATH]).await;

    // A bad origin is refused at setup, naming the field.
    let bad = host
        .create_integration(
            IntegrationSpec {
                id: "bad".into(),
                plugin: "webhook-python".into(),
                config: BTreeMap::from([("endpoint".to_string(), format!("{base}/x/y"))]),
                secrets: BTreeMap::from([("url".to_string(), Secret::new(format!("{base}/")))]),
                ..IntegrationSpec::default()
            },
            "test",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("endpoint") && bad.contains("not an origin"),
        "{bad}"
    );

    integration(&host, "zap", &base, HOOK_PATH, true).await;
    let test = host.test("zap").await;
    assert!(test.ok(), "{:?}", test.steps);
    let connection = &test.steps.last().unwrap().detail;
    assert!(
        connection.contains("signed with HMAC-SHA256"),
        "{connection}"
    );

    notify(&host, "zap", &Notification::HighRiskFiles(digest(alert())))
        .await
        .unwrap();
    notify(
        &host,
        "zap",
        &Notification::BatchCompleted(BatchSummary {
            batch_id: "b-7".into(),
            integration: "sf-cases".into(),
            platform: "Salesforce".into(),
            started_at: "2026-11-26T10:00:00Z".into(),
            finished_at: "2026-11-26T10:01:00Z".into(),
            files_total: 12,
            files_ok: 12,
            files_failed: 0,
            by_risk: vec![(RiskLevel::Critical, 1), (RiskLevel::None, 11)],
            dashboard_url: None,
        }),
    )
    .await
    .unwrap();

    let requests = received
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h, b)| (h.clone(), b.clone()))
        .collect::<Vec<_>>();
    assert_eq!(requests.len(), 2, "one POST per notification");
    for (headers, body) in &requests {
        let ts = headers["x-proofpix-timestamp"].to_str().unwrap();
        let sig = headers["x-proofpix-signature"].to_str().unwrap();
        let mut message = format!("v1:{ts}:").into_bytes();
        message.extend_from_slice(body);
        assert_eq!(
            sig,
            format!(
                "v1={}",
                support::hmac_sha256_hex(SIGNING_KEY.as_bytes(), &message)
            ),
            "the host signed exactly the body the plugin built"
        );
        assert!(
            !String::from_utf8_lossy(body).contains(SIGNING_KEY),
            "the key never reaches the payload"
        );
    }
    let first: Value = serde_json::from_slice(&requests[0].1).unwrap();
    assert_eq!(first["event"], "high_risk_files");
    assert_eq!(first["integration_id"], "zap");
    assert_eq!(first["files"][0]["risk"], "critical");
    assert_eq!(first["files"][0]["findings"][0]["code"], "gps.coordinates");
    let second: Value = serde_json::from_slice(&requests[1].1).unwrap();
    assert_eq!(second["event"], "batch_completed");
    assert_eq!(second["batch"]["by_risk"]["critical"], 1);

    // Without a signing secret the check says so and requests go unsigned.
    integration(&host, "unsigned", &base, HOOK_PATH, false).await;
    let test = host.test("unsigned").await;
    assert!(
        test.steps.last().unwrap().detail.contains("NOT signed"),
        "{:?}",
        test.steps
    );

    // Receiver errors come back as errors the host acts on.
    integration(&host, "deleted", &base, "/hooks/catch/deleted/", true).await;
    match notify(
        &host,
        "deleted",
        &Notification::HighRiskFiles(digest(alert())),
    )
    .await
    {
        Err(PluginError::InvalidConfig(p)) => {
            assert_eq!(p.field.as_deref(), Some("url"));
            assert!(p.message.contains("410"), "{}", p.message);
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    integration(&host, "busy", &base, "/hooks/catch/busy/", true).await;
    match notify(&host, "busy", &Notification::HighRiskFiles(digest(alert()))).await {
        Err(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(7_000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }

    // A Python plugin is still a sandboxed plugin: it cannot reach a host
    // the operator did not grant, whatever URL the secret holds.
    integration(&host, "elsewhere", &base, HOOK_PATH, true).await;
    host.set_secret(
        "elsewhere",
        "url",
        Secret::new("http://127.0.0.2:9/steal".to_string()),
        "test",
    )
    .await
    .unwrap();
    let denied = notify(
        &host,
        "elsewhere",
        &Notification::HighRiskFiles(digest(alert())),
    )
    .await;
    assert!(
        matches!(&denied, Err(PluginError::InvalidConfig(p)) if p.message.contains("refused")),
        "{denied:?}"
    );
    assert_eq!(
        received.requests.lock().unwrap().len(),
        2,
        "nothing more arrived"
    );
}
