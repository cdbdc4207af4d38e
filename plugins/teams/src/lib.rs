//! The Microsoft Teams connector: notifications through an incoming webhook (reference §3).
//!
//! Two kinds of webhook exist, selected by the `format` field:
//!
//! | `format` | webhook | payload | success |
//! |---|---|---|---|
//! | `workflows` (default) | Workflows / Power Automate "When a Teams webhook request is received" (`*.logic.azure.com`, `*.environment.api.powerplatform.com`) | `{"type":"message","attachments":[Adaptive Card]}` | 202 (200 accepted too) |
//! | `connector` | legacy Office 365 connector (`*.webhook.office.com`, `outlook.office.com`), being retired | MessageCard | 200 with body `1` |
//!
//! Throttling: Workflows answer 429 with `Retry-After`; the legacy connector does not throw 429
//! but reports `Microsoft Teams endpoint returned HTTP error 429` inside the body, sometimes with
//! HTTP 200 (reference §3.1). Both become `rate-limited`, so the host waits and retries.
//!
//! Threat model: the webhook URL is itself a credential (its `sig` parameter, or the connector
//! path, lets anyone post into the channel). It is a secret config field the plugin never sees:
//! requests go to `{secret.webhook_url}`, which the host substitutes, and the host reports the
//! placeholder, never the URL, in responses and errors. Error messages here quote statuses and
//! Microsoft's error codes, never the URL. File names, paths and summaries come from scanned
//! files and are escaped before they go into card markdown ([`cards::escape`]).

use proofpix_sdk::prelude::*;

pub mod cards;

/// Where requests go; the host substitutes the secret.
const WEBHOOK: &str = "{secret.webhook_url}";
/// Findings shown per file in an alert, by default.
const DEFAULT_MAX_FINDINGS: i64 = 5;
/// The legacy connector's in-body throttling text (reference §3.1).
const THROTTLED_TEXT: &str = "HTTP error 429";
/// Longest excerpt of an error body quoted.
const MAX_EXCERPT_CHARS: usize = 200;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "teams",
            env!("CARGO_PKG_VERSION"),
            "Microsoft Teams",
            "Microsoft Teams",
        )
        .description(
            "Posts alerts about high-risk images and scan summaries to a Microsoft Teams channel \
             through a Workflows webhook (or a legacy Office 365 connector).",
        )
        .capability(Capability::Notifier)
        .field(
            ConfigField::secret_url(
                "webhook_url",
                "Webhook URL",
                "The URL Teams gives you. Workflows: in the channel, … → Workflows → \"Post to a \
                 channel when a webhook request is received\", then copy the HTTP POST URL. Legacy \
                 connector: … → Connectors → Incoming Webhook. Treat it like a password: anyone \
                 with it can post to the channel.",
            )
            .placeholder("https://prod-00.westeurope.logic.azure.com:443/workflows/…"),
        )
        .field(
            ConfigField::choice(
                "format",
                "Webhook type",
                "workflows (the default) sends an Adaptive Card to a Workflows (Power Automate) \
                 webhook; connector sends a MessageCard to a legacy Office 365 connector webhook \
                 (…webhook.office.com/webhookb2/…), which Microsoft is retiring.",
                &["workflows", "connector"],
            )
            .default("workflows"),
        )
        .field(
            ConfigField::integer(
                "max_findings",
                "Findings per alert",
                "How many findings an alert lists for one file, worst first (the rest are \
                 counted). 0 shows only the summary.",
            )
            .default("5"),
        )
        .field(
            ConfigField::url(
                "webhook_host",
                "Other webhook host",
                "Only if your webhook URL is on a host not listed by the plugin (a sovereign \
                 cloud, a proxy, a local emulator): its origin, e.g. https://teams-proxy.example. \
                 The operator must also grant it.",
            )
            .optional(),
        )
        .endpoint(
            Endpoint::new("workflows", "https://*.logic.azure.com")
                .purpose("Workflows (Power Automate) webhooks"),
        )
        .endpoint(
            Endpoint::new(
                "power-platform",
                "https://*.environment.api.powerplatform.com",
            )
            .purpose("Workflows webhooks on Power Platform environment URLs"),
        )
        .endpoint(
            Endpoint::new("connector", "https://*.webhook.office.com")
                .purpose("legacy Office 365 connector webhooks"),
        )
        .endpoint(
            Endpoint::new("connector-outlook", "https://outlook.office.com")
                .purpose("older Office 365 connector webhook URLs"),
        )
        .endpoint(
            Endpoint::new("other", "{config.webhook_host}")
                .purpose("the webhook host set in `webhook_host`"),
        )
        .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        let max = config::integer("max_findings", DEFAULT_MAX_FINDINGS)?;
        proofpix_sdk::settings::in_range::<u8>("max_findings", max, 0..=30, None).map(|_| ())
    }

    fn check() -> Result<CheckReport, PluginError> {
        Ok(CheckReport {
            account: None,
            details: vec![format!(
                "{} webhook configured; Teams offers no way to test a webhook without posting, so \
                 the first notification is the proof",
                if legacy() {
                    "legacy connector"
                } else {
                    "Workflows"
                }
            )],
        })
    }

    fn notify(event: Notification) -> Result<(), PluginError> {
        let max = usize::try_from(config::integer("max_findings", DEFAULT_MAX_FINDINGS)?)
            .unwrap_or(0)
            .min(30);
        let card = cards::Card::render(&event, max);
        let payload = if legacy() {
            card.message_card()
        } else {
            card.adaptive_envelope()
        };
        match post(&payload) {
            Err(Refused::TooLarge) => {
                log::warn("Teams refused the card as too large; sending a compact one");
                let compact = cards::Card::render(&event, 0).compact();
                let payload = if legacy() {
                    compact.message_card()
                } else {
                    compact.adaptive_envelope()
                };
                post(&payload).map_err(Refused::into_error)
            }
            other => other.map_err(Refused::into_error),
        }
    }
}

fn legacy() -> bool {
    config::get("format").as_deref() == Some("connector")
}

/// Why a post did not go through.
enum Refused {
    /// HTTP 413: the card is too large (reference §3.1: about 28 KB).
    TooLarge,
    Error(PluginError),
}

impl Refused {
    fn into_error(self) -> PluginError {
        match self {
            Refused::TooLarge => PluginError::fatal(
                "Teams refused even the compact card as too large (HTTP 413); please report this",
            ),
            Refused::Error(e) => e,
        }
    }
}

fn post(payload: &serde_json::Value) -> Result<(), Refused> {
    let response = http::Request::post(WEBHOOK)
        .json(payload)
        .send()
        .map_err(Refused::Error)?;
    classify(response.status, &response.text(), response.retry_after_ms())
}

/// What a webhook's answer means (reference §3.1, §3.2).
fn classify(status: u16, body: &str, retry_after_ms: Option<u64>) -> Result<(), Refused> {
    let kind = if legacy() { "connector" } else { "workflow" };
    let excerpt: String = body.trim().chars().take(MAX_EXCERPT_CHARS).collect();
    // Throttling hidden in the body comes first: the legacy connector reports it with HTTP 200.
    if status == 429 || body.contains(THROTTLED_TEXT) {
        return Err(Refused::Error(PluginError::rate_limited(
            retry_after_ms,
            format!(
                "Teams is throttling this webhook (HTTP {status}{}); ProofPix waits and retries \
                 (a connector accepts about 4 posts a second and 100 an hour)",
                if status == 429 {
                    ""
                } else {
                    ", 429 reported in the body"
                }
            ),
        )));
    }
    let code = error_code(body);
    let err = |e: PluginError| Err(Refused::Error(e));
    match status {
        200..=299 => {
            // The legacy connector answers `1`; anything else with a 2xx is an error text.
            // Workflows answer 202 with an empty body (or the flow's own response).
            if legacy() && !matches!(body.trim(), "" | "1") {
                return err(PluginError::fatal(format!(
                    "the Teams connector answered HTTP {status} without accepting the card: \
                     {excerpt}; the card may not have been posted"
                )));
            }
            Ok(())
        }
        413 => Err(Refused::TooLarge),
        400 if code.as_deref() == Some("MissingApiVersionParameter") => {
            err(PluginError::invalid_config(
                Some("webhook_url"),
                "the webhook URL lacks its api-version parameter (MissingApiVersionParameter); \
                 copy the whole HTTP POST URL from the workflow's trigger again",
            ))
        }
        400 if body.contains("Summary or Text is required") => err(PluginError::fatal(
            "the Teams connector refused the card (Summary or Text is required); this is a bug \
             in the ProofPix Teams plugin, please report it",
        )),
        400 => err(PluginError::fatal(format!(
            "Teams refused the card (HTTP 400{}): {excerpt}; if `format` does not match the \
             webhook (a Workflows URL needs `workflows`, a webhook.office.com URL `connector`), \
             fix `format`",
            code.as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ))),
        401 | 403 => err(PluginError::invalid_config(
            Some("webhook_url"),
            format!(
                "Teams refused the webhook's signature (HTTP {status}{}); the {kind} URL is \
                 incomplete or was regenerated: copy it again from Teams and set it with \
                 `proofpix integration set-secret {} webhook_url`",
                code.as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default(),
                config::integration_id()
            ),
        )),
        404 | 410 => err(PluginError::invalid_config(
            Some("webhook_url"),
            format!(
                "the Teams {kind} behind this webhook no longer exists (HTTP {status}); it was \
                 deleted or turned off: create a new one and set `webhook_url`"
            ),
        )),
        503 if retry_after_ms.is_some() => err(PluginError::rate_limited(
            retry_after_ms,
            format!("Teams is unavailable (HTTP 503): {excerpt}; retrying"),
        )),
        408 | 500..=599 => err(PluginError::transient(format!(
            "Teams failed (HTTP {status}): {excerpt}; retrying"
        ))),
        _ => err(PluginError::fatal(format!(
            "Teams answered HTTP {status}: {excerpt}"
        ))),
    }
}

/// `error.code` of a Microsoft JSON error body.
fn error_code(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.pointer("/error/code")
        .and_then(serde_json::Value::as_str)
        .map(String::from)
}

export_connector!(Plugin);
