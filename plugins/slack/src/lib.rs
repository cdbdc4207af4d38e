//! The Slack connector: notifications to a channel, images shared in channels as a source, and
//! Events API requests as change signals (reference §4).
//!
//! - **notify** posts a Block Kit message with `chat.postMessage` for high-risk files (one
//!   message per file, or one digest for many), batch completion, failure and unhealthy
//!   integrations ([`blocks`]). Slack's `ok:false` answers with HTTP 200 become errors that say
//!   what to fix ([`api::explain`]); a refused message shape is retried once as a compact
//!   message.
//! - **source** lists image files shared in the configured channels (`conversations.history`,
//!   cursor pagination, `files.info` when a file object is withheld) and remembers, per
//!   channel, the newest message `ts` seen, so the next run asks only for newer messages
//!   ([`source`]).
//! - **events** verifies Events API requests through the host (`v0` HMAC of
//!   `v0:{timestamp}:{body}` with the signing secret, 5-minute replay window), answers the
//!   `url_verification` challenge, and turns `file_shared`/`message` events into changed files
//!   ([`events`]).
//!
//! Authentication: a bot token (`xoxb-…`) the host sends as `Authorization: Bearer` on the Web
//! API and on the private-file host. We chose the bot token over OAuth v2 because a scanning app
//! is installed once into one workspace by its admin, who copies the token from the app's
//! "OAuth & Permissions" page: no redirect URI for the daemon to serve, no user consent dance per
//! integration, and no refresh to fail at 3 a.m. A multi-workspace, distributed app would want
//! the OAuth v2 flow (the host's auth crate supports `oauth.v2.access`); that is a manifest
//! change, not a code change, since every call here goes through the host's injected header.
//!
//! Threat model: everything Slack returns is untrusted (file names are written by any member);
//! it is escaped before it goes into `mrkdwn` and never logged. The plugin never sees the bot
//! token or the signing secret. URLs from file objects are only fetched when they fall under the
//! configured file or API hosts.

use proofpix_sdk::prelude::*;

pub mod api;
pub mod blocks;
pub mod events;
pub mod source;

/// Default private-file host.
pub const DEFAULT_FILES_BASE: &str = "https://files.slack.com";
/// Findings shown per file in an alert, by default.
const DEFAULT_MAX_FINDINGS: i64 = 5;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("slack", env!("CARGO_PKG_VERSION"), "Slack", "Slack")
            .description(
                "Posts alerts about high-risk images and scan summaries to a Slack channel, scans \
                 images shared in Slack channels, and reacts to newly shared files through the \
                 Events API.",
            )
            .capability(Capability::Notifier)
            .capability(Capability::Source)
            .capability(Capability::Events)
            .auth(AuthScheme::ApiKey(ApiKeyAuth {
                secret_field: "bot_token".into(),
                header: "authorization".into(),
                prefix: "Bearer ".into(),
            }))
            .field(
                ConfigField::secret(
                    "bot_token",
                    "Bot token",
                    "The Bot User OAuth Token (starts with xoxb-) from your Slack app's OAuth & \
                 Permissions page. Bot token scopes: chat:write to post; channels:history, \
                 groups:history and files:read to scan channels; reactions:write to mark scanned \
                 files; channels:read and groups:read to check channels and find them by name.",
                )
                .placeholder("xoxb-…"),
            )
            .field(
                ConfigField::text(
                    "channel",
                    "Notification channel",
                    "Where alerts and summaries are posted: a channel ID (C0123ABCD, under the \
                     channel name → About) or #name. Invite the bot with /invite @YourApp first. \
                     Leave empty for an integration that only scans.",
                )
                .optional()
                .placeholder("#compliance"),
            )
            .field(
                ConfigField::list(
                    "channels",
                    "Channels to scan",
                    "Channels whose shared images ProofPix scans (IDs or #names, comma-separated). \
                     The bot must be a member of each. Leave empty to only post notifications.",
                )
                .optional()
                .placeholder("C0123ABCD, #field-photos"),
            )
            .field(
                ConfigField::choice(
                    "write_back",
                    "Mark scanned files",
                    "How a scanned file's result shows in Slack. reaction (the default and the \
                     quietest): an emoji on the message that shared it (✅ no or low risk, ⚠️ \
                     medium, 🚨 high or critical), which notifies nobody. thread: a reply in the \
                     message's thread with the risk, score and findings, for every file. \
                     thread-high: a reaction for every file plus a thread reply for high and \
                     critical ones. off: nothing is written to Slack.",
                    &["reaction", "thread", "thread-high", "off"],
                )
                .default("reaction"),
            )
            .field(
                ConfigField::integer(
                    "max_findings",
                    "Findings per alert",
                    "How many findings an alert lists for one file, worst first (the rest are \
                     counted). 0 shows only the summary.",
                )
                .default("5"),
            )
            .field(
                ConfigField::secret(
                    "signing_secret",
                    "Signing secret",
                    "The Signing Secret from your Slack app's Basic Information page, so ProofPix \
                     accepts Events API requests (file_shared, message) and scans new files at \
                     once. Needed only when events are enabled.",
                )
                .optional(),
            )
            .field(
                ConfigField::url(
                    "api_base_url",
                    "Web API URL",
                    "The Slack Web API. Change it only for GovSlack (https://slack-gov.com/api) or \
                     a local Slack emulator.",
                )
                .default(api::DEFAULT_API_BASE),
            )
            .field(
                ConfigField::url(
                    "files_base_url",
                    "Private file host",
                    "Where Slack serves files shared in channels (url_private). Change it only for \
                     GovSlack (https://files.slack-gov.com) or a local Slack emulator.",
                )
                .default(DEFAULT_FILES_BASE),
            )
            .endpoint(
                Endpoint::new("api", "{config.api_base_url}")
                    .with_credentials()
                    .purpose(
                        "the Slack Web API: post messages, read channel history and file details, \
                         add reactions",
                    ),
            )
            .endpoint(
                Endpoint::new("files", "{config.files_base_url}")
                    .with_credentials()
                    .purpose("download images shared in channels (Slack requires the bot token)"),
            )
            .write_back_batch_size(20)
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        if config::get("channel").is_none() && config::list("channels").is_empty() {
            return Err(PluginError::invalid_config(
                Some("channel"),
                "set `channel` to post notifications, `channels` to scan channels, or both",
            ));
        }
        let max = config::integer("max_findings", DEFAULT_MAX_FINDINGS)?;
        proofpix_sdk::settings::in_range::<u8>("max_findings", max, 0..=50, None).map(|_| ())
    }

    fn check() -> Result<CheckReport, PluginError> {
        source::check()
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        source::discover(cursor)
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        source::download(&file).map(Into::into)
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        source::write_back(results)
    }

    fn notify(event: Notification) -> Result<(), PluginError> {
        notify(&event)
    }

    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        events::handle(&request)
    }
}

/// Posts one notification to the configured channel.
fn notify(event: &Notification) -> Result<(), PluginError> {
    let Some(channel) = config::get("channel") else {
        // A scan-only Slack integration still receives the host's notifications (the default
        // subscription is "everything"); without a channel there is nowhere to post.
        log::info("notification skipped: this Slack integration has no `channel` set");
        return Ok(());
    };
    let max_findings = usize::try_from(config::integer("max_findings", DEFAULT_MAX_FINDINGS)?)
        .unwrap_or(0)
        .min(50);
    let message = blocks::render(event, max_findings);
    match post(&channel, &message, None) {
        Err(api::ApiError::Slack(e)) if e.is_message_shape() => {
            log::log(
                log::Level::Warn,
                "Slack refused the rich message; sending a compact one",
                &[("error", &e.code)],
            );
            post(&channel, &blocks::compact(event), None)
                .map_err(|e| explain_for_channel(e, &channel, "channel"))
        }
        Err(e) => Err(explain_for_channel(e, &channel, "channel")),
        Ok(()) => Ok(()),
    }
}

/// `chat.postMessage`.
pub(crate) fn post(
    channel: &str,
    message: &blocks::Message,
    thread_ts: Option<&str>,
) -> Result<(), api::ApiError> {
    api::post_json("chat.postMessage", &message.body(channel, thread_ts)).map(|_| ())
}

/// [`api::explain`] with the channel in context, looking up the bot's name for an invite hint.
pub(crate) fn explain_for_channel(
    error: api::ApiError,
    channel: &str,
    field: &'static str,
) -> PluginError {
    let bot_name = match &error {
        api::ApiError::Slack(e) if e.code == "not_in_channel" => api::bot_name(),
        _ => None,
    };
    api::explain(
        error,
        &api::Context {
            channel: Some(channel.to_string()),
            channel_field: field,
            bot_name,
        },
    )
}

export_connector!(Plugin);
