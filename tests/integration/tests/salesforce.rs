//! The Salesforce connector against the Salesforce emulator, through the host library.
//!
//! - `auth`: each of the four flows (JWT bearer, username-password, client credentials, web
//!   server with PKCE) configured per integration and driven end to end through `Host::sync`;
//!   sandbox vs production audiences.
//! - `discovery`: Files and Attachments on Cases in scope across several `nextRecordsUrl` pages,
//!   distractors skipped, incremental runs on `SystemModstamp` with ties, new links, expired
//!   locators.
//! - `writeback`: chunks of 200 with per-record errors, through a plugin session.
//! - `misconfig`: what `host.test` says for a wrong object, a missing field, a missing
//!   permission, a bad scope and an API version the org does not offer.
//! - `faults`: 401, 403 `REQUEST_LIMIT_EXCEEDED`, malformed and truncated pages.
//! - `workflows`: the seed's workflows 1, 3 and 4.
//!
//! Waits are kept short: the emulator's Retry-After values are 1 s and the pipeline's back-off
//! starts at 20 ms; expiry is driven by the emulator's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proofpix_emulators::salesforce::{
    self, Chaos, CustomObjectDef, FileKind, Permissions, RecordFailure, Route, Salesforce,
    SalesforceConfig, SfFault,
};
use proofpix_emulators::{Clock, Harness};
use proofpix_integration_tests::{host_options, loopback_grant, open_store};
use proofpix_pipeline::{SyncMode, SyncReport};
use proofpix_service::{Host, IntegrationSpec, TestReport};
use proofpix_vault::Secret;

const ID: &str = "sf";
const SCOPE: &str = "Status != 'Closed'";

struct Env {
    host: Host,
    sf: Salesforce,
    _dir: tempfile::TempDir,
}

async fn env_with(config: SalesforceConfig) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path());
    let host = Host::new(Arc::new(store), host_options(4))
        .await
        .expect("host");
    let sf = salesforce::start_org(config, Harness::with_clock(Clock::new()))
        .await
        .expect("salesforce emulator");
    Env {
        host,
        sf,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(SalesforceConfig::default()).await
}

fn base(sf: &Salesforce) -> String {
    sf.base_url().as_str().trim_end_matches('/').to_string()
}

/// Config and secrets for a flow against the emulator.
fn flow_inputs(
    sf: &Salesforce,
    flow: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, Secret>) {
    use salesforce::fixtures as f;
    let mut config: BTreeMap<String, String> = [
        ("auth_flow", flow),
        ("login_url", base(sf).as_str()),
        ("client_id", f::CLIENT_ID),
        ("scope_where", SCOPE),
        ("page_size", "200"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    let mut secrets = BTreeMap::new();
    let mut secret = |k: &str, v: &str| {
        secrets.insert(k.to_string(), Secret::new(v));
    };
    match flow {
        "password" => {
            config.insert("username".into(), f::USERNAME.into());
            secret("client_secret", f::CLIENT_SECRET);
            secret("password", f::PASSWORD);
            secret("security_token", f::SECURITY_TOKEN);
        }
        "jwt-bearer" => {
            config.insert("username".into(), f::USERNAME.into());
            secret("private_key", proofpix_emulators::keys::PRIVATE_KEY_A_PEM);
        }
        "client-credentials" | "authorization-code" => secret("client_secret", f::CLIENT_SECRET),
        _ => {}
    }
    (config, secrets)
}

impl Env {
    async fn integrate(&self, flow: &str, extra: &[(&str, &str)]) {
        self.try_integrate(flow, extra)
            .await
            .unwrap_or_else(|e| panic!("create integration: {e}"));
    }

    async fn try_integrate(
        &self,
        flow: &str,
        extra: &[(&str, &str)],
    ) -> Result<(), proofpix_service::ServiceError> {
        let (mut config, secrets) = flow_inputs(&self.sf, flow);
        for (k, v) in extra {
            config.insert((*k).to_string(), (*v).to_string());
        }
        self.host
            .create_integration(
                IntegrationSpec {
                    id: ID.into(),
                    plugin: "salesforce".into(),
                    config,
                    secrets,
                    grant: loopback_grant(),
                    ..IntegrationSpec::default()
                },
                "operator:test",
            )
            .await
            .map(|_| ())
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

    /// Images a correct connector lists with the default scope: on Cases not Closed.
    fn expected(&self) -> BTreeSet<String> {
        self.sf
            .org()
            .files()
            .into_iter()
            .filter(|f| f.image && f.parent_status != "Closed" && f.parent_status != "Account")
            .map(|f| f.id)
            .collect()
    }

    fn records(&self) -> Vec<salesforce::org::CreatedRecord> {
        self.sf.org().created("ProofPix_Analysis__c")
    }
}

fn ids(report: &SyncReport) -> Vec<String> {
    let mut v: Vec<String> = report.files.iter().map(|f| f.file.id.clone()).collect();
    v.sort();
    v
}

fn failure_text(report: &TestReport) -> String {
    report
        .steps
        .iter()
        .filter(|s| !s.ok)
        .map(|s| format!("{}: {}", s.name, s.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn field<'a>(r: &'a salesforce::org::CreatedRecord, name: &str) -> &'a serde_json::Value {
    r.fields.get(name).unwrap_or(&serde_json::Value::Null)
}

// ---------------------------------------------------------------------------------------------
// auth
// ---------------------------------------------------------------------------------------------

/// The browser's part of the web-server flow: open the authorize URL, read the code off the
/// redirect, hand it to the host.
async fn authorize(env: &Env) {
    let (plugin, ctx) = env.host.context(ID, false).await.expect("context");
    let record = env.host.integration(ID).expect("record");
    let creds = env
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

#[tokio::test]
async fn every_auth_flow_tests_and_syncs_through_the_host() {
    for flow in [
        "jwt-bearer",
        "password",
        "client-credentials",
        "authorization-code",
    ] {
        let env = env().await;
        env.integrate(flow, &[]).await;
        if flow == "authorization-code" {
            authorize(&env).await;
        }
        let report = env.test().await;
        assert!(report.ok(), "{flow}: {}", failure_text(&report));
        let connection = report
            .steps
            .iter()
            .find(|s| s.name == "connection")
            .expect("connection step");
        assert!(
            connection.detail.contains(&format!("({flow} flow)")),
            "{flow}: {}",
            connection.detail
        );

        let sync = env.sync().await;
        let listed: BTreeSet<String> = ids(&sync).into_iter().collect();
        assert_eq!(listed, env.expected(), "{flow}");
        assert!(
            sync.files.iter().all(|f| f.error.is_none()),
            "{flow}: {:?}",
            sync.files
                .iter()
                .filter_map(|f| f.error.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            env.records().len(),
            listed.len(),
            "{flow}: one result record per file"
        );

        let grant = &env.sf.log().to_path(salesforce::TOKEN_PATH)[0].form();
        let expected = match flow {
            "jwt-bearer" => salesforce::JWT_BEARER,
            "password" => "password",
            "client-credentials" => "client_credentials",
            _ => "authorization_code",
        };
        assert_eq!(grant["grant_type"], expected);
    }
}

#[tokio::test]
async fn a_sandbox_integration_signs_jwts_for_test_salesforce_com() {
    let env = env_with(SalesforceConfig {
        environment: salesforce::Environment::Sandbox,
        ..SalesforceConfig::default()
    })
    .await;
    env.integrate("jwt-bearer", &[("environment", "production")])
        .await;
    let report = env.test().await;
    assert!(!report.ok());
    assert!(
        failure_text(&report).contains("test.salesforce.com"),
        "{}",
        failure_text(&report)
    );

    env.integrate("jwt-bearer", &[("environment", "sandbox")])
        .await;
    let report = env.test().await;
    assert!(report.ok(), "{}", failure_text(&report));
}

#[tokio::test]
async fn client_credentials_without_a_my_domain_login_url_is_refused_offline() {
    let env = env().await;
    let (mut config, secrets) = flow_inputs(&env.sf, "client-credentials");
    config.insert("login_url".into(), "https://login.salesforce.com".into());
    let mut grant = loopback_grant();
    grant.hosts.push("https://login.salesforce.com".into());
    let err = env
        .host
        .create_integration(
            IntegrationSpec {
                id: ID.into(),
                plugin: "salesforce".into(),
                config,
                secrets,
                grant,
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("My Domain"), "{err}");
    let err = env
        .try_integrate("password", &[("username", "")])
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("'username' has no value; set it"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// discovery
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn files_and_attachments_on_cases_in_scope_are_listed_across_several_pages() {
    let mut config = SalesforceConfig::default();
    config.api.page_size = 3;
    config.api.seed.cases = 5;
    let env = env_with(config).await;
    env.integrate("password", &[]).await;
    let report = env.sync().await;

    let expected = env.expected();
    assert_eq!(ids(&report).into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(report.files.len(), expected.len(), "each file once");
    assert!(report.pages >= 4, "pages: {}", report.pages);
    let exchanges = env.sf.api.exchanges();
    assert!(
        exchanges
            .iter()
            .filter(|e| e.path.contains("/query/"))
            .count()
            >= 4,
        "nextRecordsUrl was followed"
    );

    // Both kinds, downloaded from their blob fields.
    let files = env.sf.org().files();
    let kind = |id: &str| files.iter().find(|f| f.id == id).map(|f| f.kind);
    assert!(
        report
            .files
            .iter()
            .any(|f| kind(&f.file.id) == Some(FileKind::Attachment))
    );
    assert!(
        report
            .files
            .iter()
            .any(|f| kind(&f.file.id) == Some(FileKind::ContentVersion))
    );
    assert!(exchanges.iter().any(|e| e.path.ends_with("/VersionData")));
    assert!(exchanges.iter().any(|e| e.path.ends_with("/Body")));

    // The analysis found what the fixtures put there, and the records say so.
    for f in &report.files {
        let seeded = files.iter().find(|s| s.id == f.file.id).expect("seeded");
        let risk = f.report.as_ref().expect("analysed").risk;
        assert_eq!(
            risk >= proofpix_analysis::RiskLevel::High,
            seeded.high_risk,
            "{} {risk:?}",
            seeded.name
        );
    }
    let records = env.records();
    assert_eq!(records.len(), expected.len());
    for r in &records {
        let seeded = files
            .iter()
            .find(|s| field(r, "File_Id__c") == &serde_json::json!(s.id))
            .expect("record of a seeded file");
        if seeded.kind == FileKind::ContentVersion {
            assert_eq!(
                field(r, "File_Version__c"),
                &serde_json::json!(seeded.version_id)
            );
        }
        assert_eq!(
            field(r, "Related_Record__c"),
            &serde_json::json!(seeded.parent)
        );
        assert_eq!(field(r, "Name"), &serde_json::json!(seeded.name));
        let level = field(r, "Risk_Level__c").as_str().unwrap_or_default();
        assert_eq!(
            matches!(level, "high" | "critical"),
            seeded.high_risk,
            "{level}"
        );
        assert!(
            field(r, "File_Link__c")
                .as_str()
                .unwrap_or_default()
                .starts_with(&base(&env.sf))
        );
        assert!(
            field(r, "Analysed_At__c")
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        if seeded.high_risk {
            assert!(
                field(r, "Findings_Summary__c")
                    .as_str()
                    .unwrap_or_default()
                    .contains("gps"),
                "{r:?}"
            );
        }
    }
    // No ContentDocumentLink query went out without an id filter (the emulator would refuse it).
    assert!(
        exchanges.iter().all(|e| e.status != 400),
        "a query was refused"
    );
}

#[tokio::test]
async fn incremental_runs_list_only_what_changed_since_the_mark_ties_included() {
    let env = env().await;
    env.integrate("password", &[]).await;
    let first = env.sync().await;
    assert_eq!(first.files.len(), env.expected().len());

    // Two new files at one instant; then a third at the very same millisecond after a sync.
    let clock = env.sf.clock().clone();
    clock.advance(time::Duration::minutes(5));
    let case = env.sf.org().cases()[0].clone();
    let photo = |seed: u32| {
        proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 32,
            height: 32,
            seed,
            ..Default::default()
        })
    };
    let (a, _) = env.sf.org().add_file(&case, "tie-a.jpg", photo(901), false);
    let (b, _) = env.sf.org().add_file(&case, "tie-b.jpg", photo(902), false);
    let second = env.sync().await;
    assert_eq!(ids(&second), {
        let mut v = vec![a.clone(), b.clone()];
        v.sort();
        v
    });
    assert_eq!(
        second.unchanged, 0,
        "nothing before the mark was listed again"
    );

    let (c, _) = env.sf.org().add_file(&case, "tie-c.jpg", photo(903), false);
    let third = env.sync().await;
    assert_eq!(
        ids(&third),
        vec![c],
        "a file stamped at the mark's millisecond is not skipped"
    );
    assert_eq!(
        third.unchanged, 0,
        "files at the mark already seen are not listed again"
    );

    // A File newly linked to a Case in scope (it was on the Account only) is found.
    let account_file = env
        .sf
        .org()
        .files()
        .into_iter()
        .find(|f| f.parent_status == "Account")
        .expect("account file");
    clock.advance(time::Duration::seconds(1));
    env.sf.org().link(&account_file.id, &case);
    let fourth = env.sync().await;
    assert_eq!(ids(&fourth), vec![account_file.id]);
}

#[tokio::test]
async fn an_expired_query_locator_restarts_the_listing_and_every_file_is_processed_once() {
    let mut config = SalesforceConfig::default();
    config.api.page_size = 3;
    let env = env_with(config).await;
    env.integrate("password", &[]).await;
    env.sf
        .api
        .faults()
        .once(Route::QueryMore, SfFault::InvalidLocator);
    let report = env.sync().await;
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        env.expected()
    );
    assert_eq!(report.files.len(), env.expected().len(), "no file twice");
    assert_eq!(env.records().len(), env.expected().len());
}

// ---------------------------------------------------------------------------------------------
// write-back
// ---------------------------------------------------------------------------------------------

fn result(i: usize) -> proofpix_model::FileResult {
    use proofpix_model::{FileResult, RemoteFile, RiskLevel};
    FileResult {
        file: RemoteFile {
            id: format!("069x{i:011}AAA"),
            name: format!("IMG_{i}.jpg"),
            mime_type: Some("image/jpeg".into()),
            size: Some(1000),
            modified: None,
            version: format!("068x{i:011}AAA"),
            container: Some("500x00000000001AAA".into()),
            web_url: Some(format!("https://x.example/{i}")),
            path: None,
            properties: vec![("kind".into(), "file".into())],
        },
        format: "jpeg".into(),
        risk: RiskLevel::High,
        score: 80,
        findings: Vec::new(),
        summary: "GPS 48.1,2.3".into(),
        error: None,
        analysed_at: "2026-01-01T00:00:00Z".into(),
        policy_version: "test".into(),
    }
}

#[tokio::test]
async fn write_back_sends_chunks_of_200_and_maps_each_records_error_to_its_file() {
    let env = env().await;
    env.integrate("password", &[]).await;
    let bad = |i: usize| format!("069x{i:011}AAA");
    env.sf.org().fail_records(RecordFailure {
        field: "File_Id__c".into(),
        values: vec![bad(7), bad(333)],
        status_code: "FIELD_CUSTOM_VALIDATION_EXCEPTION".into(),
        message: "Risk score must be reviewed".into(),
        times: None,
    });
    env.sf.org().fail_records(RecordFailure {
        field: "File_Id__c".into(),
        values: vec![bad(250)],
        status_code: "UNABLE_TO_LOCK_ROW".into(),
        message: "unable to obtain exclusive access to this record".into(),
        times: Some(1),
    });
    let (plugin, ctx) = env.host.context(ID, true).await.expect("context");
    let mut session = plugin.session(&ctx).await.expect("session");
    let results: Vec<_> = (0..450).map(result).collect();
    let outcomes = session.write_back(&results).await.expect("write-back");

    assert_eq!(outcomes.len(), 450);
    let failed: Vec<(&str, String)> = outcomes
        .iter()
        .filter_map(|o| {
            o.outcome.as_ref().err().map(|e| {
                (
                    o.file_id.as_str(),
                    proofpix_runtime::describe_plugin_error(e),
                )
            })
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, bad(7));
    assert!(failed[0].1.contains("Salesforce refused the result record for IMG_7.jpg (FIELD_CUSTOM_VALIDATION_EXCEPTION: Risk score must be reviewed; fields: File_Id__c)"), "{}", failed[0].1);
    assert_eq!(failed[1].0, bad(333));

    let posts: Vec<usize> = env
        .sf
        .log()
        .all()
        .iter()
        .filter(|r| r.path.ends_with("/composite/sobjects"))
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["records"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert_eq!(
        posts,
        vec![200, 200, 1, 50],
        "three chunks, and the locked row of the second sent once more"
    );
    assert_eq!(env.records().len(), 448);
}

// ---------------------------------------------------------------------------------------------
// misconfig
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connection_tests_say_what_to_fix() {
    let env = env().await;

    env.integrate("password", &[("result_object", "Nope__c")])
        .await;
    let text = failure_text(&env.test().await);
    assert!(text.contains("Salesforce says the object Nope__c does not exist (NOT_FOUND); create it (the field help lists its fields) or set `result_object`"), "{text}");

    env.sf.org().set_result_object(Some(
        CustomObjectDef::proofpix_analysis().without_field("Risk_Score__c"),
    ));
    env.integrate("password", &[]).await;
    let text = failure_text(&env.test().await);
    assert!(text.contains("the object ProofPix_Analysis__c has no field Risk_Score__c the integration user can edit; create it or grant edit access to it"), "{text}");
    env.sf
        .org()
        .set_result_object(Some(CustomObjectDef::proofpix_analysis()));

    env.integrate("password", &[("scope_where", "Statu = 'New'")])
        .await;
    let text = failure_text(&env.test().await);
    assert!(
        text.contains("Salesforce rejected the scope Case WHERE Statu = 'New'")
            && text.contains("No such column 'Statu'"),
        "{text}"
    );

    env.integrate("password", &[("api_version", "99.0")]).await;
    let text = failure_text(&env.test().await);
    assert!(text.contains("this org does not offer API version 99.0; set `api_version` to one it offers (newest: 62.0)"), "{text}");

    env.sf.org().set_permissions(Permissions {
        files: false,
        ..Permissions::default()
    });
    env.integrate("password", &[]).await;
    let text = failure_text(&env.test().await);
    assert!(
        text.contains("the integration user cannot query ContentVersion (Salesforce Files)")
            && text.contains("sObject type 'ContentVersion' is not supported"),
        "{text}"
    );
    env.sf.org().set_permissions(Permissions::default());

    let err = env
        .try_integrate("password", &[("scope_where", "Status = 'New")])
        .await
        .expect_err("offline check");
    assert!(
        err.to_string()
            .contains("`scope_where` has an unclosed quote"),
        "{err}"
    );

    env.integrate("password", &[]).await;
    let report = env.test().await;
    assert!(report.ok(), "{}", failure_text(&report));
}

// ---------------------------------------------------------------------------------------------
// faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_spent_api_allowance_is_backed_off_not_failed() {
    let env = env().await;
    env.integrate("password", &[]).await;
    env.sf
        .api
        .faults()
        .times(Route::Query, 2, SfFault::LimitExceeded);
    env.sf
        .api
        .faults()
        .once(Route::Collections, SfFault::LimitExceeded);
    env.sf
        .api
        .faults()
        .once(Route::Blob, SfFault::LimitExceeded);
    let report = env.sync().await;
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        env.expected()
    );
    assert!(
        report.files.iter().all(|f| f.error.is_none()),
        "{:?}",
        report
            .files
            .iter()
            .filter_map(|f| f.error.clone())
            .collect::<Vec<_>>()
    );
    assert!(report.retries >= 3, "retries: {}", report.retries);
    assert_eq!(env.records().len(), env.expected().len());
}

#[tokio::test]
async fn an_expired_session_is_refreshed_and_malformed_pages_are_retried() {
    let env = env().await;
    env.integrate("password", &[]).await;
    env.sf
        .api
        .faults()
        .once(Route::Query, SfFault::ExpiredSession);
    env.sf
        .api
        .faults()
        .once(Route::Query, SfFault::MalformedJson);
    env.sf
        .api
        .faults()
        .once(Route::Query, SfFault::TruncatedJson);
    let report = env.sync().await;
    assert_eq!(
        ids(&report).into_iter().collect::<BTreeSet<_>>(),
        env.expected()
    );
    assert!(report.retries >= 2, "retries: {}", report.retries);
    assert!(
        env.sf.log().count(salesforce::TOKEN_PATH) >= 2,
        "the session was renewed"
    );
}

// ---------------------------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------------------------

/// Workflow 3: a re-run finds nothing new; one changed file yields exactly one new analysis and
/// one write-back.
#[tokio::test]
async fn workflow_3_a_rerun_finds_nothing_and_one_changed_file_is_analysed_once() {
    let env = env().await;
    env.integrate("password", &[]).await;
    let first = env.sync().await;
    let n = env.expected().len();
    assert_eq!(first.files.len(), n);
    assert_eq!(env.records().len(), n);

    let again = env.sync().await;
    assert!(again.files.is_empty(), "re-run analysed {:?}", ids(&again));
    assert_eq!(env.records().len(), n, "no new records");

    env.sf.clock().advance(time::Duration::minutes(1));
    let changed = env
        .sf
        .org()
        .files()
        .into_iter()
        .find(|f| {
            f.kind == FileKind::ContentVersion
                && f.image
                && f.parent_status != "Closed"
                && f.parent_status != "Account"
        })
        .expect("a file");
    let version = env
        .sf
        .org()
        .new_version(&changed.id, None)
        .expect("new version");
    let third = env.sync().await;
    assert_eq!(ids(&third), vec![changed.id.clone()]);
    let records = env.records();
    assert_eq!(records.len(), n + 1, "exactly one write-back");
    let last = records.last().expect("record");
    assert_eq!(field(last, "File_Version__c"), &serde_json::json!(version));

    let fourth = env.sync().await;
    assert!(fourth.files.is_empty());
}

/// Workflow 4: a quarter of the API calls fail (429, 503 with Retry-After, 500, 403
/// REQUEST_LIMIT_EXCEEDED), every token expires mid-run, one locator is invalidated and one page
/// is truncated; every file is still processed exactly once, every Retry-After is respected (by
/// the emulator's monotonic log), and the batch reports its retries.
#[tokio::test]
async fn workflow_4_under_faults_every_file_is_processed_once_and_every_retry_after_is_respected() {
    let mut config = SalesforceConfig::default();
    config.api.page_size = 4;
    config.api.seed.cases = 6;
    let env = env_with(config).await;
    env.integrate("password", &[]).await;
    assert!(env.test().await.ok());
    let api = &env.sf.api;
    api.clear_exchanges();
    api.set_chaos(Some(Chaos {
        every: 4,
        routes: vec![Route::Any],
        faults: vec![
            SfFault::Status {
                status: 429,
                retry_after: Some(1),
            },
            SfFault::Status {
                status: 503,
                retry_after: Some(1),
            },
            SfFault::Status {
                status: 500,
                retry_after: None,
            },
            SfFault::LimitExceeded,
        ],
    }));
    api.faults().once(Route::QueryMore, SfFault::InvalidLocator);
    api.faults().once(Route::Query, SfFault::TruncatedJson);
    // Mid-run the org's clock passes the session lifetime: every token issued so far expires.
    api.advance_clock_after(25, time::Duration::hours(3));
    let tokens_before = env.sf.log().count(salesforce::TOKEN_PATH);

    let report = env.sync().await;
    api.set_chaos(None);

    let expected = env.expected();
    let listed = ids(&report);
    assert_eq!(
        listed.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every file"
    );
    assert_eq!(listed.len(), expected.len(), "exactly once");
    assert!(
        report
            .files
            .iter()
            .all(|f| f.error.is_none() && f.written_back),
        "{:?}",
        report
            .files
            .iter()
            .filter_map(|f| f.error.clone())
            .collect::<Vec<_>>()
    );
    let written: Vec<String> = env
        .records()
        .iter()
        .map(|r| {
            field(r, "File_Id__c")
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(written.len(), expected.len(), "one record per file");
    assert_eq!(written.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        env.sf.log().count(salesforce::TOKEN_PATH) > tokens_before,
        "the expired session was renewed"
    );

    // Every Retry-After sent was waited out before the same request came again.
    let exchanges = api.exchanges();
    let mut checked = 0;
    for (i, e) in exchanges.iter().enumerate() {
        let Some(secs) = e.retry_after else { continue };
        let again = exchanges
            .iter()
            .skip(i + 1)
            .find(|n| n.key() == e.key())
            .unwrap_or_else(|| panic!("{} {} was never retried", e.method, e.path));
        let waited = again.at.duration_since(e.at);
        assert!(
            waited >= Duration::from_secs(secs),
            "{} {} retried after {waited:?}, Retry-After was {secs} s",
            e.method,
            e.path
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} Retry-After answers were checked"
    );
    let injected = exchanges.iter().filter(|e| e.injected).count();
    assert!(
        report.retries >= 3 && injected >= 4,
        "retries {} injected {injected}",
        report.retries
    );
    assert!(
        report.batch.retried > 0 || report.retries > 0,
        "the batch records its retries"
    );
}

/// Workflow 1: configure with credentials → connection test → discover attachments and files on
/// Cases → analyse → result records in the org → one Slack message per high-risk file (and the
/// batch summary) → the batch recorded, the deliveries audited.
#[tokio::test]
async fn workflow_1_records_results_in_salesforce_and_alerts_slack_per_high_risk_file() {
    use proofpix_emulators::slack::{self, web};
    let env = env().await;
    let workspace = slack::start_workspace(
        Default::default(),
        web::WorkspaceConfig::default(),
        Harness::default(),
    )
    .await
    .expect("slack emulator");
    let mut config = BTreeMap::new();
    config.insert("channel".to_string(), "#compliance".to_string());
    config.insert("api_base_url".to_string(), workspace.api_base());
    config.insert(
        "files_base_url".to_string(),
        workspace
            .files_base()
            .as_str()
            .trim_end_matches('/')
            .to_string(),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "bot_token".to_string(),
        Secret::new(slack::fixtures::BOT_TOKEN),
    );
    secrets.insert(
        "signing_secret".to_string(),
        Secret::new(slack::fixtures::SIGNING_SECRET),
    );
    env.host
        .create_integration(
            IntegrationSpec {
                id: "alerts".into(),
                plugin: "slack".into(),
                config,
                secrets,
                grant: loopback_grant(),
                subscriptions: Some(proofpix_service::Subscriptions {
                    sources: vec![ID.into()],
                    events: vec!["high-risk".into(), "batch-completed".into()],
                    ..proofpix_service::Subscriptions::default()
                }),
                schedule: None,
            },
            "operator:test",
        )
        .await
        .expect("slack integration");

    env.integrate("password", &[]).await;
    let test = env.test().await;
    assert!(test.ok(), "{}", failure_text(&test));
    let report = env.sync().await;

    let expected = env.expected();
    assert_eq!(ids(&report).into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        env.records().len(),
        expected.len(),
        "a result record per file"
    );
    assert!(
        report.files.iter().any(|f| f
            .file
            .properties
            .iter()
            .any(|(k, v)| k == "kind" && v == "attachment")),
        "attachments on cases were discovered"
    );

    let high: Vec<_> = report
        .files
        .iter()
        .filter(|f| {
            f.report
                .as_ref()
                .is_some_and(|r| r.risk >= proofpix_analysis::RiskLevel::High)
        })
        .collect();
    assert!(!high.is_empty());
    let posted = workspace.workspace().posted();
    assert_eq!(
        posted.len(),
        high.len() + 1,
        "one message per high-risk file and one batch summary"
    );
    assert!(posted.iter().all(|m| m.channel == web::seed::COMPLIANCE));
    for f in &high {
        let named = posted.iter().any(|m| {
            let blocks = m.blocks.as_ref().map(|b| b.to_string()).unwrap_or_default();
            blocks.contains(&f.file.name)
                || m.text.as_deref().is_some_and(|t| t.contains(&f.file.name))
        });
        assert!(named, "no message names {}", f.file.name);
    }

    let batch = env
        .host
        .store()
        .batch(report.batch.id)
        .expect("store")
        .expect("batch recorded");
    assert_eq!(batch.total as usize, expected.len());
    assert_eq!(batch.errors, 0);
    let sent = env
        .host
        .store()
        .audit_latest(500)
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "notify.sent" && e.target == "alerts")
        .count();
    assert_eq!(sent, high.len() + 1, "every delivery is audited");
}

const OUTBOUND_TOKEN: &str = "om-2f9c41d7e8a04b6c";
const ORG_ID: &str = "00D5g000004ABCDEAZ";

fn outbound_message(org: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5g000000XYZ1AAB</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/60.0/00D5g000004ABCD</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/60.0/00D5g000004ABCD</PartnerUrl>
   <Notification>
    <Id>04l5g00000ABCDEAA1</Id>
    <sObject xsi:type="sf:ContentVersion" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0685g00000AbCdEAAV</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    )
    .into_bytes()
}

fn soap(path: &str, body: Vec<u8>) -> proofpix_model::InboundRequest {
    proofpix_model::InboundRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "text/xml; charset=utf-8".into()),
            ("soapaction".into(), "\"\"".into()),
        ],
        body,
    }
}

/// Salesforce Outbound Messages (reference §1.6): unsigned, so the hook URL carries a token the
/// host checks and the org id must match; an accepted message is acknowledged with the SOAP Ack
/// and triggers an incremental sync that analyses exactly the changed file.
#[tokio::test]
async fn an_outbound_message_is_acknowledged_and_the_changed_file_analysed_once() {
    let env = env().await;
    let (mut config, mut secrets) = flow_inputs(&env.sf, "password");
    config.insert("organization_id".into(), ORG_ID.into());
    secrets.insert("outbound_token".into(), Secret::new(OUTBOUND_TOKEN));
    env.host
        .create_integration(
            IntegrationSpec {
                id: ID.into(),
                plugin: "salesforce".into(),
                config,
                secrets,
                grant: loopback_grant(),
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect("integration");
    let n = env.sync().await.files.len();
    assert_eq!(n, env.expected().len());

    // Wrong token, no token, another org: refused, nothing queued.
    for (path, org) in [
        ("/om-guessed", ORG_ID),
        ("", ORG_ID),
        (&*format!("/{OUTBOUND_TOKEN}"), "00D000000000001AAA"),
    ] {
        let err = env
            .host
            .handle_webhook(ID, soap(path, outbound_message(org)))
            .await
            .expect_err("a forged outbound message was accepted");
        let text = err.to_string();
        assert!(
            text.contains("outbound token") || text.contains("organization"),
            "{text}"
        );
    }

    env.sf.clock().advance(time::Duration::minutes(1));
    let changed = env
        .sf
        .org()
        .files()
        .into_iter()
        .find(|f| {
            f.kind == FileKind::ContentVersion
                && f.image
                && f.parent_status != "Closed"
                && f.parent_status != "Account"
        })
        .expect("a file");
    env.sf
        .org()
        .new_version(&changed.id, None)
        .expect("new version");

    // The 15-character form of the org id matches too.
    let (response, queued, resync) = env
        .host
        .handle_webhook(
            ID,
            soap(
                &format!("/{OUTBOUND_TOKEN}"),
                outbound_message(&ORG_ID[..15]),
            ),
        )
        .await
        .expect("outbound message");
    assert_eq!(response.status, 200);
    let body = String::from_utf8(response.body).expect("utf-8");
    assert!(body.contains("<Ack>true</Ack>"), "{body}");
    assert!(
        body.contains("http://soap.sforce.com/2005/09/outbound"),
        "{body}"
    );
    assert_eq!((queued, resync), (0, true));

    let after = env.sync().await;
    assert_eq!(ids(&after), vec![changed.id.clone()]);
    assert_eq!(env.records().len(), n + 1, "exactly one more result record");

    // Salesforce delivers at least once: a duplicate is acknowledged and finds nothing new.
    let (response, _, _) = env
        .host
        .handle_webhook(
            ID,
            soap(&format!("/{OUTBOUND_TOKEN}"), outbound_message(ORG_ID)),
        )
        .await
        .expect("duplicate");
    assert_eq!(response.status, 200);
    assert!(env.sync().await.files.is_empty());
}

/// Re-pointing an integration at another org (a new login URL) must not reuse the tokens and
/// `instance_url` the old org issued: the next run authenticates against the new one.
#[tokio::test]
async fn a_new_login_url_authenticates_afresh_instead_of_reusing_the_old_orgs_tokens() {
    let env = env().await;
    env.integrate("password", &[]).await;
    let first = env.sync().await;
    assert!(!first.files.is_empty());
    let old_instance = env
        .host
        .store()
        .tokens(ID)
        .expect("store")
        .expect("tokens after a sync")
        .context["instance_url"]
        .clone();

    let other = salesforce::start_org(
        SalesforceConfig::default(),
        Harness::with_clock(Clock::new()),
    )
    .await
    .expect("second org");
    let (config, secrets) = flow_inputs(&other, "password");
    env.host
        .create_integration(
            IntegrationSpec {
                id: ID.into(),
                plugin: "salesforce".into(),
                config,
                secrets,
                grant: loopback_grant(),
                ..IntegrationSpec::default()
            },
            "operator:test",
        )
        .await
        .expect("re-point");
    // A page-size edit alone would keep them; the login URL changed, so they are not used.
    let report = env
        .host
        .sync(ID, SyncMode::Incremental)
        .await
        .expect("sync against the new org");
    assert!(
        !report.files.is_empty(),
        "the new org's files were analysed"
    );
    assert!(
        report.files.iter().all(|f| f.error.is_none()),
        "{:?}",
        report
            .files
            .iter()
            .filter_map(|f| f.error.as_ref())
            .collect::<Vec<_>>()
    );
    assert!(
        !other.org().created("ProofPix_Analysis__c").is_empty(),
        "results went to the new org"
    );
    let new_instance = env
        .host
        .store()
        .tokens(ID)
        .expect("store")
        .expect("tokens")
        .context["instance_url"]
        .clone();
    assert_ne!(new_instance, old_instance);
    let stored = env.host.store().tokens(ID).expect("store").expect("tokens");
    assert!(
        stored.context.contains_key("proofpix.issuer"),
        "stored tokens carry the mark of the setup that issued them"
    );
}
