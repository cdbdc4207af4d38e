//! The host side of the contract's imports: `http`, `state`, `log`,
//! `config` and `verify`.
//!
//! A guest's bad request becomes the import's error value, never a trap and
//! never a panic: the plugin decides what to do with a refusal. Every value a
//! guest hands in is bounded (string and body sizes) before it is used.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::Method;
use subtle::ConstantTimeEq;

use crate::bindings::latest::proofpix::plugin::{config, http, log, state, types, verify};
use crate::egress_http::{HttpFailure, OutboundRequest};
use crate::host_state::HostState;

impl types::Host for HostState {}

impl http::Host for HostState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        if request.body.len() as u64 > self.limits.max_request_bytes {
            return Ok(Err(http::Error::TooLarge(format!(
                "request body of {} bytes is over the cap of {} bytes",
                request.body.len(),
                self.limits.max_request_bytes
            ))));
        }
        let method = match request.method {
            http::Method::Get => Method::GET,
            http::Method::Head => Method::HEAD,
            http::Method::Post => Method::POST,
            http::Method::Put => Method::PUT,
            http::Method::Patch => Method::PATCH,
            http::Method::Delete => Method::DELETE,
        };
        let outbound = OutboundRequest {
            method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let started = Instant::now();
        let result = self
            .http
            .send(outbound, self.limits.max_response_bytes)
            .await;
        self.host_wait += started.elapsed();
        Ok(match result {
            Ok(r) => Ok(http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
                url: r.url,
            }),
            Err(failure) => {
                if let HttpFailure::Denied(reason) = &failure {
                    crate::metrics::EGRESS_DENIALS
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(plugin = %self.plugin, integration = %self.ctx.id, error.type = "egress_denied", "plugin {} {reason}", self.plugin);
                }
                Err(match failure {
                    HttpFailure::Denied(m) => http::Error::Denied(m),
                    HttpFailure::Invalid(m) => http::Error::InvalidRequest(m),
                    HttpFailure::Timeout(m) => http::Error::Timeout(m),
                    HttpFailure::Connection(m) => http::Error::Connection(m),
                    HttpFailure::TooLarge(m) => http::Error::TooLarge(m),
                })
            }
        })
    }
}

impl state::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if key.len() > self.limits.max_state_key_bytes {
            return Ok(None);
        }
        match self.ctx.state.get(&self.ctx.id, &key) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::error!(plugin = %self.plugin, integration = %self.ctx.id, "plugin state read failed: {e}");
                Ok(None)
            }
        }
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if key.is_empty() || key.len() > self.limits.max_state_key_bytes {
            return Ok(Err(format!(
                "state keys must be 1 to {} bytes long",
                self.limits.max_state_key_bytes
            )));
        }
        Ok(self
            .ctx
            .state
            .set(&self.ctx.id, &key, &value, self.limits.max_state_bytes)
            .map_err(|e| e.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if let Err(e) = self.ctx.state.delete(&self.ctx.id, &key) {
            tracing::error!(plugin = %self.plugin, integration = %self.ctx.id, "plugin state delete failed: {e}");
        }
        Ok(())
    }
}

/// Longest field value kept in a log line.
const MAX_LOG_FIELD_CHARS: usize = 200;

impl log::Host for HostState {
    async fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let size = message.len()
            + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        if size > self.logs.left {
            self.logs.left = 0;
            self.logs.dropped_lines += 1;
            return Ok(());
        }
        self.logs.left -= size;
        // A plugin's words are data: a secret it should not have seen is
        // scrubbed, and control characters are escaped so a line cannot end
        // early and forge a host line, nor recolour or reorder the terminal.
        let scrubber = self.http.scrubber();
        let clean = |s: &str| escape_log_text(&scrubber.scrub_str(s));
        let fields: String = fields
            .iter()
            .map(|(k, v)| {
                let v: String = v.chars().take(MAX_LOG_FIELD_CHARS).collect();
                format!("{}={}", clean(k), clean(&v))
            })
            .collect::<Vec<_>>()
            .join(" ");
        let message: String = message
            .chars()
            .take(self.limits.max_log_bytes_per_call)
            .collect();
        let message = clean(&message);
        let (plugin, integration) = (&*self.plugin, self.ctx.id.as_str());
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "plugin", plugin, integration, fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "plugin", plugin, integration, fields, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "plugin", plugin, integration, fields, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "plugin", plugin, integration, fields, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "plugin", plugin, integration, fields, "{message}")
            }
        }
        Ok(())
    }
}

/// Escapes what a terminal or a log reader would act on: C0 controls, DEL,
/// C1 controls and the Unicode bidirectional overrides and isolates. A line
/// feed becomes `\n`, an escape `\x1b`, a right-to-left override `\u{202e}`.
pub(crate) fn escape_log_text(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

impl config::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        if self.secret_fields.contains(&name) {
            return Ok(None);
        }
        Ok(self.ctx.config.get(&name).cloned())
    }

    async fn auth_context(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .ctx
            .credentials
            .as_ref()
            .and_then(|c| c.context().get(&name).cloned()))
    }

    async fn integration_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.ctx.id.clone())
    }
}

impl verify::Host for HostState {
    async fn hmac_matches(
        &mut self,
        secret_field: String,
        algorithm: verify::HmacAlgorithm,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> wasmtime::Result<bool> {
        let Some(secret) = self.declared_secret(&secret_field) else {
            return Ok(false);
        };
        let key = secret.expose().as_bytes();
        let ok = match algorithm {
            verify::HmacAlgorithm::Sha256 => Hmac::<sha2::Sha256>::new_from_slice(key)
                .map(|mut m| {
                    m.update(&message);
                    m.verify_slice(&expected).is_ok()
                })
                .unwrap_or(false),
            verify::HmacAlgorithm::Sha1 => Hmac::<sha1::Sha1>::new_from_slice(key)
                .map(|mut m| {
                    m.update(&message);
                    m.verify_slice(&expected).is_ok()
                })
                .unwrap_or(false),
        };
        Ok(ok)
    }

    async fn secret_matches(
        &mut self,
        secret_field: String,
        candidate: String,
    ) -> wasmtime::Result<bool> {
        let Some(secret) = self.declared_secret(&secret_field) else {
            return Ok(false);
        };
        Ok(bool::from(
            secret.expose().as_bytes().ct_eq(candidate.as_bytes()),
        ))
    }

    async fn hmac_sign(
        &mut self,
        secret_field: String,
        algorithm: verify::HmacAlgorithm,
        message: Vec<u8>,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        let Some(secret) = self.declared_secret(&secret_field) else {
            return Ok(None);
        };
        let key = secret.expose().as_bytes();
        let tag = match algorithm {
            verify::HmacAlgorithm::Sha256 => {
                Hmac::<sha2::Sha256>::new_from_slice(key).ok().map(|mut m| {
                    m.update(&message);
                    m.finalize().into_bytes().to_vec()
                })
            }
            verify::HmacAlgorithm::Sha1 => {
                Hmac::<sha1::Sha1>::new_from_slice(key).ok().map(|mut m| {
                    m.update(&message);
                    m.finalize().into_bytes().to_vec()
                })
            }
        };
        Ok(tag)
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64))
    }
}

impl HostState {
    /// A secret the plugin may use for checks: it must be declared secret in
    /// the manifest (a plugin cannot probe arbitrary vault fields).
    fn declared_secret(&self, field: &str) -> Option<&proofpix_vault::Secret> {
        if !self.secret_fields.iter().any(|f| f == field) {
            tracing::warn!(plugin = %self.plugin, integration = %self.ctx.id, field, "plugin asked to verify against a field it did not declare secret");
            return None;
        }
        self.ctx.secrets.get(field).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::escape_log_text;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(
            escape_log_text(
                "ok\n2026-01-01T00:00:00Z INFO forged\r\t\u{1b}[31m\u{7f}\u{85}\u{202e}\u{2066}é"
            ),
            "ok\\n2026-01-01T00:00:00Z INFO forged\\r\\t\\x1b[31m\\x7f\\u{85}\\u{202e}\\u{2066}é"
        );
    }
}
