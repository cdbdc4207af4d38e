//! Building a plugin session's context from what the store holds about an
//! integration: non-secret config, sealed secrets, the operator's grant, and
//! plugin state kept in the store.
//!
//! The grant is stored as JSON under the config key [`GRANT_KEY`]; it is the
//! operator's side of the two-sided grant and is never shown to the plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use proofpix_policy::OperatorGrant;
use proofpix_runtime::contract::PluginInfo;
use proofpix_runtime::{CredentialProvider, IntegrationContext, StateError, StateStore};
use proofpix_store::{Backend, IntegrationRecord, StoreError};

/// Config key holding the operator's grant, as JSON.
pub const GRANT_KEY: &str = "grant";

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
    /// The stored grant is not valid JSON of the grant's shape.
    #[error("integration {integration}: the grant is invalid: {reason}")]
    BadGrant {
        /// Integration.
        integration: String,
        /// Why.
        reason: String,
    },
    /// The store failed (or a secret would not unseal).
    #[error("integration {integration}: {source}")]
    Store {
        /// Integration.
        integration: String,
        /// The error.
        source: StoreError,
    },
}

/// Reads the grant out of an integration's config.
///
/// # Errors
/// A grant that does not parse.
pub fn grant_of(record: &IntegrationRecord) -> Result<OperatorGrant, ContextError> {
    match record.config.get(GRANT_KEY) {
        None => Ok(OperatorGrant::default()),
        Some(json) => serde_json::from_str(json).map_err(|e| ContextError::BadGrant {
            integration: record.id.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Stores a grant into an integration's config.
pub fn set_grant(record: &mut IntegrationRecord, grant: &OperatorGrant) {
    let json = serde_json::json!({
        "hosts": grant.hosts,
        "mounts": grant.mounts,
        "write": grant.write,
        "allow_loopback": grant.allow_loopback,
        "allow_private": grant.allow_private,
        "allow_link_local": grant.allow_link_local,
    });
    record
        .config
        .insert(GRANT_KEY.to_string(), json.to_string());
}

/// The session context for a stored integration: config without the grant,
/// every secret field the plugin declares (unsealed), the grant, state in the
/// store, and the given credentials.
///
/// # Errors
/// An invalid grant or a store/vault failure.
pub fn context_for(
    store: &Arc<dyn Backend>,
    record: &IntegrationRecord,
    info: &PluginInfo,
    credentials: Option<Arc<dyn CredentialProvider>>,
) -> Result<IntegrationContext, ContextError> {
    let grant = grant_of(record)?;
    let config: BTreeMap<String, String> = record
        .config
        .iter()
        // The host's own settings (grant, subscriptions, remediation, pixels) never reach the
        // plugin; this is the one place the config a plugin sees is filtered.
        .filter(|(k, _)| !crate::RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut ctx = IntegrationContext::new(&record.id)
        .with_grant(grant)
        .with_state(Arc::new(StoreState(store.clone())));
    ctx.config = config;
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
