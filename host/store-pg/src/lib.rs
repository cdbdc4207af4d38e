//! The PostgreSQL store: the pipeline's [`StageStore`] seam, the notify and remediation
//! stages' `DownstreamStore` (integration records, key-value namespaces), and the control
//! plane's `ControlStore` (sealed secrets and tokens, plugins, API tokens and sessions,
//! settings, the inventory, the audit log), so a `proofpix_store::Backend`, on a database
//! several daemons share (cluster mode, issue 14).
//!
//! Its neighbours: [`proofpix_store`] defines the seam, the record types and the embedded
//! implementation (redb), and `proofpix-pipeline` drives any
//! `Arc<dyn StageStore>`. Both backends pass one conformance suite
//! (`host/store/tests/store/conformance.rs`, run here by `tests/conformance.rs`), so the
//! stages cannot tell them apart.
//!
//! What is stored, and how it keeps redb's guarantees with several writers:
//!
//! - **Queues and leases** (`queue_items`): a claim is `SELECT ... FOR UPDATE SKIP LOCKED`
//!   over the due items of one queue, so workers on any node take disjoint items without
//!   waiting for each other; a lease is the item's `owner`, delivery number and due time,
//!   and an ack, nack or park names all three, so a worker whose lease ran out and was taken
//!   over gets [`StoreError::LeaseLost`]. Deduplication is a unique index on
//!   `(queue, dedup_key)`, held while an item is queued or parked, as in redb.
//! - **Group commit**: [`StageStore::record_group`] is one transaction. Each file is one
//!   statement (ack, result, file record and outbox items in data-modifying CTEs), and the
//!   group's statements are sent pipelined, so a group of 128 files costs a few round trips,
//!   not hundreds (`BENCHMARKS.md`, "PostgreSQL stage store").
//! - **The write-back log** (`writebacks`): an intent is an `INSERT ... ON CONFLICT` that
//!   only a failed earlier attempt may overwrite, so two nodes can never both proceed with
//!   one key, and an intent left by another run (a crashed node) is uncertain, never retried
//!   on its own: write-backs are never done twice.
//! - **Secrets and the master key**: secrets and OAuth tokens are sealed with the master key
//!   by proofpix-vault exactly as redb seals them. Every node opens a canary sealed by the
//!   first one; a node with another key refuses to start ([`OpenError::KeyMismatch`]).
//! - **The audit log**: appends take an advisory lock, so every node's entries form one
//!   hash chain, whose head is MACed with the master key as in redb (`audit` module).
//! - **Schema**: versioned migrations applied in one transaction under
//!   `pg_advisory_xact_lock`, so nodes starting together apply each once; a node whose build
//!   knows an older version than the database refuses to start ([`OpenError::NewerSchema`]).
//!
//! # Sync trait, async driver
//!
//! [`StageStore`] is synchronous, and the pipeline calls it on tokio's blocking threads
//! (`spawn_blocking`, in `Pipeline::blocking`). This crate uses `tokio-postgres` (with a
//! small connection pool of its own) rather than the sync `postgres` crate, for two reasons:
//! tokio-postgres pipelines concurrent queries on one connection, which is what makes a
//! group commit cost a few round trips; and the sync crate runs each call through
//! `Runtime::block_on`, which panics when it is reached from a thread that drives async
//! tasks. Here, connections are driven by the store's own one-thread runtime, and a call
//! waits for its query with `futures_executor::block_on` on the caller's thread, which never
//! panics: called from a blocking thread (as the pipeline does) it is the intended use;
//! called from an async task by mistake it blocks that task's worker for the call's
//! duration, as any blocking I/O would, but does not bring the process down.
//!
//! # Clocks
//!
//! Due times and lease expiries are written from the calling node's clock (the store's
//! [`Clock`], as with redb, so tests can set it). Nodes of a cluster must keep their clocks
//! in step (NTP); a lease (minutes) is far longer than the skew NTP leaves.
//!
//! # Example
//!
//! ```no_run
//! use proofpix_store::WorkQueue;
//! use proofpix_store_pg::{PgOptions, PgStore};
//!
//! let key = proofpix_vault::MasterKey::generate();
//! let store = PgStore::open("postgres://proofpix@127.0.0.1/proofpix", &key, PgOptions::default())?;
//! let depth = store.depth("sf-prod")?;
//! println!("{} items pending", depth.pending);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layering (checked by .ci/layers): floor 3, may use only the host crates below it (proofpix-analysis, proofpix-auth, proofpix-model, proofpix-pixels, proofpix-plugin-artifacts, proofpix-policy, proofpix-runtime, proofpix-signing, proofpix-store, proofpix-vault); never pulls in axum, hyper, reqwest, wasmtime, even transitively.

#![deny(missing_docs)]

mod audit;
mod control;
mod error;
mod idempotency;
mod kv;
mod migrate;
mod pool;
mod queue;
mod records;
mod signals;
mod stages;
mod tls;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(doc)]
use proofpix_store::StageStore;
use proofpix_store::{Clock, StoreError};
use proofpix_vault::MasterKey;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Statement, Transaction};

pub use error::{OpenError, masked_url};
pub use migrate::SCHEMA_VERSION;

use pool::Pool;

/// Knobs for [`PgStore::open`].
#[derive(Clone)]
pub struct PgOptions {
    /// The PostgreSQL schema (namespace) the tables live in, created if missing. Default
    /// `None`: the connection's `search_path` (normally `public`). A name of its own lets
    /// ProofPix share a database with other applications, and lets tests run side by side.
    pub schema: Option<String>,
    /// The most connections the store opens. Default 8: each pipeline stage holds one for the
    /// length of one transaction; more only helps with more concurrent stages.
    pub max_connections: usize,
    /// How many deliveries a queue item gets before a failure parks it. Default 5, as with
    /// redb's `StoreOptions::queue_max_attempts`.
    pub queue_max_attempts: u32,
    /// How long to wait for a connection when the URL does not say (`connect_timeout`).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// The `application_name` the connections report (`pg_stat_activity`). Default
    /// `proofpix`; a node name here tells the nodes of a cluster apart.
    pub application_name: String,
    /// The clock. Default: `OffsetDateTime::now_utc`.
    pub clock: Clock,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: None,
            max_connections: 8,
            queue_max_attempts: 5,
            connect_timeout: Duration::from_secs(10),
            application_name: "proofpix".to_string(),
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("queue_max_attempts", &self.queue_max_attempts)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .finish_non_exhaustive()
    }
}

/// Database round trips a store has made, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgStats {
    /// Times a call waited for the server: each `BEGIN`, `COMMIT`, statement sent alone,
    /// statement prepared, and pipelined batch of statements counts one.
    pub round_trips: u64,
    /// Statements executed (a pipelined batch counts each of its statements).
    pub statements: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    round_trips: AtomicU64,
    statements: AtomicU64,
}

impl Counters {
    /// One wait for the server, for `statements` statements.
    pub(crate) fn waited(&self, statements: u64) {
        self.add(1, statements);
    }

    pub(crate) fn add(&self, round_trips: u64, statements: u64) {
        self.round_trips.fetch_add(round_trips, Ordering::Relaxed);
        self.statements.fetch_add(statements, Ordering::Relaxed);
    }
}

/// The PostgreSQL [`StageStore`]. See the crate docs.
pub struct PgStore {
    pub(crate) pool: Pool,
    /// The URL with the password masked: every message names the database by it.
    pub(crate) url: String,
    pub(crate) clock: Clock,
    /// Random per open: tells a write-back intent left by a stopped run (on any node) from
    /// one in flight in this one, as redb's run id does.
    pub(crate) run_id: i64,
    pub(crate) queue_max_attempts: u32,
    pub(crate) counters: Arc<Counters>,
    /// Seals secrets and tokens, and MACs the audit head; checked against the database's
    /// canary at open.
    pub(crate) key: MasterKey,
    /// The `NOTIFY` channel of the nodes sharing this schema (`signals`).
    pub(crate) channel: String,
    /// Drives the connections. `Option` so that drop can shut it down without blocking
    /// (dropping a runtime from an async context would panic).
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether `name` is a schema name used without quoting trouble.
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

impl PgStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or libpq's
    /// key-value form), applies pending migrations (once, whichever node gets there first)
    /// checks `key` against the cluster's (the canary the first node sealed) and returns the
    /// store. Secrets and OAuth tokens are sealed with `key`, as the embedded store seals
    /// them, so every node of a cluster needs the same master key.
    ///
    /// # Errors
    ///
    /// [`OpenError`]: an invalid URL or schema name, a database that cannot be reached, a
    /// database on a newer schema than this build knows, a failed migration, or a master key
    /// other than the cluster's ([`OpenError::KeyMismatch`]); each names the database by its
    /// URL with the password masked.
    pub fn open(url: &str, key: &MasterKey, options: PgOptions) -> Result<PgStore, OpenError> {
        let masked = masked_url(url);
        let (url, tls, ssl_mode) = tls::from_url(url).map_err(|reason| OpenError::InvalidUrl {
            url: masked.clone(),
            reason,
        })?;
        let mut config =
            tokio_postgres::Config::from_str(&url).map_err(|e| OpenError::InvalidUrl {
                url: masked.clone(),
                reason: e.to_string(),
            })?;
        config.ssl_mode(ssl_mode);
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(OpenError::InvalidSchema {
                    schema: schema.clone(),
                });
            }
            // Every connection of the pool resolves table names in this schema.
            let mut opts = config.get_options().unwrap_or("").to_string();
            opts.push_str(&format!(" -c search_path={schema}"));
            config.options(opts.trim());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name(&options.application_name);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("proofpix-pg")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let counters = Arc::new(Counters::default());
        let pool = Pool::new(
            config,
            tls,
            runtime.handle().clone(),
            options.max_connections.max(1),
            counters.clone(),
        );
        let mut run_id = [0u8; 8];
        getrandom::getrandom(&mut run_id)
            .map_err(|e| OpenError::Runtime(std::io::Error::other(e.to_string())))?;
        let store = PgStore {
            pool,
            url: masked,
            clock: options.clock.clone(),
            run_id: i64::from_le_bytes(run_id),
            queue_max_attempts: options.queue_max_attempts.max(1),
            counters,
            key: key.clone(),
            channel: signals::channel(options.schema.as_deref()),
            runtime: Some(runtime),
        };
        store.block_on(migrate::migrate(&store, options.schema.as_deref()))?;
        Ok(store)
    }

    /// The database URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current time per the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Round trips and statements so far.
    pub fn stats(&self) -> PgStats {
        PgStats {
            round_trips: self.counters.round_trips.load(Ordering::Relaxed),
            statements: self.counters.statements.load(Ordering::Relaxed),
        }
    }

    /// Waits for `fut` on this thread, with the store's runtime as the context for anything
    /// it spawns or times. See the crate docs for why this never panics.
    ///
    /// `unconstrained`: called from a task on a tokio worker thread (an API handler, the run
    /// manager), the task's cooperative budget can be spent; a tokio resource (the pool's
    /// semaphore, a socket) then answers `Pending` and defers its wake-up to when the task
    /// yields to its scheduler, which this thread, blocked here, never does. The daemon
    /// hung that way in the cluster test (a notifier's audit append, parked for good).
    pub(crate) fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        let _context = self.runtime.as_ref().map(|rt| rt.enter());
        futures_executor::block_on(tokio::task::unconstrained(fut))
    }

    pub(crate) fn err(&self, e: tokio_postgres::Error) -> StoreError {
        error::backend(&self.url, e)
    }

    /// A connection from the pool.
    pub(crate) async fn conn(&self) -> Result<pool::Pooled<'_>, StoreError> {
        self.pool.get().await.map_err(|e| self.err(e))
    }

    /// One statement, waited for on its own.
    pub(crate) async fn query(
        &self,
        client: &impl GenericClient,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let rows = client.query(statement, params).await;
        self.counters.waited(1);
        rows.map_err(|e| self.err(e))
    }

    /// Statements sent together and waited for together (tokio-postgres pipelines queries
    /// that are in flight at once on one connection): one round trip for the lot. They run
    /// in the order given, as if sent one by one.
    pub(crate) async fn pipelined<F>(&self, queries: Vec<F>) -> Result<Vec<Vec<Row>>, StoreError>
    where
        F: Future<Output = Result<Vec<Row>, tokio_postgres::Error>>,
    {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let n = queries.len() as u64;
        let rows = futures_util::future::try_join_all(queries).await;
        self.counters.waited(n);
        rows.map_err(|e| self.err(e))
    }

    /// Commits (one round trip).
    pub(crate) async fn commit(&self, txn: Transaction<'_>) -> Result<(), StoreError> {
        let r = txn.commit().await;
        self.counters.waited(1);
        r.map_err(|e| self.err(e))
    }
}

/// Milliseconds since the Unix epoch, as redb stores times.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    /// The schema name is spliced into `search_path` and DDL, so only plain names pass.
    #[test]
    fn only_plain_schema_names_are_accepted() {
        for ok in ["proofpix", "pp_test_1", "_x"] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Proofpix",
            "a-b",
            "a;drop",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
