//! `proofpix plugin ...`: keys, signing, installing and inspecting plugins.

use std::path::PathBuf;

use anyhow::{Context, bail};
use proofpix_runtime::contract::{AuthScheme, Capability};
use proofpix_runtime::{Runtime, RuntimeConfig};
use proofpix_service::{Host, HostOptions, InstallOptions};
use proofpix_signing::KeyPair;

mod harness;
mod scaffold;

/// Plugin subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a connector crate on the SDK: a source for a small JSON API with a passing
    /// unit test and a README from build to install.
    New {
        /// The plugin id and crate name: a-z, 0-9 and -.
        name: String,
        /// Where to create it (default: ./NAME). Must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK: a path to the `sdk` directory of a ProofPix checkout, or a version
        /// requirement. Default: the SDK this binary was built with, when its checkout is
        /// still there.
        #[arg(long, value_name = "PATH|VERSION")]
        sdk: Option<String>,
    },
    /// Run a plugin against recorded HTTP exchanges (FIXTURES/fixture.json) and compare
    /// calls, fuel, peak memory, component size and log volume with FIXTURES/baseline.json.
    Test {
        /// The plugin file (signed or not).
        plugin: PathBuf,
        /// The fixture directory.
        #[arg(long)]
        fixtures: PathBuf,
        /// Record the exchanges against this base URL (the service or an emulator) instead.
        #[arg(long, value_name = "URL")]
        record: Option<String>,
        /// A config value for recording, `FIELD=VALUE` (use `{replay}` for the base URL).
        #[arg(long = "config", short = 'c', value_name = "FIELD=VALUE")]
        config: Vec<String>,
        /// A secret (API key, client secret, private key, webhook signing key or URL),
        /// `FIELD=env:VAR`; the host authenticates and verifies webhooks with it as the daemon
        /// would. Scrubbed from what is recorded. On replay, give the ones the host itself
        /// uses (webhook signing keys, secret URLs such as `{replay}/hook`).
        #[arg(long = "secret", short = 's', value_name = "FIELD=env:VAR")]
        secrets: Vec<String>,
        /// Allowed growth over the baseline, in percent.
        #[arg(long, default_value = "10")]
        threshold: u64,
        /// Write the figures of this run as the new baseline.
        #[arg(long)]
        update_baseline: bool,
        /// While recording, answer the first request with this method and path (query aside;
        /// `*` stands for any characters) with STATUS instead of forwarding it, and record that
        /// answer: `GET /files=503`, `GET /files/*/content=429`. Repeatable; records an error
        /// path.
        #[arg(long, value_name = "METHOD PATH=STATUS", requires = "record")]
        inject: Vec<String>,
        /// While recording, add this webhook request (a JSON file: method, path, query,
        /// headers, body) to the fixture's events; every replay hands it to the plugin's
        /// `events.handle`. Repeatable.
        #[arg(long = "event", value_name = "FILE", requires = "record")]
        events: Vec<PathBuf>,
        /// While recording, authenticate as this configured integration does: its stored
        /// tokens (refreshed from the refresh token an authorization-code sign-in left, and
        /// stored back), its secrets and its config (`-c` values win).
        #[arg(long, value_name = "NAME", requires = "record")]
        integration: Option<String>,
    },
    /// List the installed plugins with their provenance.
    List,
    /// Show what a plugin is, who signed it and which permissions it asks for: a plugin file,
    /// or the id of an installed (or built-in) plugin.
    Inspect {
        /// A plugin file, or an installed plugin's id (a file of that name wins).
        #[arg(value_name = "FILE|ID")]
        plugin: String,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a signing key pair: NAME.key (secret, 0600) and NAME.pub.
    Keygen {
        /// The signer's name, e.g. your organisation.
        name: String,
        /// Where to write the files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Sign a plugin file (in place, or to --output).
    Sign {
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The plugin file.
        file: PathBuf,
        /// Write the signed file here instead of replacing the input.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Trust a signer's public key (copies NAME.pub into the trust store).
    Trust {
        /// The `.pub` file.
        key: PathBuf,
    },
    /// Verify, precompile and install (or upgrade) a plugin from a file or an https URL.
    Install {
        /// A file path, or an https:// URL.
        source: String,
        /// Grant a permission as shown by `inspect` (repeatable), or `all`.
        #[arg(long = "grant", value_name = "PERMISSION")]
        grants: Vec<String>,
        /// Development only: install a plugin that is unsigned or signed by an
        /// untrusted key. A tampered file is refused regardless.
        #[arg(long)]
        allow_unsigned: bool,
        /// Accept a file signed by another key than the one this plugin id is
        /// pinned to, and pin it to the new key (recorded in the audit log).
        #[arg(long)]
        repin: bool,
    },
    /// Uninstall a plugin no integration uses.
    Remove {
        /// The plugin id.
        id: String,
    },
    /// Lift a plugin's quarantine.
    Release {
        /// The plugin id.
        id: String,
    },
}

async fn host() -> anyhow::Result<Host> {
    crate::cmd_integration::host().await
}

async fn read_source(source: &str) -> anyhow::Result<Vec<u8>> {
    if source.starts_with("https://") || source.starts_with("http://") {
        if source.starts_with("http://") {
            bail!("plugins are downloaded over https only");
        }
        let resp = reqwest::get(source)
            .await
            .with_context(|| format!("cannot download {source}"))?;
        if !resp.status().is_success() {
            bail!("{source} answered HTTP {}", resp.status());
        }
        Ok(resp.bytes().await?.to_vec())
    } else {
        std::fs::read(source).with_context(|| format!("cannot read {source}"))
    }
}

/// Runs the command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::New { name, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = scaffold::SdkSource::resolve(sdk.as_deref());
            scaffold::create(&name, &dir, &sdk)?;
            println!("created plugin {name} in {}", dir.display());
            println!(
                "next: cd {} && cargo test && cargo build --target wasm32-wasip2 --release",
                dir.display()
            );
            Ok(())
        }
        Command::Test {
            plugin,
            fixtures,
            record,
            config,
            secrets,
            threshold,
            update_baseline,
            inject,
            events,
            integration,
        } => {
            let pair = |kv: &str| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                    .with_context(|| format!("{kv:?} is not FIELD=VALUE"))
            };
            let config = config
                .iter()
                .map(|kv| pair(kv))
                .collect::<anyhow::Result<_>>()?;
            let mut secret_values = Vec::new();
            for kv in &secrets {
                let (field, source) = pair(kv)?;
                let var = source
                    .strip_prefix("env:")
                    .with_context(|| format!("--secret {field}: use FIELD=env:VAR"))?;
                let value = std::env::var(var)
                    .with_context(|| format!("--secret {field}: {var} is not set"))?;
                secret_values.push((field, proofpix_vault::Secret::from(value)));
            }
            let lines = harness::run(harness::Options {
                plugin,
                fixtures,
                record,
                config,
                secrets: secret_values,
                threshold,
                update_baseline,
                inject,
                events,
                integration,
            })
            .await?;
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Command::List => {
            let host = host().await?;
            for r in host.store().plugins()? {
                let signer = r.signer.clone().unwrap_or_else(|| "UNSIGNED".into());
                let state = r
                    .quarantined
                    .as_ref()
                    .map(|q| format!(" QUARANTINED: {q}"))
                    .unwrap_or_default();
                println!(
                    "{:<16} {:<8} signed by {:<28} sha256 {}…{state}",
                    r.id,
                    r.version,
                    signer,
                    &r.content_hash[..16.min(r.content_hash.len())]
                );
            }
            Ok(())
        }
        Command::Keygen { name, dir } => {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("the key name is letters, digits, - and _");
            }
            let key = KeyPair::generate(&name);
            key.write(&dir)?;
            println!(
                "wrote {} (secret, keep it safe) and {} (share it)",
                dir.join(format!("{name}.key")).display(),
                dir.join(format!("{name}.pub")).display()
            );
            println!("key id {}", key.public().id());
            Ok(())
        }
        Command::Sign { key, file, output } => {
            let key = KeyPair::read(&key)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            // The manifest goes into the file so `inspect` and `install` can
            // show the permissions before anything runs.
            let (content, _) = proofpix_signing::split(&bytes)?;
            let runtime = authoring_runtime(RuntimeConfig::default())?;
            let plugin = runtime
                .load(content)
                .await
                .with_context(|| format!("{} is not a loadable plugin", file.display()))?;
            let manifest = serde_json::json!({
                "id": plugin.info().id,
                "version": plugin.info().version,
                "permissions": proofpix_service::permissions(plugin.info()),
            });
            let signed = proofpix_signing::sign(&bytes, &key, manifest)?;
            let target = output.unwrap_or(file);
            std::fs::write(&target, signed)
                .with_context(|| format!("cannot write {}", target.display()))?;
            println!(
                "signed {} {} as {} (key {})",
                plugin.info().id,
                plugin.info().version,
                key.public().name,
                key.public().id()
            );
            Ok(())
        }
        Command::Trust { key } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let public = proofpix_signing::PublicKey::from_line(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let dir = proofpix_store::data_dir()?.join("trust");
            std::fs::create_dir_all(&dir)?;
            let dest = dir.join(format!("{}.pub", public.id()));
            std::fs::write(&dest, format!("{}\n", public.to_line()))?;
            println!("now trusting {} (key {})", public.name, public.id());
            Ok(())
        }
        Command::Install {
            source,
            grants,
            allow_unsigned,
            repin,
        } => {
            let file = read_source(&source).await?;
            let host = host().await?;
            let report = host
                .install_plugin(
                    &file,
                    &InstallOptions {
                        allow_unsigned,
                        grants,
                        repin,
                    },
                    &crate::cmd_vault::operator(),
                )
                .await?;
            let info = report.plugin.info();
            match &report.upgraded_from {
                Some(from) => println!("upgraded {} from {from} to {}", info.id, info.version),
                None => println!("installed {} {}", info.id, info.version),
            }
            println!(
                "signed by {}",
                report
                    .signer
                    .as_deref()
                    .unwrap_or("nobody (installed with --allow-unsigned)")
            );
            println!("granted:");
            for p in &report.permissions {
                println!("  {p}");
            }
            Ok(())
        }
        Command::Remove { id } => {
            let host = host().await?;
            host.remove_plugin(&id, &crate::cmd_vault::operator())?;
            println!("removed {id}");
            Ok(())
        }
        Command::Release { id } => {
            let host = host().await?;
            host.release_plugin(&id, &crate::cmd_vault::operator())?;
            println!("{id} is no longer quarantined");
            Ok(())
        }
        Command::Inspect { plugin, json } => {
            let (bytes, file, from) = inspect_source(&plugin)?;
            let (content, _) = proofpix_signing::split(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{} cannot be loaded: not a valid WebAssembly component: {e}",
                    file.display()
                )
            })?;
            let runtime = authoring_runtime(RuntimeConfig::default())?;
            let plugin = runtime
                .load(content)
                .await
                .map_err(proofpix_service::explain_load_error)
                .with_context(|| format!("{} cannot be loaded", file.display()))?;
            let info = plugin.info();
            if json {
                println!("{}", serde_json::to_string_pretty(info)?);
                return Ok(());
            }
            println!(
                "{} {} — {} ({})",
                info.id, info.version, info.display_name, info.platform
            );
            if !info.description.is_empty() {
                println!("{}", info.description);
            }
            if let Some(from) = from {
                println!("from:     {from}");
            }
            println!("contract: proofpix:plugin@{}", plugin.contract_version());
            println!("sha256:   {}", plugin.content_hash());
            println!("size:     {} bytes", plugin.size_bytes());
            let signature = match proofpix_signing::inspect(&bytes) {
                Ok(claims) => {
                    let data_dir = proofpix_store::data_dir().ok();
                    let first_party = proofpix_signing::PublicKey::from_line(
                        proofpix_plugin_artifacts::FIRST_PARTY_PUBLIC_KEY,
                    )
                    .ok();
                    let development = proofpix_plugin_artifacts::FIRST_PARTY_DEVELOPMENT
                        && first_party
                            .as_ref()
                            .is_some_and(|k| k.id() == claims.key_id);
                    let mut trust = proofpix_signing::TrustStore::default();
                    if let Some(k) = first_party {
                        trust.add(k);
                    }
                    if let Some(d) = data_dir {
                        let _ = trust.load_dir(&d.join("trust"));
                    }
                    // Only a verified signature's name is shown: the name in an
                    // unverified section is whatever its author typed.
                    match proofpix_signing::verify(&bytes, &trust) {
                        Ok(v) if development => format!(
                            "signed by {} (key {}), verified; development build: this binary's own key, trusted by a host only with trust_development_build",
                            v.signer, v.key_id
                        ),
                        Ok(v) => format!("signed by {} (key {}), verified", v.signer, v.key_id),
                        Err(e) => format!("NOT verified, key {}: {e}", claims.key_id),
                    }
                }
                Err(e) => e.to_string(),
            };
            println!("signature: {signature}");
            let caps: Vec<&str> = info
                .capabilities
                .iter()
                .map(|c| match c {
                    Capability::Source => "source",
                    Capability::Notifier => "notifier",
                    Capability::Events => "events",
                    Capability::Remediation => "remediation",
                })
                .collect();
            println!("does:     {}", caps.join(", "));
            println!("auth:     {}", auth_name(&info.auth));
            if caps.contains(&"source") {
                println!(
                    "write-back: {}",
                    if info.write_back_idempotent {
                        "idempotent (retried after a crash)"
                    } else {
                        "at most once (an interrupted one is left for an operator)"
                    }
                );
            }
            if !info.remediations.is_empty() {
                let actions: Vec<String> = proofpix_service::declared_actions(&plugin)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                println!("remediation it offers: {}", actions.join(", "));
            }
            println!("permissions it asks for (grant each with --grant, or --grant all):");
            for p in proofpix_service::permissions(info) {
                println!("  {p}");
            }
            println!("config:");
            for f in &info.config {
                let mut flags = Vec::new();
                if f.required {
                    flags.push("required");
                }
                if f.secret {
                    flags.push("secret");
                }
                println!(
                    "  {:<20} {} [{}] {}",
                    f.name,
                    f.label,
                    flags.join(", "),
                    f.help
                );
            }
            Ok(())
        }
    }
}

fn auth_name(a: &AuthScheme) -> &'static str {
    match a {
        AuthScheme::None => "none",
        AuthScheme::ApiKey(_) => "API key / bearer token",
        AuthScheme::Oauth2ClientCredentials(_) => "OAuth2 client credentials",
        AuthScheme::Oauth2AuthorizationCode(_) => "OAuth2 authorization code with PKCE",
        AuthScheme::Oauth2Password(_) => "OAuth2 resource-owner password",
        AuthScheme::JwtBearer(_) => "JWT bearer assertion",
    }
}

/// What `inspect` shows for `target`: the bytes, the path to name in errors, and where they
/// came from when `target` was an id. A file of that name wins; then the installed plugin
/// of that id (`<data dir>/plugins/<id>.wasm`, the file the daemon loads); then the plugin
/// of that id built into this binary. The store is not opened, so this works while the
/// daemon runs.
fn inspect_source(target: &str) -> anyhow::Result<(Vec<u8>, PathBuf, Option<String>)> {
    let path = PathBuf::from(target);
    if path.is_file() {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok((bytes, path, None));
    }
    let is_id = proofpix_policy::manifest::is_id(target);
    let plugins = proofpix_store::data_dir().ok().map(|d| d.join("plugins"));
    if is_id {
        if let Some(dir) = &plugins {
            let installed = dir.join(format!("{target}.wasm"));
            if installed.is_file() {
                let bytes = std::fs::read(&installed)
                    .with_context(|| format!("cannot read {}", installed.display()))?;
                let from = format!("installed plugin {target} ({})", installed.display());
                return Ok((bytes, installed, Some(from)));
            }
        }
        if let Some(bytes) = proofpix_plugin_artifacts::first_party_plugin(target) {
            let from = format!("the {target} plugin built into this binary");
            return Ok((bytes.to_vec(), path, Some(from)));
        }
    }
    let mut installed: Vec<String> = plugins
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let id = name.strip_suffix(".wasm")?;
            (!id.starts_with('.') && !id.ends_with(".previous")).then(|| id.to_string())
        })
        .collect();
    installed.sort();
    let built_in: Vec<&str> = proofpix_plugin_artifacts::first_party()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    bail!(
        "{} is neither a file nor the id of an installed plugin (installed: {}; built in: {})",
        path.display(),
        if installed.is_empty() {
            "none".to_string()
        } else {
            installed.join(", ")
        },
        built_in.join(", ")
    )
}

/// A runtime for an author's one-shot command (`sign`, `inspect`, `test`) that compiles
/// through the data directory's component cache, as `install` and the daemon do: a component
/// is compiled once (seconds for a large Python or JavaScript one), then loaded in
/// milliseconds by the next command on the same bytes. Without a data directory, no cache.
pub fn authoring_runtime(config: RuntimeConfig) -> anyhow::Result<Runtime> {
    if let Ok(dir) = proofpix_store::data_dir() {
        let cached = RuntimeConfig {
            cache_dir: Some(dir.join("cache").join("components")),
            ..config.clone()
        };
        match Runtime::new(cached) {
            Ok(r) => return Ok(r),
            Err(e) => tracing::warn!("compiling without the component cache: {e}"),
        }
    }
    Ok(Runtime::new(config)?)
}

/// Opens the store and builds a host as the daemon does, with these pipeline options (a
/// one-shot command waits for retries).
pub async fn open_host(
    cache: bool,
    pipeline: proofpix_pipeline::PipelineOptions,
) -> anyhow::Result<Host> {
    let data_dir = proofpix_store::data_dir()?;
    // The store the daemon's configuration names, so that a command changes what the
    // daemons see (in cluster mode, the shared database).
    let (config, _) = crate::cmd_serve::load_config(None)?;
    let opened = crate::backend::open(&config.store)?;
    let options = HostOptions {
        limits: proofpix_policy::Limits::from_env()?,
        cache_dir: cache.then(|| data_dir.join("cache").join("components")),
        data_dir: Some(data_dir),
        trust_development_build: trust_development_build_from_env(),
        pipeline,
        ..HostOptions::default()
    };
    Ok(match opened.local {
        Some(store) => Host::new(store, options).await?,
        None => Host::with_backend(opened.backend, options).await?,
    })
}

/// Whether `PROOFPIX_TRUST_DEVELOPMENT_BUILD` is set to `1` or `true`: the
/// operator trusts the built-in plugins of a development build.
pub fn trust_development_build_from_env() -> bool {
    std::env::var("PROOFPIX_TRUST_DEVELOPMENT_BUILD")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}
