//! The Dropbox connector. (being built: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("dropbox", env!("CARGO_PKG_VERSION"), "Dropbox", "Dropbox")
            .description("Not built yet.")
            .build()
    }
}

export_connector!(Plugin);
