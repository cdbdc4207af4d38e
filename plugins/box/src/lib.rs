//! The Box connector. (being built: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("box", env!("CARGO_PKG_VERSION"), "Box", "Box")
            .description("Not built yet.")
            .build()
    }
}

export_connector!(Plugin);
