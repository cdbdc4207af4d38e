//! Per-integration authentication flows within contract 0.1.
//!
//! A manifest carries one `auth` scheme, read by a `describe` without config. A platform such as
//! Salesforce offers several flows and operators rightly expect to choose one per integration
//! (JWT bearer in production, username-password in a sandbox). A plugin that declares the
//! reserved choice field [`AUTH_FLOW_FIELD`] opts in: the host calls `describe` again in a session
//! bound to the integration's config and runs *that* manifest's `auth`.
//!
//! Threat: the second `describe` comes from the same untrusted plugin, now with the operator's
//! config in hand. It may change nothing but `auth`: the config fields (names, kinds, secrecy),
//! endpoints and capabilities must equal the first manifest's, and every field the scheme names
//! must be declared with the right secrecy, so a scheme cannot turn a secret into a username or
//! read a field the operator never saw. Where the secrets go is still checked against the
//! operator's grant ([`crate::credentials::check_destinations`]), as for any scheme.

use proofpix_runtime::contract::{AuthScheme, PluginInfo};
use proofpix_runtime::{IntegrationContext, Plugin};

/// The reserved field (the SDK's `AUTH_FLOW_FIELD`).
pub const AUTH_FLOW_FIELD: &str = "auth_flow";

/// Whether the plugin chooses its scheme per integration.
pub fn per_integration(info: &PluginInfo) -> bool {
    info.config.iter().any(|f| {
        f.name == AUTH_FLOW_FIELD
            && !f.secret
            && matches!(f.kind, proofpix_runtime::contract::FieldKind::Choice)
    })
}

/// The scheme the plugin declares for this integration's config.
///
/// # Errors
/// The plugin cannot be described, or its second manifest differs from the first in more than
/// `auth` or names undeclared fields; the message says which.
pub async fn scheme_for(plugin: &Plugin, ctx: &IntegrationContext) -> Result<AuthScheme, String> {
    auth_for(plugin, ctx).await.map(|chosen| chosen.scheme)
}

/// Like [`scheme_for`], with the OAuth dialect the same manifest declares.
///
/// # Errors
/// As [`scheme_for`].
pub async fn auth_for(plugin: &Plugin, ctx: &IntegrationContext) -> Result<ChosenAuth, String> {
    let mut session = plugin.session(ctx).await.map_err(|e| e.to_string())?;
    let info = session.describe().await.map_err(|e| e.to_string())?;
    check_same_but_auth(plugin.info(), &info)?;
    check_fields(&info)?;
    Ok(ChosenAuth {
        scheme: info.auth,
        dialect: info.oauth_dialect,
    })
}

/// The authentication an integration's own `describe` chose: the scheme, and (contract 0.3)
/// how its provider talks, which may depend on the flow (a JWT grant's claims).
#[derive(Clone, Debug)]
pub struct ChosenAuth {
    /// The scheme the host runs.
    pub scheme: AuthScheme,
    /// The OAuth dialect declared with it.
    pub dialect: Option<proofpix_runtime::contract::OauthDialect>,
}

fn check_same_but_auth(first: &PluginInfo, second: &PluginInfo) -> Result<(), String> {
    let fields = |i: &PluginInfo| -> Vec<(String, bool, String)> {
        i.config
            .iter()
            .map(|f| (f.name.clone(), f.secret, format!("{:?}", f.kind)))
            .collect()
    };
    let endpoints = |i: &PluginInfo| -> Vec<(String, String, bool)> {
        i.endpoints
            .iter()
            .map(|e| (e.name.clone(), e.url.clone(), e.credentials))
            .collect()
    };
    let differs = if first.id != second.id || first.version != second.version {
        Some("its identity")
    } else if fields(first) != fields(second) {
        Some("its config fields")
    } else if endpoints(first) != endpoints(second) {
        Some("its endpoints")
    } else if first.capabilities != second.capabilities {
        Some("its capabilities")
    } else {
        None
    };
    match differs {
        Some(what) => Err(format!(
            "plugin {} {} changed {what} when described with the integration's config; only the authentication may depend on `{AUTH_FLOW_FIELD}`",
            first.id, first.version
        )),
        None => Ok(()),
    }
}

fn check_fields(info: &PluginInfo) -> Result<(), String> {
    let field = |name: &str, secret: bool| -> Result<(), String> {
        match info.config.iter().find(|f| f.name == name) {
            Some(f) if f.secret == secret => Ok(()),
            Some(_) => Err(format!(
                "plugin {}: its authentication for this integration uses {name:?} as a {}, but the field is declared {}",
                info.id,
                if secret { "secret" } else { "plain value" },
                if secret { "not secret" } else { "secret" }
            )),
            None => Err(format!(
                "plugin {}: its authentication for this integration names config field {name:?}, which it does not declare",
                info.id
            )),
        }
    };
    match &info.auth {
        AuthScheme::None => Ok(()),
        AuthScheme::ApiKey(k) => field(&k.secret_field, true),
        AuthScheme::Oauth2ClientCredentials(o) | AuthScheme::Oauth2AuthorizationCode(o) => {
            field(&o.client_id_field, false)?;
            o.client_secret_field
                .as_deref()
                .map_or(Ok(()), |s| field(s, true))
        }
        AuthScheme::Oauth2Password(p) => {
            field(&p.oauth.client_id_field, false)?;
            if let Some(s) = &p.oauth.client_secret_field {
                field(s, true)?;
            }
            field(&p.username_field, false)?;
            field(&p.password_field, true)?;
            p.password_suffix_field
                .as_deref()
                .map_or(Ok(()), |s| field(s, true))
        }
        AuthScheme::JwtBearer(j) => {
            field(&j.issuer_field, false)?;
            if let Some(s) = &j.subject_field {
                field(s, false)?;
            }
            field(&j.private_key_field, true)
        }
    }
}
