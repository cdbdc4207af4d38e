//! The staged pipeline's operations on the embedded store: the conformance suite
//! (`conformance.rs`, shared with the PostgreSQL store) on redb, and what only redb has.

use proofpix_store::*;
use proofpix_vault::MasterKey;

use crate::common::{TestClock, integration, open};
use crate::conformance::{Backend, enqueue, file, outbound, result};

/// The embedded store (redb) in a temporary directory; a restart reopens the same file.
fn redb_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let key = MasterKey::generate();
    let path = dir.path().to_path_buf();
    let options = clock.options();
    Backend::new(
        clock,
        Box::new(move || {
            Box::new(Store::open_with(&path, &key, options.clone()).unwrap())
                as Box<dyn proofpix_store::Backend>
        }),
        Box::new(dir),
    )
}

mod redb {
    crate::stage_store_conformance!(super::redb_backend);
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
