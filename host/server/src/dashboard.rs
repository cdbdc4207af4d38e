//! The dashboard: static files served by the daemon (no build step).
//!
//! The page is plain HTML, CSS and one script, all ours and embedded in the
//! binary. Every value shown comes from the API and is rendered as text
//! (`textContent`), never as HTML: file names and metadata are written by
//! whoever made the file. The Content-Security-Policy allows only our own
//! script and style.
//!
//! Assets are sent with `Cache-Control: no-cache` and a strong `ETag` (the
//! SHA-256 of the content, so a new build changes it): a browser revalidates
//! on every load and gets `304 Not Modified` with no body while its copy is
//! current. `/favicon.ico` answers with an inline SVG (no 404 on every load).

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::state::AppState;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1f5fbf\"/><path d=\"M4 3h5a3 3 0 0 1 0 6H6v4H4z\" fill=\"#fff\"/></svg>";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The quoted strong ETag of an asset.
fn etag(body: &'static str) -> String {
    format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(body.as_bytes()))[..32]
    )
}

fn asset(
    headers: &HeaderMap,
    content_type: &'static str,
    body: &'static str,
    tag: &'static OnceLock<String>,
) -> Response {
    let tag = tag.get_or_init(|| etag(body));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
    let common = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            common,
            [(header::ETAG, tag.as_str())],
        )
            .into_response();
    }
    (
        common,
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, tag.as_str()),
        ],
        body,
    )
        .into_response()
}

static INDEX_TAG: OnceLock<String> = OnceLock::new();
static SCRIPT_TAG: OnceLock<String> = OnceLock::new();
static STYLE_TAG: OnceLock<String> = OnceLock::new();
static ICON_TAG: OnceLock<String> = OnceLock::new();

/// `/`, `/assets/app.js`, `/assets/app.css`, `/favicon.ico`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move {
                asset(&h, "text/html; charset=utf-8", INDEX, &INDEX_TAG)
            }),
        )
        .route(
            "/assets/app.js",
            get(|h: HeaderMap| async move {
                asset(&h, "text/javascript; charset=utf-8", SCRIPT, &SCRIPT_TAG)
            }),
        )
        .route(
            "/assets/app.css",
            get(|h: HeaderMap| async move { asset(&h, "text/css; charset=utf-8", STYLE, &STYLE_TAG) }),
        )
        .route(
            "/favicon.ico",
            get(|h: HeaderMap| async move { asset(&h, "image/svg+xml", ICON, &ICON_TAG) }),
        )
}
