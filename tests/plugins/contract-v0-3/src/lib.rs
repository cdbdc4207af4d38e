//! A source connector written straight against `wit/since_v0.3.0` with
//! wit-bindgen, without the SDK, to exercise what contract 0.3
//! adds, each driven by the test platform's file ids:
//! - `download` of a file whose id starts with `notready` answers
//!   `download-answer.not-ready` (after asking `{base}/status/{id}`, so the
//!   test can count the attempts), with a reason holding control characters;
//! - the `api` endpoint declares `{config.cdn_url}` as a redirect target, so a
//!   content response may redirect there (fetched without credentials);
//! - `write-back` of a file whose id starts with `skip` answers
//!   `write-result.skipped` and writes nothing;
//! - `check` with `probe = cdn` requests the redirect target as a first hop,
//!   which the host refuses, and passes the refusal on as
//!   `plugin-error.egress-refused`;
//! - `notify` posts what a digest says (totals, window, alert count) to
//!   `{base}/notify`.

// wit-bindgen's export glue (the canonical ABI entry points) is unsafe code
// generated into this crate; it is the only unsafe code here.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/since_v0.3.0",
        world: "connector",
    });
}

use bindings::exports::proofpix::plugin::{events, manifest, notifier, remediation, source};
use bindings::proofpix::plugin::types::{
    EgressRefusal, FileResult, PluginError, RemoteFile, RiskLevel,
};
use bindings::proofpix::plugin::{config, http};

struct Contract03;

fn base() -> Result<String, PluginError> {
    config::get("base_url").ok_or_else(|| PluginError::Fatal("base_url is not set".into()))
}

fn send(method: http::Method, url: String, body: Vec<u8>) -> Result<http::Response, PluginError> {
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let request = http::Request {
        method,
        url: url.clone(),
        headers,
        body,
    };
    match http::send(&request) {
        Ok(r) => Ok(r),
        // What 0.3 adds: the refusal travels typed, with the URL.
        Err(http::Error::Denied(reason)) => {
            Err(PluginError::EgressRefused(EgressRefusal { url, reason }))
        }
        Err(e) => Err(PluginError::Transient(format!("{e:?}"))),
    }
}

fn text_field(name: &str, label: &str, secret: bool, required: bool) -> manifest::ConfigField {
    manifest::ConfigField {
        name: name.into(),
        label: label.into(),
        help: String::new(),
        kind: manifest::FieldKind::Text,
        required,
        secret,
        default_value: None,
        choices: vec![],
        placeholder: None,
    }
}

impl manifest::Guest for Contract03 {
    fn describe() -> manifest::PluginInfo {
        manifest::PluginInfo {
            id: "contract-v03".into(),
            version: "0.3.0".into(),
            display_name: "Contract 0.3 test connector".into(),
            platform: "Test".into(),
            description: "Built against contract 0.3 without the SDK.".into(),
            capabilities: vec![manifest::Capability::Source],
            config: vec![
                text_field("base_url", "Base URL", false, true),
                text_field("cdn_url", "Content host", false, true),
                text_field("probe", "Probe", false, false),
                text_field("api_key", "API key", true, true),
            ],
            auth: manifest::AuthScheme::ApiKey(manifest::ApiKeyAuth {
                secret_field: "api_key".into(),
                header: "x-api-key".into(),
                prefix: String::new(),
            }),
            endpoints: vec![manifest::Endpoint {
                name: "api".into(),
                url: "{config.base_url}".into(),
                credentials: true,
                purpose: "the test API".into(),
                redirect_targets: vec!["{config.cdn_url}".into()],
            }],
            filesystem: vec![],
            write_back_batch_size: 10,
            write_back_idempotent: true,
            remediations: vec![],
            oauth_dialect: None,
        }
    }

    fn validate_config() -> Result<(), PluginError> {
        base().map(|_| ())
    }
}

impl source::Guest for Contract03 {
    fn check() -> Result<source::CheckReport, PluginError> {
        if config::get("probe").as_deref() == Some("cdn") {
            let cdn = config::get("cdn_url").unwrap_or_default();
            send(http::Method::Get, format!("{cdn}/probe"), vec![])?;
        }
        Ok(source::CheckReport {
            account: None,
            details: vec!["contract 0.3 ok".into()],
        })
    }

    fn discover(_cursor: Option<String>) -> Result<source::Page, PluginError> {
        let r = send(http::Method::Get, format!("{}/files", base()?), vec![])?;
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(&r.body).map_err(|e| PluginError::Transient(e.to_string()))?;
        let files = items
            .iter()
            .map(|v| RemoteFile {
                id: v["id"].as_str().unwrap_or_default().into(),
                name: v["name"].as_str().unwrap_or_default().into(),
                mime_type: Some("image/jpeg".into()),
                size: None,
                modified: None,
                version: v["etag"].as_str().unwrap_or_default().into(),
                container: None,
                web_url: None,
                path: None,
                properties: vec![],
            })
            .collect();
        Ok(source::Page {
            files,
            removed: vec![],
            cursor: Some("done".into()),
            more: false,
        })
    }

    fn download(file: RemoteFile) -> Result<source::DownloadAnswer, PluginError> {
        let base = base()?;
        if file.id.starts_with("notready") {
            send(
                http::Method::Get,
                format!("{base}/status/{}", file.id),
                vec![],
            )?;
            return Ok(source::DownloadAnswer::NotReady(source::NotReady {
                retry_after_ms: Some(1),
                reason: "the platform is still processing the upload\n\u{1b}[31m".into(),
            }));
        }
        Ok(source::DownloadAnswer::Ready(source::DownloadSpec {
            location: source::ContentLocation::Http(http::Request {
                method: http::Method::Get,
                url: format!("{base}/files/{}/content", file.id),
                headers: vec![],
                body: vec![],
            }),
            supports_range: false,
        }))
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<source::WriteOutcome>, PluginError> {
        let (skip, write): (Vec<FileResult>, Vec<FileResult>) = results
            .into_iter()
            .partition(|r| r.file.id.starts_with("skip"));
        let mut out: Vec<source::WriteOutcome> = skip
            .into_iter()
            .map(|r| source::WriteOutcome {
                file_id: r.file.id,
                outcome: Ok(source::WriteResult::Skipped(
                    "write_back is off for this channel".into(),
                )),
            })
            .collect();
        if !write.is_empty() {
            let ids: Vec<&str> = write.iter().map(|r| r.file.id.as_str()).collect();
            let body = serde_json::to_vec(&serde_json::json!({ "ids": ids })).unwrap_or_default();
            send(http::Method::Post, format!("{}/writeback", base()?), body)?;
            out.extend(write.into_iter().map(|r| source::WriteOutcome {
                file_id: r.file.id,
                outcome: Ok(source::WriteResult::Written),
            }));
        }
        Ok(out)
    }
}

fn risk_name(r: RiskLevel) -> &'static str {
    match r {
        RiskLevel::None => "none",
        RiskLevel::Low => "low",
        RiskLevel::Medium => "medium",
        RiskLevel::High => "high",
        RiskLevel::Critical => "critical",
    }
}

impl notifier::Guest for Contract03 {
    fn notify(event: notifier::Notification) -> Result<(), PluginError> {
        let notifier::Notification::HighRiskFiles(d) = event else {
            return Ok(());
        };
        let by_risk: Vec<(String, u32)> = d
            .by_risk
            .iter()
            .map(|(r, n)| (risk_name(*r).to_string(), *n))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({
            "alerts": d.alerts.len(),
            "total": d.total,
            "by_risk": by_risk,
            "window_start": d.window_start,
            "window_end": d.window_end,
        }))
        .unwrap_or_default();
        send(http::Method::Post, format!("{}/notify", base()?), body)?;
        Ok(())
    }
}

impl events::Guest for Contract03 {
    fn handle(_request: events::InboundRequest) -> Result<events::EventOutcome, PluginError> {
        Err(PluginError::Fatal("events are not supported".into()))
    }
}

impl remediation::Guest for Contract03 {
    fn upload(
        _file: RemoteFile,
        _size: u64,
        _content_type: String,
    ) -> Result<http::Request, PluginError> {
        Err(PluginError::Fatal("remediation is not supported".into()))
    }

    fn remediate(_action: remediation::Action) -> Result<remediation::Outcome, PluginError> {
        Err(PluginError::Fatal("remediation is not supported".into()))
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Contract03 with_types_in bindings);
