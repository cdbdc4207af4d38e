use std::time::Duration;

use proofpix_auth::{AuthError, AuthScheme, CredentialInputs, CredentialOptions, TokenSet};
use proofpix_emulators::{Fault, microsoft};

use crate::common::{self, credentials, credentials_with, oauth};

fn ms_inputs(token_url: url::Url) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::OAuth2ClientCredentials(oauth(
            token_url,
            None,
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        )),
        config: common::config(&[("client_id", microsoft::fixtures::CLIENT_ID)]),
        secrets: common::secrets(&[("client_secret", microsoft::fixtures::CLIENT_SECRET)]),
    }
}

async fn start() -> (
    proofpix_emulators::Emulator,
    std::sync::Arc<common::EmuClock>,
    String,
) {
    let (harness, clock) = common::harness();
    let ms = microsoft::start(Default::default(), harness).await.unwrap();
    (
        ms,
        clock,
        microsoft::token_path(microsoft::fixtures::TENANT_ID),
    )
}

#[tokio::test]
async fn a_failing_token_endpoint_is_reported_as_temporary_and_the_next_call_recovers() {
    let (ms, clock, path) = start().await;
    let (creds, _) = credentials("sp", "SharePoint", ms_inputs(ms.url(&path)), clock);
    ms.faults().once(&path, Fault::status(503));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ProviderUnavailable { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(creds.authorization().await.is_ok());
    // Throttling is temporary too, whatever the body says.
    ms.faults().once(
        &path,
        Fault::Respond(proofpix_emulators::ErrorReply::json(
            429,
            serde_json::json!({"error": "temporarily_unavailable"}),
        )),
    );
    let err = creds.renew().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ProviderUnavailable { status: 429, .. }),
        "{err:?}"
    );
    common::finish(&[&ms]);
}

#[tokio::test]
async fn a_slow_token_endpoint_times_out() {
    let (ms, clock, path) = start().await;
    let options = CredentialOptions {
        request_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (creds, _) = credentials_with("sp", "SharePoint", ms_inputs(ms.url(&path)), clock, options);
    ms.faults()
        .once(&path, Fault::Delay(Duration::from_secs(5)));
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not answer within 200ms"),
        "{err}"
    );
    common::finish(&[&ms]);
}

#[tokio::test]
async fn an_unreachable_host_names_the_host_and_the_cause() {
    common::init();
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url =
        url::Url::parse(&format!("http://127.0.0.1:{port}/tenant/oauth2/v2.0/token")).unwrap();
    let (_harness, clock) = common::harness();
    let (creds, _) = credentials("sp", "SharePoint", ms_inputs(url), clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn a_redirecting_token_endpoint_never_receives_the_secret_a_second_time() {
    let (ms, clock, path) = start().await;
    let (elsewhere, _, _) = start().await;
    ms.faults().once(
        &path,
        Fault::Redirect {
            status: 307,
            location: elsewhere.url(&path).to_string(),
        },
    );
    let (creds, _) = credentials("sp", "SharePoint", ms_inputs(ms.url(&path)), clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::Redirected { status: 307, .. }),
        "{err:?}"
    );
    assert!(
        elsewhere.log().all().is_empty(),
        "the redirect target got nothing"
    );
    common::finish(&[&ms, &elsewhere]);
}

#[tokio::test]
async fn a_non_json_answer_is_not_mistaken_for_a_token() {
    let (ms, clock, path) = start().await;
    ms.faults().once(
        &path,
        Fault::Respond(proofpix_emulators::ErrorReply::text(
            404,
            "<html>Not here</html>",
        )),
    );
    let (creds, _) = credentials("sp", "SharePoint", ms_inputs(ms.url(&path)), clock.clone());
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::MalformedResponse { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    ms.faults().once(
        &path,
        Fault::Respond(proofpix_emulators::ErrorReply::json(
            200,
            serde_json::json!({"token_type": "Bearer"}),
        )),
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(err.to_string().contains("access_token"), "{err}");
    common::finish(&[&ms]);
}

#[tokio::test]
async fn stored_tokens_are_used_without_a_token_request() {
    let (ms, clock, path) = start().await;
    let (creds, store) = credentials("sp", "SharePoint", ms_inputs(ms.url(&path)), clock.clone());
    store.put(
        "sp",
        TokenSet {
            access_token: "stored-access-token-value".into(),
            refresh_token: None,
            expires_at: Some(clock.0.now() + time::Duration::minutes(30)),
            obtained_at: clock.0.now(),
            scopes: vec![],
            context: [("tenant".to_owned(), "x".to_owned())].into(),
        },
    );
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header.value.expose(), "Bearer stored-access-token-value");
    assert_eq!(creds.context()["tenant"], "x");
    assert!(ms.log().all().is_empty());
    // `renew` ignores the cache: it is how `integration test` catches a changed secret.
    creds.renew().await.unwrap();
    assert_eq!(ms.log().count(&path), 1);
    common::finish(&[&ms]);
}

/// An IP-literal token URL is never resolved, so the checking resolver never sees it: the
/// address is checked directly, and 127.0.0.1 is refused unless the grant allows loopback.
#[tokio::test]
async fn an_ip_literal_token_url_is_refused_without_allow_loopback() {
    let (ms, clock, path) = start().await;
    let token_url = ms.url(&path);
    assert_eq!(
        token_url.host_str(),
        Some("127.0.0.1"),
        "the emulator is on a literal"
    );
    let inputs = ms_inputs(token_url);
    let dialect = common::dialect_for("SharePoint", &inputs.scheme);
    let creds = proofpix_auth::Credentials::builder(
        "sp",
        inputs,
        common::http(),
        std::sync::Arc::new(proofpix_auth::MemoryPersistence::new()),
    )
    .dialect(dialect)
    .clock(clock.clone())
    .build()
    .unwrap();
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidConfig { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "the token URL's host is the address 127.0.0.1, a loopback address; refused (set allow_loopback in the grant for local emulators)"
        ),
        "{err}"
    );
    assert!(
        ms.log().count(&path) == 0,
        "no token request reached the emulator"
    );
    // The same grant with loopback allowed gets its token.
    let (allowed, _) = credentials("sp", "SharePoint", ms_inputs(ms.url(&path)), clock);
    assert!(allowed.authorization().await.is_ok());
    common::finish(&[&ms]);
}
