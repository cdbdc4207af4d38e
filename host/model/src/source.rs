//! What a source connector answers: its account check, a page of files, write-back outcomes.

use serde::{Deserialize, Serialize};

use crate::{PluginError, RemoteFile};

/// The answer to a connection check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The account the credentials belong to, when the platform says.
    pub account: Option<String>,
    /// Anything else worth showing the operator.
    pub details: Vec<String>,
}

/// One page of a discovery: files new or changed, ids removed, and where to go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Files new or changed.
    pub files: Vec<RemoteFile>,
    /// Ids of files gone.
    pub removed: Vec<String>,
    /// Where the next page (or the next incremental run) starts.
    pub cursor: Option<String>,
    /// Whether another page follows now.
    pub more: bool,
}

/// What a write-back did with one result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResult {
    /// Written to the platform.
    Written,
    /// Deliberately not written, and why (the item was gone, nothing to mark).
    Skipped(String),
}

/// The outcome of writing back one file's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOutcome {
    /// The file it is about.
    pub file_id: String,
    /// Written, skipped, or the plugin's error.
    pub outcome: Result<WriteResult, PluginError>,
}
