//! The component cache under concurrent loads of the same component in one process.

use std::sync::{Arc, Barrier};

use proofpix_runtime::ComponentCache;

/// Regression: writers in one process shared one temporary file name, so concurrent first
/// loads of a component failed (`rename` found nothing) or published a half-written artifact.
/// Seen as `Host::new` failing in parallel service tests after the plugins changed.
#[test]
fn concurrent_first_loads_of_one_component_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ComponentCache::new(tmp.path().join("cache")).unwrap();
    let engine = wasmtime::Engine::default();
    let wasm = Arc::new(std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap());
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cache, engine, wasm, barrier) =
                (cache.clone(), engine.clone(), wasm.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache
                    .load_or_compile(&engine, &wasm, "same-hash")
                    .map(|(_, outcome)| outcome)
                    .map_err(|e| format!("{e:#}"))
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files are left behind");
}

/// Issue 11, item 14: a `.cwasm` file is native code loaded without the signature check, so
/// one flipped byte (or a planted file) must never be loaded: it is deleted and recompiled.
#[test]
fn a_tampered_cached_artifact_is_recompiled_never_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let cache = ComponentCache::new(&dir).unwrap();
    let engine = wasmtime::Engine::default();
    let wasm = std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap();
    let (_, first) = cache.load_or_compile(&engine, &wasm, "h").unwrap();
    assert_eq!(first, proofpix_runtime::CacheOutcome::Miss);
    let (_, again) = cache.load_or_compile(&engine, &wasm, "h").unwrap();
    assert_eq!(
        again,
        proofpix_runtime::CacheOutcome::Hit,
        "an intact file is used"
    );

    let artifact = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    let original = std::fs::read(&artifact).unwrap();
    // Flip one byte in the middle (in the code, past wasmtime's header checks).
    let mut bytes = original.clone();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    let (_, outcome) = cache.load_or_compile(&engine, &wasm, "h").unwrap();
    assert_eq!(
        outcome,
        proofpix_runtime::CacheOutcome::Miss,
        "the tampered file is recompiled, not loaded"
    );
    assert_eq!(std::fs::read(&artifact).unwrap(), original, "and replaced");

    // A file planted without a MAC (or with a MAC made without the key) is refused too.
    std::fs::remove_file(ComponentCache::mac_path(&artifact)).unwrap();
    let (_, outcome) = cache.load_or_compile(&engine, &wasm, "h").unwrap();
    assert_eq!(outcome, proofpix_runtime::CacheOutcome::Miss);
    std::fs::write(ComponentCache::mac_path(&artifact), "00".repeat(32)).unwrap();
    let (_, outcome) = cache.load_or_compile(&engine, &wasm, "h").unwrap();
    assert_eq!(outcome, proofpix_runtime::CacheOutcome::Miss);

    // The key is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(proofpix_runtime::CACHE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
