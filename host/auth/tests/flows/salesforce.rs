use proofpix_auth::{AuthError, AuthScheme, CredentialInputs};
use proofpix_emulators::{ErrorReply, Fault, keys, salesforce};
use reqwest::Method;
use serde_json::json;

use crate::common::{
    self, authorize_in_browser, call, code_inputs, credentials, jwt_inputs, oauth,
};

async fn start() -> (
    proofpix_emulators::Emulator,
    std::sync::Arc<common::EmuClock>,
) {
    let (harness, clock) = common::harness();
    let sf = salesforce::start(salesforce::SalesforceConfig::default(), harness)
        .await
        .unwrap();
    (sf, clock)
}

fn limits(sf: &proofpix_emulators::Emulator) -> url::Url {
    sf.url("/services/data/v60.0/limits")
}

#[tokio::test]
async fn the_password_flow_sends_password_and_security_token_concatenated() {
    let (sf, clock) = start().await;
    let (creds, store) = credentials(
        "sf",
        "Salesforce",
        common::salesforce_password(&sf, salesforce::fixtures::SECURITY_TOKEN),
        clock,
    );
    assert_eq!(creds.dialect().provider_name, "Salesforce");

    let header = creds.authorization().await.unwrap().expect("a header");
    assert_eq!(header.name, "authorization");
    assert_eq!(call(Method::GET, limits(&sf), &header).await.0, 200);

    let sent = sf.log().to_path(salesforce::TOKEN_PATH);
    assert_eq!(sent.len(), 1);
    let form = sent[0].form();
    assert_eq!(form["grant_type"], "password");
    assert_eq!(
        form["password"],
        format!(
            "{}{}",
            salesforce::fixtures::PASSWORD,
            salesforce::fixtures::SECURITY_TOKEN
        )
    );
    // The client secret went to the token endpoint and nowhere else.
    assert_eq!(
        sf.log()
            .mentioning(salesforce::fixtures::CLIENT_SECRET)
            .len(),
        1
    );
    assert!(store.get("sf").is_some(), "tokens were persisted");
    common::finish(&[&sf]);
}

#[tokio::test]
async fn salesforce_tokens_without_expires_in_last_the_session_timeout_from_issued_at_ms() {
    let (sf, clock) = start().await;
    let (creds, store) = credentials(
        "sf",
        "Salesforce",
        common::salesforce_password(&sf, salesforce::fixtures::SECURITY_TOKEN),
        clock.clone(),
    );
    creds.authorization().await.unwrap();
    let tokens = store.get("sf").unwrap();
    assert_eq!(
        tokens.expires_at,
        Some(clock.0.now() + time::Duration::hours(2))
    );
    assert_eq!(
        tokens.context["issued_at"],
        clock.0.unix_millis().to_string()
    );
    assert_eq!(
        tokens.context["instance_url"],
        sf.base_url().as_str().trim_end_matches('/')
    );
    assert_eq!(
        tokens.context["organization_id"],
        salesforce::fixtures::ORG_ID
    );
    assert_eq!(tokens.context["user_id"], salesforce::fixtures::USER_ID);
    assert_eq!(
        creds.context()["instance_url"],
        tokens.context["instance_url"]
    );

    // Within the session: cached. Past 2 h minus the skew: a new password grant.
    clock.0.advance(time::Duration::minutes(118));
    creds.authorization().await.unwrap();
    assert_eq!(sf.log().count(salesforce::TOKEN_PATH), 1);
    clock.0.advance(time::Duration::seconds(61));
    creds.authorization().await.unwrap();
    assert_eq!(sf.log().count(salesforce::TOKEN_PATH), 2);
    common::finish(&[&sf]);
}

#[tokio::test]
async fn a_wrong_security_token_is_reported_as_such() {
    let (sf, clock) = start().await;
    let (creds, _) = credentials(
        "sf",
        "Salesforce",
        common::salesforce_password(&sf, "WrongTokenXYZ"),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::UserRejected { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Salesforce rejected the user's credentials: wrong username, password or security token; Salesforce wants the password followed by the user's current security token (reset it under Settings > Reset My Security Token), and the org must allow the username-password flow (Salesforce said: invalid_grant: authentication failure)"
    );
    common::finish(&[&sf]);
}

#[tokio::test]
async fn a_wrong_consumer_secret_names_the_consumer_secret() {
    let (sf, clock) = start().await;
    let mut inputs = common::salesforce_password(&sf, salesforce::fixtures::SECURITY_TOKEN);
    inputs.secrets = common::secrets(&[
        ("client_secret", "not-the-consumer-secret"),
        ("password", salesforce::fixtures::PASSWORD),
        ("security_token", salesforce::fixtures::SECURITY_TOKEN),
    ]);
    let (creds, _) = credentials("sf", "Salesforce", inputs, clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ClientRejected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("consumer secret is wrong"),
        "{err}"
    );
    common::finish(&[&sf]);
}

#[tokio::test]
async fn an_expired_session_is_replaced_once_on_unauthorized() {
    let (sf, clock) = start().await;
    let (creds, _) = credentials(
        "sf",
        "Salesforce",
        common::salesforce_password(&sf, salesforce::fixtures::SECURITY_TOKEN),
        clock,
    );
    let first = creds.authorization().await.unwrap().unwrap();
    // The org's session timeout is shorter than the assumed 2 h: the platform says 401 first.
    sf.tokens().revoke_all_access();
    let (status, body) = call(Method::GET, limits(&sf), &first).await;
    assert_eq!(status, 401);
    assert!(body.contains("INVALID_SESSION_ID"));

    let second = creds.invalidate_and_refresh(&first.value).await.unwrap();
    assert_ne!(second.value, first.value);
    assert_eq!(call(Method::GET, limits(&sf), &second).await.0, 200);
    // A late caller reporting the same rejected token gets the new one without another request.
    let third = creds.invalidate_and_refresh(&first.value).await.unwrap();
    assert_eq!(third.value, second.value);
    assert_eq!(sf.log().count(salesforce::TOKEN_PATH), 2);
    common::finish(&[&sf]);
}

#[tokio::test]
async fn the_jwt_bearer_flow_signs_rs256_with_a_pkcs1_or_pkcs8_key() {
    for (private, public) in [
        (keys::PRIVATE_KEY_A_PEM, keys::PUBLIC_KEY_A_PEM),
        (keys::PRIVATE_KEY_B_PEM, keys::PUBLIC_KEY_B_PEM),
    ] {
        let (harness, clock) = common::harness();
        let config = salesforce::SalesforceConfig {
            jwt_public_key_pem: public.to_owned(),
            ..Default::default()
        };
        let sf = salesforce::start(config, harness).await.unwrap();
        let inputs = jwt_inputs(
            sf.url(salesforce::TOKEN_PATH),
            salesforce::fixtures::CLIENT_ID,
            Some(salesforce::fixtures::USERNAME),
            "https://login.salesforce.com",
            private,
            &[],
        );
        let (creds, store) = credentials("sf-jwt", "Salesforce", inputs, clock);
        let header = creds.authorization().await.unwrap().unwrap();
        assert_eq!(call(Method::GET, limits(&sf), &header).await.0, 200);
        let sent = &sf.log().to_path(salesforce::TOKEN_PATH)[0];
        assert_eq!(
            sent.form()["grant_type"],
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        assert!(
            !sent.form().contains_key("client_secret"),
            "JWT bearer sends no client secret"
        );
        assert!(store.get("sf-jwt").unwrap().refresh_token.is_none());
        common::finish(&[&sf]);
    }
}

#[tokio::test]
async fn a_user_who_has_not_approved_the_app_gets_the_pre_authorization_hint() {
    let (sf, clock) = start().await;
    let inputs = jwt_inputs(
        sf.url(salesforce::TOKEN_PATH),
        salesforce::fixtures::CLIENT_ID,
        Some(salesforce::fixtures::UNAPPROVED_USERNAME),
        "https://login.salesforce.com",
        keys::PRIVATE_KEY_A_PEM,
        &[],
    );
    let (creds, _) = credentials("sf-jwt", "Salesforce", inputs, clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ConsentMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("pre-authorized"), "{err}");
    assert!(
        err.to_string()
            .contains("user hasn't approved this consumer"),
        "{err}"
    );
    common::finish(&[&sf]);
}

#[tokio::test]
async fn a_sandbox_org_wants_the_test_audience() {
    let (harness, clock) = common::harness();
    let config = salesforce::SalesforceConfig {
        environment: salesforce::Environment::Sandbox,
        ..Default::default()
    };
    let sf = salesforce::start(config, harness).await.unwrap();
    let inputs = |aud: &str| {
        jwt_inputs(
            sf.url(salesforce::TOKEN_PATH),
            salesforce::fixtures::CLIENT_ID,
            Some(salesforce::fixtures::USERNAME),
            aud,
            keys::PRIVATE_KEY_A_PEM,
            &[],
        )
    };
    let (prod, _) = credentials(
        "a",
        "Salesforce",
        inputs("https://login.salesforce.com"),
        clock.clone(),
    );
    let err = prod.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::AssertionRejected { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("test.salesforce.com"), "{err}");
    let (sandbox, _) = credentials(
        "b",
        "Salesforce",
        inputs("https://test.salesforce.com"),
        clock,
    );
    sandbox.authorization().await.unwrap();
    common::finish(&[&sf]);
}

#[tokio::test]
async fn client_credentials_work_through_my_domain() {
    let (sf, clock) = start().await;
    let inputs = CredentialInputs {
        scheme: AuthScheme::OAuth2ClientCredentials(oauth(
            sf.url(salesforce::TOKEN_PATH),
            None,
            &[],
        )),
        config: common::config(&[("client_id", salesforce::fixtures::CLIENT_ID)]),
        secrets: common::secrets(&[("client_secret", salesforce::fixtures::CLIENT_SECRET)]),
    };
    let (creds, _) = credentials("sf-cc", "Salesforce", inputs, clock);
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(call(Method::GET, limits(&sf), &header).await.0, 200);
    assert_eq!(creds.context()["user_id"], salesforce::fixtures::USER_ID);
    common::finish(&[&sf]);
}

#[tokio::test]
async fn the_web_server_flow_with_pkce_refreshes_and_keeps_the_refresh_token() {
    let (sf, clock) = start().await;
    let inputs = code_inputs(
        &sf,
        salesforce::TOKEN_PATH,
        salesforce::AUTHORIZE_PATH,
        salesforce::fixtures::CLIENT_ID,
        salesforce::fixtures::CLIENT_SECRET,
        &["api", "refresh_token"],
    );
    let (creds, store) = credentials("sf-web", "Salesforce", inputs, clock.clone());
    assert!(matches!(
        creds.authorization().await.unwrap_err(),
        AuthError::AuthorizationRequired { .. }
    ));

    let summary = authorize_in_browser(&creds).await.unwrap();
    assert!(summary.has_refresh_token);
    let authorize = &sf.log().to_path(salesforce::AUTHORIZE_PATH)[0];
    let query = authorize.query_params();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "api refresh_token");
    let exchange = &sf.log().to_path(salesforce::TOKEN_PATH)[0].form();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert!(exchange.contains_key("code_verifier"));
    let original_refresh = store.get("sf-web").unwrap().refresh_token.unwrap();

    // After the session: refresh; Salesforce returns no new refresh token, so the old one stays.
    clock.0.advance(time::Duration::hours(2));
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(call(Method::GET, limits(&sf), &header).await.0, 200);
    let refresh = sf
        .log()
        .to_path(salesforce::TOKEN_PATH)
        .pop()
        .unwrap()
        .form();
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(
        store.get("sf-web").unwrap().refresh_token.unwrap(),
        original_refresh
    );
    common::finish(&[&sf]);
}

#[tokio::test]
async fn a_revoked_salesforce_refresh_token_asks_for_reauthorization() {
    let (sf, clock) = start().await;
    let inputs = code_inputs(
        &sf,
        salesforce::TOKEN_PATH,
        salesforce::AUTHORIZE_PATH,
        salesforce::fixtures::CLIENT_ID,
        salesforce::fixtures::CLIENT_SECRET,
        &["api", "refresh_token"],
    );
    let (creds, _) = credentials("sf-web", "Salesforce", inputs, clock.clone());
    authorize_in_browser(&creds).await.unwrap();
    sf.tokens().revoke_all_refresh();
    clock.0.advance(time::Duration::hours(3));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("authorize the integration again"),
        "{err}"
    );
    common::finish(&[&sf]);
}

#[tokio::test]
async fn an_unverified_error_text_can_be_overridden_in_the_emulator() {
    let (sf, clock) = start().await;
    // Reference §10: where a text is unverified the emulator takes an override.
    sf.errors().set(
        salesforce::errors::BAD_CLIENT_SECRET,
        ErrorReply::json(400, json!({"error": "invalid_client", "error_description": "invalid client credentials (override)"})),
    );
    let mut inputs = common::salesforce_password(&sf, salesforce::fixtures::SECURITY_TOKEN);
    inputs
        .secrets
        .insert("client_secret".into(), "bad-secret-value".into());
    let (creds, _) = credentials("sf", "Salesforce", inputs, clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(err.to_string().contains("(override)"), "{err}");
    // Fault injection takes precedence over the route.
    sf.faults().once(salesforce::TOKEN_PATH, Fault::status(503));
    let err = creds.renew().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ProviderUnavailable { status: 503, .. }),
        "{err:?}"
    );
    common::finish(&[&sf]);
}
