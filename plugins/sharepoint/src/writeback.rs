//! Writing results into list-item columns, 20 updates per JSON `$batch` (reference §2.4).
//!
//! Each file becomes one `PATCH /sites/{site}/lists/{list}/items/{item}/fields` sub-request
//! (or `/drives/{drive}/items/{item}/listItem/fields` when delta gave no list item id). Graph
//! answers sub-requests in any order and throttles each on its own, so outcomes are matched by
//! sub-request `id`, never by position.
//!
//! **Throttled sub-requests.** A plugin cannot wait, and the host retries a whole `write-back`
//! call (after the Retry-After it is given) but never a single file's outcome. So when any update
//! was throttled or failed transiently, the call fails as a whole with the longest Retry-After
//! Graph sent, and the outcomes already final (written, or failed for good) are remembered in the
//! plugin's state (the SDK's [`WriteBatch`]), keyed by file and by a digest of the exact update.
//! The host's retry sends the same results; the remembered ones are answered from the memo
//! without a request, so each column update is applied once. A memo entry is used only for the
//! same file with the same update, and dropped after one use or when a call no longer includes
//! the file.

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;
use proofpix_sdk::results;
use proofpix_sdk::text::truncate_chars;
use proofpix_sdk::writeback::{self, WriteBatch};
use serde_json::{Map, Value, json};

use crate::discover::{ids_of, prop};
use crate::graph::{self, GraphError};
use crate::own_write;
use crate::settings::{Settings, field};

/// Sub-requests per `$batch`: Graph's limit.
pub const BATCH_LIMIT: usize = 20;

/// One column update to send.
#[derive(Debug, Clone)]
pub struct Update {
    /// Index in the call's results.
    pub index: usize,
    pub file_id: String,
    /// Relative URL for the batch.
    pub url: String,
    pub fields: Map<String, Value>,
}

/// The column values for one result.
pub fn fields_for(settings: &Settings, r: &FileResult) -> Map<String, Value> {
    let c = &settings.columns;
    let mut m = Map::new();
    m.insert(c.risk.clone(), json!(r.risk.label()));
    m.insert(c.score.clone(), json!(r.score));
    m.insert(
        c.summary.clone(),
        json!(truncate_chars(&results::summary(r), settings.summary_max)),
    );
    if let Some(col) = &c.analysed_at {
        m.insert(col.clone(), json!(r.analysed_at));
    }
    m
}

/// The relative URL of a file's list-item fields.
pub fn fields_url(file: &RemoteFile) -> Option<String> {
    match (
        file.property(prop::SITE),
        file.property(prop::LIST),
        file.property(prop::LIST_ITEM),
    ) {
        (Some(site), Some(list), Some(item)) => {
            Some(format!("/sites/{site}/lists/{list}/items/{item}/fields"))
        }
        _ => ids_of(file).map(|(d, i)| format!("/drives/{d}/items/{i}/listItem/fields")),
    }
}

/// A file listed without the ids a column update needs (an old cursor's listing).
fn no_ids(file: &RemoteFile) -> PluginError {
    PluginError::fatal(format!(
        "file {} has no SharePoint ids; run a full listing",
        file.id
    ))
}

/// The `$batch` body for up to [`BATCH_LIMIT`] updates; sub-request ids are `index + 1`.
pub fn batch_body(updates: &[Update]) -> Value {
    json!({
        "requests": updates.iter().map(|u| json!({
            "id": (u.index + 1).to_string(),
            "method": "PATCH",
            "url": u.url,
            "headers": {"Content-Type": "application/json"},
            "body": u.fields,
        })).collect::<Vec<_>>()
    })
}

/// What one sub-response means for its file.
#[derive(Debug)]
pub enum SubOutcome {
    /// Final.
    Done(Result<(), PluginError>),
    /// Worth sending again after this long (ms), if given.
    Retry(Option<u64>, String),
    /// The token was refused: the whole call must be retried after a refresh.
    Unauthorized(String),
}

/// Interprets one sub-response of a column update.
pub fn sub_outcome(
    settings: &Settings,
    status: u16,
    headers: &Value,
    body: &Value,
    label: &str,
) -> SubOutcome {
    if (200..300).contains(&status) {
        return SubOutcome::Done(Ok(()));
    }
    let retry_after_ms = headers
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        })
        .and_then(|(_, v)| {
            v.as_str()
                .map(String::from)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0) as u64);
    let e = GraphError::from_value(status, body, retry_after_ms);
    let what = format!("updating the columns of {label}");
    match status {
        401 => SubOutcome::Unauthorized(e.message),
        408 | 412 | 429 | 500..=599 => SubOutcome::Retry(
            retry_after_ms,
            format!("{what}: HTTP {status} {}", e.code()),
        ),
        404 => SubOutcome::Done(Err(PluginError::not_found(format!(
            "{label} no longer exists in SharePoint ({})",
            e.code()
        )))),
        403 => SubOutcome::Done(Err(PluginError::invalid_config(
            None,
            format!(
                "the app may not update columns in this library (Graph: 403 {}). Give the app Sites.ReadWrite.All, or write access through Sites.Selected on the site",
                e.code()
            ),
        ))),
        400 => {
            let column = settings
                .columns
                .all()
                .into_iter()
                .find(|(_, name)| e.message.contains(&format!("'{name}'")));
            match column {
                Some((field, name)) => SubOutcome::Done(Err(PluginError::invalid_config(
                    Some(field),
                    format!(
                        "SharePoint refused column {name} for {label} ({}: {}). Create the column in the library (risk: single line of text, score: number, findings: multiple lines of text) or set `{field}` to an existing column's internal name",
                        e.code(),
                        e.message
                    ),
                ))),
                None => SubOutcome::Done(Err(PluginError::fatal(format!(
                    "SharePoint refused the column update for {label} (HTTP 400 {}: {})",
                    e.code(),
                    e.message
                )))),
            }
        }
        _ => SubOutcome::Done(Err(e.into_plugin_error(&what))),
    }
}

/// Writes a batch of results.
///
/// # Errors
/// The whole call fails (and is retried by the host) when a `$batch` is throttled, fails
/// transiently or the token is refused; what was final before that is remembered.
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let settings = Settings::load()?;
    if !settings.write_back {
        return Ok(writeback::turned_off(results, field::WRITE_BACK));
    }
    let mut batch = WriteBatch::start(&results);
    let mut pending: Vec<Update> = Vec::new();
    for (index, r) in results.iter().enumerate() {
        let Some(url) = fields_url(&r.file) else {
            batch.done(index, Err(no_ids(&r.file)));
            continue;
        };
        let fields = fields_for(&settings, r);
        let digest = writeback::digest(format!("{url}|{}", Value::Object(fields.clone())));
        if !batch.recall(index, digest) {
            pending.push(Update {
                index,
                file_id: r.file.id.clone(),
                url,
                fields,
            });
        }
    }

    let mut retry: Option<(Option<u64>, String)> = None;
    let mut stop: Option<PluginError> = None;
    let endpoint = format!("{}/v1.0/$batch", settings.graph);
    for chunk in pending.chunks(BATCH_LIMIT) {
        let resp = match Request::post(&endpoint).json(&batch_body(chunk)).send() {
            Ok(r) => r,
            Err(e) => {
                stop = Some(e);
                break;
            }
        };
        if !resp.is_success() {
            let e = GraphError::from_response(&resp);
            stop = Some(e.into_plugin_error("sending column updates in a $batch"));
            break;
        }
        let body = match graph::parse_json(&resp, "reading the $batch response") {
            Ok(b) => b,
            Err(e) => {
                stop = Some(e);
                break;
            }
        };
        let mut answered = vec![false; chunk.len()];
        for sub in body["responses"].as_array().into_iter().flatten() {
            let Some(pos) = sub["id"]
                .as_str()
                .and_then(|id| id.parse::<usize>().ok())
                .and_then(|id| chunk.iter().position(|u| u.index + 1 == id))
            else {
                continue;
            };
            let Some(update) = chunk.get(pos) else {
                continue;
            };
            if let Some(a) = answered.get_mut(pos) {
                *a = true;
            }
            let status = sub["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0);
            let label = results
                .get(update.index)
                .map_or(update.file_id.as_str(), |r| r.file.name.as_str());
            match sub_outcome(&settings, status, &sub["headers"], &sub["body"], label) {
                SubOutcome::Done(o) => batch.done(update.index, o),
                SubOutcome::Retry(ms, why) => {
                    let longest = match &retry {
                        Some((prev, _)) => prev.max(&ms).to_owned(),
                        None => ms,
                    };
                    retry = Some((longest, why));
                }
                SubOutcome::Unauthorized(m) => {
                    stop = Some(PluginError::unauthorized(format!(
                        "Graph rejected the access token inside a $batch: {m}"
                    )));
                }
            }
        }
        if answered.iter().any(|a| !a) && retry.is_none() {
            retry = Some((
                None,
                "Graph left some $batch sub-requests unanswered".into(),
            ));
        }
        if stop.is_some() {
            break;
        }
    }

    let unfinished = batch.unanswered() > 0;
    if let Some(e) = stop.filter(|_| unfinished) {
        batch.save()?;
        return Err(e);
    }
    if unfinished {
        batch.save()?;
        let (ms, why) = retry.unwrap_or((None, "some column updates got no answer".into()));
        let n = batch.unanswered();
        let message = format!("{n} column update(s) must be sent again ({why})");
        return Err(match ms {
            Some(ms) => PluginError::rate_limited(Some(ms), message),
            None => PluginError::transient(message),
        });
    }
    for (index, r) in results.iter().enumerate() {
        if matches!(batch.outcome(index), Some(Ok(()))) {
            own_write::remember(&settings.graph, &r.file);
        }
    }
    Ok(batch.finish(results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawConfig;

    fn settings() -> Settings {
        RawConfig {
            sites: vec!["a.sharepoint.com/sites/x".into()],
            write_back: true,
            summary_max: 40,
            page_size: 10,
            ..RawConfig::default()
        }
        .check()
        .unwrap()
    }

    fn result(summary: &str) -> FileResult {
        FileResult {
            file: RemoteFile {
                id: "b!d/01A".into(),
                properties: vec![
                    (prop::DRIVE.into(), "b!d".into()),
                    (prop::ITEM.into(), "01A".into()),
                    (prop::SITE.into(), "h,s,w".into()),
                    (prop::LIST.into(), "L".into()),
                    (prop::LIST_ITEM.into(), "7".into()),
                ],
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
    fn fields_carry_risk_score_and_a_summary_cut_to_the_column() {
        let f = fields_for(
            &settings(),
            &result(&"GPS 52.37,4.90; owner J*** D** ".repeat(3)),
        );
        assert_eq!(f["ProofPixRisk"], "High");
        assert_eq!(f["ProofPixScore"], 87);
        let s = f["ProofPixFindings"].as_str().unwrap();
        assert_eq!(s.chars().count(), 40);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn the_list_item_path_is_used_when_delta_gave_its_id() {
        let r = result("x");
        assert_eq!(
            fields_url(&r.file).unwrap(),
            "/sites/h,s,w/lists/L/items/7/fields"
        );
        let mut no_li = r.file.clone();
        no_li.properties.retain(|(k, _)| k != prop::LIST_ITEM);
        assert_eq!(
            fields_url(&no_li).unwrap(),
            "/drives/b!d/items/01A/listItem/fields"
        );
    }

    #[test]
    fn sub_request_ids_are_result_positions_plus_one() {
        let u = |index| Update {
            index,
            file_id: format!("f{index}"),
            url: "/x".into(),
            fields: Map::new(),
        };
        let body = batch_body(&[u(0), u(5)]);
        assert_eq!(body["requests"][0]["id"], "1");
        assert_eq!(body["requests"][1]["id"], "6");
        assert_eq!(body["requests"][1]["method"], "PATCH");
    }

    #[test]
    fn a_throttled_sub_request_is_retried_after_its_retry_after() {
        let s = settings();
        match sub_outcome(&s, 429, &json!({"Retry-After": "2"}), &json!({}), "a.jpg") {
            SubOutcome::Retry(Some(2000), _) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sub_outcome(&s, 200, &json!({}), &json!({}), "a.jpg"),
            SubOutcome::Done(Ok(()))
        ));
    }

    #[test]
    fn an_unknown_column_names_the_field_to_fix() {
        let s = settings();
        let body = json!({"error": {"code": "invalidRequest", "message": "Field 'ProofPixScore' is not recognized"}});
        match sub_outcome(&s, 400, &json!({}), &body, "a.jpg") {
            SubOutcome::Done(Err(PluginError::InvalidConfig(p))) => {
                assert_eq!(p.field.as_deref(), Some("score_column"));
                assert!(p.message.contains("Create the column"), "{}", p.message);
            }
            other => panic!("{other:?}"),
        }
    }
}
