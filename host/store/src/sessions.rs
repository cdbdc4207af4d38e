//! The dashboard's sign-in sessions (schema v4).
//!
//! A session id is a random value the daemon hands to the browser as an
//! HttpOnly cookie; the store keeps only its SHA-256, so a copy of the store
//! (a backup, a support bundle) cannot be replayed as a cookie. A session
//! names the API token it was opened with by that token's SHA-256, and the
//! token's role is looked up at every use: a session never outlives its
//! token. Revoking (or replacing) a token removes its sessions in the same
//! transaction, and a session past its absolute expiry is refused and
//! removed.
//!
//! Sign-in and sign-out are audited, with the token's name as the actor.

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{decode, encode, ts};
use crate::schema::{API_TOKENS, SESSIONS};
use crate::{ApiTokenRecord, AuditEvent, Store, StoreError};

/// A session as the store keeps it (the session id itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The SHA-256 (hex) of the API token the session was opened with.
    pub token_sha256: String,
    /// That token's name when the session was opened (for the audit log).
    pub token_name: String,
    /// When the session was opened.
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    /// When it stops being accepted, whatever happens.
    #[serde(with = "ts")]
    pub expires_at: OffsetDateTime,
}

/// Removes every session opened with one of `token_hashes`, inside `txn`.
/// Returns how many were removed.
pub(crate) fn remove_sessions_of_in(
    txn: &WriteTransaction,
    token_hashes: &[String],
) -> Result<usize, StoreError> {
    if token_hashes.is_empty() {
        return Ok(0);
    }
    let mut t = txn.open_table(SESSIONS)?;
    let doomed: Vec<String> = t
        .iter()?
        .filter_map(|e| e.ok())
        .filter(|(_, v)| {
            // A row that does not decode cannot be used either; drop it too.
            decode::<SessionRecord>("sessions", v.value())
                .map_or(true, |r| token_hashes.contains(&r.token_sha256))
        })
        .map(|(k, _)| k.value().to_owned())
        .collect();
    for k in &doomed {
        t.remove(k.as_str())?;
    }
    Ok(doomed.len())
}

impl Store {
    /// Opens a session stored under the SHA-256 (hex) of its id. Returns
    /// `false`, storing nothing, when the token it names no longer exists
    /// (revoked while signing in).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn put_session(
        &self,
        session_sha256: &str,
        record: &SessionRecord,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            if txn
                .open_table(API_TOKENS)?
                .get(record.token_sha256.as_str())?
                .is_none()
            {
                return Ok(false);
            }
            txn.open_table(SESSIONS)?
                .insert(session_sha256, encode(record).as_slice())?;
            self.audit_in(
                txn,
                &AuditEvent::new(
                    format!("token:{}", record.token_name),
                    "session.create",
                    &record.token_name,
                )
                .details(serde_json::json!({
                    "expires_at": crate::audit::rfc3339(record.expires_at).unwrap_or_default(),
                })),
            )?;
            Ok(true)
        })
    }

    /// The live session with this SHA-256 (hex) and the token record it
    /// stands for, as of the store's clock. `None` when there is no such
    /// session, it expired, or its token was revoked.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn session(
        &self,
        session_sha256: &str,
    ) -> Result<Option<(SessionRecord, ApiTokenRecord)>, StoreError> {
        let now = self.now();
        self.read(|txn| {
            let Some(v) = txn.open_table(SESSIONS)?.get(session_sha256)? else {
                return Ok(None);
            };
            let session: SessionRecord = decode("sessions", v.value())?;
            if session.expires_at <= now {
                return Ok(None);
            }
            let Some(t) = txn
                .open_table(API_TOKENS)?
                .get(session.token_sha256.as_str())?
            else {
                return Ok(None);
            };
            let token: ApiTokenRecord = decode("api_tokens", t.value())?;
            Ok(Some((session, token)))
        })
    }

    /// Ends a session (sign-out). Returns whether one existed.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn delete_session(&self, session_sha256: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let removed = txn.open_table(SESSIONS)?.remove(session_sha256)?.map(|v| {
                decode::<SessionRecord>("sessions", v.value())
                    .map(|r| r.token_name)
                    .unwrap_or_default()
            });
            if let Some(name) = &removed {
                self.audit_in(
                    txn,
                    &AuditEvent::new(format!("token:{name}"), "session.delete", name),
                )?;
            }
            Ok(removed.is_some())
        })
    }

    /// Removes sessions past their expiry as of the store's clock. Returns
    /// how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn expire_sessions(&self) -> Result<usize, StoreError> {
        let now = self.now();
        self.write(|txn| {
            let mut t = txn.open_table(SESSIONS)?;
            let doomed: Vec<String> = t
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| {
                    decode::<SessionRecord>("sessions", v.value())
                        .map_or(true, |r| r.expires_at <= now)
                })
                .map(|(k, _)| k.value().to_owned())
                .collect();
            for k in &doomed {
                t.remove(k.as_str())?;
            }
            Ok(doomed.len())
        })
    }

    /// How many sessions are stored (live or not yet purged).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn session_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(SESSIONS)?.len()?))
    }
}
