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
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
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
        repin: false,
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
    let first_party =
        proofpix_signing::PublicKey::from_line(proofpix_plugin_artifacts::FIRST_PARTY_PUBLIC_KEY)
            .unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.signer.as_deref() == Some(first_party.name.as_str())
                && r.key_id.as_deref() == Some(first_party.id().as_str()))
    );
}

/// A host over a fresh store, with the development-build opt-in as given.
async fn host_trusting_development(trust_development_build: bool) -> (tempfile::TempDir, Host) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let store = Arc::new(Store::open(&home, &MasterKey::generate()).unwrap());
    let options = HostOptions {
        data_dir: Some(home),
        trust_development_build,
        ..HostOptions::default()
    };
    (tmp, Host::new(store, options).await.unwrap())
}

#[tokio::test]
async fn a_development_build_s_plugins_are_trusted_only_by_explicit_choice() {
    // Built without PROOFPIX_FIRST_PARTY_KEY (as tests are), the first-party plugins
    // are signed with a key this build made; the committed key is gone.
    let development = std::hint::black_box(proofpix_plugin_artifacts::FIRST_PARTY_DEVELOPMENT);
    assert!(
        development,
        "this test needs a development build (PROOFPIX_FIRST_PARTY_KEY unset)"
    );
    let (_tmp, host) = host_trusting_development(false).await;
    assert!(
        host.plugin("slack").is_none() && host.store().plugins().unwrap().is_empty(),
        "no built-in plugin is loaded without the opt-in, and the host still starts"
    );
    let slack = proofpix_plugin_artifacts::first_party_plugin("slack").unwrap();
    let err = host
        .install_plugin(slack, &grant_all(), "test")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not in the trust store"),
        "a development-key-signed file is refused like any untrusted one: {err}"
    );

    let (_tmp, host) = host_trusting_development(true).await;
    assert!(host.plugin("slack").is_some(), "loaded with the opt-in");
}

#[tokio::test]
async fn a_plugin_id_is_pinned_to_the_key_that_first_installed_it() {
    let e = env().await;
    let acme = KeyPair::generate("acme");
    let mallory = KeyPair::generate("mallory");
    trust(&e, &acme);
    let dir = e.home.join("trust");
    std::fs::write(dir.join("mallory.pub"), mallory.public().to_line()).unwrap();
    let wb = read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED);
    let v2 = read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2);
    let sign = |file: &[u8], key: &KeyPair| {
        proofpix_signing::sign(file, key, serde_json::Value::Null).unwrap()
    };
    e.host
        .install_plugin(&sign(&wb, &acme), &grant_all(), "test")
        .await
        .unwrap();

    // Another trusted key cannot take the id over.
    let err = e
        .host
        .install_plugin(&sign(&v2, &mallory), &grant_all(), "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&acme.public().id())
            && err.contains(&mallory.public().id())
            && err.contains("--repin"),
        "the refusal names both keys and the way out: {err}"
    );
    assert_eq!(
        e.host.plugin("well-behaved").unwrap().info().version,
        "1.0.0"
    );
    // Nor can an unsigned file, even with the development flag.
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    assert!(e.host.install_plugin(&v2, &dev, "test").await.is_err());
    // Nor a built-in plugin's id.
    let (slack, _) =
        proofpix_signing::split(proofpix_plugin_artifacts::first_party_plugin("slack").unwrap())
            .unwrap();
    let err = e
        .host
        .install_plugin(&sign(slack, &mallory), &grant_all(), "test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is pinned to key"), "{err}");

    // The same key upgrades freely.
    e.host
        .install_plugin(&sign(&v2, &acme), &grant_all(), "test")
        .await
        .unwrap();

    // An explicit re-pin is accepted and audited with both key ids.
    let repin = InstallOptions {
        repin: true,
        ..grant_all()
    };
    let report = e
        .host
        .install_plugin(&sign(&wb, &mallory), &repin, "operator:test")
        .await
        .unwrap();
    assert_eq!(report.signer.as_deref(), Some("mallory"));
    let record = e.host.store().plugin("well-behaved").unwrap().unwrap();
    assert_eq!(record.key_id, Some(mallory.public().id()));
    let mut audit = Vec::new();
    e.host.store().audit_export(&mut audit).unwrap();
    let audit = String::from_utf8(audit).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("\"plugin.repin\"") && l.contains("well-behaved"))
        .expect("the re-pin is audited");
    assert!(
        line.contains(&acme.public().id()) && line.contains(&mallory.public().id()),
        "{line}"
    );
}

#[tokio::test]
async fn the_prompt_lists_secret_fields_and_token_urls_and_a_moved_token_url_needs_a_grant() {
    let e = env().await;
    let boxp = e.host.plugin("box").unwrap();
    let info = boxp.info().clone();
    let asked = proofpix_service::permissions(&info);
    let proofpix_runtime::contract::AuthScheme::Oauth2ClientCredentials(oauth) = &info.auth else {
        panic!("box uses client credentials");
    };
    let token_line = format!("token-url:{}", oauth.token_url);
    assert!(asked.contains(&token_line), "{asked:?}");
    let secret = oauth.client_secret_field.clone().unwrap();
    assert!(
        asked.contains(&format!(
            "secret:{secret} -> the token URL {}",
            oauth.token_url
        )),
        "{asked:?}"
    );
    for f in info.config.iter().filter(|f| f.secret) {
        assert!(
            asked
                .iter()
                .any(|l| l.starts_with(&format!("secret:{} -> ", f.name))),
            "secret field {} is listed: {asked:?}",
            f.name
        );
    }

    // An upgrade that moves the token URL asks for a permission the old version's
    // grant does not hold, so the install is refused until it is granted again.
    let mut moved = info.clone();
    if let proofpix_runtime::contract::AuthScheme::Oauth2ClientCredentials(o) = &mut moved.auth {
        o.token_url = "https://collector.attacker.example/token".into();
    }
    let asked_now = proofpix_service::permissions(&moved);
    let new: Vec<&String> = asked_now.iter().filter(|p| !asked.contains(p)).collect();
    assert!(
        new.contains(&&"token-url:https://collector.attacker.example/token".to_string())
            && new
                .iter()
                .any(|l| l.starts_with(&format!("secret:{secret} -> ")) && l.contains("attacker")),
        "{new:?}"
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
        repin: false,
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
        repin: false,
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
        repin: false,
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
        repin: false,
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
        repin: false,
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
        repin: false,
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
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    {
        let store = Arc::new(Store::open(&home, &key).unwrap());
        let host = Host::new(store, options()).await.unwrap();
        let dev = InstallOptions {
            allow_unsigned: true,
            grants: vec!["all".into()],
            repin: false,
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

/// An upgrade leaves no precompiled code of the replaced version behind (a Python component's
/// is tens of MB), and removing a plugin deletes its own.
#[tokio::test]
async fn an_upgrade_and_a_removal_delete_the_replaced_precompiled_code() {
    use sha2::Digest as _;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cache = tmp.path().join("cache");
    let store = Arc::new(Store::open(&home, &MasterKey::generate()).unwrap());
    let host = Host::new(
        store,
        HostOptions {
            cache_dir: Some(cache.clone()),
            data_dir: Some(home.clone()),
            trust_development_build: true,
            ..HostOptions::default()
        },
    )
    .await
    .unwrap();
    let e = Env {
        _tmp: tempfile::tempdir().unwrap(),
        home,
        host,
    };
    let artifacts = |wasm: &str| -> usize {
        let hash = hex::encode(sha2::Sha256::digest(read(wasm)));
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{hash}-"))
            })
            .count()
    };
    let (v1, v2) = (
        proofpix_plugin_artifacts::TEST_WELL_BEHAVED,
        proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2,
    );
    install_v1_with_integration(&e, "pass").await;
    assert_eq!(artifacts(v1), 2, "the artifact and its MAC");

    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    e.host
        .install_plugin(&read(v2), &dev, "test")
        .await
        .unwrap();
    assert_eq!(artifacts(v1), 0, "the replaced version's code is gone");
    assert_eq!(artifacts(v2), 2);

    e.host.delete_integration("wb", "test").await.unwrap();
    e.host.remove_plugin("well-behaved", "test").unwrap();
    assert_eq!(artifacts(v2), 0, "a removed plugin's code is gone");
}
