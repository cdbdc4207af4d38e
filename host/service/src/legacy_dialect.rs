//! OAuth dialects for plugins built against contract 0.1 or 0.2, which cannot declare one.
//!
//! Contract 0.3 lets a plugin declare how its provider's OAuth2 server deviates from RFC 6749
//! (`oauth-dialect`), and the auth crate names no vendor. Plugins built before 0.3 relied on the
//! host knowing six providers; so that they keep working unchanged, this module recognises those
//! six from the token URL's host (then the declared platform name, then a distinctive token
//! path, so emulators on loopback are recognised too) and returns the dialect the host used to
//! apply. Any other provider gets plain RFC 6749 under the plugin's platform name.
//!
//! This is the one place in the host that names a vendor, and it exists only for old plugins:
//! a 0.3 plugin's own declaration is used as is, and this table goes when 0.2 support ends.
//! Each entry cites the reference section (`saas-apis.md`) it follows.

use proofpix_auth::{
    ClientAuth, ContextField, Dialect, ErrorRule, Failure, GrantKind, RefreshRotation,
};
use url::Url;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Salesforce,
    Microsoft,
    Google,
    Slack,
    Box,
    Dropbox,
}

fn detect(platform: &str, token_url: &Url) -> Option<Known> {
    let host = token_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let by_host = [
        ("salesforce.com", Known::Salesforce),
        ("force.com", Known::Salesforce),
        ("microsoftonline.com", Known::Microsoft),
        ("googleapis.com", Known::Google),
        ("accounts.google.com", Known::Google),
        ("slack.com", Known::Slack),
        ("box.com", Known::Box),
        ("dropboxapi.com", Known::Dropbox),
        ("dropbox.com", Known::Dropbox),
    ];
    if let Some((_, known)) = by_host
        .iter()
        .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")))
    {
        return Some(*known);
    }
    let platform = platform.to_ascii_lowercase();
    let by_platform = [
        ("salesforce", Known::Salesforce),
        ("sharepoint", Known::Microsoft),
        ("onedrive", Known::Microsoft),
        ("microsoft", Known::Microsoft),
        ("google", Known::Google),
        ("slack", Known::Slack),
        ("dropbox", Known::Dropbox),
        ("box", Known::Box),
    ];
    if let Some((_, known)) = by_platform.iter().find(|(name, _)| platform.contains(name)) {
        return Some(*known);
    }
    let path = token_url.path();
    if path.ends_with("/services/oauth2/token") {
        Some(Known::Salesforce)
    } else if path.ends_with("/oauth2/v2.0/token") {
        Some(Known::Microsoft)
    } else if path.ends_with("/api/oauth.v2.access") {
        Some(Known::Slack)
    } else {
        None
    }
}

/// The dialect for a plugin of contract 0.1 or 0.2 with this platform name and token URL.
pub fn for_legacy_plugin(platform: &str, token_url: Option<&str>) -> Dialect {
    let known = token_url
        .and_then(|u| Url::parse(u).ok())
        .and_then(|u| detect(platform, &u));
    match known {
        Some(Known::Salesforce) => salesforce(),
        Some(Known::Microsoft) => microsoft(),
        Some(Known::Google) => google(),
        Some(Known::Slack) => slack(),
        Some(Known::Box) => box_com(),
        Some(Known::Dropbox) => dropbox(),
        None => {
            let mut d = if platform.trim().is_empty() {
                Dialect::default()
            } else {
                Dialect::named(platform)
            };
            // Before 0.3 every token response's `instance_url`, `id`, `account_id` and `uid`
            // were kept as auth context.
            d.context_fields = fields(&["instance_url", "id", "account_id", "uid"]);
            d
        }
    }
}

fn fields(names: &[&str]) -> Vec<ContextField> {
    names
        .iter()
        .filter_map(|n| ContextField::parse(n).ok())
        .collect()
}

/// What every named provider shares: credentials in the body (Box requires it).
fn named(name: &str) -> Dialect {
    Dialect {
        client_auth: ClientAuth::Body,
        ..Dialect::named(name)
    }
}

fn rule(code: &str, kind: Failure, hint: &str) -> ErrorRule {
    ErrorRule::new(code, kind, hint)
}

/// Salesforce (§1.1): no `expires_in` (the org's session timeout, 2 h by default), `instance_url`
/// and the identity URL as context, `exp` within about three minutes, errors told apart by
/// description.
pub fn salesforce() -> Dialect {
    use Failure as F;
    use GrantKind as G;
    let mut d = named("Salesforce");
    d.default_lifetime_secs = Some(7200);
    d.context_fields = fields(&["instance_url", "id", "issued_at"]);
    for (name, segment) in [("organization_id", 2), ("user_id", 1)] {
        d.context_fields.push(ContextField {
            name: name.to_owned(),
            pointer: "/id".to_owned(),
            segment_from_end: Some(segment),
        });
    }
    d.jwt.lifetime_secs = 180;
    d.jwt.scope_claim = true;
    d.errors.rules = vec![
        rule("invalid_client_id", F::ClientRejected, "the consumer key is not known; copy the Consumer Key from the connected app, and check login vs test host (production vs sandbox)"),
        rule("invalid_client", F::ClientRejected, "the consumer secret is wrong; copy the Consumer Secret from the connected app again"),
        rule("invalid_grant", F::ConsentMissing, "the user is not pre-authorized for the connected app; set 'Admin approved users are pre-authorized' and add the user's profile or permission set to the app").when_description("hasn't approved"),
        rule("invalid_grant", F::ConsentMissing, "the user is not pre-authorized for the connected app; set 'Admin approved users are pre-authorized' and add the user's profile or permission set to the app").when_description("not approved"),
        rule("invalid_grant", F::UserRejected, "the Salesforce user is inactive; activate it or configure another user").when_description("inactive user"),
        rule("invalid_grant", F::UserRejected, "wrong username, password or security token; Salesforce wants the password followed by the user's current security token (reset it under Settings > Reset My Security Token), and the org must allow the username-password flow").when_description("authentication failure").grant(G::Password),
        rule("invalid_grant", F::UserRejected, "the user's login was refused; check the username and that the user may log in").when_description("authentication failure"),
        rule("invalid_grant", F::ReauthorizationRequired, "the refresh token expired or was revoked; authorize the integration again").when_description("expired access/refresh token"),
        rule("invalid_grant", F::AssertionRejected, "check that the certificate uploaded to the connected app matches the private key, that the audience is https://login.salesforce.com (https://test.salesforce.com for sandboxes), that the username exists, and that the daemon's clock is correct").grant(G::JwtBearer),
        rule("invalid_grant", F::Rejected, "the authorization code was not accepted (expired, already used, or a different redirect URL); start the authorization again").grant(G::AuthorizationCode),
        rule("unsupported_grant_type", F::Rejected, "the org does not allow this OAuth flow for the connected app; enable it in the app's OAuth policies"),
    ];
    d
}

/// Microsoft identity platform (§2.1): errors identified by their AADSTS number, which every
/// description starts with.
pub fn microsoft() -> Dialect {
    use Failure as F;
    let mut d = named("Microsoft identity platform");
    let aadsts = |n: u64, kind: Failure, hint: &str| {
        rule("*", kind, hint).when_description(&format!("AADSTS{n}:"))
    };
    d.errors.rules = vec![
        aadsts(
            7_000_215,
            F::ClientRejected,
            "the client secret is wrong; paste the secret's Value (not its Secret ID) from the app registration's Certificates & secrets",
        ),
        aadsts(
            7_000_222,
            F::ClientRejected,
            "the client secret has expired; create a new one in the app registration",
        ),
        aadsts(
            7_000_218,
            F::ClientRejected,
            "no client secret was sent; set the integration's client secret",
        ),
        aadsts(
            700_016,
            F::ClientRejected,
            "no app with this client id exists in the tenant; check the Application (client) ID and the tenant, and that an administrator consented to the app there",
        ),
        aadsts(
            70_011,
            F::ScopeRejected,
            "client credentials need exactly one scope of the form https://graph.microsoft.com/.default",
        ),
        aadsts(
            500_011,
            F::ScopeRejected,
            "the scope names a resource this tenant does not know; check the scope URL",
        ),
        aadsts(
            90_002,
            F::Rejected,
            "the tenant does not exist; check the tenant id or domain in the integration's settings",
        ),
    ];
    d
}

/// Google (§5.1): offline access on the authorize URL, scopes in the assertion's claim, an hour
/// of assertion lifetime.
pub fn google() -> Dialect {
    use Failure as F;
    use GrantKind as G;
    let mut d = named("Google");
    d.authorize_params = vec![
        ("access_type".into(), "offline".into()),
        ("prompt".into(), "consent".into()),
    ];
    d.jwt.lifetime_secs = 3600;
    d.jwt.scope_claim = true;
    d.errors.rules = vec![
        rule("invalid_grant", F::AssertionRejected, "the signature does not match the service account's keys; the key may have been deleted or rotated, so create a new key file").when_description("Invalid JWT Signature"),
        rule("invalid_grant", F::AssertionRejected, "the assertion's iat/exp times were refused; the daemon's clock is probably wrong, sync it (NTP)").when_description("short-lived"),
        rule("invalid_grant", F::AssertionRejected, "the assertion's iat/exp times were refused; the daemon's clock is probably wrong, sync it (NTP)").when_description("iat"),
        rule("invalid_grant", F::ClientRejected, "the service account does not exist (deleted?); check its e-mail or create a new key").when_description("account not found"),
        rule("invalid_grant", F::ReauthorizationRequired, "the refresh token expired or was revoked (for example the user removed the app's access); authorize the integration again").grant(G::Refresh),
        rule("invalid_grant", F::ReauthorizationRequired, "the refresh token expired or was revoked (for example the user removed the app's access); authorize the integration again").when_description("expired or revoked"),
        rule("unauthorized_client", F::ConsentMissing, "domain-wide delegation is not granted for this service account and these scopes; add its client id and the scopes in the Google Admin console (Security > API controls > Domain-wide delegation)"),
    ];
    d
}

/// Slack (§4.1): `ok:false` inside an HTTP 200, comma-separated scopes, client credentials in
/// HTTP Basic, workspace facts next to the token.
pub fn slack() -> Dialect {
    use Failure as F;
    let mut d = Dialect::named("Slack");
    d.client_auth = ClientAuth::Basic;
    d.scope_separator = ",".into();
    d.errors.ok_pointer = Some("/ok".into());
    d.context_fields = fields(&[
        "team_id=/team/id",
        "team_name=/team/name",
        "enterprise_id=/enterprise/id",
        "bot_user_id",
        "app_id",
        "authed_user_id=/authed_user/id",
    ]);
    d.errors.rules = vec![
        rule(
            "invalid_client_id",
            F::ClientRejected,
            "the client id is not known; copy it from the Slack app's Basic Information page",
        ),
        rule(
            "bad_client_secret",
            F::ClientRejected,
            "the client secret is wrong; copy it again from the Slack app's Basic Information page",
        ),
        rule(
            "invalid_code",
            F::Rejected,
            "the authorization code was not accepted (expired or already used); start the authorization again",
        ),
        rule(
            "bad_redirect_uri",
            F::Rejected,
            "the callback URL does not match the one the authorization started with or is not registered; add it under OAuth & Permissions > Redirect URLs",
        ),
        rule(
            "invalid_refresh_token",
            F::ReauthorizationRequired,
            "the refresh token was revoked or already used (Slack rotates it on every refresh); authorize the integration again",
        ),
        rule(
            "invalid_grant_type",
            F::Rejected,
            "Slack does not accept this grant; token rotation may be off for the app",
        ),
    ];
    d
}

/// Box (§6.1): single-use refresh tokens; codes whose meaning depends on the grant.
pub fn box_com() -> Dialect {
    use Failure as F;
    use GrantKind as G;
    let mut d = named("Box");
    d.refresh_rotation = RefreshRotation::SingleUse;
    d.errors.rules = vec![
        rule("invalid_grant", F::ReauthorizationRequired, "Box refresh tokens work once and for 60 days; this one was already used or has expired, so authorize the integration again").grant(G::Refresh),
        rule("invalid_grant", F::ClientRejected, "the client id or secret is wrong, or the app is not authorized in the Box Admin Console").grant(G::ClientCredentials),
        rule("invalid_grant", F::Rejected, "the authorization code was not accepted (Box codes expire after 30 seconds and work once); start the authorization again").grant(G::AuthorizationCode),
        rule("unauthorized_client", F::ConsentMissing, "the app may not act for this box_subject_type; enable App + Enterprise Access (or 'Generate user access tokens') and have a Box admin re-authorize the app"),
    ];
    d
}

/// Dropbox (§7.1): offline access on the authorize URL; account ids as context.
pub fn dropbox() -> Dialect {
    use Failure as F;
    use GrantKind as G;
    let mut d = named("Dropbox");
    d.authorize_params = vec![("token_access_type".into(), "offline".into())];
    d.context_fields = fields(&["account_id", "uid"]);
    d.errors.rules = vec![
        rule("invalid_grant", F::ReauthorizationRequired, "the refresh token was revoked (for example the user disconnected the app); authorize the integration again").grant(G::Refresh),
        rule("invalid_grant", F::Rejected, "the authorization code was not accepted (expired or already used); start the authorization again").grant(G::AuthorizationCode),
    ];
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Production hosts win; emulators on loopback fall back to platform name, then path; a
    /// look-alike host is not a vendor.
    #[test]
    fn old_plugins_get_the_dialect_of_the_provider_they_talk_to() {
        let cases = [
            (
                "",
                "https://login.salesforce.com/services/oauth2/token",
                "Salesforce",
            ),
            (
                "",
                "https://acme.my.salesforce.com/services/oauth2/token",
                "Salesforce",
            ),
            (
                "",
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                "Microsoft identity platform",
            ),
            ("", "https://oauth2.googleapis.com/token", "Google"),
            ("", "https://slack.com/api/oauth.v2.access", "Slack"),
            ("", "https://api.box.com/oauth2/token", "Box"),
            ("", "https://api.dropboxapi.com/oauth2/token", "Dropbox"),
            (
                "SharePoint Online",
                "http://127.0.0.1:1/x/token",
                "Microsoft identity platform",
            ),
            ("Box", "http://127.0.0.1:1/oauth2/token", "Box"),
            ("", "http://127.0.0.1:1/services/oauth2/token", "Salesforce"),
            ("", "http://127.0.0.1:1/api/oauth.v2.access", "Slack"),
            ("Acme", "https://idp.acme.example/token", "Acme"),
            (
                "",
                "https://evilbox.com.attacker.example/token",
                "The OAuth2 provider",
            ),
        ];
        for (platform, url, expected) in cases {
            assert_eq!(
                for_legacy_plugin(platform, Some(url)).provider_name,
                expected,
                "{platform:?} {url}"
            );
        }
    }

    #[test]
    fn every_table_entry_is_a_valid_dialect() {
        for d in [
            salesforce(),
            microsoft(),
            google(),
            slack(),
            box_com(),
            dropbox(),
        ] {
            d.validate()
                .unwrap_or_else(|e| panic!("{}: {e}", d.provider_name));
        }
    }

    #[test]
    fn unknown_providers_keep_rfc_behaviour() {
        let d = for_legacy_plugin("Acme", Some("https://idp.acme.example/token"));
        assert_eq!(d.client_auth, ClientAuth::Basic);
        assert_eq!(d.scope_separator, " ");
        assert!(d.errors.rules.is_empty());
    }
}
