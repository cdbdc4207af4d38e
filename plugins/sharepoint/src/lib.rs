//! The SharePoint Online connector (work in progress: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(
            "sharepoint",
            env!("CARGO_PKG_VERSION"),
            "SharePoint Online",
            "SharePoint Online",
        )
        .description("Not implemented yet.")
        .capability(Capability::Source)
        .build()
    }
}

export_connector!(Plugin);
