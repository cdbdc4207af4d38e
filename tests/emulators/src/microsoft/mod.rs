//! Microsoft identity platform (v2.0 endpoint), client-credentials grant for Graph/SharePoint:
//! `POST /{tenant}/oauth2/v2.0/token` (reference §2.1, §11), plus `GET /v1.0/organization` as the
//! smallest app-only Graph call to prove a token works. [`start_with_graph`] adds Microsoft Graph
//! for SharePoint Online and OneDrive on the same server and a second server for the
//! pre-authenticated download host (see [`graph`]).
//!
//! What this emulator insists on, because real tenants do:
//! - `scope` must name **exactly one** resource with `/.default`; anything else is
//!   `invalid_scope` / AADSTS70011;
//! - errors carry the AADSTS number three times: in `error_description` (`AADSTSnnnn: ...` followed
//!   by `\r\nTrace ID`, `Correlation ID`, `Timestamp` lines), in `error_codes` and in `error_uri`;
//! - the tenant segment must be the tenant's GUID or its `*.onmicrosoft.com` domain.
//!
//! The AADSTS numbers other than 70011 and the exact `error` code that goes with each are \[mem\] in
//! the reference: every one of them has a situation key in [`errors`] so a test can override it.
//! Certificate (`client_assertion`) credentials are not emulated: the plugin contract's
//! client-credentials scheme has only a client secret.

pub mod graph;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::common::tokens::random_token;
use crate::common::{self, Emulator, ErrorReply, Harness, TokenRequest, Tokens};

/// Token path for a tenant.
pub fn token_path(tenant: &str) -> String {
    format!("/{tenant}/oauth2/v2.0/token")
}

/// Situation keys (see [`ErrorCatalog`](crate::ErrorCatalog)); all defaults are \[mem\] in the
/// reference except the AADSTS70011 shape.
pub mod errors {
    /// Unknown client id. Default: 401 `invalid_client` / AADSTS700016.
    pub const UNKNOWN_CLIENT: &str = "microsoft.unknown_client";
    /// Wrong client secret. Default: 401 `invalid_client` / AADSTS7000215.
    pub const BAD_SECRET: &str = "microsoft.bad_secret";
    /// No client secret. Default: 400 `invalid_client` / AADSTS7000218.
    pub const MISSING_SECRET: &str = "microsoft.missing_secret";
    /// Unknown tenant. Default: 400 `invalid_request` / AADSTS90002.
    pub const UNKNOWN_TENANT: &str = "microsoft.unknown_tenant";
    /// `/.default` of a resource the tenant does not know. Default: 400 `invalid_resource` / AADSTS500011.
    pub const UNKNOWN_RESOURCE: &str = "microsoft.unknown_resource";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// Tenant id.
    pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    /// Tenant domain.
    pub const TENANT_DOMAIN: &str = "proofpix.onmicrosoft.com";
    /// Application (client) id.
    pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
    /// Client secret value.
    pub const CLIENT_SECRET: &str = "ms-Q1w8Q~secretValue.Vr4pZ";
    /// The one scope client credentials accept for Graph.
    pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
}

/// An app registration.
#[derive(Clone, Debug)]
pub struct MicrosoftApp {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret value.
    pub client_secret: String,
}

/// How the emulated tenant behaves.
#[derive(Clone, Debug)]
pub struct MicrosoftConfig {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Tenant domain.
    pub tenant_domain: String,
    /// App registrations in the tenant.
    pub apps: Vec<MicrosoftApp>,
    /// Resources whose `/.default` scope may be requested.
    pub resources: Vec<String>,
    /// `expires_in` of issued tokens, seconds. Default 3599.
    pub token_lifetime_secs: i64,
}

impl Default for MicrosoftConfig {
    fn default() -> Self {
        MicrosoftConfig {
            tenant_id: fixtures::TENANT_ID.to_owned(),
            tenant_domain: fixtures::TENANT_DOMAIN.to_owned(),
            apps: vec![MicrosoftApp {
                client_id: fixtures::CLIENT_ID.to_owned(),
                client_secret: fixtures::CLIENT_SECRET.to_owned(),
            }],
            resources: vec!["https://graph.microsoft.com".to_owned()],
            token_lifetime_secs: 3599,
        }
    }
}

#[derive(Clone)]
struct MsState {
    harness: Harness,
    tokens: Tokens,
    config: Arc<MicrosoftConfig>,
}

fn idp_routes(state: MsState) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/organization", get(organization))
        .with_state(state)
}

/// Starts a Microsoft identity platform emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: MicrosoftConfig, harness: Harness) -> std::io::Result<Emulator> {
    common::launch("microsoft", harness, move |_base, harness, tokens| {
        idp_routes(MsState {
            harness,
            tokens,
            config: Arc::new(config),
        })
    })
    .await
}

/// Starts the identity platform and Microsoft Graph (SharePoint Online / OneDrive) on one
/// loopback server, and the pre-authenticated download host on a second one.
///
/// ```
/// use proofpix_emulators::Harness;
/// use proofpix_emulators::microsoft::{self, graph};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let ms = microsoft::start_with_graph(Default::default(), graph::GraphConfig::default(), Harness::default()).await?;
/// let site = ms.graph().site_id(graph::seed::FIELDWORK_SITE).unwrap();
/// assert!(site.starts_with("proofpix.sharepoint.com,"));
/// assert_ne!(ms.graph_url(), ms.download_url());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If a loopback listener cannot be bound.
pub async fn start_with_graph(
    config: MicrosoftConfig,
    graph_config: graph::GraphConfig,
    harness: Harness,
) -> std::io::Result<graph::GraphEmulator> {
    use crate::common::harness::record_and_inject;
    use axum::middleware::from_fn_with_state;

    let api = crate::common::server::Bound::loopback().await?;
    let download = crate::common::server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let graph = graph::Graph::new(
        graph_config,
        api.base_url.clone(),
        download.base_url.clone(),
        harness.clone(),
        tokens.clone(),
    );
    let api_router = idp_routes(MsState {
        harness: harness.clone(),
        tokens: tokens.clone(),
        config: Arc::new(config),
    })
    .merge(graph::api_routes(graph.clone()))
    .layer(from_fn_with_state(
        (graph.clone(), graph::Server::Graph),
        graph::observe,
    ))
    .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let download_router = graph::download_routes(graph.clone())
        .layer(from_fn_with_state(
            (graph.clone(), graph::Server::Download),
            graph::observe,
        ))
        .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let server = api.serve(api_router);
    let download_server = download.serve(download_router);
    Ok(graph::GraphEmulator::new(
        Emulator::new("microsoft", harness, tokens, server),
        download_server,
        graph,
    ))
}

fn pseudo_uuid() -> String {
    let hex = random_token("", 32).to_ascii_lowercase();
    let hex: String = hex
        .chars()
        .map(|c| if c.is_ascii_hexdigit() { c } else { 'a' })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl MsState {
    /// An AADSTS error body in the documented shape (reference §2.1).
    fn aad(
        &self,
        situation: Option<&str>,
        status: u16,
        error: &str,
        code: u32,
        message: &str,
    ) -> Response {
        let now = self.harness.clock.now();
        let timestamp = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let trace = pseudo_uuid();
        let correlation = pseudo_uuid();
        let default = ErrorReply::json(
            status,
            json!({
                "error": error,
                "error_description": format!(
                    "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
                ),
                "error_codes": [code],
                "timestamp": timestamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
            }),
        );
        match situation {
            Some(key) => self.harness.errors.reply(key, default),
            None => default,
        }
        .into_response()
    }
}

async fn token(
    State(s): State<MsState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    let cfg = &s.config;
    if tenant != cfg.tenant_id && !tenant.eq_ignore_ascii_case(&cfg.tenant_domain) {
        return s.aad(
            Some(errors::UNKNOWN_TENANT),
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let missing = |name: &str| {
        s.aad(
            None,
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let Some(grant_type) = req.get("grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return s.aad(
            None,
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = req.client_id() else {
        return missing("client_id");
    };
    let Some(app) = cfg.apps.iter().find(|a| a.client_id == client_id) else {
        return s.aad(
            Some(errors::UNKNOWN_CLIENT),
            401,
            "invalid_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                cfg.tenant_domain
            ),
        );
    };
    match req.client_secret() {
        None => {
            return s.aad(
                Some(errors::MISSING_SECRET),
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        Some(secret) if secret != app.client_secret => {
            return s.aad(
                Some(errors::BAD_SECRET),
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
        Some(_) => {}
    }
    let Some(scope) = req.get("scope") else {
        return missing("scope");
    };
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let [single] = scopes.as_slice() else {
        return invalid_scope(&s, scope);
    };
    let Some(resource) = single.strip_suffix("/.default") else {
        return invalid_scope(&s, scope);
    };
    if !cfg
        .resources
        .iter()
        .any(|r| r.trim_end_matches('/') == resource)
    {
        return s.aad(
            Some(errors::UNKNOWN_RESOURCE),
            400,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                cfg.tenant_domain
            ),
        );
    }
    let now = s.harness.clock.now();
    let access = s.tokens.issue_access(
        random_token("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.emu", 180),
        &app.client_id,
        &cfg.tenant_id,
        single,
        Some(now + time::Duration::seconds(cfg.token_lifetime_secs)),
    );
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": cfg.token_lifetime_secs,
        "ext_expires_in": cfg.token_lifetime_secs,
        "access_token": access,
    }))
    .into_response()
}

fn invalid_scope(s: &MsState, scope: &str) -> Response {
    s.aad(
        None,
        400,
        "invalid_scope",
        70011,
        &format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
    )
}

/// `GET /v1.0/organization`; 401 `InvalidAuthenticationToken` with the documented
/// `WWW-Authenticate` header when the token is expired, revoked or unknown (reference §2.5).
async fn organization(State(s): State<MsState>, headers: HeaderMap) -> Response {
    let token = common::bearer(&headers, false).unwrap_or_default();
    match s.tokens.check_access(&token, s.harness.clock.now()) {
        Ok(_) => axum::Json(json!({"value": [{"id": s.config.tenant_id, "displayName": "ProofPix Emulated Tenant"}]}))
            .into_response(),
        Err(problem) => {
            let message = match problem {
                common::AccessProblem::Expired => "Access token has expired or is not yet valid.",
                _ => "Access token validation failure.",
            };
            ErrorReply::json(
                401,
                json!({"error": {"code": "InvalidAuthenticationToken", "message": message,
                    "innerError": {"date": s.harness.clock.now().unix_timestamp().to_string(),
                    "request-id": pseudo_uuid(), "client-request-id": pseudo_uuid()}}}),
            )
            .with_header(
                "www-authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            )
            .into_response()
        }
    }
}
