//! Model-based test of the work queue: random operation sequences are applied to the store
//! and to a plain in-memory model, and after each sequence the depths agree and every
//! cross-table invariant of `Store::check` holds.

use std::collections::BTreeMap;
use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;
use proptest::prelude::*;

use crate::common::*;

#[derive(Debug, Clone)]
enum Op {
    Enqueue(u8),
    Claim(u8),
    Ack(u8),
    Nack(u8),
    Park(u8),
    Requeue(u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12).prop_map(Op::Enqueue),
        3 => (1u8..4).prop_map(Op::Claim),
        2 => any::<u8>().prop_map(Op::Ack),
        2 => any::<u8>().prop_map(Op::Nack),
        1 => any::<u8>().prop_map(Op::Park),
        1 => any::<u8>().prop_map(Op::Requeue),
        2 => (1u16..200).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    Parked,
}

/// 48 cases by default (a few seconds); `PROOFPIX_MODEL_CASES` for more.
fn cases() -> u32 {
    std::env::var("PROOFPIX_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_queue_matches_a_simple_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new();
        let mut store = open(dir.path(), &MasterKey::generate(), &clock);
        let mut model: BTreeMap<String, (u64, State)> = BTreeMap::new();
        let mut leases: Vec<Lease> = Vec::new();
        let lease_for = Duration::from_secs(60);
        for op in ops {
            match op {
                Op::Enqueue(k) => {
                    let key = format!("item-{k}");
                    let out = store.enqueue("i", &[NewItem { dedup_key: key.clone(), payload: vec![k] }]).unwrap();
                    match (model.get(&key), out[0]) {
                        (None, Enqueued::New(id)) => { model.insert(key, (id, State::Pending)); }
                        (Some((id, _)), Enqueued::Duplicate(dup)) => prop_assert_eq!(*id, dup),
                        (m, o) => prop_assert!(false, "model {:?} vs store {:?}", m, o),
                    }
                }
                Op::Claim(n) => {
                    for l in store.claim("i", "w", n as usize, lease_for).unwrap() {
                        prop_assert!(model.contains_key(&l.dedup_key));
                        leases.retain(|old| old.item != l.item);
                        leases.push(l);
                    }
                    // Items parked because their lease expired too often.
                    for p in store.parked("i", usize::MAX).unwrap() {
                        model.insert(p.dedup_key.clone(), (p.item, State::Parked));
                        leases.retain(|l| l.item != p.item);
                    }
                }
                Op::Ack(i) if !leases.is_empty() => {
                    let l = leases.remove(i as usize % leases.len());
                    store.ack(&l).unwrap();
                    model.remove(&l.dedup_key);
                }
                Op::Nack(i) if !leases.is_empty() => {
                    let l = leases.remove(i as usize % leases.len());
                    if store.nack(&l, clock.now() + Duration::from_secs(5), "retry").unwrap() == Nacked::Parked {
                        model.insert(l.dedup_key.clone(), (l.item, State::Parked));
                    }
                }
                Op::Park(i) if !leases.is_empty() => {
                    let l = leases.remove(i as usize % leases.len());
                    store.park(&l, "permanent").unwrap();
                    model.insert(l.dedup_key.clone(), (l.item, State::Parked));
                }
                Op::Requeue(i) => {
                    let parked: Vec<_> = model.iter().filter(|(_, (_, s))| *s == State::Parked).map(|(k, (id, _))| (k.clone(), *id)).collect();
                    if !parked.is_empty() {
                        let (k, id) = parked[i as usize % parked.len()].clone();
                        prop_assert!(store.requeue("i", id).unwrap());
                        model.insert(k, (id, State::Pending));
                    }
                }
                Op::Advance(s) => clock.advance(Duration::from_secs(s.into())),
                _ => {}
            }
            let pending = model.values().filter(|(_, s)| *s == State::Pending).count() as u64;
            let parked = model.len() as u64 - pending;
            prop_assert_eq!(store.depth("i").unwrap(), QueueDepth { pending, parked });
        }
        let report = store.check().unwrap();
        prop_assert!(report.is_ok(), "{}", report);
    }
}
