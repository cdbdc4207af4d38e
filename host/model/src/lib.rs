//! The host's own vocabulary, one type per concept, for every crate above it.
//!
//! The plugin contract's generated types are the wire format of one contract version; this
//! crate is what the host means: the risk level ([`RiskLevel`]), a platform's file
//! ([`RemoteFile`]), the verdict on it ([`FileResult`], [`Finding`]), why a plugin call failed
//! ([`PluginError`]), what a source answers ([`Page`], [`WriteOutcome`]), the notifications a
//! notifier is given ([`Notification`]), a platform's webhook ([`InboundRequest`],
//! [`EventOutcome`]) and a remediation ([`RemediationAction`], [`RemediationOutcome`]).
//!
//! The shapes follow the newest contract, field for field, so a plugin's answer converts
//! without loss; the runtime converts in one place (`host/runtime/src/model.rs`, case by case,
//! so a field or case added on either side fails to compile there), and older contract versions
//! reach these types through their conversion to the newest. Not here yet: the manifest
//! (`PluginInfo` and its parts) and the download answer with its HTTP request, which the rest
//! of the host still takes from `proofpix_runtime::contract`.
//!
//! Layering (checked by .ci/layers): floor 0, uses no other host crate; never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod error;
mod event;
mod file;
mod notify;
mod remediation;
mod risk;
mod source;

pub use error::{ConfigProblem, EgressRefusal, PluginError, RateLimit};
pub use event::{EventOutcome, InboundRequest, InboundResponse};
pub use file::{FileResult, Finding, RemoteFile};
pub use notify::{BatchSummary, Digest, FileAlert, Notification, Problem};
pub use remediation::{RemediationAction, RemediationKind, RemediationOutcome};
pub use risk::{RiskLevel, UnknownRiskLevel, deserialize_stored};
pub use source::{CheckReport, Page, WriteOutcome, WriteResult};
