//! Templates over config and auth context in plugin-declared URLs.
//!
//! A plugin declares `https://{config.site_host}` or `{auth.instance_url}`;
//! the host substitutes non-secret values before parsing the result as an
//! allow-list entry. Secret config values never reach a template: the caller
//! passes only non-secret config.
//!
//! | placeholder | value |
//! |---|---|
//! | `{config.NAME}` | the integration's non-secret config value `NAME` |
//! | `{auth.NAME}` | a non-secret value from the token response (`instance_url`) |
//!
//! ```
//! use std::collections::BTreeMap;
//! use proofpix_policy::template::resolve;
//! let config = BTreeMap::from([("host".to_string(), "contoso.sharepoint.com".to_string())]);
//! assert_eq!(resolve("https://{config.host}", &config, &BTreeMap::new()).unwrap(), "https://contoso.sharepoint.com");
//! ```

use std::collections::BTreeMap;

/// Why a template could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A placeholder names a value that is not set.
    #[error("{{{0}}} is not set")]
    Missing(String),
    /// A placeholder is not `config.*` or `auth.*`, or is unclosed.
    #[error("{0:?} is not a valid placeholder (use {{config.NAME}} or {{auth.NAME}})")]
    Invalid(String),
}

/// Substitutes every placeholder.
///
/// # Errors
/// The first placeholder that is unknown or unset.
pub fn resolve(
    template: &str,
    config: &BTreeMap<String, String>,
    auth: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 1..).unwrap_or_default();
        let end = after
            .find('}')
            .ok_or_else(|| TemplateError::Invalid(after.to_string()))?;
        let name = after.get(..end).unwrap_or_default();
        let value = match name.split_once('.') {
            Some(("config", key)) => config.get(key),
            Some(("auth", key)) => auth.get(key),
            _ => return Err(TemplateError::Invalid(name.to_string())),
        };
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TemplateError::Missing(name.to_string()))?;
        out.push_str(value.trim_end_matches('/'));
        rest = after.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_resolve_from_config_and_auth() {
        let config =
            BTreeMap::from([("base_url".to_string(), "http://127.0.0.1:4000/".to_string())]);
        let auth = BTreeMap::from([(
            "instance_url".to_string(),
            "https://na1.my.salesforce.com".to_string(),
        )]);
        assert_eq!(
            resolve("{config.base_url}", &config, &auth).as_deref(),
            Ok("http://127.0.0.1:4000")
        );
        assert_eq!(
            resolve("{auth.instance_url}", &config, &auth).as_deref(),
            Ok("https://na1.my.salesforce.com")
        );
        assert_eq!(
            resolve("https://x.com", &config, &auth).as_deref(),
            Ok("https://x.com")
        );
    }

    #[test]
    fn missing_and_invalid_placeholders_are_errors() {
        let empty = BTreeMap::new();
        assert_eq!(
            resolve("{config.nope}", &empty, &empty),
            Err(TemplateError::Missing("config.nope".into()))
        );
        assert_eq!(
            resolve("{env.HOME}", &empty, &empty),
            Err(TemplateError::Invalid("env.HOME".into()))
        );
        assert!(resolve("{config.x", &empty, &empty).is_err());
    }
}
