//! What the pipeline asks of a connector, as two traits.
//!
//! In the product the connector is a sandboxed WebAssembly [`Plugin`] and its
//! [`Session`]; the pipeline's own tests use an in-process connector written in
//! Rust (`tests/pipeline/fake.rs`), so every stage can be exercised without a
//! wasm build, the way Spin tests its factors against a `TestEnvironment`.
//!
//! Both traits describe calls, not bytes: a session answers *where* a file's
//! content is ([`DownloadAnswer`]) and the host's [`ContentFetcher`] opens it,
//! under the session's grants. A fake session is given a fetcher too
//! ([`ContentFetcher::local`]), so what it can read is bounded the same way.

use std::future::Future;

use proofpix_model::{FileResult, Page, RemoteFile, WriteOutcome};
use proofpix_runtime::contract::{Capability, DownloadAnswer};
use proofpix_runtime::{CallError, ContentFetcher, IntegrationContext, LoadError, Plugin, Session};

/// What a connector declares that the pipeline acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Its version: part of the write-back idempotency key, so a new version writes again.
    pub version: String,
    /// Whether it writes results back (a plugin declaring the source capability).
    pub writes_back: bool,
    /// How many results one write-back call takes (0 reads as 1).
    pub write_back_batch_size: u32,
    /// Whether writing the same result twice leaves the platform as once, so a write-back
    /// left uncertain by a crash may be repeated.
    pub write_back_idempotent: bool,
}

/// A connector the pipeline syncs through: it opens sessions for an integration.
pub trait Connector: Send + Sync {
    /// One integration's session.
    type Session: ConnectorSession;

    /// A name for logs and messages.
    fn label(&self) -> &str;

    /// What the connector declares about writing back.
    fn info(&self) -> ConnectorInfo;

    /// A fresh session for `ctx`; the pipeline opens another when one is poisoned.
    fn session(
        &self,
        ctx: &IntegrationContext,
    ) -> impl Future<Output = Result<Self::Session, LoadError>> + Send;
}

/// One integration's session: the calls a sync makes.
pub trait ConnectorSession: Send {
    /// Whether the session must be replaced before its next call (a trap, a timeout).
    fn is_poisoned(&self) -> bool;

    /// The page of changes after `cursor` (`None`: from the start).
    fn discover(
        &mut self,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, CallError>> + Send;

    /// Where `file`'s content is, for the host to fetch.
    fn download(
        &mut self,
        file: &RemoteFile,
    ) -> impl Future<Output = Result<DownloadAnswer, CallError>> + Send;

    /// Writes a batch of results back to the platform; one outcome per result.
    fn write_back(
        &mut self,
        results: &[FileResult],
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, CallError>> + Send;

    /// The host's fetcher under this session's grants.
    fn fetcher(&self) -> &ContentFetcher;
}

impl Connector for Plugin {
    type Session = Session;

    fn label(&self) -> &str {
        Plugin::label(self)
    }

    fn info(&self) -> ConnectorInfo {
        let info = Plugin::info(self);
        ConnectorInfo {
            version: info.version.clone(),
            writes_back: info.capabilities.contains(&Capability::Source),
            write_back_batch_size: info.write_back_batch_size,
            write_back_idempotent: info.write_back_idempotent,
        }
    }

    fn session(
        &self,
        ctx: &IntegrationContext,
    ) -> impl Future<Output = Result<Session, LoadError>> + Send {
        Plugin::session(self, ctx)
    }
}

impl ConnectorSession for Session {
    fn is_poisoned(&self) -> bool {
        Session::is_poisoned(self)
    }

    fn discover(
        &mut self,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, CallError>> + Send {
        Session::discover(self, cursor)
    }

    fn download(
        &mut self,
        file: &RemoteFile,
    ) -> impl Future<Output = Result<DownloadAnswer, CallError>> + Send {
        Session::download(self, file)
    }

    fn write_back(
        &mut self,
        results: &[FileResult],
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, CallError>> + Send {
        Session::write_back(self, results)
    }

    fn fetcher(&self) -> &ContentFetcher {
        Session::fetcher(self)
    }
}
