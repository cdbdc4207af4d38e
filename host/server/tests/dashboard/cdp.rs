//! A small Chrome DevTools Protocol client: just what the dashboard tests use.
//!
//! It starts Debian's `chromium` headless with `--remote-debugging-port=0`,
//! reads the browser's WebSocket address from its stderr, and speaks CDP over
//! one WebSocket with flattened sessions (one per page). Commands are JSON
//! `{id, method, params, sessionId}`; replies carry the same id, and events
//! (console messages, exceptions) are collected per page so a test can fail
//! on a script error or a Content-Security-Policy violation.
//!
//! Why not a CDP crate: `chromiumoxide` 0.9.1 generates the whole protocol; measured here
//! (BENCHMARKS.md, "The dashboard tests' own DevTools client"), its two crates add about
//! 3.5 minutes of one core to every cold build (`chromiumoxide_cdp` alone 165 s, on the
//! critical path) and the build peaks at 2.4 GiB, for the 16 commands and 4 events used
//! here. Classic WebDriver, which `fantoccini` speaks, has no console or exception events,
//! and the tests fail on those. A WebSocket and `serde_json` are enough.
//!
//! The browser is found as `$PROOFPIX_CHROMIUM`, else `chromium`,
//! `chromium-browser` or `google-chrome` on `PATH`. When none exists the test
//! fails (it does not skip) and says to install Debian's `chromium`.
//!
//! Chromium runs with the flags an offline root sandbox needs: no sandbox
//! (root), no GPU, and no background networking, component updates, sync or
//! QUIC (without them it keeps trying to reach Google and logs refusals).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long to wait for the browser to start and print its address.
const BROWSER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one CDP command may take. Generous: CI has two busy cores.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `wait_for` evaluates its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Lines of the browser's stderr kept for error messages.
const STDERR_LINES_KEPT: usize = 40;

type Reply = Result<Value, String>;

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    /// Problems each page reported (by CDP session id): exceptions, console
    /// errors, CSP violations.
    problems: Mutex<HashMap<String, Vec<String>>>,
    /// JavaScript dialogs (alert, confirm) a page tried to open.
    dialogs: Mutex<HashMap<String, Vec<String>>>,
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    out: mpsc::UnboundedSender<Message>,
    next_id: Arc<AtomicU64>,
    shared: Arc<Shared>,
    stderr: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

/// Finds the browser binary, or explains how to install it.
fn chromium_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PROOFPIX_CHROMIUM") {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "PROOFPIX_CHROMIUM points at {}, which does not exist",
                p.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(
        "the dashboard tests drive a real headless Chromium, and none was found \
         (looked for chromium, chromium-browser and google-chrome on PATH). \
         Install Debian's package: `apt-get install -y chromium` (./test does), \
         or set PROOFPIX_CHROMIUM to the browser's path"
            .to_string(),
    )
}

impl Browser {
    /// Starts Chromium headless and connects to it.
    ///
    /// # Panics
    /// When Chromium is not installed (with the install command) or does not
    /// start: the dashboard tests must not pass without a browser.
    pub async fn launch() -> Browser {
        let bin = chromium_path().unwrap_or_else(|e| panic!("{e}"));
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        // The address comes on stderr; keep draining it afterwards so the
        // browser never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = oneshot::channel::<String>();
        {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                let mut addr_tx = Some(addr_tx);
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(rest) = line.split("DevTools listening on ").nth(1)
                        && let Some(tx) = addr_tx.take()
                    {
                        let _ = tx.send(rest.trim().to_string());
                    }
                    if let Ok(mut k) = kept.lock() {
                        if k.len() == STDERR_LINES_KEPT {
                            k.remove(0);
                        }
                        k.push(line);
                    }
                }
            });
        }
        let ws_url = match tokio::time::timeout(BROWSER_START_TIMEOUT, addr_rx).await {
            Ok(Ok(url)) => url,
            _ => {
                let status = child.try_wait().ok().flatten();
                panic!(
                    "{} did not print its DevTools address (exit status {status:?}); its stderr:\n{}",
                    bin.display(),
                    kept.lock().map(|k| k.join("\n")).unwrap_or_default()
                );
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Chromium at {ws_url}: {e}"));
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let shared = Arc::new(Shared::default());
        {
            let shared = shared.clone();
            let dialog_out = out.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let Message::Text(text) = msg else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    dispatch(&shared, &dialog_out, v);
                }
                // The browser went away: fail whatever still waits.
                if let Ok(mut p) = shared.pending.lock() {
                    for (_, tx) in p.drain() {
                        let _ = tx.send(Err("the browser closed the connection".into()));
                    }
                }
            });
        }
        Browser {
            child,
            out,
            next_id: Arc::new(AtomicU64::new(1)),
            shared,
            stderr: kept,
            _profile: profile,
        }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .expect("pending lock")
            .insert(id, tx);
        self.out
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|_| panic!("the browser connection is closed ({method})"));
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(Ok(v))) => v,
            Ok(Ok(Err(e))) => panic!("{method} failed: {e}"),
            Ok(Err(_)) => panic!("{method}: the browser dropped the reply"),
            Err(_) => panic!(
                "{method} got no reply in {COMMAND_TIMEOUT:?}; browser stderr:\n{}",
                self.stderr.lock().map(|k| k.join("\n")).unwrap_or_default()
            ),
        }
    }

    /// Opens a new page (tab) with its own CDP session.
    pub async fn new_page(&self) -> Page<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        let page = Page {
            browser: self,
            session,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.cmd(domain, json!({})).await;
        }
        page.viewport(1280, 900, false).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Id of the commands that dismiss JavaScript dialogs; nobody waits for
/// their replies.
const DIALOG_REPLY_ID: u64 = u64::MAX / 2;

/// Routes one message from the browser: a reply to its waiter, an event to
/// the page's problem or dialog log. A JavaScript dialog is recorded and
/// dismissed at once, or the page would hang behind it.
fn dispatch(shared: &Shared, out: &mpsc::UnboundedSender<Message>, v: Value) {
    if let Some(id) = v.get("id").and_then(Value::as_u64) {
        let reply = match v.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        };
        if let Some(tx) = shared.pending.lock().ok().and_then(|mut p| p.remove(&id)) {
            let _ = tx.send(reply);
        }
        return;
    }
    let session = v
        .get("sessionId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let params = v.get("params").cloned().unwrap_or(Value::Null);
    let problem = match v.get("method").and_then(Value::as_str) {
        Some("Runtime.exceptionThrown") => Some(format!(
            "uncaught exception: {}",
            params["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or(params["exceptionDetails"]["text"].as_str())
                .unwrap_or("?")
        )),
        Some("Runtime.consoleAPICalled") if params["type"] == "error" => Some(format!(
            "console.error: {}",
            params["args"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(|x| x["value"]
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x["description"].to_string()))
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        )),
        // Failed requests (a 401 before signing in, by design) are network
        // entries; everything else at error level is a problem, CSP
        // violations ("Refused to ...", source "security") included.
        Some("Log.entryAdded")
            if params["entry"]["level"] == "error" && params["entry"]["source"] != "network" =>
        {
            Some(format!(
                "{} log: {}",
                params["entry"]["source"].as_str().unwrap_or("?"),
                params["entry"]["text"].as_str().unwrap_or("?")
            ))
        }
        Some("Page.javascriptDialogOpening") => {
            if let Ok(mut d) = shared.dialogs.lock() {
                d.entry(session.clone())
                    .or_default()
                    .push(params["message"].as_str().unwrap_or_default().to_string());
            }
            let dismiss = json!({
                "id": DIALOG_REPLY_ID,
                "sessionId": session,
                "method": "Page.handleJavaScriptDialog",
                "params": {"accept": false},
            });
            let _ = out.send(Message::text(dismiss.to_string()));
            None
        }
        _ => None,
    };
    if let Some(p) = problem
        && let Ok(mut m) = shared.problems.lock()
    {
        m.entry(session).or_default().push(p);
    }
}

/// A page (tab) under test.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl std::fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("session", &self.session)
            .finish()
    }
}

/// Quotes a string as a JavaScript literal.
pub fn js_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

impl Page<'_> {
    /// Sends a CDP command to this page.
    pub async fn cmd(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Sets the viewport size (CSS pixels); `mobile` also emulates touch
    /// and a device scale factor of 2.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cmd(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": if mobile { 2 } else { 1 },
                "mobile": mobile,
            }),
        )
        .await;
    }

    /// Emulates `prefers-color-scheme`.
    pub async fn prefers_color_scheme(&self, scheme: &str) {
        self.cmd(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Navigates and waits until the document has loaded.
    pub async fn goto(&self, url: &str) {
        let r = self.cmd("Page.navigate", json!({"url": url})).await;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            panic!("cannot open {url}: {e}");
        }
        self.wait_for(
            &format!("{url} to load"),
            "document.readyState === 'complete'",
        )
        .await;
    }

    /// Reloads the page (a new document, unlike a change of `#fragment`)
    /// and waits until the new one has loaded.
    pub async fn reload(&self) {
        self.eval("window.__beforeReload = true").await;
        self.cmd("Page.reload", json!({"ignoreCache": true})).await;
        self.wait_for(
            "the page to reload",
            "!window.__beforeReload && document.readyState === 'complete'",
        )
        .await;
    }

    /// Evaluates `expression` (promises awaited) and returns its JSON value.
    ///
    /// # Panics
    /// When the expression throws.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .cmd(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "returnByValue": true,
                    "awaitPromise": true,
                    "userGesture": true,
                }),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            panic!(
                "evaluating `{expression}` threw: {}",
                ex["exception"]["description"]
                    .as_str()
                    .or(ex["text"].as_str())
                    .unwrap_or("?")
            );
        }
        r["result"]["value"].clone()
    }

    /// Polls `condition` (a JavaScript expression) until it is truthy or
    /// `WAIT_TIMEOUT` passes; returns its last value.
    ///
    /// # Panics
    /// On time-out, naming what was awaited and saving a screenshot of the
    /// page as it was.
    pub async fn wait_for(&self, what: &str, condition: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(condition).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > WAIT_TIMEOUT {
                let shot = failure_dir().join(format!("{}.png", slug(what)));
                self.screenshot_to(&shot).await;
                let text = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                panic!(
                    "timed out waiting for {what} (`{condition}`); screenshot at {}; page text:\n{}\nproblems: {:?}",
                    shot.display(),
                    text.as_str().unwrap_or_default(),
                    self.problems()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for `selector` to match, then clicks the middle of the first
    /// visible match with real mouse events (so a hidden or covered control
    /// fails the test, as it would fail a person).
    pub async fn click(&self, selector: &str) {
        let sel = js_str(selector);
        let point = self
            .wait_for(
                &format!("a visible {selector}"),
                &format!(
                    "(() => {{ const el = [...document.querySelectorAll({sel})].find((e) => e.getClientRects().length > 0);
                       if (!el || el.disabled) return null;
                       el.scrollIntoView({{block: 'center', inline: 'center'}});
                       const r = el.getBoundingClientRect();
                       const x = r.left + r.width / 2, y = r.top + r.height / 2;
                       const hit = document.elementFromPoint(x, y);
                       return hit && (hit === el || el.contains(hit)) ? [x, y] : null; }})()"
                ),
            )
            .await;
        let (x, y) = (
            point[0].as_f64().unwrap_or(0.0),
            point[1].as_f64().unwrap_or(0.0),
        );
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.cmd(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Focuses `selector` and types `text` into it.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let sel = js_str(selector);
        self.wait_for(
            &format!("{selector} to exist"),
            &format!("!!document.querySelector({sel})"),
        )
        .await;
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); el.focus(); el.select && el.select(); }})()"
        ))
        .await;
        self.cmd("Input.insertText", json!({"text": text})).await;
    }

    /// Presses a key (`Tab`, `Enter`, `Escape`) with real key events.
    pub async fn press(&self, key: &str) {
        let (code, vk, text) = match key {
            "Tab" => ("Tab", 9, None),
            "Enter" => ("Enter", 13, Some("\r")),
            "Escape" => ("Escape", 27, None),
            other => panic!("press: add {other} to the key table"),
        };
        let mut down = json!({
            "type": if text.is_some() { "keyDown" } else { "rawKeyDown" },
            "key": key,
            "code": code,
            "windowsVirtualKeyCode": vk,
            "nativeVirtualKeyCode": vk,
        });
        if let Some(t) = text {
            down["text"] = json!(t);
        }
        self.cmd("Input.dispatchKeyEvent", down).await;
        self.cmd(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}),
        )
        .await;
    }

    /// The text of the first match of `selector` (empty when none).
    pub async fn text(&self, selector: &str) -> String {
        let sel = js_str(selector);
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); return el ? el.textContent.trim() : ''; }})()"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> u64 {
        self.eval(&format!(
            "document.querySelectorAll({}).length",
            js_str(selector)
        ))
        .await
        .as_u64()
        .unwrap_or(0)
    }

    /// Saves a PNG of the whole page (beyond the viewport) at `path`.
    pub async fn screenshot_to(&self, path: &Path) {
        let metrics = self.cmd("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(1280.0).ceil();
        let height = size["height"].as_f64().unwrap_or(900.0).ceil().min(8000.0);
        let shot = self
            .cmd(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Script errors, console errors and CSP violations reported so far.
    pub fn problems(&self) -> Vec<String> {
        self.browser
            .shared
            .problems
            .lock()
            .map(|m| m.get(&self.session).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Messages of JavaScript dialogs (alert, confirm) the page opened.
    pub fn dialogs(&self) -> Vec<String> {
        self.browser
            .shared
            .dialogs
            .lock()
            .map(|m| m.get(&self.session).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// How long `wait_for` polls before failing. Long, because CI's two cores
/// also build and test everything else; a passing test returns as soon as
/// its condition holds.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where screenshots of failed waits go.
fn failure_dir() -> PathBuf {
    super::screenshot_root().join("failures")
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(80);
    out
}
