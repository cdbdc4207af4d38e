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
//! The outcomes already final are remembered in the plugin's state under [`MEMO_KEY`], keyed by
//! file and by a digest of the exact update, so the retry sends only what is left and every
//! property update is applied once.

use std::collections::BTreeMap;

use proofpix_sdk::http::{Request, Response};
use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::discover::file_url;
use crate::google::GoogleError;
use crate::settings::{Settings, fnv1a};

/// Longest key plus value of one property, bytes of UTF-8.
pub const MAX_PROPERTY_BYTES: usize = 124;
/// Most private properties one app may set on a file.
pub const MAX_APP_PROPERTIES: usize = 30;
/// Properties written per file.
const PROPERTY_COUNT: usize = 4;
const _: () = assert!(PROPERTY_COUNT <= MAX_APP_PROPERTIES);
/// State key of the outcomes remembered across a retried call.
pub const MEMO_KEY: &str = "write-back-memo";

/// A final outcome, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Remembered {
    Written,
    NotFound(String),
    InvalidConfig(Option<String>, String),
    Fatal(String),
}

impl Remembered {
    fn into_outcome(self) -> Result<(), PluginError> {
        match self {
            Remembered::Written => Ok(()),
            Remembered::NotFound(m) => Err(PluginError::not_found(m)),
            Remembered::InvalidConfig(f, m) => Err(PluginError::invalid_config(f.as_deref(), m)),
            Remembered::Fatal(m) => Err(PluginError::fatal(m)),
        }
    }

    fn of(outcome: &Result<(), PluginError>) -> Option<Self> {
        match outcome {
            Ok(()) => Some(Remembered::Written),
            Err(PluginError::NotFound(m)) => Some(Remembered::NotFound(m.clone())),
            Err(PluginError::InvalidConfig(p)) => Some(Remembered::InvalidConfig(
                p.field.clone(),
                p.message.clone(),
            )),
            Err(PluginError::Fatal(m)) => Some(Remembered::Fatal(m.clone())),
            Err(_) => None,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    /// file id → (digest of the update, outcome).
    done: BTreeMap<String, (String, Remembered)>,
}

fn risk_word(r: RiskLevel) -> &'static str {
    match r {
        RiskLevel::None => "None",
        RiskLevel::Low => "Low",
        RiskLevel::Medium => "Medium",
        RiskLevel::High => "High",
        RiskLevel::Critical => "Critical",
    }
}

/// `value`, cut on a character boundary so that `key` and it fit in [`MAX_PROPERTY_BYTES`],
/// ending in `…` when cut.
pub fn fit(key: &str, value: &str) -> String {
    let budget = MAX_PROPERTY_BYTES.saturating_sub(key.len());
    if value.len() <= budget {
        return value.to_string();
    }
    const ELLIPSIS: &str = "…";
    let mut end = budget.saturating_sub(ELLIPSIS.len());
    while end > 0 && !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", value.get(..end).unwrap_or_default())
}

/// The properties written for one result.
pub fn properties_for(settings: &Settings, r: &FileResult) -> BTreeMap<String, String> {
    let mut summary = r.summary.clone();
    if let Some(e) = &r.error {
        summary = if summary.is_empty() {
            format!("Not fully readable: {e}")
        } else {
            format!("{summary} (not fully readable: {e})")
        };
    }
    if summary.is_empty() {
        summary = "No privacy findings".to_string();
    }
    let p = &settings.prefix;
    let mut m = BTreeMap::new();
    for (suffix, value) in [
        ("Risk", risk_word(r.risk).to_string()),
        ("Score", r.score.to_string()),
        ("Findings", summary),
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
        return Ok(results
            .into_iter()
            .map(|r| {
                WriteOutcome::skipped(
                    r.file.id,
                    "write-back is off in the integration's settings (write_back)",
                )
            })
            .collect());
    }
    let memo: Memo = state::get_json(MEMO_KEY).unwrap_or_default();
    let mut outcomes: Vec<Option<Result<(), PluginError>>> = results.iter().map(|_| None).collect();
    let mut digests: Vec<String> = Vec::with_capacity(results.len());
    let mut retry: Option<(Option<u64>, String)> = None;
    let mut stop: Option<PluginError> = None;
    for (index, r) in results.iter().enumerate() {
        let props = properties_for(&settings, r);
        let digest = format!(
            "{:016x}",
            fnv1a(format!("{}|{}", r.file.id, json!(props)).as_bytes())
        );
        digests.push(digest.clone());
        if let Some((d, remembered)) = memo.done.get(&r.file.id)
            && *d == digest
        {
            outcomes[index] = Some(remembered.clone().into_outcome());
            continue;
        }
        if stop.is_some() || retry.is_some() {
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
            FileAnswer::Done(o) => outcomes[index] = Some(o),
            FileAnswer::Retry(ms, why) => retry = Some((ms, why)),
            FileAnswer::Unauthorized(m) => {
                stop = Some(PluginError::unauthorized(format!(
                    "Google rejected the access token while writing properties: {m}"
                )));
            }
        }
    }

    let left = outcomes.iter().filter(|o| o.is_none()).count();
    if left > 0 {
        remember(&results, &digests, &outcomes)?;
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
    state::delete(MEMO_KEY);
    Ok(results
        .into_iter()
        .zip(outcomes)
        .map(|(r, o)| WriteOutcome {
            file_id: r.file.id,
            outcome: o.unwrap_or(Ok(())).map(|()| WriteResult::Written),
        })
        .collect())
}

/// Saves the final outcomes of this call (remembered ones included) for the host's retry.
fn remember(
    results: &[FileResult],
    digests: &[String],
    outcomes: &[Option<Result<(), PluginError>>],
) -> Result<(), PluginError> {
    let mut memo = Memo::default();
    for ((r, digest), outcome) in results.iter().zip(digests).zip(outcomes) {
        if let Some(remembered) = outcome.as_ref().and_then(Remembered::of) {
            memo.done
                .insert(r.file.id.clone(), (digest.clone(), remembered));
        }
    }
    state::set_json(MEMO_KEY, &memo)
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
        assert_eq!(fit(&"k".repeat(130), "v"), "…");
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

    #[test]
    fn final_outcomes_round_trip_through_the_memo() {
        for o in [
            Ok(()),
            Err(PluginError::not_found("gone")),
            Err(PluginError::invalid_config(Some("x"), "m")),
            Err(PluginError::fatal("f")),
        ] {
            let r = Remembered::of(&o).unwrap();
            assert_eq!(format!("{:?}", r.into_outcome()), format!("{o:?}"));
        }
        assert!(Remembered::of(&Err(PluginError::transient("t"))).is_none());
    }
}
