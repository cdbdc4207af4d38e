//! Talking to the Drive API: sending through the host and turning Google's answers into the
//! contract's error cases, with messages that say what to fix.
//!
//! Google's errors are `{"error":{"code","message","errors":[{"domain","reason","message"}],
//! "status"}}` (reference §5.5). The *reason* decides, not the status alone: a 403 is a quota
//! (`userRateLimitExceeded`, `rateLimitExceeded`: wait and retry) as often as a permission
//! problem (`insufficientPermissions`, `insufficientFilePermissions`: the operator must act).
//! 429 is a quota too. Google does not promise a `Retry-After`; when it sends one the host waits
//! that long, otherwise it backs off exponentially. A body that is not the JSON we expect
//! (malformed, truncated, an HTML error page) is `transient`: the page fails, not the run.

use proofpix_sdk::http::{Request, Response, host_of};
use proofpix_sdk::prelude::*;
use serde_json::Value;

/// Longest part of Google's message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 300;
/// Most `errors[]` entries read.
const MAX_REASONS: usize = 8;

/// Reasons that mean "slow down" (reference §5.5).
const RATE_LIMIT_REASONS: &[&str] = &[
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "dailyLimitExceeded",
    "quotaExceeded",
    "sharingRateLimitExceeded",
];

/// Google's error, as far as the body tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleError {
    pub status: u16,
    /// `errors[].reason`, in order.
    pub reasons: Vec<String>,
    /// `errors[].location` of the first entry (a parameter name such as `pageToken`).
    pub location: Option<String>,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl GoogleError {
    pub fn from_response(resp: &Response) -> Self {
        Self::parse(resp.status, &resp.body, resp.retry_after_ms())
    }

    pub fn parse(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = &v["error"];
        let entries: Vec<&Value> = error["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_REASONS)
            .collect();
        GoogleError {
            status,
            reasons: entries
                .iter()
                .filter_map(|e| e["reason"].as_str().map(String::from))
                .collect(),
            location: entries
                .first()
                .and_then(|e| e["location"].as_str().map(String::from)),
            message: error["message"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(MAX_MESSAGE_CHARS)
                .collect(),
            retry_after_ms,
        }
    }

    pub fn reason(&self) -> &str {
        self.reasons.first().map_or("", String::as_str)
    }

    pub fn has_reason(&self, reason: &str) -> bool {
        self.reasons.iter().any(|r| r == reason)
    }

    /// Whether this is Drive asking the caller to slow down.
    pub fn is_rate_limit(&self) -> bool {
        self.status == 429
            || (self.status == 403
                && self
                    .reasons
                    .iter()
                    .any(|r| RATE_LIMIT_REASONS.contains(&r.as_str())))
    }

    /// Whether Drive refused a page token (400 `invalid` on `pageToken`).
    pub fn is_invalid_page_token(&self) -> bool {
        matches!(self.status, 400 | 404 | 410) && self.location.as_deref() == Some("pageToken")
    }

    fn detail(&self) -> String {
        match (self.reason(), self.message.trim()) {
            ("", "") => format!("HTTP {}", self.status),
            ("", m) => format!("HTTP {}: {m}", self.status),
            (r, "") => format!("HTTP {} {r}", self.status),
            (r, m) => format!("HTTP {} {r}: {m}", self.status),
        }
    }

    /// The contract error for this failure while doing `what` ("listing My Drive").
    pub fn into_plugin_error(self, what: &str) -> PluginError {
        let detail = self.detail();
        if self.is_rate_limit() {
            return PluginError::rate_limited(
                self.retry_after_ms,
                format!("Google Drive asked to slow down while {what} ({detail})"),
            );
        }
        match self.status {
            401 => PluginError::unauthorized(format!(
                "Google rejected the access token while {what} ({detail})"
            )),
            403 if self.has_reason("insufficientPermissions") => PluginError::invalid_config(
                None,
                format!(
                    "the access token lacks the Drive scope while {what} ({detail}). With domain-wide delegation, authorize the service account's client ID for https://www.googleapis.com/auth/drive in the Admin console (Security → API controls → Domain-wide delegation)"
                ),
            ),
            403 => PluginError::invalid_config(
                None,
                format!(
                    "Google Drive denied access while {what} ({detail}). Share the files or shared drive with the service account (its client_email), or set `impersonate_user` to a user who has access"
                ),
            ),
            404 | 410 => PluginError::not_found(format!("{what}: {detail}")),
            503 if self.retry_after_ms.is_some() => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Google Drive is unavailable while {what} ({detail})"),
            ),
            408 | 500..=599 => {
                PluginError::transient(format!("Google Drive failed while {what} ({detail})"))
            }
            _ => PluginError::fatal(format!("Google Drive refused {what} ({detail})")),
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
/// As [`GoogleError::into_plugin_error`], and `transient` for a body that is not JSON.
pub fn get_json(url: &str, what: &str) -> Result<Value, PluginError> {
    json_of(get(url)?, what)
}

/// The JSON body of a successful response, or the contract error for `what`.
///
/// # Errors
/// As [`get_json`].
pub fn json_of(resp: Response, what: &str) -> Result<Value, PluginError> {
    if !resp.is_success() {
        return Err(GoogleError::from_response(&resp).into_plugin_error(what));
    }
    parse_json(&resp, what)
}

/// Parses a body as a JSON object; anything else (malformed, truncated, HTML) is `transient`.
///
/// # Errors
/// `transient` naming what was being read.
pub fn parse_json(resp: &Response, what: &str) -> Result<Value, PluginError> {
    match serde_json::from_slice::<Value>(&resp.body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(PluginError::transient(format!(
            "Google Drive sent something other than a JSON object while {what} (HTTP {}, {} bytes from {})",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))),
        Err(e) => Err(PluginError::transient(format!(
            "Google Drive sent a malformed or truncated response while {what} (HTTP {}, {} bytes from {}): {e}",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, reason: &str) -> Vec<u8> {
        format!(
            r#"{{"error":{{"code":{code},"message":"m","errors":[{{"domain":"usageLimits","reason":"{reason}","message":"m"}}],"status":"X"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_403_quota_reason_is_a_rate_limit_and_a_403_permission_is_not() {
        let quota = GoogleError::parse(403, &body(403, "userRateLimitExceeded"), Some(2000));
        assert!(matches!(
            quota.into_plugin_error("listing"),
            PluginError::RateLimited(r) if r.retry_after_ms == Some(2000)
        ));
        let quota = GoogleError::parse(403, &body(403, "rateLimitExceeded"), None);
        assert!(matches!(
            quota.into_plugin_error("listing"),
            PluginError::RateLimited(r) if r.retry_after_ms.is_none()
        ));
        let denied = GoogleError::parse(403, &body(403, "insufficientFilePermissions"), None);
        assert!(matches!(
            denied.into_plugin_error("x"),
            PluginError::InvalidConfig(_)
        ));
    }

    #[test]
    fn statuses_map_onto_what_the_host_can_do() {
        let e = |status, ra| GoogleError::parse(status, b"", ra).into_plugin_error("x");
        assert!(matches!(e(401, None), PluginError::Unauthorized(_)));
        assert!(matches!(e(429, None), PluginError::RateLimited(_)));
        assert!(matches!(e(503, Some(1)), PluginError::RateLimited(_)));
        assert!(matches!(e(503, None), PluginError::Transient(_)));
        assert!(matches!(e(502, None), PluginError::Transient(_)));
        assert!(matches!(e(404, None), PluginError::NotFound(_)));
        assert!(matches!(e(400, None), PluginError::Fatal(_)));
    }

    #[test]
    fn an_invalid_page_token_is_recognised_by_its_location() {
        let b = br#"{"error":{"code":400,"message":"Invalid Value","errors":[{"message":"Invalid Value","domain":"global","reason":"invalid","location":"pageToken","locationType":"parameter"}]}}"#;
        let e = GoogleError::parse(400, b, None);
        assert!(e.is_invalid_page_token());
        assert_eq!(e.reason(), "invalid");
        assert!(!GoogleError::parse(400, &body(400, "invalid"), None).is_invalid_page_token());
    }

    #[test]
    fn a_missing_scope_says_where_to_authorize_it() {
        let b = body(403, "insufficientPermissions");
        let msg = GoogleError::parse(403, &b, None)
            .into_plugin_error("writing properties")
            .message()
            .to_string();
        assert!(msg.contains("Domain-wide delegation"), "{msg}");
        assert!(msg.contains("auth/drive"), "{msg}");
    }
}
