//! Which identity provider a token URL belongs to, and the quirks that follow from it.
//!
//! The plugin contract describes flows in standard OAuth2 terms; real providers deviate in ways a
//! generic client gets wrong (reference `saas-apis.md` §1.1, §2.1, §4.1, §5.1, §6.1, §7.1):
//!
//! | provider | quirk handled |
//! |---|---|
//! | Salesforce | no `expires_in` (lifetime = org session timeout, assumed 2 h); `issued_at` epoch **ms** string; password = password + security token; `instance_url`/`id` are auth context; refresh returns no new refresh token |
//! | Microsoft | client credentials need exactly one `.../.default` scope; errors are identified by AADSTS numbers |
//! | Google | JWT bearer with `scope` claim, `aud` = token URL, `exp` ≤ `iat` + 3600; `access_type=offline` for refresh tokens |
//! | Slack | HTTP 200 with `ok:false` on errors; comma-separated scopes; client credentials in HTTP Basic |
//! | Box | single-use refresh tokens (persist before use) |
//! | Dropbox | `token_access_type=offline` for refresh tokens; refresh returns no new refresh token |
//!
//! Detection looks at the token URL's host first (production hosts), then at the platform name the
//! plugin declares, then at distinctive paths, so emulators on `127.0.0.1` are recognised too.
//! Unknown providers get plain RFC 6749 behaviour ([`Provider::Generic`]).

use std::fmt;

use url::Url;

/// An identity provider with known quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// Salesforce (`login.salesforce.com`, `test.salesforce.com`, My Domain).
    Salesforce,
    /// Microsoft identity platform (`login.microsoftonline.com`).
    Microsoft,
    /// Google (`oauth2.googleapis.com`).
    Google,
    /// Slack (`slack.com/api`).
    Slack,
    /// Box (`api.box.com`).
    Box,
    /// Dropbox (`api.dropboxapi.com`).
    Dropbox,
    /// Any other RFC 6749 provider.
    Generic,
}

impl Provider {
    /// Detects the provider from the token URL and the plugin's declared platform name.
    pub fn detect(platform: &str, token_url: &Url) -> Provider {
        let host = token_url
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let by_host = [
            ("salesforce.com", Provider::Salesforce),
            ("force.com", Provider::Salesforce),
            ("microsoftonline.com", Provider::Microsoft),
            ("googleapis.com", Provider::Google),
            ("accounts.google.com", Provider::Google),
            ("slack.com", Provider::Slack),
            ("box.com", Provider::Box),
            ("dropboxapi.com", Provider::Dropbox),
            ("dropbox.com", Provider::Dropbox),
        ];
        if let Some((_, p)) = by_host
            .iter()
            .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")))
        {
            return *p;
        }
        let platform = platform.to_ascii_lowercase();
        let by_platform = [
            ("salesforce", Provider::Salesforce),
            ("sharepoint", Provider::Microsoft),
            ("onedrive", Provider::Microsoft),
            ("microsoft", Provider::Microsoft),
            ("google", Provider::Google),
            ("slack", Provider::Slack),
            ("dropbox", Provider::Dropbox),
            ("box", Provider::Box),
        ];
        if let Some((_, p)) = by_platform.iter().find(|(name, _)| platform.contains(name)) {
            return *p;
        }
        let path = token_url.path();
        if path.ends_with("/services/oauth2/token") {
            Provider::Salesforce
        } else if path.ends_with("/oauth2/v2.0/token") {
            Provider::Microsoft
        } else if path.ends_with("/api/oauth.v2.access") {
            Provider::Slack
        } else {
            Provider::Generic
        }
    }

    /// Extra query parameters the authorize URL needs for the provider to issue a refresh token.
    pub(crate) fn authorize_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Provider::Google => &[("access_type", "offline"), ("prompt", "consent")],
            Provider::Dropbox => &[("token_access_type", "offline")],
            _ => &[],
        }
    }

    /// How scopes are joined in the authorize URL.
    pub(crate) fn scope_separator(self) -> &'static str {
        match self {
            // Slack's authorize URL takes `scope=chat:write,files:read` (reference §4.1).
            Provider::Slack => ",",
            _ => " ",
        }
    }

    /// Lifetime of a self-signed JWT bearer assertion, seconds.
    pub(crate) fn assertion_lifetime_secs(self) -> i64 {
        match self {
            // Google accepts up to an hour (reference §5.1); use it so a slow clock still works.
            Provider::Google => 3600,
            // Salesforce wants `exp` within about three minutes (reference §1.1).
            Provider::Salesforce => 180,
            _ => 300,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Salesforce => "Salesforce",
            Provider::Microsoft => "Microsoft identity platform",
            Provider::Google => "Google",
            Provider::Slack => "Slack",
            Provider::Box => "Box",
            Provider::Dropbox => "Dropbox",
            Provider::Generic => "The OAuth2 provider",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// Production hosts win; emulators on loopback fall back to platform name, then path.
    #[test]
    fn providers_are_detected_from_host_then_platform_then_path() {
        let cases = [
            (
                "",
                "https://login.salesforce.com/services/oauth2/token",
                Provider::Salesforce,
            ),
            (
                "",
                "https://acme.my.salesforce.com/services/oauth2/token",
                Provider::Salesforce,
            ),
            (
                "",
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                Provider::Microsoft,
            ),
            ("", "https://oauth2.googleapis.com/token", Provider::Google),
            ("", "https://slack.com/api/oauth.v2.access", Provider::Slack),
            ("", "https://api.box.com/oauth2/token", Provider::Box),
            (
                "",
                "https://api.dropboxapi.com/oauth2/token",
                Provider::Dropbox,
            ),
            (
                "SharePoint Online",
                "http://127.0.0.1:1/x/token",
                Provider::Microsoft,
            ),
            ("Box", "http://127.0.0.1:1/oauth2/token", Provider::Box),
            (
                "",
                "http://127.0.0.1:1/services/oauth2/token",
                Provider::Salesforce,
            ),
            (
                "",
                "http://127.0.0.1:1/api/oauth.v2.access",
                Provider::Slack,
            ),
            ("Acme", "https://idp.acme.example/token", Provider::Generic),
            (
                "",
                "https://evilbox.com.attacker.example/token",
                Provider::Generic,
            ),
        ];
        for (platform, u, expected) in cases {
            assert_eq!(
                Provider::detect(platform, &url(u)),
                expected,
                "{platform:?} {u}"
            );
        }
    }
}
