//! Per-instance host state: WASI context, limits, budgets and the
//! integration's capabilities.
//!
//! The adversary is the guest. Its memory is bounded by a limiter that sums
//! **all** of an instance's linear memories (a component with two memories
//! gets the limit once, not twice). Its stdout/stderr and log output are
//! captured per call up to a byte budget; writes past it are accepted and
//! dropped, so a flood neither fills the operator's disk nor crashes the
//! guest on a failed `println!`. CPU time is measured as wall time in the
//! call minus time spent in host calls (HTTP waits are not the guest's).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use proofpix_policy::Limits;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::context::IntegrationContext;
use crate::egress_http::EgressHttp;

/// Sums every linear memory of an instance against one cap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) cap: u64,
    pub(crate) total: u64,
    pub(crate) high_water: u64,
    /// Set when a growth was refused, so the error names the limit.
    pub(crate) refused: Option<u64>,
}

impl MemoryLimiter {
    pub(crate) fn new(cap: u64) -> Self {
        MemoryLimiter {
            cap,
            total: 0,
            high_water: 0,
            refused: None,
        }
    }
}

/// Table elements per instance; connectors use a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, tables and memories per component instance; a Rust
/// component built with wasi has a handful of each.
const MAX_INSTANCES: usize = 64;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current) as u64;
        let would_be = self.total.saturating_add(grow);
        if would_be > self.cap {
            self.refused = Some(would_be);
            return Ok(false);
        }
        self.total = would_be;
        self.high_water = self.high_water.max(self.total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_INSTANCES
    }
    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}

/// Captured guest output, budgeted per call.
#[derive(Debug, Default)]
pub(crate) struct CapturedOutput {
    pub(crate) buf: Vec<u8>,
    pub(crate) budget: usize,
    pub(crate) dropped: u64,
}

impl CapturedOutput {
    pub(crate) fn accept(&mut self, bytes: &[u8]) {
        let room = self.budget.saturating_sub(self.buf.len());
        let take = bytes.len().min(room);
        self.buf
            .extend_from_slice(bytes.get(..take).unwrap_or_default());
        self.dropped += (bytes.len() - take) as u64;
    }

    pub(crate) fn take(&mut self, budget: usize) -> (Vec<u8>, u64) {
        let out = std::mem::take(&mut self.buf);
        let dropped = std::mem::replace(&mut self.dropped, 0);
        self.budget = budget;
        (out, dropped)
    }
}

/// A guest stdout/stderr that writes into a [`CapturedOutput`].
#[derive(Debug, Clone)]
pub(crate) struct CapturedStream(pub(crate) Arc<Mutex<CapturedOutput>>);

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut out) = self.0.lock() {
            out.accept(buf);
        }
        // Always report the whole write as done: dropping past the budget is
        // the host's business, not an error the guest should trip over.
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Log output budget per call.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    pub(crate) left: usize,
    pub(crate) dropped_lines: u64,
}

/// The `T` of every plugin `Store<T>`.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) ctx: IntegrationContext,
    pub(crate) http: EgressHttp,
    pub(crate) limits: Arc<Limits>,
    /// "id version", for messages and log fields.
    pub(crate) plugin: Arc<str>,
    /// Config fields the manifest declares secret.
    pub(crate) secret_fields: Arc<[String]>,
    pub(crate) stdout: Arc<Mutex<CapturedOutput>>,
    pub(crate) logs: LogBudget,
    pub(crate) call_started: Instant,
    pub(crate) host_wait: Duration,
    /// Set by the epoch callback when the CPU budget ran out.
    pub(crate) cpu_exhausted: bool,
}

impl HostState {
    /// Guest CPU time spent in the current call so far.
    pub(crate) fn guest_time(&self) -> Duration {
        self.call_started.elapsed().saturating_sub(self.host_wait)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_sums_every_memory_of_an_instance() {
        let mut l = MemoryLimiter::new(100);
        assert!(
            matches!(l.memory_growing(0, 60, None), Ok(true)),
            "first memory fits"
        );
        assert!(
            matches!(l.memory_growing(0, 60, None), Ok(false)),
            "a second memory shares the same cap"
        );
        assert_eq!(l.refused, Some(120));
        assert!(matches!(l.memory_growing(0, 40, None), Ok(true)));
        assert_eq!(l.high_water, 100);
    }

    #[test]
    fn captured_output_drops_past_its_budget_and_counts_it() {
        let mut c = CapturedOutput {
            budget: 4,
            ..Default::default()
        };
        c.accept(b"abcdef");
        assert_eq!(c.buf, b"abcd");
        assert_eq!(c.dropped, 2);
        let (taken, dropped) = c.take(8);
        assert_eq!((taken.len(), dropped), (4, 2));
        c.accept(b"0123456789");
        assert_eq!(c.buf.len(), 8);
    }
}
