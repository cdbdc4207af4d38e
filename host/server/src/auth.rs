//! API tokens and roles.
//!
//! Tokens are random (256 bits), shown once when created, and stored only as
//! their SHA-256. A request authenticates with `Authorization: Bearer <token>`
//! or, for the dashboard, the HttpOnly `proofpix_session` cookie set by
//! `POST /api/session`; a cookie-authenticated request that changes anything
//! must also carry `X-ProofPix-Request: 1`, which a cross-site form cannot
//! send (with `SameSite=Strict` this is belt and braces against CSRF).
//!
//! The cookie is a server-side session id, never the API token: a random
//! 256-bit value (`pps_...`) whose SHA-256 the store keeps with the token it
//! was opened with. It expires after `server.session_hours` (12 by default),
//! ends on sign-out, and ends when its token is revoked or replaced; the
//! role is the token's at each request. An API token sent as the cookie is
//! refused, so a token that leaked through a cookie jar is no use there, and
//! a cookie that leaked is not an API token.
//!
//! | role | may |
//! |---|---|
//! | viewer | read everything but secrets (which no role can read) |
//! | operator | viewer, plus sync, enable/disable, test connections |
//! | admin | everything: integrations, secrets, settings, tokens |

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "proofpix_session";
/// Prefix of a session id (API tokens start with `ppx_`).
pub const SESSION_PREFIX: &str = "pps_";
/// Header a cookie-authenticated change must carry.
pub const CSRF_HEADER: &str = "x-proofpix-request";

/// A role, ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Read, sync, enable/disable.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// The actor written to the audit log.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }

    /// Refuses callers below `role`.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; token {:?} has {}",
                role.as_str(),
                self.name,
                self.role.as_str()
            )))
        }
    }
}

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    let _ = getrandom::getrandom(&mut bytes);
    format!(
        "ppx_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random session id (256 bits), or `None` when the system's random
/// source fails (a session id must never be guessable, so there is no
/// fallback).
pub fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(format!(
        "{SESSION_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a session id.
pub fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_string())
        })
}

/// Refuses a cookie-authenticated change without the CSRF header.
///
/// # Errors
/// 403 naming the header.
pub fn require_csrf_header(parts: &Parts) -> Result<(), ApiError> {
    if parts.method != Method::GET
        && parts.method != Method::HEAD
        && !parts.headers.contains_key(CSRF_HEADER)
    {
        return Err(ApiError::forbidden(format!(
            "changes made with the session cookie must carry the {CSRF_HEADER} header"
        )));
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").map(str::trim).map(String::from));
        let store = state.host().store().clone();
        let record = match bearer {
            Some(token) => {
                let hash = token_hash(&token);
                tokio::task::spawn_blocking(move || store.api_token(&hash))
                    .await
                    .map_err(ApiError::internal)??
                    .ok_or_else(|| {
                        ApiError::unauthorized("this API token is not valid (revoked or mistyped)")
                    })?
            }
            None => {
                let Some(id) = session_cookie(&parts.headers) else {
                    return Err(ApiError::unauthorized(
                        "send an API token as `Authorization: Bearer <token>` (or sign in to the dashboard)",
                    ));
                };
                require_csrf_header(parts)?;
                if !id.starts_with(SESSION_PREFIX) {
                    return Err(ApiError::unauthorized(format!(
                        "the {SESSION_COOKIE} cookie holds a session id from POST /api/session, \
                         never an API token; sign in again"
                    )));
                }
                let hash = session_hash(&id);
                tokio::task::spawn_blocking(move || store.session(&hash))
                    .await
                    .map_err(ApiError::internal)??
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "this dashboard session ended (signed out, expired, or its token was revoked); sign in again",
                        )
                    })?
                    .1
            }
        };
        let role = Role::parse(&record.role).ok_or_else(|| {
            ApiError::internal(format!("token {} has an unknown role", record.name))
        })?;
        Ok(Caller {
            name: record.name,
            role,
        })
    }
}
