//! The pre-authenticated download host (reference §2.3): what `/content` redirects to.
//!
//! It needs no `Authorization`: the `tempauth` query parameter is the credential, valid for
//! [`GraphConfig::download_url_ttl`](super::GraphConfig::download_url_ttl) on the emulated clock.
//! A bearer token that arrives here anyway is recorded (in the shared log and the traffic record)
//! so a test can prove the client did not forward it. `Range` is honoured for one range
//! (`bytes=a-b`, `bytes=a-`, `bytes=-n`): 206 with `Content-Range`, or 416 past the end.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Graph, errors};
use crate::common::ErrorReply;

/// Path of the download route.
pub(crate) const DOWNLOAD_PATH: &str = "/_layouts/15/download.aspx";

pub(crate) fn routes(graph: Graph) -> Router {
    Router::new()
        .route(DOWNLOAD_PATH, get(download))
        .with_state(graph)
}

fn denied(g: &Graph, message: &str) -> Response {
    let default = ErrorReply::json(
        401,
        json!({"error": {"code": "-2147024891, System.UnauthorizedAccessException", "message": {"lang": "en-US", "value": message}}}),
    );
    g.0.harness
        .errors
        .reply(errors::DOWNLOAD_EXPIRED, default)
        .into_response()
}

async fn download(
    State(g): State<Graph>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let ticket = q
        .get("tempauth")
        .and_then(|t| g.0.tickets.lock().ok().and_then(|m| m.get(t).cloned()));
    let Some(ticket) = ticket else {
        return denied(
            &g,
            "Access denied. You do not have permission to perform this action or access this resource.",
        );
    };
    if g.now() >= ticket.expires_at {
        return denied(
            &g,
            "The download link has expired; request the file's content again.",
        );
    }
    let total = ticket.content.len() as u64;
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .filter(|_| g.0.config.honour_range)
        .and_then(|r| parse_range(r, total));
    let base = |status: u16| {
        ErrorReply::empty(status)
            .with_header("accept-ranges", "bytes")
            .with_header("content-type", &ticket.mime)
    };
    match range {
        None => {
            let mut r = base(200).into_response();
            *r.body_mut() = axum::body::Body::from(ticket.content.to_vec());
            set_len(&mut r, total);
            r
        }
        Some(Err(())) => base(416)
            .with_header("content-range", &format!("bytes */{total}"))
            .into_response(),
        Some(Ok((start, end))) => {
            let slice = ticket
                .content
                .get(start as usize..=end as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mut r = base(206)
                .with_header("content-range", &format!("bytes {start}-{end}/{total}"))
                .into_response();
            set_len(&mut r, slice.len() as u64);
            *r.body_mut() = axum::body::Body::from(slice);
            r
        }
    }
}

fn set_len(r: &mut Response, len: u64) {
    if let Ok(v) = axum::http::HeaderValue::from_str(&len.to_string()) {
        r.headers_mut()
            .insert(axum::http::header::CONTENT_LENGTH, v);
    }
}

/// One byte range of a `Range` header against a body of `total` bytes: `Ok((first, last))`
/// inclusive, `Err(())` when unsatisfiable, `None` when the header is not a single byte range
/// (then the whole body is sent, as servers may).
fn parse_range(header: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || total == 0 {
            return Some(Err(()));
        }
        (total.saturating_sub(n), total - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        if start >= total {
            return Some(Err(()));
        }
        let end = if b.is_empty() {
            total - 1
        } else {
            b.parse::<u64>().ok()?.min(total - 1)
        };
        if end < start {
            return None;
        }
        (start, end)
    };
    Some(Ok(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_all_three_forms() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-200", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
