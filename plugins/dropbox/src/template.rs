//! The file-property template results are written under (reference §7.4).
//!
//! Dropbox stores custom properties only as groups of a template, and a template is visible only
//! to the app that created it. So either the operator gives a template id (`template_id`, one
//! this app created), or the plugin uses its own template named [`TEMPLATE_NAME`]: it looks for
//! it with `templates/list_for_user` + `get_for_user` (so a lost state does not create a second
//! one), creates it with `templates/add_for_user` on the first write-back if there is none, and
//! remembers the id in its state ([`TEMPLATE_STATE_KEY`]).
//!
//! The template has [`FIELDS`]: four string fields, within Dropbox's limits of 32 fields per
//! template and 256 bytes per field name. `check` verifies that a template has all four.

use proofpix_sdk::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, DbxError};
use crate::settings::{Settings, field};

/// Name of the template the plugin creates.
pub const TEMPLATE_NAME: &str = "ProofPix";
/// State key of the template id the plugin found or created.
pub const TEMPLATE_STATE_KEY: &str = "template-id";
/// Most templates looked at when searching for ours.
const MAX_TEMPLATES_SCANNED: usize = 50;

pub const FIELD_RISK: &str = "risk";
pub const FIELD_SCORE: &str = "score";
pub const FIELD_FINDINGS: &str = "findings";
pub const FIELD_ANALYSED_AT: &str = "analysed_at";

/// The template's fields and their descriptions.
pub const FIELDS: [(&str, &str); 4] = [
    (
        FIELD_RISK,
        "Privacy risk of the image's metadata: None, Low, Medium, High or Critical",
    ),
    (FIELD_SCORE, "Privacy risk score, 0 to 100"),
    (
        FIELD_FINDINGS,
        "What the metadata reveals (names and e-mails masked)",
    ),
    (
        FIELD_ANALYSED_AT,
        "When ProofPix analysed the file (RFC 3339)",
    ),
];

/// Where a template id came from, for messages and for what to do when it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The operator's `template_id`.
    Configured,
    /// Found or created by the plugin.
    Own,
}

/// The template id to write under; `create` makes one when none exists.
///
/// # Errors
/// Dropbox errors while listing or creating templates.
pub fn resolve(settings: &Settings, create: bool) -> Result<Option<(String, Origin)>, PluginError> {
    if let Some(id) = &settings.template_id {
        return Ok(Some((id.clone(), Origin::Configured)));
    }
    if let Some(id) = state::get(TEMPLATE_STATE_KEY)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.starts_with("ptid:"))
    {
        return Ok(Some((id, Origin::Own)));
    }
    if let Some(id) = find_own(settings)? {
        state::set(TEMPLATE_STATE_KEY, id.as_bytes())?;
        return Ok(Some((id, Origin::Own)));
    }
    if !create {
        return Ok(None);
    }
    let fields: Vec<Value> = FIELDS
        .iter()
        .map(|(name, description)| json!({"name": name, "description": description, "type": "string"}))
        .collect();
    let v = api::call(
        settings,
        "file_properties/templates/add_for_user",
        &json!({
            "name": TEMPLATE_NAME,
            "description": "Privacy findings from ProofPix's analysis of the image's metadata",
            "fields": fields,
        }),
        "creating the ProofPix property template",
    )?;
    let id = v["template_id"]
        .as_str()
        .filter(|id| id.starts_with("ptid:") && id.len() <= 256)
        .ok_or_else(|| {
            PluginError::transient("Dropbox created a property template but sent no template_id")
        })?
        .to_string();
    state::set(TEMPLATE_STATE_KEY, id.as_bytes())?;
    log::info("created the ProofPix property template");
    Ok(Some((id, Origin::Own)))
}

/// Forgets the remembered template (it was deleted); the next write-back finds or creates one.
pub fn forget_own() {
    state::delete(TEMPLATE_STATE_KEY);
}

/// Our template among the app's, if there is one with every field.
fn find_own(settings: &Settings) -> Result<Option<String>, PluginError> {
    let v = api::call(
        settings,
        "file_properties/templates/list_for_user",
        &Value::Null,
        "listing the app's property templates",
    )?;
    for id in v["template_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(MAX_TEMPLATES_SCANNED)
    {
        let t = get(settings, id)?;
        if t["name"].as_str() == Some(TEMPLATE_NAME) && missing_fields(&t).is_empty() {
            return Ok(Some(id.to_string()));
        }
    }
    Ok(None)
}

fn get(settings: &Settings, id: &str) -> Result<Value, PluginError> {
    let resp = api::send(
        settings,
        "file_properties/templates/get_for_user",
        &json!({"template_id": id}),
    )?;
    if resp.status == 409 && DbxError::from_response(&resp).tag() == "template_not_found" {
        return Err(PluginError::invalid_config(
            Some(field::TEMPLATE_ID),
            format!(
                "Dropbox has no property template {id} for this app (templates are visible only to the app that created them). Leave `template_id` empty to let ProofPix create its own, or use an id from /2/file_properties/templates/list_for_user called with this app's key"
            ),
        ));
    }
    api::json_of(&resp, &format!("reading property template {id}"))
}

/// The fields of [`FIELDS`] a template lacks (or has with a type other than string).
pub fn missing_fields(template: &Value) -> Vec<&'static str> {
    let fields: Vec<&Value> = template["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    FIELDS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            !fields.iter().any(|f| {
                f["name"].as_str() == Some(name)
                    && matches!(
                        f["type"].as_str().or_else(|| f["type"][".tag"].as_str()),
                        Some("string") | None
                    )
            })
        })
        .collect()
}

/// What `check` says about the template: verifies an operator's template has every field, or
/// finds the plugin's own.
///
/// # Errors
/// An unknown template or one missing fields names `template_id`.
pub fn check(settings: &Settings) -> Result<String, PluginError> {
    if let Some(id) = &settings.template_id {
        let t = get(settings, id)?;
        let missing = missing_fields(&t);
        if !missing.is_empty() {
            return Err(PluginError::invalid_config(
                Some(field::TEMPLATE_ID),
                format!(
                    "property template {id} ({}) has no string field {}; add them with /2/file_properties/templates/update_for_user, or leave `template_id` empty to let ProofPix create its own template",
                    t["name"].as_str().unwrap_or("unnamed"),
                    missing.join(", ")
                ),
            ));
        }
        return Ok(format!(
            "property template {id} ({}) has the fields {}",
            t["name"].as_str().unwrap_or("unnamed"),
            field_names()
        ));
    }
    Ok(match resolve(settings, false)? {
        Some((id, _)) => {
            // Verify a remembered id still exists (it may have been removed).
            let t = match get(settings, &id) {
                Ok(t) => t,
                Err(PluginError::InvalidConfig(_)) => {
                    forget_own();
                    return Ok(format!(
                        "the {TEMPLATE_NAME} property template was removed; it is created again on the first write-back"
                    ));
                }
                Err(e) => return Err(e),
            };
            if missing_fields(&t).is_empty() {
                format!(
                    "property template {TEMPLATE_NAME} ({id}) has the fields {}",
                    field_names()
                )
            } else {
                forget_own();
                format!(
                    "property template {id} lacks fields; a complete {TEMPLATE_NAME} template is created on the first write-back"
                )
            }
        }
        None => format!(
            "the {TEMPLATE_NAME} property template (fields {}) is created on the first write-back",
            field_names()
        ),
    })
}

fn field_names() -> String {
    FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_fields_fit_dropbox_limits() {
        assert!(FIELDS.len() <= 32);
        for (name, description) in FIELDS {
            assert!(name.len() <= 256 && description.len() <= 1024, "{name}");
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let t = json!({"name": "X", "fields": [
            {"name": "risk", "type": {".tag": "string"}},
            {"name": "score", "type": "string"},
        ]});
        assert_eq!(missing_fields(&t), ["findings", "analysed_at"]);
        assert_eq!(missing_fields(&json!({})).len(), 4);
    }
}
