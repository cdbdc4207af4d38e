//! The Google Drive connector, through the Drive v3 API.
//!
//! - **Auth**: a service account's RS256 JWT bearer assertion (RFC 7523), signed and exchanged
//!   by the host at `{token_url}` for the one scope `https://www.googleapis.com/auth/drive`;
//!   with `impersonate_user` set, the assertion's `sub` makes it act for that user (domain-wide
//!   delegation). The operator pastes the whole key file; the host reads `client_email` from it.
//!   The plugin never sees the key or the token.
//! - **discover**: `changes.getStartPageToken`, then a full `files.list` of images (paged with
//!   `nextPageToken`), then the change feed from the saved token until `newStartPageToken`;
//!   deleted and trashed files are reported removed; a token Drive refuses restarts the full
//!   listing; a listing Drive calls incomplete (`incompleteSearch`) is redone corpus by corpus
//!   (see [`discover`]).
//! - **download**: `GET /drive/v3/files/{id}?alt=media` on the API host, with Range. Drive may
//!   answer `307` to a content host (`*.googleusercontent.com`); that is the `downloads`
//!   endpoint, declared without credentials, so the host follows the redirect and drops the
//!   bearer token on the way.
//! - **write-back**: risk, score, findings summary and analysis time into the file's private
//!   `appProperties`, each key and value within Drive's 124 bytes, per-file outcomes (see
//!   [`writeback`]).
//! - **check**: the account, the shared drive when one is configured, the change feed and a
//!   first listing page.
//!
//! Threats handled here: a hostile or broken API (ids are checked before they go into a URL,
//! malformed pages fail the page, nothing Drive sends is trusted as a length or an index); an
//! operator's typo (every misconfiguration names the field and what to write). Quota answers
//! (403 `userRateLimitExceeded`/`rateLimitExceeded`, 429) become `rate-limited`, with Google's
//! Retry-After when it sends one.

mod discover;
mod google;
mod settings;
mod writeback;

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;

use settings::{Corpus, Settings, field};

struct GoogleDrive;

impl Connector for GoogleDrive {
    fn describe() -> PluginInfo {
        use settings::*;
        PluginInfo::builder("google-drive", env!("CARGO_PKG_VERSION"), "Google Drive", "Google Drive")
            .description("Scans the images in Google Drive (My Drive and shared drives) with a service account and writes each file's risk, score and findings into the file's private app properties.")
            .capability(Capability::Source)
            .field(ConfigField::secret(field::KEY, "Service account key", "The service account's JSON key file, pasted whole (Google Cloud console → IAM & Admin → Service accounts → Keys → Add key → JSON). A PEM private key works too, with the e-mail below."))
            .field(
                ConfigField::text(field::EMAIL, "Service account e-mail", "The service account's e-mail (client_email in the key file). Leave empty to take it from the key file.")
                    .placeholder("scanner@my-project.iam.gserviceaccount.com")
                    .optional(),
            )
            .field(
                ConfigField::text(field::SUBJECT, "Act as user", "With domain-wide delegation: the Google Workspace user whose Drive is scanned. The service account's client ID must be authorized for https://www.googleapis.com/auth/drive in the Admin console. Leave empty to scan what is shared with the service account itself.")
                    .placeholder("admin@example.com")
                    .optional(),
            )
            .field(
                ConfigField::text(field::SHARED_DRIVE, "Shared drive", "Scan only this shared drive: its id, or its address (https://drive.google.com/drive/folders/<id>). Leave empty to scan My Drive and the shared drives below.")
                    .optional(),
            )
            .field(ConfigField::boolean(field::INCLUDE_SHARED, "Include shared drives", "When no single shared drive is set: also scan every shared drive the account is a member of.", true))
            .field(ConfigField::boolean(field::WRITE_BACK, "Write results to app properties", "Write each image's risk, score and findings into the file's private app properties (needs edit access to the file). Off: results stay in ProofPix.", true))
            .field(ConfigField::text(field::PREFIX, "Property prefix", "Prefix of the property names: {prefix}Risk, {prefix}Score, {prefix}Findings, {prefix}AnalysedAt. Letters, digits, _, - and . only.").default(DEFAULT_PREFIX))
            .field(ConfigField::integer(field::PAGE_SIZE, "Page size", "Files asked per Drive page while listing (1–1000).").default("100"))
            .field(ConfigField::url(field::API_URL, "Drive API URL", "Google's API address. Change it only for a local emulator.").default(DEFAULT_API_URL))
            .field(ConfigField::url(field::TOKEN_URL, "Token URL", "Google's OAuth 2.0 token endpoint. Change it only for a local emulator.").default(DEFAULT_TOKEN_URL))
            .field(ConfigField::text(field::DOWNLOAD_HOST, "Download host", "Where Drive may redirect file downloads (307): Google's content hosts, which get no credentials. *.googleusercontent.com covers them; change it only for a local emulator.").default(DEFAULT_DOWNLOAD_HOST))
            .oauth_dialect(oauth_dialect())
            .auth(AuthScheme::JwtBearer(JwtBearerAuth {
                token_url: "{config.token_url}".into(),
                issuer_field: field::EMAIL.into(),
                subject_field: Some(field::SUBJECT.into()),
                audience: AUDIENCE.into(),
                private_key_field: field::KEY.into(),
                scopes: vec![SCOPE.into()],
            }))
            .endpoint(
                Endpoint::new("drive", "{config.api_url}")
                    .with_credentials()
                    .purpose("the Drive v3 API: file listings, the change feed, file downloads and app-property updates"),
            )
            .endpoint(
                Endpoint::new("downloads", "{config.download_host}")
                    .purpose("Google's content hosts that file downloads may be redirected to (307); no credentials are sent there"),
            )
            .write_back_batch_size(50)
            // Each result is a PATCH that sets properties to values: writing it again after a
            // crash leaves the file as writing it once.
            .idempotent_write_back()
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
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

export_connector!(GoogleDrive);

/// Who the token acts for, the shared drive, the change feed and a first listing page.
fn check() -> Result<CheckReport, PluginError> {
    let settings = Settings::load()?;
    let about = google::get_json(
        Request::get(&settings.url("about"))
            .query("fields", "user(emailAddress,displayName)")
            .url(),
        "reading the signed-in account",
    )?;
    let account = about["user"]["emailAddress"]
        .as_str()
        .unwrap_or("the service account")
        .to_string();
    let mut details = Vec::new();
    if let Corpus::SharedDrive(id) = &settings.corpus {
        let resp = google::get(
            Request::get(&settings.url(&format!(
                "drives/{}",
                proofpix_sdk::http::percent_encode(id)
            )))
            .query("fields", "id,name")
            .url(),
        )?;
        if resp.status == 404 {
            return Err(PluginError::invalid_config(
                Some(field::SHARED_DRIVE),
                format!(
                    "{account} sees no shared drive with id {id}: add it as a member of the shared drive (Manage members, at least Content manager to write results), or check `{}`",
                    field::SHARED_DRIVE
                ),
            ));
        }
        let drive = google::json_of(resp, "reading the shared drive")?;
        details.push(format!(
            "shared drive {} ({id})",
            drive["name"].as_str().unwrap_or("?")
        ));
    } else {
        details.push(format!("scanning {}", settings.corpus.describe()));
    }
    discover::start_page_token(&settings)?;
    details.push("change feed readable".into());
    let first = google::get_json(
        &discover::list_url(
            &Settings {
                page_size: 1,
                ..settings.clone()
            },
            None,
        ),
        &format!("listing {}", settings.corpus.describe()),
    )?;
    let any = first["files"].as_array().is_some_and(|f| !f.is_empty());
    if discover::incomplete(&first) {
        details.push("Drive says the search over My Drive and all shared drives is incomplete (incompleteSearch): syncs list My Drive and each shared drive separately, which takes more requests".into());
    }
    details.push(if any {
        "images visible".into()
    } else {
        format!(
            "no images visible yet: share folders with {account}, or set `{}` to a user who has them",
            field::SUBJECT
        )
    });
    if settings.write_back {
        let p = &settings.prefix;
        details.push(format!(
            "results go to app properties {p}Risk, {p}Score, {p}Findings, {p}AnalysedAt; edit access shows on the first write-back (Drive cannot test it without writing)"
        ));
    } else {
        details.push("write-back is off: results stay in ProofPix".into());
    }
    Ok(CheckReport {
        account: Some(account),
        details,
    })
}

/// How Google's OAuth2 server talks (contract 0.3; reference `saas-apis.md` §5.1): credentials
/// in the body, scopes in the assertion's `scope` claim, an hour of assertion lifetime, and
/// `invalid_grant` told apart by description.
fn oauth_dialect() -> OauthDialect {
    use AuthFailure as F;
    use GrantKind as G;
    const CLOCK: &str = "the assertion's iat/exp times were refused; the daemon's clock is probably wrong, sync it (NTP)";
    const REVOKED: &str = "the refresh token expired or was revoked (for example the user removed the app's access); authorize the integration again";
    OauthDialect::rfc()
        .client_auth(ClientAuth::Body)
        .authorize_param("access_type", "offline")
        .authorize_param("prompt", "consent")
        .jwt(JwtDialect {
            lifetime_secs: 3600,
            scope_claim: true,
            ..JwtDialect::rfc()
        })
        .error_rule("invalid_grant", &[], Some("Invalid JWT Signature"), F::AssertionRejected, "the signature does not match the service account's keys; the key may have been deleted or rotated, so create a new key file")
        .error_rule("invalid_grant", &[], Some("short-lived"), F::AssertionRejected, CLOCK)
        .error_rule("invalid_grant", &[], Some("iat"), F::AssertionRejected, CLOCK)
        .error_rule("invalid_grant", &[], Some("account not found"), F::ClientRejected, "the service account does not exist (deleted?); check its e-mail or create a new key")
        .error_rule("invalid_grant", &[G::Refresh], None, F::ReauthorizationRequired, REVOKED)
        .error_rule("invalid_grant", &[], Some("expired or revoked"), F::ReauthorizationRequired, REVOKED)
        .error_rule("unauthorized_client", &[], None, F::ConsentMissing, "domain-wide delegation is not granted for this service account and these scopes; add its client id and the scopes in the Google Admin console (Security > API controls > Domain-wide delegation)")
}
