//! `proofpix integration ...`: configure, test and run integrations.
//!
//! Secrets never go on the command line in plain text unless the operator
//! insists: `--secret FIELD=env:VAR` reads an environment variable,
//! `--secret FIELD=@FILE` a file, and `--secret FIELD=-` one line of stdin.
//! `FIELD=value` works too but is visible to other local users in `ps`.

use std::collections::BTreeMap;
use std::io::BufRead;

use std::time::Duration;

use anyhow::{Context, bail};
use proofpix_pipeline::SyncMode;
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, IntegrationSpec, Subscriptions};
use proofpix_vault::Secret;

use crate::Verdict;
use crate::output::{Row, by_risk, print_table};

/// Failed files `integration sync` lists by name; `--json` has them all.
const MAX_FAILURES_SHOWN: usize = 20;

/// Integration subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create or replace an integration.
    Add(AddArgs),
    /// List integrations.
    List,
    /// Test the connection: config, credentials, grant and the plugin's check.
    Test {
        /// The integration.
        name: String,
    },
    /// Run a sync now. Exits 0 when the sync worked and found nothing at high risk or above,
    /// 1 when it worked and found high-risk files, 2 when it failed.
    Sync {
        /// The integration.
        name: String,
        /// List everything from the start (still skipping analysed versions).
        #[arg(long)]
        full: bool,
        /// Analyse every file again.
        #[arg(long)]
        reanalyse: bool,
        /// Write every result back again, although it was written before (after the platform
        /// lost the values or someone removed them): forgets the integration's finished
        /// write-backs, then analyses every file again and writes each result once more.
        #[arg(long)]
        rewrite: bool,
        /// Print the per-file results as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show, set or remove the remediation policy: which actions the plugin offers to take on
    /// risky files, from which risk level, after which delay, and whether only simulated.
    Remediation {
        /// The integration.
        name: String,
        /// The policy as JSON, e.g. '{"actions":["quarantine"],"min_risk":"critical"}'; keys:
        /// actions, min_risk (default high), delay_secs, simulate (default true), label.
        #[arg(long, value_name = "JSON", conflicts_with = "off")]
        policy: Option<String>,
        /// Remove the policy (no remediation).
        #[arg(long)]
        off: bool,
    },
    /// Show, or turn on or off, the pixel stage for this integration's syncs: besides the
    /// metadata, look at what the picture shows (QR codes, personal data in OCR text). Whole
    /// files are fetched when it is on.
    Pixels {
        /// The integration.
        name: String,
        /// `on` or `off`; without it, shows the setting.
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
    },
    /// Replace one secret.
    SetSecret {
        /// The integration.
        name: String,
        /// `FIELD=env:VAR`, `FIELD=@FILE`, `FIELD=-` or `FIELD=value`.
        secret: String,
    },
    /// Authorize an authorization-code integration in a browser.
    Authorize {
        /// The integration.
        name: String,
        /// How long to wait for the browser to come back.
        #[arg(long, default_value = "300")]
        timeout_secs: u64,
    },
    /// Delete an integration and what it owns (secrets, tokens, cursor, state).
    Remove {
        /// The integration.
        name: String,
    },
}

/// `integration add` arguments.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Its name (a-z, 0-9, -).
    name: String,
    /// The plugin id (see `proofpix plugin list`).
    #[arg(long)]
    plugin: String,
    /// A non-secret config value, `FIELD=value`; repeatable.
    #[arg(long = "config", short = 'c', value_name = "FIELD=VALUE")]
    config: Vec<String>,
    /// A secret value; see the module docs for the forms. Repeatable.
    #[arg(long = "secret", short = 's', value_name = "FIELD=SOURCE")]
    secrets: Vec<String>,
    /// Grant a host (`https://host`, `https://*.domain`, `http://127.0.0.1:*`); repeatable.
    #[arg(long = "grant-host", value_name = "URL")]
    grant_hosts: Vec<String>,
    /// Grant a filesystem mount the plugin declares (guest path, e.g. /input).
    #[arg(long = "grant-mount", value_name = "PATH")]
    grant_mounts: Vec<String>,
    /// Grant write access to a declared mount.
    #[arg(long = "grant-write", value_name = "PATH")]
    grant_write: Vec<String>,
    /// Allow loopback addresses (local emulators).
    #[arg(long)]
    allow_loopback: bool,
    /// Allow private-network addresses (on-premises servers).
    #[arg(long)]
    allow_private: bool,
    /// For notifiers: subscriptions as JSON, e.g. '{"events":["high-risk"],"digest":true}'.
    /// Events: high-risk, batch-completed, batch-failed, unhealthy (keys: sdk/README.md).
    #[arg(long, value_name = "JSON")]
    subscriptions: Option<String>,
    /// Schedule for the daemon: an interval (`15m`, `6h`) or a cron expression.
    #[arg(long)]
    schedule: Option<String>,
}

/// How long `integration sync` waits for files and write-backs that failed transiently and
/// are due again (with back-off and the platform's Retry-After) before it exits; what is still
/// queued then goes at the next sync or with the daemon.
const RETRY_WAIT: Duration = Duration::from_secs(30);

/// The host over the data directory's store, with installed plugins.
pub async fn host() -> anyhow::Result<Host> {
    crate::cmd_plugin::open_host(
        true,
        proofpix_pipeline::PipelineOptions {
            wait_for_retries: Some(RETRY_WAIT),
            ..proofpix_pipeline::PipelineOptions::default()
        },
    )
    .await
}

fn split(kv: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("{kv:?} is not FIELD=VALUE"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Reads a secret from its source form.
fn secret_value(field: &str, source: &str) -> anyhow::Result<Secret> {
    if let Some(var) = source.strip_prefix("env:") {
        return std::env::var(var)
            .map(Secret::from)
            .with_context(|| format!("secret {field}: environment variable {var} is not set"));
    }
    if let Some(path) = source.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("secret {field}: cannot read {path}"))?;
        return Ok(Secret::from(
            text.trim_end_matches(['\n', '\r']).to_string(),
        ));
    }
    if source == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("secret {field}: cannot read stdin"))?;
        return Ok(Secret::from(
            line.trim_end_matches(['\n', '\r']).to_string(),
        ));
    }
    Ok(Secret::new(source))
}

/// Runs the command.
pub async fn run(command: Command) -> anyhow::Result<Verdict> {
    let host = host().await?;
    match command {
        Command::Add(a) => {
            let config: BTreeMap<String, String> = a
                .config
                .iter()
                .map(|kv| split(kv))
                .collect::<anyhow::Result<_>>()?;
            let mut secrets = BTreeMap::new();
            for kv in &a.secrets {
                let (field, source) = split(kv)?;
                secrets.insert(field.clone(), secret_value(&field, &source)?);
            }
            let subscriptions: Option<Subscriptions> = a
                .subscriptions
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .context("--subscriptions is not valid subscriptions JSON")?;
            let spec = IntegrationSpec {
                id: a.name.clone(),
                plugin: a.plugin,
                config,
                secrets,
                grant: OperatorGrant {
                    hosts: a.grant_hosts,
                    mounts: a.grant_mounts,
                    write: a.grant_write,
                    allow_loopback: a.allow_loopback,
                    allow_private: a.allow_private,
                    allow_link_local: false,
                },
                subscriptions,
                schedule: a.schedule,
            };
            host.create_integration(spec, "cli").await?;
            println!(
                "integration {} saved; test it with `proofpix integration test {}`",
                a.name, a.name
            );
            Ok(Verdict::Clean)
        }
        Command::List => {
            let records = host.store().integrations()?;
            if records.is_empty() {
                println!("no integrations; add one with `proofpix integration add`");
            }
            for r in records {
                println!(
                    "{:<24} {:<16} {:<12} {}",
                    r.id,
                    r.plugin_id,
                    format!("{:?}", r.status).to_lowercase(),
                    r.last_error.unwrap_or_default()
                );
                // A notifier's second line: what it is sent (sdk/README.md, "Notifier
                // subscriptions").
                match host.subscriptions(&r.id) {
                    Ok(Some(subs)) => println!("{:<24} subscribed: {}", "", subs.summary()),
                    Ok(None) => {}
                    Err(e) => println!("{:<24} subscriptions unreadable: {e}", ""),
                }
            }
            Ok(Verdict::Clean)
        }
        Command::Test { name } => {
            let report = host.test(&name).await;
            for s in &report.steps {
                println!(
                    "{} {:<14} {}",
                    if s.ok { "ok  " } else { "FAIL" },
                    s.name,
                    s.detail
                );
            }
            if !report.ok() {
                bail!("integration {name} failed its connection test");
            }
            Ok(Verdict::Clean)
        }
        Command::Sync {
            name,
            full,
            reanalyse,
            rewrite,
            json,
        } => {
            if rewrite {
                let forgotten = host.forget_writebacks(&name, "cli")?;
                eprintln!(
                    "{forgotten} earlier write-backs of {name} forgotten; every result is written again"
                );
            }
            let mode = if reanalyse || rewrite {
                SyncMode::Reanalyse
            } else if full {
                SyncMode::FullListing
            } else {
                SyncMode::Incremental
            };
            let (report, remediations) = host.sync_and_remediate(&name, mode).await?;
            // A one-shot command exits: what notifiers' windows would hold back goes out now.
            host.deliver_notifications(true).await;
            let mut worst = proofpix_analysis::RiskLevel::None;
            let mut counts = BTreeMap::new();
            let mut rows = Vec::new();
            for f in &report.files {
                if let Some(r) = &f.report {
                    worst = worst.max(r.risk);
                    *counts.entry(r.risk).or_insert(0u64) += 1;
                    if json {
                        let mut v = r.to_json(&f.file.name);
                        if let Some(o) = v.as_object_mut() {
                            o.insert("id".into(), serde_json::json!(f.file.id));
                            o.insert("written_back".into(), serde_json::json!(f.written_back));
                            if let Some(reason) = &f.write_back_skipped {
                                o.insert("write_back_skipped".into(), serde_json::json!(reason));
                            }
                            o.insert("pipeline_error".into(), serde_json::json!(f.error));
                        }
                        println!("{v}");
                    } else {
                        rows.push(Row::from_report(&f.file.name, r));
                    }
                } else if json {
                    println!(
                        "{}",
                        serde_json::json!({"id": f.file.id, "path": f.file.name, "error": f.error})
                    );
                }
            }
            if json {
                for r in &remediations {
                    println!("{}", serde_json::json!({ "remediation": r }));
                }
            }
            if !json {
                if !rows.is_empty() {
                    print_table(rows);
                    println!();
                }
                let written = report.files.iter().filter(|f| f.written_back).count();
                println!(
                    "batch {}: {} listed, {} unchanged, {} analysed, {} written back{}, {} failed, {} retries; {:.2} s",
                    report.batch.id,
                    report.discovered,
                    report.unchanged,
                    report.batch.ok,
                    written,
                    if report.write_backs_skipped > 0 {
                        format!(
                            " ({} skipped by the plugin: see the files' status)",
                            report.write_backs_skipped
                        )
                    } else {
                        String::new()
                    },
                    report.batch.errors,
                    report.retries,
                    report.duration.as_secs_f64()
                );
                println!("by risk: {}", by_risk(&counts));
                // Every file that failed, with its reason: not only in --json. Names and
                // reasons come from the plugin and the platform, so they are sanitised.
                let failed: Vec<_> = report.files.iter().filter(|f| f.error.is_some()).collect();
                for f in failed.iter().take(MAX_FAILURES_SHOWN) {
                    println!(
                        "failed {} ({}): {}",
                        crate::output::sanitize(&f.file.name),
                        crate::output::sanitize(&f.file.id),
                        crate::output::sanitize(f.error.as_deref().unwrap_or_default())
                    );
                }
                if failed.len() > MAX_FAILURES_SHOWN {
                    println!(
                        "... and {} more failures (all of them with --json)",
                        failed.len() - MAX_FAILURES_SHOWN
                    );
                }
                for r in &remediations {
                    println!(
                        "remediation {} {}: {} ({})",
                        r.action,
                        r.file_id,
                        serde_json::to_value(r.status)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        r.detail
                    );
                }
                if report.still_queued > 0 {
                    println!(
                        "{} items are still waiting for a retry after {} s; the next sync or the daemon takes them",
                        report.still_queued,
                        RETRY_WAIT.as_secs()
                    );
                }
                if report.uncertain > 0 {
                    println!(
                        "{} write-backs were interrupted by a crash and need an operator's decision",
                        report.uncertain
                    );
                }
            }
            Ok(if worst >= proofpix_analysis::RiskLevel::High {
                Verdict::Findings
            } else {
                Verdict::Clean
            })
        }
        Command::Pixels { name, state } => {
            match state.as_deref() {
                Some(s) => {
                    host.set_pixels(&name, s == "on", "cli")?;
                    println!(
                        "pixel stage {s} for {name}{}",
                        if s == "on" {
                            "; files analysed before are looked at again by `integration sync --reanalyse`"
                        } else {
                            ""
                        }
                    );
                }
                None => println!(
                    "pixel stage {} for {name}",
                    if host.pixels(&name)? { "on" } else { "off" }
                ),
            }
            Ok(Verdict::Clean)
        }
        Command::Remediation { name, policy, off } => {
            if off {
                host.set_remediation(&name, None, "cli").await?;
                println!("remediation off for {name}");
            } else if let Some(json) = policy {
                let policy = proofpix_policy::RemediationPolicy::from_json(&json)?;
                let simulate = policy.simulate;
                host.set_remediation(&name, Some(policy), "cli").await?;
                println!(
                    "remediation policy of {name} saved{}",
                    if simulate {
                        "; simulation is on: syncs report what they would do"
                    } else {
                        ""
                    }
                );
            } else {
                let record = host.integration(&name)?;
                let offered: Vec<String> = host
                    .plugin(&record.plugin_id)
                    .map(|p| {
                        proofpix_service::declared_actions(&p)
                            .iter()
                            .map(|a| a.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "offered by plugin {}: {}",
                    record.plugin_id,
                    if offered.is_empty() {
                        "none".to_string()
                    } else {
                        offered.join(", ")
                    }
                );
                match host.remediation_policy(&name)? {
                    Some(p) => println!("policy: {}", p.to_json()),
                    None => println!("policy: none (no remediation)"),
                }
            }
            Ok(Verdict::Clean)
        }
        Command::SetSecret { name, secret } => {
            let (field, source) = split(&secret)?;
            host.set_secret(&name, &field, secret_value(&field, &source)?, "cli")
                .await?;
            println!("secret {field} of {name} replaced");
            Ok(Verdict::Clean)
        }
        Command::Authorize { name, timeout_secs } => {
            let record = host.integration(&name)?;
            let plugin = host
                .plugin(&record.plugin_id)
                .with_context(|| format!("plugin {} is not loaded", record.plugin_id))?;
            let (_, ctx) = host.context(&name, false).await?;
            let creds = host
                .credentials(&record, &plugin, &ctx)?
                .context("this integration has no credentials to authorize")?;
            let callback = proofpix_auth::LoopbackCallback::bind("/oauth/callback").await?;
            let request = creds.0.begin_authorization(callback.redirect_uri())?;
            println!(
                "Open this URL in a browser and approve access:\n\n  {}\n",
                request.url
            );
            let params = callback.wait(Duration::from_secs(timeout_secs)).await?;
            let summary = creds
                .0
                .complete_authorization(&params.state, &params.code)
                .await?;
            println!(
                "authorized; token valid until {}",
                summary
                    .expires_at
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "unknown".into())
            );
            Ok(Verdict::Clean)
        }
        Command::Remove { name } => {
            host.delete_integration(&name, "cli").await?;
            println!("integration {name} removed");
            Ok(Verdict::Clean)
        }
    }
}
