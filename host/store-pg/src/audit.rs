//! The hash-chained audit log on PostgreSQL, and the master key's canary.
//!
//! The chain is proofpix-store's: each entry is [`AuditEntry::following`] the one before, so
//! a chain verifies the same whichever backend stored it, and the semantics are redb's
//! (`host/store/src/audit.rs`):
//!
//! - **Appends are serialised** across every node: each takes `pg_advisory_xact_lock` on a
//!   fixed key (ProofPix's audit log in this schema) before reading the head, and holds it
//!   to commit, so two nodes never both append "the next" entry: one waits for the other and
//!   chains from it. The entry and the head are written in the transaction of the change
//!   they record.
//! - **The head** `(last seq, last hash, checkpoint hash)` is kept in `meta` with an HMAC
//!   under a key derived from the master key, in redb's encoding: cutting entries off the
//!   end, or rewriting the chain without the key, is detected.
//! - **The genesis marker** (MACed) is written when the database is created (`created`), or
//!   for a database whose entries predate authenticated heads (schema 1 and 2), at the
//!   migration that adds it (`migrated`: the chain is vouched for from there). Verification
//!   fails closed when the marker or the head is missing.
//! - No compaction on PostgreSQL (yet): there are no checkpoints, and the checkpoint hash in
//!   the head stays zero.
//!
//! **The canary**: a value sealed with the master key ([`proofpix_vault::seal`], as secrets
//! are), stored in `meta` by the first node. Every node opens it at start; one whose key does
//! not open it refuses to start ([`OpenError::KeyMismatch`]).

use std::io::Write;

use proofpix_store::audit_chain::{
    ChainWalk, Head, authenticated_genesis, export_line, genesis_mac_input,
};
use proofpix_store::{AuditEntry, AuditEvent, Genesis, StoreError, VerifyReport};
use proofpix_vault::{Aad, KeyPurpose, MasterKey, Sealed, Secret};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::{GenericClient, Row, Transaction};

use crate::PgStore;
use crate::error::{OpenError, corrupt};
use crate::migrate::SCHEMA_VERSION;

const ZERO: [u8; 32] = AuditEntry::GENESIS_HASH;

/// Serialises appends to the chain of this schema, across nodes.
const AUDIT_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('proofpix.audit'), \
     hashtext(coalesce(current_schema(), '')))";
const LAST_ENTRY: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
const AUDIT_INSERT: &str = "INSERT INTO audit (seq, time, actor, action, target, outcome, \
     details, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const COLUMNS: &str = "seq, time, actor, action, target, outcome, details, hash";
const META_GET: &str = "SELECT value FROM meta WHERE key = $1";
const META_PUT: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";

/// Keys of the `meta` table.
mod meta {
    pub const HEAD: &str = "audit.head";
    pub const HEAD_MAC: &str = "audit.head_mac";
    pub const GENESIS: &str = "audit.genesis";
    pub const GENESIS_MAC: &str = "audit.genesis_mac";
    pub const CANARY: &str = "key.canary";
    pub const KEY_ID: &str = "key.id";
}

/// What the canary seals, and the record it is bound to.
const CANARY_TEXT: &str = "proofpix cluster master key canary v1";
const CANARY_AAD: (&str, &str) = ("proofpix", "meta/key-canary");

fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

async fn meta_get(
    client: &impl GenericClient,
    key: &str,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(META_GET, &[&key])
        .await?
        .map(|r| r.get::<_, Vec<u8>>(0)))
}

async fn meta_put(
    client: &impl GenericClient,
    key: &str,
    value: &[u8],
) -> Result<(), tokio_postgres::Error> {
    client.execute(META_PUT, &[&key, &value]).await?;
    Ok(())
}

async fn write_head(
    txn: &Transaction<'_>,
    key: &MasterKey,
    head: Head,
) -> Result<(), tokio_postgres::Error> {
    meta_put(txn, meta::HEAD, &head.to_bytes()).await?;
    let mac = head.mac(key);
    meta_put(txn, meta::HEAD_MAC, &mac).await
}

/// The last stored entry's seq and hash (zeros when there is none).
async fn last_entry(txn: &Transaction<'_>) -> Result<(u64, [u8; 32]), tokio_postgres::Error> {
    Ok(match txn.query_opt(LAST_ENTRY, &[]).await? {
        Some(row) => {
            let bytes: Vec<u8> = row.get(1);
            (
                row.get::<_, i64>(0) as u64,
                bytes.try_into().unwrap_or(ZERO),
            )
        }
        None => (0, ZERO),
    })
}

/// Appends an audit entry inside `txn`: takes the audit lock (so appends from every node
/// form one chain), reads the head, inserts the next entry and writes the new head with its
/// MAC. Returns the entry's sequence number.
pub(crate) async fn append_audit(
    txn: &Transaction<'_>,
    key: &MasterKey,
    now: OffsetDateTime,
    event: &AuditEvent,
) -> Result<u64, tokio_postgres::Error> {
    txn.execute(AUDIT_LOCK, &[]).await?;
    let head = match meta_get(txn, meta::HEAD)
        .await?
        .and_then(|b| Head::from_bytes(&b))
    {
        Some(head) => head,
        // No head (it was deleted): chain from the last entry rather than collide with it;
        // verification still reports the missing head's gap if entries were cut.
        None => {
            let (seq, hash) = last_entry(txn).await?;
            Head {
                seq,
                hash,
                checkpoint: ZERO,
            }
        }
    };
    let entry = AuditEntry::following(head.seq, &head.hash, now, event);
    txn.execute(
        AUDIT_INSERT,
        &[
            &(entry.seq as i64),
            &entry.time,
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.outcome,
            &entry.details,
            &entry.hash.as_slice(),
        ],
    )
    .await?;
    write_head(
        txn,
        key,
        Head {
            seq: entry.seq,
            hash: entry.hash,
            checkpoint: head.checkpoint,
        },
    )
    .await?;
    Ok(entry.seq)
}

/// Writes the genesis marker: `created` (before the first entry) or, for a database whose
/// entries were written before heads were authenticated, `migrated`, with a head made from
/// its last entry.
pub(crate) async fn write_genesis_in(
    txn: &Transaction<'_>,
    key: &MasterKey,
    now: OffsetDateTime,
    migrated: bool,
) -> Result<(), tokio_postgres::Error> {
    txn.execute(AUDIT_LOCK, &[]).await?;
    let (seq, hash) = last_entry(txn).await?;
    if migrated {
        write_head(
            txn,
            key,
            Head {
                seq,
                hash,
                checkpoint: ZERO,
            },
        )
        .await?;
    }
    let genesis = Genesis {
        kind: if migrated { "migrated" } else { "created" }.into(),
        at: rfc3339(now),
        seq: if migrated { seq } else { 0 },
    };
    // Two strings and a number: encoding cannot fail.
    let bytes = serde_json::to_vec(&genesis).unwrap_or_default();
    meta_put(txn, meta::GENESIS, &bytes).await?;
    let mac = key.mac(KeyPurpose::AuditHead, &genesis_mac_input(&bytes));
    meta_put(txn, meta::GENESIS_MAC, &mac).await
}

/// Opens the master key's canary with `key`, or writes it when there is none (the first
/// node). Called under the migration lock, so nodes starting together agree on one key.
pub(crate) async fn check_key(
    txn: &Transaction<'_>,
    key: &MasterKey,
    url: &str,
) -> Result<(), OpenError> {
    let failed = |source| OpenError::Migration {
        url: url.to_owned(),
        version: SCHEMA_VERSION,
        source,
    };
    let aad = Aad::new(CANARY_AAD.0, CANARY_AAD.1);
    match meta_get(txn, meta::CANARY).await.map_err(failed)? {
        Some(sealed) => {
            let opens = proofpix_vault::open(key, &aad, &Sealed::from_bytes(sealed))
                .is_ok_and(|s| s.expose() == CANARY_TEXT);
            if !opens {
                let cluster_key_id = meta_get(txn, meta::KEY_ID)
                    .await
                    .map_err(failed)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|| "unknown".into());
                return Err(OpenError::KeyMismatch {
                    url: url.to_owned(),
                    node_key_id: key.id(),
                    cluster_key_id,
                });
            }
        }
        None => {
            let sealed = proofpix_vault::seal(key, &aad, &Secret::new(CANARY_TEXT))
                .map_err(|e| OpenError::Runtime(std::io::Error::other(e.to_string())))?;
            meta_put(txn, meta::CANARY, sealed.as_bytes())
                .await
                .map_err(failed)?;
            meta_put(txn, meta::KEY_ID, key.id().as_bytes())
                .await
                .map_err(failed)?;
        }
    }
    Ok(())
}

/// An audit entry from a row of [`COLUMNS`].
fn entry_from_row(r: &Row) -> Result<AuditEntry, StoreError> {
    let bytes: Vec<u8> = r.get(7);
    let hash: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt("audit", "a hash is not 32 bytes"))?;
    Ok(AuditEntry {
        seq: r.get::<_, i64>(0) as u64,
        time: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        target: r.get(4),
        outcome: r.get(5),
        details: r.get(6),
        hash,
    })
}

/// Rows per page when walking the whole chain.
const PAGE: i64 = 5_000;

impl PgStore {
    /// Up to `limit` audit entries from sequence number `from_seq` on, oldest first (as
    /// redb's `Store::audit_entries`).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2");
        self.audit_rows(&sql, &[from_seq as i64, clamp(limit)])
    }

    /// Up to `limit` of the newest audit entries, newest first.
    pub(crate) fn audit_latest_in(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1");
        self.audit_rows(&sql, &[clamp(limit)])
    }

    fn audit_rows(&self, sql: &str, params: &[i64]) -> Result<Vec<AuditEntry>, StoreError> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        self.rows(sql, &params)?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// Walks the chain, the head and the genesis marker in one snapshot and reports the
    /// first problem (see redb's `Store::audit_verify`, whose report this is).
    pub(crate) fn audit_verify_in(&self) -> Result<VerifyReport, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            txn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(|e| self.err(e))?;
            let get = |k: &'static str| {
                let txn = &txn;
                async move { meta_get(txn, k).await.map_err(|e| self.err(e)) }
            };
            let genesis = match (get(meta::GENESIS).await?, get(meta::GENESIS_MAC).await?) {
                (Some(bytes), Some(tag)) => authenticated_genesis(&self.key, &bytes, &tag),
                _ => None,
            };
            let head = match get(meta::HEAD).await? {
                None => None,
                Some(b) => Some(
                    Head::from_bytes(&b)
                        .ok_or_else(|| corrupt("meta", "the audit head has the wrong length"))?,
                ),
            };
            let mac = get(meta::HEAD_MAC).await?;
            let walk = ChainWalk::begin(&self.key, genesis, head, mac.as_deref())
                // No checkpoints here: the cluster store does not compact its trail.
                .and_then(|walk| walk.after_checkpoints(0, 0, ZERO, ZERO));
            let mut walk = match walk {
                Ok(walk) => walk,
                Err(report) => return Ok(*report),
            };
            let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
            let st = txn.prepare(&sql).await.map_err(|e| self.err(e))?;
            let mut after = 0i64;
            loop {
                let rows = txn
                    .query(&st, &[&after, &PAGE])
                    .await
                    .map_err(|e| self.err(e))?;
                self.counters.waited(1);
                for r in &rows {
                    let seq = r.get::<_, i64>(0);
                    let entry = entry_from_row(r).ok();
                    if let Err(problem) = walk.entry(seq as u64, entry.as_ref()) {
                        return Ok(walk.broken(problem));
                    }
                    after = seq;
                }
                if (rows.len() as i64) < PAGE {
                    break;
                }
            }
            Ok(walk.finish())
        })
    }

    /// Every entry as one JSON object per line, oldest first, in redb's export format.
    pub(crate) fn audit_export_in(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let mut prev = ZERO;
        let mut from = 1u64;
        let mut n = 0u64;
        loop {
            let entries = self.audit_entries(from, PAGE as usize)?;
            for entry in &entries {
                let line = export_line(entry, &prev);
                serde_json::to_writer(&mut *out, &line)
                    .map_err(|e| StoreError::Export(e.into()))?;
                out.write_all(b"\n").map_err(StoreError::Export)?;
                prev = entry.hash;
                from = entry.seq + 1;
                n += 1;
            }
            if entries.len() < PAGE as usize {
                break;
            }
        }
        out.flush().map_err(StoreError::Export)?;
        Ok(n)
    }
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
