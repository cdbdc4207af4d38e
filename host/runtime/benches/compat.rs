//! Per-call cost of a contract 0.1 plugin running through its compatibility
//! module (`since_v0_1`), next to a plugin on the newest contract (0.3, through
//! the SDK, no conversion) making the same call. The figures in
//! `BENCHMARKS.md` were measured with the serde round trip these typed
//! conversions replaced, against the SDK's plugin on 0.2.
//!
//! Run: `cargo bench -p proofpix-runtime --bench compat`
//!
//! Plugins: `tests/plugins/legacy-v0-1` (0.1, written without the SDK) and
//! `tests/plugins/well-behaved-v2` (0.3 since the SDK moved to it). Both list
//! `{base_url}/files`, point `download` at `/files/{id}/content` and post the
//! batch's ids to `/writeback`; the "platform" is a small axum server on
//! loopback in the same process. One live session per plugin (instantiation
//! is not in the loop). Groups, each with `v0.1-compat` and `v0.3`:
//!
//! - `describe`: the manifest; 0.1's is lifted and converted to the latest
//!   types (typed, field by field); 0.3's is the latest already. The
//!   manifests differ (0.3's has more fields and endpoints), so this is not
//!   like for like.
//! - `download`: no I/O; one file record in, one request out (both
//!   converted for 0.1).
//! - `write_back_100`: 100 results in (converted for 0.1), one loopback POST,
//!   100 outcomes out.
//! - `discover_100`: one loopback GET of 100 files, 100 files out (converted
//!   for 0.1). The 0.3 plugin also reads and writes one state key and logs a
//!   line in this call; the 0.1 plugin does not.
//!
//! The differences between the two lines of a group are the figure; the
//! loopback HTTP time is common to both.

use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use criterion::{Criterion, criterion_group, criterion_main};
use proofpix_model::{FileResult, Finding, RemoteFile, RiskLevel};
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::{IntegrationContext, Runtime, RuntimeConfig, Session, StaticCredentials};
use proofpix_vault::Secret;

const BATCH: usize = 100;

async fn platform() -> String {
    let files: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| serde_json::json!({"id": format!("file-{i:04}"), "name": format!("IMG_{i:04}.jpg"), "etag": format!("\"{i}-1\"")}))
        .collect();
    let files = serde_json::Value::Array(files);
    let app = Router::new()
        .route(
            "/files",
            get(move || {
                let files = files.clone();
                async move { axum::Json(files) }
            }),
        )
        .route(
            "/writeback",
            post(|_body: axum::body::Bytes| async { "ok" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    base
}

fn result(i: usize) -> FileResult {
    FileResult {
        file: RemoteFile {
            id: format!("file-{i:04}"),
            name: format!("IMG_{i:04}.jpg"),
            mime_type: Some("image/jpeg".into()),
            size: Some(1_726),
            modified: Some("2026-11-26T10:00:00Z".into()),
            version: format!("\"{i}-1\""),
            container: Some("folder".into()),
            web_url: None,
            path: Some(format!("/photos/IMG_{i:04}.jpg")),
            properties: vec![],
        },
        format: "jpeg".into(),
        risk: RiskLevel::High,
        score: 80,
        findings: vec![
            Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::High,
                source: "exif:GPS/0x0002".into(),
                value: "48.1,2.3 (±10 m)".into(),
            },
            Finding {
                category: "serial".into(),
                code: "device.serial".into(),
                severity: RiskLevel::Medium,
                source: "exif:ExifIFD/0xa431".into(),
                value: "SN-4***".into(),
            },
        ],
        summary: "GPS 48.1,2.3 (±10 m); owner J*** D**; serial SN-4***".into(),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "bench".into(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let base = rt.block_on(platform());
    let runtime = Runtime::new(RuntimeConfig {
        limits: Limits::default(),
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let grant = OperatorGrant {
        hosts: vec![base.clone()],
        allow_loopback: true,
        ..OperatorGrant::default()
    };
    let mut sessions: Vec<(&str, Session)> = Vec::new();
    for (name, path) in [
        ("v0.1-compat", proofpix_plugin_artifacts::TEST_LEGACY_V0_1),
        ("v0.3", proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2),
    ] {
        let wasm = std::fs::read(path).expect("plugin built");
        let plugin = rt.block_on(runtime.load(&wasm)).expect("load");
        let contract = if name.starts_with("v0.1") {
            "0.1."
        } else {
            "0.3."
        };
        assert!(
            plugin.contract_version().starts_with(contract),
            "{name}: built against contract {}",
            plugin.contract_version()
        );
        let ctx = IntegrationContext::new("bench")
            .with_config("base_url", &base)
            .with_grant(grant.clone())
            .with_credentials(Arc::new(StaticCredentials::new(
                "authorization",
                "Bearer ",
                &Secret::new("t0k3n"),
            )));
        let mut session = rt.block_on(plugin.session(&ctx)).expect("session");
        // Both plugins make the same calls successfully before timing.
        let page = rt.block_on(session.discover(None)).expect("discover");
        assert_eq!(page.files.len(), BATCH, "{name}");
        sessions.push((name, session));
    }
    let file = result(0).file;
    let results: Vec<FileResult> = (0..BATCH).map(result).collect();

    let mut group = c.benchmark_group("describe");
    for (name, session) in &mut sessions {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(rt.block_on(session.describe()).expect("describe")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("download");
    for (name, session) in &mut sessions {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(rt.block_on(session.download(&file)).expect("download")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("write_back_100");
    for (name, session) in &mut sessions {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let out = rt
                    .block_on(session.write_back(&results))
                    .expect("write-back");
                assert_eq!(out.len(), BATCH);
                black_box(out)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("discover_100");
    for (name, session) in &mut sessions {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(rt.block_on(session.discover(None)).expect("discover")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
