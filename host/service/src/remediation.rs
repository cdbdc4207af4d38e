//! Remediation: acting on risky files after a sync, as the operator's policy says.
//!
//! Two sides must agree before anything changes on a platform: the plugin declares the
//! actions it can perform (contract 0.2's `remediations`) and the operator enables some of
//! them for an integration with a [`RemediationPolicy`] (which actions, from which risk level,
//! after which delay, and whether only simulated). A policy naming an action the plugin does
//! not declare is refused when it is set, and the host filters again before every call.
//!
//! Threats and failures:
//! - **Doing it twice.** Every real action is recorded in the store's at-most-once log before
//!   the platform is called (intent) and after (outcome), keyed by integration, file, file
//!   version and action. A later sync, a re-analysis or a restart never repeats a done action;
//!   an action a crash interrupted is reported as uncertain and left for an operator, never
//!   retried blindly. Every action, simulated or real, is also an audit entry.
//! - **File bytes in the plugin.** Replace-with-sanitised is done by the host: it fetches the
//!   file as the plugin's `download` says, strips it with the analysis core (which verifies the
//!   copy by analysing it again), asks the plugin only *where* to upload (`remediation.upload`)
//!   and sends the bytes itself, under the plugin's egress grant.
//! - **A surprise.** Simulation is the default; a simulated action calls the plugin with
//!   `simulate` set (or, for a replacement, produces the sanitised copy and uploads nothing)
//!   and records nothing in the at-most-once log, so turning simulation off later acts for
//!   real.
//!
//! **One file, by hand** ([`Host::remediate_file`]): an operator runs one action the plugin
//! declares on one file (the dashboard's file page), simulated or for real, whatever the
//! integration's policy says. The real run goes through the same at-most-once log and is
//! audited under the operator's name; a failure is reported, never kept for a retry (the
//! operator sees it and decides). The host keeps no copy of the listed file beyond its record,
//! so the plugin is handed the file as recorded: id, name, version and web link, a MIME type
//! from the analysed format, and no `properties`, `container` or `path` (a plugin that needs
//! its private properties to act fails with its own error and nothing changes).
//!
//! Delayed actions wait in the store (the host's own key-value namespace `~remediation/<id>`,
//! which no plugin session can read) with the file as it was analysed; each sync runs those
//! that are due, if the file is still at that version. A failed action waits for the platform's
//! Retry-After (or [`RETRY_BASE_SECS`], doubling) and is retried by the first sync after that, at
//! most [`MAX_ATTEMPTS`] times in all.

use proofpix_analysis::{StripOptions, strip};
use proofpix_model::{
    RemediationAction, RemediationKind, RemediationOutcome, RemoteFile, RiskLevel,
};
use proofpix_pipeline::{StageItem, SyncMode, SyncReport, risk_from_pixels};
use proofpix_policy::RemediationPolicy;
use proofpix_runtime::{Content, IntegrationContext, Plugin, Session};
use proofpix_store::{AuditEvent, Begin, Completion, Stage, WritebackKey, stage_queue};
use serde::{Deserialize, Serialize};

use crate::{Host, ServiceError};

/// Attempts per action before it is given up (and reported).
pub const MAX_ATTEMPTS: u32 = 3;
/// Prefix of pending (delayed or retried) actions in the host's namespace.
const PENDING_PREFIX: &str = "pending/";
/// Wait before the first retry of a failed action that came with no Retry-After; doubles per
/// attempt.
pub const RETRY_BASE_SECS: i64 = 60;

/// Why an action failed, and how long the platform asked to be left alone.
#[derive(Debug)]
struct ActionError {
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl From<String> for ActionError {
    fn from(message: String) -> Self {
        ActionError {
            message,
            retry_after: None,
        }
    }
}

impl ActionError {
    fn call(e: &proofpix_runtime::CallError) -> Self {
        ActionError {
            message: e.to_string(),
            retry_after: e.retry_after(),
        }
    }

    /// Seconds until the next attempt: the platform's Retry-After, else exponential back-off.
    fn wait_secs(&self, attempts: u32) -> i64 {
        match self.retry_after {
            Some(d) => i64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(i64::MAX),
            None => RETRY_BASE_SECS.saturating_mul(1 << attempts.saturating_sub(1).min(10)),
        }
    }
}

/// What became of one action on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RemediationStatus {
    /// Simulation: reported, nothing changed.
    Simulated,
    /// Done on the platform.
    Applied,
    /// The plugin ran it and said nothing needed changing.
    NotNeeded,
    /// Waiting for the policy's delay (or for a retry).
    Pending,
    /// Done before; not done again.
    AlreadyDone,
    /// Interrupted by a crash earlier: it may or may not have happened; left for an operator.
    Uncertain,
    /// Failed this time.
    Failed,
    /// Not done because it cannot help: a sanitised copy removes metadata, not what the
    /// picture shows, so a file whose risk comes from its pixels is left to the policy's
    /// other actions (quarantine, restricted sharing, a label).
    NotApplicable,
}

/// One action on one file, as reported by [`Host::sync_and_remediate`] and audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    /// The file's id on the platform.
    pub file_id: String,
    /// The file version acted on.
    pub file_version: String,
    /// The action.
    pub action: RemediationKind,
    /// What became of it.
    pub status: RemediationStatus,
    /// What was done or would be done, or what failed.
    pub detail: String,
    /// Where a quarantined file or its tombstone is.
    pub tombstone: Option<String>,
}

/// An action waiting in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    file: RemoteFile,
    /// Entries parked by older builds spell it capitalised (`"High"`).
    #[serde(deserialize_with = "proofpix_model::deserialize_stored")]
    risk: RiskLevel,
    reason: String,
    action: RemediationKind,
    /// Unix seconds from which it may run.
    due: i64,
    attempts: u32,
}

/// The actions a plugin declares, in the policy's terms.
pub fn declared_actions(plugin: &Plugin) -> Vec<RemediationKind> {
    plugin
        .info()
        .remediations
        .iter()
        .map(|k| RemediationKind::from(*k))
        .collect()
}

/// The host's own key-value namespace for an integration's pending actions. Integration ids
/// are `a-z0-9-`, so no plugin session is ever bound to it.
fn namespace(id: &str) -> String {
    format!("~remediation/{id}")
}

fn log_key(id: &str, file: &RemoteFile, action: RemediationKind) -> WritebackKey {
    WritebackKey {
        integration: namespace(id),
        remote_id: file.id.clone(),
        file_version: file.version.clone(),
        plugin_version: action.as_str().to_string(),
        policy_version: String::new(),
    }
}

fn pending_key(file: &RemoteFile, action: RemediationKind) -> String {
    format!("{PENDING_PREFIX}{}/{}", action.as_str(), file.id)
}

/// Why a sanitised copy cannot help a file whose risk is in its pixels (audited, and shown on
/// the file page).
pub const NOT_FROM_PIXELS: &str = "the risk comes from what the picture shows (text, a code or a face in the pixels), which a copy without metadata still shows; quarantine, restricted sharing or a label can act on it";

/// An operator's request to run one action on one file ([`Host::remediate_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAction {
    /// The action; the plugin must declare it.
    pub action: RemediationKind,
    /// Only report what would be done.
    pub simulate: bool,
    /// The label `apply-label` applies (`None`: the policy's).
    pub label: Option<String>,
}

/// The analysis core's rule for "the risk is in the pixels" ([`proofpix_analysis::risk_from_pixels`])
/// applied to a stored report: its risk level and each finding's source family and severity.
pub fn stored_risk_from_pixels(
    risk: proofpix_analysis::RiskLevel,
    report: &serde_json::Value,
) -> bool {
    use proofpix_analysis::{Family, RiskLevel as Level};
    let findings = report
        .get("findings")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let family = f
                .get("source")
                .and_then(|s| s.get("family"))
                .and_then(|s| s.as_str())
                .and_then(Family::parse)?;
            let severity = f
                .get("severity")
                .and_then(|s| s.as_str())
                .and_then(Level::parse)?;
            Some((family, severity))
        });
    proofpix_analysis::risk_from_pixels(risk, findings)
}

/// The file as the store recorded it, for a plugin call: see the module doc for what is not
/// kept.
fn recorded_file(f: &proofpix_store::FileRecord, report: &serde_json::Value) -> RemoteFile {
    let mime = match report.get("format").and_then(|v| v.as_str()) {
        Some("jpeg") => Some("image/jpeg"),
        Some("png") => Some("image/png"),
        Some("webp") => Some("image/webp"),
        Some("tiff") => Some("image/tiff"),
        Some("gif") => Some("image/gif"),
        Some("heif" | "heic") => Some("image/heic"),
        Some("avif") => Some("image/avif"),
        _ => None,
    };
    RemoteFile {
        id: f.remote_id.clone(),
        name: f.name.clone(),
        mime_type: mime.map(String::from),
        size: None,
        modified: None,
        version: f.version.clone(),
        container: None,
        web_url: f.web_url.clone(),
        path: None,
        properties: Vec::new(),
    }
}

/// Why the file is risky, in a line for the plugin (`high risk: gps, owner`): categories only,
/// never the values.
fn reason_of(risk: proofpix_analysis::RiskLevel, report: &serde_json::Value) -> String {
    let mut categories: Vec<&str> = report
        .get("findings")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("category").and_then(|c| c.as_str()))
        .collect();
    categories.sort_unstable();
    categories.dedup();
    if categories.is_empty() {
        format!("{risk} risk")
    } else {
        format!("{risk} risk: {}", categories.join(", "))
    }
}

impl Host {
    /// Sets (or with `None` removes) an integration's remediation policy after checking it and
    /// that its plugin declares every action it enables.
    ///
    /// # Errors
    /// Unknown integration or plugin, an invalid policy, an action the plugin does not offer.
    pub async fn set_remediation(
        &self,
        id: &str,
        policy: Option<RemediationPolicy>,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let mut record = self.integration(id)?;
        let plugin = self.require_plugin(&record.plugin_id)?;
        let invalid = |problem: String| ServiceError::InvalidConfig {
            integration: id.to_string(),
            problem,
        };
        if let Some(p) = &policy {
            p.validate().map_err(|e| invalid(e.to_string()))?;
            p.check_declared(&plugin.info().id, &declared_actions(&plugin))
                .map_err(|e| invalid(e.to_string()))?;
        }
        record.remediation.clone_from(&policy);
        record.updated_at = self.stages.now();
        let actor = actor.to_string();
        let event = match &policy {
            Some(p) => AuditEvent::new(&actor, "remediation.policy.set", id)
                .details(serde_json::from_str(&p.to_json()).unwrap_or(serde_json::Value::Null)),
            None => AuditEvent::new(&actor, "remediation.policy.remove", id),
        };
        self.stage_blocking(move |s| {
            s.put_integration(&record, &actor)?;
            s.audit(&event).map(|_| ())
        })
        .await
    }

    /// An integration's remediation policy, if it has one.
    ///
    /// # Errors
    /// Unknown integration, or a stored policy that no longer parses.
    pub fn remediation_policy(&self, id: &str) -> Result<Option<RemediationPolicy>, ServiceError> {
        Ok(self.integration(id)?.remediation)
    }

    /// Runs a sync ([`Host::sync`]'s work) and then the remediation its policy asks for: on
    /// every risky file the sync recorded (they wait in the integration's remediation queue,
    /// committed with their results), and the delayed or retried actions now due.
    ///
    /// # Errors
    /// As [`Host::sync`]. Remediation failures are reported per action, not as an error.
    pub async fn sync_and_remediate(
        &self,
        id: &str,
        mode: SyncMode,
    ) -> Result<(SyncReport, Vec<Remediation>), ServiceError> {
        // A queue-only run lists nothing: it claims queued items beside whatever other run
        // works the integration (on a cluster, the other nodes'), so it takes no lease.
        if mode == SyncMode::QueueOnly {
            return self.sync_and_remediate_held(id, mode).await;
        }
        // One sync (listing) of an integration at a time across every daemon sharing the
        // store, and within this one (each run holds the lease under a name of its own).
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let holder = format!(
            "{}#{}",
            self.pipeline().owner(),
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ttl = self.options.pipeline.lease;
        let (integration, name) = (id.to_string(), holder.clone());
        if !self
            .blocking(move |s| s.try_acquire_sync(&integration, &name, ttl))
            .await?
        {
            return Err(ServiceError::SyncElsewhere(id.to_string()));
        }
        // Renewed while the run lasts, so only a node that stops renewing (dead, or cut off
        // from the store) loses it. Stopped, and waited for, before the release: a renewal
        // landing after it would hold the lease for a run that has ended.
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let renew = {
            let (store, integration, name) = (self.store().clone(), id.to_string(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep(ttl / 3) => {}
                    }
                    let (store, i, n) = (store.clone(), integration.clone(), name.clone());
                    let held =
                        tokio::task::spawn_blocking(move || store.try_acquire_sync(&i, &n, ttl))
                            .await;
                    if !matches!(held, Ok(Ok(true))) {
                        tracing::warn!(integration = %integration, "the sync lease could not be renewed; another node may start a run of it");
                    }
                }
            })
        };
        let out = self.sync_and_remediate_held(id, mode).await;
        let _ = stop.send(());
        let _ = renew.await;
        let integration = id.to_string();
        if let Err(e) = self
            .blocking(move |s| s.release_sync(&integration, &holder))
            .await
        {
            // The lease then runs out on its own; until it does, other runs skip this
            // integration.
            tracing::warn!(integration = %id, "cannot release the sync lease: {e}");
        }
        out
    }

    async fn sync_and_remediate_held(
        &self,
        id: &str,
        mode: SyncMode,
    ) -> Result<(SyncReport, Vec<Remediation>), ServiceError> {
        // A run that fails is a failed batch with its reason, whoever ran it (the daemon's
        // run manager or `proofpix integration sync`): see `Host::record_failed_run`.
        let since = self.newest_batch_id();
        let report = match self.sync_only(id, mode).await {
            Ok(report) => report,
            Err(e) => {
                let until = self.newest_batch_id();
                if let Err(not_recorded) = self
                    .record_failed_run(id, since, until, &e.to_string())
                    .await
                {
                    tracing::error!(integration = %id, "cannot record a failed run: {not_recorded}");
                }
                return Err(e);
            }
        };
        let remediations = match self.remediate(id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(integration = %id, error.type = "remediation", "remediation did not run: {e}");
                Vec::new()
            }
        };
        Ok((report, remediations))
    }

    /// The remediation stage: applies an integration's remediation policy to every file in its
    /// remediation queue (each risky result a sync recorded under the policy) and runs the
    /// pending actions that are due. Without a policy, the queue is emptied and nothing done.
    ///
    /// # Errors
    /// Unknown integration, an invalid stored policy, a plugin that cannot be started.
    pub async fn remediate(&self, id: &str) -> Result<Vec<Remediation>, ServiceError> {
        let policy = self.remediation_policy(id)?;
        let queue = stage_queue(id, Stage::Remediate);
        let mut out = Vec::new();
        let mut started = None;
        loop {
            let (q, owner) = (queue.clone(), format!("remediate-{}", std::process::id()));
            let leases = self
                .stage_blocking(move |s| {
                    s.claim(&q, &owner, 500, std::time::Duration::from_secs(600))
                })
                .await?;
            if leases.is_empty() {
                break;
            }
            let Some(policy) = &policy else {
                self.ack_all(leases).await?;
                continue;
            };
            if started.is_none() {
                started = Some(self.context(id, true).await?);
            }
            let Some((plugin, ctx)) = &started else {
                break;
            };
            let mut work = Vec::new();
            let declared = declared_actions(plugin);
            let actions = policy.effective(&declared);
            for lease in &leases {
                let Ok(StageItem::File { result, .. }) =
                    serde_json::from_slice::<StageItem>(&lease.payload)
                else {
                    continue;
                };
                if !policy.applies_to(result.risk) {
                    continue;
                }
                let from_pixels = risk_from_pixels(&result);
                for action in &actions {
                    if from_pixels && *action == RemediationKind::ReplaceWithSanitised {
                        let r = Remediation {
                            file_id: result.file.id.clone(),
                            file_version: result.file.version.clone(),
                            action: *action,
                            status: RemediationStatus::NotApplicable,
                            detail: NOT_FROM_PIXELS.to_string(),
                            tombstone: None,
                        };
                        self.audit_remediation(id, &r, "system").await;
                        out.push(r);
                        continue;
                    }
                    work.push(Pending {
                        file: result.file.clone(),
                        risk: result.risk,
                        reason: result.summary.clone(),
                        action: *action,
                        due: self.stages.now().unix_timestamp()
                            + i64::try_from(policy.delay_secs).unwrap_or(i64::MAX),
                        attempts: 0,
                    });
                }
            }
            out.extend(self.remediate_now(id, plugin, ctx, policy, work).await);
            // Every action's fate is in the at-most-once log, the pending store or the audit
            // log now; the queue items are done.
            self.ack_all(leases).await?;
        }
        let Some(policy) = policy else {
            return Ok(out);
        };
        if !policy.simulate {
            let (plugin, ctx) = match started {
                Some(c) => c,
                None => self.context(id, true).await?,
            };
            let actions = policy.effective(&declared_actions(&plugin));
            let now = self.stages.now().unix_timestamp();
            let due: Vec<Pending> = self
                .due_pending(id, now)
                .await?
                .into_iter()
                .filter(|p| actions.contains(&p.action))
                .collect();
            out.extend(self.remediate_now(id, &plugin, &ctx, &policy, due).await);
        }
        Ok(out)
    }

    /// Runs one action the plugin declares on one file, as an operator asks from the file's
    /// page: `simulate` reports what would be done and changes nothing; otherwise the action
    /// is done at most once per file version (the same log as the policy's), whatever the
    /// integration's policy says (a policy is not needed). Audited under `actor`. A failure is
    /// returned as a [`RemediationStatus::Failed`] outcome, not kept for a retry.
    ///
    /// `label` is the label `apply-label` applies (else the policy's). A sanitised copy of a
    /// file whose risk is in its pixels is [`RemediationStatus::NotApplicable`], as in the
    /// policy's runs.
    ///
    /// # Errors
    /// Unknown integration or file ([`ServiceError::NoIntegration`], [`ServiceError::NoFile`]);
    /// [`ServiceError::ActionRefused`] for an action the plugin does not offer, a file that is
    /// not analysed or was deleted on the platform, or `apply-label` without a label; a plugin
    /// that cannot be started.
    pub async fn remediate_file(
        &self,
        id: &str,
        remote_id: &str,
        request: FileAction,
        actor: &str,
    ) -> Result<Remediation, ServiceError> {
        let record = self.integration(id)?;
        let plugin = self.require_plugin(&record.plugin_id)?;
        let refused = |problem: String| ServiceError::ActionRefused {
            integration: id.to_string(),
            problem,
        };
        let action = request.action;
        // The file first: an unknown file is a 404 whatever the action asked for.
        let (iid, rid) = (id.to_string(), remote_id.to_string());
        let (file, result) = self
            .stage_blocking(move |s| {
                let Some(file) = s.file(&iid, &rid)? else {
                    return Ok((None, None));
                };
                let result = match file.last_result {
                    Some(r) => s.result(r)?,
                    None => None,
                };
                Ok((Some(file), result))
            })
            .await?;
        let file = file.ok_or_else(|| ServiceError::NoFile {
            integration: id.to_string(),
            remote_id: remote_id.to_string(),
        })?;
        if !declared_actions(&plugin).contains(&action) {
            return Err(refused(format!(
                "plugin {} does not offer the action {}",
                plugin.info().id,
                action.as_str()
            )));
        }
        if file.status == proofpix_store::FileStatus::Removed {
            return Err(refused(format!(
                "the platform reported file {remote_id:?} deleted; there is nothing to act on"
            )));
        }
        let Some(result) = result.filter(|r| r.integration == id) else {
            return Err(refused(format!(
                "file {remote_id:?} has not been analysed yet; act on it after its analysis"
            )));
        };
        let policy = self.remediation_policy(id)?;
        let label = request
            .label
            .filter(|l| !l.trim().is_empty())
            .or_else(|| policy.as_ref().and_then(|p| p.label.clone()));
        if action == RemediationKind::ApplyLabel && label.is_none() {
            return Err(refused(
                "apply-label needs a label: give one, or set it in the integration's remediation policy".into(),
            ));
        }
        let report: serde_json::Value =
            serde_json::from_str(&result.report_json).unwrap_or(serde_json::Value::Null);
        let risk = result.risk;
        let pending = Pending {
            file: recorded_file(&file, &report),
            risk,
            reason: reason_of(result.risk, &report),
            action,
            due: 0,
            attempts: 0,
        };
        if action == RemediationKind::ReplaceWithSanitised
            && stored_risk_from_pixels(result.risk, &report)
        {
            let r = Runner::result(
                &pending,
                RemediationStatus::NotApplicable,
                NOT_FROM_PIXELS.to_string(),
                None,
            );
            self.audit_remediation(id, &r, actor).await;
            return Ok(r);
        }
        // The operator's request as a one-action policy: no delay, their label.
        let one = RemediationPolicy {
            actions: vec![action],
            min_risk: proofpix_analysis::RiskLevel::None,
            delay_secs: 0,
            simulate: request.simulate,
            label,
        };
        let (plugin, ctx) = self.context(id, true).await?;
        let mut runner = Runner {
            host: self,
            id,
            plugin: &plugin,
            ctx: &ctx,
            policy: &one,
            session: None,
            actor,
            retry: false,
        };
        Ok(if request.simulate {
            runner.simulate(&pending).await
        } else {
            runner.run(pending).await
        })
    }

    async fn ack_all(&self, leases: Vec<proofpix_store::Lease>) -> Result<(), ServiceError> {
        self.stage_blocking(move |s| {
            for l in &leases {
                s.ack(l)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs (or simulates, or keeps for later) actions on one integration.
    async fn remediate_now(
        &self,
        id: &str,
        plugin: &Plugin,
        ctx: &IntegrationContext,
        policy: &RemediationPolicy,
        work: Vec<Pending>,
    ) -> Vec<Remediation> {
        if work.is_empty() {
            return Vec::new();
        }
        if let Err(e) = policy.check_declared(&plugin.info().id, &declared_actions(plugin)) {
            // The plugin was upgraded to a version that no longer offers an action.
            tracing::warn!(integration = %id, "{e}; the action is skipped");
        }
        let mut out = Vec::new();
        let mut runner = Runner {
            host: self,
            id,
            plugin,
            ctx,
            policy,
            session: None,
            actor: "system",
            retry: true,
        };
        let now = self.stages.now().unix_timestamp();
        for p in work {
            if policy.simulate {
                out.push(runner.simulate(&p).await);
            } else if p.due > now {
                out.push(self.park(id, &p, "waiting for the policy's delay").await);
            } else {
                out.push(runner.run(p).await);
            }
        }
        out
    }

    /// Stores an action to run later.
    async fn park(&self, id: &str, p: &Pending, why: &str) -> Remediation {
        let key = pending_key(&p.file, p.action);
        let value = serde_json::to_vec(p).unwrap_or_default();
        let ns = namespace(id);
        let stored = self
            .stage_blocking(move |s| s.kv_set(&ns, &key, &value, None).map(|_| ()))
            .await;
        let (status, detail) = match stored {
            Ok(()) => (RemediationStatus::Pending, why.to_string()),
            Err(e) => (
                RemediationStatus::Failed,
                format!("cannot keep the action for later: {e}"),
            ),
        };
        Remediation {
            file_id: p.file.id.clone(),
            file_version: p.file.version.clone(),
            action: p.action,
            status,
            detail,
            tombstone: None,
        }
    }

    /// Removes and returns the pending actions that are due and still about the file's
    /// current version.
    async fn due_pending(&self, id: &str, now: i64) -> Result<Vec<Pending>, ServiceError> {
        let ns = namespace(id);
        let integration = id.to_string();
        self.stage_blocking(move |s| {
            let mut due = Vec::new();
            for key in s.kv_keys(&ns, PENDING_PREFIX)? {
                // kv_keys lists by prefix; a key of another namespace reads as None here.
                let Some(bytes) = s.kv_get(&ns, &key)? else {
                    continue;
                };
                let Ok(p) = serde_json::from_slice::<Pending>(&bytes) else {
                    s.kv_delete(&ns, &key)?;
                    continue;
                };
                if p.due > now {
                    continue;
                }
                s.kv_delete(&ns, &key)?;
                let current = s.file(&integration, &p.file.id)?;
                if current.is_some_and(|f| f.version == p.file.version) {
                    due.push(p);
                }
            }
            Ok(due)
        })
        .await
    }

    /// Drops an integration's pending actions (when it is deleted).
    pub(crate) async fn forget_remediation(&self, id: &str) {
        let ns = namespace(id);
        let r = self
            .stage_blocking(move |s| {
                for key in s.kv_keys(&ns, PENDING_PREFIX)? {
                    s.kv_delete(&ns, &key)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(integration = %id, "cannot drop pending remediation: {e}");
        }
    }

    async fn audit_remediation(&self, id: &str, r: &Remediation, actor: &str) {
        let outcome = match r.status {
            RemediationStatus::Failed => "failed",
            RemediationStatus::Uncertain => "uncertain",
            _ => "ok",
        };
        let event = AuditEvent::new(actor, format!("remediation.{}", r.action.as_str()), id)
            .outcome(outcome)
            .details(serde_json::json!({
                "file": r.file_id,
                "version": r.file_version,
                "status": r.status,
                "detail": r.detail,
                "tombstone": r.tombstone,
            }));
        if let Err(e) = self
            .stage_blocking(move |s| s.audit(&event).map(|_| ()))
            .await
        {
            tracing::error!("cannot append to the audit log: {e}");
        }
    }
}

/// Runs actions for one integration, with one plugin session reopened after a failure.
struct Runner<'a> {
    host: &'a Host,
    id: &'a str,
    plugin: &'a Plugin,
    ctx: &'a IntegrationContext,
    policy: &'a RemediationPolicy,
    session: Option<Session>,
    /// Who the audit entries name: `system` for the policy, the operator for a file-page run.
    actor: &'a str,
    /// Whether a failed action is kept for a retry by a later sync (the policy's runs), or only
    /// reported (an operator's).
    retry: bool,
}

impl Runner<'_> {
    async fn session(&mut self) -> Result<&mut Session, String> {
        if self.session.as_ref().is_none_or(Session::is_poisoned) {
            self.session = Some(
                self.plugin
                    .session(self.ctx)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        self.session
            .as_mut()
            .ok_or_else(|| "no plugin session".to_string())
    }

    fn result(
        p: &Pending,
        status: RemediationStatus,
        detail: String,
        tombstone: Option<String>,
    ) -> Remediation {
        Remediation {
            file_id: p.file.id.clone(),
            file_version: p.file.version.clone(),
            action: p.action,
            status,
            detail,
            tombstone,
        }
    }

    /// Reports what would be done; changes nothing and records nothing in the at-most-once
    /// log.
    async fn simulate(&mut self, p: &Pending) -> Remediation {
        let delay = match self.policy.delay_secs {
            0 => String::new(),
            s => format!(" after {s} s"),
        };
        let r = match p.action {
            RemediationKind::ReplaceWithSanitised => match self.sanitised_copy(&p.file).await {
                Ok((bytes, removed)) => Self::result(
                    p,
                    RemediationStatus::Simulated,
                    format!(
                        "would replace the file{delay} with a sanitised copy of {} bytes (removing {})",
                        bytes.len(),
                        removed.join(", ")
                    ),
                    None,
                ),
                Err(e) => Self::result(p, RemediationStatus::Failed, e.message, None),
            },
            _ => match self.call(p, true).await {
                Ok(o) => Self::result(
                    p,
                    RemediationStatus::Simulated,
                    format!("{}{delay}", o.description),
                    o.tombstone,
                ),
                Err(e) => Self::result(p, RemediationStatus::Failed, e.message, None),
            },
        };
        self.host.audit_remediation(self.id, &r, self.actor).await;
        r
    }

    /// Does an action for real, at most once per (file version, action).
    async fn run(&mut self, mut p: Pending) -> Remediation {
        let host = self.host;
        let key = log_key(self.id, &p.file, p.action);
        let k = key.clone();
        let begin = host.stage_blocking(move |s| s.begin_writeback(&k)).await;
        let r = match begin {
            Err(e) => Self::result(
                &p,
                RemediationStatus::Failed,
                format!("the store failed: {e}"),
                None,
            ),
            Ok(Begin::AlreadyDone { at }) => Self::result(
                &p,
                RemediationStatus::AlreadyDone,
                format!("done at {at}; not done again"),
                None,
            ),
            Ok(Begin::InFlight { .. } | Begin::Uncertain { .. }) => Self::result(
                &p,
                RemediationStatus::Uncertain,
                "an earlier attempt was interrupted; it may have happened, so it is left for an operator".into(),
                None,
            ),
            Ok(Begin::Proceed) => {
                let done = match p.action {
                    RemediationKind::ReplaceWithSanitised => self.replace(&p.file).await,
                    _ => self.call(&p, false).await,
                };
                let completion = match &done {
                    Ok(_) => Completion::Written,
                    Err(e) => Completion::Failed {
                        error: e.message.clone(),
                    },
                };
                let k = key.clone();
                if let Err(e) = host
                    .stage_blocking(move |s| s.complete_writeback(&k, &completion))
                    .await
                {
                    tracing::error!(integration = %self.id, "cannot record a remediation outcome: {e}");
                }
                match done {
                    Ok(o) if o.applied => Self::result(
                        &p,
                        RemediationStatus::Applied,
                        o.description,
                        o.tombstone,
                    ),
                    Ok(o) => Self::result(
                        &p,
                        RemediationStatus::NotNeeded,
                        o.description,
                        o.tombstone,
                    ),
                    Err(e) => {
                        p.attempts += 1;
                        if self.retry && p.attempts < MAX_ATTEMPTS {
                            // Not before the platform's Retry-After (or the back-off): the
                            // first sync after that runs it.
                            let wait = e.wait_secs(p.attempts);
                            p.due = host.stages.now().unix_timestamp().saturating_add(wait);
                            let why = format!(
                                "{}; retried in {wait} s or more, at the first sync after that",
                                e.message
                            );
                            let parked = host.park(self.id, &p, &why).await;
                            host.audit_remediation(self.id, &parked, self.actor).await;
                            return parked;
                        }
                        let detail = if self.retry {
                            format!("{}; given up after {} attempts", e.message, p.attempts)
                        } else {
                            e.message
                        };
                        Self::result(&p, RemediationStatus::Failed, detail, None)
                    }
                }
            }
        };
        host.audit_remediation(self.id, &r, self.actor).await;
        r
    }

    /// `remediation.remediate` for an action other than the replacement.
    async fn call(
        &mut self,
        p: &Pending,
        simulate: bool,
    ) -> Result<RemediationOutcome, ActionError> {
        let action = RemediationAction {
            kind: p.action,
            file: p.file.clone(),
            risk: p.risk,
            reason: p.reason.clone(),
            label: match p.action {
                RemediationKind::ApplyLabel => self.policy.label.clone(),
                _ => None,
            },
            simulate,
        };
        let session = self.session().await?;
        session
            .remediate(&action)
            .await
            .map_err(|e| ActionError::call(&e))
    }

    /// Fetches the file as the plugin's `download` says and strips it; returns the verified
    /// copy and what was removed.
    async fn sanitised_copy(
        &mut self,
        file: &RemoteFile,
    ) -> Result<(Vec<u8>, Vec<String>), ActionError> {
        let session = self.session().await?;
        let spec = session
            .download(file)
            .await
            .map_err(|e| ActionError::call(&e))?;
        let fetched = |e: proofpix_runtime::FetchError| ActionError {
            message: format!("download: {e}"),
            retry_after: e.retry_after(),
        };
        let bytes = match session
            .fetcher()
            .open_answer(&spec)
            .await
            .map_err(fetched)?
        {
            Content::Local { mut file, len, .. } => {
                if len > proofpix_analysis::strip::MAX_STRIP_BYTES {
                    return Err(format!(
                        "no sanitised copy: the file has {len} bytes, over the strip limit"
                    )
                    .into());
                }
                // Read the descriptor the host opened (below the mount, no links followed),
                // never the path again.
                tokio::task::spawn_blocking(move || {
                    let mut bytes = Vec::new();
                    let limit = proofpix_analysis::strip::MAX_STRIP_BYTES;
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(&mut file, limit),
                        &mut bytes,
                    )
                    .map(|_| bytes)
                })
                .await
                .map_err(|e| format!("internal error: {e}"))?
                .map_err(|e| format!("cannot read the file: {e}"))?
            }
            Content::Remote(remote) => remote
                .read_all(proofpix_analysis::strip::MAX_STRIP_BYTES)
                .await
                .map_err(fetched)?,
        };
        let stripped = tokio::task::spawn_blocking(move || strip(&bytes, &StripOptions::default()))
            .await
            .map_err(|e| format!("internal error: {e}"))?
            .map_err(|e| format!("no sanitised copy: {e}"))?;
        Ok((stripped.bytes, stripped.removed))
    }

    /// Replaces the file with its sanitised copy: the plugin says where, the host uploads.
    async fn replace(&mut self, file: &RemoteFile) -> Result<RemediationOutcome, ActionError> {
        let (bytes, removed) = self.sanitised_copy(file).await?;
        let content_type = file
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let size = bytes.len() as u64;
        let session = self.session().await?;
        let request = session
            .upload_request(file, size, &content_type)
            .await
            .map_err(|e| ActionError::call(&e))?;
        let status = session
            .fetcher()
            .upload(&request, bytes)
            .await
            .map_err(|e| ActionError {
                message: format!("uploading the sanitised copy failed: {e}"),
                retry_after: e.retry_after(),
            })?;
        Ok(RemediationOutcome {
            applied: true,
            description: format!(
                "replaced with a sanitised copy of {size} bytes (HTTP {status}; removed {})",
                removed.join(", ")
            ),
            tombstone: None,
        })
    }
}
