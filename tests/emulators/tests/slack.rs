//! The Slack Web API emulator answers with Slack's wire shapes (saas-apis.md §4.2, §4.3): what a
//! plugin author can rely on when developing against it.

use proofpix_emulators::Harness;
use proofpix_emulators::slack::{self, Slack, web};
use serde_json::{Value, json};

async fn slack() -> Slack {
    slack::start_workspace(Default::default(), Default::default(), Harness::default())
        .await
        .unwrap()
}

async fn call(s: &Slack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(s.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn failures_are_http_200_with_ok_false_and_missing_scope_names_both_sides() {
    let s = slack().await;
    let (status, body) = call(
        &s,
        web::POST_MESSAGE_PATH,
        slack::fixtures::BOT_TOKEN,
        json!({"channel": "#random", "text": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"ok": false, "error": "not_in_channel"}))
    );
    let narrow = s.tokens().issue_access(
        "xoxb-narrow".into(),
        "install",
        "U0KRQLJ9H",
        "files:read",
        None,
    );
    let (status, body) = call(
        &s,
        web::POST_MESSAGE_PATH,
        &narrow,
        json!({"channel": "#compliance", "text": "hi"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ok": false, "error": "missing_scope", "needed": "chat:write", "provided": "files:read"})
    );
    let (_, body) = call(&s, web::POST_MESSAGE_PATH, "xoxb-nope", json!({})).await;
    assert_eq!(body["error"], "invalid_auth");
}

#[tokio::test]
async fn a_post_is_recorded_with_its_blocks_and_a_json_body_without_charset_is_warned() {
    let s = slack().await;
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]);
    let r = reqwest::Client::new()
        .post(s.url(web::POST_MESSAGE_PATH))
        .bearer_auth(slack::fixtures::BOT_TOKEN)
        .header("content-type", "application/json")
        .body(json!({"channel": web::seed::COMPLIANCE, "text": "hi", "blocks": blocks}).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["warning"], "missing_charset");
    assert_eq!(body["message"]["blocks"], blocks);
    let posted = s.workspace().posted();
    assert_eq!(posted[0].blocks.as_ref(), Some(&blocks));
    assert_eq!(posted[0].ts, body["ts"].as_str().unwrap());
}

#[tokio::test]
async fn block_limits_answer_invalid_blocks_with_a_pointer() {
    let s = slack().await;
    let (_, body) = call(
        &s,
        web::POST_MESSAGE_PATH,
        slack::fixtures::BOT_TOKEN,
        json!({"channel": "#compliance", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}
        ]}),
    )
    .await;
    assert_eq!(body["error"], "invalid_blocks");
    assert_eq!(
        body["response_metadata"]["messages"][0],
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
    );
}

#[tokio::test]
async fn history_is_newest_first_with_a_next_ts_cursor() {
    let s = slack().await;
    let ws = s.workspace();
    let first = ws.say(web::seed::FIELD_PHOTOS, "one");
    let (second, file) = ws.share_image(web::seed::FIELD_PHOTOS, "a.jpg", vec![0xFF, 0xD8, 0xFF]);
    let third = ws.say(web::seed::FIELD_PHOTOS, "three");
    let get = |q: String| {
        let url = format!("{}?{q}", s.url(web::HISTORY_PATH));
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(slack::fixtures::BOT_TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let page = get(format!("channel={}&limit=2", web::seed::FIELD_PHOTOS)).await;
    assert_eq!(page["has_more"], true);
    let ts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ts"].as_str().unwrap())
        .collect();
    assert_eq!(ts, [third.as_str(), second.as_str()]);
    let shared = &page["messages"][1]["files"][0];
    assert_eq!(shared["id"], file.as_str());
    assert_eq!(shared["mimetype"], "image/jpeg");
    assert!(
        shared["url_private_download"]
            .as_str()
            .unwrap()
            .starts_with(s.files_base().as_str())
    );
    let cursor = page["response_metadata"]["next_cursor"].as_str().unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .unwrap();
    assert_eq!(decoded, format!("next_ts:{first}").as_bytes());
    let last = get(format!(
        "channel={}&limit=2&cursor={}",
        web::seed::FIELD_PHOTOS,
        url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
    ))
    .await;
    assert_eq!(last["has_more"], false);
    assert!(last.get("response_metadata").is_none());
    let newer = get(format!(
        "channel={}&oldest={second}",
        web::seed::FIELD_PHOTOS
    ))
    .await;
    assert_eq!(newer["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_ratelimited_fault_is_a_429_with_retry_after() {
    let s = slack().await;
    s.faults()
        .once(web::POST_MESSAGE_PATH, web::ratelimited(30));
    let r = reqwest::Client::new()
        .post(s.url(web::POST_MESSAGE_PATH))
        .bearer_auth(slack::fixtures::BOT_TOKEN)
        .json(&json!({"channel": "#compliance", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "ratelimited"})
    );
}

#[tokio::test]
async fn private_channels_the_bot_is_not_in_do_not_exist_for_it() {
    let s = slack().await;
    s.workspace().add_channel(web::Channel {
        id: "G07SECRET01".into(),
        name: "secret".into(),
        is_private: true,
        is_archived: false,
        bot_is_member: false,
    });
    let r = reqwest::Client::new()
        .get(format!(
            "{}?types=public_channel,private_channel",
            s.url(web::LIST_PATH)
        ))
        .bearer_auth(slack::fixtures::BOT_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let names: Vec<&str> = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"incident-photos"));
    assert!(!names.contains(&"secret"));
    let (_, body) = call(
        &s,
        web::POST_MESSAGE_PATH,
        slack::fixtures::BOT_TOKEN,
        json!({"channel": "G07SECRET01", "text": "x"}),
    )
    .await;
    assert_eq!(body["error"], "channel_not_found");
}
