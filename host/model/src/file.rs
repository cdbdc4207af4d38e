//! A platform's file and the host's verdict on one version of it.

use serde::{Deserialize, Serialize};

use crate::RiskLevel;

/// A file (or attachment, or item) held by the platform, as its connector describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFile {
    /// Stable identifier, unique within the integration.
    pub id: String,
    /// Display name, usually the file name.
    pub name: String,
    /// The platform's content type, when it reports one.
    pub mime_type: Option<String>,
    /// Size in bytes, when the platform reports it.
    pub size: Option<u64>,
    /// Last modification time, RFC 3339.
    pub modified: Option<String>,
    /// Changes whenever the content changes (etag, version id, content hash); the host
    /// analyses a given (id, version) at most once.
    pub version: String,
    /// What the file belongs to: a case id, a drive id, a channel.
    pub container: Option<String>,
    /// A link a person can open.
    pub web_url: Option<String>,
    /// Path or breadcrumb inside the container, for display.
    pub path: Option<String>,
    /// Connector-private values the host stores and hands back unchanged.
    pub properties: Vec<(String, String)>,
}

/// One finding, as written back or notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Privacy category (`gps`, `serial`, `person`, ...).
    pub category: String,
    /// Stable machine code, e.g. `gps.coordinates`.
    pub code: String,
    /// How risky this finding is on its own. (Read back with [`crate::deserialize_stored`]:
    /// results queued by older builds spell it capitalised.)
    #[serde(deserialize_with = "crate::deserialize_stored")]
    pub severity: RiskLevel,
    /// Where it came from: family and tag, e.g. `exif:GPS/0x0002`.
    pub source: String,
    /// Reviewer-readable value (names and e-mails masked unless the operator asked).
    pub value: String,
}

/// The host's verdict on one file version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// The file.
    pub file: RemoteFile,
    /// Detected container format (`jpeg`, `png`, ...), or `unknown`.
    pub format: String,
    /// The file's overall risk (read back as [`Finding::severity`] is).
    #[serde(deserialize_with = "crate::deserialize_stored")]
    pub risk: RiskLevel,
    /// 0 to 100.
    pub score: u8,
    /// What was found.
    pub findings: Vec<Finding>,
    /// One line a person can read.
    pub summary: String,
    /// Set when the file could not be (fully) read.
    pub error: Option<String>,
    /// RFC 3339 time of the analysis.
    pub analysed_at: String,
    /// Identifies the risk policy the score was computed with.
    pub policy_version: String,
}
