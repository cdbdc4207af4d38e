//! The fault book the file-platform emulators (Graph, Drive, Box, Dropbox) share: rules keyed by
//! *route class* rather than exact path (vendor paths carry ids, so "the next two list pages
//! answer 429" is one rule), seeded [`Chaos`], the clock plan, the request counter, the traffic
//! record's cap, and the pairing of every `Retry-After` sent with the client's next try
//! ([`RetryFollowUp`]).
//!
//! It is generic over the platform's route class `R` and fault `F`: what a fault *answers* (the
//! vendor's error body and headers) stays with each platform, which turns the `F` that
//! [`FaultBook::take`] hands back into its own reply.
//!
//! [`Chaos`] faults a share of requests at random (seeded), but never the same request twice
//! when `once_per_key` is set: a client that retries after a fault always gets through on the
//! next try of that request, so a test under chaos terminates and every file can still be
//! processed exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Random faults on a share of requests.
#[derive(Clone, Debug)]
pub struct Chaos<R, F> {
    /// Share of requests faulted, in percent.
    pub percent: u8,
    /// Seed of the pseudo-random choice.
    pub seed: u64,
    /// Route classes it applies to.
    pub routes: Vec<R>,
    /// Faults to pick from.
    pub faults: Vec<F>,
    /// Never fault the same request (same retry key) twice.
    pub once_per_key: bool,
}

#[derive(Debug)]
struct Rule<R, F> {
    route: R,
    fault: F,
    remaining: Option<u32>,
    /// Apply to continuation pages only (a next link or page token), not to first pages.
    continuation_only: bool,
    /// Matching requests still let through before the rule applies.
    skip: u32,
}

/// Rules, chaos state, the clock plan and the request counter.
#[derive(Debug)]
pub(crate) struct FaultBook<R, F> {
    rules: Vec<Rule<R, F>>,
    chaos: Option<Chaos<R, F>>,
    chaos_keys: HashSet<String>,
    pub(crate) counter: u64,
    /// (at this request number, advance the emulated clock by).
    pub(crate) clock_plan: Vec<(u64, time::Duration)>,
}

impl<R, F> Default for FaultBook<R, F> {
    fn default() -> Self {
        FaultBook {
            rules: Vec::new(),
            chaos: None,
            chaos_keys: HashSet::new(),
            counter: 0,
            clock_plan: Vec::new(),
        }
    }
}

impl<R: PartialEq, F: Clone> FaultBook<R, F> {
    /// A rule that applies to the next `remaining` matching requests (`None`: all of them).
    pub(crate) fn add(
        &mut self,
        route: R,
        fault: F,
        remaining: Option<u32>,
        continuation_only: bool,
    ) {
        self.add_after(route, fault, remaining, continuation_only, 0);
    }

    /// [`add`](Self::add), after letting `skip` matching requests through.
    pub(crate) fn add_after(
        &mut self,
        route: R,
        fault: F,
        remaining: Option<u32>,
        continuation_only: bool,
        skip: u32,
    ) {
        self.rules.push(Rule {
            route,
            fault,
            remaining,
            continuation_only,
            skip,
        });
    }

    /// Numbers the next exchange; with it, the clock advances planned for that number.
    pub(crate) fn next_number(&mut self) -> (u64, Vec<time::Duration>) {
        self.counter += 1;
        let n = self.counter;
        let due = self
            .clock_plan
            .iter()
            .filter(|(at, _)| *at == n)
            .map(|(_, by)| *by)
            .collect();
        (n, due)
    }

    pub(crate) fn set_chaos(&mut self, chaos: Option<Chaos<R, F>>) {
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
    pub(crate) fn take(&mut self, n: u64, route: R, key: &str, continuation: bool) -> Option<F> {
        if let Some(rule) = self.rules.iter_mut().find(|r| {
            r.route == route && r.remaining != Some(0) && (!r.continuation_only || continuation)
        }) {
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

/// SplitMix64's finaliser: the chaos roll (and Dropbox's id generator) from a seed.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends `exchange` to a traffic record, dropping the oldest beyond
/// [`MAX_RECORDED_REQUESTS`](crate::common::harness::MAX_RECORDED_REQUESTS).
pub(crate) fn record<E>(traffic: &mut Vec<E>, exchange: E) {
    if traffic.len() >= crate::common::harness::MAX_RECORDED_REQUESTS {
        traffic.remove(0);
    }
    traffic.push(exchange);
}

/// What [`RetryFollowUp`] needs of a platform's recorded exchange.
pub trait Recorded {
    /// Real arrival time.
    fn arrived(&self) -> Instant;
    /// What identifies "the same request" for retries.
    fn retry_key(&self) -> &str;
    /// Status answered.
    fn status(&self) -> u16;
    /// `Retry-After` answered, seconds.
    fn retry_after(&self) -> Option<u64>;
}

/// A `Retry-After` the emulator sent, and when the same request came back.
#[derive(Clone, Debug)]
pub struct RetryFollowUp<E> {
    /// The throttled exchange.
    pub throttled: E,
    /// The next exchange with the same key, if any.
    pub next: Option<E>,
}

impl<E: Recorded> RetryFollowUp<E> {
    /// How long the client waited, when it came back.
    pub fn waited(&self) -> Option<Duration> {
        self.next.as_ref().map(|n| {
            n.arrived()
                .saturating_duration_since(self.throttled.arrived())
        })
    }

    /// Whether the client came back no earlier than `Retry-After` said (or never came back).
    pub fn respected(&self) -> bool {
        let wanted = Duration::from_secs(self.throttled.retry_after().unwrap_or(0));
        self.waited().is_none_or(|w| w >= wanted)
    }
}

/// Pairs every `Retry-After` sent with one of `statuses` with the next exchange of the same key.
pub(crate) fn follow_ups<E: Recorded + Clone>(
    exchanges: &[E],
    statuses: &[u16],
) -> Vec<RetryFollowUp<E>> {
    let mut out = Vec::new();
    for (i, e) in exchanges.iter().enumerate() {
        if e.retry_after().is_none() || !statuses.contains(&e.status()) {
            continue;
        }
        let next = exchanges
            .iter()
            .skip(i + 1)
            .filter(|x| x.arrived() >= e.arrived())
            .find(|x| x.retry_key() == e.retry_key())
            .cloned();
        out.push(RetryFollowUp {
            throttled: e.clone(),
            next,
        });
    }
    out
}

/// Implements [`Recorded`] for a platform's exchange struct with fields `at`, `key`, `status`
/// and `retry_after_secs`.
macro_rules! recorded {
    ($exchange:ty) => {
        impl $crate::common::faults::Recorded for $exchange {
            fn arrived(&self) -> std::time::Instant {
                self.at
            }
            fn retry_key(&self) -> &str {
                &self.key
            }
            fn status(&self) -> u16 {
                self.status
            }
            fn retry_after(&self) -> Option<u64> {
                self.retry_after_secs
            }
        }
    };
}
pub(crate) use recorded;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_lets_skip_requests_through_then_applies_its_count() {
        let mut book: FaultBook<u8, &str> = FaultBook::default();
        book.add_after(1, "fault", Some(2), false, 1);
        assert!(book.take(1, 2, "k", false).is_none(), "other route");
        assert!(book.take(2, 1, "k", false).is_none(), "skipped");
        assert_eq!(book.take(3, 1, "k", false), Some("fault"));
        assert_eq!(book.take(4, 1, "k", false), Some("fault"));
        assert!(book.take(5, 1, "k", false).is_none(), "used up");
    }

    #[test]
    fn numbering_hands_out_the_clock_advances_planned_for_that_number() {
        let mut book: FaultBook<u8, ()> = FaultBook::default();
        book.clock_plan.push((2, time::Duration::minutes(5)));
        assert_eq!(book.next_number(), (1, vec![]));
        assert_eq!(book.next_number(), (2, vec![time::Duration::minutes(5)]));
        assert_eq!(book.counter, 2);
    }
}
