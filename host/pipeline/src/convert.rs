//! From the analysis core's report to the host's [`FileResult`], the result a plugin writes back.

use proofpix_analysis::{Family, Finding as CoreFinding, Report};
use proofpix_model::{FileResult, Finding, RemoteFile};

/// `family:group/tag`, e.g. `exif:GPS/0x0002` or `xmp:XMP-dc/dc:creator`.
pub fn source_label(f: &CoreFinding) -> String {
    format!(
        "{}:{}/{}",
        f.source.family.as_str(),
        f.source.group,
        f.source.tag
    )
}

/// The family a [`source_label`] names, if it names one.
pub fn label_family(label: &str) -> Option<Family> {
    Family::parse(label.split_once(':')?.0)
}

/// Whether a result's risk level comes from what the picture shows: the analysis core's
/// rule ([`proofpix_analysis::risk_from_pixels`]) applied to the result as a plugin is
/// given it, so it answers as [`Report::risk_from_pixels`] did for the report it came from.
pub fn risk_from_pixels(result: &FileResult) -> bool {
    proofpix_analysis::risk_from_pixels(
        result.risk,
        result
            .findings
            .iter()
            .filter_map(|f| Some((label_family(&f.source)?, f.severity))),
    )
}

/// The result the plugin writes back for one file.
pub fn file_result(file: &RemoteFile, report: &Report, analysed_at: &str) -> FileResult {
    FileResult {
        file: file.clone(),
        format: report.format.as_str().to_string(),
        risk: report.risk,
        score: report.score,
        findings: report
            .findings
            .iter()
            .map(|f| Finding {
                category: f.category.as_str().to_string(),
                code: f.code.clone(),
                severity: f.severity,
                source: source_label(f),
                value: f.value.clone(),
            })
            .collect(),
        summary: report.summary(),
        error: report.error.clone(),
        analysed_at: analysed_at.to_string(),
        policy_version: report.policy_version.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpix_analysis::{Analyzer, Category, Options, PixelRun, Policy, RiskLevel, Source};

    fn finding(family: Family, category: Category, severity: RiskLevel) -> CoreFinding {
        CoreFinding {
            category,
            code: format!("{}.test", category.code_prefix()),
            severity,
            source: Source {
                family,
                group: "QR".into(),
                tag: "CodeInImage".into(),
                name: "N".into(),
                offset: None,
            },
            value: String::new(),
            detail: None,
            region: None,
            confidence: None,
        }
    }

    fn file() -> RemoteFile {
        RemoteFile {
            id: "F1".into(),
            name: "wall.jpg".into(),
            mime_type: None,
            size: None,
            modified: None,
            version: "1".into(),
            container: None,
            web_url: None,
            path: None,
            properties: Vec::new(),
        }
    }

    /// A report scored with the findings given (as the pipeline scores one).
    fn report(findings: Vec<CoreFinding>) -> Report {
        let analyzer = Analyzer::new(Policy::default(), Options::default());
        let mut r = analyzer.analyze(&Vec::<u8>::new());
        r.add_pixel_findings(findings, PixelRun::default(), analyzer.policy());
        r
    }

    /// The result a plugin is given answers "is the risk in the pixels" as the report it
    /// came from does: one rule, read through the family in the source label.
    #[test]
    fn a_result_says_its_risk_is_in_the_pixels_as_its_report_does() {
        let wifi = || finding(Family::Pixels, Category::Barcode, RiskLevel::High);
        let gps = || finding(Family::Exif, Category::Gps, RiskLevel::High);
        let text = || finding(Family::Pixels, Category::TextPii, RiskLevel::Medium);
        let cases = [
            (vec![wifi()], true),
            (vec![gps(), wifi()], true),
            (vec![gps(), text()], false),
            (vec![text()], true),
            (vec![gps()], false),
            (vec![], false),
        ];
        for (findings, expected) in cases {
            let r = report(findings);
            assert_eq!(r.risk_from_pixels(), expected, "{r:?}");
            let result = file_result(&file(), &r, "");
            assert_eq!(risk_from_pixels(&result), expected, "{result:?}");
        }

        // A result whose pixel finding sits above its level (no scored report has one)
        // still owes its risk to the pixels, as the core's rule says.
        let mut result = file_result(&file(), &report(vec![wifi()]), "");
        result.risk = RiskLevel::Medium;
        assert!(risk_from_pixels(&result));
        // The category alone does not make a finding the pixels': the family does.
        result.findings[0].source = "exif:IFD0/0x010e".into();
        assert!(!risk_from_pixels(&result));
    }

    #[test]
    fn a_source_label_names_its_family() {
        let f = finding(Family::MakerNote, Category::Serial, RiskLevel::Medium);
        assert_eq!(source_label(&f), "maker-note:QR/CodeInImage");
        assert_eq!(label_family(&source_label(&f)), Some(Family::MakerNote));
        assert_eq!(label_family("nonsense"), None);
    }
}
