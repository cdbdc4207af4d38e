//! Fault injection and the traffic record of the Box files emulator.
//!
//! Faults are keyed by route class ([`Route`]) because Box paths carry ids: "the next two
//! events pages answer 429" is one rule. They come on top of the shared
//! [`Faults`](crate::Faults) (exact path). [`Chaos`] faults a seeded share of requests, each
//! request key at most once, so a client that retries always gets through and a test under
//! chaos ends.
//!
//! Every request either server receives becomes an [`Exchange`] with its *real* arrival time:
//! Retry-After is a promise in real seconds, and the emulated clock is frozen in tests.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::common::ErrorReply;

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
#[derive(Clone, Debug)]
pub struct Chaos {
    /// Share of requests faulted, in percent.
    pub percent: u8,
    /// Seed of the pseudo-random choice.
    pub seed: u64,
    /// Route classes it applies to.
    pub routes: Vec<Route>,
    /// Faults to pick from.
    pub faults: Vec<BoxFault>,
    /// Never fault the same request (same [`Exchange::key`]) twice.
    pub once_per_key: bool,
}

impl Chaos {
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

/// A `retry-after` the emulator sent, and when the same request came back.
#[derive(Clone, Debug)]
pub struct RetryFollowUp {
    /// The throttled exchange.
    pub throttled: Exchange,
    /// The next exchange with the same key, if any.
    pub next: Option<Exchange>,
}

impl RetryFollowUp {
    /// How long the client waited, when it came back.
    pub fn waited(&self) -> Option<Duration> {
        self.next
            .as_ref()
            .map(|n| n.at.saturating_duration_since(self.throttled.at))
    }

    /// Whether the client came back no earlier than `retry-after` said (or never came back).
    pub fn respected(&self) -> bool {
        let wanted = Duration::from_secs(self.throttled.retry_after_secs.unwrap_or(0));
        self.waited().is_none_or(|w| w >= wanted)
    }
}

#[derive(Debug)]
struct Rule {
    route: Route,
    /// Matching requests still let through before the fault applies.
    skip: u32,
    fault: BoxFault,
    remaining: Option<u32>,
}

/// Rules, chaos state, the clock plan and the request counter.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    rules: Vec<Rule>,
    chaos: Option<Chaos>,
    chaos_keys: HashSet<String>,
    pub(crate) counter: u64,
    /// (at this exchange number, advance the emulated clock by).
    pub(crate) clock_plan: Vec<(u64, time::Duration)>,
}

impl FaultBook {
    pub(crate) fn add(&mut self, route: Route, fault: BoxFault, remaining: Option<u32>) {
        self.add_after(route, 0, fault, remaining);
    }

    pub(crate) fn add_after(
        &mut self,
        route: Route,
        skip: u32,
        fault: BoxFault,
        remaining: Option<u32>,
    ) {
        self.rules.push(Rule {
            route,
            skip,
            fault,
            remaining,
        });
    }

    pub(crate) fn set_chaos(&mut self, chaos: Option<Chaos>) {
        self.chaos = chaos;
        self.chaos_keys.clear();
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
        self.chaos = None;
        self.chaos_keys.clear();
        self.clock_plan.clear();
    }

    /// The fault for request number `n`, if any: explicit rules first, then chaos.
    pub(crate) fn take(&mut self, n: u64, route: Route, key: &str) -> Option<BoxFault> {
        if let Some(rule) = self
            .rules
            .iter_mut()
            .find(|r| r.route == route && r.remaining != Some(0))
        {
            if rule.skip > 0 {
                rule.skip -= 1;
                return None;
            }
            if let Some(left) = rule.remaining.as_mut() {
                *left -= 1;
            }
            return Some(rule.fault.clone());
        }
        let chaos = self.chaos.as_ref()?;
        if !chaos.routes.contains(&route) || chaos.faults.is_empty() {
            return None;
        }
        if chaos.once_per_key && self.chaos_keys.contains(key) {
            return None;
        }
        let roll = mix(chaos.seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
        if roll % 100 >= u64::from(chaos.percent) {
            return None;
        }
        let pick = ((roll / 100) % chaos.faults.len() as u64) as usize;
        let fault = chaos.faults.get(pick)?.clone();
        if chaos.once_per_key {
            self.chaos_keys.insert(key.to_owned());
        }
        Some(fault)
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pairs every `retry-after` sent on 429/503 with the next exchange of the same key.
pub(crate) fn follow_ups(exchanges: &[Exchange]) -> Vec<RetryFollowUp> {
    let mut out = Vec::new();
    for (i, e) in exchanges.iter().enumerate() {
        if e.retry_after_secs.is_none() || !matches!(e.status, 202 | 429 | 503) {
            continue;
        }
        let next = exchanges
            .iter()
            .skip(i + 1)
            .filter(|x| x.at >= e.at)
            .find(|x| x.key == e.key)
            .cloned();
        out.push(RetryFollowUp {
            throttled: e.clone(),
            next,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_faults_about_the_asked_share_and_each_key_once() {
        let mut book = FaultBook::default();
        book.set_chaos(Some(Chaos::throttling_and_errors(25, 1, 42)));
        let hit: Vec<u64> = (0..4000u64)
            .filter(|n| book.take(*n, Route::Items, &format!("k{n}")).is_some())
            .collect();
        assert!((800..1200).contains(&hit.len()), "{} of 4000", hit.len());
        let again = hit
            .iter()
            .filter(|n| book.take(**n, Route::Items, &format!("k{n}")).is_some())
            .count();
        assert_eq!(again, 0);
        assert!(book.take(1, Route::Token, "t").is_none());
    }
}
