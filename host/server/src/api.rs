//! The REST API: one small function per route, next to its path.
//!
//! Secrets are write-only: they are accepted on create and update, and no
//! response ever contains one (integrations list which secret fields are
//! set, never their values). Every change is an audit entry with its actor
//! (`token:<name>`), written by the store in the same transaction.
//!
//! Values from scanned files (names, GPS, comments) reach responses only
//! inside analysis reports, already masked by the analysis core unless an
//! operator asked otherwise; the dashboard renders them as text, never HTML.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use proofpix_model::RemediationKind;
use proofpix_pipeline::SyncMode;
use proofpix_policy::{OperatorGrant, RemediationPolicy};
use proofpix_runtime::contract::{AuthScheme, Capability, FieldKind, PluginInfo};
use proofpix_service::{Host, IntegrationSpec, Subscriptions};
use proofpix_store::{ApiTokenRecord, BatchRecord, FileRecord, IntegrationRecord, SessionRecord};
use proofpix_vault::Secret;
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{
    CSRF_HEADER, Caller, Role, SESSION_COOKIE, new_session_id, new_token, session_cookie,
    session_hash, token_hash,
};
use crate::error::{ApiError, ApiJson};
use crate::state::{AppState, TriggerOutcome};

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn proofpix_store::Backend) -> Result<T, proofpix_store::StoreError>
    + Send
    + 'static,
) -> ApiResult<T> {
    let store = state.host().store().clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

// ----- plugins --------------------------------------------------------------

/// One field of a plugin's setup form.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldView {
    name: String,
    label: String,
    help: String,
    /// `text`, `multiline`, `integer`, `boolean`, `url`, `email`, `path`, `choice`, `string-list`.
    kind: &'static str,
    required: bool,
    secret: bool,
    default: Option<String>,
    choices: Vec<String>,
    placeholder: Option<String>,
}

/// An endpoint a plugin may reach.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    name: String,
    url: String,
    credentials: bool,
    purpose: String,
    /// Where a response from this endpoint may redirect (contract 0.3; `scheme://host`
    /// patterns): followed without credentials, and only to a host the grant covers.
    redirect_targets: Vec<String>,
}

/// A filesystem mount a plugin declares.
#[derive(Debug, Serialize, ToSchema)]
pub struct MountView {
    /// Where the plugin sees it (`/input`); what a grant's `mounts` lists.
    guest_path: String,
    /// The config field holding the host directory.
    config_field: String,
    /// Whether the plugin asks to write there.
    writable: bool,
}

/// A plugin and its setup form.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    id: String,
    version: String,
    display_name: String,
    platform: String,
    description: String,
    /// `source`, `notifier`, `events`.
    capabilities: Vec<&'static str>,
    /// The authentication the host runs for it.
    auth: &'static str,
    config: Vec<FieldView>,
    endpoints: Vec<EndpointView>,
    /// The URLs the host's authentication calls (token and authorize endpoints), as
    /// templates like the endpoints' (`{config.NAME}`): their hosts belong in the grant.
    auth_urls: Vec<String>,
    /// The filesystem mounts the plugin declares.
    mounts: Vec<MountView>,
    /// How many results the plugin writes back per call (declared by the plugin).
    write_back_batch_size: u32,
    contract_version: String,
    content_hash: String,
}

fn kind_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "text",
        FieldKind::Multiline => "multiline",
        FieldKind::Integer => "integer",
        FieldKind::Boolean => "boolean",
        FieldKind::Url => "url",
        FieldKind::Email => "email",
        FieldKind::Path => "path",
        FieldKind::Choice => "choice",
        FieldKind::StringList => "string-list",
    }
}

fn capability_names(info: &PluginInfo) -> Vec<&'static str> {
    info.capabilities
        .iter()
        .map(|c| match c {
            Capability::Source => "source",
            Capability::Notifier => "notifier",
            Capability::Events => "events",
            Capability::Remediation => "remediation",
        })
        .collect()
}

fn plugin_view(p: &proofpix_runtime::Plugin) -> PluginView {
    let i = p.info();
    PluginView {
        id: i.id.clone(),
        version: i.version.clone(),
        display_name: i.display_name.clone(),
        platform: i.platform.clone(),
        description: i.description.clone(),
        capabilities: capability_names(i),
        auth: match &i.auth {
            AuthScheme::None => "none",
            AuthScheme::ApiKey(_) => "api-key",
            AuthScheme::Oauth2ClientCredentials(_) => "oauth2-client-credentials",
            AuthScheme::Oauth2AuthorizationCode(_) => "oauth2-authorization-code",
            AuthScheme::Oauth2Password(_) => "oauth2-password",
            AuthScheme::JwtBearer(_) => "jwt-bearer",
        },
        config: i
            .config
            .iter()
            .map(|f| FieldView {
                name: f.name.clone(),
                label: f.label.clone(),
                help: f.help.clone(),
                kind: kind_name(f.kind),
                required: f.required,
                secret: f.secret,
                default: f.default_value.clone(),
                choices: f.choices.clone(),
                placeholder: f.placeholder.clone(),
            })
            .collect(),
        endpoints: i
            .endpoints
            .iter()
            .map(|e| EndpointView {
                name: e.name.clone(),
                url: e.url.clone(),
                credentials: e.credentials,
                purpose: e.purpose.clone(),
                redirect_targets: e.redirect_targets.clone(),
            })
            .collect(),
        auth_urls: match &i.auth {
            AuthScheme::None | AuthScheme::ApiKey(_) => Vec::new(),
            AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
                std::iter::once(o.token_url.clone())
                    .chain(o.authorize_url.clone())
                    .collect()
            }
            AuthScheme::Oauth2Password(p) => std::iter::once(p.oauth.token_url.clone())
                .chain(p.oauth.authorize_url.clone())
                .collect(),
            AuthScheme::JwtBearer(j) => vec![j.token_url.clone()],
        },
        mounts: i
            .filesystem
            .iter()
            .map(|m| MountView {
                guest_path: m.guest_path.clone(),
                config_field: m.config_field.clone(),
                writable: m.writable,
            })
            .collect(),
        write_back_batch_size: i.write_back_batch_size,
        contract_version: p.contract_version().to_string(),
        content_hash: p.content_hash().to_string(),
    }
}

/// The plugins this daemon runs.
#[utoipa::path(get, path = "/api/plugins", tag = "plugins", responses((status = 200, body = [PluginView])))]
pub async fn list_plugins(State(state): State<AppState>, _caller: Caller) -> Json<Vec<PluginView>> {
    Json(state.host().plugins().iter().map(plugin_view).collect())
}

/// One plugin, with its setup form.
#[utoipa::path(get, path = "/api/plugins/{id}", tag = "plugins", params(("id" = String, Path)), responses((status = 200, body = PluginView), (status = 404, body = crate::error::Problem)))]
pub async fn get_plugin(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginView>> {
    state
        .host()
        .plugin(&id)
        .map(|p| Json(plugin_view(&p)))
        .ok_or_else(|| ApiError::not_found(format!("there is no plugin {id:?}")))
}

// ----- integrations ---------------------------------------------------------

/// The operator's grant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantView {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    mounts: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
    #[serde(default)]
    allow_loopback: bool,
    #[serde(default)]
    allow_private: bool,
}

impl From<GrantView> for OperatorGrant {
    fn from(g: GrantView) -> Self {
        OperatorGrant {
            hosts: g.hosts,
            mounts: g.mounts,
            write: g.write,
            allow_loopback: g.allow_loopback,
            allow_private: g.allow_private,
            allow_link_local: false,
        }
    }
}

impl From<OperatorGrant> for GrantView {
    fn from(g: OperatorGrant) -> Self {
        GrantView {
            hosts: g.hosts,
            mounts: g.mounts,
            write: g.write,
            allow_loopback: g.allow_loopback,
            allow_private: g.allow_private,
        }
    }
}

/// Summary of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    id: u64,
    integration: String,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    /// `running`, `ok` (it finished; some files may have failed, see `errors`) or `failed`
    /// (the run itself failed: see `error`).
    outcome: &'static str,
    /// Why the run failed as a whole (credentials refused, a folder gone...), when it did.
    error: Option<String>,
    total: u64,
    ok: u64,
    errors: u64,
    retried: u64,
    by_risk: BTreeMap<String, u64>,
    /// The files that failed.
    failures: Vec<FailureView>,
}

/// One failed file of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    remote_id: String,
    error: String,
}

/// `running`, `ok` or `failed` (see [`BatchView`]'s `outcome`).
fn batch_outcome(b: &BatchRecord) -> &'static str {
    if b.finished_at.is_none() {
        "running"
    } else if Host::run_error(b).is_some() {
        "failed"
    } else {
        "ok"
    }
}

fn batch_view(b: &BatchRecord) -> BatchView {
    BatchView {
        id: b.id,
        integration: b.integration.clone(),
        started_at: rfc3339(b.started_at),
        finished_at: b.finished_at.map(rfc3339),
        duration_ms: b.duration.map(|d| d.as_millis() as u64),
        outcome: batch_outcome(b),
        error: Host::run_error(b).map(str::to_string),
        total: b.total,
        ok: b.ok,
        errors: b.errors,
        retried: b.retried,
        by_risk: b.by_risk.clone(),
        failures: b
            .failures
            .iter()
            .filter(|f| f.remote_id != Host::RUN_FAILURE)
            .map(|f| FailureView {
                remote_id: f.remote_id.clone(),
                error: f.error.clone(),
            })
            .collect(),
    }
}

/// An integration, without any secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    id: String,
    plugin: String,
    plugin_version: String,
    platform: String,
    display_name: String,
    capabilities: Vec<&'static str>,
    /// Non-secret configuration.
    config: BTreeMap<String, String>,
    /// Secret fields that are set (never their values).
    secrets_set: Vec<String>,
    grant: GrantView,
    subscriptions: Option<serde_json::Value>,
    schedule: Option<String>,
    enabled: bool,
    /// `new` (a source that has not run yet), `healthy`, `failing` (its last run failed, or a
    /// notifier's last delivery), `needs-reauth` (the platform refused its credentials),
    /// `paused`. Read from its last run, not only from what was stored when it was last changed.
    status: String,
    /// What failed last, when the status is failing or needs-reauth (and kept while paused).
    last_error: Option<String>,
    /// Whether a run is in progress.
    syncing: bool,
    last_batch: Option<BatchView>,
    next_sync: Option<String>,
    /// Files waiting to be fetched and analysed.
    queue_pending: u64,
    queue_parked: u64,
    /// Items waiting in its write-back, remediation and (for a notifier) notification stages.
    stage_pending: u64,
    stage_parked: u64,
    /// Whether its syncs run the pixel stage.
    pixels: bool,
    /// Its files now, by the risk of their latest analysis (whatever run analysed them; removed
    /// files left out): what a quiet last run with no new file does not show.
    current_risk: BTreeMap<String, u64>,
    /// Its files not analysed (pending, failed or parked).
    not_analysed: u64,
    created_at: String,
    updated_at: String,
}

/// The status an integration shows, and the error that goes with it, from its stored status
/// and its last run: a source whose last run failed is failing (whatever resuming it stored),
/// one that never ran is new (not a healthy one with no sync), a paused one is paused and keeps
/// its error. Notifiers have no runs; their stored status is their last delivery's.
fn true_status(
    r: &IntegrationRecord,
    last_batch: Option<&BatchRecord>,
    source: bool,
) -> (&'static str, Option<String>) {
    use proofpix_store::IntegrationStatus as S;
    let run_error = last_batch.and_then(Host::run_error).map(str::to_string);
    if !r.enabled || r.status == S::Paused {
        return ("paused", r.last_error.clone().or(run_error));
    }
    match r.status {
        S::NeedsReauth => return ("needs-reauth", r.last_error.clone().or(run_error)),
        S::Failing => return ("failing", r.last_error.clone().or(run_error)),
        _ => {}
    }
    if run_error.is_some() {
        return ("failing", run_error);
    }
    if source && last_batch.is_none() {
        return ("new", None);
    }
    match r.status {
        S::New => ("new", None),
        _ => ("healthy", None),
    }
}

fn is_source(state: &AppState, r: &IntegrationRecord) -> bool {
    state
        .host()
        .plugin(&r.plugin_id)
        .is_some_and(|p| p.info().capabilities.contains(&Capability::Source))
}

async fn integration_view(state: &AppState, r: IntegrationRecord) -> ApiResult<IntegrationView> {
    let plugin = state.host().plugin(&r.plugin_id);
    let id = r.id.clone();
    let created_at = r.created_at;
    let (secrets_set, last_batch, depth, stages) = blocking(state, move |s| {
        Ok((
            s.secret_fields(&id)?,
            s.recent_batches(Some(&id), 1)?
                .into_iter()
                .next()
                .filter(|b| b.started_at >= created_at),
            s.depth(&id)?,
            s.stage_depth(&id)?,
        ))
    })
    .await?;
    let pixels = proofpix_service::pixels_on(&r);
    let (status, last_error) = true_status(&r, last_batch.as_ref(), is_source(state, &r));
    let risk = current_risk(
        state,
        &r.id,
        last_batch
            .as_ref()
            .map_or((0, true), |b| (b.id, b.finished_at.is_some())),
    )
    .await?;
    let grant = r.grant.clone();
    let subscriptions = r
        .subscriptions
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    let config = r.config.clone();
    Ok(IntegrationView {
        platform: plugin
            .as_ref()
            .map(|p| p.info().platform.clone())
            .unwrap_or_default(),
        display_name: plugin
            .as_ref()
            .map(|p| p.info().display_name.clone())
            .unwrap_or_default(),
        capabilities: plugin
            .as_ref()
            .map(|p| capability_names(p.info()))
            .unwrap_or_default(),
        syncing: state.is_running(&r.id),
        next_sync: if r.enabled {
            state.next_run(&r.id).map(rfc3339)
        } else {
            None
        },
        status: status.to_string(),
        last_error,
        id: r.id,
        plugin: r.plugin_id,
        plugin_version: r.plugin_version,
        config,
        secrets_set,
        grant: grant.into(),
        subscriptions,
        schedule: r.schedule,
        enabled: r.enabled,
        last_batch: last_batch.as_ref().map(batch_view),
        queue_pending: depth.pending,
        queue_parked: depth.parked,
        stage_pending: stages.pending,
        stage_parked: stages.parked,
        pixels,
        current_risk: risk.by_risk,
        not_analysed: risk.not_analysed,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    })
}

/// An integration's current risk: from the cache while its newest batch is the one it was
/// computed for, else one pass over its files in key order (a page of 1,000 at a time).
async fn current_risk(
    state: &AppState,
    id: &str,
    as_of: (u64, bool),
) -> ApiResult<crate::state::RiskSummary> {
    // On a shared store other nodes' runs add results under a batch this node already saw
    // finished: there a summary is recomputed after a short time as well.
    let shared = state.host().local_store().is_none();
    let fresh = |s: &crate::state::RiskSummary| {
        !shared
            || s.computed
                .is_some_and(|at| at.elapsed() < crate::state::SHARED_RISK_TTL)
    };
    if let Some(hit) = state
        .inner
        .risk_cache
        .lock()
        .ok()
        .and_then(|c| c.get(id).filter(|s| s.as_of == as_of && fresh(s)).cloned())
    {
        return Ok(hit);
    }
    let integration = id.to_string();
    let summary = blocking(state, move |s| {
        let mut q = proofpix_store::InventoryQuery {
            integrations: vec![integration],
            sort: proofpix_store::InventorySort::Key,
            limit: 1000,
            ..proofpix_store::InventoryQuery::default()
        };
        let mut out = crate::state::RiskSummary {
            as_of,
            computed: Some(std::time::Instant::now()),
            ..Default::default()
        };
        loop {
            let page = s.inventory(&q)?;
            for row in page.rows {
                if row.status == proofpix_store::FileStatus::Removed {
                    continue;
                }
                match row.risk {
                    Some(r) => *out.by_risk.entry(r.to_string()).or_default() += 1,
                    None => out.not_analysed += 1,
                }
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(out),
            }
        }
    })
    .await?;
    if let Ok(mut c) = state.inner.risk_cache.lock() {
        c.insert(id.to_string(), summary.clone());
    }
    Ok(summary)
}

/// Every integration.
#[utoipa::path(get, path = "/api/integrations", tag = "integrations", responses((status = 200, body = [IntegrationView])))]
pub async fn list_integrations(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<IntegrationView>>> {
    let records = blocking(&state, |s| s.integrations()).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        out.push(integration_view(&state, r).await?);
    }
    Ok(Json(out))
}

/// One integration.
#[utoipa::path(get, path = "/api/integrations/{id}", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = IntegrationView), (status = 404, body = crate::error::Problem)))]
pub async fn get_integration(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let r = state.host().integration(&id)?;
    Ok(Json(integration_view(&state, r).await?))
}

/// A new integration. Secrets are write-only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// Its name: a-z, 0-9 and -.
    id: String,
    /// The plugin id.
    plugin: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Secret field values; never returned.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    grant: GrantView,
    /// For notifiers: `{sources, events, min_risk, digest, dashboard_url}`.
    #[serde(default)]
    #[schema(value_type = Option<SubscriptionsDoc>)]
    subscriptions: Option<Subscriptions>,
    /// An interval from `5m` to `24h` (`15m`, `6h`), or `cron <expr> [time zone]`.
    #[serde(default)]
    schedule: Option<String>,
    /// Runs the pixel stage (QR codes, personal data in OCR text) in its syncs (default off).
    #[serde(default)]
    pixels: Option<bool>,
}

/// A notifier's subscriptions (documentation of [`Subscriptions`], which reads them with the
/// same fields and checks the events and `min_risk`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SubscriptionsDoc {
    /// Source integrations to listen to; `*` for all (the default).
    #[serde(default)]
    #[schema(nullable = false)]
    sources: Option<Vec<String>>,
    /// The events to send (default: all of them).
    #[serde(default)]
    #[schema(nullable = false)]
    events: Option<Vec<NotifyEventDoc>>,
    /// Lowest file risk that raises an alert (default `high`).
    #[serde(default)]
    #[schema(nullable = false)]
    min_risk: Option<AlertRiskDoc>,
    /// Send alerts as digests (up to 50 files a message).
    #[serde(default)]
    #[schema(nullable = false)]
    digest: Option<bool>,
    /// Seconds an alert or summary may wait so that later ones join it (0, the default:
    /// when the run ends).
    #[serde(default)]
    #[schema(nullable = false)]
    window_secs: Option<u64>,
    /// Send a summary for runs that processed no file too.
    #[serde(default)]
    #[schema(nullable = false)]
    empty_batches: Option<bool>,
    /// A dashboard link to put in batch summaries.
    #[serde(default)]
    dashboard_url: Option<String>,
}

/// A notifier event (the contract's `high-risk-files` and `integration-unhealthy` are
/// accepted for `high-risk` and `unhealthy`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum NotifyEventDoc {
    /// A file at or above `min_risk`.
    HighRisk,
    /// A summary of each run of a source.
    BatchCompleted,
    /// A run of a source failed.
    BatchFailed,
    /// A source cannot run.
    Unhealthy,
    /// The contract's name for `high-risk`.
    HighRiskFiles,
    /// The contract's name for `unhealthy`.
    IntegrationUnhealthy,
}

/// The lowest risk that raises an alert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AlertRiskDoc {
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

/// Changes to an integration; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    /// Replaces the non-secret config.
    #[serde(default)]
    config: Option<BTreeMap<String, String>>,
    /// Replaces these secrets (others stay).
    #[serde(default)]
    secrets: Option<BTreeMap<String, String>>,
    #[serde(default)]
    grant: Option<GrantView>,
    #[serde(default)]
    #[schema(value_type = Option<SubscriptionsDoc>)]
    subscriptions: Option<Subscriptions>,
    /// A new schedule (an interval from `5m` to `24h`, or `cron <expr> [time zone]`); an empty
    /// string removes it.
    #[serde(default)]
    schedule: Option<String>,
    /// Turns the pixel stage (QR codes, personal data in OCR text) on or off for its syncs.
    #[serde(default)]
    pixels: Option<bool>,
}

fn check_schedule(s: &Option<String>) -> ApiResult<()> {
    if let Some(s) = s.as_deref().filter(|s| !s.is_empty()) {
        proofpix_service::schedule::Schedule::parse(s).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("schedule {e}"))
        })?;
    }
    Ok(())
}

/// Checks the operator's grant against the plugin before anything is stored: every host
/// entry parses (`https://host[:port]`, `https://*.domain`), and every mount (read or write)
/// is one the plugin declares. 422 naming the field otherwise.
fn check_grant(plugin: &proofpix_runtime::Plugin, grant: &GrantView) -> ApiResult<()> {
    let bad = |detail: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
    for (i, h) in grant.hosts.iter().enumerate() {
        proofpix_policy::AllowedHost::parse(h).map_err(|e| {
            bad(format!(
                "grant.hosts[{i}] {h:?} {e}; write each host as https://host, https://host:port or https://*.domain"
            ))
        })?;
    }
    let declared: Vec<&str> = plugin
        .info()
        .filesystem
        .iter()
        .map(|m| m.guest_path.as_str())
        .collect();
    for (field, list) in [("mounts", &grant.mounts), ("write", &grant.write)] {
        for (i, m) in list.iter().enumerate() {
            if !declared.contains(&m.as_str()) {
                return Err(bad(format!(
                    "grant.{field}[{i}] {m:?} is not a mount plugin {} declares (it declares: {})",
                    plugin.info().id,
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Creates an integration (admin).
#[utoipa::path(post, path = "/api/integrations", tag = "integrations", request_body = CreateIntegration, responses((status = 201, body = IntegrationView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create_integration(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateIntegration>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    caller.require(Role::Admin)?;
    if state.host().store().integration(&body.id)?.is_some() {
        return Err(ApiError::conflict(format!(
            "integration {:?} exists; update it with PATCH",
            body.id
        )));
    }
    check_schedule(&body.schedule)?;
    if let Some(plugin) = state.host().plugin(&body.plugin) {
        check_grant(&plugin, &body.grant)?;
    }
    let spec = IntegrationSpec {
        id: body.id.clone(),
        plugin: body.plugin,
        config: body.config,
        secrets: body
            .secrets
            .into_iter()
            .map(|(k, v)| (k, Secret::from(v)))
            .collect(),
        grant: body.grant.into(),
        subscriptions: body.subscriptions,
        schedule: body.schedule.filter(|s| !s.is_empty()),
    };
    let mut record = state
        .host()
        .create_integration(spec, &caller.actor())
        .await?;
    if body.pixels == Some(true) {
        state.host().set_pixels(&body.id, true, &caller.actor())?;
        record = state.host().integration(&body.id)?;
    }
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok((
        StatusCode::CREATED,
        Json(integration_view(&state, record).await?),
    ))
}

/// Updates an integration (admin).
#[utoipa::path(patch, path = "/api/integrations/{id}", tag = "integrations", params(("id" = String, Path)), request_body = UpdateIntegration, responses((status = 200, body = IntegrationView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateIntegration>,
) -> ApiResult<Json<IntegrationView>> {
    caller.require(Role::Admin)?;
    let current = state.host().integration(&id)?;
    check_schedule(&body.schedule)?;
    if let (Some(plugin), Some(grant)) = (state.host().plugin(&current.plugin_id), &body.grant) {
        check_grant(&plugin, grant)?;
    }
    let spec = IntegrationSpec {
        id: id.clone(),
        plugin: current.plugin_id.clone(),
        config: body.config.unwrap_or_else(|| current.config.clone()),
        secrets: body
            .secrets
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Secret::from(v)))
            .collect(),
        grant: match body.grant {
            Some(g) => g.into(),
            None => current.grant.clone(),
        },
        subscriptions: body.subscriptions.or_else(|| current.subscriptions.clone()),
        schedule: match body.schedule {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s),
            None => current.schedule.clone(),
        },
    };
    let mut record = state
        .host()
        .create_integration(spec, &caller.actor())
        .await?;
    if let Some(on) = body.pixels {
        state.host().set_pixels(&id, on, &caller.actor())?;
        record = state.host().integration(&id)?;
    }
    // create_integration keeps `enabled` and status from the stored record.
    record.enabled = current.enabled;
    state.runs().reschedule(&id);
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok(Json(integration_view(&state, record).await?))
}

/// Deletes an integration and what it owns (admin): secrets, tokens, state, file records,
/// queued work, and its analysis results and batches (audited as
/// `integration.purge-history` with the counts).
#[utoipa::path(delete, path = "/api/integrations/{id}", tag = "integrations", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn delete_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if state.is_running(&id) {
        return Err(ApiError::conflict(format!(
            "integration {id:?} is syncing; try again when the run ends"
        )));
    }
    state
        .host()
        .delete_integration(&id, &caller.actor())
        .await?;
    // Its results and batches go too: a later integration with the same id starts clean.
    let actor = caller.actor();
    state.host().purge_history(&id, &actor).await?;
    if let Ok(mut c) = state.inner.risk_cache.lock() {
        c.remove(&id);
    }
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok(StatusCode::NO_CONTENT)
}

/// An integration's remediation policy and the actions its plugin offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemediationView {
    /// `{actions, min_risk, delay_secs, simulate, label}`; `null` when none is set, and then
    /// nothing is ever changed on the platform.
    #[schema(value_type = Option<Object>)]
    policy: Option<RemediationPolicy>,
    /// The actions the plugin declares (`replace-with-sanitised`, `restrict-sharing`,
    /// `apply-label`, `quarantine`, `notify-owner`); a policy may enable only these.
    #[schema(value_type = Vec<String>)]
    available: Vec<RemediationKind>,
}

fn remediation_view(state: &AppState, id: &str) -> ApiResult<RemediationView> {
    let record = state.host().integration(id)?;
    Ok(RemediationView {
        policy: state.host().remediation_policy(id)?,
        available: state
            .host()
            .plugin(&record.plugin_id)
            .map(|p| proofpix_service::declared_actions(&p))
            .unwrap_or_default(),
    })
}

/// A remediation policy, as `PUT .../remediation` takes it (documentation of
/// [`RemediationPolicy`], whose checks are the same).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RemediationPolicyDoc {
    /// The actions to take, each at most once; only actions the plugin offers.
    #[serde(default)]
    actions: Vec<RemediationActionDoc>,
    /// Act on files at this risk level or above (default `high`; absent, not `null`).
    #[serde(default)]
    #[schema(nullable = false)]
    min_risk: Option<MinRiskDoc>,
    /// Seconds to wait after the analysis before acting (0: at the end of the sync; at most 30 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2_592_000, nullable = false)]
    delay_secs: Option<u64>,
    /// Only report what would be done (default `true`; absent, not `null`).
    #[serde(default)]
    #[schema(nullable = false)]
    simulate: Option<bool>,
    /// The label `apply-label` applies (required with it, and then not blank; at most 128
    /// characters).
    #[serde(default)]
    #[schema(max_length = 128)]
    label: Option<String>,
}

/// A remediation action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum RemediationActionDoc {
    /// Replace the file with the sanitised copy.
    ReplaceWithSanitised,
    /// Remove public links and external sharing.
    RestrictSharing,
    /// Apply the policy's label.
    ApplyLabel,
    /// Move the file to quarantine.
    Quarantine,
    /// Tell the file's owner.
    NotifyOwner,
}

/// A remediation threshold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum MinRiskDoc {
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

/// An integration's remediation policy (viewer).
#[utoipa::path(get, path = "/api/integrations/{id}/remediation", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = RemediationView), (status = 404, body = crate::error::Problem)))]
pub async fn get_remediation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RemediationView>> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_view(&state, &id)?))
}

/// Sets an integration's remediation policy (admin). Simulation is the default: a policy
/// acts on the platform only with `"simulate": false`. Refused (422) when it enables an action
/// the plugin does not offer, or a field is out of range.
#[utoipa::path(put, path = "/api/integrations/{id}/remediation", tag = "integrations", params(("id" = String, Path)), request_body = RemediationPolicyDoc, responses((status = 200, body = RemediationView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn put_remediation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(policy): ApiJson<RemediationPolicy>,
) -> ApiResult<Json<RemediationView>> {
    caller.require(Role::Admin)?;
    state
        .host()
        .set_remediation(&id, Some(policy), &caller.actor())
        .await?;
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok(Json(remediation_view(&state, &id)?))
}

/// Removes an integration's remediation policy, so nothing is acted on (admin).
#[utoipa::path(delete, path = "/api/integrations/{id}/remediation", tag = "integrations", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn delete_remediation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    state
        .host()
        .set_remediation(&id, None, &caller.actor())
        .await?;
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok(StatusCode::NO_CONTENT)
}

/// A connection test step.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestStepView {
    name: String,
    ok: bool,
    detail: String,
}

/// The result of a connection test.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestView {
    ok: bool,
    steps: Vec<TestStepView>,
}

/// Tests the connection (operator).
#[utoipa::path(post, path = "/api/integrations/{id}/test", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = TestView)))]
pub async fn test_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TestView>> {
    caller.require(Role::Operator)?;
    state.host().integration(&id)?;
    let report = state.host().test(&id).await;
    Ok(Json(TestView {
        ok: report.ok(),
        steps: report
            .steps
            .into_iter()
            .map(|s| TestStepView {
                name: s.name,
                ok: s.ok,
                detail: s.detail,
            })
            .collect(),
    }))
}

/// How a sync runs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// `incremental` (default), `full` or `reanalyse`.
    #[serde(default)]
    #[schema(value_type = Option<SyncModeDoc>)]
    mode: Option<String>,
}

/// How much a sync does.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SyncModeDoc {
    /// Only what changed since the last run (the default).
    Incremental,
    /// List everything again.
    Full,
    /// Analyse every file again.
    Reanalyse,
}

/// What a sync request did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    /// `started`, or `follow-up` when a run was in progress.
    outcome: &'static str,
}

/// Starts a sync now (operator).
#[utoipa::path(post, path = "/api/integrations/{id}/sync", tag = "integrations", params(("id" = String, Path)), request_body(content = SyncRequest, content_type = "application/json"), responses((status = 202, body = SyncAccepted), (status = 503, body = crate::error::Problem)))]
pub async fn sync_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<SyncAccepted>)> {
    caller.require(Role::Operator)?;
    let body: Option<SyncRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the sync request is not JSON: {e}")))?;
        Some(crate::error::object_body(v)?)
    };
    let r = state.host().integration(&id)?;
    let plugin = state.host().plugin(&r.plugin_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("plugin {} is not loaded", r.plugin_id),
        )
    })?;
    if !plugin.info().capabilities.contains(&Capability::Source) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{id} is a notifier; only sources sync"),
        ));
    }
    let mode = match body.and_then(|b| b.mode).as_deref() {
        None | Some("incremental") => SyncMode::Incremental,
        Some("full") => SyncMode::FullListing,
        Some("reanalyse") => SyncMode::Reanalyse,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("mode {other:?} is not incremental, full or reanalyse"),
            ));
        }
    };
    state
        .host()
        .audit(proofpix_store::AuditEvent::new(
            caller.actor(),
            "integration.sync",
            &id,
        ))
        .await?;
    match state.trigger(&id, mode, "manual") {
        TriggerOutcome::Started => Ok((
            StatusCode::ACCEPTED,
            Json(SyncAccepted { outcome: "started" }),
        )),
        TriggerOutcome::FollowUp => Ok((
            StatusCode::ACCEPTED,
            Json(SyncAccepted {
                outcome: "follow-up",
            }),
        )),
        TriggerOutcome::ShuttingDown => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        )),
    }
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Json<IntegrationView>> {
    caller.require(Role::Operator)?;
    state
        .host()
        .set_enabled(&id, enabled, &caller.actor())
        .await?;
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    let r = state.host().integration(&id)?;
    Ok(Json(integration_view(&state, r).await?))
}

/// Enables scheduled runs (operator).
#[utoipa::path(post, path = "/api/integrations/{id}/enable", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = IntegrationView)))]
pub async fn enable_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    set_enabled(state, caller, id, true).await
}

/// Pauses scheduled runs (operator).
#[utoipa::path(post, path = "/api/integrations/{id}/disable", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = IntegrationView)))]
pub async fn disable_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    set_enabled(state, caller, id, false).await
}

// ----- files, results, batches ----------------------------------------------

/// Paging for lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Return items after this key.
    after: Option<String>,
    /// At most this many (default 100, 1-1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A list's `limit` (default 100): 1-1000, as the schema says; anything else is a 422.
fn limit(p: Option<usize>) -> ApiResult<usize> {
    let n = p.unwrap_or(100);
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(unprocessable(format!(
            "limit {n} is not between 1 and 1000"
        )))
    }
}

/// A file as the store knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    remote_id: String,
    name: String,
    version: String,
    /// `pending`, `analysed`, `written`, `failed`, `parked`, `removed`.
    status: String,
    attempts: u32,
    last_error: Option<String>,
    last_result: Option<u64>,
    updated_at: String,
}

fn file_view(f: FileRecord) -> FileView {
    FileView {
        status: format!("{:?}", f.status).to_lowercase(),
        remote_id: f.remote_id,
        name: f.name,
        version: f.version,
        attempts: f.attempts,
        last_error: f.last_error,
        last_result: f.last_result,
        updated_at: rfc3339(f.updated_at),
    }
}

/// An integration's files.
#[utoipa::path(get, path = "/api/integrations/{id}/files", tag = "files", params(("id" = String, Path), Page), responses((status = 200, body = [FileView])))]
pub async fn list_files(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<FileView>>> {
    state.host().integration(&id)?;
    let n = limit(page.limit)?;
    let files = blocking(&state, move |s| s.files(&id, page.after.as_deref(), n)).await?;
    Ok(Json(files.into_iter().map(file_view).collect()))
}

/// A stored analysis result with its report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    id: u64,
    integration: String,
    remote_id: String,
    file_version: String,
    #[schema(value_type = String)]
    risk: proofpix_store::RiskLevel,
    score: u32,
    created_at: String,
    /// The analysis report: format, findings (values masked), errors.
    report: serde_json::Value,
}

fn result_view(r: proofpix_store::AnalysisResult) -> ResultView {
    ResultView {
        report: serde_json::from_str(&r.report_json).unwrap_or(serde_json::Value::Null),
        id: r.id,
        integration: r.integration,
        remote_id: r.remote_id,
        file_version: r.file_version,
        risk: r.risk,
        score: r.score,
        created_at: rfc3339(r.created_at),
    }
}

/// One analysis result.
#[utoipa::path(get, path = "/api/results/{id}", tag = "files", params(("id" = u64, Path)), responses((status = 200, body = ResultView), (status = 404, body = crate::error::Problem)))]
pub async fn get_result(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<ResultView>> {
    let r = blocking(&state, move |s| s.result(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no result {id}")))?;
    Ok(Json(result_view(r)))
}

/// Query for batches.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// Only this integration's.
    integration: Option<String>,
    /// At most this many, newest first (default 50, 1-1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Recent runs, newest first.
#[utoipa::path(get, path = "/api/batches", tag = "batches", params(BatchQuery), responses((status = 200, body = [BatchView])))]
pub async fn list_batches(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<BatchQuery>,
) -> ApiResult<Json<Vec<BatchView>>> {
    let n = limit(Some(q.limit.unwrap_or(50)))?;
    let batches = blocking(&state, move |s| {
        s.recent_batches(q.integration.as_deref(), n)
    })
    .await?;
    Ok(Json(batches.iter().map(batch_view).collect()))
}

/// A run with its per-file results.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDetail {
    #[serde(flatten)]
    batch: BatchView,
    results: Vec<ResultView>,
}

/// One run with its per-file results.
#[utoipa::path(get, path = "/api/batches/{id}", tag = "batches", params(("id" = u64, Path)), responses((status = 200, body = BatchDetail), (status = 404, body = crate::error::Problem)))]
pub async fn get_batch(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<BatchDetail>> {
    let (batch, results) = blocking(&state, move |s| {
        let Some(b) = s.batch(id)? else {
            return Ok((None, Vec::new()));
        };
        let mut results = Vec::new();
        for rid in b.result_ids.iter().take(5000) {
            if let Some(r) = s.result(*rid)? {
                results.push(r);
            }
        }
        Ok((Some(b), results))
    })
    .await?;
    let batch = batch.ok_or_else(|| ApiError::not_found(format!("there is no batch {id}")))?;
    Ok(Json(BatchDetail {
        batch: batch_view(&batch),
        results: results.into_iter().map(result_view).collect(),
    }))
}

// ----- audit, settings, stats -----------------------------------------------

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    seq: u64,
    time: String,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    details: serde_json::Value,
}

/// Query for audit entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this sequence number on (default: the newest). Newest first.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64, format = Int64)]
    from: Option<u64>,
    /// At most this many (default 100, 1-1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The audit trail.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditView])))]
pub async fn list_audit(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditView>>> {
    let n = limit(q.limit)?;
    if q.from.is_some_and(|f| f > i64::MAX as u64) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "from must be at most {} (an audit sequence number)",
                i64::MAX
            ),
        ));
    }
    let entries = blocking(&state, move |s| match q.from {
        Some(from) => s.audit_entries(from, n).map(|mut v| {
            v.reverse();
            v
        }),
        None => s.audit_latest(n),
    })
    .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
                seq: e.seq,
                time: e.time,
                actor: e.actor,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
            })
            .collect(),
    ))
}

/// Daemon-wide settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run scheduled syncs.
    pub auto_sync: bool,
    /// Schedule for integrations without their own: an interval from `5m` to `24h` (`1h`), or
    /// `cron <expr> [time zone]`.
    #[serde(default)]
    pub default_schedule: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto_sync: true,
            default_schedule: Some("1h".into()),
        }
    }
}

/// Reads the stored settings.
pub fn load_settings(store: &dyn proofpix_store::Backend) -> Settings {
    store
        .setting("daemon")
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// The settings, with the file-level values that only the configuration
/// file changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// Run scheduled syncs.
    auto_sync: bool,
    /// Schedule for integrations without their own (`1h`, `cron ...`).
    default_schedule: Option<String>,
    /// From the configuration file (`pipeline.concurrency`).
    concurrency: usize,
    /// From the configuration file (`pipeline.max_parallel_runs`).
    max_parallel_runs: usize,
}

/// Daemon settings.
#[utoipa::path(get, path = "/api/settings", tag = "settings", responses((status = 200, body = SettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<SettingsView>> {
    let settings = blocking(&state, |s| Ok(load_settings(s))).await?;
    Ok(Json(SettingsView {
        auto_sync: settings.auto_sync,
        default_schedule: settings.default_schedule,
        concurrency: state
            .config()
            .pipeline
            .concurrency
            .unwrap_or_else(|| proofpix_pipeline::PipelineOptions::default().concurrency),
        max_parallel_runs: state.config().pipeline.max_parallel_runs,
    }))
}

/// Replaces the settings (admin).
#[utoipa::path(put, path = "/api/settings", tag = "settings", request_body = Settings, responses((status = 200, body = SettingsView), (status = 422, body = crate::error::Problem)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Settings>,
) -> ApiResult<Json<SettingsView>> {
    caller.require(Role::Admin)?;
    check_schedule(&body.default_schedule)?;
    let json = serde_json::to_string(&body).map_err(ApiError::internal)?;
    state
        .host()
        .put_setting("daemon", json, &caller.actor())
        .await?;
    get_settings(State(state), caller).await
}

/// Headline numbers for the dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    integrations_total: usize,
    integrations_active: usize,
    integrations_failing: usize,
    files_processed: u64,
    /// Over the recorded runs, 0 to 1: files analysed successfully, out of those analysed,
    /// those that failed, and the runs that failed as a whole (each counts as one failure, so
    /// an integration whose every run is refused does not read as 100%).
    success_rate: f64,
    /// Recorded runs (finished or running).
    runs_total: u64,
    /// Recorded runs that failed as a whole.
    runs_failed: u64,
    by_risk: BTreeMap<String, u64>,
    queue_pending: u64,
    queue_parked: u64,
    /// Items waiting in write-back, remediation and notification stages.
    stage_pending: u64,
    stage_parked: u64,
    syncing: Vec<String>,
    uptime_secs: u64,
}

/// Headline numbers.
#[utoipa::path(get, path = "/api/stats", tag = "stats", responses((status = 200, body = Stats)))]
pub async fn stats(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Stats>> {
    let (records, batches, results) = blocking(&state, |s| {
        Ok((
            s.integrations()?,
            s.recent_batches(None, 10_000)?,
            s.result_count()?,
        ))
    })
    .await?;
    let mut by_risk = BTreeMap::new();
    let (mut ok, mut total, mut runs_failed) = (0u64, 0u64, 0u64);
    // Newest first: the first batch seen of an integration is its last run.
    let mut last_runs: BTreeMap<&str, &BatchRecord> = BTreeMap::new();
    for b in &batches {
        ok += b.ok;
        total += b.ok + b.errors;
        if Host::run_error(b).is_some() {
            runs_failed += 1;
            total += 1;
        }
        last_runs.entry(b.integration.as_str()).or_insert(b);
        for (k, v) in &b.by_risk {
            *by_risk.entry(k.clone()).or_insert(0) += v;
        }
    }
    let (mut pending, mut parked, mut stage_pending, mut stage_parked) = (0, 0, 0, 0);
    for r in &records {
        let id = r.id.clone();
        let (d, st) = blocking(&state, move |s| Ok((s.depth(&id)?, s.stage_depth(&id)?))).await?;
        pending += d.pending;
        parked += d.parked;
        stage_pending += st.pending;
        stage_parked += st.parked;
    }
    Ok(Json(Stats {
        integrations_total: records.len(),
        integrations_active: records.iter().filter(|r| r.enabled).count(),
        integrations_failing: records
            .iter()
            .filter(|r| {
                let last = last_runs
                    .get(r.id.as_str())
                    .copied()
                    .filter(|b| b.started_at >= r.created_at);
                matches!(
                    true_status(r, last, is_source(&state, r)).0,
                    "failing" | "needs-reauth"
                )
            })
            .count(),
        files_processed: results,
        runs_total: batches.len() as u64,
        runs_failed,
        success_rate: if total == 0 {
            1.0
        } else {
            ok as f64 / total as f64
        },
        by_risk,
        queue_pending: pending,
        queue_parked: parked,
        stage_pending,
        stage_parked,
        syncing: state.running(),
        uptime_secs: state.uptime().as_secs(),
    }))
}

// ----- tokens and sessions --------------------------------------------------

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1-64 letters, digits, `-` or `_`; unique.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    name: String,
    role: Role,
}

/// A token as listed (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    name: String,
    role: String,
    created_by: String,
    created_at: String,
}

/// A created token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    name: String,
    role: Role,
    /// Shown once; store it now.
    token: String,
}

/// API tokens (admin).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", responses((status = 200, body = [TokenView])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    caller.require(Role::Admin)?;
    let tokens = blocking(&state, |s| s.api_tokens()).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                name: t.name,
                role: t.role,
                created_by: t.created_by,
                created_at: rfc3339(t.created_at),
            })
            .collect(),
    ))
}

/// Creates an API token (admin). The token is in the response only. A name in use is
/// refused with 409: revoke it first, or rotate its secret with `POST /api/tokens/{name}/rotate`.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = CreatedToken), (status = 409, body = crate::error::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    caller.require(Role::Admin)?;
    if body.name.is_empty()
        || body.name.len() > 64
        || !body
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a token name is 1-64 letters, digits, - or _",
        ));
    }
    let token = new_token();
    let record = ApiTokenRecord {
        name: body.name.clone(),
        role: body.role.as_str().into(),
        created_by: caller.actor(),
        created_at: state.host().store().now(),
    };
    if !state
        .host()
        .create_api_token(&token_hash(&token), record, &caller.actor())
        .await?
    {
        return Err(ApiError::conflict(format!(
            "a token named {:?} exists; revoke it first (DELETE /api/tokens/{{name}}) or rotate its secret (POST /api/tokens/{{name}}/rotate)",
            body.name
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: body.name,
            role: body.role,
            token,
        }),
    ))
}

/// Replaces a token's secret (admin): same name and role, a new token in the response
/// (shown once); the old one stops working at once. Audited as `api-token.rotate`.
#[utoipa::path(post, path = "/api/tokens/{name}/rotate", tag = "tokens", params(("name" = String, Path)), responses((status = 200, body = CreatedToken), (status = 404, body = crate::error::Problem)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CreatedToken>> {
    caller.require(Role::Admin)?;
    let token = new_token();
    let record = state
        .host()
        .rotate_api_token(&name, &token_hash(&token), &caller.actor())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no token named {name:?}")))?;
    let role = Role::parse(&record.role).ok_or_else(|| ApiError::internal("unknown role"))?;
    Ok(Json(CreatedToken {
        name: record.name,
        role,
        token,
    }))
}

/// Revokes an API token (admin), and every dashboard session opened with it.
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens", params(("name" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if state
        .host()
        .delete_api_token(&name, &caller.actor())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "there is no token named {name:?}"
        )))
    }
}

/// Signs the dashboard in with a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    token: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    name: String,
    role: Role,
}

/// Signs in: checks the token, opens a server-side session and sets its id
/// as the HttpOnly session cookie (never the token itself).
#[utoipa::path(post, path = "/api/session", tag = "session", request_body = SessionRequest, responses((status = 200, body = SessionView), (status = 401, body = crate::error::Problem)))]
pub async fn create_session(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SessionRequest>,
) -> ApiResult<Response> {
    let token_sha256 = token_hash(body.token.trim());
    let hash = token_sha256.clone();
    let record = blocking(&state, move |s| s.api_token(&hash))
        .await?
        .ok_or_else(|| ApiError::unauthorized("this token is not valid"))?;
    let role = Role::parse(&record.role).ok_or_else(|| ApiError::internal("unknown role"))?;
    let id =
        new_session_id().ok_or_else(|| ApiError::internal("the system's random source failed"))?;
    let lifetime = state.config().session_lifetime();
    let now = state.host().store().now();
    let session = SessionRecord {
        token_sha256,
        token_name: record.name.clone(),
        created_at: now,
        expires_at: now + lifetime,
    };
    // Sign-in is a good moment to drop sessions that expired (the service does).
    if !state
        .host()
        .start_session(&session_hash(&id), session)
        .await?
    {
        return Err(ApiError::unauthorized("this token is not valid"));
    }
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        lifetime.as_secs(),
        if secure_cookies(&state) {
            "; Secure"
        } else {
            ""
        }
    );
    let mut resp = Json(SessionView {
        name: record.name,
        role,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(resp)
}

/// Whether the dashboard is reached over HTTPS (its public URL says so), so
/// the session cookie is marked `Secure`.
fn secure_cookies(state: &AppState) -> bool {
    state
        .config()
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
}

/// The signed-in caller.
#[utoipa::path(get, path = "/api/session", tag = "session", responses((status = 200, body = SessionView), (status = 401, body = crate::error::Problem)))]
pub async fn get_session(caller: Caller) -> Json<SessionView> {
    Json(SessionView {
        name: caller.name,
        role: caller.role,
    })
}

/// Signs out: ends the session server-side (the id is useless from then on,
/// wherever a copy of the cookie went) and clears the cookie.
#[utoipa::path(delete, path = "/api/session", tag = "session", responses((status = 204), (status = 403, body = crate::error::Problem)))]
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(id) = session_cookie(&headers) {
        if !headers.contains_key(CSRF_HEADER) {
            return Err(ApiError::forbidden(format!(
                "changes made with the session cookie must carry the {CSRF_HEADER} header"
            )));
        }
        state.host().end_session(&session_hash(&id)).await?;
    }
    let mut out = HeaderMap::new();
    out.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
            if secure_cookies(&state) {
                "; Secure"
            } else {
                ""
            }
        ))
        .map_err(ApiError::internal)?,
    );
    Ok((StatusCode::NO_CONTENT, out).into_response())
}

/// Live updates as server-sent events (`LiveEvent` JSON in each `data:`).
#[utoipa::path(get, path = "/api/events", tag = "live", responses((status = 200, description = "text/event-stream of LiveEvent")))]
pub async fn events(
    State(state): State<AppState>,
    _caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(state.subscribe())
        .filter_map(|e| e.ok())
        .map(|e| {
            Ok(Event::default()
                .json_data(&e)
                .unwrap_or_else(|_| Event::default()))
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Parked files of an integration.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedView {
    item: u64,
    remote_id: String,
    attempts: u32,
    last_error: Option<String>,
}

/// Files that failed too often and wait for an operator.
#[utoipa::path(get, path = "/api/integrations/{id}/parked", tag = "files", params(("id" = String, Path)), responses((status = 200, body = [ParkedView])))]
pub async fn list_parked(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ParkedView>>> {
    state.host().integration(&id)?;
    let parked = blocking(&state, move |s| s.parked(&id, 1000)).await?;
    Ok(Json(
        parked
            .into_iter()
            .map(|p| ParkedView {
                item: p.item,
                remote_id: p
                    .dedup_key
                    .rsplit_once('@')
                    .map_or(p.dedup_key.clone(), |(id, _)| id.to_string()),
                attempts: p.attempts,
                last_error: p.last_error,
            })
            .collect(),
    ))
}

/// Puts a parked file back in the queue (operator).
#[utoipa::path(post, path = "/api/integrations/{id}/parked/{item}/retry", tag = "files", params(("id" = String, Path), ("item" = u64, Path)), responses((status = 202, body = SyncAccepted), (status = 404, body = crate::error::Problem)))]
pub async fn retry_parked(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, item)): Path<(String, u64)>,
) -> ApiResult<(StatusCode, Json<SyncAccepted>)> {
    caller.require(Role::Operator)?;
    state.host().integration(&id)?;
    if !state.host().requeue(&id, item).await? {
        return Err(ApiError::not_found(format!(
            "item {item} is not a parked file of integration {id:?}"
        )));
    }
    let outcome = match state.trigger(&id, SyncMode::QueueOnly, "retry") {
        TriggerOutcome::Started => "started",
        _ => "follow-up",
    };
    Ok((StatusCode::ACCEPTED, Json(SyncAccepted { outcome })))
}

// ----- the file inventory ---------------------------------------------------

/// Search, filters, order and paging of the file inventory.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InventoryParams {
    /// Case-insensitive text in the file name, its platform id or path, or the integration id.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Risk levels, comma-separated: `none`, `low`, `medium`, `high`, `critical`.
    risk: Option<String>,
    /// A finding category of the latest analysis (`gps`, `owner`, `author`, `thumbnail`...).
    category: Option<String>,
    /// Integration ids, comma-separated.
    integration: Option<String>,
    /// Pipeline states, comma-separated: `pending`, `analysed`, `written`, `failed`, `parked`, `removed`.
    status: Option<String>,
    /// Analysed at or after this time (RFC 3339).
    from: Option<String>,
    /// Analysed before this time (RFC 3339).
    to: Option<String>,
    /// `risk` (default), `name` or `analysed`.
    #[param(value_type = Option<InventorySortDoc>, inline)]
    sort: Option<String>,
    /// `desc` (default for `risk` and `analysed`) or `asc` (default for `name`).
    #[param(value_type = Option<SortOrderDoc>, inline)]
    order: Option<String>,
    /// The `next` of the previous page.
    #[param(max_length = 4096)]
    after: Option<String>,
    /// At most this many rows (default 50, 1-1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The inventory's orders (documentation of `sort`: the handler reads the word and refuses
/// any other with 422).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum InventorySortDoc {
    /// Highest risk first.
    Risk,
    /// By file name.
    Name,
    /// By analysis time.
    Analysed,
}

/// A direction (documentation of `order`).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SortOrderDoc {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// One file of the inventory. Names and ids come from the platform and the file: show them
/// as text.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryFileView {
    integration: String,
    /// The platform of the integration's plugin (`SharePoint`, `Slack`...).
    platform: String,
    remote_id: String,
    name: String,
    /// Where a person opens the file on the platform, as the plugin listed it: an absolute
    /// `http` or `https` URL, normalised; `null` when the plugin gave none or anything else.
    web_url: Option<String>,
    version: String,
    /// `pending`, `analysed`, `written`, `failed`, `parked`, `removed`.
    status: String,
    last_error: Option<String>,
    updated_at: String,
    /// The latest analysis (`GET /api/results/{id}`).
    result_id: Option<u64>,
    /// `none`, `low`, `medium`, `high`, `critical`; absent until analysed.
    #[schema(value_type = Option<String>)]
    risk: Option<proofpix_store::RiskLevel>,
    score: Option<u32>,
    analysed_at: Option<String>,
    /// The finding categories of the latest analysis.
    categories: Vec<String>,
}

/// A page of the inventory.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryPageView {
    files: Vec<InventoryFileView>,
    /// Pass as `after` for the next page; `null` on the last page.
    next: Option<String>,
}

const STATUSES: &[&str] = &[
    "pending", "analysed", "written", "skipped", "failed", "parked", "removed",
];

pub(crate) fn unprocessable(detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn list_param(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn file_status(s: &str) -> Option<proofpix_store::FileStatus> {
    use proofpix_store::FileStatus as F;
    Some(match s {
        "pending" => F::Pending,
        "analysed" => F::Analysed,
        "written" => F::Written,
        "skipped" => F::Skipped,
        "failed" => F::Failed,
        "parked" => F::Parked,
        "removed" => F::Removed,
        _ => return None,
    })
}

fn time_param(name: &str, v: &Option<String>) -> ApiResult<Option<time::OffsetDateTime>> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    unprocessable(format!(
                        "{name} {s:?} is not an RFC 3339 time (e.g. 2025-01-31T00:00:00Z)"
                    ))
                },
            )
        })
        .transpose()
}

fn sort_tag(s: proofpix_store::InventorySort) -> &'static str {
    match s {
        proofpix_store::InventorySort::Risk => "risk",
        proofpix_store::InventorySort::Name => "name",
        proofpix_store::InventorySort::AnalysedAt => "analysed",
        proofpix_store::InventorySort::Key => "key",
    }
}

fn encode_cursor(
    sort: proofpix_store::InventorySort,
    c: &proofpix_store::InventoryCursor,
) -> String {
    use base64::Engine as _;
    let v = serde_json::json!([sort_tag(sort), c.number, c.text, c.integration, c.remote_id]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_cursor(
    sort: proofpix_store::InventorySort,
    s: &str,
) -> ApiResult<proofpix_store::InventoryCursor> {
    use base64::Engine as _;
    let bad =
        || unprocessable("after is not a cursor from this list; start again without it".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let (tag, number, text, integration, remote_id): (String, i64, String, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if tag != sort_tag(sort) {
        return Err(unprocessable(format!(
            "after is a cursor of the {tag:?} order, not {:?}; start again without it",
            sort_tag(sort)
        )));
    }
    Ok(proofpix_store::InventoryCursor {
        number,
        text,
        integration,
        remote_id,
    })
}

fn inventory_query(p: &InventoryParams, csv: bool) -> ApiResult<proofpix_store::InventoryQuery> {
    use proofpix_store::InventorySort as S;
    let mut risks = Vec::new();
    for r in list_param(&p.risk) {
        risks.push(proofpix_store::RiskLevel::parse(&r).ok_or_else(|| {
            let names: Vec<&str> = proofpix_store::RiskLevel::ALL.map(|l| l.as_str()).to_vec();
            unprocessable(format!("risk {r:?} is not one of {}", names.join(", ")))
        })?);
    }
    let mut statuses = Vec::new();
    for s in list_param(&p.status) {
        statuses.push(file_status(&s).ok_or_else(|| {
            unprocessable(format!(
                "status {s:?} is not one of {}",
                STATUSES.join(", ")
            ))
        })?);
    }
    let category = p
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if let Some(c) = category
        && !(c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    {
        return Err(unprocessable(format!(
            "category {c:?} is not a finding category (lowercase words joined by -, e.g. gps, location-text)"
        )));
    }
    let search = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > 200) {
        return Err(unprocessable("q is longer than 200 characters".into()));
    }
    let sort = match p.sort.as_deref() {
        None | Some("risk") => S::Risk,
        Some("name") => S::Name,
        Some("analysed") => S::AnalysedAt,
        Some(other) => {
            return Err(unprocessable(format!(
                "sort {other:?} is not risk, name or analysed"
            )));
        }
    };
    // The CSV is in key order whatever `sort` says; a word that is not an order is refused
    // there too, as the schema (one parameter list for both) says.
    let sort = if csv { S::Key } else { sort };
    let descending = match p.order.as_deref() {
        None => sort != S::Name,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(unprocessable(format!("order {other:?} is not asc or desc"))),
    };
    // The CSV has no pages and reads no cursor, but an over-long one is refused there too.
    if p.after.as_ref().is_some_and(|a| a.chars().count() > 4096) {
        return Err(unprocessable("after is longer than 4096 characters".into()));
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(unprocessable(format!(
            "limit {limit} is not between 1 and 1000"
        )));
    }
    Ok(proofpix_store::InventoryQuery {
        search: search.map(str::to_string),
        risks,
        category: category.map(str::to_string),
        integrations: list_param(&p.integration),
        statuses,
        analysed_from: time_param("from", &p.from)?,
        analysed_to: time_param("to", &p.to)?,
        sort,
        descending,
        after: match (csv, p.after.as_deref().filter(|a| !a.is_empty())) {
            (false, Some(a)) => Some(decode_cursor(sort, a)?),
            _ => None,
        },
        limit,
    })
}

fn platforms(state: &AppState) -> ApiResult<BTreeMap<String, String>> {
    Ok(state
        .host()
        .store()
        .integrations()?
        .into_iter()
        .map(|r| {
            let platform = state
                .host()
                .plugin(&r.plugin_id)
                .map(|p| p.info().platform.clone())
                .unwrap_or_default();
            (r.id, platform)
        })
        .collect())
}

fn inventory_view(
    row: proofpix_store::InventoryRow,
    platforms: &BTreeMap<String, String>,
) -> InventoryFileView {
    InventoryFileView {
        platform: platforms.get(&row.integration).cloned().unwrap_or_default(),
        status: format!("{:?}", row.status).to_lowercase(),
        integration: row.integration,
        remote_id: row.remote_id,
        name: row.name,
        web_url: safe_web_url(row.web_url.as_deref()),
        version: row.version,
        last_error: row.last_error,
        updated_at: rfc3339(row.updated_at),
        result_id: row.result_id,
        risk: row.risk,
        score: row.score,
        analysed_at: row.analysed_at.map(rfc3339),
        categories: row.categories,
    }
}

/// Every file of every integration with its latest risk: searched, filtered, sorted and
/// paged with a cursor (`next` → `after`). Viewer.
#[utoipa::path(get, path = "/api/files", tag = "files", params(InventoryParams), responses((status = 200, body = InventoryPageView)))]
pub async fn list_inventory(
    State(state): State<AppState>,
    _caller: Caller,
    Query(p): Query<InventoryParams>,
) -> ApiResult<Json<InventoryPageView>> {
    let q = inventory_query(&p, false)?;
    let sort = q.sort;
    let page = blocking(&state, move |s| s.inventory(&q)).await?;
    let platforms = platforms(&state)?;
    Ok(Json(InventoryPageView {
        next: page.next.as_ref().map(|c| encode_cursor(sort, c)),
        files: page
            .rows
            .into_iter()
            .map(|r| inventory_view(r, &platforms))
            .collect(),
    }))
}

/// One CSV cell: quoted, quotes doubled, and a cell a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) prefixed with `'`.
pub fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

const CSV_HEADER: &str = "integration,platform,remote_id,name,status,risk,score,categories,analysed_at,updated_at,last_error\r\n";

fn csv_line(v: &InventoryFileView) -> String {
    let cells = [
        csv_cell(&v.integration),
        csv_cell(&v.platform),
        csv_cell(&v.remote_id),
        csv_cell(&v.name),
        csv_cell(&v.status),
        csv_cell(v.risk.map_or("", |r| r.as_str())),
        v.score.map(|s| s.to_string()).unwrap_or_default(),
        csv_cell(&v.categories.join(" ")),
        csv_cell(v.analysed_at.as_deref().unwrap_or("")),
        csv_cell(&v.updated_at),
        csv_cell(v.last_error.as_deref().unwrap_or("")),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// The inventory as CSV, with the same search and filters as `GET /api/files` (order,
/// `after` and `limit` do not apply: every matching file, by integration and id). Streamed:
/// any number of rows, a page at a time. Cells are formula-safe. Viewer.
#[utoipa::path(get, path = "/api/files.csv", tag = "files", params(InventoryParams), responses((status = 200, description = "text/csv, one row per file", content_type = "text/csv")))]
pub async fn inventory_csv(
    State(state): State<AppState>,
    _caller: Caller,
    Query(p): Query<InventoryParams>,
) -> ApiResult<Response> {
    let mut q = inventory_query(&p, true)?;
    q.limit = 1000;
    let platforms = platforms(&state)?;
    let store = state.host().store().clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(CSV_HEADER.to_string())).is_err() {
            return;
        }
        loop {
            let page = match store.inventory(&q) {
                Ok(p) => p,
                Err(e) => {
                    // The header is sent; the best we can do is end the body with an error
                    // (the client sees a truncated transfer, never a silent short file).
                    let _ = ApiError::internal(&e);
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            };
            let mut chunk = String::new();
            for row in page.rows {
                chunk.push_str(&csv_line(&inventory_view(row, &platforms)));
            }
            if !chunk.is_empty() && tx.blocking_send(Ok(chunk)).is_err() {
                return; // the client went away
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return,
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"proofpix-files.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

// ----- one file: its risk, why, and what can be done --------------------------

/// How many of the newest audit entries a file page reads for the file's remediation history.
/// Remediation outcomes are audit entries (there is no per-file index of them); a file whose
/// last action is older than this many entries shows no history, and the page says how many it
/// read.
const FILE_HISTORY_AUDIT_SCAN: usize = 20_000;
/// At most this many remediation events per file page, newest first.
const FILE_HISTORY_MAX: usize = 50;

use proofpix_service::{NOT_FROM_PIXELS, stored_risk_from_pixels};

/// One remediation event of a file, from the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemediationEventView {
    /// When (RFC 3339).
    time: String,
    /// `replace-with-sanitised`, `restrict-sharing`, `apply-label`, `quarantine`, `notify-owner`.
    action: String,
    /// `simulated`, `applied`, `not-needed`, `pending`, `already-done`, `uncertain`, `failed`,
    /// `not-applicable`.
    status: String,
    /// What was (or would be) done, or what failed: the plugin's or platform's words.
    detail: String,
    /// The file version acted on.
    version: String,
    /// Where a quarantined file or its tombstone is.
    tombstone: Option<String>,
}

/// One action the plugin offers, for one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileActionView {
    /// The action (as in a remediation policy).
    action: String,
    /// Whether it can help with this file. A sanitised copy cannot when the risk comes from
    /// the pixels.
    offered: bool,
    /// Why not, when it is not offered.
    why_not: Option<String>,
    /// Whether the integration's policy enables it.
    in_policy: bool,
    /// Its latest event for this file, if any.
    last: Option<RemediationEventView>,
}

/// What remediation does, did and can do about one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileRemediationView {
    /// The integration's policy (`null`: none, nothing is ever changed on the platform).
    #[schema(value_type = Option<Object>)]
    policy: Option<RemediationPolicy>,
    /// `none` (no policy), `simulate` or `act`.
    mode: &'static str,
    /// Whether the policy acts on this file: its latest risk is at the policy's level or above.
    policy_applies: bool,
    /// The actions the plugin offers, each with whether it can help here.
    actions: Vec<FileActionView>,
    /// The file's remediation events, newest first.
    history: Vec<RemediationEventView>,
    /// How many of the newest audit entries were read for the history.
    history_scanned: u64,
}

/// One file: its name, state, latest analysis and remediation. Names, ids, errors and
/// finding values come from the platform and the file: show them as text.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileDetailView {
    integration: String,
    /// The platform of the integration's plugin.
    platform: String,
    remote_id: String,
    name: String,
    /// Where a person opens the file on the platform: an absolute `http` or `https` URL,
    /// normalised; `null` when the plugin gave none or anything else.
    web_url: Option<String>,
    version: String,
    /// `pending`, `analysed`, `written`, `skipped`, `failed`, `parked`, `removed`.
    status: String,
    last_error: Option<String>,
    updated_at: String,
    /// The latest analysis with its report; `null` until analysed.
    result: Option<ResultView>,
    /// Whether the latest risk comes from what the picture shows (a pixel finding at the file's
    /// level), which a sanitised copy cannot remove.
    risk_from_pixels: bool,
    remediation: FileRemediationView,
}

/// The remediation events of `remote_id` in the newest audit entries, newest first.
fn remediation_history(
    store: &dyn proofpix_store::Backend,
    integration: &str,
    remote_id: &str,
) -> Result<(Vec<RemediationEventView>, u64), proofpix_store::StoreError> {
    let entries = store.audit_latest(FILE_HISTORY_AUDIT_SCAN)?;
    let scanned = entries.len() as u64;
    let mut out = Vec::new();
    for e in entries {
        let Some(action) = e.action.strip_prefix("remediation.") else {
            continue;
        };
        if e.target != integration || action.starts_with("policy") {
            continue;
        }
        let Ok(d) = serde_json::from_str::<serde_json::Value>(&e.details) else {
            continue;
        };
        if d.get("file").and_then(|f| f.as_str()) != Some(remote_id) {
            continue;
        }
        let text = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
        out.push(RemediationEventView {
            time: e.time,
            action: action.to_string(),
            status: text("status").unwrap_or_default(),
            detail: text("detail").unwrap_or_default(),
            version: text("version").unwrap_or_default(),
            tombstone: text("tombstone"),
        });
        if out.len() >= FILE_HISTORY_MAX {
            break;
        }
    }
    Ok((out, scanned))
}

/// One file of an integration: its latest analysis (findings and why), whether its risk is in
/// the pixels, and its remediation (the policy, the actions the plugin offers with whether each
/// can help, and what was done, from the audit trail). Viewer.
#[utoipa::path(get, path = "/api/files/{integration}/{remote_id}", tag = "files", params(("integration" = String, Path), ("remote_id" = String, Path, description = "The file's platform id (URL-encoded; it may contain /)")), responses((status = 200, body = FileDetailView), (status = 404, body = crate::error::Problem)))]
pub async fn get_file(
    State(state): State<AppState>,
    _caller: Caller,
    Path((integration, remote_id)): Path<(String, String)>,
) -> ApiResult<Json<FileDetailView>> {
    let record = state.host().integration(&integration)?;
    let plugin = state.host().plugin(&record.plugin_id);
    let (iid, rid) = (integration.clone(), remote_id.clone());
    let (file, result, (history, scanned)) = blocking(&state, move |s| {
        let Some(file) = s.file(&iid, &rid)? else {
            return Ok((None, None, (Vec::new(), 0)));
        };
        let result = match file.last_result {
            Some(id) => s.result(id)?,
            None => None,
        };
        let history = remediation_history(s, &iid, &rid)?;
        Ok((Some(file), result, history))
    })
    .await?;
    let file = file.ok_or_else(|| {
        ApiError::not_found(format!(
            "integration {integration:?} has no file {remote_id:?}"
        ))
    })?;
    let result = result.map(result_view);
    let from_pixels = result
        .as_ref()
        .is_some_and(|r| stored_risk_from_pixels(r.risk, &r.report));
    let policy = state.host().remediation_policy(&integration)?;
    let declared = plugin
        .as_ref()
        .map(proofpix_service::declared_actions)
        .unwrap_or_default();
    let policy_applies = match (&policy, &result) {
        (Some(p), Some(r)) => p.applies_to(r.risk),
        _ => false,
    };
    let actions = declared
        .iter()
        .map(|a| {
            let name = a.as_str();
            let not_offered = from_pixels && *a == RemediationKind::ReplaceWithSanitised;
            FileActionView {
                action: name.to_string(),
                offered: !not_offered,
                why_not: not_offered.then(|| NOT_FROM_PIXELS.to_string()),
                in_policy: policy.as_ref().is_some_and(|p| p.actions.contains(a)),
                last: history
                    .iter()
                    .find(|e| e.action == name)
                    .map(|e| RemediationEventView {
                        time: e.time.clone(),
                        action: e.action.clone(),
                        status: e.status.clone(),
                        detail: e.detail.clone(),
                        version: e.version.clone(),
                        tombstone: e.tombstone.clone(),
                    }),
            }
        })
        .collect();
    Ok(Json(FileDetailView {
        platform: plugin
            .as_ref()
            .map(|p| p.info().platform.clone())
            .unwrap_or_default(),
        status: format!("{:?}", file.status).to_lowercase(),
        integration,
        remote_id: file.remote_id,
        web_url: safe_web_url(file.web_url.as_deref()),
        name: file.name,
        version: file.version,
        last_error: file.last_error,
        updated_at: rfc3339(file.updated_at),
        result,
        risk_from_pixels: from_pixels,
        remediation: FileRemediationView {
            mode: match &policy {
                None => "none",
                Some(p) if p.simulate => "simulate",
                Some(_) => "act",
            },
            policy,
            policy_applies,
            actions,
            history,
            history_scanned: scanned,
        },
    }))
}

/// The longest web link served (longer ones are left out): Chromium's own display limit for a
/// URL is 2 MB, but no platform's file link comes near 2,048 bytes and a page of 200 rows
/// should not carry megabytes a plugin chose.
const MAX_WEB_URL_BYTES: usize = 2_048;

/// A plugin's `web-url` as it may be served to a browser, or `None`.
///
/// The value is hostile: a plugin (or the platform behind it) chooses it, and a dashboard puts
/// it in an `href`. Only an absolute `http` or `https` URL with a host passes; it is served in
/// its normalised form (the WHATWG parser's: quotes, spaces and angle brackets
/// percent-encoded), so what a browser follows is what was checked. `javascript:`, `data:`,
/// `vbscript:`, relative links, credentials in the URL (`https://user@host`, used to disguise
/// the real host) and anything with control characters are left out: the page then shows the
/// name without a link.
pub fn safe_web_url(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    if raw.len() > MAX_WEB_URL_BYTES || raw.chars().any(char::is_control) {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none();
    ok.then(|| url.to_string())
}

/// One action on one file, as the file page asks for it (admin).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileActionRequest {
    /// The file's platform id (as in `/api/files/{integration}/{remote_id}`).
    #[schema(min_length = 1, max_length = 1024)]
    file: String,
    /// The action; only one the integration's plugin offers.
    #[schema(value_type = RemediationActionDoc)]
    action: RemediationKind,
    /// Only report what would be done (default `true`): acting on the platform takes an
    /// explicit `false`.
    #[serde(default = "default_true")]
    simulate: bool,
    /// The label `apply-label` applies (default: the policy's).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    label: Option<String>,
}

fn default_true() -> bool {
    true
}

/// What became of one action on one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileActionOutcome {
    /// The file's platform id.
    file: String,
    /// The file version acted on.
    version: String,
    /// The action.
    action: String,
    /// Whether it was only simulated.
    simulate: bool,
    /// `simulated`, `applied`, `not-needed`, `already-done`, `uncertain`, `failed`,
    /// `not-applicable`.
    status: String,
    /// What was (or would be) done, or what failed: the plugin's or platform's words.
    detail: String,
    /// Where a quarantined file or its tombstone is.
    tombstone: Option<String>,
}

/// Runs one remediation action the plugin offers on one file, simulated (the default) or for
/// real with `"simulate": false` (admin). Whatever the integration's policy says: the policy
/// decides what happens to every risky file after a sync, this acts on one file now. A real
/// action is done at most once per file version (again: `already-done`) and every run,
/// simulated or not, is audited under the caller's token. A failure is a `failed` outcome
/// (200), not retried. Refused (422) for an action the plugin does not offer, a file not yet
/// analysed or deleted on the platform, and `apply-label` without a label.
#[utoipa::path(post, path = "/api/integrations/{id}/remediation/actions", tag = "integrations", params(("id" = String, Path)), request_body = FileActionRequest, responses((status = 200, body = FileActionOutcome), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 502, body = crate::error::Problem)))]
pub async fn run_file_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<FileActionRequest>,
) -> ApiResult<Json<FileActionOutcome>> {
    caller.require(Role::Admin)?;
    // The schema's bounds, in characters as JSON Schema counts them. A label of only spaces
    // is no label (the policy's is used), not an error the schema could not predict.
    if request.file.is_empty() || request.file.chars().count() > 1024 {
        return Err(unprocessable(
            "file: give the file's platform id (1 to 1024 characters)".into(),
        ));
    }
    if let Some(label) = &request.label
        && (label.is_empty() || label.chars().count() > 128)
    {
        return Err(unprocessable("label: 1 to 128 characters".into()));
    }
    let simulate = request.simulate;
    let r = state
        .host()
        .remediate_file(
            &id,
            &request.file,
            proofpix_service::FileAction {
                action: request.action,
                simulate,
                label: request.label,
            },
            &caller.actor(),
        )
        .await?;
    state.publish(crate::state::LiveEvent::IntegrationsChanged);
    Ok(Json(FileActionOutcome {
        status: serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        file: r.file_id,
        version: r.file_version,
        action: r.action.as_str().to_string(),
        simulate,
        detail: r.detail,
        tombstone: r.tombstone,
    }))
}

// ----- reports: batches and the audit trail as CSV ------------------------------

/// Streams a CSV document named `filename`: `header`, then what each call of `next_chunk`
/// returns (lines ending in CRLF) until it returns `None`. It runs on a blocking thread, one
/// chunk in memory at a time, and stops when the client goes away. A store failure after the
/// header ends the body with an error (a truncated transfer, never a silently short file).
fn stream_csv(
    state: &AppState,
    filename: &'static str,
    header: &'static str,
    mut next_chunk: impl FnMut(
        &dyn proofpix_store::Backend,
    ) -> Result<Option<String>, proofpix_store::StoreError>
    + Send
    + 'static,
) -> Response {
    let store = state.host().store().clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(header.to_string())).is_err() {
            return;
        }
        loop {
            match next_chunk(store.as_ref()) {
                Ok(Some(chunk)) => {
                    if !chunk.is_empty() && tx.blocking_send(Ok(chunk)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = ApiError::internal(&e);
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

const BATCHES_CSV_HEADER: &str = "id,integration,started_at,finished_at,duration_ms,outcome,error,files,ok,errors,retried,critical,high,medium,low,none\r\n";

fn batch_csv_line(b: &BatchRecord) -> String {
    let v = batch_view(b);
    let risk = |k: &str| v.by_risk.get(k).copied().unwrap_or(0).to_string();
    let cells = [
        v.id.to_string(),
        csv_cell(&v.integration),
        csv_cell(&v.started_at),
        csv_cell(v.finished_at.as_deref().unwrap_or("")),
        v.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        csv_cell(v.outcome),
        csv_cell(v.error.as_deref().unwrap_or("")),
        v.total.to_string(),
        v.ok.to_string(),
        v.errors.to_string(),
        v.retried.to_string(),
        risk("critical"),
        risk("high"),
        risk("medium"),
        risk("low"),
        risk("none"),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// Which batches to export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchCsvQuery {
    /// Only this integration's.
    integration: Option<String>,
}

/// How many batch ids the batch export reads per chunk.
const BATCH_CSV_CHUNK: u64 = 1000;

/// Every recorded run as CSV, newest first (optionally one integration's): outcome and the
/// reason of a failed run, file counts, files by risk. Streamed; cells are formula-safe.
/// Viewer.
#[utoipa::path(get, path = "/api/batches.csv", tag = "batches", params(BatchCsvQuery), responses((status = 200, description = "text/csv, one row per run", content_type = "text/csv")))]
pub async fn batches_csv(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<BatchCsvQuery>,
) -> ApiResult<Response> {
    let newest = blocking(&state, |s| {
        Ok(s.recent_batches(None, 1)?.first().map_or(0, |b| b.id))
    })
    .await?;
    // Ids are assigned in order; retention leaves gaps, read as nothing.
    let mut next = newest;
    let only = q.integration.filter(|i| !i.is_empty());
    Ok(stream_csv(
        &state,
        "proofpix-batches.csv",
        BATCHES_CSV_HEADER,
        move |s| {
            if next == 0 {
                return Ok(None);
            }
            let low = next.saturating_sub(BATCH_CSV_CHUNK - 1).max(1);
            let mut chunk = String::new();
            for id in (low..=next).rev() {
                if let Some(b) = s.batch(id)?
                    && only.as_deref().is_none_or(|i| i == b.integration)
                {
                    chunk.push_str(&batch_csv_line(&b));
                }
            }
            next = low - 1;
            Ok(Some(chunk))
        },
    ))
}

const AUDIT_CSV_HEADER: &str = "seq,time,actor,action,target,outcome,details\r\n";

/// The whole audit trail as CSV, oldest first (the order the hash chain runs), with each
/// entry's details as its JSON text. Streamed; cells are formula-safe. Viewer.
#[utoipa::path(get, path = "/api/audit.csv", tag = "audit", responses((status = 200, description = "text/csv, one row per audit entry", content_type = "text/csv")))]
pub async fn audit_csv(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let mut from = 0u64;
    Ok(stream_csv(
        &state,
        "proofpix-audit.csv",
        AUDIT_CSV_HEADER,
        move |s| {
            let entries = s.audit_entries(from, 1000)?;
            let Some(last) = entries.last() else {
                return Ok(None);
            };
            from = last.seq + 1;
            let mut chunk = String::new();
            for e in &entries {
                let cells = [
                    e.seq.to_string(),
                    csv_cell(&e.time),
                    csv_cell(&e.actor),
                    csv_cell(&e.action),
                    csv_cell(&e.target),
                    csv_cell(&e.outcome),
                    csv_cell(&e.details),
                ];
                chunk.push_str(&cells.join(","));
                chunk.push_str("\r\n");
            }
            Ok(Some(chunk))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::safe_web_url;

    /// A plugin's link goes into an `href`: only absolute http(s) links with a host pass, in
    /// their normalised form, and everything a browser would run or that hides the real host
    /// is left out.
    #[test]
    fn only_absolute_http_links_are_served_normalised() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "https://contoso.sharepoint.com/sites/f/a.jpg",
                Some("https://contoso.sharepoint.com/sites/f/a.jpg"),
            ),
            ("HTTP://Example.com/x", Some("http://example.com/x")),
            (
                "https://x.example/a b\"><script>",
                Some("https://x.example/a%20b%22%3E%3Cscript%3E"),
            ),
            ("javascript:alert(1)", None),
            ("JaVaScRiPt:alert(1)", None),
            (" javascript:alert(1)", None),
            ("java\tscript:alert(1)", None),
            ("data:text/html,<script>alert(1)</script>", None),
            ("vbscript:msgbox(1)", None),
            ("file:///etc/passwd", None),
            ("//evil.example/x", None),
            ("/relative/path", None),
            ("https://user:pw@evil.example/", None),
            ("https://good.example@evil.example/", None),
            ("https://x.example/\nSet-Cookie: a", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(safe_web_url(Some(raw)).as_deref(), *want, "web-url {raw:?}");
        }
        assert_eq!(safe_web_url(None), None);
        let long = format!("https://x.example/{}", "a".repeat(2_100));
        assert_eq!(safe_web_url(Some(&long)), None, "over the length limit");
    }
}
