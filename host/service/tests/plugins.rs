//! Installing, upgrading without downtime, rolling back and quarantining
//! plugins, through the host library.

use std::collections::BTreeMap;
use std::sync::Arc;

use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec, ServiceError};
use proofpix_signing::KeyPair;
use proofpix_store::Store;
use proofpix_vault::MasterKey;

struct Env {
    _tmp: tempfile::TempDir,
    home: std::path::PathBuf,
    host: Host,
}

async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let store = Arc::new(Store::open(&home, &MasterKey::generate()).unwrap());
    let options = HostOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        ),
        data_dir: Some(home.clone()),
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    Env {
        _tmp: tmp,
        home,
        host,
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn grant_all() -> InstallOptions {
    InstallOptions {
        allow_unsigned: false,
        grants: vec!["all".into()],
    }
}

fn trust(e: &Env, key: &KeyPair) {
    let dir = e.home.join("trust");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test.pub"), key.public().to_line()).unwrap();
}

#[tokio::test]
async fn first_party_plugins_are_verified_and_recorded_on_first_start() {
    let e = env().await;
    let records = e.host.store().plugins().unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    for id in ["local-folder", "salesforce", "sharepoint", "slack", "teams"] {
        assert!(ids.contains(&id), "{id} recorded");
    }
    assert!(
        records
            .iter()
            .all(|r| r.signer.as_deref() == Some("proofpix-first-party-dev"))
    );
}

#[tokio::test]
async fn signed_untrusted_unsigned_and_tampered_plugins() {
    let e = env().await;
    let key = KeyPair::generate("acme");
    let signed = proofpix_signing::sign(
        &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED),
        &key,
        serde_json::Value::Null,
    )
    .unwrap();

    let err = e
        .host
        .install_plugin(&signed, &grant_all(), "test")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("which is not in the trust store"),
        "{err}"
    );

    let unsigned = read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED);
    let err = e
        .host
        .install_plugin(&unsigned, &grant_all(), "test")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refused: the plugin is not signed"),
        "{err}"
    );

    let mut tampered = signed.clone();
    tampered[100] ^= 1;
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
    };
    let err = e
        .host
        .install_plugin(&tampered, &dev, "test")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("modified after it was signed"),
        "a tampered file is refused even with the development flag: {err}"
    );

    trust(&e, &key);
    let report = e
        .host
        .install_plugin(&signed, &grant_all(), "test")
        .await
        .unwrap();
    assert_eq!(report.signer.as_deref(), Some("acme"));
    let record = e.host.store().plugin("well-behaved").unwrap().unwrap();
    assert_eq!(record.signer.as_deref(), Some("acme"));
    assert!(e.home.join("plugins/well-behaved.wasm").exists());
    let mut audit = Vec::new();
    e.host.store().audit_export(&mut audit).unwrap();
    assert!(
        String::from_utf8(audit)
            .unwrap()
            .contains("\"plugin.install\"")
    );
}

#[tokio::test]
async fn permissions_must_be_granted() {
    let e = env().await;
    let dev = |grants: Vec<String>| InstallOptions {
        allow_unsigned: true,
        grants,
    };
    let err = e
        .host
        .install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED),
            &dev(vec![]),
            "test",
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("asks for permissions that are not granted")
            && msg.contains("\"network:{config.base_url} (with credentials)\""),
        "{msg}"
    );
    let asked = {
        let rt = e.host.runtime();
        let p = rt
            .load(&read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED))
            .await
            .unwrap();
        proofpix_service::permissions(p.info())
    };
    let report = e
        .host
        .install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED),
            &dev(asked.clone()),
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.permissions, asked);
}

async fn install_v1_with_integration(e: &Env, upgrade_check: &str) {
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
    };
    e.host
        .install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED),
            &dev,
            "test",
        )
        .await
        .unwrap();
    let spec = IntegrationSpec {
        id: "wb".into(),
        plugin: "well-behaved".into(),
        config: BTreeMap::from([("upgrade_check".to_string(), upgrade_check.to_string())]),
        secrets: BTreeMap::from([("token".to_string(), proofpix_vault::Secret::new("t"))]),
        ..IntegrationSpec::default()
    };
    e.host.create_integration(spec, "test").await.unwrap();
}

#[tokio::test]
async fn an_upgrade_swaps_new_sessions_while_open_ones_finish_on_the_old_version() {
    let e = env().await;
    install_v1_with_integration(&e, "pass").await;
    let (plugin, ctx) = e.host.context("wb", false).await.unwrap();
    let mut old_session = plugin.session(&ctx).await.unwrap();

    // 2.0.0 also offers remediation: a permission 1.0.0 did not ask for.
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["capability:remediation".into()],
    };
    let report = e
        .host
        .install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2),
            &dev,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.upgraded_from.as_deref(), Some("1.0.0"));

    assert_eq!(
        old_session.describe().await.unwrap().version,
        "1.0.0",
        "the open session keeps the old version"
    );
    let (plugin, ctx) = e.host.context("wb", false).await.unwrap();
    assert_eq!(
        plugin
            .session(&ctx)
            .await
            .unwrap()
            .describe()
            .await
            .unwrap()
            .version,
        "2.0.0"
    );
    // State carries over: it lives in the host, not in the plugin.
    e.host.store().kv_set("wb", "calls", b"41", None).unwrap();
    let mut s = plugin.session(&ctx).await.unwrap();
    s.discover(None).await.unwrap();
    assert_eq!(
        e.host.store().kv_get("wb", "calls").unwrap(),
        Some(b"42".to_vec())
    );
}

#[tokio::test]
async fn an_upgrade_that_fails_its_check_rolls_back() {
    let e = env().await;
    install_v1_with_integration(&e, "fail").await;
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["capability:remediation".into()],
    };
    let err = e
        .host
        .install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2),
            &dev,
            "test",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("was rolled back")
            && err.to_string().contains("version 2.0.0 cannot work"),
        "{err}"
    );
    assert_eq!(
        e.host.plugin("well-behaved").unwrap().info().version,
        "1.0.0"
    );
    assert_eq!(
        e.host
            .store()
            .plugin("well-behaved")
            .unwrap()
            .unwrap()
            .version,
        "1.0.0"
    );
}

#[tokio::test]
async fn a_plugin_that_keeps_trapping_is_quarantined_with_its_reason() {
    let e = env().await;
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
    };
    e.host
        .install_plugin(&read(proofpix_plugin_artifacts::TEST_HOSTILE), &dev, "test")
        .await
        .unwrap();
    let spec = IntegrationSpec {
        id: "bad".into(),
        plugin: "hostile".into(),
        config: BTreeMap::from([("mode".to_string(), "panic".to_string())]),
        ..IntegrationSpec::default()
    };
    e.host.create_integration(spec, "test").await.unwrap();
    for _ in 0..proofpix_service::BREAKER_FAILURES {
        let _ = e
            .host
            .sync("bad", proofpix_pipeline::SyncMode::Incremental)
            .await;
    }
    let reason = e.host.quarantine_reason("hostile").expect("quarantined");
    assert!(
        reason.contains("runtime failures") && reason.contains("panicked"),
        "{reason}"
    );
    let err = e
        .host
        .sync("bad", proofpix_pipeline::SyncMode::Incremental)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Plugin(ref m) if m.contains("is quarantined")),
        "{err}"
    );
    e.host.release_plugin("hostile", "test").unwrap();
    assert!(e.host.quarantine_reason("hostile").is_none());
}

#[tokio::test]
async fn installed_plugins_load_again_after_a_restart_and_can_be_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let key = MasterKey::generate();
    let options = || HostOptions {
        data_dir: Some(home.clone()),
        ..HostOptions::default()
    };
    {
        let store = Arc::new(Store::open(&home, &key).unwrap());
        let host = Host::new(store, options()).await.unwrap();
        let dev = InstallOptions {
            allow_unsigned: true,
            grants: vec!["all".into()],
        };
        host.install_plugin(
            &read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED),
            &dev,
            "test",
        )
        .await
        .unwrap();
    }
    let store = Arc::new(Store::open(&home, &key).unwrap());
    let host = Host::new(store, options()).await.unwrap();
    assert!(
        host.plugin("well-behaved").is_some(),
        "loaded from the plugins folder"
    );
    host.remove_plugin("well-behaved", "test").unwrap();
    assert!(host.plugin("well-behaved").is_none());
    assert!(
        host.remove_plugin("local-folder", "test")
            .unwrap_err()
            .to_string()
            .contains("ships with ProofPix")
    );
}
