//! Opening the store and the typed API over its tables.
//!
//! Opening checks, in this order, before anything else is read: the schema version (a newer
//! file is refused), the key check (a wrong master key is refused before anything is
//! decrypted), then runs pending migrations in the same write transaction, so a failed
//! migration leaves the file exactly as it was.
//!
//! Every mutating method is one write transaction, committed durably before it returns.
//! Security-relevant changes (plugins, integrations, secrets, tokens, key rotation,
//! compaction) append their audit entry inside that same transaction, so the audit log
//! never misses a change that happened, nor records one that did not.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proofpix_vault::{Aad, MasterKey, Sealed, Secret};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    WriteTransaction,
};
use time::OffsetDateTime;

use crate::audit::{self, AuditEvent};
use crate::codec::{decode, encode};
use crate::migrate::{self, Migration};
use crate::records::{FileRow, TokenRow};
use crate::schema::{self, *};
use crate::{
    AnalysisResult, BatchRecord, FileRecord, IntegrationRecord, IntegrationStatus, NewResult,
    OpenError, PluginRecord, StoreError, TokenSet,
};

/// A source of the current time; tests replace it to make leases and retention deterministic.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Knobs for [`Store::open_with`].
#[derive(Clone)]
pub struct StoreOptions {
    /// How many deliveries a queue item gets before a failure parks it. Default 5, like a
    /// JetStream consumer's `max_deliver`.
    pub queue_max_attempts: u32,
    /// Run redb's full integrity check (every page checksum) at open. Default `true`.
    ///
    /// redb verifies checksums only when it repairs or is asked to, not on ordinary reads;
    /// and the first write transaction copies a damaged page with a fresh checksum, which
    /// launders the damage. The tamper tests found exactly that (a flipped byte in a table
    /// name made a table come back empty without any check noticing). Verifying at open,
    /// before our first write, closes that hole. It reads the whole file: see
    /// `BENCHMARKS.md` for the cost at 1M file records. Turning it off trades that for
    /// trusting the file between opens.
    pub check_integrity_on_open: bool,
    /// redb's page cache, in bytes. Default 64 MiB (redb's own default is 1 GiB, too much for
    /// a daemon that shares its host).
    pub cache_size_bytes: usize,
    /// The clock. Default: `OffsetDateTime::now_utc`.
    pub clock: Clock,
    /// Extra migrations after the built-in ones, for testing the migration machinery.
    #[doc(hidden)]
    pub extra_migrations: Vec<Migration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            queue_max_attempts: 5,
            check_integrity_on_open: true,
            cache_size_bytes: 64 << 20,
            clock: Arc::new(OffsetDateTime::now_utc),
            extra_migrations: Vec::new(),
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("queue_max_attempts", &self.queue_max_attempts)
            .field("check_integrity_on_open", &self.check_integrity_on_open)
            .field("cache_size_bytes", &self.cache_size_bytes)
            .finish_non_exhaustive()
    }
}

/// The ProofPix store: one redb file, typed tables, sealed secrets, the audit chain.
pub struct Store {
    pub(crate) db: Database,
    pub(crate) key: MasterKey,
    pub(crate) path: Option<PathBuf>,
    pub(crate) clock: Clock,
    /// Random per open; tells a write-back intent left by a crashed run from one in flight now.
    pub(crate) run_id: u64,
    pub(crate) queue_max_attempts: u32,
    /// The sync leases of this daemon's integrations (see `ControlStore::try_acquire_sync`):
    /// in memory, since a redb file is held by one process.
    pub(crate) sync_leases: crate::control::SyncLeases,
    /// When each schedule fires next (see `ControlStore::advance_schedule`): in memory too.
    pub(crate) schedule_plan: crate::control::SchedulePlan,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("key", &self.key)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// What [`Store::delete_integration`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedCounts {
    /// Secrets.
    pub secrets: u64,
    /// Token sets (0 or 1).
    pub tokens: u64,
    /// Plugin state entries.
    pub kv_entries: u64,
    /// File records.
    pub files: u64,
    /// Queue items.
    pub queue_items: u64,
    /// Write-back records.
    pub writebacks: u64,
}

impl Store {
    /// Opens (or creates) `<data_dir>/proofpix.redb` with default options.
    ///
    /// # Errors
    ///
    /// See [`OpenError`]: a wrong key, a newer schema, a failed migration or a file redb
    /// cannot open are each reported with what to do next.
    pub fn open(data_dir: &Path, key: &MasterKey) -> Result<Store, OpenError> {
        Store::open_with(data_dir, key, StoreOptions::default())
    }

    /// [`Store::open`] with options.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open_with(
        data_dir: &Path,
        key: &MasterKey,
        options: StoreOptions,
    ) -> Result<Store, OpenError> {
        crate::data_dir::ensure_data_dir(data_dir)?;
        let path = data_dir.join(crate::STORE_FILE_NAME);
        let db = open_guarded(&options, |b| b.create(&path)).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                OpenError::AlreadyOpen { path: path.clone() }
            }
            e => OpenError::Database {
                path: path.clone(),
                source: e.into(),
            },
        })?;
        restrict_file(&path);
        Store::init(db, key, Some(path), options)
    }

    /// Opens a store on a custom redb storage backend (crash tests use an in-memory one that
    /// separates written from synced bytes).
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open_backend(
        backend: impl redb::StorageBackend,
        key: &MasterKey,
        options: StoreOptions,
    ) -> Result<Store, OpenError> {
        let backend = std::sync::Arc::new(backend);
        let db = open_guarded(&options, |b| {
            b.create_with_backend(SharedBackend(backend.clone()))
        })
        .map_err(|e| OpenError::Database {
            path: PathBuf::from("<backend>"),
            source: e.into(),
        })?;
        Store::init(db, key, None, options)
    }

    /// Resolves the data directory and the master key the way the daemon does, then opens:
    /// `PROOFPIX_MASTER_KEY`, else `<data dir>/master.key`, which is created only when no
    /// store exists yet (so a lost key file is an error, never a silently new key). Finishes
    /// a key rotation that crashed between committing and renaming the key file.
    ///
    /// # Errors
    ///
    /// See [`OpenError`].
    pub fn open_default() -> Result<(Store, proofpix_vault::KeySource), OpenError> {
        let dir = crate::data_dir()?;
        crate::rotation::open_in_dir(&dir)
    }

    fn init(
        db: Database,
        key: &MasterKey,
        path: Option<PathBuf>,
        options: StoreOptions,
    ) -> Result<Store, OpenError> {
        let mut run_id = [0u8; 8];
        getrandom::getrandom(&mut run_id).map_err(|e| {
            OpenError::Store(StoreError::Io {
                action: "draw a random run id for",
                path: path.clone().unwrap_or_default(),
                source: std::io::Error::other(e.to_string()),
            })
        })?;
        let store = Store {
            db,
            key: key.clone(),
            path,
            clock: options.clock.clone(),
            run_id: u64::from_le_bytes(run_id),
            queue_max_attempts: options.queue_max_attempts.max(1),
            sync_leases: crate::control::SyncLeases::default(),
            schedule_plan: crate::control::SchedulePlan::default(),
        };
        migrate::open_schema(&store, &options.extra_migrations)?;
        Ok(store)
    }

    /// The store file's path (`None` for a custom backend).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The current time per the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The public id of the master key in use.
    pub fn key_id(&self) -> String {
        self.key.id()
    }

    /// The schema version of the open file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a read failure.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|txn| migrate::read_version(&txn.open_table(META)?))
            .map(|v| v.unwrap_or(0))
    }

    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write()?;
        // Dropping an uncommitted transaction aborts it, so an error leaves no trace.
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    pub(crate) fn audit_in(
        &self,
        txn: &WriteTransaction,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        audit::append(txn, &self.key, self.now(), event)
    }

    // ----- plugins -----------------------------------------------------------------------

    /// Installs or upgrades a plugin record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn put_plugin(&self, plugin: &PluginRecord, actor: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(PLUGINS)?
                .insert(plugin.id.as_str(), encode(plugin).as_slice())?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "plugin.install", &plugin.id).details(serde_json::json!({
                    "version": plugin.version,
                    "content_hash": plugin.content_hash,
                    "capabilities": plugin.capabilities,
                })),
            )?;
            Ok(())
        })
    }

    /// A plugin by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn plugin(&self, id: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(PLUGINS)?;
            let v = t.get(id)?;
            v.map(|v| decode("plugins", v.value())).transpose()
        })
    }

    /// All installed plugins, by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(PLUGINS)?;
            t.iter()?.map(|e| decode("plugins", e?.1.value())).collect()
        })
    }

    /// Removes a plugin record. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn remove_plugin(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn.open_table(PLUGINS)?.remove(id)?.is_some();
            if existed {
                self.audit_in(txn, &AuditEvent::new(actor, "plugin.remove", id))?;
            }
            Ok(existed)
        })
    }

    // ----- integrations ------------------------------------------------------------------

    /// Creates or replaces an integration.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn put_integration(
        &self,
        integration: &IntegrationRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(INTEGRATIONS)?;
            let existed = t
                .insert(integration.id.as_str(), encode(integration).as_slice())?
                .is_some();
            drop(t);
            let action = if existed {
                "integration.update"
            } else {
                "integration.create"
            };
            self.audit_in(
                txn,
                &AuditEvent::new(actor, action, &integration.id).details(serde_json::json!({
                    "plugin": integration.plugin_id,
                    "plugin_version": integration.plugin_version,
                    "enabled": integration.enabled,
                })),
            )?;
            Ok(())
        })
    }

    /// An integration by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn integration(&self, id: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        self.read(|txn| get_integration(&txn.open_table(INTEGRATIONS)?, id))
    }

    /// All integrations, by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Corrupt`].
    pub fn integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(INTEGRATIONS)?;
            t.iter()?
                .map(|e| decode("integrations", e?.1.value()))
                .collect()
        })
    }

    /// Sets an integration's status and last error (not audited: it changes on every run).
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Database`].
    pub fn set_integration_status(
        &self,
        id: &str,
        status: IntegrationStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.write(|txn| {
            let mut t = txn.open_table(INTEGRATIONS)?;
            let mut rec = get_integration(&t, id)?
                .ok_or_else(|| StoreError::NoSuchIntegration(id.to_owned()))?;
            rec.status = status;
            rec.last_error = last_error.map(str::to_owned);
            rec.updated_at = now;
            t.insert(id, encode(&rec).as_slice())?;
            Ok(())
        })
    }

    /// Deletes an integration with its secrets, tokens, cursor, plugin state, file records,
    /// queue items and write-back records, in one transaction. Results and batches stay until
    /// retention removes them.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Database`].
    pub fn delete_integration(&self, id: &str, actor: &str) -> Result<DeletedCounts, StoreError> {
        self.write(|txn| {
            if txn.open_table(INTEGRATIONS)?.remove(id)?.is_none() {
                return Err(StoreError::NoSuchIntegration(id.to_owned()));
            }
            let end = schema::prefix_end(id);
            let mut counts = DeletedCounts {
                secrets: remove_prefix2(&mut txn.open_table(SECRETS)?, id, &end)?,
                tokens: u64::from(txn.open_table(TOKENS)?.remove(id)?.is_some()),
                kv_entries: remove_prefix2(&mut txn.open_table(KV_STATE)?, id, &end)?,
                files: remove_prefix2(&mut txn.open_table(FILES)?, id, &end)?,
                ..DeletedCounts::default()
            };
            txn.open_table(CURSORS)?.remove(id)?;
            txn.open_table(KV_USAGE)?.remove(id)?;
            counts.queue_items = crate::queue::remove_integration(txn, id)?;
            for stage in crate::Stage::ALL {
                let queue = crate::stage_queue(id, stage);
                counts.queue_items += crate::queue::remove_integration(txn, &queue)?;
            }
            let mut wb = txn.open_table(WRITEBACKS)?;
            let keys: Vec<(String, String, String, String)> = wb
                .range((id, "", "", "", "")..(end.as_str(), "", "", "", ""))?
                .map(|e| {
                    let k = e?.0;
                    let (_, a, b, c, d) = k.value();
                    Ok((a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
                })
                .collect::<Result<_, StoreError>>()?;
            for (a, b, c, d) in &keys {
                wb.remove((id, a.as_str(), b.as_str(), c.as_str(), d.as_str()))?;
            }
            counts.writebacks = keys.len() as u64;
            drop(wb);
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "integration.delete", id).details(serde_json::json!({
                    "secrets": counts.secrets,
                    "tokens": counts.tokens,
                    "kv_entries": counts.kv_entries,
                    "files": counts.files,
                    "queue_items": counts.queue_items,
                })),
            )?;
            Ok(counts)
        })
    }

    // ----- secrets and tokens ------------------------------------------------------------

    /// Seals and stores a secret field of an integration (client secret, password, private
    /// key...). The audit entry names the field, never the value.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`], [`StoreError::Database`].
    pub fn set_secret(
        &self,
        integration: &str,
        field: &str,
        value: &Secret,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            require_integration(txn, integration)?;
            let aad_field = secret_aad_field(field);
            let sealed =
                proofpix_vault::seal(&self.key, &Aad::new(integration, &aad_field), value)?;
            txn.open_table(SECRETS)?
                .insert((integration, field), sealed.as_bytes())?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "secret.set", format!("{integration}/{field}")),
            )?;
            Ok(())
        })
    }

    /// Opens a secret field, if set.
    ///
    /// # Errors
    ///
    /// [`StoreError::Vault`] if it does not open (altered, or moved from another record).
    pub fn secret(&self, integration: &str, field: &str) -> Result<Option<Secret>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(SECRETS)?
                .get((integration, field))?
                .map(|v| Sealed::from_bytes(v.value().to_vec())))
        })?;
        let aad_field = secret_aad_field(field);
        Ok(sealed
            .map(|s| proofpix_vault::open(&self.key, &Aad::new(integration, &aad_field), &s))
            .transpose()?)
    }

    /// The names of an integration's secret fields (never their values).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn secret_fields(&self, integration: &str) -> Result<Vec<String>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(SECRETS)?;
            t.range((integration, "")..(end.as_str(), ""))?
                .map(|e| Ok(e?.0.value().1.to_owned()))
                .collect()
        })
    }

    /// Removes a secret field. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn delete_secret(
        &self,
        integration: &str,
        field: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn
                .open_table(SECRETS)?
                .remove((integration, field))?
                .is_some();
            if existed {
                self.audit_in(
                    txn,
                    &AuditEvent::new(actor, "secret.delete", format!("{integration}/{field}")),
                )?;
            }
            Ok(existed)
        })
    }

    /// Seals and stores an integration's token set, replacing the previous one.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`], [`StoreError::Database`].
    pub fn set_tokens(
        &self,
        integration: &str,
        tokens: &TokenSet,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            require_integration(txn, integration)?;
            let row = seal_tokens(&self.key, integration, tokens)?;
            txn.open_table(TOKENS)?
                .insert(integration, encode(&row).as_slice())?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "tokens.set", integration).details(serde_json::json!({
                    "has_refresh_token": tokens.refresh_token.is_some(),
                    "expires_at": tokens.expires_at.and_then(|t| audit::rfc3339(t).ok()),
                })),
            )?;
            Ok(())
        })
    }

    /// Opens an integration's token set, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Vault`] if a token does not open; [`StoreError::Corrupt`].
    pub fn tokens(&self, integration: &str) -> Result<Option<TokenSet>, StoreError> {
        let row: Option<TokenRow> = self.read(|txn| {
            txn.open_table(TOKENS)?
                .get(integration)?
                .map(|v| decode("tokens", v.value()))
                .transpose()
        })?;
        row.map(|row| open_tokens(&self.key, integration, row))
            .transpose()
    }

    /// Removes an integration's token set. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn.open_table(TOKENS)?.remove(integration)?.is_some();
            if existed {
                self.audit_in(txn, &AuditEvent::new(actor, "tokens.delete", integration))?;
            }
            Ok(existed)
        })
    }

    // ----- cursors and plugin state ------------------------------------------------------

    /// Sets (or clears, with `None`) an integration's sync cursor.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn set_cursor(&self, integration: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        self.write(|txn| set_cursor_in(txn, integration, cursor))
    }

    /// An integration's sync cursor.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn cursor(&self, integration: &str) -> Result<Option<String>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(CURSORS)?
                .get(integration)?
                .map(|v| v.value().to_owned()))
        })
    }

    /// A plugin state value.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn kv_get(&self, integration: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(KV_STATE)?
                .get((integration, key))?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Sets a plugin state value and returns the integration's new byte total (key plus value
    /// lengths over all its entries). With a `cap`, a write that would take the total over it
    /// is refused and changes nothing; the check reads one counter, not the whole state.
    ///
    /// # Errors
    ///
    /// [`StoreError::KvQuotaExceeded`], [`StoreError::Database`].
    pub fn kv_set(
        &self,
        integration: &str,
        key: &str,
        value: &[u8],
        cap: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut state = txn.open_table(KV_STATE)?;
            let old = state
                .get((integration, key))?
                .map(|v| (key.len() + v.value().len()) as u64)
                .unwrap_or(0);
            let mut usage = txn.open_table(KV_USAGE)?;
            let used = usage.get(integration)?.map(|v| v.value()).unwrap_or(0);
            let would_be = used - old.min(used) + (key.len() + value.len()) as u64;
            if let Some(cap) = cap
                && would_be > cap
            {
                return Err(StoreError::KvQuotaExceeded {
                    integration: integration.to_owned(),
                    would_be,
                    cap,
                });
            }
            state.insert((integration, key), value)?;
            usage.insert(integration, would_be)?;
            Ok(would_be)
        })
    }

    /// Deletes a plugin state value; returns the integration's new byte total.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn kv_delete(&self, integration: &str, key: &str) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut state = txn.open_table(KV_STATE)?;
            let mut usage = txn.open_table(KV_USAGE)?;
            let used = usage.get(integration)?.map(|v| v.value()).unwrap_or(0);
            let Some(old) = state.remove((integration, key))? else {
                return Ok(used);
            };
            let now = used.saturating_sub((key.len() + old.value().len()) as u64);
            drop(old);
            if now == 0 {
                usage.remove(integration)?;
            } else {
                usage.insert(integration, now)?;
            }
            Ok(now)
        })
    }

    /// An integration's plugin state byte total.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn kv_usage(&self, integration: &str) -> Result<u64, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(KV_USAGE)?
                .get(integration)?
                .map(|v| v.value())
                .unwrap_or(0))
        })
    }

    /// The keys of an integration's plugin state starting with `prefix`, in order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn kv_keys(&self, integration: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(KV_STATE)?;
            let mut out = Vec::new();
            for e in t.range((integration, prefix)..(end.as_str(), ""))? {
                let k = e?.0;
                let key = k.value().1;
                if !key.starts_with(prefix) {
                    break;
                }
                out.push(key.to_owned());
            }
            Ok(out)
        })
    }

    // ----- file records ------------------------------------------------------------------

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

    // ----- results and batches -----------------------------------------------------------

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

    // ----- audit ---------------------------------------------------------------------------

    /// Appends an audit entry on its own.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        self.write(|txn| self.audit_in(txn, event))
    }
}

/// Opens through redb, turning a panic on a damaged file into a second open with redb's full
/// integrity check, which reports (or repairs) the damage as an error instead.
///
/// redb 4 trusts the allocator state of a cleanly closed file and asserts on it when it is
/// malformed; only an altered file can trigger that, and the tamper tests do. The retry
/// verifies every page checksum, so it either rebuilds the allocator state from intact trees
/// or fails with `Corrupted`. Remove this when redb reports that case as an error.
fn open_guarded(
    options: &StoreOptions,
    open: impl Fn(&redb::Builder) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, redb::DatabaseError> {
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open(&builder(options))));
    match first {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(
                "the store file failed redb's consistency assertions at open; \
                 verifying every page before trusting it"
            );
            let mut b = builder(options);
            b.set_check_integrity_on_open(true);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open(&b))).unwrap_or_else(
                |_| {
                    Err(redb::StorageError::Corrupted(
                        "redb could not read the file's allocator state or headers".into(),
                    )
                    .into())
                },
            )
        }
    }
}

/// Lets [`open_guarded`] retry an open on a custom backend it has already handed to redb.
#[derive(Debug)]
struct SharedBackend<B>(std::sync::Arc<B>);

impl<B: redb::StorageBackend> redb::StorageBackend for SharedBackend<B> {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
}

fn builder(options: &StoreOptions) -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(options.cache_size_bytes);
    b.set_check_integrity_on_open(options.check_integrity_on_open);
    b
}

/// The store file holds file names and sealed secrets: owner-only, like the directory.
fn restrict_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the store file owner-only");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

pub(crate) fn secret_aad_field(field: &str) -> String {
    format!("secret/{field}")
}

pub(crate) const TOKEN_ACCESS_FIELD: &str = "token/access";
pub(crate) const TOKEN_REFRESH_FIELD: &str = "token/refresh";

pub(crate) fn seal_tokens(
    key: &MasterKey,
    integration: &str,
    tokens: &TokenSet,
) -> Result<TokenRow, StoreError> {
    let access = proofpix_vault::seal(
        key,
        &Aad::new(integration, TOKEN_ACCESS_FIELD),
        &tokens.access_token,
    )?;
    let refresh = tokens
        .refresh_token
        .as_ref()
        .map(|r| proofpix_vault::seal(key, &Aad::new(integration, TOKEN_REFRESH_FIELD), r))
        .transpose()?;
    Ok(TokenRow {
        access: access.as_bytes().to_vec(),
        refresh: refresh.map(|r| r.as_bytes().to_vec()),
        expires_at: tokens.expires_at,
        scope: tokens.scope.clone(),
        context: tokens.context.clone(),
    })
}

pub(crate) fn open_tokens(
    key: &MasterKey,
    integration: &str,
    row: TokenRow,
) -> Result<TokenSet, StoreError> {
    let access_token = proofpix_vault::open(
        key,
        &Aad::new(integration, TOKEN_ACCESS_FIELD),
        &Sealed::from_bytes(row.access),
    )?;
    let refresh_token = row
        .refresh
        .map(|r| {
            proofpix_vault::open(
                key,
                &Aad::new(integration, TOKEN_REFRESH_FIELD),
                &Sealed::from_bytes(r),
            )
        })
        .transpose()?;
    Ok(TokenSet {
        access_token,
        refresh_token,
        expires_at: row.expires_at,
        scope: row.scope,
        context: row.context,
    })
}

fn get_integration(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<IntegrationRecord>, StoreError> {
    let v = t.get(id)?;
    v.map(|v| decode("integrations", v.value())).transpose()
}

fn require_integration(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    if txn.open_table(INTEGRATIONS)?.get(id)?.is_none() {
        return Err(StoreError::NoSuchIntegration(id.to_owned()));
    }
    Ok(())
}

/// Removes every `(id, *)` key of a two-part-key table; returns how many.
fn remove_prefix2(
    t: &mut redb::Table<(&'static str, &'static str), &'static [u8]>,
    id: &str,
    end: &str,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    t.retain_in((id, "")..(end, ""), |_, _| {
        n += 1;
        false
    })?;
    Ok(n)
}

pub(crate) fn set_cursor_in(
    txn: &WriteTransaction,
    integration: &str,
    cursor: Option<&str>,
) -> Result<(), StoreError> {
    let mut t = txn.open_table(CURSORS)?;
    match cursor {
        Some(c) => {
            t.insert(integration, c)?;
        }
        None => {
            t.remove(integration)?;
        }
    }
    Ok(())
}

pub(crate) fn put_file_in(
    t: &mut redb::Table<(&'static str, &'static str), &'static [u8]>,
    f: &FileRecord,
) -> Result<(), StoreError> {
    t.insert(
        (f.integration.as_str(), f.remote_id.as_str()),
        encode(&FileRow::from_record(f)).as_slice(),
    )?;
    Ok(())
}

pub(crate) fn add_result_in(
    txn: &WriteTransaction,
    r: NewResult,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let id = next_id(txn, "result")?;
    let rec = AnalysisResult {
        id,
        integration: r.integration,
        remote_id: r.remote_id,
        file_version: r.file_version,
        risk: r.risk,
        score: r.score,
        report_json: r.report_json,
        created_at: now,
    };
    txn.open_table(RESULTS)?
        .insert(id, encode(&rec).as_slice())?;
    Ok(id)
}

/// The next value of a named counter, starting at 1.
pub(crate) fn next_id(txn: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut t = txn.open_table(SEQUENCES)?;
    let next = t.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
    t.insert(name, next)?;
    Ok(next)
}
