//! `proofpix scan DIR`: the whole pipeline on a local folder.
//!
//! The folder becomes an integration of the built-in local-folder plugin,
//! named after the folder's path, with the folder granted read-only at
//! `/input` and a report folder granted read-write at `/output`. The store in
//! the data directory remembers the cursor and which file versions were
//! analysed, so a second scan only looks at what changed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use proofpix_analysis::{Analyzer, Options, RiskLevel};
use proofpix_pipeline::integration::{context_for, set_grant};
use proofpix_pipeline::{Pipeline, PipelineOptions, SyncMode};
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::{Runtime, RuntimeConfig};
use proofpix_store::{IntegrationRecord, Store};
use sha2::{Digest, Sha256};

use crate::output::{Row, by_risk, print_table};
use crate::{Verdict, load_policy};

/// `scan` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to scan.
    dir: PathBuf,
    /// One JSON object per analysed file per line, then a summary object.
    #[arg(long)]
    json: bool,
    /// Where the JSON reports go (default: `<data dir>/reports/<scan id>`).
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// Re-analyse every file, not only the changed ones.
    #[arg(long)]
    full: bool,
    /// A TOML risk policy overriding the default.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Show names, e-mails and serials in full instead of masked.
    #[arg(long)]
    show_values: bool,
    /// Also look at what the pictures show (QR codes, personal data in OCR text), as
    /// `analyze --pixels` does. Reads whole files; much slower than metadata alone.
    #[arg(long)]
    pixels: bool,
    /// Files fetched and analysed at once (default: one per core).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<Verdict> {
    let meta = std::fs::metadata(&args.dir)
        .with_context(|| format!("cannot scan {}", args.dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "cannot scan {}: not a folder (use `proofpix analyze` for single files)",
            args.dir.display()
        );
    }
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot scan {}", args.dir.display()))?;
    let policy = load_policy(args.policy.as_ref())?;

    let data_dir = proofpix_store::data_dir()?;
    let (store, _) = Store::open_default()?;
    let store = Arc::new(store);
    let scan_id = format!(
        "scan-{}",
        &hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()))[..12]
    );
    let reports = match &args.reports {
        Some(r) => {
            std::fs::create_dir_all(r)
                .with_context(|| format!("cannot create the report folder {}", r.display()))?;
            r.canonicalize()?
        }
        None => {
            let r = data_dir.join("reports").join(&scan_id);
            std::fs::create_dir_all(&r)
                .with_context(|| format!("cannot create the report folder {}", r.display()))?;
            r
        }
    };

    let runtime = Runtime::new(RuntimeConfig {
        limits: Limits::from_env()?,
        cache_dir: Some(data_dir.join("cache").join("components")),
        ..RuntimeConfig::default()
    })?;
    let local_folder = proofpix_plugin_artifacts::first_party_plugin("local-folder")
        .context("the local-folder plugin is not built in")?;
    // Verify the built-in plugin like any other, and load the component itself.
    let mut trust = proofpix_signing::TrustStore::default();
    trust.add(
        proofpix_signing::PublicKey::from_line(proofpix_plugin_artifacts::FIRST_PARTY_PUBLIC_KEY)
            .map_err(anyhow::Error::msg)?,
    );
    let verified = proofpix_signing::verify(local_folder, &trust)
        .context("the built-in local-folder plugin failed verification")?;
    let plugin = runtime
        .load(&verified.content)
        .await
        .context("loading the built-in local-folder plugin")?;

    let record = upsert_integration(
        &store,
        &scan_id,
        plugin.info().version.as_str(),
        &dir,
        &reports,
    )?;
    let ctx = context_for(&store, &record, plugin.info(), None)?;

    let options = PipelineOptions {
        // Local files: the analysis is the work, so one file per core by default.
        concurrency: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        wait_for_retries: Some(Duration::from_secs(30)),
        retry_base: Duration::from_millis(200),
        ..PipelineOptions::default()
    };
    let analyzer = Analyzer::new(
        policy,
        Options::default().with_show_values(args.show_values),
    );
    let pipeline = Pipeline::new(store.clone(), Arc::new(analyzer), options);
    let mode = if args.full {
        SyncMode::Reanalyse
    } else {
        SyncMode::Incremental
    };
    let routes = proofpix_pipeline::Routes {
        pixels: args.pixels,
        ..proofpix_pipeline::Routes::default()
    };
    let report = pipeline.sync_routed(&plugin, &ctx, mode, &routes).await?;

    let mut worst = RiskLevel::None;
    let mut counts: BTreeMap<RiskLevel, u64> = BTreeMap::new();
    let mut failed = 0u64;
    let mut rows = Vec::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for f in &report.files {
        let shown = dir.join(&f.file.id);
        match (&f.report, &f.error) {
            (Some(r), error) => {
                worst = worst.max(r.risk);
                *counts.entry(r.risk).or_default() += 1;
                if args.json {
                    let mut v = r.to_json(&shown.display().to_string());
                    if let (Some(o), Some(e)) = (v.as_object_mut(), error) {
                        o.insert("pipeline_error".into(), serde_json::json!(e));
                    }
                    writeln!(out, "{v}")?;
                } else {
                    let mut row = Row::from_report(&f.file.id, r);
                    if let Some(e) = error {
                        row.detail.push_str(&format!(" [{e}]"));
                    }
                    rows.push(row);
                }
            }
            (None, error) => {
                failed += 1;
                let e = error.clone().unwrap_or_else(|| "not analysed".into());
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"path": shown.display().to_string(), "error": e})
                    )?;
                } else {
                    rows.push(Row {
                        risk: RiskLevel::None,
                        score: 0,
                        name: f.file.id.clone(),
                        detail: format!("failed: {e}"),
                    });
                }
            }
        }
    }
    let analysed = report.files.len() as u64 - failed;
    let fetched: u64 = report.files.iter().map(|f| f.bytes_fetched).sum();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"summary": {
                "folder": dir.display().to_string(),
                "batch": report.batch.id,
                "analysed": analysed,
                "unchanged": store.file_count(&scan_id).unwrap_or(0).saturating_sub(report.files.len() as u64),
                "failed": failed,
                "by_risk": counts.iter().map(|(k, v)| (k.as_str(), *v)).collect::<BTreeMap<_, _>>(),
                "bytes_read": fetched,
                "duration_ms": report.duration.as_millis() as u64,
                "reports": reports.display().to_string(),
            }})
        )?;
        out.flush()?;
    } else {
        drop(out);
        if !rows.is_empty() {
            print_table(rows);
            println!();
        }
        let known = store.file_count(&scan_id).unwrap_or(0);
        let earlier = known.saturating_sub(report.files.len() as u64);
        if report.files.is_empty() {
            println!(
                "No new or changed files since the last scan ({known} files known); {:.2} s",
                report.duration.as_secs_f64()
            );
        } else {
            println!(
                "{analysed} new or changed files analysed, {failed} failed, {earlier} unchanged from earlier scans; {:.2} s",
                report.duration.as_secs_f64()
            );
            println!("by risk: {}", by_risk(&counts));
        }
        if report.still_queued > 0 {
            println!(
                "{} files are waiting for a retry; run the scan again to process them",
                report.still_queued
            );
        }
        println!("reports: {}", reports.display());
    }
    Ok(if worst >= RiskLevel::High {
        Verdict::Findings
    } else {
        Verdict::Clean
    })
}

/// Creates or updates the scan's integration record.
fn upsert_integration(
    store: &Store,
    id: &str,
    version: &str,
    dir: &Path,
    reports: &Path,
) -> anyhow::Result<IntegrationRecord> {
    let mut record = match store.integration(id)? {
        Some(r) => r,
        None => IntegrationRecord::new(id, "local-folder", version, store.now()),
    };
    record.plugin_version = version.to_string();
    record
        .config
        .insert("folder".into(), dir.display().to_string());
    record
        .config
        .insert("output".into(), reports.display().to_string());
    let grant = OperatorGrant {
        mounts: vec!["/input".into(), "/output".into()],
        write: vec!["/output".into()],
        ..OperatorGrant::default()
    };
    set_grant(&mut record, &grant);
    record.updated_at = store.now();
    store.put_integration(&record, "cli")?;
    Ok(record)
}
