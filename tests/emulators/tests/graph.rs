//! The Graph emulator answers with the reference's shapes (saas-apis.md §2.2–§2.5): sites by
//! path, libraries, children and delta paging with absolute links back at itself, the 302 to a
//! second server that honours Range without credentials, column updates, `$batch`, Graph error
//! bodies, and the faults tests inject.

use proofpix_emulators::Harness;
use proofpix_emulators::microsoft::graph::{
    self, Chaos, GraphConfig, GraphEmulator, GraphFault, Route, seed,
};
use proofpix_emulators::microsoft::{self, fixtures};
use serde_json::{Value, json};

async fn start(config: GraphConfig) -> GraphEmulator {
    microsoft::start_with_graph(Default::default(), config, Harness::default())
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token(ms: &GraphEmulator) -> String {
    let resp = client()
        .post(ms.url(&microsoft::token_path(fixtures::TENANT_ID)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fixtures::CLIENT_ID),
            ("client_secret", fixtures::CLIENT_SECRET),
            ("scope", fixtures::GRAPH_DEFAULT_SCOPE),
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
async fn a_site_resolves_by_path_and_lists_its_libraries_and_columns() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let base = ms.graph_url();
    let (status, _, site) = get(
        &format!("{base}/v1.0/sites/proofpix.sharepoint.com:/sites/fieldwork"),
        &t,
    )
    .await;
    assert_eq!(status, 200);
    let id = site["id"].as_str().unwrap();
    assert_eq!(id.split(',').count(), 3, "{id}");
    assert_eq!(site["displayName"], "Fieldwork");
    let (_, _, drives) = get(&format!("{base}/v1.0/sites/{id}/drives"), &t).await;
    let names: Vec<&str> = drives["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Documents", "Site Photos"]);
    assert!(drives["value"][0]["id"].as_str().unwrap().starts_with("b!"));
    let drive = drives["value"][0]["id"].as_str().unwrap();
    let (_, _, list) = get(&format!("{base}/v1.0/drives/{drive}/list"), &t).await;
    let list_id = list["id"].as_str().unwrap();
    let (_, _, cols) = get(
        &format!("{base}/v1.0/sites/{id}/lists/{list_id}/columns"),
        &t,
    )
    .await;
    let cols: Vec<&str> = cols["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        cols.contains(&"ProofPixRisk") && cols.contains(&"Title"),
        "{cols:?}"
    );

    let (status, _, missing) = get(
        &format!("{base}/v1.0/sites/proofpix.sharepoint.com:/sites/nope"),
        &t,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "itemNotFound");
    assert!(missing["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn delta_pages_with_next_links_then_hands_out_a_delta_link_that_reports_changes() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let drive = g.drive_id(seed::FIELDWORK_SITE, seed::DOCUMENTS).unwrap();
    let mut url = format!(
        "{}/v1.0/drives/{drive}/root/delta?$top=4&$select=id,name,file,sharepointIds,cTag,deleted",
        ms.graph_url()
    );
    let mut seen = Vec::new();
    let delta_link = loop {
        let (status, _, page) = get(&url, &t).await;
        assert_eq!(status, 200, "{page}");
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 4);
        for i in items {
            assert!(i.get("cTag").is_none(), "ODfB leaves cTag out of delta");
            seen.push(i["name"].as_str().unwrap_or_default().to_owned());
        }
        if let Some(next) = page["@odata.nextLink"].as_str() {
            assert!(next.starts_with(&ms.graph_url()), "{next}");
            assert!(next.contains("delta(token='"), "{next}");
            url = next.to_owned();
        } else {
            break page["@odata.deltaLink"].as_str().unwrap().to_owned();
        }
    };
    let files = g
        .files()
        .into_iter()
        .filter(|f| f.drive_id == drive)
        .count();
    assert!(
        seen.len() > files,
        "folders and root are listed too: {seen:?}"
    );

    // Nothing changed: the delta link returns nothing.
    let (_, _, empty) = get(&delta_link, &t).await;
    assert_eq!(empty["value"].as_array().unwrap().len(), 0);

    // One file changes: it shows up (with its parents), with a new hash.
    let file = g
        .file(
            seed::FIELDWORK_SITE,
            seed::DOCUMENTS,
            "Marketing/banner-0.jpg",
        )
        .unwrap();
    assert!(g.replace_content(&drive, &file.item_id, b"new bytes".to_vec()));
    let (_, _, changes) = get(&delta_link, &t).await;
    let names: Vec<&str> = changes["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"banner-0.jpg") && names.contains(&"Marketing"),
        "{names:?}"
    );
    let changed = changes["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "banner-0.jpg")
        .unwrap();
    assert!(changed["sharepointIds"]["listItemId"].is_string());
}

#[tokio::test]
async fn an_invalidated_delta_page_answers_410_with_a_location_that_restarts() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let drive = g.drive_id(seed::FIELDWORK_SITE, seed::DOCUMENTS).unwrap();
    let first = format!("{}/v1.0/drives/{drive}/root/delta?$top=3", ms.graph_url());
    let (_, _, page) = get(&first, &t).await;
    let next = page["@odata.nextLink"].as_str().unwrap().to_owned();
    g.invalidate_next_delta_page();
    let (status, headers, body) = get(&next, &t).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "resyncRequired");
    assert_eq!(
        body["error"]["innerError"]["code"],
        "resyncChangesApplyDifferences"
    );
    let location = headers["location"].to_str().unwrap().to_owned();
    let (status, _, restart) = get(&location, &t).await;
    assert_eq!(status, 200);
    assert_eq!(
        restart["value"][0]["root"],
        json!({}),
        "starts from the top"
    );

    // A delta link from before `expire_delta_tokens` is gone too.
    g.expire_delta_tokens();
    let (status, _, _) = get(&next, &t).await;
    assert_eq!(status, 410);
}

#[tokio::test]
async fn content_redirects_to_a_download_host_that_needs_no_token_and_honours_range() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let file = g
        .file(
            seed::FIELDWORK_SITE,
            seed::DOCUMENTS,
            "Inspections/2026/IMG_1001.jpg",
        )
        .unwrap();
    let url = format!(
        "{}/v1.0/drives/{}/items/{}/content",
        ms.graph_url(),
        file.drive_id,
        file.item_id
    );
    let resp = client().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&ms.download_url()), "{location}");
    assert!(location.contains("/_layouts/15/download.aspx?UniqueId="));

    let resp = client()
        .get(&location)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(
        resp.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-99/{}", file.size)
    );
    let body = resp.bytes().await.unwrap();
    let content = g.content(&file.drive_id, &file.item_id).unwrap();
    assert_eq!(&body[..], &content[..100]);

    // The URL stops working after its TTL on the emulated clock.
    ms.clock().advance(time::Duration::hours(2));
    let resp = client().get(&location).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let downloads: Vec<_> = g
        .exchanges()
        .into_iter()
        .filter(|e| e.server == graph::Server::Download)
        .collect();
    assert_eq!(downloads.len(), 2);
    assert!(downloads.iter().all(|e| e.authorization.is_none()));
}

#[tokio::test]
async fn a_batch_of_column_updates_is_answered_by_id_in_any_order_with_per_item_throttling() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let site = g.site_id(seed::FIELDWORK_SITE).unwrap();
    let drive = g.drive_id(seed::FIELDWORK_SITE, seed::DOCUMENTS).unwrap();
    let list = g.list_id(&drive).unwrap();
    // List item ids of the seeded files.
    let (_, _, page) = get(
        &format!(
            "{}/v1.0/drives/{drive}/root/delta?$select=id,file,sharepointIds",
            ms.graph_url()
        ),
        &t,
    )
    .await;
    let items: Vec<String> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("file").is_some())
        .map(|i| {
            i["sharepointIds"]["listItemId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .take(3)
        .collect();
    g.inject(
        Route::BatchItem,
        GraphFault::Throttle {
            status: 429,
            retry_after_secs: 1,
        },
        1,
    );
    let requests: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, li)| {
            json!({"id": (i + 1).to_string(), "method": "PATCH",
                   "url": format!("/sites/{site}/lists/{list}/items/{li}/fields"),
                   "headers": {"Content-Type": "application/json"},
                   "body": {"ProofPixRisk": "High", "ProofPixScore": 90}})
        })
        .collect();
    let resp = client()
        .post(format!("{}/v1.0/$batch", ms.graph_url()))
        .bearer_auth(&t)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses[0]["id"], "3", "answered in reverse order");
    let first = responses.iter().find(|r| r["id"] == "1").unwrap();
    assert_eq!(first["status"], 429);
    assert_eq!(first["headers"]["Retry-After"], "1");
    assert_eq!(
        first["body"]["error"]["innerError"]["code"],
        "throttledRequest"
    );
    assert!(responses.iter().filter(|r| r["status"] == 200).count() == 2);
    assert_eq!(g.column_writes().len(), 2);
    assert!(g.column_writes().iter().all(|w| w.via_batch));

    // More than 20 sub-requests is refused as a whole.
    let too_many: Vec<Value> = (1..=21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/sites/{site}")}))
        .collect();
    let resp = client()
        .post(format!("{}/v1.0/$batch", ms.graph_url()))
        .bearer_auth(&t)
        .json(&json!({ "requests": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn an_unknown_column_or_a_read_only_permission_is_refused_with_graph_errors() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let file = g
        .file(seed::FIELDWORK_SITE, seed::SITE_PHOTOS, "crane-0.jpg")
        .unwrap();
    let url = format!(
        "{}/v1.0/drives/{}/items/{}/listItem/fields",
        ms.graph_url(),
        file.drive_id,
        file.item_id
    );
    let patch = |body: Value| {
        let url = url.clone();
        let t = t.clone();
        async move {
            let resp = client()
                .patch(&url)
                .bearer_auth(&t)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = patch(json!({"NoSuchColumn": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Field 'NoSuchColumn' is not recognized"
    );
    let (status, body) = patch(json!({"ProofPixRisk": "High"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["ProofPixRisk"], "High");

    g.set_permission(graph::AppPermission::ReadAll);
    let (status, body) = patch(json!({"ProofPixRisk": "Low"})).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "accessDenied");
}

#[tokio::test]
async fn throttling_says_retry_after_and_the_record_pairs_it_with_the_retry() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    g.inject(
        Route::Sites,
        GraphFault::Throttle {
            status: 503,
            retry_after_secs: 0,
        },
        1,
    );
    let url = format!("{}/v1.0/sites/proofpix.sharepoint.com", ms.graph_url());
    let (status, headers, body) = get(&url, &t).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "0");
    assert_eq!(body["error"]["code"], "serviceNotAvailable");
    let (status, _, _) = get(&url, &t).await;
    assert_eq!(status, 200);
    let follow = g.retry_follow_ups();
    assert_eq!(follow.len(), 1);
    assert!(follow[0].respected() && follow[0].next.is_some());

    // Malformed and truncated bodies on demand.
    g.inject(Route::Sites, GraphFault::Truncated, 1);
    let text = client()
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    // A token the emulated clock expired gets Graph's 401.
    g.advance_clock_at(g.exchange_count() + 1, time::Duration::hours(2));
    let (status, headers, body) = get(&url, &t).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test]
async fn chaos_faults_a_share_of_requests_but_never_the_same_one_twice() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    g.chaos(Some(Chaos::throttling_and_errors(50, 0, 7)));
    let site = format!("{}/v1.0/sites/proofpix.sharepoint.com", ms.graph_url());
    let mut failures = 0;
    for _ in 0..40 {
        let (status, _, _) = get(&site, &t).await;
        if status != 200 {
            failures += 1;
            let (again, _, _) = get(&site, &t).await;
            assert_eq!(again, 200, "the retry of a faulted request passes");
        }
    }
    assert_eq!(failures, 1, "one key, faulted at most once");
}

#[tokio::test]
async fn a_content_upload_replaces_the_bytes_with_new_tags_and_shows_up_in_delta() {
    let ms = start(GraphConfig::default()).await;
    let t = token(&ms).await;
    let g = ms.graph();
    let file = g
        .file(seed::FIELDWORK_SITE, seed::SITE_PHOTOS, "crane-0.jpg")
        .unwrap();
    let base = ms.graph_url();
    let item_url = format!(
        "{base}/v1.0/drives/{}/items/{}",
        file.drive_id, file.item_id
    );
    let (_, _, before) = get(&item_url, &t).await;
    // A delta link from before the upload.
    let mut url = format!("{base}/v1.0/drives/{}/root/delta", file.drive_id);
    let delta_link = loop {
        let (_, _, page) = get(&url, &t).await;
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break page["@odata.deltaLink"].as_str().unwrap().to_owned(),
        }
    };

    let put = |body: &'static [u8], if_match: Option<String>| {
        let url = format!("{item_url}/content");
        let t = t.clone();
        async move {
            let mut req = client()
                .put(&url)
                .bearer_auth(&t)
                .header("content-type", "image/jpeg")
                .body(body);
            if let Some(tag) = if_match {
                req = req.header("if-match", tag);
            }
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, item) = put(b"sanitised bytes", None).await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["id"], before["id"]);
    assert_eq!(item["size"], 15);
    assert_ne!(item["eTag"], before["eTag"]);
    assert_ne!(item["cTag"], before["cTag"]);
    assert_ne!(
        item["file"]["hashes"]["quickXorHash"],
        before["file"]["hashes"]["quickXorHash"]
    );
    assert_eq!(
        &g.content(&file.drive_id, &file.item_id).unwrap()[..],
        b"sanitised bytes"
    );
    let uploads = g.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].item_id, file.item_id);
    assert_eq!(uploads[0].bytes, 15);
    assert_eq!(uploads[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(uploads[0].etag_before, before["eTag"].as_str().unwrap());
    assert_eq!(uploads[0].etag_after, item["eTag"].as_str().unwrap());

    // The next delta lists it, and a download gets the new bytes.
    let (_, _, changes) = get(&delta_link, &t).await;
    assert!(
        changes["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == item["id"]),
        "{changes}"
    );
    let location = client()
        .get(format!("{item_url}/content"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = client()
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"sanitised bytes");

    // A stale If-Match is refused; the current cTag is accepted.
    let stale = before["eTag"].as_str().map(str::to_owned);
    let (status, body) = put(b"again", stale).await;
    assert_eq!(status, 412);
    assert_eq!(body["error"]["code"], "resourceModified");
    let current = item["cTag"].as_str().map(str::to_owned);
    let (status, _) = put(b"again", current).await;
    assert_eq!(status, 200);

    // Faults are injected on uploads alone, and read-only access is refused.
    g.inject(
        Route::Upload,
        GraphFault::Throttle {
            status: 429,
            retry_after_secs: 1,
        },
        1,
    );
    let (_, _, still) = get(&item_url, &t).await;
    assert_eq!(still["id"], item["id"], "a GET is not an upload");
    let (status, body) = put(b"third", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "activityLimitReached");
    g.set_permission(graph::AppPermission::ReadAll);
    let (status, body) = put(b"third", None).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "accessDenied");
    assert_eq!(
        g.uploads().len(),
        2,
        "only the applied uploads are recorded"
    );
    assert_eq!(
        &g.content(&file.drive_id, &file.item_id).unwrap()[..],
        b"again"
    );
    let upload_exchanges: Vec<_> = g
        .exchanges()
        .into_iter()
        .filter(|e| e.route == Route::Upload)
        .map(|e| e.status)
        .collect();
    assert_eq!(upload_exchanges, [200, 412, 200, 429, 403]);
}
