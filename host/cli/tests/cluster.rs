//! Cluster mode: three `proofpix serve` processes on loopback share one PostgreSQL database
//! (a schema of this test's own). Three integrations, each on a platform of its own that
//! counts every write-back per file, are synced while one node is killed with SIGKILL and
//! later restarted. Afterwards every file is analysed, none is written back twice (one left
//! uncertain by the kill is reported as such, never repeated), no integration was listed by
//! two runs at once (the other nodes' queue-only runs help drain its backlog, listing
//! nothing), every node's API answers the same, and the audit chain verifies.
//!
//! The database comes from `PROOFPIX_TEST_DATABASE_URL`, else a server on 127.0.0.1:5432,
//! else a private server started in a temporary directory (`proofpix-test-postgres`).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proofpix_store::{ControlStore, IdempotencyLog, StageStore};
use proofpix_vault::MasterKey;
use serde_json::{Value, json};
use support::{Daemon, api, drop_plugin_with, kill9, platform, start_with};

const INTEGRATIONS: [&str; 3] = ["alpha", "bravo", "charlie"];
const FILES: usize = 120;

/// A cluster on loopback: a fresh schema, one master key, a platform per integration, `n`
/// nodes started (each with the test plugin installed) and the integrations created on the
/// first.
struct Cluster {
    // Dropped first (fields drop in order): the nodes are killed before their schema is.
    nodes: Vec<Daemon>,
    schema: proofpix_test_postgres::SchemaGuard,
    key: MasterKey,
    env: Vec<(&'static str, String)>,
    platforms: BTreeMap<&'static str, support::Platform>,
    homes: Vec<std::path::PathBuf>,
    tmp: std::path::PathBuf,
    token: String,
    client: reqwest::blocking::Client,
    _rt: tokio::runtime::Runtime,
}

impl Cluster {
    fn start(
        n: usize,
        ids: &[&'static str],
        files: usize,
        delay: Duration,
        extra: &[(&'static str, String)],
    ) -> Self {
        Self::start_in(
            proofpix_test_postgres::SchemaGuard::fresh(),
            n,
            ids,
            files,
            delay,
            extra,
        )
    }

    /// As [`Cluster::start`], in `schema` (of a database the test chose).
    fn start_in(
        schema: proofpix_test_postgres::SchemaGuard,
        n: usize,
        ids: &[&'static str],
        files: usize,
        delay: Duration,
        extra: &[(&'static str, String)],
    ) -> Self {
        let key = MasterKey::generate();
        let mut env: Vec<(&'static str, String)> = vec![
            ("PROOFPIX_DATABASE_URL", schema.url.clone()),
            ("PROOFPIX_DATABASE_SCHEMA", schema.schema.clone()),
            ("PROOFPIX_MASTER_KEY", key.to_hex().to_string()),
        ];
        env.extend_from_slice(extra);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let platforms: BTreeMap<&str, support::Platform> = ids
            .iter()
            .map(|id| (*id, rt.block_on(platform(files, delay))))
            .collect();
        // Kept when a test fails, with each node's log in node<N>/serve.log.
        let tmp = tempfile::Builder::new()
            .prefix("proofpix-cluster-")
            .tempdir()
            .unwrap()
            .keep();
        eprintln!("nodes' data and logs under {}", tmp.display());
        let homes: Vec<_> = (0..n).map(|i| tmp.join(format!("node{i}"))).collect();
        // Installed once, through the first node's data directory: the file goes into the
        // database, and the other nodes load it from there.
        drop_plugin_with(&homes[0], &env);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (first, token) = start_with(&homes[0], &env);
        let token = token.expect("the first node of a new cluster prints a bootstrap token");
        let mut nodes: Vec<Daemon> = vec![first];
        for home in &homes[1..] {
            let (node, again) = start_with(home, &env);
            assert_eq!(again, None, "the cluster has an admin token already");
            nodes.push(node);
        }
        let cluster = Cluster {
            schema,
            key,
            env,
            platforms,
            homes,
            tmp,
            nodes,
            token,
            client,
            _rt: rt,
        };
        // Created on one node.
        for id in ids.iter().copied() {
            let base = &cluster.platforms[id].base;
            let created = cluster.api(
                0,
                "POST",
                "/api/integrations",
                Some(json!({
                    "id": id,
                    "plugin": "well-behaved",
                    "config": {"base_url": base},
                    "secrets": {"token": "t"},
                    "grant": {"hosts": [base], "allow_loopback": true},
                })),
            );
            assert_eq!(created["id"], id, "{created}");
        }
        cluster
    }

    fn api(&self, node: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        api(
            &self.client,
            &self.nodes[node],
            &self.token,
            method,
            path,
            body,
        )
    }

    fn sync(&self, node: usize, id: &str) {
        self.api(node, "POST", &format!("/api/integrations/{id}/sync"), None);
    }
}

#[test]
fn three_nodes_share_one_database_and_lose_nothing_when_one_is_killed() {
    let mut c = Cluster::start(
        3,
        &INTEGRATIONS,
        FILES,
        // Downloads slow enough (about 2.4 s a sync) for the kill to land mid-run.
        Duration::from_millis(40),
        &[
            // A killed node's claims pass to the others after 10 s, not the default 5 minutes.
            ("PROOFPIX_LEASE_SECS", "10".into()),
            ("PROOFPIX_LOG", "info".into()),
        ],
    );
    // Created on one node, seen by all.
    for node in 0..3 {
        let listed = c.api(node, "GET", "/api/integrations", None);
        assert_eq!(ids(&listed), INTEGRATIONS, "node {node}: {listed}");
    }

    // Node 1 starts two syncs, node 0 the third; then every node asks for every sync, and
    // each is skipped where another run holds the integration's lease.
    c.sync(1, "alpha");
    c.sync(1, "bravo");
    c.sync(0, "charlie");
    std::thread::sleep(Duration::from_millis(200));
    for node in 0..3 {
        for id in INTEGRATIONS {
            c.sync(node, id);
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    let running = c.api(1, "GET", "/api/integrations/alpha", None);
    assert_eq!(running["syncing"], true, "node 1 is mid-run: {running}");
    kill9(&mut c.nodes[1]);
    std::thread::sleep(Duration::from_secs(2));
    c.nodes[1] = start_with(&c.homes[1], &c.env).0;

    // Wait for quiet, asking again now and then: a lease the killed node held passes on
    // when it expires.
    settle(&c, &INTEGRATIONS, Duration::from_secs(240));

    // Every node's API answers the same. The nodes keep working (a notifier's deliveries are
    // retried and touch its record), and the three reads are one after another: the
    // comparison is retried until a moment when nothing moved between them.
    let mut views: Vec<Value> = Vec::new();
    for _ in 0..40 {
        views = (0..3)
            .map(|n| shared_view(&c.api(n, "GET", "/api/integrations", None)))
            .collect();
        if views.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:#?}");

    // Account for every file, from the database and from each platform's count.
    account_for_every_file(&c, &INTEGRATIONS);
    c.nodes.clear();
    let _ = std::fs::remove_dir_all(&c.tmp);
}

/// PostgreSQL crashes mid-run (`pg_ctl stop -m immediate` on a private server: every
/// connection cut) and comes back 3 s later. The nodes stay up, reconnect on their own, and
/// the backlog finishes: every file analysed, none written back twice (one in flight at the
/// crash is left uncertain, never repeated), no integration listed by two runs at once, and
/// the audit chain verifies.
#[test]
fn the_nodes_ride_out_a_postgresql_crash_and_lose_nothing() {
    let server = proofpix_test_postgres::PrivateServer::start()
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL's server programs: {e}"));
    let ids = &INTEGRATIONS[..2];
    let mut c = Cluster::start_in(
        proofpix_test_postgres::SchemaGuard::fresh_in(&server.url),
        2,
        ids,
        FILES,
        Duration::from_millis(40),
        &[
            ("PROOFPIX_LEASE_SECS", "10".into()),
            ("PROOFPIX_LOG", "info".into()),
        ],
    );
    c.sync(0, ids[0]);
    c.sync(1, ids[1]);
    std::thread::sleep(Duration::from_millis(800));
    let running = c.api(0, "GET", &format!("/api/integrations/{}", ids[0]), None);
    assert_eq!(running["syncing"], true, "mid-run: {running}");
    server.crash().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    for (n, node) in c.nodes.iter_mut().enumerate() {
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "node {n} exited when the database went away"
        );
    }
    server.start_again().unwrap();

    settle(&c, ids, Duration::from_secs(240));
    for (n, node) in c.nodes.iter_mut().enumerate() {
        assert!(node.child.try_wait().unwrap().is_none(), "node {n} exited");
    }
    account_for_every_file(&c, ids);
    c.nodes.clear();
    let _ = std::fs::remove_dir_all(&c.tmp);
}

/// A dashboard on one node sees the runs of another, live: node 1's `/api/events` stream
/// carries the start, files and end of a sync node 0 runs (relayed through the database's
/// NOTIFY); a plugin installed through node 0 is loaded by node 1 from the database; and the
/// scheduler's plan is one for the whole cluster.
#[test]
fn a_dashboard_on_any_node_sees_every_nodes_runs_live() {
    let mut c = Cluster::start(
        2,
        &INTEGRATIONS[..1],
        20,
        Duration::ZERO,
        &[("PROOFPIX_LOG", "info".into())],
    );
    let id = INTEGRATIONS[0];
    let events = {
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let response = reqwest::blocking::Client::builder()
            .build()
            .unwrap()
            .get(format!("{}/api/events", c.nodes[1].base))
            .bearer_auth(&c.token)
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        rx
    };
    // The stream is open once the server answered; give the listener a moment to be sure.
    std::thread::sleep(Duration::from_millis(500));
    c.sync(0, id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut started, mut files, mut finished) = (false, 0, false);
    while !(started && files > 0 && finished) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(e) = events.recv_timeout(left) else {
            panic!("node 1 heard started={started} files={files} finished={finished}");
        };
        match e["type"].as_str() {
            Some("sync-started") if e["integration"] == id && e["reason"] == "manual" => {
                started = true;
            }
            Some("file") if e["integration"] == id => files += 1,
            Some("sync-finished") if e["integration"] == id && e["outcome"] == "ok" => {
                finished = started;
            }
            _ => {}
        }
    }
    // A plugin installed through one node (the CLI, beside the running daemons) is loaded
    // by the other from the database, told by a signal.
    let plugin_ids = |n: usize| -> Vec<String> {
        c.api(n, "GET", "/api/plugins", None)
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(!plugin_ids(1).contains(&"contract-v03".to_string()));
    support::install_plugin_with(
        &c.homes[0],
        &c.env,
        proofpix_plugin_artifacts::TEST_CONTRACT_V0_3,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !plugin_ids(1).contains(&"contract-v03".to_string()) {
        assert!(
            Instant::now() < deadline,
            "node 1 never loaded the plugin installed through node 0: {:?}",
            plugin_ids(1)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // One plan: both nodes name the same next run.
    let next =
        |n: usize| c.api(n, "GET", &format!("/api/integrations/{id}"), None)["next_sync"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while next(0) != next(1) || next(0).is_null() {
        assert!(
            Instant::now() < deadline,
            "the nodes plan differently: {} / {}",
            next(0),
            next(1)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    c.nodes.clear();
    let _ = std::fs::remove_dir_all(&c.tmp);
}

/// Waits until every node reports `ids` idle with nothing queued and every file recorded,
/// asking for syncs again now and then (a lease a dead run held passes on when it expires).
fn settle(c: &Cluster, ids: &[&str], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last_ask = Instant::now();
    let n = c.nodes.len();
    loop {
        let settled = ids.iter().all(|id| {
            (0..n).all(|node| {
                let v = c.api(node, "GET", &format!("/api/integrations/{id}"), None);
                v["syncing"] == false
                    && v["queue_pending"] == 0
                    && v["last_batch"]["finished_at"].is_string()
                    && v["last_batch"]["total"].as_u64().is_some()
            })
        }) && all_recorded_in(&c.schema, &c.key, ids);
        if settled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not settle in {limit:?}"
        );
        if last_ask.elapsed() > Duration::from_secs(3) {
            for (i, id) in ids.iter().enumerate() {
                c.sync(i % n, id);
            }
            last_ask = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every file of `ids` has a result, was written back at most once (and once unless left
/// uncertain), no integration was listed by two runs at once, and the audit chain verifies.
fn account_for_every_file(c: &Cluster, ids: &[&str]) {
    let store = open(&c.schema, &c.key);
    for id in ids {
        let uncertain: Vec<String> = IdempotencyLog::uncertain(&store, id)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.remote_id)
            .collect();
        let counts = c.platforms[*id].counts.lock().unwrap().clone();
        for i in 0..FILES {
            let file = format!("f{i:03}");
            let n = counts.get(&file).copied().unwrap_or(0);
            assert!(n <= 1, "{id}/{file} was written back {n} times");
            let record = StageStore::file(&store, id, &file)
                .unwrap()
                .unwrap_or_else(|| panic!("{id}/{file} was lost"));
            assert!(record.last_result.is_some(), "{id}/{file} has no result");
            assert!(
                n == 1 || uncertain.contains(&file),
                "{id}/{file} was neither written back nor reported uncertain; {:?}",
                record.status
            );
        }
        eprintln!(
            "{id}: {} files written back once, {} left uncertain",
            counts.values().filter(|n| **n == 1).count(),
            uncertain.len()
        );
        assert_eq!(
            c.platforms[*id]
                .max_listings
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{id} was listed by two runs at once"
        );
    }
    assert!(
        store.audit_verify().unwrap().is_ok(),
        "one audit chain across the nodes"
    );
}

/// The integrations' ids in a `GET /api/integrations` answer.
fn ids(listed: &Value) -> Vec<String> {
    listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

/// What every node must agree on in `GET /api/integrations`: each integration's stored
/// state, without what is about this node's own process.
fn shared_view(listed: &Value) -> Value {
    let mut items: Vec<Value> = listed.as_array().cloned().unwrap_or_default();
    for i in &mut items {
        if let Some(o) = i.as_object_mut() {
            // This node's run manager and scheduler.
            o.remove("syncing");
            o.remove("next_sync");
        }
    }
    Value::Array(items)
}

fn open(
    schema: &proofpix_test_postgres::SchemaGuard,
    key: &MasterKey,
) -> proofpix_store_pg::PgStore {
    proofpix_store_pg::PgStore::open(
        &schema.url,
        key,
        proofpix_store_pg::PgOptions {
            schema: Some(schema.schema.clone()),
            max_connections: 2,
            ..proofpix_store_pg::PgOptions::default()
        },
    )
    .expect("the test opens the cluster's database")
}

/// Whether every file of `ids` has a result in the database.
fn all_recorded_in(
    schema: &proofpix_test_postgres::SchemaGuard,
    key: &MasterKey,
    ids: &[&str],
) -> bool {
    let store = open(schema, key);
    ids.iter().all(|id| {
        (0..FILES).all(|i| {
            StageStore::file(&store, id, &format!("f{i:03}"))
                .ok()
                .flatten()
                .is_some_and(|f| f.last_result.is_some())
        })
    })
}

/// Throughput of 1, 2 or 3 nodes (`CLUSTER_NODES`) on one database: three integrations of
/// `CLUSTER_FILES` files each (default 300), every download taking `CLUSTER_DELAY_MS`
/// (default 50) as against a real SaaS API, `CLUSTER_CONCURRENCY` fetches at once per run
/// (default 16, the daemon's); `CLUSTER_INTEGRATIONS=1` puts the whole backlog in one
/// integration, which the other nodes join with queue-only runs. Prints files/s from the first sync request to
/// the last file written back, and the database's bytes per file. A measurement, not a
/// check: `cargo test --release -p proofpix --test cluster -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run it by name"]
fn cluster_throughput() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n_nodes, files, delay) = (
        var("CLUSTER_NODES", 3) as usize,
        var("CLUSTER_FILES", 300) as usize,
        var("CLUSTER_DELAY_MS", 50),
    );
    let concurrency = var("CLUSTER_CONCURRENCY", 16);
    let ids = &INTEGRATIONS[..var("CLUSTER_INTEGRATIONS", 3).clamp(1, 3) as usize];
    let c = Cluster::start(
        n_nodes,
        ids,
        files,
        Duration::from_millis(delay),
        &[("PROOFPIX_CONCURRENCY", concurrency.to_string())],
    );
    // Transactions committed in the database (every client's: run it on a quiet server).
    let commits = || {
        proofpix_test_postgres::admin_value(
            &c.schema.url,
            "SELECT xact_commit::text FROM pg_stat_database WHERE datname = current_database()",
        )
        .unwrap()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
    };
    let commits_before = commits();
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        // Each integration asked of a different node, as schedules spread them.
        c.sync(i % n_nodes, id);
    }
    let total = files * ids.len();
    loop {
        let written: usize = c
            .platforms
            .values()
            .map(|p| p.counts.lock().unwrap().len())
            .sum();
        if written >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{written}/{total}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let secs = started.elapsed().as_secs_f64();
    let committed = commits() - commits_before;
    let bytes = proofpix_test_postgres::admin_value(
        &c.schema.url,
        &format!(
            "SELECT sum(pg_total_relation_size(c.oid))::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{}' AND c.relkind = 'r'",
            c.schema.schema
        ),
    )
    .unwrap()
    .and_then(|v| v.parse::<f64>().ok())
    .unwrap_or(0.0);
    eprintln!(
        "cluster: {n_nodes} node(s), {} integration(s), {total} files, {delay} ms per download, {concurrency} fetches per run: {secs:.1} s, {:.0} files/s; {:.2} database transactions and {:.0} bytes stored per file (tables with indexes and TOAST)",
        ids.len(),
        total as f64 / secs,
        committed / total as f64,
        bytes / total as f64
    );
    let _ = std::fs::remove_dir_all(&c.tmp);
}
