//! The write-back log on PostgreSQL: [`IdempotencyLog`], at most once across nodes.
//!
//! An intent is written by one `INSERT ... ON CONFLICT DO UPDATE ... WHERE state = 'failed'`:
//! the row is created, or taken over only from a failed attempt, and otherwise left alone
//! (and locked until the transaction ends). Two nodes that begin the same key at once are
//! serialised by the row: one proceeds, the other finds its intent. As in redb, an intent
//! recorded by another run is [`Begin::Uncertain`]: the write may have reached the
//! platform, so it is never repeated without a decision ([`Resolution`]).
//!
//! In a cluster "another run" is also a live node whose lease on the write-back item ran out
//! while it was still calling the platform: the second node finds the intent uncertain and
//! parks the item (or retries it when the plugin's write-back is idempotent). That is the
//! safe answer; telling a live node from a dead one needs node heartbeats, which cluster
//! mode does not have yet.

use proofpix_store::{
    Begin, Completion, IdempotencyLog, Resolution, SKIPPED_PREFIX, StoreError, WritebackKey,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Statement, Transaction};

use crate::{PgStore, from_ms, ms};

/// `$6` now, `$7` the run id. Answers a row when the intent was recorded (proceed).
pub(crate) const BEGIN: &str = "INSERT INTO writebacks (integration, remote_id, file_version, \
     plugin_version, policy_version, state, at_ms, run_id, attempts, last_error) \
     VALUES ($1, $2, $3, $4, $5, 'intent', $6, $7, 1, NULL) \
     ON CONFLICT (integration, remote_id, file_version, plugin_version, policy_version) \
     DO UPDATE SET state = 'intent', at_ms = EXCLUDED.at_ms, run_id = EXCLUDED.run_id, \
     attempts = writebacks.attempts + 1 WHERE writebacks.state = 'failed' RETURNING 1";

pub(crate) const STATE: &str = "SELECT state, at_ms, run_id, last_error FROM writebacks WHERE \
     integration = $1 AND remote_id = $2 AND file_version = $3 AND plugin_version = $4 \
     AND policy_version = $5";

/// `$6` the new state, `$7` now, `$8` the note. Only an intent completes.
pub(crate) const COMPLETE: &str = "UPDATE writebacks SET state = $6, at_ms = $7, last_error = $8 \
     WHERE integration = $1 AND remote_id = $2 AND file_version = $3 AND plugin_version = $4 \
     AND policy_version = $5 AND state = 'intent'";

const UNCERTAIN: &str = "SELECT remote_id, file_version, plugin_version, policy_version, at_ms \
     FROM writebacks WHERE integration = $1 AND state = 'intent' AND run_id <> $2 \
     ORDER BY remote_id, file_version, plugin_version, policy_version";

const RETRY: &str = "UPDATE writebacks SET run_id = $6, attempts = attempts + 1, at_ms = $7 \
     WHERE integration = $1 AND remote_id = $2 AND file_version = $3 AND plugin_version = $4 \
     AND policy_version = $5 AND state = 'intent'";

const MARK_WRITTEN: &str = "UPDATE writebacks SET state = 'done', at_ms = $7 \
     WHERE integration = $1 AND remote_id = $2 AND file_version = $3 AND plugin_version = $4 \
     AND policy_version = $5 AND state = 'intent' AND $6::bigint IS NOT NULL";

pub(crate) fn no_intent(key: &WritebackKey) -> StoreError {
    StoreError::NoWritebackIntent {
        integration: key.integration.clone(),
        remote_id: key.remote_id.clone(),
    }
}

/// The state a completion leaves and its note.
pub(crate) fn completion_row(completion: &Completion) -> (&'static str, Option<String>) {
    match completion {
        Completion::Written => ("done", None),
        Completion::Failed { error } => ("failed", Some(error.clone())),
        Completion::Skipped { reason } => ("done", Some(format!("{SKIPPED_PREFIX}{reason}"))),
    }
}

/// Begins each of `keys` inside `txn` (`[begin, state]` are [`BEGIN`] and [`STATE`],
/// prepared): the intents are sent pipelined, then the rows of those that did not proceed
/// are read, also pipelined. Two round trips for a group.
pub(crate) async fn begin_in(
    store: &PgStore,
    txn: &Transaction<'_>,
    [begin, state]: &[Statement; 2],
    keys: &[WritebackKey],
    now: OffsetDateTime,
) -> Result<Vec<Begin>, StoreError> {
    let now_ms = ms(now);
    let run_id = store.run_id;
    let params: Vec<[&(dyn ToSql + Sync); 7]> = keys
        .iter()
        .map(|k| {
            [
                &k.integration as &(dyn ToSql + Sync),
                &k.remote_id,
                &k.file_version,
                &k.plugin_version,
                &k.policy_version,
                &now_ms,
                &run_id,
            ]
        })
        .collect();
    let inserted = store
        .pipelined(params.iter().map(|p| txn.query(begin, p)).collect())
        .await?;
    let pending: Vec<usize> = (0..keys.len())
        .filter(|&i| inserted[i].is_empty())
        .collect();
    let states = store
        .pipelined(
            pending
                .iter()
                .map(|&i| txn.query(state, &params[i][..5]))
                .collect(),
        )
        .await?;
    let mut out = vec![Begin::Proceed; keys.len()];
    for (&i, rows) in pending.iter().zip(&states) {
        // The row exists (the insert conflicted) and is not a failed attempt.
        let Some(row) = rows.first() else {
            return Err(crate::error::corrupt(
                "writebacks",
                "a write-back row vanished inside its transaction",
            ));
        };
        let st: &str = row.get(0);
        let at = from_ms(row.get(1));
        let run: i64 = row.get(2);
        out[i] = match st {
            "done" => Begin::AlreadyDone { at },
            "intent" if run == run_id => Begin::InFlight { since: at },
            "intent" => Begin::Uncertain { since: at },
            other => {
                return Err(crate::error::corrupt(
                    "writebacks",
                    format!("unexpected state '{other}'"),
                ));
            }
        };
    }
    Ok(out)
}

impl PgStore {
    pub(crate) fn begin_many(&self, keys: &[WritebackKey]) -> Result<Vec<Begin>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let statements = conn
                .prepare([BEGIN, STATE])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let out = begin_in(self, &txn, &statements, keys, now).await?;
            self.commit(txn).await?;
            Ok(out)
        })
    }

    /// Runs a statement on the key's five columns plus `extra`; answers the rows changed.
    fn on_key(
        &self,
        sql: &'static str,
        key: &WritebackKey,
        extra: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([sql]).await.map_err(|e| self.err(e))?;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &key.integration,
                &key.remote_id,
                &key.file_version,
                &key.plugin_version,
                &key.policy_version,
            ];
            params.extend_from_slice(extra);
            let n = conn.client().execute(&st, &params).await;
            self.counters.waited(1);
            n.map_err(|e| self.err(e))
        })
    }
}

impl IdempotencyLog for PgStore {
    type Error = StoreError;

    fn begin_writeback(&self, key: &WritebackKey) -> Result<Begin, StoreError> {
        let mut out = self.begin_many(std::slice::from_ref(key))?;
        Ok(out.pop().unwrap_or(Begin::Proceed))
    }

    fn complete_writeback(
        &self,
        key: &WritebackKey,
        completion: &Completion,
    ) -> Result<(), StoreError> {
        let (state, note) = completion_row(completion);
        let now = ms(self.now());
        if self.on_key(COMPLETE, key, &[&state, &now, &note])? == 0 {
            return Err(no_intent(key));
        }
        Ok(())
    }

    fn is_done(&self, key: &WritebackKey) -> Result<bool, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([STATE]).await.map_err(|e| self.err(e))?;
            let rows = self
                .query(
                    conn.client(),
                    &st,
                    &[
                        &key.integration,
                        &key.remote_id,
                        &key.file_version,
                        &key.plugin_version,
                        &key.policy_version,
                    ],
                )
                .await?;
            Ok(rows.first().is_some_and(|r| r.get::<_, &str>(0) == "done"))
        })
    }

    fn uncertain(
        &self,
        integration: &str,
    ) -> Result<Vec<(WritebackKey, OffsetDateTime)>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([UNCERTAIN]).await.map_err(|e| self.err(e))?;
            let rows = self
                .query(conn.client(), &st, &[&integration, &self.run_id])
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        WritebackKey {
                            integration: integration.to_owned(),
                            remote_id: r.get(0),
                            file_version: r.get(1),
                            plugin_version: r.get(2),
                            policy_version: r.get(3),
                        },
                        from_ms(r.get(4)),
                    )
                })
                .collect())
        })
    }

    fn resolve_uncertain(
        &self,
        key: &WritebackKey,
        resolution: Resolution,
    ) -> Result<(), StoreError> {
        let now = ms(self.now());
        let sql = match resolution {
            Resolution::Retry => RETRY,
            Resolution::MarkWritten => MARK_WRITTEN,
        };
        if self.on_key(sql, key, &[&self.run_id, &now])? == 0 {
            return Err(no_intent(key));
        }
        Ok(())
    }
}
