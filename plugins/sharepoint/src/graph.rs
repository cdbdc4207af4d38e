//! Talking to Microsoft Graph: sending through the host and turning Graph's answers into the
//! contract's error cases with messages that say what to fix.
//!
//! Graph errors are `{"error":{"code","message","innerError":{...}}}`, where `innerError` may
//! carry a deeper `code` and nest further (reference §2.5); all codes are collected, outermost
//! first. Throttling is 429, or 503 with `Retry-After` (SharePoint), and becomes `rate-limited`
//! with the server's delay so the host waits at least that long. A body that is not the JSON we
//! expect (malformed, truncated) is `transient`: the page fails, not the run.

use proofpix_sdk::http::{Request, Response, host_of};
use proofpix_sdk::prelude::*;
use serde_json::Value;

/// Longest part of a Graph message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 300;
/// How deep `innerError` nesting is followed.
const MAX_INNER_DEPTH: usize = 8;

/// Graph's error, as far as the body tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    /// Outermost code first, then inner codes.
    pub codes: Vec<String>,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl GraphError {
    pub fn from_response(resp: &Response) -> Self {
        Self::parse(resp.status, &resp.body, resp.retry_after_ms())
    }

    pub fn parse(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        Self::from_value(status, &v, retry_after_ms)
    }

    pub fn from_value(status: u16, v: &Value, retry_after_ms: Option<u64>) -> Self {
        let mut codes = Vec::new();
        let error = v.get("error");
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(|m| {
                m.as_str()
                    .or_else(|| m.get("value").and_then(Value::as_str))
            })
            .unwrap_or_default()
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .collect();
        let mut cur = error;
        for _ in 0..MAX_INNER_DEPTH {
            let Some(e) = cur else { break };
            if let Some(c) = e.get("code").and_then(Value::as_str) {
                codes.push(c.to_string());
            }
            cur = e.get("innerError").or_else(|| e.get("innererror"));
        }
        GraphError {
            status,
            codes,
            message,
            retry_after_ms,
        }
    }

    pub fn code(&self) -> &str {
        self.codes.first().map_or("", String::as_str)
    }

    fn detail(&self) -> String {
        match (self.code(), self.message.trim()) {
            ("", "") => format!("HTTP {}", self.status),
            ("", m) => format!("HTTP {}: {m}", self.status),
            (c, "") => format!("HTTP {} {c}", self.status),
            (c, m) => format!("HTTP {} {c}: {m}", self.status),
        }
    }

    /// The contract error for this failure while doing `what` ("listing library X").
    pub fn into_plugin_error(self, what: &str) -> PluginError {
        let detail = self.detail();
        match self.status {
            401 => PluginError::unauthorized(format!(
                "Graph rejected the access token while {what} ({detail})"
            )),
            403 => PluginError::invalid_config(
                None,
                format!(
                    "Graph denied access while {what} ({detail}). Give the app registration the Microsoft Graph application permission Sites.Selected and grant it access to this site (write access, for the result columns), or Sites.ReadWrite.All; an administrator must consent"
                ),
            ),
            404 | 410 => PluginError::not_found(format!("{what}: {detail}")),
            429 | 509 => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Graph throttled {what} ({detail})"),
            ),
            503 if self.retry_after_ms.is_some() => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Graph throttled {what} ({detail})"),
            ),
            408 | 500..=599 => {
                PluginError::transient(format!("Graph failed while {what} ({detail})"))
            }
            _ => PluginError::fatal(format!("Graph refused {what} ({detail})")),
        }
    }
}

/// Sends a GET and returns the response whatever its status.
///
/// # Errors
/// Egress refusals (fatal) and connection failures (transient).
pub fn get(url: &str) -> Result<Response, PluginError> {
    Request::get(url)
        .header("accept", "application/json")
        .send()
}

/// GETs JSON; any error status becomes the contract error for `what`.
///
/// # Errors
/// As [`GraphError::into_plugin_error`], and `transient` for a body that is not JSON.
pub fn get_json(url: &str, what: &str) -> Result<Value, PluginError> {
    let resp = get(url)?;
    json_of(resp, what)
}

/// The JSON body of a successful response, or the contract error for `what`.
///
/// # Errors
/// As [`get_json`].
pub fn json_of(resp: Response, what: &str) -> Result<Value, PluginError> {
    if !resp.is_success() {
        return Err(GraphError::from_response(&resp).into_plugin_error(what));
    }
    parse_json(&resp, what)
}

/// Parses a body as JSON; a malformed or truncated one is `transient`.
///
/// # Errors
/// `transient` naming what was being read.
pub fn parse_json(resp: &Response, what: &str) -> Result<Value, PluginError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        PluginError::transient(format!(
            "Graph sent a malformed or truncated response while {what} (HTTP {}, {} bytes from {}): {e}",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))
    })
}

/// Whether `link` (a nextLink, deltaLink or Location) is on the configured Graph host. Links are
/// followed verbatim, but never to another host: that would send the bearer token's requests
/// somewhere the operator did not configure.
pub fn on_graph(link: &str, graph: &str) -> bool {
    link.strip_prefix(graph)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_inner_codes_are_collected_outermost_first() {
        let body = br#"{"error":{"code":"activityLimitReached","message":"The request has been throttled","innerError":{"code":"throttledRequest","innerError":{"code":"quota"},"date":"x"}}}"#;
        let e = GraphError::parse(429, body, Some(1000));
        assert_eq!(
            e.codes,
            ["activityLimitReached", "throttledRequest", "quota"]
        );
        assert!(matches!(
            e.into_plugin_error("listing"),
            PluginError::RateLimited(r) if r.retry_after_ms == Some(1000)
        ));
    }

    #[test]
    fn statuses_map_onto_what_the_host_can_do() {
        let e = |status, ra| GraphError::parse(status, b"", ra).into_plugin_error("x");
        assert!(matches!(e(401, None), PluginError::Unauthorized(_)));
        assert!(matches!(e(403, None), PluginError::InvalidConfig(_)));
        assert!(matches!(e(503, Some(1)), PluginError::RateLimited(_)));
        assert!(matches!(e(503, None), PluginError::Transient(_)));
        assert!(matches!(e(502, None), PluginError::Transient(_)));
        assert!(matches!(e(400, None), PluginError::Fatal(_)));
    }

    #[test]
    fn a_permission_error_names_the_permissions_to_grant() {
        let body = br#"{"error":{"code":"accessDenied","message":"Access denied"}}"#;
        let msg = GraphError::parse(403, body, None)
            .into_plugin_error("reading site x")
            .message()
            .to_string();
        assert!(
            msg.contains("Sites.Selected") && msg.contains("Sites.ReadWrite.All"),
            "{msg}"
        );
        assert!(
            msg.contains("HTTP 403 accessDenied: Access denied"),
            "{msg}"
        );
    }

    #[test]
    fn links_to_another_host_are_not_followed() {
        assert!(on_graph(
            "https://graph.microsoft.com/v1.0/x",
            "https://graph.microsoft.com"
        ));
        assert!(!on_graph(
            "https://graph.microsoft.com.evil/v1.0",
            "https://graph.microsoft.com"
        ));
        assert!(!on_graph(
            "https://evil/v1.0",
            "https://graph.microsoft.com"
        ));
    }
}
