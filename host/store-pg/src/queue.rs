//! The work queue on PostgreSQL: [`WorkQueue`] with `FOR UPDATE SKIP LOCKED` claims.
//!
//! The semantics are redb's (`proofpix_store::queue`), item for item: deduplication while
//! queued or parked, leases that expire and count as a delivery, an item that lost its
//! worker delivered alone and parked after its last delivery, a late ack refused with
//! [`StoreError::LeaseLost`]. What PostgreSQL adds is that workers on several nodes claim
//! at once: `SKIP LOCKED` hands each of them rows no other claim holds, without waiting.

use std::collections::HashMap;
use std::time::Duration;

use proofpix_store::{
    Enqueued, Lease, Nacked, NewItem, ParkedItem, QueueDepth, StoreError, WORK_SIGNAL, WorkQueue,
};
use time::OffsetDateTime;
use tokio_postgres::{Statement, Transaction};

use crate::{PgStore, ms};

/// Adds the items that are not queued yet; answers, per input row, the new id or the id
/// that already holds the key (`NULL` for both when another transaction added the key after
/// this statement's snapshot: the caller looks again).
pub(crate) const ENQUEUE: &str = "WITH input AS ( \
       SELECT u.k, u.p, u.ord FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS u(k, p, ord) \
     ), ins AS ( \
       INSERT INTO queue_items (queue, dedup_key, payload, attempts, state, due_ms, enqueued_ms) \
       SELECT $1::text, k, p, 0, 'ready', $4::bigint, $4::bigint FROM input ORDER BY ord \
       ON CONFLICT (queue, dedup_key) DO NOTHING \
       RETURNING id, dedup_key \
     ) \
     SELECT input.ord, ins.id, old.id FROM input \
     LEFT JOIN ins ON ins.dedup_key = input.k \
     LEFT JOIN queue_items old ON old.queue = $1::text AND old.dedup_key = input.k \
     ORDER BY input.ord";

const CLAIM_SELECT: &str = "SELECT id, state, attempts, dedup_key, payload FROM queue_items \
     WHERE queue = $1 AND state <> 'parked' AND due_ms <= $2 AND NOT (id = ANY($4)) \
     ORDER BY due_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED";

const CLAIM_LEASE: &str = "UPDATE queue_items SET state = 'leased', owner = $2, \
     attempts = attempts + 1, due_ms = $3 WHERE id = ANY($1)";

const CLAIM_PARK: &str = "UPDATE queue_items SET state = 'parked', owner = NULL, \
     last_error = 'the lease expired without an ack on each of ' || attempts || ' deliveries' \
     WHERE id = ANY($1)";

/// The lease condition every ack, nack and park carries: `$1` item, `$2` owner, `$3`
/// delivery number.
macro_rules! leased {
    () => {
        "id = $1 AND state = 'leased' AND owner = $2 AND attempts = $3"
    };
}
pub(crate) use leased;

pub(crate) const ACK: &str = concat!("DELETE FROM queue_items WHERE ", leased!(), " RETURNING id");

/// `$4` the attempt limit, `$5` the error, `$6` when to retry; answers the new state.
pub(crate) const NACK: &str = concat!(
    "UPDATE queue_items SET \
     state = CASE WHEN attempts >= $4 THEN 'parked' ELSE 'ready' END, \
     due_ms = CASE WHEN attempts >= $4 THEN due_ms ELSE $6 END, \
     owner = NULL, last_error = $5 WHERE ",
    leased!(),
    " RETURNING state"
);

/// `$4` the error.
pub(crate) const PARK: &str = concat!(
    "UPDATE queue_items SET state = 'parked', owner = NULL, last_error = $4 WHERE ",
    leased!(),
    " RETURNING id"
);

const PARKED: &str = "SELECT id, queue, dedup_key, payload, attempts, last_error FROM queue_items \
     WHERE queue = $1 AND state = 'parked' ORDER BY id LIMIT $2";

const REQUEUE: &str = "UPDATE queue_items SET state = 'ready', attempts = 0, due_ms = $3 \
     WHERE id = $2 AND queue = $1 AND state = 'parked'";

pub(crate) const DEPTH: &str = "SELECT count(*) FILTER (WHERE state <> 'parked'), \
     count(*) FILTER (WHERE state = 'parked') FROM queue_items WHERE queue = ANY($1)";

pub(crate) const LOOK_UP_KEYS: &str =
    "SELECT dedup_key, id FROM queue_items WHERE queue = $1 AND dedup_key = ANY($2)";

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        item: lease.item,
        owner: lease.owner.clone(),
    }
}

/// The parameters of [`ACK`] (and the first three of the others) for a lease.
pub(crate) struct LeaseParams<'a> {
    pub item: i64,
    pub owner: &'a str,
    pub attempt: i64,
}

impl<'a> LeaseParams<'a> {
    pub(crate) fn of(lease: &'a Lease) -> Self {
        LeaseParams {
            item: lease.item as i64,
            owner: &lease.owner,
            attempt: i64::from(lease.attempt),
        }
    }
}

/// Enqueues `items` on `queue` inside `txn` (`st` is [`ENQUEUE`], `look_up` is
/// [`LOOK_UP_KEYS`]). One statement, plus one more in the rare race described at
/// [`ENQUEUE`].
pub(crate) async fn enqueue_in(
    store: &PgStore,
    txn: &Transaction<'_>,
    [st, look_up]: &[Statement; 2],
    queue: &str,
    items: &[NewItem],
    now: OffsetDateTime,
) -> Result<Vec<Enqueued>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&str> = items.iter().map(|i| i.dedup_key.as_str()).collect();
    let payloads: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
    let rows = store
        .query(txn, st, &[&queue, &keys, &payloads, &ms(now)])
        .await?;
    let mut out = Vec::with_capacity(items.len());
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut unresolved = Vec::new();
    for (row, key) in rows.iter().zip(&keys) {
        let new: Option<i64> = row.get(1);
        let old: Option<i64> = row.get(2);
        let answer = match (seen.get(key), new, old) {
            // A key twice in one call: the first occurrence added it.
            (Some(&id), _, _) => Some(Enqueued::Duplicate(id)),
            (None, Some(id), _) => Some(Enqueued::New(id as u64)),
            (None, None, Some(id)) => Some(Enqueued::Duplicate(id as u64)),
            (None, None, None) => None,
        };
        match answer {
            Some(a) => {
                let (Enqueued::New(id) | Enqueued::Duplicate(id)) = a;
                seen.entry(*key).or_insert(id);
                out.push(a);
            }
            None => {
                unresolved.push((out.len(), *key));
                out.push(Enqueued::Duplicate(0));
            }
        }
    }
    if !unresolved.is_empty() {
        // Another transaction committed these keys after our statement began: they are
        // queued, under the id it gave them.
        let keys: Vec<&str> = unresolved.iter().map(|(_, k)| *k).collect();
        let rows = store.query(txn, look_up, &[&queue, &keys]).await?;
        let ids: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (i, key) in unresolved {
            out[i] = Enqueued::Duplicate(ids.get(key).copied().unwrap_or(0) as u64);
        }
    }
    Ok(out)
}

impl PgStore {
    /// [`WorkQueue::enqueue`] and [`proofpix_store::StageStore::enqueue_page`]: the items and,
    /// with `cursor`, the integration's cursor in one transaction.
    pub(crate) fn enqueue_with_cursor(
        &self,
        queue: &str,
        items: &[NewItem],
        cursor: Option<Option<&str>>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [enqueue, look_up, set, clear] = conn
                .prepare([
                    ENQUEUE,
                    LOOK_UP_KEYS,
                    crate::records::SET_CURSOR,
                    crate::records::CLEAR_CURSOR,
                ])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let out = enqueue_in(self, &txn, &[enqueue, look_up], queue, items, now).await?;
            if let Some(cursor) = cursor {
                crate::records::set_cursor_in(self, &txn, &[set, clear], queue, cursor).await?;
            }
            if out.iter().any(|e| matches!(e, Enqueued::New(_))) {
                // Wakes idle nodes to help (`ControlStore::listen`), delivered on commit.
                let message = format!("{WORK_SIGNAL}{queue}");
                if message.len() <= proofpix_store::MAX_SIGNAL_BYTES {
                    self.x(
                        &txn,
                        "SELECT pg_notify($1, $2)",
                        &[&self.channel.as_str(), &message],
                    )
                    .await?;
                }
            }
            self.commit(txn).await?;
            Ok(out)
        })
    }

    async fn claim_in(
        &self,
        queue: &str,
        owner: &str,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let now = self.now();
        let until = now + lease_for;
        let max_attempts = i64::from(self.queue_max_attempts);
        let mut conn = self.conn().await?;
        let [select, lease, park] = conn
            .prepare([CLAIM_SELECT, CLAIM_LEASE, CLAIM_PARK])
            .await
            .map_err(|e| self.err(e))?;
        let txn = conn.begin().await.map_err(|e| self.err(e))?;
        let mut leases = Vec::new();
        let mut seen: Vec<i64> = Vec::new();
        let mut to_park: Vec<i64> = Vec::new();
        let mut alone = false;
        while leases.len() < max && !alone {
            let want = (max - leases.len()) as i64;
            let rows = self
                .query(&txn, &select, &[&queue, &ms(now), &want, &seen])
                .await?;
            if rows.is_empty() {
                break;
            }
            let fetched = rows.len() as i64;
            for row in rows {
                let id: i64 = row.get(0);
                let state: &str = row.get(1);
                let attempts: i64 = row.get(2);
                // A leased item that is due again lost its worker (a crash, or a lease that
                // ran out): it may be the file that crashes the process, so it is delivered
                // alone and parked after its last delivery (see proofpix_store::queue).
                let suspect = state == "leased";
                if suspect && attempts < max_attempts && !leases.is_empty() {
                    alone = true;
                    break;
                }
                seen.push(id);
                if suspect && attempts >= max_attempts {
                    to_park.push(id);
                    continue;
                }
                leases.push(Lease {
                    item: id as u64,
                    integration: queue.to_owned(),
                    owner: owner.to_owned(),
                    attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                    dedup_key: row.get(3),
                    payload: row.get(4),
                    until,
                });
                if suspect {
                    alone = true;
                    break;
                }
            }
            if fetched < want {
                break;
            }
        }
        if !to_park.is_empty() {
            self.query(&txn, &park, &[&to_park]).await?;
        }
        if !leases.is_empty() {
            let ids: Vec<i64> = leases.iter().map(|l| l.item as i64).collect();
            self.query(&txn, &lease, &[&ids, &owner, &ms(until)])
                .await?;
        }
        self.commit(txn).await?;
        Ok(leases)
    }

    /// Runs one lease statement (`sql` with the lease's three parameters, then `extra`)
    /// outside a transaction; answers its rows, none when the lease was lost.
    async fn on_lease(
        &self,
        sql: &'static str,
        lease: &Lease,
        extra: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let mut conn = self.conn().await?;
        let [st] = conn.prepare([sql]).await.map_err(|e| self.err(e))?;
        let p = LeaseParams::of(lease);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&p.item, &p.owner, &p.attempt];
        params.extend_from_slice(extra);
        self.query(conn.client(), &st, &params).await
    }

    /// The pending and parked items of `queues`, together.
    pub(crate) async fn depth_of(&self, queues: &[String]) -> Result<QueueDepth, StoreError> {
        let mut conn = self.conn().await?;
        let [st] = conn.prepare([DEPTH]).await.map_err(|e| self.err(e))?;
        let rows = self.query(conn.client(), &st, &[&queues]).await?;
        let (pending, parked): (i64, i64) = (rows[0].get(0), rows[0].get(1));
        Ok(QueueDepth {
            pending: pending as u64,
            parked: parked as u64,
        })
    }
}

/// A nack's answer from the state the item was left in.
pub(crate) fn nacked(state: &str, retry_at: OffsetDateTime) -> Nacked {
    if state == "parked" {
        Nacked::Parked
    } else {
        Nacked::RetryAt(retry_at)
    }
}

impl WorkQueue for PgStore {
    type Error = StoreError;

    fn enqueue(&self, integration: &str, items: &[NewItem]) -> Result<Vec<Enqueued>, StoreError> {
        self.enqueue_with_cursor(integration, items, None)
    }

    fn claim(
        &self,
        integration: &str,
        owner: &str,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.block_on(self.claim_in(integration, owner, max, lease_for))
    }

    fn ack(&self, lease: &Lease) -> Result<(), StoreError> {
        let rows = self.block_on(self.on_lease(ACK, lease, &[]))?;
        if rows.is_empty() {
            return Err(lost(lease));
        }
        Ok(())
    }

    fn nack(
        &self,
        lease: &Lease,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<Nacked, StoreError> {
        let max = i64::from(self.queue_max_attempts);
        let rows = self.block_on(self.on_lease(NACK, lease, &[&max, &error, &ms(retry_at)]))?;
        let row = rows.first().ok_or_else(|| lost(lease))?;
        Ok(nacked(row.get(0), retry_at))
    }

    fn park(&self, lease: &Lease, error: &str) -> Result<(), StoreError> {
        let rows = self.block_on(self.on_lease(PARK, lease, &[&error]))?;
        if rows.is_empty() {
            return Err(lost(lease));
        }
        Ok(())
    }

    fn parked(&self, integration: &str, limit: usize) -> Result<Vec<ParkedItem>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([PARKED]).await.map_err(|e| self.err(e))?;
            let rows = self
                .query(conn.client(), &st, &[&integration, &limit])
                .await?;
            Ok(rows
                .iter()
                .map(|r| ParkedItem {
                    item: r.get::<_, i64>(0) as u64,
                    integration: r.get(1),
                    dedup_key: r.get(2),
                    payload: r.get(3),
                    attempts: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
                    last_error: r.get(5),
                })
                .collect())
        })
    }

    fn requeue(&self, integration: &str, item: u64) -> Result<bool, StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([REQUEUE]).await.map_err(|e| self.err(e))?;
            let n = conn
                .client()
                .execute(&st, &[&integration, &(item as i64), &ms(now)])
                .await;
            self.counters.waited(1);
            Ok(n.map_err(|e| self.err(e))? == 1)
        })
    }

    fn depth(&self, integration: &str) -> Result<QueueDepth, StoreError> {
        self.block_on(self.depth_of(&[integration.to_owned()]))
    }
}
