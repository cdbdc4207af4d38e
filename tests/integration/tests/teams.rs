//! The Microsoft Teams notifier against the Teams webhook emulator, through the host library.
//!
//! - `cards`: an Adaptive Card envelope per notification kind on a Workflows webhook (both URL
//!   forms), a MessageCard on a legacy connector, and routing from a source's run.
//! - `errors`: throttling (429 with `Retry-After`, and the legacy connector's 429 hidden in an
//!   HTTP 200 body), webhook URLs that are wrong or gone, oversized and malformed answers.
//! - `secrecy`: the webhook URL is a credential; it must never appear in a log line, an error or
//!   the audit trail, whatever happens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proofpix_emulators::teams::{self, CardKind, Hook, Teams, TeamsConfig};
use proofpix_emulators::{ErrorReply, Fault, Harness};
use proofpix_integration_tests::{logs, loopback_grant};
use proofpix_model::{
    BatchSummary, FileAlert, Finding, Notification, PluginError, Problem, RemoteFile, RiskLevel,
};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, ServiceError, Subscriptions};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};

// ---------------------------------------------------------------------------------------------
// Setup.
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    teams: Teams,
    dir: tempfile::TempDir,
}

async fn env_with(config: TeamsConfig) -> Env {
    logs();
    env_inner(config).await
}

/// An environment without the log capture (benchmarks: trace-level capture costs time).
async fn env_inner(config: TeamsConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store");
    let options = HostOptions {
        pipeline: PipelineOptions {
            concurrency: 2,
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_secs(2),
            wait_for_retries: Some(Duration::from_secs(10)),
            ..PipelineOptions::default()
        },
        // Compiled plugins are cached across this binary's tests.
        cache_dir: Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    // One host at a time fills the cache: the runtime names its temporary file after the
    // process, so two hosts of one process compiling the same plugin race on it.
    static CACHE_FILL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let host = {
        let _fill = CACHE_FILL.lock().await;
        Host::new(Arc::new(store), options).await.expect("host")
    };
    let teams = teams::start(config, Harness::default())
        .await
        .expect("teams");
    Env { host, teams, dir }
}

async fn env() -> Env {
    env_with(TeamsConfig::default()).await
}

impl Env {
    async fn teams_integration(
        &self,
        id: &str,
        webhook_url: &str,
        format: &str,
        grant: OperatorGrant,
        subscriptions: Option<Subscriptions>,
    ) -> Result<(), ServiceError> {
        let mut config = BTreeMap::new();
        config.insert("format".to_string(), format.to_string());
        config.insert(
            "webhook_host".to_string(),
            self.teams
                .base_url()
                .as_str()
                .trim_end_matches('/')
                .to_string(),
        );
        let mut secrets = BTreeMap::new();
        secrets.insert("webhook_url".to_string(), Secret::new(webhook_url));
        self.host
            .create_integration(
                IntegrationSpec {
                    id: id.into(),
                    plugin: "teams".into(),
                    config,
                    secrets,
                    grant,
                    subscriptions,
                    schedule: None,
                },
                "operator:test",
            )
            .await
            .map(|_| ())
    }

    async fn workflow(&self, id: &str) {
        self.teams_integration(
            id,
            self.teams.workflow_url().as_str(),
            "workflows",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
    }

    async fn notify(&self, id: &str, event: &Notification) -> Result<(), PluginError> {
        let (plugin, ctx) = self.host.context(id, true).await.expect("context");
        let mut session = plugin.session(&ctx).await.expect("session");
        match session.notify(event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(e
                .plugin_error()
                .cloned()
                .unwrap_or_else(|| PluginError::Fatal(e.to_string()))),
        }
    }

    async fn folder_source(&self, id: &str, images: &[(String, Vec<u8>)]) {
        let folder = self.dir.path().join(id);
        for (name, bytes) in images {
            let path = folder.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write image");
        }
        let mut config = BTreeMap::new();
        config.insert("folder".to_string(), folder.display().to_string());
        self.host
            .create_integration(
                IntegrationSpec {
                    id: id.into(),
                    plugin: "local-folder".into(),
                    config,
                    grant: OperatorGrant {
                        mounts: vec!["/input".into()],
                        ..OperatorGrant::default()
                    },
                    ..IntegrationSpec::default()
                },
                "operator:test",
            )
            .await
            .expect("local-folder integration");
    }

    fn audit(&self) -> Vec<proofpix_store::AuditEntry> {
        self.host.store().audit_entries(0, 10_000).expect("audit")
    }
}

fn alert(i: usize) -> FileAlert {
    FileAlert {
        integration: "sp-library".into(),
        file: RemoteFile {
            id: format!("01ABC{i:04}"),
            name: format!("site-photo-{i}.jpg"),
            mime_type: Some("image/jpeg".into()),
            size: Some(2048),
            modified: None,
            version: "1".into(),
            container: Some("Field reports".into()),
            web_url: Some(format!(
                "https://contoso.sharepoint.com/sites/field/Shared%20Documents/site-photo-{i}.jpg"
            )),
            path: Some("Field reports/2026".into()),
            properties: vec![],
        },
        risk: if i.is_multiple_of(3) {
            RiskLevel::Critical
        } else {
            RiskLevel::High
        },
        score: 91,
        summary: "GPS 52.37,4.89; serial SN-4000****".into(),
        findings: vec![
            Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::High,
                source: "exif:GPS/0x0002".into(),
                value: "52.37281, 4.89361".into(),
            },
            Finding {
                category: "serial".into(),
                code: "serial.body".into(),
                severity: RiskLevel::Medium,
                source: "exif:ExifIFD/0xa431".into(),
                value: "SN-4000****".into(),
            },
        ],
    }
}

fn batch() -> BatchSummary {
    BatchSummary {
        batch_id: "b-42".into(),
        integration: "sp-library".into(),
        platform: "SharePoint Online".into(),
        started_at: "2026-11-26T10:00:00Z".into(),
        finished_at: "2026-11-26T10:03:00Z".into(),
        files_total: 20,
        files_ok: 19,
        files_failed: 1,
        by_risk: vec![(RiskLevel::High, 3), (RiskLevel::Low, 16)],
        dashboard_url: Some("https://proofpix.example/batches/b-42".into()),
    }
}

fn facts(card: &serde_json::Value) -> Vec<(String, String)> {
    card["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "FactSet")
        .flat_map(|b| b["facts"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["title"].as_str().unwrap_or_default().to_string(),
                f["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
mod cards {
    //! What each webhook receives.
    use super::*;

    #[tokio::test]
    async fn a_workflows_webhook_gets_an_adaptive_card_for_every_kind_of_notification() {
        let env = env().await;
        env.workflow("teams").await;
        let events = [
            Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(3)])),
            Notification::HighRiskFiles(proofpix_integration_tests::digest(
                (0..75).map(alert).collect(),
            )),
            Notification::BatchCompleted(batch()),
            Notification::BatchFailed(Problem {
                integration: "sp-library".into(),
                message: "Graph answered 403 accessDenied; grant Sites.Selected".into(),
            }),
        ];
        for e in &events {
            env.notify("teams", e).await.unwrap();
        }
        let posted = env.teams.posted();
        assert_eq!(posted.len(), 4);
        for p in &posted {
            assert_eq!(p.hook, Hook::Workflow);
            assert_eq!(p.kind, CardKind::AdaptiveEnvelope);
            assert!(p.rendered);
            assert_eq!(p.adaptive_card().unwrap()["version"], "1.2");
        }
        let alert_card = posted[0].adaptive_card().unwrap();
        assert_eq!(
            alert_card["body"][0]["text"],
            "Critical-risk image found: site-photo-3.jpg"
        );
        assert_eq!(alert_card["body"][0]["color"], "Attention");
        assert_eq!(
            facts(alert_card),
            [
                ("File".to_string(), "site-photo-3.jpg".to_string()),
                ("Risk".into(), "Critical (91/100)".into()),
                ("Integration".into(), "sp-library".into()),
                ("Location".into(), "Field reports/2026".into()),
            ]
        );
        assert_eq!(
            alert_card["body"][3]["text"],
            "**Findings**\n\n- **GPS location** (high): 52.37281, 4.89361\n\n- **Serial number** (medium): SN-4000\\*\\*\\*\\*"
        );
        assert_eq!(alert_card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(alert_card["actions"][0]["title"], "Open file");

        let digest = posted[1].adaptive_card().unwrap();
        assert_eq!(digest["body"][0]["text"], "75 high-risk images found");
        assert!(posted[1].all_text().contains("…and 55 more."));
        assert!(posted[1].body.to_string().len() < 28_000);

        let summary = posted[2].adaptive_card().unwrap();
        assert_eq!(
            summary["body"][0]["text"],
            "Scan finished with 1 failed: sp-library"
        );
        assert!(facts(summary).contains(&(
            "By risk".into(),
            "Critical 0 · High 3 · Medium 0 · Low 16 · None 0".into()
        )));
        assert_eq!(
            summary["actions"][0]["url"],
            "https://proofpix.example/batches/b-42"
        );
        assert!(posted[3].all_text().contains("grant Sites.Selected"));
    }

    #[tokio::test]
    async fn the_power_platform_form_of_a_workflow_url_works_too() {
        let env = env().await;
        env.teams_integration(
            "teams",
            env.teams.power_platform_url().as_str(),
            "workflows",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        env.notify("teams", &Notification::BatchCompleted(batch()))
            .await
            .unwrap();
        assert_eq!(env.teams.posted()[0].hook, Hook::PowerPlatform);
    }

    #[tokio::test]
    async fn a_legacy_connector_gets_a_message_card() {
        let env = env().await;
        env.teams_integration(
            "teams",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        env.notify(
            "teams",
            &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(1)])),
        )
        .await
        .unwrap();
        let posted = env.teams.posted();
        assert_eq!(posted.len(), 1);
        let card = &posted[0].body;
        assert_eq!(posted[0].hook, Hook::Legacy);
        assert_eq!(posted[0].kind, CardKind::MessageCard);
        assert_eq!(card["@context"], "https://schema.org/extensions");
        assert_eq!(
            card["summary"],
            "High-risk image: site-photo-1.jpg (score 91/100) in sp-library"
        );
        assert_eq!(card["themeColor"], "D13438");
        assert_eq!(card["sections"][0]["facts"][1]["value"], "High (91/100)");
        assert_eq!(
            card["potentialAction"][0]["targets"][0]["uri"],
            "https://contoso.sharepoint.com/sites/field/Shared%20Documents/site-photo-1.jpg"
        );
    }

    /// The second workflow ends with a Teams message on batch completion: the host
    /// routes a source's run to the subscribed Teams integration.
    #[tokio::test]
    async fn a_runs_completion_is_routed_to_the_subscribed_teams_channel() {
        let env = env().await;
        env.folder_source(
            "photos",
            &proofpix_fixtures::photo_set(3).collect::<Vec<_>>(),
        )
        .await;
        env.teams_integration(
            "teams",
            env.teams.workflow_url().as_str(),
            "workflows",
            loopback_grant(),
            Some(Subscriptions {
                sources: vec!["photos".into()],
                events: vec!["batch-completed".into()],
                ..Subscriptions::default()
            }),
        )
        .await
        .unwrap();
        let report = env
            .host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(report.files.len(), 3);
        let posted = env.teams.posted();
        assert_eq!(posted.len(), 1);
        let card = posted[0].adaptive_card().unwrap();
        assert_eq!(card["body"][0]["text"], "Scan finished: photos");
        assert!(facts(card).contains(&("Files".into(), "3".into())));
        assert!(facts(card).contains(&("High-risk".into(), "3".into())));
        assert!(
            env.audit()
                .iter()
                .any(|e| e.action == "notify.sent" && e.target == "teams")
        );
        // A notifier's status is that of its last delivery, not "new" for ever.
        let record = env.host.integration("teams").unwrap();
        assert_eq!(
            record.status,
            proofpix_store::IntegrationStatus::Healthy,
            "{record:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
mod errors {
    //! Throttling, bad URLs, odd answers.
    use super::*;

    #[tokio::test]
    async fn the_legacy_connectors_429_in_an_http_200_body_is_rate_limiting() {
        let env = env().await;
        env.teams_integration(
            "teams",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        let event = Notification::BatchCompleted(batch());
        // The documented window: four posts a second; the fifth is refused in the body.
        for _ in 0..4 {
            env.notify("teams", &event).await.unwrap();
        }
        let err = env.notify("teams", &event).await.unwrap_err();
        let PluginError::RateLimited(r) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            r.message,
            "Teams is throttling this webhook (HTTP 200, 429 reported in the body); ProofPix waits and retries (a connector accepts about 4 posts a second and 100 an hour)"
        );
        env.teams.clock().advance(time::Duration::seconds(1));
        env.notify("teams", &event).await.unwrap();
        assert_eq!(env.teams.posted().len(), 5);
    }

    #[tokio::test]
    async fn the_host_waits_out_throttling_and_delivers() {
        let env = env().await;
        env.folder_source(
            "photos",
            &proofpix_fixtures::photo_set(1).collect::<Vec<_>>(),
        )
        .await;
        env.teams_integration(
            "teams",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            Some(Subscriptions {
                events: vec!["batch-completed".into()],
                ..Subscriptions::default()
            }),
        )
        .await
        .unwrap();
        env.teams
            .faults()
            .once(teams::fixtures::LEGACY_PATH, teams::legacy_throttled());
        env.host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(env.teams.posted().len(), 1);
        let sent: Vec<_> = env
            .audit()
            .into_iter()
            .filter(|e| e.action == "notify.sent")
            .collect();
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].details.contains("\"attempts\":2"),
            "{}",
            sent[0].details
        );
    }

    #[tokio::test]
    async fn a_workflows_429_is_rate_limiting_with_its_retry_after() {
        let env = env().await;
        env.workflow("teams").await;
        env.teams
            .faults()
            .once(&env.teams.workflow_path(), teams::workflow_throttled(3));
        let err = env
            .notify("teams", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::RateLimited(r) if r.retry_after_ms == Some(3000)),
            "{err:?}"
        );
        // The emulator's own per-minute limit behaves the same.
        let env = env_with(TeamsConfig {
            workflow_limit: Some(1),
            ..TeamsConfig::default()
        })
        .await;
        env.workflow("teams").await;
        let event = Notification::BatchCompleted(batch());
        env.notify("teams", &event).await.unwrap();
        assert!(matches!(
            env.notify("teams", &event).await,
            Err(PluginError::RateLimited(_))
        ));
    }

    #[tokio::test]
    async fn a_wrong_or_dead_webhook_url_says_to_copy_it_again() {
        let env = env().await;
        let good = env.teams.workflow_url();
        let mut bad_sig = good.clone();
        bad_sig.set_query(Some(
            &good
                .query()
                .unwrap()
                .replace(teams::fixtures::WORKFLOW_SIG, "tampered"),
        ));
        let mut no_version = good.clone();
        no_version.set_query(Some(
            &good.query().unwrap().replace("api-version=2016-06-01&", ""),
        ));
        let gone = env.teams.url(&format!(
            "/workflows/0000dead/triggers/manual/paths/invoke?{}",
            good.query().unwrap()
        ));
        let legacy_gone = env
            .teams
            .url("/webhookb2/deleted@tenant/IncomingWebhook/x/y");
        let cases = [
            (
                "bad-sig",
                bad_sig.to_string(),
                "workflows",
                "invalid config field `webhook_url`: Teams refused the webhook's signature (HTTP 401, DirectApiAuthorizationRequired); the workflow URL is incomplete or was regenerated: copy it again from Teams and set it with `proofpix integration set-secret bad-sig webhook_url`",
            ),
            (
                "no-version",
                no_version.to_string(),
                "workflows",
                "invalid config field `webhook_url`: the webhook URL lacks its api-version parameter (MissingApiVersionParameter); copy the whole HTTP POST URL from the workflow's trigger again",
            ),
            (
                "gone",
                gone.to_string(),
                "workflows",
                "invalid config field `webhook_url`: the Teams workflow behind this webhook no longer exists (HTTP 404); it was deleted or turned off: create a new one and set `webhook_url`",
            ),
            (
                "legacy-gone",
                legacy_gone.to_string(),
                "connector",
                "invalid config field `webhook_url`: the Teams connector behind this webhook no longer exists (HTTP 404)",
            ),
        ];
        for (id, url, format, expected) in cases {
            env.teams_integration(id, &url, format, loopback_grant(), None)
                .await
                .unwrap();
            let err = env
                .notify(id, &Notification::BatchCompleted(batch()))
                .await
                .unwrap_err();
            let text = proofpix_runtime::describe_plugin_error(&err);
            assert!(text.starts_with(expected), "{id}: {text}");
        }
        assert!(env.teams.posted().is_empty());
    }

    #[tokio::test]
    async fn a_card_over_the_size_limit_is_sent_again_compact() {
        let env = env_with(TeamsConfig {
            max_payload_bytes: 1500,
            ..TeamsConfig::default()
        })
        .await;
        env.teams_integration(
            "teams",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        env.notify(
            "teams",
            &Notification::HighRiskFiles(proofpix_integration_tests::digest(
                (0..40).map(alert).collect(),
            )),
        )
        .await
        .unwrap();
        let posted = env.teams.posted();
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0].body["title"], "40 high-risk images found");
        assert_eq!(env.teams.log().count(teams::fixtures::LEGACY_PATH), 2);
    }

    #[tokio::test]
    async fn odd_answers_are_reported_and_server_errors_retried() {
        let env = env().await;
        env.teams_integration(
            "legacy",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        env.workflow("workflow").await;
        let event = Notification::BatchCompleted(batch());
        // A 200 that is not "1" from a connector: the card may not have been posted; retrying
        // could post it twice, so it is reported instead.
        env.teams.faults().once(
            teams::fixtures::LEGACY_PATH,
            Fault::Respond(ErrorReply::text(
                200,
                "<html><body>Bad gateway</body></html>",
            )),
        );
        let err = env.notify("legacy", &event).await.unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("the card may not have been posted")),
            "{err:?}"
        );
        env.teams
            .faults()
            .once(&env.teams.workflow_path(), Fault::status(502));
        assert!(matches!(
            env.notify("workflow", &event).await,
            Err(PluginError::Transient(_))
        ));
        env.teams.faults().once(
            &env.teams.workflow_path(),
            Fault::Respond(ErrorReply::empty(503).with_header("retry-after", "2")),
        );
        assert!(matches!(
            env.notify("workflow", &event).await,
            Err(PluginError::RateLimited(r)) if r.retry_after_ms == Some(2000)
        ));
    }
}

// ---------------------------------------------------------------------------------------------
mod secrecy {
    //! The webhook URL never leaves the vault except towards the webhook itself.
    use super::*;

    #[tokio::test]
    async fn the_webhook_url_never_appears_in_logs_errors_or_the_audit_trail() {
        let env = env().await;
        let url = env.teams.workflow_url().to_string();
        let secrets = [
            url.clone(),
            teams::fixtures::WORKFLOW_SIG.to_string(),
            "tampered-sig-ZZ9".to_string(),
        ];
        let mut bad = env.teams.workflow_url();
        bad.set_query(Some(
            &bad.query()
                .unwrap()
                .replace(teams::fixtures::WORKFLOW_SIG, "tampered-sig-ZZ9"),
        ));
        env.folder_source(
            "photos",
            &proofpix_fixtures::photo_set(2).collect::<Vec<_>>(),
        )
        .await;
        // Delivered, refused, throttled, and not granted at all.
        env.teams_integration("ok", &url, "workflows", loopback_grant(), None)
            .await
            .unwrap();
        env.teams_integration("refused", bad.as_str(), "workflows", loopback_grant(), None)
            .await
            .unwrap();
        env.teams_integration(
            "ungranted",
            &url,
            "workflows",
            OperatorGrant::default(),
            None,
        )
        .await
        .unwrap();
        env.teams
            .faults()
            .once(&env.teams.workflow_path(), teams::workflow_throttled(0));
        env.host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();

        let mut errors = Vec::new();
        for id in ["ok", "refused", "ungranted"] {
            if let Err(e) = env
                .notify(
                    id,
                    &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                        1,
                    )])),
                )
                .await
            {
                errors.push(proofpix_runtime::describe_plugin_error(&e));
            }
            let report = env.host.test(id).await;
            errors.extend(report.steps.into_iter().map(|s| s.detail));
        }
        assert!(
            errors.iter().any(|e| e.contains("{secret.webhook_url}")),
            "the refusal names the placeholder: {errors:?}"
        );
        assert!(env.teams.posted().len() >= 2, "deliveries happened");
        let audit: Vec<String> = env
            .audit()
            .into_iter()
            .map(|e| format!("{} {} {} {}", e.action, e.target, e.outcome, e.details))
            .collect();
        assert!(audit.iter().any(|a| a.starts_with("notify.failed refused")));
        // The failed notifier shows as failing, with a reason that holds no secret either.
        let refused = env.host.integration("refused").unwrap();
        assert_eq!(refused.status, proofpix_store::IntegrationStatus::Failing);
        let reason = refused.last_error.clone().unwrap_or_default();
        assert!(!reason.is_empty());
        errors.push(reason);
        let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        assert!(!logs.is_empty());
        for secret in &secrets {
            for (what, text) in [
                ("logs", logs.as_str()),
                ("errors", &errors.join("\n")),
                ("audit", &audit.join("\n")),
            ] {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} contain the webhook secret {secret:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
mod bench {
    //! Figures for BENCHMARKS.md; run with
    //! `cargo test --release -p proofpix-integration-tests --test teams -- --ignored --nocapture bench`.
    //! Method as in `slack.rs`: the same POSTs replayed natively give the share of a notify call
    //! spent beyond the HTTP exchange (plugin work plus the WASM boundary).
    use super::*;
    use std::time::Instant;

    const N: usize = 300;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn bench_teams_notifications() {
        let env = env_inner(TeamsConfig {
            legacy_windows: vec![],
            ..TeamsConfig::default()
        })
        .await;
        env.workflow("workflow").await;
        env.teams_integration(
            "legacy",
            env.teams.legacy_url().as_str(),
            "connector",
            loopback_grant(),
            None,
        )
        .await
        .unwrap();
        println!(
            "| webhook | notification | plugin notify/s | requests/notification | native POST/s | plugin+boundary share |"
        );
        println!("|---|---|---|---|---|---|");
        let client = reqwest::Client::new();
        for (id, path) in [
            ("workflow", env.teams.workflow_path()),
            ("legacy", teams::fixtures::LEGACY_PATH.to_string()),
        ] {
            let (plugin, ctx) = env.host.context(id, true).await.unwrap();
            let mut session = plugin.session(&ctx).await.unwrap();
            for (name, event) in [
                (
                    "high-risk file",
                    Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(1)])),
                ),
                (
                    "digest of 50",
                    Notification::HighRiskFiles(proofpix_integration_tests::digest(
                        (0..50).map(alert).collect(),
                    )),
                ),
                ("batch completed", Notification::BatchCompleted(batch())),
            ] {
                for _ in 0..20 {
                    session.notify(&event).await.unwrap();
                }
                let before = env.teams.log().count(&path);
                let started = Instant::now();
                for _ in 0..N {
                    session.notify(&event).await.unwrap();
                }
                let wasm = started.elapsed();
                let recorded: Vec<_> = env
                    .teams
                    .log()
                    .to_path(&path)
                    .into_iter()
                    .skip(before)
                    .collect();
                let started = Instant::now();
                for r in &recorded {
                    let url = format!("{}?{}", env.teams.url(&r.path), r.query);
                    let resp = client
                        .post(url.trim_end_matches('?'))
                        .header("content-type", "application/json")
                        .body(r.body.clone())
                        .send()
                        .await
                        .unwrap();
                    let _ = resp.bytes().await.unwrap();
                }
                let native = started.elapsed();
                println!(
                    "| {id} | {name} | {:.0} | {:.2} | {:.0} | {:.0}% |",
                    N as f64 / wasm.as_secs_f64(),
                    recorded.len() as f64 / N as f64,
                    recorded.len() as f64 / native.as_secs_f64(),
                    100.0 * (1.0 - native.as_secs_f64() / wasm.as_secs_f64())
                );
            }
        }
    }
}
