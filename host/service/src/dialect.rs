//! The OAuth dialect an integration's credentials speak.
//!
//! A plugin of contract 0.3 or later declares its provider's dialect in `plugin-info`
//! (`oauth-dialect`); it is converted here, field by field, into the auth crate's [`Dialect`],
//! under the plugin's platform name, and checked before any token request. A 0.3 plugin that
//! declares none speaks plain RFC 6749. Plugins built against 0.1 or 0.2 could not declare one:
//! they get the dialect the host applied before 0.3 ([`crate::legacy_dialect`]).

use proofpix_auth::{
    AuthError, AuthScheme, ClientAuth, ContextField, Dialect, ErrorDialect, ErrorRule, Failure,
    GrantKind, JwtDialect, RefreshRotation,
};
use proofpix_runtime::Plugin;
use proofpix_runtime::contract::{
    AuthFailure as WitFailure, ClientAuth as WitClientAuth, GrantKind as WitGrant, OauthDialect,
    RefreshRotation as WitRotation,
};

/// The dialect for `plugin`'s credentials under `scheme`, from `declared` (the manifest that
/// chose the scheme: the plugin's own, or the integration's for a per-integration flow).
///
/// # Errors
///
/// [`AuthError::InvalidConfig`] when a declared dialect cannot work (a context field that is not
/// `NAME` or `NAME=/pointer`, an empty separator, a template that reads a secret, ...).
pub fn for_plugin(
    plugin: &Plugin,
    declared: Option<&OauthDialect>,
    scheme: &AuthScheme,
) -> Result<Dialect, AuthError> {
    let info = plugin.info();
    if !declares_dialects(plugin.contract_version()) {
        return Ok(crate::legacy_dialect::for_legacy_plugin(
            &info.platform,
            scheme.token_url(),
        ));
    }
    let mut dialect = match declared {
        Some(declared) => from_contract(declared)?,
        None => Dialect::default(),
    };
    if !info.platform.trim().is_empty() {
        dialect.provider_name = Dialect::named(&info.platform).provider_name;
    }
    dialect.validate()?;
    Ok(dialect)
}

/// Whether a contract version (`major.minor.patch`) can declare a dialect: 0.3 and later.
fn declares_dialects(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 3)
}

/// The contract's `oauth-dialect` as the auth crate's.
pub(crate) fn from_contract(w: &OauthDialect) -> Result<Dialect, AuthError> {
    let jwt = w
        .jwt
        .as_ref()
        .map_or_else(JwtDialect::default, |j| JwtDialect {
            key_id_field: j.key_id_field.clone(),
            claims: j.claims.clone(),
            lifetime_secs: j.lifetime_secs,
            client_in_body: j.client_in_body,
            client_id_field: j.client_id_field.clone(),
            client_secret_field: j.client_secret_field.clone(),
            scope_claim: j.scope_claim,
        });
    let context_fields = w
        .context_fields
        .iter()
        .map(|entry| ContextField::parse(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let rules = w
        .errors
        .rules
        .iter()
        .map(|r| ErrorRule {
            code: r.code.clone(),
            grants: r.grants.iter().map(|g| grant(*g)).collect(),
            description_contains: r.description_contains.clone(),
            kind: failure(r.kind),
            hint: r.hint.clone(),
        })
        .collect();
    Ok(Dialect {
        provider_name: Dialect::default().provider_name,
        client_auth: match w.client_auth {
            WitClientAuth::Basic => ClientAuth::Basic,
            WitClientAuth::Body => ClientAuth::Body,
        },
        scope_separator: w.scope_separator.clone(),
        authorize_params: w.authorize_params.clone(),
        token_params: w.token_params.clone(),
        refresh_rotation: match w.refresh_rotation {
            WitRotation::Reusable => RefreshRotation::Reusable,
            WitRotation::SingleUse => RefreshRotation::SingleUse,
        },
        default_lifetime_secs: w.default_lifetime_secs,
        context_fields,
        errors: ErrorDialect {
            code_pointer: w.errors.code_pointer.clone(),
            description_pointer: w.errors.description_pointer.clone(),
            ok_pointer: w.errors.ok_pointer.clone(),
            rules,
        },
        jwt,
    })
}

fn grant(g: WitGrant) -> GrantKind {
    match g {
        WitGrant::ClientCredentials => GrantKind::ClientCredentials,
        WitGrant::AuthorizationCode => GrantKind::AuthorizationCode,
        WitGrant::Refresh => GrantKind::Refresh,
        WitGrant::Password => GrantKind::Password,
        WitGrant::JwtBearer => GrantKind::JwtBearer,
    }
}

fn failure(f: WitFailure) -> Failure {
    match f {
        WitFailure::ClientRejected => Failure::ClientRejected,
        WitFailure::UserRejected => Failure::UserRejected,
        WitFailure::AssertionRejected => Failure::AssertionRejected,
        WitFailure::ConsentMissing => Failure::ConsentMissing,
        WitFailure::ScopeRejected => Failure::ScopeRejected,
        WitFailure::ReauthorizationRequired => Failure::ReauthorizationRequired,
        WitFailure::Rejected => Failure::Rejected,
        WitFailure::RateLimited => Failure::RateLimited,
        WitFailure::Transient => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpix_runtime::contract::{AuthErrorDialect, AuthErrorRule, JwtDialect as WitJwt};

    fn declared() -> OauthDialect {
        OauthDialect {
            client_auth: WitClientAuth::Body,
            scope_separator: ",".into(),
            authorize_params: vec![("access".into(), "offline".into())],
            token_params: vec![("tenant".into(), "{config.tenant}".into())],
            refresh_rotation: WitRotation::SingleUse,
            default_lifetime_secs: Some(900),
            context_fields: vec!["site_url".into(), "org_id=/org/id".into()],
            errors: AuthErrorDialect {
                code_pointer: Some("/error/code".into()),
                description_pointer: Some("/error/message".into()),
                ok_pointer: Some("/ok".into()),
                rules: vec![AuthErrorRule {
                    code: "E_KEY*".into(),
                    grants: vec![WitGrant::ClientCredentials],
                    description_contains: Some("revoked".into()),
                    kind: WitFailure::ClientRejected,
                    hint: "create a new key".into(),
                }],
            },
            jwt: Some(WitJwt {
                key_id_field: Some("key_id".into()),
                claims: vec![("tenant".into(), "{config.tenant}".into())],
                lifetime_secs: 60,
                client_in_body: true,
                client_id_field: Some("client_id".into()),
                client_secret_field: Some("client_secret".into()),
                scope_claim: true,
            }),
        }
    }

    #[test]
    fn a_declared_dialect_converts_field_by_field() {
        let d = from_contract(&declared()).unwrap();
        assert_eq!(d.client_auth, ClientAuth::Body);
        assert_eq!(d.scope_separator, ",");
        assert_eq!(
            d.authorize_params,
            [("access".to_owned(), "offline".to_owned())]
        );
        assert_eq!(d.token_params[0].1, "{config.tenant}");
        assert_eq!(d.refresh_rotation, RefreshRotation::SingleUse);
        assert_eq!(d.default_lifetime_secs, Some(900));
        assert_eq!(d.context_fields.len(), 2);
        assert_eq!(d.context_fields[1].pointer, "/org/id");
        assert_eq!(d.errors.code_pointer.as_deref(), Some("/error/code"));
        assert_eq!(d.errors.ok_pointer.as_deref(), Some("/ok"));
        let rule = &d.errors.rules[0];
        assert_eq!(rule.kind, Failure::ClientRejected);
        assert_eq!(rule.grants, [GrantKind::ClientCredentials]);
        assert_eq!(d.jwt.key_id_field.as_deref(), Some("key_id"));
        assert_eq!(d.jwt.lifetime_secs, 60);
        assert!(d.jwt.client_in_body && d.jwt.scope_claim);
        d.validate().unwrap();
    }

    #[test]
    fn a_declared_dialect_that_cannot_work_is_refused_with_what_to_fix() {
        let mut w = declared();
        w.context_fields = vec!["bad name".into()];
        let err = from_contract(&w).unwrap_err();
        assert!(err.to_string().contains("NAME=/json/pointer"), "{err}");
        let mut w = declared();
        w.token_params = vec![("x".into(), "{secret.client_secret}".into())];
        let err = from_contract(&w).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn only_contract_0_3_and_later_declare_dialects() {
        assert!(!declares_dialects("0.1.0"));
        assert!(!declares_dialects("0.2.7"));
        assert!(declares_dialects("0.3.0"));
        assert!(declares_dialects("0.10.0"));
        assert!(declares_dialects("1.0.0"));
        assert!(!declares_dialects("garbage"));
    }
}
