//! Throughput of the SharePoint connector against the Graph emulator on loopback, for
//! BENCHMARKS.md.
//!
//! Run it with a release build (the plugins are compiled by the artifacts build script):
//!
//! ```text
//! cargo run --release -p proofpix-integration-tests --example sharepoint_bench -- 200 1600 1200
//! ```
//!
//! Arguments: files (default 200), width and height of each JPEG (default 1600 × 1200, about
//! 0.3 MB each: bigger than the host's 128 KiB head + 64 KiB tail, so range reads show). All
//! files are phone photos with GPS, owner and serial, in one library, ten folders.
//!
//! It prints, for three full syncs on fresh integrations (discovery + download + analysis +
//! write-back) and one incremental re-run: files/s, requests per file by kind, bytes downloaded
//! per file and their share of the file bytes, and the time inside plugin calls. Then the WASM
//! boundary's share, two ways:
//!
//! 1. the same discovery and write-back requests driven natively (reqwest, serde_json, no
//!    plugin) against the same emulator, compared with the plugin's `discover` and `write-back`
//!    calls doing them through the host; the difference is what the boundary and the guest
//!    code cost;
//! 2. calls with no I/O inside (`download`, and `write-back` with write-back off) in a loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofpix_emulators::microsoft::graph::{self, GraphConfig, Route, Server, seed};
use proofpix_emulators::microsoft::{self, fixtures};
use proofpix_emulators::{Clock, Harness};
use proofpix_model::{FileResult, RemoteFile, RiskLevel};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};
use serde_json::{Value, json};

const SELECT: &str = "id,name,size,eTag,cTag,file,image,photo,folder,package,root,deleted,parentReference,lastModifiedDateTime,webUrl,sharepointIds";

#[tokio::main]
async fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(200);
    let width = u16::try_from(args.get(1).copied().unwrap_or(1600)).unwrap_or(1600);
    let height = u16::try_from(args.get(2).copied().unwrap_or(1200)).unwrap_or(1200);

    let started = Instant::now();
    let ms = microsoft::start_with_graph(
        Default::default(),
        GraphConfig {
            population: seed::photos(n, width, height),
            ..GraphConfig::default()
        },
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("emulator");
    let g = ms.graph().clone();
    let total_bytes: u64 = g.files().iter().map(|f| f.size).sum();
    println!(
        "population: {n} JPEGs {width}x{height}, {:.0} bytes each on average (seeded in {:.1} s)",
        total_bytes as f64 / f64::from(n),
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store");
    let pipeline = PipelineOptions {
        wait_for_retries: Some(Duration::from_secs(60)),
        ..PipelineOptions::default()
    };
    println!(
        "pipeline: concurrency {}, head {} KiB, tail {} KiB",
        pipeline.concurrency,
        pipeline.head_bytes / 1024,
        pipeline.tail_bytes / 1024
    );
    let host = Host::new(
        Arc::new(store),
        HostOptions {
            pipeline,
            // A development build signs its first-party plugins with its own key.
            trust_development_build: true,
            ..HostOptions::default()
        },
    )
    .await
    .expect("host");

    let spec = |id: &str, write: bool| {
        let config: BTreeMap<String, String> = [
            ("tenant", fixtures::TENANT_ID.to_string()),
            ("client_id", fixtures::CLIENT_ID.to_string()),
            ("sites", seed::FIELDWORK_SITE.to_string()),
            ("page_size", "200".to_string()),
            ("write_back", write.to_string()),
            ("graph_url", ms.graph_url()),
            ("login_url", ms.login_url()),
            ("download_host", ms.download_url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        IntegrationSpec {
            id: id.into(),
            plugin: "sharepoint".into(),
            config,
            secrets: [(
                "client_secret".to_string(),
                Secret::new(fixtures::CLIENT_SECRET),
            )]
            .into_iter()
            .collect(),
            grant: OperatorGrant {
                hosts: vec!["http://127.0.0.1:*".into()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        }
    };

    // ----- full syncs -------------------------------------------------------------------
    let mut rates = Vec::new();
    let mut full_secs = Vec::new();
    for run in 1..=3 {
        let id = format!("bench{run}");
        host.create_integration(spec(&id, true), "bench")
            .await
            .expect("integration");
        g.clear_traffic();
        let before = proofpix_runtime::metrics::snapshot();
        let t = Instant::now();
        let report = host.sync(&id, SyncMode::Incremental).await.expect("sync");
        let wall = t.elapsed().as_secs_f64();
        let after = proofpix_runtime::metrics::snapshot();
        assert_eq!(report.files.len(), n as usize, "every file");
        assert!(
            report
                .files
                .iter()
                .all(|f| f.error.is_none() && f.written_back)
        );
        rates.push(f64::from(n) / wall);
        full_secs.push(wall);
        let plugin_secs = after.call_seconds_sum - before.call_seconds_sum;
        println!(
            "== full sync {run}: {n} files in {wall:.3} s = {:.1} files/s; {} plugin calls taking {plugin_secs:.3} s ({:.1}% of wall, the plugin's HTTP waits included)",
            f64::from(n) / wall,
            after.calls - before.calls,
            100.0 * plugin_secs / wall
        );
        if run == 1 {
            print_traffic(&g, f64::from(n), total_bytes, &report);
        }
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "   files/s over 3 runs: median {:.1}, min {:.1}, max {:.1}",
        rates[1], rates[0], rates[2]
    );

    // ----- re-run ---------------------------------------------------------------------
    g.clear_traffic();
    let t = Instant::now();
    let report = host
        .sync("bench1", SyncMode::Incremental)
        .await
        .expect("re-run");
    let wall = t.elapsed().as_secs_f64();
    println!(
        "== re-run (nothing new): {} analysed, {} unchanged in {wall:.3} s; {} requests",
        report.files.len(),
        report.unchanged,
        g.exchanges().len()
    );

    // ----- the same flow driven natively ---------------------------------------------------
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let token = native_token(&http, &ms).await;
    let drive = g
        .drive_id(seed::FIELDWORK_SITE, seed::DOCUMENTS)
        .expect("drive");
    let site = g.site_id(seed::FIELDWORK_SITE).expect("site");
    let list = g.list_id(&drive).expect("list");
    let samples = 5;
    let mut native_discover = Duration::ZERO;
    let mut native_write = Duration::ZERO;
    let mut items = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        items = native_discover_all(&http, &token, &ms.graph_url(), &drive).await;
        native_discover += t.elapsed();
        let t = Instant::now();
        native_write_back(&http, &token, &ms.graph_url(), &site, &list, &items).await;
        native_write += t.elapsed();
    }
    assert_eq!(items.len(), n as usize);
    let native_discover = native_discover / samples;
    let native_write = native_write / samples;

    let (plugin, ctx) = host.context("bench1", true).await.expect("context");
    let mut session = plugin.session(&ctx).await.expect("session");
    let mut wasm_discover = Duration::ZERO;
    let mut wasm_write = Duration::ZERO;
    let mut files: Vec<RemoteFile> = Vec::new();
    for _ in 0..samples {
        files.clear();
        let t = Instant::now();
        let mut cursor: Option<String> = None;
        loop {
            let page = session.discover(cursor.as_deref()).await.expect("page");
            files.extend(page.files);
            if !page.more {
                break;
            }
            cursor = page.cursor;
        }
        wasm_discover += t.elapsed();
        let results: Vec<FileResult> = files.iter().cloned().map(result).collect();
        let t = Instant::now();
        for chunk in results.chunks(100) {
            session.write_back(chunk).await.expect("write-back");
        }
        wasm_write += t.elapsed();
    }
    let wasm_discover = wasm_discover / samples;
    let wasm_write = wasm_write / samples;
    let per_file = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
    println!("== the same requests, native vs through the plugin (mean of {samples})");
    println!(
        "   discovery: native {:.1} µs/file, plugin {:.1} µs/file",
        per_file(native_discover),
        per_file(wasm_discover)
    );
    println!(
        "   write-back: native {:.1} µs/file, plugin {:.1} µs/file",
        per_file(native_write),
        per_file(wasm_write)
    );

    // ----- the same requests replayed natively ------------------------------------------------
    // Exactly the HTTP requests the plugin's calls made (discovery of every page, `download`
    // for every file, write-back of every result in the plugin's batch size), as the emulator
    // logged them, re-sent with one reqwest client (one connection pool, like the host's
    // per-session client). Plugin-call time minus the replay is the plugin's own work plus the
    // boundary.
    let batch = (plugin.info().write_back_batch_size as usize).max(1);
    let mut replay_files: Vec<RemoteFile> = Vec::new();
    ms.log().clear();
    let t = Instant::now();
    let mut cursor: Option<String> = None;
    loop {
        let page = session.discover(cursor.as_deref()).await.expect("page");
        replay_files.extend(page.files);
        if !page.more {
            break;
        }
        cursor = page.cursor;
    }
    let r_discover = t.elapsed();
    let t = Instant::now();
    for f in &replay_files {
        session.download(f).await.expect("download");
    }
    let r_download = t.elapsed();
    let results: Vec<FileResult> = replay_files.iter().cloned().map(result).collect();
    let t = Instant::now();
    for chunk in results.chunks(batch) {
        session.write_back(chunk).await.expect("write-back");
    }
    let r_write = t.elapsed();
    let recorded = ms.log().all();
    let replay_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut not_ok = 0;
    let t = Instant::now();
    for r in &recorded {
        let url = if r.query.is_empty() {
            ms.url(&r.path).to_string()
        } else {
            format!("{}?{}", ms.url(&r.path), r.query)
        };
        let mut b = replay_client.request(r.method.parse().expect("method"), url);
        for h in ["authorization", "content-type", "accept", "prefer"] {
            if let Some(v) = r.header(h) {
                b = b.header(h, v);
            }
        }
        let resp = b.body(r.body.clone()).send().await.expect("replay");
        if !resp.status().is_success() {
            not_ok += 1;
        }
        let _ = resp.bytes().await.expect("replay body");
    }
    let r_native = t.elapsed();
    let r_plugin = r_discover + r_download + r_write;
    let r_beyond = r_plugin.saturating_sub(r_native);
    println!(
        "== boundary by replay: {} files listed, {} results written back in batches of {batch}",
        replay_files.len(),
        results.len()
    );
    println!(
        "   plugin calls: discover {:.1} ms, download {:.1} ms ({:.1} µs/file), write-back {:.1} ms; native replay of their {} requests: {:.1} ms ({not_ok} not 2xx)",
        r_discover.as_secs_f64() * 1e3,
        r_download.as_secs_f64() * 1e3,
        r_download.as_secs_f64() * 1e6 / replay_files.len().max(1) as f64,
        r_write.as_secs_f64() * 1e3,
        recorded.len(),
        r_native.as_secs_f64() * 1e3,
    );

    // ----- calls with no I/O -----------------------------------------------------------------
    host.create_integration(spec("boundary", false), "bench")
        .await
        .expect("integration");
    let (plugin, ctx) = host.context("boundary", true).await.expect("context");
    let mut quiet = plugin.session(&ctx).await.expect("session");
    let file = files.first().cloned().expect("a file");
    let rounds = 2000u32;
    let t = Instant::now();
    for _ in 0..rounds {
        quiet.download(&file).await.expect("download");
    }
    let per_download = t.elapsed() / rounds;
    let results: Vec<FileResult> = (0..100).map(|_| result(file.clone())).collect();
    let t = Instant::now();
    for _ in 0..50 {
        quiet.write_back(&results).await.expect("write-back");
    }
    let per_result = t.elapsed() / 5000;
    println!("== calls with no I/O inside");
    println!(
        "   download: {:.1} µs per file; write-back (off): {:.2} µs per result",
        per_download.as_secs_f64() * 1e6,
        per_result.as_secs_f64() * 1e6
    );

    let median_full = {
        let mut s = full_secs.clone();
        s.sort_by(f64::total_cmp);
        s[1]
    };
    let total_per_file = median_full * 1e6 / f64::from(n);
    let boundary = (per_file(wasm_discover) - per_file(native_discover)).max(0.0)
        + (per_file(wasm_write) - per_file(native_write)).max(0.0)
        + per_download.as_secs_f64() * 1e6;
    println!(
        "== WASM boundary share: {boundary:.1} µs of {total_per_file:.1} µs per file = {:.1}%",
        100.0 * boundary / total_per_file
    );
    let replay_beyond = r_beyond.as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "== WASM boundary share by replay: plugin calls {:.1} µs per file, beyond native HTTP {replay_beyond:.1} µs of {total_per_file:.1} µs per file (median full sync) = {:.2}%",
        r_plugin.as_secs_f64() * 1e6 / f64::from(n),
        100.0 * replay_beyond / total_per_file
    );
}

fn result(file: RemoteFile) -> FileResult {
    FileResult {
        file,
        format: "jpeg".into(),
        risk: RiskLevel::High,
        score: 80,
        findings: Vec::new(),
        summary: "GPS 40.1,-3.0 (±10 m); owner J*** D**; serial SN-4***".into(),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "bench".into(),
    }
}

fn print_traffic(
    g: &graph::Graph,
    n: f64,
    total_bytes: u64,
    report: &proofpix_pipeline::SyncReport,
) {
    let ex = g.exchanges();
    let count = |f: &dyn Fn(&graph::Exchange) -> bool| ex.iter().filter(|e| f(e)).count();
    let token = count(&|e| e.route == Route::Token);
    let discovery = count(&|e| {
        matches!(
            e.route,
            Route::Sites | Route::Drives | Route::Delta | Route::Columns
        )
    });
    let content = count(&|e| e.route == Route::Content);
    let downloads = count(&|e| e.server == Server::Download);
    let batches = count(&|e| e.route == Route::Batch);
    let subs = count(&|e| e.server == Server::BatchItem);
    let http = ex.len() - subs;
    println!(
        "   HTTP requests {http} = {:.2} per file: token {token}, discovery {discovery}, /content 302 {content}, download host {downloads}, $batch {batches} (carrying {subs} column updates)",
        http as f64 / n
    );
    let downloaded: u64 = ex
        .iter()
        .filter(|e| e.server == Server::Download)
        .map(|e| e.bytes)
        .sum();
    let fetched: u64 = report.files.iter().map(|f| f.bytes_fetched).sum();
    println!(
        "   bytes downloaded {downloaded} = {:.0} per file, {:.1}% of the files' {total_bytes} bytes (host counted {fetched})",
        downloaded as f64 / n,
        100.0 * downloaded as f64 / total_bytes as f64
    );
}

async fn native_token(http: &reqwest::Client, ms: &graph::GraphEmulator) -> String {
    let body: Value = http
        .post(ms.url(&microsoft::token_path(fixtures::TENANT_ID)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fixtures::CLIENT_ID),
            ("client_secret", fixtures::CLIENT_SECRET),
            ("scope", fixtures::GRAPH_DEFAULT_SCOPE),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// (item id, list item id, version) of every image, from a full delta enumeration.
async fn native_discover_all(
    http: &reqwest::Client,
    token: &str,
    graph: &str,
    drive: &str,
) -> Vec<(String, String, String)> {
    let mut url = format!("{graph}/v1.0/drives/{drive}/root/delta?$top=200&$select={SELECT}");
    let mut out = Vec::new();
    loop {
        let page: Value = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        for item in page["value"].as_array().into_iter().flatten() {
            let image = item.get("image").is_some()
                || item["file"]["mimeType"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("image/"));
            if item.get("file").is_none() || !image {
                continue;
            }
            out.push((
                item["id"].as_str().unwrap_or_default().to_owned(),
                item["sharepointIds"]["listItemId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                item["file"]["hashes"]["quickXorHash"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    out
}

async fn native_write_back(
    http: &reqwest::Client,
    token: &str,
    graph: &str,
    site: &str,
    list: &str,
    items: &[(String, String, String)],
) {
    for chunk in items.chunks(20) {
        let requests: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, (_, li, _))| {
                json!({"id": (i + 1).to_string(), "method": "PATCH",
                       "url": format!("/sites/{site}/lists/{list}/items/{li}/fields"),
                       "headers": {"Content-Type": "application/json"},
                       "body": {"ProofPixRisk": "High", "ProofPixScore": 80,
                                "ProofPixFindings": "GPS 40.1,-3.0 (±10 m); owner J*** D**; serial SN-4***"}})
            })
            .collect();
        let body: Value = http
            .post(format!("{graph}/v1.0/$batch"))
            .bearer_auth(token)
            .json(&json!({ "requests": requests }))
            .send()
            .await
            .expect("batch")
            .json()
            .await
            .expect("json");
        assert_eq!(
            body["responses"].as_array().map(Vec::len),
            Some(chunk.len())
        );
    }
}
