//! The Events API as Slack sends it: signed requests to an app's Request URL (reference §4.4,
//! §8).
//!
//! [`EventSender`] signs a body the way Slack does (`X-Slack-Request-Timestamp` in epoch
//! seconds of the emulated clock, `X-Slack-Signature: v0=` + hex HMAC-SHA256 of
//! `v0:{timestamp}:{body}`) and can deliver it over HTTP with Slack's retry behaviour: a non-2xx
//! answer or no answer within 3 s is retried up to 3 times with `X-Slack-Retry-Num` and
//! `X-Slack-Retry-Reason`, unless the app answered `X-Slack-No-Retry: 1`. The real retry
//! schedule (immediately, 1 min, 5 min) is unverified (reference §10.4) and configurable.
//!
//! A test can also take the [`SignedRequest`] without sending it and hand it to a handler
//! directly (e.g. a plugin session's `handle_event`), or tamper with it first.

use std::time::Duration;

use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use url::Url;

use crate::common::Clock;

/// Slack's acknowledgement deadline.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// A request as Slack would send it.
#[derive(Clone, Debug)]
pub struct SignedRequest {
    /// Headers: content type, timestamp, signature (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The raw body that was signed.
    pub body: Vec<u8>,
}

impl SignedRequest {
    /// Replaces a header's value (to tamper with a signature or a timestamp).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the body without re-signing it.
    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

/// One delivery attempt.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// 0 for the first delivery, then the retry number sent in `X-Slack-Retry-Num`.
    pub retry_num: u32,
    /// Status answered; `None` when the app did not answer in time or the connection failed.
    pub status: Option<u16>,
    /// Body answered.
    pub body: Vec<u8>,
    /// `Content-Type` answered.
    pub content_type: Option<String>,
}

/// What happened to a delivered event.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// Every attempt, first one first.
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    /// The last attempt's status.
    pub fn final_status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }

    /// Whether an attempt was acknowledged with a 2xx.
    pub fn acknowledged(&self) -> bool {
        self.final_status().is_some_and(|s| (200..300).contains(&s))
    }
}

/// Signs and sends Events API requests.
#[derive(Clone, Debug)]
pub struct EventSender {
    signing_secret: String,
    clock: Clock,
    team_id: String,
    app_id: String,
    bot_user_id: String,
    /// Waits before retries 1, 2 and 3. Default: none (the real 0 s / 1 min / 5 min would stall
    /// tests); set it to taste.
    pub retry_delays: Vec<Duration>,
    /// How long an attempt may take before it counts as `http_timeout`.
    pub ack_deadline: Duration,
}

impl EventSender {
    /// A sender for an app with this signing secret, timestamps from `clock`.
    pub fn new(signing_secret: &str, clock: Clock) -> Self {
        EventSender {
            signing_secret: signing_secret.to_owned(),
            clock,
            team_id: super::fixtures::TEAM_ID.to_owned(),
            app_id: "A0KRD7HC3".to_owned(),
            bot_user_id: "U0KRQLJ9H".to_owned(),
            retry_delays: vec![Duration::ZERO; 3],
            ack_deadline: ACK_DEADLINE,
        }
    }

    /// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        sign(&self.signing_secret, timestamp, body)
    }

    /// `body` signed now (the emulated clock).
    pub fn signed(&self, body: &[u8]) -> SignedRequest {
        self.signed_at(self.clock.unix_seconds(), body)
    }

    /// `body` signed with an explicit timestamp.
    pub fn signed_at(&self, timestamp: i64, body: &[u8]) -> SignedRequest {
        SignedRequest {
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-slack-request-timestamp".into(), timestamp.to_string()),
                ("x-slack-signature".into(), self.sign(timestamp, body)),
            ],
            body: body.to_vec(),
        }
    }

    /// The `url_verification` handshake (no outer envelope).
    pub fn url_verification(&self, challenge: &str) -> SignedRequest {
        let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge,
                          "type": "url_verification"});
        self.signed(body.to_string().as_bytes())
    }

    /// An `event_callback` envelope around `event`.
    pub fn event_callback(&self, event: Value) -> SignedRequest {
        let now = self.clock.unix_seconds();
        let body = json!({
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": format!("Ev0EMU{now}"),
            "event_time": now,
            "authorizations": [{"enterprise_id": null, "team_id": self.team_id,
                "user_id": self.bot_user_id, "is_bot": true, "is_enterprise_install": false}],
            "is_ext_shared_channel": false,
            "event_context": format!("4-eyJldCI6ImZpbGVfc2hhcmVkIiwidGlkIjoi{now}"),
        });
        self.signed(body.to_string().as_bytes())
    }

    /// POSTs `request` to `url` and retries like Slack: on a non-2xx answer (`http_error`) or no
    /// answer within the deadline (`http_timeout`), up to 3 retries, unless the app answers
    /// `X-Slack-No-Retry: 1`. Retries carry the original signature and timestamp.
    pub async fn deliver(&self, url: &Url, request: &SignedRequest) -> Delivery {
        let client = reqwest::Client::builder()
            .timeout(self.ack_deadline)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let mut delivery = Delivery::default();
        let mut reason: Option<&str> = None;
        for retry in 0..=3u32 {
            if retry > 0 {
                let wait = self
                    .retry_delays
                    .get(retry as usize - 1)
                    .copied()
                    .unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            let mut builder = client.post(url.clone()).body(request.body.clone());
            for (k, v) in &request.headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            if let Some(r) = reason {
                builder = builder
                    .header("x-slack-retry-num", retry.to_string())
                    .header("x-slack-retry-reason", r);
            }
            match builder.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let no_retry = resp
                        .headers()
                        .get("x-slack-no-retry")
                        .is_some_and(|v| v.as_bytes() == b"1");
                    let content_type = resp
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    delivery.attempts.push(Attempt {
                        retry_num: retry,
                        status: Some(status),
                        body,
                        content_type,
                    });
                    if (200..300).contains(&status) || no_retry {
                        break;
                    }
                    reason = Some("http_error");
                }
                Err(e) => {
                    delivery.attempts.push(Attempt {
                        retry_num: retry,
                        status: None,
                        body: Vec::new(),
                        content_type: None,
                    });
                    reason = Some(if e.is_timeout() {
                        "http_timeout"
                    } else {
                        "connection_failed"
                    });
                }
            }
        }
        delivery
    }
}

/// `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{body}`).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference §4.4's official test vector (verified against Slack's python SDK).
    #[test]
    fn signatures_match_slacks_published_test_vector() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            sign(
                "8f742231b10e8888abcd99yyyzzz85a5",
                1_531_420_618,
                body.as_bytes()
            ),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }
}
