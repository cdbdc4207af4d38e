//! The ProofPix daemon: `proofpix serve`.
//!
//! It keeps every connected system under watch: scheduled runs (intervals or
//! cron with a time zone, jittered), webhook-triggered runs that process just
//! the changed files, one run per integration at a time, resumption of
//! queued work after a crash, a REST API with role-based tokens and an
//! OpenAPI document generated from the code, Prometheus metrics, health
//! probes, server-sent events and the dashboard.
//!
//! Every response carries security headers (`nosniff`, a CSP, no framing;
//! see `security_headers`). `/metrics` needs a viewer token unless
//! `server.public_metrics` is set; `/hooks/*` is the only anonymous route
//! that runs plugin code, and serves the plugin's answer only as inert text
//! (see `hooks`).
//!
//! Layout: `api` (one function per route), `auth` (tokens, roles, session
//! cookie), `error` (problem documents), `hooks` (platform webhooks),
//! `metrics`, `schedule`, `state` (shared state and the run manager),
//! `config` (the TOML file), `dashboard` (static assets), `reports` (trends
//! and the printable compliance report) and `charts` (the SVG pictures they
//! draw).
//!
//! Layering (checked by .ci/layers): floor 5, may use only the host crates below it (proofpix-analysis, proofpix-auth, proofpix-model, proofpix-pipeline, proofpix-pixels, proofpix-plugin-artifacts, proofpix-policy, proofpix-runtime, proofpix-service, proofpix-signing, proofpix-store, proofpix-store-pg, proofpix-vault).

#![deny(missing_docs)]

pub mod api;
pub mod auth;
mod charts;
pub mod config;
mod dashboard;
pub mod error;
mod escape;
mod hooks;
mod metrics;
pub mod reports;
pub use proofpix_service::schedule;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{any, get, post};
use proofpix_service::{Host, ServiceError};
use proofpix_store::{ApiTokenRecord, Store};
use serde::Deserialize;
use utoipa::OpenApi;

pub use config::{ConfigProblem, DaemonConfig};
pub use state::{AppState, LiveEvent, TriggerOutcome};

use crate::auth::{Caller, Role};
use crate::error::ApiError;

/// The OpenAPI document, generated from the route functions and types.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "ProofPix API",
        description = "Integrations, runs, findings and the audit trail of a ProofPix daemon. Authenticate with `Authorization: Bearer <token>`."
    ),
    paths(
        api::list_plugins,
        api::get_plugin,
        api::list_integrations,
        api::get_integration,
        api::create_integration,
        api::update_integration,
        api::delete_integration,
        api::test_integration,
        api::sync_integration,
        api::enable_integration,
        api::disable_integration,
        api::list_files,
        api::get_remediation,
        api::put_remediation,
        api::delete_remediation,
        api::run_file_action,
        api::list_parked,
        api::retry_parked,
        api::get_result,
        api::list_batches,
        api::get_batch,
        api::list_audit,
        api::get_settings,
        api::put_settings,
        api::stats,
        api::list_tokens,
        api::create_token,
        api::delete_token,
        api::rotate_token,
        api::list_inventory,
        api::inventory_csv,
        api::get_file,
        api::batches_csv,
        api::audit_csv,
        reports::trends,
        reports::integration_report,
        api::create_session,
        api::get_session,
        api::delete_session,
        api::events,
        authorize_integration,
    ),
    components(schemas(error::Problem, state::LiveEvent))
)]
pub struct ApiDoc;

/// The application router.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().server.max_body_kib * 1024;
    let api = Router::new()
        .route("/api/plugins", get(api::list_plugins))
        .route("/api/plugins/{id}", get(api::get_plugin))
        .route(
            "/api/integrations",
            get(api::list_integrations).post(api::create_integration),
        )
        .route(
            "/api/integrations/{id}",
            get(api::get_integration)
                .patch(api::update_integration)
                .delete(api::delete_integration),
        )
        .route("/api/integrations/{id}/test", post(api::test_integration))
        .route("/api/integrations/{id}/sync", post(api::sync_integration))
        .route(
            "/api/integrations/{id}/enable",
            post(api::enable_integration),
        )
        .route(
            "/api/integrations/{id}/disable",
            post(api::disable_integration),
        )
        .route(
            "/api/integrations/{id}/authorize",
            post(authorize_integration),
        )
        .route(
            "/api/integrations/{id}/remediation",
            get(api::get_remediation)
                .put(api::put_remediation)
                .delete(api::delete_remediation),
        )
        .route(
            "/api/integrations/{id}/remediation/actions",
            post(api::run_file_action),
        )
        .route("/api/integrations/{id}/files", get(api::list_files))
        .route(
            "/api/integrations/{id}/report",
            get(reports::integration_report),
        )
        .route("/api/integrations/{id}/parked", get(api::list_parked))
        .route(
            "/api/integrations/{id}/parked/{item}/retry",
            post(api::retry_parked),
        )
        .route("/api/results/{id}", get(api::get_result))
        .route("/api/batches", get(api::list_batches))
        .route("/api/batches/{id}", get(api::get_batch))
        .route("/api/audit", get(api::list_audit))
        .route(
            "/api/settings",
            get(api::get_settings).put(api::put_settings),
        )
        .route("/api/stats", get(api::stats))
        .route("/api/tokens", get(api::list_tokens).post(api::create_token))
        .route(
            "/api/tokens/{name}",
            axum::routing::delete(api::delete_token),
        )
        .route(
            "/api/session",
            get(api::get_session)
                .post(api::create_session)
                .delete(api::delete_session),
        )
        .route("/api/events", get(api::events))
        .route("/api/tokens/{name}/rotate", post(api::rotate_token))
        .route("/api/files", get(api::list_inventory))
        .route("/api/files.csv", get(api::inventory_csv))
        .route("/api/files/{integration}/{*remote_id}", get(api::get_file))
        .route("/api/batches.csv", get(api::batches_csv))
        .route("/api/audit.csv", get(api::audit_csv))
        .route("/api/trends", get(reports::trends))
        .route("/api/openapi.json", get(openapi))
        .route("/api/{*rest}", any(not_found))
        .layer(axum::middleware::map_response(
            error::problem_for_plain_errors,
        ));
    Router::new()
        .merge(api)
        .route("/hooks/{integration}", any(hooks::hook))
        .route("/hooks/{integration}/{*rest}", any(hooks::hook))
        .route("/oauth/callback", get(oauth_callback))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(dashboard::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The policy for responses that set none (API JSON, problem documents,
/// metrics, the OAuth callback page): load nothing, run nothing, never in a
/// frame.
const DEFAULT_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Security headers on every response that does not set its own: the
/// dashboard's assets carry their CSP, hook answers their sandbox, and
/// everything else gets [`DEFAULT_CSP`], `nosniff`, no framing, no referrer
/// and no caching (API answers hold tokens and findings).
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = resp.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route; see /api/openapi.json")
}

/// The OpenAPI document as served at `/api/openapi.json`: [`ApiDoc`] completed with
/// what every operation shares (problem-document errors, the standard error statuses and
/// the security schemes; see [`error::complete_openapi`]).
pub fn openapi_document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    error::complete_openapi(&mut doc);
    doc
}

async fn openapi() -> impl IntoResponse {
    axum::Json(openapi_document())
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Where to send the operator's browser to authorize.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthorizeView {
    /// Open this URL.
    url: String,
}

/// Starts the browser authorization of an authorization-code integration (admin).
#[utoipa::path(post, path = "/api/integrations/{id}/authorize", tag = "integrations", params(("id" = String, Path)), responses((status = 200, body = AuthorizeView), (status = 422, body = error::Problem)))]
async fn authorize_integration(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<AuthorizeView>, ApiError> {
    caller.require(Role::Admin)?;
    let base = state
        .config()
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", state.config().listen()));
    let redirect = url::Url::parse(&format!("{}/oauth/callback", base.trim_end_matches('/')))
        .map_err(ApiError::internal)?;
    let record = state.host().integration(&id)?;
    let plugin = state
        .host()
        .plugin(&record.plugin_id)
        .ok_or_else(|| ApiError::not_found("plugin not loaded"))?;
    let (_, ctx) = state.host().context(&id, false).await?;
    let creds = state
        .host()
        .credentials(&record, &plugin, &ctx)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this integration has no credentials to authorize",
            )
        })?;
    let request = creds
        .0
        .begin_authorization(&redirect)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(axum::Json(AuthorizeView {
        url: request.url.to_string(),
    }))
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn oauth_callback(
    State(state): State<AppState>,
    Query(q): Query<CallbackQuery>,
) -> impl IntoResponse {
    let page = |status: StatusCode, msg: &str| {
        (
            status,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>ProofPix</title><p>{}</p>",
                escape::xml_escape(msg)
            )),
        )
    };
    if let Some(e) = q.error {
        return page(
            StatusCode::BAD_REQUEST,
            &format!("The platform did not authorize ProofPix: {e}"),
        );
    }
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return page(
            StatusCode::BAD_REQUEST,
            "The callback lacks a code or a state.",
        );
    };
    let Some(id) = state.host().authorization_sessions().integration_for(&st) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This authorization expired or was not started here; start it again.",
        );
    };
    let result = async {
        let record = state.host().integration(&id)?;
        let plugin = state
            .host()
            .plugin(&record.plugin_id)
            .ok_or_else(|| proofpix_service::ServiceError::NoIntegration(id.clone()))?;
        let (_, ctx) = state.host().context(&id, false).await?;
        let creds = state.host().credentials(&record, &plugin, &ctx)?;
        Ok::<_, proofpix_service::ServiceError>(creds)
    }
    .await;
    match result {
        Ok(Some(creds)) => match creds
            .0
            .complete_authorization(&st, &proofpix_vault::Secret::new(code))
            .await
        {
            Ok(_) => page(
                StatusCode::OK,
                &format!("Integration {id} is authorized. You can close this window."),
            ),
            Err(e) => page(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        Ok(None) => page(
            StatusCode::BAD_REQUEST,
            "This integration has no credentials to authorize.",
        ),
        Err(e) => page(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// Creates an admin token if the store has none, and returns it (to print
/// once). `None` when tokens exist.
///
/// # Errors
/// Store failures.
pub fn bootstrap_admin_token(host: &Host) -> Result<Option<String>, ServiceError> {
    if !host.store().api_tokens()?.is_empty() {
        return Ok(None);
    }
    let token = auth::new_token();
    let record = ApiTokenRecord {
        name: "bootstrap-admin".into(),
        role: "admin".into(),
        created_by: "proofpix".into(),
        created_at: host.store().now(),
    };
    host.put_api_token(&auth::token_hash(&token), &record, "proofpix")?;
    Ok(Some(token))
}

/// Builds the daemon state over a host.
pub fn state(host: Host, config: DaemonConfig) -> AppState {
    AppState::new(host, config)
}

/// Runs the scheduler once at `now` (see [`proofpix_service::runs::RunManager::tick`]) when
/// automatic syncs are on in the settings and the configuration. Returns the integrations
/// triggered. The daemon calls this every second; tests call it with a controllable clock.
pub fn scheduler_tick(state: &AppState, now: time::OffsetDateTime) -> Vec<String> {
    let settings = api::load_settings(state.host().store().as_ref());
    if !settings.auto_sync || !state.config().scheduler.enabled {
        return Vec::new();
    }
    state.runs().tick(now, settings.default_schedule.as_deref())
}

/// Work to do when the daemon starts (see [`proofpix_service::runs::RunManager::resume`]).
///
/// # Errors
/// Store failures.
pub fn resume(state: &AppState) -> Result<Vec<String>, proofpix_store::StoreError> {
    state.runs().resume()
}

/// On a shared store: the least time between two looks for backlogs to join when signals
/// wake this node.
const JOIN_DEBOUNCE: Duration = Duration::from_millis(500);
/// On a shared store: the longest time between two looks for backlogs to join (a signal
/// may be lost).
const JOIN_POLL: Duration = Duration::from_secs(5);
/// How often this node's live events are signalled to the other nodes.
const LIVE_FLUSH: Duration = Duration::from_millis(250);

/// Serves until `shutdown` resolves, then drains in-flight runs within the
/// configured deadline. Starts the scheduler and the daily retention pass.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(e) = resume(&state) {
        tracing::error!("cannot resume queued work: {e}");
    }
    // On a shared store (cluster mode) this node also joins the backlogs other nodes are
    // draining: woken by their signals (a queue got new items, PostgreSQL's NOTIFY), and every
    // few seconds in case a signal was lost (signals are hints; the queues are the record).
    // Other nodes' live events reach this node's dashboards the same way.
    let shared = state.host().local_store().is_none();
    let wake = Arc::new(tokio::sync::Notify::new());
    // A plugin installed, upgraded or removed on any node: load what the store records.
    let plugins_changed = Arc::new(tokio::sync::Notify::new());
    if shared {
        let (live, wake, plugins) = (
            state.inner.live.clone(),
            wake.clone(),
            plugins_changed.clone(),
        );
        let listening = state.host().listen(move |signal| match signal {
            proofpix_store::Signal::Message(m) if m.starts_with(proofpix_store::WORK_SIGNAL) => {
                wake.notify_one();
            }
            proofpix_store::Signal::Message(m) if m == proofpix_store::PLUGINS_SIGNAL => {
                plugins.notify_one();
            }
            proofpix_store::Signal::Message(m) => {
                live.receive(&m);
            }
            proofpix_store::Signal::Reconnected => {
                // Signals sent while the connection was down are lost: look at the queues
                // and the plugins, and have dashboards reload.
                wake.notify_one();
                plugins.notify_one();
                live.local(LiveEvent::IntegrationsChanged);
            }
        });
        if let Err(e) = listening {
            tracing::warn!("cannot listen for the other nodes' signals (polling instead): {e}");
        }
    }
    let ticker = {
        let (state, wake) = (state.clone(), wake.clone());
        tokio::spawn(async move {
            let mut last_tick = std::time::Instant::now();
            let mut last_join = std::time::Instant::now();
            // A signal heard within the debounce is kept for the next pass, not dropped.
            let mut signalled = false;
            loop {
                signalled |= tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => false,
                    () = wake.notified() => true,
                };
                if state.is_stopping() {
                    break;
                }
                let tick = last_tick.elapsed() >= Duration::from_secs(1);
                let join = shared
                    && ((signalled && last_join.elapsed() >= JOIN_DEBOUNCE)
                        || last_join.elapsed() >= JOIN_POLL);
                if tick {
                    last_tick = std::time::Instant::now();
                }
                if join {
                    last_join = std::time::Instant::now();
                    signalled = false;
                }
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let now = time::OffsetDateTime::now_utc();
                    if tick {
                        scheduler_tick(&s, now);
                    }
                    if join && let Err(e) = s.runs().join_backlogs(now) {
                        tracing::warn!("cannot look for backlogs to join: {e}");
                    }
                })
                .await;
            }
        })
    };
    let plugin_loader = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                plugins_changed.notified().await;
                let loaded = state.host().load_installed_plugins().await;
                if !loaded.is_empty() {
                    tracing::info!(?loaded, "loaded plugins installed on another node");
                }
                state.inner.live.local(LiveEvent::IntegrationsChanged);
            }
        })
    };
    // This node's live events, batched into signals for the other nodes' dashboards.
    let relay = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LIVE_FLUSH).await;
                let messages = state.inner.live.outbound_messages();
                if messages.is_empty() {
                    continue;
                }
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for m in messages {
                        if let Err(e) = s.host().signal(&m) {
                            tracing::debug!("live events not relayed to the other nodes: {e}");
                        }
                    }
                })
                .await;
            }
        })
    };
    // The notify stage: alerts and summaries wait in each notifier's queue until the
    // subscription's window passes. Runs wake this task when they end (they never deliver
    // inline here: a run must not wait on a queue other runs keep filling), and it also
    // delivers what comes due between runs.
    let notifier = {
        let state = state.clone();
        let woken = state.host().background_notify_stage();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    () = woken.notified() => {}
                }
                if state.is_stopping() {
                    break;
                }
                state.host().deliver_notifications(false).await;
            }
        })
    };
    let retention = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                compact(&state).await;
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
        })
    };
    state.inner.ready.store(true, Ordering::SeqCst);
    let app = router(state.clone());
    let drain_state = state.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight runs");
            drain_state.runs().stop_accepting();
            drain_state.inner.ready.store(false, Ordering::SeqCst);
        })
        .await;
    ticker.abort();
    relay.abort();
    plugin_loader.abort();
    notifier.abort();
    retention.abort();
    let deadline = state.config().drain_timeout();
    if state.drain(deadline).await {
        tracing::info!("all runs finished");
    } else {
        tracing::warn!(
            deadline_secs = deadline.as_secs(),
            "runs still in progress at the drain deadline were stopped; their files resume at the next start"
        );
    }
    result
}

async fn compact(state: &AppState) {
    let r = &state.config().retention;
    let days = |d: Option<u32>| d.map(|d| Duration::from_secs(u64::from(d) * 86_400));
    let retention = proofpix_store::Retention {
        results: days(r.results_days),
        batches: days(r.batches_days),
        audit: days(r.audit_days),
    };
    if retention.results.is_none() && retention.batches.is_none() && retention.audit.is_none() {
        return;
    }
    match state.host().compact(retention, "daemon").await {
        Ok(report) => tracing::info!(?report, "retention applied"),
        Err(e) => tracing::error!("retention failed: {e}"),
    }
}

/// A convenience for the binary and tests: an `Arc<Store>` opened as the
/// daemon does.
///
/// # Errors
/// As [`Store::open_default`].
pub fn open_store() -> Result<Arc<Store>, proofpix_store::OpenError> {
    Store::open_default().map(|(s, _)| Arc::new(s))
}
