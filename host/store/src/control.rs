//! The control plane's seam: what the service, the server and the CLI ask of a store
//! besides the pipeline's stages.
//!
//! [`ControlStore`] has the inherent methods of [`Store`] that the daemon's service, its API
//! and its CLI call (integrations, sealed secrets and tokens, plugins, the audit log,
//! sessions and API tokens, settings, batches, the inventory), with the same signatures, so
//! a call site compiles unchanged against `&dyn ControlStore`. [`Backend`] joins it with
//! [`DownstreamStore`] (and so [`StageStore`](crate::StageStore)): one
//! `Arc<dyn Backend>` is everything a daemon needs of its store, whichever engine is under
//! it. Methods already in those traits are not repeated here (a name in two supertraits of
//! `dyn Backend` would make every call ambiguous):
//!
//! - in [`StageStore`](crate::StageStore): `now`, `cursor`, `file`, `put_file`,
//!   `needs_processing`, `enqueue_page`, `start_batch`, `set_integration_status`, `audit`,
//!   `result`, `stage_depth`, `earliest_due` (and the queue and write-back log traits);
//! - in [`DownstreamStore`]: `batch`, `integrations`, `put_integration`, `kv_get`, `kv_set`,
//!   `kv_delete`, `kv_keys`.
//!
//! Left out, inherent to [`Store`] because they are about the redb file itself:
//! `compact` and `reclaim_space` (retention and file compaction), `rotate_master_key`
//! (re-seals the file under a new key file), `check` (redb's page checksums), `path`,
//! `schema_version` and `key_id`.
//!
//! [`ControlStore::try_acquire_sync`] and [`ControlStore::release_sync`] (one sync per
//! integration, cluster-wide) have no inherent twin.
//!
//! One method differs from its inherent twin: [`ControlStore::audit_export`] takes
//! `&mut dyn Write` where [`Store::audit_export`] takes `impl Write` (a generic method
//! cannot be called through a trait object).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::records::{BatchRecord, FileRecord, IntegrationRecord, PluginRecord, TokenSet};
use crate::seams::DownstreamStore;
use crate::{
    ApiTokenRecord, AuditEntry, DeletedCounts, InventoryPage, InventoryQuery, PurgedHistory,
    SessionRecord, Store, StoreError, VerifyReport,
};
use proofpix_vault::Secret;

/// What the daemon's control plane (service, API, CLI) needs of a store. See the module
/// docs. Every method is one transaction; every change made on an operator's behalf is
/// audited in that same transaction, with `actor` as the audit entry's actor.
pub trait ControlStore: Send + Sync {
    // ----- integrations ----------------------------------------------------------------

    /// An integration by id.
    ///
    /// # Errors
    /// The backend failed, or the record does not decode.
    fn integration(&self, id: &str) -> Result<Option<IntegrationRecord>, StoreError>;

    /// Deletes an integration with its secrets, tokens, cursor, plugin state, file records,
    /// queue items (its own queue and its stage queues) and write-back records, audited as
    /// `integration.delete`. Results and batches stay (see
    /// [`ControlStore::purge_integration_history`]).
    ///
    /// # Errors
    /// [`StoreError::NoSuchIntegration`]; the backend failed.
    fn delete_integration(&self, id: &str, actor: &str) -> Result<DeletedCounts, StoreError>;

    // ----- secrets and tokens ----------------------------------------------------------

    /// Seals and stores a secret field of an integration under the master key (audited as
    /// `secret.set`, naming the field, never the value).
    ///
    /// # Errors
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`]; the backend failed.
    fn set_secret(
        &self,
        integration: &str,
        field: &str,
        value: &Secret,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Opens a secret field, if set.
    ///
    /// # Errors
    /// [`StoreError::Vault`] if it does not open; the backend failed.
    fn secret(&self, integration: &str, field: &str) -> Result<Option<Secret>, StoreError>;

    /// The names of an integration's secret fields, in order (never their values).
    ///
    /// # Errors
    /// The backend failed.
    fn secret_fields(&self, integration: &str) -> Result<Vec<String>, StoreError>;

    /// Removes a secret field (audited as `secret.delete` when it existed). Returns whether
    /// it existed.
    ///
    /// # Errors
    /// The backend failed.
    fn delete_secret(
        &self,
        integration: &str,
        field: &str,
        actor: &str,
    ) -> Result<bool, StoreError>;

    /// Seals and stores an integration's OAuth token set, replacing the previous one
    /// (audited as `tokens.set`).
    ///
    /// # Errors
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`]; the backend failed.
    fn set_tokens(
        &self,
        integration: &str,
        tokens: &TokenSet,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Opens an integration's token set, if any.
    ///
    /// # Errors
    /// [`StoreError::Vault`] if a token does not open; the backend failed.
    fn tokens(&self, integration: &str) -> Result<Option<TokenSet>, StoreError>;

    /// Removes an integration's token set (audited as `tokens.delete` when there was one).
    /// Returns whether there was one.
    ///
    /// # Errors
    /// The backend failed.
    fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, StoreError>;

    // ----- plugins -----------------------------------------------------------------------

    /// A plugin by id.
    ///
    /// # Errors
    /// The backend failed, or the record does not decode.
    fn plugin(&self, id: &str) -> Result<Option<PluginRecord>, StoreError>;

    /// Every installed plugin, by id.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;

    /// Installs or upgrades a plugin record (audited as `plugin.install`).
    ///
    /// # Errors
    /// The backend failed.
    fn put_plugin(&self, plugin: &PluginRecord, actor: &str) -> Result<(), StoreError>;

    /// Removes a plugin record (audited as `plugin.remove` when it existed). Returns whether
    /// it existed.
    ///
    /// # Errors
    /// The backend failed.
    fn remove_plugin(&self, id: &str, actor: &str) -> Result<bool, StoreError>;

    // ----- the audit log ---------------------------------------------------------------

    /// Up to `limit` audit entries from `from_seq` on, oldest first.
    ///
    /// # Errors
    /// The backend failed, or an entry does not decode.
    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Up to `limit` of the newest audit entries, newest first.
    ///
    /// # Errors
    /// The backend failed, or an entry does not decode.
    fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Walks the audit chain and reports the first problem (problems are in the report,
    /// not errors).
    ///
    /// # Errors
    /// The backend failed.
    fn audit_verify(&self) -> Result<VerifyReport, StoreError>;

    /// Writes every stored audit entry as one JSON object per line, oldest first, and
    /// returns the number of lines (the format of [`Store::audit_export`], which takes
    /// `impl Write`; this takes `&mut dyn Write` so that it can be called through a trait
    /// object).
    ///
    /// # Errors
    /// [`StoreError::Export`] if writing fails; the backend failed.
    fn audit_export(&self, out: &mut dyn Write) -> Result<u64, StoreError>;

    // ----- sessions, API tokens, settings ----------------------------------------------

    /// The live session with this SHA-256 (hex) and its token's record, as of the store's
    /// clock; `None` when missing, expired or its token was revoked.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn session(
        &self,
        session_sha256: &str,
    ) -> Result<Option<(SessionRecord, ApiTokenRecord)>, StoreError>;

    /// Opens a session (audited as `session.create`). Returns `false`, storing nothing,
    /// when its token no longer exists.
    ///
    /// # Errors
    /// The backend failed.
    fn put_session(&self, session_sha256: &str, record: &SessionRecord)
    -> Result<bool, StoreError>;

    /// Ends a session (audited as `session.delete`). Returns whether one existed.
    ///
    /// # Errors
    /// The backend failed.
    fn delete_session(&self, session_sha256: &str) -> Result<bool, StoreError>;

    /// Removes sessions past their expiry as of the store's clock; returns how many.
    ///
    /// # Errors
    /// The backend failed.
    fn expire_sessions(&self) -> Result<usize, StoreError>;

    /// How many sessions are stored (live or not yet purged).
    ///
    /// # Errors
    /// The backend failed.
    fn session_count(&self) -> Result<u64, StoreError>;

    /// The record of an API token by its SHA-256 (hex).
    ///
    /// # Errors
    /// The backend failed, or the record does not decode.
    fn api_token(&self, token_sha256: &str) -> Result<Option<ApiTokenRecord>, StoreError>;

    /// Every API token record.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError>;

    /// Stores a token record, replacing one with the same name and ending the replaced
    /// token's sessions (audited as `api-token.create`).
    ///
    /// # Errors
    /// The backend failed.
    fn put_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Stores a token record unless one with the same name exists (then returns `false`
    /// and changes nothing); audited as `api-token.create`.
    ///
    /// # Errors
    /// The backend failed.
    fn create_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces the secret of the token named `name`: same name and role, the old token and
    /// its sessions end (audited as `api-token.rotate`). `None` when no token has that name.
    ///
    /// # Errors
    /// The backend failed.
    fn rotate_api_token(
        &self,
        name: &str,
        new_token_sha256: &str,
        actor: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError>;

    /// Removes the token named `name` and its sessions (audited as `api-token.delete`).
    /// Returns whether one existed.
    ///
    /// # Errors
    /// The backend failed.
    fn delete_api_token(&self, name: &str, actor: &str) -> Result<bool, StoreError>;

    /// Stores a setting's JSON text (audited as `settings.update`, with the value).
    ///
    /// # Errors
    /// The backend failed.
    fn put_setting(&self, name: &str, json: &str, actor: &str) -> Result<(), StoreError>;

    /// A setting's JSON text.
    ///
    /// # Errors
    /// The backend failed.
    fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    // ----- batches, files, results -------------------------------------------------------

    /// The most recent `limit` batches, newest first, optionally of one integration.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn recent_batches(
        &self,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError>;

    /// Batches that started at or after `since`, newest first, at most `limit`, optionally
    /// of one integration: what a trend over time reads. Each comes with its `result_ids`
    /// left empty (a trend needs the counts, and a big run's ids would cost memory for
    /// nothing); `failures` are kept, since they tell a failed run. The read stops at the
    /// first batch (by id, downwards) that started before `since`, as ids follow start order.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn batches_since(
        &self,
        integration: Option<&str>,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError>;

    /// Saves a batch (progress or its final state).
    ///
    /// # Errors
    /// The backend failed.
    fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError>;

    /// One page of the file inventory (files joined with their latest results), filtered,
    /// sorted and paged as `q` says.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryPage, StoreError>;

    /// Up to `limit` file records of an integration with remote id after `after`, in
    /// remote id order.
    ///
    /// # Errors
    /// The backend failed, or a record does not decode.
    fn files(
        &self,
        integration: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// How many file records an integration has.
    ///
    /// # Errors
    /// The backend failed.
    fn file_count(&self, integration: &str) -> Result<u64, StoreError>;

    /// How many analysis results are stored.
    ///
    /// # Errors
    /// The backend failed.
    fn result_count(&self) -> Result<u64, StoreError>;

    /// Forgets the finished write-backs of an integration (intents stay); returns how many.
    ///
    /// # Errors
    /// The backend failed.
    fn forget_writebacks(&self, integration: &str) -> Result<u64, StoreError>;

    /// Removes every result and batch of an integration, audited as
    /// `integration.purge-history`.
    ///
    /// # Errors
    /// The backend failed.
    fn purge_integration_history(&self, id: &str, actor: &str)
    -> Result<PurgedHistory, StoreError>;

    /// Makes leases that no running worker holds claimable at once; returns how many. redb
    /// is held by one daemon, so at its start every lease in it is a dead process's and all
    /// are expired; a shared backend expires only leases past their expiry time, since the
    /// others belong to live nodes.
    ///
    /// # Errors
    /// The backend failed.
    fn expire_leases(&self) -> Result<u64, StoreError>;

    // ----- one sync per integration, cluster-wide ---------------------------------------

    /// Takes (or renews) the sync lease of `integration` for `node_id` until `ttl` from the
    /// store's clock. `true` when `node_id` holds it now: there was none, the holder's expired,
    /// or `node_id` held it already (renewed). `false` when another node holds a live one:
    /// that node is syncing the integration. A node renews well within `ttl` while it syncs,
    /// so the lease of a node that died runs out and another takes over. redb, held by one
    /// daemon, keeps its leases in memory; PostgreSQL in a row claimed with a conditional
    /// update, so two nodes never both hold one.
    ///
    /// # Errors
    /// The backend failed.
    fn try_acquire_sync(
        &self,
        integration: &str,
        node_id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives up `node_id`'s sync lease of `integration` (after its sync). Returns whether
    /// `node_id` held it; another node's lease is left alone.
    ///
    /// # Errors
    /// The backend failed.
    fn release_sync(&self, integration: &str, node_id: &str) -> Result<bool, StoreError>;

    // ----- schedules that fire once, cluster-wide ---------------------------------------

    /// When `integration`'s schedule fires next, as the nodes sharing this store agreed
    /// (`None`: not planned yet).
    ///
    /// # Errors
    /// The backend failed.
    fn schedule_next(&self, integration: &str) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Moves `integration`'s next firing from `expected` to `next` (`None` forgets it) when
    /// nobody moved it since, and says whether it did: a compare-and-set, so of several
    /// schedulers that saw the same due time exactly one fires it. redb, held by one daemon,
    /// keeps these in memory (a restart plans every schedule afresh); PostgreSQL in a row
    /// (a cluster restart fires what came due while it was down, once).
    ///
    /// # Errors
    /// The backend failed.
    fn advance_schedule(
        &self,
        integration: &str,
        expected: Option<OffsetDateTime>,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError>;

    // ----- plugin files, for the nodes sharing a store ----------------------------------

    /// Keeps an installed plugin's file (the component as installed, signature included) so
    /// every node sharing this store can load it: each verifies the signature again and
    /// compiles it into its own cache. The newest two files of a plugin are kept (the
    /// current one and the one before, for a rollback). An embedded store keeps nothing
    /// (the default): its one daemon has the file in its plugins folder.
    ///
    /// # Errors
    /// The backend failed.
    fn put_plugin_file(&self, id: &str, content_hash: &str, file: &[u8]) -> Result<(), StoreError> {
        let _ = (id, content_hash, file);
        Ok(())
    }

    /// The file [`ControlStore::put_plugin_file`] kept for plugin `id` at `content_hash`
    /// (`None` when there is none, always on an embedded store).
    ///
    /// # Errors
    /// The backend failed.
    fn plugin_file(&self, id: &str, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (id, content_hash);
        Ok(None)
    }

    // ----- signals between the nodes sharing a store -------------------------------------

    /// Sends `message` (at most [`MAX_SIGNAL_BYTES`]) to every listener on every node sharing
    /// this store, this one included, after the statement commits. A store no other node
    /// shares has nobody to tell and does nothing (the default).
    ///
    /// # Errors
    /// The backend failed, or `message` is too long.
    fn signal(&self, message: &str) -> Result<(), StoreError> {
        let _ = message;
        Ok(())
    }

    /// Calls `on` with every [`Signal`] from now on (PostgreSQL's `LISTEN`, on a connection
    /// of its own that reconnects with back-off after a loss). Returns `false` when the store
    /// is not shared and so no signal ever comes (the default).
    ///
    /// # Errors
    /// The backend failed.
    fn listen(&self, on: Box<dyn Fn(Signal) + Send + Sync>) -> Result<bool, StoreError> {
        let _ = on;
        Ok(false)
    }
}

/// The longest [`ControlStore::signal`] message (PostgreSQL's `NOTIFY` payload limit is
/// 8,000 bytes).
pub const MAX_SIGNAL_BYTES: usize = 7_900;

/// The signal the service sends when a plugin was installed, upgraded or removed: every
/// node loads what the store records ([`ControlStore::plugin_file`]).
pub const PLUGINS_SIGNAL: &str = "plugins";

/// The start of the signal a shared store sends itself, followed by the queue's name, when
/// a queue gets new items: idle nodes wake to help drain it.
pub const WORK_SIGNAL: &str = "work ";

/// What a [`ControlStore::listen`] callback hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A message some node sent with [`ControlStore::signal`].
    Message(String),
    /// The listening connection was lost and is back: messages sent meanwhile are lost, so
    /// whatever they would have told must be looked up in the store.
    Reconnected,
}

/// redb's schedule plan: integration -> next firing. In memory, like [`SyncLeases`].
#[derive(Debug, Default)]
pub(crate) struct SchedulePlan(Mutex<HashMap<String, OffsetDateTime>>);

impl SchedulePlan {
    fn get(&self, integration: &str) -> Option<OffsetDateTime> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(integration)
            .copied()
    }

    fn advance(
        &self,
        integration: &str,
        expected: Option<OffsetDateTime>,
        next: Option<OffsetDateTime>,
    ) -> bool {
        let mut plan = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if plan.get(integration).copied() != expected {
            return false;
        }
        match next {
            Some(at) => plan.insert(integration.to_owned(), at),
            None => plan.remove(integration),
        };
        true
    }
}

/// redb's sync leases: integration -> (node, expiry).
#[derive(Debug, Default)]
pub(crate) struct SyncLeases(Mutex<HashMap<String, (String, OffsetDateTime)>>);

impl SyncLeases {
    fn acquire(
        &self,
        integration: &str,
        node_id: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> bool {
        let mut leases = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match leases.get(integration) {
            Some((holder, expires)) if holder != node_id && *expires > now => false,
            _ => {
                leases.insert(integration.to_owned(), (node_id.to_owned(), now + ttl));
                true
            }
        }
    }

    fn release(&self, integration: &str, node_id: &str) -> bool {
        let mut leases = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if leases
            .get(integration)
            .is_some_and(|(holder, _)| holder == node_id)
        {
            leases.remove(integration);
            true
        } else {
            false
        }
    }
}

/// Everything a daemon needs of its store: the control plane ([`ControlStore`]) and the
/// pipeline's stages ([`DownstreamStore`], which includes
/// [`StageStore`](crate::StageStore)). Implemented for every type that implements both, so
/// a host holds one `Arc<dyn Backend>` and hands the pipeline the same object as an
/// `Arc<dyn StageStore>` (trait upcasting).
pub trait Backend: ControlStore + DownstreamStore {}

impl<T: ControlStore + DownstreamStore + ?Sized> Backend for T {}

impl ControlStore for Store {
    fn integration(&self, id: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        Store::integration(self, id)
    }

    fn delete_integration(&self, id: &str, actor: &str) -> Result<DeletedCounts, StoreError> {
        Store::delete_integration(self, id, actor)
    }

    fn set_secret(
        &self,
        integration: &str,
        field: &str,
        value: &Secret,
        actor: &str,
    ) -> Result<(), StoreError> {
        Store::set_secret(self, integration, field, value, actor)
    }

    fn secret(&self, integration: &str, field: &str) -> Result<Option<Secret>, StoreError> {
        Store::secret(self, integration, field)
    }

    fn secret_fields(&self, integration: &str) -> Result<Vec<String>, StoreError> {
        Store::secret_fields(self, integration)
    }

    fn delete_secret(
        &self,
        integration: &str,
        field: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        Store::delete_secret(self, integration, field, actor)
    }

    fn set_tokens(
        &self,
        integration: &str,
        tokens: &TokenSet,
        actor: &str,
    ) -> Result<(), StoreError> {
        Store::set_tokens(self, integration, tokens, actor)
    }

    fn tokens(&self, integration: &str) -> Result<Option<TokenSet>, StoreError> {
        Store::tokens(self, integration)
    }

    fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, StoreError> {
        Store::delete_tokens(self, integration, actor)
    }

    fn plugin(&self, id: &str) -> Result<Option<PluginRecord>, StoreError> {
        Store::plugin(self, id)
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        Store::plugins(self)
    }

    fn put_plugin(&self, plugin: &PluginRecord, actor: &str) -> Result<(), StoreError> {
        Store::put_plugin(self, plugin, actor)
    }

    fn remove_plugin(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        Store::remove_plugin(self, id, actor)
    }

    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Store::audit_entries(self, from_seq, limit)
    }

    fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Store::audit_latest(self, limit)
    }

    fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        Store::audit_verify(self)
    }

    fn audit_export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        Store::audit_export(self, out)
    }

    fn session(
        &self,
        session_sha256: &str,
    ) -> Result<Option<(SessionRecord, ApiTokenRecord)>, StoreError> {
        Store::session(self, session_sha256)
    }

    fn put_session(
        &self,
        session_sha256: &str,
        record: &SessionRecord,
    ) -> Result<bool, StoreError> {
        Store::put_session(self, session_sha256, record)
    }

    fn delete_session(&self, session_sha256: &str) -> Result<bool, StoreError> {
        Store::delete_session(self, session_sha256)
    }

    fn expire_sessions(&self) -> Result<usize, StoreError> {
        Store::expire_sessions(self)
    }

    fn session_count(&self) -> Result<u64, StoreError> {
        Store::session_count(self)
    }

    fn api_token(&self, token_sha256: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        Store::api_token(self, token_sha256)
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        Store::api_tokens(self)
    }

    fn put_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        Store::put_api_token(self, token_sha256, record, actor)
    }

    fn create_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<bool, StoreError> {
        Store::create_api_token(self, token_sha256, record, actor)
    }

    fn rotate_api_token(
        &self,
        name: &str,
        new_token_sha256: &str,
        actor: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        Store::rotate_api_token(self, name, new_token_sha256, actor)
    }

    fn delete_api_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        Store::delete_api_token(self, name, actor)
    }

    fn put_setting(&self, name: &str, json: &str, actor: &str) -> Result<(), StoreError> {
        Store::put_setting(self, name, json, actor)
    }

    fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Store::setting(self, name)
    }

    fn recent_batches(
        &self,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        Store::recent_batches(self, integration, limit)
    }

    fn batches_since(
        &self,
        integration: Option<&str>,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        Store::batches_since(self, integration, since, limit)
    }

    fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        Store::put_batch(self, batch)
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryPage, StoreError> {
        Store::inventory(self, q)
    }

    fn files(
        &self,
        integration: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError> {
        Store::files(self, integration, after, limit)
    }

    fn file_count(&self, integration: &str) -> Result<u64, StoreError> {
        Store::file_count(self, integration)
    }

    fn result_count(&self) -> Result<u64, StoreError> {
        Store::result_count(self)
    }

    fn forget_writebacks(&self, integration: &str) -> Result<u64, StoreError> {
        Store::forget_writebacks(self, integration)
    }

    fn purge_integration_history(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<PurgedHistory, StoreError> {
        Store::purge_integration_history(self, id, actor)
    }

    fn expire_leases(&self) -> Result<u64, StoreError> {
        Store::expire_leases(self)
    }

    fn try_acquire_sync(
        &self,
        integration: &str,
        node_id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self
            .sync_leases
            .acquire(integration, node_id, self.now(), ttl))
    }

    fn release_sync(&self, integration: &str, node_id: &str) -> Result<bool, StoreError> {
        Ok(self.sync_leases.release(integration, node_id))
    }

    fn schedule_next(&self, integration: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.schedule_plan.get(integration))
    }

    // The defaults, spelled out so that `.ci/owners` sees them as the store's methods: the
    // one daemon on a redb file keeps plugin files in its plugins folder and has no other
    // node to signal.

    fn put_plugin_file(
        &self,
        _id: &str,
        _content_hash: &str,
        _file: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn plugin_file(&self, _id: &str, _content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn signal(&self, _message: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn listen(&self, _on: Box<dyn Fn(Signal) + Send + Sync>) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn advance_schedule(
        &self,
        integration: &str,
        expected: Option<OffsetDateTime>,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        Ok(self.schedule_plan.advance(integration, expected, next))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proofpix_vault::MasterKey;

    use super::{Backend, ControlStore};
    use crate::{IntegrationRecord, StageStore, Store};

    /// The store goes behind one `Arc<dyn Backend>`, its control methods are called through
    /// it, and the same object reaches the pipeline as an `Arc<dyn StageStore>`.
    #[test]
    fn a_store_is_one_backend_object_for_the_control_plane_and_the_stages() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> =
            Arc::new(Store::open(dir.path(), &MasterKey::generate()).unwrap());
        let now = backend.now();
        backend
            .put_integration(&IntegrationRecord::new("i", "p", "0.1.0", now), "t")
            .unwrap();
        let control: &dyn ControlStore = &*backend;
        assert_eq!(control.integration("i").unwrap().unwrap().id, "i");
        let mut out = Vec::new();
        assert_eq!(control.audit_export(&mut out).unwrap(), 2);
        let stages: Arc<dyn StageStore> = backend.clone();
        assert_eq!(stages.cursor("i").unwrap(), None);
        assert!(backend.audit_verify().unwrap().is_ok());
    }
}
