//! The work queue and the write-back idempotency log: what only the embedded store has
//! (`complete_item`, `fail_item`, `forget_writebacks`, `complete_writeback_with_file`). The
//! behaviour every backend shares is in the conformance suite (`conformance.rs`).

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
