//! The JSON document posted for one notification, and the message its signature covers.
//!
//! The document is the one the Python example (`sdk/examples/python-webhook/app.py`) sends, key
//! for key, so a receiver built against either plugin works with the other; the crate docs
//! describe every key. Keys are written in sorted order and the output is compact, as Python's
//! `json.dumps(..., separators=(",", ":"), sort_keys=True)` writes them. The bytes still differ
//! where text is not ASCII (Python escapes `±` as `\u00b1`, this plugin sends UTF-8), which is
//! one more reason receivers must verify the signature over the raw bytes they received, never
//! over a re-serialisation.
//!
//! What it deliberately does not do: escape or shorten file names, paths and summaries. They
//! come from scanned files and are untrusted, but JSON encoding is the only escaping a JSON
//! receiver needs; rendering them safely is the receiver's job. Finding values arrive already
//! masked by the host. Findings are listed worst first (the one liberty taken with the Python
//! example, which keeps the host's order), so a short `max_findings` keeps what matters.

use proofpix_sdk::prelude::*;
use proofpix_sdk::results;
use serde_json::{Map, Value, json};

/// The value of `event` for each kind of notification.
pub fn event_name(event: &Notification) -> &'static str {
    match event {
        Notification::HighRiskFiles(_) => "high_risk_files",
        Notification::BatchCompleted(_) => "batch_completed",
        Notification::BatchFailed(_) => "batch_failed",
        Notification::IntegrationUnhealthy(_) => "integration_unhealthy",
    }
}

/// The document for `event`, sent by the webhook integration `integration_id`, listing at most
/// `max_findings` findings per file (`findings_total` counts them all).
pub fn document(event: &Notification, integration_id: &str, max_findings: usize) -> Value {
    let mut doc = Map::new();
    doc.insert("event".into(), event_name(event).into());
    doc.insert("integration_id".into(), integration_id.into());
    match event {
        Notification::HighRiskFiles(d) => {
            let files = d.alerts.iter().map(|a| alert(a, max_findings)).collect();
            doc.insert("files".into(), Value::Array(files));
            // The window's totals count every file, also those a message could not carry.
            let by_risk: Map<String, Value> = RiskLevel::WORST_FIRST
                .into_iter()
                .filter(|r| d.count(*r) > 0)
                .map(|r| (r.keyword().to_string(), Value::from(d.count(r))))
                .collect();
            doc.insert("files_total".into(), Value::from(d.total_files()));
            doc.insert("files_by_risk".into(), Value::Object(by_risk));
            if !d.window_start.is_empty() {
                doc.insert(
                    "window".into(),
                    json!({"start": d.window_start, "end": d.window_end}),
                );
            }
        }
        Notification::BatchCompleted(b) => {
            let by_risk: Map<String, Value> = b
                .by_risk
                .iter()
                .map(|(level, n)| (level.keyword().to_string(), Value::from(*n)))
                .collect();
            doc.insert(
                "batch".into(),
                json!({
                    "by_risk": by_risk,
                    "dashboard_url": b.dashboard_url,
                    "files_failed": b.files_failed,
                    "files_ok": b.files_ok,
                    "files_total": b.files_total,
                    "finished_at": b.finished_at,
                    "id": b.batch_id,
                    "integration": b.integration,
                    "platform": b.platform,
                    "started_at": b.started_at,
                }),
            );
        }
        Notification::BatchFailed(p) | Notification::IntegrationUnhealthy(p) => {
            doc.insert("integration".into(), p.integration.clone().into());
            doc.insert("message".into(), p.message.clone().into());
        }
    }
    sorted(Value::Object(doc))
}

/// The document as the bytes that are sent and signed.
pub fn body(document: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: every key is a string.
    serde_json::to_vec(document).unwrap_or_default()
}

/// What the signature covers: `v1:<timestamp>:<body>`.
pub fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(body.len() + timestamp.len() + 4);
    message.extend_from_slice(b"v1:");
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b':');
    message.extend_from_slice(body);
    message
}

fn alert(a: &FileAlert, max_findings: usize) -> Value {
    // Worst first, so a short list keeps the GPS position rather than the camera make; the
    // sort is stable, so equal severities keep the host's order.
    let findings: Vec<Value> = results::worst_first(&a.findings)
        .into_iter()
        .take(max_findings)
        .map(|f| {
            json!({
                "category": f.category,
                "code": f.code,
                "severity": f.severity.keyword(),
                "value": f.value,
            })
        })
        .collect();
    json!({
        "file": {
            "container": a.file.container,
            "id": a.file.id,
            "name": a.file.name,
            "path": a.file.path,
            "version": a.file.version,
            "web_url": a.file.web_url,
        },
        "findings": findings,
        "findings_total": a.findings.len(),
        "integration": a.integration,
        "risk": a.risk.keyword(),
        "score": a.score,
        "summary": a.summary,
    })
}

/// `value` with every object's keys in sorted order, whatever map type serde_json was built
/// with (feature unification can turn on `preserve_order`, which keeps insertion order).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, severity: RiskLevel) -> Finding {
        Finding {
            category: code.split('.').next().unwrap().into(),
            code: code.into(),
            severity,
            source: "exif:GPS/0x0002".into(),
            value: "52.37, 4.89".into(),
        }
    }

    fn alert() -> FileAlert {
        FileAlert {
            integration: "sf-cases".into(),
            file: RemoteFile {
                id: "068000000000001".into(),
                name: "damage \"photo\".jpg".into(),
                version: "3".into(),
                container: Some("Case 00001042".into()),
                ..RemoteFile::default()
            },
            risk: RiskLevel::Critical,
            score: 94,
            summary: "GPS 52.37,4.89".into(),
            findings: vec![
                finding("gps.coordinates", RiskLevel::Critical),
                finding("serial.body", RiskLevel::Medium),
            ],
        }
    }

    /// The exact bytes matter: they are what gets signed, and they are serialised as the Python
    /// example serialises (sorted keys, no spaces). The example targets contract 0.2, whose
    /// digest has no totals, so it sends the same document without `files_by_risk` and
    /// `files_total`.
    #[test]
    fn a_high_risk_alert_is_compact_json_with_sorted_keys() {
        let doc = document(
            &Notification::HighRiskFiles(Digest::of(vec![alert()])),
            "zap",
            1,
        );
        assert_eq!(
            String::from_utf8(body(&doc)).unwrap(),
            r#"{"event":"high_risk_files","files":[{"file":{"container":"Case 00001042","id":"068000000000001","name":"damage \"photo\".jpg","path":null,"version":"3","web_url":null},"findings":[{"category":"gps","code":"gps.coordinates","severity":"critical","value":"52.37, 4.89"}],"findings_total":2,"integration":"sf-cases","risk":"critical","score":94,"summary":"GPS 52.37,4.89"}],"files_by_risk":{"critical":1},"files_total":1,"integration_id":"zap"}"#
        );
    }

    #[test]
    fn findings_are_listed_worst_first_and_ties_keep_their_order() {
        let mut a = alert();
        a.findings = vec![
            finding("device.make_model", RiskLevel::Low),
            finding("timestamp.capture", RiskLevel::Medium),
            finding("owner.name", RiskLevel::High),
            finding("gps.coordinates", RiskLevel::Critical),
            finding("serial.body", RiskLevel::High),
        ];
        let doc = document(&Notification::HighRiskFiles(Digest::of(vec![a])), "zap", 3);
        let codes: Vec<&str> = doc["files"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["gps.coordinates", "owner.name", "serial.body"]);
        assert_eq!(doc["files"][0]["findings_total"], 5);
    }

    #[test]
    fn a_digest_lists_every_file_and_zero_findings_keeps_the_count() {
        let doc = document(
            &Notification::HighRiskFiles(Digest::of(vec![alert(), alert(), alert()])),
            "zap",
            0,
        );
        assert_eq!(doc["files"].as_array().unwrap().len(), 3);
        assert_eq!(doc["files"][2]["findings"], json!([]));
        assert_eq!(doc["files"][2]["findings_total"], 2);
    }

    #[test]
    fn a_batch_summary_counts_files_by_risk() {
        let doc = document(
            &Notification::BatchCompleted(BatchSummary {
                batch_id: "b-7".into(),
                integration: "photos".into(),
                platform: "Local folder".into(),
                started_at: "2026-11-26T10:00:00Z".into(),
                finished_at: "2026-11-26T10:01:00Z".into(),
                files_total: 12,
                files_ok: 11,
                files_failed: 1,
                by_risk: vec![(RiskLevel::Critical, 1), (RiskLevel::None, 10)],
                dashboard_url: None,
            }),
            "zap",
            5,
        );
        assert_eq!(
            doc,
            json!({
                "event": "batch_completed",
                "integration_id": "zap",
                "batch": {
                    "id": "b-7", "integration": "photos", "platform": "Local folder",
                    "started_at": "2026-11-26T10:00:00Z", "finished_at": "2026-11-26T10:01:00Z",
                    "files_total": 12, "files_ok": 11, "files_failed": 1,
                    "by_risk": {"critical": 1, "none": 10}, "dashboard_url": null,
                },
            })
        );
    }

    #[test]
    fn failures_and_unhealthy_sources_carry_the_message() {
        let problem = Problem {
            integration: "photos".into(),
            message: "folder not readable".into(),
        };
        for (event, name) in [
            (Notification::BatchFailed(problem.clone()), "batch_failed"),
            (
                Notification::IntegrationUnhealthy(problem.clone()),
                "integration_unhealthy",
            ),
        ] {
            assert_eq!(
                document(&event, "zap", 5),
                json!({"event": name, "integration_id": "zap", "integration": "photos", "message": "folder not readable"}),
                "{name}"
            );
        }
    }

    #[test]
    fn the_signature_covers_version_timestamp_and_body() {
        assert_eq!(
            signed_message("1700000000000", b"{}"),
            b"v1:1700000000000:{}".to_vec()
        );
    }
}
