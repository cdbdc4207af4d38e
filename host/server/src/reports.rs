//! Reports: the overview's trends over days (`GET /api/trends`) and the printable compliance
//! report of one integration over a period (`GET /api/integrations/{id}/report`).
//!
//! Both read what the store keeps: runs (batches, through
//! [`proofpix_store::ControlStore::batches_since`]), the file inventory (each file with its
//! latest analysis), the audit trail and its chain check. They compute, they never write.
//!
//! Threat model: file names, remote ids, platform links and audit details come from scanned
//! files and remote systems; integration ids from operators. The report is HTML built here,
//! so every such string goes through [`xml_escape`] (content and attribute positions alike),
//! links to the platform only as [`crate::api::safe_web_url`] normalised them, and the page's
//! Content-Security-Policy runs no script and loads nothing: its one style sheet is inline,
//! allowed by its hash. The charts are [`crate::charts`] pictures, escaped there.
//!
//! What a trend shows is what runs recorded: files analysed per day by the risk found then
//! (not a day's standing risk of every file, which the store does not keep), and each day's
//! throughput and run time. A period's report counts files by their latest analysis when that
//! analysis falls in the period.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use proofpix_service::Host;
use proofpix_store::{BatchRecord, InventoryQuery, InventorySort, RiskLevel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiResult, blocking, safe_web_url, unprocessable};
use crate::auth::Caller;
use crate::charts::{self, BarChart, Series, Theme};
use crate::escape::xml_escape;
use crate::state::AppState;

/// The most runs a trend or a report reads. A run is read without its result ids (a few
/// hundred bytes), so this bounds a request to some 15 MB even over a period of one-file
/// event runs (a month of one a minute is 43,200); past it the oldest days come out short
/// and the answer says so (`truncated`).
pub const MAX_TREND_RUNS: usize = 50_000;

/// The longest period a report covers (ten years of days): its table has a row per day
/// with a run, built from a bucket per day.
const MAX_REPORT_DAYS: usize = 3660;

/// How many files the report lists as its top risks.
const TOP_RISKS: usize = 25;

/// How many actions the report lists one by one (all are counted).
const MAX_LISTED_ACTIONS: usize = 500;

/// How many audit entries a report reads in its period before it stops counting (and says
/// so): a period of a busy store is read in pages of 1,000, this bounds the time it takes.
const MAX_AUDIT_SCAN: u64 = 200_000;

/// Risk levels, highest first, with their colours (the dashboard's, light and dark).
const RISK_SERIES: &[(&str, &str, &str)] = &[
    ("critical", "#7a0b47", "#ff9ad0"),
    ("high", "#b0212b", "#ff8b92"),
    ("medium", "#8a5200", "#ffc46b"),
    ("low", "#2f5f8a", "#8cc2ff"),
    ("none", "#4b5563", "#a3acb7"),
];

// ----- trends ---------------------------------------------------------------

/// The palette of a trend's pictures.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThemeParam {
    /// Dark text on white (the default).
    #[default]
    Light,
    /// Light text on the dashboard's dark surface.
    Dark,
}

/// Which trends.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// Days back, today (UTC) included (default 30, 1-90).
    #[param(minimum = 1, maximum = 90)]
    days: Option<u32>,
    /// Only this integration's runs (default: every integration's).
    integration: Option<String>,
    /// The pictures' palette, `light` (default) or `dark`.
    #[param(inline)]
    theme: Option<ThemeParam>,
}

/// One day of a trend (UTC).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TrendDay {
    /// `YYYY-MM-DD`.
    day: String,
    /// Runs started that day.
    runs: u64,
    /// Of those, runs that failed as a whole.
    runs_failed: u64,
    /// Files the runs saw.
    files: u64,
    /// Files analysed, by the risk found (`none` ... `critical`).
    by_risk: BTreeMap<String, u64>,
    /// Runs that finished.
    runs_finished: u64,
    /// Their total wall-clock time.
    duration_ms: u64,
    /// The longest of them.
    max_duration_ms: u64,
    /// Files per second over the finished runs (their files over their total time); `null`
    /// when no finished run took measurable time.
    files_per_sec: Option<f64>,
}

/// A server-drawn picture: an SVG document (no script, no external reference; show it as an
/// image) with its title and a description in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChartView {
    title: String,
    desc: String,
    /// The SVG document.
    svg: String,
}

/// The three pictures of a trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendCharts {
    /// Files analysed per day, stacked by risk.
    risk: ChartView,
    /// Files per second per day.
    throughput: ChartView,
    /// Mean run time per day, in seconds.
    duration: ChartView,
}

/// Runs over days: files by risk, throughput and run time, with the pictures.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendsView {
    /// The first day, `YYYY-MM-DD`.
    from: String,
    /// The last day (today, UTC).
    to: String,
    /// The integration, when one was asked for.
    integration: Option<String>,
    /// More runs started in the period than a trend reads: the oldest days are incomplete.
    truncated: bool,
    /// Every day of the period, oldest first (days without a run included, as zeros).
    days: Vec<TrendDay>,
    charts: TrendCharts,
}

fn day_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Counts runs into one bucket per day from `first` over `n` days.
fn days_of(batches: &[BatchRecord], first: Date, n: usize) -> Vec<TrendDay> {
    let mut days: Vec<TrendDay> = (0..n)
        .map(|i| TrendDay {
            day: day_text(first + Duration::days(i as i64)),
            ..TrendDay::default()
        })
        .collect();
    for b in batches {
        let offset = (b.started_at.date() - first).whole_days();
        let Some(d) = usize::try_from(offset).ok().and_then(|i| days.get_mut(i)) else {
            continue;
        };
        d.runs += 1;
        if Host::run_error(b).is_some() {
            d.runs_failed += 1;
        }
        d.files += b.total;
        for (risk, count) in &b.by_risk {
            *d.by_risk.entry(risk.clone()).or_default() += count;
        }
        if let (Some(_), Some(took)) = (b.finished_at, b.duration) {
            let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
            d.runs_finished += 1;
            d.duration_ms = d.duration_ms.saturating_add(ms);
            d.max_duration_ms = d.max_duration_ms.max(ms);
        }
    }
    for d in &mut days {
        if d.duration_ms > 0 {
            // Files of finished runs only: a running one has no time yet.
            let finished_files: u64 = batches
                .iter()
                .filter(|b| {
                    b.finished_at.is_some()
                        && b.duration.is_some()
                        && day_text(b.started_at.date()) == d.day
                })
                .map(|b| b.total)
                .sum();
            d.files_per_sec = Some(finished_files as f64 * 1000.0 / d.duration_ms as f64);
        }
    }
    days
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The "files by risk per day" picture of `days`.
fn risk_chart(id: &str, days: &[TrendDay], scope: &str) -> BarChart {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for d in days {
        for (risk, _, _) in RISK_SERIES {
            *totals.entry(risk).or_default() += d.by_risk.get(*risk).copied().unwrap_or(0);
        }
    }
    let all: u64 = totals.values().sum();
    let parts: Vec<String> = RISK_SERIES
        .iter()
        .map(|(risk, _, _)| format!("{} {risk}", totals.get(risk).copied().unwrap_or(0)))
        .collect();
    let busiest = days.iter().max_by_key(|d| d.by_risk.values().sum::<u64>());
    let mut desc = format!(
        "{} analysed {scope} over {}: {}.",
        plural(all, "file", "files"),
        plural(days.len() as u64, "day", "days"),
        parts.join(", ")
    );
    if let Some(b) = busiest.filter(|_| all > 0) {
        let _ = write!(
            desc,
            " The busiest day was {} with {}.",
            b.day,
            plural(b.by_risk.values().sum(), "file", "files")
        );
    }
    BarChart {
        id: format!("{id}-risk"),
        title: format!("Files analysed per day by risk, {scope}"),
        desc,
        labels: labels(days),
        // Bottom first: the highest risk sits on the axis, where it is easiest to compare.
        series: RISK_SERIES
            .iter()
            .map(|(risk, light, dark)| Series {
                label: risk,
                values: days
                    .iter()
                    .map(|d| d.by_risk.get(*risk).copied().unwrap_or(0) as f64)
                    .collect(),
                light,
                dark,
            })
            .collect(),
        unit: "files",
    }
}

fn labels(days: &[TrendDay]) -> Vec<String> {
    days.iter()
        .map(|d| d.day.get(5..).unwrap_or(&d.day).to_string())
        .collect()
}

fn trend_charts(id: &str, days: &[TrendDay], scope: &str, theme: Theme) -> TrendCharts {
    let view = |c: BarChart| ChartView {
        svg: c.svg(theme),
        title: c.title,
        desc: c.desc,
    };
    let measured: Vec<&TrendDay> = days.iter().filter(|d| d.files_per_sec.is_some()).collect();
    let fastest = measured.iter().max_by(|a, b| {
        a.files_per_sec
            .unwrap_or(0.0)
            .total_cmp(&b.files_per_sec.unwrap_or(0.0))
    });
    let slowest = measured.iter().min_by(|a, b| {
        a.files_per_sec
            .unwrap_or(0.0)
            .total_cmp(&b.files_per_sec.unwrap_or(0.0))
    });
    let throughput_desc = match (fastest, slowest) {
        (Some(f), Some(s)) => format!(
            "Files per second of the finished runs {scope}, per day, on {} of {}: from {:.1} ({}) to {:.1} ({}).",
            plural(measured.len() as u64, "day", "days"),
            days.len(),
            s.files_per_sec.unwrap_or(0.0),
            s.day,
            f.files_per_sec.unwrap_or(0.0),
            f.day
        ),
        _ => format!(
            "No finished run {scope} in these {}.",
            plural(days.len() as u64, "day", "days")
        ),
    };
    let mean_secs = |d: &TrendDay| {
        if d.runs_finished == 0 {
            0.0
        } else {
            d.duration_ms as f64 / 1000.0 / d.runs_finished as f64
        }
    };
    let longest = days.iter().max_by_key(|d| d.max_duration_ms);
    let duration_desc = match longest.filter(|d| d.max_duration_ms > 0) {
        Some(l) => format!(
            "Mean run time {scope}, per day, in seconds; {} finished; the longest run took {:.1} s on {}.",
            plural(days.iter().map(|d| d.runs_finished).sum(), "run", "runs"),
            l.max_duration_ms as f64 / 1000.0,
            l.day
        ),
        None => format!(
            "No finished run {scope} in these {}.",
            plural(days.len() as u64, "day", "days")
        ),
    };
    TrendCharts {
        risk: view(risk_chart(id, days, scope)),
        throughput: view(BarChart {
            id: format!("{id}-throughput"),
            title: format!("Throughput per day, {scope}"),
            desc: throughput_desc,
            labels: labels(days),
            series: vec![Series {
                label: "files/s",
                values: days
                    .iter()
                    .map(|d| d.files_per_sec.unwrap_or(0.0))
                    .collect(),
                light: "#1f5fbf",
                dark: "#6ea8ff",
            }],
            unit: "files/s",
        }),
        duration: view(BarChart {
            id: format!("{id}-duration"),
            title: format!("Mean run time per day, {scope}"),
            desc: duration_desc,
            labels: labels(days),
            series: vec![Series {
                label: "seconds",
                values: days.iter().map(mean_secs).collect(),
                light: "#1d6b35",
                dark: "#7fd69a",
            }],
            unit: "s",
        }),
    }
}

/// Runs over the last days, per day (UTC): files analysed by risk, failed runs, throughput
/// (files per second of finished runs) and run time, with server-drawn SVG pictures of each
/// (title and description included) for the chosen palette. Viewer.
#[utoipa::path(get, path = "/api/trends", tag = "stats", params(TrendQuery), responses((status = 200, body = TrendsView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn trends(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<TrendQuery>,
) -> ApiResult<Json<TrendsView>> {
    let n = q.days.unwrap_or(30);
    if !(1..=charts::MAX_BARS as u32).contains(&n) {
        return Err(unprocessable(format!(
            "days {n} is not between 1 and {}",
            charts::MAX_BARS
        )));
    }
    let integration = q.integration.filter(|i| !i.is_empty());
    if let Some(id) = &integration {
        state.host().integration(id)?;
    }
    let today = state.host().store().now().date();
    let first = today - Duration::days(i64::from(n) - 1);
    let since = first.midnight().assume_utc();
    let only = integration.clone();
    let batches = blocking(&state, move |s| {
        s.batches_since(only.as_deref(), since, MAX_TREND_RUNS + 1)
    })
    .await?;
    let truncated = batches.len() > MAX_TREND_RUNS;
    let days = days_of(
        batches.get(..MAX_TREND_RUNS).unwrap_or(&batches),
        first,
        n as usize,
    );
    let scope = match &integration {
        Some(i) => format!("of {i}"),
        None => "of every integration".to_string(),
    };
    let theme = match q.theme.unwrap_or_default() {
        ThemeParam::Light => Theme::Light,
        ThemeParam::Dark => Theme::Dark,
    };
    Ok(Json(TrendsView {
        charts: trend_charts("trend", &days, &scope, theme),
        from: day_text(first),
        to: day_text(today),
        integration,
        truncated,
        days,
    }))
}

// ----- the compliance report ------------------------------------------------

/// The period of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The first day, `YYYY-MM-DD` (UTC; default 29 days before `to`).
    #[param(format = Date, max_length = 10)]
    from: Option<String>,
    /// The last day, included (UTC; default today).
    #[param(format = Date, max_length = 10)]
    to: Option<String>,
}

fn parse_day(name: &str, v: &Option<String>) -> ApiResult<Option<Date>> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    // An empty value is refused like any other that is not a day (the schema's `date`).
    v.as_deref()
        .map(|s| {
            Date::parse(s, &format).map_err(|_| {
                unprocessable(format!(
                    "{name} must be a day as YYYY-MM-DD, like 2026-01-31"
                ))
            })
        })
        .transpose()
}

/// `encodeURIComponent`, for an address the dashboard decodes.
fn uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The report's style sheet, inline (the page loads nothing) and allowed by its hash.
const REPORT_CSS: &str = "\
:root{color-scheme:light;font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",\"DejaVu Sans\",sans-serif;line-height:1.45;color:#1b1f24;background:#fff}\
body{max-width:60rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #d0d5dc;padding-bottom:.25rem}\
.muted{color:#555e69}.ok{color:#1d6b35;font-weight:600}.broken{color:#b0212b;font-weight:600}\
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.92rem}\
th,td{border:1px solid #d0d5dc;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eef0f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.name{overflow-wrap:anywhere}.pre{white-space:pre-wrap;overflow-wrap:anywhere}\
a{color:#1f5fbf}\
.risk-critical{color:#7a0b47;font-weight:600}.risk-high{color:#b0212b;font-weight:600}.risk-medium{color:#8a5200}.risk-low{color:#2f5f8a}.risk-none{color:#4b5563}\
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}.facts dt{font-weight:600}.facts dd{margin:0}\
figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}\
.toolbar{margin:1rem 0}\
@media print{body{max-width:none;padding:0;font-size:10.5pt}.toolbar{display:none}a{color:inherit}\
h2{break-after:avoid}tr,figure{break-inside:avoid}thead{display:table-header-group}\
a[href^=\"http\"]::after{content:\" (\" attr(href) \")\";font-size:.8em;color:#555e69;overflow-wrap:anywhere}}\
@page{margin:16mm}";

fn report_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(REPORT_CSS));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// One action from the audit trail.
struct Action {
    time: String,
    actor: String,
    action: String,
    outcome: String,
    file: Option<String>,
    detail: Option<String>,
}

/// What the audit trail says about the integration in the period.
#[derive(Default)]
struct AuditPart {
    actions: Vec<Action>,
    /// (action, outcome) → count, every one counted.
    counts: BTreeMap<(String, String), u64>,
    /// Changes to the integration itself (config, secrets, enable, policy...).
    changes: u64,
    /// The scan stopped at [`MAX_AUDIT_SCAN`] entries.
    truncated: bool,
}

/// A time as a person reads it in a printed report: `2026-01-31 09:30:05 UTC`.
fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        day_text(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// The first audit sequence number at or after `start`, found by halving (entries are in
/// time order), so a report reads only its period's entries.
fn first_seq_at(
    s: &dyn proofpix_store::Backend,
    start: OffsetDateTime,
) -> Result<u64, proofpix_store::StoreError> {
    let Some(last) = s.audit_latest(1)?.first().map(|e| e.seq) else {
        return Ok(1);
    };
    let (mut lo, mut hi) = (0u64, last + 1);
    // Invariant: entries before `lo` are earlier than `start`; `hi` is at or after it (or
    // past the end).
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match s.audit_entries(mid, 1)?.first() {
            Some(e) if parse_time(&e.time).is_some_and(|t| t < start) => lo = e.seq + 1,
            Some(_) => hi = mid,
            None => hi = mid,
        }
    }
    Ok(lo)
}

fn audit_part(
    s: &dyn proofpix_store::Backend,
    id: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<AuditPart, proofpix_store::StoreError> {
    let mut out = AuditPart::default();
    let mut from = first_seq_at(s, start)?;
    let mut scanned = 0u64;
    'pages: loop {
        let page = s.audit_entries(from, 1000)?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for e in page {
            scanned += 1;
            if scanned > MAX_AUDIT_SCAN {
                out.truncated = true;
                break 'pages;
            }
            let Some(t) = parse_time(&e.time) else {
                continue;
            };
            if t >= end {
                break 'pages;
            }
            if t < start || e.target != id {
                continue;
            }
            if e.action.starts_with("remediation.") && !e.action.starts_with("remediation.policy") {
                *out.counts
                    .entry((e.action.clone(), e.outcome.clone()))
                    .or_default() += 1;
                if out.actions.len() < MAX_LISTED_ACTIONS {
                    let details: serde_json::Value =
                        serde_json::from_str(&e.details).unwrap_or_default();
                    let text = |k: &str| {
                        details
                            .get(k)
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_string)
                    };
                    out.actions.push(Action {
                        file: text("file"),
                        detail: text("detail").or_else(|| {
                            details
                                .get("status")
                                .and_then(serde_json::Value::as_str)
                                .map(str::to_string)
                        }),
                        time: fmt_time(t),
                        actor: e.actor,
                        action: e.action,
                        outcome: e.outcome,
                    });
                }
            } else if !e.action.starts_with("sync.") {
                out.changes += 1;
                if e.action.starts_with("remediation.policy") {
                    *out.counts
                        .entry((e.action.clone(), e.outcome.clone()))
                        .or_default() += 1;
                }
            }
        }
    }
    Ok(out)
}

/// The files part of a report: counts over the files analysed in the period, and the riskiest.
#[derive(Default)]
struct FilesPart {
    analysed: u64,
    by_risk: BTreeMap<String, u64>,
    by_category: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    top: Vec<proofpix_store::InventoryRow>,
}

fn files_part(
    s: &dyn proofpix_store::Backend,
    id: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<FilesPart, proofpix_store::StoreError> {
    let mut out = FilesPart::default();
    let mut q = InventoryQuery {
        integrations: vec![id.to_string()],
        analysed_from: Some(start),
        analysed_to: Some(end),
        sort: InventorySort::Key,
        limit: 1000,
        ..InventoryQuery::default()
    };
    loop {
        let page = s.inventory(&q)?;
        for row in &page.rows {
            out.analysed += 1;
            if let Some(r) = &row.risk {
                *out.by_risk.entry(r.to_string()).or_default() += 1;
            }
            for c in &row.categories {
                *out.by_category.entry(c.clone()).or_default() += 1;
            }
            *out.by_status
                .entry(format!("{:?}", row.status).to_lowercase())
                .or_default() += 1;
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    out.top = s
        .inventory(&InventoryQuery {
            integrations: vec![id.to_string()],
            risks: vec![RiskLevel::Critical, RiskLevel::High, RiskLevel::Medium],
            analysed_from: Some(start),
            analysed_to: Some(end),
            sort: InventorySort::Risk,
            descending: true,
            limit: TOP_RISKS,
            ..InventoryQuery::default()
        })?
        .rows;
    Ok(out)
}

/// Appends `<tr>` cells, each escaped; a cell starting with `#` is a right-aligned number.
fn row(html: &mut String, cells: &[&str]) {
    html.push_str("<tr>");
    for c in cells {
        match c.strip_prefix('#') {
            Some(n) => {
                let _ = write!(html, "<td class=\"n\">{}</td>", xml_escape(n));
            }
            None => {
                let _ = write!(html, "<td>{}</td>", xml_escape(c));
            }
        }
    }
    html.push_str("</tr>");
}

fn head(html: &mut String, caption: &str, cells: &[&str]) {
    let _ = write!(
        html,
        "<table><caption class=\"muted\">{}</caption><thead><tr>",
        xml_escape(caption)
    );
    for c in cells {
        let _ = write!(html, "<th scope=\"col\">{}</th>", xml_escape(c));
    }
    html.push_str("</tr></thead><tbody>");
}

/// A printable compliance report of one integration over a period (UTC days, both
/// included), as an HTML page that prints well (print CSS; use the browser's Print or Save
/// as PDF): the files analysed in the period by risk, by privacy category and by pipeline
/// state; files analysed per day by risk (a picture and a table); the riskiest files with
/// links to their page and to the platform; the runs; the remediation actions taken and
/// policy changes, from the audit trail; and the audit chain's verification. Viewer.
#[utoipa::path(get, path = "/api/integrations/{id}/report", tag = "integrations", params(("id" = String, Path), ReportQuery), responses((status = 200, description = "A printable HTML page", content_type = "text/html"), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn integration_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    let record = state.host().integration(&id)?;
    let today = state.host().store().now().date();
    let to = parse_day("to", &q.to)?.unwrap_or(today);
    let from = parse_day("from", &q.from)?.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(unprocessable(format!(
            "from ({}) is after to ({})",
            day_text(from),
            day_text(to)
        )));
    }
    let start = from.midnight().assume_utc();
    let end = to
        .next_day()
        .map(|d| d.midnight().assume_utc())
        .ok_or_else(|| unprocessable("to is the last day there is".into()))?;
    let span = usize::try_from((to - from).whole_days() + 1).unwrap_or(usize::MAX);
    if span > MAX_REPORT_DAYS {
        return Err(unprocessable(format!(
            "a report covers at most {MAX_REPORT_DAYS} days; this period has {span}"
        )));
    }
    let integration = id.clone();
    let (files, audit, verify, batches) = blocking(&state, move |s| {
        let files = files_part(s, &integration, start, end)?;
        let audit = audit_part(s, &integration, start, end)?;
        let verify = s.audit_verify()?;
        let batches = s.batches_since(Some(&integration), start, MAX_TREND_RUNS + 1)?;
        Ok((files, audit, verify, batches))
    })
    .await?;
    let runs_truncated = batches.len() > MAX_TREND_RUNS;
    let batches: Vec<BatchRecord> = batches
        .into_iter()
        .take(MAX_TREND_RUNS)
        .filter(|b| b.started_at < end)
        .collect();
    let plugin = state.host().plugin(&record.plugin_id);
    let platform = plugin
        .as_ref()
        .map(|p| p.info().platform.clone())
        .unwrap_or_default();
    let now = state.host().store().now();

    let mut html = String::with_capacity(32 * 1024);
    let title = format!(
        "Compliance report: {id}, {} to {}",
        day_text(from),
        day_text(to)
    );
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · ProofPix</title><style>{REPORT_CSS}</style></head><body><main>",
        xml_escape(&title)
    );
    let _ = write!(
        html,
        "<h1>{}</h1><p class=\"muted\">ProofPix compliance report</p><dl class=\"facts\">\
         <dt>Integration</dt><dd>{}</dd><dt>Platform</dt><dd>{}</dd>\
         <dt>Period</dt><dd>{} to {} (UTC, both days included)</dd>\
         <dt>Generated</dt><dd>{} by {}</dd></dl>\
         <p class=\"toolbar\"><a href=\"/#/integrations/{}\">Back to the dashboard</a></p>",
        xml_escape(&title),
        xml_escape(&id),
        xml_escape(&platform),
        day_text(from),
        day_text(to),
        xml_escape(&fmt_time(now)),
        xml_escape(&caller.actor()),
        uri_component(&id),
    );

    // Summary: files by risk and by state.
    html.push_str("<section aria-labelledby=\"files-title\"><h2 id=\"files-title\">Files analysed in the period</h2>");
    let _ = write!(
        html,
        "<p>{} whose latest analysis falls in the period (a file analysed again later counts in the period of that later analysis).</p>",
        xml_escape(&plural(files.analysed, "file", "files"))
    );
    head(&mut html, "Files by risk", &["Risk", "Files"]);
    for (risk, _, _) in RISK_SERIES {
        let n = files.by_risk.get(*risk).copied().unwrap_or(0);
        let _ = write!(
            html,
            "<tr><td class=\"risk-{risk}\">{risk}</td><td class=\"n\">{n}</td></tr>"
        );
    }
    html.push_str("</tbody></table>");
    head(
        &mut html,
        "Files by privacy category (a file counts once in each category it has a finding of)",
        &["Category", "Files"],
    );
    if files.by_category.is_empty() {
        html.push_str("<tr><td colspan=\"2\" class=\"muted\">No finding in the period.</td></tr>");
    }
    let mut categories: Vec<(&String, &u64)> = files.by_category.iter().collect();
    categories.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (category, n) in categories {
        row(&mut html, &[category, &format!("#{n}")]);
    }
    html.push_str("</tbody></table>");
    head(
        &mut html,
        "Files by pipeline state (written: the result was written back to the platform)",
        &["State", "Files"],
    );
    for (status, n) in &files.by_status {
        row(&mut html, &[status, &format!("#{n}")]);
    }
    html.push_str("</tbody></table></section>");

    // Risk over the period: a picture and its table.
    // The picture shows the last 90 days of a longer period; the table below has them all.
    let shown = span.min(charts::MAX_BARS);
    let chart_days = days_of(&batches, to - Duration::days(shown as i64 - 1), shown);
    let chart = risk_chart("report", &chart_days, &format!("of {id}"));
    html.push_str("<section aria-labelledby=\"trend-title\"><h2 id=\"trend-title\">Files analysed per day</h2>");
    let _ = write!(
        html,
        "<figure>{}<figcaption class=\"muted\">{}</figcaption></figure>",
        chart.svg(Theme::Light),
        xml_escape(&chart.desc)
    );
    let all_days = days_of(&batches, from, span);
    head(
        &mut html,
        "Runs per day (days with a run)",
        &[
            "Day", "Runs", "Failed", "Files", "Critical", "High", "Medium", "Low", "None",
        ],
    );
    let mut any = false;
    for d in all_days.iter().filter(|d| d.runs > 0) {
        any = true;
        let r = |k: &str| format!("#{}", d.by_risk.get(k).copied().unwrap_or(0));
        row(
            &mut html,
            &[
                &d.day,
                &format!("#{}", d.runs),
                &format!("#{}", d.runs_failed),
                &format!("#{}", d.files),
                &r("critical"),
                &r("high"),
                &r("medium"),
                &r("low"),
                &r("none"),
            ],
        );
    }
    if !any {
        html.push_str("<tr><td colspan=\"9\" class=\"muted\">No run in the period.</td></tr>");
    }
    html.push_str("</tbody></table>");
    if runs_truncated {
        let _ = write!(
            html,
            "<p class=\"broken\">The period has more than {MAX_TREND_RUNS} runs: only the newest are counted here.</p>"
        );
    }
    html.push_str("</section>");

    // Top risks.
    html.push_str("<section aria-labelledby=\"top-title\"><h2 id=\"top-title\">Top risks</h2>");
    if files.top.is_empty() {
        html.push_str("<p>No file of medium risk or above was analysed in the period.</p>");
    } else {
        head(
            &mut html,
            &format!(
                "The {} riskiest files analysed in the period (medium and above), highest first",
                files.top.len()
            ),
            &[
                "File",
                "Risk",
                "Score",
                "Categories",
                "Analysed",
                "On the platform",
            ],
        );
        for f in &files.top {
            let risk = f.risk.map_or("", |r| r.as_str());
            let _ = write!(
                html,
                "<tr><td class=\"name\"><a href=\"/#/files/{}/{}\">{}</a><br><span class=\"muted pre\">{}</span></td><td class=\"risk-{}\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>",
                uri_component(&f.integration),
                uri_component(&f.remote_id),
                xml_escape(if f.name.is_empty() {
                    &f.remote_id
                } else {
                    &f.name
                }),
                xml_escape(&f.remote_id),
                xml_escape(risk),
                xml_escape(risk),
                f.score.unwrap_or(0),
                xml_escape(&f.categories.join(", ")),
                xml_escape(&f.analysed_at.map(fmt_time).unwrap_or_default()),
            );
            match safe_web_url(f.web_url.as_deref()) {
                Some(url) => {
                    let _ = write!(
                        html,
                        "<a href=\"{}\" rel=\"noopener noreferrer\">Open on {}</a>",
                        xml_escape(&url),
                        xml_escape(if platform.is_empty() {
                            "the platform"
                        } else {
                            &platform
                        })
                    );
                }
                None => html.push_str("<span class=\"muted\">no link</span>"),
            }
            html.push_str("</td></tr>");
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");

    // Actions taken.
    html.push_str(
        "<section aria-labelledby=\"actions-title\"><h2 id=\"actions-title\">Actions taken</h2>",
    );
    let runs = batches.len() as u64;
    let failed = batches
        .iter()
        .filter(|b| Host::run_error(b).is_some())
        .count() as u64;
    let _ = write!(
        html,
        "<p>{} in the period, {} failed; {} by operators (configuration, secrets, pausing, policy).</p>",
        xml_escape(&plural(runs, "sync", "syncs")),
        failed,
        xml_escape(&plural(
            audit.changes,
            "change to the integration",
            "changes to the integration"
        )),
    );
    head(
        &mut html,
        "Remediation actions and policy changes, by outcome (from the audit trail)",
        &["Action", "Outcome", "Count"],
    );
    if audit.counts.is_empty() {
        html.push_str(
            "<tr><td colspan=\"3\" class=\"muted\">No remediation action in the period.</td></tr>",
        );
    }
    for ((action, outcome), n) in &audit.counts {
        row(&mut html, &[action, outcome, &format!("#{n}")]);
    }
    html.push_str("</tbody></table>");
    if !audit.actions.is_empty() {
        head(
            &mut html,
            &format!(
                "Each remediation action{}",
                if audit.actions.len() >= MAX_LISTED_ACTIONS {
                    format!(" (the first {MAX_LISTED_ACTIONS}; all are counted above)")
                } else {
                    String::new()
                }
            ),
            &["Time", "Action", "Outcome", "File", "Detail", "By"],
        );
        for a in &audit.actions {
            row(
                &mut html,
                &[
                    &a.time,
                    &a.action,
                    &a.outcome,
                    a.file.as_deref().unwrap_or(""),
                    a.detail.as_deref().unwrap_or(""),
                    &a.actor,
                ],
            );
        }
        html.push_str("</tbody></table>");
    }
    if audit.truncated {
        let _ = write!(
            html,
            "<p class=\"broken\">The audit trail has more than {MAX_AUDIT_SCAN} entries in the period: the counts above stop there.</p>"
        );
    }
    html.push_str("</section>");

    // The audit chain.
    let _ = write!(
        html,
        "<section aria-labelledby=\"chain-title\"><h2 id=\"chain-title\">Audit chain verification</h2><p class=\"{}\">{}</p><p class=\"muted\">Checked when this report was generated, over the whole trail: every entry's hash follows from the one before it, and the head is authenticated by the store's master key.</p></section>",
        if verify.is_ok() { "ok" } else { "broken" },
        xml_escape(&verify.to_string())
    );
    html.push_str("</main></body></html>");

    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, report_csp()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day's counts: runs, failures, files by risk, and throughput over finished runs
    /// only (a running one has no time yet); runs outside the period are left out.
    #[test]
    fn runs_count_into_their_day() {
        let first = time::macros::date!(2026 - 12 - 01);
        let at = |d: u8, h: u8| {
            time::macros::datetime!(2026-12-01 00:00 UTC)
                .replace_day(d)
                .unwrap()
                + Duration::hours(i64::from(h))
        };
        let mut a = BatchRecord::started(1, "x", at(1, 9));
        a.total = 10;
        a.by_risk.insert("high".into(), 3);
        a.finished_at = Some(at(1, 10));
        a.duration = Some(std::time::Duration::from_secs(5));
        let mut b = BatchRecord::started(2, "x", at(1, 11));
        b.total = 4;
        let mut c = BatchRecord::started(3, "x", at(3, 1));
        c.total = 2;
        c.finished_at = Some(at(3, 2));
        c.duration = Some(std::time::Duration::from_secs(1));
        let before = BatchRecord::started(0, "x", at(1, 0) - Duration::hours(1));
        let days = days_of(&[a, b, c, before], first, 3);
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].day, "2026-12-01");
        assert_eq!(
            (days[0].runs, days[0].files, days[0].runs_finished),
            (2, 14, 1)
        );
        assert_eq!(days[0].by_risk.get("high"), Some(&3));
        assert_eq!(days[0].files_per_sec, Some(2.0), "10 files in 5 s");
        assert_eq!(days[1].runs, 0);
        assert_eq!(days[1].files_per_sec, None);
        assert_eq!(days[2].max_duration_ms, 1000);
    }

    #[test]
    fn addresses_are_encoded_as_the_dashboard_decodes_them() {
        assert_eq!(uri_component("a b/c?d#e&\"<"), "a%20b%2Fc%3Fd%23e%26%22%3C");
        assert_eq!(uri_component("é"), "%C3%A9");
    }
}
