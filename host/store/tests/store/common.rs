//! Shared helpers: a populated store, a logical dump for comparisons (the settable clock is
//! the conformance suite's, re-exported).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::{MasterKey, Secret};
use time::OffsetDateTime;

/// The secrets the tests store; the leak tests grep for each of them.
pub const CLIENT_SECRET: &str = "cs-7f3a9c1e-NEVER-IN-LOGS";
pub const PASSWORD: &str = "pw-hunter2-b8d04e-NEVER-IN-LOGS";
pub const ACCESS_TOKEN: &str = "at-00D5g000004-NEVER-IN-LOGS";
pub const REFRESH_TOKEN: &str = "rt-5Aep861-NEVER-IN-LOGS";
pub const ALL_SECRETS: [&str; 4] = [CLIENT_SECRET, PASSWORD, ACCESS_TOKEN, REFRESH_TOKEN];

pub use crate::conformance::{T0, TestClock};

pub fn open(dir: &Path, key: &MasterKey, clock: &TestClock) -> Store {
    Store::open_with(dir, key, clock.options()).unwrap()
}

pub fn integration(id: &str, now: OffsetDateTime) -> IntegrationRecord {
    let mut rec = IntegrationRecord::new(id, "salesforce", "0.1.0", now);
    rec.config.insert(
        "instance_url".into(),
        "https://example.my.salesforce.com".into(),
    );
    rec
}

pub fn tokens() -> TokenSet {
    TokenSet {
        access_token: Secret::new(ACCESS_TOKEN),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        expires_at: Some(T0 + Duration::from_secs(3600)),
        scope: Some("api refresh_token".into()),
        context: BTreeMap::from([(
            "instance_url".into(),
            "https://example.my.salesforce.com".into(),
        )]),
    }
}

pub fn file(integration: &str, remote_id: &str, version: &str) -> FileRecord {
    FileRecord {
        integration: integration.into(),
        remote_id: remote_id.into(),
        version: version.into(),
        name: format!("IMG_{remote_id}.jpg"),
        content_hash: Some("ab".repeat(32)),
        last_result: None,
        status: FileStatus::Pending,
        attempts: 0,
        last_error: None,
        updated_at: T0,
        web_url: None,
    }
}

pub fn result(integration: &str, remote_id: &str, version: &str) -> NewResult {
    NewResult {
        integration: integration.into(),
        remote_id: remote_id.into(),
        file_version: version.into(),
        risk: proofpix_store::RiskLevel::High,
        score: 87,
        report_json: r#"{"findings":[{"category":"location","tag":"GPSLatitude"}]}"#.into(),
    }
}

/// A store with two integrations, secrets, tokens, state, files, results, a batch.
pub fn populate(store: &Store) {
    let now = store.now();
    for id in ["sf-prod", "sp-main"] {
        store
            .put_integration(&integration(id, now), "operator:ada")
            .unwrap();
    }
    store
        .set_secret(
            "sf-prod",
            "client_secret",
            &Secret::new(CLIENT_SECRET),
            "operator:ada",
        )
        .unwrap();
    store
        .set_secret(
            "sp-main",
            "password",
            &Secret::new(PASSWORD),
            "operator:ada",
        )
        .unwrap();
    store.set_tokens("sf-prod", &tokens(), "oauth2").unwrap();
    store
        .set_cursor("sf-prod", Some("2026-01-05T08:00:00Z"))
        .unwrap();
    store.kv_set("sf-prod", "page", b"17", Some(1024)).unwrap();
    let files: Vec<_> = (0..20)
        .map(|i| file("sf-prod", &format!("068{i:04}"), "v1"))
        .collect();
    store.put_files(&files).unwrap();
    let ids = store
        .add_results(
            (0..5)
                .map(|i| result("sf-prod", &format!("068{i:04}"), "v1"))
                .collect(),
        )
        .unwrap();
    let mut batch = store.start_batch("sf-prod").unwrap();
    batch.total = 5;
    batch.ok = 5;
    batch.result_ids = ids;
    batch.by_risk.insert("high".into(), 5);
    batch.finished_at = Some(now);
    batch.duration = Some(Duration::from_secs(3));
    store.put_batch(&batch).unwrap();
}

/// Everything readable through the public API, as text, for before/after comparisons.
pub fn dump(store: &Store) -> Result<String, String> {
    let e = |e: StoreError| e.to_string();
    let mut out = String::new();
    for i in store.integrations().map_err(e)? {
        out += &format!("{i:?}\n");
        for f in store.secret_fields(&i.id).map_err(e)? {
            let s = store.secret(&i.id, &f).map_err(e)?.unwrap();
            out += &format!("secret {}/{f}={}\n", i.id, s.expose());
        }
        if let Some(t) = store.tokens(&i.id).map_err(e)? {
            out += &format!(
                "tokens {} {} {:?} {:?} {:?}\n",
                t.access_token.expose(),
                t.refresh_token
                    .as_ref()
                    .map(|r| r.expose().to_owned())
                    .unwrap_or_default(),
                t.expires_at,
                t.scope,
                t.context
            );
        }
        out += &format!("cursor {:?}\n", store.cursor(&i.id).map_err(e)?);
        for k in store.kv_keys(&i.id, "").map_err(e)? {
            out += &format!("kv {k}={:?}\n", store.kv_get(&i.id, &k).map_err(e)?);
        }
        out += &format!("kv usage {}\n", store.kv_usage(&i.id).map_err(e)?);
        for f in store.files(&i.id, None, usize::MAX).map_err(e)? {
            out += &format!("{f:?}\n");
        }
    }
    for id in 1..=store.result_count().map_err(e)? + 5 {
        if let Some(r) = store.result(id).map_err(e)? {
            out += &format!("{r:?}\n");
        }
    }
    for b in store.recent_batches(None, usize::MAX).map_err(e)? {
        out += &format!("{b:?}\n");
    }
    for a in store.audit_entries(0, usize::MAX).map_err(e)? {
        out += &format!("{a:?}\n");
    }
    Ok(out)
}
