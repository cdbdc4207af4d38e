//! Opening the store, its transactions, and the helpers the table modules share.
//!
//! The typed API is split by table, as `queue.rs` and `idempotency.rs` are: `plugins.rs`,
//! `integrations.rs`, `secrets.rs` (secrets and OAuth tokens), `plugin_state.rs` (cursors and
//! plugin key-value state), `files.rs`, `results.rs` (results and batches); each is an
//! `impl Store` block over its tables.
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

use proofpix_vault::{Aad, MasterKey, Sealed};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use time::OffsetDateTime;

use crate::audit::{self, AuditEvent};
use crate::codec::{decode, encode};
use crate::migrate::{self, Migration};
use crate::records::{FileRow, TokenRow};
use crate::schema::*;
use crate::{
    AnalysisResult, FileRecord, IntegrationRecord, NewResult, OpenError, StoreError, TokenSet,
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
    /// When another integration waits at the one writer, a group's record commits after this
    /// many files and the rest of the group takes a new turn, so the waiting integration (a
    /// webhook's single file behind a first scan's backlog) waits for a part of a group, not
    /// a whole one. Each file's record stays whole; 0 never cuts a group. Default 16.
    pub yield_after: usize,
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
            yield_after: 16,
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
            .field("yield_after", &self.yield_after)
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
    /// See [`StoreOptions::yield_after`].
    pub(crate) yield_after: usize,
    /// The sync leases of this daemon's integrations (see `ControlStore::try_acquire_sync`):
    /// in memory, since a redb file is held by one process.
    pub(crate) sync_leases: crate::control::SyncLeases,
    /// When each schedule fires next (see `ControlStore::advance_schedule`): in memory too.
    pub(crate) schedule_plan: crate::control::SchedulePlan,
    /// Turns at redb's one writer, round robin between integrations (see `writer.rs`).
    pub(crate) writer: crate::writer::WriterGate,
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
            yield_after: options.yield_after,
            sync_leases: crate::control::SyncLeases::default(),
            schedule_plan: crate::control::SchedulePlan::default(),
            writer: crate::writer::WriterGate::default(),
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
        let _turn = self.writer.enter();
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

pub(crate) fn get_integration(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<IntegrationRecord>, StoreError> {
    let v = t.get(id)?;
    v.map(|v| decode("integrations", v.value())).transpose()
}

pub(crate) fn require_integration(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    if txn.open_table(INTEGRATIONS)?.get(id)?.is_none() {
        return Err(StoreError::NoSuchIntegration(id.to_owned()));
    }
    Ok(())
}

/// Removes every `(id, *)` key of a two-part-key table; returns how many.
pub(crate) fn remove_prefix2(
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
