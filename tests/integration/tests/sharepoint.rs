//! The SharePoint connector against the Graph emulator, through the host library.
//!
//! - `listing`: a library enumerated over several delta pages, only images, two libraries and two
//!   sites, a second run reading the deltaLink only, 410 resync mid-enumeration and on an expired
//!   deltaLink, malformed and truncated pages.
//! - `downloads`: the bearer token never reaches the download host (proved from the emulator's
//!   record of what each host received), Range reads, a token that expires on `/content`.
//! - `writeback`: `$batch` in chunks of 20, per-request outcomes mapped to files, throttled
//!   sub-requests retried once each after their Retry-After.
//! - `misconfig`: what `host.test` says for an unknown site or library, a missing column, a
//!   missing permission, a wrong secret and a multi-tenant alias.
//! - `workflows`: the seed's workflows 2 (with the Teams notifier and its emulator), 3 and 4;
//!   workflow 3 again with neither content hash nor cTag (only the eTag, which our write moves).
//! - `remediation`: replace-with-sanitised through Graph's `PUT .../content`: every high-risk
//!   image replaced once by a copy that analyses clean, the others untouched, nothing uploaded
//!   in a simulation, a throttled upload retried on the next sync.
//!
//! Waits are short: the emulator's Retry-After is 1 s, the pipeline's back-off starts at 20 ms,
//! token expiry is driven by the emulator's clock, and a remediation's Retry-After by the
//! store's (which the test moves forward rather than sleeping).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proofpix_analysis::{
    Analyzer, Category, Options as AnalysisOptions, Policy as AnalysisPolicy,
    RiskLevel as AnalysisRisk,
};
use proofpix_emulators::microsoft::graph::{
    self, AppPermission, Chaos, GraphConfig, GraphEmulator, GraphFault, Route, Server, TenantFile,
    seed,
};
use proofpix_emulators::microsoft::{self, fixtures};
use proofpix_emulators::{Clock, Harness};
use proofpix_integration_tests::{host_options, loopback_grant, store_options, teams_notifier};
use proofpix_model::{FileResult, PluginError, RemediationKind, RemoteFile, RiskLevel};
use proofpix_pipeline::{SyncMode, SyncReport};
use proofpix_policy::RemediationPolicy;
use proofpix_runtime::contract::Capability;
use proofpix_service::{
    Host, IntegrationSpec, Remediation, RemediationStatus, ServiceError, TestReport,
};
use proofpix_store::{Store, StoreOptions};
use proofpix_vault::{MasterKey, Secret};

const ID: &str = "sp";

// ---------------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    ms: GraphEmulator,
    /// Seconds added to the wall clock by the store's clock (the remediation retry schedule).
    clock_offset: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

async fn env_with(config: GraphConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock_offset = Arc::new(AtomicI64::new(0));
    let offset = Arc::clone(&clock_offset);
    let store = Store::open_with(
        &dir.path().join("store"),
        &MasterKey::generate(),
        StoreOptions {
            clock: Arc::new(move || {
                time::OffsetDateTime::now_utc()
                    + time::Duration::seconds(offset.load(Ordering::SeqCst))
            }),
            ..store_options()
        },
    )
    .expect("store");
    let host = Host::new(Arc::new(store), host_options(8))
        .await
        .expect("host");
    let ms = microsoft::start_with_graph(
        Default::default(),
        config,
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("graph emulator");
    Env {
        host,
        ms,
        clock_offset,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(GraphConfig::default()).await
}

impl Env {
    fn graph(&self) -> &graph::Graph {
        self.ms.graph()
    }

    fn config(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut config: BTreeMap<String, String> = [
            ("tenant", fixtures::TENANT_ID),
            ("client_id", fixtures::CLIENT_ID),
            ("sites", seed::FIELDWORK_SITE),
            ("page_size", "4"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        config.insert("graph_url".into(), self.ms.graph_url());
        config.insert("login_url".into(), self.ms.login_url());
        config.insert("download_host".into(), self.ms.download_url());
        for (k, v) in extra {
            config.insert((*k).to_string(), (*v).to_string());
        }
        config
    }

    async fn try_integrate_with(
        &self,
        extra: &[(&str, &str)],
        secret: &str,
    ) -> Result<(), ServiceError> {
        let mut secrets = BTreeMap::new();
        secrets.insert("client_secret".to_string(), Secret::new(secret));
        self.host
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "sharepoint".into(),
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
        self.try_integrate_with(extra, fixtures::CLIENT_SECRET)
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

    /// Image files of the tenant, on the configured (fieldwork) site unless `all_sites`.
    fn images(&self, all_sites: bool) -> Vec<TenantFile> {
        self.graph()
            .files()
            .into_iter()
            .filter(|f| f.is_image || f.path.ends_with(".jpg"))
            .filter(|f| all_sites || f.site == seed::FIELDWORK_SITE)
            .collect()
    }

    /// Column writes per file id (`drive/item`).
    fn writes_per_file(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for w in self.graph().column_writes() {
            *m.entry(format!("{}/{}", w.drive_id, w.item_id))
                .or_default() += 1;
        }
        m
    }
}

fn ids(report: &SyncReport) -> Vec<String> {
    let mut v: Vec<String> = report.files.iter().map(|f| f.file.id.clone()).collect();
    v.sort();
    v
}

fn file_ids(files: &[TenantFile]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| format!("{}/{}", f.drive_id, f.item_id))
        .collect()
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

// ---------------------------------------------------------------------------------------------
// listing
// ---------------------------------------------------------------------------------------------

/// The fieldwork site's two libraries are enumerated four items a page; every image (facet,
/// `image/*`, or an octet-stream `.jpg`) is analysed with the findings its bytes carry and
/// written back, and the PDF, Word and CSV files are not listed.
#[tokio::test]
async fn every_image_of_two_libraries_is_listed_over_many_pages_and_nothing_else() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    let images = env.images(false);
    assert_eq!(images.len(), 13);
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        file_ids(&images)
    );
    assert_eq!(report.files.len(), images.len(), "each once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    let delta_pages = env
        .graph()
        .exchanges()
        .iter()
        .filter(|e| e.route == Route::Delta)
        .count();
    assert!(delta_pages >= 6, "four items a page: {delta_pages} pages");
    assert_eq!(report.pages as usize, delta_pages);

    for file in &images {
        let id = format!("{}/{}", file.drive_id, file.item_id);
        let outcome = report
            .files
            .iter()
            .find(|f| f.file.id == id)
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
                file.path
            );
        }
    }
    let scan = images
        .iter()
        .find(|f| f.path == "Uploads/scan-0001.jpg")
        .expect("octet-stream image");
    assert!(!scan.is_image, "stored without image facet or type");
}

/// Sites and libraries can be several: two sites, and a library of each by drive id.
#[tokio::test]
async fn several_sites_and_a_library_by_drive_id_are_listed_together() {
    let env = env().await;
    let photos = env
        .graph()
        .drive_id(seed::FIELDWORK_SITE, seed::SITE_PHOTOS)
        .expect("drive");
    let lobby = env
        .graph()
        .drive_id(seed::ROOT_SITE, seed::DOCUMENTS)
        .expect("drive");
    let sites = format!("{}\nhttps://{}/", seed::FIELDWORK_SITE, seed::ROOT_SITE);
    let libraries = format!("{photos}, {lobby}");
    env.integrate(&[("sites", &sites), ("libraries", &libraries)])
        .await;
    let report = env.sync().await;
    let want: BTreeSet<String> = file_ids(
        &env.images(true)
            .into_iter()
            .filter(|f| f.library == seed::SITE_PHOTOS || f.site == seed::ROOT_SITE)
            .collect::<Vec<_>>(),
    );
    assert_eq!(want.len(), 4);
    assert_eq!(ids(&report).into_iter().collect::<BTreeSet<_>>(), want);
}

/// A 410 on a nextLink in the middle of the first enumeration restarts that library from the
/// Location Graph gives; files already processed are skipped, so each is written once.
#[tokio::test]
async fn a_410_mid_enumeration_restarts_the_library_and_writes_nothing_twice() {
    let env = env().await;
    env.integrate(&[]).await;
    env.graph().invalidate_next_delta_page();
    let report = env.sync().await;
    let gone: Vec<_> = env
        .graph()
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 410)
        .collect();
    assert_eq!(gone.len(), 1, "one page was invalidated");
    let images = env.images(false);
    assert_eq!(ids(&report).len(), images.len(), "{:?}", ids(&report));
    assert!(
        report.unchanged > 0,
        "the restart listed processed files again"
    );
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), images.len());
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
}

/// A deltaLink Graph forgot (410 on the next run) starts over; nothing is analysed again.
#[tokio::test]
async fn an_expired_delta_link_lists_everything_again_without_new_work() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    env.graph().expire_delta_tokens();
    let writes = env.graph().column_writes().len();
    let second = env.sync().await;
    assert!(second.files.is_empty(), "{:?}", ids(&second));
    assert_eq!(second.unchanged as usize, first.files.len());
    assert_eq!(env.graph().column_writes().len(), writes);
}

/// A malformed and a truncated delta page fail that page only; the run retries it and
/// completes.
#[tokio::test]
async fn malformed_and_truncated_pages_are_retried_not_fatal() {
    let env = env().await;
    env.integrate(&[]).await;
    env.graph().inject(Route::Delta, GraphFault::Malformed, 1);
    env.graph().inject(Route::Delta, GraphFault::Truncated, 1);
    let report = env.sync().await;
    assert_eq!(report.files.len(), env.images(false).len());
    assert!(report.retries >= 2, "retries: {}", report.retries);
}

// ---------------------------------------------------------------------------------------------
// downloads
// ---------------------------------------------------------------------------------------------

/// `/content` gets the bearer token and answers 302; the pre-authenticated download host gets
/// no `Authorization` at all, only Range requests.
#[tokio::test]
async fn the_bearer_token_never_reaches_the_download_host() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    assert!(!report.files.is_empty());
    let exchanges = env.graph().exchanges();
    let content: Vec<_> = exchanges
        .iter()
        .filter(|e| e.route == Route::Content)
        .collect();
    let downloads: Vec<_> = exchanges
        .iter()
        .filter(|e| e.server == Server::Download)
        .collect();
    assert!(!content.is_empty() && downloads.len() >= report.files.len());
    assert!(content.iter().all(|e| {
        e.status == 302
            && e.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
    }));
    for d in &downloads {
        assert_eq!(d.authorization, None, "{} got credentials", d.path);
        assert!(d.range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
        assert_eq!(d.status, 206);
    }
    // The shared request log agrees: no request to the download path carried any header
    // holding a minted token.
    let minted = env.ms.harness().minted_secrets();
    for r in env.ms.log().to_path("/_layouts/15/download.aspx") {
        assert!(r.header("authorization").is_none());
        assert!(!minted.iter().any(|t| r.mentions(t)));
    }
}

/// A 401 on `/content` (the token expired between listing and download) refreshes the token
/// and fetches again, instead of parking the file.
#[tokio::test]
async fn a_token_that_expires_before_a_download_is_renewed_and_the_file_fetched() {
    let env = env().await;
    env.integrate(&[]).await;
    env.graph()
        .inject(Route::Content, GraphFault::ExpiredToken, 1);
    let tokens = env.ms.tokens().access_tokens_issued();
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(report.parked, 0);
    assert_eq!(report.files.len(), env.images(false).len());
    assert!(env.ms.tokens().access_tokens_issued() > tokens);
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
        summary: format!("GPS 51.5,-0.1 (±10 m); owner J*** D**; #{i}"),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "test".into(),
    }
}

/// 45 results go out as `$batch` requests of 20, 20 and 5 sub-requests. Three throttled updates
/// fail the call with their Retry-After; the retry sends only those three, and a file deleted
/// meanwhile gets its own `not-found`. Every other column is written exactly once.
#[tokio::test]
async fn column_updates_go_in_batches_of_20_and_partial_failures_map_to_their_files() {
    let env = env_with(GraphConfig {
        population: seed::photos(45, 32, 24),
        ..GraphConfig::default()
    })
    .await;
    env.integrate(&[("page_size", "200")]).await;
    let (mut session, files) = discovered(&env.host).await;
    assert_eq!(files.len(), 45);
    let results: Vec<FileResult> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| result_for(f, i))
        .collect();
    let gone = results[30].file.id.clone();
    let (drive, item) = gone.split_once('/').expect("drive/item");
    assert!(env.graph().delete(drive, item));
    env.graph().inject(
        Route::BatchItem,
        GraphFault::Throttle {
            status: 429,
            retry_after_secs: 1,
        },
        3,
    );
    // Sub-requests per `$batch` among the exchanges from `from` on.
    let sizes = |from: usize| -> Vec<usize> {
        let exchanges = env.graph().exchanges();
        let exchanges = &exchanges[from..];
        exchanges
            .iter()
            .filter(|e| e.route == Route::Batch)
            .map(|b| exchanges.iter().filter(|s| s.batch == Some(b.n)).count())
            .collect()
    };

    let from = env.graph().exchanges().len();
    let err = session.write_back(&results).await.expect_err("throttled");
    match err.plugin_error() {
        Some(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(1000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(sizes(from), [20, 20, 5]);

    let from = env.graph().exchanges().len();
    let outcomes = session.write_back(&results).await.expect("retry");
    assert_eq!(sizes(from), [3], "only the throttled ones are sent again");
    assert_eq!(outcomes.len(), 45);
    for o in &outcomes {
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
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), 44);
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    let any = env.graph().column_writes().pop().expect("a write");
    assert_eq!(any.fields["ProofPixRisk"], "High");
    assert_eq!(any.fields["ProofPixScore"], 80);
    assert!(any.via_batch);
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
async fn a_working_configuration_passes_every_test_step() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.test().await;
    assert!(report.ok(), "{report:?}");
    let connection = &step(&report, "connection").detail;
    assert!(
        connection.contains("site Fieldwork: Documents, Site Photos"),
        "{connection}"
    );
    assert!(
        connection.contains(&format!("connected as app {}", fixtures::CLIENT_ID)),
        "{connection}"
    );
    assert!(
        step(&report, "grant")
            .detail
            .contains(&env.ms.download_url())
    );
}

#[tokio::test]
async fn an_unknown_site_is_named_with_how_to_write_one() {
    let env = env().await;
    let detail = connection_problem(&env, &[("sites", "proofpix.sharepoint.com/sites/nope")]).await;
    assert!(
        detail.contains(
            "SharePoint has no site proofpix.sharepoint.com/sites/nope (Graph: itemNotFound)"
        ),
        "{detail}"
    );
    assert!(
        detail.contains("contoso.sharepoint.com/sites/Marketing"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_unknown_library_lists_the_libraries_there_are() {
    let env = env().await;
    let detail = connection_problem(&env, &[("libraries", "Photos")]).await;
    assert!(
        detail.contains("no configured site has a document library named Photos"),
        "{detail}"
    );
    assert!(
        detail.contains("Site Photos (on proofpix.sharepoint.com/sites/fieldwork)"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_missing_column_says_how_to_create_it_or_which_field_to_change() {
    let env = env().await;
    for lib in [seed::DOCUMENTS, seed::SITE_PHOTOS] {
        let drive = env
            .graph()
            .drive_id(seed::FIELDWORK_SITE, lib)
            .expect("drive");
        env.graph().remove_column(&drive, "ProofPixScore");
    }
    let detail = connection_problem(&env, &[]).await;
    assert!(
        detail.contains("Fieldwork / Documents has no column named ProofPixScore"),
        "{detail}"
    );
    assert!(detail.contains("set `score_column`"), "{detail}");
    assert!(detail.contains("Create it"), "{detail}");
}

#[tokio::test]
async fn a_missing_sites_permission_names_the_graph_permissions_to_grant() {
    let env = env().await;
    env.graph().set_permission(AppPermission::Selected(vec![(
        seed::ROOT_SITE.into(),
        true,
    )]));
    let detail = connection_problem(&env, &[]).await;
    assert!(
        detail.contains("the app may not read site proofpix.sharepoint.com/sites/fieldwork (Graph: 403 accessDenied)"),
        "{detail}"
    );
    assert!(
        detail.contains("Sites.Selected") && detail.contains("Sites.ReadWrite.All"),
        "{detail}"
    );
}

#[tokio::test]
async fn read_only_access_fails_write_back_per_file_with_what_to_grant() {
    let env = env().await;
    env.integrate(&[]).await;
    env.graph().set_permission(AppPermission::ReadAll);
    let report = env.sync().await;
    let errs = errors(&report);
    assert_eq!(errs.len(), env.images(false).len());
    assert!(
        errs.iter()
            .all(|e| e.contains("write-back failed") && e.contains("Sites.ReadWrite.All")),
        "{errs:?}"
    );
}

#[tokio::test]
async fn a_wrong_secret_fails_the_credentials_step_with_the_aadsts_reason() {
    let env = env().await;
    env.try_integrate_with(&[], "not-the-secret")
        .await
        .expect("stored");
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok);
    assert!(s.detail.contains("AADSTS7000215"), "{}", s.detail);
    assert!(
        !s.detail.contains("not-the-secret"),
        "no secret in messages"
    );
}

#[tokio::test]
async fn a_multi_tenant_alias_or_a_url_with_a_path_is_refused_at_setup() {
    let env = env().await;
    let err = env
        .try_integrate_with(&[("tenant", "common")], fixtures::CLIENT_SECRET)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("directory (tenant) ID"), "{err}");
    let err = env
        .try_integrate_with(
            &[("graph_url", &format!("{}/v1.0", env.ms.graph_url()))],
            fixtures::CLIENT_SECRET,
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("without a path"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------------------------

/// Workflow 2: configure with Azure AD app credentials → `host.test` → enumerate the libraries →
/// batch-analyse every image → columns updated in the emulator → a Teams message on batch
/// completion → an audit trail with every step, and no secret in it.
#[tokio::test]
async fn workflow_2_configure_test_scan_write_back_announce_and_audit() {
    let env = env().await;
    let teams = teams_notifier(&env.host, ID).await;

    // Configure with the app registration's credentials, then test the connection.
    env.integrate(&[]).await;
    let test = env.test().await;
    assert!(test.ok(), "{test:?}");
    let names: Vec<&str> = test.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["configuration", "credentials", "grant", "connection"]
    );

    // Enumerate and analyse every image; every result lands in the library's columns.
    let report = env.sync().await;
    let images = env.images(false);
    assert_eq!(report.files.len(), images.len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    for outcome in &report.files {
        assert!(outcome.written_back, "{}", outcome.file.name);
        let analysed = outcome.report.as_ref().expect("analysed");
        let (drive, item) = outcome.file.id.split_once('/').expect("drive/item");
        let fields = env.graph().fields(drive, item).expect("file");
        let word = analysed.risk.as_str();
        let capitalised = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
        assert_eq!(
            fields["ProofPixRisk"],
            capitalised.as_str(),
            "{}",
            outcome.file.name
        );
        assert_eq!(fields["ProofPixScore"], u64::from(analysed.score));
        let summary = proofpix_pipeline::file_result(&outcome.file, analysed, "").summary;
        let written = fields["ProofPixFindings"].as_str().expect("summary");
        if summary.is_empty() {
            assert_eq!(written, "No privacy findings");
        } else {
            assert!(
                summary.starts_with(written.trim_end_matches('…')),
                "{written} / {summary}"
            );
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
    assert!(high >= 10, "the seeded phone photos are high risk: {high}");

    // One Teams message for the batch.
    let posted = teams.posted();
    assert_eq!(posted.len(), 1, "one card on batch completion");
    let text = posted[0].all_text();
    assert!(text.contains(&format!("Scan finished: {ID}")), "{text}");
    assert!(text.contains(&images.len().to_string()), "{text}");

    // The audit trail has every step, in order, and no secret.
    let audit = env.host.store().audit_entries(0, 10_000).expect("audit");
    let position = |action: &str, target: &str| {
        audit
            .iter()
            .position(|e| e.action == action && e.target == target)
            .unwrap_or_else(|| {
                panic!(
                    "no {action} on {target} in {:?}",
                    audit
                        .iter()
                        .map(|e| (&e.action, &e.target))
                        .collect::<Vec<_>>()
                )
            })
    };
    let created = position("integration.create", ID);
    let secret = position("secret.set", &format!("{ID}/client_secret"));
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
    let sent: serde_json::Value = serde_json::from_str(&audit[notified].details).expect("json");
    assert_eq!(sent["source"], ID);
    assert_eq!(sent["kind"], "batch-completed");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "secret.set" && e.target == "teams/webhook_url")
    );
    let mut secrets: Vec<String> = env.ms.harness().minted_secrets();
    secrets.push(fixtures::CLIENT_SECRET.into());
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

/// Workflow 3: a re-run finds nothing new (our own column writes show in delta but carry the
/// same content hash); changing one file yields exactly one new analysis and one write-back.
#[tokio::test]
async fn workflow_3_a_rerun_finds_nothing_and_one_changed_file_is_analysed_and_written_once() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = env.images(false).len();
    assert_eq!(first.files.len(), n);
    assert_eq!(env.graph().column_writes().len(), n);

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(
        again.unchanged as usize, n,
        "the column writes listed every file again, unchanged"
    );
    assert_eq!(env.graph().column_writes().len(), n, "no new write-back");

    let target = env
        .graph()
        .file(
            seed::FIELDWORK_SITE,
            seed::DOCUMENTS,
            "Marketing/banner-1.jpg",
        )
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
    assert!(
        env.graph()
            .replace_content(&target.drive_id, &target.item_id, bytes)
    );
    let third = env.sync().await;
    let id = format!("{}/{}", target.drive_id, target.item_id);
    assert_eq!(ids(&third), vec![id.clone()]);
    let writes = env.graph().column_writes();
    assert_eq!(writes.len(), n + 1, "exactly one more write-back");
    let last = writes.last().expect("write");
    assert_eq!(format!("{}/{}", last.drive_id, last.item_id), id);
    let risk = third.files[0].report.as_ref().expect("analysed").risk;
    assert!(
        risk >= proofpix_analysis::RiskLevel::High,
        "the new bytes carry GPS: {risk:?}"
    );
    let word = risk.as_str();
    let capitalised = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
    assert_eq!(last.fields["ProofPixRisk"], capitalised.as_str());

    let fourth = env.sync().await;
    assert!(fourth.files.is_empty());
}

/// Graph may send no `file.hashes` (documented), and OneDrive for Business leaves `cTag` out of
/// delta: only the eTag is left, and our own column write changes it. The plugin remembers the
/// eTag its write produced, so a second sync re-analyses and re-writes nothing; a real content
/// change (a new eTag) is still analysed and written once.
#[tokio::test]
async fn without_hash_or_ctag_our_own_column_write_does_not_make_a_file_new() {
    let env = env_with(GraphConfig {
        omit_content_hashes: true,
        omit_ctag_in_delta: true,
        ..GraphConfig::default()
    })
    .await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = env.images(false).len();
    assert!(n > 0);
    assert_eq!(first.files.len(), n);
    assert!(errors(&first).is_empty(), "{:?}", errors(&first));
    assert!(
        first
            .files
            .iter()
            .all(|f| f.file.version.starts_with("etag:")),
        "the emulator sent neither hash nor cTag"
    );
    assert_eq!(env.graph().column_writes().len(), n);

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(
        again.unchanged as usize, n,
        "our column writes listed every file again, unchanged"
    );
    assert_eq!(env.graph().column_writes().len(), n, "no new write-back");

    let target = env
        .graph()
        .file(
            seed::FIELDWORK_SITE,
            seed::DOCUMENTS,
            "Marketing/banner-1.jpg",
        )
        .expect("file");
    let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 64,
        height: 48,
        seed: 4242,
        ..proofpix_fixtures::JpegSpec::default()
    });
    assert!(
        env.graph()
            .replace_content(&target.drive_id, &target.item_id, bytes)
    );
    let third = env.sync().await;
    let id = format!("{}/{}", target.drive_id, target.item_id);
    assert_eq!(ids(&third), vec![id.clone()]);
    assert_eq!(env.graph().column_writes().len(), n + 1);
    let fourth = env.sync().await;
    assert!(fourth.files.is_empty(), "{:?}", ids(&fourth));
    assert_eq!(env.graph().column_writes().len(), n + 1);
}

/// Workflow 4: about a quarter of the requests fail (429 and 503 with Retry-After, 500, 502),
/// every token expires mid-run on the emulator's clock, and one delta page is invalidated with
/// 410. Chaos faults 36% of the requests it has not faulted before (a retry of a faulted
/// request always passes, so the run ends), which with the retries comes to about a quarter of
/// everything sent; the 401s after the clock jump and the 410 come on top.
/// Every file is still processed and written exactly once, every Retry-After is respected (from
/// the emulator's record of real arrival times), and the batch reports what it retried.
#[tokio::test]
async fn workflow_4_under_faults_every_file_is_processed_once_and_every_retry_after_is_respected() {
    let env = env().await;
    env.integrate(&[]).await;
    assert!(env.test().await.ok());
    let g = env.graph();
    g.clear_traffic();
    let start = g.exchange_count();
    g.chaos(Some(Chaos::throttling_and_errors(36, 1, 0xC0FFEE)));
    g.invalidate_next_delta_page();
    // Mid-run, the tenant's clock passes every token's lifetime (3599 s).
    g.advance_clock_at(start + 30, time::Duration::hours(2));
    let tokens_before = env.ms.tokens().access_tokens_issued();

    let report = env.sync().await;
    g.chaos(None);

    let images = env.images(false);
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        file_ids(&images),
        "every file"
    );
    assert_eq!(report.files.len(), images.len(), "exactly once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    assert_eq!(report.parked, 0);
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), images.len());
    assert!(
        writes.values().all(|n| *n == 1),
        "one column write per file: {writes:?}"
    );
    assert!(
        env.ms.tokens().access_tokens_issued() > tokens_before,
        "the expired token was renewed"
    );

    let exchanges = g.exchanges();
    let faulted = exchanges.iter().filter(|e| e.fault.is_some()).count();
    let failed = exchanges.iter().filter(|e| e.status >= 400).count();
    let share = failed as f64 / exchanges.len() as f64;
    assert!(
        exchanges.iter().any(|e| e.status == 410),
        "a delta page was invalidated"
    );
    assert!(
        exchanges.iter().any(|e| e.status == 401),
        "requests met the expired token"
    );
    let follow_ups = g.retry_follow_ups();
    assert!(
        follow_ups.len() >= 3,
        "only {} Retry-After sent",
        follow_ups.len()
    );
    for f in &follow_ups {
        let next = f.next.as_ref().unwrap_or_else(|| {
            panic!(
                "{} {} was never retried",
                f.throttled.method, f.throttled.path
            )
        });
        assert!(
            f.respected(),
            "{} {} came back after {:?}, Retry-After was {:?} s (then {})",
            f.throttled.method,
            f.throttled.key,
            f.waited(),
            f.throttled.retry_after_secs,
            next.status
        );
    }
    assert!(report.retries > 0, "the report counts retries");
    assert!(report.batch.retried > 0, "the batch records files retried");
    eprintln!(
        "workflow 4: {} exchanges, {failed} failed ({:.0}%; {faulted} injected, the rest 401 after the clock jump), {} Retry-After checked, {} retries, {} files retried",
        exchanges.len(),
        share * 100.0,
        follow_ups.len(),
        report.retries,
        report.batch.retried
    );
    assert!(share >= 0.22, "failed share {share:.2}");
}

// ---------------------------------------------------------------------------------------------
// webhooks
// ---------------------------------------------------------------------------------------------

const CLIENT_STATE: &str = "cs-5b8e1f0a-graph-subscription";

fn graph_request(query: &str, body: serde_json::Value) -> proofpix_model::InboundRequest {
    proofpix_model::InboundRequest {
        method: "POST".into(),
        path: String::new(),
        query: query.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).expect("json")
        },
    }
}

fn notification(client_state: Option<&str>, lifecycle: Option<&str>) -> serde_json::Value {
    let mut item = serde_json::json!({
        "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "subscriptionExpirationDateTime": "2026-12-20T11:00:00.0000000Z",
        "changeType": "updated",
        "resource": "drives/b!fieldwork/root",
        "tenantId": fixtures::TENANT_ID,
        "resourceData": {"@odata.type": "#Microsoft.Graph.driveItem"},
    });
    if let Some(cs) = client_state {
        item["clientState"] = cs.into();
    }
    if let Some(l) = lifecycle {
        item["lifecycleEvent"] = l.into();
    }
    serde_json::json!({ "value": [item] })
}

/// Graph change notifications (reference §2.6): the validation handshake echoes the decoded token;
/// a notification is accepted only with the subscription's clientState, and since driveItem
/// notifications name no files it triggers a delta sync, which analyses exactly the changed file.
#[tokio::test]
async fn a_graph_change_notification_with_the_client_state_leads_to_one_new_analysis() {
    let env = env().await;
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "client_secret".to_string(),
        Secret::new(fixtures::CLIENT_SECRET),
    );
    secrets.insert("client_state".to_string(), Secret::new(CLIENT_STATE));
    env.host
        .create_integration(
            IntegrationSpec {
                id: ID.into(),
                plugin: "sharepoint".into(),
                config: env.config(&[]),
                secrets,
                grant: loopback_grant(),
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect("integration");
    let n = env.sync().await.files.len();
    assert!(n > 0);

    // The handshake when the subscription is created.
    let (response, queued, resync) = env
        .host
        .handle_webhook(
            ID,
            graph_request(
                "validationToken=Validation%3a+Testing%3a+client+code+7f105c7d",
                serde_json::Value::Null,
            ),
        )
        .await
        .expect("validation");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Validation: Testing: client code 7f105c7d");
    assert!(
        response
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "text/plain")
    );
    assert_eq!((queued, resync), (0, false));

    // Forged notifications are refused before anything happens.
    for forged in [
        notification(Some("guessed"), None),
        notification(None, None),
    ] {
        let err = env
            .host
            .handle_webhook(ID, graph_request("", forged))
            .await
            .expect_err("forged notification accepted");
        assert!(err.to_string().contains("clientState"), "{err}");
    }

    // A file changes; Graph notifies; the delta sync finds exactly that file.
    let target = env
        .graph()
        .file(
            seed::FIELDWORK_SITE,
            seed::DOCUMENTS,
            "Marketing/banner-1.jpg",
        )
        .expect("file");
    let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 32,
        height: 24,
        seed: 4242,
        exif: Some(proofpix_fixtures::phone_photo(
            4242,
            proofpix_fixtures::Gps {
                lat: 40.41,
                lon: -3.70,
                alt: None,
            },
        )),
        ..proofpix_fixtures::JpegSpec::default()
    });
    assert!(
        env.graph()
            .replace_content(&target.drive_id, &target.item_id, bytes)
    );
    let (response, queued, resync) = env
        .host
        .handle_webhook(
            ID,
            graph_request("", notification(Some(CLIENT_STATE), None)),
        )
        .await
        .expect("notification");
    assert_eq!(response.status, 202);
    assert_eq!(
        (queued, resync),
        (0, true),
        "driveItem notifications name no files"
    );
    let after = env.sync().await;
    assert_eq!(
        ids(&after),
        vec![format!("{}/{}", target.drive_id, target.item_id)]
    );

    // Lifecycle: `missed` asks for a sync; `reauthorizationRequired` does not.
    let (_, _, resync) = env
        .host
        .handle_webhook(
            ID,
            graph_request("", notification(Some(CLIENT_STATE), Some("missed"))),
        )
        .await
        .expect("missed");
    assert!(resync);
    let (response, _, resync) = env
        .host
        .handle_webhook(
            ID,
            graph_request(
                "",
                notification(Some(CLIENT_STATE), Some("reauthorizationRequired")),
            ),
        )
        .await
        .expect("reauthorization");
    assert_eq!((response.status, resync), (202, false));
}

// ---------------------------------------------------------------------------------------------
// remediation
// ---------------------------------------------------------------------------------------------

/// The operator's policy, in the JSON shape the CLI and API store.
fn replace_policy(simulate: bool) -> RemediationPolicy {
    RemediationPolicy::from_json(
        &serde_json::json!({
            "actions": ["replace-with-sanitised"],
            "min_risk": "high",
            "simulate": simulate,
        })
        .to_string(),
    )
    .expect("policy")
}

impl Env {
    /// The bytes of every image of the configured site, by file id (`drive/item`).
    fn image_bytes(&self) -> BTreeMap<String, Arc<Vec<u8>>> {
        self.images(false)
            .into_iter()
            .map(|f| {
                let bytes = self
                    .graph()
                    .content(&f.drive_id, &f.item_id)
                    .expect("content");
                (format!("{}/{}", f.drive_id, f.item_id), bytes)
            })
            .collect()
    }

    async fn sync_and_remediate(&self) -> (SyncReport, Vec<Remediation>) {
        self.host
            .sync_and_remediate(ID, SyncMode::Incremental)
            .await
            .unwrap_or_else(|e| panic!("sync: {e}"))
    }
}

/// The ids of the files the report analysed at `high` or above, and of the others.
fn split_by_risk(report: &SyncReport) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut high = BTreeSet::new();
    let mut other = BTreeSet::new();
    for f in &report.files {
        let risk = f.report.as_ref().expect("analysed").risk;
        if risk >= AnalysisRisk::High {
            high.insert(f.file.id.clone());
        } else {
            other.insert(f.file.id.clone());
        }
    }
    (high, other)
}

#[tokio::test]
async fn the_plugin_declares_replace_with_sanitised_and_the_first_party_grant_covers_it() {
    let env = env().await;
    let plugin = env.host.plugin("sharepoint").expect("first-party plugin");
    let declared: Vec<RemediationKind> = plugin
        .info()
        .remediations
        .iter()
        .map(|k| RemediationKind::from(*k))
        .collect();
    assert_eq!(declared, [RemediationKind::ReplaceWithSanitised]);
    assert!(
        plugin
            .info()
            .capabilities
            .contains(&Capability::Remediation)
    );
    // First-party plugins are granted what they declare when the host starts; the operator's
    // per-integration grant covers hosts only.
    let record = env.host.store().plugin("sharepoint").unwrap().unwrap();
    assert!(
        record
            .capabilities
            .iter()
            .any(|c| c == "capability:remediation"),
        "{:?}",
        record.capabilities
    );
    env.integrate(&[]).await;
    let err = env
        .host
        .set_remediation(
            ID,
            Some(
                RemediationPolicy::from_json(r#"{"actions":["quarantine"],"simulate":true}"#)
                    .unwrap(),
            ),
            "operator:test",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("(it offers: replace-with-sanitised)"),
        "{err}"
    );
}

#[tokio::test]
async fn replacing_with_sanitised_copies_cleans_every_high_risk_image_once_and_nothing_else() {
    let env = env().await;
    env.integrate(&[]).await;
    env.host
        .set_remediation(ID, Some(replace_policy(false)), "operator:test")
        .await
        .expect("set policy");
    let before = env.image_bytes();

    let (report, done) = env.sync_and_remediate().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let (high, other) = split_by_risk(&report);
    assert!(
        high.len() >= 5 && !other.is_empty(),
        "the seed has risky and harmless images: {high:?} / {other:?}"
    );
    assert_eq!(high.len() + other.len(), before.len());

    // One applied replacement per high-risk image, and nothing for the others.
    let replaced: BTreeSet<String> = done
        .iter()
        .map(|r| {
            assert_eq!(r.action, RemediationKind::ReplaceWithSanitised);
            assert_eq!(r.status, RemediationStatus::Applied, "{r:#?}");
            assert!(
                r.detail.starts_with("replaced with a sanitised copy"),
                "{}",
                r.detail
            );
            r.file_id.clone()
        })
        .collect();
    assert_eq!(replaced, high);
    assert_eq!(done.len(), high.len(), "each file once");

    // Graph saw one simple upload per risky file, with the bearer token and the file's type.
    let uploads = env.graph().uploads();
    let uploaded: Vec<String> = uploads
        .iter()
        .map(|u| format!("{}/{}", u.drive_id, u.item_id))
        .collect();
    assert_eq!(uploaded.iter().cloned().collect::<BTreeSet<_>>(), high);
    assert_eq!(uploaded.len(), high.len());
    assert!(uploads.iter().all(|u| u.etag_after != u.etag_before));
    let puts: Vec<_> = env
        .graph()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::Upload)
        .collect();
    assert_eq!(puts.len(), high.len());
    assert!(
        puts.iter().all(|e| e.method == "PUT"
            && e.status == 200
            && e.path.ends_with("/content")
            && e.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))),
        "{puts:#?}"
    );

    // Every replaced file re-analyses clean and is still an image; the others are untouched.
    let analyzer = Analyzer::new(AnalysisPolicy::default(), AnalysisOptions::default());
    let after = env.image_bytes();
    for (id, bytes) in &after {
        if high.contains(id) {
            assert_ne!(bytes, &before[id], "{id} was replaced");
            let r = analyzer.analyze(&**bytes);
            assert_eq!(r.risk, AnalysisRisk::None, "{id}: {:?}", r.findings);
            assert!(r.error.is_none(), "{id} is still a readable image");
        } else {
            assert_eq!(bytes, &before[id], "{id} was not touched");
        }
    }

    // The next sync sees the replaced files as new versions, analyses them clean and replaces
    // nothing again.
    let (report, done) = env.sync_and_remediate().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        high,
        "only the replaced files changed"
    );
    assert!(
        report
            .files
            .iter()
            .all(|f| f.report.as_ref().unwrap().risk == AnalysisRisk::None)
    );
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(env.graph().uploads().len(), high.len(), "no second upload");
    let (_, done) = env.sync_and_remediate().await;
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(env.image_bytes(), after);
}

#[tokio::test]
async fn a_simulated_replacement_reports_each_risky_image_and_changes_nothing() {
    let env = env().await;
    env.integrate(&[]).await;
    env.host
        .set_remediation(ID, Some(replace_policy(true)), "operator:test")
        .await
        .expect("set policy");
    let before = env.image_bytes();

    let (report, done) = env.sync_and_remediate().await;
    let (high, _) = split_by_risk(&report);
    assert!(!high.is_empty());
    let simulated: BTreeSet<String> = done
        .iter()
        .map(|r| {
            assert_eq!(r.status, RemediationStatus::Simulated, "{r:#?}");
            assert!(
                r.detail
                    .starts_with("would replace the file with a sanitised copy of "),
                "{}",
                r.detail
            );
            r.file_id.clone()
        })
        .collect();
    assert_eq!(simulated, high);
    assert!(env.graph().uploads().is_empty());
    assert!(
        env.graph()
            .exchanges()
            .iter()
            .all(|e| e.route != Route::Upload),
        "nothing was uploaded"
    );
    assert_eq!(env.image_bytes(), before, "not a byte changed");

    // Nothing changed, so the next sync has no new versions and nothing to report.
    let (report, done) = env.sync_and_remediate().await;
    assert!(report.files.is_empty(), "{:?}", ids(&report));
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(env.image_bytes(), before);
}

#[tokio::test]
async fn a_file_saved_again_after_its_analysis_is_not_replaced() {
    let env = env().await;
    env.integrate(&[]).await;
    let mut policy = replace_policy(false);
    policy.delay_secs = 60;
    env.host
        .set_remediation(ID, Some(policy), "operator:test")
        .await
        .expect("set policy");
    let (report, done) = env.sync_and_remediate().await;
    let (high, _) = split_by_risk(&report);
    assert!(high.len() >= 2, "{high:?}");
    assert!(
        done.iter().all(|r| r.status == RemediationStatus::Pending),
        "{done:#?}"
    );

    // Before the delay is over, someone saves a new version of one file (another image's
    // bytes); no sync has seen it yet.
    let before = env.image_bytes();
    let edited = high.iter().next().expect("a high-risk image").clone();
    let new_version = before
        .iter()
        .find(|(id, b)| **id != edited && **b != before[&edited])
        .map(|(_, b)| b.to_vec())
        .expect("another image");
    let (drive, item) = edited.split_once('/').expect("drive/item");
    assert!(
        env.graph()
            .replace_content(drive, item, new_version.clone())
    );
    env.clock_offset.store(61, Ordering::SeqCst);
    let done = env.host.remediate(ID).await.expect("remediate");

    let of_edited: Vec<&Remediation> = done.iter().filter(|r| r.file_id == edited).collect();
    assert_eq!(of_edited.len(), 1, "{done:#?}");
    assert_ne!(of_edited[0].status, RemediationStatus::Applied);
    assert!(
        of_edited[0]
            .detail
            .contains("changed since it was analysed"),
        "{}",
        of_edited[0].detail
    );
    assert_eq!(
        *env.image_bytes()[&edited],
        new_version,
        "the new version is kept as it was saved"
    );
    // The others were not edited: each is replaced, through an If-Match the emulator checks.
    let applied: BTreeSet<String> = done
        .iter()
        .filter(|r| r.status == RemediationStatus::Applied)
        .map(|r| r.file_id.clone())
        .collect();
    let mut others = high.clone();
    others.remove(&edited);
    assert_eq!(applied, others, "{done:#?}");
    let uploaded: BTreeSet<String> = env
        .graph()
        .uploads()
        .iter()
        .map(|u| format!("{}/{}", u.drive_id, u.item_id))
        .collect();
    assert_eq!(uploaded, others);
}

#[tokio::test]
async fn a_throttled_upload_is_kept_for_a_retry_and_each_file_is_replaced_once() {
    let env = env().await;
    env.integrate(&[]).await;
    env.host
        .set_remediation(ID, Some(replace_policy(false)), "operator:test")
        .await
        .expect("set policy");
    env.graph().inject(
        Route::Upload,
        GraphFault::Throttle {
            status: 429,
            retry_after_secs: 30,
        },
        1,
    );
    let (report, done) = env.sync_and_remediate().await;
    let (high, _) = split_by_risk(&report);
    let pending: Vec<&Remediation> = done
        .iter()
        .filter(|r| r.status == RemediationStatus::Pending)
        .collect();
    assert_eq!(pending.len(), 1, "{done:#?}");
    let throttled = pending[0].file_id.clone();
    assert!(
        pending[0].detail.contains("HTTP 429") && pending[0].detail.contains("retried in 30 s"),
        "{}",
        pending[0].detail
    );
    // The others are replaced in this pass; the throttled one waits for its Retry-After.
    let applied = |done: &[Remediation]| -> BTreeSet<String> {
        done.iter()
            .filter(|r| r.status == RemediationStatus::Applied)
            .map(|r| r.file_id.clone())
            .collect()
    };
    let mut expected = high.clone();
    expected.remove(&throttled);
    assert_eq!(applied(&done), expected, "{done:#?}");
    let uploads_of_throttled = || -> Vec<u16> {
        env.graph()
            .exchanges()
            .into_iter()
            .filter(|e| e.route == Route::Upload && e.key.ends_with(&throttled))
            .map(|e| e.status)
            .collect()
    };
    assert_eq!(
        uploads_of_throttled(),
        [429],
        "not retried before its Retry-After"
    );

    // A sync before the Retry-After leaves it waiting; the first sync after it (per the
    // store's clock, moved forward instead of sleeping) replaces it.
    let (_, done) = env.sync_and_remediate().await;
    assert!(applied(&done).is_empty(), "{done:#?}");
    assert_eq!(uploads_of_throttled(), [429], "not retried early");
    env.clock_offset.store(31, Ordering::SeqCst);
    let (_, done) = env.sync_and_remediate().await;
    assert_eq!(
        applied(&done),
        BTreeSet::from([throttled.clone()]),
        "{done:#?}"
    );
    assert_eq!(uploads_of_throttled(), [429, 200]);
    let uploaded: Vec<String> = env
        .graph()
        .uploads()
        .iter()
        .map(|u| format!("{}/{}", u.drive_id, u.item_id))
        .collect();
    assert_eq!(uploaded.len(), high.len(), "each file replaced once");
    assert_eq!(uploaded.into_iter().collect::<BTreeSet<_>>(), high);

    let (_, done) = env.sync_and_remediate().await;
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(env.graph().uploads().len(), high.len());
}
