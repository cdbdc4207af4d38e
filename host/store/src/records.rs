//! The record types the store keeps, as callers see them.
//!
//! None of these holds a secret in clear except [`TokenSet`], whose token fields are
//! [`Secret`]s (redacted when formatted) and are sealed before they reach the file.

use std::collections::BTreeMap;
use std::time::Duration;

use proofpix_vault::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::ts;

/// An installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The plugin id (for example `salesforce`).
    pub id: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the component, hex.
    pub content_hash: String,
    /// Capabilities the operator granted.
    pub capabilities: Vec<String>,
    /// When it was installed or last upgraded.
    #[serde(with = "ts")]
    pub installed_at: OffsetDateTime,
    /// Who signed it (`None`: installed unsigned with the development flag).
    pub signer: Option<String>,
    /// The signing key's id.
    pub key_id: Option<String>,
    /// The previous version, kept for rollback (`None` for a first install).
    pub previous_version: Option<String>,
    /// Why the host quarantined it, if it did.
    pub quarantined: Option<String>,
}

/// The v1/v2 layout of a plugin record, for the v2 → v3 migration.
#[derive(Serialize, Deserialize)]
pub(crate) struct PluginRecordV1 {
    pub id: String,
    pub version: String,
    pub content_hash: String,
    pub capabilities: Vec<String>,
    #[serde(with = "ts")]
    pub installed_at: OffsetDateTime,
}

/// The state an integration is in, as shown on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IntegrationStatus {
    /// Configured, never run.
    New,
    /// Last run succeeded.
    Healthy,
    /// Last run failed; see `last_error`.
    Failing,
    /// The credentials were rejected; an operator must re-authorise.
    NeedsReauth,
    /// Disabled by an operator.
    Paused,
}

/// An integration: one configured instance of a plugin (for example one Salesforce org).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationRecord {
    /// The integration id; immutable, because sealed secrets are bound to it.
    pub id: String,
    /// The plugin it runs.
    pub plugin_id: String,
    /// The plugin version it was configured with.
    pub plugin_version: String,
    /// Non-secret configuration (instance URL, site id, folder...). Secrets go through
    /// [`crate::Store::set_secret`] instead.
    pub config: BTreeMap<String, String>,
    /// The schedule expression, if it runs on a schedule.
    pub schedule: Option<String>,
    /// Whether scheduled runs are enabled.
    pub enabled: bool,
    /// The current status.
    pub status: IntegrationStatus,
    /// The last error, already free of secrets.
    pub last_error: Option<String>,
    /// Created.
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    /// Last changed.
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

impl IntegrationRecord {
    /// A new enabled integration with status [`IntegrationStatus::New`].
    pub fn new(
        id: impl Into<String>,
        plugin_id: impl Into<String>,
        plugin_version: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        IntegrationRecord {
            id: id.into(),
            plugin_id: plugin_id.into(),
            plugin_version: plugin_version.into(),
            config: BTreeMap::new(),
            schedule: None,
            enabled: true,
            status: IntegrationStatus::New,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// An OAuth2 token set for one integration. The tokens are sealed at rest; the rest is not
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires.
    pub expires_at: Option<OffsetDateTime>,
    /// The granted scope.
    pub scope: Option<String>,
    /// Non-secret context returned with the tokens (for example Salesforce `instance_url`).
    pub context: BTreeMap<String, String>,
}

/// The stored form of a [`TokenSet`].
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenRow {
    pub access: Vec<u8>,
    pub refresh: Option<Vec<u8>>,
    #[serde(with = "ts::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub scope: Option<String>,
    pub context: BTreeMap<String, String>,
}

/// Where a file is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FileStatus {
    /// Seen, not analysed yet.
    Pending,
    /// Analysed; write-back pending or not configured.
    Analysed,
    /// Analysed and the result written back.
    Written,
    /// The last attempt failed; it will be retried.
    Failed,
    /// Failed too often; waits for an operator.
    Parked,
    /// The platform no longer has it (deleted, trashed, moved out of scope): the plugin
    /// reported it removed. Its results stay for the audit trail; if it comes back it is
    /// processed again.
    Removed,
    /// Analysed, and the plugin deliberately wrote nothing back (contract 0.3's
    /// `write-result.skipped`: write-back turned off, nothing to mark); the reason is in
    /// `last_error` as `write-back skipped: ...`. Done for this version, never counted as
    /// written. Appended last: the stored encoding is the variant's position.
    Skipped,
}

/// What the store knows about one remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The integration.
    pub integration: String,
    /// The remote id (ContentVersion id, drive item id...).
    pub remote_id: String,
    /// The remote version or etag last seen.
    pub version: String,
    /// The file name (personal data: never log it).
    pub name: String,
    /// SHA-256 of the content, hex, once downloaded.
    pub content_hash: Option<String>,
    /// The result of the last analysis.
    pub last_result: Option<u64>,
    /// Pipeline status.
    pub status: FileStatus,
    /// Attempts on this version.
    pub attempts: u32,
    /// The last error, free of secrets.
    pub last_error: Option<String>,
    /// Last changed.
    pub updated_at: OffsetDateTime,
    /// The link a person opens the file with, as the plugin listed it (`web-url`). Untrusted:
    /// any scheme can arrive here; whoever renders it checks it (the API serves only http and
    /// https links).
    pub web_url: Option<String>,
}

impl FileRecord {
    /// Whether a listing should leave this version alone: processed (`Written` or `Skipped`
    /// always; `Analysed` when `writeback_needed` is false), or `Parked`, waiting for an
    /// operator with its error (its parked queue item, analysis or write-back, is what a
    /// requeue runs again; analysing it anew would record it as fine and hide why it stopped).
    pub fn is_done_for(&self, version: &str, writeback_needed: bool) -> bool {
        self.version == version
            && match self.status {
                FileStatus::Written | FileStatus::Skipped | FileStatus::Parked => true,
                FileStatus::Analysed => !writeback_needed,
                _ => false,
            }
    }
}

/// The stored form of a [`FileRecord`]: the key fields are not repeated in the value.
#[derive(Serialize, Deserialize)]
pub(crate) struct FileRow {
    pub version: String,
    pub name: String,
    pub content_hash: Option<String>,
    pub last_result: Option<u64>,
    pub status: FileStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
    /// Appended last in schema 5 (postcard is positional; schema 4 rows are re-encoded).
    pub web_url: Option<String>,
}

/// A file row as schema 4 stored it (before `web_url`), for the migration.
#[derive(Deserialize)]
pub(crate) struct FileRowV4 {
    pub version: String,
    pub name: String,
    pub content_hash: Option<String>,
    pub last_result: Option<u64>,
    pub status: FileStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

impl FileRow {
    pub(crate) fn into_record(self, integration: &str, remote_id: &str) -> FileRecord {
        FileRecord {
            integration: integration.to_owned(),
            remote_id: remote_id.to_owned(),
            version: self.version,
            name: self.name,
            content_hash: self.content_hash,
            last_result: self.last_result,
            status: self.status,
            attempts: self.attempts,
            last_error: self.last_error,
            updated_at: self.updated_at,
            web_url: self.web_url,
        }
    }

    pub(crate) fn from_record(r: &FileRecord) -> Self {
        FileRow {
            version: r.version.clone(),
            name: r.name.clone(),
            content_hash: r.content_hash.clone(),
            last_result: r.last_result,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            updated_at: r.updated_at,
            web_url: r.web_url.clone(),
        }
    }
}

/// A new analysis result, before the store assigns its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResult {
    /// The integration.
    pub integration: String,
    /// The remote file.
    pub remote_id: String,
    /// The file version analysed.
    pub file_version: String,
    /// The highest risk level found (`none`, `low`, `medium`, `high`).
    pub risk: String,
    /// The risk score.
    pub score: u32,
    /// The JSON report, as text.
    pub report_json: String,
}

/// An analysis result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisResult {
    /// The id.
    pub id: u64,
    /// The integration.
    pub integration: String,
    /// The remote file.
    pub remote_id: String,
    /// The file version analysed.
    pub file_version: String,
    /// The highest risk level found.
    pub risk: String,
    /// The risk score.
    pub score: u32,
    /// The JSON report, as text.
    pub report_json: String,
    /// When it was stored.
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

/// One failed file of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchFailure {
    /// The remote file.
    pub remote_id: String,
    /// The error, free of secrets.
    pub error: String,
}

/// A batch (one run of an integration): the seed's `BatchResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// The id (assigned by [`crate::Store::start_batch`]).
    pub id: u64,
    /// The integration.
    pub integration: String,
    /// Started.
    #[serde(with = "ts")]
    pub started_at: OffsetDateTime,
    /// Finished, once it has.
    #[serde(with = "ts::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Wall-clock duration, once finished.
    pub duration: Option<Duration>,
    /// Files seen.
    pub total: u64,
    /// Files analysed successfully.
    pub ok: u64,
    /// Files that failed.
    pub errors: u64,
    /// Files that needed a retry.
    pub retried: u64,
    /// Analysed files by risk level.
    pub by_risk: BTreeMap<String, u64>,
    /// The per-file results.
    pub result_ids: Vec<u64>,
    /// The per-file failures.
    pub failures: Vec<BatchFailure>,
}

impl BatchRecord {
    /// A batch of `integration` that started at `started_at` and has counted nothing yet.
    pub fn started(id: u64, integration: &str, started_at: OffsetDateTime) -> Self {
        BatchRecord {
            id,
            integration: integration.to_owned(),
            started_at,
            finished_at: None,
            duration: None,
            total: 0,
            ok: 0,
            errors: 0,
            retried: 0,
            by_risk: BTreeMap::new(),
            result_ids: Vec::new(),
            failures: Vec::new(),
        }
    }
}
