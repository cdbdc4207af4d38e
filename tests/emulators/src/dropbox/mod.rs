//! Dropbox OAuth 2.0: `GET /oauth2/authorize`, `POST /oauth2/token` (authorization code with PKCE,
//! refresh), and `POST /2/users/get_current_account` as the smallest authenticated call
//! (reference §7.1, §11). [`start_with_files`] adds the file APIs ([`files`]): `list_folder`
//! and its cursors, `get_metadata`, file-property templates and properties on the same server,
//! and `files/download` on a second server that plays `content.dropboxapi.com`.
//!
//! Access tokens (`sl.…`) are short-lived (`expires_in` 14 400 s); a refresh token is issued only
//! when the authorize request asked for `token_access_type=offline` and is long-lived and reusable.
//! The refresh response has no `refresh_token`. Client credentials may be in the body or in HTTP
//! Basic; with PKCE the secret may be omitted. Token error texts are \[mem\] in the reference
//! (`{"error":"invalid_grant","error_description":…}` shape), hence the keys in [`errors`].

pub mod files;
pub mod seed;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::common::tokens::random_token;
use crate::common::{
    self, AccessProblem, AuthorizeStep, Consent, Emulator, ErrorReply, Harness, TokenRequest,
    Tokens, oauth_error, reply,
};

/// Token endpoint path (on `api.dropboxapi.com`).
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Authorize path (on `www.dropbox.com`).
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";

/// Situation keys for unverified replies.
pub mod errors {
    /// Wrong app key/secret. Default: 400 `invalid_client` / `Invalid client_id or client_secret`.
    pub const BAD_CLIENT: &str = "dropbox.bad_client";
    /// Refresh token invalid or revoked. Default: 400 `invalid_grant` / `refresh token is invalid or revoked`.
    pub const REFRESH_INVALID: &str = "dropbox.refresh_invalid";
    /// Code unknown, used, expired, or PKCE failed. Default: 400 `invalid_grant` / `code doesn't exist or has expired`.
    pub const CODE_INVALID: &str = "dropbox.code_invalid";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// App key.
    pub const CLIENT_ID: &str = "emu0dbx1appkey2";
    /// App secret.
    pub const CLIENT_SECRET: &str = "dbxAppSecret4Fv9Wq2";
    /// Account id.
    pub const ACCOUNT_ID: &str = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc";
}

/// How the emulated Dropbox app behaves.
#[derive(Clone, Debug)]
pub struct DropboxConfig {
    /// App key.
    pub client_id: String,
    /// App secret.
    pub client_secret: String,
    /// Account of the consenting user.
    pub account_id: String,
    /// Legacy numeric user id.
    pub uid: String,
    /// Access-token lifetime, seconds. Default 14 400.
    pub access_lifetime_secs: i64,
    /// Consent answer.
    pub consent: Consent,
}

impl Default for DropboxConfig {
    fn default() -> Self {
        DropboxConfig {
            client_id: fixtures::CLIENT_ID.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned(),
            account_id: fixtures::ACCOUNT_ID.to_owned(),
            uid: "12345".to_owned(),
            access_lifetime_secs: 14_400,
            consent: Consent::Approve,
        }
    }
}

#[derive(Clone)]
struct DbxState {
    harness: Harness,
    tokens: Tokens,
    config: Arc<DropboxConfig>,
    /// Codes issued for `token_access_type=offline`.
    offline_codes: Arc<Mutex<Vec<String>>>,
    /// `root_info` of the account, when the file APIs run (see [`files::TeamSpace`]).
    root_info: Option<serde_json::Value>,
}

fn idp_routes(state: DbxState) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(AUTHORIZE_PATH, get(authorize))
        .route("/2/users/get_current_account", post(current_account))
        .with_state(state)
}

/// Starts a Dropbox emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: DropboxConfig, harness: Harness) -> std::io::Result<Emulator> {
    common::launch("dropbox", harness, move |_base, harness, tokens| {
        idp_routes(DbxState {
            harness,
            tokens,
            config: Arc::new(config),
            offline_codes: Arc::default(),
            root_info: None,
        })
    })
    .await
}

/// Starts the identity provider and the file APIs (`api.dropboxapi.com`, which also plays
/// `www.dropbox.com` for the authorize step) on one loopback server, and the content host
/// (`content.dropboxapi.com`) on a second one.
///
/// ```
/// use proofpix_emulators::Harness;
/// use proofpix_emulators::dropbox::{self, files};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let d = dropbox::start_with_files(Default::default(), files::FilesConfig::default(), Harness::default()).await?;
/// assert!(d.dropbox().file("/Photos/Marketing/banner-0.jpg").is_some());
/// assert_ne!(d.api_url(), d.content_url());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If a loopback listener cannot be bound.
pub async fn start_with_files(
    config: DropboxConfig,
    files_config: files::FilesConfig,
    harness: Harness,
) -> std::io::Result<files::DropboxEmulator> {
    use crate::common::harness::record_and_inject;
    use axum::middleware::from_fn_with_state;

    let api = crate::common::server::Bound::loopback().await?;
    let content = crate::common::server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let dropbox = files::Dropbox::new(files_config, harness.clone(), tokens.clone());
    let api_router = idp_routes(DbxState {
        harness: harness.clone(),
        tokens: tokens.clone(),
        config: Arc::new(config),
        offline_codes: Arc::default(),
        root_info: Some(dropbox.root_info()),
    })
    .merge(files::api_routes(dropbox.clone()))
    .layer(from_fn_with_state(
        (dropbox.clone(), files::Server::Api),
        files::observe,
    ))
    .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let content_router = files::content_routes(dropbox.clone())
        .layer(from_fn_with_state(
            (dropbox.clone(), files::Server::Content),
            files::observe,
        ))
        .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let server = api.serve(api_router);
    let content_server = content.serve(content_router);
    Ok(files::DropboxEmulator::new(
        Emulator::new("dropbox", harness, tokens, server),
        content_server,
        dropbox,
    ))
}

impl DbxState {
    fn fail(&self, situation: Option<&str>, error: &str, description: &str) -> Response {
        reply(
            &self.harness,
            situation,
            oauth_error(400, error, description),
        )
    }

    fn access(&self) -> String {
        let now = self.harness.clock.now();
        self.tokens.issue_access(
            random_token("sl.u.emu", 120),
            &self.config.client_id,
            &self.config.account_id,
            "",
            Some(now + time::Duration::seconds(self.config.access_lifetime_secs)),
        )
    }
}

async fn token(State(s): State<DbxState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    let cfg = &s.config;
    let pkce = req.get("code_verifier").is_some();
    let secret_ok = match req.client_secret() {
        Some(secret) => secret == cfg.client_secret,
        None => pkce && !req.used_basic(),
    };
    if req.client_id() != Some(cfg.client_id.as_str()) || !secret_ok {
        return s.fail(
            Some(errors::BAD_CLIENT),
            "invalid_client",
            "Invalid client_id or client_secret",
        );
    }
    let now = s.harness.clock.now();
    match req.get("grant_type") {
        Some("authorization_code") => {
            let code = req.get("code").unwrap_or_default();
            let grant = match s.tokens.redeem_code(
                code,
                &cfg.client_id,
                req.get("redirect_uri"),
                req.get("code_verifier"),
                now,
            ) {
                Ok(grant) => grant,
                Err(_) => {
                    return s.fail(
                        Some(errors::CODE_INVALID),
                        "invalid_grant",
                        "code doesn't exist or has expired",
                    );
                }
            };
            let offline = s
                .offline_codes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|c| c == code);
            let mut body = json!({
                "access_token": s.access(),
                "token_type": "bearer",
                "expires_in": cfg.access_lifetime_secs,
                "scope": grant.scope,
                "uid": cfg.uid,
                "account_id": cfg.account_id,
            });
            if offline {
                body["refresh_token"] = json!(s.tokens.issue_refresh(
                    random_token("emuRefresh", 54),
                    &cfg.client_id,
                    &cfg.account_id,
                    &grant.scope,
                    None
                ));
            }
            axum::Json(body).into_response()
        }
        Some("refresh_token") => {
            match s.tokens.redeem_refresh(
                req.get("refresh_token").unwrap_or_default(),
                &cfg.client_id,
                now,
                false,
            ) {
                Ok(_) => axum::Json(json!({"access_token": s.access(), "token_type": "bearer",
                    "expires_in": cfg.access_lifetime_secs}))
                .into_response(),
                Err(_) => s.fail(
                    Some(errors::REFRESH_INVALID),
                    "invalid_grant",
                    "refresh token is invalid or revoked",
                ),
            }
        }
        _ => s.fail(
            None,
            "unsupported_grant_type",
            "grant_type is not supported",
        ),
    }
}

async fn authorize(
    State(s): State<DbxState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let code = random_token("emuCode", 36);
    if query.get("token_access_type").map(String::as_str) == Some("offline") {
        s.offline_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(code.clone());
    }
    common::authorize(AuthorizeStep {
        harness: &s.harness,
        tokens: &s.tokens,
        query: &query,
        client_known: query.get("client_id") == Some(&s.config.client_id),
        subject: &s.config.account_id,
        consent: s.config.consent,
        code,
        code_lifetime: time::Duration::minutes(10),
    })
}

async fn current_account(State(s): State<DbxState>, headers: HeaderMap) -> Response {
    let token = common::bearer(&headers, false).unwrap_or_default();
    match s.tokens.check_access(&token, s.harness.clock.now()) {
        Ok(_) => {
            let mut me = json!({"account_id": s.config.account_id,
                "name": {"display_name": "Emulated Dropbox User"}, "email": "dbx-user@proofpix.example"});
            if let Some(info) = &s.root_info {
                me["root_info"] = info.clone();
            }
            axum::Json(me).into_response()
        }
        Err(problem) => {
            let tag = if problem == AccessProblem::Expired {
                "expired_access_token"
            } else {
                "invalid_access_token"
            };
            ErrorReply::json(
                401,
                json!({"error_summary": format!("{tag}/.."), "error": {".tag": tag}}),
            )
            .into_response()
        }
    }
}
