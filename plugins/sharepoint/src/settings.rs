//! The integration's configuration, parsed and checked once per call.
//!
//! The operator types sites the way SharePoint shows them, so every spelling a browser's address
//! bar gives is accepted and turned into a Graph site reference:
//!
//! | typed | Graph request |
//! |---|---|
//! | `contoso.sharepoint.com/sites/Marketing` | `GET /sites/contoso.sharepoint.com:/sites/Marketing` |
//! | `https://contoso.sharepoint.com/sites/Marketing/` | the same |
//! | `contoso.sharepoint.com` | `GET /sites/contoso.sharepoint.com` (the root site) |
//! | `contoso.sharepoint.com,{site guid},{web guid}` | `GET /sites/{that id}` |
//!
//! Libraries are matched by drive name (`Documents`), by the last segment of their address
//! (`Shared Documents`), or by drive id (`b!…`). An empty list means every document library of
//! every configured site.

use proofpix_sdk::http::{percent_decode, percent_encode};
use proofpix_sdk::prelude::*;
use proofpix_sdk::settings::{base_url, fingerprint, in_range};

/// Config field names.
pub mod field {
    pub const TENANT: &str = "tenant";
    pub const CLIENT_ID: &str = "client_id";
    pub const CLIENT_SECRET: &str = "client_secret";
    pub const SITES: &str = "sites";
    pub const LIBRARIES: &str = "libraries";
    pub const RISK_COLUMN: &str = "risk_column";
    pub const SCORE_COLUMN: &str = "score_column";
    pub const SUMMARY_COLUMN: &str = "summary_column";
    pub const ANALYSED_COLUMN: &str = "analysed_at_column";
    pub const WRITE_BACK: &str = "write_back";
    pub const SUMMARY_MAX: &str = "summary_max_chars";
    pub const PAGE_SIZE: &str = "page_size";
    pub const GRAPH_URL: &str = "graph_url";
    pub const LOGIN_URL: &str = "login_url";
    pub const DOWNLOAD_HOST: &str = "download_host";
    pub const CLIENT_STATE: &str = "client_state";
}

pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
pub const DEFAULT_DOWNLOAD_HOST: &str = "https://*.sharepoint.com";
pub const DEFAULT_RISK_COLUMN: &str = "ProofPixRisk";
pub const DEFAULT_SCORE_COLUMN: &str = "ProofPixScore";
pub const DEFAULT_SUMMARY_COLUMN: &str = "ProofPixFindings";
/// A single line of text holds 255 characters; a longer summary would be refused.
pub const DEFAULT_SUMMARY_MAX: i64 = 255;
/// Delta page size asked for; Graph may send fewer.
pub const DEFAULT_PAGE_SIZE: i64 = 200;

/// A site as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteRef {
    /// `hostname` + server-relative path (empty for the root site).
    Path { host: String, path: String },
    /// A Graph site id.
    Id(String),
}

impl SiteRef {
    /// Parses one entry of `sites`.
    ///
    /// # Errors
    /// An entry that is neither a site address nor a site id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let s = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let s = s.trim_end_matches('/');
        if s.is_empty() {
            return Err("an empty site entry".into());
        }
        if s.contains(',') && !s.contains('/') {
            if s.split(',').count() != 3 {
                return Err(format!(
                    "{raw:?} looks like a site id but is not `hostname,site-guid,web-guid`"
                ));
            }
            return Ok(SiteRef::Id(s.to_string()));
        }
        let (host, path) = match s.split_once('/') {
            Some((h, p)) => (h, format!("/{p}")),
            None => (s, String::new()),
        };
        if host.is_empty() || !host.contains('.') || host.contains(':') {
            return Err(format!(
                "{raw:?} is not a SharePoint site address; write it like contoso.sharepoint.com/sites/Marketing"
            ));
        }
        // Links copied from a browser often end in a page or a library view.
        let path = match path.find("/_layouts/").or_else(|| path.find("/SitePages/")) {
            Some(i) => path.get(..i).unwrap_or_default().to_string(),
            None => path,
        };
        Ok(SiteRef::Path {
            host: host.to_ascii_lowercase(),
            path,
        })
    }

    /// The Graph URL of the site.
    pub fn url(&self, graph: &str) -> String {
        match self {
            SiteRef::Id(id) => format!("{graph}/v1.0/sites/{}", percent_encode_keep(id, ",")),
            SiteRef::Path { host, path } if path.is_empty() => {
                format!("{graph}/v1.0/sites/{host}")
            }
            SiteRef::Path { host, path } => {
                let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
                format!("{graph}/v1.0/sites/{host}:{}", encoded.join("/"))
            }
        }
    }

    /// How the operator wrote it, normalised, for messages.
    pub fn display(&self) -> String {
        match self {
            SiteRef::Id(id) => id.clone(),
            SiteRef::Path { host, path } => format!("{host}{path}"),
        }
    }
}

/// Percent-encodes `s` except the characters in `keep`.
fn percent_encode_keep(s: &str, keep: &str) -> String {
    s.split(|c| keep.contains(c))
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join(keep.get(..1).unwrap_or(""))
}

/// A library as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryRef {
    /// By name (drive name or the last segment of its address).
    Name(String),
    /// By drive id.
    DriveId(String),
}

impl LibraryRef {
    pub fn parse(raw: &str) -> Self {
        let s = raw.trim();
        if s.starts_with("b!") {
            LibraryRef::DriveId(s.to_string())
        } else {
            LibraryRef::Name(s.to_string())
        }
    }

    pub fn display(&self) -> &str {
        match self {
            LibraryRef::Name(n) | LibraryRef::DriveId(n) => n,
        }
    }

    /// Whether a drive (`id`, `name`, `webUrl`) is this library.
    pub fn matches(&self, id: &str, name: &str, web_url: &str) -> bool {
        match self {
            LibraryRef::DriveId(d) => d == id,
            LibraryRef::Name(n) => {
                let last = web_url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(&percent_decode(last))
            }
        }
    }
}

/// The columns results go to (internal names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub risk: String,
    pub score: String,
    pub summary: String,
    pub analysed_at: Option<String>,
}

impl Columns {
    /// (config field, column name) of every column written.
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            (field::RISK_COLUMN, self.risk.as_str()),
            (field::SCORE_COLUMN, self.score.as_str()),
            (field::SUMMARY_COLUMN, self.summary.as_str()),
        ];
        if let Some(a) = &self.analysed_at {
            v.push((field::ANALYSED_COLUMN, a.as_str()));
        }
        v
    }
}

/// Everything a call needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Graph base URL without a trailing slash.
    pub graph: String,
    pub sites: Vec<SiteRef>,
    pub libraries: Vec<LibraryRef>,
    pub columns: Columns,
    pub write_back: bool,
    pub summary_max: usize,
    pub page_size: u32,
}

impl Settings {
    /// Reads and checks the configuration.
    ///
    /// # Errors
    /// The first invalid field, named.
    pub fn load() -> Result<Self, PluginError> {
        let raw = RawConfig {
            tenant: config::get(field::TENANT),
            graph_url: config::get(field::GRAPH_URL),
            login_url: config::get(field::LOGIN_URL),
            sites: config::list(field::SITES),
            libraries: config::list(field::LIBRARIES),
            risk: config::get(field::RISK_COLUMN),
            score: config::get(field::SCORE_COLUMN),
            summary: config::get(field::SUMMARY_COLUMN),
            analysed_at: config::get(field::ANALYSED_COLUMN),
            write_back: config::flag(field::WRITE_BACK, true),
            summary_max: config::integer(field::SUMMARY_MAX, DEFAULT_SUMMARY_MAX)?,
            page_size: config::integer(field::PAGE_SIZE, DEFAULT_PAGE_SIZE)?,
        };
        raw.check()
    }

    /// A fingerprint of what decides which libraries are listed; a cursor made under another
    /// configuration is re-resolved.
    pub fn fingerprint(&self) -> String {
        let sites: Vec<String> = self.sites.iter().map(SiteRef::display).collect();
        let libs: Vec<&str> = self.libraries.iter().map(LibraryRef::display).collect();
        fingerprint(format!(
            "{}|{}|{}",
            self.graph,
            sites.join(","),
            libs.join(",")
        ))
    }
}

/// Raw values, so the checks are testable without a host.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub tenant: Option<String>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
    pub sites: Vec<String>,
    pub libraries: Vec<String>,
    pub risk: Option<String>,
    pub score: Option<String>,
    pub summary: Option<String>,
    pub analysed_at: Option<String>,
    pub write_back: bool,
    pub summary_max: i64,
    pub page_size: i64,
}

impl RawConfig {
    /// # Errors
    /// The first invalid field, with what to write instead.
    pub fn check(self) -> Result<Settings, PluginError> {
        if let Some(t) = &self.tenant {
            let t = t.trim().to_ascii_lowercase();
            if matches!(t.as_str(), "common" | "organizations" | "consumers") {
                return Err(PluginError::invalid_config(
                    Some(field::TENANT),
                    format!(
                        "`tenant` is {t:?}, which app-only (client credentials) sign-in does not accept; use your directory (tenant) ID or a domain like contoso.onmicrosoft.com (Microsoft Entra admin center → Overview)"
                    ),
                ));
            }
        }
        let graph = base_url(
            field::GRAPH_URL,
            self.graph_url.as_deref(),
            DEFAULT_GRAPH_URL,
            Some("/v1.0"),
        )?;
        base_url(
            field::LOGIN_URL,
            self.login_url.as_deref(),
            DEFAULT_LOGIN_URL,
            None,
        )?;
        if self.sites.is_empty() {
            return Err(PluginError::invalid_config(
                Some(field::SITES),
                "`sites` is empty; list at least one site, like contoso.sharepoint.com/sites/Marketing",
            ));
        }
        let mut sites = Vec::new();
        for s in &self.sites {
            sites.push(
                SiteRef::parse(s)
                    .map_err(|e| PluginError::invalid_config(Some(field::SITES), e))?,
            );
        }
        let libraries = self
            .libraries
            .iter()
            .map(|l| LibraryRef::parse(l))
            .collect();
        let column =
            |name: &'static str, v: Option<String>, default: &str| -> Result<String, PluginError> {
                let v = v.unwrap_or_else(|| default.to_string());
                check_column_name(name, &v)?;
                Ok(v)
            };
        let columns = Columns {
            risk: column(field::RISK_COLUMN, self.risk, DEFAULT_RISK_COLUMN)?,
            score: column(field::SCORE_COLUMN, self.score, DEFAULT_SCORE_COLUMN)?,
            summary: column(field::SUMMARY_COLUMN, self.summary, DEFAULT_SUMMARY_COLUMN)?,
            analysed_at: match self.analysed_at {
                Some(v) => {
                    check_column_name(field::ANALYSED_COLUMN, &v)?;
                    Some(v)
                }
                None => None,
            },
        };
        let summary_max = in_range(
            field::SUMMARY_MAX,
            self.summary_max,
            16..=63_999,
            Some("255 for a single line of text column"),
        )?;
        let page_size = in_range(field::PAGE_SIZE, self.page_size, 1..=999, None)?;
        Ok(Settings {
            graph,
            sites,
            libraries,
            columns,
            write_back: self.write_back,
            summary_max,
            page_size,
        })
    }
}

/// SharePoint internal column names are letters, digits and `_` (spaces become `_x0020_`).
fn check_column_name(field: &str, name: &str) -> Result<(), PluginError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PluginError::invalid_config(
            Some(field),
            format!(
                "`{field}` must be a column's internal name (letters, digits and _; a display name with spaces has an internal name like My_x0020_Column), got {name:?}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_parse_from_every_spelling_a_browser_gives() {
        let want = SiteRef::Path {
            host: "contoso.sharepoint.com".into(),
            path: "/sites/Marketing".into(),
        };
        for raw in [
            "contoso.sharepoint.com/sites/Marketing",
            "https://contoso.sharepoint.com/sites/Marketing/",
            "https://Contoso.SharePoint.com/sites/Marketing/SitePages/Home.aspx",
            " contoso.sharepoint.com/sites/Marketing/_layouts/15/viewlsts.aspx ",
        ] {
            assert_eq!(SiteRef::parse(raw).unwrap(), want, "{raw}");
        }
        assert_eq!(
            SiteRef::parse("contoso.sharepoint.com").unwrap(),
            SiteRef::Path {
                host: "contoso.sharepoint.com".into(),
                path: String::new()
            }
        );
        assert!(matches!(
            SiteRef::parse("contoso.sharepoint.com,1a2b,3c4d").unwrap(),
            SiteRef::Id(_)
        ));
        assert!(SiteRef::parse("marketing").is_err());
        assert!(SiteRef::parse("a.com,b").is_err());
    }

    #[test]
    fn site_urls_use_graph_path_addressing_with_encoded_segments() {
        let s = SiteRef::parse("contoso.sharepoint.com/sites/Field Ops").unwrap();
        assert_eq!(
            s.url("https://graph.microsoft.com"),
            "https://graph.microsoft.com/v1.0/sites/contoso.sharepoint.com:/sites/Field%20Ops"
        );
        let id = SiteRef::parse("contoso.sharepoint.com,aa,bb").unwrap();
        assert_eq!(
            id.url("http://g"),
            "http://g/v1.0/sites/contoso.sharepoint.com,aa,bb"
        );
    }

    #[test]
    fn libraries_match_by_name_address_or_drive_id() {
        let docs = LibraryRef::parse("Shared Documents");
        assert!(docs.matches("b!1", "Documents", "https://x/sites/a/Shared%20Documents"));
        assert!(LibraryRef::parse("documents").matches("b!1", "Documents", ""));
        assert!(LibraryRef::parse("b!1").matches("b!1", "Documents", ""));
        assert!(!LibraryRef::parse("Photos").matches("b!1", "Documents", "https://x/Documents"));
    }

    fn raw() -> RawConfig {
        RawConfig {
            tenant: Some("contoso.onmicrosoft.com".into()),
            sites: vec!["contoso.sharepoint.com/sites/a".into()],
            write_back: true,
            summary_max: 255,
            page_size: 200,
            ..RawConfig::default()
        }
    }

    fn problem(r: RawConfig) -> (Option<String>, String) {
        match r.check() {
            Err(PluginError::InvalidConfig(p)) => (p.field, p.message),
            other => panic!("expected a config problem, got {other:?}"),
        }
    }

    #[test]
    fn a_multi_tenant_alias_is_refused_with_where_to_find_the_tenant_id() {
        let (field, message) = problem(RawConfig {
            tenant: Some("common".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("tenant"));
        assert!(message.contains("directory (tenant) ID"), "{message}");
    }

    #[test]
    fn a_base_url_with_a_path_is_refused() {
        let (field, message) = problem(RawConfig {
            login_url: Some("https://login.microsoftonline.com/".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("login_url"));
        assert!(
            message.contains("without a path or trailing slash"),
            "{message}"
        );
    }

    #[test]
    fn a_display_name_with_spaces_is_not_taken_for_a_column_name() {
        let (field, message) = problem(RawConfig {
            risk: Some("Privacy risk".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("risk_column"));
        assert!(message.contains("_x0020_"), "{message}");
    }

    #[test]
    fn defaults_fill_the_columns_and_the_graph_url() {
        let s = raw().check().unwrap();
        assert_eq!(s.graph, DEFAULT_GRAPH_URL);
        assert_eq!(s.columns.risk, "ProofPixRisk");
        assert_eq!(s.columns.all().len(), 3);
    }

    #[test]
    fn the_fingerprint_follows_sites_and_libraries() {
        let a = raw().check().unwrap().fingerprint();
        let b = RawConfig {
            libraries: vec!["Documents".into()],
            ..raw()
        }
        .check()
        .unwrap()
        .fingerprint();
        assert_ne!(a, b);
        assert_eq!(a, raw().check().unwrap().fingerprint());
    }
}
