//! The work queue and the write-back idempotency log.

use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;

use crate::common::*;

const LEASE: Duration = Duration::from_secs(60);

fn items(keys: &[&str]) -> Vec<NewItem> {
    keys.iter()
        .map(|k| NewItem {
            dedup_key: (*k).into(),
            payload: k.as_bytes().to_vec(),
        })
        .collect()
}

#[test]
fn enqueue_skips_duplicates_until_the_item_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let first = store.enqueue("i", &items(&["a@1", "b@1"])).unwrap();
    assert!(matches!(first[..], [Enqueued::New(_), Enqueued::New(_)]));
    let again = store.enqueue("i", &items(&["a@1", "c@1"])).unwrap();
    assert_eq!(
        again[0],
        Enqueued::Duplicate(match first[0] {
            Enqueued::New(id) => id,
            _ => 0,
        })
    );
    assert!(matches!(again[1], Enqueued::New(_)));
    assert_eq!(
        store.depth("i").unwrap(),
        QueueDepth {
            pending: 3,
            parked: 0
        }
    );
    let leases = store.claim("i", "w1", 10, LEASE).unwrap();
    assert_eq!(leases.len(), 3);
    store.ack(&leases[0]).unwrap();
    assert!(matches!(
        store.enqueue("i", &items(&["a@1"])).unwrap()[0],
        Enqueued::New(_)
    ));
}

#[test]
fn a_claimed_item_is_not_claimed_again_until_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    store.enqueue("i", &items(&["a@1"])).unwrap();
    let l1 = store.claim("i", "w1", 10, LEASE).unwrap();
    assert_eq!(l1.len(), 1);
    assert!(store.claim("i", "w2", 10, LEASE).unwrap().is_empty());
    clock.advance(LEASE + Duration::from_secs(1));
    let l2 = store.claim("i", "w2", 10, LEASE).unwrap();
    assert_eq!((l2[0].item, l2[0].attempt), (l1[0].item, 2));
    // The first worker's late ack is refused: the item now belongs to w2.
    assert!(matches!(
        store.ack(&l1[0]).unwrap_err(),
        StoreError::LeaseLost { .. }
    ));
    store.ack(&l2[0]).unwrap();
    assert_eq!(store.depth("i").unwrap(), QueueDepth::default());
}

#[test]
fn nacked_items_wait_for_their_retry_time_and_park_after_the_last_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    store.enqueue("i", &items(&["a@1"])).unwrap();
    for attempt in 1..=5u32 {
        let lease = store.claim("i", "w", 1, LEASE).unwrap().pop().unwrap();
        assert_eq!(lease.attempt, attempt);
        let retry_at = clock.now() + Duration::from_secs(30);
        let outcome = store
            .nack(&lease, retry_at, "HTTP 503 from the remote")
            .unwrap();
        if attempt < 5 {
            assert_eq!(outcome, Nacked::RetryAt(retry_at));
            assert!(
                store.claim("i", "w", 1, LEASE).unwrap().is_empty(),
                "not due yet"
            );
            clock.advance(Duration::from_secs(31));
        } else {
            assert_eq!(outcome, Nacked::Parked);
        }
    }
    assert_eq!(
        store.depth("i").unwrap(),
        QueueDepth {
            pending: 0,
            parked: 1
        }
    );
    let parked = store.parked("i", 10).unwrap();
    assert_eq!(
        parked[0].last_error.as_deref(),
        Some("HTTP 503 from the remote")
    );
    assert_eq!(parked[0].attempts, 5);
    // Only the integration the item belongs to can requeue it.
    assert!(!store.requeue("other", parked[0].item).unwrap());
    assert_eq!(store.depth("i").unwrap().parked, 1);
    assert!(store.requeue("i", parked[0].item).unwrap());
    assert_eq!(
        store.depth("i").unwrap(),
        QueueDepth {
            pending: 1,
            parked: 0
        }
    );
    assert_eq!(store.claim("i", "w", 1, LEASE).unwrap()[0].attempt, 1);
}

#[test]
fn an_item_whose_worker_keeps_dying_is_parked_instead_of_looping() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    store.enqueue("i", &items(&["poison@1"])).unwrap();
    for _ in 0..5 {
        let leases = store.claim("i", "w", 1, LEASE).unwrap();
        assert_eq!(leases[0].dedup_key, "poison@1");
        clock.advance(LEASE + Duration::from_secs(1)); // the worker died holding it
    }
    store.enqueue("i", &items(&["fine@1"])).unwrap();
    let leases = store.claim("i", "w", 10, LEASE).unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].dedup_key, "fine@1");
    let parked = store.parked("i", 10).unwrap();
    assert_eq!(parked[0].dedup_key, "poison@1");
    assert!(
        parked[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("lease expired")
    );
}

#[test]
fn a_page_and_its_cursor_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    store
        .enqueue_page("i", &items(&["a@1", "b@1"]), Some("page-2"))
        .unwrap();
    assert_eq!(store.cursor("i").unwrap().as_deref(), Some("page-2"));
    assert_eq!(store.depth("i").unwrap().pending, 2);
}

#[test]
fn completing_an_item_stores_result_and_file_record_and_acks_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    store.enqueue("i", &items(&["f1@v1"])).unwrap();
    let lease = store.claim("i", "w", 1, LEASE).unwrap().pop().unwrap();
    let mut f = file("i", "f1", "v1");
    f.status = FileStatus::Analysed;
    let id = store
        .complete_item(&lease, &f, Some(result("i", "f1", "v1")))
        .unwrap()
        .unwrap();
    let stored = store.file("i", "f1").unwrap().unwrap();
    assert_eq!(stored.last_result, Some(id));
    assert_eq!(store.result(id).unwrap().unwrap().remote_id, "f1");
    assert_eq!(store.depth("i").unwrap(), QueueDepth::default());
    // A second completion with the same lease writes nothing.
    let before = store.result_count().unwrap();
    assert!(matches!(
        store
            .complete_item(&lease, &f, Some(result("i", "f1", "v1")))
            .unwrap_err(),
        StoreError::LeaseLost { .. }
    ));
    assert_eq!(store.result_count().unwrap(), before);
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn failing_an_item_records_the_error_on_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    store.enqueue("i", &items(&["f1@v1"])).unwrap();
    let lease = store.claim("i", "w", 1, LEASE).unwrap().pop().unwrap();
    let out = store
        .fail_item(
            &lease,
            &file("i", "f1", "v1"),
            clock.now(),
            "truncated JPEG",
        )
        .unwrap();
    assert!(matches!(out, Nacked::RetryAt(_)));
    let f = store.file("i", "f1").unwrap().unwrap();
    assert_eq!(
        (f.status, f.attempts, f.last_error.as_deref()),
        (FileStatus::Failed, 1, Some("truncated JPEG"))
    );
}

fn wb_key() -> WritebackKey {
    WritebackKey {
        integration: "sf-prod".into(),
        remote_id: "068A".into(),
        file_version: "v3".into(),
        plugin_version: "0.1.0".into(),
        policy_version: "2026-01".into(),
    }
}

#[test]
fn a_write_back_happens_at_most_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let key = wb_key();
    assert_eq!(store.begin_writeback(&key).unwrap(), Begin::Proceed);
    assert!(matches!(
        store.begin_writeback(&key).unwrap(),
        Begin::InFlight { .. }
    ));
    store
        .complete_writeback(&key, &Completion::Written)
        .unwrap();
    assert!(store.is_done(&key).unwrap());
    assert!(matches!(
        store.begin_writeback(&key).unwrap(),
        Begin::AlreadyDone { .. }
    ));
    // Any other version of the key is separate work.
    let mut other = key.clone();
    other.policy_version = "2026-02".into();
    assert_eq!(store.begin_writeback(&other).unwrap(), Begin::Proceed);
}

#[test]
fn a_failed_write_back_may_be_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let key = wb_key();
    assert_eq!(store.begin_writeback(&key).unwrap(), Begin::Proceed);
    store
        .complete_writeback(
            &key,
            &Completion::Failed {
                error: "HTTP 400 INVALID_FIELD".into(),
            },
        )
        .unwrap();
    assert!(!store.is_done(&key).unwrap());
    assert_eq!(store.begin_writeback(&key).unwrap(), Begin::Proceed);
}

/// An operator's "write everything again": finished write-backs of that integration (and of
/// no other, even one whose id starts the same) are forgotten, so they proceed again; an
/// intent still guards its write.
#[test]
fn forgetting_write_backs_lets_finished_ones_go_again_but_keeps_intents() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let done = wb_key();
    let mut in_flight = wb_key();
    in_flight.remote_id = "068B".into();
    let mut neighbour = wb_key();
    neighbour.integration = "sf-prod2".into();
    for key in [&done, &neighbour] {
        assert_eq!(store.begin_writeback(key).unwrap(), Begin::Proceed);
        store.complete_writeback(key, &Completion::Written).unwrap();
    }
    assert_eq!(store.begin_writeback(&in_flight).unwrap(), Begin::Proceed);

    assert_eq!(store.forget_writebacks("sf-prod").unwrap(), 1);
    assert_eq!(store.begin_writeback(&done).unwrap(), Begin::Proceed);
    assert!(matches!(
        store.begin_writeback(&in_flight).unwrap(),
        Begin::InFlight { .. }
    ));
    assert!(matches!(
        store.begin_writeback(&neighbour).unwrap(),
        Begin::AlreadyDone { .. }
    ));
}

/// The crash case: an intent recorded by a run that stopped before completing is reported
/// as uncertain after a restart, never silently retried.
#[test]
fn an_intent_left_by_a_crashed_run_is_uncertain_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let wb = wb_key();
    {
        let store = open(dir.path(), &key, &clock);
        store
            .put_integration(&integration("sf-prod", clock.now()), "operator:ada")
            .unwrap();
        assert_eq!(store.begin_writeback(&wb).unwrap(), Begin::Proceed);
        // The process dies here, during the remote call.
    }
    let store = open(dir.path(), &key, &clock);
    assert_eq!(
        store.begin_writeback(&wb).unwrap(),
        Begin::Uncertain { since: T0 }
    );
    assert_eq!(store.uncertain("sf-prod").unwrap(), vec![(wb.clone(), T0)]);
    assert!(!store.is_done(&wb).unwrap());

    store.resolve_uncertain(&wb, Resolution::Retry).unwrap();
    assert!(matches!(
        store.begin_writeback(&wb).unwrap(),
        Begin::InFlight { .. }
    ));
    let mut f = file("sf-prod", "068A", "v3");
    f.status = FileStatus::Analysed;
    store
        .complete_writeback_with_file(&wb, &Completion::Written, &f)
        .unwrap();
    assert_eq!(
        store.file("sf-prod", "068A").unwrap().unwrap().status,
        FileStatus::Written
    );
    assert!(store.uncertain("sf-prod").unwrap().is_empty());
}

#[test]
fn completing_without_an_intent_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let err = store
        .complete_writeback(&wb_key(), &Completion::Written)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no write-back intent is recorded for '068A' of integration 'sf-prod'; call begin_writeback first"
    );
}
