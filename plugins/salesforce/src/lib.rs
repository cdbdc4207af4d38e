//! The Salesforce connector (work in progress: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "salesforce",
            env!("CARGO_PKG_VERSION"),
            "Salesforce",
            "Salesforce",
        )
        .description("Not implemented yet.")
        .capability(Capability::Source)
        .build()
    }
}

export_connector!(Plugin);
