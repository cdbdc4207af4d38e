//! The Microsoft Teams connector (work in progress: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "teams",
            env!("CARGO_PKG_VERSION"),
            "Microsoft Teams",
            "Microsoft Teams",
        )
        .description("Not implemented yet.")
        .capability(Capability::Notifier)
        .build()
    }
}

export_connector!(Plugin);
