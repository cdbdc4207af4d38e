//! The browser half of the authorization-code flow: pending attempts, and a loopback listener
//! that receives the provider's redirect.
//!
//! An attempt starts with [`Credentials::begin_authorization`](crate::Credentials::begin_authorization),
//! which remembers a random `state` together with the PKCE verifier, the redirect URI and the
//! integration, for [`CredentialOptions::authorization_lifetime`](crate::CredentialOptions) (10 min
//! by default). The callback must present that `state` to the same integration, once.
//!
//! Threats: a forged callback (CSRF: someone makes the operator's browser deliver *their* code, so
//! the integration scans the attacker's account) fails because `state` is random, single-use and
//! bound to the integration; a stolen code is useless without the PKCE verifier, which never
//! leaves the host. The table of pending attempts is bounded ([`MAX_PENDING_AUTHORIZATIONS`]) and
//! expired entries are dropped, so unfinished attempts cannot grow memory.
//!
//! [`LoopbackCallback`] is for the CLI (`proofpix integration authorize` on a workstation): it binds
//! `127.0.0.1:0`, answers exactly one matching `GET` with a short page, and ignores everything else
//! (favicon requests, scanners). The daemon serves its own callback route instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proofpix_vault::Secret;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::error::AuthError;

/// How many authorization attempts may be pending at once, across integrations. The oldest is
/// dropped when a new one would exceed it.
pub const MAX_PENDING_AUTHORIZATIONS: usize = 32;

/// Largest request head the loopback listener reads.
const MAX_CALLBACK_REQUEST_BYTES: usize = 16 * 1024;

/// Where to send the operator's browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The provider's authorize URL with `client_id`, `redirect_uri`, `scope`, `state` and the
    /// PKCE `code_challenge`. Contains no secret.
    pub url: Url,
    /// The `state` the callback must return.
    pub state: String,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) integration: String,
    pub(crate) verifier: Secret,
    pub(crate) redirect_uri: Url,
    expires_at: OffsetDateTime,
}

/// Pending authorization attempts of every integration. Cheap to clone; share one per process so
/// the daemon's single callback route can find the integration an attempt belongs to.
#[derive(Clone, Debug, Default)]
pub struct AuthorizationSessions {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

impl AuthorizationSessions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The integration an attempt belongs to, if `state` is pending. The callback route uses this
    /// to pick the [`Credentials`](crate::Credentials) to complete with.
    pub fn integration_for(&self, state: &str) -> Option<String> {
        self.lock().get(state).map(|p| p.integration.clone())
    }

    /// How many attempts are pending (expired ones included until the next insert).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(
        &self,
        state: String,
        integration: &str,
        verifier: Secret,
        redirect_uri: Url,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) {
        let mut pending = self.lock();
        pending.retain(|_, p| p.expires_at > now);
        while pending.len() >= MAX_PENDING_AUTHORIZATIONS {
            let oldest = pending
                .iter()
                .min_by_key(|(_, p)| p.expires_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => pending.remove(&key),
                None => break,
            };
        }
        pending.insert(
            state,
            Pending {
                integration: integration.to_owned(),
                verifier,
                redirect_uri,
                expires_at: now + lifetime,
            },
        );
    }

    /// Removes and returns the attempt for `state` if it belongs to `integration` and has not
    /// expired. A `state` of another integration stays pending for that integration.
    pub(crate) fn take(
        &self,
        state: &str,
        integration: &str,
        now: OffsetDateTime,
    ) -> Option<Pending> {
        let mut pending = self.lock();
        if pending.get(state)?.integration != integration {
            return None;
        }
        let attempt = pending.remove(state)?;
        (attempt.expires_at > now).then_some(attempt)
    }
}

/// What the provider's redirect delivered.
#[derive(Debug)]
pub struct CallbackParams {
    /// The `state` parameter.
    pub state: String,
    /// The authorization code (short-lived, single-use, still a secret).
    pub code: Secret,
}

/// A one-shot HTTP listener on `127.0.0.1` for the CLI's authorization flow.
#[derive(Debug)]
pub struct LoopbackCallback {
    listener: TcpListener,
    redirect_uri: Url,
}

impl LoopbackCallback {
    /// Binds `127.0.0.1:0`; the redirect URI is `http://127.0.0.1:PORT{path}`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Callback`] when no loopback port can be bound.
    pub async fn bind(path: &str) -> Result<Self, AuthError> {
        let listener =
            TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| AuthError::Callback {
                    reason: format!("could not listen on 127.0.0.1: {e}"),
                })?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::Callback {
                reason: e.to_string(),
            })?
            .port();
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}{path}")).map_err(|e| {
            AuthError::Callback {
                reason: format!("bad callback path: {e}"),
            }
        })?;
        Ok(LoopbackCallback {
            listener,
            redirect_uri,
        })
    }

    /// The URI to register with the provider and pass to `begin_authorization`.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the browser to come back, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`AuthError::AuthorizationDenied`] when the provider redirected with `error=...`;
    /// [`AuthError::Callback`] on timeout or listener failure.
    pub async fn wait(self, timeout: Duration) -> Result<CallbackParams, AuthError> {
        let minutes = timeout.as_secs().div_ceil(60);
        tokio::time::timeout(timeout, self.accept_loop())
            .await
            .map_err(|_| AuthError::Callback {
                reason: format!("no browser came back within {minutes} minute(s); run the command again and finish the approval in time"),
            })?
    }

    async fn accept_loop(self) -> Result<CallbackParams, AuthError> {
        loop {
            let (stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| AuthError::Callback {
                    reason: format!("the callback listener failed: {e}"),
                })?;
            // A slow or silent connection must not block the real callback for long.
            let handled = tokio::time::timeout(Duration::from_secs(10), self.handle(stream)).await;
            if let Ok(Some(outcome)) = handled {
                return outcome;
            }
        }
    }

    /// `Some` when this connection was the callback.
    async fn handle(&self, mut stream: TcpStream) -> Option<Result<CallbackParams, AuthError>> {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_CALLBACK_REQUEST_BYTES
        {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(buf.get(..n)?);
        }
        let line = String::from_utf8_lossy(&head);
        let target = line
            .lines()
            .next()?
            .strip_prefix("GET ")?
            .split(' ')
            .next()?
            .to_owned();
        let url = self.redirect_uri.join(&target).ok()?;
        if url.path() != self.redirect_uri.path() {
            let _ = respond(&mut stream, "404 Not Found", "Not found.").await;
            return None;
        }
        let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let outcome = if let Some(error) = params.get("error") {
            let _ = respond(
                &mut stream,
                "200 OK",
                "ProofPix was not authorized. You can close this tab and check the terminal.",
            )
            .await;
            Err(AuthError::AuthorizationDenied {
                error: error.chars().take(64).collect(),
                description: params
                    .get("error_description")
                    .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default(),
            })
        } else if let (Some(code), Some(state)) = (params.get("code"), params.get("state")) {
            let _ = respond(
                &mut stream,
                "200 OK",
                "ProofPix is connected. You can close this tab.",
            )
            .await;
            Ok(CallbackParams {
                state: state.clone(),
                code: Secret::new(code.as_str()),
            })
        } else {
            let _ = respond(
                &mut stream,
                "400 Bad Request",
                "The callback has neither a code nor an error.",
            )
            .await;
            return None;
        };
        Some(outcome)
    }
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) -> std::io::Result<()> {
    let body = format!("<!doctype html><meta charset=utf-8><title>ProofPix</title><p>{text}</p>\n");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn a_state_is_bound_to_its_integration_and_works_once() {
        let sessions = AuthorizationSessions::new();
        let uri = Url::parse("http://127.0.0.1:1/cb").unwrap();
        sessions.insert(
            "s1".into(),
            "slack",
            Secret::new("v"),
            uri,
            at(0),
            time::Duration::minutes(10),
        );
        assert_eq!(sessions.integration_for("s1").as_deref(), Some("slack"));
        assert!(
            sessions.take("s1", "box", at(1)).is_none(),
            "another integration must not redeem it"
        );
        assert!(sessions.take("s1", "slack", at(1)).is_some());
        assert!(
            sessions.take("s1", "slack", at(1)).is_none(),
            "a state works once"
        );
    }

    #[test]
    fn an_expired_attempt_cannot_be_completed() {
        let sessions = AuthorizationSessions::new();
        let uri = Url::parse("http://127.0.0.1:1/cb").unwrap();
        sessions.insert(
            "s".into(),
            "i",
            Secret::new("v"),
            uri,
            at(0),
            time::Duration::minutes(10),
        );
        assert!(sessions.take("s", "i", at(601)).is_none());
    }

    #[test]
    fn pending_attempts_are_bounded() {
        let sessions = AuthorizationSessions::new();
        let uri = Url::parse("http://127.0.0.1:1/cb").unwrap();
        for i in 0..(MAX_PENDING_AUTHORIZATIONS + 5) {
            sessions.insert(
                format!("s{i}"),
                "i",
                Secret::new("v"),
                uri.clone(),
                at(i as i64),
                time::Duration::minutes(10),
            );
        }
        assert_eq!(sessions.len(), MAX_PENDING_AUTHORIZATIONS);
        assert!(
            sessions.integration_for("s0").is_none(),
            "the oldest attempt was dropped"
        );
    }
}
