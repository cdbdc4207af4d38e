//! Remediation end to end: the well-behaved test plugin at 2.0.0 (contract 0.3, built on the
//! SDK) declares replace-with-sanitised and quarantine; a small platform emulator holds the
//! files, takes uploads and quarantines. 1.0.0 of the same plugin declares no remediation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use proofpix_analysis::{Analyzer, Options, Policy, RiskLevel};
use proofpix_model::{RemediationAction, RemediationKind};
use proofpix_pipeline::SyncMode;
use proofpix_policy::{OperatorGrant, RemediationPolicy};
use proofpix_service::{
    Host, HostOptions, InstallOptions, IntegrationSpec, RemediationStatus, ServiceError,
};
use proofpix_store::Store;
use proofpix_vault::MasterKey;
use serde_json::json;

/// What the emulated platform holds and saw.
#[derive(Default)]
struct Platform {
    /// id → (etag, bytes).
    files: BTreeMap<String, (u32, Vec<u8>)>,
    uploads: Vec<String>,
    quarantined: Vec<String>,
}

type Shared = Arc<Mutex<Platform>>;

fn risky_jpeg(seed: u32) -> Vec<u8> {
    let gps = proofpix_fixtures::Gps {
        lat: 52.37,
        lon: 4.9,
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

async fn platform() -> (String, Shared) {
    let shared: Shared = Arc::default();
    {
        let mut p = shared.lock().unwrap();
        p.files.insert("a".into(), (1, risky_jpeg(1)));
        p.files.insert("b".into(), (1, risky_jpeg(2)));
    }
    let app = Router::new()
        .route(
            "/files",
            get(|State(s): State<Shared>| async move {
                let p = s.lock().unwrap();
                let list: Vec<_> = p
                    .files
                    .iter()
                    .map(|(id, (etag, _))| json!({"id": id, "name": format!("{id}.jpg"), "etag": etag.to_string()}))
                    .collect();
                axum::Json(list)
            }),
        )
        .route(
            "/files/{id}/content",
            get(|State(s): State<Shared>, Path(id): Path<String>| async move {
                s.lock().unwrap().files.get(&id).map(|(_, b)| b.clone()).unwrap_or_default()
            })
            .put(
                |State(s): State<Shared>, Path(id): Path<String>, body: Bytes| async move {
                    let mut p = s.lock().unwrap();
                    p.uploads.push(id.clone());
                    if let Some((etag, bytes)) = p.files.get_mut(&id) {
                        *etag += 1;
                        *bytes = body.to_vec();
                    }
                    "stored"
                },
            ),
        )
        .route(
            "/files/{id}/quarantine",
            post(|State(s): State<Shared>, Path(id): Path<String>| async move {
                s.lock().unwrap().quarantined.push(id.clone());
                axum::Json(json!({"tombstone": format!("/quarantine/{id}")}))
            }),
        )
        .route("/writeback", post(|| async { "ok" }))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

/// A host with one plugin (`wasm`) installed and an integration `wb` on the emulator.
async fn host_with(wasm: &str, base: &str) -> (Host, tempfile::TempDir) {
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
    host.install_plugin(&std::fs::read(wasm).unwrap(), &dev, "test")
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

/// Files are analysed concurrently, so actions run in the order analyses finish.
fn sorted(ids: &[String]) -> Vec<String> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

fn policy(actions: &[RemediationKind], simulate: bool) -> RemediationPolicy {
    RemediationPolicy {
        actions: actions.to_vec(),
        simulate,
        ..RemediationPolicy::default()
    }
}

fn statuses(
    r: &[proofpix_service::Remediation],
) -> Vec<(String, RemediationKind, RemediationStatus)> {
    let mut v: Vec<_> = r
        .iter()
        .map(|r| (r.file_id.clone(), r.action, r.status))
        .collect();
    v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    v
}

#[tokio::test]
async fn a_simulation_reports_what_it_would_do_and_changes_nothing() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    let before = platform.lock().unwrap().files.clone();
    host.set_remediation(
        "wb",
        Some(policy(
            &[
                RemediationKind::ReplaceWithSanitised,
                RemediationKind::Quarantine,
            ],
            true,
        )),
        "test",
    )
    .await
    .unwrap();

    let (report, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert_eq!(report.batch.ok, 2);
    use RemediationKind::{Quarantine, ReplaceWithSanitised};
    use RemediationStatus::Simulated;
    assert_eq!(
        statuses(&done),
        [
            ("a".into(), ReplaceWithSanitised, Simulated),
            ("a".into(), Quarantine, Simulated),
            ("b".into(), ReplaceWithSanitised, Simulated),
            ("b".into(), Quarantine, Simulated),
        ],
        "{done:#?}"
    );
    let replace = done
        .iter()
        .find(|r| r.action == ReplaceWithSanitised)
        .unwrap();
    assert!(
        replace
            .detail
            .starts_with("would replace the file with a sanitised copy of "),
        "{}",
        replace.detail
    );
    let quarantine = done.iter().find(|r| r.action == Quarantine).unwrap();
    assert_eq!(
        quarantine.detail,
        format!("would move {} to quarantine", quarantine.file_id)
    );

    let p = platform.lock().unwrap();
    assert!(p.uploads.is_empty() && p.quarantined.is_empty());
    assert_eq!(p.files, before, "not a byte changed on the platform");
    let audited = host
        .store()
        .audit_latest(50)
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action.starts_with("remediation.") && !e.action.starts_with("remediation.policy.")
        })
        .count();
    assert_eq!(audited, 4, "every simulated action is audited");
    let set = host
        .store()
        .audit_latest(50)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "remediation.policy.set" && e.actor == "test")
        .count();
    assert_eq!(set, 1, "setting the policy is audited with its actor");
}

#[tokio::test]
async fn an_enabled_replacement_leaves_a_file_that_analyses_clean_and_is_not_repeated() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    host.set_remediation(
        "wb",
        Some(policy(&[RemediationKind::ReplaceWithSanitised], false)),
        "test",
    )
    .await
    .unwrap();

    let (report, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert!(
        report
            .files
            .iter()
            .all(|f| f.report.as_ref().unwrap().risk == RiskLevel::Critical)
    );
    assert_eq!(
        statuses(&done),
        [
            (
                "a".into(),
                RemediationKind::ReplaceWithSanitised,
                RemediationStatus::Applied
            ),
            (
                "b".into(),
                RemediationKind::ReplaceWithSanitised,
                RemediationStatus::Applied
            ),
        ],
        "{done:#?}"
    );
    let analyzer = Analyzer::new(Policy::default(), Options::default());
    {
        let p = platform.lock().unwrap();
        assert_eq!(sorted(&p.uploads), ["a", "b"], "each once, in any order");
        for (id, (etag, bytes)) in &p.files {
            assert_eq!(*etag, 2, "{id} was replaced once");
            let r = analyzer.analyze(bytes);
            assert_eq!(r.risk, RiskLevel::None, "{id}: {:?}", r.findings);
            assert!(r.error.is_none(), "{id} is still a readable image");
        }
    }

    // The next sync sees the new versions, analyses them clean, and does nothing.
    let (report, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert_eq!(report.files.len(), 2, "the replaced files are new versions");
    assert!(
        report
            .files
            .iter()
            .all(|f| f.report.as_ref().unwrap().risk == RiskLevel::None)
    );
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(platform.lock().unwrap().uploads.len(), 2);
}

#[tokio::test]
async fn a_second_sync_does_not_remediate_again() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    host.set_remediation(
        "wb",
        Some(policy(&[RemediationKind::Quarantine], false)),
        "test",
    )
    .await
    .unwrap();
    let (_, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert!(
        done.iter().all(|r| r.status == RemediationStatus::Applied
            && r.tombstone.as_deref() == Some(&format!("/quarantine/{}", r.file_id))),
        "{done:#?}"
    );
    assert_eq!(sorted(&platform.lock().unwrap().quarantined), ["a", "b"]);

    // The emulator still lists the files at the same versions; re-analysing them hands the
    // same risky files to remediation again, and the store's record stops it.
    let (report, done) = host
        .sync_and_remediate("wb", SyncMode::Reanalyse)
        .await
        .unwrap();
    assert_eq!(report.files.len(), 2);
    assert!(
        done.iter()
            .all(|r| r.status == RemediationStatus::AlreadyDone),
        "{done:#?}"
    );
    assert_eq!(
        sorted(&platform.lock().unwrap().quarantined),
        ["a", "b"],
        "not twice"
    );
    let (_, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(platform.lock().unwrap().quarantined.len(), 2);
}

#[tokio::test]
async fn a_delayed_action_waits_and_changes_nothing_yet() {
    let (base, platform) = platform().await;
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    let mut p = policy(&[RemediationKind::Quarantine], false);
    p.delay_secs = 3600;
    host.set_remediation("wb", Some(p), "test").await.unwrap();
    let (_, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    assert!(
        done.iter().all(|r| r.status == RemediationStatus::Pending),
        "{done:#?}"
    );
    assert_eq!(done.len(), 2);
    assert!(platform.lock().unwrap().quarantined.is_empty());
}

#[tokio::test]
async fn a_plugin_not_declaring_an_action_cannot_be_asked_for_it() {
    let (base, platform) = platform().await;

    // 1.0.0 declares no remediation at all.
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED, &base).await;
    let err = host
        .set_remediation(
            "wb",
            Some(policy(&[RemediationKind::Quarantine], false)),
            "test",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "integration wb: remediation action quarantine is not offered by plugin well-behaved (it offers: none); remove it from the policy"
    );
    assert!(host.remediation_policy("wb").unwrap().is_none());
    // Nor does the runtime pass such a call on to the plugin.
    let (plugin, ctx) = host.context("wb", false).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    let file = proofpix_model::RemoteFile {
        id: "a".into(),
        name: "a.jpg".into(),
        mime_type: None,
        size: None,
        modified: None,
        version: "1".into(),
        container: None,
        web_url: None,
        path: None,
        properties: vec![],
    };
    let err = session
        .remediate(&RemediationAction {
            kind: RemediationKind::Quarantine,
            file: file.clone(),
            risk: proofpix_model::RiskLevel::Critical,
            reason: "test".into(),
            label: None,
            simulate: false,
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not declare the remediation"),
        "{err}"
    );
    let err = session
        .upload_request(&file, 10, "image/jpeg")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not declare the remediation"),
        "{err}"
    );

    // 2.0.0 declares two; a third is refused with what it does offer.
    let (host, _tmp2) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    let err = host
        .set_remediation(
            "wb",
            Some(policy(&[RemediationKind::RestrictSharing], true)),
            "test",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::InvalidConfig { .. }));
    assert!(
        err.to_string()
            .contains("(it offers: replace-with-sanitised, quarantine)"),
        "{err}"
    );
    assert!(platform.lock().unwrap().quarantined.is_empty());
}

/// With the pixel stage on, a photo whose only risk is a Wi-Fi QR code on the wall is high
/// risk; a sanitised copy would still show the code, so replace-with-sanitised is reported
/// as not applicable (audited, with the reason) and quarantine acts on it.
#[tokio::test]
async fn a_risk_in_the_pixels_is_quarantined_not_sanitised() {
    let (base, platform) = platform().await;
    {
        let mut p = platform.lock().unwrap();
        p.files.clear();
        p.files.insert(
            "a".into(),
            (
                1,
                proofpix_fixtures::qr_jpeg("WIFI:T:WPA;S:Office;P:hunter22;;", 6, 480),
            ),
        );
    }
    let (host, _tmp) = host_with(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2, &base).await;
    host.set_pixels("wb", true, "test").unwrap();
    assert!(host.pixels("wb").unwrap());
    // Updating the integration's form keeps the setting, as it keeps a remediation policy.
    let record = host.integration("wb").unwrap();
    host.create_integration(
        IntegrationSpec {
            id: "wb".into(),
            plugin: "well-behaved".into(),
            config: BTreeMap::from([("base_url".to_string(), base.clone())]),
            grant: record.grant.clone(),
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
    assert!(
        host.pixels("wb").unwrap(),
        "an update keeps the pixel setting"
    );
    host.set_remediation(
        "wb",
        Some(policy(
            &[
                RemediationKind::ReplaceWithSanitised,
                RemediationKind::Quarantine,
            ],
            false,
        )),
        "test",
    )
    .await
    .unwrap();

    let (report, done) = host
        .sync_and_remediate("wb", SyncMode::Incremental)
        .await
        .unwrap();
    let analysed = report.files[0].report.as_ref().expect("analysed");
    assert_eq!(analysed.risk, RiskLevel::High, "{analysed:?}");
    assert!(analysed.risk_from_pixels());
    use RemediationKind::{Quarantine, ReplaceWithSanitised};
    assert_eq!(
        statuses(&done),
        [
            (
                "a".into(),
                ReplaceWithSanitised,
                RemediationStatus::NotApplicable
            ),
            ("a".into(), Quarantine, RemediationStatus::Applied),
        ],
        "{done:#?}"
    );
    let why = &done
        .iter()
        .find(|r| r.action == ReplaceWithSanitised)
        .unwrap()
        .detail;
    assert!(why.contains("what the picture shows"), "{why}");
    let p = platform.lock().unwrap();
    assert!(p.uploads.is_empty(), "no sanitised copy uploaded");
    assert_eq!(p.quarantined, ["a"]);
}
