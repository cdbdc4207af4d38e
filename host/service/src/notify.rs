//! The notify stage: alerts and summaries for notifier integrations.
//!
//! A notifier integration (Slack, Teams, a webhook) says what it wants in its
//! subscriptions: which source integrations, which events, the lowest risk
//! worth an alert, whether alerts are sent one by one or as a digest, and the
//! window a digest covers. A source's sync routes each risky result and its
//! finished batch into the notifier's queue (`<notifier>/notify`) in the same
//! transaction that records them, so nothing waits in memory for the run to
//! end. This stage drains each queue when its window has passed: one digest per
//! window across however many runs fed it (and one summary per source), never a
//! summary for a run that processed nothing unless the subscription asks.
//! Delivery honours the platform's Retry-After and retries transient failures a
//! few times; a message that still fails goes back to the queue for a later
//! try (and is parked after the store's attempt limit); every delivery is an
//! audit entry.

use std::time::Duration;

use std::collections::BTreeMap;

use proofpix_analysis::RiskLevel;
use proofpix_model::{BatchSummary, Digest, FileAlert, Notification, Problem};
use proofpix_pipeline::StageItem;
use proofpix_policy::Subscriptions;
use proofpix_runtime::contract::Capability;
use proofpix_store::{AuditEvent, IntegrationStatus, Lease, Stage, stage_queue};

use crate::Host;
use crate::plugins::PLUGIN_LOG_HINT;

/// Alerts per digest message; a larger window sends several digests.
const MAX_ALERTS_PER_DIGEST: usize = 50;
/// Queue items the stage takes at once for one notifier.
const NOTIFY_GROUP: usize = 500;
/// How long a notification that could not be delivered waits before the next try.
const REDELIVER_AFTER: Duration = Duration::from_secs(60);
/// Delivery attempts per notification.
const DELIVERY_ATTEMPTS: u32 = 4;
/// Delivery attempts per notification when the plugin crashes: a deterministic crash (an
/// uncaught exception) repeats, so more tries would only repeat it.
const TRAP_ATTEMPTS: u32 = 2;
/// Longest wait for a Retry-After during delivery.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A failure a source integration's run reports at once (results and summaries go through
/// the notify queues instead; a failure notice joins them only when the notifier refused it).
#[derive(Debug, Clone)]
pub enum NotifyEvent {
    /// A run failed.
    Failed(String),
    /// The integration cannot run (credentials, config).
    Unhealthy(String),
}

impl Host {
    /// Sends `event` of `source` to every notifier integration subscribed to
    /// it. Failures are logged and audited; they never fail the run.
    ///
    /// It is sent at once; a message the notifier does not accept (down, throttling, a
    /// crash) goes to the notifier's queue and is delivered again by the notify stage, and
    /// parked after the queue's attempts, like an alert. It is never lost.
    pub(crate) async fn notify_event(&self, source: &str, event: NotifyEvent) {
        for (notifier, subs) in self.notifiers(source) {
            let messages: Vec<_> = messages_for(source, &event, &subs)
                .into_iter()
                .map(|(k, m)| (k, m, source.to_string()))
                .collect();
            if messages.is_empty() {
                continue;
            }
            let kinds: Vec<&'static str> = messages.iter().map(|(k, _, _)| *k).collect();
            let outcomes = self.deliver(&notifier, messages).await;
            for (kind, accepted) in kinds.into_iter().zip(outcomes) {
                if !accepted {
                    self.keep_for_redelivery(&notifier, source, kind, &event)
                        .await;
                }
            }
        }
    }

    /// Queues a problem notification the notifier did not accept, for the notify stage.
    async fn keep_for_redelivery(
        &self,
        notifier: &str,
        source: &str,
        kind: &'static str,
        event: &NotifyEvent,
    ) {
        let (NotifyEvent::Failed(message) | NotifyEvent::Unhealthy(message)) = event;
        let item = StageItem::Problem {
            source: source.to_string(),
            event: kind.to_string(),
            message: message.clone(),
        };
        let Ok(payload) = serde_json::to_vec(&item) else {
            return;
        };
        let queue = stage_queue(notifier, Stage::Notify);
        let dedup_key = format!(
            "problem/{source}/{kind}/{}",
            self.stages.now().unix_timestamp_nanos()
        );
        let queued = self
            .stage_blocking(move |s| {
                s.enqueue(&queue, &[proofpix_store::NewItem { dedup_key, payload }])
            })
            .await;
        if let Err(e) = queued {
            tracing::error!(integration = %notifier, "a {kind} notification was not delivered and could not be queued: {e}");
        }
    }

    /// The enabled notifier integrations subscribed to `source` (a notifier that is also a
    /// source, like Slack, hears about its own files too), with their subscriptions. A
    /// notifier whose stored subscriptions do not parse is logged and left out.
    pub(crate) fn notifiers(&self, source: &str) -> Vec<(String, Subscriptions)> {
        self.all_notifiers()
            .into_iter()
            .filter(|(_, subs)| subs.sources.iter().any(|s| s == "*" || s == source))
            .collect()
    }

    /// Every enabled notifier integration with its subscriptions.
    fn all_notifiers(&self) -> Vec<(String, Subscriptions)> {
        let Ok(records) = self.stages.integrations() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for record in records.into_iter().filter(|r| r.enabled) {
            let Some(plugin) = self.plugin(&record.plugin_id) else {
                continue;
            };
            if !plugin.info().capabilities.contains(&Capability::Notifier) {
                continue;
            }
            let subs = subscriptions_of(&record);
            out.push((record.id, subs));
        }
        out
    }

    /// A notifier integration's subscriptions (the defaults when it has none stored); `None`
    /// for an integration whose plugin is not a notifier. Stored subscriptions are returned
    /// even while the plugin is not loaded.
    ///
    /// # Errors
    /// Unknown integration.
    pub fn subscriptions(&self, id: &str) -> Result<Option<Subscriptions>, crate::ServiceError> {
        let record = self.integration(id)?;
        let notifier = record.subscriptions.is_some()
            || self
                .plugin(&record.plugin_id)
                .is_some_and(|p| p.info().capabilities.contains(&Capability::Notifier));
        if !notifier {
            return Ok(None);
        }
        Ok(Some(subscriptions_of(&record)))
    }

    /// Hands delivery to a background notify stage: from now on a sync wakes the returned
    /// handle when it ends instead of delivering inline, and the caller's task (one loop, so
    /// deliveries never overlap) calls [`Host::deliver_notifications`] when woken. Without it
    /// a sync delivers before it returns, as the CLI's one-shot commands want; with it a run
    /// never waits on a notifier's queue, which other integrations' runs may keep filling
    /// (measured: a webhook run waited 25-95 s behind a 20,000-file backlog's alerts).
    pub fn background_notify_stage(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notify_stage
            .get_or_init(|| std::sync::Arc::new(tokio::sync::Notify::new()))
            .clone()
    }

    /// The notify stage: for every notifier whose queue holds something due (its oldest item
    /// has waited the subscription's window, or at once with `flush`), delivers the queued
    /// alerts as digests or single messages and the queued batches as one summary per
    /// source, then acks what was delivered. Failures are logged and audited, never raised.
    pub async fn deliver_notifications(&self, flush: bool) {
        for (notifier, subs) in self.all_notifiers() {
            let lane = format!("notify/{notifier}");
            let drained = self.drain_notifier(&notifier, &subs, flush);
            if let Err(e) = proofpix_pipeline::in_lane(&lane, drained).await {
                tracing::error!(integration = %notifier, "notifications not delivered: {e}");
            }
        }
    }

    async fn drain_notifier(
        &self,
        notifier: &str,
        subs: &Subscriptions,
        flush: bool,
    ) -> Result<(), crate::ServiceError> {
        let queue = stage_queue(notifier, Stage::Notify);
        let q = queue.clone();
        let Some(oldest) = self.stage_blocking(move |s| s.earliest_due(&q)).await? else {
            return Ok(());
        };
        let now = self.stages.now();
        let window = Duration::from_secs(subs.window_secs);
        if !flush && oldest > now - window {
            return Ok(());
        }
        let owner = format!("notify-{}", std::process::id());
        loop {
            let (q, o) = (queue.clone(), owner.clone());
            let leases = self
                .stage_blocking(move |s| s.claim(&q, &o, NOTIFY_GROUP, Duration::from_secs(300)))
                .await?;
            if leases.is_empty() {
                return Ok(());
            }
            let messages = self.notify_messages(subs, leases).await?;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            let outcomes = self
                .deliver(
                    notifier,
                    messages
                        .iter()
                        .map(|(k, m, _, source)| (*k, m.clone(), source.clone()))
                        .collect(),
                )
                .await;
            for ((_, _, leases, _), ok) in messages.into_iter().zip(outcomes) {
                if ok {
                    done.extend(leases);
                } else {
                    failed.extend(leases);
                }
            }
            let again = self.stages.now() + REDELIVER_AFTER;
            let stop = !failed.is_empty();
            self.stage_blocking(move |s| {
                for l in &done {
                    s.ack(l)?;
                }
                for l in &failed {
                    s.nack(l, again, "the notifier did not accept the message")?;
                }
                Ok(())
            })
            .await?;
            if stop {
                return Ok(());
            }
        }
    }

    /// The messages for a group of queued items, each with the leases it covers. Items of
    /// sources the subscription no longer covers, or below its current risk floor, are
    /// acknowledged without a message (they ride along with the first message, or alone).
    async fn notify_messages(
        &self,
        subs: &Subscriptions,
        leases: Vec<Lease>,
    ) -> Result<Vec<QueuedMessage>, crate::ServiceError> {
        let min = subs.min_risk;
        let mut alerts: Vec<(FileAlert, String, Lease)> = Vec::new();
        let mut batches: BTreeMap<String, Vec<(u64, Lease)>> = BTreeMap::new();
        let mut dropped = Vec::new();
        let mut problems: Vec<QueuedMessage> = Vec::new();
        for lease in leases {
            match serde_json::from_slice::<StageItem>(&lease.payload) {
                Ok(StageItem::File { source, result })
                    if subs.wants(&source, "high-risk") && result.risk >= min =>
                {
                    alerts.push((
                        FileAlert {
                            integration: source,
                            file: result.file,
                            risk: result.risk,
                            score: result.score,
                            summary: result.summary,
                            findings: result.findings,
                        },
                        result.analysed_at,
                        lease,
                    ));
                }
                Ok(StageItem::Batch { source, batch })
                    if subs.wants(&source, "batch-completed") =>
                {
                    batches.entry(source).or_default().push((batch, lease));
                }
                Ok(StageItem::Problem {
                    source,
                    event,
                    message,
                }) => {
                    let event = match event.as_str() {
                        "batch-failed" => NotifyEvent::Failed(message),
                        _ => NotifyEvent::Unhealthy(message),
                    };
                    match messages_for(&source, &event, subs).pop() {
                        Some((kind, n)) => problems.push((kind, n, vec![lease], source)),
                        None => dropped.push(lease),
                    }
                }
                _ => dropped.push(lease),
            }
        }
        let mut out: Vec<QueuedMessage> = problems;
        let now = proofpix_pipeline::now_rfc3339();
        if subs.digest {
            for (digest, l) in digests(alerts, &now, MAX_ALERTS_PER_DIGEST) {
                let mut sources: Vec<&str> = digest
                    .alerts
                    .iter()
                    .map(|a| a.integration.as_str())
                    .collect();
                sources.sort_unstable();
                sources.dedup();
                let sources = sources.join(",");
                out.push((
                    "high-risk-digest",
                    Notification::HighRiskFiles(digest),
                    l,
                    sources,
                ));
            }
        } else {
            for (a, analysed_at, l) in alerts {
                let source = a.integration.clone();
                let (digest, l) = digests(vec![(a, analysed_at, l)], &now, 1)
                    .pop()
                    .expect("one alert makes one digest");
                out.push(("high-risk", Notification::HighRiskFiles(digest), l, source));
            }
        }
        for (source, items) in batches {
            let ids: Vec<u64> = items.iter().map(|(b, _)| *b).collect();
            let leases: Vec<Lease> = items.into_iter().map(|(_, l)| l).collect();
            let platform = self
                .store
                .integration(&source)
                .ok()
                .flatten()
                .and_then(|r| self.plugin(&r.plugin_id))
                .map(|p| p.info().platform.clone())
                .unwrap_or_default();
            let records = self
                .stage_blocking(move |s| {
                    let mut v = Vec::new();
                    for id in ids {
                        if let Some(b) = s.batch(id)? {
                            v.push(b);
                        }
                    }
                    Ok(v)
                })
                .await?;
            match summary(&source, &platform, &records, subs) {
                Some(n) => out.push(("batch-completed", n, leases, source.clone())),
                None => dropped.extend(leases),
            }
        }
        match out.first_mut() {
            Some(first) => first.2.extend(dropped),
            None if !dropped.is_empty() => {
                let ids = dropped;
                self.stage_blocking(move |s| {
                    for l in &ids {
                        s.ack(l)?;
                    }
                    Ok(())
                })
                .await?;
            }
            None => {}
        }
        Ok(out)
    }

    /// Delivers messages (each with the source integration(s) it is about) to one notifier;
    /// whether each was accepted.
    async fn deliver(
        &self,
        notifier: &str,
        messages: Vec<(&'static str, Notification, String)>,
    ) -> Vec<bool> {
        let source = messages
            .first()
            .map(|(_, _, s)| s.clone())
            .unwrap_or_default();
        let mut delivered = Vec::with_capacity(messages.len());
        let (plugin, ctx) = match self.context(notifier, true).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(integration = %notifier, "cannot notify: {e}");
                let _ = self.stages.audit(
                    &AuditEvent::new("system", "notify.failed", notifier)
                        .outcome("failed")
                        .details(serde_json::json!({"source": source, "error": e.to_string()})),
                );
                return vec![false; messages.len()];
            }
        };
        let mut session = match plugin.session(&ctx).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(integration = %notifier, "cannot notify: {e}");
                return vec![false; messages.len()];
            }
        };
        for (kind, message, source) in messages {
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
                    // A crash (a trap, a limit) discarded the instance; one more try on a
                    // fresh one covers a crash caused by what an earlier call left behind.
                    // A crash that repeats is the plugin's bug: the message goes back to
                    // the queue like any failed one and is tried again later.
                    Err(e) if e.plugin_error().is_none() && attempt < TRAP_ATTEMPTS => {
                        tracing::warn!(integration = %notifier, attempt, "notification crashed the plugin, retrying on a fresh instance: {e}");
                    }
                    Err(e) if e.plugin_error().is_none() => {
                        break Err(format!("{e}; {PLUGIN_LOG_HINT}"));
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
            let _ = self.stages.audit(&event);
            delivered.push(outcome.is_ok());
            // A notifier never syncs: its health is that of its last delivery, so the
            // dashboard shows it working (or failing, with why) instead of "new".
            let (status, error) = match &outcome {
                Ok(_) => (IntegrationStatus::Healthy, None),
                Err(e) => (IntegrationStatus::Failing, Some(e.as_str())),
            };
            if let Err(e) = self.stages.set_integration_status(notifier, status, error) {
                tracing::warn!(integration = %notifier, "cannot record the notifier's status: {e}");
            }
        }
        delivered
    }
}

/// The stored subscriptions of an integration, or the defaults. Names stored before they
/// were checked are read leniently: aliases are mapped, and an unknown event name only
/// matches nothing.
fn subscriptions_of(record: &proofpix_store::IntegrationRecord) -> Subscriptions {
    record
        .subscriptions
        .clone()
        .map_or_else(Subscriptions::default, Subscriptions::with_aliases_mapped)
}

/// A message for a notifier: its kind, the notification, the queue items it covers, and the
/// source integration(s) it is about.
type QueuedMessage = (&'static str, Notification, Vec<Lease>, String);

/// One summary of a source's batches in a window (one batch: that batch; several: their
/// totals, from the first start to the last finish, under the last batch's id). `None` when
/// they processed nothing and the subscription does not want empty summaries.
fn summary(
    source: &str,
    platform: &str,
    batches: &[proofpix_store::BatchRecord],
    subs: &Subscriptions,
) -> Option<Notification> {
    let last = batches.iter().max_by_key(|b| b.id)?;
    let first = batches.iter().min_by_key(|b| b.started_at)?;
    let total: u64 = batches.iter().map(|b| b.total).sum();
    if total == 0 && !subs.empty_batches {
        return None;
    }
    let ok: u64 = batches.iter().map(|b| b.ok).sum();
    let errors: u64 = batches.iter().map(|b| b.errors).sum();
    let mut by_risk: BTreeMap<&str, u64> = BTreeMap::new();
    for b in batches {
        for (k, v) in &b.by_risk {
            *by_risk.entry(k.as_str()).or_default() += v;
        }
    }
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let finished = batches.iter().filter_map(|b| b.finished_at).max();
    Some(Notification::BatchCompleted(BatchSummary {
        batch_id: last.id.to_string(),
        integration: source.to_string(),
        platform: platform.to_string(),
        started_at: fmt(first.started_at),
        finished_at: finished.map(fmt).unwrap_or_default(),
        files_total: count(total),
        files_ok: count(ok),
        files_failed: count(errors),
        by_risk: by_risk
            .into_iter()
            .filter_map(|(k, v)| RiskLevel::parse(k).map(|r| (r, count(v))))
            .collect(),
        dashboard_url: subs
            .dashboard_url
            .as_ref()
            .map(|u| format!("{}/batches/{}", u.trim_end_matches('/'), last.id)),
    }))
}

/// The notifications one failure event yields for one subscriber.
fn messages_for(
    source: &str,
    event: &NotifyEvent,
    subs: &Subscriptions,
) -> Vec<(&'static str, Notification)> {
    let mut out = Vec::new();
    match event {
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

/// The digests of one delivery window: its alerts cut to `max` per message, and every
/// message with the totals of the whole window (every file in it, per risk level) and the
/// window itself, from the earliest analysis among its files to `now` (RFC 3339).
fn digests<L>(alerts: Vec<(FileAlert, String, L)>, now: &str, max: usize) -> Vec<(Digest, Vec<L>)> {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let total = count(alerts.len());
    let mut per_risk: BTreeMap<RiskLevel, usize> = BTreeMap::new();
    for (a, _, _) in &alerts {
        *per_risk.entry(a.risk).or_default() += 1;
    }
    // Most severe first.
    let by_risk: Vec<_> = per_risk
        .into_iter()
        .rev()
        .map(|(r, n)| (r, count(n)))
        .collect();
    let window_start = alerts
        .iter()
        .map(|(_, at, _)| at.as_str())
        .filter(|at| !at.is_empty())
        .min()
        .filter(|at| *at <= now)
        .unwrap_or(now)
        .to_string();
    let mut out = Vec::new();
    let mut alerts = alerts.into_iter().peekable();
    while alerts.peek().is_some() {
        let (a, l): (Vec<FileAlert>, Vec<L>) = alerts
            .by_ref()
            .take(max.max(1))
            .map(|(a, _, l)| (a, l))
            .unzip();
        out.push((
            Digest {
                alerts: a,
                total,
                by_risk: by_risk.clone(),
                window_start: window_start.clone(),
                window_end: now.to_string(),
            },
            l,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpix_model::{RemoteFile, RiskLevel as Wit};

    fn alert(n: usize, risk: Wit) -> FileAlert {
        FileAlert {
            integration: "slack".into(),
            file: RemoteFile {
                id: format!("F{n}"),
                name: format!("{n}.jpg"),
                mime_type: None,
                size: None,
                modified: None,
                version: "1".into(),
                container: None,
                web_url: None,
                path: None,
                properties: Vec::new(),
            },
            risk,
            score: 90,
            summary: String::new(),
            findings: Vec::new(),
        }
    }

    /// 120 files over the level, cut to 50 alerts per message: three messages, each with
    /// the window's totals (120, by risk) and the window from the earliest analysis.
    #[test]
    fn digest_totals_count_every_file_of_the_window_when_alerts_are_cut() {
        let mut items = Vec::new();
        for n in 0..120 {
            let risk = if n % 3 == 0 { Wit::Critical } else { Wit::High };
            let at = format!("2026-12-06T10:{:02}:00Z", 59 - n % 60);
            items.push((alert(n, risk), at, n));
        }
        let now = "2026-12-06T11:00:00Z";
        let out = digests(items, now, 50);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out.iter().map(|(d, _)| d.alerts.len()).collect::<Vec<_>>(),
            vec![50, 50, 20]
        );
        assert_eq!(
            out.iter().map(|(_, l)| l.len()).sum::<usize>(),
            120,
            "every lease rides with a message"
        );
        for (d, _) in &out {
            assert_eq!(d.total, 120);
            assert_eq!(d.by_risk, vec![(Wit::Critical, 40), (Wit::High, 80)]);
            assert_eq!(d.window_start, "2026-12-06T10:00:00Z");
            assert_eq!(d.window_end, now);
        }
    }

    #[test]
    fn a_single_alert_is_a_digest_of_one() {
        let now = "2026-12-06T11:00:00Z";
        let out = digests(vec![(alert(1, Wit::High), String::new(), ())], now, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.total, 1);
        assert_eq!(out[0].0.by_risk, vec![(Wit::High, 1)]);
        assert_eq!(out[0].0.window_start, now);
    }
}
