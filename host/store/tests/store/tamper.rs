//! Flipping bytes of the store file: every flip is detected, or provably changed nothing.
//!
//! A flip lands in one of: a live B-tree page or a header (redb's full check at open refuses
//! the file, and `Store::check` runs the same check on demand), a record's bytes (the audit
//! chain or the AEAD tag catches it even when redb's checksums were recomputed), or free
//! space / a stale page copy (nothing reads it). The test sweeps positions across the whole
//! file and classifies each flip; the failing classes are "silently changed" (the store
//! opens, every check passes, and the data read back differs from what was written) and
//! "panicked".
//!
//! Regression: with redb's check at open switched off, a flip inside a table's name in
//! redb's table directory made that table come back empty: the store's first write
//! transaction re-created the "missing" table and rewrote the damaged page with a fresh
//! checksum, so no later check could see it. Hence the check at open (on by default) and
//! the refusal to open an existing store with a missing table.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proofpix_store::*;
use proofpix_vault::MasterKey;
use redb::ReadableTable;

use crate::common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    RefusedAtOpen,
    RedbChecksum,
    RedbRepaired,
    AuditChain,
    RecordOrAead,
    ReadError,
    Panicked,
    Harmless,
    SilentlyChanged,
}

fn classify(dir: &std::path::Path, key: &MasterKey, clock: &TestClock, original: &str) -> Outcome {
    let run = || {
        let mut store = match Store::open_with(dir, key, clock.options()) {
            Ok(s) => s,
            Err(_) => return Outcome::RefusedAtOpen,
        };
        let report = match store.check() {
            Ok(r) => r,
            Err(_) => return Outcome::RedbChecksum,
        };
        if !report.database_intact {
            return Outcome::RedbRepaired;
        }
        if !report.audit.is_ok() {
            return Outcome::AuditChain;
        }
        if !report.problems.is_empty() {
            return Outcome::RecordOrAead;
        }
        match dump(&store) {
            Err(_) => Outcome::ReadError,
            Ok(d) if d == original => Outcome::Harmless,
            Ok(d) => {
                if let Some((a, b)) = original.lines().zip(d.lines()).find(|(a, b)| a != b) {
                    eprintln!("silently changed:\n  was {a}\n  now {b}");
                }
                Outcome::SilentlyChanged
            }
        }
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or(Outcome::Panicked)
}

fn build() -> (tempfile::TempDir, MasterKey, TestClock, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let original = {
        let store = open(dir.path(), &key, &clock);
        populate(&store);
        dump(&store).unwrap()
    };
    let bytes = std::fs::read(dir.path().join(STORE_FILE_NAME)).unwrap();
    (dir, key, clock, original, bytes)
}

fn flip_at(
    bytes: &[u8],
    positions: &[usize],
    key: &MasterKey,
    clock: &TestClock,
    original: &str,
) -> BTreeMap<Outcome, Vec<usize>> {
    let mut tally: BTreeMap<Outcome, Vec<usize>> = BTreeMap::new();
    // Panics inside redb on a damaged file are caught and classified; keep their noise out.
    let hook = std::panic::take_hook();
    if std::env::var_os("PROOFPIX_TAMPER_SHOW_PANICS").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    for &pos in positions {
        let tmp = tempfile::tempdir().unwrap();
        let mut copy = bytes.to_vec();
        copy[pos] ^= 0x5a;
        std::fs::write(tmp.path().join(STORE_FILE_NAME), &copy).unwrap();
        let outcome = classify(tmp.path(), key, clock, original);
        tally.entry(outcome).or_default().push(pos);
    }
    std::panic::set_hook(hook);
    tally
}

fn summary(tally: &BTreeMap<Outcome, Vec<usize>>) -> String {
    tally
        .iter()
        .map(|(o, v)| format!("{o:?}: {}", v.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn flipping_a_byte_anywhere_in_the_store_is_detected_or_changes_nothing() {
    let (_dir, key, clock, original, bytes) = build();
    let samples = std::env::var("PROOFPIX_TAMPER_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400usize);
    let step = (bytes.len() / samples).max(1);
    // An odd offset inside each step so the samples do not all hit page boundaries.
    let positions: Vec<usize> = match std::env::var("PROOFPIX_TAMPER_POSITIONS") {
        // Replays given offsets, e.g. from a failure message.
        Ok(list) => list.split(',').map(|p| p.trim().parse().unwrap()).collect(),
        Err(_) => (0..bytes.len())
            .step_by(step)
            .map(|p| (p + 37 * (p / step) % step).min(bytes.len() - 1))
            .collect(),
    };
    let tally = flip_at(&bytes, &positions, &key, &clock, &original);
    eprintln!("byte flips over {} bytes: {}", bytes.len(), summary(&tally));
    assert!(
        !tally.contains_key(&Outcome::SilentlyChanged),
        "flips at {:?} changed data without any check noticing",
        tally[&Outcome::SilentlyChanged]
    );
    assert!(
        !tally.contains_key(&Outcome::Panicked),
        "flips at {:?} panicked",
        tally.get(&Outcome::Panicked)
    );
}

/// Every byte of every stored copy of a secret's sealed bytes and of an audit entry: each
/// live copy must be caught (by redb's checksums first; the AEAD and the chain catch it too
/// when redb's check is skipped, see the next test).
#[test]
fn flipping_a_byte_of_a_sealed_secret_or_an_audit_entry_is_detected() {
    let (_dir, key, clock, original, bytes) = build();
    let marker = b"operator:ada";
    let mut positions: Vec<usize> = bytes
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i + 3)
        .collect();
    // The sealed secrets start with the format byte and a random nonce; find them through
    // redb itself.
    let sealed = {
        let db = redb::Database::open(_dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        let t = txn.open_table(schema::SECRETS).unwrap();
        t.get(("sf-prod", "client_secret"))
            .unwrap()
            .unwrap()
            .value()
            .to_vec()
    };
    positions.extend(
        bytes
            .windows(sealed.len())
            .enumerate()
            .filter(|(_, w)| *w == sealed.as_slice())
            .map(|(i, _)| i + 30),
    );
    assert!(positions.len() >= 2);
    let tally = flip_at(&bytes, &positions, &key, &clock, &original);
    eprintln!("targeted flips: {}", summary(&tally));
    assert!(!tally.contains_key(&Outcome::SilentlyChanged), "{tally:?}");
    assert!(
        tally.keys().any(|o| *o != Outcome::Harmless),
        "at least the live copies must be detected: {tally:?}"
    );
}

/// Without redb's page checksums (someone recomputed them), our own layers still catch an
/// altered sealed value: the AEAD tag does not verify.
#[test]
fn a_sealed_value_altered_with_valid_redb_checksums_fails_its_aead_tag() {
    let (dir, key, clock, _original, _bytes) = build();
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(schema::SECRETS).unwrap();
            let mut v = t
                .get(("sf-prod", "client_secret"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let last = v.len() - 1;
            v[last] ^= 1;
            t.insert(("sf-prod", "client_secret"), v.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let mut store = open(dir.path(), &key, &clock);
    let report = store.check().unwrap();
    assert!(report.database_intact && report.audit.is_ok());
    assert_eq!(
        report.problems,
        vec!["cannot open the sealed 'secret/client_secret' of integration 'sf-prod': it was sealed under another master key or for another record, or it was altered".to_string()]
    );
}
