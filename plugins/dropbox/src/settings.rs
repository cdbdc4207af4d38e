//! The integration's configuration, parsed and checked once per call.
//!
//! The folder is typed the way Dropbox shows it, so every spelling an operator is likely to paste
//! is accepted and turned into an API v2 path (reference §7.2: the root is `""`, not `/`):
//!
//! | typed | `path` sent |
//! |---|---|
//! | (empty), `/` | `""` (the whole Dropbox, or the app folder for an App-folder app) |
//! | `Photos`, `/Photos/` | `/Photos` |
//! | `https://www.dropbox.com/home/Photos%202026` | `/Photos 2026` |
//! | `id:a4ayc_80_OEAAAAAAAAAXw` | `id:a4ayc_80_OEAAAAAAAAAXw` |
//!
//! Every problem names the field and what to write instead (an operator's typo is the threat
//! here); base URLs must be a scheme and host only, since routes are appended to them.

use proofpix_sdk::http::percent_decode;
use proofpix_sdk::prelude::*;
use proofpix_sdk::settings::{base_url, fingerprint, in_range};

/// Config field names.
pub mod field {
    pub const APP_KEY: &str = "app_key";
    pub const APP_SECRET: &str = "app_secret";
    pub const FOLDER: &str = "folder";
    pub const WRITE_BACK: &str = "write_back";
    pub const TEMPLATE_ID: &str = "template_id";
    pub const PAGE_SIZE: &str = "page_size";
    pub const API_URL: &str = "api_url";
    pub const CONTENT_URL: &str = "content_url";
    pub const WWW_URL: &str = "www_url";
}

pub const DEFAULT_API_URL: &str = "https://api.dropboxapi.com";
pub const DEFAULT_CONTENT_URL: &str = "https://content.dropboxapi.com";
pub const DEFAULT_WWW_URL: &str = "https://www.dropbox.com";
/// Entries asked per `list_folder` page; Dropbox accepts 1–2000 (reference §7.2).
pub const DEFAULT_PAGE_SIZE: i64 = 500;
pub const MAX_PAGE_SIZE: i64 = 2000;

/// Everything a call needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RPC base URL without a trailing slash.
    pub api: String,
    /// Content (download) base URL without a trailing slash.
    pub content: String,
    /// The folder listed, as an API path (`""` for the root).
    pub folder: String,
    pub write_back: bool,
    /// An operator-given property template (`ptid:…`); `None` lets the plugin find or create
    /// its own.
    pub template_id: Option<String>,
    pub page_size: u32,
}

impl Settings {
    /// Reads and checks the configuration.
    ///
    /// # Errors
    /// The first invalid field, named.
    pub fn load() -> Result<Self, PluginError> {
        RawConfig {
            folder: config::get(field::FOLDER),
            api_url: config::get(field::API_URL),
            content_url: config::get(field::CONTENT_URL),
            www_url: config::get(field::WWW_URL),
            template_id: config::get(field::TEMPLATE_ID),
            write_back: config::flag(field::WRITE_BACK, true),
            page_size: config::integer(field::PAGE_SIZE, DEFAULT_PAGE_SIZE)?,
        }
        .check()
    }

    /// A fingerprint of what decides what is listed; a cursor made under another configuration
    /// starts a new full listing.
    pub fn fingerprint(&self) -> String {
        fingerprint(format!("{}|{}", self.api, self.folder.to_lowercase()))
    }

    /// How the folder reads in messages.
    pub fn folder_label(&self) -> &str {
        if self.folder.is_empty() {
            "the whole Dropbox"
        } else {
            &self.folder
        }
    }
}

/// Raw values, so the checks are testable without a host.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub folder: Option<String>,
    pub api_url: Option<String>,
    pub content_url: Option<String>,
    pub www_url: Option<String>,
    pub template_id: Option<String>,
    pub write_back: bool,
    pub page_size: i64,
}

impl RawConfig {
    /// # Errors
    /// The first invalid field, with what to write instead.
    pub fn check(self) -> Result<Settings, PluginError> {
        let api = base_url(
            field::API_URL,
            self.api_url.as_deref(),
            DEFAULT_API_URL,
            Some("/2"),
        )?;
        let content = base_url(
            field::CONTENT_URL,
            self.content_url.as_deref(),
            DEFAULT_CONTENT_URL,
            Some("/2"),
        )?;
        base_url(
            field::WWW_URL,
            self.www_url.as_deref(),
            DEFAULT_WWW_URL,
            None,
        )?;
        let folder = normalise_folder(self.folder.as_deref().unwrap_or(""))
            .map_err(|m| PluginError::invalid_config(Some(field::FOLDER), m))?;
        let template_id = match self.template_id.map(|t| t.trim().to_string()) {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) => {
                let ok = t.starts_with("ptid:")
                    && t.len() > 5
                    && t.len() <= 256
                    && t.chars().all(|c| c.is_ascii_graphic());
                if !ok {
                    return Err(PluginError::invalid_config(
                        Some(field::TEMPLATE_ID),
                        format!(
                            "`{}` must be a property template id like ptid:1a5n2i6d3OYEAAAAAAAAAYa (from /2/file_properties/templates/list_for_user with this app's key), or empty to let ProofPix create its own template; got {t:?}",
                            field::TEMPLATE_ID
                        ),
                    ));
                }
                Some(t)
            }
        };
        let page_size = in_range(
            field::PAGE_SIZE,
            self.page_size,
            1..=MAX_PAGE_SIZE,
            Some("Dropbox's list_folder limit"),
        )?;
        Ok(Settings {
            api,
            content,
            folder,
            write_back: self.write_back,
            template_id,
            page_size,
        })
    }
}

/// Turns what the operator typed into an API path.
///
/// # Errors
/// A message saying how to write the folder.
pub fn normalise_folder(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.starts_with("id:") || s.starts_with("ns:") {
        return Ok(s.to_string());
    }
    let path = if let Some((_, rest)) = s.split_once("://") {
        // An address bar URL: https://www.dropbox.com/home/Some%20Folder
        let after_host = rest.split_once('/').map_or("", |(_, p)| p);
        let after_host = after_host.split(['?', '#']).next().unwrap_or_default();
        match after_host.strip_prefix("home") {
            // The address bar writes a space as %20, and some links as +.
            Some(p) if p.is_empty() || p.starts_with('/') => percent_decode(&p.replace('+', " ")),
            _ => {
                return Err(format!(
                    "`folder` {s:?} is not a folder address; write a path like /Photos (as the Dropbox website shows it after /home), or leave it empty for the whole Dropbox"
                ));
            }
        }
    } else {
        s.to_string()
    };
    if path.contains('\\') {
        return Err(format!(
            "`folder` uses backslashes ({path:?}); Dropbox paths use /, like /Photos/2026"
        ));
    }
    let segments: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if segments.iter().any(|p| *p == "." || *p == "..") {
        return Err(format!(
            "`folder` {path:?} has . or .. in it; write the folder's full path from the root, like /Photos/2026"
        ));
    }
    if segments.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("/{}", segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        RawConfig {
            write_back: true,
            page_size: 500,
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
    fn folders_parse_from_every_spelling_an_operator_pastes() {
        for (typed, want) in [
            ("", ""),
            ("/", ""),
            (" Photos ", "/Photos"),
            ("/Photos/2026/", "/Photos/2026"),
            ("//Photos//2026", "/Photos/2026"),
            ("https://www.dropbox.com/home/Photos%202026", "/Photos 2026"),
            ("https://www.dropbox.com/home", ""),
            ("https://www.dropbox.com/home/Fotos?preview=a.jpg", "/Fotos"),
            ("id:a4ayc_80_OEAAAAAAAAAXw", "id:a4ayc_80_OEAAAAAAAAAXw"),
            ("/Ångström/日本", "/Ångström/日本"),
        ] {
            assert_eq!(normalise_folder(typed).as_deref(), Ok(want), "{typed:?}");
        }
        for bad in [
            "C:\\Photos",
            "/Photos/../x",
            "https://www.dropbox.com/s/abc/x.jpg",
        ] {
            assert!(normalise_folder(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_point_at_dropbox() {
        let s = raw().check().unwrap();
        assert_eq!(s.api, DEFAULT_API_URL);
        assert_eq!(s.content, DEFAULT_CONTENT_URL);
        assert_eq!(s.folder, "");
        assert_eq!(s.template_id, None);
        assert_eq!(s.folder_label(), "the whole Dropbox");
    }

    #[test]
    fn a_base_url_with_a_path_is_refused_naming_the_field() {
        let (field, message) = problem(RawConfig {
            content_url: Some("https://content.dropboxapi.com/2".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("content_url"));
        assert!(
            message.contains("without a path or trailing slash"),
            "{message}"
        );
    }

    #[test]
    fn a_template_id_must_look_like_one() {
        let (field, message) = problem(RawConfig {
            template_id: Some("ProofPix".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("template_id"));
        assert!(message.contains("ptid:"), "{message}");
        let ok = RawConfig {
            template_id: Some(" ptid:1a5n2i6d3OYEAAAAAAAAAYa ".into()),
            ..raw()
        }
        .check()
        .unwrap();
        assert_eq!(
            ok.template_id.as_deref(),
            Some("ptid:1a5n2i6d3OYEAAAAAAAAAYa")
        );
    }

    #[test]
    fn the_page_size_stays_within_dropbox_limits() {
        let (field, message) = problem(RawConfig {
            page_size: 2001,
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("page_size"));
        assert!(message.contains("between 1 and 2000"), "{message}");
    }

    #[test]
    fn the_fingerprint_follows_the_folder_not_its_case() {
        let a = RawConfig {
            folder: Some("/Photos".into()),
            ..raw()
        };
        let b = RawConfig {
            folder: Some("/photos/".into()),
            ..raw()
        };
        let fa = a.check().unwrap().fingerprint();
        assert_eq!(fa, b.check().unwrap().fingerprint());
        assert_ne!(fa, raw().check().unwrap().fingerprint());
    }
}
