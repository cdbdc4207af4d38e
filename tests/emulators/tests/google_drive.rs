//! The Drive emulator answers with the reference's shapes (saas-apis.md §5.2–§5.5): `files.list`
//! with `q`, `fields` and page tokens, the change feed, `alt=media` with Range, `appProperties`
//! updates within Drive's limits, Google's error bodies, and the faults tests inject.

use proofpix_emulators::google::drive::{
    self, Chaos, DriveConfig, DriveEmulator, DriveFault, Route, seed,
};
use proofpix_emulators::google::{self, fixtures};
use proofpix_emulators::{Clock, Harness, keys};
use serde_json::{Value, json};

async fn start(config: DriveConfig) -> DriveEmulator {
    google::start_with_drive(
        Default::default(),
        config,
        Harness::with_clock(Clock::new()),
    )
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_for(g: &DriveEmulator, scope: &str) -> String {
    let now = g.clock().unix_seconds();
    let claims = json!({"iss": fixtures::SERVICE_ACCOUNT, "scope": scope,
        "aud": google::PRODUCTION_AUDIENCE, "iat": now, "exp": now + 3600});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(keys::PRIVATE_KEY_A_PEM.as_bytes()).unwrap();
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap();
    let resp = client()
        .post(g.token_url())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn token(g: &DriveEmulator) -> String {
    token_for(g, drive::DRIVE_SCOPE).await
}

async fn get(url: &str, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

const IMAGES: &str = "mimeType%20contains%20%27image%2F%27%20and%20trashed%20%3D%20false";

#[tokio::test]
async fn files_list_pages_images_with_next_page_tokens_and_only_the_fields_asked() {
    let g = start(DriveConfig::default()).await;
    let t = token(&g).await;
    let base = format!(
        "{}/drive/v3/files?q={IMAGES}&pageSize=5&corpora=allDrives&includeItemsFromAllDrives=true&supportsAllDrives=true&fields=nextPageToken,files(id,name,size,md5Checksum,imageMediaMetadata(width))",
        g.api_url()
    );
    let mut ids = Vec::new();
    let mut url = base.clone();
    let mut pages = 0;
    loop {
        let (status, _, body) = get(&url, &t).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for f in body["files"].as_array().unwrap() {
            assert!(f["size"].is_string(), "int64 as a string: {f}");
            assert_eq!(f["md5Checksum"].as_str().unwrap().len(), 32);
            assert!(f.get("mimeType").is_none(), "not asked for: {f}");
            assert!(f["imageMediaMetadata"].get("height").is_none());
            ids.push(f["id"].as_str().unwrap().to_owned());
        }
        assert!(body.get("kind").is_none(), "top level filtered too");
        match body["nextPageToken"].as_str() {
            Some(next) => url = format!("{base}&pageToken={next}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 12, "12 images outside the trash");
    assert_eq!(pages, 3);

    // Without `fields`: the minimal default; without naming nextPageToken: none comes.
    let (_, _, body) = get(&format!("{}/drive/v3/files?pageSize=2", g.api_url()), &t).await;
    assert_eq!(body["kind"], "drive#fileList");
    let keys: Vec<&String> = body["files"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "kind", "mimeType", "name"]);
    let (_, _, body) = get(
        &format!("{}/drive/v3/files?pageSize=2&fields=files(id)", g.api_url()),
        &t,
    )
    .await;
    assert!(body.get("nextPageToken").is_none());

    // My Drive only unless shared drives are included; one shared drive by id.
    let (_, _, mine) = get(
        &format!("{}/drive/v3/files?q={IMAGES}&fields=files(id)", g.api_url()),
        &t,
    )
    .await;
    assert_eq!(mine["files"].as_array().unwrap().len(), 9);
    let team = g.drive().shared_drive_id(seed::FIELD_TEAM_DRIVE).unwrap();
    let (status, _, one) = get(
        &format!(
            "{}/drive/v3/files?q={IMAGES}&corpora=drive&driveId={team}&includeItemsFromAllDrives=true&supportsAllDrives=true&fields=files(id,driveId)",
            g.api_url()
        ),
        &t,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["files"].as_array().unwrap().len(), 3);
    assert!(
        one["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["driveId"] == team.as_str())
    );
}

#[tokio::test]
async fn the_change_feed_reports_edits_trash_and_deletion_then_a_new_start_token() {
    let g = start(DriveConfig::default()).await;
    let t = token(&g).await;
    let api = g.api_url();
    let (_, _, start) = get(&format!("{api}/drive/v3/changes/startPageToken"), &t).await;
    assert_eq!(start["kind"], "drive#startPageToken");
    let start = start["startPageToken"].as_str().unwrap().to_owned();

    let photo = g.drive().file_named("IMG_2001.jpg").unwrap();
    let banner = g.drive().file_named("banner-0.jpg").unwrap();
    let product = g.drive().file_named("product.jpg").unwrap();
    assert!(
        g.drive()
            .replace_content(&photo.id, vec![0xFF, 0xD8, 0xFF, 0xD9])
    );
    assert!(g.drive().trash(&banner.id));
    assert!(g.drive().delete(&product.id));
    // A second edit of the same file collapses into one change.
    assert!(
        g.drive()
            .replace_content(&photo.id, vec![0xFF, 0xD8, 1, 0xFF, 0xD9])
    );

    let fields =
        "nextPageToken,newStartPageToken,changes(fileId,removed,file(id,trashed,md5Checksum))";
    let (status, _, page) = get(
        &format!("{api}/drive/v3/changes?pageToken={start}&pageSize=2&fields={fields}"),
        &t,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["fileId"], banner.id.as_str());
    assert_eq!(changes[0]["file"]["trashed"], true);
    assert_eq!(changes[1]["fileId"], product.id.as_str());
    assert_eq!(changes[1]["removed"], true);
    assert!(changes[1].get("file").is_none());
    let next = page["nextPageToken"].as_str().unwrap();
    assert!(page.get("newStartPageToken").is_none());
    let (_, _, last) = get(
        &format!("{api}/drive/v3/changes?pageToken={next}&pageSize=2&fields={fields}"),
        &t,
    )
    .await;
    let changes = last["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["fileId"], photo.id.as_str());
    let new_start = last["newStartPageToken"].as_str().unwrap();
    let (_, _, empty) = get(
        &format!("{api}/drive/v3/changes?pageToken={new_start}&fields={fields}"),
        &t,
    )
    .await;
    assert_eq!(empty["changes"], json!([]));
    assert_eq!(empty["newStartPageToken"], new_start);

    // Expired tokens answer 400 `invalid` on pageToken, for changes and listings alike.
    g.drive().expire_page_tokens();
    let (status, _, err) = get(&format!("{api}/drive/v3/changes?pageToken={new_start}"), &t).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["errors"][0]["reason"], "invalid");
    assert_eq!(err["error"]["errors"][0]["location"], "pageToken");
}

#[tokio::test]
async fn media_honours_range_and_shared_drive_files_need_supports_all_drives() {
    let g = start(DriveConfig::default()).await;
    let t = token(&g).await;
    let crane = g.drive().file_named("crane-0.jpg").unwrap();
    let url = format!("{}/drive/v3/files/{}?alt=media", g.api_url(), crane.id);
    let (status, _, err) = get(&url, &t).await;
    assert_eq!(status, 404, "shared-drive file without supportsAllDrives");
    assert_eq!(err["error"]["errors"][0]["reason"], "notFound");
    assert_eq!(
        err["error"]["message"],
        format!("File not found: {}.", crane.id).as_str()
    );
    let resp = client()
        .get(format!("{url}&supportsAllDrives=true"))
        .bearer_auth(&t)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 0-9/{}", crane.size).as_str()
    );
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap().len(), 10);
    let resp = client()
        .get(format!("{url}&supportsAllDrives=true"))
        .bearer_auth(&t)
        .header("range", format!("bytes={}-", crane.size + 5))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);

    let doc = g.drive().file_named("Visit notes").unwrap();
    let (status, _, err) = get(
        &format!("{}/drive/v3/files/{}?alt=media", g.api_url(), doc.id),
        &t,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(err["error"]["errors"][0]["reason"], "fileNotDownloadable");
    let (status, _, _) = get(&url, "ya29.not-a-token").await;
    assert_eq!(status, 401);
}

async fn patch(g: &DriveEmulator, t: &str, id: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .patch(format!(
            "{}/drive/v3/files/{id}?fields=id,appProperties&supportsAllDrives=true",
            g.api_url()
        ))
        .bearer_auth(t)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn app_properties_merge_delete_and_respect_the_124_byte_and_30_property_limits() {
    let g = start(DriveConfig::default()).await;
    let t = token(&g).await;
    let f = g.drive().file_named("IMG_2002.jpg").unwrap();
    let (status, body) = patch(
        &g,
        &t,
        &f.id,
        json!({"appProperties": {"a": "1", "b": "2"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["appProperties"], json!({"a": "1", "b": "2"}));
    let (_, body) = patch(
        &g,
        &t,
        &f.id,
        json!({"appProperties": {"a": null, "c": "3"}}),
    )
    .await;
    assert_eq!(body["appProperties"], json!({"b": "2", "c": "3"}));

    // Key + value: 124 bytes of UTF-8 fit, 125 do not ("é" is two bytes).
    let fits = format!("{}{}", "é".repeat(60), "xx");
    let (status, _) = patch(&g, &t, &f.id, json!({"appProperties": {"kk": fits}})).await;
    assert_eq!(status, 200);
    let over = format!("{}{}", "é".repeat(60), "xxx");
    let (status, err) = patch(&g, &t, &f.id, json!({"appProperties": {"kk": over}})).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("124 bytes"),
        "{err}"
    );
    let many: serde_json::Map<String, Value> =
        (0..28).map(|i| (format!("p{i}"), json!("v"))).collect();
    let (status, _) = patch(&g, &t, &f.id, json!({ "appProperties": many })).await;
    assert_eq!(status, 400, "3 + 28 > 30");
    assert_eq!(g.drive().property_writes().len(), 3);

    // Read-only scope, a file the account may not edit, a missing file.
    let ro = token_for(&g, "https://www.googleapis.com/auth/drive.readonly").await;
    let (status, err) = patch(&g, &ro, &f.id, json!({"appProperties": {"a": "1"}})).await;
    assert_eq!(status, 403);
    assert_eq!(
        err["error"]["errors"][0]["reason"],
        "insufficientPermissions"
    );
    g.drive().set_can_edit(&f.id, false);
    let (status, err) = patch(&g, &t, &f.id, json!({"appProperties": {"a": "1"}})).await;
    assert_eq!(status, 403);
    assert_eq!(
        err["error"]["errors"][0]["reason"],
        "insufficientFilePermissions"
    );
    let (status, err) = patch(&g, &t, "1nope", json!({"appProperties": {"a": "1"}})).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["message"], "File not found: 1nope.");

    // The update shows in the change feed with an unchanged checksum.
    let edited = g.drive().file_named("IMG_2003.jpg").unwrap();
    let (_, _, start) = get(
        &format!("{}/drive/v3/changes/startPageToken", g.api_url()),
        &t,
    )
    .await;
    let start = start["startPageToken"].as_str().unwrap().to_owned();
    patch(
        &g,
        &t,
        &edited.id,
        json!({"appProperties": {"proofpixRisk": "High"}}),
    )
    .await;
    let (_, _, page) = get(
        &format!(
            "{}/drive/v3/changes?pageToken={start}&fields=changes(file(id,md5Checksum,appProperties))",
            g.api_url()
        ),
        &t,
    )
    .await;
    assert_eq!(
        page["changes"][0]["file"]["md5Checksum"],
        edited.md5.as_str()
    );
    assert_eq!(
        page["changes"][0]["file"]["appProperties"]["proofpixRisk"],
        "High"
    );
}

#[tokio::test]
async fn faults_answer_with_googles_bodies_and_are_recorded_with_retry_after() {
    let g = start(DriveConfig::default()).await;
    let t = token(&g).await;
    let d = g.drive();
    let url = format!("{}/drive/v3/files?fields=files(id)", g.api_url());
    d.inject(
        Route::List,
        DriveFault::Throttle {
            status: 403,
            retry_after_secs: Some(2),
        },
        1,
    );
    d.inject(
        Route::List,
        DriveFault::Throttle {
            status: 429,
            retry_after_secs: None,
        },
        1,
    );
    d.inject(Route::List, DriveFault::ServerError(502), 1);
    d.inject(Route::List, DriveFault::Malformed, 1);
    d.inject(Route::List, DriveFault::ExpiredToken, 1);
    let (status, headers, body) = get(&url, &t).await;
    assert_eq!(status, 403);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(
        body["error"]["errors"][0]["reason"],
        "userRateLimitExceeded"
    );
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    let (status, headers, body) = get(&url, &t).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    let (status, _, body) = get(&url, &t).await;
    assert_eq!((status, body), (502, Value::Null), "an HTML page");
    let (status, _, body) = get(&url, &t).await;
    assert_eq!((status, body), (200, Value::Null), "not JSON");
    let (status, _, body) = get(&url, &t).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    let (status, _, _) = get(&url, &t).await;
    assert_eq!(status, 200);

    let follow = d.retry_follow_ups();
    assert_eq!(follow.len(), 1, "only the 403 sent a Retry-After");
    assert!(!follow[0].respected(), "came back at once");
    assert_eq!(
        d.exchanges()
            .iter()
            .filter(|e| e.route == Route::List)
            .count(),
        6
    );

    // Chaos faults each request key at most once, so retrying always gets through.
    d.chaos(Some(Chaos::throttling_and_errors(100, 0, 7)));
    let (first, _, _) = get(&url, &t).await;
    let (second, _, _) = get(&url, &t).await;
    assert_ne!(first, 200);
    assert_eq!(second, 200);
}

#[tokio::test]
async fn an_expired_token_and_a_moved_clock_answer_401() {
    let g = start(DriveConfig {
        corpus: seed::photos(3, 16, 16),
        ..DriveConfig::default()
    })
    .await;
    let t = token(&g).await;
    let url = format!("{}/drive/v3/about?fields=user", g.api_url());
    let (status, _, body) = get(&url, &t).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["emailAddress"], fixtures::SERVICE_ACCOUNT);
    g.drive()
        .advance_clock_at(g.drive().exchange_count() + 1, time::Duration::hours(2));
    let (status, _, _) = get(&url, &t).await;
    assert_eq!(status, 401);
    assert_eq!(g.drive().files().len(), 3);
}
