use proofpix_auth::{
    AuthError, AuthorizationSessions, Credentials, LoopbackCallback, MemoryPersistence,
};
use proofpix_emulators::{Consent, box_com, dropbox};
use proofpix_vault::Secret;

use crate::common::{self, code_inputs};

#[tokio::test]
async fn a_denied_consent_is_reported_with_the_providers_reason() {
    let (harness, clock) = common::harness();
    let config = dropbox::DropboxConfig {
        consent: Consent::Deny,
        ..Default::default()
    };
    let d = dropbox::start(config, harness).await.unwrap();
    let inputs = code_inputs(
        &d,
        dropbox::TOKEN_PATH,
        dropbox::AUTHORIZE_PATH,
        dropbox::fixtures::CLIENT_ID,
        dropbox::fixtures::CLIENT_SECRET,
        &[],
    );
    let (creds, _) = common::credentials("dbx", "Dropbox", inputs, clock);
    let err = common::authorize_in_browser(&creds).await.unwrap_err();
    assert!(
        matches!(err, AuthError::AuthorizationDenied { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("access_denied"), "{err}");
    common::finish(&[&d]);
}

#[tokio::test]
async fn a_state_from_another_integration_or_an_old_attempt_is_refused() {
    let (harness, clock) = common::harness();
    let b = box_com::start(Default::default(), harness).await.unwrap();
    let sessions = AuthorizationSessions::new();
    let build = |name: &str| {
        let inputs = code_inputs(
            &b,
            box_com::TOKEN_PATH,
            box_com::AUTHORIZE_PATH,
            box_com::fixtures::CLIENT_ID,
            box_com::fixtures::CLIENT_SECRET,
            &[],
        );
        let dialect = common::dialect_for("Box", &inputs.scheme);
        Credentials::builder(
            name,
            inputs,
            common::http(),
            std::sync::Arc::new(MemoryPersistence::new()),
        )
        .networks(common::loopback())
        .dialect(dialect)
        .clock(clock.clone())
        .sessions(sessions.clone())
        .build()
        .unwrap()
    };
    let (one, two) = (build("box-one"), build("box-two"));
    let callback = url::Url::parse("http://127.0.0.1:9/callback").unwrap();
    let request = one.begin_authorization(&callback).unwrap();
    assert_eq!(
        sessions.integration_for(&request.state).as_deref(),
        Some("box-one")
    );

    let err = two
        .complete_authorization(&request.state, &Secret::new("some-code"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::UnknownAuthorization { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "this authorization attempt is unknown or has expired (they last 10 minutes); start it again with `proofpix integration authorize`"
    );
    clock.0.advance(time::Duration::minutes(11));
    let err = one
        .complete_authorization(&request.state, &Secret::new("some-code"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::UnknownAuthorization { .. }),
        "{err:?}"
    );
    assert_eq!(
        b.log().count(box_com::TOKEN_PATH),
        0,
        "no code was exchanged"
    );
}

#[tokio::test]
async fn box_codes_expire_after_thirty_seconds() {
    let (harness, clock) = common::harness();
    let b = box_com::start(Default::default(), harness).await.unwrap();
    let inputs = code_inputs(
        &b,
        box_com::TOKEN_PATH,
        box_com::AUTHORIZE_PATH,
        box_com::fixtures::CLIENT_ID,
        box_com::fixtures::CLIENT_SECRET,
        &[],
    );
    let (creds, _) = common::credentials("box", "Box", inputs, clock.clone());
    let callback = LoopbackCallback::bind("cb").await.unwrap();
    let request = creds.begin_authorization(callback.redirect_uri()).unwrap();
    let waiter = tokio::spawn(callback.wait(std::time::Duration::from_secs(30)));
    let browser = common::http();
    let location = browser.get(request.url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    // A scanner hits the listener first; it is ignored.
    assert_eq!(
        browser
            .get(format!(
                "http://127.0.0.1:{}/favicon.ico",
                url::Url::parse(&location).unwrap().port().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    browser.get(&location).send().await.unwrap();
    let params = waiter.await.unwrap().unwrap();
    clock.0.advance(time::Duration::seconds(31));
    let err = creds
        .complete_authorization(&params.state, &params.code)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expire after 30 seconds"), "{err}");
    common::finish(&[&b]);
}

#[tokio::test]
async fn the_loopback_listener_gives_up_after_its_timeout() {
    common::init();
    let callback = LoopbackCallback::bind("/cb").await.unwrap();
    assert_eq!(callback.redirect_uri().host_str(), Some("127.0.0.1"));
    let err = callback
        .wait(std::time::Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Callback { .. }), "{err:?}");
    assert!(err.to_string().contains("no browser came back"), "{err}");
}
