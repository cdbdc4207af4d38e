//! One integration's credentials: a cached header, refreshed before expiry, with a single refresh
//! in flight.
//!
//! The hot path, [`Credentials::authorization`], reads the cached header under a read lock and
//! clones it. When the token is missing or within [`CredentialOptions::refresh_skew`] of expiry,
//! callers queue on one async mutex; the first runs the flow, persists the result, publishes it,
//! and the others find the fresh token when they get the lock. [`Credentials::invalidate_and_refresh`]
//! is the path for a platform's 401: it compares the rejected header with the current one under the
//! same mutex, so a burst of 401s for one expired token causes exactly one refresh. That matters
//! beyond efficiency: single-use refresh tokens work once, so two concurrent refreshes
//! would lock the integration out.
//!
//! Ordering on every new token: request → [`TokenPersistence::save`] → publish. A token is never
//! handed out before the refresh token that came with it is stored. If the store fails, the new
//! tokens are still used in memory (the old refresh token may already be dead) and the caller gets
//! [`AuthError::Persistence`] once, so the operator learns that a restart will need re-authorizing.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use oauth2::{CsrfToken, PkceCodeChallenge, Scope};
use proofpix_vault::Secret;
use url::Url;

use crate::authorize::{AuthorizationRequest, AuthorizationSessions};
use crate::clock::{Clock, SystemClock};
use crate::dialect::Dialect;
use crate::error::{AuthError, GrantKind};
use crate::grants::{ClientCredentials, Grant, GrantContext, token_set};
use crate::http::TokenHttp;
use crate::jwt::{AssertionClaims, SigningKey};
use crate::persistence::TokenPersistence;
use crate::scheme::{AuthScheme, CredentialInputs, JwtBearerAuth, OAuth2Auth};
use crate::token::{HeaderPair, TokenSet, TokenSummary};

/// Tunables. Every default is what the reference or the providers' behaviour suggests.
#[derive(Clone, Debug)]
pub struct CredentialOptions {
    /// Refresh this long before the token's expiry, so a request never leaves with a token about
    /// to expire in flight. Default 60 s.
    pub refresh_skew: time::Duration,
    /// Timeout of one token request. Default 30 s.
    pub request_timeout: std::time::Duration,
    /// Lifetime assumed for responses without `expires_in` when the plugin's dialect declares
    /// none. Default `None`: such tokens are used until the platform rejects them, and a 401
    /// triggers a refresh.
    pub assumed_token_lifetime: Option<time::Duration>,
    /// How long an authorization attempt may take in the browser. Default 10 min.
    pub authorization_lifetime: time::Duration,
}

impl Default for CredentialOptions {
    fn default() -> Self {
        CredentialOptions {
            refresh_skew: time::Duration::seconds(60),
            request_timeout: std::time::Duration::from_secs(30),
            assumed_token_lifetime: None,
            authorization_lifetime: time::Duration::minutes(10),
        }
    }
}

/// The scheme with URLs parsed and the static header prepared.
#[derive(Debug)]
enum Flow {
    None,
    ApiKey {
        header: HeaderPair,
        field: String,
    },
    ClientCredentials(OAuthFlow),
    AuthorizationCode(OAuthFlow),
    Password {
        oauth: OAuthFlow,
        username_field: String,
        password_field: String,
        suffix_field: Option<String>,
    },
    Jwt {
        token_url: Url,
        auth: JwtBearerAuth,
    },
}

#[derive(Debug)]
struct OAuthFlow {
    token_url: Url,
    authorize_url: Option<Url>,
    auth: OAuth2Auth,
}

#[derive(Debug)]
struct Cached {
    tokens: TokenSet,
    header: HeaderPair,
}

#[derive(Debug, Default)]
struct RefreshState {
    /// Whether the persisted tokens were loaded.
    loaded: bool,
}

#[derive(Debug)]
struct Inner {
    integration: String,
    dialect: Dialect,
    flow: Flow,
    inputs: CredentialInputs,
    http: TokenHttp,
    persistence: Arc<dyn TokenPersistence>,
    clock: Arc<dyn Clock>,
    options: CredentialOptions,
    sessions: AuthorizationSessions,
    current: RwLock<Option<Arc<Cached>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// The credentials of one integration. Cheap to clone; clones share the cache and the refresh lock.
#[derive(Clone, Debug)]
pub struct Credentials {
    inner: Arc<Inner>,
}

/// Builds [`Credentials`]; see [`Credentials::builder`].
#[derive(Debug)]
pub struct CredentialsBuilder {
    integration: String,
    inputs: CredentialInputs,
    http: reqwest::Client,
    persistence: Arc<dyn TokenPersistence>,
    dialect: Dialect,
    clock: Arc<dyn Clock>,
    options: CredentialOptions,
    sessions: AuthorizationSessions,
    networks: proofpix_policy::BlockedNetworks,
}

impl CredentialsBuilder {
    /// The address classes the integration's grant allows token requests to reach besides
    /// public ones (default: none, so a token URL on loopback or a private address is refused).
    /// Names are checked by the host's resolver in the client; IP-literal token URLs, which no
    /// resolver sees, are checked here.
    pub fn networks(mut self, networks: proofpix_policy::BlockedNetworks) -> Self {
        self.networks = networks;
        self
    }

    /// How the provider deviates from RFC 6749, as the plugin declares it (default: the RFC,
    /// under the name "The OAuth2 provider").
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tunables.
    pub fn options(mut self, options: CredentialOptions) -> Self {
        self.options = options;
        self
    }

    /// The process-wide table of pending authorizations (default: a private one).
    pub fn sessions(mut self, sessions: AuthorizationSessions) -> Self {
        self.sessions = sessions;
        self
    }

    /// Validates the scheme against the inputs and builds the credentials. No network access.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingField`] when a field the scheme needs has no value;
    /// [`AuthError::InvalidConfig`] for an unusable URL or dialect; [`AuthError::InvalidPrivateKey`]
    /// for a key that is not PEM.
    pub fn build(self) -> Result<Credentials, AuthError> {
        let inputs = self.inputs;
        let dialect = self.dialect;
        dialect.validate()?;
        let parse = |what: &str, u: &str| -> Result<Url, AuthError> {
            let url = Url::parse(u).map_err(|e| AuthError::InvalidConfig {
                reason: format!("the {what} URL '{u}' is not a URL ({e})"),
            })?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(AuthError::InvalidConfig {
                    reason: format!("the {what} URL '{u}' must be https"),
                });
            }
            Ok(url)
        };
        let oauth = |auth: &OAuth2Auth, needs_authorize: bool| -> Result<OAuthFlow, AuthError> {
            inputs.config_value(&auth.client_id_field)?;
            if let Some(field) = &auth.client_secret_field {
                inputs.secret(field)?;
            }
            let authorize_url = match (&auth.authorize_url, needs_authorize) {
                (Some(u), _) => Some(parse("authorize", u)?),
                (None, true) => {
                    return Err(AuthError::InvalidConfig {
                        reason: "the authorization-code flow needs an authorize URL; the plugin's `describe` must declare one".into(),
                    });
                }
                (None, false) => None,
            };
            Ok(OAuthFlow {
                token_url: parse("token", &auth.token_url)?,
                authorize_url,
                auth: auth.clone(),
            })
        };
        let flow = match &inputs.scheme {
            AuthScheme::None => Flow::None,
            AuthScheme::ApiKey(key) => {
                let value = inputs.secret(&key.secret_field)?;
                Flow::ApiKey {
                    header: HeaderPair {
                        name: key.header.to_ascii_lowercase(),
                        value: Secret::new(format!("{}{}", key.prefix, value.expose())),
                    },
                    field: key.secret_field.clone(),
                }
            }
            AuthScheme::OAuth2ClientCredentials(auth) => {
                Flow::ClientCredentials(oauth(auth, false)?)
            }
            AuthScheme::OAuth2AuthorizationCode(auth) => {
                Flow::AuthorizationCode(oauth(auth, true)?)
            }
            AuthScheme::OAuth2Password(p) => {
                inputs.config_value(&p.username_field)?;
                inputs.secret(&p.password_field)?;
                if let Some(suffix) = &p.password_suffix_field {
                    inputs.secret(suffix)?;
                }
                Flow::Password {
                    oauth: oauth(&p.oauth, false)?,
                    username_field: p.username_field.clone(),
                    password_field: p.password_field.clone(),
                    suffix_field: p.password_suffix_field.clone(),
                }
            }
            AuthScheme::JwtBearer(j) => {
                let key =
                    SigningKey::parse(&j.private_key_field, inputs.secret(&j.private_key_field)?)?;
                if key.file_issuer.is_none() {
                    inputs.config_value(&j.issuer_field)?;
                }
                if dialect.jwt.client_in_body {
                    if let Some(field) = &dialect.jwt.client_id_field {
                        inputs.config_value(field)?;
                    }
                    if let Some(field) = &dialect.jwt.client_secret_field {
                        inputs.secret(field)?;
                    }
                }
                Flow::Jwt {
                    token_url: parse("token", &j.token_url)?,
                    auth: j.clone(),
                }
            }
        };
        Ok(Credentials {
            inner: Arc::new(Inner {
                integration: self.integration,
                dialect,
                flow,
                inputs,
                http: TokenHttp::new(self.http, self.options.request_timeout, self.networks),
                persistence: self.persistence,
                clock: self.clock,
                options: self.options,
                sessions: self.sessions,
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            }),
        })
    }
}

/// Compares two secrets without an early exit on the first differing byte.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    let (a, b) = (a.expose().as_bytes(), b.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Credentials {
    /// Starts building the credentials of `integration`.
    ///
    /// `http` must be the host's egress-checked client, built with
    /// `reqwest::redirect::Policy::none()`: token requests must never follow redirects (see
    /// [`crate::http`]). `persistence` stores the tokens sealed.
    pub fn builder(
        integration: impl Into<String>,
        inputs: CredentialInputs,
        http: reqwest::Client,
        persistence: Arc<dyn TokenPersistence>,
    ) -> CredentialsBuilder {
        CredentialsBuilder {
            integration: integration.into(),
            inputs,
            http,
            persistence,
            dialect: Dialect::default(),
            clock: Arc::new(SystemClock),
            options: CredentialOptions::default(),
            sessions: AuthorizationSessions::default(),
            networks: proofpix_policy::BlockedNetworks::default(),
        }
    }

    /// The integration these credentials belong to.
    pub fn integration(&self) -> &str {
        &self.inner.integration
    }

    /// The dialect the provider is spoken in.
    pub fn dialect(&self) -> &Dialect {
        &self.inner.dialect
    }

    /// The header to inject on requests to the integration's credentialed endpoints, or `None`
    /// for the `none` scheme. Fetches or refreshes the token when there is none or it expires
    /// within the refresh skew; concurrent callers share one token request.
    ///
    /// # Errors
    ///
    /// Any [`AuthError`] of the flow; [`AuthError::AuthorizationRequired`] when an
    /// authorization-code integration was never authorized.
    pub async fn authorization(&self) -> Result<Option<HeaderPair>, AuthError> {
        match &self.inner.flow {
            Flow::None => return Ok(None),
            Flow::ApiKey { header, .. } => return Ok(Some(header.clone())),
            _ => {}
        }
        if let Some(cached) = self.fresh() {
            return Ok(Some(cached.header.clone()));
        }
        let mut state = self.inner.refresh.lock().await;
        self.ensure_loaded(&mut state).await?;
        // Another caller may have refreshed while this one waited for the lock.
        if let Some(cached) = self.fresh() {
            return Ok(Some(cached.header.clone()));
        }
        Ok(Some(self.obtain().await?.header.clone()))
    }

    /// Called when the platform answered `unauthorized` to a request that carried `rejected`
    /// (the header value). Refreshes once; when another caller already replaced that token,
    /// returns theirs without a new token request.
    ///
    /// # Errors
    ///
    /// [`AuthError::ApiKeyRejected`] for static keys (nothing to refresh); any flow error.
    pub async fn invalidate_and_refresh(&self, rejected: &Secret) -> Result<HeaderPair, AuthError> {
        match &self.inner.flow {
            Flow::None => return Err(AuthError::NoCredentials),
            Flow::ApiKey { field, .. } => {
                return Err(AuthError::ApiKeyRejected {
                    field: field.clone(),
                });
            }
            _ => {}
        }
        let mut state = self.inner.refresh.lock().await;
        self.ensure_loaded(&mut state).await?;
        if let Some(current) = self.current()
            && !same_secret(&current.header.value, rejected)
        {
            tracing::debug!(integration = %self.inner.integration, "the rejected token was already replaced; reusing the new one");
            return Ok(current.header.clone());
        }
        tracing::info!(integration = %self.inner.integration, provider = %self.inner.dialect.name(),
            "the platform rejected the token; obtaining a new one");
        Ok(self.obtain().await?.header.clone())
    }

    /// The secret field of a static API key, when that is the scheme: a key the host cannot
    /// check by itself (only the platform's answer to a real call says whether it is right).
    pub fn static_key_field(&self) -> Option<&str> {
        match &self.inner.flow {
            Flow::ApiKey { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Obtains a new token now, whatever is cached, and returns what it established. This is the
    /// credential half of `proofpix integration test`: a wrong secret shows up even while an old
    /// token is still valid. For the authorization-code flow it refreshes.
    ///
    /// # Errors
    ///
    /// Any [`AuthError`] of the flow.
    pub async fn renew(&self) -> Result<TokenSummary, AuthError> {
        if let Flow::None | Flow::ApiKey { .. } = &self.inner.flow {
            return Ok(TokenSummary {
                expires_at: None,
                has_refresh_token: false,
                scopes: Vec::new(),
                context: BTreeMap::new(),
            });
        }
        let mut state = self.inner.refresh.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(self.obtain().await?.tokens.summary())
    }

    /// Non-secret auth context of the current token (Salesforce `instance_url`, Slack `team_id`,
    /// ...). Empty until a token was obtained or loaded: call [`Credentials::authorization`] first.
    pub fn context(&self) -> BTreeMap<String, String> {
        self.current()
            .map(|c| c.tokens.context.clone())
            .unwrap_or_default()
    }

    /// Starts an authorization-code flow: returns the URL to open in the operator's browser. The
    /// provider will redirect to `redirect_uri` with `code` and `state`, to be passed to
    /// [`Credentials::complete_authorization`].
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidConfig`] when the scheme is not the authorization-code flow.
    pub fn begin_authorization(
        &self,
        redirect_uri: &Url,
    ) -> Result<AuthorizationRequest, AuthError> {
        let Flow::AuthorizationCode(flow) = &self.inner.flow else {
            return Err(AuthError::InvalidConfig {
                reason: "only integrations using the authorization-code flow are authorized in a browser".into(),
            });
        };
        let authorize_url =
            flow.authorize_url
                .as_ref()
                .ok_or_else(|| AuthError::InvalidConfig {
                    reason: "the plugin declares no authorize URL".into(),
                })?;
        let client_id = self.inner.inputs.config_value(&flow.auth.client_id_field)?;
        let client = crate::grants::authorize_client(client_id, &flow.token_url, authorize_url);
        let dialect = &self.inner.dialect;
        let extra = Dialect::expand_all(&dialect.authorize_params, &self.inner.inputs.config)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = oauth2::RedirectUrl::from_url(redirect_uri.clone());
        let provider = dialect.name();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(std::borrow::Cow::Borrowed(&redirect))
            .set_pkce_challenge(challenge);
        if !flow.auth.scopes.is_empty() {
            request =
                request.add_scope(Scope::new(flow.auth.scopes.join(&dialect.scope_separator)));
        }
        for (k, v) in extra {
            request = request.add_extra_param(k, v);
        }
        let (url, state) = request.url();
        let state = state.into_secret();
        self.inner.sessions.insert(
            state.clone(),
            &self.inner.integration,
            Secret::from(verifier.into_secret()),
            redirect_uri.clone(),
            self.inner.clock.now(),
            self.inner.options.authorization_lifetime,
        );
        tracing::info!(integration = %self.inner.integration, %provider, "authorization started");
        Ok(AuthorizationRequest { url, state })
    }

    /// Finishes an authorization-code flow with the callback's `state` and `code`: exchanges the
    /// code (with the PKCE verifier), stores the tokens and starts using them.
    ///
    /// # Errors
    ///
    /// [`AuthError::UnknownAuthorization`] when `state` is unknown, expired, used or belongs to
    /// another integration; any flow error.
    pub async fn complete_authorization(
        &self,
        state: &str,
        code: &Secret,
    ) -> Result<TokenSummary, AuthError> {
        let Flow::AuthorizationCode(flow) = &self.inner.flow else {
            return Err(AuthError::InvalidConfig {
                reason: "only integrations using the authorization-code flow are authorized in a browser".into(),
            });
        };
        let pending = self
            .inner
            .sessions
            .take(state, &self.inner.integration, self.inner.clock.now())
            .ok_or(AuthError::UnknownAuthorization {
                minutes: u64::try_from(self.inner.options.authorization_lifetime.whole_minutes())
                    .unwrap_or(10),
            })?;
        let mut refresh_state = self.inner.refresh.lock().await;
        let tokens = self
            .grant(
                flow,
                Grant::AuthorizationCode {
                    code,
                    verifier: &pending.verifier,
                    redirect_uri: &pending.redirect_uri,
                },
                &[code.expose(), pending.verifier.expose()],
                None,
            )
            .await?;
        refresh_state.loaded = true;
        let cached = self.store_and_publish(tokens).await?;
        tracing::info!(integration = %self.inner.integration, provider = %self.inner.dialect.name(), "authorization completed");
        Ok(cached.tokens.summary())
    }

    fn current(&self) -> Option<Arc<Cached>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn fresh(&self) -> Option<Arc<Cached>> {
        let current = self.current()?;
        let now = self.inner.clock.now();
        match current.tokens.expires_at {
            Some(at) if now + self.inner.options.refresh_skew >= at => None,
            _ => Some(current),
        }
    }

    fn publish(&self, tokens: TokenSet) -> Arc<Cached> {
        let header = HeaderPair {
            name: "authorization".to_owned(),
            value: Secret::new(format!("Bearer {}", tokens.access_token.expose())),
        };
        let cached = Arc::new(Cached { tokens, header });
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached.clone());
        cached
    }

    async fn ensure_loaded(&self, state: &mut RefreshState) -> Result<(), AuthError> {
        if state.loaded {
            return Ok(());
        }
        let loaded = self
            .inner
            .persistence
            .load(&self.inner.integration)
            .await
            .map_err(|e| AuthError::StoreUnavailable {
                integration: self.inner.integration.clone(),
                reason: e.to_string(),
            })?;
        if let Some(tokens) = loaded
            && self.current().is_none()
        {
            self.publish(tokens);
        }
        state.loaded = true;
        Ok(())
    }

    async fn store_and_publish(&self, tokens: TokenSet) -> Result<Arc<Cached>, AuthError> {
        let saved = self
            .inner
            .persistence
            .save(&self.inner.integration, &tokens)
            .await;
        let cached = self.publish(tokens);
        match saved {
            Ok(()) => Ok(cached),
            Err(e) => {
                let err = AuthError::Persistence {
                    integration: self.inner.integration.clone(),
                    reason: e.to_string(),
                };
                tracing::error!(integration = %self.inner.integration, error.type = err.kind(), error = %err, "new tokens were not stored");
                Err(err)
            }
        }
    }

    /// Runs the flow (or the refresh) and stores the result. The caller holds the refresh lock.
    async fn obtain(&self) -> Result<Arc<Cached>, AuthError> {
        let inputs = &self.inner.inputs;
        let tokens = match &self.inner.flow {
            Flow::None | Flow::ApiKey { .. } => return Err(AuthError::NoCredentials),
            Flow::ClientCredentials(flow) => {
                self.grant(
                    flow,
                    Grant::ClientCredentials {
                        scopes: &flow.auth.scopes,
                    },
                    &[],
                    None,
                )
                .await?
            }
            Flow::Password {
                oauth,
                username_field,
                password_field,
                suffix_field,
            } => {
                let username = inputs.config_value(username_field)?;
                // A declared suffix (a security token) follows the password immediately.
                let mut password = inputs.secret(password_field)?.expose().to_owned();
                if let Some(field) = suffix_field {
                    password.push_str(inputs.secret(field)?.expose());
                }
                let password = Secret::from(password);
                self.grant(
                    oauth,
                    Grant::Password {
                        username,
                        password: &password,
                        scopes: &oauth.auth.scopes,
                    },
                    &[password.expose()],
                    None,
                )
                .await?
            }
            Flow::AuthorizationCode(flow) => {
                let Some(current) = self.current() else {
                    return Err(AuthError::AuthorizationRequired {
                        integration: self.inner.integration.clone(),
                    });
                };
                let Some(refresh_token) = current.tokens.refresh_token.clone() else {
                    return Err(AuthError::ReauthorizationRequired {
                        provider: self.inner.dialect.name(),
                        hint: "the access token expired and the provider issued no refresh token (some providers issue one only when a scope such as offline_access or refresh_token is requested, or an authorize parameter asks for offline access); authorize the integration again".to_owned(),
                        detail: "no refresh token".to_owned(),
                    });
                };
                self.grant(
                    flow,
                    Grant::Refresh {
                        refresh_token: &refresh_token,
                    },
                    &[current.tokens.access_token.expose()],
                    Some(&refresh_token),
                )
                .await?
            }
            Flow::Jwt { token_url, auth } => self.jwt(token_url, auth).await?,
        };
        self.store_and_publish(tokens).await
    }

    fn redact_list<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut list: Vec<&str> = self.inner.inputs.secret_values().collect();
        list.extend_from_slice(extra);
        list
    }

    async fn grant(
        &self,
        flow: &OAuthFlow,
        grant: Grant<'_>,
        extra_secrets: &[&str],
        previous_refresh: Option<&Secret>,
    ) -> Result<TokenSet, AuthError> {
        let inputs = &self.inner.inputs;
        let secret = flow
            .auth
            .client_secret_field
            .as_deref()
            .map(|f| inputs.secret(f))
            .transpose()?;
        let app = ClientCredentials {
            id: inputs.config_value(&flow.auth.client_id_field)?,
            secret,
            extra_params: &flow.auth.extra_params,
        };
        let ctx = GrantContext {
            dialect: &self.inner.dialect,
            http: &self.inner.http,
            token_url: &flow.token_url,
            config: &inputs.config,
            redact: self.redact_list(extra_secrets),
        };
        let kind = grant.kind();
        self.log_request(kind, &flow.token_url);
        let issued = ctx.run(Some(&app), grant).await;
        let issued = self.log_outcome(kind, issued)?;
        Ok(token_set(
            &self.inner.dialect,
            issued,
            self.inner.clock.now(),
            previous_refresh,
            &flow.auth.scopes,
            &self.inner.options,
        ))
    }

    async fn jwt(&self, token_url: &Url, auth: &JwtBearerAuth) -> Result<TokenSet, AuthError> {
        let inputs = &self.inner.inputs;
        let dialect = &self.inner.dialect;
        let key = SigningKey::parse(
            &auth.private_key_field,
            inputs.secret(&auth.private_key_field)?,
        )?;
        let issuer = match inputs.config_value(&auth.issuer_field) {
            Ok(issuer) => issuer.to_owned(),
            Err(missing) => key.file_issuer.clone().ok_or(missing)?,
        };
        // The subject is optional in RFC 7523 (Google's delegation); a declared field with no
        // value sends none, and a provider that needs one says so in its error.
        let subject = auth
            .subject_field
            .as_ref()
            .and_then(|field| inputs.config.get(field))
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty());
        let extra_claims = Dialect::expand_all(&dialect.jwt.claims, &inputs.config)?;
        let key_id = dialect
            .jwt
            .key_id_field
            .as_deref()
            .map(|f| inputs.config_value(f))
            .transpose()?;
        let assertion = crate::jwt::sign(
            &auth.private_key_field,
            &key,
            &AssertionClaims {
                dialect: &dialect.jwt,
                extra_claims: &extra_claims,
                key_id,
                issuer: &issuer,
                subject,
                audience: &auth.audience,
                scopes: &auth.scopes,
                now: self.inner.clock.now(),
            },
        )?;
        let client_secret = dialect
            .jwt
            .client_secret_field
            .as_deref()
            .filter(|_| dialect.jwt.client_in_body)
            .map(|f| inputs.secret(f))
            .transpose()?;
        let client_id = dialect
            .jwt
            .client_id_field
            .as_deref()
            .filter(|_| dialect.jwt.client_in_body)
            .map(|f| inputs.config_value(f))
            .transpose()?;
        let app = client_id.map(|id| ClientCredentials {
            id,
            secret: client_secret,
            extra_params: &[],
        });
        let ctx = GrantContext {
            dialect,
            http: &self.inner.http,
            token_url,
            config: &inputs.config,
            redact: self.redact_list(&[assertion.expose()]),
        };
        self.log_request(GrantKind::JwtBearer, token_url);
        let issued = ctx
            .run(
                app.as_ref(),
                Grant::JwtBearer {
                    assertion: &assertion,
                    scopes: &auth.scopes,
                },
            )
            .await;
        let issued = self.log_outcome(GrantKind::JwtBearer, issued)?;
        Ok(token_set(
            dialect,
            issued,
            self.inner.clock.now(),
            None,
            &auth.scopes,
            &self.inner.options,
        ))
    }

    fn log_request(&self, grant: GrantKind, token_url: &Url) {
        tracing::debug!(
            integration = %self.inner.integration,
            provider = %self.inner.dialect.name(),
            %grant,
            host = token_url.host_str().unwrap_or_default(),
            "requesting a token"
        );
    }

    fn log_outcome<T>(
        &self,
        grant: GrantKind,
        outcome: Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        match &outcome {
            Ok(_) => {
                tracing::info!(integration = %self.inner.integration, provider = %self.inner.dialect.name(), %grant, "obtained a token")
            }
            Err(err) => tracing::warn!(
                integration = %self.inner.integration,
                provider = %self.inner.dialect.name(),
                %grant,
                error.type = err.kind(),
                error = %err,
                "token request failed"
            ),
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The runtime awaits these on a multi-threaded executor: they must stay `Send`. (A
    /// `form_urlencoded::Serializer` held across an `.await` once broke this.)
    #[test]
    fn the_futures_the_runtime_awaits_are_send() {
        let inputs = CredentialInputs {
            scheme: AuthScheme::None,
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        let creds = Credentials::builder(
            "x",
            inputs,
            reqwest::Client::new(),
            Arc::new(crate::MemoryPersistence::new()),
        )
        .build()
        .unwrap();
        let secret = Secret::new("x");
        assert_send(&creds.authorization());
        assert_send(&creds.invalidate_and_refresh(&secret));
        assert_send(&creds.renew());
        assert_send(&creds.complete_authorization("s", &secret));
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(&Secret::new("abc"), &Secret::new("abc")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abd")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abcd")));
    }
}
