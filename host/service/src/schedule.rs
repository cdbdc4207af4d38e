//! When integrations run: intervals and cron expressions with a time zone.
//!
//! | form | meaning |
//! |---|---|
//! | `15m`, `2h`, `24h` | every interval, 5 minutes to 24 hours |
//! | `cron 0 */6 * * *` | a 5- or 6-field cron expression, in UTC |
//! | `cron 30 8 * * 1-5 Europe/Berlin` | the same with an IANA time zone |
//!
//! Each integration gets a fixed jitter derived from its name (up to a tenth
//! of its interval, capped by the configuration), so a hundred integrations
//! on `1h` spread over several minutes instead of firing together, and a
//! given integration still runs at the same offset every time.
//!
//! The scheduler itself is a pure function of "now" ([`Scheduler::due`]), so
//! tests drive it with a controllable clock.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Shortest interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Longest interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `Duration`.
    Every(Duration),
    /// A cron expression in a time zone.
    Cron {
        /// The expression.
        cron: Box<croner::Cron>,
        /// Its zone.
        tz: chrono_tz::Tz,
        /// As written.
        text: String,
    },
}

impl Schedule {
    /// Parses a schedule (see the module docs).
    ///
    /// # Errors
    /// A message saying which form was expected.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("cron ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let (fields, tz) = match parts.last() {
                Some(last) if last.contains('/') || *last == "UTC" => {
                    (&parts[..parts.len() - 1], *last)
                }
                _ => (&parts[..], "UTC"),
            };
            if !(5..=6).contains(&fields.len()) {
                return Err(format!(
                    "{t:?}: a cron schedule has 5 or 6 fields, then an optional time zone"
                ));
            }
            let expr = fields.join(" ");
            let cron = croner::Cron::from_str(&expr)
                .map_err(|e| format!("{t:?}: invalid cron expression: {e}"))?;
            let tz: chrono_tz::Tz = tz.parse().map_err(|_| {
                format!("{t:?}: unknown time zone {tz:?} (use an IANA name like Europe/Berlin)")
            })?;
            let schedule = Schedule::Cron {
                cron: Box::new(cron),
                tz,
                text: t.to_string(),
            };
            // The same bounds as intervals: no two runs closer than 5 minutes (over the next
            // 64 runs, which covers an hour's worth of `0,1 * * * *`-style lists).
            let mut prev = schedule.next_after(OffsetDateTime::now_utc());
            for _ in 0..64 {
                let (Some(a), Some(b)) = (prev, prev.and_then(|p| schedule.next_after(p))) else {
                    break;
                };
                if b - a < MIN_INTERVAL {
                    return Err(format!(
                        "{t:?}: runs would come less than 5 minutes apart (the shortest gap is 5 minutes)"
                    ));
                }
                prev = Some(b);
            }
            return Ok(schedule);
        }
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u64 = num.parse().map_err(|_| {
            format!("{t:?}: use an interval like 15m or 6h, or `cron <expression> [time zone]`")
        })?;
        let unit_secs: u64 = match unit.trim() {
            "m" | "min" | "minutes" => 60,
            "h" | "hours" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(format!("{t:?}: the unit must be m, h or d")),
        };
        // A number too large to multiply is out of bounds like any other.
        let every = n.checked_mul(unit_secs).map(Duration::from_secs);
        let Some(every) = every.filter(|e| (MIN_INTERVAL..=MAX_INTERVAL).contains(e)) else {
            return Err(format!(
                "{t:?}: the interval must be between 5 minutes and 24 hours"
            ));
        };
        Ok(Schedule::Every(every))
    }

    /// The next run strictly after `after`, before jitter.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(d) => Some(after + *d),
            Schedule::Cron { cron, tz, .. } => {
                let secs = after.unix_timestamp();
                let local = tz.timestamp_opt(secs, 0).single()?;
                let next = cron.find_next_occurrence(&local, false).ok()?;
                OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
            }
        }
    }

    /// A typical gap between runs, to size the jitter.
    fn typical_gap(&self, now: OffsetDateTime) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron { .. } => {
                let a = self.next_after(now);
                let b = a.and_then(|a| self.next_after(a));
                match (a, b) {
                    (Some(a), Some(b)) => Duration::try_from(b - a).unwrap_or(MIN_INTERVAL),
                    _ => MIN_INTERVAL,
                }
            }
        }
    }
}

/// The fixed jitter of an integration: a stable fraction of a tenth of its
/// gap, capped.
pub fn jitter(id: &str, gap: Duration, cap: Duration) -> Duration {
    let h = Sha256::digest(id.as_bytes());
    let fraction = f64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]])) / f64::from(u32::MAX);
    (gap / 10).min(cap).mul_f64(fraction)
}

/// Keeps the next due time of each scheduled integration.
#[derive(Debug, Default)]
pub struct Scheduler {
    next: BTreeMap<String, OffsetDateTime>,
    max_jitter: Duration,
}

impl Scheduler {
    /// A scheduler with a jitter cap.
    pub fn new(max_jitter: Duration) -> Self {
        Scheduler {
            next: BTreeMap::new(),
            max_jitter,
        }
    }

    /// The integrations due at `now`, given each one's schedule; advances
    /// their next time. Integrations seen for the first time are scheduled
    /// from `now` (a restart does not fire everything at once).
    pub fn due(&mut self, now: OffsetDateTime, schedules: &[(String, Schedule)]) -> Vec<String> {
        self.next
            .retain(|id, _| schedules.iter().any(|(s, _)| s == id));
        let mut due = Vec::new();
        for (id, schedule) in schedules {
            let j = jitter(id, schedule.typical_gap(now), self.max_jitter);
            let entry = self
                .next
                .entry(id.clone())
                .or_insert_with(|| schedule.next_after(now).map_or(now, |t| t + j));
            if *entry <= now {
                due.push(id.clone());
                *entry = schedule
                    .next_after(now)
                    .map_or(now + MAX_INTERVAL, |t| t + j);
            }
        }
        due
    }

    /// When an integration runs next.
    pub fn next_run(&self, id: &str) -> Option<OffsetDateTime> {
        self.next.get(id).copied()
    }

    /// Forgets an integration (its schedule changed).
    pub fn reset(&mut self, id: &str) {
        self.next.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_interval_too_large_to_compute_is_out_of_bounds_not_a_panic() {
        assert_eq!(
            Schedule::parse("999999999999999999m").unwrap_err(),
            "\"999999999999999999m\": the interval must be between 5 minutes and 24 hours"
        );
        assert!(Schedule::parse("18446744073709551615d").is_err());
    }

    #[test]
    fn a_cron_schedule_runs_at_most_every_five_minutes() {
        for too_often in [
            "cron * * * * *",
            "cron */2 * * * *",
            "cron 0,1 * * * *",
            "cron * * * * * *",
        ] {
            let e = Schedule::parse(too_often).unwrap_err();
            assert!(e.contains("less than 5 minutes apart"), "{too_often}: {e}");
        }
        for fine in [
            "cron */5 * * * *",
            "cron 0 */6 * * *",
            "cron 30 8 * * 1-5 Europe/Berlin",
        ] {
            assert!(Schedule::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn intervals_are_bounded_to_five_minutes_and_a_day() {
        assert!(
            matches!(Schedule::parse("15m"), Ok(Schedule::Every(d)) if d == Duration::from_secs(900))
        );
        assert!(matches!(Schedule::parse("24h"), Ok(Schedule::Every(_))));
        assert_eq!(
            Schedule::parse("1m").unwrap_err(),
            "\"1m\": the interval must be between 5 minutes and 24 hours"
        );
        assert_eq!(
            Schedule::parse("2d").unwrap_err(),
            "\"2d\": the interval must be between 5 minutes and 24 hours"
        );
        assert!(Schedule::parse("soon").is_err());
    }

    #[test]
    fn cron_schedules_follow_their_time_zone() {
        let s = Schedule::parse("cron 30 8 * * * Europe/Berlin").unwrap_or_else(|e| panic!("{e}"));
        // 08:30 in Berlin in November (UTC+1) is 07:30 UTC.
        let next = s
            .next_after(datetime!(2026-11-26 00:00 UTC))
            .unwrap_or_else(|| panic!("no next"));
        assert_eq!(next, datetime!(2026-11-26 07:30 UTC));
        assert!(
            Schedule::parse("cron 30 8 * * * Mars/Olympus")
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(
            Schedule::parse("cron 30 8 *")
                .unwrap_err()
                .contains("5 or 6 fields")
        );
    }

    #[test]
    fn a_hundred_integrations_on_the_same_interval_do_not_fire_together() {
        let mut s = Scheduler::new(Duration::from_secs(300));
        let t0 = datetime!(2026-11-26 00:00 UTC);
        let schedules: Vec<(String, Schedule)> = (0..100)
            .map(|i| {
                (
                    format!("int-{i}"),
                    Schedule::Every(Duration::from_secs(3600)),
                )
            })
            .collect();
        assert!(
            s.due(t0, &schedules).is_empty(),
            "a start does not fire everything"
        );
        let mut firing_minutes = std::collections::BTreeSet::new();
        for minute in 0..=70 {
            let now = t0 + time::Duration::minutes(minute);
            for _ in s.due(now, &schedules) {
                firing_minutes.insert(minute);
            }
        }
        assert!(
            firing_minutes.len() >= 4,
            "runs spread over {firing_minutes:?}"
        );
        assert!(
            firing_minutes.iter().all(|m| (60..=65).contains(m)),
            "within the 5-minute jitter cap: {firing_minutes:?}"
        );
    }

    #[test]
    fn each_integration_runs_once_per_interval() {
        let mut s = Scheduler::new(Duration::ZERO);
        let t0 = datetime!(2026-11-26 00:00 UTC);
        let schedules = vec![("a".to_string(), Schedule::Every(Duration::from_secs(900)))];
        let mut runs = 0;
        for minute in 0..=60 {
            runs += s
                .due(t0 + time::Duration::minutes(minute), &schedules)
                .len();
        }
        assert_eq!(runs, 4, "at 15, 30, 45 and 60 minutes");
    }
}
