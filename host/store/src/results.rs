//! Analysis results and the batch (run) records that group them.

use redb::{ReadableTable, ReadableTableMetadata};
use time::OffsetDateTime;

use crate::codec::{decode, encode};
use crate::schema::*;
use crate::store::{Store, add_result_in, next_id};
use crate::{AnalysisResult, BatchRecord, NewResult, StoreError};

impl Store {
    /// Stores an analysis result and returns its id (one transaction per call).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn add_result(&self, result: NewResult) -> Result<u64, StoreError> {
        Ok(self.add_results(vec![result])?[0])
    }

    /// Stores many results in one transaction (one fsync), returning their ids in order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn add_results(&self, results: Vec<NewResult>) -> Result<Vec<u64>, StoreError> {
        let now = self.now();
        self.write(|txn| {
            results
                .into_iter()
                .map(|r| add_result_in(txn, r, now))
                .collect()
        })
    }

    /// A result by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn result(&self, id: u64) -> Result<Option<AnalysisResult>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(RESULTS)?;
            let v = t.get(id)?;
            v.map(|v| decode("results", v.value())).transpose()
        })
    }

    /// The number of stored results.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn result_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(RESULTS)?.len()?))
    }

    /// Starts a batch for an integration: assigns an id and records the start time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn start_batch(&self, integration: &str) -> Result<BatchRecord, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let id = next_id(txn, "batch")?;
            let batch = BatchRecord::started(id, integration, now);
            txn.open_table(BATCHES)?
                .insert(id, encode(&batch).as_slice())?;
            Ok(batch)
        })
    }

    /// Saves a batch (progress or its final state).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(BATCHES)?
                .insert(batch.id, encode(batch).as_slice())?;
            Ok(())
        })
    }

    /// A batch by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn batch(&self, id: u64) -> Result<Option<BatchRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(BATCHES)?;
            let v = t.get(id)?;
            v.map(|v| decode("batches", v.value())).transpose()
        })
    }

    /// The most recent `limit` batches, newest first, optionally of one integration.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn recent_batches(
        &self,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(BATCHES)?;
            let mut out = Vec::new();
            for e in t.iter()?.rev() {
                if out.len() >= limit {
                    break;
                }
                let b: BatchRecord = decode("batches", e?.1.value())?;
                if integration.is_none_or(|i| i == b.integration) {
                    out.push(b);
                }
            }
            Ok(out)
        })
    }

    /// Batches that started at or after `since`, newest first, at most `limit`, optionally of
    /// one integration, each with its `result_ids` left empty (see
    /// [`crate::ControlStore::batches_since`]). The read walks ids downwards and stops at the
    /// first batch that started before `since`: ids are assigned as runs start, so nothing
    /// after it is newer.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn batches_since(
        &self,
        integration: Option<&str>,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(BATCHES)?;
            let mut out = Vec::new();
            for e in t.iter()?.rev() {
                if out.len() >= limit {
                    break;
                }
                let mut b: BatchRecord = decode("batches", e?.1.value())?;
                if b.started_at < since {
                    break;
                }
                if integration.is_none_or(|i| i == b.integration) {
                    b.result_ids = Vec::new();
                    out.push(b);
                }
            }
            Ok(out)
        })
    }
}
