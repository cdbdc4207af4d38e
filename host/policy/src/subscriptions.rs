//! A notifier integration's subscriptions: which sources and events it hears, the lowest
//! risk worth an alert, and how alerts are grouped. Host policy, stored typed in the
//! integration's record and never shown to the plugin.

use proofpix_model::RiskLevel;
use serde::{Deserialize, Serialize};

/// What a notifier integration receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriptions {
    /// Source integrations to listen to; `*` for all.
    #[serde(default = "all_sources")]
    pub sources: Vec<String>,
    /// Events: `high-risk`, `batch-completed`, `batch-failed`, `unhealthy`.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Lowest file risk that raises an alert: `medium`, `high` or `critical`.
    #[serde(default = "default_min_risk")]
    pub min_risk: RiskLevel,
    /// Send alerts as digests (up to 50 files a message) instead of one message per file.
    #[serde(default)]
    pub digest: bool,
    /// Seconds an alert or summary may wait so that later ones join it: one digest (and one
    /// summary per source) per window, across runs. 0, the default, delivers when the run
    /// that found it ends.
    #[serde(default)]
    pub window_secs: u64,
    /// Send a batch summary for runs that processed no file too (default: only runs that
    /// did something).
    #[serde(default)]
    pub empty_batches: bool,
    /// A dashboard link to put in batch summaries.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

fn all_sources() -> Vec<String> {
    vec!["*".into()]
}
fn default_events() -> Vec<String> {
    vec![
        "high-risk".into(),
        "batch-completed".into(),
        "batch-failed".into(),
        "unhealthy".into(),
    ]
}
fn default_min_risk() -> RiskLevel {
    RiskLevel::High
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            sources: all_sources(),
            events: default_events(),
            min_risk: default_min_risk(),
            digest: false,
            window_secs: 0,
            empty_batches: false,
            dashboard_url: None,
        }
    }
}

/// The events a subscription can name, with what each sends. `sdk/README.md`, "Notifier
/// subscriptions", lists the same.
pub const EVENTS: &[(&str, &str)] = &[
    (
        "high-risk",
        "a file at or above min_risk (one message each, or digests)",
    ),
    ("batch-completed", "a summary of each run of a source"),
    ("batch-failed", "a run of a source failed"),
    ("unhealthy", "a source cannot run (credentials, config)"),
];

/// The contract's names for the same events (`notifier.notification`'s cases), accepted in
/// subscriptions and stored as the names above.
pub const EVENT_ALIASES: &[(&str, &str)] = &[
    ("high-risk-files", "high-risk"),
    ("integration-unhealthy", "unhealthy"),
];

impl Subscriptions {
    /// The subscriptions with every event name checked and written the host's way (the WIT's
    /// `integration-unhealthy` becomes `unhealthy`), and `min_risk` checked.
    ///
    /// # Errors
    /// An unknown event name or risk level, with the valid ones.
    pub fn validated(mut self) -> Result<Self, String> {
        for event in &mut self.events {
            if let Some((_, name)) = EVENT_ALIASES.iter().find(|(alias, _)| alias == event) {
                *event = (*name).to_string();
            } else if !EVENTS.iter().any(|(name, _)| name == event) {
                return Err(format!(
                    "unknown event {event:?} in the subscriptions; the events are {} (the \
                     contract's {} are accepted too)",
                    EVENTS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    EVENT_ALIASES
                        .iter()
                        .map(|(a, _)| *a)
                        .collect::<Vec<_>>()
                        .join(" and "),
                ));
            }
        }
        self.events.dedup();
        if self.min_risk < RiskLevel::Medium {
            return Err(format!(
                "min_risk {} is too low for the subscriptions (it would alert on nearly every \
                 file); give medium, high or critical",
                self.min_risk
            ));
        }
        Ok(self)
    }

    /// One line for listings: `high-risk, batch-completed from * (min risk high, digest)`.
    pub fn summary(&self) -> String {
        let events = if self.events.is_empty() {
            "no events".to_string()
        } else {
            self.events.join(", ")
        };
        // Names come from the operator's JSON: escaped, so a listing stays one line.
        let sources: Vec<String> = self
            .sources
            .iter()
            .map(|s| s.escape_debug().to_string())
            .collect();
        let mut extra = vec![format!("min risk {}", self.min_risk)];
        if self.digest {
            extra.push("digest".into());
        }
        if self.window_secs > 0 {
            extra.push(format!("window {} s", self.window_secs));
        }
        if self.empty_batches {
            extra.push("empty batches".into());
        }
        format!(
            "{events} from {} ({})",
            sources.join(", "),
            extra.join(", ")
        )
    }

    /// Whether `event` of the source integration `source` is subscribed to.
    pub fn wants(&self, source: &str, event: &str) -> bool {
        self.sources.iter().any(|s| s == "*" || s == source)
            && self.events.iter().any(|e| e == event)
    }

    /// The subscriptions as stored before names were checked, read leniently: the
    /// contract's aliases become the host's names, and an unknown event name is kept (it
    /// only matches nothing).
    pub fn with_aliases_mapped(mut self) -> Self {
        for event in &mut self.events {
            if let Some((_, name)) = EVENT_ALIASES.iter().find(|(alias, _)| alias == event) {
                *event = (*name).to_string();
            }
        }
        self
    }
}
