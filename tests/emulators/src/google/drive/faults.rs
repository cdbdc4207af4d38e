//! Fault injection and the traffic record of the Drive emulator.
//!
//! Faults are keyed by *route class* ([`Route`]) because Drive paths carry file ids: "the next
//! two `files.list` pages answer 429" is one rule. They come on top of the shared
//! [`Faults`](crate::Faults) (exact path), which still work on every route.
//!
//! Drive signals quota exhaustion two ways (reference §5.5): 403 with reason
//! `userRateLimitExceeded` or `rateLimitExceeded`, and 429 "Too many requests"; neither promises
//! a `Retry-After`. [`DriveFault::Throttle`] sends either, with or without one.
//!
//! The rules, [`Chaos`] and the `Retry-After` follow-ups are the shared
//! [`common::faults`](crate::common::faults) book; what a [`DriveFault`] answers is Google's.
//! Every exchange is recorded with the *real* time it arrived: Retry-After is a promise in real
//! seconds, while the emulated clock is frozen.

use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;

use crate::common::faults::{self, recorded};
use crate::common::{ErrorReply, Harness};

/// The route class a request hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /token`.
    Token,
    /// `GET /drive/v3/about`.
    About,
    /// `GET /drive/v3/files` (`files.list`).
    List,
    /// `GET /drive/v3/files/{id}` without `alt=media`.
    Get,
    /// `GET /drive/v3/files/{id}?alt=media`.
    Media,
    /// `PATCH /drive/v3/files/{id}`.
    Patch,
    /// `GET /drive/v3/changes/startPageToken`.
    StartPageToken,
    /// `GET /drive/v3/changes`.
    Changes,
    /// `GET /drive/v3/drives/{id}` and `GET /drive/v3/drives` (`drives.list`).
    Drives,
    /// `GET` of a file's bytes on the content host (`*.googleusercontent.com`) that `alt=media`
    /// redirected to with `307`.
    Content,
    /// Anything else.
    Other,
}

/// A fault to inject.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DriveFault {
    /// 429 `rateLimitExceeded`, or 403 `userRateLimitExceeded`, with `Retry-After` (seconds)
    /// when given.
    Throttle {
        /// 429 or 403.
        status: u16,
        /// `Retry-After`, seconds.
        retry_after_secs: Option<u64>,
    },
    /// 401 `authError`, "Request had invalid authentication credentials…".
    ExpiredToken,
    /// 500 `backendError`, 502 (an HTML page, as Google's front end sends), 503 without
    /// `Retry-After`.
    ServerError(u16),
    /// Waits this long (real time), then answers normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with the real body cut in half.
    Truncated,
    /// 400 `invalid` on `pageToken`: the token is not (any more) accepted.
    InvalidPageToken,
    /// Any reply.
    Reply(ErrorReply),
}

impl DriveFault {
    /// A short label for the traffic record.
    pub fn label(&self) -> String {
        match self {
            DriveFault::Throttle {
                status,
                retry_after_secs,
            } => format!("throttle {status} retry-after {retry_after_secs:?}"),
            DriveFault::ExpiredToken => "expired token".into(),
            DriveFault::ServerError(s) => format!("server error {s}"),
            DriveFault::Slow(d) => format!("slow {} ms", d.as_millis()),
            DriveFault::Malformed => "malformed json".into(),
            DriveFault::Truncated => "truncated json".into(),
            DriveFault::InvalidPageToken => "invalid page token".into(),
            DriveFault::Reply(r) => format!("reply {}", r.status),
        }
    }
}

/// Random faults on a share of requests.
pub type Chaos = faults::Chaos<Route, DriveFault>;

impl faults::Chaos<Route, DriveFault> {
    /// `percent`% of every Drive route (not the token endpoint), answered 429 or 403
    /// `userRateLimitExceeded` with `Retry-After: retry_after_secs`, or 500 or 503, each
    /// request key at most once.
    pub fn throttling_and_errors(percent: u8, retry_after_secs: u64, seed: u64) -> Self {
        Chaos {
            percent,
            seed,
            routes: vec![
                Route::About,
                Route::List,
                Route::Get,
                Route::Media,
                Route::Patch,
                Route::StartPageToken,
                Route::Changes,
                Route::Drives,
            ],
            faults: vec![
                DriveFault::Throttle {
                    status: 429,
                    retry_after_secs: Some(retry_after_secs),
                },
                DriveFault::Throttle {
                    status: 403,
                    retry_after_secs: Some(retry_after_secs),
                },
                DriveFault::ServerError(500),
                DriveFault::ServerError(503),
            ],
            once_per_key: true,
        }
    }
}

/// One request as the emulator received and answered it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Arrival number.
    pub n: u64,
    /// Real arrival time.
    pub at: Instant,
    /// Emulated arrival time.
    pub emulated: OffsetDateTime,
    /// Route class.
    pub route: Route,
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// What identifies "the same request" for retries: method and path for `alt=media` (the
    /// Range differs between the head and tail reads), method, path, query and body otherwise.
    pub key: String,
    /// Status answered.
    pub status: u16,
    /// `Retry-After` answered, seconds.
    pub retry_after_secs: Option<u64>,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// The `Authorization` header received.
    pub authorization: Option<String>,
    /// The `Range` header received.
    pub range: Option<String>,
    /// Body bytes sent back (`Content-Length`).
    pub bytes: u64,
}

recorded!(Exchange);

/// A `Retry-After` the emulator sent, and when the same request came back.
pub type RetryFollowUp = faults::RetryFollowUp<Exchange>;

/// Rules, chaos state, the clock plan and the request counter.
pub(crate) type FaultBook = faults::FaultBook<Route, DriveFault>;

/// Pairs every `Retry-After` sent on 403/429/503 with the next exchange of the same key.
pub(crate) fn follow_ups(exchanges: &[Exchange]) -> Vec<RetryFollowUp> {
    faults::follow_ups(exchanges, &[403, 429, 503])
}

pub(crate) fn classify(method: &str, path: &str, query: &str) -> Route {
    let media = query.split('&').any(|p| p == "alt=media");
    match (method, path) {
        ("POST", "/token") => Route::Token,
        ("GET", "/drive/v3/about") => Route::About,
        ("GET", "/drive/v3/files") => Route::List,
        ("GET", "/drive/v3/changes") => Route::Changes,
        ("GET", "/drive/v3/changes/startPageToken") => Route::StartPageToken,
        (m, p)
            if p.starts_with("/drive/v3/files/")
                && !p["/drive/v3/files/".len()..].contains('/') =>
        {
            match m {
                "GET" if media => Route::Media,
                "GET" => Route::Get,
                "PATCH" => Route::Patch,
                _ => Route::Other,
            }
        }
        ("GET", p) if p == "/drive/v3/drives" || p.starts_with("/drive/v3/drives/") => {
            Route::Drives
        }
        ("GET", p) if p.starts_with(super::CONTENT_PATH) => Route::Content,
        _ => Route::Other,
    }
}

pub(crate) fn retry_key(
    route: Route,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> String {
    match route {
        Route::Media | Route::Content => format!("{method} {path} media"),
        _ => format!(
            "{method} {path}?{query} #{}",
            hex::encode(&sha2::Sha256::digest(body)[..8])
        ),
    }
}

use sha2::Digest as _;

/// Google's JSON error body (reference §5.5).
pub(crate) fn google_error(
    code: u16,
    reason: &str,
    domain: &str,
    message: &str,
    status: &str,
) -> ErrorReply {
    ErrorReply::json(
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status}}),
    )
}

/// The 401 every Google API answers to a bad or expired token (reference §5.1).
pub(crate) fn auth_error() -> ErrorReply {
    ErrorReply::json(
        401,
        json!({"error": {"code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}),
    )
    .with_header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"")
}

/// 400 `invalid` on the `pageToken` parameter.
pub(crate) fn invalid_page_token(harness: &Harness) -> ErrorReply {
    harness.errors.reply(
        super::errors::INVALID_PAGE_TOKEN,
        ErrorReply::json(
            400,
            json!({"error": {"code": 400, "message": "Invalid Value",
                "errors": [{"message": "Invalid Value", "domain": "global", "reason": "invalid",
                    "location": "pageToken", "locationType": "parameter"}],
                "status": "INVALID_ARGUMENT"}}),
        ),
    )
}

/// The reply a fault stands for (not `Slow` or `Truncated`, which the middleware handles).
pub(crate) fn reply(harness: &Harness, fault: &DriveFault) -> ErrorReply {
    let with_retry = |r: ErrorReply, secs: Option<u64>| match secs {
        Some(s) => r.with_header("retry-after", &s.to_string()),
        None => r,
    };
    match fault {
        DriveFault::Throttle {
            status: 403,
            retry_after_secs,
        } => with_retry(
            harness.errors.reply(
                super::errors::USER_RATE_LIMIT,
                google_error(
                    403,
                    "userRateLimitExceeded",
                    "usageLimits",
                    "User rate limit exceeded.",
                    "PERMISSION_DENIED",
                ),
            ),
            *retry_after_secs,
        ),
        DriveFault::Throttle {
            status,
            retry_after_secs,
        } => with_retry(
            google_error(
                *status,
                "rateLimitExceeded",
                "usageLimits",
                "Too many requests",
                "RESOURCE_EXHAUSTED",
            ),
            *retry_after_secs,
        ),
        DriveFault::ExpiredToken => auth_error(),
        DriveFault::ServerError(502) => ErrorReply::text(
            502,
            "<!DOCTYPE html><html lang=en><title>Error 502 (Server Error)!!1</title><p><b>502.</b> <ins>That’s an error.</ins><p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.  <ins>That’s all we know.</ins>",
        ),
        DriveFault::ServerError(503) => google_error(
            503,
            "backendError",
            "global",
            "The service is currently unavailable.",
            "UNAVAILABLE",
        ),
        DriveFault::ServerError(s) => {
            google_error(*s, "backendError", "global", "Backend Error", "INTERNAL")
        }
        DriveFault::Malformed => ErrorReply::text(
            200,
            "<html><body>Service temporarily unavailable</body></html>",
        )
        .with_header("content-type", "text/html; charset=UTF-8"),
        DriveFault::InvalidPageToken => invalid_page_token(harness),
        DriveFault::Reply(r) => r.clone(),
        DriveFault::Slow(_) | DriveFault::Truncated => ErrorReply::empty(500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_requests_share_a_key_whatever_their_range() {
        let route = classify(
            "GET",
            "/drive/v3/files/1abc",
            "alt=media&supportsAllDrives=true",
        );
        assert_eq!(route, Route::Media);
        assert_eq!(
            retry_key(route, "GET", "/drive/v3/files/1abc", "alt=media", b""),
            retry_key(route, "GET", "/drive/v3/files/1abc", "alt=media&x=1", b"")
        );
        assert_eq!(classify("PATCH", "/drive/v3/files/1abc", ""), Route::Patch);
        assert_eq!(
            classify("GET", "/drive/v3/changes/startPageToken", ""),
            Route::StartPageToken
        );
    }

    #[test]
    fn a_continuation_rule_skips_first_pages() {
        let mut book = FaultBook::default();
        book.add(Route::List, DriveFault::InvalidPageToken, Some(1), true);
        assert!(book.take(1, Route::List, "first", false).is_none());
        assert!(book.take(2, Route::List, "next", true).is_some());
        assert!(book.take(3, Route::List, "next2", true).is_none());
    }
}
