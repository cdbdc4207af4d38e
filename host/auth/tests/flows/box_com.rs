use std::sync::Arc;

use proofpix_auth::{
    AuthError, AuthScheme, ClientAuth, CredentialInputs, Credentials, Dialect, ErrorRule, Failure,
    JwtBearerAuth, JwtDialect, MemoryPersistence, RefreshRotation,
};
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

/// What a Box plugin declares for the JWT grant (contract 0.3, `oauth-dialect`). The host's auth
/// crate knows nothing of Box: the `kid` header, the `box_sub_type` claim, Box's 60-second limit
/// on `exp` and the client credentials in the body are all this declaration.
fn box_jwt_dialect() -> Dialect {
    let mut d = Dialect::named("Box");
    d.client_auth = ClientAuth::Body;
    d.refresh_rotation = RefreshRotation::SingleUse;
    d.jwt = JwtDialect {
        key_id_field: Some("public_key_id".into()),
        claims: vec![("box_sub_type".into(), "{config.subject_type}".into())],
        lifetime_secs: 45,
        client_in_body: true,
        client_id_field: Some("client_id".into()),
        client_secret_field: Some("client_secret".into()),
        scope_claim: false,
    };
    d.errors.rules = vec![
        ErrorRule::new(
            "invalid_grant",
            Failure::AssertionRejected,
            "the private key does not match the public key id configured in the Box app; check the key pair under Configuration > Add and Manage Public Keys",
        )
        .when_description("kid"),
    ];
    d
}

fn jwt_inputs(b: &proofpix_emulators::Emulator, key: &str, subject: &str) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::JwtBearer(JwtBearerAuth {
            token_url: b.url(box_com::TOKEN_PATH).to_string(),
            issuer_field: "client_id".into(),
            subject_field: Some("subject_id".into()),
            audience: "https://api.box.com/oauth2/token".into(),
            private_key_field: "private_key".into(),
            scopes: vec![],
        }),
        config: common::config(&[
            ("client_id", box_com::fixtures::CLIENT_ID),
            ("public_key_id", box_com::fixtures::JWT_KEY_ID),
            ("subject_type", "enterprise"),
            ("subject_id", subject),
        ]),
        secrets: common::secrets(&[
            ("client_secret", box_com::fixtures::CLIENT_SECRET),
            ("private_key", key),
        ]),
    }
}

fn jwt_credentials(inputs: CredentialInputs, clock: Arc<common::EmuClock>) -> Credentials {
    Credentials::builder(
        "box-jwt",
        inputs,
        common::http(),
        Arc::new(MemoryPersistence::new()),
    )
    .networks(common::loopback())
    .dialect(box_jwt_dialect())
    .clock(clock)
    .build()
    .expect("valid inputs")
}

fn decode_segment(jwt: &str, n: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(n).expect("three segments");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn the_jwt_grant_works_from_a_declared_dialect_alone() {
    let (b, clock) = start().await;
    let creds = jwt_credentials(
        jwt_inputs(
            &b,
            proofpix_emulators::keys::PRIVATE_KEY_A_PEM,
            box_com::fixtures::ENTERPRISE_ID,
        ),
        clock,
    );
    let header = creds.authorization().await.unwrap().expect("a header");
    assert_eq!(
        call(Method::GET, b.url("/2.0/users/me"), &header).await.0,
        200
    );
    let form = b.log().to_path(box_com::TOKEN_PATH)[0].form();
    assert_eq!(form["client_id"], box_com::fixtures::CLIENT_ID);
    assert_eq!(form["client_secret"], box_com::fixtures::CLIENT_SECRET);
    let assertion = &form["assertion"];
    assert_eq!(
        decode_segment(assertion, 0)["kid"],
        box_com::fixtures::JWT_KEY_ID
    );
    let claims = decode_segment(assertion, 1);
    assert_eq!(claims["box_sub_type"], "enterprise");
    assert_eq!(claims["sub"], box_com::fixtures::ENTERPRISE_ID);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        45
    );
    assert!(claims.get("scope").is_none(), "{claims}");

    // A second token needs a second assertion: Box refuses a `jti` it has seen.
    let again = creds.invalidate_and_refresh(&header.value).await.unwrap();
    assert_eq!(
        call(Method::GET, b.url("/2.0/users/me"), &again).await.0,
        200
    );
    let second = b.log().to_path(box_com::TOKEN_PATH)[1].form();
    assert_ne!(
        decode_segment(&second["assertion"], 1)["jti"],
        claims["jti"],
        "every assertion carries a fresh jti"
    );
    common::finish(&[&b]);
}

#[tokio::test]
async fn a_key_that_does_not_match_the_key_id_is_explained_by_the_declared_rule() {
    let (b, clock) = start().await;
    let creds = jwt_credentials(
        jwt_inputs(
            &b,
            proofpix_emulators::keys::PRIVATE_KEY_B_PEM,
            box_com::fixtures::ENTERPRISE_ID,
        ),
        clock,
    );
    let err = creds.authorization().await.unwrap_err();
    assert!(
        matches!(err, AuthError::AssertionRejected { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("Box refused the signed assertion"),
        "{text}"
    );
    assert!(text.contains("Add and Manage Public Keys"), "{text}");
    common::finish(&[&b]);
}

#[tokio::test]
async fn a_dialect_cannot_place_a_secret_in_a_claim() {
    let (b, clock) = start().await;
    let mut dialect = box_jwt_dialect();
    dialect
        .jwt
        .claims
        .push(("leak".into(), "{secret.client_secret}".into()));
    let err = Credentials::builder(
        "box-jwt",
        jwt_inputs(
            &b,
            proofpix_emulators::keys::PRIVATE_KEY_A_PEM,
            box_com::fixtures::ENTERPRISE_ID,
        ),
        common::http(),
        Arc::new(MemoryPersistence::new()),
    )
    .dialect(dialect)
    .clock(clock)
    .build()
    .unwrap_err();
    assert!(matches!(err, AuthError::InvalidConfig { .. }), "{err:?}");
    assert!(b.log().all().is_empty());
}
