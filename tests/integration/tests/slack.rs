//! The Slack connector against the Slack emulator, through the host library.
//!
//! - `notifier`: Block Kit messages per notification kind, Slack's `ok:false`-with-HTTP-200
//!   errors turned into messages that say what to fix, 429 `Retry-After` honoured, and
//!   notifications routed by `Host::sync` subscriptions from a local-folder source.
//! - `source`: images shared in channels discovered page by page, downloaded through the host
//!   with the bot token, marked with reactions or thread replies, incrementally by message `ts`.
//! - `events`: Events API requests verified through the host (signature, replay window,
//!   `url_verification`), turned into queued files, and delivered over HTTP by the emulator's
//!   Slack-like sender.
//! - `secrecy`: the bot token and signing secret appear in no log line, error or audit entry.
//! - `bench`: figures for BENCHMARKS.md (`--ignored`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofpix_emulators::slack::{self, Slack, web};
use proofpix_emulators::{Fault, Harness};
use proofpix_integration_tests::{logs, loopback_grant};
use proofpix_model::{
    BatchSummary, FileAlert, Finding, InboundRequest, Notification, PluginError, RemoteFile,
    RiskLevel,
};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_service::{Host, HostOptions, IntegrationSpec, ServiceError, Subscriptions};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};

// ---------------------------------------------------------------------------------------------
// Setup shared by every module.
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    slack: Slack,
    dir: tempfile::TempDir,
}

async fn env_with(workspace: web::WorkspaceConfig) -> Env {
    logs();
    env_inner(workspace).await
}

/// An environment without the log capture (benchmarks: trace-level capture costs time).
async fn env_inner(workspace: web::WorkspaceConfig) -> Env {
    env_concurrent(workspace, 2).await
}

/// [`env_inner`] with `concurrency` files fetched and analysed at once.
async fn env_concurrent(workspace: web::WorkspaceConfig, concurrency: usize) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store");
    let options = HostOptions {
        pipeline: PipelineOptions {
            concurrency,
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
    let slack = slack::start_workspace(Default::default(), workspace, Harness::default())
        .await
        .expect("slack emulator");
    Env { host, slack, dir }
}

async fn env() -> Env {
    env_with(web::WorkspaceConfig::default()).await
}

impl Env {
    /// A Slack integration with the fixture bot token and the emulator's hosts.
    async fn slack_integration(
        &self,
        id: &str,
        config: &[(&str, &str)],
        token: &str,
        subscriptions: Option<Subscriptions>,
    ) -> Result<(), ServiceError> {
        let mut cfg: BTreeMap<String, String> = config
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        cfg.insert("api_base_url".into(), self.slack.api_base());
        cfg.insert(
            "files_base_url".into(),
            self.slack
                .files_base()
                .as_str()
                .trim_end_matches('/')
                .into(),
        );
        let mut secrets = BTreeMap::new();
        secrets.insert("bot_token".to_string(), Secret::new(token));
        secrets.insert(
            "signing_secret".to_string(),
            Secret::new(slack::fixtures::SIGNING_SECRET),
        );
        self.host
            .create_integration(
                IntegrationSpec {
                    id: id.into(),
                    plugin: "slack".into(),
                    config: cfg,
                    secrets,
                    grant: loopback_grant(),
                    subscriptions,
                    schedule: None,
                },
                "operator:test",
            )
            .await
            .map(|_| ())
    }

    /// A local-folder integration over `images` written to a fresh folder.
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

    /// Calls `notify` on an integration's plugin directly.
    async fn notify(&self, id: &str, event: &Notification) -> Result<(), PluginError> {
        let (plugin, ctx) = self.host.context(id, true).await.expect("context");
        let mut session = plugin.session(&ctx).await.expect("session");
        match session.notify(event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(e.plugin_error().cloned().unwrap_or_else(|| {
                panic!("notify failed outside the plugin: {e}");
            })),
        }
    }

    fn posted(&self) -> Vec<web::PostedMessage> {
        self.slack.workspace().posted()
    }

    fn audit(&self, action: &str) -> Vec<proofpix_store::AuditEntry> {
        self.host
            .store()
            .audit_entries(0, 10_000)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action == action)
            .collect()
    }
}

fn file(id: &str, name: &str) -> RemoteFile {
    RemoteFile {
        id: id.into(),
        name: name.into(),
        mime_type: Some("image/jpeg".into()),
        size: Some(1234),
        modified: None,
        version: "1".into(),
        container: Some("Case 00001026".into()),
        web_url: Some(format!("https://example.my.salesforce.com/{id}")),
        path: Some("Cases/00001026".into()),
        properties: vec![],
    }
}

fn alert(i: usize, risk: RiskLevel) -> FileAlert {
    FileAlert {
        integration: "sf-cases".into(),
        file: file(&format!("068{i:012}"), &format!("site-photo-{i}.jpg")),
        risk,
        score: 88,
        summary: "GPS 52.37,4.89 (±10 m); owner J*** D**".into(),
        findings: vec![
            Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::High,
                source: "exif:GPS/0x0002".into(),
                value: "52.37281, 4.89361".into(),
            },
            Finding {
                category: "owner".into(),
                code: "owner.name".into(),
                severity: RiskLevel::Medium,
                source: "exif:ExifIFD/0xa430".into(),
                value: "J*** D**".into(),
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
        batch_id: "b-7".into(),
        integration: "sp-library".into(),
        platform: "SharePoint".into(),
        started_at: "2026-11-26T10:00:00Z".into(),
        finished_at: "2026-11-26T10:02:00Z".into(),
        files_total: 12,
        files_ok: 12,
        files_failed: 0,
        by_risk: vec![
            (RiskLevel::Critical, 1),
            (RiskLevel::High, 4),
            (RiskLevel::None, 7),
        ],
        dashboard_url: Some("https://proofpix.example/batches/b-7".into()),
    }
}

/// Phone photos with GPS, owner and serial: high or critical risk.
fn risky_photos(n: u32) -> Vec<(String, Vec<u8>)> {
    proofpix_fixtures::photo_set(n).collect()
}

/// A JPEG without metadata: no risk.
fn clean_photo(seed: u32) -> Vec<u8> {
    proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 32,
        height: 24,
        seed,
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
mod notifier {
    //! `notify`: message shapes, errors, rate limits, routing.
    use super::*;

    #[tokio::test]
    async fn a_high_risk_file_is_one_block_kit_message_with_its_findings_worst_first() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.notify(
            "alerts",
            &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                1,
                RiskLevel::Critical,
            )])),
        )
        .await
        .unwrap();

        let posted = env.posted();
        assert_eq!(posted.len(), 1);
        let m = &posted[0];
        assert_eq!(m.channel, web::seed::COMPLIANCE);
        let blocks = m.block_list();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":red_circle: Critical-risk image found"
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "*<https://example.my.salesforce.com/068000000000001|site-photo-1.jpg>*\nGPS 52.37,4.89 (±10 m); owner J*** D**"
        );
        let fields: Vec<&str> = blocks[1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["text"].as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "*Risk*\n:red_circle: Critical · 88/100",
                "*Integration*\nsf-cases",
                "*Location*\nCases/00001026",
                "*Type*\nimage/jpeg"
            ]
        );
        assert_eq!(
            blocks[2]["text"]["text"],
            "*Findings*\n• *GPS location* (high): 52.37281, 4.89361 — _exif:GPS/0x0002_\n• *Camera owner* (medium): J*** D** — _exif:ExifIFD/0xa430_\n• *Serial number* (medium): SN-4000**** — _exif:ExifIFD/0xa431_"
        );
        assert_eq!(blocks[3]["type"], "context");
        assert_eq!(
            m.text.as_deref(),
            Some("Critical-risk image: site-photo-1.jpg (score 88/100) in sf-cases")
        );
        assert_eq!(m.args["unfurl_links"], false);

        // The host injected the bot token; the JSON body says its charset.
        let req = &env.slack.log().to_path(web::POST_MESSAGE_PATH)[0];
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {}", slack::fixtures::BOT_TOKEN).as_str())
        );
        assert_eq!(
            req.header("content-type"),
            Some("application/json; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn a_digest_of_many_alerts_is_one_message_that_slack_accepts() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", web::seed::COMPLIANCE)],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        let alerts: Vec<FileAlert> = (0..120)
            .map(|i| {
                alert(
                    i,
                    if i % 4 == 0 {
                        RiskLevel::Critical
                    } else {
                        RiskLevel::High
                    },
                )
            })
            .collect();
        env.notify(
            "alerts",
            &Notification::HighRiskFiles(proofpix_integration_tests::digest(alerts)),
        )
        .await
        .unwrap();
        let posted = env.posted();
        assert_eq!(posted.len(), 1, "one message for the whole digest");
        let blocks = posted[0].block_list();
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks[0]["text"]["text"],
            ":rotating_light: 120 high-risk images found"
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            ":red_circle: 30 critical · :large_orange_circle: 90 high\nFrom *sf-cases*"
        );
        assert!(
            posted[0]
                .block_text()
                .contains("…and 100 more high-risk images")
        );
        assert_eq!(
            posted[0].text.as_deref(),
            Some("ProofPix found 120 high-risk images (30 critical, 90 high)")
        );
    }

    #[tokio::test]
    async fn batch_completion_counts_files_by_risk_and_links_the_dashboard() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", "compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.notify("alerts", &Notification::BatchCompleted(batch()))
            .await
            .unwrap();
        let m = &env.posted()[0];
        let blocks = m.block_list();
        assert_eq!(
            blocks[0]["text"]["text"],
            ":white_check_mark: Scan finished: sp-library"
        );
        let text = m.block_text();
        assert!(text.contains("*Files*\n12"), "{text}");
        assert!(text.contains("*High-risk*\n5"), "{text}");
        assert!(
            text.contains(":red_circle: Critical *1*   :large_orange_circle: High *4*   :large_yellow_circle: Medium *0*   :large_green_circle: Low *0*   :white_circle: None *7*"),
            "{text}"
        );
        assert!(text.contains(
            "<https://proofpix.example/batches/b-7|Open this batch in the ProofPix dashboard>"
        ));
        assert_eq!(
            m.text.as_deref(),
            Some("Scan finished: sp-library: 12 files, 5 high-risk, 0 failed")
        );
    }

    /// Every `ok:false` code a misconfigured integration meets becomes an error that names the
    /// fix; the first row is the message operators see most, asserted exactly.
    #[tokio::test]
    async fn every_ok_false_error_says_what_to_fix() {
        let env = env().await;
        let ws = env.slack.workspace();
        let limited = env.slack.tokens().issue_access(
            "xoxb-4471830284-limited-9f8e7d".into(),
            "workspace-install",
            "U0KRQLJ9H",
            "channels:read,files:read",
            None,
        );
        let revoked = env.slack.tokens().issue_access(
            "xoxb-4471830284-revoked-1a2b3c".into(),
            "workspace-install",
            "U0KRQLJ9H",
            web::DEFAULT_BOT_SCOPES,
            None,
        );
        env.slack.tokens().revoke_access(&revoked);
        let _ = ws;
        let cases: Vec<(&str, &str, String, &str)> = vec![
            (
                "not-in-channel",
                "#random",
                slack::fixtures::BOT_TOKEN.into(),
                "invalid config field `channel`: the bot is not in #random (not_in_channel); invite it with /invite @proofpix in #random",
            ),
            (
                "no-such-channel",
                "#complaince",
                slack::fixtures::BOT_TOKEN.into(),
                "invalid config field `channel`: Slack cannot find #complaince (channel_not_found); check `channel`: use the channel ID",
            ),
            (
                "archived",
                "old-projects",
                slack::fixtures::BOT_TOKEN.into(),
                "invalid config field `channel`: #old-projects is archived (is_archived); unarchive it or set `channel` to another channel",
            ),
            (
                "missing-scope",
                "#compliance",
                limited,
                "invalid config: the Slack app lacks the chat:write scope that chat.postMessage needs (missing_scope; the token has: channels:read,files:read); add it under OAuth & Permissions",
            ),
            (
                "revoked",
                "#compliance",
                revoked,
                "unauthorized: Slack rejected the bot token (token_revoked); set a current Bot User OAuth Token (xoxb-…) with `proofpix integration set-secret revoked bot_token`",
            ),
            (
                "bogus-token",
                "#compliance",
                "xoxb-not-a-token".into(),
                "unauthorized: Slack rejected the bot token (invalid_auth)",
            ),
        ];
        for (id, channel, token, expected) in cases {
            env.slack_integration(id, &[("channel", channel)], &token, None)
                .await
                .unwrap();
            let err = env
                .notify(id, &Notification::BatchCompleted(batch()))
                .await
                .expect_err(id);
            let text = proofpix_runtime::describe_plugin_error(&err);
            assert!(text.starts_with(expected), "{id}: {text}");
        }
        assert!(env.posted().is_empty());

        // Errors Slack sends with HTTP 200 on any route, injected.
        env.slack_integration(
            "faults",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        type Check = fn(&PluginError) -> bool;
        let injected: [(&str, Check); 4] = [
            ("ratelimited", |e| matches!(e, PluginError::RateLimited(_))),
            ("fatal_error", |e| matches!(e, PluginError::Transient(_))),
            (
                "restricted_action",
                |e| matches!(e, PluginError::InvalidConfig(c) if c.message.contains("ask a Slack admin")),
            ),
            (
                "team_access_not_granted",
                |e| matches!(e, PluginError::Fatal(m) if m.contains("ask them to grant it access")),
            ),
        ];
        for (code, check) in injected {
            env.slack
                .faults()
                .once(web::POST_MESSAGE_PATH, web::error_fault(code));
            let err = env
                .notify("faults", &Notification::BatchCompleted(batch()))
                .await
                .expect_err(code);
            assert!(check(&err), "{code}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_429_is_rate_limiting_with_its_retry_after() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.slack
            .faults()
            .once(web::POST_MESSAGE_PATH, web::ratelimited(7));
        let err = env
            .notify("alerts", &Notification::BatchCompleted(batch()))
            .await
            .unwrap_err();
        let PluginError::RateLimited(r) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(r.retry_after_ms, Some(7000));
        assert_eq!(
            r.message,
            "Slack is rate-limiting chat.postMessage (HTTP 429, Retry-After 7 s); ProofPix waits and retries"
        );
    }

    #[tokio::test]
    async fn a_channel_over_its_posting_rate_is_throttled_by_the_emulator() {
        let env = env_with(web::WorkspaceConfig {
            post_rate: Some(web::PostRate {
                per_channel_per_second: 1,
                retry_after_secs: 1,
            }),
            ..Default::default()
        })
        .await;
        env.slack_integration(
            "alerts",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        let event = Notification::BatchCompleted(batch());
        env.notify("alerts", &event).await.unwrap();
        assert!(matches!(
            env.notify("alerts", &event).await,
            Err(PluginError::RateLimited(_))
        ));
        env.slack.clock().advance(time::Duration::seconds(1));
        env.notify("alerts", &event).await.unwrap();
        assert_eq!(env.posted().len(), 2);
    }

    #[tokio::test]
    async fn a_message_slack_refuses_as_malformed_is_sent_again_compact() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.slack
            .faults()
            .once(web::POST_MESSAGE_PATH, web::error_fault("invalid_blocks"));
        env.notify(
            "alerts",
            &Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                3,
                RiskLevel::High,
            )])),
        )
        .await
        .unwrap();
        let posted = env.posted();
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0].block_list().len(), 2);
        assert_eq!(env.slack.log().count(web::POST_MESSAGE_PATH), 2);
    }

    #[tokio::test]
    async fn a_truncated_or_non_json_answer_is_a_temporary_failure() {
        let env = env().await;
        env.slack_integration(
            "alerts",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        for body in ["{\"ok\":tr", "<html>502 Bad Gateway</html>"] {
            env.slack.faults().once(
                web::POST_MESSAGE_PATH,
                Fault::Respond(proofpix_emulators::ErrorReply::text(200, body)),
            );
            let err = env
                .notify("alerts", &Notification::BatchCompleted(batch()))
                .await
                .unwrap_err();
            assert!(matches!(err, PluginError::Transient(_)), "{body}: {err:?}");
        }
    }

    /// The issue's routing: a source's run notifies every subscribed notifier, one message per
    /// high-risk file, or one digest, plus one batch summary; a notifier subscribed elsewhere
    /// hears nothing. A 429 on the way is waited out (Retry-After 1 s) and retried.
    #[tokio::test]
    async fn notifications_are_routed_by_subscriptions_and_429s_are_waited_out() {
        let env = env().await;
        let mut images = risky_photos(3);
        images.push(("clean.jpg".into(), clean_photo(5)));
        env.folder_source("photos", &images).await;
        env.slack_integration(
            "per-file",
            &[("channel", "#compliance")],
            slack::fixtures::BOT_TOKEN,
            Some(Subscriptions {
                sources: vec!["photos".into()],
                events: vec!["high-risk".into(), "batch-completed".into()],
                dashboard_url: Some("https://proofpix.example".into()),
                ..Subscriptions::default()
            }),
        )
        .await
        .unwrap();
        env.slack_integration(
            "digest",
            &[("channel", "#general")],
            slack::fixtures::BOT_TOKEN,
            Some(Subscriptions {
                sources: vec!["photos".into()],
                events: vec!["high-risk".into()],
                digest: true,
                ..Subscriptions::default()
            }),
        )
        .await
        .unwrap();
        env.slack_integration(
            "elsewhere",
            &[("channel", "#field-photos")],
            slack::fixtures::BOT_TOKEN,
            Some(Subscriptions {
                sources: vec!["another-source".into()],
                ..Subscriptions::default()
            }),
        )
        .await
        .unwrap();
        env.slack
            .faults()
            .once(web::POST_MESSAGE_PATH, web::ratelimited(1));

        let started = Instant::now();
        let report = env
            .host
            .sync("photos", SyncMode::Incremental)
            .await
            .unwrap();
        let risky = report
            .files
            .iter()
            .filter(|f| {
                f.report
                    .as_ref()
                    .is_some_and(|r| r.risk >= proofpix_analysis::RiskLevel::High)
            })
            .count();
        assert_eq!(risky, 3, "the three phone photos are high-risk");

        let posted = env.posted();
        let in_channel = |c: &str| posted.iter().filter(|m| m.channel == c).count();
        assert_eq!(
            in_channel(web::seed::COMPLIANCE),
            4,
            "three alerts and a summary"
        );
        assert_eq!(in_channel(web::seed::GENERAL), 1, "one digest");
        assert_eq!(in_channel(web::seed::FIELD_PHOTOS), 0);
        let digest = posted
            .iter()
            .find(|m| m.channel == web::seed::GENERAL)
            .unwrap();
        assert_eq!(
            digest.block_list()[0]["text"]["text"],
            ":rotating_light: 3 high-risk images found"
        );
        let summary = posted
            .iter()
            .rfind(|m| m.channel == web::seed::COMPLIANCE)
            .unwrap();
        assert!(summary.block_text().contains("*Files*\n4"));
        assert!(
            summary
                .block_text()
                .contains("|Open this batch in the ProofPix dashboard>")
        );
        // The 429 was waited out: one delivery took two attempts, after at least Retry-After.
        assert_eq!(env.slack.log().count(web::POST_MESSAGE_PATH), 6);
        assert!(started.elapsed() >= Duration::from_secs(1));
        let sent = env.audit("notify.sent");
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().any(|e| e.details.contains("\"attempts\":2")));
    }

    #[tokio::test]
    async fn a_scan_only_integration_without_a_channel_posts_nothing() {
        let env = env().await;
        env.slack_integration(
            "scan-only",
            &[("channels", "#field-photos")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.notify("scan-only", &Notification::BatchCompleted(batch()))
            .await
            .unwrap();
        assert!(env.posted().is_empty());
    }

    #[tokio::test]
    async fn an_integration_with_neither_channel_nor_channels_is_refused() {
        let env = env().await;
        let err = env
            .slack_integration("nothing", &[], slack::fixtures::BOT_TOKEN, None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "set `channel` to post notifications, `channels` to scan channels, or both"
            ),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
mod source {
    //! Channels as a source: discovery, downloads through the host, write-back, check.
    use super::*;

    fn scan_config(write_back: &str) -> Vec<(&'static str, String)> {
        vec![
            ("channels", format!("#field-photos, {}", web::seed::PRIVATE)),
            ("write_back", write_back.to_string()),
        ]
    }

    async fn scanner(env: &Env, id: &str, write_back: &str) {
        let cfg = scan_config(write_back);
        let cfg: Vec<(&str, &str)> = cfg.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.slack_integration(id, &cfg, slack::fixtures::BOT_TOKEN, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn shared_images_are_found_downloaded_with_the_token_and_marked_with_reactions() {
        let env = env().await;
        let ws = env.slack.workspace();
        let photos = risky_photos(3);
        let (ts1, _) = ws.share_image(web::seed::FIELD_PHOTOS, "site-1.jpg", photos[0].1.clone());
        ws.say(web::seed::FIELD_PHOTOS, "look at these");
        let (ts2, ids2) = ws.share(
            web::seed::FIELD_PHOTOS,
            &[
                ("site-2.jpg", "image/jpeg", photos[1].1.clone()),
                ("notes.pdf", "application/pdf", b"%PDF-1.7".to_vec()),
            ],
        );
        let (ts3, _) = ws.share_image(web::seed::PRIVATE, "incident.jpg", photos[2].1.clone());
        let (ts4, _) = ws.share_image(web::seed::FIELD_PHOTOS, "clean.jpg", clean_photo(9));
        // A channel that is not configured is not scanned.
        ws.share_image(web::seed::GENERAL, "other.jpg", clean_photo(1));
        scanner(&env, "channels", "reaction").await;

        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        let mut names: Vec<&str> = report.files.iter().map(|f| f.file.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["clean.jpg", "incident.jpg", "site-1.jpg", "site-2.jpg"]
        );
        assert!(
            report
                .files
                .iter()
                .all(|f| f.error.is_none() && f.written_back),
            "{:?}",
            report.files
        );
        let site2 = report
            .files
            .iter()
            .find(|f| f.file.name == "site-2.jpg")
            .unwrap();
        assert_eq!(site2.file.id, ids2[0]);
        assert_eq!(site2.file.path.as_deref(), Some("#field-photos"));
        assert!(site2.report.as_ref().unwrap().risk >= proofpix_analysis::RiskLevel::High);

        let mut reactions: Vec<(String, String)> =
            ws.reactions().into_iter().map(|r| (r.ts, r.name)).collect();
        reactions.sort();
        let mut expected = vec![
            (ts1, "rotating_light".to_string()),
            (ts2, "rotating_light".to_string()),
            (ts3, "rotating_light".to_string()),
            (ts4, "white_check_mark".to_string()),
        ];
        expected.sort();
        assert_eq!(reactions, expected);

        // Downloads went to the private-file host with the bot token, as Range reads.
        let downloads: Vec<_> = env
            .slack
            .log()
            .all()
            .into_iter()
            .filter(|r| r.path.starts_with("/files-pri/"))
            .collect();
        assert_eq!(downloads.len(), 4);
        for d in &downloads {
            assert_eq!(
                d.header("authorization"),
                Some(format!("Bearer {}", slack::fixtures::BOT_TOKEN).as_str())
            );
            assert!(d.header("range").is_some_and(|r| r.starts_with("bytes=0-")));
        }
        assert!(env.posted().is_empty(), "reactions notify nobody");
    }

    #[tokio::test]
    async fn a_second_run_asks_only_for_messages_newer_than_the_last_one_seen() {
        let env = env().await;
        let ws = env.slack.workspace();
        let photos = risky_photos(3);
        let (ts1, _) = ws.share_image(web::seed::FIELD_PHOTOS, "a.jpg", photos[0].1.clone());
        scanner(&env, "channels", "reaction").await;
        assert_eq!(
            env.host
                .sync("channels", SyncMode::Incremental)
                .await
                .unwrap()
                .files
                .len(),
            1
        );
        ws.share_image(web::seed::FIELD_PHOTOS, "b.jpg", photos[1].1.clone());
        ws.say(web::seed::FIELD_PHOTOS, "no files here");
        env.slack.log().clear();
        let second = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(
            second
                .files
                .iter()
                .map(|f| f.file.name.as_str())
                .collect::<Vec<_>>(),
            ["b.jpg"]
        );
        let history = env.slack.log().to_path(web::HISTORY_PATH);
        let field = history
            .iter()
            .find(|r| {
                r.query_params().get("channel").map(String::as_str) == Some(web::seed::FIELD_PHOTOS)
            })
            .unwrap();
        assert_eq!(field.query_params().get("oldest"), Some(&ts1));
        // Nothing new: nothing analysed, nothing downloaded.
        env.slack.log().clear();
        let third = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert!(third.files.is_empty());
        assert_eq!(
            env.slack
                .log()
                .all()
                .iter()
                .filter(|r| r.path.starts_with("/files-pri/"))
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn long_histories_are_paged_and_an_expired_cursor_restarts_the_channel() {
        let env = env().await;
        let ws = env.slack.workspace();
        let photos = risky_photos(5);
        for (i, (name, bytes)) in photos.iter().enumerate() {
            ws.share_image(
                web::seed::FIELD_PHOTOS,
                &format!("p{i}-{}", name.replace('/', "-")),
                bytes.clone(),
            );
            for j in 0..100 {
                ws.say(web::seed::FIELD_PHOTOS, &format!("chatter {i}.{j}"));
            }
        }
        ws.invalidate_next_cursor();
        scanner(&env, "channels", "off").await;
        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(report.files.len(), 5, "every image exactly once");
        // 505 messages at 200 a page: 3 pages, plus one cursor refused and a restart, plus the
        // private channel.
        let history = env.slack.log().to_path(web::HISTORY_PATH);
        assert_eq!(history.len(), 3 + 1 + 1 + 1, "{history:?}");
        assert!(
            history
                .iter()
                .any(|r| r.query_params().contains_key("cursor"))
        );
    }

    #[tokio::test]
    async fn withheld_files_are_looked_up_and_hidden_ones_skipped() {
        let env = env().await;
        let ws = env.slack.workspace();
        let photos = risky_photos(2);
        let (_, a) = ws.share_image(web::seed::FIELD_PHOTOS, "withheld.jpg", photos[0].1.clone());
        let (_, b) = ws.share_image(web::seed::FIELD_PHOTOS, "hidden.jpg", photos[1].1.clone());
        ws.update_file(&a, |f| f.withheld = true);
        ws.update_file(&b, |f| f.hidden_by_limit = true);
        scanner(&env, "channels", "off").await;
        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert_eq!(
            report
                .files
                .iter()
                .map(|f| f.file.name.as_str())
                .collect::<Vec<_>>(),
            ["withheld.jpg"]
        );
        assert!(report.files[0].report.is_some());
        let info = env.slack.log().to_path(web::FILES_INFO_PATH);
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].query_params().get("file"), Some(&a));
    }

    /// Slack's file host answers a token without `files:read` with its sign-in page: HTTP 200,
    /// `text/html`. That page is never analysed as the image (it would be recorded as a file
    /// with no findings, a silent false negative): the file is retried, then parked with a
    /// reason that says what to fix, with no result, no risk and no reaction.
    #[tokio::test]
    async fn a_sign_in_page_instead_of_the_file_is_parked_with_the_reason_never_analysed() {
        let env = env_with(web::WorkspaceConfig {
            bot_scopes: web::DEFAULT_BOT_SCOPES
                .split(',')
                .filter(|s| *s != "files:read")
                .collect::<Vec<_>>()
                .join(","),
            ..Default::default()
        })
        .await;
        let ws = env.slack.workspace();
        let photos = risky_photos(1);
        let (_, id) = ws.share_image(web::seed::FIELD_PHOTOS, "site.jpg", photos[0].1.clone());
        scanner(&env, "channels", "reaction").await;

        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert!(
            report.files.iter().all(|f| f.report.is_none()),
            "a sign-in page was analysed as the image: {:?}",
            report.files
        );
        // The page was really served: the host followed the file host's redirect to it.
        assert!(
            env.slack
                .log()
                .all()
                .iter()
                .any(|r| r.path.starts_with("/files-pri/")),
            "the download was tried"
        );
        let record = env
            .host
            .store()
            .file("channels", &id)
            .expect("store")
            .expect("the file is known");
        assert_eq!(
            record.last_result, None,
            "no result, so no risk: {record:?}"
        );
        let reason = record.last_error.clone().unwrap_or_default();
        assert!(
            reason.contains("sign-in page") && reason.contains("file-read permission"),
            "{reason}"
        );
        assert!(
            report.parked + report.still_queued >= 1,
            "parked or queued for a retry, never done: {report:?}"
        );
        assert!(ws.reactions().is_empty(), "nothing written back");
    }

    #[tokio::test]
    async fn a_private_url_on_the_api_host_redirects_to_the_file_host_with_the_token() {
        let env = env_with(web::WorkspaceConfig {
            files_via_redirect: true,
            ..Default::default()
        })
        .await;
        let ws = env.slack.workspace();
        let photo = risky_photos(1).remove(0).1;
        let (_, id) = ws.share_image(web::seed::FIELD_PHOTOS, "via-redirect.jpg", photo.clone());
        scanner(&env, "channels", "off").await;
        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert!(
            report.files[0].report.as_ref().unwrap().risk >= proofpix_analysis::RiskLevel::High
        );
        let hops: Vec<_> = env
            .slack
            .log()
            .all()
            .into_iter()
            .filter(|r| r.path.contains(&id))
            .collect();
        assert!(hops.len() >= 2, "the API host's 302, then the file host");
        assert!(hops.iter().all(|h| h.header("authorization").is_some()));
        assert_eq!(ws.bytes_served(), report.files[0].bytes_fetched);
    }

    #[tokio::test]
    async fn thread_replies_are_written_once_even_when_a_batch_is_retried() {
        let env = env().await;
        let ws = env.slack.workspace();
        for (i, (_, bytes)) in risky_photos(3).into_iter().enumerate() {
            ws.share_image(web::seed::FIELD_PHOTOS, &format!("t{i}.jpg"), bytes);
        }
        scanner(&env, "channels", "thread").await;
        // The second reply of the batch is rate limited: the host retries the whole batch.
        env.slack.faults().clear();
        env.slack
            .faults()
            .once(web::POST_MESSAGE_PATH, Fault::Delay(Duration::ZERO));
        env.slack
            .faults()
            .once(web::POST_MESSAGE_PATH, web::ratelimited(0));
        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        assert!(
            report.files.iter().all(|f| f.written_back),
            "{:?}",
            report.files
        );
        let posted = env.posted();
        assert_eq!(posted.len(), 3, "one reply per file, none twice");
        for m in &posted {
            assert!(m.thread_ts.is_some());
            assert!(
                m.block_text().contains("*ProofPix:* "),
                "{}",
                m.block_text()
            );
        }
        assert!(report.retries >= 1);
    }

    /// Faults on every route the source uses: a 503 on a history page, a 429 on one download,
    /// a 500 on a reaction, and a message gone by the time its file is marked. Every file is
    /// still analysed exactly once; the lost message costs only its own write-back.
    #[tokio::test]
    async fn under_faults_every_file_is_processed_once_and_a_lost_message_fails_alone() {
        let env = env().await;
        let ws = env.slack.workspace();
        let mut shared = Vec::new();
        for (i, (_, bytes)) in risky_photos(4).into_iter().enumerate() {
            shared.push(ws.share_image(web::seed::FIELD_PHOTOS, &format!("f{i}.jpg"), bytes));
        }
        scanner(&env, "channels", "reaction").await;
        let faults = env.slack.faults();
        faults.once(web::HISTORY_PATH, Fault::status(503));
        let (_, second) = &shared[1];
        faults.once(
            &format!(
                "/files-pri/{}-{second}/download/f1.jpg",
                slack::fixtures::TEAM_ID
            ),
            Fault::Respond(
                proofpix_emulators::ErrorReply::empty(429).with_header("retry-after", "0"),
            ),
        );
        faults.once(web::REACTIONS_ADD_PATH, Fault::status(500));
        // The retried batch then finds one message gone.
        faults.once(
            web::REACTIONS_ADD_PATH,
            web::error_fault("message_not_found"),
        );

        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        let mut ids: Vec<&str> = report.files.iter().map(|f| f.file.id.as_str()).collect();
        ids.sort_unstable();
        let mut expected: Vec<&str> = shared.iter().map(|(_, id)| id.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected, "each file once");
        assert!(report.files.iter().all(|f| f.report.is_some()));
        assert!(report.retries >= 2, "{}", report.retries);
        let lost: Vec<_> = report.files.iter().filter(|f| !f.written_back).collect();
        assert_eq!(lost.len(), 1);
        assert!(
            lost[0]
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("the message that shared this file was deleted (message_not_found)"),
            "{:?}",
            lost[0].error
        );
        assert_eq!(ws.reactions().len(), 3);
    }

    #[tokio::test]
    async fn the_connection_test_names_the_bot_and_the_channel_to_invite_it_to() {
        let env = env().await;
        env.slack_integration(
            "good",
            &[("channel", "#compliance"), ("channels", "#field-photos")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        let report = env.host.test("good").await;
        assert!(report.ok(), "{report:?}");
        let connection = report
            .steps
            .iter()
            .find(|s| s.name == "connection")
            .unwrap();
        assert!(
            connection
                .detail
                .starts_with("connected as @proofpix in ProofPix Emulated;"),
            "{}",
            connection.detail
        );

        env.slack_integration(
            "bad",
            &[("channel", "#compliance"), ("channels", "#random")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        let report = env.host.test("bad").await;
        let connection = report
            .steps
            .iter()
            .find(|s| s.name == "connection")
            .unwrap();
        assert!(!connection.ok);
        assert!(
            connection
                .detail
                .contains("the bot is not in #random (not_in_channel); invite it with /invite @proofpix in #random"),
            "{}",
            connection.detail
        );
    }

    /// A static token cannot be checked by the host alone: the credentials step says so rather
    /// than "accepted", and a wrong token fails the connection step with one sentence that names
    /// the secret field and the command that replaces it.
    #[tokio::test]
    async fn a_wrong_bot_token_fails_the_test_naming_the_field_to_replace() {
        let env = env().await;
        env.slack_integration(
            "wrong",
            &[("channel", "#compliance"), ("channels", "#field-photos")],
            "xoxb-0000-not-a-real-token",
            None,
        )
        .await
        .unwrap();
        let report = env.host.test("wrong").await;
        assert!(!report.ok(), "{report:?}");
        let step = |name: &str| {
            report
                .steps
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name} step: {report:?}"))
                .clone()
        };
        let credentials = step("credentials");
        assert!(
            !credentials.detail.contains("accepted")
                && credentials.detail.contains("only the platform can say"),
            "{}",
            credentials.detail
        );
        let connection = step("connection");
        assert!(!connection.ok);
        assert!(
            connection.detail.contains(
                "the platform rejected the API key in the secret field 'bot_token'; replace it with `proofpix integration set-secret wrong bot_token=-`"
            ),
            "{}",
            connection.detail
        );
        assert!(
            !connection.detail.contains("xoxb-0000"),
            "the token is never quoted: {}",
            connection.detail
        );
    }

    #[tokio::test]
    async fn the_file_host_sends_a_sign_in_page_to_a_request_without_the_token() {
        let env = env().await;
        let ws = env.slack.workspace();
        let (_, id) = ws.share_image(web::seed::FIELD_PHOTOS, "x.jpg", clean_photo(2));
        let url = ws.file_object(&id).unwrap()["url_private"]
            .as_str()
            .unwrap()
            .to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Sign in"));
        let r = client
            .get(&url)
            .bearer_auth(slack::fixtures::BOT_TOKEN)
            .header("range", "bytes=0-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &[0xFF, 0xD8]);
    }
}

// ---------------------------------------------------------------------------------------------
mod events {
    //! Events API: verification through the host, changes queued, HTTP delivery.
    use super::*;

    fn inbound(req: &slack::events::SignedRequest) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        }
    }

    async fn events_env() -> Env {
        let env = env().await;
        env.slack_integration(
            "channels",
            &[("channels", "#field-photos")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env
    }

    /// The emulator's clock is frozen at the real time it started; the host checks the window
    /// against its own clock, so the two agree within a test's run time.
    fn unauthorized_message(
        r: Result<(proofpix_model::InboundResponse, usize, bool), ServiceError>,
    ) -> String {
        match r {
            Err(ServiceError::Call(e)) => match e.plugin_error() {
                Some(PluginError::Unauthorized(m)) => m.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{:?}", other.map(|(r, q, s)| (r.status, q, s))),
        }
    }

    #[tokio::test]
    async fn the_url_verification_challenge_is_echoed_as_plain_text() {
        let env = events_env().await;
        let req = env
            .slack
            .event_sender()
            .url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
        let (response, queued, resync) = env
            .host
            .handle_webhook("channels", inbound(&req))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.body,
            b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        );
        assert!(
            response
                .headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "text/plain")
        );
        assert_eq!((queued, resync), (0, false));
    }

    #[tokio::test]
    async fn a_signed_file_shared_event_queues_the_file_for_the_next_run() {
        let env = events_env().await;
        let ws = env.slack.workspace();
        let (_, id) = ws.share_image(
            web::seed::FIELD_PHOTOS,
            "fresh.jpg",
            risky_photos(1).remove(0).1,
        );
        let sender = env.slack.event_sender();
        let req = sender.event_callback(ws.file_shared_event(&id).unwrap());
        let (response, queued, resync) = env
            .host
            .handle_webhook("channels", inbound(&req))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!((queued, resync), (1, false));
        let report = env
            .host
            .sync("channels", SyncMode::QueueOnly)
            .await
            .unwrap();
        assert_eq!(
            report
                .files
                .iter()
                .map(|f| f.file.name.as_str())
                .collect::<Vec<_>>(),
            ["fresh.jpg"]
        );
        assert!(report.files[0].written_back);
        assert_eq!(ws.reactions().len(), 1);

        // A `message` event that shares files queues them too.
        let (ts, _) = ws.share_image(web::seed::FIELD_PHOTOS, "second.jpg", clean_photo(4));
        let req = sender.event_callback(ws.message_event(web::seed::FIELD_PHOTOS, &ts).unwrap());
        let (_, queued, _) = env
            .host
            .handle_webhook("channels", inbound(&req))
            .await
            .unwrap();
        assert_eq!(queued, 1);
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused() {
        let env = events_env().await;
        let sender = env.slack.event_sender();
        let good = sender.url_verification("abc");
        let forged = good
            .clone()
            .with_body(br#"{"type":"url_verification","challenge":"evil"}"#);
        let msg = unauthorized_message(env.host.handle_webhook("channels", inbound(&forged)).await);
        assert_eq!(
            msg,
            "the request's X-Slack-Signature does not match; check that `signing_secret` is this Slack app's Signing Secret (Basic Information → App Credentials)"
        );
        let other_secret =
            slack::events::EventSender::new("not-the-secret", env.slack.clock().clone())
                .url_verification("abc");
        unauthorized_message(
            env.host
                .handle_webhook("channels", inbound(&other_secret))
                .await,
        );
        let unsigned = good.with_header("x-slack-signature", "");
        let msg = unauthorized_message(
            env.host
                .handle_webhook("channels", inbound(&unsigned))
                .await,
        );
        assert!(msg.contains("no v0 X-Slack-Signature"), "{msg}");
    }

    #[tokio::test]
    async fn a_request_signed_more_than_five_minutes_ago_is_a_replay() {
        let env = events_env().await;
        let sender = env.slack.event_sender();
        let stale_ts = env.slack.clock().unix_seconds() - 6 * 60;
        let body = br#"{"type":"url_verification","challenge":"abc"}"#;
        let stale = sender.signed_at(stale_ts, body);
        let msg = unauthorized_message(env.host.handle_webhook("channels", inbound(&stale)).await);
        assert!(msg.contains("outside Slack's 5-minute window"), "{msg}");
        // Four minutes is inside the window.
        let recent = sender.signed_at(env.slack.clock().unix_seconds() - 4 * 60, body);
        env.host
            .handle_webhook("channels", inbound(&recent))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn events_from_channels_that_are_not_scanned_are_acknowledged_and_ignored() {
        let env = events_env().await;
        let ws = env.slack.workspace();
        let (_, id) = ws.share_image(web::seed::GENERAL, "elsewhere.jpg", clean_photo(3));
        let req = env
            .slack
            .event_sender()
            .event_callback(ws.file_shared_event(&id).unwrap());
        let (response, queued, resync) = env
            .host
            .handle_webhook("channels", inbound(&req))
            .await
            .unwrap();
        assert_eq!((response.status, queued, resync), (200, 0, false));
        assert_eq!(env.slack.log().count(web::FILES_INFO_PATH), 0);
    }

    /// Slack's own delivery: a signed POST over HTTP, answered by a handler that hands the
    /// request to the host; a refused request is retried three times with `X-Slack-Retry-Num`.
    #[tokio::test]
    async fn events_delivered_over_http_are_acknowledged_and_refusals_are_retried_by_slack() {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::HeaderMap;
        use axum::response::IntoResponse;

        let env = Arc::new(events_env().await);
        async fn hook(
            State(env): State<Arc<Env>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            let request = InboundRequest {
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_vec(),
            };
            match env.host.handle_webhook("channels", request).await {
                Ok((r, _, _)) => {
                    (axum::http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response()
                }
                Err(_) => axum::http::StatusCode::UNAUTHORIZED.into_response(),
            }
        }
        let app = axum::Router::new()
            .route("/hooks/channels", axum::routing::post(hook))
            .with_state(env.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!(
            "http://{}/hooks/channels",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let sender = env.slack.event_sender();
        let delivery = sender
            .deliver(&url, &sender.url_verification("hello"))
            .await;
        assert!(delivery.acknowledged());
        assert_eq!(delivery.attempts.len(), 1);
        assert_eq!(delivery.attempts[0].body, b"hello");

        let forged = sender
            .url_verification("x")
            .with_body(b"{\"type\":\"url_verification\",\"challenge\":\"y\"}");
        let delivery = sender.deliver(&url, &forged).await;
        assert!(!delivery.acknowledged());
        assert_eq!(
            delivery
                .attempts
                .iter()
                .map(|a| (a.retry_num, a.status))
                .collect::<Vec<_>>(),
            [
                (0, Some(401)),
                (1, Some(401)),
                (2, Some(401)),
                (3, Some(401))
            ]
        );
    }
}

// ---------------------------------------------------------------------------------------------
mod secrecy {
    //! The bot token and the signing secret stay in the vault.
    use super::*;

    #[tokio::test]
    async fn the_bot_token_and_signing_secret_never_reach_logs_errors_or_the_audit_trail() {
        let env = env().await;
        let ws = env.slack.workspace();
        ws.share_image(
            web::seed::FIELD_PHOTOS,
            "a.jpg",
            risky_photos(1).remove(0).1,
        );
        env.slack_integration(
            "scanner",
            &[("channel", "#compliance"), ("channels", "#field-photos")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.slack_integration(
            "refused",
            &[("channel", "#random")],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        // A run with downloads, write-back and notifications (one refused).
        env.host
            .sync("scanner", SyncMode::Incremental)
            .await
            .unwrap();
        let mut errors = Vec::new();
        let sender = env.slack.event_sender();
        let forged = sender.url_verification("x").with_body(b"{}");
        if let Err(e) = env
            .host
            .handle_webhook("scanner", events_inbound(&forged))
            .await
        {
            errors.push(e.to_string());
        }
        for id in ["scanner", "refused"] {
            errors.extend(env.host.test(id).await.steps.into_iter().map(|s| s.detail));
        }
        assert!(
            errors.iter().any(|e| e.contains("not_in_channel")),
            "{errors:?}"
        );
        let audit: Vec<String> = env
            .audit("notify.failed")
            .into_iter()
            .chain(env.audit("notify.sent"))
            .map(|e| format!("{} {} {}", e.action, e.target, e.details))
            .collect();
        assert!(!audit.is_empty());
        let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        assert!(logs.contains("scanner"), "the capture works");
        for secret in [slack::fixtures::BOT_TOKEN, slack::fixtures::SIGNING_SECRET] {
            assert!(!logs.contains(secret), "a log line holds a secret");
            assert!(!errors.join("\n").contains(secret));
            assert!(!audit.join("\n").contains(secret));
        }
    }

    fn events_inbound(req: &slack::events::SignedRequest) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
mod bench {
    //! Figures for BENCHMARKS.md; run with
    //! `cargo test --release -p proofpix-integration-tests --test slack -- --ignored --nocapture bench`.
    //!
    //! The WASM boundary's share is measured by doing the plugin's HTTP exchanges a second time
    //! natively (the same bodies, methods and headers, with one reqwest client and its pool, as
    //! the host's per-session client) and comparing: what the plugin call costs beyond the
    //! native exchange is the plugin's own work plus the boundary (instantiation excluded; one
    //! session is reused, as the host does within a run).
    use super::*;

    const N: usize = 300;

    fn per_sec(n: usize, d: Duration) -> f64 {
        n as f64 / d.as_secs_f64()
    }

    /// Re-sends the recorded requests to `path` natively and times them.
    async fn native_replay(env: &Env, path: &str, from: usize) -> (usize, Duration) {
        let client = reqwest::Client::new();
        let reqs: Vec<_> = env
            .slack
            .log()
            .to_path(path)
            .into_iter()
            .skip(from)
            .collect();
        let started = Instant::now();
        for r in &reqs {
            let url = if r.query.is_empty() {
                env.slack.url(&r.path).to_string()
            } else {
                format!("{}?{}", env.slack.url(&r.path), r.query)
            };
            let mut b = client.request(r.method.parse().unwrap(), url);
            for h in ["authorization", "content-type"] {
                if let Some(v) = r.header(h) {
                    b = b.header(h, v);
                }
            }
            let resp = b.body(r.body.clone()).send().await.unwrap();
            let _ = resp.bytes().await.unwrap();
        }
        (reqs.len(), started.elapsed())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn bench_slack_notifications() {
        let env = env_inner(web::WorkspaceConfig::default()).await;
        env.slack_integration(
            "alerts",
            &[("channel", web::seed::COMPLIANCE)],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        let (plugin, ctx) = env.host.context("alerts", true).await.unwrap();
        let mut session = plugin.session(&ctx).await.unwrap();
        let kinds: Vec<(&str, Notification)> = vec![
            (
                "high-risk file",
                Notification::HighRiskFiles(proofpix_integration_tests::digest(vec![alert(
                    1,
                    RiskLevel::High,
                )])),
            ),
            (
                "digest of 50",
                Notification::HighRiskFiles(proofpix_integration_tests::digest(
                    (0..50).map(|i| alert(i, RiskLevel::High)).collect(),
                )),
            ),
            ("batch completed", Notification::BatchCompleted(batch())),
        ];
        println!(
            "| notification | plugin notify/s | requests/notification | native POST/s | plugin+boundary share |"
        );
        println!("|---|---|---|---|---|");
        for (name, event) in kinds {
            for _ in 0..20 {
                session.notify(&event).await.unwrap();
            }
            let before = env.slack.log().count(web::POST_MESSAGE_PATH);
            let started = Instant::now();
            for _ in 0..N {
                session.notify(&event).await.unwrap();
            }
            let wasm = started.elapsed();
            let requests = env.slack.log().count(web::POST_MESSAGE_PATH) - before;
            let (n, native) = native_replay(&env, web::POST_MESSAGE_PATH, before).await;
            assert_eq!(n, N);
            println!(
                "| {name} | {:.0} | {:.2} | {:.0} | {:.0}% |",
                per_sec(N, wasm),
                requests as f64 / N as f64,
                per_sec(n, native),
                100.0 * (1.0 - native.as_secs_f64() / wasm.as_secs_f64())
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn bench_slack_source() {
        // `BENCH_FILES` photos (default 300), `BENCH_CONCURRENCY` files in flight (default 2,
        // as the tests; the daemon's default is 16).
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
        };
        let n = var("BENCH_FILES").unwrap_or(N);
        let concurrency = var("BENCH_CONCURRENCY").unwrap_or(2);
        println!("{n} photos, {concurrency} files in flight");
        let env = env_concurrent(web::WorkspaceConfig::default(), concurrency).await;
        let ws = env.slack.workspace();
        let photos: Vec<(String, Vec<u8>)> = proofpix_fixtures::photo_set(n as u32).collect();
        let total_bytes: usize = photos.iter().map(|(_, b)| b.len()).sum();
        for (i, (_, bytes)) in photos.iter().enumerate() {
            ws.share_image(
                web::seed::FIELD_PHOTOS,
                &format!("photo-{i:04}.jpg"),
                bytes.clone(),
            );
            ws.say(web::seed::FIELD_PHOTOS, "chatter");
        }
        env.slack_integration(
            "channels",
            &[
                ("channels", web::seed::FIELD_PHOTOS),
                ("write_back", "reaction"),
            ],
            slack::fixtures::BOT_TOKEN,
            None,
        )
        .await
        .unwrap();
        env.slack.log().clear();
        let started = Instant::now();
        let report = env
            .host
            .sync("channels", SyncMode::Incremental)
            .await
            .unwrap();
        let total = started.elapsed();
        assert_eq!(report.files.len(), n);
        assert!(report.files.iter().all(|f| f.written_back));
        let requests = env.slack.log().all().len();
        println!(
            "sync: {n} files in {:.2} s = {:.0} files/s; {:.2} requests/file ({} history pages); {:.0} bytes downloaded/file of {:.0} bytes/file",
            total.as_secs_f64(),
            per_sec(n, total),
            requests as f64 / n as f64,
            env.slack.log().count(web::HISTORY_PATH),
            ws.bytes_served() as f64 / n as f64,
            total_bytes as f64 / n as f64,
        );

        // The plugin's calls alone, on one session, against their native replay.
        let (plugin, ctx) = env.host.context("channels", true).await.unwrap();
        let mut session = plugin.session(&ctx).await.unwrap();
        let h0 = env.slack.log().count(web::HISTORY_PATH);
        let started = Instant::now();
        let mut cursor: Option<String> = None;
        let mut files = Vec::new();
        loop {
            let page = session.discover(cursor.as_deref()).await.unwrap();
            files.extend(page.files);
            cursor = page.cursor;
            if !page.more {
                break;
            }
        }
        let discover = started.elapsed();
        let started = Instant::now();
        for f in &files {
            session.download(f).await.unwrap();
        }
        let download = started.elapsed();
        let results: Vec<_> = report
            .files
            .iter()
            .map(|o| {
                proofpix_pipeline::file_result(
                    &o.file,
                    o.report.as_ref().unwrap(),
                    "2026-11-26T12:00:00Z",
                )
            })
            .collect();
        let r0 = env.slack.log().count(web::REACTIONS_ADD_PATH);
        let started = Instant::now();
        for chunk in results.chunks(20) {
            session.write_back(chunk).await.unwrap();
        }
        let write_back = started.elapsed();
        let (_, native_history) = native_replay(&env, web::HISTORY_PATH, h0).await;
        let (_, native_reactions) = native_replay(&env, web::REACTIONS_ADD_PATH, r0).await;
        let plugin_total = discover + download + write_back;
        let native_total = native_history + native_reactions;
        println!(
            "plugin calls: discover {:.1} ms, download {:.1} ms ({:.1} µs/file), write-back {:.1} ms; native replay of the same HTTP: history {:.1} ms, reactions {:.1} ms",
            discover.as_secs_f64() * 1e3,
            download.as_secs_f64() * 1e3,
            download.as_secs_f64() * 1e6 / n as f64,
            write_back.as_secs_f64() * 1e3,
            native_history.as_secs_f64() * 1e3,
            native_reactions.as_secs_f64() * 1e3,
        );
        println!(
            "per file: sync {:.2} ms, plugin calls {:.3} ms, of which beyond native HTTP {:.3} ms = {:.1}% of the sync time",
            total.as_secs_f64() * 1e3 / n as f64,
            plugin_total.as_secs_f64() * 1e3 / n as f64,
            (plugin_total.saturating_sub(native_total)).as_secs_f64() * 1e3 / n as f64,
            100.0 * plugin_total.saturating_sub(native_total).as_secs_f64() / total.as_secs_f64()
        );
    }
}
