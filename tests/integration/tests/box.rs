//! The Box connector against the Box emulator, through the host library (real wasmtime, real
//! redb, real client-credentials OAuth2 against the emulator).
//!
//! - `listing`: the configured folder walked recursively over many marker pages, only images,
//!   nothing from a folder next to it; an expired marker mid-walk and an expired stream position
//!   start over without new work; malformed and truncated pages are retried.
//! - `downloads`: the bearer token never reaches the download host, Range reads, a token that
//!   expires before `/content`.
//! - `writeback`: create then JSON-Patch, per-file outcomes, a throttled write resumes where it
//!   stopped and writes nothing twice.
//! - `misconfig`: what `host.test` says for an unshared folder, a missing template or field, a
//!   wrong secret or subject, a folder name instead of an id, read-only access.
//! - `workflows`: workflows 2 (with the Teams notifier), 3 (events: rerun finds nothing, one
//!   change analysed and written once, duplicates and out-of-scope events ignored) and 4 (chaos).
//!
//! Waits are short: the emulator's retry-after is 1 s, the pipeline's back-off starts at 20 ms,
//! and token expiry is driven by the emulator's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proofpix_analysis::Category;
use proofpix_emulators::box_com::files::{
    self, BoxEmulator, BoxFault, BoxFile, BoxFilesConfig, Chaos, Route, Server, seed,
};
use proofpix_emulators::box_com::{self, fixtures};
use proofpix_emulators::{Clock, Harness};
use proofpix_integration_tests::{host_options, loopback_grant, open_store, teams_notifier};
use proofpix_model::{FileResult, PluginError, RemoteFile, RiskLevel};
use proofpix_pipeline::{SyncMode, SyncReport};
use proofpix_service::{Host, IntegrationSpec, ServiceError, TestReport};
use proofpix_vault::Secret;

const ID: &str = "box";
const TEMPLATE: &str = "proofpixPrivacy";

// ---------------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------------

struct Env {
    host: Host,
    b: BoxEmulator,
    _dir: tempfile::TempDir,
}

async fn env_with(config: BoxFilesConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path());
    let host = Host::new(Arc::new(store), host_options(8))
        .await
        .expect("host");
    let b = box_com::start_with_files(
        Default::default(),
        config,
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("box emulator");
    Env { host, b, _dir: dir }
}

async fn env() -> Env {
    env_with(BoxFilesConfig::default()).await
}

impl Env {
    fn files(&self) -> &files::BoxFiles {
        self.b.files()
    }

    fn config(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let fieldwork = self.files().folder_id(seed::FIELDWORK).expect("folder");
        let mut config: BTreeMap<String, String> = [
            ("client_id", fixtures::CLIENT_ID),
            ("auth_flow", "enterprise"),
            ("subject_id", fixtures::ENTERPRISE_ID),
            ("page_size", "2"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        config.insert("folders".into(), fieldwork);
        config.insert("api_url".into(), self.b.api_url());
        config.insert("download_host".into(), self.b.download_url());
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
                    plugin: "box".into(),
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

    /// The JWT grant: the app's key pair instead of a subject in the form.
    async fn integrate_with_jwt(&self, flow: &str, key: &str) -> Result<(), ServiceError> {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "client_secret".to_string(),
            Secret::new(fixtures::CLIENT_SECRET),
        );
        secrets.insert("jwt_private_key".to_string(), Secret::new(key));
        self.host
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "box".into(),
                    config: self.config(&[
                        ("auth_flow", flow),
                        ("jwt_public_key_id", fixtures::JWT_KEY_ID),
                    ]),
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

    /// Image files below the configured folder, not trashed.
    fn images(&self) -> Vec<BoxFile> {
        self.files()
            .files()
            .into_iter()
            .filter(|f| {
                f.is_image() && !f.trashed && f.path.starts_with(&format!("{}/", seed::FIELDWORK))
            })
            .collect()
    }

    /// Metadata writes per file id.
    fn writes_per_file(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for w in self.files().metadata_writes() {
            *m.entry(w.file_id).or_default() += 1;
        }
        m
    }
}

fn ids(report: &SyncReport) -> BTreeSet<String> {
    report.files.iter().map(|f| f.file.id.clone()).collect()
}

fn file_ids(files: &[BoxFile]) -> BTreeSet<String> {
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

fn phone_photo_bytes(seed: u32) -> Vec<u8> {
    proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
        width: 64,
        height: 48,
        seed,
        exif: Some(proofpix_fixtures::phone_photo(
            seed,
            proofpix_fixtures::Gps {
                lat: 48.85,
                lon: 2.35,
                alt: None,
            },
        )),
        ..proofpix_fixtures::JpegSpec::default()
    })
}

// ---------------------------------------------------------------------------------------------
// listing
// ---------------------------------------------------------------------------------------------

/// The Fieldwork tree is walked two entries a page; every image (any case of extension) is
/// analysed with the findings its bytes carry and written back; the PDF, Word and CSV files and
/// the photos in the unconfigured Private folder are not listed. The token request carried the
/// subject the operator chose.
#[tokio::test]
async fn every_image_of_the_folder_tree_is_listed_over_many_pages_and_nothing_else() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    let images = env.images();
    assert_eq!(images.len(), 10);
    assert_eq!(ids(&report), file_ids(&images));
    assert_eq!(report.files.len(), images.len(), "each once");
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert!(report.files.iter().all(|f| f.written_back));
    let pages = env
        .files()
        .exchanges()
        .iter()
        .filter(|e| e.route == Route::Items)
        .count();
    assert!(pages >= 8, "two entries a page: {pages} pages");
    assert!(report.pages as usize >= pages);

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
                file.path
            );
        }
    }
    let token = env.b.log().to_path(box_com::TOKEN_PATH);
    let form = token.first().expect("token request").form();
    assert_eq!(form["box_subject_type"], "enterprise");
    assert_eq!(form["box_subject_id"], fixtures::ENTERPRISE_ID);
}

/// Box's JWT grant, declared by the plugin (contract 0.3 `oauth-dialect`): the host signs an
/// assertion with the `kid`, `box_sub_type` and `sub` the integration chose, sends the client id
/// and secret beside it, and the sync runs on the token. The host's auth crate knows no Box.
#[tokio::test]
async fn the_jwt_grant_runs_from_the_plugins_declared_dialect() {
    let env = env().await;
    env.integrate_with_jwt(
        "jwt-enterprise",
        proofpix_emulators::keys::PRIVATE_KEY_A_PEM,
    )
    .await
    .unwrap_or_else(|e| panic!("create integration: {e}"));
    let report = env.sync().await;
    assert_eq!(report.files.len(), env.images().len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let token = env.b.log().to_path(box_com::TOKEN_PATH);
    let form = token.first().expect("token request").form();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(form["client_id"], fixtures::CLIENT_ID);
    assert!(!form.contains_key("box_subject_type"), "{form:?}");
    let claims = jwt_segment(&form["assertion"], 1);
    assert_eq!(claims["box_sub_type"], "enterprise");
    assert_eq!(claims["sub"], fixtures::ENTERPRISE_ID);
    assert_eq!(claims["aud"], "https://api.box.com/oauth2/token");
    assert_eq!(
        jwt_segment(&form["assertion"], 0)["kid"],
        fixtures::JWT_KEY_ID
    );
}

/// A key that does not belong to the configured key id fails the connection test's credentials
/// step with the plugin's declared hint, not a generic OAuth message.
#[tokio::test]
async fn a_jwt_key_that_does_not_match_its_id_says_which_setting_to_check() {
    let env = env().await;
    env.integrate_with_jwt(
        "jwt-enterprise",
        proofpix_emulators::keys::PRIVATE_KEY_B_PEM,
    )
    .await
    .unwrap_or_else(|e| panic!("create integration: {e}"));
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok, "{report:?}");
    assert!(
        s.detail.contains("Add and Manage Public Keys"),
        "{}",
        s.detail
    );
    assert!(!s.detail.contains("PRIVATE KEY"), "no key in messages");
}

fn jwt_segment(jwt: &str, n: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(n).expect("three segments");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A marker Box refuses in the middle of the walk restarts that folder; files already
/// processed are skipped, so each is written once.
#[tokio::test]
async fn an_expired_marker_mid_walk_restarts_the_folder_and_writes_nothing_twice() {
    let env = env().await;
    env.integrate(&[]).await;
    env.files().invalidate_next_marker();
    let report = env.sync().await;
    let refused = env
        .files()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::Items && e.status == 400)
        .count();
    assert_eq!(refused, 1, "one marker was refused");
    assert_eq!(ids(&report), file_ids(&env.images()));
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), env.images().len());
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
}

/// A stream position Box no longer accepts walks the folders again; nothing is analysed again.
#[tokio::test]
async fn an_expired_stream_position_lists_everything_again_without_new_work() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    env.files().expire_stream_positions();
    let writes = env.files().metadata_writes().len();
    let second = env.sync().await;
    assert!(second.files.is_empty(), "{:?}", ids(&second));
    assert_eq!(second.unchanged as usize, first.files.len());
    assert_eq!(env.files().metadata_writes().len(), writes);
    assert!(
        env.files()
            .exchanges()
            .iter()
            .any(|e| e.route == Route::Events && e.status == 400)
    );
}

/// A malformed and a truncated listing page fail that page only; the run retries it.
#[tokio::test]
async fn malformed_and_truncated_pages_are_retried_not_fatal() {
    let env = env().await;
    env.integrate(&[]).await;
    env.files().inject(Route::Items, BoxFault::Malformed, 1);
    env.files()
        .inject_after(Route::Items, 2, BoxFault::Truncated, 1);
    let report = env.sync().await;
    assert_eq!(report.files.len(), env.images().len());
    assert!(report.retries >= 2, "retries: {}", report.retries);
}

// ---------------------------------------------------------------------------------------------
// downloads
// ---------------------------------------------------------------------------------------------

/// `/content` gets the bearer token and answers 302; the download host gets no
/// `Authorization` at all, only Range requests.
#[tokio::test]
async fn the_bearer_token_never_reaches_the_download_host() {
    let env = env().await;
    env.integrate(&[]).await;
    let report = env.sync().await;
    assert!(!report.files.is_empty());
    let exchanges = env.files().exchanges();
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
    let minted = env.b.harness().minted_secrets();
    for r in env
        .b
        .log()
        .all()
        .into_iter()
        .filter(|r| r.path.starts_with("/d/1/"))
    {
        assert!(r.header("authorization").is_none());
        assert!(!minted.iter().any(|t| r.mentions(t)));
    }
}

/// A 401 on `/content` refreshes the token and fetches again, instead of parking the file.
#[tokio::test]
async fn a_token_that_expires_before_a_download_is_renewed_and_the_file_fetched() {
    let env = env().await;
    env.integrate(&[]).await;
    env.files()
        .inject(Route::Content, BoxFault::ExpiredToken, 1);
    let tokens = env.b.tokens().access_tokens_issued();
    let report = env.sync().await;
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    assert_eq!(report.parked, 0);
    assert_eq!(report.files.len(), env.images().len());
    assert!(env.b.tokens().access_tokens_issued() > tokens);
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

fn result_for(file: RemoteFile, i: usize, risk: RiskLevel) -> FileResult {
    FileResult {
        file,
        format: "jpeg".into(),
        risk,
        score: 80,
        findings: Vec::new(),
        summary: format!("GPS 51.5,-0.1 (±10 m); owner J*** D**; #{i}"),
        error: None,
        analysed_at: "2026-11-26T10:00:00Z".into(),
        policy_version: "test".into(),
    }
}

/// 25 results: the fifth write is throttled, so the call fails with Box's retry-after after four
/// instances were created; the retry sends only the other 21, and a file trashed meanwhile gets
/// its own `not-found`. Writing new values later meets 409 and patches each instance.
#[tokio::test]
async fn instances_are_created_then_patched_and_a_throttled_batch_resumes_where_it_stopped() {
    let env = env_with(BoxFilesConfig {
        population: seed::photos(25),
        ..BoxFilesConfig::default()
    })
    .await;
    env.integrate(&[("page_size", "1000")]).await;
    let (mut session, files) = discovered(&env.host).await;
    assert_eq!(files.len(), 25);
    let results: Vec<FileResult> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| result_for(f, i, RiskLevel::High))
        .collect();
    let gone = results[20].file.id.clone();
    assert!(env.files().trash(&gone));
    env.files().inject_after(
        Route::Metadata,
        4,
        BoxFault::Throttle {
            retry_after_secs: 1,
        },
        1,
    );

    let err = session.write_back(&results).await.expect_err("throttled");
    match err.plugin_error() {
        Some(PluginError::RateLimited(r)) => assert_eq!(r.retry_after_ms, Some(1000)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(env.files().metadata_writes().len(), 4);
    let outcomes = session.write_back(&results).await.expect("retry");
    assert_eq!(outcomes.len(), 25);
    for o in &outcomes {
        if o.file_id == gone {
            assert!(
                matches!(&o.outcome, Err(PluginError::NotFound(m)) if m.contains("no longer exists in Box")),
                "{:?}",
                o.outcome
            );
        } else {
            assert!(o.outcome.is_ok(), "{}: {:?}", o.file_id, o.outcome);
        }
    }
    let writes = env.writes_per_file();
    assert_eq!(writes.len(), 24);
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    assert!(
        env.files()
            .metadata_writes()
            .iter()
            .all(|w| w.method == "POST")
    );
    let one = &results[0].file.id;
    let fields = env.files().metadata(one, TEMPLATE).expect("instance");
    assert_eq!(fields["risk"], "High");
    assert_eq!(fields["score"], 80.0);

    // New values: every instance exists, so each write is a 409 then a JSON-Patch.
    let lower: Vec<FileResult> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.file.id != gone)
        .map(|(i, r)| result_for(r.file.clone(), i, RiskLevel::Low))
        .collect();
    let outcomes = session.write_back(&lower).await.expect("patch");
    assert!(outcomes.iter().all(|o| o.outcome.is_ok()));
    let patches: Vec<_> = env
        .files()
        .metadata_writes()
        .into_iter()
        .filter(|w| w.method == "PUT")
        .collect();
    assert_eq!(patches.len(), 24);
    assert_eq!(
        env.files().metadata(one, TEMPLATE).expect("instance")["risk"],
        "Low"
    );
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
    let folder = env.files().folder_id(seed::FIELDWORK).expect("folder");
    assert!(
        connection.contains(&format!("folder Fieldwork ({folder})")),
        "{connection}"
    );
    assert!(
        connection
            .contains("metadata template proofpixPrivacy has risk, score, findings and analysedAt"),
        "{connection}"
    );
    assert!(
        connection.contains("box-user@proofpix.example"),
        "{connection}"
    );
    assert!(
        step(&report, "grant")
            .detail
            .contains(&env.b.download_url())
    );
}

#[tokio::test]
async fn a_folder_not_shared_with_the_service_account_says_whom_to_share_it_with() {
    let env = env().await;
    let folder = env.files().folder_id(seed::FIELDWORK).expect("folder");
    env.files().hide_folder(&folder);
    let detail = connection_problem(&env, &[]).await;
    assert!(
        detail.contains(&format!(
            "Box has no folder {folder} that box-user@proofpix.example can see"
        )),
        "{detail}"
    );
    assert!(
        detail.contains("Share the folder with box-user@proofpix.example"),
        "{detail}"
    );
    assert!(detail.contains("app.box.com/folder/"), "{detail}");
}

#[tokio::test]
async fn a_missing_template_says_how_to_create_it() {
    let env = env().await;
    env.files().remove_template(TEMPLATE);
    let detail = connection_problem(&env, &[]).await;
    assert!(
        detail.contains("the enterprise has no metadata template with the key proofpixPrivacy"),
        "{detail}"
    );
    assert!(
        detail.contains("Admin Console → Content → Metadata"),
        "{detail}"
    );
    assert!(detail.contains("analysedAt (date)"), "{detail}");
}

#[tokio::test]
async fn a_template_without_a_field_names_the_field() {
    let env = env().await;
    let mut t = files::Template::proofpix();
    t.fields.retain(|f| f.key != "score");
    env.files().set_template(t);
    let detail = connection_problem(&env, &[]).await;
    assert!(
        detail.contains("has no field with the key score"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_wrong_secret_or_subject_fails_the_credentials_step_with_boxs_reason() {
    let env = env().await;
    env.try_integrate_with(&[], "not-the-secret")
        .await
        .expect("stored");
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok);
    assert!(
        s.detail.contains("invalid_grant") || s.detail.contains("Grant credentials are invalid"),
        "{}",
        s.detail
    );
    assert!(
        !s.detail.contains("not-the-secret"),
        "no secret in messages"
    );

    let env = self::env().await;
    env.integrate(&[("auth_flow", "user"), ("subject_id", "999")])
        .await;
    let report = env.test().await;
    let s = step(&report, "credentials");
    assert!(!s.ok);
    assert!(s.detail.contains("box_subject_type"), "{}", s.detail);
}

#[tokio::test]
async fn a_folder_name_or_a_non_numeric_enterprise_id_is_refused_at_setup() {
    let env = env().await;
    let err = env
        .try_integrate_with(&[("folders", "Fieldwork")], fixtures::CLIENT_SECRET)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not by name"), "{err}");
    let err = env
        .try_integrate_with(&[("subject_id", "acme-corp")], fixtures::CLIENT_SECRET)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("Enterprise ID"), "{err}");
}

#[tokio::test]
async fn read_only_access_fails_write_back_per_file_with_what_to_grant() {
    let env = env().await;
    env.integrate(&[]).await;
    env.files().set_read_only(true);
    let report = env.sync().await;
    let errs = errors(&report);
    assert_eq!(errs.len(), env.images().len());
    assert!(
        errs.iter()
            .all(|e| e.contains("write-back failed") && e.contains("Editor")),
        "{errs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------------------------

/// Workflow 2: configure with the app's client credentials → `host.test` → walk the folders →
/// analyse every image → metadata instances in the emulator → a Teams message on batch
/// completion → an audit trail with every step, and no secret in it.
#[tokio::test]
async fn workflow_2_configure_test_scan_write_back_announce_and_audit() {
    let env = env().await;
    let teams = teams_notifier(&env.host, ID).await;

    env.integrate(&[]).await;
    let test = env.test().await;
    assert!(test.ok(), "{test:?}");

    let report = env.sync().await;
    let images = env.images();
    assert_eq!(report.files.len(), images.len());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    for outcome in &report.files {
        assert!(outcome.written_back, "{}", outcome.file.name);
        let analysed = outcome.report.as_ref().expect("analysed");
        let fields = env
            .files()
            .metadata(&outcome.file.id, TEMPLATE)
            .expect("instance");
        let word = analysed.risk.as_str();
        let capitalised = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
        assert_eq!(
            fields["risk"],
            capitalised.as_str(),
            "{}",
            outcome.file.name
        );
        assert_eq!(fields["score"], f64::from(analysed.score));
        assert_eq!(
            fields["analysedAt"].as_str().map(|s| !s.is_empty()),
            Some(true)
        );
        let summary = proofpix_pipeline::file_result(&outcome.file, analysed, "").summary;
        let written = fields["findings"].as_str().expect("summary");
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
    assert!(high >= 7, "the seeded phone photos are high risk: {high}");

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
    let details: serde_json::Value = serde_json::from_str(&audit[completed].details).expect("json");
    assert_eq!(details["total"], images.len());
    assert_eq!(details["errors"], 0);
    let mut secrets: Vec<String> = env.b.harness().minted_secrets();
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

/// Workflow 3: later runs read the event stream only. A re-run finds nothing (our own metadata
/// writes are events, but the SHA-1 is unchanged; Box's repeated deliveries are skipped); a new
/// version of one file, a duplicate of its event, an upload into the unconfigured folder and a
/// photo in a new subfolder yield exactly two analyses and two write-backs.
#[tokio::test]
async fn workflow_3_a_rerun_finds_nothing_and_one_changed_file_is_analysed_and_written_once() {
    let env = env().await;
    env.integrate(&[]).await;
    let first = env.sync().await;
    let n = env.images().len();
    assert_eq!(first.files.len(), n);
    assert_eq!(env.files().metadata_writes().len(), n);
    let items_before = env
        .files()
        .exchanges()
        .iter()
        .filter(|e| e.route == Route::Items)
        .count();

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(env.files().metadata_writes().len(), n, "no new write-back");
    let items_after = env
        .files()
        .exchanges()
        .iter()
        .filter(|e| e.route == Route::Items)
        .count();
    assert_eq!(
        items_before, items_after,
        "the re-run read events, not folders"
    );

    let target = env
        .files()
        .file("Fieldwork/Marketing/banner-1.jpg")
        .expect("file");
    assert!(
        env.files()
            .replace_content(&target.id, phone_photo_bytes(999))
    );
    env.files().duplicate_last_event();
    env.files().add_file(files::FileSpec::new(
        "Private/holiday.jpg",
        phone_photo_bytes(998),
        Default::default(),
    ));
    let added = env.files().add_file(files::FileSpec::new(
        "Fieldwork/Site visits/visit-1.jpg",
        phone_photo_bytes(997),
        Default::default(),
    ));
    let third = env.sync().await;
    assert_eq!(
        ids(&third),
        BTreeSet::from([target.id.clone(), added.clone()])
    );
    let writes = env.files().metadata_writes();
    assert_eq!(writes.len(), n + 2, "exactly two more write-backs");
    let patched = writes
        .iter()
        .find(|w| w.file_id == target.id && w.method == "PUT")
        .expect("patched");
    let risk = third
        .files
        .iter()
        .find(|f| f.file.id == target.id)
        .and_then(|f| f.report.as_ref())
        .expect("analysed")
        .risk;
    assert!(
        risk >= proofpix_analysis::RiskLevel::High,
        "the new bytes carry GPS: {risk:?}"
    );
    let word = risk.as_str();
    assert_eq!(
        patched.fields["risk"],
        format!("{}{}", word[..1].to_uppercase(), &word[1..]).as_str()
    );

    let fourth = env.sync().await;
    assert!(fourth.files.is_empty());
}

/// Workflow 4: about a quarter of the requests fail (429 and 503 with retry-after, 500, 502),
/// every token expires mid-run on the emulator's clock, and a marker is refused mid-walk.
/// Every file is still processed and written exactly once and every retry-after is respected
/// (from the emulator's record of real arrival times).
#[tokio::test]
async fn workflow_4_under_faults_every_file_is_processed_once_and_every_retry_after_is_respected() {
    // The clock jumps two hours mid-run. With eight downloads in flight, the jump can fall between
    // a 302 and the fetch of its 15-minute link, which then expires before it is used: a race of
    // this test's time machine, not something two real hours allow. Links outlive the jump here.
    let env = env_with(BoxFilesConfig {
        download_url_ttl: time::Duration::hours(3),
        ..BoxFilesConfig::default()
    })
    .await;
    env.integrate(&[]).await;
    assert!(env.test().await.ok());
    let f = env.files();
    f.clear_traffic();
    let start = f.exchange_count();
    f.chaos(Some(Chaos::throttling_and_errors(36, 1, 0xC0FFEE)));
    f.invalidate_next_marker();
    f.advance_clock_at(start + 25, time::Duration::hours(2));
    let tokens_before = env.b.tokens().access_tokens_issued();

    let report = env.sync().await;
    f.chaos(None);

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
        "one metadata write per file: {writes:?}"
    );
    assert!(
        env.b.tokens().access_tokens_issued() > tokens_before,
        "the expired token was renewed"
    );

    let exchanges = f.exchanges();
    let failed = exchanges.iter().filter(|e| e.status >= 400).count();
    let share = failed as f64 / exchanges.len() as f64;
    assert!(
        exchanges.iter().any(|e| e.status == 401),
        "requests met the expired token"
    );
    let follow_ups = f.retry_follow_ups();
    assert!(
        follow_ups.len() >= 3,
        "only {} retry-after sent",
        follow_ups.len()
    );
    for fu in &follow_ups {
        assert!(
            fu.next.is_some(),
            "{} {} was never retried",
            fu.throttled.method,
            fu.throttled.path
        );
        assert!(
            fu.respected(),
            "{} came back after {:?}, retry-after was {:?} s",
            fu.throttled.key,
            fu.waited(),
            fu.throttled.retry_after_secs
        );
    }
    assert!(report.retries > 0);
    eprintln!(
        "workflow 4: {} exchanges, {failed} failed ({:.0}%), {} retry-after checked, {} retries",
        exchanges.len(),
        share * 100.0,
        follow_ups.len(),
        report.retries
    );
    assert!(share >= 0.2, "failed share {share:.2}");
}

/// Box answers `GET /files/{id}/content` with `202 Accepted` and `Retry-After` while a fresh
/// upload is processed, exactly when the events stream first reports it. That is not content:
/// the file is not recorded with a risk (nor written back) while Box says 202; it stays queued
/// with the reason, is retried no sooner than Box's `Retry-After`, and is analysed, with the
/// risk its bytes carry, once Box serves it.
#[tokio::test]
async fn a_file_box_is_still_processing_is_never_recorded_with_a_risk_and_is_analysed_once_served()
{
    // Runs do not wait for retries here, so the test sees the state between them.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = host_options(8);
    options.pipeline.wait_for_retries = None;
    let host = Host::new(Arc::new(open_store(dir.path())), options)
        .await
        .expect("host");
    let b = box_com::start_with_files(
        Default::default(),
        BoxFilesConfig::default(),
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("box emulator");
    let env = Env { host, b, _dir: dir };
    env.integrate(&[]).await;
    let first = env.sync().await;
    assert!(errors(&first).is_empty(), "{:?}", errors(&first));

    let fresh = env.files().add_file(files::FileSpec::new(
        "Fieldwork/Site visits/just-uploaded.jpg",
        phone_photo_bytes(996),
        Default::default(),
    ));
    env.files().set_content_pending(&fresh, 1);
    env.files().clear_traffic();

    let second = env.sync().await;
    assert!(
        second
            .files
            .iter()
            .all(|f| f.file.id != fresh || f.report.is_none()),
        "analysed while Box said 202: {:?}",
        second.files
    );
    let content: Vec<_> = env
        .files()
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::Content && e.path.contains(&fresh))
        .collect();
    assert!(
        !content.is_empty() && content.iter().all(|e| e.status == 202),
        "{content:?}"
    );
    assert!(
        env.files()
            .exchanges()
            .iter()
            .all(|e| e.route != Route::Download || !e.path.contains(&fresh)),
        "nothing to download yet"
    );
    let record = env
        .host
        .store()
        .file(ID, &fresh)
        .expect("store")
        .expect("the file is known");
    assert_eq!(
        record.last_result, None,
        "no result, so no risk: {record:?}"
    );
    let reason = record.last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("HTTP 202") && reason.contains("not ready"),
        "{reason}"
    );
    assert!(second.still_queued >= 1, "queued for a retry: {second:?}");
    assert!(
        !env.writes_per_file().contains_key(&fresh),
        "nothing written back for it"
    );

    // Box finishes processing: a later run (once the retry is due, no sooner than Box's
    // one-second Retry-After) analyses the bytes and writes the result back once.
    env.files().set_content_ready(&fresh);
    let mut analysed = None;
    for _ in 0..120 {
        let run = env.sync().await;
        if let Some(f) = run.files.into_iter().find(|f| f.file.id == fresh) {
            analysed = Some(f);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let analysed = analysed.expect("analysed once Box served the content");
    let risk = analysed.report.as_ref().expect("a report").risk;
    assert!(
        risk >= proofpix_analysis::RiskLevel::High,
        "the bytes carry GPS: {risk:?}"
    );
    assert!(analysed.written_back, "{analysed:?}");
    assert!(analysed.retried, "{analysed:?}");
    assert_eq!(env.writes_per_file().get(&fresh), Some(&1));
    let follow_ups: Vec<_> = env
        .files()
        .retry_follow_ups()
        .into_iter()
        .filter(|f| f.throttled.key.contains(&fresh))
        .collect();
    assert!(
        !follow_ups.is_empty() && follow_ups.iter().all(|f| f.respected()),
        "{follow_ups:?}"
    );
}
