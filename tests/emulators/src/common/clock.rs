//! A clock that tests move by hand.
//!
//! Every emulator reads time from a [`Clock`] instead of the system: token lifetimes, authorization
//! code lifetimes, refresh-token expiry and JWT `iat`/`exp` windows (reference §0.2). The clock is
//! frozen until a test moves it, so an expiry test never sleeps and never races the wall clock.
//! Clones share the same instant; hand one clone to every emulator (and, through an adapter, to
//! the code under test) so that both sides agree on "now".

use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

/// A shared, manually advanced instant. Clones observe the same time.
#[derive(Clone, Debug)]
pub struct Clock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl Clock {
    /// A clock frozen at the current system time, truncated to whole milliseconds (Salesforce's
    /// `issued_at` has millisecond resolution, so sub-millisecond residue would only confuse).
    pub fn new() -> Self {
        let now = OffsetDateTime::now_utc();
        let millis = now.unix_timestamp_nanos() / 1_000_000;
        Self::frozen_at(
            OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).unwrap_or(now),
        )
    }

    /// A clock frozen at `instant`.
    pub fn frozen_at(instant: OffsetDateTime) -> Self {
        Clock {
            now: Arc::new(Mutex::new(instant)),
        }
    }

    /// The current emulated instant.
    pub fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by);
    }

    /// Sets the clock to `instant`.
    pub fn set(&self, instant: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = instant;
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_instant_and_only_move_when_told() {
        let a = Clock::new();
        let b = a.clone();
        let start = a.now();
        assert_eq!(b.now(), start);
        b.advance(time::Duration::hours(2));
        assert_eq!(a.now(), start + time::Duration::hours(2));
        assert_eq!(
            a.unix_millis() % 1000,
            (start.unix_timestamp_nanos() / 1_000_000 % 1000) as i64
        );
    }
}
