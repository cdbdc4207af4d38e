//! The daemon as a process, for the tests that start `proofpix serve`: a "platform" (a
//! small HTTP server in the test process that lists generated photos, serves them after a
//! delay, and counts every write-back per file), the daemon itself, and its API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Write-backs received, per file id.
pub type Counts = Arc<Mutex<BTreeMap<String, u32>>>;

pub struct Platform {
    pub base: String,
    pub counts: Counts,
    /// The most file listings that were in progress at once.
    pub max_listings: Arc<AtomicUsize>,
}

pub async fn platform(files: usize, delay: Duration) -> Platform {
    let counts: Counts = Arc::default();
    let max_listings = Arc::new(AtomicUsize::new(0));
    #[derive(Clone)]
    struct S {
        counts: Counts,
        files: usize,
        delay: Duration,
        listings: Arc<AtomicUsize>,
        max_listings: Arc<AtomicUsize>,
    }
    let app = Router::new()
        .route(
            "/files",
            get(|State(s): State<S>| async move {
                // A listing takes as long as a download, so two at once would be seen.
                let now = s.listings.fetch_add(1, Ordering::SeqCst) + 1;
                s.max_listings.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(s.delay).await;
                s.listings.fetch_sub(1, Ordering::SeqCst);
                axum::Json((0..s.files).map(|i| json!({"id": format!("f{i:03}"), "name": format!("f{i:03}.jpg"), "etag": "v1"})).collect::<Vec<_>>())
            }),
        )
        .route(
            "/files/{id}/content",
            get(|State(s): State<S>, Path(id): Path<String>| async move {
                tokio::time::sleep(s.delay).await;
                let seed = id.trim_start_matches('f').parse::<u32>().unwrap_or(0);
                let gps = proofpix_fixtures::Gps { lat: 10.0 + f64::from(seed) / 100.0, lon: 20.0, alt: None };
                proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
                    width: 16,
                    height: 16,
                    seed,
                    exif: Some(proofpix_fixtures::phone_photo(seed, gps)),
                    ..Default::default()
                })
            }),
        )
        .route(
            "/writeback",
            post(|State(s): State<S>, axum::Json(body): axum::Json<Value>| async move {
                let mut c = s.counts.lock().unwrap();
                for id in body["ids"].as_array().into_iter().flatten() {
                    *c.entry(id.as_str().unwrap_or_default().to_string()).or_default() += 1;
                }
                "ok"
            }),
        )
        .with_state(S {
            counts: counts.clone(),
            files,
            delay,
            listings: Arc::default(),
            max_listings: max_listings.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Platform {
        base,
        counts,
        max_listings,
    }
}

pub struct Daemon {
    pub child: Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `proofpix serve`; returns it and the bootstrap token when printed.
pub fn start(home: &std::path::Path) -> (Daemon, Option<String>) {
    start_with(home, &[])
}

/// [`start`] with more environment (a cluster's database, key and lease period).
pub fn start_with(home: &std::path::Path, env: &[(&str, String)]) -> (Daemon, Option<String>) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_proofpix"));
    command
        .arg("serve")
        .env("PROOFPIX_HOME", home)
        .env("PROOFPIX_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROOFPIX_CONCURRENCY", "2")
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    // The daemon's log, kept beside its data for a failing test to show.
    std::fs::create_dir_all(home).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("serve.log"))
        .unwrap();
    let mut child = command.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut token = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("ppx_")) {
            token = Some(t.to_string());
        }
        if line.starts_with("ProofPix is serving") {
            break;
        }
    }
    (
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
        },
        token,
    )
}

/// A daemon left running by a failing test is killed with it.
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the daemon with SIGKILL and waits for it.
pub fn kill9(d: &mut Daemon) {
    // Child::kill sends SIGKILL on Unix.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
}

/// Calls the daemon's API; the answer's JSON (`null` when it has none).
pub fn api(
    client: &reqwest::blocking::Client,
    d: &Daemon,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = client
        .request(method.parse().unwrap(), format!("{}{path}", d.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    resp.json().unwrap_or(Value::Null)
}

/// Installs the (unsigned) test plugin with the development flag.
pub fn drop_plugin(home: &std::path::Path) {
    drop_plugin_with(home, &[]);
}

/// [`drop_plugin`] with more environment.
pub fn drop_plugin_with(home: &std::path::Path, env: &[(&str, String)]) {
    install_plugin_with(home, env, proofpix_plugin_artifacts::TEST_WELL_BEHAVED);
}

/// Installs the plugin file at `path` (unsigned, with the development flag, every permission
/// granted) with `proofpix plugin install`.
pub fn install_plugin_with(home: &std::path::Path, env: &[(&str, String)], path: &str) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_proofpix"));
    command
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command
        .args([
            "plugin",
            "install",
            "--allow-unsigned",
            "--grant",
            "all",
            path,
        ])
        .env("PROOFPIX_HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
