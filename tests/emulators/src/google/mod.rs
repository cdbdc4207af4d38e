//! Google OAuth 2.0: `POST /token` for service-account JWT bearer (RS256, verified against the
//! configured public key), authorization code (+PKCE) and refresh; `GET /o/oauth2/v2/auth`; and
//! `GET /drive/v3/about` as the smallest authenticated call (reference §5.1, §11).
//!
//! JWT bearer rules enforced, because Google enforces them: `alg` RS256; `iss` a known service
//! account; signature under that account's key; `aud` the token URL; `iat`/`exp` at most 3600 s
//! apart and around "now" on the emulated clock; a `scope` claim; a `sub` only for users the
//! account may impersonate (domain-wide delegation). Access tokens last `expires_in` 3599 s; no
//! refresh token is issued for JWT bearer. Error bodies quoted in the reference (\[obs\]) are exact;
//! the others have a situation key in [`errors`].
//!
//! [`start_with_drive`] adds the Drive v3 API on the same server ([`drive`]): listing, the change
//! feed, downloads and `appProperties` updates, with route-class faults and a traffic record.

pub mod drive;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use url::Url;

use crate::common::tokens::random_token;
use crate::common::{
    self, AuthorizeStep, Consent, Emulator, ErrorReply, Harness, TokenRequest, Tokens, oauth_error,
    reply,
};

/// Token endpoint path.
pub const TOKEN_PATH: &str = "/token";
/// Authorize endpoint path (on `accounts.google.com` in production).
pub const AUTHORIZE_PATH: &str = "/o/oauth2/v2/auth";
/// The audience Google expects in service-account assertions.
pub const PRODUCTION_AUDIENCE: &str = "https://oauth2.googleapis.com/token";

/// Situation keys for unverified replies.
pub mod errors {
    /// Assertion `iss` is not a known service account. Default: 400 `invalid_grant` /
    /// `Invalid grant: account not found`.
    pub const UNKNOWN_ACCOUNT: &str = "google.unknown_account";
    /// Assertion `aud` is wrong. Default: 400 `invalid_grant` / `Invalid JWT: Failed audience check.`
    pub const BAD_AUDIENCE: &str = "google.bad_audience";
    /// Assertion without `scope`. Default: 400 `invalid_scope` / `Empty or missing scope not allowed.`
    pub const MISSING_SCOPE: &str = "google.missing_scope";
    /// Wrong OAuth client credentials. Default: 401 `invalid_client` / `Unauthorized`.
    pub const BAD_CLIENT: &str = "google.bad_client";
    /// Refresh token expired or revoked. Default: 400 `invalid_grant` / `Token has been expired or revoked.`
    pub const REFRESH_INVALID: &str = "google.refresh_invalid";
    /// Authorization code unknown, used or expired. Default: 400 `invalid_grant` / `Bad Request`.
    pub const CODE_INVALID: &str = "google.code_invalid";
}

/// Fixture values of the default configuration.
pub mod fixtures {
    /// Service account e-mail (`client_email` in the key file).
    pub const SERVICE_ACCOUNT: &str = "scanner@proofpix-emu.iam.gserviceaccount.com";
    /// `private_key_id` in the key file.
    pub const PRIVATE_KEY_ID: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    /// User the service account may impersonate.
    pub const DELEGATED_USER: &str = "admin@proofpix.example";
    /// OAuth client id (user flow).
    pub const CLIENT_ID: &str = "123456789012-emu.apps.googleusercontent.com";
    /// OAuth client secret.
    pub const CLIENT_SECRET: &str = "GOCSPX-emuSecret-Mn7Rb2Lq";
    /// Drive read-only scope.
    pub const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
}

/// A service account with its registered public key.
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    /// `client_email`.
    pub client_email: String,
    /// Public key (SPKI PEM) matching the key file's private key.
    pub public_key_pem: String,
    /// Users it may impersonate through `sub` (domain-wide delegation).
    pub delegation_subjects: Vec<String>,
}

/// How the emulated Google behaves.
#[derive(Clone, Debug)]
pub struct GoogleConfig {
    /// Service accounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// OAuth client for the user flow.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// User who consents in the user flow.
    pub user: String,
    /// Accepted assertion audience besides this emulator's own token URL.
    pub audience: String,
    /// `expires_in` of access tokens. Default 3599.
    pub token_lifetime_secs: i64,
    /// Consent answer.
    pub consent: Consent,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            service_accounts: vec![ServiceAccount {
                client_email: fixtures::SERVICE_ACCOUNT.to_owned(),
                public_key_pem: crate::keys::PUBLIC_KEY_A_PEM.to_owned(),
                delegation_subjects: vec![fixtures::DELEGATED_USER.to_owned()],
            }],
            client_id: fixtures::CLIENT_ID.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned(),
            user: fixtures::DELEGATED_USER.to_owned(),
            audience: PRODUCTION_AUDIENCE.to_owned(),
            token_lifetime_secs: 3599,
            consent: Consent::Approve,
        }
    }
}

#[derive(Clone)]
struct GState {
    base: Url,
    harness: Harness,
    tokens: Tokens,
    config: Arc<GoogleConfig>,
}

/// Starts a Google OAuth emulator on `127.0.0.1:0`.
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start(config: GoogleConfig, harness: Harness) -> std::io::Result<Emulator> {
    common::launch("google", harness, move |base, harness, tokens| {
        idp_routes(GState {
            base,
            harness,
            tokens,
            config: Arc::new(config),
        })
    })
    .await
}

fn idp_routes(state: GState) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(AUTHORIZE_PATH, get(authorize))
        .route("/drive/v3/about", get(about))
        .with_state(state)
}

/// Starts Google's OAuth 2.0 endpoints and the Drive v3 API on one `127.0.0.1:0` server, the
/// Drive seeded from `drive_config` (see [`drive`]).
///
/// ```
/// use proofpix_emulators::{Harness, google};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let g = google::start_with_drive(Default::default(), Default::default(), Harness::default()).await?;
/// assert!(g.drive().shared_drive_id(google::drive::seed::FIELD_TEAM_DRIVE).is_some());
/// assert!(g.token_url().ends_with("/token"));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If the loopback listener cannot be bound.
pub async fn start_with_drive(
    config: GoogleConfig,
    drive_config: drive::DriveConfig,
    harness: Harness,
) -> std::io::Result<drive::DriveEmulator> {
    use crate::common::harness::record_and_inject;
    use axum::middleware::from_fn_with_state;

    let api = crate::common::server::Bound::loopback().await?;
    let content = crate::common::server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let drive = drive::Drive::new(
        drive_config,
        content.base_url.clone(),
        harness.clone(),
        tokens.clone(),
    );
    let router = idp_routes(GState {
        base: api.base_url.clone(),
        harness: harness.clone(),
        tokens: tokens.clone(),
        config: Arc::new(config),
    })
    .merge(drive::routes(drive.clone()))
    .layer(from_fn_with_state(drive.clone(), drive::observe))
    .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let content_router = drive::content_routes(drive.clone())
        .layer(from_fn_with_state(drive.clone(), drive::observe))
        .layer(from_fn_with_state(harness.clone(), record_and_inject));
    let server = api.serve(router);
    let content_server = content.serve(content_router);
    Ok(drive::DriveEmulator::new(
        Emulator::new("google", harness, tokens, server),
        content_server,
        drive,
    ))
}

impl GState {
    fn fail(
        &self,
        situation: Option<&str>,
        status: u16,
        error: &str,
        description: &str,
    ) -> Response {
        reply(
            &self.harness,
            situation,
            oauth_error(status, error, description),
        )
    }

    fn access(&self, subject: &str, scope: &str) -> String {
        self.tokens.issue_access(
            random_token("ya29.c.emu", 120),
            &self.config.client_id,
            subject,
            scope,
            Some(
                self.harness.clock.now() + time::Duration::seconds(self.config.token_lifetime_secs),
            ),
        )
    }
}

async fn token(State(s): State<GState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest::parse(&headers, &body);
    match req.get("grant_type") {
        Some(common::JWT_BEARER) => jwt_grant(&s, &req),
        Some("authorization_code") => code_grant(&s, &req),
        Some("refresh_token") => refresh_grant(&s, &req),
        Some(_) => s.fail(None, 400, "unsupported_grant_type", "Invalid grant_type: "),
        None => s.fail(
            None,
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
    }
}

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

fn jwt_grant(s: &GState, req: &TokenRequest) -> Response {
    let Some(assertion) = req.get("assertion") else {
        return s.fail(
            None,
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let Ok(claims) = common::unverified_claims(assertion) else {
        return s.fail(None, 400, "invalid_grant", "Invalid JWT Signature.");
    };
    let iss = common::claim_str(&claims, "iss").unwrap_or_default();
    let Some(account) = s
        .config
        .service_accounts
        .iter()
        .find(|a| a.client_email == iss)
    else {
        return s.fail(
            Some(errors::UNKNOWN_ACCOUNT),
            400,
            "invalid_grant",
            "Invalid grant: account not found",
        );
    };
    let Ok(claims) = common::verify_rs256(assertion, &account.public_key_pem) else {
        return s.fail(None, 400, "invalid_grant", "Invalid JWT Signature.");
    };
    let own = s
        .base
        .join(TOKEN_PATH)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let aud = common::claim_str(&claims, "aud").unwrap_or_default();
    if aud != s.config.audience && aud != own {
        return s.fail(
            Some(errors::BAD_AUDIENCE),
            400,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        );
    }
    let now = s.harness.clock.unix_seconds();
    let (Some(iat), Some(exp)) = (
        common::claim_secs(&claims, "iat"),
        common::claim_secs(&claims, "exp"),
    ) else {
        return s.fail(None, 400, "invalid_grant", SHORT_LIVED);
    };
    // Lifetime at most an hour, issued not in the future and not yet expired; Google tolerates a
    // little skew, taken here as 5 minutes.
    if exp <= iat || exp - iat > 3600 || iat > now + 300 || exp <= now - 300 {
        return s.fail(None, 400, "invalid_grant", SHORT_LIVED);
    }
    let Some(scope) = common::claim_str(&claims, "scope").filter(|s| !s.is_empty()) else {
        return s.fail(
            Some(errors::MISSING_SCOPE),
            400,
            "invalid_scope",
            "Empty or missing scope not allowed.",
        );
    };
    let subject = match common::claim_str(&claims, "sub") {
        Some(sub) if !account.delegation_subjects.iter().any(|d| d == sub) => {
            return s.fail(
                None,
                400,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
            );
        }
        Some(sub) => sub.to_owned(),
        None => account.client_email.clone(),
    };
    let access = s.access(&subject, scope);
    axum::Json(json!({"access_token": access, "expires_in": s.config.token_lifetime_secs, "token_type": "Bearer"}))
        .into_response()
}

fn client_ok(s: &GState, req: &TokenRequest) -> bool {
    req.client_id() == Some(s.config.client_id.as_str())
        && req.client_secret() == Some(s.config.client_secret.as_str())
}

fn code_grant(s: &GState, req: &TokenRequest) -> Response {
    if !client_ok(s, req) {
        return s.fail(
            Some(errors::BAD_CLIENT),
            401,
            "invalid_client",
            "Unauthorized",
        );
    }
    let grant = match s.tokens.redeem_code(
        req.get("code").unwrap_or_default(),
        &s.config.client_id,
        req.get("redirect_uri"),
        req.get("code_verifier"),
        s.harness.clock.now(),
    ) {
        Ok(grant) => grant,
        Err(common::CodeProblem::RedirectMismatch) => {
            return s.fail(None, 400, "redirect_uri_mismatch", "Bad Request");
        }
        Err(common::CodeProblem::VerifierMissing | common::CodeProblem::VerifierMismatch) => {
            return s.fail(None, 400, "invalid_grant", "Invalid code verifier.");
        }
        Err(_) => {
            return s.fail(
                Some(errors::CODE_INVALID),
                400,
                "invalid_grant",
                "Bad Request",
            );
        }
    };
    let access = s.access(&grant.subject, &grant.scope);
    let refresh = s.tokens.issue_refresh(
        random_token("1//0emu", 100),
        &s.config.client_id,
        &grant.subject,
        &grant.scope,
        None,
    );
    axum::Json(json!({
        "access_token": access,
        "expires_in": s.config.token_lifetime_secs,
        "refresh_token": refresh,
        "scope": grant.scope,
        "token_type": "Bearer",
    }))
    .into_response()
}

fn refresh_grant(s: &GState, req: &TokenRequest) -> Response {
    if !client_ok(s, req) {
        return s.fail(
            Some(errors::BAD_CLIENT),
            401,
            "invalid_client",
            "Unauthorized",
        );
    }
    let grant = match s.tokens.redeem_refresh(
        req.get("refresh_token").unwrap_or_default(),
        &s.config.client_id,
        s.harness.clock.now(),
        false,
    ) {
        Ok(grant) => grant,
        Err(_) => {
            return s.fail(
                Some(errors::REFRESH_INVALID),
                400,
                "invalid_grant",
                "Token has been expired or revoked.",
            );
        }
    };
    let access = s.access(&grant.subject, &grant.scope);
    axum::Json(json!({
        "access_token": access,
        "expires_in": s.config.token_lifetime_secs,
        "scope": grant.scope,
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn authorize(
    State(s): State<GState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    common::authorize(AuthorizeStep {
        harness: &s.harness,
        tokens: &s.tokens,
        query: &query,
        client_known: query.get("client_id") == Some(&s.config.client_id),
        subject: &s.config.user,
        consent: s.config.consent,
        code: random_token("4/0emu", 60),
        code_lifetime: time::Duration::minutes(10),
    })
}

/// `GET /drive/v3/about`; 401 with Google's `authError` body when the token does not work.
async fn about(State(s): State<GState>, headers: HeaderMap) -> Response {
    let token = common::bearer(&headers, false).unwrap_or_default();
    match s.tokens.check_access(&token, s.harness.clock.now()) {
        Ok(grant) => axum::Json(json!({"kind": "drive#about", "user": {"kind": "drive#user",
            "displayName": "Emulated User", "emailAddress": grant.subject}}))
        .into_response(),
        Err(_) => ErrorReply::json(
            401,
            json!({"error": {"code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                    "location": "Authorization", "locationType": "header"}],
                "status": "UNAUTHENTICATED"}}),
        )
        .with_header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"")
        .into_response(),
    }
}
