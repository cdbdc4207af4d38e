//! Running one token request per grant and turning the answer into a [`TokenSet`].
//!
//! Standard grants (client credentials, password, authorization code, refresh) go through the
//! `oauth2` crate. Two cases it cannot express go through [`TokenHttp::post_form`] directly: the
//! JWT bearer grant (RFC 7523, no client authentication) and Slack, whose errors arrive as HTTP 200
//! `{"ok":false}` and whose token sits next to workspace data (reference §4.1). Vendor quirks
//! handled here, each at the line that handles it: Salesforce's missing `expires_in` and
//! millisecond `issued_at` (§1.1), its password + security-token concatenation (§1.1), Microsoft's
//! single `/.default` scope (§2.1, checked when credentials are built), Slack's `ok:false` (§4.1),
//! and refresh responses that carry no new refresh token (Salesforce, Google, Dropbox), where the
//! old one is kept.
//!
//! Secrets leave this module only inside request bodies to the declared token URL. Errors quote
//! provider descriptions only after [`sanitize`] redacted every secret the integration holds.

use std::borrow::Cow;
use std::collections::BTreeMap;

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse as _, TokenUrl,
};
use proofpix_vault::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::error::{AuthError, GrantKind, ProviderErrorBody, classify, sanitize};
use crate::http::HttpFailure;
use crate::provider::Provider;
use crate::token::TokenSet;

/// Non-secret fields some providers add to a token response, kept as auth context.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct ExtraFields {
    /// Salesforce: REST base URL of the org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_url: Option<String>,
    /// Salesforce: identity URL `.../id/{org}/{user}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// Salesforce: epoch milliseconds, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_at: Option<serde_json::Value>,
    /// Dropbox account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    /// Dropbox legacy user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
}

impl oauth2::ExtraTokenFields for ExtraFields {}

pub(crate) type StandardResponse = StandardTokenResponse<ExtraFields, BasicTokenType>;

/// The `oauth2` client type with a token URL set.
pub(crate) type TokenClient<HasAuthUrl = EndpointNotSet> = oauth2::Client<
    ProviderErrorBody,
    StandardResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token response, normalised across the three parsing paths.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access_token: Secret,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) context: BTreeMap<String, String>,
    /// Salesforce `issued_at`, epoch ms.
    pub(crate) issued_at_ms: Option<i64>,
}

impl Issued {
    fn from_standard(response: &StandardResponse) -> Issued {
        let extra = response.extra_fields();
        let mut context = BTreeMap::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                context.insert(k.to_owned(), v.clone());
            }
        };
        put("instance_url", &extra.instance_url);
        put("id", &extra.id);
        put("account_id", &extra.account_id);
        put("uid", &extra.uid);
        // Salesforce identity URL ends in /id/{org id}/{user id}.
        if let Some(id) = &extra.id {
            let mut parts = id.trim_end_matches('/').rsplit('/');
            if let (Some(user), Some(org), Some("id")) = (parts.next(), parts.next(), parts.next())
            {
                context.insert("organization_id".into(), org.to_owned());
                context.insert("user_id".into(), user.to_owned());
            }
        }
        let issued_at_ms = extra.issued_at.as_ref().and_then(|v| match v {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        });
        if let Some(ms) = issued_at_ms {
            context.insert("issued_at".into(), ms.to_string());
        }
        Issued {
            access_token: Secret::from(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|r| Secret::from(r.secret().clone())),
            expires_in: response.expires_in().map(|d| d.as_secs()),
            scopes: response
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect()),
            context,
            issued_at_ms,
        }
    }
}

/// Slack's `oauth.v2.access` response (reference §4.1).
#[derive(Debug, Deserialize)]
struct SlackResponse {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    bot_user_id: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    team: Option<SlackNamed>,
    #[serde(default)]
    enterprise: Option<SlackNamed>,
    #[serde(default)]
    authed_user: Option<SlackUser>,
}

#[derive(Debug, Deserialize)]
struct SlackNamed {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SlackUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// A JWT bearer (or other raw) token response.
#[derive(Debug, Deserialize)]
struct RawResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(flatten)]
    extra: ExtraFields,
}

/// Everything needed to send one token request and report its failure.
pub(crate) struct GrantContext<'a> {
    pub(crate) provider: Provider,
    pub(crate) http: &'a crate::http::TokenHttp,
    pub(crate) token_url: &'a Url,
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
        /// Password already concatenated with the security token.
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
}

impl Grant<'_> {
    pub(crate) fn kind(&self) -> GrantKind {
        match self {
            Grant::ClientCredentials { .. } => GrantKind::ClientCredentials,
            Grant::Password { .. } => GrantKind::Password,
            Grant::AuthorizationCode { .. } => GrantKind::AuthorizationCode,
            Grant::Refresh { .. } => GrantKind::Refresh,
        }
    }
}

/// The client id and optional secret of an OAuth2 app.
pub(crate) struct ClientCredentials<'a> {
    pub(crate) id: &'a str,
    pub(crate) secret: Option<&'a Secret>,
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

    pub(crate) fn http_error(&self, failure: HttpFailure) -> AuthError {
        let provider = self.provider;
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

    pub(crate) fn provider_error(&self, grant: GrantKind, body: &ProviderErrorBody) -> AuthError {
        let text = match body.error_description.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!("{}: {d}", body.error),
            None => body.error.clone(),
        };
        classify(
            self.provider,
            grant,
            body,
            sanitize(&text, self.redact.iter().copied()),
        )
    }

    fn oauth_error(
        &self,
        grant: GrantKind,
        error: RequestTokenError<HttpFailure, ProviderErrorBody>,
    ) -> AuthError {
        match error {
            RequestTokenError::ServerResponse(body) => self.provider_error(grant, &body),
            RequestTokenError::Request(failure) => self.http_error(failure),
            RequestTokenError::Parse(e, _body) => AuthError::MalformedResponse {
                provider: self.provider,
                what: parse_problem(&e.path().to_string(), &e.inner().to_string()),
            },
            RequestTokenError::Other(message) => AuthError::MalformedResponse {
                provider: self.provider,
                what: sanitize(&message, self.redact.iter().copied()),
            },
        }
    }

    pub(crate) fn client(&self, app: &ClientCredentials<'_>) -> TokenClient {
        let mut client = oauth2::Client::new(ClientId::new(app.id.to_owned()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            // Every named vendor accepts credentials in the body (Box requires it); RFC 6749
            // makes HTTP Basic the one servers must support, so unknown providers get Basic.
            .set_auth_type(if self.provider == Provider::Generic {
                AuthType::BasicAuth
            } else {
                AuthType::RequestBody
            });
        if let Some(secret) = app.secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        client
    }

    /// Runs a standard grant through the `oauth2` crate (or Slack's variant of it).
    pub(crate) async fn run(
        &self,
        app: &ClientCredentials<'_>,
        grant: Grant<'_>,
    ) -> Result<Issued, AuthError> {
        if self.provider == Provider::Slack {
            return self.run_slack(app, grant).await;
        }
        let kind = grant.kind();
        let client = self.client(app);
        let extra = app.extra_params;
        let result = match grant {
            Grant::ClientCredentials { scopes } => {
                let mut request = client
                    .exchange_client_credentials()
                    .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
                for (k, v) in extra {
                    request = request.add_extra_param(k.as_str(), v.as_str());
                }
                request.request_async(self.http).await
            }
            Grant::Password {
                username,
                password,
                scopes,
            } => {
                let username = ResourceOwnerUsername::new(username.to_owned());
                let password = ResourceOwnerPassword::new(password.expose().to_owned());
                let mut request = client
                    .exchange_password(&username, &password)
                    .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
                for (k, v) in extra {
                    request = request.add_extra_param(k.as_str(), v.as_str());
                }
                request.request_async(self.http).await
            }
            Grant::AuthorizationCode {
                code,
                verifier,
                redirect_uri,
            } => {
                let mut request = client
                    .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
                    .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()))
                    .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())));
                for (k, v) in extra {
                    request = request.add_extra_param(k.as_str(), v.as_str());
                }
                request.request_async(self.http).await
            }
            Grant::Refresh { refresh_token } => {
                let refresh_token = RefreshToken::new(refresh_token.expose().to_owned());
                client
                    .exchange_refresh_token(&refresh_token)
                    .request_async(self.http)
                    .await
            }
        };
        result
            .map(|response| Issued::from_standard(&response))
            .map_err(|e| self.oauth_error(kind, e))
    }

    /// Slack's `oauth.v2.access`: client credentials in HTTP Basic (Slack's preference), and a
    /// failure is `ok:false` inside an HTTP 200 (reference §4.1).
    async fn run_slack(
        &self,
        app: &ClientCredentials<'_>,
        grant: Grant<'_>,
    ) -> Result<Issued, AuthError> {
        let kind = grant.kind();
        let secret = app.secret.map(Secret::expose).unwrap_or_default();
        let (code, verifier, redirect, refresh);
        let params: Vec<(&str, &str)> = match grant {
            Grant::AuthorizationCode {
                code: c,
                verifier: v,
                redirect_uri,
            } => {
                code = c.expose();
                verifier = v.expose();
                redirect = redirect_uri.as_str();
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", verifier),
                    ("redirect_uri", redirect),
                ]
            }
            Grant::Refresh { refresh_token } => {
                refresh = refresh_token.expose();
                vec![("grant_type", "refresh_token"), ("refresh_token", refresh)]
            }
            Grant::ClientCredentials { .. } | Grant::Password { .. } => {
                return Err(AuthError::InvalidConfig {
                    reason: "Slack apps authenticate with the authorization-code flow (OAuth v2); declare oauth2-authorization-code".to_owned(),
                });
            }
        };
        let response = self
            .http
            .post_form(self.token_url, &params, Some((app.id, secret)))
            .await
            .map_err(|f| self.http_error(f))?;
        let parsed: SlackResponse =
            serde_json::from_slice(response.body()).map_err(|_| AuthError::MalformedResponse {
                provider: self.provider,
                what: "not a Slack `ok` object".to_owned(),
            })?;
        if !parsed.ok {
            let body = ProviderErrorBody {
                error: parsed.error.unwrap_or_else(|| "unknown_error".to_owned()),
                ..ProviderErrorBody::default()
            };
            return Err(self.provider_error(kind, &body));
        }
        let mut context = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                context.insert(k.to_owned(), v);
            }
        };
        put("team_id", parsed.team.as_ref().and_then(|t| t.id.clone()));
        put(
            "team_name",
            parsed.team.as_ref().and_then(|t| t.name.clone()),
        );
        put(
            "enterprise_id",
            parsed.enterprise.as_ref().and_then(|e| e.id.clone()),
        );
        put("bot_user_id", parsed.bot_user_id.clone());
        put("app_id", parsed.app_id.clone());
        put(
            "authed_user_id",
            parsed.authed_user.as_ref().and_then(|u| u.id.clone()),
        );
        // A bot token when bot scopes were requested; otherwise the user token.
        let (access, scope) = match (parsed.access_token, parsed.authed_user) {
            (Some(token), _) => (token, parsed.scope),
            (
                None,
                Some(SlackUser {
                    access_token: Some(token),
                    scope,
                    ..
                }),
            ) => (token, scope),
            _ => {
                return Err(AuthError::MalformedResponse {
                    provider: self.provider,
                    what: "an `ok` response without an access token".to_owned(),
                });
            }
        };
        Ok(Issued {
            access_token: Secret::from(access),
            refresh_token: parsed.refresh_token.map(Secret::from),
            expires_in: parsed.expires_in,
            scopes: scope.map(|s| s.split(',').map(str::to_owned).collect()),
            context,
            issued_at_ms: None,
        })
    }

    /// The RFC 7523 JWT bearer grant: `assertion` only, no client authentication.
    pub(crate) async fn run_jwt_bearer(&self, assertion: &Secret) -> Result<Issued, AuthError> {
        let params = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose()),
        ];
        let response = self
            .http
            .post_form(self.token_url, &params, None)
            .await
            .map_err(|f| self.http_error(f))?;
        if response.status() != 200 {
            let body: ProviderErrorBody =
                serde_json::from_slice(response.body()).map_err(|_| {
                    AuthError::MalformedResponse {
                        provider: self.provider,
                        what: format!(
                            "HTTP {} without an OAuth2 error body",
                            response.status().as_u16()
                        ),
                    }
                })?;
            return Err(self.provider_error(GrantKind::JwtBearer, &body));
        }
        let parsed: RawResponse =
            serde_json::from_slice(response.body()).map_err(|e| AuthError::MalformedResponse {
                provider: self.provider,
                what: parse_problem(".", &e.to_string()),
            })?;
        let standard_like = Issued::from_standard(&{
            let mut r = StandardResponse::new(
                oauth2::AccessToken::new(parsed.access_token),
                BasicTokenType::Bearer,
                parsed.extra,
            );
            r.set_expires_in(
                parsed
                    .expires_in
                    .map(std::time::Duration::from_secs)
                    .as_ref(),
            );
            r.set_refresh_token(parsed.refresh_token.map(RefreshToken::new));
            r.set_scopes(parsed.scope.map(|s| {
                s.split_whitespace()
                    .map(|s| Scope::new(s.to_owned()))
                    .collect()
            }));
            r
        });
        Ok(standard_like)
    }
}

/// Describes a parse failure by field name only. Serde's messages can quote the offending value
/// (`invalid type: string "..."`), which might be a token, so only "missing field" is passed on.
fn parse_problem(path: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field: String = rest.chars().take_while(|c| *c != '`').collect();
        return format!("the field `{field}` is missing");
    }
    if path.is_empty() || path == "." {
        "the body is not the expected JSON object".to_owned()
    } else {
        format!("the field `{path}` is malformed")
    }
}

/// Builds the [`TokenSet`] from a response.
///
/// `previous_refresh` is kept when the response has no refresh token: Salesforce, Google and
/// Dropbox refresh responses omit it and the old one goes on working.
pub(crate) fn token_set(
    provider: Provider,
    issued: Issued,
    now: OffsetDateTime,
    previous_refresh: Option<&Secret>,
    requested_scopes: &[String],
    options: &crate::CredentialOptions,
) -> TokenSet {
    let expires_at = match (issued.expires_in, provider) {
        (Some(secs), _) => {
            Some(now + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2)))
        }
        // Salesforce sends no `expires_in`: the token lives as long as the org's session timeout,
        // counted from `issued_at` (epoch ms). Trust `issued_at` only when it is within ten
        // minutes of our clock; otherwise count from receipt (reference §1.1).
        (None, Provider::Salesforce) => {
            let issued = issued
                .issued_at_ms
                .and_then(|ms| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                })
                .filter(|t| (*t - now).abs() <= time::Duration::minutes(10))
                .unwrap_or(now);
            Some(issued + options.salesforce_session_lifetime)
        }
        (None, _) => options.assumed_token_lifetime.map(|d| now + d),
    };
    TokenSet {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token.or_else(|| previous_refresh.cloned()),
        expires_at,
        obtained_at: now,
        scopes: issued.scopes.unwrap_or_else(|| requested_scopes.to_vec()),
        context: issued.context,
    }
}

/// The authorize-URL client.
pub(crate) fn authorize_client(
    app: &ClientCredentials<'_>,
    token_url: &Url,
    authorize_url: &Url,
) -> TokenClient<EndpointSet> {
    oauth2::Client::new(ClientId::new(app.id.to_owned()))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        .set_auth_uri(AuthUrl::from_url(authorize_url.clone()))
}
