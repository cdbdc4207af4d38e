//! Checking the integration's settings: typed values, and errors that say what to write.
//!
//! [`crate::config`] reads raw values from the host. The checks here are pure functions over
//! those values, so a plugin can read everything once (`Settings::load`) and check it in a
//! function its unit tests call without a host. Each check answers a typed value or an
//! `invalid-config` error that names the field (the setup form shows the message next to it),
//! says what the value must be, with an example, and quotes what was given. The threat is the
//! operator's typo: an address pasted with a path, a number out of the platform's range.
//!
//! ```
//! use proofpix_sdk::settings::{base_url, fingerprint, in_range};
//!
//! let page_size: u32 = in_range("page_size", 500, 1..=1000, Some("Box's largest page")).unwrap();
//! assert_eq!(page_size, 500);
//! let err = in_range::<u32>("page_size", 5000, 1..=1000, Some("Box's largest page")).unwrap_err();
//! assert_eq!(
//!     err.message(),
//!     "`page_size` must be between 1 and 1000 (Box's largest page), got 5000"
//! );
//!
//! let api = base_url("api_url", Some(" https://api.box.com "), "https://api.box.com", None);
//! assert_eq!(api.unwrap(), "https://api.box.com");
//! assert!(base_url("api_url", Some("https://api.box.com/2.0"), "https://api.box.com", None).is_err());
//!
//! // A cursor made under other settings starts over.
//! assert_ne!(fingerprint("https://api.box.com|123"), fingerprint("https://api.box.com|456"));
//! ```

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::PluginError;

/// `value` of `field` as a `T`, if it lies in `range`.
///
/// `why`, when given, says where the bounds come from (the platform's limit, a column's width)
/// and is shown in parentheses.
///
/// # Errors
/// `invalid-config` naming `field`: "`page_size` must be between 1 and 1000 (Box's largest
/// page), got 5000". Also when `value` is in `range` but does not fit `T` (a range wider than
/// the type is the plugin's mistake, and no value is silently replaced).
pub fn in_range<T: TryFrom<i64>>(
    field: &str,
    value: i64,
    range: RangeInclusive<i64>,
    why: Option<&str>,
) -> Result<T, PluginError> {
    let typed = if range.contains(&value) {
        T::try_from(value).ok()
    } else {
        None
    };
    typed.ok_or_else(|| {
        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
        PluginError::invalid_config(
            Some(field),
            format!(
                "`{field}` must be between {} and {}{why}, got {value}",
                range.start(),
                range.end()
            ),
        )
    })
}

/// A base URL: `http` or `https`, a host (and port), nothing after it. Routes are appended to a
/// base URL, and paging links and redirects are checked against it, so it must be exactly an
/// origin. Surrounding white space is ignored; an unset value is `default`.
///
/// `path_hint`, when given, names the path operators tend to paste by mistake (`/2.0`), to
/// quote in the message.
///
/// # Errors
/// `invalid-config` naming `field`, with `default` as the example: a value without a scheme
/// ("must start with https://"), or with a path, query, fragment or trailing slash ("must be a
/// scheme and host only ... without a path or trailing slash").
///
/// # Examples
///
/// ```
/// use proofpix_sdk::settings::base_url;
///
/// let graph = "https://graph.microsoft.com";
/// assert_eq!(base_url("graph_url", None, graph, None).unwrap(), graph);
/// assert_eq!(
///     base_url("graph_url", Some("http://127.0.0.1:8080"), graph, None).unwrap(),
///     "http://127.0.0.1:8080"
/// );
/// let e = base_url("api_url", Some("https://api.box.com/2.0"), "https://api.box.com", Some("/2.0"));
/// assert_eq!(
///     e.unwrap_err().message(),
///     "`api_url` must be a scheme and host only, like https://api.box.com, without a path or \
///      trailing slash (so without /2.0); got \"https://api.box.com/2.0\""
/// );
/// ```
pub fn base_url(
    field: &str,
    value: Option<&str>,
    default: &str,
    path_hint: Option<&str>,
) -> Result<String, PluginError> {
    let v = value.unwrap_or(default).trim();
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(problem(
            field,
            format!("`{field}` must start with https://, like {default}; got {v:?}"),
        ));
    };
    let bad_scheme = !matches!(scheme, "https" | "http");
    if bad_scheme || rest.is_empty() || rest.contains(['/', '?', '#']) || has_control(rest) {
        let hint = path_hint
            .map(|p| format!(" (so without {p})"))
            .unwrap_or_default();
        return Err(problem(
            field,
            format!(
                "`{field}` must be a scheme and host only, like {default}, without a path or trailing slash{hint}; got {v:?}"
            ),
        ));
    }
    Ok(v.to_string())
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A list of file extensions as the operator typed them (`JPG`, `.heic`), lower case without the
/// dot; `default` (comma-separated, such as `jpg,jpeg,png`) when the list is empty. Checking
/// what is left (length, characters) is the caller's.
///
/// # Examples
///
/// ```
/// use proofpix_sdk::settings::extensions;
///
/// assert_eq!(extensions(vec![".JPG".into(), "heic".into()], "png"), ["jpg", "heic"]);
/// assert_eq!(extensions(vec![], "jpg,png"), ["jpg", "png"]);
/// ```
pub fn extensions(typed: Vec<String>, default: &str) -> Vec<String> {
    let typed = if typed.is_empty() {
        default.split(',').map(String::from).collect()
    } else {
        typed
    };
    typed
        .into_iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
        .collect()
}

/// A problem with `field`: `invalid-config` naming it, for checks this module does not have.
pub fn problem(field: &str, message: impl Display) -> PluginError {
    PluginError::invalid_config(Some(field), message.to_string())
}

/// A short, stable fingerprint of the settings that decide what a source lists (its base URL,
/// folders, filters). Store it with the cursor: a cursor made under another fingerprint belongs
/// to other settings, and the listing starts over. 16 hex digits of FNV-1a, as
/// [`crate::writeback::digest`].
pub fn fingerprint(settings: impl AsRef<[u8]>) -> String {
    crate::writeback::digest(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: PluginError) -> (Option<String>, String) {
        match e {
            PluginError::InvalidConfig(p) => (p.field, p.message),
            other => panic!("expected a config problem, got {other:?}"),
        }
    }

    /// The bounds are inclusive, the message names the field, the bounds, why and the value.
    #[test]
    fn numbers_outside_the_range_name_the_field_and_the_bounds() {
        assert_eq!(in_range::<u32>("n", 1, 1..=10, None).ok(), Some(1));
        assert_eq!(in_range::<u32>("n", 10, 1..=10, None).ok(), Some(10));
        for bad in [0, 11, -1, i64::MIN, i64::MAX] {
            let (field, m) = message(in_range::<u32>("n", bad, 1..=10, None).unwrap_err());
            assert_eq!(field.as_deref(), Some("n"));
            assert_eq!(
                m,
                format!("`n` must be between 1 and 10, got {bad}"),
                "{bad}"
            );
        }
        let (_, m) = message(
            in_range::<usize>("summary_max_chars", 9, 16..=255, Some("a text column")).unwrap_err(),
        );
        assert_eq!(
            m,
            "`summary_max_chars` must be between 16 and 255 (a text column), got 9"
        );
    }

    /// A range wider than the target type refuses the values the type cannot hold instead of
    /// replacing them with a default.
    #[test]
    fn a_value_the_type_cannot_hold_is_refused_not_replaced() {
        assert!(in_range::<u8>("n", 300, 0..=1000, None).is_err());
        assert!(in_range::<u32>("n", -1, -5..=5, None).is_err());
        assert_eq!(in_range::<u8>("n", 255, 0..=1000, None).ok(), Some(255));
    }

    /// Every spelling operators paste, and what becomes of it.
    #[test]
    fn base_urls_are_an_origin_and_nothing_else() {
        let d = "https://api.example.com";
        for (given, want) in [
            (None, Some(d)),
            (Some(" https://x.example "), Some("https://x.example")),
            (Some("http://127.0.0.1:9000"), Some("http://127.0.0.1:9000")),
            (Some("https://x.example/"), None),
            (Some("https://x.example/v1"), None),
            (Some("https://x.example?x=1"), None),
            (Some("https://x.example#a"), None),
            (Some("x.example"), None),
            (Some("ftp://x.example"), None),
            (Some("https://"), None),
            (Some("https://x.ex ample"), None),
            (Some("https://x.example\n"), Some("https://x.example")),
            (Some("https://x.\u{0}example"), None),
            (Some(""), None),
        ] {
            assert_eq!(
                base_url("api_url", given, d, None).ok().as_deref(),
                want,
                "{given:?}"
            );
        }
    }

    /// The two messages: no scheme at all, and something after the host.
    #[test]
    fn base_url_messages_say_what_to_write() {
        let d = "https://api.example.com";
        let (field, m) =
            message(base_url("api_url", Some("api.example.com"), d, None).unwrap_err());
        assert_eq!(field.as_deref(), Some("api_url"));
        assert_eq!(
            m,
            "`api_url` must start with https://, like https://api.example.com; got \"api.example.com\""
        );
        let (_, m) =
            message(base_url("api_url", Some(&format!("{d}/v2")), d, Some("/v2")).unwrap_err());
        assert!(
            m.contains("without a path or trailing slash (so without /v2)"),
            "{m}"
        );
    }

    /// Dots and case go; an empty list is the default; what is left is not judged here.
    #[test]
    fn extensions_are_lower_case_without_the_dot() {
        assert_eq!(
            extensions(vec!["..JPG".into(), "Tif".into(), "".into()], "x"),
            ["jpg", "tif", ""]
        );
        assert_eq!(extensions(vec![], ""), [""]);
        assert_eq!(extensions(vec![], "jpg,jpeg"), ["jpg", "jpeg"]);
    }

    /// The fingerprint is the writeback digest: stable across versions, so a stored cursor's
    /// fingerprint still matches after an upgrade.
    #[test]
    fn the_fingerprint_is_stable() {
        assert_eq!(fingerprint("a"), "af63dc4c8601ec8c");
    }
}
