//! Which store a daemon or a CLI command works on: the embedded redb file in the data
//! directory by default, or PostgreSQL when `[store] url` (or `PROOFPIX_DATABASE_URL`) names
//! one, shared by every daemon of a cluster.

use std::sync::Arc;

use anyhow::Context;
use proofpix_server::config::StoreConfig;
use proofpix_store::{Backend, Store};

/// An open store: the backend every caller uses, and the embedded store itself when that is
/// the backend (what works on the redb file needs it).
pub struct Opened {
    /// Everything the host needs of its store.
    pub backend: Arc<dyn Backend>,
    /// The embedded store; `None` on PostgreSQL.
    pub local: Option<Arc<Store>>,
    /// Where it is, for messages: the data directory's file, or the URL with its password
    /// masked.
    pub shown: String,
}

/// Opens the store `config` names.
///
/// On PostgreSQL the master key comes from the same source as the embedded store's
/// (`PROOFPIX_MASTER_KEY`, or the key file in the data directory, created on a first run):
/// every node of a cluster needs the same key, and the database refuses a node whose key
/// differs from the one its secrets were sealed with.
///
/// # Errors
/// The store cannot be opened: the message names the file or the URL (password masked)
/// and what to fix.
pub fn open(config: &StoreConfig) -> anyhow::Result<Opened> {
    let Some(url) = config.url.as_deref() else {
        let (store, _) = Store::open_default()?;
        let shown = store
            .path()
            .map_or_else(|| "(in memory)".into(), |p| p.display().to_string());
        let store = Arc::new(store);
        return Ok(Opened {
            backend: store.clone(),
            local: Some(store),
            shown,
        });
    };
    let data_dir = proofpix_store::data_dir()?;
    let (key, _) = proofpix_vault::resolve_master_key(&data_dir, true)
        .context("reading the master key for the PostgreSQL store")?;
    let mut options = proofpix_store_pg::PgOptions::default();
    if let Some(schema) = &config.schema {
        options.schema = Some(schema.clone());
    }
    if let Some(n) = config.max_connections {
        options.max_connections = n;
    }
    let store = proofpix_store_pg::PgStore::open(url, &key, options)?;
    let shown = proofpix_store_pg::masked_url(url);
    Ok(Opened {
        backend: Arc::new(store),
        local: None,
        shown,
    })
}
