//! What a successful flow yields: the tokens, their expiry and the non-secret context the plugin
//! may read.

use std::collections::BTreeMap;

use proofpix_vault::Secret;
use time::OffsetDateTime;

/// Tokens of one integration. `Debug` prints the secrets as `[redacted]`.
///
/// This is what [`TokenPersistence`](crate::TokenPersistence) seals and stores: the access and
/// refresh tokens are secrets, the rest is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token (or the static key).
    pub access_token: Secret,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token stops working; `None` when unknown and not assumed.
    pub expires_at: Option<OffsetDateTime>,
    /// When the host obtained the token.
    pub obtained_at: OffsetDateTime,
    /// Scopes granted, as the provider reported them (or as requested when it did not say).
    pub scopes: Vec<String>,
    /// Non-secret values from the token response the plugin may read as auth context (Salesforce
    /// `instance_url` and `id`, Slack `team_id`, Dropbox `account_id`, ...).
    pub context: BTreeMap<String, String>,
}

/// A header the runtime adds to a request to one of the integration's credentialed endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPair {
    /// Header name, lowercase (`authorization`, `x-api-key`).
    pub name: String,
    /// Full header value, e.g. `Bearer <token>`.
    pub value: Secret,
}

/// The non-secret outcome of a flow, for display (`proofpix integration test`, the dashboard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    /// When the access token expires, if known.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Auth context.
    pub context: BTreeMap<String, String>,
}

impl TokenSet {
    /// The non-secret parts.
    pub fn summary(&self) -> TokenSummary {
        TokenSummary {
            expires_at: self.expires_at,
            has_refresh_token: self.refresh_token.is_some(),
            scopes: self.scopes.clone(),
            context: self.context.clone(),
        }
    }
}
