//! Integration records: one configured instance of a plugin each; deleting one removes what it owned.

use redb::ReadableTable;

use crate::audit::AuditEvent;
use crate::codec::{decode, encode};
use crate::schema::{self, *};
use crate::store::{DeletedCounts, Store, get_integration, remove_prefix2};
use crate::{IntegrationRecord, IntegrationStatus, StoreError};

impl Store {
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
}
