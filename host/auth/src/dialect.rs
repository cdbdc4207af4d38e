//! How one OAuth2 provider deviates from plain RFC 6749, as the plugin declares it.
//!
//! This crate names no vendor. Everything a provider does differently is a value of [`Dialect`]:
//! how the client authenticates at the token endpoint, how scopes are joined, extra authorize and
//! token parameters, whether refresh tokens work once, the lifetime to assume when a response has
//! no `expires_in`, which response fields are kept as auth context, how errors read (where the
//! code and description sit, an HTTP 200 that is an error, rules that tell one code's meanings
//! apart) and the extras of a JWT bearer assertion. [`Dialect::default`] is the RFC: a plugin (contract
//! `proofpix:plugin@0.3.0`, `oauth-dialect`) declares only its provider's quirks.
//!
//! Threat: a dialect comes from an untrusted plugin. Nothing in it can move a secret: templates
//! read only non-secret config (`{config.NAME}`), the hint texts are bounded and stripped of
//! control characters before they are shown, and a rule can only choose among the failure kinds
//! below, each of which the host handles the same way whoever declared it.

use std::collections::BTreeMap;

use crate::error::{AuthError, FieldKind, GrantKind};

/// Longest hint text taken from a dialect.
const MAX_HINT_CHARS: usize = 300;

/// How a client authenticates itself at the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1), the one method
    /// every server must support.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// What a token response's refresh token means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The same refresh token keeps working; a response without one keeps the old one.
    #[default]
    Reusable,
    /// Each refresh token works once. The new one is stored before it is used (as every token
    /// is), and a response without one leaves the integration without a refresh token rather
    /// than with a spent one.
    SingleUse,
}

/// What kind of failure a provider's error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The client id or secret is wrong, or the app is disabled.
    ClientRejected,
    /// The user's credentials are wrong, locked or expired.
    UserRejected,
    /// The signed assertion was refused (key, issuer, subject, clock).
    AssertionRejected,
    /// An administrator has not approved the app for this use.
    ConsentMissing,
    /// The requested scopes were refused.
    ScopeRejected,
    /// The stored grant is gone; a person must authorize again.
    ReauthorizationRequired,
    /// Any other refusal; the hint says what to change.
    Rejected,
    /// The provider is limiting requests; back off.
    RateLimited,
    /// Retry later.
    Transient,
}

/// One rule for reading an error: first match wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRule {
    /// The error code, exactly, or a prefix when it ends in `*` (`*` alone matches every code).
    pub code: String,
    /// The grants the rule applies to; empty for every grant.
    pub grants: Vec<GrantKind>,
    /// Text the description must contain, compared case-insensitively.
    pub description_contains: Option<String>,
    /// What the error is.
    pub kind: Failure,
    /// What the operator should change.
    pub hint: String,
}

impl ErrorRule {
    /// A rule for `code` on every grant.
    pub fn new(code: &str, kind: Failure, hint: &str) -> ErrorRule {
        ErrorRule {
            code: code.to_owned(),
            grants: Vec::new(),
            description_contains: None,
            kind,
            hint: hint.to_owned(),
        }
    }

    /// Restricts the rule to one grant.
    #[must_use]
    pub fn grant(mut self, grant: GrantKind) -> ErrorRule {
        self.grants.push(grant);
        self
    }

    /// Requires the description to contain `text`.
    #[must_use]
    pub fn when_description(mut self, text: &str) -> ErrorRule {
        self.description_contains = Some(text.to_owned());
        self
    }

    fn matches(&self, grant: GrantKind, code: &str, description: &str) -> bool {
        let code_ok = match self.code.strip_suffix('*') {
            Some(prefix) => code.starts_with(prefix),
            None => code == self.code,
        };
        code_ok
            && (self.grants.is_empty() || self.grants.contains(&grant))
            && self
                .description_contains
                .as_deref()
                .is_none_or(|needle| contains_ignore_case(description, needle))
    }
}

/// How a provider's errors read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorDialect {
    /// JSON pointer of the error code (default `/error`). A number is read as its digits.
    pub code_pointer: Option<String>,
    /// JSON pointer of the description (default `/error_description`).
    pub description_pointer: Option<String>,
    /// JSON pointer of a boolean that, when `false`, makes an HTTP 200 answer an error.
    pub ok_pointer: Option<String>,
    /// Rules, first match wins; an error no rule matches is read by its RFC 6749 §5.2 code.
    pub rules: Vec<ErrorRule>,
}

/// Where one auth-context value comes from in a token response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextField {
    /// The name the plugin reads it by (`{auth.NAME}`).
    pub name: String,
    /// JSON pointer into the response.
    pub pointer: String,
    /// When set, the value is a URL or path and the field is its path segment this far from the
    /// end (1 = the last segment).
    pub segment_from_end: Option<usize>,
}

impl ContextField {
    /// Parses a declared entry: `NAME` (the top-level field of that name) or `NAME=/pointer`.
    pub fn parse(entry: &str) -> Result<ContextField, AuthError> {
        let (name, pointer) = match entry.split_once('=') {
            Some((name, pointer)) => (name.trim(), pointer.trim().to_owned()),
            None => (entry.trim(), format!("/{}", entry.trim())),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !name_ok || !pointer.starts_with('/') {
            return Err(AuthError::InvalidConfig {
                reason: format!(
                    "the plugin's auth context field '{}' is not NAME or NAME=/json/pointer",
                    bounded(entry)
                ),
            });
        }
        Ok(ContextField {
            name: name.to_owned(),
            pointer,
            segment_from_end: None,
        })
    }

    pub(crate) fn read(&self, response: &serde_json::Value) -> Option<String> {
        let value = scalar_text(response.pointer(&self.pointer)?)?;
        match self.segment_from_end {
            None => Some(value),
            Some(n) => value
                .trim_end_matches('/')
                .rsplit('/')
                .nth(n.checked_sub(1)?)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }
}

/// Extras of a JWT bearer assertion (RFC 7523).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtDialect {
    /// Config field whose value goes into the JWS header's `kid` (a key file's own key id wins).
    pub key_id_field: Option<String>,
    /// Extra claims, values as templates over config.
    pub claims: Vec<(String, String)>,
    /// `exp` - `iat`, seconds.
    pub lifetime_secs: u32,
    /// Whether the token request also carries the client id and secret in its body.
    pub client_in_body: bool,
    /// Config field of the client id, when `client_in_body`.
    pub client_id_field: Option<String>,
    /// Secret field of the client secret, when `client_in_body`.
    pub client_secret_field: Option<String>,
    /// Whether the scopes go into a `scope` claim; otherwise into the form body's `scope`.
    pub scope_claim: bool,
}

impl Default for JwtDialect {
    fn default() -> Self {
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

/// How a provider deviates from RFC 6749; [`Dialect::default`] is the RFC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// What messages call the provider (the plugin's platform name).
    pub provider_name: String,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// How scopes are joined, in requests and when reading a response's `scope`.
    pub scope_separator: String,
    /// Extra authorize-URL parameters (templates over config).
    pub authorize_params: Vec<(String, String)>,
    /// Extra token-request parameters (templates over config), on every grant but refresh.
    pub token_params: Vec<(String, String)>,
    /// Whether refresh tokens work once.
    pub refresh_rotation: RefreshRotation,
    /// Lifetime to assume when a response has no `expires_in`; `None` uses the token until the
    /// platform rejects it.
    pub default_lifetime_secs: Option<u32>,
    /// Token-response values kept as non-secret auth context.
    pub context_fields: Vec<ContextField>,
    /// How errors read.
    pub errors: ErrorDialect,
    /// JWT bearer extras.
    pub jwt: JwtDialect,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            provider_name: "The OAuth2 provider".to_owned(),
            client_auth: ClientAuth::Basic,
            scope_separator: " ".to_owned(),
            authorize_params: Vec::new(),
            token_params: Vec::new(),
            refresh_rotation: RefreshRotation::Reusable,
            default_lifetime_secs: None,
            context_fields: Vec::new(),
            errors: ErrorDialect::default(),
            jwt: JwtDialect::default(),
        }
    }
}

/// An error as read from a provider's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadError {
    pub(crate) code: String,
    pub(crate) description: String,
}

impl Dialect {
    /// The RFC dialect under a provider's name.
    pub fn named(provider_name: &str) -> Dialect {
        Dialect {
            provider_name: bounded(provider_name),
            ..Dialect::default()
        }
    }

    /// Checks what a plugin declared before anything is sent.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidConfig`] for an empty scope separator, a pointer that is not a JSON
    /// pointer, a JWT lifetime of zero or over an hour, or a parameter that tries to read a secret.
    pub fn validate(&self) -> Result<(), AuthError> {
        let invalid = |reason: String| Err(AuthError::InvalidConfig { reason });
        if self.scope_separator.is_empty() {
            return invalid("the plugin's OAuth dialect has an empty scope separator".into());
        }
        for pointer in [
            &self.errors.code_pointer,
            &self.errors.description_pointer,
            &self.errors.ok_pointer,
        ]
        .into_iter()
        .flatten()
        {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return invalid(format!(
                    "the plugin's OAuth dialect names '{}' where a JSON pointer (/a/b) belongs",
                    bounded(pointer)
                ));
            }
        }
        if self.jwt.lifetime_secs == 0 || self.jwt.lifetime_secs > 3600 {
            return invalid(format!(
                "the plugin's JWT assertion lifetime of {} s is outside 1..=3600",
                self.jwt.lifetime_secs
            ));
        }
        for (_, value) in self
            .authorize_params
            .iter()
            .chain(&self.token_params)
            .chain(&self.jwt.claims)
        {
            if value.contains("{secret.") {
                return invalid(
                    "the plugin's OAuth dialect puts a secret into a parameter or claim; secrets go only where the auth scheme declares them".into(),
                );
            }
        }
        Ok(())
    }

    /// The name messages use, bounded and without control characters.
    pub(crate) fn name(&self) -> String {
        bounded(&self.provider_name)
    }

    /// Reads the code and description of an error body, or `None` when the body does not say
    /// what went wrong.
    pub(crate) fn read_error(&self, body: &serde_json::Value) -> Option<ReadError> {
        let code = body
            .pointer(self.errors.code_pointer.as_deref().unwrap_or("/error"))
            .and_then(scalar_text)
            .or_else(|| body.pointer("/error").and_then(scalar_text))?;
        let description = body
            .pointer(
                self.errors
                    .description_pointer
                    .as_deref()
                    .unwrap_or("/error_description"),
            )
            .and_then(scalar_text)
            .unwrap_or_default();
        Some(ReadError { code, description })
    }

    /// Whether an HTTP 200 body is really an error (`ok_pointer` is `false`).
    pub(crate) fn is_error_ok(&self, body: &serde_json::Value) -> bool {
        self.errors
            .ok_pointer
            .as_deref()
            .and_then(|p| body.pointer(p))
            .is_some_and(|v| v == &serde_json::Value::Bool(false))
    }

    /// Turns a provider's error into an [`AuthError`]. `detail` is the already-sanitized
    /// `code: description` text to quote.
    pub(crate) fn classify(
        &self,
        grant: GrantKind,
        error: &ReadError,
        detail: String,
    ) -> AuthError {
        let provider = self.name();
        if let Some(rule) = self
            .errors
            .rules
            .iter()
            .find(|r| r.matches(grant, &error.code, &error.description))
        {
            return failure(rule.kind, provider, bounded(&rule.hint), detail);
        }
        let (kind, hint) = rfc_reading(&error.code, grant);
        failure(kind, provider, hint.to_owned(), detail)
    }

    /// Expands `{config.NAME}` in a declared parameter or claim value.
    pub(crate) fn expand(
        template: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String, AuthError> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{config.") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "{config.".len()..];
            let Some(end) = after.find('}') else {
                return Err(AuthError::InvalidConfig {
                    reason: format!(
                        "the plugin's OAuth parameter '{}' has an unclosed {{config.",
                        bounded(template)
                    ),
                });
            };
            let field = &after[..end];
            let value = config
                .get(field)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| AuthError::MissingField {
                    field: field.to_owned(),
                    kind: FieldKind::Config,
                })?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Expands a list of declared pairs.
    pub(crate) fn expand_all(
        pairs: &[(String, String)],
        config: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, AuthError> {
        pairs
            .iter()
            .map(|(k, v)| Ok((k.clone(), Dialect::expand(v, config)?)))
            .collect()
    }

    /// Splits a response's `scope` by the separator (whitespace is always a separator too).
    pub(crate) fn split_scopes(&self, scope: &str) -> Vec<String> {
        scope
            .split(self.scope_separator.as_str())
            .flat_map(str::split_whitespace)
            .map(str::to_owned)
            .collect()
    }
}

/// RFC 6749 §5.2 meanings, for errors no rule matches.
fn rfc_reading(code: &str, grant: GrantKind) -> (Failure, &'static str) {
    use Failure as F;
    match (code, grant) {
        ("invalid_client", _) => (
            F::ClientRejected,
            "the client id or client secret is wrong; copy both from the app registration again",
        ),
        ("invalid_grant", GrantKind::Refresh) => (
            F::ReauthorizationRequired,
            "the refresh token expired, was revoked or was already used; authorize the integration again",
        ),
        ("invalid_grant", GrantKind::Password) => {
            (F::UserRejected, "the username or password is wrong")
        }
        ("invalid_grant", GrantKind::JwtBearer) => (
            F::AssertionRejected,
            "check the issuer, subject, audience and private key, and that the daemon's clock is correct",
        ),
        ("invalid_grant", GrantKind::AuthorizationCode) => (
            F::Rejected,
            "the authorization code was not accepted (expired, already used, or a different redirect URL); start the authorization again",
        ),
        ("invalid_scope", _) => (
            F::ScopeRejected,
            "the app is not allowed these scopes; grant them in the app registration or remove them",
        ),
        ("unauthorized_client", _) => (
            F::ConsentMissing,
            "the app is not allowed to use this flow; enable it in the app registration",
        ),
        ("temporarily_unavailable", _) => (
            F::Transient,
            "the provider is temporarily unable to issue tokens; this is retried",
        ),
        ("slow_down", _) => (
            F::RateLimited,
            "the provider asked to slow down; this is retried",
        ),
        _ => (
            F::Rejected,
            "check the integration's settings against the provider's app registration",
        ),
    }
}

fn failure(kind: Failure, provider: String, hint: String, detail: String) -> AuthError {
    use AuthError as E;
    match kind {
        Failure::ClientRejected => E::ClientRejected {
            provider,
            hint,
            detail,
        },
        Failure::UserRejected => E::UserRejected {
            provider,
            hint,
            detail,
        },
        Failure::AssertionRejected => E::AssertionRejected {
            provider,
            hint,
            detail,
        },
        Failure::ConsentMissing => E::ConsentMissing {
            provider,
            hint,
            detail,
        },
        Failure::ScopeRejected => E::ScopeRejected {
            provider,
            hint,
            detail,
        },
        Failure::ReauthorizationRequired => E::ReauthorizationRequired {
            provider,
            hint,
            detail,
        },
        Failure::Rejected => E::Rejected {
            provider,
            hint,
            detail,
        },
        Failure::RateLimited | Failure::Transient => E::TemporarilyRefused {
            provider,
            hint,
            detail,
        },
    }
}

/// A JSON string, number or boolean as text.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Plugin-declared text as shown to people: first line, no control characters, bounded.
pub(crate) fn bounded(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_HINT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(d: &Dialect, body: serde_json::Value) -> ReadError {
        d.read_error(&body).expect("an error")
    }

    #[test]
    fn the_rfc_dialect_reads_rfc_errors_by_code_and_grant() {
        let d = Dialect::named("Acme");
        let cases = [
            (
                "invalid_client",
                GrantKind::ClientCredentials,
                "client_rejected",
            ),
            (
                "invalid_grant",
                GrantKind::Refresh,
                "reauthorization_required",
            ),
            ("invalid_grant", GrantKind::Password, "user_rejected"),
            ("invalid_grant", GrantKind::JwtBearer, "assertion_rejected"),
            (
                "invalid_scope",
                GrantKind::ClientCredentials,
                "scope_rejected",
            ),
            (
                "unauthorized_client",
                GrantKind::JwtBearer,
                "consent_missing",
            ),
            (
                "temporarily_unavailable",
                GrantKind::Refresh,
                "temporarily_refused",
            ),
            ("something_else", GrantKind::Refresh, "rejected"),
        ];
        for (code, grant, expected) in cases {
            let e = read(&d, json!({ "error": code }));
            let err = d.classify(grant, &e, "detail".into());
            assert_eq!(err.kind(), expected, "{code} {grant:?}");
            assert!(err.to_string().starts_with("Acme"), "{err}");
        }
        assert!(
            d.classify(
                GrantKind::Refresh,
                &read(&d, json!({"error": "temporarily_unavailable"})),
                String::new()
            )
            .is_transient()
        );
    }

    #[test]
    fn rules_match_by_code_prefix_grant_and_description_first_match_wins() {
        let mut d = Dialect::named("Acme");
        d.errors.rules = vec![
            ErrorRule::new("invalid_grant", Failure::ConsentMissing, "approve the app")
                .when_description("NOT APPROVED"),
            ErrorRule::new("invalid_grant", Failure::AssertionRejected, "check the key")
                .grant(GrantKind::JwtBearer),
            ErrorRule::new("E42*", Failure::RateLimited, "slow down"),
        ];
        let cases = [
            (
                json!({"error": "invalid_grant", "error_description": "user not approved"}),
                GrantKind::Password,
                "consent_missing",
            ),
            (
                json!({"error": "invalid_grant", "error_description": "bad"}),
                GrantKind::JwtBearer,
                "assertion_rejected",
            ),
            (
                json!({"error": "invalid_grant", "error_description": "bad"}),
                GrantKind::Password,
                "user_rejected",
            ),
            (
                json!({"error": "E4217"}),
                GrantKind::Refresh,
                "temporarily_refused",
            ),
        ];
        for (body, grant, expected) in cases {
            let err = d.classify(grant, &read(&d, body.clone()), "d".into());
            assert_eq!(err.kind(), expected, "{body} {grant:?}");
        }
    }

    #[test]
    fn pointers_find_codes_anywhere_and_numbers_read_as_digits() {
        let mut d = Dialect::named("Acme");
        d.errors.code_pointer = Some("/errors/0/code".into());
        d.errors.description_pointer = Some("/errors/0/message".into());
        d.errors.rules = vec![ErrorRule::new("1001", Failure::ClientRejected, "wrong key")];
        let e = read(
            &d,
            json!({"errors": [{"code": 1001, "message": "Bad key"}]}),
        );
        assert_eq!(e.code, "1001");
        assert_eq!(e.description, "Bad key");
        let err = d.classify(GrantKind::ClientCredentials, &e, "1001: Bad key".into());
        assert_eq!(err.kind(), "client_rejected");
        assert!(err.to_string().contains("wrong key"), "{err}");
        // The RFC field is the fallback when the declared pointer finds nothing.
        assert_eq!(
            read(&d, json!({"error": "invalid_client"})).code,
            "invalid_client"
        );
        assert!(
            d.read_error(&json!({"message": "no code at all"}))
                .is_none()
        );
    }

    #[test]
    fn an_ok_pointer_makes_an_http_200_an_error() {
        let mut d = Dialect::named("Chat");
        assert!(!d.is_error_ok(&json!({"ok": false})));
        d.errors.ok_pointer = Some("/ok".into());
        assert!(d.is_error_ok(&json!({"ok": false, "error": "invalid_code"})));
        assert!(!d.is_error_ok(&json!({"ok": true})));
        assert!(!d.is_error_ok(&json!({"access_token": "x"})));
    }

    #[test]
    fn declared_text_is_bounded_and_cannot_forge_lines() {
        let mut d = Dialect::named("Evil\nSecond line");
        d.errors.rules = vec![ErrorRule::new(
            "*",
            Failure::Rejected,
            &format!("{}\u{1b}[31m\nforged: line", "x".repeat(1000)),
        )];
        let err = d.classify(
            GrantKind::Refresh,
            &read(&d, json!({"error": "x"})),
            "d".into(),
        );
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        assert!(text.starts_with("Evil "), "{text}");
        assert!(text.len() < 1000, "{}", text.len());
    }

    #[test]
    fn templates_read_config_and_refuse_secrets() {
        let config = BTreeMap::from([("enterprise".to_owned(), "123".to_owned())]);
        assert_eq!(
            Dialect::expand("ent-{config.enterprise}", &config).unwrap(),
            "ent-123"
        );
        assert_eq!(
            Dialect::expand("{config.missing}", &config)
                .unwrap_err()
                .kind(),
            "missing_field"
        );
        let mut d = Dialect {
            token_params: vec![("x".into(), "{secret.client_secret}".into())],
            ..Dialect::default()
        };
        assert_eq!(d.validate().unwrap_err().kind(), "invalid_config");
        d.token_params.clear();
        d.jwt.lifetime_secs = 0;
        assert_eq!(d.validate().unwrap_err().kind(), "invalid_config");
    }

    #[test]
    fn context_fields_read_names_pointers_and_path_segments() {
        let response = json!({
            "instance_url": "https://acme.example",
            "team": {"id": "T1"},
            "id": "https://login.example/id/00Dorg/005user",
            "n": 7
        });
        let f = ContextField::parse("instance_url").unwrap();
        assert_eq!(f.read(&response).as_deref(), Some("https://acme.example"));
        let f = ContextField::parse("team_id=/team/id").unwrap();
        assert_eq!(f.read(&response).as_deref(), Some("T1"));
        let f = ContextField::parse("n").unwrap();
        assert_eq!(f.read(&response).as_deref(), Some("7"));
        let org = ContextField {
            name: "organization_id".into(),
            pointer: "/id".into(),
            segment_from_end: Some(2),
        };
        assert_eq!(org.read(&response).as_deref(), Some("00Dorg"));
        assert!(ContextField::parse("bad name=/x").is_err());
        assert!(ContextField::parse("x=y").is_err());
    }

    #[test]
    fn scopes_split_on_the_separator_and_whitespace() {
        let mut d = Dialect::default();
        assert_eq!(d.split_scopes("a b"), ["a", "b"]);
        d.scope_separator = ",".into();
        assert_eq!(d.split_scopes("a,b, c"), ["a", "b", "c"]);
    }
}
