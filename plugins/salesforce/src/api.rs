//! Calls to the org's REST API and the mapping of Salesforce's errors onto the contract's cases.
//!
//! Salesforce answers errors with a JSON array of `{"message","errorCode"}` (reference §1.5).
//! What the host does next depends on the case this module picks:
//!
//! | Salesforce says | case | host does |
//! |---|---|---|
//! | 401 `INVALID_SESSION_ID` | `unauthorized` | refreshes the session, retries once |
//! | 403 `REQUEST_LIMIT_EXCEEDED` (no 429, no Retry-After) | `rate-limited` | backs off |
//! | 429 / 503 with `Retry-After` | `rate-limited` | waits at least that long |
//! | 5xx, 408, a malformed or truncated body | `transient` | retries with back-off |
//! | 400 `INVALID_QUERY_LOCATOR` | (handled by discovery: the listing restarts) | |
//! | 400 `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE` | `invalid-config` (scope) | reports what to fix |
//! | 403 other, 404 | `invalid-config` / `not-found` | reports |
//!
//! Threat: a hostile or broken API answer. Bodies are parsed, never trusted for sizes or
//! indexes; a body that does not parse fails the page (`transient`), not the plugin. Messages
//! quote at most [`MAX_QUOTE_CHARS`] of what Salesforce said.

use proofpix_sdk::http::{Request, Response, status_error};
use proofpix_sdk::prelude::*;
use serde_json::Value;

use crate::settings::Settings;

/// Longest excerpt of a Salesforce message quoted in ours.
const MAX_QUOTE_CHARS: usize = 300;
/// Pages followed by [`query_all`] before giving up: sub-queries of one discovery page are
/// bounded by the page, so more means a server that never says `done`.
const MAX_SUBQUERY_PAGES: usize = 200;

/// The first error of a Salesforce error array: (errorCode, message).
pub fn first_error(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.as_array()?.first()?;
    let code = e["errorCode"].as_str().unwrap_or_default().to_string();
    let message: String = e["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(MAX_QUOTE_CHARS)
        .collect();
    Some((code, message))
}

/// Maps an error response onto the contract.
pub fn error_of(resp: &Response, doing: &str) -> PluginError {
    let (code, message) = first_error(&resp.body).unwrap_or_default();
    let said = if code.is_empty() {
        format!("HTTP {}", resp.status)
    } else {
        format!("{code}: {message}")
    };
    match (resp.status, code.as_str()) {
        (401, _) => PluginError::unauthorized(format!(
            "Salesforce rejected the session while {doing} ({said})"
        )),
        (403, "REQUEST_LIMIT_EXCEEDED") => PluginError::rate_limited(
            resp.retry_after_ms(),
            format!(
                "Salesforce's API request limit is used up ({message}) while {doing}; ProofPix backs off and retries. If this persists, raise the org's API allowance or sync less often"
            ),
        ),
        (403, _) => PluginError::invalid_config(
            None,
            format!(
                "Salesforce refused access while {doing} ({said}); give the integration user the permission it names"
            ),
        ),
        (404, _) => PluginError::not_found(format!(
            "Salesforce has no such resource while {doing} ({said})"
        )),
        (400, "MALFORMED_QUERY" | "INVALID_FIELD" | "INVALID_TYPE") => PluginError::invalid_config(
            Some("scope_where"),
            format!(
                "Salesforce rejected a query while {doing} ({said}); check `scope_object` and `scope_where`"
            ),
        ),
        _ => status_error(resp.status, &resp.url, &said, resp.retry_after_ms()),
    }
}

/// The org's instance URL, from the host's authentication.
///
/// # Errors
/// `fatal` when the host has not authenticated (it always does before a session).
pub fn instance_url() -> Result<String, PluginError> {
    config::auth_context("instance_url")
        .map(|u| u.trim_end_matches('/').to_string())
        .ok_or_else(|| PluginError::fatal("the host has no Salesforce instance_url; run `proofpix integration test` to sign in"))
}

/// `{instance}/services/data/v{version}`.
pub fn data_base(s: &Settings) -> Result<String, PluginError> {
    Ok(format!(
        "{}/services/data/v{}",
        instance_url()?,
        s.api_version
    ))
}

/// Sends and maps errors.
pub fn send(req: Request, doing: &str) -> Result<Response, PluginError> {
    let resp = req.send()?;
    if resp.is_success() {
        Ok(resp)
    } else {
        Err(error_of(&resp, doing))
    }
}

/// A query page.
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    /// Records, `attributes` included.
    pub records: Vec<Value>,
    /// `nextRecordsUrl`, relative.
    pub next: Option<String>,
}

/// Why a page could not be had.
#[derive(Debug)]
pub enum PageError {
    /// The locator expired (`INVALID_QUERY_LOCATOR`): the listing must restart.
    LocatorGone,
    /// Anything else.
    Other(PluginError),
}

impl From<PluginError> for PageError {
    fn from(e: PluginError) -> Self {
        PageError::Other(e)
    }
}

fn page_of(resp: &Response) -> Result<QueryPage, PluginError> {
    let v: Value = resp.json()?;
    let records = v["records"].as_array().cloned().ok_or_else(|| {
        PluginError::transient("Salesforce answered a query without a records list; retrying")
    })?;
    let done = v["done"].as_bool().unwrap_or(true);
    let next = v["nextRecordsUrl"]
        .as_str()
        .filter(|_| !done)
        .map(String::from);
    if !done && next.is_none() {
        return Err(PluginError::transient(
            "Salesforce said more records follow but sent no nextRecordsUrl; retrying",
        ));
    }
    Ok(QueryPage { records, next })
}

/// The first page of a SOQL query.
pub fn query(s: &Settings, soql: &str, doing: &str) -> Result<QueryPage, PluginError> {
    let req = Request::get(&format!("{}/query", data_base(s)?))
        .query("q", soql)
        .header(
            "sforce-query-options",
            &format!("batchSize={}", s.page_size),
        );
    page_of(&send(req, doing)?)
}

/// A `nextRecordsUrl` page. The URL must be a path on the instance: an absolute URL elsewhere
/// is refused rather than followed.
pub fn query_more(s: &Settings, next: &str, doing: &str) -> Result<QueryPage, PageError> {
    if !next.starts_with("/services/data/") {
        return Err(PageError::Other(PluginError::transient(format!(
            "Salesforce sent an unexpected nextRecordsUrl ({}); restarting the page",
            next.chars().take(80).collect::<String>()
        ))));
    }
    let req = Request::get(&format!("{}{next}", instance_url()?)).header(
        "sforce-query-options",
        &format!("batchSize={}", s.page_size),
    );
    let resp = req.send()?;
    if resp.status == 400
        && first_error(&resp.body).is_some_and(|(c, _)| c == "INVALID_QUERY_LOCATOR")
    {
        return Err(PageError::LocatorGone);
    }
    if !resp.is_success() {
        return Err(PageError::Other(error_of(&resp, doing)));
    }
    Ok(page_of(&resp)?)
}

/// Every record of a query, following `nextRecordsUrl` (for the small sub-queries of one
/// discovery page). An expired locator restarts the query once.
pub fn query_all(s: &Settings, soql: &str, doing: &str) -> Result<Vec<Value>, PluginError> {
    let mut restarted = false;
    'again: loop {
        let mut page = query(s, soql, doing)?;
        let mut out = std::mem::take(&mut page.records);
        let mut pages = 1;
        while let Some(next) = page.next.take() {
            pages += 1;
            if pages > MAX_SUBQUERY_PAGES {
                return Err(PluginError::transient(format!(
                    "a query while {doing} did not finish after {MAX_SUBQUERY_PAGES} pages"
                )));
            }
            page = match query_more(s, &next, doing) {
                Ok(p) => p,
                Err(PageError::LocatorGone) if !restarted => {
                    restarted = true;
                    continue 'again;
                }
                Err(PageError::LocatorGone) => {
                    return Err(PluginError::transient(format!(
                        "Salesforce's query locator expired twice while {doing}"
                    )));
                }
                Err(PageError::Other(e)) => return Err(e),
            };
            out.append(&mut page.records);
        }
        return Ok(out);
    }
}

/// A SOQL string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `('a','b')`.
pub fn in_list<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| quote(s.as_ref())).collect();
    format!("({})", quoted.join(","))
}

/// A string field of a record.
pub fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_escape_quotes_and_backslashes() {
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
        assert_eq!(in_list(["a", "b"]), "('a','b')");
    }

    #[test]
    fn the_first_error_of_an_array_is_read() {
        let body =
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert_eq!(
            first_error(body),
            Some((
                "INVALID_SESSION_ID".into(),
                "Session expired or invalid".into()
            ))
        );
        assert_eq!(first_error(b"<html>"), None);
    }
}
