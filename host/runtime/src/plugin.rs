//! Loaded plugins and the sessions that call them.
//!
//! A [`Plugin`] is compiled once (or loaded from the cache) and pre-linked
//! (`InstancePre`); its manifest is read once with `describe` and validated.
//! A [`Session`] is a live instance bound to one integration: its grants,
//! mounts, credentials and state. Sessions are cheap (microseconds with the
//! pooling allocator) and disposable: after a trap, a timeout or a limit, the
//! session refuses further calls and the caller opens a new one, so a failed
//! instance never serves another call.
//!
//! Every call runs under the same guards: an epoch deadline checked every
//! tick against the CPU budget (time in host calls excluded), a wall-clock
//! timeout around the whole call, the memory limiter, output budgets for
//! logs and stdio, and size checks on what the plugin returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_policy::grants::{DeclaredEndpoint, DeclaredMount};
use proofpix_policy::template::{self, TemplateError};
use proofpix_policy::{EffectiveGrants, Limits};
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::bindings::latest::exports::proofpix::plugin::events::{EventOutcome, InboundRequest};
use crate::bindings::latest::exports::proofpix::plugin::manifest::{
    AuthScheme, FieldKind, PluginInfo,
};
use crate::bindings::latest::exports::proofpix::plugin::notifier::Notification;
use crate::bindings::latest::exports::proofpix::plugin::source::{
    CheckReport, DownloadAnswer, Page, WriteOutcome,
};
use crate::bindings::latest::proofpix::plugin::types::{FileResult, PluginError, RemoteFile};
use crate::bindings::{latest, since_v0_1_0 as v01, since_v0_2_0 as v02};
use crate::conv::Conv;

/// A pre-linked component, per contract version.
#[derive(Clone)]
enum Pre {
    V0_1(v01::ConnectorPre<HostState>),
    V0_2(v02::ConnectorPre<HostState>),
    V0_3(latest::ConnectorPre<HostState>),
}

/// An instance's exports, per contract version.
enum Bindings {
    V0_1(v01::Connector),
    V0_2(v02::Connector),
    V0_3(latest::Connector),
}
use crate::cache::CacheOutcome;
use crate::context::IntegrationContext;
use crate::egress_http::{EgressHttp, IntegrationHttp, PluginSecrets};
use crate::engine::Runtime;
use crate::error::{CallError, LoadError};
use crate::fetch::ContentFetcher;
use crate::host_state::{CapturedOutput, CapturedStream, HostState, LogBudget, MemoryLimiter};
use crate::metrics;

/// The contract package every connector exports.
const CONTRACT_PACKAGE: &str = "proofpix:plugin";
/// Fuel given per call when fuel metering is on (the plugin test harness).
const FUEL_PER_CALL: u64 = 10_000_000_000;

struct PluginInner {
    runtime: Runtime,
    pre: Pre,
    info: PluginInfo,
    label: Arc<str>,
    content_hash: String,
    contract_version: String,
    secret_fields: Arc<[String]>,
    size_bytes: usize,
    cache: CacheOutcome,
    /// Recent runtime failures (traps, limits, timeouts) across every
    /// session of this plugin version: the host's circuit breaker reads it.
    failures: Mutex<std::collections::VecDeque<(Instant, String)>>,
}

/// Failures remembered per plugin version.
const MAX_REMEMBERED_FAILURES: usize = 64;

/// A compiled, linked and described plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.inner.info.id)
            .field("version", &self.inner.info.version)
            .field("content_hash", &self.inner.content_hash)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Compiles (or loads from the cache), links and describes a plugin.
    ///
    /// # Errors
    /// Invalid components, components that are not connectors or import
    /// something the host does not provide, unsupported contract versions,
    /// and invalid manifests.
    pub async fn load(&self, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let content_hash = hex::encode(Sha256::digest(wasm));
        let engine = &self.inner.engine;
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::Invalid(
                "the file does not start with the \\0asm magic bytes of a WebAssembly binary"
                    .into(),
            ));
        }
        // wasmtime validates its input, but a compiler bug must cost this one
        // plugin, not the daemon.
        let compiled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.inner.cache {
                Some(cache) => cache.load_or_compile(engine, wasm, &content_hash),
                None => wasmtime::component::Component::new(engine, wasm)
                    .map(|c| (c, CacheOutcome::Disabled)),
            }))
            .map_err(|_| LoadError::Invalid("the compiler panicked on this input".into()))?;
        let (component, cache) =
            compiled.map_err(|e| LoadError::Invalid(one_line(&format!("{e:#}"))))?;

        let contract_version = contract_version(engine, &component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let not_a_connector = |e: wasmtime::Error| LoadError::NotAConnector(format!("{e:#}"));
        let pre = if contract_version.starts_with("0.1.") {
            Pre::V0_1(v01::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else if contract_version.starts_with("0.2.") {
            Pre::V0_2(v02::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else {
            Pre::V0_3(latest::ConnectorPre::new(pre).map_err(not_a_connector)?)
        };

        // Describe in a throwaway instance with no grants and no config.
        let probe = Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre: pre.clone(),
                info: placeholder_info(),
                label: Arc::from(format!("(loading {})", &content_hash[..12])),
                content_hash: content_hash.clone(),
                contract_version: contract_version.clone(),
                secret_fields: Arc::from(Vec::new()),
                size_bytes: wasm.len(),
                cache,
                failures: Mutex::default(),
            }),
        };
        let mut session = probe.session(&IntegrationContext::new("describe")).await?;
        let info = session.describe().await?;
        validate_manifest(&info)?;
        let secret_fields: Vec<String> = info
            .config
            .iter()
            .filter(|f| f.secret)
            .map(|f| f.name.clone())
            .collect();
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre,
                label: Arc::from(format!("'{}' {}", info.id, info.version)),
                info,
                content_hash,
                contract_version,
                secret_fields: Arc::from(secret_fields),
                size_bytes: wasm.len(),
                cache,
                failures: Mutex::default(),
            }),
        })
    }
}

impl Plugin {
    /// The manifest.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// `'id' version`, as used in messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// SHA-256 of the component bytes, hex.
    pub fn content_hash(&self) -> &str {
        &self.inner.content_hash
    }

    /// The contract version the plugin was built against.
    pub fn contract_version(&self) -> &str {
        &self.inner.contract_version
    }

    /// Size of the component in bytes.
    pub fn size_bytes(&self) -> usize {
        self.inner.size_bytes
    }

    /// Runtime failures (traps, limits, timeouts) of this plugin version in
    /// the last `within`, newest last.
    pub fn recent_failures(&self, within: Duration) -> Vec<String> {
        let now = Instant::now();
        self.inner
            .failures
            .lock()
            .map(|f| {
                f.iter()
                    .filter(|(t, _)| now.duration_since(*t) <= within)
                    .map(|(_, m)| m.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record_failure(&self, message: String) {
        if let Ok(mut f) = self.inner.failures.lock() {
            if f.len() >= MAX_REMEMBERED_FAILURES {
                f.pop_front();
            }
            f.push_back((Instant::now(), message));
        }
    }

    /// Whether loading hit the compiled-artifact cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// Resolves the plugin's endpoint templates for an integration and
    /// intersects them with the operator's grant.
    ///
    /// # Errors
    /// Unparsable grants or endpoints, and granted mounts without a directory.
    pub fn effective_grants(&self, ctx: &IntegrationContext) -> Result<EffectiveGrants, LoadError> {
        let info = &self.inner.info;
        let auth = ctx
            .credentials
            .as_ref()
            .map(|c| c.context())
            .unwrap_or_default();
        let config = visible_config(&ctx.config, &self.inner.secret_fields);
        let mut endpoints = Vec::new();
        let mut redirect_targets = Vec::new();
        let mut unresolved = Vec::new();
        for ep in &info.endpoints {
            for target in &ep.redirect_targets {
                match template::resolve(target, &config, &auth) {
                    Ok(url) => redirect_targets.push(DeclaredEndpoint {
                        name: ep.name.clone(),
                        url,
                        credentials: false,
                    }),
                    Err(TemplateError::Missing(what)) => unresolved.push(format!(
                        "a redirect target of endpoint {} waits for {{{what}}}",
                        ep.name
                    )),
                    Err(e) => {
                        return Err(LoadError::Manifest {
                            plugin: self.label().to_string(),
                            reason: format!("redirect target of endpoint {}: {e}", ep.name),
                        });
                    }
                }
            }
            match template::resolve(&ep.url, &config, &auth) {
                Ok(url) => endpoints.push(DeclaredEndpoint {
                    name: ep.name.clone(),
                    url,
                    credentials: ep.credentials,
                }),
                Err(TemplateError::Missing(what)) => {
                    unresolved.push(format!("endpoint {} waits for {{{what}}}", ep.name))
                }
                Err(e) => {
                    return Err(LoadError::Manifest {
                        plugin: self.label().to_string(),
                        reason: format!("endpoint {}: {e}", ep.name),
                    });
                }
            }
        }
        let mounts: Vec<DeclaredMount> = info
            .filesystem
            .iter()
            .map(|m| DeclaredMount {
                guest_path: m.guest_path.clone(),
                config_field: m.config_field.clone(),
                writable: m.writable,
            })
            .collect();
        let mut grants = EffectiveGrants::resolve_with_redirects(
            &endpoints,
            &redirect_targets,
            &mounts,
            &config,
            &ctx.grant,
        )
        .map_err(|e| LoadError::Grant {
            plugin: self.label().to_string(),
            reason: e.to_string(),
        })?;
        grants.not_granted.extend(unresolved);
        Ok(grants)
    }

    /// Opens a session for an integration.
    ///
    /// # Errors
    /// Grant problems (a mount directory that does not exist) and
    /// instantiation failures.
    pub async fn session(&self, ctx: &IntegrationContext) -> Result<Session, LoadError> {
        let inner = &self.inner;
        let runtime = &inner.runtime.inner;
        let limits = runtime.limits.clone();
        let grants = self.effective_grants(ctx)?;

        let stdout = Arc::new(Mutex::new(CapturedOutput {
            budget: limits.max_stdio_bytes_per_call,
            ..Default::default()
        }));
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
        for m in &grants.mounts {
            if !m.host_path.is_dir() {
                return Err(LoadError::Grant {
                    plugin: self.label().to_string(),
                    reason: format!(
                        "the directory for {} ({}) does not exist or is not a directory",
                        m.guest_path,
                        m.host_path.display()
                    ),
                });
            }
            let perms = if m.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&m.host_path, &m.guest_path, perms)
                .map_err(|e| LoadError::Grant {
                    plugin: self.label().to_string(),
                    reason: format!(
                        "cannot open {} for {}: {e}",
                        m.host_path.display(),
                        m.guest_path
                    ),
                })?;
        }

        let injection_header = match &inner.info.auth {
            AuthScheme::ApiKey(k) => Some(k.header.clone()),
            AuthScheme::None => None,
            _ => Some("authorization".to_string()),
        };
        let http = IntegrationHttp::new(grants.egress.networks, limits.http_timeout)
            .map_err(|e| LoadError::Engine(format!("cannot build the HTTP client: {e}")))?;
        let egress = EgressHttp::new(
            http,
            grants.egress.clone(),
            grants.credential_hosts.clone(),
            ctx.credentials.clone(),
            injection_header,
            limits.max_redirects,
            plugin_secrets(&inner.info, ctx),
        )
        .with_redirect_hosts(grants.redirect_hosts.clone());
        let fetcher =
            ContentFetcher::new(egress.clone(), grants.mounts.clone(), inner.label.clone());

        let mut ctx = ctx.clone();
        ctx.config = visible_config(&ctx.config, &inner.secret_fields);
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            ctx,
            http: egress,
            limits: limits.clone(),
            plugin: inner.label.clone(),
            secret_fields: inner.secret_fields.clone(),
            stdout,
            logs: LogBudget {
                left: limits.max_log_bytes_per_call,
                dropped_lines: 0,
            },
            call_started: Instant::now(),
            host_wait: Duration::ZERO,
            cpu_exhausted: false,
        };
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
        let started = Instant::now();
        store.data_mut().call_started = started;
        let bindings = tokio::time::timeout(limits.call_timeout, async {
            Ok::<_, wasmtime::Error>(match &inner.pre {
                Pre::V0_1(p) => Bindings::V0_1(p.instantiate_async(&mut store).await?),
                Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(&mut store).await?),
                Pre::V0_3(p) => Bindings::V0_3(p.instantiate_async(&mut store).await?),
            })
        })
        .await
        .map_err(|_| LoadError::Engine(format!("plugin {}: instantiation timed out", inner.label)))?
        .map_err(|e| {
            if store.data().limiter.refused.is_some() {
                LoadError::Call(CallError::MemoryLimit {
                    plugin: inner.label.to_string(),
                    op: "instantiate",
                    requested: store.data().limiter.refused.unwrap_or_default(),
                    limit: limits.memory_bytes,
                })
            } else {
                LoadError::Link(format!("plugin {}: {e:#}", inner.label))
            }
        })?;
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

type Raw<T> = Result<wasmtime::Result<Result<T, PluginError>>, tokio::time::error::Elapsed>;

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
        if self.plugin.inner.runtime.inner.fuel {
            let _ = self.store.set_fuel(FUEL_PER_CALL);
        }
        metrics::PLUGIN_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Turns the raw outcome of a call into the call's result, discarding the
    /// instance on anything but a normal return.
    fn finish<T>(&mut self, op: &'static str, raw: Raw<T>) -> Result<T, CallError> {
        let plugin = self.plugin.label().to_string();
        let elapsed = self.store.data().call_started.elapsed();
        self.stats.calls += 1;
        self.stats.last_call = elapsed;
        metrics::record_call(elapsed);
        let high = self.store.data().limiter.high_water;
        self.stats.memory_high_water = self.stats.memory_high_water.max(high);
        metrics::MEMORY_HIGH_WATER.fetch_max(high, std::sync::atomic::Ordering::Relaxed);
        if self.plugin.inner.runtime.inner.fuel {
            let left = self.store.get_fuel().unwrap_or(0);
            self.stats.fuel_consumed += FUEL_PER_CALL.saturating_sub(left);
        }
        self.drain_output();
        let result = match raw {
            Err(_) => Err(CallError::Timeout {
                plugin,
                op,
                limit: self.limits.call_timeout,
            }),
            Ok(Err(trap)) => {
                let data = self.store.data();
                Err(if data.cpu_exhausted {
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
                })
            }
            Ok(Ok(Err(error))) => return Err(CallError::Plugin { plugin, op, error }),
            Ok(Ok(Ok(value))) => return Ok(value),
        };
        self.poisoned = true;
        metrics::PLUGIN_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = &result {
            self.plugin.record_failure(e.to_string());
            tracing::warn!(plugin = %self.plugin.label(), integration = %self.store.data().ctx.id, error.type = "plugin_failure", "{e}");
        }
        result
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

    fn too_large(&mut self, op: &'static str, what: String) -> CallError {
        self.poisoned = true;
        CallError::OutputLimit {
            plugin: self.plugin.label().to_string(),
            op,
            what,
        }
    }

    /// `describe`.
    ///
    /// # Errors
    /// Traps, limits and timeouts.
    pub async fn describe(&mut self) -> Result<PluginInfo, CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => tokio::time::timeout(
                limit,
                b.proofpix_plugin_manifest().call_describe(&mut self.store),
            )
            .await
            .map(|r| r.map(Ok)),
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let info = b
                        .proofpix_plugin_manifest()
                        .call_describe(&mut self.store)
                        .await?;
                    Ok(Ok(info.conv()))
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    let info = b
                        .proofpix_plugin_manifest()
                        .call_describe(&mut self.store)
                        .await?;
                    Ok(Ok(info.conv()))
                })
                .await
            }
        };
        let info = self.finish("describe", raw)?;
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
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_manifest()
                        .call_validate_config(&mut self.store),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_manifest()
                        .call_validate_config(&mut self.store)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_manifest()
                        .call_validate_config(&mut self.store)
                        .await)
                })
                .await
            }
        };
        self.finish("validate-config", raw)
    }

    /// `check`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn check(&mut self) -> Result<CheckReport, CallError> {
        let r = self.check_once().await;
        if self.should_refresh(&r).await {
            self.check_once().await
        } else {
            r
        }
    }

    async fn check_once(&mut self) -> Result<CheckReport, CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_source().call_check(&mut self.store),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_source().call_check(&mut self.store).await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_source().call_check(&mut self.store).await)
                })
                .await
            }
        };
        self.finish("check", raw)
    }

    /// `discover`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, pages over the limits, and traps, limits
    /// and timeouts.
    pub async fn discover(&mut self, cursor: Option<&str>) -> Result<Page, CallError> {
        let r = self.discover_once(cursor).await;
        if self.should_refresh(&r).await {
            self.discover_once(cursor).await
        } else {
            r
        }
    }

    async fn discover_once(&mut self, cursor: Option<&str>) -> Result<Page, CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_source()
                        .call_discover(&mut self.store, cursor),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_source()
                        .call_discover(&mut self.store, cursor)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    up(b.proofpix_plugin_source()
                        .call_discover(&mut self.store, cursor)
                        .await)
                })
                .await
            }
        };
        let page = self.finish("discover", raw)?;
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
            || page.files.iter().any(|f| file_strings_len(f) > cap)
            || page.removed.iter().any(|r| r.len() > cap);
        if oversized {
            return Err(self.too_large("discover", format!("a value longer than {cap} bytes")));
        }
        if let Some(f) = page.files.iter().find(|f| f.id.is_empty()) {
            let what = format!(
                "a file with an empty id (named {:?})",
                truncate(&f.name, 80)
            );
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
        let r = self.download_once(file).await;
        if self.should_refresh(&r).await {
            self.download_once(file).await
        } else {
            r
        }
    }

    async fn download_once(&mut self, file: &RemoteFile) -> Result<DownloadAnswer, CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_source()
                        .call_download(&mut self.store, file),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let file = file.clone().conv();
                    up(b.proofpix_plugin_source()
                        .call_download(&mut self.store, &file)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    let file = file.clone().conv();
                    up(b.proofpix_plugin_source()
                        .call_download(&mut self.store, &file)
                        .await)
                })
                .await
            }
        };
        self.finish("download", raw)
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
        let r = self.write_back_once(results).await;
        if self.should_refresh(&r).await {
            self.write_back_once(results).await
        } else {
            r
        }
    }

    async fn write_back_once(
        &mut self,
        results: &[FileResult],
    ) -> Result<Vec<WriteOutcome>, CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_source()
                        .call_write_back(&mut self.store, results),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let results: Vec<_> = results.to_vec().conv();
                    up(b.proofpix_plugin_source()
                        .call_write_back(&mut self.store, &results)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    let results: Vec<_> = results.to_vec().conv();
                    up(b.proofpix_plugin_source()
                        .call_write_back(&mut self.store, &results)
                        .await)
                })
                .await
            }
        };
        let outcomes = self.finish("write-back", raw)?;
        if outcomes.len() > results.len() {
            let what = format!("{} outcomes for {} results", outcomes.len(), results.len());
            return Err(self.too_large("write-back", what));
        }
        Ok(outcomes)
    }

    /// `notify`, retried once after a credential refresh on `unauthorized`.
    ///
    /// # Errors
    /// As the plugin reports them, and traps, limits and timeouts.
    pub async fn notify(&mut self, event: &Notification) -> Result<(), CallError> {
        let r = self.notify_once(event).await;
        if self.should_refresh(&r).await {
            self.notify_once(event).await
        } else {
            r
        }
    }

    async fn notify_once(&mut self, event: &Notification) -> Result<(), CallError> {
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_notifier()
                        .call_notify(&mut self.store, event),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let event = event.clone().conv();
                    up(b.proofpix_plugin_notifier()
                        .call_notify(&mut self.store, &event)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    let event = event.clone().conv();
                    up(b.proofpix_plugin_notifier()
                        .call_notify(&mut self.store, &event)
                        .await)
                })
                .await
            }
        };
        self.finish("notify", raw)
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
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_events()
                        .call_handle(&mut self.store, request),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let request = request.clone().conv();
                    up(b.proofpix_plugin_events()
                        .call_handle(&mut self.store, &request)
                        .await)
                })
                .await
            }
            Bindings::V0_1(b) => {
                tokio::time::timeout(limit, async {
                    let request = request.clone().conv();
                    up(b.proofpix_plugin_events()
                        .call_handle(&mut self.store, &request)
                        .await)
                })
                .await
            }
        };
        let outcome = self.finish("events", raw)?;
        if outcome.response.body.len() > self.limits.max_string_bytes
            || outcome.changed.len() > self.limits.max_page_files
        {
            return Err(
                self.too_large("events", "a response or change list over the limits".into())
            );
        }
        Ok(outcome)
    }

    /// The contract version of this instance.
    pub fn contract_version(&self) -> &str {
        self.plugin.contract_version()
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
    ) -> Result<crate::contract::HttpRequest, CallError> {
        if !matches!(self.bindings, Bindings::V0_1(_)) {
            self.require_declared(crate::contract::RemediationKind::ReplaceWithSanitised)?;
        }
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_remediation().call_upload(
                        &mut self.store,
                        file,
                        size,
                        content_type,
                    ),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let file = file.clone().conv();
                    up(b.proofpix_plugin_remediation()
                        .call_upload(&mut self.store, &file, size, content_type)
                        .await)
                })
                .await
            }
            Bindings::V0_1(_) => return Err(self.not_in_contract("remediation")),
        };
        self.finish("remediation-upload", raw)
    }

    /// `remediation.remediate` (contract 0.2).
    ///
    /// # Errors
    /// A 0.1 plugin (no remediation), the plugin's errors, traps, limits.
    pub async fn remediate(
        &mut self,
        action: &crate::contract::RemediationAction,
    ) -> Result<crate::contract::RemediationOutcome, CallError> {
        if !matches!(self.bindings, Bindings::V0_1(_)) {
            self.require_declared(action.kind)?;
        }
        self.begin()?;
        let limit = self.limits.call_timeout;
        let raw = match &self.bindings {
            Bindings::V0_3(b) => {
                tokio::time::timeout(
                    limit,
                    b.proofpix_plugin_remediation()
                        .call_remediate(&mut self.store, action),
                )
                .await
            }
            Bindings::V0_2(b) => {
                tokio::time::timeout(limit, async {
                    let action = action.clone().conv();
                    up(b.proofpix_plugin_remediation()
                        .call_remediate(&mut self.store, &action)
                        .await)
                })
                .await
            }
            Bindings::V0_1(_) => return Err(self.not_in_contract("remediation")),
        };
        self.finish("remediate", raw)
    }

    /// A plugin is never asked for a remediation it did not declare in its
    /// manifest: the host's policy check should have stopped it already, and
    /// this keeps a host bug from reaching the plugin.
    fn require_declared(&self, kind: crate::contract::RemediationKind) -> Result<(), CallError> {
        if self.plugin.info().remediations.contains(&kind) {
            return Ok(());
        }
        Err(CallError::Plugin {
            plugin: self.plugin.label().to_string(),
            op: "remediation",
            error: PluginError::Fatal(format!(
                "the plugin does not declare the remediation {kind:?}; the host does not ask for it"
            )),
        })
    }

    fn not_in_contract(&self, what: &str) -> CallError {
        CallError::Plugin {
            plugin: self.plugin.label().to_string(),
            op: "remediation",
            error: PluginError::Fatal(format!(
                "{what} needs contract 0.2; this plugin was built against {}",
                self.plugin.contract_version()
            )),
        }
    }

    /// On `unauthorized`, refreshes credentials once and says whether to
    /// retry.
    async fn should_refresh<T>(&mut self, r: &Result<T, CallError>) -> bool {
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

/// Config the guest may read: without values of fields declared secret.
fn visible_config(
    config: &BTreeMap<String, String>,
    secret_fields: &[String],
) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(k, _)| !secret_fields.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn file_strings_len(f: &RemoteFile) -> usize {
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

/// Collapses a multi-line error into one line of at most 300 characters.
fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&joined, 300)
}

/// An older version's call result as the latest types.
fn up<T: Conv<U>, U, E: Conv<PluginError>>(
    r: wasmtime::Result<Result<T, E>>,
) -> wasmtime::Result<Result<U, PluginError>> {
    Ok(r?.conv())
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
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

/// Reads the contract version from the component's exports and checks the
/// host serves it.
fn contract_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<String, LoadError> {
    let ty = component.component_type();
    let manifest = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .find(|name| name.starts_with(&format!("{CONTRACT_PACKAGE}/manifest@")))
        .ok_or_else(|| {
            LoadError::NotAConnector(format!(
                "it exports no {CONTRACT_PACKAGE}/manifest interface"
            ))
        })?;
    let version = manifest
        .rsplit_once('@')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let mut parts = version
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(u64::MAX));
    let found = (
        parts.next().unwrap_or(u64::MAX),
        parts.next().unwrap_or(u64::MAX),
        parts.next().unwrap_or(u64::MAX),
    );
    let served = [
        (v01::MIN_VERSION, v01::MAX_VERSION),
        (v02::MIN_VERSION, v02::MAX_VERSION),
        (latest::MIN_VERSION, latest::MAX_VERSION),
    ];
    if !served
        .iter()
        .any(|(min, max)| found >= *min && found <= *max)
    {
        return Err(LoadError::UnsupportedVersion {
            found: version,
            supported: "0.1.x, 0.2.x and 0.3.x".into(),
        });
    }
    Ok(version)
}

fn placeholder_info() -> PluginInfo {
    PluginInfo {
        id: String::new(),
        version: String::new(),
        display_name: String::new(),
        platform: String::new(),
        description: String::new(),
        capabilities: Vec::new(),
        config: Vec::new(),
        auth: AuthScheme::None,
        endpoints: Vec::new(),
        filesystem: Vec::new(),
        write_back_batch_size: 1,
        write_back_idempotent: false,
        remediations: Vec::new(),
        oauth_dialect: None,
    }
}

/// The integration's secrets as the HTTP import may use them: the sealed
/// URL fields (declared secret, kind url, not an auth scheme's field) and
/// every secret value, declared or used by the credentials, for scrubbing.
fn plugin_secrets(info: &PluginInfo, ctx: &IntegrationContext) -> PluginSecrets {
    let auth_fields = auth_secret_fields(&info.auth);
    let sealed_urls = info
        .config
        .iter()
        .filter(|f| {
            f.secret && matches!(f.kind, FieldKind::Url) && !auth_fields.contains(&f.name.as_str())
        })
        .filter_map(|f| Some((f.name.clone(), ctx.secrets.get(&f.name)?.clone())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let values = ctx
        .secrets
        .values()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    PluginSecrets {
        sealed_urls,
        values,
    }
}

/// The secret fields an auth scheme sends itself (never usable as a URL).
fn auth_secret_fields(auth: &AuthScheme) -> Vec<&str> {
    match auth {
        AuthScheme::None => vec![],
        AuthScheme::ApiKey(k) => vec![k.secret_field.as_str()],
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            o.client_secret_field.iter().map(String::as_str).collect()
        }
        AuthScheme::Oauth2Password(p) => p
            .oauth
            .client_secret_field
            .iter()
            .chain(p.password_suffix_field.iter())
            .map(String::as_str)
            .chain([p.password_field.as_str()])
            .collect(),
        AuthScheme::JwtBearer(j) => vec![j.private_key_field.as_str()],
    }
}

/// Checks a manifest is usable: ids and names well-formed, fields the auth
/// scheme names exist with the right secrecy.
fn validate_manifest(info: &PluginInfo) -> Result<(), LoadError> {
    let fail = |reason: String| LoadError::Manifest {
        plugin: format!("'{}' {}", info.id, info.version),
        reason,
    };
    let id_ok = !info.id.is_empty()
        && info.id.len() <= 64
        && info
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(fail(format!(
            "id {:?} must be 1-64 characters of a-z, 0-9 and -",
            info.id
        )));
    }
    if info.version.is_empty() || info.version.len() > 64 {
        return Err(fail("version must be set".into()));
    }
    if info.write_back_batch_size == 0 {
        return Err(fail("write-back-batch-size must be at least 1".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for f in &info.config {
        if f.name.is_empty()
            || !f
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(fail(format!(
                "config field {:?} must be snake_case",
                f.name
            )));
        }
        if !names.insert(f.name.as_str()) {
            return Err(fail(format!("config field {:?} is declared twice", f.name)));
        }
    }
    let field = |name: &str, secret: bool| -> Result<(), LoadError> {
        match info.config.iter().find(|f| f.name == name) {
            None => Err(fail(format!(
                "its auth scheme names config field {name:?}, which it does not declare"
            ))),
            Some(f) if f.secret != secret => Err(fail(format!(
                "config field {name:?} must be declared {} for its auth scheme",
                if secret { "secret" } else { "not secret" }
            ))),
            Some(_) => Ok(()),
        }
    };
    match &info.auth {
        AuthScheme::None => {}
        AuthScheme::ApiKey(k) => field(&k.secret_field, true)?,
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            field(&o.client_id_field, false)?;
            if let Some(s) = &o.client_secret_field {
                field(s, true)?;
            }
        }
        AuthScheme::Oauth2Password(p) => {
            field(&p.oauth.client_id_field, false)?;
            if let Some(s) = &p.oauth.client_secret_field {
                field(s, true)?;
            }
            field(&p.username_field, false)?;
            field(&p.password_field, true)?;
            if let Some(s) = &p.password_suffix_field {
                field(s, true)?;
            }
        }
        AuthScheme::JwtBearer(j) => {
            field(&j.issuer_field, false)?;
            if let Some(s) = &j.subject_field {
                field(s, false)?;
            }
            field(&j.private_key_field, true)?;
        }
    }
    for m in &info.filesystem {
        if !m.guest_path.starts_with('/') || m.guest_path.contains("..") {
            return Err(fail(format!(
                "filesystem guest path {:?} must be absolute",
                m.guest_path
            )));
        }
        field(&m.config_field, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod secret_placement_tests {
    use super::*;
    use crate::bindings::latest::exports::proofpix::plugin::manifest::{ApiKeyAuth, ConfigField};

    fn field(name: &str, kind: FieldKind, secret: bool) -> ConfigField {
        ConfigField {
            name: name.into(),
            label: name.into(),
            help: String::new(),
            kind,
            required: false,
            secret,
            default_value: None,
            choices: Vec::new(),
            placeholder: None,
        }
    }

    /// Only a secret url field the auth scheme does not use can be a sealed
    /// URL; every secret value is scrubbed.
    #[test]
    fn only_secret_url_fields_outside_the_auth_scheme_are_sealed_urls() {
        let mut info = placeholder_info();
        info.config = vec![
            field("hook", FieldKind::Url, true),
            field("api_key", FieldKind::Url, true),
            field("token", FieldKind::Text, true),
            field("base", FieldKind::Url, false),
        ];
        info.auth = AuthScheme::ApiKey(ApiKeyAuth {
            secret_field: "api_key".into(),
            header: "x-api-key".into(),
            prefix: String::new(),
        });
        let ctx = IntegrationContext::new("x")
            .with_config("base", "https://api.example.com")
            .with_secret("hook", "https://hooks.example.com/h/1")
            .with_secret("api_key", "https://looks-like-a-url.example.com/k")
            .with_secret("token", "tok-123456789");
        let s = plugin_secrets(&info, &ctx);
        assert_eq!(s.sealed_urls.keys().collect::<Vec<_>>(), vec!["hook"]);
        assert_eq!(s.values.len(), 3);
    }
}
