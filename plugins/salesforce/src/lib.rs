//! The Salesforce connector: finds images in Salesforce Files and legacy Attachments linked to
//! the records in scope (Cases by default), lets the host analyse them, and writes one result
//! record per file version into a custom object.
//!
//! - **auth**: the host runs one of four OAuth2 flows, chosen per integration ([`settings`]);
//!   the plugin never sees a secret, only `{auth.instance_url}`, the endpoint it declares with
//!   credentials.
//! - **check** verifies the API version, the session and the daily allowance, that the user can
//!   read Files (and Attachments), that the scope is valid SOQL, and that the result object exists
//!   with its fields, each failure saying what to fix.
//! - **discover** lists ([`discovery`]): full, then incremental on `SystemModstamp`.
//! - **download** points the host at `VersionData` / `Body` on the instance.
//! - **write-back** creates result records through sObject Collections ([`writeback`]).
//! - **events**: Outbound Messages, verified by a token in the hook URL and the org id, are
//!   acknowledged and trigger an incremental sync ([`events`]).
//!
//! Threats: a hostile or broken API (answers are parsed defensively, a bad page fails the page),
//! an operator's misconfiguration (messages name the field), and the daily API limit (403
//! `REQUEST_LIMIT_EXCEEDED` is back-off, never a failure of the file).

mod api;
mod discovery;
mod events;
pub mod settings;
mod time;
mod writeback;

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;
use serde_json::Value;

use settings::Settings;

struct Salesforce;

impl Connector for Salesforce {
    fn describe() -> PluginInfo {
        let mut builder = PluginInfo::builder("salesforce", env!("CARGO_PKG_VERSION"), "Salesforce", "Salesforce")
            .description(
                "Scans images in Salesforce Files and Attachments linked to your records (Cases by default) for privacy risks in their metadata, and records each result in a custom object.",
            )
            .capability(Capability::Source)
            .capability(Capability::Events)
            .endpoint(
                Endpoint::new("instance", "{auth.instance_url}")
                    .with_credentials()
                    .purpose("the org's REST API: queries, file downloads, result records"),
            )
            .oauth_dialect(oauth_dialect())
            .auth(settings::auth_scheme())
            .write_back_batch_size(writeback::MAX_RECORDS_PER_REQUEST as u32);
        for f in settings::fields() {
            builder = builder.field(f);
        }
        builder.build()
    }

    fn validate_config() -> Result<(), PluginError> {
        settings::check_flow()?;
        Settings::load().map(|_| ())
    }

    fn check() -> Result<CheckReport, PluginError> {
        check()
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        discovery::discover(cursor)
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        discovery::download(file).map(Into::into)
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        writeback::write_back(results)
    }

    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        events::handle(&request)
    }
}

export_connector!(Salesforce);

/// The connection test, step by step; the first failure is the answer.
fn check() -> Result<CheckReport, PluginError> {
    let s = Settings::load()?;
    let instance = api::instance_url()?;
    let mut details = Vec::new();

    let versions: Value = api::send(
        Request::get(&format!("{instance}/services/data/")),
        "listing API versions",
    )?
    .json()?;
    let offered: Vec<&str> = versions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["version"].as_str())
        .collect();
    if !offered.contains(&s.api_version.as_str()) {
        return Err(PluginError::invalid_config(
            Some("api_version"),
            format!(
                "this org does not offer API version {}; set `api_version` to one it offers (newest: {})",
                s.api_version,
                offered.last().copied().unwrap_or("none listed")
            ),
        ));
    }
    details.push(format!("API version {} available", s.api_version));

    let base = api::data_base(&s)?;
    let limits: Value = api::send(
        Request::get(&format!("{base}/limits")),
        "reading the org's limits",
    )?
    .json()?;
    if let (Some(max), Some(left)) = (
        limits["DailyApiRequests"]["Max"].as_u64(),
        limits["DailyApiRequests"]["Remaining"].as_u64(),
    ) {
        details.push(format!("{left} of {max} daily API requests left"));
    }

    api::query(&s, "SELECT Id FROM ContentVersion LIMIT 1", "reading Salesforce Files").map_err(|e| match e {
        PluginError::InvalidConfig(p) => PluginError::invalid_config(
            None,
            format!(
                "the integration user cannot query ContentVersion (Salesforce Files): {}; give it access to Files (a permission set with API Enabled and Query All Files or View All Data, or sharing on the records)",
                p.message
            ),
        ),
        other => other,
    })?;
    details.push("can query ContentVersion".into());

    if s.attachments {
        api::query(&s, "SELECT Id FROM Attachment LIMIT 1", "reading attachments").map_err(|e| match e {
            PluginError::InvalidConfig(p) => PluginError::invalid_config(
                Some("include_attachments"),
                format!("the integration user cannot query Attachment: {}; give it read access or turn off `include_attachments`", p.message),
            ),
            other => other,
        })?;
        details.push("can query Attachment".into());
    }

    api::query(&s, &discovery::scope_probe(&s), "checking the scope").map_err(|e| match e {
        PluginError::InvalidConfig(p) => PluginError::invalid_config(
            Some(if s.scope_where.is_some() {
                "scope_where"
            } else {
                "scope_object"
            }),
            format!(
                "Salesforce rejected the scope {}{}: {}",
                s.scope_object,
                s.scope_where
                    .as_deref()
                    .map(|w| format!(" WHERE {w}"))
                    .unwrap_or_default(),
                p.message
            ),
        ),
        other => other,
    })?;
    details.push(format!(
        "scope {}{} is valid SOQL",
        s.scope_object,
        s.scope_where
            .as_deref()
            .map(|w| format!(" WHERE {w}"))
            .unwrap_or_default()
    ));

    if s.write_results {
        let info = writeback::object_info(&s, true)?;
        let optional: Vec<&str> = writeback::OPTIONAL_FIELDS
            .iter()
            .copied()
            .filter(|f| !info.fields.contains_key(*f))
            .collect();
        let mut d = format!("result object {} is writable", info.name);
        if !optional.is_empty() {
            d.push_str(&format!(
                " (optional fields not present: {})",
                optional.join(", ")
            ));
        }
        details.push(d);
    } else {
        details.push("write-back is off".into());
    }

    let account = match identity(config::auth_context("id").as_deref()) {
        (Some(u), Some(o)) => Some(format!("user {u} in org {o} ({} flow)", settings::flow())),
        (Some(u), None) => Some(format!("user {u}")),
        _ => None,
    };
    Ok(CheckReport { account, details })
}

/// The user and org ids at the end of Salesforce's identity URL (`.../id/{org}/{user}`).
fn identity(id_url: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(url) = id_url else {
        return (None, None);
    };
    let mut parts = url.trim_end_matches('/').rsplit('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(user), Some(org), Some("id")) if !user.is_empty() && !org.is_empty() => {
            (Some(user.to_owned()), Some(org.to_owned()))
        }
        _ => (None, None),
    }
}

/// How Salesforce's OAuth2 server talks (contract 0.3; reference `saas-apis.md` §1.1): tokens
/// without `expires_in` that last the org's session timeout (2 h by default; a shorter one still
/// works, because a 401 refreshes), the org's `instance_url` and identity URL as auth context,
/// assertions that must expire within about three minutes, and `invalid_grant` meaning six
/// different things told apart by description.
fn oauth_dialect() -> OauthDialect {
    use AuthFailure as F;
    use GrantKind as G;
    const NOT_APPROVED: &str = "the user is not pre-authorized for the connected app; set 'Admin approved users are pre-authorized' and add the user's profile or permission set to the app";
    OauthDialect::rfc()
        .client_auth(ClientAuth::Body)
        .default_lifetime_secs(7200)
        .context_field("instance_url")
        .context_field("id")
        .context_field("issued_at")
        .jwt(JwtDialect {
            lifetime_secs: 180,
            scope_claim: true,
            ..JwtDialect::rfc()
        })
        .error_rule("invalid_client_id", &[], None, F::ClientRejected, "the consumer key is not known; copy the Consumer Key from the connected app, and check login vs test host (production vs sandbox)")
        .error_rule("invalid_client", &[], None, F::ClientRejected, "the consumer secret is wrong; copy the Consumer Secret from the connected app again")
        .error_rule("invalid_grant", &[], Some("hasn't approved"), F::ConsentMissing, NOT_APPROVED)
        .error_rule("invalid_grant", &[], Some("not approved"), F::ConsentMissing, NOT_APPROVED)
        .error_rule("invalid_grant", &[], Some("inactive user"), F::UserRejected, "the Salesforce user is inactive; activate it or configure another user")
        .error_rule("invalid_grant", &[G::Password], Some("authentication failure"), F::UserRejected, "wrong username, password or security token; Salesforce wants the password followed by the user's current security token (reset it under Settings > Reset My Security Token), and the org must allow the username-password flow")
        .error_rule("invalid_grant", &[], Some("authentication failure"), F::UserRejected, "the user's login was refused; check the username and that the user may log in")
        .error_rule("invalid_grant", &[], Some("expired access/refresh token"), F::ReauthorizationRequired, "the refresh token expired or was revoked; authorize the integration again")
        .error_rule("invalid_grant", &[G::JwtBearer], None, F::AssertionRejected, "check that the certificate uploaded to the connected app matches the private key, that the audience is https://login.salesforce.com (https://test.salesforce.com for sandboxes), that the username exists, and that the daemon's clock is correct")
        .error_rule("invalid_grant", &[G::AuthorizationCode], None, F::Rejected, "the authorization code was not accepted (expired, already used, or a different redirect URL); start the authorization again")
        .error_rule("unsupported_grant_type", &[], None, F::Rejected, "the org does not allow this OAuth flow for the connected app; enable it in the app's OAuth policies")
}

#[cfg(test)]
mod identity_tests {
    use super::identity;

    #[test]
    fn the_identity_url_names_the_org_and_the_user() {
        assert_eq!(
            identity(Some(
                "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001SwiU"
            )),
            (
                Some("005xx000001SwiU".into()),
                Some("00Dxx0000001gPL".into())
            )
        );
        assert_eq!(identity(Some("https://example.com/other")), (None, None));
        assert_eq!(identity(None), (None, None));
    }
}
