//! Writing results as file properties: one `properties/overwrite` per file, under the template
//! of [`crate::template`] (reference §7.4).
//!
//! `overwrite` replaces the file's whole ProofPix property group with the new values (a
//! snapshot, not a delta), so writing the same result twice leaves the file as writing it once.
//! Values are cut to Dropbox's 1024-byte limit at a character boundary. Each file's outcome comes
//! from its own answer: 409 `path/not_found` is `not-found`; `does_not_fit_template`,
//! `property_field_too_large` and other per-path errors fail that file only.
//!
//! **Throttling.** Dropbox has no batch route for properties, and a plugin cannot wait. When a
//! write is throttled (429), fails transiently or meets an expired token, the call stops and
//! fails as a whole (the host waits the Retry-After, or refreshes the token, and sends the same
//! results again); the outcomes already final are remembered in the plugin's state (the SDK's
//! [`WriteBatch`]), keyed by file and a digest of the exact write, and answered from there on the
//! retry without a request. So each property write is applied once.

use proofpix_sdk::prelude::*;
use proofpix_sdk::results;
use proofpix_sdk::text::truncate_bytes;
use proofpix_sdk::writeback::{self, WriteBatch};
use serde_json::{Value, json};

use crate::api::{self, DbxError};
use crate::settings::{Settings, field};
use crate::template::{self, FIELD_ANALYSED_AT, FIELD_FINDINGS, FIELD_RISK, FIELD_SCORE, Origin};

/// Longest property value Dropbox accepts, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// The property values for one result.
pub fn fields_for(r: &FileResult) -> Vec<(&'static str, String)> {
    vec![
        (FIELD_RISK, r.risk.label().to_string()),
        (FIELD_SCORE, r.score.to_string()),
        (
            FIELD_FINDINGS,
            truncate_bytes(&results::summary(r), MAX_VALUE_BYTES),
        ),
        (
            FIELD_ANALYSED_AT,
            truncate_bytes(&r.analysed_at, MAX_VALUE_BYTES),
        ),
    ]
}

/// The `properties/overwrite` argument for one file.
pub fn overwrite_body(file_id: &str, template_id: &str, fields: &[(&str, String)]) -> Value {
    json!({
        "path": file_id,
        "property_groups": [{
            "template_id": template_id,
            "fields": fields.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        }],
    })
}

/// What one answer means for its file.
#[derive(Debug)]
pub enum Answer {
    /// Final for this file.
    Done(Result<(), PluginError>),
    /// The template is gone: no file of this call can be written.
    TemplateGone(DbxError),
    /// Stop the call: it is retried as a whole (throttled, 5xx, token refused).
    Stop(PluginError),
}

/// Interprets the answer to one file's write.
pub fn answer(status: u16, body: &[u8], retry_after_ms: Option<u64>, label: &str) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Done(Ok(()));
    }
    let e = DbxError::parse(status, body, retry_after_ms);
    let what = format!("writing the properties of {label}");
    match status {
        409 => {
            if e.tag() == "template_not_found" {
                return Answer::TemplateGone(e);
            }
            let outcome = if e.is(&["path", "not_found"]) {
                PluginError::not_found(format!("{label} no longer exists in Dropbox"))
            } else if e.is(&["path", "restricted_content"]) || e.tag() == "restricted_content" {
                PluginError::fatal(format!(
                    "Dropbox does not allow properties on {label} ({}: restricted content)",
                    e.summary
                ))
            } else if e.tag() == "does_not_fit_template" || e.tag() == "property_field_too_large" {
                PluginError::fatal(format!(
                    "Dropbox refused the properties of {label} ({}); the template must have the string fields risk, score, findings and analysed_at",
                    e.summary
                ))
            } else {
                PluginError::fatal(format!(
                    "Dropbox refused the properties of {label} ({})",
                    e.summary
                ))
            };
            Answer::Done(Err(outcome))
        }
        400 | 403 | 404 => Answer::Done(Err(e.into_plugin_error(&what))),
        _ => Answer::Stop(e.into_plugin_error(&what)),
    }
}

/// Writes a batch of results.
///
/// # Errors
/// The whole call fails (and is retried by the host) when a write is throttled, fails
/// transiently or the token is refused; what was final before that is remembered. A template
/// that is gone fails the call as `invalid-config` (the operator's) or `transient` (ours: it is
/// created again on the retry).
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let settings = Settings::load()?;
    if !settings.write_back {
        return Ok(writeback::turned_off(results, field::WRITE_BACK));
    }
    let mut batch = WriteBatch::start(&results);
    let mut template: Option<(String, Origin)> = None;
    let mut stop: Option<PluginError> = None;

    for (index, r) in results.iter().enumerate() {
        let fields = fields_for(r);
        // After a stop nothing more is answered, from the memo either: the retry asks again.
        if stop.is_some() {
            continue;
        }
        if batch.recall(
            index,
            writeback::digest(format!("{}|{fields:?}", r.file.id)),
        ) {
            continue;
        }
        if !r.file.id.starts_with("id:") {
            batch.done(
                index,
                Err(PluginError::fatal(format!(
                    "file {} has no Dropbox id; reset the integration's cursor to list again",
                    r.file.id
                ))),
            );
            continue;
        }
        let (template_id, origin) = match &template {
            Some(t) => t.clone(),
            None => match template::resolve(&settings, true) {
                Ok(Some(t)) => {
                    template = Some(t.clone());
                    t
                }
                Ok(None) => {
                    stop = Some(PluginError::transient(
                        "no property template to write under",
                    ));
                    continue;
                }
                Err(e) => {
                    stop = Some(e);
                    continue;
                }
            },
        };
        let label = r.file.path.as_deref().unwrap_or(&r.file.name);
        let resp = match api::send(
            &settings,
            "file_properties/properties/overwrite",
            &overwrite_body(&r.file.id, &template_id, &fields),
        ) {
            Ok(resp) => resp,
            Err(e) => {
                stop = Some(e);
                continue;
            }
        };
        match answer(resp.status, &resp.body, resp.retry_after_ms(), label) {
            Answer::Done(o) => batch.done(index, o),
            Answer::Stop(e) => stop = Some(e),
            Answer::TemplateGone(e) => {
                stop = Some(match origin {
                    Origin::Configured => PluginError::invalid_config(
                        Some(field::TEMPLATE_ID),
                        format!(
                            "Dropbox has no property template {template_id} for this app ({}). Leave `template_id` empty to let ProofPix create its own, or use an id this app created",
                            e.summary
                        ),
                    ),
                    Origin::Own => {
                        template::forget_own();
                        PluginError::transient(format!(
                            "the {} property template was removed from Dropbox; it is created again on the retry",
                            template::TEMPLATE_NAME
                        ))
                    }
                })
            }
        }
    }

    if let Some(e) = stop {
        // The final outcomes of this call, for the host's retry.
        batch.save()?;
        return Err(e);
    }
    Ok(batch.finish(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(summary: &str) -> FileResult {
        FileResult {
            file: RemoteFile {
                id: "id:A".into(),
                name: "a.jpg".into(),
                ..RemoteFile::default()
            },
            format: "jpeg".into(),
            risk: RiskLevel::High,
            score: 87,
            findings: vec![],
            summary: summary.into(),
            error: None,
            analysed_at: "2026-01-01T00:00:00Z".into(),
            policy_version: "p1".into(),
        }
    }

    #[test]
    fn values_are_cut_to_1024_bytes_at_a_character_boundary() {
        let long = "GPS 52.37,4.90; Ångström 日本 ".repeat(100);
        let cut = truncate_bytes(&long, MAX_VALUE_BYTES);
        assert!(cut.len() <= MAX_VALUE_BYTES, "{}", cut.len());
        assert!(cut.len() > MAX_VALUE_BYTES - 8);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_bytes("short", 1024), "short");
    }

    #[test]
    fn fields_carry_risk_score_findings_and_time() {
        let f = fields_for(&result(""));
        assert_eq!(
            f,
            [
                ("risk", "High".to_string()),
                ("score", "87".to_string()),
                ("findings", "No privacy findings".to_string()),
                ("analysed_at", "2026-01-01T00:00:00Z".to_string()),
            ]
        );
        let body = overwrite_body("id:A", "ptid:T", &f);
        assert_eq!(body["path"], "id:A");
        assert_eq!(body["property_groups"][0]["template_id"], "ptid:T");
        assert_eq!(body["property_groups"][0]["fields"][1]["value"], "87");
    }

    #[test]
    fn per_path_errors_fail_only_their_file() {
        let gone = br#"{"error_summary":"path/not_found/..","error":{".tag":"path","path":{".tag":"not_found"}}}"#;
        assert!(matches!(
            answer(409, gone, None, "/a.jpg"),
            Answer::Done(Err(PluginError::NotFound(m))) if m.contains("no longer exists")
        ));
        let misfit = br#"{"error_summary":"does_not_fit_template/..","error":{".tag":"does_not_fit_template"}}"#;
        assert!(matches!(
            answer(409, misfit, None, "/a.jpg"),
            Answer::Done(Err(PluginError::Fatal(_)))
        ));
        let template = br#"{"error_summary":"template_not_found/..","error":{".tag":"template_not_found","template_not_found":"ptid:x"}}"#;
        assert!(matches!(
            answer(409, template, None, "/a.jpg"),
            Answer::TemplateGone(_)
        ));
        assert!(matches!(
            answer(200, b"null", None, "/a.jpg"),
            Answer::Done(Ok(()))
        ));
    }

    #[test]
    fn throttling_and_expiry_stop_the_call() {
        let throttled = br#"{"error_summary":"too_many_write_operations/..","error":{"reason":{".tag":"too_many_write_operations"},"retry_after":1}}"#;
        assert!(matches!(
            answer(429, throttled, Some(2000), "/a.jpg"),
            Answer::Stop(PluginError::RateLimited(r)) if r.retry_after_ms == Some(2000)
        ));
        let expired = br#"{"error_summary":"expired_access_token/..","error":{".tag":"expired_access_token"}}"#;
        assert!(matches!(
            answer(401, expired, None, "/a.jpg"),
            Answer::Stop(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            answer(502, b"", None, "/a.jpg"),
            Answer::Stop(PluginError::Transient(_))
        ));
    }
}
