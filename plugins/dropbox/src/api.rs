//! Talking to the Dropbox API v2: RPC calls through the host, and Dropbox's answers turned into
//! the contract's error cases with messages that say what to fix (reference §7.5).
//!
//! | status | body | becomes |
//! |---|---|---|
//! | 400 | plain text ("Error in call to API function …"): a bad request | `fatal`, quoting the text |
//! | 401 | `{"error_summary":"expired_access_token/..","error":{".tag":…}}` | `unauthorized` (the host refreshes and retries once); `missing_scope` is `invalid-config` (a refresh cannot add a scope) |
//! | 403 | `no_permission`, … | `invalid-config` |
//! | 409 | route-specific, e.g. `path/not_found/..`, `reset/..` | decided by the caller ([`DbxError::tags`]); by default `path/not_found` is `not-found`, anything else `fatal` |
//! | 429 | `too_many_requests` or `too_many_write_operations`, `Retry-After` header (and `retry_after` in the body) | `rate-limited` with that delay |
//! | 422 | `invalid_root` (the `Dropbox-API-Path-Root` sent no longer fits the account) | `transient`; the saved root is dropped and read again |
//! | 5xx | anything | `transient` (503 with Retry-After: `rate-limited`) |
//!
//! A 200 body that is not the JSON we expect (malformed, truncated) is `transient`: the page
//! fails, not the run. Nothing Dropbox sends is quoted at length: messages keep at most
//! [`MAX_QUOTED_CHARS`] characters of it.

use proofpix_sdk::http::{Request, Response, host_of};
use proofpix_sdk::prelude::*;
use serde_json::{Value, json};

use crate::settings::Settings;

/// Longest part of a Dropbox error text quoted in a message.
pub const MAX_QUOTED_CHARS: usize = 300;
/// How many `.tag` levels of an error union are followed (`path` → `not_found` → …).
const MAX_TAG_DEPTH: usize = 6;

/// Dropbox's error, as far as the answer tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbxError {
    pub status: u16,
    /// `error_summary` without its trailing `/..` (e.g. `path/not_found`), or the plain-text
    /// body of a 400, cut to [`MAX_QUOTED_CHARS`].
    pub summary: String,
    /// The nested `.tag`s of `error` (or of `error.reason` for 429), outermost first.
    pub tags: Vec<String>,
    pub retry_after_ms: Option<u64>,
}

impl DbxError {
    pub fn from_response(resp: &Response) -> Self {
        Self::parse(resp.status, &resp.body, resp.retry_after_ms())
    }

    pub fn parse(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let summary = match v.get("error_summary").and_then(Value::as_str) {
            Some(s) => s.trim_end_matches('.').trim_end_matches('/').to_string(),
            None => String::from_utf8_lossy(body).trim().to_string(),
        };
        let summary: String = summary.chars().take(MAX_QUOTED_CHARS).collect();
        let mut tags = Vec::new();
        let error = v.get("error");
        let mut cur = error
            .and_then(|e| e.get("reason"))
            .filter(|_| status == 429)
            .or(error);
        for _ in 0..MAX_TAG_DEPTH {
            let Some(e) = cur else { break };
            let Some(tag) = e.get(".tag").and_then(Value::as_str) else {
                break;
            };
            tags.push(tag.to_string());
            cur = e.get(tag);
        }
        // 429 bodies carry `retry_after` (seconds) too; the header wins when both are there.
        let body_retry = error
            .and_then(|e| e.get("retry_after"))
            .and_then(Value::as_u64)
            .map(|s| s.saturating_mul(1000));
        DbxError {
            status,
            summary,
            tags,
            retry_after_ms: retry_after_ms.or(body_retry),
        }
    }

    /// The outermost tag (`path`, `reset`, `expired_access_token`, …), or "".
    pub fn tag(&self) -> &str {
        self.tags.first().map_or("", String::as_str)
    }

    /// Whether the tags start with `want` (`["path", "not_found"]`).
    pub fn is(&self, want: &[&str]) -> bool {
        want.len() <= self.tags.len() && want.iter().zip(&self.tags).all(|(w, t)| w == t)
    }

    fn detail(&self) -> String {
        if self.summary.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {}", self.status, self.summary)
        }
    }

    /// The contract error for this failure while doing `what` ("listing /Photos").
    pub fn into_plugin_error(self, what: &str) -> PluginError {
        let detail = self.detail();
        match self.status {
            401 if self.tag() == "missing_scope" => PluginError::invalid_config(
                None,
                format!(
                    "the Dropbox app lacks a permission while {what} ({detail}). In the App Console → Permissions, enable files.metadata.read, files.metadata.write and files.content.read, then authorize the integration again"
                ),
            ),
            401 => PluginError::unauthorized(format!(
                "Dropbox rejected the access token while {what} ({detail})"
            )),
            403 => PluginError::invalid_config(
                None,
                format!(
                    "Dropbox denied access while {what} ({detail}); check that the authorizing account may use this folder and the app's permissions"
                ),
            ),
            409 if self.is(&["path", "not_found"]) => {
                PluginError::not_found(format!("{what}: {detail}"))
            }
            429 => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Dropbox throttled {what} ({detail})"),
            ),
            503 if self.retry_after_ms.is_some() => PluginError::rate_limited(
                self.retry_after_ms,
                format!("Dropbox throttled {what} ({detail})"),
            ),
            408 | 500..=599 => {
                PluginError::transient(format!("Dropbox failed while {what} ({detail})"))
            }
            422 if self.tag() == "invalid_root" => PluginError::transient(format!(
                "the account's Dropbox root changed (joined or left a team space) while {what} ({detail}); the next sync reads it again and lists from the new root"
            )),
            _ => PluginError::fatal(format!("Dropbox refused {what} ({detail})")),
        }
    }
}

/// State key of the `Dropbox-API-Path-Root` header value every call sends, when the account's
/// root namespace is not its home namespace (a team space).
pub const PATH_ROOT_KEY: &str = "path-root";

/// The `Dropbox-API-Path-Root` value to send, as [`resolve_path_root`] last saved it.
pub fn path_root() -> Option<String> {
    state::get(PATH_ROOT_KEY)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|v| !v.is_empty())
}

/// The `Dropbox-API-Path-Root` header for an account's `root_info` (from
/// `users/get_current_account`): `{".tag": "root", "root": <root_namespace_id>}` when the root
/// namespace differs from the home namespace, which is a team space whose root holds more than
/// the member's home folder (Dropbox's Namespace and Team Files guides). `None` for a user
/// account or a team without a team space, whose root is the home folder.
pub fn path_root_for(root_info: &Value) -> Option<String> {
    let root = root_info["root_namespace_id"].as_str()?;
    let home = root_info["home_namespace_id"].as_str().unwrap_or_default();
    let valid = !root.is_empty() && root.len() <= 64 && root.bytes().all(|b| b.is_ascii_digit());
    (valid && root != home).then(|| json!({".tag": "root", "root": root}).to_string())
}

/// Reads the account's `root_info` and saves the path root every later call sends.
///
/// # Errors
/// Dropbox errors reading the account; a full plugin state.
pub fn resolve_path_root(settings: &Settings) -> Result<(Option<String>, Value), PluginError> {
    // Without the header: a saved root that no longer holds must not fail this very call.
    let resp = Request::post(&format!("{}/2/users/get_current_account", settings.api))
        .json(&Value::Null)
        .send()?;
    let me = json_of(&resp, "reading the authorized account")?;
    let root = path_root_for(&me["root_info"]);
    match &root {
        Some(v) => state::set(PATH_ROOT_KEY, v.as_bytes())?,
        None => state::delete(PATH_ROOT_KEY),
    }
    Ok((root, me))
}

/// Sends an RPC call (`POST {api}/2/{route}` with a JSON body) and returns the response
/// whatever its status. On a team space it carries the saved `Dropbox-API-Path-Root`.
///
/// # Errors
/// Egress refusals (fatal) and connection failures (transient).
pub fn send(settings: &Settings, route: &str, body: &Value) -> Result<Response, PluginError> {
    let mut r = Request::post(&format!("{}/2/{route}", settings.api)).json(body);
    if let Some(root) = path_root() {
        r = r.header("dropbox-api-path-root", &root);
    }
    let resp = r.send()?;
    if resp.status == 422 {
        // `invalid_root`: the account's namespaces changed (left or joined a team); read them
        // again on the next listing.
        state::delete(PATH_ROOT_KEY);
    }
    Ok(resp)
}

/// An RPC call whose error statuses all become contract errors for `what`.
///
/// # Errors
/// As [`DbxError::into_plugin_error`], and `transient` for a body that is not JSON.
pub fn call(
    settings: &Settings,
    route: &str,
    body: &Value,
    what: &str,
) -> Result<Value, PluginError> {
    let resp = send(settings, route, body)?;
    json_of(&resp, what)
}

/// The JSON body of a successful response, or the contract error for `what`.
///
/// # Errors
/// As [`call`].
pub fn json_of(resp: &Response, what: &str) -> Result<Value, PluginError> {
    if !resp.is_success() {
        return Err(DbxError::from_response(resp).into_plugin_error(what));
    }
    parse_json(resp, what)
}

/// Parses a body as JSON; a malformed or truncated one is `transient`.
///
/// # Errors
/// `transient` naming what was being read.
pub fn parse_json(resp: &Response, what: &str) -> Result<Value, PluginError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        PluginError::transient(format!(
            "Dropbox sent a malformed or truncated response while {what} (HTTP {}, {} bytes from {}): {e}",
            resp.status,
            resp.body.len(),
            host_of(&resp.url)
        ))
    })
}

/// The value of a `Dropbox-API-Arg` header: compact JSON with every character outside
/// printable ASCII written as a `\uXXXX` escape (UTF-16 surrogate pairs above U+FFFF), because
/// HTTP header values carry no UTF-8 and Dropbox requires the escapes (reference §7.3).
///
/// Characters outside ASCII can only occur inside JSON strings, where `\uXXXX` is the same
/// character, so the header decodes to exactly `arg`.
pub fn api_arg(arg: &Value) -> String {
    let json = arg.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_args_escape_everything_outside_printable_ascii() {
        let arg = json!({"path": "/Fotos/Ångström 日本 😀\u{7f}.jpg"});
        let header = api_arg(&arg);
        assert_eq!(
            header,
            r#"{"path":"/Fotos/\u00c5ngstr\u00f6m \u65e5\u672c \ud83d\ude00\u007f.jpg"}"#
        );
        assert!(header.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let back: Value = serde_json::from_str(&header).unwrap();
        assert_eq!(back, arg, "the header decodes to the same argument");
        assert_eq!(api_arg(&json!({"path": "id:abc"})), r#"{"path":"id:abc"}"#);
    }

    #[test]
    fn error_unions_are_read_to_their_innermost_tag() {
        let body = br#"{"error_summary": "path/not_found/..", "error": {".tag": "path", "path": {".tag": "not_found"}}}"#;
        let e = DbxError::parse(409, body, None);
        assert_eq!(e.summary, "path/not_found");
        assert_eq!(e.tags, ["path", "not_found"]);
        assert!(e.is(&["path", "not_found"]));
        assert!(!e.is(&["path", "not_found", "x"]));
        assert!(matches!(
            e.into_plugin_error("listing /x"),
            PluginError::NotFound(_)
        ));
        let reset = DbxError::parse(
            409,
            br#"{"error_summary":"reset/..","error":{".tag":"reset"}}"#,
            None,
        );
        assert_eq!(reset.tag(), "reset");
    }

    #[test]
    fn throttling_takes_the_header_else_the_body_retry_after() {
        let body = br#"{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":3}}"#;
        let from_body = DbxError::parse(429, body, None);
        assert_eq!(from_body.tags, ["too_many_requests"]);
        assert_eq!(from_body.retry_after_ms, Some(3000));
        let from_header = DbxError::parse(429, body, Some(15_000));
        assert!(matches!(
            from_header.into_plugin_error("x"),
            PluginError::RateLimited(r) if r.retry_after_ms == Some(15_000)
        ));
    }

    #[test]
    fn statuses_map_onto_what_the_host_can_do() {
        let e = |status, body: &[u8]| DbxError::parse(status, body, None).into_plugin_error("x");
        let expired = br#"{"error_summary":"expired_access_token/..","error":{".tag":"expired_access_token"}}"#;
        assert!(matches!(e(401, expired), PluginError::Unauthorized(_)));
        let scope = br#"{"error_summary":"missing_scope/..","error":{".tag":"missing_scope","required_scope":"files.metadata.write"}}"#;
        assert!(matches!(e(401, scope), PluginError::InvalidConfig(_)));
        assert!(matches!(e(403, b""), PluginError::InvalidConfig(_)));
        assert!(matches!(e(500, b""), PluginError::Transient(_)));
        assert!(matches!(e(503, b""), PluginError::Transient(_)));
        match e(
            400,
            b"Error in call to API function \"files/list_folder\": bad limit",
        ) {
            PluginError::Fatal(m) => assert!(m.contains("bad limit"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_error_text_is_cut() {
        let long = "x".repeat(5000);
        let e = DbxError::parse(400, long.as_bytes(), None);
        assert_eq!(e.summary.chars().count(), MAX_QUOTED_CHARS);
    }
}
