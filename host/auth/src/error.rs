//! Every way authentication fails, in words an operator can act on.
//!
//! Each provider reports failures its own way: by description text, by numbers in a field of
//! their own, by an `error` string inside an HTTP 200, or by RFC 6749 codes whose meaning depends
//! on the grant. The plugin's [`Dialect`](crate::Dialect) says how its provider's errors read;
//! [`Dialect`](crate::Dialect)'s classification turns them into one [`AuthError`] kind plus a hint
//! that says what to change.
//!
//! Threat: error messages end up in logs, the CLI and the dashboard. No message may carry a
//! secret. Provider descriptions are quoted only after [`sanitize`] has cut them to their first
//! line, bounded their length and replaced every secret value the integration holds (client
//! secret, password, tokens, assertion, key) with `[redacted]`; response bodies are never quoted.

use std::fmt;

/// Longest provider description quoted in a message.
const MAX_DETAIL_CHARS: usize = 240;

/// Whether a field is secret or plain config, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A non-secret config field.
    Config,
    /// A secret field.
    Secret,
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldKind::Config => "config",
            FieldKind::Secret => "secret",
        })
    }
}

/// Which grant a token request used, for classification and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantKind {
    /// `client_credentials`.
    ClientCredentials,
    /// `password`.
    Password,
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    Refresh,
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    JwtBearer,
}

impl fmt::Display for GrantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::Password => "password",
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::Refresh => "refresh_token",
            GrantKind::JwtBearer => "jwt_bearer",
        })
    }
}

/// An authentication failure. Display is a complete sentence for an operator; no variant ever
/// holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A field the scheme needs has no value.
    #[error(
        "the integration's {kind} field '{field}' has no value; set it and run `proofpix integration test` again"
    )]
    MissingField {
        /// Field name.
        field: String,
        /// Secret or config.
        kind: FieldKind,
    },
    /// The declared scheme cannot work as configured (bad URL, wrong scope shape, ...).
    #[error("the authentication settings cannot work: {reason}")]
    InvalidConfig {
        /// What is wrong and what to change.
        reason: String,
    },
    /// The private key field does not hold a usable RSA key.
    #[error(
        "the secret field '{field}' does not hold an RSA private key in PEM form (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY) or a Google service-account key file; paste the key again"
    )]
    InvalidPrivateKey {
        /// Field name.
        field: String,
    },
    /// The provider rejected the client id or client secret.
    #[error("{provider} rejected the app's client credentials: {hint} ({provider} said: {detail})")]
    ClientRejected {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's own code and description, sanitized.
        detail: String,
    },
    /// The provider rejected the user's credentials (password, security token).
    #[error("{provider} rejected the user's credentials: {hint} ({provider} said: {detail})")]
    UserRejected {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The provider refused a signed JWT assertion.
    #[error("{provider} refused the signed assertion: {hint} ({provider} said: {detail})")]
    AssertionRejected {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// An administrator has not approved the app for this user, subject or tenant.
    #[error("{provider} has not approved the app for this use: {hint} ({provider} said: {detail})")]
    ConsentMissing {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The requested scopes were refused.
    #[error("{provider} refused the requested scopes: {hint} ({provider} said: {detail})")]
    ScopeRejected {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The stored grant (refresh token) no longer works; a person must authorize again.
    #[error(
        "{provider} no longer accepts the stored authorization: {hint} ({provider} said: {detail})"
    )]
    ReauthorizationRequired {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The integration uses the authorization-code flow and was never authorized.
    #[error(
        "integration '{integration}' has not been authorized yet: run `proofpix integration authorize {integration}` and approve access in the browser"
    )]
    AuthorizationRequired {
        /// Integration id.
        integration: String,
    },
    /// Any other OAuth2 error the provider returned.
    #[error("{provider} refused the token request: {hint} ({provider} said: {detail})")]
    Rejected {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The provider refused for now (rate limit, temporary outage) in an error body.
    #[error("{provider} refused the token request for now: {hint} ({provider} said: {detail})")]
    TemporarilyRefused {
        /// Provider.
        provider: String,
        /// What to do.
        hint: String,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The token endpoint answered 5xx.
    #[error(
        "{provider}'s token endpoint is failing (HTTP {status}); this is usually temporary: try again in a few minutes and check the provider's status page if it persists"
    )]
    ProviderUnavailable {
        /// Provider.
        provider: String,
        /// HTTP status.
        status: u16,
    },
    /// The token endpoint could not be reached.
    #[error(
        "could not reach {provider}'s token endpoint at {host}: {reason}; check the token URL, DNS and the daemon's network egress"
    )]
    Unreachable {
        /// Provider.
        provider: String,
        /// Host (and port) of the token URL.
        host: String,
        /// Cause, without URLs or secrets.
        reason: String,
    },
    /// The token endpoint did not answer in time.
    #[error(
        "{provider}'s token endpoint at {host} did not answer within {timeout:?}; it may be overloaded or the network may be dropping traffic, try again later"
    )]
    Timeout {
        /// Provider.
        provider: String,
        /// Host (and port).
        host: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// The token endpoint answered with a redirect, which is never followed.
    #[error(
        "{provider}'s token endpoint answered with a redirect (HTTP {status}); credentials are never sent on to another address, so set the token URL to the provider's exact token endpoint"
    )]
    Redirected {
        /// Provider.
        provider: String,
        /// Redirect status.
        status: u16,
    },
    /// The token endpoint answered something that is not an OAuth2 response.
    #[error(
        "{provider}'s token endpoint answered something that is not a token response ({what}); check that the token URL points at the provider's token endpoint"
    )]
    MalformedResponse {
        /// Provider.
        provider: String,
        /// What was wrong, without any of the body.
        what: String,
    },
    /// A static API key was rejected by the platform.
    #[error(
        "the platform rejected the API key; replace the key in the integration's secret field '{field}'"
    )]
    ApiKeyRejected {
        /// The secret field.
        field: String,
    },
    /// The integration has no credentials to refresh (`none` scheme).
    #[error(
        "the platform asked for credentials but the plugin declares no authentication; the plugin's `describe` needs an auth scheme"
    )]
    NoCredentials,
    /// The callback's `state` is unknown, expired or belongs to another integration.
    #[error(
        "this authorization attempt is unknown or has expired (they last {minutes} minutes); start it again with `proofpix integration authorize`"
    )]
    UnknownAuthorization {
        /// Lifetime of an attempt.
        minutes: u64,
    },
    /// The user or an administrator declined the authorization.
    #[error(
        "the authorization was not granted ({error}{description}); approve the request in the browser, or ask an administrator to allow the app"
    )]
    AuthorizationDenied {
        /// OAuth2 `error` parameter.
        error: String,
        /// `: error_description`, or empty.
        description: String,
    },
    /// The local callback listener failed or timed out.
    #[error("the local authorization callback failed: {reason}")]
    Callback {
        /// What happened.
        reason: String,
    },
    /// The stored tokens could not be read.
    #[error(
        "could not read the stored tokens of integration '{integration}' ({reason}); check the daemon's data directory and master key"
    )]
    StoreUnavailable {
        /// Integration id.
        integration: String,
        /// Store error, without secrets.
        reason: String,
    },
    /// New tokens were obtained but could not be stored.
    #[error(
        "could not store the new tokens of integration '{integration}' ({reason}); they are kept in memory until the daemon stops, after which the integration may need authorizing again"
    )]
    Persistence {
        /// Integration id.
        integration: String,
        /// Store error, without secrets.
        reason: String,
    },
}

impl AuthError {
    /// A short machine-readable class for logs (`error.type`) and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::MissingField { .. } => "missing_field",
            AuthError::InvalidConfig { .. } => "invalid_config",
            AuthError::InvalidPrivateKey { .. } => "invalid_private_key",
            AuthError::ClientRejected { .. } => "client_rejected",
            AuthError::UserRejected { .. } => "user_rejected",
            AuthError::AssertionRejected { .. } => "assertion_rejected",
            AuthError::ConsentMissing { .. } => "consent_missing",
            AuthError::ScopeRejected { .. } => "scope_rejected",
            AuthError::ReauthorizationRequired { .. } => "reauthorization_required",
            AuthError::AuthorizationRequired { .. } => "authorization_required",
            AuthError::Rejected { .. } => "rejected",
            AuthError::TemporarilyRefused { .. } => "temporarily_refused",
            AuthError::ProviderUnavailable { .. } => "provider_unavailable",
            AuthError::Unreachable { .. } => "unreachable",
            AuthError::Timeout { .. } => "timeout",
            AuthError::Redirected { .. } => "redirected",
            AuthError::MalformedResponse { .. } => "malformed_response",
            AuthError::ApiKeyRejected { .. } => "api_key_rejected",
            AuthError::NoCredentials => "no_credentials",
            AuthError::UnknownAuthorization { .. } => "unknown_authorization",
            AuthError::AuthorizationDenied { .. } => "authorization_denied",
            AuthError::Callback { .. } => "callback",
            AuthError::StoreUnavailable { .. } => "store_unavailable",
            AuthError::Persistence { .. } => "persistence",
        }
    }

    /// Whether retrying later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AuthError::ProviderUnavailable { .. }
                | AuthError::TemporarilyRefused { .. }
                | AuthError::Unreachable { .. }
                | AuthError::Timeout { .. }
        )
    }
}

/// Cuts provider text to its first line, bounds it, and replaces every secret in `secrets` (values
/// of at least 4 characters) with `[redacted]`.
pub(crate) fn sanitize<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL_CHARS)
        .collect();
    for secret in secrets {
        if secret.len() >= 4 && line.contains(secret) {
            line = line.replace(secret, "[redacted]");
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_the_first_line_and_redacts_secrets() {
        let text = "AADSTS7000215: bad secret s3cr3t-value for app\r\nTrace ID: abc";
        assert_eq!(
            sanitize(text, ["s3cr3t-value", "ab"]),
            "AADSTS7000215: bad secret [redacted] for app"
        );
    }
}
