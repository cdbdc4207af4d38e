//! Plugin call overhead: what one call costs the host beyond the guest's own
//! work.
//!
//! Run: `cargo bench -p proofpix-runtime --bench instantiate`
//!
//! - `fresh_session_and_call/{pooling,on-demand}`: instantiate the
//!   well-behaved plugin for an integration and call `describe` (the cost of
//!   a call on a fresh instance, which is what every call after a trap pays
//!   and what a per-call-instance design pays always).
//! - `instantiate_only/{pooling,on-demand}`: the same sessions, timing only
//!   the component's instantiation (`SessionStats::instantiate`), without
//!   building the session's WASI context and HTTP client or the call.
//! - `warm_call/describe`: a call on a live session (record lift/lower plus
//!   the guest building its manifest).
//! - `warm_call/discover_state_log`: a call that crosses into the host twice
//!   (state get/set) and logs once.
//!
//! Setup (engine, compilation) happens outside the timed loop.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use proofpix_policy::Limits;
use proofpix_runtime::{IntegrationContext, Runtime, RuntimeConfig};

fn runtime(pooling: bool) -> Runtime {
    Runtime::new(RuntimeConfig {
        pooling,
        limits: Limits::default(),
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let wasm = std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).expect("plugin built");

    let mut group = c.benchmark_group("fresh_session_and_call");
    for (name, pooling) in [("pooling", true), ("on-demand", false)] {
        let runtime = runtime(pooling);
        let plugin = rt.block_on(runtime.load(&wasm)).expect("load");
        let ctx = IntegrationContext::new("bench");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| async {
                let mut s = plugin.session(&ctx).await.expect("session");
                s.describe().await.expect("describe")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("instantiate_only");
    for (name, pooling) in [("pooling", true), ("on-demand", false)] {
        let runtime = runtime(pooling);
        let plugin = rt.block_on(runtime.load(&wasm)).expect("load");
        let ctx = IntegrationContext::new("bench");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let s = rt.block_on(plugin.session(&ctx)).expect("session");
                    total += s.stats().instantiate;
                }
                total
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("warm_call");
    let runtime = runtime(true);
    let plugin = rt.block_on(runtime.load(&wasm)).expect("load");
    let ctx = IntegrationContext::new("bench");
    let mut session = rt.block_on(plugin.session(&ctx)).expect("session");
    group.bench_function("describe", |b| {
        b.iter(|| rt.block_on(session.describe()).expect("describe"))
    });
    group.bench_function("discover_state_log", |b| {
        b.iter(|| rt.block_on(session.discover(None)).expect("discover"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
