//! Pure policy decisions for the plugin runtime.
//!
//! The runtime is the mechanism (wasmtime, sockets, files); this crate is the
//! policy it asks: may this plugin reach this URL, this address, this
//! directory; how much memory, time and output may one call use. Nothing here
//! touches the network, the filesystem or wasmtime, so every rule is tested
//! by table in microseconds.
//!
//! Every check fails closed: an empty allow-list denies everything, an
//! unparsable grant is an error at load time, and a value that fits no rule
//! is refused.
//!
//! Layering (checked by .ci/layers): floor 1, may use only the host crates below it (proofpix-model); never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod egress;
pub mod grants;
pub mod limits;
pub mod manifest;
pub mod remediation;
pub mod subscriptions;
pub mod template;

pub use egress::{
    AllowedHost, AllowedHosts, BlockedNetworks, EgressDenial, EgressPolicy, NetworkClass,
};
pub use grants::{
    DeclaredEndpoint, DeclaredMount, EffectiveGrants, GrantError, Mount, OperatorGrant,
};
pub use limits::{Limits, LimitsError};
pub use manifest::{FieldShape, ManifestShape, MountShape};
pub use remediation::{RemediationPolicy, RemediationPolicyError};
pub use subscriptions::{EVENT_ALIASES, EVENTS, Subscriptions};
