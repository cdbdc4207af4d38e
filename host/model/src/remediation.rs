//! Actions on a risky file, and what they did.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{RemoteFile, RiskLevel};

/// An action on a risky file, as an operator's remediation policy enables it and a connector
/// declares and performs it. Named in JSON as the contract names it (`replace-with-sanitised`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationKind {
    /// Replace the file with the host's sanitised copy (metadata removed losslessly).
    ReplaceWithSanitised,
    /// Remove public links and external sharing.
    RestrictSharing,
    /// Apply a label or tag (the policy names it).
    ApplyLabel,
    /// Move the file to a quarantine location, leaving a tombstone.
    Quarantine,
    /// Tell the file's owner or uploader.
    NotifyOwner,
}

impl RemediationKind {
    /// Every kind, in the order the host performs them for one file: the content is fixed
    /// first, then access, labels, the move, and the owner is told last.
    pub const ALL: [RemediationKind; 5] = [
        RemediationKind::ReplaceWithSanitised,
        RemediationKind::RestrictSharing,
        RemediationKind::ApplyLabel,
        RemediationKind::Quarantine,
        RemediationKind::NotifyOwner,
    ];

    /// The contract's name, e.g. `replace-with-sanitised`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationKind::ReplaceWithSanitised => "replace-with-sanitised",
            RemediationKind::RestrictSharing => "restrict-sharing",
            RemediationKind::ApplyLabel => "apply-label",
            RemediationKind::Quarantine => "quarantine",
            RemediationKind::NotifyOwner => "notify-owner",
        }
    }
}

impl fmt::Display for RemediationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One remediation the host asks a connector to carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationAction {
    /// What to do.
    pub kind: RemediationKind,
    /// The file.
    pub file: RemoteFile,
    /// The file's risk.
    pub risk: RiskLevel,
    /// Why, for the platform's record (the findings summary).
    pub reason: String,
    /// The label to apply, for `apply-label`.
    pub label: Option<String>,
    /// Say what would be done without doing it.
    pub simulate: bool,
}

/// What a remediation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationOutcome {
    /// Whether anything changed on the platform.
    pub applied: bool,
    /// What was (or would be) done.
    pub description: String,
    /// Where the tombstone is, for a quarantine.
    pub tombstone: Option<String>,
}
