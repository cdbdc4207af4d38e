//! `proofpix`: find privacy risks in image metadata, locally or in the
//! systems your images live in.
//!
//! Exit codes (like ripgrep's): 0 when nothing at high risk or above was
//! found, 1 when something was, 2 on an error that stopped the command.
//! Errors go to stderr as one chain, once; results go to stdout.
//!
//! Layering (checked by .ci/layers): floor 6, may use only the host crates below it (proofpix-analysis, proofpix-auth, proofpix-model, proofpix-pipeline, proofpix-pixels, proofpix-plugin-artifacts, proofpix-policy, proofpix-runtime, proofpix-server, proofpix-service, proofpix-signing, proofpix-store, proofpix-store-pg, proofpix-vault).

mod backend;
mod cmd_analyze;
mod cmd_audit;
#[cfg(feature = "demo")]
mod cmd_demo;
mod cmd_integration;
mod cmd_plugin;
mod cmd_scan;
mod cmd_serve;
mod cmd_strip;
mod cmd_vault;
mod output;
mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Find privacy risks hidden in image metadata.
#[derive(Debug, Parser)]
#[command(
    name = "proofpix",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit status: 0 when it worked and found nothing at high risk or above; 1 when it \
                  worked and found high-risk files (scan, analyze, integration sync); 2 on an error."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). `PROOFPIX_LOG` takes a
    /// tracing filter and wins over this.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan a folder through the full pipeline (local-folder plugin →
    /// host fetch → analysis → JSON report per image). A second scan only
    /// looks at files that changed.
    Scan(cmd_scan::Args),
    /// Run the daemon: scheduled and webhook-driven syncs, the REST API and
    /// the dashboard.
    Serve(cmd_serve::Args),
    /// The whole product on this machine, offline: the daemon, emulated Salesforce, SharePoint,
    /// Slack and Teams seeded with sample images, and an integration for each. Prints the
    /// dashboard URL and an admin token.
    #[cfg(feature = "demo")]
    Demo(cmd_demo::Args),
    /// Analyse files and folders directly and print the findings.
    Analyze(cmd_analyze::Args),
    /// Write a copy of an image without its metadata (lossless).
    Strip(cmd_strip::Args),
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: cmd_audit::Command,
    },
    /// Integrations: configure, test and sync connections to platforms.
    Integration {
        #[command(subcommand)]
        command: cmd_integration::Command,
    },
    /// Plugins: keys, signing, install, upgrade, inspect, remove.
    Plugin {
        #[command(subcommand)]
        command: cmd_plugin::Command,
    },
    /// The credential vault.
    Vault {
        #[command(subcommand)]
        command: cmd_vault::Command,
    },
}

/// What a command found, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing at high risk or above.
    Clean,
    /// Something at high risk or above.
    Findings,
}

/// Caps glibc's malloc arenas at two unless `MALLOC_ARENA_MAX` says otherwise. glibc gives
/// threads that allocate under contention arenas of their own (up to eight per core) and keeps
/// freed memory in each; the daemon's analyses and file I/O run on many blocking-pool threads,
/// and with the default the daemon's RSS draining a 100k-file backlog peaked at 200 MiB and was
/// still climbing, against 156 MiB and flat with two arenas at the same speed (BENCHMARKS.md,
/// staged pipeline).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets one of glibc's allocator tunables; it is called first
        // thing in `main`, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Scan(args) => runtime().and_then(|rt| rt.block_on(cmd_scan::run(args))),
        Command::Serve(args) => runtime()
            .and_then(|rt| rt.block_on(cmd_serve::run(args)))
            .map(|()| Verdict::Clean),
        #[cfg(feature = "demo")]
        Command::Demo(args) => runtime()
            .and_then(|rt| rt.block_on(cmd_demo::run(args)))
            .map(|()| Verdict::Clean),
        Command::Analyze(args) => cmd_analyze::run(args),
        Command::Strip(args) => cmd_strip::run(args).map(|()| Verdict::Clean),
        Command::Audit { command } => cmd_audit::run(command).map(|()| Verdict::Clean),
        Command::Integration { command } => {
            runtime().and_then(|rt| rt.block_on(cmd_integration::run(command)))
        }
        Command::Plugin { command } => runtime()
            .and_then(|rt| rt.block_on(cmd_plugin::run(command)))
            .map(|()| Verdict::Clean),
        Command::Vault { command } => cmd_vault::run(command).map(|()| Verdict::Clean),
    };
    match result {
        Ok(Verdict::Clean) => ExitCode::SUCCESS,
        Ok(Verdict::Findings) => ExitCode::from(1),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("proofpix: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("PROOFPIX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error and its causes in one line, each said once: many of our errors already quote
/// their source in their own message (`#[error("{0}")]` over a `#[from]`), so a cause whose
/// text is already in the line is left out instead of repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Loads a risk policy file, or the default.
pub fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<proofpix_analysis::Policy> {
    use anyhow::Context;
    match path {
        None => Ok(proofpix_analysis::Policy::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the policy file {}", p.display()))?;
            proofpix_analysis::Policy::from_toml_str(&text)
                .map_err(|e| anyhow::anyhow!("policy file {}: {e}", p.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 401 from api.example: unauthorized")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("plugin pixfold: discover failed: {0}")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Outer(#[from] Middle);

    /// A wrapped error that quotes its source is said once, not once per layer.
    #[test]
    fn each_cause_is_said_once() {
        let e = anyhow::Error::new(Outer(Middle(Inner))).context("sync of studio failed");
        assert_eq!(
            error_text(&e),
            "sync of studio failed: plugin pixfold: discover failed: HTTP 401 from api.example: unauthorized"
        );
        let plain = anyhow::anyhow!("cannot read x").context("policy file y");
        assert_eq!(error_text(&plain), "policy file y: cannot read x");
    }
}
