//! Fault injection and the traffic record of the Graph emulator.
//!
//! Faults here are keyed by *route class* ([`Route`]) rather than exact path, because Graph paths
//! carry item ids: "the next two delta pages answer 429" is one rule. They come on top of the
//! shared [`Faults`](crate::Faults) (exact path), which still work on every route.
//!
//! The rules, [`Chaos`] and the `Retry-After` follow-ups are the shared
//! [`common::faults`](crate::common::faults) book; what a [`GraphFault`] answers is Graph's.
//!
//! Every request either server receives, and every `$batch` sub-request, becomes an
//! [`Exchange`] with the *real* time it arrived and what was answered (status, `Retry-After`,
//! bytes). The shared request log uses the emulated clock, which a test freezes; Retry-After is
//! a promise in real seconds, so checking that a client honoured it needs real time.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::common::ErrorReply;
use crate::common::faults::{self, recorded};

/// The route class a request hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /sites/...` (site by path or id).
    Sites,
    /// `GET /sites/{id}/drives`, `GET /drives/{id}`, `GET /drives/{id}/list`.
    Drives,
    /// `GET /sites/{id}/lists/{id}/columns`.
    Columns,
    /// `GET .../children`.
    Children,
    /// `GET /drives/{id}/root/delta` and its next and delta links.
    Delta,
    /// `GET /drives/{id}/items/{id}`.
    Item,
    /// `GET /drives/{id}/items/{id}/content` (the 302).
    Content,
    /// `PUT /drives/{id}/items/{id}/content` (a simple upload replacing the file's bytes).
    Upload,
    /// `GET|PATCH .../fields`.
    Fields,
    /// `POST /$batch` as a whole.
    Batch,
    /// One sub-request inside a `$batch`.
    BatchItem,
    /// The pre-authenticated download host.
    Download,
    /// Anything else (`/v1.0/organization`, unknown paths).
    Other,
}

/// Which server an exchange reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `graph.microsoft.com` and `login.microsoftonline.com` (one emulator).
    Graph,
    /// The pre-authenticated download host (`{tenant}.sharepoint.com` in production).
    Download,
    /// A sub-request inside a `$batch` (not a connection of its own).
    BatchItem,
}

/// A fault to inject.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum GraphFault {
    /// 429 or 503 with `Retry-After` (seconds) and Graph's throttling body (reference §2.5).
    Throttle {
        /// 429 or 503.
        status: u16,
        /// `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// 401 `InvalidAuthenticationToken`, "Access token has expired or is not yet valid."
    ExpiredToken,
    /// A 5xx without `Retry-After` (500, 502, 504; 503 here has no Retry-After).
    ServerError(u16),
    /// Waits this long (real time), then answers normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with the real body cut in half.
    Truncated,
    /// Delta only: 410 Gone `resyncRequired`, with a `Location` that restarts enumeration.
    ResyncRequired,
    /// Any reply.
    Reply(ErrorReply),
}

impl GraphFault {
    /// A short label for the traffic record.
    pub fn label(&self) -> String {
        match self {
            GraphFault::Throttle {
                status,
                retry_after_secs,
            } => format!("throttle {status} retry-after {retry_after_secs}"),
            GraphFault::ExpiredToken => "expired token".into(),
            GraphFault::ServerError(s) => format!("server error {s}"),
            GraphFault::Slow(d) => format!("slow {} ms", d.as_millis()),
            GraphFault::Malformed => "malformed json".into(),
            GraphFault::Truncated => "truncated json".into(),
            GraphFault::ResyncRequired => "410 resync".into(),
            GraphFault::Reply(r) => format!("reply {}", r.status),
        }
    }
}

/// Random faults on a share of requests (`BatchItem` faults `$batch` sub-requests one by one).
pub type Chaos = faults::Chaos<Route, GraphFault>;

impl faults::Chaos<Route, GraphFault> {
    /// `percent`% of every Graph route, the download host and `$batch` sub-requests (not the
    /// token endpoint), answered 429 or 503 with `Retry-After: retry_after_secs`, or 500 or 502,
    /// each request key at most once.
    pub fn throttling_and_errors(percent: u8, retry_after_secs: u64, seed: u64) -> Self {
        Chaos {
            percent,
            seed,
            routes: vec![
                Route::Sites,
                Route::Drives,
                Route::Columns,
                Route::Children,
                Route::Delta,
                Route::Item,
                Route::Content,
                Route::Fields,
                Route::Batch,
                Route::BatchItem,
                Route::Download,
            ],
            faults: vec![
                GraphFault::Throttle {
                    status: 429,
                    retry_after_secs,
                },
                GraphFault::Throttle {
                    status: 503,
                    retry_after_secs,
                },
                GraphFault::ServerError(500),
                GraphFault::ServerError(502),
            ],
            once_per_key: true,
        }
    }
}

/// One request as the emulator received and answered it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Arrival number (sub-requests of a `$batch` get their own).
    pub n: u64,
    /// Real arrival time.
    pub at: Instant,
    /// Emulated arrival time.
    pub emulated: OffsetDateTime,
    /// Which server.
    pub server: Server,
    /// Route class.
    pub route: Route,
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// Path (for sub-requests: the relative URL without query).
    pub path: String,
    /// Query string.
    pub query: String,
    /// What identifies "the same request" for retries: the item for `/content` and the download
    /// host, the method and URL of a `$batch` sub-request, the body digest of a `$batch`, else
    /// method, path and query.
    pub key: String,
    /// Status answered.
    pub status: u16,
    /// `Retry-After` answered, seconds.
    pub retry_after_secs: Option<u64>,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// The `Authorization` header received (sub-requests: the outer request's).
    pub authorization: Option<String>,
    /// The `Range` header received.
    pub range: Option<String>,
    /// Body bytes sent back.
    pub bytes: u64,
    /// For a sub-request: the `$batch` exchange's number.
    pub batch: Option<u64>,
}

recorded!(Exchange);

/// A `Retry-After` the emulator sent, and when the same request came back.
pub type RetryFollowUp = faults::RetryFollowUp<Exchange>;

/// Rules, chaos state, the clock plan and the request counter.
pub(crate) type FaultBook = faults::FaultBook<Route, GraphFault>;

/// Pairs every `Retry-After` sent on 429/503 with the next exchange of the same key.
pub(crate) fn follow_ups(exchanges: &[Exchange]) -> Vec<RetryFollowUp> {
    faults::follow_ups(exchanges, &[429, 503])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_rule_applies_that_many_times_before_chaos() {
        let mut book = FaultBook::default();
        book.add(Route::Delta, GraphFault::ServerError(500), Some(1), false);
        assert!(book.take(1, Route::Delta, "k", false).is_some());
        assert!(book.take(2, Route::Delta, "k", false).is_none());
    }

    #[test]
    fn a_continuation_rule_skips_first_pages() {
        let mut book = FaultBook::default();
        book.add(Route::Delta, GraphFault::ResyncRequired, Some(1), true);
        assert!(book.take(1, Route::Delta, "first", false).is_none());
        assert!(book.take(2, Route::Delta, "next", true).is_some());
    }

    #[test]
    fn chaos_faults_about_the_asked_share_and_each_key_once() {
        let mut book = FaultBook::default();
        book.set_chaos(Some(Chaos::throttling_and_errors(25, 1, 42)));
        let hit: Vec<u64> = (0..4000u64)
            .filter(|n| {
                book.take(*n, Route::Item, &format!("k{n}"), false)
                    .is_some()
            })
            .collect();
        assert!((800..1200).contains(&hit.len()), "{} of 4000", hit.len());
        let again = hit
            .iter()
            .filter(|n| {
                book.take(**n, Route::Item, &format!("k{n}"), false)
                    .is_some()
            })
            .count();
        assert_eq!(again, 0, "a faulted key passes the next time");
        assert!(book.take(1, Route::Token, "t", false).is_none());
    }
}
