//! The Google Drive connector against the Drive emulator, through the host library: real
//! wasmtime, real redb, and the host's own RS256 JWT bearer grant against the emulator's token
//! endpoint.
//!
//! - `listing`: My Drive and a shared drive enumerated over several `files.list` pages, only
//!   images outside the trash; one shared drive given by its address; the change feed on later
//!   runs with trashed and deleted files reported removed; a refused page token mid-listing and
//!   an expired change token both restart the listing without new work; malformed, truncated
//!   and 5xx pages retried.
//! - `listing` also: an `allDrives` search Drive calls incomplete (`incompleteSearch`) is redone
//!   corpus by corpus (`corpora=user`, then `corpora=drive` per shared drive from `drives.list`)
//!   before the change feed, so no shared drive's files are missed.
//! - `downloads`: `alt=media` on the API host with Range reads, and a `307` to the content host
//!   (`*.googleusercontent.com`, a second loopback server here) followed without the bearer
//!   token; a token expiring on download.
//! - `writeback`: every `appProperties` key and value within 124 bytes, per-file outcomes (a
//!   deleted file, a read-only one), a throttled update resent alone after its Retry-After.
//! - `misconfig`: what `host.test` says for a wrong key, an impersonation without delegation, an
//!   unknown shared drive; a URL with a path refused at setup.
//! - `workflows`: workflows 2 (with the Teams notifier and its emulator), 3 and 4.
//!
//! Waits are short: the emulator's Retry-After is 1 s, the pipeline's back-off starts at 20 ms,
//! and token expiry is driven by the emulator's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proofpix_analysis::Category;
use proofpix_emulators::google::drive::{
    self, Chaos, DriveConfig, DriveEmulator, DriveFault, DriveFile, Route, seed,
};
use proofpix_emulators::google::{self, fixtures};
use proofpix_emulators::{Clock, Harness, keys};
use proofpix_integration_tests::{host_options, loopback_grant, open_store, teams_notifier};
use proofpix_model::{FileResult, PluginError, RemoteFile, RiskLevel};
use proofpix_pipeline::{SyncMode, SyncReport};
use proofpix_service::{Host, IntegrationSpec, ServiceError, TestReport};
use proofpix_vault::Secret;

const ID: &str = "drive";

// ---------------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    g: DriveEmulator,
    _dir: tempfile::TempDir,
}

async fn env_with(config: DriveConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path());
    let host = Host::new(Arc::new(store), host_options(8))
        .await
        .expect("host");
    let g = google::start_with_drive(
        Default::default(),
        config,
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("drive emulator");
    Env { host, g, _dir: dir }
}

async fn env() -> Env {
    env_with(DriveConfig::default()).await
}

/// A service-account key file as the Cloud console downloads it.
fn key_file(private_key_pem: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "proofpix-emu",
        "private_key_id": fixtures::PRIVATE_KEY_ID,
        "private_key": private_key_pem,
        "client_email": fixtures::SERVICE_ACCOUNT,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

impl Env {
    fn drive(&self) -> &drive::Drive {
        self.g.drive()
    }

    fn config(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut config: BTreeMap<String, String> = BTreeMap::new();
        config.insert("api_url".into(), self.g.api_url());
        config.insert("token_url".into(), self.g.token_url());
        config.insert("page_size".into(), "4".into());
        config.insert("download_host".into(), self.g.content_url());
        for (k, v) in extra {
            config.insert((*k).to_string(), (*v).to_string());
        }
        config
    }

    async fn try_integrate_with(
        &self,
        extra: &[(&str, &str)],
        key: &str,
    ) -> Result<(), ServiceError> {
        let mut secrets = BTreeMap::new();
        secrets.insert("service_account_key".to_string(), Secret::new(key));
        self.host
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "google-drive".into(),
                    config: self.config(extra),
                    secrets,
                    grant: loopback_grant(),
                    ..IntegrationSpec::default()
                },
                "operator:test",
            )
            .await
            .map(|_| ())
    }

    async fn integrate(&self, extra: &[(&str, &str)]) {
        self.try_integrate_with(extra, &key_file(keys::PRIVATE_KEY_A_PEM))
            .await
            .unwrap_or_else(|e| panic!("create integration: {e}"));
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

    /// Images outside the trash.
    fn images(&self) -> Vec<DriveFile> {
        self.drive()
            .files()
            .into_iter()
            .filter(|f| f.is_image && !f.trashed)
            .collect()
    }

    /// Successful property writes per file id.
    fn writes_per_file(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for w in self.drive().property_writes() {
            *m.entry(w.file_id).or_default() += 1;
        }
        m
    }
}

fn ids(report: &SyncReport) -> BTreeSet<String> {
    report.files.iter().map(|f| f.file.id.clone()).collect()
}

fn file_ids(files: &[DriveFile]) -> BTreeSet<String> {
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

async fn session(host: &Host) -> proofpix_runtime::Session {
    let (plugin, ctx) = host.context(ID, true).await.expect("context");
    plugin.session(&ctx).await.expect("session")
}

/// Every page from `cursor` on: the files, the removals and the last cursor.
async fn discover_all(
    session: &mut proofpix_runtime::Session,
    mut cursor: Option<String>,
) -> (Vec<RemoteFile>, Vec<String>, Option<String>) {
    let mut files = Vec::new();
    let mut removed = Vec::new();
    loop {
        let page = session.discover(cursor.as_deref()).await.expect("page");
        files.extend(page.files);
        removed.extend(page.removed);
        cursor = page.cursor;
        if !page.more {
            return (files, removed, cursor);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// listing
// ---------------------------------------------------------------------------------------------

/// My Drive and the shared drive are enumerated four files a page; every image outside the
/// trash is analysed with the findings its bytes carry and written back, and the Google Doc,
/// PDF, CSV and the trashed photo are not listed.
#[tokio::test]
async fn every_image_of_my_drive_and_the_shared_drive_is_listed_over_many_pages_and_nothing_else() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    let images = env.images();
    assert_eq!(images.len(), 12);
    assert_eq!(ids(&report), file_ids(&images));
    assert_eq!(report.files.len(), images.len(), "each once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    let exchanges = env.drive().exchanges();
    let pages: Vec<_> = exchanges
        .iter()
        .filter(|e| e.route == Route::List)
        .collect();
    assert_eq!(pages.len(), 3, "four images a page");
    assert_eq!(report.pages as usize, pages.len());
    for p in &pages {
        assert!(
            p.query.contains("fields=") && p.query.contains("q=mimeType"),
            "{}",
            p.query
        );
    }
    assert_eq!(
        exchanges
            .iter()
            .filter(|e| e.route == Route::StartPageToken)
            .count(),
        1,
        "the start token is saved before listing"
    );

    for file in &images {
        let outcome = report
            .files
            .iter()
            .find(|f| f.file.id == file.id)
            .expect("listed");
        let found: BTreeSet<Category> = outcome
            .report
            .as_ref()
            .expect("analysed")
            .findings
            .iter()
            .map(|f| f.category)
            .collect();
        for (expected, category) in [
            (file.expect.gps, Category::Gps),
            (file.expect.person, Category::Owner),
            (file.expect.serial, Category::Serial),
        ] {
            assert_eq!(
                found.contains(&category),
                expected,
                "{}: {category:?} in {found:?}",
                file.name
            );
        }
    }
}

/// Drive answers the `allDrives` listing with `incompleteSearch: true` and without the second
/// shared drive's files. The plugin does not take that listing as complete: it lists My Drive
/// (`corpora=user`) and each shared drive from `drives.list` (`corpora=drive`) on its own before
/// it follows the change feed, so the second drive's photos are analysed on the first sync,
/// and `host.test` says the search was incomplete.
#[tokio::test]
async fn an_incomplete_all_drives_search_is_redone_drive_by_drive() {
    let mut corpus = seed::field_team();
    corpus.shared_drives.push(drive::SharedDriveSpec {
        name: "Surveyors".into(),
        files: (0..3)
            .map(|i| seed::photo(&format!("Bridges/bridge-{i}.jpg"), 700 + i, 70 + i))
            .collect(),
    });
    let env = env_with(DriveConfig {
        corpus,
        incomplete_all_drives: true,
        ..DriveConfig::default()
    })
    .await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let images = env.images();
    assert_eq!(images.len(), 15);
    let surveyors = env.drive().shared_drive_id("Surveyors").expect("drive");
    let missed_by_all_drives: BTreeSet<String> = file_ids(
        &images
            .iter()
            .filter(|f| f.drive_id.as_deref() == Some(surveyors.as_str()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(missed_by_all_drives.len(), 3);
    assert_eq!(
        ids(&report),
        file_ids(&images),
        "every image, the second drive's too"
    );
    assert!(report.files.iter().all(|f| f.report.is_some()));
    let lists: Vec<_> = env
        .drive()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::List)
        .collect();
    assert!(lists.iter().any(|e| e.query.contains("corpora=user")));
    assert!(
        lists.iter().any(|e| e.query.contains("corpora=drive")
            && e.query.contains(&format!("driveId={surveyors}")))
    );
    assert!(
        env.drive()
            .exchanges()
            .iter()
            .any(|e| e.route == Route::Drives && e.path == "/drive/v3/drives")
    );
    // The next sync follows the change feed: nothing new, nothing listed again.
    env.drive().clear_traffic();
    let again = env.sync().await;
    assert!(again.files.is_empty(), "{:?}", ids(&again));
    assert!(
        env.drive()
            .exchanges()
            .iter()
            .all(|e| e.route != Route::List)
    );
    let test = env.test().await;
    assert!(
        step(&test, "connection")
            .detail
            .contains("incompleteSearch"),
        "{test:?}"
    );
}

/// A shared drive given by the address a browser shows is listed alone.
#[tokio::test]
async fn one_shared_drive_given_by_its_address_is_listed_alone() {
    let env = env().await;
    let team = env
        .drive()
        .shared_drive_id(seed::FIELD_TEAM_DRIVE)
        .expect("drive");
    let address = format!("https://drive.google.com/drive/folders/{team}?usp=sharing");
    env.integrate(&[("shared_drive_id", &address)]).await;
    let report = env.sync().await;
    let want: BTreeSet<String> = file_ids(
        &env.images()
            .into_iter()
            .filter(|f| f.drive_id.as_deref() == Some(team.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(want.len(), 3);
    assert_eq!(ids(&report), want);
    let test = env.test().await;
    assert!(
        step(&test, "connection")
            .detail
            .contains(&format!("shared drive {} ({team})", seed::FIELD_TEAM_DRIVE)),
        "{test:?}"
    );
}

/// After the first enumeration the cursor is the change feed: a trashed and a deleted file come
/// back as removals, an edited one as a file with its new checksum, and nothing else.
#[tokio::test]
async fn later_runs_read_the_change_feed_with_trash_and_deletion_as_removals() {
    let env = env().await;
    env.integrate(&[]).await;
    let mut s = session(&env.host).await;
    let (files, removed, cursor) = discover_all(&mut s, None).await;
    assert_eq!(files.len(), 12);
    assert!(removed.is_empty());

    let banner = env.drive().file_named("banner-0.jpg").expect("file");
    let product = env.drive().file_named("product.jpg").expect("file");
    let photo = env.drive().file_named("IMG_2004.jpg").expect("file");
    assert!(env.drive().trash(&banner.id));
    assert!(env.drive().delete(&product.id));
    assert!(env.drive().replace_content(
        &photo.id,
        proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 32,
            height: 24,
            seed: 77,
            ..proofpix_fixtures::JpegSpec::default()
        })
    ));
    let lists = env
        .drive()
        .exchanges()
        .iter()
        .filter(|e| e.route == Route::List)
        .count();
    let (files, removed, next) = discover_all(&mut s, cursor.clone()).await;
    assert_eq!(
        files.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [photo.id.as_str()]
    );
    assert_ne!(files[0].version, format!("md5:{}", photo.md5));
    assert_eq!(
        removed.iter().collect::<BTreeSet<_>>(),
        [&banner.id, &product.id].into_iter().collect()
    );
    assert_ne!(next, cursor);
    assert_eq!(
        env.drive()
            .exchanges()
            .iter()
            .filter(|e| e.route == Route::List)
            .count(),
        lists,
        "no listing, only the change feed"
    );
    let (files, removed, _) = discover_all(&mut s, next).await;
    assert!(files.is_empty() && removed.is_empty());
}

/// The host acts on the removals: a trashed and a deleted file are marked removed in the store
/// (their results stay), the run counts them, and nothing else changes.
#[tokio::test]
async fn trashed_and_deleted_files_are_marked_removed_by_the_host() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    assert_eq!(first.removed, 0);
    let banner = env.drive().file_named("banner-0.jpg").expect("file");
    let product = env.drive().file_named("product.jpg").expect("file");
    assert!(env.drive().trash(&banner.id));
    assert!(env.drive().delete(&product.id));
    let report = env.sync().await;
    assert_eq!(report.removed, 2);
    assert!(report.files.is_empty(), "nothing to analyse");
    let store = env.host.store();
    for id in [&banner.id, &product.id] {
        let f = store.file(ID, id).unwrap().expect("still known");
        assert_eq!(f.status, proofpix_store::FileStatus::Removed);
        assert!(f.last_result.is_some(), "its result stays");
    }
    let others = store
        .files(ID, None, 100)
        .unwrap()
        .into_iter()
        .filter(|f| f.status == proofpix_store::FileStatus::Removed)
        .count();
    assert_eq!(others, 2, "only those two");
    assert_eq!(env.sync().await.removed, 0, "marked once");
}

/// A page token Drive refuses in the middle of the first enumeration restarts the listing from
/// a fresh start token; files already processed are skipped, so each is written once.
#[tokio::test]
async fn a_refused_page_token_mid_listing_restarts_it_and_writes_nothing_twice() {
    let env = env().await;
    env.integrate(&[]).await;
    env.drive()
        .inject_on_continuation(Route::List, DriveFault::InvalidPageToken, 1);
    let report = env.sync().await;
    let refused: Vec<_> = env
        .drive()
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 400)
        .collect();
    assert_eq!(refused.len(), 1, "one page token was refused");
    assert_eq!(ids(&report), file_ids(&env.images()));
    assert!(
        report.unchanged > 0,
        "the restart listed processed files again"
    );
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), env.images().len());
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
}

/// A change token Drive no longer accepts (on the next run) starts over; nothing is analysed
/// or written again.
#[tokio::test]
async fn an_expired_change_token_lists_everything_again_without_new_work() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    env.drive().expire_page_tokens();
    let writes = env.drive().property_writes().len();
    let second = env.sync().await;
    assert!(second.files.is_empty(), "{:?}", ids(&second));
    assert_eq!(second.unchanged as usize, first.files.len());
    assert_eq!(env.drive().property_writes().len(), writes);
    let after: Vec<_> = env
        .drive()
        .exchanges()
        .into_iter()
        .skip_while(|e| e.status != 400)
        .collect();
    assert!(after.first().is_some_and(|e| e.route == Route::Changes));
    assert!(after.iter().any(|e| e.route == Route::List), "listed again");
}

/// A malformed page, a truncated one, and a 502 HTML page fail that page only; the run retries
/// it and completes.
#[tokio::test]
async fn malformed_truncated_and_5xx_pages_are_retried_not_fatal() {
    let env = env().await;
    env.integrate(&[]).await;
    env.drive().inject(Route::List, DriveFault::Malformed, 1);
    env.drive().inject(Route::List, DriveFault::Truncated, 1);
    env.drive()
        .inject(Route::List, DriveFault::ServerError(502), 1);
    let report = env.sync().await;
    assert_eq!(report.files.len(), env.images().len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.retries >= 3, "retries: {}", report.retries);
}

// ---------------------------------------------------------------------------------------------
// downloads
// ---------------------------------------------------------------------------------------------

/// Drive serves `alt=media` itself, by Range, with the bearer token; there is no redirect to a
/// pre-authenticated host, and the token goes nowhere but the API host.
#[tokio::test]
async fn downloads_are_range_reads_of_alt_media_on_the_api_host() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    assert!(!report.files.is_empty());
    let media: Vec<_> = env
        .drive()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::Media)
        .collect();
    assert!(media.len() >= report.files.len());
    for m in &media {
        assert!(m.query.contains("alt=media") && m.query.contains("supportsAllDrives=true"));
        assert!(
            m.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer ya29."))
        );
        assert!(m.range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
        assert_eq!(m.status, 206);
    }
    // Every request that reached the emulator was to its one host; no redirect was answered.
    assert!(
        env.drive()
            .exchanges()
            .iter()
            .all(|e| !(300..400).contains(&e.status))
    );
}

/// Drive may answer `alt=media` with `307` to a content host on `*.googleusercontent.com`. The
/// plugin declares that host as an endpoint without credentials: every image is fetched from
/// there by Range and analysed, and the bearer token never reaches it.
#[tokio::test]
async fn a_307_to_the_content_host_is_followed_without_the_bearer_token() {
    let env = env_with(DriveConfig {
        media_redirect: true,
        ..DriveConfig::default()
    })
    .await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(report.parked, 0);
    assert_eq!(ids(&report), file_ids(&env.images()));
    assert!(report.files.iter().all(|f| f.report.is_some()));
    let gps = report
        .files
        .iter()
        .filter(|f| {
            f.report
                .as_ref()
                .is_some_and(|r| r.findings.iter().any(|x| x.category == Category::Gps))
        })
        .count();
    assert_eq!(
        gps,
        env.images().iter().filter(|f| f.expect.gps).count(),
        "the bytes analysed are the files' own"
    );
    let exchanges = env.drive().exchanges();
    let media: Vec<_> = exchanges
        .iter()
        .filter(|e| e.route == Route::Media)
        .collect();
    let content: Vec<_> = exchanges
        .iter()
        .filter(|e| e.route == Route::Content)
        .collect();
    assert!(media.len() >= report.files.len());
    assert!(media.iter().all(|m| {
        m.status == 307
            && m.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
    }));
    assert!(content.len() >= report.files.len());
    for c in &content {
        assert_eq!(c.authorization, None, "{} got credentials", c.path);
        assert!(c.range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
        assert_eq!(c.status, 206);
    }
    let minted = env.g.harness().minted_secrets();
    for r in env.g.log().all() {
        if r.path.starts_with(drive::CONTENT_PATH) {
            assert!(r.header("authorization").is_none());
            assert!(!minted.iter().any(|t| r.mentions(t)));
        }
    }
}

/// A 401 on a download (the token expired between listing and download) renews the token and
/// fetches again, instead of parking the file.
#[tokio::test]
async fn a_token_that_expires_before_a_download_is_renewed_and_the_file_fetched() {
    let env = env().await;
    env.integrate(&[]).await;
    env.drive()
        .inject(Route::Media, DriveFault::ExpiredToken, 1);
    let tokens = env.g.tokens().access_tokens_issued();
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(report.parked, 0);
    assert_eq!(report.files.len(), env.images().len());
    assert!(env.g.tokens().access_tokens_issued() > tokens);
}

// ---------------------------------------------------------------------------------------------
// write-back
// ---------------------------------------------------------------------------------------------

fn result_for(file: RemoteFile, i: usize) -> FileResult {
    FileResult {
        file,
        format: "jpeg".into(),
        risk: RiskLevel::High,
        score: 80,
        findings: Vec::new(),
        summary: format!(
            "GPS 47.37,8.54 (±10 m); owner J*** D**; camera serial SN-4000{i:04}; taken 2026-01-1{} 09:4{}; make Acme Phone {}",
            i % 10,
            i % 10,
            i % 7
        ),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "test".into(),
    }
}

/// Twelve results: one file was deleted, one may only be read, and Drive throttles the fourth
/// update with 403 `userRateLimitExceeded` and Retry-After. The call fails with that delay; the
/// retry sends only what is left. Every property fits 124 bytes and each file is written once.
#[tokio::test]
async fn app_properties_fit_drives_limits_and_failures_map_to_their_files() {
    let env = env_with(DriveConfig {
        corpus: seed::photos(12, 32, 24),
        ..DriveConfig::default()
    })
    .await;
    env.integrate(&[("page_size", "100")]).await;
    let mut s = session(&env.host).await;
    let (files, _, _) = discover_all(&mut s, None).await;
    assert_eq!(files.len(), 12);
    let results: Vec<FileResult> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| result_for(f, i))
        .collect();
    let gone = results[1].file.id.clone();
    let read_only = results[7].file.id.clone();
    assert!(env.drive().delete(&gone));
    env.drive().set_can_edit(&read_only, false);
    let patches = |env: &Env| {
        env.drive()
            .exchanges()
            .iter()
            .filter(|e| e.route == Route::Patch)
            .count()
    };
    env.drive().inject_after(
        Route::Patch,
        3,
        DriveFault::Throttle {
            status: 403,
            retry_after_secs: Some(1),
        },
        1,
    );
    let err = s.write_back(&results).await.expect_err("throttled");
    match err.plugin_error() {
        Some(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(1000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(patches(&env), 4, "nothing after the throttled update");
    let outcomes = s.write_back(&results).await.expect("retry");
    assert_eq!(patches(&env) - 4, 9, "only the updates left are sent again");
    assert_eq!(outcomes.len(), 12);
    for o in &outcomes {
        if o.file_id == gone {
            assert!(
                matches!(&o.outcome, Err(PluginError::NotFound(m)) if m.contains("no longer exists")),
                "{:?}",
                o.outcome
            );
        } else if o.file_id == read_only {
            assert!(
                matches!(&o.outcome, Err(PluginError::Fatal(m)) if m.contains("edit access")),
                "{:?}",
                o.outcome
            );
        } else {
            assert!(o.outcome.is_ok(), "{}: {:?}", o.file_id, o.outcome);
        }
    }
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), 10);
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    for w in env.drive().property_writes() {
        assert_eq!(w.sent.len(), 4);
        for (k, v) in &w.sent {
            let v = v.as_deref().expect("a value");
            assert!(k.len() + v.len() <= drive::MAX_PROPERTY_BYTES, "{k}={v}");
        }
        assert_eq!(w.sent["proofpixRisk"].as_deref(), Some("High"));
        assert_eq!(w.sent["proofpixScore"].as_deref(), Some("80"));
        assert!(
            w.sent["proofpixFindings"]
                .as_deref()
                .is_some_and(|f| f.ends_with('…')),
            "the summary was cut to fit"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// misconfig
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_working_configuration_passes_every_test_step() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.test().await;
    assert!(report.ok(), "{report:?}");
    let connection = &step(&report, "connection").detail;
    for want in [
        format!("connected as {}", fixtures::SERVICE_ACCOUNT),
        "scanning My Drive and every shared drive the account is a member of".into(),
        "images visible".into(),
        "proofpixRisk".into(),
    ] {
        assert!(connection.contains(&want), "{want} in {connection}");
    }
}

#[tokio::test]
async fn a_key_google_does_not_know_fails_the_credentials_step_without_quoting_it() {
    let env = env().await;
    env.try_integrate_with(&[], &key_file(keys::PRIVATE_KEY_B_PEM))
        .await
        .expect("stored");
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok);
    assert!(
        s.detail
            .contains("signature does not match the service account's keys"),
        "{}",
        s.detail
    );
    assert!(!s.detail.contains("PRIVATE KEY"), "no key in messages");
}

#[tokio::test]
async fn impersonating_a_user_without_delegation_fails_the_credentials_step() {
    let env = env().await;
    env.integrate(&[("impersonate_user", "intern@proofpix.example")])
        .await;
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok, "{report:?}");
    assert!(s.detail.contains("Domain-wide delegation"), "{}", s.detail);
    // The user the account may act for works, and the token acts for that user.
    let env = self::env().await;
    env.integrate(&[("impersonate_user", fixtures::DELEGATED_USER)])
        .await;
    let report = env.test().await;
    assert!(report.ok(), "{report:?}");
    assert!(
        step(&report, "connection")
            .detail
            .contains(&format!("connected as {}", fixtures::DELEGATED_USER))
    );
}

#[tokio::test]
async fn an_unknown_shared_drive_names_the_field_and_how_to_join_it() {
    let env = env().await;
    env.integrate(&[("shared_drive_id", "0ANoSuchSharedDrive")])
        .await;
    let report = env.test().await;
    let s = step(&report, "connection");
    assert!(!s.ok);
    assert!(
        s.detail
            .contains("sees no shared drive with id 0ANoSuchSharedDrive"),
        "{}",
        s.detail
    );
    assert!(s.detail.contains("Manage members"), "{}", s.detail);
}

#[tokio::test]
async fn an_api_url_with_a_path_or_a_bad_shared_drive_is_refused_at_setup() {
    let env = env().await;
    let key = key_file(keys::PRIVATE_KEY_A_PEM);
    let err = env
        .try_integrate_with(
            &[("api_url", &format!("{}/drive/v3", env.g.api_url()))],
            &key,
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("without a path"), "{err}");
    let err = env
        .try_integrate_with(&[("shared_drive_id", "Field Team")], &key)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("drive/folders/<id>"), "{err}");
}

#[tokio::test]
async fn a_file_the_account_may_only_read_fails_its_write_back_with_what_to_share() {
    let env = env().await;
    env.integrate(&[]).await;
    let target = env.drive().file_named("IMG_2003.jpg").expect("file");
    env.drive().set_can_edit(&target.id, false);
    let report = env.sync().await;
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("write-back failed") && errs[0].contains("edit access"),
        "{errs:?}"
    );
    assert_eq!(env.writes_per_file().len(), env.images().len() - 1);
}

// ---------------------------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------------------------

/// Workflow 2: configure with a service-account key → `host.test` → enumerate the Drive →
/// batch-analyse every image → app properties set in the emulator → a Teams message on batch
/// completion → an audit trail with every step, and no secret in it.
#[tokio::test]
async fn workflow_2_configure_test_scan_write_back_announce_and_audit() {
    let env = env().await;
    let teams = teams_notifier(&env.host, ID).await;

    env.integrate(&[]).await;
    let test = env.test().await;
    assert!(test.ok(), "{test:?}");
    let names: Vec<&str> = test.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["configuration", "credentials", "grant", "connection"]
    );

    let report = env.sync().await;
    let images = env.images();
    assert_eq!(report.files.len(), images.len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    for outcome in &report.files {
        assert!(outcome.written_back, "{}", outcome.file.name);
        let analysed = outcome.report.as_ref().expect("analysed");
        let props = env.drive().app_properties(&outcome.file.id).expect("file");
        let word = analysed.risk.as_str();
        let capitalised = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
        assert_eq!(props["proofpixRisk"], capitalised, "{}", outcome.file.name);
        assert_eq!(props["proofpixScore"], analysed.score.to_string());
        let summary = proofpix_pipeline::file_result(&outcome.file, analysed, "").summary;
        let written = &props["proofpixFindings"];
        if summary.is_empty() {
            assert_eq!(written, "No privacy findings");
        } else {
            assert!(
                summary.starts_with(written.trim_end_matches('…')),
                "{written} / {summary}"
            );
        }
        assert!(props.contains_key("proofpixAnalysedAt"));
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
    assert!(high >= 9, "the seeded phone photos are high risk: {high}");

    let posted = teams.posted();
    assert_eq!(posted.len(), 1, "one card on batch completion");
    let text = posted[0].all_text();
    assert!(text.contains(&format!("Scan finished: {ID}")), "{text}");
    assert!(text.contains(&images.len().to_string()), "{text}");

    let audit = env.host.store().audit_entries(0, 10_000).expect("audit");
    let position = |action: &str, target: &str| {
        audit
            .iter()
            .position(|e| e.action == action && e.target == target)
            .unwrap_or_else(|| panic!("no {action} on {target}"))
    };
    let created = position("integration.create", ID);
    let secret = position("secret.set", &format!("{ID}/service_account_key"));
    let tested = position("integration.test", ID);
    let started = position("sync.started", ID);
    let completed = position("sync.completed", ID);
    let notified = position("notify.sent", "teams");
    assert!(
        created < secret
            && secret < tested
            && tested < started
            && started < completed
            && completed < notified
    );
    assert_eq!(audit[tested].outcome, "ok");
    assert_eq!(audit[completed].outcome, "ok");
    let details: serde_json::Value = serde_json::from_str(&audit[completed].details).expect("json");
    assert_eq!(details["total"], images.len());
    assert_eq!(details["errors"], 0);
    let mut secrets: Vec<String> = env.g.harness().minted_secrets();
    secrets.push("BEGIN PRIVATE KEY".into());
    secrets.push(proofpix_emulators::teams::fixtures::WORKFLOW_SIG.into());
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
    let verified = env.host.store().audit_verify().expect("verify");
    assert!(verified.problem.is_none(), "{:?}", verified.problem);
}

/// Workflow 3: a re-run finds nothing new (our own property writes show in the change feed but
/// carry the same checksum); changing one file yields exactly one new analysis and one
/// write-back.
#[tokio::test]
async fn workflow_3_a_rerun_finds_nothing_and_one_changed_file_is_analysed_and_written_once() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = env.images().len();
    assert_eq!(first.files.len(), n);
    assert_eq!(env.drive().property_writes().len(), n);

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(
        again.unchanged as usize, n,
        "the property writes listed every file again, unchanged"
    );
    assert_eq!(env.drive().property_writes().len(), n, "no new write-back");

    let target = env.drive().file_named("banner-1.jpg").expect("file");
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
    assert!(env.drive().replace_content(&target.id, bytes));
    let third = env.sync().await;
    assert_eq!(ids(&third), [target.id.clone()].into_iter().collect());
    let writes = env.drive().property_writes();
    assert_eq!(writes.len(), n + 1, "exactly one more write-back");
    let last = writes.last().expect("write");
    assert_eq!(last.file_id, target.id);
    let risk = third.files[0].report.as_ref().expect("analysed").risk;
    assert!(
        risk >= proofpix_analysis::RiskLevel::High,
        "the new bytes carry GPS: {risk:?}"
    );
    let fourth = env.sync().await;
    assert!(fourth.files.is_empty());
}

/// Workflow 4: a third or so of the requests fail (429 and 403 `userRateLimitExceeded` with
/// Retry-After, 500, 503), every token expires mid-run on the emulator's clock, and one listing
/// page token is refused. Chaos faults each request key at most once, so the run ends. Every
/// file is still processed and written exactly once, every Retry-After is respected (from the
/// emulator's record of real arrival times), and the batch reports what it retried.
#[tokio::test]
async fn workflow_4_under_faults_every_file_is_processed_once_and_every_retry_after_is_respected() {
    let env = env().await;
    env.integrate(&[]).await;
    assert!(env.test().await.ok());
    let d = env.drive();
    d.clear_traffic();
    let start = d.exchange_count();
    d.chaos(Some(Chaos::throttling_and_errors(36, 1, 0xC0FFEE)));
    d.inject_on_continuation(Route::List, DriveFault::InvalidPageToken, 1);
    // Mid-run, the clock passes every token's lifetime (3599 s). By 61 minutes, not more: the
    // host signs its assertions on the system clock, and Google refuses an assertion whose
    // `exp` is already past on its own clock.
    d.advance_clock_at(start + 25, time::Duration::minutes(61));
    let tokens_before = env.g.tokens().access_tokens_issued();

    let report = env.sync().await;
    d.chaos(None);

    let images = env.images();
    assert_eq!(ids(&report), file_ids(&images), "every file");
    assert_eq!(report.files.len(), images.len(), "exactly once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    assert_eq!(report.parked, 0);
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), images.len());
    assert!(
        writes.values().all(|n| *n == 1),
        "one property write per file: {writes:?}"
    );
    assert!(
        env.g.tokens().access_tokens_issued() > tokens_before,
        "the expired token was renewed"
    );

    let exchanges = d.exchanges();
    let failed = exchanges.iter().filter(|e| e.status >= 400).count();
    let share = failed as f64 / exchanges.len() as f64;
    assert!(
        exchanges.iter().any(|e| e.status == 401),
        "requests met the expired token"
    );
    assert!(
        exchanges
            .iter()
            .any(|e| e.status == 403 && e.fault.is_some()),
        "Drive's 403 quota answer was among the faults"
    );
    let follow_ups = d.retry_follow_ups();
    assert!(
        follow_ups.len() >= 3,
        "only {} Retry-After sent",
        follow_ups.len()
    );
    for f in &follow_ups {
        assert!(
            f.next.is_some(),
            "{} {} was never retried",
            f.throttled.method,
            f.throttled.path
        );
        assert!(
            f.respected(),
            "{} {} came back after {:?}, Retry-After was {:?} s",
            f.throttled.method,
            f.throttled.key,
            f.waited(),
            f.throttled.retry_after_secs
        );
    }
    assert!(report.retries > 0, "the report counts retries");
    assert!(report.batch.retried > 0, "the batch records files retried");
    eprintln!(
        "workflow 4: {} exchanges, {failed} failed ({:.0}%), {} Retry-After checked, {} retries, {} files retried",
        exchanges.len(),
        share * 100.0,
        follow_ups.len(),
        report.retries,
        report.batch.retried
    );
    assert!(share >= 0.22, "failed share {share:.2}");
}
