//! `proofpix serve`: the daemon.
//!
//! Reads the configuration file (default `$PROOFPIX_HOME/proofpix.toml`, which
//! may be absent), applies environment overrides, opens the store, loads the
//! plugins, prints the bootstrap admin token on the first start only, and
//! serves until SIGTERM or Ctrl-C, then drains in-flight runs.

use std::path::PathBuf;

use anyhow::{Context, bail};
use proofpix_server::DaemonConfig;
use proofpix_service::{Host, HostOptions};

/// `serve` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML). Default: `$PROOFPIX_HOME/proofpix.toml` if it exists.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration, print every problem with its line, and exit.
    #[arg(long)]
    check: bool,
    /// Trust the built-in plugins of a development build (also `[plugins]
    /// trust_development_build = true`, or PROOFPIX_TRUST_DEVELOPMENT_BUILD=1).
    #[arg(long)]
    trust_development_build: bool,
}

/// Reads and validates the configuration.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<(DaemonConfig, String)> {
    let (text, shown) = match path {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            p.display().to_string(),
        ),
        None => {
            let default = proofpix_store::data_dir()?.join("proofpix.toml");
            match std::fs::read_to_string(&default) {
                Ok(t) => (t, default.display().to_string()),
                Err(_) => (String::new(), "(defaults)".to_string()),
            }
        }
    };
    match DaemonConfig::parse(&text, |k| std::env::var(k).ok()) {
        Ok(c) => Ok((c, shown)),
        Err(problems) => {
            for p in &problems {
                eprintln!("{shown}: {p}");
            }
            bail!(
                "{} problem{} in {shown}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// Runs the daemon.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (config, shown) = load_config(args.config.as_ref())?;
    if args.check {
        println!("{shown}: ok; listening on {}", config.listen());
        return Ok(());
    }
    let data_dir = proofpix_store::data_dir()?;
    let opened = crate::backend::open(&config.store)?;
    if opened.local.is_none() {
        println!("Store: PostgreSQL at {}", opened.shown);
    }
    let mut pipeline = proofpix_pipeline::PipelineOptions::default();
    if let Some(c) = config.pipeline.concurrency {
        pipeline.concurrency = c;
    }
    if let Some(secs) = config.pipeline.lease_secs {
        pipeline.lease = std::time::Duration::from_secs(secs);
    }
    // A daemon keeps no per-file outcomes in memory: the stages read their queues, so a
    // backlog's size never becomes its memory.
    pipeline.collect_outcomes = false;
    let options = HostOptions {
        limits: proofpix_policy::Limits::from_env()?,
        cache_dir: Some(data_dir.join("cache").join("components")),
        pipeline,
        data_dir: Some(data_dir.clone()),
        trust_development_build: args.trust_development_build
            || config.plugins.trust_development_build
            || crate::cmd_plugin::trust_development_build_from_env(),
        ..HostOptions::default()
    };
    let host = match opened.local {
        Some(store) => Host::new(store, options).await?,
        None => Host::with_backend(opened.backend, options).await?,
    };
    if let Some(token) = proofpix_server::bootstrap_admin_token(&host)? {
        println!("Bootstrap admin token (shown once, store it now):\n\n  {token}\n");
    }
    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen()))?;
    let addr = listener.local_addr()?;
    println!(
        "ProofPix is serving the dashboard at http://{addr}/ and the API at http://{addr}/api/"
    );
    let state = proofpix_server::state(host, config);
    proofpix_server::serve(state, listener, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
