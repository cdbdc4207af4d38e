//! The worked example of contract 0.3's `oauth-dialect`: a plugin for "Cinder Files", a provider
//! the host has never heard of (`tests/plugins/custom-dialect`), against an emulator of
//! Cinder's token endpoint and API written here. Cinder deviates from RFC 6749 in six ways
//! (see the plugin's docs); the plugin declares them and the host, which names no vendor, speaks
//! Cinder from the declaration alone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};
use serde_json::json;

const CLIENT_ID: &str = "cinder-client-7f3a";
const CLIENT_SECRET: &str = "cinder-secret-9b41c0d2";
const TOKEN: &str = "cinder-access-token-5e8d";

#[derive(Default)]
struct Cinder {
    base: Mutex<String>,
    /// Every token request: its form and whether it carried an Authorization header.
    token_requests: Mutex<Vec<(BTreeMap<String, String>, bool)>>,
    /// Bearer tokens the API saw.
    api_tokens: Mutex<Vec<String>>,
}

/// Cinder's token endpoint as its (imagined) documentation describes it: credentials and tenant
/// in the body, comma-separated scopes, no `expires_in`, the tenant's API address with the token,
/// and every error an HTTP 200 with `ok: false`.
async fn token(State(c): State<Arc<Cinder>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    c.token_requests
        .lock()
        .unwrap()
        .push((form.clone(), headers.contains_key("authorization")));
    let get = |k: &str| form.get(k).map(String::as_str);
    let error = |code: &str, message: &str| {
        axum::Json(json!({"ok": false, "error": {"code": code, "message": message}}))
    };
    if get("client_id") != Some(CLIENT_ID) || get("client_secret") != Some(CLIENT_SECRET) {
        return error("E_CLIENT_REVOKED", "This API client has been revoked.");
    }
    if get("grant_type") != Some("client_credentials")
        || get("scope") != Some("files.read,files.write")
        || get("tenant") != Some("acme")
    {
        return error("E_BAD_REQUEST", "grant, scope or tenant not as documented");
    }
    let base = c.base.lock().unwrap().clone();
    axum::Json(json!({
        "ok": true,
        "access_token": TOKEN,
        "token_type": "bearer",
        "links": {"api": format!("{base}/t/acme")},
    }))
}

async fn me(State(c): State<Arc<Cinder>>, headers: HeaderMap) -> impl IntoResponse {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    c.api_tokens.lock().unwrap().push(bearer.clone());
    if bearer == format!("Bearer {TOKEN}") {
        axum::Json(json!({"name": "acme service account"})).into_response()
    } else {
        (axum::http::StatusCode::UNAUTHORIZED, "no").into_response()
    }
}

async fn cinder() -> (String, Arc<Cinder>) {
    let c = Arc::new(Cinder::default());
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/t/acme/me", get(me))
        .with_state(c.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    *c.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, c)
}

async fn host(base: &str, secret: &str) -> (Host, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("store"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        first_party_plugins: false,
        data_dir: Some(tmp.path().to_path_buf()),
        trust_development_build: true,
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    let report = host
        .install_plugin(
            &std::fs::read(proofpix_plugin_artifacts::TEST_CUSTOM_DIALECT).unwrap(),
            &dev,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.plugin.contract_version(), "0.3.0");
    let spec = IntegrationSpec {
        id: "cinder".into(),
        plugin: "cinder-files".into(),
        config: BTreeMap::from([
            ("base_url".to_string(), base.to_string()),
            ("tenant".to_string(), "acme".to_string()),
            ("client_id".to_string(), CLIENT_ID.to_string()),
        ]),
        secrets: BTreeMap::from([("client_secret".to_string(), Secret::new(secret))]),
        grant: OperatorGrant {
            hosts: vec![base.to_string()],
            allow_loopback: true,
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, "test").await.unwrap();
    (host, tmp)
}

/// Every declared quirk is honoured: the token request is the one Cinder documents, the
/// `ok: true` answer without `expires_in` is a token, and the API address that came with it is
/// where the plugin's credentialed endpoint points.
#[tokio::test]
async fn a_provider_the_host_never_heard_of_works_from_its_declared_dialect() {
    let (base, cinder) = cinder().await;
    let (host, _tmp) = host(&base, CLIENT_SECRET).await;
    let report = host.test("cinder").await;
    assert!(report.ok(), "{:?}", report.steps);
    let requests = cinder.token_requests.lock().unwrap().clone();
    let (form, basic) = requests.first().expect("a token request");
    assert!(
        !basic,
        "client credentials go in the body, never in HTTP Basic"
    );
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["scope"], "files.read,files.write");
    assert_eq!(form["tenant"], "acme");
    assert_eq!(
        cinder
            .api_tokens
            .lock()
            .unwrap()
            .first()
            .map(String::as_str),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the token reached the API at the address the token response named"
    );
}

/// An `ok: false` inside an HTTP 200 is an error, read at the declared pointers, and the
/// declared rule's words reach the operator under the plugin's platform name; the secret does
/// not.
#[tokio::test]
async fn a_provider_error_in_an_http_200_says_what_the_plugin_declared() {
    let (base, _cinder) = cinder().await;
    let (host, _tmp) = host(&base, "a-revoked-secret-value").await;
    let report = host.test("cinder").await;
    assert!(!report.ok());
    let step = report
        .steps
        .iter()
        .find(|s| s.name == "credentials")
        .expect("a credentials step");
    assert!(!step.ok);
    assert!(
        step.detail
            .contains("Cinder Files rejected the app's client credentials"),
        "{}",
        step.detail
    );
    assert!(
        step.detail.contains("Admin > API clients"),
        "{}",
        step.detail
    );
    assert!(step.detail.contains("E_CLIENT_REVOKED"), "{}", step.detail);
    assert!(
        !step.detail.contains("a-revoked-secret-value"),
        "{}",
        step.detail
    );
}
