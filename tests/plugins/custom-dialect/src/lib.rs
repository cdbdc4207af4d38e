//! A connector for "Cinder Files", a provider the host has never heard of: the worked example
//! of contract 0.3's `oauth-dialect` (`wit/README.md`, `sdk/README.md`).
//!
//! Cinder's token endpoint deviates from RFC 6749 in six ways, and this plugin declares each
//! one; the host's auth crate names no vendor and needs no change:
//! 1. client credentials go in the form body, never in HTTP Basic;
//! 2. scopes are joined with commas;
//! 3. every token request carries the tenant (`tenant={config.tenant}`);
//! 4. tokens come without `expires_in` and last 15 minutes;
//! 5. the API base URL for the tenant comes with the token (`links.api`), and the endpoint
//!    the plugin calls is that URL (`{auth.api_base}`);
//! 6. errors are HTTP 200 `{"ok": false, "error": {"code", "message"}}`, and one code means
//!    the API client was revoked, which the operator should hear in those words.

use proofpix_sdk::prelude::*;

struct CinderFiles;

/// Everything Cinder's OAuth2 server does differently, declared.
pub fn oauth_dialect() -> OauthDialect {
    OauthDialect::rfc()
        .client_auth(ClientAuth::Body)
        .scope_separator(",")
        .token_param("tenant", "{config.tenant}")
        .default_lifetime_secs(900)
        .context_field("api_base=/links/api")
        .error_pointers(Some("/error/code"), Some("/error/message"), Some("/ok"))
        .error_rule(
            "E_CLIENT_REVOKED",
            &[],
            None,
            AuthFailure::ClientRejected,
            "the API client was revoked; create a new one under Admin > API clients and paste its id and secret",
        )
        .error_rule(
            "E_RATE_*",
            &[],
            None,
            AuthFailure::RateLimited,
            "Cinder is limiting token requests; this is retried",
        )
}

impl Connector for CinderFiles {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "cinder-files",
            env!("CARGO_PKG_VERSION"),
            "Cinder Files",
            "Cinder Files",
        )
        .description("Test plugin: an OAuth2 provider the host knows nothing about, described by its declared dialect.")
        .capability(Capability::Source)
        .field(ConfigField::url("base_url", "Cinder URL", "Where Cinder's token endpoint lives."))
        .field(ConfigField::text("tenant", "Tenant", "The tenant the token is for."))
        .field(ConfigField::text("client_id", "Client id", "The API client's id."))
        .field(ConfigField::secret("client_secret", "Client secret", "The API client's secret."))
        .auth(AuthScheme::Oauth2ClientCredentials(Oauth2Auth {
            token_url: "{config.base_url}/oauth/token".into(),
            authorize_url: None,
            scopes: vec!["files.read".into(), "files.write".into()],
            client_id_field: "client_id".into(),
            client_secret_field: Some("client_secret".into()),
            extra_params: Vec::new(),
        }))
        .oauth_dialect(oauth_dialect())
        .endpoint(
            Endpoint::new("api", "{auth.api_base}")
                .with_credentials()
                .purpose("the tenant's API, at the address Cinder returns with the token"),
        )
        .build()
    }

    fn check() -> Result<CheckReport, PluginError> {
        let base = config::auth_context("api_base")
            .ok_or_else(|| PluginError::fatal("the token response carried no API address"))?;
        let me: serde_json::Value = http::Request::get(&format!("{base}/me"))
            .send()?
            .error_for_status()?
            .json()?;
        Ok(CheckReport {
            account: me["name"].as_str().map(String::from),
            details: vec![format!("API at {base}")],
        })
    }

    fn discover(_cursor: Option<String>) -> Result<Page, PluginError> {
        Ok(Page {
            files: Vec::new(),
            removed: Vec::new(),
            more: false,
            cursor: None,
        })
    }
}

export_connector!(CinderFiles);
