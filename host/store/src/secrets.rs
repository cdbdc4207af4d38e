//! Secrets and OAuth tokens of an integration, sealed by the vault under the master key and bound to the integration and field.

use proofpix_vault::{Aad, Sealed, Secret};

use crate::audit::{self, AuditEvent};
use crate::codec::{decode, encode};
use crate::records::TokenRow;
use crate::schema::{self, *};
use crate::store::{Store, open_tokens, require_integration, seal_tokens, secret_aad_field};
use crate::{StoreError, TokenSet};

impl Store {
    /// Seals and stores a secret field of an integration (client secret, password, private
    /// key...). The audit entry names the field, never the value.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`], [`StoreError::Database`].
    pub fn set_secret(
        &self,
        integration: &str,
        field: &str,
        value: &Secret,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            require_integration(txn, integration)?;
            let aad_field = secret_aad_field(field);
            let sealed =
                proofpix_vault::seal(&self.key, &Aad::new(integration, &aad_field), value)?;
            txn.open_table(SECRETS)?
                .insert((integration, field), sealed.as_bytes())?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "secret.set", format!("{integration}/{field}")),
            )?;
            Ok(())
        })
    }

    /// Opens a secret field, if set.
    ///
    /// # Errors
    ///
    /// [`StoreError::Vault`] if it does not open (altered, or moved from another record).
    pub fn secret(&self, integration: &str, field: &str) -> Result<Option<Secret>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(SECRETS)?
                .get((integration, field))?
                .map(|v| Sealed::from_bytes(v.value().to_vec())))
        })?;
        let aad_field = secret_aad_field(field);
        Ok(sealed
            .map(|s| proofpix_vault::open(&self.key, &Aad::new(integration, &aad_field), &s))
            .transpose()?)
    }

    /// The names of an integration's secret fields (never their values).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn secret_fields(&self, integration: &str) -> Result<Vec<String>, StoreError> {
        let end = schema::prefix_end(integration);
        self.read(|txn| {
            let t = txn.open_table(SECRETS)?;
            t.range((integration, "")..(end.as_str(), ""))?
                .map(|e| Ok(e?.0.value().1.to_owned()))
                .collect()
        })
    }

    /// Removes a secret field. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn delete_secret(
        &self,
        integration: &str,
        field: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn
                .open_table(SECRETS)?
                .remove((integration, field))?
                .is_some();
            if existed {
                self.audit_in(
                    txn,
                    &AuditEvent::new(actor, "secret.delete", format!("{integration}/{field}")),
                )?;
            }
            Ok(existed)
        })
    }

    /// Seals and stores an integration's token set, replacing the previous one.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchIntegration`], [`StoreError::Vault`], [`StoreError::Database`].
    pub fn set_tokens(
        &self,
        integration: &str,
        tokens: &TokenSet,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            require_integration(txn, integration)?;
            let row = seal_tokens(&self.key, integration, tokens)?;
            txn.open_table(TOKENS)?
                .insert(integration, encode(&row).as_slice())?;
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "tokens.set", integration).details(serde_json::json!({
                    "has_refresh_token": tokens.refresh_token.is_some(),
                    "expires_at": tokens.expires_at.and_then(|t| audit::rfc3339(t).ok()),
                })),
            )?;
            Ok(())
        })
    }

    /// Opens an integration's token set, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Vault`] if a token does not open; [`StoreError::Corrupt`].
    pub fn tokens(&self, integration: &str) -> Result<Option<TokenSet>, StoreError> {
        let row: Option<TokenRow> = self.read(|txn| {
            txn.open_table(TOKENS)?
                .get(integration)?
                .map(|v| decode("tokens", v.value()))
                .transpose()
        })?;
        row.map(|row| open_tokens(&self.key, integration, row))
            .transpose()
    }

    /// Removes an integration's token set. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn.open_table(TOKENS)?.remove(integration)?.is_some();
            if existed {
                self.audit_in(txn, &AuditEvent::new(actor, "tokens.delete", integration))?;
            }
            Ok(existed)
        })
    }
}
