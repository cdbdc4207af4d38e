//! Key-value namespaces and the rest of [`DownstreamStore`] (what the notify and remediation
//! stages need beyond [`proofpix_store::StageStore`]).
//!
//! A namespace's usage is the sum of its keys' and values' bytes, as redb counts it. Writes
//! to one namespace take an advisory lock on it first, so two nodes cannot both pass the cap
//! check and together exceed it.

use proofpix_store::{BatchRecord, DownstreamStore, IntegrationRecord, StoreError};

use crate::PgStore;

const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('proofpix.kv'), hashtext($1::text))";
const USAGE: &str = "SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint, \
     coalesce(sum(CASE WHEN key = $2 THEN octet_length(key) + octet_length(value) END), 0)::bigint \
     FROM kv WHERE namespace = $1";
const PUT: &str = "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM kv WHERE namespace = $1 AND key = $2";
const GET: &str = "SELECT value FROM kv WHERE namespace = $1 AND key = $2";
const KEYS: &str = "SELECT key FROM kv WHERE namespace = $1 AND starts_with(key, $2) \
     ORDER BY key COLLATE \"C\"";

impl PgStore {
    /// Sets (`write`: the value and the cap) or deletes a key under the namespace's lock, in
    /// one transaction; answers the namespace's usage afterwards.
    fn kv_write(
        &self,
        namespace: &str,
        key: &str,
        write: Option<(&[u8], Option<u64>)>,
    ) -> Result<u64, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [lock, usage, put, delete] = conn
                .prepare([LOCK, USAGE, PUT, DELETE])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            self.query(&txn, &lock, &[&namespace]).await?;
            let rows = self.query(&txn, &usage, &[&namespace, &key]).await?;
            let (used, old): (i64, i64) = (rows[0].get(0), rows[0].get(1));
            let (used, old) = (used as u64, old as u64);
            let now = match write {
                Some((value, cap)) => {
                    let would_be = used - old.min(used) + (key.len() + value.len()) as u64;
                    if let Some(cap) = cap
                        && would_be > cap
                    {
                        return Err(StoreError::KvQuotaExceeded {
                            integration: namespace.to_owned(),
                            would_be,
                            cap,
                        });
                    }
                    self.query(&txn, &put, &[&namespace, &key, &value]).await?;
                    would_be
                }
                None => {
                    if old == 0 {
                        return Ok(used);
                    }
                    self.query(&txn, &delete, &[&namespace, &key]).await?;
                    used.saturating_sub(old)
                }
            };
            self.commit(txn).await?;
            Ok(now)
        })
    }
}

impl DownstreamStore for PgStore {
    fn batch(&self, id: u64) -> Result<Option<BatchRecord>, StoreError> {
        PgStore::batch(self, id)
    }

    fn integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError> {
        self.all_integrations()
    }

    fn put_integration(
        &self,
        integration: &IntegrationRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.put_integration_audited(integration, actor)
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([GET]).await.map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&namespace, &key]).await?;
            Ok(rows.first().map(|r| r.get(0)))
        })
    }

    fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        cap: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.kv_write(namespace, key, Some((value, cap)))
    }

    fn kv_delete(&self, namespace: &str, key: &str) -> Result<u64, StoreError> {
        self.kv_write(namespace, key, None)
    }

    fn kv_keys(&self, namespace: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([KEYS]).await.map_err(|e| self.err(e))?;
            let rows = self
                .query(conn.client(), &st, &[&namespace, &prefix])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}
