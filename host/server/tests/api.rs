//! The daemon's API and control loop, driven through the router with
//! `oneshot` (no socket): every route for every role, bad input, secrets
//! never returned, scheduling with a controllable clock, webhooks.
// Tests seed the store directly; the crate itself may not write it (see .ci/owners).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use proofpix_pipeline::PipelineOptions;
use proofpix_server::{AppState, DaemonConfig};
use proofpix_service::{Host, HostOptions};
use proofpix_store::{ApiTokenRecord, Store};
use proofpix_vault::MasterKey;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Daemon {
    _tmp: tempfile::TempDir,
    state: AppState,
    router: Router,
    samples: std::path::PathBuf,
}

const VIEWER: &str = "ppx_test_viewer";
const OPERATOR: &str = "ppx_test_operator";
const ADMIN: &str = "ppx_test_admin";

fn cache_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

async fn daemon() -> Daemon {
    daemon_with(DaemonConfig::default()).await
}

async fn daemon_with(config: DaemonConfig) -> Daemon {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("home"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        cache_dir: Some(cache_dir()),
        pipeline: PipelineOptions {
            retry_base: Duration::from_millis(20),
            ..PipelineOptions::default()
        },
        // A development build signs its first-party plugins with its own key.
        trust_development_build: true,
        ..HostOptions::default()
    };
    let host = Host::new(store.clone(), options).await.unwrap();
    host.add_plugin(&std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap())
        .await
        .unwrap();
    for (token, role) in [(VIEWER, "viewer"), (OPERATOR, "operator"), (ADMIN, "admin")] {
        let record = ApiTokenRecord {
            name: format!("test-{role}"),
            role: role.into(),
            created_by: "test".into(),
            created_at: store.now(),
        };
        store
            .put_api_token(&proofpix_server::auth::token_hash(token), &record, "test")
            .unwrap();
    }
    let samples = tmp.path().join("samples");
    proofpix_fixtures::write_samples(&samples).unwrap();
    let state = proofpix_server::state(host, config);
    let router = proofpix_server::router(state.clone());
    Daemon {
        _tmp: tmp,
        state,
        router,
        samples,
    }
}

async fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    raw(d, req).await
}

async fn raw(d: &Daemon, req: Request<Body>) -> (StatusCode, Value) {
    let resp = d.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn add_samples_integration(d: &Daemon, id: &str) {
    let body = json!({
        "id": id,
        "plugin": "local-folder",
        "config": {"folder": d.samples.to_str().unwrap()},
        "grant": {"mounts": ["/input"]},
        "schedule": "15m",
    });
    let (status, v) = call(d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

async fn wait_for_batches(d: &Daemon, id: &str, n: usize) -> Vec<proofpix_store::BatchRecord> {
    for _ in 0..600 {
        let b = d
            .state
            .host()
            .store()
            .recent_batches(Some(id), 100)
            .unwrap();
        if b.len() >= n && !d.state.is_running(id) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {n} batches for {id} within 30 s");
}

/// (method, path, body, least role allowed).
fn routes() -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    vec![
        ("GET", "/api/plugins".into(), None, "viewer"),
        ("GET", "/api/plugins/local-folder".into(), None, "viewer"),
        ("GET", "/api/integrations".into(), None, "viewer"),
        ("GET", "/api/integrations/samples".into(), None, "viewer"),
        (
            "GET",
            "/api/integrations/samples/files".into(),
            None,
            "viewer",
        ),
        (
            "GET",
            "/api/integrations/samples/parked".into(),
            None,
            "viewer",
        ),
        (
            "GET",
            "/api/integrations/samples/remediation".into(),
            None,
            "viewer",
        ),
        ("GET", "/api/results/1".into(), None, "viewer"),
        ("GET", "/api/batches".into(), None, "viewer"),
        ("GET", "/api/batches/1".into(), None, "viewer"),
        ("GET", "/api/audit".into(), None, "viewer"),
        ("GET", "/api/settings".into(), None, "viewer"),
        ("GET", "/api/stats".into(), None, "viewer"),
        ("GET", "/api/session".into(), None, "viewer"),
        (
            "POST",
            "/api/integrations/samples/test".into(),
            None,
            "operator",
        ),
        (
            "POST",
            "/api/integrations/samples/sync".into(),
            None,
            "operator",
        ),
        (
            "POST",
            "/api/integrations/samples/disable".into(),
            None,
            "operator",
        ),
        (
            "POST",
            "/api/integrations/samples/enable".into(),
            None,
            "operator",
        ),
        (
            "POST",
            "/api/integrations/samples/parked/999/retry".into(),
            None,
            "operator",
        ),
        (
            "POST",
            "/api/integrations".into(),
            Some(json!({"id": "new-one", "plugin": "local-folder", "config": {"folder": "/tmp"}})),
            "admin",
        ),
        (
            "PATCH",
            "/api/integrations/samples".into(),
            Some(json!({"schedule": "30m"})),
            "admin",
        ),
        (
            "DELETE",
            "/api/integrations/does-not-exist".into(),
            None,
            "admin",
        ),
        (
            "POST",
            "/api/integrations/samples/authorize".into(),
            None,
            "admin",
        ),
        (
            "PUT",
            "/api/integrations/samples/remediation".into(),
            Some(json!({"actions": [], "min_risk": "critical"})),
            "admin",
        ),
        (
            "DELETE",
            "/api/integrations/samples/remediation".into(),
            None,
            "admin",
        ),
        (
            "PUT",
            "/api/settings".into(),
            Some(json!({"auto_sync": true, "default_schedule": "1h"})),
            "admin",
        ),
        ("GET", "/api/tokens".into(), None, "admin"),
        (
            "POST",
            "/api/tokens".into(),
            Some(json!({"name": "made-in-test", "role": "viewer"})),
            "admin",
        ),
        ("DELETE", "/api/tokens/not-a-token".into(), None, "admin"),
        (
            "POST",
            "/api/tokens/not-a-token/rotate".into(),
            None,
            "admin",
        ),
        ("GET", "/api/files?q=x&risk=high".into(), None, "viewer"),
        ("GET", "/api/files.csv".into(), None, "viewer"),
        (
            "POST",
            "/api/integrations/samples/remediation/actions".into(),
            Some(json!({"file": "nope.jpg", "action": "quarantine"})),
            "admin",
        ),
    ]
}

#[tokio::test]
async fn every_route_refuses_missing_tokens_and_roles_below_its_own() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let rank = |r: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    for (method, path, body, least) in routes() {
        let (status, v) = call(&d, method, &path, None, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token: {v}"
        );
        assert_eq!(v["status"], 401, "problem document for {method} {path}");
        for (token, role) in [(VIEWER, "viewer"), (OPERATOR, "operator"), (ADMIN, "admin")] {
            let (status, v) = call(&d, method, &path, Some(token), body.clone()).await;
            if rank(role) < rank(least) {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {role}: {v}"
                );
                assert!(
                    v["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("needs the {least} role")),
                    "{v}"
                );
            } else {
                assert!(
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && !status.is_server_error(),
                    "{method} {path} as {role} got {status}: {v}"
                );
            }
            // Let a started sync finish before the next one.
            if path.ends_with("/sync") && rank(role) >= rank(least) {
                wait_for_batches(&d, "samples", 1).await;
            }
        }
    }
}

#[tokio::test]
async fn a_remediation_policy_is_set_checked_against_the_plugin_and_removed() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let path = "/api/integrations/samples/remediation";
    let (status, v) = call(&d, "GET", path, Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"policy": null, "available": []}));

    // local-folder offers no action: enabling one is refused with what to do.
    let (status, v) = call(
        &d,
        "PUT",
        path,
        Some(ADMIN),
        Some(json!({"actions": ["replace-with-sanitised"], "simulate": false})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("not offered by plugin local-folder") && detail.contains("remove it"),
        "{v}"
    );
    // Unknown fields and wrong types are 4xx, never a 500, and change nothing.
    for bad in [
        json!({"actions": [], "dry_run": true}),
        json!({"actions": "all"}),
        json!({"min_risk": "severe"}),
    ] {
        let (status, v) = call(&d, "PUT", path, Some(ADMIN), Some(bad.clone())).await;
        assert!(status.is_client_error(), "{bad}: {status} {v}");
    }
    assert_eq!(
        call(&d, "GET", path, Some(VIEWER), None).await.1["policy"],
        json!(null)
    );

    // A policy without actions is valid; defaults are filled in (simulation on).
    let (status, v) = call(
        &d,
        "PUT",
        path,
        Some(ADMIN),
        Some(json!({"actions": [], "min_risk": "critical", "delay_secs": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["policy"],
        json!({"actions": [], "min_risk": "critical", "delay_secs": 3600, "simulate": true})
    );
    let (_, v) = call(&d, "GET", path, Some(VIEWER), None).await;
    assert_eq!(v["policy"]["min_risk"], "critical");
    // The integration's other settings are untouched by the policy, and the policy is not in
    // its config (the plugin's own settings only).
    let (_, i) = call(&d, "GET", "/api/integrations/samples", Some(VIEWER), None).await;
    assert_eq!(i["schedule"], "15m");
    assert!(i["config"].get("remediation").is_none(), "{i}");
    // A PATCH of the integration keeps the policy.
    let (status, _) = call(
        &d,
        "PATCH",
        "/api/integrations/samples",
        Some(ADMIN),
        Some(json!({"schedule": "30m"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, v) = call(&d, "GET", path, Some(VIEWER), None).await;
    assert_eq!(v["policy"]["delay_secs"], 3600);

    // The pixel stage is switched by PATCH, shown in the view (not in the config), and kept
    // by a later PATCH that does not mention it.
    let (_, i) = call(&d, "GET", "/api/integrations/samples", Some(VIEWER), None).await;
    assert_eq!(i["pixels"], false, "{i}");
    let (status, i) = call(
        &d,
        "PATCH",
        "/api/integrations/samples",
        Some(ADMIN),
        Some(json!({"pixels": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{i}");
    assert_eq!(i["pixels"], true, "{i}");
    assert!(i["config"].get("proofpix.pixels").is_none(), "{i}");
    let (_, i) = call(
        &d,
        "PATCH",
        "/api/integrations/samples",
        Some(ADMIN),
        Some(json!({"schedule": "45m"})),
    )
    .await;
    assert_eq!(i["pixels"], true, "{i}");

    let (status, _) = call(&d, "DELETE", path, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = call(&d, "GET", path, Some(VIEWER), None).await;
    assert_eq!(v["policy"], json!(null));
    let (status, _) = call(
        &d,
        "GET",
        "/api/integrations/nope/remediation",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Each change is in the audit trail with its actor and, for a new policy, the policy.
    let (_, audit) = call(&d, "GET", "/api/audit?limit=1000", Some(ADMIN), None).await;
    let policy_changes: Vec<&Value> = audit
        .as_array()
        .expect("audit entries")
        .iter()
        .filter(|e| {
            e["target"] == "samples"
                && e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("remediation.policy."))
        })
        .collect();
    assert_eq!(policy_changes.len(), 2, "{audit}");
    // Newest first.
    assert_eq!(policy_changes[0]["action"], "remediation.policy.remove");
    assert_eq!(policy_changes[1]["action"], "remediation.policy.set");
    assert_eq!(policy_changes[1]["details"]["min_risk"], "critical");
    assert!(
        policy_changes
            .iter()
            .all(|e| e["actor"] == "token:test-admin"),
        "{audit}"
    );
}

#[tokio::test]
async fn secrets_are_write_only() {
    let d = daemon().await;
    let secret = "wb-SuperSecretValue-123";
    let body = json!({
        "id": "wb",
        "plugin": "well-behaved",
        "config": {},
        "secrets": {"token": secret, "signing_secret": "sign-SuperSecret-456"},
    });
    let (status, v) = call(&d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["secrets_set"], json!(["signing_secret", "token"]));
    let mut everything = v.to_string();
    for path in [
        "/api/integrations",
        "/api/integrations/wb",
        "/api/audit?limit=1000",
        "/api/stats",
        "/api/batches",
    ] {
        everything.push_str(&call(&d, "GET", path, Some(ADMIN), None).await.1.to_string());
    }
    let mut export = Vec::new();
    d.state.host().store().audit_export(&mut export).unwrap();
    everything.push_str(&String::from_utf8_lossy(&export));
    for s in [secret, "sign-SuperSecret-456"] {
        assert!(
            !everything.contains(s),
            "a secret leaked into an API response or the audit log"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_never_a_500() {
    let d = daemon().await;
    let post = |body: &'static str, ctype: Option<&'static str>| {
        let mut r = Request::builder()
            .method("POST")
            .uri("/api/integrations")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"));
        if let Some(c) = ctype {
            r = r.header(header::CONTENT_TYPE, c);
        }
        r.body(Body::from(body)).unwrap()
    };
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post("{not json", Some("application/json")),
            StatusCode::BAD_REQUEST,
            "Failed to parse the request body as JSON",
        ),
        (
            post(
                r#"{"id":"a","plugin":"local-folder","nope":1}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `nope`",
        ),
        (
            post(
                r#"{"id":5,"plugin":"local-folder"}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            post(r#"{"id":"a","plugin":"local-folder"}"#, None),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        ),
        (
            post(
                r#"{"id":"a","plugin":"local-folder","config":{}}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "\"folder\" (Folder) is required",
        ),
        (
            post(
                r#"{"id":"a","plugin":"local-folder","config":{"folder":"/x","colour":"red"}}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field \"colour\"",
        ),
        (
            post(
                r#"{"id":"Bad Name","plugin":"local-folder","config":{"folder":"/x"}}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "1-64 characters",
        ),
        (
            post(
                r#"{"id":"a","plugin":"no-such-plugin"}"#,
                Some("application/json"),
            ),
            StatusCode::NOT_FOUND,
            "there is no plugin",
        ),
        (
            post(
                r#"{"id":"a","plugin":"local-folder","config":{"folder":"/x"},"schedule":"every so often"}"#,
                Some("application/json"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schedule",
        ),
    ];
    for (req, expected, says) in cases {
        let (status, v) = raw(&d, req).await;
        assert_eq!(status, expected, "{v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(says),
            "expected {says:?} in {v}"
        );
    }
    let huge = format!(
        r#"{{"id":"a","plugin":"local-folder","config":{{"folder":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let req = Request::builder()
        .method("POST")
        .uri("/api/integrations")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .unwrap();
    assert_eq!(raw(&d, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, v) = call(&d, "GET", "/api/no-such-thing", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let d = daemon().await;
    let (status, doc) = call(&d, "GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (_, path, _, _) in routes() {
        let templated: String = path
            .replace("/samples", "/{id}")
            .replace("/local-folder", "/{id}")
            .replace("/does-not-exist", "/{id}")
            .replace("/results/1", "/results/{id}")
            .replace("/batches/1", "/batches/{id}")
            .replace("/parked/999", "/parked/{item}")
            .replace("/not-a-token", "/{name}");
        let templated = templated.split('?').next().unwrap().to_string();
        assert!(
            paths.contains_key(&templated),
            "{templated} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn the_scheduler_runs_integrations_when_due_and_not_before() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let t0 = time::OffsetDateTime::now_utc();
    assert!(
        proofpix_server::scheduler_tick(&d.state, t0).is_empty(),
        "a start does not fire everything"
    );
    assert!(proofpix_server::scheduler_tick(&d.state, t0 + time::Duration::minutes(10)).is_empty());
    // 15 minutes plus at most a tenth of the interval of jitter.
    assert_eq!(
        proofpix_server::scheduler_tick(&d.state, t0 + time::Duration::minutes(17)),
        vec!["samples".to_string()]
    );
    let batches = wait_for_batches(&d, "samples", 1).await;
    assert_eq!(batches[0].ok, 7);

    // Disabled integrations and auto-sync off are not scheduled.
    call(
        &d,
        "POST",
        "/api/integrations/samples/disable",
        Some(OPERATOR),
        None,
    )
    .await;
    assert!(proofpix_server::scheduler_tick(&d.state, t0 + time::Duration::minutes(40)).is_empty());
    call(
        &d,
        "POST",
        "/api/integrations/samples/enable",
        Some(OPERATOR),
        None,
    )
    .await;
    call(
        &d,
        "PUT",
        "/api/settings",
        Some(ADMIN),
        Some(json!({"auto_sync": false})),
    )
    .await;
    assert!(proofpix_server::scheduler_tick(&d.state, t0 + time::Duration::hours(5)).is_empty());
}

#[tokio::test]
async fn one_run_per_integration_at_a_time() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let first = call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    let second = call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(first.1["outcome"], "started");
    assert!(
        second.1["outcome"] == "follow-up" || second.1["outcome"] == "started",
        "{:?}",
        second.1
    );
    let batches = wait_for_batches(&d, "samples", 1).await;
    let total: u64 = batches.iter().map(|b| b.ok).sum();
    assert_eq!(
        total, 7,
        "each file analysed once whatever the number of runs: {batches:?}"
    );
}

/// A file server for the well-behaved plugin: `/files` lists, and
/// `/files/{id}/content` serves a generated image.
async fn file_server() -> String {
    use axum::extract::Path;
    use axum::routing::get;
    let app = Router::new()
        .route("/files", get(|| async { axum::Json(json!([])) }))
        .route("/writeback", axum::routing::post(|| async { "ok" }))
        .route(
            "/files/{id}/content",
            get(|Path(id): Path<String>| async move {
                let exif = proofpix_fixtures::phone_photo(
                    7,
                    proofpix_fixtures::Gps {
                        lat: 48.8584,
                        lon: 2.2945,
                        alt: None,
                    },
                );
                let _ = id;
                proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
                    width: 32,
                    height: 32,
                    seed: 7,
                    exif: Some(exif),
                    ..Default::default()
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_verified_webhook_queues_just_the_changed_file_and_a_forged_one_is_refused() {
    use hmac::{Hmac, Mac};
    let d = daemon().await;
    let base = file_server().await;
    let body = json!({
        "id": "wb",
        "plugin": "well-behaved",
        "config": {"base_url": base},
        "secrets": {"token": "t", "signing_secret": "whsec-test"},
        "grant": {"hosts": [base], "allow_loopback": true},
    });
    let (status, v) = call(&d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let hook = |payload: &'static str, signature: String| {
        Request::builder()
            .method("POST")
            .uri("/hooks/wb")
            .header("x-signature", signature)
            .body(Body::from(payload))
            .unwrap()
    };
    let (status, _) = raw(&d, hook("photo-1", "00".repeat(32))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a forged signature is refused"
    );
    assert!(
        d.state
            .host()
            .store()
            .recent_batches(Some("wb"), 10)
            .unwrap()
            .is_empty()
    );

    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"whsec-test").unwrap();
    mac.update(b"photo-1");
    let (status, v) = raw(
        &d,
        hook("photo-1", hex::encode(mac.finalize().into_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        Value::String("ok".into()),
        "the plugin's answer goes back to the platform"
    );
    let batches = wait_for_batches(&d, "wb", 1).await;
    assert_eq!(batches[0].total, 1);
    let result = d
        .state
        .host()
        .store()
        .result(batches[0].result_ids[0])
        .unwrap()
        .unwrap();
    assert_eq!(result.remote_id, "photo-1");
    assert_eq!(
        result.risk.as_str(),
        "critical",
        "GPS with the owner's name"
    );
}

// ----- the plugin trust boundary on the server (issue 11) -------------------

/// Loads the hostile test plugin and adds an integration running `mode`.
async fn hostile_integration(d: &Daemon, id: &str, mode: &str) {
    d.state
        .host()
        .add_plugin(&std::fs::read(proofpix_plugin_artifacts::TEST_HOSTILE).unwrap())
        .await
        .unwrap();
    let body = json!({"id": id, "plugin": "hostile", "config": {"mode": mode}});
    let (status, v) = call(d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// Sends `req` and returns the whole response: status, headers, body text.
async fn full(d: &Daemon, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = d.router.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

fn header_str<'a>(h: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn a_hook_answer_shaped_like_a_web_page_is_served_as_inert_text() {
    let d = daemon().await;
    hostile_integration(&d, "evil", "hook-html").await;
    let (status, h, body) = full(&d, get("/hooks/evil")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        header_str(&h, "content-type"),
        "text/plain; charset=utf-8",
        "text/html from a plugin is not HTML on the dashboard's origin"
    );
    assert_eq!(header_str(&h, "x-content-type-options"), "nosniff");
    assert_eq!(
        h.get_all("content-security-policy").iter().count(),
        1,
        "the plugin's own CSP is dropped"
    );
    assert_eq!(
        header_str(&h, "content-security-policy"),
        "sandbox; default-src 'none'"
    );
    assert_eq!(header_str(&h, "cache-control"), "no-store");
    assert_eq!(header_str(&h, "referrer-policy"), "no-referrer");
    assert!(
        body.starts_with("<!doctype html>"),
        "the body is kept as sent: {body}"
    );

    // A status outside 200-599 becomes a 502, and no other plugin header passes
    // (here a Set-Cookie that would plant a session).
    hostile_integration(&d, "odd", "hook-bad-status").await;
    let (status, h, _) = full(&d, get("/hooks/odd/x")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(h.get("set-cookie").is_none(), "{h:?}");
    assert_eq!(header_str(&h, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header_str(&h, "content-security-policy"),
        "sandbox; default-src 'none'"
    );
}

#[tokio::test]
async fn cookies_credentials_and_proxy_headers_never_reach_a_plugin() {
    let d = daemon().await;
    hostile_integration(&d, "echo", "hook-echo-headers").await;
    let (status, _, cookie) = session_cookie_for(&d, ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let req = Request::builder()
        .method("POST")
        .uri("/hooks/echo/events?x=1")
        .header(header::COOKIE, format!("theme=dark; {cookie}"))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header("proxy-authorization", "Basic cHJveHk6cHc=")
        .header("forwarded", "for=10.1.2.3;proto=https")
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-forwarded-proto", "https")
        .header("x-real-ip", "10.1.2.3")
        .header("x-proofpix-request", "1")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "hop-value")
        .header("x-platform-signature", "v0=abc")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, h, body) = full(&d, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header_str(&h, "content-type"), "application/json");
    let seen: Vec<(String, String)> = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["x-platform-signature", "content-type"],
        "the plugin sees the platform's headers only"
    );
    let session_id = cookie.split_once('=').unwrap().1;
    for secret in [ADMIN, session_id, "10.1.2.3", "cHJveHk6cHc="] {
        assert!(
            !body.contains(secret),
            "{secret} reached the plugin: {body}"
        );
    }
}

/// Signs in with `token`: (status, Set-Cookie attributes, `name=value`).
async fn session_cookie_for(d: &Daemon, token: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method("POST")
        .uri("/api/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"token": token}).to_string()))
        .unwrap();
    let (status, h, _) = full(d, req).await;
    let set = header_str(&h, "set-cookie").to_string();
    let pair = set.split(';').next().unwrap_or_default().trim().to_string();
    (status, set, pair)
}

/// A request authenticated by the session cookie `pair` only.
fn with_cookie(method: &str, path: &str, pair: &str, csrf: bool) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, pair);
    if csrf {
        r = r.header("x-proofpix-request", "1");
    }
    if method == "POST" {
        r.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"name": "made-by-cookie", "role": "viewer"}).to_string(),
            ))
            .unwrap()
    } else {
        r.body(Body::empty()).unwrap()
    }
}

#[tokio::test]
async fn the_session_cookie_is_a_revocable_server_side_id_never_the_token() {
    let d = daemon().await;
    let (status, set, pair) = session_cookie_for(&d, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let (name, id) = pair.split_once('=').unwrap();
    assert_eq!(name, "proofpix_session");
    assert!(id.starts_with("pps_") && id.len() >= 40, "{id}");
    assert!(!set.contains(ADMIN), "the cookie is not the token: {set}");

    let (status, _, body) = full(&d, with_cookie("GET", "/api/session", &pair, false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"admin\""), "{body}");
    // The CSRF rule still holds for changes.
    let (status, _, body) = full(&d, with_cookie("POST", "/api/tokens", &pair, false)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = full(&d, with_cookie("POST", "/api/tokens", &pair, true)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A raw API token presented as the cookie is refused, for reads and changes.
    let raw_pair = format!("proofpix_session={ADMIN}");
    for (method, csrf) in [("GET", false), ("POST", true)] {
        let path = if method == "GET" {
            "/api/session"
        } else {
            "/api/tokens"
        };
        let (status, _, body) = full(&d, with_cookie(method, path, &raw_pair, csrf)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method}: {body}");
        assert!(body.contains("never an API token"), "{body}");
    }

    // Sign-out ends the session server-side: a copy of the cookie is useless.
    let (status, h, _) = full(&d, with_cookie("DELETE", "/api/session", &pair, true)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(header_str(&h, "set-cookie").contains("Max-Age=0"));
    let (status, _, _) = full(&d, with_cookie("GET", "/api/session", &pair, false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");

    // Revoking the token ends its sessions.
    let (_, _, viewer_pair) = session_cookie_for(&d, VIEWER).await;
    let (status, _, _) = full(&d, with_cookie("GET", "/api/session", &viewer_pair, false)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = call(&d, "DELETE", "/api/tokens/test-viewer", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (status, _, body) = full(&d, with_cookie("GET", "/api/session", &viewer_pair, false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(d.state.host().store().session_count().unwrap(), 0);

    // Under an https public URL the cookie is Secure, with the configured lifetime.
    let mut config = DaemonConfig::default();
    config.server.public_url = Some("https://proofpix.example.com".into());
    config.server.session_hours = 2;
    let d = daemon_with(config).await;
    let (_, set, _) = session_cookie_for(&d, VIEWER).await;
    assert!(
        set.contains("; Secure") && set.contains("Max-Age=7200"),
        "{set}"
    );
}

#[tokio::test]
async fn api_and_dashboard_answers_carry_security_headers() {
    let d = daemon().await;
    let (_, h, _) = full(&d, get("/api/stats")).await;
    assert_eq!(header_str(&h, "x-content-type-options"), "nosniff");
    assert!(
        header_str(&h, "content-security-policy").contains("frame-ancestors 'none'"),
        "{h:?}"
    );
    assert_eq!(header_str(&h, "cache-control"), "no-store");
    let (_, h, _) = full(&d, get("/")).await;
    let csp = header_str(&h, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "the dashboard keeps its own policy: {csp}"
    );
}

#[tokio::test]
async fn metrics_need_a_token_unless_made_public() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let (status, v) = call(&d, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(!v.to_string().contains("samples"), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("public_metrics"),
        "{v}"
    );
    let (status, v) = call(&d, "GET", "/metrics", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v.as_str().unwrap().contains("proofpix_queue_depth"), "{v}");

    let mut config = DaemonConfig::default();
    config.server.public_metrics = true;
    let d = daemon_with(config).await;
    let (status, v) = call(&d, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// `/metrics` after a sync, read as a scraper reads it: OpenMetrics text, counters with
/// `_total`, per-risk counts that add up to the files analysed, a histogram whose `+Inf`
/// bucket is its count, and an `# EOF` line.
#[tokio::test]
async fn metrics_are_openmetrics_text_whose_numbers_match_the_work_done() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let batch = wait_for_batches(&d, "samples", 1).await.remove(0);
    assert!(batch.total > 0, "{batch:?}");
    let (_, headers, text) = full(
        &d,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, format!("Bearer {VIEWER}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        header_str(&headers, "content-type").starts_with("application/openmetrics-text"),
        "{headers:?}"
    );
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    let sample = |name: &str| -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let metric = series.split('{').next()?;
                (metric == name).then(|| (series.to_string(), value.parse().unwrap()))
            })
            .collect()
    };
    assert!(
        text.contains("# TYPE proofpix_files_processed counter"),
        "{text}"
    );
    let by_risk = sample("proofpix_files_processed_total");
    assert!(
        by_risk.iter().all(|(s, _)| s.contains("risk=\"")),
        "{by_risk:?}"
    );
    let analysed: f64 = by_risk.iter().map(|(_, v)| v).sum();
    assert_eq!(analysed as u64, batch.ok, "{text}");
    let runs = sample("proofpix_runs_total");
    assert!(
        runs.contains(&("proofpix_runs_total{outcome=\"ok\"}".into(), 1.0)),
        "{runs:?}"
    );
    let calls = sample("proofpix_plugin_call_seconds_count");
    assert_eq!(calls.len(), 1, "{text}");
    assert!(calls[0].1 > 0.0, "{text}");
    let inf = sample("proofpix_plugin_call_seconds_bucket")
        .into_iter()
        .find(|(s, _)| s.contains("le=\"+Inf\""))
        .expect("a +Inf bucket");
    assert_eq!(inf.1, calls[0].1, "{text}");
    let depth = sample("proofpix_queue_depth");
    assert!(
        depth
            .iter()
            .any(|(s, _)| s.contains("integration=\"samples\"")
                && s.contains("stage=\"fetch\"")
                && s.contains("state=\"pending\"")),
        "{depth:?}"
    );
}

#[tokio::test]
async fn an_unknown_hook_is_indistinguishable_from_a_failing_one() {
    let d = daemon().await;
    // No events capability.
    add_samples_integration(&d, "samples").await;
    // A plugin that fails with internal detail.
    hostile_integration(&d, "failing", "hook-fail").await;
    // A disabled one, whose plugin would answer.
    hostile_integration(&d, "off", "hook-echo-headers").await;
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations/off/disable",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let mut answers = Vec::new();
    for id in ["no-such-integration", "samples", "failing", "off"] {
        let req = Request::builder()
            .method("POST")
            .uri(format!("/hooks/{id}/events"))
            .body(Body::from("{}"))
            .unwrap();
        let (status, h, body) = full(&d, req).await;
        assert!(!body.contains("hostile-internal-detail"), "{id}: {body}");
        assert!(!body.contains(id), "{id} named in {body}");
        answers.push((id, status, header_str(&h, "content-type").to_string(), body));
    }
    let (_, status, ctype, body) = &answers[0];
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    for (id, s, c, b) in &answers[1..] {
        assert_eq!(
            (s, c, b),
            (status, ctype, body),
            "{id} answers differently from an unknown integration"
        );
    }
}

#[tokio::test]
async fn a_parked_file_is_retried_only_through_its_own_integration() {
    use proofpix_store::NewItem;
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    add_samples_integration(&d, "other").await;
    let store = d.state.host().store().clone();
    store
        .enqueue(
            "samples",
            &[NewItem {
                dedup_key: "x@1".into(),
                payload: b"not a descriptor".to_vec(),
            }],
        )
        .unwrap();
    let lease = store
        .claim("samples", "test", 1, Duration::from_secs(60))
        .unwrap()
        .remove(0);
    store.park(&lease, "failed for good").unwrap();
    let item = lease.item;

    let path = format!("/api/integrations/other/parked/{item}/retry");
    let (status, v) = call(&d, "POST", &path, Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(store.depth("samples").unwrap().parked, 1, "left parked");
    assert_eq!(store.depth("other").unwrap().pending, 0);

    let path = format!("/api/integrations/samples/parked/{item}/retry");
    let (status, v) = call(&d, "POST", &path, Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    for _ in 0..600 {
        if !d.state.is_running("samples") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request with its response headers and raw body.
async fn full_call(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = d.router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn audit_actions(d: &Daemon) -> Vec<(String, String)> {
    d.state
        .host()
        .store()
        .audit_latest(1000)
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.target))
        .collect()
}

#[tokio::test]
async fn a_token_name_is_created_once_and_rotation_is_its_own_audited_operation() {
    let d = daemon().await;
    let (status, v) = call(
        &d,
        "POST",
        "/api/tokens",
        Some(ADMIN),
        Some(json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let first = v["token"].as_str().unwrap().to_string();

    // Re-posting the name (even as admin) changes nothing.
    let (status, headers, body) = full_call(
        &d,
        "POST",
        "/api/tokens",
        Some(ADMIN),
        Some(r#"{"name": "ci", "role": "admin"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(body.contains("rotate"), "{body}");
    let (_, tokens) = call(&d, "GET", "/api/tokens", Some(ADMIN), None).await;
    let ci: Vec<&Value> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "ci")
        .collect();
    assert_eq!(ci.len(), 1);
    assert_eq!(ci[0]["role"], "viewer");
    let (status, me) = call(&d, "GET", "/api/session", Some(&first), None).await;
    assert_eq!(
        (status, me["role"].clone()),
        (StatusCode::OK, json!("viewer"))
    );

    // Rotation: a new secret, the same role, the old one dead at once.
    let (status, v) = call(&d, "POST", "/api/tokens/ci/rotate", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "viewer");
    let second = v["token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(
        call(&d, "GET", "/api/session", Some(&first), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, me) = call(&d, "GET", "/api/session", Some(&second), None).await;
    assert_eq!(
        (status, me["role"].clone()),
        (StatusCode::OK, json!("viewer"))
    );
    let actions = audit_actions(&d);
    assert!(actions.contains(&("api-token.rotate".into(), "ci".into())));
    assert_eq!(
        actions
            .iter()
            .filter(|(a, t)| a == "api-token.create" && t == "ci")
            .count(),
        1,
        "the refused re-post is not audited as a create"
    );
    let (status, v) = call(&d, "POST", "/api/tokens/nobody/rotate", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    // A viewer cannot rotate even its own token.
    let (status, _) = call(&d, "POST", "/api/tokens/ci/rotate", Some(&second), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bad_grant_is_422_naming_the_field_and_nothing_is_stored() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let folder = d.samples.to_str().unwrap().to_string();
    let cases = [
        (json!({"hosts": ["not a url"]}), "grant.hosts[0]"),
        (
            json!({"hosts": ["https://ok.example.com", "https://example.com:99999"]}),
            "grant.hosts[1]",
        ),
        (json!({"hosts": ["ftp://example.com"]}), "grant.hosts[0]"),
        (json!({"mounts": ["/input", "/etc"]}), "grant.mounts[1]"),
        (
            json!({"mounts": ["/input"], "write": ["/nope"]}),
            "grant.write[0]",
        ),
    ];
    for (grant, field) in cases {
        let body = json!({
            "id": "bad-grant",
            "plugin": "local-folder",
            "config": {"folder": folder},
            "grant": grant,
        });
        let (status, v) = call(&d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{grant}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(field),
            "{field} in {v}"
        );
        assert!(
            d.state
                .host()
                .store()
                .integration("bad-grant")
                .unwrap()
                .is_none()
        );
        let (status, v) = call(
            &d,
            "PATCH",
            "/api/integrations/samples",
            Some(ADMIN),
            Some(json!({"grant": grant})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{grant}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(field), "{v}");
    }
    let (_, v) = call(&d, "GET", "/api/integrations/samples", Some(ADMIN), None).await;
    assert_eq!(v["grant"]["mounts"], json!(["/input"]), "unchanged: {v}");
}

#[tokio::test]
async fn every_json_body_must_be_an_object() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let cases = [
        ("PATCH", "/api/integrations/samples", "[null,null]"),
        ("POST", "/api/integrations", "[\"a\",\"local-folder\"]"),
        ("PUT", "/api/settings", "[true,\"1h\"]"),
        ("POST", "/api/tokens", "[\"x\",\"admin\"]"),
        ("POST", "/api/integrations/samples/sync", "[null]"),
        ("POST", "/api/session", "[\"ppx_test_admin\"]"),
        (
            "PUT",
            "/api/integrations/samples/remediation",
            "[[],\"critical\"]",
        ),
        ("PUT", "/api/settings", "\"auto_sync\""),
        ("PUT", "/api/settings", "null"),
        ("PUT", "/api/settings", "7"),
    ];
    let audit_before = audit_actions(&d);
    for (method, path, body) in cases {
        let (status, headers, text) = full_call(&d, method, path, Some(ADMIN), Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body}: {text}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(text.contains("must be a JSON object"), "{text}");
    }
    let (_, v) = call(&d, "GET", "/api/settings", Some(ADMIN), None).await;
    assert_eq!(v["auto_sync"], true, "settings unchanged: {v}");
    assert_eq!(audit_actions(&d), audit_before, "nothing was changed");
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_problem_documents() {
    let d = daemon().await;
    let cases = [
        ("GET", "/api/results/abc", StatusCode::BAD_REQUEST),
        ("GET", "/api/batches/-1", StatusCode::BAD_REQUEST),
        ("GET", "/api/audit?limit=many", StatusCode::BAD_REQUEST),
        ("GET", "/api/audit?colour=red", StatusCode::BAD_REQUEST),
        (
            "GET",
            "/api/audit?from=99999999999999999999999",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/audit?from=9223372036854775808",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/files?risk=extreme",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/files?sort=size",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/files?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/files?after=bm9wZQ",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/files?from=yesterday",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("DELETE", "/api/plugins", StatusCode::METHOD_NOT_ALLOWED),
    ];
    for (method, path, expected) in cases {
        let (status, headers, body) = full_call(&d, method, path, Some(ADMIN), None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{method} {path}: {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], expected.as_u16());
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
    }
    let (status, _, _) = full_call(
        &d,
        "GET",
        "/api/audit?from=9223372036854775807",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn deleting_an_integration_removes_its_batches_and_results() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    let (status, _) = call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let batches = wait_for_batches(&d, "samples", 1).await;
    let result_id = batches[0].result_ids[0];
    assert_eq!(
        call(
            &d,
            "GET",
            &format!("/api/results/{result_id}"),
            Some(VIEWER),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, _) = call(&d, "DELETE", "/api/integrations/samples", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = call(
        &d,
        "GET",
        "/api/batches?integration=samples",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(v, json!([]));
    let (status, _) = call(
        &d,
        "GET",
        &format!("/api/results/{result_id}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, v) = call(
        &d,
        "GET",
        "/api/files?integration=samples",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(v["files"], json!([]));
    assert!(audit_actions(&d).contains(&("integration.purge-history".into(), "samples".into())));
    // A new integration under the same name starts with no history.
    add_samples_integration(&d, "samples").await;
    let (_, v) = call(&d, "GET", "/api/integrations/samples", Some(VIEWER), None).await;
    assert_eq!(v["last_batch"], Value::Null, "{v}");
}

#[tokio::test]
async fn the_openapi_document_declares_problem_errors_security_and_constraints() {
    let d = daemon().await;
    let (_, doc) = call(&d, "GET", "/api/openapi.json", None, None).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "proofpix_session");
    assert!(doc["security"].as_array().is_some_and(|s| s.len() == 2));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "401", "404", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["413", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = r["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(doc["paths"]["/api/tokens"]["post"]["responses"]["409"].is_object());
    assert_eq!(doc["paths"]["/api/session"]["post"]["security"], json!([]));
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CreateToken"]["properties"]["name"]["pattern"],
        "^[A-Za-z0-9_-]{1,64}$"
    );
    assert!(
        schemas["SyncModeDoc"]["enum"]
            .as_array()
            .is_some_and(|e| e.len() == 3),
        "{}",
        schemas["SyncModeDoc"]
    );
    let remediation = &schemas["RemediationPolicyDoc"];
    assert_eq!(
        remediation["properties"]["delay_secs"]["maximum"],
        2_592_000
    );
    assert_eq!(remediation["additionalProperties"], false, "{remediation}");
    // What GET /api/settings sends validates against SettingsView: every property it sends is
    // declared, every required one is sent, no allOf of closed objects.
    let view = &schemas["SettingsView"];
    assert!(view.get("allOf").is_none(), "{view}");
    let (_, settings) = call(&d, "GET", "/api/settings", Some(VIEWER), None).await;
    let props = view["properties"].as_object().unwrap();
    for key in settings.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "{key} not in SettingsView {view}");
    }
    for key in view["required"].as_array().unwrap() {
        assert!(
            settings.get(key.as_str().unwrap()).is_some(),
            "{key} missing"
        );
    }
}

/// Seeds integrations, files and results straight into the store.
fn seed_inventory(d: &Daemon) -> Vec<(String, String, String, &'static str)> {
    use proofpix_store::{FileRecord, FileStatus, IntegrationRecord, NewResult};
    let store = d.state.host().local_store().expect("an embedded store");
    let files: Vec<(String, String, String, &'static str)> = vec![
        (
            "sp".into(),
            "01ABC".into(),
            "Q3-Report.jpg".into(),
            "critical",
        ),
        ("sp".into(), "01ABD".into(), "holiday.png".into(), "none"),
        (
            "sp".into(),
            "01ABE".into(),
            "=HYPERLINK(\"http://x\")".into(),
            "high",
        ),
        (
            "slack".into(),
            "F07A".into(),
            "<img src=x onerror=alert(1)>".into(),
            "high",
        ),
        (
            "slack".into(),
            "F07B".into(),
            "team photo.heic".into(),
            "medium",
        ),
        (
            "slack".into(),
            "F07C".into(),
            "report-draft.jpg".into(),
            "low",
        ),
        (
            "slack".into(),
            "F07D".into(),
            "never-analysed.jpg".into(),
            "",
        ),
    ];
    for id in ["sp", "slack"] {
        store
            .put_integration(
                &IntegrationRecord::new(id, "local-folder", "0.1.0", store.now()),
                "test",
            )
            .unwrap();
    }
    for (integration, remote_id, name, risk) in &files {
        let last_result = (!risk.is_empty()).then(|| {
            let findings = if *risk == "critical" || remote_id == "F07A" {
                json!([{"category": "gps", "code": "gps", "severity": risk, "source": "exif", "value": "52.3,4.9"}])
            } else {
                json!([])
            };
            store
                .add_result(NewResult {
                    integration: integration.clone(),
                    remote_id: remote_id.clone(),
                    file_version: "v1".into(),
                    risk: risk.parse().expect("a risk level"),
                    score: match *risk {
                        "critical" => 90,
                        "high" => 70,
                        "medium" => 40,
                        "low" => 10,
                        _ => 0,
                    },
                    report_json: json!({"path": name, "risk": risk, "findings": findings}).to_string(),
                })
                .unwrap()
        });
        store
            .put_file(&FileRecord {
                integration: integration.clone(),
                remote_id: remote_id.clone(),
                version: "v1".into(),
                name: name.clone(),
                content_hash: None,
                last_result,
                status: if last_result.is_some() {
                    FileStatus::Analysed
                } else {
                    FileStatus::Pending
                },
                attempts: 1,
                last_error: None,
                updated_at: store.now(),
                web_url: None,
            })
            .unwrap();
    }
    files
}

fn names(v: &Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_file_inventory_searches_filters_sorts_and_pages_over_every_integration() {
    let d = daemon().await;
    let seeded = seed_inventory(&d);
    let get = |q: &str| {
        let path = format!("/api/files{q}");
        let d = &d;
        async move {
            let (status, v) = call(d, "GET", &path, Some(VIEWER), None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {v}");
            v
        }
    };
    // Default: every file, riskiest first; unanalysed files last.
    let all = get("?limit=1000").await;
    let all_names = names(&all);
    assert_eq!(all_names.len(), seeded.len());
    assert_eq!(all_names[0], "Q3-Report.jpg");
    assert_eq!(all_names.last().unwrap(), "never-analysed.jpg");
    assert_eq!(all["files"][0]["risk"], "critical");
    assert_eq!(all["files"][0]["categories"], json!(["gps"]));
    assert_eq!(all["next"], Value::Null);

    // Paging with the cursor gives the same rows, each once.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let q = match &after {
            Some(a) => format!("?limit=2&after={a}"),
            None => "?limit=2".to_string(),
        };
        let v = get(&q).await;
        paged.extend(names(&v));
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all_names);

    // Search: case-insensitive over name, remote id and integration.
    let mut found = names(&get("?q=REPORT").await);
    found.sort();
    assert_eq!(found, ["Q3-Report.jpg", "report-draft.jpg"]);
    assert_eq!(names(&get("?q=f07b").await), ["team photo.heic"]);
    assert_eq!(
        names(&get("?q=%3Cimg").await),
        ["<img src=x onerror=alert(1)>"]
    );

    // Filters.
    let mut high = names(&get("?risk=high,critical").await);
    high.sort();
    assert_eq!(
        high,
        [
            "<img src=x onerror=alert(1)>",
            "=HYPERLINK(\"http://x\")",
            "Q3-Report.jpg"
        ]
    );
    assert_eq!(
        get("?integration=slack&limit=1000").await["files"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let mut gps = names(&get("?category=gps").await);
    gps.sort();
    assert_eq!(gps, ["<img src=x onerror=alert(1)>", "Q3-Report.jpg"]);
    assert_eq!(names(&get("?status=pending").await), ["never-analysed.jpg"]);
    assert!(names(&get("?from=2999-01-01T00:00:00Z").await).is_empty());
    assert_eq!(
        names(&get("?to=2999-01-01T00:00:00Z&limit=1000").await).len(),
        6
    );

    // Sorting by name, both ways, across pages.
    let by_name = names(&get("?sort=name&limit=1000").await);
    let mut expected = all_names.clone();
    expected.sort();
    assert_eq!(by_name, expected);
    let v = get("?sort=name&order=desc&limit=3").await;
    expected.reverse();
    assert_eq!(names(&v), expected[..3]);
    let next = v["next"].as_str().unwrap();
    assert_eq!(
        names(&get(&format!("?sort=name&order=desc&limit=3&after={next}")).await),
        expected[3..6]
    );
    // A cursor of one order is refused in another.
    let (status, v) = call(
        &d,
        "GET",
        &format!("/api/files?sort=risk&after={next}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn the_csv_export_has_the_filtered_rows_and_is_formula_safe() {
    let d = daemon().await;
    seed_inventory(&d);
    let (status, headers, body) =
        full_call(&d, "GET", "/api/files.csv?risk=high", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "header and two high-risk files: {body}");
    assert!(lines[0].starts_with("integration,platform,remote_id,name,"));
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\")\""),
        "the formula is defused and quotes doubled: {body}"
    );
    assert!(body.contains("\"<img src=x onerror=alert(1)>\""));
    // Every file when nothing filters, in integration and id order.
    let (_, _, body) = full_call(&d, "GET", "/api/files.csv", Some(VIEWER), None).await;
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 8);
    assert!(lines[1].starts_with("\"slack\""));
    assert!(lines[7].starts_with("\"sp\""));
    let (status, _, _) = full_call(&d, "GET", "/api/files.csv", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn assets_revalidate_with_an_etag_and_the_favicon_answers() {
    let d = daemon().await;
    let (status, headers, body) = full_call(&d, "GET", "/assets/app.js", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("renderFiles"));
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let req = Request::builder()
        .uri("/assets/app.js")
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let resp = d.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[header::ETAG], etag.as_str());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes.is_empty());
    let req = Request::builder()
        .uri("/assets/app.js")
        .header(header::IF_NONE_MATCH, "\"stale\"")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        d.router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let (status, headers, body) = full_call(&d, "GET", "/favicon.ico", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(body.starts_with("<svg"));
}

#[tokio::test]
async fn a_plugin_lists_its_auth_urls_and_mounts_for_the_default_grant() {
    let d = daemon().await;
    let (_, v) = call(&d, "GET", "/api/plugins/local-folder", Some(VIEWER), None).await;
    assert_eq!(v["mounts"][0]["guest_path"], "/input", "{v}");
    assert_eq!(v["mounts"][0]["config_field"], "folder", "{v}");
    assert!(v["auth_urls"].is_array());
}

/// A token endpoint that refuses every client, as a platform does when the secret is wrong.
async fn refusing_token_server() -> String {
    let app = Router::new().fallback(|| async {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Issue 17, item 3: an integration whose credentials are refused showed a green "Healthy"
/// with "Last sync never"; a failed sync was a 0/0/0 batch with no error, and the success rate
/// stayed at 100%.
#[tokio::test]
async fn issue_17_refused_credentials_and_failed_syncs_read_as_failing_with_the_reason() {
    let d = daemon().await;
    let login = refusing_token_server().await;
    let body = json!({
        "id": "field-sp",
        "plugin": "sharepoint",
        "config": {
            "tenant": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-0000-0000-000000000001",
            "sites": "contoso.sharepoint.com/sites/Field",
            "graph_url": login,
            "login_url": login,
            "download_host": login,
        },
        "secrets": {"client_secret": "wrong"},
        "grant": {"hosts": ["http://127.0.0.1:*"], "allow_loopback": true},
    });
    let (status, v) = call(&d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Paused and resumed as the setup form does: resuming is not a sync, so it is not healthy.
    for action in ["disable", "enable"] {
        let (status, _) = call(
            &d,
            "POST",
            &format!("/api/integrations/field-sp/{action}"),
            Some(OPERATOR),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, v) = call(&d, "GET", "/api/integrations/field-sp", Some(VIEWER), None).await;
    assert_eq!(v["status"], "new", "never synced: {v}");

    let (status, _) = call(
        &d,
        "POST",
        "/api/integrations/field-sp/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let batches = wait_for_batches(&d, "field-sp", 1).await;
    assert_eq!(batches.len(), 1, "one failed run, one batch");
    let (_, v) = call(&d, "GET", "/api/integrations/field-sp", Some(VIEWER), None).await;
    assert_eq!(v["status"], "failing", "{v}");
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("invalid_client") || error.contains("401"),
        "the reason: {v}"
    );
    assert_eq!(v["last_batch"]["outcome"], "failed", "{v}");
    assert_eq!(v["last_batch"]["error"], v["last_error"], "{v}");
    let (_, v) = call(
        &d,
        "GET",
        "/api/batches?integration=field-sp",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(v[0]["outcome"], "failed", "{v}");
    assert!(v[0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert_eq!(v[0]["failures"], json!([]), "no file failed: {v}");
    let id = v[0]["id"].as_u64().unwrap();
    let (_, v) = call(&d, "GET", &format!("/api/batches/{id}"), Some(VIEWER), None).await;
    assert_eq!(v["outcome"], "failed", "{v}");

    // A sync that fails in the pipeline (the folder is gone) records the reason on its batch.
    let folder = d.samples.parent().unwrap().join("gone");
    std::fs::create_dir_all(&folder).unwrap();
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations",
        Some(ADMIN),
        Some(json!({
            "id": "gone",
            "plugin": "local-folder",
            "config": {"folder": folder.to_str().unwrap()},
            "grant": {"mounts": ["/input"]},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    std::fs::remove_dir_all(&folder).unwrap();
    call(
        &d,
        "POST",
        "/api/integrations/gone/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    wait_for_batches(&d, "gone", 1).await;
    let mut last = Value::Null;
    for _ in 0..100 {
        last = call(&d, "GET", "/api/integrations/gone", Some(VIEWER), None)
            .await
            .1;
        if last["last_batch"]["outcome"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], "failing", "{last}");
    assert_eq!(last["last_batch"]["outcome"], "failed", "{last}");
    assert!(
        last["last_batch"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{last}"
    );

    // Pausing keeps the reason; the headline numbers count the failures.
    call(
        &d,
        "POST",
        "/api/integrations/gone/disable",
        Some(OPERATOR),
        None,
    )
    .await;
    let (_, v) = call(&d, "GET", "/api/integrations/gone", Some(VIEWER), None).await;
    assert_eq!(v["status"], "paused");
    assert!(
        v["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{v}"
    );
    let (_, stats) = call(&d, "GET", "/api/stats", Some(VIEWER), None).await;
    assert_eq!(stats["runs_failed"], 2, "{stats}");
    assert_eq!(stats["success_rate"], 0.0, "{stats}");
    assert_eq!(
        stats["integrations_failing"], 1,
        "field-sp (gone is paused): {stats}"
    );
}

/// A SharePoint integration (it offers replace-with-sanitised and other actions) that never
/// reaches Graph: its addresses point at a closed loopback port.
async fn add_sharepoint(d: &Daemon, id: &str) {
    let body = json!({
        "id": id,
        "plugin": "sharepoint",
        "config": {
            "tenant": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-0000-0000-000000000001",
            "sites": "contoso.sharepoint.com/sites/Field",
            "graph_url": "http://127.0.0.1:9",
            "login_url": "http://127.0.0.1:9",
            "download_host": "http://127.0.0.1:9",
        },
        "secrets": {"client_secret": "not-used"},
        "grant": {"hosts": ["http://127.0.0.1:*"], "allow_loopback": true},
    });
    let (status, v) = call(d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// Seeds an analysed file of `integration` whose findings are `findings` at `risk`.
fn seed_file(
    d: &Daemon,
    integration: &str,
    remote_id: &str,
    name: &str,
    risk: &str,
    findings: Value,
) {
    use proofpix_store::{FileRecord, FileStatus, NewResult};
    let store = d.state.host().local_store().expect("an embedded store");
    let result = store
        .add_result(NewResult {
            integration: integration.into(),
            remote_id: remote_id.into(),
            file_version: "v1".into(),
            risk: risk.parse().expect("a risk level"),
            score: 80,
            report_json:
                json!({"path": name, "format": "jpeg", "risk": risk, "findings": findings})
                    .to_string(),
        })
        .unwrap();
    store
        .put_file(&FileRecord {
            integration: integration.into(),
            remote_id: remote_id.into(),
            version: "v1".into(),
            name: name.into(),
            content_hash: None,
            last_result: Some(result),
            status: FileStatus::Analysed,
            attempts: 1,
            last_error: None,
            updated_at: store.now(),
            web_url: None,
        })
        .unwrap();
}

/// Issue 17 item 4 and issue 16's last bullet: a file's page names the file, its integration,
/// its risk with the findings, what remediation did and what it can do, and does not offer a
/// sanitised copy when the risk is in the pixels, saying why.
#[tokio::test]
async fn a_file_page_shows_its_risk_remediation_and_why_a_sanitised_copy_cannot_help() {
    let d = daemon().await;
    add_sharepoint(&d, "field-sp").await;
    let (status, v) = call(
        &d,
        "PUT",
        "/api/integrations/field-sp/remediation",
        Some(ADMIN),
        Some(json!({"actions": ["replace-with-sanitised"], "min_risk": "high"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let pixel = |code: &str, category: &str| {
        json!({"category": category, "code": code, "severity": "high",
               "source": {"family": "pixels", "group": "OCR", "tag": "", "name": "text"}, "value": "4111 **** **** 1111"})
    };
    let gps = json!({"category": "gps", "code": "gps.coordinates", "severity": "high",
                     "source": {"family": "exif", "group": "GPS", "tag": "0x0002", "name": "GPSLatitude"}, "value": "52.3,4.9"});
    // A site path with slashes, as SharePoint's drive item ids have.
    let card = "b!LrEA/01QJ2L76";
    seed_file(
        &d,
        "field-sp",
        card,
        "whiteboard.jpg",
        "high",
        json!([pixel("text_pii.card_number", "text-pii")]),
    );
    seed_file(
        &d,
        "field-sp",
        "01GPS",
        "site-visit.jpg",
        "high",
        json!([gps]),
    );
    d.state
        .host()
        .store()
        .audit(
            &proofpix_store::AuditEvent::new("system", "remediation.replace-with-sanitised", "field-sp")
                .outcome("ok")
                .details(json!({"file": card, "version": "v1", "status": "not-applicable",
                                "detail": "the risk comes from what the picture shows", "tombstone": null})),
        )
        .unwrap();

    let (status, v) = call(
        &d,
        "GET",
        "/api/files/field-sp/b!LrEA%2F01QJ2L76",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "whiteboard.jpg");
    assert_eq!(v["remote_id"], card);
    assert_eq!(v["platform"], "SharePoint Online", "{v}");
    assert_eq!(v["result"]["risk"], "high");
    assert_eq!(v["result"]["report"]["findings"][0]["category"], "text-pii");
    assert_eq!(v["risk_from_pixels"], true);
    let r = &v["remediation"];
    assert_eq!(r["mode"], "simulate");
    assert_eq!(r["policy_applies"], true);
    let replace = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "replace-with-sanitised")
        .expect("SharePoint offers a sanitised copy");
    assert_eq!(replace["offered"], false, "{r}");
    assert_eq!(replace["in_policy"], true);
    assert!(
        replace["why_not"]
            .as_str()
            .unwrap()
            .contains("what the picture shows"),
        "{replace}"
    );
    assert_eq!(replace["last"]["status"], "not-applicable", "{replace}");
    assert_eq!(r["history"].as_array().unwrap().len(), 1, "{r}");

    // The same action is offered for a file whose risk is in its metadata.
    let (_, v) = call(&d, "GET", "/api/files/field-sp/01GPS", Some(VIEWER), None).await;
    assert_eq!(v["risk_from_pixels"], false);
    let replace = v["remediation"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "replace-with-sanitised")
        .cloned()
        .unwrap();
    assert_eq!(replace["offered"], true, "{replace}");
    assert_eq!(replace["why_not"], Value::Null);
    assert_eq!(v["remediation"]["history"], json!([]));

    let (status, v) = call(&d, "GET", "/api/files/field-sp/nope", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = call(&d, "GET", "/api/files/field-sp/01GPS", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Issue 17 item 6: after a quiet sync (nothing new) a card showed "0 files" from the last run;
/// an integration reports its files by their current risk, whatever run analysed them.
#[tokio::test]
async fn an_integration_reports_its_current_risk_after_a_quiet_sync() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    let first = wait_for_batches(&d, "samples", 1).await;
    let (_, v) = call(&d, "GET", "/api/integrations/samples", Some(VIEWER), None).await;
    let current = v["current_risk"].clone();
    let total: u64 = current
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, first[0].ok, "every analysed file counted once: {v}");
    let mut expected = serde_json::Map::new();
    for (k, n) in &first[0].by_risk {
        expected.insert(k.clone(), json!(n));
    }
    assert_eq!(current, Value::Object(expected), "{v}");

    // A second sync finds nothing new: its batch is empty, the current risk is unchanged.
    call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    wait_for_batches(&d, "samples", 2).await;
    let (_, v) = call(&d, "GET", "/api/integrations/samples", Some(VIEWER), None).await;
    assert_eq!(v["last_batch"]["total"], 0, "a quiet run: {v}");
    assert_eq!(v["current_risk"], current, "{v}");
    assert_eq!(v["not_analysed"], 0);
    let (_, list) = call(&d, "GET", "/api/integrations", Some(VIEWER), None).await;
    assert_eq!(list[0]["current_risk"], current);
}

/// Issue 17 item 6: batches and the audit trail export as CSV, streamed and formula-safe.
#[tokio::test]
async fn batches_and_the_audit_trail_export_as_formula_safe_csv() {
    let d = daemon().await;
    add_samples_integration(&d, "samples").await;
    call(
        &d,
        "POST",
        "/api/integrations/samples/sync",
        Some(OPERATOR),
        None,
    )
    .await;
    let batches = wait_for_batches(&d, "samples", 1).await;
    // A failed run of another integration, with a reason a spreadsheet would run as a formula.
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations",
        Some(ADMIN),
        Some(json!({"id": "other", "plugin": "local-folder",
                    "config": {"folder": d.samples.to_str().unwrap()}, "grant": {"mounts": ["/input"]}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    d.state
        .host()
        .record_failed_run("other", batches[0].id, batches[0].id, "=cmd|' /C calc'!A0")
        .await
        .unwrap();

    let (status, headers, body) =
        full_call(&d, "GET", "/api/batches.csv", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("proofpix-batches.csv")
    );
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "header and two runs, newest first: {body}");
    assert!(
        lines[0].starts_with("id,integration,started_at,finished_at,duration_ms,outcome,error,")
    );
    assert!(
        lines[1].contains("\"other\"") && lines[1].contains("\"failed\""),
        "{body}"
    );
    assert!(
        lines[1].contains("\"'=cmd|' /C calc'!A0\""),
        "the reason is defused: {body}"
    );
    let b = &batches[0];
    assert!(
        lines[2].starts_with(&format!("{},\"samples\",", b.id))
            && lines[2].contains(&format!(",\"ok\",\"\",{},{},", b.total, b.ok)),
        "{body}"
    );
    let (_, _, body) = full_call(
        &d,
        "GET",
        "/api/batches.csv?integration=other",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        body.split("\r\n").filter(|l| !l.is_empty()).count(),
        2,
        "{body}"
    );

    // The audit trail, oldest first, with an entry whose target is a formula.
    d.state
        .host()
        .store()
        .audit(&proofpix_store::AuditEvent::new(
            "test",
            "probe",
            "=HYPERLINK(\"http://x\")",
        ))
        .unwrap();
    let (status, headers, body) = full_call(&d, "GET", "/api/audit.csv", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("proofpix-audit.csv")
    );
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "seq,time,actor,action,target,outcome,details");
    let (_, all) = call(&d, "GET", "/api/audit?limit=1000", Some(VIEWER), None).await;
    assert_eq!(
        lines.len() - 1,
        all.as_array().unwrap().len(),
        "every entry once"
    );
    assert!(lines[1].starts_with("1,"), "oldest first: {}", lines[1]);
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\")\""),
        "the formula is defused and quotes doubled"
    );
    assert!(
        body.contains("\"integration.sync\""),
        "the sync request is there"
    );
    for path in ["/api/audit.csv", "/api/batches.csv"] {
        assert_eq!(
            full_call(&d, "GET", path, None, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Issue 17 item 9: the product promises intervals from 5 minutes to 24 hours; the API holds
/// both ends (settings and an integration's own schedule), and a new integration can have the
/// pixel stage on from the start.
#[tokio::test]
async fn intervals_run_from_5_minutes_to_24_hours_and_pixels_can_be_on_from_the_start() {
    let d = daemon().await;
    for (schedule, ok) in [("4m", false), ("5m", true), ("24h", true), ("25h", false)] {
        let (status, v) = call(
            &d,
            "PUT",
            "/api/settings",
            Some(ADMIN),
            Some(json!({"auto_sync": true, "default_schedule": schedule})),
        )
        .await;
        let want = if ok {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, want, "default schedule {schedule}: {v}");
        if !ok {
            assert!(
                v["detail"]
                    .as_str()
                    .unwrap()
                    .contains("between 5 minutes and 24 hours"),
                "{v}"
            );
        }
    }
    let body = |id: &str, schedule: &str| {
        json!({"id": id, "plugin": "local-folder", "config": {"folder": d.samples.to_str().unwrap()},
               "grant": {"mounts": ["/input"]}, "schedule": schedule, "pixels": true})
    };
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations",
        Some(ADMIN),
        Some(body("too-often", "4m")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations",
        Some(ADMIN),
        Some(body("every-5", "5m")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["pixels"], true, "{v}");
    assert_eq!(v["schedule"], "5m");
}

/// A platform for the well-behaved plugin at 2.0.0 (it offers a sanitised copy and
/// quarantine): serves a photo with GPS, and counts uploads and quarantines.
async fn remediation_platform() -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use axum::extract::Path;
    use axum::routing::{get, post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (uploads, quarantines) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (u, q) = (uploads.clone(), quarantines.clone());
    let photo = || {
        proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
            width: 32,
            height: 32,
            seed: 7,
            exif: Some(proofpix_fixtures::phone_photo(
                7,
                proofpix_fixtures::Gps {
                    lat: 48.8584,
                    lon: 2.2945,
                    alt: None,
                },
            )),
            ..Default::default()
        })
    };
    let app = Router::new()
        .route("/files", get(|| async { axum::Json(json!([])) }))
        .route(
            "/files/{id}/content",
            get(move || async move { photo() }).put(move || async move {
                u.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .route(
            "/files/{id}/quarantine",
            post(move |Path(id): Path<String>| async move {
                q.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"tombstone": format!("/quarantine/{id}")}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), uploads, quarantines)
}

/// Sets the web link of a seeded file, as a plugin's listing would have.
fn set_web_url(d: &Daemon, integration: &str, remote_id: &str, url: &str) {
    let store = d.state.host().local_store().expect("an embedded store");
    let mut f = store.file(integration, remote_id).unwrap().unwrap();
    f.web_url = Some(url.into());
    store.put_file(&f).unwrap();
}

/// Issue 17 ("each row names the file as the platform does and links to it"): the plugin's
/// `web-url` is served on the inventory and the file page, but only as an absolute http(s)
/// link, normalised; `javascript:`, `data:` and disguised hosts are left out (`null`), so a
/// client that links whatever it is given still links nothing hostile.
#[tokio::test]
async fn a_files_web_link_is_served_only_when_it_is_http_or_https() {
    let d = daemon().await;
    add_sharepoint(&d, "field-sp").await;
    let gps = json!([{"category": "gps", "code": "gps.coordinates", "severity": "high",
                      "source": {"family": "exif", "group": "GPS", "tag": "0x0002", "name": "GPSLatitude"}, "value": "52.3,4.9"}]);
    let cases = [
        (
            "01OK",
            "https://contoso.sharepoint.com/sites/field/Shared%20Documents/site.jpg",
            Some("https://contoso.sharepoint.com/sites/field/Shared%20Documents/site.jpg"),
        ),
        (
            "01QUOTE",
            "https://contoso.sharepoint.com/a b\"><img src=x onerror=alert(1)>",
            Some("https://contoso.sharepoint.com/a%20b%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E"),
        ),
        ("01JS", "javascript:alert(document.cookie)", None),
        (
            "01DATA",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            None,
        ),
        (
            "01USER",
            "https://contoso.sharepoint.com@evil.example/",
            None,
        ),
    ];
    for (id, url, _) in &cases {
        seed_file(
            &d,
            "field-sp",
            id,
            &format!("{id}.jpg"),
            "high",
            gps.clone(),
        );
        set_web_url(&d, "field-sp", id, url);
    }
    seed_file(&d, "field-sp", "01NONE", "none.jpg", "high", gps.clone());

    let (status, page) = call(
        &d,
        "GET",
        "/api/files?integration=field-sp&sort=name",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let rows = page["files"].as_array().unwrap();
    assert_eq!(rows.len(), cases.len() + 1, "{page}");
    for (id, raw, want) in &cases {
        let row = rows.iter().find(|r| r["remote_id"] == *id).unwrap();
        assert_eq!(row["web_url"].as_str(), *want, "inventory row for {raw:?}");
        let (_, file) = call(
            &d,
            "GET",
            &format!("/api/files/field-sp/{id}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(file["web_url"].as_str(), *want, "file page for {raw:?}");
    }
    let none = rows.iter().find(|r| r["remote_id"] == "01NONE").unwrap();
    assert_eq!(none["web_url"], Value::Null);
}

/// Issue 17 item 4: the file page's actions. An admin simulates an action the plugin offers
/// on one file (nothing changes on the platform), then applies it: done once, done never
/// again for that version, each step audited under the admin's token. Viewers and operators
/// are refused (403); bad requests are 422 problem documents; unknown files 404.
#[tokio::test]
async fn a_file_action_is_simulated_then_applied_once_by_an_admin_and_audited() {
    use std::sync::atomic::Ordering;
    let d = daemon().await;
    d.state
        .host()
        .add_plugin(&std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2).unwrap())
        .await
        .unwrap();
    let (base, uploads, quarantines) = remediation_platform().await;
    let body = json!({
        "id": "wb",
        "plugin": "well-behaved",
        "config": {"base_url": base},
        "secrets": {"token": "t", "signing_secret": "s"},
        "grant": {"hosts": [base], "allow_loopback": true},
    });
    let (status, v) = call(&d, "POST", "/api/integrations", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let gps = json!([{"category": "gps", "code": "gps.coordinates", "severity": "critical",
                      "source": {"family": "exif", "group": "GPS", "tag": "0x0002", "name": "GPSLatitude"}, "value": "48.86,2.29"}]);
    seed_file(&d, "wb", "photo-1", "site visit.jpg", "critical", gps);

    // The page lists what the plugin offers for this file; no policy is needed.
    let (_, page) = call(&d, "GET", "/api/files/wb/photo-1", Some(VIEWER), None).await;
    let offered: Vec<&str> = page["remediation"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["replace-with-sanitised", "quarantine"], "{page}");
    assert_eq!(page["remediation"]["mode"], "none");

    let path = "/api/integrations/wb/remediation/actions";
    let quarantine = json!({"file": "photo-1", "action": "quarantine"});
    for token in [VIEWER, OPERATOR] {
        let (status, v) = call(&d, "POST", path, Some(token), Some(quarantine.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("needs the admin role"),
            "{v}"
        );
    }
    let (status, _) = call(&d, "POST", path, None, Some(quarantine.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad input: a problem document naming what is wrong.
    for (body, words) in [
        (
            json!({"file": "photo-1", "action": "explode"}),
            "unknown variant",
        ),
        (
            json!({"file": "photo-1", "action": "quarantine", "simulate": "no"}),
            "expected a boolean",
        ),
        (
            json!({"file": "photo-1", "action": "quarantine", "force": true}),
            "unknown field",
        ),
        (json!({"action": "quarantine"}), "missing field `file`"),
        (json!({"file": "", "action": "quarantine"}), "file"),
        (json!(["photo-1", "quarantine"]), "object"),
        (
            json!({"file": "photo-1", "action": "restrict-sharing"}),
            "does not offer the action restrict-sharing",
        ),
        (
            json!({"file": "photo-1", "action": "quarantine", "label": ""}),
            "label",
        ),
    ] {
        let (status, v) = call(&d, "POST", path, Some(ADMIN), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["status"], 422, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    let (status, v) = call(
        &d,
        "POST",
        path,
        Some(ADMIN),
        Some(json!({"file": "nope", "action": "quarantine"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    // An unknown file is a 404 whatever the action (the file is looked up first).
    let (status, v) = call(
        &d,
        "POST",
        path,
        Some(ADMIN),
        Some(json!({"file": "nope", "action": "restrict-sharing"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = call(
        &d,
        "POST",
        "/api/integrations/nope/remediation/actions",
        Some(ADMIN),
        Some(quarantine.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    // Simulation is the default: the plugin says what it would do, the platform sees nothing.
    let (status, v) = call(&d, "POST", path, Some(ADMIN), Some(quarantine.clone())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["simulate"].as_bool(),
            v["detail"].as_str()
        ),
        (
            Some("simulated"),
            Some(true),
            Some("would move photo-1 to quarantine")
        ),
        "{v}"
    );
    // A sanitised copy is produced and measured, not uploaded.
    let (status, v) = call(
        &d,
        "POST",
        path,
        Some(ADMIN),
        Some(json!({"file": "photo-1", "action": "replace-with-sanitised", "simulate": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "simulated", "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("would replace the file with a sanitised copy of "),
        "{v}"
    );
    assert_eq!(
        (
            uploads.load(Ordering::SeqCst),
            quarantines.load(Ordering::SeqCst)
        ),
        (0, 0)
    );

    // Applied once, with an explicit `simulate: false`; again, it is not done twice.
    let apply = json!({"file": "photo-1", "action": "quarantine", "simulate": false});
    let (status, v) = call(&d, "POST", path, Some(ADMIN), Some(apply.clone())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["detail"].as_str(),
            v["tombstone"].as_str(),
            v["version"].as_str()
        ),
        (
            Some("applied"),
            Some("moved photo-1 to quarantine"),
            Some("/quarantine/photo-1"),
            Some("v1")
        ),
        "{v}"
    );
    let (_, v) = call(&d, "POST", path, Some(ADMIN), Some(apply)).await;
    assert_eq!(v["status"], "already-done", "{v}");
    assert_eq!(quarantines.load(Ordering::SeqCst), 1, "done at most once");

    // Audited under the admin's token, and shown in the file's history, newest first.
    let (_, audit) = call(&d, "GET", "/api/audit?limit=50", Some(ADMIN), None).await;
    let mine: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("remediation."))
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(mine.len(), 4, "{audit}");
    assert!(
        mine.iter().all(|(actor, _)| actor == "token:test-admin"),
        "{mine:?}"
    );
    let (_, page) = call(&d, "GET", "/api/files/wb/photo-1", Some(VIEWER), None).await;
    let history: Vec<(&str, &str)> = page["remediation"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("quarantine", "already-done"),
            ("quarantine", "applied"),
            ("replace-with-sanitised", "simulated"),
            ("quarantine", "simulated"),
        ],
        "{page}"
    );
}
