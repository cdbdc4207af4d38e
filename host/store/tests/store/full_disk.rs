//! A full disk under a backlog: the commit that does not fit fails loudly, and nothing a
//! commit before it acknowledged is lost.
//!
//! The backend is an in-memory disk with a capacity: a write or a resize past it fails with
//! the operating system's "no space left on device" (ENOSPC), as a real full disk does.
//! Groups of files are recorded (results, file records, outbox items, acks) until a commit
//! fails. Then the store is reopened from what was synced, on a disk with room again, as an
//! operator would after freeing space, and every group acknowledged before the failure must
//! be there in full, with the failed group's files still queued, none half-recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;
use redb::StorageBackend;

use crate::common::*;

#[derive(Debug, Default)]
struct Disk {
    written: Vec<u8>,
    durable: Vec<u8>,
    capacity: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct SmallDisk(Arc<Mutex<Disk>>);

fn no_space() -> std::io::Error {
    // ENOSPC, as the kernel reports it.
    std::io::Error::from_raw_os_error(28)
}

impl StorageBackend for SmallDisk {
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
        let mut d = self.0.lock().unwrap();
        if d.capacity.is_some_and(|c| len as usize > c) {
            return Err(no_space());
        }
        d.written.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        d.durable = d.written.clone();
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        let end = offset as usize + data.len();
        if d.capacity.is_some_and(|c| end > c) {
            return Err(no_space());
        }
        if d.written.len() < end {
            d.written.resize(end, 0);
        }
        d.written[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
}

const GROUP: usize = 16;
const LEASE: Duration = Duration::from_secs(60);

/// Enqueues and claims one group, then records it; `Err` at the first failing operation.
fn record_one_group(store: &Store, n: usize) -> Result<Vec<String>, (StoreError, Vec<String>)> {
    let ids: Vec<String> = (0..GROUP).map(|i| format!("g{n}-f{i}")).collect();
    let items: Vec<NewItem> = ids
        .iter()
        .map(|id| NewItem {
            dedup_key: format!("{id}@v1"),
            payload: id.as_bytes().to_vec(),
        })
        .collect();
    store.enqueue("src", &items).map_err(|e| (e, Vec::new()))?;
    let leases = store
        .claim("src", "w1", GROUP, LEASE)
        .map_err(|e| (e, ids.clone()))?;
    let wb = stage_queue("src", Stage::WriteBack);
    let records: Vec<Record> = leases
        .iter()
        .map(|l| {
            let id = String::from_utf8(l.payload.clone()).unwrap();
            let mut r = result("src", &id, "v1");
            // Reports of a realistic size, so the disk fills in a few dozen groups.
            r.report_json = format!("{{\"findings\":\"{}\"}}", "x".repeat(3_000));
            Record::Done {
                lease: l.clone(),
                file: file("src", &id, "v1"),
                result: Some(r),
                outbox: vec![Outbound {
                    queue: wb.clone(),
                    item: NewItem {
                        dedup_key: id.clone(),
                        payload: id.as_bytes().to_vec(),
                    },
                }],
            }
        })
        .collect();
    store
        .record_group(&records)
        .map(|_| ids.clone())
        .map_err(|e| (e, ids))
}

#[test]
fn a_full_disk_fails_the_commit_loudly_and_loses_nothing_acknowledged() {
    let clock = TestClock::new();
    let key = MasterKey::generate();
    let disk = SmallDisk::default();
    let store = Store::open_backend(disk.clone(), &key, clock.options()).unwrap();
    store
        .put_integration(&integration("src", clock.now()), "t")
        .unwrap();
    // Room for a few dozen groups beyond what the store holds now.
    {
        let mut d = disk.0.lock().unwrap();
        d.capacity = Some(d.written.len() + 1024 * 1024);
    }

    let mut acknowledged: Vec<String> = Vec::new();
    let mut failure = None;
    for n in 0..10_000 {
        match record_one_group(&store, n) {
            Ok(ids) => acknowledged.extend(ids),
            Err((e, ids)) => {
                failure = Some((e, ids));
                break;
            }
        }
    }
    let (error, in_flight) = failure.expect("the disk never filled");
    // Loud: the error says what happened, in the operating system's words.
    let message = error.to_string();
    assert!(
        message.contains("the disk holding the store is full")
            && message.contains("No space left on device"),
        "the error should say the disk is full: {message}"
    );
    assert!(
        !acknowledged.is_empty(),
        "some groups fit before the disk filled"
    );
    drop(store);

    // The operator frees space; the store reopens from what was synced.
    let durable = disk.0.lock().unwrap().durable.clone();
    let roomy = SmallDisk(Arc::new(Mutex::new(Disk {
        written: durable.clone(),
        durable,
        capacity: None,
    })));
    let mut store = Store::open_backend(roomy, &key, clock.options()).unwrap();
    let report = store.check().unwrap();
    assert!(report.is_ok(), "the store is consistent: {report:?}");
    for id in &acknowledged {
        let f = store
            .file("src", id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id}: acknowledged, then lost"));
        let rid = f.last_result.expect("its result id");
        assert!(store.result(rid).unwrap().is_some(), "{id}: result lost");
    }
    // Every acknowledged file has its write-back queued; nothing of the failed group was
    // half-recorded: its files have no record and are still in the fetch queue (claimable
    // once their leases expire), so the next run analyses them.
    let wb = stage_queue("src", Stage::WriteBack);
    assert_eq!(store.depth(&wb).unwrap().pending, acknowledged.len() as u64);
    for id in &in_flight {
        assert!(
            store.file("src", id).unwrap().is_none(),
            "{id}: half-recorded"
        );
    }
    clock.advance(LEASE + Duration::from_secs(1));
    // An item whose lease ran out is delivered alone (it may be one that crashes its
    // worker), so they come back one claim at a time.
    let mut back = Vec::new();
    loop {
        let leases = store.claim("src", "w2", GROUP, LEASE).unwrap();
        if leases.is_empty() {
            break;
        }
        back.extend(
            leases
                .iter()
                .map(|l| String::from_utf8(l.payload.clone()).unwrap()),
        );
    }
    back.sort();
    let mut expected = in_flight.clone();
    expected.sort();
    assert_eq!(back, expected, "the failed group's files are queued again");
}
