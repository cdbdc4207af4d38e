//! Token-injection overhead per request.
//!
//! Run: `CARGO_TARGET_DIR=/work/targets/auth cargo bench -p proofpix-auth --bench injection`
//!
//! - `token_injection/*`: the cost of asking [`Credentials::authorization`] for the header when the
//!   token is cached and fresh (the hot path every outbound plugin request takes), next to a static
//!   API key.
//! - `loopback_request/*`: one full GET through reqwest to the Microsoft emulator's
//!   `/v1.0/organization` on 127.0.0.1, with a pre-built header (`static_header`) and with the header
//!   obtained from `authorization()` per request (`injected_header`). Both send the same valid
//!   token to the same handler, so the difference is the injection overhead in context.
//!
//! Setup (emulator start, the first token request) runs outside the timed loops.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use proofpix_auth::{
    ApiKeyAuth, AuthScheme, CredentialInputs, Credentials, MemoryPersistence, OAuth2Auth,
};
use proofpix_emulators::{Harness, microsoft};
use proofpix_vault::Secret;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let ms = rt
        .block_on(microsoft::start(Default::default(), Harness::default()))
        .expect("emulator");
    let inputs = CredentialInputs {
        scheme: AuthScheme::OAuth2ClientCredentials(OAuth2Auth {
            token_url: ms
                .url(&microsoft::token_path(microsoft::fixtures::TENANT_ID))
                .to_string(),
            authorize_url: None,
            scopes: vec![microsoft::fixtures::GRAPH_DEFAULT_SCOPE.into()],
            client_id_field: "client_id".into(),
            client_secret_field: Some("client_secret".into()),
            extra_params: vec![],
        }),
        config: BTreeMap::from([("client_id".into(), microsoft::fixtures::CLIENT_ID.into())]),
        secrets: BTreeMap::from([(
            "client_secret".into(),
            Secret::new(microsoft::fixtures::CLIENT_SECRET),
        )]),
    };
    let creds = Credentials::builder("bench", inputs, http(), Arc::new(MemoryPersistence::new()))
        .networks(proofpix_policy::BlockedNetworks {
            allow_loopback: true,
            ..Default::default()
        })
        .dialect(proofpix_auth::Dialect {
            client_auth: proofpix_auth::ClientAuth::Body,
            ..proofpix_auth::Dialect::named("Microsoft identity platform")
        })
        .build()
        .expect("credentials");
    let warm = rt
        .block_on(creds.authorization())
        .expect("token")
        .expect("header");
    let api_key = Credentials::builder(
        "key",
        CredentialInputs {
            scheme: AuthScheme::ApiKey(ApiKeyAuth {
                secret_field: "key".into(),
                header: "x-api-key".into(),
                prefix: String::new(),
            }),
            config: BTreeMap::new(),
            secrets: BTreeMap::from([("key".into(), Secret::new("static-api-key-value"))]),
        },
        http(),
        Arc::new(MemoryPersistence::new()),
    )
    .build()
    .expect("api key");

    let mut group = c.benchmark_group("token_injection");
    group.bench_function("authorization_warm_oauth_token", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(creds.authorization().await.unwrap()) });
    });
    group.bench_function("authorization_static_api_key", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(api_key.authorization().await.unwrap()) });
    });
    group.finish();

    let client = http();
    let url = ms.url("/v1.0/organization");
    let static_value = warm.value.expose().to_owned();
    let mut group = c.benchmark_group("loopback_request");
    group.bench_function("static_header", |b| {
        b.to_async(&rt).iter(|| async {
            let response = client
                .get(url.clone())
                .header("authorization", static_value.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            black_box(response.bytes().await.unwrap())
        });
    });
    group.bench_function("injected_header", |b| {
        b.to_async(&rt).iter(|| async {
            let header = creds.authorization().await.unwrap().unwrap();
            let response = client
                .get(url.clone())
                .header(header.name.as_str(), header.value.expose())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            black_box(response.bytes().await.unwrap())
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine's two cores are shared.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50);
    targets = bench
}
criterion_main!(benches);
