//! Sync cursors and the key-value state a plugin keeps per integration, within its quota.

use redb::ReadableTable;

use crate::StoreError;
use crate::schema::{self, *};
use crate::store::{Store, set_cursor_in};

impl Store {
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
}
