//! The seam between the pipeline's stages and the store.
//!
//! The stages (discover, fetch and analyse, record, write-back) reach the store
//! only through [`StageStore`]: the queue and leases ([`WorkQueue`]), the
//! write-back idempotency log ([`IdempotencyLog`]), and the handful of record,
//! cursor and batch operations below. [`Store`] (redb) is the embedded
//! implementation; a shared one (PostgreSQL, for several daemons) implements the
//! same trait and the stages do not change.
//!
//! The stages downstream of `record` that the service runs (notify, remediate) reach the
//! store through [`DownstreamStore`], which adds the batches, integration records and
//! key-value namespace they read to [`StageStore`].
//!
//! Each method is one transaction, and the group operations
//! ([`StageStore::record_group`], [`StageStore::begin_writebacks`],
//! [`StageStore::finish_writebacks`]) are one durability point per group: an
//! implementation must keep that, or the pipeline's crash guarantees and its
//! throughput go with it. (The embedded store cuts a group's record into parts of
//! at least 16 files while another integration waits at its one writer: each file's
//! record stays one transaction, and what the pipeline relies on is per file.)

use time::OffsetDateTime;

use crate::idempotency::{Begin, IdempotencyLog, WritebackKey};
use crate::queue::{ClaimRequest, Enqueued, Lease, NewItem, QueueDepth, WorkQueue};
use crate::records::{
    AnalysisResult, BatchRecord, FileRecord, IntegrationRecord, IntegrationStatus,
};
use crate::stages::{Outbound, Record, Recorded, WritebackDone};
use crate::{AuditEvent, Store, StoreError};

/// What the pipeline's stages need of a store. See the module docs.
pub trait StageStore:
    WorkQueue<Error = StoreError> + IdempotencyLog<Error = StoreError> + Send + Sync + 'static
{
    /// The store's clock (tests set it).
    fn now(&self) -> OffsetDateTime;

    /// The discovery cursor of an integration.
    ///
    /// # Errors
    /// The backend failed.
    fn cursor(&self, integration: &str) -> Result<Option<String>, StoreError>;

    /// What the store knows of one remote file.
    ///
    /// # Errors
    /// The backend failed.
    fn file(&self, integration: &str, remote_id: &str) -> Result<Option<FileRecord>, StoreError>;

    /// Adds or replaces a file record.
    ///
    /// # Errors
    /// The backend failed.
    fn put_file(&self, file: &FileRecord) -> Result<(), StoreError>;

    /// Whether this version of a file still needs analysing (or, with
    /// `writeback_needed`, writing back).
    ///
    /// # Errors
    /// The backend failed.
    fn needs_processing(
        &self,
        integration: &str,
        remote_id: &str,
        version: &str,
        writeback_needed: bool,
    ) -> Result<bool, StoreError>;

    /// Queues a discovery page's items and moves the cursor past the page in one
    /// transaction.
    ///
    /// # Errors
    /// The backend failed.
    fn enqueue_page(
        &self,
        integration: &str,
        items: &[NewItem],
        next_cursor: Option<&str>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Opens a batch (one run) of an integration.
    ///
    /// # Errors
    /// The backend failed.
    fn start_batch(&self, integration: &str) -> Result<BatchRecord, StoreError>;

    /// Records a group of files' outcomes with their outbox items, in one transaction.
    ///
    /// # Errors
    /// The backend failed; nothing of the group is recorded then.
    fn record_group(&self, records: &[Record]) -> Result<Vec<Recorded>, StoreError>;

    /// Records a group as [`StageStore::record_group`] does, then claims what `claim` asks
    /// for: the write-back stage's next group, which the worker that recorded it writes back
    /// at once. One transaction on the embedded store (a small run's record and its
    /// write-back claim are one durable commit, not two, and behind a backlog each commit
    /// waits its turn at the writer); the default does one after the other.
    ///
    /// # Errors
    /// The backend failed; when recording failed, nothing is claimed.
    fn record_group_and_claim(
        &self,
        records: &[Record],
        claim: &ClaimRequest,
    ) -> Result<(Vec<Recorded>, Vec<Lease>), StoreError> {
        let recorded = self.record_group(records)?;
        let leases = self.claim(&claim.queue, &claim.owner, claim.max, claim.lease)?;
        Ok((recorded, leases))
    }

    /// Writes the intents of a group of write-backs, in one transaction.
    ///
    /// # Errors
    /// The backend failed.
    fn begin_writebacks(&self, keys: &[WritebackKey]) -> Result<Vec<Begin>, StoreError>;

    /// Completes a group of write-backs with their files and leases, in one transaction.
    ///
    /// # Errors
    /// The backend failed.
    fn finish_writebacks(&self, group: &[WritebackDone]) -> Result<Vec<bool>, StoreError>;

    /// Closes a batch and queues its summaries, in one transaction.
    ///
    /// # Errors
    /// The backend failed.
    fn finish_batch(&self, batch: &BatchRecord, outbox: &[Outbound]) -> Result<(), StoreError>;

    /// Sets an integration's health after a run.
    ///
    /// # Errors
    /// The backend failed.
    fn set_integration_status(
        &self,
        id: &str,
        status: IntegrationStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Appends to the audit log.
    ///
    /// # Errors
    /// The backend failed.
    fn audit(&self, event: &AuditEvent) -> Result<u64, StoreError>;

    /// Opens a batch and appends the audit entry `audit` makes of it. The embedded store does
    /// both in one transaction (one durable commit, not two: a small run, such as a webhook's
    /// file, is a handful of commits, and each waits its turn at the writer); the default does
    /// them one after the other, and an audit failure there is logged, as it always was.
    ///
    /// # Errors
    /// The backend failed; on the embedded store nothing is written then.
    fn start_batch_audited(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
    ) -> Result<BatchRecord, StoreError> {
        let batch = self.start_batch(integration)?;
        if let Err(e) = self.audit(&audit(&batch)) {
            tracing::error!(integration, "cannot append to the audit log: {e}");
        }
        Ok(batch)
    }

    /// Opens a batch with its audit entry as [`StageStore::start_batch_audited`] does, then
    /// claims what `claim` asks for: the first group of a run that only drains its queue (a
    /// webhook's file). One transaction on the embedded store; the default does one after the
    /// other.
    ///
    /// # Errors
    /// The backend failed; when opening the batch failed, nothing is claimed.
    fn start_batch_and_claim(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
        claim: &ClaimRequest,
    ) -> Result<(BatchRecord, Vec<Lease>), StoreError> {
        let batch = self.start_batch_audited(integration, audit)?;
        let leases = self.claim(&claim.queue, &claim.owner, claim.max, claim.lease)?;
        Ok((batch, leases))
    }

    /// Closes a run: [`StageStore::finish_batch`], the integration's health after it
    /// ([`StageStore::set_integration_status`]; an integration with no record, as in a test
    /// context, is not an error) and the audit entry `audit`. One transaction on the embedded
    /// store; the default does them one after the other, logging a failed audit append.
    ///
    /// # Errors
    /// Closing the batch failed (the embedded store: anything failed, and nothing is written).
    fn close_batch(
        &self,
        batch: &BatchRecord,
        outbox: &[Outbound],
        status: IntegrationStatus,
        last_error: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.finish_batch(batch, outbox)?;
        let _ = self.set_integration_status(&batch.integration, status, last_error);
        if let Err(e) = self.audit(audit) {
            tracing::error!(integration = %batch.integration, "cannot append to the audit log: {e}");
        }
        Ok(())
    }

    /// One analysis result.
    ///
    /// # Errors
    /// The backend failed.
    fn result(&self, id: u64) -> Result<Option<AnalysisResult>, StoreError>;

    /// The work of an integration in its downstream stage queues (write-back, remediation).
    ///
    /// # Errors
    /// The backend failed.
    fn stage_depth(&self, integration: &str) -> Result<QueueDepth, StoreError>;

    /// When the earliest pending item of a queue comes due (the notify stage's windows).
    ///
    /// # Errors
    /// The backend failed.
    fn earliest_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError>;
}

impl StageStore for Store {
    fn now(&self) -> OffsetDateTime {
        Store::now(self)
    }

    fn cursor(&self, integration: &str) -> Result<Option<String>, StoreError> {
        Store::cursor(self, integration)
    }

    fn file(&self, integration: &str, remote_id: &str) -> Result<Option<FileRecord>, StoreError> {
        Store::file(self, integration, remote_id)
    }

    fn put_file(&self, file: &FileRecord) -> Result<(), StoreError> {
        Store::put_file(self, file)
    }

    fn needs_processing(
        &self,
        integration: &str,
        remote_id: &str,
        version: &str,
        writeback_needed: bool,
    ) -> Result<bool, StoreError> {
        Store::needs_processing(self, integration, remote_id, version, writeback_needed)
    }

    fn enqueue_page(
        &self,
        integration: &str,
        items: &[NewItem],
        next_cursor: Option<&str>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        Store::enqueue_page(self, integration, items, next_cursor)
    }

    fn start_batch(&self, integration: &str) -> Result<BatchRecord, StoreError> {
        Store::start_batch(self, integration)
    }

    fn record_group(&self, records: &[Record]) -> Result<Vec<Recorded>, StoreError> {
        Store::record_group(self, records)
    }

    fn record_group_and_claim(
        &self,
        records: &[Record],
        claim: &ClaimRequest,
    ) -> Result<(Vec<Recorded>, Vec<Lease>), StoreError> {
        Store::record_group_and_claim(self, records, claim)
    }

    fn begin_writebacks(&self, keys: &[WritebackKey]) -> Result<Vec<Begin>, StoreError> {
        Store::begin_writebacks(self, keys)
    }

    fn finish_writebacks(&self, group: &[WritebackDone]) -> Result<Vec<bool>, StoreError> {
        Store::finish_writebacks(self, group)
    }

    fn finish_batch(&self, batch: &BatchRecord, outbox: &[Outbound]) -> Result<(), StoreError> {
        Store::finish_batch(self, batch, outbox)
    }

    fn set_integration_status(
        &self,
        id: &str,
        status: IntegrationStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        Store::set_integration_status(self, id, status, last_error)
    }

    fn audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        Store::audit(self, event)
    }

    fn start_batch_audited(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
    ) -> Result<BatchRecord, StoreError> {
        Store::start_batch_audited(self, integration, audit)
    }

    fn start_batch_and_claim(
        &self,
        integration: &str,
        audit: &(dyn Fn(&BatchRecord) -> AuditEvent + Sync),
        claim: &ClaimRequest,
    ) -> Result<(BatchRecord, Vec<Lease>), StoreError> {
        Store::start_batch_and_claim(self, integration, audit, claim)
    }

    fn close_batch(
        &self,
        batch: &BatchRecord,
        outbox: &[Outbound],
        status: IntegrationStatus,
        last_error: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        Store::close_batch(self, batch, outbox, status, last_error, audit)
    }

    fn result(&self, id: u64) -> Result<Option<AnalysisResult>, StoreError> {
        Store::result(self, id)
    }

    fn stage_depth(&self, integration: &str) -> Result<QueueDepth, StoreError> {
        Store::stage_depth(self, integration)
    }

    fn earliest_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Store::earliest_due(self, queue)
    }
}

/// What the stages downstream of `record` (notify and remediate, run by the service) need
/// beyond [`StageStore`]: the batches a summary is built from, the integration records that
/// hold subscriptions and remediation policies, and the host's key-value namespace where
/// delayed remediation actions wait. Their queues and at-most-once log are the
/// [`WorkQueue`] and [`IdempotencyLog`] of [`StageStore`].
pub trait DownstreamStore: StageStore {
    /// A batch by id.
    ///
    /// # Errors
    /// The backend failed, or the record does not decode.
    fn batch(&self, id: u64) -> Result<Option<BatchRecord>, StoreError>;

    /// Every integration record.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError>;

    /// Creates or replaces an integration record, audited as `actor`'s.
    ///
    /// # Errors
    /// The backend failed.
    fn put_integration(
        &self,
        integration: &IntegrationRecord,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// A value of a key-value namespace.
    ///
    /// # Errors
    /// The backend failed.
    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets a value; returns the namespace's usage in bytes (refused over `cap`).
    ///
    /// # Errors
    /// The backend failed, or the namespace would exceed `cap`.
    fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        cap: Option<u64>,
    ) -> Result<u64, StoreError>;

    /// Deletes a key; returns the namespace's usage in bytes.
    ///
    /// # Errors
    /// The backend failed.
    fn kv_delete(&self, namespace: &str, key: &str) -> Result<u64, StoreError>;

    /// The keys of a namespace that start with `prefix`.
    ///
    /// # Errors
    /// The backend failed.
    fn kv_keys(&self, namespace: &str, prefix: &str) -> Result<Vec<String>, StoreError>;
}

impl DownstreamStore for Store {
    fn batch(&self, id: u64) -> Result<Option<BatchRecord>, StoreError> {
        Store::batch(self, id)
    }

    fn integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError> {
        Store::integrations(self)
    }

    fn put_integration(
        &self,
        integration: &IntegrationRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        Store::put_integration(self, integration, actor)
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Store::kv_get(self, namespace, key)
    }

    fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        cap: Option<u64>,
    ) -> Result<u64, StoreError> {
        Store::kv_set(self, namespace, key, value, cap)
    }

    fn kv_delete(&self, namespace: &str, key: &str) -> Result<u64, StoreError> {
        Store::kv_delete(self, namespace, key)
    }

    fn kv_keys(&self, namespace: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        Store::kv_keys(self, namespace, prefix)
    }
}
