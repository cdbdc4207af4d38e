//! The Box content emulator answers with the reference's shapes (saas-apis.md §6.2–§6.5):
//! folder items in offset and marker mode with `fields=`, the event stream with positions above
//! 2^53 and at-least-once delivery, the 302 to a second server that honours Range without
//! credentials, metadata instances with 409 then JSON-Patch, templates, Box error bodies, and
//! the faults tests inject.

use proofpix_emulators::Harness;
use proofpix_emulators::box_com::files::{BoxEmulator, BoxFault, BoxFilesConfig, Route};
use proofpix_emulators::box_com::{self, fixtures};
use serde_json::{Value, json};

async fn start(config: BoxFilesConfig) -> BoxEmulator {
    box_com::start_with_files(Default::default(), config, Harness::default())
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token(b: &BoxEmulator) -> String {
    let resp = client()
        .post(b.url(box_com::TOKEN_PATH))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fixtures::CLIENT_ID),
            ("client_secret", fixtures::CLIENT_SECRET),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", fixtures::ENTERPRISE_ID),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(url: &str, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn folder_items_page_by_marker_with_only_the_fields_asked() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let folder = b.files().folder_id("Fieldwork/Uploads").unwrap();
    let mut url = format!(
        "{}/2.0/folders/{folder}/items?usemarker=true&limit=2&fields=name,sha1,extension",
        b.api_url()
    );
    let mut names = Vec::new();
    for _ in 0..10 {
        let (status, _, page) = get(&url, &t).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.get("total_count").is_none(),
            "marker mode has no total"
        );
        for e in page["entries"].as_array().unwrap() {
            assert_eq!(e["type"], "file");
            assert!(e["etag"].is_string() && e["extension"].is_string());
            assert!(e.get("size").is_none(), "size was not asked for");
            names.push(e["name"].as_str().unwrap().to_owned());
        }
        match page["next_marker"].as_str() {
            Some(m) if !m.is_empty() => {
                url = format!(
                    "{}/2.0/folders/{folder}/items?usemarker=true&limit=2&fields=name,sha1,extension&marker={m}",
                    b.api_url()
                );
            }
            _ => break,
        }
    }
    assert_eq!(
        names,
        ["SCAN-0001.JPG", "brief.docx", "export.csv", "report.pdf"]
    );
}

#[tokio::test]
async fn offset_paging_counts_and_stops_at_the_documented_ceiling() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let folder = b.files().folder_id("Fieldwork").unwrap();
    let (status, _, page) = get(
        &format!(
            "{}/2.0/folders/{folder}/items?offset=0&limit=2",
            b.api_url()
        ),
        &t,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["total_count"], 4,
        "Empty, Inspections, Marketing, Uploads"
    );
    assert_eq!(page["entries"][0]["type"], "folder");
    let (status, _, err) = get(
        &format!("{}/2.0/folders/{folder}/items?offset=10000", b.api_url()),
        &t,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["type"], "error");
}

#[tokio::test]
async fn an_expired_marker_and_an_unseen_folder_get_box_error_bodies() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let folder = b.files().folder_id("Fieldwork/Inspections/2026").unwrap();
    let (_, _, page) = get(
        &format!(
            "{}/2.0/folders/{folder}/items?usemarker=true&limit=2",
            b.api_url()
        ),
        &t,
    )
    .await;
    let marker = page["next_marker"].as_str().unwrap().to_owned();
    b.files().expire_markers();
    let (status, _, err) = get(
        &format!(
            "{}/2.0/folders/{folder}/items?usemarker=true&limit=2&marker={marker}",
            b.api_url()
        ),
        &t,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], "invalid_parameter");
    b.files().hide_folder(&folder);
    let (status, _, err) = get(&format!("{}/2.0/folders/{folder}", b.api_url()), &t).await;
    assert_eq!(status, 404);
    assert_eq!(err["code"], "not_found");
    assert!(err["request_id"].is_string());
    assert!(
        err["context_info"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[tokio::test]
async fn the_event_stream_starts_at_now_and_delivers_changes_at_least_once() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let (status, _, now) = get(
        &format!("{}/2.0/events?stream_position=now", b.api_url()),
        &t,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(now["entries"], json!([]));
    let pos = now["next_stream_position"].as_u64().unwrap();
    assert!(pos > 1 << 53, "positions do not fit a float: {pos}");

    let target = b.files().file("Fieldwork/Marketing/banner-0.jpg").unwrap();
    assert!(b.files().replace_content(&target.id, b"new bytes".to_vec()));
    let url = |p: u64| {
        format!(
            "{}/2.0/events?stream_type=changes&stream_position={p}&limit=500",
            b.api_url()
        )
    };
    let (_, _, page) = get(&url(pos), &t).await;
    assert_eq!(page["chunk_size"], 1);
    let event = &page["entries"][0];
    assert_eq!(event["event_type"], "ITEM_UPLOAD");
    assert_eq!(event["source"]["id"], target.id.as_str());
    assert_ne!(
        event["source"]["sha1"],
        target.sha1.as_str(),
        "new bytes, new sha1"
    );
    let next = page["next_stream_position"].as_u64().unwrap();
    // The first read from `next` repeats the event at that position; the second is empty.
    let (_, _, again) = get(&url(next), &t).await;
    assert_eq!(again["entries"][0]["event_id"], event["event_id"]);
    let (_, _, empty) = get(&url(next), &t).await;
    assert_eq!(empty["entries"], json!([]));

    b.files().expire_stream_positions();
    let (status, _, err) = get(&url(next), &t).await;
    assert_eq!(status, 400);
    assert_eq!(err["type"], "error");
}

#[tokio::test]
async fn content_redirects_to_a_download_host_that_needs_no_token_and_honours_range() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let f = b
        .files()
        .file("Fieldwork/Inspections/2026/IMG_1001.jpg")
        .unwrap();
    let resp = client()
        .get(format!("{}/2.0/files/{}/content", b.api_url(), f.id))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/d/1/", b.download_url())),
        "{location}"
    );
    let part = client()
        .get(&location)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-9/{}", f.size)
    );
    assert_eq!(part.bytes().await.unwrap().len(), 10);
    b.clock().advance(time::Duration::minutes(16));
    let expired = client().get(&location).send().await.unwrap();
    assert_eq!(
        expired.status().as_u16(),
        403,
        "download URLs last 15 minutes"
    );
}

#[tokio::test]
async fn a_metadata_instance_is_created_once_then_patched() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    let f = b.files().file("Fieldwork/Marketing/product.jpg").unwrap();
    let url = format!(
        "{}/2.0/files/{}/metadata/enterprise/proofpixPrivacy",
        b.api_url(),
        f.id
    );
    let values = json!({"risk": "Low", "score": 10.0, "findings": "camera make", "analysedAt": "2026-11-26T10:00:00Z"});
    let created = client()
        .post(&url)
        .bearer_auth(&t)
        .json(&values)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["$parent"], format!("file_{}", f.id));
    assert_eq!(
        body["$scope"],
        format!("enterprise_{}", fixtures::ENTERPRISE_ID)
    );
    let again = client()
        .post(&url)
        .bearer_auth(&t)
        .json(&values)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let err: Value = again.json().await.unwrap();
    assert_eq!(err["code"], "tuple_already_exists");
    let wrong_type = client()
        .put(&url)
        .bearer_auth(&t)
        .json(&json!([{"op": "add", "path": "/risk", "value": "High"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_type.status().as_u16(),
        400,
        "JSON-Patch needs its content type"
    );
    let patched = client()
        .put(&url)
        .bearer_auth(&t)
        .header("content-type", "application/json-patch+json")
        .body(json!([{"op": "add", "path": "/risk", "value": "High"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    assert_eq!(
        b.files().metadata(&f.id, "proofpixPrivacy").unwrap()["risk"],
        "High"
    );
    let bad = client()
        .post(format!(
            "{}/2.0/files/{}/metadata/enterprise/proofpixPrivacy",
            b.api_url(),
            b.files()
                .file("Fieldwork/Marketing/banner-0.jpg")
                .unwrap()
                .id
        ))
        .bearer_auth(&t)
        .json(&json!({"risk": "Severe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let err: Value = bad.json().await.unwrap();
    assert_eq!(err["code"], "schema_validation_failed");
    assert_eq!(b.files().metadata_writes().len(), 2);
    b.files().remove_template("proofpixPrivacy");
    let (status, _, err) = get(
        &format!(
            "{}/2.0/metadata_templates/enterprise/proofpixPrivacy/schema",
            b.api_url()
        ),
        &t,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(err["code"], "not_found");
}

#[tokio::test]
async fn injected_faults_use_box_bodies_and_an_expired_token_gets_an_empty_401() {
    let b = start(BoxFilesConfig::default()).await;
    let t = token(&b).await;
    b.files().inject(
        Route::Items,
        BoxFault::Throttle {
            retry_after_secs: 2,
        },
        1,
    );
    let url = format!("{}/2.0/folders/0/items", b.api_url());
    let (status, headers, body) = get(&url, &t).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["code"], "rate_limit_exceeded");
    assert_eq!(
        body["message"],
        "Request rate limit exceeded, please try again later"
    );
    assert_eq!(get(&url, &t).await.0, 200);
    b.clock().advance(time::Duration::hours(2));
    let resp = client().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(resp.bytes().await.unwrap().is_empty());
    let follow = b.files().retry_follow_ups();
    assert_eq!(follow.len(), 1);
    assert!(follow[0].next.is_some());
}
