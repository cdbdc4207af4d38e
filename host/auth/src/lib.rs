//! Host-owned credentials: OAuth2 flows, token refresh with single flight, static keys.
//!
//! Connector plugins never see a secret. A plugin declares *how* it authenticates in `describe`
//! ([`AuthScheme`]: none, API key, OAuth2 client credentials, authorization code with PKCE,
//! resource-owner password, or RS256 JWT bearer); the operator supplies the secrets; this crate
//! runs the flow, keeps the tokens ([`TokenPersistence`], sealed by the host's store), refreshes
//! them before they expire and once more when the platform answers `unauthorized`, and hands the
//! runtime a header to inject ([`HeaderPair`]) on requests to the integration's credentialed
//! endpoints. Non-secret parts of a token response that the dialect names (an `instance_url`)
//! reach the plugin as auth context ([`Credentials::context`]).
//!
//! Neighbours: `proofpix-vault` provides [`Secret`](proofpix_vault::Secret), which every secret
//! and token here is held in; `proofpix-runtime` converts the WIT scheme into [`AuthScheme`] and
//! calls [`Credentials::authorization`] per outbound request; the CLI and daemon drive the
//! authorization-code flow ([`Credentials::begin_authorization`], [`LoopbackCallback`]).
//! `proofpix-emulators` has faithful local identity providers that the tests run every flow
//! against.
//!
//! Main design decision: **one [`Credentials`] per integration, with the cache, the refresh lock
//! and the flow inside.** The hot path is a read lock and a clone; every token request for an
//! integration is serialized behind one async mutex, which is what makes single-use refresh
//! tokens safe under concurrency.
//!
//! Second decision: **this crate names no vendor.** Every grant is one form POST read one way,
//! and what a provider does differently (client authentication, scope separator, extra
//! parameters, single-use refresh tokens, the lifetime to assume, where its errors' code and
//! description sit, an HTTP 200 that is an error, JWT claims and `kid`) is a [`Dialect`] the
//! plugin declares. [`Dialect::default`] is plain RFC 6749.
//!
//! Threat model in one line per adversary: a *plugin* may declare a hostile token URL, so secrets
//! go only to the declared URL, which the operator approves, and never across a redirect; a
//! *remote provider* may answer anything, so responses are size-capped and only parsed fields are
//! kept; *logs and error messages* are read by people and tools that must not learn secrets, so
//! nothing that formats ever contains one ([`AuthError`] quotes provider text only after
//! redaction; tests grep every log line).
//!
//! # Example
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use proofpix_auth::{AuthScheme, CredentialInputs, Credentials, MemoryPersistence, OAuth2Auth};
//! use proofpix_vault::Secret;
//!
//! # async fn run() -> Result<(), proofpix_auth::AuthError> {
//! let inputs = CredentialInputs {
//!     scheme: AuthScheme::OAuth2ClientCredentials(OAuth2Auth {
//!         token_url: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token".into(),
//!         authorize_url: None,
//!         scopes: vec!["https://graph.microsoft.com/.default".into()],
//!         client_id_field: "client_id".into(),
//!         client_secret_field: Some("client_secret".into()),
//!         extra_params: vec![],
//!     }),
//!     config: BTreeMap::from([("client_id".into(), "6731de76-14a6-49ae-97bc-6eba6914391e".into())]),
//!     secrets: BTreeMap::from([("client_secret".into(), Secret::new("from the vault"))]),
//! };
//! let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
//! let creds = Credentials::builder("sharepoint", inputs, http, Arc::new(MemoryPersistence::new())).build()?;
//! let header = creds.authorization().await?; // Some(("authorization", "Bearer …"))
//! # Ok(()) }
//! ```
//!
//! Layering (checked by .ci/layers): floor 2, may use only the host crates below it (proofpix-analysis, proofpix-model, proofpix-policy, proofpix-signing, proofpix-vault); never pulls in axum, redb, wasmtime, even transitively.

#![deny(missing_docs)]

mod authorize;
mod clock;
mod credentials;
mod dialect;
mod error;
mod grants;
pub mod http;
mod jwt;
mod persistence;
mod scheme;
mod token;

pub use authorize::{
    AuthorizationRequest, AuthorizationSessions, CallbackParams, LoopbackCallback,
    MAX_PENDING_AUTHORIZATIONS,
};
pub use clock::{Clock, SystemClock};
pub use credentials::{CredentialOptions, Credentials, CredentialsBuilder};
pub use dialect::{
    ClientAuth, ContextField, Dialect, ErrorDialect, ErrorRule, Failure, JwtDialect,
    RefreshRotation,
};
pub use error::{AuthError, FieldKind, GrantKind};
pub use persistence::{MemoryPersistence, PersistFuture, PersistenceError, TokenPersistence};
pub use scheme::{
    ApiKeyAuth, AuthScheme, CredentialInputs, JwtBearerAuth, OAuth2Auth, PasswordAuth,
};
pub use token::{HeaderPair, TokenSet, TokenSummary};
