//! Slack Events API requests (reference §4.4, §8): verification, the `url_verification`
//! handshake, and file events turned into changed files.
//!
//! Threat model: anyone on the internet can POST to the hook URL. A request is accepted only if
//! `X-Slack-Signature` is `v0=` + hex(HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`))
//! and `X-Slack-Request-Timestamp` is within 5 minutes of now, so a captured request cannot be
//! replayed later. The HMAC is computed and compared (in constant time) by the host with
//! `verify::hmac_matches`: the plugin never holds the signing secret. Verification comes before
//! any parsing, the handshake included, since Slack signs it too.
//!
//! Events name files only; for `file_shared` the file object comes from `files.info` (one call,
//! well inside Slack's 3-second ack deadline). If that call fails the event is still
//! acknowledged and the host is asked for an incremental sync instead (`resync`), so Slack does
//! not retry an event we could not use. Retried deliveries (`X-Slack-Retry-Num`) are handled like
//! first ones; the host analyses a file version at most once.
//!
//! Only files shared in the configured scan channels are reported; events from other channels
//! are acknowledged and ignored.

use proofpix_sdk::prelude::*;
use serde_json::Value;

use crate::source::{self, Channel};

/// Slack's replay window (reference §4.4).
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// Longest challenge echoed back; Slack's are about 50 characters.
const MAX_CHALLENGE_CHARS: usize = 512;

/// Verifies and handles one Events API request.
pub fn handle(request: &InboundRequest) -> Result<EventOutcome, PluginError> {
    verify_request(request, verify::now_ms())?;
    let body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        PluginError::fatal(format!(
            "a signed Slack request carried a body that is not JSON ({e}); only Events API \
             requests belong on this URL (point slash commands and interactivity elsewhere)"
        ))
    })?;
    match body.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = body
                .get("challenge")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if challenge.is_empty() || challenge.chars().count() > MAX_CHALLENGE_CHARS {
                return Err(PluginError::fatal(
                    "a url_verification request without a usable challenge",
                ));
            }
            Ok(reply(
                200,
                "text/plain",
                challenge.as_bytes().to_vec(),
                vec![],
                vec![],
                false,
            ))
        }
        Some("event_callback") => event_callback(body.get("event").unwrap_or(&Value::Null)),
        Some("app_rate_limited") => {
            // Slack dropped events for this app; a sync picks up what they would have said.
            log::warn("Slack reports that it dropped events for this app (app_rate_limited)");
            Ok(ack(vec![], vec![], true))
        }
        _ => Ok(ack(vec![], vec![], false)),
    }
}

/// Checks the v0 signature and the replay window; `now_ms` is the host's clock.
pub fn verify_request(request: &InboundRequest, now_ms: u64) -> Result<(), PluginError> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let Some(timestamp) = header("x-slack-request-timestamp") else {
        return Err(PluginError::unauthorized(
            "the request has no X-Slack-Request-Timestamp header; it does not come from Slack",
        ));
    };
    let Ok(sent) = timestamp.parse::<i64>() else {
        return Err(PluginError::unauthorized(
            "the request's X-Slack-Request-Timestamp is not a number; it does not come from Slack",
        ));
    };
    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let skew = now.saturating_sub(sent).saturating_abs();
    if skew > REPLAY_WINDOW_SECS {
        return Err(PluginError::unauthorized(format!(
            "the request was signed {skew} s away from now, outside Slack's 5-minute window: a \
             replayed request, or this host's clock is wrong (check NTP)"
        )));
    }
    let signature = header("x-slack-signature")
        .and_then(|s| s.strip_prefix("v0="))
        .and_then(verify::decode_hex);
    let Some(signature) = signature else {
        return Err(PluginError::unauthorized(
            "the request has no v0 X-Slack-Signature; it does not come from Slack",
        ));
    };
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(&request.body);
    if !verify::hmac_matches(
        "signing_secret",
        verify::HmacAlgorithm::Sha256,
        &message,
        &signature,
    ) {
        return Err(PluginError::unauthorized(
            "the request's X-Slack-Signature does not match; check that `signing_secret` is this \
             Slack app's Signing Secret (Basic Information → App Credentials)",
        ));
    }
    Ok(())
}

fn event_callback(event: &Value) -> Result<EventOutcome, PluginError> {
    let s = |k: &str| event.get(k).and_then(Value::as_str);
    match s("type") {
        Some("file_shared") => {
            let (Some(channel), Some(file_id)) = (
                s("channel_id"),
                s("file_id").or_else(|| event.pointer("/file/id").and_then(Value::as_str)),
            ) else {
                return Ok(ack(vec![], vec![], false));
            };
            let Some(ch) = scanned(channel)? else {
                return Ok(ack(vec![], vec![], false));
            };
            let file = match source::files_info(file_id) {
                Ok(f) => f,
                Err(e) => {
                    log::log(
                        log::Level::Warn,
                        "files.info failed for a shared file; asking for a sync instead",
                        &[("file", file_id), ("error", e.message())],
                    );
                    return Ok(ack(vec![], vec![], true));
                }
            };
            let ts = share_ts(&file, channel).unwrap_or_default();
            Ok(ack(
                source::remote_file(&file, &ch, &ts).into_iter().collect(),
                vec![],
                false,
            ))
        }
        Some("message") => {
            let Some(channel) = s("channel") else {
                return Ok(ack(vec![], vec![], false));
            };
            let files = event.get("files").and_then(Value::as_array);
            let (Some(files), Some(ts)) = (files, s("ts")) else {
                return Ok(ack(vec![], vec![], false));
            };
            let Some(ch) = scanned(channel)? else {
                return Ok(ack(vec![], vec![], false));
            };
            let mut changed = Vec::new();
            for f in files {
                match source::file_object(f) {
                    Ok(Some(full)) => changed.extend(source::remote_file(&full, &ch, ts)),
                    Ok(None) => {}
                    Err(_) => return Ok(ack(changed, vec![], true)),
                }
            }
            Ok(ack(changed, vec![], false))
        }
        Some("file_deleted") => {
            let removed = s("file_id").map(String::from).into_iter().collect();
            Ok(ack(vec![], removed, false))
        }
        _ => Ok(ack(vec![], vec![], false)),
    }
}

/// The configured scan channel with this ID, if any.
fn scanned(channel_id: &str) -> Result<Option<Channel>, PluginError> {
    Ok(source::scan_channels()?
        .into_iter()
        .find(|c| c.id == channel_id))
}

/// The `ts` of the message that shared `file` in `channel` (`shares.public|private`).
fn share_ts(file: &Value, channel: &str) -> Option<String> {
    ["public", "private"].iter().find_map(|kind| {
        file.pointer(&format!("/shares/{kind}/{channel}/0/ts"))
            .and_then(Value::as_str)
            .map(String::from)
    })
}

fn ack(changed: Vec<RemoteFile>, removed: Vec<String>, resync: bool) -> EventOutcome {
    reply(200, "text/plain", Vec::new(), changed, removed, resync)
}

fn reply(
    status: u16,
    content_type: &str,
    body: Vec<u8>,
    changed: Vec<RemoteFile>,
    removed: Vec<String>,
    resync: bool,
) -> EventOutcome {
    EventOutcome {
        response: InboundResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        },
        changed,
        removed,
        resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn a_request_without_a_timestamp_is_refused_before_any_secret_is_used() {
        let e = verify_request(&request(&[("x-slack-signature", "v0=00")]), 0);
        assert!(matches!(e, Err(PluginError::Unauthorized(_))));
    }

    #[test]
    fn a_timestamp_older_than_five_minutes_is_a_replay() {
        let now_ms = 1_531_420_618_000 + 301_000;
        let e = verify_request(
            &request(&[
                ("X-Slack-Request-Timestamp", "1531420618"),
                ("X-Slack-Signature", "v0=00"),
            ]),
            now_ms,
        );
        assert!(
            matches!(&e, Err(PluginError::Unauthorized(m)) if m.contains("301 s away")),
            "{e:?}"
        );
    }

    #[test]
    fn a_signature_that_is_not_v0_hex_is_refused() {
        let e = verify_request(
            &request(&[
                ("x-slack-request-timestamp", "1531420618"),
                ("x-slack-signature", "v1=zz"),
            ]),
            1_531_420_618_000,
        );
        assert!(matches!(&e, Err(PluginError::Unauthorized(m)) if m.contains("no v0")));
    }
}
