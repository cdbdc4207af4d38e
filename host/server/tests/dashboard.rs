//! The dashboard in a real headless Chromium.
//!
//! Each test starts the daemon in-process on `127.0.0.1:0` over a temporary
//! store, seeds `local-folder` integrations over generated images
//! (`proofpix-fixtures`), and drives Debian's `chromium` through the Chrome
//! DevTools Protocol (`dashboard/cdp.rs`) the way a person would: typing,
//! clicking the middle of visible controls, pressing keys. Every wait is a
//! bounded poll on a condition, never a fixed sleep.
//!
//! - `an_admin_signs_in_syncs_and_drills_into_a_high_risk_file`: the issue's
//!   scenario (sign in, the seeded integrations, open one, run a sync, the
//!   stats change live without a reload, a batch, a high-risk file's
//!   findings), plus the failing card's reason, keyboard use (skip link,
//!   Escape closes the dialog and gives focus back), dark mode and a 375 px
//!   wide screen.
//! - `viewers_and_operators_see_only_the_actions_their_role_allows`.
//! - `file_names_and_metadata_render_as_text_never_as_html`: hostile names
//!   and EXIF values show literally and create no element.
//! - `an_admin_sets_up_an_integration_from_its_plugin_form`: the form built
//!   from the plugin's config schema, the connection test before activation,
//!   secret fields, and the settings page.
//! - `an_admin_sets_and_removes_a_remediation_policy`: the policy form offers
//!   only what the plugin declares, turning simulation off asks first, and a
//!   viewer sees the policy without the form.
//! - `a_hook_answer_cannot_run_script_or_use_the_session`: a hostile plugin's
//!   webhook answer is an HTML page whose script reads `document.cookie` and
//!   mints an admin token; a signed-in admin opens the hook link and the page
//!   shows as text, no script runs and no token is minted.
//! - `a_file_links_to_its_platform_and_its_page_simulates_then_applies_an_action`:
//!   a plugin's hostile `web-url` becomes a normalised http(s) link in a new tab
//!   (`noopener noreferrer`) or no link at all; an admin simulates an action on
//!   a file, cancels and then confirms it (done once); a viewer gets no buttons.
//! - `the_overview_charts_risk_throughput_and_run_time_by_day`: the trends the
//!   daemon draws (SVG images with captions and a table), dark mode, one
//!   integration's trends, 390 px, and the API's refusals.
//! - `a_viewer_prints_a_compliance_report_with_counts_top_risks_actions_and_the_chain`:
//!   the printable report of a period, opened from the integration's form by a
//!   viewer: counts, a hostile name as text, actions, the audit chain, print
//!   media, no CSP violation.
//! - `every_page_passes_the_axe_core_audit_light_and_dark_at_1366_and_390_px`:
//!   axe-core (installed by `./test`; its absence fails the test) over every
//!   page and the report: no critical or serious WCAG 2.1 AA or best-practice
//!   violation.
//!
//! Screenshots, named by scenario and step, go to
//! `<target dir>/dashboard-screenshots/<scenario>/NN-step.png`; a failed
//! wait also saves one under `failures/`. Chromium is required: without it
//! the tests fail with the command that installs it.
// Tests seed the store directly; the crate itself may not write it (see .ci/owners).
#![allow(clippy::disallowed_methods)]

#[path = "dashboard/cdp.rs"]
mod cdp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cdp::{Browser, Page, js_str};
use proofpix_fixtures::{Exif, Gps, JpegSpec};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_server::{AppState, DaemonConfig, LiveEvent};
use proofpix_service::{Host, HostOptions, IntegrationSpec};
use proofpix_store::{ApiTokenRecord, Store};
use proofpix_vault::MasterKey;

/// How long a seeded sync may take before the harness gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// `<target dir>/dashboard-screenshots`.
pub fn screenshot_root() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("dashboard-screenshots")
}

/// Numbered screenshots of one scenario.
struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    fn new(scenario: &str) -> Shots {
        let dir = screenshot_root().join(scenario);
        // Stale pictures from an older run would mislead whoever looks.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        Shots { dir, n: 0 }
    }

    async fn take(&mut self, page: &Page<'_>, step: &str) -> PathBuf {
        self.n += 1;
        let path = self.dir.join(format!("{:02}-{step}.png", self.n));
        page.screenshot_to(&path).await;
        path
    }
}

/// A daemon serving on a loopback port, over a temporary store.
struct Daemon {
    base: String,
    state: AppState,
    store: Arc<Store>,
    admin_token: String,
    dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Daemon {
    /// Starts the daemon. `scenario` names its plugin cache (one per test:
    /// tests run in parallel and the cache writes through a per-process
    /// temporary name).
    async fn start(scenario: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            Store::open(&dir.path().join("store"), &MasterKey::generate()).expect("store"),
        );
        let options = HostOptions {
            cache_dir: Some(
                Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join("dashboard-plugin-cache")
                    .join(scenario),
            ),
            pipeline: PipelineOptions {
                concurrency: 2,
                retry_base: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                ..PipelineOptions::default()
            },
            // A development build signs its first-party plugins with its own key.
            trust_development_build: true,
            ..HostOptions::default()
        };
        let host = Host::new(store.clone(), options).await.expect("host");
        let admin_token = proofpix_server::bootstrap_admin_token(&host)
            .expect("bootstrap token")
            .expect("a fresh store has no token yet");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}/", listener.local_addr().expect("address"));
        let state = proofpix_server::state(host, DaemonConfig::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(proofpix_server::serve(state.clone(), listener, async {
            let _ = rx.await;
        }));
        let daemon = Daemon {
            base,
            state,
            store,
            admin_token,
            dir,
            shutdown: Some(tx),
            server: Some(server),
        };
        wait_until("the daemon to be ready", || daemon.state.is_ready()).await;
        daemon
    }

    /// A `local-folder` integration over `files`, written to a new folder.
    async fn folder_source(
        &self,
        id: &str,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> PathBuf {
        let folder = self.dir.path().join("folders").join(id);
        std::fs::create_dir_all(&folder).expect("folder");
        for (name, bytes) in files {
            let path = folder.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write image");
        }
        let mut config = BTreeMap::new();
        config.insert("folder".to_string(), folder.display().to_string());
        self.state
            .host()
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
        folder
    }

    /// Runs a sync the way the daemon does and waits for its end.
    async fn sync_and_wait(&self, id: &str) -> LiveEvent {
        let mut events = self.state.subscribe();
        self.state.trigger(id, SyncMode::Incremental, "manual");
        tokio::time::timeout(SYNC_TIMEOUT, async {
            loop {
                match events.recv().await {
                    Ok(e @ LiveEvent::SyncFinished { .. }) => {
                        if matches!(&e, LiveEvent::SyncFinished { integration, .. } if integration == id)
                        {
                            return e;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("live events ended: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the sync of {id} did not finish within {SYNC_TIMEOUT:?}"))
    }

    /// A new API token with `role`.
    fn token(&self, name: &str, role: &str) -> String {
        let token = proofpix_server::auth::new_token();
        let record = ApiTokenRecord {
            name: name.into(),
            role: role.into(),
            created_by: "test".into(),
            created_at: self.store.now(),
        };
        self.store
            .put_api_token(&proofpix_server::auth::token_hash(&token), &record, "test")
            .expect("token");
        token
    }

    fn latest_batch(&self, id: &str) -> u64 {
        self.store
            .recent_batches(Some(id), 1)
            .expect("batches")
            .first()
            .unwrap_or_else(|| panic!("{id} has no batch"))
            .id
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + cdp::WAIT_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in through the form with `token` and waits for the overview.
async fn sign_in(page: &Page<'_>, base: &str, token: &str) {
    page.goto(base).await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    page.type_into("#token", token).await;
    page.click("#sign-in button[type=submit]").await;
    page.wait_for(
        "the overview after signing in",
        "document.querySelector('#page-title')?.textContent === 'Integrations' && document.querySelector('#integrations')?.getAttribute('aria-busy') === 'false'",
    )
    .await;
}

/// Fails the test on any script error, console error or CSP violation.
fn assert_no_problems(page: &Page<'_>, when: &str) {
    let problems = page.problems();
    assert!(
        problems.is_empty(),
        "the page reported problems {when}: {problems:#?}"
    );
}

/// The number shown on a stat card (digits only; separators dropped).
async fn stat(page: &Page<'_>, key: &str) -> u64 {
    let text = page.text(&format!("#stat-{key}")).await;
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("stat {key} shows {text:?}, not a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_syncs_and_drills_into_a_high_risk_file() {
    let daemon = Daemon::start("admin").await;
    daemon
        .folder_source(
            "site-photos",
            proofpix_fixtures::samples()
                .into_iter()
                .map(|(n, b)| (n.to_string(), b)),
        )
        .await;
    daemon
        .folder_source("field-team", proofpix_fixtures::photo_set(24))
        .await;
    // An integration whose folder disappeared: its card must say why it fails.
    let gone = daemon
        .folder_source("archive", proofpix_fixtures::photo_set(2))
        .await;
    std::fs::remove_dir_all(&gone).expect("remove the archive folder");
    let outcome = daemon.sync_and_wait("archive").await;
    assert!(
        matches!(&outcome, LiveEvent::SyncFinished { outcome, .. } if outcome == "failed"),
        "a sync over a missing folder fails: {outcome:?}"
    );

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("admin");

    page.goto(&daemon.base).await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    shots.take(&page, "sign-in").await;
    // A wrong token is refused with a message, and nothing else happens.
    page.type_into("#token", "ppx_not-a-token").await;
    page.click("#sign-in button[type=submit]").await;
    page.wait_for(
        "the refusal of a wrong token",
        "document.querySelector('#sign-in-error [role=alert]')?.textContent.includes('not valid')",
    )
    .await;

    page.type_into("#token", &daemon.admin_token).await;
    page.click("#sign-in button[type=submit]").await;
    page.wait_for(
        "the three seeded integrations",
        "document.querySelectorAll('#integrations [data-integration]').length === 3",
    )
    .await;
    // Anything that reloads the page loses this marker.
    page.eval("window.__sameDocument = 'yes'").await;
    let listed = page
        .eval("[...document.querySelectorAll('#integrations [data-integration]')].map((e) => e.dataset.integration).sort()")
        .await;
    assert_eq!(
        listed,
        serde_json::json!(["archive", "field-team", "site-photos"])
    );
    assert_eq!(
        page.text("[data-integration='archive'] [data-status]")
            .await,
        "Failing"
    );
    let reason = page.text("[data-integration='archive'] .card-error").await;
    assert!(
        reason.starts_with("Last error:") && reason.len() > "Last error: ".len(),
        "the failing card says why: {reason:?}"
    );
    // Issue 17: the failed run reads as failed (not a 0/0/0 batch), and counts in the rate.
    assert!(
        page.text("[data-integration='archive'] [data-last-outcome='failed']")
            .await
            .starts_with("failed"),
        "the archive card's last sync says it failed"
    );
    page.wait_for(
        "the failed run in the recent batches, with its reason",
        "!!document.querySelector('#batch-table [data-outcome=\"failed\"] .outcome-error')",
    )
    .await;
    assert_eq!(
        page.text("#stat-success_rate").await,
        "0%",
        "a failed run is a failure in the success rate"
    );
    assert_eq!(
        page.text("#stat-note-success_rate").await,
        "1 run failed of 1"
    );
    let failed = daemon.latest_batch("archive");
    page.click(&format!("#batch-table a[href=\"#/batches/{failed}\"]"))
        .await;
    page.wait_for(
        "the failed batch's page with its reason",
        "document.querySelector('#batch-error')?.textContent.startsWith('This run failed: ')",
    )
    .await;
    shots.take(&page, "failed-batch").await;
    page.click("nav a[data-nav='overview']").await;
    page.wait_for(
        "the overview again",
        "document.querySelectorAll('#integrations [data-integration]').length === 3",
    )
    .await;
    page.wait_for(
        "the live connection",
        "document.querySelector('#live-state')?.textContent === 'Live'",
    )
    .await;
    assert_eq!(stat(&page, "integrations_total").await, 3);
    assert_eq!(stat(&page, "files_processed").await, 0);
    shots.take(&page, "overview").await;

    // Open an integration and run a sync from its page.
    page.click("[data-integration='site-photos'] h3 a").await;
    page.wait_for(
        "the site-photos page",
        "document.querySelector('#page-title')?.textContent === 'site-photos'",
    )
    .await;
    shots.take(&page, "integration").await;
    page.click("#integration-status [data-action='sync']").await;
    page.wait_for(
        "the new batch on the integration page (pushed live)",
        "!!document.querySelector('#batch-table [data-batch]') && document.querySelector('#detail-status')?.textContent === 'Healthy'",
    )
    .await;
    page.wait_for(
        "the current risk on the integration page",
        "!!document.querySelector(\"#integration-status [data-current-risk='site-photos'] a.badge\")",
    )
    .await;
    shots.take(&page, "integration-synced").await;

    // Back to the overview through the menu, then sync from a card and watch
    // the numbers move without reloading.
    page.click("nav a[data-nav='overview']").await;
    page.wait_for(
        "the stats after the first sync",
        "/^[1-9]/.test(document.querySelector('#stat-files_processed')?.textContent || '')",
    )
    .await;
    let before = stat(&page, "files_processed").await;
    page.click("[data-integration='field-team'] [data-action='sync']")
        .await;
    page.wait_for(
        "the field-team card to show the run",
        "['syncing', 'healthy'].includes(document.querySelector(\"[data-integration='field-team'] [data-status]\")?.dataset.status)",
    )
    .await;
    if page
        .eval("document.querySelector(\"[data-integration='field-team'] [data-status]\")?.dataset.status === 'syncing'")
        .await
        == serde_json::json!(true)
    {
        shots.take(&page, "overview-syncing").await;
    }
    let expected = before + 24;
    page.wait_for(
        "files processed to count the 24 new files (live)",
        &format!(
            "Number((document.querySelector('#stat-files_processed')?.textContent || '').replace(/\\D/g, '')) === {expected}"
        ),
    )
    .await;
    page.wait_for(
        "the field-team card to settle as healthy",
        "document.querySelector(\"[data-integration='field-team'] [data-status]\")?.dataset.status === 'healthy'",
    )
    .await;
    // Issue 17 item 8: through the run and its live re-renders, the focus stayed on Sync now.
    page.wait_for(
        "the focus to stay on field-team's Sync now",
        "document.activeElement?.dataset.action === 'sync' && !!document.activeElement.closest(\"[data-integration='field-team']\")",
    )
    .await;
    assert_eq!(
        page.eval("window.__sameDocument").await,
        serde_json::json!("yes"),
        "the stats changed without a page reload"
    );
    shots.take(&page, "overview-after-sync").await;
    // Issue 17 item 6: each source's card shows its files by current risk, each count a link
    // to those files.
    page.wait_for(
        "the current risk on the site-photos card",
        "[...document.querySelectorAll(\"[data-current-risk='site-photos'] a.badge\")].some((a) => /^\\d+ (critical|high)$/.test(a.textContent))",
    )
    .await;
    assert!(
        page.eval("document.querySelector(\"[data-current-risk='site-photos'] a.badge\").getAttribute('href')")
            .await
            .as_str()
            .is_some_and(|h| h.starts_with("#/files?integration=site-photos&risk=")),
        "a count leads to the files"
    );

    // Batch history → the site-photos batch → its riskiest file.
    let batch = daemon.latest_batch("site-photos");
    page.click("nav a[data-nav='batches']").await;
    page.wait_for(
        "the batch history",
        &format!("!!document.querySelector('#batch-table a[href=\"#/batches/{batch}\"]')"),
    )
    .await;
    shots.take(&page, "batches").await;
    page.click(&format!("#batch-table a[href=\"#/batches/{batch}\"]"))
        .await;
    page.wait_for(
        "the files of the batch",
        "document.querySelectorAll('#file-table a[data-result]').length > 0",
    )
    .await;
    shots.take(&page, "batch").await;
    let first_risk = page
        .eval("document.querySelector('#file-table a[data-result]').dataset.risk")
        .await;
    assert!(
        first_risk == "critical" || first_risk == "high",
        "the riskiest file is listed first: {first_risk}"
    );
    page.click("#file-table a[data-result]").await;
    page.wait_for(
        "the findings of the high-risk file",
        "document.querySelectorAll('#findings-table tbody tr').length > 0",
    )
    .await;
    let severities = page
        .eval("[...document.querySelectorAll('#findings-table tbody tr .risk')].map((e) => e.textContent)")
        .await;
    let severities: Vec<String> = serde_json::from_value(severities).expect("severities");
    assert!(
        severities.iter().any(|s| s == "high" || s == "critical"),
        "a high-risk file has a high-severity finding: {severities:?}"
    );
    let headers = page
        .eval(
            "[...document.querySelectorAll('#findings-table thead th')].map((e) => e.textContent)",
        )
        .await;
    assert_eq!(
        headers,
        serde_json::json!(["Category", "Code", "Severity", "Source", "Value", "Detail"])
    );
    assert!(
        page.text("#findings-table")
            .await
            .contains("gps.coordinates"),
        "the file's GPS position is among its findings"
    );
    shots.take(&page, "high-risk-file").await;

    // Keyboard: the test dialog opens from a button, Escape closes it and
    // focus goes back to that button.
    page.goto(&format!("{}#/integrations/site-photos", daemon.base))
        .await;
    page.wait_for(
        "the integration page",
        "!!document.querySelector('#integration-status [data-action=\"test\"]')",
    )
    .await;
    page.click("#integration-status [data-action='test']").await;
    page.wait_for(
        "the connection test dialog with its steps",
        "document.querySelector('#dialog').open && document.querySelectorAll('#test-steps li').length > 0",
    )
    .await;
    shots.take(&page, "test-dialog").await;
    page.press("Escape").await;
    page.wait_for(
        "Escape to close the dialog and return focus",
        "!document.querySelector('#dialog').open && document.activeElement?.dataset.action === 'test'",
    )
    .await;
    // On a fresh load the first Tab reaches the skip link; Enter on it moves
    // focus to the content without leaving the page.
    page.goto(&format!("{}#/", daemon.base)).await;
    page.reload().await;
    page.wait_for(
        "the overview after a reload",
        "document.querySelectorAll('#integrations [data-integration]').length === 3",
    )
    .await;
    page.press("Tab").await;
    page.wait_for(
        "the skip link to take the first Tab",
        "document.activeElement?.classList.contains('skip-link')",
    )
    .await;
    shots.take(&page, "skip-link").await;
    page.press("Enter").await;
    page.wait_for(
        "the skip link to move focus to the content",
        "document.activeElement?.id === 'main' && location.hash === '#/'",
    )
    .await;

    // Dark mode: the toggle wins over the system and is remembered.
    page.click("#theme-toggle").await;
    page.wait_for(
        "the dark theme",
        "document.documentElement.dataset.theme === 'dark' && localStorage.getItem('proofpix-theme') === 'dark'",
    )
    .await;
    shots.take(&page, "overview-dark").await;
    page.goto(&format!("{}#/batches/{batch}", daemon.base))
        .await;
    page.reload().await;
    page.wait_for(
        "the dark theme after a reload",
        "document.documentElement.dataset.theme === 'dark' && !!document.querySelector('#file-table')",
    )
    .await;
    shots.take(&page, "batch-dark").await;

    // A phone: 375 px wide, nothing wider than the screen.
    page.viewport(375, 812, true).await;
    page.goto(&format!("{}#/", daemon.base)).await;
    page.wait_for(
        "the overview on a phone",
        "document.querySelectorAll('#integrations [data-integration]').length === 3",
    )
    .await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(
        overflow,
        serde_json::json!(0),
        "no sideways scrolling at 375 px"
    );
    shots.take(&page, "overview-375-dark").await;
    page.click("#theme-toggle").await;
    page.wait_for(
        "the light theme",
        "document.documentElement.dataset.theme === 'light'",
    )
    .await;
    page.goto(&format!("{}#/batches/{batch}", daemon.base))
        .await;
    page.wait_for(
        "the batch on a phone",
        "!!document.querySelector('#file-table')",
    )
    .await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(
        overflow,
        serde_json::json!(0),
        "wide tables scroll inside their box at 375 px"
    );
    shots.take(&page, "batch-375").await;

    assert_no_problems(&page, "during the admin scenario");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_and_operators_see_only_the_actions_their_role_allows() {
    let daemon = Daemon::start("roles").await;
    daemon
        .folder_source("site-photos", proofpix_fixtures::photo_set(3))
        .await;
    daemon.sync_and_wait("site-photos").await;
    let viewer = daemon.token("auditor", "viewer");
    let operator = daemon.token("night-shift", "operator");

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("roles");

    sign_in(&page, &daemon.base, &viewer).await;
    page.wait_for(
        "the integration card",
        "!!document.querySelector(\"[data-integration='site-photos']\")",
    )
    .await;
    assert_eq!(page.text("#whoami").await, "Signed in as auditor viewer");
    assert_eq!(
        page.count("[data-action]").await,
        0,
        "a viewer gets no action buttons"
    );
    assert_eq!(page.count("#add-integration").await, 0);
    assert_eq!(stat(&page, "files_processed").await, 3);
    shots.take(&page, "viewer-overview").await;
    page.click("[data-integration='site-photos'] h3 a").await;
    page.wait_for(
        "the integration page",
        "document.querySelector('#page-title')?.textContent === 'site-photos'",
    )
    .await;
    assert_eq!(page.count("[data-action]").await, 0);
    shots.take(&page, "viewer-integration").await;
    page.click("nav a[data-nav='settings']").await;
    page.wait_for("the settings", "!!document.querySelector('#auto-sync')")
        .await;
    assert_eq!(
        page.eval("document.querySelector('#auto-sync').disabled && document.querySelector('#default-schedule').disabled")
            .await,
        serde_json::json!(true),
        "a viewer cannot change settings"
    );
    assert_eq!(page.count("#settings-form button[type=submit]").await, 0);
    assert_eq!(
        page.count("#tokens-title").await,
        0,
        "no token list for a viewer"
    );
    shots.take(&page, "viewer-settings").await;
    // Reports: a viewer exports the batches and the audit trail as CSV.
    page.click("nav a[data-nav='audit']").await;
    page.wait_for(
        "the audit export",
        "!!document.querySelector('#audit-export')",
    )
    .await;
    let csv = page
        .eval("fetch(document.querySelector('#audit-export').href).then((r) => r.text())")
        .await;
    assert!(
        csv.as_str()
            .is_some_and(|c| c.starts_with("seq,time,actor,action,target,outcome,details\r\n1,")),
        "the audit CSV downloads with the session: {csv}"
    );
    page.click("nav a[data-nav='batches']").await;
    page.wait_for(
        "the batch export",
        "document.querySelector('#batches-export')?.getAttribute('href') === '/api/batches.csv'",
    )
    .await;
    page.eval("const s = document.querySelector('#batch-filter'); s.value = 'site-photos'; s.dispatchEvent(new Event('change'))")
        .await;
    page.wait_for(
        "the export filtered like the list",
        "document.querySelector('#batches-export')?.getAttribute('href') === '/api/batches.csv?integration=site-photos'",
    )
    .await;

    // Sign out, then in as an operator: sync, test and pause, but no edit or delete.
    page.click("#sign-out").await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    sign_in(&page, &daemon.base, &operator).await;
    let actions = page
        .eval("[...document.querySelectorAll(\"[data-integration='site-photos'] [data-action]\")].map((e) => e.dataset.action)")
        .await;
    assert_eq!(actions, serde_json::json!(["sync", "test", "disable"]));
    shots.take(&page, "operator-overview").await;
    page.click("[data-integration='site-photos'] [data-action='disable']")
        .await;
    page.wait_for(
        "the card to show the pause (pushed live)",
        "document.querySelector(\"[data-integration='site-photos'] [data-status]\")?.dataset.status === 'paused'",
    )
    .await;
    // Issue 17 item 8: the keyboard focus stays on the button (now Resume), not the page body.
    page.wait_for(
        "the focus to stay on the pause button, now Resume",
        "document.activeElement?.dataset.action === 'enable' && !!document.activeElement.closest(\"[data-integration='site-photos']\")",
    )
    .await;
    assert!(
        !daemon
            .store
            .integration("site-photos")
            .expect("store")
            .expect("integration")
            .enabled
    );
    page.press("Enter").await;
    page.wait_for(
        "Enter on Resume to resume, focus still there",
        "document.querySelector(\"[data-integration='site-photos'] [data-status]\")?.dataset.status !== 'paused' && document.activeElement?.dataset.action === 'disable'",
    )
    .await;
    assert!(
        daemon
            .store
            .integration("site-photos")
            .expect("store")
            .expect("integration")
            .enabled
    );

    assert_no_problems(&page, "during the roles scenario");
    daemon.stop().await;
}

/// What an attacker would put in a file name or a metadata value to get
/// script into the dashboard. The CSP blocks inline handlers anyway; the
/// check here is that no element is created at all.
const HOSTILE: &str = "<img src=x onerror=window.__xss=1>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_and_metadata_render_as_text_never_as_html() {
    let daemon = Daemon::start("xss").await;
    let image = proofpix_fixtures::jpeg(&JpegSpec {
        width: 32,
        height: 32,
        seed: 7,
        exif: Some(Exif {
            make: Some("<svg onload=window.__xss=2>".into()),
            model: Some(HOSTILE.into()),
            software: Some(HOSTILE.into()),
            artist: Some(HOSTILE.into()),
            gps: Some(Gps {
                lat: 48.858_37,
                lon: 2.294_48,
                alt: None,
            }),
            ..Exif::default()
        }),
        comment: Some(HOSTILE.into()),
        ..JpegSpec::default()
    });
    let name = format!("{HOSTILE}.jpg");
    daemon
        .folder_source("uploads", [(name.clone(), image)])
        .await;
    daemon.sync_and_wait("uploads").await;
    let batch = daemon.latest_batch("uploads");
    // A detail with a time as Rust's `time` prints it (as a remediation's "done at" does).
    daemon
        .store
        .audit(
            &proofpix_store::AuditEvent::new("system", "remediation.quarantine", "uploads")
                .details(serde_json::json!({"file": "x.jpg", "detail": "done at 2026-01-31 9:30:00.0 +00:00:00; not done again"})),
        )
        .expect("audit");

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("xss");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;

    page.goto(&format!("{}#/batches/{batch}", daemon.base))
        .await;
    page.wait_for(
        "the hostile file in the batch",
        "document.querySelectorAll('#file-table a[data-result]').length === 1",
    )
    .await;
    assert_eq!(page.text("#file-table a[data-result]").await, name);
    shots.take(&page, "batch").await;
    page.click("#file-table a[data-result]").await;
    page.wait_for(
        "the hostile file's findings",
        "document.querySelectorAll('#findings-table tbody tr').length > 0",
    )
    .await;
    shots.take(&page, "findings").await;
    assert_eq!(
        page.text("#page-title").await,
        name,
        "the name shows literally"
    );
    let text = page.text("#findings-table").await;
    assert!(
        text.contains("<img src=x") || text.contains("<svg") || text.contains("<i"),
        "some hostile value shows as text in the findings: {text}"
    );
    assert_eq!(
        page.count("main img, main svg, main script, #findings-table b")
            .await,
        0,
        "no element came from the data"
    );
    assert_eq!(
        page.eval("typeof window.__xss").await,
        serde_json::json!("undefined")
    );
    // The file's own page (name, risk, why, remediation): the name is still text.
    page.click("#file-page-link").await;
    page.wait_for(
        "the hostile file's page",
        "!!document.querySelector('#file-remediation') && !!document.querySelector('#why-list')",
    )
    .await;
    assert_eq!(page.text("#page-title").await, name);
    assert_eq!(page.text("#file-name").await, name);
    assert_eq!(
        page.count("main img, main svg, main script").await,
        0,
        "no element came from the data on the file page"
    );
    shots.take(&page, "file-page").await;
    // The audit trail shows the same name as a target detail: still text.
    page.click("nav a[data-nav='audit']").await;
    page.wait_for(
        "the audit trail",
        "document.querySelectorAll('#audit-table tbody tr').length > 0",
    )
    .await;
    assert_eq!(page.count("main img, main svg").await, 0);
    // Issue 17 item 7: details read as `key: value`, not JSON, and times as people write them.
    let audit = page.text("#audit-table").await;
    assert!(
        !audit.contains("{\""),
        "no raw JSON in the audit trail: {audit}"
    );
    assert!(
        audit.contains("not done again") && !audit.contains("+00:00:00"),
        "the time in a detail is readable: {audit}"
    );
    assert!(audit.contains("batch: "), "{audit}");
    assert_eq!(
        page.eval("[...document.querySelector('#audit-table tbody tr').children].map((c) => c.dataset.label || 'seq')")
            .await,
        serde_json::json!(["seq", "Time", "Actor", "Action", "Target", "Outcome", "Details"]),
        "one cell per column"
    );
    shots.take(&page, "audit").await;
    assert!(
        page.dialogs().is_empty(),
        "no dialog opened: {:?}",
        page.dialogs()
    );
    assert_no_problems(&page, "showing hostile names and values");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_an_integration_from_its_plugin_form() {
    let daemon = Daemon::start("setup").await;
    let folder = daemon.dir.path().join("inbox");
    proofpix_fixtures::write_samples(&folder).expect("samples");

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("setup");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    assert_eq!(page.count("[data-integration]").await, 0);

    page.click("#add-integration").await;
    page.wait_for(
        "the plugin picker",
        "!!document.querySelector('a[href=\"#/new/local-folder\"]')",
    )
    .await;
    shots.take(&page, "plugins").await;
    page.click("a[href='#/new/local-folder']").await;
    page.wait_for(
        "the local-folder form",
        "!!document.querySelector('#setup-form [data-field=\"folder\"]')",
    )
    .await;
    // The form follows the plugin's schema: kinds, defaults, help, labels.
    let form = page
        .eval(
            "[...document.querySelectorAll('#setup-form [data-field]')].map((e) => ({
                name: e.dataset.field, kind: e.dataset.kind, tag: e.tagName.toLowerCase(), type: e.type,
                required: e.required, labelled: !!document.querySelector(`label[for=\"${e.id}\"]`),
                help: !!e.getAttribute('aria-describedby') }))",
        )
        .await;
    let fields: Vec<serde_json::Value> = serde_json::from_value(form).expect("fields");
    let field = |n: &str| {
        fields
            .iter()
            .find(|f| f["name"] == n)
            .unwrap_or_else(|| panic!("the form has {n}: {fields:?}"))
            .clone()
    };
    assert_eq!(field("folder")["required"], true);
    assert_eq!(field("output")["required"], false);
    assert_eq!(field("recursive")["type"], "checkbox");
    assert_eq!(field("extensions")["tag"], "textarea");
    assert!(
        fields
            .iter()
            .all(|f| f["labelled"] == true && f["help"] == true),
        "every field has a label and help: {fields:?}"
    );
    assert_eq!(
        page.eval("document.querySelector('[data-field=\"recursive\"]').checked && document.querySelector('#grant-mounts').value")
            .await,
        serde_json::json!("/input"),
        "defaults are filled in"
    );
    // First with a folder that does not exist: the operator sees why it
    // fails and deletes it, then fixes the folder.
    let missing = folder.with_file_name("no-such-folder");
    page.type_into("#integration-id", "inbox").await;
    page.type_into("[data-field='folder']", &missing.display().to_string())
        .await;
    page.type_into("#schedule", "6h").await;
    shots.take(&page, "form").await;
    page.click("#setup-form button[type=submit]").await;
    let outcome = page
        .wait_for(
            "the refusal of a missing folder",
            "document.querySelector('#test-outcome')?.textContent || document.querySelector('#form-errors [role=alert]')?.textContent",
        )
        .await;
    let outcome = outcome.as_str().unwrap_or_default().to_string();
    assert!(
        outcome.contains("failed") || outcome.contains("does not exist"),
        "the missing folder is reported: {outcome}"
    );
    shots.take(&page, "refused").await;
    if page.count("#discard").await == 1 {
        assert!(
            page.text("#setup-result").await.contains("does not exist"),
            "the test names the problem: {}",
            page.text("#setup-result").await
        );
        assert_eq!(
            page.count("#setup-form button[type=submit]:not([hidden])")
                .await,
            0,
            "no second create while the first is undecided"
        );
        page.click("#discard").await;
        page.wait_for(
            "the form to be editable again",
            "!document.querySelector('[data-field=\"folder\"]').disabled && !document.querySelector('#discard')",
        )
        .await;
        assert!(
            daemon.store.integration("inbox").expect("store").is_none(),
            "the refused integration is deleted"
        );
    }
    page.type_into("[data-field='folder']", &folder.display().to_string())
        .await;
    // The pixel stage is a setting of its own, off unless ticked.
    assert_eq!(
        page.eval("document.querySelector('#pixels').checked").await,
        serde_json::json!(false)
    );
    page.click("#pixels").await;
    page.click("#setup-form button[type=submit]").await;
    page.wait_for(
        "the connection test's steps",
        "document.querySelector('#test-outcome')?.textContent.includes('works')",
    )
    .await;
    assert!(
        page.text("#test-outcome").await.contains("works"),
        "the test passes: {}",
        page.text("#setup-result").await
    );
    let stored = daemon
        .store
        .integration("inbox")
        .expect("store")
        .expect("created");
    assert!(!stored.enabled, "paused until the operator activates it");
    assert_eq!(stored.schedule.as_deref(), Some("6h"));
    assert!(
        proofpix_service::pixels_on(&stored),
        "the pixel stage is on, as ticked"
    );
    shots.take(&page, "tested").await;
    page.click("#activate").await;
    page.wait_for(
        "the new integration's page",
        "document.querySelector('#page-title')?.textContent === 'inbox'",
    )
    .await;
    assert!(
        daemon
            .store
            .integration("inbox")
            .expect("store")
            .expect("created")
            .enabled
    );
    shots.take(&page, "activated").await;

    // Secret fields are password inputs, empty, and labelled.
    page.goto(&format!("{}#/new/salesforce", daemon.base)).await;
    page.wait_for(
        "the Salesforce form",
        "!!document.querySelector('#setup-form [data-field]')",
    )
    .await;
    let secrets = page
        .eval("[...document.querySelectorAll('#setup-form input[type=password]')].map((e) => [e.value, !!document.querySelector(`label[for=\"${e.id}\"]`)])")
        .await;
    let secrets: Vec<(String, bool)> = serde_json::from_value(secrets).expect("secret fields");
    assert!(!secrets.is_empty(), "Salesforce asks for a secret");
    assert!(
        secrets
            .iter()
            .all(|(v, labelled)| v.is_empty() && *labelled),
        "secrets are empty and labelled: {secrets:?}"
    );
    shots.take(&page, "salesforce-form").await;

    // Notifiers get the notification types; Slack, also a source, asks
    // whether to notify at all and has a schedule, Teams only notifies.
    page.goto(&format!("{}#/new/teams", daemon.base)).await;
    page.wait_for(
        "the Teams form's notification types",
        "document.querySelectorAll('#setup-form [data-event]').length === 4",
    )
    .await;
    assert_eq!(
        page.eval(
            "[!!document.querySelector('#schedule'), !!document.querySelector('#notify-enabled'), document.querySelector('#min-risk').value, [...document.querySelectorAll('[data-event]')].every((e) => e.checked && !e.disabled)]"
        )
        .await,
        serde_json::json!([false, false, "high", true]),
        "Teams: no schedule, notifications on, all four events, high and above"
    );
    shots.take(&page, "teams-form").await;
    page.goto(&format!("{}#/new/slack", daemon.base)).await;
    page.wait_for(
        "the Slack form",
        "!!document.querySelector('#notify-enabled') && !!document.querySelector('#schedule')",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('#notify-options').disabled")
            .await,
        serde_json::json!(true),
        "a Slack source does not notify unless asked to"
    );
    assert_eq!(
        page.eval("document.querySelector('#grant-hosts').value")
            .await,
        serde_json::json!("https://slack.com\nhttps://files.slack.com"),
        "the grant starts from the endpoints the plugin declares"
    );
    page.click("#notify-enabled").await;
    page.wait_for(
        "the notification options to open",
        "!document.querySelector('#notify-options').disabled",
    )
    .await;
    shots.take(&page, "slack-form").await;

    // Editing keeps the stored values in the form.
    page.goto(&format!("{}#/integrations/inbox/edit", daemon.base))
        .await;
    page.wait_for(
        "the edit form",
        &format!(
            "document.querySelector('[data-field=\"folder\"]')?.value === {}",
            js_str(&folder.display().to_string())
        ),
    )
    .await;

    // Settings: auto sync and the default schedule change; the file-level
    // values are shown, not editable.
    page.click("nav a[data-nav='settings']").await;
    page.wait_for("the settings", "!!document.querySelector('#auto-sync')")
        .await;
    assert_eq!(
        page.eval("document.querySelector('#setting-concurrency').tagName")
            .await,
        serde_json::json!("DD"),
        "concurrency is read-only"
    );
    assert!(
        page.text("main").await.contains("Write-back batch size"),
        "the plugins' declared write-back batch sizes are shown"
    );
    page.click("#auto-sync").await;
    page.type_into("#default-schedule", "cron 0 3 * * * UTC")
        .await;
    page.click("#settings-form button[type=submit]").await;
    page.wait_for(
        "the confirmation",
        "document.querySelector('#toast')?.textContent === 'Settings saved.'",
    )
    .await;
    let settings = proofpix_server::api::load_settings(daemon.store.as_ref());
    assert!(!settings.auto_sync);
    assert_eq!(
        settings.default_schedule.as_deref(),
        Some("cron 0 3 * * * UTC")
    );
    shots.take(&page, "settings").await;

    assert_no_problems(&page, "during setup");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_and_removes_a_remediation_policy() {
    let daemon = Daemon::start("remediation").await;
    // SharePoint offers replace-with-sanitised. Nothing here reaches Graph (the page only reads
    // and writes the policy): its addresses point at a closed loopback port.
    let config: BTreeMap<String, String> = [
        ("tenant", "contoso.onmicrosoft.com"),
        ("client_id", "00000000-0000-0000-0000-000000000001"),
        ("sites", "contoso.sharepoint.com/sites/Field"),
        ("graph_url", "http://127.0.0.1:9"),
        ("login_url", "http://127.0.0.1:9"),
        ("download_host", "http://127.0.0.1:9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secrets: BTreeMap<String, proofpix_vault::Secret> = [(
        "client_secret".to_string(),
        proofpix_vault::Secret::new("not-used"),
    )]
    .into_iter()
    .collect();
    daemon
        .state
        .host()
        .create_integration(
            IntegrationSpec {
                id: "field-sp".into(),
                plugin: "sharepoint".into(),
                config,
                secrets,
                grant: OperatorGrant {
                    hosts: vec!["http://127.0.0.1:*".into()],
                    allow_loopback: true,
                    ..OperatorGrant::default()
                },
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect("sharepoint integration");
    let policy = || {
        daemon
            .state
            .host()
            .remediation_policy("field-sp")
            .expect("policy")
    };

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let mut shots = Shots::new("remediation");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    page.goto(&format!("{}#/integrations/field-sp", daemon.base))
        .await;
    page.wait_for(
        "the remediation form",
        "!!document.querySelector('#remediation-form')",
    )
    .await;
    assert!(
        page.text("#remediation-summary")
            .await
            .contains("changes nothing on SharePoint"),
        "no policy yet"
    );
    // Only what the plugin offers, simulation on by default.
    assert_eq!(
        page.eval("[...document.querySelectorAll('#remediation-form input[name=action]')].map((e) => e.value)")
            .await,
        serde_json::json!(["replace-with-sanitised"])
    );
    assert_eq!(
        page.eval("document.querySelector('#remediation-simulate').checked")
            .await,
        serde_json::json!(true)
    );
    shots.take(&page, "no-policy").await;

    page.click("#remediate-replace-with-sanitised").await;
    page.eval("document.querySelector('#remediation-min-risk').value = 'critical'")
        .await;
    page.click("#remediation-simulate").await;
    page.click("#remediation-form button[type=submit]").await;
    // Acting for real asks first; Cancel leaves everything as it was.
    page.wait_for(
        "the confirmation before acting on the platform",
        "document.querySelector('#dialog').open && document.querySelector('#dialog-body').textContent.includes('changes files on SharePoint')",
    )
    .await;
    shots.take(&page, "confirm-act").await;
    page.click("#dialog-body .dialog-actions button:not(.danger)")
        .await;
    page.wait_for(
        "the dialog to close",
        "!document.querySelector('#dialog').open",
    )
    .await;
    assert_eq!(policy(), None, "cancelled: nothing saved");

    page.click("#remediation-form button[type=submit]").await;
    page.wait_for(
        "the confirmation again",
        "document.querySelector('#dialog').open",
    )
    .await;
    page.click("#dialog-body .dialog-actions button.danger")
        .await;
    page.wait_for(
        "the saved policy, acting",
        "document.querySelector('[data-remediation-mode]')?.dataset.remediationMode === 'act'",
    )
    .await;
    let saved = policy().expect("a policy");
    assert_eq!(
        saved.actions,
        [proofpix_model::RemediationKind::ReplaceWithSanitised]
    );
    assert_eq!(saved.min_risk, proofpix_store::RiskLevel::Critical);
    assert!(!saved.simulate);
    shots.take(&page, "policy-acting").await;

    // A viewer sees the policy, not the form.
    let viewer = daemon.token("remediation-viewer", "viewer");
    let open_integration = |what: &'static str, condition: &'static str| {
        let page = &page;
        let base = daemon.base.clone();
        async move {
            page.goto(&format!("{base}#/integrations/field-sp")).await;
            page.wait_for(what, condition).await;
        }
    };
    page.click("#sign-out").await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    sign_in(&page, &daemon.base, &viewer).await;
    open_integration(
        "the policy for a viewer",
        "!!document.querySelector('[data-remediation-mode]')",
    )
    .await;
    assert_eq!(page.count("#remediation-form").await, 0);
    shots.take(&page, "viewer").await;
    page.click("#sign-out").await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    open_integration(
        "the remediation form again",
        "!!document.querySelector('#remediation-remove')",
    )
    .await;

    page.click("#remediation-remove").await;
    page.wait_for(
        "the removal confirmation",
        "document.querySelector('#dialog').open",
    )
    .await;
    page.click("#dialog-body .dialog-actions button.danger")
        .await;
    page.wait_for(
        "no policy again",
        "document.querySelector('#remediation-summary')?.textContent.includes('changes nothing')",
    )
    .await;
    assert_eq!(policy(), None);
    assert_no_problems(&page, "while setting a remediation policy");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_answer_cannot_run_script_or_use_the_session() {
    let daemon = Daemon::start("hook-sandbox").await;
    let hostile = std::fs::read(proofpix_plugin_artifacts::TEST_HOSTILE).expect("hostile plugin");
    daemon
        .state
        .host()
        .add_plugin(&hostile)
        .await
        .expect("load the hostile plugin");
    daemon
        .state
        .host()
        .create_integration(
            IntegrationSpec {
                id: "evil".into(),
                plugin: "hostile".into(),
                config: BTreeMap::from([("mode".to_string(), "hook-html".to_string())]),
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect("hostile integration");
    let tokens_before = daemon.store.api_tokens().expect("tokens").len();

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let mut shots = Shots::new("hook-sandbox");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    // The session cookie is HttpOnly: not even the dashboard's own script reads it.
    assert_eq!(page.eval("document.cookie").await, "");

    // The admin opens the link the plugin posted somewhere.
    page.goto(&format!("{}hooks/evil", daemon.base)).await;
    shots.take(&page, "hook-answer").await;
    let seen = page
        .eval(
            "({type: document.contentType, title: document.title, scripts: document.querySelectorAll('script').length, \
              text: document.body ? document.body.innerText : '', stolen: typeof window.__stolen, \
              minted: document.body ? document.body.getAttribute('data-minted') : null})",
        )
        .await;
    assert_eq!(seen["type"], "text/plain", "{seen}");
    assert_eq!(seen["scripts"], 0, "no script element exists: {seen}");
    assert_ne!(seen["title"], "script ran", "{seen}");
    assert_eq!(seen["stolen"], "undefined", "{seen}");
    assert_eq!(seen["minted"], serde_json::Value::Null, "{seen}");
    assert!(
        seen["text"]
            .as_str()
            .is_some_and(|t| t.contains("<script>") && t.contains("/api/tokens")),
        "the page shows as text: {seen}"
    );
    // The sandboxed document has an opaque origin: it cannot read the cookie
    // or call the API with it even from the console.
    let probe = page
        .eval(
            "(async () => { let cookie; try { cookie = document.cookie; } catch (e) { cookie = 'refused'; } \
              let api; try { api = (await fetch('/api/session', {credentials: 'include'})).status; } catch (e) { api = 'refused'; } \
              return {cookie, api, origin: String(self.origin)}; })()",
        )
        .await;
    assert_eq!(probe["origin"], "null", "opaque origin: {probe}");
    assert!(
        probe["cookie"] == "refused" || probe["cookie"] == "",
        "the cookie is out of reach: {probe}"
    );
    assert!(
        probe["api"] == "refused" || probe["api"] == 401,
        "the API does not see the admin's session from the hook page: {probe}"
    );

    let tokens: Vec<String> = daemon
        .store
        .api_tokens()
        .expect("tokens")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        tokens.len(),
        tokens_before,
        "no token was minted: {tokens:?}"
    );
    assert!(!tokens.iter().any(|t| t == "pwned-by-plugin"));

    // The admin's dashboard session is intact.
    page.goto(&daemon.base).await;
    page.wait_for(
        "the overview, still signed in",
        "document.querySelector('#page-title')?.textContent === 'Integrations'",
    )
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_page_searches_filters_pages_and_shows_hostile_names_as_text() {
    let daemon = Daemon::start("files").await;
    let hostile = format!("{HOSTILE}.jpg");
    let gps_image = proofpix_fixtures::jpeg(&JpegSpec {
        width: 32,
        height: 32,
        seed: 3,
        exif: Some(Exif {
            gps: Some(Gps {
                lat: 48.858_37,
                lon: 2.294_48,
                alt: None,
            }),
            ..Exif::default()
        }),
        ..JpegSpec::default()
    });
    let mut files: Vec<(String, Vec<u8>)> = proofpix_fixtures::photo_set(6).collect();
    files.push((hostile.clone(), gps_image));
    daemon.folder_source("uploads", files).await;
    daemon.sync_and_wait("uploads").await;

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("files");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;

    // The overview's high-risk card leads to the inventory filtered by risk.
    page.wait_for(
        "the high-risk card with a number",
        "/\\d/.test(document.querySelector('#stat-high_risk')?.textContent || '')",
    )
    .await;
    page.click("#stat-high_risk").await;
    page.wait_for(
        "the Files page filtered by risk",
        "document.querySelector('#page-title')?.textContent === 'Files' && document.querySelector('#files-risk')?.value === 'high,critical' && !!document.querySelector('#files-table, #files-empty')",
    )
    .await;
    let risks = page
        .eval(
            "[...document.querySelectorAll('#files-table .badge.risk')].map((b) => b.textContent)",
        )
        .await;
    for r in risks.as_array().unwrap() {
        assert!(
            r == "high" || r == "critical",
            "only high-risk rows: {risks}"
        );
    }
    shots.take(&page, "high-risk").await;

    // Every file from the nav link; the hostile name is text in its row.
    page.click("nav a[data-nav='files']").await;
    // Rows and their names together: a live update may re-render the table between two reads.
    // The unfiltered page, not the risk-filtered one still shown until it renders (both have
    // seven rows here).
    page.wait_for(
        "all seven files",
        "location.hash === '#/files' && document.querySelector('#files-risk')?.value === '' && document.querySelectorAll('#files-table tbody tr').length === 7 && document.querySelectorAll('#files-table .filename').length === 7",
    )
    .await;
    let names = page
        .eval("[...document.querySelectorAll('#files-table .filename')].map((a) => a.textContent)")
        .await;
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str() == Some(hostile.as_str())),
        "{names}"
    );
    assert_eq!(page.count("main img, main svg, main script").await, 0);
    assert_eq!(
        page.eval("typeof window.__xss").await,
        serde_json::json!("undefined")
    );
    shots.take(&page, "all-files").await;

    // Searching filters the rows (case-insensitive, on the server).
    page.type_into("#files-q", "ONERROR").await;
    page.wait_for(
        "only the hostile file",
        "document.querySelectorAll('#files-table tbody tr').length === 1",
    )
    .await;
    assert_eq!(page.text("#files-table .filename").await, hostile);
    let export = page
        .eval("document.querySelector('#files-export').getAttribute('href')")
        .await;
    assert_eq!(export, serde_json::json!("/api/files.csv?q=ONERROR"));
    assert!(
        page.eval("location.hash")
            .await
            .as_str()
            .unwrap()
            .contains("q=ONERROR"),
        "the filter is in the address"
    );
    shots.take(&page, "search").await;
    assert_no_problems(&page, "on the Files page");
    daemon.stop().await;
}

/// Issue 16's last bullet and issue 17 item 4: a file whose risk is in its pixels is not
/// offered a sanitised copy, and its page says why; the Files page leads to it by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_page_says_why_a_sanitised_copy_is_not_offered_for_pixel_risk() {
    use proofpix_store::{FileRecord, FileStatus, NewResult};
    let daemon = Daemon::start("file-page").await;
    let config: BTreeMap<String, String> = [
        ("tenant", "contoso.onmicrosoft.com"),
        ("client_id", "00000000-0000-0000-0000-000000000001"),
        ("sites", "contoso.sharepoint.com/sites/Field"),
        ("graph_url", "http://127.0.0.1:9"),
        ("login_url", "http://127.0.0.1:9"),
        ("download_host", "http://127.0.0.1:9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let host = daemon.state.host();
    host.create_integration(
        IntegrationSpec {
            id: "field-sp".into(),
            plugin: "sharepoint".into(),
            config,
            secrets: [(
                "client_secret".to_string(),
                proofpix_vault::Secret::new("not-used"),
            )]
            .into_iter()
            .collect(),
            grant: OperatorGrant {
                hosts: vec!["http://127.0.0.1:*".into()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        },
        "operator:test",
    )
    .await
    .expect("sharepoint integration");
    host.set_remediation(
        "field-sp",
        Some(
            proofpix_policy::RemediationPolicy::from_json(
                r#"{"actions": ["replace-with-sanitised"], "min_risk": "high"}"#,
            )
            .expect("policy"),
        ),
        "operator:test",
    )
    .await
    .expect("policy");
    let remote_id = "b!LrEA/01QJ2L76";
    let result = daemon
        .store
        .add_result(NewResult {
            integration: "field-sp".into(),
            remote_id: remote_id.into(),
            file_version: "v1".into(),
            risk: proofpix_store::RiskLevel::High,
            score: 80,
            report_json: serde_json::json!({
                "path": "whiteboard.jpg", "format": "jpeg", "risk": "high",
                "findings": [{"category": "text-pii", "code": "text_pii.card_number", "severity": "high",
                              "source": {"family": "pixels", "group": "OCR", "tag": "", "name": "text"},
                              "value": "4111 **** **** 1111"}],
            })
            .to_string(),
        })
        .expect("result");
    daemon
        .store
        .put_file(&FileRecord {
            integration: "field-sp".into(),
            remote_id: remote_id.into(),
            version: "v1".into(),
            name: "whiteboard.jpg".into(),
            content_hash: None,
            last_result: Some(result),
            status: FileStatus::Analysed,
            attempts: 1,
            last_error: None,
            updated_at: daemon.store.now(),
            web_url: None,
        })
        .expect("file");

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("file-page");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    page.click("nav a[data-nav='files']").await;
    page.wait_for(
        "the file in the inventory, by name",
        "document.querySelector('#files-table .filename')?.textContent === 'whiteboard.jpg'",
    )
    .await;
    page.click("#files-table .filename").await;
    page.wait_for(
        "the file's page",
        "document.querySelector('#page-title')?.textContent === 'whiteboard.jpg' && !!document.querySelector('#file-actions')",
    )
    .await;
    assert!(page.text("#file-summary").await.contains("SharePoint"));
    assert!(page.text("#file-summary").await.contains(remote_id));
    assert!(
        page.text("#pixel-risk")
            .await
            .starts_with("The risk is in the picture itself."),
        "the page says why"
    );
    assert_eq!(
        page.eval("document.querySelector('[data-file-action=\"replace-with-sanitised\"]').dataset.offered")
            .await,
        serde_json::json!("no")
    );
    assert!(
        page.text("#file-actions .why-not")
            .await
            .contains("what the picture shows"),
        "the action row says why it is not offered"
    );
    assert!(
        page.text("#why-list").await.contains("Why it matters"),
        "the finding is explained"
    );
    assert_eq!(
        page.eval("document.querySelector('#file-remediation-mode').dataset.mode")
            .await,
        serde_json::json!("simulate")
    );
    shots.take(&page, "pixel-risk").await;
    // A phone: the page fits, and the findings' Risk and Value columns stay reachable.
    page.viewport(390, 844, true).await;
    page.reload().await;
    page.wait_for(
        "the file's page on a phone",
        "!!document.querySelector('#findings-table')",
    )
    .await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(
        overflow,
        serde_json::json!(0),
        "no sideways scrolling at 390 px"
    );
    // Issue 17 item 7: every column is on screen, the finding's Severity and Value included.
    let visible = "(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; }";
    assert_eq!(
        page.eval(&format!("({visible})('#findings-table td[data-label=\"Severity\"]') && ({visible})('#findings-table td[data-label=\"Value\"]')"))
            .await,
        serde_json::json!(true),
        "the Severity and Value columns are on screen at 390 px"
    );
    shots.take(&page, "pixel-risk-390").await;
    page.click("a.back-files").await;
    page.wait_for(
        "the Files page on a phone",
        "!!document.querySelector('#files-table')",
    )
    .await;
    assert_eq!(
        page.eval(&format!(
            "({visible})('#files-table td[data-label=\"Risk\"]')"
        ))
        .await,
        serde_json::json!(true),
        "the Risk column is on screen at 390 px"
    );
    shots.take(&page, "files-390").await;
    assert_no_problems(&page, "on a file's page");
    daemon.stop().await;
}

/// A platform for the well-behaved plugin at 2.0.0: serves a photo with GPS and counts the
/// quarantines it is asked for.
async fn quarantine_platform() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::{get, post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let quarantines = Arc::new(AtomicUsize::new(0));
    let q = quarantines.clone();
    let app = axum::Router::new()
        .route(
            "/files",
            get(|| async { axum::Json(serde_json::json!([])) }),
        )
        .route(
            "/files/{id}/content",
            get(|| async {
                proofpix_fixtures::jpeg(&JpegSpec {
                    width: 32,
                    height: 32,
                    seed: 3,
                    exif: Some(proofpix_fixtures::phone_photo(
                        3,
                        Gps {
                            lat: 48.8584,
                            lon: 2.2945,
                            alt: None,
                        },
                    )),
                    ..Default::default()
                })
            }),
        )
        .route(
            "/files/{id}/quarantine",
            post(
                move |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    q.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({"tombstone": format!("/quarantine/{id}")}))
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), quarantines)
}

/// Issue 17: every file row and the file page name the file as the platform does and link to
/// it, and the file page runs the plugin's actions. The plugin's `web-url` is hostile: a link
/// with markup in it becomes a normalised https link opening in a new tab without opener or
/// referrer, and a `javascript:` link is no link at all. An admin simulates quarantine (the
/// platform sees nothing), cancels the confirmation (nothing), then confirms (done once, in
/// the history); a viewer sees the actions without the buttons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_links_to_its_platform_and_its_page_simulates_then_applies_an_action() {
    use proofpix_store::{FileRecord, FileStatus, NewResult};
    use std::sync::atomic::Ordering;
    let daemon = Daemon::start("file-actions").await;
    let host = daemon.state.host();
    host.add_plugin(&std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2).expect("v2"))
        .await
        .expect("well-behaved 2.0.0");
    let (base, quarantines) = quarantine_platform().await;
    host.create_integration(
        IntegrationSpec {
            id: "wb".into(),
            plugin: "well-behaved".into(),
            config: [("base_url".to_string(), base.clone())]
                .into_iter()
                .collect(),
            secrets: [
                ("token".to_string(), proofpix_vault::Secret::new("t")),
                (
                    "signing_secret".to_string(),
                    proofpix_vault::Secret::new("s"),
                ),
            ]
            .into_iter()
            .collect(),
            grant: OperatorGrant {
                hosts: vec![base.clone()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        },
        "operator:test",
    )
    .await
    .expect("well-behaved integration");
    let hostile_link = "https://files.example/site visit.jpg?x=\"><img src=x onerror=alert(1)>";
    let seed = |id: &str, name: &str, web_url: &str| {
        let result = daemon
            .store
            .add_result(NewResult {
                integration: "wb".into(),
                remote_id: id.into(),
                file_version: "v1".into(),
                risk: proofpix_store::RiskLevel::Critical,
                score: 90,
                report_json: serde_json::json!({
                    "path": name, "format": "jpeg", "risk": "critical",
                    "findings": [{"category": "gps", "code": "gps.coordinates", "severity": "critical",
                                  "source": {"family": "exif", "group": "GPS", "tag": "0x0002", "name": "GPSLatitude"},
                                  "value": "48.86, 2.29"}],
                })
                .to_string(),
            })
            .expect("result");
        daemon
            .store
            .put_file(&FileRecord {
                integration: "wb".into(),
                remote_id: id.into(),
                version: "v1".into(),
                name: name.into(),
                content_hash: None,
                last_result: Some(result),
                status: FileStatus::Analysed,
                attempts: 1,
                last_error: None,
                updated_at: daemon.store.now(),
                web_url: Some(web_url.into()),
            })
            .expect("file");
    };
    seed("photo-1", "site visit.jpg", hostile_link);
    seed(
        "photo-2",
        "payload.jpg",
        "javascript:alert(document.cookie)",
    );

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("file-actions");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    page.click("nav a[data-nav='files']").await;
    page.wait_for(
        "both files in the inventory",
        "document.querySelectorAll('#files-table .filename').length === 2",
    )
    .await;
    let link = |sel: &str| {
        format!(
            "(() => {{ const a = document.querySelector({}); return a && [a.getAttribute('href'), a.target, a.rel]; }})()",
            js_str(sel)
        )
    };
    let expected = serde_json::json!([
        "https://files.example/site%20visit.jpg?x=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
        "_blank",
        "noopener noreferrer"
    ]);
    assert_eq!(
        page.eval(&link("#files-table a[data-platform-link='photo-1']"))
            .await,
        expected,
        "the row links to the file on its platform, normalised, in a new tab"
    );
    assert_eq!(
        page.count("#files-table a[data-platform-link='photo-2']")
            .await,
        0,
        "a javascript: link is no link"
    );
    let unsafe_links = "[...document.querySelectorAll('a[href]')].filter((a) => !/^(https?:|#|\\/)/i.test(a.getAttribute('href'))).map((a) => a.getAttribute('href'))";
    assert_eq!(
        page.eval(unsafe_links).await,
        serde_json::json!([]),
        "no link other than http(s), in-page or same-origin"
    );
    assert_eq!(
        page.count("#files-table img").await,
        0,
        "markup in a link is not markup"
    );
    shots.take(&page, "files-with-platform-links").await;

    // The file page: the name, a link to the platform, and the plugin's actions.
    page.click("#files-table a.filename[data-file='photo-1']")
        .await;
    page.wait_for(
        "the file's page with its actions",
        "document.querySelector('#page-title')?.textContent === 'site visit.jpg' && !!document.querySelector('#file-actions [data-simulate=\"quarantine\"]')",
    )
    .await;
    assert_eq!(page.eval(&link("#file-platform-link a")).await, expected);
    assert!(
        page.text("#file-platform-link")
            .await
            .contains("Open site visit.jpg in"),
        "the link says where it goes"
    );
    shots.take(&page, "file-page-actions").await;

    // Simulate: the plugin says what it would do; the platform is not called.
    page.click("#file-actions [data-simulate='quarantine']")
        .await;
    page.wait_for(
        "the simulation's result",
        "document.querySelector('#file-action-result')?.dataset.status === 'simulated'",
    )
    .await;
    assert!(
        page.text("#file-action-result")
            .await
            .contains("would move photo-1 to quarantine"),
        "{}",
        page.text("#file-action-result").await
    );
    assert_eq!(quarantines.load(Ordering::SeqCst), 0);
    assert_eq!(
        page.eval("document.activeElement?.id").await,
        serde_json::json!("file-action-result"),
        "focus moves to the result"
    );
    shots.take(&page, "simulated").await;

    // Apply asks first; Cancel does nothing.
    page.click("#file-actions [data-apply='quarantine']").await;
    page.wait_for(
        "the confirmation before acting",
        "document.querySelector('#dialog').open && document.querySelector('#dialog-body').textContent.includes('for site visit.jpg')",
    )
    .await;
    shots.take(&page, "confirm-apply").await;
    page.click("#dialog-body .dialog-actions button:not(.danger)")
        .await;
    page.wait_for(
        "the dialog to close",
        "!document.querySelector('#dialog').open",
    )
    .await;
    assert_eq!(
        quarantines.load(Ordering::SeqCst),
        0,
        "cancelled: nothing done"
    );

    page.click("#file-actions [data-apply='quarantine']").await;
    page.wait_for(
        "the confirmation again",
        "document.querySelector('#dialog').open",
    )
    .await;
    page.click("#dialog-body .dialog-actions button.danger")
        .await;
    page.wait_for(
        "the applied action, in the result and the history",
        "document.querySelector('#file-action-result')?.dataset.status === 'applied' && document.querySelector('#file-history')?.textContent.includes('done on the platform')",
    )
    .await;
    assert_eq!(quarantines.load(Ordering::SeqCst), 1);
    assert!(
        page.text("#file-action-result")
            .await
            .contains("/quarantine/photo-1"),
        "the tombstone is shown"
    );
    shots.take(&page, "applied").await;
    assert_no_problems(&page, "running a file's action");

    // The javascript: link is shown as no link at all.
    page.goto(&format!("{}#/files/wb/photo-2", daemon.base))
        .await;
    page.wait_for(
        "the other file's page",
        "document.querySelector('#page-title')?.textContent === 'payload.jpg'",
    )
    .await;
    assert_eq!(page.count("#file-platform-link a").await, 0);
    assert!(
        page.text("#file-platform-link")
            .await
            .contains("gave no link")
    );

    // A viewer sees the actions and their history, not the buttons.
    let viewer = daemon.token("file-viewer", "viewer");
    page.click("#sign-out").await;
    page.wait_for("the sign-in form", "!!document.querySelector('#sign-in')")
        .await;
    sign_in(&page, &daemon.base, &viewer).await;
    page.goto(&format!("{}#/files/wb/photo-1", daemon.base))
        .await;
    page.wait_for(
        "the file's page as a viewer",
        "!!document.querySelector('#file-actions') && !!document.querySelector('#file-actions-help')",
    )
    .await;
    assert_eq!(page.count("[data-simulate], [data-apply]").await, 0);
    assert!(
        page.text("#file-actions-help")
            .await
            .contains("Only an admin")
    );
    shots.take(&page, "viewer").await;
    assert_no_problems(&page, "a viewer on a file's page");
    daemon.stop().await;
}

// ----- trends, the compliance report and the accessibility audit (issue 17) -----------------

/// Waits until the overview's (or an integration's) trend pictures have been drawn and shown.
async fn wait_for_trends(page: &Page<'_>) {
    page.wait_for(
        "the three trend pictures, drawn",
        "document.querySelector('#trends')?.getAttribute('aria-busy') === 'false' && [...document.querySelectorAll('#trends figure[data-chart] img')].filter((i) => i.complete && i.naturalWidth > 0).length === 3",
    )
    .await;
}

/// Issue 17, overview: files by risk, throughput and run time per day as pictures the daemon
/// draws (SVG shown as images from `data:` addresses, so nothing in them runs), each with a
/// title and a description in words, and the numbers as a table; redrawn in the dark palette
/// when the theme changes; the same for one integration on its page, next to the report form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_charts_risk_throughput_and_run_time_by_day() {
    let daemon = Daemon::start("trends").await;
    daemon
        .folder_source(
            "site-photos",
            proofpix_fixtures::samples()
                .into_iter()
                .map(|(n, b)| (n.to_string(), b)),
        )
        .await;
    daemon
        .folder_source("field-team", proofpix_fixtures::photo_set(6))
        .await;
    daemon.sync_and_wait("site-photos").await;
    daemon.sync_and_wait("field-team").await;
    let runs = daemon.store.recent_batches(None, 10).expect("batches");
    let files: u64 = runs.iter().map(|b| b.total).sum();
    let analysed: u64 = runs.iter().flat_map(|b| b.by_risk.values()).sum();
    let high: u64 = runs
        .iter()
        .map(|b| b.by_risk.get("high").copied().unwrap_or(0))
        .sum();

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("trends");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    wait_for_trends(&page).await;
    let pictures = page
        .eval("[...document.querySelectorAll('#trends figure[data-chart]')].map((f) => ({chart: f.dataset.chart, src: f.querySelector('img').getAttribute('src').slice(0, 19), alt: f.querySelector('img').alt, caption: f.querySelector('figcaption').textContent}))")
        .await;
    let pictures = pictures.as_array().expect("pictures");
    let charts: Vec<&str> = pictures
        .iter()
        .map(|p| p["chart"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(charts, ["risk", "throughput", "duration"]);
    for p in pictures {
        assert_eq!(p["src"], "data:image/svg+xml;", "{p}");
        assert!(p["alt"].as_str().is_some_and(|a| !a.is_empty()), "{p}");
    }
    let risk_caption = pictures[0]["caption"].as_str().unwrap_or_default();
    assert!(
        risk_caption.starts_with(&format!(
            "{analysed} files analysed of every integration over 30 days"
        )) && risk_caption.contains(&format!("{high} high")),
        "the risk picture says its numbers in words: {risk_caption:?}"
    );
    // The table: today's row counts both runs and every file.
    page.click("#trends details summary").await;
    let today = page
        .eval("[...document.querySelectorAll('#trend-table tbody tr')][0].innerText")
        .await;
    let today = today.as_str().unwrap_or_default().to_string();
    let cells: Vec<&str> = today.split('\t').map(str::trim).collect();
    assert_eq!(cells.get(1), Some(&"2"), "two runs today: {cells:?}");
    assert_eq!(cells.get(3), Some(&files.to_string().as_str()), "{cells:?}");
    shots.take(&page, "overview-trends").await;

    // Dark mode redraws the pictures in the dark palette (the dark surface colour).
    page.click("#theme-toggle").await;
    page.wait_for(
        "the pictures in the dark palette",
        "[...document.querySelectorAll('#trends img')].every((i) => i.getAttribute('src').includes('%231a1e24'))",
    )
    .await;
    wait_for_trends(&page).await;
    shots.take(&page, "overview-trends-dark").await;
    page.click("#theme-toggle").await;

    // One integration's trends, on its page, with the report form.
    page.click("[data-integration='field-team'] h3 a").await;
    page.wait_for(
        "field-team's page",
        "document.querySelector('#page-title')?.textContent === 'field-team'",
    )
    .await;
    wait_for_trends(&page).await;
    let caption = page
        .text("#trends figure[data-chart='risk'] figcaption")
        .await;
    assert!(
        caption.starts_with("6 files analysed of field-team"),
        "{caption:?}"
    );
    assert_eq!(page.count("#report-form input[type=date]").await, 2);
    shots.take(&page, "integration-trends").await;

    // 390 px: the pictures shrink to the column, the page does not scroll sideways.
    page.viewport(390, 844, true).await;
    page.click("nav a[data-nav='overview']").await;
    wait_for_trends(&page).await;
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        serde_json::json!(true),
        "no sideways scrolling at 390 px"
    );
    shots.take(&page, "overview-trends-390").await;

    // The API refuses what it cannot answer, with a problem document.
    let statuses = page
        .eval("Promise.all(['/api/trends?days=0', '/api/trends?days=91', '/api/trends?integration=nope', '/api/trends?theme=blue', '/api/trends?days=7&theme=dark'].map((u) => fetch(u).then((r) => r.status)))")
        .await;
    assert_eq!(statuses, serde_json::json!([422, 422, 404, 400, 200]));
    assert_no_problems(&page, "showing the trends");
    daemon.stop().await;
}

/// Issue 17, reports: a viewer opens an integration's printable report for a period from its
/// page. It counts the period's files by risk, by privacy category and by state, draws files
/// per day by risk, lists the riskiest files (a hostile name shown as text, linked to its
/// page), the remediation actions from the audit trail and the audit chain's verification;
/// it runs no script and loads nothing (any CSP violation fails the test), and prints without
/// its toolbar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_prints_a_compliance_report_with_counts_top_risks_actions_and_the_chain() {
    let daemon = Daemon::start("report").await;
    let hostile = format!("{HOSTILE}.jpg");
    let gps_image = proofpix_fixtures::jpeg(&JpegSpec {
        width: 32,
        height: 32,
        seed: 5,
        exif: Some(Exif {
            artist: Some("Jane Roe".into()),
            gps: Some(Gps {
                lat: 48.858_37,
                lon: 2.294_48,
                alt: None,
            }),
            ..Exif::default()
        }),
        ..JpegSpec::default()
    });
    let mut files: Vec<(String, Vec<u8>)> = proofpix_fixtures::photo_set(4).collect();
    files.push((hostile.clone(), gps_image));
    daemon.folder_source("uploads", files).await;
    daemon.sync_and_wait("uploads").await;
    let batch = daemon
        .store
        .recent_batches(Some("uploads"), 1)
        .expect("batches")
        .remove(0);
    // Actions taken in the period, as the remediation stage audits them.
    for (action, outcome) in [
        ("remediation.quarantine", "ok"),
        ("remediation.restrict-sharing", "failed"),
    ] {
        daemon
            .store
            .audit(
                &proofpix_store::AuditEvent::new("system", action, "uploads")
                    .outcome(outcome)
                    .details(
                        serde_json::json!({"file": hostile, "status": "done", "detail": HOSTILE}),
                    ),
            )
            .expect("audit");
    }
    let viewer = daemon.token("auditor", "viewer");

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("report");
    sign_in(&page, &daemon.base, &viewer).await;
    page.goto(&format!("{}#/integrations/uploads", daemon.base))
        .await;
    page.wait_for(
        "the report form",
        "!!document.querySelector('#report-form')",
    )
    .await;
    shots.take(&page, "integration-report-form").await;
    page.click("#open-report").await;
    page.wait_for(
        "the report",
        "document.title.startsWith('Compliance report: uploads') && document.readyState === 'complete'",
    )
    .await;
    assert!(
        page.eval("location.pathname").await == "/api/integrations/uploads/report",
        "the form opened the report"
    );
    let headings = page
        .eval("[...document.querySelectorAll('h2')].map((h) => h.textContent)")
        .await;
    assert_eq!(
        headings,
        serde_json::json!([
            "Files analysed in the period",
            "Files analysed per day",
            "Top risks",
            "Actions taken",
            "Audit chain verification"
        ])
    );
    // Counts by risk add up to the run's analysed files; the GPS file counts under gps.
    let by_risk: u64 = serde_json::from_value::<Vec<String>>(
        page.eval("[...document.querySelectorAll('section:first-of-type table:first-of-type tbody td.n')].map((t) => t.textContent)")
            .await,
    )
    .expect("counts")
    .iter()
    .map(|n| n.parse::<u64>().expect("a count"))
    .sum();
    assert_eq!(by_risk, batch.ok);
    assert!(
        page.eval("[...document.querySelectorAll('td')].some((t) => t.textContent === 'gps')")
            .await
            == serde_json::json!(true),
        "the gps category is counted"
    );
    // The hostile name is text in the top risks, linked to its page in the dashboard.
    let top = page
        .eval("(() => { const a = [...document.querySelector('#top-title').parentElement.querySelectorAll('td.name a')].find((a) => a.textContent.startsWith('<img')); return a ? {text: a.textContent, href: a.getAttribute('href')} : null; })()")
        .await;
    assert_eq!(top["text"], serde_json::json!(hostile));
    assert!(
        top["href"]
            .as_str()
            .is_some_and(|h| h.starts_with("/#/files/uploads/%3Cimg")),
        "{top}"
    );
    assert_eq!(page.count("img").await, 0, "no element from a hostile name");
    assert_eq!(
        page.eval("window.__xss === undefined").await,
        serde_json::json!(true)
    );
    // Actions from the audit trail, counted by outcome and listed.
    let actions = page.text("#actions-title + p").await;
    assert!(
        actions.starts_with("1 sync in the period, 0 failed"),
        "{actions:?}"
    );
    let listed = page
        .eval("[...document.querySelectorAll('#actions-title ~ table tbody tr')].map((r) => r.innerText.split('\\t').slice(0, 3).join(' '))")
        .await;
    let listed: Vec<String> = serde_json::from_value(listed).expect("rows");
    assert!(
        listed.contains(&"remediation.quarantine ok 1".to_string())
            && listed.contains(&"remediation.restrict-sharing failed 1".to_string()),
        "{listed:?}"
    );
    let chain = page.text("#chain-title + p").await;
    assert!(chain.starts_with("audit chain intact"), "{chain:?}");
    assert_eq!(
        page.eval("document.querySelector('svg[role=img] title')?.textContent")
            .await,
        serde_json::json!("Files analysed per day by risk, of uploads")
    );
    shots.take(&page, "report").await;

    // Printed: no toolbar; the tables stay.
    page.cmd(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    )
    .await;
    assert_eq!(
        page.eval("getComputedStyle(document.querySelector('.toolbar')).display")
            .await,
        serde_json::json!("none")
    );
    shots.take(&page, "report-print").await;
    page.cmd(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": ""}),
    )
    .await;
    assert_no_problems(&page, "showing the report");

    // The file link leads back into the dashboard.
    // (A long name wraps; a person clicks its first line, so the link is followed by its href.)
    let href = top["href"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    page.goto(&format!("{}{href}", daemon.base)).await;
    page.wait_for(
        "the hostile file's page in the dashboard",
        &format!(
            "document.querySelector('#page-title')?.textContent === {}",
            js_str(&hostile)
        ),
    )
    .await;
    // A period the daemon cannot read is a problem document.
    let statuses = page
        .eval("Promise.all(['?from=2026-02-30', '?to=', '?from=2026-03-02&to=2026-03-01', '?from=2000-01-01&to=2026-01-01', '?to=2026-01-31'].map((q) => fetch('/api/integrations/uploads/report' + q).then((r) => r.status)).concat([fetch('/api/integrations/nope/report').then((r) => r.status)]))")
        .await;
    assert_eq!(statuses, serde_json::json!([422, 422, 422, 422, 200, 404]));
    assert_no_problems(&page, "following a report's link");
    daemon.stop().await;
}

/// `$PROOFPIX_AXE_CORE`, else `<target>/tools/axe/node_modules/axe-core/axe.min.js` (where
/// `./test` installs it). Missing axe-core fails the test and says how to get it: an audit
/// that silently does not run would pass for nothing.
fn axe_core_source() -> String {
    let path = std::env::var_os("PROOFPIX_AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            tmp.parent()
                .unwrap_or(tmp)
                .join("tools/axe/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}): run `./test --provision-only` (installs the pinned axe-core from npm into target/tools/axe), or set PROOFPIX_AXE_CORE to an axe.min.js",
            path.display()
        )
    })
}

/// The rules audited: WCAG 2.0 and 2.1, A and AA, and axe's best practices.
const AXE_TAGS: &str = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']";

/// Runs axe-core over the page as it is and returns its critical and serious violations, one
/// line each with the elements that fail (empty when there are none).
async fn axe_violations(page: &Page<'_>, axe: &str) -> Vec<String> {
    if page.eval("typeof window.axe").await != serde_json::json!("object") {
        // Through CDP, not `eval`: a failure must not print 600 KB of script.
        let r = page
            .cmd(
                "Runtime.evaluate",
                serde_json::json!({"expression": axe, "returnByValue": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "axe-core did not load: {}",
            r["exceptionDetails"]["text"]
        );
    }
    let found = page
        .eval(&format!(
            "axe.run(document, {{runOnly: {{type: 'tag', values: {AXE_TAGS}}}, resultTypes: ['violations']}}).then((r) => ({{rules: r.passes.length + r.violations.length + r.incomplete.length, violations: r.violations.filter((v) => v.impact === 'critical' || v.impact === 'serious').map((v) => `${{v.impact}} ${{v.id}}: ${{v.help}} (${{v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(' | ')}})`)}}))"
        ))
        .await;
    // An audit that checked nothing would pass for nothing.
    let rules = found["rules"].as_u64().unwrap_or(0);
    assert!(rules >= 20, "axe-core applied only {rules} rules: {found}");
    serde_json::from_value(found["violations"].clone()).expect("axe's violations")
}

/// Issue 17 item 8: every page of the dashboard, and the printable report, passes axe-core's
/// WCAG 2.1 AA and best-practice rules with no critical or serious violation, in the light and
/// the dark theme, at 1366 px and 390 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_axe_core_audit_light_and_dark_at_1366_and_390_px() {
    let axe = axe_core_source();
    let daemon = Daemon::start("axe").await;
    daemon
        .folder_source(
            "site-photos",
            proofpix_fixtures::samples()
                .into_iter()
                .map(|(n, b)| (n.to_string(), b)),
        )
        .await;
    daemon.sync_and_wait("site-photos").await;
    let batch = daemon.latest_batch("site-photos");
    let riskiest = daemon
        .store
        .inventory(&proofpix_store::InventoryQuery {
            sort: proofpix_store::InventorySort::Risk,
            descending: true,
            limit: 1,
            ..proofpix_store::InventoryQuery::default()
        })
        .expect("inventory")
        .rows
        .remove(0);
    let file_hash = format!(
        "#/files/site-photos/{}",
        js_encode_uri_component(&riskiest.remote_id)
    );

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    page.prefers_color_scheme("light").await;
    let mut shots = Shots::new("axe");
    sign_in(&page, &daemon.base, &daemon.admin_token).await;
    // The audit works: an image planted without a text alternative is a critical violation.
    page.eval("document.querySelector('main').append(Object.assign(document.createElement('img'), {src: 'data:,', id: 'planted'}))")
        .await;
    let planted = axe_violations(&page, &axe).await;
    assert!(
        planted
            .iter()
            .any(|v| v.starts_with("critical image-alt") && v.contains("#planted")),
        "axe-core reports the planted image: {planted:?}"
    );
    page.eval("document.querySelector('#planted').remove()")
        .await;
    // (name, address, the condition that says it has loaded)
    let pages: Vec<(&str, String, String)> = vec![
        ("overview", "#/".into(), "document.querySelector('#page-title')?.textContent === 'Integrations' && document.querySelector('#trends')?.getAttribute('aria-busy') === 'false' && document.querySelector('#integrations')?.getAttribute('aria-busy') === 'false'".into()),
        ("files", "#/files".into(), "document.querySelector('#page-title')?.textContent === 'Files' && document.querySelectorAll('main tbody tr').length > 0".into()),
        ("file", file_hash, format!("document.querySelector('#page-title')?.textContent === {} && !!document.querySelector('#findings-table, .findings')", js_str(&riskiest.name))),
        ("integration", "#/integrations/site-photos".into(), "document.querySelector('#page-title')?.textContent === 'site-photos' && document.querySelector('#trends')?.getAttribute('aria-busy') === 'false' && document.querySelector('#remediation')?.getAttribute('aria-busy') === 'false'".into()),
        ("batches", "#/batches".into(), "document.querySelector('#page-title')?.textContent === 'Batch history' && !!document.querySelector('#batch-table')".into()),
        ("batch", format!("#/batches/{batch}"), "(document.querySelector('#page-title')?.textContent || '').startsWith('Batch #') && !!document.querySelector('#file-table')".into()),
        ("audit", "#/audit".into(), "document.querySelector('#page-title')?.textContent === 'Audit trail' && document.querySelectorAll('main tbody tr').length > 0".into()),
        ("settings", "#/settings".into(), "document.querySelector('#page-title')?.textContent === 'Settings' && !!document.querySelector('#auto-sync')".into()),
        ("new", "#/new".into(), "document.querySelector('#page-title')?.textContent === 'Add an integration'".into()),
        ("setup", "#/new/local-folder".into(), "(document.querySelector('#page-title')?.textContent || '').startsWith('Set up')".into()),
    ];
    let report = format!("{}api/integrations/site-photos/report", daemon.base);
    let mut failures = Vec::new();
    for theme in ["light", "dark"] {
        for (width, height, mobile) in [(1366, 900, false), (390, 844, true)] {
            page.viewport(width, height, mobile).await;
            page.goto(&daemon.base).await;
            page.eval(&format!(
                "localStorage.setItem('proofpix-theme', '{theme}')"
            ))
            .await;
            page.reload().await;
            for (name, hash, ready) in &pages {
                page.eval(&format!("location.hash = {}", js_str(hash)))
                    .await;
                page.wait_for(&format!("the {name} page ({theme}, {width} px)"), ready)
                    .await;
                assert_eq!(
                    page.eval("document.documentElement.dataset.theme").await,
                    serde_json::json!(theme)
                );
                for v in axe_violations(&page, &axe).await {
                    failures.push(format!("{name} ({theme}, {width} px): {v}"));
                }
                if (theme, width) == ("light", 1366) || (theme, width) == ("dark", 390) {
                    shots.take(&page, &format!("{name}-{theme}-{width}")).await;
                }
            }
            // The report is one printable page, light whatever the theme.
            if theme == "light" {
                page.goto(&report).await;
                page.wait_for(
                    "the report",
                    "document.title.startsWith('Compliance report')",
                )
                .await;
                for v in axe_violations(&page, &axe).await {
                    failures.push(format!("report ({width} px): {v}"));
                }
                shots.take(&page, &format!("report-{width}")).await;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "axe-core found critical or serious violations:\n{}",
        failures.join("\n")
    );
    assert_no_problems(&page, "the accessibility audit");
    daemon.stop().await;
}

/// JavaScript's `encodeURIComponent`, for a dashboard address.
fn js_encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
