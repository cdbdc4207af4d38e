//! The append-only, hash-chained audit log.
//!
//! Every entry stores `hash = SHA-256(previous hash || canonical encoding of the entry)`,
//! starting from 32 zero bytes. [`Store::audit_verify`] recomputes the chain and reports the
//! first entry that was edited, removed or moved. The canonical encoding is length-prefixed
//! fields (`seq`, RFC 3339 time, actor, action, target, outcome, details JSON text), fixed
//! here and independent of the storage encoding, so an export can be verified by other tools.
//!
//! Threats and what catches them:
//! - An entry edited or deleted in the file by someone without the master key: the chain
//!   breaks at that entry (or the one after it, if its stored hash was recomputed too).
//! - The whole chain rewritten from some entry on, or the newest entries cut off: the chain
//!   is self-consistent, so the head `(last seq, last hash, newest checkpoint hash)` is kept
//!   in the meta table with an HMAC under a key derived from the master key. Without the key,
//!   the head cannot be moved. With the key (root on the host), everything can be rewritten:
//!   the MAC raises the bar from "can write the file" to "can read the key", no further.
//! - Rolling the whole file back to an older copy (a backup): not detected; the old head
//!   and MAC are genuine. Exporting the log to an append-only sink is the defence for that.
//! - Every entry, the head and its MAC deleted (an "empty" log): a store carries a MACed
//!   *genesis marker* from the moment it is created (or, for a store created before markers
//!   existed, from the first open that found a genuine, MAC-verified head: recorded as a
//!   migration, with an `audit.genesis` entry). Verification fails closed when the marker or
//!   the head is missing, so deleting everything is detected. A store whose head was already
//!   gone when it was first opened by this version gets no marker and never verifies.
//!
//! Retention: [`Store::compact`](crate::Store::compact) deletes old entries only after
//! writing a checkpoint `(seq, hash of entry seq)`, itself chained to the previous checkpoint
//! and covered by the head MAC. Verification starts from the newest checkpoint, so edits
//! after it are still detected, and checkpoints are never deleted (they are tiny).
//!
//! Details must not contain secrets; the store's own entries name fields, never values.

use std::io::Write;

use proofpix_vault::{KeyPurpose, MasterKey};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit_chain::{ChainWalk, Head, authenticated_genesis, export_line, genesis_mac_input};
use crate::codec::{decode, encode};
use crate::schema::{AUDIT, AUDIT_CHECKPOINTS, META, meta};
use crate::{Store, StoreError};

const GENESIS: [u8; 32] = [0; 32];

/// An event to record: who did what to what, and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Who: `operator:<name>`, `daemon`, `plugin:<id>`, `api:<token id>`.
    pub actor: String,
    /// What: dotted verb, for example `integration.delete`, `vault.rotate-key`.
    pub action: String,
    /// On what: an integration id, `integration/field`, a plugin id.
    pub target: String,
    /// How it went: `ok`, `error`, `denied`.
    pub outcome: String,
    /// Non-secret detail, as JSON.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// A successful event with no details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            details: serde_json::Value::Null,
        }
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// How it went.
    pub outcome: String,
    /// The details as JSON text, exactly as hashed.
    pub details: String,
    /// The chain hash.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The canonical encoding that is hashed.
    fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.details.len());
        out.extend_from_slice(b"proofpix-audit-v1\n");
        out.extend_from_slice(&self.seq.to_be_bytes());
        for part in [
            &self.time,
            &self.actor,
            &self.action,
            &self.target,
            &self.outcome,
            &self.details,
        ] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    /// The entry that follows the one numbered `prev_seq` with hash `prev_hash` (0 and
    /// [`AuditEntry::GENESIS_HASH`] for the first): numbered, timed and chained. Every
    /// backend appends through this, so a chain verifies the same whichever stored it.
    pub fn following(
        prev_seq: u64,
        prev_hash: &[u8; 32],
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> AuditEntry {
        let mut entry = AuditEntry {
            seq: prev_seq + 1,
            time: rfc3339(now).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into()),
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            outcome: event.outcome.clone(),
            details: event.details.to_string(),
            hash: GENESIS,
        };
        entry.hash = entry.chain_hash(prev_hash);
        entry
    }

    /// The hash the first entry chains from.
    pub const GENESIS_HASH: [u8; 32] = GENESIS;

    /// Whether this entry's hash is the chain hash of its content after `prev_hash`.
    pub fn chains_from(&self, prev_hash: &[u8; 32]) -> bool {
        self.hash == self.chain_hash(prev_hash)
    }

    fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.canonical());
        h.finalize().into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointRow {
    /// The last entry the checkpoint covers.
    pub seq: u64,
    /// That entry's chain hash.
    pub entry_hash: [u8; 32],
    /// The previous checkpoint's hash (zeros for the first).
    pub prev: [u8; 32],
    pub time: String,
    pub hash: [u8; 32],
}

impl CheckpointRow {
    fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"proofpix-audit-checkpoint-v1\n");
        h.update(self.prev);
        h.update(self.seq.to_be_bytes());
        h.update(self.entry_hash);
        h.update((self.time.len() as u64).to_be_bytes());
        h.update(self.time.as_bytes());
        h.finalize().into()
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339)
}

fn read_head(
    meta_table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<Head>, StoreError> {
    match meta_table.get(meta::AUDIT_HEAD)? {
        None => Ok(None),
        Some(v) => Head::from_bytes(v.value())
            .map(Some)
            .ok_or(StoreError::Corrupt {
                table: "meta",
                reason: "the audit head has the wrong length".into(),
            }),
    }
}

fn write_head(txn: &WriteTransaction, key: &MasterKey, head: Head) -> Result<(), StoreError> {
    let mut m = txn.open_table(META)?;
    m.insert(meta::AUDIT_HEAD, head.to_bytes().as_slice())?;
    m.insert(meta::AUDIT_HEAD_MAC, head.mac(key).as_slice())?;
    Ok(())
}

/// Appends an entry inside `txn`; returns its seq.
pub(crate) fn append(
    txn: &WriteTransaction,
    key: &MasterKey,
    now: OffsetDateTime,
    event: &AuditEvent,
) -> Result<u64, StoreError> {
    let head = read_head(&txn.open_table(META)?)?.unwrap_or(Head {
        seq: 0,
        hash: GENESIS,
        checkpoint: GENESIS,
    });
    let entry = AuditEntry::following(head.seq, &head.hash, now, event);
    txn.open_table(AUDIT)?
        .insert(entry.seq, encode(&entry).as_slice())?;
    write_head(
        txn,
        key,
        Head {
            seq: entry.seq,
            hash: entry.hash,
            checkpoint: head.checkpoint,
        },
    )?;
    Ok(entry.seq)
}

/// The genesis marker: how the chain this store verifies began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// `created` (written with the store) or `migrated` (written for a store that predates
    /// markers, at the first open that found a genuine head).
    pub kind: String,
    /// When it was written (RFC 3339).
    pub at: String,
    /// The last entry sequence number when it was written.
    pub seq: u64,
}

fn write_genesis(
    txn: &WriteTransaction,
    key: &MasterKey,
    genesis: &Genesis,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(genesis).map_err(|e| StoreError::Corrupt {
        table: "meta",
        reason: format!("cannot encode the audit genesis marker: {e}"),
    })?;
    let mut m = txn.open_table(META)?;
    m.insert(meta::AUDIT_GENESIS, bytes.as_slice())?;
    let mac = key.mac(KeyPurpose::AuditHead, &genesis_mac_input(&bytes));
    m.insert(meta::AUDIT_GENESIS_MAC, mac.as_slice())?;
    Ok(())
}

/// Writes the marker of a new store (before its first entry).
pub(crate) fn write_created_genesis(
    txn: &WriteTransaction,
    key: &MasterKey,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    write_genesis(
        txn,
        key,
        &Genesis {
            kind: "created".into(),
            at: rfc3339(now).unwrap_or_default(),
            seq: 0,
        },
    )
}

/// Gives a store that predates genesis markers one, recorded as a migration, but only when
/// its head is present and authenticated by the key: a store whose head was deleted must not
/// be blessed by opening it. Returns whether a marker was written.
pub(crate) fn migrate_genesis(
    txn: &WriteTransaction,
    key: &MasterKey,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let head = {
        let m = txn.open_table(META)?;
        if m.get(meta::AUDIT_GENESIS)?.is_some() {
            return Ok(false);
        }
        let Some(head) = read_head(&m)? else {
            return Ok(false);
        };
        let genuine = m
            .get(meta::AUDIT_HEAD_MAC)?
            .is_some_and(|tag| head.authenticated_by(key, tag.value()));
        if !genuine {
            return Ok(false);
        }
        head
    };
    write_genesis(
        txn,
        key,
        &Genesis {
            kind: "migrated".into(),
            at: rfc3339(now).unwrap_or_default(),
            seq: head.seq,
        },
    )?;
    append(
        txn,
        key,
        now,
        &AuditEvent::new("proofpix", "audit.genesis", "store").details(serde_json::json!({
            "kind": "migrated",
            "entries_before": head.seq,
        })),
    )?;
    Ok(true)
}

/// The genesis marker if present and authenticated by `key`.
fn read_genesis(
    m: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &MasterKey,
) -> Result<Option<Genesis>, StoreError> {
    let Some(bytes) = m.get(meta::AUDIT_GENESIS)?.map(|v| v.value().to_vec()) else {
        return Ok(None);
    };
    Ok(m.get(meta::AUDIT_GENESIS_MAC)?
        .and_then(|tag| authenticated_genesis(key, &bytes, tag.value())))
}

/// Recomputes the head MAC under a new key (key rotation).
pub(crate) fn remac_head(txn: &WriteTransaction, new_key: &MasterKey) -> Result<(), StoreError> {
    let genesis = txn
        .open_table(META)?
        .get(meta::AUDIT_GENESIS)?
        .map(|v| v.value().to_vec());
    if let Some(bytes) = genesis {
        let mac = new_key.mac(KeyPurpose::AuditHead, &genesis_mac_input(&bytes));
        txn.open_table(META)?
            .insert(meta::AUDIT_GENESIS_MAC, mac.as_slice())?;
    }
    let head = read_head(&txn.open_table(META)?)?;
    if let Some(head) = head {
        write_head(txn, new_key, head)?;
    }
    Ok(())
}

/// Deletes entries older than `cutoff` after checkpointing the newest of them. The newest
/// entry is never deleted, so the head always points at a stored entry or a checkpoint.
pub(crate) fn compact(
    txn: &WriteTransaction,
    key: &MasterKey,
    now: OffsetDateTime,
    cutoff: OffsetDateTime,
) -> Result<u64, StoreError> {
    let cutoff = rfc3339(cutoff).unwrap_or_default();
    let Some(head) = read_head(&txn.open_table(META)?)? else {
        return Ok(0);
    };
    // Entries are in time order (appended with the store's clock); find the last expired one.
    let mut last: Option<(u64, [u8; 32])> = None;
    {
        let t = txn.open_table(AUDIT)?;
        for e in t.iter()? {
            let (k, v) = e?;
            if k.value() >= head.seq {
                break;
            }
            let entry: AuditEntry = decode("audit", v.value())?;
            // RFC 3339 UTC strings with the same format compare like the times they denote.
            if !time_before(&entry.time, &cutoff) {
                break;
            }
            last = Some((entry.seq, entry.hash));
        }
    }
    let Some((seq, entry_hash)) = last else {
        return Ok(0);
    };
    let mut cp = CheckpointRow {
        seq,
        entry_hash,
        prev: head.checkpoint,
        time: rfc3339(now).unwrap_or_default(),
        hash: GENESIS,
    };
    cp.hash = cp.compute_hash();
    txn.open_table(AUDIT_CHECKPOINTS)?
        .insert(seq, encode(&cp).as_slice())?;
    let mut removed = 0u64;
    txn.open_table(AUDIT)?.retain_in(..=seq, |_, _| {
        removed += 1;
        false
    })?;
    write_head(
        txn,
        key,
        Head {
            checkpoint: cp.hash,
            ..head
        },
    )?;
    Ok(removed)
}

fn time_before(a: &str, b: &str) -> bool {
    match (
        OffsetDateTime::parse(a, &Rfc3339),
        OffsetDateTime::parse(b, &Rfc3339),
    ) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

/// What [`Store::audit_verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// The first entry checked.
    pub first_seq: Option<u64>,
    /// The last entry checked.
    pub last_seq: Option<u64>,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Whether the head MAC verified under the current master key.
    pub head_authenticated: bool,
    /// The authenticated genesis marker: whether the chain is vouched for since the store
    /// was created or only since a migration.
    pub genesis: Option<Genesis>,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
}

impl VerifyReport {
    /// Whether the chain verified completely.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// One line for `proofpix audit verify`, for example `audit chain intact: 1204 entries (seq
/// 31 to 1234), 2 checkpoints, head authenticated by the master key`.
impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(problem) = &self.problem {
            return write!(f, "audit chain broken: {problem}");
        }
        write!(f, "audit chain intact: {} entries", self.entries)?;
        if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
            write!(f, " (seq {a} to {b})")?;
        }
        write!(
            f,
            ", {} checkpoint{}, head authenticated by the master key",
            self.checkpoints,
            if self.checkpoints == 1 { "" } else { "s" }
        )?;
        match &self.genesis {
            Some(g) if g.kind == "created" => write!(f, ", complete since the store was created"),
            Some(g) => write!(
                f,
                ", complete since the genesis marker was added at {} (after entry {})",
                g.at, g.seq
            ),
            None => Ok(()),
        }
    }
}

/// The first problem found in the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditProblem {
    /// The entry's content or hash does not match the chain: it (or the entry before it, if
    /// that one's stored hash was recomputed) was edited.
    #[error("audit entry {0} was edited (its hash does not follow from the entry before it)")]
    Edited(u64),
    /// An entry is missing.
    #[error("audit entry {0} was removed")]
    Removed(u64),
    /// An entry is stored under another sequence number.
    #[error("audit entry stored at {0} carries another sequence number (entries were moved)")]
    Reordered(u64),
    /// An entry cannot be decoded.
    #[error("audit entry {0} cannot be decoded")]
    Undecodable(u64),
    /// The checkpoint chain is broken at this checkpoint.
    #[error("audit checkpoint {0} was edited or removed")]
    Checkpoint(u64),
    /// Entries survive from before the newest checkpoint.
    #[error("audit entry {0} predates the newest checkpoint")]
    BeforeCheckpoint(u64),
    /// The stored head does not match the last entry: entries were cut off the end.
    #[error(
        "the audit log ends at entry {found} but its head records entry {head}: entries were cut off"
    )]
    Truncated {
        /// The last entry found.
        found: u64,
        /// The seq the head records.
        head: u64,
    },
    /// The head MAC does not verify: the log was rewritten without the master key.
    #[error("the audit head is not authenticated by the master key: the log was rewritten")]
    HeadNotAuthenticated,
    /// The head is missing: every store has one from its first entry, so it was deleted.
    #[error(
        "the audit head is missing: it was deleted (with whatever entries it vouched for); restore the store from a backup or an exported log"
    )]
    HeadMissing,
    /// The genesis marker is missing or not authenticated by the master key.
    #[error(
        "the audit genesis marker is missing or not authenticated by the master key: the log cannot be shown complete; restore the store from a backup or an exported log"
    )]
    GenesisMissing,
}

impl Store {
    /// Walks the audit chain from the newest checkpoint and reports the first problem.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] if the store cannot be read; problems in the chain are in
    /// the report, not errors.
    pub fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        self.read(|txn| {
            let m = txn.open_table(META)?;
            let mac = m.get(meta::AUDIT_HEAD_MAC)?.map(|v| v.value().to_vec());
            let walk = match ChainWalk::begin(
                &self.key,
                read_genesis(&m, &self.key)?,
                read_head(&m)?,
                mac.as_deref(),
            ) {
                Ok(walk) => walk,
                Err(report) => return Ok(*report),
            };

            // Checkpoints, each chained to the one before.
            let (mut tip, mut start, mut count) = (GENESIS, (0u64, GENESIS), 0u64);
            for e in txn.open_table(AUDIT_CHECKPOINTS)?.iter()? {
                let (k, v) = e?;
                let cp = decode::<CheckpointRow>("audit_checkpoints", v.value()).ok();
                match cp {
                    Some(cp)
                        if cp.seq == k.value()
                            && cp.prev == tip
                            && cp.compute_hash() == cp.hash =>
                    {
                        tip = cp.hash;
                        start = (cp.seq, cp.entry_hash);
                        count += 1;
                    }
                    _ => {
                        let problem = AuditProblem::Checkpoint(k.value());
                        return Ok(walk.with_checkpoints(count).broken(problem));
                    }
                }
            }
            let mut walk = match walk.after_checkpoints(count, start.0, start.1, tip) {
                Ok(walk) => walk,
                Err(report) => return Ok(*report),
            };

            for e in txn.open_table(AUDIT)?.iter()? {
                let (k, v) = e?;
                let entry = decode::<AuditEntry>("audit", v.value()).ok();
                if let Err(problem) = walk.entry(k.value(), entry.as_ref()) {
                    return Ok(walk.broken(problem));
                }
            }
            Ok(walk.finish())
        })
    }

    /// Writes every stored audit entry as one JSON object per line (`seq`, `time`, `actor`,
    /// `action`, `target`, `outcome`, `details`, `prev_hash`, `hash`, hashes in hex), oldest
    /// first. Returns the number of lines. The hashes let an external tool re-verify the chain
    /// with the canonical encoding described in this module.
    ///
    /// # Errors
    ///
    /// [`StoreError::Export`] if writing fails; [`StoreError::Database`].
    pub fn audit_export(&self, mut out: impl Write) -> Result<u64, StoreError> {
        self.read(|txn| {
            let mut prev = txn
                .open_table(AUDIT_CHECKPOINTS)?
                .last()?
                .map(|(_, v)| decode::<CheckpointRow>("audit_checkpoints", v.value()))
                .transpose()?
                .map(|cp| cp.entry_hash)
                .unwrap_or(GENESIS);
            let mut n = 0;
            for e in txn.open_table(AUDIT)?.iter()? {
                let entry: AuditEntry = decode("audit", e?.1.value())?;
                let line = export_line(&entry, &prev);
                serde_json::to_writer(&mut out, &line).map_err(|e| StoreError::Export(e.into()))?;
                out.write_all(b"\n").map_err(StoreError::Export)?;
                prev = entry.hash;
                n += 1;
            }
            out.flush().map_err(StoreError::Export)?;
            Ok(n)
        })
    }

    /// Up to `limit` audit entries from `from_seq` on, oldest first (for the dashboard).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|txn| {
            txn.open_table(AUDIT)?
                .range(from_seq..)?
                .take(limit)
                .map(|e| decode("audit", e?.1.value()))
                .collect()
        })
    }

    /// Up to `limit` of the newest audit entries, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|txn| {
            txn.open_table(AUDIT)?
                .iter()?
                .rev()
                .take(limit)
                .map(|e| decode("audit", e?.1.value()))
                .collect()
        })
    }
}
