//! A plugin built against contract 0.1 (without the SDK, against the frozen
//! `wit/since_v0.1.0`) runs unchanged on a host whose latest contract is newer (0.3),
//! through the typed conversions of `host/runtime/src/since_v0_1.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::MasterKey;
use serde_json::{Value, json};

async fn platform() -> (String, Arc<Mutex<Vec<String>>>) {
    let written: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route("/files", get(|| async { axum::Json(json!([{"id": "a", "name": "a.jpg", "etag": "1"}, {"id": "b", "name": "b.jpg", "etag": "1"}])) }))
        .route(
            "/files/{id}/content",
            get(|| async {
                let gps = proofpix_fixtures::Gps { lat: 1.5, lon: 2.5, alt: None };
                proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec { width: 16, height: 16, seed: 1, exif: Some(proofpix_fixtures::phone_photo(1, gps)), ..Default::default() })
            }),
        )
        .route(
            "/writeback",
            post(|State(w): State<Arc<Mutex<Vec<String>>>>, axum::Json(v): axum::Json<Value>| async move {
                w.lock().unwrap().extend(v["ids"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(String::from)));
                "ok"
            }),
        )
        .with_state(written.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, written)
}

#[tokio::test]
async fn a_plugin_built_against_0_1_runs_unchanged_on_a_newer_host() {
    let tmp = tempfile::tempdir().unwrap();
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
    let report = host
        .install_plugin(
            &std::fs::read(proofpix_plugin_artifacts::TEST_LEGACY_V0_1).unwrap(),
            &dev,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.plugin.contract_version(), "0.1.0");
    assert!(
        !report.plugin.info().write_back_idempotent,
        "0.1 manifests get the later versions' neutral values"
    );
    assert!(report.plugin.info().remediations.is_empty());
    assert!(report.plugin.info().oauth_dialect.is_none());
    assert!(
        report
            .plugin
            .info()
            .endpoints
            .iter()
            .all(|e| e.redirect_targets.is_empty())
    );

    let (base, written) = platform().await;
    let spec = IntegrationSpec {
        id: "legacy".into(),
        plugin: "legacy".into(),
        config: BTreeMap::from([("base_url".to_string(), base.clone())]),
        grant: OperatorGrant {
            hosts: vec![base],
            allow_loopback: true,
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
    let test = host.test("legacy").await;
    assert!(test.ok(), "{:?}", test.steps);
    let report = host
        .sync("legacy", proofpix_pipeline::SyncMode::Incremental)
        .await
        .unwrap();
    assert_eq!(report.batch.ok, 2);
    assert!(report.files.iter().all(|f| f.written_back));
    let mut ids = written.lock().unwrap().clone();
    ids.sort();
    assert_eq!(ids, ["a", "b"], "each written back once");
    assert_eq!(
        report.files[0].report.as_ref().unwrap().risk,
        proofpix_analysis::RiskLevel::Critical
    );

    // Remediation is a 0.2 capability: a 0.1 plugin says so clearly.
    let (plugin, ctx) = host.context("legacy", false).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    let err = session
        .upload_request(&report.files[0].file, 10, "image/jpeg")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("remediation needs contract 0.2; this plugin was built against 0.1.0"),
        "{err}"
    );
}
