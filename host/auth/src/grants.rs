//! Running one token request per grant and turning the answer into a [`TokenSet`].
//!
//! Every grant (client credentials, password, authorization code, refresh, JWT bearer) is one
//! form POST to the declared token URL, built and read the same way, with the plugin's
//! [`Dialect`] deciding what differs: where the client credentials go, how scopes are joined,
//! which extra parameters are sent, whether an HTTP 200 can be an error, where the error code and
//! description sit, which response fields are kept as auth context, what lifetime to assume
//! without `expires_in`, and whether a response without a refresh token keeps the old one.
//!
//! Secrets leave this module only inside request bodies (or the Basic header) to the declared
//! token URL. Errors quote provider descriptions only after [`sanitize`] redacted every secret the
//! integration holds; a response body is never quoted.

use std::collections::BTreeMap;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenResponse,
};
use oauth2::{AuthUrl, ClientId, EndpointNotSet, EndpointSet, StandardRevocableToken, TokenUrl};
use proofpix_vault::Secret;
use time::OffsetDateTime;
use url::Url;

use crate::dialect::{ClientAuth, Dialect, ReadError, RefreshRotation};
use crate::error::{AuthError, GrantKind, sanitize};
use crate::http::HttpFailure;
use crate::token::TokenSet;

/// The `oauth2` client type used to build authorize URLs (PKCE, state).
pub(crate) type AuthorizeClient = oauth2::Client<
    BasicErrorResponse,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token response, read.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access_token: Secret,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) context: BTreeMap<String, String>,
}

/// Everything needed to send one token request and report its failure.
pub(crate) struct GrantContext<'a> {
    pub(crate) dialect: &'a Dialect,
    pub(crate) http: &'a crate::http::TokenHttp,
    pub(crate) token_url: &'a Url,
    /// Non-secret config, for the dialect's templates.
    pub(crate) config: &'a BTreeMap<String, String>,
    /// Every secret value that must never appear in a message.
    pub(crate) redact: Vec<&'a str>,
}

/// What to ask for.
pub(crate) enum Grant<'a> {
    ClientCredentials {
        scopes: &'a [String],
    },
    Password {
        username: &'a str,
        /// Password already concatenated with its declared suffix (a security token).
        password: &'a Secret,
        scopes: &'a [String],
    },
    AuthorizationCode {
        code: &'a Secret,
        verifier: &'a Secret,
        redirect_uri: &'a Url,
    },
    Refresh {
        refresh_token: &'a Secret,
    },
    JwtBearer {
        assertion: &'a Secret,
        /// Scopes for the form body (when the dialect does not put them in a claim).
        scopes: &'a [String],
    },
}

impl Grant<'_> {
    pub(crate) fn kind(&self) -> GrantKind {
        match self {
            Grant::ClientCredentials { .. } => GrantKind::ClientCredentials,
            Grant::Password { .. } => GrantKind::Password,
            Grant::AuthorizationCode { .. } => GrantKind::AuthorizationCode,
            Grant::Refresh { .. } => GrantKind::Refresh,
            Grant::JwtBearer { .. } => GrantKind::JwtBearer,
        }
    }
}

/// The client id and optional secret of an OAuth2 app, and the scheme's own extra parameters.
pub(crate) struct ClientCredentials<'a> {
    pub(crate) id: &'a str,
    pub(crate) secret: Option<&'a Secret>,
    /// The auth scheme's `extra-params` (contract 0.1/0.2), sent on every grant but refresh.
    pub(crate) extra_params: &'a [(String, String)],
}

impl GrantContext<'_> {
    fn host(&self) -> String {
        match (self.token_url.host_str(), self.token_url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => "(no host)".to_owned(),
        }
    }

    fn provider(&self) -> String {
        self.dialect.name()
    }

    pub(crate) fn http_error(&self, failure: HttpFailure) -> AuthError {
        let provider = self.provider();
        match failure {
            HttpFailure::Unreachable { reason } => AuthError::Unreachable {
                provider,
                host: self.host(),
                reason: sanitize(&reason, self.redact.iter().copied()),
            },
            HttpFailure::Timeout => AuthError::Timeout {
                provider,
                host: self.host(),
                timeout: self.http.timeout(),
            },
            HttpFailure::Redirected { status } => AuthError::Redirected { provider, status },
            HttpFailure::ServerError { status } => {
                AuthError::ProviderUnavailable { provider, status }
            }
            HttpFailure::UnexpectedStatus {
                status,
                content_type,
            } => AuthError::MalformedResponse {
                provider,
                what: format!("HTTP {status} with {}", sanitize(&content_type, [])),
            },
            HttpFailure::TooLarge => AuthError::MalformedResponse {
                provider,
                what: failure.to_string(),
            },
            HttpFailure::Blocked { .. } => AuthError::InvalidConfig {
                reason: failure.to_string(),
            },
            HttpFailure::InvalidRequest => AuthError::InvalidConfig {
                reason: "the token request could not be built from the token URL; check it"
                    .to_owned(),
            },
        }
    }

    fn provider_error(&self, grant: GrantKind, error: &ReadError) -> AuthError {
        let text = if error.description.is_empty() {
            error.code.clone()
        } else {
            format!("{}: {}", error.code, error.description)
        };
        self.dialect
            .classify(grant, error, sanitize(&text, self.redact.iter().copied()))
    }

    fn malformed(&self, what: impl Into<String>) -> AuthError {
        AuthError::MalformedResponse {
            provider: self.provider(),
            what: what.into(),
        }
    }

    /// Sends one grant and reads the answer.
    pub(crate) async fn run(
        &self,
        app: Option<&ClientCredentials<'_>>,
        grant: Grant<'_>,
    ) -> Result<Issued, AuthError> {
        let kind = grant.kind();
        let scopes_joined = |scopes: &[String]| scopes.join(&self.dialect.scope_separator);
        let mut params: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: &str| params.push((k.to_owned(), v.to_owned()));
        let with_extras = match grant {
            Grant::ClientCredentials { scopes } => {
                put("grant_type", "client_credentials");
                if !scopes.is_empty() {
                    put("scope", &scopes_joined(scopes));
                }
                true
            }
            Grant::Password {
                username,
                password,
                scopes,
            } => {
                put("grant_type", "password");
                put("username", username);
                put("password", password.expose());
                if !scopes.is_empty() {
                    put("scope", &scopes_joined(scopes));
                }
                true
            }
            Grant::AuthorizationCode {
                code,
                verifier,
                redirect_uri,
            } => {
                put("grant_type", "authorization_code");
                put("code", code.expose());
                put("redirect_uri", redirect_uri.as_str());
                put("code_verifier", verifier.expose());
                true
            }
            Grant::Refresh { refresh_token } => {
                put("grant_type", "refresh_token");
                put("refresh_token", refresh_token.expose());
                false
            }
            Grant::JwtBearer { assertion, scopes } => {
                put("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
                put("assertion", assertion.expose());
                if !self.dialect.jwt.scope_claim && !scopes.is_empty() {
                    put("scope", &scopes_joined(scopes));
                }
                false
            }
        };
        let mut basic = None;
        if let Some(app) = app {
            if with_extras {
                params.extend(app.extra_params.iter().cloned());
            }
            match (self.dialect.client_auth, app.secret) {
                // RFC 6749 §2.3.1: both parts form-encoded before Base64.
                (ClientAuth::Basic, Some(secret)) if kind != GrantKind::JwtBearer => {
                    basic = Some((form_encode(app.id), form_encode(secret.expose())));
                }
                (_, secret) => {
                    params.push(("client_id".to_owned(), app.id.to_owned()));
                    if let Some(secret) = secret {
                        params.push(("client_secret".to_owned(), secret.expose().to_owned()));
                    }
                }
            }
        }
        params.extend(Dialect::expand_all(
            &self.dialect.token_params,
            self.config,
        )?);
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = self
            .http
            .post_form(
                self.token_url,
                &borrowed,
                basic.as_ref().map(|(i, s)| (i.as_str(), s.as_str())),
            )
            .await
            .map_err(|f| self.http_error(f))?;
        self.read(kind, response.status().as_u16(), response.body())
    }

    /// Reads a token endpoint's answer: an error (by status, or an HTTP 200 the dialect says is
    /// one) or the token and what the dialect keeps of it.
    fn read(&self, grant: GrantKind, status: u16, body: &[u8]) -> Result<Issued, AuthError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
            self.malformed(format!(
                "HTTP {status} whose body is not the expected JSON object"
            ))
        })?;
        if !value.is_object() {
            return Err(self.malformed("the body is not the expected JSON object"));
        }
        if !(200..300).contains(&status) || self.dialect.is_error_ok(&value) {
            let error = self.dialect.read_error(&value).ok_or_else(|| {
                self.malformed(format!("HTTP {status} without an OAuth2 error body"))
            })?;
            return Err(self.provider_error(grant, &error));
        }
        let text = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
        };
        // Serde-free on purpose: a message never quotes a value, which might be a token.
        let access_token = match value.get("access_token") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(self.malformed("the field `access_token` is malformed")),
            None => return Err(self.malformed("the field `access_token` is missing")),
        };
        // Numbers, and numbers sent as strings by some providers.
        let expires_in = match value.get("expires_in") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        let context = self
            .dialect
            .context_fields
            .iter()
            .filter_map(|f| Some((f.name.clone(), f.read(&value)?)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Ok(Issued {
            access_token: Secret::from(access_token),
            refresh_token: text("refresh_token").map(Secret::new),
            expires_in,
            scopes: text("scope").map(|s| self.dialect.split_scopes(s)),
            context,
        })
    }
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Builds the [`TokenSet`] from a response.
///
/// Without `expires_in`, the dialect's assumed lifetime (or the host's default) counts from
/// receipt. Without a refresh token, a reusable one is kept (many providers' refresh responses
/// omit it and the old one goes on working); a single-use one is spent, so none is kept.
pub(crate) fn token_set(
    dialect: &Dialect,
    issued: Issued,
    now: OffsetDateTime,
    previous_refresh: Option<&Secret>,
    requested_scopes: &[String],
    options: &crate::CredentialOptions,
) -> TokenSet {
    let assumed = dialect
        .default_lifetime_secs
        .map(|s| time::Duration::seconds(i64::from(s)))
        .or(options.assumed_token_lifetime);
    let expires_at = match issued.expires_in {
        Some(secs) => {
            Some(now + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2)))
        }
        None => assumed.map(|d| now + d),
    };
    let kept = match dialect.refresh_rotation {
        RefreshRotation::Reusable => previous_refresh.cloned(),
        RefreshRotation::SingleUse => None,
    };
    TokenSet {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token.or(kept),
        expires_at,
        obtained_at: now,
        scopes: issued.scopes.unwrap_or_else(|| requested_scopes.to_vec()),
        context: issued.context,
    }
}

/// The authorize-URL client.
pub(crate) fn authorize_client(
    client_id: &str,
    token_url: &Url,
    authorize_url: &Url,
) -> AuthorizeClient {
    oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        .set_auth_uri(AuthUrl::from_url(authorize_url.clone()))
}
