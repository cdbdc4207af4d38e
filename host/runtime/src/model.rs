//! The contract's newest types and the host's own ([`proofpix_model`]): the one place they
//! convert. Records are listed field by field ([`record!`]), enums and variants case by case
//! ([`enum_cases!`], [`variant_cases!`]), so a field or case added on either side fails to
//! compile here rather than being dropped. Older contract versions reach the model through
//! their own conversion to the newest (`since_v0_1`, `since_v0_2`).

use proofpix_model as m;

use crate::bindings::latest::exports::proofpix::plugin::{events, notifier, remediation, source};
use crate::bindings::latest::proofpix::plugin::types as t;
use crate::conv::{Conv, enum_cases, record, variant_cases};

// The types every interface shares.
enum_cases!(
    t::RiskLevel,
    m::RiskLevel {
        None,
        Low,
        Medium,
        High,
        Critical
    }
);
enum_cases!(
    t::RemediationKind,
    m::RemediationKind {
        ReplaceWithSanitised,
        RestrictSharing,
        ApplyLabel,
        Quarantine,
        NotifyOwner
    }
);
record!(
    t::RateLimit,
    m::RateLimit {
        retry_after_ms,
        message
    }
);
record!(t::ConfigProblem, m::ConfigProblem { field, message });
record!(t::EgressRefusal, m::EgressRefusal { url, reason });
variant_cases!(t::PluginError, m::PluginError {} {
    Unauthorized,
    RateLimited,
    NotFound,
    InvalidConfig,
    Transient,
    Fatal,
    EgressRefused
});
record!(
    t::RemoteFile,
    m::RemoteFile {
        id,
        name,
        mime_type,
        size,
        modified,
        version,
        container,
        web_url,
        path,
        properties
    }
);
record!(
    t::Finding,
    m::Finding {
        category,
        code,
        severity,
        source,
        value
    }
);
record!(
    t::FileResult,
    m::FileResult {
        file,
        format,
        risk,
        score,
        findings,
        summary,
        error,
        analysed_at,
        policy_version
    }
);

// source
record!(source::CheckReport, m::CheckReport { account, details });
record!(
    source::Page,
    m::Page {
        files,
        removed,
        cursor,
        more
    }
);
variant_cases!(source::WriteResult, m::WriteResult { Written } { Skipped });
record!(source::WriteOutcome, m::WriteOutcome { file_id, outcome });

// notifier
record!(
    notifier::FileAlert,
    m::FileAlert {
        integration,
        file,
        risk,
        score,
        summary,
        findings
    }
);
record!(
    notifier::Digest,
    m::Digest {
        alerts,
        total,
        by_risk,
        window_start,
        window_end
    }
);
record!(
    notifier::BatchSummary,
    m::BatchSummary {
        batch_id,
        integration,
        platform,
        started_at,
        finished_at,
        files_total,
        files_ok,
        files_failed,
        by_risk,
        dashboard_url
    }
);
record!(
    notifier::Problem,
    m::Problem {
        integration,
        message
    }
);
variant_cases!(notifier::Notification, m::Notification {} {
    HighRiskFiles,
    BatchCompleted,
    BatchFailed,
    IntegrationUnhealthy
});

// events
record!(
    events::InboundRequest,
    m::InboundRequest {
        method,
        path,
        query,
        headers,
        body
    }
);
record!(
    events::InboundResponse,
    m::InboundResponse {
        status,
        headers,
        body
    }
);
record!(
    events::EventOutcome,
    m::EventOutcome {
        response,
        changed,
        removed,
        resync
    }
);

// remediation
record!(
    remediation::Action,
    m::RemediationAction {
        kind,
        file,
        risk,
        reason,
        label,
        simulate
    }
);
record!(
    remediation::Outcome,
    m::RemediationOutcome {
        applied,
        description,
        tombstone
    }
);

/// The model's value as the newest contract's (what a call into a plugin takes).
pub(crate) fn wire<M: Conv<W> + Clone, W>(value: &M) -> W {
    value.clone().conv()
}

/// For the manifest's `remediations`, still the contract's type.
impl From<t::RemediationKind> for m::RemediationKind {
    fn from(k: t::RemediationKind) -> Self {
        k.conv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_converts_both_ways_and_keeps_its_order() {
        let wire: Vec<t::RiskLevel> = m::RiskLevel::ALL.into_iter().map(Conv::conv).collect();
        for (level, w) in m::RiskLevel::ALL.into_iter().zip(&wire) {
            assert_eq!(m::RiskLevel::from_wire(*w), level);
        }
        assert_eq!(wire.first(), Some(&t::RiskLevel::None));
        assert_eq!(wire.last(), Some(&t::RiskLevel::Critical));
    }

    /// A result and a notification survive the trip to the wire and back unchanged.
    #[test]
    fn a_result_and_a_notification_convert_without_loss() {
        let file = m::RemoteFile {
            id: "F1".into(),
            name: "a.jpg".into(),
            mime_type: Some("image/jpeg".into()),
            size: Some(9),
            modified: Some("2026-01-01T00:00:00Z".into()),
            version: "v2".into(),
            container: Some("C".into()),
            web_url: Some("https://x.test/a".into()),
            path: Some("/p".into()),
            properties: vec![("k".into(), "v".into())],
        };
        let result = m::FileResult {
            file: file.clone(),
            format: "jpeg".into(),
            risk: m::RiskLevel::High,
            score: 80,
            findings: vec![m::Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: m::RiskLevel::High,
                source: "exif:GPS/0x0002".into(),
                value: "52.3,4.9".into(),
            }],
            summary: "GPS".into(),
            error: Some("partial".into()),
            analysed_at: "2026-01-02T00:00:00Z".into(),
            policy_version: "p1".into(),
        };
        let w: t::FileResult = wire(&result);
        assert_eq!(m::FileResult::from_wire(w), result);

        let note = m::Notification::HighRiskFiles(m::Digest {
            alerts: vec![m::FileAlert {
                integration: "i".into(),
                file,
                risk: m::RiskLevel::Critical,
                score: 99,
                summary: "s".into(),
                findings: result.findings.clone(),
            }],
            total: 3,
            by_risk: vec![(m::RiskLevel::High, 2), (m::RiskLevel::Critical, 1)],
            window_start: "a".into(),
            window_end: "b".into(),
        });
        let w: notifier::Notification = wire(&note);
        assert_eq!(m::Notification::from_wire(w), note);

        let err = m::PluginError::EgressRefused(m::EgressRefusal {
            url: "https://x.test".into(),
            reason: "not granted".into(),
        });
        let w: t::PluginError = wire(&err);
        assert_eq!(m::PluginError::from_wire(w), err);
    }

    trait FromWire<W> {
        fn from_wire(w: W) -> Self;
    }
    impl<W: Conv<M>, M> FromWire<W> for M {
        fn from_wire(w: W) -> M {
            w.conv()
        }
    }
}
