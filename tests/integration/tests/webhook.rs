//! The generic webhook notifier (`plugins/webhook`) through the host library, against a
//! receiver that verifies signatures the way the plugin's docs tell receivers to.
//!
//! - `delivery`: every kind of notification arrives as the documented JSON, signed; a tampered
//!   body is rejected by the receiver; a source's run reaches the webhook through the host's
//!   notification policy; setup refuses bad settings.
//! - `errors`: a deleted hook, a refused signature, throttling (waited out by the host), server
//!   errors (retried), and egress to a host the operator did not grant.
//! - `secrecy`: the URL (a credential) never appears in an error, a log line or the audit trail.
//!
//! The receiver checks HMAC-SHA256 with its own small implementation ([`sha256`]), not the
//! host's crypto crates, so a mistake shared by signer and verifier cannot hide.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use proofpix_integration_tests::{logs, loopback_grant};
use proofpix_model::{
    BatchSummary, FileAlert, Finding, Notification, PluginError, Problem, RemoteFile, RiskLevel,
};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, ServiceError, Subscriptions};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};
use serde_json::{Value, json};

/// The receiver's signing key, shared with the integration's `signing_secret`.
const KEY: &str = "whsec-rust-test-4c1e9a7b2d";
/// The secret part of every hook URL; it must never show up outside the request itself.
const HOOK_TOKEN: &str = "hk-7f3a9c21e5d04b68";

// ---------------------------------------------------------------------------------------------
// Setup.
// ---------------------------------------------------------------------------------------------

/// One request the receiver accepted.
#[derive(Debug, Clone)]
struct Delivery {
    hook: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn status(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![],
            body: body.into(),
        }
    }
    fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Delivery>,
    /// Answers to give, per hook, before the normal one.
    scripted: HashMap<String, VecDeque<Reply>>,
    /// Requests seen per hook, scripted answers included.
    attempts: HashMap<String, usize>,
    /// The `x-proofpix-delivery` of every request per hook, scripted answers included.
    delivery_ids: HashMap<String, Vec<String>>,
}

/// A webhook receiver like a Zapier catch hook behind a signature check: `POST
/// /hooks/{hook}/{HOOK_TOKEN}` answers a scripted reply if one is queued, else 401 when the
/// signature does not verify under [`KEY`], else records the delivery and answers 200.
#[derive(Clone, Default)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    base: String,
}

impl Receiver {
    async fn start() -> Self {
        let mut receiver = Receiver::default();
        let app = Router::new()
            .route("/hooks/{hook}/{token}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        receiver.base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        receiver
    }

    /// The hook's full URL: a credential.
    fn url(&self, hook: &str) -> String {
        format!("{}/hooks/{hook}/{HOOK_TOKEN}", self.base)
    }

    fn script(&self, hook: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .entry(hook.into())
            .or_default()
            .extend(replies);
    }

    fn deliveries(&self, hook: &str) -> Vec<Delivery> {
        let state = self.state.lock().unwrap();
        state
            .deliveries
            .iter()
            .filter(|d| d.hook == hook)
            .cloned()
            .collect()
    }

    fn attempts(&self, hook: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .attempts
            .get(hook)
            .copied()
            .unwrap_or(0)
    }

    fn delivery_ids(&self, hook: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.delivery_ids.get(hook).cloned().unwrap_or_default()
    }
}

async fn receive(
    State(r): State<Receiver>,
    Path((hook, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if token != HOOK_TOKEN {
        return (StatusCode::NOT_FOUND, "no such hook").into_response();
    }
    let mut state = r.state.lock().unwrap();
    *state.attempts.entry(hook.clone()).or_default() += 1;
    let id = headers
        .get("x-proofpix-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    state.delivery_ids.entry(hook.clone()).or_default().push(id);
    if let Some(reply) = state.scripted.get_mut(&hook).and_then(VecDeque::pop_front) {
        let mut response = (
            StatusCode::from_u16(reply.status).expect("status"),
            reply.body,
        )
            .into_response();
        for (name, value) in reply.headers {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        return response;
    }
    if !signature_verifies(&headers, &body) {
        return (StatusCode::UNAUTHORIZED, "signature mismatch").into_response();
    }
    state.deliveries.push(Delivery {
        hook,
        headers,
        body: body.to_vec(),
    });
    (StatusCode::OK, r#"{"status":"success"}"#).into_response()
}

/// What the plugin's docs tell a receiver to do.
fn signature_verifies(headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) =
        (get("x-proofpix-timestamp"), get("x-proofpix-signature"))
    else {
        return false;
    };
    let Ok(ms) = timestamp.parse::<u128>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if now.abs_diff(ms) > 5 * 60 * 1000 {
        return false;
    }
    let mut message = format!("v1:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    signature == format!("v1={}", hex(&hmac_sha256(KEY.as_bytes(), &message)))
}

struct Env {
    host: Host,
    receiver: Receiver,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store");
    let options = HostOptions {
        pipeline: PipelineOptions {
            concurrency: 2,
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_secs(2),
            wait_for_retries: Some(Duration::from_secs(10)),
            ..PipelineOptions::default()
        },
        // Compiled plugins are cached across this binary's tests.
        cache_dir: Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    // One host at a time fills the cache (as in `teams.rs`: the runtime names its temporary
    // file after the process, so two hosts compiling the same plugin race on it).
    static CACHE_FILL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let host = {
        let _fill = CACHE_FILL.lock().await;
        Host::new(Arc::new(store), options).await.expect("host")
    };
    let receiver = Receiver::start().await;
    Env {
        host,
        receiver,
        dir,
    }
}

/// How a test webhook integration differs from the default one.
#[derive(Clone)]
struct Hook {
    url: String,
    key: Option<&'static str>,
    config: Vec<(&'static str, String)>,
    grant: OperatorGrant,
    subscriptions: Option<Subscriptions>,
}

impl Env {
    /// A signed webhook integration `id` posting to the receiver's hook of the same name.
    fn hook(&self, id: &str) -> Hook {
        Hook {
            url: self.receiver.url(id),
            key: Some(KEY),
            config: vec![("endpoint", self.receiver.base.clone())],
            grant: loopback_grant(),
            subscriptions: None,
        }
    }

    async fn create(&self, id: &str, hook: Hook) -> Result<(), ServiceError> {
        let mut secrets = BTreeMap::from([("url".to_string(), Secret::new(hook.url))]);
        if let Some(key) = hook.key {
            secrets.insert("signing_secret".into(), Secret::new(key));
        }
        self.host
            .create_integration(
                IntegrationSpec {
                    id: id.into(),
                    plugin: "webhook".into(),
                    config: hook
                        .config
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    secrets,
                    grant: hook.grant,
                    subscriptions: hook.subscriptions,
                    schedule: None,
                },
                "operator:test",
            )
            .await
            .map(|_| ())
    }

    async fn webhook(&self, id: &str) {
        self.create(id, self.hook(id))
            .await
            .expect("webhook integration");
    }

    async fn notify(&self, id: &str, event: &Notification) -> Result<(), PluginError> {
        let (plugin, ctx) = self.host.context(id, true).await.expect("context");
        let mut session = plugin.session(&ctx).await.expect("session");
        session.notify(event).await.map_err(|e| {
            e.plugin_error()
                .cloned()
                .unwrap_or_else(|| PluginError::Fatal(e.to_string()))
        })
    }

    async fn folder_source(&self, id: &str, photos: u32) {
        let folder = self.dir.path().join(id);
        for (name, bytes) in proofpix_fixtures::photo_set(photos) {
            let path = folder.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write photo");
        }
        self.host
            .create_integration(
                IntegrationSpec {
                    id: id.into(),
                    plugin: "local-folder".into(),
                    config: BTreeMap::from([("folder".to_string(), folder.display().to_string())]),
                    grant: OperatorGrant {
                        mounts: vec!["/input".into()],
                        ..OperatorGrant::default()
                    },
                    ..IntegrationSpec::default()
                },
                "operator:test",
            )
            .await
            .expect("local-folder integration");
    }

    /// Audit entries of `action` about the integration `target`.
    fn audit(&self, action: &str, target: &str) -> Vec<proofpix_store::AuditEntry> {
        self.host
            .store()
            .audit_entries(0, 10_000)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action == action && e.target == target)
            .collect()
    }
}

fn alert(i: usize) -> FileAlert {
    FileAlert {
        integration: "sf-cases".into(),
        file: RemoteFile {
            id: format!("06800000000{i:04}"),
            name: format!("damage-photo-{i}.jpg"),
            mime_type: Some("image/jpeg".into()),
            size: Some(48_213),
            modified: None,
            version: "3".into(),
            container: Some("Case 00001042".into()),
            web_url: Some(format!("https://acme.my.salesforce.com/068{i:04}")),
            path: None,
            properties: vec![],
        },
        risk: RiskLevel::Critical,
        score: 94,
        summary: "GPS 52.37,4.89 (±10 m); serial SN-4000****".into(),
        findings: vec![
            Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::Critical,
                source: "exif:GPS/0x0002".into(),
                value: "52.37, 4.89".into(),
            },
            Finding {
                category: "serial".into(),
                code: "serial.body".into(),
                severity: RiskLevel::Medium,
                source: "exif:ExifIFD/0xa431".into(),
                value: "SN-4000****".into(),
            },
        ],
    }
}

fn batch() -> BatchSummary {
    BatchSummary {
        batch_id: "b-7".into(),
        integration: "sf-cases".into(),
        platform: "Salesforce".into(),
        started_at: "2026-11-26T10:00:00Z".into(),
        finished_at: "2026-11-26T10:01:00Z".into(),
        files_total: 12,
        files_ok: 11,
        files_failed: 1,
        by_risk: vec![(RiskLevel::Critical, 1), (RiskLevel::None, 10)],
        dashboard_url: Some("https://proofpix.example/batches/b-7".into()),
    }
}

// ---------------------------------------------------------------------------------------------
mod delivery {
    //! What a receiver gets.
    use super::*;

    #[tokio::test]
    async fn every_notification_arrives_as_the_documented_json_signed_through_the_host() {
        let env = env().await;
        let mut hook = env.hook("zap");
        hook.config
            .push(("headers", "X-Team: privacy\nX-Env: test".into()));
        env.create("zap", hook).await.unwrap();
        let problem = Problem {
            integration: "photos".into(),
            message: "the folder /input is not readable".into(),
        };
        let events = [
            Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(1)])),
            Notification::HighRiskFiles(proofpix_integration_tests::digest(
                (0..3).map(alert).collect(),
            )),
            Notification::BatchCompleted(batch()),
            Notification::BatchFailed(problem.clone()),
            Notification::IntegrationUnhealthy(problem),
        ];
        for event in &events {
            env.notify("zap", event).await.unwrap();
        }
        let got = env.receiver.deliveries("zap");
        assert_eq!(got.len(), 5, "one POST per notification, each verified");
        for d in &got {
            assert_eq!(d.header("content-type"), "application/json");
            assert_eq!(d.header("x-team"), "privacy");
            assert_eq!(d.header("x-env"), "test");
            assert!(d.header("user-agent").starts_with("ProofPix-Webhook/"));
            assert!(d.header("x-proofpix-signature").starts_with("v1="));
            assert_eq!(d.json()["integration_id"], "zap");
            assert_eq!(d.header("x-proofpix-event"), d.json()["event"]);
            assert!(!String::from_utf8_lossy(&d.body).contains(KEY));
        }

        // The alert, exactly as the crate docs show it.
        assert_eq!(
            got[0].json(),
            json!({
                "event": "high_risk_files",
                "integration_id": "zap",
                "files": [{
                    "integration": "sf-cases",
                    "file": {
                        "id": "068000000000001", "name": "damage-photo-1.jpg", "version": "3",
                        "container": "Case 00001042", "path": null,
                        "web_url": "https://acme.my.salesforce.com/0680001",
                    },
                    "risk": "critical",
                    "score": 94,
                    "summary": "GPS 52.37,4.89 (±10 m); serial SN-4000****",
                    "findings": [
                        {"category": "gps", "code": "gps.coordinates", "severity": "critical", "value": "52.37, 4.89"},
                        {"category": "serial", "code": "serial.body", "severity": "medium", "value": "SN-4000****"},
                    ],
                    "findings_total": 2,
                }],
                "files_total": 1,
                "files_by_risk": {"critical": 1},
                "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"},
            })
        );
        // Compact, sorted keys: the Python example's serialisation.
        assert!(
            got[0]
                .body
                .starts_with(br#"{"event":"high_risk_files","files":[{"file":{"#)
        );
        // The digest lists every file.
        let digest = got[1].json();
        assert_eq!(digest["event"], "high_risk_files");
        assert_eq!(
            digest["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["file"]["name"].as_str().unwrap())
                .collect::<Vec<_>>(),
            [
                "damage-photo-0.jpg",
                "damage-photo-1.jpg",
                "damage-photo-2.jpg"
            ]
        );
        assert_eq!(
            got[2].json(),
            json!({
                "event": "batch_completed",
                "integration_id": "zap",
                "batch": {
                    "id": "b-7", "integration": "sf-cases", "platform": "Salesforce",
                    "started_at": "2026-11-26T10:00:00Z", "finished_at": "2026-11-26T10:01:00Z",
                    "files_total": 12, "files_ok": 11, "files_failed": 1,
                    "by_risk": {"critical": 1, "none": 10},
                    "dashboard_url": "https://proofpix.example/batches/b-7",
                },
            })
        );
        for (d, event) in [
            (&got[3], "batch_failed"),
            (&got[4], "integration_unhealthy"),
        ] {
            assert_eq!(
                d.json(),
                json!({"event": event, "integration_id": "zap", "integration": "photos",
                       "message": "the folder /input is not readable"})
            );
        }

        // The receiver's check is what decides: the same request passes again, and fails with
        // one byte of the body changed or with the signature of another timestamp.
        let client = reqwest::Client::new();
        let replay = |body: Vec<u8>, timestamp: String| {
            let mut request = client.post(env.receiver.url("replay")).body(body);
            for (name, value) in &got[2].headers {
                if !["x-proofpix-timestamp", "host", "content-length"].contains(&name.as_str()) {
                    request = request.header(name, value);
                }
            }
            request.header("x-proofpix-timestamp", timestamp).send()
        };
        let timestamp = got[2].header("x-proofpix-timestamp").to_string();
        let original = replay(got[2].body.clone(), timestamp.clone())
            .await
            .unwrap();
        assert_eq!(original.status(), 200);
        let tampered_body = String::from_utf8(got[2].body.clone())
            .unwrap()
            .replace("\"files_failed\":1", "\"files_failed\":0")
            .into_bytes();
        assert_ne!(tampered_body, got[2].body);
        let tampered = replay(tampered_body, timestamp.clone()).await.unwrap();
        assert_eq!(tampered.status(), 401);
        let shifted = (timestamp.parse::<u64>().unwrap() + 1).to_string();
        let moved = replay(got[2].body.clone(), shifted).await.unwrap();
        assert_eq!(moved.status(), 401);
        assert_eq!(env.receiver.deliveries("replay").len(), 1);
    }

    #[tokio::test]
    async fn the_check_says_what_it_can_and_cannot_verify() {
        let env = env().await;
        env.webhook("signed").await;
        let mut unsigned = env.hook("unsigned");
        unsigned.key = None;
        env.create("unsigned", unsigned).await.unwrap();

        let report = env.host.test("signed").await;
        assert!(report.ok(), "{:?}", report.steps);
        let connection = &report.steps.last().unwrap().detail;
        assert_eq!(
            connection,
            &format!(
                "a webhook URL is set (sealed); it may be on {} or the Zapier and Power Automate \
                 hosts; requests are signed: x-proofpix-signature, HMAC-SHA256; nothing was \
                 sent: a webhook cannot be tested without triggering its flow, so whether the \
                 URL works, and its origin is granted, shows with the first notification",
                env.receiver.base
            )
        );
        let report = env.host.test("unsigned").await;
        assert!(report.ok(), "{:?}", report.steps);
        assert!(
            report.steps.last().unwrap().detail.contains(
                "requests are NOT signed: set `signing_secret` so the receiver can verify them"
            ),
            "{:?}",
            report.steps
        );
        assert_eq!(env.receiver.attempts("signed"), 0, "a check sends nothing");

        // An unsigned request goes out without a signature, and this receiver refuses it.
        let err = env
            .notify("unsigned", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        let PluginError::InvalidConfig(p) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(p.field.as_deref(), Some("signing_secret"));
        assert_eq!(
            p.message,
            "the webhook refused the request (HTTP 401): signature mismatch; the request was \
             not signed; if the receiver expects a signature, set `signing_secret` with \
             `proofpix integration set-secret unsigned signing_secret`"
        );
    }

    /// The issue's point: a source's run triggers the flow, through the subscriptions.
    #[tokio::test]
    async fn a_sources_run_reaches_the_webhook_through_the_notification_policy() {
        let env = env().await;
        env.folder_source("photos", 3).await;
        let mut hook = env.hook("zap");
        hook.subscriptions = Some(Subscriptions {
            sources: vec!["photos".into()],
            events: vec!["high-risk".into(), "batch-completed".into()],
            digest: true,
            ..Subscriptions::default()
        });
        env.create("zap", hook).await.unwrap();
        // Another webhook listening to a different source hears nothing.
        let mut other = env.hook("other");
        other.subscriptions = Some(Subscriptions {
            sources: vec!["sharepoint".into()],
            ..Subscriptions::default()
        });
        env.create("other", other).await.unwrap();

        let report = env
            .host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(report.files.len(), 3);

        let got = env.receiver.deliveries("zap");
        let events: Vec<Value> = got.iter().map(|d| d.json()["event"].clone()).collect();
        assert_eq!(events, ["high_risk_files", "batch_completed"]);
        let digest = got[0].json();
        let files = digest["files"].as_array().unwrap();
        assert_eq!(files.len(), 3, "one digest for the run: {digest}");
        for f in files {
            assert_eq!(f["integration"], "photos");
            assert!(
                matches!(f["risk"].as_str(), Some("high" | "critical")),
                "{f}"
            );
            assert!(
                f["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["category"] == "gps"),
                "{f}"
            );
        }
        let summary = got[1].json();
        assert_eq!(summary["batch"]["integration"], "photos");
        assert_eq!(summary["batch"]["files_total"], 3);
        assert_eq!(env.receiver.attempts("other"), 0);
        assert_eq!(env.audit("notify.sent", "zap").len(), 2);
        assert!(env.audit("notify.sent", "other").is_empty());
    }

    /// A run's failure reaches a notifier that refused it the first time: the message waits in
    /// the notifier's queue and the notify stage delivers it, instead of it being lost.
    #[tokio::test]
    async fn a_failure_notice_the_notifier_refused_is_delivered_later_not_lost() {
        let env = env().await;
        env.folder_source("photos", 1).await;
        let mut hook = env.hook("zap");
        hook.subscriptions = Some(Subscriptions {
            sources: vec!["photos".into()],
            events: vec!["batch-failed".into(), "unhealthy".into()],
            ..Subscriptions::default()
        });
        env.create("zap", hook).await.unwrap();
        // The source's folder is gone: its run cannot happen.
        std::fs::remove_dir_all(env.dir.path().join("photos")).unwrap();
        // The receiver refuses the first notice (HTTP 400: not retried within the call).
        env.receiver
            .script("zap", [Reply::status(400, "busy deploying")]);

        let err = env.host.sync("photos", SyncMode::Incremental).await;
        assert!(err.is_err(), "{err:?}");
        assert_eq!(env.receiver.attempts("zap"), 1, "one refused attempt");
        assert!(env.receiver.deliveries("zap").is_empty());
        assert_eq!(env.audit("notify.failed", "zap").len(), 1);

        env.host.deliver_notifications(true).await;
        let got = env.receiver.deliveries("zap");
        assert_eq!(got.len(), 1, "delivered from the queue");
        let doc = got[0].json();
        assert!(
            matches!(
                doc["event"].as_str(),
                Some("batch_failed" | "integration_unhealthy")
            ),
            "{doc}"
        );
        assert_eq!(doc["integration"], "photos", "{doc}");
        // Delivered once: the queue is empty and a second drain sends nothing.
        env.host.deliver_notifications(true).await;
        assert_eq!(env.receiver.deliveries("zap").len(), 1);
    }

    #[tokio::test]
    async fn setup_refuses_a_path_in_endpoint_and_credential_headers() {
        let env = env().await;
        let mut with_path = env.hook("with-path");
        with_path.config = vec![("endpoint", format!("{}/hooks/x", env.receiver.base))];
        let err = env
            .create("with-path", with_path)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint") && err.contains("without a path"),
            "{err}"
        );
        let mut auth = env.hook("auth");
        auth.config
            .push(("headers", "Authorization: Bearer abc".into()));
        let err = env.create("auth", auth).await.unwrap_err().to_string();
        assert!(
            err.contains("headers") && err.contains("would carry a credential"),
            "{err}"
        );
        let mut many = env.hook("many");
        many.config.push(("max_findings", "500".into()));
        let err = env.create("many", many).await.unwrap_err().to_string();
        assert!(
            err.contains("`max_findings` must be between 0 and 100, got 500"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
mod errors {
    //! Receiver answers as errors the host acts on.
    use super::*;

    #[tokio::test]
    async fn a_deleted_hook_is_a_problem_with_url() {
        let env = env().await;
        env.webhook("gone").await;
        env.receiver
            .script("gone", [Reply::status(410, "This hook has been deleted.")]);
        let err = env
            .notify("gone", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        assert_eq!(
            proofpix_runtime::describe_plugin_error(&err),
            "invalid config field `url`: the webhook answered HTTP 410: the hook was deleted or \
             the URL is wrong; copy the URL again from the receiving app and set it with \
             `proofpix integration set-secret gone url`"
        );
    }

    #[tokio::test]
    async fn a_wrong_signing_secret_is_a_problem_with_signing_secret() {
        let env = env().await;
        let mut hook = env.hook("wrong-key");
        hook.key = Some("not-the-receivers-key");
        env.create("wrong-key", hook).await.unwrap();
        let err = env
            .notify("wrong-key", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidConfig(p) if p.field.as_deref() == Some("signing_secret")
                && p.message.starts_with("the webhook refused the request (HTTP 401): signature mismatch; check that `signing_secret` is the key the receiver verifies with")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn throttling_carries_retry_after_and_the_host_waits_it_out() {
        let env = env().await;
        env.webhook("busy").await;
        let event = Notification::BatchCompleted(batch());
        // Seconds, an HTTP date, and nothing usable.
        let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(20);
        let date = format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            &soon.weekday().to_string()[..3],
            soon.day(),
            &soon.month().to_string()[..3],
            soon.year(),
            soon.hour(),
            soon.minute(),
            soon.second()
        );
        env.receiver.script(
            "busy",
            [
                Reply::status(429, "slow down").with_header("retry-after", "7"),
                Reply::status(429, "").with_header("retry-after", &date),
                Reply::status(429, ""),
            ],
        );
        let waits: Vec<Option<u64>> = {
            let mut waits = Vec::new();
            for _ in 0..3 {
                match env.notify("busy", &event).await {
                    Err(PluginError::RateLimited(r)) => waits.push(r.retry_after_ms),
                    other => panic!("expected rate-limited, got {other:?}"),
                }
            }
            waits
        };
        assert_eq!(waits[0], Some(7_000));
        let by_date = waits[1].unwrap();
        assert!((15_000..=20_000).contains(&by_date), "{date}: {by_date}");
        assert_eq!(waits[2], Some(30_000), "the documented default");

        // Through the host's delivery, a 429 with `Retry-After: 1` is waited out and retried.
        env.folder_source("photos", 1).await;
        let mut hook = env.hook("zap");
        hook.subscriptions = Some(Subscriptions {
            events: vec!["batch-completed".into()],
            ..Subscriptions::default()
        });
        env.create("zap", hook).await.unwrap();
        env.receiver.script(
            "zap",
            [Reply::status(429, "slow down").with_header("retry-after", "1")],
        );
        let started = std::time::Instant::now();
        env.host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
        assert_eq!(env.receiver.attempts("zap"), 2);
        assert_eq!(env.receiver.deliveries("zap").len(), 1);
        let sent = env.audit("notify.sent", "zap");
        assert!(
            sent.len() == 1 && sent[0].details.contains("\"attempts\":2"),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_the_receiver_recovers() {
        let env = env().await;
        env.webhook("flaky").await;
        env.receiver
            .script("flaky", [Reply::status(502, "<html>Bad gateway</html>")]);
        let err = env
            .notify("flaky", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::Transient(m) if m == "the webhook failed (HTTP 502): <html>Bad gateway</html>; retrying"),
            "{err:?}"
        );

        env.folder_source("photos", 1).await;
        let mut hook = env.hook("zap");
        hook.subscriptions = Some(Subscriptions {
            events: vec!["batch-completed".into()],
            ..Subscriptions::default()
        });
        env.create("zap", hook).await.unwrap();
        env.receiver.script(
            "zap",
            [
                Reply::status(500, "internal error"),
                Reply::status(503, "try again"),
            ],
        );
        env.host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(env.receiver.attempts("zap"), 3);
        assert_eq!(env.receiver.deliveries("zap").len(), 1);
        // Each retry is a new request with the notification's one delivery id, so a receiver
        // can drop a repeat whose first answer was lost.
        let ids = env.receiver.delivery_ids("zap");
        assert_eq!(ids.len(), 3);
        assert!(
            ids[0].len() == 32 && ids[0].bytes().all(|b| b.is_ascii_hexdigit()),
            "{ids:?}"
        );
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let other = env.receiver.delivery_ids("flaky");
        assert!(!other.is_empty() && other[0] != ids[0], "{other:?} {ids:?}");
        let sent = env.audit("notify.sent", "zap");
        assert!(
            sent.len() == 1 && sent[0].details.contains("\"attempts\":3"),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn a_host_the_operator_did_not_grant_is_never_reached() {
        let env = env().await;
        // The sealed URL points elsewhere than the granted receiver.
        let mut elsewhere = env.hook("elsewhere");
        elsewhere.url = format!("http://127.0.0.2:9/hooks/steal/{HOOK_TOKEN}");
        env.create("elsewhere", elsewhere).await.unwrap();
        // The URL is right, but the operator granted nothing.
        let mut ungranted = env.hook("ungranted");
        ungranted.grant = OperatorGrant::default();
        env.create("ungranted", ungranted).await.unwrap();
        for id in ["elsewhere", "ungranted"] {
            let err = env
                .notify(
                    id,
                    &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                        1,
                    )])),
                )
                .await
                .unwrap_err();
            let PluginError::InvalidConfig(p) = &err else {
                panic!("{id}: {err:?}")
            };
            assert_eq!(p.field.as_deref(), Some("endpoint"), "{id}");
            assert!(
                p.message.starts_with("request refused by the host")
                    && p.message.contains("the operator must grant it"),
                "{id}: {}",
                p.message
            );
        }
        assert_eq!(env.receiver.attempts("elsewhere"), 0);
        assert_eq!(env.receiver.attempts("ungranted"), 0);
    }
}

// ---------------------------------------------------------------------------------------------
mod secrecy {
    //! The URL never leaves the vault except towards the receiver itself.
    use super::*;

    #[tokio::test]
    async fn the_url_never_appears_in_errors_logs_or_the_audit_trail() {
        let env = env().await;
        env.folder_source("photos", 2).await;
        for id in ["ok", "gone", "busy", "broken"] {
            env.webhook(id).await;
        }
        let mut ungranted = env.hook("ungranted");
        ungranted.grant = OperatorGrant::default();
        env.create("ungranted", ungranted).await.unwrap();
        // Receivers that echo the request (URL included) in their error bodies: once for the
        // run's first notification (four attempts when retryable), once for a direct one.
        let echo = |hook: &str| format!("no route for POST {}", env.receiver.url(hook));
        let faults = |times: usize| {
            [
                ("gone", Reply::status(404, &echo("gone")), times.min(1)),
                (
                    "busy",
                    Reply::status(429, &echo("busy")).with_header("retry-after", "0"),
                    times,
                ),
                ("broken", Reply::status(500, &echo("broken")), times),
            ]
        };
        for (hook, reply, times) in faults(4) {
            env.receiver.script(hook, vec![reply; times]);
        }
        env.host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        for (hook, reply, times) in faults(1) {
            env.receiver.script(hook, vec![reply; times]);
        }

        let mut errors = Vec::new();
        for id in ["ok", "gone", "busy", "broken", "ungranted"] {
            if let Err(e) = env
                .notify(
                    id,
                    &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                        1,
                    )])),
                )
                .await
            {
                errors.push(proofpix_runtime::describe_plugin_error(&e));
            }
            errors.extend(env.host.test(id).await.steps.into_iter().map(|s| s.detail));
        }
        assert!(errors.len() > 5, "{errors:?}");
        // The host scrubs the sealed URL out of the response before the plugin sees it (the
        // plugin's own `[url]` redaction is the second line of defence).
        assert!(
            errors
                .iter()
                .any(|e| e.contains("no route for POST [redacted]")),
            "the receivers' echoes are quoted, redacted: {errors:?}"
        );
        assert!(
            env.receiver.deliveries("ok").len() >= 2,
            "deliveries happened"
        );
        let audit: Vec<String> = env
            .host
            .store()
            .audit_entries(0, 10_000)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {} {} {}", e.action, e.target, e.outcome, e.details))
            .collect();
        assert!(
            audit.iter().any(|a| a.starts_with("notify.failed gone")),
            "{audit:?}"
        );
        let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        assert!(!logs.is_empty());
        for (what, text) in [
            ("logs", logs.as_str()),
            ("errors", &errors.join("\n")),
            ("audit", &audit.join("\n")),
        ] {
            for secret in [HOOK_TOKEN, KEY] {
                assert!(!text.contains(secret), "{what} contain {secret:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 for the receiver (FIPS 180-4, RFC 2104), independent of the host's crates.
// ---------------------------------------------------------------------------------------------

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in padded.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4231 test cases 2 and 6 (a short key, and a key longer than the block), and the empty
/// SHA-256: the receiver's verifier is itself right.
#[test]
fn the_receivers_hmac_matches_the_rfc_test_vectors() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}
