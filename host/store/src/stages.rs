//! The staged pipeline's store operations: group commit and the outbox.
//!
//! A sync is a chain of stages joined by durable queues:
//!
//! ```text
//! discover ─▶ <id> (fetch queue) ─▶ fetch + analyse ─▶ record ─┬▶ <id>/writeback
//!                                                              ├▶ <id>/remediate
//!                                                              └▶ <notifier>/notify
//! ```
//!
//! `record` commits many files per write transaction ([`Store::record_group`]): each file's
//! ack, file record, result and its outbox items (one per downstream stage that applies) go
//! in together, so one durability point (one fsync) covers a group of files instead of each
//! file paying for its own, and a crash loses none of them: either the group committed,
//! with every outbox item, or its leases expire and the files are delivered again.
//!
//! A downstream stage drains its queue with the same leases, retries and parking as the
//! fetch queue ([`crate::WorkQueue`]); the write-back stage records its intents for a whole
//! group in one transaction ([`Store::begin_writebacks`]) and its completions, acks and file
//! records in another ([`Store::finish_writebacks`]).
//!
//! Stage queues live in the queue tables under the name [`stage_queue`] gives them. Their
//! names contain `/`, which no integration id does, so they never collide with a fetch queue.

use redb::{ReadableTable, WriteTransaction};
use time::OffsetDateTime;

use crate::codec::{decode, encode};
use crate::idempotency::{self, Begin, Completion, WritebackKey};
use crate::queue::{ClaimRequest, Nacked, NewItem, ack_in, claim_in, enqueue_in, nack_in, park_in};
use crate::records::{BatchRecord, FileRecord, FileRow, IntegrationStatus};
use crate::schema::{BATCHES, FILES, INTEGRATIONS, QUEUE_DUE};
use crate::store::{add_result_in, put_file_in};
use crate::{AuditEvent, FileStatus, Lease, NewResult, Store, StoreError};

/// A stage after `record`, fed by the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Results written back to the platform the file lives in.
    WriteBack,
    /// Remediation actions under the integration's policy.
    Remediate,
    /// Alerts and batch summaries for a notifier integration (the queue is the notifier's).
    Notify,
}

impl Stage {
    /// Every stage.
    pub const ALL: [Stage; 3] = [Stage::WriteBack, Stage::Remediate, Stage::Notify];

    /// The stage's name in queue names and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::WriteBack => "writeback",
            Stage::Remediate => "remediate",
            Stage::Notify => "notify",
        }
    }
}

/// The queue of `stage` for integration `id` (for [`Stage::Notify`], the notifier's id).
pub fn stage_queue(id: &str, stage: Stage) -> String {
    format!("{id}/{}", stage.as_str())
}

/// An item for a downstream stage, committed with the result it follows from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The stage queue ([`stage_queue`]).
    pub queue: String,
    /// The item.
    pub item: NewItem,
}

/// One file's outcome in a [`Store::record_group`].
#[derive(Debug, Clone)]
pub enum Record {
    /// Analysed (or finished without a result): ack, save the file record with the new result
    /// as its last, and enqueue the outbox items.
    Done {
        /// The fetch-queue lease.
        lease: Lease,
        /// The file record to save.
        file: FileRecord,
        /// The result, when analysis ran.
        result: Option<NewResult>,
        /// Items for downstream stages.
        outbox: Vec<Outbound>,
    },
    /// A failure to retry at `retry_at` (parked instead after the last attempt).
    Retry {
        /// The lease.
        lease: Lease,
        /// The file record (saved as `Failed`, or `Parked`).
        file: FileRecord,
        /// When to retry.
        retry_at: OffsetDateTime,
        /// Why it failed.
        error: String,
    },
    /// A permanent failure: park the item and the file.
    Park {
        /// The lease.
        lease: Lease,
        /// The file record (saved as `Parked`).
        file: FileRecord,
        /// Why.
        error: String,
    },
}

/// What [`Store::record_group`] did with one [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded, with the new result's id.
    Done(Option<u64>),
    /// Nacked: retried later, or parked after its last attempt.
    Nacked(Nacked),
    /// Parked.
    Parked,
    /// The lease was taken over by another worker (it expired): nothing was written for this
    /// file; the new holder records it.
    LeaseLost,
}

/// How one write-back of a [`Store::finish_writebacks`] group ended.
#[derive(Debug, Clone)]
pub enum WritebackEnd {
    /// The platform accepted it: complete the intent, ack, mark the file written.
    Written,
    /// The plugin deliberately wrote nothing (contract 0.3's `write-result.skipped`):
    /// complete the intent as done, ack, mark the file skipped with the reason.
    Skipped {
        /// The plugin's reason.
        reason: String,
    },
    /// Done earlier: ack, mark the file written; no intent to complete.
    AlreadyDone,
    /// The call provably did not write and may work later: clear the intent, nack.
    Retry {
        /// When to try again.
        at: OffsetDateTime,
        /// Why it failed.
        error: String,
    },
    /// The call provably did not write and will not work by retrying: clear the intent,
    /// park the item, note the error on the file.
    Failed {
        /// Why.
        error: String,
    },
    /// No intent was recorded (in flight elsewhere): put the item back for later, without
    /// counting an attempt.
    Later {
        /// When to look again.
        at: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// No intent was recorded and none may be (a crash left it uncertain): park the item
    /// for an operator; the intent is left as it is.
    Parked {
        /// Why.
        reason: String,
    },
}

/// One write-back of a [`Store::finish_writebacks`] group.
#[derive(Debug, Clone)]
pub struct WritebackDone {
    /// The write-back queue lease.
    pub lease: Lease,
    /// The idempotency key.
    pub key: WritebackKey,
    /// How it ended.
    pub end: WritebackEnd,
}

/// Whether an error is a lost lease (the item was taken over), which costs one item of a
/// group, not the group.
fn lost(e: &StoreError) -> bool {
    matches!(e, StoreError::LeaseLost { .. })
}

fn enqueue_outbox(
    txn: &WriteTransaction,
    outbox: &[Outbound],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for o in outbox {
        enqueue_in(txn, &o.queue, std::slice::from_ref(&o.item), now)?;
    }
    Ok(())
}

fn save_file(
    txn: &WriteTransaction,
    file: &FileRecord,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut file = file.clone();
    file.updated_at = now;
    put_file_in(&mut txn.open_table(FILES)?, &file)
}

impl Store {
    /// Records a group of fetched files in one write transaction: one durability point for
    /// the group. Each file's ack (or nack, or park), file record, result and outbox items
    /// commit together with every other file's; a file whose lease was lost is skipped
    /// ([`Recorded::LeaseLost`]) without failing the others. When another integration waits
    /// at the writer, the group commits in parts of at least
    /// [`crate::StoreOptions::yield_after`] files, each part a transaction of its own.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] (nothing of the failed part, nor of the parts after it, is
    /// written then).
    pub fn record_group(&self, records: &[Record]) -> Result<Vec<Recorded>, StoreError> {
        let now = self.now();
        let mut out = Vec::with_capacity(records.len());
        while out.len() < records.len() {
            let part = self.write(|txn| self.record_group_in(txn, &records[out.len()..], now))?;
            out.extend(part);
        }
        Ok(out)
    }

    /// [`crate::StageStore::record_group_and_claim`] in one transaction: the group's record
    /// and the claim of the next stage's items are one durable commit.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] (nothing of the group is written and nothing is claimed
    /// then).
    pub fn record_group_and_claim(
        &self,
        records: &[Record],
        claim: &ClaimRequest,
    ) -> Result<(Vec<Recorded>, Vec<Lease>), StoreError> {
        let now = self.now();
        let mut out = Vec::with_capacity(records.len());
        loop {
            // The claim goes with the group's last part.
            let (part, leases) = self.write(|txn| {
                let rest = &records[out.len()..];
                let part = self.record_group_in(txn, rest, now)?;
                if part.len() < rest.len() {
                    return Ok((part, None));
                }
                let leases = self.claim_request_in(txn, claim, now)?;
                Ok((part, Some(leases)))
            })?;
            out.extend(part);
            if let Some(leases) = leases {
                return Ok((out, leases));
            }
        }
    }

    /// Records `records` in `txn`, or their first part when another integration waits at
    /// the writer (see [`crate::StoreOptions::yield_after`]): at least one record, so a
    /// caller that loops until all are recorded always progresses.
    fn record_group_in(
        &self,
        txn: &WriteTransaction,
        records: &[Record],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError> {
        let max_attempts = self.queue_max_attempts;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let done = match r {
                Record::Done {
                    lease,
                    file,
                    result,
                    outbox,
                } => match ack_in(txn, lease) {
                    Err(e) if lost(&e) => Recorded::LeaseLost,
                    Err(e) => return Err(e),
                    Ok(()) => {
                        let id = result
                            .clone()
                            .map(|r| add_result_in(txn, r, now))
                            .transpose()?;
                        let mut file = file.clone();
                        if id.is_some() {
                            file.last_result = id;
                        }
                        save_file(txn, &file, now)?;
                        enqueue_outbox(txn, outbox, now)?;
                        Recorded::Done(id)
                    }
                },
                Record::Retry {
                    lease,
                    file,
                    retry_at,
                    error,
                } => match nack_in(txn, lease, *retry_at, error, max_attempts) {
                    Err(e) if lost(&e) => Recorded::LeaseLost,
                    Err(e) => return Err(e),
                    Ok(nacked) => {
                        let mut file = file.clone();
                        file.status = match nacked {
                            Nacked::Parked => FileStatus::Parked,
                            Nacked::RetryAt(_) => FileStatus::Failed,
                        };
                        file.attempts = lease.attempt;
                        file.last_error = Some(error.clone());
                        save_file(txn, &file, now)?;
                        Recorded::Nacked(nacked)
                    }
                },
                Record::Park { lease, file, error } => match park_in(txn, lease, error) {
                    Err(e) if lost(&e) => Recorded::LeaseLost,
                    Err(e) => return Err(e),
                    Ok(()) => {
                        let mut file = file.clone();
                        file.status = FileStatus::Parked;
                        file.attempts = lease.attempt;
                        file.last_error = Some(error.clone());
                        save_file(txn, &file, now)?;
                        Recorded::Parked
                    }
                },
            };
            out.push(done);
            if self.yield_after > 0
                && out.len() >= self.yield_after
                && out.len() < records.len()
                && self.writer.another_lane_waits()
            {
                break;
            }
        }
        Ok(out)
    }

    /// Records the intents of a group of write-backs in one transaction (see
    /// [`crate::IdempotencyLog::begin_writeback`] for what each answer means).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn begin_writebacks(&self, keys: &[WritebackKey]) -> Result<Vec<Begin>, StoreError> {
        let now = self.now();
        let run_id = self.run_id;
        self.write(|txn| {
            keys.iter()
                .map(|k| idempotency::begin_in(txn, k, now, run_id))
                .collect()
        })
    }

    /// Finishes a group of write-backs in one transaction: completes each intent, acks (or
    /// nacks, or parks) its queue item and updates the file's record. A write-back whose
    /// lease was lost is skipped (`false` in the answer) without failing the others.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] (nothing of the group is written then).
    pub fn finish_writebacks(&self, group: &[WritebackDone]) -> Result<Vec<bool>, StoreError> {
        let now = self.now();
        let max_attempts = self.queue_max_attempts;
        self.write(|txn| {
            let mut out = Vec::with_capacity(group.len());
            for w in group {
                // Whether the item ends up parked: its file then shows `Parked` with the
                // write-back's error, so a listing does not analyse it again and hide why.
                let queued = match &w.end {
                    WritebackEnd::Written
                    | WritebackEnd::Skipped { .. }
                    | WritebackEnd::AlreadyDone => ack_in(txn, &w.lease).map(|()| false),
                    WritebackEnd::Retry { at, error } => {
                        nack_in(txn, &w.lease, *at, error, max_attempts)
                            .map(|n| matches!(n, Nacked::Parked))
                    }
                    WritebackEnd::Later { at, reason } => {
                        // Not an attempt of the item's: a later run looks again.
                        nack_in(txn, &w.lease, *at, reason, u32::MAX).map(|_| false)
                    }
                    WritebackEnd::Failed { error } => park_in(txn, &w.lease, error).map(|()| true),
                    WritebackEnd::Parked { reason } => {
                        park_in(txn, &w.lease, reason).map(|()| true)
                    }
                };
                let parked = match queued {
                    Err(e) if lost(&e) => {
                        out.push(false);
                        continue;
                    }
                    Err(e) => return Err(e),
                    Ok(parked) => parked,
                };
                match &w.end {
                    WritebackEnd::Written => {
                        idempotency::complete_in(txn, &w.key, &Completion::Written, now)?;
                    }
                    WritebackEnd::Skipped { reason } => {
                        idempotency::complete_in(
                            txn,
                            &w.key,
                            &Completion::Skipped {
                                reason: reason.clone(),
                            },
                            now,
                        )?;
                    }
                    WritebackEnd::Retry { error, .. } | WritebackEnd::Failed { error } => {
                        idempotency::complete_in(
                            txn,
                            &w.key,
                            &Completion::Failed {
                                error: error.clone(),
                            },
                            now,
                        )?;
                    }
                    WritebackEnd::AlreadyDone
                    | WritebackEnd::Later { .. }
                    | WritebackEnd::Parked { .. } => {}
                }
                let file = {
                    let t = txn.open_table(FILES)?;
                    let v = t.get((w.key.integration.as_str(), w.key.remote_id.as_str()))?;
                    v.map(|v| {
                        decode::<FileRow>("files", v.value())
                            .map(|r| r.into_record(&w.key.integration, &w.key.remote_id))
                    })
                    .transpose()?
                };
                // The record of a newer version is left alone: this write-back was about an
                // older one.
                if let Some(mut file) = file.filter(|f| f.version == w.key.file_version) {
                    // A write-back done earlier as skipped stays skipped.
                    let earlier_skip = match &w.end {
                        WritebackEnd::AlreadyDone => idempotency::skipped_reason_in(txn, &w.key)?,
                        _ => None,
                    };
                    let skip = |file: &mut FileRecord, reason: &str| {
                        file.status = FileStatus::Skipped;
                        file.last_error = Some(format!("write-back skipped: {reason}"));
                    };
                    match &w.end {
                        WritebackEnd::Skipped { reason } => skip(&mut file, reason),
                        WritebackEnd::Written | WritebackEnd::AlreadyDone => match &earlier_skip {
                            Some(reason) => skip(&mut file, reason),
                            None => {
                                file.status = FileStatus::Written;
                                file.last_error = None;
                            }
                        },
                        WritebackEnd::Retry { error, .. }
                        | WritebackEnd::Failed { error }
                        | WritebackEnd::Parked { reason: error } => {
                            if parked {
                                file.status = FileStatus::Parked;
                            }
                            file.last_error = Some(format!("write-back failed: {error}"));
                        }
                        WritebackEnd::Later { .. } => {}
                    }
                    save_file(txn, &file, now)?;
                }
                out.push(true);
            }
            Ok(out)
        })
    }

    /// Saves a finished batch and enqueues its outbox items (batch summaries for notifiers)
    /// in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn finish_batch(&self, batch: &BatchRecord, outbox: &[Outbound]) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| {
            txn.open_table(BATCHES)?
                .insert(batch.id, encode(batch).as_slice())?;
            enqueue_outbox(txn, outbox, now)
        })
    }

    /// [`crate::StageStore::start_batch_audited`] in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; nothing is written then.
    pub fn start_batch_audited(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
    ) -> Result<BatchRecord, StoreError> {
        let now = self.now();
        self.write(|txn| self.open_batch_in(txn, integration, audit, now))
    }

    /// What `claim` asks for, claimed in `txn`.
    fn claim_request_in(
        &self,
        txn: &WriteTransaction,
        claim: &ClaimRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<Lease>, StoreError> {
        claim_in(
            txn,
            &claim.queue,
            &claim.owner,
            claim.max,
            claim.lease,
            now,
            self.queue_max_attempts,
        )
    }

    /// A new batch of `integration` and its audit entry, in `txn`.
    fn open_batch_in(
        &self,
        txn: &WriteTransaction,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
        now: OffsetDateTime,
    ) -> Result<BatchRecord, StoreError> {
        let id = crate::store::next_id(txn, "batch")?;
        let batch = BatchRecord::started(id, integration, now);
        txn.open_table(BATCHES)?
            .insert(id, encode(&batch).as_slice())?;
        self.audit_in(txn, &audit(&batch))?;
        Ok(batch)
    }

    /// [`crate::StageStore::start_batch_and_claim`] in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; nothing is written then.
    pub fn start_batch_and_claim(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
        claim: &ClaimRequest,
    ) -> Result<(BatchRecord, Vec<Lease>), StoreError> {
        let now = self.now();
        self.write(|txn| {
            let batch = self.open_batch_in(txn, integration, audit, now)?;
            let leases = self.claim_request_in(txn, claim, now)?;
            Ok((batch, leases))
        })
    }

    /// [`crate::StageStore::close_batch`] in one transaction: the batch, its outbox items, the
    /// integration's health (when it has a record) and the audit entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; nothing is written then.
    pub fn close_batch(
        &self,
        batch: &BatchRecord,
        outbox: &[Outbound],
        status: IntegrationStatus,
        last_error: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| {
            txn.open_table(BATCHES)?
                .insert(batch.id, encode(batch).as_slice())?;
            enqueue_outbox(txn, outbox, now)?;
            {
                let mut t = txn.open_table(INTEGRATIONS)?;
                let record = crate::store::get_integration(&t, &batch.integration)?;
                if let Some(mut rec) = record {
                    rec.status = status;
                    rec.last_error = last_error.map(str::to_owned);
                    rec.updated_at = now;
                    t.insert(batch.integration.as_str(), encode(&rec).as_slice())?;
                }
            }
            self.audit_in(txn, audit)?;
            Ok(())
        })
    }

    /// An integration's work waiting in its stage queues (write-back, remediation and, for a
    /// notifier, notification), counted together; its fetch queue is [`crate::WorkQueue::depth`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn stage_depth(&self, integration: &str) -> Result<crate::QueueDepth, StoreError> {
        use crate::WorkQueue as _;
        let mut total = crate::QueueDepth {
            pending: 0,
            parked: 0,
        };
        for stage in Stage::ALL {
            let d = self.depth(&stage_queue(integration, stage))?;
            total.pending += d.pending;
            total.parked += d.parked;
        }
        Ok(total)
    }

    /// When the earliest item of `queue` became (or becomes) due: for a notifier's queue,
    /// how long its oldest undelivered alert has waited.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn earliest_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(QUEUE_DUE)?;
            let first = t
                .range((queue, 0u64, 0u64)..=(queue, u64::MAX, u64::MAX))?
                .next()
                .transpose()?;
            Ok(first.and_then(|e| {
                let (_, due_ms, _) = e.0.value();
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(due_ms) * 1_000_000).ok()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proofpix_vault::MasterKey;

    use super::*;
    use crate::{StoreOptions, WorkQueue, in_write_lane};

    fn done(lease: &Lease, now: OffsetDateTime) -> Record {
        Record::Done {
            lease: lease.clone(),
            file: FileRecord {
                integration: "src".into(),
                remote_id: lease.dedup_key.clone(),
                version: "v1".into(),
                name: format!("{}.jpg", lease.dedup_key),
                content_hash: None,
                last_result: None,
                status: FileStatus::Analysed,
                attempts: 1,
                last_error: None,
                updated_at: now,
                web_url: None,
            },
            result: None,
            outbox: Vec::new(),
        }
    }

    /// A group's record gives way to another integration waiting at the writer after
    /// `yield_after` files, and takes the whole group when nobody waits.
    #[test]
    fn a_group_record_commits_a_part_when_another_integration_waits() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            yield_after: 2,
            ..StoreOptions::default()
        };
        let store = Store::open_with(dir.path(), &MasterKey::generate(), options).unwrap();
        let items: Vec<NewItem> = (0..5)
            .map(|i| NewItem {
                dedup_key: format!("f{i}"),
                payload: Vec::new(),
            })
            .collect();
        store.enqueue("src", &items).unwrap();
        let leases = store
            .claim("src", "w", 10, Duration::from_secs(60))
            .unwrap();
        let now = store.now();
        let records: Vec<Record> = leases.iter().map(|l| done(l, now)).collect();

        in_write_lane("src", || {
            let turn = store.writer.enter();
            std::thread::scope(|scope| {
                let hook = scope.spawn(|| {
                    in_write_lane("hook", || {
                        let _turn = store.writer.enter();
                    });
                });
                while !store.writer.another_lane_waits() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let txn = store.db.begin_write().unwrap();
                let part = store.record_group_in(&txn, &records, now).unwrap();
                assert_eq!(
                    part.len(),
                    2,
                    "two files, then the waiting integration's turn"
                );
                txn.commit().unwrap();
                drop(turn);
                hook.join().unwrap();
            });
            // Nobody waits now: the rest in one part.
            let rest = store.record_group(&records[2..]).unwrap();
            assert_eq!(rest.len(), 3);
        });
        assert!(
            store
                .claim("src", "w", 10, Duration::from_secs(60))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.depth("src").unwrap().pending, 0, "all five acked");
    }
}
