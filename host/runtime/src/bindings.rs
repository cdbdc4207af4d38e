//! Generated bindings, one module per frozen contract version.
//!
//! Each released `wit/since_vX.Y.Z` package gets a `since_vX_Y_Z` module.
//! The host works in terms of [`latest`]; an older version converts to and
//! from `latest` at its own boundary (`since_v0_1`, `since_v0_2`) and
//! nowhere else (see `wit/README.md`). The serde derives serve
//! `plugin inspect --json` (the manifest, which has no host model yet) and the
//! tests that read what older builds stored (they queued `latest` values,
//! which the host's model now holds); never converting between versions.
#![allow(missing_docs, unsafe_code, clippy::all)]

/// `proofpix:plugin@0.1.0`, frozen.
pub mod since_v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    /// Oldest contract version this module serves.
    pub const MIN_VERSION: (u64, u64, u64) = (0, 1, 0);
    /// Newest contract version this module serves (semver-compatible patch
    /// releases link against it).
    pub const MAX_VERSION: (u64, u64, u64) = (0, 1, u64::MAX);
}

/// `proofpix:plugin@0.2.0`: adds remediation, idempotent write-back and
/// `verify.hmac-sign`.
pub mod since_v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.2.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    /// Oldest contract version this module serves.
    pub const MIN_VERSION: (u64, u64, u64) = (0, 2, 0);
    /// Newest contract version this module serves.
    pub const MAX_VERSION: (u64, u64, u64) = (0, 2, u64::MAX);
}

/// `proofpix:plugin@0.3.0`: adds the OAuth dialect, `download-answer`
/// (not ready yet), endpoint redirect targets, `plugin-error.egress-refused`,
/// `write-result` (written or skipped) and notification digests with totals.
pub mod since_v0_3_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.3.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });

    /// Oldest contract version this module serves.
    pub const MIN_VERSION: (u64, u64, u64) = (0, 3, 0);
    /// Newest contract version this module serves.
    pub const MAX_VERSION: (u64, u64, u64) = (0, 3, u64::MAX);
}

/// The newest contract version; what the rest of the host uses.
pub use since_v0_3_0 as latest;
