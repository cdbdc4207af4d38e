//! Daemon figures for BENCHMARKS.md: end-to-end files/s and latency from a platform webhook to
//! the write-back, against the Slack emulator on loopback. Ignored in the normal suite; run
//! with a release build (see `bench/daemon.sh`):
//!
//! ```text
//! cargo test --release -p proofpix --test bench_daemon -- --ignored --nocapture
//! ```
//!
//! The daemon runs in this process exactly as `proofpix serve` and `proofpix demo` run it
//! (`proofpix_server::serve` over a `Host` with every first-party plugin), on a real loopback
//! socket. For each file a member shares a photo in `#field-photos` (in the emulator's memory,
//! not timed) and Slack's signed `file_shared` Events API request is POSTed to
//! `/hooks/slack`: the plugin verifies it through the host, the host queues the file and runs a
//! queue-only sync (download from the emulated file host, analysis, a `reactions.add`
//! write-back). The clock starts just before the POST and stops when the emulator has recorded
//! the reaction (a watcher started before the first POST polls every millisecond, so
//! latencies are over-stated by up to 1 ms).
//!
//! Two loads: a burst (every event sent as fast as the hook answers, by 4 concurrent senders
//! as Slack's delivery workers would) for throughput, and a paced stream (a fixed rate well
//! under capacity) for the latency a single file sees. `PROOFPIX_BENCH_BURST` and
//! `PROOFPIX_BENCH_PACED` override the file counts (default 500 and 200), `PROOFPIX_BENCH_RATE`
//! the paced rate (default 20 files/s).
//!
//! `PROOFPIX_BENCH_BACKLOG=N` adds a third load (issue 13): a local-folder integration with N
//! generated photos starts its first sync, and the paced stream is sent again while that
//! backlog drains, so the latency is the one a webhook sees behind a large first scan. The
//! backlog's files done during the stream are printed beside it.
//! `PROOFPIX_BENCH_YIELD_AFTER` sets the store's `yield_after` (default 16; 0 never cuts a
//! group's record for a waiting integration).

#![cfg(feature = "demo")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofpix_emulators::sandbox::Sandbox;
use proofpix_emulators::{Clock, slack};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_server::{AppState, DaemonConfig, LiveEvent};
use proofpix_service::{Host, HostOptions, IntegrationSpec};
use proofpix_store::{Store, StoreOptions};
use proofpix_vault::{MasterKey, Secret};

const ID: &str = "slack";
/// Senders delivering the burst at once.
const SENDERS: usize = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    state: AppState,
    sandbox: Arc<Sandbox>,
    hook: String,
    client: reqwest::Client,
    next_photo: u32,
}

impl Bench {
    async fn start(dir: &std::path::Path) -> (Bench, tokio::sync::oneshot::Sender<()>) {
        // `PROOFPIX_BENCH_YIELD_AFTER=0` measures the store without its group cut.
        let options = StoreOptions {
            yield_after: env_or("PROOFPIX_BENCH_YIELD_AFTER", 16) as usize,
            ..StoreOptions::default()
        };
        let store = Arc::new(
            Store::open_with(&dir.join("store"), &MasterKey::generate(), options).unwrap(),
        );
        let options = HostOptions {
            cache_dir: Some(
                std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache"),
            ),
            pipeline: PipelineOptions::default(),
            // A development build signs its first-party plugins with its own key.
            trust_development_build: true,
            ..HostOptions::default()
        };
        let host = Host::new(store, options).await.unwrap();
        let sandbox = Arc::new(Sandbox::start(Clock::new()).await.unwrap());
        // Slack's replay window is checked against the real clock.
        let _ticker = sandbox.follow_wall_clock();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = DaemonConfig::default();
        config.server.listen = addr.to_string();
        let state = proofpix_server::state(host, config);
        let ws = &sandbox.slack;
        let config: BTreeMap<String, String> = [
            ("channels", "#field-photos".to_string()),
            ("write_back", "reaction".to_string()),
            ("api_base_url", ws.api_base()),
            (
                "files_base_url",
                ws.files_base().as_str().trim_end_matches('/').to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let secrets: BTreeMap<String, Secret> = [
            ("bot_token", slack::fixtures::BOT_TOKEN),
            ("signing_secret", slack::fixtures::SIGNING_SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Secret::new(v)))
        .collect();
        state
            .host()
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "slack".into(),
                    config,
                    secrets,
                    grant: OperatorGrant {
                        hosts: vec!["http://127.0.0.1:*".into()],
                        allow_loopback: true,
                        ..OperatorGrant::default()
                    },
                    ..IntegrationSpec::default()
                },
                "operator:bench",
            )
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(proofpix_server::serve(state.clone(), listener, async {
            let _ = rx.await;
        }));
        while !state.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let bench = Bench {
            state,
            sandbox,
            hook: format!("http://{addr}/hooks/{ID}"),
            client: reqwest::Client::new(),
            next_photo: 10_000,
        };
        (bench, tx)
    }

    /// A first full sync, so the channel's cursor is set and the seeded files are done.
    async fn first_sync(&self) {
        let mut events = self.state.subscribe();
        self.state.trigger(ID, SyncMode::Incremental, "bench");
        loop {
            if let Ok(LiveEvent::SyncFinished { integration, .. }) = events.recv().await
                && integration == ID
            {
                break;
            }
        }
    }

    /// Shares a new photo; returns its message ts and the signed event body and headers.
    fn share(&mut self) -> (String, slack::events::SignedRequest) {
        let n = self.next_photo;
        self.next_photo += 1;
        let (ts, file) = self.sandbox.share_slack_photo(n);
        let event = self
            .sandbox
            .slack
            .workspace()
            .file_shared_event(&file)
            .unwrap();
        (ts, self.sandbox.slack.event_sender().event_callback(event))
    }

    async fn post(client: &reqwest::Client, hook: &str, req: &slack::events::SignedRequest) {
        let mut b = client.post(hook).body(req.body.clone());
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let resp = b.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "hook answered {}",
            resp.status()
        );
    }

    /// Watches, from now on, for a reaction on every `ts`; the task returns when each was
    /// first seen. Started before the first event is sent.
    fn watch(&self, wanted: HashSet<String>) -> tokio::task::JoinHandle<HashMap<String, Instant>> {
        let ws = self.sandbox.slack.workspace().clone();
        tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let mut scanned = ws.reactions().len();
            let deadline = Instant::now() + Duration::from_secs(600);
            while seen.len() < wanted.len() {
                let all = ws.reactions();
                let now = Instant::now();
                for r in &all[scanned..] {
                    if wanted.contains(&r.ts) {
                        seen.entry(r.ts.clone()).or_insert(now);
                    }
                }
                scanned = all.len();
                assert!(Instant::now() < deadline, "write-backs missing");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            seen
        })
    }
}

impl Bench {
    /// Writes `backlog` photos to a local folder, starts a local-folder integration's first
    /// sync over them, waits until it is under way, then sends the paced stream. Returns the
    /// stream's figures and how many backlog files were recorded while it ran.
    async fn paced_behind_backlog(
        &mut self,
        dir: &std::path::Path,
        backlog: usize,
        paced: usize,
        rate: u64,
    ) -> (Figures, u64) {
        let photos = dir.join("backlog");
        for (name, bytes) in proofpix_fixtures::photo_set(backlog as u32) {
            let path = photos.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        let host = self.state.host().clone();
        host.create_integration(
            IntegrationSpec {
                id: "backlog".into(),
                plugin: "local-folder".into(),
                config: [("folder".to_string(), photos.display().to_string())].into(),
                grant: OperatorGrant {
                    mounts: vec!["/input".into()],
                    ..OperatorGrant::default()
                },
                ..IntegrationSpec::default()
            },
            "operator:bench",
        )
        .await
        .unwrap();
        // Results recorded so far by both integrations, less the Slack ones before the backlog.
        let base = host.store().result_count().unwrap();
        let done = || host.store().result_count().unwrap() - base;
        self.state
            .trigger("backlog", SyncMode::Incremental, "bench");
        // Under way: a few thousand files recorded, so discovery is past its first pages and
        // the fetch and record stages are full.
        while done() < 2_000.min(backlog as u64 / 10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = done();
        let prepared: Vec<_> = (0..paced).map(|_| self.share()).collect();
        let watcher = self.watch(prepared.iter().map(|(ts, _)| ts.clone()).collect());
        let mut sent = HashMap::new();
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        for (i, (ts, req)) in prepared.into_iter().enumerate() {
            tokio::time::sleep_until((start + interval * i as u32).into()).await;
            sent.insert(ts, Instant::now());
            Bench::post(&self.client, &self.hook, &req).await;
        }
        let stream_done = watcher.await.unwrap();
        let during = (done() - before).saturating_sub(paced as u64);
        let left = backlog as u64 - before;
        if during >= left {
            println!(
                "the backlog ({left} files left when the stream began) finished before the \
                 stream's last write-back: the stream waited behind it"
            );
        }
        (Figures::new(&sent, &stream_done), during)
    }
}

struct Figures {
    files: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn new(sent: &HashMap<String, Instant>, done: &HashMap<String, Instant>) -> Figures {
        let first = sent.values().min().copied().unwrap();
        let last = done.values().max().copied().unwrap();
        let mut latencies: Vec<Duration> = sent
            .iter()
            .map(|(ts, t0)| done[ts].saturating_duration_since(*t0))
            .collect();
        latencies.sort();
        Figures {
            files: sent.len(),
            wall: last - first,
            latencies,
        }
    }

    fn pct(&self, p: f64) -> Duration {
        let i = ((p * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    fn row(&self, load: &str) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        format!(
            "| {load} | {} | {:.0} | {} | {} | {} |",
            self.files,
            self.files as f64 / self.wall.as_secs_f64(),
            ms(self.pct(0.50)),
            ms(self.pct(0.99)),
            ms(*self.latencies.last().unwrap()),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p proofpix --test bench_daemon -- --ignored --nocapture"]
async fn bench_webhook_to_write_back() {
    let burst = env_or("PROOFPIX_BENCH_BURST", 500) as usize;
    let paced = env_or("PROOFPIX_BENCH_PACED", 200) as usize;
    let rate = env_or("PROOFPIX_BENCH_RATE", 20);
    // `RUST_LOG=proofpix_pipeline=debug` (say) shows where a slow file waited.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut bench, stop) = Bench::start(dir.path()).await;
    bench.first_sync().await;

    // Burst: share every photo first, then deliver every event at once.
    let prepared: Vec<_> = (0..burst).map(|_| bench.share()).collect();
    let watcher = bench.watch(prepared.iter().map(|(ts, _)| ts.clone()).collect());
    let sent = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let queue = Arc::new(std::sync::Mutex::new(prepared));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (queue, sent) = (queue.clone(), sent.clone());
        let (client, hook) = (bench.client.clone(), bench.hook.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some((ts, req)) = queue.lock().unwrap().pop() else {
                    break;
                };
                sent.lock().unwrap().insert(ts, Instant::now());
                Bench::post(&client, &hook, &req).await;
            }
        }));
    }
    let done = watcher.await.unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let burst_figures = Figures::new(&sent.lock().unwrap(), &done);

    // Paced: one event every 1/rate s. Sharing is not an event the daemon sees (only queued
    // files are processed), so the photos are shared up front as well.
    let prepared: Vec<_> = (0..paced).map(|_| bench.share()).collect();
    let watcher = bench.watch(prepared.iter().map(|(ts, _)| ts.clone()).collect());
    let mut sent = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for (i, (ts, req)) in prepared.into_iter().enumerate() {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        sent.insert(ts, Instant::now());
        Bench::post(&bench.client, &bench.hook, &req).await;
    }
    let done = watcher.await.unwrap();
    let paced_figures = Figures::new(&sent, &done);

    let runs = bench
        .state
        .host()
        .store()
        .recent_batches(Some(ID), 100_000)
        .unwrap()
        .len();
    let backlog = env_or("PROOFPIX_BENCH_BACKLOG", 0) as usize;
    let backlog_figures = if backlog > 0 {
        Some(
            bench
                .paced_behind_backlog(dir.path(), backlog, paced, rate)
                .await,
        )
    } else {
        None
    };

    println!("| load | files | files/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        burst_figures.row(&format!("burst, {SENDERS} senders"))
    );
    println!("{}", paced_figures.row(&format!("paced, {rate} files/s")));
    if let Some((figures, during)) = backlog_figures {
        println!(
            "{}",
            figures.row(&format!(
                "paced, {rate} files/s, while a {backlog}-file backlog drains ({during} of its files done during the stream)"
            ))
        );
    }
    println!("batches recorded, first sync included: {runs}");
    let _ = stop.send(());
}
