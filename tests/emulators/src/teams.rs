//! Microsoft Teams incoming webhooks: Workflows (Power Automate) and the legacy Office 365
//! connector (reference §3, §11).
//!
//! | route | success | errors |
//! |---|---|---|
//! | `POST /workflows/{id}/triggers/manual/paths/invoke?api-version=…&sig=…` (logic.azure.com form) | 202, empty | 400 `MissingApiVersionParameter`, 401 bad `sig`, 404 unknown workflow, 429 + `Retry-After` when over [`TeamsConfig::workflow_limit`] |
//! | `POST /powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke?…` (powerplatform.com form) | same | same |
//! | `POST /webhookb2/{…}/IncomingWebhook/{…}` (legacy connector) | 200, body `1` | 400 `Summary or Text is required.`, 400 bad payload, 413 over ~28 KB, throttling **in the body** (`Microsoft Teams endpoint returned HTTP error 429`) with HTTP 200 |
//!
//! Every posted card is recorded ([`Teams::posted`]) with whether Teams could render it: a
//! Workflows webhook answers 202 *before* the flow runs (reference §3.2: a 202 does not
//! guarantee the card rendered), so a malformed card is accepted and only the record says it
//! would not show.
//!
//! Unverified facts (reference §10.3) are configuration or [`ErrorCatalog`](crate::ErrorCatalog)
//! keys: the Workflows success status ([`TeamsConfig::workflow_success_status`], 202 observed),
//! whether Workflows render a MessageCard ([`TeamsConfig::workflows_render_message_cards`], no by
//! default), the body for a bad `sig` ([`errors::BAD_SIG`]), the status that carries the legacy
//! throttling text ([`errors::LEGACY_THROTTLED`], 200 by default) and the payload cap.
//!
//! Throttling windows of the legacy connector (4 per second, 60 per 30 s, 100 per hour, 150 per
//! 2 h, 1,800 per day per webhook) are counted on the emulated clock, so a test that posts five
//! cards without moving the clock sees the fifth throttled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::common::{self, Emulator, ErrorReply, Fault, Harness, reply};

/// Situation keys for unverified replies.
pub mod errors {
    /// A Workflows request whose `sig` does not match. Default (unverified): 401
    /// `{"error":{"code":"DirectApiAuthorizationRequired",…}}`.
    pub const BAD_SIG: &str = "teams.bad_sig";
    /// A legacy connector over its throttling window. Default: HTTP 200 with the documented text
    /// in the body (reference §3.1: connectors "do not throw 429").
    pub const LEGACY_THROTTLED: &str = "teams.legacy_throttled";
    /// A Workflows trigger over [`super::TeamsConfig::workflow_limit`]. Default (unverified):
    /// 429, `Retry-After: 1`, `{"error":{"code":"WorkflowTriggeredTooFrequently"…}}`.
    pub const WORKFLOW_THROTTLED: &str = "teams.workflow_throttled";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// Workflow id.
    pub const WORKFLOW_ID: &str = "5c1e0d8b2a7f4e3c9b6a1d0e8f7c6b5a";
    /// The workflow's valid `sig`.
    pub const WORKFLOW_SIG: &str = "Yq3kP0s9Xb2LrT7uWm4nZc1Vd8Hf6Ja5Ge0Ri9Ko3Nl";
    /// The legacy connector's webhook path.
    pub const LEGACY_PATH: &str = "/webhookb2/0a1b2c3d-4e5f-6789-abcd-ef0123456789@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/8e7d6c5b4a39281706f5e4d3c2b1a0f9/3f2e1d0c-b9a8-4765-8432-10fedcba9876";
}

/// The legacy connector's documented throttling text (reference §3.1).
pub const LEGACY_THROTTLE_TEXT: &str = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-production-weu-azsc2-4-55,cv=E8hXxbZ1Uk6Vp0w5oJ3r7A.0..";

/// How the emulated webhooks behave.
#[derive(Clone, Debug)]
pub struct TeamsConfig {
    /// Workflow id in the trigger URL.
    pub workflow_id: String,
    /// The `sig` the trigger accepts.
    pub workflow_sig: String,
    /// Status of an accepted trigger. Default 202 (reference §10.3: canonical code unverified).
    pub workflow_success_status: u16,
    /// Whether a Workflows flow renders a MessageCard body. Default false (unverified).
    pub workflows_render_message_cards: bool,
    /// Triggers accepted per emulated minute before 429; `None` for no limit.
    pub workflow_limit: Option<u32>,
    /// The legacy webhook's path.
    pub legacy_path: String,
    /// Legacy throttling windows: (posts, window). Default: the documented ones.
    pub legacy_windows: Vec<(u32, time::Duration)>,
    /// Largest body accepted, bytes; larger is 413. Default 28,000 (reference §3.1, hedged).
    pub max_payload_bytes: usize,
}

impl Default for TeamsConfig {
    fn default() -> Self {
        TeamsConfig {
            workflow_id: fixtures::WORKFLOW_ID.to_owned(),
            workflow_sig: fixtures::WORKFLOW_SIG.to_owned(),
            workflow_success_status: 202,
            workflows_render_message_cards: false,
            workflow_limit: None,
            legacy_path: fixtures::LEGACY_PATH.to_owned(),
            legacy_windows: vec![
                (4, time::Duration::seconds(1)),
                (60, time::Duration::seconds(30)),
                (100, time::Duration::hours(1)),
                (150, time::Duration::hours(2)),
                (1800, time::Duration::hours(24)),
            ],
            max_payload_bytes: 28_000,
        }
    }
}

/// Which webhook a card reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Workflows (logic.azure.com URL form).
    Workflow,
    /// Workflows (powerplatform.com URL form).
    PowerPlatform,
    /// Legacy Office 365 connector.
    Legacy,
}

/// What a card looked like to Teams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardKind {
    /// `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",…}]}`.
    AdaptiveEnvelope,
    /// `{"@type":"MessageCard",…}`.
    MessageCard,
    /// Anything else.
    Unknown,
}

/// A card a webhook accepted.
#[derive(Clone, Debug)]
pub struct PostedCard {
    /// Which webhook.
    pub hook: Hook,
    /// The body as received.
    pub body: Value,
    /// Its shape.
    pub kind: CardKind,
    /// Whether Teams would show it in the channel.
    pub rendered: bool,
    /// Emulated time of arrival.
    pub at: OffsetDateTime,
}

impl PostedCard {
    /// The Adaptive Card inside an envelope.
    pub fn adaptive_card(&self) -> Option<&Value> {
        self.body.pointer("/attachments/0/content")
    }

    /// Every text in the card (titles, facts, text blocks), joined by newlines.
    pub fn all_text(&self) -> String {
        let mut out = Vec::new();
        collect(&self.body, &mut out);
        out.join("\n")
    }
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|i| collect(i, out)),
        Value::Object(o) => o.values().for_each(|i| collect(i, out)),
        _ => {}
    }
}

#[derive(Debug, Default)]
struct Data {
    posted: Vec<PostedCard>,
    legacy_hits: Vec<OffsetDateTime>,
    workflow_hits: Vec<OffsetDateTime>,
}

#[derive(Clone)]
struct TeamsState {
    harness: Harness,
    config: Arc<TeamsConfig>,
    data: Arc<Mutex<Data>>,
}

/// A running Teams webhook emulator.
#[derive(Debug)]
pub struct Teams {
    /// The server.
    pub emulator: Emulator,
    config: Arc<TeamsConfig>,
    data: Arc<Mutex<Data>>,
}

impl std::ops::Deref for Teams {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl Teams {
    /// The Workflows trigger URL in its logic.azure.com form, `sig` included.
    pub fn workflow_url(&self) -> Url {
        let mut u = self.url(&format!(
            "/workflows/{}/triggers/manual/paths/invoke",
            self.config.workflow_id
        ));
        u.query_pairs_mut()
            .append_pair("api-version", "2016-06-01")
            .append_pair("sp", "/triggers/manual/run")
            .append_pair("sv", "1.0")
            .append_pair("sig", &self.config.workflow_sig);
        u
    }

    /// The Workflows trigger URL in its powerplatform.com form.
    pub fn power_platform_url(&self) -> Url {
        let mut u = self.url(&format!(
            "/powerautomate/automations/direct/workflows/{}/triggers/manual/paths/invoke",
            self.config.workflow_id
        ));
        u.query_pairs_mut()
            .append_pair("api-version", "1")
            .append_pair("sp", "/triggers/manual/run")
            .append_pair("sv", "1.0")
            .append_pair("sig", &self.config.workflow_sig);
        u
    }

    /// The legacy connector's webhook URL.
    pub fn legacy_url(&self) -> Url {
        self.url(&self.config.legacy_path)
    }

    /// The path faults are keyed on for the Workflows trigger.
    pub fn workflow_path(&self) -> String {
        format!(
            "/workflows/{}/triggers/manual/paths/invoke",
            self.config.workflow_id
        )
    }

    /// Cards accepted so far, oldest first.
    pub fn posted(&self) -> Vec<PostedCard> {
        self.data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .posted
            .clone()
    }
}

/// The legacy connector's throttling answer as a fault (HTTP 200, the 429 in the body).
pub fn legacy_throttled() -> Fault {
    Fault::Respond(ErrorReply::text(200, LEGACY_THROTTLE_TEXT))
}

/// A Workflows 429 as a fault.
pub fn workflow_throttled(retry_after_secs: u64) -> Fault {
    Fault::Respond(workflow_throttled_reply(retry_after_secs))
}

fn workflow_throttled_reply(retry_after_secs: u64) -> ErrorReply {
    ErrorReply::json(
        429,
        json!({"error": {"code": "WorkflowTriggeredTooFrequently",
            "message": "The workflow was triggered too frequently. Retry after the interval in the Retry-After header."}}),
    )
    .with_header("retry-after", &retry_after_secs.to_string())
}

/// Starts a Teams webhook emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: TeamsConfig, harness: Harness) -> std::io::Result<Teams> {
    let config = Arc::new(config);
    let data: Arc<Mutex<Data>> = Arc::default();
    let state = TeamsState {
        harness: harness.clone(),
        config: config.clone(),
        data: data.clone(),
    };
    let emulator = common::launch("teams", harness, move |_base, _harness, _tokens| {
        Router::new()
            .route(
                "/workflows/{id}/triggers/manual/paths/invoke",
                post(workflow),
            )
            .route(
                "/powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke",
                post(power_platform),
            )
            .route("/webhookb2/{*rest}", post(legacy))
            .with_state(state)
    })
    .await?;
    Ok(Teams {
        emulator,
        config,
        data,
    })
}

fn classify(body: &Value) -> CardKind {
    if body.get("@type").and_then(Value::as_str) == Some("MessageCard") {
        return CardKind::MessageCard;
    }
    let adaptive = body.get("type").and_then(Value::as_str) == Some("message")
        && body
            .get("attachments")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .is_some_and(|a| {
                a.get("contentType").and_then(Value::as_str)
                    == Some("application/vnd.microsoft.card.adaptive")
                    && a.pointer("/content/type").and_then(Value::as_str) == Some("AdaptiveCard")
            });
    if adaptive {
        CardKind::AdaptiveEnvelope
    } else {
        CardKind::Unknown
    }
}

async fn workflow(
    State(s): State<TeamsState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    trigger(s, Hook::Workflow, &id, q.as_deref(), &body)
}

async fn power_platform(
    State(s): State<TeamsState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    trigger(s, Hook::PowerPlatform, &id, q.as_deref(), &body)
}

fn ms_error(status: u16, code: &str, message: &str) -> ErrorReply {
    ErrorReply::json(status, json!({"error": {"code": code, "message": message}}))
}

fn trigger(s: TeamsState, hook: Hook, id: &str, query: Option<&str>, body: &[u8]) -> Response {
    let q: BTreeMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if !q.contains_key("api-version") {
        return ms_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .into_response();
    }
    if id != s.config.workflow_id {
        return ms_error(
            404,
            "WorkflowNotFound",
            &format!("The workflow '{id}' could not be found."),
        )
        .into_response();
    }
    if q.get("sig") != Some(&s.config.workflow_sig) {
        return reply(
            &s.harness,
            Some(errors::BAD_SIG),
            ms_error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated only by Shared Access scheme.",
            ),
        );
    }
    let now = s.harness.clock.now();
    let mut d = s.data.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(limit) = s.config.workflow_limit {
        let since = now - time::Duration::minutes(1);
        d.workflow_hits.retain(|t| *t > since);
        if d.workflow_hits.len() >= limit as usize {
            return reply(
                &s.harness,
                Some(errors::WORKFLOW_THROTTLED),
                workflow_throttled_reply(1),
            );
        }
        d.workflow_hits.push(now);
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ms_error(
            400,
            "InvalidRequestContent",
            "The request content is not valid and could not be deserialized.",
        )
        .into_response();
    };
    let kind = classify(&value);
    let rendered = match kind {
        CardKind::AdaptiveEnvelope => true,
        CardKind::MessageCard => s.config.workflows_render_message_cards,
        CardKind::Unknown => false,
    };
    d.posted.push(PostedCard {
        hook,
        body: value,
        kind,
        rendered,
        at: now,
    });
    ErrorReply::empty(s.config.workflow_success_status).into_response()
}

async fn legacy(State(s): State<TeamsState>, Path(rest): Path<String>, body: Bytes) -> Response {
    if format!("/webhookb2/{rest}") != s.config.legacy_path {
        // A deleted or mistyped connector (unverified text).
        return ErrorReply::text(404, "Connector configuration not found").into_response();
    }
    if body.len() > s.config.max_payload_bytes {
        return ErrorReply::text(413, "Message size too large").into_response();
    }
    let now = s.harness.clock.now();
    let mut d = s.data.lock().unwrap_or_else(PoisonError::into_inner);
    let longest = s
        .config
        .legacy_windows
        .iter()
        .map(|(_, w)| *w)
        .max()
        .unwrap_or_default();
    d.legacy_hits.retain(|t| *t > now - longest);
    let throttled = s.config.legacy_windows.iter().any(|(limit, window)| {
        d.legacy_hits.iter().filter(|t| **t > now - *window).count() >= *limit as usize
    });
    if throttled {
        return reply(
            &s.harness,
            Some(errors::LEGACY_THROTTLED),
            ErrorReply::text(200, LEGACY_THROTTLE_TEXT),
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(body.as_ref()) else {
        return ErrorReply::text(400, "Bad payload received by generic incoming webhook.")
            .into_response();
    };
    let kind = classify(&value);
    match kind {
        CardKind::MessageCard => {
            let has = |k: &str| {
                value
                    .get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.trim().is_empty())
            };
            if !has("summary") && !has("text") {
                return ErrorReply::text(400, "Summary or Text is required.").into_response();
            }
        }
        CardKind::AdaptiveEnvelope => {}
        CardKind::Unknown => {
            return ErrorReply::text(400, "Bad payload received by generic incoming webhook.")
                .into_response();
        }
    }
    d.legacy_hits.push(now);
    d.posted.push(PostedCard {
        hook: Hook::Legacy,
        body: value,
        kind,
        rendered: true,
        at: now,
    });
    ErrorReply::text(200, "1").into_response()
}
