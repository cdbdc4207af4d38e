//! Write ProofPix connector plugins in Rust.
//!
//! A connector is a WebAssembly component that tells the ProofPix host how to
//! list the files of a platform (Salesforce, SharePoint, a local folder...),
//! how to fetch them, and how to write analysis results back. The host does
//! everything that must be trusted: it runs OAuth2 and injects credentials,
//! checks every outbound request against the operator's grants, streams file
//! bytes into its own analysis core, and keeps state. A plugin never sees a
//! secret and never touches file bytes.
//!
//! You implement [`Connector`] on a unit struct and export it with
//! [`export_connector!`]. Every method but [`Connector::describe`] has a
//! default that answers "not supported", so a notifier implements `notify`
//! and a source implements `check`, `discover`, `download` and `write_back`.
//! A plugin that acts on risky files (contract 0.2) declares the actions with
//! [`PluginInfoBuilder::remediation`] and implements [`Connector::upload`]
//! (replacement with the host's sanitised copy) and [`Connector::remediate`]
//! (everything else).
//!
//! ```no_run
//! use proofpix_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Connector for Hello {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::builder("hello", env!("CARGO_PKG_VERSION"), "Hello", "Example")
//!             .capability(Capability::Source)
//!             .endpoint(Endpoint::new("api", "https://api.example.com").with_credentials())
//!             .auth(AuthScheme::ApiKey(ApiKeyAuth {
//!                 secret_field: "api_key".into(),
//!                 header: "authorization".into(),
//!                 prefix: "Bearer ".into(),
//!             }))
//!             .field(ConfigField::secret("api_key", "API key", "Created under Settings → API."))
//!             .build()
//!     }
//!
//!     fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
//!         let url = cursor.unwrap_or_else(|| "https://api.example.com/files".into());
//!         let body: serde_json::Value = http::Request::get(&url).send()?.error_for_status()?.json()?;
//!         let files = body["files"].as_array().into_iter().flatten().map(|f| RemoteFile {
//!             id: f["id"].as_str().unwrap_or_default().into(),
//!             name: f["name"].as_str().unwrap_or_default().into(),
//!             version: f["etag"].as_str().unwrap_or_default().into(),
//!             ..RemoteFile::default()
//!         }).collect();
//!         let next = body["next"].as_str().map(String::from);
//!         Ok(Page { files, removed: vec![], more: next.is_some(), cursor: next })
//!     }
//! }
//!
//! export_connector!(Hello);
//! ```
//!
//! What most plugins write again is here once: [`results`] (risk words, the
//! findings summary, category labels), [`text`] (cutting to a platform's
//! limit on a character boundary), [`writeback`] (a memo of final outcomes
//! across the host's retry), [`settings`] (checks that name the field and
//! say what to write) and [`notify`] (the plain text of alerts, digests and
//! batch summaries).
//!
//! Start a new plugin with `proofpix plugin new NAME`, build it with
//! `cargo build --target wasm32-wasip2 --release`, sign it with
//! `proofpix plugin sign` and install it with `proofpix plugin install`.
//! `sdk/README.md` is the full tutorial, with the table of which hosts load
//! which SDK versions.
//!
//! Layering (checked by .ci/layers): uses no host crate; never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, clippy::all, unsafe_code)]
    wit_bindgen::generate!({
        path: "../wit/since_v0.3.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "proofpix_sdk::bindings",
    });
}

pub mod config;
mod dialect;
mod errors;
pub mod http;
mod info;
pub mod log;
pub mod notify;
pub mod pagination;
pub mod results;
pub mod settings;
pub mod state;
pub mod text;
pub mod verify;
pub mod writeback;

/// The contract version this SDK targets (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.3.0";

/// The reserved config field that selects an authentication flow per integration.
///
/// The contract carries one `auth` scheme per manifest. A plugin whose platform offers several
/// flows (Salesforce: JWT bearer, username-password, client credentials, web server) declares a
/// `choice` field with this name. The host then calls `describe` once more in a session bound to
/// each integration's config and runs the `auth` that manifest returns; the fields, endpoints and
/// capabilities must be the same as in the plugin's config-less `describe`, which answers the
/// default flow. So [`Connector::describe`] may read this field (and other non-secret fields that
/// shape the scheme, such as a login host) with [`config::get`]; it still must not call the
/// network.
pub const AUTH_FLOW_FIELD: &str = "auth_flow";

pub use bindings::exports::proofpix::plugin::events::{
    EventOutcome, InboundRequest, InboundResponse,
};
pub use bindings::exports::proofpix::plugin::manifest::{
    ApiKeyAuth, AuthErrorDialect, AuthErrorRule, AuthFailure, AuthScheme, Capability, ClientAuth,
    ConfigField, Endpoint, FieldKind, FilesystemAccess, GrantKind, JwtBearerAuth, JwtDialect,
    Oauth2Auth, OauthDialect, PasswordAuth, PluginInfo, RefreshRotation,
};
pub use bindings::exports::proofpix::plugin::notifier::{
    BatchSummary, Digest, FileAlert, Notification, Problem,
};
pub use bindings::exports::proofpix::plugin::remediation::{
    Action as RemediationAction, Outcome as RemediationOutcome,
};
pub use bindings::exports::proofpix::plugin::source::{
    CheckReport, ContentLocation, DownloadAnswer, DownloadSpec, NotReady, Page, WriteOutcome,
    WriteResult,
};
pub use bindings::proofpix::plugin::types::{
    ConfigProblem, EgressRefusal, FileResult, Finding, PluginError, RateLimit, RemediationKind,
    RemoteFile, RiskLevel,
};
pub use info::PluginInfoBuilder;

/// Everything a connector usually needs, for `use proofpix_sdk::prelude::*`.
pub mod prelude {
    pub use crate::{
        ApiKeyAuth, AuthFailure, AuthScheme, BatchSummary, Capability, CheckReport, ClientAuth,
        ConfigField, Connector, ContentLocation, Digest, DownloadAnswer, DownloadSpec, Endpoint,
        EventOutcome, FieldKind, FileAlert, FileResult, FilesystemAccess, Finding, GrantKind,
        InboundRequest, InboundResponse, JwtBearerAuth, JwtDialect, Notification, Oauth2Auth,
        OauthDialect, Page, PasswordAuth, PluginError, PluginInfo, Problem, RefreshRotation,
        RemediationAction, RemediationKind, RemediationOutcome, RemoteFile, RiskLevel,
        WriteOutcome, WriteResult, config, export_connector, http, log, pagination, state, verify,
    };
}

/// A connector plugin. Implement it on a unit struct and export the struct
/// with [`export_connector!`].
///
/// Every method is an associated function: the host may create a fresh
/// instance for any call, so keep nothing in statics you cannot rebuild. State
/// that must survive between calls belongs in [`state`] or in the cursor.
pub trait Connector {
    /// What the plugin is and what it needs. Called once per plugin version;
    /// must not call the network.
    fn describe() -> PluginInfo;

    /// Checks the integration's configuration without network access. The
    /// default checks nothing beyond what the host checks from the schema.
    fn validate_config() -> Result<(), PluginError> {
        Ok(())
    }

    /// Tests the connection: credentials, permissions, configured objects.
    fn check() -> Result<CheckReport, PluginError> {
        Err(PluginError::not_supported("check"))
    }

    /// Lists one page of files. `cursor` is `None` for a full enumeration.
    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        let _ = cursor;
        Err(PluginError::not_supported("discover"))
    }

    /// Says where the host fetches a file's bytes (`Ok(spec.into())`), or
    /// that the platform does not have them yet
    /// ([`DownloadAnswer::not_ready`]): the host then retries the file later
    /// and records no risk for it meanwhile.
    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        let _ = file;
        Err(PluginError::not_supported("download"))
    }

    /// Writes a batch of results back to the platform. Each outcome says
    /// whether the result was [`WriteResult::Written`] or deliberately
    /// skipped, with why ([`WriteOutcome::skipped`]): the host records and
    /// shows which, and counts only what was written.
    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        let _ = results;
        Err(PluginError::not_supported("write-back"))
    }

    /// Delivers a notification.
    fn notify(event: Notification) -> Result<(), PluginError> {
        let _ = event;
        Err(PluginError::not_supported("notify"))
    }

    /// Verifies and parses an inbound webhook.
    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("events"))
    }

    /// Says where the host uploads the sanitised copy of `file` (`size`
    /// bytes of `content_type`): an HTTP request the host sends with the
    /// bytes as its body, under the same egress checks and credentials as
    /// [`http::Request::send`]. Build it with [`http::Request`] and return
    /// [`http::Request::into_wit`]; leave the body empty.
    ///
    /// The host calls this only for a plugin that declares
    /// [`RemediationKind::ReplaceWithSanitised`] (see
    /// [`PluginInfoBuilder::remediation`]) and only when the operator
    /// enabled that action; the bytes never pass through the plugin.
    fn upload(
        file: RemoteFile,
        size: u64,
        content_type: String,
    ) -> Result<http::WitRequest, PluginError> {
        let _ = (file, size, content_type);
        Err(PluginError::not_supported("remediation upload"))
    }

    /// Performs (or, when `action.simulate` is set, only describes) a
    /// remediation other than the upload itself: restrict sharing, apply a
    /// label, quarantine, notify the owner.
    ///
    /// The host calls it only for actions the plugin declares and the
    /// operator enabled, and records each action so it is never done twice;
    /// a simulated action must change nothing on the platform.
    fn remediate(action: RemediationAction) -> Result<RemediationOutcome, PluginError> {
        let _ = action;
        Err(PluginError::not_supported("remediation"))
    }
}

/// Exports a [`Connector`] implementation as the plugin's component exports.
/// Use it once per plugin crate.
#[macro_export]
macro_rules! export_connector {
    ($t:ident) => {
        impl $crate::bindings::exports::proofpix::plugin::manifest::Guest for $t {
            fn describe() -> $crate::PluginInfo {
                <$t as $crate::Connector>::describe()
            }
            fn validate_config() -> ::core::result::Result<(), $crate::PluginError> {
                <$t as $crate::Connector>::validate_config()
            }
        }
        impl $crate::bindings::exports::proofpix::plugin::source::Guest for $t {
            fn check() -> ::core::result::Result<$crate::CheckReport, $crate::PluginError> {
                <$t as $crate::Connector>::check()
            }
            fn discover(
                cursor: ::core::option::Option<::std::string::String>,
            ) -> ::core::result::Result<$crate::Page, $crate::PluginError> {
                <$t as $crate::Connector>::discover(cursor)
            }
            fn download(
                file: $crate::RemoteFile,
            ) -> ::core::result::Result<$crate::DownloadAnswer, $crate::PluginError> {
                <$t as $crate::Connector>::download(file)
            }
            fn write_back(
                results: ::std::vec::Vec<$crate::FileResult>,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::WriteOutcome>, $crate::PluginError>
            {
                <$t as $crate::Connector>::write_back(results)
            }
        }
        impl $crate::bindings::exports::proofpix::plugin::notifier::Guest for $t {
            fn notify(
                event: $crate::Notification,
            ) -> ::core::result::Result<(), $crate::PluginError> {
                <$t as $crate::Connector>::notify(event)
            }
        }
        impl $crate::bindings::exports::proofpix::plugin::events::Guest for $t {
            fn handle(
                request: $crate::InboundRequest,
            ) -> ::core::result::Result<$crate::EventOutcome, $crate::PluginError> {
                <$t as $crate::Connector>::handle_event(request)
            }
        }
        impl $crate::bindings::exports::proofpix::plugin::remediation::Guest for $t {
            fn upload(
                file: $crate::RemoteFile,
                size: u64,
                content_type: ::std::string::String,
            ) -> ::core::result::Result<$crate::http::WitRequest, $crate::PluginError> {
                <$t as $crate::Connector>::upload(file, size, content_type)
            }
            fn remediate(
                action: $crate::RemediationAction,
            ) -> ::core::result::Result<$crate::RemediationOutcome, $crate::PluginError> {
                <$t as $crate::Connector>::remediate(action)
            }
        }
        // The canonical-ABI export glue only means something in a component;
        // on the host (unit tests, `cargo test --workspace`) the crate links
        // as an ordinary library, and names like `proofpix:plugin/...` are
        // not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector_world!($t);
        /// The exported entry points, named so that host builds (where the
        /// component glue is off) still see them used.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub const __PROOFPIX_EXPORTS: [*const (); 10] = [
            <$t as $crate::bindings::exports::proofpix::plugin::manifest::Guest>::describe
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::manifest::Guest>::validate_config
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::source::Guest>::check as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::source::Guest>::discover
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::source::Guest>::download
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::source::Guest>::write_back
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::notifier::Guest>::notify
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::events::Guest>::handle as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::remediation::Guest>::upload
                as *const (),
            <$t as $crate::bindings::exports::proofpix::plugin::remediation::Guest>::remediate
                as *const (),
        ];
    };
}
