//! Retention: how long results, batches and audit entries are kept.
//!
//! The seed asks for data-retention policies; customers keep analysis results only as long
//! as their own policy allows. Each kind has its own optional maximum age (`None` keeps
//! forever, the default). [`Store::compact`] removes expired rows in one write transaction
//! and records what it removed in the audit log. Audit entries are removed only behind a
//! chained checkpoint (see [`crate::audit`]), so the chain still verifies afterwards.
//!
//! File records, write-back records and the queue are not subject to retention: they are
//! what keeps ProofPix from reprocessing or re-writing files, and shrink only when their
//! integration is deleted. A file record's `last_result` may point at a result retention
//! removed; readers treat that as "expired".

use std::time::Duration;

use redb::ReadableTableMetadata;
use time::OffsetDateTime;

use crate::audit::{self, AuditEvent};
use crate::codec::decode;
use crate::schema::{BATCHES, RESULTS};
use crate::{AnalysisResult, BatchRecord, Store, StoreError};

/// Maximum ages; `None` keeps forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Analysis results older than this are removed.
    pub results: Option<Duration>,
    /// Batches that started longer ago than this are removed.
    pub batches: Option<Duration>,
    /// Audit entries older than this are removed behind a checkpoint.
    pub audit: Option<Duration>,
}

/// What [`Store::compact`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Results removed.
    pub results: u64,
    /// Batches removed.
    pub batches: u64,
    /// Audit entries removed.
    pub audit_entries: u64,
}

impl Store {
    /// Returns free pages at the end of the file to the file system after a large
    /// [`Store::compact`] (redb otherwise reuses freed pages but never shrinks the file).
    /// Returns whether anything was reclaimed. Needs exclusive access, like [`Store::check`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`], for instance when a transaction is still open.
    pub fn reclaim_space(&mut self) -> Result<bool, StoreError> {
        self.db
            .compact()
            .map_err(|e| StoreError::Database(e.into()))
    }

    /// Removes rows older than the retention allows, as of `now`, in one transaction.
    ///
    /// A row that cannot be decoded is kept (and reported by `proofpix store check`), so a
    /// corrupt row never makes compaction delete more than it should.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn compact(
        &self,
        retention: &Retention,
        now: OffsetDateTime,
        actor: &str,
    ) -> Result<CompactReport, StoreError> {
        let cutoff = |d: Duration| now - d;
        self.write(|txn| {
            let mut report = CompactReport::default();
            if let Some(cut) = retention.results.map(cutoff) {
                let mut t = txn.open_table(RESULTS)?;
                let before = t.len()?;
                t.retain(|_, v| {
                    decode::<AnalysisResult>("results", v).map_or(true, |r| r.created_at >= cut)
                })?;
                report.results = before - t.len()?;
            }
            if let Some(cut) = retention.batches.map(cutoff) {
                let mut t = txn.open_table(BATCHES)?;
                let before = t.len()?;
                t.retain(|_, v| {
                    decode::<BatchRecord>("batches", v).map_or(true, |b| b.started_at >= cut)
                })?;
                report.batches = before - t.len()?;
            }
            if let Some(cut) = retention.audit.map(cutoff) {
                report.audit_entries = audit::compact(txn, &self.key, now, cut)?;
            }
            if report != CompactReport::default() {
                self.audit_in(
                    txn,
                    &AuditEvent::new(actor, "store.compact", "store").details(serde_json::json!({
                        "results": report.results,
                        "batches": report.batches,
                        "audit_entries": report.audit_entries,
                    })),
                )?;
            }
            Ok(report)
        })
    }
}
