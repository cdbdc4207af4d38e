//! The Dropbox file routes of the emulator (reference §7.2–§7.5): listing with cursors and
//! `reset`, metadata, downloads on the content host with `Dropbox-API-Arg` and Range, property
//! templates and properties with their per-path errors, and the error bodies and faults.

use proofpix_emulators::Harness;
use proofpix_emulators::dropbox::files::{
    DbxFault, DropboxEmulator, Expected, FileSpec, FilesConfig, Route, content_hash,
};
use proofpix_emulators::dropbox::{self, seed};
use serde_json::{Value, json};

async fn start() -> (DropboxEmulator, String) {
    let d = dropbox::start_with_files(
        Default::default(),
        FilesConfig::default(),
        Harness::default(),
    )
    .await
    .unwrap();
    let token = d.tokens().issue_access(
        "sl.test-token".into(),
        dropbox::fixtures::CLIENT_ID,
        dropbox::fixtures::ACCOUNT_ID,
        "files.metadata.read files.metadata.write files.content.read",
        Some(d.clock().now() + time::Duration::hours(4)),
    );
    (d, token)
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// `POST {api}/2/{route}` with a JSON body; (status, body text, retry-after).
async fn rpc(
    d: &DropboxEmulator,
    token: &str,
    route: &str,
    body: &Value,
) -> (u16, String, Option<String>) {
    let resp = client()
        .post(format!("{}/2/{route}", d.api_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), retry)
}

async fn ok(d: &DropboxEmulator, token: &str, route: &str, body: &Value) -> Value {
    let (status, text, _) = rpc(d, token, route, body).await;
    assert_eq!(status, 200, "{route}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e[".tag"].as_str().unwrap(),
                e["path_lower"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn list_folder_pages_with_cursors_then_continues_with_changes() {
    let (d, token) = start().await;
    let mut page = ok(
        &d,
        &token,
        "files/list_folder",
        &json!({"path": "/Photos", "recursive": true, "limit": 4}),
    )
    .await;
    let mut seen = names(&page);
    let mut pages = 1;
    while page["has_more"] == true {
        page = ok(
            &d,
            &token,
            "files/list_folder/continue",
            &json!({"cursor": page["cursor"]}),
        )
        .await;
        seen.extend(names(&page));
        pages += 1;
    }
    // /Photos, 5 folders below it, 14 files.
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert_eq!(pages, 5);
    assert_eq!(seen[0], "folder:/photos");
    assert!(!seen.iter().any(|s| s.contains("/other")));
    let file = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[".tag"] == "file")
        .expect("the last page has a file");
    assert!(file["id"].as_str().unwrap().starts_with("id:"));
    assert_eq!(file["content_hash"].as_str().unwrap().len(), 64);

    // Nothing changed: an empty page.
    let cursor = page["cursor"].clone();
    let quiet = ok(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": cursor}),
    )
    .await;
    assert_eq!(quiet["entries"], json!([]));
    assert_eq!(quiet["has_more"], false);

    // A new file, a changed one and a deleted one come as changes.
    let db = d.dropbox();
    db.add_file(FileSpec::new(
        "/Photos/new.jpg",
        b"new".to_vec(),
        Expected::default(),
    ));
    assert!(db.replace_content("/photos/marketing/BANNER-0.jpg", b"other".to_vec()));
    assert!(db.delete("/Photos/Marketing/product.jpg"));
    db.add_file(FileSpec::new(
        "/Other/elsewhere.jpg",
        b"x".to_vec(),
        Expected::default(),
    ));
    let changes = ok(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": quiet["cursor"]}),
    )
    .await;
    let mut got = names(&changes);
    got.sort();
    assert_eq!(
        got,
        [
            "deleted:/photos/marketing/product.jpg",
            "file:/photos/marketing/banner-0.jpg",
            "file:/photos/new.jpg"
        ]
    );
    let banner = changes["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "banner-0.jpg")
        .unwrap();
    assert_eq!(banner["content_hash"], content_hash(b"other"));

    // get_latest_cursor starts from now.
    let latest = ok(
        &d,
        &token,
        "files/list_folder/get_latest_cursor",
        &json!({"path": "", "recursive": true}),
    )
    .await;
    let empty = ok(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": latest["cursor"]}),
    )
    .await;
    assert_eq!(empty["entries"], json!([]));
}

#[tokio::test]
async fn an_invalidated_cursor_answers_409_reset() {
    let (d, token) = start().await;
    let page = ok(
        &d,
        &token,
        "files/list_folder",
        &json!({"path": "", "recursive": true, "limit": 2}),
    )
    .await;
    d.dropbox().reset_next_continue();
    let (status, text, _) = rpc(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": page["cursor"]}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error_summary": "reset/..", "error": {".tag": "reset"}})
    );
    // The fault was one-off; then every old cursor expires.
    assert_eq!(
        rpc(
            &d,
            &token,
            "files/list_folder/continue",
            &json!({"cursor": page["cursor"]})
        )
        .await
        .0,
        200
    );
    d.dropbox().expire_cursors();
    let (status, text, _) = rpc(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": page["cursor"]}),
    )
    .await;
    assert_eq!((status, text.contains("reset")), (409, true));
    let (status, text, _) = rpc(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": "garbage"}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
}

#[tokio::test]
async fn errors_have_dropbox_shapes() {
    let (d, token) = start().await;
    let (status, text, _) = rpc(&d, &token, "files/list_folder", &json!({"path": "/Nope"})).await;
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error_summary": "path/not_found/..", "error": {".tag": "path", "path": {".tag": "not_found"}}})
    );
    let (status, text, _) = rpc(&d, &token, "files/list_folder", &json!({"path": "/"})).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("Error in call to API function \"files/list_folder\""),
        "{text}"
    );
    let (status, text, _) = rpc(
        &d,
        &token,
        "files/list_folder",
        &json!({"path": "", "limit": 2001}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let (status, text, _) = rpc(&d, &token, "files/get_metadata", &json!({"path": ""})).await;
    assert_eq!(status, 400, "{text}");
    let folder = ok(
        &d,
        &token,
        "files/get_metadata",
        &json!({"path": "/photos"}),
    )
    .await;
    assert_eq!(folder[".tag"], "folder");
    assert_eq!(folder["path_display"], "/Photos");

    let wrong_type = client()
        .post(format!("{}/2/files/list_folder", d.api_url()))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{\"path\": \"\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    assert!(
        wrong_type
            .text()
            .await
            .unwrap()
            .contains("Bad HTTP \"Content-Type\" header")
    );

    d.dropbox().inject(
        Route::ListFolder,
        DbxFault::Throttle {
            retry_after_secs: 15,
        },
        1,
    );
    let (status, text, retry) = rpc(&d, &token, "files/list_folder", &json!({"path": ""})).await;
    assert_eq!((status, retry.as_deref()), (429, Some("15")));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["reason"][".tag"], "too_many_requests");
    assert_eq!(body["error"]["retry_after"], 15);
    assert_eq!(d.dropbox().retry_follow_ups().len(), 1);

    d.clock().advance(time::Duration::hours(5));
    let (status, text, _) = rpc(&d, &token, "files/list_folder", &json!({"path": ""})).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error_summary": "expired_access_token/..", "error": {".tag": "expired_access_token"}})
    );
    let (status, text, _) = rpc(&d, "not-a-token", "files/list_folder", &json!({"path": ""})).await;
    assert_eq!((status, text.contains("invalid_access_token")), (401, true));
}

#[tokio::test]
async fn downloads_take_an_ascii_escaped_arg_on_the_content_host_and_honour_range() {
    let (d, token) = start().await;
    let photo = d.dropbox().file(seed::NON_ASCII_PHOTO).unwrap();
    let bytes = |resp: reqwest::Response| async move { resp.bytes().await.unwrap().to_vec() };
    let escaped = r#"{"path":"/Photos/Fotos/\u00c5ngstr\u00f6m \u65e5\u672c \ud83d\ude00.jpg"}"#;
    let url = format!("{}/2/files/download", d.content_url());
    let resp = client()
        .post(&url)
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", escaped)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 0-99/{}", photo.size).as_str()
    );
    let result = resp.headers()["dropbox-api-result"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(result.contains("\\u00c5ngstr\\u00f6m"), "{result}");
    let meta: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(meta["id"], photo.id.as_str());
    assert_eq!(bytes(resp).await.len(), 100);

    // By id, no range: everything.
    let whole = client()
        .post(&url)
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", json!({"path": photo.id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(bytes(whole).await.len() as u64, photo.size);

    // Raw UTF-8 in the header is not JSON Dropbox can read.
    let raw = client()
        .post(&url)
        .bearer_auth(&token)
        .header(
            "Dropbox-API-Arg",
            reqwest::header::HeaderValue::from_bytes(
                json!({"path": seed::NON_ASCII_PHOTO})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.text().await.unwrap().contains("Dropbox-API-Arg"));

    let json_type = client()
        .post(&url)
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", json!({"path": photo.id}).to_string())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json_type.status(), 400);
    assert!(
        json_type
            .text()
            .await
            .unwrap()
            .contains("Bad HTTP \"Content-Type\" header")
    );

    let unauthenticated = client()
        .post(&url)
        .header("Dropbox-API-Arg", json!({"path": photo.id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let missing = client()
        .post(&url)
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", r#"{"path":"/Photos/gone.jpg"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 409);
    assert!(missing.text().await.unwrap().contains("path/not_found"));

    let past_end = client()
        .post(&url)
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", json!({"path": photo.id}).to_string())
        .header("range", format!("bytes={}-", photo.size))
        .send()
        .await
        .unwrap();
    assert_eq!(past_end.status(), 416);

    // The API host does not serve downloads.
    let wrong_host = client()
        .post(format!("{}/2/files/download", d.api_url()))
        .bearer_auth(&token)
        .header("Dropbox-API-Arg", json!({"path": photo.id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_host.status(), 404);
}

#[tokio::test]
async fn property_templates_and_properties_follow_the_limits_with_per_path_errors() {
    let (d, token) = start().await;
    let added = ok(
        &d,
        &token,
        "file_properties/templates/add_for_user",
        &json!({"name": "ProofPix", "description": "d", "fields": [
            {"name": "risk", "description": "", "type": "string"},
            {"name": "score", "description": "", "type": {".tag": "string"}},
        ]}),
    )
    .await;
    let tid = added["template_id"].as_str().unwrap().to_owned();
    assert!(tid.starts_with("ptid:"));
    let listed = ok(
        &d,
        &token,
        "file_properties/templates/list_for_user",
        &Value::Null,
    )
    .await;
    assert_eq!(listed["template_ids"], json!([tid]));
    let got = ok(
        &d,
        &token,
        "file_properties/templates/get_for_user",
        &json!({"template_id": tid}),
    )
    .await;
    assert_eq!(
        got["fields"][1],
        json!({"name": "score", "description": "", "type": {".tag": "string"}})
    );

    let too_many: Vec<Value> = (0..33)
        .map(|i| json!({"name": format!("f{i}"), "description": "", "type": "string"}))
        .collect();
    let (status, text, _) = rpc(
        &d,
        &token,
        "file_properties/templates/add_for_user",
        &json!({"name": "X", "description": "", "fields": too_many}),
    )
    .await;
    assert_eq!((status, text.contains("too_many_properties")), (409, true));

    let photo = d.dropbox().file("/Photos/Marketing/banner-1.jpg").unwrap();
    let group = |fields: Value| json!({"path": photo.id, "property_groups": [{"template_id": tid, "fields": fields}]});
    assert_eq!(
        ok(
            &d,
            &token,
            "file_properties/properties/overwrite",
            &group(json!([{"name": "risk", "value": "High"}]))
        )
        .await,
        Value::Null
    );
    assert_eq!(d.dropbox().properties(&photo.id)[&tid]["risk"], "High");
    let (status, text, _) = rpc(
        &d,
        &token,
        "file_properties/properties/add",
        &group(json!([{"name": "risk", "value": "Low"}])),
    )
    .await;
    assert_eq!(
        (status, text.contains("property_group_already_exists")),
        (409, true)
    );
    ok(&d, &token, "file_properties/properties/update", &json!({"path": photo.path, "update_property_groups": [
        {"template_id": tid, "add_or_update_fields": [{"name": "score", "value": "80"}], "remove_fields": ["risk"]}
    ]})).await;
    let props = d.dropbox().properties(&photo.id);
    assert_eq!(props[&tid].get("score").map(String::as_str), Some("80"));
    assert!(!props[&tid].contains_key("risk"));

    for (fields, tag) in [
        (
            json!([{"name": "other", "value": "x"}]),
            "does_not_fit_template",
        ),
        (
            json!([{"name": "risk", "value": "x".repeat(1025)}]),
            "property_field_too_large",
        ),
    ] {
        let (status, text, _) = rpc(
            &d,
            &token,
            "file_properties/properties/overwrite",
            &group(fields),
        )
        .await;
        assert_eq!((status, text.contains(tag)), (409, true), "{text}");
    }
    let (status, text, _) = rpc(&d, &token, "file_properties/properties/overwrite", &json!({"path": "/Photos/gone.jpg", "property_groups": [{"template_id": tid, "fields": []}]})).await;
    assert_eq!(status, 409);
    assert!(text.contains("path/not_found"), "{text}");
    let (status, text, _) = rpc(
        &d,
        &token,
        "file_properties/properties/overwrite",
        &json!({"path": photo.id, "property_groups": [{"template_id": "ptid:nope", "fields": []}]}),
    )
    .await;
    assert_eq!((status, text.contains("template_not_found")), (409, true));

    assert_eq!(d.dropbox().writes_per_file()[&photo.id], 2);
    // A property write lists the file again as changed, with the same content hash.
    let latest = ok(
        &d,
        &token,
        "files/list_folder/get_latest_cursor",
        &json!({"path": "", "recursive": true}),
    )
    .await;
    ok(
        &d,
        &token,
        "file_properties/properties/overwrite",
        &group(json!([{"name": "risk", "value": "Low"}])),
    )
    .await;
    let changes = ok(
        &d,
        &token,
        "files/list_folder/continue",
        &json!({"cursor": latest["cursor"]}),
    )
    .await;
    assert_eq!(
        changes["entries"][0]["content_hash"],
        photo.content_hash.as_str()
    );
}
