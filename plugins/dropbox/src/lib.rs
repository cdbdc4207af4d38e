//! The Dropbox connector, through the Dropbox API v2.
//!
//! - **Auth**: OAuth 2.0 authorization code with PKCE and offline access, run by the host: the
//!   operator authorizes once in a browser (`{www_url}/oauth2/authorize`, to which the host adds
//!   `token_access_type=offline` for Dropbox so a refresh token is issued); the host redeems the
//!   code and refreshes the short-lived (4 h) access token at `{api_url}/oauth2/token`. The
//!   plugin never sees the app secret or a token.
//! - **discover**: `list_folder` (recursive) then `list_folder/continue` with the saved cursor;
//!   a 409 `reset` restarts the listing; deleted entries are reported (see [`discover`]).
//!   Images are told by extension.
//! - **download**: `POST {content_url}/2/files/download` with the file's id in the
//!   `Dropbox-API-Arg` header (JSON, non-ASCII escaped as `\uXXXX`), Range honoured. The content
//!   host is a second endpoint with credentials: Dropbox serves the bytes there itself.
//! - **write-back**: risk, score, findings and time as file properties of a property template,
//!   one `properties/overwrite` per file, per-file outcomes from each path's answer (see
//!   [`writeback`] and [`template`]).
//! - **check**: the account, the folder, and the property template.
//!
//! Threats handled here: a hostile or broken API (malformed pages fail the page, nothing Dropbox
//! sends is trusted as a length or an index, error texts are quoted only in part); an operator's
//! typo (every misconfiguration names the field and what to write). Throttling (429 with
//! Retry-After) becomes `rate-limited` with Dropbox's delay; an expired token (401
//! `expired_access_token`) becomes `unauthorized`, which the host answers with a refresh.

mod api;
mod discover;
mod settings;
mod template;
mod writeback;

use proofpix_sdk::prelude::*;

use settings::{Settings, field};

/// What the app needs: reading metadata and content, writing file properties.
const SCOPES: [&str; 4] = [
    "account_info.read",
    "files.metadata.read",
    "files.metadata.write",
    "files.content.read",
];

struct Dropbox;

impl Connector for Dropbox {
    fn describe() -> PluginInfo {
        use settings::*;
        PluginInfo::builder("dropbox", env!("CARGO_PKG_VERSION"), "Dropbox", "Dropbox")
            .description("Scans the images in a Dropbox folder and writes each file's risk, score and findings back as Dropbox file properties.")
            .capability(Capability::Source)
            .field(
                ConfigField::text(field::APP_KEY, "App key", "The App key of your Dropbox app (App Console → your app → Settings). The app needs the permissions account_info.read, files.metadata.read, files.metadata.write and files.content.read, and this integration's callback URL as a redirect URI.")
                    .placeholder("a1b2c3d4e5f6g7h"),
            )
            .field(ConfigField::secret(field::APP_SECRET, "App secret", "The App secret shown next to the App key."))
            .field(
                ConfigField::text(field::FOLDER, "Folder", "The folder to scan, with everything below it, as the Dropbox website shows it after /home (like /Photos/2026). Leave empty for the whole Dropbox (or the app folder, for an App-folder app).")
                    .optional()
                    .placeholder("/Photos"),
            )
            .field(ConfigField::boolean(field::WRITE_BACK, "Write results as file properties", "Write each image's risk, score and findings as Dropbox file properties (visible to this app through the API). Off: results stay in ProofPix.", true))
            .field(
                ConfigField::text(field::TEMPLATE_ID, "Property template", "A property template id (ptid:…) this app created, with the string fields risk, score, findings and analysed_at. Leave empty to let ProofPix create and use its own template named ProofPix.")
                    .optional(),
            )
            .field(ConfigField::integer(field::PAGE_SIZE, "Page size", "Entries asked per list_folder page (1–2000).").default("500"))
            .field(ConfigField::url(field::API_URL, "API URL", "Dropbox's API address (RPC calls and tokens). Change it only for a local emulator.").default(DEFAULT_API_URL))
            .field(ConfigField::url(field::CONTENT_URL, "Content URL", "Dropbox's content address (downloads). Change it only for a local emulator.").default(DEFAULT_CONTENT_URL))
            .field(ConfigField::url(field::WWW_URL, "Website URL", "Where the browser authorizes the app. Change it only for a local emulator.").default(DEFAULT_WWW_URL))
            .oauth_dialect(oauth_dialect())
            .auth(AuthScheme::Oauth2AuthorizationCode(Oauth2Auth {
                token_url: "{config.api_url}/oauth2/token".into(),
                authorize_url: Some("{config.www_url}/oauth2/authorize".into()),
                scopes: SCOPES.iter().map(|s| (*s).to_string()).collect(),
                client_id_field: field::APP_KEY.into(),
                client_secret_field: Some(field::APP_SECRET.into()),
                // `token_access_type=offline` belongs on the authorize URL, not the token
                // request: the dialect declares it there.
                extra_params: Vec::new(),
            }))
            .endpoint(
                Endpoint::new("api", "{config.api_url}")
                    .with_credentials()
                    .purpose("Dropbox API: the account, folder listings, property templates and writing file properties"),
            )
            .endpoint(
                Endpoint::new("content", "{config.content_url}")
                    .with_credentials()
                    .purpose("Dropbox content: reading the images (only the parts analysis needs)"),
            )
            .write_back_batch_size(25)
            // Each result is a properties/overwrite: a snapshot of the values, so writing it
            // again after a crash leaves the file as writing it once.
            .idempotent_write_back()
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        config::require(field::APP_KEY)?;
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

export_connector!(Dropbox);

/// The account, the folder, and (with write-back on) the property template.
fn check() -> Result<CheckReport, PluginError> {
    let settings = Settings::load()?;
    let (root, me) = api::resolve_path_root(&settings)?;
    let name = me["name"]["display_name"]
        .as_str()
        .unwrap_or("unknown user");
    let account = match me["email"].as_str() {
        Some(email) => format!("{name} ({email})"),
        None => name.to_string(),
    };
    let mut details = Vec::new();
    if root.is_some() {
        details.push(format!(
            "team space: paths are from the team's root namespace {} (the member's home folder is {})",
            me["root_info"]["root_namespace_id"].as_str().unwrap_or("?"),
            me["root_info"]["home_path"].as_str().unwrap_or("one folder in it")
        ));
    }
    if settings.folder.is_empty() {
        details.push("folder: the whole Dropbox".to_string());
    } else {
        let resp = api::send(
            &settings,
            "files/get_metadata",
            &serde_json::json!({"path": settings.folder}),
        )?;
        let what = format!("reading the folder {}", settings.folder);
        let m = if resp.status == 409 && api::DbxError::from_response(&resp).tag() == "path" {
            return Err(PluginError::invalid_config(
                Some(field::FOLDER),
                format!(
                    "the folder {} does not exist in {account}'s Dropbox. Write its path from the root as the Dropbox website shows it after /home (an App-folder app sees its app folder as the root), or leave `folder` empty for everything",
                    settings.folder
                ),
            ));
        } else {
            api::json_of(&resp, &what)?
        };
        if m[".tag"].as_str() != Some("folder") {
            return Err(PluginError::invalid_config(
                Some(field::FOLDER),
                format!(
                    "{} is a file, not a folder; set `folder` to the folder that holds the images",
                    settings.folder
                ),
            ));
        }
        details.push(format!(
            "folder: {}",
            m["path_display"].as_str().unwrap_or(&settings.folder)
        ));
    }
    if settings.write_back {
        details.push(template::check(&settings)?);
    } else {
        details.push("write-back is off: results stay in ProofPix".into());
    }
    Ok(CheckReport {
        account: Some(account),
        details,
    })
}

/// How Dropbox's OAuth2 server talks (contract 0.3; reference `saas-apis.md` §7.1): credentials
/// in the body, `token_access_type=offline` on the authorize URL for a refresh token, and the
/// account ids next to the token.
fn oauth_dialect() -> OauthDialect {
    use AuthFailure as F;
    use GrantKind as G;
    OauthDialect::rfc()
        .client_auth(ClientAuth::Body)
        .authorize_param("token_access_type", "offline")
        .context_field("account_id")
        .context_field("uid")
        .error_rule("invalid_grant", &[G::Refresh], None, F::ReauthorizationRequired, "the refresh token was revoked (for example the user disconnected the app); authorize the integration again")
        .error_rule("invalid_grant", &[G::AuthorizationCode], None, F::Rejected, "the authorization code was not accepted (expired or already used); start the authorization again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_space_root_is_sent_and_a_home_root_is_not() {
        let team = serde_json::json!({".tag": "team", "root_namespace_id": "3235641",
            "home_namespace_id": "3235642", "home_path": "/Alice Smith"});
        let header = api::path_root_for(&team).expect("team root");
        let v: serde_json::Value = serde_json::from_str(&header).unwrap();
        assert_eq!(v, serde_json::json!({".tag": "root", "root": "3235641"}));
        let user =
            serde_json::json!({".tag": "user", "root_namespace_id": "7", "home_namespace_id": "7"});
        assert_eq!(api::path_root_for(&user), None);
        assert_eq!(api::path_root_for(&serde_json::Value::Null), None);
        let odd = serde_json::json!({"root_namespace_id": "1\"}", "home_namespace_id": "2"});
        assert_eq!(
            api::path_root_for(&odd),
            None,
            "only digits go into the header"
        );
    }

    #[test]
    fn the_manifest_uses_offline_authorization_code_and_two_credentialed_endpoints() {
        let info = Dropbox::describe();
        assert_eq!(info.id, "dropbox");
        let AuthScheme::Oauth2AuthorizationCode(auth) = &info.auth else {
            panic!("{:?}", info.auth);
        };
        assert_eq!(auth.token_url, "{config.api_url}/oauth2/token");
        assert!(auth.scopes.iter().any(|s| s == "files.metadata.write"));
        let endpoints: Vec<(&str, bool)> = info
            .endpoints
            .iter()
            .map(|e| (e.url.as_str(), e.credentials))
            .collect();
        assert_eq!(
            endpoints,
            [("{config.api_url}", true), ("{config.content_url}", true)]
        );
        assert!(info.write_back_idempotent);
        for f in &info.config {
            if let Some(d) = &f.default_value {
                assert!(!d.is_empty(), "{}", f.name);
            }
        }
    }
}
