//! The integration's configuration, parsed and checked once per call.
//!
//! What is scanned:
//!
//! | `shared_drive_id` | `include_shared_drives` | listed |
//! |---|---|---|
//! | empty | true (default) | My Drive of the account (or the impersonated user) and every shared drive it is a member of |
//! | empty | false | My Drive only |
//! | an id or a `drive.google.com/drive/folders/{id}` address | ignored | that shared drive only |
//!
//! The shared drive may be given the way a browser shows it: the address bar's URL is reduced to
//! its id. Every mistake names the field and what to write.

use proofpix_sdk::prelude::*;
use proofpix_sdk::settings::{base_url, fingerprint, in_range, problem};

/// Config field names.
pub mod field {
    pub const KEY: &str = "service_account_key";
    pub const EMAIL: &str = "service_account_email";
    pub const SUBJECT: &str = "impersonate_user";
    pub const SHARED_DRIVE: &str = "shared_drive_id";
    pub const INCLUDE_SHARED: &str = "include_shared_drives";
    pub const WRITE_BACK: &str = "write_back";
    pub const PREFIX: &str = "property_prefix";
    pub const PAGE_SIZE: &str = "page_size";
    pub const API_URL: &str = "api_url";
    pub const TOKEN_URL: &str = "token_url";
    pub const DOWNLOAD_HOST: &str = "download_host";
}

pub const DEFAULT_API_URL: &str = "https://www.googleapis.com";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Where `alt=media` may redirect with `307`: Google's content hosts, which take no bearer
/// token (the redirect URL carries its own short-lived credential).
pub const DEFAULT_DOWNLOAD_HOST: &str = "https://*.googleusercontent.com";
/// The `aud` Google expects in a service-account assertion (reference §5.1).
pub const AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// Writing `appProperties` needs the full Drive scope; `drive.file` covers only files the app
/// created, `drive.readonly` no writes at all.
pub const SCOPE: &str = "https://www.googleapis.com/auth/drive";
pub const DEFAULT_PREFIX: &str = "proofpix";
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// Longest property prefix: the longest key (`{prefix}AnalysedAt`) must leave room for a
/// 24-byte timestamp under the 124-byte limit, with margin.
pub const MAX_PREFIX_LEN: usize = 40;

/// Which files are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corpus {
    /// My Drive, plus the shared drives the account is a member of when `shared_drives`.
    MyDrive { shared_drives: bool },
    /// One shared drive.
    SharedDrive(String),
}

impl Corpus {
    pub fn describe(&self) -> String {
        match self {
            Corpus::MyDrive {
                shared_drives: true,
            } => "My Drive and every shared drive the account is a member of".into(),
            Corpus::MyDrive {
                shared_drives: false,
            } => "My Drive".into(),
            Corpus::SharedDrive(id) => format!("shared drive {id}"),
        }
    }
}

/// Everything a call needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API base URL without a trailing slash.
    pub api: String,
    pub corpus: Corpus,
    pub write_back: bool,
    pub prefix: String,
    pub page_size: u32,
}

impl Settings {
    /// Reads and checks the configuration.
    ///
    /// # Errors
    /// The first invalid field, named.
    pub fn load() -> Result<Self, PluginError> {
        RawConfig {
            api_url: config::get(field::API_URL),
            token_url: config::get(field::TOKEN_URL),
            email: config::get(field::EMAIL),
            subject: config::get(field::SUBJECT),
            shared_drive: config::get(field::SHARED_DRIVE),
            include_shared: config::flag(field::INCLUDE_SHARED, true),
            write_back: config::flag(field::WRITE_BACK, true),
            prefix: config::get(field::PREFIX),
            page_size: config::integer(field::PAGE_SIZE, DEFAULT_PAGE_SIZE)?,
        }
        .check()
    }

    /// A fingerprint of what decides which files are listed; a cursor made under another
    /// configuration starts a full listing.
    pub fn fingerprint(&self) -> String {
        fingerprint(format!("{}|{:?}", self.api, self.corpus))
    }

    /// `{api}/drive/v3/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/drive/v3/{path}", self.api)
    }
}

/// Raw values, so the checks are testable without a host.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub api_url: Option<String>,
    pub token_url: Option<String>,
    pub email: Option<String>,
    pub subject: Option<String>,
    pub shared_drive: Option<String>,
    pub include_shared: bool,
    pub write_back: bool,
    pub prefix: Option<String>,
    pub page_size: i64,
}

impl RawConfig {
    /// # Errors
    /// The first invalid field, with what to write instead.
    pub fn check(self) -> Result<Settings, PluginError> {
        // Google's own samples end the base URL in a slash: accepted, and dropped.
        let api = self
            .api_url
            .as_deref()
            .map(|v| v.trim().trim_end_matches('/'));
        let api = base_url(field::API_URL, api, DEFAULT_API_URL, Some("/drive/v3"))?;
        if let Some(t) = &self.token_url {
            let path = t
                .split_once("://")
                .map(|(_, r)| r)
                .and_then(|r| r.split_once('/'));
            if !path.is_some_and(|(host, p)| !host.is_empty() && !p.is_empty()) {
                return Err(problem(
                    field::TOKEN_URL,
                    format!(
                        "`{}` must be the full token endpoint, like {DEFAULT_TOKEN_URL}; got {t:?}",
                        field::TOKEN_URL
                    ),
                ));
            }
        }
        if let Some(e) = &self.email
            && !looks_like_email(e)
        {
            return Err(problem(
                field::EMAIL,
                format!(
                    "`{}` must be the service account's e-mail (client_email in its key file, like scanner@project.iam.gserviceaccount.com), got {e:?}; leave it empty to take it from the key",
                    field::EMAIL
                ),
            ));
        }
        if let Some(s) = &self.subject
            && !looks_like_email(s)
        {
            return Err(problem(
                field::SUBJECT,
                format!(
                    "`{}` must be a user's e-mail address in your Google Workspace domain, got {s:?}",
                    field::SUBJECT
                ),
            ));
        }
        let corpus = match self.shared_drive.as_deref().map(str::trim) {
            Some(raw) if !raw.is_empty() => Corpus::SharedDrive(shared_drive_id(raw)?),
            _ => Corpus::MyDrive {
                shared_drives: self.include_shared,
            },
        };
        let prefix = self
            .prefix
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string())
            .trim()
            .to_string();
        if prefix.is_empty()
            || prefix.len() > MAX_PREFIX_LEN
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(problem(
                field::PREFIX,
                format!(
                    "`{}` must be 1 to {MAX_PREFIX_LEN} letters, digits, _, - or . (the properties are named {{prefix}}Risk, {{prefix}}Score, ...), got {prefix:?}",
                    field::PREFIX
                ),
            ));
        }
        let page_size = in_range(
            field::PAGE_SIZE,
            self.page_size,
            1..=1000,
            Some("Drive's limit"),
        )?;
        Ok(Settings {
            api,
            corpus,
            write_back: self.write_back,
            prefix,
            page_size,
        })
    }
}

fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    s.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
    })
}

/// The shared drive id from an id or a `drive.google.com/drive/folders/{id}` address.
///
/// # Errors
/// Something that is neither, naming the field.
pub fn shared_drive_id(raw: &str) -> Result<String, PluginError> {
    let s = raw.trim();
    let id = match s.find("/folders/") {
        Some(at) => s
            .get(at + "/folders/".len()..)
            .unwrap_or_default()
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default(),
        None => s,
    };
    let ok = (8..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_string())
    } else {
        Err(problem(
            field::SHARED_DRIVE,
            format!(
                "`{}` must be a shared drive's id (open the shared drive in Drive; the id is the last part of the address, https://drive.google.com/drive/folders/<id>), got {s:?}",
                field::SHARED_DRIVE
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        RawConfig {
            include_shared: true,
            write_back: true,
            page_size: 100,
            ..RawConfig::default()
        }
    }

    fn problem_of(r: RawConfig) -> (Option<String>, String) {
        match r.check() {
            Err(PluginError::InvalidConfig(p)) => (p.field, p.message),
            other => panic!("expected a config problem, got {other:?}"),
        }
    }

    #[test]
    fn defaults_scan_my_drive_and_shared_drives_on_googleapis() {
        let s = raw().check().unwrap();
        assert_eq!(s.api, DEFAULT_API_URL);
        assert_eq!(
            s.corpus,
            Corpus::MyDrive {
                shared_drives: true
            }
        );
        assert_eq!(s.prefix, "proofpix");
        assert_eq!(s.url("files"), "https://www.googleapis.com/drive/v3/files");
    }

    #[test]
    fn a_shared_drive_is_taken_from_its_address_or_its_id() {
        for raw_id in [
            "0AFieldTeamDriveUk9PVA",
            "https://drive.google.com/drive/folders/0AFieldTeamDriveUk9PVA",
            " https://drive.google.com/drive/u/1/folders/0AFieldTeamDriveUk9PVA?usp=sharing ",
        ] {
            assert_eq!(
                shared_drive_id(raw_id).unwrap(),
                "0AFieldTeamDriveUk9PVA",
                "{raw_id}"
            );
        }
        let (field, message) = problem_of(RawConfig {
            shared_drive: Some("Field Team".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("shared_drive_id"));
        assert!(
            message.contains("drive.google.com/drive/folders/<id>"),
            "{message}"
        );
    }

    #[test]
    fn an_api_url_with_a_path_is_refused_naming_the_field() {
        let (field, message) = problem_of(RawConfig {
            api_url: Some("https://www.googleapis.com/drive/v3".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("api_url"));
        assert!(message.contains("without a path"), "{message}");
    }

    #[test]
    fn user_and_account_must_be_e_mail_addresses() {
        let (field, _) = problem_of(RawConfig {
            subject: Some("admin".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("impersonate_user"));
        let (field, message) = problem_of(RawConfig {
            email: Some("123456789".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("service_account_email"));
        assert!(message.contains("client_email"), "{message}");
    }

    #[test]
    fn page_size_and_prefix_are_bounded() {
        let (field, _) = problem_of(RawConfig {
            page_size: 1001,
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("page_size"));
        let (field, _) = problem_of(RawConfig {
            prefix: Some("pp risk".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("property_prefix"));
    }

    #[test]
    fn the_fingerprint_follows_what_is_listed() {
        let a = raw().check().unwrap().fingerprint();
        let b = RawConfig {
            include_shared: false,
            ..raw()
        }
        .check()
        .unwrap()
        .fingerprint();
        assert_ne!(a, b);
        assert_eq!(a, raw().check().unwrap().fingerprint());
    }
}
