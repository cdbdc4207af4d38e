//! `/metrics` in the Prometheus text format.
//!
//! The metrics name every integration, so they need a token (viewer or
//! above, as `Authorization: Bearer <token>` in the scraper's config) unless
//! the operator set `server.public_metrics = true`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// Renders the metrics.
pub async fn metrics(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.config().server.public_metrics {
        caller
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::UNAUTHORIZED {
                    ApiError::unauthorized(
                        "/metrics needs a token (viewer or above) as `Authorization: Bearer <token>`, \
                         or `public_metrics = true` under [server] in the config",
                    )
                } else {
                    e
                }
            })?
            .require(Role::Viewer)?;
    }
    let store = state.host().store().clone();
    let depths = tokio::task::spawn_blocking(move || {
        let ids: Vec<String> = store
            .integrations()
            .map(|v| v.into_iter().map(|r| r.id).collect())
            .unwrap_or_default();
        ids.into_iter()
            .flat_map(|id| {
                let mut out = Vec::new();
                if let Ok(d) = store.depth(&id) {
                    out.push((id.clone(), "fetch", d));
                }
                for stage in proofpix_store::Stage::ALL {
                    if let Ok(d) = store.depth(&proofpix_store::stage_queue(&id, stage)) {
                        out.push((id.clone(), stage.as_str(), d));
                    }
                }
                out
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let c = state.counters();
    let rt = proofpix_runtime::metrics::snapshot();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "proofpix_files_processed_total",
        "counter",
        "Files analysed, by risk level.",
        state
            .files_by_risk()
            .into_iter()
            .map(|(r, n)| (format!("{{risk=\"{r}\"}}"), n.to_string()))
            .collect(),
    );
    metric(
        "proofpix_file_errors_total",
        "counter",
        "Files that failed for good (parked).",
        vec![(
            String::new(),
            c.file_errors.load(Ordering::Relaxed).to_string(),
        )],
    );
    metric(
        "proofpix_retries_total",
        "counter",
        "File retries scheduled.",
        vec![(String::new(), c.retries.load(Ordering::Relaxed).to_string())],
    );
    metric(
        "proofpix_written_back_total",
        "counter",
        "Results written back.",
        vec![(
            String::new(),
            c.written_back.load(Ordering::Relaxed).to_string(),
        )],
    );
    metric(
        "proofpix_write_back_skipped_total",
        "counter",
        "Results the plugin deliberately did not write back (write-back off, nothing to mark); not counted as written.",
        vec![(
            String::new(),
            c.write_back_skipped.load(Ordering::Relaxed).to_string(),
        )],
    );
    metric(
        "proofpix_runs_total",
        "counter",
        "Sync runs finished, by outcome.",
        vec![
            (
                "{outcome=\"ok\"}".into(),
                c.runs_ok.load(Ordering::Relaxed).to_string(),
            ),
            (
                "{outcome=\"failed\"}".into(),
                c.runs_failed.load(Ordering::Relaxed).to_string(),
            ),
        ],
    );
    metric(
        "proofpix_webhooks_total",
        "counter",
        "Webhooks received, by outcome.",
        vec![
            (
                "{outcome=\"accepted\"}".into(),
                c.webhooks.load(Ordering::Relaxed).to_string(),
            ),
            (
                "{outcome=\"refused\"}".into(),
                c.webhooks_refused.load(Ordering::Relaxed).to_string(),
            ),
        ],
    );
    metric(
        "proofpix_queue_depth",
        "gauge",
        "Queued items per integration and stage (fetch, writeback, remediate, notify).",
        depths
            .iter()
            .flat_map(|(id, stage, d)| {
                [
                    (
                        format!(
                            "{{integration=\"{}\",stage=\"{stage}\",state=\"pending\"}}",
                            escape(id)
                        ),
                        d.pending.to_string(),
                    ),
                    (
                        format!(
                            "{{integration=\"{}\",stage=\"{stage}\",state=\"parked\"}}",
                            escape(id)
                        ),
                        d.parked.to_string(),
                    ),
                ]
            })
            .collect(),
    );
    metric(
        "proofpix_plugin_calls_total",
        "counter",
        "Plugin calls made.",
        vec![(String::new(), rt.calls.to_string())],
    );
    metric(
        "proofpix_plugin_failures_total",
        "counter",
        "Plugin calls that trapped, timed out or hit a limit.",
        vec![(String::new(), rt.failures.to_string())],
    );
    metric(
        "proofpix_plugin_memory_high_water_bytes",
        "gauge",
        "Largest linear memory any plugin instance reached.",
        vec![(String::new(), rt.memory_high_water.to_string())],
    );
    metric(
        "proofpix_egress_denials_total",
        "counter",
        "Plugin requests refused by the egress policy.",
        vec![(String::new(), rt.egress_denials.to_string())],
    );
    let mut buckets = Vec::new();
    let mut cumulative = 0u64;
    for (le, n) in &rt.call_latency {
        cumulative += n;
        buckets.push((format!("_bucket{{le=\"{le}\"}}"), cumulative.to_string()));
    }
    buckets.push(("_bucket{le=\"+Inf\"}".into(), rt.calls.to_string()));
    buckets.push(("_sum".into(), format!("{:.6}", rt.call_seconds_sum)));
    buckets.push(("_count".into(), rt.calls.to_string()));
    metric(
        "proofpix_plugin_call_seconds",
        "histogram",
        "Plugin call latency.",
        buckets,
    );
    metric(
        "proofpix_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        vec![(String::new(), state.uptime().as_secs().to_string())],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
