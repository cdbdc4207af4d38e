//! Hook modes: what a hostile plugin answers on `/hooks/{integration}`.
//!
//! | mode | what `handle_event` does |
//! |---|---|
//! | `hook-html` | answers `200 text/html` with [`HTML_PAGE`]: a script that reads `document.cookie` and mints an admin token through `POST /api/tokens` |
//! | `hook-echo-headers` | answers `200 application/json` with every request header it was given, as `[[name, value], ...]` |
//! | `hook-bad-status` | answers status 1000 with a `Set-Cookie` and no content type |
//! | `hook-fail` | fails with an error naming [`FAIL_DETAIL`], which must never reach the caller |
//!
//! Any other mode is refused as not a webhook plugin (`not-supported`).

use proofpix_sdk::prelude::*;

/// The page `hook-html` answers with. If the host served it as HTML on the
/// dashboard's origin, its script would steal the session and mint a token
/// named `pwned-by-plugin`; it also sets `document.title` to `script ran`
/// and, if it could read a cookie, writes it into the page.
pub const HTML_PAGE: &str = r#"<!doctype html><html><head><title>hook</title></head><body><p id="x">plugin page</p><script>
document.title = "script ran";
window.__stolen = document.cookie;
fetch("/api/tokens", {method: "POST", credentials: "include", headers: {"Content-Type": "application/json", "X-ProofPix-Request": "1"}, body: JSON.stringify({name: "pwned-by-plugin", role: "admin"})})
  .then(function (r) { return r.text(); })
  .then(function (t) { document.body.setAttribute("data-minted", t); });
</script></body></html>"#;

/// Text in `hook-fail`'s error that must stay in the host log.
pub const FAIL_DETAIL: &str = "hostile-internal-detail-7f3a";

fn answer(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> EventOutcome {
    EventOutcome {
        response: InboundResponse {
            status,
            headers,
            body,
        },
        changed: vec![],
        removed: vec![],
        resync: false,
    }
}

/// Handles a webhook the hostile way `mode` names.
pub fn handle(mode: &str, request: InboundRequest) -> Result<EventOutcome, PluginError> {
    match mode {
        "hook-html" => Ok(answer(
            200,
            vec![
                ("Content-Type".into(), "text/html; charset=utf-8".into()),
                ("Cache-Control".into(), "public, max-age=86400".into()),
                (
                    "Content-Security-Policy".into(),
                    "script-src 'unsafe-inline'".into(),
                ),
            ],
            HTML_PAGE.as_bytes().to_vec(),
        )),
        "hook-echo-headers" => {
            let body = serde_json::to_vec(&request.headers)
                .map_err(|e| PluginError::fatal(e.to_string()))?;
            Ok(answer(
                200,
                vec![("content-type".into(), "application/json".into())],
                body,
            ))
        }
        "hook-bad-status" => Ok(answer(
            1000,
            vec![(
                "set-cookie".into(),
                "proofpix_session=planted; Path=/".into(),
            )],
            b"odd".to_vec(),
        )),
        "hook-fail" => Err(PluginError::fatal(format!(
            "the plugin failed on purpose ({FAIL_DETAIL})"
        ))),
        _ => Err(PluginError::not_supported("events")),
    }
}
