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
//! [`Scheduler::due`] is a function of "now" and of the plan of next firings the store keeps,
//! so tests drive it with a controllable clock. On a store several daemons share (cluster
//! mode) every node ticks, and a firing is claimed in the store: each due time fires once
//! cluster-wide.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::TimeZone as _;
use proofpix_store::ControlStore;
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

/// Decides which schedules fire. The next firing of each integration is kept in the
/// store ([`ControlStore::schedule_next`]), and a firing is claimed with a compare-and-set
/// ([`ControlStore::advance_schedule`]): on a store several daemons share, every node's
/// scheduler ticks, and exactly one of them fires each due time.
///
/// Each scheduler remembers the next times it read, and asks the store again only when one
/// comes due, or after [`PLAN_REFRESH`] (another node may have re-planned it): an idle
/// cluster does not query the database for every integration every second.
#[derive(Debug, Default)]
pub struct Scheduler {
    max_jitter: Duration,
    seen: Mutex<HashMap<String, (OffsetDateTime, Instant)>>,
}

/// How long a scheduler trusts a next time it read from the store.
pub const PLAN_REFRESH: Duration = Duration::from_secs(60);

impl Scheduler {
    /// A scheduler with a jitter cap.
    pub fn new(max_jitter: Duration) -> Self {
        Scheduler {
            max_jitter,
            seen: Mutex::default(),
        }
    }

    /// Whether the next time of `id` last read is still ahead of `now` and fresh.
    fn not_due_yet(&self, id: &str, now: OffsetDateTime) -> bool {
        self.seen.lock().is_ok_and(|seen| {
            seen.get(id)
                .is_some_and(|(next, read)| *next > now && read.elapsed() < PLAN_REFRESH)
        })
    }

    fn remember(&self, id: &str, next: Option<OffsetDateTime>) {
        if let Ok(mut seen) = self.seen.lock() {
            match next {
                Some(at) => seen.insert(id.to_owned(), (at, Instant::now())),
                None => seen.remove(id),
            };
        }
    }

    /// The integrations due at `now`, given each one's schedule, that this call claimed:
    /// their next time is advanced in `plan`, so another scheduler on the same plan does not
    /// fire them again. Integrations not planned yet are planned from `now` (a first start
    /// does not fire everything at once). An integration the plan cannot be read or written
    /// for is skipped (and logged) until a later tick.
    pub fn due(
        &self,
        now: OffsetDateTime,
        schedules: &[(String, Schedule)],
        plan: &dyn ControlStore,
    ) -> Vec<String> {
        let mut due = Vec::new();
        for (id, schedule) in schedules {
            if self.not_due_yet(id, now) {
                continue;
            }
            let j = jitter(id, schedule.typical_gap(now), self.max_jitter);
            // Whatever this node planned or fired, or saw another node plan, it remembers;
            // after a lost compare-and-set it reads the store again at the next tick.
            let claimed = match plan.schedule_next(id) {
                Ok(None) => {
                    let first = schedule.next_after(now).map_or(now, |t| t + j);
                    plan.advance_schedule(id, None, Some(first)).map(|won| {
                        if won {
                            self.remember(id, Some(first));
                        }
                        false
                    })
                }
                Ok(Some(at)) if at <= now => {
                    let next = schedule
                        .next_after(now)
                        .map_or(now + MAX_INTERVAL, |t| t + j);
                    plan.advance_schedule(id, Some(at), Some(next))
                        .inspect(|won| {
                            if *won {
                                self.remember(id, Some(next));
                            }
                        })
                }
                Ok(Some(at)) => {
                    self.remember(id, Some(at));
                    Ok(false)
                }
                Err(e) => Err(e),
            };
            match claimed {
                Ok(true) => due.push(id.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(integration = %id, "cannot read or advance its schedule: {e}")
                }
            }
        }
        due
    }

    /// When an integration runs next.
    pub fn next_run(plan: &dyn ControlStore, id: &str) -> Option<OffsetDateTime> {
        plan.schedule_next(id).ok().flatten()
    }

    /// Forgets an integration's next time (its schedule changed), here and in the store;
    /// the next tick plans it again. Other nodes notice within [`PLAN_REFRESH`].
    pub fn reset(&self, plan: &dyn ControlStore, id: &str) {
        self.remember(id, None);
        for _ in 0..3 {
            match plan.schedule_next(id) {
                Ok(None) => return,
                Ok(Some(at)) => {
                    if plan.advance_schedule(id, Some(at), None).unwrap_or(false) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(integration = %id, "cannot reset its schedule: {e}");
                    return;
                }
            }
        }
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

    /// A store for the plan (redb keeps it in memory).
    fn plan() -> (proofpix_store::Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = proofpix_store::Store::open(dir.path(), &proofpix_vault::MasterKey::generate())
            .unwrap();
        (store, dir)
    }

    #[test]
    fn a_hundred_integrations_on_the_same_interval_do_not_fire_together() {
        let (plan, _dir) = plan();
        let s = Scheduler::new(Duration::from_secs(300));
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
            s.due(t0, &schedules, &plan).is_empty(),
            "a start does not fire everything"
        );
        let mut firing_minutes = std::collections::BTreeSet::new();
        for minute in 0..=70 {
            let now = t0 + time::Duration::minutes(minute);
            for _ in s.due(now, &schedules, &plan) {
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
        let (plan, _dir) = plan();
        let s = Scheduler::new(Duration::ZERO);
        let t0 = datetime!(2026-11-26 00:00 UTC);
        let schedules = vec![("a".to_string(), Schedule::Every(Duration::from_secs(900)))];
        let mut runs = 0;
        for minute in 0..=60 {
            runs += s
                .due(t0 + time::Duration::minutes(minute), &schedules, &plan)
                .len();
        }
        assert_eq!(runs, 4, "at 15, 30, 45 and 60 minutes");
    }

    /// Three nodes' schedulers on one plan (as on a shared store), ticking one after another
    /// at slightly different clocks: every due time fires once in all, not once per node.
    #[test]
    fn schedulers_sharing_a_plan_fire_each_due_time_once() {
        let (plan, _dir) = plan();
        let nodes = [
            Scheduler::new(Duration::from_secs(60)),
            Scheduler::new(Duration::from_secs(60)),
            Scheduler::new(Duration::from_secs(60)),
        ];
        let t0 = datetime!(2026-11-26 00:00 UTC);
        let schedules = vec![
            ("a".to_string(), Schedule::Every(Duration::from_secs(900))),
            ("b".to_string(), Schedule::parse("cron 0 * * * *").unwrap()),
        ];
        // Every 7 s each node ticks, one after another, a different node first each time.
        let mut fired: Vec<(usize, String, i64)> = Vec::new();
        for (step, second) in (0..=2 * 3600 + 120).step_by(7).enumerate() {
            for k in 0..3 {
                let n = (step + k) % 3;
                let at = second + k as i64;
                let now = t0 + time::Duration::seconds(at);
                fired.extend(
                    nodes[n]
                        .due(now, &schedules, &plan)
                        .into_iter()
                        .map(|id| (n, id, at)),
                );
            }
        }
        let times = |id: &str| -> Vec<i64> {
            fired
                .iter()
                .filter(|(_, f, _)| f == id)
                .map(|(_, _, at)| *at)
                .collect()
        };
        // Once per due time: never two firings closer than the interval, whichever nodes
        // ticked (each lands up to one tick plus the jitter late, so 7 or 8 in two hours).
        let a = times("a");
        assert!((7..=8).contains(&a.len()), "every 15 minutes: {fired:?}");
        assert!(a.windows(2).all(|w| w[1] - w[0] >= 900), "{a:?}");
        let b = times("b");
        assert_eq!(b.len(), 2, "at 01:00 and 02:00 (plus jitter): {fired:?}");
        assert!(b[1] - b[0] >= 3600 - 60, "{b:?}");
        let by: std::collections::BTreeSet<usize> = fired.iter().map(|(n, _, _)| *n).collect();
        assert!(by.len() > 1, "whichever node ticks first fires: {fired:?}");
        // A reset (the schedule changed) plans afresh on the next tick, without firing.
        nodes[0].reset(&plan, "a");
        assert_eq!(Scheduler::next_run(&plan, "a"), None);
        let later = t0 + time::Duration::hours(3);
        assert!(nodes[0].due(later, &schedules[..1], &plan).is_empty());
        assert!(Scheduler::next_run(&plan, "a").is_some_and(|t| t > later));
    }
}
