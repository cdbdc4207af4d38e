//! Two-sided grants: a plugin declares what it needs, the operator grants it,
//! and only what both allow is effective.
//!
//! The adversary is the plugin: its manifest is just a request. A declared
//! endpoint that no grant covers is not reachable, a grant that no
//! declaration uses opens nothing, and a filesystem mount is read-only unless
//! the plugin asked for write access *and* the operator granted it. The
//! operator's side lives in the integration's config (a daemon has no one to
//! prompt), so unattended installs work and every grant is reviewable text.
//!
//! Endpoint URLs may be templates over config and auth context (see
//! [`crate::template`]); they are resolved before they get here. An endpoint
//! whose template cannot be resolved yet (e.g. `{auth.instance_url}` before
//! the first token) is left out until it can.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::egress::{AllowedHost, AllowedHosts, BlockedNetworks, EgressPolicy, EntryError};

/// An endpoint as the plugin declared it, template already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredEndpoint {
    /// The endpoint's name.
    pub name: String,
    /// Resolved pattern (`https://x.my.salesforce.com`, `https://*.sharepoint.com`).
    pub url: String,
    /// Whether the host injects credentials on it.
    pub credentials: bool,
}

/// A directory the plugin asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredMount {
    /// Where the guest sees it.
    pub guest_path: String,
    /// The config field naming the host directory.
    pub config_field: String,
    /// Whether it asked for write access.
    pub writable: bool,
}

/// The operator's grant for one integration (`[grant]` in its config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorGrant {
    /// Allow-list entries (see [`crate::egress`] for the syntax).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Guest paths of the mounts granted (read-only unless also in `write`).
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Guest paths of mounts granted write access.
    #[serde(default)]
    pub write: Vec<String>,
    /// Allow loopback addresses (local emulators).
    #[serde(default)]
    pub allow_loopback: bool,
    /// Allow private-network addresses (on-premises servers).
    #[serde(default)]
    pub allow_private: bool,
    /// Allow link-local addresses.
    #[serde(default)]
    pub allow_link_local: bool,
}

/// A mount the runtime will preopen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Guest path.
    pub guest_path: String,
    /// Host directory.
    pub host_path: PathBuf,
    /// Write access.
    pub writable: bool,
}

/// What a plugin may actually do for one integration.
#[derive(Debug, Clone, Default)]
pub struct EffectiveGrants {
    /// The egress policy: declared endpoints covered by a grant, plus the
    /// granted address classes.
    pub egress: EgressPolicy,
    /// The subset of `egress.hosts` that receives credentials.
    pub credential_hosts: AllowedHosts,
    /// Declared redirect targets covered by a grant (contract 0.3's
    /// `endpoint.redirect-targets`): a response may redirect there, and the
    /// hop is followed without credentials; never a request's first hop.
    pub redirect_hosts: AllowedHosts,
    /// Filesystem mounts.
    pub mounts: Vec<Mount>,
    /// Declarations that no grant covers, as readable lines ("would deny"),
    /// shown by `plugin inspect` and connection tests.
    pub not_granted: Vec<String>,
}

/// A grant or declaration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// A grant entry does not parse.
    #[error("grant host {entry:?} {reason}")]
    BadGrant {
        /// The entry.
        entry: String,
        /// Why.
        reason: EntryError,
    },
    /// A declared endpoint does not parse after template resolution.
    #[error("endpoint {name:?} ({url:?}) {reason}")]
    BadEndpoint {
        /// Endpoint name.
        name: String,
        /// Resolved URL.
        url: String,
        /// Why.
        reason: EntryError,
    },
    /// A granted mount's directory is not set in the config.
    #[error("mount {guest_path} needs config field {field:?} set to an absolute directory")]
    MountPathMissing {
        /// Guest path.
        guest_path: String,
        /// Config field.
        field: String,
    },
}

impl EffectiveGrants {
    /// Intersects the plugin's declarations with the operator's grant.
    ///
    /// `config` supplies mount directories.
    ///
    /// # Errors
    /// An unparsable grant or endpoint, or a granted mount without a
    /// directory.
    pub fn resolve(
        endpoints: &[DeclaredEndpoint],
        mounts: &[DeclaredMount],
        config: &BTreeMap<String, String>,
        grant: &OperatorGrant,
    ) -> Result<Self, GrantError> {
        Self::resolve_with_redirects(endpoints, &[], mounts, config, grant)
    }

    /// As [`EffectiveGrants::resolve`], with the endpoints' declared redirect
    /// targets (`name` is the endpoint's, `credentials` is ignored: a
    /// redirect target never receives credentials). A target the operator
    /// did not grant is listed in `not_granted` and refused like any host.
    ///
    /// # Errors
    /// As [`EffectiveGrants::resolve`]; a target that does not parse is a
    /// [`GrantError::BadEndpoint`].
    pub fn resolve_with_redirects(
        endpoints: &[DeclaredEndpoint],
        redirect_targets: &[DeclaredEndpoint],
        mounts: &[DeclaredMount],
        config: &BTreeMap<String, String>,
        grant: &OperatorGrant,
    ) -> Result<Self, GrantError> {
        let granted = grant
            .hosts
            .iter()
            .map(|h| {
                AllowedHost::parse(h).map_err(|reason| GrantError::BadGrant {
                    entry: h.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut allowed = Vec::new();
        let mut with_credentials = Vec::new();
        let mut not_granted = Vec::new();
        for ep in endpoints {
            let declared =
                AllowedHost::parse(&ep.url).map_err(|reason| GrantError::BadEndpoint {
                    name: ep.name.clone(),
                    url: ep.url.clone(),
                    reason,
                })?;
            if granted.iter().any(|g| declared.is_covered_by(g)) {
                if ep.credentials {
                    with_credentials.push(declared.clone());
                }
                allowed.push(declared);
            } else {
                not_granted.push(format!(
                    "endpoint {} ({}) is declared but not granted",
                    ep.name, ep.url
                ));
            }
        }

        let mut redirect_hosts = Vec::new();
        for t in redirect_targets {
            let declared =
                AllowedHost::parse(&t.url).map_err(|reason| GrantError::BadEndpoint {
                    name: format!("{} (redirect target)", t.name),
                    url: t.url.clone(),
                    reason,
                })?;
            if granted.iter().any(|g| declared.is_covered_by(g)) {
                redirect_hosts.push(declared);
            } else {
                not_granted.push(format!(
                    "redirect target {} of endpoint {} is declared but not granted",
                    t.url, t.name
                ));
            }
        }

        let mut effective_mounts = Vec::new();
        for m in mounts {
            if !grant.mounts.contains(&m.guest_path) {
                not_granted.push(format!(
                    "mount {} is declared but not granted",
                    m.guest_path
                ));
                continue;
            }
            let Some(dir) = config.get(&m.config_field).filter(|d| !d.trim().is_empty()) else {
                if m.writable {
                    // An optional output folder left empty: nothing to mount.
                    continue;
                }
                return Err(GrantError::MountPathMissing {
                    guest_path: m.guest_path.clone(),
                    field: m.config_field.clone(),
                });
            };
            let write_granted = grant.write.contains(&m.guest_path);
            if m.writable && !write_granted {
                not_granted.push(format!(
                    "write access to {} is declared but not granted (mounted read-only)",
                    m.guest_path
                ));
            }
            effective_mounts.push(Mount {
                guest_path: m.guest_path.clone(),
                host_path: PathBuf::from(dir),
                writable: m.writable && write_granted,
            });
        }

        Ok(EffectiveGrants {
            egress: EgressPolicy {
                hosts: AllowedHosts::from_entries(allowed),
                networks: BlockedNetworks {
                    allow_loopback: grant.allow_loopback,
                    allow_private: grant.allow_private,
                    allow_link_local: grant.allow_link_local,
                },
            },
            credential_hosts: AllowedHosts::from_entries(with_credentials),
            redirect_hosts: AllowedHosts::from_entries(redirect_hosts),
            mounts: effective_mounts,
            not_granted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, url: &str, credentials: bool) -> DeclaredEndpoint {
        DeclaredEndpoint {
            name: name.into(),
            url: url.into(),
            credentials,
        }
    }

    #[test]
    fn redirect_targets_need_a_grant_and_never_take_credentials() {
        let grant = OperatorGrant {
            hosts: vec![
                "https://api.example.com".into(),
                "https://*.cdn.example.net".into(),
            ],
            ..OperatorGrant::default()
        };
        let g = EffectiveGrants::resolve_with_redirects(
            &[ep("api", "https://api.example.com", true)],
            &[
                ep("api", "https://*.cdn.example.net", false),
                ep("api", "https://files.other.example", false),
            ],
            &[],
            &BTreeMap::new(),
            &grant,
        )
        .unwrap();
        let cdn = url::Url::parse("https://eu1.cdn.example.net/f").unwrap();
        assert!(g.redirect_hosts.matches(&cdn));
        assert!(!g.egress.hosts.matches(&cdn), "not a first hop");
        assert!(!g.credential_hosts.matches(&cdn));
        assert!(
            !g.redirect_hosts
                .matches(&url::Url::parse("https://files.other.example/x").unwrap())
        );
        assert!(
            g.not_granted
                .iter()
                .any(|l| l.contains("redirect target https://files.other.example"))
        );
    }

    #[test]
    fn no_grant_means_no_endpoint_and_no_mount() {
        let g = EffectiveGrants::resolve(
            &[ep("api", "https://api.example.com", true)],
            &[DeclaredMount {
                guest_path: "/input".into(),
                config_field: "folder".into(),
                writable: false,
            }],
            &BTreeMap::from([("folder".to_string(), "/data".to_string())]),
            &OperatorGrant::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(g.egress.hosts.is_empty());
        assert!(g.mounts.is_empty());
        assert_eq!(g.not_granted.len(), 2);
    }

    #[test]
    fn a_wildcard_grant_covers_a_declared_tenant_host() {
        let grant = OperatorGrant {
            hosts: vec!["https://*.sharepoint.com".into()],
            ..Default::default()
        };
        let g = EffectiveGrants::resolve(
            &[
                ep("tenant", "https://contoso.sharepoint.com", true),
                ep("cdn", "https://cdn.example.net", false),
            ],
            &[],
            &BTreeMap::new(),
            &grant,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            g.egress.hosts.matches(
                &"https://contoso.sharepoint.com/x"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}"))
            )
        );
        assert!(
            !g.egress.hosts.matches(
                &"https://fabrikam.sharepoint.com/x"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}"))
            )
        );
        assert_eq!(
            g.not_granted,
            vec!["endpoint cdn (https://cdn.example.net) is declared but not granted"]
        );
    }

    #[test]
    fn credentials_go_only_to_endpoints_that_take_them() {
        let grant = OperatorGrant {
            hosts: vec!["https://*.example.com".into()],
            ..Default::default()
        };
        let g = EffectiveGrants::resolve(
            &[
                ep("api", "https://api.example.com", true),
                ep("dl", "https://dl.example.com", false),
            ],
            &[],
            &BTreeMap::new(),
            &grant,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dl = "https://dl.example.com/f"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(g.egress.hosts.matches(&dl));
        assert!(!g.credential_hosts.matches(&dl));
    }

    #[test]
    fn write_access_needs_both_sides() {
        let mounts = [
            DeclaredMount {
                guest_path: "/input".into(),
                config_field: "folder".into(),
                writable: false,
            },
            DeclaredMount {
                guest_path: "/output".into(),
                config_field: "output".into(),
                writable: true,
            },
        ];
        let config = BTreeMap::from([
            ("folder".to_string(), "/in".to_string()),
            ("output".to_string(), "/out".to_string()),
        ]);
        let read_only = OperatorGrant {
            mounts: vec!["/input".into(), "/output".into()],
            write: vec!["/input".into()],
            ..Default::default()
        };
        let g = EffectiveGrants::resolve(&[], &mounts, &config, &read_only)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            g.mounts.iter().all(|m| !m.writable),
            "the input was never asked to be writable; the output was not granted write"
        );
        let rw = OperatorGrant {
            write: vec!["/output".into()],
            ..read_only
        };
        let g =
            EffectiveGrants::resolve(&[], &mounts, &config, &rw).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            g.mounts
                .iter()
                .any(|m| m.guest_path == "/output" && m.writable)
        );
    }

    #[test]
    fn a_bad_grant_entry_is_an_error_naming_it() {
        let grant = OperatorGrant {
            hosts: vec!["api.example.com".into()],
            ..Default::default()
        };
        let err = EffectiveGrants::resolve(&[], &[], &BTreeMap::new(), &grant).unwrap_err();
        assert_eq!(
            err.to_string(),
            "grant host \"api.example.com\" does not contain a scheme (write it as https://host)"
        );
    }
}
