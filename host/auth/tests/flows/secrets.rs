//! No secret in any log line, error message or debug output.
//!
//! Every other test in this binary ends with `common::finish`, which greps the log captured so far
//! (TRACE level, every crate) for every secret it used: fixture secrets, everything the emulators
//! minted, and every sensitive value the client sent. This module adds the failure paths of every
//! vendor and checks the `Display` and `Debug` of each resulting error too.

use std::sync::Arc;

use proofpix_auth::{AuthError, Credentials, MemoryPersistence};
use proofpix_emulators::{
    Fault, IdentityProviders, box_com, dropbox, google, keys, microsoft, salesforce, slack,
};
use proofpix_vault::Secret;

use crate::common::{self, code_inputs, credentials, jwt_inputs, oauth};

#[tokio::test]
async fn no_secret_reaches_a_log_line_an_error_message_or_debug_output() {
    common::init();
    let clock = proofpix_emulators::Clock::new();
    let idps = IdentityProviders::start(clock.clone()).await.unwrap();
    let auth_clock = Arc::new(common::EmuClock(clock.clone()));
    let mut errors: Vec<AuthError> = Vec::new();
    let mut debug_dumps: Vec<String> = Vec::new();

    // Salesforce: wrong security token, wrong consumer secret, then success and a refresh on 401.
    let sf = &idps.salesforce;
    let (bad_token, _) = credentials(
        "sf1",
        "Salesforce",
        common::salesforce_password(sf, "BadSecTokenQQ"),
        auth_clock.clone(),
    );
    errors.push(bad_token.authorization().await.unwrap_err());
    let (ok, store) = credentials(
        "sf2",
        "Salesforce",
        common::salesforce_password(sf, salesforce::fixtures::SECURITY_TOKEN),
        auth_clock.clone(),
    );
    let header = ok.authorization().await.unwrap().unwrap();
    sf.tokens().revoke_all_access();
    let renewed = ok.invalidate_and_refresh(&header.value).await.unwrap();
    debug_dumps.push(format!(
        "{header:?} {renewed:?} {ok:?} {:?}",
        store.get("sf2")
    ));
    let jwt = jwt_inputs(
        sf.url(salesforce::TOKEN_PATH),
        salesforce::fixtures::CLIENT_ID,
        Some(salesforce::fixtures::UNAPPROVED_USERNAME),
        "https://login.salesforce.com",
        keys::PRIVATE_KEY_A_PEM,
        &[],
    );
    let (unapproved, _) = credentials("sf3", "Salesforce", jwt, auth_clock.clone());
    errors.push(unapproved.authorization().await.unwrap_err());
    debug_dumps.push(format!("{unapproved:?}"));

    // Microsoft: bad secret, transient failure.
    let ms = &idps.microsoft;
    let path = microsoft::token_path(microsoft::fixtures::TENANT_ID);
    let ms_inputs = |secret: &str| proofpix_auth::CredentialInputs {
        scheme: proofpix_auth::AuthScheme::OAuth2ClientCredentials(oauth(
            ms.url(&path),
            None,
            &[microsoft::fixtures::GRAPH_DEFAULT_SCOPE],
        )),
        config: common::config(&[("client_id", microsoft::fixtures::CLIENT_ID)]),
        secrets: common::secrets(&[("client_secret", secret)]),
    };
    let (bad_ms, _) = credentials(
        "ms1",
        "SharePoint",
        ms_inputs("wrong-ms-secret-value"),
        auth_clock.clone(),
    );
    errors.push(bad_ms.authorization().await.unwrap_err());
    let (ms_ok, _) = credentials(
        "ms2",
        "SharePoint",
        ms_inputs(microsoft::fixtures::CLIENT_SECRET),
        auth_clock.clone(),
    );
    ms.faults().once(&path, Fault::status(500));
    errors.push(ms_ok.authorization().await.unwrap_err());
    ms_ok.authorization().await.unwrap();

    // Google: wrong key, clock skew.
    let g = &idps.google;
    let (wrong_key, _) = credentials(
        "g1",
        "Google Drive",
        jwt_inputs(
            g.url(google::TOKEN_PATH),
            google::fixtures::SERVICE_ACCOUNT,
            None,
            google::PRODUCTION_AUDIENCE,
            keys::PRIVATE_KEY_B_PEM,
            &[google::fixtures::DRIVE_READONLY],
        ),
        auth_clock.clone(),
    );
    errors.push(wrong_key.authorization().await.unwrap_err());

    // Slack: bad secret after a real code exchange attempt; Box: reused refresh token;
    // Dropbox: revoked refresh token.
    let s = &idps.slack;
    let (bad_slack, _) = credentials(
        "s1",
        "Slack",
        code_inputs(
            s,
            slack::ACCESS_PATH,
            slack::AUTHORIZE_PATH,
            slack::fixtures::CLIENT_ID,
            "wrong-slack-secret",
            &["chat:write"],
        ),
        auth_clock.clone(),
    );
    errors.push(common::authorize_in_browser(&bad_slack).await.unwrap_err());
    let b = &idps.box_com;
    let (box_creds, _) = credentials(
        "b1",
        "Box",
        code_inputs(
            b,
            box_com::TOKEN_PATH,
            box_com::AUTHORIZE_PATH,
            box_com::fixtures::CLIENT_ID,
            box_com::fixtures::CLIENT_SECRET,
            &[],
        ),
        auth_clock.clone(),
    );
    common::authorize_in_browser(&box_creds).await.unwrap();
    b.tokens().revoke_all_refresh();
    clock.advance(time::Duration::hours(2));
    errors.push(box_creds.authorization().await.unwrap_err());
    let d = &idps.dropbox;
    let (dbx, _) = credentials(
        "d1",
        "Dropbox",
        code_inputs(
            d,
            dropbox::TOKEN_PATH,
            dropbox::AUTHORIZE_PATH,
            dropbox::fixtures::CLIENT_ID,
            dropbox::fixtures::CLIENT_SECRET,
            &[],
        ),
        auth_clock.clone(),
    );
    common::authorize_in_browser(&dbx).await.unwrap();
    d.tokens().revoke_all_refresh();
    clock.advance(time::Duration::hours(5));
    errors.push(dbx.authorization().await.unwrap_err());

    // A provider that echoes the client secret back in its error description gets it redacted.
    ms.faults().once(
        &path,
        Fault::Respond(proofpix_emulators::ErrorReply::json(
            401,
            serde_json::json!({"error": "invalid_client", "error_description": format!("AADSTS7000215: secret {} is wrong", microsoft::fixtures::CLIENT_SECRET)}),
        )),
    );
    let echoed = ms_ok.renew().await.unwrap_err();
    assert!(
        echoed.to_string().contains("secret [redacted] is wrong"),
        "{echoed}"
    );
    errors.push(echoed);

    // Invalid private key material is reported without quoting it.
    let bad_pem =
        "-----BEGIN PRIVATE KEY-----\nTm90QUtleUJ1dFNlY3JldE1hdGVyaWFs\n-----END PRIVATE KEY-----";
    let creds = Credentials::builder(
        "g2",
        jwt_inputs(
            g.url(google::TOKEN_PATH),
            google::fixtures::SERVICE_ACCOUNT,
            None,
            google::PRODUCTION_AUDIENCE,
            bad_pem,
            &["x"],
        ),
        common::http(),
        Arc::new(MemoryPersistence::new()),
    )
    .networks(common::loopback())
    .build()
    .unwrap();
    errors.push(creds.authorization().await.unwrap_err());

    let emulators = [
        &idps.salesforce,
        &idps.microsoft,
        &idps.google,
        &idps.slack,
        &idps.box_com,
        &idps.dropbox,
    ];
    let mut secrets = common::secrets_seen(&emulators);
    secrets.push("TmpNotAKeyButSecretMaterial".into());
    secrets.push("Tm90QUtleUJ1dFNlY3JldE1hdGVyaWFs".into());
    secrets.push("wrong-ms-secret-value".into());
    secrets.push("wrong-slack-secret".into());
    secrets.push("BadSecTokenQQ".into());
    assert!(
        secrets.len() > 30,
        "the check covers real values ({} of them)",
        secrets.len()
    );

    let kinds: Vec<&str> = errors.iter().map(AuthError::kind).collect();
    assert_eq!(
        kinds,
        [
            "user_rejected",
            "consent_missing",
            "client_rejected",
            "provider_unavailable",
            "assertion_rejected",
            "client_rejected",
            "reauthorization_required",
            "reauthorization_required",
            "client_rejected",
            "invalid_private_key",
        ]
    );
    for err in &errors {
        let shown = format!("{err} {err:?}");
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "an error shows a secret: {shown}"
            );
        }
    }
    for dump in &debug_dumps {
        for secret in &secrets {
            assert!(
                !dump.contains(secret.as_str()),
                "debug output shows a secret: {dump}"
            );
        }
    }
    assert!(debug_dumps.iter().any(|d| d.contains("[redacted]")));
    common::assert_no_secret_logged(&secrets);
    // The log did record the failures, so the grep had something to look at.
    let log = common::captured_log();
    assert!(
        log.contains("token request failed"),
        "the failures were logged"
    );
    assert!(log.contains("error.type"), "with a classification field");
    let _ = Secret::new("unused");
}
