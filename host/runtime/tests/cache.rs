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
