//! The per-file result and its two renderings: one JSON object per file (`--json`) and a
//! one-line summary for a reviewer.

use serde_json::json;

use crate::model::{Family, Finding, Format, PixelRun, RiskLevel};
use crate::source::ByteRange;

/// Whether a file at level `risk` owes it to what the picture shows, given its findings'
/// families and severities: the level is above none and a finding of the pixel stage
/// ([`Family::Pixels`]) is at it (or above it, which a scored report never has: its level is
/// its highest severity). Stripping metadata cannot remove such a risk.
///
/// The one rule for a [`Report`] ([`Report::risk_from_pixels`]) and for the result a plugin
/// is given, whose findings carry the family in their source label.
pub fn risk_from_pixels(
    risk: RiskLevel,
    findings: impl IntoIterator<Item = (Family, RiskLevel)>,
) -> bool {
    risk > RiskLevel::None
        && findings
            .into_iter()
            .any(|(family, severity)| family == Family::Pixels && severity >= risk)
}

/// What the analysis of one file found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// Detected container format (`unsupported` when none matched).
    pub format: Format,
    /// The file's risk level.
    pub risk: RiskLevel,
    /// 0–100 score within the level's band.
    pub score: u8,
    /// Findings, in the order they were found.
    pub findings: Vec<Finding>,
    /// Bytes actually read from the source.
    pub bytes_read: u64,
    /// Why the file could not be (fully) read; findings are still valid when set.
    pub error: Option<String>,
    /// Ranges the source reported missing (range mode): fetch them and analyse again.
    pub needs: Vec<ByteRange>,
    /// [`crate::Policy::version`] of the policy used.
    pub policy_version: String,
    /// What the pixel stage did, when it ran on this file.
    pub pixels: Option<PixelRun>,
}

impl Report {
    /// The `--json` object for this file:
    /// `{"path","format","risk","score","findings":[...],"bytes_read","error"}`, plus
    /// `"needs"` when ranges are missing and `"policy"` (the policy version).
    pub fn to_json(&self, path: &str) -> serde_json::Value {
        let mut v = json!({
            "path": path,
            "format": self.format.as_str(),
            "risk": self.risk.as_str(),
            "score": self.score,
            "findings": self.findings,
            "bytes_read": self.bytes_read,
            "error": self.error,
            "policy": self.policy_version,
        });
        if let Some(o) = v.as_object_mut() {
            if !self.needs.is_empty() {
                o.insert("needs".to_owned(), json!(self.needs));
            }
            if let Some(p) = &self.pixels {
                o.insert("pixels".to_owned(), json!(p));
            }
        }
        v
    }

    /// Adds what the pixel stage found and did, and scores the file again under `policy`
    /// (the same rules as metadata findings: the highest severity sets the level, each
    /// distinct code adds points). Findings the policy silences (severity `none`) are dropped.
    pub fn add_pixel_findings(
        &mut self,
        findings: Vec<Finding>,
        run: PixelRun,
        policy: &crate::Policy,
    ) {
        self.findings.extend(
            findings
                .into_iter()
                .filter(|f| f.severity != RiskLevel::None),
        );
        let (risk, score) = crate::findings::risk(&self.findings, policy);
        self.risk = risk;
        self.score = score;
        self.pixels = Some(run);
    }

    /// Whether the file's risk level comes from what the picture shows, which stripping
    /// metadata cannot remove: see [`risk_from_pixels`].
    pub fn risk_from_pixels(&self) -> bool {
        risk_from_pixels(
            self.risk,
            self.findings.iter().map(|f| (f.source.family, f.severity)),
        )
    }

    /// One line for a reviewer: level, score, and the categories found.
    pub fn summary(&self) -> String {
        let mut cats: Vec<(String, usize, RiskLevel)> = Vec::new();
        for f in &self.findings {
            let name = f.category.as_str().to_owned();
            match cats.iter_mut().find(|(c, _, _)| *c == name) {
                Some(e) => {
                    e.1 = e.1.saturating_add(1);
                    e.2 = e.2.max(f.severity);
                }
                None => cats.push((name, 1, f.severity)),
            }
        }
        cats.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let parts: Vec<String> = cats
            .iter()
            .map(|(c, n, _)| {
                if *n > 1 {
                    format!("{c}×{n}")
                } else {
                    c.clone()
                }
            })
            .collect();
        let mut s = format!("{} ({}) {}", self.risk, self.score, self.format);
        if parts.is_empty() {
            s.push_str(": no findings");
        } else {
            s.push_str(": ");
            s.push_str(&parts.join(", "));
        }
        if let Some(e) = &self.error {
            s.push_str(" [partial: ");
            s.push_str(&e.chars().take(120).collect::<String>());
            s.push(']');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, Source};

    fn finding(family: Family, category: Category, severity: RiskLevel) -> Finding {
        Finding {
            category,
            code: format!("{}.test", category.code_prefix()),
            severity,
            source: Source {
                family,
                group: "G".into(),
                tag: "T".into(),
                name: "N".into(),
                offset: None,
            },
            value: String::new(),
            detail: None,
            region: None,
            confidence: None,
        }
    }

    fn report(risk: RiskLevel, findings: Vec<Finding>) -> Report {
        Report {
            format: Format::Jpeg,
            risk,
            score: 0,
            findings,
            bytes_read: 0,
            error: None,
            needs: Vec::new(),
            policy_version: String::new(),
            pixels: None,
        }
    }

    /// The rule: a pixel finding at the file's level or above it, the level above none;
    /// never a metadata finding, never a pixel finding below the level.
    #[test]
    fn the_risk_is_in_the_pixels_when_a_pixel_finding_is_at_the_level_or_above() {
        use RiskLevel::{Critical, High, Low, Medium, None};
        let qr = |s| (Family::Pixels, s);
        assert!(risk_from_pixels(High, [qr(High)]));
        assert!(risk_from_pixels(High, [(Family::Exif, Low), qr(High)]));
        assert!(
            risk_from_pixels(Medium, [qr(High)]),
            "above the level counts (a level set from outside the findings)"
        );
        assert!(!risk_from_pixels(High, [qr(Medium)]), "below the level");
        assert!(!risk_from_pixels(
            Critical,
            [(Family::Exif, Critical), qr(High)]
        ));
        assert!(!risk_from_pixels(High, [(Family::Container, High)]));
        assert!(!risk_from_pixels(None, [qr(None)]), "no risk, nowhere from");
        assert!(!risk_from_pixels(Low, []));

        let gps = finding(Family::Exif, Category::Gps, High);
        let wifi = finding(Family::Pixels, Category::Barcode, High);
        let text = finding(Family::Pixels, Category::TextPii, Medium);
        assert!(report(High, vec![gps.clone(), wifi.clone()]).risk_from_pixels());
        assert!(!report(High, vec![gps.clone(), text.clone()]).risk_from_pixels());
        assert!(report(Medium, vec![text]).risk_from_pixels());
        assert!(!report(High, vec![gps]).risk_from_pixels());
    }

    /// A skipped run completed no step, has no notes, and says why in the report's JSON.
    #[test]
    fn a_skipped_pixel_run_says_why_and_completed_nothing() {
        let run = PixelRun::skipped("too large");
        assert_eq!(run.skipped.as_deref(), Some("too large"));
        assert!(run.completed.is_empty() && run.notes.is_empty());
        let mut r = report(RiskLevel::None, Vec::new());
        r.pixels = Some(PixelRun::skipped(format!("over {} MiB", 256)));
        assert_eq!(
            r.to_json("a.jpg")["pixels"],
            serde_json::json!({"completed": [], "skipped": "over 256 MiB"})
        );
    }

    /// A family's name is its JSON name, so a source label's family parses back.
    #[test]
    fn family_names_are_their_json_names_and_parse_back() {
        for f in Family::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
            assert_eq!(Family::parse(f.as_str()), Some(f));
        }
        assert_eq!(Family::parse("Pixels"), None);
    }
}
