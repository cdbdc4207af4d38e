//! Writing results as a metadata template instance on each file (reference §6.4).
//!
//! Box has no batch endpoint for metadata, so each file is one request:
//! `POST /files/{id}/metadata/enterprise/{templateKey}` with the values creates the instance
//! (201); when one exists Box answers 409 `tuple_already_exists` and the values are written with
//! `PUT` on the same path, a JSON-Patch (`application/json-patch+json`) of `add` operations,
//! which set a field whether or not the instance has it. Outcomes are per file.
//!
//! | template field | value |
//! |---|---|
//! | `risk` | `None`, `Low`, `Medium`, `High` or `Critical` (an enum or text field) |
//! | `score` | 0–100 (a number field) |
//! | `findings` | the findings summary, names and e-mails masked, cut to `summary_max_chars` |
//! | `analysedAt` | when the file was analysed (a date field) |
//!
//! **Throttling.** A plugin cannot wait, and the host retries a whole `write-back` call (after
//! the Retry-After it is given) but never one file. So a 429, 5xx or refused token stops the
//! call; the outcomes already final are remembered in the plugin's state (the SDK's
//! [`WriteBatch`]), keyed by file and by a digest of the exact values, and the host's retry
//! answers them from the memo without a request. Each file's metadata is written once.

use proofpix_sdk::http::{Request, Response};
use proofpix_sdk::prelude::*;
use proofpix_sdk::results;
use proofpix_sdk::text::truncate_chars;
use proofpix_sdk::writeback::{self, WriteBatch};
use serde_json::{Map, Value, json};

use crate::api::{self, BoxError};
use crate::settings::{Settings, field};

/// Results per `write-back` call: each is one or two requests.
pub const BATCH_SIZE: u32 = 25;
/// Template field keys.
pub mod key {
    pub const RISK: &str = "risk";
    pub const SCORE: &str = "score";
    pub const FINDINGS: &str = "findings";
    pub const ANALYSED_AT: &str = "analysedAt";
}

/// The instance values for one result.
pub fn values_for(settings: &Settings, r: &FileResult) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key::RISK.into(), json!(r.risk.label()));
    m.insert(key::SCORE.into(), json!(f64::from(r.score)));
    m.insert(
        key::FINDINGS.into(),
        json!(truncate_chars(&results::summary(r), settings.summary_max)),
    );
    if !r.analysed_at.is_empty() {
        m.insert(key::ANALYSED_AT.into(), json!(r.analysed_at));
    }
    m
}

/// The JSON-Patch that sets every value on an existing instance.
pub fn patch_for(values: &Map<String, Value>) -> Value {
    Value::Array(
        values
            .iter()
            .map(|(k, v)| json!({"op": "add", "path": format!("/{k}"), "value": v}))
            .collect(),
    )
}

/// What one file's write came to.
#[derive(Debug)]
pub enum FileOutcome {
    /// Final.
    Done(Result<(), PluginError>),
    /// The call must stop and be retried by the host (throttled, 5xx, token refused).
    Stop(PluginError),
}

/// Interprets a failed metadata request for `label`.
pub fn failed(settings: &Settings, resp_status: u16, e: BoxError, label: &str) -> FileOutcome {
    let what = format!("writing the metadata of {label}");
    let template = &settings.template_key;
    match resp_status {
        401 | 408 | 429 | 500..=599 => FileOutcome::Stop(e.into_plugin_error(&what)),
        404 if e.message.to_ascii_lowercase().contains("template") => {
            FileOutcome::Done(Err(PluginError::invalid_config(
                Some(field::TEMPLATE_KEY),
                format!(
                    "the enterprise has no metadata template {template} ({}); create it (Admin Console → Content → Metadata) or set `{}` to an existing template's key",
                    e.detail(),
                    field::TEMPLATE_KEY
                ),
            )))
        }
        404 => FileOutcome::Done(Err(PluginError::not_found(format!(
            "{label} no longer exists in Box, or ProofPix's account can no longer see it ({})",
            e.detail()
        )))),
        403 => FileOutcome::Done(Err(PluginError::invalid_config(
            None,
            format!(
                "Box does not let ProofPix's account edit the metadata of {label} ({}). Make the account an Editor of the folder (Viewer can only read) and authorize the app's Write all files and folders scope",
                e.detail()
            ),
        ))),
        400 => FileOutcome::Done(Err(PluginError::invalid_config(
            Some(field::TEMPLATE_KEY),
            format!(
                "Box refused the values for template {template} on {label} ({}). The template needs the fields risk (dropdown None/Low/Medium/High/Critical, or text), score (number), findings (text) and analysedAt (date)",
                e.detail()
            ),
        ))),
        _ => FileOutcome::Done(Err(e.into_plugin_error(&what))),
    }
}

fn send(req: Request) -> Result<Response, FileOutcome> {
    // A connection failure or timeout stops the call: the host retries it.
    req.send().map_err(FileOutcome::Stop)
}

/// Writes one file's instance: create, or on 409 patch the existing one.
fn write_one(
    settings: &Settings,
    file_id: &str,
    label: &str,
    values: &Map<String, Value>,
) -> FileOutcome {
    let Some(id) = api::id_of(&Value::String(file_id.to_string())) else {
        return FileOutcome::Done(Err(PluginError::fatal(format!(
            "{file_id} is not a Box file id; run a full listing"
        ))));
    };
    let url = format!(
        "{}/2.0/files/{id}/metadata/enterprise/{}",
        settings.api, settings.template_key
    );
    let created = match send(Request::post(&url).json(values)) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if created.is_success() {
        return FileOutcome::Done(Ok(()));
    }
    if created.status != 409 {
        let status = created.status;
        return failed(settings, status, BoxError::from_response(&created), label);
    }
    let patch = serde_json::to_vec(&patch_for(values)).unwrap_or_default();
    let updated = match send(
        Request::put(&url)
            .header("content-type", "application/json-patch+json")
            .body(patch),
    ) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if updated.is_success() {
        return FileOutcome::Done(Ok(()));
    }
    let status = updated.status;
    let e = BoxError::from_response(&updated);
    if status == 404 && e.code == "instance_not_found" {
        // Deleted between the 409 and the PUT: the next try creates it.
        return FileOutcome::Stop(PluginError::transient(format!(
            "the metadata instance on {label} disappeared while being updated ({})",
            e.detail()
        )));
    }
    failed(settings, status, e, label)
}

/// Writes a batch of results.
///
/// # Errors
/// The whole call fails (and is retried by the host) when a write is throttled, fails
/// transiently or the token is refused; what was final before that is remembered.
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let settings = Settings::load()?;
    if !settings.write_back {
        return Ok(writeback::turned_off(results, field::WRITE_BACK));
    }
    let mut batch = WriteBatch::start(&results);
    let mut stop: Option<PluginError> = None;
    for (index, r) in results.iter().enumerate() {
        let values = values_for(&settings, r);
        let digest = writeback::digest(format!(
            "{}|{}|{}",
            settings.template_key,
            r.file.id,
            Value::Object(values.clone())
        ));
        if batch.recall(index, digest) || stop.is_some() {
            continue;
        }
        let label = if r.file.name.is_empty() {
            &r.file.id
        } else {
            &r.file.name
        };
        match write_one(&settings, &r.file.id, label, &values) {
            FileOutcome::Done(o) => batch.done(index, o),
            FileOutcome::Stop(e) => stop = Some(e),
        }
    }
    if let Some(e) = stop {
        batch.save()?;
        let left = batch.unanswered();
        let message = format!(
            "{left} metadata write(s) must be sent again: {}",
            e.message()
        );
        return Err(match e {
            PluginError::RateLimited(r) => PluginError::rate_limited(r.retry_after_ms, message),
            PluginError::Unauthorized(_) => PluginError::unauthorized(message),
            PluginError::InvalidConfig(p) => PluginError::InvalidConfig(p),
            PluginError::Fatal(_) => PluginError::fatal(message),
            _ => PluginError::transient(message),
        });
    }
    Ok(batch.finish(results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawConfig;

    fn settings() -> Settings {
        RawConfig {
            subject_id: Some("1".into()),
            folders: vec!["100".into()],
            recursive: true,
            write_back: true,
            summary_max: 40,
            page_size: 1000,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    fn result(summary: &str) -> FileResult {
        FileResult {
            file: RemoteFile {
                id: "5".into(),
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
    fn values_carry_risk_score_and_a_summary_cut_to_the_limit() {
        let v = values_for(
            &settings(),
            &result(&"GPS 52.37,4.90; owner J*** D** ".repeat(3)),
        );
        assert_eq!(v["risk"], "High");
        assert_eq!(v["score"], 87.0);
        assert_eq!(v["analysedAt"], "2026-01-01T00:00:00Z");
        let s = v["findings"].as_str().unwrap();
        assert_eq!(s.chars().count(), 40);
        assert!(s.ends_with('…'));
        assert_eq!(
            values_for(&settings(), &result(""))["findings"],
            "No privacy findings"
        );
    }

    #[test]
    fn the_patch_adds_every_value() {
        let v = values_for(&settings(), &result("x"));
        let p = patch_for(&v);
        let ops = p.as_array().unwrap();
        assert_eq!(ops.len(), 4);
        assert!(ops.iter().all(|o| o["op"] == "add"));
        assert!(
            ops.iter()
                .any(|o| o["path"] == "/risk" && o["value"] == "High")
        );
    }

    #[test]
    fn failures_say_what_to_fix() {
        let s = settings();
        let e = |status: u16, body: &str| BoxError::parse(status, body.as_bytes(), Some(2000));
        assert!(matches!(
            failed(&s, 429, e(429, r#"{"code":"rate_limit_exceeded"}"#), "a.jpg"),
            FileOutcome::Stop(PluginError::RateLimited(r)) if r.retry_after_ms == Some(2000)
        ));
        match failed(
            &s,
            404,
            e(
                404,
                r#"{"code":"not_found","message":"Specified Metadata Template not found"}"#,
            ),
            "a.jpg",
        ) {
            FileOutcome::Done(Err(PluginError::InvalidConfig(p))) => {
                assert_eq!(p.field.as_deref(), Some("template_key"));
                assert!(p.message.contains("Admin Console"), "{}", p.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            failed(
                &s,
                404,
                e(404, r#"{"code":"not_found","message":"Not Found"}"#),
                "a.jpg"
            ),
            FileOutcome::Done(Err(PluginError::NotFound(_)))
        ));
        match failed(
            &s,
            403,
            e(403, r#"{"code":"access_denied_insufficient_permissions"}"#),
            "a.jpg",
        ) {
            FileOutcome::Done(Err(PluginError::InvalidConfig(p))) => {
                assert!(p.message.contains("Editor"), "{}", p.message)
            }
            other => panic!("{other:?}"),
        }
    }
}
