//! Microsoft Graph change notifications (reference §2.6): the validation handshake, `clientState`
//! verification, lifecycle notifications.
//!
//! Threat model: anyone on the internet can POST to the hook URL. A notification is accepted only
//! when every item in it carries the subscription's `clientState`, compared with the secret field
//! `client_state` by the host in constant time (`verify::secret_matches`); the plugin never holds
//! the value. A request without it, or with a wrong one, is `unauthorized` and nothing is queued.
//!
//! DriveItem notifications name no files (Graph only says the drive changed), so an accepted
//! notification asks the host for an incremental sync (`resync`): the library's `delta` feed then
//! lists exactly what changed since the kept deltaLink. Graph expects an answer within 3 s; the
//! plugin answers 202 without calling Graph. The validation handshake (`?validationToken=`) is
//! answered with the decoded token as `text/plain`, as Graph requires; it carries no secret and
//! queues nothing.

use proofpix_sdk::http::percent_decode;
use proofpix_sdk::prelude::*;
use serde_json::Value;

use crate::settings::field;

/// Longest validation token echoed back; Graph's are well under this.
const MAX_TOKEN_CHARS: usize = 1024;

/// Verifies and handles one request to the integration's hook URL.
pub fn handle(request: &InboundRequest) -> Result<EventOutcome, PluginError> {
    if let Some(token) = query_param(&request.query, "validationToken") {
        if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
            return Err(PluginError::fatal(
                "a Graph validation request without a usable validationToken",
            ));
        }
        return Ok(reply(200, token.into_bytes(), false));
    }
    let body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        PluginError::fatal(format!(
            "a request to the SharePoint hook URL whose body is not JSON ({e}); only Microsoft \
             Graph change notifications belong here"
        ))
    })?;
    let items = body
        .get("value")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            PluginError::fatal("a Graph notification without a `value` list of notifications")
        })?;
    // Verify every item before acting on any: one forged item poisons the request.
    for item in items {
        let state = item.get("clientState").and_then(Value::as_str);
        match state {
            Some(s) if verify::secret_matches(field::CLIENT_STATE, s) => {}
            Some(_) => {
                return Err(PluginError::unauthorized(
                    "a Graph notification with a clientState that does not match the \
                     integration's; it was not sent for this subscription",
                ));
            }
            None => {
                return Err(PluginError::unauthorized(
                    "a Graph notification without clientState; create the subscription with \
                     the integration's client state so notifications can be verified",
                ));
            }
        }
    }
    let mut resync = false;
    for item in items {
        match item.get("lifecycleEvent").and_then(Value::as_str) {
            // Notifications were lost: the delta feed catches up.
            Some("missed") => resync = true,
            Some(event @ ("reauthorizationRequired" | "subscriptionRemoved")) => {
                log::log(
                    log::Level::Warn,
                    "Graph asks for the change-notification subscription to be renewed; until \
                     it is, only scheduled syncs see changes",
                    &[("lifecycle_event", event)],
                );
            }
            Some(other) => {
                log::log(
                    log::Level::Info,
                    "unknown Graph lifecycle event ignored",
                    &[("lifecycle_event", other)],
                );
            }
            None => resync = true,
        }
    }
    Ok(reply(202, Vec::new(), resync))
}

fn reply(status: u16, body: Vec<u8>, resync: bool) -> EventOutcome {
    EventOutcome {
        response: InboundResponse {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body,
        },
        changed: Vec::new(),
        removed: Vec::new(),
        resync,
    }
}

/// The decoded value of `name` in an `application/x-www-form-urlencoded` query.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| *k == name)
        // A form value: `+` is a space, then `%XX` escapes (so `%2B` stays a `+`).
        .map(|(_, v)| percent_decode(&v.replace('+', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_tokens_are_decoded_like_a_form_value() {
        assert_eq!(
            query_param(
                "validationToken=Validation%3a+Testing%3a+client+code&x=1",
                "validationToken"
            )
            .as_deref(),
            Some("Validation: Testing: client code")
        );
        assert_eq!(query_param("a=1", "validationToken"), None);
        assert_eq!(
            query_param("validationToken=a%2Bb+c", "validationToken").as_deref(),
            Some("a+b c")
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
