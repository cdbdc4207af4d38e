//! The audit chain's rules, independent of where it is stored: the MACed head, the genesis
//! marker's MAC input, the walk that verifies the entries in order, and the export line.
//!
//! The redb store and the PostgreSQL store both keep the chain this module describes; each
//! reads its own tables and feeds them here, so a chain verifies (and exports) the same
//! whichever backend stored it.

use proofpix_vault::{KeyPurpose, MasterKey};

use crate::audit::{AuditEntry, AuditProblem, Genesis, VerifyReport};

/// The head kept beside the chain: last seq, last entry hash, newest checkpoint hash. Its
/// MAC under the master key is what stops a rewrite of the whole chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last entry's sequence number.
    pub seq: u64,
    /// The last entry's hash.
    pub hash: [u8; 32],
    /// The newest checkpoint's hash (zeros when there is none).
    pub checkpoint: [u8; 32],
}

impl Head {
    /// Length of [`Head::to_bytes`].
    pub const LEN: usize = 8 + 32 + 32;

    /// The stored form.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..40].copy_from_slice(&self.hash);
        out[40..].copy_from_slice(&self.checkpoint);
        out
    }

    /// The stored form read back; `None` for the wrong length.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(Head {
            seq: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            hash: b.get(8..40)?.try_into().ok()?,
            checkpoint: b.get(40..)?.try_into().ok()?,
        })
    }

    /// What the head's MAC covers.
    pub fn mac_input(self) -> Vec<u8> {
        let mut v = b"proofpix-audit-head-v1\n".to_vec();
        v.extend_from_slice(&self.to_bytes());
        v
    }

    /// The MAC to store beside the head.
    pub fn mac(self, key: &MasterKey) -> Vec<u8> {
        key.mac(KeyPurpose::AuditHead, &self.mac_input()).to_vec()
    }

    /// Whether `tag` is this head's MAC under `key`.
    pub fn authenticated_by(self, key: &MasterKey, tag: &[u8]) -> bool {
        key.verify_mac(KeyPurpose::AuditHead, &self.mac_input(), tag)
    }
}

/// What the genesis marker's MAC covers: the marker's stored bytes.
pub fn genesis_mac_input(bytes: &[u8]) -> Vec<u8> {
    let mut v = b"proofpix-audit-genesis-v1\n".to_vec();
    v.extend_from_slice(bytes);
    v
}

/// The genesis marker stored as `bytes` if `tag` is its MAC under `key`.
pub fn authenticated_genesis(key: &MasterKey, bytes: &[u8], tag: &[u8]) -> Option<Genesis> {
    key.verify_mac(KeyPurpose::AuditHead, &genesis_mac_input(bytes), tag)
        .then(|| serde_json::from_slice(bytes).ok())
        .flatten()
}

/// One line of `proofpix audit export`: the entry, its details as JSON, and the hashes (in
/// hex) that let another tool re-verify the chain.
pub fn export_line(entry: &AuditEntry, prev_hash: &[u8; 32]) -> serde_json::Value {
    let details: serde_json::Value = serde_json::from_str(&entry.details)
        .unwrap_or(serde_json::Value::String(entry.details.clone()));
    serde_json::json!({
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "details": details,
        "prev_hash": hex::encode(prev_hash),
        "hash": hex::encode(entry.hash),
    })
}

/// A verification in progress: started from the genesis marker and the head, told where the
/// checkpoints leave off, fed every stored entry in sequence order, finished against the
/// head. The first problem ends it; the report says what was checked up to there.
#[derive(Debug)]
pub struct ChainWalk {
    report: VerifyReport,
    head: Head,
    expected: u64,
    prev: [u8; 32],
}

impl ChainWalk {
    /// Starts from the authenticated genesis marker (`None` when missing or not
    /// authenticated), the stored head and its MAC. Fails closed: a store has a marker from
    /// creation (or migration) and a head from its first entry, so a missing one was deleted.
    ///
    /// # Errors
    /// The finished report (boxed), when there is nothing to walk.
    pub fn begin(
        key: &MasterKey,
        genesis: Option<Genesis>,
        head: Option<Head>,
        head_mac: Option<&[u8]>,
    ) -> Result<ChainWalk, Box<VerifyReport>> {
        let mut report = VerifyReport {
            entries: 0,
            first_seq: None,
            last_seq: None,
            checkpoints: 0,
            head_authenticated: false,
            genesis,
            problem: None,
        };
        if report.genesis.is_none() {
            report.problem = Some(AuditProblem::GenesisMissing);
            return Err(Box::new(report));
        }
        let Some(head) = head else {
            report.problem = Some(AuditProblem::HeadMissing);
            return Err(Box::new(report));
        };
        report.head_authenticated = head_mac.is_some_and(|tag| head.authenticated_by(key, tag));
        Ok(ChainWalk {
            report,
            head,
            expected: 1,
            prev: AuditEntry::GENESIS_HASH,
        })
    }

    /// Where the checkpoints leave off: `checkpoints` verified, the newest covering entries up
    /// to `seq` whose hash was `entry_hash` (0 and zeros with none), and the checkpoint chain's
    /// tip, which the head must name.
    ///
    /// # Errors
    /// The finished report (boxed), when the head names another checkpoint.
    pub fn after_checkpoints(
        mut self,
        checkpoints: u64,
        seq: u64,
        entry_hash: [u8; 32],
        tip: [u8; 32],
    ) -> Result<ChainWalk, Box<VerifyReport>> {
        self.report.checkpoints = checkpoints;
        if tip != self.head.checkpoint {
            self.report.problem = Some(AuditProblem::Checkpoint(seq));
            return Err(Box::new(self.report));
        }
        self.expected = seq + 1;
        self.prev = entry_hash;
        Ok(self)
    }

    /// Counts `n` checkpoints verified (for a report that ends among them).
    pub fn with_checkpoints(mut self, n: u64) -> ChainWalk {
        self.report.checkpoints = n;
        self
    }

    /// The next stored entry: stored under `seq`, decoded (`None` when it cannot be).
    ///
    /// # Errors
    /// The first problem; [`ChainWalk::broken`] turns it into the report.
    pub fn entry(&mut self, seq: u64, entry: Option<&AuditEntry>) -> Result<(), AuditProblem> {
        let problem = if seq < self.expected {
            AuditProblem::BeforeCheckpoint(seq)
        } else if seq != self.expected {
            AuditProblem::Removed(self.expected)
        } else {
            match entry {
                None => AuditProblem::Undecodable(seq),
                Some(e) if e.seq != seq => AuditProblem::Reordered(seq),
                Some(e) if !e.chains_from(&self.prev) => AuditProblem::Edited(seq),
                Some(e) => {
                    self.report.first_seq.get_or_insert(seq);
                    self.report.last_seq = Some(seq);
                    self.report.entries += 1;
                    self.prev = e.hash;
                    self.expected += 1;
                    return Ok(());
                }
            }
        };
        Err(problem)
    }

    /// The report after a problem [`ChainWalk::entry`] found.
    pub fn broken(mut self, problem: AuditProblem) -> VerifyReport {
        self.report.problem = Some(problem);
        self.report
    }

    /// The report once every entry was fed: the last one must be the head's, and the head
    /// authenticated.
    pub fn finish(mut self) -> VerifyReport {
        let last = self.expected - 1;
        let head = self.head;
        self.report.problem = if last != head.seq || self.prev != head.hash {
            Some(if last < head.seq {
                AuditProblem::Truncated {
                    found: last,
                    head: head.seq,
                }
            } else {
                AuditProblem::Edited(last)
            })
        } else if !self.report.head_authenticated {
            Some(AuditProblem::HeadNotAuthenticated)
        } else {
            None
        };
        self.report
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::audit::AuditEvent;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out
                .last()
                .map_or((0, AuditEntry::GENESIS_HASH), |e| (e.seq, e.hash));
            let event = AuditEvent::new("t", "test", format!("target-{i}"));
            out.push(AuditEntry::following(
                seq,
                &hash,
                OffsetDateTime::UNIX_EPOCH,
                &event,
            ));
        }
        out
    }

    fn created() -> Genesis {
        Genesis {
            kind: "created".into(),
            at: "1970-01-01T00:00:00Z".into(),
            seq: 0,
        }
    }

    fn walk(key: &MasterKey, entries: &[AuditEntry]) -> ChainWalk {
        let last = entries.last().expect("entries");
        let head = Head {
            seq: last.seq,
            hash: last.hash,
            checkpoint: [0; 32],
        };
        let genesis = created();
        ChainWalk::begin(key, Some(genesis), Some(head), Some(&head.mac(key)))
            .and_then(|w| w.after_checkpoints(0, 0, [0; 32], [0; 32]))
            .expect("a walk")
    }

    #[test]
    fn an_intact_chain_verifies_and_each_break_is_named() {
        let key = MasterKey::generate();
        let entries = chain(5);
        let mut w = walk(&key, &entries);
        for e in &entries {
            w.entry(e.seq, Some(e)).expect("intact");
        }
        let report = w.finish();
        assert!(report.is_ok(), "{report}");
        assert_eq!(
            (report.entries, report.first_seq, report.last_seq),
            (5, Some(1), Some(5))
        );

        // An entry that repeats an earlier number, one skipped, one edited.
        let mut w = walk(&key, &entries);
        w.entry(1, Some(&entries[0])).expect("first");
        assert_eq!(
            w.entry(1, Some(&entries[0])),
            Err(AuditProblem::BeforeCheckpoint(1))
        );
        assert_eq!(w.entry(3, Some(&entries[2])), Err(AuditProblem::Removed(2)));
        let mut edited = entries[1].clone();
        edited.actor = "someone else".into();
        assert_eq!(w.entry(2, Some(&edited)), Err(AuditProblem::Edited(2)));
        assert_eq!(w.entry(2, None), Err(AuditProblem::Undecodable(2)));

        // The last entries cut off: the head still names entry 5.
        let mut w = walk(&key, &entries);
        for e in &entries[..3] {
            w.entry(e.seq, Some(e)).expect("intact");
        }
        assert_eq!(
            w.finish().problem,
            Some(AuditProblem::Truncated { found: 3, head: 5 })
        );
    }

    #[test]
    fn a_head_that_names_another_checkpoint_or_another_key_fails() {
        let key = MasterKey::generate();
        let entries = chain(2);
        let last = &entries[1];
        let head = Head {
            seq: last.seq,
            hash: last.hash,
            checkpoint: [7; 32],
        };
        let genesis = created();
        let report = ChainWalk::begin(
            &key,
            Some(genesis.clone()),
            Some(head),
            Some(&head.mac(&key)),
        )
        .and_then(|w| w.after_checkpoints(0, 0, [0; 32], [0; 32]))
        .expect_err("the head names a checkpoint that is not there");
        assert_eq!(report.problem, Some(AuditProblem::Checkpoint(0)));

        let other = MasterKey::generate();
        let head = Head {
            checkpoint: [0; 32],
            ..head
        };
        let mut w = ChainWalk::begin(&key, Some(genesis), Some(head), Some(&head.mac(&other)))
            .and_then(|w| w.after_checkpoints(0, 0, [0; 32], [0; 32]))
            .expect("a walk");
        for e in &entries {
            w.entry(e.seq, Some(e)).expect("intact");
        }
        assert_eq!(w.finish().problem, Some(AuditProblem::HeadNotAuthenticated));
        assert_eq!(
            Head::from_bytes(&head.to_bytes()),
            Some(head),
            "the stored form reads back"
        );
    }
}
