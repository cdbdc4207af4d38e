//! HTTP through the host.
//!
//! Requests go to the host's `http.send` import: the host checks the URL
//! against the plugin's granted endpoints on every hop, injects credentials on
//! endpoints that take them, follows redirects itself and caps response
//! sizes. Setting `authorization`, `proxy-authorization` or `cookie` is
//! refused by the host; credentials are never the plugin's business.
//!
//! [`Response::error_for_status`] maps HTTP statuses onto the contract's
//! error cases so the host can act on them (refresh on 401, back off on 429,
//! retry 5xx).

use serde::{Serialize, de::DeserializeOwned};

use crate::PluginError;
use crate::bindings::proofpix::plugin::http as host;

pub use host::Method;
/// The contract's request record: what [`Request::into_wit`] returns, for
/// [`crate::ContentLocation::Http`] and [`crate::Connector::upload`].
pub use host::Request as WitRequest;

/// The longest excerpt of a response body quoted in an error message.
const MAX_ERROR_EXCERPT_CHARS: usize = 300;

/// An outbound request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with the given method and absolute URL.
    pub fn new(method: Method, url: &str) -> Self {
        Request {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: &str) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `PATCH` request.
    pub fn patch(url: &str) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: &str) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Appends a percent-encoded query parameter.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        self.url.push(sep);
        self.url.push_str(&percent_encode(key));
        self.url.push('=');
        self.url.push_str(&percent_encode(value));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        // Serialising plain data structures does not fail; an empty body is
        // the safe fallback if a custom Serialize impl does.
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("content-type", "application/json")
    }

    /// Sets a form-encoded body and its content type.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Sets a raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The URL built so far.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request through the host.
    ///
    /// # Errors
    /// A request the host's egress policy refuses is
    /// [`PluginError::EgressRefused`] with the URL; an invalid one is `fatal`; a
    /// timeout or connection failure is `transient`. HTTP error statuses are
    /// not errors here: see [`Response::error_for_status`].
    pub fn send(self) -> Result<Response, PluginError> {
        let url = self.url.clone();
        match host::send(&self.into_wit()) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
                url: r.url,
            }),
            Err(host::Error::Denied(m)) => Err(PluginError::egress_refused(&url, m)),
            Err(host::Error::InvalidRequest(m)) => Err(PluginError::fatal(format!(
                "invalid request to {}: {m}",
                host_of(&url)
            ))),
            Err(host::Error::TooLarge(m)) => Err(PluginError::fatal(format!(
                "response from {} too large: {m}",
                host_of(&url)
            ))),
            Err(host::Error::Timeout(m)) => Err(PluginError::transient(format!(
                "timeout calling {}: {m}",
                host_of(&url)
            ))),
            Err(host::Error::Connection(m)) => Err(PluginError::transient(format!(
                "cannot reach {}: {m}",
                host_of(&url)
            ))),
        }
    }

    /// The request as the contract's record, for [`crate::ContentLocation::Http`].
    pub fn into_wit(self) -> host::Request {
        host::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// A response from the platform.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// URL of the final hop.
    pub url: String,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in milliseconds, when given in seconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1000.0) as u64)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    ///
    /// # Errors
    /// A body that is not the expected JSON is `transient`: a truncated or
    /// malformed page is worth one more try.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::transient(format!(
                "malformed response from {} (HTTP {}): {e}",
                host_of(&self.url),
                self.status
            ))
        })
    }

    /// Passes 2xx (and 3xx) responses through and maps error statuses onto
    /// the contract's error cases.
    pub fn error_for_status(self) -> Result<Self, PluginError> {
        if self.status < 400 {
            return Ok(self);
        }
        Err(status_error(
            self.status,
            &self.url,
            &self.text(),
            self.retry_after_ms(),
        ))
    }
}

/// Maps an HTTP error status onto the contract's error cases.
pub fn status_error(
    status: u16,
    url: &str,
    body: &str,
    retry_after_ms: Option<u64>,
) -> PluginError {
    let excerpt: String = body.chars().take(MAX_ERROR_EXCERPT_CHARS).collect();
    let what = format!(
        "{} answered HTTP {status}: {}",
        host_of(url),
        excerpt.trim()
    );
    match status {
        401 => PluginError::unauthorized(what),
        404 | 410 => PluginError::not_found(what),
        429 => PluginError::rate_limited(retry_after_ms, what),
        503 if retry_after_ms.is_some() => PluginError::rate_limited(retry_after_ms, what),
        408 | 500..=599 => PluginError::transient(what),
        _ => PluginError::fatal(what),
    }
}

/// The host part of a URL, for messages.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes, as in a URL path segment copied from a browser's address bar
/// (`Shared%20Documents`). An escape that is not two hex digits stays as it is, `+` stays a
/// `+` (replace it first where a form encoding means a space), and bytes that are not UTF-8
/// after decoding become U+FFFD.
///
/// # Examples
///
/// ```
/// use proofpix_sdk::http::percent_decode;
///
/// assert_eq!(percent_decode("Photos%202026"), "Photos 2026");
/// assert_eq!(percent_decode("%C3%A9t%C3%A9"), "été");
/// assert_eq!(percent_decode("100%"), "100%");
/// ```
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && hex.bytes().all(|h| h.is_ascii_hexdigit())
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_encoded() {
        let r = Request::get("https://x.example/q")
            .query("q", "SELECT Id FROM Case")
            .query("a&b", "é");
        assert_eq!(
            r.url(),
            "https://x.example/q?q=SELECT%20Id%20FROM%20Case&a%26b=%C3%A9"
        );
    }

    /// Broken escapes, multi-byte characters split across escapes, and escapes that are not
    /// UTF-8: decoded where they can be, kept or replaced where they cannot, never a panic.
    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        for (given, want) in [
            ("Shared%20Documents", "Shared Documents"),
            ("%e6%97%a5", "日"),
            ("a+b", "a+b"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("%4", "%4"),
            ("%+1", "%+1"),
            ("%", "%"),
            ("é%", "é%"),
            ("%é", "%é"),
            ("%ff", "\u{fffd}"),
            ("%00", "\u{0}"),
        ] {
            assert_eq!(percent_decode(given), want, "{given:?}");
        }
        assert_eq!(percent_decode(&percent_encode("é &/%")), "é &/%");
    }

    #[test]
    fn error_statuses_map_to_actionable_cases() {
        assert!(matches!(
            status_error(401, "https://a/b", "", None),
            PluginError::Unauthorized(_)
        ));
        assert!(
            matches!(status_error(429, "https://a/b", "", Some(2000)), PluginError::RateLimited(r) if r.retry_after_ms == Some(2000))
        );
        assert!(matches!(
            status_error(503, "https://a/b", "", Some(1)),
            PluginError::RateLimited(_)
        ));
        assert!(matches!(
            status_error(503, "https://a/b", "", None),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            status_error(404, "https://a/b", "", None),
            PluginError::NotFound(_)
        ));
        assert!(
            matches!(status_error(400, "https://a/b", "bad", None), PluginError::Fatal(m) if m == "a answered HTTP 400: bad")
        );
    }
}
