//! Shared test plumbing: the clock adapter, the HTTP client, a browser stand-in, inputs per
//! vendor, and the global log capture.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use proofpix_auth::{
    AuthScheme, CredentialInputs, CredentialOptions, Credentials, JwtBearerAuth, LoopbackCallback,
    MemoryPersistence, OAuth2Auth, PasswordAuth,
};
use proofpix_emulators::{
    Emulator, Harness, box_com, dropbox, google, microsoft, salesforce, slack,
};
use proofpix_vault::Secret;
use time::OffsetDateTime;
use url::Url;

/// The emulators' clock as the auth crate's clock, so both sides agree on "now".
#[derive(Debug)]
pub struct EmuClock(pub proofpix_emulators::Clock);

impl proofpix_auth::Clock for EmuClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

/// Everything captured by the global subscriber, every test, every thread.
static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (TRACE, every crate: ours, reqwest, hyper, axum) once.
pub fn init() {
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("one global subscriber per test binary");
        buffer
    });
}

/// The captured log so far.
pub fn captured_log() -> String {
    let log = LOG.get().expect("common::init() was called");
    String::from_utf8_lossy(&log.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

/// Every secret a test touched: fixture secrets, everything the emulators minted, and every
/// sensitive value a client sent them (assertions, codes, verifiers, passwords, Basic passwords).
pub fn secrets_seen(emulators: &[&Emulator]) -> Vec<String> {
    let mut out: Vec<String> = fixture_secrets().into_iter().map(str::to_owned).collect();
    out.push(format!(
        "{}{}",
        salesforce::fixtures::PASSWORD,
        salesforce::fixtures::SECURITY_TOKEN
    ));
    for emu in emulators {
        out.extend(emu.harness().minted_secrets());
        for request in emu.log().all() {
            let form = request.form();
            for field in [
                "assertion",
                "code",
                "code_verifier",
                "refresh_token",
                "client_secret",
                "password",
            ] {
                if let Some(v) = form.get(field) {
                    out.push(v.clone());
                }
            }
            if let Some((_, password)) = request.basic_auth() {
                out.push(password);
            }
            if let Some(auth) = request.header("authorization") {
                out.push(auth.to_owned());
                if let Some((_, token)) = auth.split_once(' ') {
                    out.push(token.to_owned());
                }
            }
        }
    }
    out.retain(|s| s.len() >= 8);
    out.sort();
    out.dedup();
    out
}

/// Secrets of the fixtures (the private key's body lines stand for the key).
pub fn fixture_secrets() -> Vec<&'static str> {
    let mut out = vec![
        salesforce::fixtures::CLIENT_SECRET,
        salesforce::fixtures::PASSWORD,
        salesforce::fixtures::SECURITY_TOKEN,
        microsoft::fixtures::CLIENT_SECRET,
        google::fixtures::CLIENT_SECRET,
        slack::fixtures::CLIENT_SECRET,
        box_com::fixtures::CLIENT_SECRET,
        dropbox::fixtures::CLIENT_SECRET,
    ];
    for pem in [
        proofpix_emulators::keys::PRIVATE_KEY_A_PEM,
        proofpix_emulators::keys::PRIVATE_KEY_B_PEM,
    ] {
        out.extend(pem.lines().filter(|l| !l.starts_with("-----")));
    }
    out
}

/// Fails if any captured log line contains any of `secrets` (raw or form-encoded).
pub fn assert_no_secret_logged(secrets: &[String]) {
    let log = captured_log();
    for secret in secrets {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for needle in [secret.as_str(), encoded.as_str()] {
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                panic!(
                    "a secret ({} chars) appeared in a log line: {line}",
                    secret.len()
                );
            }
        }
    }
}

/// Checks the log after a test against everything the given emulators saw.
pub fn finish(emulators: &[&Emulator]) {
    assert_no_secret_logged(&secrets_seen(emulators));
}

/// The host's client: never follows redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// The emulators listen on 127.0.0.1: the grant a local emulator needs.
pub fn loopback() -> proofpix_policy::BlockedNetworks {
    proofpix_policy::BlockedNetworks {
        allow_loopback: true,
        ..Default::default()
    }
}

/// A harness and the matching auth clock.
pub fn harness() -> (Harness, Arc<EmuClock>) {
    init();
    let clock = proofpix_emulators::Clock::new();
    (
        Harness::with_clock(clock.clone()),
        Arc::new(EmuClock(clock)),
    )
}

/// Builds credentials over a fresh in-memory store.
pub fn credentials(
    integration: &str,
    platform: &str,
    inputs: CredentialInputs,
    clock: Arc<EmuClock>,
) -> (Credentials, MemoryPersistence) {
    credentials_with(
        integration,
        platform,
        inputs,
        clock,
        CredentialOptions::default(),
    )
}

/// Like [`credentials`], with options.
pub fn credentials_with(
    integration: &str,
    platform: &str,
    inputs: CredentialInputs,
    clock: Arc<EmuClock>,
    options: CredentialOptions,
) -> (Credentials, MemoryPersistence) {
    let store = MemoryPersistence::new();
    let inputs_scheme = inputs.scheme.clone();
    let creds = Credentials::builder(integration, inputs, http(), Arc::new(store.clone()))
        .networks(loopback())
        .dialect(dialect_for(platform, &inputs_scheme))
        .clock(clock)
        .options(options)
        .build()
        .expect("valid inputs");
    (creds, store)
}

pub fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
        .collect()
}

pub fn oauth(token_url: Url, authorize_url: Option<Url>, scopes: &[&str]) -> OAuth2Auth {
    OAuth2Auth {
        token_url: token_url.to_string(),
        authorize_url: authorize_url.map(|u| u.to_string()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        client_id_field: "client_id".into(),
        client_secret_field: Some("client_secret".into()),
        extra_params: vec![],
    }
}

/// Salesforce username-password inputs (password and security token in separate secret fields).
pub fn salesforce_password(sf: &Emulator, security_token: &str) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::OAuth2Password(PasswordAuth {
            oauth: oauth(sf.url(salesforce::TOKEN_PATH), None, &[]),
            username_field: "username".into(),
            password_field: "password".into(),
            password_suffix_field: Some("security_token".into()),
        }),
        config: config(&[
            ("client_id", salesforce::fixtures::CLIENT_ID),
            ("username", salesforce::fixtures::USERNAME),
        ]),
        secrets: secrets(&[
            ("client_secret", salesforce::fixtures::CLIENT_SECRET),
            ("password", salesforce::fixtures::PASSWORD),
            ("security_token", security_token),
        ]),
    }
}

/// JWT bearer inputs.
pub fn jwt_inputs(
    token_url: Url,
    issuer: &str,
    subject: Option<&str>,
    audience: &str,
    key: &str,
    scopes: &[&str],
) -> CredentialInputs {
    let mut cfg = vec![("issuer", issuer)];
    if let Some(sub) = subject {
        cfg.push(("subject", sub));
    }
    CredentialInputs {
        scheme: AuthScheme::JwtBearer(JwtBearerAuth {
            token_url: token_url.to_string(),
            issuer_field: "issuer".into(),
            subject_field: Some("subject".into()),
            audience: audience.into(),
            private_key_field: "private_key".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }),
        config: config(&cfg),
        secrets: secrets(&[("private_key", key)]),
    }
}

/// Authorization-code inputs.
pub fn code_inputs(
    emu: &Emulator,
    token_path: &str,
    authorize_path: &str,
    client_id: &str,
    client_secret: &str,
    scopes: &[&str],
) -> CredentialInputs {
    CredentialInputs {
        scheme: AuthScheme::OAuth2AuthorizationCode(oauth(
            emu.url(token_path),
            Some(emu.url(authorize_path)),
            scopes,
        )),
        config: config(&[("client_id", client_id)]),
        secrets: secrets(&[("client_secret", client_secret)]),
    }
}

/// Plays the operator's browser: opens the authorize URL, follows the provider's redirect to the
/// loopback listener, and completes the authorization with what the listener received.
pub async fn authorize_in_browser(
    creds: &Credentials,
) -> Result<proofpix_auth::TokenSummary, proofpix_auth::AuthError> {
    let callback = LoopbackCallback::bind("/callback").await?;
    let request = creds.begin_authorization(callback.redirect_uri())?;
    let waiter = tokio::spawn(callback.wait(std::time::Duration::from_secs(30)));
    let browser = http();
    let response = browser
        .get(request.url.clone())
        .send()
        .await
        .expect("authorize endpoint answers");
    assert!(
        response.status().is_redirection(),
        "authorize answered {}",
        response.status()
    );
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_owned();
    let page = browser
        .get(&location)
        .send()
        .await
        .expect("loopback answers");
    assert_eq!(page.status(), 200);
    let params = waiter.await.expect("listener task")?;
    assert_eq!(
        params.state, request.state,
        "the provider returned our state"
    );
    creds
        .complete_authorization(&params.state, &params.code)
        .await
}

/// Calls an emulator route with the credentials' header; returns status and body.
pub async fn call(
    method: reqwest::Method,
    url: Url,
    header: &proofpix_auth::HeaderPair,
) -> (u16, String) {
    let response = http()
        .request(method, url)
        .header(header.name.as_str(), header.value.expose())
        .send()
        .await
        .expect("emulator answers");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// The dialect a plugin for `platform` gets: the host's table for plugins of contract 0.1/0.2
/// (`host/service/src/legacy_dialect.rs`), which reproduces each vendor's quirks from the
/// generic mechanism.
pub fn dialect_for(platform: &str, scheme: &AuthScheme) -> proofpix_auth::Dialect {
    crate::legacy_dialect::for_legacy_plugin(platform, scheme.token_url())
}
