use proofpix_auth::AuthError;
use proofpix_emulators::{google, keys};
use reqwest::Method;

use crate::common::{self, call, credentials, jwt_inputs};

async fn start() -> (
    proofpix_emulators::Emulator,
    std::sync::Arc<common::EmuClock>,
) {
    let (harness, clock) = common::harness();
    (
        google::start(Default::default(), harness).await.unwrap(),
        clock,
    )
}

fn sa_inputs(
    g: &proofpix_emulators::Emulator,
    key: &str,
    subject: Option<&str>,
) -> proofpix_auth::CredentialInputs {
    jwt_inputs(
        g.url(google::TOKEN_PATH),
        google::fixtures::SERVICE_ACCOUNT,
        subject,
        google::PRODUCTION_AUDIENCE,
        key,
        &[google::fixtures::DRIVE_READONLY],
    )
}

#[tokio::test]
async fn a_service_account_gets_a_token_with_scope_and_delegated_subject() {
    let (g, clock) = start().await;
    let (creds, store) = credentials(
        "drive",
        "Google Drive",
        sa_inputs(
            &g,
            keys::PRIVATE_KEY_A_PEM,
            Some(google::fixtures::DELEGATED_USER),
        ),
        clock.clone(),
    );
    let header = creds.authorization().await.unwrap().unwrap();
    let (status, body) = call(Method::GET, g.url("/drive/v3/about"), &header).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(google::fixtures::DELEGATED_USER),
        "the token acts for the delegated user"
    );
    let tokens = store.get("drive").unwrap();
    assert_eq!(
        tokens.expires_at,
        Some(clock.0.now() + time::Duration::seconds(3599))
    );
    assert!(tokens.refresh_token.is_none());

    // No refresh token for JWT bearer: a new assertion after expiry.
    clock.0.advance(time::Duration::hours(1));
    creds.authorization().await.unwrap();
    assert_eq!(g.log().count(google::TOKEN_PATH), 2);
    common::finish(&[&g]);
}

#[tokio::test]
async fn a_whole_key_file_can_be_pasted_as_the_private_key() {
    let (g, clock) = start().await;
    let key_file = serde_json::json!({
        "type": "service_account",
        "private_key_id": google::fixtures::PRIVATE_KEY_ID,
        "private_key": keys::PRIVATE_KEY_A_PEM,
        "client_email": google::fixtures::SERVICE_ACCOUNT,
        "token_uri": g.url(google::TOKEN_PATH).to_string(),
    })
    .to_string();
    let mut inputs = sa_inputs(&g, &key_file, None);
    inputs.config.clear(); // the issuer comes from the key file's client_email
    let (creds, _) = credentials("drive", "Google Drive", inputs, clock);
    creds.authorization().await.unwrap();
    let assertion = g.log().to_path(google::TOKEN_PATH)[0].form()["assertion"].clone();
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(google::fixtures::PRIVATE_KEY_ID)
    );
    common::finish(&[&g]);
}

#[tokio::test]
async fn a_deleted_key_is_reported_as_a_bad_signature() {
    let (g, clock) = start().await;
    let (creds, _) = credentials(
        "drive",
        "Google Drive",
        sa_inputs(&g, keys::PRIVATE_KEY_B_PEM, None),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::AssertionRejected { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Invalid JWT Signature."), "{err}");
    assert!(err.to_string().contains("create a new key file"), "{err}");
    common::finish(&[&g]);
}

#[tokio::test]
async fn a_daemon_clock_two_hours_off_is_reported_as_clock_skew() {
    let (g, clock) = start().await;
    // The daemon's clock is two hours behind the provider's.
    let skewed = std::sync::Arc::new(common::EmuClock(proofpix_emulators::Clock::frozen_at(
        clock.0.now() - time::Duration::hours(2),
    )));
    let (creds, _) = credentials(
        "drive",
        "Google Drive",
        sa_inputs(&g, keys::PRIVATE_KEY_A_PEM, None),
        skewed,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::AssertionRejected { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("clock is probably wrong"), "{err}");
    common::finish(&[&g]);
}

#[tokio::test]
async fn impersonating_a_user_without_delegation_asks_for_domain_wide_delegation() {
    let (g, clock) = start().await;
    let (creds, _) = credentials(
        "drive",
        "Google Drive",
        sa_inputs(
            &g,
            keys::PRIVATE_KEY_A_PEM,
            Some("someone-else@proofpix.example"),
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ConsentMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("Domain-wide delegation"), "{err}");
    common::finish(&[&g]);
}

#[tokio::test]
async fn the_user_flow_asks_for_offline_access_and_refreshes() {
    let (g, clock) = start().await;
    let inputs = common::code_inputs(
        &g,
        google::TOKEN_PATH,
        google::AUTHORIZE_PATH,
        google::fixtures::CLIENT_ID,
        google::fixtures::CLIENT_SECRET,
        &[google::fixtures::DRIVE_READONLY],
    );
    let (creds, store) = credentials("drive-user", "Google Drive", inputs, clock.clone());
    common::authorize_in_browser(&creds).await.unwrap();
    let query = g.log().to_path(google::AUTHORIZE_PATH)[0].query_params();
    assert_eq!(query["access_type"], "offline");
    let refresh = store.get("drive-user").unwrap().refresh_token.unwrap();
    clock.0.advance(time::Duration::hours(1));
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(
        call(Method::GET, g.url("/drive/v3/about"), &header).await.0,
        200
    );
    assert_eq!(
        store.get("drive-user").unwrap().refresh_token.unwrap(),
        refresh,
        "Google keeps the refresh token"
    );
    g.tokens().revoke_all_refresh();
    clock.0.advance(time::Duration::hours(1));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    common::finish(&[&g]);
}
