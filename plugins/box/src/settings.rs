//! The integration's configuration, parsed and checked once per call.
//!
//! Operators copy folders out of the Box web app, so a folder is accepted as its id or as the
//! address the browser shows:
//!
//! | typed | folder id |
//! |---|---|
//! | `123456789` | `123456789` |
//! | `https://app.box.com/folder/123456789` | `123456789` |
//! | `https://acme.app.box.com/folder/123456789?s=x` | `123456789` |
//! | `0` | `0` ("All Files" of the account ProofPix acts as) |
//!
//! Anything else is refused with where to find the id. Base URLs are a scheme and host only,
//! so a paging link or redirect can be checked against them exactly.

use proofpix_sdk::prelude::*;
use proofpix_sdk::settings::{base_url, fingerprint, in_range};

/// Config field names.
pub mod field {
    pub const CLIENT_ID: &str = "client_id";
    pub const CLIENT_SECRET: &str = "client_secret";
    /// The reserved `auth_flow` choice: whom the client-credentials grant acts for.
    pub const SUBJECT_TYPE: &str = proofpix_sdk::AUTH_FLOW_FIELD;
    pub const SUBJECT_ID: &str = "subject_id";
    pub const FOLDERS: &str = "folders";
    pub const RECURSIVE: &str = "recursive";
    pub const WRITE_BACK: &str = "write_back";
    pub const TEMPLATE_KEY: &str = "template_key";
    pub const SUMMARY_MAX: &str = "summary_max_chars";
    pub const PAGE_SIZE: &str = "page_size";
    pub const API_URL: &str = "api_url";
    pub const DOWNLOAD_HOST: &str = "download_host";
    /// JWT flows: the id of the public key registered in the Box app.
    pub const JWT_KEY_ID: &str = "jwt_public_key_id";
    /// JWT flows: the matching private key, unencrypted PEM.
    pub const JWT_PRIVATE_KEY: &str = "jwt_private_key";
}

pub const DEFAULT_API_URL: &str = "https://api.box.com";
pub const DEFAULT_DOWNLOAD_HOST: &str = "https://*.boxcloud.com";
pub const DEFAULT_TEMPLATE_KEY: &str = "proofpixPrivacy";
pub const DEFAULT_SUMMARY_MAX: i64 = 1000;
/// Box's largest `limit` for folder items.
pub const DEFAULT_PAGE_SIZE: i64 = 1000;
/// `box_subject_type` values.
pub const SUBJECT_ENTERPRISE: &str = "enterprise";
pub const SUBJECT_USER: &str = "user";
/// `auth_flow` values of the JWT grant (Box's Server Authentication with JWT), by subject.
pub const JWT_ENTERPRISE: &str = "jwt-enterprise";
pub const JWT_USER: &str = "jwt-user";
/// What Box wants as every JWT assertion's audience, wherever the token request goes.
pub const JWT_AUDIENCE: &str = "https://api.box.com/oauth2/token";

/// The `box_subject_type` of an `auth_flow` value, and whether it is the JWT grant.
pub fn flow_subject(flow: &str) -> Option<(&'static str, bool)> {
    match flow {
        SUBJECT_ENTERPRISE => Some((SUBJECT_ENTERPRISE, false)),
        SUBJECT_USER => Some((SUBJECT_USER, false)),
        JWT_ENTERPRISE => Some((SUBJECT_ENTERPRISE, true)),
        JWT_USER => Some((SUBJECT_USER, true)),
        _ => None,
    }
}

/// Everything a call needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API base URL without a trailing slash.
    pub api: String,
    /// Folder ids, deduplicated, in the order given.
    pub folders: Vec<String>,
    pub recursive: bool,
    pub write_back: bool,
    pub template_key: String,
    pub summary_max: usize,
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
            subject_type: config::get(field::SUBJECT_TYPE),
            subject_id: config::get(field::SUBJECT_ID),
            folders: config::list(field::FOLDERS),
            recursive: config::flag(field::RECURSIVE, true),
            write_back: config::flag(field::WRITE_BACK, true),
            template_key: config::get(field::TEMPLATE_KEY),
            summary_max: config::integer(field::SUMMARY_MAX, DEFAULT_SUMMARY_MAX)?,
            page_size: config::integer(field::PAGE_SIZE, DEFAULT_PAGE_SIZE)?,
        }
        .check()
    }

    /// A fingerprint of what decides which files are listed; a cursor made under another
    /// configuration starts a new enumeration.
    pub fn fingerprint(&self) -> String {
        fingerprint(format!(
            "{}|{}|{}",
            self.api,
            self.folders.join(","),
            self.recursive
        ))
    }
}

/// Raw values, so the checks are testable without a host.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub api_url: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub folders: Vec<String>,
    pub recursive: bool,
    pub write_back: bool,
    pub template_key: Option<String>,
    pub summary_max: i64,
    pub page_size: i64,
}

impl RawConfig {
    /// # Errors
    /// The first invalid field, with what to write instead.
    pub fn check(self) -> Result<Settings, PluginError> {
        let flow = self.subject_type.as_deref().unwrap_or(SUBJECT_ENTERPRISE);
        let Some((subject_type, _jwt)) = flow_subject(flow) else {
            return Err(PluginError::invalid_config(
                Some(field::SUBJECT_TYPE),
                format!(
                    "`{}` must be `enterprise` (the app's service account) or `user` (a managed user), with the Client Credentials Grant, or `jwt-enterprise` or `jwt-user` with the JWT grant; got {flow:?}",
                    field::SUBJECT_TYPE
                ),
            ));
        };
        match self.subject_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {}
            other => {
                let where_ = if subject_type == SUBJECT_USER {
                    "the user's id (Admin Console → Users and Groups → the user → User ID)"
                } else {
                    "your Enterprise ID (Admin Console → Account & Billing → Account Information, or the Developer Console app's General Settings)"
                };
                return Err(PluginError::invalid_config(
                    Some(field::SUBJECT_ID),
                    format!(
                        "`{}` must be {where_}, all digits; got {:?}",
                        field::SUBJECT_ID,
                        other.unwrap_or_default()
                    ),
                ));
            }
        }
        let api = base_url(
            field::API_URL,
            self.api_url.as_deref(),
            DEFAULT_API_URL,
            Some("/2.0"),
        )?;
        if self.folders.is_empty() {
            return Err(PluginError::invalid_config(
                Some(field::FOLDERS),
                "`folders` is empty; list at least one folder id, like 123456789 (the number at the end of the folder's address in the Box web app), or 0 for everything the account can see",
            ));
        }
        let mut folders: Vec<String> = Vec::new();
        for raw in &self.folders {
            let id = parse_folder(raw)
                .map_err(|m| PluginError::invalid_config(Some(field::FOLDERS), m))?;
            if !folders.contains(&id) {
                folders.push(id);
            }
        }
        let template_key = self
            .template_key
            .unwrap_or_else(|| DEFAULT_TEMPLATE_KEY.to_string());
        let key_ok = template_key.len() <= 64
            && template_key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && template_key.chars().all(|c| c.is_ascii_alphanumeric());
        if !key_ok {
            return Err(PluginError::invalid_config(
                Some(field::TEMPLATE_KEY),
                format!(
                    "`{}` must be a metadata template's key (letters and digits, starting with a letter, like proofpixPrivacy), not its display name; got {template_key:?}",
                    field::TEMPLATE_KEY
                ),
            ));
        }
        let summary_max = in_range(field::SUMMARY_MAX, self.summary_max, 16..=10_000, None)?;
        let page_size = in_range(
            field::PAGE_SIZE,
            self.page_size,
            1..=1000,
            Some("Box's largest page"),
        )?;
        Ok(Settings {
            api,
            folders,
            recursive: self.recursive,
            write_back: self.write_back,
            template_key,
            summary_max,
            page_size,
        })
    }
}

/// A folder id from an id or a Box web address.
///
/// # Errors
/// What was typed, and where to find the id.
pub fn parse_folder(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let candidate = if s.contains('/') {
        let no_query = s.split(['?', '#']).next().unwrap_or(s);
        let mut segments = no_query.trim_end_matches('/').rsplit('/');
        let last = segments.next().unwrap_or_default();
        let before = segments.next().unwrap_or_default();
        if before != "folder" {
            return Err(format!(
                "{s:?} is not a folder address; open the folder in the Box web app and copy its address (https://app.box.com/folder/123456789) or just the number at its end"
            ));
        }
        last
    } else {
        s
    };
    if !candidate.is_empty()
        && candidate.len() <= 20
        && candidate.chars().all(|c| c.is_ascii_digit())
    {
        Ok(candidate.to_string())
    } else {
        Err(format!(
            "{s:?} is not a Box folder id; folders are given by id, the number at the end of the folder's address in the Box web app (app.box.com/folder/123456789), not by name"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn raw() -> RawConfig {
        RawConfig {
            subject_id: Some("987654".into()),
            folders: vec!["123".into()],
            recursive: true,
            write_back: true,
            summary_max: 1000,
            page_size: 1000,
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
    fn folders_parse_from_ids_and_every_address_the_web_app_shows() {
        for raw in [
            "123456789",
            " https://app.box.com/folder/123456789 ",
            "https://acme.app.box.com/folder/123456789/",
            "app.box.com/folder/123456789?s=abc#x",
        ] {
            assert_eq!(parse_folder(raw).as_deref(), Ok("123456789"), "{raw}");
        }
        assert_eq!(parse_folder("0").as_deref(), Ok("0"));
        let err = parse_folder("Fieldwork").unwrap_err();
        assert!(err.contains("not by name"), "{err}");
        let err = parse_folder("https://app.box.com/file/123").unwrap_err();
        assert!(err.contains("not a folder address"), "{err}");
    }

    #[test]
    fn a_folder_given_twice_is_listed_once() {
        let s = RawConfig {
            folders: vec![
                "5".into(),
                "https://app.box.com/folder/5".into(),
                "6".into(),
            ],
            ..raw()
        }
        .check()
        .unwrap();
        assert_eq!(s.folders, ["5", "6"]);
    }

    #[test]
    fn a_missing_or_non_numeric_subject_id_says_where_to_find_it() {
        let (field, message) = problem(RawConfig {
            subject_id: None,
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("subject_id"));
        assert!(message.contains("Enterprise ID"), "{message}");
        let (_, message) = problem(RawConfig {
            subject_type: Some("user".into()),
            subject_id: Some("jane@acme.example".into()),
            ..raw()
        });
        assert!(message.contains("User ID"), "{message}");
    }

    #[test]
    fn a_template_display_name_is_not_taken_for_its_key() {
        let (field, message) = problem(RawConfig {
            template_key: Some("ProofPix privacy".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("template_key"));
        assert!(message.contains("not its display name"), "{message}");
    }

    #[test]
    fn an_api_url_with_a_path_is_refused() {
        let (field, message) = problem(RawConfig {
            api_url: Some("https://api.box.com/2.0".into()),
            ..raw()
        });
        assert_eq!(field.as_deref(), Some("api_url"));
        assert!(message.contains("without /2.0"), "{message}");
    }

    #[test]
    fn the_fingerprint_follows_folders_and_recursion() {
        let a = raw().check().unwrap().fingerprint();
        let b = RawConfig {
            recursive: false,
            ..raw()
        }
        .check()
        .unwrap()
        .fingerprint();
        assert_ne!(a, b);
        assert_eq!(a, raw().check().unwrap().fingerprint());
    }
}
