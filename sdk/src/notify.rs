//! Notification text shared by every notifier: headlines, counts and the order of files.
//!
//! A notifier turns a [`Notification`](crate::Notification) into its platform's message (Slack
//! blocks, a Teams card, an e-mail). The layout is the platform's; the words should not be: the
//! plain-text line a phone shows for an alert, what a digest counts and in which order it lists
//! files, what a batch summary adds up. These functions give that text, unescaped: escape it
//! for your platform's markup (names and summaries come from scanned files, that is from anyone
//! who can upload one) and cut it with [`crate::text`].
//!
//! ```
//! use proofpix_sdk::prelude::*;
//! use proofpix_sdk::notify;
//!
//! let alert = FileAlert {
//!     integration: "cases".into(),
//!     file: RemoteFile { name: "IMG_1.jpg".into(), ..RemoteFile::default() },
//!     risk: RiskLevel::High,
//!     score: 87,
//!     summary: String::new(),
//!     findings: vec![],
//! };
//! assert_eq!(notify::alert_line(&alert), "High-risk image: IMG_1.jpg (score 87/100) in cases");
//! let digest = Digest::of(vec![alert]);
//! assert_eq!(notify::digest_line(&digest), "ProofPix found 1 high-risk images (1 high)");
//! ```

use crate::{BatchSummary, Digest, FileAlert, RiskLevel};

/// Files a digest lists one by one; the rest are counted ([`more_files`]). Twenty keeps a Slack
/// message under its 50 blocks and a Teams card far under its 28 KB.
pub const DIGEST_FILES: usize = 20;

/// Finding categories named per file in a digest line.
pub const DIGEST_CATEGORIES: usize = 3;

/// The levels a digest counts, worst first: a digest holds files at medium risk or above.
const DIGEST_LEVELS: [RiskLevel; 3] = [RiskLevel::Critical, RiskLevel::High, RiskLevel::Medium];

/// One alert in plain text: `High-risk image: IMG_1.jpg (score 87/100) in cases`. For the
/// fallback text of a message and notification previews.
pub fn alert_line(alert: &FileAlert) -> String {
    format!(
        "{}-risk image: {} (score {}/100) in {}",
        alert.risk.label(),
        alert.file.name,
        alert.score,
        alert.integration
    )
}

/// The levels a digest counts, with how many files of the whole window are at each, worst first
/// and only the levels with files.
pub fn digest_counts(digest: &Digest) -> Vec<(RiskLevel, usize)> {
    DIGEST_LEVELS
        .iter()
        .map(|&r| (r, digest.count(r)))
        .filter(|(_, c)| *c > 0)
        .collect()
}

/// [`digest_counts`] in words: `30 critical, 90 high`; empty for a digest with no files.
pub fn digest_counts_text(digest: &Digest) -> String {
    digest_counts(digest)
        .iter()
        .map(|(r, c)| format!("{c} {}", r.keyword()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A digest in plain text: `ProofPix found 120 high-risk images (30 critical, 90 high)`,
/// counting the whole window, not only the alerts the message carries.
pub fn digest_line(digest: &Digest) -> String {
    format!(
        "ProofPix found {} high-risk images ({})",
        digest.total_files(),
        digest_counts_text(digest)
    )
}

/// The integrations a digest's alerts come from, sorted, each once.
pub fn digest_integrations(digest: &Digest) -> Vec<&str> {
    let mut names: Vec<&str> = digest
        .alerts
        .iter()
        .map(|a| a.integration.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The alerts a digest lists, worst first (by risk, then score), at most [`DIGEST_FILES`];
/// alerts of the same risk and score keep the run's order.
pub fn digest_files(digest: &Digest) -> Vec<&FileAlert> {
    let mut sorted: Vec<&FileAlert> = digest.alerts.iter().collect();
    sorted.sort_by_key(|a| std::cmp::Reverse((a.risk.rank(), a.score)));
    sorted.truncate(DIGEST_FILES);
    sorted
}

/// How many files of the window [`digest_files`] does not list: the ones past
/// [`DIGEST_FILES`] and the ones the host counted but did not carry.
pub fn more_files(digest: &Digest) -> usize {
    let shown = digest.alerts.len().min(DIGEST_FILES);
    digest.total_files().saturating_sub(shown)
}

/// `…and 3 more findings` (`…and 1 more finding`), for the findings a message leaves out.
pub fn more_findings(rest: usize) -> String {
    format!(
        "…and {rest} more finding{}",
        if rest == 1 { "" } else { "s" }
    )
}

/// How many files of a batch are at `level`.
pub fn batch_count(batch: &BatchSummary, level: RiskLevel) -> u32 {
    batch
        .by_risk
        .iter()
        .filter(|(r, _)| *r == level)
        .fold(0u32, |sum, (_, c)| sum.saturating_add(*c))
}

/// How many files of a batch are at high risk or above.
pub fn batch_high_risk(batch: &BatchSummary) -> u32 {
    batch_count(batch, RiskLevel::High).saturating_add(batch_count(batch, RiskLevel::Critical))
}

/// A batch's title without decoration: `Scan finished: cases`, or `Scan finished with 2
/// failed: cases` when files failed.
pub fn batch_title(batch: &BatchSummary) -> String {
    if batch.files_failed > 0 {
        format!(
            "Scan finished with {} failed: {}",
            batch.files_failed, batch.integration
        )
    } else {
        format!("Scan finished: {}", batch.integration)
    }
}

/// A batch in plain text: `Scan finished: cases: 10 files, 3 high-risk, 1 failed`.
pub fn batch_line(batch: &BatchSummary) -> String {
    format!(
        "Scan finished: {}: {} files, {} high-risk, {} failed",
        batch.integration,
        batch.files_total,
        batch_high_risk(batch),
        batch.files_failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, RemoteFile};

    fn alert(name: &str, risk: RiskLevel, score: u8) -> FileAlert {
        FileAlert {
            integration: "cases".into(),
            file: RemoteFile {
                name: name.into(),
                ..RemoteFile::default()
            },
            risk,
            score,
            summary: String::new(),
            findings: vec![Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::High,
                source: String::new(),
                value: String::new(),
            }],
        }
    }

    fn batch(by_risk: Vec<(RiskLevel, u32)>, failed: u32) -> BatchSummary {
        BatchSummary {
            batch_id: "b-1".into(),
            integration: "cases".into(),
            platform: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            files_total: 10,
            files_ok: 10 - failed,
            files_failed: failed,
            by_risk,
            dashboard_url: None,
        }
    }

    /// The plain line carries the name as given: escaping is the platform's, after this.
    #[test]
    fn an_alert_line_names_risk_file_score_and_integration() {
        assert_eq!(
            alert_line(&alert("<!channel>\n.jpg", RiskLevel::Critical, 99)),
            "Critical-risk image: <!channel>\n.jpg (score 99/100) in cases"
        );
    }

    /// A window of 300 files whose message carries 50: the counts are the window's.
    #[test]
    fn a_digest_counts_its_whole_window() {
        let alerts: Vec<FileAlert> = (0..50)
            .map(|i| alert(&format!("p{i}"), RiskLevel::High, 80))
            .collect();
        let d = Digest {
            alerts,
            total: 300,
            by_risk: vec![(RiskLevel::Critical, 120), (RiskLevel::High, 180)],
            window_start: String::new(),
            window_end: String::new(),
        };
        assert_eq!(
            digest_line(&d),
            "ProofPix found 300 high-risk images (120 critical, 180 high)"
        );
        assert_eq!(digest_files(&d).len(), DIGEST_FILES);
        assert_eq!(more_files(&d), 280);
        assert_eq!(digest_integrations(&d), ["cases"]);
    }

    /// Worst first by risk then score; the run's order within a tie.
    #[test]
    fn digest_files_are_listed_worst_first() {
        let d = Digest::of(vec![
            alert("a", RiskLevel::High, 70),
            alert("b", RiskLevel::Critical, 60),
            alert("c", RiskLevel::High, 90),
            alert("d", RiskLevel::High, 70),
        ]);
        let names: Vec<&str> = digest_files(&d)
            .iter()
            .map(|a| a.file.name.as_str())
            .collect();
        assert_eq!(names, ["b", "c", "a", "d"]);
        assert_eq!(more_files(&d), 0);
    }

    /// An empty digest (a host that sends one) gives text, not a panic.
    #[test]
    fn an_empty_digest_reads_as_nothing_found() {
        let d = Digest::of(vec![]);
        assert_eq!(digest_line(&d), "ProofPix found 0 high-risk images ()");
        assert!(digest_files(&d).is_empty());
        assert!(digest_integrations(&d).is_empty());
        assert_eq!(more_files(&d), 0);
    }

    /// High-risk counts high and critical, repeated levels add up, and nothing overflows.
    #[test]
    fn a_batch_adds_up_high_and_critical() {
        let b = batch(
            vec![
                (RiskLevel::High, 2),
                (RiskLevel::Critical, 1),
                (RiskLevel::None, 6),
                (RiskLevel::High, 1),
            ],
            1,
        );
        assert_eq!(batch_high_risk(&b), 4);
        assert_eq!(batch_count(&b, RiskLevel::Low), 0);
        assert_eq!(
            batch_line(&b),
            "Scan finished: cases: 10 files, 4 high-risk, 1 failed"
        );
        assert_eq!(batch_title(&b), "Scan finished with 1 failed: cases");
        assert_eq!(batch_title(&batch(vec![], 0)), "Scan finished: cases");
        let huge = batch(vec![(RiskLevel::High, u32::MAX), (RiskLevel::High, 5)], 0);
        assert_eq!(batch_high_risk(&huge), u32::MAX);
    }

    #[test]
    fn more_findings_is_singular_for_one() {
        assert_eq!(more_findings(1), "…and 1 more finding");
        assert_eq!(more_findings(3), "…and 3 more findings");
    }
}
