//! The generic outbound webhook notifier: every notification is an HMAC-signed JSON `POST` to
//! one URL, which is how Zapier ("Catch Hook"), Power Automate ("When an HTTP request is
//! received") and n8n or Make flows are triggered, or your own endpoint.
//!
//! It speaks exactly the payload and signature of the Python example
//! (`sdk/examples/python-webhook/app.py`), so a receiver built for one works with the other.
//!
//! # Request
//!
//! ```text
//! POST {secret.url}
//! content-type: application/json
//! user-agent: ProofPix-Webhook/<plugin version>
//! x-proofpix-event: high_risk_files | batch_completed | batch_failed | integration_unhealthy
//! x-proofpix-timestamp: <milliseconds since the Unix epoch>
//! x-proofpix-delivery: <32 hex digits, the same on every retry of one notification>
//! x-proofpix-signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<body>">   (when signing_secret is set)
//! <extra headers from `headers`>
//!
//! <body: compact JSON, keys sorted>
//! ```
//!
//! A receiver verifies a request by computing HMAC-SHA256 with the signing secret over the bytes
//! `v1:`, the `x-proofpix-timestamp` value, `:`, and the raw body exactly as received, then
//! comparing its lowercase hex with the part after `v1=` in constant time. It should reject a
//! timestamp more than five minutes from its own clock (a replayed request), and may use
//! `x-proofpix-event` to route before parsing. Retries after a failure are new requests with a
//! new timestamp and signature but the same `x-proofpix-delivery` (the first 16 bytes of the
//! body's SHA-256, in hex), so a receiver that saw a request through but whose answer was lost
//! can drop the repeat: the delivery id names the notification's content, not the attempt. The
//! contract gives notifications no id of their own, so an identical notification sent again
//! later (the same integration failing the same way an hour on) carries the same id too: drop
//! repeats within a short window (the host retries within minutes), not forever.
//!
//! # Payload
//!
//! Every document has `event` and `integration_id` (the id of this webhook integration, so one
//! receiver can serve several). Risk levels are `none`, `low`, `medium`, `high`, `critical`.
//!
//! `high_risk_files`: files at or above the subscription's `min_risk`, one per request, or up
//! to 50 per request when the subscription asks for a digest.
//!
//! ```json
//! {"event": "high_risk_files", "integration_id": "zap",
//!  "files": [{
//!    "integration": "sf-cases",
//!    "file": {"id": "068…01", "name": "damage-photo.jpg", "version": "3",
//!             "container": "Case 00001042", "path": null, "web_url": null},
//!    "risk": "critical", "score": 94,
//!    "summary": "GPS 52.37,4.89 (±10 m); serial SN-4000****",
//!    "findings": [{"category": "gps", "code": "gps.coordinates", "severity": "critical",
//!                  "value": "52.37, 4.89"}],
//!    "findings_total": 1}],
//!  "files_total": 1, "files_by_risk": {"critical": 1},
//!  "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}}
//! ```
//!
//! `files_total` and `files_by_risk` count every file of the delivery window, also when
//! `files` holds fewer (a digest carries at most 50); `window` is when those files were
//! analysed, RFC 3339 (absent when the host sent none). `findings` lists at most
//! `max_findings` findings, worst first (equal severities in the host's order);
//! `findings_total` counts them all. `score` is 0 to 100. Finding values are masked by the host
//! unless the operator asked to show them. `container`, `path` and `web_url` may be `null`.
//!
//! `batch_completed`: a source integration's run finished.
//!
//! ```json
//! {"event": "batch_completed", "integration_id": "zap",
//!  "batch": {"id": "b-7", "integration": "sf-cases", "platform": "Salesforce",
//!            "started_at": "2026-11-26T10:00:00Z", "finished_at": "2026-11-26T10:01:00Z",
//!            "files_total": 12, "files_ok": 12, "files_failed": 0,
//!            "by_risk": {"critical": 1, "none": 11},
//!            "dashboard_url": "https://proofpix.example/batches/b-7"}}
//! ```
//!
//! `by_risk` has a key only for levels the run saw; `dashboard_url` is `null` unless the
//! subscription sets one.
//!
//! `batch_failed` (a run failed) and `integration_unhealthy` (a source cannot run: credentials,
//! configuration) name the source integration and say why:
//!
//! ```json
//! {"event": "batch_failed", "integration_id": "zap", "integration": "photos",
//!  "message": "Graph answered 403 accessDenied; grant Sites.Selected"}
//! ```
//!
//! # Threat model
//!
//! The URL is a credential: a Zapier or Power Automate hook URL (its path, or its `sig` query
//! parameter) lets anyone trigger the flow. It is a sealed secret field the plugin never reads:
//! requests go to `{secret.url}`, which the host substitutes, and the host hands back the
//! placeholder, never the URL, in responses and errors. The signing key is a second secret the
//! plugin never sees; the host computes the signature (`verify.hmac-sign`). The operator's grant
//! still bounds where a request may go, whatever the sealed URL says. The receiver's answers are
//! untrusted: errors quote at most 200 characters of a body ([`answer`] maps statuses to the
//! contract's errors). File names and summaries come from scanned files and are sent as JSON
//! strings, unescaped otherwise: a receiver that renders them must escape them.

use proofpix_sdk::prelude::*;
use proofpix_sdk::verify::HmacAlgorithm;

pub mod answer;
pub mod headers;
pub mod payload;

/// Where requests go; the host substitutes the secret.
const URL: &str = "{secret.url}";
/// The secret field holding the URL.
const URL_FIELD: &str = "url";
/// The secret field holding the signing key.
const SIGNING_FIELD: &str = "signing_secret";
/// Findings listed per file, by default.
const DEFAULT_MAX_FINDINGS: i64 = 5;
/// Most findings per file `max_findings` accepts; a finding is about 100 bytes of JSON.
const MAX_FINDINGS_LIMIT: i64 = 100;
/// How the webhook words a request the host refused (the typed egress refusal).
const HOST_REFUSAL: &str = "request refused by the host";

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "Outbound webhook",
            "Webhook",
        )
        .description(
            "Posts every notification as an HMAC-signed JSON document to one URL: a Zapier \
             Catch Hook, a Power Automate HTTP trigger, an n8n or Make webhook, or your own \
             endpoint. The payload and the x-proofpix-signature header are documented in the \
             plugin's docs.",
        )
        .capability(Capability::Notifier)
        .field(
            ConfigField::secret_url(
                URL_FIELD,
                "Webhook URL",
                "The full URL to POST to, e.g. Zapier's Catch Hook URL or the HTTP POST URL of \
                 Power Automate's \"When an HTTP request is received\" trigger. It is stored \
                 sealed: such URLs are credentials (anyone with one can trigger the flow), so \
                 ProofPix never shows it again and the plugin never reads it.",
            )
            .placeholder("https://hooks.zapier.com/hooks/catch/123456/abcdef/"),
        )
        .field(
            ConfigField::secret(
                SIGNING_FIELD,
                "Signing secret",
                "A random key (at least 32 characters) shared with the receiver. Each request \
                 then carries x-proofpix-signature: v1=<hex HMAC-SHA256 of \
                 \"v1:<x-proofpix-timestamp>:<body>\">, so the receiver can reject requests that \
                 did not come from ProofPix or were altered. Leave empty to send unsigned \
                 requests (Power Automate and Zapier do not check signatures; a Code step can).",
            )
            .optional(),
        )
        .field(
            ConfigField::url(
                "endpoint",
                "Webhook origin",
                "Only if the URL is not on hooks.zapier.com or a Power Automate host \
                 (*.logic.azure.com, *.environment.api.powerplatform.com): the URL's scheme and \
                 host, e.g. https://n8n.example.com, without a path. The operator must grant it \
                 too. https is strongly advised: the signature proves who sent a request, it \
                 does not hide what it says.",
            )
            .optional()
            .placeholder("https://n8n.example.com"),
        )
        .field(
            ConfigField::integer(
                "max_findings",
                "Findings per file",
                "How many findings each file lists, worst first; findings_total counts them all. \
                 0 sends only the risk, score and summary. From 0 to 100.",
            )
            .default("5"),
        )
        .field(
            ConfigField::list(
                "headers",
                "Extra headers",
                "Static headers some receivers route on, one `Name: value` per line (values \
                 cannot contain commas), e.g. `X-Team: privacy`. Not for credentials: this \
                 field is plain config, and authorization or cookie headers are refused. At \
                 most 20.",
            )
            .optional(),
        )
        .endpoint(Endpoint::new("zapier", "https://hooks.zapier.com").purpose("Zapier Catch Hooks"))
        .endpoint(
            Endpoint::new("power-automate", "https://*.logic.azure.com")
                .purpose("Power Automate HTTP request triggers"),
        )
        .endpoint(
            Endpoint::new(
                "power-platform",
                "https://*.environment.api.powerplatform.com",
            )
            .purpose("Power Automate triggers on Power Platform environment URLs"),
        )
        .endpoint(
            Endpoint::new("other", "{config.endpoint}")
                .purpose("the webhook origin set in `endpoint`"),
        )
        .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        if let Some(endpoint) = config::get("endpoint")
            && let Some(problem) = origin_problem(&endpoint)
        {
            return Err(PluginError::invalid_config(Some("endpoint"), problem));
        }
        max_findings()?;
        extra_headers()?;
        Ok(())
    }

    fn check() -> Result<CheckReport, PluginError> {
        // `hmac-sign` answers `None` for a secret field that is not set: the one way to learn
        // that a sealed field is there without seeing it. The signature itself is discarded.
        if verify::hmac_sign(URL_FIELD, HmacAlgorithm::Sha256, b"proofpix-check").is_none() {
            return Err(PluginError::invalid_config(
                Some(URL_FIELD),
                format!(
                    "no webhook URL is set; set it with `proofpix integration set-secret {} url`",
                    config::integration_id()
                ),
            ));
        }
        let signed = signing_enabled();
        let extra = extra_headers()?;
        let mut details = vec![
            format!(
                "a webhook URL is set (sealed); it may be on {}",
                config::get("endpoint").map_or_else(
                    || "hooks.zapier.com or a Power Automate host".to_string(),
                    |e| format!(
                        "{} or the Zapier and Power Automate hosts",
                        e.trim_end_matches('/')
                    )
                )
            ),
            if signed {
                "requests are signed: x-proofpix-signature, HMAC-SHA256".to_string()
            } else {
                "requests are NOT signed: set `signing_secret` so the receiver can verify them"
                    .to_string()
            },
        ];
        if !extra.is_empty() {
            let names: Vec<&str> = extra.iter().map(|(n, _)| n.as_str()).collect();
            details.push(format!("extra headers: {}", names.join(", ")));
        }
        details.push(
            "nothing was sent: a webhook cannot be tested without triggering its flow, so \
             whether the URL works, and its origin is granted, shows with the first \
             notification"
                .to_string(),
        );
        Ok(CheckReport {
            account: None,
            details,
        })
    }

    fn notify(event: Notification) -> Result<(), PluginError> {
        let integration_id = config::integration_id();
        let max = usize::try_from(max_findings()?).unwrap_or(0);
        let body = payload::body(&payload::document(&event, &integration_id, max));
        let bytes = body.len();
        let timestamp = verify::now_ms().to_string();
        let mut request = http::Request::post(URL)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("ProofPix-Webhook/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-proofpix-event", payload::event_name(&event))
            .header("x-proofpix-timestamp", &timestamp)
            .header("x-proofpix-delivery", &delivery_id(&body));
        let signature = verify::hmac_sign(
            SIGNING_FIELD,
            HmacAlgorithm::Sha256,
            &payload::signed_message(&timestamp, &body),
        );
        if let Some(signature) = &signature {
            request = request.header(
                "x-proofpix-signature",
                &format!("v1={}", verify::encode_hex(signature)),
            );
        }
        for (name, value) in extra_headers()? {
            request = request.header(&name, &value);
        }
        let response = request.body(body).send().map_err(refusal)?;
        answer::classify(
            response.status,
            &response.text(),
            response.header("retry-after"),
            verify::now_ms(),
            answer::Sent {
                integration_id: &integration_id,
                signed: signature.is_some(),
            },
        )?;
        let (status, bytes) = (response.status.to_string(), bytes.to_string());
        log::log(
            log::Level::Debug,
            "notification delivered",
            &[
                ("status", status.as_str()),
                ("bytes", bytes.as_str()),
                ("event", payload::event_name(&event)),
            ],
        );
        Ok(())
    }
}

/// The notification's delivery id: the first 16 bytes of the body's SHA-256, in hex. The body
/// holds no timestamp, so every retry of one notification carries the same id.
fn delivery_id(body: &[u8]) -> String {
    use sha2::Digest;
    verify::encode_hex(&sha2::Sha256::digest(body)[..16])
}

/// Whether requests get a signature: `signing_secret` is set.
fn signing_enabled() -> bool {
    verify::hmac_sign(SIGNING_FIELD, HmacAlgorithm::Sha256, b"proofpix-check").is_some()
}

fn max_findings() -> Result<i64, PluginError> {
    let max = config::integer("max_findings", DEFAULT_MAX_FINDINGS)?;
    proofpix_sdk::settings::in_range("max_findings", max, 0..=MAX_FINDINGS_LIMIT, None)
}

fn extra_headers() -> Result<Vec<(String, String)>, PluginError> {
    headers::parse(&config::list("headers"))
        .map_err(|e| PluginError::invalid_config(Some("headers"), format!("`headers`: {e}")))
}

/// A request the host refused (the sealed URL's origin is not declared or not granted) is a
/// configuration problem, not a bug: say which settings decide it.
fn refusal(e: PluginError) -> PluginError {
    let m = match &e {
        PluginError::EgressRefused(r) => format!("{HOST_REFUSAL}: {}", r.reason),
        _ => return e,
    };
    PluginError::invalid_config(
        Some("endpoint"),
        format!(
            "{m}; the webhook URL's origin must be hooks.zapier.com, a Power Automate host \
             or the one in `endpoint`, and the operator must grant it"
        ),
    )
}

/// Why `endpoint` is not an origin (`scheme://host[:port]`), if it is not.
fn origin_problem(endpoint: &str) -> Option<String> {
    let value = endpoint.trim();
    let Some((scheme, rest)) = value.split_once("://") else {
        return Some(format!(
            "{value:?} is not an origin; give scheme and host only, e.g. https://n8n.example.com"
        ));
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if !matches!(scheme, "https" | "http") {
        return Some(format!(
            "{value:?} must start with https:// (or http:// for a receiver on a private network)"
        ));
    }
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ', '{', '}']) {
        return Some(format!(
            "{value:?} is not an origin; give scheme and host only, without a path, e.g. \
             https://n8n.example.com (the full URL goes in the sealed `url`)"
        ));
    }
    None
}

export_connector!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_must_be_scheme_and_host_only() {
        for ok in [
            "https://n8n.example.com",
            "https://n8n.example.com/",
            "http://127.0.0.1:8080",
        ] {
            assert_eq!(origin_problem(ok), None, "{ok}");
        }
        for (bad, expected) in [
            ("n8n.example.com", "is not an origin"),
            ("ftp://n8n.example.com", "must start with https://"),
            ("https://n8n.example.com/webhook/abc", "without a path"),
            ("https://", "without a path"),
            ("https://user@n8n.example.com", "without a path"),
        ] {
            let problem = origin_problem(bad).unwrap_or_default();
            assert!(problem.contains(expected), "{bad}: {problem}");
        }
    }

    #[test]
    fn a_host_refusal_becomes_a_problem_with_endpoint() {
        let e = refusal(PluginError::egress_refused(
            "{secret.url}",
            "{secret.url} is not in the allowed hosts",
        ));
        assert!(
            matches!(&e, PluginError::InvalidConfig(p) if p.field.as_deref() == Some("endpoint")),
            "{e:?}"
        );
        assert!(matches!(
            refusal(PluginError::transient("cannot reach {secret.url}")),
            PluginError::Transient(_)
        ));
    }
}
