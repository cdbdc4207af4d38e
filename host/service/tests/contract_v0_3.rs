//! What contract 0.3 adds, end to end through the host, with a plugin built directly against
//! `wit/since_v0.3.0` (`tests/plugins/contract-v0-3`, no SDK):
//! - a `download-answer.not-ready` file is retried and parked with its reason, never
//!   recorded with a risk (the path a platform's `202 Accepted` takes);
//! - a content response redirecting to a declared and granted redirect target is followed
//!   without credentials; a redirect anywhere else is refused; a redirect target is never a
//!   first hop;
//! - a `write-result.skipped` write-back is recorded as skipped with its reason, not as
//!   written;
//! - a `plugin-error.egress-refused` names the refused URL, says the operator must grant
//!   the host, and is not retried;
//! - a 0.3 notifier gets the digest's totals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use proofpix_model::{Digest, Notification, PluginError, RiskLevel};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::{FileStatus, Store};
use proofpix_vault::MasterKey;
use serde_json::{Value, json};

const KEY: &str = "k-0123456789abcdef";

#[derive(Default)]
struct Platform {
    /// Readiness questions about `notready`, one per `download` call.
    status_calls: Mutex<u32>,
    /// Content requests, by id, with the API key they carried.
    content: Mutex<Vec<(String, Option<String>)>>,
    /// CDN requests, by path, with the API key they carried.
    cdn: Mutex<Vec<(String, Option<String>)>>,
    /// Ids written back.
    written: Mutex<Vec<String>>,
    /// Digests received.
    notified: Mutex<Vec<Value>>,
    /// The CDN's base URL (for the redirect) and a host naming it that nobody granted.
    cdn_base: Mutex<String>,
    stray_base: Mutex<String>,
}

fn gps_jpeg(seed: u32) -> Vec<u8> {
    let gps = proofpix_fixtures::Gps {
        lat: 1.5,
        lon: 2.5,
        alt: None,
    };
    proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 16,
        height: 16,
        seed,
        exif: Some(proofpix_fixtures::phone_photo(seed, gps)),
        ..Default::default()
    })
}

fn key_of(h: &HeaderMap) -> Option<String> {
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn serve(app: Router) -> (String, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}"), port)
}

/// The API (`base`) and a content host (`cdn`) on another port.
async fn platform() -> (String, String, Arc<Platform>) {
    let shared = Arc::new(Platform::default());
    let cdn = Router::new()
        .route(
            "/{*path}",
            get(
                |State(p): State<Arc<Platform>>, Path(path): Path<String>, h: HeaderMap| async move {
                    p.cdn.lock().unwrap().push((path, key_of(&h)));
                    gps_jpeg(7)
                },
            ),
        )
        .with_state(shared.clone());
    let (cdn_base, cdn_port) = serve(cdn).await;
    *shared.cdn_base.lock().unwrap() = cdn_base.clone();
    // The same server under a name nobody declared or granted.
    *shared.stray_base.lock().unwrap() = format!("http://localhost:{cdn_port}");

    let api = Router::new()
        .route(
            "/files",
            get(|| async {
                axum::Json(json!([
                    {"id": "a", "name": "a.jpg", "etag": "1"},
                    {"id": "notready", "name": "n.jpg", "etag": "1"},
                    {"id": "redirect", "name": "r.jpg", "etag": "1"},
                    {"id": "stray", "name": "s.jpg", "etag": "1"},
                    {"id": "skip", "name": "k.jpg", "etag": "1"},
                ]))
            }),
        )
        .route(
            "/status/{id}",
            get(|State(p): State<Arc<Platform>>| async move {
                *p.status_calls.lock().unwrap() += 1;
                "processing"
            }),
        )
        .route(
            "/files/{id}/content",
            get(
                |State(p): State<Arc<Platform>>, Path(id): Path<String>, h: HeaderMap| async move {
                    p.content.lock().unwrap().push((id.clone(), key_of(&h)));
                    let to = match id.as_str() {
                        "redirect" => p.cdn_base.lock().unwrap().clone(),
                        "stray" => p.stray_base.lock().unwrap().clone(),
                        _ => return gps_jpeg(1).into_response(),
                    };
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, format!("{to}/blob/{id}"))],
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/writeback",
            post(
                |State(p): State<Arc<Platform>>, axum::Json(v): axum::Json<Value>| async move {
                    p.written.lock().unwrap().extend(
                        v["ids"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i.as_str().map(String::from)),
                    );
                    "ok"
                },
            ),
        )
        .route(
            "/notify",
            post(
                |State(p): State<Arc<Platform>>, axum::Json(v): axum::Json<Value>| async move {
                    p.notified.lock().unwrap().push(v);
                    "ok"
                },
            ),
        )
        .with_state(shared.clone());
    let (base, _) = serve(api).await;
    (base, cdn_base, shared)
}

async fn host(base: &str, cdn: &str) -> (Host, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("store"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        first_party_plugins: false,
        data_dir: Some(tmp.path().to_path_buf()),
        pipeline: PipelineOptions {
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            wait_for_retries: Some(Duration::from_secs(30)),
            ..PipelineOptions::default()
        },
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
    let report = host
        .install_plugin(
            &std::fs::read(proofpix_plugin_artifacts::TEST_CONTRACT_V0_3).unwrap(),
            &dev,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.plugin.contract_version(), "0.3.0");
    assert_eq!(
        report.plugin.info().endpoints[0].redirect_targets,
        vec!["{config.cdn_url}".to_string()]
    );
    for (id, probe) in [("c03", ""), ("c03-probe", "cdn")] {
        let spec = IntegrationSpec {
            id: id.into(),
            plugin: "contract-v03".into(),
            config: BTreeMap::from([
                ("base_url".to_string(), base.to_string()),
                ("cdn_url".to_string(), cdn.to_string()),
                ("probe".to_string(), probe.to_string()),
            ]),
            secrets: BTreeMap::from([("api_key".to_string(), proofpix_vault::Secret::new(KEY))]),
            grant: OperatorGrant {
                hosts: vec![base.to_string(), cdn.to_string()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        };
        host.create_integration(spec, "test").await.unwrap();
    }
    (host, tmp)
}

#[tokio::test]
async fn contract_0_3_not_ready_redirect_targets_and_skipped_write_backs() {
    let (base, cdn, platform) = platform().await;
    let (host, _tmp) = host(&base, &cdn).await;

    let report = host.sync("c03", SyncMode::Incremental).await.unwrap();
    let file = |id: &str| {
        report
            .files
            .iter()
            .find(|f| f.file.id == id)
            .unwrap_or_else(|| panic!("{id} not reported: {report:#?}"))
    };

    // Not ready: asked once per delivery, parked with the plugin's reason (escaped), no risk.
    let record = host.store().file("c03", "notready").unwrap().unwrap();
    assert_eq!(record.last_result, None, "{record:?}");
    assert_eq!(record.status, FileStatus::Parked, "{record:?}");
    assert!(file("notready").report.is_none(), "{:?}", file("notready"));
    assert_eq!(
        *platform.status_calls.lock().unwrap(),
        5,
        "one per delivery"
    );
    let parked = host.store().parked("c03", 10).unwrap();
    let reason = |id: &str| {
        parked
            .iter()
            .find(|p| p.dedup_key.starts_with(&format!("{id}@")))
            .and_then(|p| p.last_error.clone())
            .unwrap_or_else(|| panic!("{id} not parked: {parked:?}"))
    };
    let nr = reason("notready");
    assert!(
        nr.contains("not ready yet") && nr.contains("still processing the upload"),
        "{nr}"
    );
    assert!(!nr.contains('\u{1b}') && !nr.contains('\n'), "{nr:?}");
    assert!(
        platform
            .content
            .lock()
            .unwrap()
            .iter()
            .all(|(id, _)| id != "notready"),
        "nothing was fetched for it"
    );

    // The redirect to the declared, granted target: followed, without the API key, which the
    // API itself got.
    let r = file("redirect");
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(
        r.report.as_ref().unwrap().risk,
        proofpix_analysis::RiskLevel::Critical
    );
    let cdn_seen = platform.cdn.lock().unwrap().clone();
    assert_eq!(cdn_seen, vec![("blob/redirect".to_string(), None)]);
    assert!(
        platform
            .content
            .lock()
            .unwrap()
            .iter()
            .all(|(_, k)| k.as_deref() == Some(KEY)),
        "the API gets its credentials"
    );
    // A redirect to a host nobody granted is refused (and never reached).
    let stray = reason("stray");
    assert!(stray.contains("refused"), "{stray}");
    assert!(
        host.store()
            .file("c03", "stray")
            .unwrap()
            .unwrap()
            .last_result
            .is_none()
    );

    // Written and skipped write-backs, each recorded as what it was.
    let a = file("a");
    assert!(a.written_back && a.write_back_skipped.is_none(), "{a:?}");
    let k = file("skip");
    assert!(!k.written_back, "{k:?}");
    assert_eq!(
        k.write_back_skipped.as_deref(),
        Some("write_back is off for this channel")
    );
    assert!(k.report.is_some() && k.error.is_none(), "{k:?}");
    assert_eq!(report.write_backs_skipped, 1);
    let mut written = platform.written.lock().unwrap().clone();
    written.sort();
    assert_eq!(written, ["a", "redirect"]);
    let skipped = host.store().file("c03", "skip").unwrap().unwrap();
    assert_eq!(skipped.status, FileStatus::Skipped, "{skipped:?}");
    assert_eq!(
        skipped.last_error.as_deref(),
        Some("write-back skipped: write_back is off for this channel")
    );
    assert!(skipped.last_result.is_some());
    let wa = host.store().file("c03", "a").unwrap().unwrap();
    assert_eq!(wa.status, FileStatus::Written, "{wa:?}");

    // The next sync leaves the skipped file alone: done for its version.
    let again = host.sync("c03", SyncMode::Incremental).await.unwrap();
    assert!(again.files.iter().all(|f| f.file.id != "skip"), "{again:?}");
    assert_eq!(again.write_backs_skipped, 0);
    assert_eq!(
        host.store().file("c03", "skip").unwrap().unwrap().status,
        FileStatus::Skipped
    );
}

#[tokio::test]
async fn contract_0_3_egress_refusals_are_typed_and_digests_carry_totals() {
    let (base, cdn, platform) = platform().await;
    let (host, _tmp) = host(&base, &cdn).await;

    // The redirect target as a first hop: refused by the host, passed on typed by the plugin.
    let (plugin, ctx) = host.context("c03-probe", false).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    let err = session.check().await.unwrap_err();
    let Some(PluginError::EgressRefused(r)) = err.plugin_error() else {
        panic!("{err:?}")
    };
    assert_eq!(r.url, format!("{cdn}/probe"));
    let text = err.to_string();
    assert!(
        text.contains(&format!("{cdn}/probe")) && text.contains("must grant the host"),
        "{text}"
    );
    assert!(
        !err.is_retryable(),
        "an egress refusal waits for the operator"
    );
    assert!(platform.cdn.lock().unwrap().is_empty(), "never reached");
    let test = host.test("c03-probe").await;
    assert!(!test.ok(), "{:?}", test.steps);

    // A 0.3 notifier gets the digest's totals, whatever the alerts were cut to.
    let (plugin, ctx) = host.context("c03", false).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    let digest = Digest {
        alerts: Vec::new(),
        total: 120,
        by_risk: vec![(RiskLevel::Critical, 40), (RiskLevel::High, 80)],
        window_start: "2026-12-06T10:00:00Z".into(),
        window_end: "2026-12-06T11:00:00Z".into(),
    };
    session
        .notify(&Notification::HighRiskFiles(digest))
        .await
        .unwrap();
    let got = platform.notified.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![json!({
            "alerts": 0,
            "total": 120,
            "by_risk": [["critical", 40], ["high", 80]],
            "window_start": "2026-12-06T10:00:00Z",
            "window_end": "2026-12-06T11:00:00Z",
        })]
    );
}
