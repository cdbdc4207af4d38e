//! Writing results into each file's `appProperties` (reference §5.4).
//!
//! One `PATCH /drive/v3/files/{id}?fields=id&supportsAllDrives=true` per file, with
//! `{"appProperties": {...}}`: Drive merges the keys, so other apps' and the user's properties
//! stay. Four properties per file, named after the configured prefix:
//!
//! | property | value |
//! |---|---|
//! | `{prefix}Risk` | `None`, `Low`, `Medium`, `High` or `Critical` |
//! | `{prefix}Score` | `0`–`100` |
//! | `{prefix}Findings` | the findings summary (names and e-mails masked), cut to fit |
//! | `{prefix}AnalysedAt` | RFC 3339 time of the analysis |
//!
//! **Limits.** Drive allows at most 30 private properties per app on a file and 124 bytes of
//! UTF-8 for a key and its value together. Four properties stay far below 30; every value is cut
//! on a character boundary so that key plus value fit in 124 bytes, ending in `…` when cut.
//!
//! **Per-file outcomes.** 404 (deleted, or access lost) is that file's `not-found`; 403
//! `insufficientFilePermissions` (the account may only read it) fails that file with what to
//! share. Quota answers (403 `userRateLimitExceeded`/`rateLimitExceeded`, 429) and 5xx stop the
//! call: the host retries it after the Retry-After Google sent, or backs off when none came.
//! The outcomes already final are remembered in the plugin's state (the SDK's [`WriteBatch`]),
//! keyed by file and by a digest of the exact update, so the retry sends only what is left and
//! every property update is applied once.

use std::collections::BTreeMap;

use proofpix_sdk::http::{Request, Response};
use proofpix_sdk::prelude::*;
use proofpix_sdk::results;
use proofpix_sdk::text::truncate_bytes;
use proofpix_sdk::writeback::{self, WriteBatch};
use serde_json::json;

use crate::discover::file_url;
use crate::google::GoogleError;
use crate::settings::{Settings, field};

/// Longest key plus value of one property, bytes of UTF-8.
pub const MAX_PROPERTY_BYTES: usize = 124;
/// Most private properties one app may set on a file.
pub const MAX_APP_PROPERTIES: usize = 30;
/// Properties written per file.
const PROPERTY_COUNT: usize = 4;
const _: () = assert!(PROPERTY_COUNT <= MAX_APP_PROPERTIES);

/// `value`, cut on a character boundary so that `key` and it fit in [`MAX_PROPERTY_BYTES`],
/// ending in `…` when cut.
pub fn fit(key: &str, value: &str) -> String {
    truncate_bytes(value, MAX_PROPERTY_BYTES.saturating_sub(key.len()))
}

/// The properties written for one result.
pub fn properties_for(settings: &Settings, r: &FileResult) -> BTreeMap<String, String> {
    let p = &settings.prefix;
    let mut m = BTreeMap::new();
    for (suffix, value) in [
        ("Risk", r.risk.label().to_string()),
        ("Score", r.score.to_string()),
        ("Findings", results::summary(r)),
        ("AnalysedAt", r.analysed_at.clone()),
    ] {
        let key = format!("{p}{suffix}");
        let value = fit(&key, &value);
        m.insert(key, value);
    }
    m
}

/// What one PATCH answer means for its file.
#[derive(Debug)]
pub enum FileAnswer {
    /// Final.
    Done(Result<(), PluginError>),
    /// Worth sending again after this long (ms), if given.
    Retry(Option<u64>, String),
    /// The token was refused: the whole call must be retried after a refresh.
    Unauthorized(String),
}

/// Interprets Drive's answer to one property update.
pub fn answer_of(resp: &Response, label: &str) -> FileAnswer {
    if resp.is_success() {
        return FileAnswer::Done(Ok(()));
    }
    let e = GoogleError::from_response(resp);
    let detail = format!("HTTP {} {}", e.status, e.reason());
    if e.is_rate_limit() {
        return FileAnswer::Retry(
            e.retry_after_ms,
            format!("Google Drive asked to slow down ({detail})"),
        );
    }
    match e.status {
        401 => FileAnswer::Unauthorized(e.message),
        404 => FileAnswer::Done(Err(PluginError::not_found(format!(
            "{label} no longer exists in Google Drive, or the account lost access to it ({detail})"
        )))),
        403 if e.has_reason("insufficientFilePermissions") => {
            FileAnswer::Done(Err(PluginError::fatal(format!(
                "the account may only read {label}, not edit it ({detail}); give the service account (or `impersonate_user`) edit access to the file or its folder for the results to be written"
            ))))
        }
        403 => FileAnswer::Done(Err(
            e.into_plugin_error(&format!("writing the properties of {label}"))
        )),
        408 | 500..=599 => {
            FileAnswer::Retry(e.retry_after_ms, format!("Google Drive failed ({detail})"))
        }
        400 => FileAnswer::Done(Err(PluginError::fatal(format!(
            "Google Drive refused the properties of {label} ({detail}: {})",
            e.message
        )))),
        _ => FileAnswer::Done(Err(
            e.into_plugin_error(&format!("writing the properties of {label}"))
        )),
    }
}

/// Writes a batch of results.
///
/// # Errors
/// The whole call fails (and is retried by the host) when Drive throttles, fails transiently or
/// refuses the token; what was final before that is remembered.
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let settings = Settings::load()?;
    if !settings.write_back {
        return Ok(writeback::turned_off(results, field::WRITE_BACK));
    }
    let mut batch = WriteBatch::start(&results);
    let mut retry: Option<(Option<u64>, String)> = None;
    let mut stop: Option<PluginError> = None;
    for (index, r) in results.iter().enumerate() {
        let props = properties_for(&settings, r);
        let digest = writeback::digest(format!("{}|{}", r.file.id, json!(props)));
        if batch.recall(index, digest) || stop.is_some() || retry.is_some() {
            continue;
        }
        let url = Request::get(&file_url(&settings, &r.file.id))
            .query("fields", "id")
            .query("supportsAllDrives", "true")
            .url()
            .to_string();
        let resp = match Request::patch(&url)
            .json(&json!({ "appProperties": props }))
            .send()
        {
            Ok(resp) => resp,
            Err(e) => {
                stop = Some(e);
                continue;
            }
        };
        match answer_of(&resp, &r.file.name) {
            FileAnswer::Done(o) => batch.done(index, o),
            FileAnswer::Retry(ms, why) => retry = Some((ms, why)),
            FileAnswer::Unauthorized(m) => {
                stop = Some(PluginError::unauthorized(format!(
                    "Google rejected the access token while writing properties: {m}"
                )));
            }
        }
    }

    let left = batch.unanswered();
    if left > 0 {
        batch.save()?;
        if let Some(e) = stop {
            return Err(e);
        }
        let (ms, why) = retry.unwrap_or((None, "no answer".into()));
        let message = format!("{left} property update(s) must be sent again ({why})");
        return Err(match ms {
            Some(ms) => PluginError::rate_limited(Some(ms), message),
            None if why.contains("slow down") => PluginError::rate_limited(None, message),
            None => PluginError::transient(message),
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
            include_shared: true,
            write_back: true,
            page_size: 10,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    fn result(summary: &str) -> FileResult {
        FileResult {
            file: RemoteFile {
                id: "1Abc".into(),
                name: "a.jpg".into(),
                ..RemoteFile::default()
            },
            format: "jpeg".into(),
            risk: RiskLevel::High,
            score: 87,
            findings: vec![],
            summary: summary.into(),
            error: None,
            analysed_at: "2026-11-26T10:00:00Z".into(),
            policy_version: "p1".into(),
        }
    }

    fn response(status: u16, body: &str, retry_after: Option<&str>) -> Response {
        Response {
            status,
            headers: retry_after
                .map(|v| vec![("retry-after".to_string(), v.to_string())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            url: "https://www.googleapis.com/drive/v3/files/1Abc".into(),
        }
    }

    #[test]
    fn every_property_fits_googles_124_byte_limit() {
        let long = "GPS 52.37,4.90 (±10 m); owner J*** D**; serial SN-4000; ".repeat(6);
        let props = properties_for(&settings(), &result(&long));
        assert_eq!(props.len(), PROPERTY_COUNT);
        for (k, v) in &props {
            assert!(k.len() + v.len() <= MAX_PROPERTY_BYTES, "{k}={v}");
        }
        let findings = &props["proofpixFindings"];
        assert!(findings.ends_with('…'), "{findings}");
        assert!(long.starts_with(findings.trim_end_matches('…')));
        assert_eq!(props["proofpixRisk"], "High");
        assert_eq!(props["proofpixScore"], "87");
    }

    #[test]
    fn cutting_never_splits_a_character() {
        let key = "k".repeat(100);
        let v = fit(&key, &"é".repeat(40));
        assert!(key.len() + v.len() <= MAX_PROPERTY_BYTES);
        assert!(v.ends_with('…'));
        assert_eq!(fit("k", "short"), "short");
        // A key that leaves no room gets an empty value, not a lone `…` over the limit (the
        // prefix check keeps keys far shorter; `proofpix_sdk::text::truncate_bytes`).
        assert_eq!(fit(&"k".repeat(130), "v"), "");
    }

    #[test]
    fn an_empty_summary_says_so() {
        let props = properties_for(&settings(), &result(""));
        assert_eq!(props["proofpixFindings"], "No privacy findings");
    }

    #[test]
    fn quota_answers_are_retried_and_permission_answers_are_final() {
        let quota = r#"{"error":{"code":403,"message":"User rate limit exceeded.","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"User rate limit exceeded."}]}}"#;
        assert!(matches!(
            answer_of(&response(403, quota, Some("2")), "a.jpg"),
            FileAnswer::Retry(Some(2000), _)
        ));
        assert!(matches!(
            answer_of(&response(429, "", None), "a.jpg"),
            FileAnswer::Retry(None, _)
        ));
        let denied = r#"{"error":{"code":403,"message":"The user does not have sufficient permissions for this file.","errors":[{"domain":"global","reason":"insufficientFilePermissions","message":"x"}]}}"#;
        match answer_of(&response(403, denied, None), "a.jpg") {
            FileAnswer::Done(Err(PluginError::Fatal(m))) => {
                assert!(m.contains("edit access"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer_of(&response(404, "{}", None), "a.jpg"),
            FileAnswer::Done(Err(PluginError::NotFound(_)))
        ));
        assert!(matches!(
            answer_of(&response(200, "{}", None), "a.jpg"),
            FileAnswer::Done(Ok(()))
        ));
    }
}
