//! The writes the daemon's API and the CLI ask for besides syncs: enabling an
//! integration, settings, API tokens, sign-in sessions, a parked file's retry,
//! an integration's history, audit entries.
//!
//! The service is the one writer of the store: `server` and `cli` call these
//! and never write the store themselves (`.ci/owners` checks it). Each is one
//! store transaction on a blocking thread.

use proofpix_store::{
    ApiTokenRecord, AuditEvent, IntegrationStatus, PurgedHistory, SessionRecord, WorkQueue,
};

use crate::{Host, ServiceError};

impl Host {
    /// Turns scheduled runs of `id` on (its status back to healthy) or off (paused); audited.
    ///
    /// # Errors
    /// An unknown integration; store failures.
    pub async fn set_enabled(
        &self,
        id: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let mut record = self.integration(id)?;
        record.enabled = enabled;
        record.updated_at = self.store.now();
        let actor = actor.to_string();
        self.blocking(move |s| {
            s.put_integration(&record, &actor)?;
            let status = if enabled {
                IntegrationStatus::Healthy
            } else {
                IntegrationStatus::Paused
            };
            s.set_integration_status(&record.id, status, None)
        })
        .await
    }

    /// Removes the analysis results and batches of a deleted integration, so a later one with
    /// the same id starts clean; audited with the counts.
    ///
    /// # Errors
    /// Store failures.
    pub async fn purge_history(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<PurgedHistory, ServiceError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.blocking(move |s| s.purge_integration_history(&id, &actor))
            .await
    }

    /// Appends an entry to the audit log; returns its sequence number.
    ///
    /// # Errors
    /// Store failures.
    pub async fn audit(&self, event: AuditEvent) -> Result<u64, ServiceError> {
        self.blocking(move |s| s.audit(&event)).await
    }

    /// Replaces a named settings document (JSON); audited.
    ///
    /// # Errors
    /// Store failures.
    pub async fn put_setting(
        &self,
        name: &str,
        json: String,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.blocking(move |s| s.put_setting(&name, &json, &actor))
            .await
    }

    /// Creates an API token under a new name (the store keeps the SHA-256 of its secret);
    /// `false` when the name is taken. Audited.
    ///
    /// # Errors
    /// Store failures.
    pub async fn create_api_token(
        &self,
        token_sha256: &str,
        record: ApiTokenRecord,
        actor: &str,
    ) -> Result<bool, ServiceError> {
        let (hash, actor) = (token_sha256.to_string(), actor.to_string());
        self.blocking(move |s| s.create_api_token(&hash, &record, &actor))
            .await
    }

    /// Adds or replaces an API token (the daemon's first admin token, the demo's); audited.
    ///
    /// # Errors
    /// Store failures.
    pub fn put_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<(), ServiceError> {
        Ok(self.store.put_api_token(token_sha256, record, actor)?)
    }

    /// Gives the token `name` a new secret (ending the old secret's sessions); `None` when
    /// there is no such token. Audited.
    ///
    /// # Errors
    /// Store failures.
    pub async fn rotate_api_token(
        &self,
        name: &str,
        new_token_sha256: &str,
        actor: &str,
    ) -> Result<Option<ApiTokenRecord>, ServiceError> {
        let (name, hash, actor) = (
            name.to_string(),
            new_token_sha256.to_string(),
            actor.to_string(),
        );
        self.blocking(move |s| s.rotate_api_token(&name, &hash, &actor))
            .await
    }

    /// Revokes the token `name`; `false` when there is none. Audited.
    ///
    /// # Errors
    /// Store failures.
    pub async fn delete_api_token(&self, name: &str, actor: &str) -> Result<bool, ServiceError> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.blocking(move |s| s.delete_api_token(&name, &actor))
            .await
    }

    /// Starts a sign-in session (dropping expired ones first); `false` when the session's
    /// token no longer exists.
    ///
    /// # Errors
    /// Store failures.
    pub async fn start_session(
        &self,
        session_sha256: &str,
        record: SessionRecord,
    ) -> Result<bool, ServiceError> {
        let hash = session_sha256.to_string();
        self.blocking(move |s| {
            s.expire_sessions()?;
            s.put_session(&hash, &record)
        })
        .await
    }

    /// Ends a sign-in session; `false` when there was none.
    ///
    /// # Errors
    /// Store failures.
    pub async fn end_session(&self, session_sha256: &str) -> Result<bool, ServiceError> {
        let hash = session_sha256.to_string();
        self.blocking(move |s| s.delete_session(&hash)).await
    }

    /// Puts a parked file of `integration` back in its queue; `false` when `item` is not a
    /// parked file of it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn requeue(&self, integration: &str, item: u64) -> Result<bool, ServiceError> {
        let integration = integration.to_string();
        self.blocking(move |s| s.requeue(&integration, item)).await
    }

    /// Deletes the OAuth tokens kept for an integration (it must be authorised again);
    /// `false` when it had none. Audited.
    ///
    /// # Errors
    /// Store failures.
    pub fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, ServiceError> {
        Ok(self.store.delete_tokens(integration, actor)?)
    }
}
