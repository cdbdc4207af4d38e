//! Installing, upgrading, quarantining and removing plugins.
//!
//! Threat: the plugin file and its author. A file must carry a valid
//! signature from a key in the operator's trust store (or the built-in
//! first-party key); unsigned or untrusted files install only with an
//! explicit development flag, and a tampered file (content not matching its
//! signed hash) never installs. The permissions a plugin asks for (network
//! endpoints, filesystem mounts, authentication, capabilities) are shown and
//! must be granted at install; an upgrade that asks for more must be granted
//! again.
//!
//! Upgrades happen while the daemon runs: the new version compiles before
//! anything changes, then one map entry is swapped. Sessions already open
//! keep the old version until they end; new sessions get the new one. Every
//! enabled integration of the plugin is checked with the new version, and a
//! failed check rolls the swap back. A version that then traps repeatedly is
//! rolled back too, and a plugin that keeps trapping with no older version to
//! return to is quarantined with the reason shown (a circuit breaker).

use std::path::PathBuf;
use std::time::Duration;

use proofpix_model::PluginError;
use proofpix_runtime::contract::{AuthScheme, Capability, FieldKind, PluginInfo};
use proofpix_runtime::{CallError, LoadError, Plugin};
use proofpix_signing::{SigningError, TrustStore};
use proofpix_store::{AuditEvent, PluginRecord};

use crate::{Host, ServiceError};

/// Failures within [`BREAKER_WINDOW`] that trip the circuit breaker.
pub const BREAKER_FAILURES: usize = 5;
/// The circuit breaker's window.
pub const BREAKER_WINDOW: Duration = Duration::from_secs(600);

/// How an install proceeds.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Accept unsigned or untrusted plugins (development only).
    pub allow_unsigned: bool,
    /// Permissions granted: each as shown by [`permissions`], or `all`.
    pub grants: Vec<String>,
    /// Accept a file signed by another key than the one the plugin id is
    /// pinned to, and pin the id to the new key (audited as `plugin.repin`).
    pub repin: bool,
}

/// What an install did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The plugin now active.
    pub plugin: Plugin,
    /// Who signed it, when signed.
    pub signer: Option<String>,
    /// The version it replaced.
    pub upgraded_from: Option<String>,
    /// The permissions granted.
    pub permissions: Vec<String>,
}

/// The permissions a plugin asks for, one readable line each.
pub fn permissions(info: &PluginInfo) -> Vec<String> {
    let mut out = Vec::new();
    for c in &info.capabilities {
        out.push(format!(
            "capability:{}",
            match c {
                Capability::Source => "source",
                Capability::Notifier => "notifier",
                Capability::Events => "events",
                Capability::Remediation => "remediation",
            }
        ));
    }
    out.push(format!(
        "auth:{}",
        match &info.auth {
            AuthScheme::None => "none",
            AuthScheme::ApiKey(_) => "api-key",
            AuthScheme::Oauth2ClientCredentials(_) => "oauth2-client-credentials",
            AuthScheme::Oauth2AuthorizationCode(_) => "oauth2-authorization-code",
            AuthScheme::Oauth2Password(_) => "oauth2-password",
            AuthScheme::JwtBearer(_) => "jwt-bearer",
        }
    ));
    for e in &info.endpoints {
        out.push(format!(
            "network:{}{}",
            e.url,
            if e.credentials {
                " (with credentials)"
            } else {
                ""
            }
        ));
        // Contract 0.3: hosts a response may redirect to, reached without credentials.
        for t in &e.redirect_targets {
            out.push(format!("network:{t} (redirect target)"));
        }
    }
    for m in &info.filesystem {
        out.push(format!(
            "files:{}:{}",
            m.guest_path,
            if m.writable { "rw" } else { "ro" }
        ));
    }
    // Where credentials go: the URLs the host posts secrets to, and every
    // secret field with the hosts it can reach. A change to any of these lines
    // (an upgrade moving the token URL, adding a secret field, adding an
    // endpoint with credentials) is a permission not granted yet.
    let (token_url, authorize_url) = match &info.auth {
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            (Some(o.token_url.clone()), o.authorize_url.clone())
        }
        AuthScheme::Oauth2Password(p) => (
            Some(p.oauth.token_url.clone()),
            p.oauth.authorize_url.clone(),
        ),
        AuthScheme::JwtBearer(j) => (Some(j.token_url.clone()), None),
        AuthScheme::None | AuthScheme::ApiKey(_) => (None, None),
    };
    if let Some(u) = &token_url {
        out.push(format!("token-url:{u}"));
    }
    if let Some(u) = &authorize_url {
        out.push(format!("authorize-url:{u}"));
    }
    let credential_endpoints: Vec<&str> = info
        .endpoints
        .iter()
        .filter(|e| e.credentials)
        .map(|e| e.url.as_str())
        .collect();
    let to_token_url =
        |u: &Option<String>| format!("the token URL {}", u.as_deref().unwrap_or("(none)"));
    for f in info.config.iter().filter(|f| f.secret) {
        let destination = match &info.auth {
            AuthScheme::ApiKey(k) if k.secret_field == f.name => format!(
                "header {} on the endpoints with credentials: {}",
                k.header,
                if credential_endpoints.is_empty() {
                    "(none)".to_string()
                } else {
                    credential_endpoints.join(", ")
                }
            ),
            AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o)
                if o.client_secret_field.as_deref() == Some(f.name.as_str()) =>
            {
                to_token_url(&token_url)
            }
            AuthScheme::Oauth2Password(p)
                if p.password_field == f.name
                    || p.password_suffix_field.as_deref() == Some(f.name.as_str())
                    || p.oauth.client_secret_field.as_deref() == Some(f.name.as_str()) =>
            {
                to_token_url(&token_url)
            }
            AuthScheme::JwtBearer(j) if j.private_key_field == f.name => format!(
                "signs assertions posted to {} (the key itself is never sent)",
                to_token_url(&token_url)
            ),
            _ if matches!(f.kind, FieldKind::Url) => {
                "any host you grant for it (the host calls the whole URL)".to_string()
            }
            _ => "never sent (host-side checks only)".to_string(),
        };
        out.push(format!("secret:{} -> {destination}", f.name));
    }
    out
}

/// Where a plugin's own log is shown: the CLI's `-v`, or the daemon's log at `info`. Errors
/// about a plugin that crashed end with it, because the crash's message (a Rust panic, a
/// JavaScript or Python exception) is in that log and nowhere else.
pub const PLUGIN_LOG_HINT: &str =
    "run with -v to see the plugin's log (PROOFPIX_LOG=info for the daemon)";

/// A load failure explained for the plugin's author: which call failed and what to check.
///
/// - `describe` crashed: a manifest the bindings cannot lower, most often a list field left
///   out (a JavaScript `undefined` where the WIT has `list<...>`), so the crash happens in
///   the generated glue before the host sees a manifest.
/// - A link failure on `wasi:http`: componentize-js's default build imports it for `fetch()`;
///   the host does not provide it (requests go through the contract's `http`).
///
/// Other failures are returned as they are.
pub fn explain_load_error(e: LoadError) -> ServiceError {
    match &e {
        LoadError::Call(CallError::Trap { op: "describe", .. }) => ServiceError::Plugin(format!(
            "{e}. The plugin's `describe` call failed, so the host has no manifest: check that \
             it returns every field of `plugin-info`, with each list field present (`[]` when \
             empty): capabilities, config, endpoints, filesystem, remediations, and `choices` \
             in every config field; {PLUGIN_LOG_HINT}"
        )),
        LoadError::Link(m) if m.contains("wasi:http") => ServiceError::Plugin(format!(
            "{e}. The component imports wasi:http, which plugins do not get: make requests \
             through the contract's `http` interface, and build a JavaScript plugin with \
             `--disable http fetch-event` (see sdk/examples/js-webhook)"
        )),
        _ => ServiceError::Load(e),
    }
}

/// "Not applicable" for a `check` the plugin does not offer: a plugin that is not a source
/// (a notifier) may answer `check` with "not supported", as the contract and the SDK's
/// defaults say it may. That is no failed connection, so it neither fails `integration test`
/// nor rolls back an upgrade. A source's `check` must work: its failure stays a failure.
pub(crate) fn check_not_applicable(info: &PluginInfo, e: &CallError) -> Option<String> {
    if info.capabilities.contains(&Capability::Source) {
        return None;
    }
    match e.plugin_error() {
        Some(PluginError::Fatal(m)) if m.to_lowercase().contains("not supported") => Some(
            "not applicable: the plugin offers no connection check; its first notification is \
             the test"
                .to_string(),
        ),
        _ => None,
    }
}

impl Host {
    /// Whether this host trusts the first-party key built into the binary:
    /// always for a release build, and for a development build only when the
    /// operator opted in (`trust_development_build`).
    pub fn trusts_first_party_key(&self) -> bool {
        !proofpix_plugin_artifacts::FIRST_PARTY_DEVELOPMENT || self.options.trust_development_build
    }

    /// The keys plugin signatures are checked against: the built-in
    /// first-party key (see [`Host::trusts_first_party_key`]) and every
    /// `*.pub` in `<data dir>/trust`. Revoked keys are never in it.
    pub fn trust_store(&self) -> TrustStore {
        let mut trust = TrustStore::default();
        if self.trusts_first_party_key()
            && let Ok(k) = proofpix_signing::PublicKey::from_line(
                proofpix_plugin_artifacts::FIRST_PARTY_PUBLIC_KEY,
            )
        {
            trust.add(k);
        }
        if let Some(dir) = &self.options.data_dir
            && let Err(e) = trust.load_dir(&dir.join("trust"))
        {
            tracing::error!("a trust store key was ignored: {e}");
        }
        trust
    }

    /// Loads the plugins shipped inside the binary, verified like any other,
    /// and records them pinned to the binary's first-party key. A development
    /// build does this only when the operator opted in; otherwise it logs one
    /// line saying how, and the host runs without them.
    pub(crate) async fn install_first_party(&self) -> Result<(), ServiceError> {
        if !self.trusts_first_party_key() {
            tracing::warn!(
                "not loading the built-in plugins: this is a development build (no PROOFPIX_FIRST_PARTY_KEY), so they are signed with a key made by the build; to trust them set `trust_development_build = true` under [plugins] in the config, or pass --trust-development-build"
            );
            return Ok(());
        }
        let trust = self.trust_store();
        for (id, file) in proofpix_plugin_artifacts::first_party() {
            if !self.wants_plugin(id) {
                continue;
            }
            // A build whose embedded plugins do not match their signature fails
            // loudly instead of running unverified code.
            let verified = proofpix_signing::verify(file, &trust).map_err(|e| {
                ServiceError::Plugin(format!("the built-in {id} plugin failed verification: {e}"))
            })?;
            let plugin = self.add_plugin(&verified.content).await?;
            let previous = self.store.plugin(id)?;
            if previous.as_ref().is_none_or(|r| {
                r.content_hash != plugin.content_hash()
                    || r.key_id.as_deref() != Some(verified.key_id.as_str())
            }) {
                // The binary is the operator's root of trust for its own plugins: a
                // record pinned to another key (an earlier development build's, or
                // a key that installed this id while built-in plugins were off) is
                // re-pinned, and the re-pin audited.
                if let Some(old) = previous.as_ref().and_then(|r| r.key_id.clone())
                    && old != verified.key_id
                {
                    let _ =
                        self.store
                            .audit(&AuditEvent::new("proofpix", "plugin.repin", id).details(
                                serde_json::json!({
                                    "from_key": old,
                                    "to_key": verified.key_id,
                                    "reason": "built-in plugin of this binary",
                                }),
                            ));
                }
                let record = PluginRecord {
                    id: id.to_string(),
                    version: plugin.info().version.clone(),
                    content_hash: plugin.content_hash().to_string(),
                    capabilities: permissions(plugin.info()),
                    installed_at: self.store.now(),
                    signer: Some(verified.signer),
                    key_id: Some(verified.key_id),
                    previous_version: None,
                    quarantined: None,
                };
                self.store.put_plugin(&record, "proofpix")?;
            }
        }
        Ok(())
    }

    /// Whether this host loads plugin `id` (see [`crate::HostOptions::only_plugins`]).
    fn wants_plugin(&self, id: &str) -> bool {
        self.options
            .only_plugins
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == id))
    }

    fn plugins_dir(&self) -> Option<PathBuf> {
        self.options.data_dir.as_ref().map(|d| d.join("plugins"))
    }

    /// Verifies, loads and activates a plugin file (an install or an
    /// upgrade). See the module docs for the checks.
    ///
    /// # Errors
    /// Signature, permission, load, store errors; a failed upgrade check
    /// (rolled back).
    pub async fn install_plugin(
        &self,
        file: &[u8],
        options: &InstallOptions,
        actor: &str,
    ) -> Result<InstallReport, ServiceError> {
        let trust = self.trust_store();
        let (content, signer, key_id) = match proofpix_signing::verify(file, &trust) {
            Ok(v) => (v.content, Some(v.signer), Some(v.key_id)),
            Err(
                e @ (SigningError::Tampered { .. }
                | SigningError::Malformed(_)
                | SigningError::NotWasm
                | SigningError::BadSignature { .. }),
            ) => {
                return Err(ServiceError::Plugin(format!("refused: {e}")));
            }
            Err(e) if options.allow_unsigned => {
                tracing::warn!(
                    "installing a plugin that fails signature checks, as the development flag allows: {e}"
                );
                let (content, _) = proofpix_signing::split(file)
                    .map_err(|e| ServiceError::Plugin(e.to_string()))?;
                (content.to_vec(), None, None)
            }
            Err(e) => {
                return Err(ServiceError::Plugin(format!(
                    "refused: {e}; pass the development flag to install it anyway"
                )));
            }
        };
        let plugin = self
            .runtime
            .load(&content)
            .await
            .map_err(explain_load_error)?;
        let info = plugin.info().clone();
        let asked = permissions(&info);
        let previous_record = self.store.plugin(&info.id)?;
        // The id is pinned to the key that first installed it: another key
        // (or no signature at all) takes it over only by an explicit re-pin.
        let pinned = previous_record.as_ref().and_then(|r| {
            r.key_id.clone().map(|k| {
                (
                    k,
                    r.signer.clone().unwrap_or_else(|| "unknown signer".into()),
                )
            })
        });
        let repinned = match &pinned {
            Some((old_key, old_signer)) if key_id.as_deref() != Some(old_key.as_str()) => {
                let new = match (&key_id, &signer) {
                    (Some(k), Some(s)) => format!("key {k} ({s})"),
                    _ => "no trusted signature".to_string(),
                };
                if !options.repin {
                    return Err(ServiceError::Plugin(format!(
                        "refused: plugin {} is pinned to key {old_key} ({old_signer}), which installed it; this file has {new}. If the plugin really changed hands, install it again with --repin (audited)",
                        info.id
                    )));
                }
                Some(old_key.clone())
            }
            _ => None,
        };
        let previously_granted: Vec<String> = previous_record
            .as_ref()
            .map(|r| r.capabilities.clone())
            .unwrap_or_default();
        let all = options.grants.iter().any(|g| g == "all");
        let missing: Vec<&String> = asked
            .iter()
            .filter(|p| !all && !options.grants.contains(p) && !previously_granted.contains(p))
            .collect();
        if !missing.is_empty() {
            return Err(ServiceError::Plugin(format!(
                "plugin {} asks for permissions that are not granted: {}; grant them with --grant (one per permission, or --grant all)",
                plugin.label(),
                missing
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }

        let old = self.plugin(&info.id);
        let upgraded_from = old
            .as_ref()
            .filter(|o| {
                o.info().version != info.version || o.content_hash() != plugin.content_hash()
            })
            .map(|o| o.info().version.clone());
        self.swap_plugin(plugin.clone());
        if let Some(old) = &old
            && upgraded_from.is_some()
            && let Err(reason) = self.check_integrations_with(&info.id).await
        {
            self.swap_plugin(old.clone());
            let _ = self.store.audit(
                &AuditEvent::new(actor, "plugin.rollback", &info.id)
                    .outcome("failed")
                    .details(serde_json::json!({"from": info.version, "to": old.info().version, "reason": reason})),
            );
            return Err(ServiceError::Plugin(format!(
                "the upgrade of {} to {} was rolled back: {reason}",
                info.id, info.version
            )));
        }

        // Persist the file (the previous one kept for rollback) and the record.
        if let Some(dir) = self.plugins_dir() {
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("{}.wasm", info.id));
                if upgraded_from.is_some() && path.exists() {
                    std::fs::rename(&path, dir.join(format!("{}.previous.wasm", info.id)))?;
                }
                let tmp = dir.join(format!(".{}.wasm.tmp", info.id));
                std::fs::write(&tmp, file)?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| {
                ServiceError::Internal(format!("cannot store the plugin file: {e}"))
            })?;
        }
        // On a store other nodes share, they load the file from there (before the record
        // names it, so no node ever reads a record whose file is missing).
        self.store
            .put_plugin_file(&info.id, plugin.content_hash(), file)?;
        let granted = if all {
            asked.clone()
        } else {
            asked
                .iter()
                .filter(|p| options.grants.contains(p) || previously_granted.contains(p))
                .cloned()
                .collect()
        };
        let record = PluginRecord {
            id: info.id.clone(),
            version: info.version.clone(),
            content_hash: plugin.content_hash().to_string(),
            capabilities: granted.clone(),
            installed_at: self.store.now(),
            signer: signer.clone(),
            key_id,
            previous_version: upgraded_from
                .clone()
                .or_else(|| previous_record.and_then(|r| r.previous_version)),
            quarantined: None,
        };
        self.store.put_plugin(&record, actor)?;
        // The replaced version's native code is dead weight in the cache (tens of MB for a
        // Python component); a rollback to it compiles it again.
        if let Some(old) = &old
            && upgraded_from.is_some()
            && old.content_hash() != plugin.content_hash()
        {
            self.evict_compiled(old.content_hash());
        }
        if let Some(old_key) = &repinned {
            let _ = self
                .store
                .audit(&AuditEvent::new(actor, "plugin.repin", &info.id).details(
                    serde_json::json!({
                        "from_key": old_key,
                        "to_key": record.key_id,
                        "from_signer": pinned.as_ref().map(|(_, s)| s),
                        "to_signer": signer,
                    }),
                ));
        }
        self.tell_other_nodes_about_plugins();
        let _ = self.store.audit(
            &AuditEvent::new(
                actor,
                if upgraded_from.is_some() {
                    "plugin.upgrade"
                } else {
                    "plugin.install"
                },
                &info.id,
            )
            .details(serde_json::json!({
                "version": info.version,
                "content_hash": plugin.content_hash(),
                "signer": signer,
                "from": upgraded_from,
                "permissions": granted,
            })),
        );
        Ok(InstallReport {
            plugin,
            signer,
            upgraded_from,
            permissions: granted,
        })
    }

    /// Deletes a replaced or removed component's precompiled artifacts; a failure only costs
    /// disk space, so it is logged.
    fn evict_compiled(&self, content_hash: &str) {
        match self.runtime.evict_compiled(content_hash) {
            Ok(freed) if freed > 0 => {
                tracing::info!(
                    content_hash,
                    freed,
                    "deleted the replaced component's precompiled code"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                content_hash,
                "could not delete a replaced component's precompiled code: {e}"
            ),
        }
    }

    /// Replaces the active version of a plugin; sessions already open keep
    /// theirs. Returns how long the registry was locked.
    pub fn swap_plugin(&self, plugin: Plugin) -> Duration {
        let started = std::time::Instant::now();
        if let Ok(mut map) = self.plugins.write() {
            map.insert(plugin.info().id.clone(), plugin);
        }
        started.elapsed()
    }

    /// Runs the plugin's `check` on every enabled integration that uses it.
    async fn check_integrations_with(&self, plugin_id: &str) -> Result<(), String> {
        let records = self.store.integrations().map_err(|e| e.to_string())?;
        for r in records
            .into_iter()
            .filter(|r| r.enabled && r.plugin_id == plugin_id)
        {
            let report = self.test(&r.id).await;
            if let Some(step) = report.steps.iter().find(|s| !s.ok) {
                return Err(format!(
                    "integration {} failed its check with the new version: {}",
                    r.id, step.detail
                ));
            }
        }
        Ok(())
    }

    /// Loads the plugins recorded as installed that are not loaded at their recorded
    /// version: from the plugins folder, else (a plugin installed on another node of a
    /// cluster) from the store, whose copy is then written to the folder. Each file's
    /// signature and hash are checked again, against the pinned key. Plugins other nodes
    /// removed are unloaded. Returns the ids loaded. Called at start, and on a cluster
    /// whenever a node signals a plugin change.
    pub async fn load_installed_plugins(&self) -> Vec<String> {
        let Ok(records) = self.store.plugins() else {
            return Vec::new();
        };
        let dir = self.plugins_dir();
        let mut loaded = Vec::new();
        for r in &records {
            if !self.wants_plugin(&r.id)
                || self
                    .plugin(&r.id)
                    .is_some_and(|p| p.content_hash() == r.content_hash)
            {
                continue;
            }
            let local = dir
                .as_ref()
                .and_then(|d| std::fs::read(d.join(format!("{}.wasm", r.id))).ok());
            let mut plugin = match local {
                Some(file) => self.load_recorded(r, &file).await,
                None => Err("no file in the plugins folder".to_string()),
            };
            if plugin.is_err()
                && let Ok(Some(file)) = self.store.plugin_file(&r.id, &r.content_hash)
            {
                plugin = self.load_recorded(r, &file).await;
                if plugin.is_ok()
                    && let Some(dir) = &dir
                {
                    let write = || -> std::io::Result<()> {
                        std::fs::create_dir_all(dir)?;
                        let tmp = dir.join(format!(".{}.wasm.tmp", r.id));
                        std::fs::write(&tmp, &file)?;
                        std::fs::rename(&tmp, dir.join(format!("{}.wasm", r.id)))
                    };
                    if let Err(e) = write() {
                        tracing::warn!(plugin = %r.id, "loaded from the store, but not kept in the plugins folder: {e}");
                    }
                }
            }
            match plugin {
                Ok(p) => {
                    self.swap_plugin(p);
                    loaded.push(r.id.clone());
                }
                Err(e) => tracing::error!(plugin = %r.id, "not loaded: {e}"),
            }
        }
        // Removed on another node: unloaded here too (first-party plugins always stay).
        // (Only when the records did not change meanwhile: a plugin installed on this node
        // since the first read is not one another node removed.)
        let ids = |rs: &[PluginRecord]| -> std::collections::BTreeSet<String> {
            rs.iter().map(|r| r.id.clone()).collect()
        };
        if self
            .store
            .plugins()
            .is_ok_and(|now| ids(&now) == ids(&records))
            && let Ok(mut map) = self.plugins.write()
        {
            map.retain(|id, _| {
                records.iter().any(|r| &r.id == id)
                    || proofpix_plugin_artifacts::first_party_plugin(id).is_some()
            });
        }
        loaded
    }

    /// A plugin file checked against its record: the signature (pinned to the record's
    /// key; an unsigned file only for a record installed unsigned) and the content hash.
    async fn load_recorded(&self, r: &PluginRecord, file: &[u8]) -> Result<Plugin, String> {
        let content = match proofpix_signing::verify(file, &self.trust_store()) {
            Ok(v) if r.key_id.as_ref().is_some_and(|k| *k != v.key_id) => {
                return Err(format!(
                    "the file is signed by key {} but the plugin is pinned to key {}",
                    v.key_id,
                    r.key_id.as_deref().unwrap_or_default()
                ));
            }
            Ok(v) => v.content,
            Err(_) if r.signer.is_none() => proofpix_signing::split(file)
                .map(|(c, _)| c.to_vec())
                .map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        };
        match self.runtime.load(&content).await {
            Ok(p) if p.content_hash() == r.content_hash => Ok(p),
            Ok(_) => Err("the file does not match the installed version's hash".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The circuit breaker, run after each run: a plugin version with too
    /// many recent runtime failures is rolled back to its previous version
    /// when there is one, and quarantined otherwise. Returns what it did.
    pub async fn check_plugin_health(&self, plugin_id: &str) -> Option<String> {
        let plugin = self.plugin(plugin_id)?;
        let failures = plugin.recent_failures(BREAKER_WINDOW);
        if failures.len() < BREAKER_FAILURES {
            return None;
        }
        let reason = format!(
            "{} runtime failures in {} minutes; last: {}",
            failures.len(),
            BREAKER_WINDOW.as_secs() / 60,
            failures.last().cloned().unwrap_or_default()
        );
        let mut record = self.store.plugin(plugin_id).ok().flatten()?;
        // Roll back to the previous file when there is one.
        if let (Some(prev_version), Some(dir)) =
            (record.previous_version.clone(), self.plugins_dir())
        {
            let prev = std::fs::read(dir.join(format!("{plugin_id}.previous.wasm"))).ok();
            let content =
                prev.and_then(|f| proofpix_signing::split(&f).ok().map(|(c, _)| c.to_vec()));
            if let Some(content) = content
                && let Ok(old) = self.runtime.load(&content).await
            {
                self.swap_plugin(old.clone());
                record.version = prev_version.clone();
                record.content_hash = old.content_hash().to_string();
                record.previous_version = None;
                let _ = self.store.put_plugin(&record, "system");
                let _ = std::fs::rename(
                    dir.join(format!("{plugin_id}.previous.wasm")),
                    dir.join(format!("{plugin_id}.wasm")),
                );
                let _ = self.store.audit(
                    &AuditEvent::new("system", "plugin.rollback", plugin_id)
                        .outcome("failed")
                        .details(serde_json::json!({"to": prev_version, "reason": reason})),
                );
                return Some(format!("rolled back to {prev_version}: {reason}"));
            }
        }
        record.quarantined = Some(reason.clone());
        let _ = self.store.put_plugin(&record, "system");
        let _ = self.store.audit(
            &AuditEvent::new("system", "plugin.quarantine", plugin_id)
                .outcome("failed")
                .details(serde_json::json!({"reason": reason})),
        );
        Some(format!("quarantined: {reason}"))
    }

    /// Why a plugin is quarantined, if it is.
    pub fn quarantine_reason(&self, plugin_id: &str) -> Option<String> {
        self.store
            .plugin(plugin_id)
            .ok()
            .flatten()
            .and_then(|r| r.quarantined)
    }

    /// Lifts a quarantine.
    ///
    /// # Errors
    /// Unknown plugin, store failures.
    pub fn release_plugin(&self, plugin_id: &str, actor: &str) -> Result<(), ServiceError> {
        let mut r = self
            .store
            .plugin(plugin_id)?
            .ok_or_else(|| ServiceError::NoPlugin(plugin_id.into(), String::new()))?;
        r.quarantined = None;
        self.store.put_plugin(&r, actor)?;
        Ok(())
    }

    /// Uninstalls a plugin no integration uses.
    ///
    /// # Errors
    /// Integrations still use it; first-party plugins cannot be removed;
    /// store failures.
    pub fn remove_plugin(&self, plugin_id: &str, actor: &str) -> Result<(), ServiceError> {
        let users: Vec<String> = self
            .store
            .integrations()?
            .into_iter()
            .filter(|r| r.plugin_id == plugin_id)
            .map(|r| r.id)
            .collect();
        if !users.is_empty() {
            return Err(ServiceError::Plugin(format!(
                "{plugin_id} is used by {}; delete those integrations first",
                users.join(", ")
            )));
        }
        if proofpix_plugin_artifacts::first_party_plugin(plugin_id).is_some() {
            return Err(ServiceError::Plugin(format!(
                "{plugin_id} ships with ProofPix and cannot be removed"
            )));
        }
        let removed = self.plugin(plugin_id);
        self.store.remove_plugin(plugin_id, actor)?;
        if let Some(p) = &removed {
            self.evict_compiled(p.content_hash());
        }
        if let Some(dir) = self.plugins_dir() {
            let _ = std::fs::remove_file(dir.join(format!("{plugin_id}.wasm")));
            let _ = std::fs::remove_file(dir.join(format!("{plugin_id}.previous.wasm")));
        }
        if let Ok(mut map) = self.plugins.write() {
            map.remove(plugin_id);
        }
        self.tell_other_nodes_about_plugins();
        Ok(())
    }

    /// Signals the nodes sharing the store to load what it records now (see
    /// [`Host::load_installed_plugins`]); nothing on an embedded store. A lost signal only
    /// delays them until their next start or signal, so a failure is logged.
    fn tell_other_nodes_about_plugins(&self) {
        if let Err(e) = self.store.signal(proofpix_store::PLUGINS_SIGNAL) {
            tracing::warn!("the other nodes were not told about the plugin change: {e}");
        }
    }
}
