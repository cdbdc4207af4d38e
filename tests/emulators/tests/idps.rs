//! The emulated identity providers answer with the reference's exact shapes (saas-apis.md §1.1,
//! §2.1, §4.1, §5.1, §6.1, §7.1), and the shared harness (clock, log, faults) does what it says.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use proofpix_emulators::{
    Clock, ErrorReply, Fault, Harness, box_com, dropbox, google, keys, microsoft, salesforce, slack,
};
use serde_json::{Value, json};
use sha2::Sha256;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_form(url: url::Url, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client().post(url).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn sf_password_form() -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".into()),
        ("client_id", salesforce::fixtures::CLIENT_ID.into()),
        ("client_secret", salesforce::fixtures::CLIENT_SECRET.into()),
        ("username", salesforce::fixtures::USERNAME.into()),
        (
            "password",
            format!(
                "{}{}",
                salesforce::fixtures::PASSWORD,
                salesforce::fixtures::SECURITY_TOKEN
            ),
        ),
    ]
}

#[tokio::test]
async fn salesforce_answers_without_expires_in_with_issued_at_ms_and_a_valid_signature() {
    let clock = Clock::new();
    let sf = salesforce::start(Default::default(), Harness::with_clock(clock.clone()))
        .await
        .unwrap();
    let form = sf_password_form();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_form(sf.url(salesforce::TOKEN_PATH), &form).await;
    assert_eq!(status, 200);
    assert!(body.get("expires_in").is_none());
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token in the password flow"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_at"],
        json!(clock.unix_millis().to_string()),
        "a string of epoch ms"
    );
    assert_eq!(
        body["instance_url"],
        json!(sf.base_url().as_str().trim_end_matches('/'))
    );
    let id = body["id"].as_str().unwrap();
    assert!(id.ends_with(&format!(
        "/id/{}/{}",
        salesforce::fixtures::ORG_ID,
        salesforce::fixtures::USER_ID
    )));
    let mut mac =
        Hmac::<Sha256>::new_from_slice(salesforce::fixtures::CLIENT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{id}{}", body["issued_at"].as_str().unwrap()).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(body["signature"], json!(expected));

    // The token works for the session timeout, then the API says 401 with the JSON array.
    let token = body["access_token"].as_str().unwrap().to_owned();
    let limits = sf.url("/services/data/v60.0/limits");
    let get = |t: String| {
        client()
            .get(limits.clone())
            .header("authorization", format!("OAuth {t}"))
            .send()
    };
    assert_eq!(get(token.clone()).await.unwrap().status(), 200);
    clock.advance(time::Duration::hours(2));
    let expired = get(token).await.unwrap();
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.headers()["www-authenticate"], "Token");
    let body: Value = expired.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
}

#[tokio::test]
async fn salesforce_reports_a_missing_grant_type_and_a_wrong_password_as_documented() {
    let sf = salesforce::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let (status, body) = post_form(sf.url(salesforce::TOKEN_PATH), &[("client_id", "x")]).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_request", "error_description": "grant type is missing"})
        )
    );
    let mut form = sf_password_form();
    form[4].1 = salesforce::fixtures::PASSWORD.into(); // without the security token
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_form(sf.url(salesforce::TOKEN_PATH), &form).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "authentication failure"})
        )
    );
}

#[tokio::test]
async fn google_rejects_assertions_outside_the_one_hour_window() {
    let clock = Clock::new();
    let g = google::start(Default::default(), Harness::with_clock(clock.clone()))
        .await
        .unwrap();
    let sign = |iat: i64, exp: i64| {
        let claims = json!({"iss": google::fixtures::SERVICE_ACCOUNT, "scope": google::fixtures::DRIVE_READONLY,
            "aud": google::PRODUCTION_AUDIENCE, "iat": iat, "exp": exp});
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(keys::PRIVATE_KEY_A_PEM.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .unwrap()
    };
    let now = clock.unix_seconds();
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let (status, body) = post_form(
        g.url(google::TOKEN_PATH),
        &[("grant_type", grant), ("assertion", &sign(now, now + 3600))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
    let (status, body) = post_form(
        g.url(google::TOKEN_PATH),
        &[("grant_type", grant), ("assertion", &sign(now, now + 7200))],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JWT: Token must be a short-lived token (60 minutes)")
    );
}

#[tokio::test]
async fn microsoft_names_the_missing_parameter_and_the_unknown_tenant() {
    let ms = microsoft::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let (status, body) = post_form(
        ms.url(&microsoft::token_path(microsoft::fixtures::TENANT_ID)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([900144]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'client_id'")
    );
    let (status, body) = post_form(
        ms.url(&microsoft::token_path("nobody.onmicrosoft.com")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([90002]));
}

#[tokio::test]
async fn slack_reports_oauth_errors_with_http_200() {
    let s = slack::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let response = client()
        .post(s.url(slack::ACCESS_PATH))
        .basic_auth(slack::fixtures::CLIENT_ID, Some("wrong"))
        .form(&[("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "bad_client_secret"})
    );
    let (status, body) = post_form(
        s.url(slack::ACCESS_PATH),
        &[
            ("client_id", slack::fixtures::CLIENT_ID),
            ("client_secret", slack::fixtures::CLIENT_SECRET),
            ("code", "never-issued"),
        ],
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"ok": false, "error": "invalid_code"}))
    );
}

/// Walks the authorize redirect like a browser would and returns the code.
async fn authorize(
    emu: &proofpix_emulators::Emulator,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .get(emu.url(path))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn authorize_redirects_with_code_and_state_but_never_for_an_unknown_client() {
    let b = box_com::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let redirect = "http://127.0.0.1:1/cb?keep=1";
    let ok = authorize(
        &b,
        box_com::AUTHORIZE_PATH,
        &[
            ("response_type", "code"),
            ("client_id", box_com::fixtures::CLIENT_ID),
            ("redirect_uri", redirect),
            ("state", "st4te"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 302);
    let location = url::Url::parse(ok.headers()["location"].to_str().unwrap()).unwrap();
    let params: std::collections::BTreeMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(params["keep"], "1", "the redirect URI's own query survives");
    assert_eq!(params["state"], "st4te");
    assert!(params.contains_key("code"));
    let unknown = authorize(
        &b,
        box_com::AUTHORIZE_PATH,
        &[
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(unknown.status(), 400);
    assert!(unknown.headers().get("location").is_none());
}

#[tokio::test]
async fn box_refresh_tokens_work_once_and_dropbox_ones_keep_working() {
    let b = box_com::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let code_of = |r: reqwest::Response| {
        let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    };
    let redirect = "http://127.0.0.1:1/cb";
    let code = code_of(
        authorize(
            &b,
            box_com::AUTHORIZE_PATH,
            &[
                ("response_type", "code"),
                ("client_id", box_com::fixtures::CLIENT_ID),
                ("redirect_uri", redirect),
            ],
        )
        .await,
    );
    let creds = [
        ("client_id", box_com::fixtures::CLIENT_ID),
        ("client_secret", box_com::fixtures::CLIENT_SECRET),
    ];
    let (_, body) = post_form(
        b.url(box_com::TOKEN_PATH),
        &[
            &creds[..],
            &[("grant_type", "authorization_code"), ("code", &code)],
        ]
        .concat(),
    )
    .await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["restricted_to"], json!([]));
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        &creds[..],
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    ]
    .concat();
    let (first, body) = post_form(b.url(box_com::TOKEN_PATH), &form).await;
    assert_eq!(first, 200);
    assert_ne!(
        body["refresh_token"].as_str().unwrap(),
        refresh,
        "a new refresh token every time"
    );
    let (second, body) = post_form(b.url(box_com::TOKEN_PATH), &form).await;
    assert_eq!(
        (second, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let d = dropbox::start(Default::default(), Harness::default())
        .await
        .unwrap();
    let code = code_of(
        authorize(
            &d,
            dropbox::AUTHORIZE_PATH,
            &[
                ("response_type", "code"),
                ("client_id", dropbox::fixtures::CLIENT_ID),
                ("redirect_uri", redirect),
                ("token_access_type", "offline"),
            ],
        )
        .await,
    );
    let creds = [
        ("client_id", dropbox::fixtures::CLIENT_ID),
        ("client_secret", dropbox::fixtures::CLIENT_SECRET),
    ];
    let (_, body) = post_form(
        d.url(dropbox::TOKEN_PATH),
        &[
            &creds[..],
            &[("grant_type", "authorization_code"), ("code", &code)],
        ]
        .concat(),
    )
    .await;
    assert_eq!(body["expires_in"], 14400);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, body) = post_form(
            d.url(dropbox::TOKEN_PATH),
            &[
                &creds[..],
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            ]
            .concat(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            body.get("refresh_token").is_none(),
            "Dropbox refresh responses carry no refresh token"
        );
    }
}

#[tokio::test]
async fn faults_apply_per_route_for_the_given_count_and_the_log_records_everything() {
    let h = Harness::default();
    let d = dropbox::start(Default::default(), h.clone()).await.unwrap();
    d.faults().times(
        dropbox::TOKEN_PATH,
        2,
        Fault::Respond(
            ErrorReply::json(429, json!({"error": "slow_down"})).with_header("retry-after", "3"),
        ),
    );
    for _ in 0..2 {
        let response = client()
            .post(d.url(dropbox::TOKEN_PATH))
            .form(&[("grant_type", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
    }
    let third = client()
        .post(d.url(dropbox::TOKEN_PATH))
        .basic_auth("app", Some("pw"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 400, "the route itself answers again");
    let log = d.log().to_path(dropbox::TOKEN_PATH);
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].basic_auth(), Some(("app".into(), "pw".into())));
    assert_eq!(d.log().mentioning("pw").len(), 1);

    d.faults().once(
        "*",
        Fault::Redirect {
            status: 307,
            location: "http://127.0.0.1:9/elsewhere".into(),
        },
    );
    let redirected = client()
        .post(d.url("/2/users/get_current_account"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status(), 307);
    assert_eq!(
        redirected.headers()["location"],
        "http://127.0.0.1:9/elsewhere"
    );
}
