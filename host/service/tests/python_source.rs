//! A source connector written in Python (`sdk/examples/python-source`), for a
//! photo-sharing API the host has never heard of (Pixfold, served here by a
//! small axum app that follows the API the example's README documents), runs
//! end to end through the host: it lists every page, hands the host download
//! requests it reads by range, writes each verdict back with the credential
//! the host placed in the header the manifest declares, and turns Pixfold's
//! errors into the contract's (429 with Retry-After, 5xx, 404, 401, 403).
//!
//! The images are the repository's `samples/`. componentize-py is found as
//! in `python_plugin.rs` (`./test` installs it into `target/tools/py`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use proofpix_model::{FileResult, PluginError, RemoteFile, RiskLevel as WitRisk};
use proofpix_pipeline::{PipelineOptions, SyncMode};
use proofpix_policy::OperatorGrant;
use proofpix_runtime::contract::AuthScheme;
use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::{FileStatus, IntegrationStatus, Store};
use proofpix_vault::{MasterKey, Secret};
use serde_json::{Value, json};

/// The key the operator configures; Pixfold accepts it with both scopes.
const KEY: &str = "pfk_live_3c9e1d7a55b04f2e";
/// A key Pixfold accepts for reading only.
const READ_ONLY_KEY: &str = "pfk_live_readonly_0a1b2c";
/// A key Pixfold does not know (and echoes back in its 401 message).
const WRONG_KEY: &str = "pfk_live_revoked_9f8e7d";

/// Builds the example exactly as its README says.
fn build_python_source(out: &Path) -> Vec<u8> {
    support::build_python_example("python-source", out)
}

// --- Pixfold, as its README documents it -------------------------------------

struct Photo {
    id: String,
    filename: String,
    album: String,
    bytes: Vec<u8>,
    revision: u32,
    /// Pixfold's change sequence: the photo changed at this point.
    seq: u64,
}

/// One request Pixfold got: method, path and query, and the credential header.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: Option<String>,
    range: Option<String>,
}

/// A one-shot fault: the next request to `route` is answered with `status`.
struct Fault {
    route: String,
    status: StatusCode,
    retry_after: Option<&'static str>,
}

#[derive(Default)]
struct Pixfold {
    photos: Mutex<Vec<Photo>>,
    /// Deleted photo ids, with the sequence of the deletion.
    deleted: Mutex<Vec<(String, u64)>>,
    seq: Mutex<u64>,
    /// API keys and their scopes.
    keys: Mutex<BTreeMap<String, Vec<&'static str>>>,
    seen: Mutex<Vec<Seen>>,
    /// Verdicts stored through `PUT /v1/photos/{id}/privacy`, in order.
    verdicts: Mutex<Vec<(String, Value)>>,
    faults: Mutex<Vec<Fault>>,
}

type Shared = Arc<Pixfold>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

impl Pixfold {
    fn next_seq(&self) -> u64 {
        let mut s = self.seq.lock().unwrap();
        *s += 1;
        *s
    }

    fn add(&self, album: &str, filename: &str, bytes: Vec<u8>) -> String {
        let seq = self.next_seq();
        let mut photos = self.photos.lock().unwrap();
        let id = format!("p_{:03}", photos.len() + 1);
        photos.push(Photo {
            id: id.clone(),
            filename: filename.into(),
            album: album.into(),
            bytes,
            revision: 1,
            seq,
        });
        id
    }

    fn fault(&self, route: &str, status: StatusCode, retry_after: Option<&'static str>) {
        self.faults.lock().unwrap().push(Fault {
            route: route.into(),
            status,
            retry_after,
        });
    }

    /// Records the request, answers a pending fault for `route`, and checks
    /// the API key and its scope, as Pixfold does before anything else:
    /// the refusal to send, if any.
    fn gate(
        &self,
        method: &str,
        uri: &str,
        headers: &HeaderMap,
        route: &str,
        scope: &str,
    ) -> Option<Response> {
        let value = |h: header::HeaderName| {
            headers
                .get(h)
                .map(|v| v.to_str().unwrap_or_default().to_string())
        };
        self.seen.lock().unwrap().push(Seen {
            method: method.into(),
            uri: uri.into(),
            authorization: value(header::AUTHORIZATION),
            range: value(header::RANGE),
        });
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            faults
                .iter()
                .position(|f| f.route == route)
                .map(|i| faults.remove(i))
        };
        if let Some(f) = fault {
            let mut r = error(f.status, "fault", "injected by the test").into_response();
            if let Some(s) = f.retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, s.parse().unwrap());
            }
            return Some(r);
        }
        let auth = value(header::AUTHORIZATION).unwrap_or_default();
        let key = auth.strip_prefix("Bearer ").unwrap_or_default();
        let scopes = self.keys.lock().unwrap().get(key).cloned();
        match scopes {
            // Like several real APIs, Pixfold quotes the key it refused.
            None => Some(error(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                &format!("Invalid API key provided: {key}"),
            )),
            Some(s) if !s.contains(&scope) => Some(error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                &format!("this key lacks the {scope} scope"),
            )),
            Some(_) => None,
        }
    }
}

fn photo_json(base: &str, p: &Photo) -> Value {
    json!({
        "id": p.id,
        "filename": p.filename,
        "album": p.album,
        "content_type": "image/jpeg",
        "size": p.bytes.len(),
        "updated_at": format!("2026-11-{:02}T09:00:00Z", 1 + p.seq % 28),
        "revision": p.revision.to_string(),
        "web_url": format!("https://pixfold.example/p/{}", p.id),
        "download_url": format!("{base}/v1/photos/{}/original", p.id),
    })
}

/// Pixfold's listing cursor: opaque to clients; here the offset and the
/// listing's filters, hex-encoded JSON.
fn encode_cursor(offset: usize, since: u64, album: &Option<String>) -> String {
    hex::encode(json!({"offset": offset, "since": since, "album": album}).to_string())
}

async fn list_photos(
    State((p, base)): State<(Shared, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let (offset, since, album) = match q.get("cursor") {
        Some(c) => {
            let v: Value = serde_json::from_slice(&hex::decode(c).unwrap()).unwrap();
            (
                v["offset"].as_u64().unwrap() as usize,
                v["since"].as_u64().unwrap(),
                v["album"].as_str().map(String::from),
            )
        }
        None => (
            0,
            q.get("changed_since").map_or(0, |s| s.parse().unwrap()),
            q.get("album").cloned(),
        ),
    };
    let route = format!("list@{offset}");
    if let Some(r) = p.gate("GET", &uri.to_string(), &headers, &route, "photos:read") {
        return r;
    }
    let limit: usize = q.get("limit").map_or(100, |l| l.parse().unwrap());
    let photos = p.photos.lock().unwrap();
    let matching: Vec<&Photo> = photos
        .iter()
        .filter(|ph| ph.seq > since && album.as_ref().is_none_or(|a| *a == ph.album))
        .collect();
    let end = (offset + limit).min(matching.len());
    let page: Vec<Value> = matching[offset.min(end)..end]
        .iter()
        .map(|ph| photo_json(&base, ph))
        .collect();
    // Deletions since the token come with the first page of a changes listing.
    let deleted: Vec<String> = if offset == 0 && since > 0 {
        p.deleted
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s > since)
            .map(|(id, _)| id.clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut body = json!({"photos": page, "deleted": deleted, "next_cursor": null});
    if end < matching.len() {
        body["next_cursor"] = json!(encode_cursor(end, since, &album));
    } else {
        body["sync_token"] = json!(p.seq.lock().unwrap().to_string());
    }
    axum::Json(body).into_response()
}

async fn original(
    State((p, _)): State<(Shared, String)>,
    UrlPath(id): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = p.gate("GET", &uri.to_string(), &headers, "original", "photos:read") {
        return r;
    }
    let photos = p.photos.lock().unwrap();
    let Some(photo) = photos.iter().find(|ph| ph.id == id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such photo");
    };
    let bytes = &photo.bytes;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'));
    let Some((start, end)) = range else {
        return ([(header::CONTENT_TYPE, "image/jpeg")], bytes.clone()).into_response();
    };
    let start: usize = start.parse().unwrap();
    let end: usize = end
        .parse::<usize>()
        .map_or(bytes.len() - 1, |e| e.min(bytes.len() - 1));
    if start >= bytes.len() {
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{}", bytes.len()))],
        )
            .into_response();
    }
    (
        StatusCode::PARTIAL_CONTENT,
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", bytes.len()),
            ),
        ],
        bytes[start..=end].to_vec(),
    )
        .into_response()
}

async fn store_verdict(
    State((p, _)): State<(Shared, String)>,
    UrlPath(id): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = p.gate("PUT", &uri.to_string(), &headers, "privacy", "photos:write") {
        return r;
    }
    if !p.photos.lock().unwrap().iter().any(|ph| ph.id == id) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no photo {id}"),
        );
    }
    let Ok(verdict) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad_json", "not JSON");
    };
    p.verdicts.lock().unwrap().push((id, verdict));
    StatusCode::NO_CONTENT.into_response()
}

async fn account(
    State((p, _)): State<(Shared, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = p.gate("GET", &uri.to_string(), &headers, "account", "photos:read") {
        return r;
    }
    let key = headers[header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_string();
    let scopes = p.keys.lock().unwrap()[&key].clone();
    axum::Json(json!({
        "id": "acct_42",
        "name": "Harbour Studio",
        "email": "ops@harbour.example",
        "scopes": scopes,
    }))
    .into_response()
}

/// Pixfold on loopback, holding every `.jpg` of `samples/` (album = folder).
async fn pixfold() -> (String, Shared) {
    let p: Shared = Arc::default();
    p.keys
        .lock()
        .unwrap()
        .insert(KEY.into(), vec!["photos:read", "photos:write"]);
    p.keys
        .lock()
        .unwrap()
        .insert(READ_ONLY_KEY.into(), vec!["photos:read"]);
    let samples = support::workspace().join("samples");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&samples).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "jpg") {
                    files.push(f);
                }
            }
        }
    }
    files.sort();
    for f in files {
        let album = f.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        p.add(album, name, std::fs::read(&f).unwrap());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/account", get(account))
        .route("/v1/photos", get(list_photos))
        .route("/v1/photos/{id}/original", get(original))
        .route("/v1/photos/{id}/privacy", put(store_verdict))
        .with_state((p.clone(), base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, p)
}

// --- the host ---------------------------------------------------------------

async fn integration(host: &Host, id: &str, base: &str, key: &str) {
    host.create_integration(
        IntegrationSpec {
            id: id.into(),
            plugin: "pixfold".into(),
            config: BTreeMap::from([
                ("base_url".to_string(), base.to_string()),
                ("page_size".to_string(), "3".to_string()),
            ]),
            secrets: BTreeMap::from([("api_key".to_string(), Secret::new(key.to_string()))]),
            grant: OperatorGrant {
                hosts: vec![base.to_string()],
                allow_loopback: true,
                ..OperatorGrant::default()
            },
            ..IntegrationSpec::default()
        },
        "test",
    )
    .await
    .unwrap();
}

fn risk_word(r: proofpix_analysis::RiskLevel) -> String {
    format!("{r:?}").to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_source_connector_syncs_a_platform_the_host_has_never_heard_of() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = build_python_source(&tmp.path().join("pixfold.wasm"));

    let store = Arc::new(Store::open(&tmp.path().join("store"), &MasterKey::generate()).unwrap());
    let options = HostOptions {
        first_party_plugins: false,
        data_dir: Some(tmp.path().to_path_buf()),
        pipeline: PipelineOptions {
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            ..PipelineOptions::default()
        },
        ..HostOptions::default()
    };
    let host = Host::new(store, options).await.unwrap();
    let dev = InstallOptions {
        allow_unsigned: true,
        grants: vec!["all".into()],
        repin: false,
    };
    let report = host.install_plugin(&wasm, &dev, "test").await.unwrap();
    assert_eq!(report.plugin.contract_version(), "0.2.0");
    let info = report.plugin.info();
    assert_eq!(info.id, "pixfold");
    assert!(info.write_back_idempotent);
    match &info.auth {
        AuthScheme::ApiKey(k) => {
            assert_eq!(
                (
                    k.secret_field.as_str(),
                    k.header.as_str(),
                    k.prefix.as_str()
                ),
                ("api_key", "authorization", "Bearer ")
            );
        }
        other => panic!("expected an API key scheme, got {other:?}"),
    }

    let (base, pixfold) = pixfold().await;

    // validate-config runs before anything is stored and names the field.
    let bad = host
        .create_integration(
            IntegrationSpec {
                id: "bad".into(),
                plugin: "pixfold".into(),
                config: BTreeMap::from([("base_url".to_string(), format!("{base}/v1"))]),
                secrets: BTreeMap::from([("api_key".to_string(), Secret::new(KEY.to_string()))]),
                ..IntegrationSpec::default()
            },
            "test",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("base_url") && bad.contains("not an API origin"),
        "{bad}"
    );

    integration(&host, "studio", &base, KEY).await;
    let test = host.test("studio").await;
    assert!(test.ok(), "{:?}", test.steps);
    let connection = &test.steps.last().unwrap().detail;
    assert!(
        connection.contains("connected as ops@harbour.example")
            && connection.contains("photos:write"),
        "{connection}"
    );

    // Seven photos, three a page: offsets 0, 3 and 6. Pixfold throttles the
    // second page once, fails the third once with a 502, and throttles the
    // first verdict: each is retried and the run completes.
    pixfold.fault("list@3", StatusCode::TOO_MANY_REQUESTS, Some("1"));
    pixfold.fault("list@6", StatusCode::BAD_GATEWAY, None);
    pixfold.fault("privacy", StatusCode::TOO_MANY_REQUESTS, Some("1"));
    let run = host.sync("studio", SyncMode::Incremental).await.unwrap();
    assert_eq!(run.discovered, 7, "{run:?}");
    assert_eq!(run.pages, 3);
    assert!(
        run.retries >= 3,
        "two listing retries and a write-back retry: {run:?}"
    );
    let listings = |offset: usize| {
        pixfold
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.uri.starts_with("/v1/photos?"))
            .filter(|s| match offset {
                0 => !s.uri.contains("cursor="),
                _ => s
                    .uri
                    .contains(&format!("cursor={}", encode_cursor(offset, 0, &None))),
            })
            .count()
    };
    assert_eq!(
        (listings(0), listings(3), listings(6)),
        (1, 2, 2),
        "each failed page asked again, the others once"
    );

    // Every photo analysed from the bytes Pixfold served, with the risk its
    // metadata carries.
    let expected = [
        // GPS to the metre, the owner's name, the body serial.
        ("IMG_0001.jpg", "critical"),
        // GPS, owner, serial and a named person in XMP.
        ("IMG_0002.jpg", "critical"),
        // The artist's name and two serial numbers, but no location.
        ("product-shot.jpg", "medium"),
        ("clean.jpg", "none"),
        // Only its comment ("cropped in editor") is found in the default mode.
        ("with-trailer.jpg", "low"),
        // A third of a GPS-tagged phone photo: the metadata is all there.
        ("truncated.jpg", "critical"),
        // Text with a .jpg name: no risk, and an error saying why.
        ("not-an-image.jpg", "none"),
    ];
    let mut risks = BTreeMap::new();
    for f in &run.files {
        let report = f
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{} not analysed: {f:?}", f.file.name));
        risks.insert(f.file.name.clone(), risk_word(report.risk));
    }
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect();
    assert_eq!(risks, want, "risk per photo");

    // Each verdict reached Pixfold once, as the plugin built it from the
    // host's result.
    let verdicts = pixfold.verdicts.lock().unwrap().clone();
    assert_eq!(verdicts.len(), 7, "{verdicts:?}");
    for f in &run.files {
        let report = f.report.as_ref().unwrap();
        let (_, v) = verdicts
            .iter()
            .find(|(id, _)| *id == f.file.id)
            .unwrap_or_else(|| panic!("no verdict for {}", f.file.name));
        assert_eq!(v["risk"], risk_word(report.risk), "{}", f.file.name);
        assert_eq!(v["score"], report.score, "{}", f.file.name);
        assert_eq!(v["summary"], report.summary(), "{}", f.file.name);
        let mut categories: Vec<String> = report
            .findings
            .iter()
            .map(|x| x.category.as_str().to_string())
            .collect();
        categories.sort();
        categories.dedup();
        assert_eq!(v["categories"], json!(categories), "{}", f.file.name);
        // A partial read is written back with its risk and a note.
        match &report.error {
            Some(e) => assert_eq!(
                v["note"],
                json!(
                    format!("partly read: {e}")
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
                "{}",
                f.file.name
            ),
            None => assert!(v.get("note").is_none(), "{}: {v}", f.file.name),
        }
        assert!(f.written_back, "{}", f.file.name);
        let record = host.store().file("studio", &f.file.id).unwrap().unwrap();
        assert_eq!(record.status, FileStatus::Written, "{record:?}");
    }
    let photo = run
        .files
        .iter()
        .find(|f| f.file.name == "IMG_0001.jpg")
        .unwrap();
    let gps = &verdicts
        .iter()
        .find(|(id, _)| *id == photo.file.id)
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        gps["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("gps")),
        "{gps}"
    );

    // The host placed the key in the header the manifest declares, on every
    // request: listing, downloads (read by range) and write-backs.
    let seen = pixfold.seen.lock().unwrap().clone();
    let bearer = format!("Bearer {KEY}");
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some(bearer.as_str()), "{s:?}");
    }
    let downloads: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.uri.ends_with("/original"))
        .collect();
    assert!(downloads.len() >= 7, "{downloads:?}");
    assert!(
        downloads.iter().all(|s| s.range.is_some()),
        "the host reads by range: {downloads:?}"
    );
    // ... and the plugin never had it: nothing it built carries it.
    let cursor = host.store().cursor("studio").unwrap().unwrap();
    assert_eq!(cursor, "since:7", "the sync token of the last page");
    for (_, v) in &verdicts {
        assert!(!v.to_string().contains(KEY), "{v}");
    }
    assert!(
        seen.iter()
            .filter(|s| s.method == "PUT")
            .all(|s| !s.uri.contains(KEY))
    );

    // The next run starts from the sync token: one new photo, one deleted,
    // one with a new revision; nothing else is listed or analysed again.
    let new_id = pixfold.add(
        "site-visit",
        "IMG_0003.jpg",
        std::fs::read(support::workspace().join("samples/site-visit/IMG_0001.jpg")).unwrap(),
    );
    {
        let seq = pixfold.next_seq();
        let mut photos = pixfold.photos.lock().unwrap();
        let shot = photos
            .iter_mut()
            .find(|p| p.filename == "product-shot.jpg")
            .unwrap();
        shot.revision = 2;
        shot.seq = seq;
        let clean = photos
            .iter()
            .position(|p| p.filename == "clean.jpg")
            .unwrap();
        let gone = photos.remove(clean);
        drop(photos);
        let seq = pixfold.next_seq();
        pixfold.deleted.lock().unwrap().push((gone.id, seq));
    }
    let second = host.sync("studio", SyncMode::Incremental).await.unwrap();
    assert_eq!(second.discovered, 2, "{second:?}");
    assert_eq!(second.removed, 1, "{second:?}");
    let mut names: Vec<&str> = second.files.iter().map(|f| f.file.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["IMG_0003.jpg", "product-shot.jpg"]);
    assert!(
        pixfold
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.uri.contains("changed_since=7")),
        "the incremental listing asked for changes since the token"
    );
    let clean = host.store().file("studio", "p_003").unwrap().unwrap();
    assert_eq!(clean.name, "clean.jpg");
    assert_eq!(clean.status, FileStatus::Removed);
    assert_eq!(pixfold.verdicts.lock().unwrap().len(), 9);
    assert_eq!(
        host.store().cursor("studio").unwrap().as_deref(),
        Some("since:10")
    );
    assert!(second.files.iter().any(|f| f.file.id == new_id));

    // The errors as the plugin returns them, call by call.
    let (plugin, ctx) = host.context("studio", true).await.unwrap();
    let mut session = plugin.session(&ctx).await.unwrap();
    pixfold.fault("list@0", StatusCode::TOO_MANY_REQUESTS, Some("7"));
    match session
        .discover(None)
        .await
        .map_err(|e| e.plugin_error().cloned())
    {
        Err(Some(PluginError::RateLimited(r))) => {
            assert_eq!(r.retry_after_ms, Some(7_000));
            assert!(r.message.contains("HTTP 429"), "{}", r.message);
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    pixfold.fault("list@0", StatusCode::SERVICE_UNAVAILABLE, None);
    match session
        .discover(None)
        .await
        .map_err(|e| e.plugin_error().cloned())
    {
        Err(Some(PluginError::Transient(m))) => assert!(m.contains("HTTP 503"), "{m}"),
        other => panic!("expected transient, got {other:?}"),
    }
    let gone = RemoteFile {
        id: "p_999".into(),
        name: "deleted.jpg".into(),
        mime_type: None,
        size: None,
        modified: None,
        version: "1".into(),
        container: None,
        web_url: None,
        path: None,
        properties: vec![],
    };
    let result = FileResult {
        file: gone,
        format: "jpeg".into(),
        risk: WitRisk::High,
        score: 70,
        findings: vec![],
        summary: "GPS".into(),
        error: None,
        analysed_at: "2026-11-30T10:00:00Z".into(),
        policy_version: "test".into(),
    };
    let outcomes = session.write_back(&[result]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(&outcomes[0].outcome, Err(PluginError::NotFound(m)) if m.contains("HTTP 404")),
        "{outcomes:?}"
    );

    // A key without photos:write fails the connection test, naming the field.
    integration(&host, "read-only", &base, READ_ONLY_KEY).await;
    let test = host.test("read-only").await;
    assert!(!test.ok());
    let detail = &test.steps.last().unwrap().detail;
    assert!(
        detail.contains("api_key") && detail.contains("photos:write"),
        "{detail}"
    );

    // A revoked key: the test and the sync fail as an auth error that says
    // what to fix, and what Pixfold echoed of the key reached the plugin
    // scrubbed.
    host.set_secret(
        "studio",
        "api_key",
        Secret::new(WRONG_KEY.to_string()),
        "test",
    )
    .await
    .unwrap();
    let test = host.test("studio").await;
    assert!(!test.ok());
    let detail = &test.steps.last().unwrap().detail;
    assert!(
        detail.contains("HTTP 401")
            && detail.contains("proofpix integration set-secret studio api_key"),
        "{detail}"
    );
    assert!(
        !detail.contains(WRONG_KEY) && detail.contains("[redacted]"),
        "{detail}"
    );
    let failed = host
        .sync("studio", SyncMode::Incremental)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        failed.contains("unauthorized")
            && failed.contains("set-secret studio api_key")
            && !failed.contains(WRONG_KEY),
        "{failed}"
    );
    let record = host.integration("studio").unwrap();
    assert_eq!(record.status, IntegrationStatus::NeedsReauth, "{record:?}");
}
