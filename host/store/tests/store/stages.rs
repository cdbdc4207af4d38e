//! The staged pipeline's operations: group commit with the outbox, write-back groups.
//!
//! The first tests are a conformance suite: each takes any [`StageStore`] (the seam the
//! pipeline's stages use) and the clock it reads, so every backend runs the same
//! behaviour. `redb` below runs them on the embedded store; a shared backend adds its own
//! module calling the same functions (`conformance!`), not a copy of the tests.

use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;

use crate::common::*;

const LEASE: Duration = Duration::from_secs(60);

fn file(id: &str, now: time::OffsetDateTime) -> FileRecord {
    FileRecord {
        integration: "src".into(),
        remote_id: id.into(),
        version: "v1".into(),
        name: format!("{id}.jpg"),
        content_hash: None,
        last_result: None,
        status: FileStatus::Analysed,
        attempts: 1,
        last_error: None,
        updated_at: now,
    }
}

fn result(id: &str) -> NewResult {
    NewResult {
        integration: "src".into(),
        remote_id: id.into(),
        file_version: "v1".into(),
        risk: "high".into(),
        score: 80,
        report_json: "{}".into(),
    }
}

fn outbound(queue: &str, key: &str) -> Outbound {
    Outbound {
        queue: queue.into(),
        item: NewItem {
            dedup_key: key.into(),
            payload: key.as_bytes().to_vec(),
        },
    }
}

fn enqueue(store: &dyn StageStore, ids: &[&str]) -> Vec<Lease> {
    let items: Vec<NewItem> = ids
        .iter()
        .map(|k| NewItem {
            dedup_key: format!("{k}@v1"),
            payload: k.as_bytes().to_vec(),
        })
        .collect();
    store.enqueue("src", &items).unwrap();
    store.claim("src", "w1", 100, LEASE).unwrap()
}

pub fn a_group_commits_results_files_acks_and_outbox_items_together(
    store: &dyn StageStore,
    clock: &TestClock,
) {
    let leases = enqueue(store, &["a", "b", "c"]);
    let wb = stage_queue("src", Stage::WriteBack);
    let alerts = stage_queue("alerts", Stage::Notify);
    let records = vec![
        Record::Done {
            lease: leases[0].clone(),
            file: file("a", clock.now()),
            result: Some(result("a")),
            outbox: vec![outbound(&wb, "a"), outbound(&alerts, "src:a")],
        },
        Record::Retry {
            lease: leases[1].clone(),
            file: file("b", clock.now()),
            retry_at: clock.now() + Duration::from_secs(30),
            error: "download: timed out".into(),
        },
        Record::Park {
            lease: leases[2].clone(),
            file: file("c", clock.now()),
            error: "not an image".into(),
        },
    ];
    let out = store.record_group(&records).unwrap();
    let Recorded::Done(Some(rid)) = out[0] else {
        panic!("{out:?}")
    };
    assert!(matches!(out[1], Recorded::Nacked(Nacked::RetryAt(_))));
    assert_eq!(out[2], Recorded::Parked);
    assert_eq!(
        store.file("src", "a").unwrap().unwrap().last_result,
        Some(rid)
    );
    assert!(store.result(rid).unwrap().is_some());
    assert_eq!(
        store.file("src", "b").unwrap().unwrap().status,
        FileStatus::Failed
    );
    assert_eq!(
        store.file("src", "c").unwrap().unwrap().status,
        FileStatus::Parked
    );
    assert_eq!(store.depth(&wb).unwrap().pending, 1);
    assert_eq!(store.depth(&alerts).unwrap().pending, 1);
    assert_eq!(
        store.depth("src").unwrap(),
        QueueDepth {
            pending: 1,
            parked: 1
        }
    );
    // The integration's work in its stage queues (the notifier's queue belongs to the
    // notifier).
    assert_eq!(
        store.stage_depth("src").unwrap(),
        QueueDepth {
            pending: 1,
            parked: 0
        }
    );
    assert_eq!(store.stage_depth("alerts").unwrap().pending, 1);
    assert_eq!(store.earliest_due(&alerts).unwrap(), Some(clock.now()));
    assert_eq!(store.earliest_due("nothing/notify").unwrap(), None);
}

pub fn a_lost_lease_costs_that_file_not_the_group(store: &dyn StageStore, clock: &TestClock) {
    let leases = enqueue(store, &["a", "b"]);
    // a's lease expires and another worker takes it.
    clock.advance(LEASE + Duration::from_secs(1));
    let taken = store.claim("src", "w2", 1, LEASE).unwrap();
    assert_eq!(taken[0].item, leases[0].item);
    let wb = stage_queue("src", Stage::WriteBack);
    let done = |l: &Lease, id: &str| Record::Done {
        lease: l.clone(),
        file: file(id, clock.now()),
        result: Some(result(id)),
        outbox: vec![outbound(&wb, id)],
    };
    let out = store
        .record_group(&[done(&leases[0], "a"), done(&leases[1], "b")])
        .unwrap();
    assert_eq!(out[0], Recorded::LeaseLost);
    assert!(matches!(out[1], Recorded::Done(Some(_))));
    // Nothing of a was written; b and its outbox item were.
    assert!(store.file("src", "a").unwrap().is_none());
    assert!(store.file("src", "b").unwrap().is_some());
    assert_eq!(store.depth(&wb).unwrap().pending, 1);
}

pub fn write_back_groups_are_at_most_once_and_mark_the_files(
    store: &dyn StageStore,
    clock: &TestClock,
) {
    let fetch = enqueue(store, &["a", "b", "c"]);
    let wb = stage_queue("src", Stage::WriteBack);
    let records: Vec<Record> = fetch
        .iter()
        .zip(["a", "b", "c"])
        .map(|(l, id)| Record::Done {
            lease: l.clone(),
            file: file(id, clock.now()),
            result: Some(result(id)),
            outbox: vec![outbound(&wb, id)],
        })
        .collect();
    store.record_group(&records).unwrap();
    let key = |id: &str| WritebackKey {
        integration: "src".into(),
        remote_id: id.into(),
        file_version: "v1".into(),
        plugin_version: "1.0.0".into(),
        policy_version: "p1".into(),
    };
    let leases = store.claim(&wb, "w1", 10, LEASE).unwrap();
    assert_eq!(leases.len(), 3);
    let begins = store
        .begin_writebacks(&[key("a"), key("b"), key("c")])
        .unwrap();
    assert!(begins.iter().all(|b| *b == Begin::Proceed), "{begins:?}");
    let ends = vec![
        WritebackDone {
            lease: leases[0].clone(),
            key: key("a"),
            end: WritebackEnd::Written,
        },
        WritebackDone {
            lease: leases[1].clone(),
            key: key("b"),
            end: WritebackEnd::Retry {
                at: clock.now() + Duration::from_secs(5),
                error: "temporary failure: 503".into(),
            },
        },
        WritebackDone {
            lease: leases[2].clone(),
            key: key("c"),
            end: WritebackEnd::Failed {
                error: "not found: the record was deleted".into(),
            },
        },
    ];
    assert_eq!(store.finish_writebacks(&ends).unwrap(), vec![true; 3]);
    assert_eq!(
        store.file("src", "a").unwrap().unwrap().status,
        FileStatus::Written
    );
    let b = store.file("src", "b").unwrap().unwrap();
    assert_eq!(b.status, FileStatus::Analysed);
    assert!(b.last_error.unwrap().contains("503"));
    assert_eq!(
        store.depth(&wb).unwrap(),
        QueueDepth {
            pending: 1,
            parked: 1
        }
    );
    // a is done: a second begin says so; b's failed intent may be tried again.
    let again = store.begin_writebacks(&[key("a"), key("b")]).unwrap();
    assert!(matches!(again[0], Begin::AlreadyDone { .. }));
    assert_eq!(again[1], Begin::Proceed);
}

/// A write-back the plugin skipped (contract 0.3) is acked and done, never repeated, and
/// its file is `Skipped` with the reason, not `Written`, also when met again as done.
pub fn a_skipped_write_back_is_done_and_marks_the_file_skipped_with_its_reason(
    store: &dyn StageStore,
    clock: &TestClock,
) {
    let fetch = enqueue(store, &["s"]);
    let wb = stage_queue("src", Stage::WriteBack);
    store
        .record_group(&[Record::Done {
            lease: fetch[0].clone(),
            file: file("s", clock.now()),
            result: Some(result("s")),
            outbox: vec![outbound(&wb, "s")],
        }])
        .unwrap();
    let key = WritebackKey {
        integration: "src".into(),
        remote_id: "s".into(),
        file_version: "v1".into(),
        plugin_version: "1.0.0".into(),
        policy_version: "p1".into(),
    };
    let leases = store.claim(&wb, "w1", 10, LEASE).unwrap();
    assert_eq!(
        store.begin_writebacks(std::slice::from_ref(&key)).unwrap(),
        vec![Begin::Proceed]
    );
    let done = |lease: &Lease, end: WritebackEnd| WritebackDone {
        lease: lease.clone(),
        key: key.clone(),
        end,
    };
    let skipped = WritebackEnd::Skipped {
        reason: "write_back is off".into(),
    };
    assert_eq!(
        store
            .finish_writebacks(&[done(&leases[0], skipped)])
            .unwrap(),
        vec![true]
    );
    let f = store.file("src", "s").unwrap().unwrap();
    assert_eq!(f.status, FileStatus::Skipped);
    assert_eq!(
        f.last_error.as_deref(),
        Some("write-back skipped: write_back is off")
    );
    assert!(f.is_done_for("v1", true), "done for its version");
    assert_eq!(store.depth(&wb).unwrap(), QueueDepth::default());

    // Met again (queued once more): done, and still skipped, not written.
    let again = store.begin_writebacks(std::slice::from_ref(&key)).unwrap();
    assert!(matches!(again[0], Begin::AlreadyDone { .. }), "{again:?}");
    store
        .enqueue(
            &wb,
            &[NewItem {
                dedup_key: "s again".into(),
                payload: b"s".to_vec(),
            }],
        )
        .unwrap();
    let leases = store.claim(&wb, "w1", 10, LEASE).unwrap();
    assert_eq!(leases.len(), 1);
    store
        .finish_writebacks(&[done(&leases[0], WritebackEnd::AlreadyDone)])
        .unwrap();
    let f = store.file("src", "s").unwrap().unwrap();
    assert_eq!(f.status, FileStatus::Skipped, "{f:?}");
    assert_eq!(
        f.last_error.as_deref(),
        Some("write-back skipped: write_back is off")
    );
}

/// Runs the conformance functions on a backend made by `$open` (a `fn() -> Backend`).
macro_rules! conformance {
    ($open:path: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let backend = $open();
                super::$name(backend.store.as_ref(), &backend.clock);
            }
        )*
    };
}

/// A store under test, the clock it reads, and what keeps it alive.
pub struct Backend {
    pub store: Box<dyn StageStore>,
    pub clock: TestClock,
    _dir: tempfile::TempDir,
}

/// The embedded store (redb) in a temporary directory.
fn redb_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    Backend {
        store: Box::new(store),
        clock,
        _dir: dir,
    }
}

mod redb {
    conformance!(super::redb_backend:
        a_group_commits_results_files_acks_and_outbox_items_together,
        a_lost_lease_costs_that_file_not_the_group,
        write_back_groups_are_at_most_once_and_mark_the_files,
        a_skipped_write_back_is_done_and_marks_the_file_skipped_with_its_reason,
    );
}

#[test]
fn deleting_an_integration_deletes_its_stage_queues() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    store
        .put_integration(&integration("src", clock.now()), "t")
        .unwrap();
    let leases = enqueue(&store, &["a"]);
    let wb = stage_queue("src", Stage::WriteBack);
    let rem = stage_queue("src", Stage::Remediate);
    store
        .record_group(&[Record::Done {
            lease: leases[0].clone(),
            file: file("a", clock.now()),
            result: Some(result("a")),
            outbox: vec![outbound(&wb, "a"), outbound(&rem, "a")],
        }])
        .unwrap();
    let counts = store.delete_integration("src", "t").unwrap();
    assert_eq!(counts.queue_items, 2);
    assert_eq!(store.depth(&wb).unwrap(), QueueDepth::default());
    assert_eq!(store.depth(&rem).unwrap(), QueueDepth::default());
}
