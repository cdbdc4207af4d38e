//! Running plugins built against contract 0.2 on a 0.3 host.
//!
//! 0.2's import interfaces are implemented by converting to the latest types
//! and delegating to the latest implementation; 0.2 exports are called with
//! converted arguments and their results converted back. Every conversion is
//! typed ([`Conv`]), field by field. What 0.3 changed:
//! - a 0.2 manifest gets no OAuth dialect (`oauth-dialect: none`) and its
//!   endpoints no redirect targets;
//! - a 0.2 `download` answer is always `download-answer.ready`;
//! - a 0.2 write-back `Ok` is `write-result.written` (0.2 cannot say
//!   skipped);
//! - a 0.2 notifier gets a digest's alerts, without the totals;
//! - `plugin-error.egress-refused` only travels from a plugin to the host, so
//!   no 0.3 error is ever converted toward a 0.2 plugin.

use crate::bindings::latest::exports::proofpix::plugin as new_x;
use crate::bindings::latest::proofpix::plugin as new;
use crate::bindings::since_v0_2_0::exports::proofpix::plugin as old_x;
use crate::bindings::since_v0_2_0::proofpix::plugin as old;
use crate::conv::{Conv, delegated_imports, enum_cases, record, shared_conversions};
use crate::host_state::HostState;

shared_conversions!();
enum_cases!(
    old::types::RemediationKind,
    new::types::RemediationKind {
        ReplaceWithSanitised,
        RestrictSharing,
        ApplyLabel,
        Quarantine,
        NotifyOwner
    }
);
enum_cases!(
    old_x::manifest::Capability,
    new_x::manifest::Capability {
        Source,
        Notifier,
        Events,
        Remediation
    }
);

/// A 0.2 plugin's error; 0.3's `egress-refused` has no 0.2 form and is never
/// sent to a plugin.
impl Conv<new::types::PluginError> for old::types::PluginError {
    fn conv(self) -> new::types::PluginError {
        use new::types::PluginError as N;
        use old::types::PluginError as O;
        match self {
            O::Unauthorized(m) => N::Unauthorized(m),
            O::RateLimited(r) => N::RateLimited(r.conv()),
            O::NotFound(m) => N::NotFound(m),
            O::InvalidConfig(c) => N::InvalidConfig(c.conv()),
            O::Transient(m) => N::Transient(m),
            O::Fatal(m) => N::Fatal(m),
        }
    }
}

/// A 0.2 endpoint declares no redirect targets.
impl Conv<new_x::manifest::Endpoint> for old_x::manifest::Endpoint {
    fn conv(self) -> new_x::manifest::Endpoint {
        new_x::manifest::Endpoint {
            name: self.name,
            url: self.url,
            credentials: self.credentials,
            purpose: self.purpose,
            redirect_targets: Vec::new(),
        }
    }
}

/// A 0.2 manifest as the latest one: no OAuth dialect (the auth crate's
/// legacy handling applies).
impl Conv<new_x::manifest::PluginInfo> for old_x::manifest::PluginInfo {
    fn conv(self) -> new_x::manifest::PluginInfo {
        new_x::manifest::PluginInfo {
            id: self.id,
            version: self.version,
            display_name: self.display_name,
            platform: self.platform,
            description: self.description,
            capabilities: self.capabilities.conv(),
            config: self.config.conv(),
            auth: self.auth.conv(),
            endpoints: self.endpoints.conv(),
            filesystem: self.filesystem.conv(),
            write_back_batch_size: self.write_back_batch_size,
            write_back_idempotent: self.write_back_idempotent,
            remediations: self.remediations.conv(),
            oauth_dialect: None,
        }
    }
}

/// A 0.2 download always has the bytes ready.
impl Conv<new_x::source::DownloadAnswer> for old_x::source::DownloadSpec {
    fn conv(self) -> new_x::source::DownloadAnswer {
        new_x::source::DownloadAnswer::Ready(self.conv())
    }
}

/// A 0.2 write-back that succeeded wrote (0.2 cannot say it skipped).
impl Conv<new_x::source::WriteOutcome> for old_x::source::WriteOutcome {
    fn conv(self) -> new_x::source::WriteOutcome {
        new_x::source::WriteOutcome {
            file_id: self.file_id,
            outcome: match self.outcome {
                Ok(()) => Ok(new_x::source::WriteResult::Written),
                Err(e) => Err(e.conv()),
            },
        }
    }
}

// remediation
record!(
    old_x::remediation::Action,
    new_x::remediation::Action {
        kind,
        file,
        risk,
        reason,
        label,
        simulate
    }
);
record!(
    old_x::remediation::Outcome,
    new_x::remediation::Outcome {
        applied,
        description,
        tombstone
    }
);

/// A notification as a 0.2 notifier takes it: a digest is its alerts.
impl Conv<old_x::notifier::Notification> for new_x::notifier::Notification {
    fn conv(self) -> old_x::notifier::Notification {
        use new_x::notifier::Notification as N;
        use old_x::notifier::Notification as O;
        match self {
            N::HighRiskFiles(d) => O::HighRiskFiles(d.alerts.conv()),
            N::BatchCompleted(b) => O::BatchCompleted(b.conv()),
            N::BatchFailed(p) => O::BatchFailed(p.conv()),
            N::IntegrationUnhealthy(p) => O::IntegrationUnhealthy(p.conv()),
        }
    }
}

delegated_imports!(
    async fn hmac_sign(
        &mut self,
        secret_field: String,
        a: old::verify::HmacAlgorithm,
        message: Vec<u8>,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        <HostState as new::verify::Host>::hmac_sign(self, secret_field, a.conv(), message).await
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_02_manifest_gets_neutral_03_values() {
        let info = old_x::manifest::PluginInfo {
            id: "x".into(),
            version: "1.0.0".into(),
            display_name: "X".into(),
            platform: "X".into(),
            description: String::new(),
            capabilities: vec![old_x::manifest::Capability::Source],
            config: Vec::new(),
            auth: old_x::manifest::AuthScheme::None,
            endpoints: vec![old_x::manifest::Endpoint {
                name: "api".into(),
                url: "https://api.example.com".into(),
                credentials: true,
                purpose: "p".into(),
            }],
            filesystem: Vec::new(),
            write_back_batch_size: 3,
            write_back_idempotent: true,
            remediations: vec![old::types::RemediationKind::Quarantine],
        };
        let new: new_x::manifest::PluginInfo = info.conv();
        assert!(new.oauth_dialect.is_none());
        assert!(new.endpoints[0].redirect_targets.is_empty());
        assert!(new.endpoints[0].credentials);
        assert!(new.write_back_idempotent);
        assert_eq!(new.write_back_batch_size, 3);
        assert_eq!(
            new.remediations,
            vec![new::types::RemediationKind::Quarantine]
        );
    }

    #[test]
    fn a_02_write_is_written_and_a_digest_is_its_alerts() {
        let o = old_x::source::WriteOutcome {
            file_id: "f".into(),
            outcome: Ok(()),
        };
        let n: new_x::source::WriteOutcome = o.conv();
        assert!(matches!(n.outcome, Ok(new_x::source::WriteResult::Written)));

        let alert = new_x::notifier::FileAlert {
            integration: "i".into(),
            file: new::types::RemoteFile {
                id: "1".into(),
                name: "a.jpg".into(),
                mime_type: None,
                size: Some(3),
                modified: None,
                version: "v".into(),
                container: None,
                web_url: None,
                path: None,
                properties: vec![("k".into(), "v".into())],
            },
            risk: new::types::RiskLevel::High,
            score: 80,
            summary: "s".into(),
            findings: Vec::new(),
        };
        let digest = new_x::notifier::Notification::HighRiskFiles(new_x::notifier::Digest {
            alerts: vec![alert],
            total: 40,
            by_risk: vec![(new::types::RiskLevel::High, 40)],
            window_start: "2026-01-01T00:00:00Z".into(),
            window_end: "2026-01-01T01:00:00Z".into(),
        });
        match digest.conv() {
            old_x::notifier::Notification::HighRiskFiles(a) => {
                assert_eq!(a.len(), 1);
                assert_eq!(a[0].file.properties, vec![("k".into(), "v".into())]);
                assert_eq!(a[0].risk, old::types::RiskLevel::High);
            }
            other => panic!("{other:?}"),
        }
    }
}
