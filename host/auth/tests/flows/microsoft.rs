use proofpix_auth::{AuthError, AuthScheme, CredentialInputs};
use proofpix_emulators::{ErrorReply, Fault, microsoft};
use reqwest::Method;
use serde_json::json;

use crate::common::{self, call, credentials, oauth};

fn inputs(
    ms: &proofpix_emulators::Emulator,
    secret: &str,
    client_id: &str,
    scopes: &[&str],
) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::OAuth2ClientCredentials(oauth(
            ms.url(&microsoft::token_path(microsoft::fixtures::TENANT_ID)),
            None,
            scopes,
        )),
        config: common::config(&[("client_id", client_id)]),
        secrets: common::secrets(&[("client_secret", secret)]),
    }
}

async fn start() -> (
    proofpix_emulators::Emulator,
    std::sync::Arc<common::EmuClock>,
) {
    let (harness, clock) = common::harness();
    (
        microsoft::start(Default::default(), harness).await.unwrap(),
        clock,
    )
}

#[tokio::test]
async fn client_credentials_get_a_graph_token_and_renew_it_before_expiry() {
    let (ms, clock) = start().await;
    let (creds, _) = credentials(
        "sp",
        "SharePoint Online",
        inputs(
            &ms,
            microsoft::fixtures::CLIENT_SECRET,
            microsoft::fixtures::CLIENT_ID,
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        ),
        clock.clone(),
    );
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(
        call(Method::GET, ms.url("/v1.0/organization"), &header)
            .await
            .0,
        200
    );
    let path = microsoft::token_path(microsoft::fixtures::TENANT_ID);
    let form = ms.log().to_path(&path)[0].form();
    assert_eq!(form["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(form["grant_type"], "client_credentials");

    // expires_in 3599: still cached 60 s before, renewed within the 60 s skew.
    clock.0.advance(time::Duration::seconds(3599 - 61));
    creds.authorization().await.unwrap();
    assert_eq!(ms.log().count(&path), 1);
    clock.0.advance(time::Duration::seconds(2));
    let renewed = creds.authorization().await.unwrap().unwrap();
    assert_eq!(ms.log().count(&path), 2);
    assert_ne!(renewed.value, header.value);
    // The old token is now expired on the emulator's clock too.
    clock.0.advance(time::Duration::seconds(60));
    assert_eq!(
        call(Method::GET, ms.url("/v1.0/organization"), &header)
            .await
            .0,
        401
    );
    common::finish(&[&ms]);
}

#[tokio::test]
async fn a_wrong_client_secret_says_to_paste_the_value_not_the_id() {
    let (ms, clock) = start().await;
    let (creds, _) = credentials(
        "sp",
        "SharePoint Online",
        inputs(
            &ms,
            "the-secret-id-not-value",
            microsoft::fixtures::CLIENT_ID,
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ClientRejected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains("not its Secret ID"), "{text}");
    assert!(
        !text.contains("Trace ID"),
        "only the first line of the description is quoted: {text}"
    );
    common::finish(&[&ms]);
}

#[tokio::test]
async fn an_unknown_app_points_at_the_client_id_and_tenant() {
    let (ms, clock) = start().await;
    let (creds, _) = credentials(
        "sp",
        "SharePoint Online",
        inputs(
            &ms,
            microsoft::fixtures::CLIENT_SECRET,
            "00000000-0000-0000-0000-000000000000",
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(err.to_string().contains("AADSTS700016"), "{err}");
    assert!(
        err.to_string()
            .contains("no app with this client id exists in the tenant"),
        "{err}"
    );
    common::finish(&[&ms]);
}

/// The host no longer checks Microsoft's one-`/.default`-scope rule itself (it names no vendor):
/// the provider's AADSTS70011 answer, read by the declared rule, says what to change.
#[tokio::test]
async fn more_than_one_scope_is_explained_by_the_declared_error_rule() {
    let (ms, clock) = start().await;
    let (creds, _) = credentials(
        "sp",
        "SharePoint Online",
        inputs(
            &ms,
            microsoft::fixtures::CLIENT_SECRET,
            microsoft::fixtures::CLIENT_ID,
            &["https://graph.microsoft.com/.default", "offline_access"],
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ScopeRejected { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("exactly one scope of the form https://graph.microsoft.com/.default"),
        "{err}"
    );
    common::finish(&[&ms]);
}

#[tokio::test]
async fn the_emulator_enforces_one_default_scope_with_aadsts70011() {
    let (ms, _) = start().await;
    let response = common::http()
        .post(ms.url(&microsoft::token_path(microsoft::fixtures::TENANT_DOMAIN)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", microsoft::fixtures::CLIENT_ID),
            ("client_secret", microsoft::fixtures::CLIENT_SECRET),
            (
                "scope",
                "https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"], json!([70011]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS70011: ")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("\r\nTrace ID: ")
    );
    assert_eq!(
        body["error_uri"],
        "https://login.microsoftonline.com/error?code=70011"
    );
}

#[tokio::test]
async fn an_invalid_scope_answer_is_reported_as_a_scope_problem() {
    let (ms, clock) = start().await;
    let path = microsoft::token_path(microsoft::fixtures::TENANT_ID);
    ms.faults().once(
        &path,
        Fault::Respond(ErrorReply::json(
            400,
            json!({"error": "invalid_scope", "error_description": "AADSTS70011: The provided value for the input parameter 'scope' is not valid.\r\nTrace ID: x", "error_codes": [70011]}),
        )),
    );
    let (creds, _) = credentials(
        "sp",
        "SharePoint Online",
        inputs(
            &ms,
            microsoft::fixtures::CLIENT_SECRET,
            microsoft::fixtures::CLIENT_ID,
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ScopeRejected { .. }), "{err:?}");
    assert!(err.to_string().contains("exactly one scope"), "{err}");
    common::finish(&[&ms]);
}
