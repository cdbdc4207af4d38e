//! Results in words: risk levels, finding categories and the one-line summary a source plugin
//! writes back.
//!
//! Every first-party plugin writes the same things next to a file (a risk word, a 0-100 score,
//! a findings summary, when it was analysed) and every notifier names risks and categories the
//! same way; these are the words, so that a file reads the same in Box, SharePoint, Slack and
//! Teams. Cut the summary to the platform's limit with [`crate::text`].
//!
//! ```
//! use proofpix_sdk::prelude::*;
//! use proofpix_sdk::results;
//!
//! assert_eq!(RiskLevel::High.label(), "High");
//! assert_eq!(RiskLevel::High.keyword(), "high");
//! assert!(RiskLevel::Critical.rank() > RiskLevel::Medium.rank());
//! assert_eq!(results::category_label("gps"), "GPS location");
//! ```

use crate::{FileResult, Finding, RiskLevel};

impl RiskLevel {
    /// Every level, worst first: the order reports and notifications list them in.
    pub const WORST_FIRST: [RiskLevel; 5] = [
        RiskLevel::Critical,
        RiskLevel::High,
        RiskLevel::Medium,
        RiskLevel::Low,
        RiskLevel::None,
    ];

    /// The level as a capitalised word: `None`, `Low`, `Medium`, `High`, `Critical`. What a
    /// reader sees, and the values of a dropdown or text field on the platform.
    pub fn label(self) -> &'static str {
        match self {
            RiskLevel::None => "None",
            RiskLevel::Low => "Low",
            RiskLevel::Medium => "Medium",
            RiskLevel::High => "High",
            RiskLevel::Critical => "Critical",
        }
    }

    /// The level as the contract spells it, lower case: `none`, `low`, `medium`, `high`,
    /// `critical`. For picklists and machine-read values, and inside a sentence ("3 high").
    pub fn keyword(self) -> &'static str {
        match self {
            RiskLevel::None => "none",
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }

    /// 0 (none) to 4 (critical), for ordering: the generated enum's order is not part of the
    /// contract, so compare ranks, not the enum.
    pub fn rank(self) -> u8 {
        match self {
            RiskLevel::None => 0,
            RiskLevel::Low => 1,
            RiskLevel::Medium => 2,
            RiskLevel::High => 3,
            RiskLevel::Critical => 4,
        }
    }
}

/// What [`summary`] writes for a file with no findings.
pub const NO_FINDINGS: &str = "No privacy findings";

/// The one-line findings summary written back next to a file: the host's summary (personal
/// values already masked), with why the file was not fully readable when it was not, or
/// [`NO_FINDINGS`]. Not cut: cut it to the platform's limit with [`crate::text`].
///
/// # Examples
///
/// ```
/// use proofpix_sdk::prelude::*;
/// use proofpix_sdk::results::summary;
///
/// let mut r = FileResult {
///     file: RemoteFile::default(),
///     format: "jpeg".into(),
///     risk: RiskLevel::High,
///     score: 87,
///     findings: vec![],
///     summary: "GPS 52.37,4.90".into(),
///     error: Some("truncated IFD".into()),
///     analysed_at: String::new(),
///     policy_version: String::new(),
/// };
/// assert_eq!(summary(&r), "GPS 52.37,4.90 (not fully readable: truncated IFD)");
/// r.summary.clear();
/// assert_eq!(summary(&r), "Not fully readable: truncated IFD");
/// r.error = None;
/// assert_eq!(summary(&r), "No privacy findings");
/// ```
pub fn summary(result: &FileResult) -> String {
    match (&result.error, result.summary.is_empty()) {
        (Some(e), true) => format!("Not fully readable: {e}"),
        (Some(e), false) => format!("{} (not fully readable: {e})", result.summary),
        (None, true) => NO_FINDINGS.to_string(),
        (None, false) => result.summary.clone(),
    }
}

/// A reviewer-readable name for a finding category (`gps` → `GPS location`); a category this
/// SDK does not know is shown as it is.
pub fn category_label(category: &str) -> &str {
    match category {
        "gps" => "GPS location",
        "serial" => "Serial number",
        "owner" => "Camera owner",
        "person" => "Person named",
        "contact" => "Contact details",
        "author" => "Author",
        "location-text" => "Place name",
        "thumbnail" => "Embedded thumbnail",
        "unique-id" => "Unique ID",
        "history" => "Editing history",
        "timestamp" => "Timestamp",
        "device" => "Device",
        "copyright" => "Copyright",
        "text" => "Text",
        "trailer" => "Hidden trailing data",
        "thumbnail-mismatch" => "Thumbnail differs from image",
        "embedded-media" => "Embedded media",
        other => other,
    }
}

/// The findings, worst first; findings of the same severity keep their order.
pub fn worst_first(findings: &[Finding]) -> Vec<&Finding> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity.rank()));
    sorted
}

/// The category labels of `findings`, worst first, each once, at most `max` of them, and how
/// many more there were.
///
/// # Examples
///
/// ```
/// use proofpix_sdk::prelude::*;
/// use proofpix_sdk::results::category_labels;
///
/// let f = |category: &str, severity| Finding {
///     category: category.into(),
///     code: String::new(),
///     severity,
///     source: String::new(),
///     value: String::new(),
/// };
/// let findings = [f("owner", RiskLevel::Medium), f("gps", RiskLevel::High), f("gps", RiskLevel::High)];
/// assert_eq!(category_labels(&findings, 1), (vec!["GPS location"], 1));
/// ```
pub fn category_labels(findings: &[Finding], max: usize) -> (Vec<&str>, usize) {
    let mut labels: Vec<&str> = Vec::new();
    for f in worst_first(findings) {
        let label = category_label(&f.category);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    let more = labels.len().saturating_sub(max);
    labels.truncate(max);
    (labels, more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RemoteFile;

    fn result(summary: &str, error: Option<&str>) -> FileResult {
        FileResult {
            file: RemoteFile::default(),
            format: "jpeg".into(),
            risk: RiskLevel::High,
            score: 87,
            findings: vec![],
            summary: summary.into(),
            error: error.map(String::from),
            analysed_at: String::new(),
            policy_version: String::new(),
        }
    }

    fn finding(category: &str, severity: RiskLevel) -> Finding {
        Finding {
            category: category.into(),
            code: format!("{category}.x"),
            severity,
            source: String::new(),
            value: String::new(),
        }
    }

    /// The words platforms store: a dropdown configured with these values must keep matching.
    #[test]
    fn risk_words_are_the_ones_written_to_platforms() {
        let words: Vec<(&str, &str, u8)> = RiskLevel::WORST_FIRST
            .iter()
            .map(|r| (r.label(), r.keyword(), r.rank()))
            .collect();
        assert_eq!(
            words,
            [
                ("Critical", "critical", 4),
                ("High", "high", 3),
                ("Medium", "medium", 2),
                ("Low", "low", 1),
                ("None", "none", 0),
            ]
        );
    }

    /// Each combination of summary and read error, including an empty result.
    #[test]
    fn the_summary_says_what_was_found_and_what_could_not_be_read() {
        for (summary_in, error, want) in [
            ("", None, "No privacy findings"),
            ("GPS", None, "GPS"),
            ("", Some("bad IFD"), "Not fully readable: bad IFD"),
            ("GPS", Some("bad IFD"), "GPS (not fully readable: bad IFD)"),
        ] {
            assert_eq!(
                summary(&result(summary_in, error)),
                want,
                "{summary_in:?} {error:?}"
            );
        }
    }

    /// Control characters in a summary are passed on untouched: escaping is the writer's, for
    /// its platform's markup.
    #[test]
    fn a_summary_keeps_control_characters_for_the_writer_to_escape() {
        assert_eq!(summary(&result("a\u{0}\nb", None)), "a\u{0}\nb");
    }

    /// Worst first, stable within a level, each category once; an empty list has no labels.
    #[test]
    fn category_labels_are_worst_first_and_counted_past_the_limit() {
        let findings = [
            finding("owner", RiskLevel::Medium),
            finding("gps", RiskLevel::High),
            finding("serial", RiskLevel::Medium),
            finding("gps", RiskLevel::High),
            finding("x-new", RiskLevel::Low),
        ];
        assert_eq!(
            category_labels(&findings, 3),
            (vec!["GPS location", "Camera owner", "Serial number"], 1)
        );
        assert_eq!(category_labels(&findings, 10).0.last(), Some(&"x-new"));
        assert_eq!(category_labels(&[], 3), (vec![], 0));
        assert!(worst_first(&[]).is_empty());
        let order: Vec<&str> = worst_first(&findings)
            .iter()
            .map(|f| f.category.as_str())
            .collect();
        assert_eq!(order, ["gps", "gps", "owner", "serial", "x-new"]);
    }
}
