//! File records: what the platform holds, its version and where the pipeline is with it.

use crate::codec::decode;
use crate::records::FileRow;
use crate::schema::{self, *};
use crate::store::{Store, put_file_in};
use crate::{FileRecord, StoreError};

impl Store {
    /// Creates or replaces a file record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn put_file(&self, file: &FileRecord) -> Result<(), StoreError> {
        self.put_files(std::slice::from_ref(file))
    }

    /// Creates or replaces many file records in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn put_files(&self, files: &[FileRecord]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(FILES)?;
            for f in files {
                put_file_in(&mut t, f)?;
            }
            Ok(())
        })
    }

    /// A file record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn file(
        &self,
        integration: &str,
        remote_id: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(FILES)?;
            let v = t.get((integration, remote_id))?;
            v.map(|v| {
                decode::<FileRow>("files", v.value()).map(|r| r.into_record(integration, remote_id))
            })
            .transpose()
        })
    }

    /// Up to `limit` file records of an integration with remote id after `after`, in order
    /// (for paging).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn files(
        &self,
        integration: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(FILES)?;
            let start = after.unwrap_or("");
            let mut out = Vec::new();
            for e in t.range((integration, start)..(end.as_str(), ""))? {
                let (k, v) = e?;
                let (_, remote_id) = k.value();
                if after == Some(remote_id) {
                    continue;
                }
                if out.len() >= limit {
                    break;
                }
                out.push(
                    decode::<FileRow>("files", v.value())?.into_record(integration, remote_id),
                );
            }
            Ok(out)
        })
    }

    /// Whether this file version still needs work: `false` when the stored record shows the
    /// same version written back (or analysed, when no write-back is needed).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn needs_processing(
        &self,
        integration: &str,
        remote_id: &str,
        version: &str,
        writeback_needed: bool,
    ) -> Result<bool, StoreError> {
        Ok(!self
            .file(integration, remote_id)?
            .is_some_and(|f| f.is_done_for(version, writeback_needed)))
    }

    /// How many file records an integration has (counts by scanning keys).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn file_count(&self, integration: &str) -> Result<u64, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(FILES)?;
            Ok(t.range((integration, "")..(end.as_str(), ""))?.count() as u64)
        })
    }
}
