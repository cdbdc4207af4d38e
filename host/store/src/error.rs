//! Errors, one enum per boundary: [`OpenError`] for opening (and migrating) a store,
//! [`StoreError`] for everything done with an open store.
//!
//! Messages name the table, integration or record involved and what to do next. They never
//! contain a secret: secrets only cross this crate as [`proofpix_vault::Secret`] or sealed
//! bytes, and neither is ever formatted into an error.

use std::io;
use std::path::PathBuf;

use proofpix_vault::{KeyError, VaultError};

/// Errors from operations on an open store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed (I/O, corruption detected by its checksums, ...). The message carries
    /// redb's (it holds no record content), and says what to do when the disk is full.
    #[error("{}", database_message(.0))]
    Database(redb::Error),
    /// A stored record could not be decoded.
    #[error(
        "a record in table '{table}' cannot be decoded ({reason}); the store file may have \
         been altered; run `proofpix store check`"
    )]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What failed.
        reason: String,
    },
    /// Sealing or opening a secret failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The integration does not exist.
    #[error("integration '{0}' does not exist")]
    NoSuchIntegration(String),
    /// A plugin-state write would exceed the integration's cap.
    #[error(
        "plugin state of integration '{integration}' would grow to {would_be} bytes, over its \
         cap of {cap} bytes"
    )]
    KvQuotaExceeded {
        /// The integration.
        integration: String,
        /// The total after the write.
        would_be: u64,
        /// The cap.
        cap: u64,
    },
    /// A queue lease is no longer held by its owner.
    #[error(
        "the lease on queue item {item} is no longer held by '{owner}': it expired and was \
         claimed again, or the item was already acked"
    )]
    LeaseLost {
        /// The item.
        item: u64,
        /// The owner that tried to use the lease.
        owner: String,
    },
    /// A write-back completion or resolution without a recorded intent.
    #[error(
        "no write-back intent is recorded for '{remote_id}' of integration '{integration}'; \
         call begin_writeback first"
    )]
    NoWritebackIntent {
        /// The integration.
        integration: String,
        /// The remote id.
        remote_id: String,
    },
    /// Writing an export failed.
    #[error("cannot write the export")]
    Export(#[source] io::Error),
    /// File-system work around the store (data directory, key file) failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the new key file after a key rotation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A shared backend (PostgreSQL, in cluster mode) failed. The message says what failed
    /// and on which database (its URL with the password masked), and what to do next.
    #[error("{message}")]
    Backend {
        /// What failed.
        message: String,
        /// The backend's error, when there is one (it holds no password).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
/// Whether redb failed because the disk is full (ENOSPC, or Rust's `StorageFull`).
fn disk_full(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(io) if io.kind() == io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
}

fn database_message(e: &redb::Error) -> String {
    if disk_full(e) {
        format!(
            "the disk holding the store is full ({e}): nothing was committed by this operation; \
             free space on that disk, then restart ProofPix; work committed before is kept and \
             the work in flight is done again"
        )
    } else if matches!(e, redb::Error::PreviousIo) {
        "the store stopped after an earlier I/O error (for example a full disk); fix the disk, \
         then restart ProofPix: work committed before is kept"
            .to_string()
    } else {
        format!("the store's database failed: {e}")
    }
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Errors opening a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory could not be resolved or created.
    #[error("cannot use the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Neither `PROOFPIX_HOME` nor a home directory is set.
    #[error("cannot find a data directory: set PROOFPIX_HOME (or HOME)")]
    NoDataDir,
    /// Another process has the store open.
    #[error(
        "the store {} is already open in another process; is a proofpix daemon running?",
        path.display()
    )]
    AlreadyOpen {
        /// The store file.
        path: PathBuf,
    },
    /// redb refused to open the file.
    #[error("cannot open the store {}", path.display())]
    Database {
        /// The store file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// The master key is not the one the store was created with.
    #[error(
        "the master key does not match this store; set PROOFPIX_MASTER_KEY to the key it was \
         created with"
    )]
    WrongKey,
    /// The file was written by a newer ProofPix.
    #[error(
        "the store has schema version {found}, but this proofpix understands versions up to \
         {supported}; it was written by a newer proofpix: upgrade proofpix, or restore a \
         backup taken before the upgrade"
    )]
    NewerSchema {
        /// The version in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A migration step failed; the file was left unchanged.
    #[error(
        "migrating the store from schema version {from} to {to} failed in step '{step}'; the \
         store was left unchanged at version {from}"
    )]
    Migration {
        /// The version in the file.
        from: u32,
        /// The target version.
        to: u32,
        /// The step that failed.
        step: &'static str,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// The file is damaged in a way redb's checks did not report.
    #[error("the store is damaged ({reason}); run `proofpix store check`, or restore a backup")]
    Damaged {
        /// What is wrong.
        reason: String,
    },
    /// Loading the master key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Reading or initialising the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
