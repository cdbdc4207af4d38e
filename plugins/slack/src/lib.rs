//! The Slack connector (work in progress: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("slack", env!("CARGO_PKG_VERSION"), "Slack", "Slack")
            .description("Not implemented yet.")
            .capability(Capability::Notifier)
            .build()
    }
}

export_connector!(Plugin);
