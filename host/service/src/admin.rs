//! The writes the daemon's API and the CLI ask for besides syncs: enabling an
//! integration, settings, API tokens, sign-in sessions, a parked file's retry,
//! an integration's history, audit entries, and the record of a run that failed
//! as a whole.
//!
//! The service is the one writer of the store: `server` and `cli` call these
//! and never write the store themselves (`.ci/owners` checks it). Each is one
//! store transaction on a blocking thread.

use proofpix_store::{
    ApiTokenRecord, AuditEvent, BatchFailure, BatchRecord, IntegrationStatus, PurgedHistory,
    SessionRecord,
};

use crate::{Host, ServiceError};

/// How many batches recorded while a run went on are searched for the run's own (each is one
/// run of some integration; far more than run at once in practice).
const MAX_BATCHES_DURING_A_RUN: u64 = 10_000;

impl Host {
    /// The file id that marks a run's own failure among its batch's failures. A run that
    /// failed as a whole (its credentials refused, its folder gone, listing that kept failing)
    /// is recorded on its batch as a failure with this id, beside the per-file ones: the batch
    /// record has no field of its own for it, and no platform names a file with an empty id.
    pub const RUN_FAILURE: &'static str = "";

    /// Why a finished run failed as a whole, if it did (see [`Host::RUN_FAILURE`]).
    pub fn run_error(batch: &BatchRecord) -> Option<&str> {
        batch
            .failures
            .iter()
            .find(|f| f.remote_id == Self::RUN_FAILURE)
            .map(|f| f.error.as_str())
    }

    /// The id of the newest batch of any integration (0 when there is none): where a run's
    /// own batches start.
    pub(crate) fn newest_batch_id(&self) -> u64 {
        self.store
            .recent_batches(None, 1)
            .ok()
            .and_then(|b| b.first().map(|b| b.id))
            .unwrap_or(0)
    }

    /// Records that a run of `id` failed as a whole with `error`, so its batch and status say
    /// so: on the batch the run recorded (the newest of `id` with an id in `(since, until]`,
    /// the newest batch ids of the store when the run started and when it ended), or, when the
    /// run failed before recording one (its settings or credentials were refused while it was
    /// being set up), on a finished batch of its own with no files. In that second case nothing
    /// else recorded the failure, so the integration's status becomes failing with the error
    /// (a paused one stays paused, with the error kept). Returns the batch.
    ///
    /// # Errors
    /// An unknown integration; store failures.
    pub async fn record_failed_run(
        &self,
        id: &str,
        since: u64,
        until: u64,
        error: &str,
    ) -> Result<u64, ServiceError> {
        let record = self.integration(id)?;
        let (id, error) = (id.to_string(), error.to_string());
        self.blocking(move |s| {
            let first = since
                .saturating_add(1)
                .max(until.saturating_sub(MAX_BATCHES_DURING_A_RUN));
            let mut found = None;
            for n in (first..=until).rev() {
                if let Some(b) = s.batch(n)?
                    && b.integration == id
                {
                    found = Some(b);
                    break;
                }
            }
            let failure = BatchFailure {
                remote_id: Self::RUN_FAILURE.to_string(),
                error: error.clone(),
            };
            match found {
                Some(mut b) => {
                    if Self::run_error(&b).is_none() {
                        b.failures.push(failure);
                        s.put_batch(&b)?;
                    }
                    Ok(b.id)
                }
                None => {
                    let mut b = s.start_batch(&id)?;
                    let now = s.now();
                    b.finished_at = Some(now);
                    b.duration = Some((now - b.started_at).unsigned_abs());
                    b.failures.push(failure);
                    s.put_batch(&b)?;
                    let status = if record.enabled {
                        IntegrationStatus::Failing
                    } else {
                        IntegrationStatus::Paused
                    };
                    s.set_integration_status(&id, status, Some(&error))?;
                    Ok(b.id)
                }
            }
        })
        .await
    }

    /// Turns scheduled runs of `id` on (its status back to healthy) or off (paused, keeping the
    /// last error so a paused failing integration still says why); audited.
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
            let last_error = if enabled {
                None
            } else {
                record.last_error.as_deref()
            };
            s.set_integration_status(&record.id, status, last_error)
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
