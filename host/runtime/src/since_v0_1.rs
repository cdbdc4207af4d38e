//! Running plugins built against contract 0.1 on a 0.3 host.
//!
//! As `since_v0_2`, with what 0.2 added on top: a 0.1 manifest declares no
//! remediation and a write-back that is not idempotent, 0.1's `verify` has no
//! `hmac-sign`, and a 0.1 plugin has no `remediation` export (the session
//! answers a remediation request with "remediation needs contract 0.2").
//! Every conversion is typed ([`Conv`]), field by field.

use crate::bindings::latest::exports::proofpix::plugin as new_x;
use crate::bindings::latest::proofpix::plugin as new;
use crate::bindings::since_v0_1_0::exports::proofpix::plugin as old_x;
use crate::bindings::since_v0_1_0::proofpix::plugin as old;
use crate::conv::{Conv, delegated_imports, enum_cases, record, shared_conversions};
use crate::host_state::HostState;

shared_conversions!();
/// 0.1 capabilities as the latest ones (0.1 has no `remediation`).
impl Conv<new_x::manifest::Capability> for old_x::manifest::Capability {
    fn conv(self) -> new_x::manifest::Capability {
        use new_x::manifest::Capability as N;
        use old_x::manifest::Capability as O;
        match self {
            O::Source => N::Source,
            O::Notifier => N::Notifier,
            O::Events => N::Events,
        }
    }
}

/// A 0.1 plugin's error; 0.3's `egress-refused` has no 0.1 form and is never
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

/// A 0.1 endpoint declares no redirect targets.
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

/// A 0.1 manifest as the latest one: write-back not idempotent, no
/// remediation, no OAuth dialect (the auth crate's legacy handling applies).
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
            write_back_idempotent: false,
            remediations: Vec::new(),
            oauth_dialect: None,
        }
    }
}

/// A 0.1 download always has the bytes ready.
impl Conv<new_x::source::DownloadAnswer> for old_x::source::DownloadSpec {
    fn conv(self) -> new_x::source::DownloadAnswer {
        new_x::source::DownloadAnswer::Ready(self.conv())
    }
}

/// A 0.1 write-back that succeeded wrote (0.1 cannot say it skipped).
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

/// A notification as a 0.1 notifier takes it: a digest is its alerts.
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

delegated_imports!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_01_manifest_gets_neutral_values_of_later_versions() {
        let info = old_x::manifest::PluginInfo {
            id: "x".into(),
            version: "1.0.0".into(),
            display_name: "X".into(),
            platform: "X".into(),
            description: String::new(),
            capabilities: vec![
                old_x::manifest::Capability::Source,
                old_x::manifest::Capability::Events,
            ],
            config: Vec::new(),
            auth: old_x::manifest::AuthScheme::ApiKey(old_x::manifest::ApiKeyAuth {
                secret_field: "k".into(),
                header: "x-key".into(),
                prefix: String::new(),
            }),
            endpoints: vec![old_x::manifest::Endpoint {
                name: "api".into(),
                url: "https://api.example.com".into(),
                credentials: true,
                purpose: "p".into(),
            }],
            filesystem: Vec::new(),
            write_back_batch_size: 3,
        };
        let new: new_x::manifest::PluginInfo = info.conv();
        assert!(!new.write_back_idempotent);
        assert!(new.remediations.is_empty());
        assert!(new.oauth_dialect.is_none());
        assert!(new.endpoints[0].redirect_targets.is_empty());
        assert_eq!(
            new.capabilities,
            vec![
                new_x::manifest::Capability::Source,
                new_x::manifest::Capability::Events
            ]
        );
        assert!(matches!(new.auth, new_x::manifest::AuthScheme::ApiKey(k) if k.header == "x-key"));
    }

    #[test]
    fn a_01_error_and_download_convert_up() {
        let e: new::types::PluginError =
            old::types::PluginError::RateLimited(old::types::RateLimit {
                retry_after_ms: Some(5),
                message: "slow".into(),
            })
            .conv();
        assert!(
            matches!(e, new::types::PluginError::RateLimited(r) if r.retry_after_ms == Some(5))
        );
        let spec = old_x::source::DownloadSpec {
            location: old_x::source::ContentLocation::File("/data/a.jpg".into()),
            supports_range: true,
        };
        let answer: new_x::source::DownloadAnswer = spec.conv();
        assert!(matches!(
            answer,
            new_x::source::DownloadAnswer::Ready(s) if s.supports_range
        ));
    }
}
