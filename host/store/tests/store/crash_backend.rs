//! Crash consistency with a fake disk that separates written bytes from synced ones.
//!
//! The backend records every write; `sync_data` makes the bytes written so far durable.
//! A first run of a deterministic workload counts the syncs. Then, for each sync N (every
//! one, or a sample for long workloads), the workload runs again on a fresh backend that
//! freezes its durable image at sync N; a second image adds a random half of the writes
//! made between sync N and sync N+1 (a torn write-back of dirty pages). Each image is
//! reopened as the store after a power loss at that moment and must pass every check
//! (redb integrity, audit chain, sealed values, queue and plugin-state invariants, and the
//! write-back/file-record invariants of the pipeline).
//!
//! `PROOFPIX_CRASH_SYNC_STRIDE=1` checks every sync (106 crash points, about 13 s).

use std::sync::{Arc, Mutex};

use proofpix_store::*;
use proofpix_vault::MasterKey;
use redb::StorageBackend;

use crate::common::*;
use crate::crash_kill::{Rng, check_pipeline_invariants, workload_step};

#[derive(Debug, Default)]
struct Disk {
    written: Vec<u8>,
    durable: Vec<u8>,
    syncs: u64,
    freeze_at: Option<u64>,
    frozen: Option<Vec<u8>>,
    /// Writes made after the freeze until the next sync: (offset, bytes).
    after_freeze: Vec<(u64, Vec<u8>)>,
    recording: bool,
}

#[derive(Debug, Clone, Default)]
struct FakeDisk(Arc<Mutex<Disk>>);

impl StorageBackend for FakeDisk {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().unwrap().written.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let d = self.0.lock().unwrap();
        let start = offset as usize;
        out.copy_from_slice(&d.written[start..start + out.len()]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.lock().unwrap().written.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        d.syncs += 1;
        d.durable = d.written.clone();
        if d.freeze_at == Some(d.syncs) {
            d.frozen = Some(d.durable.clone());
        } else if d.frozen.is_some() {
            // Only writes between the freeze and the next sync can have been torn.
            d.recording = false;
        }
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        let start = offset as usize;
        if d.written.len() < start + data.len() {
            d.written.resize(start + data.len(), 0);
        }
        d.written[start..start + data.len()].copy_from_slice(data);
        if d.frozen.is_some() && d.recording {
            d.after_freeze.push((offset, data.to_vec()));
        }
        Ok(())
    }
}

const STEPS: u64 = 60;

/// Runs the workload; returns the number of syncs it took to create the store.
fn run_workload(disk: &FakeDisk, key: &MasterKey, clock: &TestClock) -> u64 {
    let store = Store::open_backend(disk.clone(), key, clock.options()).unwrap();
    let created = disk.0.lock().unwrap().syncs;
    let mut rng = Rng::new(7);
    for i in 0..STEPS {
        workload_step(&store, i, &mut rng);
        clock.advance(std::time::Duration::from_secs(1));
    }
    created
}

fn reopen(image: Vec<u8>, key: &MasterKey, clock: &TestClock, what: &str) {
    let backend = redb::backends::InMemoryBackend::new();
    backend.set_len(image.len() as u64).unwrap();
    backend.write(0, &image).unwrap();
    let mut store = Store::open_backend(backend, key, clock.options())
        .unwrap_or_else(|e| panic!("{what}: reopen failed: {:?}", anyhow_chain(&e)));
    let report = store.check().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(report.is_ok(), "{what}: {report:#?}");
    check_pipeline_invariants(&store);
}

#[test]
fn a_power_loss_at_any_sync_leaves_a_consistent_store() {
    let key = MasterKey::generate();
    let counting = FakeDisk::default();
    // A crash while the file is first created leaves no store to recover (open fails with
    // an error); crash points start once the store exists.
    let created = run_workload(&counting, &key, &TestClock::new());
    let syncs = counting.0.lock().unwrap().syncs;
    assert!(syncs > STEPS, "every commit syncs ({syncs} syncs)");
    let stride = std::env::var("PROOFPIX_CRASH_SYNC_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7u64);
    let mut rng = Rng::new(syncs);
    let mut checked = 0;
    for n in (created..=syncs).step_by(stride as usize) {
        let disk = FakeDisk::default();
        {
            let mut d = disk.0.lock().unwrap();
            d.freeze_at = Some(n);
            d.recording = true;
        }
        let clock = TestClock::new();
        run_workload(&disk, &key, &clock);
        let (frozen, after) = {
            let d = disk.0.lock().unwrap();
            (d.frozen.clone().unwrap(), d.after_freeze.clone())
        };
        reopen(
            frozen.clone(),
            &key,
            &clock,
            &format!("power loss at sync {n}"),
        );
        let mut torn = frozen;
        for (offset, data) in after {
            if rng.below(2) == 0 {
                let start = offset as usize;
                if torn.len() < start + data.len() {
                    torn.resize(start + data.len(), 0);
                }
                torn[start..start + data.len()].copy_from_slice(&data);
            }
        }
        reopen(
            torn,
            &key,
            &clock,
            &format!("power loss after sync {n} with torn writes"),
        );
        checked += 1;
    }
    eprintln!(
        "fake-disk crash test: {checked} crash points of {syncs} syncs, each also with torn writes"
    );
}

fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}
