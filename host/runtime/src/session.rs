//! Sessions: a live plugin instance bound to one integration, and the guarded
//! calls into it.
//!
//! Opening a session builds the sandbox from the effective grants (WASI with
//! only the granted mounts, the egress-checked HTTP import with the
//! integration's credentials), a store with the memory limiter, the epoch
//! callback that enforces the CPU budget and (in the test harness) fuel, and
//! instantiates the pre-linked component.
//!
//! Every call goes through [`Session::call`]: the per-call budgets are reset,
//! the call runs under the wall-clock timeout, and anything but a normal
//! return (trap, timeout, CPU or memory limit) poisons the session. Calls that
//! reach the platform are retried once after a credential refresh when the
//! plugin answers `unauthorized`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_policy::{EffectiveGrants, Limits};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use proofpix_model::{
    CheckReport, EventOutcome, FileResult, InboundRequest, Notification, Page, PluginError,
    RemediationAction, RemediationKind, RemediationOutcome, RemoteFile, WriteOutcome,
};

use crate::bindings::latest::exports::proofpix::plugin::manifest::{AuthScheme, PluginInfo};
use crate::bindings::latest::proofpix::plugin::types as wire_types;
use crate::bindings::{latest, since_v0_1_0 as v01, since_v0_2_0 as v02};
use crate::context::IntegrationContext;
use crate::contract::{DownloadAnswer, HttpRequest};
use crate::conv::Conv;
use crate::egress_http::{EgressHttp, IntegrationHttp};
use crate::error::{CallError, LoadError};
use crate::fetch::ContentFetcher;
use crate::host_state::{CapturedOutput, CapturedStream, HostState, LogBudget, MemoryLimiter};
use crate::metrics;
use crate::model::wire;
use crate::plugin::{FUEL_PER_CALL, Plugin, Pre, plugin_secrets, visible_config};

/// An instance's exports, per contract version.
enum Bindings {
    V0_1(v01::Connector),
    V0_2(v02::Connector),
    V0_3(latest::Connector),
}

/// What a guarded call produced before it is judged: the timeout's verdict,
/// wasmtime's (a trap), then the plugin's own answer, in the newest contract's types.
type Guarded<T> =
    Result<wasmtime::Result<Result<T, wire_types::PluginError>>, tokio::time::error::Elapsed>;

/// Whether a call is made again after a credential refresh when the plugin
/// answers `unauthorized`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnUnauthorized {
    /// Refresh the credentials and call once more.
    RefreshAndRetry,
    /// Report it (webhooks are retried by the platform; remediation is
    /// never repeated behind the operator's back).
    Report,
}

/// Calls an export on whichever contract version the instance was built
/// against. The method names are the same in every version; an older
/// version's answer is converted to the latest types. The second form gives
/// the older versions their own call, for arguments that need converting.
macro_rules! on_any_version {
    ($bindings:expr, |$b:ident| $call:expr) => {
        on_any_version!($bindings, |$b| $call, $call)
    };
    ($bindings:expr, |$b:ident| $latest:expr, $older:expr) => {
        match $bindings {
            Bindings::V0_3($b) => $latest.await,
            Bindings::V0_2($b) => to_latest($older.await),
            Bindings::V0_1($b) => to_latest($older.await),
        }
    };
}

/// One call into the plugin under every guard: the per-call budgets reset
/// ([`Session::begin`]), the wall-clock timeout around the export, and the
/// outcome judged by [`Session::finish`]. With
/// [`OnUnauthorized::RefreshAndRetry`], an `unauthorized` answer refreshes
/// the credentials and the call is made once more. The body sees the
/// instance's bindings as `$b` and its store as `$store`.
///
/// (A macro, not a method taking an async closure: the futures of async
/// closures that borrow their arguments are not yet provably `Send`, and the
/// daemon runs these calls on a work-stealing runtime.)
macro_rules! guarded_call {
    ($session:ident, $op:expr, $on_unauthorized:expr, |$b:ident, $store:ident| $body:expr) => {{
        let mut retried = false;
        loop {
            $session.begin()?;
            let limit = $session.limits.call_timeout;
            let (bindings, $store) = (&$session.bindings, &mut $session.store);
            let guarded = tokio::time::timeout(limit, async {
                let $b = bindings;
                $body
            })
            .await;
            let result = $session.finish($op, guarded);
            if !retried
                && $on_unauthorized == OnUnauthorized::RefreshAndRetry
                && $session.refreshed_after(&result).await
            {
                retried = true;
                continue;
            }
            break result;
        }
    }};
}

impl Plugin {
    /// Opens a session for an integration.
    ///
    /// # Errors
    /// Grant problems (a mount directory that does not exist) and
    /// instantiation failures.
    pub async fn session(&self, ctx: &IntegrationContext) -> Result<Session, LoadError> {
        let limits = self.runtime().inner.limits.clone();
        let grants = self.effective_grants(ctx)?;
        let stdout = Arc::new(Mutex::new(CapturedOutput {
            budget: limits.max_stdio_bytes_per_call,
            ..Default::default()
        }));
        let wasi = self.sandbox(&grants, &stdout)?;
        let http = self.egress(&grants, ctx, &limits)?;
        let fetcher = ContentFetcher::new(http.clone(), grants.mounts.clone(), self.label_arc());

        let mut ctx = ctx.clone();
        ctx.config = visible_config(&ctx.config, self.secret_fields());
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            ctx,
            http,
            limits: limits.clone(),
            plugin: self.label_arc(),
            secret_fields: self.secret_fields_arc(),
            stdout,
            logs: LogBudget {
                left: limits.max_log_bytes_per_call,
                dropped_lines: 0,
            },
            call_started: Instant::now(),
            host_wait: Duration::ZERO,
            cpu_exhausted: false,
        };
        let mut store = self.guarded_store(state)?;
        let started = Instant::now();
        store.data_mut().call_started = started;
        let bindings = self.instantiate(&mut store, &limits).await?;
        Ok(Session {
            plugin: self.clone(),
            store,
            bindings,
            limits,
            fetcher,
            grants,
            poisoned: false,
            stats: SessionStats {
                instantiate: started.elapsed(),
                ..SessionStats::default()
            },
        })
    }

    /// WASI with nothing but captured stdio and the granted mounts: no
    /// sockets, no name lookup, no environment.
    fn sandbox(
        &self,
        grants: &EffectiveGrants,
        stdout: &Arc<Mutex<CapturedOutput>>,
    ) -> Result<WasiCtx, LoadError> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(CapturedStream(stdout.clone()))
            .stderr(CapturedStream(stdout.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // A granted mount is a local folder: its file operations (open, a small write,
            // rename) run on the calling thread instead of a hand-off to the blocking pool and
            // back for each one, which cost more than the operation itself (issue 13's
            // profile: 83 futex calls per file through local-folder). A mount on a slow
            // network filesystem then holds a runtime thread for each operation.
            .allow_blocking_current_thread(!grants.mounts.is_empty());
        let refused = |reason: String| LoadError::Grant {
            plugin: self.label().to_string(),
            reason,
        };
        for m in &grants.mounts {
            if !m.host_path.is_dir() {
                return Err(refused(format!(
                    "the directory for {} ({}) does not exist or is not a directory",
                    m.guest_path,
                    m.host_path.display()
                )));
            }
            let perms = if m.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&m.host_path, &m.guest_path, perms)
                .map_err(|e| {
                    refused(format!(
                        "cannot open {} for {}: {e}",
                        m.host_path.display(),
                        m.guest_path
                    ))
                })?;
        }
        Ok(wasi.build())
    }

    /// The HTTP import: every hop checked against the granted endpoints,
    /// credentials injected by the host where the manifest declared them.
    fn egress(
        &self,
        grants: &EffectiveGrants,
        ctx: &IntegrationContext,
        limits: &Limits,
    ) -> Result<EgressHttp, LoadError> {
        let info: &PluginInfo = self.info();
        let injection_header = match &info.auth {
            AuthScheme::ApiKey(k) => Some(k.header.clone()),
            AuthScheme::None => None,
            _ => Some("authorization".to_string()),
        };
        let client = IntegrationHttp::new(grants.egress.networks, limits.http_timeout)
            .map_err(|e| LoadError::Engine(format!("cannot build the HTTP client: {e}")))?;
        Ok(EgressHttp::new(
            client,
            grants.egress.clone(),
            grants.credential_hosts.clone(),
            ctx.credentials.clone(),
            injection_header,
            limits.max_redirects,
            plugin_secrets(info, ctx),
        )
        .with_redirect_hosts(grants.redirect_hosts.clone()))
    }

    /// A store with the memory limiter, the CPU budget checked on every
    /// epoch tick (time in host calls excluded) and, in the test harness,
    /// fuel.
    fn guarded_store(&self, state: HostState) -> Result<Store<HostState>, LoadError> {
        let runtime = &self.runtime().inner;
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|mut cx| {
            let s = cx.data_mut();
            if s.guest_time() > s.limits.cpu_time {
                s.cpu_exhausted = true;
                return Err(wasmtime::Error::msg("CPU time limit reached"));
            }
            // Yield so the wall-clock timeout around the call can fire and
            // other tasks on this worker make progress.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        if runtime.fuel {
            store
                .set_fuel(FUEL_PER_CALL)
                .map_err(|e| LoadError::Engine(e.to_string()))?;
        }
        Ok(store)
    }

    /// Instantiates the pre-linked component under the call timeout.
    async fn instantiate(
        &self,
        store: &mut Store<HostState>,
        limits: &Limits,
    ) -> Result<Bindings, LoadError> {
        let instantiated = tokio::time::timeout(limits.call_timeout, async {
            Ok::<_, wasmtime::Error>(match self.pre() {
                Pre::V0_1(p) => Bindings::V0_1(p.instantiate_async(&mut *store).await?),
                Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(&mut *store).await?),
                Pre::V0_3(p) => Bindings::V0_3(p.instantiate_async(&mut *store).await?),
            })
        })
        .await
        .map_err(|_| {
            LoadError::Engine(format!("plugin {}: instantiation timed out", self.label()))
        })?;
        instantiated.map_err(|e| match store.data().limiter.refused {
            Some(requested) => LoadError::Call(CallError::MemoryLimit {
                plugin: self.label().to_string(),
                op: "instantiate",
                requested,
                limit: limits.memory_bytes,
            }),
            None => LoadError::Link(format!("plugin {}: {e:#}", self.label())),
        })
    }
}

/// Counters for one session, for metrics and the plugin test harness.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Time to instantiate.
    pub instantiate: Duration,
    /// Calls made.
    pub calls: u64,
    /// Highest linear-memory total reached, bytes.
    pub memory_high_water: u64,
    /// Duration of the last call.
    pub last_call: Duration,
    /// Fuel consumed (when metering is on).
    pub fuel_consumed: u64,
    /// Log and stdio bytes the plugin produced.
    pub log_bytes: u64,
    /// Log lines and stdio bytes dropped past the budgets.
    pub log_dropped: u64,
}

/// A live plugin instance bound to one integration.
pub struct Session {
    plugin: Plugin,
    store: Store<HostState>,
    bindings: Bindings,
    limits: Arc<Limits>,
    fetcher: ContentFetcher,
    grants: EffectiveGrants,
    poisoned: bool,
    stats: SessionStats,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("plugin", &self.plugin)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The effective grants this session runs under.
    pub fn grants(&self) -> &EffectiveGrants {
        &self.grants
    }

    /// Fetches file content as the plugin's download specs describe, under
    /// the same egress policy and credentials.
    pub fn fetcher(&self) -> &ContentFetcher {
        &self.fetcher
    }

    /// Whether the instance failed and must be replaced.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Counters so far.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The contract version of this instance.
    pub fn contract_version(&self) -> &str {
        self.plugin.contract_version()
    }

    /// `describe`.
    ///
    /// # Errors
    /// Traps, limits and timeouts.
    pub async fn describe(&mut self) -> Result<PluginInfo, CallError> {
        let info = guarded_call!(self, "describe", OnUnauthorized::Report, |b, store| {
            // `describe` cannot fail in any version: wrap it as an answer.
            match b {
                Bindings::V0_3(b) => b.proofpix_plugin_manifest().call_describe(store).await,
                Bindings::V0_2(b) => Ok(b
                    .proofpix_plugin_manifest()
                    .call_describe(store)
                    .await?
                    .conv()),
                Bindings::V0_1(b) => Ok(b
                    .proofpix_plugin_manifest()
                    .call_describe(store)
                    .await?
                    .conv()),
            }
            .map(Ok)
        })?;
        if json_len(&info) > self.limits.max_string_bytes {
            return Err(self.too_large("describe", "a manifest larger than the string cap".into()));
        }
        Ok(info)
    }

    /// `validate-config`.
    ///
    /// # Errors
    /// The plugin's verdict, traps, limits and timeouts.
    pub async fn validate_config(&mut self) -> Result<(), CallError> {
        guarded_call!(
            self,
            "validate-config",
            OnUnauthorized::Report,
            |b, store| {
                on_any_version!(b, |b| b
                    .proofpix_plugin_manifest()
                    .call_validate_config(&mut *store))
            }
        )
    }

    /// `check`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn check(&mut self) -> Result<CheckReport, CallError> {
        let report = guarded_call!(
            self,
            "check",
            OnUnauthorized::RefreshAndRetry,
            |b, store| {
                on_any_version!(b, |b| b.proofpix_plugin_source().call_check(&mut *store))
            }
        )?;
        Ok(report.conv())
    }

    /// `discover`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, pages over the limits, and traps, limits
    /// and timeouts.
    pub async fn discover(&mut self, cursor: Option<&str>) -> Result<Page, CallError> {
        let page: Page = guarded_call!(
            self,
            "discover",
            OnUnauthorized::RefreshAndRetry,
            |b, store| {
                on_any_version!(b, |b| b
                    .proofpix_plugin_source()
                    .call_discover(&mut *store, cursor))
            }
        )?
        .conv();
        if page.files.len() > self.limits.max_page_files {
            let what = format!(
                "a page of {} files, over the limit of {}",
                page.files.len(),
                self.limits.max_page_files
            );
            return Err(self.too_large("discover", what));
        }
        let cap = self.limits.max_string_bytes;
        let oversized = page.cursor.as_ref().is_some_and(|c| c.len() > cap)
            || page.files.iter().any(|f| longest_string(f) > cap)
            || page.removed.iter().any(|r| r.len() > cap);
        if oversized {
            return Err(self.too_large("discover", format!("a value longer than {cap} bytes")));
        }
        if let Some(f) = page.files.iter().find(|f| f.id.is_empty()) {
            let name: String = f.name.chars().take(80).collect();
            let what = format!("a file with an empty id (named {name:?})");
            return Err(self.too_large("discover", what));
        }
        Ok(page)
    }

    /// `download`, retried once after a credential refresh on `unauthorized`:
    /// where the bytes are, or (contract 0.3) that they are not ready yet.
    /// Older plugins' answers are always ready.
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn download(&mut self, file: &RemoteFile) -> Result<DownloadAnswer, CallError> {
        let file: wire_types::RemoteFile = wire(file);
        let file = &file;
        guarded_call!(
            self,
            "download",
            OnUnauthorized::RefreshAndRetry,
            |b, store| {
                on_any_version!(
                    b,
                    |b| b.proofpix_plugin_source().call_download(&mut *store, file),
                    b.proofpix_plugin_source()
                        .call_download(&mut *store, &file.clone().conv())
                )
            }
        )
    }

    /// `write-back`, retried once after a credential refresh on
    /// `unauthorized` (the plugin reports per-file outcomes; an error for the
    /// whole call means nothing was written).
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn write_back(
        &mut self,
        results: &[FileResult],
    ) -> Result<Vec<WriteOutcome>, CallError> {
        let wired: Vec<wire_types::FileResult> = results.iter().map(wire).collect();
        let count = results.len();
        let results = &wired[..];
        let outcomes: Vec<WriteOutcome> = guarded_call!(
            self,
            "write-back",
            OnUnauthorized::RefreshAndRetry,
            |b, store| {
                on_any_version!(
                    b,
                    |b| b
                        .proofpix_plugin_source()
                        .call_write_back(&mut *store, results),
                    b.proofpix_plugin_source()
                        .call_write_back(&mut *store, &results.to_vec().conv())
                )
            }
        )?
        .conv();
        if outcomes.len() > count {
            let what = format!("{} outcomes for {count} results", outcomes.len());
            return Err(self.too_large("write-back", what));
        }
        Ok(outcomes)
    }

    /// `notify`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn notify(&mut self, event: &Notification) -> Result<(), CallError> {
        let event: latest::exports::proofpix::plugin::notifier::Notification = wire(event);
        let event = &event;
        guarded_call!(
            self,
            "notify",
            OnUnauthorized::RefreshAndRetry,
            |b, store| {
                on_any_version!(
                    b,
                    |b| b.proofpix_plugin_notifier().call_notify(&mut *store, event),
                    b.proofpix_plugin_notifier()
                        .call_notify(&mut *store, &event.clone().conv())
                )
            }
        )
    }

    /// `events.handle`. Not retried: the platform retries webhooks itself.
    ///
    /// # Errors
    /// As the plugin reports them (`unauthorized` for a failed signature),
    /// and traps, limits and timeouts.
    pub async fn handle_event(
        &mut self,
        request: &InboundRequest,
    ) -> Result<EventOutcome, CallError> {
        let request: latest::exports::proofpix::plugin::events::InboundRequest = wire(request);
        let request = &request;
        let outcome: EventOutcome =
            guarded_call!(self, "events", OnUnauthorized::Report, |b, store| {
                on_any_version!(
                    b,
                    |b| b.proofpix_plugin_events().call_handle(&mut *store, request),
                    b.proofpix_plugin_events()
                        .call_handle(&mut *store, &request.clone().conv())
                )
            })?
            .conv();
        if outcome.response.body.len() > self.limits.max_string_bytes
            || outcome.changed.len() > self.limits.max_page_files
        {
            return Err(
                self.too_large("events", "a response or change list over the limits".into())
            );
        }
        Ok(outcome)
    }

    /// `remediation.upload` (contract 0.2): where to send the sanitised copy.
    ///
    /// # Errors
    /// A 0.1 plugin (no remediation), the plugin's errors, traps, limits.
    pub async fn upload_request(
        &mut self,
        file: &RemoteFile,
        size: u64,
        content_type: &str,
    ) -> Result<HttpRequest, CallError> {
        self.require_remediation(RemediationKind::ReplaceWithSanitised)?;
        let file: wire_types::RemoteFile = wire(file);
        let file = &file;
        guarded_call!(
            self,
            "remediation-upload",
            OnUnauthorized::Report,
            |b, store| match b {
                Bindings::V0_3(b) => {
                    b.proofpix_plugin_remediation()
                        .call_upload(&mut *store, file, size, content_type)
                        .await
                }
                Bindings::V0_2(b) => to_latest(
                    b.proofpix_plugin_remediation()
                        .call_upload(&mut *store, &file.clone().conv(), size, content_type)
                        .await,
                ),
                Bindings::V0_1(_) => Ok(Err(no_remediation_in_0_1())),
            }
        )
    }

    /// `remediation.remediate` (contract 0.2).
    ///
    /// # Errors
    /// A 0.1 plugin (no remediation), the plugin's errors, traps, limits.
    pub async fn remediate(
        &mut self,
        action: &RemediationAction,
    ) -> Result<RemediationOutcome, CallError> {
        self.require_remediation(action.kind)?;
        let action: latest::exports::proofpix::plugin::remediation::Action = wire(action);
        let action = &action;
        let outcome = guarded_call!(
            self,
            "remediate",
            OnUnauthorized::Report,
            |b, store| match b {
                Bindings::V0_3(b) => {
                    b.proofpix_plugin_remediation()
                        .call_remediate(&mut *store, action)
                        .await
                }
                Bindings::V0_2(b) => to_latest(
                    b.proofpix_plugin_remediation()
                        .call_remediate(&mut *store, &action.clone().conv())
                        .await,
                ),
                Bindings::V0_1(_) => Ok(Err(no_remediation_in_0_1())),
            }
        )?;
        Ok(outcome.conv())
    }

    /// Resets the per-call budgets; refuses a poisoned instance.
    fn begin(&mut self) -> Result<(), CallError> {
        if self.poisoned {
            return Err(CallError::Poisoned {
                plugin: self.plugin.label().to_string(),
            });
        }
        let s = self.store.data_mut();
        s.call_started = Instant::now();
        s.host_wait = Duration::ZERO;
        s.cpu_exhausted = false;
        s.logs = LogBudget {
            left: self.limits.max_log_bytes_per_call,
            dropped_lines: 0,
        };
        self.store.set_epoch_deadline(1);
        if self.plugin.fuel_metered() {
            let _ = self.store.set_fuel(FUEL_PER_CALL);
        }
        metrics::PLUGIN_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Turns the guarded outcome of a call into the call's result, discarding
    /// the instance on anything but a normal return.
    fn finish<T>(&mut self, op: &'static str, guarded: Guarded<T>) -> Result<T, CallError> {
        let plugin = self.plugin.label().to_string();
        let elapsed = self.store.data().call_started.elapsed();
        self.stats.calls += 1;
        self.stats.last_call = elapsed;
        metrics::record_call(elapsed);
        let high = self.store.data().limiter.high_water;
        self.stats.memory_high_water = self.stats.memory_high_water.max(high);
        metrics::MEMORY_HIGH_WATER.fetch_max(high, std::sync::atomic::Ordering::Relaxed);
        if self.plugin.fuel_metered() {
            let left = self.store.get_fuel().unwrap_or(0);
            self.stats.fuel_consumed += FUEL_PER_CALL.saturating_sub(left);
        }
        self.drain_output();
        let failure = match guarded {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(error))) => {
                return Err(CallError::Plugin {
                    plugin,
                    op,
                    error: error.conv(),
                });
            }
            Err(_) => CallError::Timeout {
                plugin,
                op,
                limit: self.limits.call_timeout,
            },
            Ok(Err(trap)) => {
                let data = self.store.data();
                if data.cpu_exhausted {
                    CallError::CpuLimit {
                        plugin,
                        op,
                        limit: self.limits.cpu_time,
                    }
                } else if let Some(requested) = data.limiter.refused {
                    CallError::MemoryLimit {
                        plugin,
                        op,
                        requested,
                        limit: self.limits.memory_bytes,
                    }
                } else {
                    CallError::Trap {
                        plugin,
                        op,
                        message: trap_message(&trap),
                    }
                }
            }
        };
        self.poisoned = true;
        metrics::PLUGIN_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.plugin.record_failure(failure.to_string());
        tracing::warn!(plugin = %self.plugin.label(), integration = %self.store.data().ctx.id, error.type = "plugin_failure", "{failure}");
        Err(failure)
    }

    /// Moves captured stdout/stderr into the log, capped, and notes drops.
    fn drain_output(&mut self) {
        let data = self.store.data_mut();
        let dropped_lines = data.logs.dropped_lines;
        let (bytes, dropped) = match data.stdout.lock() {
            Ok(mut out) => out.take(self.limits.max_stdio_bytes_per_call),
            Err(_) => (Vec::new(), 0),
        };
        let plugin = &*data.plugin;
        let integration = data.ctx.id.as_str();
        self.stats.log_bytes +=
            bytes.len() as u64 + (self.limits.max_log_bytes_per_call - data.logs.left) as u64;
        self.stats.log_dropped += dropped + dropped_lines;
        for line in String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            tracing::info!(target: "plugin", plugin, integration, stream = "stdio", "{line}");
        }
        if dropped > 0 || dropped_lines > 0 {
            tracing::warn!(
                plugin,
                integration,
                dropped_stdio_bytes = dropped,
                dropped_log_lines = dropped_lines,
                "plugin output over its per-call budget was dropped"
            );
        }
    }

    /// An answer over the output limits: the instance is discarded.
    fn too_large(&mut self, op: &'static str, what: String) -> CallError {
        self.poisoned = true;
        CallError::OutputLimit {
            plugin: self.plugin.label().to_string(),
            op,
            what,
        }
    }

    /// A plugin is never asked for a remediation it did not declare in its
    /// manifest (the host's policy check should have stopped it already; this
    /// keeps a host bug from reaching the plugin), and a 0.1 plugin has no
    /// remediation at all.
    fn require_remediation(&self, kind: RemediationKind) -> Result<(), CallError> {
        let refused = |error| CallError::Plugin {
            plugin: self.plugin.label().to_string(),
            op: "remediation",
            error,
        };
        if matches!(self.bindings, Bindings::V0_1(_)) {
            return Err(refused(PluginError::Fatal(format!(
                "remediation needs contract 0.2; this plugin was built against {}",
                self.plugin.contract_version()
            ))));
        }
        if self.plugin.info().remediations.contains(&kind.conv()) {
            return Ok(());
        }
        Err(refused(PluginError::Fatal(format!(
            "the plugin does not declare the remediation {kind:?}; the host does not ask for it"
        ))))
    }

    /// On `unauthorized`, refreshes the credentials once and says whether
    /// the call should be made again.
    async fn refreshed_after<T>(&mut self, r: &Result<T, CallError>) -> bool {
        let Err(CallError::Plugin {
            error: PluginError::Unauthorized(_),
            ..
        }) = r
        else {
            return false;
        };
        let Some(creds) = self.store.data().ctx.credentials.clone() else {
            return false;
        };
        let rejected = self.store.data().http.last_injected();
        match creds.refresh(rejected).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(plugin = %self.plugin.label(), integration = %self.store.data().ctx.id, "credential refresh after unauthorized failed: {e}");
                false
            }
        }
    }
}

/// Never reached: [`Session::require_remediation`] refuses 0.1 plugins
/// before the call. Kept as an answer rather than a panic.
fn no_remediation_in_0_1() -> wire_types::PluginError {
    wire_types::PluginError::Fatal("a 0.1 plugin has no remediation export".into())
}

/// An older version's answer as the latest types.
fn to_latest<T: Conv<U>, U, E: Conv<wire_types::PluginError>>(
    r: wasmtime::Result<Result<T, E>>,
) -> wasmtime::Result<Result<U, wire_types::PluginError>> {
    Ok(r?.conv())
}

/// The longest string a plugin put in a file description.
fn longest_string(f: &RemoteFile) -> usize {
    [
        Some(&f.id),
        Some(&f.name),
        Some(&f.version),
        f.mime_type.as_ref(),
        f.modified.as_ref(),
        f.container.as_ref(),
        f.web_url.as_ref(),
        f.path.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(String::len)
    .chain(f.properties.iter().map(|(k, v)| k.len() + v.len()))
    .max()
    .unwrap_or(0)
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// The trap's own message, without wasm backtrace noise.
fn trap_message(e: &wasmtime::Error) -> String {
    let mut msg = e.to_string();
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        msg = trap.to_string();
    }
    // A Rust guest's panic message goes to stderr (captured in the log); the
    // trap itself is `unreachable`.
    if msg.contains("unreachable") {
        msg = "the plugin panicked or hit `unreachable`; its message, if any, is in the log".into();
    }
    msg.lines().next().unwrap_or_default().to_string()
}
