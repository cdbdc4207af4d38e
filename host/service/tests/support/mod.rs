//! What the tests of plugins written in other languages share: finding the component
//! toolchains `./test` installs, and a webhook receiver to deliver to.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A toolchain command: `$env_var`, then `local` under the repository (where `./test`
/// installs it), then `name` on `PATH`. Fails (never skips) with `install` when none is found.
pub fn tool(env_var: &str, local: &str, name: &str, install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return p.into();
    }
    let local = workspace().join(local);
    if local.exists() {
        return local;
    }
    if Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return name.into();
    }
    panic!("{name} not found; install it with {install} (what ./test does), or set {env_var}");
}

/// componentize-py, pinned by `./test`.
pub fn componentize_py() -> PathBuf {
    tool(
        "PROOFPIX_COMPONENTIZE_PY",
        "target/tools/py/bin/componentize-py",
        "componentize-py",
        "`python3 -m venv target/tools/py && target/tools/py/bin/pip install componentize-py==0.25.1`",
    )
}

/// Builds the Python example `sdk/examples/NAME` against contract 0.2, as its README says.
pub fn build_python_example(name: &str, out: &Path) -> Vec<u8> {
    let root = workspace();
    let status = Command::new(componentize_py())
        .arg("-d")
        .arg(root.join("wit/since_v0.2.0"))
        .args(["-w", "connector", "componentize", "app", "-p"])
        .arg(root.join("sdk/examples").join(name))
        .arg("-o")
        .arg(out)
        .status()
        .expect("run componentize-py");
    assert!(status.success(), "componentize-py failed: {status}");
    std::fs::read(out).expect("read the built component")
}

/// One request a receiver got: its path, headers and body.
pub type Delivery = (String, HeaderMap, Vec<u8>);

/// What a [`receiver`] got.
#[derive(Clone, Default)]
pub struct Received {
    /// Every request, in order.
    pub requests: Arc<Mutex<Vec<Delivery>>>,
}

impl Received {
    /// The JSON bodies posted to `path`.
    pub fn bodies(&self, path: &str) -> Vec<serde_json::Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

/// A receiver like a Zapier catch hook: 200 on each of `paths` (recorded), 410 on
/// `/hooks/catch/deleted/`, 429 with `Retry-After: 7` on `/hooks/catch/busy/`. Returns its
/// base URL.
pub async fn receiver(paths: &[&'static str]) -> (String, Received) {
    let received = Received::default();
    let record = |path: &'static str| {
        post(
            move |State(r): State<Received>, headers: HeaderMap, body: axum::body::Bytes| async move {
                r.requests
                    .lock()
                    .unwrap()
                    .push((path.to_string(), headers, body.to_vec()));
                (StatusCode::OK, r#"{"status":"success"}"#)
            },
        )
    };
    let mut app = Router::new();
    for path in paths {
        app = app.route(path, record(path));
    }
    let app = app
        .route(
            "/hooks/catch/deleted/",
            post(|| async { (StatusCode::GONE, "hook deleted") }),
        )
        .route(
            "/hooks/catch/busy/",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    "slow down",
                )
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

/// HMAC-SHA256 of `message` under `key`, lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}
