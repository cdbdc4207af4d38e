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
//! Only files this host wrote are loaded: the cache directory is created
//! owner-only, and wasmtime checks each artifact's header and compatibility
//! before mapping it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `.cwasm` artifacts.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
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
        Ok(ComponentCache { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        if path.exists() {
            match load_artifact(engine, &path) {
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
        std::fs::write(&tmp, &artifact)?;
        std::fs::rename(&tmp, &path)?;
        Ok((load_artifact(engine, &path)?, CacheOutcome::Miss))
    }
}

#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` requires that the file be an artifact
    // produced by `Engine::precompile_component` and not modified since. The
    // file lives in this host's owner-only cache directory and was written by
    // `load_or_compile` above (write to a temporary name, then rename, so no
    // reader sees a partial file); wasmtime additionally validates its header
    // and the engine compatibility hash before using it.
    unsafe { Component::deserialize_file(engine, path) }
}
