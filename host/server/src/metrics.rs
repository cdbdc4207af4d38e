//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), written by the
//! Prometheus project's Rust client (`prometheus-client`).
//!
//! The values live where they are counted (the daemon's counters, the runtime's call
//! statistics, the store's queue depths); a [`Collector`] reads them at each scrape, so no
//! second copy is kept in step.
//!
//! The metrics name every integration, so they need a token (viewer or above, as
//! `Authorization: Bearer <token>` in the scraper's config) unless the operator set
//! `server.public_metrics = true`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The OpenMetrics text format's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
                    out.push((id.clone(), "fetch", d.pending, d.parked));
                }
                for stage in proofpix_store::Stage::ALL {
                    if let Ok(d) = store.depth(&proofpix_store::stage_queue(&id, stage)) {
                        out.push((id.clone(), stage.as_str(), d.pending, d.parked));
                    }
                }
                out
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let c = state.counters();
    let snapshot = Snapshot {
        files_by_risk: state.files_by_risk(),
        file_errors: c.file_errors.load(Ordering::Relaxed),
        retries: c.retries.load(Ordering::Relaxed),
        written_back: c.written_back.load(Ordering::Relaxed),
        write_back_skipped: c.write_back_skipped.load(Ordering::Relaxed),
        runs_ok: c.runs_ok.load(Ordering::Relaxed),
        runs_failed: c.runs_failed.load(Ordering::Relaxed),
        webhooks: c.webhooks.load(Ordering::Relaxed),
        webhooks_refused: c.webhooks_refused.load(Ordering::Relaxed),
        depths,
        runtime: proofpix_runtime::metrics::snapshot(),
        uptime_seconds: state.uptime().as_secs(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .map_err(|_| ApiError::internal("the metrics could not be written"))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out))
}

/// Every value, read once at the scrape.
#[derive(Debug)]
struct Snapshot {
    files_by_risk: std::collections::BTreeMap<&'static str, u64>,
    file_errors: u64,
    retries: u64,
    written_back: u64,
    write_back_skipped: u64,
    runs_ok: u64,
    runs_failed: u64,
    webhooks: u64,
    webhooks_refused: u64,
    /// (integration, stage, pending, parked).
    depths: Vec<(String, &'static str, u64, u64)>,
    runtime: proofpix_runtime::metrics::Snapshot,
    uptime_seconds: u64,
}

/// Label pairs of one sample.
type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Counter names are given without `_total`: the encoder adds it.
        family(
            &mut encoder,
            "proofpix_files_processed",
            "Files analysed, by risk level.",
            self.files_by_risk
                .iter()
                .map(|(risk, n)| (vec![("risk", *risk)], *n)),
        )?;
        counter(
            &mut encoder,
            "proofpix_file_errors",
            "Files that failed for good (parked).",
            self.file_errors,
        )?;
        counter(
            &mut encoder,
            "proofpix_retries",
            "File retries scheduled.",
            self.retries,
        )?;
        counter(
            &mut encoder,
            "proofpix_written_back",
            "Results written back.",
            self.written_back,
        )?;
        counter(
            &mut encoder,
            "proofpix_write_back_skipped",
            "Results the plugin deliberately did not write back (write-back off, nothing to mark); not counted as written.",
            self.write_back_skipped,
        )?;
        family(
            &mut encoder,
            "proofpix_runs",
            "Sync runs finished, by outcome.",
            [
                (vec![("outcome", "ok")], self.runs_ok),
                (vec![("outcome", "failed")], self.runs_failed),
            ],
        )?;
        family(
            &mut encoder,
            "proofpix_webhooks",
            "Webhooks received, by outcome.",
            [
                (vec![("outcome", "accepted")], self.webhooks),
                (vec![("outcome", "refused")], self.webhooks_refused),
            ],
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "proofpix_queue_depth",
                "Queued items per integration and stage (fetch, writeback, remediate, notify).",
                None,
                MetricType::Gauge,
            )?;
            for (id, stage, pending, parked) in &self.depths {
                for (state, n) in [("pending", pending), ("parked", parked)] {
                    let labels: Labels<'_> =
                        vec![("integration", id), ("stage", stage), ("state", state)];
                    ConstGauge::new(gauge_value(*n)).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        let rt = &self.runtime;
        counter(
            &mut encoder,
            "proofpix_plugin_calls",
            "Plugin calls made.",
            rt.calls,
        )?;
        counter(
            &mut encoder,
            "proofpix_plugin_failures",
            "Plugin calls that trapped, timed out or hit a limit.",
            rt.failures,
        )?;
        gauge(
            &mut encoder,
            "proofpix_plugin_memory_high_water_bytes",
            "Largest linear memory any plugin instance reached.",
            rt.memory_high_water,
        )?;
        counter(
            &mut encoder,
            "proofpix_egress_denials",
            "Plugin requests refused by the egress policy.",
            rt.egress_denials,
        )?;
        {
            // The runtime counts calls per bucket; the encoder adds them up and writes the
            // `+Inf` bucket for the `f64::MAX` bound.
            let counted: u64 = rt.call_latency.iter().map(|(_, n)| n).sum();
            let mut buckets = rt.call_latency.clone();
            buckets.push((f64::MAX, rt.calls.saturating_sub(counted)));
            encoder
                .encode_descriptor(
                    "proofpix_plugin_call_seconds",
                    "Plugin call latency.",
                    None,
                    MetricType::Histogram,
                )?
                .encode_histogram::<Labels<'_>>(rt.call_seconds_sum, rt.calls, &buckets, None)?;
        }
        gauge(
            &mut encoder,
            "proofpix_uptime_seconds",
            "Seconds since the daemon started.",
            self.uptime_seconds,
        )
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(gauge_value(value));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter with labels, one sample per label set.
fn family<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Gauges are signed in the client; the values here are counts that fit.
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
