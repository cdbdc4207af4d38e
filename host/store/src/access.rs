//! The daemon's API tokens and settings (schema v2).
//!
//! API tokens are stored by the SHA-256 of the token: a copy of the store
//! (a backup, a support bundle) does not let anyone call the API. Each change
//! is audited in the same transaction.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{decode, encode, ts};
use crate::schema::{API_TOKENS, SETTINGS};
use crate::{AuditEvent, Store, StoreError};

/// An API token as the store keeps it (the token itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// A name for people (`bootstrap-admin`, `ci-viewer`).
    pub name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Stores a token record under the token's SHA-256 (hex). Replaces one
    /// with the same name.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn put_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(API_TOKENS)?;
            let stale: Vec<String> = t
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| {
                    decode::<ApiTokenRecord>("api_tokens", v.value())
                        .is_ok_and(|r| r.name == record.name)
                })
                .map(|(k, _)| k.value().to_owned())
                .collect();
            for k in &stale {
                t.remove(k.as_str())?;
            }
            t.insert(token_sha256, encode(record).as_slice())?;
            drop(t);
            // A replaced token's dashboard sessions end with it.
            let stale: Vec<String> = stale.into_iter().filter(|k| k != token_sha256).collect();
            crate::sessions::remove_sessions_of_in(txn, &stale)?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "api-token.create", &record.name)
                    .details(serde_json::json!({"role": record.role})),
            )?;
            Ok(())
        })
    }

    /// The record of a token by its SHA-256 (hex).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn api_token(&self, token_sha256: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(API_TOKENS)?;
            let v = t.get(token_sha256)?;
            v.map(|v| decode("api_tokens", v.value())).transpose()
        })
    }

    /// Every token record.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(API_TOKENS)?;
            let mut out = Vec::new();
            for e in t.iter()? {
                out.push(decode("api_tokens", e?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Removes the token with this name, and every dashboard session opened
    /// with it, in one transaction. Returns whether one existed.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn delete_api_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(API_TOKENS)?;
            let keys: Vec<String> = t
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| {
                    decode::<ApiTokenRecord>("api_tokens", v.value()).is_ok_and(|r| r.name == name)
                })
                .map(|(k, _)| k.value().to_owned())
                .collect();
            for k in &keys {
                t.remove(k.as_str())?;
            }
            drop(t);
            // Revoking a token signs out every dashboard session opened with it.
            let sessions = crate::sessions::remove_sessions_of_in(txn, &keys)?;
            if !keys.is_empty() {
                self.audit_in(
                    txn,
                    &AuditEvent::new(actor, "api-token.delete", name)
                        .details(serde_json::json!({ "sessions_ended": sessions })),
                )?;
            }
            Ok(!keys.is_empty())
        })
    }

    /// A setting's JSON text.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(SETTINGS)?
                .get(name)?
                .map(|v| v.value().to_owned()))
        })
    }

    /// Stores a setting's JSON text, audited with the new value (settings
    /// hold no secrets).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn put_setting(&self, name: &str, json: &str, actor: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(SETTINGS)?.insert(name, json)?;
            let value: serde_json::Value =
                serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "settings.update", name).details(value),
            )?;
            Ok(())
        })
    }
}
