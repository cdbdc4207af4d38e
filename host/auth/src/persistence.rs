//! Where tokens live between restarts.
//!
//! The host owns a sealed store; this crate only asks it to load and save a [`TokenSet`] per
//! integration through [`TokenPersistence`]. Saving happens **before** a new access token is handed
//! to anyone: Box (and Slack with rotation) burn a refresh token when it is used, so a new refresh
//! token that was used but not persisted is an integration locked out until a person re-authorizes.
//! [`MemoryPersistence`] is the in-process implementation for tests and for `proofpix` commands that
//! run one flow and exit.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::token::TokenSet;

/// A boxed future returned by [`TokenPersistence`] methods.
pub type PersistFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, PersistenceError>> + Send + 'a>>;

/// Why tokens could not be loaded or saved. The message must not contain token values.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PersistenceError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl PersistenceError {
    /// An error with a message (no secrets in it).
    pub fn new(message: impl Into<String>) -> Self {
        PersistenceError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PersistenceError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Loads and saves an integration's tokens. Implemented by the host over its sealed store.
pub trait TokenPersistence: Send + Sync + Debug {
    /// The stored tokens of `integration`, if any.
    fn load<'a>(&'a self, integration: &'a str) -> PersistFuture<'a, Option<TokenSet>>;
    /// Replaces the stored tokens of `integration`. Must be durable when it returns.
    fn save<'a>(&'a self, integration: &'a str, tokens: &'a TokenSet) -> PersistFuture<'a, ()>;
}

/// Tokens in a `HashMap`, lost when the process exits.
#[derive(Clone, Debug, Default)]
pub struct MemoryPersistence {
    tokens: Arc<Mutex<HashMap<String, TokenSet>>>,
    saves: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl MemoryPersistence {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is stored for `integration`.
    pub fn get(&self, integration: &str) -> Option<TokenSet> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(integration)
            .cloned()
    }

    /// Stores `tokens` directly (e.g. to seed a test).
    pub fn put(&self, integration: &str, tokens: TokenSet) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(integration.to_owned(), tokens);
    }

    /// How many successful saves happened.
    pub fn save_count(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// Makes every later save fail (to test what happens when the store is unavailable).
    pub fn fail_saves(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl TokenPersistence for MemoryPersistence {
    fn load<'a>(&'a self, integration: &'a str) -> PersistFuture<'a, Option<TokenSet>> {
        Box::pin(async move { Ok(self.get(integration)) })
    }

    fn save<'a>(&'a self, integration: &'a str, tokens: &'a TokenSet) -> PersistFuture<'a, ()> {
        Box::pin(async move {
            if self.failing.load(Ordering::SeqCst) {
                return Err(PersistenceError::new(
                    "the in-memory store was told to fail",
                ));
            }
            self.put(integration, tokens.clone());
            self.saves.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}
