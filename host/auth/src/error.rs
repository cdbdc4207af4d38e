//! Every way authentication fails, in words an operator can act on.
//!
//! Each provider reports failures its own way: Salesforce by `error_description` text
//! ("authentication failure"), Microsoft by AADSTS numbers, Slack by an `error` string inside an
//! HTTP 200, Box and Dropbox by RFC 6749 codes whose meaning depends on the grant. [`classify`]
//! turns them into one [`AuthError`] kind plus a hint that says what to change (the table is in
//! this module's tests).
//!
//! Threat: error messages end up in logs, the CLI and the dashboard. No message may carry a
//! secret. Provider descriptions are quoted only after [`sanitize`] has cut them to their first
//! line, bounded their length and replaced every secret value the integration holds (client
//! secret, password, tokens, assertion, key) with `[redacted]`; response bodies are never quoted.

use std::fmt;

use crate::provider::Provider;

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
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's own code and description, sanitized.
        detail: String,
    },
    /// The provider rejected the user's credentials (password, security token).
    #[error("{provider} rejected the user's credentials: {hint} ({provider} said: {detail})")]
    UserRejected {
        /// Provider.
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The provider refused a signed JWT assertion.
    #[error("{provider} refused the signed assertion: {hint} ({provider} said: {detail})")]
    AssertionRejected {
        /// Provider.
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// An administrator has not approved the app for this user, subject or tenant.
    #[error("{provider} has not approved the app for this use: {hint} ({provider} said: {detail})")]
    ConsentMissing {
        /// Provider.
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The requested scopes were refused.
    #[error("{provider} refused the requested scopes: {hint} ({provider} said: {detail})")]
    ScopeRejected {
        /// Provider.
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The stored grant (refresh token) no longer works; a person must authorize again.
    #[error(
        "{provider} no longer accepts the stored authorization: {hint} ({provider} said: {detail})"
    )]
    ReauthorizationRequired {
        /// Provider.
        provider: Provider,
        /// What to do.
        hint: &'static str,
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
        provider: Provider,
        /// What to do.
        hint: &'static str,
        /// Provider's code and description, sanitized.
        detail: String,
    },
    /// The token endpoint answered 5xx.
    #[error(
        "{provider}'s token endpoint is failing (HTTP {status}); this is usually temporary: try again in a few minutes and check the provider's status page if it persists"
    )]
    ProviderUnavailable {
        /// Provider.
        provider: Provider,
        /// HTTP status.
        status: u16,
    },
    /// The token endpoint could not be reached.
    #[error(
        "could not reach {provider}'s token endpoint at {host}: {reason}; check the token URL, DNS and the daemon's network egress"
    )]
    Unreachable {
        /// Provider.
        provider: Provider,
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
        provider: Provider,
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
        provider: Provider,
        /// Redirect status.
        status: u16,
    },
    /// The token endpoint answered something that is not an OAuth2 response.
    #[error(
        "{provider}'s token endpoint answered something that is not a token response ({what}); check that the token URL points at the provider's token endpoint"
    )]
    MalformedResponse {
        /// Provider.
        provider: Provider,
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
                | AuthError::Unreachable { .. }
                | AuthError::Timeout { .. }
        )
    }
}

/// An OAuth2 error body as providers send it (RFC 6749 §5.2 plus Microsoft's `error_codes`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ProviderErrorBody {
    /// `error` code.
    pub error: String,
    /// `error_description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// `error_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
    /// Microsoft AADSTS numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u64>,
}

impl fmt::Display for ProviderErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

impl oauth2::ErrorResponse for ProviderErrorBody {}

impl ProviderErrorBody {
    /// The AADSTS number, from `error_codes` or the description's `AADSTSnnnn:` prefix.
    fn aadsts(&self) -> Option<u64> {
        if let Some(code) = self.error_codes.first() {
            return Some(*code);
        }
        let description = self.error_description.as_deref()?;
        let digits: String = description
            .split("AADSTS")
            .nth(1)?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    fn description_contains(&self, needle: &str) -> bool {
        self.error_description.as_deref().is_some_and(|d| {
            d.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
        })
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

/// Turns a provider's OAuth2 error into an [`AuthError`]. `detail` is the already-sanitized
/// `error: description` text to quote.
pub(crate) fn classify(
    provider: Provider,
    grant: GrantKind,
    body: &ProviderErrorBody,
    detail: String,
) -> AuthError {
    use AuthError as E;
    let error = body.error.as_str();
    let has = |needle: &str| body.description_contains(needle);
    macro_rules! e {
        ($variant:ident, $hint:expr) => {
            E::$variant {
                provider,
                hint: $hint,
                detail,
            }
        };
    }
    match provider {
        // Microsoft: the AADSTS number is the stable identifier (reference §2.1).
        Provider::Microsoft => match body.aadsts() {
            Some(7_000_215) => e!(
                ClientRejected,
                "the client secret is wrong; paste the secret's Value (not its Secret ID) from the app registration's Certificates & secrets"
            ),
            Some(7_000_222) => e!(
                ClientRejected,
                "the client secret has expired; create a new one in the app registration"
            ),
            Some(7_000_218) => e!(
                ClientRejected,
                "no client secret was sent; set the integration's client secret"
            ),
            Some(700_016) => e!(
                ClientRejected,
                "no app with this client id exists in the tenant; check the Application (client) ID and the tenant, and that an administrator consented to the app there"
            ),
            Some(70_011) => e!(
                ScopeRejected,
                "client credentials need exactly one scope of the form https://graph.microsoft.com/.default"
            ),
            Some(500_011) => e!(
                ScopeRejected,
                "the scope names a resource this tenant does not know; check the scope URL"
            ),
            Some(90_002) => e!(
                Rejected,
                "the tenant does not exist; check the tenant id or domain in the integration's settings"
            ),
            _ => generic(provider, grant, error, detail),
        },
        Provider::Salesforce => match error {
            "invalid_client_id" => e!(
                ClientRejected,
                "the consumer key is not known; copy the Consumer Key from the connected app, and check login vs test host (production vs sandbox)"
            ),
            "invalid_client" => e!(
                ClientRejected,
                "the consumer secret is wrong; copy the Consumer Secret from the connected app again"
            ),
            "invalid_grant" if has("hasn't approved") || has("not approved") => e!(
                ConsentMissing,
                "the user is not pre-authorized for the connected app; set 'Admin approved users are pre-authorized' and add the user's profile or permission set to the app"
            ),
            "invalid_grant" if has("inactive user") => e!(
                UserRejected,
                "the Salesforce user is inactive; activate it or configure another user"
            ),
            "invalid_grant" if has("authentication failure") && grant == GrantKind::Password => e!(
                UserRejected,
                "wrong username, password or security token; Salesforce wants the password followed by the user's current security token (reset it under Settings > Reset My Security Token), and the org must allow the username-password flow"
            ),
            "invalid_grant" if has("authentication failure") => e!(
                UserRejected,
                "the user's login was refused; check the username and that the user may log in"
            ),
            "invalid_grant" if has("expired access/refresh token") => e!(
                ReauthorizationRequired,
                "the refresh token expired or was revoked; authorize the integration again"
            ),
            "invalid_grant" if grant == GrantKind::JwtBearer => e!(
                AssertionRejected,
                "check that the certificate uploaded to the connected app matches the private key, that the audience is https://login.salesforce.com (https://test.salesforce.com for sandboxes), that the username exists, and that the daemon's clock is correct"
            ),
            "invalid_grant" if grant == GrantKind::AuthorizationCode => e!(
                Rejected,
                "the authorization code was not accepted (expired, already used, or a different redirect URL); start the authorization again"
            ),
            "unsupported_grant_type" => e!(
                Rejected,
                "the org does not allow this OAuth flow for the connected app; enable it in the app's OAuth policies"
            ),
            _ => generic(provider, grant, error, detail),
        },
        Provider::Google => match error {
            "invalid_grant" if has("Invalid JWT Signature") => e!(
                AssertionRejected,
                "the signature does not match the service account's keys; the key may have been deleted or rotated, so create a new key file"
            ),
            "invalid_grant" if has("short-lived") || has("iat") => e!(
                AssertionRejected,
                "the assertion's iat/exp times were refused; the daemon's clock is probably wrong, sync it (NTP)"
            ),
            "invalid_grant" if has("account not found") => e!(
                ClientRejected,
                "the service account does not exist (deleted?); check its e-mail or create a new key"
            ),
            "invalid_grant" if grant == GrantKind::Refresh || has("expired or revoked") => e!(
                ReauthorizationRequired,
                "the refresh token expired or was revoked (for example the user removed the app's access); authorize the integration again"
            ),
            "unauthorized_client" => e!(
                ConsentMissing,
                "domain-wide delegation is not granted for this service account and these scopes; add its client id and the scopes in the Google Admin console (Security > API controls > Domain-wide delegation)"
            ),
            _ => generic(provider, grant, error, detail),
        },
        // Slack: `error` strings from an `ok:false` body (reference §4.1).
        Provider::Slack => match error {
            "invalid_client_id" => e!(
                ClientRejected,
                "the client id is not known; copy it from the Slack app's Basic Information page"
            ),
            "bad_client_secret" => e!(
                ClientRejected,
                "the client secret is wrong; copy it again from the Slack app's Basic Information page"
            ),
            "invalid_code" => e!(
                Rejected,
                "the authorization code was not accepted (expired or already used); start the authorization again"
            ),
            "bad_redirect_uri" => e!(
                Rejected,
                "the callback URL does not match the one the authorization started with or is not registered; add it under OAuth & Permissions > Redirect URLs"
            ),
            "invalid_refresh_token" => e!(
                ReauthorizationRequired,
                "the refresh token was revoked or already used (Slack rotates it on every refresh); authorize the integration again"
            ),
            "invalid_grant_type" => e!(
                Rejected,
                "Slack does not accept this grant; token rotation may be off for the app"
            ),
            _ => generic(provider, grant, error, detail),
        },
        Provider::Box => match error {
            "invalid_grant" if grant == GrantKind::Refresh => e!(
                ReauthorizationRequired,
                "Box refresh tokens work once and for 60 days; this one was already used or has expired, so authorize the integration again"
            ),
            "invalid_grant" if grant == GrantKind::ClientCredentials => e!(
                ClientRejected,
                "the client id or secret is wrong, or the app is not authorized in the Box Admin Console"
            ),
            "invalid_grant" if grant == GrantKind::AuthorizationCode => e!(
                Rejected,
                "the authorization code was not accepted (Box codes expire after 30 seconds and work once); start the authorization again"
            ),
            "unauthorized_client" => e!(
                ConsentMissing,
                "the app may not act for this box_subject_type; enable App + Enterprise Access (or 'Generate user access tokens') and have a Box admin re-authorize the app"
            ),
            _ => generic(provider, grant, error, detail),
        },
        Provider::Dropbox => match error {
            "invalid_grant" if grant == GrantKind::Refresh => e!(
                ReauthorizationRequired,
                "the refresh token was revoked (for example the user disconnected the app); authorize the integration again"
            ),
            "invalid_grant" if grant == GrantKind::AuthorizationCode => e!(
                Rejected,
                "the authorization code was not accepted (expired or already used); start the authorization again"
            ),
            _ => generic(provider, grant, error, detail),
        },
        Provider::Generic => generic(provider, grant, error, detail),
    }
}

/// RFC 6749 §5.2 meanings, for providers without a specific rule.
fn generic(provider: Provider, grant: GrantKind, error: &str, detail: String) -> AuthError {
    use AuthError as E;
    match (error, grant) {
        ("invalid_client", _) => E::ClientRejected {
            provider,
            hint: "the client id or client secret is wrong; copy both from the app registration again",
            detail,
        },
        ("invalid_grant", GrantKind::Refresh) => E::ReauthorizationRequired {
            provider,
            hint: "the refresh token expired, was revoked or was already used; authorize the integration again",
            detail,
        },
        ("invalid_grant", GrantKind::Password) => E::UserRejected {
            provider,
            hint: "the username or password is wrong",
            detail,
        },
        ("invalid_grant", GrantKind::JwtBearer) => E::AssertionRejected {
            provider,
            hint: "check the issuer, subject, audience and private key, and that the daemon's clock is correct",
            detail,
        },
        ("invalid_scope", _) => E::ScopeRejected {
            provider,
            hint: "the app is not allowed these scopes; grant them in the app registration or remove them",
            detail,
        },
        ("unauthorized_client", _) => E::ConsentMissing {
            provider,
            hint: "the app is not allowed to use this flow; enable it in the app registration",
            detail,
        },
        _ => E::Rejected {
            provider,
            hint: "check the integration's settings against the provider's app registration",
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: &str, description: &str) -> ProviderErrorBody {
        ProviderErrorBody {
            error: error.into(),
            error_description: Some(description.into()),
            ..Default::default()
        }
    }

    /// The error-message table: each vendor error turns into the kind whose hint tells an operator
    /// what to change. Bodies are the reference's, or the emulators' defaults where it is silent.
    #[test]
    fn each_vendor_error_maps_to_an_actionable_kind() {
        use GrantKind as G;
        use Provider as P;
        let cases: &[(P, G, ProviderErrorBody, &str)] = &[
            (
                P::Salesforce,
                G::Password,
                body("invalid_grant", "authentication failure"),
                "user_rejected",
            ),
            (
                P::Salesforce,
                G::JwtBearer,
                body("invalid_grant", "user hasn't approved this consumer"),
                "consent_missing",
            ),
            (
                P::Salesforce,
                G::JwtBearer,
                body("invalid_grant", "invalid assertion"),
                "assertion_rejected",
            ),
            (
                P::Salesforce,
                G::Refresh,
                body("invalid_grant", "expired access/refresh token"),
                "reauthorization_required",
            ),
            (
                P::Salesforce,
                G::Password,
                body("invalid_client_id", "client identifier invalid"),
                "client_rejected",
            ),
            (
                P::Salesforce,
                G::Password,
                body("invalid_client", "invalid client credentials"),
                "client_rejected",
            ),
            (
                P::Salesforce,
                G::AuthorizationCode,
                body("invalid_grant", "invalid authorization code"),
                "rejected",
            ),
            (
                P::Microsoft,
                G::ClientCredentials,
                ProviderErrorBody {
                    error: "invalid_client".into(),
                    error_description: Some(
                        "AADSTS7000215: Invalid client secret provided.".into(),
                    ),
                    error_uri: None,
                    error_codes: vec![7000215],
                },
                "client_rejected",
            ),
            (
                P::Microsoft,
                G::ClientCredentials,
                body(
                    "invalid_client",
                    "AADSTS700016: Application with identifier 'x' was not found",
                ),
                "client_rejected",
            ),
            (
                P::Microsoft,
                G::ClientCredentials,
                body(
                    "invalid_scope",
                    "AADSTS70011: The provided value for the input parameter 'scope' is not valid.\r\nTrace ID: 1",
                ),
                "scope_rejected",
            ),
            (
                P::Google,
                G::JwtBearer,
                body("invalid_grant", "Invalid JWT Signature."),
                "assertion_rejected",
            ),
            (
                P::Google,
                G::JwtBearer,
                body(
                    "invalid_grant",
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
                ),
                "assertion_rejected",
            ),
            (
                P::Google,
                G::JwtBearer,
                body(
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
                ),
                "consent_missing",
            ),
            (
                P::Google,
                G::Refresh,
                body("invalid_grant", "Token has been expired or revoked."),
                "reauthorization_required",
            ),
            (
                P::Slack,
                G::AuthorizationCode,
                body("invalid_client_id", ""),
                "client_rejected",
            ),
            (
                P::Slack,
                G::AuthorizationCode,
                body("bad_client_secret", ""),
                "client_rejected",
            ),
            (
                P::Slack,
                G::AuthorizationCode,
                body("invalid_code", ""),
                "rejected",
            ),
            (
                P::Slack,
                G::Refresh,
                body("invalid_refresh_token", ""),
                "reauthorization_required",
            ),
            (
                P::Box,
                G::Refresh,
                body("invalid_grant", "Invalid refresh token"),
                "reauthorization_required",
            ),
            (
                P::Box,
                G::ClientCredentials,
                body("invalid_grant", "Grant credentials are invalid"),
                "client_rejected",
            ),
            (
                P::Box,
                G::ClientCredentials,
                body(
                    "unauthorized_client",
                    "The \"box_subject_type\" value is unauthorized for this client_id",
                ),
                "consent_missing",
            ),
            (
                P::Dropbox,
                G::Refresh,
                body("invalid_grant", "refresh token is invalid or revoked"),
                "reauthorization_required",
            ),
            (
                P::Dropbox,
                G::AuthorizationCode,
                body("invalid_client", "Invalid client_id or client_secret"),
                "client_rejected",
            ),
            (
                P::Generic,
                G::ClientCredentials,
                body("invalid_scope", "nope"),
                "scope_rejected",
            ),
        ];
        for (provider, grant, b, expected) in cases {
            let err = classify(*provider, *grant, b, "detail".into());
            assert_eq!(
                err.kind(),
                *expected,
                "{provider:?} {grant:?} {b:?} -> {err}"
            );
        }
    }

    #[test]
    fn sanitize_keeps_the_first_line_and_redacts_secrets() {
        let text = "AADSTS7000215: bad secret s3cr3t-value for app\r\nTrace ID: abc";
        assert_eq!(
            sanitize(text, ["s3cr3t-value", "ab"]),
            "AADSTS7000215: bad secret [redacted] for app"
        );
    }

    #[test]
    fn the_wrong_security_token_message_says_what_to_do() {
        let err = classify(
            Provider::Salesforce,
            GrantKind::Password,
            &body("invalid_grant", "authentication failure"),
            "invalid_grant: authentication failure".into(),
        );
        assert_eq!(
            err.to_string(),
            "Salesforce rejected the user's credentials: wrong username, password or security token; Salesforce wants the password followed by the user's current security token (reset it under Settings > Reset My Security Token), and the org must allow the username-password flow (Salesforce said: invalid_grant: authentication failure)"
        );
    }
}
