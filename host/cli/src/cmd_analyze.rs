//! `proofpix analyze PATH...`: analyse local files directly, without the
//! plugin pipeline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proofpix_analysis::{Analyzer, FileSource, Options, PixelRun, Report, RiskLevel};

use crate::output::{Row, by_risk, print_table};
use crate::{Verdict, load_policy, walk};

/// `analyze` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files and folders to analyse (folders recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per file per line.
    #[arg(long)]
    json: bool,
    /// A TOML risk policy overriding the default.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Show names, e-mails and serials in full instead of masked.
    #[arg(long)]
    show_values: bool,
    /// Read whole files: find trailers hidden behind a second end-of-image
    /// marker and compare thumbnails with the image by perceptual hash.
    #[arg(long)]
    deep: bool,
    /// Also look at what the picture shows: QR codes (Wi-Fi passwords, contacts, payments)
    /// and personal data in text read by OCR (cards, IBANs, national ids, e-mail, phone).
    /// Reads whole files and needs `tesseract` for text; much slower than metadata alone.
    #[arg(long)]
    pixels: bool,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
    let policy = load_policy(args.policy.as_ref())?;
    let options = Options::default()
        .with_show_values(args.show_values)
        .with_deep(args.deep);
    let analyzer = Analyzer::new(policy, options);
    let files = walk::files(&args.paths)?;
    let pixels = args.pixels.then(|| {
        proofpix_pixels::PixelStage::new(proofpix_pixels::Budget::default())
            .show_values(args.show_values)
    });
    let started = Instant::now();
    let reports = analyse_all(&analyzer, pixels.as_ref(), &files, args.jobs);
    let elapsed = started.elapsed();

    let mut worst = RiskLevel::None;
    let mut counts: BTreeMap<RiskLevel, u64> = BTreeMap::new();
    let mut errors = 0u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rows = Vec::new();
    for (path, report) in files.iter().zip(&reports) {
        worst = worst.max(report.risk);
        *counts.entry(report.risk).or_default() += 1;
        if report.error.is_some() {
            errors += 1;
        }
        if args.json {
            writeln!(out, "{}", report.to_json(&path.display().to_string()))?;
        } else {
            rows.push(Row::from_report(&path.display().to_string(), report));
        }
    }
    out.flush()?;
    drop(out);
    if !args.json {
        print_table(rows);
        let bytes: u64 = reports.iter().map(|r| r.bytes_read).sum();
        println!();
        println!(
            "{} files in {:.2} s: {}; {} with read errors; {} KiB read",
            files.len(),
            elapsed.as_secs_f64(),
            by_risk(&counts),
            errors,
            bytes / 1024
        );
    }
    Ok(if worst >= RiskLevel::High {
        Verdict::Findings
    } else {
        Verdict::Clean
    })
}

/// Analyses files on `jobs` threads, results in input order.
fn analyse_all(
    analyzer: &Analyzer,
    pixels: Option<&proofpix_pixels::PixelStage>,
    files: &[PathBuf],
    jobs: Option<usize>,
) -> Vec<Report> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Report>> = vec![None; files.len()];
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let report = match pixels {
                        Some(stage) => analyse_with_pixels(stage, analyzer, path),
                        None => analyse_one(analyzer, path),
                    };
                    if let Ok(mut r) = results.lock()
                        && let Some(slot) = r.get_mut(i)
                    {
                        *slot = Some(report);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| error_report(analyzer, "not analysed")))
        .collect()
}

/// Analyses one file; an unreadable file becomes a report with an error.
pub fn analyse_one(analyzer: &Analyzer, path: &std::path::Path) -> Report {
    match std::fs::File::open(path).and_then(FileSource::new) {
        Ok(src) => analyzer.analyze(&src),
        Err(e) => error_report(analyzer, &format!("cannot read the file: {e}")),
    }
}

/// Analyses one file's metadata and pixels from one read of the whole file, as the pipeline
/// does. A file over [`proofpix_pixels::MAX_FILE_BYTES`] is analysed for its metadata only, by
/// the ranges the analysis reads, and its pixel run says why it was skipped.
fn analyse_with_pixels(
    stage: &proofpix_pixels::PixelStage,
    analyzer: &Analyzer,
    path: &std::path::Path,
) -> Report {
    use std::io::Read as _;
    let max = proofpix_pixels::MAX_FILE_BYTES;
    let unreadable = |e: std::io::Error| {
        let why = format!("cannot read the file: {e}");
        let mut report = error_report(analyzer, &why);
        report.add_pixel_findings(Vec::new(), PixelRun::skipped(why), analyzer.policy());
        report
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let mut size = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return unreadable(e),
    };
    if size <= max {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        match (&file).take(max + 1).read_to_end(&mut bytes) {
            Ok(n) if n as u64 <= max => {
                let mut report = analyzer.analyze(&bytes);
                stage.add_to_report(&bytes, &mut report, analyzer.policy());
                return report;
            }
            // It grew past the limit since its size was read: as a large file.
            Ok(n) => size = size.max(n as u64),
            Err(e) => return unreadable(e),
        }
    }
    let mut report = match FileSource::new(file) {
        Ok(src) => analyzer.analyze(&src),
        Err(e) => return unreadable(e),
    };
    report.add_pixel_findings(
        Vec::new(),
        PixelRun::skipped(format!(
            "the file is {} MiB, over the pixel stage's {} MiB",
            size >> 20,
            max >> 20
        )),
        analyzer.policy(),
    );
    report
}

fn error_report(analyzer: &Analyzer, msg: &str) -> Report {
    // An empty source yields an "unsupported" report; replace its error.
    let mut r = analyzer.analyze(&Vec::<u8>::new());
    r.error = Some(msg.to_string());
    r
}
