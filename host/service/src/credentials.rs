//! Credentials for plugin sessions, built from the plugin's declared scheme,
//! the integration's config and the vault, and kept for the process's life
//! so every session of an integration shares one token cache and one refresh.
//!
//! Threat: a plugin declaring a hostile token or authorization URL to
//! harvest the client secret or password. The host sends secrets only to URLs
//! the operator's grant covers (the same allow-list as plugin traffic), never
//! follows redirects on token endpoints, and checks resolved addresses
//! against the grant's network classes.

use std::collections::BTreeMap;
use std::sync::Arc;

use proofpix_auth::{
    ApiKeyAuth, AuthScheme, CredentialInputs, Credentials, JwtBearerAuth, OAuth2Auth, PasswordAuth,
    PersistFuture, PersistenceError, TokenPersistence, TokenSet,
};
use proofpix_policy::template;
use proofpix_policy::{AllowedHost, OperatorGrant};
use proofpix_runtime::contract::AuthScheme as WitScheme;
use proofpix_runtime::{BoxFuture, CredentialProvider, HeaderPair};
use proofpix_store::Backend;
use proofpix_vault::Secret;
use time::OffsetDateTime;

/// The auth crate's credentials, as the runtime's credential provider.
#[derive(Debug, Clone)]
pub struct AuthCredentials(pub Credentials);

impl CredentialProvider for AuthCredentials {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderPair>, String>> {
        Box::pin(async move {
            self.0
                .authorization()
                .await
                .map(|h| h.map(|h| (h.name, h.value)))
                .map_err(|e| e.to_string())
        })
    }

    fn refresh(&self, rejected: Option<Secret>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let rejected = match rejected {
                Some(r) => r,
                // Nothing was injected yet: the current token is the one to replace.
                None => match self.0.authorization().await.map_err(|e| e.to_string())? {
                    Some(h) => h.value,
                    None => return Err("this integration has no credentials to refresh".into()),
                },
            };
            self.0
                .invalidate_and_refresh(&rejected)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn context(&self) -> BTreeMap<String, String> {
        self.0.context()
    }
}

/// Tokens kept sealed in the store, marked with the authentication that
/// issued them.
///
/// The mark (a hash of the resolved scheme: flow, token URL, client id,
/// scopes; never a secret) is what makes a config change safe: when an
/// operator points an integration at another login URL, tenant or client,
/// tokens from the old one are not sent to the new server (nor the old
/// `instance_url` used); the next call authenticates afresh. Tokens stored
/// without a mark (before marks existed) are kept.
#[derive(Clone)]
pub struct StoreTokens {
    store: Arc<dyn Backend>,
    issuer: String,
}

/// The context key the issuer mark is kept under; never shown to plugins.
const ISSUER_KEY: &str = "proofpix.issuer";

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTokens")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl StoreTokens {
    /// Tokens of integrations authenticated with `scheme`.
    pub fn new(store: Arc<dyn Backend>, scheme: &AuthScheme) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{scheme:?}").as_bytes());
        StoreTokens {
            store,
            issuer: hex::encode(&digest[..12]),
        }
    }
}

impl TokenPersistence for StoreTokens {
    fn load<'a>(&'a self, integration: &'a str) -> PersistFuture<'a, Option<TokenSet>> {
        let store = self.store.clone();
        let issuer = self.issuer.clone();
        let integration = integration.to_string();
        Box::pin(async move {
            let name = integration.clone();
            let loaded = tokio::task::spawn_blocking(move || store.tokens(&integration))
                .await
                .map_err(|e| PersistenceError::new(e.to_string()))?
                .map_err(|e| {
                    PersistenceError::new(format!("cannot read the stored tokens: {e}"))
                })?;
            let Some(mut t) = loaded else {
                return Ok(None);
            };
            match t.context.remove(ISSUER_KEY) {
                Some(mark) if mark != issuer => {
                    tracing::info!(
                        integration = %name,
                        "stored tokens were issued for another authentication setup (the \
                         login URL, tenant, client or flow changed); authenticating afresh"
                    );
                    return Ok(None);
                }
                _ => {}
            }
            Ok(Some(TokenSet {
                access_token: t.access_token,
                refresh_token: t.refresh_token,
                expires_at: t.expires_at,
                obtained_at: OffsetDateTime::now_utc(),
                scopes: t
                    .scope
                    .map(|s| s.split_whitespace().map(String::from).collect())
                    .unwrap_or_default(),
                context: t.context,
            }))
        })
    }

    fn save<'a>(&'a self, integration: &'a str, tokens: &'a TokenSet) -> PersistFuture<'a, ()> {
        let store = self.store.clone();
        let integration = integration.to_string();
        let mut context = tokens.context.clone();
        context.insert(ISSUER_KEY.into(), self.issuer.clone());
        let row = proofpix_store::TokenSet {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scope: (!tokens.scopes.is_empty()).then(|| tokens.scopes.join(" ")),
            context,
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.set_tokens(&integration, &row, "system"))
                .await
                .map_err(|e| PersistenceError::new(e.to_string()))?
                .map_err(|e| PersistenceError::new(format!("cannot store the new tokens: {e}")))
        })
    }
}

/// Why credentials cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialSetupError {
    /// A URL template in the scheme cannot be resolved.
    #[error("auth URL {url:?}: {reason}")]
    Template {
        /// The template.
        url: String,
        /// Why.
        reason: String,
    },
    /// A token or authorization URL is not covered by the grant.
    #[error(
        "the plugin sends credentials to {url}, which the integration's grant does not cover; add its exact host (no wildcard) to the grant if you trust it"
    )]
    NotGranted {
        /// The URL.
        url: String,
    },
    /// The auth crate refused the inputs.
    #[error("{0}")]
    Auth(#[from] proofpix_auth::AuthError),
}

/// The auth crate's scheme for a plugin's declared one, URL templates
/// resolved against the integration's non-secret config.
///
/// # Errors
/// Templates that do not resolve.
pub fn resolve_scheme(
    wit: &WitScheme,
    config: &BTreeMap<String, String>,
) -> Result<AuthScheme, CredentialSetupError> {
    let none = BTreeMap::new();
    let r = |u: &str| {
        template::resolve(u, config, &none).map_err(|e| CredentialSetupError::Template {
            url: u.to_string(),
            reason: e.to_string(),
        })
    };
    let oauth =
        |o: &proofpix_runtime::contract::Oauth2Auth| -> Result<OAuth2Auth, CredentialSetupError> {
            Ok(OAuth2Auth {
                token_url: r(&o.token_url)?,
                authorize_url: o.authorize_url.as_deref().map(r).transpose()?,
                scopes: o.scopes.clone(),
                client_id_field: o.client_id_field.clone(),
                client_secret_field: o.client_secret_field.clone(),
                extra_params: o.extra_params.clone(),
            })
        };
    Ok(match wit {
        WitScheme::None => AuthScheme::None,
        WitScheme::ApiKey(k) => AuthScheme::ApiKey(ApiKeyAuth {
            secret_field: k.secret_field.clone(),
            header: k.header.clone(),
            prefix: k.prefix.clone(),
        }),
        WitScheme::Oauth2ClientCredentials(o) => AuthScheme::OAuth2ClientCredentials(oauth(o)?),
        WitScheme::Oauth2AuthorizationCode(o) => AuthScheme::OAuth2AuthorizationCode(oauth(o)?),
        WitScheme::Oauth2Password(p) => AuthScheme::OAuth2Password(PasswordAuth {
            oauth: oauth(&p.oauth)?,
            username_field: p.username_field.clone(),
            password_field: p.password_field.clone(),
            password_suffix_field: p.password_suffix_field.clone(),
        }),
        WitScheme::JwtBearer(j) => AuthScheme::JwtBearer(JwtBearerAuth {
            token_url: r(&j.token_url)?,
            issuer_field: j.issuer_field.clone(),
            subject_field: j.subject_field.clone(),
            audience: r(&j.audience)?,
            private_key_field: j.private_key_field.clone(),
            scopes: j.scopes.clone(),
        }),
    })
}

/// The URLs the scheme sends secrets to.
pub fn secret_destinations(scheme: &AuthScheme) -> Vec<String> {
    match scheme {
        AuthScheme::OAuth2ClientCredentials(o) | AuthScheme::OAuth2AuthorizationCode(o) => {
            std::iter::once(o.token_url.clone())
                .chain(o.authorize_url.clone())
                .collect()
        }
        AuthScheme::OAuth2Password(p) => vec![p.oauth.token_url.clone()],
        AuthScheme::JwtBearer(j) => vec![j.token_url.clone()],
        _ => Vec::new(),
    }
}

/// Checks every URL the scheme sends secrets to (token and authorize URLs)
/// is one the operator granted for that purpose.
///
/// A grant entry that merely happens to cover the URL is not enough (a
/// wildcard granted for an API endpoint would otherwise let an upgrade point
/// the token URL at any host under it). The URL must match either an
/// endpoint the plugin declares that is granted (`declared_granted`: the
/// integration's effective egress hosts, every one shown at install), or a
/// grant entry that names its host exactly (no `*.` host wildcard).
///
/// # Errors
/// The first URL not covered that way.
pub fn check_destinations(
    scheme: &AuthScheme,
    grant: &OperatorGrant,
    declared_granted: &proofpix_policy::AllowedHosts,
) -> Result<(), CredentialSetupError> {
    let exact: Vec<AllowedHost> = grant
        .hosts
        .iter()
        // A wildcard host (`*.example.com`) does not name a host; a port wildcard
        // (`http://127.0.0.1:*`, local emulators) still names one.
        .filter(|h| {
            let authority = h.split_once("://").map_or("", |(_, rest)| rest);
            let host = authority.split(['/', ':']).next().unwrap_or_default();
            !host.contains('*')
        })
        .filter_map(|h| AllowedHost::parse(h).ok())
        .collect();
    for url in secret_destinations(scheme) {
        let ok = url::Url::parse(&url)
            .is_ok_and(|u| declared_granted.matches(&u) || exact.iter().any(|g| g.matches(&u)));
        if !ok {
            return Err(CredentialSetupError::NotGranted { url });
        }
    }
    Ok(())
}

/// Builds the inputs for the auth crate.
pub fn inputs(
    scheme: AuthScheme,
    config: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, Secret>,
) -> CredentialInputs {
    CredentialInputs {
        scheme,
        config: config.clone(),
        secrets: secrets.clone(),
    }
}
