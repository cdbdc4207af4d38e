//! The plugin runtime: a narrow wasmtime wrapper that loads connector
//! components into a sandbox and calls them under limits.
//!
//! Connectors are untrusted. The runtime gives them no ambient authority (no
//! environment, arguments, sockets or files beyond granted mounts), enforces
//! every limit on every call (memory summed over an instance, CPU time by
//! epoch, wall-clock time, output sizes, log volume, state size), checks
//! every outbound request against the plugin's declared-and-granted
//! endpoints on every hop, and injects credentials itself so no secret ever
//! enters guest memory. A trapped or over-limit instance is discarded; the
//! next call gets a fresh one.
//!
//! Shape, after Spin's `core`: [`Runtime`] (one engine per process) loads a
//! [`Plugin`] (compiled once, pre-linked, described), which opens a
//! [`Session`] per integration. Policy decisions come from
//! `proofpix-policy`; this crate is the mechanism.
//!
//! Layering (checked by .ci/layers): floor 2, may use only the host crates below it (proofpix-analysis, proofpix-model, proofpix-policy, proofpix-signing, proofpix-vault); never pulls in axum, redb, even transitively.
#![deny(missing_docs)]

pub mod bindings;
mod cache;
mod context;
mod conv;
mod egress_http;
mod engine;
mod error;
mod fetch;
mod host_state;
mod imports;
pub mod metrics;
mod model;
mod plugin;
pub mod scrub;
mod session;
mod since_v0_1;
mod since_v0_2;

pub use cache::{CacheOutcome, ComponentCache, KEY_FILE as CACHE_KEY_FILE};
pub use context::{
    BoxFuture, CredentialProvider, HeaderPair, IntegrationContext, MemoryStateStore, StateError,
    StateStore, StaticCredentials,
};
pub use egress_http::{BufferedResponse, HttpFailure, OutboundRequest, checked_client};
pub use engine::{Allocation, EPOCH_TICK, Runtime, RuntimeConfig};
pub use error::{CallError, LoadError, bounded_plugin_text, describe_plugin_error};
pub use fetch::{Body, Content, ContentFetcher, FetchError, MEMORY_BODY_BYTES, RemoteContent};
pub use plugin::Plugin;
pub use scrub::Scrubber;
pub use session::{Session, SessionStats};

/// The contract's types, at the newest version, that the host has no model of its own for yet
/// (the manifest, and where a file's bytes are); everything else is [`proofpix_model`]'s.
pub mod contract {
    pub use crate::bindings::latest::exports::proofpix::plugin::manifest::{
        ApiKeyAuth, AuthErrorDialect, AuthErrorRule, AuthFailure, AuthScheme, Capability,
        ClientAuth, ConfigField, Endpoint, FieldKind, FilesystemAccess, GrantKind, JwtBearerAuth,
        JwtDialect, Oauth2Auth, OauthDialect, PasswordAuth, PluginInfo, RefreshRotation,
    };
    pub use crate::bindings::latest::exports::proofpix::plugin::source::{
        ContentLocation, DownloadAnswer, DownloadSpec, NotReady,
    };
    pub use crate::bindings::latest::proofpix::plugin::http::{
        Method as HttpMethod, Request as HttpRequest,
    };
}
