//! The audit chain: verification, tampering through raw redb writes, export, retention.

use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;
use redb::ReadableTable;

use crate::common::*;

fn store_with_entries(n: usize) -> (tempfile::TempDir, MasterKey, TestClock) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let store = open(dir.path(), &key, &clock);
    for i in 0..n {
        clock.advance(Duration::from_secs(60));
        store
            .audit(
                &AuditEvent::new("operator:ada", "integration.sync", format!("int-{i}"))
                    .details(serde_json::json!({ "files": i })),
            )
            .unwrap();
    }
    (dir, key, clock)
}

/// Runs `f` on the raw redb file with the store closed.
fn raw(dir: &std::path::Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(dir.join(STORE_FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

fn read_entry(t: &redb::Table<u64, &[u8]>, seq: u64) -> AuditEntry {
    let bytes = t.get(seq).unwrap().unwrap().value().to_vec();
    assert_eq!(bytes[0], 1, "format byte");
    postcard::from_bytes(&bytes[1..]).unwrap()
}

fn write_entry(t: &mut redb::Table<u64, &[u8]>, seq: u64, e: &AuditEntry) {
    let mut bytes = vec![1u8];
    bytes.extend(postcard::to_stdvec(e).unwrap());
    t.insert(seq, bytes.as_slice()).unwrap();
}

fn verify(dir: &std::path::Path, key: &MasterKey, clock: &TestClock) -> VerifyReport {
    open(dir, key, clock).audit_verify().unwrap()
}

#[test]
fn an_untouched_chain_verifies() {
    let (dir, key, clock) = store_with_entries(10);
    let r = verify(dir.path(), &key, &clock);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        (r.entries, r.first_seq, r.last_seq),
        (11, Some(1), Some(11))
    );
    assert!(r.head_authenticated);
}

#[test]
fn an_edited_audit_entry_is_detected_at_its_seq() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let mut e = read_entry(&t, 5);
        e.actor = "operator:mallory".into();
        write_entry(&mut t, 5, &e);
    });
    let r = verify(dir.path(), &key, &clock);
    assert_eq!(r.problem, Some(AuditProblem::Edited(5)));
    assert_eq!(
        r.problem.unwrap().to_string(),
        "audit entry 5 was edited (its hash does not follow from the entry before it)"
    );
}

#[test]
fn an_edit_with_a_recomputed_hash_is_caught_by_the_next_entry() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let prev = read_entry(&t, 4).hash;
        let mut e = read_entry(&t, 5);
        e.outcome = "denied".into();
        e.hash = recompute(&prev, &e);
        write_entry(&mut t, 5, &e);
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::Edited(6))
    );
}

/// Rewriting every hash from the edit on makes the chain self-consistent; only the MAC over
/// the head, which needs the master key, catches that.
#[test]
fn a_fully_rewritten_chain_fails_the_head_mac() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let mut prev = read_entry(&t, 4).hash;
        for seq in 5..=11 {
            let mut e = read_entry(&t, seq);
            if seq == 5 {
                e.target = "int-hidden".into();
            }
            e.hash = recompute(&prev, &e);
            prev = e.hash;
            write_entry(&mut t, seq, &e);
        }
        // Point the head at the rewritten chain (the MAC cannot be recomputed without the key).
        let mut m = txn.open_table(schema::META).unwrap();
        let mut head = m.get("audit.head").unwrap().unwrap().value().to_vec();
        head[8..40].copy_from_slice(&prev);
        m.insert("audit.head", head.as_slice()).unwrap();
    });
    let r = verify(dir.path(), &key, &clock);
    assert!(!r.head_authenticated);
    assert_eq!(r.problem, Some(AuditProblem::HeadNotAuthenticated));
}

#[test]
fn a_removed_entry_is_detected() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        txn.open_table(schema::AUDIT).unwrap().remove(7).unwrap();
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::Removed(7))
    );
}

#[test]
fn cutting_off_the_newest_entries_is_detected() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        t.remove(11).unwrap();
        t.remove(10).unwrap();
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::Truncated { found: 9, head: 11 })
    );
}

#[test]
fn swapped_entries_are_detected() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let a = t.get(3).unwrap().unwrap().value().to_vec();
        let b = t.get(4).unwrap().unwrap().value().to_vec();
        t.insert(3, b.as_slice()).unwrap();
        t.insert(4, a.as_slice()).unwrap();
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::Reordered(3))
    );
}

#[test]
fn export_writes_one_json_object_per_entry_with_verifiable_hashes() {
    let (dir, key, clock) = store_with_entries(3);
    let store = open(dir.path(), &key, &clock);
    let mut out = Vec::new();
    assert_eq!(store.audit_export(&mut out).unwrap(), 4);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["action"], "store.create");
    assert_eq!(lines[0]["prev_hash"], "0".repeat(64));
    assert_eq!(lines[2]["details"]["files"], 1);
    assert_eq!(lines[2]["time"], "2026-01-05T09:02:00Z");
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
}

#[test]
fn retention_compaction_keeps_the_chain_verifiable_and_edits_after_it_detectable() {
    let (dir, key, clock) = store_with_entries(20);
    let store = open(dir.path(), &key, &clock);
    let retention = Retention {
        audit: Some(Duration::from_secs(10 * 60)),
        ..Retention::default()
    };
    let report = store.compact(&retention, clock.now(), "daemon").unwrap();
    assert_eq!(
        report.audit_entries, 10,
        "entries 1..=10 are older than 10 minutes"
    );
    let r = store.audit_verify().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!((r.first_seq, r.checkpoints), (Some(11), 1));
    // A second compaction chains a second checkpoint.
    clock.advance(Duration::from_secs(3600));
    store
        .audit(&AuditEvent::new("daemon", "tick", "store"))
        .unwrap();
    store.compact(&retention, clock.now(), "daemon").unwrap();
    let r = store.audit_verify().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.checkpoints, 2);
    let last = r.last_seq.unwrap();
    drop(store);

    raw(dir.path(), |txn| {
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let mut e = read_entry(&t, last);
        e.details = "{}".into();
        write_entry(&mut t, last, &e);
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::Edited(last))
    );
}

#[test]
fn a_forged_checkpoint_hiding_old_entries_is_detected() {
    let (dir, key, clock) = store_with_entries(10);
    raw(dir.path(), |txn| {
        // Delete entries 1..=5 and forge the checkpoint compaction would have written, then
        // point the head at it. Only the head MAC (needs the master key) is left to catch it.
        let mut t = txn.open_table(schema::AUDIT).unwrap();
        let entry_hash = read_entry(&t, 5).hash;
        for seq in 1..=5 {
            t.remove(seq).unwrap();
        }
        let time = "2026-01-05T10:00:00Z".to_string();
        let cp_hash: [u8; 32] = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(b"proofpix-audit-checkpoint-v1\n");
            h.update([0u8; 32]);
            h.update(5u64.to_be_bytes());
            h.update(entry_hash);
            h.update((time.len() as u64).to_be_bytes());
            h.update(time.as_bytes());
            h.finalize().into()
        };
        let mut row = vec![1u8];
        row.extend(postcard::to_stdvec(&(5u64, entry_hash, [0u8; 32], time, cp_hash)).unwrap());
        txn.open_table(schema::AUDIT_CHECKPOINTS)
            .unwrap()
            .insert(5, row.as_slice())
            .unwrap();
        let mut m = txn.open_table(schema::META).unwrap();
        let mut head = m.get("audit.head").unwrap().unwrap().value().to_vec();
        head[40..72].copy_from_slice(&cp_hash);
        m.insert("audit.head", head.as_slice()).unwrap();
    });
    let r = verify(dir.path(), &key, &clock);
    assert_eq!(
        (r.checkpoints, r.first_seq),
        (1, Some(6)),
        "the forgery is self-consistent"
    );
    assert_eq!(r.problem, Some(AuditProblem::HeadNotAuthenticated));
}

#[test]
fn retention_removes_old_results_and_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    populate(&store);
    clock.advance(Duration::from_secs(40 * 86400));
    let fresh = store.add_result(result("sf-prod", "new", "v1")).unwrap();
    let retention = Retention {
        results: Some(Duration::from_secs(30 * 86400)),
        batches: Some(Duration::from_secs(30 * 86400)),
        audit: None,
    };
    let report = store.compact(&retention, clock.now(), "daemon").unwrap();
    assert_eq!(
        report,
        CompactReport {
            results: 5,
            batches: 1,
            audit_entries: 0
        }
    );
    assert_eq!(store.result_count().unwrap(), 1);
    assert!(store.result(fresh).unwrap().is_some());
    assert_eq!(
        store.file_count("sf-prod").unwrap(),
        20,
        "file records are not subject to retention"
    );
    assert!(store.audit_verify().unwrap().is_ok());
}

fn recompute(prev: &[u8; 32], e: &AuditEntry) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut c = b"proofpix-audit-v1\n".to_vec();
    c.extend_from_slice(&e.seq.to_be_bytes());
    for part in [
        &e.time, &e.actor, &e.action, &e.target, &e.outcome, &e.details,
    ] {
        c.extend_from_slice(&(part.len() as u64).to_be_bytes());
        c.extend_from_slice(part.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&c);
    h.finalize().into()
}

/// The attack from issue 11: delete every entry, the head and its MAC, and the log used to
/// verify as "intact, 0 entries". A store carries a MACed genesis marker from creation, and
/// verification fails closed without the head or the marker.
#[test]
fn deleting_every_entry_and_the_head_is_detected() {
    let (dir, key, clock) = store_with_entries(10);
    let wipe = |also_genesis: bool| {
        raw(dir.path(), |txn| {
            let mut t = txn.open_table(schema::AUDIT).unwrap();
            let seqs: Vec<u64> = t.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
            for seq in seqs {
                t.remove(seq).unwrap();
            }
            let mut m = txn.open_table(schema::META).unwrap();
            m.remove("audit.head").unwrap();
            m.remove("audit.head_mac").unwrap();
            if also_genesis {
                m.remove("audit.genesis").unwrap();
                m.remove("audit.genesis_mac").unwrap();
            }
        });
    };
    let r = verify(dir.path(), &key, &clock);
    assert!(r.is_ok(), "{r}");
    assert!(
        r.to_string()
            .contains("complete since the store was created"),
        "{r}"
    );

    wipe(false);
    let r = verify(dir.path(), &key, &clock);
    assert_eq!(r.problem, Some(AuditProblem::HeadMissing), "{r}");
    assert!(!r.is_ok());

    // Deleting the marker too: opening the store must not bless the empty log with a new
    // marker (there is no genuine head to vouch for it), so it fails, open after open.
    wipe(true);
    let r = verify(dir.path(), &key, &clock);
    assert_eq!(r.problem, Some(AuditProblem::GenesisMissing), "{r}");
    let r = verify(dir.path(), &key, &clock);
    assert_eq!(r.problem, Some(AuditProblem::GenesisMissing), "{r}");
}

/// A marker whose MAC was not made with the master key is not accepted.
#[test]
fn a_genesis_marker_without_the_key_s_mac_fails() {
    let (dir, key, clock) = store_with_entries(3);
    raw(dir.path(), |txn| {
        let mut m = txn.open_table(schema::META).unwrap();
        m.insert("audit.genesis_mac", [0u8; 32].as_slice()).unwrap();
    });
    assert_eq!(
        verify(dir.path(), &key, &clock).problem,
        Some(AuditProblem::GenesisMissing)
    );
}

/// A store from before genesis markers (no marker, a genuine head) gets one at its next open,
/// recorded as a migration with an audit entry, and verifies.
#[test]
fn a_store_without_a_marker_but_with_a_genuine_head_is_migrated() {
    let (dir, key, clock) = store_with_entries(3);
    raw(dir.path(), |txn| {
        let mut m = txn.open_table(schema::META).unwrap();
        m.remove("audit.genesis").unwrap();
        m.remove("audit.genesis_mac").unwrap();
    });
    let r = verify(dir.path(), &key, &clock);
    assert!(r.is_ok(), "{r}");
    let g = r.genesis.clone().unwrap();
    assert_eq!((g.kind.as_str(), g.seq), ("migrated", 4));
    assert!(
        r.to_string().contains("since the genesis marker was added"),
        "{r}"
    );
    let latest = open(dir.path(), &key, &clock).audit_latest(1).unwrap();
    assert_eq!(latest[0].action, "audit.genesis");
}
