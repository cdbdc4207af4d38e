//! Versioned migrations, applied once however many nodes start at the same moment.
//!
//! | database | this build | what happens |
//! |---|---|---|
//! | empty | any | every migration runs in **one** transaction, then the version is recorded and a `store.create` audit entry appended |
//! | older | newer | the missing migrations run in one transaction, with a `store.migrate` entry |
//! | same | same | nothing (but the master key check below) |
//! | newer | older | [`OpenError::NewerSchema`]: the node refuses to start rather than write rows it does not understand |
//!
//! The transaction first takes `pg_advisory_xact_lock` on a key made of ProofPix's name and
//! the schema, so a second node starting at the same moment waits, then finds the work done.
//! DDL is transactional in PostgreSQL: a migration that fails leaves the schema as it was.
//! The lock is released at commit or rollback, and never held by a node that died.
//!
//! In the same transaction, every open checks this node's master key against the sealed
//! canary in `meta` (written by the first node): a node with another key refuses to start
//! ([`OpenError::KeyMismatch`]) rather than seal secrets the other nodes cannot open.
//!
//! A migration is never edited once released; a change is a new migration with the next
//! version.

use crate::error::OpenError;
use crate::{PgStore, audit, ms};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 7;

struct Migration {
    version: i64,
    sql: &'static str,
}

/// Version 1: the stage store (issue 14's first slice). Times are milliseconds since the
/// Unix epoch, as redb stores them, so both backends read back the same values.
const V1: &str = r#"
CREATE TABLE integrations (
    id             text PRIMARY KEY,
    plugin_id      text NOT NULL,
    plugin_version text NOT NULL,
    config         jsonb NOT NULL DEFAULT '{}',
    schedule       text,
    enabled        boolean NOT NULL,
    status         text NOT NULL,
    last_error     text,
    created_ms     bigint NOT NULL,
    updated_ms     bigint NOT NULL
);

CREATE TABLE cursors (
    integration text PRIMARY KEY,
    cursor      text NOT NULL
);

CREATE TABLE files (
    integration  text NOT NULL,
    remote_id    text NOT NULL,
    version      text NOT NULL,
    name         text NOT NULL,
    content_hash text,
    last_result  bigint,
    status       text NOT NULL,
    attempts     bigint NOT NULL,
    last_error   text,
    updated_ms   bigint NOT NULL,
    PRIMARY KEY (integration, remote_id)
);

CREATE TABLE results (
    id           bigserial PRIMARY KEY,
    integration  text NOT NULL,
    remote_id    text NOT NULL,
    file_version text NOT NULL,
    risk         text NOT NULL,
    score        bigint NOT NULL,
    report_json  text NOT NULL,
    created_ms   bigint NOT NULL
);
CREATE INDEX results_file ON results (integration, remote_id);

CREATE TABLE batches (
    id          bigserial PRIMARY KEY,
    integration text NOT NULL,
    started_ms  bigint NOT NULL,
    finished_ms bigint,
    record      jsonb NOT NULL
);
CREATE INDEX batches_integration ON batches (integration, id);

-- The work queue of every integration and stage. `queue` is an integration id (its fetch
-- queue) or a stage queue (`<id>/writeback`, ...). An item is ready, leased (due_ms is when
-- the lease expires) or parked; acking deletes it, which frees its dedup key.
CREATE TABLE queue_items (
    id          bigserial PRIMARY KEY,
    queue       text NOT NULL,
    dedup_key   text NOT NULL,
    payload     bytea NOT NULL,
    attempts    bigint NOT NULL DEFAULT 0,
    state       text NOT NULL CHECK (state IN ('ready', 'leased', 'parked')),
    due_ms      bigint NOT NULL,
    owner       text,
    last_error  text,
    enqueued_ms bigint NOT NULL,
    UNIQUE (queue, dedup_key)
);
CREATE INDEX queue_items_due ON queue_items (queue, due_ms, id) WHERE state <> 'parked';
CREATE INDEX queue_items_parked ON queue_items (queue, id) WHERE state = 'parked';

CREATE TABLE writebacks (
    integration    text NOT NULL,
    remote_id      text NOT NULL,
    file_version   text NOT NULL,
    plugin_version text NOT NULL,
    policy_version text NOT NULL,
    state          text NOT NULL CHECK (state IN ('intent', 'done', 'failed')),
    at_ms          bigint NOT NULL,
    run_id         bigint NOT NULL,
    attempts       bigint NOT NULL,
    last_error     text,
    PRIMARY KEY (integration, remote_id, file_version, plugin_version, policy_version)
);

-- The hash-chained audit log (the chain is proofpix-store's `AuditEntry::following`);
-- appends are serialised by an advisory lock.
CREATE TABLE audit (
    seq     bigint PRIMARY KEY,
    time    text NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    outcome text NOT NULL,
    details text NOT NULL,
    hash    bytea NOT NULL
);
"#;

/// Version 2: the key-value namespaces the notify and remediation stages keep state in
/// (proofpix-store's `DownstreamStore`). Usage is counted as redb counts it: key plus value
/// bytes per namespace.
const V2: &str = r#"
CREATE TABLE kv (
    namespace text NOT NULL,
    key       text NOT NULL,
    value     bytea NOT NULL,
    PRIMARY KEY (namespace, key)
);
"#;

/// Version 3: the control plane (proofpix-store's `ControlStore`): sealed secrets and OAuth
/// tokens (sealed with the master key by proofpix-vault, as redb seals them: nothing in clear),
/// plugin records, API tokens (by their SHA-256), dashboard sessions (by theirs), settings,
/// per-integration sync leases, and `meta`: the master key's sealed canary and the audit
/// chain's authenticated head and genesis marker.
const V3: &str = r#"
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE secrets (
    integration text NOT NULL,
    field       text NOT NULL,
    sealed      bytea NOT NULL,
    PRIMARY KEY (integration, field)
);

CREATE TABLE tokens (
    integration text PRIMARY KEY,
    access      bytea NOT NULL,
    refresh     bytea,
    expires_ms  bigint,
    scope       text,
    context     jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE plugins (
    id     text PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE api_tokens (
    token_sha256 text PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL,
    created_by   text NOT NULL,
    created_ms   bigint NOT NULL
);

CREATE TABLE sessions (
    session_sha256 text PRIMARY KEY,
    token_sha256   text NOT NULL,
    token_name     text NOT NULL,
    created_ms     bigint NOT NULL,
    expires_ms     bigint NOT NULL
);
CREATE INDEX sessions_token ON sessions (token_sha256);

CREATE TABLE settings (
    name text PRIMARY KEY,
    json text NOT NULL
);

CREATE TABLE sync_leases (
    integration text PRIMARY KEY,
    node        text NOT NULL,
    expires_ms  bigint NOT NULL
);

CREATE INDEX files_last_result ON files (last_result);
CREATE INDEX results_integration ON results (integration, id);
"#;

/// Version 4: each file's web link as the plugin listed it (untrusted; rendered as a link
/// only when it is http or https). Existing rows have none until their file is listed again.
const V4: &str = "ALTER TABLE files ADD COLUMN web_url text;";

/// Version 5: when each integration's schedule fires next, agreed by every node (a
/// compare-and-set on `next_ms`, so a due time fires once cluster-wide).
const V5: &str = r#"
CREATE TABLE schedules (
    integration text PRIMARY KEY,
    next_ms     bigint NOT NULL
);
"#;

/// Version 6: installed plugins' files (signature included), so every node loads what was
/// installed on any node; the newest two per plugin are kept.
const V6: &str = r#"
CREATE TABLE plugin_files (
    id           text NOT NULL,
    content_hash text NOT NULL,
    file         bytea NOT NULL,
    stored_ms    bigint NOT NULL,
    PRIMARY KEY (id, content_hash)
);
"#;

/// Version 7: the host's own settings of an integration (the operator's grant, a notifier's
/// subscriptions, the remediation policy, the pixel setting) get columns of their own; until
/// now they were JSON strings under reserved keys of the plugin's `config`, which now holds
/// the plugin's configuration only. A stored value that is not JSON fails the migration,
/// which then changes nothing.
const V7: &str = r#"
ALTER TABLE integrations
    ADD COLUMN operator_grant jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN subscriptions  jsonb,
    ADD COLUMN remediation    jsonb,
    ADD COLUMN pixels         boolean NOT NULL DEFAULT false;
UPDATE integrations SET
    operator_grant = COALESCE((config->>'grant')::jsonb, '{}'),
    subscriptions  = (config->>'subscriptions')::jsonb,
    remediation    = (config->>'remediation')::jsonb,
    pixels         = COALESCE(config->>'proofpix.pixels' = 'on', false),
    config         = config - 'grant' - 'subscriptions' - 'remediation' - 'proofpix.pixels';
"#;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: V1,
    },
    Migration {
        version: 2,
        sql: V2,
    },
    Migration {
        version: 3,
        sql: V3,
    },
    Migration {
        version: 4,
        sql: V4,
    },
    Migration {
        version: 5,
        sql: V5,
    },
    Migration {
        version: 6,
        sql: V6,
    },
    Migration {
        version: 7,
        sql: V7,
    },
];

/// The first advisory-lock key: ProofPix's migrations (the second is the schema's).
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext('proofpix.migrate'), \
                        hashtext(coalesce($1::text, current_schema(), '')))";

pub(crate) async fn migrate(store: &PgStore, schema: Option<&str>) -> Result<(), OpenError> {
    let url = store.url.clone();
    let unreachable_db = |source: tokio_postgres::Error| OpenError::Unreachable {
        url: url.clone(),
        source,
    };
    let mut conn = store.pool.get().await.map_err(unreachable_db)?;
    let failed = |version: i64| {
        let url = url.clone();
        move |source: tokio_postgres::Error| OpenError::Migration {
            url,
            version,
            source,
        }
    };
    let txn = conn.begin().await.map_err(unreachable_db)?;
    txn.execute(LOCK_SQL, &[&schema])
        .await
        .map_err(failed(SCHEMA_VERSION))?;
    if let Some(schema) = schema {
        // Checked by `PgStore::open`: a plain identifier.
        txn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(failed(SCHEMA_VERSION))?;
    }
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    bigint PRIMARY KEY,
             applied_ms bigint NOT NULL,
             applied_by text NOT NULL
         )",
    )
    .await
    .map_err(failed(SCHEMA_VERSION))?;
    let found: i64 = txn
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .map_err(failed(SCHEMA_VERSION))?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema {
            url: url.clone(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let now = store.now();
    let by = format!("proofpix {}", env!("CARGO_PKG_VERSION"));
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        txn.batch_execute(m.sql).await.map_err(failed(m.version))?;
        txn.execute(
            "INSERT INTO schema_version (version, applied_ms, applied_by) VALUES ($1, $2, $3)",
            &[&m.version, &ms(now), &by],
        )
        .await
        .map_err(failed(m.version))?;
    }
    // Under the same lock, so that nodes starting together agree on one key and one genesis.
    audit::check_key(&txn, &store.key, &url).await?;
    if found == SCHEMA_VERSION {
        // Nothing to migrate; the transaction held the lock and checked the key.
        txn.commit().await.map_err(failed(SCHEMA_VERSION))?;
        return Ok(());
    }
    if found < 3 {
        // The genesis marker: `created` for a new database; `migrated` for one whose chain
        // was written before heads were authenticated (the chain is vouched for from here).
        audit::write_genesis_in(&txn, &store.key, now, found > 0)
            .await
            .map_err(failed(3))?;
    }
    let event = if found == 0 {
        proofpix_store::AuditEvent::new("proofpix", "store.create", "store").details(
            serde_json::json!({ "schema_version": SCHEMA_VERSION, "backend": "postgresql" }),
        )
    } else {
        proofpix_store::AuditEvent::new("proofpix", "store.migrate", "store").details(
            serde_json::json!({ "from": found, "to": SCHEMA_VERSION, "backend": "postgresql" }),
        )
    };
    audit::append_audit(&txn, &store.key, now, &event)
        .await
        .map_err(failed(SCHEMA_VERSION))?;
    txn.commit().await.map_err(failed(SCHEMA_VERSION))?;
    tracing::info!(
        from = found,
        to = SCHEMA_VERSION,
        "migrated the PostgreSQL store"
    );
    Ok(())
}
