//! The contract is language-neutral, JavaScript edition: the notifier in
//! `sdk/examples/js-webhook`, compiled with componentize-js against
//! `wit/since_v0.2.0` (with its `http` feature off, so the component imports
//! the contract's `http` and no `wasi:http`), installs and runs in the same
//! sandbox as the Rust plugins. A sync's digest of risky files and its batch
//! summary reach a receiver, signed by the host; receiver errors come back as
//! errors the host acts on.
//!
//! The other tests build small notifiers the way an outsider wrote one (issue
//! 12): one that answers "not supported" to `check`, one that throws a plain
//! `new Error()`, and one whose manifest leaves out a list field.
//!
//! componentize-js comes from npm: `./test` (the README's test command)
//! installs it into `target/tools/js` when it is missing. The test finds it as
//! `$PROOFPIX_COMPONENTIZE_JS`, then in `target/tools/js/node_modules/.bin`,
//! then on `PATH`, and fails (it does not skip) with the command that installs
//! it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proofpix_model::{
    Digest, FileAlert, Finding, Notification, PluginError, RemoteFile, RiskLevel,
};
use proofpix_pipeline::SyncMode;
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec, Subscriptions};
use proofpix_store::{IntegrationStatus, Stage, Store, StoreOptions, stage_queue};
use proofpix_vault::{MasterKey, Secret};

const SIGNING_KEY: &str = "whsec-js-test-41c9";
const HOOK_PATH: &str = "/hooks/catch/123456/abcdef/";
const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

fn componentize_js() -> PathBuf {
    support::tool(
        "PROOFPIX_COMPONENTIZE_JS",
        "target/tools/js/node_modules/.bin/componentize-js",
        "componentize-js",
        &format!(
            "`npm install --prefix target/tools/js @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION} @bytecodealliance/jco@1.35.0`"
        ),
    )
}

/// Builds `source` as the example's README says (`npm run build`): the
/// `connector` world, `http` and `fetch-event` disabled.
fn build_js(source: &Path, out: &Path) -> Vec<u8> {
    build_js_with(source, out, &["--disable", "http", "fetch-event"])
}

fn build_js_with(source: &Path, out: &Path, flags: &[&str]) -> Vec<u8> {
    let output = Command::new(componentize_js())
        .arg(source)
        .arg("--wit")
        .arg(support::workspace().join("wit/since_v0.2.0"))
        .args(["--world-name", "connector"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run componentize-js");
    assert!(
        output.status.success(),
        "componentize-js failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).expect("read the built component")
}

/// A host over a fresh store whose clock the test moves (`clock`: seconds added to now), with
/// a folder of photos for a local-folder source.
struct Env {
    host: Host,
    clock: Arc<AtomicI64>,
    photos: PathBuf,
    tmp: tempfile::TempDir,
}

const RISKY: u32 = 3;
const CLEAN: u32 = 2;

async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
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
        std::fs::write(photos.join(format!("risky-{seed}.jpg")), jpeg).unwrap();
    }
    for seed in 0..CLEAN {
        let jpeg = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 16,
            height: 16,
            seed: 100 + seed,
            ..Default::default()
        });
        std::fs::write(photos.join(format!("clean-{seed}.jpg")), jpeg).unwrap();
    }
    let clock = Arc::new(AtomicI64::new(0));
    let offset = clock.clone();
    let store = Arc::new(
        Store::open_with(
            &tmp.path().join("data"),
            &MasterKey::generate(),
            StoreOptions {
                clock: Arc::new(move || {
                    time::OffsetDateTime::now_utc()
                        + time::Duration::seconds(offset.load(Ordering::SeqCst))
                }),
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    );
    let options = HostOptions {
        data_dir: Some(tmp.path().join("data")),
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    Env {
        host,
        clock,
        photos,
        tmp,
    }
}

impl Env {
    /// The local-folder source the notifiers listen to.
    async fn source(&self) {
        self.host
            .create_integration(
                IntegrationSpec {
                    id: "photos".into(),
                    plugin: "local-folder".into(),
                    config: BTreeMap::from([(
                        "folder".to_string(),
                        self.photos.display().to_string(),
                    )]),
                    grant: OperatorGrant {
                        mounts: vec!["/input".into()],
                        ..OperatorGrant::default()
                    },
                    ..IntegrationSpec::default()
                },
                "test",
            )
            .await
            .unwrap();
    }

    async fn install(&self, wasm: &[u8]) -> proofpix_service::InstallReport {
        let dev = InstallOptions {
            allow_unsigned: true,
            grants: vec!["all".into()],
            repin: false,
        };
        self.host.install_plugin(wasm, &dev, "test").await.unwrap()
    }
}

async fn webhook(host: &Host, id: &str, base: &str, path: &str, subs: Option<Subscriptions>) {
    host.create_integration(
        IntegrationSpec {
            id: id.into(),
            plugin: "webhook-js".into(),
            config: BTreeMap::from([("endpoint".to_string(), base.to_string())]),
            secrets: BTreeMap::from([
                ("url".to_string(), Secret::new(format!("{base}{path}"))),
                (
                    "signing_secret".to_string(),
                    Secret::new(SIGNING_KEY.to_string()),
                ),
            ]),
            grant: OperatorGrant {
                hosts: vec![base.to_string()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            subscriptions: subs,
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

fn alert() -> Notification {
    Notification::HighRiskFiles(Digest {
        total: 1,
        by_risk: vec![(RiskLevel::Critical, 1)],
        window_start: "2026-01-01T00:00:00Z".into(),
        window_end: "2026-01-01T00:00:00Z".into(),
        alerts: vec![FileAlert {
            integration: "photos".into(),
            file: RemoteFile {
                id: "risky-0.jpg".into(),
                name: "risky-0.jpg".into(),
                mime_type: Some("image/jpeg".into()),
                size: Some(1_000),
                modified: None,
                version: "1".into(),
                container: None,
                web_url: None,
                path: None,
                properties: vec![],
            },
            risk: RiskLevel::Critical,
            score: 94,
            summary: "GPS 52.37,4.90".into(),
            findings: vec![Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::Critical,
                source: "exif:GPS/0x0002".into(),
                value: "52.37, 4.90".into(),
            }],
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_webhook_notifier_delivers_a_signed_digest_and_summary_of_a_sync() {
    let e = env().await;
    let example = support::workspace().join("sdk/examples/js-webhook/app.js");
    let wasm = build_js(&example, &e.tmp.path().join("webhook-js.wasm"));
    let report = e.install(&wasm).await;
    assert_eq!(report.plugin.contract_version(), "0.2.0");
    let info = report.plugin.info();
    assert_eq!(info.id, "webhook-js");
    assert!(info.config.iter().any(|f| f.name == "url" && f.secret));

    let (base, received) = support::receiver(&[HOOK_PATH, "/outsider"]).await;
    e.source().await;
    webhook(
        &e.host,
        "zap",
        &base,
        HOOK_PATH,
        Some(Subscriptions {
            events: vec!["high-risk".into(), "batch-completed".into()],
            digest: true,
            ..Subscriptions::default()
        }),
    )
    .await;
    let test = e.host.test("zap").await;
    assert!(test.ok(), "{:?}", test.steps);
    let connection = &test.steps.last().unwrap().detail;
    assert!(
        connection.contains("signed with HMAC-SHA256"),
        "{connection}"
    );

    // The sync records its results and routes the risky ones and the batch into the
    // notifier's queue; the notify stage delivers them when the run ends.
    let run = e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert_eq!(run.batch.total, u64::from(RISKY + CLEAN));
    let risky: u64 = ["high", "critical"]
        .iter()
        .filter_map(|r| run.batch.by_risk.get(*r))
        .sum();
    assert_eq!(risky, u64::from(RISKY));

    let requests = received.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one digest and one summary");
    for (_, headers, body) in &requests {
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
    let bodies = received.bodies(HOOK_PATH);
    let digest = bodies
        .iter()
        .find(|b| b["event"] == "high_risk_files")
        .expect("a digest");
    assert_eq!(digest["integration_id"], "zap");
    let files = digest["files"].as_array().unwrap();
    assert_eq!(files.len() as u32, RISKY, "one digest for every risky file");
    assert!(files.iter().all(|f| f["integration"] == "photos"
        && f["file"]["name"].as_str().unwrap().starts_with("risky-")
        && f["findings"].as_array().is_some_and(|x| !x.is_empty())));
    let summary = bodies
        .iter()
        .find(|b| b["event"] == "batch_completed")
        .expect("a batch summary");
    assert_eq!(summary["batch"]["integration"], "photos");
    assert_eq!(summary["batch"]["files_total"], RISKY + CLEAN);
    assert_eq!(summary["batch"]["files_ok"], RISKY + CLEAN);
    assert_eq!(
        waiting(&e.host, "zap"),
        0,
        "everything delivered was acknowledged"
    );

    // Receiver errors come back as errors the host acts on.
    webhook(&e.host, "deleted", &base, "/hooks/catch/deleted/", None).await;
    match notify(&e.host, "deleted", &alert()).await {
        Err(PluginError::InvalidConfig(p)) => {
            assert_eq!(p.field.as_deref(), Some("url"));
            assert!(p.message.contains("410"), "{}", p.message);
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    webhook(&e.host, "busy", &base, "/hooks/catch/busy/", None).await;
    match notify(&e.host, "busy", &alert()).await {
        Err(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(7_000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    // A host the operator did not grant is refused, whatever URL the secret holds.
    webhook(&e.host, "elsewhere", &base, HOOK_PATH, None).await;
    e.host
        .set_secret(
            "elsewhere",
            "url",
            Secret::new("http://127.0.0.2:9/steal".to_string()),
            "test",
        )
        .await
        .unwrap();
    let denied = notify(&e.host, "elsewhere", &alert()).await;
    assert!(
        matches!(&denied, Err(PluginError::InvalidConfig(p)) if p.field.as_deref() == Some("endpoint") && p.message.contains("refused")),
        "{denied:?}"
    );
    assert_eq!(
        received.requests.lock().unwrap().len(),
        2,
        "nothing more arrived"
    );
}

fn waiting(host: &Host, notifier: &str) -> u64 {
    host.store()
        .depth(&stage_queue(notifier, Stage::Notify))
        .unwrap()
        .pending
}

/// A notifier written the way the outsider of issue 12 wrote theirs: `check`
/// answers "not supported" (as the WIT README allows), `notify` throws a plain
/// `new Error()` when its `mode` says so, and otherwise posts the event's tag
/// to `{endpoint}/outsider`. `VERSION` and `FILESYSTEM` are filled in per build.
const OUTSIDER: &str = r#"
import { send } from 'proofpix:plugin/http@0.2.0';
import { get } from 'proofpix:plugin/config@0.2.0';

const notSupported = (what) => ({ tag: 'fatal', val: `${what} is not supported by this plugin` });
const field = (name, kind, required) =>
  ({ name, label: name, help: '', kind, required, secret: false, choices: [] });

export const manifest = {
  describe() {
    return {
      id: 'outsider', version: 'VERSION', displayName: 'Outsider', platform: 'Webhook',
      description: 'A notifier from outside', capabilities: ['notifier'],
      config: [field('endpoint', 'url', true), field('mode', 'text', false)],
      auth: { tag: 'none' },
      endpoints: [{ name: 'hook', url: '{config.endpoint}', credentials: false, purpose: 'Deliver' }],
      FILESYSTEM
      writeBackBatchSize: 1, writeBackIdempotent: false, remediations: [],
    };
  },
  validateConfig() {},
};

export const notifier = {
  notify(event) {
    if (get('mode') === 'throw') {
      throw new Error('the outsider broke');
    }
    const body = new TextEncoder().encode(JSON.stringify({ event: event.tag }));
    const response = send({ method: 'post', url: `${get('endpoint')}/outsider`, headers: [], body });
    if (response.status !== 200) throw { tag: 'transient', val: `HTTP ${response.status}` };
  },
};

export const source = {
  check() { throw notSupported('check'); },
  discover() { throw notSupported('discover'); },
  download() { throw notSupported('download'); },
  writeBack() { throw notSupported('write-back'); },
};
export const events = { handle() { throw notSupported('events'); } };
export const remediation = {
  upload() { throw notSupported('remediation upload'); },
  remediate() { throw notSupported('remediation'); },
};
"#;

/// The outsider's notifier at `version`; `filesystem: false` leaves the
/// manifest's `filesystem` list out, as the outsider's first try did.
fn build_outsider(dir: &Path, version: &str, filesystem: bool) -> Vec<u8> {
    let source = OUTSIDER.replace("VERSION", version).replace(
        "FILESYSTEM",
        if filesystem { "filesystem: []," } else { "" },
    );
    let name = format!("outsider-{version}-{filesystem}");
    let js = dir.join(format!("{name}.js"));
    std::fs::write(&js, source).unwrap();
    build_js(&js, &dir.join(format!("{name}.wasm")))
}

async fn outsider(host: &Host, base: &str, mode: &str, subs: Option<Subscriptions>) {
    host.create_integration(
        IntegrationSpec {
            id: "outsider".into(),
            plugin: "outsider".into(),
            config: BTreeMap::from([
                ("endpoint".to_string(), base.to_string()),
                ("mode".to_string(), mode.to_string()),
            ]),
            grant: OperatorGrant {
                hosts: vec![base.to_string()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            subscriptions: subs,
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
}

/// Issue 12: a notifier whose `check` answers "not supported" showed FAIL in
/// `integration test` and could never be upgraded, because the upgrade runs
/// `check` on every enabled integration and rolled back on the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_without_a_check_tests_as_not_applicable_and_upgrades() {
    let e = env().await;
    let (base, _) = support::receiver(&[HOOK_PATH, "/outsider"]).await;
    e.install(&build_outsider(e.tmp.path(), "1.0.0", true))
        .await;
    outsider(&e.host, &base, "ok", None).await;

    let test = e.host.test("outsider").await;
    assert!(test.ok(), "{:?}", test.steps);
    let connection = test.steps.last().unwrap();
    assert_eq!(connection.name, "connection");
    assert!(
        connection.detail.starts_with("not applicable"),
        "{connection:?}"
    );

    let upgrade = e
        .install(&build_outsider(e.tmp.path(), "1.1.0", true))
        .await;
    assert_eq!(upgrade.upgraded_from.as_deref(), Some("1.0.0"));
    assert_eq!(e.host.plugin("outsider").unwrap().info().version, "1.1.0");
}

/// Issue 12: a plain `throw new Error()` in `notify` traps. The notification must stay
/// queued and be delivered once the notifier works again, and the notifier's error must
/// say where the exception's message is (the plugin's log, shown with `-v`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_that_throws_is_kept_and_retried_and_the_error_says_how_to_see_why() {
    let e = env().await;
    let (base, received) = support::receiver(&[HOOK_PATH, "/outsider"]).await;
    e.install(&build_outsider(e.tmp.path(), "1.0.0", true))
        .await;
    e.source().await;
    let subs = Subscriptions {
        events: vec!["high-risk".into(), "batch-completed".into()],
        ..Subscriptions::default()
    };
    outsider(&e.host, &base, "throw", Some(subs.clone())).await;

    e.host.sync("photos", SyncMode::Incremental).await.unwrap();
    assert!(received.bodies("/outsider").is_empty());
    // One alert per risky file and the summary, all still queued for a later try.
    let messages = u64::from(RISKY) + 1;
    assert_eq!(waiting(&e.host, "outsider"), messages);
    let queue = stage_queue("outsider", Stage::Notify);
    assert!(e.host.store().parked(&queue, 10).unwrap().is_empty());
    let record = e.host.store().integration("outsider").unwrap().unwrap();
    assert_eq!(record.status, IntegrationStatus::Failing);
    let error = record.last_error.unwrap_or_default();
    assert!(error.contains("notify crashed"), "{error}");
    assert!(
        error.contains("run with -v to see the plugin's log"),
        "{error}"
    );

    // The author fixes the notifier; the next try, a minute later, delivers everything.
    outsider(&e.host, &base, "ok", Some(subs)).await;
    e.clock.store(61, Ordering::SeqCst);
    e.host.deliver_notifications(false).await;
    let bodies = received.bodies("/outsider");
    assert_eq!(bodies.len() as u64, messages, "{bodies:?}");
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["event"] == "high-risk-files")
            .count() as u32,
        RISKY
    );
    assert_eq!(waiting(&e.host, "outsider"), 0);
}

/// Issue 12: a manifest without one of its list fields crashes inside the
/// generated bindings; the host's error names the call and what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_missing_a_list_field_is_refused_naming_describe_and_the_fix() {
    let e = env().await;
    let wasm = build_outsider(e.tmp.path(), "1.0.0", false);
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    let error = e
        .host
        .install_plugin(&wasm, &dev, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("describe crashed"), "{error}");
    assert!(
        error.contains(
            "The plugin's `describe` call failed, so the host has no manifest: check that it \
             returns every field of `plugin-info`, with each list field present (`[]` when \
             empty): capabilities, config, endpoints, filesystem, remediations, and `choices` in \
             every config field; run with -v to see the plugin's log"
        ),
        "{error}"
    );
}

/// Issue 12: componentize-js's default build imports `wasi:http` for `fetch()`, which the host
/// does not link; the refusal says how to build without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_build_that_imports_wasi_http_is_refused_with_the_flags_to_build_without_it() {
    let e = env().await;
    let example = support::workspace().join("sdk/examples/js-webhook/app.js");
    let wasm = build_js_with(&example, &e.tmp.path().join("with-http.wasm"), &[]);
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    let error = e
        .host
        .install_plugin(&wasm, &dev, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot be linked"), "{error}");
    assert!(
        error.contains(
            "The component imports wasi:http, which plugins do not get: make requests through \
             the contract's `http` interface, and build a JavaScript plugin with `--disable \
             http fetch-event` (see sdk/examples/js-webhook)"
        ),
        "{error}"
    );
}
