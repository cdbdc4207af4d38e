//! Every flow of `proofpix-auth` against the emulated identity providers. One binary, one module
//! per vendor plus the cross-cutting modules; a global tracing subscriber captures every log line
//! of every test so `secrets` can check none of them carries a secret.

mod common;
/// The host's dialect table for plugins of contract 0.1/0.2, compiled here so these tests run
/// each vendor's flows through exactly the dialects the host applies.
#[path = "../../../service/src/legacy_dialect.rs"]
mod legacy_dialect;

/// API keys and the `none` scheme.
mod api_key;
/// Authorization-code plumbing shared by vendors: state, denial, loopback.
mod authorization;
/// Box: client credentials, code, single-use refresh under concurrency.
mod box_com;
/// Dropbox: code with offline access, refresh keeping the refresh token.
mod dropbox;
/// Google: service-account JWT bearer.
mod google;
/// Microsoft: client credentials and AADSTS errors.
mod microsoft;
/// Salesforce: all four flows, `issued_at` in ms, no `expires_in`.
mod salesforce;
/// No secret in any log line, error message or debug output.
mod secrets;
/// Slack: `ok:false` with HTTP 200, rotation.
mod slack;
/// Transport failures: 5xx, slow, unreachable, redirects; persistence.
mod transport;
