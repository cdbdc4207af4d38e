//! A notifier's subscriptions name events the host knows (issue 12): an unknown name is
//! refused when the integration is saved, with the valid names, instead of silently never
//! matching; the contract's own spellings are accepted and stored as the host's.

use std::collections::BTreeMap;
use std::sync::Arc;

use proofpix_analysis::RiskLevel;
use proofpix_service::{Host, HostOptions, IntegrationSpec, Subscriptions};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};

async fn host() -> (tempfile::TempDir, Host) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(tmp.path(), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        // A development build signs its first-party plugins (Teams here) with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    (tmp, Host::new(store, options).await.unwrap())
}

async fn teams(host: &Host, events: &[&str]) -> Result<(), String> {
    let spec = IntegrationSpec {
        id: "alerts".into(),
        plugin: "teams".into(),
        secrets: BTreeMap::from([(
            "webhook_url".to_string(),
            Secret::new("https://alerts.invalid/workflows/1"),
        )]),
        subscriptions: Some(Subscriptions {
            events: events.iter().map(|e| e.to_string()).collect(),
            ..Subscriptions::default()
        }),
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn an_unknown_event_name_is_refused_with_the_valid_ones() {
    let (_tmp, host) = host().await;
    let error = teams(&host, &["high-risk", "batch-complete"])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "integration alerts: unknown event \"batch-complete\" in the subscriptions; the events \
         are high-risk, batch-completed, batch-failed, unhealthy (the contract's high-risk-files \
         and integration-unhealthy are accepted too)"
    );
    assert!(
        host.store().integration("alerts").unwrap().is_none(),
        "nothing saved"
    );
}

#[tokio::test]
async fn the_contracts_event_names_are_accepted_and_stored_as_the_hosts() {
    let (_tmp, host) = host().await;
    teams(&host, &["high-risk-files", "integration-unhealthy"])
        .await
        .unwrap();
    let subs = host.subscriptions("alerts").unwrap().unwrap();
    assert_eq!(subs.events, ["high-risk", "unhealthy"]);
    assert_eq!(
        subs.summary(),
        "high-risk, unhealthy from * (min risk high)"
    );
}

#[tokio::test]
async fn a_risk_floor_below_medium_or_an_unknown_word_is_refused() {
    let (_tmp, host) = host().await;
    let spec = IntegrationSpec {
        id: "alerts".into(),
        plugin: "teams".into(),
        secrets: BTreeMap::from([(
            "webhook_url".to_string(),
            Secret::new("https://alerts.invalid/workflows/1"),
        )]),
        subscriptions: Some(Subscriptions {
            min_risk: RiskLevel::Low,
            ..Subscriptions::default()
        }),
        ..IntegrationSpec::default()
    };
    let error = host
        .create_integration(spec, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("min_risk low is too low") && error.contains("medium, high or critical"),
        "{error}"
    );
    // A word that names no level is refused where the JSON is read, with the valid ones.
    let error = serde_json::from_str::<Subscriptions>(r#"{"min_risk": "severe"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"severe\"") && error.contains("none, low, medium, high or critical"),
        "{error}"
    );
}

#[tokio::test]
async fn a_source_has_no_subscriptions_and_a_notifier_without_any_has_the_defaults() {
    let (tmp, host) = host().await;
    host.create_integration(
        IntegrationSpec {
            id: "photos".into(),
            plugin: "local-folder".into(),
            config: BTreeMap::from([("folder".to_string(), tmp.path().display().to_string())]),
            grant: proofpix_policy::OperatorGrant {
                mounts: vec!["/input".into()],
                ..Default::default()
            },
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
    assert_eq!(host.subscriptions("photos").unwrap(), None);
    host.create_integration(
        IntegrationSpec {
            id: "alerts".into(),
            plugin: "teams".into(),
            secrets: BTreeMap::from([(
                "webhook_url".to_string(),
                Secret::new("https://alerts.invalid/workflows/1"),
            )]),
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
    assert_eq!(
        host.subscriptions("alerts").unwrap(),
        Some(Subscriptions::default())
    );
}
