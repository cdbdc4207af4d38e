//! The one door through which token requests leave the host.
//!
//! Threat: a token request carries the client secret, a password or a signed assertion. If the
//! token endpoint (or something on the path to it) answers with a redirect, an HTTP client that
//! follows it re-sends the request, and for 307/308 the body with the secret in it, to wherever
//! the redirect points. So token requests **never follow redirects**: the caller's
//! `reqwest::Client` must be built with `redirect::Policy::none()`, and if a redirect was
//! followed anyway (the final URL differs from the one requested) the response is discarded and
//! the request fails with [`AuthError::Redirected`](crate::AuthError::Redirected).
//!
//! The client itself comes from the host, which builds it with its egress checks (DNS rebinding,
//! metadata addresses). A client never resolves an IP-literal host, so the checking resolver
//! never sees `http://127.0.0.1/token` or `http://169.254.169.254/`: this module checks a literal
//! against the grant's blocked networks before sending, with the same function the runtime uses
//! for plugin requests ([`proofpix_policy::BlockedNetworks::check_literal`]). It adds a per-request
//! timeout, a cap on response size ([`MAX_TOKEN_RESPONSE_BYTES`]), and a classification of
//! failures that never includes a URL or a body in its text.

use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};
use url::Url;

/// Largest token-endpoint response read. Real ones are a few kilobytes (a Salesforce response
/// with an `id_token` is the largest); anything bigger is not a token response.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a token request got no usable HTTP response. Display texts carry no URL and no body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpFailure {
    #[error("connection failed: {reason}")]
    Unreachable { reason: String },
    #[error("timed out")]
    Timeout,
    #[error("redirected")]
    Redirected { status: u16 },
    #[error("server error {status}")]
    ServerError { status: u16 },
    #[error("unexpected HTTP {status} ({content_type})")]
    UnexpectedStatus { status: u16, content_type: String },
    #[error("response larger than {MAX_TOKEN_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("the request could not be built")]
    InvalidRequest,
    #[error("the token URL's host is the address {ip}, {}; refused{}", class.describe(), class.hint())]
    Blocked {
        ip: std::net::IpAddr,
        class: proofpix_policy::NetworkClass,
    },
}

/// The host's HTTP client, used for token requests only.
#[derive(Clone, Debug)]
pub(crate) struct TokenHttp {
    client: reqwest::Client,
    timeout: Duration,
    networks: proofpix_policy::BlockedNetworks,
}

impl TokenHttp {
    pub(crate) fn new(
        client: reqwest::Client,
        timeout: Duration,
        networks: proofpix_policy::BlockedNetworks,
    ) -> Self {
        TokenHttp {
            client,
            timeout,
            networks,
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and returns the response, or the reason there is none to use.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let requested = request.uri().to_string();
        let url = Url::parse(&requested).map_err(|_| HttpFailure::InvalidRequest)?;
        self.networks
            .check_literal(&url)
            .map_err(|(ip, class)| HttpFailure::Blocked { ip, class })?;
        let mut request =
            reqwest::Request::try_from(request).map_err(|_| HttpFailure::InvalidRequest)?;
        *request.timeout_mut() = Some(self.timeout);
        let mut response = self.client.execute(request).await.map_err(from_reqwest)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(HttpFailure::Redirected {
                status: status.as_u16(),
            });
        }
        // The client followed a redirect despite the documented requirement: whatever answered
        // is not the declared token endpoint, so nothing it says is used.
        if Url::parse(&requested).ok().as_ref() != Some(response.url()) {
            return Err(HttpFailure::Redirected { status: 0 });
        }
        // 429 from a token endpoint is throttling, not a verdict on the credentials: report it
        // as temporary, like a 5xx.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(HttpFailure::ServerError {
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_TOKEN_RESPONSE_BYTES as u64)
        {
            return Err(HttpFailure::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(from_reqwest)? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                return Err(HttpFailure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_owned();
        // A 4xx that is not JSON is not an OAuth2 error (a proxy page, a wrong path): report the
        // status rather than a parse error.
        if status.is_client_error() && serde_json::from_slice::<serde_json::Value>(&body).is_err() {
            return Err(HttpFailure::UnexpectedStatus {
                status: status.as_u16(),
                content_type,
            });
        }
        let mut builder = oauth2::http::Response::builder().status(status.as_u16());
        for (name, value) in response.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        builder.body(body).map_err(|_| HttpFailure::InvalidRequest)
    }

    /// A form POST with optional HTTP Basic client credentials: every token request.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        params: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpFailure> {
        let request = form_request(url, params, basic)?;
        self.send(request).await
    }
}

/// Builds the form request synchronously: the serializer is not `Send` and must not live across
/// an `.await`, or every future that sends a token request stops being `Send`.
fn form_request(
    url: &Url,
    params: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Result<HttpRequest, HttpFailure> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let mut builder = oauth2::http::Request::builder()
        .method(oauth2::http::Method::POST)
        .uri(url.as_str())
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        builder = builder.header("authorization", format!("Basic {encoded}"));
    }
    builder
        .body(form.finish().into_bytes())
        .map_err(|_| HttpFailure::InvalidRequest)
}

fn from_reqwest(error: reqwest::Error) -> HttpFailure {
    if error.is_timeout() {
        return HttpFailure::Timeout;
    }
    if error.is_redirect() {
        return HttpFailure::Redirected { status: 0 };
    }
    // The innermost cause ("Connection refused (os error 111)", "dns error: ...") says what
    // happened without the URL that reqwest's own message includes.
    let mut reason = None;
    let mut cause = std::error::Error::source(&error);
    while let Some(next) = cause {
        reason = Some(next.to_string());
        cause = next.source();
    }
    let reason = reason.unwrap_or_else(|| "the connection failed".to_owned());
    HttpFailure::Unreachable { reason }
}
