//! What a notifier is given: alerts on risky files, batch summaries, problems.

use serde::{Deserialize, Serialize};

use crate::{Finding, RemoteFile, RiskLevel};

/// One risky file, as an alert shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAlert {
    /// The integration the file is in.
    pub integration: String,
    /// The file.
    pub file: RemoteFile,
    /// Its risk.
    pub risk: RiskLevel,
    /// Its score, 0 to 100.
    pub score: u8,
    /// One line a person can read.
    pub summary: String,
    /// What was found.
    pub findings: Vec<Finding>,
}

/// Risky files gathered over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The alerts, possibly cut to what one message can hold.
    pub alerts: Vec<FileAlert>,
    /// Files at or above the subscription's level in the window (every one, shown or not).
    pub total: u32,
    /// How many per risk level.
    pub by_risk: Vec<(RiskLevel, u32)>,
    /// RFC 3339 start of the window.
    pub window_start: String,
    /// RFC 3339 end of the window.
    pub window_end: String,
}

/// A finished batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// The batch id.
    pub batch_id: String,
    /// The integration it ran for.
    pub integration: String,
    /// The platform's name.
    pub platform: String,
    /// RFC 3339 start.
    pub started_at: String,
    /// RFC 3339 end.
    pub finished_at: String,
    /// Files seen.
    pub files_total: u32,
    /// Files analysed.
    pub files_ok: u32,
    /// Files that failed.
    pub files_failed: u32,
    /// How many per risk level.
    pub by_risk: Vec<(RiskLevel, u32)>,
    /// A link to the batch on the dashboard, when the host has a public URL.
    pub dashboard_url: Option<String>,
}

/// A failed run or an unhealthy integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The integration.
    pub integration: String,
    /// What went wrong.
    pub message: String,
}

/// What a notifier is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notification {
    /// One or more high- or critical-risk files (several in a digest).
    HighRiskFiles(Digest),
    /// A batch finished.
    BatchCompleted(BatchSummary),
    /// A run failed.
    BatchFailed(Problem),
    /// An integration is unhealthy.
    IntegrationUnhealthy(Problem),
}
