//! Declaring how a platform's OAuth2 server talks (contract 0.3), and the
//! 0.3 answers a source gives: not ready yet, written or skipped.
//!
//! The host runs every OAuth2 flow itself and names no vendor: whatever the
//! platform's token endpoint does differently from RFC 6749 is declared here,
//! starting from [`OauthDialect::rfc`]:
//!
//! ```
//! use proofpix_sdk::prelude::*;
//!
//! // A provider that wants credentials in the body, joins scopes with commas,
//! // answers errors as HTTP 200 `{"ok": false, "error": {"code": ...}}`, and
//! // issues tokens without `expires_in` that last 15 minutes.
//! let dialect = OauthDialect::rfc()
//!     .client_auth(ClientAuth::Body)
//!     .scope_separator(",")
//!     .default_lifetime_secs(900)
//!     .context_field("workspace_id=/workspace/id")
//!     .error_pointers(Some("/error/code"), Some("/error/message"), Some("/ok"))
//!     .error_rule(
//!         "E_KEY_REVOKED",
//!         &[],
//!         None,
//!         AuthFailure::ClientRejected,
//!         "the API client was revoked; create a new one under Admin > API clients",
//!     );
//! ```

use crate::{
    AuthErrorDialect, AuthErrorRule, AuthFailure, ClientAuth, DownloadAnswer, DownloadSpec,
    GrantKind, JwtDialect, NotReady, OauthDialect, RefreshRotation, WriteOutcome, WriteResult,
};

impl OauthDialect {
    /// Plain RFC 6749: client credentials in HTTP Basic, scopes joined by a
    /// space, reusable refresh tokens, no assumed lifetime, no auth context,
    /// errors read from `error` and `error_description`.
    pub fn rfc() -> Self {
        OauthDialect {
            client_auth: ClientAuth::Basic,
            scope_separator: " ".into(),
            authorize_params: Vec::new(),
            token_params: Vec::new(),
            refresh_rotation: RefreshRotation::Reusable,
            default_lifetime_secs: None,
            context_fields: Vec::new(),
            errors: AuthErrorDialect {
                code_pointer: None,
                description_pointer: None,
                ok_pointer: None,
                rules: Vec::new(),
            },
            jwt: None,
        }
    }

    /// Where the client id and secret go at the token endpoint.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// How scopes are joined (and split in a token response).
    pub fn scope_separator(mut self, separator: &str) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// An extra authorize-URL parameter; the value may use `{config.NAME}`.
    pub fn authorize_param(mut self, name: &str, value: &str) -> Self {
        self.authorize_params.push((name.into(), value.into()));
        self
    }

    /// An extra token-request parameter on every grant; the value may use
    /// `{config.NAME}`.
    pub fn token_param(mut self, name: &str, value: &str) -> Self {
        self.token_params.push((name.into(), value.into()));
        self
    }

    /// Each refresh token works once.
    pub fn single_use_refresh_tokens(mut self) -> Self {
        self.refresh_rotation = RefreshRotation::SingleUse;
        self
    }

    /// The lifetime to assume when a token response has no `expires_in`.
    pub fn default_lifetime_secs(mut self, secs: u32) -> Self {
        self.default_lifetime_secs = Some(secs);
        self
    }

    /// A token-response value kept as auth context: `NAME` (a top-level
    /// field) or `NAME=/json/pointer`. Read it with
    /// [`crate::config::auth_context`] or `{auth.NAME}` in endpoint URLs.
    pub fn context_field(mut self, entry: &str) -> Self {
        self.context_fields.push(entry.into());
        self
    }

    /// Where an error's code, description and `ok` flag sit (JSON pointers;
    /// `None` keeps `/error`, `/error_description` and no flag).
    pub fn error_pointers(
        mut self,
        code: Option<&str>,
        description: Option<&str>,
        ok: Option<&str>,
    ) -> Self {
        self.errors.code_pointer = code.map(String::from);
        self.errors.description_pointer = description.map(String::from);
        self.errors.ok_pointer = ok.map(String::from);
        self
    }

    /// A rule for reading an error, first match wins: `code` exactly (or a
    /// prefix ending in `*`), on `grants` (all when empty), when the
    /// description contains `description_contains`; `hint` tells the operator
    /// what to change.
    pub fn error_rule(
        mut self,
        code: &str,
        grants: &[GrantKind],
        description_contains: Option<&str>,
        kind: AuthFailure,
        hint: &str,
    ) -> Self {
        self.errors.rules.push(AuthErrorRule {
            code: code.into(),
            grants: grants.to_vec(),
            description_contains: description_contains.map(String::from),
            kind,
            hint: hint.into(),
        });
        self
    }

    /// JWT bearer extras.
    pub fn jwt(mut self, jwt: JwtDialect) -> Self {
        self.jwt = Some(jwt);
        self
    }
}

impl JwtDialect {
    /// A five-minute assertion with only the registered claims, scopes in the
    /// form body, no client credentials in the body, no `kid`.
    pub fn rfc() -> Self {
        JwtDialect {
            key_id_field: None,
            claims: Vec::new(),
            lifetime_secs: 300,
            client_in_body: false,
            client_id_field: None,
            client_secret_field: None,
            scope_claim: false,
        }
    }
}

impl From<DownloadSpec> for DownloadAnswer {
    fn from(spec: DownloadSpec) -> Self {
        DownloadAnswer::Ready(spec)
    }
}

impl DownloadAnswer {
    /// The platform does not have the bytes yet (a fresh upload still being
    /// processed): the host retries after `retry_after_ms` (or its back-off)
    /// and never records a risk for the file meanwhile.
    pub fn not_ready(retry_after_ms: Option<u64>, reason: impl Into<String>) -> Self {
        DownloadAnswer::NotReady(NotReady {
            retry_after_ms,
            reason: reason.into(),
        })
    }
}

impl WriteOutcome {
    /// The result was written to the platform.
    pub fn written(file_id: impl Into<String>) -> Self {
        WriteOutcome {
            file_id: file_id.into(),
            outcome: Ok(WriteResult::Written),
        }
    }

    /// The result was deliberately not written, with why (write-back is
    /// off, nothing to mark, the item is gone).
    pub fn skipped(file_id: impl Into<String>, reason: impl Into<String>) -> Self {
        WriteOutcome {
            file_id: file_id.into(),
            outcome: Ok(WriteResult::Skipped(reason.into())),
        }
    }
}

impl crate::Digest {
    /// A digest of exactly these alerts, with totals counted from them and no
    /// window (for tests and for plugins that build their own).
    pub fn of(alerts: Vec<crate::FileAlert>) -> Self {
        let mut by_risk: Vec<(crate::RiskLevel, u32)> = Vec::new();
        for a in &alerts {
            match by_risk.iter_mut().find(|(r, _)| *r == a.risk) {
                Some((_, n)) => *n += 1,
                None => by_risk.push((a.risk, 1)),
            }
        }
        crate::Digest {
            total: u32::try_from(alerts.len()).unwrap_or(u32::MAX),
            by_risk,
            alerts,
            window_start: String::new(),
            window_end: String::new(),
        }
    }

    /// How many files the window holds: `total`, or the alerts carried when
    /// a host sent fewer totals than alerts.
    pub fn total_files(&self) -> usize {
        usize::try_from(self.total)
            .unwrap_or(usize::MAX)
            .max(self.alerts.len())
    }

    /// How many files of the window are at `level`.
    pub fn count(&self, level: crate::RiskLevel) -> usize {
        let declared: u32 = self
            .by_risk
            .iter()
            .filter(|(r, _)| *r == level)
            .map(|(_, n)| *n)
            .sum();
        let carried = self.alerts.iter().filter(|a| a.risk == level).count();
        usize::try_from(declared).unwrap_or(usize::MAX).max(carried)
    }
}
