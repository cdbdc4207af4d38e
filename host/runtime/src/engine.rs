//! The process-wide wasm engine: configuration, instance allocation, the
//! epoch ticker and the linker.
//!
//! One [`Runtime`] per process. It owns one `Engine` (unlike hosts that make
//! one per plugin), a pooling instance allocator sized for a daemon, and a
//! thread that advances the epoch every [`EPOCH_TICK`] so running guests can
//! be interrupted. The linker holds WASI (no sockets, no env, no preopens
//! unless granted) and the contract's imports, and nothing else: a component
//! that imports anything more fails to link with an error naming the import.
//!
//! Pooling reserves virtual address space for every slot up front. Where
//! that reservation fails (small address spaces, strict overcommit, some
//! ARM boards) the runtime falls back to on-demand allocation and says so;
//! `PROOFPIX_POOLING=off` forces on-demand.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proofpix_policy::Limits;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::bindings::latest;
use crate::cache::ComponentCache;
use crate::error::LoadError;
use crate::host_state::HostState;

/// How often the epoch advances; the granularity of CPU-time checks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest guest stack; connectors are not deeply recursive, and a bounded
/// stack turns runaway recursion into a trap quickly.
const MAX_WASM_STACK_BYTES: usize = 1 << 20;

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Per-call limits.
    pub limits: Limits,
    /// Where precompiled components are cached; `None` compiles in memory.
    pub cache_dir: Option<PathBuf>,
    /// Concurrent plugin instances the pool is sized for.
    pub max_instances: u32,
    /// Use the pooling allocator when the address space allows.
    pub pooling: bool,
    /// Count guest instructions (fuel) instead of relying on epochs alone:
    /// deterministic, for the plugin test harness; about 10-30% slower.
    pub fuel: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 64,
            pooling: std::env::var("PROOFPIX_POOLING").map_or(true, |v| v != "off" && v != "0"),
            fuel: false,
        }
    }
}

/// How instances are allocated, after any fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots; instantiation in microseconds.
    Pooling,
    /// mmap per instance.
    OnDemand,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) cache: Option<ComponentCache>,
    pub(crate) allocation: Allocation,
    pub(crate) fuel: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocation", &self.inner.allocation)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine (pooling when possible), the linker and the epoch
    /// ticker.
    ///
    /// # Errors
    /// When no engine configuration works or the cache directory cannot be
    /// created.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let (engine, allocation) = if config.pooling {
            match Engine::new(&engine_config(&config, true)) {
                Ok(e) => (e, Allocation::Pooling),
                Err(e) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({e}); falling back to on-demand instance allocation"
                    );
                    (new_engine(&config, false)?, Allocation::OnDemand)
                }
            }
        } else {
            (new_engine(&config, false)?, Allocation::OnDemand)
        };

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        // Every contract version the host serves is linked: a plugin imports
        // the interfaces of the version it was built against.
        crate::bindings::since_v0_1_0::Connector::add_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)
        .map_err(|e| LoadError::Engine(e.to_string()))?;
        crate::bindings::since_v0_2_0::Connector::add_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)
        .map_err(|e| LoadError::Engine(e.to_string()))?;
        latest::Connector::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| LoadError::Engine(e.to_string()))?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(ComponentCache::new(dir).map_err(|e| {
                LoadError::Engine(format!(
                    "cannot create the component cache at {}: {e}",
                    dir.display()
                ))
            })?),
            None => None,
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone());

        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                limits: Arc::new(config.limits),
                cache,
                allocation,
                fuel: config.fuel,
                ticker_stop,
            }),
        })
    }

    /// Deletes the precompiled artifacts of the component with this content hash from the
    /// cache (no cache: nothing to do). Returns the bytes freed.
    ///
    /// # Errors
    /// The cache directory could not be read or a file not deleted.
    pub fn evict_compiled(&self, content_hash: &str) -> std::io::Result<u64> {
        match &self.inner.cache {
            Some(cache) => cache.evict(content_hash),
            None => Ok(0),
        }
    }

    /// How instances are allocated.
    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
}

fn new_engine(config: &RuntimeConfig, pooling: bool) -> Result<Engine, LoadError> {
    Engine::new(&engine_config(config, pooling)).map_err(|e| LoadError::Engine(e.to_string()))
}

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    // Component-model concurrency costs ~4x per call and connectors are
    // synchronous guests; the host side is async regardless.
    c.concurrency_support(false);
    c.epoch_interruption(true);
    c.consume_fuel(config.fuel);
    c.max_wasm_stack(MAX_WASM_STACK_BYTES);
    c.cranelift_opt_level(OptLevel::Speed);
    c.parallel_compilation(true);
    if pooling {
        let n = config.max_instances.max(1);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            // A Rust wasip2 component has a handful of core instances
            // (main module plus adapter shims) and one or two memories.
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_core_instances_per_component(16)
            .max_memory_size(usize::try_from(config.limits.memory_bytes).unwrap_or(usize::MAX))
            .max_core_instance_size(10 << 20)
            .max_component_instance_size(10 << 20)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(512 << 10)
            .max_unused_warm_slots(n);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    // A plain thread, not a tokio task: it must tick even when every tokio
    // worker is busy running guest code.
    let spawned = std::thread::Builder::new()
        .name("proofpix-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(
            "cannot start the epoch ticker ({e}); CPU limits fall back to wall-clock timeouts"
        );
    }
}
