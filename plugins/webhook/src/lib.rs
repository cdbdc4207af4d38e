//! The generic outbound webhook notifier. (being built: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "Outbound webhook",
            "Outbound webhook",
        )
        .description("Not built yet.")
        .build()
    }
}

export_connector!(Plugin);
