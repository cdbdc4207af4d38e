//! Creating an API token under a new name only, and rotating a token's secret.
//!
//! [`Store::put_api_token`] replaces a token of the same name; the API must not (a viewer's
//! name re-posted as admin would silently change who holds what). These two operations keep
//! names unique and make a rotation its own audited change.

use redb::ReadableTable;

use crate::codec::{decode, encode};
use crate::schema::API_TOKENS;
use crate::{ApiTokenRecord, AuditEvent, Store, StoreError};

impl Store {
    /// Stores a new token record under the token's SHA-256 (hex), unless a token with the
    /// same name exists: then nothing changes and this returns `false`. Audited as
    /// `api-token.create` in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn create_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(API_TOKENS)?;
            for e in t.iter()? {
                let r: ApiTokenRecord = decode("api_tokens", e?.1.value())?;
                if r.name == record.name {
                    return Ok(false);
                }
            }
            t.insert(token_sha256, encode(record).as_slice())?;
            drop(t);
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "api-token.create", &record.name)
                    .details(serde_json::json!({"role": record.role})),
            )?;
            Ok(true)
        })
    }

    /// Replaces the secret of the token named `name` by the token hashing to
    /// `new_token_sha256`: same name and role, the old token stops working in the same
    /// transaction. Audited as `api-token.rotate`. Returns the updated record, or `None` when
    /// no token has that name.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn rotate_api_token(
        &self,
        name: &str,
        new_token_sha256: &str,
        actor: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let mut t = txn.open_table(API_TOKENS)?;
            let mut found: Option<(String, ApiTokenRecord)> = None;
            for e in t.iter()? {
                let (k, v) = e?;
                let r: ApiTokenRecord = decode("api_tokens", v.value())?;
                if r.name == name {
                    found = Some((k.value().to_owned(), r));
                    break;
                }
            }
            let Some((old_key, mut record)) = found else {
                return Ok(None);
            };
            t.remove(old_key.as_str())?;
            record.created_at = now;
            t.insert(new_token_sha256, encode(&record).as_slice())?;
            drop(t);
            // The old secret's dashboard sessions end with it.
            let sessions = crate::sessions::remove_sessions_of_in(txn, &[old_key])?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "api-token.rotate", name)
                    .details(serde_json::json!({"role": record.role, "sessions_ended": sessions})),
            )?;
            Ok(Some(record))
        })
    }
}
