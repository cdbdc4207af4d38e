//! The redb store: schema, typed tables, migrations, idempotency records and the
//! hash-chained audit log.
//!
//! Everything ProofPix remembers lives in one redb file, `<data dir>/proofpix.redb`:
//! plugins, integrations, sealed secrets and tokens, sync cursors, plugin state, file
//! records, analysis results, batches, the work queue, write-back intents and the audit log.
//! [`proofpix_vault`] does the cryptography; this crate decides what is stored where, and
//! makes every related change commit in one durable transaction ([`schema`] lists which).
//!
//! Opening verifies every page checksum (redb's integrity check), the schema version and the
//! master key's check value before anything is read or written; see [`StoreOptions`].
//!
//! The pipeline talks to the queue and the write-back log through the [`WorkQueue`] and
//! [`IdempotencyLog`] traits, so a NATS JetStream implementation can take over when one
//! daemon is not enough; [`Store`] is the redb implementation of both. The service, API and
//! CLI reach it through [`ControlStore`], and a daemon holds its store as one
//! `Arc<dyn` [`Backend`]`>` (control plane and stages), which `proofpix-store-pg` also
//! implements.
//!
//! ```
//! use proofpix_store::{AuditEvent, IntegrationRecord, Store};
//! use proofpix_vault::{MasterKey, Secret};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let key = MasterKey::generate();
//! let store = Store::open(dir.path(), &key).unwrap();
//! let now = store.now();
//! store
//!     .put_integration(&IntegrationRecord::new("sf-prod", "salesforce", "0.1.0", now), "operator:ada")
//!     .unwrap();
//! store
//!     .set_secret("sf-prod", "client_secret", &Secret::new("s3cr3t"), "operator:ada")
//!     .unwrap();
//! assert_eq!(store.secret("sf-prod", "client_secret").unwrap().unwrap().expose(), "s3cr3t");
//! assert!(store.audit_verify().unwrap().is_ok());
//! ```
//!
//! Layering (checked by .ci/layers): floor 2, may use only the host crates below it (proofpix-analysis, proofpix-model, proofpix-policy, proofpix-signing, proofpix-vault); never pulls in axum, hyper, reqwest, tokio, wasmtime, even transitively.

#![deny(missing_docs)]

mod access;
mod audit;
pub mod audit_chain;
mod check;
mod codec;
mod control;
mod data_dir;
mod error;
mod files;
pub mod idempotency;
mod integrations;
mod inventory;
mod migrate;
mod plugin_state;
mod plugins;
pub mod queue;
mod records;
mod results;
mod retention;
mod rotation;
pub mod schema;
mod seams;
mod secrets;
mod sessions;
pub mod stages;
mod store;
mod token_admin;
mod writer;

pub use access::ApiTokenRecord;
pub use audit::{AuditEntry, AuditEvent, AuditProblem, Genesis, VerifyReport};
pub use check::IntegrityReport;
pub use control::{Backend, ControlStore, MAX_SIGNAL_BYTES, PLUGINS_SIGNAL, Signal, WORK_SIGNAL};
pub use data_dir::{HOME_ENV, STORE_FILE_NAME, data_dir, ensure_data_dir, resolve_data_dir};
pub use error::{OpenError, StoreError};
pub use idempotency::{
    Begin, Completion, IdempotencyLog, Resolution, SKIPPED_PREFIX, WritebackKey,
};
pub use inventory::{
    InventoryCursor, InventoryPage, InventoryQuery, InventoryRow, InventorySort, PurgedHistory,
};
pub use migrate::Migration;
pub use proofpix_model::RiskLevel;
pub use queue::{
    ClaimRequest, Enqueued, Lease, Nacked, NewItem, ParkedItem, QueueDepth, WorkQueue,
};
pub use records::{
    AnalysisResult, BatchFailure, BatchRecord, FileRecord, FileStatus, IntegrationRecord,
    IntegrationStatus, NewResult, PluginRecord, TokenSet,
};
pub use retention::{CompactReport, Retention};
pub use rotation::{NEXT_KEY_FILE_NAME, RotateReport, open_in_dir, rotate_key_file};
pub use seams::{DownstreamStore, StageStore};
pub use sessions::SessionRecord;
pub use stages::{Outbound, Record, Recorded, Stage, WritebackDone, WritebackEnd, stage_queue};
pub use store::{Clock, DeletedCounts, Store, StoreOptions};
pub use writer::in_write_lane;
