//! Talking to the Box API: sending through the host and turning Box's answers into the
//! contract's error cases with messages that say what to fix.
//!
//! Box errors are `{"type":"error","status","code","message","request_id",...}` (reference
//! §6.5); an API 401 often has an empty body and a `WWW-Authenticate` header instead. 429
//! (`rate_limit_exceeded`) and 503 with `retry-after` become `rate-limited` with Box's delay, so
//! the host waits at least that long; other 5xx are `transient`. A body that is not the JSON we
//! expect (malformed, truncated) is `transient` too: the page fails, not the run. The
//! `request_id` is quoted in messages: it is what Box support asks for.

use proofpix_sdk::http::{Request, Response, host_of};
use proofpix_sdk::prelude::*;
use serde_json::Value;

/// Longest part of a Box message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// Box's error, as far as the response tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub retry_after_ms: Option<u64>,
}

impl BoxError {
    pub fn from_response(resp: &Response) -> Self {
        Self::parse(resp.status, &resp.body, resp.retry_after_ms())
    }

    pub fn parse(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| -> String {
            v[k].as_str()
                .unwrap_or_default()
                .chars()
                .take(MAX_MESSAGE_CHARS)
                .collect()
        };
        BoxError {
            status,
            code: text("code"),
            message: text("message"),
            request_id: text("request_id"),
            retry_after_ms,
        }
    }

    pub fn detail(&self) -> String {
        let mut s = format!("HTTP {}", self.status);
        if !self.code.is_empty() {
            s.push(' ');
            s.push_str(&self.code);
        }
        if !self.message.trim().is_empty() {
            s.push_str(": ");
            s.push_str(self.message.trim());
        }
        if !self.request_id.is_empty() {
            s.push_str(&format!(" (request id {})", self.request_id));
        }
        s
    }

    /// The contract error for this failure while doing `what` ("listing folder 123").
    pub fn into_plugin_error(self, what: &str) -> PluginError {
        let detail = self.detail();
        match self.status {
            401 => PluginError::unauthorized(format!(
                "Box rejected the access token while {what} ({detail})"
            )),
            403 => PluginError::invalid_config(
                None,
                format!(
                    "Box denied access while {what} ({detail}). Share the folder with the account ProofPix acts as (the app's service account, AutomationUser_…@boxdevedition.com, or the configured user), as Editor for write-back or Viewer otherwise, and check the app's scopes in the Developer Console (Read and write all files and folders) are authorized by an admin"
                ),
            ),
            404 => PluginError::not_found(format!("{what}: {detail}")),
            429 => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Box rate-limited {what} ({detail})"),
            ),
            503 if self.retry_after_ms.is_some() => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Box asked to slow down while {what} ({detail})"),
            ),
            408 | 500..=599 => {
                PluginError::transient(format!("Box failed while {what} ({detail})"))
            }
            _ => PluginError::fatal(format!("Box refused {what} ({detail})")),
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
/// As [`BoxError::into_plugin_error`], and `transient` for a body that is not JSON.
pub fn get_json(url: &str, what: &str) -> Result<Value, PluginError> {
    json_of(get(url)?, what)
}

/// The JSON body of a successful response, or the contract error for `what`.
///
/// # Errors
/// As [`get_json`].
pub fn json_of(resp: Response, what: &str) -> Result<Value, PluginError> {
    if !resp.is_success() {
        return Err(BoxError::from_response(&resp).into_plugin_error(what));
    }
    parse_json(&resp, what)
}

/// Parses a body as a JSON object; a malformed or truncated one is `transient`.
///
/// # Errors
/// `transient` naming what was being read.
pub fn parse_json(resp: &Response, what: &str) -> Result<Value, PluginError> {
    match serde_json::from_slice::<Value>(&resp.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(PluginError::transient(format!(
            "Box sent something other than a JSON object while {what} (HTTP {}, {} bytes from {})",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))),
        Err(e) => Err(PluginError::transient(format!(
            "Box sent a malformed or truncated response while {what} (HTTP {}, {} bytes from {}): {e}",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))),
    }
}

/// A Box id (folder, file, version) as text: ids are numeric strings, but some SDKs and proxies
/// send them as numbers. Anything else (objects, negative or fractional numbers, text that is
/// not digits) is refused rather than trusted in a URL.
pub fn id_of(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 24 && s.chars().all(|c| c.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_429_becomes_rate_limited_with_its_retry_after() {
        let body = br#"{"type":"error","status":429,"code":"rate_limit_exceeded","help_url":"http://developers.box.com/docs/#errors","message":"Request rate limit exceeded, please try again later","request_id":"abc123"}"#;
        let e = BoxError::parse(429, body, Some(3000));
        assert_eq!(e.code, "rate_limit_exceeded");
        match e.into_plugin_error("listing folder 1") {
            PluginError::RateLimited(r) => {
                assert_eq!(r.retry_after_ms, Some(3000));
                assert!(r.message.contains("request id abc123"), "{}", r.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_map_onto_what_the_host_can_do() {
        let e = |status, ra| BoxError::parse(status, b"", ra).into_plugin_error("x");
        assert!(matches!(e(401, None), PluginError::Unauthorized(_)));
        assert!(matches!(e(403, None), PluginError::InvalidConfig(_)));
        assert!(matches!(e(503, Some(1)), PluginError::RateLimited(_)));
        assert!(matches!(e(503, None), PluginError::Transient(_)));
        assert!(matches!(e(502, None), PluginError::Transient(_)));
        assert!(matches!(e(404, None), PluginError::NotFound(_)));
        assert!(matches!(e(400, None), PluginError::Fatal(_)));
    }

    #[test]
    fn ids_are_digits_whatever_json_type_carries_them() {
        assert_eq!(id_of(&serde_json::json!("12345")).as_deref(), Some("12345"));
        assert_eq!(id_of(&serde_json::json!(12345)).as_deref(), Some("12345"));
        assert_eq!(id_of(&serde_json::json!("../../x")), None);
        assert_eq!(id_of(&serde_json::json!(-1)), None);
        assert_eq!(id_of(&serde_json::json!(1.5)), None);
        assert_eq!(id_of(&serde_json::json!({"id": 1})), None);
    }
}
