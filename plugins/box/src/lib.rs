//! The Box connector.
//!
//! - **Auth**: Box's Client Credentials Grant or its JWT grant, run by the host
//!   (`POST {api_url}/oauth2/token`). With client credentials, `box_subject_type` and
//!   `box_subject_id` are extra form parameters; with JWT, they are the assertion's
//!   `box_sub_type` claim and `sub`, signed with the app's key, whose id goes into the `kid`
//!   header, and the client id and secret go in the body ([`oauth_dialect`]). Which grant, and
//!   whom the app acts for (its service account in an enterprise, or a managed user), is the
//!   reserved `auth_flow` choice, so the host describes the plugin again with the integration's
//!   config and this manifest's `describe` puts the subject into the scheme and the dialect. The
//!   plugin never sees the secret, the key or the token.
//! - **discover**: the stream position first, then a recursive walk of the configured folders
//!   (marker paging), then Box's `changes` event stream on later runs, de-duplicated and
//!   filtered to the configured folders (see [`discover`]). Images are told by extension.
//! - **download**: `/files/{id}/content`, which 302-redirects to `dl.boxcloud.com`. That host is
//!   declared as an endpoint *without* credentials, so the host drops the bearer token on that
//!   hop; it honours Range.
//! - **write-back**: a metadata template instance on each file, created or JSON-Patched, with
//!   per-file outcomes (see [`writeback`]).
//! - **check**: who the app acts as, every configured folder, and the metadata template with its
//!   fields; each failure says what to create or share.
//!
//! Threats handled here: a hostile or broken API (ids are checked to be digits before they go
//! into a URL, stream positions and markers are bounded, malformed pages fail the page, nothing
//! Box sends is trusted as a length or an index); an operator's typo (every misconfiguration
//! names the field and what to write). Throttling (429, or 503 with retry-after) becomes
//! `rate-limited` with Box's delay.
//!
//! Not supported: Box's JWT grant (the contract's JWT bearer scheme cannot add Box's
//! `box_sub_type` and `jti` claims, the `kid` header or the client id and secret Box wants in
//! the same request), Box webhooks (changes are read from the event stream at each sync), and
//! remediation.

mod api;
mod discover;
mod settings;
mod writeback;

use proofpix_sdk::prelude::*;
use serde_json::Value;

use settings::{Settings, field};

struct BoxConnector;

impl Connector for BoxConnector {
    fn describe() -> PluginInfo {
        use settings::*;
        let (subject_type, jwt) = config::get(field::SUBJECT_TYPE)
            .as_deref()
            .and_then(flow_subject)
            .unwrap_or((SUBJECT_ENTERPRISE, false));
        let subject_id = config::get(field::SUBJECT_ID).unwrap_or_default();
        let auth = if jwt {
            AuthScheme::JwtBearer(JwtBearerAuth {
                token_url: "{config.api_url}/oauth2/token".into(),
                issuer_field: field::CLIENT_ID.into(),
                subject_field: Some(field::SUBJECT_ID.into()),
                audience: JWT_AUDIENCE.into(),
                private_key_field: field::JWT_PRIVATE_KEY.into(),
                scopes: Vec::new(),
            })
        } else {
            AuthScheme::Oauth2ClientCredentials(Oauth2Auth {
                token_url: "{config.api_url}/oauth2/token".into(),
                authorize_url: None,
                scopes: Vec::new(),
                client_id_field: field::CLIENT_ID.into(),
                client_secret_field: Some(field::CLIENT_SECRET.into()),
                extra_params: vec![
                    ("box_subject_type".into(), subject_type.into()),
                    ("box_subject_id".into(), subject_id),
                ],
            })
        };
        PluginInfo::builder("box", env!("CARGO_PKG_VERSION"), "Box", "Box")
            .description("Scans the images in Box folders, then follows Box's event stream for changes, and writes each file's risk, score and findings into a metadata template instance on the file.")
            .capability(Capability::Source)
            .field(
                ConfigField::text(field::CLIENT_ID, "Client ID", "The Client ID of your Box Platform app (Developer Console → your app → Configuration → OAuth 2.0 Credentials). The app uses Server Authentication (Client Credentials Grant), needs the scopes Read and write all files and folders and Manage enterprise properties (for the template check), and must be authorized by an admin (Admin Console → Integrations → Platform Apps Manager).")
                    .placeholder("abcdefghijklmnopqrstuvwxyz012345"),
            )
            .field(ConfigField::secret(field::CLIENT_SECRET, "Client secret", "The Client Secret next to the Client ID (Fetch Client Secret needs two-factor verification)."))
            .field(
                ConfigField::choice(field::SUBJECT_TYPE, "Act as", "enterprise: the app's service account (AutomationUser_…@boxdevedition.com), which sees only folders shared with it. user: a managed user, which needs the app's Generate user access tokens setting. Both with the Client Credentials Grant; jwt-enterprise and jwt-user are the same with Server Authentication (with JWT), which needs the public key id and private key below.", &[SUBJECT_ENTERPRISE, SUBJECT_USER, JWT_ENTERPRISE, JWT_USER])
                    .default(SUBJECT_ENTERPRISE),
            )
            .field(
                ConfigField::text(field::JWT_KEY_ID, "Public key ID", "JWT only: the ID Box shows for the public key you added (Developer Console → your app → Configuration → Add and Manage Public Keys).")
                    .optional(),
            )
            .field(
                ConfigField::secret(field::JWT_PRIVATE_KEY, "Private key", "JWT only: the private key of that key pair, as unencrypted PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY). Box's generated config file holds it encrypted: decrypt it with `openssl pkcs8 -in key.pem -out plain.pem` and its passphrase.")
                    .optional(),
            )
            .field(
                ConfigField::text(field::SUBJECT_ID, "Enterprise or user ID", "With enterprise: your Enterprise ID (Admin Console → Account & Billing, or the app's General Settings). With user: the user's ID (Admin Console → Users and Groups).")
                    .placeholder("987654"),
            )
            .field(
                ConfigField::list(field::FOLDERS, "Folders", "Folders to scan, one per line: the folder's id, the number at the end of its address in the Box web app (app.box.com/folder/123456789), or the address itself. 0 scans everything the account can see. Share each folder with the account ProofPix acts as.")
                    .placeholder("123456789"),
            )
            .field(ConfigField::boolean(field::RECURSIVE, "Include subfolders", "Scan the folders' subfolders too.", true))
            .field(ConfigField::boolean(field::WRITE_BACK, "Write results to metadata", "Write each image's risk, score and findings into a metadata template instance on the file. Off: results stay in ProofPix.", true))
            .field(ConfigField::text(field::TEMPLATE_KEY, "Metadata template key", "The key (not the display name) of the enterprise metadata template that receives the results, with the fields risk (dropdown None/Low/Medium/High/Critical, or text), score (number), findings (text) and analysedAt (date). Create it in the Admin Console → Content → Metadata.").default(DEFAULT_TEMPLATE_KEY))
            .field(ConfigField::integer(field::SUMMARY_MAX, "Findings length", "Longest findings summary written, in characters (16–10000).").default("1000"))
            .field(ConfigField::integer(field::PAGE_SIZE, "Page size", "Items asked per folder page while listing (1–1000).").default("1000"))
            .field(ConfigField::url(field::API_URL, "API URL", "Box's API address; the token endpoint is {api_url}/oauth2/token. Change it only for a local emulator.").default(DEFAULT_API_URL))
            .field(ConfigField::text(field::DOWNLOAD_HOST, "Download host", "Where Box redirects file downloads: pre-authenticated URLs that get no credentials.").default(DEFAULT_DOWNLOAD_HOST))
            .auth(auth)
            .oauth_dialect(oauth_dialect(subject_type))
            .endpoint(
                Endpoint::new("api", "{config.api_url}")
                    .with_credentials()
                    .purpose("the Box API: folders, the event stream, file content redirects, metadata templates and instances"),
            )
            .endpoint(
                Endpoint::new("downloads", "{config.download_host}")
                    .purpose("pre-authenticated download URLs Box redirects file content to; no credentials are sent there"),
            )
            .write_back_batch_size(writeback::BATCH_SIZE)
            // Each result sets an instance's fields to values: writing it again after a crash
            // leaves the file as writing it once.
            .idempotent_write_back()
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        config::require(field::CLIENT_ID)?;
        let jwt = config::get(field::SUBJECT_TYPE)
            .as_deref()
            .and_then(settings::flow_subject)
            .is_some_and(|(_, jwt)| jwt);
        if jwt {
            config::require(field::JWT_KEY_ID)?;
        }
        Settings::load().map(|_| ())
    }

    fn check() -> Result<CheckReport, PluginError> {
        check()
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        discover::discover(cursor)
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        discover::download(file).map(Into::into)
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        writeback::write_back(results)
    }
}

export_connector!(BoxConnector);

/// Who the app acts as, each folder, and the template.
fn check() -> Result<CheckReport, PluginError> {
    let settings = Settings::load()?;
    let me = api::get_json(
        &format!("{}/2.0/users/me?fields=id,name,login", settings.api),
        "reading the account the app acts as",
    )?;
    let login = me["login"]
        .as_str()
        .unwrap_or("the app's account")
        .to_string();
    let name = me["name"].as_str().unwrap_or_default();
    let mut details = Vec::new();
    for id in &settings.folders {
        let url = format!(
            "{}/2.0/folders/{id}?fields=id,name,path_collection",
            settings.api
        );
        let resp = api::get(&url)?;
        if resp.status == 404 || resp.status == 403 {
            let e = api::BoxError::from_response(&resp);
            return Err(PluginError::invalid_config(
                Some(field::FOLDERS),
                format!(
                    "Box has no folder {id} that {login} can see ({}). Share the folder with {login} (in Box: the folder → Share → Invite people, as Editor for write-back or Viewer otherwise), or check the id: it is the number at the end of the folder's address (app.box.com/folder/123456789)",
                    e.detail()
                ),
            ));
        }
        let v = api::json_of(resp, &format!("reading folder {id}"))?;
        details.push(format!(
            "folder {} ({id})",
            v["name"].as_str().unwrap_or("?")
        ));
    }
    if settings.write_back {
        check_template(&settings)?;
        details.push(format!(
            "metadata template {} has risk, score, findings and analysedAt",
            settings.template_key
        ));
        details.push(
            "permission to edit metadata shows on the first write-back (Box cannot test it without writing)"
                .into(),
        );
    } else {
        details.push("write-back is off: results stay in ProofPix".into());
    }
    Ok(CheckReport {
        account: Some(if name.is_empty() {
            login
        } else {
            format!("{name} ({login})")
        }),
        details,
    })
}

const TEMPLATE_HOWTO: &str = "risk (dropdown with the options None, Low, Medium, High, Critical, or text), score (number), findings (text) and analysedAt (date)";

fn check_template(settings: &Settings) -> Result<(), PluginError> {
    let key = &settings.template_key;
    let url = format!(
        "{}/2.0/metadata_templates/enterprise/{key}/schema",
        settings.api
    );
    let resp = api::get(&url)?;
    if resp.status == 404 {
        let e = api::BoxError::from_response(&resp);
        return Err(PluginError::invalid_config(
            Some(field::TEMPLATE_KEY),
            format!(
                "the enterprise has no metadata template with the key {key} ({}). Create it in the Admin Console → Content → Metadata → Create New, with the fields {TEMPLATE_HOWTO}, or with POST /2.0/metadata_templates/schema (scope enterprise, templateKey {key}); or set `{}` to an existing template's key",
                e.detail(),
                field::TEMPLATE_KEY
            ),
        ));
    }
    let v = api::json_of(resp, &format!("reading metadata template {key}"))?;
    template_problem(&v, key).map_or(Ok(()), |m| {
        Err(PluginError::invalid_config(Some(field::TEMPLATE_KEY), m))
    })
}

/// What is wrong with a template's fields, if anything.
fn template_problem(template: &Value, key: &str) -> Option<String> {
    let fields: Vec<&Value> = template["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let find = |k: &str| fields.iter().find(|f| f["key"].as_str() == Some(k));
    for (k, allowed) in [
        (writeback::key::RISK, &["enum", "string"][..]),
        (writeback::key::SCORE, &["float"][..]),
        (writeback::key::FINDINGS, &["string"][..]),
        (writeback::key::ANALYSED_AT, &["date"][..]),
    ] {
        let Some(f) = find(k) else {
            return Some(format!(
                "metadata template {key} has no field with the key {k}; it needs {TEMPLATE_HOWTO}. Add the field in the Admin Console → Content → Metadata → {key} → Edit"
            ));
        };
        let kind = f["type"].as_str().unwrap_or_default();
        if !allowed.contains(&kind) {
            return Some(format!(
                "field {k} of metadata template {key} is of type {kind}, but ProofPix writes {}; change the field or use another template",
                allowed.join(" or ")
            ));
        }
        if kind == "enum" {
            let options: Vec<&str> = f["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["key"].as_str())
                .collect();
            let missing: Vec<&str> = ["None", "Low", "Medium", "High", "Critical"]
                .into_iter()
                .filter(|o| !options.contains(o))
                .collect();
            if !missing.is_empty() {
                return Some(format!(
                    "the dropdown field risk of metadata template {key} lacks the option(s) {}; add them (exactly: None, Low, Medium, High, Critical)",
                    missing.join(", ")
                ));
            }
        }
    }
    None
}

/// How Box's OAuth2 server talks (contract 0.3; reference `saas-apis.md` §6.1): credentials in
/// the body, refresh tokens that work once, and for the JWT grant an assertion with the public
/// key's id as `kid`, `box_sub_type` naming whom `sub` is, at most 60 seconds of life (45 here,
/// for clock skew), and the client id and secret beside it in the body.
fn oauth_dialect(subject_type: &str) -> OauthDialect {
    use AuthFailure as F;
    use GrantKind as G;
    use settings::field;
    OauthDialect::rfc()
        .client_auth(ClientAuth::Body)
        .single_use_refresh_tokens()
        .jwt(JwtDialect {
            key_id_field: Some(field::JWT_KEY_ID.into()),
            claims: vec![("box_sub_type".into(), subject_type.into())],
            lifetime_secs: 45,
            client_in_body: true,
            client_id_field: Some(field::CLIENT_ID.into()),
            client_secret_field: Some(field::CLIENT_SECRET.into()),
            ..JwtDialect::rfc()
        })
        .error_rule("invalid_grant", &[G::Refresh], None, F::ReauthorizationRequired, "Box refresh tokens work once and for 60 days; this one was already used or has expired, so authorize the integration again")
        .error_rule("invalid_grant", &[G::ClientCredentials], None, F::ClientRejected, "the client id or secret is wrong, or the app is not authorized in the Box Admin Console")
        .error_rule("invalid_grant", &[G::AuthorizationCode], None, F::Rejected, "the authorization code was not accepted (Box codes expire after 30 seconds and work once); start the authorization again")
        .error_rule("invalid_grant", &[G::JwtBearer], Some("kid"), F::AssertionRejected, "the private key does not match the public key id configured here; check the key pair under Configuration > Add and Manage Public Keys")
        .error_rule("invalid_grant", &[G::JwtBearer], Some("'exp'"), F::AssertionRejected, "Box refused the assertion's expiry; the daemon's clock is probably wrong, sync it (NTP)")
        .error_rule("invalid_grant", &[G::JwtBearer], Some("'sub'"), F::ConsentMissing, "the enterprise or user id is not one this app may act for; check it, and that an admin authorized the app")
        .error_rule("invalid_client", &[], None, F::ClientRejected, "the client id or secret is wrong; copy both from the Box app's Configuration page again")
        .error_rule("unauthorized_client", &[], None, F::ConsentMissing, "the app may not act for this box_subject_type; enable App + Enterprise Access (or 'Generate user access tokens') and have a Box admin re-authorize the app")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"templateKey": "proofpixPrivacy", "fields": [
            {"key": "risk", "type": "enum", "options": [{"key": "None"}, {"key": "Low"}, {"key": "Medium"}, {"key": "High"}, {"key": "Critical"}]},
            {"key": "score", "type": "float"},
            {"key": "findings", "type": "string"},
            {"key": "analysedAt", "type": "date"},
        ]})
    }

    #[test]
    fn a_complete_template_passes() {
        assert_eq!(template_problem(&template(), "proofpixPrivacy"), None);
    }

    #[test]
    fn a_missing_field_or_option_is_named_with_how_to_fix_it() {
        let mut t = template();
        t["fields"].as_array_mut().unwrap().remove(1);
        let m = template_problem(&t, "proofpixPrivacy").unwrap();
        assert!(m.contains("no field with the key score"), "{m}");
        let mut t = template();
        t["fields"][0]["options"].as_array_mut().unwrap().pop();
        let m = template_problem(&t, "proofpixPrivacy").unwrap();
        assert!(m.contains("lacks the option(s) Critical"), "{m}");
        let mut t = template();
        t["fields"][1]["type"] = json!("string");
        let m = template_problem(&t, "proofpixPrivacy").unwrap();
        assert!(m.contains("is of type string"), "{m}");
    }
}
