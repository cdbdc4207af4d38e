//! Master key rotation, and finishing a rotation a crash interrupted.
//!
//! [`Store::rotate_master_key`] re-seals every secret and token, replaces the key check and
//! re-MACs the audit head in one write transaction: the store is entirely under the old key
//! or entirely under the new one.
//!
//! The key file is the other half, and the order matters. [`rotate_key_file`] writes the new
//! key to `master.key.next` (0600, synced) *before* committing, commits, then renames it over
//! `master.key`. A crash before the commit leaves a stale `.next` that [`open_in_dir`]
//! deletes (the store still matches `master.key`); a crash after the commit but before the
//! rename leaves a store that matches `.next`, and `open_in_dir` finishes the rename. At no
//! point is the only copy of the key that opens the store in memory alone.
//!
//! With `PROOFPIX_MASTER_KEY` there is no key file to manage: the caller must hand the new
//! key to the operator (and have it stored) before calling [`Store::rotate_master_key`].

use std::fs;
use std::path::Path;

use proofpix_vault::{
    Aad, KEY_FILE_NAME, KeySource, MasterKey, Sealed, read_key_file, resolve_master_key,
    write_key_file,
};
use redb::ReadableTable;

use crate::audit::{self, AuditEvent};
use crate::codec::{decode, encode};
use crate::records::TokenRow;
use crate::schema::{META, SECRETS, TOKENS, meta};
use crate::store::{open_tokens, seal_tokens, secret_aad_field};
use crate::{OpenError, STORE_FILE_NAME, Store, StoreError};

/// The file a rotation writes the new key to before committing.
pub const NEXT_KEY_FILE_NAME: &str = "master.key.next";

/// What a rotation re-sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Secrets re-sealed.
    pub secrets: u64,
    /// Token sets re-sealed.
    pub token_sets: u64,
}

impl Store {
    /// Re-seals everything under `new_key` in one transaction and switches this handle to it.
    /// Persisting `new_key` is the caller's job; see [`rotate_key_file`] for the key-file case.
    ///
    /// # Errors
    ///
    /// [`StoreError::Vault`] if any sealed value fails to open under the current key (nothing
    /// is changed then; run `proofpix store check`); [`StoreError::Database`].
    pub fn rotate_master_key(
        &mut self,
        new_key: &MasterKey,
        actor: &str,
    ) -> Result<RotateReport, StoreError> {
        let old = self.key.clone();
        let now = self.now();
        let report = self.write(|txn| {
            let mut report = RotateReport::default();
            let mut secrets = txn.open_table(SECRETS)?;
            let rows: Vec<(String, String, Vec<u8>)> = secrets
                .iter()?
                .map(|e| {
                    let (k, v) = e?;
                    let (i, f) = k.value();
                    Ok((i.to_owned(), f.to_owned(), v.value().to_vec()))
                })
                .collect::<Result<_, StoreError>>()?;
            for (integration, field, bytes) in rows {
                let aad_field = secret_aad_field(&field);
                let aad = Aad::new(&integration, &aad_field);
                let plain = proofpix_vault::open(&old, &aad, &Sealed::from_bytes(bytes))?;
                let sealed = proofpix_vault::seal(new_key, &aad, &plain)?;
                secrets.insert((integration.as_str(), field.as_str()), sealed.as_bytes())?;
                report.secrets += 1;
            }
            drop(secrets);
            let mut tokens = txn.open_table(TOKENS)?;
            let rows: Vec<(String, Vec<u8>)> = tokens
                .iter()?
                .map(|e| {
                    let (k, v) = e?;
                    Ok((k.value().to_owned(), v.value().to_vec()))
                })
                .collect::<Result<_, StoreError>>()?;
            for (integration, bytes) in rows {
                let row: TokenRow = decode("tokens", &bytes)?;
                let set = open_tokens(&old, &integration, row)?;
                let row = seal_tokens(new_key, &integration, &set)?;
                tokens.insert(integration.as_str(), encode(&row).as_slice())?;
                report.token_sets += 1;
            }
            drop(tokens);
            txn.open_table(META)?
                .insert(meta::KEY_CHECK, new_key.key_check().0.as_slice())?;
            audit::remac_head(txn, new_key)?;
            audit::append(
                txn,
                new_key,
                now,
                &AuditEvent::new(actor, "vault.rotate-key", "store").details(serde_json::json!({
                    "old_key_id": old.id(),
                    "new_key_id": new_key.id(),
                    "secrets": report.secrets,
                    "token_sets": report.token_sets,
                })),
            )?;
            Ok(report)
        })?;
        self.key = new_key.clone();
        Ok(report)
    }
}

/// Rotates to `new_key` and replaces `<data_dir>/master.key`, crash-safely (see the module
/// docs). Use when the key lives in the key file, not in `PROOFPIX_MASTER_KEY`.
///
/// # Errors
///
/// [`StoreError::Key`] if a key file cannot be written (the store is unchanged if this
/// happens before the commit); errors of [`Store::rotate_master_key`].
pub fn rotate_key_file(
    store: &mut Store,
    data_dir: &Path,
    new_key: &MasterKey,
    actor: &str,
) -> Result<RotateReport, StoreError> {
    let next = data_dir.join(NEXT_KEY_FILE_NAME);
    write_key_file(&next, new_key)?;
    let report = store.rotate_master_key(new_key, actor)?;
    let current = data_dir.join(KEY_FILE_NAME);
    fs::rename(&next, &current).map_err(|source| StoreError::Io {
        action: "move the new key into place at",
        path: current.clone(),
        source,
    })?;
    sync_dir(data_dir);
    Ok(report)
}

fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot sync the data directory");
    }
}

/// Opens the store in `dir` with the key from the environment or the key file (created only
/// when there is no store yet), finishing or cleaning up an interrupted key-file rotation.
///
/// # Errors
///
/// See [`OpenError`].
pub fn open_in_dir(dir: &Path) -> Result<(Store, KeySource), OpenError> {
    crate::data_dir::ensure_data_dir(dir)?;
    let store_exists = dir.join(STORE_FILE_NAME).exists();
    let (key, source) = resolve_master_key(dir, !store_exists)?;
    let next = dir.join(NEXT_KEY_FILE_NAME);
    match Store::open(dir, &key) {
        Ok(store) => {
            if matches!(source, KeySource::KeyFile(_)) && next.exists() {
                // A rotation stopped before its commit: the new key never sealed anything.
                tracing::info!("removing the key file of a key rotation that did not commit");
                let _ = fs::remove_file(&next);
            }
            Ok((store, source))
        }
        Err(OpenError::WrongKey) if matches!(source, KeySource::KeyFile(_)) && next.exists() => {
            let next_key = read_key_file(&next)?;
            let store = Store::open(dir, &next_key)?;
            let current = dir.join(KEY_FILE_NAME);
            fs::rename(&next, &current).map_err(|source| OpenError::DataDir {
                path: current.clone(),
                source,
            })?;
            sync_dir(dir);
            tracing::info!("finished a key rotation that stopped before replacing the key file");
            Ok((store, KeySource::KeyFile(current)))
        }
        Err(e) => Err(e),
    }
}
