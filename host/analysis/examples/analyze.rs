//! Development stand-in for `proofpix analyze` until the CLI wires this crate in.
//!
//! Run: `cargo run --release -p proofpix-analysis --example analyze -- [--json] [--policy FILE]
//! [--show-values] [--deep] [--summary] PATH...`
//!
//! Walks files and folders (sorted, symlinks not followed) and prints one JSON object per file
//! per line with `--json` (the exact `Report::to_json` object), otherwise one summary line per
//! file and a total. Exit code: 0 when nothing is high-risk, 1 when any file has a finding at
//! high or above, 2 when a file could not be read or the policy is invalid.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use proofpix_analysis::{Analyzer, FileSource, Options, Policy, RiskLevel};

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(_) => return,
            };
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        }
        Ok(m) if m.is_file() => out.push(p.to_path_buf()),
        _ => {}
    }
}

fn main() -> ExitCode {
    let mut json = false;
    let mut show = false;
    let mut deep = false;
    let mut policy = Policy::default();
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--show-values" => show = true,
            "--deep" => deep = true,
            "--policy" => {
                let Some(f) = args.next() else {
                    eprintln!("--policy needs a file");
                    return ExitCode::from(2);
                };
                let text = match std::fs::read_to_string(&f) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("{f}: {e}");
                        return ExitCode::from(2);
                    }
                };
                policy = match Policy::from_toml_str(&text) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("{f}: {e}");
                        return ExitCode::from(2);
                    }
                };
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let mut files = Vec::new();
    for p in &paths {
        walk(p, &mut files);
    }
    let analyzer = Analyzer::new(
        policy,
        Options::default().with_show_values(show).with_deep(deep),
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut high, mut failed, mut total_read, mut total_len) = (0usize, 0usize, 0u64, 0u64);
    for f in &files {
        let path = f.display().to_string();
        let src = match std::fs::File::open(f).and_then(FileSource::new) {
            Ok(s) => s,
            Err(e) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"path": path, "error": e.to_string()})
                );
                continue;
            }
        };
        total_len += proofpix_analysis::ByteSource::len(&src);
        let r = analyzer.analyze(&src);
        total_read += r.bytes_read;
        if r.risk >= RiskLevel::High {
            high += 1;
        }
        if json {
            let _ = writeln!(out, "{}", r.to_json(&path));
        } else {
            let _ = writeln!(out, "{path}: {}", r.summary());
        }
    }
    if !json {
        let _ = writeln!(
            out,
            "{} files, {high} at high risk or above, {failed} unreadable; read {total_read} of {total_len} bytes",
            files.len()
        );
    }
    let _ = out.flush();
    if failed > 0 {
        ExitCode::from(2)
    } else if high > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
