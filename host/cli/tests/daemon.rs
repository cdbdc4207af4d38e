//! The daemon as a process: killed with SIGKILL at random points during
//! batches and restarted, it loses no file and writes none back twice;
//! stopped with SIGTERM, it drains the run in progress.
//!
//! The "platform" is a small HTTP server in this test process that lists
//! files, serves generated images slowly (so kills land mid-batch), and
//! counts every write-back it receives per file. The daemon runs the
//! well-behaved test plugin, installed with `proofpix plugin install`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{api, drop_plugin, kill9, platform, start};

/// A pseudo-random sequence from a seed printed on failure, so a failing
/// kill schedule can be replayed with `PROOFPIX_KILL_SEED`.
fn seed() -> u64 {
    std::env::var("PROOFPIX_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn killed_at_random_points_the_daemon_loses_no_file_and_writes_none_back_twice() {
    kill_loop(40, Duration::from_millis(25), 1500);
}

/// A backlog of 600 files served fast, so that the kills land in the group commits of the
/// record and write-back stages (128 files a transaction) rather than in slow downloads.
#[test]
fn killed_during_group_commits_under_a_backlog_the_daemon_loses_nothing() {
    kill_loop(600, Duration::from_millis(1), 2500);
}

/// Starts the daemon on a platform of `files` files (each download taking `delay`), kills it
/// with SIGKILL at random points up to `max_wait_ms` into a sync, then lets it finish and
/// accounts for every file: analysed, written back once (or reported uncertain), never twice.
fn kill_loop(files: usize, delay: Duration, max_wait_ms: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(platform(files, delay));
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    drop_plugin(&home);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let seed0 = seed();
    let mut rng = seed0 | 1;
    let iterations: usize = std::env::var("PROOFPIX_KILL_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);

    let (mut d, token) = start(&home);
    let token = token.expect("the first start prints a bootstrap token");
    let created = api(
        &client,
        &d,
        &token,
        "POST",
        "/api/integrations",
        Some(json!({
            "id": "wb",
            "plugin": "well-behaved",
            "config": {"base_url": p.base},
            "secrets": {"token": "t"},
            "grant": {"hosts": [p.base], "allow_loopback": true},
        })),
    );
    assert_eq!(created["id"], "wb", "{created}");
    for i in 0..iterations {
        api(
            &client,
            &d,
            &token,
            "POST",
            "/api/integrations/wb/sync",
            None,
        );
        let wait = Duration::from_millis(next(&mut rng) % max_wait_ms);
        std::thread::sleep(wait);
        kill9(&mut d);
        eprintln!("iteration {i}: killed after {wait:?} (seed {seed0})");
        d = start(&home).0;
    }
    // The last start resumes queued work; one more sync lists anything the
    // interrupted discoveries did not reach. Wait for quiet.
    api(
        &client,
        &d,
        &token,
        "POST",
        "/api/integrations/wb/sync",
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = api(&client, &d, &token, "GET", "/api/integrations/wb", None);
        if v["syncing"] == false
            && v["queue_pending"] == 0
            && v["last_batch"]["finished_at"].is_string()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon did not settle: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM: a clean stop.
    let pid = d.child.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(d.child.wait().unwrap().success(), "a SIGTERM stop exits 0");

    // Account for every file, from the store and from the platform's count.
    let (store, _) = proofpix_store::open_in_dir(&home).unwrap();
    let uncertain: Vec<String> = proofpix_store::IdempotencyLog::uncertain(&store, "wb")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.remote_id)
        .collect();
    let counts = p.counts.lock().unwrap().clone();
    for i in 0..files {
        let id = format!("f{i:03}");
        let n = counts.get(&id).copied().unwrap_or(0);
        assert!(n <= 1, "{id} was written back {n} times (seed {seed0})");
        let record = store
            .file("wb", &id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} was lost (seed {seed0})"));
        assert!(
            record.last_result.is_some(),
            "{id} has no analysis result (seed {seed0})"
        );
        assert!(
            n == 1 || uncertain.contains(&id),
            "{id} was neither written back nor reported as uncertain (seed {seed0}); status {:?}",
            record.status
        );
    }
    assert!(
        store.audit_verify().unwrap().is_ok(),
        "the audit chain verifies after {iterations} kills"
    );
    eprintln!(
        "{} files written once, {} uncertain after crashes (seed {seed0})",
        counts.values().filter(|n| **n == 1).count(),
        uncertain.len()
    );
}

#[test]
fn sigterm_drains_the_run_in_progress() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = 20;
    let p = rt.block_on(platform(files, Duration::from_millis(100)));
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    drop_plugin(&home);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut d, token) = start(&home);
    let token = token.unwrap();
    api(
        &client,
        &d,
        &token,
        "POST",
        "/api/integrations",
        Some(json!({
            "id": "wb",
            "plugin": "well-behaved",
            "config": {"base_url": p.base},
            "secrets": {"token": "t"},
            "grant": {"hosts": [p.base], "allow_loopback": true},
        })),
    );
    let started = api(
        &client,
        &d,
        &token,
        "POST",
        "/api/integrations/wb/sync",
        None,
    );
    assert_eq!(started["outcome"], "started");
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(d.child.wait().unwrap().success());
    let (store, _) = proofpix_store::open_in_dir(&home).unwrap();
    let batch = store.recent_batches(Some("wb"), 1).unwrap().remove(0);
    assert!(
        batch.finished_at.is_some(),
        "the run finished before the exit"
    );
    assert_eq!(
        batch.ok, files as u64,
        "every file of the run was processed: {batch:?}"
    );
    assert_eq!(p.counts.lock().unwrap().len(), files);
}
