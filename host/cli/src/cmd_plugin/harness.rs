//! `proofpix plugin test PLUGIN --fixtures DIR [--record URL]`: runs a plugin against recorded
//! HTTP exchanges, deterministically, and compares what it cost with a baseline.
//!
//! A fixture directory holds `fixture.json`:
//!
//! ```json
//! {"config": {"base_url": "{replay}"},
//!  "exchanges": [{"method": "GET", "path": "/files", "status": 200,
//!                 "headers": [["content-type", "application/json"]], "body": "[...]"}]}
//! ```
//!
//! (a body that is not UTF-8, an image, is stored as the bytes themselves in
//! `bodies/<sha256 prefix>.<ext>` and named by `body_file`; the older `body_hex` is still
//! read) and `baseline.json` with the figures to hold the plugin to, written when the fixture
//! is recorded (by a replay of it, run straight after the recording) or, for a fixture written
//! by hand, by its first replay. The run starts a local server that answers each request with
//! the first unused recorded exchange of the same origin, method and path (query included; the
//! last one is reused when a request repeats),
//! sets `{replay}` in the config to that server, and drives the plugin as a sync would:
//! `check`, `discover` until the last page, `download` for every file (the host fetches the
//! bytes from the replay server); then, as the plugin's capabilities say, `write-back` of each
//! fetched file's analysis, `notify` of the high-risk files and the batch summary (at a fixed
//! time), and `events.handle` of each webhook request in the fixture's `events` (added while
//! recording with `--event FILE`). What those produce is reported and kept in the baseline
//! (`outcomes`). Secrets the host uses itself (a signing key, a secret webhook URL, which may
//! name `{replay}`) are given with `--secret` on replay too. It runs with fuel metering, so
//! instruction counts are exactly repeatable for the same component and fixture.
//!
//! Absolute URLs are rewritten, not recorded away: the fixture keeps bodies and headers as the
//! service sent them and names the service (`service`) and the other hosts the plugin's
//! declared endpoints resolve to (`origins`, a download host a 302 leads to). While recording
//! and replaying, each of those hosts is stood in for by a local server of its own, and every
//! absolute URL under one of them in an answer's body (when it is text, raw or JSON-escaped)
//! and headers (`Location`, `Link`...) points at its server instead, so next-page links and
//! redirects come back to the harness and replay offline; exchanges on another origin carry
//! it (`origin`). The recording proxy follows no redirect: the 302 is recorded and the host
//! follows it as it would live, dropping credentials on a host that takes none.
//!
//! Error answers are fixtures like any other. `--inject 'GET /files=503'` has the recording
//! proxy answer the first such request itself, and record that answer, where a service will
//! not fail on demand. The run retries a call whose error says a later try may succeed
//! (rate-limited, transient, a download answered 429 or 5xx) up to [`MAX_ATTEMPTS`] times, as a
//! sync would, and a recorded `401` after which the host refreshed its token replays as a
//! refresh and a retry. Every failed call is reported (`errors`, retried ones marked) and kept
//! in the baseline: a replay whose calls fail differently fails.
//!
//! It fails when a request has no recorded answer, when calls fail or write-back, notify and
//! events produce otherwise than the baseline says, or when a figure exceeds the baseline by
//! more than `--threshold` percent (component size, calls, fuel, peak memory, log bytes, HTTP
//! requests, files). `--update-baseline` writes the new figures instead.
//!
//! `--record URL` runs the same scenario against `URL` through a recording proxy and writes
//! `fixture.json`. Credentials are injected by the host and never recorded (request headers
//! are not stored); secret values given with `--secret`, and any token the host obtains, are
//! replaced by `[redacted]` (the runtime scrubber's marker, so a recording and what the
//! plugin saw while recording agree) wherever they appear in what is recorded: request paths and
//! queries, response headers and bodies, raw or percent-encoded (any mix, `+` as a space),
//! JSON-escaped or base64-encoded ([`Scrubber`]). On replay, request paths are scrubbed the
//! same way before they are matched.
//!
//! Authentication while recording is the host's own, as in the daemon: an API key as given,
//! or an OAuth 2.0 client-credentials, password or JWT-bearer token that the host obtains
//! itself from the token URL in the config (with `{replay}` standing for `URL`). The token
//! exchange goes straight to the service and is not recorded; the non-secret context it
//! yields (Salesforce's `instance_url`) is, with `URL` written as `{replay}`, so the replay
//! hands the plugin the same context. A plugin that chooses its flow per integration
//! (`auth_flow`) is described with the config first, as the daemon does. The authorization-code
//! flow needs a person at a browser once: `--integration NAME` records as a configured
//! integration that went through it (`integration authorize`), with its config, its secrets
//! and its credentials, which refresh from the stored refresh token and store rotated tokens
//! back, so the integration keeps working. Replays inject a fixed bearer token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use proofpix_model::RemoteFile;
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::contract::AuthScheme;
use proofpix_runtime::{
    BoxFuture, Content, CredentialProvider, HeaderPair, IntegrationContext, RuntimeConfig,
    StaticCredentials,
};
use proofpix_service::{AuthCredentials, auth_flow, credentials};
use proofpix_vault::Secret;
use serde::{Deserialize, Serialize};

/// The placeholder in fixture config values for the replay server's base URL.
pub const REPLAY_PLACEHOLDER: &str = "{replay}";
/// Most discovery pages one run follows; a plugin that pages forever is a failure.
const MAX_PAGES: usize = 1000;
/// Largest download the harness reads, per file.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// One recorded request and its answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    /// The host it went to, when not the recorded service: one of [`Fixture::origins`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// HTTP method, upper case.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status code.
    pub status: u16,
    /// Response headers (lower-case names).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Response body as text, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Response body as lowercase hex, when it is not: how fixtures stored binary bodies
    /// before `body_file` (twice their size); still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<String>,
    /// Response body in a file of its own, when it is not UTF-8 (an image): a path relative to
    /// the fixture directory, `bodies/<sha256 prefix>.<ext>`, named by content so one body
    /// served twice is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
    /// The bytes of `body_file`, read with the fixture, or kept until it is written.
    #[serde(skip)]
    pub body_raw: Option<Vec<u8>>,
}

/// Where binary bodies go, under the fixture directory.
const BODIES_DIR: &str = "bodies";

impl Exchange {
    fn body_bytes(&self) -> Vec<u8> {
        if let Some(t) = &self.body {
            return t.as_bytes().to_vec();
        }
        if let Some(b) = &self.body_raw {
            return b.clone();
        }
        self.body_hex
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default()
    }

    /// A body as recorded: text inline, anything else kept for a file of its own.
    fn set_body(&mut self, bytes: Vec<u8>) {
        match String::from_utf8(bytes) {
            Ok(text) => self.body = Some(text),
            Err(e) => self.body_raw = Some(e.into_bytes()),
        }
    }
}

impl Fixture {
    /// Reads `dir/fixture.json` and the body files it names.
    ///
    /// # Errors
    /// Unreadable or malformed files, and a body file named outside `bodies/`.
    pub fn read(dir: &std::path::Path) -> anyhow::Result<Fixture> {
        let path = dir.join("fixture.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut fixture: Fixture = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a fixture", path.display()))?;
        for e in &mut fixture.exchanges {
            let Some(name) = &e.body_file else { continue };
            // A fixture is input: its body files stay inside the fixture directory.
            let safe = name
                .strip_prefix(BODIES_DIR)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|file| {
                    !file.is_empty()
                        && !file.starts_with('.')
                        && file
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                });
            if !safe {
                bail!(
                    "{}: body_file {name:?} is not a file under {BODIES_DIR}/",
                    path.display()
                );
            }
            let file = dir.join(name);
            e.body_raw = Some(
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
            );
        }
        Ok(fixture)
    }

    /// Writes `dir/fixture.json`, and each binary body to `dir/bodies/` under a name taken
    /// from its content.
    ///
    /// # Errors
    /// Unwritable files.
    pub fn write(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        use sha2::Digest;
        std::fs::create_dir_all(dir)?;
        // Bodies of an earlier recording into the same directory are not this one's.
        let bodies = dir.join(BODIES_DIR);
        if bodies.is_dir() {
            std::fs::remove_dir_all(&bodies)
                .with_context(|| format!("cannot replace {}", bodies.display()))?;
        }
        for e in &mut self.exchanges {
            let Some(bytes) = &e.body_raw else { continue };
            let digest = hex::encode(sha2::Sha256::digest(bytes));
            let content_type = e
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default();
            let ext = [
                ("image/jpeg", "jpg"),
                ("image/png", "png"),
                ("image/gif", "gif"),
                ("image/webp", "webp"),
                ("image/heic", "heic"),
                ("image/tiff", "tif"),
                ("application/pdf", "pdf"),
            ]
            .iter()
            .find(|(t, _)| content_type.starts_with(t))
            .map_or("bin", |(_, x)| x);
            let name = format!("{BODIES_DIR}/{}.{ext}", digest.get(..16).unwrap_or(&digest));
            std::fs::create_dir_all(dir.join(BODIES_DIR))?;
            std::fs::write(dir.join(&name), bytes)?;
            e.body_file = Some(name);
            e.body_hex = None;
        }
        std::fs::write(
            dir.join("fixture.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        Ok(())
    }
}

/// `fixture.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fixture {
    /// Non-secret config; `{replay}` is replaced with the replay server's URL.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The recorded exchanges.
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
    /// Non-secret context the host's authentication yielded while recording (such as
    /// `instance_url`), handed to the plugin on replay; `{replay}` as in `config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_context: BTreeMap<String, String>,
    /// The service recorded against (`--record URL`). Absolute URLs under it in bodies and
    /// headers are answered with the replay server's, so next-page links and redirects stay
    /// offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Other hosts the plugin reached through its declared endpoints (a download host a
    /// redirect leads to), as `scheme://host[:port]`; each is replayed by a server of its own,
    /// and URLs under it are rewritten to that server the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// Inbound webhook requests handed to the plugin's `events.handle`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// An inbound webhook request as the platform sends it (`--event FILE` takes this shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// HTTP method, `POST` unless given.
    #[serde(default = "post")]
    pub method: String,
    /// Path below `/hooks/{integration}`.
    #[serde(default)]
    pub path: String,
    /// Query string, without `?`.
    #[serde(default)]
    pub query: String,
    /// Request headers (a signature header among them).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    #[serde(default)]
    pub body: String,
}

fn post() -> String {
    "POST".to_string()
}

/// The token used on replay: a fixed bearer and the recorded context.
#[derive(Debug)]
struct ReplayCredentials {
    token: Secret,
    context: BTreeMap<String, String>,
}

impl CredentialProvider for ReplayCredentials {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderPair>, String>> {
        Box::pin(async move { Ok(Some(("authorization".to_string(), self.token.clone()))) })
    }
    /// A recorded `401` was followed by the token refresh the host made while recording (the
    /// token exchange itself is not recorded): the replay's token is "refreshed" as well, and
    /// the retried call gets the next recorded answer.
    fn refresh(&self, _rejected: Option<Secret>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn context(&self) -> BTreeMap<String, String> {
        self.context.clone()
    }
}

/// Recording: the host's real credentials, with the service's URL in their context pointed at
/// the recording proxy (so a plugin that calls `{auth.instance_url}` is recorded too).
#[derive(Debug)]
struct RecordingCredentials {
    inner: Arc<dyn CredentialProvider>,
    /// Recorded origins to the servers standing in for them.
    map: Vec<(String, String)>,
}

impl CredentialProvider for RecordingCredentials {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderPair>, String>> {
        self.inner.authorization()
    }
    fn refresh(&self, rejected: Option<Secret>) -> BoxFuture<'_, Result<(), String>> {
        self.inner.refresh(rejected)
    }
    fn context(&self) -> BTreeMap<String, String> {
        self.inner
            .context()
            .into_iter()
            .map(|(k, v)| (k, rewrite_origins(&v, &self.map)))
            .collect()
    }
}

/// `map` with every occurrence of `from` in its values replaced by `to`.
fn rebase(map: &BTreeMap<String, String>, from: &str, to: &str) -> BTreeMap<String, String> {
    let from = from.trim_end_matches('/');
    map.iter()
        .map(|(k, v)| (k.clone(), v.replace(from, to)))
        .collect()
}

/// What one run cost: `baseline.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Figures {
    /// Component size in bytes.
    pub component_bytes: u64,
    /// Plugin calls made.
    pub calls: u64,
    /// Guest instructions (fuel) consumed.
    pub fuel: u64,
    /// Highest linear memory, bytes.
    pub peak_memory_bytes: u64,
    /// Log and stdio bytes produced.
    pub log_bytes: u64,
    /// HTTP requests the plugin and the host's downloads made.
    pub http_requests: u64,
    /// Files listed.
    pub files: u64,
    /// The calls that failed, in order, retried ones included (`... (retried)`): how the
    /// plugin handled the error answers in the fixture. A replay must fail the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What write-back, notify and events produced, in order. A replay must produce the same;
    /// absent in a baseline written before they were driven, and then not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<String>>,
}

impl Figures {
    fn rows(&self) -> [(&'static str, u64); 7] {
        [
            ("component_bytes", self.component_bytes),
            ("calls", self.calls),
            ("fuel", self.fuel),
            ("peak_memory_bytes", self.peak_memory_bytes),
            ("log_bytes", self.log_bytes),
            ("http_requests", self.http_requests),
            ("files", self.files),
        ]
    }

    /// The figures that grew by more than `percent` over `baseline`, as messages.
    pub fn regressions(&self, baseline: &Figures, percent: u64) -> Vec<String> {
        self.rows()
            .into_iter()
            .zip(baseline.rows())
            .filter(|((_, now), (_, base))| {
                // now > base * (1 + percent/100), in integers.
                u128::from(*now) * 100 > u128::from(*base) * u128::from(100 + percent)
            })
            .map(|((name, now), (_, base))| {
                format!("{name}: {now}, baseline {base} (more than {percent}% over)")
            })
            .collect()
    }
}

/// How the command was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plugin file.
    pub plugin: PathBuf,
    /// The fixture directory.
    pub fixtures: PathBuf,
    /// Record against this base URL instead of replaying.
    pub record: Option<String>,
    /// Extra non-secret config for recording, `FIELD=VALUE`.
    pub config: Vec<(String, String)>,
    /// Secret values for recording (API key, client secret, private key...), by field.
    pub secrets: Vec<(String, Secret)>,
    /// Allowed growth over the baseline, percent.
    pub threshold: u64,
    /// Write the baseline instead of comparing.
    pub update_baseline: bool,
    /// Recording: answers to make up instead of forwarding, `METHOD PATH=STATUS`.
    pub inject: Vec<String>,
    /// Recording: webhook request files to add to the fixture's events.
    pub events: Vec<PathBuf>,
    /// Recording: authenticate as this configured integration does, with its stored tokens
    /// (an authorization-code integration's refresh token), secrets and config.
    pub integration: Option<String>,
}

/// What recording takes from a configured integration.
struct StoredIntegration {
    id: String,
    config: BTreeMap<String, String>,
    secrets: Vec<(String, Secret)>,
    credentials: Arc<dyn CredentialProvider>,
    /// Keeps the store the credentials persist refreshed tokens to open.
    _host: proofpix_service::Host,
}

/// Loads integration `id` as the daemon would: its non-secret config, its secrets from the
/// vault, and its credentials, which refresh from the stored refresh token and store the new
/// tokens back (a provider that rotates refresh tokens leaves the integration working).
async fn stored_integration(
    id: &str,
    info: &proofpix_runtime::contract::PluginInfo,
) -> anyhow::Result<StoredIntegration> {
    let host = crate::cmd_integration::host().await.context(
        "opening the ProofPix data directory to record with an integration's tokens (stop a daemon that holds it first)",
    )?;
    let (installed, ctx) = host.context(id, false).await?;
    if installed.info().id != info.id {
        bail!(
            "integration {id} uses plugin {}, not {}; record with an integration of this plugin",
            installed.info().id,
            info.id
        );
    }
    let credentials = ctx.credentials.clone().with_context(|| {
        format!("integration {id} has no credentials; its plugin signs in with none")
    })?;
    let secret_fields: Vec<&str> = info
        .config
        .iter()
        .filter(|f| f.secret)
        .map(|f| f.name.as_str())
        .collect();
    Ok(StoredIntegration {
        id: id.to_string(),
        config: ctx
            .config
            .iter()
            .filter(|(k, _)| !secret_fields.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secrets: ctx
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        credentials,
        _host: host,
    })
}

/// The shared state of the replay or recording servers.
#[derive(Default)]
struct ServerState {
    exchanges: Vec<Exchange>,
    used: Vec<bool>,
    /// Recording: the service to forward to.
    upstream: Option<String>,
    /// Recording: the client that forwards (it follows no redirect, so a redirect is recorded
    /// as the service sent it and the host follows it through the servers, as it would live).
    client: Option<reqwest::Client>,
    /// Absolute origins in answers and what they become (the service and each other origin,
    /// to the server that stands in for it).
    live: Vec<(String, String)>,
    recorded: Vec<Exchange>,
    misses: Vec<String>,
    requests: u64,
    scrub: Scrubber,
    /// Recording: error answers to give instead of forwarding, each once.
    inject: Vec<Injection>,
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (`/` too).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `--inject 'METHOD PATH=STATUS'`: the first request with that method and path (query
/// aside; `*` in `PATH` stands for any characters) is answered with `STATUS` by the recording proxy
/// instead of the service, and recorded like any other answer. This is how an error path is
/// recorded against a service that will not fail on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    method: String,
    path: String,
    status: u16,
    used: bool,
}

impl Injection {
    /// Parses `METHOD PATH=STATUS`.
    ///
    /// # Errors
    /// Another shape, or a status that is not 400-599.
    pub fn parse(text: &str) -> anyhow::Result<Injection> {
        let shape =
            || format!("--inject {text:?}: use 'METHOD PATH=STATUS', e.g. 'GET /files=503'");
        let (request, status) = text.rsplit_once('=').with_context(shape)?;
        let (method, path) = request.trim().split_once(' ').with_context(shape)?;
        let status: u16 = status.trim().parse().ok().with_context(shape)?;
        if !(400..600).contains(&status) {
            bail!("--inject {text:?}: {status} is not an error status (400-599)");
        }
        let path = path.trim();
        if !path.starts_with('/') {
            bail!("{}", shape());
        }
        Ok(Injection {
            method: method.trim().to_ascii_uppercase(),
            path: path.to_string(),
            status,
            used: false,
        })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or_default();
        !self.used && self.method == method.as_str() && glob_matches(&self.path, path)
    }

    /// The made-up answer: a JSON error, with `Retry-After: 1` where a service would send one.
    fn answer(&self) -> (u16, Vec<(String, String)>, String) {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if matches!(self.status, 429 | 503) {
            headers.push(("retry-after".to_string(), "1".to_string()));
        }
        let body = serde_json::json!({"error": {
            "code": self.status,
            "message": "injected by proofpix plugin test --inject",
        }})
        .to_string();
        (self.status, headers, body)
    }
}

/// What a recording must never contain.
pub const SCRUBBED: &str = proofpix_runtime::scrub::REDACTED;

/// Replaces secret values, however encoded, with [`SCRUBBED`].
///
/// Matching decodes as it goes: a span of the input that, with `%XX` escapes decoded (either
/// case) and `+` read as a space where the secret has one, spells a secret is replaced, so
/// raw, fully and partly percent-encoded forms are all found. JSON-escaped and base64 (standard
/// and URL-safe, padded or not) forms are replaced as literal variants.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Secrets and their literal variants, longest first.
    needles: Vec<Vec<u8>>,
    /// Bytes a match can start with (a needle's first byte, `%`, `+`).
    first: Vec<bool>,
}

impl Scrubber {
    /// A scrubber for these secret values (empty ones are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = Scrubber::default();
        for secret in secrets {
            s.add(secret.as_ref());
        }
        s
    }

    /// Adds a secret value.
    pub fn add(&mut self, secret: &str) {
        use base64::Engine as _;
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        if secret.is_empty() {
            return;
        }
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json
            .get(1..json.len().saturating_sub(1))
            .unwrap_or_default()
            .to_string();
        let mut variants = vec![
            secret.to_string(),
            json.replace('/', "\\/"),
            json,
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ];
        // A base64 form of a secret of one or two characters is too short to be told from
        // other text.
        if secret.len() < 3 {
            variants.truncate(3);
        }
        for v in variants {
            let v = v.into_bytes();
            if !v.is_empty() && !self.needles.contains(&v) {
                self.needles.push(v);
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        self.first = vec![false; 256];
        for b in self.needles.iter().filter_map(|n| n.first()).chain(b"%+") {
            if let Some(f) = self.first.get_mut(usize::from(*b)) {
                *f = true;
            }
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn text(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        String::from_utf8_lossy(&self.bytes(text.as_bytes())).into_owned()
    }

    /// `bytes` with every secret replaced.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let candidate = self.first.get(usize::from(b)).copied().unwrap_or(false);
            match candidate
                .then(|| self.needles.iter().find_map(|n| match_encoded(bytes, i, n)))
                .flatten()
            {
                Some(end) => {
                    out.extend_from_slice(SCRUBBED.as_bytes());
                    i = end;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }
}

/// Where a span of `hay` starting at `start` that spells `needle` ends, reading `%XX` as the
/// byte it encodes and `+` as a space where the needle has one.
fn match_encoded(hay: &[u8], start: usize, needle: &[u8]) -> Option<usize> {
    let mut j = start;
    for &want in needle {
        let b = *hay.get(j)?;
        if b == want {
            j += 1;
            continue;
        }
        if b == b'+' && want == b' ' {
            j += 1;
            continue;
        }
        if b == b'%' {
            let hex = hay.get(j + 1..j + 3)?;
            let decoded = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            if decoded == want {
                j += 3;
                continue;
            }
        }
        return None;
    }
    Some(j)
}

type Shared = Arc<Mutex<ServerState>>;

/// One listening server: the service's (`origin` none) or another origin's.
#[derive(Clone)]
struct Listener {
    state: Shared,
    origin: Option<String>,
}

async fn answer(
    axum::extract::State(listener): axum::extract::State<Listener>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, headers, body) = respond(&listener, method, uri, headers, body).await;
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            map.append(k, v);
        }
    }
    (status, map, body).into_response()
}

async fn respond(
    listener: &Listener,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    let state = &listener.state;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let (upstream, live) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        (s.upstream.clone(), s.live.clone())
    };
    let injected = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let found = s
            .inject
            .iter_mut()
            .filter(|_| upstream.is_some())
            .find(|i| i.matches(&method, &path));
        found.map(|i| {
            i.used = true;
            i.answer()
        })
    };
    let (status, headers, body) = match (upstream, injected) {
        (Some(_), Some((status, headers, body))) => {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let recorded_path = s.scrub.text(&path);
            s.recorded.push(Exchange {
                origin: listener.origin.clone(),
                method: method.as_str().to_string(),
                path: recorded_path,
                status,
                headers: headers.clone(),
                body: Some(body.clone()),
                ..Exchange::default()
            });
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, headers, body.into_bytes())
        }
        (Some(service), None) => {
            let target = listener.origin.clone().unwrap_or(service);
            forward(listener, &target, method, &path, headers, body).await
        }
        (None, _) => replay_answer(listener, &method, &path),
    };
    // What the plugin and the host's fetcher get: absolute URLs on the recorded hosts point
    // at the servers standing in for them, so they come back here.
    let headers = headers
        .into_iter()
        .map(|(k, v)| (k, rewrite_origins(&v, &live)))
        .collect();
    let body = match String::from_utf8(body) {
        Ok(text) => rewrite_origins(&text, &live).into_bytes(),
        Err(e) => e.into_bytes(),
    };
    (status, headers, body)
}

/// Replay: the first unused recorded exchange of this origin, method and path (the last one
/// again when a request repeats).
fn replay_answer(
    listener: &Listener,
    method: &Method,
    path: &str,
) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    let mut s = listener.state.lock().unwrap_or_else(|e| e.into_inner());
    // Recorded paths are scrubbed: match this one in the same form.
    let path = s.scrub.text(path);
    let candidates: Vec<usize> = s
        .exchanges
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.origin == listener.origin
                && e.method.eq_ignore_ascii_case(method.as_str())
                && e.path == path
        })
        .map(|(i, _)| i)
        .collect();
    let pick = candidates
        .iter()
        .copied()
        .find(|i| !s.used.get(*i).copied().unwrap_or(true))
        .or_else(|| candidates.last().copied());
    match pick.and_then(|i| s.exchanges.get(i).cloned().map(|e| (i, e))) {
        Some((i, e)) => {
            if let Some(u) = s.used.get_mut(i) {
                *u = true;
            }
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::OK);
            (status, e.headers.clone(), e.body_bytes())
        }
        None => {
            let on = listener
                .origin
                .as_deref()
                .map(|o| format!(" on {o}"))
                .unwrap_or_default();
            s.misses.push(format!("{method} {path}{on}"));
            (
                StatusCode::NOT_IMPLEMENTED,
                vec![],
                format!("no recorded exchange for {method} {path}{on}").into_bytes(),
            )
        }
    }
}

/// Recording: forwards to `target` and keeps the answer (without request headers, so
/// injected credentials are never stored).
async fn forward(
    listener: &Listener,
    target: &str,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    let state = &listener.state;
    let client = {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.client.clone().unwrap_or_default()
    };
    let url = format!("{}{path}", target.trim_end_matches('/'));
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET),
        &url,
    );
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = match req.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                vec![],
                format!("recording proxy: {e}").into_bytes(),
            );
        }
    };
    let status = resp.status().as_u16();
    let resp_headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "set-cookie" | "content-length" | "transfer-encoding" | "connection" | "date"
            )
        })
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    // Secrets reach a recording through the request (a key in the path or query), the
    // response headers (a service that echoes them) and bodies: scrub all of them.
    let scrubbed = s.scrub.bytes(&bytes);
    let recorded_headers = resp_headers
        .iter()
        .map(|(k, v)| (k.clone(), s.scrub.text(v)))
        .collect();
    let recorded_path = s.scrub.text(path);
    let mut exchange = Exchange {
        origin: listener.origin.clone(),
        method: method.as_str().to_string(),
        path: recorded_path,
        status,
        headers: recorded_headers,
        ..Exchange::default()
    };
    exchange.set_body(scrubbed);
    s.recorded.push(exchange);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        resp_headers,
        bytes,
    )
}

/// `text` with every absolute URL under a `from` origin moved under its `to`, in one pass (so
/// a replacement is never rewritten again), raw and JSON-escaped (`http:\/\/host`). A match
/// must end where the origin does: `https://a.com` does not match in `https://a.com.evil` or
/// `https://a.com:8443`, nor `127.0.0.1:80` in `127.0.0.1:8080`. A placeholder (`{replay}`)
/// is replaced wherever it is.
fn rewrite_origins(text: &str, map: &[(String, String)]) -> String {
    if map.is_empty() {
        return text.to_string();
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (from, to) in map {
        let from = from.trim_end_matches('/');
        let to = to.trim_end_matches('/');
        if from.is_empty() {
            continue;
        }
        pairs.push((from.to_string(), to.to_string()));
        if from.contains('/') {
            pairs.push((from.replace('/', "\\/"), to.replace('/', "\\/")));
        }
    }
    pairs.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
    let mut firsts = [false; 256];
    for (from, _) in &pairs {
        if let Some(f) = from
            .bytes()
            .next()
            .and_then(|b| firsts.get_mut(usize::from(b)))
        {
            *f = true;
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'scan: while let Some(rest) = text.get(i..) {
        let first = rest.bytes().next().map(usize::from);
        if first.is_some_and(|b| firsts.get(b).copied().unwrap_or(false)) {
            for (from, to) in &pairs {
                let Some(after) = rest.strip_prefix(from.as_str()) else {
                    continue;
                };
                let ends = from.starts_with('{')
                    || !after.starts_with(|c: char| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '@' | '_')
                    });
                if ends {
                    out.push_str(to);
                    i += from.len();
                    continue 'scan;
                }
            }
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `scheme://host[:port]` of a URL, when it has one.
fn origin_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let origin = u.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The origins, other than the service's, that the plugin's declared endpoints resolve to
/// with this config (`{replay}` standing for `upstream`): where a redirect or a URL in a body
/// may send the plugin or the host. Endpoints that depend on authentication context or name a
/// wildcard host are left out: their traffic cannot be told apart from other hosts' and is not
/// recorded (the host refuses it, as it refuses any host not granted).
fn declared_origins(
    info: &proofpix_runtime::contract::PluginInfo,
    config: &BTreeMap<String, String>,
    upstream: &str,
) -> Vec<String> {
    let upstream = upstream.trim_end_matches('/');
    let config: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(REPLAY_PLACEHOLDER, upstream)))
        .collect();
    let none = BTreeMap::new();
    let service = origin_of(upstream);
    let mut out: Vec<String> = Vec::new();
    for ep in &info.endpoints {
        let Ok(url) = proofpix_policy::template::resolve(&ep.url, &config, &none) else {
            continue;
        };
        if let Some(o) = origin_of(&url)
            && !o.contains('*')
            && Some(&o) != service.as_ref()
            && !out.contains(&o)
        {
            out.push(o);
        }
    }
    out
}

/// The servers of one run: the service's and one per other origin.
struct Servers {
    base: String,
    others: Vec<(String, String)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    async fn start(state: &Shared, origins: &[String]) -> anyhow::Result<Servers> {
        let mut servers = Servers {
            base: String::new(),
            others: Vec::new(),
            tasks: Vec::new(),
        };
        for origin in std::iter::once(None).chain(origins.iter().cloned().map(Some)) {
            let app = axum::Router::new().fallback(answer).with_state(Listener {
                state: state.clone(),
                origin: origin.clone(),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            servers.tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
            match origin {
                None => servers.base = base,
                Some(o) => servers.others.push((o, base)),
            }
        }
        Ok(servers)
    }

    /// The rewrite from recorded origins to these servers (`service` being the service's).
    fn map(&self, service: Option<&str>) -> Vec<(String, String)> {
        let mut map = vec![(REPLAY_PLACEHOLDER.to_string(), self.base.clone())];
        if let Some(s) = service {
            map.push((s.to_string(), self.base.clone()));
        }
        map.extend(self.others.iter().cloned());
        map
    }

    /// The reverse of [`Servers::map`], for what is reported: each server's URL (and bare
    /// `host:port`) as the stable name of what it stands in for, so messages that name a URL
    /// read the same on every run.
    fn names(&self) -> Vec<(String, String)> {
        let mut names = vec![(self.base.clone(), REPLAY_PLACEHOLDER.to_string())];
        names.extend(self.others.iter().map(|(o, b)| (b.clone(), o.clone())));
        let bare: Vec<(String, String)> = names
            .iter()
            .filter_map(|(from, to)| {
                let from = from.split_once("://")?.1.to_string();
                let to = to.split_once("://").map_or(to.as_str(), |(_, t)| t);
                Some((from, to.to_string()))
            })
            .collect();
        names.extend(bare);
        names
    }

    /// The hosts to grant: every server.
    fn hosts(&self) -> Vec<String> {
        std::iter::once(self.base.clone())
            .chain(self.others.iter().map(|(_, b)| b.clone()))
            .collect()
    }

    fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Attempts of a call whose error says a later try may succeed (rate-limited, transient, a
/// download answered 429 or 5xx): the first and two retries, as a sync's back-off would make
/// within a run. A replay does not wait between them; a recording waits what the service asked,
/// up to [`MAX_RECORDING_WAIT`].
const MAX_ATTEMPTS: u32 = 3;
/// Longest wait between attempts while recording.
const MAX_RECORDING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one run of the scenario saw besides figures.
struct Run {
    recording: bool,
    /// Server URLs to stable names, for messages.
    names: Vec<(String, String)>,
    /// Failed calls, in order.
    errors: Vec<String>,
    /// What write-back, notify and events produced.
    outcomes: Vec<String>,
}

impl Run {
    fn failed(&mut self, what: &str, error: &dyn std::fmt::Display) {
        let message = rewrite_origins(&format!("{what}: {error}"), &self.names);
        self.errors.push(message);
    }

    fn outcome(&mut self, line: String) {
        let line = rewrite_origins(&line, &self.names);
        self.outcomes.push(line);
    }

    async fn retried(
        &mut self,
        what: &str,
        error: &dyn std::fmt::Display,
        wait: Option<std::time::Duration>,
    ) {
        let message = rewrite_origins(&format!("{what}: {error} (retried)"), &self.names);
        self.errors.push(message);
        if self.recording {
            tokio::time::sleep(wait.unwrap_or_default().min(MAX_RECORDING_WAIT)).await;
        }
    }
}

/// Calls `$call` until it succeeds, fails for good, or [`MAX_ATTEMPTS`] are made.
macro_rules! retrying {
    ($run:expr, $what:expr, $call:expr) => {{
        let mut attempt = 1;
        loop {
            match $call {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    $run.retried(&$what, &e, e.retry_after()).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}

/// Whether a download's error may go away (429, 5xx, content not ready), and after how long.
fn fetch_retry(e: &proofpix_runtime::FetchError) -> Option<Option<std::time::Duration>> {
    use proofpix_runtime::FetchError;
    match e {
        FetchError::Status {
            status,
            retry_after_ms,
            ..
        } if *status == 429 || *status >= 500 => {
            Some(retry_after_ms.map(std::time::Duration::from_millis))
        }
        FetchError::NotReady { retry_after_ms, .. }
        | FetchError::PluginNotReady { retry_after_ms, .. } => {
            Some(retry_after_ms.map(std::time::Duration::from_millis))
        }
        _ => None,
    }
}

/// The time every replayed result and notification carries, so figures repeat.
const FIXED_TIME: &str = "2026-01-01T00:00:00Z";

/// Drives the plugin as a sync would: `check`, `discover` to the last page, `download` and the
/// host's fetch of every file; then, as its capabilities say, `write-back` of each fetched
/// file's analysis, `notify` of the high-risk files and the batch summary, and `events.handle`
/// of each recorded webhook request. Returns the files listed.
async fn drive(
    session: &mut proofpix_runtime::Session,
    run: &mut Run,
    events: &[Event],
) -> Vec<RemoteFile> {
    use proofpix_runtime::contract::Capability;
    let capabilities = session.plugin().info().capabilities.clone();
    let source = capabilities.contains(&Capability::Source);
    if let Err(e) = retrying!(run, "check", session.check().await) {
        run.failed("check", &e);
    }
    let mut files = Vec::new();
    let mut cursor: Option<String> = None;
    let mut results = Vec::new();
    let mut failed_files = 0u32;
    for page_number in (1..=MAX_PAGES).take_while(|_| source) {
        let what = format!("discover page {page_number}");
        match retrying!(run, what, session.discover(cursor.as_deref()).await) {
            Ok(page) => {
                files.extend(page.files);
                cursor = page.cursor;
                if !page.more {
                    break;
                }
            }
            Err(e) => {
                run.failed(&what, &e);
                break;
            }
        }
    }
    for f in &files {
        let what = format!("download {}", f.id);
        let spec = match retrying!(run, what, session.download(f).await) {
            Ok(s) => s,
            Err(e) => {
                run.failed(&what, &e);
                failed_files += 1;
                continue;
            }
        };
        let what = format!("fetch {}", f.id);
        for attempt in 1..=MAX_ATTEMPTS {
            let result = match session.fetcher().open_answer(&spec).await {
                Ok(Content::Remote(r)) => r.read_all(MAX_DOWNLOAD_BYTES).await.map(Some),
                Ok(Content::Local { .. }) => Ok(None),
                Err(e) => Err(e),
            };
            match result {
                Ok(bytes) => {
                    if let Some(bytes) = bytes {
                        let report = proofpix_analysis::Analyzer::default().analyze(&bytes);
                        results.push(proofpix_pipeline::file_result(f, &report, FIXED_TIME));
                    }
                    break;
                }
                Err(e) => match fetch_retry(&e) {
                    Some(wait) if attempt < MAX_ATTEMPTS => run.retried(&what, &e, wait).await,
                    _ => {
                        run.failed(&what, &e);
                        failed_files += 1;
                        break;
                    }
                },
            }
        }
    }
    if source && !results.is_empty() {
        match retrying!(run, "write-back", session.write_back(&results).await) {
            Ok(outcomes) => {
                let (mut written, mut skipped) = (0, 0);
                for o in &outcomes {
                    match &o.outcome {
                        Ok(proofpix_model::WriteResult::Written) => written += 1,
                        Ok(proofpix_model::WriteResult::Skipped(_)) => skipped += 1,
                        Err(e) => run.failed(
                            &format!("write-back {}", o.file_id),
                            &proofpix_runtime::describe_plugin_error(e),
                        ),
                    }
                }
                // Baselines keep this line: it changes only when a plugin skips (0.3).
                let skipped = if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                };
                run.outcome(format!(
                    "write-back: {written} of {} results written{skipped}",
                    results.len()
                ));
            }
            Err(e) => run.failed("write-back", &e),
        }
    }
    if capabilities.contains(&Capability::Notifier) {
        for (kind, n) in notifications(session.plugin().info(), &results, failed_files) {
            match retrying!(run, format!("notify {kind}"), session.notify(&n).await) {
                Ok(()) => run.outcome(format!("notify {kind}: delivered")),
                Err(e) => run.failed(&format!("notify {kind}"), &e),
            }
        }
    }
    if capabilities.contains(&Capability::Events) {
        for (i, event) in events.iter().enumerate() {
            let what = format!("event {}", i + 1);
            let request = proofpix_model::InboundRequest {
                method: event.method.clone(),
                path: event.path.clone(),
                query: event.query.clone(),
                headers: event.headers.clone(),
                body: event.body.clone().into_bytes(),
            };
            match session.handle_event(&request).await {
                Ok(o) => {
                    let ids = |v: Vec<String>| format!("[{}]", v.join(", "));
                    run.outcome(format!(
                        "{what}: answered {}, changed {}, removed {}, resync {}",
                        o.response.status,
                        ids(o.changed.into_iter().map(|f| f.id).collect()),
                        ids(o.removed),
                        o.resync
                    ));
                }
                Err(e) => run.failed(&what, &e),
            }
        }
    }
    files
}

/// What a notifier gets after a sync of these results: the high-risk files, when there are
/// any, and the batch summary.
fn notifications(
    info: &proofpix_runtime::contract::PluginInfo,
    results: &[proofpix_model::FileResult],
    failed: u32,
) -> Vec<(&'static str, proofpix_model::Notification)> {
    use proofpix_model::{BatchSummary, Digest, FileAlert, Notification, RiskLevel};
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    let alerts: Vec<FileAlert> = results
        .iter()
        .filter(|r| matches!(r.risk, RiskLevel::High | RiskLevel::Critical))
        .map(|r| FileAlert {
            integration: "plugin-test".to_string(),
            file: r.file.clone(),
            risk: r.risk,
            score: r.score,
            summary: r.summary.clone(),
            findings: r.findings.clone(),
        })
        .collect();
    let levels = [
        RiskLevel::None,
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::Critical,
    ];
    if !alerts.is_empty() {
        let by_risk = levels
            .into_iter()
            .rev()
            .map(|l| (l, count(alerts.iter().filter(|a| a.risk == l).count())))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.push((
            "high-risk-files",
            Notification::HighRiskFiles(Digest {
                total: count(alerts.len()),
                alerts,
                by_risk,
                window_start: FIXED_TIME.to_string(),
                window_end: FIXED_TIME.to_string(),
            }),
        ));
    }
    let by_risk = levels
        .into_iter()
        .map(|l| (l, count(results.iter().filter(|r| r.risk == l).count())))
        .filter(|(_, n)| *n > 0)
        .collect();
    out.push((
        "batch-completed",
        Notification::BatchCompleted(BatchSummary {
            batch_id: "plugin-test".to_string(),
            integration: "plugin-test".to_string(),
            platform: info.platform.clone(),
            started_at: FIXED_TIME.to_string(),
            finished_at: FIXED_TIME.to_string(),
            files_total: count(results.len()).saturating_add(failed),
            files_ok: count(results.len()),
            files_failed: failed,
            by_risk,
            dashboard_url: None,
        }),
    ));
    out
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join("; ")
    }
}

/// Runs the command; returns the report lines, or an error that fails it. A recording is
/// replayed straight away, offline, and that replay's figures are written as the baseline: the
/// baseline is what the replays in CI will measure, and a recording that does not replay
/// fails here rather than in CI.
///
/// # Errors
/// Unreadable plugin or fixtures, requests without a recorded answer, failing calls,
/// regressions over the threshold.
pub async fn run(opts: Options) -> anyhow::Result<Vec<String>> {
    if opts.record.is_none() {
        return run_once(opts).await.map(|r| r.lines);
    }
    let recorded = run_once(opts.clone()).await?;
    let replay = Options {
        record: None,
        config: Vec::new(),
        // The integration's secrets too: a signing key the host verifies webhooks with.
        secrets: recorded.secrets.clone(),
        update_baseline: true,
        inject: Vec::new(),
        events: Vec::new(),
        integration: None,
        ..opts
    };
    let mut lines = recorded.lines;
    let replayed = match run_once(replay).await {
        Ok(r) => r,
        Err(e) => bail!(
            "{}\nthe recording does not replay offline:\n{e}",
            lines.join("\n")
        ),
    };
    lines.push("replayed offline:".to_string());
    lines.extend(replayed.lines.iter().skip(1).map(|l| format!("  {l}")));
    // The baseline is the replay's: it must have done what the recording did.
    let (was, now) = (&recorded.figures, &replayed.figures);
    if was.errors != now.errors || was.outcomes != now.outcomes || was.files != now.files {
        bail!(
            "{}\nFAILED:\n  the replay of the recording did not do what the recording did (a plugin that depends on the time or on randomness, or a secret the replay lacks: give it with --secret):\n    recorded: {} files; {}; {}\n    replayed: {} files; {}; {}",
            lines.join("\n"),
            was.files,
            list_or_none(&was.errors),
            list_or_none(was.outcomes.as_deref().unwrap_or_default()),
            now.files,
            list_or_none(&now.errors),
            list_or_none(now.outcomes.as_deref().unwrap_or_default()),
        );
    }
    Ok(lines)
}

/// One run's report, figures and the secrets it used.
struct Ran {
    lines: Vec<String>,
    figures: Figures,
    secrets: Vec<(String, Secret)>,
}

async fn run_once(opts: Options) -> anyhow::Result<Ran> {
    let file = std::fs::read(&opts.plugin)
        .with_context(|| format!("cannot read {}", opts.plugin.display()))?;
    let (content, _) = proofpix_signing::split(&file)?;
    let content = content.to_vec();
    let fixture_path = opts.fixtures.join("fixture.json");
    let mut fixture: Fixture = if opts.record.is_some() {
        Fixture::default()
    } else {
        Fixture::read(&opts.fixtures)?
    };
    for (k, v) in &opts.config {
        fixture.config.insert(k.clone(), v.clone());
    }
    for path in &opts.events {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let event: Event = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a webhook request ({{\"method\", \"path\", \"query\", \"headers\": [[name, value]], \"body\"}})",
                path.display()
            )
        })?;
        fixture.events.push(event);
    }

    // Through the data directory's compile cache: the second run on the same component
    // loads it in milliseconds instead of compiling it again.
    let runtime = crate::cmd_plugin::authoring_runtime(RuntimeConfig {
        limits: Limits::default(),
        fuel: true,
        ..RuntimeConfig::default()
    })?;
    let plugin = runtime.load(&content).await?;
    let info = plugin.info().clone();

    let integration = match (&opts.integration, &opts.record) {
        (Some(id), Some(_)) => Some(stored_integration(id, &info).await?),
        (Some(_), None) => bail!("--integration records: give --record URL too"),
        _ => None,
    };
    let mut secrets = opts.secrets.clone();
    if let Some(i) = &integration {
        // What the command line gives wins over what the integration has.
        for (k, v) in &i.config {
            fixture.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &i.secrets {
            if !secrets.iter().any(|(f, _)| f == k) {
                secrets.push((k.clone(), v.clone()));
            }
        }
    }

    let upstream = opts
        .record
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string());
    let (service, origins) = match &upstream {
        Some(u) => (Some(u.clone()), declared_origins(&info, &fixture.config, u)),
        None => (fixture.service.clone(), fixture.origins.clone()),
    };
    let state: Shared = Arc::new(Mutex::new(ServerState {
        used: vec![false; fixture.exchanges.len()],
        exchanges: fixture.exchanges.clone(),
        upstream: upstream.clone(),
        client: Some(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        ),
        scrub: Scrubber::new(secrets.iter().map(|(_, s)| s.expose())),
        inject: opts
            .inject
            .iter()
            .map(|i| Injection::parse(i))
            .collect::<anyhow::Result<_>>()?,
        ..ServerState::default()
    }));
    let servers = Servers::start(&state, &origins).await?;
    let map = servers.map(service.as_deref());
    state.lock().unwrap_or_else(|e| e.into_inner()).live = map.clone();

    let mut ctx = IntegrationContext::new("plugin-test").with_grant(OperatorGrant {
        hosts: servers.hosts(),
        allow_loopback: true,
        ..OperatorGrant::default()
    });
    for (k, v) in &fixture.config {
        ctx = ctx.with_config(k, &rewrite_origins(v, &map));
    }
    // Secrets the host uses itself (a webhook's signing key, a secret webhook URL): as given,
    // on replay too, with `{replay}` in a secret URL standing for the servers as in config.
    for (k, v) in &secrets {
        let value = v.expose();
        ctx = ctx.with_secret(k, &rewrite_origins(value, &map));
        // A secret URL on a recorded host: its path is the secret part, and is what a
        // recording would otherwise keep.
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        for (from, _) in &map {
            if let Some(rest) = value.strip_prefix(from.as_str())
                && rest.len() > 1
            {
                s.scrub.add(rest);
            }
        }
    }
    let (scheme, declared_dialect) = if auth_flow::per_integration(&info) {
        let chosen = auth_flow::auth_for(&plugin, &ctx)
            .await
            .map_err(|e| anyhow::anyhow!("choosing the authentication flow: {e}"))?;
        (chosen.scheme, chosen.dialect)
    } else {
        (info.auth.clone(), info.oauth_dialect.clone())
    };
    let mut auth_context = BTreeMap::new();
    match (&scheme, opts.record.as_deref(), &integration) {
        (_, Some(upstream), Some(i)) => {
            let creds = i.credentials.clone();
            let token = creds.authorization().await.map_err(|e| {
                anyhow::anyhow!(
                    "obtaining a token as integration {} (from its stored refresh token, for an authorization-code plugin): {e}; authorize it again with `proofpix integration authorize {}`",
                    i.id,
                    i.id
                )
            })?;
            // The token is a secret too: never in a recording.
            if let Some((_, value)) = token {
                let value = value.expose().to_string();
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.scrub.add(value.trim_start_matches("Bearer "));
                s.scrub.add(&value);
            }
            auth_context = rebase(&creds.context(), upstream, REPLAY_PLACEHOLDER);
            ctx = ctx.with_credentials(Arc::new(RecordingCredentials {
                inner: creds,
                map: map.clone(),
            }));
        }
        (AuthScheme::None, _, _) => {}
        (AuthScheme::ApiKey(k), _, _) => {
            let key = secrets
                .iter()
                .find(|(f, _)| *f == k.secret_field)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| Secret::new("test-secret"));
            ctx =
                ctx.with_credentials(Arc::new(StaticCredentials::new(&k.header, &k.prefix, &key)));
        }
        (AuthScheme::Oauth2AuthorizationCode(_), Some(_), None) => bail!(
            "this plugin signs in with the OAuth authorization-code flow, which needs a person at a browser: authorize an integration of it once (`proofpix integration add`, then `proofpix integration authorize NAME`) and record with its stored refresh token, `--integration NAME`; without one, recording supports API keys and the client-credentials, password and JWT-bearer flows"
        ),
        (_, Some(upstream), None) => {
            let creds = record_credentials(
                &plugin,
                declared_dialect.as_ref(),
                &scheme,
                &fixture.config,
                upstream,
                &secrets,
            )
            .await?;
            // The token is a secret too: never in a recording.
            if let Ok(Some((_, value))) = creds.authorization().await {
                let value = value.expose().to_string();
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.scrub.add(value.trim_start_matches("Bearer "));
                s.scrub.add(&value);
            }
            auth_context = rebase(&creds.context(), upstream, REPLAY_PLACEHOLDER);
            ctx = ctx.with_credentials(Arc::new(RecordingCredentials {
                inner: Arc::new(creds),
                map: map.clone(),
            }));
        }
        (_, None, _) => {
            ctx = ctx.with_credentials(Arc::new(ReplayCredentials {
                token: Secret::new("Bearer test-token"),
                context: fixture
                    .auth_context
                    .iter()
                    .map(|(k, v)| (k.clone(), rewrite_origins(v, &map)))
                    .collect(),
            }));
        }
    }

    let mut session = plugin.session(&ctx).await?;
    let mut problems = Vec::new();
    let mut run = Run {
        recording: opts.record.is_some(),
        names: servers.names(),
        errors: Vec::new(),
        outcomes: Vec::new(),
    };
    let files = drive(&mut session, &mut run, &fixture.events).await;
    let stats = session.stats().clone();
    servers.stop();
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let figures = Figures {
        component_bytes: content.len() as u64,
        calls: stats.calls,
        fuel: stats.fuel_consumed,
        peak_memory_bytes: stats.memory_high_water,
        log_bytes: stats.log_bytes,
        http_requests: s.requests,
        files: files.len() as u64,
        errors: run.errors.clone(),
        outcomes: Some(run.outcomes.clone()),
    };
    let mut lines = vec![format!("plugin {} {}", info.id, info.version)];
    lines.extend(figures.rows().iter().map(|(k, v)| format!("{k:<18} {v}")));
    lines.extend(run.outcomes.iter().cloned());
    if !figures.errors.is_empty() {
        lines.push("failed calls (a replay must fail the same way):".to_string());
        lines.extend(figures.errors.iter().map(|e| format!("  {e}")));
    }

    if opts.record.is_some() {
        let mut recorded = Fixture {
            config: fixture
                .config
                .iter()
                .map(|(k, v)| {
                    let v = match &opts.record {
                        Some(u) => v.replace(u.as_str(), REPLAY_PLACEHOLDER),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
            exchanges: s.recorded.clone(),
            auth_context,
            service: service.clone(),
            origins: origins.clone(),
            events: fixture
                .events
                .iter()
                .map(|e| Event {
                    method: e.method.clone(),
                    path: s.scrub.text(&e.path),
                    query: s.scrub.text(&e.query),
                    headers: e
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), s.scrub.text(v)))
                        .collect(),
                    body: s.scrub.text(&e.body),
                })
                .collect(),
        };
        recorded.write(&opts.fixtures)?;
        lines.push(format!(
            "recorded {} exchanges to {}",
            recorded.exchanges.len(),
            fixture_path.display()
        ));
        return finish(lines, problems).map(|lines| Ran {
            lines,
            figures,
            secrets,
        });
    }
    if !s.misses.is_empty() {
        problems.push(format!(
            "requests with no recorded answer: {}",
            s.misses.join(", ")
        ));
    }
    let baseline_path = opts.fixtures.join("baseline.json");
    let baseline: Option<Figures> = std::fs::read_to_string(&baseline_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match baseline {
        Some(b) if !opts.update_baseline => {
            let regressions = figures.regressions(&b, opts.threshold);
            if regressions.is_empty() {
                lines.push(format!("within {}% of the baseline", opts.threshold));
            }
            problems.extend(regressions);
            if figures.errors != b.errors {
                problems.push(format!(
                    "the calls that failed are not the baseline's (a plugin's handling of an error answer changed, or the fixture did):\n    baseline: {}\n    now:      {}",
                    list_or_none(&b.errors),
                    list_or_none(&figures.errors)
                ));
            } else if let Some(expected) = b.outcomes.as_ref().filter(|o| **o != run.outcomes) {
                problems.push(format!(
                    "write-back, notify or events did not do what the baseline says:\n    baseline: {}\n    now:      {}",
                    list_or_none(expected),
                    list_or_none(&run.outcomes)
                ));
            } else if !b.errors.is_empty() {
                lines.push(format!(
                    "{} failed calls, as in the baseline",
                    b.errors.len()
                ));
            }
        }
        _ => {
            std::fs::write(&baseline_path, serde_json::to_string_pretty(&figures)?)?;
            lines.push(format!("baseline written to {}", baseline_path.display()));
        }
    }
    finish(lines, problems).map(|lines| Ran {
        lines,
        figures,
        secrets,
    })
}

/// The host's credentials for recording: the plugin's scheme resolved against the config with
/// `{replay}` as the service's URL, and a token obtained now (so a wrong secret fails here, with
/// the service's reason, rather than as a plugin error).
async fn record_credentials(
    plugin: &proofpix_runtime::Plugin,
    declared_dialect: Option<&proofpix_runtime::contract::OauthDialect>,
    scheme: &AuthScheme,
    config: &BTreeMap<String, String>,
    upstream: &str,
    secrets: &[(String, Secret)],
) -> anyhow::Result<AuthCredentials> {
    let upstream = upstream.trim_end_matches('/');
    let config: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(REPLAY_PLACEHOLDER, upstream)))
        .collect();
    let resolved = credentials::resolve_scheme(scheme, &config)?;
    let networks = proofpix_policy::BlockedNetworks {
        allow_loopback: true,
        allow_private: true,
        allow_link_local: false,
    };
    let http = proofpix_runtime::checked_client(networks, std::time::Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    let secrets: BTreeMap<String, Secret> = secrets.iter().cloned().collect();
    // The plugin's declared OAuth dialect (or, for a plugin of contract 0.1/0.2, the host's
    // table), as the daemon would use it.
    let dialect = proofpix_service::oauth_dialect(plugin, declared_dialect, &resolved)?;
    let creds = proofpix_auth::Credentials::builder(
        "plugin-test",
        credentials::inputs(resolved, &config, &secrets),
        http,
        Arc::new(proofpix_auth::MemoryPersistence::new()),
    )
    .networks(networks)
    .dialect(dialect)
    .build()?;
    creds
        .authorization()
        .await
        .context("obtaining a token from the service (check the --secret values)")?;
    Ok(AuthCredentials(creds))
}

fn finish(lines: Vec<String>, problems: Vec<String>) -> anyhow::Result<Vec<String>> {
    if problems.is_empty() {
        return Ok(lines);
    }
    bail!("{}\nFAILED:\n  {}", lines.join("\n"), problems.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threshold is a percentage over the baseline, and only growth counts.
    #[test]
    fn only_growth_beyond_the_threshold_is_a_regression() {
        let base = Figures {
            component_bytes: 1000,
            calls: 10,
            fuel: 1_000_000,
            peak_memory_bytes: 1 << 20,
            log_bytes: 100,
            http_requests: 5,
            files: 2,
            errors: vec![],
            outcomes: None,
        };
        let mut now = base.clone();
        now.fuel = 1_100_000; // exactly +10%
        now.calls = 9;
        assert!(now.regressions(&base, 10).is_empty());
        now.fuel = 1_100_001;
        assert_eq!(
            now.regressions(&base, 10),
            ["fuel: 1100001, baseline 1000000 (more than 10% over)"]
        );
    }

    /// Origins are rewritten where a URL under them starts, raw or JSON-escaped, and only
    /// where the origin ends: a longer host or another port is another origin. One pass, so a
    /// server URL put in is never rewritten again.
    #[test]
    fn origins_are_rewritten_whole_and_once() {
        let map = vec![
            (
                REPLAY_PLACEHOLDER.to_string(),
                "http://127.0.0.1:1".to_string(),
            ),
            (
                "https://api.example.com".to_string(),
                "http://127.0.0.1:1".to_string(),
            ),
            (
                "http://127.0.0.1:1".to_string(),
                "http://127.0.0.1:2".to_string(),
            ),
        ];
        for (text, want) in [
            (
                r#"{"next":"https://api.example.com/files?page=2"}"#,
                r#"{"next":"http://127.0.0.1:1/files?page=2"}"#,
            ),
            (
                r#"{"next":"https:\/\/api.example.com\/x"}"#,
                r#"{"next":"http:\/\/127.0.0.1:1\/x"}"#,
            ),
            (
                "https://api.example.com.evil.net/x",
                "https://api.example.com.evil.net/x",
            ),
            (
                "https://api.example.com:8443/x",
                "https://api.example.com:8443/x",
            ),
            ("https://api.example.com", "http://127.0.0.1:1"),
            ("{replay}/token", "http://127.0.0.1:1/token"),
            (
                "http://127.0.0.1:1/a http://127.0.0.1:10/b",
                "http://127.0.0.1:2/a http://127.0.0.1:10/b",
            ),
            (
                "<https://api.example.com/p2>; rel=\"next\"",
                "<http://127.0.0.1:1/p2>; rel=\"next\"",
            ),
        ] {
            assert_eq!(rewrite_origins(text, &map), want, "{text}");
        }
    }

    /// `--inject` takes `METHOD PATH=STATUS`, error statuses only, and matches the path with
    /// the query aside, once.
    #[test]
    fn an_injection_matches_its_method_and_path_once() {
        let mut i = Injection::parse("get /files/*/content=503").unwrap();
        assert!(i.matches(&Method::GET, "/files/a/content?x=1"));
        assert!(!i.matches(&Method::POST, "/files/a/content"));
        assert!(!i.matches(&Method::GET, "/folders/a"));
        i.used = true;
        assert!(!i.matches(&Method::GET, "/files/a/content"));
        let exact = Injection::parse("GET /files=429").unwrap();
        assert!(exact.matches(&Method::GET, "/files?page=2"));
        assert!(!exact.matches(&Method::GET, "/files/a"));
        let prefix = Injection::parse("GET /v1.0/sites/*=401").unwrap();
        assert!(prefix.matches(&Method::GET, "/v1.0/sites/a/drives"));
        assert!(!prefix.matches(&Method::GET, "/v1.0/site"));
        assert!(
            Injection::parse("GET /files=200").is_err(),
            "not an error status"
        );
        assert!(Injection::parse("GET files=500").is_err());
        assert!(Injection::parse("/files=500").is_err());
    }

    /// A secret is scrubbed raw, percent-encoded in either case or in part, with `+` for a
    /// space, JSON-escaped and base64-encoded; text around it is kept.
    #[test]
    fn secrets_are_scrubbed_in_every_encoding() {
        use base64::Engine as _;
        let secret = "k3y/with+sp ace\"q";
        let s = Scrubber::new([secret]);
        let json = serde_json::to_string(secret).unwrap();
        let json = json.trim_matches('"');
        let encoded_upper: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
        let encoded_lower: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
        for form in [
            secret.to_string(),
            encoded_upper,
            encoded_lower,
            "k3y%2Fwith%2Bsp+ace%22q".to_string(),
            "k3y/with%2bsp%20ace%22q".to_string(),
            json.to_string(),
            json.replace('/', "\\/"),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        ] {
            let text = format!("/files?key={form}&x=1");
            assert_eq!(s.text(&text), "/files?key=[redacted]&x=1", "{form}");
        }
        assert_eq!(s.text("/files?key=k3y-other"), "/files?key=k3y-other");
        assert_eq!(
            s.bytes(b"\xff\xd8k3y/with+sp ace\"q\xff"),
            b"\xff\xd8[redacted]\xff".to_vec()
        );
        assert_eq!(Scrubber::new([""]).text("a%2b"), "a%2b", "nothing to scrub");
    }
}
