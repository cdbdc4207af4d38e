//! `proofpix strip IN -o OUT | --in-place`: a lossless sanitised copy.
//!
//! The analysis core rebuilds the container from an allow-list and checks its
//! own output before anything is written; when it cannot be sure it refuses,
//! and the input is never touched. `--in-place` writes a temporary file in
//! the same folder and renames it over the input, so a crash leaves either
//! the old file or the new one, never half of one.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use proofpix_analysis::{StripOptions, strip};

/// `strip` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to sanitise.
    input: PathBuf,
    /// Where to write the clean copy.
    #[arg(
        short,
        long,
        conflicts_with = "in_place",
        required_unless_present = "in_place"
    )]
    output: Option<PathBuf>,
    /// Replace the input atomically.
    #[arg(long)]
    in_place: bool,
    /// Drop the ICC colour profile too (kept by default: colours depend on it).
    #[arg(long)]
    drop_icc: bool,
    /// Drop the orientation too (kept by default).
    #[arg(long)]
    drop_orientation: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let mut opts = StripOptions::default();
    opts.drop_icc = args.drop_icc;
    opts.drop_orientation = args.drop_orientation;
    let clean = strip(&bytes, &opts)
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was written", args.input.display()))?;
    let target = match (&args.output, args.in_place) {
        (Some(o), _) => o.clone(),
        (None, true) => args.input.clone(),
        (None, false) => bail!("give -o OUT or --in-place"),
    };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(&clean.bytes)?;
    tmp.as_file().sync_all()?;
    if args.in_place
        && let Ok(meta) = std::fs::metadata(&args.input)
    {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(&target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    eprintln!(
        "wrote {} ({} bytes, was {}); removed: {}; kept: {}",
        target.display(),
        clean.bytes.len(),
        bytes.len(),
        if clean.removed.is_empty() {
            "nothing".into()
        } else {
            clean.removed.join(", ")
        },
        if clean.kept.is_empty() {
            "image data only".into()
        } else {
            clean.kept.join(", ")
        }
    );
    Ok(())
}
