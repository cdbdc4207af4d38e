//! Salesforce identity provider: `POST /services/oauth2/token` for the web-server (authorization
//! code + PKCE), username-password, JWT bearer, refresh and client-credentials grants, and
//! `GET /services/oauth2/authorize` (reference §1.1, §11).
//!
//! What clients get wrong and this emulator makes visible:
//! - the success body has **no `expires_in`**; `issued_at` is a *string* of epoch milliseconds and
//!   `signature` is base64 HMAC-SHA256 of `id + issued_at` keyed by the consumer secret. Access
//!   tokens stop working after [`SalesforceConfig::session_lifetime`] (org session timeout,
//!   default 2 h), and an API call then gets the 401 JSON *array* `INVALID_SESSION_ID`;
//! - the password grant expects the password **concatenated with the security token**;
//! - refresh responses carry no new `refresh_token` unless rotation is switched on;
//! - token errors are HTTP 400 `{"error","error_description"}`; `invalid_client_id` is its own code.
//!
//! Login vs sandbox hosts are configuration ([`Environment`]): they change the audience a JWT
//! bearer assertion must name and the host in the identity URL. `instance_url` and `id` point back
//! at this emulator, which also serves the org's REST API ([`api`]): SOQL over a seeded
//! population of Cases, Files and Attachments ([`org`], [`soql`]), blob downloads, describe,
//! sObject Collections and limits, with Salesforce-shaped faults. [`start_org`] returns a handle
//! on that org; [`start`] only the emulator.
//!
//! Error texts the reference marks unverified have a situation key in [`errors`] so a test can
//! override them.

pub mod api;
pub mod org;
pub mod soql;

pub use api::{Api, ApiConfig, Chaos, Exchange, Route, SfFault, SfFaults};
pub use org::{
    CustomObjectDef, FieldDef, FileKind, Org, Permissions, RecordFailure, Seed, SeededFile,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;
use url::Url;

use crate::common::tokens::random_token;
use crate::common::{
    self, AuthorizeStep, Consent, Emulator, ErrorReply, Harness, TokenRequest, Tokens,
};

/// Token endpoint path.
pub const TOKEN_PATH: &str = "/services/oauth2/token";
/// Authorize endpoint path.
pub const AUTHORIZE_PATH: &str = "/services/oauth2/authorize";
/// The JWT bearer grant type (RFC 7523).
pub const JWT_BEARER: &str = common::JWT_BEARER;

/// Situation keys for [`ErrorCatalog::set`](crate::ErrorCatalog::set). Defaults marked
/// *unverified* are the reference's \[mem\] facts or guesses; override them when you know better.
pub mod errors {
    /// Password grant while the org blocks the username-password flow. Default (unverified):
    /// 400 `invalid_grant` / `authentication failure`.
    pub const PASSWORD_FLOW_BLOCKED: &str = "salesforce.password_flow_blocked";
    /// JWT assertion with a bad signature. Default (unverified): 400 `invalid_grant` / `invalid assertion`.
    pub const JWT_BAD_SIGNATURE: &str = "salesforce.jwt_bad_signature";
    /// JWT assertion whose `exp` passed (beyond 3 min skew). Default (unverified): 400
    /// `invalid_grant` / `expired authorization code`.
    pub const JWT_EXPIRED: &str = "salesforce.jwt_expired";
    /// JWT assertion with the wrong `aud`. Default (unverified): 400 `invalid_grant` / `audience is invalid`.
    pub const JWT_BAD_AUDIENCE: &str = "salesforce.jwt_bad_audience";
    /// Client secret wrong. Default (unverified): 400 `invalid_client` / `invalid client credentials`.
    pub const BAD_CLIENT_SECRET: &str = "salesforce.bad_client_secret";
    /// Client-credentials grant with no run-as user. Default (unverified): 400 `invalid_grant` /
    /// `no client credentials user enabled`.
    pub const NO_RUN_AS_USER: &str = "salesforce.no_run_as_user";
    /// Code redeemed with a different `redirect_uri`. Default (unverified): 400 `invalid_grant` /
    /// `redirect_uri must match configuration`.
    pub const REDIRECT_MISMATCH: &str = "salesforce.redirect_mismatch";
    /// An sObject Collections request with more than 200 records. Default (unverified): 400
    /// `EXCEEDED_ID_LIMIT` / `Maximum number of records is 200`.
    pub const COLLECTION_TOO_LARGE: &str = "salesforce.collection_too_large";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// Consumer key.
    pub const CLIENT_ID: &str = "3MVG9emuConsumerKey.proofpix0001";
    /// Consumer secret.
    pub const CLIENT_SECRET: &str = "sf-consumer-secret-Qh3v8Zt1";
    /// Integration user.
    pub const USERNAME: &str = "integration@proofpix.example";
    /// Its password.
    pub const PASSWORD: &str = "sf-Passw0rd-Kx2";
    /// Its security token (appended to the password in the password grant).
    pub const SECURITY_TOKEN: &str = "SfSecTok7Yw4Nn";
    /// A second user that never approved the connected app (JWT bearer fails for them).
    pub const UNAPPROVED_USERNAME: &str = "unapproved@proofpix.example";
    /// Org id.
    pub const ORG_ID: &str = "00Dx0000000BV7zEAG";
    /// Integration user's id.
    pub const USER_ID: &str = "005x00000012Q9PAAU";
}

/// Production (`login.salesforce.com`) or sandbox (`test.salesforce.com`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Environment {
    /// `https://login.salesforce.com`.
    #[default]
    Production,
    /// `https://test.salesforce.com`.
    Sandbox,
}

impl Environment {
    /// The login host URL, which is also the JWT `aud` Salesforce expects.
    pub fn login_url(self) -> &'static str {
        match self {
            Environment::Production => "https://login.salesforce.com",
            Environment::Sandbox => "https://test.salesforce.com",
        }
    }
}

/// A Salesforce user.
#[derive(Clone, Debug)]
pub struct SalesforceUser {
    /// Login name.
    pub username: String,
    /// 18-character user id.
    pub user_id: String,
    /// Password.
    pub password: String,
    /// Security token.
    pub security_token: String,
    /// Whether the user is pre-authorized for the connected app (JWT bearer needs it).
    pub approved: bool,
    /// Inactive users cannot log in.
    pub active: bool,
}

/// How the emulated org and connected app behave.
#[derive(Clone, Debug)]
pub struct SalesforceConfig {
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret.
    pub client_secret: String,
    /// Org id (prefix of access tokens and part of the identity URL).
    pub org_id: String,
    /// Users.
    pub users: Vec<SalesforceUser>,
    /// Certificate (public key PEM) uploaded to the connected app for JWT bearer.
    pub jwt_public_key_pem: String,
    /// Login or test host.
    pub environment: Environment,
    /// Extra accepted JWT audiences (the emulator's own URL is always accepted too, standing in
    /// for a My Domain or community URL).
    pub extra_audiences: Vec<String>,
    /// Org session timeout: how long access tokens work. Default 2 h.
    pub session_lifetime: time::Duration,
    /// Whether the username-password flow is allowed (newer orgs block it).
    pub password_flow_allowed: bool,
    /// Run-as user for the client-credentials grant; `None` = flow not enabled.
    pub client_credentials_user: Option<String>,
    /// Whether the web-server flow requires the client secret ("Require secret" setting).
    pub require_secret_for_code_flow: bool,
    /// Whether refresh responses carry a new refresh token (rotation) and burn the old one.
    pub refresh_token_rotation: bool,
    /// How the user answers the consent screen.
    pub consent: Consent,
    /// Lifetime of authorization codes (unverified; short-lived per reference). Default 15 min.
    pub code_lifetime: time::Duration,
    /// The org's REST API and data.
    pub api: ApiConfig,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        let user = |username: &str, approved: bool| SalesforceUser {
            username: username.to_owned(),
            user_id: if approved {
                fixtures::USER_ID.to_owned()
            } else {
                "005x00000099ZZZAAA".to_owned()
            },
            password: fixtures::PASSWORD.to_owned(),
            security_token: fixtures::SECURITY_TOKEN.to_owned(),
            approved,
            active: true,
        };
        SalesforceConfig {
            client_id: fixtures::CLIENT_ID.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned(),
            org_id: fixtures::ORG_ID.to_owned(),
            users: vec![
                user(fixtures::USERNAME, true),
                user(fixtures::UNAPPROVED_USERNAME, false),
            ],
            jwt_public_key_pem: crate::keys::PUBLIC_KEY_A_PEM.to_owned(),
            environment: Environment::Production,
            extra_audiences: Vec::new(),
            session_lifetime: time::Duration::hours(2),
            password_flow_allowed: true,
            client_credentials_user: Some(fixtures::USERNAME.to_owned()),
            require_secret_for_code_flow: true,
            refresh_token_rotation: false,
            consent: Consent::Approve,
            code_lifetime: time::Duration::minutes(15),
            api: ApiConfig::default(),
        }
    }
}

#[derive(Clone)]
struct SfState {
    base: Url,
    harness: Harness,
    tokens: Tokens,
    config: Arc<SalesforceConfig>,
}

/// Starts a Salesforce emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: SalesforceConfig, harness: Harness) -> std::io::Result<Emulator> {
    Ok(start_org(config, harness).await?.emulator)
}

/// A running Salesforce emulator and the handle on its org's API.
#[derive(Debug)]
pub struct Salesforce {
    /// The emulator (IdP and API on one server).
    pub emulator: Emulator,
    /// The org: data, faults, exchange log.
    pub api: Api,
}

impl std::ops::Deref for Salesforce {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl Salesforce {
    /// The org's data.
    pub fn org(&self) -> &Org {
        self.api.org()
    }

    /// `/services/data/v{version}` on this emulator.
    pub fn data_url(&self, version: &str, rest: &str) -> Url {
        self.url(&format!(
            "/services/data/v{version}/{}",
            rest.trim_start_matches('/')
        ))
    }
}

/// Starts a Salesforce emulator with its REST API and returns both handles.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start_org(config: SalesforceConfig, harness: Harness) -> std::io::Result<Salesforce> {
    let mut api = None;
    let emulator = common::launch("salesforce", harness, |base, harness, tokens| {
        let (data, handle) =
            api::routes(&base, harness.clone(), tokens.clone(), config.api.clone());
        api = Some(handle);
        router(SfState {
            base,
            harness,
            tokens,
            config: Arc::new(config),
        })
        .merge(data)
    })
    .await?;
    let api = api.ok_or_else(|| std::io::Error::other("the router was not built"))?;
    Ok(Salesforce { emulator, api })
}

fn router(state: SfState) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(AUTHORIZE_PATH, get(authorize))
        .with_state(state)
}

fn oauth_error(error: &str, description: &str) -> ErrorReply {
    ErrorReply::json(
        400,
        json!({"error": error, "error_description": description}),
    )
}

impl SfState {
    fn fail(&self, situation: Option<&str>, error: &str, description: &str) -> Response {
        let default = oauth_error(error, description);
        match situation {
            Some(key) => self.harness.errors.reply(key, default),
            None => default,
        }
        .into_response()
    }

    fn user(&self, username: &str) -> Option<&SalesforceUser> {
        self.config.users.iter().find(|u| u.username == username)
    }

    fn base_str(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The success body (reference §1.1): no `expires_in`, `issued_at` in ms as a string.
    fn success(
        &self,
        user: &SalesforceUser,
        scope: &str,
        refresh_token: Option<String>,
    ) -> Response {
        let now = self.harness.clock.now();
        let issued_at = self.harness.clock.unix_millis().to_string();
        let access = self.tokens.issue_access(
            random_token(
                &format!(
                    "{}!AR",
                    &self.config.org_id[..15.min(self.config.org_id.len())]
                ),
                96,
            ),
            &self.config.client_id,
            &user.username,
            scope,
            Some(now + self.config.session_lifetime),
        );
        let id = format!(
            "{}/id/{}/{}",
            self.base_str(),
            self.config.org_id,
            user.user_id
        );
        let signature = {
            let mut mac = match Hmac::<Sha256>::new_from_slice(self.config.client_secret.as_bytes())
            {
                Ok(mac) => mac,
                Err(_) => return ErrorReply::empty(500).into_response(),
            };
            mac.update(id.as_bytes());
            mac.update(issued_at.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        };
        let mut body = json!({
            "access_token": access,
            "instance_url": self.base_str(),
            "id": id,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        });
        if !scope.is_empty() {
            body["scope"] = json!(scope);
        }
        if let Some(refresh) = refresh_token {
            body["refresh_token"] = json!(refresh);
        }
        axum::Json(body).into_response()
    }

    fn new_refresh(&self, user: &SalesforceUser, scope: &str) -> String {
        self.tokens.issue_refresh(
            random_token("5Aep861", 80),
            &self.config.client_id,
            &user.username,
            scope,
            None,
        )
    }

    /// Checks client id and (when required) secret; `Some` is the failure reply to send.
    fn check_client(&self, req: &TokenRequest, secret_required: bool) -> Option<Response> {
        if req.client_id() != Some(self.config.client_id.as_str()) {
            return Some(self.fail(None, "invalid_client_id", "client identifier invalid"));
        }
        match req.client_secret() {
            Some(s) if s == self.config.client_secret => None,
            None if !secret_required => None,
            _ => Some(self.fail(
                Some(errors::BAD_CLIENT_SECRET),
                "invalid_client",
                "invalid client credentials",
            )),
        }
    }
}

async fn token(State(s): State<SfState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    let Some(grant_type) = req.get("grant_type") else {
        return s.fail(None, "invalid_request", "grant type is missing");
    };
    match grant_type {
        "password" => password_grant(&s, &req),
        JWT_BEARER => jwt_grant(&s, &req),
        "client_credentials" => client_credentials_grant(&s, &req),
        "authorization_code" => code_grant(&s, &req),
        "refresh_token" => refresh_grant(&s, &req),
        _ => s.fail(None, "unsupported_grant_type", "grant type not supported"),
    }
}

fn password_grant(s: &SfState, req: &TokenRequest) -> Response {
    if let Some(reply) = s.check_client(req, true) {
        return reply;
    }
    if !s.config.password_flow_allowed {
        return s.fail(
            Some(errors::PASSWORD_FLOW_BLOCKED),
            "invalid_grant",
            "authentication failure",
        );
    }
    let user = req.get("username").and_then(|u| s.user(u));
    let Some(user) = user.filter(|u| {
        req.get("password") == Some(format!("{}{}", u.password, u.security_token).as_str())
    }) else {
        return s.fail(None, "invalid_grant", "authentication failure");
    };
    if !user.active {
        return s.fail(None, "invalid_grant", "inactive user");
    }
    // No refresh token and no scopes in the password flow (reference §1.1).
    s.success(user, "", None)
}

fn jwt_grant(s: &SfState, req: &TokenRequest) -> Response {
    let Some(assertion) = req.get("assertion") else {
        return s.fail(None, "invalid_request", "assertion is missing");
    };
    let Ok(claims) = common::unverified_claims(assertion) else {
        return s.fail(None, "invalid_grant", "invalid assertion");
    };
    if common::claim_str(&claims, "iss") != Some(s.config.client_id.as_str()) {
        return s.fail(None, "invalid_client_id", "client identifier invalid");
    }
    let Ok(claims) = common::verify_rs256(assertion, &s.config.jwt_public_key_pem) else {
        return s.fail(
            Some(errors::JWT_BAD_SIGNATURE),
            "invalid_grant",
            "invalid assertion",
        );
    };
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => audience_accepted(s, aud),
        Some(serde_json::Value::Array(auds)) => auds
            .iter()
            .filter_map(|a| a.as_str())
            .any(|a| audience_accepted(s, a)),
        _ => false,
    };
    if !audience_ok {
        return s.fail(
            Some(errors::JWT_BAD_AUDIENCE),
            "invalid_grant",
            "audience is invalid",
        );
    }
    // Salesforce allows about three minutes of clock skew on `exp` (reference §1.1).
    let skew = 180;
    match common::claim_secs(&claims, "exp") {
        Some(exp) if exp + skew > s.harness.clock.unix_seconds() => {}
        _ => {
            return s.fail(
                Some(errors::JWT_EXPIRED),
                "invalid_grant",
                "expired authorization code",
            );
        }
    }
    let Some(user) = common::claim_str(&claims, "sub").and_then(|u| s.user(u)) else {
        return s.fail(None, "invalid_grant", "invalid user");
    };
    if !user.approved {
        return s.fail(None, "invalid_grant", "user hasn't approved this consumer");
    }
    if !user.active {
        return s.fail(None, "invalid_grant", "inactive user");
    }
    s.success(user, "api", None)
}

fn audience_accepted(s: &SfState, aud: &str) -> bool {
    let aud = aud.trim_end_matches('/');
    aud == s.config.environment.login_url()
        || aud == s.base_str()
        || s.config
            .extra_audiences
            .iter()
            .any(|a| a.trim_end_matches('/') == aud)
}

fn client_credentials_grant(s: &SfState, req: &TokenRequest) -> Response {
    if let Some(reply) = s.check_client(req, true) {
        return reply;
    }
    let Some(user) = s
        .config
        .client_credentials_user
        .as_deref()
        .and_then(|u| s.user(u))
    else {
        return s.fail(
            Some(errors::NO_RUN_AS_USER),
            "invalid_grant",
            "no client credentials user enabled",
        );
    };
    s.success(user, "api", None)
}

fn code_grant(s: &SfState, req: &TokenRequest) -> Response {
    if let Some(reply) = s.check_client(req, s.config.require_secret_for_code_flow) {
        return reply;
    }
    let Some(code) = req.get("code") else {
        return s.fail(None, "invalid_request", "code is missing");
    };
    let grant = match s.tokens.redeem_code(
        code,
        &s.config.client_id,
        req.get("redirect_uri"),
        req.get("code_verifier"),
        s.harness.clock.now(),
    ) {
        Ok(grant) => grant,
        Err(common::CodeProblem::RedirectMismatch) => {
            return s.fail(
                Some(errors::REDIRECT_MISMATCH),
                "invalid_grant",
                "redirect_uri must match configuration",
            );
        }
        // Reference §1.1: challenge sent but verifier omitted → invalid_grant; mismatching
        // verifier → invalid_request.
        Err(common::CodeProblem::VerifierMissing) => {
            return s.fail(None, "invalid_grant", "invalid code verifier");
        }
        Err(common::CodeProblem::VerifierMismatch) => {
            return s.fail(None, "invalid_request", "invalid code verifier");
        }
        Err(_) => return s.fail(None, "invalid_grant", "invalid authorization code"),
    };
    let Some(user) = s.user(&grant.subject) else {
        return s.fail(None, "invalid_grant", "invalid user");
    };
    let scope = if grant.scope.is_empty() {
        "api refresh_token".to_owned()
    } else {
        grant.scope.clone()
    };
    let wants_refresh = scope
        .split([' ', '+'])
        .any(|s| s == "refresh_token" || s == "offline_access");
    let refresh = wants_refresh.then(|| s.new_refresh(user, &scope));
    s.success(user, &scope, refresh)
}

fn refresh_grant(s: &SfState, req: &TokenRequest) -> Response {
    // The secret is optional on refresh but must be right when sent (reference §1.1).
    if let Some(reply) = s.check_client(req, false) {
        return reply;
    }
    let Some(refresh) = req.get("refresh_token") else {
        return s.fail(None, "invalid_request", "refresh_token is missing");
    };
    let grant = match s.tokens.redeem_refresh(
        refresh,
        &s.config.client_id,
        s.harness.clock.now(),
        s.config.refresh_token_rotation,
    ) {
        Ok(grant) => grant,
        Err(_) => return s.fail(None, "invalid_grant", "expired access/refresh token"),
    };
    let Some(user) = s.user(&grant.subject) else {
        return s.fail(None, "invalid_grant", "inactive user");
    };
    let rotated = s
        .config
        .refresh_token_rotation
        .then(|| s.new_refresh(user, &grant.scope));
    s.success(user, &grant.scope, rotated)
}

async fn authorize(
    State(s): State<SfState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    common::authorize(AuthorizeStep {
        harness: &s.harness,
        tokens: &s.tokens,
        query: &query,
        client_known: query.get("client_id") == Some(&s.config.client_id),
        subject: s
            .config
            .users
            .first()
            .map_or(fixtures::USERNAME, |u| u.username.as_str()),
        consent: s.config.consent,
        code: random_token("aPrxemu", 48),
        code_lifetime: s.config.code_lifetime,
    })
}
