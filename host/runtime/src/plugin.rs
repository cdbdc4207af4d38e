//! Loaded plugins and the sessions that call them.
//!
//! A [`Plugin`] is compiled once (or loaded from the cache) and pre-linked
//! (`InstancePre`); its manifest is read once with `describe` and validated.
//! A [`Session`] is a live instance bound to one integration: its grants,
//! mounts, credentials and state. Sessions are cheap (microseconds with the
//! pooling allocator) and disposable: after a trap, a timeout or a limit, the
//! session refuses further calls and the caller opens a new one, so a failed
//! instance never serves another call.
//!
//! Every call runs under the same guards: an epoch deadline checked every
//! tick against the CPU budget (time in host calls excluded), a wall-clock
//! timeout around the whole call, the memory limiter, output budgets for
//! logs and stdio, and size checks on what the plugin returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_policy::EffectiveGrants;
use proofpix_policy::grants::{DeclaredEndpoint, DeclaredMount};
use proofpix_policy::manifest::{FieldShape, ManifestShape, MountShape};
use proofpix_policy::template::{self, TemplateError};
use sha2::{Digest, Sha256};

use crate::bindings::latest::exports::proofpix::plugin::manifest::{
    AuthScheme, FieldKind, PluginInfo,
};
use crate::bindings::{latest, since_v0_1_0 as v01, since_v0_2_0 as v02};
use crate::cache::CacheOutcome;
use crate::context::IntegrationContext;
use crate::egress_http::PluginSecrets;
use crate::engine::Runtime;
use crate::error::LoadError;
use crate::host_state::HostState;

/// A pre-linked component, per contract version.
#[derive(Clone)]
pub(crate) enum Pre {
    V0_1(v01::ConnectorPre<HostState>),
    V0_2(v02::ConnectorPre<HostState>),
    V0_3(latest::ConnectorPre<HostState>),
}

/// The contract package every connector exports.
const CONTRACT_PACKAGE: &str = "proofpix:plugin";
/// Fuel given per call when fuel metering is on (the plugin test harness).
pub(crate) const FUEL_PER_CALL: u64 = 10_000_000_000;

struct PluginInner {
    runtime: Runtime,
    pre: Pre,
    info: PluginInfo,
    label: Arc<str>,
    content_hash: String,
    contract_version: String,
    secret_fields: Arc<[String]>,
    size_bytes: usize,
    cache: CacheOutcome,
    /// Recent runtime failures (traps, limits, timeouts) across every
    /// session of this plugin version: the host's circuit breaker reads it.
    failures: Mutex<std::collections::VecDeque<(Instant, String)>>,
}

/// Failures remembered per plugin version.
const MAX_REMEMBERED_FAILURES: usize = 64;

/// A compiled, linked and described plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.inner.info.id)
            .field("version", &self.inner.info.version)
            .field("content_hash", &self.inner.content_hash)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Compiles (or loads from the cache), links and describes a plugin.
    ///
    /// # Errors
    /// Invalid components, components that are not connectors or import
    /// something the host does not provide, unsupported contract versions,
    /// and invalid manifests.
    pub async fn load(&self, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let content_hash = hex::encode(Sha256::digest(wasm));
        let engine = &self.inner.engine;
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::Invalid(
                "the file does not start with the \\0asm magic bytes of a WebAssembly binary"
                    .into(),
            ));
        }
        // wasmtime validates its input, but a compiler bug must cost this one
        // plugin, not the daemon.
        let compiled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.inner.cache {
                Some(cache) => cache.load_or_compile(engine, wasm, &content_hash),
                None => wasmtime::component::Component::new(engine, wasm)
                    .map(|c| (c, CacheOutcome::Disabled)),
            }))
            .map_err(|_| LoadError::Invalid("the compiler panicked on this input".into()))?;
        let (component, cache) =
            compiled.map_err(|e| LoadError::Invalid(one_line(&format!("{e:#}"))))?;

        let contract_version = contract_version(engine, &component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let not_a_connector = |e: wasmtime::Error| LoadError::NotAConnector(format!("{e:#}"));
        let pre = if contract_version.starts_with("0.1.") {
            Pre::V0_1(v01::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else if contract_version.starts_with("0.2.") {
            Pre::V0_2(v02::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else {
            Pre::V0_3(latest::ConnectorPre::new(pre).map_err(not_a_connector)?)
        };

        // Describe in a throwaway instance with no grants and no config.
        let probe = Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre: pre.clone(),
                info: placeholder_info(),
                label: Arc::from(format!("(loading {})", &content_hash[..12])),
                content_hash: content_hash.clone(),
                contract_version: contract_version.clone(),
                secret_fields: Arc::from(Vec::new()),
                size_bytes: wasm.len(),
                cache,
                failures: Mutex::default(),
            }),
        };
        let mut session = probe.session(&IntegrationContext::new("describe")).await?;
        let info = session.describe().await?;
        validate_manifest(&info)?;
        let secret_fields: Vec<String> = info
            .config
            .iter()
            .filter(|f| f.secret)
            .map(|f| f.name.clone())
            .collect();
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre,
                label: Arc::from(format!("'{}' {}", info.id, info.version)),
                info,
                content_hash,
                contract_version,
                secret_fields: Arc::from(secret_fields),
                size_bytes: wasm.len(),
                cache,
                failures: Mutex::default(),
            }),
        })
    }
}

impl Plugin {
    /// The manifest.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// `'id' version`, as used in messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// SHA-256 of the component bytes, hex.
    pub fn content_hash(&self) -> &str {
        &self.inner.content_hash
    }

    /// The contract version the plugin was built against.
    pub fn contract_version(&self) -> &str {
        &self.inner.contract_version
    }

    /// Size of the component in bytes.
    pub fn size_bytes(&self) -> usize {
        self.inner.size_bytes
    }

    /// Runtime failures (traps, limits, timeouts) of this plugin version in
    /// the last `within`, newest last.
    pub fn recent_failures(&self, within: Duration) -> Vec<String> {
        let now = Instant::now();
        self.inner
            .failures
            .lock()
            .map(|f| {
                f.iter()
                    .filter(|(t, _)| now.duration_since(*t) <= within)
                    .map(|(_, m)| m.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn record_failure(&self, message: String) {
        if let Ok(mut f) = self.inner.failures.lock() {
            if f.len() >= MAX_REMEMBERED_FAILURES {
                f.pop_front();
            }
            f.push_back((Instant::now(), message));
        }
    }

    /// Whether loading hit the compiled-artifact cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// Resolves the plugin's endpoint templates for an integration and
    /// intersects them with the operator's grant.
    ///
    /// # Errors
    /// Unparsable grants or endpoints, and granted mounts without a directory.
    pub fn effective_grants(&self, ctx: &IntegrationContext) -> Result<EffectiveGrants, LoadError> {
        let info = &self.inner.info;
        let auth = ctx
            .credentials
            .as_ref()
            .map(|c| c.context())
            .unwrap_or_default();
        let config = visible_config(&ctx.config, &self.inner.secret_fields);
        let mut endpoints = Vec::new();
        let mut redirect_targets = Vec::new();
        let mut unresolved = Vec::new();
        for ep in &info.endpoints {
            for target in &ep.redirect_targets {
                match template::resolve(target, &config, &auth) {
                    Ok(url) => redirect_targets.push(DeclaredEndpoint {
                        name: ep.name.clone(),
                        url,
                        credentials: false,
                    }),
                    Err(TemplateError::Missing(what)) => unresolved.push(format!(
                        "a redirect target of endpoint {} waits for {{{what}}}",
                        ep.name
                    )),
                    Err(e) => {
                        return Err(LoadError::Manifest {
                            plugin: self.label().to_string(),
                            reason: format!("redirect target of endpoint {}: {e}", ep.name),
                        });
                    }
                }
            }
            match template::resolve(&ep.url, &config, &auth) {
                Ok(url) => endpoints.push(DeclaredEndpoint {
                    name: ep.name.clone(),
                    url,
                    credentials: ep.credentials,
                }),
                Err(TemplateError::Missing(what)) => {
                    unresolved.push(format!("endpoint {} waits for {{{what}}}", ep.name))
                }
                Err(e) => {
                    return Err(LoadError::Manifest {
                        plugin: self.label().to_string(),
                        reason: format!("endpoint {}: {e}", ep.name),
                    });
                }
            }
        }
        let mounts: Vec<DeclaredMount> = info
            .filesystem
            .iter()
            .map(|m| DeclaredMount {
                guest_path: m.guest_path.clone(),
                config_field: m.config_field.clone(),
                writable: m.writable,
            })
            .collect();
        let mut grants = EffectiveGrants::resolve_with_redirects(
            &endpoints,
            &redirect_targets,
            &mounts,
            &config,
            &ctx.grant,
        )
        .map_err(|e| LoadError::Grant {
            plugin: self.label().to_string(),
            reason: e.to_string(),
        })?;
        grants.not_granted.extend(unresolved);
        Ok(grants)
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }

    pub(crate) fn label_arc(&self) -> Arc<str> {
        self.inner.label.clone()
    }

    /// Names of the config fields declared secret.
    pub(crate) fn secret_fields(&self) -> &[String] {
        &self.inner.secret_fields
    }

    pub(crate) fn secret_fields_arc(&self) -> Arc<[String]> {
        self.inner.secret_fields.clone()
    }

    /// Whether calls are metered with fuel (the plugin test harness).
    pub(crate) fn fuel_metered(&self) -> bool {
        self.inner.runtime.inner.fuel
    }
}

/// Config the guest may read: without values of fields declared secret.
pub(crate) fn visible_config(
    config: &BTreeMap<String, String>,
    secret_fields: &[String],
) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(k, _)| !secret_fields.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Collapses a multi-line error into one line of at most 300 characters.
fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&joined, 300)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Reads the contract version from the component's exports and checks the
/// host serves it.
fn contract_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<String, LoadError> {
    let ty = component.component_type();
    let manifest = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .find(|name| name.starts_with(&format!("{CONTRACT_PACKAGE}/manifest@")))
        .ok_or_else(|| {
            LoadError::NotAConnector(format!(
                "it exports no {CONTRACT_PACKAGE}/manifest interface"
            ))
        })?;
    let version = manifest
        .rsplit_once('@')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let unsupported = || LoadError::UnsupportedVersion {
        found: version.clone(),
        supported: "0.1.x, 0.2.x and 0.3.x".into(),
    };
    let found = semver_triple(&version).ok_or_else(unsupported)?;
    let served = [
        (v01::MIN_VERSION, v01::MAX_VERSION),
        (v02::MIN_VERSION, v02::MAX_VERSION),
        (latest::MIN_VERSION, latest::MAX_VERSION),
    ];
    if !served
        .iter()
        .any(|(min, max)| found >= *min && found <= *max)
    {
        return Err(unsupported());
    }
    Ok(version)
}

/// `major.minor.patch` as numbers; `None` for anything else (a pre-release
/// or build suffix included: the host serves released contracts only).
fn semver_triple(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    });
    let triple = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(triple)
}

fn placeholder_info() -> PluginInfo {
    PluginInfo {
        id: String::new(),
        version: String::new(),
        display_name: String::new(),
        platform: String::new(),
        description: String::new(),
        capabilities: Vec::new(),
        config: Vec::new(),
        auth: AuthScheme::None,
        endpoints: Vec::new(),
        filesystem: Vec::new(),
        write_back_batch_size: 1,
        write_back_idempotent: false,
        remediations: Vec::new(),
        oauth_dialect: None,
    }
}

/// The integration's secrets as the HTTP import may use them: the sealed
/// URL fields (declared secret, kind url, not an auth scheme's field) and
/// every secret value, declared or used by the credentials, for scrubbing.
pub(crate) fn plugin_secrets(info: &PluginInfo, ctx: &IntegrationContext) -> PluginSecrets {
    let auth_fields = auth_secret_fields(&info.auth);
    let sealed_urls = info
        .config
        .iter()
        .filter(|f| {
            f.secret && matches!(f.kind, FieldKind::Url) && !auth_fields.contains(&f.name.as_str())
        })
        .filter_map(|f| Some((f.name.clone(), ctx.secrets.get(&f.name)?.clone())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let values = ctx
        .secrets
        .values()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    PluginSecrets {
        sealed_urls,
        values,
    }
}

/// The secret fields an auth scheme sends itself (never usable as a URL).
fn auth_secret_fields(auth: &AuthScheme) -> Vec<&str> {
    match auth {
        AuthScheme::None => vec![],
        AuthScheme::ApiKey(k) => vec![k.secret_field.as_str()],
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            o.client_secret_field.iter().map(String::as_str).collect()
        }
        AuthScheme::Oauth2Password(p) => p
            .oauth
            .client_secret_field
            .iter()
            .chain(p.password_suffix_field.iter())
            .map(String::as_str)
            .chain([p.password_field.as_str()])
            .collect(),
        AuthScheme::JwtBearer(j) => vec![j.private_key_field.as_str()],
    }
}

/// Checks a manifest is usable, by the rules in `proofpix_policy::manifest`.
fn validate_manifest(info: &PluginInfo) -> Result<(), LoadError> {
    fn field(name: &str, secret: bool) -> FieldShape<'_> {
        FieldShape { name, secret }
    }
    let mut auth_fields = Vec::new();
    match &info.auth {
        AuthScheme::None => {}
        AuthScheme::ApiKey(k) => auth_fields.push(field(&k.secret_field, true)),
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            auth_fields.push(field(&o.client_id_field, false));
            auth_fields.extend(o.client_secret_field.iter().map(|s| field(s, true)));
        }
        AuthScheme::Oauth2Password(p) => {
            auth_fields.push(field(&p.oauth.client_id_field, false));
            auth_fields.extend(p.oauth.client_secret_field.iter().map(|s| field(s, true)));
            auth_fields.push(field(&p.username_field, false));
            auth_fields.push(field(&p.password_field, true));
            auth_fields.extend(p.password_suffix_field.iter().map(|s| field(s, true)));
        }
        AuthScheme::JwtBearer(j) => {
            auth_fields.push(field(&j.issuer_field, false));
            auth_fields.extend(j.subject_field.iter().map(|s| field(s, false)));
            auth_fields.push(field(&j.private_key_field, true));
        }
    }
    let shape = ManifestShape {
        id: &info.id,
        version: &info.version,
        write_back_batch_size: info.write_back_batch_size,
        config: info
            .config
            .iter()
            .map(|f| field(&f.name, f.secret))
            .collect(),
        auth_fields,
        mounts: info
            .filesystem
            .iter()
            .map(|m| MountShape {
                guest_path: &m.guest_path,
                config_field: &m.config_field,
            })
            .collect(),
    };
    shape.validate().map_err(|reason| LoadError::Manifest {
        plugin: format!("'{}' {}", info.id, info.version),
        reason,
    })
}

#[cfg(test)]
mod secret_placement_tests {
    use super::*;
    use crate::bindings::latest::exports::proofpix::plugin::manifest::{ApiKeyAuth, ConfigField};

    fn field(name: &str, kind: FieldKind, secret: bool) -> ConfigField {
        ConfigField {
            name: name.into(),
            label: name.into(),
            help: String::new(),
            kind,
            required: false,
            secret,
            default_value: None,
            choices: Vec::new(),
            placeholder: None,
        }
    }

    /// Only a secret url field the auth scheme does not use can be a sealed
    /// URL; every secret value is scrubbed.
    #[test]
    fn only_secret_url_fields_outside_the_auth_scheme_are_sealed_urls() {
        let mut info = placeholder_info();
        info.config = vec![
            field("hook", FieldKind::Url, true),
            field("api_key", FieldKind::Url, true),
            field("token", FieldKind::Text, true),
            field("base", FieldKind::Url, false),
        ];
        info.auth = AuthScheme::ApiKey(ApiKeyAuth {
            secret_field: "api_key".into(),
            header: "x-api-key".into(),
            prefix: String::new(),
        });
        let ctx = IntegrationContext::new("x")
            .with_config("base", "https://api.example.com")
            .with_secret("hook", "https://hooks.example.com/h/1")
            .with_secret("api_key", "https://looks-like-a-url.example.com/k")
            .with_secret("token", "tok-123456789");
        let s = plugin_secrets(&info, &ctx);
        assert_eq!(s.sealed_urls.keys().collect::<Vec<_>>(), vec!["hook"]);
        assert_eq!(s.values.len(), 3);
    }
}
