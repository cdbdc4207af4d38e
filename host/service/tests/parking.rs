//! A file that keeps failing is parked with its last error, costs only itself (the batch
//! finishes and the other files are analysed), and runs again once an operator requeues it.
//!
//! Drives the well-behaved test plugin against a small platform on loopback whose file `b`
//! answers every download with 503 until the test mends it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::MasterKey;
use serde_json::json;

#[derive(Default)]
struct Platform {
    /// Downloads of `b` seen.
    b_downloads: AtomicU32,
    /// Whether `b` answers with its bytes (else 503).
    b_mended: AtomicBool,
}

fn jpeg(seed: u32) -> Vec<u8> {
    proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 16,
        height: 16,
        seed,
        ..Default::default()
    })
}

async fn platform() -> (String, Arc<Platform>) {
    let shared = Arc::new(Platform::default());
    let app = Router::new()
        .route(
            "/files",
            get(|| async {
                axum::Json(json!([
                    {"id": "a", "name": "a.jpg", "etag": "1"},
                    {"id": "b", "name": "b.jpg", "etag": "1"},
                    {"id": "c", "name": "c.jpg", "etag": "1"},
                ]))
            }),
        )
        .route(
            "/files/{id}/content",
            get(
                |State(p): State<Arc<Platform>>, Path(id): Path<String>| async move {
                    match id.as_str() {
                        "b" => {
                            p.b_downloads.fetch_add(1, Ordering::SeqCst);
                            if p.b_mended.load(Ordering::SeqCst) {
                                jpeg(2).into_response()
                            } else {
                                (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
                            }
                        }
                        "a" => jpeg(1).into_response(),
                        _ => jpeg(3).into_response(),
                    }
                },
            ),
        )
        .route("/writeback", axum::routing::post(|| async { "ok" }))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, shared)
}

async fn host(base: &str) -> (Host, tempfile::TempDir) {
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
    host.install_plugin(
        &std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap(),
        &dev,
        "test",
    )
    .await
    .unwrap();
    let spec = IntegrationSpec {
        id: "wb".into(),
        plugin: "well-behaved".into(),
        config: BTreeMap::from([("base_url".to_string(), base.to_string())]),
        secrets: BTreeMap::from([("token".to_string(), proofpix_vault::Secret::new("t"))]),
        grant: OperatorGrant {
            hosts: vec![base.to_string()],
            allow_loopback: true,
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
    (host, tmp)
}

#[tokio::test]
async fn a_file_that_keeps_failing_is_parked_with_its_error_and_runs_again_when_requeued() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host(&base).await;

    let report = host.sync("wb", SyncMode::Incremental).await.unwrap();
    // The batch finished: the other files were analysed and written back.
    let ok: Vec<&str> = report
        .files
        .iter()
        .filter(|f| f.error.is_none() && f.written_back)
        .map(|f| f.file.id.as_str())
        .collect();
    assert_eq!(ok.len(), 2, "{:?}", report.files);
    assert!(ok.contains(&"a") && ok.contains(&"c"), "{ok:?}");
    assert_eq!(report.parked, 1, "{report:?}");
    let failed = report
        .files
        .iter()
        .find(|f| f.file.id == "b")
        .expect("b is reported");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains("HTTP 503"), "{error}");

    // Parked with its last error after every delivery the queue allows, each a download.
    let parked = host.store().parked("wb", 10).unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(parked[0].dedup_key.contains('b'), "{parked:?}");
    assert_eq!(parked[0].attempts, 5, "the store's default deliveries");
    assert!(
        parked[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{parked:?}"
    );
    assert_eq!(platform.b_downloads.load(Ordering::SeqCst), 5);
    assert_eq!(host.store().depth("wb").unwrap().parked, 1);

    // A later sync does not loop on it: it stays parked, untouched.
    let again = host.sync("wb", SyncMode::Incremental).await.unwrap();
    assert!(again.files.iter().all(|f| f.file.id != "b"), "{again:?}");
    assert_eq!(platform.b_downloads.load(Ordering::SeqCst), 5);

    // The platform is mended and an operator requeues it (the API's and dashboard's Retry):
    // the next run analyses it and nothing is parked any more.
    platform.b_mended.store(true, Ordering::SeqCst);
    assert!(host.store().requeue("wb", parked[0].item).unwrap());
    let mended = host.sync("wb", SyncMode::Incremental).await.unwrap();
    let b = mended
        .files
        .iter()
        .find(|f| f.file.id == "b")
        .expect("b analysed");
    assert!(b.error.is_none() && b.written_back, "{b:?}");
    assert!(host.store().parked("wb", 10).unwrap().is_empty());
    assert_eq!(host.store().depth("wb").unwrap().parked, 0);
}

/// One sync of an integration at a time, whoever asks: a second sync started while one
/// runs is refused with its reason (on a cluster, by whichever node holds the lease), and
/// the lease is free again when the first ends.
#[tokio::test]
async fn a_second_sync_of_the_same_integration_while_one_runs_is_refused_until_it_ends() {
    let (base, _platform) = platform().await;
    let (host, _tmp) = host(&base).await;

    let (first, second) = tokio::join!(
        host.sync("wb", SyncMode::Incremental),
        host.sync("wb", SyncMode::Incremental)
    );
    let (ran, refused) = match (first, second) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        (a, b) => panic!("one sync runs and one is refused: {a:?} / {b:?}"),
    };
    assert!(
        matches!(refused, proofpix_service::ServiceError::SyncElsewhere(ref id) if id == "wb"),
        "{refused}"
    );
    assert_eq!(ran.batch.total, 3, "{ran:?}");
    // Released: the next sync runs (and finds nothing new).
    let next = host.sync("wb", SyncMode::Incremental).await.unwrap();
    assert_eq!(next.unchanged, 3, "{next:?}");
}
