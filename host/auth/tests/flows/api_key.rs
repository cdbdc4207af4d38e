use std::sync::Arc;

use proofpix_auth::{
    ApiKeyAuth, AuthError, AuthScheme, CredentialInputs, Credentials, MemoryPersistence,
};
use proofpix_vault::Secret;

use crate::common;

fn key_inputs(value: &str) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::ApiKey(ApiKeyAuth {
            secret_field: "api_key".into(),
            header: "X-Api-Key".into(),
            prefix: "Key ".into(),
        }),
        config: Default::default(),
        secrets: common::secrets(&[("api_key", value)]),
    }
}

#[tokio::test]
async fn a_static_key_is_injected_with_its_prefix_and_never_refreshed() {
    common::init();
    let store = MemoryPersistence::new();
    let creds = Credentials::builder(
        "hook",
        key_inputs("static-key-123456"),
        common::http(),
        Arc::new(store.clone()),
    )
    .build()
    .unwrap();
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header.name, "x-api-key");
    assert_eq!(header.value.expose(), "Key static-key-123456");
    let err = creds
        .invalidate_and_refresh(&header.value)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::ApiKeyRejected { .. }));
    assert_eq!(
        err.to_string(),
        "the platform rejected the API key; replace the key in the integration's secret field 'api_key'"
    );
    assert_eq!(
        store.save_count(),
        0,
        "a static key is configuration, not a token"
    );
}

#[tokio::test]
async fn the_none_scheme_injects_nothing() {
    common::init();
    let inputs = CredentialInputs {
        scheme: AuthScheme::None,
        config: Default::default(),
        secrets: Default::default(),
    };
    let creds = Credentials::builder(
        "folder",
        inputs,
        common::http(),
        Arc::new(MemoryPersistence::new()),
    )
    .build()
    .unwrap();
    assert!(creds.authorization().await.unwrap().is_none());
    assert!(matches!(
        creds
            .invalidate_and_refresh(&Secret::new("x"))
            .await
            .unwrap_err(),
        AuthError::NoCredentials
    ));
}

#[tokio::test]
async fn a_missing_secret_is_named_when_the_credentials_are_built() {
    common::init();
    let err = Credentials::builder(
        "hook",
        key_inputs(""),
        common::http(),
        Arc::new(MemoryPersistence::new()),
    )
    .build()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the integration's secret field 'api_key' has no value; set it and run `proofpix integration test` again"
    );
}
