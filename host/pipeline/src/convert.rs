//! From the analysis core's report to the contract's `file-result`.

use proofpix_analysis::{Finding as CoreFinding, Report, RiskLevel as CoreRisk};
use proofpix_runtime::contract::{FileResult, Finding, RemoteFile, RiskLevel};

/// The contract's risk level for the core's.
pub fn risk_to_contract(r: CoreRisk) -> RiskLevel {
    match r {
        CoreRisk::None => RiskLevel::None,
        CoreRisk::Low => RiskLevel::Low,
        CoreRisk::Medium => RiskLevel::Medium,
        CoreRisk::High => RiskLevel::High,
        CoreRisk::Critical => RiskLevel::Critical,
    }
}

/// The core's risk level for the contract's (the inverse of [`risk_to_contract`]).
pub fn risk_from_contract(r: RiskLevel) -> CoreRisk {
    match r {
        RiskLevel::None => CoreRisk::None,
        RiskLevel::Low => CoreRisk::Low,
        RiskLevel::Medium => CoreRisk::Medium,
        RiskLevel::High => CoreRisk::High,
        RiskLevel::Critical => CoreRisk::Critical,
    }
}

/// `family:group/tag`, e.g. `exif:GPS/0x0002` or `xmp:XMP-dc/dc:creator`.
pub fn source_label(f: &CoreFinding) -> String {
    let family = serde_json::to_value(f.source.family)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    format!("{family}:{}/{}", f.source.group, f.source.tag)
}

/// The result the plugin writes back for one file.
pub fn file_result(file: &RemoteFile, report: &Report, analysed_at: &str) -> FileResult {
    FileResult {
        file: file.clone(),
        format: report.format.as_str().to_string(),
        risk: risk_to_contract(report.risk),
        score: report.score,
        findings: report
            .findings
            .iter()
            .map(|f| Finding {
                category: f.category.as_str().to_string(),
                code: f.code.clone(),
                severity: risk_to_contract(f.severity),
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
