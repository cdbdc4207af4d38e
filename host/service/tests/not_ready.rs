//! A file whose bytes were not fully read is never recorded with a risk: a platform that
//! answers its content request with `202 Accepted` (the bytes are not ready) or cuts the body
//! short of its `Content-Length` gets the file retried and, if that keeps happening, parked
//! with the reason, with no result; once the platform serves it, it is analysed.
//!
//! Drives the well-behaved test plugin against a small platform on loopback: `b` answers 202
//! with `Retry-After: 0` until the test mends it, `t` always announces more bytes than it sends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
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
    /// Whether `b` answers with its bytes (else 202).
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
                    {"id": "t", "name": "t.jpg", "etag": "1"},
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
                                (StatusCode::ACCEPTED, [(header::RETRY_AFTER, "0")]).into_response()
                            }
                        }
                        "a" => jpeg(1).into_response(),
                        _ => {
                            // Announces the whole file, sends half of it, then the
                            // connection breaks (a streamed body, so hyper sends the
                            // announced length as it is instead of checking it).
                            let bytes = jpeg(3);
                            let half = bytes[..bytes.len() / 2].to_vec();
                            let body =
                                axum::body::Body::from_stream(futures_util::stream::iter(vec![
                                    Ok(half),
                                    Err(std::io::Error::other("connection cut")),
                                ]));
                            ([(header::CONTENT_LENGTH, bytes.len().to_string())], body)
                                .into_response()
                        }
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
async fn a_file_whose_bytes_never_fully_arrive_is_parked_with_the_reason_and_no_risk() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host(&base).await;

    let report = host.sync("wb", SyncMode::Incremental).await.unwrap();
    let a = report.files.iter().find(|f| f.file.id == "a").expect("a");
    assert!(a.report.is_some() && a.error.is_none(), "{a:?}");
    for id in ["b", "t"] {
        if let Some(f) = report.files.iter().find(|f| f.file.id == id) {
            assert!(
                f.report.is_none(),
                "{id} analysed from bytes that never arrived: {f:?}"
            );
        }
        let record = host
            .store()
            .file("wb", id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} unknown; report: {report:#?}"));
        assert_eq!(record.last_result, None, "{id} has a result: {record:?}");
        assert_eq!(
            record.status,
            proofpix_store::FileStatus::Parked,
            "{record:?}"
        );
    }
    assert_eq!(report.parked, 2, "{report:?}");

    let parked = host.store().parked("wb", 10).unwrap();
    let reason = |id: &str| {
        parked
            .iter()
            .find(|p| p.dedup_key.starts_with(&format!("{id}@")))
            .and_then(|p| p.last_error.clone())
            .unwrap_or_else(|| panic!("{id} not parked: {parked:?}"))
    };
    let b = reason("b");
    assert!(b.contains("HTTP 202") && b.contains("not ready"), "{b}");
    assert_eq!(
        platform.b_downloads.load(Ordering::SeqCst),
        5,
        "one try per delivery"
    );
    let t = reason("t");
    assert!(!t.is_empty(), "{t}");

    // The platform finishes preparing `b`; an operator requeues it: analysed, with a risk.
    platform.b_mended.store(true, Ordering::SeqCst);
    let item = host
        .store()
        .parked("wb", 10)
        .unwrap()
        .into_iter()
        .find(|p| p.dedup_key.starts_with("b@"))
        .unwrap()
        .item;
    assert!(host.store().requeue("wb", item).unwrap());
    let mended = host.sync("wb", SyncMode::Incremental).await.unwrap();
    let b = mended
        .files
        .iter()
        .find(|f| f.file.id == "b")
        .expect("b analysed");
    assert!(b.report.is_some() && b.error.is_none(), "{b:?}");
    assert!(
        host.store()
            .file("wb", "b")
            .unwrap()
            .unwrap()
            .last_result
            .is_some()
    );
}
