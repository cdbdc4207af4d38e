//! `proofpix plugin inspect FILE`: what a plugin is and what it asks for.

use std::path::PathBuf;

use anyhow::Context;
use proofpix_runtime::contract::{AuthScheme, Capability};
use proofpix_runtime::{Runtime, RuntimeConfig};

/// Plugin subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the plugins this host has loaded (the built-in ones).
    List,
    /// Load a plugin component and show its manifest and the permissions it
    /// asks for.
    Inspect {
        /// The `.wasm` component.
        file: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::List => crate::cmd_integration::list_plugins().await,
        Command::Inspect { file, json } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let runtime = Runtime::new(RuntimeConfig::default())?;
            let plugin = runtime
                .load(&bytes)
                .await
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
            println!("contract: proofpix:plugin@{}", plugin.contract_version());
            println!("sha256:   {}", plugin.content_hash());
            println!("size:     {} bytes", plugin.size_bytes());
            let caps: Vec<&str> = info
                .capabilities
                .iter()
                .map(|c| match c {
                    Capability::Source => "source",
                    Capability::Notifier => "notifier",
                    Capability::Events => "events",
                })
                .collect();
            println!("does:     {}", caps.join(", "));
            println!("auth:     {}", auth_name(&info.auth));
            println!("asks for:");
            for e in &info.endpoints {
                let creds = if e.credentials {
                    ", with credentials"
                } else {
                    ""
                };
                println!(
                    "  network  {} ({}{creds}){}",
                    e.url,
                    e.name,
                    purpose(&e.purpose)
                );
            }
            for m in &info.filesystem {
                let mode = if m.writable {
                    "read-write"
                } else {
                    "read-only"
                };
                println!(
                    "  files    {} {mode}, from config field `{}`{}",
                    m.guest_path,
                    m.config_field,
                    purpose(&m.purpose)
                );
            }
            if info.endpoints.is_empty() && info.filesystem.is_empty() {
                println!("  nothing beyond its own memory");
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

fn purpose(p: &str) -> String {
    if p.is_empty() {
        String::new()
    } else {
        format!(": {p}")
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
