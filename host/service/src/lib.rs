//! The host library: plugins, integrations, credentials, runs and
//! notifications, shared by the CLI and the daemon.
//!
//! [`Host`] ties the parts together: the store (integrations, sealed
//! secrets and tokens, results, the audit log), the plugin runtime with the
//! first-party plugins loaded, one credential cache per integration (so every
//! session of an integration shares a token and a refresh), the pipeline, and
//! notification routing to notifier integrations. [`runs::RunManager`] owns every sync run
//! (one per integration, follow-ups, the drain, the scheduler's ticks).
//!
//! The service is the one writer of the store: the daemon and the CLI call [`Host`] (its
//! admin operations are in `admin.rs`) and never write the store themselves; clippy refuses
//! it in those crates (see `.ci/owners`).
//!
//! Operator input is validated here, once, against the plugin's config
//! schema: unknown fields, missing required fields, secrets passed as plain
//! config (or the reverse) and values of the wrong kind are refused with a
//! message naming the field. Secrets go straight to the vault.
//!
//! Layering (checked by .ci/layers): floor 4, may use only the host crates below it (proofpix-analysis, proofpix-auth, proofpix-model, proofpix-pipeline, proofpix-pixels, proofpix-plugin-artifacts, proofpix-policy, proofpix-runtime, proofpix-signing, proofpix-store, proofpix-store-pg, proofpix-vault); never pulls in axum, even transitively.

#![deny(missing_docs)]

pub mod auth_flow;
pub mod credentials;
mod dialect;
pub mod integration;
pub use dialect::for_plugin as oauth_dialect;
mod admin;
mod legacy_dialect;
mod notify;
mod plugins;
mod remediation;
pub mod runs;
pub mod schedule;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use integration::context_for;
use proofpix_analysis::{Analyzer, Options, Policy};
use proofpix_auth::{AuthorizationSessions, CredentialOptions, Credentials};
use proofpix_model::{InboundRequest, InboundResponse, PluginError};
use proofpix_pipeline::{
    BatchRoute, FileRoute, Pipeline, PipelineOptions, Routes, SyncMode, SyncReport,
};
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::contract::{AuthScheme as WitScheme, Capability, FieldKind, PluginInfo};
use proofpix_runtime::{CredentialProvider, IntegrationContext, Plugin, Runtime, RuntimeConfig};
use proofpix_store::{AuditEvent, Backend, DownstreamStore, IntegrationRecord, Store, StoreError};
use proofpix_vault::Secret;

pub use credentials::{AuthCredentials, StoreTokens};
pub use notify::NotifyEvent;
pub use plugins::{
    BREAKER_FAILURES, BREAKER_WINDOW, InstallOptions, InstallReport, PLUGIN_LOG_HINT,
    explain_load_error, permissions,
};
pub use proofpix_policy::{EVENTS, Subscriptions};
pub use remediation::{
    FileAction, MAX_ATTEMPTS as MAX_REMEDIATION_ATTEMPTS, NOT_FROM_PIXELS, Remediation,
    RemediationStatus, declared_actions, stored_risk_from_pixels,
};

/// Whether an integration's syncs run the pixel stage.
pub fn pixels_on(record: &IntegrationRecord) -> bool {
    record.pixels
}

/// How a [`Host`] is set up.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Plugin limits.
    pub limits: Limits,
    /// Where precompiled plugins are cached.
    pub cache_dir: Option<PathBuf>,
    /// Pipeline behaviour.
    pub pipeline: PipelineOptions,
    /// The risk policy.
    pub policy: Policy,
    /// Analysis options.
    pub analysis: Options,
    /// Credential timing.
    pub credentials: CredentialOptions,
    /// Load the plugins shipped inside the binary.
    pub first_party_plugins: bool,
    /// Trust the first-party plugins of a development build (one built
    /// without `PROOFPIX_FIRST_PARTY_KEY`, whose plugins are signed with a key
    /// the build made for itself). Off by default: a development build's
    /// daemon then loads no first-party plugin and says how to opt in. A
    /// release build ignores it (its key is the release key).
    pub trust_development_build: bool,
    /// The data directory: installed plugins (`plugins/`) and trusted keys
    /// (`trust/`) live there. `None` keeps plugins in memory only.
    pub data_dir: Option<PathBuf>,
    /// Load only these plugins (built-in and installed); `None` loads all. `proofpix scan`
    /// needs only the local-folder plugin, and compiling the others would cost its start.
    pub only_plugins: Option<Vec<String>>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            limits: Limits::default(),
            cache_dir: None,
            pipeline: PipelineOptions::default(),
            policy: Policy::default(),
            analysis: Options::default(),
            credentials: CredentialOptions::default(),
            first_party_plugins: true,
            trust_development_build: false,
            data_dir: None,
            only_plugins: None,
        }
    }
}

/// What went wrong, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such integration.
    #[error("there is no integration named {0:?}")]
    NoIntegration(String),
    /// No such plugin.
    #[error("there is no plugin {0:?}; installed: {1}")]
    NoPlugin(String, String),
    /// The integration's configuration is invalid.
    #[error("integration {integration}: {problem}")]
    InvalidConfig {
        /// Integration.
        integration: String,
        /// What to fix.
        problem: String,
    },
    /// Credentials could not be set up.
    #[error("integration {integration}: {source}")]
    Credentials {
        /// Integration.
        integration: String,
        /// The cause.
        source: credentials::CredentialSetupError,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] proofpix_store::StoreError),
    /// Plugin loading failed.
    #[error("{0}")]
    Load(#[from] proofpix_runtime::LoadError),
    /// A plugin call failed.
    #[error("{0}")]
    Call(#[from] proofpix_runtime::CallError),
    /// The pipeline failed.
    #[error("{0}")]
    Pipeline(#[from] proofpix_pipeline::PipelineError),
    /// Building an integration's context failed.
    #[error("{0}")]
    Context(#[from] integration::ContextError),
    /// A plugin could not be installed, upgraded or used.
    #[error("{0}")]
    Plugin(String),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// Another run (on this daemon or another sharing the store) is syncing the integration.
    #[error(
        "integration {0} is being synced by another run (on this node or another sharing the store); this one was skipped"
    )]
    SyncElsewhere(String),
    /// The integration has no such file.
    #[error("integration {integration:?} has no file {remote_id:?}")]
    NoFile {
        /// Integration.
        integration: String,
        /// The file's platform id.
        remote_id: String,
    },
    /// An operator's action on a file was refused before anything ran.
    #[error("integration {integration}: {problem}")]
    ActionRefused {
        /// Integration.
        integration: String,
        /// Why, and what to do instead.
        problem: String,
    },
    /// The operation works on the embedded store's file and this daemon runs on PostgreSQL.
    #[error("{0} works on the embedded store only; this daemon's store is PostgreSQL ({1})")]
    EmbeddedOnly(&'static str, &'static str),
}

/// What an operator asks for when creating an integration.
#[derive(Debug, Clone, Default)]
pub struct IntegrationSpec {
    /// Its name: `a-z`, `0-9` and `-`.
    pub id: String,
    /// The plugin id.
    pub plugin: String,
    /// Non-secret config values.
    pub config: BTreeMap<String, String>,
    /// Secret values (go to the vault).
    pub secrets: BTreeMap<String, Secret>,
    /// The operator's grant.
    pub grant: OperatorGrant,
    /// For notifier integrations: which events they receive.
    pub subscriptions: Option<Subscriptions>,
    /// Schedule expression (interval or cron), for the daemon.
    pub schedule: Option<String>,
}

/// One step of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStep {
    /// What was tested.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found or what to fix.
    pub detail: String,
}

/// The result of `integration test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// The steps, in order; testing stops at the first failure.
    pub steps: Vec<TestStep>,
}

impl TestReport {
    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

/// The ProofPix host.
pub struct Host {
    /// The store, whichever engine is under it: the embedded redb file, or PostgreSQL
    /// shared by several daemons (cluster mode).
    store: Arc<dyn Backend>,
    /// The embedded store, when that is the backend: what works on the redb file itself
    /// (compaction, key rotation, the page check) needs it.
    local: Option<Arc<Store>>,
    /// The same store, as the seam the stages use: the pipeline's stages and the
    /// downstream ones (notify, remediate) reach the store only through it.
    stages: Arc<dyn DownstreamStore>,
    runtime: Runtime,
    plugins: RwLock<BTreeMap<String, Plugin>>,
    credentials: Mutex<HashMap<String, Arc<AuthCredentials>>>,
    /// Schemes of integrations whose plugin chooses its flow per integration.
    /// Per-integration authentication (scheme and OAuth dialect) of plugins that choose it by
    /// the reserved `auth_flow` field.
    auth_schemes: Mutex<HashMap<String, auth_flow::ChosenAuth>>,
    sessions: AuthorizationSessions,
    pipeline: Pipeline,
    options: HostOptions,
    /// Set once a background notify stage (the daemon's) owns delivery: a run then wakes it
    /// instead of delivering inline, so a run never waits on other integrations' alerts.
    notify_stage: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host over an open embedded store.
    ///
    /// # Errors
    /// The runtime cannot start or a first-party plugin fails to load.
    pub async fn new(store: Arc<Store>, options: HostOptions) -> Result<Self, ServiceError> {
        let backend: Arc<dyn Backend> = store.clone();
        Host::build(backend, Some(store), options).await
    }

    /// A host over any backend (PostgreSQL in cluster mode). What needs the embedded file
    /// ([`Host::local_store`]) is then unavailable.
    ///
    /// # Errors
    /// As [`Host::new`].
    pub async fn with_backend(
        store: Arc<dyn Backend>,
        options: HostOptions,
    ) -> Result<Self, ServiceError> {
        Host::build(store, None, options).await
    }

    async fn build(
        store: Arc<dyn Backend>,
        local: Option<Arc<Store>>,
        options: HostOptions,
    ) -> Result<Self, ServiceError> {
        let runtime = Runtime::new(RuntimeConfig {
            limits: options.limits.clone(),
            cache_dir: options.cache_dir.clone(),
            ..RuntimeConfig::default()
        })?;
        let analyzer = Arc::new(Analyzer::new(
            options.policy.clone(),
            options.analysis.clone(),
        ));
        let mut pipeline_options = options.pipeline.clone();
        if pipeline_options.spool_dir.is_none() {
            // Large downloads are spooled next to the store, not in memory.
            pipeline_options.spool_dir = options.data_dir.as_ref().map(|d| d.join("tmp"));
        }
        let stages: Arc<dyn DownstreamStore> = store.clone();
        let pipeline = Pipeline::new(stages.clone(), analyzer, pipeline_options);
        let host = Host {
            store,
            local,
            stages,
            runtime,
            plugins: RwLock::default(),
            credentials: Mutex::default(),
            auth_schemes: Mutex::default(),
            sessions: AuthorizationSessions::new(),
            pipeline,
            options,
            notify_stage: std::sync::OnceLock::new(),
        };
        if host.options.first_party_plugins {
            host.install_first_party().await?;
        }
        host.load_installed_plugins().await;
        Ok(host)
    }

    /// Sends the pipeline's progress events to `sink` (live views, metrics).
    pub fn with_progress(mut self, sink: proofpix_pipeline::ProgressSink) -> Self {
        self.pipeline = self.pipeline.clone().with_progress(sink);
        self
    }

    /// Verifies and parses an inbound webhook through the integration's
    /// plugin and queues the files it reports as changed. Returns the answer
    /// for the platform, how many files were queued, and whether the event
    /// asks for an incremental sync instead. A request that fails
    /// verification comes back as the plugin's `unauthorized` error.
    ///
    /// # Errors
    /// Unknown integration, a plugin without events, verification failures.
    pub async fn handle_webhook(
        &self,
        id: &str,
        request: InboundRequest,
    ) -> Result<(InboundResponse, usize, bool), ServiceError> {
        proofpix_pipeline::in_lane(id, self.handle_webhook_in_lane(id, request)).await
    }

    async fn handle_webhook_in_lane(
        &self,
        id: &str,
        request: InboundRequest,
    ) -> Result<(InboundResponse, usize, bool), ServiceError> {
        let (plugin, ctx) = self.context(id, false).await?;
        if !plugin.info().capabilities.contains(&Capability::Events) {
            return Err(ServiceError::InvalidConfig {
                integration: id.into(),
                problem: format!("plugin {} does not accept webhooks", plugin.info().id),
            });
        }
        let mut session = plugin.session(&ctx).await?;
        let outcome = session.handle_event(&request).await?;
        let queued = self.pipeline.enqueue_changes(id, outcome.changed).await?;
        Ok((outcome.response, queued, outcome.resync))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.store
    }

    /// The embedded store, when that is the backend (`None` on PostgreSQL).
    pub fn local_store(&self) -> Option<&Arc<Store>> {
        self.local.as_ref()
    }

    /// Sends `message` to every node sharing this host's store, this one included (see
    /// [`proofpix_store::ControlStore::signal`]); on an embedded store nobody else is
    /// there and nothing is sent.
    ///
    /// # Errors
    /// The store failed, or the message is too long.
    pub fn signal(&self, message: &str) -> Result<(), StoreError> {
        self.store.signal(message)
    }

    /// Calls `on` with every signal from the nodes sharing this host's store (see
    /// [`proofpix_store::ControlStore::listen`]). `on` runs on the store's own thread: it
    /// must hand the signal on (a channel, a `Notify`), never call the store. Returns
    /// `false` on an embedded store, where no signal ever comes.
    ///
    /// # Errors
    /// The store failed.
    pub fn listen(
        &self,
        on: impl Fn(proofpix_store::Signal) + Send + Sync + 'static,
    ) -> Result<bool, StoreError> {
        self.store.listen(Box::new(on))
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The authorization-code sessions (for the daemon's callback route).
    pub fn authorization_sessions(&self) -> &AuthorizationSessions {
        &self.sessions
    }

    /// Loads a plugin and makes it available (replacing one with the same id).
    ///
    /// # Errors
    /// The component cannot be loaded.
    pub async fn add_plugin(&self, wasm: &[u8]) -> Result<Plugin, ServiceError> {
        let plugin = self.runtime.load(wasm).await?;
        if let Ok(mut map) = self.plugins.write() {
            map.insert(plugin.info().id.clone(), plugin.clone());
        }
        Ok(plugin)
    }

    /// A loaded plugin by id.
    pub fn plugin(&self, id: &str) -> Option<Plugin> {
        self.plugins.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Every loaded plugin.
    pub fn plugins(&self) -> Vec<Plugin> {
        self.plugins
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn require_plugin(&self, id: &str) -> Result<Plugin, ServiceError> {
        self.plugin(id).ok_or_else(|| {
            let names: Vec<String> = self.plugins().iter().map(|p| p.info().id.clone()).collect();
            ServiceError::NoPlugin(id.to_string(), names.join(", "))
        })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T, proofpix_store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let lane = proofpix_pipeline::current_lane();
        tokio::task::spawn_blocking(move || {
            proofpix_pipeline::run_in_lane(lane, || f(store.as_ref()))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(ServiceError::from)
    }

    /// [`Host::blocking`] for the stages: `f` sees only the store seam.
    async fn stage_blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DownstreamStore) -> Result<T, proofpix_store::StoreError> + Send + 'static,
    {
        let stages = self.stages.clone();
        let lane = proofpix_pipeline::current_lane();
        tokio::task::spawn_blocking(move || {
            proofpix_pipeline::run_in_lane(lane, || f(stages.as_ref()))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(ServiceError::from)
    }

    /// Creates (or replaces) an integration after validating its config
    /// against the plugin's schema; secrets go to the vault.
    ///
    /// # Errors
    /// Invalid ids or config, unknown plugins, store failures.
    pub async fn create_integration(
        &self,
        spec: IntegrationSpec,
        actor: &str,
    ) -> Result<IntegrationRecord, ServiceError> {
        let plugin = self.require_plugin(&spec.plugin)?;
        let invalid = |problem: String| ServiceError::InvalidConfig {
            integration: spec.id.clone(),
            problem,
        };
        if !proofpix_policy::manifest::is_id(&spec.id) {
            return Err(invalid(format!(
                "the name must be {}",
                proofpix_policy::manifest::ID_RULE
            )));
        }
        // Secrets already in the vault satisfy required secret fields on an
        // update; only the ones given are written.
        let mut known_secrets: BTreeMap<String, Secret> = self
            .store
            .secret_fields(&spec.id)?
            .into_iter()
            .map(|f| (f, Secret::new("")))
            .collect();
        known_secrets.extend(spec.secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
        let config =
            validate_config(plugin.info(), &spec.config, &known_secrets).map_err(invalid)?;
        let previous = self.store.integration(&spec.id)?;
        let mut record = match previous.clone() {
            Some(existing) if existing.plugin_id != spec.plugin => {
                return Err(invalid(format!(
                    "it already exists with plugin {}; delete it first",
                    existing.plugin_id
                )));
            }
            Some(existing) => existing,
            None => IntegrationRecord::new(
                &spec.id,
                &spec.plugin,
                &plugin.info().version,
                self.store.now(),
            ),
        };
        record.plugin_version = plugin.info().version.clone();
        // The remediation policy and the pixel setting are set on their own
        // (`set_remediation`, `set_pixels`); an update keeps them.
        record.config = config;
        record.grant = spec.grant.clone();
        if let Some(subs) = &spec.subscriptions {
            record.subscriptions = Some(subs.clone().validated().map_err(invalid)?);
        }
        record.schedule = spec.schedule.clone();
        record.updated_at = self.store.now();
        let (r, actor_s) = (record.clone(), actor.to_string());
        self.blocking(move |s| s.put_integration(&r, &actor_s))
            .await?;
        for (field, secret) in spec.secrets {
            let (id, actor_s) = (spec.id.clone(), actor.to_string());
            self.blocking(move |s| s.set_secret(&id, &field, &secret, &actor_s))
                .await?;
        }
        self.forget_credentials(&spec.id);
        // The plugin's own offline check of the config. A refusal undoes the
        // create (or restores the previous config), so a bad form never
        // leaves a half-made integration behind.
        let checked = async {
            let (plugin, ctx) = self.context(&spec.id, false).await?;
            let mut session = plugin.session(&ctx).await?;
            session.validate_config().await?;
            Ok::<(), ServiceError>(())
        }
        .await;
        if let Err(e) = checked {
            match &previous {
                Some(prev) => {
                    let (p, a) = (prev.clone(), actor.to_string());
                    self.blocking(move |s| s.put_integration(&p, &a)).await?;
                }
                None => {
                    let (i, a) = (spec.id.clone(), actor.to_string());
                    self.blocking(move |s| s.delete_integration(&i, &a).map(|_| ()))
                        .await?;
                }
            }
            self.forget_credentials(&spec.id);
            return Err(e);
        }
        Ok(record)
    }

    /// Replaces one secret.
    ///
    /// # Errors
    /// Unknown integration or field, or a field the plugin does not declare
    /// secret.
    pub async fn set_secret(
        &self,
        id: &str,
        field: &str,
        secret: Secret,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let record = self.integration(id)?;
        let plugin = self.require_plugin(&record.plugin_id)?;
        if !plugin
            .info()
            .config
            .iter()
            .any(|f| f.secret && f.name == field)
        {
            return Err(ServiceError::InvalidConfig {
                integration: id.into(),
                problem: format!(
                    "{field:?} is not a secret field of plugin {}",
                    plugin.info().id
                ),
            });
        }
        let (i, f, a) = (id.to_string(), field.to_string(), actor.to_string());
        self.blocking(move |s| s.set_secret(&i, &f, &secret, &a))
            .await?;
        self.forget_credentials(id);
        Ok(())
    }

    /// Deletes an integration and everything it owns (secrets, tokens,
    /// cursor, state, file records).
    ///
    /// # Errors
    /// Unknown integration, store failures.
    pub async fn delete_integration(&self, id: &str, actor: &str) -> Result<(), ServiceError> {
        self.integration(id)?;
        let (i, a) = (id.to_string(), actor.to_string());
        self.blocking(move |s| s.delete_integration(&i, &a)).await?;
        self.forget_credentials(id);
        self.forget_remediation(id).await;
        Ok(())
    }

    /// An integration's record.
    ///
    /// # Errors
    /// Unknown integration.
    pub fn integration(&self, id: &str) -> Result<IntegrationRecord, ServiceError> {
        self.store
            .integration(id)?
            .ok_or_else(|| ServiceError::NoIntegration(id.to_string()))
    }

    fn forget_credentials(&self, id: &str) {
        if let Ok(mut a) = self.auth_schemes.lock() {
            a.remove(id);
        }
        if let Ok(mut c) = self.credentials.lock() {
            c.remove(id);
        }
    }

    /// The credentials of an integration (cached for the process).
    ///
    /// # Errors
    /// Setup errors (templates, grant, missing fields).
    pub fn credentials(
        &self,
        record: &IntegrationRecord,
        plugin: &Plugin,
        ctx: &IntegrationContext,
    ) -> Result<Option<Arc<AuthCredentials>>, ServiceError> {
        let chosen = self
            .auth_schemes
            .lock()
            .ok()
            .and_then(|a| a.get(&record.id).cloned());
        let (auth, declared_dialect) = match chosen {
            Some(c) => (c.scheme, c.dialect),
            None => (
                plugin.info().auth.clone(),
                plugin.info().oauth_dialect.clone(),
            ),
        };
        if matches!(auth, WitScheme::None) {
            return Ok(None);
        }
        if let Some(c) = self
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.get(&record.id).cloned())
        {
            return Ok(Some(c));
        }
        let cred_err = |source| ServiceError::Credentials {
            integration: record.id.clone(),
            source,
        };
        let scheme = credentials::resolve_scheme(&auth, &ctx.config).map_err(cred_err)?;
        let declared_granted = plugin
            .effective_grants(ctx)
            .map(|g| g.egress.hosts)
            .unwrap_or_default();
        credentials::check_destinations(&scheme, &ctx.grant, &declared_granted)
            .map_err(cred_err)?;
        let networks = proofpix_policy::BlockedNetworks {
            allow_loopback: ctx.grant.allow_loopback,
            allow_private: ctx.grant.allow_private,
            allow_link_local: ctx.grant.allow_link_local,
        };
        let http =
            proofpix_runtime::checked_client(networks, self.options.credentials.request_timeout)
                .map_err(|e| {
                    ServiceError::Internal(format!("cannot build the HTTP client: {e}"))
                })?;
        let tokens = StoreTokens::new(self.store.clone(), &scheme);
        let dialect = dialect::for_plugin(plugin, declared_dialect.as_ref(), &scheme)
            .map_err(|e| cred_err(e.into()))?;
        let creds = Credentials::builder(
            &record.id,
            credentials::inputs(scheme, &ctx.config, &ctx.secrets),
            http,
            Arc::new(tokens),
        )
        .networks(networks)
        .dialect(dialect)
        .options(self.options.credentials.clone())
        .sessions(self.sessions.clone())
        .build()
        .map_err(|e| cred_err(e.into()))?;
        let creds = Arc::new(AuthCredentials(creds));
        if let Ok(mut c) = self.credentials.lock() {
            c.insert(record.id.clone(), creds.clone());
        }
        Ok(Some(creds))
    }

    /// For a plugin that chooses its authentication per integration (it declares the reserved
    /// `auth_flow` field), describes it with the integration's config and keeps that scheme for
    /// [`Host::credentials`] (see `auth_flow.rs`).
    async fn choose_auth_scheme(
        &self,
        record: &IntegrationRecord,
        plugin: &Plugin,
        ctx: &IntegrationContext,
    ) -> Result<(), ServiceError> {
        if !auth_flow::per_integration(plugin.info())
            || self
                .auth_schemes
                .lock()
                .is_ok_and(|a| a.contains_key(&record.id))
        {
            return Ok(());
        }
        let chosen = auth_flow::auth_for(plugin, ctx).await.map_err(|problem| {
            ServiceError::InvalidConfig {
                integration: record.id.clone(),
                problem,
            }
        })?;
        if let Ok(mut a) = self.auth_schemes.lock() {
            a.insert(record.id.clone(), chosen);
        }
        Ok(())
    }

    /// The plugin and session context of an integration. With `prime`, the
    /// credentials obtain (or load) a token first so non-secret auth context
    /// (`instance_url`) is available to endpoint templates.
    ///
    /// # Errors
    /// Unknown integration or plugin, invalid stored config, credential setup
    /// or token errors when priming.
    pub async fn context(
        &self,
        id: &str,
        prime: bool,
    ) -> Result<(Plugin, IntegrationContext), ServiceError> {
        let record = self.integration(id)?;
        let plugin = self.require_plugin(&record.plugin_id)?;
        if let Some(reason) = self.quarantine_reason(&record.plugin_id) {
            return Err(ServiceError::Plugin(format!(
                "plugin {} is quarantined ({reason}); fix or upgrade it, then `proofpix plugin release {}`",
                record.plugin_id, record.plugin_id
            )));
        }
        let mut ctx = context_for(&self.store, &record, plugin.info(), None)?;
        self.choose_auth_scheme(&record, &plugin, &ctx).await?;
        if let Some(creds) = self.credentials(&record, &plugin, &ctx)? {
            if prime {
                creds
                    .authorization()
                    .await
                    .map_err(|e| ServiceError::InvalidConfig {
                        integration: id.to_string(),
                        problem: e,
                    })?;
            }
            ctx.credentials = Some(creds as Arc<dyn CredentialProvider>);
        }
        Ok((plugin, ctx))
    }

    /// Whether syncs of `id` run the pixel stage (QR codes, personal data in OCR text).
    ///
    /// # Errors
    ///
    /// An unknown integration.
    pub fn pixels(&self, id: &str) -> Result<bool, ServiceError> {
        Ok(pixels_on(&self.integration(id)?))
    }

    /// Turns the pixel stage on or off for `id`'s syncs; audited. Files already analysed are
    /// looked at again only by a sync that analyses again (`--reanalyse`).
    ///
    /// # Errors
    ///
    /// An unknown integration; store errors.
    pub fn set_pixels(&self, id: &str, on: bool, actor: &str) -> Result<(), ServiceError> {
        let mut record = self.integration(id)?;
        record.pixels = on;
        record.updated_at = self.store.now();
        self.store.put_integration(&record, actor)?;
        self.store.audit(
            &AuditEvent::new(actor, "integration.pixels", id)
                .outcome("ok")
                .details(serde_json::json!({ "pixels": on })),
        )?;
        Ok(())
    }

    /// Forgets the integration's finished write-backs so each result is written again at its
    /// next write-back (`integration sync --rewrite`); audited. Returns how many were forgotten.
    ///
    /// # Errors
    ///
    /// An unknown integration; store errors.
    pub fn forget_writebacks(&self, id: &str, actor: &str) -> Result<u64, ServiceError> {
        self.integration(id)?;
        let n = self.store.forget_writebacks(id)?;
        self.store.audit(
            &AuditEvent::new(actor, "integration.rewrite", id)
                .outcome("ok")
                .details(serde_json::json!({ "forgotten": n })),
        )?;
        Ok(n)
    }

    /// Tests an integration: config, credentials (a new token is obtained,
    /// so a changed secret shows up even while an old token is valid), the
    /// grant, and the plugin's own `check`.
    pub async fn test(&self, id: &str) -> TestReport {
        let mut steps = Vec::new();
        let mut step = |name: &str, r: Result<String, String>| {
            let ok = r.is_ok();
            steps.push(TestStep {
                name: name.into(),
                ok,
                detail: r.unwrap_or_else(|e| e),
            });
            ok
        };
        let record = match self.integration(id) {
            Ok(r) => r,
            Err(e) => {
                step("integration", Err(e.to_string()));
                return TestReport { steps };
            }
        };
        let ctx = match self.context(id, false).await {
            Ok(c) => c,
            Err(e) => {
                step("configuration", Err(e.to_string()));
                return TestReport { steps };
            }
        };
        step(
            "configuration",
            Ok(format!(
                "plugin {} {}",
                ctx.0.info().id,
                ctx.0.info().version
            )),
        );
        let (plugin, ctx) = ctx;
        let creds = self.credentials(&record, &plugin, &ctx).ok().flatten();
        let key_field = creds
            .as_ref()
            .and_then(|c| c.0.static_key_field().map(str::to_string));
        if let Some(field) = &key_field {
            // Nothing to exchange: saying "accepted" here would pass a wrong key.
            step(
                "credentials",
                Ok(format!(
                    "an API key is set in the secret field '{field}'; only the platform can say \
                     whether it is right, which the connection step below asks"
                )),
            );
        } else if let Some(creds) = creds {
            let r = creds.0.renew().await.map(|s| {
                let mut d = "credentials accepted".to_string();
                if let Some(exp) = s.expires_at {
                    d.push_str(&format!(", token valid until {exp}"));
                }
                if !s.scopes.is_empty() {
                    d.push_str(&format!(", scopes: {}", s.scopes.join(" ")));
                }
                d
            });
            if !step("credentials", r.map_err(|e| e.to_string())) {
                return TestReport { steps };
            }
        }
        let grants = match plugin.effective_grants(&ctx) {
            Ok(g) => g,
            Err(e) => {
                step("grant", Err(e.to_string()));
                return TestReport { steps };
            }
        };
        let granted: Vec<&str> = grants
            .egress
            .hosts
            .entries()
            .iter()
            .map(|e| e.as_str())
            .collect();
        let mut detail = if granted.is_empty() {
            "no network endpoints".to_string()
        } else {
            format!("may reach {}", granted.join(", "))
        };
        if !grants.not_granted.is_empty() {
            detail.push_str(&format!("; not granted: {}", grants.not_granted.join("; ")));
        }
        step("grant", Ok(detail));
        let check = async {
            let mut session = plugin.session(&ctx).await.map_err(|e| e.to_string())?;
            let checked = session.check().await;
            // A notifier's "not supported" is no failure (`check_not_applicable`).
            if let Err(e) = &checked
                && let Some(na) = plugins::check_not_applicable(plugin.info(), e)
            {
                return Ok(na);
            }
            let report = checked.map_err(|e| match (&key_field, e.plugin_error()) {
                (Some(field), Some(PluginError::Unauthorized(said))) => format!(
                    "the platform rejected the API key in the secret field '{field}'; replace it \
                     with `proofpix integration set-secret {id} {field}=-` (the plugin said: {})",
                    said.trim()
                ),
                _ => e.to_string(),
            })?;
            let mut d = report.details.join("; ");
            if let Some(a) = report.account {
                d = format!("connected as {a}; {d}");
            }
            Ok(d)
        };
        step("connection", check.await);
        let outcome = if steps.iter().all(|s| s.ok) {
            "ok"
        } else {
            "failed"
        };
        let _ = self
            .store
            .audit(&AuditEvent::new("system", "integration.test", id).outcome(outcome));
        TestReport { steps }
    }

    /// Runs a sync of a source integration, sends the notifications the
    /// notifier integrations subscribed to, then remediates as the
    /// integration's remediation policy says (see
    /// [`Host::sync_and_remediate`], which also returns what it did).
    ///
    /// # Errors
    /// As [`Pipeline::sync`], plus setup errors.
    pub async fn sync(&self, id: &str, mode: SyncMode) -> Result<SyncReport, ServiceError> {
        proofpix_pipeline::in_lane(id, self.sync_and_remediate(id, mode))
            .await
            .map(|(r, _)| r)
    }

    /// The sync and its notifications, without remediation.
    async fn sync_only(&self, id: &str, mode: SyncMode) -> Result<SyncReport, ServiceError> {
        let (plugin, ctx) = match self.context(id, true).await {
            Ok(c) => c,
            Err(e) => {
                self.notify_event(id, NotifyEvent::Unhealthy(e.to_string()))
                    .await;
                return Err(e);
            }
        };
        if !plugin.info().capabilities.contains(&Capability::Source) {
            return Err(ServiceError::InvalidConfig {
                integration: id.into(),
                problem: format!(
                    "plugin {} is not a source; it cannot be synced",
                    plugin.info().id
                ),
            });
        }
        let routes = self.routes_for(id);
        let outcome = self
            .pipeline
            .sync_routed(&plugin, &ctx, mode, &routes)
            .await;
        if let Some(action) = self.check_plugin_health(&plugin.info().id).await {
            tracing::error!(plugin = %plugin.label(), "circuit breaker: {action}");
        }
        match outcome {
            Ok(report) => {
                // Alerts and summaries went to the notifiers' queues with the results; what is
                // due (per each subscription's window) is delivered now, by the background
                // notify stage when there is one, else here.
                match self.notify_stage.get() {
                    Some(stage) => stage.notify_one(),
                    None => self.deliver_notifications(false).await,
                }
                Ok(report)
            }
            Err(e) => {
                self.notify_event(id, NotifyEvent::Failed(e.to_string()))
                    .await;
                Err(e.into())
            }
        }
    }

    /// Where a sync of `id` sends its results besides write-back, built once per sync: the
    /// alert and summary queues of the notifiers subscribed to it, and its remediation queue
    /// when it has a policy.
    fn routes_for(&self, id: &str) -> Routes {
        let mut routes = Routes {
            pixels: self.pixels(id).unwrap_or(false),
            ..Routes::default()
        };
        for (notifier, subs) in self.notifiers(id) {
            let queue = proofpix_store::stage_queue(&notifier, proofpix_store::Stage::Notify);
            if subs.wants(id, "high-risk") {
                routes.files.push(FileRoute {
                    queue: queue.clone(),
                    min_risk: subs.min_risk,
                });
            }
            if subs.wants(id, "batch-completed") {
                routes.batches.push(BatchRoute {
                    queue,
                    include_empty: subs.empty_batches,
                });
            }
        }
        if let Ok(Some(policy)) = self.remediation_policy(id) {
            routes.files.push(FileRoute {
                queue: proofpix_store::stage_queue(id, proofpix_store::Stage::Remediate),
                min_risk: policy.min_risk,
            });
        }
        routes
    }

    /// How many files of `id` the store knows (analysed now or earlier).
    ///
    /// # Errors
    /// Store failures.
    pub fn file_count(&self, id: &str) -> Result<u64, ServiceError> {
        Ok(self.store.file_count(id)?)
    }

    /// Applies the retention periods (results, batches, audit) as of now; audited as `actor`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn compact(
        &self,
        retention: proofpix_store::Retention,
        actor: &str,
    ) -> Result<proofpix_store::CompactReport, ServiceError> {
        let actor = actor.to_string();
        let Some(store) = self.local.clone() else {
            return Err(ServiceError::EmbeddedOnly(
                "retention compaction",
                "PostgreSQL's own retention is not built yet: delete old rows of results, batches and audit with SQL",
            ));
        };
        tokio::task::spawn_blocking(move || store.compact(&retention, store.now(), &actor))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(ServiceError::from)
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Grant stored for an integration.
    ///
    /// # Errors
    /// Unknown integration.
    pub fn grant(&self, id: &str) -> Result<OperatorGrant, ServiceError> {
        Ok(self.integration(id)?.grant)
    }
}

/// Checks operator config against a plugin's schema and fills defaults.
///
/// # Errors
/// The first problem, naming the field.
pub fn validate_config(
    info: &PluginInfo,
    config: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, Secret>,
) -> Result<BTreeMap<String, String>, String> {
    let names: Vec<&str> = info.config.iter().map(|f| f.name.as_str()).collect();
    for key in config.keys() {
        match info.config.iter().find(|f| f.name == *key) {
            None => {
                return Err(format!(
                    "unknown field {key:?}; {} takes: {}",
                    info.id,
                    names.join(", ")
                ));
            }
            Some(f) if f.secret => {
                return Err(format!(
                    "{key:?} is a secret; pass it as a secret, not as plain config"
                ));
            }
            Some(_) => {}
        }
    }
    for key in secrets.keys() {
        match info.config.iter().find(|f| f.name == *key) {
            None => {
                return Err(format!(
                    "unknown secret field {key:?}; {} takes: {}",
                    info.id,
                    names.join(", ")
                ));
            }
            Some(f) if !f.secret => {
                return Err(format!("{key:?} is not a secret; pass it as plain config"));
            }
            Some(_) => {}
        }
    }
    let mut out = BTreeMap::new();
    for f in &info.config {
        if f.secret {
            if f.required && !secrets.contains_key(&f.name) {
                return Err(format!(
                    "secret {:?} ({}) is required: {}",
                    f.name, f.label, f.help
                ));
            }
            continue;
        }
        let value = config
            .get(&f.name)
            .cloned()
            .or_else(|| f.default_value.clone());
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            if f.required {
                return Err(format!(
                    "{:?} ({}) is required: {}",
                    f.name, f.label, f.help
                ));
            }
            continue;
        };
        let bad = |expected: &str| format!("{:?} must be {expected}, got {value:?}", f.name);
        match f.kind {
            FieldKind::Integer if value.trim().parse::<i64>().is_err() => {
                return Err(bad("a whole number"));
            }
            FieldKind::Boolean
                if !matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "1" | "0" | "on" | "off"
                ) =>
            {
                return Err(bad("true or false"));
            }
            FieldKind::Url
                if !url::Url::parse(value.trim())
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
            {
                return Err(bad("an http(s) URL"));
            }
            FieldKind::Email if !value.contains('@') => return Err(bad("an e-mail address")),
            FieldKind::Choice if !f.choices.contains(&value) => {
                return Err(bad(&format!("one of {}", f.choices.join(", "))));
            }
            FieldKind::Path if !value.starts_with('/') => return Err(bad("an absolute path")),
            _ => {}
        }
        out.insert(f.name.clone(), value);
    }
    Ok(out)
}
