use proofpix_auth::AuthError;
use proofpix_emulators::slack;
use reqwest::Method;

use crate::common::{self, authorize_in_browser, call, code_inputs, credentials};

async fn start(
    config: slack::SlackConfig,
) -> (
    proofpix_emulators::Emulator,
    std::sync::Arc<common::EmuClock>,
) {
    let (harness, clock) = common::harness();
    (slack::start(config, harness).await.unwrap(), clock)
}

fn inputs(s: &proofpix_emulators::Emulator, secret: &str) -> proofpix_auth::CredentialInputs {
    code_inputs(
        s,
        slack::ACCESS_PATH,
        slack::AUTHORIZE_PATH,
        slack::fixtures::CLIENT_ID,
        secret,
        &["chat:write", "files:read"],
    )
}

#[tokio::test]
async fn oauth_v2_access_yields_a_bot_token_and_workspace_context() {
    let (s, clock) = start(Default::default()).await;
    let (creds, _) = credentials(
        "slack",
        "Slack",
        inputs(&s, slack::fixtures::CLIENT_SECRET),
        clock,
    );
    let summary = authorize_in_browser(&creds).await.unwrap();
    assert_eq!(summary.context["team_id"], slack::fixtures::TEAM_ID);
    assert_eq!(summary.scopes, vec!["chat:write", "files:read"]);
    // Slack's authorize URL takes comma-separated scopes.
    assert_eq!(
        s.log().to_path(slack::AUTHORIZE_PATH)[0].query_params()["scope"],
        "chat:write,files:read"
    );
    // Client credentials in HTTP Basic, as Slack prefers.
    let exchange = &s.log().to_path(slack::ACCESS_PATH)[0];
    assert_eq!(exchange.basic_auth().unwrap().0, slack::fixtures::CLIENT_ID);
    assert!(!exchange.form().contains_key("client_secret"));

    let header = creds.authorization().await.unwrap().unwrap();
    let (status, body) = call(Method::POST, s.url(slack::AUTH_TEST_PATH), &header).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\":true"), "{body}");
    common::finish(&[&s]);
}

#[tokio::test]
async fn a_bad_client_secret_inside_an_http_200_is_still_an_error() {
    let (s, clock) = start(Default::default()).await;
    let (creds, _) = credentials("slack", "Slack", inputs(&s, "not-the-slack-secret"), clock);
    let err = authorize_in_browser(&creds).await.unwrap_err();
    assert!(matches!(err, AuthError::ClientRejected { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Slack rejected the app's client credentials: the client secret is wrong; copy it again from the Slack app's Basic Information page (Slack said: bad_client_secret)"
    );
    common::finish(&[&s]);
}

#[tokio::test]
async fn with_rotation_a_refresh_replaces_the_single_use_refresh_token() {
    let config = slack::SlackConfig {
        token_rotation: true,
        ..Default::default()
    };
    let (s, clock) = start(config).await;
    let (creds, store) = credentials(
        "slack",
        "Slack",
        inputs(&s, slack::fixtures::CLIENT_SECRET),
        clock.clone(),
    );
    authorize_in_browser(&creds).await.unwrap();
    let first = store.get("slack").unwrap();
    assert!(first.access_token.expose().starts_with("xoxe.xoxb-1-"));
    assert_eq!(
        first.expires_at,
        Some(clock.0.now() + time::Duration::hours(12))
    );

    clock.0.advance(time::Duration::hours(12));
    let header = creds.authorization().await.unwrap().unwrap();
    assert!(
        call(Method::POST, s.url(slack::AUTH_TEST_PATH), &header)
            .await
            .1
            .contains("\"ok\":true")
    );
    let second = store.get("slack").unwrap();
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "rotation issued a new refresh token"
    );
    assert_eq!(
        s.tokens().live_refresh_tokens(),
        vec![second.refresh_token.unwrap().expose().to_owned()]
    );

    // The stored refresh token is revoked behind our back: re-authorization is needed.
    s.tokens().revoke_all_refresh();
    clock.0.advance(time::Duration::hours(12));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("invalid_refresh_token"), "{err}");
    common::finish(&[&s]);
}
