//! Outbound HTTP on a plugin's behalf: the plugin's `http.send` import and
//! the host's own downloads of file content both go through here.
//!
//! Threats: a plugin that wants to reach a host it was not granted (directly,
//! through a redirect, or through a name that resolves to loopback or the
//! metadata service), that wants to read or replace credentials, or that
//! wants to make the host buffer an unbounded response.
//!
//! Defences, on **every hop**:
//! - the URL is checked against the effective allow-list (declared and
//!   granted endpoints) before a connection is made;
//! - every address the name resolves to is checked against the blocked
//!   networks, and the connection goes only to addresses that passed (the
//!   resolver returns only those, so a rebinding answer cannot slip in
//!   between check and connect);
//! - redirects are never followed by the HTTP library: the host follows them
//!   here, re-checking each `Location`, up to a hop limit;
//! - credentials are injected only on hops whose URL falls under an endpoint
//!   that takes them, so a bearer token is not forwarded to a pre-signed
//!   download host after a 302;
//! - the guest may not set `authorization`, `proxy-authorization`, `cookie`,
//!   `host`, hop-by-hop headers or the scheme's injection header; responses
//!   lose `set-cookie`;
//! - response bodies are read up to a byte cap;
//! - a URL with user info (`https://u:p@host`) is refused, since the HTTP
//!   client would turn it into an `Authorization: Basic` header.
//!
//! Secrets (see wit/README.md, "Secrets"): the only place a plugin may name
//! a secret is the whole request URL, `{secret.NAME}`, where NAME is a
//! declared secret field of kind url that the auth scheme does not use (a
//! webhook URL). Any other `{secret.` in a URL or a header value is refused,
//! so a secret is never spliced into a URL the plugin builds. Errors about a
//! sealed request are generic for the guest (the details go to the host's
//! log, scrubbed), its final URL is handed back as the placeholder, and
//! everything the guest receives (bodies, headers, error texts) goes
//! through a [`Scrubber`] that knows every secret of the integration and the
//! credential last injected, in their common encodings.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proofpix_policy::egress::{EgressPolicy, NetworkClass, redact_url};
use proofpix_policy::{AllowedHosts, BlockedNetworks};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::context::CredentialProvider;
use crate::scrub::Scrubber;

/// The refusal for a secret placeholder anywhere but as a whole URL.
pub(crate) const SECRET_PLACEMENT_RULE: &str = "secrets are placed by the host: a secret URL field may be used only as the whole request URL `{secret.NAME}`, never inside a URL or a header";

/// Request headers a guest may never set.
const FORBIDDEN_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Response headers a guest never sees.
const STRIPPED_RESPONSE_HEADERS: &[&str] = &["set-cookie", "set-cookie2"];

/// A request as a plugin (or the host, for downloads) describes it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers set by the plugin.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A buffered response.
#[derive(Debug, Clone)]
pub struct BufferedResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lowercase names, `set-cookie` removed.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// URL of the final hop.
    pub url: String,
}

/// Why a request failed, in the contract's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFailure {
    /// Refused by policy.
    #[error("{0}")]
    Denied(String),
    /// Malformed request.
    #[error("{0}")]
    Invalid(String),
    /// Took too long.
    #[error("{0}")]
    Timeout(String),
    /// Could not connect or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// Response over the size cap.
    #[error("{0}")]
    TooLarge(String),
}

/// A name that resolved only to refused addresses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {what}; refused")]
struct BlockedResolution {
    host: String,
    ip: IpAddr,
    what: &'static str,
}

/// Resolves names and drops every address the policy refuses.
#[derive(Debug, Clone)]
struct CheckedResolver {
    networks: BlockedNetworks,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let networks = self.networks;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match networks.check(a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        first_refused.get_or_insert((a.ip(), class));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                if let Some((ip, class)) = first_refused {
                    return Err(Box::new(BlockedResolution {
                        host,
                        ip,
                        what: class_words(class),
                    }) as Box<_>);
                }
                return Err(format!("{host} did not resolve to any address").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn class_words(class: NetworkClass) -> &'static str {
    match class {
        NetworkClass::Loopback => {
            "a loopback address (set allow_loopback in the grant for local emulators)"
        }
        NetworkClass::Private => {
            "a private-network address (set allow_private in the grant for on-premises servers)"
        }
        NetworkClass::LinkLocal => "a link-local address",
        NetworkClass::Metadata => "the cloud metadata service",
        _ => "an unroutable address",
    }
}

/// The HTTP client of one integration: one connection pool, one resolver
/// with the integration's network classes.
#[derive(Debug, Clone)]
pub struct IntegrationHttp {
    client: reqwest::Client,
}

impl IntegrationHttp {
    /// Builds the client. Redirects are off (followed by [`EgressHttp`]).
    ///
    /// # Errors
    /// When the TLS backend cannot initialise.
    pub fn new(networks: BlockedNetworks, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver { networks }))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("proofpix/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(IntegrationHttp { client })
    }
}

/// A plain client for the host's own requests on an integration's behalf
/// (OAuth2 token endpoints): no redirects followed, and names resolve only to
/// addresses the grant's network classes allow. The caller checks the URL
/// against the allow-list.
///
/// # Errors
/// When the TLS backend cannot initialise.
pub fn checked_client(
    networks: BlockedNetworks,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    IntegrationHttp::new(networks, timeout).map(|h| h.client)
}

/// Executes requests under an egress policy, with credential injection.
#[derive(Clone)]
pub struct EgressHttp {
    http: IntegrationHttp,
    policy: Arc<EgressPolicy>,
    /// `policy` widened by the granted redirect targets: what a hop after
    /// the first may reach.
    redirect_policy: Arc<EgressPolicy>,
    /// The granted redirect targets alone: a hop there gets no credentials.
    redirect_hosts: Arc<AllowedHosts>,
    credential_hosts: Arc<AllowedHosts>,
    credentials: Option<Arc<dyn CredentialProvider>>,
    /// Headers the guest may not set, beyond the fixed list (the scheme's
    /// injection header).
    extra_forbidden: Arc<BTreeSet<String>>,
    max_redirects: u32,
    /// Declared secret fields a request URL may be, whole, as
    /// `{secret.NAME}` (a webhook URL is itself a credential).
    sealed_urls: Arc<BTreeMap<String, proofpix_vault::Secret>>,
    /// Every secret value of the integration, for the scrubber.
    secret_values: Arc<[proofpix_vault::Secret]>,
    /// The scrubber for `secret_values` plus the credential it was built
    /// with (rebuilt when another one is injected).
    scrubber: Arc<std::sync::Mutex<(Option<proofpix_vault::Secret>, Arc<Scrubber>)>>,
    /// The last credential value injected, so a refresh after `unauthorized`
    /// names the token that was rejected.
    last_injected: Arc<std::sync::Mutex<Option<proofpix_vault::Secret>>>,
}

/// The secrets of one integration, as the HTTP import may use them.
#[derive(Clone, Default)]
pub struct PluginSecrets {
    /// Fields a request URL may be, whole, as `{secret.NAME}`: declared
    /// secret, of kind url, and not used by the auth scheme.
    pub sealed_urls: BTreeMap<String, proofpix_vault::Secret>,
    /// Every secret value, for scrubbing what the guest receives.
    pub values: Vec<proofpix_vault::Secret>,
}

impl std::fmt::Debug for PluginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSecrets")
            .field("sealed_urls", &self.sealed_urls.keys().collect::<Vec<_>>())
            .field("values", &self.values.len())
            .finish()
    }
}

/// The values a scrubber looks for, for a set of secrets: each secret, and
/// for one that is a URL its normalised spelling, the spelling messages use
/// (without query) and its path and query.
fn scrub_values(secrets: &[proofpix_vault::Secret]) -> Vec<String> {
    let mut out = Vec::new();
    for s in secrets {
        let v = s.expose();
        out.push(v.to_string());
        if let Ok(u) = Url::parse(v.trim())
            && matches!(u.scheme(), "http" | "https")
        {
            out.push(u.as_str().to_string());
            out.push(redact_url(&u));
            out.push(u.path().to_string());
            if let Some(q) = u.query() {
                out.push(q.to_string());
            }
        }
    }
    // A path like `/` or `/api` is not a secret of its own.
    out.retain(|v| {
        v.len() >= crate::scrub::MIN_ENCODED_LEN || secrets.iter().any(|s| s.expose() == v)
    });
    out
}

/// A sealed request: the placeholder the guest wrote and the field it names.
struct Sealed {
    template: String,
    field: String,
}

impl std::fmt::Debug for EgressHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressHttp")
            .field("policy", &self.policy)
            .field("credential_hosts", &self.credential_hosts)
            .finish_non_exhaustive()
    }
}

impl EgressHttp {
    /// An executor for one integration's effective grants.
    pub fn new(
        http: IntegrationHttp,
        policy: EgressPolicy,
        credential_hosts: AllowedHosts,
        credentials: Option<Arc<dyn CredentialProvider>>,
        injection_header: Option<String>,
        max_redirects: u32,
        secrets: PluginSecrets,
    ) -> Self {
        let scrubber = Arc::new(Scrubber::new(scrub_values(&secrets.values)));
        let extra_forbidden = injection_header
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        EgressHttp {
            http,
            redirect_policy: Arc::new(policy.clone()),
            redirect_hosts: Arc::default(),
            policy: Arc::new(policy),
            credential_hosts: Arc::new(credential_hosts),
            credentials,
            extra_forbidden: Arc::new(extra_forbidden),
            max_redirects,
            last_injected: Arc::default(),
            sealed_urls: Arc::new(secrets.sealed_urls),
            secret_values: Arc::from(secrets.values),
            scrubber: Arc::new(std::sync::Mutex::new((None, scrubber))),
        }
    }

    /// Lets hops after the first reach `hosts` (the granted redirect targets
    /// of the plugin's endpoints, contract 0.3), without credentials. A
    /// request's first hop never goes there.
    #[must_use]
    pub fn with_redirect_hosts(mut self, hosts: AllowedHosts) -> Self {
        let mut entries = self.policy.hosts.entries().to_vec();
        entries.extend(hosts.entries().iter().cloned());
        self.redirect_policy = Arc::new(EgressPolicy {
            hosts: AllowedHosts::from_entries(entries),
            networks: self.policy.networks,
        });
        self.redirect_hosts = Arc::new(hosts);
        self
    }

    /// The scrubber for everything the guest receives: the integration's
    /// secrets and the credential value last injected (a token the host
    /// obtained, or `prefix + key`, and the part after the prefix).
    pub fn scrubber(&self) -> Arc<Scrubber> {
        let injected = self.last_injected();
        let Ok(mut guard) = self.scrubber.lock() else {
            // A poisoned lock: scrub with the secrets alone, built afresh.
            return Arc::new(Scrubber::new(scrub_values(&self.secret_values)));
        };
        let same = match (&guard.0, &injected) {
            (None, None) => true,
            (Some(a), Some(b)) => a.expose() == b.expose(),
            _ => false,
        };
        if !same {
            let mut values = scrub_values(&self.secret_values);
            if let Some(v) = &injected {
                let v = v.expose();
                values.push(v.to_string());
                if let Some((_, token)) = v.rsplit_once(' ') {
                    values.push(token.to_string());
                }
            }
            *guard = (injected, Arc::new(Scrubber::new(values)));
        }
        guard.1.clone()
    }

    /// After a 401 answered by `url`: when that hop took credentials, refreshes them (once;
    /// concurrent callers share one refresh) and says whether to send the request again. A 401
    /// from a hop without credentials (a pre-authenticated download URL) is not about them.
    pub async fn refresh_after_unauthorized(&self, url: &Url) -> bool {
        let Some(creds) = &self.credentials else {
            return false;
        };
        if !self.credential_hosts.matches(url) {
            return false;
        }
        match creds.refresh(self.last_injected()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("credential refresh after a 401 on a download failed: {e}");
                false
            }
        }
    }

    /// The credential value most recently injected on a request.
    pub fn last_injected(&self) -> Option<proofpix_vault::Secret> {
        self.last_injected.lock().ok().and_then(|g| g.clone())
    }

    /// Sends a guest request and buffers the response up to `max_body` bytes.
    /// Everything returned is scrubbed of the integration's secrets.
    ///
    /// # Errors
    /// Policy refusals, connection failures, timeouts and oversized bodies.
    pub async fn send(
        &self,
        mut req: OutboundRequest,
        max_body: u64,
    ) -> Result<BufferedResponse, HttpFailure> {
        self.check_guest_headers(&req.headers)?;
        let sealed = self.place_secret(&mut req)?;
        let result = match self.execute_hops(req).await {
            Ok(resp) => buffer(resp, max_body).await,
            Err(e) => Err(e),
        };
        let scrubber = self.scrubber();
        match (result, sealed) {
            (Ok(b), None) => Ok(scrub_response(&scrubber, b)),
            (Ok(mut b), Some(sealed)) => {
                // The real URL is a credential: the placeholder stands in for
                // it, and headers that name a URL (a redirect the host did not
                // follow) are not handed back.
                b.url = sealed.template;
                b.headers
                    .retain(|(k, _)| k != "location" && k != "content-location");
                Ok(scrub_response(&scrubber, b))
            }
            (Err(e), None) => Err(scrub_failure(&scrubber, e)),
            (Err(e), Some(sealed)) => Err(sealed_failure(&scrubber, &sealed, e, max_body)),
        }
    }

    /// Sends a host request (a download) and returns the final response for
    /// streaming. Guest-declared headers are checked like a guest request's.
    ///
    /// # Errors
    /// As [`EgressHttp::send`].
    pub async fn send_streaming(
        &self,
        mut req: OutboundRequest,
    ) -> Result<reqwest::Response, HttpFailure> {
        self.check_guest_headers(&req.headers)?;
        let sealed = self.place_secret(&mut req)?;
        let scrubber = self.scrubber();
        match (self.execute_hops(req).await, sealed) {
            (Ok(resp), _) => Ok(resp),
            (Err(e), None) => Err(scrub_failure(&scrubber, e)),
            (Err(e), Some(sealed)) => Err(sealed_failure(&scrubber, &sealed, e, 0)),
        }
    }

    /// Applies the placement rule: a request URL that is exactly
    /// `{secret.NAME}` (trimmed), NAME a sealed URL field with a value,
    /// becomes that value; any other `{secret.` is refused.
    fn place_secret(&self, req: &mut OutboundRequest) -> Result<Option<Sealed>, HttpFailure> {
        if !req.url.contains("{secret.") {
            return Ok(None);
        }
        let template = req.url.trim();
        let name = template
            .strip_prefix("{secret.")
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|n| !n.is_empty() && !n.contains(['{', '}']))
            .ok_or_else(|| HttpFailure::Denied(SECRET_PLACEMENT_RULE.to_string()))?;
        let value = self
            .sealed_urls
            .get(name)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                let shown: String = name.chars().take(64).collect();
                HttpFailure::Denied(format!(
                    "{{secret.{shown}}} is not a secret URL field of this plugin that is set (a field declared secret, of kind url, and not used by its auth scheme); {SECRET_PLACEMENT_RULE}"
                ))
            })?;
        let sealed = Sealed {
            template: format!("{{secret.{name}}}"),
            field: name.to_string(),
        };
        req.url = value.to_string();
        Ok(Some(sealed))
    }

    fn check_guest_headers(&self, headers: &[(String, String)]) -> Result<(), HttpFailure> {
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_REQUEST_HEADERS.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || self.extra_forbidden.contains(&lower)
            {
                return Err(HttpFailure::Denied(format!(
                    "plugins may not set the {lower} header; the host injects credentials itself on granted endpoints"
                )));
            }
            if value.contains("{secret.") || name.contains("{secret.") {
                return Err(HttpFailure::Denied(SECRET_PLACEMENT_RULE.to_string()));
            }
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                return Err(HttpFailure::Invalid(format!(
                    "header {name:?} is not a valid HTTP header"
                )));
            }
        }
        Ok(())
    }

    async fn execute_hops(&self, req: OutboundRequest) -> Result<reqwest::Response, HttpFailure> {
        let mut url = Url::parse(&req.url).map_err(|e| {
            HttpFailure::Invalid(format!("{:?} is not a URL: {e}", truncate(&req.url)))
        })?;
        let mut method = req.method;
        let mut body = req.body;
        let mut hop: u32 = 0;
        loop {
            if !url.username().is_empty() || url.password().is_some() {
                return Err(HttpFailure::Denied(format!(
                    "{} carries user info (user:password@), which the HTTP client would send as an Authorization header; refused: the host injects credentials itself on granted endpoints",
                    redact_url(&url)
                )));
            }
            // A redirect may lead to a declared-and-granted redirect target,
            // which is reached without credentials; a first hop may not.
            let policy = if hop == 0 {
                &self.policy
            } else {
                &self.redirect_policy
            };
            policy
                .check_url(&url)
                .map_err(|d| HttpFailure::Denied(d.to_string()))?;
            let redirect_target =
                hop > 0 && self.redirect_hosts.matches(&url) && !self.policy.hosts.matches(&url);
            let mut builder = self.http.client.request(method.clone(), url.clone());
            for (name, value) in &req.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            if !redirect_target
                && self.credential_hosts.matches(&url)
                && let Some(creds) = &self.credentials
            {
                let header = creds.authorization().await.map_err(HttpFailure::Denied)?;
                if let Some((name, value)) = header {
                    builder = builder.header(name.as_str(), value.expose());
                    if let Ok(mut last) = self.last_injected.lock() {
                        *last = Some(value);
                    }
                }
            }
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }
            let resp = builder.send().await.map_err(|e| classify(&url, &e))?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                return Ok(resp);
            };
            if hop >= self.max_redirects {
                return Err(HttpFailure::Denied(format!(
                    "{} redirected more than {} times",
                    redact_url(&url),
                    self.max_redirects
                )));
            }
            let next = url.join(location).map_err(|e| {
                HttpFailure::Invalid(format!(
                    "{} redirected to an invalid location: {e}",
                    redact_url(&url)
                ))
            })?;
            // 303, and 301/302 after a POST, continue as a GET without body
            // (what browsers and curl do); 307/308 keep method and body.
            if status == StatusCode::SEE_OTHER
                || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && method == Method::POST)
            {
                method = Method::GET;
                body = Vec::new();
            }
            tracing::debug!(status = status.as_u16(), hop, "following a redirect");
            url = next;
            hop += 1;
        }
    }
}

async fn buffer(
    mut resp: reqwest::Response,
    max_body: u64,
) -> Result<BufferedResponse, HttpFailure> {
    let url = resp.url().clone();
    if let Some(len) = resp.content_length()
        && len > max_body
    {
        return Err(HttpFailure::TooLarge(format!(
            "{} sent {len} bytes, over the cap of {max_body} bytes",
            redact_url(&url)
        )));
    }
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| !STRIPPED_RESPONSE_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&url, &e))? {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(HttpFailure::TooLarge(format!(
                "{} sent more than the cap of {max_body} bytes",
                redact_url(&url)
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(BufferedResponse {
        status,
        headers,
        body,
        url: url.to_string(),
    })
}

/// Maps a reqwest error onto the contract's cases, finding our resolver's
/// refusal in the source chain.
pub(crate) fn classify(url: &Url, err: &reqwest::Error) -> HttpFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedResolution>() {
            return HttpFailure::Denied(format!("asked for {}, but {blocked}", redact_url(url)));
        }
        source = e.source();
    }
    let what = redact_url(url);
    if err.is_timeout() {
        HttpFailure::Timeout(format!("{what} did not answer in time"))
    } else if err.is_connect() {
        HttpFailure::Connection(format!("cannot connect to {what}: {}", root_cause(err)))
    } else {
        HttpFailure::Connection(format!("request to {what} failed: {}", root_cause(err)))
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn scrub_response(scrubber: &Scrubber, mut b: BufferedResponse) -> BufferedResponse {
    if scrubber.is_empty() {
        return b;
    }
    b.body = scrubber.scrub_vec(std::mem::take(&mut b.body));
    for (_, v) in &mut b.headers {
        *v = scrubber.scrub_string(std::mem::take(v));
    }
    b.url = scrubber.scrub_string(std::mem::take(&mut b.url));
    b
}

fn scrub_failure(scrubber: &Scrubber, failure: HttpFailure) -> HttpFailure {
    let s = |m: String| scrubber.scrub_string(m);
    match failure {
        HttpFailure::Denied(m) => HttpFailure::Denied(s(m)),
        HttpFailure::Invalid(m) => HttpFailure::Invalid(s(m)),
        HttpFailure::Timeout(m) => HttpFailure::Timeout(s(m)),
        HttpFailure::Connection(m) => HttpFailure::Connection(s(m)),
        HttpFailure::TooLarge(m) => HttpFailure::TooLarge(s(m)),
    }
}

/// A failure of a sealed request: the details, scrubbed, go to the host's
/// log; the guest gets the placeholder and the kind of failure, nothing
/// derived from the real URL.
fn sealed_failure(
    scrubber: &Scrubber,
    sealed: &Sealed,
    failure: HttpFailure,
    max_body: u64,
) -> HttpFailure {
    let detail = scrub_failure(scrubber, failure.clone());
    tracing::warn!(
        secret_field = %sealed.field,
        "the request to {} failed: {detail}",
        sealed.template
    );
    let t = &sealed.template;
    const LOG: &str = "the host's log has the details";
    match failure {
        HttpFailure::Denied(_) => HttpFailure::Denied(format!(
            "{t} is not in its allowed hosts or was refused by the egress policy; {LOG}"
        )),
        HttpFailure::Invalid(_) => HttpFailure::Invalid(format!(
            "the request to {t} failed: invalid URL or redirect; {LOG}"
        )),
        HttpFailure::Timeout(_) => {
            HttpFailure::Timeout(format!("the request to {t} failed: timeout; {LOG}"))
        }
        HttpFailure::Connection(_) => HttpFailure::Connection(format!(
            "the request to {t} failed: connection refused or broken; {LOG}"
        )),
        HttpFailure::TooLarge(_) => HttpFailure::TooLarge(format!(
            "the request to {t} failed: the response is over the cap of {max_body} bytes; {LOG}"
        )),
    }
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(200).map_or(s.len(), |(i, _)| i);
    s.get(..end).unwrap_or(s)
}
