//! The Google Drive connector. (being built: describes itself only).

use proofpix_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("google-drive", env!("CARGO_PKG_VERSION"), "Google Drive", "Google Drive")
            .description("Not built yet.")
            .build()
    }
}

export_connector!(Plugin);
