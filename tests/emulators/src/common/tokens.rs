//! The token book every identity provider keeps: authorization codes, access tokens and refresh
//! tokens it minted, with their expiry, revocation and single-use state.
//!
//! A real provider's behaviour around these is what clients trip over: codes are single-use and
//! short-lived, refresh tokens may be single-use (Box, Slack rotation) or long-lived (Salesforce,
//! Google, Dropbox), and a revoked token fails exactly like an expired one on some platforms and
//! differently on others. Vendor modules decide the lifetimes and the error bodies; this module
//! only keeps the facts, always against the emulated [`Clock`](super::clock::Clock).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::harness::Minted;

/// What an access token was issued for.
#[derive(Clone, Debug)]
pub struct AccessGrant {
    /// Client (app) the token belongs to.
    pub client_id: String,
    /// User, service account or tenant it acts for.
    pub subject: String,
    /// Granted scope string, as returned.
    pub scope: String,
    /// When it stops working; `None` never.
    pub expires_at: Option<OffsetDateTime>,
    revoked: bool,
}

/// Why an access token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessProblem {
    /// Never issued here.
    Unknown,
    /// Past its expiry on the emulated clock.
    Expired,
    /// Revoked by the test.
    Revoked,
}

/// What a refresh token was issued for.
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    /// Client it belongs to.
    pub client_id: String,
    /// Subject it acts for.
    pub subject: String,
    /// Scope it grants.
    pub scope: String,
    /// When it stops working; `None` never.
    pub expires_at: Option<OffsetDateTime>,
    used: bool,
    revoked: bool,
}

/// Why a refresh token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshProblem {
    /// Never issued here.
    Unknown,
    /// Issued to another client.
    WrongClient,
    /// Past its expiry.
    Expired,
    /// Revoked by the test.
    Revoked,
    /// Single-use token presented a second time.
    AlreadyUsed,
}

/// A pending authorization code.
#[derive(Clone, Debug)]
pub struct CodeGrant {
    /// Client the code was issued to.
    pub client_id: String,
    /// User who approved.
    pub subject: String,
    /// `redirect_uri` of the authorize request; the token request must repeat it.
    pub redirect_uri: String,
    /// Scope approved.
    pub scope: String,
    /// PKCE `code_challenge` and method (`S256` or `plain`), when one was sent.
    pub challenge: Option<(String, String)>,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    used: bool,
}

/// Why an authorization code was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeProblem {
    /// Never issued here.
    Unknown,
    /// Issued to another client.
    WrongClient,
    /// Past its (short) lifetime.
    Expired,
    /// Presented before.
    AlreadyUsed,
    /// The token request's `redirect_uri` differs from the authorize request's.
    RedirectMismatch,
    /// A challenge was sent at authorize time but no `code_verifier` now.
    VerifierMissing,
    /// `code_verifier` does not hash to the challenge.
    VerifierMismatch,
}

#[derive(Debug, Default)]
struct Book {
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    codes: HashMap<String, CodeGrant>,
}

/// The token book of one emulator. Clones share state.
#[derive(Clone, Debug)]
pub struct Tokens {
    book: Arc<Mutex<Book>>,
    minted: Minted,
}

/// A random alphanumeric string of `len` characters after `prefix`.
pub fn random_token(prefix: &str, len: usize) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

impl Tokens {
    pub(crate) fn new(minted: Minted) -> Self {
        Tokens {
            book: Arc::new(Mutex::new(Book::default())),
            minted,
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new access token.
    pub fn issue_access(
        &self,
        token: String,
        client_id: &str,
        subject: &str,
        scope: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> String {
        self.minted.note(&token);
        self.book().access.insert(
            token.clone(),
            AccessGrant {
                client_id: client_id.to_owned(),
                subject: subject.to_owned(),
                scope: scope.to_owned(),
                expires_at,
                revoked: false,
            },
        );
        token
    }

    /// Records a new refresh token.
    pub fn issue_refresh(
        &self,
        token: String,
        client_id: &str,
        subject: &str,
        scope: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> String {
        self.minted.note(&token);
        self.book().refresh.insert(
            token.clone(),
            RefreshGrant {
                client_id: client_id.to_owned(),
                subject: subject.to_owned(),
                scope: scope.to_owned(),
                expires_at,
                used: false,
                revoked: false,
            },
        );
        token
    }

    /// Records a new authorization code.
    pub fn issue_code(&self, code: String, grant: CodeGrantInput) -> String {
        self.minted.note(&code);
        self.book().codes.insert(
            code.clone(),
            CodeGrant {
                client_id: grant.client_id,
                subject: grant.subject,
                redirect_uri: grant.redirect_uri,
                scope: grant.scope,
                challenge: grant.challenge,
                expires_at: grant.expires_at,
                used: false,
            },
        );
        code
    }

    /// Checks an access token presented to an API route at `now`.
    pub fn check_access(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessGrant, AccessProblem> {
        let book = self.book();
        let grant = book.access.get(token).ok_or(AccessProblem::Unknown)?;
        if grant.revoked {
            return Err(AccessProblem::Revoked);
        }
        if grant.expires_at.is_some_and(|at| now >= at) {
            return Err(AccessProblem::Expired);
        }
        Ok(grant.clone())
    }

    /// Redeems a refresh token. With `single_use`, a successful redemption burns it.
    pub fn redeem_refresh(
        &self,
        token: &str,
        client_id: &str,
        now: OffsetDateTime,
        single_use: bool,
    ) -> Result<RefreshGrant, RefreshProblem> {
        let mut book = self.book();
        let grant = book.refresh.get_mut(token).ok_or(RefreshProblem::Unknown)?;
        if grant.client_id != client_id {
            return Err(RefreshProblem::WrongClient);
        }
        if grant.revoked {
            return Err(RefreshProblem::Revoked);
        }
        if grant.used {
            return Err(RefreshProblem::AlreadyUsed);
        }
        if grant.expires_at.is_some_and(|at| now >= at) {
            return Err(RefreshProblem::Expired);
        }
        if single_use {
            grant.used = true;
        }
        Ok(grant.clone())
    }

    /// Redeems an authorization code (always single-use), checking client, redirect URI and PKCE.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<CodeGrant, CodeProblem> {
        let mut book = self.book();
        let grant = book.codes.get_mut(code).ok_or(CodeProblem::Unknown)?;
        if grant.used {
            return Err(CodeProblem::AlreadyUsed);
        }
        // A presented code is burnt even when the request fails (RFC 6749 §4.1.2).
        grant.used = true;
        if grant.client_id != client_id {
            return Err(CodeProblem::WrongClient);
        }
        if now >= grant.expires_at {
            return Err(CodeProblem::Expired);
        }
        if redirect_uri.is_some_and(|r| r != grant.redirect_uri) {
            return Err(CodeProblem::RedirectMismatch);
        }
        if let Some((challenge, method)) = &grant.challenge {
            let verifier = code_verifier.ok_or(CodeProblem::VerifierMissing)?;
            let computed = if method.eq_ignore_ascii_case("plain") {
                verifier.to_owned()
            } else {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()))
            };
            if &computed != challenge {
                return Err(CodeProblem::VerifierMismatch);
            }
        }
        Ok(grant.clone())
    }

    /// Revokes one access token.
    pub fn revoke_access(&self, token: &str) {
        if let Some(grant) = self.book().access.get_mut(token) {
            grant.revoked = true;
        }
    }

    /// Revokes every access token issued so far (e.g. an admin reset the app's sessions).
    pub fn revoke_all_access(&self) {
        for grant in self.book().access.values_mut() {
            grant.revoked = true;
        }
    }

    /// Revokes one refresh token.
    pub fn revoke_refresh(&self, token: &str) {
        if let Some(grant) = self.book().refresh.get_mut(token) {
            grant.revoked = true;
        }
    }

    /// Revokes every refresh token issued so far.
    pub fn revoke_all_refresh(&self) {
        for grant in self.book().refresh.values_mut() {
            grant.revoked = true;
        }
    }

    /// Live (issued, not revoked, not used) refresh tokens, for assertions.
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        self.book()
            .refresh
            .iter()
            .filter(|(_, g)| !g.used && !g.revoked)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// How many access tokens were issued.
    pub fn access_tokens_issued(&self) -> usize {
        self.book().access.len()
    }
}

/// Arguments of [`Tokens::issue_code`].
#[derive(Clone, Debug)]
pub struct CodeGrantInput {
    /// Client the code is for.
    pub client_id: String,
    /// User who approved.
    pub subject: String,
    /// Redirect URI it will be delivered to.
    pub redirect_uri: String,
    /// Scope approved.
    pub scope: String,
    /// PKCE challenge and method.
    pub challenge: Option<(String, String)>,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Tokens {
        Tokens::new(Minted::default())
    }

    #[test]
    fn a_single_use_refresh_token_fails_the_second_time() {
        let t = book();
        let now = OffsetDateTime::UNIX_EPOCH;
        t.issue_refresh("r1".into(), "app", "u", "", None);
        assert!(t.redeem_refresh("r1", "app", now, true).is_ok());
        assert_eq!(
            t.redeem_refresh("r1", "app", now, true).unwrap_err(),
            RefreshProblem::AlreadyUsed
        );
    }

    #[test]
    fn a_code_with_an_s256_challenge_needs_the_matching_verifier() {
        let t = book();
        let now = OffsetDateTime::UNIX_EPOCH;
        // RFC 7636 appendix B test vector.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        for code in ["c1", "c2", "c3"] {
            t.issue_code(
                code.into(),
                CodeGrantInput {
                    client_id: "app".into(),
                    subject: "u".into(),
                    redirect_uri: "http://127.0.0.1/cb".into(),
                    scope: String::new(),
                    challenge: Some((challenge.into(), "S256".into())),
                    expires_at: now + time::Duration::minutes(1),
                },
            );
        }
        assert!(
            t.redeem_code(
                "c1",
                "app",
                Some("http://127.0.0.1/cb"),
                Some(verifier),
                now
            )
            .is_ok()
        );
        assert_eq!(
            t.redeem_code("c2", "app", None, None, now).unwrap_err(),
            CodeProblem::VerifierMissing
        );
        assert_eq!(
            t.redeem_code("c3", "app", None, Some("wrong"), now)
                .unwrap_err(),
            CodeProblem::VerifierMismatch
        );
        assert_eq!(
            t.redeem_code("c1", "app", None, Some(verifier), now)
                .unwrap_err(),
            CodeProblem::AlreadyUsed
        );
    }
}
