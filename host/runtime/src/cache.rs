//! Precompiled components, cached on disk by content hash and engine
//! compatibility.
//!
//! Compiling a connector with Cranelift takes tens to hundreds of
//! milliseconds; loading the precompiled artifact (memory-mapped) takes
//! tens of microseconds. The cache key is the SHA-256 of the component's
//! bytes plus a hash of the engine's compatibility settings, so a wasmtime
//! upgrade or a changed engine setting never loads a stale artifact; a file
//! that fails to load is recompiled and replaced.
//!
//! Only files this host wrote are loaded. A `.cwasm` file is native code that
//! wasmtime runs without re-validating it, outside the plugin signature check,
//! so each one carries an HMAC-SHA256 (`<file>.mac`) under a random key kept
//! in the cache directory (`cache.key`, mode 0600, made on first use). Before
//! deserializing, the host reads the file once, checks the MAC over exactly
//! those bytes and deserializes them (no second read a swap could race); on a
//! mismatch it deletes the file, logs a warning and recompiles. The key lives
//! with the cache, not in the vault, because the runtime never holds the
//! master key: it stops anyone who can plant or edit files in the cache but
//! cannot read the owner-only key (a restored or shared cache directory, a
//! backup tool, another local account with write access), and accidental
//! corruption. Someone who runs as the daemon's user can read the key and is
//! out of scope (see SECURITY.md).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The MAC key file's name inside the cache directory.
pub const KEY_FILE: &str = "cache.key";

/// A directory of `.cwasm` artifacts, each with its MAC.
#[derive(Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    key: std::sync::Arc<[u8; 32]>,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Reads the cache's MAC key, or makes one (published whole with a hard link,
/// so a concurrent reader never sees a partial key).
fn load_or_create_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    let read = |path: &Path| -> std::io::Result<[u8; 32]> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(std::io::Error::other(format!(
                    "{} is readable by others (mode {:o}); run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let bytes = std::fs::read(path)?;
        bytes.try_into().map_err(|_| {
            std::io::Error::other(format!(
                "{} is not a 32-byte key; delete it (and the cache) to start over",
                path.display()
            ))
        })
    };
    if path.exists() {
        return read(&path);
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{KEY_FILE}.tmp{}-{}",
        std::process::id(),
        KEYS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(&key)?;
    f.sync_all()?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another loader made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e),
    }
}

/// Whether a load came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled and stored.
    Miss,
    /// No cache configured.
    Disabled,
}

impl ComponentCache {
    /// Uses (and creates, owner-only) `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let key = load_or_create_key(&dir)?;
        Ok(ComponentCache {
            dir,
            key: std::sync::Arc::new(key),
        })
    }

    fn mac(&self, name: &str, artifact: &[u8]) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(b"proofpix-cwasm-v1\0");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
    }

    /// The path of an artifact's MAC file.
    pub fn mac_path(artifact: &Path) -> PathBuf {
        let mut p = artifact.as_os_str().to_owned();
        p.push(".mac");
        PathBuf::from(p)
    }

    /// The artifact's bytes if its MAC verifies; `None` (after deleting both
    /// files) otherwise.
    fn read_verified(&self, path: &Path) -> Option<Vec<u8>> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let bytes = std::fs::read(path).ok()?;
        let tag = std::fs::read_to_string(Self::mac_path(path))
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok());
        let ok = tag.is_some_and(|t| self.mac(&name, &bytes).verify_slice(&t).is_ok());
        if ok {
            return Some(bytes);
        }
        tracing::warn!(
            path = %path.display(),
            "a cached precompiled component failed its integrity check (modified, or written without its MAC); deleting it and recompiling"
        );
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(Self::mac_path(path));
        None
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes every artifact of the component with this content hash (whatever engine
    /// compiled it) and its MAC: after an upgrade replaced it, or its plugin was removed.
    /// Returns how many bytes were freed. A file another process has mapped stays readable
    /// to it until unmapped; a later load of the same bytes compiles again.
    ///
    /// # Errors
    /// Reading the directory or deleting a file failed.
    pub fn evict(&self, content_hash: &str) -> std::io::Result<u64> {
        // Content hashes are hex SHA-256; anything else names no artifact.
        if content_hash.is_empty() || !content_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(0);
        }
        let prefix = format!("{content_hash}-");
        let mut freed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix)
                && (name.ends_with(".cwasm") || name.ends_with(".cwasm.mac"))
            {
                freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(freed)
    }

    fn path_for(&self, engine: &Engine, content_hash: &str) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir
            .join(format!("{content_hash}-{:016x}.cwasm", h.finish()))
    }

    /// Loads the artifact for `wasm`, compiling and storing it when absent.
    ///
    /// # Errors
    /// Compilation errors (the bytes are not a valid component).
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path_for(engine, content_hash);
        if path.exists()
            && let Some(bytes) = self.read_verified(&path)
        {
            match load_artifact(engine, &bytes) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "recompiling a cached component that failed to load: {e}")
                }
            }
        }
        let artifact = engine.precompile_component(wasm)?;
        // A temporary name of its own per writer: two loads of the same component in one
        // process (parallel installs, parallel tests) must not write into one file, or one
        // rename finds nothing and the other may publish a half-written artifact.
        static WRITERS: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "tmp{}-{}",
            std::process::id(),
            WRITERS.fetch_add(1, Ordering::Relaxed)
        ));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tag = hex::encode(self.mac(&name, &artifact).finalize().into_bytes());
        let tmp_mac = Self::mac_path(&tmp);
        std::fs::write(&tmp_mac, tag)?;
        std::fs::write(&tmp, &artifact)?;
        // The MAC first, then the artifact: a reader that sees the new artifact
        // sees a MAC for it (the same artifact compiles to the same bytes).
        std::fs::rename(&tmp_mac, Self::mac_path(&path))?;
        std::fs::rename(&tmp, &path)?;
        // Load the bytes just compiled, not the file: nothing read back from disk
        // is trusted without its MAC.
        Ok((load_artifact(engine, &artifact)?, CacheOutcome::Miss))
    }
}

#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize` requires that the bytes be an artifact produced by
    // `Engine::precompile_component` and not modified since. They are either
    // the output of `precompile_component` in this process, or the exact bytes
    // of a cache file whose HMAC (keyed by this cache's owner-only key) was
    // verified over those same bytes in `read_verified`; wasmtime additionally
    // validates the header and the engine compatibility hash.
    unsafe { Component::deserialize(engine, bytes) }
}
