//! Turns at redb's single writer, fair between integrations.
//!
//! redb has one write transaction at a time, and whoever asks while it is taken waits on a lock
//! that wakes waiters in no particular order. With one integration draining a large backlog
//! (several of its tasks committing groups back to back) and another answering a webhook (a
//! handful of small commits), the small run's commits queued behind the backlog's, several times
//! per file: measured, p99 webhook-to-write-back of 230-315 ms behind a 20,000-file backlog
//! although no transaction was held longer than 25 ms.
//!
//! The gate hands the writer out by *lane*, round robin: each integration's work is a lane
//! (see [`in_write_lane`]; work outside any lane shares the default one), waiters within a lane go
//! first come first served, and when the writer is released the next lane in turn gets it. A
//! lane that asks while others wait waits at most one transaction per other waiting lane, however
//! many commits the others have queued.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, PoisonError};

thread_local! {
    static LANE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's store writes in `lane` (an integration id, say): the writer is
/// shared round robin between lanes, so one lane's backlog of commits cannot hold back
/// another's. Nested calls use the innermost lane.
pub fn in_write_lane<T>(lane: &str, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            LANE.with(|l| *l.borrow_mut() = previous);
        }
    }
    let previous = LANE.with(|l| l.borrow_mut().replace(lane.to_string()));
    let _restore = Restore(previous);
    f()
}

fn current_lane() -> String {
    LANE.with(|l| l.borrow().clone()).unwrap_or_default()
}

#[derive(Default)]
struct State {
    /// Whether a writer holds the turn.
    busy: bool,
    /// Tickets waiting, per lane, in arrival order.
    waiting: HashMap<String, VecDeque<u64>>,
    /// Lanes with waiters, in the order they get the next turn.
    order: VecDeque<String>,
    /// The ticket the last release handed the turn to, until its waiter takes it.
    granted: Option<u64>,
    next_ticket: u64,
}

/// The writer's turns (see the module documentation).
#[derive(Default)]
pub(crate) struct WriterGate {
    state: Mutex<State>,
    turn: Condvar,
}

/// Holds the writer's turn; releasing it (on drop, also on unwinding) passes the turn on.
pub(crate) struct Turn<'a>(&'a WriterGate);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl WriterGate {
    /// Waits for this thread's lane's turn at the writer.
    pub(crate) fn enter(&self) -> Turn<'_> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.busy && s.order.is_empty() {
            s.busy = true;
            return Turn(self);
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        let lane = current_lane();
        let queue = s.waiting.entry(lane.clone()).or_default();
        queue.push_back(ticket);
        if queue.len() == 1 {
            s.order.push_back(lane);
        }
        while s.granted != Some(ticket) {
            s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.granted = None;
        Turn(self)
    }

    /// Whether a lane other than the caller's waits for a turn (asked while holding one: a
    /// long transaction may then commit early and let it go first).
    pub(crate) fn another_lane_waits(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.order.is_empty() {
            return false;
        }
        let lane = current_lane();
        s.order.iter().any(|l| *l != lane)
    }

    fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lane) = s.order.pop_front() else {
            s.busy = false;
            return;
        };
        let (ticket, more) = match s.waiting.get_mut(&lane) {
            Some(queue) => (queue.pop_front(), !queue.is_empty()),
            None => (None, false),
        };
        if more {
            s.order.push_back(lane);
        } else {
            s.waiting.remove(&lane);
        }
        // `busy` stays set: the turn passes straight to the waiter.
        s.granted = ticket;
        if ticket.is_none() {
            s.busy = false;
        }
        drop(s);
        self.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Records the lane of each turn taken while `busy` lanes keep the writer queued.
    #[test]
    fn a_lane_with_one_write_waits_for_one_turn_per_other_lane_not_for_their_queues() {
        let gate = Arc::new(WriterGate::default());
        let order = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        // The backlog: four threads of one lane committing back to back.
        let held = gate.enter();
        let mut backlog = Vec::new();
        for _ in 0..4 {
            let (gate, order, stop) = (gate.clone(), order.clone(), stop.clone());
            backlog.push(std::thread::spawn(move || {
                in_write_lane("backlog", || {
                    while !stop.load(Ordering::SeqCst) {
                        let _turn = gate.enter();
                        order.lock().unwrap().push("backlog".into());
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
            }));
        }
        // Let the backlog's four writers queue up behind the held turn.
        while gate
            .state
            .lock()
            .unwrap()
            .waiting
            .get("backlog")
            .map_or(0, VecDeque::len)
            < 4
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let webhook = {
            let (gate, order) = (gate.clone(), order.clone());
            std::thread::spawn(move || {
                in_write_lane("webhook", || {
                    let _turn = gate.enter();
                    order.lock().unwrap().push("webhook".into());
                });
            })
        };
        while !gate.state.lock().unwrap().waiting.contains_key("webhook") {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        webhook.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in backlog {
            t.join().unwrap();
        }
        let order = order.lock().unwrap();
        let at = order.iter().position(|l| l == "webhook").unwrap();
        // Four backlog writers were queued first; round robin lets one of them go, then the
        // webhook's lane, instead of all four (or, with an unfair lock, any number).
        assert!(
            at <= 1,
            "the webhook's write came after {at} backlog turns: {order:?}"
        );
    }

    #[test]
    fn every_waiter_gets_a_turn_and_turns_never_overlap() {
        let gate = Arc::new(WriterGate::default());
        let inside = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (gate, inside) = (gate.clone(), inside.clone());
                std::thread::spawn(move || {
                    in_write_lane(&format!("lane{}", i % 3), || {
                        for _ in 0..200 {
                            let _turn = gate.enter();
                            assert!(!inside.swap(true, Ordering::SeqCst), "two turns at once");
                            inside.store(false, Ordering::SeqCst);
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = gate.state.lock().unwrap();
        assert!(!s.busy && s.order.is_empty() && s.waiting.is_empty());
    }

    #[test]
    fn a_panic_inside_a_turn_passes_the_turn_on() {
        let gate = Arc::new(WriterGate::default());
        let g = gate.clone();
        let r = std::thread::spawn(move || {
            let _turn = g.enter();
            panic!("inside the transaction");
        })
        .join();
        assert!(r.is_err());
        drop(gate.enter());
    }

    #[test]
    fn lanes_nest_and_restore() {
        assert_eq!(current_lane(), "");
        in_write_lane("a", || {
            assert_eq!(current_lane(), "a");
            in_write_lane("b", || assert_eq!(current_lane(), "b"));
            assert_eq!(current_lane(), "a");
        });
        assert_eq!(current_lane(), "");
    }
}
