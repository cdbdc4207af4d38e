//! Slack: OAuth v2 (`GET /oauth/v2/authorize`, `POST /api/oauth.v2.access` with authorization code,
//! optional PKCE, and refresh when token rotation is on), `POST /api/auth.test` (reference §4.1,
//! §11), and, with [`start_workspace`], the Web API over a seeded workspace ([`web`]), a second
//! loopback server standing for the private-file host (`files.slack.com`), and a signer/sender of
//! Events API requests ([`events`]).
//!
//! Slack answers **HTTP 200 with `{"ok":false,"error":"..."}`** for every OAuth failure
//! (`invalid_code`, `bad_redirect_uri`, `invalid_client_id`, `bad_client_secret`,
//! `invalid_grant_type`, `invalid_refresh_token`), so a client that only looks at the status
//! treats a failure as success; this emulator does exactly that to catch such clients. Scopes in
//! the authorize URL are comma-separated. With rotation on, access tokens (`xoxe.xoxb-1-…`) expire
//! after 12 h and every refresh revokes the refresh token it used.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub mod events;
pub mod web;

use crate::common::harness::record_and_inject;
use crate::common::tokens::random_token;
use crate::common::{
    self, AccessProblem, AuthorizeStep, Consent, Emulator, ErrorReply, Harness, TokenRequest,
    Tokens, reply,
};

/// Token exchange path.
pub const ACCESS_PATH: &str = "/api/oauth.v2.access";
/// Authorize path (on `slack.com`).
pub const AUTHORIZE_PATH: &str = "/oauth/v2/authorize";
/// `auth.test` path.
pub const AUTH_TEST_PATH: &str = "/api/auth.test";

/// Situation keys for unverified replies.
pub mod errors {
    /// PKCE verifier missing or wrong. Default (unverified): `{"ok":false,"error":"invalid_code"}`.
    pub const PKCE_FAILED: &str = "slack.pkce_failed";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// App client id.
    pub const CLIENT_ID: &str = "4471830284.5524806190147";
    /// App client secret.
    pub const CLIENT_SECRET: &str = "slk-8f3b2c1d9e7a6b5c4d3e2f1a0b9c8d7e";
    /// Workspace id.
    pub const TEAM_ID: &str = "T9TK3CUKW";
    /// The static bot token a seeded workspace accepts (as copied from the app's OAuth page).
    pub const BOT_TOKEN: &str = "xoxb-4471830284-5524806190147-EmuBotT0kenZl2qX9xNnB7c";
    /// The app's signing secret (Events API).
    pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99e1e2f385a5";
}

/// How the emulated Slack app and workspace behave.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    /// App client id.
    pub client_id: String,
    /// App client secret.
    pub client_secret: String,
    /// Workspace id.
    pub team_id: String,
    /// Workspace name.
    pub team_name: String,
    /// App id.
    pub app_id: String,
    /// Bot user id.
    pub bot_user_id: String,
    /// Installing user id.
    pub user_id: String,
    /// Token rotation (opt-in): expiring access tokens plus single-use refresh tokens.
    pub token_rotation: bool,
    /// Access-token lifetime with rotation on, seconds. Default 43 200 (12 h).
    pub rotating_token_lifetime_secs: i64,
    /// Consent answer.
    pub consent: Consent,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            client_id: fixtures::CLIENT_ID.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned(),
            team_id: fixtures::TEAM_ID.to_owned(),
            team_name: "ProofPix Emulated".to_owned(),
            app_id: "A0KRD7HC3".to_owned(),
            bot_user_id: "U0KRQLJ9H".to_owned(),
            user_id: "U1234ABCD".to_owned(),
            token_rotation: false,
            rotating_token_lifetime_secs: 43_200,
            consent: Consent::Approve,
        }
    }
}

#[derive(Clone)]
struct SlackState {
    harness: Harness,
    tokens: Tokens,
    config: Arc<SlackConfig>,
}

/// Starts a Slack emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: SlackConfig, harness: Harness) -> std::io::Result<Emulator> {
    common::launch("slack", harness, move |_base, harness, tokens| {
        idp_routes(SlackState {
            harness,
            tokens,
            config: Arc::new(config),
        })
    })
    .await
}

/// A Slack emulator with a workspace: the IdP and Web API on one server, private files on a
/// second.
#[derive(Debug)]
pub struct Slack {
    /// The API server (IdP and Web API).
    pub emulator: Emulator,
    files: common::RunningServer,
    workspace: web::Workspace,
}

impl std::ops::Deref for Slack {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl Slack {
    /// The workspace: channels, files, what the bot posted.
    pub fn workspace(&self) -> &web::Workspace {
        &self.workspace
    }

    /// `{api}/api`, the Web API base a client is configured with.
    pub fn api_base(&self) -> String {
        format!("{}api", self.base_url())
    }

    /// The private-file host (`files.slack.com`).
    pub fn files_base(&self) -> &url::Url {
        self.files.base_url()
    }

    /// An Events API sender signing with the fixture signing secret on this emulator's clock.
    pub fn event_sender(&self) -> events::EventSender {
        events::EventSender::new(fixtures::SIGNING_SECRET, self.clock().clone())
    }
}

/// Starts a Slack emulator with a workspace: IdP and Web API on one loopback server, the
/// private-file host on another.
///
/// ```
/// use proofpix_emulators::{Harness, slack};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let s = slack::start_workspace(Default::default(), Default::default(), Harness::default()).await?;
/// let (ts, file) = s.workspace().share_image(slack::web::seed::FIELD_PHOTOS, "site.jpg", vec![0xFF, 0xD8]);
/// assert!(s.workspace().file_object(&file).is_some());
/// assert!(ts.contains('.'));
/// assert_ne!(s.base_url(), s.files_base());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If a loopback listener cannot be bound.
pub async fn start_workspace(
    config: SlackConfig,
    workspace: web::WorkspaceConfig,
    harness: Harness,
) -> std::io::Result<Slack> {
    use axum::middleware::from_fn_with_state;

    let api = common::server::Bound::loopback().await?;
    let files = common::server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let ws = web::Workspace::new(
        workspace,
        harness.clone(),
        tokens.clone(),
        api.base_url.clone(),
        files.base_url.clone(),
        &config.team_id,
        &config.bot_user_id,
    );
    let api_router = idp_routes(SlackState {
        harness: harness.clone(),
        tokens: tokens.clone(),
        config: Arc::new(config),
    })
    .merge(web::api_routes(ws.clone()))
    .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let files_router =
        web::file_routes(ws.clone()).layer(from_fn_with_state(harness.clone(), record_and_inject));
    let server = api.serve(api_router);
    let files = files.serve(files_router);
    Ok(Slack {
        emulator: Emulator::new("slack", harness, tokens, server),
        files,
        workspace: ws,
    })
}

fn idp_routes(state: SlackState) -> Router {
    Router::new()
        .route(ACCESS_PATH, post(access))
        .route(AUTHORIZE_PATH, get(authorize))
        .route(AUTH_TEST_PATH, post(auth_test).get(auth_test))
        .with_state(state)
}

/// `ok:false` with HTTP 200, Slack's error convention.
fn not_ok(error: &str) -> ErrorReply {
    ErrorReply::json(200, json!({"ok": false, "error": error}))
}

async fn access(State(s): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    let cfg = &s.config;
    if req.client_id() != Some(cfg.client_id.as_str()) {
        return not_ok("invalid_client_id").into_response();
    }
    if req.client_secret() != Some(cfg.client_secret.as_str()) {
        return not_ok("bad_client_secret").into_response();
    }
    let now = s.harness.clock.now();
    let (scope, is_refresh) = match req.get("grant_type") {
        Some("refresh_token") => {
            // The old refresh token is revoked on use (reference §4.1, token rotation).
            match s.tokens.redeem_refresh(
                req.get("refresh_token").unwrap_or_default(),
                &cfg.client_id,
                now,
                true,
            ) {
                Ok(grant) => (grant.scope, true),
                Err(_) => return not_ok("invalid_refresh_token").into_response(),
            }
        }
        None | Some("authorization_code") => {
            match s.tokens.redeem_code(
                req.get("code").unwrap_or_default(),
                &cfg.client_id,
                req.get("redirect_uri"),
                req.get("code_verifier"),
                now,
            ) {
                Ok(grant) => (grant.scope, false),
                Err(common::CodeProblem::RedirectMismatch) => {
                    return not_ok("bad_redirect_uri").into_response();
                }
                Err(
                    common::CodeProblem::VerifierMissing | common::CodeProblem::VerifierMismatch,
                ) => {
                    return reply(
                        &s.harness,
                        Some(errors::PKCE_FAILED),
                        not_ok("invalid_code"),
                    );
                }
                Err(_) => return not_ok("invalid_code").into_response(),
            }
        }
        Some(_) => return not_ok("invalid_grant_type").into_response(),
    };
    let (access_token, expires) = if cfg.token_rotation {
        let token = random_token("xoxe.xoxb-1-", 96);
        (
            token,
            Some(now + time::Duration::seconds(cfg.rotating_token_lifetime_secs)),
        )
    } else {
        (random_token("xoxb-4471830284-", 48), None)
    };
    let access_token = s.tokens.issue_access(
        access_token,
        &cfg.client_id,
        &cfg.bot_user_id,
        &scope,
        expires,
    );
    let mut body = json!({
        "ok": true,
        "access_token": access_token,
        "token_type": "bot",
        "scope": scope,
        "bot_user_id": cfg.bot_user_id,
        "app_id": cfg.app_id,
        "team": {"id": cfg.team_id, "name": cfg.team_name},
        "enterprise": null,
        "is_enterprise_install": false,
    });
    if !is_refresh {
        body["authed_user"] = json!({"id": cfg.user_id});
    }
    if cfg.token_rotation {
        let refresh = s.tokens.issue_refresh(
            random_token("xoxe-1-", 96),
            &cfg.client_id,
            &cfg.bot_user_id,
            &scope,
            None,
        );
        body["expires_in"] = json!(cfg.rotating_token_lifetime_secs);
        body["refresh_token"] = json!(refresh);
    }
    axum::Json(body).into_response()
}

async fn authorize(
    State(s): State<SlackState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    common::authorize(AuthorizeStep {
        harness: &s.harness,
        tokens: &s.tokens,
        query: &query,
        client_known: query.get("client_id") == Some(&s.config.client_id),
        subject: &s.config.user_id,
        consent: s.config.consent,
        code: random_token("4471830284.emu.", 40),
        code_lifetime: time::Duration::minutes(10),
    })
}

/// `auth.test`: who the token belongs to; `not_authed`, `invalid_auth`, `token_expired` or
/// `token_revoked` with HTTP 200 otherwise.
async fn auth_test(State(s): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = common::bearer(&headers, false).or_else(|| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let Some(token) = token else {
        return not_ok("not_authed").into_response();
    };
    let cfg = &s.config;
    match s.tokens.check_access(&token, s.harness.clock.now()) {
        Ok(_) => axum::Json(json!({
            "ok": true, "url": "https://proofpix-emu.slack.com/", "team": cfg.team_name,
            "user": "proofpix", "team_id": cfg.team_id, "user_id": cfg.bot_user_id,
            "bot_id": "B0EMU0001", "is_enterprise_install": false,
        }))
        .into_response(),
        Err(AccessProblem::Expired) => not_ok("token_expired").into_response(),
        Err(AccessProblem::Revoked) => not_ok("token_revoked").into_response(),
        Err(AccessProblem::Unknown) => not_ok("invalid_auth").into_response(),
    }
}
