//! RS256 JWT bearer assertions (RFC 7523).
//!
//! The assertion is a short-lived credential in its own right: anyone holding it can exchange it
//! for a token until `exp`, so it is built right before the request, held as a [`Secret`], and
//! never logged. Its lifetime, `kid`, extra claims and whether scopes go into a `scope` claim are
//! the plugin's declared [`JwtDialect`](crate::JwtDialect); the registered claims (`iss`, `sub`,
//! `aud`, `iat`, `exp`, `jti`) are always the host's, and `jti` is fresh per assertion. The private key may be pasted as PEM (PKCS#8 `BEGIN PRIVATE KEY`, as in Google key files,
//! or PKCS#1 `BEGIN RSA PRIVATE KEY`, as `openssl genrsa` writes for Salesforce) or as a whole
//! Google service-account key file (JSON with `private_key`, `private_key_id`, `client_email`).
//!
//! Signing uses `jsonwebtoken` on `ring`. The parsed key lives only for the duration of one
//! signature; `ring` does not zeroize its key material, which is a known limit.

use proofpix_vault::Secret;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::dialect::JwtDialect;
use crate::error::AuthError;

/// The fields of a Google service-account key file we use.
#[derive(Deserialize)]
struct KeyFile {
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
}

/// A private key as pasted by the operator.
pub(crate) struct SigningKey {
    pem: Secret,
    /// `kid` header (Google `private_key_id`).
    kid: Option<String>,
    /// `client_email` from a key file, used when no issuer is configured.
    pub(crate) file_issuer: Option<String>,
}

impl SigningKey {
    /// Reads a PEM key or a Google key file.
    pub(crate) fn parse(field: &str, value: &Secret) -> Result<SigningKey, AuthError> {
        let text = value.expose().trim();
        if text.starts_with('{') {
            let file: KeyFile =
                serde_json::from_str(text).map_err(|_| AuthError::InvalidPrivateKey {
                    field: field.to_owned(),
                })?;
            return Ok(SigningKey {
                pem: Secret::from(file.private_key),
                kid: file.private_key_id,
                file_issuer: file.client_email,
            });
        }
        if !text.contains("PRIVATE KEY-----") {
            return Err(AuthError::InvalidPrivateKey {
                field: field.to_owned(),
            });
        }
        Ok(SigningKey {
            pem: Secret::new(text),
            kid: None,
            file_issuer: None,
        })
    }
}

/// The claims of one assertion.
pub(crate) struct AssertionClaims<'a> {
    pub(crate) dialect: &'a JwtDialect,
    /// The dialect's extra claims, templates already expanded.
    pub(crate) extra_claims: &'a [(String, String)],
    /// The dialect's `kid` from config, used when the key file names none.
    pub(crate) key_id: Option<&'a str>,
    pub(crate) issuer: &'a str,
    pub(crate) subject: Option<&'a str>,
    pub(crate) audience: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) now: OffsetDateTime,
}

/// Signs an RS256 assertion.
pub(crate) fn sign(
    field: &str,
    key: &SigningKey,
    claims: &AssertionClaims<'_>,
) -> Result<Secret, AuthError> {
    let iat = claims.now.unix_timestamp();
    let mut body = json!({
        "iss": claims.issuer,
        "aud": claims.audience,
        "iat": iat,
        "exp": iat + i64::from(claims.dialect.lifetime_secs),
        // A unique id per assertion (RFC 7519 §4.1.7): some providers refuse a replayed one.
        "jti": jti(),
    });
    if let Some(sub) = claims.subject {
        body["sub"] = json!(sub);
    }
    // Google reads scopes from the `scope` claim, space-separated (reference §5.1).
    if claims.dialect.scope_claim && !claims.scopes.is_empty() {
        body["scope"] = json!(claims.scopes.join(" "));
    }
    for (name, value) in claims.extra_claims {
        // The registered claims above are the host's; a dialect adds, never overrides.
        if !matches!(
            name.as_str(),
            "iss" | "aud" | "iat" | "exp" | "jti" | "sub" | "nbf"
        ) {
            body[name.as_str()] = json!(value);
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = key.kid.clone().or(claims.key_id.map(str::to_owned));
    let invalid = || AuthError::InvalidPrivateKey {
        field: field.to_owned(),
    };
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(key.pem.expose().as_bytes())
        .map_err(|_| invalid())?;
    jsonwebtoken::encode(&header, &body, &encoding)
        .map(Secret::from)
        .map_err(|_| invalid())
}

/// 128 random bits, base64url (22 characters): unique per assertion.
fn jti() -> String {
    oauth2::CsrfToken::new_random().into_secret()
}
