//! Throughput of the Salesforce connector against its emulator on loopback, for BENCHMARKS.md.
//!
//! Run it with a release build (the plugins are compiled by the artifacts build script):
//!
//! ```text
//! cargo run --release -p proofpix-integration-tests --example salesforce_bench -- 100 4
//! ```
//!
//! Arguments: cases (default 100), Files per case (default 4); every Case also has one image
//! Attachment. `BENCH_LATENCY_MS=40` adds that much to every emulator response (a real org's
//! round trip instead of loopback's); `BENCH_CONCURRENCY=N` sets the files in flight. It prints, for a full sync (discovery + download + analysis + write-back) and an
//! incremental re-run: files/s, API requests per file, bytes downloaded per file, and the time
//! spent inside plugin calls; then the cost of the WASM boundary alone, measured by calling the
//! plugin's `download` (no I/O: argument in, request out) and `write-back` with write-back off
//! (no I/O: 200 results in, outcomes out) in a loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofpix_emulators::salesforce::{self, SalesforceConfig};
use proofpix_emulators::{Clock, Harness};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};

#[tokio::main]
async fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cases = args.first().copied().unwrap_or(100);
    let per_case = args.get(1).copied().unwrap_or(4);

    let mut config = SalesforceConfig::default();
    config.api.seed.cases = cases;
    config.api.seed.files_per_case = per_case;
    config.api.seed.attachments_per_case = 1;
    config.api.seed.distractors = false;
    let sf = salesforce::start_org(config, Harness::with_clock(Clock::new()))
        .await
        .expect("emulator");
    let env_num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = env_num("BENCH_LATENCY_MS") {
        sf.faults().always(
            "*",
            proofpix_emulators::Fault::Delay(Duration::from_millis(ms)),
        );
        println!("every emulator response delayed by {ms} ms");
    }
    let concurrency =
        env_num("BENCH_CONCURRENCY").map_or(PipelineOptions::default().concurrency, |n| n as usize);

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store");
    let host = Host::new(
        Arc::new(store),
        HostOptions {
            pipeline: PipelineOptions {
                concurrency,
                wait_for_retries: Some(Duration::from_secs(60)),
                ..PipelineOptions::default()
            },
            // A development build signs its first-party plugins with its own key.
            trust_development_build: true,
            ..HostOptions::default()
        },
    )
    .await
    .expect("host");

    let integrate = |id: &'static str, write: bool| {
        use salesforce::fixtures as f;
        let config: BTreeMap<String, String> = [
            ("auth_flow", "password"),
            ("login_url", sf.base_url().as_str().trim_end_matches('/')),
            ("client_id", f::CLIENT_ID),
            ("username", f::USERNAME),
            ("write_results", if write { "true" } else { "false" }),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        let secrets: BTreeMap<String, Secret> = [
            ("client_secret", f::CLIENT_SECRET.to_string()),
            ("password", f::PASSWORD.to_string()),
            ("security_token", f::SECURITY_TOKEN.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Secret::new(v)))
        .collect();
        IntegrationSpec {
            id: id.into(),
            plugin: "salesforce".into(),
            config,
            secrets,
            grant: OperatorGrant {
                hosts: vec!["http://127.0.0.1:*".into()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        }
    };
    host.create_integration(integrate("bench", true), "bench")
        .await
        .expect("integration");
    let test = host.test("bench").await;
    assert!(test.ok(), "{test:?}");

    let mut full: Option<(proofpix_pipeline::SyncReport, Duration)> = None;
    for (label, mode) in [
        ("full sync", SyncMode::Incremental),
        ("re-run (nothing new)", SyncMode::Incremental),
    ] {
        sf.api.clear_exchanges();
        let tokens_before = sf.log().count(salesforce::TOKEN_PATH);
        let calls_before = proofpix_runtime::metrics::snapshot();
        let started = Instant::now();
        let report = host.sync("bench", mode).await.expect("sync");
        let elapsed = started.elapsed();
        let calls = proofpix_runtime::metrics::snapshot();
        let exchanges = sf.api.exchanges();
        let files = report.files.len().max(1) as f64;
        let listed = (report.files.len() as u64 + report.unchanged).max(1) as f64;
        let requests = exchanges.len() + sf.log().count(salesforce::TOKEN_PATH) - tokens_before;
        let by_kind = |needle: &str| exchanges.iter().filter(|e| e.path.contains(needle)).count();
        let fetched: u64 = report.files.iter().map(|f| f.bytes_fetched).sum();
        let plugin_secs = calls.call_seconds_sum - calls_before.call_seconds_sum;
        println!(
            "== {label}: {} files analysed, {} unchanged, {} pages",
            report.files.len(),
            report.unchanged,
            report.pages
        );
        println!(
            "   wall {:.3} s, {:.1} files/s",
            elapsed.as_secs_f64(),
            report.files.len() as f64 / elapsed.as_secs_f64()
        );
        println!(
            "   requests {requests} ({:.3} per listed file): query {} + more {} + blob {} + collections {} + other {}",
            requests as f64 / listed,
            by_kind("/query?")
                + exchanges
                    .iter()
                    .filter(|e| e.path.ends_with("/query"))
                    .count(),
            by_kind("/query/"),
            by_kind("/VersionData") + by_kind("/Body"),
            by_kind("/composite/"),
            requests
                - exchanges
                    .iter()
                    .filter(|e| e.path.contains("/query")
                        || e.path.contains("/VersionData")
                        || e.path.contains("/Body")
                        || e.path.contains("/composite/"))
                    .count(),
        );
        println!(
            "   bytes downloaded per analysed file: {:.0} (sum {fetched})",
            fetched as f64 / files
        );
        println!(
            "   plugin calls: {} taking {:.3} s ({:.1}% of wall; includes the plugin's own HTTP waits)",
            calls.calls - calls_before.calls,
            plugin_secs,
            100.0 * plugin_secs / elapsed.as_secs_f64()
        );
        if full.is_none() {
            full = Some((report, elapsed));
        }
    }

    // The boundary's share by replay: the plugin's calls alone on one session (discovery of
    // every page, `download` for every file, write-back of every result in the plugin's batch
    // size), then exactly the HTTP requests they made, re-sent natively with one reqwest client
    // (one connection pool, like the host's per-session client). Plugin-call time minus the
    // native replay is the plugin's own work plus the boundary.
    let (report, sync_time) = full.expect("a full sync ran");
    let results: Vec<_> = report
        .files
        .iter()
        .filter_map(|o| {
            Some(proofpix_pipeline::file_result(
                &o.file,
                o.report.as_ref()?,
                "2026-11-26T12:00:00Z",
            ))
        })
        .collect();
    let n = results.len().max(1) as f64;
    let (plugin, ctx) = host.context("bench", true).await.expect("context");
    let batch = (plugin.info().write_back_batch_size as usize).max(1);
    let mut session = plugin.session(&ctx).await.expect("session");
    sf.log().clear();
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    let mut listed = Vec::new();
    loop {
        let page = session.discover(cursor.as_deref()).await.expect("discover");
        listed.extend(page.files);
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    let discover = started.elapsed();
    let started = Instant::now();
    for f in &listed {
        session.download(f).await.expect("download");
    }
    let download = started.elapsed();
    let started = Instant::now();
    for chunk in results.chunks(batch) {
        session.write_back(chunk).await.expect("write-back");
    }
    let write_back = started.elapsed();
    let recorded = sf.log().all();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut failed = 0;
    for r in &recorded {
        let url = if r.query.is_empty() {
            sf.url(&r.path).to_string()
        } else {
            format!("{}?{}", sf.url(&r.path), r.query)
        };
        let mut b = client.request(r.method.parse().expect("method"), url);
        for h in [
            "authorization",
            "content-type",
            "accept",
            "sforce-query-options",
        ] {
            if let Some(v) = r.header(h) {
                b = b.header(h, v);
            }
        }
        let resp = b.body(r.body.clone()).send().await.expect("replay");
        if !resp.status().is_success() {
            failed += 1;
        }
        let _ = resp.bytes().await.expect("replay body");
    }
    let native = started.elapsed();
    let plugin_total = discover + download + write_back;
    let beyond = plugin_total.saturating_sub(native);
    println!(
        "== boundary by replay: {} files listed, {} results written back in batches of {batch}",
        listed.len(),
        results.len()
    );
    println!(
        "   plugin calls: discover {:.1} ms, download {:.1} ms ({:.1} µs/file), write-back {:.1} ms; native replay of their {} requests: {:.1} ms ({failed} not 2xx)",
        discover.as_secs_f64() * 1e3,
        download.as_secs_f64() * 1e3,
        download.as_secs_f64() * 1e6 / listed.len().max(1) as f64,
        write_back.as_secs_f64() * 1e3,
        recorded.len(),
        native.as_secs_f64() * 1e3,
    );
    println!(
        "   per file: sync {:.3} ms, plugin calls {:.3} ms, beyond native HTTP {:.3} ms = {:.2}% of the sync time",
        sync_time.as_secs_f64() * 1e3 / n,
        plugin_total.as_secs_f64() * 1e3 / n,
        beyond.as_secs_f64() * 1e3 / n,
        100.0 * beyond.as_secs_f64() / sync_time.as_secs_f64()
    );

    // The boundary alone: calls with no I/O inside.
    host.create_integration(integrate("boundary", false), "bench")
        .await
        .expect("integration");
    let (plugin, ctx) = host.context("boundary", true).await.expect("context");
    let mut session = plugin.session(&ctx).await.expect("session");
    // Any listed file will do: `download` only builds the request.
    let file = listed.first().cloned().expect("a file");
    let n = 2000;
    let started = Instant::now();
    for _ in 0..n {
        session.download(&file).await.expect("download");
    }
    let per_download = started.elapsed() / n;
    let results: Vec<_> = (0..200)
        .map(|_| proofpix_model::FileResult {
            file: file.clone(),
            format: "jpeg".into(),
            risk: proofpix_model::RiskLevel::High,
            score: 80,
            findings: Vec::new(),
            summary: "GPS 48.1,2.3 (±10 m); owner J*** D**; serial SN-4***".into(),
            error: None,
            analysed_at: "2026-01-01T00:00:00Z".into(),
            policy_version: "bench".into(),
        })
        .collect();
    let rounds = 50;
    let started = Instant::now();
    for _ in 0..rounds {
        session.write_back(&results).await.expect("write-back");
    }
    let per_result = started.elapsed() / (rounds * 200);
    println!("== WASM boundary alone (no I/O in the call)");
    println!(
        "   download call: {:.1} µs per file",
        per_download.as_secs_f64() * 1e6
    );
    println!(
        "   write-back call (write-back off): {:.2} µs per result",
        per_result.as_secs_f64() * 1e6
    );
    println!(
        "   instantiate a session: {:.1} µs",
        session.stats().instantiate.as_secs_f64() * 1e6
    );
}
