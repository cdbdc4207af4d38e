//! The Slack Web API methods ProofPix uses, over an in-memory workspace (reference §4.2, §4.3,
//! §11), and the private-file host that serves `url_private`.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /api/chat.postMessage` (JSON or form) | validates channel, membership, text and blocks against the limits, records the message with its blocks |
//! | `GET/POST /api/conversations.history` | top-level messages newest first, `oldest`/`latest`, `limit`, cursor pagination (`response_metadata.next_cursor`, `has_more`) |
//! | `GET/POST /api/conversations.list`, `conversations.info` | channels the bot can see, membership, archived state |
//! | `GET/POST /api/files.info` | the full file object with its `shares` |
//! | `POST /api/reactions.add` | records a reaction; `already_reacted` on repeats |
//! | `GET {files}/files-pri/{team}-{file}/[download/]{name}` | file bytes for a valid bearer with `files:read`, `Range` honoured |
//!
//! Slack's conventions are kept exactly where clients trip over them: **every** failure but rate
//! limiting is HTTP 200 with `{"ok":false,"error":"code"}`; `missing_scope` carries `needed` and
//! `provided`; rate limiting is HTTP 429 with `Retry-After` (seconds) and
//! `{"ok":false,"error":"ratelimited"}`; a JSON `chat.postMessage` without `charset` gets
//! `warning: missing_charset`.
//!
//! Unverified facts are configuration ([`WorkspaceConfig`]): the block limits (§4.2 "hedge"),
//! the `msg_blocks_too_long` threshold (§10.4, content-dependent), whether the file host honours
//! `Range`, what it answers without a token (a redirect to the sign-in page by default), and
//! whether `url_private` first redirects from the API host to the file host. The reference does
//! not cover `conversations.*`, `files.info` or `reactions.add`; their shapes follow Slack's public
//! method documentation and are pinned by this crate's tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use url::Url;

use crate::common::{self, AccessProblem, ErrorReply, Fault, Harness, Tokens};

/// `chat.postMessage`.
pub const POST_MESSAGE_PATH: &str = "/api/chat.postMessage";
/// `conversations.history`.
pub const HISTORY_PATH: &str = "/api/conversations.history";
/// `conversations.list`.
pub const LIST_PATH: &str = "/api/conversations.list";
/// `conversations.info`.
pub const INFO_PATH: &str = "/api/conversations.info";
/// `files.info`.
pub const FILES_INFO_PATH: &str = "/api/files.info";
/// `reactions.add`.
pub const REACTIONS_ADD_PATH: &str = "/api/reactions.add";

/// The default bot's scopes: everything the ProofPix plugin may use.
pub const DEFAULT_BOT_SCOPES: &str = "chat:write,channels:history,groups:history,channels:read,groups:read,files:read,reactions:write";

/// What the file host answers to a request without a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnauthenticatedDownload {
    /// A 302 to the workspace's sign-in page, which answers 200 with HTML: a client that does not
    /// send the token gets a web page instead of the image, with a success status (unverified).
    SignInPage,
    /// This status with an empty body.
    Status(u16),
}

/// Per-channel posting limit (reference §4.3: about one message per second per channel).
#[derive(Clone, Copy, Debug)]
pub struct PostRate {
    /// Messages accepted per channel per second of the emulated clock.
    pub per_channel_per_second: u32,
    /// `Retry-After` answered, seconds.
    pub retry_after_secs: u64,
}

/// How the emulated workspace behaves.
#[derive(Clone, Debug)]
pub struct WorkspaceConfig {
    /// A static bot token the workspace accepts (as if copied from the app's OAuth page).
    pub bot_token: String,
    /// Its scopes, comma-separated.
    pub bot_scopes: String,
    /// The bot user's name, as `auth.test` reports it.
    pub bot_name: String,
    /// Most blocks per message. Default 50.
    pub max_blocks: usize,
    /// Longest `header` text. Default 150.
    pub max_header_chars: usize,
    /// Longest section text. Default 3,000.
    pub max_section_chars: usize,
    /// Longest section field. Default 2,000.
    pub max_field_chars: usize,
    /// Longest `text`; longer is `msg_too_long`. Default 40,000.
    pub max_text_chars: usize,
    /// Serialised `blocks` longer than this are `msg_blocks_too_long` (unverified; off by default).
    pub max_blocks_json_bytes: Option<usize>,
    /// Posting limit, per channel; `None` never throttles.
    pub post_rate: Option<PostRate>,
    /// Whether the file host honours `Range`. Default true (unverified).
    pub range_requests: bool,
    /// Whether `url_private` points at the API host, which redirects to the file host.
    pub files_via_redirect: bool,
    /// What a download without a valid token gets.
    pub unauthenticated_download: UnauthenticatedDownload,
    /// Create the default channels (see [`seed`]).
    pub seed_channels: bool,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            bot_token: super::fixtures::BOT_TOKEN.to_owned(),
            bot_scopes: DEFAULT_BOT_SCOPES.to_owned(),
            bot_name: "proofpix".to_owned(),
            max_blocks: 50,
            max_header_chars: 150,
            max_section_chars: 3000,
            max_field_chars: 2000,
            max_text_chars: 40_000,
            max_blocks_json_bytes: None,
            post_rate: None,
            range_requests: true,
            files_via_redirect: false,
            unauthenticated_download: UnauthenticatedDownload::SignInPage,
            seed_channels: true,
        }
    }
}

/// The channels every seeded workspace has.
pub mod seed {
    /// `#general`, public, bot is a member.
    pub const GENERAL: &str = "C07GENERAL1";
    /// `#compliance`, public, bot is a member: where alerts go.
    pub const COMPLIANCE: &str = "C07COMPLNC1";
    /// `#field-photos`, public, bot is a member: where people share photos.
    pub const FIELD_PHOTOS: &str = "C07FIELDPH1";
    /// `#random`, public, the bot is **not** a member.
    pub const RANDOM: &str = "C07RANDOM01";
    /// `#old-projects`, archived.
    pub const ARCHIVED: &str = "C07ARCHIVD1";
    /// `#incident-photos`, private, bot is a member.
    pub const PRIVATE: &str = "G07INCIDNT1";
}

/// A channel of the workspace.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Conversation ID.
    pub id: String,
    /// Name without `#`.
    pub name: String,
    /// Private channel.
    pub is_private: bool,
    /// Archived.
    pub is_archived: bool,
    /// Whether the bot is a member.
    pub bot_is_member: bool,
}

/// A file shared in the workspace.
#[derive(Clone, Debug)]
pub struct SharedFile {
    /// `F…` ID.
    pub id: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub mimetype: String,
    /// Slack's short type (`jpg`, `png`, ...).
    pub filetype: String,
    /// Content.
    pub bytes: Arc<Vec<u8>>,
    /// Upload time, epoch seconds.
    pub created: i64,
    /// Uploader.
    pub user: String,
    /// Listed as `file_access: check_file_info` in history, so clients must call `files.info`.
    pub withheld: bool,
    /// Listed as `mode: hidden_by_limit` (a free workspace's history limit).
    pub hidden_by_limit: bool,
    /// Deleted: `files.info` says `file_deleted`, downloads 404.
    pub deleted: bool,
    /// Where it was shared: (channel, message ts).
    pub shares: Vec<(String, String)>,
}

/// A message in a channel's history.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Channel ID.
    pub channel: String,
    /// Message `ts`.
    pub ts: String,
    /// Author.
    pub user: String,
    /// Text.
    pub text: String,
    /// Files shared with it.
    pub files: Vec<String>,
    /// Set for thread replies (not listed in history).
    pub thread_ts: Option<String>,
    /// Blocks, for bot messages.
    pub blocks: Option<Value>,
    /// Posted by the bot through `chat.postMessage`.
    pub by_bot: bool,
}

/// A message the bot posted with `chat.postMessage`.
#[derive(Clone, Debug)]
pub struct PostedMessage {
    /// Channel ID it landed in.
    pub channel: String,
    /// Its `ts`.
    pub ts: String,
    /// `text`, if sent.
    pub text: Option<String>,
    /// `blocks`, if sent.
    pub blocks: Option<Value>,
    /// `thread_ts`, for replies.
    pub thread_ts: Option<String>,
    /// The request's arguments as received.
    pub args: Value,
}

impl PostedMessage {
    /// The `blocks` array (empty when none were sent).
    pub fn block_list(&self) -> Vec<Value> {
        self.blocks
            .as_ref()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Every `text` inside the blocks, joined by newlines (for assertions).
    pub fn block_text(&self) -> String {
        let mut out = Vec::new();
        collect_text(self.blocks.as_ref().unwrap_or(&Value::Null), &mut out);
        out.join("\n")
    }
}

fn collect_text(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(t)) = map.get("text") {
                out.push(t.clone());
            }
            for (k, child) in map {
                if k != "text" || !child.is_string() {
                    collect_text(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        _ => {}
    }
}

/// A reaction the bot added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// Channel ID.
    pub channel: String,
    /// Message `ts`.
    pub ts: String,
    /// Emoji name.
    pub name: String,
}

#[derive(Debug, Default)]
struct Data {
    channels: Vec<Channel>,
    files: BTreeMap<String, SharedFile>,
    messages: Vec<StoredMessage>,
    posted: Vec<PostedMessage>,
    reactions: Vec<Reaction>,
    last_ts: (i64, u32),
    next_file: u32,
    invalidate_cursors: u32,
    posts_this_second: BTreeMap<(String, i64), u32>,
    bytes_served: u64,
}

/// The workspace behind the emulator: channels, messages, files, and what the bot did. Clones
/// share state.
#[derive(Clone, Debug)]
pub struct Workspace {
    data: Arc<Mutex<Data>>,
    config: Arc<WorkspaceConfig>,
    harness: Harness,
    tokens: Tokens,
    api_base: Url,
    files_base: Url,
    team_id: String,
    bot_user_id: String,
}

impl Workspace {
    pub(crate) fn new(
        config: WorkspaceConfig,
        harness: Harness,
        tokens: Tokens,
        api_base: Url,
        files_base: Url,
        team_id: &str,
        bot_user_id: &str,
    ) -> Self {
        tokens.issue_access(
            config.bot_token.clone(),
            "workspace-install",
            bot_user_id,
            &config.bot_scopes,
            None,
        );
        let w = Workspace {
            data: Arc::default(),
            config: Arc::new(config),
            harness,
            tokens,
            api_base,
            files_base,
            team_id: team_id.to_owned(),
            bot_user_id: bot_user_id.to_owned(),
        };
        if w.config.seed_channels {
            for (id, name, private, archived, member) in [
                (seed::GENERAL, "general", false, false, true),
                (seed::COMPLIANCE, "compliance", false, false, true),
                (seed::FIELD_PHOTOS, "field-photos", false, false, true),
                (seed::RANDOM, "random", false, false, false),
                (seed::ARCHIVED, "old-projects", false, true, true),
                (seed::PRIVATE, "incident-photos", true, false, true),
            ] {
                w.add_channel(Channel {
                    id: id.into(),
                    name: name.into(),
                    is_private: private,
                    is_archived: archived,
                    bot_is_member: member,
                });
            }
        }
        w
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &WorkspaceConfig {
        &self.config
    }

    /// Adds (or replaces) a channel.
    pub fn add_channel(&self, channel: Channel) {
        let mut d = self.data();
        d.channels.retain(|c| c.id != channel.id);
        d.channels.push(channel);
    }

    /// Changes a channel in place (invite the bot, archive it, ...).
    pub fn update_channel(&self, id: &str, f: impl FnOnce(&mut Channel)) {
        if let Some(c) = self.data().channels.iter_mut().find(|c| c.id == id) {
            f(c);
        }
    }

    /// The ID of a channel by name (without `#`).
    pub fn channel_id(&self, name: &str) -> Option<String> {
        self.data()
            .channels
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
    }

    /// A new message `ts`: the emulated clock's second, with a counter that keeps every `ts`
    /// unique and increasing even while the clock stands still.
    fn next_ts(d: &mut Data, now: i64) -> String {
        let (secs, micros) = if now > d.last_ts.0 {
            (now, 100)
        } else {
            (d.last_ts.0, d.last_ts.1 + 1)
        };
        d.last_ts = (secs, micros);
        format!("{secs}.{micros:06}")
    }

    /// A member shares `files` (name, MIME type, bytes) in one message in `channel`. Returns the
    /// message `ts` and the new file IDs.
    pub fn share(&self, channel: &str, files: &[(&str, &str, Vec<u8>)]) -> (String, Vec<String>) {
        let now = self.harness.clock.unix_seconds();
        let mut d = self.data();
        let ts = Self::next_ts(&mut d, now);
        let mut ids = Vec::new();
        for (name, mime, bytes) in files {
            d.next_file += 1;
            let id = format!("F07EMU{:05}", d.next_file);
            let filetype = name
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            d.files.insert(
                id.clone(),
                SharedFile {
                    id: id.clone(),
                    name: (*name).to_owned(),
                    mimetype: (*mime).to_owned(),
                    filetype,
                    bytes: Arc::new(bytes.clone()),
                    created: now,
                    user: "U07MEMBER01".into(),
                    withheld: false,
                    hidden_by_limit: false,
                    deleted: false,
                    shares: vec![(channel.to_owned(), ts.clone())],
                },
            );
            ids.push(id);
        }
        d.messages.push(StoredMessage {
            channel: channel.to_owned(),
            ts: ts.clone(),
            user: "U07MEMBER01".into(),
            text: String::new(),
            files: ids.clone(),
            thread_ts: None,
            blocks: None,
            by_bot: false,
        });
        (ts, ids)
    }

    /// A member shares one image; returns (message ts, file ID).
    pub fn share_image(&self, channel: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
        let mime = if name.to_ascii_lowercase().ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let (ts, ids) = self.share(channel, &[(name, mime, bytes)]);
        (ts, ids.into_iter().next().unwrap_or_default())
    }

    /// A member posts a text message.
    pub fn say(&self, channel: &str, text: &str) -> String {
        let now = self.harness.clock.unix_seconds();
        let mut d = self.data();
        let ts = Self::next_ts(&mut d, now);
        d.messages.push(StoredMessage {
            channel: channel.to_owned(),
            ts: ts.clone(),
            user: "U07MEMBER01".into(),
            text: text.to_owned(),
            files: vec![],
            thread_ts: None,
            blocks: None,
            by_bot: false,
        });
        ts
    }

    /// A member deletes a message (its files stay, as in Slack).
    pub fn delete_message(&self, channel: &str, ts: &str) {
        self.data()
            .messages
            .retain(|m| !(m.channel == channel && m.ts == ts));
    }

    /// Changes a file in place (withhold it, delete it, ...).
    pub fn update_file(&self, id: &str, f: impl FnOnce(&mut SharedFile)) {
        if let Some(file) = self.data().files.get_mut(id) {
            f(file);
        }
    }

    /// The next request that carries a cursor gets `invalid_cursor` (a cursor that expired).
    pub fn invalidate_next_cursor(&self) {
        self.data().invalidate_cursors += 1;
    }

    /// Messages the bot posted, oldest first.
    pub fn posted(&self) -> Vec<PostedMessage> {
        self.data().posted.clone()
    }

    /// Reactions the bot added, oldest first.
    pub fn reactions(&self) -> Vec<Reaction> {
        self.data().reactions.clone()
    }

    /// File bytes the file host has sent.
    pub fn bytes_served(&self) -> u64 {
        self.data().bytes_served
    }

    /// A file by ID.
    pub fn file(&self, id: &str) -> Option<SharedFile> {
        self.data().files.get(id).cloned()
    }

    /// The full file object Slack returns for `id` (as in `files.info` and history), with its
    /// shares.
    pub fn file_object(&self, id: &str) -> Option<Value> {
        let d = self.data();
        let f = d.files.get(id)?;
        Some(self.file_json(&d, f, true))
    }

    /// The inner event of a `file_shared` Events API callback for `file_id` (reference §9: the
    /// `FileSharedPayload` shape).
    pub fn file_shared_event(&self, file_id: &str) -> Option<Value> {
        let d = self.data();
        let f = d.files.get(file_id)?;
        let (channel, ts) = f.shares.first()?;
        Some(json!({
            "type": "file_shared", "channel_id": channel, "file_id": f.id,
            "user_id": f.user, "file": {"id": f.id}, "event_ts": ts,
        }))
    }

    /// The inner event of a `message` callback for the message `ts` in `channel`, with its files
    /// (reference §9: `MessageFileSharePayload`).
    pub fn message_event(&self, channel: &str, ts: &str) -> Option<Value> {
        let d = self.data();
        let m = d
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)?;
        Some(self.message_json(&d, m, "message"))
    }

    fn url_private(&self, f: &SharedFile, download: bool) -> String {
        let base = if self.config.files_via_redirect {
            &self.api_base
        } else {
            &self.files_base
        };
        let path = if download {
            format!("files-pri/{}-{}/download/{}", self.team_id, f.id, f.name)
        } else {
            format!("files-pri/{}-{}/{}", self.team_id, f.id, f.name)
        };
        base.join(&path).map(|u| u.to_string()).unwrap_or_default()
    }

    fn file_json(&self, d: &Data, f: &SharedFile, with_shares: bool) -> Value {
        let mut v = json!({
            "id": f.id, "created": f.created, "timestamp": f.created, "name": f.name,
            "title": f.name, "mimetype": f.mimetype, "filetype": f.filetype,
            "pretty_type": f.filetype.to_ascii_uppercase(), "user": f.user,
            "user_team": self.team_id, "editable": false, "size": f.bytes.len(),
            "mode": "hosted", "is_external": false, "external_type": "", "is_public": true,
            "public_url_shared": false, "display_as_bot": false, "username": "",
            "url_private": self.url_private(f, false),
            "url_private_download": self.url_private(f, true),
            "permalink": format!("https://proofpix-emu.slack.com/files/{}/{}/{}", f.user, f.id, f.name),
            "permalink_public": format!("https://slack-files.com/{}-{}-0000000000", self.team_id, f.id),
            "has_rich_preview": false, "file_access": "visible",
        });
        if with_shares {
            let mut public = serde_json::Map::new();
            let mut private = serde_json::Map::new();
            for (ch, ts) in &f.shares {
                let Some(c) = d.channels.iter().find(|c| c.id == *ch) else {
                    continue;
                };
                let share = json!([{"reply_users": [], "reply_users_count": 0, "reply_count": 0,
                    "ts": ts, "channel_name": c.name, "team_id": self.team_id}]);
                if c.is_private {
                    private.insert(ch.clone(), share);
                } else {
                    public.insert(ch.clone(), share);
                }
            }
            let mut shares = serde_json::Map::new();
            if !public.is_empty() {
                shares.insert("public".into(), Value::Object(public));
            }
            if !private.is_empty() {
                shares.insert("private".into(), Value::Object(private));
            }
            v["shares"] = Value::Object(shares);
            v["channels"] = json!(f.shares.iter().map(|(c, _)| c).collect::<Vec<_>>());
        }
        v
    }

    fn message_json(&self, d: &Data, m: &StoredMessage, kind: &str) -> Value {
        let mut v = json!({"type": kind, "user": m.user, "text": m.text, "ts": m.ts});
        if kind == "message" && !m.files.is_empty() {
            // The Events API still tags file shares with a subtype.
            v["subtype"] = json!("file_share");
            v["channel"] = json!(m.channel);
            v["event_ts"] = json!(m.ts);
            v["channel_type"] = json!("channel");
        }
        if m.by_bot {
            v["bot_id"] = json!("B0EMU0001");
            v["app_id"] = json!("A0KRD7HC3");
            v["user"] = json!(self.bot_user_id);
        }
        if let Some(b) = &m.blocks {
            v["blocks"] = b.clone();
        }
        if !m.files.is_empty() {
            let files: Vec<Value> = m
                .files
                .iter()
                .filter_map(|id| d.files.get(id))
                .map(|f| {
                    if f.hidden_by_limit {
                        json!({"id": f.id, "mode": "hidden_by_limit"})
                    } else if f.deleted {
                        json!({"id": f.id, "mode": "tombstone"})
                    } else if f.withheld {
                        json!({"id": f.id, "file_access": "check_file_info",
                               "created": f.created, "timestamp": f.created, "user": f.user})
                    } else {
                        self.file_json(d, f, false)
                    }
                })
                .collect();
            v["files"] = json!(files);
            v["upload"] = json!(true);
            v["display_as_bot"] = json!(false);
        }
        v
    }
}

/// `ok:false` with HTTP 200, Slack's error convention.
pub(crate) fn not_ok(error: &str) -> Response {
    ErrorReply::json(200, json!({"ok": false, "error": error})).into_response()
}

/// The 429 Slack sends when rate limiting (reference §4.3), as a fault to inject on any route:
/// `faults.once(POST_MESSAGE_PATH, slack::web::ratelimited(1))`.
pub fn ratelimited(retry_after_secs: u64) -> Fault {
    Fault::Respond(ratelimited_reply(retry_after_secs))
}

/// The reply behind [`ratelimited`].
pub fn ratelimited_reply(retry_after_secs: u64) -> ErrorReply {
    ErrorReply::json(429, json!({"ok": false, "error": "ratelimited"}))
        .with_header("retry-after", &retry_after_secs.to_string())
}

/// An `ok:false` error with HTTP 200, as a fault (`channel_not_found`, `invalid_auth`, ...).
pub fn error_fault(code: &str) -> Fault {
    Fault::Respond(ErrorReply::json(200, json!({"ok": false, "error": code})))
}

/// Arguments of a Web API call: query string, form body or JSON body, merged.
struct Args {
    map: serde_json::Map<String, Value>,
    json: bool,
    charset: bool,
    token: Option<String>,
}

impl Args {
    fn parse(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Self, Box<Response>> {
        let mut map = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned())
                .or_insert(Value::String(v.into_owned()));
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let json = content_type.starts_with("application/json");
        if json && !body.is_empty() {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                _ => return Err(Box::new(not_ok("invalid_json"))),
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(body) {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        let bearer = common::bearer(headers, false);
        // JSON bodies must authenticate with the header; the `token` argument works for forms.
        let token = bearer.or_else(|| {
            (!json)
                .then(|| map.get("token").and_then(Value::as_str).map(String::from))
                .flatten()
        });
        Ok(Args {
            map,
            json,
            charset: content_type.contains("charset"),
            token,
        })
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.map
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Routes of the Web API (on the API server).
pub(crate) fn api_routes(w: Workspace) -> Router {
    Router::new()
        .route(POST_MESSAGE_PATH, post(post_message))
        .route(HISTORY_PATH, get(history).post(history))
        .route(LIST_PATH, get(list).post(list))
        .route(INFO_PATH, get(info).post(info))
        .route(FILES_INFO_PATH, get(files_info).post(files_info))
        .route(REACTIONS_ADD_PATH, post(reactions_add))
        .route("/files-pri/{*rest}", get(files_redirect))
        .route("/", get(sign_in_page))
        .with_state(w)
}

/// Routes of the private-file host.
pub(crate) fn file_routes(w: Workspace) -> Router {
    Router::new()
        .route("/files-pri/{*rest}", get(download))
        .with_state(w)
}

/// The call's token and scopes, or the `ok:false` answer.
fn authorize(w: &Workspace, args: &Args, needed: &str) -> Result<(), Box<Response>> {
    let Some(token) = args.token.as_deref() else {
        return Err(Box::new(not_ok("not_authed")));
    };
    let grant = match w.tokens.check_access(token, w.harness.clock.now()) {
        Ok(g) => g,
        Err(AccessProblem::Expired) => return Err(Box::new(not_ok("token_expired"))),
        Err(AccessProblem::Revoked) => return Err(Box::new(not_ok("token_revoked"))),
        Err(AccessProblem::Unknown) => return Err(Box::new(not_ok("invalid_auth"))),
    };
    let has = |s: &str| grant.scope.split([',', ' ']).any(|g| g == s);
    if !needed.is_empty() && !has(needed) {
        return Err(Box::new(
            ErrorReply::json(
                200,
                json!({"ok": false, "error": "missing_scope", "needed": needed, "provided": grant.scope}),
            )
            .into_response(),
        ));
    }
    Ok(())
}

fn find_channel(d: &Data, key: &str) -> Option<Channel> {
    let key = key.trim().trim_start_matches('#');
    d.channels
        .iter()
        .find(|c| c.id == key || c.name == key)
        .cloned()
}

fn channel_scope(c: &Channel, public: &'static str, private: &'static str) -> &'static str {
    if c.is_private { private } else { public }
}

async fn post_message(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if let Err(r) = authorize(&w, &args, "chat:write") {
        return *r;
    }
    let cfg = w.config.clone();
    let now = w.harness.clock.unix_seconds();
    let mut d = w.data();
    let Some(channel) = args.str("channel").and_then(|c| find_channel(&d, c)) else {
        return not_ok("channel_not_found");
    };
    // A private channel the bot is not in does not exist, as far as the bot can tell.
    if channel.is_private && !channel.bot_is_member {
        return not_ok("channel_not_found");
    }
    if channel.is_archived {
        return not_ok("is_archived");
    }
    if !channel.bot_is_member {
        let public_ok = !channel.is_private
            && w.tokens
                .check_access(
                    args.token.as_deref().unwrap_or_default(),
                    w.harness.clock.now(),
                )
                .is_ok_and(|g| g.scope.split([',', ' ']).any(|s| s == "chat:write.public"));
        if !public_ok {
            return not_ok("not_in_channel");
        }
    }
    if let Some(rate) = cfg.post_rate {
        let n = d
            .posts_this_second
            .entry((channel.id.clone(), now))
            .or_default();
        if *n >= rate.per_channel_per_second {
            return ratelimited_reply(rate.retry_after_secs).into_response();
        }
        *n += 1;
    }
    let text = args.str("text").map(String::from);
    let blocks = match args.map.get("blocks") {
        None => None,
        // Form posts send blocks as a JSON string.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => Some(v),
            Err(_) => return not_ok("invalid_blocks_format"),
        },
        Some(v) => Some(v.clone()),
    };
    if text.is_none()
        && blocks
            .as_ref()
            .is_none_or(|b| b.as_array().is_none_or(Vec::is_empty))
    {
        return not_ok("no_text");
    }
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > cfg.max_text_chars)
    {
        return not_ok("msg_too_long");
    }
    if let Some(b) = &blocks {
        if let Err(problem) = check_blocks(b, &cfg) {
            return ErrorReply::json(
                200,
                json!({"ok": false, "error": "invalid_blocks",
                       "response_metadata": {"messages": [format!("[ERROR] {problem}")]}}),
            )
            .into_response();
        }
        if cfg
            .max_blocks_json_bytes
            .is_some_and(|max| b.to_string().len() > max)
        {
            return not_ok("msg_blocks_too_long");
        }
    }
    let ts = Workspace::next_ts(&mut d, now);
    let thread_ts = args.str("thread_ts").map(String::from);
    d.posted.push(PostedMessage {
        channel: channel.id.clone(),
        ts: ts.clone(),
        text: text.clone(),
        blocks: blocks.clone(),
        thread_ts: thread_ts.clone(),
        args: Value::Object(args.map.clone()),
    });
    d.messages.push(StoredMessage {
        channel: channel.id.clone(),
        ts: ts.clone(),
        user: w.bot_user_id.clone(),
        text: text.clone().unwrap_or_default(),
        files: vec![],
        thread_ts,
        blocks: blocks.clone(),
        by_bot: true,
    });
    let mut message = json!({"type": "message", "text": text.unwrap_or_default(),
        "user": w.bot_user_id, "bot_id": "B0EMU0001", "app_id": "A0KRD7HC3", "ts": ts});
    if let Some(b) = blocks {
        message["blocks"] = b;
    }
    let mut reply = json!({"ok": true, "channel": channel.id, "ts": ts, "message": message});
    if args.json && !args.charset {
        reply["warning"] = json!("missing_charset");
        reply["response_metadata"] = json!({"warnings": ["missing_charset"]});
    }
    axum::Json(reply).into_response()
}

/// Validates blocks against the configured limits; the error is Slack's style of message with a
/// JSON pointer.
fn check_blocks(blocks: &Value, cfg: &WorkspaceConfig) -> Result<(), String> {
    let Some(list) = blocks.as_array() else {
        return Err("must be an array [json-pointer:/blocks]".into());
    };
    if list.len() > cfg.max_blocks {
        return Err(format!(
            "must be less than {} items [json-pointer:/blocks]",
            cfg.max_blocks + 1
        ));
    }
    for (i, b) in list.iter().enumerate() {
        let at = |p: &str| format!("[json-pointer:/blocks/{i}{p}]");
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        let text_len = |v: &Value| {
            v.get("text")
                .and_then(Value::as_str)
                .map_or(0, |t| t.chars().count())
        };
        match kind {
            "header" => {
                let t = b.get("text").cloned().unwrap_or(Value::Null);
                if t.get("type").and_then(Value::as_str) != Some("plain_text") {
                    return Err(format!("must be a plain_text object {}", at("/text")));
                }
                if text_len(&t) > cfg.max_header_chars {
                    return Err(format!(
                        "must be less than {} characters {}",
                        cfg.max_header_chars + 1,
                        at("/text/text")
                    ));
                }
            }
            "section" => {
                let text = b.get("text");
                let fields = b.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    return Err(format!("must provide either text or fields {}", at("")));
                }
                if let Some(t) = text
                    && text_len(t) > cfg.max_section_chars
                {
                    return Err(format!(
                        "must be less than {} characters {}",
                        cfg.max_section_chars + 1,
                        at("/text/text")
                    ));
                }
                if let Some(f) = fields {
                    if f.len() > 10 {
                        return Err(format!("must be less than 11 items {}", at("/fields")));
                    }
                    for (j, field) in f.iter().enumerate() {
                        if text_len(field) > cfg.max_field_chars {
                            return Err(format!(
                                "must be less than {} characters {}",
                                cfg.max_field_chars + 1,
                                at(&format!("/fields/{j}/text"))
                            ));
                        }
                    }
                }
            }
            "context" => {
                let n = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if n == 0 || n > 10 {
                    return Err(format!("must have 1 to 10 elements {}", at("/elements")));
                }
            }
            "divider" | "actions" | "image" | "rich_text" | "input" | "file" | "video" => {}
            "" => return Err(format!("missing required field: type {}", at(""))),
            other => return Err(format!("unsupported type: {other} {}", at("/type"))),
        }
    }
    Ok(())
}

fn decode_cursor(cursor: &str, prefix: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(prefix)
        .map(String::from)
}

fn encode_cursor(prefix: &str, value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{value}"))
}

fn ts_key(ts: &str) -> (i64, i64) {
    let (s, f) = ts.split_once('.').unwrap_or((ts, "0"));
    (s.parse().unwrap_or(0), f.parse().unwrap_or(0))
}

async fn history(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let mut d = w.data();
    let Some(channel) = args
        .str("channel")
        .and_then(|c| d.channels.iter().find(|ch| ch.id == c).cloned())
    else {
        // History takes IDs only.
        drop(d);
        return match authorize(&w, &args, "") {
            Err(r) => *r,
            Ok(()) => not_ok("channel_not_found"),
        };
    };
    let scope = channel_scope(&channel, "channels:history", "groups:history");
    if let Err(r) = authorize(&w, &args, scope) {
        return *r;
    }
    if channel.is_private && !channel.bot_is_member {
        return not_ok("channel_not_found");
    }
    if !channel.bot_is_member {
        return not_ok("not_in_channel");
    }
    let limit = args
        .str("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let mut start: Option<(i64, i64)> = None;
    if let Some(c) = args.str("cursor") {
        if d.invalidate_cursors > 0 {
            d.invalidate_cursors -= 1;
            return not_ok("invalid_cursor");
        }
        match decode_cursor(c, "next_ts:") {
            Some(ts) => start = Some(ts_key(&ts)),
            None => return not_ok("invalid_cursor"),
        }
    }
    let oldest = args.str("oldest").map(ts_key);
    let latest = args.str("latest").map(ts_key);
    let inclusive = args
        .str("inclusive")
        .is_some_and(|v| v == "true" || v == "1");
    let mut messages: Vec<&StoredMessage> = d
        .messages
        .iter()
        .filter(|m| m.channel == channel.id && m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
        .filter(|m| {
            let k = ts_key(&m.ts);
            oldest.is_none_or(|o| if inclusive { k >= o } else { k > o })
                && latest.is_none_or(|l| if inclusive { k <= l } else { k < l })
                && start.is_none_or(|s| k <= s)
        })
        .collect();
    messages.sort_by_key(|m| std::cmp::Reverse(ts_key(&m.ts)));
    let has_more = messages.len() > limit;
    let next = messages.get(limit).map(|m| m.ts.clone());
    let page: Vec<Value> = messages
        .iter()
        .take(limit)
        .map(|m| w.message_json(&d, m, "message_history"))
        .map(|mut v| {
            v["type"] = json!("message");
            v
        })
        .collect();
    let mut reply = json!({
        "ok": true, "messages": page, "has_more": has_more, "pin_count": 0,
        "channel_actions_ts": null, "channel_actions_count": 0,
    });
    if let Some(ts) = next {
        reply["response_metadata"] = json!({"next_cursor": encode_cursor("next_ts:", &ts)});
    }
    axum::Json(reply).into_response()
}

fn channel_json(c: &Channel) -> Value {
    json!({
        "id": c.id, "name": c.name, "is_channel": !c.is_private, "is_group": c.is_private,
        "is_im": false, "is_mpim": false, "is_private": c.is_private, "created": 1_700_000_000,
        "is_archived": c.is_archived, "is_general": c.name == "general", "is_shared": false,
        "is_ext_shared": false, "is_org_shared": false, "is_member": c.bot_is_member,
        "name_normalized": c.name, "num_members": 12,
    })
}

async fn list(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let types = args.str("types").unwrap_or("public_channel").to_owned();
    let wants_private = types.contains("private_channel");
    let scope = if types.contains("public_channel") || !wants_private {
        "channels:read"
    } else {
        "groups:read"
    };
    if let Err(r) = authorize(&w, &args, scope) {
        return *r;
    }
    if wants_private && let Err(r) = authorize(&w, &args, "groups:read") {
        return *r;
    }
    let exclude_archived = args
        .str("exclude_archived")
        .is_some_and(|v| v == "true" || v == "1");
    let limit = args
        .str("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let after = match args.str("cursor") {
        Some(c) => match decode_cursor(c, "team:") {
            Some(id) => Some(id),
            None => return not_ok("invalid_cursor"),
        },
        None => None,
    };
    let d = w.data();
    let mut visible: Vec<&Channel> = d
        .channels
        .iter()
        .filter(|c| {
            (if c.is_private {
                wants_private && c.bot_is_member
            } else {
                types.contains("public_channel")
            }) && !(exclude_archived && c.is_archived)
        })
        .collect();
    visible.sort_by(|a, b| a.id.cmp(&b.id));
    let start = after.map_or(0, |id| {
        visible
            .iter()
            .position(|c| c.id == id)
            .unwrap_or(visible.len())
    });
    let page: Vec<Value> = visible
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| channel_json(c))
        .collect();
    let next = visible
        .get(start + limit)
        .map(|c| encode_cursor("team:", &c.id))
        .unwrap_or_default();
    axum::Json(json!({"ok": true, "channels": page, "response_metadata": {"next_cursor": next}}))
        .into_response()
}

async fn info(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let channel = {
        let d = w.data();
        args.str("channel")
            .and_then(|c| d.channels.iter().find(|ch| ch.id == c).cloned())
    };
    let scope = channel.as_ref().map_or("channels:read", |c| {
        channel_scope(c, "channels:read", "groups:read")
    });
    if let Err(r) = authorize(&w, &args, scope) {
        return *r;
    }
    match channel {
        Some(c) if !c.is_private || c.bot_is_member => {
            axum::Json(json!({"ok": true, "channel": channel_json(&c)})).into_response()
        }
        _ => not_ok("channel_not_found"),
    }
}

async fn files_info(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if let Err(r) = authorize(&w, &args, "files:read") {
        return *r;
    }
    let d = w.data();
    match args.str("file").and_then(|id| d.files.get(id)) {
        Some(f) if f.deleted => not_ok("file_deleted"),
        Some(f) if f.hidden_by_limit => not_ok("file_not_found"),
        Some(f) => axum::Json(json!({
            "ok": true, "file": w.file_json(&d, f, true), "comments": [],
            "response_metadata": {"next_cursor": ""},
        }))
        .into_response(),
        None => not_ok("file_not_found"),
    }
}

async fn reactions_add(
    State(w): State<Workspace>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = match Args::parse(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if let Err(r) = authorize(&w, &args, "reactions:write") {
        return *r;
    }
    let mut d = w.data();
    let Some(channel) = args.str("channel").and_then(|c| find_channel(&d, c)) else {
        return not_ok("channel_not_found");
    };
    if channel.is_private && !channel.bot_is_member {
        return not_ok("channel_not_found");
    }
    if channel.is_archived {
        return not_ok("is_archived");
    }
    let name = args
        .str("name")
        .unwrap_or_default()
        .trim_matches(':')
        .to_owned();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b))
    {
        return not_ok("invalid_name");
    }
    let ts = args.str("timestamp").unwrap_or_default().to_owned();
    if !d
        .messages
        .iter()
        .any(|m| m.channel == channel.id && m.ts == ts)
    {
        return not_ok("message_not_found");
    }
    let reaction = Reaction {
        channel: channel.id.clone(),
        ts,
        name,
    };
    if d.reactions.contains(&reaction) {
        return not_ok("already_reacted");
    }
    d.reactions.push(reaction);
    axum::Json(json!({"ok": true})).into_response()
}

/// `url_private` on the API host (with `files_via_redirect`): a 302 to the file host.
async fn files_redirect(State(w): State<Workspace>, Path(rest): Path<String>) -> Response {
    let target = w
        .files_base
        .join(&format!("files-pri/{rest}"))
        .map(|u| u.to_string())
        .unwrap_or_default();
    ErrorReply::empty(302)
        .with_header("location", &target)
        .into_response()
}

async fn sign_in_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in to your workspace</body></html>",
    )
        .into_response()
}

async fn download(
    State(w): State<Workspace>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    // `{team}-{file}/{name}` or `{team}-{file}/download/{name}`.
    let first = rest.split('/').next().unwrap_or_default();
    let file_id = first
        .strip_prefix(&format!("{}-", w.team_id))
        .unwrap_or_default()
        .to_owned();
    let as_attachment = rest.split('/').nth(1) == Some("download");
    let authorized = common::bearer(&headers, false).is_some_and(|t| {
        w.tokens
            .check_access(&t, w.harness.clock.now())
            .is_ok_and(|g| g.scope.split([',', ' ']).any(|s| s == "files:read"))
    });
    if !authorized {
        return match w.config.unauthenticated_download {
            UnauthenticatedDownload::SignInPage => {
                let mut target = w.api_base.clone();
                target.set_path("/");
                target
                    .query_pairs_mut()
                    .append_pair("redir", &format!("/files-pri/{rest}"));
                ErrorReply::empty(302)
                    .with_header("location", target.as_str())
                    .into_response()
            }
            UnauthenticatedDownload::Status(s) => ErrorReply::empty(s).into_response(),
        };
    }
    let file = w.data().files.get(&file_id).cloned();
    let Some(file) = file.filter(|f| !f.deleted) else {
        return ErrorReply::text(404, "file not found").into_response();
    };
    let total = file.bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| w.config.range_requests)
        .map(|r| parse_range(r, total));
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, file.mimetype.as_str())
        .header("x-robots-tag", "noindex");
    if w.config.range_requests {
        builder = builder.header(header::ACCEPT_RANGES, "bytes");
    }
    if as_attachment {
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.name.replace('"', "")),
        );
    }
    let (status, body) = match range {
        Some(Some((start, end))) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                file.bytes.get(start..=end).unwrap_or_default().to_vec(),
            )
        }
        Some(None) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{total}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
        None => (StatusCode::OK, file.bytes.to_vec()),
    };
    w.data().bytes_served += body.len() as u64;
    builder
        .status(status)
        .body(Body::from(body))
        .unwrap_or_default()
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` over `total` bytes: the inclusive `(start, end)`, or
/// `None` when unsatisfiable (or malformed). Of several ranges only the first is served.
fn parse_range(header: &str, total: usize) -> Option<(usize, usize)> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")?
        .split(',')
        .next()?
        .trim();
    let (a, b) = spec.split_once('-')?;
    let last = total.checked_sub(1)?;
    match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (n > 0).then(|| (total.saturating_sub(n), last))
        }
        (s, "") => {
            let s: usize = s.parse().ok()?;
            (s <= last).then_some((s, last))
        }
        (s, e) => {
            let (s, e): (usize, usize) = (s.parse().ok()?, e.parse().ok()?);
            (s <= e && s <= last).then(|| (s, e.min(last)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110_forms() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-200", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }

    #[test]
    fn block_limits_are_enforced_with_slack_style_pointers() {
        let cfg = WorkspaceConfig::default();
        let long = "x".repeat(3001);
        let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": long}}]);
        assert_eq!(
            check_blocks(&blocks, &cfg),
            Err("must be less than 3001 characters [json-pointer:/blocks/0/text/text]".into())
        );
        let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert!(check_blocks(&json!(many), &cfg).is_err());
        assert!(check_blocks(&json!([{"type": "bogus"}]), &cfg).is_err());
    }
}
