//! The SharePoint Online / OneDrive connector, through Microsoft Graph.
//!
//! - **Auth**: app-only client credentials against the Microsoft identity platform, run by the
//!   host (`{login_url}/{tenant}/oauth2/v2.0/token`, the one scope
//!   `https://graph.microsoft.com/.default`). The plugin never sees the secret or the token.
//! - **discover**: for each configured library, Graph's `delta` feed: a full enumeration first,
//!   then only changes, the deltaLink kept as the cursor; 410 resync restarts a library (see
//!   [`discover`]). Images are told by the `image` facet or the MIME type.
//! - **download**: `/drives/{id}/items/{id}/content`, which 302-redirects to a pre-authenticated
//!   URL on another host. That host is declared as an endpoint *without* credentials, so the host
//!   drops the bearer token on that hop; it honours Range, so the host reads only head and tail.
//! - **write-back**: risk, score and findings summary into list-item columns, 20 per JSON
//!   `$batch`, per-file outcomes from per-request statuses (see [`writeback`]).
//! - **check**: resolves the sites and libraries and verifies the result columns exist.
//! - **events**: Graph change notifications, verified by `clientState`, trigger an incremental
//!   (delta) sync (see [`events`]).
//! - **remediation** (contract 0.2): `replace-with-sanitised` through Graph's simple upload,
//!   `PUT /drives/{id}/items/{id}/content`, sent by the host with the sanitised bytes; up to
//!   Graph's 250 MB simple-upload limit, no upload sessions (see [`remediation`]).
//!
//! Threats handled here: a hostile or broken API (links to other hosts are not followed,
//! malformed pages fail the page, nothing Graph sends is trusted as a length or an index); an
//! operator's typo (every misconfiguration names the field and what to write).
//! Throttling (429, or 503 with Retry-After) becomes `rate-limited` with Graph's delay.

mod discover;
mod events;
mod graph;
mod libraries;
mod own_write;
mod remediation;
mod settings;
mod writeback;

use proofpix_sdk::prelude::*;

use settings::{Settings, field};

struct SharePoint;

impl Connector for SharePoint {
    fn describe() -> PluginInfo {
        use settings::*;
        PluginInfo::builder("sharepoint", env!("CARGO_PKG_VERSION"), "SharePoint Online", "SharePoint Online")
            .description("Scans the images in SharePoint Online and OneDrive document libraries through Microsoft Graph and writes each file's risk, score and findings into columns of the library.")
            .capability(Capability::Source)
            .capability(Capability::Events)
            .field(
                ConfigField::text(field::TENANT, "Tenant", "Your Microsoft Entra directory (tenant) ID, or a domain like contoso.onmicrosoft.com. Entra admin center → Overview.")
                    .placeholder("contoso.onmicrosoft.com"),
            )
            .field(
                ConfigField::text(field::CLIENT_ID, "Application (client) ID", "The app registration ProofPix signs in as. It needs the Microsoft Graph application permission Sites.Selected (with write access granted on each site) or Sites.ReadWrite.All, with admin consent.")
                    .placeholder("00000000-0000-0000-0000-000000000000"),
            )
            .field(ConfigField::secret(field::CLIENT_SECRET, "Client secret", "A client secret of the app registration (Certificates & secrets → the secret's Value, not its ID)."))
            .field(
                ConfigField::list(field::SITES, "Sites", "Sites to scan, one per line: the address without https:// (contoso.sharepoint.com/sites/Marketing), contoso.sharepoint.com for the root site, or a site id.")
                    .placeholder("contoso.sharepoint.com/sites/Marketing"),
            )
            .field(
                ConfigField::list(field::LIBRARIES, "Document libraries", "Libraries to scan on those sites, by name as SharePoint shows it (Documents) or drive id (b!…). Leave empty to scan every document library.")
                    .optional(),
            )
            .field(ConfigField::boolean(field::WRITE_BACK, "Write results to columns", "Write each image's risk, score and findings into the library's columns. Off: results stay in ProofPix.", true))
            .field(ConfigField::text(field::RISK_COLUMN, "Risk column", "Internal name of a single-line text column that receives the risk level (None, Low, Medium, High, Critical).").default(DEFAULT_RISK_COLUMN))
            .field(ConfigField::text(field::SCORE_COLUMN, "Score column", "Internal name of a number column that receives the score (0–100).").default(DEFAULT_SCORE_COLUMN))
            .field(ConfigField::text(field::SUMMARY_COLUMN, "Findings column", "Internal name of a text column that receives the findings summary (names and e-mails masked).").default(DEFAULT_SUMMARY_COLUMN))
            .field(
                ConfigField::text(field::ANALYSED_COLUMN, "Analysed-at column", "Internal name of a date and time column that receives when the file was analysed. Leave empty to skip.")
                    .optional(),
            )
            .field(ConfigField::integer(field::SUMMARY_MAX, "Findings length", "Longest findings summary written, in characters: 255 fits a single line of text column, up to 63999 for multiple lines of text.").default("255"))
            .field(ConfigField::integer(field::PAGE_SIZE, "Page size", "Items asked per Graph page while listing (1–999).").default("200"))
            .field(ConfigField::url(field::GRAPH_URL, "Graph URL", "Microsoft Graph's address. Change it only for a national cloud or a local emulator.").default(DEFAULT_GRAPH_URL))
            .field(ConfigField::url(field::LOGIN_URL, "Sign-in URL", "The Microsoft identity platform's address. Change it only for a national cloud or a local emulator.").default(DEFAULT_LOGIN_URL))
            .field(ConfigField::text(field::DOWNLOAD_HOST, "Download host", "Where Graph redirects file downloads: pre-authenticated URLs that get no credentials. *.sharepoint.com covers SharePoint and OneDrive for Business.").default(DEFAULT_DOWNLOAD_HOST))
            .field(
                ConfigField::secret(field::CLIENT_STATE, "Notification client state", "For change notifications (optional): the clientState you give Graph when you create the subscription on each drive's root, with notificationUrl set to this integration's hook URL (/hooks/<integration>). Notifications that do not carry it are refused. Without notifications, changes are seen at each scheduled sync.")
                    .optional(),
            )
            .oauth_dialect(oauth_dialect())
            .auth(AuthScheme::Oauth2ClientCredentials(Oauth2Auth {
                token_url: "{config.login_url}/{config.tenant}/oauth2/v2.0/token".into(),
                authorize_url: None,
                scopes: vec!["https://graph.microsoft.com/.default".into()],
                client_id_field: field::CLIENT_ID.into(),
                client_secret_field: Some(field::CLIENT_SECRET.into()),
                extra_params: Vec::new(),
            }))
            .endpoint(
                Endpoint::new("graph", "{config.graph_url}")
                    .with_credentials()
                    .purpose("Microsoft Graph: sites, libraries, file listings, column updates and, when remediation is enabled, replacing a file's content with its sanitised copy"),
            )
            .endpoint(
                Endpoint::new("downloads", "{config.download_host}")
                    .purpose("pre-authenticated download URLs Graph redirects file content to; no credentials are sent there"),
            )
            // The host strips the file and sends the bytes; `upload` only says where.
            .remediation(RemediationKind::ReplaceWithSanitised)
            .write_back_batch_size(100)
            // Each result is a PATCH that sets the columns to values: writing it again after a
            // crash leaves the item as writing it once.
            .idempotent_write_back()
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        config::require(field::TENANT)?;
        config::require(field::CLIENT_ID)?;
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

    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        events::handle(&request)
    }

    fn upload(
        file: RemoteFile,
        size: u64,
        content_type: String,
    ) -> Result<http::WitRequest, PluginError> {
        remediation::upload(&file, size, &content_type)
    }
}

export_connector!(SharePoint);

/// Resolves every site and library, then checks the result columns exist and are writable.
fn check() -> Result<CheckReport, PluginError> {
    let settings = Settings::load()?;
    let libs = libraries::resolve(&settings)?;
    let mut details = Vec::new();
    let mut by_site: Vec<(String, Vec<String>)> = Vec::new();
    for lib in &libs {
        let (site, library) = lib
            .label
            .split_once(" / ")
            .unwrap_or((lib.label.as_str(), ""));
        match by_site.iter_mut().find(|(s, _)| s == site) {
            Some((_, l)) => l.push(library.to_string()),
            None => by_site.push((site.to_string(), vec![library.to_string()])),
        }
    }
    for (site, libs) in &by_site {
        details.push(format!("site {site}: {}", libs.join(", ")));
    }
    if settings.write_back {
        for lib in &libs {
            check_columns(&settings, lib)?;
        }
        let names: Vec<&str> = settings.columns.all().into_iter().map(|(_, c)| c).collect();
        details.push(format!(
            "columns {} present and writable in {} librar{}",
            names.join(", "),
            libs.len(),
            if libs.len() == 1 { "y" } else { "ies" }
        ));
        details.push(
            "write permission shows on the first write-back (Graph cannot test it without writing)"
                .into(),
        );
    } else {
        details.push("write-back is off: results stay in ProofPix".into());
    }
    let account = match (config::get(field::CLIENT_ID), config::get(field::TENANT)) {
        (Some(app), Some(tenant)) => Some(format!("app {app} in tenant {tenant}")),
        _ => None,
    };
    Ok(CheckReport { account, details })
}

fn check_columns(settings: &Settings, lib: &libraries::Library) -> Result<(), PluginError> {
    let url = format!(
        "{}/v1.0/sites/{}/lists/{}/columns?$select=name,displayName,readOnly",
        settings.graph, lib.site, lib.list
    );
    let v = graph::get_json(&url, &format!("reading the columns of {}", lib.label))?;
    let columns: Vec<&serde_json::Value> = v["value"].as_array().into_iter().flatten().collect();
    for (field_name, wanted) in settings.columns.all() {
        let exact = columns.iter().find(|c| c["name"].as_str() == Some(wanted));
        match exact {
            Some(c) if c["readOnly"].as_bool() == Some(true) => {
                return Err(PluginError::invalid_config(
                    Some(field_name),
                    format!(
                        "column {wanted} of {} is read-only; choose a writable column for `{field_name}`",
                        lib.label
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let by_display = columns.iter().find(|c| {
                    c["displayName"]
                        .as_str()
                        .is_some_and(|d| d.eq_ignore_ascii_case(wanted))
                });
                let hint = match by_display.and_then(|c| c["name"].as_str()) {
                    Some(internal) => format!(
                        "; a column displayed as {wanted} exists with the internal name {internal}: set `{field_name}` to {internal}"
                    ),
                    None => String::new(),
                };
                return Err(PluginError::invalid_config(
                    Some(field_name),
                    format!(
                        "{} has no column named {wanted}{hint}. Create it (library settings → Create column; risk: single line of text, score: number, findings: multiple lines of text, analysed-at: date and time) or with Graph (POST /sites/{{site-id}}/lists/{{list-id}}/columns), or set `{field_name}` to an existing column's internal name",
                        lib.label
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// How the Microsoft identity platform talks (contract 0.3; reference `saas-apis.md` §2.1):
/// credentials in the body, and errors identified by the AADSTS number every description starts
/// with.
fn oauth_dialect() -> OauthDialect {
    use AuthFailure as F;
    let aadsts = |d: OauthDialect, n: u64, kind: AuthFailure, hint: &str| {
        d.error_rule("*", &[], Some(&format!("AADSTS{n}:")), kind, hint)
    };
    let d = OauthDialect::rfc().client_auth(ClientAuth::Body);
    let d = aadsts(
        d,
        7_000_215,
        F::ClientRejected,
        "the client secret is wrong; paste the secret's Value (not its Secret ID) from the app registration's Certificates & secrets",
    );
    let d = aadsts(
        d,
        7_000_222,
        F::ClientRejected,
        "the client secret has expired; create a new one in the app registration",
    );
    let d = aadsts(
        d,
        7_000_218,
        F::ClientRejected,
        "no client secret was sent; set the integration's client secret",
    );
    let d = aadsts(
        d,
        700_016,
        F::ClientRejected,
        "no app with this client id exists in the tenant; check the Application (client) ID and the tenant, and that an administrator consented to the app there",
    );
    let d = aadsts(
        d,
        70_011,
        F::ScopeRejected,
        "client credentials need exactly one scope of the form https://graph.microsoft.com/.default",
    );
    let d = aadsts(
        d,
        500_011,
        F::ScopeRejected,
        "the scope names a resource this tenant does not know; check the scope URL",
    );
    aadsts(
        d,
        90_002,
        F::Rejected,
        "the tenant does not exist; check the tenant id or domain in the integration's settings",
    )
}
