use std::sync::Arc;

use proofpix_auth::{AuthError, AuthScheme, CredentialInputs};
use proofpix_emulators::box_com;
use reqwest::Method;

use crate::common::{self, authorize_in_browser, call, code_inputs, credentials, oauth};

async fn start() -> (proofpix_emulators::Emulator, Arc<common::EmuClock>) {
    let (harness, clock) = common::harness();
    (
        box_com::start(Default::default(), harness).await.unwrap(),
        clock,
    )
}

fn code(b: &proofpix_emulators::Emulator) -> CredentialInputs {
    code_inputs(
        b,
        box_com::TOKEN_PATH,
        box_com::AUTHORIZE_PATH,
        box_com::fixtures::CLIENT_ID,
        box_com::fixtures::CLIENT_SECRET,
        &[],
    )
}

fn client_credentials(
    b: &proofpix_emulators::Emulator,
    subject_type: &str,
    subject_id: &str,
) -> CredentialInputs {
    let mut auth = oauth(b.url(box_com::TOKEN_PATH), None, &[]);
    auth.extra_params = vec![
        ("box_subject_type".into(), subject_type.into()),
        ("box_subject_id".into(), subject_id.into()),
    ];
    CredentialInputs {
        scheme: AuthScheme::OAuth2ClientCredentials(auth),
        config: common::config(&[("client_id", box_com::fixtures::CLIENT_ID)]),
        secrets: common::secrets(&[("client_secret", box_com::fixtures::CLIENT_SECRET)]),
    }
}

#[tokio::test]
async fn client_credentials_act_for_the_enterprise_through_extra_params() {
    let (b, clock) = start().await;
    let (creds, _) = credentials(
        "box",
        "Box",
        client_credentials(&b, "enterprise", box_com::fixtures::ENTERPRISE_ID),
        clock,
    );
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(
        call(Method::GET, b.url("/2.0/users/me"), &header).await.0,
        200
    );
    let form = b.log().to_path(box_com::TOKEN_PATH)[0].form();
    assert_eq!(form["box_subject_type"], "enterprise");
    assert_eq!(
        form["client_secret"],
        box_com::fixtures::CLIENT_SECRET,
        "Box takes credentials in the body"
    );
    common::finish(&[&b]);
}

#[tokio::test]
async fn a_subject_type_the_app_may_not_use_asks_for_admin_approval() {
    let (b, clock) = start().await;
    let (creds, _) = credentials("box", "Box", client_credentials(&b, "user", "999"), clock);
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ConsentMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("box_subject_type"), "{err}");
    common::finish(&[&b]);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh_of_a_single_use_token() {
    let (b, clock) = start().await;
    let (creds, store) = credentials("box", "Box", code(&b), clock.clone());
    authorize_in_browser(&creds).await.unwrap();
    let first = creds.authorization().await.unwrap().unwrap();
    clock.0.advance(time::Duration::hours(1));

    // Sixteen requests find the token expired at once; exactly one refresh must happen, or the
    // second would present an already-used refresh token and lock the integration out.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let creds = creds.clone();
            tokio::spawn(async move { creds.authorization().await })
        })
        .collect();
    let mut headers = Vec::new();
    for task in tasks {
        headers.push(task.await.unwrap().unwrap().unwrap());
    }
    assert!(headers.iter().all(|h| h.value == headers[0].value));
    assert_ne!(headers[0].value, first.value);
    let refreshes = b
        .log()
        .to_path(box_com::TOKEN_PATH)
        .iter()
        .filter(|r| r.form()["grant_type"] == "refresh_token")
        .count();
    assert_eq!(refreshes, 1);
    // The new single-use refresh token was persisted before the new access token was used.
    let live = b.tokens().live_refresh_tokens();
    assert_eq!(live.len(), 1);
    assert_eq!(
        store.get("box").unwrap().refresh_token.unwrap().expose(),
        live[0]
    );
    assert_eq!(
        call(Method::GET, b.url("/2.0/users/me"), &headers[0])
            .await
            .0,
        200
    );
    common::finish(&[&b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unauthorized_reports_cause_one_refresh() {
    let (b, clock) = start().await;
    let (creds, _) = credentials("box", "Box", code(&b), clock);
    authorize_in_browser(&creds).await.unwrap();
    let rejected = creds.authorization().await.unwrap().unwrap();
    b.tokens().revoke_all_access();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let creds = creds.clone();
            let rejected = rejected.value.clone();
            tokio::spawn(async move { creds.invalidate_and_refresh(&rejected).await })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap().unwrap().value);
    }
    assert!(values.iter().all(|v| *v == values[0]));
    let refreshes = b
        .log()
        .to_path(box_com::TOKEN_PATH)
        .iter()
        .filter(|r| r.form()["grant_type"] == "refresh_token")
        .count();
    assert_eq!(refreshes, 1);
    common::finish(&[&b]);
}

#[tokio::test]
async fn a_refresh_token_past_sixty_days_asks_for_reauthorization() {
    let (b, clock) = start().await;
    let (creds, _) = credentials("box", "Box", code(&b), clock.clone());
    authorize_in_browser(&creds).await.unwrap();
    clock.0.advance(time::Duration::days(61));
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::ReauthorizationRequired { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("work once and for 60 days"),
        "{err}"
    );
    common::finish(&[&b]);
}

#[tokio::test]
async fn when_the_store_fails_the_new_tokens_still_work_and_the_operator_is_told() {
    let (b, clock) = start().await;
    let (creds, store) = credentials("box", "Box", code(&b), clock.clone());
    authorize_in_browser(&creds).await.unwrap();
    store.fail_saves(true);
    clock.0.advance(time::Duration::hours(1));
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::Persistence { .. }), "{err:?}");
    assert!(err.to_string().contains("kept in memory"), "{err}");
    // The burnt refresh token is not retried: the in-memory tokens are used.
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(
        call(Method::GET, b.url("/2.0/users/me"), &header).await.0,
        200
    );
    common::finish(&[&b]);
}
