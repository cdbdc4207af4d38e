//! A writer process killed with SIGKILL at random points leaves a consistent store.
//!
//! The test re-executes its own binary with `PROOFPIX_CRASH_CHILD_DIR` set, which turns
//! [`crash_writer_child`] into a writer that loops over every kind of write the daemon does
//! (queue pages with cursors, claims, completions with results, failures, write-back intents
//! and completions, plugin state with a cap, secrets, tokens, batches, audit entries, audit
//! compaction). The parent kills it after a random delay, reopens the store and checks:
//! redb's integrity check, the audit chain, every record decodes and every sealed value
//! opens, the queue counters and plugin-state totals match their rows, every file marked
//! written has a completed write-back, and every result a file points at exists.
//!
//! `PROOFPIX_CRASH_ITERATIONS` (default 50) sets the number of kills; set it to thousands
//! for a soak. `PROOFPIX_CRASH_SEED` replays a run (the seed is printed).

use std::process::{Command, Stdio};
use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::{MasterKey, Secret};

use crate::common::*;

const CHILD_DIR_ENV: &str = "PROOFPIX_CRASH_CHILD_DIR";
const CHILD_KEY_ENV: &str = "PROOFPIX_CRASH_CHILD_KEY";
pub const PLUGIN_VERSION: &str = "0.1.0";
pub const POLICY_VERSION: &str = "2026-01";

/// xorshift64*: deterministic from a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One step of the heavy-write workload; shared with the fake-backend crash test.
pub fn workload_step(store: &Store, i: u64, rng: &mut Rng) {
    let integration = ["sf-prod", "sp-main", "slack"][(i % 3) as usize];
    if store.integration(integration).unwrap().is_none() {
        store
            .put_integration(
                &crate::common::integration(integration, store.now()),
                "operator:ada",
            )
            .unwrap();
    }
    match i % 9 {
        0 | 1 => {
            let items: Vec<NewItem> = (0..5)
                .map(|j| NewItem {
                    dedup_key: format!("f{}@v{}", rng.below(200), j % 2),
                    payload: vec![0; 64],
                })
                .collect();
            store
                .enqueue_page(integration, &items, Some(&format!("cursor-{i}")))
                .unwrap();
        }
        2 | 3 => {
            for lease in store
                .claim(integration, "worker", 3, Duration::from_secs(3600))
                .unwrap()
            {
                let (remote_id, version) = lease.dedup_key.split_once('@').unwrap();
                let mut f = file(integration, remote_id, version);
                if rng.below(4) == 0 {
                    store
                        .fail_item(&lease, &f, store.now(), "simulated failure")
                        .unwrap();
                } else {
                    f.status = FileStatus::Analysed;
                    store
                        .complete_item(&lease, &f, Some(result(integration, remote_id, version)))
                        .unwrap();
                }
            }
        }
        4 => {
            // Write back an analysed file: intent, (remote call), completion with the file.
            if let Some(mut f) = store
                .files(integration, None, 50)
                .unwrap()
                .into_iter()
                .find(|f| f.status == FileStatus::Analysed)
            {
                let key = WritebackKey {
                    integration: integration.into(),
                    remote_id: f.remote_id.clone(),
                    file_version: f.version.clone(),
                    plugin_version: PLUGIN_VERSION.into(),
                    policy_version: POLICY_VERSION.into(),
                };
                if store.begin_writeback(&key).unwrap() == Begin::Proceed {
                    f.status = FileStatus::Written;
                    store
                        .complete_writeback_with_file(&key, &Completion::Written, &f)
                        .unwrap();
                }
            }
        }
        5 => {
            let k = format!("k{}", rng.below(20));
            let _ = store.kv_set(
                integration,
                &k,
                &vec![7; rng.below(300) as usize],
                Some(4096),
            );
            if rng.below(3) == 0 {
                store
                    .kv_delete(integration, &format!("k{}", rng.below(20)))
                    .unwrap();
            }
        }
        6 => {
            store
                .set_secret(
                    integration,
                    "client_secret",
                    &Secret::new(format!("{CLIENT_SECRET}-{i}")),
                    "operator:ada",
                )
                .unwrap();
            store.set_tokens(integration, &tokens(), "oauth2").unwrap();
        }
        7 => {
            let ids = store
                .add_results(
                    (0..20)
                        .map(|j| result(integration, &format!("bulk{j}"), "v1"))
                        .collect(),
                )
                .unwrap();
            let mut b = store.start_batch(integration).unwrap();
            b.total = 20;
            b.ok = 20;
            b.result_ids = ids;
            store.put_batch(&b).unwrap();
        }
        _ => {
            store
                .audit(&AuditEvent::new("daemon", "integration.sync", integration))
                .unwrap();
            if rng.below(4) == 0 {
                let retention = Retention {
                    audit: Some(Duration::from_secs(1)),
                    ..Retention::default()
                };
                store.compact(&retention, store.now(), "daemon").unwrap();
            }
        }
    }
}

/// The invariants that span tables, beyond `Store::check`.
pub fn check_pipeline_invariants(store: &Store) {
    for i in store.integrations().unwrap() {
        for f in store.files(&i.id, None, usize::MAX).unwrap() {
            if f.status == FileStatus::Written {
                let key = WritebackKey {
                    integration: i.id.clone(),
                    remote_id: f.remote_id.clone(),
                    file_version: f.version.clone(),
                    plugin_version: PLUGIN_VERSION.into(),
                    policy_version: POLICY_VERSION.into(),
                };
                assert!(
                    store.is_done(&key).unwrap(),
                    "file {} is written without a completed write-back",
                    f.remote_id
                );
            }
            if let Some(id) = f.last_result {
                assert!(
                    store.result(id).unwrap().is_some(),
                    "file {} points at missing result {id}",
                    f.remote_id
                );
            }
        }
        // Intents without completion are reported as uncertain, never as done.
        for (key, _) in store.uncertain(&i.id).unwrap() {
            assert!(matches!(
                store.begin_writeback(&key).unwrap(),
                Begin::Uncertain { .. }
            ));
        }
    }
}

/// The child side: only active when re-executed by the parent test.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let key = MasterKey::parse(&std::env::var(CHILD_KEY_ENV).unwrap()).unwrap();
    let store = Store::open(std::path::Path::new(&dir), &key).unwrap();
    let mut rng = Rng::new(std::process::id() as u64);
    println!("ready");
    for i in 0.. {
        workload_step(&store, i, &mut rng);
    }
}

#[test]
fn a_writer_killed_at_random_points_leaves_a_consistent_store() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let iterations: u64 = std::env::var("PROOFPIX_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("PROOFPIX_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: {iterations} iterations, PROOFPIX_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let exe = std::env::current_exe().unwrap();
    let mut killed_mid_run = 0;
    for iteration in 0..iterations {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_kill::crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_KEY_ENV, key.to_hex().as_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let mut store = Store::open(dir.path(), &key)
            .unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
        let report = store
            .check()
            .unwrap_or_else(|e| panic!("iteration {iteration}: {e}"));
        assert!(
            report.is_ok(),
            "iteration {iteration} (seed {seed}): {report:#?}"
        );
        check_pipeline_invariants(&store);
    }
    let store = Store::open(dir.path(), &key).unwrap();
    let report = store.audit_verify().unwrap();
    eprintln!(
        "crash test: {killed_mid_run}/{iterations} kills landed mid-run; final audit chain {} entries from seq {:?}, {} checkpoints; {} results",
        report.entries,
        report.first_seq,
        report.checkpoints,
        store.result_count().unwrap()
    );
    assert!(
        killed_mid_run > iterations / 2,
        "most kills must land while the writer runs"
    );
}
