//! The Dropbox connector against the Dropbox emulator, through the host library: the host runs
//! the authorization-code flow (PKCE, `token_access_type=offline`) against the emulator and
//! refreshes the 4-hour tokens; the plugin runs in wasmtime; results land in redb.
//!
//! - `listing`: the folder listed four entries a page, only images, the saved cursor continued
//!   on the next run, `reset` mid-listing and on an expired cursor, deleted entries reported,
//!   malformed and truncated pages.
//! - `team`: a team member whose team space holds folders outside their home folder: the plugin
//!   reads `root_info` and sends `Dropbox-API-Path-Root` on every call, so those files are
//!   listed, downloaded, analysed and written back.
//! - `downloads`: `files/download` on the content host with the bearer token and an escaped
//!   `Dropbox-API-Arg` (a file named outside ASCII), Range reads, a token that expires.
//! - `writeback`: properties under the plugin's template or the operator's, per-file outcomes,
//!   a throttled write retried once after its Retry-After.
//! - `misconfig`: what `host.test` says for a missing folder, an unknown template, a template
//!   without the fields, and an integration not authorized yet.
//! - `workflows`: the seed's workflows 2 (with the Teams notifier), 3 and 4.
//!
//! Waits are short: the emulator's Retry-After is 1 s, the pipeline's back-off starts at 20 ms,
//! and token expiry is driven by the emulator's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proofpix_emulators::dropbox::files::{
    Chaos, DbxFault, DbxFile, DropboxEmulator, Expected, FileSpec, FilesConfig, Route, Server,
    TeamSpace,
};
use proofpix_emulators::dropbox::{self, fixtures, seed};
use proofpix_emulators::{Clock, Harness};
use proofpix_integration_tests::{host_options, loopback_grant, open_store, teams_notifier};
use proofpix_model::{FileResult, PluginError, RemoteFile, RiskLevel};
use proofpix_pipeline::{SyncMode, SyncReport};
use proofpix_service::{Host, IntegrationSpec, TestReport};
use proofpix_vault::Secret;

const ID: &str = "dbx";

// ---------------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    d: DropboxEmulator,
    _dir: tempfile::TempDir,
}

async fn env_with(config: FilesConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path());
    let host = Host::new(Arc::new(store), host_options(8))
        .await
        .expect("host");
    let d = dropbox::start_with_files(
        Default::default(),
        config,
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("dropbox emulator");
    Env { host, d, _dir: dir }
}

async fn env() -> Env {
    env_with(FilesConfig::default()).await
}

impl Env {
    fn db(&self) -> &dropbox::files::Dropbox {
        self.d.dropbox()
    }

    fn config(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut config: BTreeMap<String, String> = [
            ("app_key", fixtures::CLIENT_ID),
            ("folder", seed::PHOTOS),
            ("page_size", "4"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        config.insert("api_url".into(), self.d.api_url());
        config.insert("content_url".into(), self.d.content_url());
        config.insert("www_url".into(), self.d.www_url());
        for (k, v) in extra {
            config.insert((*k).to_string(), (*v).to_string());
        }
        config
    }

    /// Creates the integration; the operator has not authorized it yet.
    async fn create(&self, extra: &[(&str, &str)]) {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "app_secret".to_string(),
            Secret::new(fixtures::CLIENT_SECRET),
        );
        self.host
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "dropbox".into(),
                    config: self.config(extra),
                    secrets,
                    grant: loopback_grant(),
                    ..IntegrationSpec::default()
                },
                "operator:test",
            )
            .await
            .unwrap_or_else(|e| panic!("create integration: {e}"));
    }

    /// Creates the integration and authorizes it in the "browser".
    async fn integrate(&self, extra: &[(&str, &str)]) {
        self.create(extra).await;
        self.authorize().await;
    }

    /// The browser's part of the code flow: open the authorize URL, read the code off the
    /// redirect, hand it to the host.
    async fn authorize(&self) {
        let (plugin, ctx) = self.host.context(ID, false).await.expect("context");
        let record = self.host.integration(ID).expect("record");
        let creds = self
            .host
            .credentials(&record, &plugin, &ctx)
            .expect("credentials")
            .expect("an authorization-code integration has credentials");
        let redirect = url::Url::parse("http://127.0.0.1:9/oauth/callback").expect("url");
        let request = creds.0.begin_authorization(&redirect).expect("begin");
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let resp = browser
            .get(request.url.clone())
            .send()
            .await
            .expect("authorize");
        assert_eq!(resp.status(), 302);
        let location =
            url::Url::parse(resp.headers()["location"].to_str().expect("ascii")).expect("url");
        let q: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(q["state"], request.state);
        creds
            .0
            .complete_authorization(&q["state"], &Secret::new(q["code"].clone()))
            .await
            .expect("code exchange");
    }

    async fn sync(&self) -> SyncReport {
        self.host
            .sync(ID, SyncMode::Incremental)
            .await
            .unwrap_or_else(|e| panic!("sync: {e}"))
    }

    async fn test(&self) -> TestReport {
        self.host.test(ID).await
    }

    fn images(&self) -> Vec<DbxFile> {
        self.db().images_under(seed::PHOTOS)
    }

    /// The ProofPix property group of a file.
    fn props(&self, id: &str) -> BTreeMap<String, String> {
        let groups = self.db().properties(id);
        assert!(groups.len() <= 1, "{groups:?}");
        groups.into_values().next().unwrap_or_default()
    }
}

fn ids(report: &SyncReport) -> BTreeSet<String> {
    report.files.iter().map(|f| f.file.id.clone()).collect()
}

fn file_ids(files: &[DbxFile]) -> BTreeSet<String> {
    files.iter().map(|f| f.id.clone()).collect()
}

fn errors(report: &SyncReport) -> Vec<String> {
    report
        .files
        .iter()
        .filter_map(|f| f.error.clone())
        .collect()
}

fn step<'a>(report: &'a TestReport, name: &str) -> &'a proofpix_service::TestStep {
    report
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:?}"))
}

fn capitalised(word: &str) -> String {
    format!("{}{}", word[..1].to_uppercase(), &word[1..])
}

// ---------------------------------------------------------------------------------------------
// listing
// ---------------------------------------------------------------------------------------------

/// Eleven images under /Photos are listed four entries a page (with their folders and three
/// documents, six pages), each analysed once with the findings its bytes carry; /Other is not
/// listed.
#[tokio::test]
async fn every_image_of_the_folder_is_listed_over_many_pages_and_nothing_else() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    let images = env.images();
    assert_eq!(images.len(), 11);
    assert_eq!(ids(&report), file_ids(&images));
    assert_eq!(report.files.len(), images.len(), "each once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let pages: Vec<_> = env
        .db()
        .exchanges()
        .into_iter()
        .filter(|e| matches!(e.route, Route::ListFolder | Route::ListContinue))
        .collect();
    assert_eq!(pages.len(), 5, "20 entries, 4 a page");
    assert_eq!(pages[0].route, Route::ListFolder);
    let first: serde_json::Value = serde_json::from_slice(&pages[0].body).expect("json");
    assert_eq!(
        first,
        serde_json::json!({"path": "/Photos", "recursive": true, "include_deleted": false,
            "include_non_downloadable_files": false, "limit": 4})
    );
    for outcome in &report.files {
        let file = images
            .iter()
            .find(|f| f.id == outcome.file.id)
            .expect("an image");
        let analysed = outcome.report.as_ref().expect("analysed");
        let cats: BTreeSet<String> = analysed
            .findings
            .iter()
            .map(|f| format!("{:?}", f.category).to_lowercase())
            .collect();
        if file.expect.gps {
            assert!(
                cats.iter()
                    .any(|c| c.contains("location") || c.contains("gps")),
                "{}: {cats:?}",
                file.path
            );
        }
        if file.expect == Expected::default() {
            assert!(
                !cats
                    .iter()
                    .any(|c| c.contains("location") || c.contains("gps")),
                "{}",
                file.path
            );
        }
    }
}

/// The next run continues from the saved cursor: one `list_folder/continue`, no relisting; a
/// new and a deleted image show up, the deleted one in the page's `removed`.
#[tokio::test]
async fn the_next_run_continues_from_the_cursor_and_sees_new_and_deleted_files() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = first.files.len();
    env.db().clear_traffic();
    let again = env.sync().await;
    assert!(again.files.is_empty(), "{:?}", ids(&again));
    let routes: Vec<Route> = env.db().exchanges().iter().map(|e| e.route).collect();
    assert!(!routes.contains(&Route::ListFolder), "{routes:?}");
    assert_eq!(
        routes.iter().filter(|r| **r == Route::ListContinue).count(),
        3,
        "only the 11 files our property writes touched, four a page"
    );

    let gone = env
        .db()
        .file("/Photos/Marketing/banner-0.jpg")
        .expect("file");
    let (plugin, ctx) = env.host.context(ID, true).await.expect("context");
    let mut session = plugin.session(&ctx).await.expect("session");
    let cursor = {
        // The cursor the host saved after the second run.
        let page = session.discover(None).await.expect("full listing");
        let mut cursor = page.cursor;
        let mut more = page.more;
        while more {
            let p = session.discover(cursor.as_deref()).await.expect("page");
            cursor = p.cursor;
            more = p.more;
        }
        cursor
    };
    assert!(env.db().delete("/Photos/Marketing/banner-0.jpg"));
    let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec::default());
    let new_id = env.db().add_file(FileSpec::new(
        "/Photos/Marketing/new.jpg",
        bytes,
        Expected::default(),
    ));
    let page = session.discover(cursor.as_deref()).await.expect("changes");
    assert_eq!(page.removed, vec![gone.id.clone()]);
    assert_eq!(
        page.files.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
        vec![new_id.clone()]
    );
    drop(session);

    let third = env.sync().await;
    assert_eq!(ids(&third), BTreeSet::from([new_id]));
    assert_eq!(env.db().property_writes().len(), 1);
    assert_eq!(n, 11);
}

/// A `reset` on a continuation page in the middle of the first listing restarts it; files
/// already processed are skipped, so each is written once.
#[tokio::test]
async fn a_reset_mid_listing_restarts_it_and_writes_nothing_twice() {
    let env = env().await;
    env.integrate(&[]).await;
    env.db().inject(Route::ListContinue, DbxFault::Reset, 1);
    let report = env.sync().await;
    let resets = env
        .db()
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 409)
        .count();
    assert_eq!(resets, 1);
    let folder_calls = env
        .db()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::ListFolder)
        .count();
    assert_eq!(folder_calls, 2, "listed again from the start");
    assert_eq!(ids(&report), file_ids(&env.images()));
    let writes = env.db().writes_per_file();
    assert_eq!(writes.len(), env.images().len());
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
}

/// A cursor Dropbox forgot (`reset` on the next run) lists everything again; nothing is
/// analysed or written again.
#[tokio::test]
async fn an_expired_cursor_lists_everything_again_without_new_work() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    env.db().expire_cursors();
    let writes = env.db().property_writes().len();
    let second = env.sync().await;
    assert!(second.files.is_empty(), "{:?}", ids(&second));
    assert_eq!(second.unchanged as usize, first.files.len());
    assert_eq!(env.db().property_writes().len(), writes);
}

#[tokio::test]
async fn malformed_and_truncated_pages_are_retried_not_fatal() {
    let env = env().await;
    env.integrate(&[]).await;
    env.db().inject(Route::ListContinue, DbxFault::Malformed, 1);
    env.db().inject(Route::ListContinue, DbxFault::Truncated, 1);
    let report = env.sync().await;
    assert_eq!(report.files.len(), env.images().len());
    assert!(report.retries >= 2, "retries: {}", report.retries);
}

// ---------------------------------------------------------------------------------------------
// downloads
// ---------------------------------------------------------------------------------------------

/// Every download is a POST to the content host with the bearer token, no JSON content type,
/// a Range, and the file's id in `Dropbox-API-Arg` (printable ASCII); the file named outside
/// ASCII is read and analysed like the others. No request carrying the token goes anywhere
/// but the two Dropbox hosts (there is no pre-authenticated download host to protect: Dropbox
/// serves the bytes itself).
#[tokio::test]
async fn downloads_go_to_the_content_host_with_an_escaped_arg_and_ranges() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    let odd = env.db().file(seed::NON_ASCII_PHOTO).expect("file");
    let outcome = report
        .files
        .iter()
        .find(|f| f.file.id == odd.id)
        .expect("listed");
    assert_eq!(outcome.file.name, "Ångström 日本 😀.jpg");
    assert!(outcome.report.as_ref().expect("analysed").risk >= proofpix_analysis::RiskLevel::High);
    assert!(outcome.written_back);

    let exchanges = env.db().exchanges();
    let downloads: Vec<_> = exchanges
        .iter()
        .filter(|e| e.server == Server::Content)
        .collect();
    assert!(downloads.len() >= report.files.len());
    for e in &downloads {
        assert_eq!(e.method, "POST");
        assert!(
            e.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
        );
        assert_eq!(e.content_type, None);
        assert!(e.range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
        let arg = e.api_arg.as_deref().expect("Dropbox-API-Arg");
        assert!(arg.bytes().all(|b| (0x20..0x7f).contains(&b)), "{arg}");
        let v: serde_json::Value = serde_json::from_str(arg).expect("json");
        assert!(v["path"].as_str().is_some_and(|p| p.starts_with("id:")));
        assert_eq!(e.status, 206);
    }
    assert!(
        exchanges
            .iter()
            .all(|e| e.server == Server::Content || e.path != "/2/files/download"),
        "downloads never go to the API host"
    );
}

/// A 401 `expired_access_token` on a download refreshes the token and fetches again.
#[tokio::test]
async fn a_token_that_expires_before_a_download_is_renewed_and_the_file_fetched() {
    let env = env().await;
    env.integrate(&[]).await;
    env.db().inject(Route::Download, DbxFault::ExpiredToken, 1);
    let tokens = env.d.tokens().access_tokens_issued();
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(report.parked, 0);
    assert_eq!(report.files.len(), env.images().len());
    assert!(env.d.tokens().access_tokens_issued() > tokens);
    let token_grants: Vec<String> = env
        .d
        .log()
        .to_path(dropbox::TOKEN_PATH)
        .iter()
        .map(|r| r.form()["grant_type"].clone())
        .collect();
    assert_eq!(token_grants, ["authorization_code", "refresh_token"]);
}

// ---------------------------------------------------------------------------------------------
// write-back
// ---------------------------------------------------------------------------------------------

async fn discovered(host: &Host) -> (proofpix_runtime::Session, Vec<RemoteFile>) {
    let (plugin, ctx) = host.context(ID, true).await.expect("context");
    let mut session = plugin.session(&ctx).await.expect("session");
    let mut files = Vec::new();
    let mut cursor = None;
    loop {
        let page = session.discover(cursor.as_deref()).await.expect("page");
        files.extend(page.files);
        if !page.more {
            break;
        }
        cursor = page.cursor;
    }
    (session, files)
}

fn result_for(file: RemoteFile, i: usize) -> FileResult {
    FileResult {
        file,
        format: "jpeg".into(),
        risk: RiskLevel::High,
        score: 80,
        findings: Vec::new(),
        summary: format!(
            "GPS 48.1,11.5 (±10 m); owner J*** D**; #{i} {}",
            "x".repeat(2000)
        ),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "test".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// team spaces
// ---------------------------------------------------------------------------------------------

/// A team account: the team space's root holds `/Projects` and `/Site Photos` next to the
/// member's home folder `/Alice Smith`. Without `Dropbox-API-Path-Root`, `list_folder("")` sees
/// only the home folder (the emulator answers as Dropbox's Team Files guide describes). The
/// plugin reads `root_info`, sends the root namespace on list, continue, download and property
/// calls, and so lists, analyses and writes back the team folders' photos too.
#[tokio::test]
async fn a_team_space_is_listed_from_its_root_not_only_the_home_folder() {
    let photo = |path: &str, seed: u32| {
        let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 64,
            height: 48,
            seed,
            exif: Some(proofpix_fixtures::phone_photo(
                seed,
                proofpix_fixtures::Gps {
                    lat: 47.0,
                    lon: 8.0,
                    alt: None,
                },
            )),
            ..proofpix_fixtures::JpegSpec::default()
        });
        FileSpec::new(
            path,
            bytes,
            Expected {
                gps: true,
                person: true,
                serial: true,
            },
        )
    };
    let env = env_with(FilesConfig {
        population: vec![
            photo("/Alice Smith/Camera Uploads/home-1.jpg", 1),
            photo("/Projects/Bridge/survey-1.jpg", 2),
            photo("/Projects/Bridge/survey-2.jpg", 3),
            photo("/Site Photos/2026/crane.jpg", 4),
        ],
        team: Some(TeamSpace {
            home_path: "/Alice Smith".into(),
            root_namespace_id: "3235641".into(),
            home_namespace_id: "3235642".into(),
        }),
        ..FilesConfig::default()
    })
    .await;
    env.integrate(&[("folder", "")]).await;
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let all: Vec<DbxFile> = env
        .db()
        .files()
        .into_iter()
        .filter(|f| f.is_image)
        .collect();
    assert_eq!(all.len(), 4);
    assert_eq!(ids(&report), file_ids(&all), "the team folders' photos too");
    assert!(report.files.iter().all(|f| f.report.is_some()));
    assert!(report.files.iter().all(|f| f.written_back));
    assert_eq!(env.db().writes_per_file().len(), 4);

    let root = r#"{".tag":"root","root":"3235641"}"#;
    let exchanges = env.db().exchanges();
    for route in [Route::ListFolder, Route::Download] {
        let sent: Vec<_> = exchanges.iter().filter(|e| e.route == route).collect();
        assert!(!sent.is_empty(), "{route:?}");
        for e in sent {
            assert_eq!(e.path_root.as_deref(), Some(root), "{route:?} {}", e.path);
        }
    }
    // The next run continues under the same root and finds nothing new.
    let again = env.sync().await;
    assert!(again.files.is_empty(), "{:?}", ids(&again));
    assert!(
        env.db()
            .exchanges()
            .iter()
            .filter(|e| e.route == Route::ListContinue)
            .all(|e| e.path_root.as_deref() == Some(root))
    );
    let test = env.test().await;
    assert!(
        step(&test, "connection").detail.contains("team space"),
        "{test:?}"
    );
}

/// 30 results: the plugin creates its template once, a file deleted meanwhile gets its own
/// `not-found`, and a write throttled halfway fails the call with the Retry-After; the retry
/// writes only the rest. Every value fits Dropbox's 1024-byte limit; each file is written once.
#[tokio::test]
async fn properties_are_written_once_per_file_with_per_file_outcomes_and_throttling() {
    let env = env_with(FilesConfig {
        population: seed::photos(30, 32, 24),
        ..FilesConfig::default()
    })
    .await;
    env.integrate(&[("page_size", "2000")]).await;
    let (mut session, files) = discovered(&env.host).await;
    assert_eq!(files.len(), 30);
    let results: Vec<FileResult> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| result_for(f, i))
        .collect();
    let gone = results[3].file.id.clone();
    assert!(env.db().delete(&gone));
    // The first call creates the template (another route), then the 12th property write is
    // throttled.
    env.db().inject_after(
        Route::Properties,
        11,
        DbxFault::Throttle {
            retry_after_secs: 1,
        },
        1,
    );
    let from = env.db().exchanges().len();
    let err = session
        .write_back(&results[..25])
        .await
        .expect_err("throttled");
    match err.plugin_error() {
        Some(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(1000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    // 11 written, one of them the deleted file's not-found answer.
    assert_eq!(env.db().property_writes().len(), 10);
    let outcomes = session.write_back(&results[..25]).await.expect("retry");
    let rest = session.write_back(&results[25..]).await.expect("rest");
    assert_eq!(outcomes.len() + rest.len(), 30);
    for o in outcomes.iter().chain(&rest) {
        if o.file_id == gone {
            assert!(
                matches!(&o.outcome, Err(PluginError::NotFound(m)) if m.contains("no longer exists")),
                "{:?}",
                o.outcome
            );
        } else {
            assert!(o.outcome.is_ok(), "{}: {:?}", o.file_id, o.outcome);
        }
    }
    let writes = env.db().writes_per_file();
    assert_eq!(writes.len(), 29);
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    let templates = env.db().templates();
    assert_eq!(templates.len(), 1, "one template, created once");
    assert_eq!(templates[0].name, "ProofPix");
    let any = env.db().property_writes().pop().expect("a write");
    assert_eq!(any.route, "overwrite");
    assert_eq!(any.fields["risk"], "High");
    assert_eq!(any.fields["score"], "80");
    assert!(any.fields["findings"].len() <= 1024);
    assert!(any.fields["findings"].ends_with('…'));
    let throttles = env.db().exchanges()[from..]
        .iter()
        .filter(|e| e.status == 429)
        .count();
    assert_eq!(throttles, 1);
}

/// An operator's template id is verified by `test` and used for the writes.
#[tokio::test]
async fn an_operator_template_is_verified_and_written_under() {
    let env = env().await;
    let tid = env.db().add_template(
        "Privacy",
        &["risk", "score", "findings", "analysed_at", "extra"],
    );
    env.integrate(&[("template_id", &tid)]).await;
    let report = env.test().await;
    assert!(report.ok(), "{report:?}");
    assert!(
        step(&report, "connection").detail.contains(&tid),
        "{report:?}"
    );
    let sync = env.sync().await;
    assert!(sync.files.iter().all(|f| f.written_back));
    let writes = env.db().property_writes();
    assert!(writes.iter().all(|w| w.template_id == tid));
    assert_eq!(env.db().templates().len(), 1, "no template of our own");
}

// ---------------------------------------------------------------------------------------------
// misconfig
// ---------------------------------------------------------------------------------------------

async fn connection_problem(env: &Env, extra: &[(&str, &str)]) -> String {
    env.integrate(extra).await;
    let report = env.test().await;
    assert!(!report.ok(), "{report:?}");
    let s = step(&report, "connection");
    assert!(!s.ok);
    s.detail.clone()
}

#[tokio::test]
async fn a_missing_folder_says_how_to_write_one() {
    let env = env().await;
    let detail = connection_problem(&env, &[("folder", "/Fotos")]).await;
    assert!(detail.contains("folder"), "{detail}");
    assert!(detail.contains("/Fotos does not exist"), "{detail}");
    assert!(detail.contains("after /home"), "{detail}");
}

#[tokio::test]
async fn an_unknown_template_says_templates_belong_to_their_app() {
    let env = env().await;
    let detail = connection_problem(&env, &[("template_id", "ptid:1a5n2i6d3OYEAAAAAAAAAYa")]).await;
    assert!(detail.contains("template_id"), "{detail}");
    assert!(
        detail.contains("visible only to the app that created them"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_template_without_the_fields_names_them() {
    let env = env().await;
    let tid = env.db().add_template("Old", &["risk"]);
    let detail = connection_problem(&env, &[("template_id", &tid)]).await;
    assert!(detail.contains("score, findings, analysed_at"), "{detail}");
}

#[tokio::test]
async fn an_integration_not_authorized_yet_fails_the_credentials_step() {
    let env = env().await;
    env.create(&[]).await;
    let report = env.test().await;
    assert!(!report.ok());
    let s = step(&report, "credentials");
    assert!(!s.ok, "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------------------------

/// Workflow 2: configure, authorize (offline), test, scan, write back, announce, audit.
#[tokio::test]
async fn workflow_2_configure_authorize_test_scan_write_back_announce_and_audit() {
    let env = env().await;
    let teams = teams_notifier(&env.host, ID).await;

    env.integrate(&[]).await;
    let authorize = env.d.log().to_path(dropbox::AUTHORIZE_PATH);
    assert_eq!(authorize[0].query_params()["token_access_type"], "offline");
    assert_eq!(authorize[0].query_params()["code_challenge_method"], "S256");
    let test = env.test().await;
    assert!(test.ok(), "{test:?}");
    let names: Vec<&str> = test.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["configuration", "credentials", "grant", "connection"]
    );
    let connection = &step(&test, "connection").detail;
    assert!(connection.contains("Emulated Dropbox User"), "{connection}");
    assert!(connection.contains("folder: /Photos"), "{connection}");
    assert!(
        connection.contains("created on the first write-back"),
        "{connection}"
    );

    let report = env.sync().await;
    let images = env.images();
    assert_eq!(report.files.len(), images.len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let templates = env.db().templates();
    assert_eq!(templates.len(), 1);
    for outcome in &report.files {
        assert!(outcome.written_back, "{}", outcome.file.name);
        let analysed = outcome.report.as_ref().expect("analysed");
        let props = env.props(&outcome.file.id);
        assert_eq!(
            props["risk"],
            capitalised(analysed.risk.as_str()),
            "{}",
            outcome.file.name
        );
        assert_eq!(props["score"], analysed.score.to_string());
        let summary = proofpix_pipeline::file_result(&outcome.file, analysed, "").summary;
        if summary.is_empty() {
            assert_eq!(props["findings"], "No privacy findings");
        } else {
            assert!(summary.starts_with(props["findings"].trim_end_matches('…')));
        }
    }
    let high = report
        .files
        .iter()
        .filter(|f| {
            f.report
                .as_ref()
                .is_some_and(|r| r.risk >= proofpix_analysis::RiskLevel::High)
        })
        .count();
    assert!(high >= 8, "the seeded phone photos are high risk: {high}");
    // `check` now finds the template the write-back created.
    let again = env.test().await;
    assert!(
        step(&again, "connection").detail.contains(&templates[0].id),
        "{again:?}"
    );

    let posted = teams.posted();
    assert_eq!(posted.len(), 1, "one card on batch completion");
    let text = posted[0].all_text();
    assert!(text.contains(&format!("Scan finished: {ID}")), "{text}");

    let audit = env.host.store().audit_entries(0, 10_000).expect("audit");
    let position = |action: &str, target: &str| {
        audit
            .iter()
            .position(|e| e.action == action && e.target == target)
            .unwrap_or_else(|| panic!("no {action} on {target}"))
    };
    let created = position("integration.create", ID);
    let tested = position("integration.test", ID);
    let started = position("sync.started", ID);
    let completed = position("sync.completed", ID);
    let notified = position("notify.sent", "teams");
    assert!(created < tested && tested < started && started < completed && completed < notified);
    let mut secrets = env.d.harness().minted_secrets();
    secrets.push(fixtures::CLIENT_SECRET.into());
    for e in &audit {
        let line = format!("{} {} {} {}", e.action, e.target, e.outcome, e.details);
        for s in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "a secret in the audit trail: {}",
                e.action
            );
        }
    }
    assert!(
        env.host
            .store()
            .audit_verify()
            .expect("verify")
            .problem
            .is_none()
    );
}

/// Workflow 3: a re-run finds nothing new (our own property writes list the files again with
/// the same content hash); one changed file is analysed and written once.
#[tokio::test]
async fn workflow_3_a_rerun_finds_nothing_and_one_changed_file_is_analysed_and_written_once() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = env.images().len();
    assert_eq!(first.files.len(), n);
    assert_eq!(env.db().property_writes().len(), n);

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(
        again.unchanged as usize, n,
        "the property writes listed every file again, unchanged"
    );
    assert_eq!(env.db().property_writes().len(), n, "no new write-back");

    let target = env
        .db()
        .file("/Photos/Marketing/banner-1.jpg")
        .expect("file");
    let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 64,
        height: 48,
        seed: 999,
        exif: Some(proofpix_fixtures::phone_photo(
            999,
            proofpix_fixtures::Gps {
                lat: 48.85,
                lon: 2.35,
                alt: None,
            },
        )),
        ..proofpix_fixtures::JpegSpec::default()
    });
    assert!(env.db().replace_content(&target.id, bytes));
    let third = env.sync().await;
    assert_eq!(ids(&third), BTreeSet::from([target.id.clone()]));
    let writes = env.db().property_writes();
    assert_eq!(writes.len(), n + 1, "exactly one more write-back");
    let last = writes.last().expect("write");
    assert_eq!(last.file_id, target.id);
    let risk = third.files[0].report.as_ref().expect("analysed").risk;
    assert!(risk >= proofpix_analysis::RiskLevel::High, "{risk:?}");
    assert_eq!(last.fields["risk"], capitalised(risk.as_str()));

    let fourth = env.sync().await;
    assert!(fourth.files.is_empty());
}

/// Workflow 4: about a quarter of the requests fail (429 with Retry-After, 500, 502, 503),
/// every token expires mid-run on the emulator's clock, and one continuation page is answered
/// with `reset`. Every file is still processed and written exactly once, every Retry-After is
/// respected (from the emulator's record of real arrival times), and the batch reports what it
/// retried.
#[tokio::test]
async fn workflow_4_under_faults_every_file_is_processed_once_and_every_retry_after_is_respected() {
    let env = env().await;
    env.integrate(&[]).await;
    assert!(env.test().await.ok());
    let db = env.db();
    db.clear_traffic();
    let start = db.exchange_count();
    db.chaos(Some(Chaos::throttling_and_errors(36, 1, 0xC0FFEE)));
    db.reset_next_continue();
    // Mid-run, the account's clock passes every token's lifetime (4 h).
    db.advance_clock_at(start + 20, time::Duration::hours(5));
    let tokens_before = env.d.tokens().access_tokens_issued();

    let report = env.sync().await;
    db.chaos(None);

    let images = env.images();
    assert_eq!(ids(&report), file_ids(&images), "every file");
    assert_eq!(report.files.len(), images.len(), "exactly once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    assert_eq!(report.parked, 0);
    let writes = db.writes_per_file();
    assert_eq!(writes.len(), images.len());
    assert!(
        writes.values().all(|n| *n == 1),
        "one property write per file: {writes:?}"
    );
    assert!(
        env.d.tokens().access_tokens_issued() > tokens_before,
        "the expired token was renewed"
    );

    let exchanges = db.exchanges();
    let failed = exchanges.iter().filter(|e| e.status >= 400).count();
    let share = failed as f64 / exchanges.len() as f64;
    assert!(
        exchanges.iter().any(|e| e.status == 409),
        "a cursor was reset"
    );
    assert!(
        exchanges.iter().any(|e| e.status == 401),
        "requests met the expired token"
    );
    let follow_ups = db.retry_follow_ups();
    assert!(
        follow_ups.len() >= 3,
        "only {} Retry-After sent",
        follow_ups.len()
    );
    for f in &follow_ups {
        assert!(
            f.respected(),
            "{} {} came back after {:?}, Retry-After was {:?} s",
            f.throttled.method,
            f.throttled.path,
            f.waited(),
            f.throttled.retry_after_secs
        );
    }
    assert!(report.retries > 0);
    eprintln!(
        "workflow 4: {} exchanges, {failed} failed ({:.0}%), {} Retry-After checked, {} retries, {} files retried",
        exchanges.len(),
        share * 100.0,
        follow_ups.len(),
        report.retries,
        report.batch.retried
    );
    assert!(share >= 0.2, "failed share {share:.2}");
}
