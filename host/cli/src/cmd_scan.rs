//! `proofpix scan DIR`: the whole pipeline on a local folder.
//!
//! The folder becomes an integration of the built-in local-folder plugin,
//! named after the folder's path, with the folder granted read-only at
//! `/input` and a report folder granted read-write at `/output`. The store in
//! the data directory remembers the cursor and which file versions were
//! analysed, so a second scan only looks at what changed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use proofpix_analysis::{Options, RiskLevel};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_service::{Host, HostOptions, IntegrationSpec};
use sha2::{Digest, Sha256};

use crate::output::{Row, by_risk, print_table};
use crate::{Verdict, load_policy};

/// The built-in plugin a scan runs.
const LOCAL_FOLDER: &str = "local-folder";
/// Who the audit log says made a scan's changes.
const ACTOR: &str = "cli";

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
    let store = std::sync::Arc::new(proofpix_store::Store::open_default()?.0);
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

    // The same composition as the daemon: a host (store, runtime, pipeline, notification
    // and remediation routing) with only the built-in local-folder plugin loaded, and the
    // folder an integration of it. A notifier subscribed to this scan, or a remediation
    // policy set on it, applies here as in the daemon.
    let options = HostOptions {
        limits: Limits::from_env()?,
        cache_dir: Some(data_dir.join("cache").join("components")),
        pipeline: PipelineOptions {
            // Local files: the analysis is the work, so one file per core by default.
            concurrency: args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            wait_for_retries: Some(Duration::from_secs(30)),
            retry_base: Duration::from_millis(200),
            ..PipelineOptions::default()
        },
        policy,
        analysis: Options::default().with_show_values(args.show_values),
        // The binary's own local-folder plugin, verified against the key built into the same
        // binary; `scan` has always trusted it, development build or not.
        trust_development_build: true,
        data_dir: Some(data_dir.clone()),
        only_plugins: Some(vec![LOCAL_FOLDER.to_string()]),
        ..HostOptions::default()
    };
    let host = Host::new(store, options)
        .await
        .context("starting the host for the scan")?;
    if host.plugin(LOCAL_FOLDER).is_none() {
        bail!("the built-in local-folder plugin did not load; see the messages above");
    }
    let spec = IntegrationSpec {
        id: scan_id.clone(),
        plugin: LOCAL_FOLDER.into(),
        config: BTreeMap::from([
            ("folder".to_string(), dir.display().to_string()),
            ("output".to_string(), reports.display().to_string()),
        ]),
        grant: OperatorGrant {
            mounts: vec!["/input".into(), "/output".into()],
            write: vec!["/output".into()],
            ..OperatorGrant::default()
        },
        ..IntegrationSpec::default()
    };
    host.create_integration(spec, ACTOR)
        .await
        .with_context(|| format!("setting up the scan of {}", dir.display()))?;
    if host.pixels(&scan_id)? != args.pixels {
        host.set_pixels(&scan_id, args.pixels, ACTOR)?;
    }
    let mode = if args.full {
        SyncMode::Reanalyse
    } else {
        SyncMode::Incremental
    };
    let report = host.sync(&scan_id, mode).await?;
    let known = host.file_count(&scan_id).unwrap_or(0);

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
                "unchanged": known.saturating_sub(report.files.len() as u64),
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
