//! Turning command-line paths into a sorted list of files.
//!
//! Directories are walked recursively in name order; hidden entries are
//! skipped; symbolic links are not followed (a link loop must not hang the
//! walk, and a link out of the tree is not what the operator pointed at).
//! A path that does not exist is an error naming it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// How deep a walk goes.
const MAX_DEPTH: usize = 64;

/// Every regular file named by `paths`, directories expanded.
pub fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta =
            std::fs::symlink_metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, 0, &mut out)?;
        } else if meta.is_file() {
            out.push(p.clone());
        } else if meta.file_type().is_symlink() {
            // A link named explicitly is what the operator asked for.
            if std::fs::metadata(p).is_ok_and(|m| m.is_file()) {
                out.push(p.clone());
            }
        } else {
            bail!("{} is not a file or a folder", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            // An unreadable subfolder is reported and skipped.
            if let Err(err) = walk(&e.path(), depth + 1, out) {
                eprintln!("proofpix: {err:#}");
            }
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}
