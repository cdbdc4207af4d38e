use proofpix_auth::AuthError;
use proofpix_emulators::dropbox;
use reqwest::Method;

use crate::common::{self, authorize_in_browser, call, code_inputs, credentials};

#[tokio::test]
async fn offline_access_yields_a_reusable_refresh_token() {
    let (harness, clock) = common::harness();
    let d = dropbox::start(Default::default(), harness).await.unwrap();
    let inputs = code_inputs(
        &d,
        dropbox::TOKEN_PATH,
        dropbox::AUTHORIZE_PATH,
        dropbox::fixtures::CLIENT_ID,
        dropbox::fixtures::CLIENT_SECRET,
        &[],
    );
    let (creds, store) = credentials("dbx", "Dropbox", inputs, clock.clone());
    let summary = authorize_in_browser(&creds).await.unwrap();
    assert!(
        summary.has_refresh_token,
        "token_access_type=offline was requested"
    );
    assert_eq!(summary.context["account_id"], dropbox::fixtures::ACCOUNT_ID);
    assert_eq!(
        d.log().to_path(dropbox::AUTHORIZE_PATH)[0].query_params()["token_access_type"],
        "offline"
    );
    let refresh = store.get("dbx").unwrap().refresh_token.unwrap();

    for _ in 0..2 {
        clock.0.advance(time::Duration::hours(4));
        let header = creds.authorization().await.unwrap().unwrap();
        assert_eq!(
            call(Method::POST, d.url("/2/users/get_current_account"), &header)
                .await
                .0,
            200
        );
        assert_eq!(store.get("dbx").unwrap().refresh_token.unwrap(), refresh);
    }

    d.tokens().revoke_all_refresh();
    clock.0.advance(time::Duration::hours(4));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    common::finish(&[&d]);
}

#[tokio::test]
async fn an_expired_dropbox_token_is_refreshed_after_a_401() {
    let (harness, clock) = common::harness();
    let d = dropbox::start(Default::default(), harness).await.unwrap();
    let inputs = code_inputs(
        &d,
        dropbox::TOKEN_PATH,
        dropbox::AUTHORIZE_PATH,
        dropbox::fixtures::CLIENT_ID,
        dropbox::fixtures::CLIENT_SECRET,
        &[],
    );
    let (creds, _) = credentials("dbx", "Dropbox", inputs, clock);
    authorize_in_browser(&creds).await.unwrap();
    let header = creds.authorization().await.unwrap().unwrap();
    d.tokens().revoke_all_access();
    let (status, body) = call(Method::POST, d.url("/2/users/get_current_account"), &header).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_access_token"));
    let fresh = creds.invalidate_and_refresh(&header.value).await.unwrap();
    assert_eq!(
        call(Method::POST, d.url("/2/users/get_current_account"), &fresh)
            .await
            .0,
        200
    );
    common::finish(&[&d]);
}
