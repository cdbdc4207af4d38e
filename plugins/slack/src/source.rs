//! Slack as a source: images shared in channels, and results written back as reactions or
//! thread replies.
//!
//! Discovery walks the configured channels one after another with `conversations.history`
//! (newest first, `response_metadata.next_cursor` pagination). A message's `files` are file
//! objects; when Slack withholds one (`file_access: check_file_info`, e.g. in Slack Connect
//! channels) `files.info` fetches it. Only image files are returned (`image/*` MIME types).
//!
//! Incremental sync: the final cursor of a run keeps, per channel ID, the newest message `ts`
//! seen; the next run asks with `oldest=` that `ts` and sees only newer messages. Slack cursors
//! expire; an `invalid_cursor` restarts the current channel (the host skips files it has already
//! analysed, so a restart costs requests, not duplicate results).
//!
//! Downloads: `url_private_download` (or `url_private`), which Slack serves only with the bot
//! token, so the private-file host is a credentialed endpoint. A URL on any other host than the
//! configured file or API host is refused here with a message, before the host's egress check
//! would refuse it with a less helpful one.
//!
//! Write-back is the quietest that still shows the result where the file was shared (see the
//! `write_back` field): a reaction by default. Thread replies are made idempotent with plugin
//! state, so a batch retried after rate limiting never posts a reply twice.
//!
//! Limits: files shared only inside thread replies are not listed (`conversations.history`
//! returns thread parents); deleted files are reported through the `file_deleted` event only.

use std::collections::BTreeMap;

use proofpix_sdk::prelude::*;
use proofpix_sdk::text::truncate_chars;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::blocks;

/// Messages per `conversations.history` page (Slack allows up to 999; 200 is its advice).
const PAGE_LIMIT: &str = "200";
/// Channels per `conversations.list` page when resolving names.
const LIST_LIMIT: &str = "200";
/// Most `conversations.list` pages read when resolving names (40,000 channels).
const MAX_LIST_PAGES: usize = 200;

/// The sync cursor.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// Newest message `ts` seen per channel ID, from finished runs.
    #[serde(default)]
    seen: BTreeMap<String, String>,
    /// Within a run: which configured channel is being listed.
    #[serde(default)]
    channel: usize,
    /// Within a run: Slack's `next_cursor` for that channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    /// Within a run: newest `ts` seen so far per channel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    newest: BTreeMap<String, String>,
}

/// A configured channel, resolved to its ID.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Conversation ID.
    pub id: String,
    /// As the operator wrote it, for messages.
    pub label: String,
}

/// `check`: the token, the notification channel, the scanned channels.
pub fn check() -> Result<CheckReport, PluginError> {
    let ctx = api::Context::default();
    let who = api::post_json("auth.test", &json!({})).map_err(|e| api::explain(e, &ctx))?;
    let user = who.get("user").and_then(Value::as_str).unwrap_or("?");
    let team = who.get("team").and_then(Value::as_str).unwrap_or("?");
    let _ = state::set_json("bot_name", &user);
    let mut details = vec![format!("bot token accepted for workspace {team}")];
    if let Some(channel) = config::get("channel") {
        details.push(check_notification_channel(&channel)?);
    }
    for c in scan_channels()? {
        let r = api::get(
            "conversations.history",
            &[("channel", c.id.as_str()), ("limit", "1")],
        );
        match r {
            Ok(_) => details.push(format!(
                "can read {} to scan it",
                api::display_channel(&c.label)
            )),
            Err(e) => return Err(crate::explain_for_channel(e, &c.label, "channels")),
        }
    }
    Ok(CheckReport {
        account: Some(format!("@{user} in {team}")),
        details,
    })
}

/// Whether the bot can post in the notification channel, as far as `conversations.info` tells
/// (it needs `channels:read`; without it the check says so instead of failing).
fn check_notification_channel(channel: &str) -> Result<String, PluginError> {
    let no_scope = |e: &ApiError| matches!(e, ApiError::Slack(s) if s.code == "missing_scope");
    let label = api::display_channel(channel);
    let id = match lookup(channel) {
        Ok(Some(id)) => id,
        Ok(None) => return Err(unknown_channel(channel, "channel")),
        Err(e) if no_scope(&e) => {
            return Ok(format!(
                "cannot look up {label} without the channels:read scope; use its ID or add the scope"
            ));
        }
        Err(e) => return Err(crate::explain_for_channel(e, channel, "channel")),
    };
    match channel_info(&id) {
        Ok(info) => membership(
            &info,
            &Channel {
                id,
                label: channel.to_string(),
            },
            "channel",
        ),
        Err(e) if no_scope(&e) => Ok(format!(
            "cannot check that the bot is in {label} without the channels:read scope"
        )),
        Err(e) => Err(crate::explain_for_channel(e, channel, "channel")),
    }
}

fn membership(info: &Value, c: &Channel, field: &'static str) -> Result<String, PluginError> {
    let label = api::display_channel(&c.label);
    if info.get("is_archived").and_then(Value::as_bool) == Some(true) {
        return Err(crate::explain_for_channel(
            slack_error("conversations.info", "is_archived"),
            &c.label,
            field,
        ));
    }
    if info.get("is_member").and_then(Value::as_bool) == Some(false) {
        return Err(crate::explain_for_channel(
            slack_error("conversations.info", "not_in_channel"),
            &c.label,
            field,
        ));
    }
    Ok(format!("the bot is in {label}"))
}

fn slack_error(method: &str, code: &str) -> ApiError {
    ApiError::Slack(Box::new(api::SlackError {
        method: method.into(),
        code: code.into(),
        ..api::SlackError::default()
    }))
}

fn channel_info(id: &str) -> Result<Value, ApiError> {
    let v = api::get("conversations.info", &[("channel", id)])?;
    Ok(v.get("channel").cloned().unwrap_or(Value::Null))
}

/// The channels to scan, resolved to IDs, in configured order.
pub fn scan_channels() -> Result<Vec<Channel>, PluginError> {
    config::list("channels")
        .iter()
        .map(|c| resolve_one(c))
        .collect()
}

/// A channel ID for an ID or `#name`; names are looked up with `conversations.list` once and
/// cached in plugin state.
fn resolve_one(configured: &str) -> Result<Channel, PluginError> {
    let trimmed = configured.trim();
    let field = if config::get("channel").as_deref() == Some(configured) {
        "channel"
    } else {
        "channels"
    };
    match lookup(trimmed) {
        Ok(Some(id)) => Ok(Channel {
            id,
            label: trimmed.to_string(),
        }),
        Ok(None) => Err(unknown_channel(trimmed, field)),
        Err(e) => Err(crate::explain_for_channel(e, trimmed, field)),
    }
}

fn unknown_channel(channel: &str, field: &str) -> PluginError {
    PluginError::invalid_config(
        Some(field),
        format!(
            "no channel named {} is visible to the bot; check the spelling, use the channel ID \
             (C0123ABCD), or invite the bot first if the channel is private",
            api::display_channel(channel)
        ),
    )
}

/// The ID of a configured channel: IDs as they are, names through `conversations.list` (cached
/// in plugin state). `None` when no visible channel has that name.
fn lookup(configured: &str) -> Result<Option<String>, ApiError> {
    let name = configured.trim().trim_start_matches('#');
    if api::looks_like_id(name) {
        return Ok(Some(name.to_string()));
    }
    let mut cache: BTreeMap<String, String> = state::get_json("channel_ids").unwrap_or_default();
    if let Some(id) = cache.get(name) {
        return Ok(Some(id.clone()));
    }
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let mut params = vec![
            ("types", "public_channel,private_channel"),
            ("exclude_archived", "true"),
            ("limit", LIST_LIMIT),
        ];
        if let Some(c) = cursor.as_deref() {
            params.push(("cursor", c));
        }
        let v = api::get("conversations.list", &params)?;
        for ch in v
            .get("channels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(n), Some(id)) = (
                ch.get("name").and_then(Value::as_str),
                ch.get("id").and_then(Value::as_str),
            ) {
                cache.insert(n.to_string(), id.to_string());
            }
        }
        cursor = next_cursor(&v);
        if cache.contains_key(name) || cursor.is_none() {
            break;
        }
    }
    let _ = state::set_json("channel_ids", &cache);
    Ok(cache.get(name).cloned())
}

fn next_cursor(v: &Value) -> Option<String> {
    v.pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from)
}

/// One page of discovery.
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let mut cursor: Cursor = pagination::decode(cursor.as_deref())?.unwrap_or_default();
    let channels = scan_channels()?;
    let mut files = Vec::new();
    if let Some(ch) = channels.get(cursor.channel) {
        let mut params: Vec<(&str, &str)> =
            vec![("channel", ch.id.as_str()), ("limit", PAGE_LIMIT)];
        if let Some(p) = cursor.page.as_deref() {
            params.push(("cursor", p));
        }
        let oldest = cursor.seen.get(&ch.id).cloned();
        if let Some(o) = oldest.as_deref() {
            params.push(("oldest", o));
        }
        let history = match api::get("conversations.history", &params) {
            Ok(v) => v,
            Err(ApiError::Slack(e)) if e.code == "invalid_cursor" && cursor.page.is_some() => {
                log::log(
                    log::Level::Warn,
                    "Slack expired the listing cursor; listing the channel again",
                    &[("channel", &ch.id)],
                );
                cursor.page = None;
                return Ok(Page {
                    files: vec![],
                    removed: vec![],
                    cursor: Some(pagination::encode(&cursor)?),
                    more: true,
                });
            }
            Err(e) => return Err(crate::explain_for_channel(e, &ch.label, "channels")),
        };
        let mut hidden = 0usize;
        for message in history
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(ts) = message.get("ts").and_then(Value::as_str) else {
                continue;
            };
            let newest = cursor.newest.entry(ch.id.clone()).or_default();
            if ts_key(ts) > ts_key(newest) {
                *newest = ts.to_string();
            }
            for file in message
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match file_object(file)? {
                    Some(f) => {
                        if let Some(rf) = remote_file(&f, ch, ts) {
                            files.push(rf);
                        }
                    }
                    None => hidden += 1,
                }
            }
        }
        if hidden > 0 {
            log::log(
                log::Level::Info,
                "files Slack does not show to this app were skipped",
                &[("channel", &ch.id), ("count", &hidden.to_string())],
            );
        }
        let has_more = history.get("has_more").and_then(Value::as_bool) == Some(true);
        match next_cursor(&history).filter(|_| has_more) {
            Some(next) => cursor.page = Some(next),
            None => {
                cursor.page = None;
                cursor.channel += 1;
            }
        }
    }
    let more = cursor.channel < channels.len();
    if !more {
        // End of the run: the newest ts per channel becomes the next run's `oldest`.
        for (id, ts) in std::mem::take(&mut cursor.newest) {
            let entry = cursor.seen.entry(id).or_default();
            if ts_key(&ts) > ts_key(entry) {
                *entry = ts;
            }
        }
        cursor.channel = 0;
        cursor.page = None;
    }
    Ok(Page {
        files,
        removed: vec![],
        cursor: Some(pagination::encode(&cursor)?),
        more,
    })
}

/// The full file object: as listed, or from `files.info` when Slack withholds it. `None` for
/// files the app may not see (`hidden_by_limit`, tombstones).
pub fn file_object(file: &Value) -> Result<Option<Value>, PluginError> {
    let mode = file.get("mode").and_then(Value::as_str).unwrap_or_default();
    if matches!(mode, "hidden_by_limit" | "tombstone") {
        return Ok(None);
    }
    if file.get("file_access").and_then(Value::as_str) == Some("check_file_info") {
        let Some(id) = file.get("id").and_then(Value::as_str) else {
            return Ok(None);
        };
        return match files_info(id) {
            Ok(f) => Ok(Some(f)),
            Err(PluginError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(Some(file.clone()))
}

/// `files.info` for one file.
pub fn files_info(id: &str) -> Result<Value, PluginError> {
    let v = api::get("files.info", &[("file", id)])
        .map_err(|e| api::explain(e, &api::Context::default()))?;
    v.get("file").cloned().ok_or_else(|| {
        PluginError::transient("Slack answered files.info without a file object; retrying")
    })
}

/// Whether a file object is an image ProofPix analyses.
pub fn is_image(file: &Value) -> bool {
    let mime = file
        .get("mimetype")
        .and_then(Value::as_str)
        .unwrap_or_default();
    mime.to_ascii_lowercase().starts_with("image/")
}

/// A file object shared in `channel` by the message `ts`, if it is an image.
pub fn remote_file(file: &Value, channel: &Channel, ts: &str) -> Option<RemoteFile> {
    if !is_image(file) {
        return None;
    }
    let s = |k: &str| file.get(k).and_then(Value::as_str).map(String::from);
    let id = s("id")?;
    let created = file
        .get("created")
        .or_else(|| file.get("timestamp"))
        .and_then(Value::as_i64);
    let url = s("url_private_download").or_else(|| s("url_private"));
    let mut properties = vec![
        ("channel".to_string(), channel.id.clone()),
        ("ts".to_string(), ts.to_string()),
    ];
    if let Some(u) = url {
        properties.push(("url".to_string(), u));
    }
    Some(RemoteFile {
        name: s("name")
            .or_else(|| s("title"))
            .unwrap_or_else(|| id.clone()),
        mime_type: s("mimetype"),
        size: file.get("size").and_then(Value::as_u64),
        modified: created.map(rfc3339),
        // Slack never changes an image file's bytes in place: an edit is a new file. `created`
        // plus the size still tells two uploads apart should an ID ever be reused.
        version: format!(
            "{}-{}",
            created.unwrap_or_default(),
            file.get("size").and_then(Value::as_u64).unwrap_or_default()
        ),
        container: Some(channel.id.clone()),
        web_url: s("permalink"),
        path: Some(api::display_channel(&channel.label)),
        properties,
        id,
    })
}

/// `download`: the private URL, fetched by the host with the bot token.
pub fn download(file: &RemoteFile) -> Result<DownloadSpec, PluginError> {
    let url = match file.property("url") {
        Some(u) => u.to_string(),
        None => {
            let f = files_info(&file.id)?;
            f.get("url_private_download")
                .or_else(|| f.get("url_private"))
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| {
                    PluginError::not_found(format!(
                        "Slack lists no download URL for file {}",
                        file.id
                    ))
                })?
        }
    };
    let files_base =
        config::get("files_base_url").unwrap_or_else(|| crate::DEFAULT_FILES_BASE.to_string());
    if !same_origin(&url, &files_base) && !same_origin(&url, &api::base()) {
        return Err(PluginError::invalid_config(
            Some("files_base_url"),
            format!(
                "Slack serves file {} from {}, which is not the configured private file host {}; \
                 set `files_base_url` to that host's origin and grant it",
                file.id,
                http::host_of(&url),
                http::host_of(&files_base)
            ),
        ));
    }
    Ok(DownloadSpec {
        location: ContentLocation::Http(http::Request::get(&url).into_wit()),
        supports_range: true,
    })
}

/// Whether `url` is on the scheme, host and port of `base`.
fn same_origin(url: &str, base: &str) -> bool {
    let origin = |u: &str| -> Option<String> {
        let (scheme, rest) = u.trim().split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some(format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            authority.to_ascii_lowercase()
        ))
    };
    matches!((origin(url), origin(base)), (Some(a), Some(b)) if a == b)
}

/// `write-back`: a reaction or a thread reply per result, per the `write_back` setting.
pub fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
    let mode = config::get("write_back").unwrap_or_else(|| "reaction".into());
    let mut outcomes = Vec::with_capacity(results.len());
    for r in &results {
        let outcome = match write_one(&mode, r) {
            Ok(done) => Ok(done),
            // Rate limited or a transient failure: fail the whole call so the host waits and
            // retries it. Reactions are idempotent (`already_reacted`) and thread replies are
            // remembered in state, so the retry does not write anything twice.
            Err(e @ (PluginError::RateLimited(_) | PluginError::Transient(_))) => return Err(e),
            Err(PluginError::Unauthorized(m)) => return Err(PluginError::Unauthorized(m)),
            Err(e) => Err(e),
        };
        outcomes.push(WriteOutcome {
            file_id: r.file.id.clone(),
            outcome,
        });
    }
    Ok(outcomes)
}

fn write_one(mode: &str, r: &FileResult) -> Result<WriteResult, PluginError> {
    // A result with an error is still written: a partial parse that found a risk (GPS read
    // before a broken preview IFD) is that risk, and an unreadable file is marked as such
    // rather than left looking unscanned.
    if mode == "off" {
        return Ok(WriteResult::Skipped(
            "write-back is off in the integration's settings (write_back = off)".into(),
        ));
    }
    let (Some(channel), Some(ts)) = (r.file.property("channel"), r.file.property("ts")) else {
        return Err(PluginError::fatal(format!(
            "file {} has no message to write back to; run a full sync to list it again",
            r.file.id
        )));
    };
    let high = r.risk.rank() >= RiskLevel::High.rank();
    let mut wrote = false;
    if matches!(mode, "reaction" | "thread-high") {
        react(channel, ts, mark_for(r))?;
        wrote = true;
    }
    if mode == "thread" || (mode == "thread-high" && high) {
        reply(channel, ts, r)?;
        wrote = true;
    }
    Ok(if wrote {
        WriteResult::Written
    } else {
        WriteResult::Skipped(format!(
            "the write_back setting '{}' writes nothing for this result",
            mode.chars().take(40).collect::<String>()
        ))
    })
}

/// The emoji that marks a result: its risk's, except that a file the analysis could not fully
/// read and found nothing worse than low in gets a question mark, never a check mark.
pub fn mark_for(r: &FileResult) -> &'static str {
    if r.error.is_some() && r.risk.rank() < RiskLevel::Medium.rank() {
        "grey_question"
    } else {
        reaction_for(r.risk)
    }
}

/// The emoji that marks a risk level.
pub fn reaction_for(risk: RiskLevel) -> &'static str {
    match risk {
        RiskLevel::None | RiskLevel::Low => "white_check_mark",
        RiskLevel::Medium => "warning",
        RiskLevel::High | RiskLevel::Critical => "rotating_light",
    }
}

fn react(channel: &str, ts: &str, name: &str) -> Result<(), PluginError> {
    let body = json!({"channel": channel, "timestamp": ts, "name": name});
    match api::post_json("reactions.add", &body) {
        Ok(_) => Ok(()),
        Err(ApiError::Slack(e)) if e.code == "already_reacted" => Ok(()),
        Err(ApiError::Slack(e)) if e.code == "message_not_found" => Err(PluginError::not_found(
            "the message that shared this file was deleted (message_not_found); there is \
             nothing left to mark in Slack",
        )),
        Err(e) => Err(crate::explain_for_channel(e, channel, "channels")),
    }
}

fn reply(channel: &str, ts: &str, r: &FileResult) -> Result<(), PluginError> {
    let key = format!(
        "replied/{}/{}/{}",
        r.file.id, r.file.version, r.policy_version
    );
    if state::get(&key).is_some() {
        return Ok(());
    }
    let message = result_message(r);
    crate::post(channel, &message, Some(ts))
        .map_err(|e| crate::explain_for_channel(e, channel, "channels"))?;
    let _ = state::set(&key, b"1");
    Ok(())
}

/// The thread reply for one result.
pub fn result_message(r: &FileResult) -> blocks::Message {
    let alert = FileAlert {
        integration: config::integration_id(),
        file: r.file.clone(),
        risk: r.risk,
        score: r.score,
        summary: r.summary.clone(),
        findings: r.findings.clone(),
    };
    let max = usize::try_from(config::integer("max_findings", 5).unwrap_or(5)).unwrap_or(5);
    let mut m = blocks::render(&Notification::HighRiskFiles(Digest::of(vec![alert])), max);
    // In a thread the header would shout; the first block is replaced by a plain line.
    if let Some(first) = m.blocks.first_mut() {
        *first = json!({"type": "section", "text": {"type": "mrkdwn", "text": reply_header(r)}});
    }
    m
}

/// The first line of a thread reply: the risk and score, and the analysis's error when the
/// file could not be read in full (escaped: it may quote the file's own bytes).
pub fn reply_header(r: &FileResult) -> String {
    let note = r
        .error
        .as_deref()
        .map(|e| {
            format!(
                " (the file could not be read in full: {})",
                blocks::escape(&truncate_chars(e, 200))
            )
        })
        .unwrap_or_default();
    format!(
        "*ProofPix:* {} risk, score {}/100{note}",
        r.risk.label(),
        r.score
    )
}

/// Orders Slack `ts` values (`seconds.micros`) numerically; an empty or odd value sorts first.
pub fn ts_key(ts: &str) -> (u64, u64) {
    let (s, f) = ts.split_once('.').unwrap_or((ts, "0"));
    (s.parse().unwrap_or(0), f.parse().unwrap_or(0))
}

/// RFC 3339 UTC for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(risk: RiskLevel, error: Option<&str>) -> FileResult {
        FileResult {
            file: RemoteFile {
                id: "F1".into(),
                name: "site.jpg".into(),
                ..RemoteFile::default()
            },
            format: "jpeg".into(),
            risk,
            score: 42,
            findings: vec![],
            summary: "GPS position".into(),
            error: error.map(str::to_string),
            analysed_at: "2026-01-01T00:00:00Z".into(),
            policy_version: "p1".into(),
        }
    }

    /// A partial parse that found a risk is marked with that risk; an unreadable file that
    /// found nothing is never marked as checked.
    #[test]
    fn a_result_with_an_error_is_marked_by_its_risk_or_as_unreadable() {
        let broken = Some("PreviewIFD: offset 2150 + length 2 is outside the file");
        assert_eq!(mark_for(&result(RiskLevel::Medium, broken)), "warning");
        assert_eq!(mark_for(&result(RiskLevel::High, broken)), "rotating_light");
        assert_eq!(mark_for(&result(RiskLevel::None, broken)), "grey_question");
        assert_eq!(mark_for(&result(RiskLevel::Low, broken)), "grey_question");
        assert_eq!(mark_for(&result(RiskLevel::None, None)), "white_check_mark");
    }

    #[test]
    fn a_thread_reply_notes_the_error_escaped() {
        let first = reply_header(&result(RiskLevel::Medium, Some("IFD <@U123> cut & short")));
        assert!(first.contains("could not be read in full"), "{first}");
        assert!(first.contains("&lt;@U123&gt; cut &amp; short"), "{first}");
        let clean = reply_header(&result(RiskLevel::Medium, None));
        assert!(!clean.contains("could not be read"), "{clean}");
        assert!(clean.contains("score 42/100"), "{clean}");
    }

    #[test]
    fn message_timestamps_order_numerically() {
        assert!(ts_key("1531763342.000200") > ts_key("1531763342.000199"));
        assert!(ts_key("1531763343.000001") > ts_key("1531763342.999999"));
        assert!(ts_key("") < ts_key("1.000001"));
    }

    #[test]
    fn epoch_seconds_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_531_763_342), "2018-07-16T17:49:02Z");
    }

    #[test]
    fn only_image_files_become_remote_files() {
        let ch = Channel {
            id: "C0123ABCD".into(),
            label: "#field".into(),
        };
        let img = json!({"id": "F1", "name": "a.jpg", "mimetype": "image/jpeg", "size": 10,
            "created": 1_531_763_342, "url_private_download": "https://files.slack.com/files-pri/T-F1/download/a.jpg",
            "permalink": "https://x.slack.com/files/U/F1/a.jpg"});
        let pdf = json!({"id": "F2", "name": "a.pdf", "mimetype": "application/pdf"});
        let f = remote_file(&img, &ch, "1531763342.000200");
        assert!(remote_file(&pdf, &ch, "1").is_none());
        let f = f.unwrap_or_default();
        assert_eq!(f.id, "F1");
        assert_eq!(f.version, "1531763342-10");
        assert_eq!(f.property("ts"), Some("1531763342.000200"));
        assert_eq!(f.path.as_deref(), Some("#field"));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            "https://files.slack.com/files-pri/x",
            "https://files.slack.com"
        ));
        assert!(!same_origin(
            "https://files.slack.com.evil.example/x",
            "https://files.slack.com"
        ));
        assert!(!same_origin("http://127.0.0.1:81/x", "http://127.0.0.1:80"));
    }
}
