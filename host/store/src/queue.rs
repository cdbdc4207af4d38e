//! The work queue: items to fetch and analyse, per integration, with leases.
//!
//! [`WorkQueue`] is the seam for a distributed mode: its semantics are those of a NATS
//! JetStream work-queue stream with an explicit-ack pull consumer, so a JetStream-backed
//! implementation can replace [`Store`]'s without the pipeline changing:
//!
//! | here | JetStream |
//! |---|---|
//! | [`WorkQueue::enqueue`] with a dedup key | publish with `Nats-Msg-Id` (duplicate window) |
//! | [`WorkQueue::claim`] with a lease | pull fetch; the lease is `ack_wait` |
//! | [`WorkQueue::ack`] | `AckAck` (the message leaves a work-queue stream) |
//! | [`WorkQueue::nack`] with a retry time | `Nak` with delay |
//! | parking after `queue_max_attempts` deliveries | `max_deliver` plus an advisory-fed dead-letter stream |
//!
//! A lease that expires without an ack makes the item claimable again (a crashed worker
//! loses nothing), and that delivery counts towards the attempt limit, so an item that
//! crashes its worker every time is parked instead of looping forever. A late ack from a
//! worker whose lease was taken over fails with [`StoreError::LeaseLost`], so two workers
//! never both record a result for one delivery.
//!
//! Methods block on disk (one fsync per call); call them from a blocking thread. The
//! redb-only [`Store::enqueue_page`], [`Store::complete_item`] and [`Store::fail_item`]
//! additionally commit the queue change together with the cursor, result or file record it
//! goes with. With JetStream those become "write the store, then ack", which is safe because
//! the store writes are idempotent per file version.

use std::time::Duration;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{decode, encode, ts};
use crate::records::FileRecord;
use crate::schema::{self, *};
use crate::store::{add_result_in, next_id, put_file_in, set_cursor_in};
use crate::{FileStatus, NewResult, Store, StoreError};

/// An item to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// Items with the same key, in the same integration, are enqueued once until acked
    /// (typically `remote id@version`).
    pub dedup_key: String,
    /// Opaque payload (the item descriptor the plugin returned).
    pub payload: Vec<u8>,
}

/// What [`WorkQueue::enqueue`] did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Added with this id.
    New(u64),
    /// Already queued (or parked) under this id; nothing added.
    Duplicate(u64),
}

/// A claimed item. Pass it back to ack, nack or park.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The item id.
    pub item: u64,
    /// The integration.
    pub integration: String,
    /// Who holds the lease.
    pub owner: String,
    /// The delivery number, from 1.
    pub attempt: u32,
    /// The dedup key.
    pub dedup_key: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// When the lease expires.
    pub until: OffsetDateTime,
}

/// A claim to make: up to `max` due items of `queue`, leased to `owner` for `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The queue (an integration's fetch queue, or one of its stage queues).
    pub queue: String,
    /// Who holds the leases.
    pub owner: String,
    /// Most items claimed.
    pub max: usize,
    /// How long each lease lasts.
    pub lease: Duration,
}

/// A parked item, waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedItem {
    /// The item id.
    pub item: u64,
    /// The integration.
    pub integration: String,
    /// The dedup key.
    pub dedup_key: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Deliveries so far.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
}

/// Queue depth of one integration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready or leased items.
    pub pending: u64,
    /// Parked items.
    pub parked: u64,
}

/// What a nack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// The item will be claimable again at this time.
    RetryAt(OffsetDateTime),
    /// The item used its last attempt and was parked.
    Parked,
}

/// A per-integration work queue with leases (see the module docs for the JetStream mapping).
pub trait WorkQueue {
    /// The implementation's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Enqueues items; an item whose dedup key is already queued is not added again.
    fn enqueue(&self, integration: &str, items: &[NewItem]) -> Result<Vec<Enqueued>, Self::Error>;

    /// Claims up to `max` due items for `owner` for `lease_for`.
    fn claim(
        &self,
        integration: &str,
        owner: &str,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<Lease>, Self::Error>;

    /// Removes a claimed item: it is done.
    fn ack(&self, lease: &Lease) -> Result<(), Self::Error>;

    /// Returns a claimed item for a retry at `retry_at`, or parks it if that was its last attempt.
    fn nack(
        &self,
        lease: &Lease,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<Nacked, Self::Error>;

    /// Parks a claimed item now (a permanent failure).
    fn park(&self, lease: &Lease, error: &str) -> Result<(), Self::Error>;

    /// Up to `limit` parked items of an integration.
    fn parked(&self, integration: &str, limit: usize) -> Result<Vec<ParkedItem>, Self::Error>;

    /// Makes a parked item of `integration` ready again with a fresh attempt count. Returns
    /// whether it was parked there: an item of another integration is left alone (`false`),
    /// so a caller allowed to act on one integration cannot move another's items.
    fn requeue(&self, integration: &str, item: u64) -> Result<bool, Self::Error>;

    /// The queue depth of an integration.
    fn depth(&self, integration: &str) -> Result<QueueDepth, Self::Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ItemState {
    Ready,
    Leased,
    Parked,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct QueueRow {
    pub integration: String,
    pub dedup_key: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
    pub state: ItemState,
    /// Ready: when it may be claimed. Leased: when the lease expires (ms since the epoch).
    pub due_ms: u64,
    pub owner: Option<String>,
    pub last_error: Option<String>,
    #[serde(with = "ts")]
    pub enqueued_at: OffsetDateTime,
}

fn ms(t: OffsetDateTime) -> u64 {
    ts::to_ms(t).max(0) as u64
}

fn adjust_counts(
    txn: &WriteTransaction,
    integration: &str,
    d_pending: i64,
    d_parked: i64,
) -> Result<(), StoreError> {
    let mut t = txn.open_table(QUEUE_COUNTS)?;
    let (p, k) = t.get(integration)?.map(|v| v.value()).unwrap_or((0, 0));
    let p = p.saturating_add_signed(d_pending);
    let k = k.saturating_add_signed(d_parked);
    if p == 0 && k == 0 {
        t.remove(integration)?;
    } else {
        t.insert(integration, (p, k))?;
    }
    Ok(())
}

fn load(txn: &WriteTransaction, item: u64) -> Result<Option<QueueRow>, StoreError> {
    let t = txn.open_table(QUEUE_ITEMS)?;
    let v = t.get(item)?;
    v.map(|v| decode("queue_items", v.value())).transpose()
}

fn save(txn: &WriteTransaction, item: u64, row: &QueueRow) -> Result<(), StoreError> {
    txn.open_table(QUEUE_ITEMS)?
        .insert(item, encode(row).as_slice())?;
    Ok(())
}

/// Loads the item behind a lease, checking the lease is still held.
fn leased_row(txn: &WriteTransaction, lease: &Lease) -> Result<QueueRow, StoreError> {
    let lost = || StoreError::LeaseLost {
        item: lease.item,
        owner: lease.owner.clone(),
    };
    let row = load(txn, lease.item)?.ok_or_else(lost)?;
    if row.state != ItemState::Leased
        || row.owner.as_deref() != Some(lease.owner.as_str())
        || row.attempts != lease.attempt
    {
        return Err(lost());
    }
    Ok(row)
}

pub(crate) fn enqueue_in(
    txn: &WriteTransaction,
    integration: &str,
    items: &[NewItem],
    now: OffsetDateTime,
) -> Result<Vec<Enqueued>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    let mut added = 0i64;
    for item in items {
        let existing = txn
            .open_table(QUEUE_DEDUP)?
            .get((integration, item.dedup_key.as_str()))?
            .map(|v| v.value());
        if let Some(id) = existing {
            out.push(Enqueued::Duplicate(id));
            continue;
        }
        let id = next_id(txn, "queue_item")?;
        let row = QueueRow {
            integration: integration.to_owned(),
            dedup_key: item.dedup_key.clone(),
            payload: item.payload.clone(),
            attempts: 0,
            state: ItemState::Ready,
            due_ms: ms(now),
            owner: None,
            last_error: None,
            enqueued_at: now,
        };
        save(txn, id, &row)?;
        txn.open_table(QUEUE_DUE)?
            .insert((integration, row.due_ms, id), ())?;
        txn.open_table(QUEUE_DEDUP)?
            .insert((integration, item.dedup_key.as_str()), id)?;
        added += 1;
        out.push(Enqueued::New(id));
    }
    if added > 0 {
        adjust_counts(txn, integration, added, 0)?;
    }
    Ok(out)
}

fn park_row(
    txn: &WriteTransaction,
    item: u64,
    mut row: QueueRow,
    error: &str,
) -> Result<(), StoreError> {
    row.state = ItemState::Parked;
    row.owner = None;
    row.last_error = Some(error.to_owned());
    txn.open_table(QUEUE_PARKED)?
        .insert((row.integration.as_str(), item), ())?;
    adjust_counts(txn, &row.integration, -1, 1)?;
    save(txn, item, &row)
}

pub(crate) fn claim_in(
    txn: &WriteTransaction,
    integration: &str,
    owner: &str,
    max: usize,
    lease_for: Duration,
    now: OffsetDateTime,
    max_attempts: u32,
) -> Result<Vec<Lease>, StoreError> {
    let now_ms = ms(now);
    let until = now + lease_for;
    let mut leases = Vec::new();
    while leases.len() < max {
        let due: Vec<(u64, u64)> = txn
            .open_table(QUEUE_DUE)?
            .range((integration, 0u64, 0u64)..=(integration, now_ms, u64::MAX))?
            .take(max - leases.len())
            .map(|e| {
                let k = e?.0;
                let (_, due, id) = k.value();
                Ok((due, id))
            })
            .collect::<Result<_, StoreError>>()?;
        if due.is_empty() {
            break;
        }
        let mut alone = false;
        for (due_ms, id) in due {
            let Some(mut row) = load(txn, id)? else {
                txn.open_table(QUEUE_DUE)?
                    .remove((integration, due_ms, id))?;
                continue;
            };
            // A leased item that is due again lost its worker (a crash, or a lease that ran
            // out): it may be the file that crashes the process. It is delivered alone, so
            // that only it, not the group it came in, is charged the deliveries that end in a
            // crash and parked after the last one.
            let suspect = row.state == ItemState::Leased;
            if suspect && row.attempts < max_attempts && !leases.is_empty() {
                alone = true;
                break;
            }
            txn.open_table(QUEUE_DUE)?
                .remove((integration, due_ms, id))?;
            if suspect && row.attempts >= max_attempts {
                let error = format!(
                    "the lease expired without an ack on each of {} deliveries",
                    row.attempts
                );
                park_row(txn, id, row, &error)?;
                continue;
            }
            alone = suspect;
            row.attempts += 1;
            row.state = ItemState::Leased;
            row.owner = Some(owner.to_owned());
            row.due_ms = ms(until);
            txn.open_table(QUEUE_DUE)?
                .insert((integration, row.due_ms, id), ())?;
            save(txn, id, &row)?;
            leases.push(Lease {
                item: id,
                integration: integration.to_owned(),
                owner: owner.to_owned(),
                attempt: row.attempts,
                dedup_key: row.dedup_key,
                payload: row.payload,
                until,
            });
            if alone {
                break;
            }
        }
        if alone {
            break;
        }
    }
    Ok(leases)
}

pub(crate) fn ack_in(txn: &WriteTransaction, lease: &Lease) -> Result<(), StoreError> {
    let row = leased_row(txn, lease)?;
    txn.open_table(QUEUE_DUE)?
        .remove((row.integration.as_str(), row.due_ms, lease.item))?;
    txn.open_table(QUEUE_DEDUP)?
        .remove((row.integration.as_str(), row.dedup_key.as_str()))?;
    txn.open_table(QUEUE_ITEMS)?.remove(lease.item)?;
    adjust_counts(txn, &row.integration, -1, 0)
}

pub(crate) fn nack_in(
    txn: &WriteTransaction,
    lease: &Lease,
    retry_at: OffsetDateTime,
    error: &str,
    max_attempts: u32,
) -> Result<Nacked, StoreError> {
    let mut row = leased_row(txn, lease)?;
    txn.open_table(QUEUE_DUE)?
        .remove((row.integration.as_str(), row.due_ms, lease.item))?;
    if row.attempts >= max_attempts {
        park_row(txn, lease.item, row, error)?;
        return Ok(Nacked::Parked);
    }
    row.state = ItemState::Ready;
    row.owner = None;
    row.last_error = Some(error.to_owned());
    row.due_ms = ms(retry_at);
    txn.open_table(QUEUE_DUE)?
        .insert((row.integration.as_str(), row.due_ms, lease.item), ())?;
    save(txn, lease.item, &row)?;
    Ok(Nacked::RetryAt(retry_at))
}

pub(crate) fn park_in(
    txn: &WriteTransaction,
    lease: &Lease,
    error: &str,
) -> Result<(), StoreError> {
    let row = leased_row(txn, lease)?;
    txn.open_table(QUEUE_DUE)?
        .remove((row.integration.as_str(), row.due_ms, lease.item))?;
    park_row(txn, lease.item, row, error)
}

/// Removes every queue item of an integration (with its index entries); returns how many.
pub(crate) fn remove_integration(txn: &WriteTransaction, id: &str) -> Result<u64, StoreError> {
    let end = schema::prefix_end(id);
    let mut items = Vec::new();
    txn.open_table(QUEUE_DUE)?.retain_in(
        (id, 0u64, 0u64)..(end.as_str(), 0u64, 0u64),
        |k, _| {
            items.push(k.2);
            false
        },
    )?;
    txn.open_table(QUEUE_PARKED)?
        .retain_in((id, 0u64)..(end.as_str(), 0u64), |k, _| {
            items.push(k.1);
            false
        })?;
    txn.open_table(QUEUE_DEDUP)?
        .retain_in((id, "")..(end.as_str(), ""), |_, _| false)?;
    let mut t = txn.open_table(QUEUE_ITEMS)?;
    for item in &items {
        t.remove(*item)?;
    }
    txn.open_table(QUEUE_COUNTS)?.remove(id)?;
    Ok(items.len() as u64)
}

impl WorkQueue for Store {
    type Error = StoreError;

    fn enqueue(&self, integration: &str, items: &[NewItem]) -> Result<Vec<Enqueued>, StoreError> {
        let now = self.now();
        self.write(|txn| enqueue_in(txn, integration, items, now))
    }

    fn claim(
        &self,
        integration: &str,
        owner: &str,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let now = self.now();
        // Nothing due: answered from a read transaction, without a turn at the one writer. An
        // empty claim is common (a run's last look at its queues, a webhook run's fetch queue
        // after its one group), and behind a backlog each turn waits for one of its group
        // commits. An item that comes due just after the look is claimed by the next one.
        let nothing_due = self.read(|txn| {
            Ok(txn
                .open_table(QUEUE_DUE)?
                .range((integration, 0u64, 0u64)..=(integration, ms(now), u64::MAX))?
                .next()
                .is_none())
        })?;
        if nothing_due || max == 0 {
            return Ok(Vec::new());
        }
        self.write(|txn| {
            claim_in(
                txn,
                integration,
                owner,
                max,
                lease_for,
                now,
                self.queue_max_attempts,
            )
        })
    }

    fn ack(&self, lease: &Lease) -> Result<(), StoreError> {
        self.write(|txn| ack_in(txn, lease))
    }

    fn nack(
        &self,
        lease: &Lease,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<Nacked, StoreError> {
        self.write(|txn| nack_in(txn, lease, retry_at, error, self.queue_max_attempts))
    }

    fn park(&self, lease: &Lease, error: &str) -> Result<(), StoreError> {
        self.write(|txn| park_in(txn, lease, error))
    }

    fn parked(&self, integration: &str, limit: usize) -> Result<Vec<ParkedItem>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let idx = txn.open_table(QUEUE_PARKED)?;
            let items = txn.open_table(QUEUE_ITEMS)?;
            let mut out = Vec::new();
            for e in idx
                .range((integration, 0u64)..(end.as_str(), 0u64))?
                .take(limit)
            {
                let id = e?.0.value().1;
                let Some(v) = items.get(id)? else { continue };
                let row: QueueRow = decode("queue_items", v.value())?;
                out.push(ParkedItem {
                    item: id,
                    integration: row.integration,
                    dedup_key: row.dedup_key,
                    payload: row.payload,
                    attempts: row.attempts,
                    last_error: row.last_error,
                });
            }
            Ok(out)
        })
    }

    fn requeue(&self, integration: &str, item: u64) -> Result<bool, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let Some(mut row) = load(txn, item)? else {
                return Ok(false);
            };
            if row.state != ItemState::Parked || row.integration != integration {
                return Ok(false);
            }
            txn.open_table(QUEUE_PARKED)?
                .remove((row.integration.as_str(), item))?;
            row.state = ItemState::Ready;
            row.attempts = 0;
            row.due_ms = ms(now);
            txn.open_table(QUEUE_DUE)?
                .insert((row.integration.as_str(), row.due_ms, item), ())?;
            adjust_counts(txn, &row.integration, 1, -1)?;
            save(txn, item, &row)?;
            Ok(true)
        })
    }

    fn depth(&self, integration: &str) -> Result<QueueDepth, StoreError> {
        self.read(|txn| {
            let (pending, parked) = txn
                .open_table(QUEUE_COUNTS)?
                .get(integration)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            Ok(QueueDepth { pending, parked })
        })
    }
}

impl Store {
    /// Expires every lease now, so the items are claimable at once. For a
    /// daemon starting on a store it holds exclusively: any lease in the file
    /// belongs to a process that died. Each such item's interrupted delivery
    /// still counts towards its attempt limit (a file that crashes the
    /// daemon every time ends up parked, not in a crash loop).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn expire_leases(&self) -> Result<u64, StoreError> {
        self.write(|txn| {
            let leased: Vec<(u64, QueueRow)> = {
                let t = txn.open_table(QUEUE_ITEMS)?;
                let mut v = Vec::new();
                for e in t.iter()? {
                    let (k, row) = e?;
                    let row: QueueRow = decode("queue_items", row.value())?;
                    if row.state == ItemState::Leased {
                        v.push((k.value(), row));
                    }
                }
                v
            };
            let n = leased.len() as u64;
            for (id, mut row) in leased {
                txn.open_table(QUEUE_DUE)?
                    .remove((row.integration.as_str(), row.due_ms, id))?;
                row.due_ms = 0;
                txn.open_table(QUEUE_DUE)?
                    .insert((row.integration.as_str(), 0u64, id), ())?;
                save(txn, id, &row)?;
            }
            Ok(n)
        })
    }

    /// Enqueues one page of a sync and advances the integration's cursor in the same
    /// transaction: after a crash either both happened or neither, so no item is skipped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn enqueue_page(
        &self,
        integration: &str,
        items: &[NewItem],
        next_cursor: Option<&str>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let out = enqueue_in(txn, integration, items, now)?;
            set_cursor_in(txn, integration, next_cursor)?;
            Ok(out)
        })
    }

    /// Finishes a claimed item in one transaction: stores its result (if any), saves its file
    /// record (with `last_result` set to the new result) and acks the lease. Returns the
    /// result id.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] if the lease is no longer held (nothing is written then);
    /// [`StoreError::Database`].
    pub fn complete_item(
        &self,
        lease: &Lease,
        file: &FileRecord,
        result: Option<NewResult>,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.now();
        self.write(|txn| {
            ack_in(txn, lease)?;
            let id = result.map(|r| add_result_in(txn, r, now)).transpose()?;
            let mut file = file.clone();
            if id.is_some() {
                file.last_result = id;
            }
            file.updated_at = now;
            put_file_in(&mut txn.open_table(FILES)?, &file)?;
            Ok(id)
        })
    }

    /// Fails a claimed item in one transaction: nacks it (or parks it after its last
    /// attempt) and saves its file record as `Failed` (or `Parked`) with the error.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`], [`StoreError::Database`].
    pub fn fail_item(
        &self,
        lease: &Lease,
        file: &FileRecord,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<Nacked, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let outcome = nack_in(txn, lease, retry_at, error, self.queue_max_attempts)?;
            let mut file = file.clone();
            file.status = match outcome {
                Nacked::Parked => FileStatus::Parked,
                Nacked::RetryAt(_) => FileStatus::Failed,
            };
            file.attempts = lease.attempt;
            file.last_error = Some(error.to_owned());
            file.updated_at = now;
            put_file_in(&mut txn.open_table(FILES)?, &file)?;
            Ok(outcome)
        })
    }
}
