//! The store conformance suite: what every backend must do (the stages' [`StageStore`] and
//! the control plane's [`ControlStore`]), written once and run against each.
//!
//! Each test is a function over a [`Backend`] (a store, the clock it reads, and a way to
//! restart it as a new process would), and [`stage_store_conformance!`] makes one `#[test]`
//! per function for a backend. The embedded store runs it from `stages.rs` in this test
//! binary; the PostgreSQL store (`host/store-pg/tests/conformance.rs`) includes this very
//! file with `#[path]` and runs the same functions, so a behaviour added here is required of
//! both, and no backend has a copy of the tests that could drift.
//!
//! Only the seams are used here ([`StageStore`], [`DownstreamStore`] which adds what the
//! notify and remediation stages need, and [`ControlStore`], the service's, API's and CLI's;
//! a backend is a `proofpix_store::Backend`, all three): a backend-only API (redb's
//! `complete_writeback_with_file`, PostgreSQL's migrations) is tested in its own crate.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::Secret;
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test starts at.
pub const T0: OffsetDateTime = datetime!(2026-01-05 09:00:00 UTC);

const LEASE: Duration = Duration::from_secs(60);

/// A settable clock shared by a test and the store under test.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    pub fn new() -> Self {
        TestClock(Arc::new(Mutex::new(T0)))
    }
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
    /// The clock as a store reads it.
    pub fn clock(&self) -> Clock {
        let c = self.0.clone();
        Arc::new(move || *c.lock().unwrap())
    }
    /// redb options reading this clock.
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            clock: self.clock(),
            ..StoreOptions::default()
        }
    }
}

/// Opens the backend's store (again, for [`Backend::restart`]).
pub type Opener = Box<dyn Fn() -> Box<dyn proofpix_store::Backend>>;

/// A store under test, the clock it reads, and what keeps its storage alive.
pub struct Backend {
    store: Option<Box<dyn proofpix_store::Backend>>,
    open: Opener,
    pub clock: TestClock,
    /// Dropped last: the temporary directory, or the database schema to drop.
    _guard: Box<dyn std::any::Any>,
}

impl Backend {
    /// Opens a store with `open` and keeps `guard` until the backend is dropped.
    pub fn new(clock: TestClock, open: Opener, guard: Box<dyn std::any::Any>) -> Self {
        Backend {
            store: Some(open()),
            open,
            clock,
            _guard: guard,
        }
    }

    pub fn store(&self) -> &dyn proofpix_store::Backend {
        self.store.as_deref().expect("open")
    }

    /// Closes the store and opens it again, as a new process (a new run) would.
    pub fn restart(&mut self) {
        self.store = None;
        self.store = Some((self.open)());
    }
}

/// One `#[test]` per conformance function, on the backend `$open()` returns.
#[macro_export]
macro_rules! stage_store_conformance {
    ($open:path) => {
        $crate::stage_store_conformance!($open:
            a_group_commits_results_files_acks_and_outbox_items_together,
            a_lost_lease_costs_that_file_not_the_group,
            write_back_groups_are_at_most_once_and_mark_the_files,
            a_skipped_write_back_is_done_and_marks_the_file_skipped_with_its_reason,
            later_and_parked_write_backs_keep_their_intents_and_a_missing_intent_fails_the_group,
            enqueue_skips_duplicates_until_the_item_is_acked,
            a_claimed_item_is_not_claimed_again_until_its_lease_expires,
            nacked_items_wait_for_their_retry_time_and_park_after_the_last_attempt,
            an_item_whose_worker_keeps_dying_is_parked_instead_of_looping,
            an_item_that_lost_its_worker_is_delivered_alone,
            a_page_and_its_cursor_commit_together,
            a_write_back_happens_at_most_once_per_key,
            a_failed_write_back_may_be_tried_again,
            completing_without_an_intent_is_an_error,
            an_intent_left_by_a_previous_run_is_uncertain_after_a_restart,
            file_records_read_back_as_written,
            a_finished_batch_and_its_summaries_commit_together,
            a_run_opens_and_closes_with_its_audit_entries_and_health,
            a_run_may_claim_its_first_group_with_its_opening_and_its_write_backs_with_their_record,
            the_status_of_an_unknown_integration_is_refused,
            audit_entries_are_numbered_without_gaps,
            concurrent_claims_never_share_an_item,
            key_value_namespaces_count_usage_and_keep_their_cap,
            integration_records_are_listed_and_their_changes_audited,
            integration_settings_are_typed_fields_apart_from_the_plugins_config,
            control_secrets_and_tokens_read_back_and_are_audited_without_values,
            control_plugins_are_installed_listed_and_removed,
            control_api_tokens_and_sessions_end_together,
            control_settings_read_back_and_are_audited,
            control_deleting_an_integration_removes_what_it_owned,
            control_batches_and_file_pages,
            control_batches_since_read_down_to_the_first_older_run_without_result_ids,
            control_the_audit_chain_verifies_lists_and_exports,
            control_the_inventory_filters_sorts_and_pages,
            control_forgetting_write_backs_keeps_intents,
            control_expired_leases_are_released,
            control_one_node_holds_an_integrations_sync_lease,
            control_a_schedule_advances_once_for_one_due_time,
        );
    };
    ($open:path: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut backend = $open();
                $crate::conformance::$name(&mut backend);
            }
        )*
    };
}

// ----- helpers ------------------------------------------------------------------------------

pub fn file(id: &str, now: OffsetDateTime) -> FileRecord {
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
        web_url: None,
    }
}

pub fn result(id: &str) -> NewResult {
    NewResult {
        integration: "src".into(),
        remote_id: id.into(),
        file_version: "v1".into(),
        risk: proofpix_store::RiskLevel::High,
        score: 80,
        report_json: "{}".into(),
    }
}

pub fn outbound(queue: &str, key: &str) -> Outbound {
    Outbound {
        queue: queue.into(),
        item: NewItem {
            dedup_key: key.into(),
            payload: key.as_bytes().to_vec(),
        },
    }
}

pub fn items(keys: &[&str]) -> Vec<NewItem> {
    keys.iter()
        .map(|k| NewItem {
            dedup_key: (*k).into(),
            payload: k.as_bytes().to_vec(),
        })
        .collect()
}

pub fn enqueue(store: &dyn StageStore, ids: &[&str]) -> Vec<Lease> {
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

pub fn wb_key() -> WritebackKey {
    WritebackKey {
        integration: "sf-prod".into(),
        remote_id: "068A".into(),
        file_version: "v3".into(),
        plugin_version: "0.1.0".into(),
        policy_version: "2026-01".into(),
    }
}

// ----- group commit and the outbox ------------------------------------------------------------

pub fn a_group_commits_results_files_acks_and_outbox_items_together(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let leases = enqueue(store, &["a", "b", "c"]);
    let wb = stage_queue("src", Stage::WriteBack);
    let alerts = stage_queue("alerts", Stage::Notify);
    let linked = |id: &str, url: &str| FileRecord {
        web_url: Some(url.into()),
        ..file(id, clock.now())
    };
    let records = vec![
        Record::Done {
            lease: leases[0].clone(),
            file: linked("a", "https://files.example/a"),
            result: Some(result("a")),
            outbox: vec![outbound(&wb, "a"), outbound(&alerts, "src:a")],
        },
        Record::Retry {
            lease: leases[1].clone(),
            file: linked("b", "https://files.example/b"),
            retry_at: clock.now() + Duration::from_secs(30),
            error: "download: timed out".into(),
        },
        Record::Park {
            lease: leases[2].clone(),
            file: linked("c", "javascript:alert(1)"),
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
    let stored = store.result(rid).unwrap().unwrap();
    assert_eq!(
        (
            stored.remote_id.as_str(),
            stored.risk.as_str(),
            stored.score
        ),
        ("a", "high", 80)
    );
    assert_eq!(stored.created_at, clock.now());
    let b_file = store.file("src", "b").unwrap().unwrap();
    assert_eq!(b_file.status, FileStatus::Failed);
    assert_eq!(b_file.last_error.as_deref(), Some("download: timed out"));
    assert_eq!(
        store.file("src", "c").unwrap().unwrap().status,
        FileStatus::Parked
    );
    // Every outcome keeps the file's link as the plugin gave it.
    for (id, url) in [
        ("a", "https://files.example/a"),
        ("b", "https://files.example/b"),
        ("c", "javascript:alert(1)"),
    ] {
        let f = store.file("src", id).unwrap().unwrap();
        assert_eq!(f.web_url.as_deref(), Some(url), "file {id}");
    }
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
    // The outbox item carries its payload to the stage that claims it.
    let wb_leases = store.claim(&wb, "w2", 10, LEASE).unwrap();
    assert_eq!(wb_leases.len(), 1);
    assert_eq!(
        (
            wb_leases[0].dedup_key.as_str(),
            wb_leases[0].payload.as_slice()
        ),
        ("a", b"a".as_slice())
    );
}

pub fn a_lost_lease_costs_that_file_not_the_group(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
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

pub fn write_back_groups_are_at_most_once_and_mark_the_files(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
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
    // c's write-back is parked: its file shows it with the reason, and a listing leaves it
    // to the operator instead of analysing it again (which would record it as fine).
    let c = store.file("src", "c").unwrap().unwrap();
    assert_eq!(c.status, FileStatus::Parked);
    assert_eq!(
        c.last_error.as_deref(),
        Some("write-back failed: not found: the record was deleted")
    );
    assert!(!store.needs_processing("src", "c", "v1", true).unwrap());
    assert!(store.needs_processing("src", "c", "v2", true).unwrap());
    assert!(store.needs_processing("src", "b", "v1", true).unwrap());
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
    // A write-back whose lease was taken over is skipped, not recorded.
    assert_eq!(
        store
            .finish_writebacks(&[WritebackDone {
                lease: leases[0].clone(),
                key: key("a"),
                end: WritebackEnd::Written,
            }])
            .unwrap(),
        vec![false]
    );
}

/// A write-back the plugin skipped (contract 0.3) is acked and done, never repeated, and
/// its file is `Skipped` with the reason, not `Written`, also when met again as done.
pub fn a_skipped_write_back_is_done_and_marks_the_file_skipped_with_its_reason(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
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

/// A write-back put back for later is not charged an attempt and keeps its intent; one
/// parked for an operator notes why on its file; completing a write-back that has no intent
/// fails the whole group, which then leaves nothing written.
pub fn later_and_parked_write_backs_keep_their_intents_and_a_missing_intent_fails_the_group(
    b: &mut Backend,
) {
    let (store, clock) = (b.store(), &b.clock);
    let fetch = enqueue(store, &["a", "b"]);
    let wb = stage_queue("src", Stage::WriteBack);
    let records: Vec<Record> = fetch
        .iter()
        .zip(["a", "b"])
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
    assert_eq!(
        store.begin_writebacks(&[key("a")]).unwrap(),
        vec![Begin::Proceed]
    );
    let ends = vec![
        WritebackDone {
            lease: leases[0].clone(),
            key: key("a"),
            end: WritebackEnd::Later {
                at: clock.now() + Duration::from_secs(10),
                reason: "in flight elsewhere".into(),
            },
        },
        WritebackDone {
            lease: leases[1].clone(),
            key: key("b"),
            end: WritebackEnd::Parked {
                reason: "uncertain: a crash left its intent".into(),
            },
        },
    ];
    assert_eq!(store.finish_writebacks(&ends).unwrap(), vec![true, true]);
    assert_eq!(
        store.depth(&wb).unwrap(),
        QueueDepth {
            pending: 1,
            parked: 1
        }
    );
    let a = store.file("src", "a").unwrap().unwrap();
    assert_eq!((a.status, a.last_error), (FileStatus::Analysed, None));
    let b_file = store.file("src", "b").unwrap().unwrap();
    assert_eq!(b_file.status, FileStatus::Parked);
    assert_eq!(
        b_file.last_error.as_deref(),
        Some("write-back failed: uncertain: a crash left its intent")
    );
    // a's intent still guards it, and it comes back when due, its delivery not charged.
    assert!(matches!(
        store.begin_writebacks(&[key("a")]).unwrap()[0],
        Begin::InFlight { .. }
    ));
    assert!(store.claim(&wb, "w1", 10, LEASE).unwrap().is_empty());
    clock.advance(Duration::from_secs(11));
    let again = store.claim(&wb, "w1", 10, LEASE).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].dedup_key.as_str(), again[0].attempt), ("a", 2));

    // Written without an intent: an error, and the group's other changes are not kept.
    let err = store
        .finish_writebacks(&[WritebackDone {
            lease: again[0].clone(),
            key: key("zz"),
            end: WritebackEnd::Written,
        }])
        .unwrap_err();
    assert!(matches!(err, StoreError::NoWritebackIntent { .. }), "{err}");
    assert_eq!(
        store.depth(&wb).unwrap().pending,
        1,
        "the item was not acked"
    );
    assert_eq!(
        store
            .finish_writebacks(&[WritebackDone {
                lease: again[0].clone(),
                key: key("a"),
                end: WritebackEnd::Written,
            }])
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        store.file("src", "a").unwrap().unwrap().status,
        FileStatus::Written
    );
}

// ----- the work queue -------------------------------------------------------------------------

pub fn enqueue_skips_duplicates_until_the_item_is_acked(b: &mut Backend) {
    let store = b.store();
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
    // A key twice in one call is added once.
    let twice = store.enqueue("i", &items(&["d@1", "d@1"])).unwrap();
    let Enqueued::New(d) = twice[0] else {
        panic!("{twice:?}")
    };
    assert_eq!(twice[1], Enqueued::Duplicate(d));
    assert_eq!(
        store.depth("i").unwrap(),
        QueueDepth {
            pending: 4,
            parked: 0
        }
    );
    let leases = store.claim("i", "w1", 10, LEASE).unwrap();
    assert_eq!(leases.len(), 4);
    // Claimed in the order they were queued.
    let keys: Vec<&str> = leases.iter().map(|l| l.dedup_key.as_str()).collect();
    assert_eq!(keys, ["a@1", "b@1", "c@1", "d@1"]);
    store.ack(&leases[0]).unwrap();
    assert!(matches!(
        store.enqueue("i", &items(&["a@1"])).unwrap()[0],
        Enqueued::New(_)
    ));
}

pub fn a_claimed_item_is_not_claimed_again_until_its_lease_expires(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    store.enqueue("i", &items(&["a@1"])).unwrap();
    let l1 = store.claim("i", "w1", 10, LEASE).unwrap();
    assert_eq!(l1.len(), 1);
    assert_eq!(l1[0].until, clock.now() + LEASE);
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

pub fn nacked_items_wait_for_their_retry_time_and_park_after_the_last_attempt(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
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

pub fn an_item_whose_worker_keeps_dying_is_parked_instead_of_looping(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
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

/// A group whose worker died is not delivered as a group again: each of its items comes
/// alone, so the one that crashes workers is charged its deliveries, not its neighbours.
pub fn an_item_that_lost_its_worker_is_delivered_alone(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    store.enqueue("i", &items(&["a@1", "b@1", "c@1"])).unwrap();
    assert_eq!(store.claim("i", "w1", 10, LEASE).unwrap().len(), 3);
    clock.advance(LEASE + Duration::from_secs(1));
    for key in ["a@1", "b@1", "c@1"] {
        let alone = store.claim("i", "w2", 10, LEASE).unwrap();
        assert_eq!(alone.len(), 1, "{key}");
        assert_eq!((alone[0].dedup_key.as_str(), alone[0].attempt), (key, 2));
    }
    assert!(store.claim("i", "w2", 10, LEASE).unwrap().is_empty());
}

pub fn a_page_and_its_cursor_commit_together(b: &mut Backend) {
    let store = b.store();
    assert_eq!(store.cursor("i").unwrap(), None);
    store
        .enqueue_page("i", &items(&["a@1", "b@1"]), Some("page-2"))
        .unwrap();
    assert_eq!(store.cursor("i").unwrap().as_deref(), Some("page-2"));
    assert_eq!(store.depth("i").unwrap().pending, 2);
    // The last page clears the cursor.
    store.enqueue_page("i", &items(&["c@1"]), None).unwrap();
    assert_eq!(store.cursor("i").unwrap(), None);
    assert_eq!(store.depth("i").unwrap().pending, 3);
}

// ----- the write-back log ---------------------------------------------------------------------

pub fn a_write_back_happens_at_most_once_per_key(b: &mut Backend) {
    let store = b.store();
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

pub fn a_failed_write_back_may_be_tried_again(b: &mut Backend) {
    let store = b.store();
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

pub fn completing_without_an_intent_is_an_error(b: &mut Backend) {
    let err = b
        .store()
        .complete_writeback(&wb_key(), &Completion::Written)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no write-back intent is recorded for '068A' of integration 'sf-prod'; call begin_writeback first"
    );
}

/// The crash case: an intent recorded by a run that stopped before completing is reported
/// as uncertain after a restart, never silently retried.
pub fn an_intent_left_by_a_previous_run_is_uncertain_after_a_restart(b: &mut Backend) {
    let wb = wb_key();
    assert_eq!(b.store().begin_writeback(&wb).unwrap(), Begin::Proceed);
    // The process dies here, during the remote call.
    b.restart();
    b.clock.advance(Duration::from_secs(5));
    let store = b.store();
    assert_eq!(
        store.begin_writeback(&wb).unwrap(),
        Begin::Uncertain { since: T0 }
    );
    assert_eq!(store.uncertain("sf-prod").unwrap(), vec![(wb.clone(), T0)]);
    assert!(store.uncertain("sf-prod2").unwrap().is_empty());
    assert!(!store.is_done(&wb).unwrap());

    store.resolve_uncertain(&wb, Resolution::Retry).unwrap();
    assert!(matches!(
        store.begin_writeback(&wb).unwrap(),
        Begin::InFlight { .. }
    ));
    store.complete_writeback(&wb, &Completion::Written).unwrap();
    assert!(store.is_done(&wb).unwrap());
    assert!(store.uncertain("sf-prod").unwrap().is_empty());

    // Marked written by an operator who checked the platform.
    let mut other = wb.clone();
    other.remote_id = "068B".into();
    assert_eq!(store.begin_writeback(&other).unwrap(), Begin::Proceed);
    b.restart();
    let store = b.store();
    store
        .resolve_uncertain(&other, Resolution::MarkWritten)
        .unwrap();
    assert!(store.is_done(&other).unwrap());
}

// ----- records, batches, status, audit --------------------------------------------------------

pub fn file_records_read_back_as_written(b: &mut Backend) {
    let store = b.store();
    let mut f = file("x", T0 + Duration::from_millis(1234));
    f.content_hash = Some("ab".repeat(32));
    f.last_result = Some(42);
    f.status = FileStatus::Written;
    f.attempts = 3;
    f.last_error = Some("an earlier failure".into());
    f.web_url = Some("https://files.example/x y".into());
    store.put_file(&f).unwrap();
    assert_eq!(store.file("src", "x").unwrap(), Some(f.clone()));
    assert_eq!(store.file("src", "y").unwrap(), None);
    assert!(!store.needs_processing("src", "x", "v1", true).unwrap());
    assert!(store.needs_processing("src", "x", "v2", true).unwrap());
    assert!(store.needs_processing("src", "y", "v1", false).unwrap());
    f.status = FileStatus::Removed;
    f.last_error = None;
    store.put_file(&f).unwrap();
    assert_eq!(store.file("src", "x").unwrap(), Some(f));
}

pub fn a_finished_batch_and_its_summaries_commit_together(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let first = store.start_batch("src").unwrap();
    let mut batch = store.start_batch("src").unwrap();
    assert!(batch.id > first.id);
    assert_eq!(
        (batch.integration.as_str(), batch.started_at),
        ("src", clock.now())
    );
    batch.total = 3;
    batch.ok = 2;
    batch.errors = 1;
    batch.by_risk.insert("high".into(), 2);
    batch.finished_at = Some(clock.now() + Duration::from_secs(2));
    batch.duration = Some(Duration::from_secs(2));
    let summaries = stage_queue("teams", Stage::Notify);
    store
        .finish_batch(&batch, &[outbound(&summaries, "batch:2")])
        .unwrap();
    assert_eq!(store.depth(&summaries).unwrap().pending, 1);
    assert_eq!(store.batch(batch.id).unwrap(), Some(batch));
    assert_eq!(store.batch(first.id + 1000).unwrap(), None);
}

/// A run's first and last store writes: the batch with its `sync.started` entry, and the
/// finished batch with its summaries, the integration's health and its `sync.completed` entry
/// (one commit each on the embedded store). An integration without a record (a test context)
/// still closes its batch.
/// The two combined commits a small run makes (one transaction each on the embedded store):
/// the batch's opening with the fetch queue's first group, and a group's record with the
/// write-back stage's next group. What they claim is what a claim right after would have, and
/// an empty queue is an empty claim.
pub fn a_run_may_claim_its_first_group_with_its_opening_and_its_write_backs_with_their_record(
    b: &mut Backend,
) {
    let (store, clock) = (b.store(), &b.clock);
    let wb = stage_queue("src", Stage::WriteBack);
    let claim = |queue: &str| ClaimRequest {
        queue: queue.into(),
        owner: "w1".into(),
        max: 2,
        lease: LEASE,
    };
    let audit = |batch: &BatchRecord| {
        AuditEvent::new("system", "sync.started", &batch.integration)
            .details(serde_json::json!({ "batch": batch.id }))
    };

    // Nothing queued: the batch opens and nothing is claimed.
    let before = store.audit_entries(1, 10_000).unwrap().len();
    let (empty, none) = store
        .start_batch_and_claim("src", &audit, &claim("src"))
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(store.batch(empty.id).unwrap(), Some(empty.clone()));
    assert_eq!(store.audit_entries(1, 10_000).unwrap().len(), before + 1);

    // Three queued, two claimed with the opening; the third waits for the next claim.
    store
        .enqueue("src", &items(&["a@v1", "b@v1", "c@v1"]))
        .unwrap();
    let (batch, leases) = store
        .start_batch_and_claim("src", &audit, &claim("src"))
        .unwrap();
    assert!(batch.id > empty.id);
    assert_eq!(store.batch(batch.id).unwrap(), Some(batch));
    assert_eq!(
        leases
            .iter()
            .map(|l| l.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["a@v1", "b@v1"]
    );
    assert!(leases.iter().all(|l| l.owner == "w1" && l.attempt == 1));
    let entries = store.audit_entries(1, 10_000).unwrap();
    assert_eq!(entries.len(), before + 2);
    assert_eq!(entries.last().unwrap().action, "sync.started");
    let depth = store.depth("src").unwrap();
    assert_eq!(depth.pending, 3, "claimed items stay pending until acked");

    // The group's record queues two write-backs and claims them in the same step.
    let records: Vec<Record> = leases
        .iter()
        .zip(["a", "b"])
        .map(|(lease, id)| Record::Done {
            lease: lease.clone(),
            file: file(id, clock.now()),
            result: Some(result(id)),
            outbox: vec![outbound(&wb, &format!("{id}@v1#p"))],
        })
        .collect();
    let (recorded, claimed) = store.record_group_and_claim(&records, &claim(&wb)).unwrap();
    assert!(
        recorded
            .iter()
            .all(|r| matches!(r, Recorded::Done(Some(_))))
    );
    assert_eq!(
        claimed
            .iter()
            .map(|l| l.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["a@v1#p", "b@v1#p"]
    );
    assert!(
        claimed
            .iter()
            .all(|l| l.integration == wb && l.owner == "w1")
    );
    // Leased: another claim gets nothing until the leases run out.
    assert!(store.claim(&wb, "w2", 10, LEASE).unwrap().is_empty());
    // The fetch queue's third item is still there for the next claim.
    let next = store.claim("src", "w1", 10, LEASE).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].dedup_key, "c@v1");

    // A record with nothing queued downstream claims nothing, and an empty claim is empty.
    let (recorded, claimed) = store
        .record_group_and_claim(
            &[Record::Done {
                lease: next[0].clone(),
                file: file("c", clock.now()),
                result: Some(result("c")),
                outbox: Vec::new(),
            }],
            &claim(&wb),
        )
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(claimed.is_empty());
    assert!(store.claim("src", "w1", 10, LEASE).unwrap().is_empty());
    assert_eq!(store.depth("src").unwrap().pending, 0);
    // Expired write-back leases are claimable again (the read-only look sees them too).
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(store.claim(&wb, "w2", 10, LEASE).unwrap().len(), 1);
}

pub fn a_run_opens_and_closes_with_its_audit_entries_and_health(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    store
        .put_integration(&integration_rec("src", clock.now()), "op")
        .unwrap();
    let before = store.audit_entries(1, 10_000).unwrap().len();
    let mut batch = store
        .start_batch_audited("src", &|batch| {
            AuditEvent::new("system", "sync.started", &batch.integration)
                .details(serde_json::json!({ "batch": batch.id }))
        })
        .unwrap();
    assert_eq!(store.batch(batch.id).unwrap(), Some(batch.clone()));
    let entries = store.audit_entries(1, 10_000).unwrap();
    assert_eq!(entries.len(), before + 1);
    let started = entries.last().unwrap();
    assert_eq!(
        (started.action.as_str(), started.target.as_str()),
        ("sync.started", "src")
    );
    assert!(
        started.details.contains(&format!("{}", batch.id)),
        "{}",
        started.details
    );

    batch.total = 1;
    batch.errors = 1;
    batch.finished_at = Some(clock.now());
    let summaries = stage_queue("teams", Stage::Notify);
    store
        .close_batch(
            &batch,
            &[outbound(&summaries, "batch:1")],
            IntegrationStatus::Failing,
            Some("the platform said no"),
            &AuditEvent::new("system", "sync.completed", "src").outcome("failed"),
        )
        .unwrap();
    assert_eq!(store.batch(batch.id).unwrap(), Some(batch));
    assert_eq!(store.depth(&summaries).unwrap().pending, 1);
    let rec = store.integration("src").unwrap().unwrap();
    assert_eq!(rec.status, IntegrationStatus::Failing);
    assert_eq!(rec.last_error.as_deref(), Some("the platform said no"));
    let entries = store.audit_entries(1, 10_000).unwrap();
    assert_eq!(entries.len(), before + 2);
    let completed = entries.last().unwrap();
    assert_eq!(
        (completed.action.as_str(), completed.outcome.as_str()),
        ("sync.completed", "failed")
    );

    // No record: the batch still closes, and the run is still audited.
    let other = store
        .start_batch_audited("ghost", &|b| {
            AuditEvent::new("system", "sync.started", &b.integration)
        })
        .unwrap();
    store
        .close_batch(
            &other,
            &[],
            IntegrationStatus::Healthy,
            None,
            &AuditEvent::new("system", "sync.completed", "ghost"),
        )
        .unwrap();
    assert_eq!(store.batch(other.id).unwrap(), Some(other));
    assert_eq!(store.audit_entries(1, 10_000).unwrap().len(), before + 4);
}

pub fn the_status_of_an_unknown_integration_is_refused(b: &mut Backend) {
    let err = b
        .store()
        .set_integration_status("nobody", IntegrationStatus::Healthy, None)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchIntegration(id) if id == "nobody"),
        "{err}"
    );
}

/// Appends are numbered one after another (the store's own creation entry may come first).
pub fn audit_entries_are_numbered_without_gaps(b: &mut Backend) {
    let store = b.store();
    let seqs: Vec<u64> = (0..3)
        .map(|i| {
            store
                .audit(&AuditEvent::new("daemon", "sync.start", format!("src{i}")))
                .unwrap()
        })
        .collect();
    assert!(seqs[0] >= 1, "{seqs:?}");
    assert_eq!(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
}

/// Workers claiming from one queue at once each get their own items: none is delivered
/// twice, none is lost.
pub fn concurrent_claims_never_share_an_item(b: &mut Backend) {
    let store = b.store();
    let keys: Vec<String> = (0..200).map(|i| format!("f{i}@1")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    store.enqueue("i", &items(&refs)).unwrap();
    let claimed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..4 {
            let claimed = &claimed;
            s.spawn(move || {
                loop {
                    let leases = store.claim("i", &format!("w{w}"), 7, LEASE).unwrap();
                    if leases.is_empty() {
                        break;
                    }
                    for l in &leases {
                        store.ack(l).unwrap();
                    }
                    claimed
                        .lock()
                        .unwrap()
                        .extend(leases.into_iter().map(|l| l.dedup_key));
                }
            });
        }
    });
    let mut claimed = claimed.into_inner().unwrap();
    claimed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(claimed, expected);
    assert_eq!(store.depth("i").unwrap(), QueueDepth::default());
}

// ----- what the notify and remediation stages add (DownstreamStore) ---------------------------

/// Key-value namespaces: usage counts keys and values, a cap refuses what would exceed it,
/// keys list by prefix in order, and namespaces are kept apart.
pub fn key_value_namespaces_count_usage_and_keep_their_cap(b: &mut Backend) {
    let store = b.store();
    assert_eq!(store.kv_set("remediate", "due/2", b"abc", None).unwrap(), 8);
    assert_eq!(
        store
            .kv_set("remediate", "due/1", b"xy", Some(100))
            .unwrap(),
        15
    );
    // Replacing a value counts the new one only.
    assert_eq!(store.kv_set("remediate", "due/2", b"a", None).unwrap(), 13);
    let err = store
        .kv_set("remediate", "other", &[0u8; 100], Some(50))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::KvQuotaExceeded {
                would_be: 118,
                cap: 50,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.kv_get("remediate", "other").unwrap(), None);
    store.kv_set("notify", "due/9", b"n", None).unwrap();
    assert_eq!(
        store.kv_keys("remediate", "due/").unwrap(),
        ["due/1", "due/2"]
    );
    assert_eq!(
        store.kv_get("remediate", "due/2").unwrap().as_deref(),
        Some(b"a".as_slice())
    );
    assert_eq!(store.kv_delete("remediate", "due/1").unwrap(), 6);
    assert_eq!(
        store.kv_delete("remediate", "due/1").unwrap(),
        6,
        "nothing left to delete"
    );
    assert_eq!(store.kv_keys("remediate", "").unwrap(), ["due/2"]);
}

/// Integration records (the subscriptions and remediation policies live in them) are listed
/// by id, read back as written, and each change is an audit entry.
pub fn integration_records_are_listed_and_their_changes_audited(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let mut rec = IntegrationRecord::new("sp-main", "sharepoint", "0.3.0", clock.now());
    rec.config.insert("site".into(), "contoso".into());
    rec.schedule = Some("every 15m".into());
    let mark = || store.audit(&AuditEvent::new("test", "mark", "x")).unwrap();
    let before = mark();
    store.put_integration(&rec, "operator:ada").unwrap();
    store
        .put_integration(
            &IntegrationRecord::new("box", "box", "0.3.0", clock.now()),
            "operator:ada",
        )
        .unwrap();
    rec.enabled = false;
    store.put_integration(&rec, "operator:ada").unwrap();
    assert_eq!(mark(), before + 4, "one entry per change");
    let all = store.integrations().unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["box", "sp-main"]);
    assert_eq!(all[1], rec);
    store
        .set_integration_status("sp-main", IntegrationStatus::NeedsReauth, Some("HTTP 401"))
        .unwrap();
    let sp = store.integrations().unwrap().pop().unwrap();
    assert_eq!(
        (sp.status, sp.last_error.as_deref()),
        (IntegrationStatus::NeedsReauth, Some("HTTP 401"))
    );
}

/// The host's own settings of an integration (grant, subscriptions, remediation, pixels)
/// are typed fields that read back as written, and never appear in the plugin's config.
pub fn integration_settings_are_typed_fields_apart_from_the_plugins_config(b: &mut Backend) {
    use proofpix_model::RemediationKind;
    use proofpix_policy::{OperatorGrant, RemediationPolicy, Subscriptions};
    let (store, clock) = (b.store(), &b.clock);
    let mut rec = IntegrationRecord::new("teams", "teams", "0.3.0", clock.now());
    rec.config.insert("team".into(), "field-ops".into());
    rec.grant = OperatorGrant {
        hosts: vec!["https://graph.microsoft.com".into()],
        mounts: vec!["/input".into()],
        write: vec!["/input".into()],
        allow_loopback: true,
        ..OperatorGrant::default()
    };
    rec.subscriptions = Some(Subscriptions {
        sources: vec!["sp-main".into()],
        min_risk: proofpix_store::RiskLevel::Critical,
        digest: true,
        window_secs: 300,
        dashboard_url: Some("https://proofpix.example/".into()),
        ..Subscriptions::default()
    });
    rec.remediation = Some(RemediationPolicy {
        actions: vec![RemediationKind::Quarantine],
        min_risk: proofpix_store::RiskLevel::Critical,
        delay_secs: 60,
        simulate: false,
        label: None,
    });
    rec.pixels = true;
    store.put_integration(&rec, "operator:ada").unwrap();
    let back = store.integration("teams").unwrap().unwrap();
    assert_eq!(back, rec);
    assert_eq!(
        back.config.keys().collect::<Vec<_>>(),
        ["team"],
        "only the plugin's config"
    );
    assert_eq!(store.integrations().unwrap(), vec![rec.clone()]);
    // A status change keeps the settings.
    store
        .set_integration_status("teams", IntegrationStatus::Healthy, None)
        .unwrap();
    let after = store.integration("teams").unwrap().unwrap();
    assert_eq!(
        (
            &after.grant,
            &after.subscriptions,
            &after.remediation,
            after.pixels
        ),
        (&rec.grant, &rec.subscriptions, &rec.remediation, true)
    );
    // And clearing them clears them.
    rec.subscriptions = None;
    rec.remediation = None;
    rec.pixels = false;
    rec.grant = OperatorGrant::default();
    store.put_integration(&rec, "operator:ada").unwrap();
    let cleared = store.integration("teams").unwrap().unwrap();
    assert_eq!(
        (
            cleared.grant,
            cleared.subscriptions,
            cleared.remediation,
            cleared.pixels
        ),
        (OperatorGrant::default(), None, None, false)
    );
}

// ----- the control plane (ControlStore): what the service, the API and the CLI need -------

fn integration_rec(id: &str, now: OffsetDateTime) -> IntegrationRecord {
    IntegrationRecord::new(id, "salesforce", "0.3.0", now)
}

/// The actions of the audit entries after `after`, oldest first.
fn actions_after(store: &dyn proofpix_store::Backend, after: u64) -> Vec<String> {
    store
        .audit_entries(after + 1, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

fn mark(store: &dyn proofpix_store::Backend) -> u64 {
    store.audit(&AuditEvent::new("test", "mark", "x")).unwrap()
}

/// Secrets and OAuth tokens: refused for an unknown integration, read back as set, listed
/// by field name only, removed, and each change audited without its value.
pub fn control_secrets_and_tokens_read_back_and_are_audited_without_values(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let err = store
        .set_secret("nobody", "client_secret", &Secret::new("x"), "op")
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchIntegration(id) if id == "nobody"),
        "{err}"
    );
    store
        .put_integration(&integration_rec("sf", clock.now()), "op")
        .unwrap();
    let before = mark(store);
    store
        .set_secret("sf", "password", &Secret::new("hunter2"), "operator:ada")
        .unwrap();
    store
        .set_secret(
            "sf",
            "client_secret",
            &Secret::new("s3cr3t"),
            "operator:ada",
        )
        .unwrap();
    assert_eq!(
        store
            .secret("sf", "client_secret")
            .unwrap()
            .unwrap()
            .expose(),
        "s3cr3t"
    );
    assert!(store.secret("sf", "nothing").unwrap().is_none());
    assert_eq!(
        store.secret_fields("sf").unwrap(),
        ["client_secret", "password"]
    );
    assert!(
        store
            .delete_secret("sf", "password", "operator:ada")
            .unwrap()
    );
    assert!(
        !store
            .delete_secret("sf", "password", "operator:ada")
            .unwrap()
    );
    assert_eq!(store.secret_fields("sf").unwrap(), ["client_secret"]);

    let expires = clock.now() + Duration::from_secs(3600);
    let tokens = TokenSet {
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        expires_at: Some(expires),
        scope: Some("api refresh_token".into()),
        context: [("instance_url".to_string(), "https://x.example".to_string())].into(),
    };
    assert!(matches!(
        store.set_tokens("nobody", &tokens, "op").unwrap_err(),
        StoreError::NoSuchIntegration(_)
    ));
    store.set_tokens("sf", &tokens, "oauth").unwrap();
    let back = store.tokens("sf").unwrap().unwrap();
    assert_eq!(back.access_token.expose(), "at-1");
    assert_eq!(
        back.refresh_token.as_ref().map(Secret::expose),
        Some("rt-1")
    );
    assert_eq!(back.expires_at, Some(expires));
    assert_eq!(back.scope.as_deref(), Some("api refresh_token"));
    assert_eq!(back.context, tokens.context);
    // Replacing drops what the new set does not have.
    let access_only = TokenSet {
        refresh_token: None,
        expires_at: None,
        scope: None,
        context: Default::default(),
        access_token: Secret::new("at-2"),
    };
    store.set_tokens("sf", &access_only, "oauth").unwrap();
    let back = store.tokens("sf").unwrap().unwrap();
    assert_eq!(back.access_token.expose(), "at-2");
    assert!(back.refresh_token.is_none() && back.expires_at.is_none());
    assert!(store.delete_tokens("sf", "op").unwrap());
    assert!(!store.delete_tokens("sf", "op").unwrap());
    assert!(store.tokens("sf").unwrap().is_none());

    assert_eq!(
        actions_after(store, before),
        [
            "secret.set",
            "secret.set",
            "secret.delete",
            "tokens.set",
            "tokens.set",
            "tokens.delete"
        ]
    );
    let entries = store.audit_entries(before + 1, 100).unwrap();
    assert_eq!(entries[0].target, "sf/password");
    for e in &entries {
        for value in ["hunter2", "s3cr3t", "at-1", "rt-1", "at-2"] {
            assert!(!e.details.contains(value), "{e:?}");
        }
    }
}

/// Plugin records: installed (or upgraded), read, listed by id, removed; audited.
pub fn control_plugins_are_installed_listed_and_removed(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let plugin = |id: &str, version: &str| PluginRecord {
        id: id.into(),
        version: version.into(),
        content_hash: format!("sha256:{id}{version}"),
        capabilities: vec!["http:api.example".into()],
        installed_at: clock.now(),
        signer: Some("ProofPix".into()),
        key_id: None,
        previous_version: None,
        quarantined: None,
    };
    let before = mark(store);
    store.put_plugin(&plugin("slack", "0.1.0"), "op").unwrap();
    store.put_plugin(&plugin("box", "0.2.0"), "op").unwrap();
    let mut upgraded = plugin("slack", "0.2.0");
    upgraded.previous_version = Some("0.1.0".into());
    store.put_plugin(&upgraded, "op").unwrap();
    assert_eq!(store.plugin("slack").unwrap(), Some(upgraded.clone()));
    assert_eq!(store.plugin("nothing").unwrap(), None);
    let ids: Vec<String> = store.plugins().unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["box", "slack"]);
    assert!(store.remove_plugin("box", "op").unwrap());
    assert!(!store.remove_plugin("box", "op").unwrap());
    assert_eq!(store.plugins().unwrap(), [upgraded]);
    assert_eq!(
        actions_after(store, before),
        [
            "plugin.install",
            "plugin.install",
            "plugin.install",
            "plugin.remove"
        ]
    );
}

fn token_rec(name: &str, role: &str, now: OffsetDateTime) -> ApiTokenRecord {
    ApiTokenRecord {
        name: name.into(),
        role: role.into(),
        created_by: "bootstrap".into(),
        created_at: now,
    }
}

/// API tokens by their SHA-256 and the dashboard sessions opened with them: names stay
/// unique, a session lives until its expiry or its token's revocation or rotation.
pub fn control_api_tokens_and_sessions_end_together(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let before = mark(store);
    store
        .put_api_token("h-admin", &token_rec("admin", "admin", clock.now()), "op")
        .unwrap();
    assert!(
        store
            .create_api_token(
                "h-viewer",
                &token_rec("viewer", "viewer", clock.now()),
                "op"
            )
            .unwrap()
    );
    assert!(
        !store
            .create_api_token("h-other", &token_rec("viewer", "admin", clock.now()), "op")
            .unwrap(),
        "a name is not taken twice"
    );
    assert_eq!(store.api_token("h-other").unwrap(), None);
    assert_eq!(store.api_token("h-viewer").unwrap().unwrap().role, "viewer");
    let mut names: Vec<String> = store
        .api_tokens()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(names, ["admin", "viewer"]);

    let session = |token: &str, name: &str, secs: u64| SessionRecord {
        token_sha256: token.into(),
        token_name: name.into(),
        created_at: clock.now(),
        expires_at: clock.now() + Duration::from_secs(secs),
    };
    assert!(
        !store
            .put_session("s-ghost", &session("h-nobody", "x", 60))
            .unwrap(),
        "a session of no token is not opened"
    );
    assert!(
        store
            .put_session("s-1", &session("h-viewer", "viewer", 60))
            .unwrap()
    );
    assert!(
        store
            .put_session("s-2", &session("h-viewer", "viewer", 3600))
            .unwrap()
    );
    assert!(
        store
            .put_session("s-3", &session("h-admin", "admin", 3600))
            .unwrap()
    );
    let (s, t) = store.session("s-1").unwrap().unwrap();
    assert_eq!(
        (s.token_name.as_str(), t.role.as_str()),
        ("viewer", "viewer")
    );
    assert_eq!(store.session("s-ghost").unwrap(), None);
    assert_eq!(store.session_count().unwrap(), 3);

    clock.advance(Duration::from_secs(61));
    assert_eq!(store.session("s-1").unwrap(), None, "expired");
    assert_eq!(store.expire_sessions().unwrap(), 1);
    assert_eq!(store.session_count().unwrap(), 2);

    // Rotation: same name and role, the old secret and its sessions stop working.
    let rotated = store
        .rotate_api_token("viewer", "h-viewer-2", "op")
        .unwrap()
        .unwrap();
    assert_eq!(
        (rotated.name.as_str(), rotated.role.as_str()),
        ("viewer", "viewer")
    );
    assert_eq!(rotated.created_at, clock.now());
    assert_eq!(store.api_token("h-viewer").unwrap(), None);
    assert_eq!(store.api_token("h-viewer-2").unwrap(), Some(rotated));
    assert_eq!(store.session("s-2").unwrap(), None);
    assert_eq!(store.rotate_api_token("nobody", "h", "op").unwrap(), None);

    // Replacing a token by name ends the replaced token's sessions.
    store
        .put_api_token("h-admin-2", &token_rec("admin", "admin", clock.now()), "op")
        .unwrap();
    assert_eq!(store.api_token("h-admin").unwrap(), None);
    assert_eq!(store.session("s-3").unwrap(), None);

    assert!(
        store
            .put_session("s-4", &session("h-admin-2", "admin", 60))
            .unwrap()
    );
    assert!(store.delete_session("s-4").unwrap());
    assert!(!store.delete_session("s-4").unwrap());
    assert!(
        store
            .put_session("s-5", &session("h-admin-2", "admin", 60))
            .unwrap()
    );
    assert!(store.delete_api_token("admin", "op").unwrap());
    assert!(!store.delete_api_token("admin", "op").unwrap());
    assert_eq!(store.session("s-5").unwrap(), None);
    assert_eq!(store.session_count().unwrap(), 0);
    assert_eq!(
        actions_after(store, before),
        [
            "api-token.create",
            "api-token.create",
            "session.create",
            "session.create",
            "session.create",
            "api-token.rotate",
            "api-token.create",
            "session.create",
            "session.delete",
            "session.create",
            "api-token.delete",
        ]
    );
}

/// Settings are JSON text, read back as written; a change is audited with its value.
pub fn control_settings_read_back_and_are_audited(b: &mut Backend) {
    let store = b.store();
    assert_eq!(store.setting("retention").unwrap(), None);
    let before = mark(store);
    store
        .put_setting("retention", r#"{"days":30}"#, "op")
        .unwrap();
    store
        .put_setting("retention", r#"{"days":90}"#, "op")
        .unwrap();
    assert_eq!(
        store.setting("retention").unwrap().as_deref(),
        Some(r#"{"days":90}"#)
    );
    let entries = store.audit_entries(before + 1, 10).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].action, "settings.update");
    assert_eq!(entries[1].details, r#"{"days":90}"#);
}

/// Deleting an integration removes what it owned (secrets, tokens, its key-value
/// namespace, files, queue items of its own and stage queues, cursor, write-back records)
/// in one audited change; its results and batches go only with a purge of its history.
pub fn control_deleting_an_integration_removes_what_it_owned(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    store
        .put_integration(&integration_rec("src", clock.now()), "op")
        .unwrap();
    store
        .put_integration(&integration_rec("other", clock.now()), "op")
        .unwrap();
    store
        .set_secret("src", "password", &Secret::new("pw"), "op")
        .unwrap();
    store
        .set_secret("other", "password", &Secret::new("pw2"), "op")
        .unwrap();
    store
        .set_tokens(
            "src",
            &TokenSet {
                access_token: Secret::new("at"),
                refresh_token: None,
                expires_at: None,
                scope: None,
                context: Default::default(),
            },
            "op",
        )
        .unwrap();
    store.kv_set("src", "state", b"v", None).unwrap();
    store.kv_set("other", "state", b"v", None).unwrap();
    let batch = store.start_batch("src").unwrap();
    store
        .enqueue_page("src", &items(&["a@v1", "b@v1"]), Some("page-2"))
        .unwrap();
    let leases = store.claim("src", "w1", 1, LEASE).unwrap();
    let wb = stage_queue("src", Stage::WriteBack);
    store
        .record_group(&[Record::Done {
            lease: leases[0].clone(),
            file: file("a", clock.now()),
            result: Some(result("a")),
            outbox: vec![outbound(&wb, "a")],
        }])
        .unwrap();
    let mut key = wb_key();
    key.integration = "src".into();
    assert_eq!(store.begin_writeback(&key).unwrap(), Begin::Proceed);
    store.finish_batch(&batch, &[]).unwrap();
    let results_before = store.result_count().unwrap();
    assert_eq!(store.file_count("src").unwrap(), 1);

    let before = mark(store);
    let counts = store.delete_integration("src", "operator:ada").unwrap();
    assert_eq!(
        counts,
        DeletedCounts {
            secrets: 1,
            tokens: 1,
            kv_entries: 1,
            files: 1,
            queue_items: 2,
            writebacks: 1,
        }
    );
    assert_eq!(actions_after(store, before), ["integration.delete"]);
    assert_eq!(store.integration("src").unwrap(), None);
    assert!(store.secret("src", "password").unwrap().is_none());
    assert!(store.tokens("src").unwrap().is_none());
    assert_eq!(store.kv_get("src", "state").unwrap(), None);
    assert_eq!(store.file_count("src").unwrap(), 0);
    assert_eq!(store.cursor("src").unwrap(), None);
    assert_eq!(store.depth("src").unwrap(), QueueDepth::default());
    assert_eq!(store.depth(&wb).unwrap(), QueueDepth::default());
    assert_eq!(store.begin_writeback(&key).unwrap(), Begin::Proceed);
    // The other integration keeps everything.
    assert!(store.integration("other").unwrap().is_some());
    assert_eq!(
        store.secret("other", "password").unwrap().unwrap().expose(),
        "pw2"
    );
    assert!(store.kv_get("other", "state").unwrap().is_some());
    assert!(matches!(
        store.delete_integration("src", "op").unwrap_err(),
        StoreError::NoSuchIntegration(_)
    ));

    // History stays until purged.
    assert_eq!(store.result_count().unwrap(), results_before);
    assert_eq!(store.recent_batches(Some("src"), 10).unwrap().len(), 1);
    let purged = store.purge_integration_history("src", "op").unwrap();
    assert_eq!(
        purged,
        PurgedHistory {
            results: 1,
            batches: 1
        }
    );
    assert_eq!(store.result_count().unwrap(), results_before - 1);
    assert!(store.recent_batches(Some("src"), 10).unwrap().is_empty());
    assert_eq!(
        store.audit_latest(1).unwrap()[0].action,
        "integration.purge-history"
    );
}

/// A trend's read: the batches that started at or after a time, newest first, of one
/// integration or all, capped, each without its result ids (a big run's ids would be carried
/// for nothing) but with its counts and failures, which tell a failed run.
pub fn control_batches_since_read_down_to_the_first_older_run_without_result_ids(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let old = store.start_batch("a").unwrap();
    clock.advance(Duration::from_secs(3600));
    let since = clock.now();
    let mut b1 = store.start_batch("a").unwrap();
    b1.total = 2;
    b1.ok = 1;
    b1.errors = 1;
    b1.result_ids = vec![41, 42];
    b1.by_risk.insert("high".into(), 1);
    b1.failures.push(BatchFailure {
        remote_id: "x.jpg".into(),
        error: "unreadable".into(),
    });
    b1.finished_at = Some(clock.now());
    b1.duration = Some(Duration::from_millis(1500));
    store.put_batch(&b1).unwrap();
    clock.advance(Duration::from_secs(60));
    let b2 = store.start_batch("b").unwrap();
    let b3 = store.start_batch("a").unwrap();
    let ids = |v: Vec<BatchRecord>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.batches_since(None, since, 10).unwrap()),
        [b3.id, b2.id, b1.id],
        "the run before `since` is left out"
    );
    assert_eq!(
        ids(store.batches_since(Some("a"), since, 10).unwrap()),
        [b3.id, b1.id]
    );
    assert_eq!(
        ids(store.batches_since(None, since, 2).unwrap()),
        [b3.id, b2.id]
    );
    assert_eq!(
        ids(store.batches_since(Some("a"), T0, 10).unwrap()),
        [b3.id, b1.id, old.id],
        "from the start of time, every run"
    );
    assert!(
        store
            .batches_since(None, clock.now() + Duration::from_secs(1), 10)
            .unwrap()
            .is_empty()
    );
    let read = store
        .batches_since(Some("a"), since, 10)
        .unwrap()
        .pop()
        .unwrap();
    let mut want = b1.clone();
    want.result_ids.clear();
    assert_eq!(
        read, want,
        "counts, timings and failures kept; result ids left out"
    );
}

/// Batches newest first (of one integration or all), saved progress read back; file records
/// paged in remote id order.
pub fn control_batches_and_file_pages(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let b1 = store.start_batch("a").unwrap();
    let b2 = store.start_batch("b").unwrap();
    let mut b3 = store.start_batch("a").unwrap();
    b3.total = 7;
    b3.finished_at = Some(clock.now());
    store.put_batch(&b3).unwrap();
    let ids = |v: Vec<BatchRecord>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(ids(store.recent_batches(None, 2).unwrap()), [b3.id, b2.id]);
    assert_eq!(
        ids(store.recent_batches(Some("a"), 10).unwrap()),
        [b3.id, b1.id]
    );
    assert_eq!(store.recent_batches(None, 10).unwrap()[0], b3);
    assert_eq!(store.batch(b3.id).unwrap(), Some(b3));

    for id in ["c", "a", "b", "d", "e"] {
        store.put_file(&file(id, clock.now())).unwrap();
    }
    let mut other = file("a", clock.now());
    other.integration = "zzz".into();
    store.put_file(&other).unwrap();
    let page = |after: Option<&str>| -> Vec<String> {
        store
            .files("src", after, 2)
            .unwrap()
            .into_iter()
            .map(|f| f.remote_id)
            .collect()
    };
    assert_eq!(page(None), ["a", "b"]);
    assert_eq!(page(Some("b")), ["c", "d"]);
    assert_eq!(page(Some("d")), ["e"]);
    assert_eq!(
        store.files("src", None, 1).unwrap()[0],
        file("a", clock.now())
    );
    assert_eq!(store.file_count("src").unwrap(), 5);
    assert_eq!(store.file_count("zzz").unwrap(), 1);
}

/// The audit chain verifies, and lists and exports the same entries.
pub fn control_the_audit_chain_verifies_lists_and_exports(b: &mut Backend) {
    let store = b.store();
    let first = mark(store);
    for i in 0..5 {
        store
            .audit(&AuditEvent::new("daemon", "sync.start", format!("i{i}")).outcome("ok"))
            .unwrap();
    }
    let report = store.audit_verify().unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.head_authenticated);
    assert_eq!(report.last_seq, Some(first + 5));
    assert_eq!(
        report.genesis.as_ref().map(|g| g.kind.as_str()),
        Some("created")
    );
    let latest = store.audit_latest(2).unwrap();
    assert_eq!(
        latest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [first + 5, first + 4]
    );
    let from = store.audit_entries(first + 1, 2).unwrap();
    assert_eq!(
        from.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["i0", "i1"]
    );
    let mut out = Vec::new();
    let n = store.audit_export(&mut out).unwrap();
    assert_eq!(n, first + 5);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n);
    let last = lines.last().unwrap();
    assert_eq!(last["target"], "i4");
    let hex: String = latest[0].hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(last["hash"], hex.as_str());
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
}

/// The inventory: files with their latest results, filtered, sorted and paged with a
/// keyset cursor that neither repeats nor skips a row.
pub fn control_the_inventory_filters_sorts_and_pages(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let specs = [
        (
            "a",
            "Beach.JPG",
            "high",
            80,
            r#"{"findings":[{"category":"location"},{"category":"device"}]}"#,
        ),
        ("b", "cat.png", "low", 10, r#"{"findings":[]}"#),
        (
            "c",
            "Dog.jpg",
            "critical",
            95,
            r#"{"findings":[{"category":"person"}]}"#,
        ),
        (
            "d",
            "beach-2.jpg",
            "high",
            70,
            r#"{"findings":[{"category":"location"}]}"#,
        ),
    ];
    let ids: Vec<&str> = specs.iter().map(|s| s.0).collect();
    let leases = enqueue(store, &ids);
    let mut records = Vec::new();
    for (lease, (id, name, risk, score, report)) in leases.into_iter().zip(specs) {
        let mut f = file(id, clock.now());
        f.name = name.into();
        // The plugin's link, kept as listed (any scheme: checking it is the renderer's job).
        f.web_url = Some(format!("https://files.example/{id}?a=1&b=\"2\""));
        records.push(Record::Done {
            lease,
            file: f,
            result: Some(NewResult {
                risk: risk.parse().expect("a risk level"),
                score,
                report_json: report.into(),
                ..result(id)
            }),
            outbox: vec![],
        });
        clock.advance(Duration::from_secs(1));
    }
    store.record_group(&records).unwrap();
    // A file never analysed.
    let mut pending = file("e", clock.now());
    pending.status = FileStatus::Pending;
    pending.name = "new.jpg".into();
    store.put_file(&pending).unwrap();

    let query = |f: &dyn Fn(&mut InventoryQuery)| {
        let mut q = InventoryQuery {
            limit: 100,
            sort: InventorySort::Key,
            ..InventoryQuery::default()
        };
        f(&mut q);
        store.inventory(&q).unwrap()
    };
    let ids_of = |p: &InventoryPage| {
        p.rows
            .iter()
            .map(|r| r.remote_id.clone())
            .collect::<Vec<_>>()
    };

    // Risk, highest first; the unanalysed file last.
    let all = query(&|q| {
        q.sort = InventorySort::Risk;
        q.descending = true;
    });
    assert_eq!(ids_of(&all), ["c", "a", "d", "b", "e"]);
    assert_eq!(all.next, None);
    let a = &all.rows[1];
    assert_eq!(
        (a.risk.map(|r| r.as_str()), a.score, a.name.as_str()),
        (Some("high"), Some(80), "Beach.JPG")
    );
    assert_eq!(a.categories, ["device", "location"]);
    assert!(a.result_id.is_some() && a.analysed_at.is_some());
    assert_eq!(
        a.web_url.as_deref(),
        Some("https://files.example/a?a=1&b=\"2\"")
    );
    assert_eq!(all.rows[4].risk, None);

    // The same order, two rows a page.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = query(&|q| {
            q.sort = InventorySort::Risk;
            q.descending = true;
            q.limit = 2;
            q.after = after.clone();
        });
        seen.extend(ids_of(&page));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["c", "a", "d", "b", "e"]);

    // Name order (byte order: capitals first), ascending.
    assert_eq!(
        ids_of(&query(&|q| q.sort = InventorySort::Name)),
        ["a", "c", "d", "b", "e"]
    );
    // Key order pages.
    let first = query(&|q| {
        q.sort = InventorySort::Key;
        q.limit = 3;
    });
    assert_eq!(ids_of(&first), ["a", "b", "c"]);
    let rest = query(&|q| {
        q.sort = InventorySort::Key;
        q.limit = 3;
        q.after = first.next.clone();
    });
    assert_eq!(ids_of(&rest), ["d", "e"]);
    assert_eq!(rest.next, None);
    // Analysis time, newest first.
    assert_eq!(
        ids_of(&query(&|q| {
            q.sort = InventorySort::AnalysedAt;
            q.descending = true;
        })),
        ["d", "c", "b", "a", "e"],
        "one group: one analysis time, then the identity order (reversed too)"
    );

    // Filters.
    assert_eq!(
        ids_of(&query(&|q| q.search = Some("BEACH".into()))),
        ["a", "d"]
    );
    assert_eq!(
        ids_of(&query(&|q| q.risks = vec![
            proofpix_store::RiskLevel::High,
            proofpix_store::RiskLevel::Critical
        ])),
        ["a", "c", "d"]
    );
    assert_eq!(
        ids_of(&query(&|q| q.category = Some("location".into()))),
        ["a", "d"]
    );
    assert_eq!(
        ids_of(&query(&|q| q.statuses = vec![FileStatus::Pending])),
        ["e"]
    );
    assert_eq!(
        ids_of(&query(&|q| q.integrations = vec!["elsewhere".into()])),
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(&query(&|q| {
            q.analysed_from = Some(clock.now() - Duration::from_secs(3600));
            q.analysed_to = Some(clock.now() + Duration::from_secs(3600));
        })),
        ["a", "b", "c", "d"]
    );
}

/// Forgetting an integration's write-backs lets finished ones be written again; intents
/// (in flight, or uncertain after a crash) keep guarding theirs.
pub fn control_forgetting_write_backs_keeps_intents(b: &mut Backend) {
    let store = b.store();
    let done = wb_key();
    let mut in_flight = wb_key();
    in_flight.remote_id = "068B".into();
    assert_eq!(store.begin_writeback(&done).unwrap(), Begin::Proceed);
    store
        .complete_writeback(&done, &Completion::Written)
        .unwrap();
    assert_eq!(store.begin_writeback(&in_flight).unwrap(), Begin::Proceed);
    assert_eq!(store.forget_writebacks("sf-prod").unwrap(), 1);
    assert_eq!(store.forget_writebacks("sf-prod").unwrap(), 0);
    assert_eq!(store.begin_writeback(&done).unwrap(), Begin::Proceed);
    assert_ne!(store.begin_writeback(&in_flight).unwrap(), Begin::Proceed);
}

/// Leases past their expiry are counted and their items claimable again at once (each
/// alone, as an item that lost its worker is).
pub fn control_expired_leases_are_released(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    store.enqueue("q", &items(&["a", "b"])).unwrap();
    assert_eq!(store.claim("q", "dead-node", 2, LEASE).unwrap().len(), 2);
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(store.expire_leases().unwrap(), 2);
    let mut claimed: Vec<String> = Vec::new();
    for _ in 0..2 {
        claimed.extend(
            store
                .claim("q", "w2", 10, LEASE)
                .unwrap()
                .into_iter()
                .map(|l| l.dedup_key),
        );
    }
    claimed.sort();
    assert_eq!(claimed, ["a", "b"]);
}

/// One node at a time holds an integration's sync lease: renewed by its holder, taken over
/// once it expires, released only by its holder; integrations are independent.
pub fn control_one_node_holds_an_integrations_sync_lease(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    let ttl = Duration::from_secs(60);
    assert!(store.try_acquire_sync("sf", "node-1", ttl).unwrap());
    assert!(!store.try_acquire_sync("sf", "node-2", ttl).unwrap());
    assert!(
        store.try_acquire_sync("box", "node-2", ttl).unwrap(),
        "another integration"
    );
    clock.advance(Duration::from_secs(50));
    assert!(
        store.try_acquire_sync("sf", "node-1", ttl).unwrap(),
        "renewed"
    );
    clock.advance(Duration::from_secs(50));
    assert!(
        !store.try_acquire_sync("sf", "node-2", ttl).unwrap(),
        "the renewal runs 60 s from its own time"
    );
    clock.advance(Duration::from_secs(11));
    assert!(
        store.try_acquire_sync("sf", "node-2", ttl).unwrap(),
        "expired: taken over"
    );
    assert!(!store.try_acquire_sync("sf", "node-1", ttl).unwrap());
    assert!(
        !store.release_sync("sf", "node-1").unwrap(),
        "not node-1's any more"
    );
    assert!(!store.try_acquire_sync("sf", "node-1", ttl).unwrap());
    assert!(store.release_sync("sf", "node-2").unwrap());
    assert!(!store.release_sync("sf", "node-2").unwrap());
    assert!(store.try_acquire_sync("sf", "node-1", ttl).unwrap());
}

/// A schedule's next firing is a compare-and-set: of two schedulers that saw the same due
/// time, one advances it (and fires); the other's stale `expected` is refused. Forgetting
/// works the same way, and integrations are independent.
pub fn control_a_schedule_advances_once_for_one_due_time(b: &mut Backend) {
    let (store, clock) = (b.store(), &b.clock);
    // Whole seconds: PostgreSQL keeps milliseconds.
    let t0 = time::OffsetDateTime::from_unix_timestamp(clock.now().unix_timestamp()).unwrap();
    let t1 = t0 + Duration::from_secs(900);
    let t2 = t1 + Duration::from_secs(900);
    assert_eq!(store.schedule_next("sf").unwrap(), None);
    assert!(
        store.advance_schedule("sf", None, Some(t1)).unwrap(),
        "planned"
    );
    assert!(
        !store.advance_schedule("sf", None, Some(t2)).unwrap(),
        "planned by another node already"
    );
    assert_eq!(store.schedule_next("sf").unwrap(), Some(t1));
    assert!(
        store.advance_schedule("sf", Some(t1), Some(t2)).unwrap(),
        "fired"
    );
    assert!(
        !store.advance_schedule("sf", Some(t1), Some(t2)).unwrap(),
        "the same due time fires once"
    );
    assert_eq!(store.schedule_next("sf").unwrap(), Some(t2));
    assert_eq!(
        store.schedule_next("box").unwrap(),
        None,
        "another integration"
    );
    assert!(
        !store.advance_schedule("sf", Some(t1), None).unwrap(),
        "stale"
    );
    assert!(
        store.advance_schedule("sf", Some(t2), None).unwrap(),
        "forgotten"
    );
    assert_eq!(store.schedule_next("sf").unwrap(), None);
}
