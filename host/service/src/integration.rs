//! Building a plugin session's context from what the store holds about an
//! integration: non-secret config, sealed secrets, the operator's grant, and
//! plugin state kept in the store.
//!
//! The grant is a typed field of the integration's record
//! ([`IntegrationRecord::grant`]); it is the operator's side of the two-sided grant and is
//! never shown to the plugin, whose config map holds its own configuration only.

use std::sync::Arc;

use proofpix_runtime::contract::PluginInfo;
use proofpix_runtime::{CredentialProvider, IntegrationContext, StateError, StateStore};
use proofpix_store::{Backend, IntegrationRecord, StoreError};

/// Plugin state kept in the store's per-integration key-value table.
#[derive(Clone)]
pub struct StoreState(pub Arc<dyn Backend>);

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreState")
    }
}

impl StateStore for StoreState {
    fn get(&self, integration: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.kv_get(integration, key).map_err(|e| e.to_string())
    }

    fn set(&self, integration: &str, key: &str, value: &[u8], cap: u64) -> Result<(), StateError> {
        match self.0.kv_set(integration, key, value, Some(cap)) {
            Ok(_) => Ok(()),
            Err(StoreError::KvQuotaExceeded { would_be, cap, .. }) => {
                Err(StateError::OverCap { would_be, cap })
            }
            Err(e) => Err(StateError::Storage(e.to_string())),
        }
    }

    fn delete(&self, integration: &str, key: &str) -> Result<(), String> {
        self.0
            .kv_delete(integration, key)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Why an integration's context cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The store failed (or a secret would not unseal).
    #[error("integration {integration}: {source}")]
    Store {
        /// Integration.
        integration: String,
        /// The error.
        source: StoreError,
    },
}

/// The session context for a stored integration: its config, every secret field the plugin
/// declares (unsealed), the grant, state in the store, and the given credentials.
///
/// # Errors
/// A store/vault failure.
pub fn context_for(
    store: &Arc<dyn Backend>,
    record: &IntegrationRecord,
    info: &PluginInfo,
    credentials: Option<Arc<dyn CredentialProvider>>,
) -> Result<IntegrationContext, ContextError> {
    let mut ctx = IntegrationContext::new(&record.id)
        .with_grant(record.grant.clone())
        .with_state(Arc::new(StoreState(store.clone())));
    ctx.config = record.config.clone();
    for field in info.config.iter().filter(|f| f.secret) {
        let secret =
            store
                .secret(&record.id, &field.name)
                .map_err(|source| ContextError::Store {
                    integration: record.id.clone(),
                    source,
                })?;
        if let Some(secret) = secret {
            ctx.secrets.insert(field.name.clone(), secret);
        }
    }
    ctx.credentials = credentials;
    Ok(ctx)
}
