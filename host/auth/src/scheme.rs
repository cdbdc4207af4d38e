//! The authentication a plugin declares, mirrored from the WIT `auth-scheme`, plus the operator's
//! inputs for it.
//!
//! These are plain Rust types so this crate needs no wasmtime: the runtime converts its generated
//! bindings into them at the boundary, after resolving `{config.NAME}` templates in URLs. A plugin
//! names *fields*; the values come from the operator: non-secret ones in
//! [`CredentialInputs::config`], secret ones in [`CredentialInputs::secrets`] as
//! [`Secret`]s. The plugin never sees the secret values or the tokens obtained with them.
//!
//! Threat: a plugin is not trusted. It chooses the scheme, URLs and scopes, so a hostile plugin
//! could point the token URL at itself; that is why the host only sends secrets to the *declared*
//! token URL, which the operator sees when granting the plugin, never follows redirects there (see
//! [`crate::http`]), and injects tokens only where the runtime's endpoint grants say so.

use std::collections::BTreeMap;

use proofpix_vault::Secret;

use crate::error::{AuthError, FieldKind};

/// How the host authenticates on the plugin's behalf (WIT `auth-scheme`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthScheme {
    /// No credentials.
    None,
    /// A static key or bearer token sent in a header.
    ApiKey(ApiKeyAuth),
    /// OAuth2 client credentials (Microsoft identity platform, Box, Salesforce My Domain).
    OAuth2ClientCredentials(OAuth2Auth),
    /// OAuth2 authorization code with PKCE, through a browser and a callback on the host.
    OAuth2AuthorizationCode(OAuth2Auth),
    /// Resource-owner password (Salesforce username-password flow).
    OAuth2Password(PasswordAuth),
    /// RFC 7523 JWT bearer assertion signed RS256 by the host.
    JwtBearer(JwtBearerAuth),
}

/// WIT `api-key-auth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyAuth {
    /// Secret field holding the key.
    pub secret_field: String,
    /// Header to send, e.g. `authorization` or `x-api-key`.
    pub header: String,
    /// Prefix before the key, e.g. `Bearer `.
    pub prefix: String,
}

/// WIT `oauth2-auth`, with URL templates already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2Auth {
    /// Token endpoint.
    pub token_url: String,
    /// Authorization endpoint (authorization-code flow only).
    pub authorize_url: Option<String>,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Non-secret config field with the client id.
    pub client_id_field: String,
    /// Secret field with the client secret, when the flow uses one.
    pub client_secret_field: Option<String>,
    /// Extra form parameters for the token request (e.g. Box `box_subject_type`).
    pub extra_params: Vec<(String, String)>,
}

/// WIT `password-auth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordAuth {
    /// Client and endpoint.
    pub oauth: OAuth2Auth,
    /// Non-secret config field with the username.
    pub username_field: String,
    /// Secret field with the password.
    pub password_field: String,
    /// Secret field appended to the password (Salesforce security token).
    pub password_suffix_field: Option<String>,
}

/// WIT `jwt-bearer-auth`, with templates resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtBearerAuth {
    /// Token endpoint.
    pub token_url: String,
    /// Non-secret field with the issuer (client id / service-account e-mail). When the private
    /// key field holds a whole Google key file, an empty issuer field falls back to its
    /// `client_email`.
    pub issuer_field: String,
    /// Non-secret field with the subject (user), if the flow has one.
    pub subject_field: Option<String>,
    /// `aud` claim.
    pub audience: String,
    /// Secret field with the PEM private key (or a Google service-account key file).
    pub private_key_field: String,
    /// Scopes (Google puts them in the `scope` claim).
    pub scopes: Vec<String>,
}

/// Everything the host needs to authenticate one integration.
#[derive(Clone, Debug)]
pub struct CredentialInputs {
    /// What the plugin declared.
    pub scheme: AuthScheme,
    /// Non-secret config values by field name.
    pub config: BTreeMap<String, String>,
    /// Secret values by field name.
    pub secrets: BTreeMap<String, Secret>,
}

impl AuthScheme {
    /// The token URL the scheme sends secrets to, for the schemes that have one.
    pub fn token_url(&self) -> Option<&str> {
        match self {
            AuthScheme::OAuth2ClientCredentials(a) | AuthScheme::OAuth2AuthorizationCode(a) => {
                Some(&a.token_url)
            }
            AuthScheme::OAuth2Password(p) => Some(&p.oauth.token_url),
            AuthScheme::JwtBearer(j) => Some(&j.token_url),
            AuthScheme::None | AuthScheme::ApiKey(_) => None,
        }
    }
}

impl CredentialInputs {
    /// A non-empty non-secret config value.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingField`] when the field is absent or empty.
    pub fn config_value(&self, field: &str) -> Result<&str, AuthError> {
        self.config
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| AuthError::MissingField {
                field: field.to_owned(),
                kind: FieldKind::Config,
            })
    }

    /// A non-empty secret value.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingField`] when the field is absent or empty.
    pub fn secret(&self, field: &str) -> Result<&Secret, AuthError> {
        self.secrets
            .get(field)
            .filter(|v| !v.expose().trim().is_empty())
            .ok_or_else(|| AuthError::MissingField {
                field: field.to_owned(),
                kind: FieldKind::Secret,
            })
    }

    /// Every secret value, for redacting them from anything that could be displayed.
    pub(crate) fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secrets.values().map(Secret::expose)
    }
}
