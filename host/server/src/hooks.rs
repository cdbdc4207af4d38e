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
//!
//! This route is the one place where something a plugin wrote is served on
//! the dashboard's origin, to anyone, so both directions are narrowed:
//!
//! - **To the plugin** go the method, path, query, body and the request
//!   headers *except* credentials and proxy metadata: `Cookie`,
//!   `Authorization`, `Proxy-Authorization`, `Forwarded`, `X-Forwarded-*`,
//!   `X-Real-IP`, the dashboard's CSRF header and hop-by-hop headers never
//!   reach it. An admin who opens a hook link gives the plugin nothing.
//! - **From the plugin** come a status (200-599; anything else is a 502), a
//!   body, and a content type from a fixed set (`application/json`,
//!   `text/plain`, `application/xml`, `text/xml`, with a `charset` kept only
//!   when it is UTF-8 or ASCII); anything else is served as `text/plain`. The
//!   host adds `X-Content-Type-Options: nosniff`,
//!   `Content-Security-Policy: sandbox; default-src 'none'`,
//!   `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so an
//!   answer shaped like a web page is shown as text in a sandbox with no
//!   script and no access to the dashboard's cookies or API.
//! - **To anonymous callers** an unknown integration, a disabled one, one
//!   whose plugin does not take webhooks, and a failure while handling the
//!   request all get the same answer (503, one generic problem document), so
//!   the route neither lists integrations nor returns error text. The
//!   details go to the host log.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proofpix_model::{InboundRequest, PluginError};
use proofpix_pipeline::SyncMode;
use proofpix_runtime::contract::Capability;
use proofpix_service::ServiceError;
use std::sync::atomic::Ordering;

use crate::auth::CSRF_HEADER;
use crate::error::ApiError;
use crate::state::AppState;

/// Content types a plugin may answer with (the media type, lowercase).
const ALLOWED_CONTENT_TYPES: &[&str] = &[
    "application/json",
    "text/plain",
    "application/xml",
    "text/xml",
];
/// Charsets kept on an allowed content type.
const ALLOWED_CHARSETS: &[&str] = &["utf-8", "us-ascii"];
/// What an answer without an allowed content type is served as.
const FALLBACK_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The policy on every hook answer: no script, no plugins, no frames, an
/// opaque origin.
pub(crate) const HOOK_CSP: &str = "sandbox; default-src 'none'";

/// Request headers never handed to a plugin: credentials, proxy metadata
/// (which would tell the plugin about the deployment), the dashboard's CSRF
/// header and hop-by-hop headers. `X-Forwarded-*` is matched by prefix.
const WITHHELD_REQUEST_HEADERS: &[&str] = &[
    "cookie",
    "authorization",
    "proxy-authorization",
    "forwarded",
    "x-real-ip",
    CSRF_HEADER,
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The one answer for every webhook that cannot be taken, whatever the
/// reason: the reason is in the host log only.
fn unavailable(integration: &str, reason: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(integration = %integration, "webhook not taken: {reason}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "this webhook cannot take requests now",
    )
}

/// The request headers a plugin may see (see [`WITHHELD_REQUEST_HEADERS`];
/// headers the `Connection` header names are hop-by-hop too).
pub(crate) fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            !WITHHELD_REQUEST_HEADERS.contains(&k)
                && !k.starts_with("x-forwarded-")
                && !named_by_connection.iter().any(|n| n == k)
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The content type a plugin's answer is served with: its own when the
/// media type is in [`ALLOWED_CONTENT_TYPES`] (keeping only a UTF-8 or
/// ASCII charset), else [`FALLBACK_CONTENT_TYPE`].
pub(crate) fn safe_content_type(plugin_value: Option<&str>) -> String {
    let Some(value) = plugin_value else {
        return FALLBACK_CONTENT_TYPE.into();
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !ALLOWED_CONTENT_TYPES.contains(&essence.as_str()) {
        return FALLBACK_CONTENT_TYPE.into();
    }
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let v = v.trim().trim_matches('"').to_ascii_lowercase();
        ALLOWED_CHARSETS.contains(&v.as_str()).then_some(v)
    });
    match charset {
        Some(c) => format!("{essence}; charset={c}"),
        None => essence,
    }
}

/// The status a plugin's answer is served with: its own from 200 to 599;
/// anything else (a 1xx would switch protocols or hang the client, and
/// numbers past 599 are not HTTP) is a 502.
pub(crate) fn safe_status(plugin_status: u16) -> StatusCode {
    match plugin_status {
        200..=599 => StatusCode::from_u16(plugin_status).unwrap_or(StatusCode::BAD_GATEWAY),
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Sets the headers every hook answer carries, errors included.
pub(crate) fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HOOK_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Handles `/hooks/{integration}` and `/hooks/{integration}/{*rest}`.
pub async fn hook(
    State(state): State<AppState>,
    method: Method,
    Path(params): Path<Vec<(String, String)>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut resp = match handle(state, method, params, query, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    harden(&mut resp);
    resp
}

async fn handle(
    state: AppState,
    method: Method,
    params: Vec<(String, String)>,
    query: Option<String>,
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
    // Which integrations exist, and their state, is not the caller's business.
    let record = match state.host().integration(&integration) {
        Ok(r) => r,
        Err(e) => return Err(unavailable(&integration, &e)),
    };
    if !record.enabled {
        return Err(unavailable(&integration, &"the integration is disabled"));
    }
    match state.host().plugin(&record.plugin_id) {
        Some(p) if p.info().capabilities.contains(&Capability::Events) => {}
        Some(_) => {
            return Err(unavailable(
                &integration,
                &format!("plugin {} does not take webhooks", record.plugin_id),
            ));
        }
        None => {
            return Err(unavailable(
                &integration,
                &format!("plugin {} is not loaded", record.plugin_id),
            ));
        }
    }
    let request = InboundRequest {
        method: method.to_string(),
        path: format!("/{rest}"),
        query: query.unwrap_or_default(),
        headers: forwarded_headers(&headers),
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
        Err(e) => return Err(unavailable(&integration, &e)),
    };
    state.counters().webhooks.fetch_add(1, Ordering::Relaxed);
    if resync {
        state.trigger(&integration, SyncMode::Incremental, "webhook");
    } else if queued > 0 {
        state.trigger(&integration, SyncMode::QueueOnly, "webhook");
    }
    let status = safe_status(response.status);
    if status.as_u16() != response.status {
        tracing::warn!(
            integration = %integration,
            status = response.status,
            "the plugin answered a webhook with a status outside 200-599; sent 502"
        );
    }
    let content_type = response
        .headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    let content_type = safe_content_type(content_type);
    let mut out = (status, response.body).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or_else(|_| HeaderValue::from_static(FALLBACK_CONTENT_TYPE)),
    );
    // Nothing else from the plugin becomes a response header.
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    #[test]
    fn only_the_fixed_content_types_pass() {
        for (given, served) in [
            (Some("application/json"), "application/json"),
            (
                Some("Application/JSON; charset=UTF-8"),
                "application/json; charset=utf-8",
            ),
            (
                Some("text/xml; charset=\"utf-8\""),
                "text/xml; charset=utf-8",
            ),
            (Some("text/plain; charset=utf-7"), "text/plain"),
            (Some("text/plain; boundary=x"), "text/plain"),
            (Some("text/html"), FALLBACK_CONTENT_TYPE),
            (Some("text/html; charset=utf-8"), FALLBACK_CONTENT_TYPE),
            (Some("image/svg+xml"), FALLBACK_CONTENT_TYPE),
            (Some("application/xhtml+xml"), FALLBACK_CONTENT_TYPE),
            (Some("text/plain, text/html"), FALLBACK_CONTENT_TYPE),
            (Some(""), FALLBACK_CONTENT_TYPE),
            (None, FALLBACK_CONTENT_TYPE),
        ] {
            assert_eq!(safe_content_type(given), served, "{given:?}");
        }
    }

    #[test]
    fn statuses_outside_200_to_599_become_502() {
        for (given, served) in [
            (200, 200),
            (204, 204),
            (302, 302),
            (401, 401),
            (599, 599),
            (0, 502),
            (101, 502),
            (199, 502),
            (600, 502),
            (u16::MAX, 502),
        ] {
            assert_eq!(safe_status(given).as_u16(), served, "{given}");
        }
    }

    #[test]
    fn credentials_proxy_and_hop_by_hop_headers_are_withheld() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("cookie", "proofpix_session=pps_x"),
            ("authorization", "Bearer ppx_x"),
            ("proxy-authorization", "Basic x"),
            ("forwarded", "for=10.0.0.1"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-host", "internal"),
            ("x-real-ip", "10.0.0.1"),
            ("x-proofpix-request", "1"),
            ("connection", "close, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("x-slack-signature", "v0=abc"),
            ("content-type", "application/json"),
            ("user-agent", "Slackbot"),
        ] {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let names: Vec<String> = forwarded_headers(&h).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["x-slack-signature", "content-type", "user-agent"],
            "only the platform's own headers reach the plugin"
        );
    }
}
