//! Routing run outcomes to notifier integrations.
//!
//! A notifier integration (Slack, Teams, a webhook) says what it wants in its
//! subscriptions: which source integrations, which events, the lowest risk
//! worth an alert, and whether high-risk files of one run are sent one by
//! one or as one digest (a run with 500 risky files then sends one message,
//! not 500). Delivery honours the platform's Retry-After and retries
//! transient failures a few times; every delivery is an audit entry.

use std::time::Duration;

use proofpix_analysis::RiskLevel;
use proofpix_pipeline::{SyncReport, file_result, now_rfc3339, risk_to_contract};
use proofpix_runtime::contract::{BatchSummary, Capability, FileAlert, Notification, Problem};
use proofpix_store::{AuditEvent, IntegrationStatus};
use serde::{Deserialize, Serialize};

use crate::Host;

/// Config key of a notifier integration's subscriptions (JSON).
pub const SUBSCRIPTIONS_KEY: &str = "subscriptions";
/// Alerts per digest message; a larger run sends several digests.
const MAX_ALERTS_PER_DIGEST: usize = 50;
/// Delivery attempts per notification.
const DELIVERY_ATTEMPTS: u32 = 4;
/// Longest wait for a Retry-After during delivery.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

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
    pub min_risk: String,
    /// Send a run's alerts as one digest instead of one message per file.
    #[serde(default)]
    pub digest: bool,
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
fn default_min_risk() -> String {
    "high".into()
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            sources: all_sources(),
            events: default_events(),
            min_risk: default_min_risk(),
            digest: false,
            dashboard_url: None,
        }
    }
}

impl Subscriptions {
    fn wants(&self, source: &str, event: &str) -> bool {
        self.sources.iter().any(|s| s == "*" || s == source)
            && self.events.iter().any(|e| e == event)
    }
}

/// Something a source integration's run produced.
#[derive(Debug, Clone)]
pub enum NotifyEvent {
    /// A run finished.
    Completed(Box<SyncReport>),
    /// A run failed.
    Failed(String),
    /// The integration cannot run (credentials, config).
    Unhealthy(String),
}

impl Host {
    /// Sends `event` of `source` to every notifier integration subscribed to
    /// it. Failures are logged and audited; they never fail the run.
    pub(crate) async fn notify_event(&self, source: &str, event: NotifyEvent) {
        let platform = self
            .store
            .integration(source)
            .ok()
            .flatten()
            .and_then(|r| self.plugin(&r.plugin_id))
            .map(|p| p.info().platform.clone())
            .unwrap_or_default();
        for (notifier, subs) in self.notifiers(source) {
            let messages = messages_for(source, &platform, &event, &subs);
            if messages.is_empty() {
                continue;
            }
            self.deliver(&notifier, source, messages).await;
        }
    }

    /// The enabled notifier integrations other than `source`, with their subscriptions. A
    /// notifier whose stored subscriptions do not parse is logged and left out.
    fn notifiers(&self, source: &str) -> Vec<(String, Subscriptions)> {
        let Ok(records) = self.store.integrations() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for record in records.into_iter().filter(|r| r.enabled && r.id != source) {
            let Some(plugin) = self.plugin(&record.plugin_id) else {
                continue;
            };
            if !plugin.info().capabilities.contains(&Capability::Notifier) {
                continue;
            }
            let subs: Subscriptions = match record.config.get(SUBSCRIPTIONS_KEY) {
                Some(json) => match serde_json::from_str(json) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(integration = %record.id, "invalid subscriptions, no notifications sent: {e}");
                        continue;
                    }
                },
                None => Subscriptions::default(),
            };
            out.push((record.id, subs));
        }
        out
    }

    /// The lowest risk that raises an alert about `source` for some enabled notifier, if any
    /// notifier wants its high-risk alerts.
    pub(crate) fn alert_floor(&self, source: &str) -> Option<RiskLevel> {
        self.notifiers(source)
            .into_iter()
            .filter(|(_, subs)| subs.wants(source, "high-risk"))
            .map(|(_, subs)| RiskLevel::parse(&subs.min_risk).unwrap_or(RiskLevel::High))
            .min()
    }

    async fn deliver(
        &self,
        notifier: &str,
        source: &str,
        messages: Vec<(&'static str, Notification)>,
    ) {
        let (plugin, ctx) = match self.context(notifier, true).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(integration = %notifier, "cannot notify: {e}");
                let _ = self.store.audit(
                    &AuditEvent::new("system", "notify.failed", notifier)
                        .outcome("failed")
                        .details(serde_json::json!({"source": source, "error": e.to_string()})),
                );
                return;
            }
        };
        let mut session = match plugin.session(&ctx).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(integration = %notifier, "cannot notify: {e}");
                return;
            }
        };
        for (kind, message) in messages {
            let mut attempt = 0;
            let outcome = loop {
                attempt += 1;
                if session.is_poisoned() {
                    match plugin.session(&ctx).await {
                        Ok(s) => session = s,
                        Err(e) => break Err(e.to_string()),
                    }
                }
                match session.notify(&message).await {
                    Ok(()) => break Ok(attempt),
                    Err(e) if e.is_retryable() && attempt < DELIVERY_ATTEMPTS => {
                        let wait = e
                            .retry_after()
                            .unwrap_or(Duration::from_millis(500 * u64::from(attempt)))
                            .min(MAX_RETRY_WAIT);
                        tracing::warn!(integration = %notifier, attempt, wait_ms = wait.as_millis() as u64, "notification failed, retrying: {e}");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => break Err(e.to_string()),
                }
            };
            let event = match &outcome {
                Ok(attempts) => AuditEvent::new("system", "notify.sent", notifier).details(
                    serde_json::json!({"source": source, "kind": kind, "attempts": attempts}),
                ),
                Err(e) => {
                    tracing::error!(integration = %notifier, "notification not delivered: {e}");
                    AuditEvent::new("system", "notify.failed", notifier)
                        .outcome("failed")
                        .details(serde_json::json!({"source": source, "kind": kind, "error": e}))
                }
            };
            let _ = self.store.audit(&event);
            // A notifier never syncs: its health is that of its last delivery, so the
            // dashboard shows it working (or failing, with why) instead of "new".
            let (status, error) = match &outcome {
                Ok(_) => (IntegrationStatus::Healthy, None),
                Err(e) => (IntegrationStatus::Failing, Some(e.as_str())),
            };
            if let Err(e) = self.store.set_integration_status(notifier, status, error) {
                tracing::warn!(integration = %notifier, "cannot record the notifier's status: {e}");
            }
        }
    }
}

/// The notifications one event yields for one subscriber.
fn messages_for(
    source: &str,
    platform: &str,
    event: &NotifyEvent,
    subs: &Subscriptions,
) -> Vec<(&'static str, Notification)> {
    let mut out = Vec::new();
    match event {
        NotifyEvent::Completed(report) => {
            if subs.wants(source, "high-risk") {
                let min = RiskLevel::parse(&subs.min_risk).unwrap_or(RiskLevel::High);
                let at = now_rfc3339();
                let alerts: Vec<FileAlert> = report
                    .files
                    .iter()
                    .filter_map(|f| f.report.as_ref().filter(|r| r.risk >= min).map(|r| (f, r)))
                    .map(|(f, r)| {
                        let result = file_result(&f.file, r, &at);
                        FileAlert {
                            integration: source.to_string(),
                            file: f.file.clone(),
                            risk: risk_to_contract(r.risk),
                            score: r.score,
                            summary: result.summary,
                            findings: result.findings,
                        }
                    })
                    .collect();
                if subs.digest {
                    for chunk in alerts.chunks(MAX_ALERTS_PER_DIGEST) {
                        out.push((
                            "high-risk-digest",
                            Notification::HighRiskFiles(chunk.to_vec()),
                        ));
                    }
                } else {
                    out.extend(
                        alerts
                            .into_iter()
                            .map(|a| ("high-risk", Notification::HighRiskFiles(vec![a]))),
                    );
                }
            }
            if subs.wants(source, "batch-completed") {
                let b = &report.batch;
                let fmt = |t: time::OffsetDateTime| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                };
                let by_risk = b
                    .by_risk
                    .iter()
                    .filter_map(|(k, v)| {
                        RiskLevel::parse(k)
                            .map(|r| (risk_to_contract(r), u32::try_from(*v).unwrap_or(u32::MAX)))
                    })
                    .collect();
                out.push((
                    "batch-completed",
                    Notification::BatchCompleted(BatchSummary {
                        batch_id: b.id.to_string(),
                        integration: source.to_string(),
                        platform: platform.to_string(),
                        started_at: fmt(b.started_at),
                        finished_at: b.finished_at.map(fmt).unwrap_or_default(),
                        files_total: u32::try_from(b.total).unwrap_or(u32::MAX),
                        files_ok: u32::try_from(b.ok).unwrap_or(u32::MAX),
                        files_failed: u32::try_from(b.errors).unwrap_or(u32::MAX),
                        by_risk,
                        dashboard_url: subs
                            .dashboard_url
                            .as_ref()
                            .map(|u| format!("{}/batches/{}", u.trim_end_matches('/'), b.id)),
                    }),
                ));
            }
        }
        NotifyEvent::Failed(message) if subs.wants(source, "batch-failed") => {
            out.push((
                "batch-failed",
                Notification::BatchFailed(Problem {
                    integration: source.into(),
                    message: message.clone(),
                }),
            ));
        }
        NotifyEvent::Unhealthy(message) if subs.wants(source, "unhealthy") => {
            out.push((
                "unhealthy",
                Notification::IntegrationUnhealthy(Problem {
                    integration: source.into(),
                    message: message.clone(),
                }),
            ));
        }
        _ => {}
    }
    out
}
