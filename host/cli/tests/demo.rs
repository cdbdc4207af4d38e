//! `proofpix demo` as a new user runs it: the built binary is started on a free port, the URL
//! and the token are read off its output, and everything else is checked the way the user (or
//! the dashboard) sees it, through the REST API, plus the Slack emulator's own Web API for the
//! message the daemon posted.
//!
//! - `the_demo_syncs_every_platform_and_alerts_slack`: four integrations, three first syncs that
//!   finish with files analysed, high-risk findings, results written back, a Slack digest in
//!   `#compliance`, a Teams card in the audit trail; SIGTERM ends it cleanly and removes its
//!   temporary data.
//! - `a_kept_data_dir_survives_and_the_next_demo_prints_a_new_token`.
//!
//! Waits are bounded polls with generous deadlines (a debug build compiles every plugin on
//! first start), never fixed sleeps that a result depends on.

#![cfg(feature = "demo")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Start-up (plugins compiled in a debug build) and first syncs.
const DEADLINE: Duration = Duration::from_secs(300);
/// Sources the demo sets up.
const SOURCES: [&str; 3] = ["salesforce-cases", "sharepoint-fieldwork", "slack"];

struct Demo {
    child: Child,
    base: String,
    token: String,
    /// The Slack Web API base (`http://127.0.0.1:PORT/api`).
    slack_api: String,
    /// The data directory the demo printed.
    data: PathBuf,
    stdout: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed assertion must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(home: &Path, extra: &[&str]) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(["demo", "--port", "0"])
        .args(extra)
        .env("PROOFPIX_HOME", home)
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start proofpix demo");
    let stdout = child.stdout.take().expect("stdout");
    // The reader keeps draining after start-up so a late line never meets a closed pipe.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // The test stopped listening; keep draining.
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with("Ctrl-C stops the demo");
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(e) => panic!(
                "the demo did not finish starting ({e}); it printed:\n{}",
                lines.join("\n")
            ),
        }
    }
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", lines.join("\n")))
    };
    let base = field("Dashboard").trim_end_matches('/').to_string();
    let token = field("Token");
    let slack_api = field("slack");
    let data = PathBuf::from(field("Data:"));
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(token.starts_with("ppx_"), "{token}");
    Demo {
        child,
        base,
        token,
        slack_api,
        data,
        stdout: lines,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

impl Demo {
    fn get(&self, c: &reqwest::blocking::Client, path: &str) -> Value {
        let resp = c
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().expect("JSON")
    }

    /// Polls `cond` on the integrations list until it holds.
    fn wait_for(&self, c: &reqwest::blocking::Client, what: &str, cond: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let list = self.get(c, "/api/integrations");
            if cond(&list) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; integrations: {list:#}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn integration<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no integration {id} in {list:#}"))
}

/// A source's first run is over: a finished batch, nothing running or queued.
fn synced(list: &Value, id: &str) -> bool {
    let i = integration(list, id);
    i["last_batch"]["finished_at"].is_string() && i["syncing"] == false && i["queue_pending"] == 0
}

#[test]
fn the_demo_syncs_every_platform_and_alerts_slack() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut demo = start(home.path(), &[]);
    let c = client();

    let list = demo.get(&c, "/api/integrations");
    let mut ids: Vec<(String, String)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or("").to_string(),
                i["plugin"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("salesforce-cases", "salesforce"),
            ("sharepoint-fieldwork", "sharepoint"),
            ("slack", "slack"),
            ("teams", "teams"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(
        integration(&list, "slack")["secrets_set"]
            .as_array()
            .is_some_and(|s| s.iter().any(|f| f == "bot_token")),
        "the Slack token is set (and not shown): {list:#}"
    );

    demo.wait_for(&c, "the first sync of every source", |list| {
        SOURCES.iter().all(|id| synced(list, id))
    });
    let list = demo.get(&c, "/api/integrations");
    for id in SOURCES {
        let i = integration(&list, id);
        let batch = &i["last_batch"];
        assert!(
            batch["ok"].as_u64().unwrap_or(0) > 0,
            "{id} analysed files: {batch:#}"
        );
        assert_eq!(batch["errors"], 0, "{id} had no failures: {batch:#}");
        assert_eq!(i["status"], "healthy", "{id}: {i:#}");
        // Write-back is observable per file: the plugin confirmed it.
        let files = demo.get(&c, &format!("/api/integrations/{id}/files?limit=1000"));
        let written = files
            .as_array()
            .expect("files")
            .iter()
            .filter(|f| f["status"] == "written")
            .count();
        assert!(
            written > 0,
            "{id} wrote results back to the platform: {files:#}"
        );
    }

    let stats = demo.get(&c, "/api/stats");
    let risky = ["high", "critical"]
        .iter()
        .map(|r| stats["by_risk"][r].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(risky >= 1, "high-risk findings: {stats:#}");
    assert!(
        stats["files_processed"].as_u64().unwrap_or(0) >= 10,
        "{stats:#}"
    );

    // The high-risk digest in Slack #compliance, read through Slack's own Web API.
    let deadline = Instant::now() + DEADLINE;
    let messages = loop {
        let history: Value = c
            .get(format!("{}/conversations.history", demo.slack_api))
            .query(&[("channel", proofpix_emulators::slack::web::seed::COMPLIANCE)])
            .bearer_auth(proofpix_emulators::slack::fixtures::BOT_TOKEN)
            .send()
            .and_then(|r| r.json())
            .expect("conversations.history");
        assert_eq!(history["ok"], true, "{history:#}");
        let messages = history["messages"].as_array().cloned().unwrap_or_default();
        if !messages.is_empty() {
            break messages;
        }
        assert!(
            Instant::now() < deadline,
            "no message in #compliance: {history:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let text = serde_json::to_string(&messages).unwrap_or_default();
    assert!(
        text.contains("high") || text.contains("High"),
        "the message is about high-risk files: {text}"
    );

    // Teams got a card per finished run: the delivery is in the audit trail. The daemon's
    // notify stage delivers after the runs end (runs wake it, they do not deliver), so wait.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let audit = demo.get(&c, "/api/audit?limit=1000");
        let to_teams = audit
            .as_array()
            .expect("audit")
            .iter()
            .filter(|e| e["action"] == "notify.sent" && e["target"] == "teams")
            .count();
        if to_teams >= SOURCES.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a Teams card per finished run: {audit:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let data = demo.data.clone();
    assert!(data.is_dir(), "{}", demo.stdout.join("\n"));
    let status = demo.terminate();
    assert!(status.success(), "the demo exits cleanly: {status}");
    assert!(
        !data.exists(),
        "the temporary data directory {} is removed on exit",
        data.display()
    );
}

#[test]
fn a_kept_data_dir_survives_and_the_next_demo_prints_a_new_token() {
    let home = tempfile::tempdir().expect("temp dir");
    let kept = home.path().join("demo-data");
    let dir = kept.to_str().expect("UTF-8 path");
    let c = client();

    let mut first = start(home.path(), &["--data-dir", dir]);
    assert_eq!(first.data, kept);
    first.wait_for(&c, "the first sync of every source", |list| {
        SOURCES.iter().all(|id| synced(list, id))
    });
    let first_token = first.token.clone();
    assert!(first.terminate().success());
    drop(first);
    assert!(
        kept.join(proofpix_store::STORE_FILE_NAME).is_file(),
        "the store is kept"
    );

    let mut second = start(home.path(), &["--data-dir", dir]);
    assert_ne!(second.token, first_token, "a new admin token is printed");
    let list = second.get(&c, "/api/integrations");
    assert_eq!(list.as_array().map(Vec::len), Some(4), "{list:#}");
    // The first demo's results are still there.
    let stats = second.get(&c, "/api/stats");
    assert!(
        stats["files_processed"].as_u64().unwrap_or(0) > 0,
        "{stats:#}"
    );
    assert!(second.terminate().success());
    assert!(kept.is_dir());
}
