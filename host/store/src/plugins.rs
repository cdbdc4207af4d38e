//! Plugin records: what is installed, by id.

use redb::ReadableTable;

use crate::audit::AuditEvent;
use crate::codec::{decode, encode};
use crate::schema::*;
use crate::store::Store;
use crate::{PluginRecord, StoreError};

impl Store {
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
}
