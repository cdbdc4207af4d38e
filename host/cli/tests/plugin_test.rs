//! `proofpix plugin test`: replay is deterministic, a regression over the threshold fails, a
//! request with no recorded answer fails, and `--record` writes a fixture that replays.
//!
//! Drives the well-behaved test plugin: `discover` GETs `{base_url}/files`, `download` points
//! the host at `{base_url}/files/{id}/content`. Recording with the host's own OAuth: the Google
//! Drive plugin against the Drive emulator, with a service-account key.

use std::path::Path;
use std::process::{Command, Output};

use proofpix_emulators::{Harness, dropbox, google, keys, microsoft};
use serde_json::{Value, json};

fn proofpix(home: &Path, args: &[&str]) -> Output {
    proofpix_with(home, args, &[])
}

fn proofpix_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(args)
        .envs(env.iter().copied())
        .env("PROOFPIX_HOME", home)
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture() -> Value {
    json!({
        "config": {"base_url": "{replay}"},
        "exchanges": [
            {"method": "GET", "path": "/files", "status": 200,
             "headers": [["content-type", "application/json"]],
             "body": "[{\"id\": \"a\", \"name\": \"a.jpg\", \"etag\": \"1\"}]"},
            {"method": "GET", "path": "/files/a/content", "status": 200,
             "headers": [["content-type", "image/jpeg"]], "body_hex": "ffd8ffd9"},
            {"method": "POST", "path": "/writeback", "status": 200, "body": "{}"}
        ]
    })
}

#[test]
fn replays_are_deterministic_and_regressions_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fixture.json"), fixture().to_string()).unwrap();
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let args = [
        "plugin",
        "test",
        plugin,
        "--fixtures",
        dir.to_str().unwrap(),
    ];

    let first = proofpix(&home, &args);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("baseline written"),
        "{}",
        text(&first)
    );
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("baseline.json")).unwrap()).unwrap();
    assert_eq!(baseline["files"], 1);
    assert_eq!(
        baseline["http_requests"], 3,
        "one listing, one download, one write-back"
    );
    assert!(baseline["fuel"].as_u64().unwrap() > 0);

    // The same component and fixture cost exactly the same.
    let second = proofpix(&home, &[&args[..], &["--update-baseline"]].concat());
    assert!(second.status.success(), "{}", text(&second));
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("baseline.json")).unwrap()).unwrap();
    assert_eq!(
        again, baseline,
        "fuel and every other figure repeat exactly"
    );
    let third = proofpix(&home, &args);
    assert!(third.status.success(), "{}", text(&third));
    assert!(text(&third).contains("within 10% of the baseline"));

    // A baseline the plugin now exceeds by more than the threshold fails the run.
    let mut tight = baseline.clone();
    tight["fuel"] = json!(baseline["fuel"].as_u64().unwrap() / 2);
    std::fs::write(dir.join("baseline.json"), tight.to_string()).unwrap();
    let regressed = proofpix(&home, &args);
    assert_eq!(regressed.status.code(), Some(2), "{}", text(&regressed));
    assert!(
        text(&regressed).contains("(more than 10% over)") && text(&regressed).contains("fuel: "),
        "{}",
        text(&regressed)
    );
    let loose = proofpix(&home, &[&args[..], &["--threshold", "150"]].concat());
    assert!(loose.status.success(), "{}", text(&loose));

    // A request the fixture cannot answer fails, naming it.
    let mut partial = fixture();
    partial["exchanges"].as_array_mut().unwrap().remove(1);
    std::fs::write(dir.join("fixture.json"), partial.to_string()).unwrap();
    std::fs::write(dir.join("baseline.json"), baseline.to_string()).unwrap();
    let missing = proofpix(&home, &args);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("requests with no recorded answer: GET /files/a/content"),
        "{}",
        text(&missing)
    );
}

#[test]
fn a_recording_replays() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/files",
                axum::routing::get(|| async {
                    axum::Json(json!([{"id": "x", "name": "x.jpg", "etag": "7"}]))
                }),
            )
            .route(
                "/files/x/content",
                axum::routing::get(|| async { vec![0xffu8, 0xd8, 0xff, 0xd9] }),
            )
            .route("/writeback", axum::routing::post(|| async { "{}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("recorded");
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let rec = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
        ],
    );
    assert!(rec.status.success(), "{}", text(&rec));
    assert!(
        text(&rec).contains("recorded 3 exchanges"),
        "{}",
        text(&rec)
    );
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    assert_eq!(recorded["config"]["base_url"], "{replay}");
    let body_file = recorded["exchanges"][1]["body_file"].as_str().unwrap();
    assert_eq!(
        std::fs::read(dir.join(body_file)).unwrap(),
        [0xff, 0xd8, 0xff, 0xd9]
    );
    drop(rt); // the service is gone; the replay needs only the fixture
    let replay = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
        ],
    );
    assert!(replay.status.success(), "{}", text(&replay));
}

/// A secret reaches a recording through the request path (a plugin that puts a key in a URL),
/// response headers (a service that echoes what it got) and bodies, raw or percent-encoded:
/// none of it is kept, and the scrubbed recording still replays.
#[test]
fn a_recording_keeps_no_secret_in_paths_headers_or_bodies() {
    const SECRET: &str = "s3cr/t+k3y@v";
    const ENCODED: &str = "s3cr%2Ft%2Bk3y%40v";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/files",
                axum::routing::get(|| async {
                    // The file's id is the key, as a careless service might hand it out.
                    axum::Json(json!([{"id": ENCODED, "name": "x.jpg", "etag": "7"}]))
                }),
            )
            .route(
                "/files/{id}/content",
                axum::routing::get(|headers: axum::http::HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    (
                        [
                            ("x-echo-authorization", auth),
                            (
                                "x-next",
                                format!("/files?key={ENCODED}&lower=s3cr%2ft%2bk3y%40v"),
                            ),
                        ],
                        vec![0xffu8, 0xd8, 0xff, 0xd9],
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("recorded");
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let rec = proofpix_with(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
            "--secret",
            "token=env:PP_TEST_TOKEN",
        ],
        &[("PP_TEST_TOKEN", SECRET)],
    );
    assert!(rec.status.success(), "{}", text(&rec));
    assert!(!text(&rec).contains(SECRET), "{}", text(&rec));
    let fixture = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    for form in [SECRET, ENCODED, "s3cr%2ft%2bk3y%40v", "k3y"] {
        assert!(!fixture.contains(form), "{form} recorded:\n{fixture}");
    }
    let recorded: Value = serde_json::from_str(&fixture).unwrap();
    let content = &recorded["exchanges"][1];
    // The host's own scrubber already replaced the key in the listing the plugin received
    // (issue 11), so the plugin asked for `[redacted]`: the secret never reached the plugin.
    // The recording uses the same marker, so the replayed listing leads to the same path.
    assert_eq!(content["path"], "/files/[redacted]/content", "{fixture}");
    let header = |name: &str| {
        content["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        header("x-echo-authorization"),
        "Bearer [redacted]",
        "{fixture}"
    );
    assert_eq!(
        header("x-next"),
        "/files?key=[redacted]&lower=[redacted]",
        "{fixture}"
    );
    assert_eq!(
        std::fs::read(dir.join(content["body_file"].as_str().unwrap())).unwrap(),
        [0xff, 0xd8, 0xff, 0xd9],
        "an image without the secret is kept as is"
    );
    drop(rt);
    let replay = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
        ],
    );
    assert!(replay.status.success(), "{}", text(&replay));
}

/// A service-account key file as the Cloud console downloads it.
fn key_file(private_key_pem: &str) -> String {
    json!({
        "type": "service_account",
        "private_key_id": google::fixtures::PRIVATE_KEY_ID,
        "private_key": private_key_pem,
        "client_email": google::fixtures::SERVICE_ACCOUNT,
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

/// `plugin test --record` of the Google Drive plugin against the Drive emulator at `api_url`,
/// with a service-account key file around `private_key_pem` passed through the environment.
fn record_drive(home: &Path, dir: &Path, api_url: &str, private_key_pem: &str) -> Output {
    let key = key_file(private_key_pem);
    proofpix_with(
        home,
        &[
            "plugin",
            "test",
            proofpix_plugin_artifacts::GOOGLE_DRIVE,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            api_url,
            "-c",
            "api_url={replay}",
            "-c",
            "token_url={replay}/token",
            "-s",
            "service_account_key=env:DRIVE_KEY",
        ],
        &[("DRIVE_KEY", &key)],
    )
}

/// The Google OAuth and Drive emulator, seeded, on the returned runtime (drop it to stop it).
fn drive_emulator() -> (tokio::runtime::Runtime, google::drive::DriveEmulator) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let g = rt
        .block_on(google::start_with_drive(
            Default::default(),
            Default::default(),
            Harness::default(),
        ))
        .unwrap();
    (rt, g)
}

fn figure(out: &str, name: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn a_service_account_plugin_records_with_the_hosts_token_and_replays_without_the_service() {
    let (rt, g) = drive_emulator();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("drive");
    let plugin = proofpix_plugin_artifacts::GOOGLE_DRIVE;
    let rec = record_drive(&home, &dir, &g.api_url(), keys::PRIVATE_KEY_A_PEM);
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    assert!(out.contains("recorded "), "{out}");
    let files = figure(&out, "files");
    let images = g
        .drive()
        .files()
        .iter()
        .filter(|f| f.is_image && !f.trashed)
        .count() as u64;
    assert!(files > 0 && files <= images, "{files} of {images}\n{out}");
    // The host obtained a real token: the emulator issued one and the plugin's calls carried it.
    assert!(
        g.drive().exchanges().iter().any(|e| e.status == 200),
        "the Drive answered"
    );

    let text_of = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    let recorded: Value = serde_json::from_str(&text_of).unwrap();
    assert_eq!(recorded["config"]["token_url"], "{replay}/token");
    assert!(!text_of.contains("PRIVATE KEY"), "no key in the fixture");
    assert!(!text_of.contains("ya29."), "no token in the fixture");
    let paths: Vec<&str> = recorded["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(
        !paths.iter().any(|p| p.starts_with("/token")),
        "the token exchange is not recorded: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("alt=media")),
        "downloads are: {paths:?}"
    );
    drop(rt); // the emulator is gone; the replay needs only the fixture

    let replay = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
        ],
    );
    let out = text(&replay);
    assert!(replay.status.success(), "{out}");
    assert_eq!(figure(&out, "files"), files, "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");
}

#[test]
fn recording_with_a_key_the_service_refuses_fails_before_any_plugin_call() {
    let (_rt, g) = drive_emulator();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drive");
    let rec = record_drive(
        &tmp.path().join("home"),
        &dir,
        &g.api_url(),
        keys::PRIVATE_KEY_B_PEM,
    );
    let out = text(&rec);
    assert!(!rec.status.success(), "{out}");
    assert!(out.contains("obtaining a token from the service"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    assert!(!dir.join("fixture.json").exists(), "nothing recorded");
}

#[test]
fn a_browser_sign_in_plugin_is_refused_for_recording_with_what_is_supported() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = proofpix(
        &tmp.path().join("home"),
        &[
            "plugin",
            "test",
            proofpix_plugin_artifacts::DROPBOX,
            "--fixtures",
            tmp.path().join("dropbox").to_str().unwrap(),
            "--record",
            "http://127.0.0.1:9",
        ],
    );
    let out = text(&rec);
    assert!(!rec.status.success(), "{out}");
    assert!(
        out.contains("authorization-code flow") && out.contains("client-credentials"),
        "{out}"
    );
}

/// The Microsoft identity platform and Graph emulator, seeded, on the returned runtime (drop it
/// to stop it). Graph pages with absolute `@odata.nextLink`s and redirects downloads to a
/// second host.
fn graph_emulator() -> (tokio::runtime::Runtime, microsoft::graph::GraphEmulator) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ms = rt
        .block_on(microsoft::start_with_graph(
            Default::default(),
            Default::default(),
            Harness::default(),
        ))
        .unwrap();
    (rt, ms)
}

/// `plugin test --record` of the SharePoint plugin against the Graph emulator, four items a
/// page, the download host as the emulator's second server; `extra` arguments appended.
fn record_sharepoint(
    home: &Path,
    dir: &Path,
    ms: &microsoft::graph::GraphEmulator,
    extra: &[&str],
) -> Output {
    let download_host = format!("download_host={}", ms.download_url());
    let tenant = format!("tenant={}", microsoft::fixtures::TENANT_ID);
    let client = format!("client_id={}", microsoft::fixtures::CLIENT_ID);
    let sites = format!("sites={}", microsoft::graph::seed::FIELDWORK_SITE);
    let graph = ms.graph_url();
    let mut args = vec![
        "plugin",
        "test",
        proofpix_plugin_artifacts::SHAREPOINT,
        "--fixtures",
        dir.to_str().unwrap(),
        "--record",
        &graph,
        "-c",
        "graph_url={replay}",
        "-c",
        "login_url={replay}",
        "-c",
        &download_host,
        "-c",
        &tenant,
        "-c",
        &client,
        "-c",
        &sites,
        "-c",
        "page_size=4",
        "-s",
        "client_secret=env:MS_SECRET",
    ];
    args.extend_from_slice(extra);
    proofpix_with(
        home,
        &args,
        &[("MS_SECRET", microsoft::fixtures::CLIENT_SECRET)],
    )
}

fn replay(home: &Path, plugin: &str, dir: &Path, extra: &[&str]) -> Output {
    let args = [
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    proofpix(home, &args)
}

/// Graph pages with absolute `@odata.nextLink` URLs on its own host and answers a download
/// with a 302 to a pre-authenticated URL on another host. The recording keeps both as the
/// service sent them; the replay answers them from its own servers, so paging and the redirect
/// work offline, and the bearer token still never reaches the download host.
#[test]
fn absolute_next_links_and_redirects_to_another_host_replay_offline() {
    let (rt, ms) = graph_emulator();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("sharepoint");
    let rec = record_sharepoint(&home, &dir, &ms, &[]);
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    let files = figure(&out, "files");
    assert!(files > 4, "more than one page of files: {out}");
    let graph = ms.graph_url();
    let download = ms.download_url();

    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    assert_eq!(recorded["service"], graph.as_str());
    assert_eq!(recorded["origins"], json!([download]));
    let exchanges = recorded["exchanges"].as_array().unwrap();
    let next_links = exchanges
        .iter()
        .filter(|e| {
            e["body"]
                .as_str()
                .is_some_and(|b| b.contains(&format!("\"@odata.nextLink\":\"{graph}/")))
        })
        .count();
    assert!(next_links >= 2, "absolute next links kept as sent");
    let redirects: Vec<&Value> = exchanges.iter().filter(|e| e["status"] == 302).collect();
    assert!(!redirects.is_empty(), "the 302s are recorded, not followed");
    for r in &redirects {
        let location = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "location")
            .unwrap();
        assert!(
            location[1].as_str().unwrap().starts_with(&download),
            "{location}"
        );
    }
    let downloads = exchanges
        .iter()
        .filter(|e| e["origin"] == download.as_str())
        .count();
    assert_eq!(
        downloads,
        redirects.len(),
        "each redirect led to the download host"
    );
    let on_download_host: Vec<_> = ms
        .graph()
        .exchanges()
        .into_iter()
        .filter(|e| e.server == microsoft::graph::Server::Download)
        .collect();
    assert_eq!(on_download_host.len(), downloads);
    assert!(
        on_download_host.iter().all(|e| e.authorization.is_none()),
        "no bearer token on the download host"
    );
    drop(rt); // Graph and the download host are gone

    let again = replay(&home, proofpix_plugin_artifacts::SHAREPOINT, &dir, &[]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");
    assert_eq!(figure(&out, "files"), files, "{out}");
    assert_eq!(
        figure(&out, "http_requests"),
        exchanges.len() as u64,
        "every recorded exchange answered once: {out}"
    );
}

/// A stand-in for the well-behaved plugin's API: one file, `x`, and its bytes.
fn one_file_service(rt: &tokio::runtime::Runtime) -> String {
    rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/files",
                axum::routing::get(|| async {
                    axum::Json(json!([{"id": "x", "name": "x.jpg", "etag": "7"}]))
                }),
            )
            .route(
                "/files/x/content",
                axum::routing::get(|| async { vec![0xffu8, 0xd8, 0xff, 0xd9] }),
            )
            .route(
                "/writeback",
                axum::routing::post(|| async { axum::Json(json!({"ok": true})) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    })
}

/// An error answer is recorded like any other (`--inject` makes one up where the service will
/// not fail on demand), and the replay holds the plugin to how it handled it: the 503 on the
/// listing and the 429 on the download are retried, and a fixture without them no longer
/// fails the calls the baseline says fail.
#[test]
fn error_answers_are_recorded_and_their_handling_is_replayed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = one_file_service(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("errors");
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let rec = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
            "--inject",
            "GET /files=503",
            "--inject",
            "GET /files/x/content=429",
        ],
    );
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    let fixture = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    let recorded: Value = serde_json::from_str(&fixture).unwrap();
    let statuses: Vec<(String, u64)> = recorded["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses[..4],
        [
            ("/files".to_string(), 503),
            ("/files".to_string(), 200),
            ("/files/x/content".to_string(), 429),
            ("/files/x/content".to_string(), 200),
        ],
        "{fixture}"
    );
    drop(rt);

    let first = replay(&home, plugin, &dir, &["--update-baseline"]);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("baseline.json")).unwrap()).unwrap();
    // (The notifier half of the plugin has no webhook URL here: its failure is kept too.)
    let errors: Vec<&str> = baseline["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|e| !e.starts_with("notify "))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("discover page 1: ") && errors[0].ends_with("(retried)"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        "fetch x: HTTP 429 from {replay}/files/x/content (retried)"
    );
    assert_eq!(figure(&out, "files"), 1, "{out}");
    let again = replay(&home, plugin, &dir, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("3 failed calls, as in the baseline"),
        "{}",
        text(&again)
    );

    // Without the 503 the listing no longer fails: not what the baseline holds.
    let mut changed = recorded.clone();
    changed["exchanges"].as_array_mut().unwrap().remove(0);
    std::fs::write(dir.join("fixture.json"), changed.to_string()).unwrap();
    let differs = replay(&home, plugin, &dir, &[]);
    let out = text(&differs);
    assert_eq!(differs.status.code(), Some(2), "{out}");
    assert!(
        out.contains("the calls that failed are not the baseline's"),
        "{out}"
    );
}

/// A 401 in the middle of a recording with the host's OAuth token: the host refreshed the
/// token and the plugin's call was retried. The replay does the same with the recorded
/// answers: the 401, then the answer to the retried call.
#[test]
fn a_recorded_401_replays_as_a_refresh_and_a_retry() {
    let (rt, ms) = graph_emulator();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("sharepoint");
    let rec = record_sharepoint(&home, &dir, &ms, &["--inject", "GET /v1.0/sites/*=401"]);
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    assert!(!out.contains("failed calls"), "the retry succeeded: {out}");
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    assert_eq!(recorded["exchanges"][0]["status"], 401, "{recorded}");
    assert_eq!(
        recorded["exchanges"][0]["path"],
        recorded["exchanges"][1]["path"]
    );
    drop(rt);
    let again = replay(&home, proofpix_plugin_artifacts::SHAREPOINT, &dir, &[]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");
}

/// HMAC-SHA256, hex: how the well-behaved plugin's webhooks are signed.
fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(body.iter().copied())
        .collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner.iter().copied())
        .collect();
    hex::encode(Sha256::digest(&outer))
}

/// Beyond check, discover and download, the run drives what a sync and the daemon do next:
/// `write-back` of each file's analysis (the platform receives it), `notify` of the batch to a
/// secret webhook URL, and `events.handle` of a recorded, signed webhook request. The replay
/// does all of it again offline, and a webhook that no longer verifies (another signing key)
/// fails it.
#[test]
fn replay_drives_write_back_notify_and_events() {
    use std::sync::{Arc, Mutex};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let written: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = written.clone();
    let base = rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/files",
                axum::routing::get(|| async {
                    axum::Json(json!([{"id": "x", "name": "x.jpg", "etag": "7"}]))
                }),
            )
            .route(
                "/files/x/content",
                axum::routing::get(|| async { vec![0xffu8, 0xd8, 0xff, 0xd9] }),
            )
            .route(
                "/writeback",
                axum::routing::post(move |axum::Json(v): axum::Json<Value>| async move {
                    seen.lock().unwrap().push(v);
                    axum::Json(json!({"ok": true}))
                }),
            )
            .route("/hook-T1-B2", axum::routing::post(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("all");
    let event = tmp.path().join("event.json");
    let signature = hmac_sha256_hex(b"sign-key", b"x");
    std::fs::write(
        &event,
        json!({"method": "POST", "path": "/", "headers": [["x-signature", signature]], "body": "x"})
            .to_string(),
    )
    .unwrap();
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let secrets = [("HOOK", "{replay}/hook-T1-B2"), ("SIGN", "sign-key")];
    let rec = proofpix_with(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
            "-s",
            "webhook_url=env:HOOK",
            "-s",
            "signing_secret=env:SIGN",
            "--event",
            event.to_str().unwrap(),
        ],
        &secrets,
    );
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    for line in [
        "write-back: 1 of 1 results written",
        "notify batch-completed: delivered",
        "event 1: answered 200, changed [x], removed [], resync false",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
    assert_eq!(*written.lock().unwrap(), [json!({"ids": ["x"]})]);
    let fixture = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    assert!(
        !fixture.contains("hook-T1-B2"),
        "the secret URL's path: {fixture}"
    );
    assert!(!fixture.contains("sign-key"), "{fixture}");
    let recorded: Value = serde_json::from_str(&fixture).unwrap();
    assert_eq!(recorded["events"][0]["body"], "x");
    drop(rt);

    let secret_args = [
        "-s",
        "webhook_url=env:HOOK",
        "-s",
        "signing_secret=env:SIGN",
    ];
    let args = [
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
        ][..],
        &secret_args,
    ]
    .concat();
    let first = proofpix_with(
        &home,
        &[&args[..], &["--update-baseline"]].concat(),
        &secrets,
    );
    assert!(first.status.success(), "{}", text(&first));
    let again = proofpix_with(&home, &args, &secrets);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(out.contains("event 1: answered 200, changed [x]"), "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");

    let wrong_key = proofpix_with(&home, &args, &[secrets[0], ("SIGN", "another-key")]);
    let out = text(&wrong_key);
    assert_eq!(wrong_key.status.code(), Some(2), "{out}");
    assert!(
        out.contains("event 1: ") && out.contains("bad signature"),
        "{out}"
    );
}

/// An authorization-code plugin records from an integration that went through the consent
/// once: the host refreshes its token from the stored refresh token (the access token the
/// consent left has expired), the recording keeps no token, code or secret, and replays
/// without the service.
#[test]
fn an_authorization_code_plugin_records_from_a_stored_refresh_token() {
    use std::io::BufRead;
    use std::process::Stdio;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let harness = Harness::default();
    let d = rt
        .block_on(dropbox::start_with_files(
            // Access tokens that expire within the host's margin: by the time of the
            // recording, only the refresh token works.
            dropbox::DropboxConfig {
                access_lifetime_secs: 1,
                ..Default::default()
            },
            Default::default(),
            harness.clone(),
        ))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("dropbox");
    let trust = [
        ("PROOFPIX_TRUST_DEVELOPMENT_BUILD", "1"),
        ("DBX_SECRET", dropbox::fixtures::CLIENT_SECRET),
    ];
    let api = d.api_url();
    let content = d.content_url();
    let add = proofpix_with(
        &home,
        &[
            "integration",
            "add",
            "dbx",
            "--plugin",
            "dropbox",
            "-c",
            &format!("app_key={}", dropbox::fixtures::CLIENT_ID),
            "-c",
            &format!("api_url={api}"),
            "-c",
            &format!("content_url={content}"),
            "-c",
            &format!("www_url={}", d.www_url()),
            "-s",
            "app_secret=env:DBX_SECRET",
            "--grant-host",
            &api,
            "--grant-host",
            &content,
            "--allow-loopback",
        ],
        &trust,
    );
    assert!(add.status.success(), "{}", text(&add));

    // The consent, once: `integration authorize` prints the URL a person would open.
    let mut authorize = Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(["integration", "authorize", "dbx"])
        .envs(trust)
        .env("PROOFPIX_HOME", &home)
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(authorize.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|l| l.trim().starts_with("http").then(|| l.trim().to_string()))
        .expect("an authorization URL");
    let approved = reqwest::blocking::get(&url).unwrap();
    assert!(approved.status().is_success(), "{approved:?}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let authorized = authorize.wait_with_output().unwrap();
    assert!(
        authorized.status.success() && rest.iter().any(|l| l.starts_with("authorized")),
        "{rest:?} {}",
        text(&authorized)
    );

    let before = harness.log.to_path("/oauth2/token").len();
    let rec = proofpix_with(
        &home,
        &[
            "plugin",
            "test",
            proofpix_plugin_artifacts::DROPBOX,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &api,
            "--integration",
            "dbx",
        ],
        &trust,
    );
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    assert!(figure(&out, "files") > 0, "{out}");
    let refreshes = harness.log.to_path("/oauth2/token")[before..]
        .iter()
        .filter(|r| r.form().get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count();
    assert!(refreshes >= 1, "the stored refresh token was used");

    let fixture = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    for secret in harness.minted_secrets() {
        assert!(!fixture.contains(&secret), "{secret} recorded");
    }
    assert!(!fixture.contains(dropbox::fixtures::CLIENT_SECRET));
    let recorded: Value = serde_json::from_str(&fixture).unwrap();
    assert_eq!(recorded["config"]["api_url"], "{replay}");
    assert_eq!(recorded["origins"], json!([content]));
    drop(d);
    drop(rt);

    let again = replay(&home, proofpix_plugin_artifacts::DROPBOX, &dir, &[]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");
}

/// A binary body is stored as the bytes themselves, in a file of its own named by its content
/// (the same image served twice is stored once), not as hex twice its size in the JSON; a
/// fixture of the old form, with `body_hex`, still replays.
#[test]
fn binary_bodies_are_stored_as_files_and_hex_fixtures_still_replay() {
    // 256 KiB that is not UTF-8, as a photo is not.
    let photo: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();
    let served = photo.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/files",
                axum::routing::get(|| async {
                    axum::Json(json!([
                        {"id": "x", "name": "x.jpg", "etag": "7"},
                        {"id": "y", "name": "copy of x.jpg", "etag": "7"}
                    ]))
                }),
            )
            .route(
                "/files/{id}/content",
                axum::routing::get(move || {
                    let photo = served.clone();
                    async move { ([("content-type", "image/jpeg")], photo) }
                }),
            )
            .route("/writeback", axum::routing::post(|| async { "{}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("photos");
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let rec = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
        ],
    );
    assert!(rec.status.success(), "{}", text(&rec));
    drop(rt);
    let fixture_text = std::fs::read_to_string(dir.join("fixture.json")).unwrap();
    assert!(
        fixture_text.len() < 8 * 1024,
        "no body inline: {} bytes",
        fixture_text.len()
    );
    let recorded: Value = serde_json::from_str(&fixture_text).unwrap();
    let files: Vec<&str> = recorded["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body_file"].as_str())
        .collect();
    assert_eq!(files.len(), 2, "{fixture_text}");
    assert_eq!(files[0], files[1], "one file for the same bytes");
    assert!(
        files[0].starts_with("bodies/") && files[0].ends_with(".jpg"),
        "{}",
        files[0]
    );
    assert_eq!(std::fs::read(dir.join(files[0])).unwrap(), photo);
    let stored: u64 = std::fs::read_dir(dir.join("bodies"))
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(stored, photo.len() as u64, "the bytes, once, nothing more");

    let again = replay(&home, plugin, &dir, &[]);
    assert!(again.status.success(), "{}", text(&again));

    // The old form: the same body as hex inline, no body files.
    let mut old = recorded.clone();
    for e in old["exchanges"].as_array_mut().unwrap() {
        if e.get("body_file").is_some() {
            e.as_object_mut().unwrap().remove("body_file");
            e["body_hex"] = json!(hex::encode(&photo));
        }
    }
    std::fs::remove_dir_all(dir.join("bodies")).unwrap();
    std::fs::write(dir.join("fixture.json"), old.to_string()).unwrap();
    let hex_replay = replay(&home, plugin, &dir, &[]);
    let out = text(&hex_replay);
    assert!(hex_replay.status.success(), "{out}");
    assert!(!out.contains("no recorded answer"), "{out}");
}

/// The baseline is written when the fixture is recorded, by a replay of the new fixture run
/// straight after the recording: it holds what the replays in CI measure (a replay that
/// rewrites it changes nothing), and the first replay already compares.
#[test]
fn the_baseline_is_written_at_recording_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = one_file_service(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("fresh");
    let plugin = proofpix_plugin_artifacts::TEST_WELL_BEHAVED;
    let rec = proofpix(
        &home,
        &[
            "plugin",
            "test",
            plugin,
            "--fixtures",
            dir.to_str().unwrap(),
            "--record",
            &base,
            "-c",
            "base_url={replay}",
        ],
    );
    let out = text(&rec);
    assert!(rec.status.success(), "{out}");
    assert!(
        out.contains("replayed offline:") && out.contains("baseline written to"),
        "{out}"
    );
    drop(rt);
    let written = std::fs::read_to_string(dir.join("baseline.json")).unwrap();

    let first = replay(&home, plugin, &dir, &[]);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("within 10% of the baseline"), "{out}");
    assert!(!out.contains("baseline written"), "{out}");

    let rewrite = replay(&home, plugin, &dir, &["--update-baseline"]);
    assert!(rewrite.status.success(), "{}", text(&rewrite));
    let rewritten = std::fs::read_to_string(dir.join("baseline.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&rewritten).unwrap(),
        serde_json::from_str::<Value>(&written).unwrap(),
        "a replay measures exactly what the recording's baseline holds"
    );
}
