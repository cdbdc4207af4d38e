//! Fault injection and the traffic record of the Box files emulator.
//!
//! Faults are keyed by route class ([`Route`]) because Box paths carry ids: "the next two
//! events pages answer 429" is one rule. They come on top of the shared
//! [`Faults`](crate::Faults) (exact path). The rules, [`Chaos`] and the `retry-after`
//! follow-ups are the shared [`common::faults`](crate::common::faults) book; what a [`BoxFault`]
//! answers is Box's.
//!
//! Every request either server receives becomes an [`Exchange`] with its *real* arrival time:
//! Retry-After is a promise in real seconds, and the emulated clock is frozen in tests.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::common::ErrorReply;
use crate::common::faults::{self, recorded};

/// The route class a request hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /oauth2/token`.
    Token,
    /// `GET /2.0/users/me`.
    Me,
    /// `GET /2.0/folders/{id}`.
    Folder,
    /// `GET /2.0/folders/{id}/items`.
    Items,
    /// `GET /2.0/files/{id}`.
    File,
    /// `GET /2.0/files/{id}/content` (the 302).
    Content,
    /// `GET|OPTIONS /2.0/events`.
    Events,
    /// `GET|POST|PUT|DELETE /2.0/files/{id}/metadata/{scope}/{template}`.
    Metadata,
    /// `GET /2.0/metadata_templates/{scope}/{template}/schema`.
    Templates,
    /// The pre-authenticated download host (`dl.boxcloud.com`).
    Download,
    /// Anything else.
    Other,
}

/// Which server an exchange reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `api.box.com` (and the token endpoint).
    Api,
    /// The download host.
    Download,
}

/// A fault to inject.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BoxFault {
    /// 429 `rate_limit_exceeded` with `retry-after` (seconds), reference §6.5.
    Throttle {
        /// `retry-after`, seconds.
        retry_after_secs: u64,
    },
    /// 503 `unavailable` with `retry-after`.
    Unavailable {
        /// `retry-after`, seconds.
        retry_after_secs: u64,
    },
    /// 401 with an empty body and `WWW-Authenticate: Bearer ... error="invalid_token"`.
    ExpiredToken,
    /// A 5xx with Box's error body and no `retry-after`.
    ServerError(u16),
    /// Content only: 202 Accepted with `retry-after` (the file is not ready yet, §6.3).
    NotReady {
        /// `retry-after`, seconds.
        retry_after_secs: u64,
    },
    /// Waits this long (real time), then answers normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with the real body cut in half.
    Truncated,
    /// Any reply.
    Reply(ErrorReply),
}

impl BoxFault {
    /// A short label for the traffic record.
    pub fn label(&self) -> String {
        match self {
            BoxFault::Throttle { retry_after_secs } => {
                format!("429 retry-after {retry_after_secs}")
            }
            BoxFault::Unavailable { retry_after_secs } => {
                format!("503 retry-after {retry_after_secs}")
            }
            BoxFault::ExpiredToken => "expired token".into(),
            BoxFault::ServerError(s) => format!("server error {s}"),
            BoxFault::NotReady { retry_after_secs } => {
                format!("202 retry-after {retry_after_secs}")
            }
            BoxFault::Slow(d) => format!("slow {} ms", d.as_millis()),
            BoxFault::Malformed => "malformed json".into(),
            BoxFault::Truncated => "truncated json".into(),
            BoxFault::Reply(r) => format!("reply {}", r.status),
        }
    }
}

/// Random faults on a share of requests.
pub type Chaos = faults::Chaos<Route, BoxFault>;

impl faults::Chaos<Route, BoxFault> {
    /// `percent`% of every API route and the download host (not the token endpoint), answered
    /// 429 or 503 with `retry-after: retry_after_secs`, or 500 or 502, each key at most once.
    pub fn throttling_and_errors(percent: u8, retry_after_secs: u64, seed: u64) -> Self {
        Chaos {
            percent,
            seed,
            routes: vec![
                Route::Me,
                Route::Folder,
                Route::Items,
                Route::File,
                Route::Content,
                Route::Events,
                Route::Metadata,
                Route::Templates,
                Route::Download,
            ],
            faults: vec![
                BoxFault::Throttle { retry_after_secs },
                BoxFault::Unavailable { retry_after_secs },
                BoxFault::ServerError(500),
                BoxFault::ServerError(502),
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
    /// Which server.
    pub server: Server,
    /// Route class.
    pub route: Route,
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// What identifies "the same request" for retries: the file for content and downloads,
    /// else method, path and query.
    pub key: String,
    /// Status answered.
    pub status: u16,
    /// `retry-after` answered, seconds.
    pub retry_after_secs: Option<u64>,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// The `Authorization` header received.
    pub authorization: Option<String>,
    /// The `Range` header received.
    pub range: Option<String>,
}

recorded!(Exchange);

/// A `retry-after` the emulator sent, and when the same request came back.
pub type RetryFollowUp = faults::RetryFollowUp<Exchange>;

/// Rules, chaos state, the clock plan and the request counter.
pub(crate) type FaultBook = faults::FaultBook<Route, BoxFault>;

/// Pairs every `retry-after` sent on 202/429/503 with the next exchange of the same key.
pub(crate) fn follow_ups(exchanges: &[Exchange]) -> Vec<RetryFollowUp> {
    faults::follow_ups(exchanges, &[202, 429, 503])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_faults_about_the_asked_share_and_each_key_once() {
        let mut book = FaultBook::default();
        book.set_chaos(Some(Chaos::throttling_and_errors(25, 1, 42)));
        let hit: Vec<u64> = (0..4000u64)
            .filter(|n| {
                book.take(*n, Route::Items, &format!("k{n}"), false)
                    .is_some()
            })
            .collect();
        assert!((800..1200).contains(&hit.len()), "{} of 4000", hit.len());
        let again = hit
            .iter()
            .filter(|n| {
                book.take(**n, Route::Items, &format!("k{n}"), false)
                    .is_some()
            })
            .count();
        assert_eq!(again, 0);
        assert!(book.take(1, Route::Token, "t", false).is_none());
    }
}
