//! The integration's configuration: the setup form, the authentication flow it selects, and the
//! offline checks of `validate-config`.
//!
//! **One plugin, four flows.** Contract 0.1 has a single `auth` per manifest, read by `describe`.
//! This plugin declares the reserved choice field [`proofpix_sdk::AUTH_FLOW_FIELD`]
//! (`auth_flow`); the host then describes the plugin again with each integration's config and
//! uses *that* manifest's `auth`. `describe` therefore reads `auth_flow` (and the login host)
//! through the `config` import; without config (the host's first, per-version `describe`) it
//! answers the default, JWT bearer, which is what Salesforce recommends for server integrations.
//!
//! | `auth_flow` | host performs | needs |
//! |---|---|---|
//! | `jwt-bearer` (default) | RS256 assertion, no secret sent | `client_id`, `username`, secret `private_key` |
//! | `password` | username-password grant, password + security token | `client_id`, `username`, secrets `client_secret`, `password`, `security_token` |
//! | `client-credentials` | client-credentials grant on the My Domain host | `client_id`, `login_url` (My Domain), secret `client_secret` |
//! | `authorization-code` | web-server flow with PKCE and refresh | `client_id`, secret `client_secret`, `proofpix integration authorize` once |
//!
//! Threat: the operator's typo. Everything that can be checked without the network is checked
//! here, with a message naming the field; secrets cannot be (the plugin never sees them), so a
//! missing secret shows up in the connection test's credentials step, named by the host.

use proofpix_sdk::prelude::*;
use proofpix_sdk::settings::{extensions, in_range};

/// Production login host (and JWT audience).
pub const PRODUCTION_LOGIN: &str = "https://login.salesforce.com";
/// Sandbox login host (and JWT audience).
pub const SANDBOX_LOGIN: &str = "https://test.salesforce.com";
/// Default API version. 60.0 is the version the reference's examples use; every org of the
/// last few years offers it.
pub const DEFAULT_API_VERSION: &str = "60.0";
/// Default result object.
pub const DEFAULT_RESULT_OBJECT: &str = "ProofPix_Analysis__c";
/// Image extensions listed by default (`FileExtension` is more predictable than `FileType`,
/// reference §1.2).
pub const DEFAULT_EXTENSIONS: &str = "jpg,jpeg,png,gif,heic,heif,tif,tiff,bmp,webp";

/// The authentication flows.
pub const FLOWS: &[&str] = &[
    "jwt-bearer",
    "password",
    "client-credentials",
    "authorization-code",
];

/// The form.
pub fn fields() -> Vec<ConfigField> {
    vec![
        ConfigField::choice(
            proofpix_sdk::AUTH_FLOW_FIELD,
            "Authentication flow",
            "How ProofPix signs in. jwt-bearer (recommended): a connected app with a certificate, the integration user pre-authorized; no password is stored. password: username, password and security token (the org must allow the username-password flow). client-credentials: the connected app's run-as user; needs your My Domain URL as the login URL. authorization-code: a person approves access once in a browser (`proofpix integration authorize`).",
            FLOWS,
        )
        .default("jwt-bearer"),
        ConfigField::choice(
            "environment",
            "Org type",
            "production signs in at login.salesforce.com; sandbox at test.salesforce.com. Also the audience of JWT assertions.",
            &["production", "sandbox"],
        )
        .default("production"),
        ConfigField::url(
            "login_url",
            "Login URL",
            "Leave empty for login.salesforce.com / test.salesforce.com. Set your My Domain URL (https://yourcompany.my.salesforce.com) for the client-credentials flow or when your org blocks the generic hosts.",
        )
        .optional()
        .placeholder("https://yourcompany.my.salesforce.com"),
        ConfigField::text(
            "client_id",
            "Consumer key",
            "The connected app's consumer key (Setup → App Manager → your app → View → Manage Consumer Details).",
        ),
        ConfigField::secret(
            "client_secret",
            "Consumer secret",
            "The connected app's consumer secret. Needed by the password, client-credentials and authorization-code flows.",
        )
        .optional(),
        ConfigField::text(
            "username",
            "Integration user",
            "The Salesforce username ProofPix acts as (jwt-bearer and password flows), e.g. proofpix@yourcompany.com.",
        )
        .optional(),
        ConfigField::secret("password", "Password", "The integration user's password (password flow).").optional(),
        ConfigField::secret(
            "security_token",
            "Security token",
            "Appended to the password (password flow). Reset it under the user's Settings → Reset My Security Token; leave empty only if the org trusts ProofPix's IP range.",
        )
        .optional(),
        ConfigField::secret(
            "private_key",
            "Private key (PEM)",
            "The RSA private key whose certificate is uploaded to the connected app (jwt-bearer flow).",
        )
        .optional(),
        ConfigField::text(
            "api_version",
            "API version",
            "The REST API version, e.g. 60.0. The connection test lists the versions your org offers.",
        )
        .default(DEFAULT_API_VERSION),
        ConfigField::text(
            "scope_object",
            "Records to scan",
            "The object whose files and attachments are scanned: Case, Account, WorkOrder or a custom object (My_Object__c).",
        )
        .default("Case"),
        ConfigField::text(
            "scope_where",
            "Record filter",
            "An optional SOQL condition on those records, without WHERE, e.g. Status != 'Closed' AND CreatedDate = LAST_N_DAYS:90.",
        )
        .optional(),
        ConfigField::boolean(
            "include_attachments",
            "Include legacy attachments",
            "Also scan Notes & Attachments (the Attachment object) on those records.",
            true,
        ),
        ConfigField::list(
            "file_extensions",
            "Image extensions",
            "Which Salesforce Files count as images, by extension.",
        )
        .default(DEFAULT_EXTENSIONS),
        ConfigField::boolean(
            "write_results",
            "Write results to Salesforce",
            "Create one result record per analysed file version in the result object.",
            true,
        ),
        ConfigField::text(
            "result_object",
            "Result object",
            "API name of the custom object results are written to. It needs the fields File_Id__c (Text 18), Risk_Level__c (Picklist none/low/medium/high/critical), Risk_Score__c (Number 3,0), Findings_Summary__c (Long Text Area), Analysed_At__c (Date/Time) and File_Link__c (URL); File_Version__c, File_Name__c, Related_Record__c and Policy_Version__c are written when they exist.",
        )
        .default(DEFAULT_RESULT_OBJECT),
        ConfigField::secret(
            "outbound_token",
            "Outbound message token",
            "For Outbound Messages (optional): a random string that ends the Endpoint URL you give the outbound message in Salesforce, https://<proofpix>/hooks/<integration>/<token>. Messages to any other URL are refused. Without it, changes are seen at each scheduled sync.",
        )
        .optional(),
        ConfigField::text(
            "organization_id",
            "Organization ID",
            "For Outbound Messages (optional): your org's ID (Setup → Company Information), 15 or 18 characters. Messages from another org are refused.",
        )
        .optional(),
        ConfigField::integer(
            "page_size",
            "Query page size",
            "Records per query page asked of Salesforce (Sforce-Query-Options batchSize, 200 to 2000).",
        )
        .default("2000"),
        ConfigField::boolean(
            "range_requests",
            "Ranged downloads",
            "Read only the parts of each file the analysis needs. Salesforce does not document Range support on VersionData and Body; leave off unless your org honours it (then whole files are downloaded).",
            false,
        ),
    ]
}

/// The flow the integration selects (the default without config).
pub fn flow() -> &'static str {
    let chosen = config::get(proofpix_sdk::AUTH_FLOW_FIELD);
    FLOWS
        .iter()
        .copied()
        .find(|f| chosen.as_deref() == Some(*f))
        .unwrap_or("jwt-bearer")
}

/// The login host: `login_url`, else the environment's generic host.
pub fn login_url() -> String {
    match config::get("login_url") {
        Some(u) => u.trim().trim_end_matches('/').to_string(),
        None if sandbox() => SANDBOX_LOGIN.into(),
        None => PRODUCTION_LOGIN.into(),
    }
}

fn sandbox() -> bool {
    config::get("environment").as_deref() == Some("sandbox")
}

/// The auth scheme the host runs for the selected flow.
pub fn auth_scheme() -> AuthScheme {
    let login = login_url();
    let token_url = format!("{login}/services/oauth2/token");
    let oauth = |secret: bool, authorize: bool, scopes: &[&str]| Oauth2Auth {
        token_url: token_url.clone(),
        authorize_url: authorize.then(|| format!("{login}/services/oauth2/authorize")),
        scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
        client_id_field: "client_id".into(),
        client_secret_field: secret.then(|| "client_secret".into()),
        extra_params: Vec::new(),
    };
    match flow() {
        "password" => AuthScheme::Oauth2Password(PasswordAuth {
            oauth: oauth(true, false, &[]),
            username_field: "username".into(),
            password_field: "password".into(),
            password_suffix_field: Some("security_token".into()),
        }),
        "client-credentials" => AuthScheme::Oauth2ClientCredentials(oauth(true, false, &[])),
        "authorization-code" => {
            AuthScheme::Oauth2AuthorizationCode(oauth(true, true, &["api", "refresh_token"]))
        }
        _ => AuthScheme::JwtBearer(JwtBearerAuth {
            token_url,
            issuer_field: "client_id".into(),
            subject_field: Some("username".into()),
            audience: if sandbox() {
                SANDBOX_LOGIN
            } else {
                PRODUCTION_LOGIN
            }
            .into(),
            private_key_field: "private_key".into(),
            scopes: Vec::new(),
        }),
    }
}

/// What discovery, download and write-back read from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `60.0`.
    pub api_version: String,
    /// `Case`.
    pub scope_object: String,
    /// SOQL condition without `WHERE`.
    pub scope_where: Option<String>,
    /// Scan Attachments too.
    pub attachments: bool,
    /// Lower-case extensions without dots.
    pub extensions: Vec<String>,
    /// Create result records.
    pub write_results: bool,
    /// Result object API name.
    pub result_object: String,
    /// `batchSize` asked for.
    pub page_size: u32,
    /// Whether downloads say they honour Range.
    pub range_requests: bool,
}

impl Settings {
    /// Reads and checks the config.
    ///
    /// # Errors
    /// `invalid-config` naming the field at fault.
    pub fn load() -> Result<Self, PluginError> {
        let api_version = config::get("api_version")
            .unwrap_or_else(|| DEFAULT_API_VERSION.into())
            .trim()
            .trim_start_matches(['v', 'V'])
            .to_string();
        let valid_version = api_version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && a.len() <= 3 && a.bytes().all(|c| c.is_ascii_digit()) && b == "0"
        });
        if !valid_version {
            return Err(PluginError::invalid_config(
                Some("api_version"),
                format!("`api_version` must look like 60.0, got {api_version:?}"),
            ));
        }
        let scope_object = config::get("scope_object")
            .unwrap_or_else(|| "Case".into())
            .trim()
            .to_string();
        check_api_name("scope_object", &scope_object)?;
        let scope_where = match config::get("scope_where") {
            None => None,
            Some(w) => Some(check_condition(&w)?),
        };
        let result_object = config::get("result_object")
            .unwrap_or_else(|| DEFAULT_RESULT_OBJECT.into())
            .trim()
            .to_string();
        check_api_name("result_object", &result_object)?;
        let extensions = extensions(config::list("file_extensions"), DEFAULT_EXTENSIONS);
        if let Some(bad) = extensions
            .iter()
            .find(|e| e.is_empty() || e.len() > 10 || !e.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(PluginError::invalid_config(
                Some("file_extensions"),
                format!("{bad:?} is not a file extension; list extensions like jpg, png"),
            ));
        }
        let page_size = in_range(
            "page_size",
            config::integer("page_size", 2000)?,
            200..=2000,
            Some("Salesforce's batchSize range"),
        )?;
        Ok(Settings {
            api_version,
            scope_object,
            scope_where,
            attachments: config::flag("include_attachments", true),
            extensions,
            write_results: config::flag("write_results", true),
            result_object,
            page_size,
            range_requests: config::flag("range_requests", false),
        })
    }
}

/// Offline checks of the selected flow's non-secret fields.
///
/// # Errors
/// `invalid-config` naming the field.
pub fn check_flow() -> Result<(), PluginError> {
    if let Some(f) = config::get(proofpix_sdk::AUTH_FLOW_FIELD)
        && !FLOWS.contains(&f.as_str())
    {
        return Err(PluginError::invalid_config(
            Some(proofpix_sdk::AUTH_FLOW_FIELD),
            format!("`auth_flow` must be one of {}, got {f:?}", FLOWS.join(", ")),
        ));
    }
    config::require("client_id")?;
    match flow() {
        "jwt-bearer" | "password" if config::get("username").is_none() => {
            Err(PluginError::invalid_config(
                Some("username"),
                format!(
                    "the {} flow signs in as a user: set `username` to the integration user's Salesforce username",
                    flow()
                ),
            ))
        }
        "client-credentials" => {
            let login = login_url();
            if login == PRODUCTION_LOGIN || login == SANDBOX_LOGIN {
                return Err(PluginError::invalid_config(
                    Some("login_url"),
                    "the client-credentials flow only works on your My Domain host: set `login_url` to https://yourcompany.my.salesforce.com",
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An sObject API name: letters, digits and underscores, starting with a letter.
fn check_api_name(field: &str, name: &str) -> Result<(), PluginError> {
    let ok = name.len() <= 80
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PluginError::invalid_config(
            Some(field),
            format!("`{field}` must be an API name such as Case or My_Object__c, got {name:?}"),
        ))
    }
}

/// Light offline checks of the scope condition: balanced quotes and parentheses, one statement.
/// Salesforce itself judges the SOQL in the connection test.
fn check_condition(raw: &str) -> Result<String, PluginError> {
    let mut w = raw.trim();
    if w.len() >= 6 && w[..6].eq_ignore_ascii_case("where ") {
        w = w[6..].trim_start();
    }
    let bad = |why: &str| {
        Err(PluginError::invalid_config(
            Some("scope_where"),
            format!("`scope_where` {why}: {w:?}"),
        ))
    };
    if w.len() > 4000 {
        return bad("is longer than 4000 characters");
    }
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    for c in w.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return bad("closes a parenthesis it never opened");
                }
            }
            ';' if !quoted => return bad("must be a single condition (no ';')"),
            _ => {}
        }
    }
    if quoted {
        return bad("has an unclosed quote");
    }
    if depth != 0 {
        return bad("has an unclosed parenthesis");
    }
    let upper = w.to_ascii_uppercase();
    if [" LIMIT ", " ORDER BY ", " GROUP BY "]
        .iter()
        .any(|k| upper.contains(k))
    {
        return bad("is a condition only; ProofPix adds ORDER BY and LIMIT itself");
    }
    Ok(w.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_checked_for_balance_and_a_leading_where_is_dropped() {
        assert_eq!(
            check_condition("WHERE Status = 'New'").ok().as_deref(),
            Some("Status = 'New'")
        );
        assert!(check_condition("Subject = 'it''s'").is_ok());
        assert!(check_condition("Subject = 'a\\'b'").is_ok());
        for bad in [
            "Status = 'New",
            "(Status = 'New'",
            "Status = 'x'; DELETE",
            "Id != null LIMIT 5",
        ] {
            assert!(check_condition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_names_are_identifiers() {
        assert!(check_api_name("f", "ProofPix_Analysis__c").is_ok());
        assert!(check_api_name("f", "Case WHERE").is_err());
        assert!(check_api_name("f", "1Case").is_err());
    }
}
