//! `/hooks/{integration}`: platform webhooks.
//!
//! The request is handed to the integration's plugin (its `events`
//! interface), which verifies it through host functions that hold the
//! signing secret, answers challenges (Slack `url_verification`, Graph
//! `validationToken`, Salesforce's SOAP Ack) and names the changed files. The
//! host queues just those files and runs a queue-only sync; an event that
//! cannot be narrowed to files triggers an incremental sync. Nothing here
//! needs an API token: the platform authenticates through the plugin's
//! verification, and an unverified request is refused with 401.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use proofpix_pipeline::SyncMode;
use proofpix_runtime::contract::{InboundRequest, PluginError};
use proofpix_service::ServiceError;
use std::sync::atomic::Ordering;

use crate::error::ApiError;
use crate::state::AppState;

/// Response headers a plugin may set on its answer to the platform.
const ALLOWED_RESPONSE_HEADERS: &[&str] = &["content-type", "cache-control"];

/// Handles `/hooks/{integration}` and `/hooks/{integration}/{*rest}`.
pub async fn hook(
    State(state): State<AppState>,
    method: Method,
    Path(params): Path<Vec<(String, String)>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut integration = String::new();
    let mut rest = String::new();
    for (k, v) in params {
        match k.as_str() {
            "integration" => integration = v,
            "rest" => rest = v,
            _ => {}
        }
    }
    let request = InboundRequest {
        method: method.to_string(),
        path: format!("/{rest}"),
        query: query.unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let (response, queued, resync) = match state.host().handle_webhook(&integration, request).await
    {
        Ok(r) => r,
        Err(ServiceError::Call(e))
            if matches!(e.plugin_error(), Some(PluginError::Unauthorized(_))) =>
        {
            state
                .counters()
                .webhooks_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(integration = %integration, "webhook refused: {e}");
            return Err(ApiError::unauthorized(
                "the request did not pass the platform's signature check",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    state.counters().webhooks.fetch_add(1, Ordering::Relaxed);
    if resync {
        state.trigger(&integration, SyncMode::Incremental, "webhook");
    } else if queued > 0 {
        state.trigger(&integration, SyncMode::QueueOnly, "webhook");
    }
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut out = (status, response.body).into_response();
    for (k, v) in response.headers {
        let lower = k.to_ascii_lowercase();
        if ALLOWED_RESPONSE_HEADERS.contains(&lower.as_str())
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(lower.as_bytes()),
                HeaderValue::from_str(&v),
            )
        {
            out.headers_mut().insert(name, value);
        }
    }
    Ok(out)
}
