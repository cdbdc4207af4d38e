//! Pieces every emulated vendor uses: the [`Clock`], the [`Harness`] (request log, faults, error
//! overrides), the loopback server, the token book, and the request-parsing and authorize-step
//! helpers that are the same across OAuth2 providers. The file platforms (Graph, Drive, Box,
//! Dropbox) also share the route-class fault book of [`faults`].

pub mod clock;
pub mod faults;
pub mod harness;
pub mod server;
pub mod tokens;

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use url::Url;

pub use clock::Clock;
pub use harness::{
    ErrorCatalog, ErrorReply, Fault, Faults, Harness, RecordedRequest, ReplyBody, RequestLog,
};
pub use server::RunningServer;
pub use tokens::{AccessProblem, CodeProblem, RefreshProblem, Tokens};

use tokens::CodeGrantInput;

/// The JWT bearer grant type (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A running emulator: its address and the facilities tests drive it with.
#[derive(Debug)]
pub struct Emulator {
    vendor: &'static str,
    harness: Harness,
    tokens: Tokens,
    server: RunningServer,
}

impl Emulator {
    pub(crate) fn new(
        vendor: &'static str,
        harness: Harness,
        tokens: Tokens,
        server: RunningServer,
    ) -> Self {
        Emulator {
            vendor,
            harness,
            tokens,
            server,
        }
    }

    /// Which vendor this emulates (`salesforce`, `microsoft`, ...).
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// `http://127.0.0.1:PORT`, without a trailing path.
    pub fn base_url(&self) -> &Url {
        self.server.base_url()
    }

    /// An absolute URL on this emulator.
    ///
    /// # Panics
    ///
    /// If `path` cannot be joined to an `http://127.0.0.1:PORT` base, which no path can cause.
    pub fn url(&self, path: &str) -> Url {
        #[allow(clippy::expect_used)]
        self.base_url()
            .join(path)
            .expect("a path joins onto a loopback base URL")
    }

    /// Shared clock, log, faults and error overrides.
    pub fn harness(&self) -> &Harness {
        &self.harness
    }

    /// Emulated time.
    pub fn clock(&self) -> &Clock {
        &self.harness.clock
    }

    /// Requests received.
    pub fn log(&self) -> &RequestLog {
        &self.harness.log
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        &self.harness.faults
    }

    /// Error-reply overrides.
    pub fn errors(&self) -> &ErrorCatalog {
        &self.harness.errors
    }

    /// The tokens and codes this emulator issued (revoke them, count them).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

/// A token-endpoint request: the form body plus any HTTP Basic client credentials.
#[derive(Debug)]
pub(crate) struct TokenRequest {
    form: BTreeMap<String, String>,
    basic: Option<(String, String)>,
}

impl TokenRequest {
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let mut form = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(harness::decode_basic);
        TokenRequest { form, basic }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.form
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Client id from Basic credentials, else from the body.
    pub(crate) fn client_id(&self) -> Option<&str> {
        match &self.basic {
            Some((id, _)) => Some(id.as_str()),
            None => self.get("client_id"),
        }
    }

    /// Client secret from Basic credentials, else from the body.
    pub(crate) fn client_secret(&self) -> Option<&str> {
        match &self.basic {
            Some((_, secret)) => Some(secret.as_str()),
            None => self.get("client_secret"),
        }
    }

    pub(crate) fn used_basic(&self) -> bool {
        self.basic.is_some()
    }
}

/// The bearer token of an API request (`Authorization: Bearer x`; Salesforce also accepts the
/// older `OAuth x`, reference §1.1).
pub(crate) fn bearer(headers: &HeaderMap, also_oauth_prefix: bool) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let accepted =
        scheme.eq_ignore_ascii_case("bearer") || (also_oauth_prefix && scheme == "OAuth");
    accepted.then(|| token.trim().to_owned())
}

/// How the emulated user answers the consent screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consent {
    /// Approves: redirect with `code` and `state`.
    #[default]
    Approve,
    /// Denies: redirect with `error=access_denied` and `state`.
    Deny,
}

/// Inputs of the shared authorize step.
pub(crate) struct AuthorizeStep<'a> {
    pub(crate) harness: &'a Harness,
    pub(crate) tokens: &'a Tokens,
    pub(crate) query: &'a BTreeMap<String, String>,
    pub(crate) client_known: bool,
    pub(crate) subject: &'a str,
    pub(crate) consent: Consent,
    pub(crate) code: String,
    pub(crate) code_lifetime: time::Duration,
}

/// The authorize endpoint every provider shares in shape: check `response_type`, `client_id` and
/// `redirect_uri`, then auto-approve (or deny) and redirect back with `code` and `state`. An
/// unknown client or a missing redirect URI gets a 400 page, never a redirect: a provider must not
/// redirect to a URI it cannot trust.
pub(crate) fn authorize(step: AuthorizeStep<'_>) -> Response {
    let Some(redirect_uri) = step.query.get("redirect_uri") else {
        return ErrorReply::text(400, "error=redirect_uri_missing").into_response();
    };
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return ErrorReply::text(400, "error=redirect_uri_mismatch").into_response();
    };
    if !step.client_known {
        return ErrorReply::text(400, "error=invalid_client_id").into_response();
    }
    let state = step.query.get("state").cloned();
    let mut append = |k: &str, v: &str| {
        target.query_pairs_mut().append_pair(k, v);
    };
    if step.query.get("response_type").map(String::as_str) != Some("code") {
        append("error", "unsupported_response_type");
    } else if step.consent == Consent::Deny {
        append("error", "access_denied");
        append("error_description", "end-user denied authorization");
    } else {
        let challenge = step.query.get("code_challenge").map(|c| {
            let method = step
                .query
                .get("code_challenge_method")
                .cloned()
                .unwrap_or_else(|| "plain".to_owned());
            (c.clone(), method)
        });
        let code = step.tokens.issue_code(
            step.code,
            CodeGrantInput {
                client_id: step.query.get("client_id").cloned().unwrap_or_default(),
                subject: step.subject.to_owned(),
                redirect_uri: redirect_uri.clone(),
                scope: step.query.get("scope").cloned().unwrap_or_default(),
                challenge,
                expires_at: step.harness.clock.now() + step.code_lifetime,
            },
        );
        append("code", &code);
    }
    if let Some(state) = state {
        append("state", &state);
    }
    // 302 Found, as the providers send it (reference §11); axum's `Redirect::to` would say 303.
    ErrorReply::empty(302)
        .with_header("location", target.as_str())
        .into_response()
}

/// An RS256 JWT whose signature checked out, with its claims.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// Why a client assertion failed before its claims were even looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AssertionProblem {
    /// Not three base64url segments of JSON.
    Malformed,
    /// Header `alg` is not RS256.
    WrongAlgorithm,
    /// Signature does not verify under the registered key.
    BadSignature,
}

/// Claims of a JWT, read *without* verification (to find out which key to verify with).
pub(crate) fn unverified_claims(jwt: &str) -> Result<Claims, AssertionProblem> {
    let mut parts = jwt.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionProblem::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AssertionProblem::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AssertionProblem::Malformed)
}

/// Verifies an RS256 signature under `public_key_pem` (SPKI or PKCS#1 PEM). Time claims are left
/// to the caller, which checks them against the emulated clock rather than the system's.
pub(crate) fn verify_rs256(jwt: &str, public_key_pem: &str) -> Result<Claims, AssertionProblem> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| AssertionProblem::Malformed)?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(AssertionProblem::WrongAlgorithm);
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
        .map_err(|_| AssertionProblem::BadSignature)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AssertionProblem::BadSignature,
            _ => AssertionProblem::Malformed,
        })
}

/// A numeric claim (`iat`, `exp`) as seconds.
pub(crate) fn claim_secs(claims: &Claims, name: &str) -> Option<i64> {
    claims.get(name).and_then(serde_json::Value::as_i64)
}

/// A string claim.
pub(crate) fn claim_str<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(serde_json::Value::as_str)
}

/// Starts an emulator: binds, builds the router with the real base URL, serves.
pub(crate) async fn launch<F>(
    vendor: &'static str,
    harness: Harness,
    build: F,
) -> std::io::Result<Emulator>
where
    F: FnOnce(Url, Harness, Tokens) -> axum::Router,
{
    let bound = server::Bound::loopback().await?;
    let tokens = Tokens::new(harness.minted.clone());
    let router = build(bound.base_url.clone(), harness.clone(), tokens.clone()).layer(
        axum::middleware::from_fn_with_state(harness.clone(), harness::record_and_inject),
    );
    let server = bound.serve(router);
    Ok(Emulator::new(vendor, harness, tokens, server))
}

/// The RFC 6749 §5.2 error body `{"error","error_description"}`.
pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> ErrorReply {
    ErrorReply::json(
        status,
        serde_json::json!({"error": error, "error_description": description}),
    )
}

/// `default`, unless a test overrode `situation` in the harness's [`ErrorCatalog`].
pub(crate) fn reply(harness: &Harness, situation: Option<&str>, default: ErrorReply) -> Response {
    match situation {
        Some(key) => harness.errors.reply(key, default),
        None => default,
    }
    .into_response()
}
