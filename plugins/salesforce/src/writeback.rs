//! Write-back: one record of the result object per analysed file version, created through sObject
//! Collections (`POST /composite/sobjects`, `allOrNone:false`, at most 200 records per request,
//! reference §1.4).
//!
//! The result object's fields are read once with a describe call and cached in plugin state, so
//! a write-back costs one request per 200 results. Required fields that are missing are reported
//! as a configuration problem naming them; optional ones are written only when they exist. Text is
//! cut to each field's length (ending in `…` when cut) so one long summary never costs the
//! record.
//!
//! Outcomes are per file: Salesforce answers a SaveResult per record, in request order, and this
//! module turns each into that file's outcome. A record refused with `UNABLE_TO_LOCK_ROW` (a
//! concurrent edit) was not created, so it is sent once more in the same call. When a request
//! after the first fails as a whole, the files of earlier requests keep their success and the rest
//! carry the error: an error for the whole call would tell the host nothing was written.
//!
//! Creates are not idempotent; the host writes each (file version, plugin version, policy) at most
//! once, so a retried run does not duplicate records.

use std::collections::BTreeMap;

use proofpix_sdk::http::Request;
use proofpix_sdk::prelude::*;
use proofpix_sdk::text::truncate_chars;
use proofpix_sdk::writeback;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api;
use crate::settings::Settings;

/// Salesforce's limit per sObject Collections request.
pub const MAX_RECORDS_PER_REQUEST: usize = 200;
/// Fields the record cannot do without.
pub const REQUIRED_FIELDS: &[&str] = &[
    "File_Id__c",
    "File_Link__c",
    "Risk_Level__c",
    "Risk_Score__c",
    "Findings_Summary__c",
    "Analysed_At__c",
];
/// Fields written when the object has them.
pub const OPTIONAL_FIELDS: &[&str] = &[
    "File_Version__c",
    "File_Name__c",
    "Related_Record__c",
    "Policy_Version__c",
];
/// Per-record status codes worth one more try in the same call (the record was not created).
const RETRY_CODES: &[&str] = &["UNABLE_TO_LOCK_ROW"];
/// Per-record status codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "UNKNOWN_EXCEPTION",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
];

/// What the describe call says about the result object, as cached.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// API name as Salesforce spells it.
    pub name: String,
    /// The user may create records.
    pub createable: bool,
    /// `Name` must be sent (not an auto-number).
    pub name_createable: bool,
    /// Createable fields and their text length (0 = not text).
    pub fields: BTreeMap<String, u32>,
}

fn cache_key(s: &Settings) -> String {
    format!("describe/{}/{}", s.api_version, s.result_object)
}

/// Describes the result object (from the cache unless `fresh`).
///
/// # Errors
/// A missing object or missing required fields as `invalid-config` naming `result_object`.
pub fn object_info(s: &Settings, fresh: bool) -> Result<ObjectInfo, PluginError> {
    if !fresh && let Some(info) = state::get_json::<ObjectInfo>(&cache_key(s)) {
        return Ok(info);
    }
    let url = format!(
        "{}/sobjects/{}/describe",
        api::data_base(s)?,
        s.result_object
    );
    let resp = Request::get(&url).send()?;
    if resp.status == 404 {
        let (code, _) =
            api::first_error(&resp.body).unwrap_or_else(|| ("NOT_FOUND".into(), String::new()));
        return Err(PluginError::invalid_config(
            Some("result_object"),
            format!(
                "Salesforce says the object {} does not exist ({code}); create it (the field help lists its fields) or set `result_object`",
                s.result_object
            ),
        ));
    }
    if !resp.is_success() {
        return Err(api::error_of(
            &resp,
            &format!("describing {}", s.result_object),
        ));
    }
    let v: Value = resp.json()?;
    let mut info = ObjectInfo {
        name: v["name"].as_str().unwrap_or(&s.result_object).to_string(),
        createable: v["createable"].as_bool().unwrap_or(false),
        name_createable: false,
        fields: BTreeMap::new(),
    };
    for f in v["fields"].as_array().into_iter().flatten() {
        let Some(name) = f["name"].as_str() else {
            continue;
        };
        let createable = f["createable"].as_bool().unwrap_or(false);
        if name == "Name" {
            info.name_createable = createable && !f["autoNumber"].as_bool().unwrap_or(false);
        } else if createable {
            let len = f["length"].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
            info.fields.insert(name.to_string(), len);
        }
    }
    if !info.createable {
        return Err(PluginError::invalid_config(
            Some("result_object"),
            format!(
                "the integration user may not create {} records; give it Create permission on the object",
                info.name
            ),
        ));
    }
    let missing: Vec<&str> = REQUIRED_FIELDS
        .iter()
        .copied()
        .filter(|f| !info.fields.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        return Err(PluginError::invalid_config(
            Some("result_object"),
            format!(
                "the object {} has no field {} the integration user can edit; create {} or grant edit access to {}",
                info.name,
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                if missing.len() == 1 { "it" } else { "them" },
            ),
        ));
    }
    // A failed cache write only costs a describe next time.
    let _ = state::set_json(&cache_key(s), &info);
    Ok(info)
}

/// The findings summary: the host's one-liner, then one line per finding without its value (the
/// values are what the scan is about; the one-liner already shows them masked).
fn summary(r: &FileResult) -> String {
    let mut out = r.summary.clone();
    if let Some(e) = &r.error {
        out.push_str(&format!("\nNot fully read: {e}"));
    }
    for f in &r.findings {
        out.push_str(&format!(
            "\n- {} ({}), from {}",
            f.code,
            f.severity.keyword(),
            f.source
        ));
    }
    out
}

/// `s` cut to a text field's length; 0 is what describe says of a field that is not text.
fn cut(s: &str, max: u32) -> String {
    match usize::try_from(max) {
        Ok(0) | Err(_) => s.to_string(),
        Ok(max) => truncate_chars(s, max),
    }
}

/// The record for one result.
pub fn record(info: &ObjectInfo, r: &FileResult) -> Value {
    let mut m = Map::new();
    m.insert("attributes".into(), json!({"type": info.name}));
    let mut put = |field: &str, value: Value| {
        if let Some(&len) = info.fields.get(field) {
            let value = match value {
                Value::String(s) => Value::String(cut(&s, len)),
                other => other,
            };
            m.insert(field.to_string(), value);
        }
    };
    put("File_Id__c", json!(r.file.id));
    put("File_Version__c", json!(r.file.version));
    put("File_Name__c", json!(r.file.name));
    put(
        "File_Link__c",
        json!(r.file.web_url.clone().unwrap_or_default()),
    );
    put(
        "Related_Record__c",
        json!(r.file.container.clone().unwrap_or_default()),
    );
    put("Risk_Level__c", json!(r.risk.keyword()));
    put("Risk_Score__c", json!(r.score));
    put("Findings_Summary__c", json!(summary(r)));
    put("Analysed_At__c", json!(r.analysed_at));
    put("Policy_Version__c", json!(r.policy_version));
    if info.name_createable {
        m.insert("Name".into(), json!(cut(&r.file.name, 80)));
    }
    Value::Object(m)
}

/// What one SaveResult says.
fn outcome_of(file: &FileResult, save: Option<&Value>) -> Result<(), (String, PluginError)> {
    let Some(save) = save else {
        return Err((
            String::new(),
            PluginError::fatal(format!(
                "Salesforce returned no result for the record of {}",
                file.file.name
            )),
        ));
    };
    if save["success"].as_bool() == Some(true) {
        return Ok(());
    }
    let e = save["errors"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let code = e["statusCode"].as_str().unwrap_or("UNKNOWN").to_string();
    let message: String = e["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let fields: Vec<&str> = e["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let what = format!(
        "Salesforce refused the result record for {} ({code}: {message}{})",
        file.file.name,
        if fields.is_empty() {
            String::new()
        } else {
            format!("; fields: {}", fields.join(", "))
        }
    );
    let error = if TRANSIENT_CODES.contains(&code.as_str()) {
        PluginError::transient(what)
    } else if matches!(
        code.as_str(),
        "INVALID_FIELD"
            | "INVALID_TYPE"
            | "INSUFFICIENT_ACCESS_OR_READONLY"
            | "INVALID_FIELD_FOR_INSERT_UPDATE"
    ) {
        PluginError::invalid_config(
            Some("result_object"),
            format!("{what}; check the result object's fields and the user's access"),
        )
    } else {
        PluginError::fatal(what)
    };
    Err((code, error))
}

/// Posts one request of at most 200 records; the SaveResults in order.
fn post(s: &Settings, records: Vec<Value>) -> Result<Vec<Value>, PluginError> {
    let url = format!("{}/composite/sobjects", api::data_base(s)?);
    let resp = api::send(
        Request::post(&url).json(&json!({"allOrNone": false, "records": records})),
        "writing results",
    )?;
    let v: Value = resp.json()?;
    v.as_array().cloned().ok_or_else(|| {
        PluginError::transient("Salesforce answered a collection create without a result list")
    })
}

/// Writes a batch of results.
///
/// # Errors
/// When nothing was written: the object is misconfigured, or the first request failed.
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let s = Settings::load()?;
    if !s.write_results {
        return Ok(writeback::skip_all(
            results,
            "writing results is off in the integration's settings (write_results)",
        ));
    }
    let info = object_info(&s, false)?;
    let mut outcomes: Vec<WriteOutcome> = Vec::with_capacity(results.len());
    let mut stale_describe = false;
    for (n, chunk) in results.chunks(MAX_RECORDS_PER_REQUEST).enumerate() {
        let saves = match post(&s, chunk.iter().map(|r| record(&info, r)).collect()) {
            Ok(saves) => saves,
            Err(e) if n == 0 => return Err(e),
            Err(e) => {
                // Earlier requests were written; this one and the rest were not.
                for r in results.iter().skip(n * MAX_RECORDS_PER_REQUEST) {
                    outcomes.push(WriteOutcome {
                        file_id: r.file.id.clone(),
                        outcome: Err(e.clone()),
                    });
                }
                break;
            }
        };
        let mut chunk_outcomes: Vec<Result<(), (String, PluginError)>> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| outcome_of(r, saves.get(i)))
            .collect();
        let retry: Vec<usize> = chunk_outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Err((code, _)) if RETRY_CODES.contains(&code.as_str())))
            .map(|(i, _)| i)
            .collect();
        if !retry.is_empty()
            && let Ok(again) = post(
                &s,
                retry
                    .iter()
                    .filter_map(|&i| chunk.get(i))
                    .map(|r| record(&info, r))
                    .collect(),
            )
        {
            for (k, &i) in retry.iter().enumerate() {
                if let (Some(slot), Some(r)) = (chunk_outcomes.get_mut(i), chunk.get(i)) {
                    *slot = outcome_of(r, again.get(k));
                }
            }
        }
        for (r, o) in chunk.iter().zip(chunk_outcomes) {
            if matches!(&o, Err((code, _)) if code == "INVALID_FIELD") {
                stale_describe = true;
            }
            outcomes.push(WriteOutcome {
                file_id: r.file.id.clone(),
                outcome: o.map(|()| WriteResult::Written).map_err(|(_, e)| e),
            });
        }
    }
    if stale_describe {
        // The object changed under us: describe again next time.
        state::delete(&cache_key(&s));
    }
    Ok(outcomes)
}
