//! The sandbox holds: each hostile plugin behaviour is stopped with a clear
//! error, and the same runtime then serves a well-behaved plugin normally.
//!
//! The hostile plugin (`tests/plugins/hostile`) picks its misbehaviour from
//! its `mode` config value; the well-behaved plugin talks to a small axum
//! server on loopback that records what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use proofpix_model::{PluginError, RemoteFile};
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::contract::{ContentLocation, DownloadAnswer};
use proofpix_runtime::{
    CallError, Content, IntegrationContext, LoadError, Plugin, Runtime, RuntimeConfig,
    StaticCredentials,
};
use proofpix_vault::Secret;

/// Requests a test server saw: (path, authorization header).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct TestServer {
    base: String,
    port: u16,
    seen: Seen,
}

async fn serve(redirect_to: Option<String>) -> TestServer {
    let seen: Seen = Arc::default();
    #[derive(Clone)]
    struct S {
        seen: Seen,
        redirect_to: Option<String>,
    }
    async fn record(State(s): State<S>, Path(rest): Path<String>, headers: HeaderMap) -> Response {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        s.seen.lock().unwrap().push((format!("/{rest}"), auth));
        match rest.as_str() {
            "files" => axum::Json(serde_json::json!([{"id": "a", "name": "a.jpg", "etag": "1"}, {"id": "b", "name": "b.jpg", "etag": "2"}])).into_response(),
            "redirect" | "files/a/content" => match &s.redirect_to {
                Some(to) => (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
            "blob" => {
                let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let body: Vec<u8> = (0u8..=255).cycle().take(1000).collect();
                if range == "bytes=10-19" {
                    (StatusCode::PARTIAL_CONTENT, [(header::CONTENT_RANGE, "bytes 10-19/1000".to_string())], body[10..20].to_vec()).into_response()
                } else {
                    body.into_response()
                }
            }
            _ => StatusCode::OK.into_response(),
        }
    }
    let app = Router::new().route("/{*rest}", any(record)).with_state(S {
        seen: seen.clone(),
        redirect_to,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer {
        base: format!("http://127.0.0.1:{port}"),
        port,
        seen,
    }
}

fn runtime_with(limits: Limits) -> Runtime {
    let dir = tempfile::tempdir().unwrap();
    Runtime::new(RuntimeConfig {
        limits,
        cache_dir: Some(dir.keep()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Limits for the sandbox tests. The CPU limit is generous because it is
/// measured as wall time minus host waits: on a loaded CI machine a tight
/// one would stop plugins that are doing what a test expects (a memory bomb
/// touching its pages) before the limit under test. The CPU-limit test sets
/// its own.
fn test_limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(5),
        memory_bytes: 48 << 20,
        ..Limits::default()
    }
}

async fn load(runtime: &Runtime, path: &str) -> Plugin {
    runtime
        .load(&std::fs::read(path).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn grant_loopback(hosts: &[&str]) -> OperatorGrant {
    OperatorGrant {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        allow_loopback: true,
        ..OperatorGrant::default()
    }
}

fn hostile_ctx(mode: &str, url: &str, granted: &str, grant: OperatorGrant) -> IntegrationContext {
    IntegrationContext::new("hostile-test")
        .with_config("mode", mode)
        .with_config("url", url)
        .with_config("granted", granted)
        .with_grant(grant)
}

/// After each hostile call, the same runtime must still run a well-behaved
/// plugin end to end.
async fn well_behaved_still_works(runtime: &Runtime) {
    let server = serve(None).await;
    let plugin = load(runtime, proofpix_plugin_artifacts::TEST_WELL_BEHAVED).await;
    let ctx = IntegrationContext::new("wb")
        .with_config("base_url", &server.base)
        .with_grant(grant_loopback(&[&server.base]))
        .with_credentials(Arc::new(StaticCredentials::new(
            "authorization",
            "Bearer ",
            &Secret::new("t0k3n"),
        )));
    let mut session = plugin.session(&ctx).await.unwrap();
    let page = session.discover(None).await.unwrap();
    assert_eq!(page.files.len(), 2);
}

/// The text of a plugin's failure. A refusal of the egress policy arrives typed (contract 0.3,
/// `egress-refused`, from the SDK); it reads as the SDK's fatal text did before.
fn plugin_message(err: &CallError) -> String {
    match err {
        CallError::Plugin {
            error: PluginError::Fatal(m),
            ..
        } => m.clone(),
        CallError::Plugin {
            error: PluginError::EgressRefused(r),
            ..
        } => format!("request refused by the host: {}", r.reason),
        other => panic!("expected a fatal plugin error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_well_behaved_plugin_gets_its_token_injected_on_its_granted_endpoint() {
    let runtime = runtime_with(test_limits());
    let server = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_WELL_BEHAVED).await;
    assert_eq!(plugin.info().id, "well-behaved");
    let ctx = IntegrationContext::new("wb")
        .with_config("base_url", &server.base)
        .with_config("token", "must-not-reach-the-guest")
        .with_grant(grant_loopback(&[&server.base]))
        .with_credentials(Arc::new(StaticCredentials::new(
            "authorization",
            "Bearer ",
            &Secret::new("t0k3n"),
        )));
    let mut session = plugin.session(&ctx).await.unwrap();
    let page = session.discover(None).await.unwrap();
    assert_eq!(
        page.files.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![("/files".to_string(), Some("Bearer t0k3n".to_string()))]
    );
    // State crossed the boundary and persists across calls in the session.
    session.discover(None).await.unwrap();
    assert_eq!(ctx.state.get("wb", "calls").unwrap(), Some(b"2".to_vec()));
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_cpu_limit() {
    let runtime = runtime_with(Limits {
        cpu_time: Duration::from_millis(300),
        ..test_limits()
    });
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let mut session = plugin
        .session(&hostile_ctx(
            "spin",
            "",
            "https://example.com",
            OperatorGrant::default(),
        ))
        .await
        .unwrap();
    let err = session.discover(None).await.unwrap_err();
    assert!(matches!(err, CallError::CpuLimit { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin 'hostile' 0.0.1: discover used more than 300ms of CPU time and was stopped; the instance was discarded"
    );
    assert!(session.is_poisoned());
    let again = session.discover(None).await.unwrap_err();
    assert!(
        matches!(again, CallError::Poisoned { .. }),
        "a failed instance never serves another call"
    );
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn an_infinite_loop_is_also_stopped_by_the_wall_clock_timeout() {
    let limits = Limits {
        cpu_time: Duration::from_secs(600),
        call_timeout: Duration::from_millis(400),
        ..test_limits()
    };
    let runtime = runtime_with(limits);
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let mut session = plugin
        .session(&hostile_ctx(
            "spin",
            "",
            "https://example.com",
            OperatorGrant::default(),
        ))
        .await
        .unwrap();
    let err = session.discover(None).await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let mut session = plugin
        .session(&hostile_ctx(
            "memory",
            "",
            "https://example.com",
            OperatorGrant::default(),
        ))
        .await
        .unwrap();
    let err = session.discover(None).await.unwrap_err();
    match &err {
        CallError::MemoryLimit {
            limit, requested, ..
        } => {
            assert_eq!(*limit, 48 << 20);
            assert!(*requested > *limit);
        }
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("over its limit of 50331648 bytes, and was stopped"),
        "{err}"
    );
    assert!(session.stats().memory_high_water <= 48 << 20);
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn a_request_to_a_host_it_was_not_granted_is_refused() {
    let runtime = runtime_with(test_limits());
    let granted = serve(None).await;
    let other = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let target = format!("{}/steal", other.base);
    let ctx = hostile_ctx(
        "ungranted-host",
        &target,
        &granted.base,
        grant_loopback(&[&granted.base]),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    assert_eq!(
        plugin_message(&err),
        format!(
            "request refused by the host: asked for {target}, which is not in its allowed hosts ({}); declare the endpoint in the plugin and grant it in the integration's config",
            granted.base
        )
    );
    assert!(
        other.seen.lock().unwrap().is_empty(),
        "nothing reached the ungranted host"
    );
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn a_redirect_to_a_host_it_was_not_granted_is_refused_at_that_hop() {
    let runtime = runtime_with(test_limits());
    let other = serve(None).await;
    let granted = serve(Some(format!("{}/exfiltrate", other.base))).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "redirect",
        &format!("{}/redirect", granted.base),
        &granted.base,
        grant_loopback(&[&granted.base]),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    let msg = plugin_message(&err);
    assert!(
        msg.contains(&format!(
            "asked for {}/exfiltrate, which is not in its allowed hosts",
            other.base
        )),
        "{msg}"
    );
    assert_eq!(
        granted.seen.lock().unwrap().len(),
        1,
        "the granted host was asked once"
    );
    assert!(
        other.seen.lock().unwrap().is_empty(),
        "the redirect target was never contacted"
    );
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn a_plugin_cannot_set_the_authorization_header() {
    let runtime = runtime_with(test_limits());
    let granted = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "authorization",
        &format!("{}/x", granted.base),
        &granted.base,
        grant_loopback(&[&granted.base]),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    assert_eq!(
        plugin_message(&err),
        "request refused by the host: plugins may not set the authorization header; the host injects credentials itself on granted endpoints"
    );
    assert!(granted.seen.lock().unwrap().is_empty());
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn loopback_is_refused_unless_the_grant_allows_it() {
    let runtime = runtime_with(test_limits());
    let server = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    // Granted by name, but the name resolves to loopback and the grant does
    // not allow loopback: the resolved address is checked too.
    let by_name = format!("http://localhost:{}", server.port);
    let grant = OperatorGrant {
        hosts: vec![by_name.clone()],
        ..OperatorGrant::default()
    };
    let ctx = hostile_ctx("ungranted-host", &format!("{by_name}/x"), &by_name, grant);
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    let msg = plugin_message(&err);
    assert!(
        msg.contains("resolves to") && msg.contains("a loopback address"),
        "{msg}"
    );
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_plugin_sees_no_environment_no_arguments_no_files_and_no_sockets() {
    // The test process has an environment and a filesystem; the guest must
    // see neither (no inherited env or args, no preopens, no sockets).
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "env-and-files",
        "",
        "https://example.com",
        OperatorGrant::default(),
    );
    let page = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap();
    let seen: Vec<&str> = page.files.iter().map(|f| f.id.as_str()).collect();
    assert!(seen.is_empty(), "the plugin saw: {seen:?}");
    assert!(
        std::env::vars().count() > 0,
        "the host process does have an environment to leak"
    );
}

#[tokio::test]
async fn a_huge_page_is_refused() {
    // Building 50,000 records takes the guest a moment; on a loaded machine
    // even the other tests' CPU budget (measured in wall time) could stop it
    // before the page-size check this test is about.
    let runtime = runtime_with(Limits {
        memory_bytes: 128 << 20,
        cpu_time: Duration::from_secs(30),
        ..test_limits()
    });
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "huge-page",
        "",
        "https://example.com",
        OperatorGrant::default(),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin 'hostile' 0.0.1: discover returned a page of 50000 files, over the limit of 10000; refused"
    );
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn log_and_stdout_floods_are_capped_and_counted() {
    let runtime = runtime_with(Limits {
        cpu_time: Duration::from_secs(30),
        ..test_limits()
    });
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    for mode in ["log-flood", "stdout-flood"] {
        let mut session = plugin
            .session(&hostile_ctx(
                mode,
                "",
                "https://example.com",
                OperatorGrant::default(),
            ))
            .await
            .unwrap();
        session
            .discover(None)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let stats = session.stats();
        assert!(
            stats.log_bytes <= 64 * 1024,
            "{mode}: kept {} bytes",
            stats.log_bytes
        );
        assert!(stats.log_dropped > 0, "{mode}: drops are counted");
    }
}

#[tokio::test]
async fn plugin_state_is_capped() {
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "state-flood",
        "",
        "https://example.com",
        OperatorGrant::default(),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    assert_eq!(
        plugin_message(&err),
        "plugin state would grow to 1048578 bytes, over the cap of 1048576 bytes"
    );
}

#[tokio::test]
async fn a_panicking_plugin_costs_one_instance() {
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx("panic", "", "https://example.com", OperatorGrant::default());
    let mut session = plugin.session(&ctx).await.unwrap();
    let err = session.discover(None).await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    // A fresh session of the same plugin works.
    let mut fresh = plugin
        .session(&hostile_ctx(
            "env-and-files",
            "",
            "https://example.com",
            OperatorGrant::default(),
        ))
        .await
        .unwrap();
    fresh.discover(None).await.unwrap();
}

#[tokio::test]
async fn corrupt_and_foreign_wasm_are_refused_with_a_clear_error() {
    let runtime = runtime_with(test_limits());
    let err = runtime.load(b"\0asm\x0d\0\x01\0garbage").await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err:?}");
    let err = runtime.load(b"not wasm at all").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not a valid WebAssembly component"),
        "{err}"
    );
    let mut truncated = std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        runtime.load(&truncated).await.unwrap_err(),
        LoadError::Invalid(_)
    ));
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn a_download_redirect_drops_the_bearer_token_at_the_other_host() {
    let runtime = runtime_with(test_limits());
    let cdn = serve(None).await;
    let api = serve(Some(format!("{}/blob?sig=abc", cdn.base))).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_WELL_BEHAVED).await;
    let ctx = IntegrationContext::new("wb")
        .with_config("base_url", &api.base)
        .with_config("download_url", &cdn.base)
        .with_grant(grant_loopback(&[&api.base, &cdn.base]))
        .with_credentials(Arc::new(StaticCredentials::new(
            "authorization",
            "Bearer ",
            &Secret::new("t0k3n"),
        )));
    let mut session = plugin.session(&ctx).await.unwrap();
    let file = RemoteFile {
        id: "a".into(),
        name: "a.jpg".into(),
        mime_type: None,
        size: None,
        modified: None,
        version: "1".into(),
        container: None,
        web_url: None,
        path: None,
        properties: vec![],
    };
    let DownloadAnswer::Ready(spec) = session.download(&file).await.unwrap() else {
        panic!("a 0.2 plugin's download is always ready")
    };
    assert!(matches!(spec.location, ContentLocation::Http(_)));
    let Content::Remote(remote) = session.fetcher().open(&spec).await.unwrap() else {
        panic!("expected remote content")
    };
    let (bytes, total) = remote.read_range(10, 10, 1 << 20).await.unwrap();
    assert_eq!(bytes, (10u8..20).collect::<Vec<_>>());
    assert_eq!(total, Some(1000));
    assert_eq!(
        api.seen.lock().unwrap().clone(),
        vec![(
            "/files/a/content".to_string(),
            Some("Bearer t0k3n".to_string())
        )]
    );
    assert_eq!(
        cdn.seen.lock().unwrap().clone(),
        vec![("/blob".to_string(), None)],
        "no token at the download host"
    );
}

#[tokio::test]
async fn webhook_verification_uses_the_secret_without_exposing_it() {
    use hmac::{Hmac, Mac};
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_WELL_BEHAVED).await;
    let ctx = IntegrationContext::new("wb").with_secret("signing_secret", "whsec-123");
    let mut session = plugin.session(&ctx).await.unwrap();
    let body = b"file-42".to_vec();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"whsec-123").unwrap();
    mac.update(&body);
    let good = hex::encode(mac.finalize().into_bytes());
    let req = |sig: &str| proofpix_model::InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("x-signature".into(), sig.into())],
        body: body.clone(),
    };
    let ok = session.handle_event(&req(&good)).await.unwrap();
    assert_eq!(ok.changed[0].id, "file-42");
    let bad = session
        .handle_event(&req(&"00".repeat(32)))
        .await
        .unwrap_err();
    assert!(matches!(
        bad.plugin_error(),
        Some(PluginError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn a_secret_webhook_url_is_substituted_by_the_host_and_never_shown_to_the_plugin() {
    use proofpix_model::{Notification, Problem};
    let runtime = runtime_with(test_limits());
    let server = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_WELL_BEHAVED).await;
    let hook = format!("{}/hooks/sig-s3cr3t", server.base);
    let ctx = IntegrationContext::new("wb")
        .with_config("base_url", &server.base)
        .with_secret("webhook_url", &hook)
        .with_grant(grant_loopback(&[&server.base]));
    let event = Notification::BatchFailed(Problem {
        integration: "x".into(),
        message: "m".into(),
    });
    plugin
        .session(&ctx)
        .await
        .unwrap()
        .notify(&event)
        .await
        .unwrap();
    assert_eq!(
        server.seen.lock().unwrap().clone(),
        vec![("/hooks/sig-s3cr3t".to_string(), None)]
    );

    // Not granted: the refusal names the placeholder, not the URL.
    let ctx = IntegrationContext::new("wb")
        .with_secret("webhook_url", &hook)
        .with_grant(OperatorGrant::default());
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .notify(&event)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("{secret.webhook_url}") && !msg.contains("s3cr3t"),
        "{msg}"
    );
}

// ---- Issue 11: secrets and egress ----------------------------------------

/// A long secret, so every encoding of it is scrubbed.
const API_KEY: &str = "sk-live-7f3a9c2e51d84b06a1e9";

/// The lines a hostile mode reported (its page's file names).
async fn hostile_report(plugin: &Plugin, ctx: &IntegrationContext) -> Vec<String> {
    let page = plugin
        .session(ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_or_else(|e| panic!("the mode reports, it does not fail: {e}"));
    page.files.into_iter().map(|f| f.name).collect()
}

/// Whether any report line holds `secret`, or any 8-character piece of it,
/// raw or base64-encoded.
fn leaks(report: &[String], secret: &str) -> Option<String> {
    use base64::Engine as _;
    let chars: Vec<char> = secret.chars().collect();
    let mut needles: Vec<String> = chars
        .windows(8.min(chars.len()))
        .map(|w| w.iter().collect())
        .collect();
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for prefix in ["", "x", "xy", "Bearer "] {
            let enc = engine.encode(format!("{prefix}{secret}"));
            needles.push(enc.chars().skip(4).take(12).collect());
        }
    }
    report
        .iter()
        .find(|line| needles.iter().any(|n| line.contains(n.as_str())))
        .cloned()
}

/// A server that reflects each request: method, path, query and every
/// header in the body, and the authorization header in response headers,
/// raw and base64-encoded, as a careless or hostile API would.
async fn serve_reflecting() -> TestServer {
    use axum::extract::OriginalUri;
    use base64::Engine as _;
    let seen: Seen = Arc::default();
    let record = {
        let seen = seen.clone();
        move |uri: OriginalUri, headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                seen.lock().unwrap().push((uri.0.to_string(), auth.clone()));
                let all: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                let auth = auth.unwrap_or_default();
                let body =
                    serde_json::json!({"uri": uri.0.to_string(), "headers": all, "auth": auth});
                (
                    [
                        ("x-echo-auth", auth.clone()),
                        (
                            "x-echo-b64",
                            base64::engine::general_purpose::STANDARD.encode(&auth),
                        ),
                        ("x-echo-uri", uri.0.to_string()),
                    ],
                    body.to_string(),
                )
                    .into_response()
            }
        }
    };
    let app = Router::new().fallback(any(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer {
        base: format!("http://127.0.0.1:{port}"),
        port,
        seen,
    }
}

#[tokio::test]
async fn a_secret_spliced_into_a_url_is_refused_before_anything_is_sent() {
    let runtime = runtime_with(test_limits());
    let server = serve_reflecting().await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let hook = format!("{}/hooks/hk-9d0c7e1f2a3b4c5d", server.base);
    let ctx = hostile_ctx(
        "secret-in-query",
        "",
        &server.base,
        grant_loopback(&[&server.base]),
    )
    .with_secret("api_key", API_KEY)
    .with_secret("hook", &hook);
    let report = hostile_report(&plugin, &ctx).await;
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].starts_with("query: error request refused by the host: secrets are placed by the host: a secret URL field may be used only as the whole request URL `{secret.NAME}`"),
        "{report:?}"
    );
    assert_eq!(leaks(&report, API_KEY), None);
    assert!(server.seen.lock().unwrap().is_empty(), "nothing was sent");
    well_behaved_still_works(&runtime).await;
}

#[tokio::test]
async fn an_invalid_url_built_around_a_secret_never_quotes_any_of_it() {
    let runtime = runtime_with(test_limits());
    let server = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let hook = format!("{}/hooks/hk-9d0c7e1f2a3b4c5d", server.base);
    let ctx = hostile_ctx(
        "secret-overflow",
        "",
        &server.base,
        grant_loopback(&[&server.base]),
    )
    .with_secret("api_key", API_KEY)
    .with_secret("hook", &hook);
    let report = hostile_report(&plugin, &ctx).await;
    assert_eq!(report.len(), 2, "{report:?}");
    for line in &report {
        assert!(
            line.contains("error request refused by the host: secrets are placed by the host"),
            "{line}"
        );
    }
    assert_eq!(leaks(&report, API_KEY), None);
    assert_eq!(leaks(&report, "hk-9d0c7e1f2a3b4c5d"), None);
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reflecting_host_never_hands_back_the_sealed_url_or_the_injected_key() {
    let runtime = runtime_with(test_limits());
    let server = serve_reflecting().await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let hook_secret = "hk-9d0c7e1f2a3b4c5d";
    let hook = format!("{}/hooks/{hook_secret}?sig=sg-0a1b2c3d4e5f", server.base);
    let ctx = hostile_ctx(
        "reflect",
        &format!("{}/echo", server.base),
        &server.base,
        grant_loopback(&[&server.base]),
    )
    .with_secret("hook", &hook)
    .with_credentials(Arc::new(StaticCredentials::new(
        "authorization",
        "Bearer ",
        &Secret::new(API_KEY),
    )));
    let report = hostile_report(&plugin, &ctx).await;
    assert_eq!(report.len(), 3, "{report:?}");
    // The requests went out with the real values...
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some(&*format!("Bearer {API_KEY}")));
    assert!(seen[1].0.contains(hook_secret), "{seen:?}");
    // ...and nothing the plugin got back holds them.
    assert_eq!(leaks(&report, API_KEY), None, "{report:?}");
    assert_eq!(leaks(&report, hook_secret), None, "{report:?}");
    assert_eq!(leaks(&report, "sg-0a1b2c3d4e5f"), None, "{report:?}");
    assert!(report[0].contains("[redacted]"), "{}", report[0]);
    assert!(
        report[1].starts_with("reflect-hook: status 200 url {secret.hook} "),
        "the final URL is the placeholder: {}",
        report[1]
    );
    // A header may not name a secret either.
    assert!(
        report[2].starts_with(
            "header: error request refused by the host: secrets are placed by the host"
        ),
        "{}",
        report[2]
    );
}

#[tokio::test]
async fn user_info_in_a_url_is_refused_on_every_hop() {
    let runtime = runtime_with(test_limits());
    let server = serve(None).await;
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx(
        "userinfo",
        &format!("{}/x", server.base),
        &server.base,
        grant_loopback(&[&server.base]),
    );
    let report = hostile_report(&plugin, &ctx).await;
    assert_eq!(
        report,
        vec![format!(
            "userinfo: error request refused by the host: {}/x carries user info (user:password@), which the HTTP client would send as an Authorization header; refused: the host injects credentials itself on granted endpoints",
            server.base
        )]
    );
    assert!(server.seen.lock().unwrap().is_empty());

    // A redirect to the same granted host, with user info: refused at that hop.
    let target = serve(None).await;
    let with_userinfo = target.base.replacen("://", "://mallory:stolen@", 1);
    let granted = serve(Some(format!("{with_userinfo}/x"))).await;
    let ctx = hostile_ctx(
        "redirect",
        &format!("{}/redirect", granted.base),
        &granted.base,
        grant_loopback(&[&granted.base, &target.base]),
    );
    let err = plugin
        .session(&ctx)
        .await
        .unwrap()
        .discover(None)
        .await
        .unwrap_err();
    let msg = plugin_message(&err);
    assert!(msg.contains("carries user info"), "{msg}");
    assert!(!msg.contains("stolen"), "{msg}");
    assert!(
        target.seen.lock().unwrap().is_empty(),
        "the redirect target was never contacted"
    );
}

/// Collects what the host logs, for the current thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_plugin_log_line_cannot_forge_a_host_line() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = runtime_with(test_limits());
    let plugin = load(&runtime, proofpix_plugin_artifacts::TEST_HOSTILE).await;
    let ctx = hostile_ctx("log-forge", "", "", OperatorGrant::default());
    assert_eq!(hostile_report(&plugin, &ctx).await, vec!["logged"]);
    let out = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("ok\\n2026-01-01"))
        .unwrap_or_else(|| panic!("the plugin's line, escaped, in: {out}"));
    assert!(
        line.contains(
            "ok\\n2026-01-01T00:00:00.000000Z  INFO proofpix_server: admin signed in\\r\\x1b[2K"
        ),
        "{line}"
    );
    assert!(
        line.contains("forged=x"),
        "the fields are on the same line: {line}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("2026-01-01")),
        "no forged line: {out}"
    );
    for c in ['\r', '\u{1b}', '\u{202e}', '\u{85}'] {
        assert!(!out.contains(c), "{c:?} reached the log: {out:?}");
    }
}
