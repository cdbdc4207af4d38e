//! Development stand-in for `proofpix strip` until the CLI wires this crate in.
//!
//! Run: `cargo run --release -p proofpix-analysis --example strip -- IN -o OUT`
//! or `... --example strip -- IN --in-place`, with `--drop-icc` / `--drop-orientation`.
//!
//! Prints what was removed and kept. Refusals print the reason and exit 2, leaving the input
//! untouched. `--in-place` writes a temporary file next to the input, syncs it, and renames it
//! over the input, so a crash leaves either the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use proofpix_analysis::{FileSource, StripOptions, strip};

fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.proofpix-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn main() -> ExitCode {
    let mut input: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut in_place = false;
    let mut opts = StripOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => output = args.next().map(PathBuf::from),
            "--in-place" => in_place = true,
            "--drop-icc" => opts = opts.with_drop_icc(true),
            "--drop-orientation" => opts = opts.with_drop_orientation(true),
            _ => input = Some(PathBuf::from(a)),
        }
    }
    let Some(input) = input else {
        eprintln!("usage: strip IN (-o OUT | --in-place) [--drop-icc] [--drop-orientation]");
        return ExitCode::from(2);
    };
    let target = match (output, in_place) {
        (Some(o), false) => o,
        (None, true) => input.clone(),
        _ => {
            eprintln!("give exactly one of -o OUT and --in-place");
            return ExitCode::from(2);
        }
    };
    let src = match std::fs::File::open(&input).and_then(FileSource::new) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    match strip(&src, &opts) {
        Ok(s) => {
            if let Err(e) = write_atomic(&target, &s.bytes) {
                eprintln!("{}: {e}", target.display());
                return ExitCode::from(2);
            }
            println!("removed: {}", s.removed.join("; "));
            println!(
                "kept: {}",
                if s.kept.is_empty() {
                    "image data only".to_owned()
                } else {
                    s.kept.join("; ")
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            ExitCode::from(2)
        }
    }
}
