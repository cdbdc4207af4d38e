//! Group commit and the outbox on PostgreSQL, and the [`StageStore`] implementation.
//!
//! [`StageStore::record_group`] is one transaction. Each file of the group is **one**
//! statement whose data-modifying CTEs ack (or nack, or park) its lease, insert its result,
//! upsert its file record and queue its outbox items, each step conditional on the lease
//! still being held, so a file whose lease was taken over writes nothing and costs no other
//! file ([`Recorded::LeaseLost`]). The group's statements are sent pipelined: `BEGIN`, one
//! round trip for the whole group, `COMMIT`. A file record is written by an upsert, never
//! read and written back, so pipelined statements for the same file apply in order, as
//! one-by-one statements would.
//!
//! Write-back groups ([`StageStore::finish_writebacks`]) work the same way: one statement per
//! write-back (its queue item, its intent's completion and its file record), pipelined in one
//! transaction. A file is changed in SQL, never read into the node and written back, so two
//! write-backs of one file in a group apply in order.

use proofpix_store::{
    AnalysisResult, AuditEvent, BatchRecord, Begin, Completion, Enqueued, FileRecord, FileStatus,
    IntegrationStatus, Lease, NewItem, Outbound, QueueDepth, Record, Recorded, SKIPPED_PREFIX,
    Stage, StageStore, StoreError, WritebackDone, WritebackEnd, WritebackKey, stage_queue,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use crate::idempotency::{completion_row, no_intent};
use crate::queue::{ENQUEUE, LeaseParams, enqueue_in, leased, nacked};
use crate::records::{PUT_BATCH, enum_text, put_batch_in};
use crate::{PgStore, from_ms, ms};

/// The upsert tail shared by the statements that save a file record.
macro_rules! file_upsert {
    () => {
        " ON CONFLICT (integration, remote_id) DO UPDATE SET version = EXCLUDED.version, \
         name = EXCLUDED.name, content_hash = EXCLUDED.content_hash, \
         last_result = EXCLUDED.last_result, status = EXCLUDED.status, \
         attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, \
         updated_ms = EXCLUDED.updated_ms, web_url = EXCLUDED.web_url"
    };
}

/// A file analysed (or finished without a result). `$1..$3` the lease; `$4` whether there
/// is a result, `$5..$10` the result; `$11` now; `$12..$20` the file record; `$21..$23` the
/// outbox (queues, keys, payloads); `$24` the file's web link. Answers whether the lease was
/// held and the result id.
const RECORD_DONE: &str = concat!(
    "WITH acked AS (DELETE FROM queue_items WHERE ",
    leased!(),
    " RETURNING id), \
     res AS (INSERT INTO results (integration, remote_id, file_version, risk, score, \
       report_json, created_ms) \
       SELECT $5::text, $6::text, $7::text, $8::text, $9::bigint, $10::text, $11::bigint \
       FROM acked WHERE $4::boolean RETURNING id), \
     fil AS (INSERT INTO files (integration, remote_id, version, name, content_hash, \
       last_result, status, attempts, last_error, updated_ms, web_url) \
       SELECT $12::text, $13::text, $14::text, $15::text, $16::text, \
       coalesce((SELECT id FROM res), $17::bigint), $18::text, $19::bigint, $20::text, \
       $11::bigint, $24::text FROM acked",
    file_upsert!(),
    " RETURNING 1), \
     outbox AS (INSERT INTO queue_items (queue, dedup_key, payload, attempts, state, due_ms, \
       enqueued_ms) \
       SELECT u.q, u.k, u.p, 0, 'ready', $11::bigint, $11::bigint \
       FROM unnest($21::text[], $22::text[], $23::bytea[]) WITH ORDINALITY AS u(q, k, p, ord) \
       WHERE EXISTS (SELECT 1 FROM acked) ORDER BY u.ord \
       ON CONFLICT (queue, dedup_key) DO NOTHING RETURNING 1) \
     SELECT (SELECT count(*) FROM acked), (SELECT id FROM res)"
);

/// A failure to retry. `$1..$3` the lease; `$4` the attempt limit, `$5` when to retry, `$6`
/// the error, `$7` now; `$8..$13` the file record; `$14` the delivery number; `$15`/`$16`
/// the parked and failed status names; `$17` the file's web link. Answers the item's new state
/// (no row: lease lost).
const RECORD_RETRY: &str = concat!(
    "WITH n AS (UPDATE queue_items SET \
       state = CASE WHEN attempts >= $4::bigint THEN 'parked' ELSE 'ready' END, \
       due_ms = CASE WHEN attempts >= $4::bigint THEN due_ms ELSE $5::bigint END, \
       owner = NULL, last_error = $6::text WHERE ",
    leased!(),
    " RETURNING state), \
     fil AS (INSERT INTO files (integration, remote_id, version, name, content_hash, \
       last_result, status, attempts, last_error, updated_ms, web_url) \
       SELECT $8::text, $9::text, $10::text, $11::text, $12::text, $13::bigint, \
       CASE WHEN n.state = 'parked' THEN $15::text ELSE $16::text END, $14::bigint, \
       $6::text, $7::bigint, $17::text FROM n",
    file_upsert!(),
    " RETURNING 1) \
     SELECT state FROM n"
);

/// A permanent failure. `$1..$3` the lease; `$4` the error, `$5` now; `$6..$11` the file
/// record; `$12` the delivery number; `$13` the parked status name; `$14` the file's web
/// link. Answers a row when the lease was held.
const RECORD_PARK: &str = concat!(
    "WITH p AS (UPDATE queue_items SET state = 'parked', owner = NULL, last_error = $4::text \
       WHERE ",
    leased!(),
    " RETURNING id), \
     fil AS (INSERT INTO files (integration, remote_id, version, name, content_hash, \
       last_result, status, attempts, last_error, updated_ms, web_url) \
       SELECT $6::text, $7::text, $8::text, $9::text, $10::text, $11::bigint, $13::text, \
       $12::bigint, $4::text, $5::bigint, $14::text FROM p",
    file_upsert!(),
    " RETURNING 1) \
     SELECT id FROM p"
);

const EARLIEST_DUE: &str =
    "SELECT min(due_ms) FROM queue_items WHERE queue = $1 AND state <> 'parked'";

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn file_params(f: &FileRecord) -> [Box<dyn ToSql + Sync + Send>; 6] {
    [
        Box::new(f.integration.clone()),
        Box::new(f.remote_id.clone()),
        Box::new(f.version.clone()),
        Box::new(f.name.clone()),
        Box::new(f.content_hash.clone()),
        Box::new(f.last_result.map(|id| id as i64)),
    ]
}

fn lease_params(l: &Lease) -> [Box<dyn ToSql + Sync + Send>; 3] {
    let p = LeaseParams::of(l);
    [
        Box::new(p.item),
        Box::new(p.owner.to_owned()),
        Box::new(p.attempt),
    ]
}

/// The statement and parameters recording one file of a group.
fn record_statement(r: &Record, now_ms: i64, max_attempts: i64) -> (&'static str, Params) {
    let mut p: Params = Vec::with_capacity(24);
    match r {
        Record::Done {
            lease,
            file,
            result,
            outbox,
        } => {
            p.extend(lease_params(lease));
            p.push(Box::new(result.is_some()));
            match result {
                Some(r) => {
                    p.push(Box::new(r.integration.clone()));
                    p.push(Box::new(r.remote_id.clone()));
                    p.push(Box::new(r.file_version.clone()));
                    p.push(Box::new(r.risk.as_str()));
                    p.push(Box::new(i64::from(r.score)));
                    p.push(Box::new(r.report_json.clone()));
                }
                None => {
                    for _ in 0..4 {
                        p.push(Box::new(String::new()));
                    }
                    p.push(Box::new(0i64));
                    p.push(Box::new(String::new()));
                }
            }
            p.push(Box::new(now_ms));
            p.extend(file_params(file));
            p.push(Box::new(enum_text(&file.status)));
            p.push(Box::new(i64::from(file.attempts)));
            p.push(Box::new(file.last_error.clone()));
            p.push(Box::new(
                outbox.iter().map(|o| o.queue.clone()).collect::<Vec<_>>(),
            ));
            p.push(Box::new(
                outbox
                    .iter()
                    .map(|o| o.item.dedup_key.clone())
                    .collect::<Vec<_>>(),
            ));
            p.push(Box::new(
                outbox
                    .iter()
                    .map(|o| o.item.payload.clone())
                    .collect::<Vec<_>>(),
            ));
            p.push(Box::new(file.web_url.clone()));
            (RECORD_DONE, p)
        }
        Record::Retry {
            lease,
            file,
            retry_at,
            error,
        } => {
            p.extend(lease_params(lease));
            p.push(Box::new(max_attempts));
            p.push(Box::new(ms(*retry_at)));
            p.push(Box::new(error.clone()));
            p.push(Box::new(now_ms));
            p.extend(file_params(file));
            p.push(Box::new(i64::from(lease.attempt)));
            p.push(Box::new(enum_text(&FileStatus::Parked)));
            p.push(Box::new(enum_text(&FileStatus::Failed)));
            p.push(Box::new(file.web_url.clone()));
            (RECORD_RETRY, p)
        }
        Record::Park { lease, file, error } => {
            p.extend(lease_params(lease));
            p.push(Box::new(error.clone()));
            p.push(Box::new(now_ms));
            p.extend(file_params(file));
            p.push(Box::new(i64::from(lease.attempt)));
            p.push(Box::new(enum_text(&FileStatus::Parked)));
            p.push(Box::new(file.web_url.clone()));
            (RECORD_PARK, p)
        }
    }
}

/// One write-back of a group: its queue item acked, nacked or parked (`$4` says which, under
/// the lease `$1..$3`; `$5` the attempt limit, `$6` when to retry, `$7` the error), its intent
/// completed (`$13` the state, `$14` the note; `NULL`: no completion), and its file record
/// updated when it is still of that version (`$16` how: `written`, `skipped`, `already`,
/// `failed` or `later`; `$17` the reason; `$18`/`$19` the written and skipped status names;
/// `$20` the skipped prefix; `$21` the parked status name, set when a failure parks the
/// item), all only if the lease was held. `$8..$12` the key, `$15` now.
/// Answers whether the lease was held and whether an intent was completed.
///
/// `prior` reads the row as it was before this statement: for a write-back met again as
/// done, whether it was done as skipped.
const FINISH_WRITEBACK: &str = concat!(
    "WITH del AS (DELETE FROM queue_items WHERE $4::text = 'ack' AND ",
    leased!(),
    " RETURNING id), \
     upd AS (UPDATE queue_items SET \
       state = CASE WHEN $4::text = 'park' OR attempts >= $5::bigint THEN 'parked' ELSE 'ready' END, \
       due_ms = CASE WHEN $4::text = 'park' OR attempts >= $5::bigint THEN due_ms ELSE $6::bigint END, \
       owner = NULL, last_error = $7::text \
       WHERE $4::text <> 'ack' AND ",
    leased!(),
    " RETURNING id, state), \
     q AS (SELECT id FROM del UNION ALL SELECT id FROM upd), \
     prior AS (SELECT last_error FROM writebacks WHERE integration = $8 AND remote_id = $9 \
       AND file_version = $10 AND plugin_version = $11 AND policy_version = $12 \
       AND state = 'done'), \
     done AS (UPDATE writebacks SET state = $13::text, at_ms = $15::bigint, last_error = $14::text \
       WHERE integration = $8 AND remote_id = $9 AND file_version = $10 \
       AND plugin_version = $11 AND policy_version = $12 AND state = 'intent' \
       AND $13::text IS NOT NULL AND EXISTS (SELECT 1 FROM q) RETURNING 1), \
     skip AS (SELECT substr(last_error, length($20::text) + 1) AS reason FROM prior \
       WHERE starts_with(last_error, $20::text)), \
     fil AS (UPDATE files SET \
       status = CASE $16::text \
         WHEN 'written' THEN $18::text \
         WHEN 'skipped' THEN $19::text \
         WHEN 'already' THEN CASE WHEN EXISTS (SELECT 1 FROM skip) THEN $19::text ELSE $18::text END \
         WHEN 'failed' THEN CASE WHEN EXISTS (SELECT 1 FROM upd WHERE state = 'parked') \
           THEN $21::text ELSE status END \
         ELSE status END, \
       last_error = CASE $16::text \
         WHEN 'written' THEN NULL \
         WHEN 'skipped' THEN 'write-back skipped: ' || $17::text \
         WHEN 'already' THEN (SELECT 'write-back skipped: ' || reason FROM skip) \
         WHEN 'failed' THEN 'write-back failed: ' || $17::text \
         ELSE last_error END, \
       updated_ms = $15::bigint \
       WHERE integration = $8 AND remote_id = $9 AND version = $10 \
       AND EXISTS (SELECT 1 FROM q) RETURNING 1) \
     SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM done)"
);

/// The intent completion a write-back's end records, if any.
fn completion(end: &WritebackEnd) -> Option<Completion> {
    match end {
        WritebackEnd::Written => Some(Completion::Written),
        WritebackEnd::Skipped { reason } => Some(Completion::Skipped {
            reason: reason.clone(),
        }),
        WritebackEnd::Retry { error, .. } | WritebackEnd::Failed { error } => {
            Some(Completion::Failed {
                error: error.clone(),
            })
        }
        WritebackEnd::AlreadyDone | WritebackEnd::Later { .. } | WritebackEnd::Parked { .. } => {
            None
        }
    }
}

/// The parameters of [`FINISH_WRITEBACK`] for one write-back.
fn writeback_params(w: &WritebackDone, now_ms: i64, max_attempts: i64) -> Params {
    let (op, max, at, queue_error): (&str, i64, i64, String) = match &w.end {
        WritebackEnd::Written | WritebackEnd::Skipped { .. } | WritebackEnd::AlreadyDone => {
            ("ack", 0, 0, String::new())
        }
        WritebackEnd::Retry { at, error } => ("nack", max_attempts, ms(*at), error.clone()),
        // Not an attempt of the item's: a later run looks again.
        WritebackEnd::Later { at, reason } => {
            ("nack", i64::from(u32::MAX), ms(*at), reason.clone())
        }
        WritebackEnd::Failed { error: why } | WritebackEnd::Parked { reason: why } => {
            ("park", 0, 0, why.clone())
        }
    };
    let (state, note) = match completion(&w.end) {
        Some(c) => {
            let (state, note) = completion_row(&c);
            (Some(state.to_string()), note)
        }
        None => (None, None),
    };
    let (mode, reason): (&str, String) = match &w.end {
        WritebackEnd::Written => ("written", String::new()),
        WritebackEnd::Skipped { reason } => ("skipped", reason.clone()),
        WritebackEnd::AlreadyDone => ("already", String::new()),
        WritebackEnd::Retry { error, .. }
        | WritebackEnd::Failed { error }
        | WritebackEnd::Parked { reason: error } => ("failed", error.clone()),
        WritebackEnd::Later { .. } => ("later", String::new()),
    };
    let k = &w.key;
    let mut p: Params = Vec::with_capacity(21);
    p.extend(lease_params(&w.lease));
    p.push(Box::new(op.to_string()));
    p.push(Box::new(max));
    p.push(Box::new(at));
    p.push(Box::new(queue_error));
    p.push(Box::new(k.integration.clone()));
    p.push(Box::new(k.remote_id.clone()));
    p.push(Box::new(k.file_version.clone()));
    p.push(Box::new(k.plugin_version.clone()));
    p.push(Box::new(k.policy_version.clone()));
    p.push(Box::new(state));
    p.push(Box::new(note));
    p.push(Box::new(now_ms));
    p.push(Box::new(mode.to_string()));
    p.push(Box::new(reason));
    p.push(Box::new(enum_text(&FileStatus::Written)));
    p.push(Box::new(enum_text(&FileStatus::Skipped)));
    p.push(Box::new(SKIPPED_PREFIX.to_string()));
    // A write-back parked for an operator shows on its file, as in the redb store.
    p.push(Box::new(enum_text(&FileStatus::Parked)));
    p
}

impl PgStore {
    fn record_group_in(&self, records: &[Record]) -> Result<Vec<Recorded>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let max_attempts = i64::from(self.queue_max_attempts);
        let statements: Vec<(&'static str, Params)> = records
            .iter()
            .map(|r| record_statement(r, ms(now), max_attempts))
            .collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = statements
            .iter()
            .map(|(_, p)| {
                p.iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect()
            })
            .collect();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [done, retry, park] = conn
                .prepare([RECORD_DONE, RECORD_RETRY, RECORD_PARK])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let rows = self
                .pipelined(
                    statements
                        .iter()
                        .zip(&refs)
                        .map(|((sql, _), params)| {
                            let st = match *sql {
                                RECORD_DONE => &done,
                                RECORD_RETRY => &retry,
                                _ => &park,
                            };
                            txn.query(st, params)
                        })
                        .collect(),
                )
                .await?;
            let mut out = Vec::with_capacity(records.len());
            for (r, rows) in records.iter().zip(&rows) {
                out.push(match r {
                    Record::Done { .. } => {
                        let acked: i64 = rows.first().map_or(0, |row| row.get(0));
                        if acked == 0 {
                            Recorded::LeaseLost
                        } else {
                            let id: Option<i64> = rows[0].get(1);
                            Recorded::Done(id.map(|id| id as u64))
                        }
                    }
                    Record::Retry { retry_at, .. } => match rows.first() {
                        None => Recorded::LeaseLost,
                        Some(row) => Recorded::Nacked(nacked(row.get(0), *retry_at)),
                    },
                    Record::Park { .. } => match rows.first() {
                        None => Recorded::LeaseLost,
                        Some(_) => Recorded::Parked,
                    },
                });
            }
            self.commit(txn).await?;
            Ok(out)
        })
    }

    fn finish_writebacks_in(&self, group: &[WritebackDone]) -> Result<Vec<bool>, StoreError> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = ms(self.now());
        let max_attempts = i64::from(self.queue_max_attempts);
        let statements: Vec<Params> = group
            .iter()
            .map(|w| writeback_params(w, now_ms, max_attempts))
            .collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = statements
            .iter()
            .map(|p| {
                p.iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect()
            })
            .collect();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [finish] = conn
                .prepare([FINISH_WRITEBACK])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let rows = self
                .pipelined(refs.iter().map(|p| txn.query(&finish, p)).collect())
                .await?;
            let mut out = Vec::with_capacity(group.len());
            for (w, rows) in group.iter().zip(&rows) {
                let (queued, completed): (i64, i64) =
                    rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
                if queued == 0 {
                    out.push(false);
                    continue;
                }
                if completion(&w.end).is_some() && completed == 0 {
                    // Nothing of the group is committed: the transaction is rolled back.
                    return Err(no_intent(&w.key));
                }
                out.push(true);
            }
            self.commit(txn).await?;
            Ok(out)
        })
    }

    fn finish_batch_in(&self, batch: &BatchRecord, outbox: &[Outbound]) -> Result<(), StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [put, enqueue, look_up] = conn
                .prepare([PUT_BATCH, ENQUEUE, crate::queue::LOOK_UP_KEYS])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            put_batch_in(self, &txn, &put, batch).await?;
            let statements = [enqueue, look_up];
            for o in outbox {
                enqueue_in(
                    self,
                    &txn,
                    &statements,
                    &o.queue,
                    std::slice::from_ref(&o.item),
                    now,
                )
                .await?;
            }
            self.commit(txn).await?;
            Ok(())
        })
    }

    fn earliest_due_in(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn
                .prepare([EARLIEST_DUE])
                .await
                .map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&queue]).await?;
            Ok(rows[0].get::<_, Option<i64>>(0).map(from_ms))
        })
    }
}

impl StageStore for PgStore {
    fn now(&self) -> OffsetDateTime {
        PgStore::now(self)
    }

    fn cursor(&self, integration: &str) -> Result<Option<String>, StoreError> {
        self.cursor_of(integration)
    }

    fn file(&self, integration: &str, remote_id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.file_record(integration, remote_id)
    }

    fn put_file(&self, file: &FileRecord) -> Result<(), StoreError> {
        self.put_file_record(file)
    }

    fn needs_processing(
        &self,
        integration: &str,
        remote_id: &str,
        version: &str,
        writeback_needed: bool,
    ) -> Result<bool, StoreError> {
        Ok(!self
            .file_record(integration, remote_id)?
            .is_some_and(|f| f.is_done_for(version, writeback_needed)))
    }

    fn enqueue_page(
        &self,
        integration: &str,
        items: &[NewItem],
        next_cursor: Option<&str>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.enqueue_with_cursor(integration, items, Some(next_cursor))
    }

    fn start_batch(&self, integration: &str) -> Result<BatchRecord, StoreError> {
        self.start_batch_for(integration)
    }

    fn record_group(&self, records: &[Record]) -> Result<Vec<Recorded>, StoreError> {
        self.record_group_in(records)
    }

    fn begin_writebacks(&self, keys: &[WritebackKey]) -> Result<Vec<Begin>, StoreError> {
        self.begin_many(keys)
    }

    fn finish_writebacks(&self, group: &[WritebackDone]) -> Result<Vec<bool>, StoreError> {
        self.finish_writebacks_in(group)
    }

    fn finish_batch(&self, batch: &BatchRecord, outbox: &[Outbound]) -> Result<(), StoreError> {
        self.finish_batch_in(batch, outbox)
    }

    fn set_integration_status(
        &self,
        id: &str,
        status: IntegrationStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_status(id, status, last_error)
    }

    fn audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        self.append_audit_event(event)
    }

    fn result(&self, id: u64) -> Result<Option<AnalysisResult>, StoreError> {
        self.result_by_id(id)
    }

    fn stage_depth(&self, integration: &str) -> Result<QueueDepth, StoreError> {
        let queues: Vec<String> = Stage::ALL
            .iter()
            .map(|&s| stage_queue(integration, s))
            .collect();
        self.block_on(self.depth_of(&queues))
    }

    fn earliest_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.earliest_due_in(queue)
    }
}

#[cfg(test)]
mod tests {
    use proofpix_store::FileStatus;

    use crate::records::enum_text;

    /// The statements name statuses by these texts; a renamed variant must fail here, not
    /// in a database.
    #[test]
    fn file_statuses_are_stored_by_their_names() {
        for (status, text) in [
            (FileStatus::Pending, "Pending"),
            (FileStatus::Analysed, "Analysed"),
            (FileStatus::Written, "Written"),
            (FileStatus::Failed, "Failed"),
            (FileStatus::Parked, "Parked"),
            (FileStatus::Removed, "Removed"),
            (FileStatus::Skipped, "Skipped"),
        ] {
            assert_eq!(enum_text(&status), text);
        }
    }
}
