//! Local emulators of the vendor APIs and identity providers ProofPix talks to.
//!
//! Each emulator is an axum app bound to `127.0.0.1:0` that answers like the real service does,
//! with the exact paths, request parameters, success bodies and error bodies of
//! `shared/reference/saas-apis.md` (section numbers are cited in each module). ProofPix's own
//! tests use them, and so can a plugin author: they are a sandbox where you can make a token
//! expire, a refresh token be already used, or a token endpoint answer 503, on demand.
//!
//! | module | identity provider (issue 4) | check route |
//! |---|---|---|
//! | [`salesforce`] | `/services/oauth2/token` (code+PKCE, password, JWT bearer, refresh, client credentials), `/services/oauth2/authorize` | `GET /services/data/{v}/limits` |
//! | [`microsoft`] | `/{tenant}/oauth2/v2.0/token` (client credentials) | `GET /v1.0/organization` |
//! | [`google`] | `/token` (JWT bearer RS256, code+PKCE, refresh), `/o/oauth2/v2/auth` | `GET /drive/v3/about` |
//! | [`slack`] | `/api/oauth.v2.access` (code, rotation refresh), `/oauth/v2/authorize` | `POST /api/auth.test` |
//! | [`teams`] | none: incoming webhooks (Workflows, legacy connector) are URLs with a secret | none |
//! | [`box_com`] | `/oauth2/token` (client credentials, code, single-use refresh), `/api/oauth2/authorize` | `GET /2.0/users/me` |
//! | [`dropbox`] | `/oauth2/token` (code+PKCE, refresh), `/oauth2/authorize` | `POST /2/users/get_current_account` |
//!
//! Issue-5 work adds each vendor's file APIs in its module, next to its identity provider, on
//! the same server (one emulator stands for all of a vendor's hosts). For Microsoft,
//! [`microsoft::start_with_graph`] adds Graph for SharePoint Online and OneDrive
//! ([`microsoft::graph`]) and a second server for the pre-authenticated download host Graph
//! redirects file content to. [`google::start_with_drive`] adds Drive v3 (`files.list`,
//! `changes.list`, `alt=media`, `appProperties`); [`dropbox::start_with_files`] adds the files
//! and file-properties API and a second server for `content.dropboxapi.com`;
//! [`box_com::start_with_files`] adds folders, the events stream, metadata templates and a
//! second server for the `dl.boxcloud.com` download redirect.
//!
//! # What every emulator shares
//!
//! - A [`Clock`] that only moves when a test moves it. Token lifetimes, code lifetimes and JWT
//!   `iat`/`exp` windows are all judged against it, so expiry tests never sleep.
//! - A [`RequestLog`] of every request received, headers and bodies included, to assert what a
//!   client sent and to whom.
//! - [`Faults`] per route: a canned reply (503, 429, any body), a real-time delay, or a redirect,
//!   for the next *n* requests or until cleared.
//! - An [`ErrorCatalog`]: the error replies whose exact text the reference marks unverified have a
//!   situation key (each vendor's `errors` module), so a test can swap in the real text instead of
//!   the emulator guessing silently.
//! - A token book ([`Tokens`]) to revoke or inspect what was issued.
//! - "Authorize" endpoints that auto-approve (or deny, by configuration) and redirect to the
//!   client's `redirect_uri` with `code` and `state`, honouring PKCE `code_challenge`.
//!
//! Every vendor's `Config::default()` uses the values in its `fixtures` module, so a test only
//! states what it changes. JWT bearer assertions verify against the test-only keys in [`keys`].
//!
//! # Example
//!
//! ```
//! use proofpix_emulators::{Clock, Harness, salesforce};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let clock = Clock::new();
//! let sf = salesforce::start(salesforce::SalesforceConfig::default(), Harness::with_clock(clock.clone())).await?;
//! let token_url = sf.url(salesforce::TOKEN_PATH);
//! assert_eq!(token_url.host_str(), Some("127.0.0.1"));
//! // Point the client under test at `token_url`, then e.g. make every token expire:
//! clock.advance(time::Duration::hours(2));
//! # Ok(())
//! # }
//! ```
//!
//! To poke at them by hand, `cargo run -p proofpix-emulators --bin proofpix-emulators` starts all
//! six on loopback and prints their URLs and fixture client ids. [`sandbox::Sandbox`] starts the
//! four platforms ProofPix has connectors for, seeded with images; `proofpix demo` runs it next to
//! the daemon.
//!
//! The emulators hold request bodies, secrets included, in memory: they are test tooling and bind
//! only the loopback interface.

#![deny(missing_docs)]

pub mod box_com;
pub mod common;
pub mod dropbox;
pub mod google;
pub mod keys;
pub mod microsoft;
pub mod salesforce;
pub mod sandbox;
pub mod slack;
pub mod teams;

pub use common::{
    AccessProblem, Clock, Consent, Emulator, ErrorCatalog, ErrorReply, Fault, Faults, Harness,
    RecordedRequest, ReplyBody, RequestLog, Tokens,
};

/// All six identity providers on one clock, with default configurations.
#[derive(Debug)]
pub struct IdentityProviders {
    /// The shared clock.
    pub clock: Clock,
    /// Salesforce.
    pub salesforce: Emulator,
    /// Microsoft identity platform.
    pub microsoft: Emulator,
    /// Google.
    pub google: Emulator,
    /// Slack.
    pub slack: Emulator,
    /// Box.
    pub box_com: Emulator,
    /// Dropbox.
    pub dropbox: Emulator,
}

impl IdentityProviders {
    /// Starts every identity provider with its default configuration. Each gets its own request
    /// log and faults but all share `clock`.
    ///
    /// # Errors
    ///
    /// If a loopback listener cannot be bound.
    pub async fn start(clock: Clock) -> std::io::Result<Self> {
        let h = || Harness::with_clock(clock.clone());
        Ok(IdentityProviders {
            salesforce: salesforce::start(Default::default(), h()).await?,
            microsoft: microsoft::start(Default::default(), h()).await?,
            google: google::start(Default::default(), h()).await?,
            slack: slack::start(Default::default(), h()).await?,
            box_com: box_com::start(Default::default(), h()).await?,
            dropbox: dropbox::start(Default::default(), h()).await?,
            clock,
        })
    }
}
