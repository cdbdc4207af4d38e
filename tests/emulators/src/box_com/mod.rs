//! Box OAuth 2.0: `POST /oauth2/token` for client credentials (`box_subject_type`/`box_subject_id`),
//! the JWT grant (RS256 assertion with `kid`, `box_sub_type`, a unique `jti` and `exp` at most
//! 60 s ahead, plus client id and secret in the body; `developer.box.com`
//! `guides/authentication/jwt/without-sdk.md`), authorization code and refresh with **single-use
//! refresh tokens**, `GET /api/oauth2/authorize`,
//! and `GET /2.0/users/me` as the smallest authenticated call (reference §6.1, §11).
//!
//! The trap this emulator reproduces: every refresh burns the refresh token it used and returns a
//! new one, so a client that loses the new token (crash before persisting, two callers refreshing
//! at once) is locked out until the user re-authorizes. Access tokens last 60 min, refresh tokens
//! 60 days or one use, authorization codes 30 s. Client credentials go in the form body.
//!
//! Only the client-credentials `invalid_grant` / `unauthorized_client` bodies are \[obs\] in the
//! reference; the other error texts have situation keys in [`errors`]. The 401 of the API route
//! has an empty body by default (reference §10.6 leaves it open): override [`errors::API_UNAUTHORIZED`].
//!
//! [`start_with_files`] adds the content APIs (folders, events, downloads, metadata; see
//! [`files`]) on the same server and a second server for the `dl.boxcloud.com` download host.

pub mod files;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::common::tokens::random_token;
use crate::common::{
    self, AuthorizeStep, Consent, Emulator, ErrorReply, Harness, RefreshProblem, TokenRequest,
    Tokens, oauth_error, reply,
};

/// Token endpoint path (on `api.box.com`).
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Authorize path (on `account.box.com`).
pub const AUTHORIZE_PATH: &str = "/api/oauth2/authorize";

/// Situation keys for unverified replies.
pub mod errors {
    /// Wrong client id/secret on the code or refresh grant. Default: 400 `invalid_client` /
    /// `The client credentials are invalid`.
    pub const BAD_CLIENT: &str = "box.bad_client";
    /// Refresh token unknown, used or revoked. Default: 400 `invalid_grant` / `Invalid refresh token`.
    pub const REFRESH_INVALID: &str = "box.refresh_invalid";
    /// Refresh token past its 60 days. Default: 400 `invalid_grant` / `Refresh token has expired`.
    pub const REFRESH_EXPIRED: &str = "box.refresh_expired";
    /// Code unknown, used or expired. Default: 400 `invalid_grant` / `Auth code doesn't exist or is invalid for the client`.
    pub const CODE_INVALID: &str = "box.code_invalid";
    /// JWT assertion whose `kid` names no registered public key, or whose signature does not
    /// verify. Default: 400 `invalid_grant` / `Signature verification error. The public key
    /// identified by "kid" must correspond to the private key used for signing.`
    pub const JWT_SIGNATURE: &str = "box.jwt_signature";
    /// JWT `jti` missing, outside 16-128 characters, or used before. Default: 400
    /// `invalid_grant` / `Please check the 'jti' claim. A unique 'jti' value is required.`
    pub const JWT_JTI: &str = "box.jwt_jti";
    /// JWT `exp` passed or more than 60 s ahead. Default: 400 `invalid_grant` /
    /// `Please check the 'exp' claim.`
    pub const JWT_EXP: &str = "box.jwt_exp";
    /// JWT `iss`, `aud`, `sub` or `box_sub_type` wrong. Default: 400 `invalid_grant` /
    /// `Please check the '{claim}' claim.`
    pub const JWT_CLAIM: &str = "box.jwt_claim";
    /// API call with a bad token. Default: 401, empty body, `WWW-Authenticate: Bearer realm="Service", error="invalid_token", ...`.
    pub const API_UNAUTHORIZED: &str = "box.api_unauthorized";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// Client id.
    pub const CLIENT_ID: &str = "box0emu1clientid2proofpix3abcdef";
    /// Client secret.
    pub const CLIENT_SECRET: &str = "boxSecretEmu7Gh2Kp9Lm4Nq8Rs";
    /// Enterprise id for `box_subject_type=enterprise`.
    pub const ENTERPRISE_ID: &str = "987654";
    /// User id of the consenting user.
    pub const USER_ID: &str = "22334455";
    /// Id of the public key registered for the JWT grant (key A of [`crate::keys`]).
    pub const JWT_KEY_ID: &str = "k8q2vz1m";
}

/// How the emulated Box app behaves.
#[derive(Clone, Debug)]
pub struct BoxConfig {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Enterprise the client-credentials grant may act for.
    pub enterprise_id: String,
    /// User who consents; also a valid `box_subject_id` with `box_subject_type=user`.
    pub user_id: String,
    /// Access-token lifetime, seconds. Default 3600.
    pub access_lifetime_secs: i64,
    /// Refresh-token lifetime. Default 60 days.
    pub refresh_lifetime: time::Duration,
    /// Authorization-code lifetime. Default 30 s.
    pub code_lifetime: time::Duration,
    /// Consent answer.
    pub consent: Consent,
    /// Public keys registered for the JWT grant: (key id, SPKI or PKCS#1 PEM).
    pub jwt_public_keys: Vec<(String, String)>,
}

impl Default for BoxConfig {
    fn default() -> Self {
        BoxConfig {
            client_id: fixtures::CLIENT_ID.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned(),
            enterprise_id: fixtures::ENTERPRISE_ID.to_owned(),
            user_id: fixtures::USER_ID.to_owned(),
            access_lifetime_secs: 3600,
            refresh_lifetime: time::Duration::days(60),
            code_lifetime: time::Duration::seconds(30),
            consent: Consent::Approve,
            jwt_public_keys: vec![(
                fixtures::JWT_KEY_ID.to_owned(),
                crate::keys::PUBLIC_KEY_A_PEM.to_owned(),
            )],
        }
    }
}

#[derive(Clone)]
struct BoxState {
    harness: Harness,
    tokens: Tokens,
    config: Arc<BoxConfig>,
    /// `jti` values already used (Box refuses a replayed assertion).
    seen_jti: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Starts a Box emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: BoxConfig, harness: Harness) -> std::io::Result<Emulator> {
    common::launch("box", harness, move |_base, harness, tokens| {
        idp_routes(BoxState {
            harness,
            tokens,
            config: Arc::new(config),
            seen_jti: Arc::default(),
        })
    })
    .await
}

fn idp_routes(state: BoxState) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(AUTHORIZE_PATH, get(authorize))
        .route("/2.0/users/me", get(me))
        .with_state(state)
}

/// Starts the Box identity provider and the content APIs on one loopback server, and the
/// pre-authenticated download host (`dl.boxcloud.com`) on a second one.
///
/// ```
/// use proofpix_emulators::Harness;
/// use proofpix_emulators::box_com::{self, files};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let b = box_com::start_with_files(Default::default(), files::BoxFilesConfig::default(), Harness::default()).await?;
/// let folder = b.files().folder_id(files::seed::FIELDWORK).unwrap();
/// assert_ne!(folder, "0");
/// assert_ne!(b.api_url(), b.download_url());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If a loopback listener cannot be bound.
pub async fn start_with_files(
    config: BoxConfig,
    files_config: files::BoxFilesConfig,
    harness: Harness,
) -> std::io::Result<files::BoxEmulator> {
    use crate::common::harness::record_and_inject;
    use axum::middleware::from_fn_with_state;

    let api = crate::common::server::Bound::loopback().await?;
    let download = crate::common::server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let content = files::BoxFiles::new(
        files_config,
        download.base_url.clone(),
        harness.clone(),
        tokens.clone(),
    );
    let api_router = idp_routes(BoxState {
        harness: harness.clone(),
        tokens: tokens.clone(),
        config: Arc::new(config),
        seen_jti: Arc::default(),
    })
    .merge(files::api_routes(content.clone()))
    .layer(from_fn_with_state(
        (content.clone(), files::Server::Api),
        files::observe,
    ))
    .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let download_router = files::download_routes(content.clone())
        .layer(from_fn_with_state(
            (content.clone(), files::Server::Download),
            files::observe,
        ))
        .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let server = api.serve(api_router);
    let download_server = download.serve(download_router);
    Ok(files::BoxEmulator::new(
        Emulator::new("box", harness, tokens, server),
        download_server,
        content,
    ))
}

impl BoxState {
    fn fail(&self, situation: Option<&str>, error: &str, description: &str) -> Response {
        reply(
            &self.harness,
            situation,
            oauth_error(400, error, description),
        )
    }

    fn issue(&self, subject: &str, with_refresh: bool) -> Response {
        let now = self.harness.clock.now();
        let cfg = &self.config;
        let access = self.tokens.issue_access(
            random_token("", 32),
            &cfg.client_id,
            subject,
            "",
            Some(now + time::Duration::seconds(cfg.access_lifetime_secs)),
        );
        let mut body = json!({
            "access_token": access,
            "expires_in": cfg.access_lifetime_secs,
            "restricted_to": [],
            "token_type": "bearer",
        });
        if with_refresh {
            let refresh = self.tokens.issue_refresh(
                random_token("", 64),
                &cfg.client_id,
                subject,
                "",
                Some(now + cfg.refresh_lifetime),
            );
            body["refresh_token"] = json!(refresh);
        }
        axum::Json(body).into_response()
    }
}

impl BoxState {
    /// The JWT grant's checks, in the order Box documents its claims.
    fn jwt_grant(&self, assertion: &str) -> Response {
        let cfg = &self.config;
        let signature = || {
            self.fail(
                Some(errors::JWT_SIGNATURE),
                "invalid_grant",
                "Signature verification error. The public key identified by \"kid\" must correspond to the private key used for signing.",
            )
        };
        let claim = |name: &str| {
            self.fail(
                Some(errors::JWT_CLAIM),
                "invalid_grant",
                &format!("Please check the '{name}' claim."),
            )
        };
        let Ok(header) = jsonwebtoken::decode_header(assertion) else {
            return signature();
        };
        let Some((_, pem)) = cfg
            .jwt_public_keys
            .iter()
            .find(|(id, _)| Some(id.as_str()) == header.kid.as_deref())
        else {
            return signature();
        };
        let Ok(claims) = common::verify_rs256(assertion, pem) else {
            return signature();
        };
        if common::claim_str(&claims, "iss") != Some(cfg.client_id.as_str()) {
            return claim("iss");
        }
        // Box wants its production token URL as the audience wherever the request is sent.
        if common::claim_str(&claims, "aud") != Some("https://api.box.com/oauth2/token") {
            return claim("aud");
        }
        let now = self.harness.clock.unix_seconds();
        match common::claim_secs(&claims, "exp") {
            Some(exp) if exp > now && exp <= now + 60 => {}
            _ => {
                return self.fail(
                    Some(errors::JWT_EXP),
                    "invalid_grant",
                    "Please check the 'exp' claim.",
                );
            }
        }
        let jti = common::claim_str(&claims, "jti").unwrap_or_default();
        let fresh = (16..=128).contains(&jti.len())
            && self
                .seen_jti
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(jti.to_owned());
        if !fresh {
            return self.fail(
                Some(errors::JWT_JTI),
                "invalid_grant",
                "Please check the 'jti' claim. A unique 'jti' value is required.",
            );
        }
        let sub = common::claim_str(&claims, "sub").unwrap_or_default();
        let subject_ok = match common::claim_str(&claims, "box_sub_type") {
            Some("enterprise") => sub == cfg.enterprise_id,
            Some("user") => sub == cfg.user_id,
            _ => return claim("box_sub_type"),
        };
        if !subject_ok {
            return claim("sub");
        }
        self.issue(sub, false)
    }
}

async fn token(State(s): State<BoxState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    let cfg = &s.config;
    let client_ok = req.get("client_id") == Some(cfg.client_id.as_str())
        && req.get("client_secret") == Some(cfg.client_secret.as_str());
    let now = s.harness.clock.now();
    match req.get("grant_type") {
        Some("client_credentials") => {
            if !client_ok {
                return s.fail(None, "invalid_grant", "Grant credentials are invalid");
            }
            let subject_ok = match (req.get("box_subject_type"), req.get("box_subject_id")) {
                (Some("enterprise"), Some(id)) => id == cfg.enterprise_id,
                (Some("user"), Some(id)) => id == cfg.user_id,
                _ => false,
            };
            if !subject_ok {
                return s.fail(
                    None,
                    "unauthorized_client",
                    "The \"box_subject_type\" value is unauthorized for this client_id",
                );
            }
            s.issue(req.get("box_subject_id").unwrap_or_default(), false)
        }
        Some(common::JWT_BEARER) => {
            if !client_ok {
                return s.fail(
                    Some(errors::BAD_CLIENT),
                    "invalid_client",
                    "The client credentials are invalid",
                );
            }
            s.jwt_grant(req.get("assertion").unwrap_or_default())
        }
        Some("authorization_code") => {
            if !client_ok {
                return s.fail(
                    Some(errors::BAD_CLIENT),
                    "invalid_client",
                    "The client credentials are invalid",
                );
            }
            match s.tokens.redeem_code(
                req.get("code").unwrap_or_default(),
                &cfg.client_id,
                req.get("redirect_uri"),
                req.get("code_verifier"),
                now,
            ) {
                Ok(grant) => s.issue(&grant.subject, true),
                Err(_) => s.fail(
                    Some(errors::CODE_INVALID),
                    "invalid_grant",
                    "Auth code doesn't exist or is invalid for the client",
                ),
            }
        }
        Some("refresh_token") => {
            if !client_ok {
                return s.fail(
                    Some(errors::BAD_CLIENT),
                    "invalid_client",
                    "The client credentials are invalid",
                );
            }
            // Single use: redeeming burns the token (reference §6.1).
            match s.tokens.redeem_refresh(
                req.get("refresh_token").unwrap_or_default(),
                &cfg.client_id,
                now,
                true,
            ) {
                Ok(grant) => s.issue(&grant.subject, true),
                Err(RefreshProblem::Expired) => s.fail(
                    Some(errors::REFRESH_EXPIRED),
                    "invalid_grant",
                    "Refresh token has expired",
                ),
                Err(_) => s.fail(
                    Some(errors::REFRESH_INVALID),
                    "invalid_grant",
                    "Invalid refresh token",
                ),
            }
        }
        Some(_) => s.fail(
            None,
            "unsupported_grant_type",
            "Grant type is not supported",
        ),
        None => s.fail(
            None,
            "invalid_request",
            "Invalid grant_type parameter or parameter missing",
        ),
    }
}

async fn authorize(
    State(s): State<BoxState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    common::authorize(AuthorizeStep {
        harness: &s.harness,
        tokens: &s.tokens,
        query: &query,
        client_known: query.get("client_id") == Some(&s.config.client_id),
        subject: &s.config.user_id,
        consent: s.config.consent,
        code: random_token("", 32),
        code_lifetime: s.config.code_lifetime,
    })
}

async fn me(State(s): State<BoxState>, headers: HeaderMap) -> Response {
    let token = common::bearer(&headers, false).unwrap_or_default();
    match s.tokens.check_access(&token, s.harness.clock.now()) {
        Ok(grant) => axum::Json(json!({"type": "user", "id": grant.subject, "name": "Emulated Box User",
            "login": "box-user@proofpix.example"}))
        .into_response(),
        Err(_) => reply(
            &s.harness,
            Some(errors::API_UNAUTHORIZED),
            ErrorReply::empty(401).with_header(
                "www-authenticate",
                "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\"",
            ),
        ),
    }
}
