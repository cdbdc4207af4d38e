//! At-most-once write-back: recording intent before the remote call and completion after it.
//!
//! A result is written back to the customer's system at most once per
//! [`WritebackKey`] = (integration, remote id, file version, plugin version, policy version).
//! The pipeline calls [`IdempotencyLog::begin_writeback`] before the remote call; it commits
//! an *intent* durably and answers [`Begin::Proceed`]. After the call the pipeline calls
//! [`IdempotencyLog::complete_writeback`] with what happened.
//!
//! A crash between the two leaves an intent without a completion: the remote system may or
//! may not have received the write. After a restart, `begin_writeback` answers
//! [`Begin::Uncertain`] for it (the intent carries the id of the run that wrote it, so an
//! intent of a *previous* run is told apart from one in flight now, [`Begin::InFlight`]).
//! We chose **not** to retry uncertain write-backs automatically: a retried write-back
//! that is not idempotent on the remote side (a comment, a chatter post, a file rename)
//! would happen twice, and "at most once" is the promise. The pipeline decides per plugin:
//! if the plugin declares its write-back idempotent (setting a field to a value), or it can
//! read the remote state to see whether the write landed, it calls
//! [`IdempotencyLog::resolve_uncertain`] with [`Resolution::Retry`] or
//! [`Resolution::MarkWritten`]; otherwise it lists [`IdempotencyLog::uncertain`] for an
//! operator. A completion of [`Completion::Failed`] (the remote call provably did not write,
//! e.g. a 4xx before any change) clears the intent, so the next `begin_writeback` proceeds.
//!
//! For JetStream, the same trait maps onto a KV bucket with `create` (intent, fails if the
//! key exists) and compare-and-set `update` (completion) on the key's revision.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{decode, encode, ts};
use crate::records::FileRecord;
use crate::schema::{self, FILES, WRITEBACKS};
use crate::store::put_file_in;
use crate::{FileStatus, Store, StoreError};

/// What identifies one write-back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WritebackKey {
    /// The integration.
    pub integration: String,
    /// The remote file.
    pub remote_id: String,
    /// The file version (etag) the result is for.
    pub file_version: String,
    /// The plugin version that writes it.
    pub plugin_version: String,
    /// The policy version the result was computed under.
    pub policy_version: String,
}

/// The answer to [`IdempotencyLog::begin_writeback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Intent recorded and committed: make the remote call, then complete.
    Proceed,
    /// Written back already; do nothing.
    AlreadyDone {
        /// When the write-back completed.
        at: OffsetDateTime,
    },
    /// Another task of this run has begun it and not completed yet.
    InFlight {
        /// When the intent was recorded.
        since: OffsetDateTime,
    },
    /// A previous run recorded the intent and stopped before completing: the remote write
    /// may or may not have happened. See the module docs.
    Uncertain {
        /// When the intent was recorded.
        since: OffsetDateTime,
    },
}

/// How a write-back ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The remote system accepted the write.
    Written,
    /// The remote call provably did not write (the intent is cleared; a later begin proceeds).
    Failed {
        /// The error, free of secrets.
        error: String,
    },
    /// The plugin deliberately wrote nothing (contract 0.3's `write-result.skipped`): done,
    /// like a write, so it is not repeated; the reason is kept as the row's note, prefixed
    /// [`SKIPPED_PREFIX`].
    Skipped {
        /// The plugin's reason.
        reason: String,
    },
}

/// How a skipped write-back's reason starts in its record (no schema change: the record's
/// note field holds it).
pub const SKIPPED_PREFIX: &str = "skipped: ";

/// What to do with an uncertain write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Take the intent over for this run and write again (the write-back is idempotent, or
    /// the remote state shows it did not land). Complete it afterwards as usual.
    Retry,
    /// The remote state shows it landed: record it as written.
    MarkWritten,
}

/// The write-back idempotency record (see the module docs).
pub trait IdempotencyLog {
    /// The implementation's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Records the intent to write back, durably, unless it is done, in flight or uncertain.
    fn begin_writeback(&self, key: &WritebackKey) -> Result<Begin, Self::Error>;

    /// Records how the write-back ended.
    fn complete_writeback(
        &self,
        key: &WritebackKey,
        completion: &Completion,
    ) -> Result<(), Self::Error>;

    /// Whether the write-back is done.
    fn is_done(&self, key: &WritebackKey) -> Result<bool, Self::Error>;

    /// The uncertain write-backs of an integration (intents left by previous runs).
    fn uncertain(
        &self,
        integration: &str,
    ) -> Result<Vec<(WritebackKey, OffsetDateTime)>, Self::Error>;

    /// Resolves an uncertain (or in-flight) write-back.
    fn resolve_uncertain(
        &self,
        key: &WritebackKey,
        resolution: Resolution,
    ) -> Result<(), Self::Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WbState {
    Intent,
    Done,
    Failed,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WritebackRow {
    pub state: WbState,
    /// Intent: when it was recorded. Done/Failed: when it completed.
    #[serde(with = "ts")]
    pub at: OffsetDateTime,
    pub run_id: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

type WbKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn k(key: &WritebackKey) -> WbKey<'_> {
    (
        &key.integration,
        &key.remote_id,
        &key.file_version,
        &key.plugin_version,
        &key.policy_version,
    )
}

fn load(txn: &WriteTransaction, key: &WritebackKey) -> Result<Option<WritebackRow>, StoreError> {
    let t = txn.open_table(WRITEBACKS)?;
    let v = t.get(k(key))?;
    v.map(|v| decode("writebacks", v.value())).transpose()
}

fn save(txn: &WriteTransaction, key: &WritebackKey, row: &WritebackRow) -> Result<(), StoreError> {
    txn.open_table(WRITEBACKS)?
        .insert(k(key), encode(row).as_slice())?;
    Ok(())
}

pub(crate) fn complete_in(
    txn: &WriteTransaction,
    key: &WritebackKey,
    completion: &Completion,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut row = load(txn, key)?
        .filter(|r| r.state == WbState::Intent)
        .ok_or_else(|| StoreError::NoWritebackIntent {
            integration: key.integration.clone(),
            remote_id: key.remote_id.clone(),
        })?;
    row.at = now;
    match completion {
        Completion::Written => {
            row.state = WbState::Done;
            row.last_error = None;
        }
        Completion::Failed { error } => {
            row.state = WbState::Failed;
            row.last_error = Some(error.clone());
        }
        Completion::Skipped { reason } => {
            row.state = WbState::Done;
            row.last_error = Some(format!("{SKIPPED_PREFIX}{reason}"));
        }
    }
    save(txn, key, &row)
}

/// The reason of a write-back done as skipped, if that is how it ended.
pub(crate) fn skipped_reason_in(
    txn: &WriteTransaction,
    key: &WritebackKey,
) -> Result<Option<String>, StoreError> {
    Ok(load(txn, key)?
        .filter(|r| r.state == WbState::Done)
        .and_then(|r| r.last_error)
        .and_then(|e| e.strip_prefix(SKIPPED_PREFIX).map(str::to_string)))
}

/// Records the intent to write back unless it is done, in flight in this run, or uncertain.
pub(crate) fn begin_in(
    txn: &WriteTransaction,
    key: &WritebackKey,
    now: OffsetDateTime,
    run_id: u64,
) -> Result<Begin, StoreError> {
    let row = load(txn, key)?;
    match row {
        Some(r) if r.state == WbState::Done => Ok(Begin::AlreadyDone { at: r.at }),
        Some(r) if r.state == WbState::Intent && r.run_id == run_id => {
            Ok(Begin::InFlight { since: r.at })
        }
        Some(r) if r.state == WbState::Intent => Ok(Begin::Uncertain { since: r.at }),
        previous => {
            let attempts = previous.as_ref().map_or(0, |r| r.attempts) + 1;
            save(
                txn,
                key,
                &WritebackRow {
                    state: WbState::Intent,
                    at: now,
                    run_id,
                    attempts,
                    last_error: previous.and_then(|r| r.last_error),
                },
            )?;
            Ok(Begin::Proceed)
        }
    }
}

impl IdempotencyLog for Store {
    type Error = StoreError;

    fn begin_writeback(&self, key: &WritebackKey) -> Result<Begin, StoreError> {
        let now = self.now();
        self.write(|txn| begin_in(txn, key, now, self.run_id))
    }

    fn complete_writeback(
        &self,
        key: &WritebackKey,
        completion: &Completion,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| complete_in(txn, key, completion, now))
    }

    fn is_done(&self, key: &WritebackKey) -> Result<bool, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(WRITEBACKS)?;
            let v = t.get(k(key))?;
            Ok(match v {
                Some(v) => decode::<WritebackRow>("writebacks", v.value())?.state == WbState::Done,
                None => false,
            })
        })
    }

    fn uncertain(
        &self,
        integration: &str,
    ) -> Result<Vec<(WritebackKey, OffsetDateTime)>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(WRITEBACKS)?;
            let mut out = Vec::new();
            for e in t.range((integration, "", "", "", "")..(end.as_str(), "", "", "", ""))? {
                let (kk, v) = e?;
                let row: WritebackRow = decode("writebacks", v.value())?;
                if row.state == WbState::Intent && row.run_id != self.run_id {
                    let (i, r, f, p, q) = kk.value();
                    out.push((
                        WritebackKey {
                            integration: i.to_owned(),
                            remote_id: r.to_owned(),
                            file_version: f.to_owned(),
                            plugin_version: p.to_owned(),
                            policy_version: q.to_owned(),
                        },
                        row.at,
                    ));
                }
            }
            Ok(out)
        })
    }

    fn resolve_uncertain(
        &self,
        key: &WritebackKey,
        resolution: Resolution,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| {
            let mut row = load(txn, key)?
                .filter(|r| r.state == WbState::Intent)
                .ok_or_else(|| StoreError::NoWritebackIntent {
                    integration: key.integration.clone(),
                    remote_id: key.remote_id.clone(),
                })?;
            match resolution {
                Resolution::Retry => {
                    row.run_id = self.run_id;
                    row.attempts += 1;
                }
                Resolution::MarkWritten => row.state = WbState::Done,
            }
            row.at = now;
            save(txn, key, &row)
        })
    }
}

impl Store {
    /// Completes a write-back and saves the file record in one transaction; on
    /// [`Completion::Written`] the record's status becomes [`FileStatus::Written`].
    ///
    /// # Errors
    ///
    /// [`StoreError::NoWritebackIntent`], [`StoreError::Database`].
    pub fn complete_writeback_with_file(
        &self,
        key: &WritebackKey,
        completion: &Completion,
        file: &FileRecord,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| {
            complete_in(txn, key, completion, now)?;
            let mut file = file.clone();
            match completion {
                Completion::Written => file.status = FileStatus::Written,
                Completion::Skipped { reason } => {
                    file.status = FileStatus::Skipped;
                    file.last_error = Some(format!("write-back skipped: {reason}"));
                }
                Completion::Failed { .. } => {}
            }
            file.updated_at = now;
            put_file_in(&mut txn.open_table(FILES)?, &file)
        })
    }

    /// Forgets the finished write-backs of an integration, so that the next write-back of each
    /// result goes to the platform again (an operator's "write everything again", after the
    /// platform lost or someone removed what was written). Intents are kept: one in flight or
    /// left uncertain by a crash still guards its write. Returns how many were forgotten.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn forget_writebacks(&self, integration: &str) -> Result<u64, StoreError> {
        let end = schema::prefix_end(integration);
        self.write(|txn| {
            let mut t = txn.open_table(WRITEBACKS)?;
            let mut finished = Vec::new();
            for e in t.range((integration, "", "", "", "")..(end.as_str(), "", "", "", ""))? {
                let (kk, v) = e?;
                let row: WritebackRow = decode("writebacks", v.value())?;
                if row.state != WbState::Intent {
                    let (i, r, f, p, q) = kk.value();
                    finished.push((
                        i.to_owned(),
                        r.to_owned(),
                        f.to_owned(),
                        p.to_owned(),
                        q.to_owned(),
                    ));
                }
            }
            for (i, r, f, p, q) in &finished {
                t.remove((i.as_str(), r.as_str(), f.as_str(), p.as_str(), q.as_str()))?;
            }
            Ok(finished.len() as u64)
        })
    }
}
