//! Calls to the Slack Web API and what their failures mean to an operator.
//!
//! Slack reports almost every failure as **HTTP 200 with `{"ok":false,"error":"code"}`**
//! (reference §4.2); a client that looks only at the status treats a refused message as
//! delivered. Every call here therefore reads the body, and [`explain`] turns each code into
//! the contract's error case with a sentence that says what to fix (invite the bot, add a scope,
//! replace the token). Real HTTP errors are mapped too: 429 with `Retry-After` is rate limiting
//! (reference §4.3), 5xx is transient, anything else goes through the SDK's status mapping.
//!
//! Threat model: the response comes from a remote service; a malformed body is a transient
//! failure (retry the page), never a panic. Error texts quote Slack's error *code* and, for
//! `invalid_blocks`, the first `response_metadata.messages` entry (a JSON pointer, no user
//! data); they never quote message content, tokens or file names.

use proofpix_sdk::prelude::*;
use serde_json::Value;

/// Default Web API base.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";

/// Longest `response_metadata.messages` entry quoted in an error.
const MAX_DETAIL_CHARS: usize = 200;

/// A call that Slack answered with `ok:false`, or that failed before Slack could answer.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// Slack answered `ok:false`.
    Slack(Box<SlackError>),
    /// Transport, HTTP status or malformed body, already mapped.
    Other(PluginError),
}

/// Slack's `ok:false` answer.
#[derive(Debug, Clone, Default)]
pub struct SlackError {
    /// The method called, e.g. `chat.postMessage`.
    pub method: String,
    /// Slack's error code, e.g. `not_in_channel`.
    pub code: String,
    /// For `missing_scope`: the scope the method needs.
    pub needed: Option<String>,
    /// For `missing_scope`: the scopes the token has.
    pub provided: Option<String>,
    /// First validation message (`invalid_blocks`).
    pub detail: Option<String>,
    /// `Retry-After` of the response, if any.
    pub retry_after_ms: Option<u64>,
}

impl SlackError {
    /// Whether Slack refused the *shape* of a message (too long, too many blocks, a block it
    /// cannot parse), so that a simpler message may go through.
    pub fn is_message_shape(&self) -> bool {
        matches!(
            self.code.as_str(),
            "msg_too_long"
                | "msg_blocks_too_long"
                | "invalid_blocks"
                | "invalid_blocks_format"
                | "too_many_attachments"
                | "no_text"
                | "invalid_arguments"
        )
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        ApiError::Other(e)
    }
}

/// The configured Web API base, without a trailing slash.
pub fn base() -> String {
    config::get("api_base_url")
        .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
        .trim()
        .trim_end_matches('/')
        .to_string()
}

/// `POST {base}/{method}` with a JSON body (the Bearer header, which JSON bodies require, is
/// injected by the host).
pub fn post_json(method: &str, body: &Value) -> Result<Value, ApiError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let response = http::Request::post(&format!("{}/{method}", base()))
        .header("content-type", "application/json; charset=utf-8")
        .body(bytes)
        .send()?;
    read(method, response)
}

/// `GET {base}/{method}?params` for read methods.
pub fn get(method: &str, params: &[(&str, &str)]) -> Result<Value, ApiError> {
    let mut request = http::Request::get(&format!("{}/{method}", base()));
    for (k, v) in params {
        request = request.query(k, v);
    }
    read(method, request.send()?)
}

/// Reads a Web API response: HTTP errors first, then the `ok` flag.
pub fn read(method: &str, response: http::Response) -> Result<Value, ApiError> {
    let retry_after_ms = response.retry_after_ms();
    if response.status == 429 {
        // Reference §4.3: HTTP 429, Retry-After in seconds, body {"ok":false,"error":"ratelimited"}.
        return Err(ApiError::Other(PluginError::rate_limited(
            retry_after_ms,
            format!(
                "Slack is rate-limiting {method} (HTTP 429{}); ProofPix waits and retries",
                wait_text(retry_after_ms)
            ),
        )));
    }
    if response.status >= 400 {
        return Err(ApiError::Other(http::status_error(
            response.status,
            &response.url,
            &response.text(),
            retry_after_ms,
        )));
    }
    let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
        PluginError::transient(format!(
            "Slack answered {method} with a body that is not JSON (HTTP {}): {e}; retrying",
            response.status
        ))
    })?;
    match body.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(body),
        Some(false) => Err(ApiError::Slack(Box::new(SlackError {
            method: method.to_string(),
            code: body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_string(),
            needed: body.get("needed").and_then(Value::as_str).map(String::from),
            provided: body
                .get("provided")
                .and_then(Value::as_str)
                .map(String::from),
            detail: body
                .pointer("/response_metadata/messages/0")
                .and_then(Value::as_str)
                .map(|m| m.chars().take(MAX_DETAIL_CHARS).collect()),
            retry_after_ms,
        }))),
        None => Err(ApiError::Other(PluginError::transient(format!(
            "Slack answered {method} without an `ok` field (HTTP {}); retrying",
            response.status
        )))),
    }
}

fn wait_text(retry_after_ms: Option<u64>) -> String {
    match retry_after_ms {
        Some(ms) => format!(", Retry-After {} s", ms.div_ceil(1000)),
        None => String::new(),
    }
}

/// What a failure is about, for the message.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The channel as the operator wrote it.
    pub channel: Option<String>,
    /// The config field that holds it.
    pub channel_field: &'static str,
    /// The bot's user name, when known, for `/invite @name`.
    pub bot_name: Option<String>,
}

/// Turns a failed call into the contract's error with a message that says what to fix.
pub fn explain(error: ApiError, ctx: &Context) -> PluginError {
    let e = match error {
        ApiError::Other(e) => return e,
        ApiError::Slack(e) => e,
    };
    let code = e.code.as_str();
    let method = e.method.as_str();
    let channel = ctx.channel.as_deref().map(display_channel);
    let ch = channel.as_deref().unwrap_or("the channel");
    let field = (!ctx.channel_field.is_empty()).then_some(ctx.channel_field);
    let field_name = field.unwrap_or("channel");
    let bot = ctx.bot_name.as_deref().unwrap_or("ProofPix");
    match code {
        "channel_not_found" => PluginError::invalid_config(
            field,
            format!(
                "Slack cannot find {ch} (channel_not_found); check `{field_name}`: use the channel ID \
                 (e.g. C0123ABCD, shown under the channel name → About), and invite the bot first if \
                 the channel is private"
            ),
        ),
        "not_in_channel" => PluginError::invalid_config(
            field,
            format!(
                "the bot is not in {ch} (not_in_channel); invite it with /invite @{bot} in {ch}"
            ),
        ),
        "is_archived" => PluginError::invalid_config(
            field,
            format!(
                "{ch} is archived (is_archived); unarchive it or set `{field_name}` to another channel"
            ),
        ),
        "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel"
        | "restricted_action_non_threadable_channel" => PluginError::invalid_config(
            field,
            format!(
                "the workspace does not let the bot post in {ch} ({code}); ask a Slack admin to \
                     allow apps to post there, or set `{field_name}` to another channel"
            ),
        ),
        "invalid_auth"
        | "not_authed"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "no_permission"
        | "not_allowed_token_type" => PluginError::unauthorized(format!(
            "Slack rejected the bot token ({code}); set a current Bot User OAuth Token (xoxb-…) with \
             `proofpix integration set-secret {} bot_token`",
            config::integration_id()
        )),
        "missing_scope" => {
            let needed = e.needed.as_deref().unwrap_or("a further");
            let provided = e
                .provided
                .as_deref()
                .map(|p| format!("; the token has: {p}"))
                .unwrap_or_default();
            PluginError::invalid_config(
                None,
                format!(
                    "the Slack app lacks the {needed} scope that {method} needs (missing_scope{provided}); \
                     add it under OAuth & Permissions → Bot Token Scopes, reinstall the app to the \
                     workspace and update `bot_token` if Slack issued a new one"
                ),
            )
        }
        "ratelimited" | "rate_limited" => PluginError::rate_limited(
            e.retry_after_ms,
            format!(
                "Slack is rate-limiting {method} ({code}{}); ProofPix waits and retries",
                wait_text(e.retry_after_ms)
            ),
        ),
        "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
            PluginError::transient(format!(
                "Slack failed internally on {method} ({code}); retrying"
            ))
        }
        "file_not_found" | "file_deleted" | "message_not_found" | "thread_not_found" => {
            PluginError::not_found(format!("Slack says {code} for {method}"))
        }
        "team_access_not_granted" | "ekm_access_denied" | "access_denied" => {
            PluginError::fatal(format!(
                "Slack refused {method} ({code}); the workspace's admins restrict this app — ask them \
                 to grant it access"
            ))
        }
        _ if e.is_message_shape() => PluginError::fatal(format!(
            "Slack refused the message ({code}{}); this is a bug in the ProofPix Slack plugin, please \
             report it with this message",
            e.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )),
        _ => PluginError::fatal(format!(
            "Slack answered {code} to {method}; see https://api.slack.com/methods/{method} for what \
             it means"
        )),
    }
}

/// `#name` for names, the ID as is.
pub fn display_channel(channel: &str) -> String {
    let c = channel.trim();
    if c.starts_with('#') || looks_like_id(c) {
        c.to_string()
    } else {
        format!("#{c}")
    }
}

/// Whether `s` looks like a conversation ID (`C…`, `G…`, `D…`, uppercase alphanumerics).
pub fn looks_like_id(s: &str) -> bool {
    s.len() >= 9
        && matches!(s.as_bytes().first(), Some(b'C' | b'G' | b'D'))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The bot's user name from `auth.test`, cached in plugin state; `None` when Slack cannot say.
pub fn bot_name() -> Option<String> {
    if let Some(name) = state::get_json::<String>("bot_name") {
        return Some(name);
    }
    let who = post_json("auth.test", &serde_json::json!({})).ok()?;
    let name = who.get("user").and_then(Value::as_str)?.to_string();
    let _ = state::set_json("bot_name", &name);
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack(code: &str) -> ApiError {
        ApiError::Slack(Box::new(SlackError {
            method: "chat.postMessage".into(),
            code: code.into(),
            ..SlackError::default()
        }))
    }

    fn ctx() -> Context {
        Context {
            channel: Some("compliance".into()),
            channel_field: "channel",
            bot_name: Some("ProofPix".into()),
        }
    }

    #[test]
    fn not_in_channel_says_to_invite_the_bot() {
        let e = explain(slack("not_in_channel"), &ctx());
        assert_eq!(
            e.message(),
            "the bot is not in #compliance (not_in_channel); invite it with /invite @ProofPix in #compliance"
        );
        assert!(
            matches!(e, PluginError::InvalidConfig(ref c) if c.field.as_deref() == Some("channel"))
        );
    }

    #[test]
    fn a_ratelimited_answer_with_http_200_is_rate_limiting() {
        let mut e = SlackError {
            method: "chat.postMessage".into(),
            code: "ratelimited".into(),
            ..SlackError::default()
        };
        e.retry_after_ms = Some(1000);
        assert!(matches!(
            explain(ApiError::Slack(Box::new(e)), &ctx()),
            PluginError::RateLimited(r) if r.retry_after_ms == Some(1000)
        ));
    }

    #[test]
    fn missing_scope_names_the_scope_to_add() {
        let e = explain(
            ApiError::Slack(Box::new(SlackError {
                method: "chat.postMessage".into(),
                code: "missing_scope".into(),
                needed: Some("chat:write".into()),
                provided: Some("files:read".into()),
                ..SlackError::default()
            })),
            &ctx(),
        );
        assert!(e.message().contains("lacks the chat:write scope"), "{e:?}");
        assert!(e.message().contains("the token has: files:read"), "{e:?}");
    }

    #[test]
    fn channel_ids_and_names_display_as_slack_users_write_them() {
        assert_eq!(display_channel("C0123ABCD"), "C0123ABCD");
        assert_eq!(display_channel("compliance"), "#compliance");
        assert_eq!(display_channel("#compliance"), "#compliance");
        assert!(!looks_like_id("general"));
    }
}
