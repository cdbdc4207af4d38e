//! The record types the store keeps, as callers see them.
//!
//! None of these holds a secret in clear except [`TokenSet`], whose token fields are
//! [`Secret`]s (redacted when formatted) and are sealed before they reach the file.

use std::collections::BTreeMap;
use std::time::Duration;

use proofpix_model::RiskLevel;
use proofpix_policy::{OperatorGrant, RemediationPolicy, Subscriptions};
use proofpix_vault::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{json_text, ts};

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
    /// The plugin's non-secret configuration (instance URL, site id, folder...), exactly
    /// what the plugin sees: the host's own settings are the typed fields at the end. Secrets go
    /// through [`crate::Store::set_secret`] instead.
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
    // The host's own settings, appended in schema 6 (postcard is positional).
    /// The operator's side of the grant (hosts, mounts, write access); never shown to the
    /// plugin.
    #[serde(with = "json_text")]
    pub grant: OperatorGrant,
    /// A notifier's subscriptions, when set.
    #[serde(with = "json_text")]
    pub subscriptions: Option<Subscriptions>,
    /// The remediation policy, when set.
    #[serde(with = "json_text")]
    pub remediation: Option<RemediationPolicy>,
    /// Whether syncs run the pixel stage (faces, text, codes).
    pub pixels: bool,
}

/// An integration as schemas 1-5 stored it: the host's settings (grant, subscriptions,
/// remediation, pixels) were JSON strings under reserved keys of `config`. For the
/// migration to schema 6, which lifts them into typed fields.
#[derive(Deserialize)]
pub(crate) struct IntegrationRecordV5 {
    pub id: String,
    pub plugin_id: String,
    pub plugin_version: String,
    pub config: BTreeMap<String, String>,
    pub schedule: Option<String>,
    pub enabled: bool,
    pub status: IntegrationStatus,
    pub last_error: Option<String>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

impl IntegrationRecordV5 {
    /// The record with its settings lifted out of `config`. A stored setting that does not
    /// parse (they were checked when set, so only a hand-edited file has one) is dropped,
    /// which fails closed (no grant, no subscriptions, no remediation), and the integration
    /// is marked failing with a last error that names the setting and says to set it again.
    pub(crate) fn lift(mut self) -> IntegrationRecord {
        fn setting<T: serde::de::DeserializeOwned>(
            config: &mut BTreeMap<String, String>,
            key: &str,
            problems: &mut Vec<String>,
        ) -> Option<T> {
            let json = config.remove(key)?;
            serde_json::from_str(&json)
                .map_err(|e| problems.push(format!("{key} ({e})")))
                .ok()
        }
        let id = self.id.clone();
        let mut problems: Vec<String> = Vec::new();
        let grant: Option<OperatorGrant> = setting(&mut self.config, "grant", &mut problems);
        let subscriptions: Option<Subscriptions> =
            setting(&mut self.config, "subscriptions", &mut problems);
        let remediation: Option<RemediationPolicy> =
            setting(&mut self.config, "remediation", &mut problems);
        let pixels = self
            .config
            .remove("proofpix.pixels")
            .is_some_and(|v| v == "on");
        let (status, last_error) = if problems.is_empty() {
            (self.status, self.last_error)
        } else {
            (
                IntegrationStatus::Failing,
                Some(format!(
                    "integration {id}: the store's upgrade to schema 6 could not read its stored \
                     {}; that setting was dropped (failing closed): set it again",
                    problems.join(", ")
                )),
            )
        };
        IntegrationRecord {
            id: self.id,
            plugin_id: self.plugin_id,
            plugin_version: self.plugin_version,
            config: self.config,
            grant: grant.unwrap_or_default(),
            subscriptions: subscriptions.map(Subscriptions::with_aliases_mapped),
            remediation,
            pixels,
            schedule: self.schedule,
            enabled: self.enabled,
            status,
            last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
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
            grant: OperatorGrant::default(),
            subscriptions: None,
            remediation: None,
            pixels: false,
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
    /// The highest risk level found.
    pub risk: RiskLevel,
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
    /// The highest risk level found (stored as its name).
    pub risk: RiskLevel,
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
    /// The run's results, riskiest first: all of them up to the pipeline's bound
    /// (`MAX_BATCH_RESULTS`, 5,000), the riskiest beyond it; `ok` counts them all.
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
