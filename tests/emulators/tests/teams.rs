//! The Teams webhook emulator answers like Workflows and the legacy connector do
//! (saas-apis.md §3, §11).

use proofpix_emulators::Harness;
use proofpix_emulators::teams::{self, CardKind, Hook, Teams, TeamsConfig};
use serde_json::{Value, json};

async fn teams() -> Teams {
    teams::start(TeamsConfig::default(), Harness::default())
        .await
        .unwrap()
}

fn adaptive() -> Value {
    json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.2",
            "body": [{"type": "TextBlock", "text": "hello"}]}}]})
}

async fn post(url: url::Url, body: &Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_workflow_trigger_accepts_with_202_and_an_empty_body() {
    let t = teams().await;
    assert_eq!(
        post(t.workflow_url(), &adaptive()).await,
        (202, String::new())
    );
    assert_eq!(
        post(t.power_platform_url(), &adaptive()).await,
        (202, String::new())
    );
    let posted = t.posted();
    assert_eq!(posted[0].hook, Hook::Workflow);
    assert_eq!(posted[1].hook, Hook::PowerPlatform);
    assert!(
        posted
            .iter()
            .all(|p| p.rendered && p.kind == CardKind::AdaptiveEnvelope)
    );
}

#[tokio::test]
async fn a_workflow_accepts_a_card_it_cannot_render_and_the_record_says_so() {
    let t = teams().await;
    let message_card = json!({"@type": "MessageCard", "summary": "s", "text": "t"});
    assert_eq!(post(t.workflow_url(), &message_card).await.0, 202);
    assert!(!t.posted()[0].rendered);
}

#[tokio::test]
async fn a_trigger_without_api_version_or_with_a_bad_sig_is_refused_with_microsofts_codes() {
    let t = teams().await;
    let mut no_version = t.workflow_url();
    let q = no_version
        .query()
        .unwrap()
        .replace("api-version=2016-06-01&", "");
    no_version.set_query(Some(&q));
    let (status, body) = post(no_version, &adaptive()).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "MissingApiVersionParameter"
    );
    let mut bad_sig = t.workflow_url();
    let q = bad_sig
        .query()
        .unwrap()
        .replace(teams::fixtures::WORKFLOW_SIG, "x");
    bad_sig.set_query(Some(&q));
    let (status, body) = post(bad_sig, &adaptive()).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "DirectApiAuthorizationRequired"
    );
    assert!(t.posted().is_empty());
}

#[tokio::test]
async fn a_legacy_connector_answers_1_and_wants_a_summary_or_text() {
    let t = teams().await;
    assert_eq!(
        post(
            t.legacy_url(),
            &json!({"@type": "MessageCard", "summary": "s"})
        )
        .await,
        (200, "1".to_string())
    );
    assert_eq!(
        post(
            t.legacy_url(),
            &json!({"@type": "MessageCard", "title": "no summary"})
        )
        .await,
        (400, "Summary or Text is required.".to_string())
    );
    assert_eq!(
        post(t.legacy_url(), &adaptive()).await,
        (200, "1".to_string())
    );
}

#[tokio::test]
async fn the_legacy_connector_reports_throttling_inside_an_http_200_body() {
    let t = teams().await;
    let card = json!({"@type": "MessageCard", "summary": "s"});
    for _ in 0..4 {
        assert_eq!(post(t.legacy_url(), &card).await.1, "1");
    }
    let (status, body) = post(t.legacy_url(), &card).await;
    assert_eq!(status, 200);
    assert!(body.contains("Microsoft Teams endpoint returned HTTP error 429"));
    t.clock().advance(time::Duration::seconds(1));
    assert_eq!(post(t.legacy_url(), &card).await.1, "1");
    assert_eq!(t.posted().len(), 5);
}
