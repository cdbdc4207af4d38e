//! A source connector written straight against `wit/since_v0.1.0` with
//! wit-bindgen, as a third party might have before contract 0.2 existed. It
//! never changes: the test that runs it proves a host serving 0.2 still runs
//! 0.1 plugins unchanged.
//!
//! `discover` lists `{config.base_url}/files`, `download` points the host at
//! `/files/{id}/content`, and `write-back` posts the ids to `/writeback`.

// wit-bindgen's export glue (the canonical ABI entry points) is unsafe code
// generated into this crate; it is the only unsafe code here.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/since_v0.1.0",
        world: "connector",
    });
}

use bindings::exports::proofpix::plugin::{events, manifest, notifier, source};
use bindings::proofpix::plugin::types::{FileResult, PluginError, RemoteFile};
use bindings::proofpix::plugin::{config, http};

struct Legacy;

fn base() -> Result<String, PluginError> {
    config::get("base_url").ok_or_else(|| PluginError::Fatal("base_url is not set".into()))
}

fn send(method: http::Method, url: String, body: Vec<u8>) -> Result<http::Response, PluginError> {
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    http::send(&http::Request {
        method,
        url,
        headers,
        body,
    })
    .map_err(|e| PluginError::Transient(format!("{e:?}")))
}

impl manifest::Guest for Legacy {
    fn describe() -> manifest::PluginInfo {
        manifest::PluginInfo {
            id: "legacy".into(),
            version: "0.1.0".into(),
            display_name: "Legacy 0.1 connector".into(),
            platform: "Test".into(),
            description: "Built against contract 0.1 without the SDK.".into(),
            capabilities: vec![manifest::Capability::Source],
            config: vec![manifest::ConfigField {
                name: "base_url".into(),
                label: "Base URL".into(),
                help: "Where the test API lives.".into(),
                kind: manifest::FieldKind::Url,
                required: true,
                secret: false,
                default_value: None,
                choices: vec![],
                placeholder: None,
            }],
            auth: manifest::AuthScheme::None,
            endpoints: vec![manifest::Endpoint {
                name: "api".into(),
                url: "{config.base_url}".into(),
                credentials: false,
                purpose: "the test API".into(),
            }],
            filesystem: vec![],
            write_back_batch_size: 10,
        }
    }

    fn validate_config() -> Result<(), PluginError> {
        base().map(|_| ())
    }
}

impl source::Guest for Legacy {
    fn check() -> Result<source::CheckReport, PluginError> {
        Ok(source::CheckReport {
            account: None,
            details: vec!["legacy ok".into()],
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

    fn download(file: RemoteFile) -> Result<source::DownloadSpec, PluginError> {
        let req = http::Request {
            method: http::Method::Get,
            url: format!("{}/files/{}/content", base()?, file.id),
            headers: vec![],
            body: vec![],
        };
        Ok(source::DownloadSpec {
            location: source::ContentLocation::Http(req),
            supports_range: false,
        })
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<source::WriteOutcome>, PluginError> {
        let ids: Vec<&str> = results.iter().map(|r| r.file.id.as_str()).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "ids": ids })).unwrap_or_default();
        send(http::Method::Post, format!("{}/writeback", base()?), body)?;
        Ok(results
            .into_iter()
            .map(|r| source::WriteOutcome {
                file_id: r.file.id,
                outcome: Ok(()),
            })
            .collect())
    }
}

impl notifier::Guest for Legacy {
    fn notify(_event: notifier::Notification) -> Result<(), PluginError> {
        Err(PluginError::Fatal("notify is not supported".into()))
    }
}

impl events::Guest for Legacy {
    fn handle(_request: events::InboundRequest) -> Result<events::EventOutcome, PluginError> {
        Err(PluginError::Fatal("events are not supported".into()))
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Legacy with_types_in bindings);
