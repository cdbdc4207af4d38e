//! What the runtime needs from the rest of the host for one integration:
//! its non-secret config, the secrets it may use on the plugin's behalf, the
//! operator's grant, credentials and state storage.
//!
//! Secrets cross this boundary only as [`Secret`] values the runtime uses
//! itself (HMAC checks, header injection); nothing here hands one to a guest.
//! [`CredentialProvider`] and [`StateStore`] are traits so that the pipeline
//! can back them with the vault and the redb store, and tests with memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use proofpix_policy::OperatorGrant;
use proofpix_vault::Secret;

/// A boxed future, for the object-safe async traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A header the host injects: (name, value).
pub type HeaderPair = (String, Secret);

/// Supplies credentials for one integration. The host calls it for requests
/// to endpoints that take credentials, and after a plugin reports
/// `unauthorized`.
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// The header to inject, fetching or refreshing a token when needed.
    /// `None` when the scheme injects nothing.
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderPair>, String>>;
    /// The platform rejected the credentials (`rejected` is the header value
    /// the failing requests carried, when known): refresh once. Concurrent
    /// callers share one refresh, and a token another caller already
    /// replaced is not refreshed again.
    fn refresh(&self, rejected: Option<Secret>) -> BoxFuture<'_, Result<(), String>>;
    /// Non-secret values the plugin may read (`instance_url`).
    fn context(&self) -> BTreeMap<String, String>;
}

/// A static key or bearer token, injected as configured.
pub struct StaticCredentials {
    header: String,
    value: Secret,
}

impl StaticCredentials {
    /// `header: prefix + key`.
    pub fn new(header: &str, prefix: &str, key: &Secret) -> Self {
        StaticCredentials {
            header: header.to_ascii_lowercase(),
            value: Secret::new(format!("{prefix}{}", key.expose())),
        }
    }
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("header", &self.header)
            .field("value", &self.value)
            .finish()
    }
}

impl CredentialProvider for StaticCredentials {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderPair>, String>> {
        Box::pin(async move { Ok(Some((self.header.clone(), self.value.clone()))) })
    }
    fn refresh(&self, _rejected: Option<Secret>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async {
            Err(
                "the API key or token was rejected; check it in the integration's settings"
                    .to_string(),
            )
        })
    }
    fn context(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Why a state write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The write would take the integration's state over its cap.
    #[error("plugin state would grow to {would_be} bytes, over the cap of {cap} bytes")]
    OverCap {
        /// Size after the write.
        would_be: u64,
        /// The cap.
        cap: u64,
    },
    /// The backing store failed.
    #[error("state storage failed: {0}")]
    Storage(String),
}

/// Plugin-scoped key-value state, per integration.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The value under `key`.
    fn get(&self, integration: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Stores `value`, refusing when the integration's total (keys plus
    /// values) would exceed `cap` bytes.
    fn set(&self, integration: &str, key: &str, value: &[u8], cap: u64) -> Result<(), StateError>;
    /// Removes `key`.
    fn delete(&self, integration: &str, key: &str) -> Result<(), String>;
}

/// In-memory [`StateStore`], for one-shot runs and tests.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>,
}

impl StateStore for MemoryStateStore {
    fn get(&self, integration: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let map = self.inner.lock().map_err(|e| e.to_string())?;
        Ok(map.get(integration).and_then(|m| m.get(key)).cloned())
    }

    fn set(&self, integration: &str, key: &str, value: &[u8], cap: u64) -> Result<(), StateError> {
        let mut map = self
            .inner
            .lock()
            .map_err(|e| StateError::Storage(e.to_string()))?;
        let m = map.entry(integration.to_string()).or_default();
        let current: u64 = m
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        let would_be = current + (key.len() + value.len()) as u64;
        if would_be > cap {
            return Err(StateError::OverCap { would_be, cap });
        }
        m.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, integration: &str, key: &str) -> Result<(), String> {
        let mut map = self.inner.lock().map_err(|e| e.to_string())?;
        if let Some(m) = map.get_mut(integration) {
            m.remove(key);
        }
        Ok(())
    }
}

/// Everything about one integration that a plugin session needs.
#[derive(Clone)]
pub struct IntegrationContext {
    /// The integration's id (operator-chosen name).
    pub id: String,
    /// Non-secret config values. Keys the plugin declares secret are
    /// dropped before the guest can read them.
    pub config: BTreeMap<String, String>,
    /// Secret config values, used by the host only (HMAC checks).
    pub secrets: BTreeMap<String, Secret>,
    /// The operator's grant.
    pub grant: OperatorGrant,
    /// Credential injection, when the plugin's scheme needs it.
    pub credentials: Option<Arc<dyn CredentialProvider>>,
    /// Plugin state storage.
    pub state: Arc<dyn StateStore>,
}

impl IntegrationContext {
    /// A context with no secrets, no grant, no credentials and in-memory
    /// state.
    pub fn new(id: &str) -> Self {
        IntegrationContext {
            id: id.to_string(),
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            grant: OperatorGrant::default(),
            credentials: None,
            state: Arc::new(MemoryStateStore::default()),
        }
    }

    /// Sets a non-secret config value.
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets a secret value.
    pub fn with_secret(mut self, key: &str, value: &str) -> Self {
        self.secrets.insert(key.to_string(), Secret::new(value));
        self
    }

    /// Sets the grant.
    pub fn with_grant(mut self, grant: OperatorGrant) -> Self {
        self.grant = grant;
        self
    }

    /// Sets the credential provider.
    pub fn with_credentials(mut self, credentials: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets the state store.
    pub fn with_state(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = state;
        self
    }
}

impl fmt::Debug for IntegrationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationContext")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("grant", &self.grant)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}
