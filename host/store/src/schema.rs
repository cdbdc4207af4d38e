//! The redb schema: every table, its key and value types, and the schema version.
//!
//! One redb file, `<data dir>/proofpix.redb`, holds everything ProofPix remembers. Every
//! change the daemon makes is one write transaction committed with `Durability::Immediate`
//! (fsync before `commit` returns), so a crash at any point leaves the file as it was after
//! the last commit: redb's copy-on-write B-trees and its two checksummed commit slots make a
//! half-written transaction invisible on reopen. We build our own guarantees on top of that
//! by putting every related change in the *same* transaction:
//!
//! - an ingest page (queue items) and the sync cursor that follows it commit together, so a
//!   crash never advances the cursor past items that were not queued;
//! - an item's queue ack, its file record update and its analysis result commit together;
//! - a write-back *intent* commits before the remote call and its *completion* after it, so
//!   a crash between the two is visible after restart (see [`crate::idempotency`]);
//! - every audit entry commits with the change it describes, chained to the previous entry;
//! - the per-integration plugin-state byte total and the queue counters are updated in the
//!   transaction that changes the rows they count, so they are never off after a crash.
//!
//! Values are `&[u8]` holding a versioned postcard encoding (`codec.rs`); the record
//! type is named next to each table. Keys are typed. A record that fails to decode is
//! reported as corruption naming the table, never as a panic.
//!
//! Every table is created with the store. Opening an existing store whose tables are not all
//! there is refused as damage, never papered over by re-creating them empty. Adding a table
//! or changing a record's encoding needs a migration step in `migrate.rs` and a
//! [`SCHEMA_VERSION`] bump.

use redb::TableDefinition;

/// The schema version this build writes. Opening an older file migrates it; a newer one is refused.
pub const SCHEMA_VERSION: u32 = 6;

/// Store-wide values: `schema_version`, `key_check`, `created_at`, `audit.head`, `audit.head_mac`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Monotonic id counters by name (`result`, `batch`, `queue_item`).
pub const SEQUENCES: TableDefinition<&str, u64> = TableDefinition::new("sequences");

/// Plugin id → [`crate::PluginRecord`].
pub const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
/// Integration id → [`crate::IntegrationRecord`].
pub const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("integrations");
/// (integration, field) → sealed secret bytes ([`proofpix_vault::Sealed`]).
pub const SECRETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("secrets");
/// Integration → `TokenRow` (sealed access and refresh tokens, expiry, non-secret context).
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Integration → opaque sync cursor set by the plugin.
pub const CURSORS: TableDefinition<&str, &str> = TableDefinition::new("cursors");
/// (integration, key) → plugin state value.
pub const KV_STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv_state");
/// Integration → total bytes (key + value lengths) in [`KV_STATE`] for it.
pub const KV_USAGE: TableDefinition<&str, u64> = TableDefinition::new("kv_usage");
/// (integration, remote id) → `FileRow` (a [`crate::FileRecord`] without its key).
pub const FILES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("files");
/// Result id → [`crate::AnalysisResult`].
pub const RESULTS: TableDefinition<u64, &[u8]> = TableDefinition::new("results");
/// Batch id → [`crate::BatchRecord`].
pub const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");

/// Audit sequence number → `AuditRow` (entry plus its chain hash).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Checkpoint sequence (the last entry it covers) → `CheckpointRow`; never compacted.
pub const AUDIT_CHECKPOINTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_checkpoints");

/// Queue item id → `QueueRow`.
pub const QUEUE_ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_items");
/// (integration, due time in ms since the epoch, item id) for ready and leased items; a
/// leased item is due when its lease expires, so an abandoned lease becomes claimable.
pub const QUEUE_DUE: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("queue_due");
/// (integration, item id) for parked items.
pub const QUEUE_PARKED: TableDefinition<(&str, u64), ()> = TableDefinition::new("queue_parked");
/// (integration, dedup key) → item id, for items not yet acked.
pub const QUEUE_DEDUP: TableDefinition<(&str, &str), u64> = TableDefinition::new("queue_dedup");
/// Integration → (pending, parked) item counts.
pub const QUEUE_COUNTS: TableDefinition<&str, (u64, u64)> = TableDefinition::new("queue_counts");

/// (integration, remote id, file version, plugin version, policy version) → `WritebackRow`.
pub const WRITEBACKS: TableDefinition<(&str, &str, &str, &str, &str), &[u8]> =
    TableDefinition::new("writebacks");
/// API tokens by the SHA-256 of the token (hex); the token itself is never stored. Since v2.
pub const API_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_tokens");
/// Daemon settings by name, as JSON text. Since v2.
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");
/// Dashboard sessions by the SHA-256 of the session id (hex) → [`crate::SessionRecord`];
/// the id itself is never stored. Since v4.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// Meta keys.
pub(crate) mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const KEY_CHECK: &str = "key_check";
    pub const CREATED_AT: &str = "created_at";
    pub const AUDIT_HEAD: &str = "audit.head";
    pub const AUDIT_HEAD_MAC: &str = "audit.head_mac";
    pub const AUDIT_GENESIS: &str = "audit.genesis";
    pub const AUDIT_GENESIS_MAC: &str = "audit.genesis_mac";
}

/// The name of every table of [`SCHEMA_VERSION`].
pub const TABLE_NAMES: &[&str] = &[
    "meta",
    "sequences",
    "plugins",
    "integrations",
    "secrets",
    "tokens",
    "cursors",
    "kv_state",
    "kv_usage",
    "files",
    "results",
    "batches",
    "audit",
    "audit_checkpoints",
    "queue_items",
    "queue_due",
    "queue_parked",
    "queue_dedup",
    "queue_counts",
    "writebacks",
    "api_tokens",
    "settings",
    "sessions",
];

/// The tables of [`TABLE_NAMES`] missing from an existing store.
///
/// Opening a table in a write transaction creates it, so a table whose name was damaged in
/// the file would silently come back empty; an existing store must already have every table
/// (a future version that adds one creates it in its migration step).
pub(crate) fn missing_tables(
    txn: &redb::WriteTransaction,
) -> Result<Vec<&'static str>, redb::StorageError> {
    let present: Vec<String> = txn
        .list_tables()?
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    Ok(TABLE_NAMES
        .iter()
        .copied()
        .filter(|n| !present.iter().any(|p| p == n))
        .collect())
}

/// Creates every table (a new store).
pub(crate) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(SEQUENCES)?;
    txn.open_table(PLUGINS)?;
    txn.open_table(INTEGRATIONS)?;
    txn.open_table(SECRETS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(CURSORS)?;
    txn.open_table(KV_STATE)?;
    txn.open_table(KV_USAGE)?;
    txn.open_table(FILES)?;
    txn.open_table(RESULTS)?;
    txn.open_table(BATCHES)?;
    txn.open_table(AUDIT)?;
    txn.open_table(AUDIT_CHECKPOINTS)?;
    txn.open_table(QUEUE_ITEMS)?;
    txn.open_table(QUEUE_DUE)?;
    txn.open_table(QUEUE_PARKED)?;
    txn.open_table(QUEUE_DEDUP)?;
    txn.open_table(QUEUE_COUNTS)?;
    txn.open_table(WRITEBACKS)?;
    txn.open_table(API_TOKENS)?;
    txn.open_table(SETTINGS)?;
    txn.open_table(SESSIONS)?;
    Ok(())
}

/// The half-open key range covering every tuple key whose first element is `id`:
/// `(id, ..)` up to but excluding `(id + "\0", ..)`; no string sorts between the two.
pub(crate) fn prefix_end(id: &str) -> String {
    let mut end = String::with_capacity(id.len() + 1);
    end.push_str(id);
    end.push('\0');
    end
}
