//! Where ProofPix keeps its files.
//!
//! | source | directory |
//! |---|---|
//! | `PROOFPIX_HOME` set and non-empty | that directory |
//! | else `XDG_DATA_HOME` set and absolute | `$XDG_DATA_HOME/proofpix` |
//! | else | `$HOME/.local/share/proofpix` |
//!
//! The directory is created on first use with mode 0700, because it holds the store (sealed
//! secrets, file names, results) and possibly the master key file. An existing directory with
//! group or other permissions is used as found, with a warning: changing the permissions of a
//! directory an operator chose is not this function's call.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::OpenError;

/// The environment variable that overrides the data directory.
pub const HOME_ENV: &str = "PROOFPIX_HOME";

/// The store's file name inside the data directory.
pub const STORE_FILE_NAME: &str = "proofpix.redb";

/// Resolves the data directory from the environment and creates it (0700) if needed.
///
/// # Errors
///
/// [`OpenError::NoDataDir`] when no variable gives a directory; [`OpenError::DataDir`] when
/// it cannot be created.
pub fn data_dir() -> Result<PathBuf, OpenError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = resolve_data_dir(var(HOME_ENV), var("XDG_DATA_HOME"), var("HOME"))
        .ok_or(OpenError::NoDataDir)?;
    ensure_data_dir(&dir)?;
    Ok(dir)
}

/// The pure part of [`data_dir`]: which directory the given variables select.
pub fn resolve_data_dir(
    proofpix_home: Option<std::ffi::OsString>,
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(dir) = proofpix_home {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = xdg_data_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(xdg.join("proofpix"));
    }
    home.map(|h| PathBuf::from(h).join(".local/share/proofpix"))
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
///
/// # Errors
///
/// [`OpenError::DataDir`] if creating or inspecting it fails.
pub fn ensure_data_dir(dir: &Path) -> Result<(), OpenError> {
    let err = |source: io::Error| OpenError::DataDir {
        path: dir.to_owned(),
        source,
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:04o}"),
                "the data directory is accessible to other users; run chmod 700 on it"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofpix_home_wins_then_xdg_then_home() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        assert_eq!(
            resolve_data_dir(s("/p"), s("/x"), s("/h")),
            Some(PathBuf::from("/p"))
        );
        assert_eq!(
            resolve_data_dir(None, s("/x"), s("/h")),
            Some(PathBuf::from("/x/proofpix"))
        );
        assert_eq!(
            resolve_data_dir(None, s("relative"), s("/h")),
            Some(PathBuf::from("/h/.local/share/proofpix")),
            "a relative XDG_DATA_HOME is ignored, as the XDG spec says"
        );
        assert_eq!(resolve_data_dir(None, None, None), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_directory_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/proofpix");
        ensure_data_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
